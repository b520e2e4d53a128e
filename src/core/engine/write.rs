//! The write pipeline: pending events and done-marks into one `chrome.storage.local.set()`.

use super::records::RecordTexts;
use super::*;

impl Engine {
    /// Forgets the pending events, returning the first one's ticket and their segments.
    pub(super) fn take_pending(&mut self) -> (u64, Vec<Segment>) {
        let first = self.queue.next_ticket - self.queue.pending_count as u64;
        self.queue.pending_count = 0;
        self.queue.pending_bytes = 0;
        (first, std::mem::take(&mut self.queue.pending))
    }

    /// Settles the tickets of the live events of `segments`, consecutive from `ticket`, with
    /// `result`. Unless they are queued, their dedup ids are free again.
    pub(super) fn settle(&mut self, segments: &[Segment], mut ticket: u64, result: TicketResult) {
        let queued = matches!(result, TicketResult::Queued);
        for seg in segments {
            for i in seg.cursor..seg.slots.len() {
                let id = seg.fields(i).0;
                if !queued {
                    self.queue.dedup_live.remove(id);
                }
                self.report.notes.push(Note::Ticket { ticket, id: id.into(), result: result.clone() });
                ticket += 1;
            }
        }
    }

    /// The next storage write, if one is due. `force` writes pending done-marks now (flush,
    /// shutdown, an idle queue). At most one write is outstanding at a time.
    pub fn take_write(&mut self, now: u64, force: bool) -> Option<Write> {
        let plan = self.take_write_plan(now, force)?;
        let mut set = Vec::new();
        for (i, &seq) in plan.segments.iter().enumerate() {
            set.push((segment_key(seq), self.segment_text(i)));
        }
        for &seq in &plan.rewrite {
            set.push((segment_key(seq), self.stored_segment_str(seq).into()));
        }
        if let Some(id) = plan.install {
            set.push((INSTALL_KEY.to_string(), id));
        }
        if let Some(profile) = plan.profile {
            set.push((PROFILE_KEY.to_string(), profile));
        }
        if let Some(lifecycle) = plan.lifecycle {
            set.push((LIFECYCLE_KEY.to_string(), lifecycle));
        }
        set.push((INDEX_KEY.to_string(), plan.index));
        Some(Write { set, remove: plan.remove })
    }

    /// [`Engine::take_write`] without the segments' text: the edge asks for each with
    /// [`Engine::segment_text`] and hands it over before asking for the next, so a burst's
    /// events are not held twice (as events and as text) in memory at once.
    pub fn take_write_plan(&mut self, now: u64, force: bool) -> Option<WritePlan> {
        if self.store.writing.is_some() || self.store.unread {
            return None;
        }
        let marks_due =
            self.store.dirty_marks > 0 && (force || self.marks_due_now() || self.store.dirty_since.is_some_and(|t| now >= t + ACK_DELAY_MS));
        let enabled_due = self.consent.enabled != self.consent.enabled_persisted;
        let profile_due = self.profile_due();
        if self.queue.pending_count == 0 && !marks_due && !enabled_due && profile_due.is_none() && !self.records.lifecycle_due() {
            return None;
        }
        let (first_ticket, mut new_segments) = self.take_pending();
        let mut segments = Vec::with_capacity(new_segments.len());
        let mut tickets = 0;
        for seg in &mut new_segments {
            tickets += seg.live;
            seg.compact();
            seg.text.shrink_to_fit();
            seg.seq = self.queue.next_seq;
            self.queue.next_seq += 1;
            segments.push(seg.seq);
        }
        // Segments whose events are all done leave memory now and storage with this write.
        let mut removed = std::mem::take(&mut self.store.unremoved);
        self.queue.segments.retain(|s| {
            let keep = s.live > 0 || s.slots.iter().any(|x| x.in_flight);
            if !keep {
                removed.push(s.seq);
            }
            keep
        });
        let index = self.index_text(&new_segments);
        let marks = self.store.unpersisted;
        self.store.dirty_marks = 0;
        self.store.dirty_since = None;
        self.store.force_write = false;
        self.store.storage_writes += 1;
        let mut remove = Vec::new();
        for &seq in &removed {
            remove.push(segment_key(seq));
        }
        let rewrite: Vec<u64> = if self.store.rewrite_all { self.queue.segments.iter().map(|s| s.seq).collect() } else { Vec::new() };
        let (records, texts) = self.records.plan(profile_due);
        self.store.writing = Some(Writing {
            segments: new_segments,
            first_ticket,
            tickets,
            removed,
            enabled_written: self.consent.enabled,
            purged: false,
            rewrite: self.store.rewrite_all,
            records,
            marks,
        });
        self.store.rewrite_all = false;
        let RecordTexts { install, profile, lifecycle } = texts;
        Some(WritePlan { segments, install, profile, lifecycle, rewrite, index, remove })
    }

    /// The index's text (see the module documentation) for the queue in memory and `new`.
    pub(super) fn index_text(&self, new: &[Segment]) -> String {
        let (t, d) = (&self.report.totals, &self.report.totals.dropped);
        let (pause_until, pause_key) = match self.delivery.gate {
            Gate::Paused { probe_at } => (probe_at, credentials_key(&self.config.credentials, &self.config.app_id)),
            _ => (0, 0),
        };
        let head = [
            INDEX_VERSION,
            self.queue.next_seq,
            u64::from(self.consent.enabled),
            self.delivery.retry_after_until,
            pause_until,
            pause_key,
            t.delivered,
            t.retried,
            d.rejected,
            d.evicted,
            d.retries_exhausted,
            d.purged,
            d.corrupt,
            d.undeliverable,
            d.filtered,
            d.sampled,
        ];
        let mut out = String::new();
        for (k, n) in head.iter().enumerate() {
            let sep = match k {
                0 => "",
                6 => "\n",
                _ => " ",
            };
            let _ = write!(out, "{sep}{n}");
        }
        // In order: the segments not read yet (their lines as the index read at start listed
        // them) among those in memory, then the new ones.
        let mut unread = self.queue.unloaded.iter().peekable();
        for segments in [&self.queue.segments[..], new] {
            for s in segments {
                for line in std::iter::from_fn(|| unread.next_if(|line| line[0] < s.seq)) {
                    write_numbers(&mut out, line);
                }
                let _ = write!(out, "\n{} {}", s.seq, s.slots.len());
                for (i, slot) in s.slots.iter().enumerate() {
                    if slot.done {
                        let _ = write!(out, " {i}");
                    }
                }
            }
        }
        for line in unread {
            write_numbers(&mut out, line);
        }
        let check = index_checksum(&out);
        out.insert_str(0, &format!("{check}\n"));
        out
    }

    /// The stored text of the `i`-th new segment of the outstanding write (see
    /// [`Engine::take_write_plan`]); empty if there is no such segment. One line per event,
    /// `id<TAB>name<TAB>properties` (see `decode_segment`). A copy of [`Engine::segment_str`].
    pub fn segment_text(&self, i: usize) -> String {
        self.segment_str(i).into()
    }

    /// [`Engine::segment_text`] without a copy: the segment holds exactly its stored text.
    pub fn segment_str(&self, i: usize) -> &str {
        self.store.writing.as_ref().and_then(|w| w.segments.get(i)).map_or("", |s| s.text.as_str())
    }

    /// The stored text of segment `seq` of the queue (empty if there is none).
    pub fn stored_segment_str(&self, seq: u64) -> &str {
        self.seg_index(seq).and_then(|si| self.queue.segments.get(si)).map_or("", |s| s.text.as_str())
    }

    /// Other code removed the queue from storage (`chrome.storage.local.clear()`, or a
    /// `remove` of the index): the queue in memory is written again, whole, by the next write,
    /// and the loss that was avoided is reported.
    pub fn storage_lost(&mut self, now: u64) {
        self.store.rewrite_all = true;
        self.records.lost();
        self.write_soon();
        let msg = format!(
            "the SDK's data in chrome.storage.local was removed by other code (clear() or remove()); the {} queued events still in \
             memory were written again",
            self.queue.live_count
        );
        self.fail(Error::new(ErrorCode::StorageError, msg), now);
    }

    /// The outstanding write finished. On success its events are accepted and become sendable;
    /// on failure they are refused (their `track` rejects) and nothing already queued is lost.
    pub fn write_done(&mut self, result: Result<(), String>, now: u64) {
        let Some(w) = self.store.writing.take() else { return };
        let settled = match result {
            Ok(()) => {
                self.store.failing = false;
                // Its index holds every mark made before it was planned.
                self.store.unpersisted -= w.marks.min(self.store.unpersisted);
                self.consent.enabled_persisted = w.enabled_written;
                self.records.written(w.records);
                // With `w.purged`, the user opted out with purge while these events were being
                // written: they are stored now but must not be kept (nor sent after a later
                // opt-in). Settle them like the pending events a purge finds (`Disabled`), and
                // let the next write remove their segments.
                if w.purged {
                    self.write_soon();
                    TicketResult::Disabled
                } else {
                    TicketResult::Queued
                }
            }
            Err(message) => {
                self.store.failing = true;
                self.store.rewrite_all |= w.rewrite;
                let error = Error::new(ErrorCode::StorageError, String::from("chrome.storage.local write failed: ") + &message);
                self.fail(error.clone(), now);
                self.store.unremoved.extend(w.removed);
                self.mark_dirty(now);
                // Its marks were not stored: they are due again, with those made since.
                self.store.dirty_marks = self.store.dirty_marks.max(self.store.unpersisted);
                TicketResult::Failed(error)
            }
        };
        // One note per ticket, for a burst by the thousand: one allocation, not a doubling series.
        self.report.notes.reserve_exact(w.tickets);
        let committed = matches!(settled, TicketResult::Queued);
        let purged = matches!(settled, TicketResult::Disabled);
        self.settle(&w.segments, w.first_ticket, settled);
        for mut seg in w.segments {
            if committed {
                self.queue.live_count += seg.live;
                self.queue.live_bytes += seg.all_stored_bytes();
            } else if purged {
                for slot in &mut seg.slots {
                    slot.done = true;
                }
                seg.live = 0;
                seg.advance();
            } else {
                continue;
            }
            self.queue.segments.push(seg);
        }
        // A full queue may now hold more than the bounds allowed while the write was out.
        self.enforce_bounds(now);
    }
}

/// Appends a line of space-separated numbers.
fn write_numbers(out: &mut String, line: &[u64]) {
    for (k, n) in line.iter().enumerate() {
        let _ = write!(out, "{}{n}", if k == 0 { "\n" } else { " " });
    }
}
