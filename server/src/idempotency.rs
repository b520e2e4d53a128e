//! Idempotency-Key memory: same key + same body replays the first success, a different body
//! conflicts. Keys are scoped per token id.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use serde_json::Value;

/// Oldest keys are forgotten beyond this many, so memory stays bounded on long runs.
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Remembered {
    pub canonical_body: String,
    pub event_id: String,
    /// The exact success body sent the first time, replayed byte for byte.
    pub response: Bytes,
}

pub enum Lookup<'a> {
    Fresh,
    Replay(&'a Remembered),
    Conflict(&'a Remembered),
}

#[derive(Debug, Default)]
pub struct IdempotencyStore {
    entries: HashMap<(String, String), Remembered>,
    order: VecDeque<(String, String)>,
}

impl IdempotencyStore {
    pub fn lookup(&self, token_id: &str, key: &str, canonical_body: &str) -> Lookup<'_> {
        match self.entries.get(&(token_id.to_string(), key.to_string())) {
            None => Lookup::Fresh,
            Some(r) if r.canonical_body == canonical_body => Lookup::Replay(r),
            Some(r) => Lookup::Conflict(r),
        }
    }

    pub fn remember(&mut self, token_id: &str, key: &str, entry: Remembered) {
        let k = (token_id.to_string(), key.to_string());
        if self.entries.insert(k.clone(), entry).is_none() {
            self.order.push_back(k);
        }
        while self.order.len() > MAX_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
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
            canonical_body: "{}".into(),
            event_id: "evt_1".into(),
            response: Bytes::new(),
        };
        s.remember("t1", "k", r);
        assert!(matches!(s.lookup("t1", "k", "{}"), Lookup::Replay(_)));
        assert!(matches!(s.lookup("t1", "k", "[]"), Lookup::Conflict(_)));
        assert!(matches!(s.lookup("t2", "k", "{}"), Lookup::Fresh));
    }
}
