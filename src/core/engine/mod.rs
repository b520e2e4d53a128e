//! The delivery engine: the durable queue and the decisions about it, with no I/O.
//!
//! The edge feeds it what happened (an event tracked, a write committed, a response received,
//! the time) and performs what it asks for ([`Engine::take_write`], [`Engine::poll_send`]).
//! Everything here is deterministic given the clock and the seed, and tested on the host.
//!
//! # Storage layout (in `chrome.storage.local`)
//! - `inhouse:v1:seg:<n>`: one *segment*: its events, one line each, `id<TAB>name<TAB>properties`
//!   (the properties as the JSON text that is sent). Written once, never rewritten: a burst of
//!   `track` calls becomes one or a few new segments in a single `set`, so no write ever reads,
//!   modifies and writes back a shared record.
//! - `inhouse:v1:index`: lines of space-separated integers. First `1 <next segment> <enabled 0|1>
//!   <wait until> <pause until> <paused credentials>` (1 is the format's version; the waits the
//!   server asked for, so that a restarted worker honours them; an index without the last three
//!   is read too), then the lifetime counters `delivered retried rejected evicted
//!   retries_exhausted purged corrupt undeliverable filtered sampled` (seven or eight are read
//!   too), then one line per live
//!   segment, `<n> <events> <done>...`, listing which of its events are done (delivered or
//!   dropped). Small; rewritten with each write. An index that cannot be read is not trusted
//!   with anything: the queue is rebuilt from the stored segments ([`Engine::rebuild`]).
//!
//! Plain text rather than JSON: reading it back needs nothing beyond splitting lines, which keeps
//! a JSON library out of the wasm, and the properties are stored unescaped, as they are sent.
//!
//! A segment whose events are all done is removed in the same `set` that drops it from the
//! index. One `set` call is atomic, so the index never names a segment that is not stored.
//! An event is removed only after the server accepted it; if the worker dies first, the event
//! is sent again with the same `Idempotency-Key` (a server that honours it stores it once; one
//! that does not stores a duplicate: delivery is at least once).
//!
//! Files: `format` (stored text), `segment` (one segment in memory), `write` (the write
//! pipeline), `delivery` (the gate and backoff), `restore` (a start), `report` (answers).

use super::config::{Config, Credentials};
use super::error::{Error, ErrorCode};
use super::event::{field, is_event_id, is_uuid, line_stored_bytes, new_install_id, request_body, NewEvent, Rng};
use super::exception::Throttle;
use super::lifecycle::{Seen, LIFECYCLE_KEY};
use super::policy::{backoff_ms, Verdict};
use super::profile::{Profile, PROFILE_KEY};
use serde::Serialize;
use std::fmt::Write as _;

mod delivery;
mod format;
mod id_set;
mod report;
mod restore;
mod segment;
mod write;

use delivery::Gate;
pub use delivery::{NETWORK_BACKOFF_CAP_MS, NETWORK_CHARGES_MIN, OFFLINE_RECHECK_MS, PAUSE_PROBE_MS};
use format::*;
pub use format::{segment_key, IndexState, INDEX_KEY, INSTALL_KEY, SEGMENT_PREFIX};
pub use report::*;
pub use segment::SEGMENT_EVENTS;
use segment::*;

/// Done-marks are written after this many, or after [`ACK_DELAY_MS`], whichever comes first:
/// a drain costs one index write per five delivered events, not one per event. Every mark not
/// yet written when Chrome stops the worker is a resend (a duplicate, against a server that does
/// not honour `Idempotency-Key`); the curve that chose five is in `bench/README.md`.
pub const ACK_BATCH: usize = 5;

/// See [`ACK_BATCH`].
pub const ACK_DELAY_MS: u64 = 200;

/// The message of every eviction.
const EVICTED: &str = "the queue was full; the oldest events were evicted";

#[derive(Debug)]
struct Writing {
    segments: Vec<Segment>,
    /// The tickets of its events, one each, consecutive from `first_ticket`.
    first_ticket: u64,
    tickets: usize,
    removed: Vec<u64>,
    enabled_written: bool,
    /// `set_enabled(false, purge: true)` came while this write was out.
    purged: bool,
    /// It stores every segment again ([`Engine::storage_lost`]).
    rewrite: bool,
    /// The install id it stores.
    install: Option<String>,
    /// The generations of the profile and the lifecycle record it stores.
    profile: Option<u64>,
    lifecycle: Option<u64>,
    /// The done-marks not stored when it was planned: its index stores them.
    marks: usize,
}

/// The engine. See the module documentation. Its state, by concern: the queue of events, the
/// write pipeline, the delivery gate, the user's consent, and what it reports.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    rng: Rng,
    queue: Queue,
    store: StoreState,
    delivery: DeliveryState,
    consent: Consent,
    install: Install,
    report: Reports,
}

/// Who sends: the install's id (`$install_id` on every event) and the profile (the identified
/// user and the super properties), and whether each is stored. Nothing stored reads as the
/// empty profile and no lifecycle record: by default they need no storing.
#[derive(Debug, Default)]
struct Install {
    id: Option<String>,
    persisted: bool,
    /// The id was created at this start (none was stored).
    created: bool,
    profile: Record<Profile>,
    /// What the last start saw (versions, the last `$daily_active`): see `core::lifecycle`.
    lifecycle: Record<Option<Seen>>,
}

/// A value kept in `chrome.storage.local` beside the queue, written by the next write after each
/// change (in the same `set` as the events tracked with it).
#[derive(Debug)]
struct Record<T> {
    value: T,
    /// Bumped at each change.
    generation: u64,
    /// The generation stored (`None`: it was removed by other code).
    stored: Option<u64>,
}

impl<T: Default> Default for Record<T> {
    fn default() -> Self {
        Record { value: T::default(), generation: 0, stored: Some(0) }
    }
}

impl<T> Record<T> {
    /// The value read from storage: stored as it is.
    fn adopt(&mut self, value: T) {
        self.value = value;
        self.stored = Some(self.generation);
    }
    fn change<R>(&mut self, change: impl FnOnce(&mut T) -> R) -> R {
        self.generation += 1;
        change(&mut self.value)
    }
    /// The generation to write, when the stored one is older.
    fn due(&self) -> Option<u64> {
        (self.stored != Some(self.generation)).then_some(self.generation)
    }
}

/// The events: stored segments, and those `track` accepted that no write carries yet.
#[derive(Debug)]
struct Queue {
    segments: Vec<Segment>,
    next_seq: u64,
    live_count: usize,
    live_bytes: usize,
    /// Ids of the queued events that came with a dedup key (of the segments read).
    dedup_live: id_set::IdSet,
    /// The index lines `[n, events, done...]` of the stored segments not read yet, oldest
    /// first ([`Engine::begin_restore`]), and their events not done.
    unloaded: Vec<Vec<u64>>,
    unloaded_live: usize,
    /// The index lines of stored segments an opt-out with purge dropped before they were read:
    /// read all the same, to report each event to `onDrop`, then removed.
    purging: Vec<Vec<u64>>,
    /// The events `track` accepted and no write carries yet, in the segments they will be
    /// written as (numbered then); the oldest may be done (evicted), the others are live.
    pending: Vec<Segment>,
    /// Live pending events (their tickets are the last ones given, consecutive: only the
    /// oldest is ever evicted), and their stored bytes.
    pending_count: usize,
    pending_bytes: usize,
    next_ticket: u64,
}

/// The write pipeline (`write.rs`): one write out at a time, the done-marks waiting for one.
#[derive(Debug)]
struct StoreState {
    writing: Option<Writing>,
    unremoved: Vec<u64>,
    dirty_marks: usize,
    dirty_since: Option<u64>,
    force_write: bool,
    /// Done-marks per index write (see [`ACK_BATCH`]).
    ack_batch: usize,
    /// The next write stores every segment again (see [`Engine::storage_lost`]).
    rewrite_all: bool,
    /// The start could not read the stored queue: nothing is written until it is read
    /// ([`Engine::hold_writes_until_restored`]), or a write would overwrite what is stored.
    unread: bool,
    /// The last write failed (a full quota, storage refusing): sending is not held back for
    /// done-marks that cannot be stored now (they would wait with their events undelivered).
    failing: bool,
    /// Done-marks not yet in a committed index (waiting, or in the write out): each is an event
    /// a stopped worker would send again. Bounded with the requests out (see `send_cap`).
    unpersisted: usize,
    storage_writes: u64,
}

/// The delivery gate (`delivery.rs`).
#[derive(Debug)]
struct DeliveryState {
    /// The slots sent before, not done and not in flight: they wait for another attempt. Few:
    /// a failed request adds one, its next attempt takes it out.
    /// With each, its `not_before` (which changes only while it is in flight).
    retrying: Vec<(SlotRef, u64)>,
    in_flight: usize,
    /// The requests out, at most `concurrency`.
    flights: Vec<Flight>,
    /// The number the next request gets: requests are numbered in the order they are sent.
    next_request: u64,
    /// Failures in a row; a failure of a request sent before the last counted one ran alongside
    /// it (one outage seen by several requests) and is not counted again. See `failure_mark`.
    failures: u32,
    /// `next_request` when the last failure was counted.
    failure_mark: u64,
    /// Events whose request failed at the network level, each with `next_request` at that
    /// moment. An answer from the server to a request sent after that charges the failure to
    /// the event (the network worked; its request did not); a network failure of another
    /// request sent after it forgives it (an outage, not the event). An event charged
    /// `retry.maxAttempts` times is dropped as `undeliverable`; healthy events are never
    /// charged for an outage.
    suspects: Vec<(SlotRef, u64)>,
    /// Which credentials requests carry: a refusal of older ones does not pause the new ones.
    credentials_gen: u32,
    gate: Gate,
    /// The end of the latest wait the server asked for (`Retry-After` and kin); 0 if none. Kept
    /// apart from `gate` so that an answer to a request sent *before* that response (a late
    /// success, a network error) cannot shorten it.
    retry_after_until: u64,
    requests: u64,
}

/// Opt-in or opt-out, and whether that choice is stored.
#[derive(Debug)]
struct Consent {
    enabled: bool,
    enabled_persisted: bool,
    /// Whether `restore` ran; before it, `set_enabled` is remembered and applied over what
    /// storage says (the user's latest word wins).
    restored: bool,
    consent_override: Option<bool>,
    purge_on_restore: bool,
}

/// What the engine reports: lifetime counters, the last error, the notes for the edge.
#[derive(Debug, Default)]
struct Reports {
    totals: Totals,
    last_error: Option<LastError>,
    error_active: bool,
    notes: Vec<Note>,
    /// Which errors are stored as `$exception` events.
    exceptions: Throttle,
}

impl Engine {
    /// An engine with an empty queue.
    pub fn new(config: Config, seed: u64) -> Engine {
        // A new install starts with the `enabled` option's choice; a stored choice replaces it.
        let enabled = config.enabled;
        Engine {
            config,
            rng: Rng::new(seed),
            queue: Queue {
                segments: Vec::new(),
                next_seq: 1,
                live_count: 0,
                live_bytes: 0,
                dedup_live: id_set::IdSet::default(),
                unloaded: Vec::new(),
                unloaded_live: 0,
                purging: Vec::new(),
                pending: Vec::new(),
                pending_count: 0,
                pending_bytes: 0,
                next_ticket: 1,
            },
            store: StoreState {
                writing: None,
                unremoved: Vec::new(),
                dirty_marks: 0,
                dirty_since: None,
                force_write: false,
                ack_batch: ACK_BATCH,
                rewrite_all: false,
                unpersisted: 0,
                unread: false,
                failing: false,
                storage_writes: 0,
            },
            delivery: DeliveryState {
                retrying: Vec::new(),
                in_flight: 0,
                flights: Vec::new(),
                next_request: 0,
                failures: 0,
                failure_mark: 0,
                suspects: Vec::new(),
                credentials_gen: 0,
                gate: Gate::Open,
                retry_after_until: 0,
                requests: 0,
            },
            consent: Consent { enabled, enabled_persisted: enabled, restored: false, consent_override: None, purge_on_restore: false },
            install: Install::default(),
            report: Reports::default(),
        }
    }

    /// The install id read from storage (`stored`), or, when there is none (a first start, an
    /// opt-out with purge, storage cleared) or it is not an id, a new random one, stored with the
    /// next write. Call before [`Engine::restore`].
    pub fn adopt_install_id(&mut self, stored: Option<&str>) {
        match stored.filter(|s| is_uuid(s)) {
            Some(id) => (self.install.id, self.install.persisted) = (Some(id.into()), true),
            None => {
                self.new_install_id();
                self.install.created = true;
            }
        }
    }

    /// A new random install id, to be stored by the next write.
    fn new_install_id(&mut self) {
        (self.install.id, self.install.persisted) = (Some(new_install_id(&mut self.rng)), false);
        self.write_soon();
    }

    /// The install id, once [`Engine::adopt_install_id`] gave one.
    pub fn install_id(&self) -> Option<&str> {
        self.install.id.as_deref()
    }

    /// The profile read from storage (`None`: none stored). A damaged one is reported and
    /// replaced by an empty profile, stored with the next write. Call before [`Engine::restore`].
    pub fn adopt_profile(&mut self, stored: Option<&str>, now: u64) {
        let Some(text) = stored else { return };
        match Profile::decode(text) {
            Some(profile) => self.install.profile.adopt(profile),
            None => {
                let message = "the stored profile (user id and super properties) was unreadable; it was reset";
                self.fail(Error::new(ErrorCode::StorageError, message), now);
                self.change_profile(|p| *p = Profile::default());
            }
        }
    }

    /// What the last start saw, read from storage (a damaged record counts as none). Call
    /// before [`Engine::restore`].
    pub fn adopt_lifecycle(&mut self, stored: Option<&str>) {
        if let Some(seen) = stored.and_then(Seen::decode) {
            self.install.lifecycle.adopt(Some(seen));
        }
    }

    /// What the last start saw (`None`: nothing stored).
    pub fn lifecycle(&self) -> Option<&Seen> {
        self.install.lifecycle.value.as_ref()
    }

    /// Records what this start saw, stored by the next write with the events it caused.
    pub fn set_lifecycle(&mut self, seen: Seen) {
        if self.install.lifecycle.value.as_ref() != Some(&seen) {
            self.install.lifecycle.change(|s| *s = Some(seen));
            self.write_soon();
        }
    }

    /// Whether this start created the install id: nothing of the install was stored.
    pub fn new_install(&self) -> bool {
        self.install.created
    }

    /// An event `beforeSend` dropped (`filtered`), or one of an install the `sampleRate` leaves
    /// out (`sampled`): never stored, counted. Stored with the next write of the index.
    pub fn count_unstored(&mut self, sampled: bool) {
        let d = &mut self.report.totals.dropped;
        if sampled {
            d.sampled += 1;
        } else {
            d.filtered += 1;
        }
    }

    /// The identified user and the super properties.
    pub fn profile(&self) -> &Profile {
        &self.install.profile.value
    }

    /// Changes the profile by `change`; it is stored by the next write.
    pub fn change_profile<T>(&mut self, change: impl FnOnce(&mut Profile) -> T) -> T {
        let out = self.install.profile.change(change);
        self.write_soon();
        out
    }

    /// Whether the opt-in choice and the profile, as they are now, are stored (as far as they
    /// will be: see [`Engine::profile_due`]).
    pub fn settings_persisted(&self) -> bool {
        self.consent_persisted() && self.profile_due().is_none()
    }

    /// The profile's generation to write, if any. Opted out, nothing about the user is stored:
    /// a changed profile stays in memory (written once the user opts in), unless it is the
    /// empty one (a reset or a purge), which erases what was stored.
    pub(super) fn profile_due(&self) -> Option<u64> {
        self.install.profile.due().filter(|_| self.consent.enabled || self.install.profile.value == Profile::default())
    }

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
    fn enforce_bounds(&mut self, now: u64) {
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

    /// Done-marks per index write (at least 1; [`ACK_BATCH`] unless changed): fewer means fewer
    /// resends after the worker is stopped, and more storage writes. For measurements.
    pub fn set_ack_batch(&mut self, marks: usize) {
        self.store.ack_batch = marks.max(1);
    }

    /// The credentials to send.
    pub fn credentials(&self) -> &Credentials {
        &self.config.credentials
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Opt-in or opt-out. Disabling stops collection and delivery; with `purge`, every queued
    /// event is dropped (counted as `purged`). The choice is persisted by the next write.
    /// Before [`Engine::restore`], the choice is also remembered and applied over the stored
    /// one (and a purge to the stored queue) once it is read.
    pub fn set_enabled(&mut self, enabled: bool, purge: bool, now: u64) {
        self.consent.enabled = enabled;
        if !self.consent.restored {
            self.consent.consent_override = Some(enabled);
            self.consent.purge_on_restore |= purge;
        }
        if !enabled {
            let (first, segments) = self.take_pending();
            self.settle(&segments, first, TicketResult::Disabled);
        }
        if purge {
            self.purge(now);
        }
        self.write_soon();
    }

    /// Drops every queued event as `purged` (also those of the write in progress), and forgets
    /// the install id (a new one from now on).
    fn purge(&mut self, now: u64) {
        if self.install.id.is_some() {
            self.new_install_id();
        }
        self.change_profile(|p| *p = Profile::default());
        self.purge_unloaded();
        if let Some(w) = self.store.writing.as_mut() {
            w.purged = true;
        }
        for si in 0..self.queue.segments.len() {
            for i in self.queue.segments[si].cursor..self.queue.segments[si].slots.len() {
                let s = &self.queue.segments[si];
                if !s.slots[i].done {
                    self.drop_slot(SlotRef { seq: s.seq, index: i as u32 }, DropReason::Purged, "purged on opt-out".into(), now);
                }
            }
        }
    }

    /// Whether the stored queue has been read ([`Engine::restore`] or [`Engine::rebuild`]).
    pub fn restored(&self) -> bool {
        self.consent.restored
    }

    /// Whether tracking is enabled.
    pub fn enabled(&self) -> bool {
        self.consent.enabled
    }

    /// Whether the opt-in/opt-out choice in memory is the one stored.
    pub fn consent_persisted(&self) -> bool {
        self.consent.enabled == self.consent.enabled_persisted && self.store.writing.is_none()
    }

    /// Takes what the edge must pass on (settled tickets, drops, errors), oldest first.
    pub fn drain_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.report.notes)
    }

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
    fn marks_due_now(&self) -> bool {
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

    /// The start could not read the stored queue (the edge reads it again): nothing is written
    /// until a restore ([`Engine::begin_restore`], [`Engine::rebuild`]) has read it, so that no
    /// write replaces the stored index and segments with the few events tracked meanwhile.
    pub fn hold_writes_until_restored(&mut self) {
        self.store.unread = true;
    }

    /// Whether writes wait for the stored queue to be read ([`Engine::hold_writes_until_restored`]).
    pub fn writes_held(&self) -> bool {
        self.store.unread
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
            exceptions_throttled: self.report.exceptions.throttled,
        }
    }

    fn has_unsent(&self) -> bool {
        self.queue.live_count > self.delivery.in_flight
    }

    /// The index in `segments` of segment `seq`.
    fn seg_index(&self, seq: u64) -> Option<usize> {
        self.queue.segments.binary_search_by_key(&seq, |s| s.seq).ok()
    }

    fn slot_mut(&mut self, r: SlotRef) -> Option<&mut Slot> {
        let si = self.seg_index(r.seq)?;
        self.queue.segments.get_mut(si)?.slots.get_mut(r.index as usize)
    }

    /// Marks a slot done (delivered or dropped) and schedules the index write.
    fn finish(&mut self, r: SlotRef, now: u64) {
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

    fn drop_slot(&mut self, r: SlotRef, reason: DropReason, message: String, now: u64) {
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

    /// Asks for a write now (not after a batch of done-marks or the delay): what changed must
    /// be stored before a stop could lose it.
    fn write_soon(&mut self) {
        self.store.force_write = true;
        self.store.dirty_marks += 1;
    }

    fn mark_dirty(&mut self, now: u64) {
        self.store.dirty_marks += 1;
        self.store.dirty_since.get_or_insert(now);
    }

    /// Whether the error `fingerprint`, thrown at `now`, is stored as an `$exception` (see
    /// [`Throttle`]); the rest are counted in `stats().exceptionsThrottled`.
    pub fn admit_exception(&mut self, fingerprint: u64, now: u64) -> bool {
        self.report.exceptions.admit(fingerprint, now)
    }

    /// Reports an error of the customer's code (`beforeSend`) through `onError`; delivery's state
    /// is not touched.
    pub fn report_error(&mut self, error: Error, _now: u64) {
        self.report.notes.push(Note::Error(error));
    }

    /// Records an error; reports it unless it repeats the one still in force. `last_error` stays
    /// after a recovery (it is what `stats()` shows for support); `error_active` ends with it.
    fn fail(&mut self, error: Error, now: u64) {
        let repeat = self.report.error_active && self.report.last_error.as_ref().is_some_and(|e| e.code == error.code.as_str());
        self.report.last_error = Some(LastError { code: error.code.as_str(), message: error.message.clone(), at: now });
        self.report.error_active = true;
        if !repeat {
            self.report.notes.push(Note::Error(error));
        }
    }
}
