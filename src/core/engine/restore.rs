//! A start: the stored queue read back, rebuilt when its index is damaged.

use super::*;

impl Engine {
    /// What a start finds under [`INDEX_KEY`]: `present` is whether the key exists at all
    /// (holding a string or anything else), `index` its text if it is a string.
    pub fn index_state(index: Option<&str>, present: bool) -> IndexState {
        match index {
            Some(text) if IndexDoc::decode(text).is_some() => IndexState::Readable,
            _ if present => IndexState::Unreadable,
            _ => IndexState::Absent,
        }
    }

    /// The storage keys of the segments an index names (read them, then call [`Engine::restore`]).
    pub fn segment_keys(index: Option<&str>) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(doc) = index.and_then(IndexDoc::decode) {
            for meta in &doc.segments {
                keys.push(segment_key(meta[0]));
            }
        }
        keys
    }

    /// Segment keys among `all_keys` that a readable index does not name and that were written
    /// before it (a crash between a write's `set` and its `remove`): safe to delete. Nothing is
    /// an orphan without a readable index (the queue is rebuilt from the segments instead), and
    /// no key numbered from the index's `next` on (written since the start) ever is.
    pub fn orphan_segments(index: Option<&str>, all_keys: &[String]) -> Vec<String> {
        let Some(doc) = index.and_then(IndexDoc::decode) else {
            return Vec::new();
        };
        let mut orphans = Vec::new();
        for key in all_keys {
            let Some(seq) = segment_seq(key) else {
                continue;
            };
            if seq < doc.next && doc.segments.binary_search_by_key(&seq, |meta| meta[0]).is_err() {
                orphans.push(key.clone());
            }
        }
        orphans
    }

    /// Rebuilds the queue from what storage holds: `index` is the stored index, `segment`
    /// returns the stored text of a segment key. A missing or unreadable segment loses only its
    /// own events, counted as `corrupt` and reported (all such segments in one error).
    pub fn restore(&mut self, index: Option<&str>, mut segment: impl FnMut(&str) -> Option<String>, now: u64) {
        let Some(doc) = index.and_then(IndexDoc::decode) else {
            if index.is_some() {
                self.fail(Error::new(ErrorCode::StorageError, "the stored queue index is unreadable; starting with an empty queue"), now);
            }
            return self.finish_restore(now);
        };
        self.queue.next_seq = doc.next.max(1);
        self.consent.enabled = doc.enabled;
        self.consent.enabled_persisted = doc.enabled;
        self.report.totals = doc.totals.clone();
        self.restore_waits(&doc, now);
        let (mut lost_keys, mut lost) = (String::new(), 0);
        for meta in &doc.segments {
            let (seq, events, marks) = (meta[0], meta[1], &meta[2..]);
            let key = segment_key(seq);
            let seg = segment(&key).and_then(|text| decode_segment(seq, text, events));
            let Some(mut seg) = seg else {
                // Each in-range done mark once: a damaged index may list more marks than events.
                let mut done = 0;
                for (k, i) in marks.iter().enumerate() {
                    if *i < events && !marks[..k].contains(i) {
                        done += 1;
                    }
                }
                lost += events.saturating_sub(done);
                self.store.unremoved.push(seq);
                self.mark_dirty(now);
                if !lost_keys.is_empty() {
                    lost_keys.push_str(", ");
                }
                lost_keys.push_str(&key);
                continue;
            };
            // A segment is written once and never rewritten: its lines are what is stored. An
            // index that counts otherwise is damaged: every event the segment holds is kept, and
            // events it counts beyond them (not marked done) are lost, and counted.
            let kept = seg.slots.len() as u64;
            if kept != events {
                let mut missing = 0;
                for i in kept..events {
                    if !marks.contains(&i) {
                        missing += 1;
                    }
                }
                self.mark_dirty(now);
                if missing > 0 {
                    lost += missing;
                    if !lost_keys.is_empty() {
                        lost_keys.push_str(", ");
                    }
                    lost_keys.push_str(&key);
                }
            }
            for &i in marks {
                if let Some(slot) = usize::try_from(i).ok().and_then(|i| seg.slots.get_mut(i)) {
                    slot.done = true;
                }
            }
            self.adopt(seg);
        }
        if lost_keys.contains(',') {
            lost_keys.insert_str(0, "stored segments ");
            lost_keys.push_str(" are missing or unreadable; ");
        } else if !lost_keys.is_empty() {
            lost_keys.insert_str(0, "stored segment ");
            lost_keys.push_str(" is missing or unreadable; ");
        }
        if !lost_keys.is_empty() {
            self.report.totals.dropped.corrupt += lost;
            lost_keys.push_str(&format!("{lost} events lost"));
            self.fail(Error::new(ErrorCode::StorageError, lost_keys), now);
        }
        self.finish_restore(now);
    }

    /// Rebuilds the queue when the index is unreadable (damaged, or not text at all), from every
    /// segment stored, `(key, text)`: their events are all sent (none is known to be done, so
    /// some may be sent again), the lifetime counters start over, and the next write stores a
    /// good index. Segments that cannot be read are lost and counted. Nothing is deleted unread.
    pub fn rebuild(&mut self, segments: Vec<(String, Option<String>)>, now: u64) {
        let mut found: Vec<(u64, Option<String>)> = segments.into_iter().filter_map(|(key, text)| Some((segment_seq(&key)?, text))).collect();
        found.sort_unstable_by_key(|x| x.0);
        found.dedup_by_key(|x| x.0);
        let (mut events, mut unreadable) = (0, 0);
        for (seq, text) in found {
            self.queue.next_seq = self.queue.next_seq.max(seq + 1);
            match text.and_then(|t| decode_segment(seq, t, SEGMENT_EVENTS as u64)) {
                Some(seg) => {
                    events += seg.slots.len() as u64;
                    self.adopt(seg);
                }
                None => {
                    unreadable += 1;
                    self.store.unremoved.push(seq);
                }
            }
        }
        let lost = if unreadable > 0 { format!("; {unreadable} unreadable segments lost, their events uncounted") } else { String::new() };
        let msg = format!(
            "the stored queue index was unreadable; the queue was rebuilt from its segments ({events} events kept, which may be sent again{lost})"
        );
        self.fail(Error::new(ErrorCode::StorageError, msg), now);
        self.write_soon();
        self.finish_restore(now);
    }

    /// Takes a restored segment into the queue (its done slots marked).
    pub(super) fn adopt(&mut self, mut seg: Segment) {
        seg.live = 0;
        self.queue.live_bytes += seg.all_stored_bytes();
        for i in 0..seg.slots.len() {
            let slot = seg.slots[i];
            if slot.done {
                self.queue.live_bytes -= seg.stored_bytes(i);
            } else {
                seg.live += 1;
                if seg.text.as_bytes().get(slot.start as usize..slot.start as usize + 2) == Some(b"d-") {
                    self.queue.dedup_live.insert(seg.fields(i).0.to_string());
                }
            }
        }
        self.queue.live_count += seg.live;
        seg.advance();
        self.queue.segments.push(seg);
    }

    /// A wait or a pause the stored index carries, if it still runs (and, for a pause, the
    /// refused credentials are still the ones in use). Garbage is capped: no stored wait runs
    /// longer than the options allow.
    pub(super) fn restore_waits(&mut self, doc: &IndexDoc, now: u64) {
        let wait_until = doc.wait_until.min(now + self.config.retry.max_retry_after_ms);
        if wait_until > now {
            self.delivery.retry_after_until = wait_until;
            self.delivery.gate = Gate::Backoff { until: wait_until, server: true };
            self.delivery.failures = 1;
        }
        let pause_until = doc.pause_until.min(now + PAUSE_PROBE_MS);
        if pause_until > now && doc.pause_key == credentials_key(&self.config.credentials, &self.config.app_id) {
            self.delivery.gate = Gate::Paused { probe_at: pause_until.max(self.delivery.retry_after_until) };
            self.delivery.failures = 1;
        }
    }

    /// The end of every restore: what the user chose before it wins over what was stored.
    pub(super) fn finish_restore(&mut self, now: u64) {
        self.consent.restored = true;
        if let Some(enabled) = self.consent.consent_override.take() {
            self.consent.enabled = enabled;
            if std::mem::take(&mut self.consent.purge_on_restore) {
                self.purge(now);
            }
            self.write_soon();
        }
    }
}
