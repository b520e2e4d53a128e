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
use crate::core::event::{EventName, Props};
use crate::core::handover;
use crate::core::origin::{relayed, Origin, PageUrl, Source};
use crate::core::profile::check_user_id;
use crate::web::answer::{to_js, IdentityAnswer};
use crate::web::calls::{self, ProfileChange, TrackCall, WaitingCall};
use crate::web::driver::{self, answer_flushes, answer_settings, continue_shutdown, dispatch, schedule_pump, Hooks, Phase, Shared, Waiter};
use crate::web::js::{deferred, describe, get, now_ms, to_js_error, Deferred};
use crate::web::{options, props, runtime};
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

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

/// Calls `notify` (no arguments) as the wasm traps on a Rust panic, just before the trap: the
/// loader rebuilds the tracker from storage (a trap inside a timer or a request's continuation
/// reaches no caller of the loader's).
#[wasm_bindgen(js_name = onTrap)]
pub fn on_trap(notify: Function) {
    crate::web::js::on_trap(notify);
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
        let read = options::read(&options).map_err(|e| to_js_error(&e))?;
        let (config, warnings) = config::validate(read.options, runtime::extension_id().as_deref()).map_err(|e| to_js_error(&e))?;
        for w in warnings {
            web_sys::console::warn_1(&format!("[inhouse] {w}").into());
        }
        let shared = driver::start(
            Engine::new(config, runtime::random_seed()),
            Hooks { on_error: read.on_error, on_drop: read.on_drop, before_send: read.before_send },
        );
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
        self.track_with(event_name, properties, options, Origin::default())
    }

    /// `track` made at `at` (milliseconds since the epoch): a call the loader held while the
    /// wasm was loading, stamped with the time it was made. Not part of the public API.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = trackAt)]
    pub fn track_at(&self, event_name: JsValue, properties: JsValue, options: JsValue, at: f64) -> Promise {
        let mut call = track_call(event_name, properties, options, Origin::default());
        if let Ok(call) = &mut call {
            if at.is_finite() && at >= 0.0 {
                call.at = at as u64;
            }
        }
        into_promise(call.and_then(|call| self.admit(call)))
    }

    /// The largest event, in bytes (`maxEventBytes`): the loader hands over no call whose text
    /// is longer (it could not be stored), so a huge rejected value never crosses into the wasm.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = maxEventBytes)]
    pub fn max_event_bytes(&self) -> u32 {
        self.shared.borrow().engine.config().limits.max_event_bytes as u32
    }

    /// A trap, for the loader's tests: a state borrowed twice, the kind of bug that would wedge
    /// the tracker. The loader notices and rebuilds the tracker from storage.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = _trapForTests)]
    pub fn trap_for_tests(&self) {
        let _held = self.shared.borrow_mut();
        let _again = self.shared.borrow_mut();
    }

    /// `track` relayed from an extension page or a content script: `sender` is what Chrome's
    /// `runtime.onMessage` says of the message's author, from which the event's surface, tab and
    /// page are taken (never from the message). The loader calls it; not part of the public API.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = trackFrom)]
    pub fn track_from(&self, event_name: JsValue, properties: JsValue, options: JsValue, sender: JsValue) -> Promise {
        let origin = self.origin_of(&sender);
        self.track_with(event_name, properties, options, origin)
    }

    /// The `track` calls of one turn of the event loop, handed over together by the loader
    /// (`core::handover` has the format and the measurement): `lines` one call each, `settlers`
    /// each call's `resolve` and `reject`, in order. Each promise settles as its own `track`
    /// call's would. Not part of the public API.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = trackBatch)]
    pub fn track_batch(&self, lines: &str, settlers: js_sys::Array) {
        for (i, line) in lines.split('\n').enumerate() {
            let at = |k: usize| settlers.get((2 * i + k) as u32).unchecked_into::<Function>();
            let waiter = Waiter { resolve: at(0), reject: at(1) };
            match handover::read_call(line) {
                Ok(c) => {
                    let call = TrackCall {
                        name: EventName::User(c.name),
                        props: c.props,
                        dedup_key: c.dedup_key,
                        origin: Origin::default(),
                        at: c.at,
                        hooked: false,
                    };
                    let _ = self.admit_to(call, waiter);
                }
                Err(e) => calls::reject(&waiter, &e),
            }
        }
        schedule_pump(&self.shared);
    }

    fn track_with(&self, event_name: JsValue, properties: JsValue, options: JsValue, origin: Origin) -> Promise {
        let call = track_call(event_name, properties, options, origin);
        into_promise(call.and_then(|call| self.admit(call)))
    }

    /// Identifies the user: `$user_id` on every later event (persisted), and one `$identify`
    /// event carrying the traits. Resolves like `track` with the `$identify` event's result.
    pub fn identify(&self, user_id: JsValue, traits: JsValue, sender: JsValue) -> Promise {
        into_promise(self.identify_call(user_id, traits, sender))
    }

    fn identify_call(&self, user_id: JsValue, traits: JsValue, sender: JsValue) -> Result<Promise, Error> {
        let user_id = user_id
            .as_string()
            .ok_or_else(|| Error::at(ErrorCode::InvalidUserId, "userId", format!("userId must be a string, got {}", type_name(&user_id))))?;
        check_user_id(&user_id)?;
        let props = props::to_props(&traits)?;
        let origin = self.origin_of(&sender);
        let mut call = TrackCall { name: EventName::Sdk("$identify"), props, dedup_key: None, origin, at: now_ms(), hooked: false };
        let Deferred { promise, resolve, reject } = deferred();
        let waiter = Waiter { resolve, reject };
        let mut inner = self.shared.borrow_mut();
        if inner.phase == Phase::ShutDown {
            return Err(Error::new(ErrorCode::ShutDown, "the tracker was shut down; create a new one"));
        }
        // The `$identify` event is checked first, carrying the user it identifies: a call that
        // cannot be stored changes nothing. Its promise answers for the profile too: the write
        // that stores the event stores the profile.
        calls::check_identify(&mut inner, &user_id, &call)?;
        call.hooked = calls::hooked(&inner);
        if calls::must_wait(&inner, &call) {
            inner.waiting.push_back(WaitingCall::Identify(user_id, call, waiter));
        } else {
            calls::change_profile(&mut inner, ProfileChange::Identify(user_id))?;
            let _ = calls::track(&mut inner, call, waiter, now_ms());
        }
        drop(inner);
        schedule_pump(&self.shared);
        Ok(promise)
    }

    /// A page or screen view: a `$pageview` with `properties` (the client adds the page's
    /// `name` and `title`; the surface and the page's path or origin come from `sender`).
    pub fn page(&self, name: JsValue, title: JsValue, properties: JsValue, sender: JsValue) -> Promise {
        let origin = self.origin_of(&sender);
        // A web page's title says as much as its path: a content script's page keeps it only
        // with the same opt-in (`pageUrl: 'path'` or `'full'`).
        let private_page = origin.source == Source::ContentScript && self.shared.borrow().engine.config().page_url == PageUrl::Origin;
        let title = if private_page { JsValue::UNDEFINED } else { title };
        let (name, title) = (name.as_string().unwrap_or_default(), title.as_string().unwrap_or_default());
        let page = Props::of_strings(
            &[("name", &name), ("title", &title)].map(|(k, v)| (k, v.as_str())).into_iter().filter(|(_, v)| !v.is_empty()).collect::<Vec<_>>(),
        );
        let call = props::to_props(&properties).map(|props| TrackCall {
            name: EventName::Sdk("$pageview"),
            props: props.merged(&page),
            dedup_key: None,
            origin,
            at: now_ms(),
            hooked: false,
        });
        into_promise(call.and_then(|call| self.admit(call)))
    }

    /// An error as a `$exception` event: its type, message and stack reduced to this
    /// extension's own frames, with `properties`. The same error repeated within a minute is
    /// counted (`stats().exceptionsThrottled`), not stored again; an error from a content script
    /// with no frame of this extension is the host page's, and is ignored (resolves `null`).
    #[wasm_bindgen(js_name = captureException)]
    pub fn capture_exception(&self, error: JsValue, properties: JsValue, sender: JsValue) -> Promise {
        into_promise(self.exception_call(error, properties, sender))
    }

    fn exception_call(&self, error: JsValue, properties: JsValue, sender: JsValue) -> Result<Promise, Error> {
        let origin = self.origin_of(&sender);
        let props = props::to_props(&properties)?;
        let secret = self.shared.borrow().engine.credentials().token_secret.clone();
        let thrown = runtime::thrown(&error).redacted(&secret);
        let extension_id = self.extension_id();
        let now = now_ms();
        let ours = origin.source != Source::ContentScript || !thrown.own_frames(&extension_id).is_empty();
        if !ours || !self.shared.borrow_mut().engine.admit_exception(thrown.fingerprint(&extension_id), now) {
            return Ok(Promise::resolve(&JsValue::NULL));
        }
        let props = props.merged(&thrown.props(&extension_id));
        self.admit(TrackCall { name: EventName::Sdk("$exception"), props, dedup_key: None, origin, at: now, hooked: false })
    }

    /// Whether `captureErrors` is on (the client asks, to hook its page's errors).
    #[wasm_bindgen(js_name = capturesErrors)]
    pub fn captures_errors(&self) -> bool {
        self.shared.borrow().engine.config().capture_errors
    }

    fn extension_id(&self) -> String {
        runtime::extension_id().unwrap_or_else(|| self.shared.borrow().engine.config().app_id.clone())
    }

    /// Merges properties into every later event (the event's own keys win); persisted. Resolves
    /// once stored.
    pub fn register(&self, properties: JsValue) -> Promise {
        into_promise(props::to_props(&properties).and_then(|props| self.change_profile(ProfileChange::Register(props))))
    }

    /// Stops merging one super property. Resolves once stored.
    pub fn unregister(&self, key: JsValue) -> Promise {
        let key =
            key.as_string().ok_or_else(|| Error::at(ErrorCode::InvalidProperties, "key", format!("key must be a string, got {}", type_name(&key))));
        into_promise(key.and_then(|key| self.change_profile(ProfileChange::Unregister(key))))
    }

    /// Logout: forgets the user id and the super properties and starts a new session; the
    /// install id stays. Resolves once stored.
    pub fn reset(&self) -> Promise {
        into_promise(self.change_profile(ProfileChange::Reset))
    }

    /// `{installId, sessionId, userId}` now (`null` where there is none yet).
    pub fn identity(&self) -> JsValue {
        let inner = self.shared.borrow();
        let now = now_ms();
        to_js(&IdentityAnswer {
            install_id: inner.engine.install_id(),
            session_id: inner.sessions.live(now).map(|s| s.id.as_str()),
            user_id: inner.engine.profile().user_id(),
        })
    }

    /// Where a call came from: Chrome's `sender` of a relayed call, or (none) the background.
    fn origin_of(&self, sender: &JsValue) -> Origin {
        if sender.is_undefined() {
            return Origin::default();
        }
        let extension_id = self.extension_id();
        let inner = self.shared.borrow();
        relayed(&runtime::sender(sender), &extension_id, &inner.pages, inner.engine.config().page_url)
    }

    /// Admits a checked call: built now, or, before the stored queue is read, checked now and
    /// built once it is.
    fn admit(&self, call: TrackCall) -> Result<Promise, Error> {
        let Deferred { promise, resolve, reject } = deferred();
        if self.admit_to(call, Waiter { resolve, reject }) {
            schedule_pump(&self.shared);
        }
        Ok(promise)
    }

    /// [`Tracker::admit`] settling `waiter`, with the error if the call is refused. Returns
    /// whether it was accepted: then the caller schedules the pump.
    fn admit_to(&self, mut call: TrackCall, waiter: Waiter) -> bool {
        let mut inner = self.shared.borrow_mut();
        if inner.phase == Phase::ShutDown {
            calls::reject(&waiter, &Error::new(ErrorCode::ShutDown, "the tracker was shut down; create a new one"));
            return false;
        }
        call.hooked = calls::hooked(&inner);
        // A call that waits its turn (`calls`) is checked now, and built when it runs: bad input
        // rejects at once.
        if calls::must_wait(&inner, &call) {
            return match calls::check_waiting(&mut inner, &call) {
                Ok(()) => {
                    inner.waiting.push_back(WaitingCall::Track(call, waiter));
                    true
                }
                Err(e) => {
                    calls::reject(&waiter, &e);
                    false
                }
            };
        }
        calls::track(&mut inner, call, waiter, now_ms())
    }

    /// Applies a profile change now (or, while other calls wait, in its turn); the promise
    /// resolves once it is stored.
    fn change_profile(&self, change: ProfileChange) -> Result<Promise, Error> {
        let mut inner = self.shared.borrow_mut();
        if inner.phase == Phase::ShutDown {
            return Err(Error::new(ErrorCode::ShutDown, "the tracker was shut down; create a new one"));
        }
        let Deferred { promise, resolve, reject } = deferred();
        if inner.phase == Phase::Starting || !inner.waiting.is_empty() {
            inner.waiting.push_back(WaitingCall::Profile(change, Waiter { resolve, reject }));
            drop(inner);
            schedule_pump(&self.shared);
            return Ok(promise);
        }
        calls::change_profile(&mut inner, change)?;
        inner.settings_waiters.push(resolve);
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
        // The stored queue could not be read (read again meanwhile): answered at once, blocked.
        let held = inner.engine.writes_held();
        drop(inner);
        if held {
            answer_flushes(&self.shared, now_ms());
        }
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
        let d = deferred();
        let uninstall = {
            let mut inner = self.shared.borrow_mut();
            // While other calls wait their turn, the choice takes its own: a call made before it
            // is stored (or not) by the choice it was made under.
            if inner.phase == Phase::Running && !inner.waiting.is_empty() {
                inner.waiting.push_back(WaitingCall::Consent { enabled, purge, resolve: d.resolve });
                drop(inner);
                schedule_pump(&self.shared);
                return d.promise;
            }
            inner.settings_waiters.push(d.resolve);
            calls::set_consent(&mut inner, enabled, purge, now_ms())
        };
        // The uninstall page follows the choice at once (before the start, `restored` sets it).
        if let Some(url) = uninstall {
            runtime::set_uninstall_url(&url);
        }
        schedule_pump(&self.shared);
        answer_settings(&self.shared);
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

    /// Other code removed the SDK's keys from `chrome.storage.session` (the loader watches
    /// `chrome.storage.onChanged`): they are written again.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = sessionStorageLost)]
    pub fn session_storage_lost(&self) {
        driver::session_storage_lost(&self.shared);
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

/// The promise of a call: its own, or a rejection with the error that refused it.
fn into_promise(result: Result<Promise, Error>) -> Promise {
    result.unwrap_or_else(|e| Promise::reject(&to_js_error(&e)))
}

/// JavaScript's `typeof`, for messages.
fn type_name(v: &JsValue) -> String {
    v.js_typeof().as_string().unwrap_or_default()
}

/// A `track` call's arguments, checked: the name a string, the options `{dedupKey}`, the
/// properties plain JSON.
fn track_call(event_name: JsValue, properties: JsValue, options: JsValue, origin: Origin) -> Result<TrackCall, Error> {
    let name = event_name
        .as_string()
        .ok_or_else(|| Error::at(ErrorCode::InvalidEventName, "eventName", format!("event name must be a string, got {}", type_name(&event_name))))?;
    let dedup_key = if options.is_undefined() || options.is_null() {
        None
    } else {
        if !options.is_object() {
            return Err(Error::at(ErrorCode::InvalidTrackOption, "options", "track options must be an object such as {dedupKey: \"...\"}"));
        }
        let k = js_sys::Reflect::get(&options, &JsValue::from_str("dedupKey"))
            .map_err(|e| Error::at(ErrorCode::InvalidTrackOption, "dedupKey", format!("reading dedupKey threw: {}", describe(&e))))?;
        if k.is_undefined() {
            None
        } else {
            Some(k.as_string().ok_or_else(|| Error::at(ErrorCode::InvalidTrackOption, "dedupKey", "dedupKey must be a string"))?)
        }
    };
    let props: Props = props::to_props(&properties)?;
    Ok(TrackCall { name: EventName::User(name), props, dedup_key, origin, at: now_ms(), hooked: false })
}
