#![cfg(not(target_arch = "wasm32"))]
//! Host tests of who, when and where: the session rule (clock injected), the profile (user id,
//! super properties and their merge order), the reserved names, and the origin of a relayed
//! event as Chrome's `sender` describes it.

use inhouse_tracker::core::error::ErrorCode;
use inhouse_tracker::core::event::{build_named_event, EventContext, EventName, Props, Rng, SDK_EVENTS};
use inhouse_tracker::core::json::Json;
use inhouse_tracker::core::origin::{browser_from_user_agent, relayed, split_url, Extension, ExtensionPages, Origin, PageUrl, Sender, Source};
use inhouse_tracker::core::profile::{check_user_id, Profile};
use inhouse_tracker::core::session::{Activity, Session, Sessions};
use serde_json::{json, Value};

const NOW: u64 = 1_795_330_800_000;
const MIN: u64 = 60_000;
const EXT: &str = "abcdefghijklmnopabcdefghijklmnop";

mod host_json;

fn props(v: Value) -> Props {
    Props::from_json(&host_json::to_json(&v)).unwrap()
}

/// The properties an event carries, built with `ctx` from `origin`.
fn built(name: EventName, own: Value, ctx: &EventContext, origin: &Origin) -> Value {
    let event = build_named_event(&name, props(own), None, ctx, origin, NOW, 32 * 1024, &mut Rng::new(7)).unwrap();
    serde_json::from_str(event.props_json()).unwrap()
}

#[test]
fn a_session_ends_after_the_timeout_without_user_activity() {
    let mut rng = Rng::new(1);
    let mut s = Sessions::new(30 * MIN);
    let first = s.join(NOW, Activity::User, &mut rng).to_string();
    // User activity keeps it: each event within the timeout of the last.
    for k in 1..=10 {
        assert_eq!(s.join(NOW + k * 20 * MIN, Activity::User, &mut rng), first, "activity {k}");
    }
    // 30 minutes after the last activity: a new session.
    let second = s.join(NOW + 200 * MIN + 30 * MIN, Activity::User, &mut rng).to_string();
    assert_ne!(second, first);
    assert_eq!(second.len(), 36);
}

#[test]
fn background_events_join_without_extending() {
    let mut rng = Rng::new(2);
    let mut s = Sessions::new(30 * MIN);
    let user = s.join(NOW, Activity::User, &mut rng).to_string();
    // A background timer every 10 minutes joins the session ...
    assert_eq!(s.join(NOW + 10 * MIN, Activity::Background, &mut rng), user);
    assert_eq!(s.join(NOW + 20 * MIN, Activity::Background, &mut rng), user);
    // ... but does not keep it alive: 30 minutes after the user's last event it is over.
    let next = s.join(NOW + 30 * MIN, Activity::Background, &mut rng).to_string();
    assert_ne!(next, user);
    // A session the background started lasts its timeout from its start, not from each event.
    assert_eq!(s.join(NOW + 50 * MIN, Activity::Background, &mut rng), next);
    assert_ne!(s.join(NOW + 60 * MIN, Activity::Background, &mut rng), next);
    // Over a day of background timers: a new session every 30 minutes, never one for days.
    let mut ids = std::collections::BTreeSet::new();
    for k in 0..(24 * 6) {
        ids.insert(s.join(NOW + 100 * MIN + k * 10 * MIN, Activity::Background, &mut rng).to_string());
    }
    assert_eq!(ids.len(), 48);
}

#[test]
fn sessions_are_stored_and_read_back_and_reset_ends_them() {
    let mut rng = Rng::new(3);
    let mut s = Sessions::new(30 * MIN);
    assert_eq!(s.take_changed(), None);
    let id = s.join(NOW, Activity::User, &mut rng).to_string();
    let stored = s.take_changed().expect("a new session is stored");
    assert_eq!(s.take_changed(), None, "once");
    assert_eq!(Session::decode(&stored), Some(Session { id: id.clone(), started_at: NOW, last_activity: NOW }));
    // A new worker reads it back and goes on with it.
    let mut again = Sessions::new(30 * MIN);
    again.adopt(Some(&stored));
    assert_eq!(again.join(NOW + MIN, Activity::User, &mut rng), id);
    assert_eq!(again.live(NOW + MIN).map(|s| s.id.as_str()), Some(id.as_str()));
    assert!(again.live(NOW + 40 * MIN).is_none());
    // The browser restarted (chrome.storage.session is empty): a new one.
    let mut fresh = Sessions::new(30 * MIN);
    fresh.adopt(None);
    assert_ne!(fresh.join(NOW + MIN, Activity::User, &mut rng), id);
    // reset() ends it; the next event starts another.
    again.end();
    assert_eq!(again.take_changed().as_deref(), Some(""));
    assert_ne!(again.join(NOW + 2 * MIN, Activity::Background, &mut rng), id);
    // Damaged records are no session.
    for bad in ["", "x 1 2", &format!("{id} 5 4"), &format!("{id} 1"), &format!("{id} 1 2 3"), &format!("{id} a 2")] {
        assert_eq!(Session::decode(bad), None, "{bad:?}");
    }
    // A clock set back does not end a session.
    let current = again.live(NOW + 2 * MIN).unwrap().id.clone();
    assert_eq!(again.join(NOW, Activity::User, &mut rng), current);
}

#[test]
fn super_properties_merge_and_the_events_own_keys_win() {
    let mut profile = Profile::default();
    profile.register(&props(json!({"plan": "free", "team": "a"}))).unwrap();
    profile.register(&props(json!({"plan": "pro", "beta": true}))).unwrap();
    let ctx = EventContext { profile: profile.clone(), ..EventContext::default() };
    let p = built(EventName::User("click".into()), json!({"team": "mine", "n": 1}), &ctx, &Origin::default());
    assert_eq!(p["plan"], "pro", "registered again: the new value");
    assert_eq!(p["beta"], true);
    assert_eq!(p["team"], "mine", "the event's own key wins");
    assert_eq!(p["n"], 1);
    // Read back from its stored text, the same.
    assert_eq!(Profile::decode(&profile.encode()), Some(profile.clone()));
    // unregister and the merge no longer adds it.
    profile.unregister("plan");
    let ctx = EventContext { profile: profile.clone(), ..EventContext::default() };
    let p = built(EventName::User("click".into()), json!({}), &ctx, &Origin::default());
    assert!(p.get("plan").is_none());
    assert_eq!(p["team"], "a");
    // Keys that need escaping round-trip and match.
    profile.register(&props(json!({"a\"b\n": 1}))).unwrap();
    assert_eq!(Profile::decode(&profile.encode()), Some(profile.clone()));
    profile.unregister("a\"b\n");
    assert_eq!(profile.supers().count(), 2);
}

#[test]
fn super_properties_are_bounded_and_damaged_profiles_refused() {
    let mut profile = Profile::default();
    let big = "x".repeat(8000);
    profile.register(&props(json!({"a": big, "b": big}))).unwrap();
    let e = profile.register(&props(json!({"c": big}))).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidProperties);
    assert!(e.message.contains("every event"), "{}", e.message);
    assert_eq!(profile.supers().count(), 2, "nothing changed");
    for bad in ["x", "p\"a\"", "pa\t1", "p\"a\"\t", "u"] {
        assert_eq!(Profile::decode(bad), None, "{bad:?}");
    }
    assert_eq!(Profile::decode(""), Some(Profile::default()));
}

#[test]
fn user_ids_and_the_identified_user_on_events() {
    for good in ["u1", "alice@example.com", &"é".repeat(256)] {
        check_user_id(good).unwrap();
    }
    for bad in ["", "a\nb", "tab\t", &"x".repeat(257)] {
        let e = check_user_id(bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidUserId, "{bad:?}");
        assert_eq!(e.field.as_deref(), Some("userId"));
    }
    let mut profile = Profile::default();
    profile.identify("user-42".into());
    assert_eq!(Profile::decode(&profile.encode()).unwrap().user_id(), Some("user-42"));
    let ctx = EventContext { profile, session_id: Some("s".into()), install_id: Some("i".into()), ..EventContext::default() };
    let p = built(EventName::Sdk("$identify"), json!({"email": "a@b.c"}), &ctx, &Origin::default());
    assert_eq!(p["$user_id"], "user-42");
    assert_eq!(p["$session_id"], "s");
    assert_eq!(p["$install_id"], "i");
    assert_eq!(p["email"], "a@b.c");
}

#[test]
fn the_reserved_form_is_for_the_sdks_own_events_only() {
    let ctx = EventContext::default();
    let build = |name: EventName| build_named_event(&name, props(json!({})), None, &ctx, &Origin::default(), NOW, 4096, &mut Rng::new(1));
    for name in SDK_EVENTS {
        assert!(name.starts_with('$'));
        assert_eq!(build(EventName::Sdk(name)).unwrap().name(), name);
        // A user's event cannot take an SDK's name, nor any `$` name.
        assert_eq!(build(EventName::User(name.into())).unwrap_err().code, ErrorCode::InvalidEventName);
    }
    assert_eq!(build(EventName::User("$custom".into())).unwrap_err().code, ErrorCode::InvalidEventName);
    // Reserved keys in a user's properties are refused, naming the key.
    let e = Props::from_json(&Json::Object(vec![("$source".into(), Json::String("popup".into()))])).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidProperties);
    assert_eq!(e.field.as_deref(), Some("properties.$source"));
}

fn pages() -> ExtensionPages {
    ExtensionPages::new(Some("popup.html".into()), Some("/options.html".into()), Some("panel/side.html".into()))
}

fn sender(url: &str, tab: Option<i64>) -> Sender {
    Sender { url: Some(url.into()), origin: None, tab_id: tab, frame_id: tab.map(|_| 0), incognito: tab.map(|_| false) }
}

#[test]
fn the_surface_comes_from_the_sender() {
    let ext = |path: &str| format!("chrome-extension://{EXT}{path}");
    let cases = [
        (sender(&ext("/popup.html"), None), Source::Popup),
        (sender(&ext("/options.html?tab=2"), Some(5)), Source::Options),
        (sender(&ext("/panel/side.html#x"), None), Source::SidePanel),
        (sender(&ext("/other.html"), Some(3)), Source::Page),
        (sender(&ext("/offscreen.html"), None), Source::Offscreen),
        (sender("https://example.com/a/b?q=secret#f", Some(9)), Source::ContentScript),
        // Another extension's page is not ours: treated as a web page.
        (sender("chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba/popup.html", Some(1)), Source::ContentScript),
    ];
    for (s, source) in cases {
        let o = relayed(&s, &Extension::chrome(EXT), &pages(), PageUrl::Origin);
        assert_eq!(o.source, source, "{s:?}");
        assert_eq!((o.tab_id, o.frame_id, o.incognito), (s.tab_id, s.frame_id, s.incognito));
    }
    let o = relayed(&sender(&ext("/options.html?tab=2"), Some(5)), &Extension::chrome(EXT), &pages(), PageUrl::Full);
    assert_eq!(o.location, [("$path", "/options.html".to_string())], "an extension page: its path, whatever pageUrl says");
}

#[test]
fn in_firefox_the_extensions_own_pages_are_those_of_its_per_install_origin() {
    // Firefox names an install's pages moz-extension://<a uuid made for the install>.
    let firefox = Extension { id: "name@example.com".into(), origin: "moz-extension://3c2d8a7e-1b4f-4e6a-9c5d-0f1e2a3b4c5d".into() };
    let page = |path: &str| format!("moz-extension://3c2d8a7e-1b4f-4e6a-9c5d-0f1e2a3b4c5d{path}");
    for (s, source) in [
        (sender(&page("/popup.html"), None), Source::Popup),
        (sender(&page("/options.html"), Some(5)), Source::Options),
        (sender(&page("/other.html"), Some(3)), Source::Page),
        (sender("moz-extension://00000000-1111-4222-8333-444444444444/popup.html", Some(1)), Source::ContentScript),
        (sender("https://example.com/a", Some(9)), Source::ContentScript),
    ] {
        let o = relayed(&s, &firefox, &pages(), PageUrl::Origin);
        assert_eq!(o.source, source, "{s:?}");
        if source != Source::ContentScript {
            assert!(o.location.iter().all(|(_, v)| !v.contains("3c2d8a7e")), "the install's uuid stays out of the event: {:?}", o.location);
        }
    }
    assert_eq!(firefox.public_origin(), "moz-extension://name@example.com");
    // Firefox's getManifest() names the options page by its whole URL.
    let whole = ExtensionPages::new(None, Some(page("/options.html")), None);
    assert_eq!(relayed(&sender(&page("/options.html"), Some(5)), &firefox, &whole, PageUrl::Origin).source, Source::Options);
    assert_eq!(Extension::chrome(EXT).public_origin(), format!("chrome-extension://{EXT}"));
}

#[test]
fn the_browser_is_read_from_the_user_agent_where_client_hints_are_missing() {
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0";
    assert_eq!(browser_from_user_agent(firefox), (Some("Firefox".into()), Some("153".into())));
    let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.8078.114 Safari/537.36";
    assert_eq!(browser_from_user_agent(chrome), (Some("Chrome".into()), Some("156".into())));
    assert_eq!(browser_from_user_agent("curl/8"), (None, None));
}

#[test]
fn content_script_urls_are_reduced_to_the_origin_by_default() {
    let s = Sender { origin: Some("https://example.com".into()), ..sender("https://example.com/a/b?q=secret#f", Some(9)) };
    let at = |page_url| relayed(&s, &Extension::chrome(EXT), &pages(), page_url).location;
    assert_eq!(at(PageUrl::Origin), [("$origin", "https://example.com".to_string())]);
    assert_eq!(at(PageUrl::Path), [("$origin", "https://example.com".to_string()), ("$path", "/a/b".to_string())]);
    assert_eq!(at(PageUrl::Full), [("$url", "https://example.com/a/b?q=secret#f".to_string())]);
    // Without sender.origin, from the URL.
    let s = sender("http://localhost:8080/x?y", Some(1));
    assert_eq!(relayed(&s, &Extension::chrome(EXT), &pages(), PageUrl::Origin).location, [("$origin", "http://localhost:8080".to_string())]);
    assert_eq!(split_url("https://a.b"), ("https://a.b", "/"));
    assert_eq!(split_url("https://a.b?x=/y"), ("https://a.b", "/"));
    assert_eq!(split_url("file:///home/x.html"), ("file://", "/home/x.html"));
    // What the event carries.
    let o = relayed(
        &Sender { origin: Some("https://example.com".into()), ..sender("https://example.com/p", Some(9)) },
        &Extension::chrome(EXT),
        &pages(),
        PageUrl::Origin,
    );
    let p = built(EventName::User("clicked".into()), json!({}), &EventContext::default(), &o);
    assert_eq!(p["$source"], "content_script");
    assert_eq!(p["$tab_id"], 9);
    assert_eq!(p["$frame_id"], 0);
    assert_eq!(p["$incognito"], false);
    assert_eq!(p["$origin"], "https://example.com");
    assert!(p.get("$url").is_none() && p.get("$path").is_none());
}
