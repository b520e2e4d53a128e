//! Every answer that crosses to JavaScript (`stats()`, `flush()`, `track()`'s result, the
//! reports `onDrop` gets) is a `#[derive(Serialize)]` type of the core, turned into a plain
//! object by serde-wasm-bindgen: its shape is written once, in Rust, and `index.d.ts` is checked
//! against it (tests/e2e/shapes.test.mjs).

use serde::Serialize;
use wasm_bindgen::JsValue;

/// `value` as a plain JavaScript object: `None` fields as `null` (the documented shapes say
/// `nextAttemptAt: number | null`), numbers as numbers.
pub fn to_js<T: Serialize>(value: &T) -> JsValue {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true);
    // The answers are structs of strings, numbers and options: serializing them cannot fail.
    value.serialize(&serializer).unwrap_or(JsValue::NULL)
}

/// What `identity()` answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityAnswer<'a> {
    pub install_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
}
