//! The fetch transport against the local Inhouse server on 127.0.0.1 (started by
//! scripts/test.sh), including the faults it can script; and the reading of answers through
//! JavaScript's `JSON.parse` and `Date.parse`, which the host tests of the core stand in for.
#![cfg(target_arch = "wasm32")]

mod support;

use inhouse_tracker::core::config::Credentials;
use inhouse_tracker::core::error::{Error, ErrorCode};
use inhouse_tracker::core::policy::{retry_after_ms, rfc3339_ms, Verdict};
use inhouse_tracker::web::{js::now_ms, transport};
use serde_json::json;
use support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn send(id: &str, secret: &str, timeout_ms: u32) -> Verdict {
    let url = format!("{}/chrome/events/track", api_base());
    let creds = Credentials { token_id: TOKEN_ID.into(), token_secret: secret.into() };
    let body = format!(r#"{{"event_name":"transport_test","properties":{{"$event_id":"{id}"}}}}"#);
    let req = transport::Request { url: &url, credentials: &creds, app_id: APP_ID, event_id: id, body: &body, timeout_ms };
    transport::send(req).await
}

fn code(v: &Verdict) -> Option<ErrorCode> {
    v.error().map(|e| e.code)
}

#[wasm_bindgen_test]
async fn delivers_with_the_contract_headers() {
    reset_server().await;
    assert_eq!(send("0190e7c2-0000-7000-8000-000000000001", TOKEN_SECRET, 5000).await, Verdict::Delivered);
    let events = stored_events().await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["event_name"], "transport_test");
    assert_eq!(e["idempotency_key"], "0190e7c2-0000-7000-8000-000000000001");
    assert_eq!(e["request_id"], "0190e7c2-0000-7000-8000-000000000001");
    assert_eq!(e["headers"]["x-inhouse-token-id"], TOKEN_ID);
    assert_eq!(e["headers"]["x-inhouse-app"], APP_ID);
    // A repeat with the same key is acknowledged and not stored twice.
    assert_eq!(send("0190e7c2-0000-7000-8000-000000000001", TOKEN_SECRET, 5000).await, Verdict::Delivered);
    assert_eq!(stored_events().await.len(), 1);
}

#[wasm_bindgen_test]
async fn classifies_server_answers() {
    reset_server().await;
    let v = send("0190e7c2-0000-7000-8000-000000000002", "wrong-secret", 5000).await;
    assert_eq!(code(&v), Some(ErrorCode::AuthFailed), "{v:?}");

    control("/faults", Some(json!({"fail_next": {"count": 1, "status": 503, "retry_after": "2"}}))).await;
    match send("0190e7c2-0000-7000-8000-000000000003", TOKEN_SECRET, 5000).await {
        Verdict::Retry { after_ms, error } => {
            assert_eq!(after_ms, Some(2000));
            assert_eq!(error.code, ErrorCode::ServerError);
        }
        other => panic!("503 must be retried, got {other:?}"),
    }

    control("/faults", Some(json!({"fail_event": {"event_name": "transport_test", "status": 422, "count": 1}}))).await;
    let v = send("0190e7c2-0000-7000-8000-000000000004", TOKEN_SECRET, 5000).await;
    assert_eq!(code(&v), Some(ErrorCode::EventRejected), "{v:?}");

    control("/faults", Some(json!({"reset_next": 1}))).await;
    let v = send("0190e7c2-0000-7000-8000-000000000005", TOKEN_SECRET, 5000).await;
    assert!(matches!(v, Verdict::Unreachable { .. }), "a reset connection is a network error: {v:?}");

    control("/faults", Some(json!({"latency_ms": 1500}))).await;
    let v = send("0190e7c2-0000-7000-8000-000000000006", TOKEN_SECRET, 300).await;
    assert_eq!(code(&v), Some(ErrorCode::Timeout), "{v:?}");
    control("/faults", Some(json!({"clear": true}))).await;
}

#[wasm_bindgen_test]
async fn unreachable_server_is_a_network_error() {
    let creds = Credentials { token_id: TOKEN_ID.into(), token_secret: TOKEN_SECRET.into() };
    // Port 9 (discard) is closed on loopback here: the connection is refused.
    let req = transport::Request {
        url: "http://127.0.0.1:9/v1/api/chrome/events/track",
        credentials: &creds,
        app_id: APP_ID,
        event_id: "0190e7c2-0000-7000-8000-000000000007",
        body: r#"{"event_name":"x","properties":{}}"#,
        timeout_ms: 3000,
    };
    let v = transport::send(req).await;
    assert_eq!(code(&v), Some(ErrorCode::NetworkError), "{v:?}");
}

const NOW: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// The verdict for an answer with this status, headers and body text, read as `send` reads it.
fn judge(status: u16, retry_after: Option<&str>, reset: Option<&str>, body: &str) -> Verdict {
    transport::judge(status, retry_after, reset, body, NOW)
}

fn error(v: Verdict) -> Error {
    v.error().cloned().expect("expected an error, got Delivered")
}

fn wait(v: Verdict) -> Option<u64> {
    match v {
        Verdict::Retry { after_ms, .. } => after_ms,
        other => panic!("expected Retry, got {other:?}"),
    }
}

#[wasm_bindgen_test]
fn bodies_are_read_with_json_parse() {
    for body in [r#"{"status":"success"}"#, "", "garbage"] {
        assert_eq!(judge(200, None, None, body), Verdict::Delivered);
        assert_eq!(judge(409, None, None, body), Verdict::Delivered);
    }
    // Inhouse's envelope: the first error wins over the top.
    let e = error(judge(
        422,
        None,
        None,
        r#"{"status":"error","message":"top","errors":[{"code":"VALIDATION_ERROR","message":"event_name is invalid","loc":["body","event_name"],"ctx":{},"details":{}},{"code":"B","message":"second"}]}"#,
    ));
    assert_eq!(e.code, ErrorCode::EventRejected);
    assert_eq!(e.message, "the server rejected the event (HTTP 422, VALIDATION_ERROR): event_name is invalid");
    // RFC 7807, {"error","message"}, {"error":{"code","message"}}.
    let e = error(judge(400, None, None, r#"{"title":"Bad Request","detail":"properties exceed 32 KB","code":"payload_too_large","status":400}"#));
    assert_eq!(e.message, "the server rejected the event (HTTP 400, payload_too_large): properties exceed 32 KB");
    let e = error(judge(401, None, None, r#"{"error":"invalid_token","message":"Missing bearer"}"#));
    assert_eq!(e.code, ErrorCode::AuthFailed);
    assert!(e.message.contains("(HTTP 401, invalid_token): Missing bearer") && e.message.contains("setCredentials"), "{}", e.message);
    let e = error(judge(403, None, None, r#"{"error":{"code":"bad_app","message":"not this app"}}"#));
    assert_eq!(e.code, ErrorCode::PermissionDenied);
    assert!(e.message.ends_with("(HTTP 403, bad_app): not this app"), "{}", e.message);
    let e = error(judge(404, None, None, r#"{"title":"Not Found"}"#));
    assert_eq!(e.code, ErrorCode::EndpointNotFound);
    assert!(e.message.ends_with("(HTTP 404): Not Found"), "{}", e.message);
    // Not JSON: the text itself, trimmed. Empty, or JSON of no known shape: status only.
    let e = error(judge(502, None, None, "  <html><body>Bad Gateway</body></html>\n"));
    assert_eq!(e.code, ErrorCode::ServerError);
    assert_eq!(e.message, "the server failed (HTTP 502): <html><body>Bad Gateway</body></html>");
    for body in [
        "",
        "   ",
        "[1,2,3]",
        r#""just a string""#,
        "null",
        "42",
        r#"{"code":429,"message":{"x":1},"errors":"none","error":null}"#,
        r#"{"errors":{"0":{"code":"X"}}}"#,
    ] {
        let e = error(judge(413, None, None, body));
        assert_eq!(e.message, "the server rejected the event as too large (HTTP 413)", "{body:?}");
    }
    // Clipped by characters, never splitting one: 200 of a text body, 500 of a JSON field.
    let e = error(judge(400, None, None, &"é".repeat(10_000)));
    assert!(e.message.ends_with(&format!("(HTTP 400): {}", "é".repeat(200))), "{}", e.message);
    let e = error(judge(400, None, None, &format!(r#"{{"errors":[{{"code":"X","message":"{}"}}]}}"#, "😀".repeat(1_000))));
    assert!(e.message.ends_with(&format!("(HTTP 400, X): {}", "😀".repeat(500))), "{}", e.message);
}

#[wasm_bindgen_test]
fn dates_are_read_with_date_parse() {
    // HTTP dates: IMF-fixdate, and the obsolete RFC 850 form recipients must also accept.
    assert_eq!(transport::date_ms("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777_000));
    assert_eq!(transport::date_ms("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777_000));
    assert_eq!(transport::date_ms("Thu, 01 Jan 2026 00:00:00 GMT"), Some(NOW));
    for bad in ["", "garbage", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT"] {
        assert_eq!(transport::date_ms(bad), None, "{bad:?}");
    }
    // Before 1970: not a time to wait for.
    assert_eq!(transport::date_ms("1969-12-31T23:59:59Z"), None);

    assert_eq!(retry_after_ms(Some("Thu, 01 Jan 2026 00:01:30 GMT"), NOW, transport::date_ms), Some(90_000));
    assert_eq!(retry_after_ms(Some("  Thu, 01 jan 2026 00:00:01 GMT "), NOW, transport::date_ms), Some(1_000));
    assert_eq!(retry_after_ms(Some("Sun, 06 Nov 1994 08:49:37 GMT"), NOW, transport::date_ms), Some(0));
    for bad in ["-5", "soon", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08-49-37 GMT"] {
        assert_eq!(retry_after_ms(Some(bad), NOW, transport::date_ms), None, "{bad:?}");
    }

    let base = 1_795_341_600_000; // 2026-11-22T10:00:00Z
    for (s, want) in [
        ("2026-11-22T10:00:00Z", base),
        ("2026-11-22t10:00:00z", base),
        ("2026-11-22 10:00:00Z", base),
        // No zone: UTC, whatever the browser's time zone.
        ("2026-11-22T10:00:00", base),
        ("2026-11-22T10:00:00.250", base + 250),
        ("  2026-11-22T10:00:00Z  ", base),
        ("2026-11-22T10:00:00.5Z", base + 500),
        ("2026-11-22T10:00:00.05Z", base + 50),
        ("2026-11-22T10:00:00.123Z", base + 123),
        ("2026-11-22T10:00:00.123456789Z", base + 123),
        ("2026-11-22T12:00:00+02:00", base),
        ("2026-11-22T12:00:00+0200", base),
        ("2026-11-22T04:30:00-05:30", base),
        ("2026-11-22T10:00:00.250-00:00", base + 250),
        ("2026-11-22T10:00Z", base),
        ("2026-11-22", base - 10 * 3_600_000),
        ("1970-01-01T00:00:00Z", 0),
        ("2000-02-29", 951_782_400_000),
    ] {
        assert_eq!(rfc3339_ms(s, transport::date_ms), Some(want), "{s:?}");
    }
    for bad in [
        "",
        "garbage",
        "2026",
        "2026-11",
        "2026-13-01",
        "2026-00-10",
        "2026-11-32",
        "2026-11-22T",
        "2026-11-22T25:00:00Z",
        "2026-11-22T10:61:00Z",
        "2026-11-22Tnoon",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        "2026-11-22T10:00:00+xx:00",
        "2026-11-22T10:00:00+1é",
        "tomorrow-ish",
    ] {
        assert_eq!(rfc3339_ms(bad, transport::date_ms), None, "{bad:?}");
    }
}

#[wasm_bindgen_test]
fn rate_limit_waits_from_headers_and_bodies() {
    // Retry-After, as seconds or an HTTP date; then `resetsOn` (top, error, or `details`);
    // then X-RateLimit-Reset.
    assert_eq!(wait(judge(429, Some("30"), None, "")), Some(30_000));
    assert_eq!(wait(judge(429, Some("Thu, 01 Jan 2026 00:01:30 GMT"), Some("42"), "")), Some(90_000));
    let quota = r#"{"success":false,"message":"Monthly limit reached","code":"QUOTA_EXCEEDED","resetsOn":"2026-01-01T01:00:00.000Z"}"#;
    assert_eq!(wait(judge(429, Some("5"), Some("42"), quota)), Some(5_000));
    assert_eq!(wait(judge(429, None, Some("42"), quota)), Some(3_600_000));
    let e = error(judge(429, None, None, quota));
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert_eq!(e.message, "rate limited by the server (HTTP 429, QUOTA_EXCEEDED): Monthly limit reached");
    let envelope =
        r#"{"status":"error","errors":[{"code":"RATE_LIMIT_EXCEEDED","message":"slow down","details":{"resetsOn":"2026-01-01T00:00:10Z"}}]}"#;
    assert_eq!(wait(judge(429, None, None, envelope)), Some(10_000));
    assert_eq!(wait(judge(429, None, None, r#"{"details":{"resetsOn":"2026-01-01"}}"#)), Some(0));
    assert_eq!(wait(judge(429, None, Some("42"), r#"{"resetsOn":"whenever"}"#)), Some(42_000));
    assert_eq!(wait(judge(429, None, Some("1767225605"), "")), Some(5_000));
    assert_eq!(wait(judge(429, None, Some("1767225605250"), "")), Some(5_250));
    assert_eq!(wait(judge(429, None, None, "")), None);
    // Only 429 looks at the body's time and X-RateLimit-Reset.
    assert_eq!(wait(judge(503, None, Some("42"), quota)), None);
    assert_eq!(wait(judge(503, Some("Thu, 01 Jan 2026 00:00:07 GMT"), None, "")), Some(7_000));
}

#[wasm_bindgen_test]
async fn rate_limits_from_the_server() {
    reset_server().await;
    // The limiter's own 429: Inhouse's envelope and Retry-After in seconds.
    control("/faults", Some(json!({"rate_limit": {"limit": 1, "window_secs": 60}}))).await;
    assert_eq!(send("0190e7c2-0000-7000-8000-000000000008", TOKEN_SECRET, 5000).await, Verdict::Delivered);
    match send("0190e7c2-0000-7000-8000-000000000009", TOKEN_SECRET, 5000).await {
        Verdict::Retry { after_ms, error } => {
            assert!(matches!(after_ms, Some(1_000..=60_000)), "{after_ms:?}");
            assert_eq!(error.code, ErrorCode::RateLimited);
            assert!(error.message.contains("(HTTP 429, RATE_LIMIT_EXCEEDED): too many requests"), "{}", error.message);
        }
        other => panic!("429 must be retried, got {other:?}"),
    }
    control("/faults", Some(json!({"rate_limit": null, "clear": true}))).await;

    // A quota answer: `resetsOn` under the error's `details`, an hour from now.
    let resets = js_sys::Date::new(&JsValue::from_f64((now_ms() + 3_600_000) as f64)).to_iso_string();
    let body = json!({"status": "error", "errors": [{"code": "QUOTA_EXCEEDED", "message": "monthly quota reached", "details": {"resetsOn": String::from(resets)}}]});
    control("/faults", Some(json!({"fail_next": {"status": 429, "body": body}}))).await;
    match send("0190e7c2-0000-7000-8000-00000000000a", TOKEN_SECRET, 5000).await {
        Verdict::Retry { after_ms, error } => {
            assert!(matches!(after_ms, Some(3_500_000..=3_600_000)), "{after_ms:?}");
            assert_eq!(error.message, "rate limited by the server (HTTP 429, QUOTA_EXCEEDED): monthly quota reached");
        }
        other => panic!("429 must be retried, got {other:?}"),
    }

    // Retry-After as an HTTP date, 30 s from now (IMF-fixdate has whole seconds).
    let at = js_sys::Date::new(&JsValue::from_f64((now_ms() + 30_000) as f64)).to_utc_string();
    control("/faults", Some(json!({"fail_next": {"status": 503, "retry_after": String::from(at)}}))).await;
    match send("0190e7c2-0000-7000-8000-00000000000b", TOKEN_SECRET, 5000).await {
        Verdict::Retry { after_ms, error } => {
            assert!(matches!(after_ms, Some(25_000..=30_000)), "{after_ms:?}");
            assert_eq!(error.code, ErrorCode::ServerError);
        }
        other => panic!("503 must be retried, got {other:?}"),
    }
    control("/faults", Some(json!({"clear": true}))).await;
}
