//! A start: the stored queue read back, rebuilt when its index is damaged.

use super::*;

impl Engine {
    /// What a start finds under [`INDEX_KEY`]: `present` is whether the key exists at all
    /// (holding a string or anything else), `index` its text if it is a string.
    pub fn index_state(index: Option<&str>, present: bool) -> IndexState {
        match index.map(IndexDoc::decode) {
            Some(Some(doc)) if doc.unchecked => IndexState::Unchecked,
            Some(Some(_)) => IndexState::Readable,
            _ if present => IndexState::Unreadable,
            _ => IndexState::Absent,
        }
    }

    /// Whether `index` (an [`IndexState::Unchecked`] one, or `None` when it is absent) accounts
    /// for every stored segment (`all_keys`, the keys listed): none is numbered at or past its
    /// `next`, where the next write would overwrite it. Without an index, no segment may be
    /// stored at all. If not, the queue is rebuilt from the segments ([`Engine::rebuild`]).
    pub fn index_accounts_for(index: Option<&str>, all_keys: &[String]) -> bool {
        let next = index.and_then(IndexDoc::decode).map_or(0, |doc| doc.next);
        all_keys.iter().filter_map(|key| segment_seq(key)).all(|seq| seq < next)
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

    /// Rebuilds the queue from what storage holds, all at once: `index` is the stored index,
    /// `segment` returns the stored text of a segment key. [`Engine::begin_restore`] and
    /// [`Engine::load_segments`] do the same in steps.
    pub fn restore(&mut self, index: Option<&str>, segment: impl FnMut(&str) -> Option<String>, now: u64) {
        self.begin_restore(index, now);
        self.load_segments(segment, usize::MAX, now);
    }

    /// A start from the stored index alone: the counters, the waits, the consent and which
    /// segments hold events are known at once (`stats().queued` counts every stored event);
    /// the segments themselves stay in storage until [`Engine::load_segments`] reads them,
    /// oldest first. A worker woken with 10,000 events stored is ready after reading a few
    /// hundred bytes, not 5 MB (`bench/README.md`, the wake figures).
    pub fn begin_restore(&mut self, index: Option<&str>, now: u64) {
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
        for line in doc.segments {
            self.queue.unloaded_live += live_in_line(&line);
            self.queue.unloaded.push(line);
        }
        self.finish_restore(now);
    }

    /// Whether stored segments are still to be read ([`Engine::load_segments`]).
    pub fn loading(&self) -> bool {
        !self.queue.unloaded.is_empty()
    }

    /// The keys of the next `count` segments to read, oldest first (those a purge dropped
    /// unread before the others: see [`Engine::load_segments`]).
    pub fn unloaded_keys(&self, count: usize) -> Vec<String> {
        self.queue.purging.iter().chain(&self.queue.unloaded).take(count).map(|line| segment_key(line[0])).collect()
    }

    /// Reads up to `count` of the oldest segments not yet read: `segment` returns the stored
    /// text of a key. A missing or unreadable segment loses only its own events, counted as
    /// `corrupt` and reported (all such segments of one call in one error).
    ///
    /// The segments a purge dropped unread come first ([`Engine::unloaded_keys`]): each of
    /// their events not done is reported as dropped (`purged`, to `onDrop`), and the segment is
    /// removed by the next write.
    pub fn load_segments(&mut self, mut segment: impl FnMut(&str) -> Option<String>, count: usize, now: u64) {
        let purged = count.min(self.queue.purging.len());
        for line in self.queue.purging.drain(..purged).collect::<Vec<_>>() {
            self.report_purged(&line, segment(&segment_key(line[0])));
        }
        let count = count - purged;
        let take = count.min(self.queue.unloaded.len());
        let lines: Vec<Vec<u64>> = self.queue.unloaded.drain(..take).collect();
        let (mut lost_keys, mut lost) = (String::new(), 0);
        for line in lines {
            self.queue.unloaded_live -= live_in_line(&line);
            let (seq, events, marks) = (line[0], line[1], &line[2..]);
            let key = segment_key(seq);
            let seg = segment(&key).and_then(|text| decode_segment(seq, text, events));
            let Some(mut seg) = seg else {
                lost += live_in_line(&line) as u64;
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
            self.adopt(seg, now);
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
        // Events tracked while these were in storage may have filled the queue.
        self.enforce_bounds(now);
    }

    /// Drops the segments not yet read (an opt-out with purge): they leave the queue and the
    /// index now, and are read afterwards only to report their events ([`Engine::load_segments`]).
    pub(super) fn purge_unloaded(&mut self) {
        let lines = std::mem::take(&mut self.queue.unloaded);
        self.queue.purging.extend(lines);
        self.queue.unloaded_live = 0;
    }

    /// Reports each event not done of a purged segment read back (`text`), counted as `purged`;
    /// the segment is removed by the next write. One that cannot be read is counted alone.
    fn report_purged(&mut self, line: &[u64], text: Option<String>) {
        let (seq, marks) = (line[0], &line[2..]);
        self.store.unremoved.push(seq);
        self.write_soon();
        let Some(seg) = text.and_then(|t| decode_segment(seq, t, line[1])) else {
            self.report.totals.dropped.purged += live_in_line(line) as u64;
            return;
        };
        for i in 0..seg.slots.len() {
            if marks.contains(&(i as u64)) {
                continue;
            }
            let (id, name, _) = seg.fields(i);
            self.report.totals.dropped.purged += 1;
            let dropped = Dropped { id: id.into(), event_name: name.into(), reason: DropReason::Purged, message: "purged on opt-out".into() };
            self.report.notes.push(Note::Dropped(dropped));
        }
    }

    /// Rebuilds the queue when the index cannot be trusted (`found`: unreadable, that is damaged
    /// or not text at all; absent or unchecked, and segments stored that it does not account
    /// for), from every segment stored, `(key, text)`: their events are all sent (none is known
    /// to be done, so some may be sent again), the lifetime counters start over, and the next
    /// write stores a good index. Segments that cannot be read are lost and counted. Nothing is
    /// deleted unread.
    pub fn rebuild(&mut self, segments: Vec<(String, Option<String>)>, found: IndexState, now: u64) {
        let stored: Vec<(u64, Option<String>)> = segments.into_iter().filter_map(|(key, text)| Some((segment_seq(&key)?, text))).collect();
        let (mut events, mut unreadable) = (0, 0);
        for (seq, text) in sorted_unique_by_key(stored, |x| x.0) {
            self.queue.next_seq = self.queue.next_seq.max(seq + 1);
            match text.and_then(|t| decode_segment(seq, t, SEGMENT_EVENTS as u64)) {
                Some(seg) => {
                    events += seg.slots.len() as u64;
                    self.adopt(seg, now);
                }
                None => {
                    unreadable += 1;
                    self.store.unremoved.push(seq);
                }
            }
        }
        let lost = if unreadable > 0 { format!("; {unreadable} unreadable segments lost, their events uncounted") } else { String::new() };
        let index = match found {
            IndexState::Absent => "missing",
            IndexState::Unchecked | IndexState::Readable => "missing stored segments",
            IndexState::Unreadable => "unreadable",
        };
        let msg = format!(
            "the stored queue index was {index}; the queue was rebuilt from its segments ({events} events kept, which may be sent again{lost})"
        );
        self.fail(Error::new(ErrorCode::StorageError, msg), now);
        self.write_soon();
        self.finish_restore(now);
    }

    /// Takes a restored segment into the queue (its done slots marked).
    pub(super) fn adopt(&mut self, mut seg: Segment, now: u64) {
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
        // Segments written since the start (numbered higher) may be in memory already.
        let at = self.queue.segments.partition_point(|s| s.seq < seg.seq);
        let seq = seg.seq;
        self.queue.segments.insert(at, seg);
        self.drop_foreign_ids(seq, now);
    }

    /// Drops, as `corrupt` and reported, the live events of segment `seq` whose id the SDK could
    /// not have made ([`is_event_id`]): damaged storage. Such an id could not be sent anyway
    /// (the browser refuses it as a header value); the segment's other events are kept.
    fn drop_foreign_ids(&mut self, seq: u64, now: u64) {
        let Some(seg) = self.seg_index(seq).and_then(|si| self.queue.segments.get(si)) else { return };
        let foreign: Vec<u32> = (0..seg.slots.len()).filter(|&i| !seg.slots[i].done && !is_event_id(seg.fields(i).0)).map(|i| i as u32).collect();
        for index in foreign {
            let message = "a stored event's id is not one the SDK makes (damaged storage); the event was dropped".to_string();
            self.drop_slot(SlotRef { seq, index }, DropReason::Corrupt, message, now);
        }
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
        self.store.unread = false;
        if let Some(enabled) = self.consent.consent_override.take() {
            self.consent.enabled = enabled;
            if std::mem::take(&mut self.consent.purge_on_restore) {
                self.purge(now);
            }
            self.write_soon();
        }
    }
}

/// The events of an index line `[n, events, done...]` not marked done (each in-range mark once:
/// a damaged index may list more marks than events).
fn live_in_line(line: &[u64]) -> usize {
    let (events, marks) = (line[1], &line[2..]);
    let mut done = 0;
    for (k, i) in marks.iter().enumerate() {
        if *i < events && !marks[..k].contains(i) {
            done += 1;
        }
    }
    events.saturating_sub(done) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphan_keys_are_read_like_std() {
        let keys: Vec<String> =
            ["+3", "18446744073709551615", "18446744073709551616", "", "-1", "4"].into_iter().map(|n| String::from(SEGMENT_PREFIX) + n).collect();
        let orphans = |index| Engine::orphan_segments(index, &keys);
        // No readable index: nothing is an orphan (the queue is rebuilt from the segments).
        assert!(orphans(None).is_empty());
        assert_eq!(orphans(Some("1 5 1\n0 0 0 0 0 0 0\n4 1")), [keys[0].clone()]);
        assert_eq!(orphans(Some("1 3 1\n0 0 0 0 0 0 0")), Vec::<String>::new());
    }
}
