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
//!   retries_exhausted purged corrupt undeliverable` (seven are read too), then one line per live
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

use super::config::{Config, Credentials};
use super::error::{Error, ErrorCode};
use super::event::{field, line_stored_bytes, request_body, NewEvent, Rng};
use super::policy::{backoff_ms, Verdict};
use super::text::{parse_u64, push_u64};
use serde::Serialize;

/// Key of the index record.
pub const INDEX_KEY: &str = "inhouse:v1:index";
/// Prefix of every segment key.
pub const SEGMENT_PREFIX: &str = "inhouse:v1:seg:";
/// Events per segment at most: bounds the size of one storage value.
pub const SEGMENT_EVENTS: usize = 500;
/// Done-marks are written after this many, or after [`ACK_DELAY_MS`], whichever comes first:
/// a drain costs one index write per five delivered events, not one per event. Every mark not
/// yet written when Chrome stops the worker is a resend (a duplicate, against a server that does
/// not honour `Idempotency-Key`); the curve that chose five is in `bench/README.md`.
pub const ACK_BATCH: usize = 5;
/// See [`ACK_BATCH`].
pub const ACK_DELAY_MS: u64 = 200;
/// While the server refuses the credentials, one probe this often (nothing is dropped meanwhile).
pub const PAUSE_PROBE_MS: u64 = 10 * 60_000;
/// While `navigator.onLine` is false, look again this often.
pub const OFFLINE_RECHECK_MS: u64 = 5_000;
/// An event is dropped as `undeliverable` after `retry.maxAttempts` network failures charged to
/// it, and never fewer than this: one reset connection must not drop an event, even with
/// `maxAttempts: 1`.
pub const NETWORK_CHARGES_MIN: u32 = 10;
/// Network errors back off no longer than this, so delivery resumes soon after the network does.
pub const NETWORK_BACKOFF_CAP_MS: u64 = 60_000;

/// The storage key of segment `seq`.
pub fn segment_key(seq: u64) -> String {
    let mut key = String::from(SEGMENT_PREFIX);
    push_u64(&mut key, seq);
    key
}

/// The number of a segment key, `None` for any other key.
fn segment_seq(key: &str) -> Option<u64> {
    key.strip_prefix(SEGMENT_PREFIX).and_then(parse_number)
}

/// What a start finds under [`INDEX_KEY`] (see [`Engine::index_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexState {
    /// Nothing: a first start (or everything was cleared).
    Absent,
    /// An index: read the segments it names.
    Readable,
    /// Something that is not an index: rebuild from every stored segment.
    Unreadable,
}

/// The first number of the index; an index with any other is unreadable.
const INDEX_VERSION: u64 = 1;

/// The index record, read back (see the module documentation for its text).
#[derive(Debug)]
struct IndexDoc {
    next: u64,
    enabled: bool,
    /// The end of a wait the server asked for (`Retry-After`), 0 if none.
    wait_until: u64,
    /// The next probe of a pause for refused credentials, 0 if none, and which credentials
    /// were refused ([`credentials_key`]).
    pause_until: u64,
    pause_key: u64,
    totals: Totals,
    /// One line per stored segment: `[n, events, done...]`, at least two numbers.
    segments: Vec<Vec<u64>>,
}

impl IndexDoc {
    /// `None` for anything but a well-formed index of this version. The first line is
    /// `1 next enabled` or, since waits are kept, `1 next enabled wait_until pause_until
    /// pause_key`; the totals have seven numbers or, since `undeliverable`, eight. A counter
    /// beyond 2^53 (JavaScript's exact integers) or a segment line claiming more than
    /// [`SEGMENT_EVENTS`] events is damage, not data. Segment lines come back in order, once
    /// each.
    fn decode(text: &str) -> Option<IndexDoc> {
        const EXACT: u64 = 1 << 53;
        let mut head = number_lines(text)?;
        if head.len() < 2 || head[2..].iter().any(|line| line.len() < 2 || line[1] > SEGMENT_EVENTS as u64) {
            return None;
        }
        if head.iter().flatten().any(|&n| n > EXACT) {
            return None;
        }
        let mut segments = head.split_off(2);
        segments.sort_unstable_by_key(|line| line[0]);
        segments.dedup_by_key(|line| line[0]);
        let (next, enabled, wait_until, pause_until, pause_key) = match head[0][..] {
            [INDEX_VERSION, next, enabled @ (0 | 1)] => (next, enabled, 0, 0, 0),
            [INDEX_VERSION, next, enabled @ (0 | 1), wait, pause, key] => (next, enabled, wait, pause, key),
            _ => return None,
        };
        let (delivered, retried, rejected, evicted, retries_exhausted, purged, corrupt, undeliverable) = match head[1][..] {
            [a, b, c, d, e, f, g] => (a, b, c, d, e, f, g, 0),
            [a, b, c, d, e, f, g, h] => (a, b, c, d, e, f, g, h),
            _ => return None,
        };
        let dropped = DropCounts { rejected, evicted, retries_exhausted, purged, corrupt, undeliverable };
        // A segment numbered at or past `next` would be overwritten by the next write.
        let next = segments.last().map_or(next, |line| next.max(line[0] + 1));
        Some(IndexDoc { next, enabled: enabled == 1, wait_until, pause_until, pause_key, totals: Totals { delivered, retried, dropped }, segments })
    }
}

/// Text as lines of whitespace-separated numbers, read exactly as `str::lines`,
/// `split_ascii_whitespace` and `parse::<u64>` would; `None` if any word is not a number.
fn number_lines(text: &str) -> Option<Vec<Vec<u64>>> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut line = Vec::new();
    let mut word = 0;
    for i in 0..=bytes.len() {
        // The end of the text ends a last line that no newline ended.
        let b = match bytes.get(i) {
            Some(&b) => b,
            None if matches!(bytes.last(), None | Some(b'\n')) => break,
            None => b'\n',
        };
        if b.is_ascii_whitespace() {
            if word < i {
                line.push(parse_number(text.get(word..i)?)?);
            }
            word = i + 1;
            if b == b'\n' {
                lines.push(std::mem::take(&mut line));
            }
        }
    }
    Some(lines)
}

/// A number as `str::parse::<u64>` reads it: decimal digits, optionally after one `+`.
fn parse_number(word: &str) -> Option<u64> {
    parse_u64(word.strip_prefix('+').unwrap_or(word))
}

/// A segment read back from its text: one line per event, `id<TAB>name<TAB>properties`.
/// No field can hold either separator: ids are hex digits and `-`, names letters, digits and
/// `_`, and the properties' JSON text escapes every control character. `None` unless every
/// line holds exactly three fields. The text becomes the segment's own: no event is copied.
fn decode_segment(seq: u64, text: String, events: u64) -> Option<Segment> {
    let bytes = text.as_bytes();
    // As many slots as the index says, if the text can hold them (a line is 3 bytes at least).
    let mut slots = Vec::with_capacity((bytes.len() / 3 + 1).min(events as usize));
    // `props_at` is where the last field started: the line's start, or after its last tab.
    let (mut start, mut tabs, mut name_at, mut props_at) = (0, 0, 0, 0);
    // One step past the end, which ends the last line.
    for i in 0..bytes.len() + 1 {
        match bytes.get(i) {
            Some(b'\t') => {
                tabs += 1;
                (name_at, props_at) = (props_at, i + 1);
            }
            Some(b'\n') | None => {
                if tabs != 2 {
                    return None;
                }
                let at = |k: usize| u32::try_from(k).ok();
                slots.push(Slot::new(at(start)?, at(name_at)?, at(props_at)?));
                (start, tabs, props_at) = (i + 1, 0, i + 1);
            }
            Some(_) => {}
        }
    }
    let live = slots.len();
    Some(Segment { seq, text, slots, live, cursor: 0, fresh: 0 })
}

/// Lifetime counters, persisted with the index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub delivered: u64,
    pub retried: u64,
    pub dropped: DropCounts,
}

/// Why events were dropped, counted. Every drop is also reported through `onDrop`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DropCounts {
    /// The server rejected the event (400, 413, 422).
    pub rejected: u64,
    /// The queue was full (count or bytes); the oldest events made room.
    pub evicted: u64,
    /// The event failed `retry.maxAttempts` times on server errors.
    pub retries_exhausted: u64,
    /// The user opted out with `purge: true`.
    pub purged: u64,
    /// Stored data could not be read back (corrupt or missing segment).
    pub corrupt: u64,
    /// The event's own request kept failing at the network level while other events got
    /// through (a proxy or firewall refusing its payload): `retry.maxAttempts` such failures.
    pub undeliverable: u64,
}

/// Why one event was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    Rejected,
    Evicted,
    RetriesExhausted,
    Purged,
    Corrupt,
    Undeliverable,
}

impl DropReason {
    /// The reason as JavaScript sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Rejected => "rejected",
            DropReason::Evicted => "evicted",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::Purged => "purged",
            DropReason::Corrupt => "corrupt",
            DropReason::Undeliverable => "undeliverable",
        }
    }
}

/// The message of every eviction.
const EVICTED: &str = "the queue was full; the oldest events were evicted";

/// A dropped event, reported to `onDrop`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dropped {
    pub id: String,
    pub event_name: String,
    pub reason: DropReason,
    pub message: String,
}

/// How a `track` call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketResult {
    /// Durably queued.
    Queued,
    /// Made room for newer events before it could be stored.
    Evicted,
    /// Tracking is disabled (opt-out).
    Disabled,
    /// The write failed; the event was not accepted.
    Failed(Error),
}

/// Something the edge must pass on: settle a `track` promise, call a hook.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// `id`: the event's id, for the promise's answer.
    Ticket {
        ticket: u64,
        id: String,
        result: TicketResult,
    },
    Dropped(Dropped),
    Error(Error),
}

/// What `track` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Waiting for the next write; settles through `Note::Ticket`.
    Pending(u64),
    /// An event with the same dedup id is already queued: nothing added.
    Duplicate,
    /// Tracking is disabled.
    Disabled,
}

/// One storage write: `chrome.storage.local.set(set)` then `remove(remove)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

/// [`Write`] with the segments' text left to [`Engine::segment_text`]: `set` the segments
/// (`segment_key` of each number) and the index (`INDEX_KEY`) in one call, then `remove`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WritePlan {
    /// The numbers of the new segments, in order.
    pub segments: Vec<u64>,
    /// Segments already stored that must be written again (their text from
    /// [`Engine::stored_segment_str`]): other code removed them ([`Engine::storage_lost`]).
    pub rewrite: Vec<u64>,
    pub index: String,
    pub remove: Vec<String>,
}

/// One request to perform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    pub slot: SlotRef,
    pub id: String,
    pub name: String,
    pub body: String,
}

/// Where an event sits in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotRef {
    pub seq: u64,
    pub index: u32,
}

/// Why delivery is not progressing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    Disabled,
    Paused,
    Offline,
    Backoff,
}

impl BlockReason {
    /// The reason as JavaScript sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::Disabled => "disabled",
            BlockReason::Paused => "paused",
            BlockReason::Offline => "offline",
            BlockReason::Backoff => "backoff",
        }
    }
}

/// The answer to `flush`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlushStatus {
    /// `"empty"` or `"blocked"`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<BlockReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<u64>,
    pub queued: usize,
}

/// Counters and state for `stats()`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub state: &'static str,
    pub enabled: bool,
    pub queued: usize,
    pub pending_write: usize,
    pub in_flight: usize,
    pub bytes_stored: usize,
    pub delivered: u64,
    pub retried: u64,
    pub dropped: DropCounts,
    pub storage_writes: u64,
    pub requests: u64,
    pub next_attempt_at: Option<u64>,
    pub last_error: Option<LastError>,
}

/// The most recent delivery or storage error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub code: &'static str,
    pub message: String,
    pub at: u64,
}

/// The first slot from `k` on that is not done (or `slots.len()`).
fn skip_done(slots: &[Slot], mut k: usize) -> usize {
    while slots.get(k).is_some_and(|s| s.done) {
        k += 1;
    }
    k
}

/// One event of a segment: where its line sits in the segment's text, and its delivery state.
#[derive(Clone, Copy, Debug)]
struct Slot {
    not_before: u64,
    /// Where its line starts (its id), where its name starts, where its properties start.
    start: u32,
    name_at: u32,
    props_at: u32,
    /// Server failures: at most `retry.maxAttempts`, 1,000.
    attempts: u16,
    /// Network failures charged to this event (see `Engine::suspects`): at most 255.
    net_failures: u8,
    done: bool,
    in_flight: bool,
}

impl Slot {
    fn new(start: u32, name_at: u32, props_at: u32) -> Slot {
        Slot { not_before: 0, start, name_at, props_at, attempts: 0, net_failures: 0, done: false, in_flight: false }
    }
}

/// A request out: its event, its number in send order, and which credentials it carries.
#[derive(Clone, Copy, Debug)]
struct Flight {
    slot: SlotRef,
    seq: u64,
    credentials: u32,
}

/// A key for the refused credentials a stored pause belongs to: FNV-1a of the token id and the
/// app id (never the secret, which is not stored in any form).
fn credentials_key(credentials: &Credentials, app_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in credentials.token_id.bytes().chain([0]).chain(app_id.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    // Stored as a number JavaScript reads exactly.
    h >> 11
}

/// A segment: its stored text (the events' lines joined by `\n`, exactly as written) and a
/// small slot per event. Pending events are appended to the segment they will be written in.
#[derive(Clone, Debug)]
struct Segment {
    seq: u64,
    text: String,
    slots: Vec<Slot>,
    live: usize,
    /// The first slot not done (or `slots.len()`): where eviction starts looking.
    cursor: usize,
    /// The first slot neither done nor ever sent (or `slots.len()`). Every slot before it is
    /// done, in flight, or waiting in `Engine::retrying`; every one from it on, not done, is
    /// sendable at once.
    fresh: usize,
}

impl Segment {
    fn new(seq: u64) -> Segment {
        Segment { seq, text: String::new(), slots: Vec::new(), live: 0, cursor: 0, fresh: 0 }
    }

    /// Appends an event's line.
    fn push(&mut self, event: &NewEvent) {
        if !self.slots.is_empty() {
            self.text.push('\n');
        }
        let start = self.text.len();
        self.text.push_str(event.line());
        // A segment holds at most `SEGMENT_EVENTS` events of at most `max_event_bytes`.
        let (name_at, props_at) = event.fields_at();
        let at = |k: usize| (start + k) as u32;
        self.slots.push(Slot::new(at(0), at(name_at), at(props_at)));
        self.live += 1;
    }

    /// Where slot `i`'s line ends.
    fn end(&self, i: usize) -> usize {
        self.slots.get(i + 1).map_or(self.text.len(), |next| next.start as usize - 1)
    }

    /// Slot `i`'s fields: its id, name and properties.
    fn fields(&self, i: usize) -> (&str, &str, &str) {
        let Some(slot) = self.slots.get(i) else {
            return ("", "", "");
        };
        let (name_at, props_at) = (slot.name_at as usize, slot.props_at as usize);
        let t = &self.text;
        (field(t, slot.start as usize, name_at - 1), field(t, name_at, props_at - 1), field(t, props_at, self.end(i)))
    }

    /// [`NewEvent::stored_bytes`] of slot `i`.
    fn stored_bytes(&self, i: usize) -> usize {
        line_stored_bytes(self.end(i) - self.slots.get(i).map_or(0, |s| s.start as usize))
    }

    /// The stored bytes of all its events (`NewEvent::stored_bytes` of each), from its text:
    /// its lines and `line_stored_bytes`' 22 more each, less the newlines between them (a
    /// written segment holds one event at least).
    fn all_stored_bytes(&self) -> usize {
        self.text.len() + 1 + 21 * self.slots.len()
    }

    /// Marks slot `i` done (it must be live) and moves the cursors past what is done.
    fn mark_done(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i) {
            slot.done = true;
            self.live -= 1;
        }
        self.advance();
    }

    fn advance(&mut self) {
        self.cursor = skip_done(&self.slots, self.cursor);
        self.fresh = skip_done(&self.slots, self.fresh.max(self.cursor));
    }

    /// Drops the events before the cursor (all done: evicted while pending) from the text.
    /// Once per write at most, and only after evictions.
    fn compact(&mut self) {
        let Some(cut) = self.slots.get(self.cursor).map(|s| s.start) else {
            return;
        };
        if cut == 0 {
            return;
        }
        self.text = self.text.get(cut as usize..).map(String::from).unwrap_or_default();
        self.slots = self.slots.get(self.cursor..).map(<[Slot]>::to_vec).unwrap_or_default();
        for slot in &mut self.slots {
            slot.start -= cut;
            slot.name_at -= cut;
            slot.props_at -= cut;
        }
        (self.cursor, self.fresh) = (0, 0);
    }
}

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
}

#[derive(Clone, Debug, PartialEq)]
enum Gate {
    Open,
    /// `server`: the server asked for the wait (5xx, 429); otherwise the network failed.
    Backoff {
        until: u64,
        server: bool,
    },
    Offline,
    Paused {
        probe_at: u64,
    },
}

/// A set of strings kept sorted: a binary search is all a set of ids needs, and it spares the
/// wasm a hash table and its hasher.
#[derive(Debug, Default)]
struct IdSet(Vec<String>);

impl IdSet {
    /// Where `id` is, or where it would go.
    fn find(&self, id: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|x| x.as_str().cmp(id))
    }

    /// Adds `id`; `false` if it was there already.
    fn insert(&mut self, id: &str) -> bool {
        let Err(at) = self.find(id) else { return false };
        self.0.insert(at, id.to_string());
        true
    }

    fn remove(&mut self, id: &str) {
        if let Ok(at) = self.find(id) {
            self.0.remove(at);
        }
    }
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    rng: Rng,
    segments: Vec<Segment>,
    next_seq: u64,
    live_count: usize,
    live_bytes: usize,
    /// Ids of the queued events that came with a dedup key.
    dedup_live: IdSet,
    /// The events `track` accepted and no write carries yet, in the segments they will be
    /// written as (numbered then); the oldest may be done (evicted), the others are live.
    pending: Vec<Segment>,
    /// Live pending events (their tickets are the last ones given, consecutive: only the
    /// oldest is ever evicted), and their stored bytes.
    pending_count: usize,
    pending_bytes: usize,
    /// The slots sent before, not done and not in flight: they wait for another attempt. Few:
    /// a failed request adds one, its next attempt takes it out.
    /// With each, its `not_before` (which changes only while it is in flight).
    retrying: Vec<(SlotRef, u64)>,
    next_ticket: u64,
    writing: Option<Writing>,
    unremoved: Vec<u64>,
    dirty_marks: usize,
    dirty_since: Option<u64>,
    force_write: bool,
    enabled: bool,
    enabled_persisted: bool,
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
    /// Whether `restore` ran; before it, `set_enabled` is remembered and applied over what
    /// storage says (the user's latest word wins).
    restored: bool,
    consent_override: Option<bool>,
    purge_on_restore: bool,
    /// Done-marks per index write (see [`ACK_BATCH`]).
    ack_batch: usize,
    /// The next write stores every segment again (see [`Engine::storage_lost`]).
    rewrite_all: bool,
    gate: Gate,
    /// The end of the latest wait the server asked for (`Retry-After` and kin); 0 if none. Kept
    /// apart from `gate` so that an answer to a request sent *before* that response (a late
    /// success, a network error) cannot shorten it.
    retry_after_until: u64,
    totals: Totals,
    storage_writes: u64,
    requests: u64,
    last_error: Option<LastError>,
    error_active: bool,
    notes: Vec<Note>,
}

impl Engine {
    /// An engine with an empty queue.
    pub fn new(config: Config, seed: u64) -> Engine {
        Engine {
            config,
            rng: Rng::new(seed),
            segments: Vec::new(),
            next_seq: 1,
            live_count: 0,
            live_bytes: 0,
            dedup_live: IdSet::default(),
            pending: Vec::new(),
            pending_count: 0,
            pending_bytes: 0,
            retrying: Vec::new(),
            next_ticket: 1,
            writing: None,
            unremoved: Vec::new(),
            dirty_marks: 0,
            dirty_since: None,
            force_write: false,
            enabled: true,
            enabled_persisted: true,
            in_flight: 0,
            flights: Vec::new(),
            next_request: 0,
            failures: 0,
            failure_mark: 0,
            suspects: Vec::new(),
            credentials_gen: 0,
            restored: false,
            consent_override: None,
            purge_on_restore: false,
            ack_batch: ACK_BATCH,
            rewrite_all: false,
            gate: Gate::Open,
            retry_after_until: 0,
            totals: Totals::default(),
            storage_writes: 0,
            requests: 0,
            last_error: None,
            error_active: false,
            notes: Vec::new(),
        }
    }

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
        self.next_seq = doc.next.max(1);
        self.enabled = doc.enabled;
        self.enabled_persisted = doc.enabled;
        self.totals = doc.totals.clone();
        self.restore_waits(&doc, now);
        let (mut lost_keys, mut lost) = (String::new(), 0);
        for meta in &doc.segments {
            let (seq, events, marks) = (meta[0], meta[1], &meta[2..]);
            let key = segment_key(seq);
            let seg = segment(&key).and_then(|text| decode_segment(seq, text, events));
            let Some(mut seg) = seg.filter(|s| s.slots.len() as u64 == events) else {
                // Each in-range done mark once: a damaged index may list more marks than events.
                let mut done = 0;
                for (k, i) in marks.iter().enumerate() {
                    if *i < events && !marks[..k].contains(i) {
                        done += 1;
                    }
                }
                lost += events.saturating_sub(done);
                self.unremoved.push(seq);
                self.mark_dirty(now);
                if !lost_keys.is_empty() {
                    lost_keys.push_str(", ");
                }
                lost_keys.push_str(&key);
                continue;
            };
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
            self.totals.dropped.corrupt += lost;
            push_u64(&mut lost_keys, lost);
            lost_keys.push_str(" events lost");
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
            self.next_seq = self.next_seq.max(seq + 1);
            match text.and_then(|t| decode_segment(seq, t, SEGMENT_EVENTS as u64)) {
                Some(seg) => {
                    events += seg.slots.len() as u64;
                    self.adopt(seg);
                }
                None => {
                    unreadable += 1;
                    self.unremoved.push(seq);
                }
            }
        }
        let mut msg = String::from("the stored queue index was unreadable; the queue was rebuilt from its segments (");
        push_u64(&mut msg, events);
        msg.push_str(" events kept, which may be sent again");
        if unreadable > 0 {
            msg.push_str("; ");
            push_u64(&mut msg, unreadable);
            msg.push_str(" unreadable segments lost, their events uncounted");
        }
        msg.push(')');
        self.fail(Error::new(ErrorCode::StorageError, msg), now);
        self.force_write = true;
        self.mark_dirty(now);
        self.finish_restore(now);
    }

    /// Takes a restored segment into the queue (its done slots marked).
    fn adopt(&mut self, mut seg: Segment) {
        seg.live = 0;
        self.live_bytes += seg.all_stored_bytes();
        for i in 0..seg.slots.len() {
            let slot = seg.slots[i];
            if slot.done {
                self.live_bytes -= seg.stored_bytes(i);
            } else {
                seg.live += 1;
                if seg.text.as_bytes().get(slot.start as usize..slot.start as usize + 2) == Some(b"d-") {
                    self.dedup_live.insert(seg.fields(i).0);
                }
            }
        }
        self.live_count += seg.live;
        seg.advance();
        self.segments.push(seg);
    }

    /// A wait or a pause the stored index carries, if it still runs (and, for a pause, the
    /// refused credentials are still the ones in use). Garbage is capped: no stored wait runs
    /// longer than the options allow.
    fn restore_waits(&mut self, doc: &IndexDoc, now: u64) {
        let wait_until = doc.wait_until.min(now + self.config.retry.max_retry_after_ms);
        if wait_until > now {
            self.retry_after_until = wait_until;
            self.gate = Gate::Backoff { until: wait_until, server: true };
            self.failures = 1;
        }
        let pause_until = doc.pause_until.min(now + PAUSE_PROBE_MS);
        if pause_until > now && doc.pause_key == credentials_key(&self.config.credentials, &self.config.app_id) {
            self.gate = Gate::Paused { probe_at: pause_until.max(self.retry_after_until) };
            self.failures = 1;
        }
    }

    /// The end of every restore: what the user chose before it wins over what was stored.
    fn finish_restore(&mut self, now: u64) {
        self.restored = true;
        if let Some(enabled) = self.consent_override.take() {
            self.enabled = enabled;
            if std::mem::take(&mut self.purge_on_restore) {
                self.purge(now);
            }
            self.force_write = true;
            self.mark_dirty(now);
        }
    }

    /// Offers a validated event. It is accepted once the write that carries it commits.
    pub fn track(&mut self, event: NewEvent, now: u64) -> Admission {
        self.offer(&event, now)
    }

    /// [`Engine::track`] by reference: the engine keeps a copy of the event's line, in the
    /// text of the segment it will be written in.
    pub fn offer(&mut self, event: &NewEvent, now: u64) -> Admission {
        if !self.enabled {
            return Admission::Disabled;
        }
        let id = event.id();
        if id.starts_with("d-") && !self.dedup_live.insert(id) {
            return Admission::Duplicate;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let full = self.pending.last().map_or(Some(0), |s| (s.slots.len() >= SEGMENT_EVENTS).then_some(s.text.len()));
        if let Some(size) = full {
            // In a burst, most likely the size of the last (full) one: no doubling, little slack.
            let mut seg = Segment::new(0);
            if size > 0 {
                seg.text.reserve(size);
                seg.slots.reserve(SEGMENT_EVENTS);
            }
            self.pending.push(seg);
        }
        if let Some(forming) = self.pending.last_mut() {
            forming.push(event);
        }
        self.pending_count += 1;
        self.pending_bytes += event.stored_bytes();
        self.enforce_bounds(now);
        Admission::Pending(ticket)
    }

    /// Evicts the oldest events until the queue fits its bounds. Events being sent are spared
    /// (they may already be delivered), so a burst can overshoot by at most `concurrency`.
    fn enforce_bounds(&mut self, now: u64) {
        let (max_events, max_bytes) = (self.config.limits.max_queue_events, self.config.limits.max_queue_bytes);
        let over = |e: &Engine| e.live_count + e.pending_count > max_events || e.live_bytes + e.pending_bytes > max_bytes;
        if !over(self) {
            return;
        }
        'segments: for si in 0..self.segments.len() {
            // Everything before the cursor is done already.
            for i in self.segments[si].cursor..self.segments[si].slots.len() {
                if !over(self) {
                    break 'segments;
                }
                let slot = &self.segments[si].slots[i];
                if !slot.done && !slot.in_flight {
                    let r = SlotRef { seq: self.segments[si].seq, index: i as u32 };
                    self.drop_slot(r, DropReason::Evicted, EVICTED.into(), now);
                }
            }
        }
        while over(self) && self.pending_count > 0 {
            // The oldest live pending event: the first live segment's cursor (pending events are
            // evicted in order, so the done ones are a prefix).
            let Some(seg) = self.pending.iter_mut().find(|s| s.live > 0) else {
                break;
            };
            let i = seg.cursor;
            let (id, name, _) = seg.fields(i);
            let (id, event_name) = (id.to_string(), name.to_string());
            self.pending_bytes -= seg.stored_bytes(i);
            seg.mark_done(i);
            if seg.live == 0 {
                self.pending.retain(|s| s.live > 0);
            }
            let ticket = self.next_ticket - self.pending_count as u64;
            self.pending_count -= 1;
            self.dedup_live.remove(&id);
            self.totals.dropped.evicted += 1;
            self.notes.push(Note::Dropped(Dropped { id: id.clone(), event_name, reason: DropReason::Evicted, message: EVICTED.into() }));
            self.notes.push(Note::Ticket { ticket, id, result: TicketResult::Evicted });
        }
    }

    /// Forgets the pending events, returning the first one's ticket and their segments.
    fn take_pending(&mut self) -> (u64, Vec<Segment>) {
        let first = self.next_ticket - self.pending_count as u64;
        self.pending_count = 0;
        self.pending_bytes = 0;
        (first, std::mem::take(&mut self.pending))
    }

    /// Settles the tickets of the live events of `segments`, consecutive from `ticket`, with
    /// `result`. Unless they are queued, their dedup ids are free again.
    fn settle(&mut self, segments: &[Segment], mut ticket: u64, result: TicketResult) {
        let queued = matches!(result, TicketResult::Queued);
        for seg in segments {
            for i in seg.cursor..seg.slots.len() {
                let id = seg.fields(i).0;
                if !queued {
                    self.dedup_live.remove(id);
                }
                self.notes.push(Note::Ticket { ticket, id: id.into(), result: result.clone() });
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
        set.push((INDEX_KEY.to_string(), plan.index));
        Some(Write { set, remove: plan.remove })
    }

    /// [`Engine::take_write`] without the segments' text: the edge asks for each with
    /// [`Engine::segment_text`] and hands it over before asking for the next, so a burst's
    /// events are not held twice (as events and as text) in memory at once.
    pub fn take_write_plan(&mut self, now: u64, force: bool) -> Option<WritePlan> {
        if self.writing.is_some() {
            return None;
        }
        let marks_due = self.dirty_marks > 0
            && (force || self.force_write || self.dirty_marks >= self.ack_batch || self.dirty_since.is_some_and(|t| now >= t + ACK_DELAY_MS));
        let enabled_due = self.enabled != self.enabled_persisted;
        if self.pending_count == 0 && !marks_due && !enabled_due {
            return None;
        }
        let (first_ticket, mut new_segments) = self.take_pending();
        let mut segments = Vec::with_capacity(new_segments.len());
        let mut tickets = 0;
        for seg in &mut new_segments {
            tickets += seg.live;
            seg.compact();
            seg.text.shrink_to_fit();
            seg.seq = self.next_seq;
            self.next_seq += 1;
            segments.push(seg.seq);
        }
        // Segments whose events are all done leave memory now and storage with this write.
        let mut removed = std::mem::take(&mut self.unremoved);
        self.segments.retain(|s| {
            let keep = s.live > 0 || s.slots.iter().any(|x| x.in_flight);
            if !keep {
                removed.push(s.seq);
            }
            keep
        });
        let index = self.index_text(&new_segments);
        self.dirty_marks = 0;
        self.dirty_since = None;
        self.force_write = false;
        self.storage_writes += 1;
        let mut remove = Vec::new();
        for &seq in &removed {
            remove.push(segment_key(seq));
        }
        let rewrite: Vec<u64> = if self.rewrite_all { self.segments.iter().map(|s| s.seq).collect() } else { Vec::new() };
        self.writing = Some(Writing {
            segments: new_segments,
            first_ticket,
            tickets,
            removed,
            enabled_written: self.enabled,
            purged: false,
            rewrite: self.rewrite_all,
        });
        self.rewrite_all = false;
        Some(WritePlan { segments, rewrite, index, remove })
    }

    /// The index's text (see the module documentation) for the queue in memory and `new`.
    fn index_text(&self, new: &[Segment]) -> String {
        let (t, d) = (&self.totals, &self.totals.dropped);
        let (pause_until, pause_key) = match self.gate {
            Gate::Paused { probe_at } => (probe_at, credentials_key(&self.config.credentials, &self.config.app_id)),
            _ => (0, 0),
        };
        let head = [
            INDEX_VERSION,
            self.next_seq,
            u64::from(self.enabled),
            self.retry_after_until,
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
        ];
        let mut out = String::new();
        for (k, &n) in head.iter().enumerate() {
            if k > 0 {
                out.push(if k == 6 { '\n' } else { ' ' });
            }
            push_u64(&mut out, n);
        }
        for segments in [&self.segments[..], new] {
            for s in segments {
                out.push('\n');
                push_u64(&mut out, s.seq);
                out.push(' ');
                push_u64(&mut out, s.slots.len() as u64);
                for (i, slot) in s.slots.iter().enumerate() {
                    if slot.done {
                        out.push(' ');
                        push_u64(&mut out, i as u64);
                    }
                }
            }
        }
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
        self.writing.as_ref().and_then(|w| w.segments.get(i)).map_or("", |s| s.text.as_str())
    }

    /// The stored text of segment `seq` of the queue (empty if there is none).
    pub fn stored_segment_str(&self, seq: u64) -> &str {
        self.seg_index(seq).and_then(|si| self.segments.get(si)).map_or("", |s| s.text.as_str())
    }

    /// Other code removed the queue from storage (`chrome.storage.local.clear()`, or a
    /// `remove` of the index): the queue in memory is written again, whole, by the next write,
    /// and the loss that was avoided is reported.
    pub fn storage_lost(&mut self, now: u64) {
        self.rewrite_all = true;
        self.force_write = true;
        self.mark_dirty(now);
        let mut msg = String::from("the SDK's data in chrome.storage.local was removed by other code (clear() or remove()); the ");
        push_u64(&mut msg, self.live_count as u64);
        msg.push_str(" queued events still in memory were written again");
        self.fail(Error::new(ErrorCode::StorageError, msg), now);
    }

    /// The outstanding write finished. On success its events are accepted and become sendable;
    /// on failure they are refused (their `track` rejects) and nothing already queued is lost.
    pub fn write_done(&mut self, result: Result<(), String>, now: u64) {
        let Some(w) = self.writing.take() else { return };
        let settled = match result {
            Ok(()) => {
                self.enabled_persisted = w.enabled_written;
                // With `w.purged`, the user opted out with purge while these events were being
                // written: they are stored now but must not be kept (nor sent after a later
                // opt-in). Settle them like the pending events a purge finds (`Disabled`), and
                // let the next write remove their segments.
                if w.purged {
                    self.force_write = true;
                    self.mark_dirty(now);
                    TicketResult::Disabled
                } else {
                    TicketResult::Queued
                }
            }
            Err(message) => {
                self.rewrite_all |= w.rewrite;
                let error = Error::new(ErrorCode::StorageError, String::from("chrome.storage.local write failed: ") + &message);
                self.fail(error.clone(), now);
                self.unremoved.extend(w.removed);
                self.mark_dirty(now);
                TicketResult::Failed(error)
            }
        };
        // One note per ticket, for a burst by the thousand: one allocation, not a doubling series.
        self.notes.reserve_exact(w.tickets);
        let committed = matches!(settled, TicketResult::Queued);
        let purged = matches!(settled, TicketResult::Disabled);
        self.settle(&w.segments, w.first_ticket, settled);
        for mut seg in w.segments {
            if committed {
                self.live_count += seg.live;
                self.live_bytes += seg.all_stored_bytes();
            } else if purged {
                for slot in &mut seg.slots {
                    slot.done = true;
                }
                seg.live = 0;
                seg.advance();
            } else {
                continue;
            }
            self.segments.push(seg);
        }
        // A full queue may now hold more than the bounds allowed while the write was out.
        self.enforce_bounds(now);
    }

    /// The next request to send, if delivery may proceed now. Call until `None`.
    pub fn poll_send(&mut self, now: u64, online: bool) -> Option<Send> {
        if !self.enabled {
            return None;
        }
        match self.gate {
            Gate::Paused { probe_at } if now < probe_at => return None,
            Gate::Backoff { until, .. } if now < until => return None,
            _ if !online => {
                self.gate = Gate::Offline;
                return None;
            }
            _ => {}
        }
        if self.gate == Gate::Offline {
            self.gate = Gate::Open;
        }
        if self.in_flight >= self.send_cap() {
            return None;
        }
        // A slot sent before and due again goes first: it is older than every fresh one. While
        // probing after a failure, an event that just failed on the network is the last choice:
        // the probe must tell whether the network is back, not whether that event still fails.
        let probing = self.failures > 0;
        let mut pick: Option<(usize, SlotRef, bool)> = None;
        for (k, &(r, not_before)) in self.retrying.iter().enumerate() {
            if not_before > now {
                continue;
            }
            let suspect = probing && self.suspects.iter().any(|x| x.0 == r);
            if pick.is_none_or(|(_, p, p_suspect)| (suspect, r.seq, r.index) < (p_suspect, p.seq, p.index)) {
                pick = Some((k, r, suspect));
            }
        }
        let fresh = self.segments.iter().any(|s| s.fresh < s.slots.len());
        let pick = match pick {
            Some((k, r, suspect)) if !(suspect && fresh) => {
                self.unretry(k);
                r
            }
            _ => {
                let seg = self.segments.iter_mut().find(|s| s.fresh < s.slots.len())?;
                let r = SlotRef { seq: seg.seq, index: seg.fresh as u32 };
                seg.fresh += 1;
                seg.advance();
                r
            }
        };
        let si = self.seg_index(pick.seq)?;
        let seg = self.segments.get_mut(si)?;
        let i = pick.index as usize;
        seg.slots.get_mut(i)?.in_flight = true;
        self.in_flight += 1;
        self.requests += 1;
        self.flights.push(Flight { slot: pick, seq: self.next_request, credentials: self.credentials_gen });
        self.next_request += 1;
        let (id, name, props) = seg.fields(i);
        Some(Send { slot: pick, id: id.into(), name: name.into(), body: request_body(name, props) })
    }

    /// Applies the verdict on one request.
    pub fn on_result(&mut self, slot_ref: SlotRef, verdict: Verdict, now: u64) {
        let Some(k) = self.flights.iter().position(|f| f.slot == slot_ref) else {
            return;
        };
        let flight = self.flights.swap_remove(k);
        let Some(slot) = self.slot_mut(slot_ref) else {
            return;
        };
        slot.in_flight = false;
        let (was_done, attempts, known_bad) = (slot.done, u32::from(slot.attempts) + 1, slot.net_failures > 0);
        self.in_flight -= 1;
        if !matches!(verdict, Verdict::Unreachable { .. }) {
            // The server answered: this event got through after all, and the network works, so
            // the events that failed on it before this request was sent failed by themselves.
            self.suspects.retain(|x| x.0 != slot_ref);
            self.charge_suspects(flight.seq, now);
        }
        // Counted only if sent after the last counted failure: requests out together that fail
        // together are one failure, not `concurrency` of them.
        let consecutive = flight.seq >= self.failure_mark;
        let error = match verdict {
            Verdict::Delivered => {
                self.failures = 0;
                self.gate = self.reopened_gate(now);
                self.error_active = false;
                if !was_done {
                    self.totals.delivered += 1;
                    self.finish(slot_ref, now);
                }
                return;
            }
            Verdict::Reject { error } => {
                self.failures = 0;
                self.gate = self.reopened_gate(now);
                if !was_done {
                    self.drop_slot(slot_ref, DropReason::Rejected, error.message.clone(), now);
                }
                error
            }
            Verdict::Retry { after_ms, error } => {
                self.totals.retried += 1;
                self.count_failure(consecutive);
                let delay = self.backoff(attempts, u64::MAX);
                if let Some(slot) = self.slot_mut(slot_ref) {
                    // A live slot is dropped at `retry.maxAttempts` (1,000 at most).
                    slot.attempts = attempts as u16;
                    slot.not_before = now + delay;
                }
                if attempts >= self.config.retry.max_attempts && !was_done {
                    let mut msg = String::from("gave up after ");
                    push_u64(&mut msg, attempts.into());
                    msg.push_str(" attempts; last error: ");
                    msg.push_str(&error.message);
                    self.drop_slot(slot_ref, DropReason::RetriesExhausted, msg, now);
                }
                let server_wait = after_ms.unwrap_or(0).min(self.config.retry.max_retry_after_ms);
                if after_ms.is_some() && now + server_wait > self.retry_after_until {
                    self.retry_after_until = now + server_wait;
                    // Stored at once: a worker restarted during the wait still honours it.
                    self.force_write = true;
                    self.mark_dirty(now);
                }
                let wait = self.backoff(self.failures, u64::MAX).max(server_wait);
                self.gate = Gate::Backoff { until: (now + wait).max(self.retry_after_until), server: true };
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
                if !known_bad && self.failures > 0 && consecutive {
                    self.suspects.retain(|&(r, after)| r == slot_ref || after > flight.seq);
                } else if !was_done && !self.suspects.iter().any(|x| x.0 == slot_ref) {
                    self.suspects.push((slot_ref, self.next_request));
                }
                // An event already known to fail by itself says nothing about the network.
                if !known_bad {
                    self.count_failure(consecutive);
                    let wait = self.backoff(self.failures, NETWORK_BACKOFF_CAP_MS);
                    self.gate = Gate::Backoff { until: (now + wait).max(self.retry_after_until), server: false };
                }
                error
            }
            Verdict::Pause { error } if flight.credentials != self.credentials_gen => {
                // Refused credentials that have since been replaced: the new ones may be fine.
                if let Some(slot) = self.slot_mut(slot_ref).filter(|slot| !slot.done) {
                    slot.not_before = now;
                    self.retrying.push((slot_ref, now));
                }
                let _ = error;
                return;
            }
            Verdict::Pause { error } => {
                // A failure like the others: once the pause ends, probe with one request until
                // one succeeds. Without it, an offline spell (which turns the gate to Offline,
                // then Open) would end a pause with a full-concurrency burst instead of a probe.
                self.count_failure(true);
                self.gate = Gate::Paused { probe_at: (now + PAUSE_PROBE_MS).max(self.retry_after_until) };
                // Stored at once: a restarted worker stays paused (for these credentials).
                self.force_write = true;
                self.mark_dirty(now);
                error
            }
        };
        // Not done (a failure): it waits for another attempt.
        if let Some(slot) = self.slot_mut(slot_ref).filter(|slot| !slot.done) {
            let not_before = slot.not_before;
            self.retrying.push((slot_ref, not_before));
        }
        self.fail(error, now);
    }

    /// One more failure in a row, unless the request ran alongside the last counted one.
    fn count_failure(&mut self, consecutive: bool) {
        if consecutive || self.failures == 0 {
            self.failures += 1;
            self.failure_mark = self.next_request;
        }
    }

    /// Charges a network failure to each event that failed on the network before request `seq`
    /// was sent (which the server answered); drops those charged `retry.maxAttempts` times
    /// (one out again is dropped when its own answer comes, if that is a failure too).
    fn charge_suspects(&mut self, seq: u64, now: u64) {
        let mut k = 0;
        while let Some(&(r, after)) = self.suspects.get(k) {
            if after > seq {
                k += 1;
                continue;
            }
            self.suspects.swap_remove(k);
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
            if let Some(x) = self.retrying.iter_mut().find(|x| x.0 == r) {
                x.1 = x.1.max(at);
            }
        }
    }

    /// Network failures charged to one event before it is dropped.
    fn network_charge_limit(&self) -> u32 {
        self.config.retry.max_attempts.clamp(NETWORK_CHARGES_MIN, u32::from(u8::MAX))
    }

    fn drop_undeliverable(&mut self, r: SlotRef, charged: u32, now: u64) {
        let mut msg = String::from("its request failed ");
        push_u64(&mut msg, charged.into());
        msg.push_str(" times before reaching the server while other events were delivered (a proxy or firewall refusing its payload, or a value the browser will not send)");
        self.drop_slot(r, DropReason::Undeliverable, msg, now);
    }

    /// The backoff after `failures` failures, the policy's cap lowered to `cap`. Draws one
    /// random number.
    fn backoff(&mut self, failures: u32, cap: u64) -> u64 {
        let mut policy = self.config.retry.clone();
        policy.max_delay_ms = policy.max_delay_ms.min(cap);
        backoff_ms(&policy, failures, self.rng.next_f64())
    }

    /// An explicit `flush`: a wait caused by network errors ends now (the network may be back).
    /// Waits the server asked for (`Retry-After`, 5xx) and per-event backoff still hold.
    pub fn retry_network_now(&mut self, now: u64) {
        if matches!(self.gate, Gate::Backoff { server: false, .. }) {
            self.gate = self.reopened_gate(now);
        }
    }

    /// New credentials: a pause for bad credentials ends and delivery resumes at once.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.config.credentials = credentials;
        self.credentials_gen = self.credentials_gen.wrapping_add(1);
        // A stored pause for the old credentials must not outlive them.
        if matches!(self.gate, Gate::Paused { .. }) || self.retry_after_until > 0 {
            self.force_write = true;
            self.dirty_marks += 1;
        }
        if matches!(self.gate, Gate::Paused { .. } | Gate::Backoff { .. }) {
            self.gate = Gate::Open;
        }
        // New credentials are a fresh start, including any wait the server asked of the old ones.
        self.retry_after_until = 0;
        self.failures = 0;
    }

    /// Done-marks per index write (at least 1; [`ACK_BATCH`] unless changed): fewer means fewer
    /// resends after the worker is stopped, and more storage writes. For measurements.
    pub fn set_ack_batch(&mut self, marks: usize) {
        self.ack_batch = marks.max(1);
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
        self.enabled = enabled;
        if !self.restored {
            self.consent_override = Some(enabled);
            self.purge_on_restore |= purge;
        }
        if !enabled {
            let (first, segments) = self.take_pending();
            self.settle(&segments, first, TicketResult::Disabled);
        }
        if purge {
            self.purge(now);
        }
        self.force_write = true;
        self.mark_dirty(now);
    }

    /// Drops every queued event as `purged` (also those of the write in progress).
    fn purge(&mut self, now: u64) {
        if let Some(w) = self.writing.as_mut() {
            w.purged = true;
        }
        for si in 0..self.segments.len() {
            for i in self.segments[si].cursor..self.segments[si].slots.len() {
                let s = &self.segments[si];
                if !s.slots[i].done {
                    self.drop_slot(SlotRef { seq: s.seq, index: i as u32 }, DropReason::Purged, "purged on opt-out".into(), now);
                }
            }
        }
    }

    /// Whether the stored queue has been read ([`Engine::restore`] or [`Engine::rebuild`]).
    pub fn restored(&self) -> bool {
        self.restored
    }

    /// Whether tracking is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the opt-in/opt-out choice in memory is the one stored.
    pub fn consent_persisted(&self) -> bool {
        self.enabled == self.enabled_persisted && self.writing.is_none()
    }

    /// Takes what the edge must pass on (settled tickets, drops, errors), oldest first.
    pub fn drain_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// When the engine next needs attention (a write or a send becomes due), if ever.
    pub fn next_wakeup(&self, now: u64) -> Option<u64> {
        let mut at: Option<u64> = None;
        let mut consider = |t: u64| at = Some(at.map_or(t, |a| a.min(t)));
        if self.writing.is_none() {
            // Due now exactly when `take_write(now, false)` would write (including a full batch of
            // done-marks, not only a forced one).
            let marks_due_now = self.dirty_marks > 0 && (self.force_write || self.dirty_marks >= self.ack_batch);
            if self.pending_count > 0 || self.enabled != self.enabled_persisted || marks_due_now {
                consider(now);
            } else if let Some(t) = self.dirty_since {
                consider(t + ACK_DELAY_MS);
            }
        }
        // At the in-flight cap (the full concurrency, or the single probe after a failure or
        // during a pause) no send can be due: the next answer is what comes next. Reporting a
        // past time here (a due probe, a sendable event) would make the edge spin.
        if self.enabled && self.has_unsent() && self.in_flight < self.send_cap() {
            match self.gate {
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

    /// `Some` when `flush` can answer: the queue is empty and durable, or delivery is blocked.
    pub fn flush_status(&mut self, now: u64) -> Option<FlushStatus> {
        let queued = self.live_count + self.pending_count;
        let busy_writing = self.writing.is_some() || self.pending_count > 0;
        if queued == 0 && !busy_writing && self.dirty_marks == 0 && self.in_flight == 0 {
            return Some(FlushStatus { status: "empty", reason: None, retry_at: None, queued: 0 });
        }
        if queued == 0 {
            self.force_write = self.dirty_marks > 0;
            return None;
        }
        if self.in_flight > 0 || busy_writing {
            return None;
        }
        let blocked = |reason, retry_at| Some(FlushStatus { status: "blocked", reason: Some(reason), retry_at, queued });
        if !self.enabled {
            return blocked(BlockReason::Disabled, None);
        }
        match self.gate {
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
        let state = if !self.enabled {
            "disabled"
        } else {
            match self.gate {
                Gate::Paused { .. } => "paused",
                Gate::Offline => "offline",
                Gate::Backoff { until, .. } if until > now => "backoff",
                _ if self.in_flight > 0 => "sending",
                _ if self.live_count > 0 => "ready",
                _ => "idle",
            }
        };
        Stats {
            state,
            enabled: self.enabled,
            queued: self.live_count + self.pending_count,
            pending_write: self.pending_count + self.writing.as_ref().map_or(0, |w| w.tickets),
            in_flight: self.in_flight,
            bytes_stored: self.live_bytes,
            delivered: self.totals.delivered,
            retried: self.totals.retried,
            dropped: self.totals.dropped.clone(),
            storage_writes: self.storage_writes,
            requests: self.requests,
            next_attempt_at: if self.has_unsent() { self.next_wakeup(now) } else { None },
            last_error: self.last_error.clone(),
        }
    }

    fn has_unsent(&self) -> bool {
        self.live_count > self.in_flight
    }

    /// Requests allowed out at once: after a failure (or while paused), one probe until one
    /// succeeds; otherwise the configured concurrency.
    fn send_cap(&self) -> usize {
        if self.failures > 0 || matches!(self.gate, Gate::Paused { .. }) {
            1
        } else {
            self.config.concurrency
        }
    }

    /// The gate once a request succeeds: open, unless a wait the server asked for still runs.
    fn reopened_gate(&self, now: u64) -> Gate {
        if now < self.retry_after_until {
            Gate::Backoff { until: self.retry_after_until, server: true }
        } else {
            Gate::Open
        }
    }

    fn earliest_sendable(&self) -> Option<u64> {
        if self.in_flight >= self.send_cap() {
            return None;
        }
        // The slots not done and not in flight: those waiting for another attempt, and the fresh
        // ones (never sent, so never held back).
        if self.segments.iter().any(|s| s.fresh < s.slots.len()) {
            return Some(0);
        }
        let mut at: Option<u64> = None;
        for &(_, t) in &self.retrying {
            at = Some(at.map_or(t, |a| a.min(t)));
        }
        at
    }

    /// Takes the `k`-th slot out of `retrying` (order does not matter there).
    fn unretry(&mut self, k: usize) {
        if let Some(last) = self.retrying.pop() {
            if let Some(x) = self.retrying.get_mut(k) {
                *x = last;
            }
        }
    }

    /// The index in `segments` of segment `seq`.
    fn seg_index(&self, seq: u64) -> Option<usize> {
        self.segments.binary_search_by_key(&seq, |s| s.seq).ok()
    }

    fn slot_mut(&mut self, r: SlotRef) -> Option<&mut Slot> {
        let si = self.seg_index(r.seq)?;
        self.segments.get_mut(si)?.slots.get_mut(r.index as usize)
    }

    /// Marks a slot done (delivered or dropped) and schedules the index write.
    fn finish(&mut self, r: SlotRef, now: u64) {
        let Some(seg) = self.seg_index(r.seq).and_then(|si| self.segments.get_mut(si)) else {
            return;
        };
        let i = r.index as usize;
        if seg.slots.get(i).is_none_or(|slot| slot.done) {
            return;
        }
        seg.mark_done(i);
        self.live_count -= 1;
        self.live_bytes -= seg.stored_bytes(i);
        let id = seg.fields(i).0;
        if id.starts_with("d-") {
            self.dedup_live.remove(id);
        }
        if let Some(k) = self.retrying.iter().position(|x| x.0 == r) {
            self.unretry(k);
        }
        self.mark_dirty(now);
    }

    fn drop_slot(&mut self, r: SlotRef, reason: DropReason, message: String, now: u64) {
        let Some(seg) = self.seg_index(r.seq).and_then(|si| self.segments.get(si)) else {
            return;
        };
        let i = r.index as usize;
        if seg.slots.get(i).is_none_or(|slot| slot.done) {
            return;
        }
        let (id, name, _) = seg.fields(i);
        let dropped = Dropped { id: id.into(), event_name: name.into(), reason, message };
        let counts = &mut self.totals.dropped;
        *match reason {
            DropReason::Rejected => &mut counts.rejected,
            DropReason::Evicted => &mut counts.evicted,
            DropReason::RetriesExhausted => &mut counts.retries_exhausted,
            DropReason::Purged => &mut counts.purged,
            DropReason::Corrupt => &mut counts.corrupt,
            DropReason::Undeliverable => &mut counts.undeliverable,
        } += 1;
        self.finish(r, now);
        self.notes.push(Note::Dropped(dropped));
    }

    fn mark_dirty(&mut self, now: u64) {
        self.dirty_marks += 1;
        self.dirty_since.get_or_insert(now);
    }

    /// Records an error; reports it unless it repeats the one still in force. `last_error` stays
    /// after a recovery (it is what `stats()` shows for support); `error_active` ends with it.
    fn fail(&mut self, error: Error, now: u64) {
        let repeat = self.error_active && self.last_error.as_ref().is_some_and(|e| e.code == error.code.as_str());
        self.last_error = Some(LastError { code: error.code.as_str(), message: error.message.clone(), at: now });
        self.error_active = true;
        if !repeat {
            self.notes.push(Note::Error(error));
        }
    }
}

// Host only, like proptest (a host-only dev-dependency).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// How the index was read before the hand-written reader: what it must match.
    fn std_lines(text: &str) -> Option<Vec<Vec<u64>>> {
        text.lines().map(|line| line.split_ascii_whitespace().map(|n| n.parse::<u64>().ok()).collect()).collect()
    }

    /// How segments were read before the hand-written reader: (id, name, properties).
    fn std_segment(text: &str) -> Option<Vec<(String, String, String)>> {
        text.split('\n')
            .map(|line| {
                let mut fields = line.split('\t');
                let event = (fields.next()?.into(), fields.next()?.into(), fields.next()?.into());
                fields.next().is_none().then_some(event)
            })
            .collect()
    }

    fn events(text: &str) -> Option<Vec<(String, String, String)>> {
        let seg = decode_segment(7, text.to_string(), 100)?;
        assert_eq!(seg.text, text, "the text is kept as it is");
        assert_eq!((seg.live, seg.cursor, seg.fresh), (seg.slots.len(), 0, 0));
        Some((0..seg.slots.len()).map(|i| seg.fields(i)).map(|(a, b, c)| (a.into(), b.into(), c.into())).collect())
    }

    #[test]
    fn number_lines_reads_like_std() {
        let cases = [
            "",
            "\n",
            "\n\n",
            "1",
            "1\n",
            "1\n\n",
            "1 2\r\n3",
            "1 2\r",
            "\r",
            " 1  2 \t3 ",
            "+1",
            "+",
            "++1",
            "-1",
            "1+",
            "007",
            "18446744073709551615",
            "18446744073709551616",
            "1\x0c2",
            "1\x0b2",
            "1 x",
            "é",
            "1\n\n2",
            "1\r\n\r\n",
        ];
        for text in cases {
            assert_eq!(number_lines(text), std_lines(text), "{text:?}");
        }
    }

    #[test]
    fn decode_segment_reads_like_std() {
        for text in ["", "\n", "a\tb\tc", "a\tb\tc\n", "a\tb\tc\nd\te\tf", "a\tb", "a\tb\tc\td", "\t\t", "\t\t\n\t\t", "é\tü\t{}"] {
            assert_eq!(events(text), std_segment(text), "{text:?}");
        }
    }

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

    proptest! {
        #[test]
        fn number_lines_matches_std(text in "[0-9 +\\-x\t\r\n\x0b\x0c]{0,40}") {
            prop_assert_eq!(number_lines(&text), std_lines(&text));
        }

        #[test]
        fn decode_segment_matches_std(text in "[ab\t\n\r]{0,30}") {
            prop_assert_eq!(events(&text), std_segment(&text));
        }

        #[test]
        fn parse_number_matches_std(word in "[0-9+\\-]{0,22}") {
            prop_assert_eq!(parse_number(&word), word.parse::<u64>().ok());
        }
    }
}
