//! What the engine says of itself: when it next needs attention, whether a flush can answer,
//! its counters and state.

use super::*;

impl Engine {
    /// When the engine next needs attention (a write or a send becomes due), if ever.
    pub fn next_wakeup(&self, now: u64) -> Option<u64> {
        let mut at: Option<u64> = None;
        let mut consider = |t: u64| at = Some(at.map_or(t, |a| a.min(t)));
        if self.store.writing.is_none() && !self.store.unread {
            // Due now exactly when `take_write(now, false)` would write (including a full batch of
            // done-marks, not only a forced one).
            if self.queue.pending_count > 0 || self.consent.enabled != self.consent.enabled_persisted || self.marks_due_now() {
                consider(now);
            } else if let Some(t) = self.store.dirty_since {
                consider(t + ACK_DELAY_MS);
            }
        }
        // At the in-flight cap (the full concurrency, or the single probe after a failure or
        // during a pause) no send can be due: the next answer is what comes next. Reporting a
        // past time here (a due probe, a sendable event) would make the edge spin.
        if self.consent.enabled && self.has_unsent() && self.delivery.in_flight < self.send_cap() {
            match self.delivery.gate {
                Gate::Paused { probe_at } => consider(probe_at),
                Gate::Backoff { until, .. } if until > now => consider(until),
                Gate::Offline => consider(now + OFFLINE_RECHECK_MS),
                _ => {
                    if let Some(t) = self.earliest_sendable() {
                        consider(t.max(now));
                    }
                }
            }
        }
        at
    }

    /// Whether the done-marks (and whatever else waits to be stored) are to be written now,
    /// not after [`ACK_DELAY_MS`]: a forced write, a full batch, or a queue that just became
    /// empty (nothing out, nothing left: the last marks of a burst are written at once, so a
    /// worker stopped right after it resends nothing; a drain still writes once per batch).
    pub(super) fn marks_due_now(&self) -> bool {
        let drained = self.delivery.in_flight == 0 && self.queue.live_count == 0 && self.queue.pending_count == 0;
        self.store.dirty_marks > 0 && (self.store.force_write || self.store.dirty_marks >= self.store.ack_batch || drained)
    }

    /// The most events a stopped worker sends again: the requests out and the done-marks not yet
    /// stored together never exceed `concurrency` + the done-mark batch. Sending waits for the
    /// write that stores the marks (`send_cap`; a full batch of marks is always due), so a slow
    /// storage or a busy worker cannot widen the window.
    pub(super) fn resend_bound(&self) -> usize {
        self.config.concurrency + self.store.ack_batch
    }

    /// `Some` when `flush` can answer: the queue is empty and durable, or delivery is blocked.
    pub fn flush_status(&mut self, now: u64) -> Option<FlushStatus> {
        let queued = self.queue.live_count + self.queue.unloaded_live + self.queue.pending_count;
        if self.store.unread {
            return Some(FlushStatus { status: "blocked", reason: Some(BlockReason::Storage), retry_at: None, queued });
        }
        let busy_writing = self.store.writing.is_some() || self.queue.pending_count > 0;
        if queued == 0 && !busy_writing && self.store.dirty_marks == 0 && self.delivery.in_flight == 0 {
            return Some(FlushStatus { status: "empty", reason: None, retry_at: None, queued: 0 });
        }
        if queued == 0 {
            self.store.force_write = self.store.dirty_marks > 0;
            return None;
        }
        // Still reading the stored queue: the answer comes once it is read.
        if self.delivery.in_flight > 0 || busy_writing || self.loading() {
            return None;
        }
        let blocked = |reason, retry_at| Some(FlushStatus { status: "blocked", reason: Some(reason), retry_at, queued });
        if !self.consent.enabled {
            return blocked(BlockReason::Disabled, None);
        }
        match self.delivery.gate {
            Gate::Paused { probe_at } => blocked(BlockReason::Paused, Some(probe_at)),
            Gate::Offline => blocked(BlockReason::Offline, Some(now + OFFLINE_RECHECK_MS)),
            Gate::Backoff { until, .. } if until > now => blocked(BlockReason::Backoff, Some(until)),
            _ => match self.earliest_sendable() {
                Some(t) if t > now => blocked(BlockReason::Backoff, Some(t)),
                _ => None,
            },
        }
    }

    /// Counters and state.
    pub fn stats(&self, now: u64) -> Stats {
        let state = if !self.consent.enabled {
            "disabled"
        } else {
            match self.delivery.gate {
                Gate::Paused { .. } => "paused",
                Gate::Offline => "offline",
                Gate::Backoff { until, .. } if until > now => "backoff",
                _ if self.delivery.in_flight > 0 => "sending",
                _ if self.queue.live_count + self.queue.unloaded_live > 0 => "ready",
                _ => "idle",
            }
        };
        Stats {
            state,
            enabled: self.consent.enabled,
            queued: self.queue.live_count + self.queue.unloaded_live + self.queue.pending_count,
            pending_write: self.queue.pending_count + self.store.writing.as_ref().map_or(0, |w| w.tickets),
            in_flight: self.delivery.in_flight,
            bytes_stored: self.queue.live_bytes,
            delivered: self.report.totals.delivered,
            retried: self.report.totals.retried,
            dropped: self.report.totals.dropped.clone(),
            storage_writes: self.store.storage_writes,
            requests: self.delivery.requests,
            next_attempt_at: if self.has_unsent() { self.next_wakeup(now) } else { None },
            last_error: self.report.last_error.clone(),
            // The tracker's throttle counts these (`Tracker::stats`).
            exceptions_throttled: 0,
            plan_violations: 0,
        }
    }
}
