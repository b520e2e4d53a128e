#![cfg(not(target_arch = "wasm32"))]
//! Host tests of `core::handover`: the `track` calls the loader hands over as text read back
//! exactly, and the same property errors as `track` itself gives.

mod host_json;

use inhouse_tracker::core::error::ErrorCode;
use inhouse_tracker::core::event::Props;
use inhouse_tracker::core::handover::read_call;

/// What `web::props` writes for the same object (through `Props::from_json`, which shares its
/// `PropsWriter`): the reference.
fn reference(json: &str) -> Props {
    Props::from_json(&host_json::to_json(&serde_json::from_str(json).unwrap())).unwrap()
}

#[test]
fn calls_read_back_as_written() {
    let c = read_call("1795720852893\t\"page_view\"\t\t{\"a\":1,\"b\":\"x\",\"c\":true,\"d\":null,\"e\":-1.5e+21}").unwrap();
    assert_eq!((c.at, c.name.as_str(), c.dedup_key), (1_795_720_852_893, "page_view", None));
    assert_eq!(c.props.as_str(), r#"{"a":1,"b":"x","c":true,"d":null,"e":-1.5e+21}"#);
    let c = read_call("1\t\"n\"\t\"order-\\\"7\\\"\"\t{}").unwrap();
    assert_eq!(c.dedup_key.as_deref(), Some("order-\"7\""));
    assert_eq!(c.props.as_str(), "{}");
}

#[test]
fn strings_unescape_like_javascript() {
    // What JSON.stringify writes for each string, and the string the wasm gets from JavaScript
    // (a lone surrogate becomes U+FFFD when wasm-bindgen copies a string).
    for (json, want) in [
        (r#""tab\there""#, "tab\there"),
        (r#""q\"b\\s\/""#, "q\"b\\s/"),
        (r#""\b\f\n\r""#, "\u{8}\u{c}\n\r"),
        (r#""\u0001\u001f""#, "\u{1}\u{1f}"),
        ("\"é—😀\"", "é—😀"),
        (r#""\ud83d\ude00""#, "😀"),
        (r#""\ud800""#, "\u{fffd}"),
        (r#""\udc00x""#, "\u{fffd}x"),
        (r#""\ud800\u0041""#, "\u{fffd}A"),
    ] {
        let c = read_call(&format!("1\t{json}\t\t{{\"k\":{json}}}")).unwrap();
        assert_eq!(c.name, want, "{json}");
        assert_eq!(c.props.as_str(), reference(&format!("{{\"k\":{}}}", serde_json::to_string(want).unwrap())).as_str(), "{json}");
    }
}

#[test]
fn property_errors_are_those_of_track() {
    let e = read_call("1\t\"n\"\t\t{\"$browser\":\"x\"}").unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidProperties, Some("properties.$browser")));
    let long = "x".repeat(64 * 1024);
    let e = read_call(&format!("1\t\"n\"\t\t{{\"k\":\"{long}\"}}")).unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidProperties, Some("properties.k")));
}

#[test]
fn anything_the_loader_cannot_have_written_is_internal() {
    for line in [
        "",
        "1\t\"n\"\t\t{}\textra",
        "x\t\"n\"\t\t{}",
        "1\tn\t\t{}",
        "1\t\"n\"\t\"k\"x\t{}",
        "1\t\"n\"\t\t[]",
        "1\t\"n\"\t\t{\"a\":{\"b\":1}}",
        "1\t\"n\"\t\t{\"a\":[1]}",
        "1\t\"n\"\t\t{\"a\":nul}",
        "1\t\"n\"\t\t{\"a\":1,}",
        "1\t\"n\"\t\t{\"a\"1}",
        "1\t\"n\"\t\t{\"a\":\"x}",
        "1\t\"n\\q\"\t\t{}",
        "1\t\"\\u12\"\t\t{}",
        "1\t\"n\"\t\t{",
    ] {
        let e = read_call(line).unwrap_err();
        assert_eq!(e.code, ErrorCode::Internal, "{line:?}");
    }
}
