#![cfg(not(target_arch = "wasm32"))]
//! The whole tracker core (`core::tracker`) driven through its commands and effects, as the shell
//! drives it, with a fake storage, a fake server that keeps every POST, and a `beforeSend` that
//! calls back in. Property tests interleave calls made before and after the start, answers in
//! any order, lazy restores (segments read one `get` at a time), failed reads and worker stops at
//! any point; the invariant: every event whose `track` resolved `queued` reaches the server or is
//! reported in the drops, and nothing is sent that was not tracked.

mod engine_harness;
mod stored;

use engine_harness::{config, EXT, T0};
use inhouse_tracker::core::engine::{Engine, IndexState, Send, INDEX_KEY, SEGMENT_PREFIX};
use inhouse_tracker::core::event::{EventName, Props};
use inhouse_tracker::core::origin::{Extension, Origin};
use inhouse_tracker::core::policy::Verdict;
use inhouse_tracker::core::tracker::{Command, Effect, Facts, Found, Outcome, Phase, ProfileChange, Reply, StoredValue, TrackCall, Tracker};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// An answer the shell owes the tracker.
#[derive(Debug)]
enum Owed {
    Read(Command),
    Write(Vec<(String, String)>),
    Send(Send),
    /// An answer given back as it is (a session read or write, the platform, the microtask).
    Reply(Command),
}

/// The fake browser and server, and what the customer saw.
#[derive(Default)]
struct World {
    store: BTreeMap<String, String>,
    /// Every POST the server received: (event id, event name).
    posts: Vec<(String, String)>,
    /// Events a 2xx answered.
    delivered: BTreeSet<String>,
    /// Ids `onDrop` reported.
    dropped: BTreeSet<String>,
    /// Events counted lost at the end (`stats().dropped.corrupt`: stored segments missing when
    /// read, whose ids are gone with them; `onError` says so, once a minute).
    lost_reported: u64,
    /// Events the workers before a rebuilt queue counted lost (a rebuild starts the counters over).
    lost_before_rebuild: u64,
    /// Each reply's outcome.
    outcomes: HashMap<u64, Outcome>,
    /// Names tracked, by reply (what may be sent).
    names: HashMap<u64, String>,
    next_reply: u64,
}

struct Shell {
    core: Tracker,
    owed: VecDeque<Owed>,
    now: u64,
    /// `beforeSend` tracks a companion event for events with this name (a hook that calls back).
    hook_calls_back: bool,
    /// The next reads fail (storage unreadable for a while).
    failing_reads: u32,
    /// Status the server answers.
    status_ok: bool,
}

fn facts(before_send: bool) -> Facts {
    Facts { extension: Extension::chrome(EXT), extension_version: Some("1.0.0".into()), before_send, ..Facts::default() }
}

impl Shell {
    fn new(before_send: bool, now: u64) -> Shell {
        Shell::with_config(before_send, now, |_| {})
    }

    fn with_config(before_send: bool, now: u64, f: impl FnOnce(&mut inhouse_tracker::core::config::Config)) -> Shell {
        let config = config(|c| {
            c.retry.base_delay_ms = 100;
            f(c);
        });
        Shell {
            core: Tracker::new(config, facts(before_send), now ^ 0xABCD),
            owed: VecDeque::new(),
            now,
            hook_calls_back: before_send,
            failing_reads: 0,
            status_ok: true,
        }
    }

    fn command(&mut self, w: &mut World, cmd: Command) {
        self.core.handle(cmd, self.now);
        self.run(w);
    }

    /// Carries out effects until none is left; asynchronous ones become owed answers.
    fn run(&mut self, w: &mut World) {
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                Effect::Settle(Reply(r), outcome) => {
                    assert!(w.outcomes.insert(r, outcome).is_none(), "reply {r} settled twice");
                }
                Effect::BeforeSend { name, props } => {
                    if self.hook_calls_back && matches!(&name, EventName::User(n) if n == "hooked") {
                        // The hook calls back in (the shell holds no borrow): a companion event.
                        let reply = track_call(w, "companion", self.now);
                        self.core.handle(reply.0, self.now);
                    }
                    self.core.handle(Command::BeforeSendDone(Ok(Some((None, props)))), self.now);
                }
                Effect::ReportDrop(d) => {
                    w.dropped.insert(d.id);
                }
                Effect::ReportError(_) | Effect::Mark(_) | Effect::StartOfRun { .. } | Effect::SetUninstallUrl(_) => {}
                Effect::SetAlarm { .. } | Effect::EnsureAlarm { .. } | Effect::ClearAlarm | Effect::MarkBrowserRun => {}
                Effect::SetTimer { .. } | Effect::ClearTimer => {}
                // The microtask runs before any other answer (nothing else is queued before it).
                Effect::PumpSoon => self.owed.push_front(Owed::Reply(Command::Pump { online: true })),
                Effect::Write(plan) => {
                    let mut values = Vec::new();
                    self.core.write_values(&plan, |k, v| values.push((k.to_string(), v.to_string())));
                    self.owed.push_back(Owed::Write(values));
                }
                Effect::Remove(keys) => {
                    for k in keys {
                        w.store.remove(&k);
                    }
                }
                Effect::Read { keys, purpose, .. } => self.owed.push_back(Owed::Read(Command::Read { purpose, result: Ok(found_keys(keys)) })),
                Effect::ListSegments(purpose) => {
                    let keys = w.store.keys().filter(|k| k.starts_with(SEGMENT_PREFIX)).cloned().collect();
                    self.owed.push_back(Owed::Read(Command::Listed { purpose, keys: Some(keys) }));
                }
                Effect::ReadSession(_) => self.owed.push_back(Owed::Reply(Command::SessionRead(None))),
                Effect::ReadPlatform => self.owed.push_back(Owed::Reply(Command::PlatformRead(Some("linux".into())))),
                Effect::StoreSession(_) => self.owed.push_back(Owed::Reply(Command::SessionStored)),
                Effect::Send(send, _) => self.owed.push_back(Owed::Send(send)),
            }
        }
    }

    /// Answers the `k`th owed answer (of those owed now).
    fn answer(&mut self, w: &mut World, k: usize) {
        if self.owed.is_empty() {
            return;
        }
        let owed = self.owed.remove(k % self.owed.len()).unwrap();
        let cmd = match owed {
            Owed::Read(Command::Read { purpose, result: Ok(Found(keys)) }) => {
                let result = if self.failing_reads > 0 {
                    self.failing_reads -= 1;
                    Err("storage is unavailable".into())
                } else {
                    // Read now, when the answer arrives: writes made meanwhile are seen.
                    Ok(Found(keys.into_iter().map(|v| stored_value(&w.store, v.key)).collect()))
                };
                Command::Read { purpose, result }
            }
            Owed::Read(cmd) | Owed::Reply(cmd) => cmd,
            Owed::Write(values) => {
                w.store.extend(values);
                Command::Written(Ok(()))
            }
            Owed::Send(send) => {
                let name = send_name(&send);
                w.posts.push((send.id.clone(), name));
                let verdict = if self.status_ok {
                    w.delivered.insert(send.id.clone());
                    Verdict::Delivered
                } else {
                    engine_harness::retry(None)
                };
                Command::Sent { slot: send.slot, verdict }
            }
        };
        self.command(w, cmd);
    }

    /// Lets time pass and runs the loop's turn (a timer or the pump's microtask).
    fn tick(&mut self, w: &mut World, ms: u64) {
        self.now += ms;
        self.command(w, Command::Timer { online: true });
    }

    /// Answers everything, as long as anything is owed or due, until the queue is empty.
    fn settle_all(&mut self, w: &mut World) {
        self.failing_reads = 0;
        self.status_ok = true;
        for _ in 0..50_000 {
            if self.owed.is_empty() {
                self.tick(w, 60_000);
                if self.owed.is_empty() {
                    return;
                }
            }
            self.answer(w, 0);
        }
        panic!("the tracker never went quiet: {} answers owed", self.owed.len());
    }
}

fn found_keys(keys: Vec<String>) -> Found {
    Found(keys.into_iter().map(|key| StoredValue { key, text: None, present: false }).collect())
}

fn stored_value(store: &BTreeMap<String, String>, key: String) -> StoredValue {
    let text = store.get(&key).cloned();
    StoredValue { present: text.is_some(), text, key }
}

fn send_name(send: &Send) -> String {
    send.name.clone()
}

/// A `track` command for `name`, with its reply (recorded as tracked).
fn track_call(w: &mut World, name: &str, now: u64) -> (Command, u64) {
    w.next_reply += 1;
    let r = w.next_reply;
    w.names.insert(r, name.to_string());
    let call = TrackCall {
        name: EventName::User(name.into()),
        props: Props::of_strings(&[("n", &r.to_string())]),
        dedup_key: None,
        origin: Origin::default(),
        at: now,
    };
    (Command::Track { call, from: None, reply: Reply(r) }, r)
}

#[derive(Debug, Clone)]
enum Op {
    Track,
    Hooked,
    Identify,
    Reset,
    Answer(usize),
    Tick(u64),
    FailReads(u32),
    ServerDown(bool),
    /// `shutdown()`: what is pending is stored, the tracker stops, and the extension's next start
    /// (a new tracker) goes on.
    Shutdown,
    /// Other code clears `chrome.storage.local` (the loader hears of it: `storageLost`).
    ClearStorage,
    /// The worker stops: everything in memory and every owed answer is gone (a send owed may
    /// have reached the server first).
    Stop {
        sent_first: bool,
    },
    /// The worker stops, and storage loses or damages the index before the next start (no
    /// `chrome.storage.onChanged` tells a running worker).
    StopAndDamageIndex(IndexDamage),
}

#[derive(Debug, Clone)]
enum IndexDamage {
    Removed,
    /// The byte at this position (modulo the length) replaced.
    Byte(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Track),
        1 => Just(Op::Hooked),
        1 => Just(Op::Identify),
        1 => Just(Op::Reset),
        8 => (0usize..8).prop_map(Op::Answer),
        2 => (0u64..3_000).prop_map(Op::Tick),
        1 => (1u32..3).prop_map(Op::FailReads),
        1 => any::<bool>().prop_map(Op::ServerDown),
        1 => any::<bool>().prop_map(|sent_first| Op::Stop { sent_first }),
        1 => Just(Op::ClearStorage),
        1 => Just(Op::Shutdown),
        1 => prop_oneof![Just(IndexDamage::Removed), (0usize..200, any::<u8>()).prop_map(|(at, b)| IndexDamage::Byte(at, b))].prop_map(Op::StopAndDamageIndex),
    ]
}

fn play(ops: &[Op], before_send: bool) -> World {
    let mut w = World::default();
    let mut now = T0;
    let mut s = Shell::new(before_send, now);
    s.run(&mut w);
    // The replies of the calls made before this tracker (its predecessors' stopped with them).
    let mut first_reply = 0;
    for op in ops {
        match op {
            Op::Track | Op::Hooked => {
                let name = if matches!(op, Op::Hooked) { "hooked" } else { "plain" };
                let (cmd, _) = track_call(&mut w, name, s.now);
                s.command(&mut w, cmd);
            }
            Op::Identify => {
                w.next_reply += 1;
                let r = w.next_reply;
                w.names.insert(r, "$identify".into());
                s.command(
                    &mut w,
                    Command::Identify { user_id: format!("user-{r}"), traits: Props::of_strings(&[]), from: None, at: s.now, reply: Reply(r) },
                );
            }
            Op::Reset => {
                w.next_reply += 1;
                let r = w.next_reply;
                s.command(&mut w, Command::Profile { change: ProfileChange::Reset, reply: Reply(r) });
            }
            Op::Answer(k) => s.answer(&mut w, *k),
            Op::Tick(ms) => s.tick(&mut w, *ms),
            Op::FailReads(n) => s.failing_reads = *n,
            Op::ServerDown(down) => s.status_ok = !down,
            // What was stored is gone; the tracker writes its queue again from memory. Events
            // only storage held (a worker still reading its start) are gone with it, and a worker
            // stopped before the rewrite lands loses what only it held: no copy is left anywhere
            // (the README says so). So the clear comes to a running tracker, and the rewrite
            // lands before anything else.
            Op::ClearStorage if s.core.phase() == Phase::Running => {
                w.store.clear();
                s.command(&mut w, Command::StorageLost);
                while let Some(k) = s.owed.iter().position(|o| matches!(o, Owed::Write(_) | Owed::Reply(Command::Pump { .. }))) {
                    s.answer(&mut w, k);
                }
            }
            Op::ClearStorage => {}
            Op::Shutdown => {
                w.next_reply += 1;
                let r = w.next_reply;
                s.command(&mut w, Command::Shutdown { reply: Reply(r) });
                // Storage answers (the stored queue may still be read, reads may fail a while).
                for _ in 0..1_000 {
                    if w.outcomes.contains_key(&r) || s.owed.is_empty() {
                        break;
                    }
                    s.failing_reads = 0;
                    s.answer(&mut w, 0);
                }
                assert_eq!(w.outcomes.get(&r), Some(&Outcome::Done), "shutdown settles once what was pending is stored");
                // Nothing is left waiting: every call this tracker took is settled (stored or refused).
                let unsettled: Vec<_> = w.names.iter().filter(|(r, _)| **r > first_reply && !w.outcomes.contains_key(r)).collect();
                assert!(unsettled.is_empty(), "calls left unsettled by shutdown: {unsettled:?}");
                now = s.now + 1_000;
                let hook = s.hook_calls_back;
                s = Shell::new(hook, now);
                s.run(&mut w);
                first_reply = w.next_reply;
            }
            Op::StopAndDamageIndex(damage) => {
                // Events a clear took before they were read are counted only through the index
                // that still names their segments: the damage comes when it names none missing.
                // The counters start over with a rebuilt queue: what was counted lost (and
                // reported) by this worker, or by those before it, in the index, is kept here.
                let counted = stored_corrupt(&w.store).max(s.core.stats(s.now).dropped.corrupt);
                let damaged = match (damage, w.store.get(INDEX_KEY).filter(|index| names_only_stored(&w.store, index))) {
                    (IndexDamage::Removed, Some(_)) => w.store.remove(INDEX_KEY).is_some(),
                    (IndexDamage::Byte(at, b), Some(index)) => {
                        let mut bytes = index.clone().into_bytes();
                        let at = at % bytes.len();
                        bytes[at] = *b;
                        w.store.insert(INDEX_KEY.into(), String::from_utf8_lossy(&bytes).into_owned());
                        true
                    }
                    _ => false,
                };
                if damaged {
                    w.lost_before_rebuild += counted;
                }
                now = s.now + 1_000;
                let hook = s.hook_calls_back;
                s = Shell::new(hook, now);
                s.run(&mut w);
                first_reply = w.next_reply;
            }
            Op::Stop { sent_first } => {
                if *sent_first {
                    // Sends already out reach the server; their answers are lost with the worker.
                    for owed in &s.owed {
                        if let Owed::Send(send) = owed {
                            w.posts.push((send.id.clone(), send_name(send)));
                            if s.status_ok {
                                w.delivered.insert(send.id.clone());
                            }
                        }
                    }
                }
                now = s.now + 1_000;
                let hook = s.hook_calls_back;
                s = Shell::new(hook, now);
                s.run(&mut w);
                first_reply = w.next_reply;
            }
        }
    }
    s.settle_all(&mut w);
    w.lost_reported = w.lost_before_rebuild + s.core.stats(s.now).dropped.corrupt;
    w
}

/// Whether every segment the stored `index` names is stored (an index already damaged names
/// nothing: the queue will be rebuilt from the segments).
fn names_only_stored(store: &BTreeMap<String, String>, index: &str) -> bool {
    if Engine::index_state(Some(index), true) != IndexState::Readable {
        return true;
    }
    let segs = stored::index(index)["segs"].as_array().unwrap().iter().map(|s| s["s"].as_u64().unwrap()).collect::<Vec<_>>();
    segs.iter().all(|n| store.contains_key(&format!("{SEGMENT_PREFIX}{n}")))
}

/// The events the stored index counts lost (`dropped.corrupt`), 0 without a readable index.
fn stored_corrupt(store: &BTreeMap<String, String>) -> u64 {
    match store.get(INDEX_KEY) {
        Some(index) if Engine::index_state(Some(index), true) == IndexState::Readable => {
            stored::index(index)["totals"]["dropped"]["corrupt"].as_u64().unwrap()
        }
        _ => 0,
    }
}

fn check(w: &World) {
    let tracked: BTreeSet<&str> = w.names.values().map(String::as_str).collect();
    let mut unaccounted = Vec::new();
    for (r, outcome) in &w.outcomes {
        if let Outcome::Track { id, status: "queued" } = outcome {
            if !w.delivered.contains(id) && !w.dropped.contains(id) {
                unaccounted.push(format!("reply {r} ({:?})", w.names.get(r)));
            }
        }
    }
    // Each event that resolved queued is delivered, or reported: by id (`onDrop`), or counted
    // among the events of stored segments found missing (their ids went with them).
    assert!(unaccounted.len() as u64 <= w.lost_reported, "resolved queued, never delivered nor reported: {unaccounted:?}");
    for (id, name) in &w.posts {
        assert!(name.starts_with('$') || tracked.contains(name.as_str()), "sent {name} {id}, never tracked");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_queued_event_is_delivered_or_reported(ops in prop::collection::vec(op(), 1..80)) {
        check(&play(&ops, false));
    }

    #[test]
    fn with_a_before_send_that_calls_back(ops in prop::collection::vec(op(), 1..80)) {
        check(&play(&ops, true));
    }
}

#[test]
fn calls_before_the_start_wait_and_are_stored_in_order() {
    let mut w = World::default();
    let mut s = Shell::new(false, T0);
    s.run(&mut w);
    let (first, r1) = track_call(&mut w, "early", s.now);
    s.command(&mut w, first);
    let (second, r2) = track_call(&mut w, "early", s.now);
    s.command(&mut w, second);
    assert!(w.outcomes.is_empty(), "nothing settles before the start");
    s.settle_all(&mut w);
    check(&w);
    let ids: Vec<&String> = [r1, r2]
        .iter()
        .map(|r| match &w.outcomes[r] {
            Outcome::Track { id, status: "queued" } => id,
            other => panic!("{other:?}"),
        })
        .collect();
    let sent: Vec<&String> = w.posts.iter().filter(|(_, n)| n == "early").map(|(id, _)| id).collect();
    assert_eq!(sent, ids, "sent once each, in call order");
}

#[test]
fn a_hook_that_tracks_gets_its_event_stored_and_is_not_passed_to_itself() {
    let mut w = World::default();
    let mut s = Shell::new(true, T0);
    s.run(&mut w);
    s.settle_all(&mut w);
    let (hooked, r) = track_call(&mut w, "hooked", s.now);
    s.command(&mut w, hooked);
    s.settle_all(&mut w);
    check(&w);
    assert!(matches!(w.outcomes[&r], Outcome::Track { status: "queued", .. }));
    assert_eq!(w.posts.iter().filter(|(_, n)| n == "companion").count(), 1, "the hook's own event, sent once");
    assert_eq!(w.posts.iter().filter(|(_, n)| n == "hooked").count(), 1);
}

/// A started tracker that stored `n` events named "plain" in one turn, none delivered (the server
/// is down).
fn stored_while_down(n: usize) -> (World, Shell) {
    let mut w = World::default();
    let mut s = Shell::new(false, T0);
    s.run(&mut w);
    s.settle_all(&mut w);
    s.status_ok = false;
    for _ in 0..n {
        let (cmd, _) = track_call(&mut w, "plain", s.now);
        s.core.handle(cmd, s.now);
    }
    s.tick(&mut w, 0);
    while let Some(k) = s.owed.iter().position(|o| matches!(o, Owed::Write(_))) {
        s.answer(&mut w, k);
    }
    (w, s)
}

#[test]
fn a_stop_while_segments_are_read_one_get_at_a_time_loses_nothing() {
    // 1,200 events in three segments.
    let (mut w, mut s) = stored_while_down(1_200);
    // A new worker reads the index, then the first segments, and stops before the rest.
    s = Shell::new(false, s.now + 1_000);
    s.run(&mut w);
    for _ in 0..6 {
        s.answer(&mut w, 0);
    }
    s = Shell::new(false, s.now + 1_000);
    s.run(&mut w);
    s.settle_all(&mut w);
    check(&w);
    assert_eq!(w.delivered.len(), 1_200 + w.posts.iter().filter(|(_, n)| n.starts_with('$')).map(|(id, _)| id).collect::<BTreeSet<_>>().len());
}

#[test]
fn what_a_call_evicts_is_settled_and_reported_with_that_call_not_at_the_loops_next_turn() {
    // A burst in one turn of the event loop: no microtask, no write answer, no send answer
    // between the calls. The events the queue bound evicts must be settled (and reported) as
    // they go, or a 200,000-call turn keeps every eviction's notes in memory until it ends.
    let mut w = World::default();
    let mut s = Shell::with_config(false, T0, |c| c.limits.max_queue_events = 10);
    s.run(&mut w);
    s.settle_all(&mut w);
    let replies: Vec<u64> = (0..30)
        .map(|_| {
            let (cmd, reply) = track_call(&mut w, "burst", s.now);
            s.command(&mut w, cmd);
            reply
        })
        .collect();
    let evicted = replies.iter().filter(|r| matches!(w.outcomes.get(r), Some(Outcome::Track { status: "evicted", .. }))).count();
    assert_eq!(evicted, 20, "settled within the turn: {:?}", replies.iter().map(|r| w.outcomes.get(r)).collect::<Vec<_>>());
    assert_eq!(w.dropped.len(), 20, "reported within the turn");
    s.settle_all(&mut w);
    check(&w);
}

#[test]
fn an_index_lost_while_the_worker_was_stopped_is_rebuilt_and_nothing_is_written_over() {
    // Three workers: the first stores 30 events with the server down; storage loses the index
    // (the segments stay) or damages it while no worker runs; the next start lists the stored
    // segments before any write, rebuilds the queue from them, and numbers its own past them.
    // The index after the damage (`None`: removed).
    type Damaged = fn(&str) -> Option<String>;
    let damages: [(&str, Damaged); 3] = [
        ("removed", |_| None),
        // The last byte of the last segment's line: its done-marks, or its event count.
        ("a byte changed", |index| Some(format!("{}{}", &index[..index.len() - 1], if index.ends_with('1') { '2' } else { '1' }))),
        // The first version's index (no checksum) naming no segment.
        ("an index without a checksum naming none", |_| Some("1 1 1\n0 0 0 0 0 0 0".into())),
    ];
    for (damage, damaged) in damages {
        let (mut w, mut s) = stored_while_down(30);
        let stored: Vec<String> = w.store.keys().filter(|k| k.starts_with(SEGMENT_PREFIX)).cloned().collect();
        assert!(!stored.is_empty());
        match damaged(&w.store[INDEX_KEY]) {
            None => drop(w.store.remove(INDEX_KEY)),
            Some(index) => drop(w.store.insert(INDEX_KEY.into(), index)),
        }
        s = Shell::new(false, s.now + 1_000);
        s.run(&mut w);
        let (cmd, _) = track_call(&mut w, "after", s.now);
        s.command(&mut w, cmd);
        s.settle_all(&mut w);
        check(&w);
        let plain: BTreeSet<&String> = w.posts.iter().filter(|(_, n)| n == "plain").map(|(id, _)| id).collect();
        assert_eq!(plain.len(), 30, "{damage}: every stored event delivered");
        assert_eq!(w.posts.iter().filter(|(_, n)| n == "after").count(), 1);
    }
}
