//! The queue: an event offered, the bounds that evict the oldest, an event done (delivered or
//! dropped, reported).

use super::*;

impl Engine {
    /// Offers a validated event. It is accepted once the write that carries it commits.
    pub fn track(&mut self, event: NewEvent, now: u64) -> Admission {
        self.offer(&event, now)
    }

    /// [`Engine::track`] by reference: the engine keeps a copy of the event's line, in the
    /// text of the segment it will be written in.
    pub fn offer(&mut self, event: &NewEvent, now: u64) -> Admission {
        if !self.consent.enabled {
            return Admission::Disabled;
        }
        let id = event.id();
        if id.starts_with("d-") && !self.queue.dedup_live.insert(id.to_string()) {
            return Admission::Duplicate;
        }
        let ticket = self.queue.next_ticket;
        self.queue.next_ticket += 1;
        let full = self.queue.pending.last().map_or(Some(0), |s| (s.slots.len() >= SEGMENT_EVENTS).then_some(s.text.len()));
        if let Some(size) = full {
            // In a burst, most likely the size of the last (full) one: no doubling, little slack.
            let mut seg = Segment::new(0);
            if size > 0 {
                seg.text.reserve(size);
                seg.slots.reserve(SEGMENT_EVENTS);
            }
            self.queue.pending.push(seg);
        }
        if let Some(forming) = self.queue.pending.last_mut() {
            forming.push(event);
        }
        self.queue.pending_count += 1;
        self.queue.pending_bytes += event.stored_bytes();
        self.enforce_bounds(now);
        Admission::Pending(ticket)
    }

    /// Evicts the oldest events until the queue fits its bounds. Events being sent are spared
    /// (they may already be delivered), so a burst can overshoot by at most `concurrency`.
    pub(super) fn enforce_bounds(&mut self, now: u64) {
        let (max_events, max_bytes) = (self.config.limits.max_queue_events, self.config.limits.max_queue_bytes);
        // Segments not read yet count by their events (their bytes are known once read), but
        // only against what is older: a new event is never evicted to make room for stored ones
        // still unread. Until they are read, the queue may overshoot; reading them evicts.
        let over_with = |e: &Engine, unread: usize| {
            e.queue.live_count + unread + e.queue.pending_count > max_events || e.queue.live_bytes + e.queue.pending_bytes > max_bytes
        };
        let over = |e: &Engine| over_with(e, e.queue.unloaded_live);
        if !over(self) {
            return;
        }
        'segments: for si in 0..self.queue.segments.len() {
            // Everything before the cursor is done already.
            for i in self.queue.segments[si].cursor..self.queue.segments[si].slots.len() {
                if !over(self) {
                    break 'segments;
                }
                let slot = &self.queue.segments[si].slots[i];
                if !slot.done && !slot.in_flight {
                    let r = SlotRef { seq: self.queue.segments[si].seq, index: i as u32 };
                    self.drop_slot(r, DropReason::Evicted, EVICTED.into(), now);
                }
            }
        }
        while over_with(self, 0) && self.queue.pending_count > 0 {
            // The oldest live pending event: the first live segment's cursor (pending events are
            // evicted in order, so the done ones are a prefix).
            let Some(seg) = self.queue.pending.iter_mut().find(|s| s.live > 0) else {
                break;
            };
            let i = seg.cursor;
            let (id, name, _) = seg.fields(i);
            let (id, event_name) = (id.to_string(), name.to_string());
            self.queue.pending_bytes -= seg.stored_bytes(i);
            seg.mark_done(i);
            if seg.live == 0 {
                self.queue.pending.retain(|s| s.live > 0);
            }
            let ticket = self.queue.next_ticket - self.queue.pending_count as u64;
            self.queue.pending_count -= 1;
            self.queue.dedup_live.remove(&id);
            self.report.totals.dropped.evicted += 1;
            self.report.notes.push(Note::Dropped(Dropped { id: id.clone(), event_name, reason: DropReason::Evicted, message: EVICTED.into() }));
            self.report.notes.push(Note::Ticket { ticket, id, result: TicketResult::Evicted });
        }
    }

    /// The index in `segments` of segment `seq`.
    pub(super) fn seg_index(&self, seq: u64) -> Option<usize> {
        self.queue.segments.binary_search_by_key(&seq, |s| s.seq).ok()
    }

    pub(super) fn slot_mut(&mut self, r: SlotRef) -> Option<&mut Slot> {
        let si = self.seg_index(r.seq)?;
        self.queue.segments.get_mut(si)?.slots.get_mut(r.index as usize)
    }

    /// Marks a slot done (delivered or dropped) and schedules the index write.
    pub(super) fn finish(&mut self, r: SlotRef, now: u64) {
        let Some(seg) = self.seg_index(r.seq).and_then(|si| self.queue.segments.get_mut(si)) else {
            return;
        };
        let i = r.index as usize;
        if seg.slots.get(i).is_none_or(|slot| slot.done) {
            return;
        }
        seg.mark_done(i);
        self.store.unpersisted += 1;
        self.queue.live_count -= 1;
        self.queue.live_bytes -= seg.stored_bytes(i);
        let id = seg.fields(i).0;
        if id.starts_with("d-") {
            self.queue.dedup_live.remove(id);
        }
        if let Some(k) = self.delivery.retrying.iter().position(|x| x.0 == r) {
            self.unretry(k);
        }
        self.mark_dirty(now);
    }

    pub(super) fn drop_slot(&mut self, r: SlotRef, reason: DropReason, message: String, now: u64) {
        let Some(seg) = self.seg_index(r.seq).and_then(|si| self.queue.segments.get(si)) else {
            return;
        };
        let i = r.index as usize;
        if seg.slots.get(i).is_none_or(|slot| slot.done) {
            return;
        }
        let (id, name, _) = seg.fields(i);
        let dropped = Dropped { id: id.into(), event_name: name.into(), reason, message };
        let counts = &mut self.report.totals.dropped;
        *match reason {
            DropReason::Rejected => &mut counts.rejected,
            DropReason::Evicted => &mut counts.evicted,
            DropReason::RetriesExhausted => &mut counts.retries_exhausted,
            DropReason::Purged => &mut counts.purged,
            DropReason::Corrupt => &mut counts.corrupt,
            DropReason::Undeliverable => &mut counts.undeliverable,
        } += 1;
        self.finish(r, now);
        self.report.notes.push(Note::Dropped(dropped));
    }

    pub(super) fn has_unsent(&self) -> bool {
        self.queue.live_count > self.delivery.in_flight
    }
}
