//! JavaScript `properties` → JSON, refusing anything that is not plain JSON with an error that
//! names the spot (`properties.user.tags[2]`). Limits on depth, sizes and reserved keys are the
//! core's (`core::event::check_properties`); this walk adds what only JavaScript can tell:
//! functions, symbols, BigInt, cycles, NaN/Infinity, class instances, throwing getters.

use super::js::{describe, get};
use crate::core::error::{Error, ErrorCode, Result};
use crate::core::event::{Path, MAX_PROPERTY_DEPTH};
use crate::core::json::Json;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// JavaScript's `String(n)`: for a finite number, exactly JSON's text of it (`1`, `1.5`,
    /// `1e+21`), the text `JSON.stringify` writes. Numbers stay text from here on; formatting
    /// them in Rust would pull float printing into the wasm.
    #[wasm_bindgen(js_name = String)]
    fn number_text(n: f64) -> String;
}

/// Converts the `properties` argument of `track` to a JSON object: `undefined`/`null` mean none.
pub fn to_json_object(v: &JsValue) -> Result<Json> {
    if v.is_undefined() || v.is_null() {
        return Ok(Json::Object(Vec::new()));
    }
    if !is_plain_object(v) {
        return Err(bad("properties", format!("properties must be a plain object, got {}", kind(v))));
    }
    // Straight to the members: the checks `walk` starts with are settled for this value.
    Ok(Json::Object(members(v, Path::Root, 0, &mut Vec::new())?))
}

fn bad(path: &str, message: String) -> Error {
    Error::at(ErrorCode::InvalidProperties, path, message)
}

/// `Ok(None)` means "leave it out" (an `undefined` object member, as `JSON.stringify` does).
fn walk(v: &JsValue, at: Path, depth: usize, stack: &mut Vec<JsValue>) -> Result<Option<Json>> {
    if let Some(s) = v.as_string() {
        return Ok(Some(Json::String(s)));
    }
    if let Some(n) = v.as_f64() {
        if !n.is_finite() {
            let path = at.text();
            let what = if n.is_nan() { "NaN" } else if n > 0.0 { "Infinity" } else { "-Infinity" };
            return Err(bad(&path, format!("{path} is {what}, which JSON cannot represent")));
        }
        return Ok(Some(Json::Number(number_text(n))));
    }
    if let Some(b) = v.as_bool() {
        return Ok(Some(Json::Bool(b)));
    }
    if v.is_null() {
        return Ok(Some(Json::Null));
    }
    if v.is_undefined() {
        return Ok(None);
    }
    let path = || at.text();
    if v.is_bigint() {
        let path = path();
        return Err(bad(&path, format!("{path} is a BigInt, which JSON cannot represent; convert it to a string or a number")));
    }
    if v.is_symbol() || v.is_function() {
        let path = path();
        return Err(bad(&path, format!("{path} is a {}, which is not JSON", kind(v))));
    }
    if depth >= MAX_PROPERTY_DEPTH {
        let path = path();
        return Err(bad(&path, format!("{path}: properties may nest at most {MAX_PROPERTY_DEPTH} levels deep")));
    }
    if stack.iter().any(|seen| Object::is(seen, v)) {
        let path = path();
        return Err(bad(&path, format!("{path} is a circular reference")));
    }
    // Plain objects first: far more common than dates and arrays.
    if is_plain_object(v) {
        return Ok(Some(Json::Object(members(v, at, depth, stack)?)));
    }
    if let Some(date) = v.dyn_ref::<js_sys::Date>() {
        if date.get_time().is_nan() {
            let path = path();
            return Err(bad(&path, format!("{path} is an invalid Date")));
        }
        return Ok(Some(Json::String(String::from(date.to_iso_string()))));
    }
    if Array::is_array(v) {
        stack.push(v.clone());
        let arr: &Array = v.unchecked_ref();
        let mut items = Vec::with_capacity(arr.length() as usize);
        for (i, item) in arr.iter().enumerate() {
            let here = Path::Index(&at, i);
            match walk(&item, here, depth + 1, stack)? {
                Some(x) => items.push(x),
                None => {
                    let p = here.text();
                    return Err(bad(&p, format!("{p} is undefined; use null in arrays")));
                }
            }
        }
        stack.pop();
        return Ok(Some(Json::Array(items)));
    }
    let path = path();
    Err(bad(&path, format!("{path} is {}, not a plain object, array or JSON value", kind(v))))
}

/// The members of the plain object `v` (at `depth`), in key order, `undefined` ones left out.
fn members(v: &JsValue, at: Path, depth: usize, stack: &mut Vec<JsValue>) -> Result<Vec<(String, Json)>> {
    stack.push(v.clone());
    let mut members = Vec::new();
    for key in Object::keys(v.unchecked_ref::<Object>()).iter() {
        let k = key.as_string().unwrap_or_default();
        let here = Path::Key(&at, &k);
        let item = Reflect::get(v, &key).map_err(|e| {
            let p = here.text();
            bad(&p, format!("reading {p} threw: {}", describe(&e)))
        })?;
        if let Some(x) = walk(&item, here, depth + 1, stack)? {
            members.push((k, x));
        }
    }
    stack.pop();
    Ok(members)
}

fn is_plain_object(v: &JsValue) -> bool {
    if !v.is_object() || Array::is_array(v) {
        return false;
    }
    let proto = Object::get_prototype_of(v);
    proto.is_null() || Object::get_prototype_of(&proto).is_null()
}

/// A short description of a value for messages: `a function`, `an instance of Map`, ...
fn kind(v: &JsValue) -> String {
    if v.is_function() {
        return "function".into();
    }
    if v.is_symbol() {
        return "symbol".into();
    }
    if Array::is_array(v) {
        return "an array".into();
    }
    if v.is_object() {
        let name = get(&get(v, "constructor"), "name").as_string().unwrap_or_default();
        return if name.is_empty() { "an object".into() } else { format!("an instance of {name}") };
    }
    v.js_typeof().as_string().map(|t| format!("a {t}")).unwrap_or_else(|| "a value".into())
}
