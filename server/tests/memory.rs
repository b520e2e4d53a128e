//! Memory bounded by bytes (`--max-memory`), not only by entry count: the oldest events and
//! request-log entries are dropped, visibly, and idempotency records hold a hash of the body.

mod common;

use common::*;
use inhouse_server::{Config, Token};

fn config(max_memory: usize) -> Config {
    Config {
        tokens: vec![Token::new(TOKEN_ID, SECRET, APP)],
        max_memory,
        ..Config::default()
    }
}

/// `--max-memory 400000`: events get 200 KB, the request log 100 KB. Forty 10 KB events do not
/// fit: the oldest go, `dropped_oldest` says how many, the newest stay.
#[tokio::test]
async fn events_and_request_log_are_capped_by_bytes() {
    let s = server(config(400_000)).await;
    assert!(pipeline_track(s.api_addr(), padded_bodies(40))
        .await
        .iter()
        .all(|s| *s == 200));
    let ev = events(&s).await;
    let kept = seqs(&ev);
    let dropped = ev["dropped_oldest"].as_u64().expect("dropped_oldest");
    assert!(dropped > 0, "nothing dropped");
    assert_eq!(
        kept,
        ((dropped + 1)..=40).collect::<Vec<_>>(),
        "the newest kept, in order"
    );
    assert!(
        kept.len() * 10_000 <= 200_000,
        "{} events of 10 KB kept under a 200 KB share",
        kept.len()
    );
    assert!(
        kept.len() >= 15,
        "only {} kept: the estimate is far off",
        kept.len()
    );
    assert_eq!(ev["next"], 40);
    let text = control_get(&s, "/events?format=text").await.text();
    assert!(
        text.contains(&format!("# dropped_oldest {dropped}:")),
        "{text}"
    );
    // Paging from the start begins at the oldest event kept.
    let first = control_get(&s, "/events?since=0&limit=1").await.json();
    assert_eq!(seqs(&first), [dropped + 1]);

    // The request log: small entries, 100 KB. 1000 more requests do not fit.
    let r = control_get(&s, "/requests").await.json();
    assert_eq!(
        (r["dropped_oldest"].clone(), r["requests_total"].clone()),
        (0.into(), 40.into())
    );
    let bad = (0..1000)
        .map(|_| r#"{"event_name":"Not Valid","properties":{}}"#.to_string())
        .collect();
    assert!(pipeline_track(s.api_addr(), bad)
        .await
        .iter()
        .all(|s| *s == 422));
    let r = control_get(&s, "/requests").await.json();
    let log = r["requests"].as_array().expect("requests");
    let dropped = r["dropped_oldest"].as_u64().expect("dropped_oldest");
    assert_eq!(r["requests_total"], 1040);
    assert!(
        dropped > 0 && dropped as usize + log.len() == 1040,
        "{dropped} + {}",
        log.len()
    );
    assert!(log.len() * 200 <= 100_000, "{} entries kept", log.len());
    assert_eq!(log.last().expect("newest")["status"], 422);

    // One event larger than the whole share is still kept: the newest always is.
    let huge = "y".repeat(60_000);
    let s2 = server(config(100_000)).await;
    for _ in 0..2 {
        let body = format!(r#"{{"event_name":"huge","properties":{{"pad":"{huge}"}}}}"#);
        assert_eq!(
            track_with(s2.api_addr(), &body, &[])
                .await
                .expect("response")
                .status,
            200
        );
    }
    let ev = events(&s2).await;
    assert_eq!(
        (seqs(&ev), ev["dropped_oldest"].clone()),
        (vec![2], 1.into())
    );
    s2.shutdown().await;
    s.shutdown().await;
}

/// Idempotency records keep a hash of the canonical body, not the body: thirty 30 KB bodies
/// (900 KB) under a 100 KB share for records are all still remembered, so the first key still
/// replays and still conflicts. Many more records than fit are forgotten oldest first.
#[tokio::test]
async fn idempotency_records_hold_a_hash_not_the_body() {
    let s = server(config(800_000)).await;
    let a = s.api_addr();
    let pad = "z".repeat(30_000);
    let body =
        |i: usize| format!(r#"{{"event_name":"keyed","properties":{{"i":{i},"pad":"{pad}"}}}}"#);
    let mut first = None;
    for i in 0..30 {
        let key = format!("key-{i:04}");
        let r = track_with(a, &body(i), &[("idempotency-key", &key)])
            .await
            .expect("response");
        assert_eq!(r.status, 200);
        first.get_or_insert(r.body);
    }
    // Same key, same body written differently (key order, spacing): the original answer.
    let reordered =
        format!(r#"{{ "properties": {{"pad":"{pad}", "i":0}}, "event_name": "keyed" }}"#);
    let r = track_with(a, &reordered, &[("idempotency-key", "key-0000")])
        .await
        .expect("response");
    assert_eq!(
        r.header("idempotent-replayed"),
        Some("true"),
        "key-0000 was forgotten"
    );
    assert_eq!(Some(r.body), first);
    let r = track_with(a, &body(1), &[("idempotency-key", "key-0000")])
        .await
        .expect("response");
    assert_eq!(
        (r.status, r.code()),
        (409, "RESOURCE_ALREADY_EXISTS".into())
    );
    s.shutdown().await;

    // 10 KB for records (`--max-memory 80000`): a few dozen; 300 keys do not fit.
    let s = server(config(80_000)).await;
    let a = s.api_addr();
    let small = r#"{"event_name":"k","properties":{}}"#;
    for i in 0..300 {
        let key = format!("key-{i:04}");
        let r = track_with(a, small, &[("idempotency-key", &key)])
            .await
            .expect("response");
        assert_eq!(r.status, 200);
    }
    let newest = track_with(a, small, &[("idempotency-key", "key-0299")])
        .await
        .expect("response");
    assert_eq!(newest.header("idempotent-replayed"), Some("true"));
    let oldest = track_with(a, small, &[("idempotency-key", "key-0000")])
        .await
        .expect("response");
    assert_eq!(
        (oldest.status, oldest.header("idempotent-replayed")),
        (200, None),
        "the oldest record was forgotten, so the resend is stored again"
    );
    s.shutdown().await;
}
