#![cfg(not(target_arch = "wasm32"))]
//! Host tests of `core::policy`: response classification, backoff, `Retry-After`, `resetsOn`.
//! The wasm reads bodies with `JSON.parse` and dates with `Date.parse` (tests/web_transport.rs
//! covers those for real); here serde_json and a table of dates stand in for them, and the
//! tests check the decisions: which status gives which verdict, which fields win, which waits.

use inhouse_tracker::core::config::RetryPolicy;
use inhouse_tracker::core::error::{Error, ErrorCode};
use inhouse_tracker::core::policy::{backoff_ms, classify, rate_limit_reset_ms, retry_after_ms, rfc3339_ms, Answer, Doc, ServerError, Verdict};
use proptest::prelude::*;
use serde_json::Value;
use std::cell::RefCell;

const NOW: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// A parsed body, as the core reads it.
struct J<'a>(&'a Value);

impl Doc for J<'_> {
    fn field(&self, key: &str) -> Option<Self> {
        self.0.as_object()?.get(key).map(J)
    }
    fn first(&self) -> Option<Self> {
        self.0.as_array()?.first().map(J)
    }
    fn text(&self) -> Option<String> {
        self.0.as_str().map(String::from)
    }
}

/// What the edge does with a body: JSON through the parser, anything else as text.
fn server(body: &str) -> ServerError {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => ServerError::from_doc(&J(&v)),
        Err(_) => ServerError::from_text(body),
    }
}

/// Stands in for `Date.parse`: the dates these tests use, and nothing else.
fn date(s: &str) -> Option<u64> {
    Some(match s {
        "Thu, 01 Jan 2026 00:00:00 GMT" | "2026-01-01T00:00:00Z" => NOW,
        "Thu, 01 Jan 2026 00:00:01 GMT" => NOW + 1_000,
        "Thu, 01 Jan 2026 00:00:07 GMT" => NOW + 7_000,
        "Thu, 01 Jan 2026 00:01:30 GMT" => NOW + 90_000,
        "Sun, 06 Nov 1994 08:49:37 GMT" => 784_111_777_000,
        "2026-01-01T00:00:10Z" => NOW + 10_000,
        "2026-01-01T01:00:00Z" | "2026-01-01T01:00:00.000Z" => NOW + 3_600_000,
        _ => return None,
    })
}

fn status(code: u16, body: &str) -> Verdict {
    classify(&Answer { status: code, server: server(body), ..Default::default() }, NOW, date)
}

fn answer(code: u16, retry_after: Option<&str>, reset: Option<&str>, body: &str) -> Verdict {
    classify(&Answer { status: code, retry_after, rate_limit_reset: reset, server: server(body) }, NOW, date)
}

fn rejected(v: Verdict) -> Error {
    match v {
        Verdict::Reject { error } => {
            assert_eq!(error.code, ErrorCode::EventRejected);
            error
        }
        other => panic!("expected Reject, got {other:?}"),
    }
}

fn retry(v: Verdict) -> (Option<u64>, Error) {
    match v {
        Verdict::Retry { after_ms, error } => (after_ms, error),
        other => panic!("expected Retry, got {other:?}"),
    }
}

#[test]
fn success_and_conflict_are_delivered() {
    for code in [200, 201, 202, 204, 226, 299, 409] {
        assert_eq!(status(code, r#"{"status":"success"}"#), Verdict::Delivered, "{code}");
        assert_eq!(status(code, "garbage"), Verdict::Delivered, "{code}");
        assert_eq!(status(code, ""), Verdict::Delivered, "{code}");
    }
    assert_eq!(status(409, r#"{"type":"about:blank","code":"idempotency_conflict"}"#), Verdict::Delivered);
    assert_ne!(status(302, ""), Verdict::Delivered);
    assert_ne!(status(199, ""), Verdict::Delivered);
    assert_ne!(status(300, ""), Verdict::Delivered);
}

#[test]
fn pauses() {
    let body = r#"{"status":"error","errors":[{"code":"INVALID_TOKEN","message":"token revoked"}]}"#;
    for (code, want) in
        [(401, ErrorCode::AuthFailed), (403, ErrorCode::PermissionDenied), (404, ErrorCode::EndpointNotFound), (405, ErrorCode::EndpointNotFound)]
    {
        match status(code, body) {
            Verdict::Pause { error } => {
                assert_eq!(error.code, want, "{code}");
                assert!(error.message.contains(&format!("HTTP {code}")), "{}", error.message);
                assert!(error.message.contains("INVALID_TOKEN"), "{}", error.message);
                assert!(error.message.contains("token revoked"), "{}", error.message);
            }
            other => panic!("{code}: expected Pause, got {other:?}"),
        }
        assert!(matches!(status(code, ""), Verdict::Pause { .. }));
    }
    let Verdict::Pause { error } = status(401, r#"{"error":"invalid_token","message":"Missing bearer"}"#) else { panic!() };
    assert!(error.message.contains("setCredentials"), "{}", error.message);
}

#[test]
fn rejects_carry_the_servers_message() {
    for code in [400, 413, 422] {
        // Inhouse's envelope.
        let e = rejected(status(
            code,
            r#"{"status":"error","errors":[{"code":"VALIDATION_ERROR","message":"event_name is invalid","loc":["body","event_name"],"ctx":{},"details":{}}]}"#,
        ));
        assert!(e.message.contains("VALIDATION_ERROR"), "{}", e.message);
        assert!(e.message.contains("event_name is invalid"), "{}", e.message);
        assert!(e.message.contains(&format!("HTTP {code}")), "{}", e.message);
        // RFC 7807.
        let e = rejected(status(
            code,
            r#"{"type":"https://example.com/probs/too-big","title":"Payload Too Large","status":413,"detail":"properties exceed 32 KB","code":"payload_too_large"}"#,
        ));
        assert!(e.message.contains("properties exceed 32 KB"), "{}", e.message);
        assert!(e.message.contains("payload_too_large"), "{}", e.message);
        // RFC 7807 with a title only.
        let e = rejected(status(code, r#"{"title":"Unprocessable Entity"}"#));
        assert!(e.message.contains("Unprocessable Entity"), "{}", e.message);
        // {"error","message"}.
        let e = rejected(status(code, r#"{"error":"invalid_request","message":"event_name must be snake_case"}"#));
        assert!(e.message.contains("invalid_request"), "{}", e.message);
        assert!(e.message.contains("event_name must be snake_case"), "{}", e.message);
        // {"error":{"code","message"}}.
        let e = rejected(status(code, r#"{"error":{"code":"bad_event","message":"nope, not this one"}}"#));
        assert!(e.message.contains("bad_event") && e.message.contains("nope, not this one"), "{}", e.message);
        // Not JSON: the text itself.
        let e = rejected(status(code, "  <html><body>Bad Request</body></html>\n"));
        assert!(e.message.contains("<html><body>Bad Request</body></html>"), "{}", e.message);
        // Empty: still a readable message.
        let e = rejected(status(code, ""));
        assert!(e.message.ends_with(&format!("(HTTP {code})")), "{}", e.message);
        // JSON, but no known shape.
        let e = rejected(status(code, r#"[1,2,3]"#));
        assert!(e.message.ends_with(&format!("(HTTP {code})")), "{}", e.message);
        let e = rejected(status(code, r#""just a string""#));
        assert!(e.message.contains(&format!("HTTP {code}")), "{}", e.message);
    }
    let e = rejected(status(413, ""));
    assert!(e.message.contains("too large"), "{}", e.message);
}

#[test]
fn huge_bodies_are_truncated() {
    let garbage: String = (0..1_000_000).map(|i| (b'!' + (i % 90) as u8) as char).collect();
    let e = rejected(status(400, &garbage));
    assert!(e.message.len() < 400, "{} bytes", e.message.len());
    let big_message = format!(r#"{{"errors":[{{"code":"X","message":"{}"}}]}}"#, "m".repeat(100_000));
    let e = rejected(status(422, &big_message));
    assert!(e.message.len() < 700, "{} bytes", e.message.len());
    // Truncation is by characters, never splitting one.
    let e = rejected(status(400, &"é".repeat(10_000)));
    assert!(e.message.contains(&"é".repeat(200)));
    assert!(!e.message.contains(&"é".repeat(201)));
}

#[test]
fn server_error_shapes() {
    assert_eq!(server(""), ServerError::default());
    assert_eq!(server("   "), ServerError::default());
    assert_eq!(
        server(r#"{"code":"QUOTA_EXCEEDED","resetsOn":"2026-07-01T00:00:00.000Z"}"#),
        ServerError { code: Some("QUOTA_EXCEEDED".into()), message: None, resets_on: Some("2026-07-01T00:00:00.000Z".into()) }
    );
    let s = server(r#"{"success":false,"message":"Monthly limit reached","code":"QUOTA_EXCEEDED","resetsOn":"2026-07-01T00:00:00.000Z"}"#);
    assert_eq!(s.message.as_deref(), Some("Monthly limit reached"));
    assert_eq!(s.resets_on.as_deref(), Some("2026-07-01T00:00:00.000Z"));
    let s = server(r#"{"details":{"resetsOn":"2026-07-01"}}"#);
    assert_eq!(s.resets_on.as_deref(), Some("2026-07-01"));
    // The first error of an Inhouse envelope wins over the top level.
    let s = server(r#"{"status":"error","message":"top","errors":[{"code":"A","message":"first"},{"code":"B","message":"second"}]}"#);
    assert_eq!((s.code.as_deref(), s.message.as_deref()), (Some("A"), Some("first")));
    // Non-string fields are ignored, not fatal.
    let s = server(r#"{"code":429,"message":{"x":1},"errors":"none","error":null}"#);
    assert_eq!(s, ServerError::default());
}

#[test]
fn rate_limited_with_retry_after_seconds_and_dates() {
    let (after, e) = retry(answer(429, Some("30"), None, ""));
    assert_eq!(after, Some(30_000));
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert_eq!(retry(answer(429, Some(" 1.5 "), None, "")).0, Some(1_500));
    assert_eq!(retry(answer(429, Some("0"), None, "")).0, Some(0));
    // HTTP-date, 90 s ahead of NOW (2026-01-01T00:00:00Z).
    assert_eq!(retry(answer(429, Some("Thu, 01 Jan 2026 00:01:30 GMT"), None, "")).0, Some(90_000));
    // A date in the past: no wait, not an underflow.
    assert_eq!(retry(answer(429, Some("Sun, 06 Nov 1994 08:49:37 GMT"), None, "")).0, Some(0));
    // No hint at all.
    assert_eq!(retry(answer(429, None, None, "")).0, None);
    // Garbage Retry-After: ignored.
    assert_eq!(retry(answer(429, Some("soon"), None, "")).0, None);
    assert_eq!(retry(answer(429, Some("-5"), None, "")).0, None);
    assert_eq!(retry(answer(429, Some("inf"), None, "")).0, None);
    assert_eq!(retry(answer(429, Some("NaN"), None, "")).0, None);
}

#[test]
fn rate_limited_with_resets_on() {
    let body = r#"{"code":"QUOTA_EXCEEDED","resetsOn":"2026-01-01T01:00:00.000Z"}"#;
    let (after, e) = retry(answer(429, None, None, body));
    assert_eq!(after, Some(3_600_000));
    assert!(e.message.contains("QUOTA_EXCEEDED"), "{}", e.message);
    // Inhouse's envelope puts extra data under each error's `details`.
    let body = r#"{"status":"error","errors":[{"code":"RATE_LIMIT_EXCEEDED","message":"slow down","details":{"resetsOn":"2026-01-01T00:00:10Z"}}]}"#;
    assert_eq!(retry(answer(429, None, None, body)).0, Some(10_000));
    // Retry-After wins over resetsOn, which wins over X-RateLimit-Reset.
    let body = r#"{"resetsOn":"2026-01-01T01:00:00Z"}"#;
    assert_eq!(retry(answer(429, Some("5"), Some("42"), body)).0, Some(5_000));
    assert_eq!(retry(answer(429, None, Some("42"), body)).0, Some(3_600_000));
    // An unparseable resetsOn falls through to the header.
    assert_eq!(retry(answer(429, None, Some("42"), r#"{"resetsOn":"whenever"}"#)).0, Some(42_000));
}

#[test]
fn rate_limited_with_x_ratelimit_reset() {
    // Epoch seconds, epoch milliseconds, delta seconds.
    assert_eq!(retry(answer(429, None, Some("1767225605"), "")).0, Some(5_000));
    assert_eq!(retry(answer(429, None, Some("1767225605250"), "")).0, Some(5_250));
    assert_eq!(retry(answer(429, None, Some("42"), "")).0, Some(42_000));
    assert_eq!(retry(answer(429, None, Some("0"), "")).0, Some(0));
    // Already past.
    assert_eq!(retry(answer(429, None, Some("1767225000"), "")).0, Some(0));
    assert_eq!(retry(answer(429, None, Some("nope"), "")).0, None);
    assert_eq!(rate_limit_reset_ms(Some("-1"), NOW), None);
    assert_eq!(rate_limit_reset_ms(None, NOW), None);
    assert_eq!(rate_limit_reset_ms(Some(" 7 "), NOW), Some(7_000));
}

#[test]
fn server_failures_and_timeouts_retry() {
    for code in [500, 501, 502, 503, 504, 520, 599, 408, 425] {
        let (after, e) = retry(status(code, "upstream exploded"));
        assert_eq!(after, None, "{code}");
        assert_eq!(e.code, ErrorCode::ServerError, "{code}");
        assert!(e.message.contains(&format!("HTTP {code}")) && e.message.contains("upstream exploded"), "{}", e.message);
    }
    assert_eq!(retry(answer(503, Some("120"), None, "")).0, Some(120_000));
    assert_eq!(retry(answer(503, Some("Thu, 01 Jan 2026 00:00:07 GMT"), None, "")).0, Some(7_000));
    // X-RateLimit-Reset only matters on 429.
    assert_eq!(retry(answer(503, None, Some("42"), "")).0, None);
}

#[test]
fn retry_after_parsing() {
    assert_eq!(retry_after_ms(None, NOW, date), None);
    assert_eq!(retry_after_ms(Some("10"), NOW, date), Some(10_000));
    assert_eq!(retry_after_ms(Some(""), NOW, date), None);
    assert_eq!(retry_after_ms(Some("Thu, 01 Jan 2026 00:00:01 GMT"), NOW, date), Some(1_000));
    // Huge values do not overflow (the engine caps them with maxRetryAfterMs).
    assert_eq!(retry_after_ms(Some("99999999999999999999999"), NOW, date), Some(u64::MAX));
    assert_eq!(retry_after_ms(Some("99999999999999999999999.999"), NOW, date), Some(u64::MAX));
    assert_eq!(retry_after_ms(Some("1.5"), NOW, date), Some(1_500));
    assert_eq!(retry_after_ms(Some("2.25"), NOW, date), Some(2_250));
    assert_eq!(retry_after_ms(Some("0.0019"), NOW, date), Some(1));
    assert_eq!(retry_after_ms(Some("3."), NOW, date), Some(3_000));
    // Not delta-seconds (RFC 9110: 1*DIGIT) nor an HTTP date.
    for bad in ["1e3", "-5", "1.2.3", "1.x", ".5", "+5", "5 s"] {
        assert_eq!(retry_after_ms(Some(bad), NOW, date), None, "{bad:?}");
    }
}

#[test]
fn only_http_dates_reach_the_date_reader() {
    // `Date.parse` reads nearly anything (`-5` is a date to it): only what ends in "GMT", as
    // every HTTP date does, is handed to it.
    let asked = RefCell::new(Vec::new());
    let anything = |s: &str| {
        asked.borrow_mut().push(s.to_string());
        Some(NOW + 1_000)
    };
    for s in ["-5", "soon", "inf", "NaN", "Sun Nov  6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 UTC", ""] {
        assert_eq!(retry_after_ms(Some(s), NOW, anything), None, "{s:?}");
    }
    assert!(asked.borrow().is_empty(), "{:?}", asked.borrow());
    assert_eq!(retry_after_ms(Some(" Sunday, 06-Nov-94 08:49:37 GMT "), NOW, anything), Some(1_000));
    assert_eq!(asked.borrow().as_slice(), ["Sunday, 06-Nov-94 08:49:37 GMT"]);
}

#[test]
fn rfc3339_times_are_utc_without_a_zone() {
    let asked = RefCell::new(Vec::new());
    let echo = |s: &str| {
        asked.borrow_mut().push(s.to_string());
        Some(7)
    };
    // Zoned times and bare dates go as they are (trimmed); a time without a zone gets `Z`,
    // because `Date.parse` would read it in the browser's time zone.
    for (given, sent) in [
        ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"),
        ("  2026-11-22t10:00:00z ", "2026-11-22t10:00:00z"),
        ("2026-11-22T12:00:00+02:00", "2026-11-22T12:00:00+02:00"),
        ("2026-11-22T04:30:00-05:30", "2026-11-22T04:30:00-05:30"),
        ("2026-11-22", "2026-11-22"),
        ("2026-11-22T10:00:00", "2026-11-22T10:00:00Z"),
        ("2026-11-22 10:00:00.250", "2026-11-22 10:00:00.250Z"),
    ] {
        asked.borrow_mut().clear();
        assert_eq!(rfc3339_ms(given, echo), Some(7), "{given:?}");
        assert_eq!(asked.borrow().as_slice(), [sent], "{given:?}");
    }
    // Not a full date first: not a reset time, whatever `Date.parse` would make of it.
    asked.borrow_mut().clear();
    for s in ["", "2026", "2026-11", "tomorrow-ish", "11/22/2026 10:00", "Sun, 22 Nov 2026 10:00:00 GMT", "20261122T100000Z"] {
        assert_eq!(rfc3339_ms(s, echo), None, "{s:?}");
    }
    assert!(asked.borrow().is_empty(), "{:?}", asked.borrow());
    // What the reader cannot read stays unread.
    assert_eq!(rfc3339_ms("2026-13-45T99:00:00Z", |_| None), None);
}

#[test]
fn backoff_bounds() {
    let p = RetryPolicy::default(); // 1 s base, 300 s cap
    for n in 1..=40u32 {
        let full = (1_000u64 << (n - 1).min(40)).min(300_000);
        for r in [0.0, 0.25, 0.5, 0.999, 1.0] {
            let b = backoff_ms(&p, n, r);
            assert!(b >= full / 2 && b <= full, "n={n} r={r}: {b} not in [{}, {full}]", full / 2);
            assert!(b > 0);
        }
        assert_eq!(backoff_ms(&p, n, 0.0), full / 2);
        assert_eq!(backoff_ms(&p, n, 1.0), full);
    }
    assert_eq!(backoff_ms(&p, 1, 0.0), 500);
    assert_eq!(backoff_ms(&p, 3, 1.0), 4_000);
    assert_eq!(backoff_ms(&p, 9, 1.0), 256_000);
    assert_eq!(backoff_ms(&p, 10, 1.0), 300_000);
    // Zero failures is treated as one.
    assert_eq!(backoff_ms(&p, 0, 1.0), 1_000);
    // Out-of-range randomness is clamped.
    assert_eq!(backoff_ms(&p, 1, -3.0), 500);
    assert_eq!(backoff_ms(&p, 1, 7.0), 1_000);
    assert!(backoff_ms(&p, 1, f64::NAN) >= 500);
    // Huge failure counts and huge delays: no overflow, capped.
    assert_eq!(backoff_ms(&p, u32::MAX, 1.0), 300_000);
    let huge = RetryPolicy { base_delay_ms: u64::MAX / 3, max_delay_ms: u64::MAX, max_attempts: 1, max_retry_after_ms: 0 };
    let b = backoff_ms(&huge, u32::MAX, 1.0);
    assert_eq!(b, u64::MAX);
    assert!(backoff_ms(&huge, u32::MAX, 0.0) >= u64::MAX / 2);
}

#[test]
fn backoff_is_never_zero() {
    // Even a degenerate policy (not reachable through `validate`, but the type is public) must not
    // produce a zero delay: that would let one answer cause a tight loop.
    for (base, max) in [(1, 1), (0, 0), (1, 1_000), (0, 1_000), (3, 3)] {
        let p = RetryPolicy { base_delay_ms: base, max_delay_ms: max, max_attempts: 5, max_retry_after_ms: 1_000 };
        for n in [0, 1, 2, 50, u32::MAX] {
            for r in [0.0, 0.3, 0.999_999, 1.0] {
                assert!(backoff_ms(&p, n, r) >= 1, "base={base} max={max} n={n} r={r}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn backoff_in_range(base in 100u64..600_000, extra in 0u64..86_400_000, n in 0u32..200, r in 0.0f64..=1.0) {
        let max = base + extra;
        let p = RetryPolicy { base_delay_ms: base, max_delay_ms: max, max_attempts: 25, max_retry_after_ms: 1000 };
        let full = base.saturating_mul(1u64 << n.saturating_sub(1).min(30)).min(max);
        let b = backoff_ms(&p, n, r);
        prop_assert!(b >= full / 2 && b <= full && b > 0);
    }

    /// No body or header, however strange, makes classification panic.
    #[test]
    fn classify_never_panics(code in 0u16..1000, body in ".{0,200}", ra in proptest::option::of(".{0,40}"), reset in proptest::option::of(".{0,40}")) {
        let _ = classify(&Answer { status: code, retry_after: ra.as_deref(), rate_limit_reset: reset.as_deref(), server: server(&body) }, NOW, date);
        let _ = classify(&Answer { status: code, retry_after: ra.as_deref(), rate_limit_reset: reset.as_deref(), server: server(&body) }, NOW, |_| Some(0));
    }

    /// Messages are clipped by characters, never splitting one, whatever the text.
    #[test]
    fn messages_are_clipped_by_characters(body in "\\PC{0,300}") {
        let m = server(&format!("x{body}")).message.unwrap_or_default();
        prop_assert!(m.chars().count() <= 200);
        let json = serde_json::json!({ "message": body }).to_string();
        let m = server(&json).message.unwrap_or_default();
        prop_assert_eq!(m, body.chars().take(500).collect::<String>());
    }

    #[test]
    fn resets_on_garbage_never_panics(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:.]{0,14}[Zz+-]?.{0,6}") {
        let _ = rfc3339_ms(&s, |_| Some(NOW));
        let body = serde_json::json!({ "resetsOn": s }).to_string();
        let _ = classify(&Answer { status: 429, server: server(&body), ..Default::default() }, NOW, |_| Some(0));
    }

    #[test]
    fn header_readers_never_panic(s in ".{0,60}") {
        let _ = rfc3339_ms(&s, |_| Some(NOW));
        let _ = retry_after_ms(Some(&s), NOW, |_| Some(0));
        let _ = rate_limit_reset_ms(Some(&s), NOW);
    }
}
