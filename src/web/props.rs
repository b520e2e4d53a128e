//! JavaScript `properties` → JSON, refusing anything that is not plain JSON with an error that
//! names the spot (`properties.user.tags[2]`). The text is written as the walk goes, by the
//! core's `PropsWriter`, which also checks the limits on depth, sizes and reserved keys; the walk
//! adds what only JavaScript can tell: functions, symbols, BigInt, cycles, NaN/Infinity, class
//! instances, throwing getters.

use super::js::{describe, get, is_array, object_keys, prototype_of};
use crate::core::error::{Error, ErrorCode, Result};
use crate::core::event::{Path, Props, PropsWriter};
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

// Every binding that can reach a value's own code (a getter, a Proxy trap) is `catch`: a
// JavaScript exception must never unwind through wasm frames (it would leak the wasm's stack
// and, after enough of them, break the tracker). What throws is bad input, named by its path.
#[wasm_bindgen]
extern "C" {
    /// JavaScript's `String(n)`: for a finite number, exactly JSON's text of it (`1`, `1.5`,
    /// `1e+21`), the text `JSON.stringify` writes. Numbers stay text from here on; formatting
    /// them in Rust would pull float printing into the wasm.
    #[wasm_bindgen(js_name = String)]
    fn number_text(n: f64) -> String;
    /// A value that passed `instanceof Date` (a Proxy of a Date does too, and throws here).
    type DateLike;
    #[wasm_bindgen(catch, method, js_name = getTime)]
    fn time(this: &DateLike) -> std::result::Result<f64, JsValue>;
    #[wasm_bindgen(catch, method, js_name = toISOString)]
    fn iso(this: &DateLike) -> std::result::Result<String, JsValue>;
}

/// The error for a value whose own code threw while it was read (a getter, a Proxy trap).
fn threw(at: Path, e: &JsValue) -> Error {
    let path = at.text();
    let message = format!("reading {path} threw: {}", describe(e));
    Error::at(ErrorCode::InvalidProperties, path, message)
}

/// Writes the `properties` argument of `track` as checked JSON text: `undefined`/`null` mean
/// none.
pub fn to_props(v: &JsValue) -> Result<Props> {
    let mut w = PropsWriter::new();
    if v.is_undefined() || v.is_null() {
        w.open(b'{', Path::Root)?;
        w.close(b'}');
        return Ok(w.finish());
    }
    if !is_plain_object(v).map_err(|e| threw(Path::Root, &e))? {
        return Err(bad(Path::Root, &[" must be a plain object, got ", &kind(v)]));
    }
    // Straight to the members: the checks `walk` starts with are settled for this value.
    object(v, Path::Root, &mut w, &mut Vec::new())?;
    Ok(w.finish())
}

/// An error about the property at `at`: the message is its path followed by `rest`.
fn bad(at: Path, rest: &[&str]) -> Error {
    let path = at.text();
    let mut message = path.clone();
    for part in rest {
        message.push_str(part);
    }
    Error::at(ErrorCode::InvalidProperties, path, message)
}

/// Writes `v` (not `undefined`; the caller decides what that means where it sits).
fn walk(v: &JsValue, at: Path, w: &mut PropsWriter, stack: &mut Vec<JsValue>) -> Result<()> {
    if let Some(s) = v.dyn_ref::<js_sys::JsString>() {
        w.refuse_long(s.length() as usize, at)?;
    }
    if let Some(s) = v.as_string() {
        return w.string(&s, at);
    }
    if let Some(n) = v.as_f64() {
        if !n.is_finite() {
            let what = if n.is_nan() {
                " is NaN"
            } else if n > 0.0 {
                " is Infinity"
            } else {
                " is -Infinity"
            };
            return Err(bad(at, &[what, ", which JSON cannot represent"]));
        }
        // Whole numbers below 2^53 (most of them) are written here; JavaScript writes the rest,
        // exactly as `JSON.stringify` would (`1.5`, `1e+21`): no float printing in the wasm.
        if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
            w.integer(n as i64);
        } else {
            w.literal(&number_text(n));
        }
        return Ok(());
    }
    if let Some(b) = v.as_bool() {
        w.literal(if b { "true" } else { "false" });
        return Ok(());
    }
    if v.is_null() {
        w.literal("null");
        return Ok(());
    }
    if v.is_bigint() {
        return Err(bad(at, &[" is a BigInt, which JSON cannot represent; convert it to a string or a number"]));
    }
    if v.is_symbol() || v.is_function() {
        return Err(bad(at, &[" is a ", &kind(v), ", which is not JSON"]));
    }
    if stack.iter().any(|seen| Object::is(seen, v)) {
        return Err(bad(at, &[" is a circular reference"]));
    }
    // Plain objects first: far more common than dates and arrays.
    if is_plain_object(v).map_err(|e| threw(at, &e))? {
        return object(v, at, w, stack);
    }
    if v.is_instance_of::<js_sys::Date>() {
        let date: &DateLike = v.unchecked_ref();
        if date.time().map_err(|e| threw(at, &e))?.is_nan() {
            return Err(bad(at, &[" is an invalid Date"]));
        }
        return w.string(&date.iso().map_err(|e| threw(at, &e))?, at);
    }
    if is_array(v).map_err(|e| threw(at, &e))? {
        w.open(b'[', at)?;
        stack.push(v.clone());
        let length = Reflect::get(v, &JsValue::from_str("length")).map_err(|e| threw(at, &e))?.as_f64().unwrap_or(0.0);
        for i in 0..length as u32 {
            let here = Path::Index(&at, i as usize);
            let item = Reflect::get_u32(v, i).map_err(|e| threw(here, &e))?;
            if item.is_undefined() {
                return Err(bad(here, &[" is undefined; use null in arrays"]));
            }
            walk(&item, here, w, stack)?;
        }
        stack.pop();
        w.close(b']');
        return Ok(());
    }
    Err(bad(at, &[" is ", &kind(v), ", not a plain object, array or JSON value"]))
}

/// Writes the plain object `v`, its members in key order, `undefined` ones left out.
fn object(v: &JsValue, at: Path, w: &mut PropsWriter, stack: &mut Vec<JsValue>) -> Result<()> {
    w.open(b'{', at)?;
    stack.push(v.clone());
    for key in object_keys(v).map_err(|e| threw(at, &e))?.iter() {
        let k = key.as_string().unwrap_or_default();
        let here = Path::Key(&at, &k);
        let item = Reflect::get(v, &key).map_err(|e| threw(here, &e))?;
        if !item.is_undefined() {
            w.key(&k, here)?;
            walk(&item, here, w, stack)?;
        }
    }
    stack.pop();
    w.close(b'}');
    Ok(())
}

/// Whether `v` is an object whose prototype is `null` or has a `null` prototype itself; what
/// a Proxy's traps throw is returned.
fn is_plain_object(v: &JsValue) -> std::result::Result<bool, JsValue> {
    if !v.is_object() || is_array(v)? {
        return Ok(false);
    }
    let proto = prototype_of(v)?;
    Ok(proto.is_null() || prototype_of(&proto)?.is_null())
}

/// A short description of a value for messages: `a function`, `an instance of Map`, ...
fn kind(v: &JsValue) -> String {
    if v.is_function() {
        return "function".into();
    }
    if v.is_symbol() {
        return "symbol".into();
    }
    if is_array(v).unwrap_or(false) {
        return "an array".into();
    }
    if v.is_object() {
        let name = get(&get(v, "constructor"), "name").as_string().unwrap_or_default();
        return if name.is_empty() { "an object".into() } else { format!("an instance of {name}") };
    }
    v.js_typeof().as_string().map(|t| format!("a {t}")).unwrap_or_else(|| "a value".into())
}
