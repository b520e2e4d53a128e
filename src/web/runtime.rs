//! What the browser tells us about where we run: the extension id, its version and pages, the
//! browser, the platform and the locale, the network.

use super::js::{call, get, global_path};
use crate::core::exception::Thrown;
use crate::core::origin::{browser_from_user_agent, ExtensionPages, Sender};
use js_sys::Promise;
use std::future::Future;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = performance, js_name = mark)]
    fn performance_mark(name: &str) -> Result<JsValue, JsValue>;
}

/// A User Timing mark (`performance.mark`): the start's phases show in DevTools' performance
/// panel, and the benchmark reads them (`inhouse:stored-read`, `inhouse:ready`, ...). A few per
/// start, never per event.
pub fn mark(name: &str) {
    let _ = performance_mark(name);
}

/// `chrome.runtime.id`, when running inside an extension.
pub fn extension_id() -> Option<String> {
    global_path(&["chrome", "runtime", "id"]).and_then(|v| v.as_string())
}

fn manifest() -> Option<JsValue> {
    let runtime = global_path(&["chrome", "runtime"])?;
    call(&runtime, "getManifest", &[]).ok()
}

/// From the manifest (read once), when running inside an extension: the extension's version, and
/// the pages it names (the action's popup, the options page, the side panel or Firefox's sidebar).
pub fn manifest_facts() -> (Option<String>, ExtensionPages) {
    let Some(m) = manifest() else { return (None, ExtensionPages::default()) };
    let at = |path: &[&str]| path.iter().try_fold(m.clone(), |v, key| Some(get(&v, key)).filter(|v| !v.is_undefined()))?.as_string();
    let options = at(&["options_ui", "page"]).or_else(|| at(&["options_page"]));
    // Chrome's side panel, or Firefox's sidebar.
    let side_panel = at(&["side_panel", "default_path"]).or_else(|| at(&["sidebar_action", "default_panel"]));
    (at(&["version"]), ExtensionPages::new(at(&["action", "default_popup"]), options, side_panel))
}

/// The browser's brand and major version (`Chrome`, `"156"`; `Microsoft Edge`, `Brave`, ...)
/// from `navigator.userAgentData`, or from the user agent string where that is missing (`Firefox`).
pub fn browser() -> (Option<String>, Option<String>) {
    let brands = global_path(&["navigator", "userAgentData", "brands"]).and_then(|b| b.dyn_into::<js_sys::Array>().ok());
    if let Some(brands) = brands {
        let named: Vec<(String, String)> = brands
            .iter()
            .filter_map(|b| Some((get(&b, "brand").as_string()?, get(&b, "version").as_string().unwrap_or_default())))
            // Not the made-up brand Chrome adds so that sites do not parse the list ("Not A(Brand").
            .filter(|(brand, _)| !(brand.starts_with("Not") && brand.ends_with("Brand")))
            .collect();
        // A vendor's own brand before the engine's ("Chromium").
        let pick = named.iter().find(|(b, _)| b != "Chromium").or(named.first());
        if let Some((brand, version)) = pick {
            return (Some(brand.clone()), Some(version.clone()).filter(|v| !v.is_empty()));
        }
    }
    let agent = global_path(&["navigator", "userAgent"]).and_then(|v| v.as_string()).unwrap_or_default();
    browser_from_user_agent(&agent)
}

/// The origin of the extension's own pages (`runtime.getURL('')` without its last `/`):
/// `chrome-extension://<id>` in Chrome and Edge, `moz-extension://<uuid>` in Firefox.
pub fn extension_origin() -> Option<String> {
    let runtime = global_path(&["chrome", "runtime"])?;
    let url = call(&runtime, "getURL", &[&JsValue::from_str("")]).ok()?.as_string()?;
    Some(url.trim_end_matches('/').to_string()).filter(|o| o.contains(':'))
}

/// The browser's UI language (`chrome.i18n.getUILanguage()`, else `navigator.language`).
pub fn locale() -> Option<String> {
    let from_i18n = global_path(&["chrome", "i18n"]).and_then(|i18n| call(&i18n, "getUILanguage", &[]).ok()).and_then(|v| v.as_string());
    from_i18n.or_else(|| global_path(&["navigator", "language"]).and_then(|v| v.as_string()))
}

/// The operating system (`chrome.runtime.getPlatformInfo().os`: `mac`, `win`, `linux`, `cros`,
/// ...). The call starts now; the future gives its answer.
pub fn platform_os() -> impl Future<Output = Option<String>> {
    let started = global_path(&["chrome", "runtime"])
        .and_then(|runtime| call(&runtime, "getPlatformInfo", &[]).ok())
        .and_then(|p| p.dyn_into::<Promise>().ok());
    async move { get(&JsFuture::from(started?).await.ok()?, "os").as_string() }
}

/// `chrome.runtime.setUninstallURL(url)`: the page Chrome opens when the extension is removed.
pub fn set_uninstall_url(url: &str) {
    if let Some(runtime) = global_path(&["chrome", "runtime"]) {
        if let Ok(p) = call(&runtime, "setUninstallURL", &[&JsValue::from_str(url)]) {
            super::js::absorb(p);
        }
    }
}

/// What `runtime.onMessage`'s `sender` says of a message's author.
pub fn sender(sender: &JsValue) -> Sender {
    let tab = get(sender, "tab");
    let whole = |v: JsValue| v.as_f64().filter(|n| n.fract() == 0.0).map(|n| n as i64);
    Sender {
        url: get(sender, "url").as_string(),
        origin: get(sender, "origin").as_string(),
        tab_id: whole(get(&tab, "id")),
        frame_id: whole(get(sender, "frameId")),
        incognito: get(&tab, "incognito").as_bool(),
    }
}

/// An error (or anything thrown) as the core reads it: `name`, `message` and `stack`, or a
/// plain `{type, message, stack}` relayed from a page.
pub fn thrown(error: &JsValue) -> Thrown {
    let text = |key: &str| get(error, key).as_string();
    if error.is_object() {
        let kind = text("name").or_else(|| text("type")).filter(|k| !k.is_empty()).unwrap_or_else(|| "Error".into());
        return Thrown { kind, message: text("message").unwrap_or_default(), stack: text("stack") };
    }
    Thrown { kind: "Error".into(), message: super::js::describe(error), stack: None }
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
