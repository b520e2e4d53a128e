//! What the server saw: accepted events, suppressed duplicates, and a log of every request.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;
use serde_json::{json, Value};

use crate::faults::FaultKind;
use crate::time::rfc3339;

/// Each log is bounded to its most recent entries so a long dev session cannot exhaust memory.
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

#[derive(Debug, Default)]
pub struct Recorder {
    events: VecDeque<StoredEvent>,
    duplicates: VecDeque<Duplicate>,
    requests: VecDeque<RequestEntry>,
    counts: BTreeMap<u16, u64>,
    requests_total: u64,
    next_seq: u64,
    /// Indexed like [`FaultKind::ALL`].
    faults_injected: [u64; FaultKind::ALL.len()],
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() >= MAX_ENTRIES {
        q.pop_front();
    }
    q.push_back(item);
}

impl Recorder {
    /// The sequence number the next stored event will get (1-based, restarts on reset).
    pub fn next_seq(&self) -> u64 {
        self.next_seq + 1
    }

    pub fn store(&mut self, event: StoredEvent) {
        self.next_seq = event.seq;
        push_bounded(&mut self.events, event);
    }

    pub fn duplicate(&mut self, dup: Duplicate) {
        push_bounded(&mut self.duplicates, dup);
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
        push_bounded(&mut self.requests, entry);
    }

    fn count_fault(&mut self, kind: FaultKind) {
        if let Some(i) = FaultKind::ALL.iter().position(|k| *k == kind) {
            self.faults_injected[i] += 1;
        }
    }

    /// `{"reset": n, "hang": n, "store_then_reset": n, "fail_next": n, "fail_event": n,
    /// "latency": n, "reset_event": n, "redirect": n, "stall_body": n}`, every kind present.
    pub fn faults_injected_json(&self) -> Value {
        let map: serde_json::Map<String, Value> = FaultKind::ALL
            .iter()
            .zip(self.faults_injected)
            .map(|(k, n)| (k.as_str().to_string(), json!(n)))
            .collect();
        Value::Object(map)
    }

    /// Stored events sharing a string `properties.$event_id`.
    pub fn event_id_duplicates(&self) -> EventIdDuplicates {
        let mut seen: HashMap<&str, (usize, u64)> = HashMap::new();
        for (i, e) in self.events.iter().enumerate() {
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

    pub fn clear(&mut self) {
        *self = Recorder::default();
    }

    pub fn events(&self) -> impl Iterator<Item = &StoredEvent> {
        self.events.iter()
    }

    /// `GET /events` as JSON.
    pub fn events_json(&self) -> Value {
        let counts: serde_json::Map<String, Value> = self
            .counts
            .iter()
            .map(|(s, n)| (s.to_string(), json!(n)))
            .collect();
        let dups = self.event_id_duplicates();
        json!({
            "events": self.events,
            "duplicates": self.duplicates,
            "counts": counts,
            "requests_total": self.requests_total,
            "event_id_duplicates": dups.extra_copies,
            "duplicate_event_ids": dups.ids,
            "faults_injected": self.faults_injected_json(),
        })
    }

    /// `GET /requests` as JSON.
    pub fn requests_json(&self) -> Value {
        json!({ "requests": self.requests, "requests_total": self.requests_total })
    }

    /// One JSON object per line, one line per event.
    pub fn events_ndjson(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            out.push_str(&serde_json::to_string(e).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// Aligned columns for a terminal: seq, time, event name, idempotency key, app, properties;
    /// then `#` summary lines: totals, injected faults, and each `$event_id` stored more than once.
    pub fn events_text(&self) -> String {
        let rows: Vec<[String; 6]> = self
            .events
            .iter()
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
        let dups = self.event_id_duplicates();
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
        out
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
