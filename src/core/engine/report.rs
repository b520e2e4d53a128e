//! What the engine reports: the answers that cross to JavaScript (stats, flush status, drop
//! reports, track results) and the units of work it hands the edge (writes, sends).

use crate::core::error::Error;
use serde::Serialize;

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
    /// `beforeSend` returned `null` for the event: never stored.
    pub filtered: u64,
    /// The event's install is left out by `sampleRate`: never stored.
    pub sampled: u64,
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

/// A dropped event, reported to `onDrop`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dropped {
    pub id: String,
    pub event_name: String,
    pub reason: DropReason,
    pub message: String,
}

/// What a `track` promise resolves with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TrackAnswer<'a> {
    /// The event's id (`$event_id`).
    pub id: &'a str,
    /// `"queued"`, `"deduplicated"`, `"disabled"` or `"evicted"`.
    pub status: &'static str,
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

/// [`Write`] with the segments' text left to [`Engine::segment_text`](crate::core::engine::Engine::segment_text): `set` the segments
/// (`segment_key` of each number) and the index (`INDEX_KEY`) in one call, then `remove`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WritePlan {
    /// The numbers of the new segments, in order.
    pub segments: Vec<u64>,
    /// The install id to store (under [`INSTALL_KEY`](crate::core::engine::INSTALL_KEY), in the same `set`), when it is not yet.
    pub install: Option<String>,
    /// The profile's text to store (under [`PROFILE_KEY`](crate::core::profile::PROFILE_KEY), in the same `set`), when it changed.
    pub profile: Option<String>,
    /// The lifecycle record's text to store (under [`LIFECYCLE_KEY`](crate::core::lifecycle::LIFECYCLE_KEY)), when it changed.
    pub lifecycle: Option<String>,
    /// Segments already stored that must be written again (their text from
    /// [`Engine::stored_segment_str`](crate::core::engine::Engine::stored_segment_str)): other code removed them ([`Engine::storage_lost`](crate::core::engine::Engine::storage_lost)).
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
    /// The stored queue could not be read at the start; it is read again, and nothing is
    /// written meanwhile.
    Storage,
}

impl BlockReason {
    /// The reason as JavaScript sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::Disabled => "disabled",
            BlockReason::Paused => "paused",
            BlockReason::Offline => "offline",
            BlockReason::Backoff => "backoff",
            BlockReason::Storage => "storage",
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
    /// Errors captured but not stored as `$exception`: repeats within a minute, or past the
    /// distinct errors a minute may store.
    pub exceptions_throttled: u64,
    /// Events that broke the tracking plan (`init({ plan })`): rejected (`planMode: 'reject'`)
    /// or stored and reported (`'report'`).
    pub plan_violations: u64,
}

/// The most recent delivery or storage error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub code: &'static str,
    pub message: String,
    pub at: u64,
}
