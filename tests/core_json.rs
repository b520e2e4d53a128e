//! The hand-written JSON of the core, checked against serde_json (host only).
#![cfg(not(target_arch = "wasm32"))]

use inhouse_tracker::core::json::{is_json_number, parse, Json};
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
    let v = serde_json::json!({"s": "quote \" backslash \\ nl \n tab \t ctrl \u{1} é 😀", "n": -1.5e3, "a": [null, true, false, 0, {}], "o": {"k": []}});
    let text = from_serde(&v).to_text();
    assert!(!text.contains('\n') && !text.contains('\t'), "no raw newline or tab: {text}");
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, v);
    assert_eq!(parse(&text), Some(from_serde(&v)));
}

#[test]
fn parses_escapes_and_rejects_garbage() {
    assert_eq!(parse(r#""\u00e9\ud83d\ude00\/""#), Some(Json::String("é😀/".into())));
    assert_eq!(parse(" [1 , {\"a\" : null} ] "), Some(Json::Array(vec![Json::Number("1".into()), Json::Object(vec![("a".into(), Json::Null)])])));
    for bad in ["", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "\"\\x\"", "\"\\u+123\"", "nul", "[] []", "\"raw\ncontrol\"", "{'a':1}"] {
        assert_eq!(parse(bad), None, "{bad:?}");
    }
    let deep = "[".repeat(100) + &"]".repeat(100);
    assert_eq!(parse(&deep), None, "nesting beyond the limit is refused, not a stack overflow");
}

#[test]
fn number_grammar() {
    for ok in ["0", "-0", "1", "-12.5", "1e21", "1E+2", "2.5e-7"] {
        assert!(is_json_number(ok), "{ok}");
    }
    for bad in ["", "+1", "01", ".5", "1.", "1e", "NaN", "Infinity", "0x10", "1_000"] {
        assert!(!is_json_number(bad), "{bad}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_string_round_trips(s in any::<String>()) {
        let text = Json::String(s.clone()).to_text();
        prop_assert_eq!(serde_json::from_str::<String>(&text).unwrap(), s.clone());
        prop_assert_eq!(parse(&text), Some(Json::String(s)));
    }
}
