//! The calls that change what events carry: `track` (built in the session it joins) and the
//! profile's `identify`, `register`, `unregister` and `reset`. Made before the stored queue and
//! profile are read, they wait, in order, and run once it is (`driver::restored`).

use super::driver::{admit_event, settle, sync_context, Inner, Waiter};
use super::js::{deferred, Deferred};
use crate::core::error::{Error, Result};
use crate::core::event::{build_named_event, EventName, NewEvent, Props};
use crate::core::lifecycle::{at_start, daily_due, sample_point, utc_day, Lifecycle, Seen, Start, LIFECYCLE_EVENTS};
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

/// A call made before the stored index was read, or a `track` with a `dedupKey` made while
/// stored segments are still being read: it waits for them.
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

/// Builds and offers `call`; its promise settles when the write that stores it commits. An
/// install the `sampleRate` leaves out stores nothing (its promise says `sampled`), except its
/// lifecycle events; `beforeSend` may edit the event or drop it (`filtered`).
/// Returns whether the call was accepted (a refused one has nothing to write or send).
pub(crate) fn track(inner: &mut Inner, call: TrackCall, waiter: Waiter, now: u64) -> bool {
    match prepare(inner, call) {
        Ok(Prepared::Event(event)) => admit_event(inner, event, waiter, now),
        Ok(Prepared::Unstored(status)) => settle(&waiter, "", status),
        Err(e) => {
            reject(&waiter, &e);
            return false;
        }
    }
    true
}

/// What becomes of a call: an event to offer, or nothing stored (`sampled`, `filtered`).
enum Prepared {
    Event(NewEvent),
    Unstored(&'static str),
}

/// Samples, runs `beforeSend` and builds: what `track` stores, if anything. An invalid event
/// is an error.
fn prepare(inner: &mut Inner, call: TrackCall) -> Result<Prepared> {
    let lifecycle = matches!(call.name, EventName::Sdk(name) if LIFECYCLE_EVENTS.contains(&name));
    if !lifecycle && !sampled_in(inner) {
        inner.engine.count_unstored(true);
        return Ok(Prepared::Unstored("sampled"));
    }
    let Some(call) = before_send(inner, call) else {
        inner.engine.count_unstored(false);
        return Ok(Prepared::Unstored("filtered"));
    };
    build(inner, call).map(Prepared::Event)
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
            EarlyCall::Track(call, waiter) => {
                let _ = track(inner, call, waiter, now);
            }
            EarlyCall::Profile(change, waiter) => match change_profile(inner, change) {
                Ok(()) => inner.settings_waiters.push(waiter.resolve),
                Err(e) => reject(&waiter, &e),
            },
        }
    }
}

/// Rejects a call's promise with `e`.
pub(crate) fn reject(waiter: &Waiter, e: &Error) {
    let _ = waiter.reject.call1(&JsValue::UNDEFINED, &super::js::to_js_error(e));
}

/// Tracks one of the SDK's automatic events from the background; nobody waits for it.
fn track_automatic(inner: &mut Inner, event: &Lifecycle, now: u64) {
    let call = TrackCall { name: EventName::Sdk(event.name()), props: event.props(), dedup_key: None, origin: Origin::default(), at: now };
    let Deferred { resolve, reject, .. } = deferred();
    let _ = track(inner, call, Waiter { resolve, reject }, now);
}

/// The automatic events due at this start (install, update, browser update, browser start,
/// the day's first), tracked before the calls that waited for the start: stored with the record
/// of what this start saw, in one write. Nothing while opted out.
pub(crate) fn lifecycle_at_start(inner: &mut Inner, browser_started: bool, now: u64) {
    let new_install = inner.engine.new_install();
    lifecycle(inner, browser_started, new_install, now);
}

/// The user opted in (`setEnabled(true)`): an install never counted, because it started opted
/// out, is counted now.
pub(crate) fn lifecycle_at_consent(inner: &mut Inner, now: u64) {
    if inner.engine.lifecycle().is_none() {
        lifecycle(inner, false, true, now);
    }
}

fn lifecycle(inner: &mut Inner, browser_started: bool, new_install: bool, now: u64) {
    if !inner.engine.enabled() {
        return;
    }
    let start = Start {
        version: inner.ctx.extension_version.as_deref(),
        browser_version: inner.ctx.browser_version.as_deref(),
        day: utc_day(now),
        browser_started,
        new_install,
    };
    let (events, seen) = at_start(inner.engine.lifecycle(), &start, inner.engine.config().auto_events);
    inner.engine.set_lifecycle(seen);
    for event in &events {
        track_automatic(inner, event, now);
    }
}

/// The day's `$daily_active`, once the UTC day changed since the last one (a worker that lives
/// across midnight, or the daily alarm's wake-up).
pub(crate) fn daily(inner: &mut Inner, now: u64) {
    let day = utc_day(now);
    let last = inner.engine.lifecycle().and_then(|s| s.daily);
    if !inner.engine.enabled() || daily_due(last, day, inner.engine.config().auto_events).is_none() {
        return;
    }
    let seen = Seen { daily: Some(day), ..inner.engine.lifecycle().cloned().unwrap_or_default() };
    inner.engine.set_lifecycle(seen);
    track_automatic(inner, &Lifecycle::DailyActive, now);
}

/// Whether the `sampleRate` keeps this install's events: decided on a hash of the install id,
/// so an install is kept or left out whole.
fn sampled_in(inner: &Inner) -> bool {
    let rate = inner.engine.config().sample_rate;
    rate >= 1.0 || inner.engine.install_id().is_some_and(|id| sample_point(id) < rate)
}

/// Runs `beforeSend` on a call: `Ok(None)` when it dropped the event. When the hook throws or
/// returns something that is not an event, the event goes on unchanged and the error is
/// reported through `onError`.
fn before_send(inner: &mut Inner, call: TrackCall) -> Option<TrackCall> {
    let Some(hook) = inner.hooks.before_send.clone() else { return Some(call) };
    match super::hooks::before_send(&hook, &call) {
        Ok(Some(props)) => Some(TrackCall { props, ..call }),
        Ok(None) => None,
        Err(e) => {
            inner.engine.report_error(e, call.at);
            Some(call)
        }
    }
}
