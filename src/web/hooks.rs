//! The `beforeSend` hook: the customer's function sees each event before it is stored, and may
//! edit its properties or drop it. What it returns is checked like `track`'s properties.

use super::js::describe;
use super::props;
use crate::core::error::{Error, ErrorCode};
use crate::core::event::{normalize_event_name, EventName, Props};
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
/// is dropped. `Ok(Some((name, properties)))`: what it returned, with the new name if it renamed
/// the event. An error: it threw, or returned what cannot be sent; the caller keeps the event
/// unchanged.
///
/// What it may return: an object whose `properties` is a plain object (checked like `track`'s),
/// and whose `eventName`, if present and changed, follows `track`'s name rule; the SDK's own `$`
/// events keep their names.
pub(crate) fn before_send(hook: &Function, event_name: &EventName, props: &Props) -> Result<Option<(Option<EventName>, Props)>, Error> {
    let failed = |why: &str| Error::new(ErrorCode::BeforeSendFailed, format!("beforeSend {why}; the event was kept unchanged"));
    let name = match event_name {
        EventName::User(name) => name.as_str(),
        EventName::Sdk(name) => name,
    };
    let event = Object::new();
    let properties = json_parse(props.as_str()).map_err(|e| failed(&format!("could not be given the event ({})", describe(&e))))?;
    let _ = Reflect::set(&event, &"eventName".into(), &name.into());
    let _ = Reflect::set(&event, &"properties".into(), &properties);
    let out = hook.call1(&JsValue::UNDEFINED, &event).map_err(|e| failed(&format!("threw: {}", describe(&e))))?;
    if out.is_null() || out.is_undefined() {
        return Ok(None);
    }
    if !out.is_object() {
        let kind = out.js_typeof().as_string().unwrap_or_default();
        return Err(failed(&format!("returned a {kind}; it must return the event ({{eventName, properties}}) or null")));
    }
    let read = |key: &str| {
        Reflect::get(&out, &JsValue::from_str(key)).map_err(|e| failed(&format!("returned an event whose {key} threw: {}", describe(&e))))
    };
    if read("then")?.is_function() {
        return Err(failed("returned a Promise; it must return the event (or null) synchronously"));
    }
    let new_name = read("eventName")?;
    let renamed = match new_name.as_string() {
        _ if new_name.is_undefined() => None,
        Some(new) if new == name => None,
        Some(new) => match event_name {
            EventName::Sdk(_) => return Err(failed(&format!("renamed the SDK's own event {name} (its name cannot change)"))),
            EventName::User(_) => {
                let new =
                    normalize_event_name(&new).map_err(|e| failed(&format!("renamed the event to a name that cannot be sent: {}", e.message)))?;
                (new != name).then_some(EventName::User(new))
            }
        },
        None => return Err(failed("returned an eventName that is not a string")),
    };
    let properties = read("properties")?;
    if !properties.is_object() {
        return Err(failed("returned an event without a properties object"));
    }
    let props = props::to_props(&properties).map_err(|e| failed(&format!("returned properties that cannot be sent ({})", e.message)))?;
    Ok(Some((renamed, props)))
}
