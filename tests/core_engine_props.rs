#![cfg(not(target_arch = "wasm32"))]
//! Property tests of the engine: random sequences of tracks, writes (succeeding, failing),
//! sends, answers, clock steps, new credentials and crashes (with the outstanding write applied
//! or not), checked against the invariants the module documentation promises.

use inhouse_tracker::core::config::{validate, Config, Credentials, Options};
use inhouse_tracker::core::engine::{Admission, DropReason, Engine, Note, Send as Req, TicketResult, Write, INDEX_KEY};
use inhouse_tracker::core::error::{Error, ErrorCode};
use inhouse_tracker::core::event::{build_event, EventContext, Props, Rng};
use inhouse_tracker::core::json::Json;
use inhouse_tracker::core::origin::Origin;
use inhouse_tracker::core::policy::Verdict;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

mod stored;

const EXT: &str = "abcdefghijklmnopabcdefghijklmnop";
const T0: u64 = 1_767_225_600_000;

#[derive(Clone, Debug)]
enum Kind {
    Delivered,
    Retry(Option<u64>),
    Reject,
    Unreachable,
    Pause,
}

#[derive(Clone, Debug)]
enum Op {
    Track(usize),
    WriteOk,
    WriteFail,
    /// Take the due write (left outstanding) and poll every send that is allowed.
    Pump {
        online: bool,
    },
    Answer {
        pick: usize,
        kind: Kind,
    },
    Advance(u64),
    NewCredentials,
    /// The worker dies. An outstanding write reached storage (0), did not (1), or only its
    /// `set` did, not its `remove` (2).
    Crash {
        mode: u8,
    },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => Just(Kind::Delivered),
        2 => proptest::option::of(0u64..5_000).prop_map(Kind::Retry),
        1 => Just(Kind::Reject),
        2 => Just(Kind::Unreachable),
        1 => Just(Kind::Pause),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..12).prop_map(Op::Track),
        3 => Just(Op::WriteOk),
        1 => Just(Op::WriteFail),
        4 => proptest::bool::weighted(0.85).prop_map(|online| Op::Pump { online }),
        5 => (0usize..16, kind()).prop_map(|(pick, kind)| Op::Answer { pick, kind }),
        2 => prop_oneof![0u64..2_000, 2_000u64..700_000].prop_map(Op::Advance),
        1 => Just(Op::NewCredentials),
        1 => (0u8..3).prop_map(|mode| Op::Crash { mode }),
    ]
}

#[derive(Clone, Debug)]
struct Setup {
    max_queue_events: usize,
    concurrency: usize,
    max_attempts: u32,
    /// Every `bad_every`-th tracked event always fails at the network level (a proxy refusing
    /// its payload); 0: none does.
    bad_every: u64,
}

fn setup() -> impl Strategy<Value = Setup> {
    (3usize..40, 1usize..5, 1u32..6, prop_oneof![Just(0u64), 3u64..9]).prop_map(|(max_queue_events, concurrency, max_attempts, bad_every)| Setup {
        max_queue_events,
        concurrency,
        max_attempts,
        bad_every,
    })
}

fn config(s: &Setup) -> Config {
    let options = Options { token_id: Some("tid".into()), token_secret: Some("secret".into()), ..Default::default() };
    let (mut c, _) = validate(options, Some(EXT)).unwrap();
    c.limits.max_queue_events = s.max_queue_events;
    c.concurrency = s.concurrency;
    c.retry.max_attempts = s.max_attempts;
    c.retry.base_delay_ms = 100;
    c.retry.max_delay_ms = 2_000;
    c.retry.max_retry_after_ms = 5_000;
    c
}

fn restore(config: &Config, store: &HashMap<String, String>, seed: u64, now: u64) -> Engine {
    let mut e = Engine::new(config.clone(), seed);
    let index = store.get(INDEX_KEY).cloned();
    e.restore(index.as_deref(), |k| store.get(k).cloned(), now);
    e
}

/// The undelivered events the store holds, in queue order, read independently of the engine.
fn persisted_view(store: &HashMap<String, String>) -> Vec<String> {
    let Some(index) = store.get(INDEX_KEY) else {
        return vec![];
    };
    let index = stored::index(index);
    let mut out = vec![];
    for seg in index["segs"].as_array().unwrap() {
        let key = format!("inhouse:v1:seg:{}", seg["s"]);
        let events = stored::segment(store.get(&key).expect("the index names only stored segments"));
        assert_eq!(events.len() as u64, seg["n"].as_u64().unwrap());
        let done: HashSet<u64> = seg["d"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
        for (i, ev) in events.iter().enumerate() {
            if !done.contains(&(i as u64)) {
                out.push(ev["i"].as_str().unwrap().to_string());
            }
        }
    }
    out
}

struct World {
    setup: Setup,
    config: Config,
    e: Engine,
    store: HashMap<String, String>,
    now: u64,
    rng: Rng,
    life: u64,
    outstanding: Option<Write>,
    in_flight: Vec<Req>,
    // Across lifetimes.
    ticket_ids: HashMap<u64, String>,
    order: HashMap<String, u64>,
    next_order: u64,
    accepted: HashSet<String>,
    /// Events whose every request fails at the network level, and when one last failed.
    bad: HashSet<String>,
    last_bad_answer: Option<u64>,
    failed: HashSet<String>,
    written: HashSet<String>,
    delivered: HashSet<String>,
    dropped: HashMap<String, DropReason>,
    // This lifetime.
    sent_this_life: HashSet<String>,
    delivered_this_life: HashSet<String>,
    dropped_this_life: HashSet<String>,
    last_fresh: Option<u64>,
}

impl World {
    fn new(setup: Setup) -> World {
        let config = config(&setup);
        World {
            e: Engine::new(config.clone(), 1),
            setup,
            config,
            store: HashMap::new(),
            now: T0,
            rng: Rng::new(2),
            life: 1,
            outstanding: None,
            in_flight: vec![],
            ticket_ids: HashMap::new(),
            order: HashMap::new(),
            next_order: 0,
            accepted: HashSet::new(),
            bad: HashSet::new(),
            last_bad_answer: None,
            failed: HashSet::new(),
            written: HashSet::new(),
            delivered: HashSet::new(),
            dropped: HashMap::new(),
            sent_this_life: HashSet::new(),
            delivered_this_life: HashSet::new(),
            dropped_this_life: HashSet::new(),
            last_fresh: None,
        }
    }

    fn apply(&mut self, w: &Write) {
        for (k, v) in &w.set {
            if k != INDEX_KEY {
                let events = stored::segment(v);
                for ev in events {
                    self.written.insert(ev["i"].as_str().unwrap().to_string());
                }
            }
            self.store.insert(k.clone(), v.clone());
        }
        for k in &w.remove {
            self.store.remove(k);
        }
    }

    fn notes(&mut self) -> Result<(), TestCaseError> {
        for note in self.e.drain_notes() {
            match note {
                Note::Ticket { ticket, id: note_id, result } => {
                    let id = self.ticket_ids.get(&ticket).cloned();
                    prop_assert!(id.is_some(), "unknown ticket {}", ticket);
                    let id = id.unwrap();
                    prop_assert_eq!(&note_id, &id, "ticket {} settles another event", ticket);
                    match result {
                        TicketResult::Queued => {
                            prop_assert!(self.written.contains(&id), "{} queued but never written", id);
                            self.accepted.insert(id);
                        }
                        TicketResult::Failed(e) => {
                            prop_assert_eq!(e.code, ErrorCode::StorageError);
                            self.failed.insert(id);
                        }
                        TicketResult::Evicted => {}
                        TicketResult::Disabled => prop_assert!(false, "never disabled here"),
                    }
                }
                Note::Dropped(d) => {
                    prop_assert!(!self.delivered_this_life.contains(&d.id), "{} dropped after its delivery", d.id);
                    self.dropped_this_life.insert(d.id.clone());
                    self.dropped.insert(d.id, d.reason);
                }
                Note::Error(_) => {}
            }
        }
        Ok(())
    }

    fn check_send(&mut self, s: &Req) -> Result<(), TestCaseError> {
        prop_assert!(!self.in_flight.iter().any(|x| x.id == s.id), "{} sent twice at once", s.id);
        prop_assert!(!self.delivered_this_life.contains(&s.id), "{} sent after its delivery", s.id);
        prop_assert!(!self.dropped_this_life.contains(&s.id), "{} sent after its drop", s.id);
        prop_assert!(!self.failed.contains(&s.id), "{} sent though its write failed", s.id);
        prop_assert!(self.written.contains(&s.id), "{} sent before it was stored", s.id);
        if self.sent_this_life.insert(s.id.clone()) {
            let o = self.order[&s.id];
            prop_assert!(self.last_fresh.is_none_or(|l| o > l), "fresh events out of order");
            self.last_fresh = Some(o);
        }
        Ok(())
    }

    fn poll_all(&mut self, online: bool) -> Result<(), TestCaseError> {
        while let Some(s) = self.e.poll_send(self.now, online) {
            prop_assert!(online, "sent while offline");
            self.check_send(&s)?;
            self.in_flight.push(s);
            prop_assert!(self.in_flight.len() <= self.setup.concurrency);
        }
        Ok(())
    }

    fn answer(&mut self, idx: usize, kind: Kind) {
        let s = self.in_flight.remove(idx);
        let kind = if self.bad.contains(&s.id) {
            self.last_bad_answer = Some(self.now);
            Kind::Unreachable
        } else {
            kind
        };
        let verdict = match kind {
            Kind::Delivered => {
                assert!(!self.dropped_this_life.contains(&s.id), "delivered after a drop");
                assert!(self.delivered_this_life.insert(s.id.clone()), "{} delivered twice in one lifetime", s.id);
                self.delivered.insert(s.id.clone());
                Verdict::Delivered
            }
            Kind::Retry(after_ms) => Verdict::Retry { after_ms, error: Error::new(ErrorCode::ServerError, "503") },
            Kind::Reject => Verdict::Reject { error: Error::new(ErrorCode::EventRejected, "422") },
            Kind::Unreachable => Verdict::Unreachable { error: Error::new(ErrorCode::NetworkError, "offline") },
            Kind::Pause => Verdict::Pause { error: Error::new(ErrorCode::AuthFailed, "401") },
        };
        self.e.on_result(s.slot, verdict, self.now);
    }

    fn complete_write(&mut self, ok: bool) {
        let w = match self.outstanding.take() {
            Some(w) => Some(w),
            None => self.e.take_write(self.now, false),
        };
        if let Some(w) = w {
            if ok {
                self.apply(&w);
                self.e.write_done(Ok(()), self.now);
            } else {
                self.e.write_done(Err("QUOTA_BYTES quota exceeded".into()), self.now);
            }
        }
    }

    fn crash(&mut self, mode: u8) -> Result<(), TestCaseError> {
        if let Some(w) = self.outstanding.take() {
            match mode {
                0 => self.apply(&w),
                1 => {}
                _ => self.apply(&Write { set: w.set.clone(), remove: vec![] }),
            }
        }
        // What the edge does at start-up: delete the segments no index names.
        let keys: Vec<String> = self.store.keys().cloned().collect();
        let index = self.store.get(INDEX_KEY).cloned();
        for k in Engine::orphan_segments(index.as_deref(), &keys) {
            self.store.remove(&k);
        }
        self.life += 1;
        self.e = restore(&self.config, &self.store, self.life * 1000, self.now);
        self.in_flight.clear();
        self.ticket_ids.clear(); // the dead worker's unsettled tickets never settle
        self.sent_this_life.clear();
        self.delivered_this_life.clear();
        self.dropped_this_life.clear();
        self.last_fresh = None;
        // The store is never corrupt here: a restore reports no error.
        let notes = self.e.drain_notes();
        prop_assert!(notes.is_empty(), "restore reported {:?}", notes);
        // The restored queue is exactly the persisted view, in order.
        let view = persisted_view(&self.store);
        prop_assert_eq!(self.e.stats(self.now).queued, view.len());
        // Past any stored wait or pause (those are restored too: see `waits_survive_a_restart`).
        let later = self.now + 8 * 86_400_000;
        let mut probe = restore(&self.config, &self.store, 7, self.now);
        let mut got = vec![];
        loop {
            if let Some(s) = probe.poll_send(later, true) {
                got.push(s.id.clone());
                probe.on_result(s.slot, Verdict::Delivered, later);
            } else if probe.take_write(later, false).is_some() {
                // The done-marks stored (in a store of its own): sending goes on.
                probe.write_done(Ok(()), later);
            } else {
                break;
            }
        }
        prop_assert_eq!(got, view);
        Ok(())
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Track(n) => {
                for _ in 0..n {
                    let props = Json::Object(vec![("k".into(), Json::Number(self.next_order.to_string()))]);
                    let ev = build_event(
                        "prop_event",
                        Props::from_json(&props).unwrap(),
                        None,
                        &EventContext::default(),
                        &Origin::default(),
                        self.now,
                        4096,
                        &mut self.rng,
                    )
                    .unwrap();
                    let id = ev.id().to_string();
                    if self.setup.bad_every > 0 && self.next_order % self.setup.bad_every == 1 {
                        self.bad.insert(id.clone());
                    }
                    match self.e.track(ev, self.now) {
                        Admission::Pending(t) => {
                            self.ticket_ids.insert(t, id.clone());
                            self.order.insert(id, self.next_order);
                            self.next_order += 1;
                        }
                        other => prop_assert!(false, "track gave {:?}", other),
                    }
                }
            }
            Op::WriteOk => self.complete_write(true),
            Op::WriteFail => self.complete_write(false),
            Op::Pump { online } => {
                if self.outstanding.is_none() {
                    self.outstanding = self.e.take_write(self.now, false);
                }
                self.poll_all(online)?;
                // Nothing left to do now means no wakeup now: the edge would spin.
                let w = self.e.next_wakeup(self.now);
                prop_assert!(w.is_none_or(|t| t > self.now), "wakeup {:?} at {} with nothing to do", w, self.now);
            }
            Op::Answer { pick, kind } => {
                if !self.in_flight.is_empty() {
                    let idx = pick % self.in_flight.len();
                    self.answer(idx, kind);
                }
            }
            Op::Advance(ms) => self.now += ms,
            Op::NewCredentials => self.e.set_credentials(Credentials { token_id: "tid2".into(), token_secret: "s2".into() }),
            Op::Crash { mode } => self.crash(mode)?,
        }
        self.notes()?;
        let st = self.e.stats(self.now);
        prop_assert!(
            st.queued <= self.setup.max_queue_events + self.setup.concurrency,
            "queue {} over {} + {}",
            st.queued,
            self.setup.max_queue_events,
            self.setup.concurrency
        );
        prop_assert_eq!(st.in_flight, self.in_flight.len());
        Ok(())
    }

    /// Network and server healthy from now on: everything must drain.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        self.complete_write(true);
        self.e.set_credentials(Credentials { token_id: "tid3".into(), token_secret: "s3".into() });
        for _ in 0..10_000 {
            // While an event that can never get through is queued, the extension keeps tracking
            // (healthy events): their answers are the evidence that gets the bad one dropped.
            let stuck = self.last_bad_answer.is_some_and(|t| self.now < t + 120_000);
            if stuck {
                let bad_every = std::mem::take(&mut self.setup.bad_every);
                self.step(Op::Track(1))?;
                self.setup.bad_every = bad_every;
                self.now += 100;
            }
            while let Some(w) = self.e.take_write(self.now, false) {
                self.apply(&w);
                self.e.write_done(Ok(()), self.now);
            }
            while !self.in_flight.is_empty() {
                self.answer(0, Kind::Delivered);
            }
            self.poll_all(true)?;
            self.notes()?;
            let st = self.e.stats(self.now);
            if st.queued == 0 && st.pending_write == 0 && self.in_flight.is_empty() {
                return Ok(());
            }
            if self.in_flight.is_empty() {
                self.now = self.e.next_wakeup(self.now).map_or(self.now + 1_000, |t| t.max(self.now + 1));
            }
        }
        prop_assert!(false, "the queue never drained: {:?}", self.e.stats(self.now));
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn engine_invariants(setup in setup(), ops in proptest::collection::vec(op(), 1..80)) {
        let mut w = World::new(setup);
        for op in ops {
            w.step(op)?;
        }
        w.drain()?;
        // Nothing accepted was lost: each was delivered or reported dropped, across crashes.
        for id in &w.accepted {
            prop_assert!(
                w.delivered.contains(id) || w.dropped.contains_key(id),
                "{} accepted but neither delivered nor dropped", id
            );
            // A healthy event is never charged with another's network failures.
            if !w.bad.contains(id) {
                prop_assert_ne!(w.dropped.get(id), Some(&DropReason::Undeliverable), "{} is healthy", id);
            }
        }
        // After the drain, a crash leaves nothing to resend once the marks are written.
        while let Some(x) = w.e.take_write(w.now, true) {
            w.apply(&x);
            w.e.write_done(Ok(()), w.now);
        }
        prop_assert!(persisted_view(&w.store).is_empty());
        w.crash(1)?;
        prop_assert_eq!(w.e.stats(w.now).queued, 0);
    }

    /// Crashes at every step: the restored queue always equals the persisted view, and nothing
    /// accepted is lost.
    #[test]
    fn crash_heavy(setup in setup(), ops in proptest::collection::vec(op(), 1..40), crash_every in 2usize..6) {
        let mut w = World::new(setup);
        for (i, op) in ops.into_iter().enumerate() {
            w.step(op)?;
            if i % crash_every == 0 {
                w.step(Op::Crash { mode: (i % 3) as u8 })?;
            }
        }
        w.drain()?;
        for id in &w.accepted {
            prop_assert!(w.delivered.contains(id) || w.dropped.contains_key(id), "{} lost", id);
        }
    }
}
