//! The delivery engine: the durable queue and the decisions about it, with no I/O.
//!
//! The tracker core (`core::tracker`) feeds it what happened (an event tracked, a write
//! committed, a response received, the time) and asks it what to do next
//! ([`Engine::take_write_plan`], [`Engine::poll_send`]).
//! Everything here is deterministic given the clock and the seed, and tested on the host.
//!
//! # Storage layout (in `chrome.storage.local`)
//! - `inhouse:v1:seg:<n>`: one *segment*: its events, one line each, `id<TAB>name<TAB>properties`
//!   (the properties as the JSON text that is sent). Written once, never rewritten: a burst of
//!   `track` calls becomes one or a few new segments in a single `set`, so no write ever reads,
//!   modifies and writes back a shared record.
//! - `inhouse:v1:index`: lines of space-separated integers. First a checksum of the lines after
//!   it (`format::index_checksum`), then `2 <next segment> <enabled 0|1> <wait until> <pause
//!   until> <paused credentials>` (2 is the format's version; the waits the server asked for, so
//!   that a restarted worker honours them; an index without the last three is read too), then the
//!   lifetime counters `delivered retried rejected evicted retries_exhausted purged corrupt
//!   undeliverable filtered sampled` (seven or eight are read too), then one line per live
//!   segment, `<n> <events> <done>...`, listing which of its events are done (delivered or
//!   dropped). Small; rewritten with each write. An index that cannot be read, or whose checksum
//!   fails, is not trusted with anything: the queue is rebuilt from the stored segments
//!   ([`Engine::rebuild`]). Version 1 had no checksum line; it is read once the stored segment
//!   keys show that it accounts for every segment ([`Engine::index_accounts_for`]), and so is a
//!   missing index (none may be stored).
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
//! Files, by concern: `queue` (an event offered, the bounds, an event done or dropped), `segment`
//! (one segment in memory), `write` (the write pipeline), `format` (stored text), `delivery` (the
//! gate and backoff), `restore` (a start), `consent` (opt-in, opt-out, purge), `records` (the
//! install id, the profile and the lifecycle record, written with the events; their state is
//! private to that file), `status` (next wake-up, flush answers, stats), `report` (answers),
//! `id_set` (the dedup ids).

use super::config::{Config, Credentials};
use super::error::{Error, ErrorCode};
use super::event::{is_event_id, request_body, NewEvent, Rng};
use super::lifecycle::{Seen, LIFECYCLE_KEY};
use super::policy::{backoff_ms, Verdict};
use super::profile::{Profile, PROFILE_KEY};
use std::fmt::Write as _;

mod consent;
mod delivery;
mod format;
mod gate;
mod id_set;
mod queue;
mod records;
mod report;
mod restore;
mod segment;
mod status;
mod write;

use format::*;
pub use format::{segment_key, IndexState, INDEX_KEY, INSTALL_KEY, SEGMENT_PREFIX};
use gate::Gate;
pub use gate::{NETWORK_BACKOFF_CAP_MS, NETWORK_CHARGES_MIN, OFFLINE_RECHECK_MS, PAUSE_PROBE_MS};
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
    /// What it stores of the install id, the profile and the lifecycle record.
    records: records::RecordsWritten,
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
    records: records::Records,
    report: Reports,
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
            records: records::Records::default(),
            report: Reports::default(),
        }
    }

    /// The install id read from storage (`stored`), or, when there is none (a first start, an
    /// opt-out with purge, storage cleared) or it is not an id, a new random one, stored with the
    /// next write. Call before [`Engine::restore`].
    pub fn adopt_install_id(&mut self, stored: Option<&str>) {
        if self.records.adopt_install_id(stored, &mut self.rng) {
            self.write_soon();
        }
    }

    /// A new random install id, to be stored by the next write.
    fn new_install_id(&mut self) {
        self.records.new_install_id(&mut self.rng);
        self.write_soon();
    }

    /// The install id, once [`Engine::adopt_install_id`] gave one.
    pub fn install_id(&self) -> Option<&str> {
        self.records.install_id()
    }

    /// The profile read from storage (`None`: none stored). A damaged one is reported and
    /// replaced by an empty profile, stored with the next write. Call before [`Engine::restore`].
    pub fn adopt_profile(&mut self, stored: Option<&str>, now: u64) {
        let Some(text) = stored else { return };
        if !self.records.adopt_profile(text) {
            let message = "the stored profile (user id and super properties) was unreadable; it was reset";
            self.fail(Error::new(ErrorCode::StorageError, message), now);
            self.write_soon();
        }
    }

    /// What the last start saw, read from storage (a damaged record counts as none). Call
    /// before [`Engine::restore`].
    pub fn adopt_lifecycle(&mut self, stored: Option<&str>) {
        self.records.adopt_lifecycle(stored);
    }

    /// What the last start saw (`None`: nothing stored).
    pub fn lifecycle(&self) -> Option<&Seen> {
        self.records.lifecycle()
    }

    /// Records what this start saw, stored by the next write with the events it caused.
    pub fn set_lifecycle(&mut self, seen: Seen) {
        if self.records.set_lifecycle(seen) {
            self.write_soon();
        }
    }

    /// Whether this start created the install id: nothing of the install was stored.
    pub fn new_install(&self) -> bool {
        self.records.created()
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
        self.records.profile()
    }

    /// Changes the profile by `change`; it is stored by the next write.
    pub fn change_profile<T>(&mut self, change: impl FnOnce(&mut Profile) -> T) -> T {
        let out = self.records.change_profile(change);
        self.write_soon();
        out
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

    /// Takes what the edge must pass on (settled tickets, drops, errors), oldest first.
    pub fn drain_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.report.notes)
    }

    /// Whether there are notes to pass on.
    pub fn has_notes(&self) -> bool {
        !self.report.notes.is_empty()
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
