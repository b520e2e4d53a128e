//! `chrome.storage.local`, the queue's durable home. Values are the text the core writes.
//!
//! Bound through `globalThis.chrome` at call time: where no extension API exists (a plain test
//! page), a test may install its own `chrome.storage.local` before creating the tracker. Every
//! operation answers through a callback, from a later microtask, never from inside the call.

use super::js::{call, describe, get, global_path, when_settled, Settled};
use crate::core::text::cat;
use js_sys::{Array, Object, Promise};
use wasm_bindgen::{JsCast, JsValue};

/// Calls `chrome.storage.local.<method>(...args)`; `then` gets its value or a readable reason.
fn run(method: &str, args: &[&JsValue], then: Box<dyn FnOnce(Result<JsValue, String>)>) {
    let started = global_path(&["chrome", "storage", "local"])
        .ok_or_else(|| JsValue::from_str("chrome.storage.local is not available (is the \"storage\" permission in the manifest?)"))
        .and_then(|area| call(&area, method, args))
        .and_then(|p| p.dyn_into::<Promise>().map_err(|_| JsValue::from_str(&cat(&["chrome.storage.local.", method, " did not return a Promise"]))));
    // A failure to start answers like a failed operation: later, through `then`.
    let promise = started.unwrap_or_else(|e| Promise::reject(&e));
    when_settled(&promise, Box::new(move |r: Settled| then(r.map_err(|e| describe(&e)))));
}

/// What `get` read: the stored values by key.
#[derive(Debug)]
pub struct Stored(JsValue);

impl Stored {
    /// The text stored under `key`; `None` when absent (or holding something else). Each call
    /// copies the value into the wasm, so a caller holds one segment's text at a time.
    pub fn text(&self, key: &str) -> Option<String> {
        get(&self.0, key).as_string()
    }

    /// Whether anything at all is stored under `key` (text or not).
    pub fn present(&self, key: &str) -> bool {
        !get(&self.0, key).is_undefined()
    }
}

fn key_array(keys: &[String]) -> Array {
    keys.iter().map(|k| JsValue::from_str(k)).collect()
}

/// Reads `keys` in one `get` call.
pub fn get_keys(keys: &[String], then: impl FnOnce(Result<Stored, String>) + 'static) {
    run("get", &[&key_array(keys)], Box::new(move |r| then(r.map(Stored))));
}

/// Writes every property of `values` in one `set` call, which Chrome applies atomically.
pub fn set_object(values: &Object, then: impl FnOnce(Result<(), String>) + 'static) {
    run("set", &[values], Box::new(move |r| then(r.map(drop))));
}

/// Removes keys (nothing for none). A failed removal only leaves garbage, which the next start
/// cleans up: no caller needs the answer.
pub fn remove(keys: &[String]) {
    if !keys.is_empty() {
        run("remove", &[&key_array(keys)], Box::new(drop));
    }
}

/// Every key in the area with the given prefix: through `getKeys` (Chrome 130+), or else by
/// reading everything (`get(null)`, Chrome 119–129); `None` if that fails.
pub fn keys_with_prefix(prefix: &'static str, then: impl FnOnce(Option<Vec<String>>) + 'static) {
    let has_get_keys = global_path(&["chrome", "storage", "local", "getKeys"]).is_some();
    let pick = move |keys: Option<Array>| keys.map(|keys| keys.iter().filter_map(|k| k.as_string()).filter(|k| k.starts_with(prefix)).collect());
    if has_get_keys {
        run("getKeys", &[], Box::new(move |r| then(pick(r.ok().and_then(|v| v.dyn_into::<Array>().ok())))));
    } else {
        run(
            "get",
            &[&JsValue::NULL],
            Box::new(move |r| then(pick(r.ok().filter(JsValue::is_object).map(|all| Object::keys(all.unchecked_ref::<Object>()))))),
        );
    }
}
