//! The chrome.storage.local adapter, against the stand-in `chrome` of tests/support.
//! (The real chrome.storage is exercised end to end by tests/e2e in Chromium.)
#![cfg(target_arch = "wasm32")]

mod support;

use inhouse_tracker::web::storage;
use support::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn set_get_remove_round_trip() {
    let fake = install_fake_chrome(Some(APP_ID.into()));
    let pairs = vec![("inhouse:v1:seg:1".to_string(), "[1]".to_string()), ("inhouse:v1:index".to_string(), "{}".to_string())];
    storage::set_strings(&pairs).await.unwrap();
    assert_eq!(set_calls(&fake), 1, "all pairs go in one set() call");
    let got = storage::get_strings(&["inhouse:v1:seg:1".into(), "inhouse:v1:index".into(), "absent".into()]).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], ("inhouse:v1:seg:1".to_string(), "[1]".to_string()));
    assert_eq!(got[1], ("inhouse:v1:index".to_string(), "{}".to_string()));
    let mut keys = storage::keys_with_prefix("inhouse:v1:seg:").await.unwrap();
    keys.sort();
    assert_eq!(keys, vec!["inhouse:v1:seg:1".to_string()]);
    storage::remove(&["inhouse:v1:seg:1".into()]).await.unwrap();
    assert_eq!(stored_keys(&fake), vec!["inhouse:v1:index".to_string()]);
}

#[wasm_bindgen_test]
async fn failures_are_reported_not_thrown() {
    let fake = install_fake_chrome(Some(APP_ID.into()));
    fail_next_sets(&fake, 1);
    let err = storage::set_strings(&[("k".into(), "v".into())]).await.unwrap_err();
    assert!(err.contains("QUOTA_BYTES"), "{err}");
    remove_fake_chrome();
    let err = storage::get_strings(&["k".into()]).await.unwrap_err();
    assert!(err.contains("chrome.storage.local is not available"), "{err}");
}
