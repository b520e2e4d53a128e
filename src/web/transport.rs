//! One HTTP request per event, through the global `fetch` (present in service workers, where
//! `window` is not). The request carries the `x-inhouse-*` credentials and the event id as
//! `Idempotency-Key` and `X-Request-ID`; `AbortSignal.timeout` aborts it after
//! `requestTimeoutMs`. The answer's body and dates are read by JavaScript (`JSON.parse`,
//! `Date.parse`); the core decides what they mean.

use super::js::{absorb, call, describe, get, now_ms, when_settled, Obj};
use crate::core::config::Credentials;
use crate::core::error::{Error, ErrorCode};
use crate::core::policy::{classify, Answer, Doc, ServerError, Verdict};
use crate::core::text::cat;
use crate::core::text::push_u64;
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use web_sys::Response;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`.
    #[wasm_bindgen(catch, js_name = fetch)]
    fn fetch(url: &str, init: &JsValue) -> Result<Promise, JsValue>;
    /// `AbortSignal.timeout(ms)`; throws where it is missing.
    #[wasm_bindgen(catch, js_namespace = AbortSignal, js_name = timeout)]
    fn abort_after(ms: u32) -> Result<JsValue, JsValue>;
    /// `JSON.parse(text)`, on the JavaScript string as it came.
    #[wasm_bindgen(catch, js_namespace = JSON, js_name = parse)]
    fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;
}

/// What to send and where.
#[derive(Debug)]
pub struct Request<'a> {
    pub url: &'a str,
    pub credentials: &'a Credentials,
    pub app_id: &'a str,
    pub event_id: &'a str,
    pub body: &'a str,
    pub timeout_ms: u32,
}

/// Sends one event; `then` gets the verdict on it (every failure is a verdict).
pub fn send(req: Request<'_>, then: impl FnOnce(Verdict) + 'static) {
    let headers = Obj::new()
        .set("content-type", "application/json")
        .set("x-inhouse-token-id", req.credentials.token_id.as_str())
        .set("x-inhouse-token-secret", req.credentials.token_secret.as_str())
        .set("x-inhouse-app", req.app_id)
        .set("idempotency-key", req.event_id)
        .set("x-request-id", req.event_id)
        .done();
    let init = Obj::new()
        .set("method", "POST")
        .set("headers", headers)
        .set("body", req.body)
        // Covers the whole exchange, body included, and needs no timer of ours.
        .set("signal", abort_after(req.timeout_ms).unwrap_or(JsValue::UNDEFINED))
        .set("credentials", "omit")
        .set("cache", "no-store")
        // Never followed (the secret must not reach another address); seen as a redirect, not
        // as a network error ("error" would make both "Failed to fetch").
        .set("redirect", "manual")
        .done();
    let (url, timeout_ms) = (req.url.to_string(), req.timeout_ms);
    let fetched = fetch(req.url, &init).unwrap_or_else(|e| Promise::reject(&e));
    when_settled(
        &fetched,
        Box::new(move |r| {
            let response: Response = match r {
                Ok(response) => response.unchecked_into(),
                Err(e) => return then(failure(&url, timeout_ms, &e)),
            };
            if get(&response, "type").as_string().as_deref() == Some("opaqueredirect") {
                return then(redirected(&url));
            }
            let headers = response.headers();
            let header = |name: &str| headers.get(name).ok().flatten();
            let (status, retry_after, reset) = (response.status(), header("retry-after"), header("x-ratelimit-reset"));
            // The status decides: a success's body is not needed, so it is not read (a body that
            // never ends, or a huge one, cannot turn a delivery into a failure or fill memory);
            // cancelling it releases the connection.
            if matches!(status, 200..=299 | 409) {
                cancel_body(&response);
                return then(judge(status, retry_after.as_deref(), reset.as_deref(), &JsValue::UNDEFINED, now_ms()));
            }
            let body = response.text().unwrap_or_else(|e| Promise::reject(&e));
            when_settled(
                &body,
                Box::new(move |r| match r {
                    Ok(body) => then(judge(status, retry_after.as_deref(), reset.as_deref(), &body, now_ms())),
                    Err(e) => then(failure(&url, timeout_ms, &e)),
                }),
            );
        }),
    );
}

/// `response.body.cancel()`, its rejection absorbed.
fn cancel_body(response: &Response) {
    let body = get(response, "body");
    if let Ok(p) = call(&body, "cancel", &[]) {
        absorb(p);
    }
}

/// The verdict on a redirect: a configuration error, which pauses delivery.
fn redirected(url: &str) -> Verdict {
    let msg = cat(&[
        "the server answered ",
        url,
        " with a redirect; redirects are never followed (the token secret must not reach another address): set baseUrl to the final address of the API",
    ]);
    Verdict::Pause { error: Error::new(ErrorCode::Redirected, msg) }
}

/// The verdict on a request that got no (complete) answer: timed out, or never got through.
fn failure(url: &str, timeout_ms: u32, e: &JsValue) -> Verdict {
    if matches!(get(e, "name").as_string().as_deref(), Some("TimeoutError" | "AbortError")) {
        let mut msg = String::from("no answer from ");
        msg.push_str(url);
        msg.push_str(" within ");
        push_u64(&mut msg, timeout_ms.into());
        msg.push_str(" ms");
        return Verdict::Retry { after_ms: None, error: Error::new(ErrorCode::Timeout, msg) };
    }
    let mut msg = String::from("could not reach ");
    msg.push_str(url);
    msg.push_str(": ");
    msg.push_str(&describe(e));
    Verdict::Unreachable { error: Error::new(ErrorCode::NetworkError, msg) }
}

/// Classifies an answer whose body is `body` (a JavaScript string): JSON bodies through
/// `JSON.parse`, any other text as it is; dates through [`date_ms`].
pub fn judge(status: u16, retry_after: Option<&str>, rate_limit_reset: Option<&str>, body: &JsValue, now_ms: u64) -> Verdict {
    // A success says nothing the verdict needs: its body is not parsed (the drain's hot path).
    let server = if matches!(status, 200..=299 | 409) {
        ServerError::default()
    } else {
        match json_parse(body) {
            Ok(doc) => ServerError::from_doc(&doc),
            Err(_) => ServerError::from_text(&body.as_string().unwrap_or_default()),
        }
    };
    classify(&Answer { status, retry_after, rate_limit_reset, server }, now_ms, date_ms)
}

/// JavaScript's `Date.parse` (IMF-fixdate, ISO 8601, ...) as milliseconds since the epoch;
/// `None` for what it cannot read and for times before 1970.
pub fn date_ms(s: &str) -> Option<u64> {
    let t = js_sys::Date::parse(s);
    (t >= 0.0).then_some(t as u64)
}

/// A value `JSON.parse` gave.
impl Doc for JsValue {
    fn field(&self, key: &str) -> Option<JsValue> {
        Some(get(self, key)).filter(|v| !v.is_undefined())
    }
    fn first(&self) -> Option<JsValue> {
        js_sys::Array::is_array(self).then(|| get(self, "0")).filter(|v| !v.is_undefined())
    }
    fn text(&self) -> Option<String> {
        self.as_string()
    }
}
