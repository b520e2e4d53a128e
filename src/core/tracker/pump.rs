//! The loop's turn ([`Tracker::pump`]): the calls that wait, the write and the sends the engine
//! wants now, the answers to flushes and stored settings, the session's storing, and the next
//! wake-up (a timer, and an alarm backstop that survives the worker). Also the outcomes of
//! writes, `flush`, `shutdown`, and the engine's notes made into effects.

use super::protocol::{Effect, Outcome, Phase, Reply, Target, ALARM_CHECK_MS, MIN_ALARM_DELAY_MS};
use super::{Queued, Tracker};
use crate::core::config::Credentials;
use crate::core::engine::{Note, TicketResult};
use crate::core::error::{Error, ErrorCode};
use std::rc::Rc;

impl Tracker {
    /// Asks for a turn of the loop in a microtask: a burst of synchronous calls shares one write.
    pub(super) fn pump_soon(&mut self) {
        if self.pump_queued || self.phase != Phase::Running {
            return;
        }
        self.pump_queued = true;
        self.emit(Effect::PumpSoon);
    }

    /// Starts every write and send the engine wants now, passes on its notes, answers flushes
    /// and stored settings, stores the session, and sets the next wake-up.
    pub(super) fn pump(&mut self, now: u64, online: bool) {
        if self.phase == Phase::Running {
            self.daily(now);
        }
        self.run_waiting(now, false);
        if self.phase != Phase::Running {
            return;
        }
        if self.writing.is_none() {
            self.start_write(now, !self.flushes.is_empty());
        }
        while let Some(send) = self.engine.poll_send(now, online) {
            self.emit(Effect::Send(send, self.target.clone()));
        }
        self.pass_notes();
        self.answer_flushes(now);
        self.answer_settings();
        if !self.session_writing {
            self.store_session();
        }
        self.reschedule(now);
    }

    /// Asks for the write the engine wants now (`force`: whatever waits, at once), if any.
    fn start_write(&mut self, now: u64, force: bool) -> bool {
        let Some(mut plan) = self.engine.take_write_plan(now, force) else { return false };
        self.writing = Some(std::mem::take(&mut plan.remove));
        self.emit(Effect::Write(Box::new(plan)));
        true
    }

    /// A write is done: the keys it replaced are removed, its events' promises settle, and
    /// shutdown and delivery go on.
    pub(super) fn written(&mut self, result: Result<(), String>, now: u64) {
        let remove = self.writing.take().unwrap_or_default();
        if result.is_ok() && !remove.is_empty() {
            self.emit(Effect::Remove(remove));
        }
        let result = result.map_err(|e| if e.is_empty() { "unknown error".into() } else { e });
        self.engine.write_done(result, now);
        self.pass_notes();
        self.continue_shutdown(now);
        self.pump_soon();
    }

    /// Stores the session while it changes: one write out at a time, the latest state each time.
    fn store_session(&mut self) {
        if let Some(text) = self.sessions.take_changed() {
            self.session_writing = true;
            self.emit(Effect::StoreSession(text));
        }
    }

    /// A session write is done (a failure leaves the session to this worker's memory).
    pub(super) fn session_stored(&mut self) {
        self.session_writing = false;
        self.store_session();
    }

    /// `flush()`: answered once the queue is empty and stored, or delivery is blocked.
    pub(super) fn flush(&mut self, retry_now: bool, reply: Reply, now: u64) {
        if self.phase == Phase::ShutDown {
            return self.settle(reply, Outcome::Failed(Error::new(ErrorCode::ShutDown, "the tracker was shut down")));
        }
        if retry_now {
            self.engine.retry_network_now(now);
        }
        self.flushes.push(reply);
        // The stored queue could not be read (read again meanwhile): answered at once, blocked.
        if self.engine.writes_held() {
            self.answer_flushes(now);
        }
        self.pump_soon();
    }

    fn answer_flushes(&mut self, now: u64) {
        if self.flushes.is_empty() || self.writing.is_some() {
            return;
        }
        let Some(status) = self.engine.flush_status(now) else { return };
        for reply in std::mem::take(&mut self.flushes) {
            self.settle(reply, Outcome::Flushed(status.clone()));
        }
    }

    /// Settles the `setEnabled`, `register`, `unregister` and `reset` calls once the opt-in
    /// choice and the profile are stored (or the tracker is shut down).
    pub(super) fn answer_settings(&mut self) {
        let stored = self.phase == Phase::Running && self.engine.settings_persisted();
        if stored || self.phase == Phase::ShutDown {
            for reply in std::mem::take(&mut self.settings) {
                self.settle(reply, Outcome::Done);
            }
        }
    }

    /// `ready()`: once the stored queue is read (or could not be, and is read again).
    pub(super) fn ready(&mut self, reply: Reply) {
        if self.phase == Phase::Starting {
            self.readies.push(reply);
        } else {
            self.settle(reply, Outcome::Done);
        }
    }

    pub(super) fn set_credentials(&mut self, credentials: Credentials) {
        self.engine.set_credentials(credentials.clone());
        self.target = Rc::new(Target { credentials, ..(*self.target).clone() });
        self.pump_soon();
    }

    /// Other code removed the SDK's data from `chrome.storage.local`: the queue in memory is
    /// written again.
    pub(super) fn storage_lost(&mut self, now: u64) {
        if self.phase != Phase::Running {
            return;
        }
        self.engine.storage_lost(now);
        self.pass_notes();
        self.pump_soon();
    }

    /// `shutdown()`: stores what is pending, stops timers and the alarm, refuses further calls.
    pub(super) fn shutdown(&mut self, reply: Reply, now: u64) {
        self.shutdowns.push(reply);
        self.continue_shutdown(now);
    }

    /// While `shutdown` calls wait: starts the next (forced) write, or, when nothing is left to
    /// write, stops the tracker and settles them.
    pub(super) fn continue_shutdown(&mut self, now: u64) {
        if self.shutdowns.is_empty() {
            return;
        }
        // What waits its turn is stored before the tracker stops, a `dedupKey` call too (checked
        // against the segments read so far): a possible duplicate rather than a lost call.
        self.run_waiting(now, true);
        // Before the stored queue is read nothing may be written (it would overwrite the stored
        // index): the start continues the shutdown.
        if self.writing.is_some() || self.phase == Phase::Starting || self.start_write(now, true) {
            return;
        }
        self.phase = Phase::ShutDown;
        if self.timer_at.take().is_some() {
            self.emit(Effect::ClearTimer);
        }
        self.alarm_at = None;
        self.emit(Effect::ClearAlarm);
        // Nothing is left waiting (the forced run took them all) unless `beforeSend` is still
        // running; a ticket a write never carried would wait forever: refused.
        let stopped = Error::new(ErrorCode::ShutDown, "the tracker was shut down before this call could be stored");
        self.refuse_waiting(&stopped);
        self.make_notes_effects();
        for (_, reply) in std::mem::take(&mut self.tickets) {
            self.settle_some(reply, Outcome::Failed(stopped.clone()));
        }
        for reply in std::mem::take(&mut self.shutdowns) {
            self.settle(reply, Outcome::Done);
        }
        self.answer_settings();
    }

    /// Queues the engine's notes (promises settled, `onError`, `onDrop`), each made into its
    /// effect when it is polled.
    pub(super) fn pass_notes(&mut self) {
        let notes = self.engine.drain_notes();
        if !notes.is_empty() {
            self.effects.push_back(Queued::Notes(notes.into_iter()));
        }
    }

    /// One note as its effect (`None`: a settled ticket nobody waits for).
    pub(super) fn note_effect(&mut self, note: Note) -> Option<Effect> {
        match note {
            Note::Ticket { ticket, id, result } => {
                let at = self.tickets.binary_search_by_key(&ticket, |(t, _)| *t).ok()?;
                let reply = self.tickets[at].1.take()?;
                // Tickets settle about in order: the settled ones at the front go.
                while self.tickets.front().is_some_and(|(_, r)| r.is_none()) {
                    self.tickets.pop_front();
                }
                let status = match result {
                    TicketResult::Queued => "queued",
                    TicketResult::Evicted => "evicted",
                    TicketResult::Disabled => "disabled",
                    TicketResult::Failed(e) => return Some(Effect::Settle(reply, Outcome::Failed(e))),
                };
                Some(Effect::Settle(reply, Outcome::Track { id, status }))
            }
            Note::Error(e) => Some(Effect::ReportError(e)),
            Note::Dropped(d) => Some(Effect::ReportDrop(d)),
        }
    }

    /// The notes still queued made into effects now, in their place (before the tickets they
    /// settle are refused at shutdown).
    fn make_notes_effects(&mut self) {
        for queued in std::mem::take(&mut self.effects) {
            match queued {
                Queued::Notes(notes) => {
                    for note in notes {
                        if let Some(effect) = self.note_effect(note) {
                            self.emit(effect);
                        }
                    }
                }
                effect => self.effects.push_back(effect),
            }
        }
    }

    /// Sets the timer for the next wake-up and moves the alarm backstop when it changed.
    fn reschedule(&mut self, now: u64) {
        let Some(at) = self.engine.next_wakeup(now) else {
            if self.timer_at.take().is_some() {
                self.emit(Effect::ClearTimer);
            }
            if self.alarm_at.take().is_some() {
                self.emit(Effect::ClearAlarm);
            }
            return;
        };
        // A long wait is cut into checks, each of which makes sure the alarm still exists
        // (other code may call `chrome.alarms.clearAll()`).
        let fire_at = at.min(now + ALARM_CHECK_MS);
        if self.timer_at.is_none_or(|t| t > fire_at) {
            self.timer_at = Some(fire_at);
            self.emit(Effect::SetTimer { delay_ms: fire_at.saturating_sub(now) });
        }
        let want = at.max(now + MIN_ALARM_DELAY_MS);
        if self.alarm_at.is_none_or(|a| a.abs_diff(want) > 5_000 && (a < now || want < a)) {
            self.alarm_at = Some(want);
            self.alarm_checked_at = now;
            self.emit(Effect::SetAlarm { at: want });
        } else if now >= self.alarm_checked_at + ALARM_CHECK_MS {
            self.alarm_checked_at = now;
            let at = self.alarm_at.unwrap_or(want);
            self.emit(Effect::EnsureAlarm { at });
        }
    }
}
