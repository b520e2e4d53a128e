#![cfg(not(target_arch = "wasm32"))]
//! Host tests of `core::handover`: the `track` calls the loader hands over as text read back
//! exactly, and the same property errors as `track` itself gives. The lines are those of
//! `tests/vectors/handover.json`, which the loader's tests check the writing side against.

mod host_json;

use inhouse_tracker::core::error::ErrorCode;
use inhouse_tracker::core::event::Props;
use inhouse_tracker::core::handover::read_call;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/handover.json")).unwrap()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key].as_array().unwrap()
}

/// What `web::props` writes for the same object (through `Props::from_json`, which shares its
/// `PropsWriter`): the reference.
fn reference(json: &str) -> Props {
    Props::from_json(&host_json::to_json(&serde_json::from_str(json).unwrap())).unwrap()
}

#[test]
fn calls_read_back_as_written() {
    let v = vectors();
    for case in list(&v, "valid") {
        let line = case["line"].as_str().unwrap();
        let c = read_call(line).unwrap();
        assert_eq!(c.at.to_string(), line.split('\t').next().unwrap());
        assert_eq!(c.name, case["name"].as_str().unwrap(), "{line:?}");
        assert_eq!(c.dedup_key.as_deref(), case["dedupKey"].as_str(), "{line:?}");
        assert_eq!(c.props.as_str(), case["props"].as_str().unwrap(), "{line:?}");
    }
}

#[test]
fn strings_unescape_like_javascript() {
    // What JSON.stringify writes for each string, and the string the wasm gets from JavaScript
    // (a lone surrogate becomes U+FFFD when wasm-bindgen copies a string).
    let v = vectors();
    for case in list(&v, "escaped") {
        let (json, want) = (case["json"].as_str().unwrap(), case["want"].as_str().unwrap());
        let c = read_call(&format!("1\t{json}\t\t{{\"k\":{json}}}")).unwrap();
        assert_eq!(c.name, want, "{json}");
        assert_eq!(c.props.as_str(), reference(&format!("{{\"k\":{}}}", serde_json::to_string(want).unwrap())).as_str(), "{json}");
    }
}

#[test]
fn property_errors_are_those_of_track() {
    let v = vectors();
    for case in list(&v, "propertyErrors") {
        let e = read_call(case["line"].as_str().unwrap()).unwrap_err();
        assert_eq!((e.code.as_str(), e.field.as_deref()), (case["code"].as_str().unwrap(), case["field"].as_str()));
    }
    let long = "x".repeat(64 * 1024);
    let e = read_call(&format!("1\t\"n\"\t\t{{\"k\":\"{long}\"}}")).unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidProperties, Some("properties.k")));
}

#[test]
fn anything_the_loader_cannot_have_written_is_internal() {
    let v = vectors();
    for line in list(&v, "malformed") {
        let line = line.as_str().unwrap();
        let e = read_call(line).unwrap_err();
        assert_eq!(e.code, ErrorCode::Internal, "{line:?}");
    }
}
