#![cfg(not(target_arch = "wasm32"))]
//! Host tests of the engine under faults: one event that always fails on the network, outages,
//! waits and pauses across restarts, start-up races, damaged storage.

mod engine_harness;
mod stored;

use engine_harness::*;
use inhouse_tracker::core::config::{Config, Credentials};
use inhouse_tracker::core::engine::{segment_key, NETWORK_BACKOFF_CAP_MS, PAUSE_PROBE_MS};
use inhouse_tracker::core::error::ErrorCode;
use std::collections::HashSet;

/// Drives sends until nothing is left or `limit` steps pass; `bad` events always fail on the
/// network, every other one is delivered. Returns the ids delivered.
fn drive(h: &mut H, bad: &HashSet<String>, limit: usize) -> Vec<String> {
    drive_with_traffic(h, bad, limit, 0)
}

/// [`drive`], tracking `per_round` new events each round (an extension in use).
fn drive_with_traffic(h: &mut H, bad: &HashSet<String>, limit: usize, per_round: usize) -> Vec<String> {
    let mut got = vec![];
    for _ in 0..limit {
        h.track_n(per_round);
        h.settle_writes();
        let batch = h.poll_all();
        for s in &batch {
            if bad.contains(&s.id) {
                h.answer(s, unreachable());
            } else {
                got.push(s.id.clone());
                h.answer(s, delivered());
            }
            h.now += 5;
        }
        if h.e.stats(h.now).queued == 0 {
            break;
        }
        if batch.is_empty() {
            h.advance_to_wakeup();
        }
        // New events arrive about once a second.
        h.now += if per_round > 0 { 1_000 } else { 0 };
    }
    got
}

#[test]
fn one_event_failing_on_the_network_does_not_stop_the_others() {
    let mut h = H::with(|c| c.retry.max_attempts = 12);
    let evs = h.track_n(200);
    h.commit();
    let bad: HashSet<String> = [evs[3].id().to_string()].into();
    // The extension keeps tracking: the other events' answers are what show that the network
    // works and the failures are the event's own. Without them it is never charged (see
    // `network_backoff_of_a_lone_event_stays_capped`).
    let delivered: HashSet<String> = drive_with_traffic(&mut h, &bad, 10_000, 1).into_iter().collect();
    for id in H::ids(&evs).iter().filter(|id| !bad.contains(*id)) {
        assert!(delivered.contains(id), "{id} not delivered");
    }
    let notes = h.drain();
    let dropped = drops(&notes);
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!((dropped[0].0.as_str(), dropped[0].1), (evs[3].id(), DropReason::Undeliverable));
    assert!(dropped[0].2.contains("12 times"), "{}", dropped[0].2);
    let st = h.e.stats(h.now);
    assert_eq!((st.delivered as usize, st.dropped.undeliverable, st.dropped.retries_exhausted), (delivered.len(), 1, 0));
}

#[test]
fn the_event_that_failed_is_not_the_probe() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(3);
    h.commit();
    let first = h.poll().unwrap();
    assert_eq!(first.id, evs[0].id());
    let rest = h.poll_all();
    for s in &rest {
        h.answer(s, delivered());
    }
    h.answer(&first, unreachable());
    h.track_n(1);
    h.advance_to_wakeup();
    let probe = h.poll().expect("a probe");
    assert_ne!(probe.id, evs[0].id(), "probing with the event that just failed proves nothing");
}

#[test]
fn an_outage_charges_no_event() {
    let mut h = H::with(|c| c.retry.max_attempts = 2);
    let evs = h.track_n(20);
    h.commit();
    // Everything fails on the network for a long while (many rounds of backoff)...
    let all: HashSet<String> = H::ids(&evs).into_iter().collect();
    drive(&mut h, &all, 400);
    assert!(drops(&h.drain()).is_empty(), "an outage dropped events");
    // ...then the network is back: every event is delivered, none dropped.
    let delivered = drive(&mut h, &HashSet::new(), 10_000);
    assert_eq!(delivered.len(), 20);
    let st = h.e.stats(h.now);
    assert_eq!((st.delivered, st.dropped.undeliverable), (20, 0));
}

#[test]
fn requests_failing_together_count_as_one_failure() {
    let mut h = H::with(|c| {
        c.concurrency = 6;
        c.retry.base_delay_ms = 1_000;
    });
    h.track_n(12);
    h.commit();
    let batch = h.poll_all();
    assert_eq!(batch.len(), 6);
    for s in &batch {
        h.answer(s, unreachable());
    }
    h.settle_writes();
    let wait = h.e.next_wakeup(h.now).unwrap() - h.now;
    assert!(wait <= 1_000, "six requests out together failed: one failure, a first backoff (≤ 1 s), not {wait} ms");
    // The same for server errors.
    let mut h = H::with(|c| c.concurrency = 6);
    h.track_n(12);
    h.commit();
    for s in &h.poll_all() {
        h.answer(s, retry(None));
    }
    h.settle_writes();
    let wait = h.e.next_wakeup(h.now).unwrap() - h.now;
    assert!(wait <= 1_000, "{wait} ms");
}

#[test]
fn a_retry_after_wait_survives_a_restart() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(2);
    h.commit();
    let s = h.poll().unwrap();
    let t = h.now;
    h.answer(&s, retry(Some(60_000)));
    h.settle_writes();
    // The worker restarts 2 s later: nothing goes out before the server's deadline.
    let mut r = h.store.restore(h.config.clone(), 9, t + 2_000);
    assert!(r.poll_send(t + 2_000, true).is_none());
    assert!(r.poll_send(t + 59_999, true).is_none());
    assert_eq!(r.next_wakeup(t + 2_000), Some(t + 60_000));
    assert_eq!(r.stats(t + 2_000).state, "backoff");
    let probe = r.poll_send(t + 60_000, true).expect("after the wait");
    assert_eq!(probe.id, evs[0].id());
    assert!(r.poll_send(t + 60_000, true).is_none(), "one probe first");
}

#[test]
fn a_pause_survives_a_restart_with_the_same_credentials_only() {
    let mut h = H::with(|_| {});
    h.track_n(2);
    h.commit();
    let s = h.poll().unwrap();
    let t = h.now;
    h.answer(&s, pause());
    h.settle_writes();
    let mut r = h.store.restore(h.config.clone(), 9, t + 1_000);
    assert_eq!(r.stats(t + 1_000).state, "paused");
    assert!(r.poll_send(t + 1_000, true).is_none());
    assert!(r.poll_send(t + PAUSE_PROBE_MS, true).is_some(), "the probe is due as before the restart");
    // Started again with other credentials: not paused.
    let mut other = h.config.clone();
    other.credentials = Credentials { token_id: "tid-new".into(), token_secret: "s".into() };
    let mut r = h.store.restore(other, 9, t + 1_000);
    assert!(r.poll_send(t + 1_000, true).is_some());
    // New credentials in this life are stored too: a restart is not paused.
    h.e.set_credentials(Credentials { token_id: "tid".into(), token_secret: "fixed".into() });
    h.settle_writes();
    assert_eq!(h.store.index_json()["pauseUntil"], 0);
}

#[test]
fn a_refusal_of_replaced_credentials_does_not_pause_the_new_ones() {
    let mut h = H::with(|_| {});
    let evs = h.track_n(3);
    h.commit();
    let old = h.poll().unwrap();
    h.e.set_credentials(Credentials { token_id: "tid".into(), token_secret: "new".into() });
    h.answer(&old, pause());
    assert_ne!(h.e.stats(h.now).state, "paused");
    let sent: Vec<String> = h.poll_all().into_iter().map(|s| s.id).collect();
    assert!(sent.contains(&evs[0].id().to_string()), "the refused event is sent again with the new credentials: {sent:?}");
    assert_eq!(sent.len(), 3);
}

#[test]
fn opting_out_before_the_stored_queue_is_read_wins() {
    let mut h = H::with(|_| {});
    h.track_n(3);
    h.commit();
    let mut e = Engine::new(h.config.clone(), 3);
    e.set_enabled(false, false, h.now);
    let index = h.store.index();
    e.restore(index.as_deref(), |k| h.store.0.get(k).cloned(), h.now);
    assert!(!e.enabled(), "the stored 'enabled' must not overwrite the user's later choice");
    assert!(e.poll_send(h.now, true).is_none());
    let w = e.take_write(h.now, false).expect("the choice is stored");
    h.store.apply(&w);
    assert_eq!(h.store.index_json()["enabled"], false);
    // With purge: the stored events are purged once read.
    let mut e = Engine::new(h.config.clone(), 3);
    e.set_enabled(false, true, h.now);
    let index = h.store.index();
    e.restore(index.as_deref(), |k| h.store.0.get(k).cloned(), h.now);
    assert_eq!((e.stats(h.now).queued, e.stats(h.now).dropped.purged), (0, 3));
}

/// A store holding `n` events in two segments, none delivered.
fn stored_queue(n: usize) -> H {
    let mut h = H::with(|_| {});
    h.track_n(n / 2);
    h.commit();
    h.track_n(n - n / 2);
    h.commit();
    h
}

fn ids_sent(e: &mut Engine, now: u64) -> Vec<String> {
    deliver_on(e, now, |_| {})
}

#[test]
fn an_unreadable_index_is_rebuilt_from_the_segments() {
    let h = stored_queue(10);
    let all: Vec<(String, Option<String>)> = h.store.segment_keys().into_iter().map(|k| (k.clone(), h.store.0.get(&k).cloned())).collect();
    assert_eq!(all.len(), 2);
    assert_eq!(Engine::index_state(None, true), IndexState::Unreadable, "a key holding something that is not text");
    assert_eq!(Engine::index_state(Some("garbage"), true), IndexState::Unreadable);
    assert_eq!(Engine::index_state(None, false), IndexState::Absent);
    assert_eq!(Engine::index_state(h.store.index().as_deref(), true), IndexState::Readable);
    let mut e = Engine::new(h.config.clone(), 4);
    e.rebuild(all, IndexState::Unreadable, h.now);
    let errs = errors(&e.drain_notes());
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].code, ErrorCode::StorageError);
    assert!(errs[0].message.contains("rebuilt") && errs[0].message.contains("10 events"), "{}", errs[0].message);
    let mut store = h.store.clone();
    let w = e.take_write(h.now, false).expect("a good index is written");
    store.apply(&w);
    e.write_done(Ok(()), h.now);
    assert_eq!(store.index_segs(), vec![1, 2]);
    let sent = ids_sent(&mut e, h.now);
    let mut want =
        h.store.segment_keys().iter().flat_map(|k| stored::segment(&h.store.0[k])).map(|e| e["i"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    want.sort();
    let mut got = sent.clone();
    got.sort();
    assert_eq!(got, want, "every stored event is sent");
    // New segments are numbered past the rebuilt ones.
    let mut h2 = H::new(h.config.clone());
    h2.e = e;
    h2.track_n(1);
    let w = h2.e.take_write(h2.now, false).unwrap();
    assert!(w.set.iter().any(|(k, _)| k == &segment_key(3)), "{:?}", w.set.iter().map(|x| &x.0).collect::<Vec<_>>());
}

#[test]
fn a_rebuild_from_segments_listed_out_of_order_and_twice_sends_each_event_once() {
    let h = stored_queue(1200);
    let mut all: Vec<(String, Option<String>)> = h.store.segment_keys().into_iter().map(|k| (k.clone(), h.store.0.get(&k).cloned())).collect();
    let segments = all.len() as u64;
    assert!(segments >= 3, "{segments}");
    // As a listing might give them: not in order, and one key twice.
    all.reverse();
    all.insert(1, all[2].clone());
    let mut e = Engine::new(h.config.clone(), 4);
    e.rebuild(all, IndexState::Unreadable, h.now);
    let mut store = h.store.clone();
    let w = e.take_write(h.now, false).expect("a good index is written");
    store.apply(&w);
    e.write_done(Ok(()), h.now);
    assert_eq!(store.index_segs(), (1..=segments).collect::<Vec<_>>(), "each segment once, in order");
    let mut sent = ids_sent(&mut e, h.now);
    assert_eq!(sent.len(), 1200);
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), 1200, "none sent twice");
}

#[test]
fn an_index_listing_segments_out_of_order_sends_every_event() {
    let h = stored_queue(10);
    let index = h.store.index().unwrap();
    let mut lines: Vec<&str> = stored::index_body(&index).lines().collect();
    lines.swap(2, 3);
    // Sealed again: the reading behind the checksum (an index of the first version, which has
    // none, is read the same way).
    let swapped = stored::seal(&lines.join("\n"));
    assert_eq!(Engine::index_state(Some(&swapped), true), IndexState::Readable);
    let mut e = Engine::new(h.config.clone(), 4);
    e.restore(Some(&swapped), |k| h.store.0.get(k).cloned(), h.now);
    assert!(e.drain_notes().is_empty());
    let sent = ids_sent(&mut e, h.now);
    assert_eq!(sent.len(), 10);
    let st = e.stats(h.now);
    assert_eq!((st.queued, st.in_flight, st.delivered), (0, 0, 10));
}

#[test]
fn garbage_counters_make_the_index_unreadable_not_huge() {
    let h = stored_queue(4);
    let index = h.store.index().unwrap();
    // Sealed again, so that the numbers are what is judged, not the checksum.
    let body = stored::index_body(&index);
    let mut lines: Vec<String> = body.lines().map(String::from).collect();
    lines[1] = "18446744073709551615 0 0 0 0 0 0 0".into();
    let bad = stored::seal(&lines.join("\n"));
    assert_eq!(Engine::index_state(Some(&bad), true), IndexState::Unreadable);
    // A segment line claiming more events than a segment holds is damage too.
    let mut lines: Vec<String> = body.lines().map(String::from).collect();
    lines[2] = "1 99999999999".into();
    assert_eq!(Engine::index_state(Some(&stored::seal(&lines.join("\n"))), true), IndexState::Unreadable);
    assert_eq!(Engine::index_state(Some(&stored::seal(body)), true), IndexState::Readable, "the same, sealed again, reads");
}

#[test]
fn every_lost_segment_is_reported_in_one_error() {
    let h = stored_queue(10);
    let mut e = Engine::new(h.config.clone(), 4);
    let index = h.store.index();
    e.restore(index.as_deref(), |_| None, h.now);
    let errs = errors(&e.drain_notes());
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains(&segment_key(1)) && errs[0].message.contains(&segment_key(2)), "{}", errs[0].message);
    assert!(errs[0].message.contains("10 events lost"), "{}", errs[0].message);
    assert_eq!(e.stats(h.now).dropped.corrupt, 10);
}

#[test]
fn no_key_written_since_the_start_is_an_orphan() {
    let h = stored_queue(4);
    let index = h.store.index();
    // Segments 3 and 4 were written after the index was read at start.
    let keys = vec![segment_key(1), segment_key(2), segment_key(3), segment_key(4), segment_key(0)];
    assert_eq!(Engine::orphan_segments(index.as_deref(), &keys), vec![segment_key(0)]);
}

#[test]
fn network_backoff_of_a_lone_event_stays_capped() {
    // With nothing else to send, a lone failing event is never charged (no evidence) and keeps
    // retrying within the network cap.
    let mut h = H::with(|c| c.retry.max_attempts = 2);
    let evs = h.track_n(1);
    h.commit();
    let bad: HashSet<String> = [evs[0].id().to_string()].into();
    let t = h.now;
    drive(&mut h, &bad, 200);
    assert!(h.now - t >= 100 * NETWORK_BACKOFF_CAP_MS / 4);
    assert!(drops(&h.drain()).is_empty());
    assert_eq!(h.e.stats(h.now).queued, 1);
}

#[test]
fn a_queue_cleared_by_other_code_is_written_again() {
    let mut h = stored_queue(10);
    let sent = h.poll_all();
    for s in &sent[..3] {
        h.answer(s, delivered());
    }
    for s in &sent[3..] {
        h.answer(s, retry(None));
    }
    // The extension's own code: chrome.storage.local.clear().
    h.store.0.clear();
    h.e.storage_lost(h.now);
    let errs = errors(&h.drain());
    assert!(errs.iter().any(|e| e.code == ErrorCode::StorageError && e.message.contains("7 queued events")), "{errs:?}");
    assert_eq!(h.settle_writes(), 1);
    let mut r = h.store.restore(h.config.clone(), 5, h.now + 8 * 86_400_000);
    assert!(r.drain_notes().is_empty(), "the rewritten queue reads back whole");
    let got = ids_sent(&mut r, h.now + 8 * 86_400_000);
    let delivered: HashSet<&String> = sent[..3].iter().map(|s| &s.id).collect();
    assert_eq!(got.len(), 7);
    assert!(got.iter().all(|id| !delivered.contains(id)), "delivered events are not sent again");
}

mod damaged {
    use super::*;
    use proptest::prelude::*;

    /// What damage does to a stored index: bytes changed, lines swapped, lines lost, numbers
    /// blown up.
    #[derive(Clone, Debug)]
    enum Damage {
        Byte(usize, u8),
        SwapLines(usize, usize),
        DropLine(usize),
        HugeNumber(usize),
        Truncate(usize),
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            (0usize..400, any::<u8>()).prop_map(|(i, b)| Damage::Byte(i, b)),
            (0usize..8, 0usize..8).prop_map(|(a, b)| Damage::SwapLines(a, b)),
            (0usize..8).prop_map(Damage::DropLine),
            (0usize..60).prop_map(Damage::HugeNumber),
            (0usize..400).prop_map(Damage::Truncate),
        ]
    }

    fn apply(index: &str, d: &Damage) -> String {
        let mut lines: Vec<String> = index.lines().map(String::from).collect();
        match *d {
            Damage::Byte(i, b) => {
                let mut bytes = index.as_bytes().to_vec();
                if !bytes.is_empty() {
                    let at = i % bytes.len();
                    bytes[at] = b;
                }
                return String::from_utf8_lossy(&bytes).into_owned();
            }
            Damage::SwapLines(a, b) if !lines.is_empty() => {
                let n = lines.len();
                lines.swap(a % n, b % n);
            }
            Damage::DropLine(a) if !lines.is_empty() => {
                let n = lines.len();
                lines.remove(a % n);
            }
            Damage::HugeNumber(k) => {
                let words: Vec<String> = index.split(' ').map(String::from).collect();
                let mut words = words;
                let n = words.len();
                words[k % n] = if k % 2 == 0 { "18446744073709551615" } else { "99999999999999999999999" }.into();
                return words.join(" ");
            }
            Damage::Truncate(n) => return index.chars().take(n).collect(),
            _ => {}
        }
        lines.join("\n")
    }

    /// A stored index as the first version wrote it: no checksum line, version 1.
    pub(super) fn unchecked(index: &str) -> String {
        let body = crate::stored::index_body(index);
        format!("1{}", body.strip_prefix('2').expect("a version-2 index"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Whatever the damage, to an index with a checksum or to one of the first version
        /// (which has none), a start never panics, never shows a counter beyond what JavaScript
        /// represents exactly, and never loses an event without counting it. Damage to a
        /// checksummed index is always seen: the queue is rebuilt from the segments with every
        /// event kept.
        #[test]
        fn a_damaged_index_never_loses_events_silently(damages in proptest::collection::vec(damage(), 1..4), first_version in any::<bool>()) {
            let h = stored_queue(12);
            let original = h.store.index().unwrap();
            let original = if first_version { unchecked(&original) } else { original };
            let mut index = original.clone();
            for d in &damages {
                index = apply(&index, d);
            }
            let mut store = h.store.clone();
            store.0.insert(INDEX_KEY.into(), index.clone());
            let mut e = Engine::new(h.config.clone(), 4);
            let state = store.start(&mut e, h.now);
            let st = e.stats(h.now);
            for n in [st.delivered, st.retried, st.dropped.corrupt, st.dropped.rejected, st.dropped.evicted, st.dropped.purged] {
                prop_assert!(n <= 1 << 53, "a counter read back as {}", n);
            }
            match state {
                // A checksum that holds: the index is the one written (FNV-1a, 53 bits).
                IndexState::Readable => prop_assert_eq!(&index, &original),
                // Read without a checksum (a first-version index, or damage that made one):
                // each of the 12 events is queued, counted lost, named done by the (damaged)
                // index, or in a segment it no longer names below its `next` (an orphan,
                // removed): what an index without a checksum cannot tell from a crash's leftovers.
                IndexState::Unchecked => {
                    let named_done: u64 = index.lines().skip(2).map(|l| l.split(' ').count().saturating_sub(2) as u64).sum();
                    prop_assert!(st.queued as u64 + st.dropped.corrupt + named_done >= 12 || !Engine::orphan_segments(Some(&index), &store.segment_keys()).is_empty(),
                        "events lost silently: queued {}, corrupt {}, done marks {} ({:?})", st.queued, st.dropped.corrupt, named_done, index);
                }
                IndexState::Unreadable => prop_assert_eq!(st.queued, 12, "a rebuilt queue keeps every stored event"),
                IndexState::Absent => unreachable!("the index is stored"),
            }
            // No stored segment is numbered at or past the next one a write makes.
            let mut next = e;
            let mut probe = H::new(h.config.clone());
            std::mem::swap(&mut probe.e, &mut next);
            probe.track_n(1);
            let w = probe.e.take_write(h.now, false).unwrap();
            for (key, _) in w.set.iter().filter(|(k, _)| k.starts_with("inhouse:v1:seg:")) {
                prop_assert!(!store.0.contains_key(key), "the next write overwrites {} ({:?})", key, index);
            }
            // Delivery works after any of it, unless the damage left a readable index that says
            // the user opted out (its consent flag turned to 0): then nothing is sent, and the
            // events stay queued for an opt-in.
            let mut e = Engine::new(h.config.clone(), 4);
            store.start(&mut e, h.now);
            let queued = e.stats(h.now).queued;
            let sent = ids_sent(&mut e, h.now + 8 * 86_400_000);
            prop_assert_eq!(sent.len(), if e.enabled() { queued } else { 0 });
        }
    }
}

/// The segment keys the next write of `e` stores (one event tracked first).
fn next_segment_keys(e: Engine, config: &Config) -> Vec<String> {
    let mut h = H::new(config.clone());
    h.e = e;
    h.track_n(1);
    let w = h.e.take_write(h.now, false).expect("a write");
    w.set.iter().map(|(k, _)| k.clone()).filter(|k| k.starts_with("inhouse:v1:seg:")).collect()
}

#[test]
fn an_index_that_no_longer_names_its_last_segment_is_rebuilt_not_written_over() {
    // Found by the property test: the index's `next` damaged to 0 and the last segment's line
    // lost. Read as it stands, `next` is 2 (past the last segment named) and the next write
    // stores its new segment as segment 2, over the 6 stored events nothing names.
    let h = stored_queue(12);
    let body = stored::index_body(&h.store.index().unwrap()).to_string();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 4, "{body:?}");
    let head = lines[0].replacen(" 3 ", " 0 ", 1);
    let damaged = [head.as_str(), lines[1], lines[2]].join("\n");
    for (index, found) in [
        // With the checksum of the index written: unreadable.
        (format!("{}\n{damaged}", h.store.index().unwrap().split('\n').next().unwrap()), IndexState::Unreadable),
        // The first version's index, which has no checksum: the listing shows segment 2.
        (format!("1{}", damaged.strip_prefix('2').unwrap()), IndexState::Unchecked),
    ] {
        let mut store = h.store.clone();
        store.0.insert(INDEX_KEY.into(), index.clone());
        let mut e = Engine::new(h.config.clone(), 4);
        assert_eq!(store.start(&mut e, h.now), found, "{index:?}");
        assert_eq!(e.stats(h.now).queued, 12, "every stored event kept: {index:?}");
        let errs = errors(&e.drain_notes());
        assert!(errs.iter().any(|e| e.code == ErrorCode::StorageError && e.message.contains("rebuilt")), "{errs:?}");
        assert_eq!(next_segment_keys(e, &h.config), [segment_key(3)], "{index:?}");
    }
}

#[test]
fn an_index_removed_with_segments_stored_is_rebuilt_not_written_over() {
    let h = stored_queue(12);
    let mut store = h.store.clone();
    store.0.remove(INDEX_KEY);
    let mut e = Engine::new(h.config.clone(), 4);
    assert_eq!(store.start(&mut e, h.now), IndexState::Absent);
    assert_eq!(e.stats(h.now).queued, 12);
    let errs = errors(&e.drain_notes());
    assert!(errs.iter().any(|e| e.message.contains("index was missing; the queue was rebuilt from its segments (12 events kept")), "{errs:?}");
    assert_eq!(next_segment_keys(e, &h.config), [segment_key(3)]);
    // Nothing stored at all: a first start, quietly.
    let mut e = Engine::new(h.config.clone(), 4);
    assert_eq!(Store::default().start(&mut e, h.now), IndexState::Absent);
    assert!(e.drain_notes().is_empty());
    assert_eq!(next_segment_keys(e, &h.config), [segment_key(1)]);
}

#[test]
fn an_index_of_the_first_version_is_read_with_its_done_marks_and_written_back_with_a_checksum() {
    // An update from a version that wrote no checksum: the index is trusted once the listing
    // shows it names every stored segment, so what was delivered is not sent again.
    let mut h = stored_queue(12);
    let first = h.poll_all().into_iter().take(4).collect::<Vec<_>>();
    for s in &first {
        h.answer(s, delivered());
    }
    h.commit_with(true);
    let index = h.store.index().unwrap();
    let old = damaged::unchecked(&index);
    let mut store = h.store.clone();
    store.0.insert(INDEX_KEY.into(), old.clone());
    let mut e = Engine::new(h.config.clone(), 4);
    assert_eq!(store.start(&mut e, h.now), IndexState::Unchecked, "{old:?}");
    assert!(e.drain_notes().is_empty(), "nothing to report");
    assert_eq!(e.stats(h.now).queued, 8, "the 4 delivered stay done");
    let sent = deliver_into(&mut e, h.now + 86_400_000, &mut store, |_| {});
    assert_eq!(sent.len(), 8);
    assert!(!sent.iter().any(|id| first.iter().any(|s| &s.id == id)), "nothing delivered is sent again");
    stored::index_body(&store.index().unwrap());
    assert_eq!(Engine::index_state(store.index().as_deref(), true), IndexState::Readable, "written back with its checksum");
}

#[test]
fn the_install_id_is_stored_with_the_first_write_and_kept() {
    use inhouse_tracker::core::engine::INSTALL_KEY;
    let mut h = H::with(|_| {});
    // A first start: nothing stored, a new id, stored by the next write.
    h.e.adopt_install_id(None);
    let id = h.e.install_id().unwrap().to_string();
    let w = h.e.take_write(h.now, false).expect("the new id is written");
    assert!(w.set.iter().any(|(k, v)| k == INSTALL_KEY && v == &id), "{:?}", w.set);
    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    h.track_n(2);
    let w = h.e.take_write(h.now, false).unwrap();
    assert!(!w.set.iter().any(|(k, _)| k == INSTALL_KEY), "stored once, not with every write");
    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    // A restart reads it back; garbage is replaced.
    let mut e = Engine::new(h.config.clone(), 99);
    e.adopt_install_id(h.store.0.get(INSTALL_KEY).map(String::as_str));
    assert_eq!(e.install_id(), Some(id.as_str()));
    let mut e = Engine::new(h.config.clone(), 99);
    e.adopt_install_id(Some("garbage"));
    assert_ne!(e.install_id(), Some("garbage"));
    // An opt-out with purge forgets it; the new one is stored.
    h.e.set_enabled(false, true, h.now);
    let new_id = h.e.install_id().unwrap().to_string();
    assert_ne!(new_id, id);
    let w = h.e.take_write(h.now, false).unwrap();
    assert!(w.set.iter().any(|(k, v)| k == INSTALL_KEY && v == &new_id));
    // Storage cleared by other code: written again.
    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    h.e.storage_lost(h.now);
    let w = h.e.take_write(h.now, false).unwrap();
    assert!(w.set.iter().any(|(k, v)| k == INSTALL_KEY && v == &new_id));
}

#[test]
fn the_last_marks_of_a_burst_are_written_at_once() {
    // A small burst delivered in full: its done-marks do not wait for a batch or the delay, so a
    // worker stopped right after it sends nothing again.
    let mut h = H::with(|_| {});
    h.track_n(3);
    h.commit();
    let sent = h.poll_all();
    for s in &sent[..2] {
        h.answer(s, delivered());
        assert!(h.e.take_write(h.now, false).is_none(), "marks wait while requests are out");
    }
    h.answer(&sent[2], delivered());
    assert_eq!(h.e.next_wakeup(h.now), Some(h.now), "the last marks are due now");
    let w = h.e.take_write(h.now, false).expect("written at once");
    h.store.apply(&w);
    h.e.write_done(Ok(()), h.now);
    let r = h.store.restore(h.config.clone(), 3, h.now);
    assert_eq!(r.stats(h.now).queued, 0, "nothing to send again after a stop");
}
