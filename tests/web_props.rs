//! The JavaScript → JSON walk of `track` properties, in a real browser.
#![cfg(target_arch = "wasm32")]

use inhouse_tracker::web::props::to_props;
use js_sys::eval;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The properties as serde_json reads the JSON text the SDK writes for them.
fn convert(expr: &str) -> Result<serde_json::Value, (String, String)> {
    let v = eval(&format!("({expr})")).expect("valid JS");
    to_props(&v)
        .map(|props| serde_json::from_str(props.as_str()).expect("the SDK writes valid JSON"))
        .map_err(|e| (e.code.as_str().to_string(), e.field.unwrap_or_default()))
}

#[wasm_bindgen_test]
fn plain_json_converts_exactly() {
    let v = convert(r#"{s: "x", n: 1, f: 1.5, neg: -2, b: true, z: null, a: [1, "2", {c: []}], o: {p: {q: "deep"}}}"#).unwrap();
    assert_eq!(v, serde_json::json!({"s":"x","n":1,"f":1.5,"neg":-2,"b":true,"z":null,"a":[1,"2",{"c":[]}],"o":{"p":{"q":"deep"}}}));
    // Integers stay integers on the wire, as JSON.stringify writes them.
    assert_eq!(serde_json::to_string(&v["n"]).unwrap(), "1");
    // Every number is written exactly as JSON.stringify writes it, keys in insertion order.
    let expr = "({n: 1, f: 1.5, neg: -2, big: 1e21, tiny: 1e-7, negz: -0, max: Number.MAX_SAFE_INTEGER + 2, third: 1/3})";
    let v = eval(expr).unwrap();
    let stringified = String::from(js_sys::JSON::stringify(&v).unwrap());
    assert_eq!(to_props(&v).unwrap().as_str(), stringified);
}

#[wasm_bindgen_test]
fn none_and_dates() {
    assert_eq!(convert("undefined").unwrap(), serde_json::json!({}));
    assert_eq!(convert("null").unwrap(), serde_json::json!({}));
    assert_eq!(convert("{u: undefined, k: 1}").unwrap(), serde_json::json!({"k": 1}));
    assert_eq!(convert("{d: new Date(0)}").unwrap(), serde_json::json!({"d": "1970-01-01T00:00:00.000Z"}));
    assert_eq!(convert("Object.assign(Object.create(null), {x: 1})").unwrap(), serde_json::json!({"x": 1}));
}

#[wasm_bindgen_test]
fn non_json_values_name_the_spot() {
    let cases = [
        ("{f: () => 1}", "properties.f"),
        ("{a: {s: Symbol('x')}}", "properties.a.s"),
        ("{big: 10n}", "properties.big"),
        ("{n: NaN}", "properties.n"),
        ("{list: [1, Infinity]}", "properties.list[1]"),
        ("{list: [1, undefined]}", "properties.list[1]"),
        ("{m: new Map()}", "properties.m"),
        ("{d: new Date('nope')}", "properties.d"),
        ("(() => { const o = {a: {}}; o.a.self = o; return o; })()", "properties.a.self"),
        ("{get boom() { throw new Error('getter') }}", "properties.boom"),
        ("{x: [[[[[[[[[[[1]]]]]]]]]]]}", "properties.x[0][0][0][0][0][0][0][0][0]"),
        // The core's limits, checked as the text is written.
        ("{ok: 1, $time: 'mine'}", "properties.$time"),
        ("{user: {bio: 'z'.repeat(8193)}}", "properties.user.bio"),
        ("{['k'.repeat(8193)]: 1}", &("properties.".to_string() + &"k".repeat(8193))),
    ];
    for (expr, field) in cases {
        let field: &str = field;
        let (code, got) = convert(expr).expect_err(expr);
        assert_eq!(code, "INVALID_PROPERTIES", "{expr}");
        assert_eq!(got, field, "{expr}");
    }
}

#[wasm_bindgen_test]
fn top_level_must_be_a_plain_object() {
    for expr in ["[1, 2]", "'text'", "42", "new Map()", "new (class Foo {})()"] {
        let (code, field) = convert(expr).expect_err(expr);
        assert_eq!((code.as_str(), field.as_str()), ("INVALID_PROPERTIES", "properties"), "{expr}");
    }
}

/// Values whose own code throws while they are read (Proxy traps, getters): bad input named by
/// its path, never an exception unwinding through the wasm. Repeated far past the point where a
/// leaked wasm stack used to break the tracker ("memory access out of bounds" after ~100).
#[wasm_bindgen_test]
fn throwing_traps_are_bad_input_and_leave_the_walk_working() {
    let cases = [
        ("{list: new Proxy([1, 2], {get(t, k) { if (k === '1') throw new Error('index'); return Reflect.get(t, k) }})}", "properties.list[1]"),
        ("(() => { const r = Proxy.revocable({}, {}); r.revoke(); return {draft: r.proxy} })()", "properties.draft"),
        ("{p: new Proxy({}, {ownKeys() { throw new Error('ownKeys') }})}", "properties.p"),
        ("{p: new Proxy({}, {getPrototypeOf() { throw new Error('proto') }})}", "properties.p"),
        ("{d: new Proxy(new Date(0), {})}", "properties.d"),
        ("{a: [new Proxy([], {get(t, k) { if (k === 'length') throw new Error('len'); return Reflect.get(t, k) }})]}", "properties.a[0]"),
        ("(() => { const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy })()", "properties"),
        ("new Proxy({}, {ownKeys() { throw new Error('top') }})", "properties"),
    ];
    for round in 0..60 {
        for (expr, field) in cases {
            let (code, got) = convert(expr).expect_err(expr);
            assert_eq!((code.as_str(), got.as_str()), ("INVALID_PROPERTIES", field), "{expr} (round {round})");
        }
    }
    assert_eq!(convert("{still: 'works'}").unwrap(), serde_json::json!({"still": "works"}));
}
