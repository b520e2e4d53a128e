//! What the server saw: accepted events, suppressed duplicates, and a log of every request.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use serde_json::{json, Value};

use crate::time::rfc3339;

/// Each log is bounded to its most recent entries so a long dev session cannot exhaust memory.
pub const MAX_ENTRIES: usize = 100_000;

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

#[derive(Debug, Clone, Serialize)]
pub struct RequestEntry {
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub code: Option<String>,
    pub idempotency_key: Option<String>,
    pub event_name: Option<String>,
    pub request_id: String,
}

#[derive(Debug, Default)]
pub struct Recorder {
    events: VecDeque<StoredEvent>,
    duplicates: VecDeque<Duplicate>,
    requests: VecDeque<RequestEntry>,
    counts: BTreeMap<u16, u64>,
    requests_total: u64,
    next_seq: u64,
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

    pub fn request(&mut self, entry: RequestEntry) {
        *self.counts.entry(entry.status).or_default() += 1;
        self.requests_total += 1;
        push_bounded(&mut self.requests, entry);
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
        json!({
            "events": self.events,
            "duplicates": self.duplicates,
            "counts": counts,
            "requests_total": self.requests_total,
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

    /// Aligned columns for a terminal: seq, time, event name, idempotency key, app, properties.
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
        StoredEvent {
            seq,
            id: format!("evt_{seq}"),
            received_at: rfc3339(0),
            received_at_ms: 0,
            event_name: name.into(),
            properties: json!({"a": 1}),
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
        assert_eq!(lines.len(), 3);
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
                at_ms: 0,
                method: "POST".into(),
                path: "/".into(),
                status,
                code: None,
                idempotency_key: None,
                event_name: None,
                request_id: "r".into(),
            });
        }
        let v = r.events_json();
        assert_eq!(v["counts"], json!({"200": 2, "401": 1}));
        assert_eq!(v["requests_total"], json!(3));
    }
}
