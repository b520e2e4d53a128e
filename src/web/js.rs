//! The edge's JavaScript plumbing: reading objects without panicking, building them field by
//! field, the SDK's errors as JavaScript errors, and promises (made with `withResolvers`, waited
//! on through one shared callback: no futures executor in the wasm).

use crate::core::error::Error;
use crate::core::text::cat;
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
    let f: Function = get(obj, method).dyn_into().map_err(|_| JsValue::from_str(&cat(&[method, " is not a function"])))?;
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
    fn js_string(v: &JsValue) -> Result<String, JsValue>;
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
    /// A promise seen untyped: its `then` takes plain functions.
    type Thenable;
    /// `promise.then(on_fulfilled, on_rejected)`.
    #[wasm_bindgen(method)]
    fn then(this: &Thenable, on_fulfilled: &JsValue, on_rejected: &JsValue);
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
/// (Chrome 119+), so no executor calls back into the wasm.
pub fn deferred() -> Deferred {
    // `{promise, resolve, reject}`, read by position: no property name crosses from the wasm
    // (this runs once per `track` call).
    let d = js_sys::Object::values(with_resolvers().unchecked_ref::<js_sys::Object>());
    Deferred { promise: d.get(0).unchecked_into(), resolve: d.get(1).unchecked_into(), reject: d.get(2).unchecked_into() }
}

thread_local! {
    /// JavaScript strings made once: see [`interned`].
    static INTERNED: std::cell::RefCell<Vec<(&'static str, JsValue)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The JavaScript string of `s`, made once and kept: for the few constant strings the hot
/// paths hand to JavaScript again and again (decoding a string out of the wasm costs more than
/// the rest of setting a property).
pub fn interned(s: &'static str) -> JsValue {
    INTERNED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, v)) = cache.iter().find(|(k, _)| std::ptr::eq(*k, s)) {
            return v.clone();
        }
        let v = JsValue::from_str(s);
        cache.push((s, v.clone()));
        v
    })
}

/// `target[key] = value`, on an object the SDK made (a plain data property: it cannot throw).
pub fn set_property(target: &JsValue, key: &JsValue, value: &JsValue) {
    set_any(target, key, value);
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Builds a plain JavaScript object field by field (cheaper in wasm bytes than serde).
#[derive(Debug)]
pub struct Obj(js_sys::Object);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj(js_sys::Object::new())
    }
    /// Sets a field.
    pub fn set(self, key: &str, value: impl Field) -> Obj {
        value.store(&self.0, key);
        self
    }
    /// Sets a numeric field.
    pub fn num(self, key: &str, value: u64) -> Obj {
        set_number(&self.0, key, value as f64);
        self
    }
    /// Sets a field to a number or `null`.
    pub fn opt_num(self, key: &str, value: Option<u64>) -> Obj {
        match value {
            Some(v) => self.num(key, v),
            None => self.set(key, JsValue::NULL),
        }
    }
    /// The object.
    pub fn done(self) -> JsValue {
        self.0.into()
    }
}

#[wasm_bindgen]
extern "C" {
    // `Reflect.set` with the key (and a text or number value) passed as Rust values: one call
    // into JavaScript per field, where a key and a value as JS values would take three.
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn set_text(target: &js_sys::Object, key: &str, value: &str);
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn set_number(target: &js_sys::Object, key: &str, value: f64);
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn set_value(target: &js_sys::Object, key: &str, value: &JsValue);
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn set_any(target: &JsValue, key: &JsValue, value: &JsValue);
}

/// A value [`Obj::set`] can store.
pub trait Field {
    /// Sets `obj[key]` to this value.
    fn store(self, obj: &js_sys::Object, key: &str);
}

impl Field for &str {
    fn store(self, obj: &js_sys::Object, key: &str) {
        set_text(obj, key, self);
    }
}

impl Field for &String {
    fn store(self, obj: &js_sys::Object, key: &str) {
        set_text(obj, key, self);
    }
}

impl Field for bool {
    fn store(self, obj: &js_sys::Object, key: &str) {
        set_value(obj, key, &JsValue::from_bool(self));
    }
}

impl Field for JsValue {
    fn store(self, obj: &js_sys::Object, key: &str) {
        set_value(obj, key, &self);
    }
}

impl Default for Obj {
    fn default() -> Self {
        Obj::new()
    }
}

/// What `then` receives: the promise's value, or what it rejected with.
pub type Settled = Result<JsValue, JsValue>;

/// A continuation waiting for a promise.
type Then = Box<dyn FnOnce(Settled)>;

thread_local! {
    /// Continuations by slot; `None` marks a free slot.
    static WAITING: std::cell::RefCell<Vec<Option<Then>>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The one JavaScript function every promise settles through, bound to a slot and an outcome.
    static ON_SETTLED: Function = Closure::<dyn FnMut(u32, bool, JsValue)>::new(|slot: u32, ok: bool, value: JsValue| {
        let then = WAITING.with(|w| w.borrow_mut().get_mut(slot as usize).and_then(Option::take));
        if let Some(then) = then {
            then(if ok { Ok(value) } else { Err(value) });
        }
    })
    .into_js_value()
    .unchecked_into();
}

/// Calls `then` once `promise` settles, always from a later microtask (never from inside this
/// call, so a caller may hold a borrow). Every wait shares one JavaScript callback, bound to
/// the slot of its continuation: a pending operation costs one boxed closure, and the wasm no
/// futures executor.
pub fn when_settled(promise: &js_sys::Promise, then: Box<dyn FnOnce(Settled)>) {
    let slot = WAITING.with(|w| {
        let mut w = w.borrow_mut();
        let free = w.iter().position(Option::is_none).unwrap_or(w.len());
        if free == w.len() {
            w.push(None);
        }
        w[free] = Some(then);
        free as u32
    });
    ON_SETTLED.with(|f| {
        let (slot, fulfilled, rejected) = (JsValue::from(slot), JsValue::from(true), JsValue::from(false));
        let on_fulfilled = f.bind2(&JsValue::NULL, &slot, &fulfilled);
        let on_rejected = f.bind2(&JsValue::NULL, &slot, &rejected);
        promise.unchecked_ref::<Thenable>().then(on_fulfilled.as_ref(), on_rejected.as_ref());
    });
}

/// Waits for `p` (if it is a promise) and ignores how it ends: a fire-and-forget call's
/// rejection does not become an unhandled rejection in the console.
pub fn absorb(p: JsValue) {
    if let Ok(p) = p.dyn_into::<js_sys::Promise>() {
        when_settled(&p, Box::new(drop));
    }
}
