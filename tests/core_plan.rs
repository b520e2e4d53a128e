#![cfg(not(target_arch = "wasm32"))]
//! The tracking plan (`core::plan`): what `init({ plan })` accepts, with errors naming the spot,
//! and what `track()` is checked against, with errors naming the field and what was expected.

use inhouse_tracker::core::error::ErrorCode;
use inhouse_tracker::core::event::Props;
use inhouse_tracker::core::json::Json;
use inhouse_tracker::core::plan::{Plan, PlanMode};
use serde_json::{json, Value};

mod host_json;

fn props(v: Value) -> Props {
    Props::from_json(&host_json::to_json(&v)).unwrap()
}

fn spec(v: Value) -> Json {
    host_json::to_json(&v)
}

fn plan() -> Plan {
    Plan::from_spec(&spec(json!({
        "signup": { "properties": { "plan": { "enum": ["free", "pro"] }, "seats": "number", "ref": { "type": "string", "required": false } } },
        "Button_Clicked": { "properties": { "id": "string" }, "additionalProperties": true },
        "app_opened": {},
        "settings_saved": { "properties": { "values": "object", "tags": "array", "dark": "boolean" } },
    })))
    .unwrap()
}

/// `(code, field, message)` of checking `track(name, properties)`.
fn refused(name: &str, properties: Value) -> (&'static str, String, String) {
    let e = plan().check(name, &props(properties)).expect_err("refused");
    (e.code.as_str(), e.field.unwrap_or_default(), e.message)
}

#[test]
fn events_that_match_the_plan_pass() {
    let p = plan();
    for (name, properties) in [
        ("signup", json!({ "plan": "pro", "seats": 3 })),
        ("signup", json!({ "plan": "free", "seats": -1.5, "ref": "newsletter" })),
        // Names are compared as track() normalises them (lower case).
        ("button_clicked", json!({ "id": "cta", "anything": [1, { "x": 2 }] })),
        ("app_opened", json!({})),
        ("settings_saved", json!({ "values": { "a": 1 }, "tags": ["x"], "dark": false })),
    ] {
        assert_eq!(p.check(name, &props(properties.clone())), Ok(()), "{name} {properties}");
    }
    assert_eq!(p.len(), 4);
}

#[test]
fn an_unknown_event_is_named_with_the_closest_known_one() {
    let (code, field, message) = refused("sign_up", json!({}));
    assert_eq!((code, field.as_str()), ("UNKNOWN_EVENT", "eventName"));
    assert!(message.contains("\"sign_up\" is not in the tracking plan") && message.contains("did you mean \"signup\""), "{message}");
    // Nothing close: no guess.
    let (_, _, message) = refused("checkout_completed", json!({}));
    assert!(!message.contains("did you mean"), "{message}");
}

#[test]
fn each_property_fault_names_the_field_and_what_the_plan_expects() {
    let cases = [
        (json!({ "plan": "gold", "seats": 1 }), "properties.plan", "must be one of \"free\", \"pro\" by the tracking plan, got the string \"gold\""),
        (json!({ "plan": "pro", "seats": "3" }), "properties.seats", "must be a number by the tracking plan, got the string \"3\""),
        (json!({ "plan": "pro", "seats": null }), "properties.seats", "must be a number by the tracking plan, got null"),
        (json!({ "plan": "pro" }), "properties.seats", "is required by the tracking plan for \"signup\": a number"),
        (json!({ "seats": 2 }), "properties.plan", "is required by the tracking plan for \"signup\": one of \"free\", \"pro\""),
        (
            json!({ "plan": "pro", "seats": 1, "extra": true }),
            "properties.extra",
            "is not in the tracking plan for \"signup\" (its properties: \"plan\", \"ref\", \"seats\")",
        ),
        (json!({ "plan": "pro", "seats": 1, "ref": 7 }), "properties.ref", "must be a string by the tracking plan, got the number 7"),
    ];
    for (properties, want_field, want) in cases {
        let (code, field, message) = refused("signup", properties.clone());
        assert_eq!((code, field.as_str()), ("INVALID_PROPERTY", want_field), "{properties}");
        assert!(message.contains(want), "{properties}: {message}");
    }
    let (code, field, message) = refused("app_opened", json!({ "x": 1 }));
    assert_eq!((code, field.as_str()), ("INVALID_PROPERTY", "properties.x"));
    assert!(message.contains("(its properties: none)"), "{message}");
    for (properties, field) in [
        (json!({ "values": [], "tags": [], "dark": true }), "properties.values"),
        (json!({ "values": {}, "tags": {}, "dark": true }), "properties.tags"),
        (json!({ "values": {}, "tags": [], "dark": "no" }), "properties.dark"),
    ] {
        assert_eq!(refused("settings_saved", properties).1, field);
    }
}

#[test]
fn a_bad_plan_is_refused_at_init_naming_the_spot() {
    let cases = [
        (json!(["signup"]), "plan", "plan must be an object of event names, got an array"),
        (json!({ "sign up": {} }), "plan.sign up", "must start with a letter"),
        // (serde_json orders keys: "SignUp" comes first, and the second one is named.)
        (json!({ "signup": {}, "SignUp": {} }), "plan.signup", "declared twice"),
        (json!({ "signup": "string" }), "plan.signup", "must be an object"),
        (json!({ "signup": { "propertes": {} } }), "plan.signup.propertes", "unknown key \"propertes\" (known: properties, additionalProperties)"),
        (json!({ "signup": { "properties": [] } }), "plan.signup.properties", "must be an object of property names"),
        (json!({ "signup": { "additionalProperties": "yes" } }), "plan.signup.additionalProperties", "must be a boolean"),
        (
            json!({ "signup": { "properties": { "seats": "int" } } }),
            "plan.signup.properties.seats",
            "unknown type \"int\" (known: string, number, boolean, array, object",
        ),
        (json!({ "signup": { "properties": { "seats": { "required": false } } } }), "plan.signup.properties.seats", "needs a type"),
        (json!({ "signup": { "properties": { "plan": { "enum": [] } } } }), "plan.signup.properties.plan.enum", "must not be empty"),
        (
            json!({ "signup": { "properties": { "plan": { "enum": ["a", 1] } } } }),
            "plan.signup.properties.plan.enum",
            "must hold strings, got a number",
        ),
        (
            json!({ "signup": { "properties": { "plan": { "type": "string", "optional": true } } } }),
            "plan.signup.properties.plan.optional",
            "unknown key \"optional\"",
        ),
        (json!({ "signup": { "properties": { "$plan": "string" } } }), "plan.signup.properties.$plan", "start with '$'"),
        (json!({ "signup": { "properties": { "seats": 3 } } }), "plan.signup.properties.seats", "must be a type name"),
    ];
    for (given, want_field, want) in cases {
        let e = Plan::from_spec(&spec(given.clone())).expect_err("refused");
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidOption, Some(want_field)), "{given}: {}", e.message);
        assert!(e.message.contains(want), "{given}: {}", e.message);
    }
}

#[test]
fn plan_mode_is_reject_or_report_and_report_by_default() {
    assert_eq!(PlanMode::default(), PlanMode::Report);
    assert_eq!(PlanMode::parse("reject"), Ok(PlanMode::Reject));
    assert_eq!(PlanMode::parse("report"), Ok(PlanMode::Report));
    let e = PlanMode::parse("strict").unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidOption, Some("planMode")));
}

#[test]
fn a_plan_of_fifty_events_checks_a_call_in_well_under_a_microsecond_on_the_host() {
    // Not a timing assertion (the browser figure is `make bench`'s): a guard against a check
    // that grows with the plan, e.g. a linear scan. 50 events of 8 properties each.
    let mut events = serde_json::Map::new();
    for i in 0..50 {
        let mut properties = serde_json::Map::new();
        for k in 0..8 {
            properties.insert(format!("p{k}"), json!(["string", "number", "boolean"][k % 3]));
        }
        events.insert(format!("event_{i:02}"), json!({ "properties": properties }));
    }
    let p = Plan::from_spec(&spec(Value::Object(events))).unwrap();
    let call = props(json!({ "p0": "a", "p1": 1, "p2": true, "p3": "b", "p4": 2, "p5": false, "p6": "c", "p7": 3 }));
    assert_eq!(p.check("event_37", &call), Ok(()));
    assert_eq!(p.check("event_99", &call).unwrap_err().code, ErrorCode::UnknownEvent);
}
