//! `chrome.storage.local`, the queue's durable home, and `chrome.storage.session`, the
//! session's (it survives the worker and is gone when the browser closes). Values are the text
//! the core writes.
//!
//! Bound through `globalThis.chrome` at call time: where no extension API exists (a plain test
//! page), a test may install its own `chrome.storage.local` before creating the tracker. Every
//! operation is an `async fn` whose failure is a readable reason, never a thrown exception.

use super::js::{call, describe, get, global_path};
use js_sys::{Array, Object, Promise};
use std::future::Future;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `chrome.storage.local.<method>(...args)`: its value, or a readable reason.
async fn run(method: &str, args: &[&JsValue]) -> Result<JsValue, String> {
    start("local", method, args)?.await.map_err(|e| describe(&e))
}

/// Starts `chrome.storage.<area>.<method>(...args)` now.
fn start(area: &str, method: &str, args: &[&JsValue]) -> Result<JsFuture, String> {
    let storage = global_path(&["chrome", "storage", area])
        .ok_or_else(|| format!("chrome.storage.{area} is not available (is the \"storage\" permission in the manifest?)"))?;
    let promise = call(&storage, method, args).map_err(|e| describe(&e))?;
    let promise = promise.dyn_into::<Promise>().map_err(|_| format!("chrome.storage.{area}.{method} did not return a Promise"))?;
    Ok(JsFuture::from(promise))
}

/// The values under `keys` in `chrome.storage.session` (`None`: it could not be read, or there
/// is no such area). The read starts now; the future gives its answer.
pub fn session_get(keys: &[&str]) -> impl Future<Output = Option<Stored>> {
    let keys: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
    let started = start("session", "get", &[&keys]);
    async move { started.ok()?.await.ok().map(Stored) }
}

/// Stores `text` under `key` in `chrome.storage.session`.
pub async fn set_session_text(key: &str, text: &str) -> Result<(), String> {
    let values = Object::new();
    let _ = js_sys::Reflect::set(&values, &JsValue::from_str(key), &JsValue::from_str(text));
    start("session", "set", &[&values])?.await.map(drop).map_err(|e| describe(&e))
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

/// Reads `keys` in one `get` call, which starts now; the future gives its answer.
pub fn get_keys(keys: &[String]) -> impl Future<Output = Result<Stored, String>> {
    let started = start("local", "get", &[&key_array(keys)]);
    async move { started?.await.map(Stored).map_err(|e| describe(&e)) }
}

/// Writes every property of `values` in one `set` call, which Chrome applies atomically.
pub async fn set_object(values: &Object) -> Result<(), String> {
    run("set", &[values]).await.map(drop)
}

/// Removes keys (nothing for none).
pub async fn remove(keys: &[String]) -> Result<(), String> {
    if keys.is_empty() {
        return Ok(());
    }
    run("remove", &[&key_array(keys)]).await.map(drop)
}

/// Removes keys in the background. A failed removal only leaves garbage, which the next start
/// cleans up: no caller needs the answer.
pub fn remove_later(keys: Vec<String>) {
    if !keys.is_empty() {
        wasm_bindgen_futures::spawn_local(async move {
            let _ = remove(&keys).await;
        });
    }
}

/// Every key in the area with the given prefix: through `getKeys` (Chrome 130+), or else by
/// reading everything (`get(null)`, Chrome 119–129); `None` if that fails.
pub async fn keys_with_prefix(prefix: &str) -> Option<Vec<String>> {
    let keys: Array = if global_path(&["chrome", "storage", "local", "getKeys"]).is_some() {
        run("getKeys", &[]).await.ok()?.dyn_into().ok()?
    } else {
        let all = run("get", &[&JsValue::NULL]).await.ok().filter(JsValue::is_object)?;
        Object::keys(all.unchecked_ref::<Object>())
    };
    Some(keys.iter().filter_map(|k| k.as_string()).filter(|k| k.starts_with(prefix)).collect())
}
