//! The tracker: every decision the SDK makes, as a state machine with no I/O (the style of
//! quinn-proto, rustls and h2). The shell (`src/web/shell.rs`) gives it [`Command`]s — a call
//! from the API, what storage or the network answered, the clock — and carries out the
//! [`Effect`]s it asks for, one at a time ([`Tracker::poll_effect`]), answering those that
//! have an answer with another command. The tracker never waits and never calls out, so a
//! customer's hook that calls back in finds it in a consistent state; the shell holds no borrow
//! of it while any JavaScript runs.
//!
//! | command                                  | what the tracker does                             | effects it may ask for                         |
//! |------------------------------------------|---------------------------------------------------|------------------------------------------------|
//! | [`Command::Track`] (`page`, `exception`)  | builds the event now or queues the call in order  | `BeforeSend`, `Settle`, `PumpSoon`             |
//! | [`Command::Identify`], [`Command::Profile`] | changes the profile (with its `$identify` event) | `Settle`, `PumpSoon`                            |
//! | [`Command::SetEnabled`]                  | opt-in or out (a purge forgets the install)        | `SetUninstallUrl`, `Settle`, `PumpSoon`        |
//! | [`Command::SetCredentials`]              | sends with the new credentials, ends a pause      | `PumpSoon`                                     |
//! | [`Command::Flush`], [`Command::Ready`]   | answers once the queue is empty/blocked, started  | `Settle`                                       |
//! | [`Command::Shutdown`]                    | stores what is pending, then stops                | `Write`, `ClearAlarm`, `Settle`                |
//! | [`Command::Pump`], [`Command::Timer`]    | writes, sends, reschedules (the loop's turn)      | `Write`, `Send`, `SetTimer`, `SetAlarm`, ...   |
//! | [`Command::Read`], [`Command::Listed`], [`Command::SessionRead`], [`Command::PlatformRead`] | the start: stored queue, profile, session, OS | `Read`, `ListSegments`, `Remove`, `StartOfRun`, `Mark` |
//! | [`Command::Written`], [`Command::Sent`], [`Command::SessionStored`] | a write's or a send's outcome | `Settle`, `ReportError`, `ReportDrop`, `Remove` |
//! | [`Command::BeforeSendDone`]              | the customer's `beforeSend` answered              | `Settle`, the next `BeforeSend`                |
//! | [`Command::StorageLost`], [`Command::SessionStorageLost`], [`Command::Wake`] | writes again, wakes | `MarkBrowserRun`, `PumpSoon` |
//!
//! Reads that need no answer later (`stats`, `identity`, `enabled`, the configuration) are
//! plain methods. The commands and effects are defined in `protocol.rs`.

mod calls;
mod plan;
mod protocol;
mod pump;
mod start;
mod state;

pub use protocol::*;

use crate::core::config::Config;
use crate::core::engine::{Engine, Note, Stats, WritePlan};
use crate::core::event::{EventContext, Rng};
use crate::core::exception::Throttle;
use crate::core::session::Sessions;
use state::{HookWait, StartState, WaitingCall};
use std::collections::VecDeque;
use std::rc::Rc;

/// What waits to be polled: an effect, or the engine's notes, each made into its effect when it
/// is polled (the 10,000 settled promises of a burst's write are never held twice).
#[derive(Debug)]
enum Queued {
    Effect(Effect),
    Notes(std::vec::IntoIter<Note>),
}

impl Queued {
    fn effect(self) -> Option<Effect> {
        match self {
            Queued::Effect(effect) => Some(effect),
            Queued::Notes(_) => None,
        }
    }
}

/// The tracker's state (see the module documentation).
#[derive(Debug)]
pub struct Tracker {
    phase: Phase,
    engine: Engine,
    ctx: EventContext,
    sessions: Sessions,
    rng: Rng,
    /// Which errors are stored as `$exception` events (the rest are counted).
    exceptions: Throttle,
    /// Which plan violations `onError` hears of (`planMode: 'report'`), and how many there were.
    plan_reports: Throttle,
    plan_violations: u64,
    facts: Facts,
    target: Rc<Target>,
    /// What waits to be polled, in order.
    effects: VecDeque<Queued>,
    /// Calls that wait their turn, in order (see `calls`).
    waiting: VecDeque<WaitingCall>,
    /// `beforeSend` is running on this call: the queue waits for its answer, and calls made
    /// meanwhile are not passed to it again.
    hook: Option<HookWait>,
    /// The replies of offered events, by engine ticket, in ticket order (found by a binary
    /// search and taken, leaving `None`; the settled ones are removed in one pass).
    tickets: VecDeque<(u64, Option<Reply>)>,
    flushes: Vec<Reply>,
    readies: Vec<Reply>,
    /// Setting changes that settle once stored.
    settings: Vec<Reply>,
    /// `shutdown` calls waiting for the last writes; while any wait, every write is forced.
    shutdowns: Vec<Reply>,
    start: StartState,
    /// The write out, and the keys to remove once it is stored.
    writing: Option<Vec<String>>,
    session_writing: bool,
    pump_queued: bool,
    /// When the timer fires, if one is set.
    timer_at: Option<u64>,
    alarm_at: Option<u64>,
    /// When the alarm's existence was last checked.
    alarm_checked_at: u64,
}

impl Tracker {
    /// A tracker for `config`, reading the stored queue: the first effects are the start's reads.
    pub fn new(config: Config, facts: Facts, seed: u64) -> Tracker {
        let target = Rc::new(Target {
            url: config.track_url(),
            credentials: config.credentials.clone(),
            app_id: config.app_id.clone(),
            timeout_ms: config.request_timeout_ms,
        });
        let ctx = EventContext {
            extension_version: facts.extension_version.clone(),
            browser: facts.browser.clone(),
            browser_version: facts.browser_version.clone(),
            locale: facts.locale.clone(),
            ..EventContext::default()
        };
        let mut tracker = Tracker {
            phase: Phase::Starting,
            sessions: Sessions::new(config.session_timeout_ms),
            // One source of randomness: the engine's (install ids, jitter) and the tracker's
            // (event and session ids) are seeded from it.
            rng: Rng::new(seed ^ 0x5851_F42D_4C95_7F2D),
            engine: Engine::new(config, seed),
            exceptions: Throttle::default(),
            plan_reports: Throttle::default(),
            plan_violations: 0,
            ctx,
            facts,
            target,
            effects: VecDeque::new(),
            waiting: VecDeque::new(),
            hook: None,
            tickets: VecDeque::new(),
            flushes: Vec::new(),
            readies: Vec::new(),
            settings: Vec::new(),
            shutdowns: Vec::new(),
            start: StartState::default(),
            writing: None,
            session_writing: false,
            pump_queued: false,
            timer_at: None,
            alarm_at: None,
            alarm_checked_at: 0,
        };
        tracker.begin_start();
        tracker
    }

    /// The next thing to do, oldest first.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        loop {
            // What the engine noted since (a call's evictions, above all) is passed on before the
            // shell stops asking: a burst of calls in one turn keeps none of it in memory.
            if self.effects.is_empty() && self.engine.has_notes() {
                self.pass_notes();
            }
            let note = match self.effects.front_mut()? {
                Queued::Notes(notes) => notes.next(),
                Queued::Effect(_) => return self.effects.pop_front().and_then(Queued::effect),
            };
            match note {
                Some(note) => {
                    if let Some(effect) = self.note_effect(note) {
                        return Some(effect);
                    }
                }
                None => drop(self.effects.pop_front()),
            }
        }
    }

    /// Takes in one command at `now` (ms since the epoch).
    pub fn handle(&mut self, command: Command, now: u64) {
        match command {
            Command::Track { call, from, reply } => self.track(call, from, reply, now),
            Command::Page { name, title, props, from, at, reply } => self.page(name, title, props, from, at, reply),
            Command::Exception { thrown, props, from, at, reply } => self.exception(thrown, props, from, at, reply),
            Command::Identify { user_id, traits, from, at, reply } => self.identify(user_id, traits, from, at, reply),
            Command::Profile { change, reply } => self.profile(change, reply),
            Command::SetEnabled { enabled, purge, reply } => self.consent(enabled, purge, reply, now),
            Command::SetCredentials(credentials) => self.set_credentials(credentials),
            Command::Flush { retry_now, reply } => self.flush(retry_now, reply, now),
            Command::Ready { reply } => self.ready(reply),
            Command::Shutdown { reply } => self.shutdown(reply, now),
            Command::Wake => self.pump_soon(),
            Command::StorageLost => self.storage_lost(now),
            Command::SessionStorageLost => self.session_storage_lost(),
            Command::Pump { online } => {
                self.pump_queued = false;
                self.pump(now, online);
            }
            Command::Timer { online } => {
                self.timer_at = None;
                self.pump(now, online);
            }
            Command::Read { purpose, result } => self.read(purpose, result, now),
            Command::Listed { purpose, keys } => self.listed(purpose, keys, now),
            Command::SessionRead(found) => self.session_read(found, now),
            Command::PlatformRead(os) => self.platform_read(os, now),
            Command::Written(result) => self.written(result, now),
            Command::Sent { slot, verdict } => {
                self.engine.on_result(slot, verdict, now);
                self.pass_notes();
                self.pump_soon();
            }
            Command::SessionStored => self.session_stored(),
            Command::BeforeSendDone(result) => self.before_send_done(result, now),
        }
    }

    fn emit(&mut self, effect: Effect) {
        self.effects.push_back(Queued::Effect(effect));
    }

    fn settle(&mut self, reply: Reply, outcome: Outcome) {
        self.emit(Effect::Settle(reply, outcome));
    }

    /// Where the tracker is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Counters and state (`stats()`).
    pub fn stats(&self, now: u64) -> Stats {
        let mut stats = self.engine.stats(now);
        stats.exceptions_throttled = self.exceptions.throttled;
        stats.plan_violations = self.plan_violations;
        stats
    }

    /// The install id, the live session's id and the user id (`identity()`).
    pub fn identity(&self, now: u64) -> (Option<&str>, Option<&str>, Option<&str>) {
        (self.engine.install_id(), self.sessions.live(now).map(|s| s.id.as_str()), self.engine.profile().user_id())
    }

    /// Whether tracking is enabled.
    pub fn enabled(&self) -> bool {
        self.engine.enabled()
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        self.engine.config()
    }

    /// Done-marks per index write, for the benchmark that measures resends against writes.
    pub fn set_ack_batch(&mut self, marks: usize) {
        self.engine.set_ack_batch(marks);
    }

    /// The keys and texts a [`Effect::Write`] stores, given to `put` one by one as the engine
    /// holds them (no copy).
    pub fn write_values(&self, plan: &WritePlan, mut put: impl FnMut(&str, &str)) {
        use crate::core::engine::{segment_key, INDEX_KEY, INSTALL_KEY};
        use crate::core::lifecycle::LIFECYCLE_KEY;
        use crate::core::profile::PROFILE_KEY;
        for (i, seq) in plan.segments.iter().enumerate() {
            put(&segment_key(*seq), self.engine.segment_str(i));
        }
        for (key, value) in [(INSTALL_KEY, &plan.install), (PROFILE_KEY, &plan.profile), (LIFECYCLE_KEY, &plan.lifecycle)] {
            if let Some(text) = value {
                put(key, text);
            }
        }
        for seq in &plan.rewrite {
            put(&segment_key(*seq), self.engine.stored_segment_str(*seq));
        }
        put(INDEX_KEY, &plan.index);
    }
}
