//! `chrome.storage.local`, the queue's durable home. Values are the text the core writes.
//!
//! Bound through `globalThis.chrome` at call time: where no extension API exists (a plain test
//! page), a test may install its own `chrome.storage.local` before creating the tracker.

use super::js::{call, describe, get, global_path};
use js_sys::{Array, Object, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

fn area() -> Result<JsValue, String> {
    global_path(&["chrome", "storage", "local"])
        .ok_or_else(|| "chrome.storage.local is not available (is the \"storage\" permission in the manifest?)".to_string())
}

async fn run(method: &str, arg: &JsValue) -> Result<JsValue, String> {
    let area = area()?;
    let promise: Promise = call(&area, method, &[arg]).map_err(|e| describe(&e))?.dyn_into().map_err(|_| ["chrome.storage.local.", method, " did not return a Promise"].concat())?;
    JsFuture::from(promise).await.map_err(|e| describe(&e))
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
}

/// Reads `keys` in one `get` call.
pub async fn get_keys(keys: &[String]) -> Result<Stored, String> {
    let arr: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
    run("get", &arr).await.map(Stored)
}

/// Writes every property of `values` in one `set` call, which Chrome applies atomically.
pub async fn set_object(values: &Object) -> Result<(), String> {
    run("set", values).await.map(drop)
}

/// Removes keys (no-op for none).
pub async fn remove(keys: &[String]) -> Result<(), String> {
    if keys.is_empty() {
        return Ok(());
    }
    let arr: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
    run("remove", &arr).await.map(drop)
}

/// Every key in the area with the given prefix, where `getKeys` exists (Chrome 130+).
pub async fn keys_with_prefix(prefix: &str) -> Option<Vec<String>> {
    let area = area().ok()?;
    if !get(&area, "getKeys").is_function() {
        return None;
    }
    let promise: Promise = call(&area, "getKeys", &[]).ok()?.dyn_into().ok()?;
    let keys: Array = JsFuture::from(promise).await.ok()?.dyn_into().ok()?;
    Some(keys.iter().filter_map(|k| k.as_string()).filter(|k| k.starts_with(prefix)).collect())
}
