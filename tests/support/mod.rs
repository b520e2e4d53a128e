//! Shared by the browser tests: the stand-in `chrome` (see fake_chrome.js) and the local
//! Inhouse server that `scripts/test.sh` starts and names in INHOUSE_TEST_API / _CONTROL.
#![allow(dead_code)]

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/tests/support/fake_chrome.js")]
extern "C" {
    #[wasm_bindgen(js_name = installFakeChrome)]
    pub fn install_fake_chrome(runtime_id: Option<String>) -> JsValue;
    #[wasm_bindgen(js_name = removeFakeChrome)]
    pub fn remove_fake_chrome();
    #[wasm_bindgen(js_name = storedKeys)]
    pub fn stored_keys(fake: &JsValue) -> Vec<String>;
    #[wasm_bindgen(js_name = storedText)]
    pub fn stored_text(fake: &JsValue) -> String;
    #[wasm_bindgen(js_name = setCalls)]
    pub fn set_calls(fake: &JsValue) -> u32;
    #[wasm_bindgen(js_name = failNextSets)]
    pub fn fail_next_sets(fake: &JsValue, n: u32);
    #[wasm_bindgen(js_name = alarmCount)]
    pub fn alarm_count(fake: &JsValue) -> u32;
    #[wasm_bindgen(js_name = control)]
    pub async fn control_js(base: &str, path: &str, body: JsValue) -> JsValue;
    #[wasm_bindgen(js_name = driveTracker)]
    pub async fn drive_tracker(tracker: JsValue) -> JsValue;
    #[wasm_bindgen(js_name = hasWindow)]
    pub fn has_window() -> bool;
    #[wasm_bindgen(js_name = removeGetKeys)]
    pub fn remove_get_keys(fake: &JsValue);
    #[wasm_bindgen(js_name = storeRaw)]
    pub fn store_raw(fake: &JsValue, key: &str, value: &JsValue);
}

/// The extension id the test server's token is registered for.
pub const APP_ID: &str = "abcdefghijklmnopabcdefghijklmnop";
pub const TOKEN_ID: &str = "web_token";
pub const TOKEN_SECRET: &str = "web_secret_value";

/// A URL scripts/test.sh compiles into the tests (they cannot read the environment at run time).
fn compiled_in(url: Option<&'static str>) -> &'static str {
    match url {
        Some(url) => url,
        None => panic!("run the browser tests through `make test`, which starts the local Inhouse server"),
    }
}

/// The local server's API base (`…/v1/api`), set by scripts/test.sh at compile time.
pub fn api_base() -> String {
    format!("{}/v1/api", compiled_in(option_env!("INHOUSE_TEST_API")))
}

/// The local server's control URL.
pub fn control_base() -> &'static str {
    compiled_in(option_env!("INHOUSE_TEST_CONTROL"))
}

/// Calls the control API; `body` None means GET.
pub async fn control(path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
    let body = body.map(|b| js(&b)).unwrap_or(JsValue::UNDEFINED);
    let v = control_js(control_base(), path, body).await;
    serde_wasm_bindgen::from_value(v).expect("control API answers JSON")
}

/// Resets the server and registers the test token.
pub async fn reset_server() {
    control("/reset", Some(serde_json::json!({}))).await;
    control("/tokens", Some(serde_json::json!([{ "token_id": TOKEN_ID, "token_secret": TOKEN_SECRET, "app_id": APP_ID }]))).await;
}

/// Events the server stored.
pub async fn stored_events() -> Vec<serde_json::Value> {
    control("/events", None).await["events"].as_array().cloned().unwrap_or_default()
}

/// Options for a tracker pointed at the local server.
pub fn options(extra: serde_json::Value) -> JsValue {
    let mut o = serde_json::json!({ "tokenId": TOKEN_ID, "tokenSecret": TOKEN_SECRET, "baseUrl": api_base(), "appId": APP_ID });
    if let (Some(map), Some(more)) = (o.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            map.insert(k.clone(), v.clone());
        }
    }
    js(&o)
}

/// JSON as a plain JavaScript value (objects, not `Map`s).
pub fn js(v: &serde_json::Value) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).expect("JSON is serialisable")
}

use serde::Serialize;

/// Awaits a JS promise, returning its value or its rejection.
pub async fn settle(p: js_sys::Promise) -> Result<JsValue, JsValue> {
    wasm_bindgen_futures::JsFuture::from(p).await
}

/// The `code` of a rejected InhouseError.
pub fn code_of(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &"code".into()).ok().and_then(|v| v.as_string()).unwrap_or_default()
}

/// A property of a JS object as JSON.
pub fn json(v: &JsValue) -> serde_json::Value {
    serde_wasm_bindgen::from_value(v.clone()).unwrap_or(serde_json::Value::Null)
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: u32) {
    let set_timeout: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into()).unwrap().into();
    let p = js_sys::Promise::new(&mut |resolve, _| drop(set_timeout.call2(&JsValue::NULL, &resolve, &JsValue::from(ms))));
    let _ = settle(p).await;
}
