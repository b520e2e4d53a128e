//! The calls that change what events carry: `track` (built in the session it joins) and the
//! profile's `identify`, `register`, `unregister` and `reset`. Made before the stored queue and
//! profile are read, they wait, in order, and run once it is (`driver::restored`).

use super::driver::{admit_event, sync_context, Inner, Waiter};
use crate::core::error::{Error, Result};
use crate::core::event::{build_named_event, EventName, NewEvent, Props};
use crate::core::origin::{Origin, Source};
use crate::core::profile::Profile;
use crate::core::session::Activity;
use wasm_bindgen::JsValue;

/// A `track` call: what it was called with, where from, and when.
#[derive(Debug)]
pub(crate) struct TrackCall {
    pub(crate) name: EventName,
    pub(crate) props: Props,
    pub(crate) dedup_key: Option<String>,
    pub(crate) origin: Origin,
    pub(crate) at: u64,
}

/// A change of the profile.
#[derive(Debug)]
pub(crate) enum ProfileChange {
    Identify(String),
    Register(Props),
    Unregister(String),
    /// Forgets the user and the super properties and ends the session.
    Reset,
}

/// A call made before the stored queue was read, waiting for it.
pub(crate) enum EarlyCall {
    Track(TrackCall, Waiter),
    Profile(ProfileChange, Waiter),
}

/// What stands in for the install and session ids while a call made before they were read is
/// checked: an id of the same length.
const PLACEHOLDER_ID: &str = "00000000-0000-4000-8000-000000000000";

/// Builds the event of `call` in the session it joins: an event from a page or a content script
/// is user activity and extends the session; the background's own joins without extending it.
pub(crate) fn build(inner: &mut Inner, call: TrackCall) -> Result<NewEvent> {
    let activity = if call.origin.source == Source::Background { Activity::Background } else { Activity::User };
    let state = &mut *inner;
    let session = state.sessions.join(call.at, activity, &mut state.rng);
    if state.ctx.session_id.as_deref() != Some(session) {
        state.ctx.session_id = Some(session.to_string());
    }
    let max = state.engine.config().limits.max_event_bytes;
    build_named_event(&call.name, call.props, call.dedup_key.as_deref(), &state.ctx, &call.origin, call.at, max, &mut state.rng)
}

/// Checks `call` before the stored ids are known (a bad event rejects at once), with ids of
/// the right length standing in for them.
pub(crate) fn check_early(inner: &mut Inner, call: &TrackCall) -> Result<()> {
    let mut ctx = inner.ctx.clone();
    ctx.install_id = Some(PLACEHOLDER_ID.into());
    ctx.session_id = Some(PLACEHOLDER_ID.into());
    let max = inner.engine.config().limits.max_event_bytes;
    let (props, dedup) = (call.props.clone(), call.dedup_key.as_deref());
    build_named_event(&call.name, props, dedup, &ctx, &call.origin, call.at, max, &mut inner.rng).map(drop)
}

/// Builds and offers `call`; its promise settles when the write that stores it commits.
pub(crate) fn track(inner: &mut Inner, call: TrackCall, waiter: Waiter, now: u64) {
    match build(inner, call) {
        Ok(event) => admit_event(inner, event, waiter, now),
        Err(e) => reject(&waiter, &e),
    }
}

/// Applies a profile change; the events tracked from now on carry it.
pub(crate) fn change_profile(inner: &mut Inner, change: ProfileChange) -> Result<()> {
    let result = match change {
        ProfileChange::Identify(user_id) => {
            inner.engine.change_profile(|p| p.identify(user_id));
            Ok(())
        }
        ProfileChange::Register(props) => inner.engine.change_profile(|p| p.register(&props)),
        ProfileChange::Unregister(key) => {
            inner.engine.change_profile(|p| p.unregister(&key));
            Ok(())
        }
        ProfileChange::Reset => {
            inner.engine.change_profile(|p| *p = Profile::default());
            inner.sessions.end();
            Ok(())
        }
    };
    sync_context(inner);
    result
}

/// Runs the calls that waited for the stored queue, in the order they were made: a profile
/// change settles once it is stored (`driver::answer_settings`).
pub(crate) fn run_early(inner: &mut Inner, calls: Vec<EarlyCall>, now: u64) {
    for call in calls {
        match call {
            EarlyCall::Track(call, waiter) => track(inner, call, waiter, now),
            EarlyCall::Profile(change, waiter) => match change_profile(inner, change) {
                Ok(()) => inner.settings_waiters.push(waiter.resolve),
                Err(e) => reject(&waiter, &e),
            },
        }
    }
}

fn reject(waiter: &Waiter, e: &Error) {
    let _ = waiter.reject.call1(&JsValue::UNDEFINED, &super::js::to_js_error(e));
}
