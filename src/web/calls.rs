//! The calls that change what events carry: `track` (built in the session it joins) and the
//! profile's `identify`, `register`, `unregister` and `reset`.
//!
//! A call runs at once, or waits in `Inner::waiting`, in order, when it cannot run yet: before the
//! stored queue and profile are read; a `track` with a `dedupKey` while stored segments are still
//! being read; an event that `beforeSend` must see first (the hook runs from [`run_waiting`], with
//! no borrow of the tracker's state held, so it may call any method); and any call made while
//! others wait, so that calls keep their order.

use super::driver::{admit_event, settle, sync_context, Inner, Phase, Shared, Waiter};
use super::js::{deferred, now_ms, Deferred};
use crate::core::error::{Error, ErrorCode, Result};
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
    /// `beforeSend` is still to see it (set when the call is made: calls made inside
    /// `beforeSend` are not passed to it again, so a hook that tracks cannot loop).
    pub(crate) hooked: bool,
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

/// A call that waits its turn (see the module documentation).
pub(crate) enum WaitingCall {
    Track(TrackCall, Waiter),
    Profile(ProfileChange, Waiter),
    /// `identify`: the profile change and its `$identify` event, which stand or fall together
    /// (an event that cannot be stored changes nothing).
    Identify(String, TrackCall, Waiter),
    /// `setEnabled(enabled, {purge})`; settles like a profile change, once stored.
    Consent {
        enabled: bool,
        purge: bool,
        resolve: js_sys::Function,
    },
}

/// Refuses every call in `calls` with `e` (the tracker stopped before they could run).
pub(crate) fn refuse_all(calls: impl IntoIterator<Item = WaitingCall>, e: &Error) {
    for call in calls {
        match call {
            WaitingCall::Track(_, w) | WaitingCall::Profile(_, w) | WaitingCall::Identify(_, _, w) => reject(&w, e),
            // A choice that could not be stored: its promise settles as a shutdown's does.
            WaitingCall::Consent { resolve, .. } => drop(resolve.call0(&JsValue::UNDEFINED)),
        }
    }
}

/// Applies the opt-in choice now: the engine's consent (a purge forgets the install id and the
/// profile), the install counted on a late opt-in. Returns the uninstall URL to give Chrome, if
/// one is configured (it follows the choice).
pub(crate) fn set_consent(inner: &mut Inner, enabled: bool, purge: bool, now: u64) -> Option<String> {
    inner.engine.set_enabled(enabled, purge, now);
    // A purge forgets the install id: later events carry the new one.
    sync_context(inner);
    if inner.phase != Phase::Running {
        return None;
    }
    if enabled {
        lifecycle_at_consent(inner, now);
    }
    super::driver::uninstall_url_now(inner, now)
}

/// Whether `call` must wait its turn rather than run now.
pub(crate) fn must_wait(inner: &Inner, call: &TrackCall) -> bool {
    inner.phase == Phase::Starting || !inner.waiting.is_empty() || call.hooked || (call.dedup_key.is_some() && inner.engine.loading())
}

/// Whether a call made now goes through `beforeSend`.
pub(crate) fn hooked(inner: &Inner) -> bool {
    inner.hooks.before_send.is_some() && !inner.in_before_send
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

/// Checks a call that waits its turn now, so that a bad event rejects at once: the stored ids
/// may not be known yet, ids of the right length stand in for them.
pub(crate) fn check_waiting(inner: &mut Inner, call: &TrackCall) -> Result<()> {
    check_as(inner, call, None)
}

/// [`check_waiting`] with the user `identify` sets: whether its `$identify` event can be stored.
pub(crate) fn check_identify(inner: &mut Inner, user_id: &str, call: &TrackCall) -> Result<()> {
    check_as(inner, call, Some(user_id))
}

fn check_as(inner: &mut Inner, call: &TrackCall, user_id: Option<&str>) -> Result<()> {
    let mut ctx = inner.ctx.clone();
    if let Some(user_id) = user_id {
        ctx.profile.identify(user_id.to_string());
    }
    ctx.install_id = Some(PLACEHOLDER_ID.into());
    ctx.session_id = Some(PLACEHOLDER_ID.into());
    let max = inner.engine.config().limits.max_event_bytes;
    let (props, dedup) = (call.props.clone(), call.dedup_key.as_deref());
    build_named_event(&call.name, props, dedup, &ctx, &call.origin, call.at, max, &mut inner.rng).map(drop)
}

/// Builds and offers `call` (one `beforeSend` has seen already, or need not); its promise
/// settles when the write that stores it commits. An install the `sampleRate` leaves out stores
/// nothing (its promise says `sampled`), except its lifecycle events. Returns whether the call
/// was accepted (a refused one has nothing to write or send).
pub(crate) fn track(inner: &mut Inner, call: TrackCall, waiter: Waiter, now: u64) -> bool {
    if !sampled(inner, &call) {
        settle(&waiter, "", "sampled");
        return true;
    }
    build_and_admit(inner, call, waiter, now)
}

/// Builds `call`'s event and offers it, or rejects the call; returns whether it was accepted.
fn build_and_admit(inner: &mut Inner, call: TrackCall, waiter: Waiter, now: u64) -> bool {
    match build(inner, call) {
        Ok(event) => {
            admit_event(inner, event, waiter, now);
            true
        }
        Err(e) => {
            reject(&waiter, &e);
            false
        }
    }
}

/// Whether the `sampleRate` keeps `call` (counted when it does not): lifecycle events always.
fn sampled(inner: &mut Inner, call: &TrackCall) -> bool {
    let lifecycle = matches!(call.name, EventName::Sdk(name) if LIFECYCLE_EVENTS.contains(&name));
    if lifecycle || sampled_in(inner) {
        return true;
    }
    inner.engine.count_unstored(true);
    false
}

/// Runs the calls that wait, in order, as far as they can go now (see the module
/// documentation). Holds no borrow while `beforeSend` runs. A call made meanwhile (by the hook)
/// joins the queue; one drain at a time takes it.
pub(crate) fn run_waiting(s: &Shared) {
    drain_waiting(s, false);
}

/// [`run_waiting`] at shutdown: a `dedupKey` call does not wait for the stored segments (it is
/// checked against those read so far).
pub(crate) fn run_waiting_forced(s: &Shared) {
    drain_waiting(s, true);
}

fn drain_waiting(s: &Shared, forced: bool) {
    {
        let mut inner = s.borrow_mut();
        if inner.draining {
            return;
        }
        inner.draining = true;
    }
    loop {
        let next = {
            let mut inner = s.borrow_mut();
            let blocked = inner.phase != Phase::Running
                || match inner.waiting.front() {
                    None => true,
                    Some(WaitingCall::Track(call, _)) => !forced && call.dedup_key.is_some() && inner.engine.loading(),
                    Some(_) => false,
                };
            if blocked {
                inner.draining = false;
                return;
            }
            inner.waiting.pop_front()
        };
        let now = now_ms();
        match next {
            Some(WaitingCall::Track(call, waiter)) => {
                let _ = track_hooked(s, call, waiter, now);
            }
            Some(WaitingCall::Consent { enabled, purge, resolve }) => {
                let uninstall = {
                    let mut inner = s.borrow_mut();
                    inner.settings_waiters.push(resolve);
                    set_consent(&mut inner, enabled, purge, now)
                };
                if let Some(url) = uninstall {
                    super::runtime::set_uninstall_url(&url);
                }
            }
            Some(WaitingCall::Profile(change, waiter)) => {
                let mut inner = s.borrow_mut();
                match change_profile(&mut inner, change) {
                    Ok(()) => inner.settings_waiters.push(waiter.resolve),
                    Err(e) => reject(&waiter, &e),
                }
            }
            Some(WaitingCall::Identify(user_id, call, waiter)) => {
                let checked = check_identify(&mut s.borrow_mut(), &user_id, &call);
                match checked {
                    Ok(()) => {
                        let before = s.borrow().engine.profile().clone();
                        let _ = change_profile(&mut s.borrow_mut(), ProfileChange::Identify(user_id));
                        // `beforeSend` may have made the event one that cannot be stored: then
                        // the call changes nothing.
                        if !track_hooked(s, call, waiter, now) {
                            let mut inner = s.borrow_mut();
                            inner.engine.change_profile(|p| *p = before);
                            sync_context(&mut inner);
                        }
                    }
                    Err(e) => reject(&waiter, &e),
                }
            }
            None => {}
        }
    }
}

/// [`track`] after `beforeSend` (if it is to see the call), run with no borrow held: it may
/// edit the event, drop it (`filtered`), or fail (the event goes on unchanged, and `onError`
/// hears why).
/// Returns whether the call was accepted (stored, or left out on purpose: sampled, filtered).
fn track_hooked(s: &Shared, call: TrackCall, waiter: Waiter, now: u64) -> bool {
    let hook = {
        let mut inner = s.borrow_mut();
        let hook = if call.hooked { inner.hooks.before_send.clone() } else { None };
        match hook {
            Some(hook) if sampled(&mut inner, &call) => {
                inner.in_before_send = true;
                hook
            }
            Some(_) => {
                settle(&waiter, "", "sampled");
                return true;
            }
            None => return track(&mut inner, call, waiter, now),
        }
    };
    let seen = super::hooks::before_send(&hook, &call);
    let mut inner = s.borrow_mut();
    inner.in_before_send = false;
    // The hook may have shut the tracker down.
    if inner.phase == Phase::ShutDown {
        reject(&waiter, &Error::new(ErrorCode::ShutDown, "the tracker was shut down (by beforeSend) before this call could be stored"));
        return false;
    }
    let call = match seen {
        Ok(Some((name, props))) => TrackCall { name: name.unwrap_or(call.name), props, hooked: false, ..call },
        Ok(None) => {
            inner.engine.count_unstored(false);
            settle(&waiter, "", "filtered");
            return true;
        }
        Err(e) => {
            inner.engine.report_error(e, call.at);
            TrackCall { hooked: false, ..call }
        }
    };
    build_and_admit(&mut inner, call, waiter, now)
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

/// Rejects a call's promise with `e`.
pub(crate) fn reject(waiter: &Waiter, e: &Error) {
    let _ = waiter.reject.call1(&JsValue::UNDEFINED, &super::js::to_js_error(e));
}

/// Tracks the SDK's automatic events from the background, before every call that waits (they
/// tell what happened before those calls); nobody waits for their promises.
fn track_automatic(inner: &mut Inner, events: &[Lifecycle], now: u64) {
    let hooked = hooked(inner);
    for (k, event) in events.iter().enumerate() {
        let call =
            TrackCall { name: EventName::Sdk(event.name()), props: event.props(), dedup_key: None, origin: Origin::default(), at: now, hooked };
        let Deferred { resolve, reject, .. } = deferred();
        let waiter = Waiter { resolve, reject };
        if hooked || !inner.waiting.is_empty() {
            inner.waiting.insert(k, WaitingCall::Track(call, waiter));
        } else {
            let _ = track(inner, call, waiter, now);
        }
    }
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
    track_automatic(inner, &events, now);
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
    track_automatic(inner, &[Lifecycle::DailyActive], now);
}

/// Whether the `sampleRate` keeps this install's events: decided on a hash of the install id,
/// so an install is kept or left out whole.
fn sampled_in(inner: &Inner) -> bool {
    let rate = inner.engine.config().sample_rate;
    rate >= 1.0 || inner.engine.install_id().is_some_and(|id| sample_point(id) < rate)
}
