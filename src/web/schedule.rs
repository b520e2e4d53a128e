//! Waking up later. Short waits use `setTimeout`, which dies with the service worker; every
//! wait also has a `chrome.alarms` backstop, which survives it and wakes the worker (the
//! package's loader routes the alarm to `Tracker.wake`).

use super::js::{absorb, call, global_path};
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// Name of the one alarm the SDK owns.
pub const ALARM_NAME: &str = "inhouse-tracker:wake";
pub use crate::core::tracker::MIN_ALARM_DELAY_MS;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
    /// Runs `callback` once the current task and the microtasks queued before it are done.
    #[wasm_bindgen(js_name = queueMicrotask)]
    pub fn queue_microtask(callback: &Function);
}

/// A pending `setTimeout`, cleared when dropped.
#[derive(Debug)]
pub struct Timeout {
    handle: JsValue,
}

impl Timeout {
    /// Calls `handler` after `delay_ms`.
    pub fn start(handler: &Function, delay_ms: u64) -> Timeout {
        Timeout { handle: set_timeout(handler, delay_ms as f64) }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.handle);
    }
}

/// Resolves after `ms` (a `setTimeout`; it dies with the worker, like the task awaiting it).
pub async fn sleep(ms: u64) {
    let promise = js_sys::Promise::new(&mut |resolve, _| drop(set_timeout(&resolve, ms as f64)));
    let _ = JsFuture::from(promise).await;
}

/// Sets (or moves) the backstop alarm to `when_ms`, no sooner than Chrome allows.
pub fn set_alarm(when_ms: u64, now_ms: u64) {
    let Some(alarms) = global_path(&["chrome", "alarms"]) else { return };
    let info = Object::new();
    let when = when_ms.max(now_ms + MIN_ALARM_DELAY_MS);
    let _ = Reflect::set(&info, &"when".into(), &(when as f64).into());
    if let Ok(p) = call(&alarms, "create", &[&ALARM_NAME.into(), &info]) {
        absorb(p);
    }
}

/// Sets the alarm for `when_ms` again if it no longer exists (other code cleared it).
pub fn ensure_alarm(when_ms: u64, now_ms: u64) {
    let Some(alarms) = global_path(&["chrome", "alarms"]) else { return };
    let Ok(p) = call(&alarms, "get", &[&ALARM_NAME.into()]).and_then(|p| p.dyn_into::<js_sys::Promise>()) else { return };
    wasm_bindgen_futures::spawn_local(async move {
        let found = JsFuture::from(p).await;
        if found.is_ok_and(|alarm| alarm.is_undefined() || alarm.is_null()) {
            set_alarm(when_ms, now_ms);
        }
    });
}

/// Name of the daily alarm, which wakes the worker for `$daily_active`.
pub const DAILY_ALARM_NAME: &str = "inhouse-tracker:daily";

/// Sets the daily alarm: just after the next UTC midnight, then every 24 hours.
pub fn set_daily_alarm(now_ms: u64) {
    let Some(alarms) = global_path(&["chrome", "alarms"]) else { return };
    let info = Object::new();
    let next_midnight = (now_ms / 86_400_000 + 1) * 86_400_000 + 60_000;
    let _ = Reflect::set(&info, &"when".into(), &(next_midnight as f64).into());
    let _ = Reflect::set(&info, &"periodInMinutes".into(), &1440.into());
    if let Ok(p) = call(&alarms, "create", &[&DAILY_ALARM_NAME.into(), &info]) {
        absorb(p);
    }
}

/// Clears the backstop alarm (the queue is empty).
pub fn clear_alarm() {
    if let Some(alarms) = global_path(&["chrome", "alarms"]) {
        if let Ok(p) = call(&alarms, "clear", &[&ALARM_NAME.into()]) {
            absorb(p);
        }
    }
}
