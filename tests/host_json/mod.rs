//! serde_json values as the core's `Json` (host tests build properties from `json!`).
#![allow(dead_code)]

use inhouse_tracker::core::json::Json;
use serde_json::Value;

/// The core's JSON value of a serde_json value (numbers keep serde_json's text).
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => Json::Number(n.to_string()),
        Value::String(s) => Json::String(s.clone()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}
