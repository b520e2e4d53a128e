//! The tracking plan's check on its own, natively (`make bench` prints it beside the browser's
//! track() with and without a plan): ns per `Plan::check` of a valid call with a plan of 50
//! events of 5 properties, and of a call that breaks it (the error path, which builds a message).
//! Run: `cargo run --release --example plan_check`.

use inhouse_tracker::core::event::Props;
use inhouse_tracker::core::json::Json;
use inhouse_tracker::core::plan::Plan;
use std::hint::black_box;
use std::time::Instant;

fn text(s: &str) -> Json {
    Json::String(s.into())
}

fn main() {
    let properties = || {
        Json::Object(vec![
            ("bench_run".into(), text("string")),
            ("bench_seq".into(), text("number")),
            ("plan".into(), Json::Object(vec![("enum".into(), Json::Array(vec![text("free"), text("pro")]))])),
            ("n".into(), text("number")),
            ("ok".into(), text("boolean")),
        ])
    };
    let events = (0..50).map(|i| (format!("bench_event_{i}"), Json::Object(vec![("properties".into(), properties())]))).collect();
    let plan = Plan::from_spec(&Json::Object(events)).expect("a valid plan");
    let props = |plan_value: &str| {
        Props::from_json(&Json::Object(vec![
            ("bench_run".into(), Json::String("run".into())),
            ("bench_seq".into(), Json::Number("42".into())),
            ("plan".into(), Json::String(plan_value.into())),
            ("n".into(), Json::Number("3".into())),
            ("ok".into(), Json::Bool(true)),
        ]))
        .expect("valid properties")
    };
    let (valid, invalid) = (props("pro"), props("gold"));
    for (label, call, expect_ok) in [("valid call", &valid, true), ("call breaking the plan", &invalid, false)] {
        let n = 1_000_000;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for i in 0..n {
                let name = if i % 2 == 0 { "bench_event_37" } else { "bench_event_4" };
                assert_eq!(black_box(&plan).check(black_box(name), black_box(call)).is_ok(), expect_ok);
            }
            best = best.min(t.elapsed().as_secs_f64() * 1e9 / n as f64);
        }
        println!("plan_check: {label}: {best:.0} ns per check (50 events, 5 properties; best of 5 runs of {n})");
    }
}
