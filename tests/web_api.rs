//! The exported `Tracker`, driven from JavaScript and from Rust, with the stand-in `chrome`
//! storage and the real local server.
#![cfg(target_arch = "wasm32")]

mod support;

use inhouse_tracker::api::Tracker;
use serde_json::json;
use support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A tracker without the automatic events, whose counts these tests assert exactly (they are
/// tested end to end, tests/e2e/automatic.test.mjs).
fn tracker(mut extra: serde_json::Value) -> Tracker {
    let quiet = json!({"install": false, "update": false, "startup": false, "daily": false});
    extra.as_object_mut().expect("options object").entry("autoEvents").or_insert(quiet);
    Tracker::new(options(extra)).expect("valid options")
}

#[wasm_bindgen_test]
fn bad_options_throw_with_code_and_field() {
    install_fake_chrome(Some(APP_ID.into()));
    let cases = [
        (json!({"tokenId": ""}), "INVALID_OPTION", "tokenId"),
        (json!({"baseUrl": "http://example.com/v1/api"}), "INVALID_OPTION", "baseUrl"),
        (json!({"appId": "ponmlkjihgfedcbaponmlkjihgfedcba"}), "APP_ID_MISMATCH", "appId"),
        (json!({"concurrency": 0}), "INVALID_OPTION", "concurrency"),
        (json!({"concurrency": "4"}), "INVALID_OPTION", "concurrency"),
        (json!({"retry": {"maxAttempts": 1.5}}), "INVALID_OPTION", "retry.maxAttempts"),
        (json!({"retry": {"maxAtempts": 3}}), "INVALID_OPTION", "retry.maxAtempts"),
        (json!({"tokenID": "typo"}), "INVALID_OPTION", "tokenID"),
        (json!({"debug": "yes"}), "INVALID_OPTION", "debug"),
    ];
    for (extra, code, field) in cases {
        let err = Tracker::new(options(extra.clone())).expect_err(&extra.to_string());
        assert_eq!(code_of(&err), code, "{extra}");
        assert_eq!(json(&js_sys::Reflect::get(&err, &"field".into()).unwrap()), json!(field), "{extra}");
    }
    let err = Tracker::new(options(json!({"tokenID": "typo"}))).unwrap_err();
    let msg = js_sys::Error::from(err).message().as_string().unwrap();
    assert!(msg.contains("did you mean \"tokenId\""), "{msg}");
    // The mismatch message names both ids.
    let err = Tracker::new(options(json!({"appId": "ponmlkjihgfedcbaponmlkjihgfedcba"}))).unwrap_err();
    let msg = js_sys::Error::from(err).message().as_string().unwrap();
    assert!(msg.contains("ponmlkjihgfedcbaponmlkjihgfedcba") && msg.contains(APP_ID), "{msg}");
}

#[wasm_bindgen_test]
async fn javascript_api_validates_coalesces_and_delivers() {
    reset_server().await;
    let fake = install_fake_chrome(Some(APP_ID.into()));
    let t = tracker(json!({}));
    settle(t.ready()).await.unwrap();
    let writes_before = set_calls(&fake);
    let out = json(&drive_tracker(JsValue::from(t.clone_handle())).await);
    assert_eq!(out["badCode"], "INVALID_EVENT_NAME");
    assert_eq!(out["badField"], "eventName");
    assert_eq!(out["badName"], "InhouseError");
    assert_eq!(out["nanCode"], "INVALID_PROPERTIES");
    assert_eq!(out["nanField"], "properties.a.b[1]");
    assert_eq!(out["statuses"], json!(["queued"]));
    // 50 calls in one turn share one storage write.
    assert_eq!(set_calls(&fake) - writes_before, 1);
    let flushed = json(&settle(t.flush(JsValue::UNDEFINED)).await.unwrap());
    assert_eq!(flushed["status"], "empty", "{flushed}");
    let events = stored_events().await;
    assert_eq!(events.len(), 50);
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e["idempotency_key"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 50);
    let stats = json(&t.stats());
    assert_eq!(stats["delivered"], 50);
    assert_eq!(stats["queued"], 0);
    // Nothing of the queue remains, and the secret was never stored.
    assert!(!stored_text(&fake).contains(TOKEN_SECRET));
    settle(t.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn queue_survives_a_restart_and_delivers_once() {
    reset_server().await;
    let fake = install_fake_chrome(Some(APP_ID.into()));
    control("/faults", Some(json!({"down": true}))).await;
    let t = tracker(json!({}));
    for i in 0..20 {
        let _ = t.track("restart_test".into(), js(&json!({"i": i})), JsValue::UNDEFINED);
    }
    let r = json(&settle(t.flush(JsValue::UNDEFINED)).await.unwrap());
    assert_eq!(r["status"], "blocked", "{r}");
    settle(t.shutdown()).await.unwrap();
    drop(t);
    assert!(stored_keys(&fake).iter().any(|k| k.starts_with("inhouse:v1:seg:")));

    control("/faults", Some(json!({"down": false}))).await;
    // A new tracker on the same storage: a new service worker after the old one was stopped.
    let t2 = tracker(json!({}));
    settle(t2.ready()).await.unwrap();
    assert_eq!(json(&t2.stats())["queued"], 20);
    wait_empty(&t2).await;
    let events = stored_events().await;
    assert_eq!(events.len(), 20);
    let mut seen: Vec<i64> = events.iter().map(|e| e["properties"]["i"].as_i64().unwrap()).collect();
    seen.sort();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    let kept = ["inhouse:v1:index", "inhouse:v1:install", "inhouse:v1:lifecycle"].map(String::from);
    assert_eq!(stored_keys(&fake), kept, "delivered segments are removed (the lifecycle record stays, as the install id)");
    settle(t2.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn storage_failure_rejects_only_that_write() {
    reset_server().await;
    let fake = install_fake_chrome(Some(APP_ID.into()));
    control("/faults", Some(json!({"down": true}))).await;
    let t = tracker(json!({}));
    settle(t.ready()).await.unwrap();
    settle(t.track("kept".into(), JsValue::UNDEFINED, JsValue::UNDEFINED)).await.unwrap();
    fail_next_sets(&fake, 1);
    let err = settle(t.track("refused".into(), JsValue::UNDEFINED, JsValue::UNDEFINED)).await.unwrap_err();
    assert_eq!(code_of(&err), "STORAGE_ERROR");
    assert_eq!(json(&t.stats())["queued"], 1, "the earlier event is untouched");
    control("/faults", Some(json!({"down": false}))).await;
    wait_empty(&t).await;
    let names: Vec<String> = stored_events().await.iter().map(|e| e["event_name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, vec!["kept".to_string()]);
    settle(t.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn opt_out_persists_and_purges() {
    reset_server().await;
    let _fake = install_fake_chrome(Some(APP_ID.into()));
    control("/faults", Some(json!({"down": true}))).await;
    let t = tracker(json!({}));
    settle(t.track("before_opt_out".into(), JsValue::UNDEFINED, JsValue::UNDEFINED)).await.unwrap();
    settle(t.set_enabled(false, true)).await.unwrap();
    let r = json(&settle(t.track("after_opt_out".into(), JsValue::UNDEFINED, JsValue::UNDEFINED)).await.unwrap());
    assert_eq!(r["status"], "disabled");
    assert_eq!(json(&t.stats())["dropped"]["purged"], 1);
    settle(t.shutdown()).await.unwrap();
    control("/faults", Some(json!({"down": false}))).await;
    let t2 = tracker(json!({}));
    settle(t2.ready()).await.unwrap();
    assert!(!t2.is_enabled(), "the opt-out survives a restart");
    assert_eq!(json(&settle(t2.flush(JsValue::UNDEFINED)).await.unwrap())["status"], "empty");
    assert!(stored_events().await.is_empty());
    settle(t2.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn dedup_key_delivers_once() {
    reset_server().await;
    let _fake = install_fake_chrome(Some(APP_ID.into()));
    // Down while both are tracked, so the first is certainly still queued at the second.
    control("/faults", Some(json!({"down": true}))).await;
    let t = tracker(json!({}));
    let opts = js(&json!({"dedupKey": "order-42"}));
    let a = json(&settle(t.track("purchase".into(), JsValue::UNDEFINED, opts.clone())).await.unwrap());
    let b = json(&settle(t.track("purchase".into(), JsValue::UNDEFINED, opts.clone())).await.unwrap());
    assert_eq!(a["status"], "queued");
    assert_eq!(b["status"], "deduplicated");
    assert_eq!(a["id"], b["id"]);
    control("/faults", Some(json!({"down": false}))).await;
    t.wake();
    wait_empty(&t).await;
    // Tracked again after delivery: the server's Idempotency-Key check keeps it single.
    settle(t.track("purchase".into(), JsValue::UNDEFINED, opts)).await.unwrap();
    wait_empty(&t).await;
    assert_eq!(stored_events().await.len(), 1);
    settle(t.shutdown()).await.unwrap();
}

/// Flushes until the queue is empty (an explicit flush retries at once after network errors;
/// bounded: 30 s).
async fn wait_empty(t: &Tracker) {
    for _ in 0..300 {
        if json(&settle(t.flush(JsValue::UNDEFINED)).await.unwrap())["status"] == "empty" {
            return;
        }
        sleep(100).await;
    }
    panic!("the queue did not drain within 30 s: {}", json(&t.stats()));
}

/// Start-up races: what the user does before the stored queue has been read is not undone
/// when it is.
#[wasm_bindgen_test]
async fn opting_out_before_ready_is_not_overwritten_by_the_stored_choice() {
    reset_server().await;
    let _fake = install_fake_chrome(Some(APP_ID.into()));
    control("/faults", Some(json!({"down": true}))).await;
    let t = tracker(json!({}));
    for i in 0..3 {
        let _ = t.track("race_test".into(), js(&json!({"i": i})), JsValue::UNDEFINED);
    }
    settle(t.shutdown()).await.unwrap();
    // A new worker: setEnabled(false) at once, before the stored queue (enabled) is read.
    let t2 = tracker(json!({}));
    let consent = t2.set_enabled(false, false);
    settle(t2.ready()).await.unwrap();
    settle(consent).await.unwrap();
    assert!(!t2.is_enabled(), "the stored 'enabled' overwrote the user's later choice");
    settle(t2.shutdown()).await.unwrap();
    let t3 = tracker(json!({}));
    settle(t3.ready()).await.unwrap();
    assert!(!t3.is_enabled(), "the opt-out was not stored");
    assert_eq!(json(&t3.stats())["queued"], 3);
    settle(t3.shutdown()).await.unwrap();
    control("/faults", Some(json!({"down": false}))).await;
}

#[wasm_bindgen_test]
async fn shutdown_before_ready_stores_what_was_tracked_and_stays_shut_down() {
    reset_server().await;
    let _fake = install_fake_chrome(Some(APP_ID.into()));
    control("/faults", Some(json!({"down": true}))).await;
    let t = tracker(json!({}));
    let early = t.track("early_event".into(), js(&json!({})), JsValue::UNDEFINED);
    let down = t.shutdown();
    settle(down).await.unwrap();
    assert_eq!(json(&settle(early).await.unwrap())["status"], "queued");
    let late = settle(t.track("late_event".into(), js(&json!({})), JsValue::UNDEFINED)).await;
    assert_eq!(code_of(&late.unwrap_err()), "SHUT_DOWN", "the restore must not undo the shutdown");
    let t2 = tracker(json!({}));
    settle(t2.ready()).await.unwrap();
    assert_eq!(json(&t2.stats())["queued"], 1);
    settle(t2.shutdown()).await.unwrap();
    control("/faults", Some(json!({"down": false}))).await;
}

/// Chrome 119–129 have no `chrome.storage.local.getKeys`: orphans are still found (through
/// `get(null)`), and a damaged index is still rebuilt from every segment.
#[wasm_bindgen_test]
async fn without_get_keys_orphans_are_removed_and_a_damaged_index_is_rebuilt() {
    reset_server().await;
    let fake = install_fake_chrome(Some(APP_ID.into()));
    remove_get_keys(&fake);
    control("/faults", Some(json!({"down": true}))).await;
    let t = tracker(json!({}));
    for i in 0..4 {
        let _ = t.track("no_getkeys".into(), js(&json!({"i": i})), JsValue::UNDEFINED);
    }
    settle(t.shutdown()).await.unwrap();
    store_raw(&fake, "inhouse:v1:seg:0", &JsValue::from_str("orphan"));
    let t2 = tracker(json!({}));
    settle(t2.ready()).await.unwrap();
    assert_eq!(json(&t2.stats())["queued"], 4);
    for _ in 0..50 {
        if !stored_keys(&fake).iter().any(|k| k == "inhouse:v1:seg:0") {
            break;
        }
        sleep(20).await;
    }
    assert!(!stored_keys(&fake).iter().any(|k| k == "inhouse:v1:seg:0"), "orphan left: {:?}", stored_keys(&fake));
    settle(t2.shutdown()).await.unwrap();
    // The index replaced by something that is not text: rebuilt from the segments.
    store_raw(&fake, "inhouse:v1:index", &js(&json!({"damaged": true})));
    let t3 = tracker(json!({}));
    settle(t3.ready()).await.unwrap();
    let st = json(&t3.stats());
    assert_eq!(st["queued"], 4, "{st}");
    assert_eq!(st["lastError"]["code"], "STORAGE_ERROR");
    control("/faults", Some(json!({"down": false}))).await;
    wait_empty(&t3).await;
    assert_eq!(stored_events().await.len(), 4);
    settle(t3.shutdown()).await.unwrap();
}

/// One install id, stored in `chrome.storage.local`, on every event: also on events tracked
/// before it was read, and the same in the next worker.
#[wasm_bindgen_test]
async fn every_event_carries_the_one_install_id() {
    reset_server().await;
    let fake = install_fake_chrome(Some(APP_ID.into()));
    let t = tracker(json!({}));
    // Tracked before the stored queue (and the install id) is read.
    let early = t.track("install_test".into(), js(&json!({"n": 0})), JsValue::UNDEFINED);
    settle(t.ready()).await.unwrap();
    settle(early).await.unwrap();
    let _ = settle(t.track("install_test".into(), js(&json!({"n": 1})), JsValue::UNDEFINED)).await.unwrap();
    wait_empty(&t).await;
    settle(t.shutdown()).await.unwrap();
    assert!(stored_keys(&fake).iter().any(|k| k == "inhouse:v1:install"), "{:?}", stored_keys(&fake));
    // The next worker.
    let t2 = tracker(json!({}));
    let _ = t2.track("install_test".into(), js(&json!({"n": 2})), JsValue::UNDEFINED);
    settle(t2.ready()).await.unwrap();
    wait_empty(&t2).await;
    let events = stored_events().await;
    assert_eq!(events.len(), 3);
    let ids: std::collections::HashSet<String> =
        events.iter().map(|e| e["properties"]["$install_id"].as_str().unwrap_or("missing").to_string()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids.into_iter().next().unwrap();
    assert!(inhouse_tracker::core::event::is_uuid(&id), "{id}");
    settle(t2.shutdown()).await.unwrap();
}
