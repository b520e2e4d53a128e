//! The chrome.storage.local adapter, against the stand-in `chrome` of tests/support.
//! (The real chrome.storage is exercised end to end by tests/e2e in Chromium.)
#![cfg(target_arch = "wasm32")]

mod support;

use inhouse_tracker::web::storage;
use support::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn set_get_remove_round_trip() {
    let fake = install_fake_chrome(Some(APP_ID.into()));
    let values = js(&serde_json::json!({"inhouse:v1:seg:1": "[1]", "inhouse:v1:index": "{}"}));
    storage::set_object(values.unchecked_ref()).await.unwrap();
    assert_eq!(set_calls(&fake), 1, "all pairs go in one set() call");
    let keys = ["inhouse:v1:seg:1".to_string(), "inhouse:v1:index".into(), "absent".into()];
    let got = storage::get_keys(&keys).await.unwrap();
    assert_eq!(got.text("inhouse:v1:seg:1").as_deref(), Some("[1]"));
    assert_eq!(got.text("inhouse:v1:index").as_deref(), Some("{}"));
    assert_eq!(got.text("absent"), None);
    let mut keys = storage::keys_with_prefix("inhouse:v1:seg:").await.unwrap();
    keys.sort();
    assert_eq!(keys, vec!["inhouse:v1:seg:1".to_string()]);
    storage::remove(&["inhouse:v1:seg:1".into()]).await.unwrap();
    let after = storage::get_keys(&["inhouse:v1:seg:1".into()]).await.unwrap();
    assert_eq!(after.text("inhouse:v1:seg:1"), None);
    assert_eq!(stored_keys(&fake), vec!["inhouse:v1:index".to_string()]);
}

#[wasm_bindgen_test]
async fn failures_are_reported_not_thrown() {
    let fake = install_fake_chrome(Some(APP_ID.into()));
    fail_next_sets(&fake, 1);
    let values = js(&serde_json::json!({"k": "v"}));
    let err = storage::set_object(values.unchecked_ref()).await.unwrap_err();
    assert!(err.contains("QUOTA_BYTES"), "{err}");
    remove_fake_chrome();
    let err = storage::get_keys(&["k".into()]).await.unwrap_err();
    assert!(err.contains("chrome.storage.local is not available"), "{err}");
}
