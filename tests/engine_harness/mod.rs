//! The engine driven by hand, for host tests: a manual clock, a fixed seed and a fake
//! `chrome.storage.local` (a map applying each `Write`).
#![allow(dead_code)]

use inhouse_tracker::core::config::{validate, Config, Options};
pub use inhouse_tracker::core::engine::{Admission, DropReason, Engine, IndexState, Note, Send as Req, TicketResult, Write, INDEX_KEY};
use inhouse_tracker::core::error::{Error, ErrorCode};
pub use inhouse_tracker::core::event::NewEvent;
use inhouse_tracker::core::event::{build_event, EventContext, Props, Rng};
use inhouse_tracker::core::json::Json;
use inhouse_tracker::core::origin::Origin;
use inhouse_tracker::core::policy::Verdict;
use serde_json::Value;
use std::collections::HashMap;

pub const EXT: &str = "abcdefghijklmnopabcdefghijklmnop";
pub const T0: u64 = 1_767_225_600_000;
pub const SEED: u64 = 0x5EED;

pub fn config(f: impl FnOnce(&mut Config)) -> Config {
    let options = Options { token_id: Some("tid".into()), token_secret: Some("secret".into()), ..Default::default() };
    let (mut c, _) = validate(options, Some(EXT)).unwrap();
    f(&mut c);
    c
}

pub fn delivered() -> Verdict {
    Verdict::Delivered
}
pub fn retry(after_ms: Option<u64>) -> Verdict {
    Verdict::Retry { after_ms, error: Error::new(ErrorCode::ServerError, "the server failed (HTTP 503)") }
}
pub fn unreachable() -> Verdict {
    Verdict::Unreachable { error: Error::new(ErrorCode::NetworkError, "Failed to fetch") }
}
pub fn pause() -> Verdict {
    Verdict::Pause { error: Error::new(ErrorCode::AuthFailed, "bad credentials (HTTP 401)") }
}
pub fn reject(msg: &str) -> Verdict {
    Verdict::Reject { error: Error::new(ErrorCode::EventRejected, msg) }
}

/// The fake `chrome.storage.local`.
#[derive(Clone, Default, Debug)]
pub struct Store(pub HashMap<String, String>);

impl Store {
    pub fn apply(&mut self, w: &Write) {
        for (k, v) in &w.set {
            self.0.insert(k.clone(), v.clone());
        }
        for k in &w.remove {
            self.0.remove(k);
        }
    }
    pub fn index(&self) -> Option<String> {
        self.0.get(INDEX_KEY).cloned()
    }
    pub fn index_json(&self) -> Value {
        crate::stored::index(&self.index().expect("index stored"))
    }
    /// Segment numbers the stored index names.
    pub fn index_segs(&self) -> Vec<u64> {
        self.index_json()["segs"].as_array().unwrap().iter().map(|s| s["s"].as_u64().unwrap()).collect()
    }
    pub fn segment_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.0.keys().filter(|k| k.starts_with("inhouse:v1:seg:")).cloned().collect();
        keys.sort_by_key(|k| k.rsplit(':').next().unwrap().parse::<u64>().unwrap());
        keys
    }
    pub fn restore(&self, config: Config, seed: u64, now: u64) -> Engine {
        let mut e = Engine::new(config, seed);
        let index = self.index();
        e.restore(index.as_deref(), |k| self.0.get(k).cloned(), now);
        e
    }
    /// A start as the tracker's (`core::tracker::start`): an index whose checksum holds is read;
    /// any other is read only if it accounts for every stored segment, else the queue is rebuilt
    /// from the segments. Returns what was found under the index key.
    pub fn start(&self, e: &mut Engine, now: u64) -> IndexState {
        let index = self.index();
        let keys = self.segment_keys();
        let state = Engine::index_state(index.as_deref(), index.is_some());
        match state {
            IndexState::Readable => e.restore(index.as_deref(), |k| self.0.get(k).cloned(), now),
            IndexState::Absent | IndexState::Unchecked if Engine::index_accounts_for(index.as_deref(), &keys) => {
                e.restore(index.as_deref(), |k| self.0.get(k).cloned(), now)
            }
            _ => e.rebuild(keys.into_iter().map(|k| (k.clone(), self.0.get(&k).cloned())).collect(), state, now),
        }
        state
    }
}

/// An engine with its clock, its store, and everything it reported.
pub struct H {
    pub e: Engine,
    pub config: Config,
    pub now: u64,
    pub store: Store,
    pub rng: Rng,
    pub seq: u64,
    pub notes: Vec<Note>,
    pub writes: usize,
}

impl H {
    pub fn new(config: Config) -> H {
        H { e: Engine::new(config.clone(), SEED), config, now: T0, store: Store::default(), rng: Rng::new(1), seq: 0, notes: vec![], writes: 0 }
    }
    pub fn with(f: impl FnOnce(&mut Config)) -> H {
        H::new(config(f))
    }
    pub fn event(&mut self) -> NewEvent {
        self.seq += 1;
        // Fixed-width properties, so every event has the same stored size.
        let props = Json::Object(vec![("n".into(), Json::String(format!("{:08}", self.seq)))]);
        build_event(
            "test_event",
            Props::from_json(&props).unwrap(),
            None,
            &EventContext::default(),
            &Origin::default(),
            self.now,
            32 * 1024,
            &mut self.rng,
        )
        .unwrap()
    }
    pub fn track(&mut self) -> (u64, NewEvent) {
        let ev = self.event();
        match self.e.track(ev.clone(), self.now) {
            Admission::Pending(t) => (t, ev),
            other => panic!("track: {other:?}"),
        }
    }
    pub fn track_n(&mut self, n: usize) -> Vec<NewEvent> {
        (0..n).map(|_| self.track().1).collect()
    }
    pub fn ids(evs: &[NewEvent]) -> Vec<String> {
        evs.iter().map(|e| e.id().to_string()).collect()
    }
    /// Takes the due write (it must exist), stores it, and reports success.
    pub fn commit_with(&mut self, force: bool) -> Write {
        let w = self.e.take_write(self.now, force).expect("a write is due");
        self.store.apply(&w);
        self.e.write_done(Ok(()), self.now);
        self.writes += 1;
        w
    }
    pub fn commit(&mut self) -> Write {
        self.commit_with(false)
    }
    /// Performs every due write.
    pub fn settle_writes(&mut self) -> usize {
        let mut n = 0;
        while let Some(w) = self.e.take_write(self.now, false) {
            self.store.apply(&w);
            self.e.write_done(Ok(()), self.now);
            self.writes += 1;
            n += 1;
        }
        n
    }
    pub fn force_writes(&mut self) {
        while let Some(w) = self.e.take_write(self.now, true) {
            self.store.apply(&w);
            self.e.write_done(Ok(()), self.now);
            self.writes += 1;
        }
    }
    pub fn poll(&mut self) -> Option<Req> {
        self.e.poll_send(self.now, true)
    }
    pub fn poll_all(&mut self) -> Vec<Req> {
        std::iter::from_fn(|| self.e.poll_send(self.now, true)).collect()
    }
    /// The next request, as the driver's pump finds it: when none may go out because delivered
    /// events' done-marks wait to be stored (the engine's bound on resends), the due write is
    /// performed first.
    pub fn send_next(&mut self) -> Option<Req> {
        self.poll().or_else(|| (self.settle_writes() > 0).then(|| self.poll()).flatten())
    }
    pub fn answer(&mut self, s: &Req, v: Verdict) {
        self.e.on_result(s.slot, v, self.now);
    }
    pub fn drain(&mut self) -> Vec<Note> {
        let n = self.e.drain_notes();
        self.notes.extend(n.clone());
        n
    }
    /// Sends and delivers everything, returning the ids in the order sent.
    pub fn deliver_all(&mut self) -> Vec<String> {
        let mut sent = vec![];
        loop {
            let mut batch = self.poll_all();
            if batch.is_empty() {
                batch.extend(self.send_next());
            }
            if batch.is_empty() {
                break;
            }
            for s in batch {
                sent.push(s.id.clone());
                self.answer(&s, delivered());
            }
        }
        sent
    }
    pub fn advance_to_wakeup(&mut self) {
        self.settle_writes();
        let t = self.e.next_wakeup(self.now).expect("a wakeup");
        assert!(t >= self.now);
        self.now = t;
    }
}

pub fn tickets(notes: &[Note]) -> Vec<(u64, TicketResult)> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Ticket { ticket, result, .. } => Some((*ticket, result.clone())),
            _ => None,
        })
        .collect()
}

pub fn drops(notes: &[Note]) -> Vec<(String, DropReason, String)> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Dropped(d) => Some((d.id.clone(), d.reason, d.message.clone())),
            _ => None,
        })
        .collect()
}

pub fn errors(notes: &[Note]) -> Vec<Error> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Error(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Delivers everything `e` sends at `now`, in the order sent, as the driver does: when sending
/// waits for done-marks to be stored (the bound on resends), the due write is taken and counted
/// committed (in no store). `each` sees every request.
pub fn deliver_on(e: &mut Engine, now: u64, each: impl FnMut(&Req)) -> Vec<String> {
    deliver_into(e, now, &mut Store::default(), each)
}

/// [`deliver_on`], the writes applied to `store`.
pub fn deliver_into(e: &mut Engine, now: u64, store: &mut Store, mut each: impl FnMut(&Req)) -> Vec<String> {
    let mut sent = vec![];
    loop {
        if let Some(s) = e.poll_send(now, true) {
            each(&s);
            e.on_result(s.slot, delivered(), now);
            sent.push(s.id);
        } else if let Some(w) = e.take_write(now, false) {
            store.apply(&w);
            e.write_done(Ok(()), now);
        } else {
            return sent;
        }
    }
}
