//! The track endpoint against the contract: statuses, codes, headers, idempotency, CORS,
//! rate limits. Real HTTP over loopback, servers on ephemeral ports.

mod common;

use common::*;
use inhouse_server::{Config, RateLimit, Token};
use serde_json::json;

const BODY: &str = r#"{"event_name":"button_click","properties":{"screen":"home"}}"#;

#[tokio::test]
async fn success_on_versioned_and_legacy_paths() {
    let s = default_server().await;
    let r = track_with(
        s.api_addr(),
        BODY,
        &[(
            "origin",
            "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
        )],
    )
    .await
    .expect("response");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("deprecation"), None);
    let v = r.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["item"]["id"], "evt_1");
    assert_eq!(v["item"]["event_name"], "button_click");
    assert!(v["item"]["received_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z') && t.contains('T')));

    let legacy = send(s.api_addr(), "POST", LEGACY, &AUTH, BODY.as_bytes())
        .await
        .expect("response");
    assert_eq!(legacy.status, 200);
    assert_eq!(legacy.header("deprecation"), Some("true"));
    assert_eq!(legacy.json()["item"]["id"], "evt_2");

    let ev = events(&s).await;
    let stored = &ev["events"];
    assert_eq!(stored.as_array().map(Vec::len), Some(2));
    assert_eq!(stored[0]["seq"], 1);
    assert_eq!(stored[0]["properties"], json!({"screen": "home"}));
    assert_eq!(stored[0]["path"], TRACK);
    assert_eq!(stored[1]["path"], LEGACY);
    let h = &stored[0]["headers"];
    assert_eq!(h["x-inhouse-token-id"], TOKEN_ID);
    assert_eq!(h["x-inhouse-app"], APP);
    assert_eq!(h["x-inhouse-token-secret"], "<redacted>");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        h["origin"],
        "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
    );
    assert!(stored[0]["received_at_ms"].as_u64().is_some());
    assert_eq!(ev["counts"], json!({"200": 2}));
    s.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_before_auth() {
    let s = server(Config {
        max_body: 100,
        ..Config::default()
    })
    .await;
    let big = format!(
        r#"{{"event_name":"x","properties":{{"pad":"{}"}}}}"#,
        "a".repeat(200)
    );
    // No credentials at all: size is checked first.
    let r = send(s.api_addr(), "POST", TRACK, &[], big.as_bytes())
        .await
        .expect("response");
    assert_eq!((r.status, r.code()), (413, "PAYLOAD_TOO_LARGE".into()));
    assert_eq!(r.loc(), json!(["body"]));

    // Chunked bodies are capped while streaming.
    let mut chunked = format!(
        "POST {TRACK} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..10 {
        chunked.extend_from_slice(format!("40\r\n{}\r\n", "b".repeat(64)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = raw(s.api_addr(), &chunked, TIMEOUT)
        .await
        .expect("response");
    assert_eq!(r.status, 413);

    // A huge declared length is refused without reading it.
    let head = format!("POST {TRACK} HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n");
    let r = raw(s.api_addr(), head.as_bytes(), TIMEOUT)
        .await
        .expect("response");
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    s.shutdown().await;
}

#[tokio::test]
async fn authentication_and_permissions() {
    let s = default_server().await;
    let a = s.api_addr();
    let ct = ("content-type", "application/json");

    let r = send(a, "POST", TRACK, &[ct], BODY.as_bytes())
        .await
        .expect("response");
    assert_eq!(
        (r.status, r.code()),
        (401, "AUTHENTICATION_REQUIRED".into())
    );
    assert_eq!(
        r.json()["errors"].as_array().map(Vec::len),
        Some(3),
        "one error per missing header"
    );
    for (i, missing) in [
        "x-inhouse-token-id",
        "x-inhouse-token-secret",
        "x-inhouse-app",
    ]
    .iter()
    .enumerate()
    {
        let mut headers: Vec<(&str, &str)> = AUTH.to_vec();
        // Empty counts as missing.
        headers[i].1 = "";
        let r = send(a, "POST", TRACK, &headers, BODY.as_bytes())
            .await
            .expect("response");
        assert_eq!(
            (r.status, r.code()),
            (401, "AUTHENTICATION_REQUIRED".into()),
            "{missing}"
        );
        assert_eq!(r.loc(), json!(["header", missing]));
    }

    let mut headers: Vec<(&str, &str)> = AUTH.to_vec();
    headers[0].1 = "tok_unknown";
    let r = send(a, "POST", TRACK, &headers, BODY.as_bytes())
        .await
        .expect("response");
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN".into()));

    // A wrong secret is the contract's INVALID_TOKEN too, located at the secret header.
    let mut headers: Vec<(&str, &str)> = AUTH.to_vec();
    headers[1].1 = "sec_wrong";
    let r = send(a, "POST", TRACK, &headers, BODY.as_bytes())
        .await
        .expect("response");
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN".into()));
    assert_eq!(r.loc(), json!(["header", "x-inhouse-token-secret"]));
    assert!(!r.text().contains("AUTHENTICATION_FAILED"));

    let mut headers: Vec<(&str, &str)> = AUTH.to_vec();
    headers[2].1 = "ppppppppppppppppppppppppppppppp0";
    let r = send(a, "POST", TRACK, &headers, BODY.as_bytes())
        .await
        .expect("response");
    assert_eq!(
        (r.status, r.code()),
        (403, "INSUFFICIENT_PERMISSIONS".into())
    );
    let err = &r.json()["errors"][0];
    assert_eq!(err["ctx"]["reason"], "app_mismatch");
    assert!(err["message"]
        .as_str()
        .is_some_and(|m| m.contains("ppppppppppppppppppppppppppppppp0")));
    for key in ["code", "message", "loc", "ctx", "details"] {
        assert!(err.get(key).is_some(), "error item lacks {key}");
    }

    // Non-UTF-8 header bytes are just an unknown token.
    let mut req = build("POST", TRACK, &AUTH[1..], BODY.as_bytes());
    let at = req.windows(2).position(|w| w == b"\r\n").expect("line end") + 2;
    req.splice(at..at, b"x-inhouse-token-id: \xff\xfe\r\n".iter().copied());
    let r = raw(a, &req, TIMEOUT).await.expect("response");
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN".into()));

    assert_eq!(events(&s).await["events"], json!([]));
    s.shutdown().await;
}

#[tokio::test]
async fn content_type_json_and_schema() {
    let s = default_server().await;
    let a = s.api_addr();
    let with_ct = |ct: &'static str| {
        let mut h: Vec<(&str, &str)> = AUTH[..3].to_vec();
        h.push(("content-type", ct));
        h
    };
    let r = send(a, "POST", TRACK, &with_ct("text/plain"), BODY.as_bytes())
        .await
        .expect("response");
    assert_eq!((r.status, r.code()), (415, "UNSUPPORTED_MEDIA_TYPE".into()));
    let r = send(a, "POST", TRACK, &AUTH[..3], BODY.as_bytes())
        .await
        .expect("response");
    assert_eq!(r.status, 415, "missing content-type");
    let r = send(
        a,
        "POST",
        TRACK,
        &with_ct("application/json; charset=utf-8"),
        BODY.as_bytes(),
    )
    .await
    .expect("response");
    assert_eq!(r.status, 200);

    for bad in [
        &b"{not json"[..],
        b"",
        b"\xff\xfe{}",
        b"{\"event_name\":\"a\",\"properties\":{}} trailing",
    ] {
        let r = send(a, "POST", TRACK, &AUTH, bad).await.expect("response");
        assert_eq!(
            (r.status, r.code()),
            (400, "VALIDATION_ERROR".into()),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
        assert_eq!(r.loc(), json!(["body"]));
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let r = send(a, "POST", TRACK, &AUTH, deep.as_bytes())
        .await
        .expect("response");
    assert_eq!(r.status, 400, "deep nesting is refused, not a crash");

    let long = "n".repeat(129);
    let cases = [
        (r#"[1,2]"#.to_string(), json!(["body"])),
        (
            r#"{"properties":{}}"#.to_string(),
            json!(["body", "event_name"]),
        ),
        (
            r#"{"event_name":"","properties":{}}"#.to_string(),
            json!(["body", "event_name"]),
        ),
        (
            r#"{"event_name":7,"properties":{}}"#.to_string(),
            json!(["body", "event_name"]),
        ),
        (
            format!(r#"{{"event_name":"{long}","properties":{{}}}}"#),
            json!(["body", "event_name"]),
        ),
        (
            r#"{"event_name":"a"}"#.to_string(),
            json!(["body", "properties"]),
        ),
        (
            r#"{"event_name":"a","properties":[1]}"#.to_string(),
            json!(["body", "properties"]),
        ),
        (
            r#"{"event_name":"a","properties":null}"#.to_string(),
            json!(["body", "properties"]),
        ),
        (
            r#"{"event_name":"a","properties":{},"user_id":"u"}"#.to_string(),
            json!(["body", "user_id"]),
        ),
    ];
    for (body, loc) in cases {
        let r = track_with(a, &body, &[]).await.expect("response");
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR".into()),
            "{body}"
        );
        assert_eq!(r.loc(), loc, "{body}");
    }
    let ok = format!(
        r#"{{"event_name":"{}","properties":{{}}}}"#,
        "n".repeat(128)
    );
    assert_eq!(track_with(a, &ok, &[]).await.expect("response").status, 200);

    let key_too_long = "k".repeat(257);
    for key in ["", key_too_long.as_str()] {
        let r = track_with(a, BODY, &[("idempotency-key", key)])
            .await
            .expect("response");
        assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".into()));
        assert_eq!(r.loc(), json!(["header", "idempotency-key"]));
    }
    assert_eq!(events(&s).await["events"].as_array().map(Vec::len), Some(2));
    s.shutdown().await;
}

/// The SDK's name rule: snake_case, 1–128 chars, lowercase letter first; or `$` + such a name.
#[tokio::test]
async fn event_names_follow_the_sdk_rule() {
    let s = default_server().await;
    let a = s.api_addr();
    let longest = "a".repeat(128);
    let reserved_longest = format!("${longest}");
    let valid = [
        "button_click",
        "a",
        "e2e_rate_2",
        "x_",
        "$identify",
        "$pageview",
        "$extension_installed",
        "$exception",
        longest.as_str(),
    ];
    for name in valid {
        let r = track(a, name).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert_eq!(r.json()["item"]["event_name"], name);
    }
    let too_long = "a".repeat(129);
    let reserved_too_long = format!("${too_long}");
    let invalid = [
        ("Hello World!", "lowercase ASCII letter"),
        ("1st_event", "lowercase ASCII letter"),
        ("Button", "lowercase"),
        ("buttonClick", "position 6"),
        ("page-view", "snake_case"),
        ("has space", "snake_case"),
        ("_leading", "lowercase ASCII letter"),
        ("café", "snake_case"),
        ("$", "reserved '$' prefix"),
        ("$$x", "reserved '$' prefix"),
        ("$Pageview", "reserved '$' prefix"),
        ("$page-view", "snake_case"),
        ("mid$dle", "position 3"),
        ("$custom_event", "reserved for the SDK's own events"),
        (
            reserved_longest.as_str(),
            "reserved for the SDK's own events",
        ),
        (too_long.as_str(), "at most 128"),
        (reserved_too_long.as_str(), "at most 128"),
    ];
    for (name, says) in invalid {
        let body = json!({"event_name": name, "properties": {}}).to_string();
        let r = track_with(a, &body, &[]).await.expect("response");
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR".into()),
            "{name:?}"
        );
        assert_eq!(r.loc(), json!(["body", "event_name"]), "{name:?}");
        let message = r.json()["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(says), "{name:?}: {message}");
    }
    let ev = events(&s).await;
    assert_eq!(ev["events"].as_array().map(Vec::len), Some(valid.len()));
    s.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_garbage() {
    let s = default_server().await;
    let a = s.api_addr();
    let r = send(
        a,
        "POST",
        "/v1/api/chrome/events/trak",
        &AUTH,
        BODY.as_bytes(),
    )
    .await
    .expect("response");
    assert_eq!((r.status, r.code()), (404, "RESOURCE_NOT_FOUND".into()));
    assert!(r.header("x-request-id").is_some());
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let r = send(a, method, TRACK, &AUTH, b"").await.expect("response");
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
        assert_eq!(r.header("allow"), Some("POST, OPTIONS"));
        assert!(r.header("x-request-id").is_some());
    }
    // Not HTTP at all: the connection is answered or closed, never hung, and the server lives on.
    let _ = raw(a, b"\x00\x01\x02 garbage\r\n\r\n", TIMEOUT).await;
    assert_eq!(track(a, "still_alive").await.status, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn request_id_echoed_or_generated() {
    let s = default_server().await;
    let a = s.api_addr();
    let r = track_with(a, BODY, &[("x-request-id", "client.req_id-0001")])
        .await
        .expect("response");
    assert_eq!(r.header("x-request-id"), Some("client.req_id-0001"));
    let generated = track_with(a, BODY, &[("x-request-id", "bad id!")])
        .await
        .expect("response");
    let id = generated.header("x-request-id").expect("generated id");
    assert_ne!(id, "bad id!");
    assert!((8..=128).contains(&id.len()));
    let other = track(a, "x").await;
    assert_ne!(other.header("x-request-id"), Some(id), "ids are unique");

    let r = send(
        a,
        "OPTIONS",
        TRACK,
        &[("x-request-id", "preflight-0001")],
        b"",
    )
    .await
    .expect("response");
    assert_eq!(r.header("x-request-id"), Some("preflight-0001"));
    let r = send(a, "GET", "/nope", &[("x-request-id", "notfound-0001")], b"")
        .await
        .expect("response");
    assert_eq!(r.header("x-request-id"), Some("notfound-0001"));

    let ev = events(&s).await;
    assert_eq!(ev["events"][0]["request_id"], "client.req_id-0001");
    s.shutdown().await;
}

#[tokio::test]
async fn idempotency_replay_and_conflict() {
    let s = server(Config {
        tokens: vec![
            Token::new(TOKEN_ID, SECRET, APP),
            Token::new("tok_other", "sec_other", APP),
        ],
        ..Config::default()
    })
    .await;
    let a = s.api_addr();
    let key = ("idempotency-key", "key-123");
    let first = track_with(a, BODY, &[key]).await.expect("response");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("idempotent-replayed"), None);

    // Same body modulo key order and whitespace: replayed byte for byte.
    let reordered = r#"{ "properties": {"screen": "home"}, "event_name": "button_click" }"#;
    let again = track_with(a, reordered, &[key]).await.expect("response");
    assert_eq!(again.status, 200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);

    let conflict = track_with(a, r#"{"event_name":"other","properties":{}}"#, &[key])
        .await
        .expect("response");
    assert_eq!(
        (conflict.status, conflict.code()),
        (409, "RESOURCE_ALREADY_EXISTS".into())
    );
    assert_eq!(
        conflict.json()["errors"][0]["ctx"]["reason"],
        "idempotency_conflict"
    );

    // Keys are scoped per token.
    let other = [
        ("x-inhouse-token-id", "tok_other"),
        ("x-inhouse-token-secret", "sec_other"),
        ("x-inhouse-app", APP),
        ("content-type", "application/json"),
        key,
    ];
    let r = send(a, "POST", TRACK, &other, BODY.as_bytes())
        .await
        .expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("idempotent-replayed"), None);

    let ev = events(&s).await;
    assert_eq!(ev["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(ev["events"][0]["idempotency_key"], "key-123");
    assert_eq!(ev["duplicates"].as_array().map(Vec::len), Some(1));
    assert_eq!(ev["duplicates"][0]["idempotency_key"], "key-123");
    assert_eq!(ev["duplicates"][0]["event_id"], "evt_1");
    s.shutdown().await;
}

#[tokio::test]
async fn cors_preflight_and_exposed_headers() {
    let s = default_server().await;
    let a = s.api_addr();
    let origin = "chrome-extension://abcdefghijklmnopabcdefghijklmnop";
    let r = send(
        a,
        "OPTIONS",
        TRACK,
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type,x-inhouse-token-id,x-inhouse-token-secret,x-inhouse-app,idempotency-key"),
            ("access-control-request-private-network", "true"),
        ],
        b"",
    )
    .await
    .expect("response");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("POST, OPTIONS")
    );
    assert_eq!(
        r.header("access-control-allow-private-network"),
        Some("true")
    );
    assert!(r.header("access-control-max-age").is_some());
    let allowed = r
        .header("access-control-allow-headers")
        .expect("allow-headers")
        .to_ascii_lowercase();
    for h in [
        "content-type",
        "x-inhouse-token-id",
        "x-inhouse-token-secret",
        "x-inhouse-app",
        "idempotency-key",
        "x-request-id",
    ] {
        assert!(allowed.contains(h), "{h} not allowed");
    }
    // Preflights are never faulted.
    faults(&s, json!({"fail_next": {"count": 1, "status": 500}})).await;
    assert_eq!(
        send(a, "OPTIONS", TRACK, &[("origin", origin)], b"")
            .await
            .expect("response")
            .status,
        204
    );
    faults(&s, json!({"clear": true})).await;

    let r = track_with(a, BODY, &[("origin", origin)])
        .await
        .expect("response");
    assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    let exposed = r
        .header("access-control-expose-headers")
        .expect("expose")
        .to_ascii_lowercase();
    for h in [
        "x-request-id",
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "idempotent-replayed",
    ] {
        assert!(exposed.contains(h), "{h} not exposed");
    }
    let r = send(a, "POST", TRACK, &[], BODY.as_bytes())
        .await
        .expect("response");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("*"),
        "errors carry CORS too"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn rate_limit_per_token() {
    let s = server(Config {
        tokens: vec![Token::new(TOKEN_ID, SECRET, APP)],
        rate_limit: Some(RateLimit {
            limit: 2,
            window_secs: 30,
        }),
        ..Config::default()
    })
    .await;
    let a = s.api_addr();
    let r1 = track(a, "a").await;
    assert_eq!(
        (
            r1.status,
            r1.header("x-ratelimit-limit"),
            r1.header("x-ratelimit-remaining")
        ),
        (200, Some("2"), Some("1"))
    );
    let r2 = track(a, "b").await;
    assert_eq!(r2.header("x-ratelimit-remaining"), Some("0"));
    let r3 = track(a, "c").await;
    assert_eq!((r3.status, r3.code()), (429, "RATE_LIMIT_EXCEEDED".into()));
    let retry: u64 = r3
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=30).contains(&retry));
    let reset: u64 = r3
        .header("x-ratelimit-reset")
        .and_then(|v| v.parse().ok())
        .expect("reset");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(reset >= now && reset <= now + 31, "reset {reset} now {now}");
    // Refused-before-counting responses still report the window.
    let r = send(
        a,
        "POST",
        TRACK,
        &[("content-type", "application/json")],
        BODY.as_bytes(),
    )
    .await
    .expect("response");
    assert_eq!((r.status, r.header("x-ratelimit-limit")), (401, Some("2")));
    assert_eq!(events(&s).await["events"].as_array().map(Vec::len), Some(2));

    // Reconfigured at runtime; null removes it.
    faults(&s, json!({"rate_limit": {"limit": 1, "window_secs": 60}})).await;
    assert_eq!(track(a, "d").await.status, 200);
    assert_eq!(track(a, "e").await.status, 429);
    faults(&s, json!({"rate_limit": null})).await;
    let r = track(a, "f").await;
    assert_eq!((r.status, r.header("x-ratelimit-limit")), (200, None));
    s.shutdown().await;
}

/// `--no-idempotency` (`Config::idempotency = false`): repeated keys are stored again, never
/// replayed or refused; `GET /events` counts the copies by `properties.$event_id`.
#[tokio::test]
async fn without_idempotency_every_repeat_is_stored_and_counted() {
    let s = server(Config {
        tokens: vec![Token::new(TOKEN_ID, SECRET, APP)],
        idempotency: false,
        ..Config::default()
    })
    .await;
    let a = s.api_addr();
    assert_eq!(
        control_get(&s, "/settings").await.json(),
        json!({"idempotency": false})
    );
    let with_id =
        |id: &str| json!({"event_name": "click", "properties": {"$event_id": id}}).to_string();
    let key = |id: &'static str| [("idempotency-key", id)];
    for _ in 0..3 {
        let r = track_with(a, &with_id("ev-a"), &key("ev-a"))
            .await
            .expect("response");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("idempotent-replayed"), None);
    }
    // Same key, different body: stored too, no 409.
    let r = track_with(a, &with_id("ev-b"), &key("ev-a"))
        .await
        .expect("response");
    assert_eq!(r.status, 200, "{}", r.text());
    track_with(a, &with_id("ev-b"), &[])
        .await
        .expect("response");
    track_with(a, &with_id("ev-c"), &[])
        .await
        .expect("response");
    track(a, "no_event_id").await;
    track(a, "no_event_id").await;

    let ev = events(&s).await;
    let stored = ev["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(stored.len(), 8);
    let ids: Vec<&str> = stored.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(
        ids,
        ["evt_1", "evt_2", "evt_3", "evt_4", "evt_5", "evt_6", "evt_7", "evt_8"]
    );
    assert_eq!(
        stored[1]["idempotency_key"], "ev-a",
        "the key is still recorded"
    );
    assert_eq!(ev["duplicates"], json!([]), "nothing replayed");
    assert_eq!(ev["event_id_duplicates"], 3, "ev-a twice extra, ev-b once");
    assert_eq!(
        ev["duplicate_event_ids"],
        json!([{"event_id": "ev-a", "copies": 3}, {"event_id": "ev-b", "copies": 2}])
    );
    assert_eq!(ev["counts"], json!({"200": 8}));
    assert_eq!(ev["requests_total"], 8);

    let text = control_get(&s, "/events?format=text").await.text();
    assert!(text.contains("event_id_duplicates 3"), "{text}");
    assert!(
        text.contains("# duplicate $event_id ev-a: 3 copies"),
        "{text}"
    );
    assert!(
        text.contains("# duplicate $event_id ev-b: 2 copies"),
        "{text}"
    );

    // Switched on at run time, `POST /reset` puts back the command line's value.
    control_post(&s, "/settings", &json!({"idempotency": true})).await;
    control_post(&s, "/reset", &json!({})).await;
    assert_eq!(
        control_get(&s, "/settings").await.json(),
        json!({"idempotency": false})
    );
    s.shutdown().await;
}

/// In the default (idempotent) mode the same counters report copies that arrived under
/// different keys or none: exactly what a client bug looks like.
#[tokio::test]
async fn event_id_duplicates_are_counted_with_idempotency_on_too() {
    let s = default_server().await;
    let a = s.api_addr();
    let body = json!({"event_name": "click", "properties": {"$event_id": "ev-1"}}).to_string();
    track_with(a, &body, &[("idempotency-key", "k1")])
        .await
        .expect("response");
    let replay = track_with(a, &body, &[("idempotency-key", "k1")])
        .await
        .expect("response");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let ev = events(&s).await;
    assert_eq!(
        (
            ev["event_id_duplicates"].clone(),
            ev["duplicate_event_ids"].clone()
        ),
        (json!(0), json!([]))
    );
    assert_eq!(ev["duplicates"].as_array().map(Vec::len), Some(1));

    track_with(a, &body, &[("idempotency-key", "k2")])
        .await
        .expect("response");
    track_with(a, &body, &[]).await.expect("response");
    let ev = events(&s).await;
    assert_eq!(ev["events"].as_array().map(Vec::len), Some(3));
    assert_eq!(ev["event_id_duplicates"], 2);
    assert_eq!(
        ev["duplicate_event_ids"],
        json!([{"event_id": "ev-1", "copies": 3}])
    );
    s.shutdown().await;
}
