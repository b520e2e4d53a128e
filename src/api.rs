//! The exported `Tracker` class. Each method has the same shape: convert the JavaScript
//! arguments, call the core, perform what it asks through `web` (the driving loop is
//! `web::driver`), convert back.
//!
//! The npm package's loader wraps this class (it registers the extension listeners at the
//! service worker's top level and queues calls until the wasm is ready); the methods here are
//! safe to call directly as well.

use crate::core::config;
use crate::core::engine::Engine;
use crate::core::error::{Error, ErrorCode};
use crate::core::event::build_event;
use crate::web::answer::to_js;
use crate::web::driver::{self, admit_event, answer_consent, continue_shutdown, dispatch, schedule_pump, sync_context, Early, Phase, Shared, Waiter};
use crate::web::js::{deferred, get, now_ms, to_js_error, Deferred};
use crate::web::{options, props, runtime};
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

/// What stands in for the install id while a `track` call made before it was read is checked.
const PLACEHOLDER_INSTALL_ID: &str = "00000000-0000-4000-8000-000000000000";

/// A durable event tracker for the Inhouse API. Create it once, in the background service
/// worker. See the package's `index.d.ts` for the documented API.
#[wasm_bindgen]
pub struct Tracker {
    shared: Shared,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.shared.borrow();
        f.debug_struct("Tracker").field("phase", &inner.phase).field("app_id", &inner.engine.config().app_id).finish_non_exhaustive()
    }
}

fn js_err(code: ErrorCode, message: impl Into<String>) -> JsValue {
    to_js_error(&Error::new(code, message))
}

/// Makes the errors the tracker creates instances of `class` (`new class(code, message,
/// field)`): the package's loader passes its `InhouseError`, so no call needs a wrapper to
/// convert them.
#[wasm_bindgen(js_name = useErrorClass)]
pub fn use_error_class(class: Function) {
    crate::web::js::use_error_class(class);
}

#[wasm_bindgen]
impl Tracker {
    /// Validates the options (throws an `InhouseError` naming the field) and starts reading the
    /// stored queue. Calls made meanwhile wait for it.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Tracker, JsValue> {
        if !options.is_object() {
            return Err(js_err(ErrorCode::InvalidOption, "options must be an object with tokenId, tokenSecret and optionally appId, baseUrl, ..."));
        }
        let (opts, on_error, on_drop) = options::read(&options).map_err(|e| to_js_error(&e))?;
        let (config, warnings) = config::validate(opts, runtime::extension_id().as_deref()).map_err(|e| to_js_error(&e))?;
        for w in warnings {
            web_sys::console::warn_1(&format!("[inhouse] {w}").into());
        }
        let shared = driver::start(Engine::new(config, runtime::random_seed()), on_error, on_drop);
        Ok(Tracker { shared })
    }

    /// Resolves once the stored queue is loaded and delivery has resumed.
    pub fn ready(&self) -> Promise {
        let d = deferred();
        if self.shared.borrow().phase == Phase::Starting {
            self.shared.borrow_mut().ready_waiters.push(d.resolve);
        } else {
            let _ = d.resolve.call0(&JsValue::UNDEFINED);
        }
        d.promise
    }

    /// Tracks an event. Resolves with `{id, status}` once it is durably queued (`status` is
    /// `"queued"`, `"deduplicated"`, `"disabled"` or `"evicted"`); rejects with an
    /// `InhouseError` only for input that can never be sent.
    pub fn track(&self, event_name: JsValue, properties: JsValue, options: JsValue) -> Promise {
        match self.admit(event_name, properties, options) {
            Ok(p) => p,
            Err(e) => Promise::reject(&to_js_error(&e)),
        }
    }

    fn admit(&self, event_name: JsValue, properties: JsValue, options: JsValue) -> Result<Promise, Error> {
        let name = event_name.as_string().ok_or_else(|| {
            Error::at(
                ErrorCode::InvalidEventName,
                "eventName",
                format!("event name must be a string, got {}", event_name.js_typeof().as_string().unwrap_or_default()),
            )
        })?;
        let dedup_key = if options.is_undefined() || options.is_null() {
            None
        } else {
            if !options.is_object() {
                return Err(Error::at(ErrorCode::InvalidTrackOption, "options", "track options must be an object such as {dedupKey: \"...\"}"));
            }
            let k = get(&options, "dedupKey");
            if k.is_undefined() {
                None
            } else {
                Some(k.as_string().ok_or_else(|| Error::at(ErrorCode::InvalidTrackOption, "dedupKey", "dedupKey must be a string"))?)
            }
        };
        let props = props::to_props(&properties)?;
        let mut inner = self.shared.borrow_mut();
        if inner.phase == Phase::ShutDown {
            return Err(Error::new(ErrorCode::ShutDown, "the tracker was shut down; create a new one"));
        }
        let now = now_ms();
        let max = inner.engine.config().limits.max_event_bytes;
        let state = &mut *inner;
        if state.phase == Phase::Starting {
            // Checked now (a bad event rejects at once), built once the stored install id is
            // read: an id of the same length stands in for it here.
            let mut ctx = state.ctx.clone();
            ctx.install_id = Some(PLACEHOLDER_INSTALL_ID.into());
            build_event(&name, props.clone(), dedup_key.as_deref(), &ctx, now, max, &mut state.rng)?;
            let Deferred { promise, resolve, reject } = deferred();
            state.early.push((Early { name, props, dedup_key, at: now }, Waiter { resolve, reject }));
            return Ok(promise);
        }
        let event = build_event(&name, props, dedup_key.as_deref(), &state.ctx, now, max, &mut state.rng)?;
        let Deferred { promise, resolve, reject } = deferred();
        let waiter = Waiter { resolve, reject };
        admit_event(&mut inner, event, waiter, now);
        drop(inner);
        schedule_pump(&self.shared);
        Ok(promise)
    }

    /// Delivers what can be delivered now. Resolves with `{status: "empty"}` when the queue is
    /// empty (and that is stored), or `{status: "blocked", reason, retryAt}` when delivery is
    /// waiting (offline, backoff, paused credentials, disabled).
    ///
    /// `retryNow` (default `true`): a wait caused by network errors ends now. The loader passes
    /// `false` for flushes relayed from other contexts, so that a page calling `flush()` in a
    /// loop cannot turn an outage into a request per call.
    pub fn flush(&self, retry_now: JsValue) -> Promise {
        if self.shared.borrow().phase == Phase::ShutDown {
            return Promise::reject(&js_err(ErrorCode::ShutDown, "the tracker was shut down"));
        }
        let d = deferred();
        let mut inner = self.shared.borrow_mut();
        if retry_now.as_bool() != Some(false) {
            inner.engine.retry_network_now(now_ms());
        }
        inner.flush_waiters.push(d.resolve);
        drop(inner);
        schedule_pump(&self.shared);
        d.promise
    }

    /// Counters and state: queued, inFlight, delivered, retried, dropped by reason,
    /// bytesStored, lastError, nextAttemptAt, storageWrites, requests.
    pub fn stats(&self) -> JsValue {
        to_js(&self.shared.borrow().engine.stats(now_ms()))
    }

    /// Replaces the credentials (for example after a 401). Delivery paused by the server's
    /// refusal resumes at once.
    #[wasm_bindgen(js_name = setCredentials)]
    pub fn set_credentials(&self, credentials: JsValue) -> Result<(), JsValue> {
        let creds = config::validate_credentials(get(&credentials, "tokenId").as_string(), get(&credentials, "tokenSecret").as_string())
            .map_err(|e| to_js_error(&e))?;
        self.shared.borrow_mut().engine.set_credentials(creds);
        schedule_pump(&self.shared);
        Ok(())
    }

    /// Opt-in or opt-out, persisted. Disabling stops collection and delivery; `purge` also drops
    /// every queued event. Resolves once the choice is stored.
    #[wasm_bindgen(js_name = setEnabled)]
    pub fn set_enabled(&self, enabled: bool, purge: bool) -> Promise {
        {
            let mut inner = self.shared.borrow_mut();
            let now = now_ms();
            inner.engine.set_enabled(enabled, purge, now);
            // A purge forgets the install id: later events carry the new one.
            sync_context(&mut inner);
        }
        schedule_pump(&self.shared);
        let d = deferred();
        self.shared.borrow_mut().consent_waiters.push(d.resolve);
        answer_consent(&self.shared);
        d.promise
    }

    /// Whether tracking is enabled.
    #[wasm_bindgen(js_name = isEnabled)]
    pub fn is_enabled(&self) -> bool {
        self.shared.borrow().engine.enabled()
    }

    /// Done-marks per index write (default 5): for the benchmark that measures duplicates per
    /// worker stop against storage writes. Not part of the documented API.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = setAckBatch)]
    pub fn set_ack_batch(&self, marks: u32) {
        self.shared.borrow_mut().engine.set_ack_batch(marks as usize);
    }

    /// Other code removed the SDK's data from `chrome.storage.local` (the loader watches
    /// `chrome.storage.onChanged`): the queue in memory is written again.
    #[wasm_bindgen(js_name = storageLost)]
    pub fn storage_lost(&self) {
        let notes = {
            let mut inner = self.shared.borrow_mut();
            if inner.phase != Phase::Running {
                return;
            }
            inner.engine.storage_lost(now_ms());
            inner.engine.drain_notes()
        };
        dispatch(&self.shared, notes);
        schedule_pump(&self.shared);
    }

    /// Resumes delivery now (the loader calls it on the SDK's alarm and on browser start).
    pub fn wake(&self) {
        schedule_pump(&self.shared);
    }

    /// Writes what is pending, stops timers and the alarm, and refuses further calls. In-flight
    /// requests finish on their own; their events stay queued if the answer never comes.
    pub fn shutdown(&self) -> Promise {
        let d = deferred();
        self.shared.borrow_mut().shutdown_waiters.push(d.resolve);
        continue_shutdown(&self.shared);
        d.promise
    }
}

impl Tracker {
    /// A second handle on the same tracker (tests pass one to JavaScript and keep the other).
    #[doc(hidden)]
    pub fn clone_handle(&self) -> Tracker {
        Tracker { shared: self.shared.clone() }
    }
}
