//! The shell around [`crate::core::tracker::Tracker`]: it gives the tracker commands and carries
//! out the effects it asks for, one at a time, with the browser's APIs. It holds only
//! JavaScript handles — the promises by reply, the customer's hooks, the timer and the
//! callbacks that answer the tracker — and holds no borrow of the shared state while any
//! JavaScript runs: an effect is taken under a borrow, the borrow is dropped, then the effect is
//! carried out. A customer's hook that calls back in finds the state free and consistent.
//!
//! Each wait on the browser (a read, a write, a send) is one task on `wasm_bindgen_futures`'
//! executor that answers with a command when it is done.

use super::answer::to_js;
use super::js::{deferred, now_ms, to_js_error, Deferred};
use super::{hooks, runtime, schedule, storage, transport};
use crate::core::engine::{Dropped, Send, TrackAnswer, WritePlan, SEGMENT_PREFIX};
use crate::core::error::Error;
use crate::core::event::{EventName, Props};
use crate::core::lifecycle::STARTED_KEY;
use crate::core::session::SESSION_KEY;
use crate::core::tracker::{Command, Effect, Found, ListFor, Outcome, ReadFor, Reply, StoredValue, Target, Tracker};
use js_sys::{Function, Object, Promise, Reflect};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

/// The functions the options hand over.
pub(crate) struct Hooks {
    pub(crate) on_error: Option<Function>,
    pub(crate) on_drop: Option<Function>,
    /// Sees each event before it is stored: may edit it or drop it.
    pub(crate) before_send: Option<Function>,
}

/// How a promise is settled.
struct Settlers {
    resolve: Function,
    reject: Function,
}

pub(crate) struct Shell {
    pub(crate) core: Tracker,
    hooks: Hooks,
    /// `debug: true`: each send's outcome and each error go to the console.
    debug: bool,
    /// The promises not settled yet, by reply, in reply order (replies are given in order and
    /// mostly settle in order: the settled ones at the front are removed as they go).
    settlers: VecDeque<(u64, Option<Settlers>)>,
    next_reply: u64,
    timer: Option<schedule::Timeout>,
    /// Answer [`Effect::SetTimer`] and [`Effect::PumpSoon`] (set once the state is shared).
    on_timer: Option<Function>,
    on_microtask: Option<Function>,
}

pub(crate) type Shared = Rc<RefCell<Shell>>;

/// The shell around `core`, carrying out its first effects (the start's reads).
pub(crate) fn start(core: Tracker, hooks: Hooks) -> Shared {
    let debug = core.config().debug;
    let shell = Shell { core, hooks, debug, settlers: VecDeque::new(), next_reply: 1, timer: None, on_timer: None, on_microtask: None };
    let shared = Rc::new(RefCell::new(shell));
    let weak = Rc::downgrade(&shared);
    let on_timer = Closure::<dyn FnMut()>::new(move || {
        if let Some(s) = weak.upgrade() {
            s.borrow_mut().timer = None;
            command(&s, Command::Timer { online: runtime::online() });
        }
    });
    let weak = Rc::downgrade(&shared);
    let on_microtask = Closure::<dyn FnMut()>::new(move || {
        if let Some(s) = weak.upgrade() {
            command(&s, Command::Pump { online: runtime::online() });
        }
    });
    {
        let mut shell = shared.borrow_mut();
        shell.on_timer = Some(on_timer.into_js_value().unchecked_into());
        shell.on_microtask = Some(on_microtask.into_js_value().unchecked_into());
    }
    run(&shared);
    shared
}

/// A new promise, and the reply that settles it.
pub(crate) fn promise(s: &Shared) -> (Promise, Reply) {
    let Deferred { promise, resolve, reject } = deferred();
    (promise, expect(s, resolve, reject))
}

/// The reply that settles a promise made elsewhere (the loader's batches).
pub(crate) fn expect(s: &Shared, resolve: Function, reject: Function) -> Reply {
    let mut shell = s.borrow_mut();
    let reply = shell.next_reply;
    shell.next_reply += 1;
    shell.settlers.push_back((reply, Some(Settlers { resolve, reject })));
    Reply(reply)
}

/// Gives the tracker `cmd`, then carries out what it asks.
pub(crate) fn command(s: &Shared, cmd: Command) {
    handle(s, cmd);
    run(s);
}

/// Gives the tracker `cmd`; what it asks waits for [`run`] (a batch of calls runs once).
pub(crate) fn handle(s: &Shared, cmd: Command) {
    s.borrow_mut().core.handle(cmd, now_ms());
}

/// Carries out the tracker's effects, oldest first, until it asks for nothing more. A hook run
/// here may call back in: its command's effects join the same queue.
pub(crate) fn run(s: &Shared) {
    loop {
        let effect = s.borrow_mut().core.poll_effect();
        match effect {
            Some(effect) => perform(s, effect),
            None => return,
        }
    }
}

/// Carries out one effect, with no borrow held while JavaScript runs. Each effect's work is a
/// function of its own, not inlined here: the browser compiles the wasm's functions at their
/// first call, and a start runs few of the effects. Measured with `make bench`'s cold start with
/// 1,000 stored (2026-12-06, medians of 10): 15.9–16.3 ms to `ready` with one function holding
/// them all, 13.9–15.1 ms split, against 12.8–16.1 ms for the code before the tracker core.
fn perform(s: &Shared, effect: Effect) {
    match effect {
        Effect::Settle(reply, outcome) => settle(s, reply, outcome),
        Effect::BeforeSend { name, props } => before_send(s, name, props),
        Effect::ReportError(e) => report_error(s, e),
        Effect::ReportDrop(d) => report_drop(s, d),
        Effect::Write(plan) => write(s, &plan),
        Effect::Remove(keys) => storage::remove_later(keys),
        Effect::Read { keys, purpose, after_ms } => read(s, keys, purpose, after_ms),
        Effect::ListSegments(purpose) => list_segments(s, purpose),
        Effect::ReadSession(keys) => read_session(s, keys),
        Effect::ReadPlatform => read_platform(s),
        Effect::StoreSession(text) => store_session(s, text),
        Effect::MarkBrowserRun => mark_browser_run(),
        Effect::Send(send, target) => start_send(s, send, &target),
        Effect::PumpSoon => pump_soon(s),
        Effect::SetTimer { delay_ms } => set_timer(s, delay_ms),
        Effect::ClearTimer => {
            let _cleared = s.borrow_mut().timer.take();
        }
        Effect::SetAlarm { at } => schedule::set_alarm(at, now_ms()),
        Effect::EnsureAlarm { at } => schedule::ensure_alarm(at, now_ms()),
        Effect::ClearAlarm => schedule::clear_alarm(),
        Effect::StartOfRun { daily_alarm, uninstall_url } => start_of_run(daily_alarm, uninstall_url),
        Effect::SetUninstallUrl(url) => runtime::set_uninstall_url(&url),
        Effect::Mark(name) => runtime::mark(name),
    }
}

/// Runs the customer's `beforeSend` and gives the tracker its answer at once; `run` carries out
/// what follows (no recursion per hooked event).
#[inline(never)]
fn before_send(s: &Shared, name: EventName, props: Props) {
    let hook = s.borrow().hooks.before_send.clone();
    let seen = match hook {
        Some(hook) => hooks::before_send(&hook, &name, &props),
        None => Ok(Some((None, props))),
    };
    handle(s, Command::BeforeSendDone(seen));
}

#[inline(never)]
fn report_error(s: &Shared, e: Error) {
    let (hook, debug) = (s.borrow().hooks.on_error.clone(), s.borrow().debug);
    if debug {
        web_sys::console::warn_1(&format!("[inhouse] {}: {}", e.code.as_str(), e.message).into());
    }
    if let Some(f) = hook {
        let _ = f.call1(&JsValue::UNDEFINED, &to_js_error(&e));
    }
}

#[inline(never)]
fn report_drop(s: &Shared, d: Dropped) {
    if let Some(f) = s.borrow().hooks.on_drop.clone() {
        let _ = f.call1(&JsValue::UNDEFINED, &to_js(&d));
    }
}

/// One `chrome.storage.local.set`. Each text crosses as the engine holds it (no copy in the
/// wasm); the object is filled after the borrow ends.
#[inline(never)]
fn write(s: &Shared, plan: &WritePlan) {
    let mut values = Vec::new();
    s.borrow().core.write_values(plan, |key, text| values.push((JsValue::from_str(key), JsValue::from_str(text))));
    let object = Object::new();
    for (key, text) in values {
        let _ = Reflect::set(&object, &key, &text);
    }
    let s = s.clone();
    spawn_local(async move {
        let result = storage::set_object(&object).await;
        command(&s, Command::Written(result));
    });
}

/// One `chrome.storage.local.get`. A read due now starts now (the start's first read is on the
/// way to `ready`).
#[inline(never)]
fn read(s: &Shared, keys: Vec<String>, purpose: ReadFor, after_ms: Option<u64>) {
    let now = after_ms.is_none().then(|| storage::get_keys(&keys));
    let s = s.clone();
    spawn_local(async move {
        let read = match now {
            Some(read) => read.await,
            None => {
                schedule::sleep(after_ms.unwrap_or_default()).await;
                storage::get_keys(&keys).await
            }
        };
        let result = read.map(|stored| found(&stored, keys));
        command(&s, Command::Read { purpose, result });
    });
}

#[inline(never)]
fn list_segments(s: &Shared, purpose: ListFor) {
    let s = s.clone();
    spawn_local(async move {
        let keys = storage::keys_with_prefix(SEGMENT_PREFIX).await;
        command(&s, Command::Listed { purpose, keys });
    });
}

#[inline(never)]
fn read_session(s: &Shared, keys: Vec<&'static str>) {
    let read = storage::session_get(&keys);
    let s = s.clone();
    spawn_local(async move {
        let stored = read.await.map(|stored| found(&stored, keys.iter().map(|k| k.to_string()).collect()));
        command(&s, Command::SessionRead(stored));
    });
}

#[inline(never)]
fn read_platform(s: &Shared) {
    let os = runtime::platform_os();
    let s = s.clone();
    spawn_local(async move {
        let os = os.await;
        command(&s, Command::PlatformRead(os));
    });
}

#[inline(never)]
fn store_session(s: &Shared, text: String) {
    let s = s.clone();
    spawn_local(async move {
        let _ = storage::set_session_text(SESSION_KEY, &text).await;
        command(&s, Command::SessionStored);
    });
}

#[inline(never)]
fn mark_browser_run() {
    spawn_local(async move {
        let _ = storage::set_session_text(STARTED_KEY, "1").await;
    });
}

/// One request; the verdict goes back to the tracker.
#[inline(never)]
fn start_send(s: &Shared, send: Send, target: &Target) {
    let label = s.borrow().debug.then(|| format!("[inhouse] {} {}: ", send.name, send.id));
    let request = transport::Request {
        url: &target.url,
        credentials: &target.credentials,
        app_id: &target.app_id,
        event_id: &send.id,
        body: &send.body,
        timeout_ms: target.timeout_ms,
    };
    let sent = transport::send(request);
    let (s, slot) = (s.clone(), send.slot);
    spawn_local(async move {
        let verdict = sent.await;
        if let Some(label) = label {
            let outcome = verdict.error().map_or("delivered", |e| e.code.as_str());
            web_sys::console::debug_1(&format!("{label}{outcome}").into());
        }
        command(&s, Command::Sent { slot, verdict });
    });
}

fn pump_soon(s: &Shared) {
    if let Some(handler) = s.borrow().on_microtask.clone() {
        schedule::queue_microtask(&handler);
    }
}

fn set_timer(s: &Shared, delay_ms: u64) {
    let Some(handler) = s.borrow().on_timer.clone() else { return };
    let timer = schedule::Timeout::start(&handler, delay_ms);
    // The timer it replaces is cleared once the borrow is dropped.
    let _replaced = s.borrow_mut().timer.replace(timer);
}

/// What each start does once, in the next task (none of it is needed to be ready): the daily
/// alarm, the uninstall URL, the mark of this browser run.
#[inline(never)]
fn start_of_run(daily_alarm: bool, uninstall_url: Option<String>) {
    let now = now_ms();
    spawn_local(async move {
        schedule::sleep(0).await;
        if daily_alarm {
            schedule::set_daily_alarm(now);
        }
        if let Some(url) = uninstall_url {
            runtime::set_uninstall_url(&url);
        }
        let _ = storage::set_session_text(STARTED_KEY, "1").await;
    });
}

/// What `get` read for `keys`, one value per key.
fn found(stored: &storage::Stored, keys: Vec<String>) -> Found {
    Found(
        keys.into_iter()
            .map(|key| {
                let (text, present) = (stored.text(&key), stored.present(&key));
                StoredValue { key, text, present }
            })
            .collect(),
    )
}

/// Settles the promise of `reply` (taken under a borrow, called after it).
fn settle(s: &Shared, reply: Reply, outcome: Outcome) {
    let settlers = {
        let mut shell = s.borrow_mut();
        let at = shell.settlers.binary_search_by_key(&reply.0, |(r, _)| *r);
        let taken = at.ok().and_then(|at| shell.settlers[at].1.take());
        while shell.settlers.front().is_some_and(|(_, w)| w.is_none()) {
            shell.settlers.pop_front();
        }
        taken
    };
    let Some(Settlers { resolve, reject }) = settlers else { return };
    let _ = match outcome {
        Outcome::Track { id, status } => resolve.call1(&JsValue::UNDEFINED, &to_js(&TrackAnswer { id: &id, status })),
        Outcome::Done => resolve.call0(&JsValue::UNDEFINED),
        Outcome::Nothing => resolve.call1(&JsValue::UNDEFINED, &JsValue::NULL),
        Outcome::Flushed(status) => resolve.call1(&JsValue::UNDEFINED, &to_js(&status)),
        Outcome::Failed(e) => reject.call1(&JsValue::UNDEFINED, &to_js_error(&e)),
    };
}
