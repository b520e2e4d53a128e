//! The driving loop behind the exported `Tracker` (`crate::api`): reads the stored queue at
//! start, runs the engine's writes and sends, settles the promises that wait on them, and sets
//! the next wake-up (a timer, and a `chrome.alarms` backstop that survives the worker). Each
//! wait on the browser (the start's reads, a write, a send) is one task on
//! `wasm_bindgen_futures`' executor, written as straight-line `async` code; no `RefCell`
//! borrow is held across an `.await` (clippy's `await_holding_refcell_ref` is denied).

use super::answer::to_js;
use super::calls::{self, WaitingCall};
use super::js::{now_ms, to_js_error};
use super::{runtime, schedule, storage, transport};
use crate::core::engine::{
    segment_key, Admission, Engine, IndexState, Note, Send, TicketResult, TrackAnswer, WritePlan, INDEX_KEY, INSTALL_KEY, SEGMENT_PREFIX,
};
use crate::core::error::{Error, ErrorCode};
use crate::core::event::EventContext;
use crate::core::lifecycle::{uninstall_url, utc_day, LIFECYCLE_KEY, STARTED_KEY};
use crate::core::origin::ExtensionPages;
use crate::core::profile::PROFILE_KEY;
use crate::core::session::{Sessions, SESSION_KEY};
use js_sys::{Function, Object, Reflect};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

/// Where the tracker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Created; reading the stored queue. Calls wait in `waiting`.
    Starting,
    Running,
    ShutDown,
}

/// A `track` call waiting for its write: how to settle its promise (the engine's note brings
/// the event's id).
pub(crate) struct Waiter {
    pub(crate) resolve: Function,
    pub(crate) reject: Function,
}

pub(crate) struct Inner {
    pub(crate) phase: Phase,
    pub(crate) engine: Engine,
    pub(crate) ctx: EventContext,
    pub(crate) sessions: Sessions,
    /// A `chrome.storage.session` write is out (see `store_session`).
    pub(crate) session_writing: bool,
    /// This start found no marker of the browser run (see `restore`).
    pub(crate) browser_started: bool,
    /// Other code cleared `chrome.storage.session` while this tracker was starting: a missing
    /// marker of the browser run means that, not a browser start.
    pub(crate) session_cleared: bool,
    /// The manifest's pages, to tell a relayed event's surface.
    pub(crate) pages: ExtensionPages,
    /// Calls that wait their turn, in order (see `calls`): before the stored index, the install
    /// id and the profile are read; a `dedupKey` while segments are being read; an event for
    /// `beforeSend`; any call made while others wait.
    pub(crate) waiting: VecDeque<WaitingCall>,
    /// `beforeSend` runs now (calls it makes are not passed to it again).
    pub(crate) in_before_send: bool,
    /// `calls::run_waiting` runs now (a call a hook makes joins its queue).
    pub(crate) draining: bool,
    /// By engine ticket, in ticket order: found by a binary search and taken (leaving `None`);
    /// `dispatch` removes the settled ones in one pass. A burst of 10,000 calls settles in
    /// linear time, and the wasm needs no hash table.
    pub(crate) waiters: Vec<(u64, Option<Waiter>)>,
    pub(crate) flush_waiters: Vec<Function>,
    pub(crate) ready_waiters: Vec<Function>,
    /// `setEnabled`, `register`, `unregister` and `reset` calls waiting until the change is
    /// stored.
    pub(crate) settings_waiters: Vec<Function>,
    /// `shutdown` calls waiting for the last writes; while any wait, every write is forced.
    pub(crate) shutdown_waiters: Vec<Function>,
    pub(crate) rng: crate::core::event::Rng,
    pub(crate) hooks: Hooks,
    /// Calls `pump` when the timer fires.
    pub(crate) pump_handler: Option<Function>,
    /// Calls `pump` from a microtask (see `schedule_pump`).
    pub(crate) pump_soon_handler: Option<Function>,
    pub(crate) pump_queued: bool,
    pub(crate) timer: Option<schedule::Timeout>,
    pub(crate) alarm_at: Option<u64>,
    /// When the alarm's existence was last checked (see `reschedule`).
    pub(crate) alarm_checked_at: u64,
    pub(crate) writing: bool,
}

pub(crate) type Shared = Rc<RefCell<Inner>>;

/// The functions the options hand over.
pub(crate) struct Hooks {
    pub(crate) on_error: Option<Function>,
    pub(crate) on_drop: Option<Function>,
    /// Sees each event before it is stored: may edit it or drop it (see `calls::run_waiting`).
    pub(crate) before_send: Option<Function>,
}

/// A tracker's shared state for `engine`, with its timer and microtask callbacks, reading the
/// stored queue.
pub(crate) fn start(engine: Engine, hooks: Hooks) -> Shared {
    let (browser, browser_version) = runtime::browser();
    let (extension_version, pages) = runtime::manifest_facts();
    let ctx = EventContext { extension_version, browser, browser_version, locale: runtime::locale(), ..EventContext::default() };
    let inner = Inner {
        phase: Phase::Starting,
        sessions: Sessions::new(engine.config().session_timeout_ms),
        engine,
        ctx,
        session_writing: false,
        browser_started: false,
        session_cleared: false,
        pages,
        waiting: VecDeque::new(),
        in_before_send: false,
        draining: false,
        waiters: Vec::new(),
        flush_waiters: Vec::new(),
        ready_waiters: Vec::new(),
        settings_waiters: Vec::new(),
        shutdown_waiters: Vec::new(),
        rng: crate::core::event::Rng::new(runtime::random_seed()),
        hooks,
        pump_handler: None,
        pump_soon_handler: None,
        pump_queued: false,
        timer: None,
        alarm_at: None,
        alarm_checked_at: 0,
        writing: false,
    };
    let shared = Rc::new(RefCell::new(inner));
    let weak = Rc::downgrade(&shared);
    let on_timer = Closure::<dyn FnMut()>::new(move || {
        if let Some(s) = weak.upgrade() {
            s.borrow_mut().timer = None;
            pump(&s);
        }
    });
    let weak = Rc::downgrade(&shared);
    let on_microtask = Closure::<dyn FnMut()>::new(move || {
        if let Some(s) = weak.upgrade() {
            s.borrow_mut().pump_queued = false;
            pump(&s);
        }
    });
    {
        let mut inner = shared.borrow_mut();
        inner.pump_handler = Some(on_timer.into_js_value().unchecked_into());
        inner.pump_soon_handler = Some(on_microtask.into_js_value().unchecked_into());
    }
    spawn_local(restore(shared.clone()));
    shared
}

pub(crate) fn admit_event(inner: &mut Inner, event: crate::core::event::NewEvent, waiter: Waiter, now: u64) {
    match inner.engine.offer(&event, now) {
        Admission::Pending(ticket) => {
            inner.waiters.push((ticket, Some(waiter)));
        }
        Admission::Duplicate => settle(&waiter, event.id(), "deduplicated"),
        Admission::Disabled => settle(&waiter, event.id(), "disabled"),
    }
}

pub(crate) fn settle(w: &Waiter, id: &str, status: &'static str) {
    let _ = w.resolve.call1(&JsValue::UNDEFINED, &to_js(&TrackAnswer { id, status }));
}

/// What the start read from storage.
enum Loaded {
    /// The stored index (`None`: nothing stored); the segments it names are read afterwards
    /// (`load_queue`).
    Stored { index: Option<String> },
    /// The index could not be read: the engine rebuilt the queue from every stored segment.
    Rebuilt,
}

/// Reads the stored queue, then admits the calls that arrived meanwhile and resumes delivery.
pub(crate) async fn restore(s: Shared) {
    let now = now_ms();
    // Both start now, alongside the queue's reads.
    let (session, os) = (storage::session_get(&[SESSION_KEY, STARTED_KEY]), runtime::platform_os());
    let loaded = read_stored(&s, now).await;
    runtime::mark("inhouse:stored-read");
    let (session, os) = (session.await, os.await);
    {
        let mut inner = s.borrow_mut();
        inner.sessions.adopt(session.as_ref().and_then(|found| found.text(SESSION_KEY)).as_deref());
        // No marker of this browser run: the browser started (or the extension was installed,
        // updated or reloaded, which also empties chrome.storage.session).
        inner.browser_started = session.as_ref().is_some_and(|found| !found.present(STARTED_KEY)) && !inner.session_cleared;
        inner.ctx.os = os;
    }
    if let Some(index) = restored(&s, now, loaded) {
        load_queue(s, index).await;
    }
}

/// Segments read per `chrome.storage.local.get` after the start: 1,000 events at most, so
/// delivery starts after the first few milliseconds, not after the whole queue is read.
const LOAD_SEGMENTS: usize = 2;

/// Reads the stored segments the start left in storage, oldest first, and delivery goes on
/// after each read. A failed read is retried with a growing wait (the segments stay named by
/// the stored index meanwhile, so nothing is lost if the worker stops). Then the calls that
/// needed the whole queue (`track` with a `dedupKey`) run, and the segments a crash left
/// between a write's `set` and its `remove` are removed: done, never named again, judged
/// against the index read at start (segments written since are safe).
async fn load_queue(s: Shared, index: Option<String>) {
    // In the next task: what waits for `ready` runs first.
    schedule::sleep(0).await;
    let mut failures = 0u32;
    loop {
        let keys = {
            let inner = s.borrow();
            if inner.phase != Phase::Running {
                return;
            }
            inner.engine.unloaded_keys(LOAD_SEGMENTS)
        };
        if keys.is_empty() {
            break;
        }
        match storage::get_keys(&keys).await {
            Ok(found) => {
                failures = 0;
                let notes = {
                    let mut inner = s.borrow_mut();
                    inner.engine.load_segments(|key| found.text(key), keys.len(), now_ms());
                    inner.engine.drain_notes()
                };
                dispatch(&s, notes);
                pump(&s);
            }
            Err(why) => {
                if failures == 0 {
                    let message = format!("could not read the stored queue's segments (kept in storage, read again later): {why}");
                    dispatch(&s, vec![Note::Error(Error::new(ErrorCode::StorageError, message))]);
                }
                failures += 1;
                schedule::sleep(1_000u64 << failures.min(6)).await;
            }
        }
    }
    runtime::mark("inhouse:queue-loaded");
    // The calls that needed the whole queue (a `dedupKey`) can run now.
    pump(&s);
    if let Some(all) = storage::keys_with_prefix(SEGMENT_PREFIX).await {
        storage::remove_later(Engine::orphan_segments(index.as_deref(), &all));
    }
}

/// The install id, the index and the segments it names. An index that cannot be read
/// (damaged, or not text) is rebuilt from every stored segment.
async fn read_stored(s: &Shared, now: u64) -> Result<Loaded, String> {
    let keys = [INDEX_KEY, INSTALL_KEY, PROFILE_KEY, LIFECYCLE_KEY].map(String::from);
    let found = storage::get_keys(&keys).await?;
    {
        let mut inner = s.borrow_mut();
        inner.engine.adopt_install_id(found.text(INSTALL_KEY).as_deref());
        inner.engine.adopt_profile(found.text(PROFILE_KEY).as_deref(), now);
        inner.engine.adopt_lifecycle(found.text(LIFECYCLE_KEY).as_deref());
    }
    let index = found.text(INDEX_KEY);
    match Engine::index_state(index.as_deref(), found.present(INDEX_KEY)) {
        IndexState::Absent => Ok(Loaded::Stored { index: None }),
        IndexState::Readable => Ok(Loaded::Stored { index }),
        IndexState::Unreadable => {
            let keys = storage::keys_with_prefix(SEGMENT_PREFIX).await.unwrap_or_default();
            let found = storage::get_keys(&keys).await?;
            let segments = keys
                .into_iter()
                .map(|k| {
                    let text = found.text(&k);
                    (k, text)
                })
                .collect();
            s.borrow_mut().engine.rebuild(segments, now);
            Ok(Loaded::Rebuilt)
        }
    }
}

/// The stored queue read (or why not): the queue is rebuilt, the calls that waited are
/// admitted, delivery resumes. Returns the index read, against which orphans are judged.
fn restored(s: &Shared, now: u64, loaded: Result<Loaded, String>) -> Option<Option<String>> {
    let mut notes = Vec::new();
    let mut stored_index = None;
    let read = loaded.is_ok();
    let ready = {
        let mut inner = s.borrow_mut();
        match loaded {
            Ok(Loaded::Rebuilt) => {}
            Ok(Loaded::Stored { index }) => {
                inner.engine.begin_restore(index.as_deref(), now);
                stored_index = Some(index);
            }
            Err(why) => {
                let message = format!("could not read the stored queue (read again shortly; calls wait, nothing is written meanwhile): {why}");
                notes.push(Note::Error(Error::new(ErrorCode::StorageError, message)));
                inner.engine.hold_writes_until_restored();
            }
        }
        if read {
            started(&mut inner, now);
        }
        std::mem::take(&mut inner.ready_waiters)
    };
    if !read {
        // Still `Starting`: calls wait (in order) until the read works (`read_again`).
        spawn_local(read_again(s.clone()));
    }
    // The calls that waited for the start, in order (no borrow held: `beforeSend` may run).
    calls::run_waiting(s);
    dispatch(s, notes);
    runtime::mark("inhouse:ready");
    for f in ready {
        let _ = f.call0(&JsValue::UNDEFINED);
    }
    if !read {
        return None;
    }
    // A `shutdown()` that came before the queue was read: it stores what was tracked
    // meanwhile, then stops.
    if !s.borrow().shutdown_waiters.is_empty() {
        continue_shutdown(s);
        return None;
    }
    // Delivery resumes in the next task, so that what waits for `ready` runs first rather than
    // behind the first requests' `fetch` calls.
    let mut inner = s.borrow_mut();
    let handler = inner.pump_handler.clone().expect("set in new");
    inner.timer = Some(schedule::Timeout::start(&handler, 0, now));
    stored_index
}

/// The stored state is read: the tracker runs, and what happened since the last start (install,
/// update, ...) is tracked before the calls that waited.
fn started(inner: &mut Inner, now: u64) {
    inner.phase = Phase::Running;
    sync_context(inner);
    let browser_started = inner.browser_started;
    calls::lifecycle_at_start(inner, browser_started, now);
    start_of_run(inner, now);
}

/// The start could not read the stored queue: the tracker stays `Starting` (calls wait, in
/// order, and nothing is written, which would replace the stored index and segments), and the
/// read is tried again with a growing wait (1 s, 2 s, ... about a minute); once it works the
/// start goes on as usual. A `shutdown()` meanwhile stops it: the calls that waited are refused.
async fn read_again(s: Shared) {
    let mut failures = 0u32;
    loop {
        failures += 1;
        schedule::sleep(500u64 << failures.min(7)).await;
        if !s.borrow().shutdown_waiters.is_empty() {
            return stop_unread(&s);
        }
        let now = now_ms();
        let Ok(loaded) = read_stored(&s, now).await else { continue };
        // From here, the start a successful read makes (`restore`).
        if let Some(index) = restored(&s, now, Ok(loaded)) {
            load_queue(s, index).await;
        }
        return;
    }
}

/// `shutdown()` while the stored queue could not be read: nothing can be stored, so the calls
/// that waited are refused, and the tracker stops.
fn stop_unread(s: &Shared) {
    let (waiting, shutdown, settings) = {
        let mut inner = s.borrow_mut();
        inner.phase = Phase::ShutDown;
        (std::mem::take(&mut inner.waiting), std::mem::take(&mut inner.shutdown_waiters), std::mem::take(&mut inner.settings_waiters))
    };
    calls::refuse_all(
        waiting,
        &Error::new(ErrorCode::ShutDown, "the tracker was shut down before the stored queue could be read; this call was not stored"),
    );
    for f in shutdown.into_iter().chain(settings) {
        let _ = f.call0(&JsValue::UNDEFINED);
    }
}

/// What each start does once: marks this browser run in `chrome.storage.session`, sets the daily
/// alarm, and gives Chrome the uninstall URL with this install's id. In the next task: none of
/// it is needed to be ready, and each is a call into the browser.
fn start_of_run(inner: &Inner, now: u64) {
    let daily = inner.engine.config().auto_events.daily;
    let uninstall = uninstall_url_now(inner, now);
    spawn_local(async move {
        schedule::sleep(0).await;
        if daily {
            schedule::set_daily_alarm(now);
        }
        if let Some(url) = uninstall {
            runtime::set_uninstall_url(&url);
        }
        let _ = storage::set_session_text(STARTED_KEY, "1").await;
    });
}

/// The `uninstallUrl` to give Chrome now, if one is configured: with this install's id, version
/// and age; opted out, the configured URL alone (nothing that joins the uninstall to the user's
/// events).
pub(crate) fn uninstall_url_now(inner: &Inner, now: u64) -> Option<String> {
    let base = inner.engine.config().uninstall_url.as_ref()?;
    if !inner.engine.enabled() {
        return Some(base.clone());
    }
    let installed = inner.engine.lifecycle().and_then(|s| s.installed);
    let version = inner.ctx.extension_version.as_deref();
    Some(uninstall_url(base, inner.engine.install_id(), version, installed, utc_day(now)))
}

/// Other code removed the SDK's keys from `chrome.storage.session` (the loader watches
/// `chrome.storage.onChanged`): the marker of this browser run and the session are written
/// again, so the next start does not take the clear for a browser start.
pub(crate) fn session_storage_lost(s: &Shared) {
    let mut inner = s.borrow_mut();
    match inner.phase {
        Phase::Starting => inner.session_cleared = true,
        Phase::Running => {
            inner.sessions.unstored();
            drop(inner);
            spawn_local(async move {
                let _ = storage::set_session_text(STARTED_KEY, "1").await;
            });
            schedule_pump(s);
        }
        Phase::ShutDown => {}
    }
}

/// The context stamped on new events follows the engine's install id (read at start, new after
/// an opt-out with purge) and profile.
pub(crate) fn sync_context(inner: &mut Inner) {
    inner.ctx.install_id = inner.engine.install_id().map(String::from);
    if inner.ctx.profile != *inner.engine.profile() {
        inner.ctx.profile = inner.engine.profile().clone();
    }
}

/// Stores the session in `chrome.storage.session` while it changes: one write out at a time,
/// the latest state each time.
async fn store_session(s: Shared) {
    loop {
        let Some(text) = s.borrow_mut().sessions.take_changed() else { break };
        // A failure leaves the session to this worker's memory: the next worker starts a new one.
        let _ = storage::set_session_text(SESSION_KEY, &text).await;
    }
    s.borrow_mut().session_writing = false;
}

/// Runs `pump` in a microtask: a burst of synchronous `track` calls shares one write.
pub(crate) fn schedule_pump(s: &Shared) {
    let mut inner = s.borrow_mut();
    if inner.pump_queued || inner.phase != Phase::Running {
        return;
    }
    inner.pump_queued = true;
    if let Some(handler) = &inner.pump_soon_handler {
        schedule::queue_microtask(handler);
    }
}

/// Starts every write and send the engine wants now, passes on its notes, answers flushes,
/// and sets the next wake-up (a timer, and an alarm that survives the worker).
pub(crate) fn pump(s: &Shared) {
    {
        let mut inner = s.borrow_mut();
        if inner.phase == Phase::Running {
            calls::daily(&mut inner, now_ms());
        }
    }
    calls::run_waiting(s);
    let now = now_ms();
    let online = runtime::online();
    let mut sends = Vec::new();
    let (notes, write) = {
        let mut inner = s.borrow_mut();
        if inner.phase != Phase::Running {
            return;
        }
        let flushing = !inner.flush_waiters.is_empty();
        let write = if inner.writing { None } else { inner.engine.take_write_plan(now, flushing) };
        if write.is_some() {
            inner.writing = true;
        }
        while let Some(send) = inner.engine.poll_send(now, online) {
            sends.push(send);
        }
        (inner.engine.drain_notes(), write)
    };
    if let Some(w) = write {
        start_write(s, w);
    }
    for send in sends {
        start_send(s, send);
    }
    dispatch(s, notes);
    answer_flushes(s, now);
    answer_settings(s);
    let session_changed = {
        let mut inner = s.borrow_mut();
        let start = !inner.session_writing && inner.sessions.changed();
        inner.session_writing |= start;
        start
    };
    if session_changed {
        spawn_local(store_session(s.clone()));
    }
    reschedule(s, now);
}

/// Sends one event; its verdict goes to the engine, and delivery goes on.
pub(crate) fn start_send(s: &Shared, send: Send) {
    let Send { slot, id, name, body } = send;
    let inner = s.borrow();
    let c = inner.engine.config();
    let url = c.track_url();
    let label = c.debug.then(|| format!("[inhouse] {name} {id}: "));
    let req = transport::Request {
        url: &url,
        credentials: inner.engine.credentials(),
        app_id: &c.app_id,
        event_id: &id,
        body: &body,
        timeout_ms: c.request_timeout_ms,
    };
    let sent = transport::send(req);
    let s = s.clone();
    spawn_local(async move {
        let verdict = sent.await;
        if let Some(label) = label {
            let outcome = verdict.error().map_or("delivered", |e| e.code.as_str());
            web_sys::console::debug_1(&format!("{label}{outcome}").into());
        }
        s.borrow_mut().engine.on_result(slot, verdict, now_ms());
        pump(&s);
    });
}

/// Performs a write (`inner.writing` is already set); when it is done, shutdown and delivery
/// go on.
pub(crate) fn start_write(s: &Shared, w: WritePlan) {
    // Each segment's text is handed to JavaScript as the engine holds it: no copy in the wasm.
    let values = Object::new();
    {
        let inner = s.borrow();
        let put = |key: &str, text: &str| drop(Reflect::set(&values, &JsValue::from_str(key), &JsValue::from_str(text)));
        for (i, seq) in w.segments.iter().enumerate() {
            put(&segment_key(*seq), inner.engine.segment_str(i));
        }
        if let Some(id) = &w.install {
            put(INSTALL_KEY, id);
        }
        if let Some(profile) = &w.profile {
            put(PROFILE_KEY, profile);
        }
        if let Some(lifecycle) = &w.lifecycle {
            put(LIFECYCLE_KEY, lifecycle);
        }
        for seq in &w.rewrite {
            put(&segment_key(*seq), inner.engine.stored_segment_str(*seq));
        }
        put(INDEX_KEY, &w.index);
    }
    let s = s.clone();
    spawn_local(async move {
        let result = storage::set_object(&values).await;
        if result.is_ok() {
            storage::remove_later(w.remove);
        }
        let result = result.map_err(|e| if e.is_empty() { "unknown error".into() } else { e });
        let notes = {
            let mut inner = s.borrow_mut();
            inner.writing = false;
            inner.engine.write_done(result, now_ms());
            inner.engine.drain_notes()
        };
        dispatch(&s, notes);
        continue_shutdown(&s);
        pump(&s);
    });
}

/// While `shutdown` calls wait: starts the next (forced) write, or, when nothing is left to
/// write, stops the tracker and settles them.
pub(crate) fn continue_shutdown(s: &Shared) {
    // What waits its turn is stored before the tracker stops, a `dedupKey` call too (checked
    // against the segments read so far): a possible duplicate rather than a lost call.
    if !s.borrow().shutdown_waiters.is_empty() {
        calls::run_waiting_forced(s);
    }
    let mut inner = s.borrow_mut();
    // Before the stored queue is read nothing may be written (it would overwrite the stored
    // index): `restored` continues the shutdown.
    if inner.shutdown_waiters.is_empty() || inner.writing || inner.phase == Phase::Starting {
        return;
    }
    if let Some(w) = inner.engine.take_write_plan(now_ms(), true) {
        inner.writing = true;
        drop(inner);
        start_write(s, w);
        return;
    }
    inner.phase = Phase::ShutDown;
    inner.timer = None;
    schedule::clear_alarm();
    let waiters = std::mem::take(&mut inner.shutdown_waiters);
    // Nothing is left waiting (`run_waiting` ran them all, forced), but a ticket a write never
    // carried would wait forever: refused.
    let unrun = std::mem::take(&mut inner.waiting);
    let tickets: Vec<Waiter> = std::mem::take(&mut inner.waiters).into_iter().filter_map(|(_, w)| w).collect();
    drop(inner);
    let stopped = Error::new(ErrorCode::ShutDown, "the tracker was shut down before this call could be stored");
    calls::refuse_all(unrun, &stopped);
    for w in tickets {
        calls::reject(&w, &stopped);
    }
    for f in waiters {
        let _ = f.call0(&JsValue::UNDEFINED);
    }
    answer_settings(s);
}

/// Settles the `setEnabled`, `register`, `unregister` and `reset` calls once the opt-in choice
/// and the profile are stored (or the tracker is shut down).
pub(crate) fn answer_settings(s: &Shared) {
    let waiters = {
        let mut inner = s.borrow_mut();
        let stored = inner.phase == Phase::Running && inner.engine.settings_persisted();
        if !(stored || inner.phase == Phase::ShutDown) {
            return;
        }
        std::mem::take(&mut inner.settings_waiters)
    };
    for f in waiters {
        let _ = f.call0(&JsValue::UNDEFINED);
    }
}

/// Settles `track` promises and calls the hooks, with no borrow held (a hook may call back).
pub(crate) fn dispatch(s: &Shared, notes: Vec<Note>) {
    let mut settled_any = false;
    for note in notes {
        let inner = s.borrow();
        if let Note::Ticket { ticket, id, result } = &note {
            drop(inner);
            let mut inner = s.borrow_mut();
            let Ok(at) = inner.waiters.binary_search_by_key(ticket, |(t, _)| *t) else { continue };
            let Some(w) = inner.waiters.get_mut(at).and_then(|(_, w)| w.take()) else { continue };
            settled_any = true;
            drop(inner);
            match result {
                TicketResult::Queued => settle(&w, id, "queued"),
                TicketResult::Evicted => settle(&w, id, "evicted"),
                TicketResult::Disabled => settle(&w, id, "disabled"),
                TicketResult::Failed(e) => drop(w.reject.call1(&JsValue::UNDEFINED, &to_js_error(e))),
            }
            continue;
        }
        let (on_error, on_drop) = (inner.hooks.on_error.clone(), inner.hooks.on_drop.clone());
        let debug = inner.engine.config().debug;
        drop(inner);
        match &note {
            Note::Error(e) => {
                if debug {
                    web_sys::console::warn_1(&format!("[inhouse] {}: {}", e.code.as_str(), e.message).into());
                }
                if let Some(f) = on_error {
                    let _ = f.call1(&JsValue::UNDEFINED, &to_js_error(e));
                }
            }
            Note::Dropped(d) => {
                if let Some(f) = on_drop {
                    let _ = f.call1(&JsValue::UNDEFINED, &to_js(d));
                }
            }
            Note::Ticket { .. } => {}
        }
    }
    if settled_any {
        s.borrow_mut().waiters.retain(|(_, w)| w.is_some());
    }
}

pub(crate) fn answer_flushes(s: &Shared, now: u64) {
    let waiters = {
        let mut inner = s.borrow_mut();
        if inner.flush_waiters.is_empty() || inner.writing {
            return;
        }
        let Some(status) = inner.engine.flush_status(now) else { return };
        let w = std::mem::take(&mut inner.flush_waiters);
        (w, to_js(&status))
    };
    for f in waiters.0 {
        let _ = f.call1(&JsValue::UNDEFINED, &waiters.1);
    }
}

/// Sets the timer for the next wake-up and moves the alarm backstop when it changed.
pub(crate) fn reschedule(s: &Shared, now: u64) {
    let mut inner = s.borrow_mut();
    let next = inner.engine.next_wakeup(now);
    match next {
        Some(at) => {
            // A long wait is cut into checks, each of which makes sure the alarm still exists
            // (other code may call chrome.alarms.clearAll()): the worker lives 30 s after its
            // last event, so a check every 20 s sees a cleared alarm before the worker stops.
            let fire_at = at.min(now + schedule::ALARM_CHECK_MS);
            if inner.timer.as_ref().is_none_or(|t| t.at > fire_at) {
                let handler = inner.pump_handler.clone().expect("set in new");
                inner.timer = Some(schedule::Timeout::start(&handler, fire_at.saturating_sub(now), fire_at));
            }
            let want = at.max(now + schedule::MIN_ALARM_DELAY_MS);
            if inner.alarm_at.is_none_or(|a| a.abs_diff(want) > 5_000 && (a < now || want < a)) {
                inner.alarm_at = Some(want);
                inner.alarm_checked_at = now;
                schedule::set_alarm(want, now);
            } else if now >= inner.alarm_checked_at + schedule::ALARM_CHECK_MS {
                inner.alarm_checked_at = now;
                schedule::ensure_alarm(inner.alarm_at.unwrap_or(want), now);
            }
        }
        None => {
            inner.timer = None;
            if inner.alarm_at.take().is_some() {
                schedule::clear_alarm();
            }
        }
    }
}
