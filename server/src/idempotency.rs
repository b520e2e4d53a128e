//! Idempotency-Key memory: same key + same body replays the first success, a different body
//! conflicts. Keys are scoped per token id.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use serde_json::Value;

/// Oldest keys are forgotten beyond this many (or beyond their share of `--max-memory`), so
/// memory stays bounded on long runs.
pub const MAX_KEYS: usize = 100_000;

/// A 128-bit FNV-1a hash of a body's canonical JSON: what a record keeps instead of the body.
/// FNV-1a is fixed by its specification, so hashes stored with `--db` stay comparable across
/// builds and toolchains.
pub type BodyHash = u128;

pub fn body_hash(canonical_body: &str) -> BodyHash {
    const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    canonical_body.as_bytes().iter().fold(OFFSET_BASIS, |h, b| {
        (h ^ u128::from(*b)).wrapping_mul(PRIME)
    })
}

#[derive(Debug, Clone)]
pub struct Remembered {
    pub body_hash: BodyHash,
    pub event_id: String,
    /// The exact success body sent the first time, replayed byte for byte.
    pub response: Bytes,
}

pub enum Lookup<'a> {
    Fresh,
    Replay(&'a Remembered),
    Conflict(&'a Remembered),
}

/// `(token id, key)`.
pub type KeyOf = (String, String);

#[derive(Debug)]
pub struct IdempotencyStore {
    entries: HashMap<KeyOf, (Remembered, usize)>,
    order: VecDeque<KeyOf>,
    bytes: usize,
    max_bytes: usize,
}

impl Default for IdempotencyStore {
    fn default() -> Self {
        IdempotencyStore::new(usize::MAX)
    }
}

/// Estimated memory one record holds: the key twice (map and order), the record, the replayed
/// response and the map's own share. Independent of the request body's size.
fn record_bytes(k: &KeyOf, r: &Remembered) -> usize {
    2 * (std::mem::size_of::<KeyOf>() + k.0.len() + k.1.len())
        + std::mem::size_of::<(Remembered, usize)>()
        + r.event_id.len()
        + r.response.len()
        + 16
}

impl IdempotencyStore {
    pub fn new(max_bytes: usize) -> Self {
        IdempotencyStore {
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_bytes: max_bytes.max(1),
        }
    }

    pub fn lookup(&self, token_id: &str, key: &str, body_hash: BodyHash) -> Lookup<'_> {
        match self.entries.get(&(token_id.to_string(), key.to_string())) {
            None => Lookup::Fresh,
            Some((r, _)) if r.body_hash == body_hash => Lookup::Replay(r),
            Some((r, _)) => Lookup::Conflict(r),
        }
    }

    /// Remembers a success; forgets the oldest records while over [`MAX_KEYS`] or the byte cap
    /// (never the one just added) and returns the keys forgotten.
    pub fn remember(&mut self, token_id: &str, key: &str, entry: Remembered) -> Vec<KeyOf> {
        let k = (token_id.to_string(), key.to_string());
        let size = record_bytes(&k, &entry);
        self.bytes += size;
        match self.entries.insert(k.clone(), (entry, size)) {
            Some((_, old)) => self.bytes -= old,
            None => self.order.push_back(k),
        }
        let mut forgotten = Vec::new();
        while self.order.len() > 1 && (self.order.len() > MAX_KEYS || self.bytes > self.max_bytes) {
            if let Some(old) = self.order.pop_front() {
                if let Some((_, size)) = self.entries.remove(&old) {
                    self.bytes -= size;
                }
                forgotten.push(old);
            }
        }
        forgotten
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Estimated bytes held by the records.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
    }
}

/// JSON with object keys sorted at every level and no insignificant whitespace, so bodies that
/// differ only in key order or formatting compare equal.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_ignores_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"s"}}"#).expect("json");
        let b: Value =
            serde_json::from_str(r#"{ "a": {"x":"s", "y":[1, 2]}, "b": 1 }"#).expect("json");
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
        assert_ne!(
            canonical_json(&json!({"a":[1,2]})),
            canonical_json(&json!({"a":[2,1]}))
        );
    }

    #[test]
    fn lookup_replays_or_conflicts_per_token() {
        let mut s = IdempotencyStore::default();
        let r = Remembered {
            body_hash: body_hash("{}"),
            event_id: "evt_1".into(),
            response: Bytes::new(),
        };
        s.remember("t1", "k", r);
        assert!(matches!(
            s.lookup("t1", "k", body_hash("{}")),
            Lookup::Replay(_)
        ));
        assert!(matches!(
            s.lookup("t1", "k", body_hash("[]")),
            Lookup::Conflict(_)
        ));
        assert!(matches!(
            s.lookup("t2", "k", body_hash("{}")),
            Lookup::Fresh
        ));
    }

    #[test]
    fn body_hash_is_fnv1a_128() {
        // The specification's test vectors.
        assert_eq!(body_hash(""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(body_hash("a"), 0xd228cb696f1a8caf78912b704e4a8964);
        assert_ne!(body_hash(r#"{"a":1}"#), body_hash(r#"{"a":2}"#));
    }

    #[test]
    fn records_are_bounded_by_bytes_whatever_the_body_size() {
        let record = |n: usize| Remembered {
            body_hash: body_hash(&"x".repeat(n)),
            event_id: "evt_1".into(),
            response: Bytes::from_static(b"{}"),
        };
        let mut s = IdempotencyStore::new(usize::MAX);
        s.remember("t", "small", record(10));
        let small = s.bytes();
        s.clear();
        s.remember("t", "small", record(60_000));
        assert_eq!(s.bytes(), small, "a record holds a hash, not the body");

        let mut s = IdempotencyStore::new(small * 3);
        let mut forgotten = Vec::new();
        for i in 0..5 {
            forgotten.extend(s.remember("t", &format!("k{i:03}"), record(i)));
        }
        assert_eq!(s.len(), 3);
        assert_eq!(
            forgotten,
            [
                ("t".to_string(), "k000".to_string()),
                ("t".into(), "k001".into())
            ]
        );
        assert!(matches!(
            s.lookup("t", "k000", body_hash("")),
            Lookup::Fresh
        ));
    }
}
