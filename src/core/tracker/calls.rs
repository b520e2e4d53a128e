//! The calls that make events and change what they carry: `track` (built in the session it
//! joins; `page` and `captureException` become one), `identify`, `register`, `unregister`,
//! `reset` and `setEnabled`.
//!
//! A call runs at once, or waits in `Tracker::waiting`, in order, when it cannot run yet: before
//! the stored queue and profile are read; a `track` with a `dedupKey` while stored segments are
//! still being read; an event that `beforeSend` must see first (the tracker asks the shell to
//! run the hook, [`Effect::BeforeSend`], and waits for its answer); and any call made while
//! others wait, so that calls keep their order.

use super::protocol::{Effect, Outcome, Phase, ProfileChange, Reply, TrackCall};
use super::state::{HookWait, WaitingCall};
use super::Tracker;
use crate::core::engine::Admission;
use crate::core::error::{Error, ErrorCode, Result};
use crate::core::event::{build_named_event, EventName, NewEvent, Props};
use crate::core::exception::Thrown;
use crate::core::lifecycle::{sample_point, LIFECYCLE_EVENTS};
use crate::core::origin::{relayed, Origin, PageUrl, Sender, Source};
use crate::core::profile::{check_user_id, Profile};
use crate::core::session::Activity;

/// What stands in for the install and session ids while a call made before they were read is
/// checked: an id of the same length.
const PLACEHOLDER_ID: &str = "00000000-0000-4000-8000-000000000000";

fn shut_down() -> Error {
    Error::new(ErrorCode::ShutDown, "the tracker was shut down; create a new one")
}

impl Tracker {
    /// Where a call came from: the relayed call's `sender`, or the background.
    fn origin(&self, from: Option<Sender>) -> Origin {
        match from {
            None => Origin::default(),
            Some(sender) => relayed(&sender, &self.facts.extension, &self.facts.pages, self.engine.config().page_url),
        }
    }

    /// `track`: built now, or checked now and built in its turn.
    pub(super) fn track(&mut self, mut call: TrackCall, from: Option<Sender>, reply: Reply, now: u64) {
        if from.is_some() {
            call.origin = self.origin(from);
        }
        if let Err(e) = self.follow_plan(&call, now) {
            return self.settle(reply, Outcome::Failed(e));
        }
        self.admit(call, Some(reply), now);
    }

    /// A `$pageview` with the page's `name` and `title`. A web page's title says as much as its
    /// path: a content script's page keeps it only with the same opt-in (`pageUrl: 'path'` or
    /// `'full'`).
    pub(super) fn page(&mut self, name: Option<String>, title: Option<String>, props: Props, from: Option<Sender>, at: u64, reply: Reply) {
        let origin = self.origin(from);
        let private_page = origin.source == Source::ContentScript && self.engine.config().page_url == PageUrl::Origin;
        let title = if private_page { None } else { title };
        let members: Vec<(&str, &str)> = [("name", name.as_deref()), ("title", title.as_deref())]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.filter(|v| !v.is_empty())?)))
            .collect();
        let props = props.merged(&Props::of_strings(&members));
        self.admit(TrackCall { name: EventName::Sdk("$pageview"), props, dedup_key: None, origin, at }, Some(reply), at);
    }

    /// An error as a `$exception` event: its type, message and stack reduced to this extension's
    /// own frames. The same error repeated within a minute is counted, not stored again; an
    /// error from a content script with no frame of this extension is the host page's, and is
    /// ignored (resolves `null`). The token secret never appears in it.
    pub(super) fn exception(&mut self, thrown: Thrown, props: Props, from: Option<Sender>, at: u64, reply: Reply) {
        let origin = self.origin(from);
        let thrown = thrown.redacted(&self.engine.credentials().token_secret);
        let extension = &self.facts.extension;
        let ours = origin.source != Source::ContentScript || !thrown.own_frames(extension).is_empty();
        if !ours || !self.exceptions.admit(thrown.fingerprint(extension), at) {
            return self.settle(reply, Outcome::Nothing);
        }
        let props = props.merged(&thrown.props(&self.facts.extension));
        self.admit(TrackCall { name: EventName::Sdk("$exception"), props, dedup_key: None, origin, at }, Some(reply), at);
    }

    /// Admits a checked call: built now, or checked now and queued to be built in its turn.
    fn admit(&mut self, call: TrackCall, reply: Option<Reply>, now: u64) {
        if self.phase == Phase::ShutDown {
            return self.settle_some(reply, Outcome::Failed(shut_down()));
        }
        let hooked = self.hooked();
        if self.must_wait(&call, hooked) {
            match self.check_as(&call, None) {
                Ok(()) => self.waiting.push_back(WaitingCall::Track { call, hooked, reply }),
                Err(e) => return self.settle_some(reply, Outcome::Failed(e)),
            }
        } else if !self.track_now(call, reply, now) {
            return;
        }
        self.pump_soon();
    }

    /// `identify`: the profile change and its `$identify` event, checked first with the user it
    /// identifies (a call that cannot be stored changes nothing); its promise answers for both.
    pub(super) fn identify(&mut self, user_id: String, traits: Props, from: Option<Sender>, at: u64, reply: Reply) {
        if self.phase == Phase::ShutDown {
            return self.settle(reply, Outcome::Failed(shut_down()));
        }
        let call = TrackCall { name: EventName::Sdk("$identify"), props: traits, dedup_key: None, origin: self.origin(from), at };
        if let Err(e) = check_user_id(&user_id).and_then(|()| self.check_as(&call, Some(&user_id))) {
            return self.settle(reply, Outcome::Failed(e));
        }
        let hooked = self.hooked();
        if self.must_wait(&call, hooked) {
            self.waiting.push_back(WaitingCall::Identify { user_id, call, hooked, reply });
        } else {
            self.change_profile(|p| {
                p.identify(user_id);
                Ok(())
            })
            .ok();
            self.track_now(call, Some(reply), at);
        }
        self.pump_soon();
    }

    /// `register`, `unregister`, `reset`: now, or in their turn; settles once stored.
    pub(super) fn profile(&mut self, change: ProfileChange, reply: Reply) {
        if self.phase == Phase::ShutDown {
            return self.settle(reply, Outcome::Failed(shut_down()));
        }
        if self.phase == Phase::Starting || !self.waiting.is_empty() {
            self.waiting.push_back(WaitingCall::Profile(change, reply));
        } else {
            self.apply_profile_change(change, reply);
        }
        self.pump_soon();
    }

    fn apply_profile_change(&mut self, change: ProfileChange, reply: Reply) {
        let result = match change {
            ProfileChange::Register(props) => self.change_profile(|p| p.register(&props)),
            ProfileChange::Unregister(key) => self.change_profile(|p| {
                p.unregister(&key);
                Ok(())
            }),
            ProfileChange::Reset => {
                self.sessions.end();
                self.change_profile(|p| {
                    *p = Profile::default();
                    Ok(())
                })
            }
        };
        match result {
            Ok(()) => self.settings.push(reply),
            Err(e) => self.settle(reply, Outcome::Failed(e)),
        }
    }

    /// Changes the profile; the events tracked from now on carry it.
    fn change_profile(&mut self, change: impl FnOnce(&mut Profile) -> Result<()>) -> Result<()> {
        let result = self.engine.change_profile(change);
        self.sync_context();
        result
    }

    /// `setEnabled`: while other calls wait their turn, the choice takes its own (a call made
    /// before it is stored, or not, by the choice it was made under).
    pub(super) fn consent(&mut self, enabled: bool, purge: bool, reply: Reply, now: u64) {
        if self.phase == Phase::Running && !self.waiting.is_empty() {
            self.waiting.push_back(WaitingCall::Consent { enabled, purge, reply });
        } else {
            self.settings.push(reply);
            self.set_consent(enabled, purge, now);
            self.answer_settings();
        }
        self.pump_soon();
    }

    /// Applies the opt-in choice now: the engine's consent (a purge forgets the install id and
    /// the profile), the install counted on a late opt-in, the uninstall URL following it.
    fn set_consent(&mut self, enabled: bool, purge: bool, now: u64) {
        self.engine.set_enabled(enabled, purge, now);
        // A purge forgets the install id: later events carry the new one.
        self.sync_context();
        if self.phase != Phase::Running {
            return;
        }
        if enabled {
            self.lifecycle_at_consent(now);
        }
        if let Some(url) = self.uninstall_url_now(now) {
            self.emit(Effect::SetUninstallUrl(url));
        }
    }

    /// Whether a call made now goes through `beforeSend`.
    fn hooked(&self) -> bool {
        self.facts.before_send && self.hook.is_none()
    }

    /// Whether a call must wait its turn rather than run now.
    fn must_wait(&self, call: &TrackCall, hooked: bool) -> bool {
        self.phase == Phase::Starting || !self.waiting.is_empty() || hooked || (call.dedup_key.is_some() && self.engine.loading())
    }

    /// Checks a call that waits its turn now, so that a bad event rejects at once: the stored ids
    /// may not be known yet, ids of the right length stand in for them. With `user_id`: the
    /// `$identify` event of the user `identify` sets.
    fn check_as(&mut self, call: &TrackCall, user_id: Option<&str>) -> Result<()> {
        let mut ctx = self.ctx.clone();
        if let Some(user_id) = user_id {
            ctx.profile.identify(user_id.to_string());
        }
        ctx.install_id = Some(PLACEHOLDER_ID.into());
        ctx.session_id = Some(PLACEHOLDER_ID.into());
        let max = self.engine.config().limits.max_event_bytes;
        let (props, dedup) = (call.props.clone(), call.dedup_key.as_deref());
        build_named_event(&call.name, props, dedup, &ctx, &call.origin, call.at, max, &mut self.rng).map(drop)
    }

    /// Builds `call`'s event in the session it joins: an event from a page or a content script is
    /// user activity and extends the session; the background's own joins without extending it.
    fn build(&mut self, call: TrackCall) -> Result<NewEvent> {
        let activity = if call.origin.source == Source::Background { Activity::Background } else { Activity::User };
        let session = self.sessions.join(call.at, activity, &mut self.rng);
        if self.ctx.session_id.as_deref() != Some(session) {
            self.ctx.session_id = Some(session.to_string());
        }
        let max = self.engine.config().limits.max_event_bytes;
        build_named_event(&call.name, call.props, call.dedup_key.as_deref(), &self.ctx, &call.origin, call.at, max, &mut self.rng)
    }

    /// Builds and offers `call` (one `beforeSend` has seen already, or need not); its promise
    /// settles when the write that stores it commits. An install the `sampleRate` leaves out
    /// stores nothing (`sampled`), except its lifecycle events. Returns whether it was accepted.
    fn track_now(&mut self, call: TrackCall, reply: Option<Reply>, now: u64) -> bool {
        if !self.sampled(&call) {
            self.settle_some(reply, Outcome::Track { id: String::new(), status: "sampled" });
            return true;
        }
        self.build_and_admit(call, reply, now)
    }

    fn build_and_admit(&mut self, call: TrackCall, reply: Option<Reply>, now: u64) -> bool {
        match self.build(call) {
            Ok(event) => {
                let answer = |status| Outcome::Track { id: event.id().to_string(), status };
                match self.engine.offer(&event, now) {
                    Admission::Pending(ticket) => {
                        if reply.is_some() {
                            self.tickets.push_back((ticket, reply));
                        }
                    }
                    Admission::Duplicate => self.settle_some(reply, answer("deduplicated")),
                    Admission::Disabled => self.settle_some(reply, answer("disabled")),
                }
                true
            }
            Err(e) => {
                self.settle_some(reply, Outcome::Failed(e));
                false
            }
        }
    }

    pub(super) fn settle_some(&mut self, reply: Option<Reply>, outcome: Outcome) {
        if let Some(reply) = reply {
            self.settle(reply, outcome);
        }
    }

    /// Whether the `sampleRate` keeps `call` (counted when it does not): lifecycle events always.
    /// Decided on a hash of the install id, so an install is kept or left out whole.
    fn sampled(&mut self, call: &TrackCall) -> bool {
        let lifecycle = matches!(call.name, EventName::Sdk(name) if LIFECYCLE_EVENTS.contains(&name));
        let rate = self.engine.config().sample_rate;
        if lifecycle || rate >= 1.0 || self.engine.install_id().is_some_and(|id| sample_point(id) < rate) {
            return true;
        }
        self.engine.count_unstored(true);
        false
    }

    /// Runs the calls that wait, in order, as far as they can go now. Stops at an event
    /// `beforeSend` must see ([`Effect::BeforeSend`]), and goes on when the shell answers. With
    /// `forced` (shutdown), a `dedupKey` call does not wait for the stored segments (it is
    /// checked against those read so far).
    pub(super) fn run_waiting(&mut self, now: u64, forced: bool) {
        while self.phase == Phase::Running && self.hook.is_none() {
            let blocked = match self.waiting.front() {
                None => true,
                Some(WaitingCall::Track { call, .. }) => !forced && call.dedup_key.is_some() && self.engine.loading(),
                Some(_) => false,
            };
            if blocked {
                return;
            }
            match self.waiting.pop_front() {
                Some(WaitingCall::Track { call, hooked, reply }) => self.track_hooked(call, hooked, reply, None, now),
                Some(WaitingCall::Consent { enabled, purge, reply }) => {
                    self.settings.push(reply);
                    self.set_consent(enabled, purge, now);
                }
                Some(WaitingCall::Profile(change, reply)) => self.apply_profile_change(change, reply),
                Some(WaitingCall::Identify { user_id, call, hooked, reply }) => match self.check_as(&call, Some(&user_id)) {
                    Ok(()) => {
                        let before = self.engine.profile().clone();
                        let _ = self.change_profile(|p| {
                            p.identify(user_id);
                            Ok(())
                        });
                        self.track_hooked(call, hooked, Some(reply), Some(before), now);
                    }
                    Err(e) => self.settle(reply, Outcome::Failed(e)),
                },
                None => {}
            }
        }
    }

    /// [`Tracker::track_now`] after `beforeSend`, if it is to see the call: the tracker asks
    /// the shell to run it and waits for [`Tracker::before_send_done`].
    fn track_hooked(&mut self, call: TrackCall, hooked: bool, reply: Option<Reply>, profile_before: Option<Profile>, now: u64) {
        if !hooked {
            let accepted = self.track_now(call, reply, now);
            return self.identified(accepted, profile_before);
        }
        if !self.sampled(&call) {
            return self.settle_some(reply, Outcome::Track { id: String::new(), status: "sampled" });
        }
        self.emit(Effect::BeforeSend { name: call.name.clone(), props: call.props.clone() });
        self.hook = Some(HookWait { call, reply, profile_before });
    }

    /// `beforeSend` answered: it may have edited the event, dropped it (`filtered`), or failed
    /// (the event goes on unchanged, and `onError` hears why).
    pub(super) fn before_send_done(&mut self, seen: Result<Option<(Option<EventName>, crate::core::event::Props)>>, now: u64) {
        let Some(HookWait { call, reply, profile_before }) = self.hook.take() else { return };
        // The hook may have shut the tracker down.
        if self.phase == Phase::ShutDown {
            let e = Error::new(ErrorCode::ShutDown, "the tracker was shut down (by beforeSend) before this call could be stored");
            return self.settle_some(reply, Outcome::Failed(e));
        }
        let call = match seen {
            Ok(Some((name, props))) => TrackCall { name: name.unwrap_or(call.name), props, ..call },
            Ok(None) => {
                self.engine.count_unstored(false);
                return self.settle_some(reply, Outcome::Track { id: String::new(), status: "filtered" });
            }
            Err(e) => {
                self.engine.report_error(e, call.at);
                self.pass_notes();
                call
            }
        };
        let accepted = self.build_and_admit(call, reply, now);
        self.identified(accepted, profile_before);
        self.run_waiting(now, !self.shutdowns.is_empty());
        self.pump_soon();
    }

    /// An `identify` whose event could not be stored (`beforeSend` made it one that cannot be)
    /// changes nothing: the profile goes back.
    fn identified(&mut self, accepted: bool, profile_before: Option<Profile>) {
        if let (false, Some(before)) = (accepted, profile_before) {
            let _ = self.change_profile(|p| {
                *p = before;
                Ok(())
            });
        }
    }

    /// Tracks the SDK's automatic events from the background, before every call that waits (they
    /// tell what happened before those calls); nobody waits for their answers.
    pub(super) fn track_automatic(&mut self, events: &[crate::core::lifecycle::Lifecycle], now: u64) {
        let hooked = self.hooked();
        for (k, event) in events.iter().enumerate() {
            let call = TrackCall { name: EventName::Sdk(event.name()), props: event.props(), dedup_key: None, origin: Origin::default(), at: now };
            if hooked || !self.waiting.is_empty() {
                self.waiting.insert(k, WaitingCall::Track { call, hooked, reply: None });
            } else {
                let _ = self.track_now(call, None, now);
            }
        }
    }

    /// Refuses every call that waits with `e` (the tracker stopped before they could run).
    pub(super) fn refuse_waiting(&mut self, e: &Error) {
        for call in std::mem::take(&mut self.waiting) {
            match call {
                WaitingCall::Track { reply, .. } => self.settle_some(reply, Outcome::Failed(e.clone())),
                WaitingCall::Profile(_, reply) | WaitingCall::Identify { reply, .. } => self.settle(reply, Outcome::Failed(e.clone())),
                // A choice that could not be stored: its promise settles as a shutdown's does.
                WaitingCall::Consent { reply, .. } => self.settle(reply, Outcome::Done),
            }
        }
    }

    /// The context stamped on new events follows the engine's install id (read at start, new
    /// after an opt-out with purge) and profile.
    pub(super) fn sync_context(&mut self) {
        self.ctx.install_id = self.engine.install_id().map(String::from);
        if self.ctx.profile != *self.engine.profile() {
            self.ctx.profile = self.engine.profile().clone();
        }
    }
}
