//! The exported `Tracker` class. Each method has the same shape: convert the JavaScript
//! arguments, give the tracker core (`core::tracker`) a command, and let the shell
//! (`web::shell`) carry out what it asks; a promise settles when the core answers.
//!
//! The npm package's loader wraps this class (it registers the extension listeners at the
//! service worker's top level and queues calls until the wasm is ready); the methods here are
//! safe to call directly as well.

use crate::core::config;
use crate::core::error::{Error, ErrorCode};
use crate::core::event::{EventName, Props};
use crate::core::handover;
use crate::core::origin::{Extension, Origin, Sender};
use crate::core::tracker::{Command, Facts, ProfileChange, Reply, TrackCall, Tracker as Core};
use crate::web::answer::{to_js, IdentityAnswer};
use crate::web::js::{describe, get, now_ms, to_js_error};
use crate::web::shell::{self, Hooks, Shared};
use crate::web::{options, props, runtime};
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

/// How many handed-over calls of a batch run before the effects they asked for are carried out.
const RUN_EVERY_CALLS: usize = 1000;

/// A durable event tracker for the Inhouse API. Create it once, in the background service
/// worker. See the package's `index.d.ts` for the documented API.
#[wasm_bindgen]
pub struct Tracker {
    shared: Shared,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shell = self.shared.borrow();
        f.debug_struct("Tracker").field("phase", &shell.core.phase()).field("app_id", &shell.core.config().app_id).finish_non_exhaustive()
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
        // The start's phases are named (`inhouse:*` marks): the options read and checked, what
        // the browser says of where the tracker runs, the core created, the shell started (the
        // first reads issued).
        let read = options::read(&options).map_err(|e| to_js_error(&e))?;
        let (config, warnings) = config::validate(read.options, runtime::extension_id().as_deref()).map_err(|e| to_js_error(&e))?;
        for w in warnings {
            web_sys::console::warn_1(&format!("[inhouse] {w}").into());
        }
        runtime::mark("inhouse:options-checked");
        let (browser, browser_version) = runtime::browser();
        let (extension_version, pages) = runtime::manifest_facts();
        let id = runtime::extension_id().unwrap_or_else(|| config.app_id.clone());
        let extension = match runtime::extension_origin() {
            Some(origin) => Extension { id, origin },
            None => Extension::chrome(&id),
        };
        let facts = Facts {
            extension,
            extension_version,
            pages,
            browser,
            browser_version,
            locale: runtime::locale(),
            before_send: read.before_send.is_some(),
        };
        runtime::mark("inhouse:facts-read");
        let core = Core::new(config, facts, runtime::random_seed());
        runtime::mark("inhouse:core-created");
        let shared = shell::start(core, Hooks { on_error: read.on_error, on_drop: read.on_drop, before_send: read.before_send });
        runtime::mark("inhouse:shell-started");
        Ok(Tracker { shared })
    }

    /// A promise settled by the tracker's answer to the command `make` builds with its reply.
    fn call(&self, make: impl FnOnce(Reply) -> Command) -> Promise {
        let (promise, reply) = shell::promise(&self.shared);
        shell::command(&self.shared, make(reply));
        promise
    }

    /// Resolves once the stored queue is loaded and delivery has resumed.
    pub fn ready(&self) -> Promise {
        self.call(|reply| Command::Ready { reply })
    }

    /// Tracks an event. Resolves with `{id, status}` once it is durably queued (`status` is
    /// `"queued"`, `"deduplicated"`, `"disabled"` or `"evicted"`); rejects with an
    /// `InhouseError` only for input that can never be sent.
    pub fn track(&self, event_name: JsValue, properties: JsValue, options: JsValue) -> Promise {
        self.track_from(event_name, properties, options, JsValue::UNDEFINED)
    }

    /// `track` made at `at` (milliseconds since the epoch): a call the loader held while the
    /// wasm was loading, stamped with the time it was made. Not part of the public API.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = trackAt)]
    pub fn track_at(&self, event_name: JsValue, properties: JsValue, options: JsValue, at: f64) -> Promise {
        match track_call(event_name, properties, options) {
            Ok(mut call) => {
                if at.is_finite() && at >= 0.0 {
                    call.at = at as u64;
                }
                self.call(|reply| Command::Track { call, from: None, reply })
            }
            Err(e) => rejected(&e),
        }
    }

    /// The largest event, in bytes (`maxEventBytes`): the loader hands over no call whose text
    /// is longer (it could not be stored), so a huge rejected value never crosses into the wasm.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = maxEventBytes)]
    pub fn max_event_bytes(&self) -> u32 {
        self.shared.borrow().core.config().limits.max_event_bytes as u32
    }

    /// A trap, for the loader's tests: a state borrowed twice, the kind of bug that would wedge
    /// the tracker. The loader notices and rebuilds the tracker from storage.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = _trapForTests)]
    pub fn trap_for_tests(&self) {
        let _held = self.shared.borrow_mut();
        let _again = self.shared.borrow_mut();
    }

    /// `track` relayed from an extension page or a content script: `sender` is what the
    /// browser's `runtime.onMessage` says of the message's author, from which the event's
    /// surface, tab and page are taken (never from the message). The loader calls it; not part
    /// of the public API.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = trackFrom)]
    pub fn track_from(&self, event_name: JsValue, properties: JsValue, options: JsValue, sender: JsValue) -> Promise {
        match track_call(event_name, properties, options) {
            Ok(call) => self.call(|reply| Command::Track { call, from: sender_of(&sender), reply }),
            Err(e) => rejected(&e),
        }
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
            match handover::read_call(line) {
                Ok(c) => {
                    let reply = shell::expect(&self.shared, at(0), at(1));
                    let call =
                        TrackCall { name: EventName::User(c.name), props: c.props, dedup_key: c.dedup_key, origin: Origin::default(), at: c.at };
                    shell::handle(&self.shared, Command::Track { call, from: None, reply });
                }
                Err(e) => drop(at(1).call1(&JsValue::UNDEFINED, &to_js_error(&e))),
            }
            // A long batch carries out what its calls asked (evictions settled and reported) as
            // it goes, so that their notes do not pile up in memory until it ends.
            if i % RUN_EVERY_CALLS == RUN_EVERY_CALLS - 1 {
                shell::run(&self.shared);
            }
        }
        shell::run(&self.shared);
    }

    /// Identifies the user: `$user_id` on every later event (persisted), and one `$identify`
    /// event carrying the traits. Resolves like `track` with the `$identify` event's result.
    pub fn identify(&self, user_id: JsValue, traits: JsValue, sender: JsValue) -> Promise {
        let Some(user_id) = user_id.as_string() else {
            return rejected(&Error::at(ErrorCode::InvalidUserId, "userId", format!("userId must be a string, got {}", type_name(&user_id))));
        };
        match props::to_props(&traits) {
            Ok(traits) => self.call(|reply| Command::Identify { user_id, traits, from: sender_of(&sender), at: now_ms(), reply }),
            Err(e) => rejected(&e),
        }
    }

    /// A page or screen view: a `$pageview` with `properties` (the client adds the page's
    /// `name` and `title`; the surface and the page's path or origin come from `sender`).
    pub fn page(&self, name: JsValue, title: JsValue, properties: JsValue, sender: JsValue) -> Promise {
        match props::to_props(&properties) {
            Ok(props) => self.call(|reply| Command::Page {
                name: name.as_string(),
                title: title.as_string(),
                props,
                from: sender_of(&sender),
                at: now_ms(),
                reply,
            }),
            Err(e) => rejected(&e),
        }
    }

    /// An error as a `$exception` event: its type, message and stack reduced to this
    /// extension's own frames, with `properties`. The same error repeated within a minute is
    /// counted (`stats().exceptionsThrottled`), not stored again; an error from a content script
    /// with no frame of this extension is the host page's, and is ignored (resolves `null`).
    #[wasm_bindgen(js_name = captureException)]
    pub fn capture_exception(&self, error: JsValue, properties: JsValue, sender: JsValue) -> Promise {
        match props::to_props(&properties) {
            Ok(props) => {
                let thrown = runtime::thrown(&error);
                self.call(|reply| Command::Exception { thrown, props, from: sender_of(&sender), at: now_ms(), reply })
            }
            Err(e) => rejected(&e),
        }
    }

    /// Whether `captureErrors` is on (the client asks, to hook its page's errors).
    #[wasm_bindgen(js_name = capturesErrors)]
    pub fn captures_errors(&self) -> bool {
        self.shared.borrow().core.config().capture_errors
    }

    /// Merges properties into every later event (the event's own keys win); persisted. Resolves
    /// once stored.
    pub fn register(&self, properties: JsValue) -> Promise {
        match props::to_props(&properties) {
            Ok(props) => self.change_profile(ProfileChange::Register(props)),
            Err(e) => rejected(&e),
        }
    }

    /// Stops merging one super property. Resolves once stored.
    pub fn unregister(&self, key: JsValue) -> Promise {
        match key.as_string() {
            Some(key) => self.change_profile(ProfileChange::Unregister(key)),
            None => rejected(&Error::at(ErrorCode::InvalidProperties, "key", format!("key must be a string, got {}", type_name(&key)))),
        }
    }

    /// Logout: forgets the user id and the super properties and starts a new session; the
    /// install id stays. Resolves once stored.
    pub fn reset(&self) -> Promise {
        self.change_profile(ProfileChange::Reset)
    }

    fn change_profile(&self, change: ProfileChange) -> Promise {
        self.call(|reply| Command::Profile { change, reply })
    }

    /// `{installId, sessionId, userId}` now (`null` where there is none yet).
    pub fn identity(&self) -> JsValue {
        let shell = self.shared.borrow();
        let (install_id, session_id, user_id) = shell.core.identity(now_ms());
        to_js(&IdentityAnswer { install_id, session_id, user_id })
    }

    /// Delivers what can be delivered now. Resolves with `{status: "empty"}` when the queue is
    /// empty (and that is stored), or `{status: "blocked", reason, retryAt}` when delivery is
    /// waiting (offline, backoff, paused credentials, disabled).
    ///
    /// `retryNow` (default `true`): a wait caused by network errors ends now. The loader passes
    /// `false` for flushes relayed from other contexts, so that a page calling `flush()` in a
    /// loop cannot turn an outage into a request per call.
    pub fn flush(&self, retry_now: JsValue) -> Promise {
        let retry_now = retry_now.as_bool() != Some(false);
        self.call(|reply| Command::Flush { retry_now, reply })
    }

    /// Counters and state: queued, inFlight, delivered, retried, dropped by reason,
    /// bytesStored, lastError, nextAttemptAt, storageWrites, requests.
    pub fn stats(&self) -> JsValue {
        let stats = self.shared.borrow().core.stats(now_ms());
        to_js(&stats)
    }

    /// Replaces the credentials (for example after a 401). Delivery paused by the server's
    /// refusal resumes at once.
    #[wasm_bindgen(js_name = setCredentials)]
    pub fn set_credentials(&self, credentials: JsValue) -> Result<(), JsValue> {
        let creds = config::validate_credentials(get(&credentials, "tokenId").as_string(), get(&credentials, "tokenSecret").as_string())
            .map_err(|e| to_js_error(&e))?;
        shell::command(&self.shared, Command::SetCredentials(creds));
        Ok(())
    }

    /// Opt-in or opt-out, persisted. Disabling stops collection and delivery; `purge` also drops
    /// every queued event. Resolves once the choice is stored.
    #[wasm_bindgen(js_name = setEnabled)]
    pub fn set_enabled(&self, enabled: bool, purge: bool) -> Promise {
        self.call(|reply| Command::SetEnabled { enabled, purge, reply })
    }

    /// Whether tracking is enabled.
    #[wasm_bindgen(js_name = isEnabled)]
    pub fn is_enabled(&self) -> bool {
        self.shared.borrow().core.enabled()
    }

    /// Done-marks per index write (default 5): for the benchmark that measures duplicates per
    /// worker stop against storage writes. Not part of the documented API.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = setAckBatch)]
    pub fn set_ack_batch(&self, marks: u32) {
        self.shared.borrow_mut().core.set_ack_batch(marks as usize);
    }

    /// Other code removed the SDK's data from `chrome.storage.local` (the loader watches
    /// `chrome.storage.onChanged`): the queue in memory is written again.
    #[wasm_bindgen(js_name = storageLost)]
    pub fn storage_lost(&self) {
        shell::command(&self.shared, Command::StorageLost);
    }

    /// Other code removed the SDK's keys from `chrome.storage.session` (the loader watches
    /// `chrome.storage.onChanged`): they are written again.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = sessionStorageLost)]
    pub fn session_storage_lost(&self) {
        shell::command(&self.shared, Command::SessionStorageLost);
    }

    /// Resumes delivery now (the loader calls it on the SDK's alarm and on browser start).
    pub fn wake(&self) {
        shell::command(&self.shared, Command::Wake);
    }

    /// Writes what is pending, stops timers and the alarm, and refuses further calls. In-flight
    /// requests finish on their own; their events stay queued if the answer never comes.
    pub fn shutdown(&self) -> Promise {
        self.call(|reply| Command::Shutdown { reply })
    }
}

impl Tracker {
    /// A second handle on the same tracker (tests pass one to JavaScript and keep the other).
    #[doc(hidden)]
    pub fn clone_handle(&self) -> Tracker {
        Tracker { shared: self.shared.clone() }
    }
}

/// A promise rejected with `e` (input refused before it reached the tracker).
fn rejected(e: &Error) -> Promise {
    Promise::reject(&to_js_error(e))
}

/// JavaScript's `typeof`, for messages.
fn type_name(v: &JsValue) -> String {
    v.js_typeof().as_string().unwrap_or_default()
}

/// What the browser's `sender` says of a relayed call's author (`None`: the background's own).
fn sender_of(sender: &JsValue) -> Option<Sender> {
    (!sender.is_undefined()).then(|| runtime::sender(sender))
}

/// A `track` call's arguments, checked: the name a string, the options `{dedupKey}`, the
/// properties plain JSON.
fn track_call(event_name: JsValue, properties: JsValue, options: JsValue) -> Result<TrackCall, Error> {
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
    Ok(TrackCall { name: EventName::User(name), props, dedup_key, origin: Origin::default(), at: now_ms() })
}
