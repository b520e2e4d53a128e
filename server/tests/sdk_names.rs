//! The local server accepts the `$` prefix exactly for the SDK's own events: its list is the
//! SDK's.

#[test]
fn the_servers_reserved_names_are_the_sdks_own_events() {
    assert_eq!(
        inhouse_server::api::SDK_EVENTS,
        inhouse_tracker::core::event::SDK_EVENTS
    );
    for name in inhouse_tracker::core::event::SDK_EVENTS {
        assert_eq!(
            inhouse_server::api::event_name_problem(name),
            None,
            "{name}"
        );
    }
}
