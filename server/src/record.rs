//! What the server saw: accepted events, suppressed duplicates, and a log of every request.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use crate::chunklog::{ChunkLog, Snapshot};
use crate::config::{MemoryLimits, DEFAULT_MAX_MEMORY};
use crate::faults::FaultKind;
use crate::time::rfc3339;

/// Each log is bounded to its most recent entries so a long dev session cannot exhaust memory;
/// each is also bounded by its share of `--max-memory` (see [`MemoryLimits`]).
pub const MAX_ENTRIES: usize = 100_000;

/// `duplicate_event_ids` lists at most this many ids (`event_id_duplicates` counts them all).
pub const MAX_DUPLICATE_IDS_LISTED: usize = 1000;

/// The property the SDK puts a stable per-event id in; copies of one event share it.
pub const EVENT_ID_PROPERTY: &str = "$event_id";

/// The stored secret header value: inspection output must never contain a secret.
pub const REDACTED: &str = "<redacted>";

#[derive(Debug, Clone, Serialize)]
pub struct EventHeaders {
    #[serde(rename = "x-inhouse-token-id")]
    pub token_id: String,
    #[serde(rename = "x-inhouse-app")]
    pub app: String,
    #[serde(rename = "x-inhouse-token-secret")]
    pub token_secret: &'static str,
    #[serde(rename = "content-type")]
    pub content_type: Option<String>,
    pub origin: Option<String>,
    #[serde(rename = "user-agent")]
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub seq: u64,
    pub id: String,
    pub received_at: String,
    pub received_at_ms: u64,
    pub event_name: String,
    pub properties: Value,
    pub idempotency_key: Option<String>,
    pub request_id: String,
    pub path: String,
    pub headers: EventHeaders,
}

#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub idempotency_key: String,
    pub at_ms: u64,
    /// The event the replayed response refers to.
    pub event_id: String,
    pub request_id: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestEntry {
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    /// `None` (`null`) when no response was sent: `reset`, `hang`, `store_then_reset`,
    /// `reset_event`. (A `stall_body` response was sent, only never finished: 200.)
    pub status: Option<u16>,
    pub code: Option<String>,
    pub idempotency_key: Option<String>,
    pub event_name: Option<String>,
    pub request_id: String,
    /// The injected fault that decided this request's outcome; `latency` when a delay was
    /// the only one.
    pub injected: Option<FaultKind>,
    /// The injected delay this request waited, if any.
    pub latency_ms: Option<u64>,
    /// `item.id` of the success this request produced: stored (sent; with `store_then_reset`
    /// lost; with `stall_body` never finished) or replayed for a repeated `Idempotency-Key`.
    pub item_id: Option<String>,
}

/// One `properties.$event_id` stored more than once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateEventId {
    pub event_id: String,
    pub copies: u64,
}

/// Copies of the same event among the stored ones, by `properties.$event_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventIdDuplicates {
    /// Extra stored copies: the sum over ids of copies - 1.
    pub extra_copies: u64,
    /// Every id stored more than once, in order of first arrival, capped.
    pub ids: Vec<DuplicateEventId>,
}

pub struct Recorder {
    events: ChunkLog<StoredEvent>,
    duplicates: ChunkLog<Duplicate>,
    requests: ChunkLog<RequestEntry>,
    counts: BTreeMap<u16, u64>,
    requests_total: u64,
    next_seq: u64,
    /// Indexed like [`FaultKind::ALL`].
    faults_injected: [u64; FaultKind::ALL.len()],
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new(MemoryLimits::from_total(DEFAULT_MAX_MEMORY))
    }
}

/// An event just stored.
pub struct Stored {
    /// The stored record, shared with the list (and with a `--db` writer).
    pub event: Arc<StoredEvent>,
    /// How many of the oldest events were dropped to make room.
    pub dropped: usize,
}

impl Recorder {
    pub fn new(limits: MemoryLimits) -> Self {
        Recorder {
            events: ChunkLog::new(MAX_ENTRIES, limits.events),
            duplicates: ChunkLog::new(MAX_ENTRIES, limits.duplicates),
            requests: ChunkLog::new(MAX_ENTRIES, limits.requests),
            counts: BTreeMap::new(),
            requests_total: 0,
            next_seq: 0,
            faults_injected: [0; FaultKind::ALL.len()],
        }
    }

    /// The sequence number the next stored event will get (1-based, restarts on reset).
    pub fn next_seq(&self) -> u64 {
        self.next_seq + 1
    }

    pub fn store(&mut self, event: StoredEvent) -> Stored {
        self.next_seq = event.seq;
        let size = event.estimated_bytes();
        let (event, dropped) = self.events.push(event, size);
        Stored { event, dropped }
    }

    /// Puts back events read from `--db` (oldest first) and the dropped counter. Returns how
    /// many of them did not fit the caps (the oldest).
    pub fn restore(&mut self, events: Vec<StoredEvent>, dropped_oldest: u64) -> usize {
        let mut dropped = 0;
        for event in events {
            dropped += self.store(event).dropped;
        }
        self.events.set_dropped(dropped_oldest + dropped as u64);
        dropped
    }

    /// The oldest stored event's `seq`.
    pub fn first_seq(&self) -> Option<u64> {
        self.events.iter().next().map(|e| e.seq)
    }

    /// Events dropped, oldest first, to stay within the caps since the start (or `/reset`).
    pub fn dropped_oldest(&self) -> u64 {
        self.events.dropped()
    }

    pub fn duplicate(&mut self, dup: Duplicate) {
        let size = dup.estimated_bytes();
        self.duplicates.push(dup, size);
    }

    /// Logs a request. `counts` only counts responses actually sent; `requests_total` and
    /// `faults_injected` count every request.
    pub fn request(&mut self, entry: RequestEntry) {
        if let Some(status) = entry.status {
            *self.counts.entry(status).or_default() += 1;
        }
        self.requests_total += 1;
        if let Some(kind) = entry.injected {
            self.count_fault(kind);
        }
        if entry.latency_ms.is_some() && entry.injected != Some(FaultKind::Latency) {
            self.count_fault(FaultKind::Latency);
        }
        let size = entry.estimated_bytes();
        self.requests.push(entry, size);
    }

    fn count_fault(&mut self, kind: FaultKind) {
        if let Some(i) = FaultKind::ALL.iter().position(|k| *k == kind) {
            self.faults_injected[i] += 1;
        }
    }

    pub fn clear(&mut self) {
        self.events.clear();
        self.duplicates.clear();
        self.requests.clear();
        self.counts.clear();
        self.requests_total = 0;
        self.next_seq = 0;
        self.faults_injected = [0; FaultKind::ALL.len()];
    }

    pub fn events(&self) -> impl Iterator<Item = &StoredEvent> {
        self.events.iter()
    }

    /// What `GET /events` shows, as of now. Cheap (see [`ChunkLog::snapshot`]): take it under
    /// the state lock, render it after releasing the lock.
    pub fn events_view(&self) -> EventsView {
        EventsView {
            events: self.events.snapshot(),
            duplicates: self.duplicates.snapshot(),
            counts: self.counts.clone(),
            requests_total: self.requests_total,
            faults_injected: self.faults_injected,
            dropped_oldest: self.events.dropped(),
        }
    }

    /// What `GET /requests` shows, as of now; cheap like [`Recorder::events_view`].
    pub fn requests_view(&self) -> RequestsView {
        RequestsView {
            requests: self.requests.snapshot(),
            requests_total: self.requests_total,
            dropped_oldest: self.requests.dropped(),
        }
    }

    /// `GET /events` as JSON (all events).
    pub fn events_json(&self) -> Value {
        serde_json::from_slice(&self.events_view().json(Page::default())).unwrap_or_default()
    }

    /// `GET /events?format=text` (all events).
    pub fn events_text(&self) -> String {
        self.events_view().text(Page::default())
    }

    /// Stored events sharing a string `properties.$event_id`.
    pub fn event_id_duplicates(&self) -> EventIdDuplicates {
        event_id_duplicates(self.events.iter())
    }
}

/// Which stored events a `GET /events` shows: those with `seq > since`, at most `limit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    pub since: u64,
    pub limit: Option<usize>,
}

impl Page {
    fn is_all(&self) -> bool {
        *self == Page::default()
    }
}

/// A snapshot of what `GET /events` shows, independent of the state lock.
pub struct EventsView {
    events: Snapshot<StoredEvent>,
    duplicates: Snapshot<Duplicate>,
    counts: BTreeMap<u16, u64>,
    requests_total: u64,
    faults_injected: [u64; FaultKind::ALL.len()],
    dropped_oldest: u64,
}

/// Serializes what a closure iterates, as a JSON array, without collecting it first.
struct SeqOf<F>(F);

impl<F, I> Serialize for SeqOf<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

/// `GET /events`'s fields, in the order (alphabetical) they always had.
#[derive(Serialize)]
struct EventsBody<'a, E, D> {
    counts: BTreeMap<String, u64>,
    dropped_oldest: u64,
    duplicate_event_ids: &'a [DuplicateEventId],
    duplicates: D,
    event_id_duplicates: u64,
    events: E,
    faults_injected: Value,
    next: u64,
    requests_total: u64,
}

impl EventsView {
    /// The page's events, oldest first. Runs of events entirely at or before `since` are
    /// skipped whole; `seq` increases along the list.
    pub fn page(&self, page: Page) -> impl Iterator<Item = &StoredEvent> {
        self.events
            .slices()
            .skip_while(move |s| s.last().is_some_and(|e| e.seq <= page.since))
            .flat_map(move |s| {
                let start = s.partition_point(|e| e.seq <= page.since);
                s[start..].iter().map(|a| &**a)
            })
            .take(page.limit.unwrap_or(usize::MAX))
    }

    /// The `since` that continues after this page: its last event's `seq`, or `since` itself
    /// when the page is empty.
    pub fn next(&self, page: Page) -> u64 {
        self.page(page).last().map_or(page.since, |e| e.seq)
    }

    fn faults_injected_json(&self) -> Value {
        faults_injected_json(&self.faults_injected)
    }

    /// `GET /events` as JSON bytes.
    pub fn json(&self, page: Page) -> Vec<u8> {
        let dups = event_id_duplicates(self.events.iter());
        let body = EventsBody {
            counts: self
                .counts
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            dropped_oldest: self.dropped_oldest,
            duplicate_event_ids: &dups.ids,
            duplicates: SeqOf(|| self.duplicates.iter()),
            event_id_duplicates: dups.extra_copies,
            events: SeqOf(|| self.page(page)),
            faults_injected: self.faults_injected_json(),
            next: self.next(page),
            requests_total: self.requests_total,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// One JSON object per line, one line per event of the page.
    pub fn ndjson(&self, page: Page) -> String {
        let mut out = String::new();
        for e in self.page(page) {
            out.push_str(&serde_json::to_string(e).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// Aligned columns for a terminal: seq, time, event name, idempotency key, app, properties;
    /// then `#` summary lines: totals, injected faults, each `$event_id` stored more than once,
    /// the oldest dropped (when any) and, for a page, where the next one starts.
    pub fn text(&self, page: Page) -> String {
        let rows: Vec<[String; 6]> = self
            .page(page)
            .map(|e| {
                [
                    e.seq.to_string(),
                    rfc3339(e.received_at_ms),
                    printable(&e.event_name),
                    e.idempotency_key
                        .as_deref()
                        .map_or_else(|| "-".to_string(), printable),
                    printable(&e.headers.app),
                    e.properties.to_string(),
                ]
            })
            .collect();
        let header = ["SEQ", "TIME", "EVENT", "KEY", "APP", "PROPERTIES"].map(String::from);
        let mut widths = [0usize; 5];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            for (i, cell) in row.iter().enumerate() {
                match widths.get(i) {
                    Some(w) => {
                        let pad = w.saturating_sub(cell.chars().count());
                        out.push_str(cell);
                        out.push_str(&" ".repeat(pad + 2));
                    }
                    None => out.push_str(cell),
                }
            }
            out.push('\n');
        }
        let dups = event_id_duplicates(self.events.iter());
        let faults: Vec<String> = FaultKind::ALL
            .iter()
            .zip(self.faults_injected)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect();
        out.push_str(&format!(
            "# {} stored, event_id_duplicates {} (extra copies by $event_id), {} idempotent replays, {} requests; faults injected: {}\n",
            self.events.len(),
            dups.extra_copies,
            self.duplicates.len(),
            self.requests_total,
            if faults.is_empty() { "none".to_string() } else { faults.join(", ") },
        ));
        for d in &dups.ids {
            out.push_str(&format!(
                "# duplicate $event_id {}: {} copies\n",
                printable(&d.event_id),
                d.copies
            ));
        }
        if self.dropped_oldest > 0 {
            out.push_str(&format!(
                "# dropped_oldest {}: the oldest events were dropped to stay within the memory cap\n",
                self.dropped_oldest
            ));
        }
        if !page.is_all() {
            out.push_str(&format!(
                "# {} shown; next page: since={}\n",
                rows.len(),
                self.next(page)
            ));
        }
        out
    }
}

/// A snapshot of what `GET /requests` shows, independent of the state lock.
pub struct RequestsView {
    requests: Snapshot<RequestEntry>,
    requests_total: u64,
    dropped_oldest: u64,
}

#[derive(Serialize)]
struct RequestsBody<R> {
    dropped_oldest: u64,
    requests: R,
    requests_total: u64,
}

impl RequestsView {
    /// `GET /requests` as JSON bytes.
    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(&RequestsBody {
            dropped_oldest: self.dropped_oldest,
            requests: SeqOf(|| self.requests.iter()),
            requests_total: self.requests_total,
        })
        .unwrap_or_default()
    }
}

/// `{"reset": n, "hang": n, "store_then_reset": n, "fail_next": n, "fail_event": n,
/// "latency": n, "reset_event": n, "redirect": n, "stall_body": n}`, every kind present.
fn faults_injected_json(counts: &[u64; FaultKind::ALL.len()]) -> Value {
    let map: serde_json::Map<String, Value> = FaultKind::ALL
        .iter()
        .zip(counts)
        .map(|(k, n)| (k.as_str().to_string(), json!(n)))
        .collect();
    Value::Object(map)
}

/// Stored events sharing a string `properties.$event_id`.
fn event_id_duplicates<'a>(events: impl Iterator<Item = &'a StoredEvent>) -> EventIdDuplicates {
    let mut seen: HashMap<&str, (usize, u64)> = HashMap::new();
    for (i, e) in events.enumerate() {
        if let Some(id) = e.properties.get(EVENT_ID_PROPERTY).and_then(Value::as_str) {
            seen.entry(id).or_insert((i, 0)).1 += 1;
        }
    }
    let mut dups: Vec<(usize, &str, u64)> = seen
        .into_iter()
        .filter(|(_, (_, n))| *n > 1)
        .map(|(id, (first, n))| (first, id, n))
        .collect();
    dups.sort_unstable();
    EventIdDuplicates {
        extra_copies: dups.iter().map(|(_, _, n)| n - 1).sum(),
        ids: dups
            .into_iter()
            .take(MAX_DUPLICATE_IDS_LISTED)
            .map(|(_, id, copies)| DuplicateEventId {
                event_id: id.to_string(),
                copies,
            })
            .collect(),
    }
}

/// Per-entry cost beyond the record itself: its `Arc` header, the pointer in its chunk and
/// its size in the size list.
const ENTRY_OVERHEAD: usize = 16 + 8 + 8;
/// Rough per-entry cost of a JSON object's map (node share, key `String` header).
const MAP_ENTRY_OVERHEAD: usize = 48;

fn opt_len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

/// Estimated heap bytes of a JSON value's contents (not counting its own `Value` slot).
pub fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(items) => items
            .iter()
            .map(|v| std::mem::size_of::<Value>() + value_bytes(v))
            .sum(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                MAP_ENTRY_OVERHEAD + k.len() + std::mem::size_of::<Value>() + value_bytes(v)
            })
            .sum(),
        _ => 0,
    }
}

impl StoredEvent {
    /// Estimated memory this record holds: what `--max-memory` counts.
    pub fn estimated_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + ENTRY_OVERHEAD
            + self.id.len()
            + self.received_at.len()
            + self.event_name.len()
            + value_bytes(&self.properties)
            + opt_len(&self.idempotency_key)
            + self.request_id.len()
            + self.path.len()
            + self.headers.token_id.len()
            + self.headers.app.len()
            + opt_len(&self.headers.content_type)
            + opt_len(&self.headers.origin)
            + opt_len(&self.headers.user_agent)
    }
}

impl Duplicate {
    pub fn estimated_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + ENTRY_OVERHEAD
            + self.idempotency_key.len()
            + self.event_id.len()
            + self.request_id.len()
    }
}

impl RequestEntry {
    pub fn estimated_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + ENTRY_OVERHEAD
            + self.method.len()
            + self.path.len()
            + opt_len(&self.code)
            + opt_len(&self.idempotency_key)
            + opt_len(&self.event_name)
            + self.request_id.len()
            + opt_len(&self.item_id)
    }
}

/// Escapes control characters so client-supplied strings cannot break a terminal line.
pub fn printable(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.escape_debug().to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, name: &str) -> StoredEvent {
        with_props(seq, name, json!({"a": 1}))
    }

    fn with_props(seq: u64, name: &str, properties: Value) -> StoredEvent {
        StoredEvent {
            seq,
            id: format!("evt_{seq}"),
            received_at: rfc3339(0),
            received_at_ms: 0,
            event_name: name.into(),
            properties,
            idempotency_key: None,
            request_id: "r".into(),
            path: "/".into(),
            headers: EventHeaders {
                token_id: "t".into(),
                app: "app".into(),
                token_secret: REDACTED,
                content_type: None,
                origin: None,
                user_agent: None,
            },
        }
    }

    #[test]
    fn text_dump_is_aligned() {
        let mut r = Recorder::default();
        r.store(event(1, "a"));
        r.store(event(2, "longer_name\n"));
        let text = r.events_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[3].starts_with("# 2 stored, event_id_duplicates 0"),
            "{text}"
        );
        let col = |l: &str| l.find("app").expect("app column");
        assert_eq!(col(lines[1]), col(lines[2]));
        assert!(lines[2].contains("longer_name\\n"));
        assert_eq!(r.next_seq(), 3);
    }

    #[test]
    fn a_view_is_independent_of_the_recorder() {
        let mut r = Recorder::default();
        for seq in 1..=600 {
            r.store(event(seq, "before"));
        }
        // Taken under the lock in the server; everything below happens after it is released.
        let view = r.events_view();
        r.clear();
        r.store(event(1, "after"));
        let v: Value = serde_json::from_slice(&view.json(Page::default())).expect("json");
        assert_eq!(v["events"].as_array().map(Vec::len), Some(600));
        assert_eq!(v["events"][599]["event_name"], "before");
        assert_eq!(v["next"], 600);
        let page = Page {
            since: 255,
            limit: Some(3),
        };
        let seqs: Vec<u64> = view.page(page).map(|e| e.seq).collect();
        assert_eq!((seqs, view.next(page)), (vec![256, 257, 258], 258));
        assert_eq!(r.events_view().page(Page::default()).count(), 1);
    }

    #[test]
    fn estimated_size_follows_the_properties() {
        let small = with_props(1, "x", json!({"a": 1})).estimated_bytes();
        let big = with_props(1, "x", json!({"a": "y".repeat(10_000)})).estimated_bytes();
        assert!(big - small >= 10_000, "{small} {big}");
        assert!(small < 1_000, "{small}");
    }

    #[test]
    fn counts_by_status() {
        let mut r = Recorder::default();
        for status in [200, 200, 401] {
            r.request(RequestEntry {
                method: "POST".into(),
                path: "/".into(),
                status: Some(status),
                request_id: "r".into(),
                ..RequestEntry::default()
            });
        }
        // No response sent: counted in the total and as a fault, not by status.
        r.request(RequestEntry {
            injected: Some(FaultKind::Reset),
            ..RequestEntry::default()
        });
        r.request(RequestEntry {
            status: Some(503),
            injected: Some(FaultKind::FailNext),
            latency_ms: Some(5),
            ..RequestEntry::default()
        });
        let v = r.events_json();
        assert_eq!(v["counts"], json!({"200": 2, "401": 1, "503": 1}));
        assert_eq!(v["requests_total"], json!(5));
        assert_eq!(
            v["faults_injected"],
            json!({"reset": 1, "hang": 0, "store_then_reset": 0, "fail_next": 1,
                   "fail_event": 0, "latency": 1, "reset_event": 0, "redirect": 0,
                   "stall_body": 0})
        );
    }

    #[test]
    fn duplicates_by_event_id() {
        let mut r = Recorder::default();
        let ids = ["b", "a", "b", "c", "b", "a"];
        for (i, id) in ids.iter().enumerate() {
            r.store(with_props(i as u64 + 1, "x", json!({"$event_id": id})));
        }
        // Without a string $event_id an event is never a duplicate.
        r.store(with_props(7, "x", json!({})));
        r.store(with_props(8, "x", json!({})));
        r.store(with_props(9, "x", json!({"$event_id": 1})));
        r.store(with_props(10, "x", json!({"$event_id": 1})));
        let d = r.event_id_duplicates();
        assert_eq!(d.extra_copies, 3);
        let listed: Vec<(&str, u64)> = d
            .ids
            .iter()
            .map(|d| (d.event_id.as_str(), d.copies))
            .collect();
        assert_eq!(listed, [("b", 3), ("a", 2)]);
        let v = r.events_json();
        assert_eq!(v["event_id_duplicates"], 3);
        assert_eq!(
            v["duplicate_event_ids"],
            json!([{"event_id": "b", "copies": 3}, {"event_id": "a", "copies": 2}])
        );
        let text = r.events_text();
        assert!(text.contains("event_id_duplicates 3"), "{text}");
        assert!(
            text.contains("# duplicate $event_id b: 3 copies\n"),
            "{text}"
        );

        let mut many = Recorder::default();
        for i in 0..(MAX_DUPLICATE_IDS_LISTED as u64 + 5) {
            for copy in 0..2 {
                many.store(with_props(
                    2 * i + copy + 1,
                    "x",
                    json!({"$event_id": i.to_string()}),
                ));
            }
        }
        let d = many.event_id_duplicates();
        assert_eq!(d.extra_copies, MAX_DUPLICATE_IDS_LISTED as u64 + 5);
        assert_eq!(d.ids.len(), MAX_DUPLICATE_IDS_LISTED);
        assert_eq!(d.ids[0].event_id, "0", "in order of arrival");
    }
}
