//! The edge's JavaScript plumbing: reading objects without panicking, the SDK's errors as JavaScript errors, and the promises `track` returns (made with
//! `withResolvers`: one per call, settled when the write is done).

use crate::core::error::Error;
use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

/// `obj[key]`, or `undefined` when `obj` is not an object or the getter throws.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() && !obj.is_function() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `globalThis.a.b.c`, or `None` if any step is missing.
pub fn global_path(path: &[&str]) -> Option<JsValue> {
    let mut v: JsValue = GLOBAL_THIS.with(JsValue::clone);
    for key in path {
        v = get(&v, key);
        if v.is_undefined() || v.is_null() {
            return None;
        }
    }
    Some(v)
}

/// Calls `obj.method(...args)` with up to two arguments. Exactly those: extension APIs refuse a
/// call with more arguments than their signature (`getManifest(undefined)` throws).
pub fn call(obj: &JsValue, method: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = get(obj, method).dyn_into().map_err(|_| JsValue::from_str(&format!("{method} is not a function")))?;
    match args {
        [] => f.call0(obj),
        [a] => f.call1(obj, a),
        [a, b, ..] => f.call2(obj, a, b),
    }
}

#[wasm_bindgen]
extern "C" {
    /// `globalThis`: in a service worker, an extension page and a test page alike.
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL_THIS: JsValue;
    /// JavaScript's `String(v)`; throws for an object without `toString` (a null prototype).
    #[wasm_bindgen(catch, js_name = String)]
    pub fn js_string(v: &JsValue) -> Result<String, JsValue>;
    /// `Array.isArray(v)`: throws for a revoked Proxy.
    #[wasm_bindgen(catch, js_namespace = Array, js_name = isArray)]
    pub fn is_array(v: &JsValue) -> Result<bool, JsValue>;
    /// `Object.keys(v)`: runs a Proxy's `ownKeys` and `getOwnPropertyDescriptor` traps.
    #[wasm_bindgen(catch, js_namespace = Object, js_name = keys)]
    pub fn object_keys(v: &JsValue) -> Result<js_sys::Array, JsValue>;
    /// `Object.getPrototypeOf(v)`: runs a Proxy's `getPrototypeOf` trap.
    #[wasm_bindgen(catch, js_namespace = Object, js_name = getPrototypeOf)]
    pub fn prototype_of(v: &JsValue) -> Result<JsValue, JsValue>;
    /// `Promise.withResolvers()`: `{promise, resolve, reject}`.
    #[wasm_bindgen(js_namespace = Promise, js_name = withResolvers)]
    fn with_resolvers() -> JsValue;
}

/// A readable message from anything JavaScript threw or rejected with. Not Rust's `{:?}` of a
/// `JsValue`: that pulls a value printer into both the wasm and its JavaScript glue.
pub fn describe(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    js_string(e).unwrap_or_else(|_| "an unprintable value".into())
}

thread_local! {
    /// The package's `InhouseError` class, once its loader hands it over.
    static ERROR_CLASS: std::cell::RefCell<Option<Function>> = const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// The loader's function to call as the wasm traps (see [`on_trap`]).
    static ON_TRAP: std::cell::RefCell<Option<Function>> = const { std::cell::RefCell::new(None) };
}

/// Calls `notify` from the panic hook, before the panic aborts (traps) the wasm. Nothing of the
/// panic is read or formatted: the loader only needs to know.
pub fn on_trap(notify: Function) {
    ON_TRAP.with(|f| *f.borrow_mut() = Some(notify));
    std::panic::set_hook(Box::new(|_| {
        let _ = ON_TRAP.try_with(|f| {
            if let Ok(f) = f.try_borrow() {
                if let Some(f) = f.as_ref() {
                    let _ = f.call0(&JsValue::UNDEFINED);
                }
            }
        });
    }));
}

/// Makes every error the wasm creates an instance of `class` (`new class(code, message,
/// field)`), so that the loader passes them on as they are, with no wrapper on the hot path.
pub fn use_error_class(class: Function) {
    ERROR_CLASS.with(|c| *c.borrow_mut() = Some(class));
}

/// The SDK's error as a JavaScript error with `code` and `field`: an instance of the class given
/// to [`use_error_class`], or else an `Error` named `InhouseError`.
pub fn to_js_error(e: &Error) -> JsValue {
    let field = e.field.as_deref().map_or(JsValue::UNDEFINED, JsValue::from_str);
    let made = ERROR_CLASS.with(|c| {
        let class = c.borrow();
        let args = js_sys::Array::of3(&e.code.as_str().into(), &e.message.as_str().into(), &field);
        Reflect::construct(class.as_ref()?, &args).ok()
    });
    if let Some(err) = made {
        return err;
    }
    let err = js_sys::Error::new(&e.message);
    err.set_name("InhouseError");
    let _ = Reflect::set(&err, &"code".into(), &e.code.as_str().into());
    if !field.is_undefined() {
        let _ = Reflect::set(&err, &"field".into(), &field);
    }
    err.into()
}

/// A new promise and the functions that settle it.
#[derive(Debug)]
pub struct Deferred {
    pub promise: js_sys::Promise,
    pub resolve: Function,
    pub reject: Function,
}

/// A promise settled later by whoever holds its [`Deferred`]: `Promise.withResolvers()`
/// (Chrome 119+). `track` returns one per call: cheaper than a future made into a promise, and
/// settled in one pass when the write that stores a burst is done.
pub fn deferred() -> Deferred {
    // `{promise, resolve, reject}`, read by position: no property name crosses from the wasm
    // (this runs once per `track` call).
    let d = js_sys::Object::values(with_resolvers().unchecked_ref::<js_sys::Object>());
    Deferred { promise: d.get(0).unchecked_into(), resolve: d.get(1).unchecked_into(), reject: d.get(2).unchecked_into() }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Waits for `p` (if it is a promise) and ignores how it ends: a fire-and-forget call's
/// rejection does not become an unhandled rejection in the console.
pub fn absorb(p: JsValue) {
    if let Ok(p) = p.dyn_into::<js_sys::Promise>() {
        wasm_bindgen_futures::spawn_local(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(p).await;
        });
    }
}
