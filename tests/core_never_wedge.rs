#![cfg(not(target_arch = "wasm32"))]
//! Host tests of the engine's part in "never wedge, never leak" (issue 22): a stored id the SDK
//! could not have made, a request that cannot be built, an explicit flush after a pause, nothing
//! about the user stored while opted out, the secret never in an error's text.

mod engine_harness;
mod stored;

use engine_harness::*;
use inhouse_tracker::core::engine::{segment_key, Engine};
use inhouse_tracker::core::error::{Error, ErrorCode};
use inhouse_tracker::core::event::{dedup_event_id, is_event_id, new_event_id, Rng};
use inhouse_tracker::core::exception::Thrown;
use inhouse_tracker::core::policy::Verdict;
use inhouse_tracker::core::profile::PROFILE_KEY;

/// `n` events stored in one write, one segment.
fn stored(n: usize) -> (H, Vec<String>) {
    let mut h = H::new(config(|_| {}));
    let evs = h.track_n(n);
    h.commit();
    h.drain();
    (h, H::ids(&evs))
}

#[test]
fn event_ids_are_recognised_by_shape() {
    let mut rng = Rng::new(7);
    for _ in 0..100 {
        assert!(is_event_id(&new_event_id(1_767_225_600_000, &mut rng)));
    }
    assert!(is_event_id(&dedup_event_id("signup", "user-1")));
    let good = new_event_id(1, &mut rng);
    for bad in [
        String::new(),
        "d-".into(),
        "d-0123".into(),
        good.to_uppercase(),
        format!("é{}", &good[2..]),
        format!("Ā{}", &good[2..]),
        good.replacen('-', "x", 1),
        format!("{good}0"),
        "d-0123456789abcdef0123456789abcdeg".into(),
    ] {
        assert!(!is_event_id(&bad), "{bad:?}");
    }
}

#[test]
fn a_stored_id_the_sdk_could_not_have_made_is_dropped_as_corrupt_and_the_rest_flow() {
    let (mut h, ids) = stored(20);
    // Damaged storage: the ninth event's id starts with a character beyond Latin-1, which the
    // browser refuses as a header value (it left six sends in flight forever).
    let key = segment_key(1);
    let text = h.store.0[&key].clone();
    let damaged = text.replacen(&ids[8], &format!("Ā{}", &ids[8][1..]), 1);
    assert_ne!(text, damaged);
    h.store.0.insert(key, damaged);
    h.e = h.store.restore(h.config.clone(), 3, h.now);
    let notes = h.drain();
    let dropped = drops(&notes);
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(dropped[0].1, DropReason::Corrupt);
    assert!(dropped[0].2.contains("damaged storage"), "{}", dropped[0].2);
    let mut want = ids.clone();
    want.remove(8);
    assert_eq!(h.deliver_all(), want, "the other 19 are delivered, in order");
    let st = h.e.stats(h.now);
    assert_eq!((st.queued, st.dropped.corrupt, st.delivered), (0, 1, 19));
}

#[test]
fn a_request_that_cannot_be_built_drops_that_event_alone_and_leaves_the_gate_open() {
    let (mut h, ids) = stored(10);
    let batch = h.poll_all();
    assert_eq!(batch.len(), 6, "concurrency");
    let error = Error::new(ErrorCode::StorageError, "the stored event's id cannot be sent as the idempotency-key header");
    h.answer(&batch[0], Verdict::Unsendable { error });
    for s in &batch[1..] {
        h.answer(s, delivered());
    }
    let dropped = drops(&h.drain());
    assert_eq!(dropped.iter().map(|d| (d.0.as_str(), d.1)).collect::<Vec<_>>(), [(ids[0].as_str(), DropReason::Corrupt)]);
    // Nothing was sent: no backoff, no probe; the next requests go out at full concurrency.
    let next = h.poll_all();
    assert_eq!(next.len(), 4, "the remaining four go out at once");
    for s in &next {
        h.answer(s, delivered());
    }
    let st = h.e.stats(h.now);
    assert_eq!((st.queued, st.delivered, st.dropped.corrupt, st.retried), (0, 9, 1, 0));
}

#[test]
fn an_explicit_flush_probes_a_pause_at_once() {
    let (mut h, ids) = stored(3);
    let s = h.poll().unwrap();
    h.answer(&s, pause());
    h.settle_writes();
    h.now += 60_000;
    assert!(h.poll().is_none(), "paused (for ten minutes)");
    // The API stopped redirecting; the developer calls flush().
    h.e.retry_network_now(h.now);
    let probe = h.poll().expect("one probe at once");
    assert!(h.poll().is_none(), "one probe, not a burst");
    h.answer(&probe, delivered());
    let rest = h.deliver_all();
    let mut got = vec![probe.id.clone()];
    got.extend(rest);
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_probe_that_fails_again_starts_the_pause_again() {
    let (mut h, _) = stored(3);
    let s = h.poll().unwrap();
    h.answer(&s, pause());
    h.e.retry_network_now(h.now + 1);
    h.now += 1;
    let probe = h.poll().expect("a probe");
    h.answer(&probe, pause());
    h.now += 60_000;
    assert!(h.poll().is_none(), "paused again");
}

#[test]
fn opted_out_nothing_about_the_user_is_stored_until_the_user_opts_in() {
    let (mut h, _) = stored(1);
    h.e.set_enabled(false, false, h.now);
    h.force_writes();
    h.e.change_profile(|p| p.identify("user_42".into()));
    assert!(h.e.settings_persisted(), "the change settles: it is as stored as it will be");
    h.force_writes();
    let profile = h.store.0.get(PROFILE_KEY).cloned().unwrap_or_default();
    assert!(!profile.contains("user_42"), "opted out: the user id stays in memory ({profile:?})");
    h.e.set_enabled(true, false, h.now);
    assert!(!h.e.settings_persisted());
    h.force_writes();
    assert!(h.store.0[PROFILE_KEY].contains("user_42"), "opted in: stored");
}

#[test]
fn an_opt_out_with_purge_erases_the_stored_profile() {
    let (mut h, _) = stored(1);
    h.e.change_profile(|p| p.identify("user_42".into()));
    h.force_writes();
    assert!(h.store.0[PROFILE_KEY].contains("user_42"));
    h.e.set_enabled(false, true, h.now);
    h.force_writes();
    assert!(!h.store.0.get(PROFILE_KEY).is_some_and(|p| p.contains("user_42")), "the empty profile is written");
    let restored: Engine = h.store.restore(h.config.clone(), 4, h.now);
    assert_eq!(restored.profile().user_id(), None);
}

#[test]
fn the_token_secret_never_stays_in_an_errors_text() {
    let secret = "sk_live_0123456789";
    let thrown = Thrown {
        kind: "FetchError".into(),
        message: format!("request with x-inhouse-token-secret: {secret} failed; again {secret}!"),
        stack: Some(format!("Error: {secret}\n    at f (chrome-extension://{EXT}/bg.js:1:2)")),
    }
    .redacted(secret);
    let props = thrown.props(&inhouse_tracker::core::origin::Extension::chrome(EXT));
    assert!(!props.as_str().contains(secret), "{}", props.as_str());
    assert_eq!(thrown.message, "request with x-inhouse-token-secret: [redacted] failed; again [redacted]!");
    assert!(thrown.stack.as_deref().unwrap().starts_with("Error: [redacted]"));
    // Text without it, or an empty secret, is left as it was.
    let plain = Thrown { kind: "Error".into(), message: "é ü no secret".into(), stack: None };
    assert_eq!(plain.clone().redacted(secret), plain);
    assert_eq!(plain.clone().redacted(""), plain);
}

/// A new worker: the stored index only, as `driver::restore` reads it.
fn wake(h: &mut H, seed: u64) {
    let index = h.store.index();
    h.e = Engine::new(h.config.clone(), seed);
    h.e.begin_restore(index.as_deref(), h.now);
}

#[test]
fn done_marks_waiting_behind_the_write_out_hold_sending_back_so_a_stop_resends_a_bounded_number() {
    // Each life: relayed calls take the first write, which stays out (slow storage, a busy worker)
    // while the oldest events are answered; the worker is stopped before its completion runs.
    // Before the bound, every life sent the same 60 oldest events again (300 duplicates over 5
    // stops, the "once per worker life"); now sending waits for the marks' write.
    let mut h = H::new(config(|_| {}));
    let evs = h.track_n(1_000);
    h.commit();
    h.drain();
    let ids = H::ids(&evs);
    let mut sends: std::collections::HashMap<String, usize> = Default::default();
    const LIVES: u64 = 6;
    for life in 0..LIVES {
        wake(&mut h, 10 + life);
        h.track_n(3);
        let first_write = h.e.take_write(h.now, false).expect("the first write of the life");
        let store = h.store.clone();
        h.e.load_segments(|k| store.0.get(k).cloned(), 2, h.now);
        for _round in 0..10 {
            for s in h.poll_all() {
                *sends.entry(s.id.clone()).or_default() += 1;
                h.answer(&s, delivered());
            }
            h.now += 5;
        }
        let st = h.e.stats(h.now);
        assert!(st.delivered <= 11, "life {life}: {} delivered while the marks could not be stored (bound: concurrency 6 + batch 5)", st.delivered);
        h.store.apply(&first_write);
        h.now += 300;
    }
    let duplicates: usize = sends.values().map(|c| c - 1).sum();
    let per_stop = duplicates as f64 / (LIVES - 1) as f64;
    assert!(per_stop <= 11.0, "{per_stop} duplicates per stop");
    // The same events each life (nothing of a life reached storage), but only the bound's worth.
    assert!(ids[..11].iter().all(|id| sends[id] == LIVES as usize));
    assert_eq!(sends.len(), 11);
}

#[test]
fn a_slow_write_does_not_slow_a_drain_whose_writes_commit() {
    let mut h = H::new(config(|_| {}));
    h.track_n(1_000);
    h.commit();
    h.drain();
    let mut rounds = 0;
    while h.e.stats(h.now).queued > 0 {
        let batch = h.poll_all();
        assert!(!batch.is_empty() || h.settle_writes() > 0, "no progress");
        for s in &batch {
            h.answer(s, delivered());
        }
        h.settle_writes();
        rounds += 1;
        assert!(rounds < 1_000);
    }
    assert!(rounds <= 170, "{rounds} rounds for 1,000 events at concurrency 6");
}

#[test]
fn a_start_that_could_not_read_storage_writes_nothing_until_it_has_read_it() {
    let (mut h, ids) = stored(20);
    // A new worker whose read of the stored queue failed: it runs, and events are tracked.
    h.e = Engine::new(h.config.clone(), 8);
    h.e.adopt_install_id(None);
    h.e.hold_writes_until_restored();
    let during = h.track_n(3);
    assert!(h.e.take_write(h.now, true).is_none(), "no write: it would replace the stored index and segment 1");
    let fs = h.e.flush_status(h.now).expect("flush answers");
    assert_eq!((fs.status, fs.reason), ("blocked", Some(inhouse_tracker::core::engine::BlockReason::Storage)));
    assert_eq!(h.e.next_wakeup(h.now), None, "nothing to do until the read is tried again");
    // The read works the second time: the stored queue first, then what was tracked meanwhile.
    let index = h.store.index();
    h.e.begin_restore(index.as_deref(), h.now);
    let store = h.store.clone();
    h.e.load_segments(|k| store.0.get(k).cloned(), usize::MAX, h.now);
    h.settle_writes();
    assert_eq!(h.store.segment_keys(), vec![segment_key(1), segment_key(2)], "the new events in a new segment");
    let mut want = ids.clone();
    want.extend(H::ids(&during));
    assert_eq!(h.deliver_all(), want);
}

#[test]
fn while_storage_refuses_writes_delivery_is_not_held_back_for_marks_it_cannot_store() {
    let (mut h, ids) = stored(30);
    let mut sent = vec![];
    for _ in 0..100 {
        for s in h.poll_all() {
            sent.push(s.id.clone());
            h.answer(&s, delivered());
        }
        // Every write fails (a full quota): the marks cannot be stored.
        if h.e.take_write(h.now, false).is_some() {
            h.e.write_done(Err("QUOTA_BYTES quota exceeded".into()), h.now);
        }
        h.now += 10;
    }
    assert_eq!(sent, ids, "all 30 delivered, not only concurrency + batch (11)");
}
