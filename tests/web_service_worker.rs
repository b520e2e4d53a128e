//! The tracker inside a service worker scope (where an MV3 background runs): no `window`,
//! only globals. Storage is the stand-in `chrome`; the server is the real local one.
#![cfg(target_arch = "wasm32")]

mod support;

use inhouse_tracker::api::Tracker;
use serde_json::json;
use support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

#[wasm_bindgen_test]
async fn tracks_and_delivers_without_window() {
    assert!(!has_window(), "this test must run in a service worker");
    reset_server().await;
    let _fake = install_fake_chrome(Some(APP_ID.into()));
    let t = Tracker::new(options(json!({}))).expect("valid options");
    for i in 0..10 {
        let r = json(&settle(t.track("sw_event".into(), js(&json!({"i": i})), JsValue::UNDEFINED)).await.unwrap());
        assert_eq!(r["status"], "queued");
    }
    let r = json(&settle(t.flush(JsValue::UNDEFINED)).await.unwrap());
    assert_eq!(r["status"], "empty", "{r}");
    let events = stored_events().await;
    let named = |name: &str| events.iter().filter(|e| e["event_name"] == name).count();
    assert_eq!(named("sw_event"), 10);
    // A new install (nothing stored): the automatic events, once each.
    assert_eq!((named("$extension_installed"), named("$daily_active")), (1, 1), "{events:?}");
    settle(t.shutdown()).await.unwrap();
}
