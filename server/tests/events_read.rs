//! Reading what arrived: `GET /events` never stalls the API however many events there are, and
//! pages with `since` / `limit` / `next`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tokio::net::TcpStream;

#[tokio::test]
async fn events_page_with_since_limit_and_next() {
    let s = default_server().await;
    let bodies = (1..=25)
        .map(|i| format!(r#"{{"event_name":"e{i}","properties":{{"i":{i}}}}}"#))
        .collect();
    assert!(pipeline_track(s.api_addr(), bodies)
        .await
        .iter()
        .all(|s| *s == 200));

    let all = events(&s).await;
    assert_eq!(seqs(&all), (1..=25).collect::<Vec<_>>());
    assert_eq!(
        (all["next"].clone(), all["dropped_oldest"].clone()),
        (json!(25), json!(0))
    );

    // Page through: `since` is a `seq` (exclusive), `next` is where the next page starts.
    let mut since = 0;
    let mut pages = Vec::new();
    loop {
        let page = control_get(&s, &format!("/events?since={since}&limit=10"))
            .await
            .json();
        let got = seqs(&page);
        let next = page["next"].as_u64().expect("next");
        if got.is_empty() {
            assert_eq!(next, since, "an empty page stays where it is");
            break;
        }
        assert_eq!(next, *got.last().expect("last"));
        assert_eq!(page["events"][0]["event_name"], format!("e{}", got[0]));
        // The totals are the whole store's, not the page's.
        assert_eq!(page["requests_total"], 25);
        pages.push(got);
        assert!(pages.len() <= 3, "paging does not end: {pages:?}");
        since = next;
    }
    assert_eq!(
        pages,
        [
            (1..=10).collect::<Vec<_>>(),
            (11..=20).collect(),
            (21..=25).collect()
        ]
    );
    // Without a limit: everything after `since`; a `since` past the end: nothing.
    assert_eq!(
        seqs(&control_get(&s, "/events?since=22").await.json()),
        [23, 24, 25]
    );
    let past = control_get(&s, "/events?since=99").await.json();
    assert_eq!((seqs(&past).len(), past["next"].clone()), (0, json!(99)));
    assert_eq!(
        seqs(&control_get(&s, "/events?limit=0").await.json()).len(),
        0
    );

    // The other formats page the same way.
    let nd = control_get(&s, "/events?format=ndjson&since=20&limit=2")
        .await
        .text();
    let nd: Vec<Value> = nd
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        nd.iter().map(|e| e["seq"].clone()).collect::<Vec<_>>(),
        [json!(21), json!(22)]
    );
    let text = control_get(&s, "/events?format=text&since=3&limit=2")
        .await
        .text();
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), 3, "header and two rows: {text}");
    assert!(
        rows[1].starts_with("4 ") && rows[2].starts_with("5 "),
        "{text}"
    );
    assert!(text.contains("# 25 stored,"), "{text}");
    assert!(text.contains("# 2 shown; next page: since=5"), "{text}");

    for bad in ["since=-1", "since=x", "limit=1.5", "limit="] {
        let r = control_get(&s, &format!("/events?{bad}")).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "VALIDATION_ERROR".into()),
            "{bad}"
        );
    }
    s.shutdown().await;
}

/// One keep-alive track request on an open connection; its latency.
async fn timed_track(stream: &mut TcpStream, n: usize) -> Duration {
    let body = format!(r#"{{"event_name":"probe","properties":{{"n":{n}}}}}"#);
    let t = Instant::now();
    let r = keep_alive_track(stream, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    t.elapsed()
}

/// With 20,000 stored events, track requests sent while a `GET /events` is being served are
/// answered at once: the dump is serialized from a snapshot, outside the state lock. (Serialized
/// under the lock, as it used to be, one of them waits for the whole dump, hundreds of ms.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reading_20000_events_does_not_stall_track_requests() {
    const EVENTS: usize = 20_000;
    /// Generous for two loaded cores; the dump under the lock takes several times this.
    const BOUND: Duration = Duration::from_millis(100);

    let s = default_server().await;
    let padding = "p".repeat(200);
    let bodies = (0..EVENTS)
        .map(|i| {
            format!(
                r#"{{"event_name":"bulk","properties":{{"$event_id":"e{i}","i":{i},"pad":"{padding}"}}}}"#
            )
        })
        .collect();
    let statuses = pipeline_track(s.api_addr(), bodies).await;
    assert!(statuses.iter().all(|s| *s == 200));

    let mut probe = TcpStream::connect(s.api_addr()).await.expect("connect");
    let _ = probe.set_nodelay(true);
    timed_track(&mut probe, 0).await; // warm: connection and first-request costs out of the way

    let control = s.control_addr();
    let dump = tokio::spawn(async move {
        let t = Instant::now();
        let r = raw(
            control,
            &build("GET", "/events", &[], b""),
            Duration::from_secs(120),
        )
        .await
        .expect("dump");
        (r, t.elapsed())
    });
    let mut during = Vec::new();
    while !dump.is_finished() {
        during.push(timed_track(&mut probe, during.len() + 1).await);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (r, dump_took) = dump.await.expect("dump task");
    let dumped = r.json();
    let dumped = dumped["events"].as_array().map(Vec::len).unwrap_or(0);
    assert!(
        dumped > EVENTS,
        "every event and the warm-up probe (and any probe before the snapshot): {dumped}"
    );
    let worst = during.iter().max().copied().unwrap_or_default();
    eprintln!(
        "GET /events of {EVENTS} events took {dump_took:?}; {} track requests meanwhile, slowest {worst:?}",
        during.len()
    );
    assert!(
        during.len() >= 3,
        "the dump ({dump_took:?}) was too quick to overlap track requests"
    );
    assert!(
        worst < BOUND,
        "a track request took {worst:?} while GET /events was served ({dump_took:?})"
    );
    s.shutdown().await;
}
