//! The start: the stored index, install id, profile and lifecycle record are read with the
//! session and the platform; then the tracker runs, tracks what happened since the last start
//! (install, update, ...), and reads the stored segments oldest first while it delivers. A read
//! that fails is tried again with a growing wait, and nothing is written meanwhile (it would
//! replace the stored index and segments).

use super::protocol::{Effect, Found, ListFor, Outcome, Phase, ReadFor};
use super::state::Loaded;
use super::Tracker;
use crate::core::engine::{Engine, IndexState, INDEX_KEY, INSTALL_KEY};
use crate::core::error::{Error, ErrorCode};
use crate::core::lifecycle::{at_start, daily_due, uninstall_url, utc_day, Lifecycle, Seen, Start, LIFECYCLE_KEY, STARTED_KEY};
use crate::core::profile::PROFILE_KEY;
use crate::core::session::SESSION_KEY;

/// Segments read per `get` after the start: 1,000 events at most, so delivery starts after the
/// first few milliseconds, not after the whole queue is read.
const LOAD_SEGMENTS: usize = 2;

impl Tracker {
    /// The first reads, all at once.
    pub(super) fn begin_start(&mut self) {
        // The stored queue first: it is on the way to `ready`.
        self.read_start(None);
        self.emit(Effect::ReadSession(vec![SESSION_KEY, STARTED_KEY]));
        self.emit(Effect::ReadPlatform);
    }

    fn read_start(&mut self, after_ms: Option<u64>) {
        let keys = [INDEX_KEY, INSTALL_KEY, PROFILE_KEY, LIFECYCLE_KEY].map(String::from).to_vec();
        self.emit(Effect::Read { keys, purpose: ReadFor::Start, after_ms });
    }

    pub(super) fn session_read(&mut self, found: Option<Found>, now: u64) {
        self.start.session = Some(found);
        self.continue_start(now);
    }

    pub(super) fn platform_read(&mut self, os: Option<String>, now: u64) {
        self.start.os = Some(os);
        self.continue_start(now);
    }

    pub(super) fn read(&mut self, purpose: ReadFor, result: Result<Found, String>, now: u64) {
        match purpose {
            ReadFor::Start => self.start_read(result, now),
            ReadFor::Rebuild(index) => {
                let loaded = result.map(|found| {
                    let segments = found.0.into_iter().map(|v| (v.key, v.text)).collect();
                    self.engine.rebuild(segments, index, now);
                    Loaded::Rebuilt
                });
                self.stored_read(loaded, now);
            }
            ReadFor::Segments => self.segments_read(result, now),
        }
    }

    /// The index, install id, profile and lifecycle record. An index whose checksum holds is
    /// read at once; any other (none, one without a checksum, or one that cannot be read) waits
    /// for the stored segment keys to be listed ([`Tracker::listed`]).
    fn start_read(&mut self, result: Result<Found, String>, now: u64) {
        let found = match result {
            Ok(found) => found,
            Err(why) => return self.stored_read(Err(why), now),
        };
        self.engine.adopt_install_id(found.text(INSTALL_KEY).as_deref());
        self.engine.adopt_profile(found.text(PROFILE_KEY).as_deref(), now);
        self.engine.adopt_lifecycle(found.text(LIFECYCLE_KEY).as_deref());
        let index = found.text(INDEX_KEY);
        match Engine::index_state(index.as_deref(), found.present(INDEX_KEY)) {
            IndexState::Readable => self.stored_read(Ok(Loaded::Stored(index)), now),
            state => {
                self.start.index = index;
                self.emit(Effect::ListSegments(ListFor::Start(state)));
            }
        }
    }

    pub(super) fn listed(&mut self, purpose: ListFor, keys: Option<Vec<String>>, now: u64) {
        match purpose {
            ListFor::Start(state) => {
                // Nothing is written until this is settled: a write numbered from a wrong
                // `next` would overwrite a stored segment.
                let Some(keys) = keys else {
                    return self.stored_read(Err("the stored segments could not be listed".into()), now);
                };
                if state == IndexState::Unreadable || !Engine::index_accounts_for(self.start.index.as_deref(), &keys) {
                    return self.emit(Effect::Read { keys, purpose: ReadFor::Rebuild(state), after_ms: None });
                }
                let index = self.start.index.take();
                self.start.listed = Some(keys);
                self.stored_read(Ok(Loaded::Stored(index)), now);
            }
            ListFor::Orphans => self.remove_orphans(&keys.unwrap_or_default()),
        }
    }

    /// The segments a crash left between a write's `set` and its `remove` (done, never named
    /// again), judged against the index read at start.
    fn remove_orphans(&mut self, keys: &[String]) {
        let orphans = Engine::orphan_segments(self.start.index.as_deref(), keys);
        if !orphans.is_empty() {
            self.emit(Effect::Remove(orphans));
        }
    }

    fn stored_read(&mut self, loaded: Result<Loaded, String>, now: u64) {
        if self.start.failures > 0 {
            // Reading again after a failure: a `shutdown()` meanwhile stops the tracker.
            if !self.shutdowns.is_empty() {
                return self.stop_unread();
            }
            if loaded.is_err() {
                self.start.failures += 1;
                return self.read_start(Some(read_again_ms(self.start.failures)));
            }
        } else {
            self.emit(Effect::Mark("inhouse:stored-read"));
        }
        self.start.stored = Some(loaded);
        self.continue_start(now);
    }

    /// Once the stored queue, the session and the platform are read: the session joins, and the
    /// start goes on.
    fn continue_start(&mut self, now: u64) {
        if !self.start.context_read {
            if self.start.stored.is_none() || self.start.session.is_none() || self.start.os.is_none() {
                return;
            }
            self.start.context_read = true;
            let session = self.start.session.take().flatten();
            self.sessions.adopt(session.as_ref().and_then(|found| found.text(SESSION_KEY)).as_deref());
            self.start.session = Some(session);
            self.ctx.os = self.start.os.take().flatten();
        }
        if let Some(loaded) = self.start.stored.take() {
            self.restored(loaded, now);
        }
    }

    /// The stored queue read (or why not): the queue is rebuilt, the calls that waited are
    /// admitted, delivery resumes in the next task (what waits for `ready` runs first).
    fn restored(&mut self, loaded: Result<Loaded, String>, now: u64) {
        let mut load_index = false;
        let read = loaded.is_ok();
        match loaded {
            Ok(Loaded::Rebuilt) => {}
            Ok(Loaded::Stored(index)) => {
                self.engine.begin_restore(index.as_deref(), now);
                self.start.index = index;
                load_index = true;
            }
            Err(why) => {
                let message = format!("could not read the stored queue (read again shortly; calls wait, nothing is written meanwhile): {why}");
                self.emit(Effect::ReportError(Error::new(ErrorCode::StorageError, message)));
                self.engine.hold_writes_until_restored();
            }
        }
        if read {
            self.started(now);
        }
        // The calls that waited for the start, in order.
        self.run_waiting(now, false);
        self.emit(Effect::Mark("inhouse:ready"));
        for reply in std::mem::take(&mut self.readies) {
            self.settle(reply, Outcome::Done);
        }
        if !read {
            // Still `Starting`: calls wait (in order) until the read works.
            self.start.failures = 1;
            return self.read_start(Some(read_again_ms(1)));
        }
        // A `shutdown()` that came before the queue was read: it stores what was tracked
        // meanwhile, then stops.
        if !self.shutdowns.is_empty() {
            return self.continue_shutdown(now);
        }
        self.timer_at = Some(now);
        self.emit(Effect::SetTimer { delay_ms: 0 });
        if load_index {
            self.load_next(Some(0));
        }
    }

    /// The stored state is read: the tracker runs, and what happened since the last start
    /// (install, update, ...) is tracked before the calls that waited.
    fn started(&mut self, now: u64) {
        self.phase = Phase::Running;
        self.sync_context();
        // No marker of this browser run: the browser started (or the extension was installed,
        // updated or reloaded, which also empties chrome.storage.session).
        let browser_started =
            self.start.session.as_ref().is_some_and(|s| s.as_ref().is_some_and(|found| !found.present(STARTED_KEY))) && !self.start.session_cleared;
        let new_install = self.engine.new_install();
        self.lifecycle(browser_started, new_install, now);
        let uninstall_url = self.uninstall_url_now(now);
        self.emit(Effect::StartOfRun { daily_alarm: self.engine.config().auto_events.daily, uninstall_url });
    }

    /// `shutdown()` while the stored queue could not be read: nothing can be stored, so the
    /// calls that waited are refused, and the tracker stops.
    fn stop_unread(&mut self) {
        self.phase = Phase::ShutDown;
        self.refuse_waiting(&Error::new(
            ErrorCode::ShutDown,
            "the tracker was shut down before the stored queue could be read; this call was not stored",
        ));
        for reply in std::mem::take(&mut self.shutdowns).into_iter().chain(std::mem::take(&mut self.settings)) {
            self.settle(reply, Outcome::Done);
        }
    }

    /// Reads the next stored segments the start left in storage (oldest first), or, when all
    /// are read, runs what needed the whole queue and removes the orphans.
    fn load_next(&mut self, after_ms: Option<u64>) {
        if self.phase != Phase::Running {
            return;
        }
        let keys = self.engine.unloaded_keys(LOAD_SEGMENTS);
        if keys.is_empty() {
            // The calls that needed the whole queue (a `dedupKey`) run in the next turn of the
            // loop: the one the last segment read asked for, or the start's (in the next task,
            // so that what waits for `ready` runs first).
            self.emit(Effect::Mark("inhouse:queue-loaded"));
            // The orphans, from the keys the start listed if it did.
            return match self.start.listed.take() {
                Some(keys) => self.remove_orphans(&keys),
                None => self.emit(Effect::ListSegments(ListFor::Orphans)),
            };
        }
        self.start.segment_keys = keys.len();
        self.emit(Effect::Read { keys, purpose: ReadFor::Segments, after_ms });
    }

    /// A failed read is retried with a growing wait (the segments stay named by the stored index
    /// meanwhile, so nothing is lost if the worker stops).
    fn segments_read(&mut self, result: Result<Found, String>, now: u64) {
        if self.phase != Phase::Running {
            return;
        }
        match result {
            Ok(mut found) => {
                self.start.segment_failures = 0;
                self.engine.load_segments(|key| found.take(key), self.start.segment_keys, now);
                self.pass_notes();
                self.pump_soon();
                self.load_next(None);
            }
            Err(why) => {
                if self.start.segment_failures == 0 {
                    let message = format!("could not read the stored queue's segments (kept in storage, read again later): {why}");
                    self.emit(Effect::ReportError(Error::new(ErrorCode::StorageError, message)));
                }
                self.start.segment_failures += 1;
                self.load_next(Some(1_000u64 << self.start.segment_failures.min(6)));
            }
        }
    }

    /// Other code removed the SDK's keys from `chrome.storage.session`: the marker of this
    /// browser run and the session are written again, so the next start does not take the clear
    /// for a browser start.
    pub(super) fn session_storage_lost(&mut self) {
        match self.phase {
            Phase::Starting => self.start.session_cleared = true,
            Phase::Running => {
                self.sessions.unstored();
                self.emit(Effect::MarkBrowserRun);
                self.pump_soon();
            }
            Phase::ShutDown => {}
        }
    }

    /// The automatic events due at this start (install, update, browser update, browser start,
    /// the day's first), stored with the record of what this start saw. Nothing while opted out.
    fn lifecycle(&mut self, browser_started: bool, new_install: bool, now: u64) {
        if !self.engine.enabled() {
            return;
        }
        let start = Start {
            version: self.ctx.extension_version.as_deref(),
            browser_version: self.ctx.browser_version.as_deref(),
            day: utc_day(now),
            browser_started,
            new_install,
        };
        let (events, seen) = at_start(self.engine.lifecycle(), &start, self.engine.config().auto_events);
        self.engine.set_lifecycle(seen);
        self.track_automatic(&events, now);
    }

    /// The user opted in: an install never counted, because it started opted out, is counted now.
    pub(super) fn lifecycle_at_consent(&mut self, now: u64) {
        if self.engine.lifecycle().is_none() {
            self.lifecycle(false, true, now);
        }
    }

    /// The day's `$daily_active`, once the UTC day changed since the last one (a worker that
    /// lives across midnight, or the daily alarm's wake-up).
    pub(super) fn daily(&mut self, now: u64) {
        let day = utc_day(now);
        let last = self.engine.lifecycle().and_then(|s| s.daily);
        if !self.engine.enabled() || daily_due(last, day, self.engine.config().auto_events).is_none() {
            return;
        }
        let seen = Seen { daily: Some(day), ..self.engine.lifecycle().cloned().unwrap_or_default() };
        self.engine.set_lifecycle(seen);
        self.track_automatic(&[Lifecycle::DailyActive], now);
    }

    /// The `uninstallUrl` to give the browser now, if one is configured: with this install's id,
    /// version and age; opted out, the configured URL alone (nothing that joins the uninstall to
    /// the user's events).
    pub(super) fn uninstall_url_now(&self, now: u64) -> Option<String> {
        let base = self.engine.config().uninstall_url.as_ref()?;
        if !self.engine.enabled() {
            return Some(base.clone());
        }
        let installed = self.engine.lifecycle().and_then(|s| s.installed);
        let version = self.ctx.extension_version.as_deref();
        Some(uninstall_url(base, self.engine.install_id(), version, installed, utc_day(now)))
    }
}

/// The wait before the `failures`th read again of the stored queue: 1 s, 2 s, ... about a minute.
fn read_again_ms(failures: u32) -> u64 {
    500u64 << failures.min(7)
}
