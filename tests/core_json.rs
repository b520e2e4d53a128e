//! The core's hand-written JSON, checked against serde_json (host only).
#![cfg(not(target_arch = "wasm32"))]

use inhouse_tracker::core::event::Props;
use inhouse_tracker::core::json::{quoted, Json};
use proptest::prelude::*;

fn from_serde(v: &serde_json::Value) -> Json {
    match v {
        serde_json::Value::Null => Json::Null,
        serde_json::Value::Bool(b) => Json::Bool(*b),
        serde_json::Value::Number(n) => Json::Number(n.to_string()),
        serde_json::Value::String(s) => Json::String(s.clone()),
        serde_json::Value::Array(a) => Json::Array(a.iter().map(from_serde).collect()),
        serde_json::Value::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect()),
    }
}

#[test]
fn writes_what_serde_json_reads_back() {
    let v =
        serde_json::json!({"s": "quote \" backslash \\ nl \n tab \t ctrl \u{1} é 😀", "n": -1.5e3, "a": [null, true, false, 0, {}], "o": {"k": []}});
    let props = Props::from_json(&from_serde(&v)).unwrap();
    let text = props.as_str();
    assert!(!text.contains('\n') && !text.contains('\t'), "no raw newline or tab: {text}");
    let back: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(back, v);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_string_round_trips(s in any::<String>()) {
        let text = quoted(&s);
        prop_assert!(!text.contains('\n') && !text.contains('\t'));
        prop_assert_eq!(serde_json::from_str::<String>(&text).unwrap(), s);
    }
}
