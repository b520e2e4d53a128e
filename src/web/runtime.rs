//! What the browser tells us about where we run: the extension id, its version, the network.

use super::js::{call, get, global_path};

/// `chrome.runtime.id`, when running inside an extension.
pub fn extension_id() -> Option<String> {
    global_path(&["chrome", "runtime", "id"]).and_then(|v| v.as_string())
}

/// The extension's version from its manifest, when running inside an extension.
pub fn extension_version() -> Option<String> {
    let runtime = global_path(&["chrome", "runtime"])?;
    let manifest = call(&runtime, "getManifest", &[]).ok()?;
    get(&manifest, "version").as_string()
}

/// `navigator.onLine`; `true` where the browser does not say. Chrome fires no `online` event in
/// service workers, so the engine polls this instead of waiting for one.
pub fn online() -> bool {
    global_path(&["navigator", "onLine"]).and_then(|v| v.as_bool()).unwrap_or(true)
}

/// 64 random bits from `crypto.getRandomValues`, to seed event ids.
pub fn random_seed() -> u64 {
    let buf = js_sys::Uint32Array::new_with_length(2);
    if let Some(crypto) = global_path(&["crypto"]) {
        if call(&crypto, "getRandomValues", &[&buf]).is_ok() {
            return (u64::from(buf.get_index(0)) << 32) | u64::from(buf.get_index(1));
        }
    }
    // Every Chrome context has `crypto`; this only keeps a page without it working.
    super::js::now_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
