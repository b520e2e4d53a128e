//! The control port: faults, reset, credentials, dumps, and the binary's command line.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn health_and_unknown_endpoint() {
    let s = default_server().await;
    let r = control_get(&s, "/health").await;
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(control_get(&s, "/nope").await.status, 404);
    let r = send(
        s.control_addr(),
        "OPTIONS",
        "/events",
        &[("origin", "http://localhost:3000")],
        b"",
    )
    .await
    .expect("response");
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (204, Some("*"))
    );
    s.shutdown().await;
}

#[tokio::test]
async fn fail_next_with_retry_after_and_custom_body() {
    let s = default_server().await;
    let a = s.api_addr();
    let state = faults(
        &s,
        json!({"fail_next": {"count": 2, "status": 503, "retry_after": "7"}}),
    )
    .await;
    assert_eq!(state["fail_next"]["count"], 2);
    for _ in 0..2 {
        let r = track(a, "x").await;
        assert_eq!((r.status, r.code()), (503, "SERVICE_UNAVAILABLE".into()));
        assert_eq!(r.header("retry-after"), Some("7"));
        assert!(r.header("x-request-id").is_some());
    }
    assert_eq!(track(a, "x").await.status, 200);

    faults(&s, json!({"fail_next": {"status": 500}})).await;
    assert_eq!(track(a, "x").await.code(), "INTERNAL_ERROR");
    faults(&s, json!({"fail_next": {"status": 429}})).await;
    assert_eq!(track(a, "x").await.code(), "RATE_LIMIT_EXCEEDED");
    faults(
        &s,
        json!({"fail_next": {"status": 502, "body": {"oops": true}}}),
    )
    .await;
    let r = track(a, "x").await;
    assert_eq!((r.status, r.json()), (502, json!({"oops": true})));

    let ev = events(&s).await;
    assert_eq!(
        ev["events"].as_array().map(Vec::len),
        Some(1),
        "faulted requests store nothing"
    );
    assert_eq!(ev["counts"]["503"], 2);
    let bad = control_post(&s, "/faults", &json!({"fail_next": {"status": 42}})).await;
    assert_eq!(bad.status, 422);
    let bad = control_post(&s, "/faults", &json!({"explode": true})).await;
    assert_eq!(bad.status, 422);
    s.shutdown().await;
}

#[tokio::test]
async fn fail_event_by_name_counted_or_forever() {
    let s = default_server().await;
    let a = s.api_addr();
    faults(
        &s,
        json!({"fail_event": {"event_name": "doomed", "status": 422, "count": null}}),
    )
    .await;
    for _ in 0..3 {
        let r = track(a, "doomed").await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR".into()));
        assert!(r.json()["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("doomed")));
    }
    assert_eq!(track(a, "fine").await.status, 200);
    faults(
        &s,
        json!({"fail_event": {"event_name": "twice", "status": 500, "count": 2}}),
    )
    .await;
    assert_eq!(track(a, "twice").await.status, 500);
    assert_eq!(track(a, "twice").await.status, 500);
    assert_eq!(track(a, "twice").await.status, 200);
    assert_eq!(
        track(a, "doomed").await.status,
        422,
        "forever until cleared"
    );
    faults(&s, json!({"clear": true})).await;
    assert_eq!(track(a, "doomed").await.status, 200);
    let names: Vec<String> = events(&s).await["events"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|e| e["event_name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["fine", "twice", "doomed"]);
    s.shutdown().await;
}

#[tokio::test]
async fn latency_delays_track_responses() {
    let s = default_server().await;
    faults(&s, json!({"latency_ms": 300})).await;
    let t = Instant::now();
    assert_eq!(track(s.api_addr(), "slow").await.status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    faults(&s, json!({"latency_ms": 0})).await;
    let t = Instant::now();
    track(s.api_addr(), "fast").await;
    assert!(t.elapsed() < Duration::from_millis(250));
    s.shutdown().await;
}

#[tokio::test]
async fn reset_next_drops_the_connection() {
    let s = default_server().await;
    let a = s.api_addr();
    faults(&s, json!({"reset_next": 2})).await;
    for _ in 0..2 {
        let err = track_with(a, r#"{"event_name":"x","properties":{}}"#, &[])
            .await
            .err()
            .expect("network error");
        assert_ne!(
            err.kind(),
            ErrorKind::TimedOut,
            "a reset, not a hang: {err}"
        );
    }
    assert_eq!(track(a, "x").await.status, 200);
    let ev = events(&s).await;
    assert_eq!(ev["events"].as_array().map(Vec::len), Some(1));
    s.shutdown().await;
}

#[tokio::test]
async fn arming_a_connection_fault_closes_idle_keep_alive_connections() {
    for fault in [
        json!({"reset_next": 1}),
        json!({"hang_next": 1}),
        json!({"store_then_reset_next": 1}),
        json!({"reset_event": {"event_name": "doomed", "count": 1}}),
        json!({"reset_event": [{"event_name": "doomed", "count": null}]}),
    ] {
        idle_keep_alive_closed_when_arming(fault).await;
    }
}

async fn idle_keep_alive_closed_when_arming(fault: serde_json::Value) {
    let s = default_server().await;
    let mut stream = TcpStream::connect(s.api_addr()).await.expect("connect");
    let req = keep_alive_request(r#"{"event_name":"ka","properties":{}}"#);
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    faults(&s, fault.clone()).await;
    // The idle connection is closed, so the next request would go out on a fresh one.
    let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "{fault}");
    // While armed, responses that do not trip it close their connection too, even when the
    // client asked to keep it alive.
    let mut stream = TcpStream::connect(s.api_addr()).await.expect("connect");
    stream
        .write_all(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let r = tokio::time::timeout(TIMEOUT, read_response(&mut stream))
        .await
        .expect("the server closes the connection")
        .expect("response");
    assert_eq!(
        (r.status, r.header("connection")),
        (404, Some("close")),
        "{fault}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn hang_next_until_the_client_gives_up() {
    let s = default_server().await;
    let a = s.api_addr();
    faults(&s, json!({"hang_next": 1})).await;
    let t = Instant::now();
    let req = build(
        "POST",
        TRACK,
        &AUTH,
        br#"{"event_name":"x","properties":{}}"#,
    );
    let err = raw(a, &req, Duration::from_millis(400))
        .await
        .err()
        .expect("client timeout");
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_eq!(
        track(a, "x").await.status,
        200,
        "only the next request hangs"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn down_refuses_connections_then_up_on_the_same_port() {
    let s = default_server().await;
    let a = s.api_addr();
    assert_eq!(track(a, "before").await.status, 200);
    let state = faults(&s, json!({"down": true})).await;
    assert_eq!(state["down"], true);
    let err = TcpStream::connect(a).await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(
        control_get(&s, "/health").await.status,
        200,
        "control port stays up"
    );
    faults(&s, json!({"down": false})).await;
    assert_eq!(s.api_addr(), a);
    assert_eq!(track(a, "after").await.status, 200);

    // Reset also brings it back.
    faults(&s, json!({"down": true})).await;
    assert_eq!(control_post(&s, "/reset", &json!({})).await.status, 200);
    assert_eq!(track(a, "again").await.status, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn down_drops_open_connections() {
    let s = default_server().await;
    faults(&s, json!({"hang_next": 1})).await;
    let req = build(
        "POST",
        TRACK,
        &AUTH,
        br#"{"event_name":"x","properties":{}}"#,
    );
    let addr = s.api_addr();
    let pending = tokio::spawn(async move { raw(addr, &req, TIMEOUT).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    faults(&s, json!({"down": true})).await;
    let result = pending.await.expect("join");
    let err = result.err().expect("dropped");
    assert_ne!(err.kind(), ErrorKind::TimedOut, "{err}");
    s.shutdown().await;
}

#[tokio::test]
async fn clear_and_fault_state() {
    let s = default_server().await;
    let state = faults(
        &s,
        json!({
            "fail_next": {"count": 1, "status": 500},
            "fail_event": [{"event_name": "a"}, {"event_name": "b", "status": 400, "count": 3}],
            "latency_ms": 5, "reset_next": 1, "hang_next": 1, "store_then_reset_next": 3,
            "reset_event": [{"event_name": "r"}, {"event_name": "s", "count": 2}],
            "redirect_next": {"count": 2},
            "stall_body_next": 4,
            "rate_limit": {"limit": 10, "window_secs": 1}
        }),
    )
    .await;
    assert_eq!(state["fail_event"].as_array().map(Vec::len), Some(2));
    assert_eq!(state["store_then_reset_next"], 3);
    assert_eq!(
        state["reset_event"],
        json!([{"event_name": "r", "count": null}, {"event_name": "s", "count": 2}])
    );
    assert_eq!(
        state["redirect_next"],
        json!({"count": 2, "status": 307, "location": null})
    );
    assert_eq!(state["stall_body_next"], 4);
    assert_eq!(state["rate_limit"], json!({"limit": 10, "window_secs": 1}));
    let cleared = faults(&s, json!({"clear": true})).await;
    assert_eq!(
        cleared,
        json!({"fail_next": null, "fail_event": [], "latency_ms": 0, "reset_next": 0, "hang_next": 0,
               "store_then_reset_next": 0, "reset_event": [], "redirect_next": null,
               "stall_body_next": 0, "down": false, "rate_limit": null})
    );
    assert_eq!(control_get(&s, "/faults").await.json(), cleared);
    assert_eq!(track(s.api_addr(), "x").await.status, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn reset_clears_everything() {
    let s = default_server().await;
    let a = s.api_addr();
    let key = [("idempotency-key", "k1")];
    let body = r#"{"event_name":"x","properties":{}}"#;
    track_with(a, body, &key).await.expect("response");
    track_with(a, body, &key).await.expect("response");
    faults(&s, json!({"fail_event": {"event_name": "y"}})).await;
    faults(&s, json!({"reset_next": 1})).await;
    let _ = track_with(a, body, &[]).await;
    let off = control_post(&s, "/settings", &json!({"idempotency": false})).await;
    assert_eq!(off.json(), json!({"idempotency": false}));
    assert_eq!(events(&s).await["faults_injected"]["reset"], 1);
    assert_eq!(
        control_post(&s, "/reset", &json!({})).await.json(),
        json!({"status": "ok"})
    );
    let ev = events(&s).await;
    assert_eq!(
        ev,
        json!({"events": [], "duplicates": [], "counts": {}, "requests_total": 0,
               "event_id_duplicates": 0, "duplicate_event_ids": [],
               "dropped_oldest": 0, "next": 0,
               "faults_injected": {"reset": 0, "hang": 0, "store_then_reset": 0,
                                   "fail_next": 0, "fail_event": 0, "latency": 0,
                                   "reset_event": 0, "redirect": 0, "stall_body": 0}})
    );
    assert_eq!(
        control_get(&s, "/settings").await.json(),
        json!({"idempotency": true}),
        "reset restores the command line's settings"
    );
    assert_eq!(
        control_get(&s, "/requests").await.json()["requests"],
        json!([])
    );
    // Idempotency memory is gone: the same key stores again; faults are gone too.
    let r = track_with(a, body, &key).await.expect("response");
    assert_eq!(r.header("idempotent-replayed"), None);
    assert_eq!(track(a, "y").await.status, 200);
    assert_eq!(events(&s).await["events"][0]["seq"], 1);
    s.shutdown().await;
}

#[tokio::test]
async fn tokens_replace_and_list_redacted() {
    let s = default_server().await;
    let r = control_post(
        &s,
        "/tokens",
        &json!([{"token_id": "tok_new", "token_secret": "sec_new_secret", "app_id": "app_new"}]),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"tokens": [{"token_id": "tok_new", "token_secret": "<redacted>", "app_id": "app_new"}]})
    );
    assert_eq!(control_get(&s, "/tokens").await.json(), r.json());
    assert_eq!(
        track(s.api_addr(), "x").await.code(),
        "INVALID_TOKEN",
        "old token replaced"
    );
    let headers = [
        ("x-inhouse-token-id", "tok_new"),
        ("x-inhouse-token-secret", "sec_new_secret"),
        ("x-inhouse-app", "app_new"),
        ("content-type", "application/json"),
    ];
    let r = send(
        s.api_addr(),
        "POST",
        TRACK,
        &headers,
        br#"{"event_name":"x","properties":{}}"#,
    )
    .await
    .expect("response");
    assert_eq!(r.status, 200);
    let bad = control_post(
        &s,
        "/tokens",
        &json!([{"token_id": "a", "token_secret": "", "app_id": "c"}]),
    )
    .await;
    assert_eq!(bad.status, 422);
    let bad = control_post(&s, "/tokens", &json!({"not": "an array"})).await;
    assert_eq!(bad.status, 422);
    s.shutdown().await;
}

#[tokio::test]
async fn dumps_and_request_log_never_show_the_secret() {
    let s = default_server().await;
    let a = s.api_addr();
    track_with(
        a,
        r#"{"event_name":"page_view","properties":{"path":"/a"}}"#,
        &[("idempotency-key", "kk-1")],
    )
    .await
    .expect("response");
    track(a, "button_click").await;
    let mut wrong: Vec<(&str, &str)> = AUTH.to_vec();
    wrong[1].1 = "sec_Sup3rS3cret_valuX";
    send(a, "POST", TRACK, &wrong, b"{}")
        .await
        .expect("response");
    send(a, "GET", "/elsewhere", &AUTH, b"")
        .await
        .expect("response");

    let ndjson = control_get(&s, "/events?format=ndjson").await;
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<serde_json::Value> = ndjson
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["event_name"], "page_view");
    assert_eq!(lines[1]["id"], "evt_2");

    let text = control_get(&s, "/events?format=text").await.text();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows.len(),
        4,
        "header + one line per event + summary:\n{text}"
    );
    assert!(
        rows[3].starts_with("# 2 stored, event_id_duplicates 0"),
        "{text}"
    );
    assert!(rows[1].starts_with('1') && rows[1].contains("page_view") && rows[1].contains("kk-1"));
    assert!(rows[1].contains(APP) && rows[1].contains(r#"{"path":"/a"}"#));
    let app_col = |row: &str| row.find(APP).expect("app column");
    assert_eq!(app_col(rows[1]), app_col(rows[2]), "columns align");

    let log = control_get(&s, "/requests").await.json();
    let entries = log["requests"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["event_name"], "page_view");
    assert_eq!(entries[0]["idempotency_key"], "kk-1");
    assert_eq!(entries[0]["status"], 200);
    assert_eq!(entries[2]["code"], "INVALID_TOKEN");
    assert_eq!(entries[0]["item_id"], "evt_1");
    assert_eq!(entries[0]["injected"], json!(null));
    assert_eq!(entries[2]["item_id"], json!(null));
    assert_eq!(entries[3]["status"], 404);
    assert!(entries[0]["at_ms"].as_u64().is_some());
    assert_eq!(
        control_get(&s, "/events").await.json()["counts"],
        json!({"200": 2, "401": 1, "404": 1})
    );

    for path in [
        "/events",
        "/events?format=ndjson",
        "/events?format=text",
        "/requests",
        "/tokens",
        "/faults",
    ] {
        let body = control_get(&s, path).await.text();
        assert!(
            !body.contains(SECRET) && !body.contains("sec_Sup3rS3cret"),
            "{path} leaks the secret"
        );
    }
    assert_eq!(control_get(&s, "/events?format=xml").await.status, 400);
    s.shutdown().await;
}

/// The binary: the flushed address line then two lines for people on stdout, request lines on
/// stderr without the secret, clean exit on SIGTERM.
#[tokio::test]
async fn binary_prints_addresses_and_exits_on_sigterm() {
    let token = format!("{TOKEN_ID}:{SECRET}:{APP}");
    let mut child = spawn_binary([
        "--token",
        &token,
        "--rate-limit",
        "100/60",
        "--max-body",
        "2048",
        "--no-idempotency",
    ]);
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(TIMEOUT, lines.next_line())
        .await
        .expect("in time")
        .expect("read")
        .expect("a line");
    let rest = line
        .strip_prefix("inhouse-server listening api=http://")
        .expect("banner");
    let (api, control) = rest
        .split_once(" control=http://")
        .expect("control address");
    let api: std::net::SocketAddr = api.parse().expect("api addr");
    let control: std::net::SocketAddr = control.parse().expect("control addr");
    assert!(api.ip().is_loopback() && control.ip().is_loopback());
    for expected in [
        format!("  SDK baseUrl:   http://{api}/v1/api"),
        format!("  event viewer:  http://{control}/"),
        format!("  watch events:  curl 'http://{control}/events?format=text'"),
    ] {
        let line = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .expect("in time")
            .expect("read");
        assert_eq!(line.as_deref(), Some(expected.as_str()));
    }

    let r = send(
        api,
        "POST",
        TRACK,
        &AUTH,
        br#"{"event_name":"cli_event","properties":{}}"#,
    )
    .await
    .expect("response");
    assert_eq!(
        (r.status, r.header("x-ratelimit-limit")),
        (200, Some("100"))
    );
    let r = send(control, "GET", "/events", &[], b"")
        .await
        .expect("response");
    assert_eq!(r.json()["events"][0]["event_name"], "cli_event");
    let r = send(control, "GET", "/settings", &[], b"")
        .await
        .expect("response");
    assert_eq!(r.json(), json!({"idempotency": false}), "--no-idempotency");
    let r = send(
        control,
        "POST",
        "/faults",
        &[("content-type", "application/json")],
        br#"{"reset_next":1}"#,
    )
    .await
    .expect("response");
    assert_eq!(r.status, 200);
    let dropped = send(
        api,
        "POST",
        TRACK,
        &[
            AUTH[0],
            AUTH[1],
            AUTH[2],
            AUTH[3],
            ("idempotency-key", "cli-key-1"),
        ],
        br#"{"event_name":"cli_reset","properties":{}}"#,
    )
    .await;
    assert!(dropped.is_err(), "reset");

    let stderr = stop(child).await;
    assert!(
        stderr.contains(" 200 POST /v1/api/chrome/events/track event=cli_event"),
        "{stderr}"
    );
    let reset_line = stderr
        .lines()
        .find(|l| l.contains("event=cli_reset"))
        .map(without_timestamp)
        .unwrap_or_else(|| panic!("no line for the reset request: {stderr}"));
    assert!(
        reset_line
            .starts_with("--- POST /v1/api/chrome/events/track event=cli_reset key=cli-key-1")
            && reset_line.ends_with(" injected=reset"),
        "{reset_line}"
    );
    assert!(!stderr.contains(SECRET));
    assert!(
        lines.next_line().await.expect("read").is_none(),
        "exactly three stdout lines"
    );
}

#[tokio::test]
async fn settings_switch_idempotency_at_run_time() {
    let s = default_server().await;
    let a = s.api_addr();
    assert_eq!(
        control_get(&s, "/settings").await.json(),
        json!({"idempotency": true})
    );
    let body = r#"{"event_name":"x","properties":{"$event_id":"e1"}}"#;
    let other = r#"{"event_name":"y","properties":{}}"#;
    let k1 = [("idempotency-key", "k1")];
    assert_eq!(
        track_with(a, body, &k1).await.expect("response").status,
        200
    );
    let r = track_with(a, body, &k1).await.expect("response");
    assert_eq!(r.header("idempotent-replayed"), Some("true"));

    let r = control_post(&s, "/settings", &json!({"idempotency": false})).await;
    assert_eq!((r.status, r.json()), (200, json!({"idempotency": false})));
    let r = track_with(a, body, &k1).await.expect("response");
    assert_eq!((r.status, r.header("idempotent-replayed")), (200, None));
    assert_eq!(r.json()["item"]["id"], "evt_2", "stored again");
    let r = track_with(a, other, &k1).await.expect("response");
    assert_eq!(r.status, 200, "no conflict: {}", r.text());
    // Keys are not remembered while off.
    let k2 = [("idempotency-key", "k2")];
    assert_eq!(
        track_with(a, body, &k2).await.expect("response").status,
        200
    );

    // Clearing faults leaves settings alone; an empty object changes nothing.
    faults(&s, json!({"clear": true})).await;
    let r = control_post(&s, "/settings", &json!({})).await;
    assert_eq!(r.json(), json!({"idempotency": false}));

    assert_eq!(
        control_post(&s, "/settings", &json!({"idempotency": true}))
            .await
            .json(),
        json!({"idempotency": true})
    );
    // On again: the memory from before applies (k1), keys seen while off do not (k2).
    let r = track_with(a, body, &k1).await.expect("response");
    assert_eq!(
        (
            r.header("idempotent-replayed"),
            r.json()["item"]["id"].clone()
        ),
        (Some("true"), json!("evt_1"))
    );
    let r = track_with(a, body, &k2).await.expect("response");
    assert_eq!(r.header("idempotent-replayed"), None);
    let ev = events(&s).await;
    assert_eq!(ev["events"].as_array().map(Vec::len), Some(5));
    assert_eq!(ev["event_id_duplicates"], 3, "e1 stored 4 times");

    for bad in [
        json!({"idempotency": "no"}),
        json!({"bogus": true}),
        json!([]),
    ] {
        let r = control_post(&s, "/settings", &bad).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR".into()),
            "{bad}"
        );
    }
    s.shutdown().await;
}

/// Sends an event the server refuses (422): a fault armed for stored events must not be used
/// up by it.
async fn invalid_event_is_answered(a: std::net::SocketAddr) {
    let r = send(
        a,
        "POST",
        TRACK,
        &AUTH,
        br#"{"event_name":"Bad Name","properties":{}}"#,
    )
    .await
    .expect("response");
    assert_eq!(r.status, 422);
}

/// `store_then_reset_next`: the event is stored (and its key remembered), then the answer is
/// lost. A client that resends gets the idempotent replay, or with idempotency off stores a
/// duplicate that `GET /events` counts.
#[tokio::test]
async fn store_then_reset_stores_the_event_and_loses_the_answer() {
    let s = default_server().await;
    let a = s.api_addr();
    let state = faults(&s, json!({"store_then_reset_next": 1})).await;
    assert_eq!(state["store_then_reset_next"], 1);

    invalid_event_is_answered(a).await;

    let body = r#"{"event_name":"purchase","properties":{"$event_id":"ev-9"}}"#;
    let key = [("idempotency-key", "ev-9")];
    let t = Instant::now();
    let err = track_with(a, body, &key)
        .await
        .err()
        .expect("the answer is lost");
    assert_ne!(
        err.kind(),
        ErrorKind::TimedOut,
        "a reset, not a hang: {err}"
    );
    assert!(t.elapsed() < Duration::from_secs(2));

    let ev = events(&s).await;
    let stored = ev["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(stored.len(), 1, "stored despite the lost answer");
    assert_eq!(
        (
            stored[0]["id"].clone(),
            stored[0]["idempotency_key"].clone()
        ),
        (json!("evt_1"), json!("ev-9"))
    );
    assert_eq!(ev["faults_injected"]["store_then_reset"], 1);
    assert_eq!(ev["counts"], json!({"422": 1}), "no response was sent");
    assert_eq!(ev["requests_total"], 2);
    assert_eq!(
        control_get(&s, "/faults").await.json()["store_then_reset_next"],
        0
    );
    let log = control_get(&s, "/requests").await.json();
    let entry = &log["requests"][1];
    assert_eq!(entry["status"], json!(null));
    assert_eq!(entry["injected"], "store_then_reset");
    assert_eq!(entry["item_id"], "evt_1");
    assert_eq!(entry["event_name"], "purchase");
    assert_eq!(entry["idempotency_key"], "ev-9");

    // The resend: answered from the idempotency record written before the reset.
    let r = track_with(a, body, &key).await.expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
    assert_eq!(r.json()["item"]["id"], "evt_1");
    let ev = events(&s).await;
    assert_eq!(ev["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(ev["event_id_duplicates"], 0);

    // Without idempotency the same story ends in a stored duplicate, counted.
    control_post(&s, "/settings", &json!({"idempotency": false})).await;
    faults(&s, json!({"store_then_reset_next": 2})).await;
    let body = r#"{"event_name":"purchase","properties":{"$event_id":"ev-10"}}"#;
    let key = [("idempotency-key", "ev-10")];
    for _ in 0..2 {
        assert!(track_with(a, body, &key).await.is_err());
    }
    let r = track_with(a, body, &key).await.expect("response");
    assert_eq!((r.status, r.header("idempotent-replayed")), (200, None));
    let ev = events(&s).await;
    assert_eq!(ev["events"].as_array().map(Vec::len), Some(4));
    assert_eq!(ev["event_id_duplicates"], 2);
    assert_eq!(
        ev["duplicate_event_ids"],
        json!([{"event_id": "ev-10", "copies": 3}])
    );
    assert_eq!(ev["faults_injected"]["store_then_reset"], 3);
    s.shutdown().await;
}

/// Every faulted request is in the log and the counters, tagged with its kind; requests whose
/// connection was dropped or hung have `status: null`.
#[tokio::test]
async fn injected_faults_are_logged_and_counted() {
    let s = default_server().await;
    let a = s.api_addr();
    let x = r#"{"event_name":"x","properties":{}}"#;

    faults(&s, json!({"reset_next": 1})).await;
    let dropped = track_with(
        a,
        r#"{"event_name":"lost_reset","properties":{}}"#,
        &[
            ("idempotency-key", "k-reset"),
            ("x-request-id", "reset-req-0001"),
        ],
    )
    .await;
    assert!(dropped.is_err());

    faults(&s, json!({"hang_next": 1})).await;
    let req = build(
        "POST",
        TRACK,
        &[
            AUTH[0],
            AUTH[1],
            AUTH[2],
            AUTH[3],
            ("idempotency-key", "k-hang"),
        ],
        br#"{"event_name":"lost_hang","properties":{}}"#,
    );
    let hung = raw(a, &req, Duration::from_millis(300)).await;
    assert_eq!(hung.err().map(|e| e.kind()), Some(ErrorKind::TimedOut));

    faults(&s, json!({"fail_next": {"status": 500}})).await;
    assert_eq!(track_with(a, x, &[]).await.expect("response").status, 500);
    faults(
        &s,
        json!({"fail_event": {"event_name": "doomed", "count": 1}}),
    )
    .await;
    assert_eq!(track(a, "doomed").await.status, 422);
    faults(&s, json!({"latency_ms": 50})).await;
    assert_eq!(track(a, "slow").await.status, 200);
    faults(&s, json!({"latency_ms": 20, "fail_next": {"status": 503}})).await;
    assert_eq!(track(a, "slow_fail").await.status, 503);
    faults(&s, json!({"clear": true})).await;
    faults(
        &s,
        json!({"reset_event": {"event_name": "lost_by_name", "count": 1}}),
    )
    .await;
    assert!(
        track_with(a, r#"{"event_name":"lost_by_name","properties":{}}"#, &[])
            .await
            .is_err()
    );
    faults(&s, json!({"redirect_next": {}})).await;
    assert_eq!(track(a, "redirected").await.status, 307);
    faults(&s, json!({"stall_body_next": 1})).await;
    let req = build(
        "POST",
        TRACK,
        &AUTH,
        br#"{"event_name":"stalled","properties":{}}"#,
    );
    let stalled = raw(a, &req, Duration::from_millis(300)).await;
    assert_eq!(stalled.err().map(|e| e.kind()), Some(ErrorKind::TimedOut));
    assert_eq!(track(a, "plain").await.status, 200);

    let log = control_get(&s, "/requests").await.json();
    let entries = log["requests"].as_array().cloned().unwrap_or_default();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            json!([
                e["status"],
                e["injected"],
                e["event_name"],
                e["latency_ms"],
                e["item_id"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        [
            json!([null, "reset", "lost_reset", null, null]),
            json!([null, "hang", "lost_hang", null, null]),
            json!([500, "fail_next", "x", null, null]),
            json!([422, "fail_event", "doomed", null, null]),
            json!([200, "latency", "slow", 50, "evt_1"]),
            json!([503, "fail_next", "slow_fail", 20, null]),
            json!([null, "reset_event", "lost_by_name", null, null]),
            json!([307, "redirect", "redirected", null, null]),
            json!([200, "stall_body", "stalled", null, "evt_2"]),
            json!([200, null, "plain", null, "evt_3"]),
        ]
    );
    let reset = &entries[0];
    assert_eq!(
        (
            &reset["method"],
            &reset["path"],
            &reset["idempotency_key"],
            &reset["request_id"]
        ),
        (
            &json!("POST"),
            &json!(TRACK),
            &json!("k-reset"),
            &json!("reset-req-0001")
        )
    );
    assert_eq!(entries[1]["idempotency_key"], "k-hang");

    let ev = events(&s).await;
    assert_eq!(
        ev["faults_injected"],
        json!({"reset": 1, "hang": 1, "store_then_reset": 0, "fail_next": 2,
               "fail_event": 1, "latency": 2, "reset_event": 1, "redirect": 1,
               "stall_body": 1})
    );
    assert_eq!(ev["requests_total"], 10);
    assert_eq!(
        ev["counts"],
        json!({"200": 3, "307": 1, "422": 1, "500": 1, "503": 1}),
        "a stalled 200 was sent (its body was not finished)"
    );
    let text = control_get(&s, "/events?format=text").await.text();
    assert!(
        text.contains(
            "faults injected: reset 1, hang 1, fail_next 2, fail_event 1, latency 2, \
reset_event 1, redirect 1, stall_body 1"
        ),
        "{text}"
    );
    s.shutdown().await;
}

/// The event names stored so far, in order.
async fn stored_names(s: &inhouse_server::Running) -> Vec<String> {
    events(s).await["events"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|e| e["event_name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A track request that asks to keep its connection alive; reads one response (by its
/// Content-Length) without waiting for the server to close.
async fn track_keep_alive(addr: std::net::SocketAddr, event_name: &str) -> Resp {
    let body = format!(r#"{{"event_name":"{event_name}","properties":{{}}}}"#);
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    keep_alive_track(&mut stream, &body).await
}

/// `reset_event`: a valid request carrying that event name has its connection dropped, nothing
/// stored, no response; other names pass. Armed, it makes responses close their connection.
#[tokio::test]
async fn reset_event_drops_valid_requests_with_that_event_name() {
    let s = default_server().await;
    let a = s.api_addr();
    let doomed = r#"{"event_name":"doomed","properties":{"$event_id":"d1"}}"#;
    let key = [("idempotency-key", "k-doomed")];
    let state = faults(
        &s,
        json!({"reset_event": {"event_name": "doomed", "count": 2}}),
    )
    .await;
    assert_eq!(
        state["reset_event"],
        json!([{"event_name": "doomed", "count": 2}])
    );

    // Other names pass; while the fault is armed the server closes even keep-alive connections.
    let r = track_keep_alive(a, "fine").await;
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    // Invalid requests get their error and do not use it up.
    let wrong_secret = [
        AUTH[0],
        ("x-inhouse-token-secret", "wrong"),
        AUTH[2],
        AUTH[3],
    ];
    let r = send(a, "POST", TRACK, &wrong_secret, doomed.as_bytes())
        .await
        .expect("response");
    assert_eq!(r.status, 401);
    let r = track_with(a, r#"{"event_name":"doomed","properties":{},"x":1}"#, &[])
        .await
        .expect("response");
    assert_eq!(r.status, 422);
    assert_eq!(
        control_get(&s, "/faults").await.json()["reset_event"][0]["count"],
        2
    );

    for attempt in 0..2 {
        let t = Instant::now();
        let err = track_with(a, doomed, &key)
            .await
            .err()
            .unwrap_or_else(|| panic!("attempt {attempt}: the connection is dropped"));
        assert_ne!(
            err.kind(),
            ErrorKind::TimedOut,
            "a reset, not a hang: {err}"
        );
        assert!(t.elapsed() < Duration::from_secs(2));
    }
    assert_eq!(stored_names(&s).await, ["fine"], "nothing stored");
    // Used up: the resend is stored, and responses keep their connection again.
    let r = track_with(a, doomed, &key).await.expect("response");
    assert_eq!(
        (r.status, r.json()["item"]["id"].clone()),
        (200, json!("evt_2"))
    );
    let r = track_keep_alive(a, "kept_alive").await;
    assert_eq!((r.status, r.header("connection")), (200, None));
    assert_eq!(
        control_get(&s, "/faults").await.json()["reset_event"],
        json!([])
    );

    // An array; `null` (or no count) = until cleared; `count: 0` removes one.
    faults(
        &s,
        json!({"reset_event": [{"event_name": "a", "count": null},
                               {"event_name": "b", "count": 1},
                               {"event_name": "doomed"}]}),
    )
    .await;
    for _ in 0..3 {
        assert!(track_with(a, r#"{"event_name":"a","properties":{}}"#, &[])
            .await
            .is_err());
    }
    assert!(track_with(a, r#"{"event_name":"b","properties":{}}"#, &[])
        .await
        .is_err());
    assert_eq!(track(a, "b").await.status, 200);
    // The server never sees a dropped request, so even a would-be replay is dropped.
    assert!(track_with(a, doomed, &key).await.is_err());
    faults(
        &s,
        json!({"reset_event": [{"event_name": "a", "count": 0}, {"event_name": "doomed", "count": 0}]}),
    )
    .await;
    assert_eq!(track(a, "a").await.status, 200);
    let r = track_with(a, doomed, &key).await.expect("response");
    assert_eq!(r.header("idempotent-replayed"), Some("true"));

    assert_eq!(
        stored_names(&s).await,
        ["fine", "doomed", "kept_alive", "b", "a"]
    );
    let ev = events(&s).await;
    assert_eq!(ev["faults_injected"]["reset_event"], 7);
    assert_eq!(ev["faults_injected"]["reset"], 0);
    assert_eq!(ev["event_id_duplicates"], 0);
    assert_eq!(
        ev["counts"],
        json!({"200": 6, "401": 1, "422": 1}),
        "dropped requests got no response"
    );
    assert_eq!(ev["requests_total"], 15);
    let log = control_get(&s, "/requests").await.json();
    let dropped: Vec<_> = log["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["injected"] == "reset_event")
        .map(|e| json!([e["status"], e["event_name"], e["item_id"]]))
        .collect();
    assert_eq!(dropped.len(), 7);
    assert_eq!(dropped[0], json!([null, "doomed", null]));
    assert_eq!(dropped[2], json!([null, "a", null]));
    s.shutdown().await;
}

/// `redirect_next`: the next N track requests get a 3xx with a `Location`, before credentials
/// and the body are looked at; nothing is stored; preflights are not faulted.
#[tokio::test]
async fn redirect_next_answers_3xx_before_any_check() {
    let s = default_server().await;
    let a = s.api_addr();
    let elsewhere = "http://127.0.0.1:9/elsewhere";
    let state = faults(
        &s,
        json!({"redirect_next": {"count": 2, "status": 302, "location": elsewhere}}),
    )
    .await;
    assert_eq!(
        state["redirect_next"],
        json!({"count": 2, "status": 302, "location": elsewhere})
    );

    let r = send(
        a,
        "OPTIONS",
        TRACK,
        &[
            ("origin", "chrome-extension://abcdef"),
            ("access-control-request-method", "POST"),
        ],
        b"",
    )
    .await
    .expect("response");
    assert_eq!(r.status, 204, "preflights are never faulted");
    // No credentials and a body that is not JSON: redirected all the same.
    let r = send(
        a,
        "POST",
        TRACK,
        &[
            ("origin", "chrome-extension://abcdef"),
            ("x-request-id", "redirect-req-01"),
        ],
        b"not json",
    )
    .await
    .expect("response");
    assert_eq!((r.status, r.header("location")), (302, Some(elsewhere)));
    assert_eq!(r.header("x-request-id"), Some("redirect-req-01"));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("chrome-extension://abcdef")
    );
    assert!(r.body.is_empty(), "{}", r.text());
    let r = track(a, "moved_away").await;
    assert_eq!((r.status, r.header("location")), (302, Some(elsewhere)));
    assert_eq!(track(a, "kept").await.status, 200, "only the next two");
    assert_eq!(
        control_get(&s, "/faults").await.json()["redirect_next"],
        json!(null)
    );

    // Defaults: 307 to the same URL with /moved appended, on either path; following it ends
    // in a 404.
    faults(&s, json!({"redirect_next": {"count": 2}})).await;
    let body = br#"{"event_name":"y","properties":{}}"#;
    let r = track(a, "y").await;
    assert_eq!(
        (r.status, r.header("location")),
        (307, Some("/v1/api/chrome/events/track/moved"))
    );
    let r = send(a, "POST", LEGACY, &AUTH, body)
        .await
        .expect("response");
    assert_eq!(
        (r.status, r.header("location")),
        (307, Some("/api/chrome/events/track/moved"))
    );
    let r = send(a, "POST", &format!("{TRACK}/moved"), &AUTH, body)
        .await
        .expect("response");
    assert_eq!((r.status, r.code()), (404, "RESOURCE_NOT_FOUND".into()));

    for status in [301, 303, 308] {
        faults(&s, json!({"redirect_next": {"status": status}})).await;
        assert_eq!(track(a, "z").await.status, status);
    }
    faults(&s, json!({"redirect_next": {"count": 5}})).await;
    faults(&s, json!({"redirect_next": {"count": 0}})).await;
    assert_eq!(track(a, "after").await.status, 200, "count 0 disarms");

    for bad in [
        json!({"redirect_next": {"status": 200}}),
        json!({"redirect_next": {"status": 304}}),
        json!({"redirect_next": {"status": 399}}),
        json!({"redirect_next": {"location": ""}}),
        json!({"redirect_next": {"location": "http://x/\nSet-Cookie: a=b"}}),
        json!({"redirect_next": {"bogus": 1}}),
    ] {
        let r = control_post(&s, "/faults", &bad).await;
        assert_eq!(r.status, 422, "{bad}");
    }

    assert_eq!(stored_names(&s).await, ["kept", "after"]);
    let ev = events(&s).await;
    assert_eq!(ev["faults_injected"]["redirect"], 7);
    let log = control_get(&s, "/requests").await.json();
    let redirected: Vec<_> = log["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["injected"] == "redirect")
        .map(|e| json!([e["status"], e["event_name"], e["code"], e["item_id"]]))
        .collect();
    assert_eq!(
        redirected,
        [
            json!([302, null, null, null]),
            json!([302, "moved_away", null, null]),
            json!([307, "y", null, null]),
            json!([307, "y", null, null]),
            json!([301, "z", null, null]),
            json!([303, "z", null, null]),
            json!([308, "z", null, null]),
        ]
    );
    s.shutdown().await;
}

/// Reads whatever arrives until nothing more has come for `quiet`; also says whether the
/// server closed the connection (or reset it).
async fn read_until_quiet(stream: &mut TcpStream, quiet: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(quiet, stream.read(&mut buf)).await {
            Err(_) => return (got, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// `stall_body_next`: the event is stored like a success and the 200's status line and headers
/// go out, with a Content-Length the body never reaches; the connection stays open.
#[tokio::test]
async fn stall_body_stores_the_event_and_never_finishes_the_answer() {
    let s = default_server().await;
    let a = s.api_addr();
    let state = faults(&s, json!({"stall_body_next": 1})).await;
    assert_eq!(state["stall_body_next"], 1);
    invalid_event_is_answered(a).await;

    let body = r#"{"event_name":"purchase","properties":{"$event_id":"ev-s"}}"#;
    let key = ("idempotency-key", "ev-s");
    let req = build(
        "POST",
        TRACK,
        &[
            AUTH[0],
            AUTH[1],
            AUTH[2],
            AUTH[3],
            key,
            ("origin", "chrome-extension://abcdef"),
            ("x-request-id", "stall-req-0001"),
        ],
        body.as_bytes(),
    );
    let mut stream = TcpStream::connect(a).await.expect("connect");
    stream.write_all(&req).await.expect("write");
    let (got, closed) = read_until_quiet(&mut stream, Duration::from_millis(500)).await;
    assert!(!closed, "the connection stays open");
    let r = parse_response(&got).expect("the status line and headers arrive");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("stall-req-0001"));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("chrome-extension://abcdef")
    );
    assert!(r.header("access-control-expose-headers").is_some());
    assert_eq!(r.header("transfer-encoding"), None);
    let declared: usize = r
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    let partial = r.body.clone();
    assert!(
        !partial.is_empty() && partial.len() < declared,
        "{} of {declared} bytes",
        partial.len()
    );
    assert!(serde_json::from_slice::<serde_json::Value>(&partial).is_err());
    // Nothing more comes, and the connection is still open.
    let (more, closed) = read_until_quiet(&mut stream, Duration::from_millis(300)).await;
    assert_eq!((more.len(), closed), (0, false));

    // Stored like a success, and logged as a sent 200.
    let ev = events(&s).await;
    let stored = ev["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(stored.len(), 1, "stored despite the unfinished answer");
    assert_eq!(
        (stored[0]["id"].clone(), stored[0]["event_name"].clone()),
        (json!("evt_1"), json!("purchase"))
    );
    assert_eq!(ev["faults_injected"]["stall_body"], 1);
    assert_eq!(ev["counts"], json!({"200": 1, "422": 1}));
    let log = control_get(&s, "/requests").await.json();
    let entry = &log["requests"][1];
    assert_eq!(
        json!([
            entry["status"],
            entry["injected"],
            entry["item_id"],
            entry["request_id"]
        ]),
        json!([200, "stall_body", "evt_1", "stall-req-0001"])
    );
    assert_eq!(
        control_get(&s, "/faults").await.json()["stall_body_next"],
        0
    );

    // The client gives up and resends: the replay is the whole body the stalled one began.
    drop(stream);
    let r = track_with(a, body, &[key]).await.expect("response");
    assert_eq!(
        (r.status, r.header("idempotent-replayed")),
        (200, Some("true"))
    );
    assert_eq!(r.body.len(), declared);
    assert!(r.body.starts_with(&partial));
    assert_eq!(r.json()["item"]["id"], "evt_1");
    // Only the next one stalled.
    let r = track(a, "after").await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("success"))
    );
    s.shutdown().await;
}
