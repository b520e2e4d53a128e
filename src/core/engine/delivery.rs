//! The delivery gate: what may be sent now, what an answer does to it (backoff, `Retry-After`,
//! pauses, probes), and the per-event accounting of network failures.

use super::gate::*;
use super::*;

impl Engine {
    /// The next request to send, if delivery may proceed now. Call until `None`.
    pub fn poll_send(&mut self, now: u64, online: bool) -> Option<Send> {
        if !self.consent.enabled {
            return None;
        }
        match self.delivery.gate {
            Gate::Paused { probe_at } if now < probe_at => return None,
            Gate::Backoff { until, .. } if now < until => return None,
            _ if !online => {
                self.delivery.gate = Gate::Offline;
                return None;
            }
            _ => {}
        }
        if self.delivery.gate == Gate::Offline {
            self.delivery.gate = Gate::Open;
        }
        if self.delivery.in_flight >= self.send_cap() {
            return None;
        }
        // A slot sent before and due again goes first: it is older than every fresh one. While
        // probing after a failure, an event that just failed on the network is the last choice:
        // the probe must tell whether the network is back, not whether that event still fails.
        let probing = self.delivery.failures > 0;
        let mut pick: Option<(usize, SlotRef, bool)> = None;
        for (k, &(r, not_before)) in self.delivery.retrying.iter().enumerate() {
            if not_before > now {
                continue;
            }
            let suspect = probing && self.delivery.suspects.iter().any(|x| x.0 == r);
            if pick.is_none_or(|(_, p, p_suspect)| (suspect, r.seq, r.index) < (p_suspect, p.seq, p.index)) {
                pick = Some((k, r, suspect));
            }
        }
        let fresh = self.queue.segments.iter().any(|s| s.fresh < s.slots.len());
        let pick = match pick {
            Some((k, r, suspect)) if !(suspect && fresh) => {
                self.unretry(k);
                r
            }
            _ => {
                let seg = self.queue.segments.iter_mut().find(|s| s.fresh < s.slots.len())?;
                let r = SlotRef { seq: seg.seq, index: seg.fresh as u32 };
                seg.fresh += 1;
                seg.advance();
                r
            }
        };
        let si = self.seg_index(pick.seq)?;
        let seg = self.queue.segments.get_mut(si)?;
        let i = pick.index as usize;
        seg.slots.get_mut(i)?.in_flight = true;
        self.delivery.in_flight += 1;
        self.delivery.requests += 1;
        self.delivery.flights.push(Flight { slot: pick, seq: self.delivery.next_request, credentials: self.delivery.credentials_gen });
        self.delivery.next_request += 1;
        let (id, name, props) = seg.fields(i);
        Some(Send { slot: pick, id: id.into(), name: name.into(), body: request_body(name, props) })
    }

    /// Applies the verdict on one request.
    pub fn on_result(&mut self, slot_ref: SlotRef, verdict: Verdict, now: u64) {
        let Some(k) = self.delivery.flights.iter().position(|f| f.slot == slot_ref) else {
            return;
        };
        let flight = self.delivery.flights.swap_remove(k);
        let Some(slot) = self.slot_mut(slot_ref) else {
            return;
        };
        slot.in_flight = false;
        let (was_done, attempts, known_bad) = (slot.done, u32::from(slot.attempts) + 1, slot.net_failures > 0);
        self.delivery.in_flight -= 1;
        if !matches!(verdict, Verdict::Unreachable { .. } | Verdict::Unsendable { .. }) {
            // The server answered: this event got through after all, and the network works, so
            // the events that failed on it before this request was sent failed by themselves.
            self.delivery.suspects.retain(|x| x.0 != slot_ref);
            self.charge_suspects(flight.seq, now);
        }
        // Counted only if sent after the last counted failure: requests out together that fail
        // together are one failure, not `concurrency` of them.
        let consecutive = flight.seq >= self.delivery.failure_mark;
        let error = match verdict {
            Verdict::Delivered => {
                self.delivery.failures = 0;
                self.delivery.gate = self.reopened_gate(now);
                self.report.error_active = false;
                if !was_done {
                    self.report.totals.delivered += 1;
                    self.finish(slot_ref, now);
                }
                return;
            }
            Verdict::Reject { error } => {
                self.delivery.failures = 0;
                self.delivery.gate = self.reopened_gate(now);
                if !was_done {
                    self.drop_slot(slot_ref, DropReason::Rejected, error.message.clone(), now);
                }
                error
            }
            // Nothing was sent: the gate, the failure count and the suspects stay as they are.
            Verdict::Unsendable { error } => {
                if !was_done {
                    self.drop_slot(slot_ref, DropReason::Corrupt, error.message.clone(), now);
                }
                error
            }
            Verdict::Retry { after_ms, error } => {
                self.report.totals.retried += 1;
                self.count_failure(consecutive);
                let delay = self.backoff(attempts, u64::MAX);
                if let Some(slot) = self.slot_mut(slot_ref) {
                    // A live slot is dropped at `retry.maxAttempts` (1,000 at most).
                    slot.attempts = attempts as u16;
                    slot.not_before = now + delay;
                }
                if attempts >= self.config.retry.max_attempts && !was_done {
                    let msg = format!("gave up after {attempts} attempts; last error: {}", error.message);
                    self.drop_slot(slot_ref, DropReason::RetriesExhausted, msg, now);
                }
                let server_wait = after_ms.unwrap_or(0).min(self.config.retry.max_retry_after_ms);
                if after_ms.is_some() && now + server_wait > self.delivery.retry_after_until {
                    self.delivery.retry_after_until = now + server_wait;
                    // Stored at once: a worker restarted during the wait still honours it.
                    self.write_soon();
                }
                let wait = self.backoff(self.delivery.failures, u64::MAX).max(server_wait);
                self.delivery.gate = Gate::Backoff { until: (now + wait).max(self.delivery.retry_after_until), server: true };
                error
            }
            Verdict::Unreachable { error } => {
                // The event waits on its own backoff (capped like any network wait until a
                // failure is charged to it), so that others go first.
                let own_failures = self.slot_mut(slot_ref).map_or(0, |s| u32::from(s.net_failures));
                if own_failures >= self.network_charge_limit() && !was_done {
                    self.drop_undeliverable(slot_ref, own_failures, now);
                }
                let cap = if own_failures == 0 { NETWORK_BACKOFF_CAP_MS } else { u64::MAX };
                let own = self.backoff(own_failures + 1, cap);
                if let Some(slot) = self.slot_mut(slot_ref) {
                    slot.not_before = now + own;
                }
                // Suspected when the network was thought fine: no failure before, or sent
                // alongside the first one. A probe that fails after a failure (and is not known
                // to fail by itself) confirms an outage instead: the suspects sent before it
                // are forgiven. An event's own earlier failure still waits for evidence.
                if !known_bad && self.delivery.failures > 0 && consecutive {
                    self.delivery.suspects.retain(|&(r, after)| r == slot_ref || after > flight.seq);
                } else if !was_done && !self.delivery.suspects.iter().any(|x| x.0 == slot_ref) {
                    self.delivery.suspects.push((slot_ref, self.delivery.next_request));
                }
                // An event already known to fail by itself says nothing about the network.
                if !known_bad {
                    self.count_failure(consecutive);
                    let wait = self.backoff(self.delivery.failures, NETWORK_BACKOFF_CAP_MS);
                    self.delivery.gate = Gate::Backoff { until: (now + wait).max(self.delivery.retry_after_until), server: false };
                }
                error
            }
            Verdict::Pause { error } if flight.credentials != self.delivery.credentials_gen => {
                // Refused credentials that have since been replaced: the new ones may be fine.
                if let Some(slot) = self.slot_mut(slot_ref).filter(|slot| !slot.done) {
                    slot.not_before = now;
                    self.delivery.retrying.push((slot_ref, now));
                }
                let _ = error;
                return;
            }
            Verdict::Pause { error } => {
                // A failure like the others: once the pause ends, probe with one request until
                // one succeeds. Without it, an offline spell (which turns the gate to Offline,
                // then Open) would end a pause with a full-concurrency burst instead of a probe.
                self.count_failure(true);
                self.delivery.gate = Gate::Paused { probe_at: (now + PAUSE_PROBE_MS).max(self.delivery.retry_after_until) };
                // Stored at once: a restarted worker stays paused (for these credentials).
                self.write_soon();
                error
            }
        };
        // Not done (a failure): it waits for another attempt.
        if let Some(slot) = self.slot_mut(slot_ref).filter(|slot| !slot.done) {
            let not_before = slot.not_before;
            self.delivery.retrying.push((slot_ref, not_before));
        }
        self.fail(error, now);
    }

    /// One more failure in a row, unless the request ran alongside the last counted one.
    pub(super) fn count_failure(&mut self, consecutive: bool) {
        if consecutive || self.delivery.failures == 0 {
            self.delivery.failures += 1;
            self.delivery.failure_mark = self.delivery.next_request;
        }
    }

    /// Charges a network failure to each event that failed on the network before request `seq`
    /// was sent (which the server answered); drops those charged `retry.maxAttempts` times
    /// (one out again is dropped when its own answer comes, if that is a failure too).
    pub(super) fn charge_suspects(&mut self, seq: u64, now: u64) {
        let mut k = 0;
        while let Some(&(r, after)) = self.delivery.suspects.get(k) {
            if after > seq {
                k += 1;
                continue;
            }
            self.delivery.suspects.swap_remove(k);
            let Some(slot) = self.slot_mut(r).filter(|slot| !slot.done) else {
                continue;
            };
            slot.net_failures = slot.net_failures.saturating_add(1);
            let (charged, out) = (u32::from(slot.net_failures), slot.in_flight);
            if out {
                continue;
            }
            if charged >= self.network_charge_limit() {
                self.drop_undeliverable(r, charged, now);
                continue;
            }
            // Its own backoff now grows with its own failures, beyond the network cap.
            let at = now + self.backoff(charged + 1, u64::MAX);
            if let Some(slot) = self.slot_mut(r) {
                slot.not_before = slot.not_before.max(at);
            }
            if let Some(x) = self.delivery.retrying.iter_mut().find(|x| x.0 == r) {
                x.1 = x.1.max(at);
            }
        }
    }

    /// Network failures charged to one event before it is dropped.
    pub(super) fn network_charge_limit(&self) -> u32 {
        self.config.retry.max_attempts.clamp(NETWORK_CHARGES_MIN, u32::from(u8::MAX))
    }

    pub(super) fn drop_undeliverable(&mut self, r: SlotRef, charged: u32, now: u64) {
        let msg = format!(
            "its request failed {charged} times before reaching the server while other events were delivered (a proxy or firewall \
             refusing its payload, or a value the browser will not send)"
        );
        self.drop_slot(r, DropReason::Undeliverable, msg, now);
    }

    /// The backoff after `failures` failures, the policy's cap lowered to `cap`. Draws one
    /// random number.
    pub(super) fn backoff(&mut self, failures: u32, cap: u64) -> u64 {
        let mut policy = self.config.retry.clone();
        policy.max_delay_ms = policy.max_delay_ms.min(cap);
        backoff_ms(&policy, failures, self.rng.next_f64())
    }

    /// An explicit `flush`: a wait caused by network errors ends now (the network may be back),
    /// and a pause (refused credentials, a redirect) is probed now with one request (the server
    /// may have been fixed): if that fails too, the pause starts again. Waits the server asked
    /// for (`Retry-After`, 5xx) and per-event backoff still hold.
    pub fn retry_network_now(&mut self, now: u64) {
        match self.delivery.gate {
            Gate::Backoff { server: false, .. } => self.delivery.gate = self.reopened_gate(now),
            Gate::Paused { probe_at } if probe_at > now => {
                self.delivery.gate = Gate::Paused { probe_at: now.max(self.delivery.retry_after_until) };
            }
            _ => {}
        }
    }

    /// New credentials: a pause for bad credentials ends and delivery resumes at once.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.config.credentials = credentials;
        self.delivery.credentials_gen = self.delivery.credentials_gen.wrapping_add(1);
        // A stored pause for the old credentials must not outlive them.
        if matches!(self.delivery.gate, Gate::Paused { .. }) || self.delivery.retry_after_until > 0 {
            self.write_soon();
        }
        if matches!(self.delivery.gate, Gate::Paused { .. } | Gate::Backoff { .. }) {
            self.delivery.gate = Gate::Open;
        }
        // New credentials are a fresh start, including any wait the server asked of the old ones.
        self.delivery.retry_after_until = 0;
        self.delivery.failures = 0;
    }

    /// Requests allowed out at once: after a failure (or while paused), one probe until one
    /// succeeds; otherwise the configured concurrency.
    pub(super) fn send_cap(&self) -> usize {
        let cap = if self.delivery.failures > 0 || matches!(self.delivery.gate, Gate::Paused { .. }) { 1 } else { self.config.concurrency };
        // Delivered events whose done-marks are not stored yet count against it (see
        // `Engine::resend_bound`), unless storage refuses writes: then delivery goes on, and a
        // stop resends what was delivered since the last write that worked.
        if self.store.failing {
            return cap;
        }
        cap.min(self.resend_bound().saturating_sub(self.store.unpersisted))
    }

    /// The gate once a request succeeds: open, unless a wait the server asked for still runs.
    pub(super) fn reopened_gate(&self, now: u64) -> Gate {
        if now < self.delivery.retry_after_until {
            Gate::Backoff { until: self.delivery.retry_after_until, server: true }
        } else {
            Gate::Open
        }
    }

    pub(super) fn earliest_sendable(&self) -> Option<u64> {
        if self.delivery.in_flight >= self.send_cap() {
            return None;
        }
        // The slots not done and not in flight: those waiting for another attempt, and the fresh
        // ones (never sent, so never held back).
        if self.queue.segments.iter().any(|s| s.fresh < s.slots.len()) {
            return Some(0);
        }
        let mut at: Option<u64> = None;
        for &(_, t) in &self.delivery.retrying {
            at = Some(at.map_or(t, |a| a.min(t)));
        }
        at
    }

    /// Takes the `k`-th slot out of `retrying` (order does not matter there).
    pub(super) fn unretry(&mut self, k: usize) {
        if let Some(last) = self.delivery.retrying.pop() {
            if let Some(x) = self.delivery.retrying.get_mut(k) {
                *x = last;
            }
        }
    }
}
