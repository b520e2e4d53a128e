#![cfg(not(target_arch = "wasm32"))]
//! Host tests of `core::engine`: the durable queue, driven with a manual clock, a fixed seed and
//! a fake `chrome.storage.local` (a map applying each `Write`).

mod engine_harness;
mod stored;

use engine_harness::*;
use inhouse_tracker::core::config::Credentials;
use inhouse_tracker::core::engine::{
    segment_key, Admission, BlockReason, DropReason, Engine, TicketResult, Write, ACK_BATCH, ACK_DELAY_MS, INDEX_KEY, NETWORK_BACKOFF_CAP_MS,
    OFFLINE_RECHECK_MS, PAUSE_PROBE_MS, SEGMENT_EVENTS,
};
use inhouse_tracker::core::error::{Error, ErrorCode};
use inhouse_tracker::core::event::{build_event, request_body, EventContext, Props};
use inhouse_tracker::core::json::Json;
use inhouse_tracker::core::origin::Origin;
use inhouse_tracker::core::policy::Verdict;
use serde_json::json;
use std::collections::HashMap;

#[test]
fn track_write_then_send() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(3);
    assert!(h.poll().is_none(), "nothing is sendable before its write commits");
    assert_eq!(h.e.stats(h.now).pending_write, 3);
    let w = h.e.take_write(h.now, false).expect("write due");
    assert_eq!(w.set.len(), 2);
    assert_eq!(w.set[0].0, segment_key(1));
    assert_eq!(w.set[0].0, "inhouse:v1:seg:1");
    assert_eq!(w.set[1].0, INDEX_KEY);
    assert!(w.remove.is_empty());
    let seg = stored::segment(&w.set[0].1);
    assert_eq!(seg.len(), 3);
    assert!(h.poll().is_none(), "nothing is sendable while its write is out");
    assert!(tickets(&h.drain()).is_empty(), "no ticket settles before the write does");
    assert!(h.e.take_write(h.now, false).is_none(), "at most one write outstanding");

    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    assert_eq!(tickets(&h.drain()), vec![(1, TicketResult::Queued), (2, TicketResult::Queued), (3, TicketResult::Queued)]);
    let st = h.e.stats(h.now);
    assert_eq!((st.queued, st.pending_write, st.storage_writes, st.state), (3, 0, 1, "ready"));
    assert_eq!(st.bytes_stored, evs.iter().map(|e| e.stored_bytes()).sum::<usize>());

    let sends = h.poll_all();
    assert_eq!(sends.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), H::ids(&evs));
    for (s, ev) in sends.iter().zip(&evs) {
        assert_eq!(s.name, "test_event");
        assert_eq!(s.body, request_body(ev.name(), ev.props_json()));
    }
    assert_eq!(h.e.stats(h.now).in_flight, 3);
    assert_eq!(h.e.stats(h.now).state, "sending");
    assert_eq!(h.e.stats(h.now).requests, 3);
    assert!(h.e.take_write(h.now, false).is_none(), "nothing to write");
}

#[test]
fn a_burst_of_10000_tracks_is_one_write() {
    let mut h = H::with(|_| {});
    h.track_n(10_000);
    let w = h.e.take_write(h.now, false).unwrap();
    let segs = 10_000usize.div_ceil(SEGMENT_EVENTS);
    assert_eq!(segs, 20);
    assert_eq!(w.set.len(), segs + 1, "every segment plus the index, in one set");
    for (i, (key, json)) in w.set[..segs].iter().enumerate() {
        assert_eq!(*key, segment_key(i as u64 + 1));
        let events = stored::segment(json);
        assert_eq!(events.len(), SEGMENT_EVENTS);
    }
    assert_eq!(w.set[segs].0, INDEX_KEY);
    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    assert!(h.e.take_write(h.now, false).is_none());
    assert_eq!(h.e.stats(h.now).storage_writes, 1);
    assert_eq!(h.e.stats(h.now).queued, 10_000);
    assert_eq!(h.store.index_segs(), (1..=20).collect::<Vec<u64>>());
    assert_eq!(tickets(&h.drain()).len(), 10_000);
}

#[test]
fn segments_never_exceed_segment_events() {
    let mut h = H::with(|_| {});
    h.track_n(1234);
    let w = h.commit();
    let sizes: Vec<usize> = w.set.iter().filter(|(k, _)| k != INDEX_KEY).map(|(_, v)| stored::segment(v).len()).collect();
    assert_eq!(sizes, vec![500, 500, 234]);
    h.track_n(1);
    let w = h.commit();
    assert_eq!(w.set[0].0, segment_key(4), "a new write gets a new segment; old ones are never rewritten");
    assert_eq!(w.set.len(), 2);
    assert_eq!(h.store.index_segs(), vec![1, 2, 3, 4]);
}

#[test]
fn write_failure_refuses_new_events_and_keeps_old_ones() {
    let mut h = H::with(|_| {});
    let old = h.track_n(2);
    h.commit();
    h.drain();
    let before = h.store.clone();
    h.track_n(3);
    let _w = h.e.take_write(h.now, false).unwrap();
    h.e.write_done(Err("QUOTA_BYTES quota exceeded".into()), h.now);
    let notes = h.drain();
    let t = tickets(&notes);
    assert_eq!(t.iter().map(|x| x.0).collect::<Vec<_>>(), vec![3, 4, 5]);
    for (_, r) in &t {
        match r {
            TicketResult::Failed(e) => {
                assert_eq!(e.code, ErrorCode::StorageError);
                assert!(e.message.contains("QUOTA_BYTES quota exceeded"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(errors(&notes).iter().map(|e| e.code).collect::<Vec<_>>(), vec![ErrorCode::StorageError]);
    assert!(drops(&notes).is_empty());
    let st = h.e.stats(h.now);
    assert_eq!(st.queued, 2);
    assert_eq!(st.last_error.unwrap().code, "STORAGE_ERROR");
    assert_eq!(h.poll_all().iter().map(|s| s.id.clone()).collect::<Vec<_>>(), H::ids(&old));
    // The store was not touched, and the next write still works.
    assert_eq!(before.0, h.store.0);
    let fresh = h.track_n(1);
    let w = h.commit();
    assert_eq!(w.set[0].0, segment_key(3), "the failed write's segment number is not reused");
    assert_eq!(h.store.index_segs(), vec![1, 3]);
    let restored = h.store.restore(h.config.clone(), 9, h.now);
    assert_eq!(restored.stats(h.now).queued, 3);
    assert_eq!(tickets(&h.drain()), vec![(6, TicketResult::Queued)]);
    let _ = fresh;
}

#[test]
fn at_most_one_write_outstanding() {
    let mut h = H::with(|_| {});
    h.track_n(2);
    let w1 = h.e.take_write(h.now, false).unwrap();
    h.track_n(3);
    assert!(h.e.take_write(h.now, false).is_none());
    assert!(h.e.take_write(h.now + 10 * ACK_DELAY_MS, true).is_none());
    assert_eq!(h.e.next_wakeup(h.now), None, "the write's completion is what comes next");
    h.store.apply(&w1);
    h.e.write_done(Ok(()), h.now);
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now));
    let w2 = h.e.take_write(h.now, false).unwrap();
    assert_eq!(stored::segment(&w2.set[0].1).len(), 3);
    // A stray completion without a write outstanding is ignored.
    h.store.apply(&w2);
    h.e.write_done(Ok(()), h.now);
    h.e.write_done(Err("late".into()), h.now);
    assert_eq!(h.e.stats(h.now).queued, 5);
    assert_eq!(tickets(&h.drain()).len(), 5);
}

#[test]
fn concurrency_cap() {
    let mut h = H::with(|c| c.concurrency = 3);
    h.track_n(10);
    h.commit();
    let first = h.poll_all();
    assert_eq!(first.len(), 3);
    assert!(h.poll().is_none());
    h.answer(&first[0], delivered());
    let more = h.poll_all();
    assert_eq!(more.len(), 1);
    assert_eq!(h.e.stats(h.now).in_flight, 3);
    // An answer for an unknown or already-answered slot changes nothing.
    h.answer(&first[0], delivered());
    assert_eq!(h.e.stats(h.now).in_flight, 3);
    assert_eq!(h.e.stats(h.now).delivered, 1);
}

#[test]
fn done_marks_are_written_in_batches() {
    let mut h = H::with(|_| {});
    h.track_n(1000);
    h.commit();
    let writes_before = h.writes;
    let mut sent = 0;
    while h.e.stats(h.now).queued > 0 {
        let batch = h.poll_all();
        assert!(!batch.is_empty());
        for s in batch {
            h.now += 1;
            h.answer(&s, delivered());
            sent += 1;
            h.settle_writes();
        }
    }
    assert_eq!(sent, 1000);
    let drain_writes = h.writes - writes_before;
    assert!(drain_writes <= 1000 / 5, "{drain_writes} writes to drain 1000 events");
    assert!(drain_writes >= 1000 / ACK_BATCH - 1, "{drain_writes}");
    // flush: the last marks are forced out, and then the queue is empty and durable.
    if h.e.flush_status(h.now).is_none() {
        h.settle_writes();
    }
    let st = h.e.flush_status(h.now).expect("answer");
    assert_eq!((st.status, st.queued, st.reason), ("empty", 0, None));
    assert_eq!(h.e.stats(h.now).delivered, 1000);
    // Every segment is gone; only the index remains, naming none.
    assert!(h.store.segment_keys().is_empty(), "{:?}", h.store.segment_keys());
    assert!(h.store.index_segs().is_empty());
    assert_eq!(h.store.index_json()["totals"]["delivered"], 1000);
}

#[test]
fn fully_done_segments_are_removed_in_the_write() {
    let mut h = H::with(|c| c.concurrency = 16);
    let evs = h.track_n(SEGMENT_EVENTS + 3);
    h.commit();
    assert_eq!(h.store.index_segs(), vec![1, 2]);
    let mut delivered_ids = vec![];
    while delivered_ids.len() < SEGMENT_EVENTS + 1 {
        let s = h.send_next().unwrap();
        delivered_ids.push(s.id.clone());
        h.answer(&s, delivered());
    }
    assert_eq!(delivered_ids, H::ids(&evs[..SEGMENT_EVENTS + 1]));
    let w = h.commit_with(true);
    assert_eq!(w.remove, vec![segment_key(1)]);
    assert!(w.set.iter().all(|(k, _)| k != &segment_key(1)), "a removed segment is not also set");
    assert_eq!(h.store.index_segs(), vec![2]);
    assert!(!h.store.0.contains_key(&segment_key(1)));
    // The partly done segment records which of its events are done.
    assert_eq!(h.store.index_json()["segs"][0]["d"], json!([0]));
    let restored = h.store.restore(h.config.clone(), 2, h.now);
    assert_eq!(restored.stats(h.now).queued, 2);
    // A segment whose last event is still in flight is not removed yet.
    let a = h.poll().unwrap();
    let b = h.poll().unwrap();
    h.answer(&a, delivered());
    h.e.set_enabled(false, true, h.now); // purges b while it is in flight
    let w = h.commit_with(true);
    assert!(w.remove.is_empty(), "{:?}", w.remove);
    assert_eq!(h.store.index_segs(), vec![2]);
    h.answer(&b, delivered());
    h.e.set_enabled(true, false, h.now); // any later write
    let w = h.commit();
    assert_eq!(w.remove, vec![segment_key(2)]);
    assert!(h.store.index_segs().is_empty());
    assert_eq!(h.e.stats(h.now).delivered as usize, SEGMENT_EVENTS + 2, "b's late success is not counted");
}

#[test]
fn retry_honours_retry_after() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(2);
    h.commit();
    let s = h.poll().unwrap();
    let t = h.now;
    h.e.on_result(s.slot, Verdict::Retry { after_ms: Some(30_000), error: Error::new(ErrorCode::RateLimited, "rate limited (HTTP 429)") }, t);
    let notes = h.drain();
    assert_eq!(errors(&notes)[0].code, ErrorCode::RateLimited);
    // The wait is stored at once (a restarted worker honours it), then nothing is due before it.
    assert_eq!(h.e.next_wakeup(t), Some(t));
    assert_eq!(h.settle_writes(), 1);
    assert_eq!(h.store.index_json()["waitUntil"], t + 30_000);
    assert_eq!(h.e.next_wakeup(t), Some(t + 30_000));
    let fs = h.e.flush_status(t).unwrap();
    assert_eq!((fs.status, fs.reason, fs.retry_at, fs.queued), ("blocked", Some(BlockReason::Backoff), Some(t + 30_000), 2));
    assert_eq!(h.e.stats(t).state, "backoff");
    assert_eq!(h.e.stats(t).next_attempt_at, Some(t + 30_000));
    assert!(h.e.poll_send(t + 1, true).is_none());
    assert!(h.e.poll_send(t + 29_999, true).is_none(), "not before Retry-After");
    let again = h.e.poll_send(t + 30_000, true).expect("at the deadline");
    assert_eq!(again.id, evs[0].id(), "the oldest first, same id");
    assert_eq!(again.body, s.body, "byte-identical retry");
    assert!(h.e.poll_send(t + 30_000, true).is_none(), "after a failure, one probe at a time");
    assert_eq!(h.e.stats(t).retried, 1);
    // Success reopens the gate fully.
    h.e.on_result(again.slot, delivered(), t + 30_000);
    assert_eq!(h.e.poll_send(t + 30_000, true).unwrap().id, evs[1].id());
}

#[test]
fn a_late_success_does_not_cancel_retry_after() {
    let mut h = H::with(|_| {});
    h.track_n(3);
    h.commit();
    let (a, b) = (h.poll().unwrap(), h.poll().unwrap());
    let t = h.now;
    h.answer(&a, Verdict::Retry { after_ms: Some(30_000), error: Error::new(ErrorCode::RateLimited, "429") });
    // `b` was sent before the 429 and succeeds afterwards: the server's wait still holds.
    h.answer(&b, delivered());
    assert!(h.e.poll_send(t + 29_999, true).is_none(), "not before Retry-After");
    assert_eq!(h.e.flush_status(t + 29_999).unwrap().retry_at, Some(t + 30_000));
    // Nor may a later network error shorten it.
    let mut h2 = H::with(|_| {});
    h2.track_n(2);
    h2.commit();
    let (a2, b2) = (h2.poll().unwrap(), h2.poll().unwrap());
    h2.answer(&a2, Verdict::Retry { after_ms: Some(120_000), error: Error::new(ErrorCode::RateLimited, "429") });
    h2.answer(&b2, unreachable());
    assert!(h2.e.poll_send(t + 119_999, true).is_none());
    assert!(h2.e.poll_send(t + 120_000, true).is_some());
    assert!(h.e.poll_send(t + 30_000, true).is_some());
}

#[test]
fn retry_after_is_capped_by_max_retry_after() {
    let mut h = H::with(|c| c.retry.max_retry_after_ms = 3_600_000);
    h.track_n(1);
    h.commit();
    let s = h.poll().unwrap();
    h.answer(&s, retry(Some(30 * 86_400_000)));
    h.settle_writes();
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now + 3_600_000));
}

#[test]
fn per_event_backoff() {
    let mut h = H::with(|c| c.concurrency = 2);
    let evs = h.track_n(2);
    h.commit();
    let (a, b) = (h.poll().unwrap(), h.poll().unwrap());
    h.answer(&a, retry(None));
    h.answer(&b, delivered()); // reopens the gate...
    assert!(h.poll().is_none(), "...but `a` waits for its own backoff");
    h.force_writes(); // `b`'s done-mark, so the next wake-up is `a`'s alone
    let at = h.e.next_wakeup(h.now).unwrap();
    assert!(at >= h.now + 500 && at <= h.now + 1_000, "{}", at - h.now);
    let fs = h.e.flush_status(h.now).unwrap();
    assert_eq!((fs.reason, fs.retry_at), (Some(BlockReason::Backoff), Some(at)));
    assert!(h.e.poll_send(at - 1, true).is_none());
    let again = h.e.poll_send(at, true).unwrap();
    assert_eq!(again.id, evs[0].id());

    // Consecutive failures of one event: each wait within [full/2, full], full doubling with the
    // event's own attempts (k + 1 after this failure).
    let mut s = again;
    h.now = at;
    for k in 1..=10u32 {
        let t = h.now;
        h.answer(&s, retry(None));
        let full = (1_000u64 << k).min(300_000);
        let next = loop {
            h.advance_to_wakeup();
            if let Some(x) = h.poll() {
                break x;
            }
        };
        let waited = h.now - t;
        assert!(waited >= full / 2 && waited <= full, "failure {k}: waited {waited}, full {full}");
        assert_eq!(next.id, evs[0].id());
        s = next;
    }
    // 1 + 10 attempts under the default 25: still queued.
    assert_eq!(h.e.stats(h.now).queued, 1);
    assert_eq!(h.e.stats(h.now).retried, 11);
}

#[test]
fn max_attempts_exhaustion_drops() {
    let mut h = H::with(|c| c.retry.max_attempts = 3);
    let evs = h.track_n(1);
    h.commit();
    for attempt in 1..=3 {
        let s = loop {
            if let Some(s) = h.poll() {
                break s;
            }
            h.advance_to_wakeup();
        };
        assert_eq!(s.id, evs[0].id(), "attempt {attempt}");
        h.answer(&s, retry(None));
        let d = drops(&h.drain());
        if attempt < 3 {
            assert!(d.is_empty());
        } else {
            assert_eq!(d.len(), 1);
            assert_eq!(d[0].0, evs[0].id());
            assert_eq!(d[0].1, DropReason::RetriesExhausted);
            assert!(d[0].2.contains("3 attempts") && d[0].2.contains("HTTP 503"), "{}", d[0].2);
        }
    }
    let st = h.e.stats(h.now);
    assert_eq!(st.dropped.retries_exhausted, 1);
    assert_eq!(st.queued, 0);
    // It is never sent again; a newer event is.
    h.now += 10 * 60_000;
    let newer = h.track_n(1);
    h.commit();
    assert_eq!(h.deliver_all(), vec![newer[0].id().to_string()]);
    assert_eq!(h.e.stats(h.now).queued, 0);
}

#[test]
fn network_errors_spend_no_attempt_and_cap_at_60s() {
    let mut h = H::with(|c| {
        c.retry.max_attempts = 2;
        c.retry.base_delay_ms = 600_000; // even a huge base is capped for network errors
        c.retry.max_delay_ms = 600_000;
    });
    let evs = h.track_n(1);
    h.commit();
    let mut max_wait = 0;
    for _ in 0..300 {
        let s = loop {
            if let Some(s) = h.poll() {
                break s;
            }
            let t = h.now;
            h.advance_to_wakeup();
            let wait = h.now - t;
            assert!(wait > 0 && wait <= NETWORK_BACKOFF_CAP_MS, "{wait}");
            max_wait = max_wait.max(wait);
        };
        assert_eq!(s.id, evs[0].id());
        h.answer(&s, unreachable());
        assert!(h.e.next_wakeup(h.now).unwrap() - h.now <= NETWORK_BACKOFF_CAP_MS);
    }
    assert!(max_wait >= NETWORK_BACKOFF_CAP_MS / 2, "{max_wait}");
    let notes = h.drain();
    assert!(drops(&notes).is_empty());
    assert_eq!(errors(&notes).len(), 1, "a repeated error is reported once");
    let st = h.e.stats(h.now);
    assert_eq!((st.queued, st.retried, st.dropped.retries_exhausted), (1, 0, 0));
    assert_eq!(st.last_error.unwrap().code, "NETWORK_ERROR");
    // The network comes back: delivered on the next try. The last error stays on record (for
    // support), and the same failure after the recovery is reported afresh.
    h.now += NETWORK_BACKOFF_CAP_MS;
    assert_eq!(h.deliver_all(), vec![evs[0].id().to_string()]);
    assert_eq!(h.e.stats(h.now).last_error.unwrap().code, "NETWORK_ERROR");
    h.drain();
    let again = h.track_n(1);
    h.commit();
    let s = h.poll().expect("sendable");
    assert_eq!(s.id, again[0].id());
    h.answer(&s, unreachable());
    assert_eq!(errors(&h.drain()).len(), 1, "a new outage is reported again");
}

#[test]
fn offline_sends_nothing_and_spends_nothing() {
    let mut h = H::with(|c| c.retry.max_attempts = 1);
    let evs = h.track_n(3);
    h.commit();
    for _ in 0..100 {
        assert!(h.e.poll_send(h.now, false).is_none());
        assert_eq!(h.e.next_wakeup(h.now), Some(h.now + OFFLINE_RECHECK_MS));
        let fs = h.e.flush_status(h.now).unwrap();
        assert_eq!((fs.status, fs.reason, fs.retry_at), ("blocked", Some(BlockReason::Offline), Some(h.now + OFFLINE_RECHECK_MS)));
        assert_eq!(h.e.stats(h.now).state, "offline");
        h.now += OFFLINE_RECHECK_MS;
    }
    assert_eq!(h.e.stats(h.now).requests, 0);
    // Online again: full concurrency, and a single attempt (maxAttempts 1) was never spent.
    let sends = h.poll_all();
    assert_eq!(sends.len(), 3);
    for s in &sends {
        h.answer(s, delivered());
    }
    assert_eq!(h.e.stats(h.now).delivered, 3);
    assert!(drops(&h.drain()).is_empty());
    let _ = evs;
}

#[test]
fn pause_drops_nothing_until_new_credentials() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(3);
    h.commit();
    let (a, b) = (h.poll().unwrap(), h.poll().unwrap());
    let c = h.poll().unwrap();
    let t = h.now;
    h.answer(&a, pause());
    h.answer(&b, pause());
    h.answer(&c, pause());
    let notes = h.drain();
    assert!(drops(&notes).is_empty());
    assert_eq!(errors(&notes).iter().map(|e| e.code).collect::<Vec<_>>(), vec![ErrorCode::AuthFailed]);
    assert!(h.e.poll_send(t, true).is_none());
    assert!(h.e.poll_send(t + PAUSE_PROBE_MS - 1, true).is_none());
    h.settle_writes();
    assert_eq!(h.store.index_json()["pauseUntil"], t + PAUSE_PROBE_MS);
    assert_eq!(h.e.next_wakeup(t), Some(t + PAUSE_PROBE_MS));
    let fs = h.e.flush_status(t).unwrap();
    assert_eq!((fs.status, fs.reason, fs.retry_at, fs.queued), ("blocked", Some(BlockReason::Paused), Some(t + PAUSE_PROBE_MS), 3));
    assert_eq!(h.e.stats(t).state, "paused");
    assert_eq!(h.e.stats(t).queued, 3);
    // New credentials: resume at once, at full concurrency, same ids.
    let creds = Credentials { token_id: "tid2".into(), token_secret: "secret2".into() };
    h.e.set_credentials(creds.clone());
    assert_eq!(h.e.credentials(), &creds);
    let again = h.poll_all();
    assert_eq!(again.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), H::ids(&evs));
}

#[test]
fn pause_probes_one_request_every_probe_interval() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(3);
    h.commit();
    let s = h.poll().unwrap();
    let t = h.now;
    h.answer(&s, pause());
    let _ = h.poll_all(); // nothing
    h.now = t + PAUSE_PROBE_MS;
    let probe = h.poll().expect("probe");
    assert_eq!(probe.id, evs[0].id());
    assert!(h.poll().is_none(), "one probe at a time");
    h.settle_writes();
    assert_ne!(h.e.next_wakeup(h.now), Some(h.now), "no busy loop while the probe is out");
    h.answer(&probe, pause());
    assert!(h.poll().is_none());
    h.settle_writes();
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now + PAUSE_PROBE_MS));
    h.now += PAUSE_PROBE_MS;
    let probe = h.poll().unwrap();
    assert!(h.poll().is_none());
    h.answer(&probe, delivered());
    // The probe got through: everything else goes at once.
    assert_eq!(h.poll_all().len(), 2);
}

#[test]
fn a_pause_survives_an_offline_spell() {
    let mut h = H::with(|_| {});
    h.track_n(3);
    h.commit();
    let s = h.poll().unwrap();
    h.answer(&s, pause());
    h.now += PAUSE_PROBE_MS;
    assert!(h.e.poll_send(h.now, false).is_none()); // offline exactly when the probe is due
    h.now += OFFLINE_RECHECK_MS;
    assert!(h.poll().is_some(), "back online: the probe");
    assert!(h.poll().is_none(), "still only one probe, not full concurrency");
}

#[test]
fn reject_drops_only_that_event() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(3);
    h.commit();
    let sends = h.poll_all();
    h.answer(&sends[0], delivered());
    h.answer(&sends[1], reject("the server rejected the event (HTTP 422, VALIDATION_ERROR): bad name"));
    h.answer(&sends[2], delivered());
    let notes = h.drain();
    let d = drops(&notes);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].0, evs[1].id());
    assert_eq!(d[0].1, DropReason::Rejected);
    assert!(d[0].2.contains("bad name"));
    assert_eq!(errors(&notes)[0].code, ErrorCode::EventRejected);
    let st = h.e.stats(h.now);
    assert_eq!((st.delivered, st.dropped.rejected, st.queued), (2, 1, 0));
    assert!(h.poll().is_none());
    // No backoff after a reject: the next event goes at once.
    let more = h.track_n(1);
    h.commit();
    assert_eq!(h.poll().unwrap().id, more[0].id());
}

#[test]
fn eviction_of_the_oldest_by_count_sparing_in_flight() {
    let mut h = H::with(|c| c.limits.max_queue_events = 5);
    let evs = h.track_n(5);
    h.commit();
    h.drain();
    let first = h.poll().unwrap();
    assert_eq!(first.id, evs[0].id());
    let newer = h.track_n(3);
    let notes = h.drain();
    let d = drops(&notes);
    assert_eq!(d.iter().map(|x| x.0.clone()).collect::<Vec<_>>(), H::ids(&evs[1..4]), "oldest not in flight");
    assert!(d.iter().all(|x| x.1 == DropReason::Evicted));
    assert_eq!(h.e.stats(h.now).dropped.evicted, 3);
    assert_eq!(h.e.stats(h.now).queued, 5);
    h.commit();
    assert_eq!(tickets(&h.drain()), vec![(6, TicketResult::Queued), (7, TicketResult::Queued), (8, TicketResult::Queued)]);
    h.answer(&first, delivered());
    let mut want = vec![evs[4].id().to_string()];
    want.extend(H::ids(&newer));
    assert_eq!(h.deliver_all(), want);
    // The evictions were persisted as done marks.
    h.force_writes();
    assert_eq!(h.store.index_json()["totals"]["dropped"]["evicted"], 3);
}

#[test]
fn eviction_of_pending_events_and_when_all_are_in_flight() {
    // Pending events are evicted oldest first, their tickets settle Evicted.
    let mut h = H::with(|c| c.limits.max_queue_events = 2);
    let evs = h.track_n(5);
    let notes = h.drain();
    assert_eq!(tickets(&notes), vec![(1, TicketResult::Evicted), (2, TicketResult::Evicted), (3, TicketResult::Evicted)]);
    assert_eq!(drops(&notes).iter().map(|x| x.0.clone()).collect::<Vec<_>>(), H::ids(&evs[..3]));
    h.commit();
    assert_eq!(tickets(&h.drain()), vec![(4, TicketResult::Queued), (5, TicketResult::Queued)]);
    // Everything queued is in flight: the newcomer makes room for nobody.
    let sends = h.poll_all();
    assert_eq!(sends.len(), 2);
    let (t, ev) = h.track();
    let notes = h.drain();
    assert_eq!(tickets(&notes), vec![(t, TicketResult::Evicted)]);
    assert_eq!(drops(&notes)[0].0, ev.id());
    assert_eq!(h.e.stats(h.now).queued, 2);
    for s in &sends {
        h.answer(s, delivered());
    }
    assert_eq!(h.e.stats(h.now).delivered, 2);
}

#[test]
fn eviction_by_bytes() {
    let probe = H::with(|_| {}).event();
    let per = probe.stored_bytes();
    let mut h = H::with(|c| c.limits.max_queue_bytes = 3 * per + per / 2);
    let evs = h.track_n(3);
    h.commit();
    assert_eq!(h.e.stats(h.now).bytes_stored, 3 * per);
    let more = h.track_n(2);
    let d = drops(&h.drain());
    assert_eq!(d.iter().map(|x| x.0.clone()).collect::<Vec<_>>(), H::ids(&evs[..2]));
    h.commit();
    let st = h.e.stats(h.now);
    assert!(st.bytes_stored <= 3 * per + per / 2);
    assert_eq!(st.dropped.evicted, 2);
    let mut want = vec![evs[2].id().to_string()];
    want.extend(H::ids(&more));
    assert_eq!(h.deliver_all(), want);
}

#[test]
fn bounds_are_enforced_when_a_write_completes() {
    let mut h = H::with(|c| c.limits.max_queue_events = 3);
    h.track_n(3);
    let w = h.e.take_write(h.now, false).unwrap();
    let newer = h.track_n(3);
    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    assert!(h.e.stats(h.now).queued <= 3);
    h.commit();
    assert_eq!(h.deliver_all(), H::ids(&newer));
}

fn dedup_event(h: &mut H, name: &str, key: &str) -> NewEvent {
    build_event(
        name,
        Props::from_json(&Json::Object(vec![])).unwrap(),
        Some(key),
        &EventContext::default(),
        &Origin::default(),
        h.now,
        4096,
        &mut h.rng,
    )
    .unwrap()
}

#[test]
fn dedup_key() {
    let mut h = H::with(|_| {});
    let a = dedup_event(&mut h, "purchase", "order-1");
    assert!(matches!(h.e.track(a.clone(), h.now), Admission::Pending(_)));
    assert_eq!(h.e.track(a.clone(), h.now), Admission::Duplicate, "while pending");
    h.commit();
    h.now += 1;
    let a2 = dedup_event(&mut h, "Purchase", "order-1");
    assert_eq!(a2.id(), a.id());
    assert_eq!(h.e.track(a2.clone(), h.now), Admission::Duplicate, "while queued");
    let other = dedup_event(&mut h, "refund", "order-1");
    assert!(matches!(h.e.track(other, h.now), Admission::Pending(_)), "another name, another id");
    // Survives a restart.
    h.commit();
    let mut restored = h.store.restore(h.config.clone(), 3, h.now);
    assert_eq!(restored.track(a2.clone(), h.now), Admission::Duplicate, "restored dedup ids");
    // After delivery, the same key may be tracked again.
    let sends = h.poll_all();
    assert_eq!(sends[0].id, a.id());
    h.answer(&sends[0], delivered());
    assert!(matches!(h.e.track(a2.clone(), h.now), Admission::Pending(_)), "allowed again after delivery");
    // After a failed write, too.
    let b = dedup_event(&mut h, "purchase", "order-2");
    h.e.take_write(h.now, false).unwrap(); // carries a2
    assert!(matches!(h.e.track(b.clone(), h.now), Admission::Pending(_)));
    h.e.write_done(Err("quota".into()), h.now);
    assert!(matches!(h.e.track(a2.clone(), h.now), Admission::Pending(_)), "allowed again after a failed write");
    // And after a drop.
    h.commit();
    let sends = h.poll_all();
    for s in &sends {
        h.answer(s, reject("no"));
    }
    assert!(matches!(h.e.track(b.clone(), h.now), Admission::Pending(_)), "allowed again after a drop");
}

#[test]
fn opt_out_without_purge_is_persisted() {
    let mut h = H::with(|_| {});
    h.track_n(2);
    h.commit();
    h.drain();
    h.track_n(2); // tickets 3, 4 pending
    h.e.set_enabled(false, false, h.now);
    assert!(!h.e.enabled());
    assert_eq!(tickets(&h.drain()), vec![(3, TicketResult::Disabled), (4, TicketResult::Disabled)]);
    let ev = h.event();
    assert_eq!(h.e.track(ev, h.now), Admission::Disabled);
    assert!(h.poll().is_none());
    let fs = h.e.flush_status(h.now).unwrap();
    assert_eq!((fs.status, fs.reason, fs.queued), ("blocked", Some(BlockReason::Disabled), 2));
    assert_eq!(h.e.stats(h.now).state, "disabled");
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now), "the choice must be written");
    let w = h.commit();
    assert_eq!(w.set.len(), 1, "only the index");
    assert_eq!(h.store.index_json()["enabled"], false);
    assert_eq!(h.e.next_wakeup(h.now), None, "disabled: nothing to send");
    // A restart remembers the choice and keeps the queue.
    let mut r = h.store.restore(h.config.clone(), 4, h.now);
    assert!(!r.enabled());
    assert_eq!(r.stats(h.now).queued, 2);
    let ev = h.event();
    assert_eq!(r.track(ev, h.now), Admission::Disabled);
    assert!(r.poll_send(h.now, true).is_none());
    // Opting in again: persisted, and delivery resumes.
    r.set_enabled(true, false, h.now);
    let w = r.take_write(h.now, false).unwrap();
    h.store.apply(&w);
    r.write_done(Ok(()), h.now);
    assert_eq!(h.store.index_json()["enabled"], true);
    assert_eq!(std::iter::from_fn(|| r.poll_send(h.now, true)).count(), 2);
}

#[test]
fn opt_out_with_purge_drops_everything() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(3);
    h.commit();
    h.drain();
    h.e.set_enabled(false, true, h.now);
    let d = drops(&h.drain());
    assert_eq!(d.iter().map(|x| x.0.clone()).collect::<Vec<_>>(), H::ids(&evs));
    assert!(d.iter().all(|x| x.1 == DropReason::Purged));
    let st = h.e.stats(h.now);
    assert_eq!((st.queued, st.dropped.purged), (0, 3));
    let w = h.commit();
    assert_eq!(w.remove, vec![segment_key(1)]);
    let r = h.store.restore(h.config.clone(), 5, h.now);
    assert!(!r.enabled());
    assert_eq!(r.stats(h.now).queued, 0);
    assert_eq!(r.stats(h.now).dropped.purged, 3);
    assert!(h.store.segment_keys().is_empty());
}

#[test]
fn flush_status_answers() {
    let mut h = H::with(|_| {});
    let fs = h.e.flush_status(h.now).unwrap();
    assert_eq!((fs.status, fs.reason, fs.retry_at, fs.queued), ("empty", None, None, 0));
    assert_eq!(serde_json::to_value(&fs).unwrap(), json!({"status": "empty", "queued": 0}));
    h.track_n(2);
    assert_eq!(h.e.flush_status(h.now), None, "pending write");
    let w = h.e.take_write(h.now, false).unwrap();
    assert_eq!(h.e.flush_status(h.now), None, "write in progress");
    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    assert_eq!(h.e.flush_status(h.now), None, "sendable now: keep going");
    let sends = h.poll_all();
    assert_eq!(h.e.flush_status(h.now), None, "in flight");
    for s in &sends {
        h.answer(s, delivered());
    }
    assert_eq!(h.e.flush_status(h.now), None, "done marks not yet durable");
    let w = h.e.take_write(h.now, false).expect("flush forces the marks out");
    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    assert_eq!(h.e.flush_status(h.now).unwrap().status, "empty");
    assert_eq!(h.store.index_segs(), Vec::<u64>::new());
    // Blocked answers serialize with a reason and a time.
    h.track_n(1);
    h.commit();
    let s = h.poll().unwrap();
    h.answer(&s, pause());
    let fs = h.e.flush_status(h.now).unwrap();
    assert_eq!(serde_json::to_value(&fs).unwrap(), json!({"status": "blocked", "reason": "paused", "retryAt": h.now + PAUSE_PROBE_MS, "queued": 1}));
}

#[test]
fn next_wakeup_values() {
    let mut h = H::with(|c| c.concurrency = 2);
    assert_eq!(h.e.next_wakeup(h.now), None, "idle");
    h.track_n(5);
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now), "a write is due");
    let w = h.e.take_write(h.now, false).unwrap();
    assert_eq!(h.e.next_wakeup(h.now), None, "waiting for the write");
    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now), "sendable");
    let sends = h.poll_all();
    assert_eq!(sends.len(), 2);
    assert_eq!(h.e.next_wakeup(h.now), None, "at the concurrency cap, the answers come next");
    let t = h.now;
    h.answer(&sends[0], delivered());
    h.now += 10;
    h.answer(&sends[1], delivered());
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now), "more to send");
    let sends = h.poll_all();
    assert_eq!(h.e.next_wakeup(h.now), Some(t + ACK_DELAY_MS), "done marks after the ack delay");
    h.now = t + ACK_DELAY_MS;
    assert!(h.e.take_write(h.now, false).is_some());
    h.e.write_done(Ok(()), h.now);
    // A failure: one probe at a time, and no wakeup due while the probe is out.
    h.answer(&sends[0], retry(Some(5_000)));
    h.answer(&sends[1], retry(Some(5_000)));
    h.settle_writes();
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now + 5_000));
    h.now += 5_000;
    let probe = h.poll().expect("probe");
    assert!(h.poll().is_none());
    let w = h.e.next_wakeup(h.now);
    assert!(w.is_none_or(|t| t > h.now), "a wakeup at {w:?} (now {}) would spin: poll_send gives nothing", h.now);
    h.answer(&probe, delivered());
    // Offline.
    h.force_writes();
    assert!(h.e.poll_send(h.now, false).is_none());
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now + OFFLINE_RECHECK_MS));
    // Disabled: only the write of the choice.
    h.e.set_enabled(false, false, h.now);
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now));
    h.settle_writes();
    assert_eq!(h.e.next_wakeup(h.now), None);
}

#[test]
fn next_wakeup_is_now_once_a_batch_of_marks_is_due() {
    let mut h = H::with(|c| c.concurrency = 16);
    h.track_n(ACK_BATCH + 1);
    h.commit();
    let mut n = 0;
    while n < ACK_BATCH {
        let s = h.poll().unwrap();
        h.answer(&s, delivered());
        n += 1;
    }
    // Hold back the last event so no send is due either.
    let last = h.poll().unwrap();
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now), "ACK_BATCH marks: the write is due now");
    assert!(h.e.take_write(h.now, false).is_some());
    let _ = last;
}

#[test]
fn restore_gives_back_the_undelivered_events_in_order() {
    let mut h = H::with(|c| c.concurrency = 16);
    let mut evs = h.track_n(700);
    h.commit();
    evs.extend(h.track_n(500));
    h.commit();
    assert_eq!(h.store.index_segs(), vec![1, 2, 3]);
    let bodies: HashMap<String, String> = evs.iter().map(|e| (e.id().to_string(), request_body(e.name(), e.props_json()))).collect();
    // Deliver the first 510 (all of segment 1), reject two, deliver one, leave one in flight.
    let mut gone = std::collections::HashSet::new();
    for _ in 0..510 {
        let s = h.send_next().unwrap();
        h.answer(&s, delivered());
        gone.insert(s.id);
    }
    let s: Vec<Req> = (0..4).map(|_| h.poll().unwrap()).collect();
    h.answer(&s[0], reject("bad"));
    h.answer(&s[2], reject("bad"));
    h.answer(&s[1], delivered());
    for x in &s[..3] {
        gone.insert(x.id.clone());
    }
    h.commit_with(true);
    assert_eq!(h.store.index_segs(), vec![2, 3]);
    let index = h.store.index();
    // The segments a start reads after the index: the ones the index names.
    let unread = |index: Option<&str>| {
        let mut e = Engine::new(h.config.clone(), 0);
        e.begin_restore(index, h.now);
        e.unloaded_keys(usize::MAX)
    };
    assert_eq!(unread(index.as_deref()), h.store.segment_keys());
    assert_eq!(unread(None), Vec::<String>::new());
    assert_eq!(unread(Some("garbage")), Vec::<String>::new());

    // The worker dies (the engine is dropped with `s[3]` in flight) and comes back.
    drop(std::mem::replace(&mut h.e, Engine::new(h.config.clone(), 0)));
    let mut r = h.store.restore(h.config.clone(), 77, h.now);
    assert!(r.drain_notes().is_empty());
    let want: Vec<String> = evs.iter().map(|e| e.id().to_string()).filter(|id| !gone.contains(id)).collect();
    assert_eq!(want.len(), 1200 - 513);
    let st = r.stats(h.now);
    assert_eq!((st.queued, st.delivered, st.dropped.rejected), (want.len(), 511, 2));
    assert_eq!(st.bytes_stored, evs.iter().filter(|e| !gone.contains(e.id())).map(|e| e.stored_bytes()).sum::<usize>());
    let mut store = h.store.clone();
    let sent = deliver_into(&mut r, h.now, &mut store, |x| assert_eq!(x.body, bodies[&x.id], "same bytes as before the restart"));
    assert_eq!(sent, want, "same events, same order, same ids");
    assert_eq!(sent[0], s[3].id, "the event in flight when the worker died is sent again");
    // New segments continue the numbering.
    let ev = h.event();
    assert!(matches!(r.track(ev, h.now), Admission::Pending(_)));
    let w = r.take_write(h.now, true).unwrap();
    assert_eq!(w.set[0].0, segment_key(4));
    store.apply(&w);
    assert!(!store.0.contains_key(&segment_key(2)) && !store.0.contains_key(&segment_key(3)), "the delivered segments removed");
}

#[test]
fn in_flight_events_are_sent_again_after_a_crash() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(3);
    h.commit();
    let first: Vec<Req> = h.poll_all();
    assert_eq!(first.len(), 3);
    // Delivered, but the done marks never made it to storage.
    h.answer(&first[0], delivered());
    let r_store = h.store.clone();
    let mut r = r_store.restore(h.config.clone(), 11, h.now);
    let again: Vec<Req> = std::iter::from_fn(|| r.poll_send(h.now, true)).collect();
    assert_eq!(again.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), H::ids(&evs));
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a.body, b.body, "same Idempotency-Key, same body");
    }
}

#[test]
fn a_missing_segment_loses_only_its_own_events() {
    let mut h = H::with(|c| c.concurrency = 16);
    let evs = h.track_n(1100);
    h.commit();
    for _ in 0..505 {
        let s = h.send_next().unwrap();
        h.answer(&s, delivered());
    }
    h.commit_with(true);
    assert_eq!(h.store.index_segs(), vec![2, 3]);
    let half = h.store.0[&segment_key(2)].split('\n').next().unwrap().to_string();
    let broken_values = ["not json", "[]", "", "a\tb", "a\tb\tc\td", half.as_str()];
    for broken in std::iter::once(None).chain(broken_values.map(|v| Some(v.to_string()))) {
        let mut store = h.store.clone();
        match &broken {
            None => {
                store.0.remove(&segment_key(2));
            }
            Some(v) => {
                store.0.insert(segment_key(2), v.clone());
            }
        }
        let mut r = store.restore(h.config.clone(), 12, h.now);
        let notes = r.drain_notes();
        let errs = errors(&notes);
        assert_eq!(errs.len(), 1, "{broken:?}");
        assert_eq!(errs[0].code, ErrorCode::StorageError);
        assert!(errs[0].message.contains("inhouse:v1:seg:2") && errs[0].message.contains("495"), "{}", errs[0].message);
        let st = r.stats(h.now);
        assert_eq!((st.queued, st.dropped.corrupt), (100, 495));
        let sent = deliver_into(&mut r, h.now, &mut store, |_| {});
        assert_eq!(sent, H::ids(&evs[1000..]));
        // The writes drop the broken segment from storage and from the index.
        while let Some(w) = r.take_write(h.now, true) {
            store.apply(&w);
            r.write_done(Ok(()), h.now);
        }
        assert!(!store.0.contains_key(&segment_key(2)), "removed");
        assert!(!store.index_segs().contains(&2));
        assert_eq!(store.index_json()["totals"]["dropped"]["corrupt"], 495);
    }
}

#[test]
fn an_unreadable_index_starts_empty_and_says_so() {
    let cfg = config(|_| {});
    let version_2 = "2 5 1\n0 0 0 0 0 0 0";
    let no_totals = "1 5 1";
    let bad_segment = "1 5 1\n0 0 0 0 0 0 0\n3";
    let enabled_2 = "1 5 2\n0 0 0 0 0 0 0";
    let json_era = r#"{"v":1,"next":5,"enabled":true,"segs":[]}"#;
    for bad in ["garbage", "{}", r#"{"v":2,"next":5,"enabled":true,"segs":[]}"#, "null", "", version_2, no_totals, bad_segment, enabled_2, json_era] {
        let mut e = Engine::new(cfg.clone(), 1);
        e.restore(Some(bad), |_| None, T0);
        let notes = e.drain_notes();
        let errs = errors(&notes);
        assert_eq!(errs.len(), 1, "{bad}");
        assert_eq!(errs[0].code, ErrorCode::StorageError);
        assert_eq!(e.stats(T0).queued, 0);
        assert!(e.enabled());
    }
    // Nothing stored: a first run, no error.
    let mut e = Engine::new(cfg.clone(), 1);
    e.restore(None, |_| None, T0);
    assert!(e.drain_notes().is_empty());
    assert_eq!(e.stats(T0).queued, 0);
}

#[test]
fn stats_serialize_in_camel_case() {
    let mut h = H::with(|_| {});
    h.track_n(1);
    let v = serde_json::to_value(h.e.stats(h.now)).unwrap();
    for key in [
        "state",
        "enabled",
        "queued",
        "pendingWrite",
        "inFlight",
        "bytesStored",
        "delivered",
        "retried",
        "dropped",
        "storageWrites",
        "requests",
        "nextAttemptAt",
        "lastError",
    ] {
        assert!(v.get(key).is_some(), "{key} missing from {v}");
    }
    for key in ["rejected", "evicted", "retriesExhausted", "purged", "corrupt"] {
        assert!(v["dropped"].get(key).is_some(), "{key}");
    }
}

#[test]
fn purge_reaches_events_in_the_outstanding_write() {
    let mut h = H::with(|_| {});
    let old = h.track_n(2);
    h.commit();
    h.drain();
    h.track_n(3); // tickets 3..5
    let w = h.e.take_write(h.now, false).unwrap();
    // The user opts out with purge while those events are being written.
    h.e.set_enabled(false, true, h.now);
    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    let notes = h.drain();
    let settled = tickets(&notes);
    assert_eq!(settled.iter().map(|x| x.0).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert!(settled.iter().all(|x| x.1 != TicketResult::Queued), "purged events must not be reported queued: {settled:?}");
    assert_eq!(drops(&notes).iter().map(|x| x.0.clone()).collect::<Vec<_>>(), H::ids(&old));
    assert_eq!(h.e.stats(h.now).queued, 0);
    h.settle_writes();
    assert!(h.store.segment_keys().is_empty(), "purged data left in storage: {:?}", h.store.segment_keys());
    // Opting in again sends nothing from before the purge.
    h.e.set_enabled(true, false, h.now);
    h.settle_writes();
    assert!(h.poll().is_none());
    let r = h.store.restore(h.config.clone(), 6, h.now);
    assert_eq!(r.stats(h.now).queued, 0);
}

#[test]
fn a_corrupt_index_never_panics_restore() {
    let cfg = config(|_| {});
    // More done marks than events (or marks out of range) in a segment that is also missing.
    for (d, lost) in [("0 1 2 3 4 5", 0), ("0 0 0 0", 1), ("7 8 9", 2)] {
        let index = format!("1 3 1\n0 0 0 0 0 0 0\n1 2 {d}");
        let mut e = Engine::new(cfg.clone(), 1);
        e.restore(Some(&index), |_| None, T0);
        let st = e.stats(T0);
        assert_eq!(st.queued, 0);
        assert!(st.dropped.corrupt <= 2, "{d}: {}", st.dropped.corrupt);
        assert_eq!(st.dropped.corrupt, lost, "{d}: each in-range mark counts once");
        assert_eq!(errors(&e.drain_notes()).len(), 1);
    }
}

#[test]
fn retry_network_now_ends_only_network_waits() {
    // A network wait ends at once (one probe, since a failure is still the last word).
    let mut h = H::with(|_| {});
    h.track_n(2);
    h.commit();
    let s = h.poll().unwrap();
    h.answer(&s, unreachable());
    assert!(h.poll().is_none());
    h.e.retry_network_now(h.now);
    assert!(h.poll().is_some());
    assert!(h.poll().is_none(), "one probe");
    // A wait the server asked for holds.
    let mut h = H::with(|_| {});
    h.track_n(2);
    h.commit();
    let s = h.poll().unwrap();
    h.answer(&s, retry(None));
    h.e.retry_network_now(h.now);
    assert!(h.poll().is_none());
    // Also when a network error came after the server's Retry-After.
    let mut h = H::with(|_| {});
    h.track_n(3);
    h.commit();
    let (a, b) = (h.poll().unwrap(), h.poll().unwrap());
    let t = h.now;
    h.answer(&a, retry(Some(30_000)));
    h.answer(&b, unreachable());
    h.e.retry_network_now(t);
    assert!(h.e.poll_send(t + 29_999, true).is_none());
    assert!(h.e.poll_send(t + 30_000, true).is_some());
}

#[test]
fn consent_persisted_tracks_the_stored_choice() {
    let mut h = H::with(|_| {});
    assert!(h.e.consent_persisted());
    h.e.set_enabled(false, false, h.now);
    assert!(!h.e.consent_persisted());
    let w = h.e.take_write(h.now, false).unwrap();
    assert!(!h.e.consent_persisted(), "not while the write is out");
    h.e.write_done(Err("quota".into()), h.now);
    assert!(!h.e.consent_persisted(), "a failed write stored nothing");
    let _ = w;
    h.now += ACK_DELAY_MS;
    h.settle_writes();
    assert!(h.e.consent_persisted());
    assert_eq!(h.store.index_json()["enabled"], false);
}

#[test]
fn orphan_segments_are_the_unnamed_ones_below_next() {
    let mut h = H::with(|c| c.concurrency = 16);
    h.track_n(SEGMENT_EVENTS + 1);
    h.commit();
    for _ in 0..SEGMENT_EVENTS {
        let s = h.send_next().unwrap();
        h.answer(&s, delivered());
    }
    // The write removing segment 1 stores its `set`, then the worker dies before its `remove`.
    let w = h.e.take_write(h.now, true).unwrap();
    assert_eq!(w.remove, vec![segment_key(1)]);
    h.store.apply(&Write { set: w.set.clone(), remove: vec![] });
    let mut keys: Vec<String> = h.store.0.keys().cloned().collect();
    keys.push(segment_key(99)); // at or past `next`: a write in progress, not an orphan
    keys.push("someone:else".into());
    keys.push("inhouse:v1:seg:x".into());
    let index = h.store.index();
    assert_eq!(Engine::orphan_segments(index.as_deref(), &keys), vec![segment_key(1)]);
    // No readable index: nothing is an orphan (the queue is rebuilt from the segments instead).
    assert!(Engine::orphan_segments(Some("garbage"), &keys).is_empty());
    assert!(Engine::orphan_segments(None, &keys).is_empty());
    // Deleting them and restoring loses nothing.
    for k in Engine::orphan_segments(index.as_deref(), &keys) {
        h.store.0.remove(&k);
    }
    let r = h.store.restore(h.config.clone(), 8, h.now);
    assert_eq!(r.stats(h.now).queued, 1);
}

#[test]
fn ticket_notes_carry_the_event_ids() {
    let mut h = H::with(|c| c.limits.max_queue_events = 3);
    let evs = h.track_n(5); // the first two are evicted while pending
    h.commit();
    let ids: Vec<(u64, String, TicketResult)> = h
        .drain()
        .into_iter()
        .filter_map(|n| match n {
            Note::Ticket { ticket, id, result } => Some((ticket, id, result)),
            _ => None,
        })
        .collect();
    let want: Vec<(u64, String, TicketResult)> = evs
        .iter()
        .enumerate()
        .map(|(k, e)| (k as u64 + 1, e.id().to_string(), if k < 2 { TicketResult::Evicted } else { TicketResult::Queued }))
        .collect();
    assert_eq!(ids, want);
    // A failed write and an opt-out name their events too.
    let more = h.track_n(2);
    h.e.take_write(h.now, false).unwrap();
    h.e.write_done(Err("quota".into()), h.now);
    let last = h.track_n(1);
    h.e.set_enabled(false, false, h.now);
    let got: Vec<String> = h.drain().into_iter().filter_map(|n| if let Note::Ticket { id, .. } = n { Some(id) } else { None }).collect();
    assert_eq!(got, H::ids(&[more, last].concat()));
}

#[test]
fn out_of_order_answers_keep_sending_in_order() {
    // Answers come back in any order; the next sends are still the oldest unsent events, and a
    // failed one goes again before any newer one once its backoff ends.
    let mut h = H::with(|c| c.concurrency = 4);
    let evs = h.track_n(SEGMENT_EVENTS + 20);
    h.commit();
    let mut sent = vec![];
    let first = h.poll_all();
    assert_eq!(first.len(), 4);
    sent.extend(first.iter().map(|s| s.id.clone()));
    h.answer(&first[3], delivered());
    h.answer(&first[1], delivered());
    let next = h.poll_all();
    assert_eq!(next.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), H::ids(&evs[4..6]));
    h.answer(&first[2], delivered());
    h.answer(&first[0], delivered());
    // The queue's first event is done, the next two in flight: the cursor moved past.
    let more = h.poll_all();
    assert_eq!(more.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), H::ids(&evs[6..8]));
    // Two fail out of order (503 with a Retry-After longer than their own backoff); the others
    // succeed.
    h.answer(&more[1], retry(Some(5_000)));
    h.answer(&next[0], retry(Some(5_000)));
    h.answer(&next[1], delivered());
    h.answer(&more[0], delivered());
    assert_eq!(h.e.stats(h.now).in_flight, 0);
    // Once the wait ends, the oldest first: evs[4] (failed second, but older), then evs[7], then
    // the fresh ones.
    let mut order = vec![];
    while order.len() < 4 {
        h.advance_to_wakeup();
        while let Some(s) = h.poll() {
            order.push(s.id.clone());
            h.answer(&s, delivered());
        }
    }
    assert_eq!(order[..3], [evs[4].id().to_string(), evs[7].id().to_string(), evs[8].id().to_string()]);
    let rest = h.deliver_all();
    let mut all: Vec<String> = order.into_iter().chain(rest).collect();
    all.sort();
    let mut want = H::ids(&evs[8..]);
    want.push(evs[4].id().to_string());
    want.push(evs[7].id().to_string());
    want.sort();
    assert_eq!(all, want);
    assert_eq!(h.e.stats(h.now).delivered as usize, evs.len());
    assert_eq!(h.e.stats(h.now).queued, 0);
}

#[test]
fn eviction_and_purge_after_out_of_order_delivery() {
    let mut h = H::with(|c| {
        c.concurrency = 3;
        c.limits.max_queue_events = 10;
    });
    let evs = h.track_n(10);
    h.commit();
    let s = h.poll_all();
    h.answer(&s[1], delivered()); // a hole after the first event
    h.answer(&s[2], retry(None)); // waits for another attempt
    h.drain();
    // Three newcomers (9 queued + 3) evict the two oldest that are neither done nor in flight:
    // evs[2] (waiting for its retry) and evs[3]. evs[0] is in flight and spared.
    let newer = h.track_n(3);
    let d = drops(&h.drain());
    assert_eq!(d.iter().map(|x| x.0.clone()).collect::<Vec<_>>(), H::ids(&evs[2..4]));
    h.commit();
    assert_eq!(h.e.stats(h.now).queued, 10);
    // The evicted retry is never sent again; the next sends skip the holes.
    h.answer(&s[0], delivered());
    h.now += 10 * 60_000;
    let next: Vec<String> = h.poll_all().iter().map(|x| x.id.clone()).collect();
    assert_eq!(next, H::ids(&evs[4..7]));
    // A purge drops exactly what is not done yet, in order, and nothing is sent afterwards.
    h.e.set_enabled(false, true, h.now);
    let d = drops(&h.drain());
    let mut want = H::ids(&evs[4..]);
    want.extend(H::ids(&newer));
    assert_eq!(d.iter().map(|x| x.0.clone()).collect::<Vec<_>>(), want);
    assert!(d.iter().all(|x| x.1 == DropReason::Purged));
    h.e.set_enabled(true, false, h.now);
    assert!(h.poll().is_none());
    assert_eq!(h.e.stats(h.now).queued, 0);
}

#[test]
fn restore_with_done_marks_sends_only_the_rest() {
    let mut h = H::with(|c| c.concurrency = 8);
    let evs = h.track_n(12);
    h.commit();
    let s = h.poll_all();
    for k in [0, 2, 3, 7] {
        h.answer(&s[k], delivered());
    }
    h.answer(&s[5], reject("no"));
    h.commit_with(true);
    assert_eq!(h.store.index_json()["segs"][0]["d"], json!([0, 2, 3, 5, 7]));
    let mut r = h.store.restore(h.config.clone(), 9, h.now);
    let left: Vec<usize> = vec![1, 4, 6, 8, 9, 10, 11];
    let st = r.stats(h.now);
    assert_eq!(st.queued, left.len());
    assert_eq!(st.bytes_stored, left.iter().map(|&k| evs[k].stored_bytes()).sum::<usize>());
    let sent: Vec<String> = std::iter::from_fn(|| {
        let x = r.poll_send(h.now, true)?;
        r.on_result(x.slot, delivered(), h.now);
        Some(x.id)
    })
    .collect();
    assert_eq!(sent, left.iter().map(|&k| evs[k].id().to_string()).collect::<Vec<_>>());
    // Evicting after a restore starts at the first event not done.
    let mut small = h.config.clone();
    small.limits.max_queue_events = left.len();
    let mut r = h.store.restore(small, 10, h.now);
    let ev = h.event();
    assert!(matches!(r.track(ev, h.now), Admission::Pending(_)));
    let d = drops(&r.drain_notes());
    assert_eq!(d.iter().map(|x| x.0.clone()).collect::<Vec<_>>(), vec![evs[1].id().to_string()]);
    assert_eq!(r.stats(h.now).queued, left.len());
}

#[test]
fn the_stored_text_is_the_events_lines() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(3);
    let w = h.e.take_write(h.now, false).unwrap();
    let lines: Vec<&str> = evs.iter().map(|e| e.line()).collect();
    assert_eq!(w.set[0].1, lines.join("\n"));
    assert_eq!(h.e.segment_str(0), w.set[0].1);
    assert_eq!(h.e.segment_text(1), "");
    for e in &evs {
        assert_eq!(e.line(), format!("{}\t{}\t{}", e.id(), e.name(), e.props_json()));
    }
}

/// Host measurements, printed (`cargo test --release -- --nocapture measure`): restore of 1,000
/// events, a drain of 10,000 through the engine, and the heap per queued event.
#[test]
fn measure() {
    use std::time::Instant;
    let mut h = H::with(|c| c.concurrency = 8);
    let n = 10_000;
    let t = Instant::now();
    let evs = h.track_n(n);
    let track_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    h.commit();
    let text: usize = h.store.0.iter().filter(|(k, _)| *k != INDEX_KEY).map(|(_, v)| v.len()).sum();
    let t = Instant::now();
    let mut delivered_n = 0;
    while delivered_n < n {
        let batch = h.poll_all();
        for s in batch {
            h.answer(&s, delivered());
            delivered_n += 1;
        }
        h.settle_writes();
        let _ = h.e.next_wakeup(h.now);
    }
    let drain = t.elapsed();
    let mut h1 = H::with(|_| {});
    h1.track_n(1_000);
    h1.commit();
    let t = Instant::now();
    let r = h1.store.restore(h1.config.clone(), 1, h1.now);
    let restore = t.elapsed();
    assert_eq!(r.stats(h1.now).queued, 1_000);
    let per_event_text = text as f64 / n as f64;
    println!(
        "measure: track {track_us:.2} µs/event (host), drain of {n}: {:.1} ms, restore of 1000: {:.3} ms, stored text {per_event_text:.0} B/event",
        drain.as_secs_f64() * 1e3,
        restore.as_secs_f64() * 1e3,
    );
    drop(evs);
}

#[test]
fn the_profile_and_the_lifecycle_record_go_with_the_events_and_a_purge_forgets_the_who() {
    use inhouse_tracker::core::engine::{INDEX_KEY, INSTALL_KEY};
    use inhouse_tracker::core::lifecycle::{Seen, LIFECYCLE_KEY};
    use inhouse_tracker::core::profile::PROFILE_KEY;
    let mut h = H::with(|_| {});
    let ev = h.event();
    let mut e = h.e;
    e.adopt_install_id(None);
    e.adopt_profile(None, T0);
    e.restore(None, |_| None, T0);
    let first_id = e.install_id().unwrap().to_string();
    e.change_profile(|p| p.identify("user_42".into()));
    e.set_lifecycle(Seen { version: Some("1.0.0".into()), ..Seen::default() });
    e.track(ev, T0);
    // One write: the event, the install id, the profile and the lifecycle record together.
    let w = e.take_write(T0, true).unwrap();
    let keys: Vec<&str> = w.set.iter().map(|(k, _)| k.as_str()).collect();
    for key in [INSTALL_KEY, PROFILE_KEY, LIFECYCLE_KEY, INDEX_KEY] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    assert!(keys.iter().any(|k| k.starts_with("inhouse:v1:seg:")));
    e.write_done(Ok(()), T0);
    assert!(e.settings_persisted());
    // An opt-out with purge forgets the install id, the user and the super properties.
    e.set_enabled(false, true, T0 + 1);
    assert_eq!(e.profile().user_id(), None);
    assert_ne!(e.install_id(), Some(first_id.as_str()));
    let w = e.take_write(T0 + 2, true).unwrap();
    let profile = w.set.iter().find(|(k, _)| k == PROFILE_KEY).map(|(_, v)| v.as_str());
    assert_eq!(profile, Some(""), "the stored profile is emptied");
}
