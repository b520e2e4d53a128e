#![cfg(not(target_arch = "wasm32"))]
//! Host tests of `core::event`: naming rule, property limits, ids, the exact bytes sent.

use inhouse_tracker::core::error::{Error, ErrorCode};
use inhouse_tracker::core::event::{
    build_event, check_dedup_key, check_properties, dedup_event_id, new_event_id, normalize_event_name, request_body, rfc3339_ms, EventContext,
    NewEvent, Path, Props, PropsWriter, Rng, MAX_DEDUP_KEY_LEN, MAX_EVENT_NAME_LEN, MAX_PROPERTY_DEPTH, MAX_STRING_BYTES, SDK,
};
use inhouse_tracker::core::json::Json;
use inhouse_tracker::core::origin::Origin;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::HashSet;

mod host_json;
use host_json::to_json;

const NOW: u64 = 1_795_330_800_123; // 2026-11-22T07:00:00.123Z

/// Properties: a JSON object.
fn obj(v: Value) -> Json {
    assert!(v.is_object(), "not an object");
    to_json(&v)
}

fn name_err(name: &str) -> Error {
    let e = normalize_event_name(name).expect_err(name);
    assert_eq!(e.code, ErrorCode::InvalidEventName, "{name}");
    assert_eq!(e.field.as_deref(), Some("eventName"));
    e
}

fn props_err(v: Value) -> Error {
    let e = check_properties(&obj(v)).expect_err("invalid properties");
    assert_eq!(e.code, ErrorCode::InvalidProperties);
    e
}

#[test]
fn event_name_rule() {
    assert_eq!(normalize_event_name("button_click").unwrap(), "button_click");
    assert_eq!(normalize_event_name("Button_Click").unwrap(), "button_click");
    assert_eq!(normalize_event_name("PAGE_VIEW2").unwrap(), "page_view2");
    assert_eq!(normalize_event_name("a").unwrap(), "a");
    assert_eq!(normalize_event_name("a_").unwrap(), "a_");
    assert_eq!(normalize_event_name("a__1").unwrap(), "a__1");
    let max = "a".repeat(MAX_EVENT_NAME_LEN);
    assert_eq!(normalize_event_name(&max).unwrap(), max);
    assert_eq!(MAX_EVENT_NAME_LEN, 128);

    assert!(name_err("").message.contains("empty"));
    let e = name_err(&"a".repeat(129));
    assert!(e.message.contains("128"), "{}", e.message);
    for bad in ["1abc", "_abc", "é", "abc!", "a.b", "ümlaut", "a\u{0}b", " abc", "abc "] {
        name_err(bad);
    }
}

#[test]
fn event_name_did_you_mean() {
    for (bad, hint) in [
        ("button click", "button_click"),
        ("button-click", "button_click"),
        ("Button-Click", "button_click"),
        ("Sign Up - Step 2", "sign_up_step_2"),
        ("page.view", "page_view"),
        ("1st_visit", "st_visit"),
        ("1_abc", "abc"),
        ("2 Fast 2", "fast_2"),
        ("  spaced  out ", "spaced_out"),
    ] {
        let e = name_err(bad);
        assert!(e.message.contains(&format!("did you mean {hint:?}")), "{bad}: {}", e.message);
        assert!(normalize_event_name(hint).is_ok(), "the hint {hint:?} must itself be valid");
    }
    // Nothing sensible to suggest: no hint.
    assert!(!name_err("---").message.contains("did you mean"));
    assert!(!name_err("123").message.contains("did you mean"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// Whatever the input, a suggested name is itself a valid name.
    #[test]
    fn every_hint_is_a_valid_name(name in "[ -~]{1,40}|[0-9_ -]{1,4}[a-zA-Z][a-z0-9 _-]{0,10}") {
        if let Err(e) = normalize_event_name(&name) {
            if let Some(start) = e.message.find("did you mean \"") {
                let rest = &e.message[start + 14..];
                let hint = &rest[..rest.find('"').unwrap()];
                prop_assert!(normalize_event_name(hint).is_ok(), "{:?} suggested {:?}", name, hint);
                prop_assert_eq!(normalize_event_name(hint).unwrap(), hint);
            }
        }
    }
}

#[test]
fn reserved_dollar_keys() {
    for key in ["$time", "$event_id", "$sdk", "$anything", "$"] {
        let e = props_err(json!({ "ok": 1, key: "x" }));
        assert_eq!(e.field.as_deref(), Some(format!("properties.{key}").as_str()));
        assert!(e.message.contains("reserved"), "{}", e.message);
    }
    // Only the top level is reserved; a '$' elsewhere is fine.
    check_properties(&obj(json!({"a": {"$nested": 1}, "price": "$5", "b$": 2}))).unwrap();
    check_properties(&Json::Object(vec![])).unwrap();
    // Properties are an object, never another JSON value.
    for not_object in [json!(null), json!([]), json!("x"), json!(1)] {
        let e = check_properties(&to_json(&not_object)).unwrap_err();
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidProperties, Some("properties")));
        let e = Props::from_json(&to_json(&not_object)).unwrap_err();
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidProperties, Some("properties")));
    }
}

/// `properties` with `levels` levels of nesting in total (the top-level object is level 1), each
/// level under the key `a`.
fn chain(levels: usize) -> Value {
    let mut v = json!({"leaf": 1});
    for _ in 1..levels {
        v = json!({ "a": v });
    }
    v
}

#[test]
fn depth_limit() {
    assert_eq!(MAX_PROPERTY_DEPTH, 10);
    check_properties(&obj(chain(MAX_PROPERTY_DEPTH))).unwrap();
    let e = props_err(chain(MAX_PROPERTY_DEPTH + 1));
    let path = format!("properties{}", ".a".repeat(MAX_PROPERTY_DEPTH));
    assert_eq!(e.field.as_deref(), Some(path.as_str()));
    assert!(e.message.contains(&path) && e.message.contains("10"), "{}", e.message);

    // Arrays count as levels too, and the path names the element: properties.a.b[0][0]...
    let arrays = |n: usize| {
        let mut v = json!(1);
        for _ in 0..n {
            v = json!([v]);
        }
        json!({ "a": { "b": v } })
    };
    // top(1) a(2) then n arrays: levels = 2 + n.
    check_properties(&obj(arrays(MAX_PROPERTY_DEPTH - 2))).unwrap();
    let e = props_err(arrays(MAX_PROPERTY_DEPTH - 1));
    let want = format!("properties.a.b{}", "[0]".repeat(MAX_PROPERTY_DEPTH - 2));
    assert_eq!(e.field.as_deref(), Some(want.as_str()));

    // Indexes are the real ones, and an empty container still counts as a level.
    let mut deep = json!([]);
    for _ in 0..(MAX_PROPERTY_DEPTH - 3) {
        deep = json!({ "c": deep });
    }
    let v = json!({ "a": { "b": ["x", 2, deep] } });
    let e = props_err(v);
    let want = format!("properties.a.b[2]{}", ".c".repeat(MAX_PROPERTY_DEPTH - 3));
    assert_eq!(e.field.as_deref(), Some(want.as_str()));
    // One level shallower fits.
    let mut deep = json!([]);
    for _ in 0..(MAX_PROPERTY_DEPTH - 4) {
        deep = json!({ "c": deep });
    }
    check_properties(&obj(json!({ "a": { "b": ["x", 2, deep] } }))).unwrap();
}

#[test]
fn long_strings_and_keys() {
    assert_eq!(MAX_STRING_BYTES, 8192);
    check_properties(&obj(json!({"s": "x".repeat(MAX_STRING_BYTES)}))).unwrap();
    let e = props_err(json!({"s": "x".repeat(MAX_STRING_BYTES + 1)}));
    assert_eq!(e.field.as_deref(), Some("properties.s"));
    // Bytes, not characters: 4,097 two-byte characters are 8,194 bytes.
    let e = props_err(json!({"s": "é".repeat(4097)}));
    assert_eq!(e.field.as_deref(), Some("properties.s"));
    check_properties(&obj(json!({"s": "é".repeat(4096)}))).unwrap();
    let e = props_err(json!({"list": ["ok", "y".repeat(MAX_STRING_BYTES + 1)]}));
    assert_eq!(e.field.as_deref(), Some("properties.list[1]"));
    let e = props_err(json!({"user": {"bio": "z".repeat(MAX_STRING_BYTES + 1)}}));
    assert_eq!(e.field.as_deref(), Some("properties.user.bio"));
    // Long keys, at the top and nested.
    let long_key = "k".repeat(MAX_STRING_BYTES + 1);
    let m = Json::Object(vec![(long_key.clone(), Json::Number("1".into()))]);
    let e = check_properties(&m).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidProperties);
    assert!(e.message.contains("key"));
    let e = props_err(json!({"o": { long_key: 1 }}));
    assert!(e.field.unwrap().starts_with("properties.o.kkk"));
}

#[test]
fn dedup_key_rules() {
    for bad in ["".to_string(), "k".repeat(MAX_DEDUP_KEY_LEN + 1), "é".repeat(MAX_DEDUP_KEY_LEN + 1)] {
        let e = check_dedup_key(&bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTrackOption);
        assert_eq!(e.field.as_deref(), Some("dedupKey"));
        assert!(e.message.contains("256"));
    }
    for good in ["k".to_string(), "k".repeat(MAX_DEDUP_KEY_LEN), "é".repeat(MAX_DEDUP_KEY_LEN), "order 42 / ü".into()] {
        check_dedup_key(&good).unwrap();
    }
}

fn build(name: &str, props: Value, dedup: Option<&str>, ctx: &EventContext, max: usize) -> Result<NewEvent, Error> {
    build_event(name, Props::from_json(&obj(props))?, dedup, ctx, &Origin::default(), NOW, max, &mut Rng::new(42))
}

#[test]
fn build_event_adds_context() {
    let install = "0d4c5e7a-3b2f-4c1d-9e8f-7a6b5c4d3e2f";
    let ctx = EventContext { extension_version: Some("1.2.3".into()), install_id: Some(install.into()), ..EventContext::default() };
    let ev = build("Button_Click", json!({"screen": "home", "n": 3, "nested": {"x": [1, 2]}}), None, &ctx, 32 * 1024).unwrap();
    assert_eq!(ev.name(), "button_click");
    let p: Value = serde_json::from_str(ev.props_json()).unwrap();
    assert_eq!(p["screen"], "home");
    assert_eq!(p["n"], 3);
    assert_eq!(p["nested"], json!({"x": [1, 2]}));
    assert_eq!(p["$time"], "2026-11-22T07:00:00.123Z");
    assert_eq!(p["$event_id"], ev.id());
    assert_eq!(p["$sdk"], SDK);
    assert!(SDK.starts_with("inhouse-chrome/"), "{SDK}");
    assert_eq!(SDK, format!("inhouse-chrome/{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(p["$extension_version"], "1.2.3");
    assert_eq!(p["$install_id"], install);
    assert_eq!(p["$source"], "background");
    assert_eq!(p.as_object().unwrap().len(), 9);
    assert_uuid_v7(ev.id(), NOW);
    assert_eq!(ev.stored_bytes(), ev.id().len() + ev.name().len() + ev.props_json().len() + 24);

    // Without a known version or install id, neither key at all (not null).
    let ev = build("x", json!({}), None, &EventContext::default(), 32 * 1024).unwrap();
    let p: Value = serde_json::from_str(ev.props_json()).unwrap();
    assert!(p.get("$extension_version").is_none());
    assert_eq!(p.as_object().unwrap().len(), 4);

    // Same seed and clock: same id and the same bytes (what a retry must send).
    let a = build("x", json!({"k": 1}), None, &ctx, 32 * 1024).unwrap();
    let b = build("x", json!({"k": 1}), None, &ctx, 32 * 1024).unwrap();
    assert_eq!(a, b);
}

#[test]
fn build_event_validates() {
    let ctx = EventContext::default();
    assert_eq!(build("bad name", json!({}), None, &ctx, 32 * 1024).unwrap_err().code, ErrorCode::InvalidEventName);
    assert_eq!(build("x", json!({"$time": 1}), None, &ctx, 32 * 1024).unwrap_err().code, ErrorCode::InvalidProperties);
    assert_eq!(build("x", chain(11), None, &ctx, 32 * 1024).unwrap_err().code, ErrorCode::InvalidProperties);
    assert_eq!(build("x", json!({}), Some(""), &ctx, 32 * 1024).unwrap_err().code, ErrorCode::InvalidTrackOption);
}

#[test]
fn request_body_is_exact() {
    assert_eq!(request_body("x", "{}"), r#"{"event_name":"x","properties":{}}"#);
    assert_eq!(request_body("user_action", r#"{"a":1}"#), r#"{"event_name":"user_action","properties":{"a":1}}"#);
    let ev = build("User_Action", json!({"action": "button_click", "q": "\"quoted\" \n ü"}), None, &EventContext::default(), 32 * 1024).unwrap();
    let body = request_body(ev.name(), ev.props_json());
    assert_eq!(body, format!("{{\"event_name\":\"user_action\",\"properties\":{}}}", ev.props_json()));
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed.as_object().unwrap().len(), 2);
    assert_eq!(parsed["event_name"], "user_action");
    assert_eq!(parsed["properties"]["q"], "\"quoted\" \n ü");
}

#[test]
fn event_too_large() {
    let ctx = EventContext { extension_version: Some("9.9".into()), ..EventContext::default() };
    let props = json!({"blob": "b".repeat(1000)});
    let ev = build("big", props.clone(), None, &ctx, 1 << 20).unwrap();
    let size = request_body(ev.name(), ev.props_json()).len();
    // Exactly at the limit fits; one byte less does not.
    assert_eq!(build("big", props.clone(), None, &ctx, size).unwrap(), ev);
    let e = build("big", props, None, &ctx, size - 1).unwrap_err();
    assert_eq!(e.code, ErrorCode::EventTooLarge);
    assert_eq!(e.code.as_str(), "EVENT_TOO_LARGE");
    assert_eq!(e.field.as_deref(), Some("properties"));
    assert!(e.message.contains(&size.to_string()) && e.message.contains(&(size - 1).to_string()), "{}", e.message);
    // The SDK's own context counts: empty properties still exceed a tiny limit.
    assert_eq!(build("x", json!({}), None, &ctx, 100).unwrap_err().code, ErrorCode::EventTooLarge);
}

fn assert_uuid_v7(id: &str, now_ms: u64) {
    assert_eq!(id.len(), 36, "{id}");
    let b = id.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if [8, 13, 18, 23].contains(&i) {
            assert_eq!(*c, b'-', "{id}");
        } else {
            assert!(c.is_ascii_digit() || (b'a'..=b'f').contains(c), "{id}");
        }
    }
    assert_eq!(b[14], b'7', "version nibble: {id}");
    assert!(b"89ab".contains(&b[19]), "variant: {id}");
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    assert_eq!(&hex[..12], format!("{now_ms:012x}"), "time prefix: {id}");
}

#[test]
fn uuid_v7_format_and_uniqueness() {
    let mut rng = Rng::new(7);
    let mut seen = HashSet::new();
    // The worst case for uniqueness: all in the same millisecond.
    for _ in 0..100_000 {
        let id = new_event_id(NOW, &mut rng);
        assert!(seen.insert(id), "duplicate id");
    }
    for id in seen.iter().take(1000) {
        assert_uuid_v7(id, NOW);
    }
    assert_uuid_v7(&new_event_id(0, &mut rng), 0);
    assert_uuid_v7(&new_event_id((1 << 48) - 1, &mut rng), (1 << 48) - 1);
}

#[test]
fn uuid_v7_time_prefix_sorts() {
    let mut rng = Rng::new(99);
    let mut prev = String::new();
    let mut t = NOW;
    for i in 0..10_000u64 {
        t += i % 3 + 1; // strictly increasing clock
        let id = new_event_id(t, &mut rng);
        assert!(id > prev, "{id} should sort after {prev}");
        prev = id;
    }
    // Same millisecond: same 48-bit prefix.
    let a = new_event_id(NOW, &mut rng);
    let b = new_event_id(NOW, &mut rng);
    assert_eq!(a[..13], b[..13]);
}

#[test]
fn rng_is_deterministic() {
    let (mut a, mut b, mut c) = (Rng::new(1), Rng::new(1), Rng::new(2));
    let xs: Vec<u64> = (0..10).map(|_| a.next_u64()).collect();
    let ys: Vec<u64> = (0..10).map(|_| b.next_u64()).collect();
    let zs: Vec<u64> = (0..10).map(|_| c.next_u64()).collect();
    assert_eq!(xs, ys);
    assert_ne!(xs, zs);
    let mut r = Rng::new(3);
    for _ in 0..10_000 {
        let f = r.next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}

#[test]
fn dedup_ids_are_stable_and_distinct() {
    // Computed once, independently (FNV-1a 64 over "button_click\0order-42", two offsets).
    assert_eq!(dedup_event_id("button_click", "order-42"), "d-a39c958c967b0ea779cb6218e4dc8004");
    assert_eq!(dedup_event_id("button_click", "order-42"), dedup_event_id("button_click", "order-42"));
    let pairs = [("a", "bc"), ("ab", "c"), ("a", "b"), ("b", "a"), ("button_click", "order-43"), ("page_view", "order-42")];
    let ids: HashSet<String> = pairs.iter().map(|(n, k)| dedup_event_id(n, k)).collect();
    assert_eq!(ids.len(), pairs.len());
    let id = dedup_event_id("x", "y");
    assert!(id.starts_with("d-") && id.len() == 34 && id[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    // Many keys, no collisions.
    let many: HashSet<String> = (0..50_000).map(|i| dedup_event_id("e", &i.to_string())).collect();
    assert_eq!(many.len(), 50_000);
    // Through build_event: the name is normalised first, so case does not split the id.
    let ctx = EventContext::default();
    let a = build("Button_Click", json!({}), Some("order-42"), &ctx, 4096).unwrap();
    assert_eq!(a.id(), "d-a39c958c967b0ea779cb6218e4dc8004");
    let p: Value = serde_json::from_str(a.props_json()).unwrap();
    assert_eq!(p["$event_id"], a.id());
}

#[test]
fn rfc3339_known_instants() {
    assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(rfc3339_ms(1_795_330_800_123), "2026-11-22T07:00:00.123Z");
    assert_eq!(rfc3339_ms(946_684_799_999), "1999-12-31T23:59:59.999Z");
    assert_eq!(rfc3339_ms(784_111_777_000), "1994-11-06T08:49:37.000Z");
    assert_eq!(rfc3339_ms(1_767_225_600_001), "2026-01-01T00:00:00.001Z");
    assert_eq!(rfc3339_ms(4_107_542_400_000), "2100-03-01T00:00:00.000Z"); // 2100 is not a leap year
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn rfc3339_round_trips(ms in 0u64..253_402_300_799_999) {
        let s = rfc3339_ms(ms);
        prop_assert_eq!(s.len(), 24);
        prop_assert_eq!(parse_utc_ms(&s), Some(ms));
    }
}

#[test]
fn writer_integers_are_plain_decimals() {
    let mut w = PropsWriter::new();
    w.open(b'{', Path::Root).unwrap();
    for (k, n) in [("a", 0i64), ("b", -1), ("c", 9_007_199_254_740_991), ("d", -9_007_199_254_740_991)] {
        w.key(k, Path::Key(&Path::Root, k)).unwrap();
        w.integer(n);
    }
    w.close(b'}');
    assert_eq!(w.finish().as_str(), r#"{"a":0,"b":-1,"c":9007199254740991,"d":-9007199254740991}"#);
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` back to milliseconds since the epoch (Howard Hinnant's
/// days_from_civil), to check the writer against.
fn parse_utc_ms(s: &str) -> Option<u64> {
    let n = |at: usize, len: usize| s.get(at..at + len)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(5, 2)?, n(8, 2)?);
    let y = if m <= 2 { y - 1 } else { y };
    let (era, yoe) = (y.div_euclid(400), y.rem_euclid(400));
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + n(11, 2)? * 3600 + n(14, 2)? * 60 + n(17, 2)?;
    u64::try_from(secs * 1000 + n(20, 3)?).ok()
}

#[test]
fn install_ids_are_random_uuids_and_only_uuids_are_read_back() {
    use inhouse_tracker::core::event::{is_uuid, new_install_id};
    let mut rng = Rng::new(7);
    let (a, b) = (new_install_id(&mut rng), new_install_id(&mut rng));
    assert_ne!(a, b);
    for id in [&a, &b] {
        assert!(is_uuid(id), "{id}");
        assert_eq!(&id[14..15], "4", "version 4: {id}");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "RFC 4122 variant: {id}");
    }
    for bad in [
        "",
        "not-a-uuid",
        "0D4C5E7A-3B2F-4C1D-9E8F-7A6B5C4D3E2F",
        "0d4c5e7a-3b2f-4c1d-9e8f-7a6b5c4d3e2",
        "0d4c5e7a_3b2f-4c1d-9e8f-7a6b5c4d3e2f",
        "0d4c5e7a-3b2f-4c1d-9e8f-7a6b5c4d3e2fx",
    ] {
        assert!(!is_uuid(bad), "{bad}");
    }
}
