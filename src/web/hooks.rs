//! The `beforeSend` hook: the customer's function sees each event before it is stored, and may
//! edit its properties or drop it. What it returns is checked like `track`'s properties.

use super::calls::TrackCall;
use super::js::{describe, get};
use super::props;
use crate::core::error::{Error, ErrorCode};
use crate::core::event::{EventName, Props};
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `JSON.parse(text)`.
    #[wasm_bindgen(catch, js_namespace = JSON, js_name = parse)]
    fn json_parse(text: &str) -> Result<JsValue, JsValue>;
}

/// Calls `hook({eventName, properties})` (the event's own properties, without the SDK's `$`
/// context, which is added afterwards). `Ok(None)`: it returned `null` or `undefined`, the event
/// is dropped. An error: it threw, or returned what cannot be sent; the caller keeps the event.
pub(crate) fn before_send(hook: &Function, call: &TrackCall) -> Result<Option<Props>, Error> {
    let failed = |why: String| Error::new(ErrorCode::BeforeSendFailed, why);
    let name = match &call.name {
        EventName::User(name) => name.as_str(),
        EventName::Sdk(name) => name,
    };
    let event = Object::new();
    let properties = json_parse(call.props.as_str()).map_err(|e| failed(describe(&e)))?;
    let _ = Reflect::set(&event, &"eventName".into(), &name.into());
    let _ = Reflect::set(&event, &"properties".into(), &properties);
    let out =
        hook.call1(&JsValue::UNDEFINED, &event).map_err(|e| failed(format!("beforeSend threw: {}; the event was kept unchanged", describe(&e))))?;
    if out.is_null() || out.is_undefined() {
        return Ok(None);
    }
    if get(&out, "then").is_function() {
        return Err(failed("beforeSend returned a Promise; it must return the event (or null) synchronously; the event was kept unchanged".into()));
    }
    props::to_props(&get(&out, "properties"))
        .map(Some)
        .map_err(|e| failed(format!("beforeSend returned properties that cannot be sent ({}); the event was kept unchanged", e.message)))
}
