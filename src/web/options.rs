//! The `Tracker` constructor's options object → [`Options`]: each value read the same way
//! whatever the option, and handed to the core (`core::config`), which knows the names, the
//! types and the rules.

use super::js::{describe, is_array, js_string, object_keys};
use crate::core::config::{Options, Scope, Taken, Value};
use crate::core::error::{Error, ErrorCode};
use crate::core::json::Json;
use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

/// The options and the hooks.
#[derive(Debug, Default)]
pub struct Read {
    pub options: Options,
    pub on_error: Option<Function>,
    pub on_drop: Option<Function>,
    pub before_send: Option<Function>,
}

/// Reads `init`'s options object key by key, so that an unknown key or a wrong type is an
/// error naming the field (`retry.maxAttempts must be a whole number, got string`).
pub fn read(options: &JsValue) -> Result<Read, Error> {
    let mut out = Read::default();
    read_keys(options, Scope::Top, &mut out)?;
    Ok(out)
}

/// The keys of `obj` (the options object, or its `retry` or `autoEvents` object); `undefined`
/// values are skipped.
fn read_keys(obj: &JsValue, scope: Scope, out: &mut Read) -> Result<(), Error> {
    let keys = object_keys(obj).map_err(|e| {
        let field = match scope {
            Scope::Top => "options",
            Scope::Retry => "retry",
            Scope::AutoEvents => "autoEvents",
        };
        Error::at(ErrorCode::InvalidOption, field, format!("reading the keys of {field} threw: {}", describe(&e)))
    })?;
    for key in keys.iter() {
        // A throwing getter reads as undefined.
        let v = Reflect::get(obj, &key).unwrap_or(JsValue::UNDEFINED);
        if v.is_undefined() {
            continue;
        }
        match out.options.set(scope, &key.as_string().unwrap_or_default(), value(&v))? {
            Taken::ReadRetry => read_keys(&v, Scope::Retry, out)?,
            Taken::ReadAutoEvents => read_keys(&v, Scope::AutoEvents, out)?,
            Taken::OnError => out.on_error = Some(v.unchecked_into()),
            Taken::OnDrop => out.on_drop = Some(v.unchecked_into()),
            Taken::BeforeSend => out.before_send = Some(v.unchecked_into()),
            // The loader hands over a plain copy of the plan (JSON in and out, its getters run
            // there, in JavaScript): nothing here can call back into customer code.
            Taken::ReadPlan => out.options.plan = Some(spec(&v, 0)?),
            Taken::Stored => {}
        }
    }
    Ok(())
}

/// The plan's object as the core reads it. The loader hands over a plain copy (JSON in and out):
/// no getter or Proxy of the customer's runs here. By hand rather than serde-wasm-bindgen's
/// `from_value`: that deserializer, with serde's error messages (which format floats), measured
/// 39 KB of the wasm's 290 KB; this walk is a few hundred bytes. Numbers keep JavaScript's text of
/// them (`String(n)`), as properties do: no float formatting in the wasm.
fn spec(v: &JsValue, depth: usize) -> Result<Json, Error> {
    if depth > 8 {
        return Err(Error::at(ErrorCode::InvalidOption, "plan", "plan nests deeper than a tracking plan does (8 levels)"));
    }
    Ok(match value(v) {
        Value::Text(s) => Json::String(s),
        Value::Number(_) => Json::Number(js_string(v).unwrap_or_default()),
        Value::Bool(b) => Json::Bool(b),
        Value::Array => Json::Array(js_sys::Array::from(v).iter().map(|item| spec(&item, depth + 1)).collect::<Result<_, _>>()?),
        Value::Object => {
            let keys =
                object_keys(v).map_err(|e| Error::at(ErrorCode::InvalidOption, "plan", format!("reading the plan threw: {}", describe(&e))))?;
            let mut members = Vec::with_capacity(keys.length() as usize);
            for key in keys.iter() {
                let member = Reflect::get(v, &key).unwrap_or(JsValue::UNDEFINED);
                members.push((key.as_string().unwrap_or_default(), spec(&member, depth + 1)?));
            }
            Json::Object(members)
        }
        _ => Json::Null,
    })
}

/// A JavaScript value as the core sees an option's value.
fn value(v: &JsValue) -> Value {
    if let Some(s) = v.as_string() {
        Value::Text(s)
    } else if let Some(n) = v.as_f64() {
        Value::Number(n)
    } else if let Some(b) = v.as_bool() {
        Value::Bool(b)
    } else if v.is_function() {
        Value::Function
    } else if v.is_null() {
        Value::Other("null")
    } else if is_array(v).unwrap_or(false) {
        Value::Array
    } else if v.is_object() {
        Value::Object
    } else if v.is_bigint() {
        Value::Other("bigint")
    } else {
        Value::Other("symbol")
    }
}
