#![cfg(not(target_arch = "wasm32"))]
//! Host tests of a start that reads the stored index first and the segments later
//! (`Engine::begin_restore`, `Engine::load_segments`): ready after a few hundred bytes, and
//! nothing lost or reordered while the segments are still in storage.

mod engine_harness;
mod stored;

use engine_harness::*;
use inhouse_tracker::core::engine::{segment_key, DropReason, Engine, SEGMENT_EVENTS};
use inhouse_tracker::core::error::ErrorCode;

/// `n` events tracked and stored in one write, then a new worker that read only the index.
fn stored_then_woken(n: usize, tweak: impl FnOnce(&mut inhouse_tracker::core::config::Config)) -> (H, Vec<String>) {
    let mut h = H::with(tweak);
    let evs = h.track_n(n);
    h.commit();
    h.drain();
    let index = h.store.index();
    h.e = Engine::new(h.config.clone(), 5);
    h.e.begin_restore(index.as_deref(), h.now);
    (h, H::ids(&evs))
}

/// Reads the next `count` segments from the harness's store.
fn load(h: &mut H, count: usize) {
    let store = h.store.clone();
    h.e.load_segments(|k| store.0.get(k).cloned(), count, h.now);
}

#[test]
fn the_index_alone_counts_every_stored_event_and_segments_load_oldest_first() {
    let (mut h, ids) = stored_then_woken(1_200, |_| {});
    let st = h.e.stats(h.now);
    assert_eq!((st.queued, st.state), (1_200, "ready"), "stats count the stored events before any segment is read");
    assert!(h.e.loading());
    assert_eq!(h.e.unloaded_keys(2), vec![segment_key(1), segment_key(2)]);
    assert!(h.poll().is_none(), "nothing to send before a segment is read");
    assert!(h.e.flush_status(h.now).is_none(), "flush waits while the stored queue is read");

    load(&mut h, 1);
    assert_eq!(h.e.unloaded_keys(9), vec![segment_key(2), segment_key(3)]);
    assert_eq!(h.e.stats(h.now).queued, 1_200);
    let first: Vec<String> = h.deliver_all();
    assert_eq!(first, ids[..SEGMENT_EVENTS], "the oldest segment goes first, in order");
    load(&mut h, usize::MAX);
    assert!(!h.e.loading());
    assert_eq!(h.deliver_all(), ids[SEGMENT_EVENTS..]);
    assert_eq!(h.e.stats(h.now).queued, 0);
    assert!(h.e.drain_notes().is_empty(), "no error, no drop");
}

#[test]
fn writes_made_while_loading_keep_the_unread_segments_in_the_index() {
    let (mut h, ids) = stored_then_woken(1_000, |_| {});
    load(&mut h, 1);
    // Half of the first segment delivered, one new event tracked, all written.
    for _ in 0..250 {
        let s = h.send_next().unwrap();
        h.answer(&s, delivered());
    }
    h.force_writes();
    assert_eq!(h.store.index_segs(), vec![1, 2], "the done-marks' write names the unread segment 2");
    let new = h.track_n(1);
    h.force_writes();
    assert_eq!(h.store.index_segs(), vec![1, 2, 3], "the unread segment 2 is still named; the new one is 3");
    // The worker dies before segment 2 is read: the next start has everything not delivered.
    let mut r = h.store.restore(h.config.clone(), 9, h.now);
    let again = deliver_on(&mut r, h.now, |_| {});
    let mut want = ids[250..].to_vec();
    want.extend(H::ids(&new));
    assert!(again == want, "every event not delivered, in order ({} of {})", again.len(), want.len());
}

#[test]
fn a_segment_read_late_goes_before_newer_ones() {
    let (mut h, ids) = stored_then_woken(600, |_| {});
    let new = h.track_n(3);
    h.commit();
    // Segment 3 (the new events) is in memory before segments 1 and 2 are read.
    load(&mut h, usize::MAX);
    let mut want = ids.clone();
    want.extend(H::ids(&new));
    assert_eq!(h.deliver_all(), want, "stored events first, then the new ones");
}

#[test]
fn an_opt_out_with_purge_while_loading_reports_every_unread_event_as_dropped() {
    let (mut h, ids) = stored_then_woken(1_200, |_| {});
    load(&mut h, 1);
    let read_first: Vec<(String, DropReason, String)> = drops(&h.drain());
    assert!(read_first.is_empty());
    h.e.set_enabled(false, true, h.now);
    assert!(!h.e.loading(), "calls waiting for the whole queue do not wait for purged segments");
    assert_eq!(h.e.stats(h.now).queued, 0, "nothing queued once purged");
    // The purged segments are still read, only to report their events (the driver's loop).
    while !h.e.unloaded_keys(2).is_empty() {
        load(&mut h, 2);
    }
    h.force_writes();
    assert!(h.store.segment_keys().is_empty(), "every segment removed, read or not");
    let reported = drops(&h.drain());
    assert!(reported.iter().all(|d| d.1 == DropReason::Purged), "all purged");
    let mut reported_ids: Vec<String> = reported.into_iter().map(|d| d.0).collect();
    reported_ids.sort();
    let mut want = ids.clone();
    want.sort();
    assert!(reported_ids == want, "onDrop hears of every one of the 1,200 events once ({} reported)", reported_ids.len());
    let st = h.e.stats(h.now);
    assert_eq!((st.queued, st.dropped.purged), (0, 1_200));
    let r = h.store.restore(h.config.clone(), 9, h.now);
    assert_eq!(r.stats(h.now).queued, 0, "nothing comes back");
}

#[test]
fn a_missing_segment_found_while_loading_loses_only_its_events() {
    let (mut h, ids) = stored_then_woken(1_200, |_| {});
    h.store.0.remove(&segment_key(2));
    load(&mut h, usize::MAX);
    let notes = h.drain();
    let errs = errors(&notes);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].code, ErrorCode::StorageError);
    assert_eq!(errs[0].message, "stored segment inhouse:v1:seg:2 is missing or unreadable; 500 events lost");
    assert_eq!(h.e.stats(h.now).dropped.corrupt, 500);
    let mut want = ids[..500].to_vec();
    want.extend_from_slice(&ids[1_000..]);
    assert_eq!(h.deliver_all(), want);
}

#[test]
fn the_event_bound_counts_unread_segments() {
    let (mut h, ids) = stored_then_woken(1_000, |c| c.limits.max_queue_events = 1_000);
    h.track_n(10);
    // Nothing read yet: the oldest events are evicted once their segment is read.
    load(&mut h, usize::MAX);
    h.settle_writes();
    let st = h.e.stats(h.now);
    assert_eq!((st.queued, st.dropped.evicted), (1_000, 10));
    let sent = h.deliver_all();
    assert!(sent[..990] == ids[10..], "the 10 oldest stored events made room");
}
