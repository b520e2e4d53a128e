//! The fetch transport against the local Inhouse server on 127.0.0.1 (started by
//! scripts/test.sh), including the faults it can script.
#![cfg(target_arch = "wasm32")]

mod support;

use inhouse_tracker::core::config::Credentials;
use inhouse_tracker::core::error::ErrorCode;
use inhouse_tracker::core::policy::Verdict;
use inhouse_tracker::web::{js::now_ms, transport};
use serde_json::json;
use support::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn send(id: &str, secret: &str, timeout_ms: u32) -> Verdict {
    let url = format!("{}/chrome/events/track", api_base());
    let creds = Credentials { token_id: TOKEN_ID.into(), token_secret: secret.into() };
    let body = format!(r#"{{"event_name":"transport_test","properties":{{"$event_id":"{id}"}}}}"#);
    let req = transport::Request { url: &url, credentials: &creds, app_id: APP_ID, event_id: id, body: &body, timeout_ms };
    transport::send(req, now_ms).await
}

fn code(v: &Verdict) -> Option<ErrorCode> {
    match v {
        Verdict::Delivered => None,
        Verdict::Retry { error, .. } | Verdict::Unreachable { error } | Verdict::Pause { error } | Verdict::Reject { error } => Some(error.code),
    }
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
    let v = transport::send(req, now_ms).await;
    assert_eq!(code(&v), Some(ErrorCode::NetworkError), "{v:?}");
}
