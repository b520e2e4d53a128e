//! The engine's stored format read independently of the engine, as the JSON values the host
//! tests assert on: an index becomes `{"v", "next", "enabled", "waitUntil", "pauseUntil", "pauseKey", "segs": [{"s", "n", "d"}],
//! "totals": {"delivered", "retried", "dropped": {...}}}`, a segment a list of `{"i", "n", "p"}`
//! events (`p` parsed, so every stored event must hold valid JSON properties).
#![allow(dead_code)]

use serde_json::{json, Value};

/// FNV-1a (64-bit) of `text`, shifted to 53 bits: the checksum on an index's last line,
/// computed here apart from the engine.
fn checksum(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)) >> 11
}

/// An index's text without its checksum line (the first). Panics unless the checksum holds.
pub fn index_body(text: &str) -> &str {
    let (check, body) = text.split_once('\n').unwrap_or_else(|| panic!("no checksum line: {text:?}"));
    assert_eq!(check.parse::<u64>().ok(), Some(checksum(body)), "the checksum of index {text:?}");
    body
}

/// `body` (an index without its checksum line, perhaps altered by a test) as a version-2 index
/// whose checksum holds: a test that alters an index on purpose reaches the reading behind the
/// checksum with it.
pub fn seal(body: &str) -> String {
    format!("{}\n{body}", checksum(body))
}

/// A stored index. Panics unless it is well formed and its checksum holds.
pub fn index(text: &str) -> Value {
    let text = index_body(text);
    let rows: Vec<Vec<u64>> =
        text.lines().map(|line| line.split(' ').map(|n| n.parse().unwrap_or_else(|_| panic!("{n:?} in index {text:?}"))).collect()).collect();
    let [v, next, enabled, wait_until, pause_until, pause_key] = rows[0][..] else { panic!("index header: {text:?}") };
    assert!(enabled <= 1, "enabled is 0 or 1: {text:?}");
    let [delivered, retried, rejected, evicted, retries_exhausted, purged, corrupt, undeliverable, filtered, sampled] = rows[1][..] else {
        panic!("index totals: {text:?}")
    };
    let segs: Vec<Value> = rows[2..].iter().map(|r| json!({"s": r[0], "n": r[1], "d": r[2..]})).collect();
    json!({
        "v": v, "next": next, "enabled": enabled == 1, "segs": segs,
        "waitUntil": wait_until, "pauseUntil": pause_until, "pauseKey": pause_key,
        "totals": {
            "delivered": delivered, "retried": retried,
            "dropped": {"rejected": rejected, "evicted": evicted, "retriesExhausted": retries_exhausted, "purged": purged, "corrupt": corrupt, "undeliverable": undeliverable,
                "filtered": filtered, "sampled": sampled},
        },
    })
}

/// A stored segment's events. Panics unless it is well formed.
pub fn segment(text: &str) -> Vec<Value> {
    text.split('\n')
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [id, name, props] = fields[..] else { panic!("an event is id, name, properties: {line:?}") };
            let props: Value = serde_json::from_str(props).unwrap_or_else(|e| panic!("properties {props:?}: {e}"));
            json!({"i": id, "n": name, "p": props})
        })
        .collect()
}
