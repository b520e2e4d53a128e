//! One HTTP request per event, through the global `fetch` (present in service workers, where
//! `window` is not). The request carries the `x-inhouse-*` credentials and the event id as
//! `Idempotency-Key` and `X-Request-ID`; a timer aborts it after `requestTimeoutMs`.

use super::js::{call, describe, get, global_path};
use crate::core::config::Credentials;
use crate::core::error::{Error, ErrorCode};
use crate::core::policy::{classify, Answer, Verdict};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

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

/// Sends one event and classifies the outcome; never fails.
pub async fn send(req: Request<'_>, now: impl Fn() -> u64) -> Verdict {
    // AbortSignal.timeout covers the whole exchange, body included, and needs no timer of ours.
    let signal = global_path(&["AbortSignal"])
        .and_then(|c| call(&c, "timeout", &[&f64::from(req.timeout_ms).into()]).ok())
        .unwrap_or(JsValue::UNDEFINED);
    let outcome = perform(&req, &signal).await;
    match outcome {
        Ok((status, retry_after, reset, body)) => classify(
            &Answer { status, retry_after: retry_after.as_deref(), rate_limit_reset: reset.as_deref(), body: &body },
            now(),
        ),
        Err(e) if matches!(get(&e, "name").as_string().as_deref(), Some("TimeoutError" | "AbortError")) => Verdict::Retry {
            after_ms: None,
            error: Error::new(ErrorCode::Timeout, format!("no answer from {} within {} ms", req.url, req.timeout_ms)),
        },
        Err(e) => Verdict::Unreachable {
            error: Error::new(ErrorCode::NetworkError, format!("could not reach {}: {}", req.url, describe(&e))),
        },
    }
}

type Reply = (u16, Option<String>, Option<String>, String);

async fn perform(req: &Request<'_>, signal: &JsValue) -> Result<Reply, JsValue> {
    let headers = Object::new();
    for (k, v) in [
        ("content-type", "application/json"),
        ("x-inhouse-token-id", req.credentials.token_id.as_str()),
        ("x-inhouse-token-secret", req.credentials.token_secret.as_str()),
        ("x-inhouse-app", req.app_id),
        ("idempotency-key", req.event_id),
        ("x-request-id", req.event_id),
    ] {
        Reflect::set(&headers, &k.into(), &v.into())?;
    }
    let init = Object::new();
    for (k, v) in [
        ("method", JsValue::from_str("POST")),
        ("headers", headers.into()),
        ("body", JsValue::from_str(req.body)),
        ("signal", signal.clone()),
        ("credentials", JsValue::from_str("omit")),
        ("cache", JsValue::from_str("no-store")),
        ("redirect", JsValue::from_str("error")),
    ] {
        Reflect::set(&init, &k.into(), &v)?;
    }
    let fetch: Function = global_path(&["fetch"]).ok_or_else(|| JsValue::from_str("fetch is not available"))?.unchecked_into();
    let response = JsFuture::from(fetch.call2(&JsValue::UNDEFINED, &req.url.into(), &init)?.unchecked_into::<Promise>()).await?;
    let status = get(&response, "status").as_f64().unwrap_or(0.0) as u16;
    let headers = get(&response, "headers");
    let header = |name: &str| call(&headers, "get", &[&name.into()]).ok().and_then(|v| v.as_string());
    let (retry_after, reset) = (header("retry-after"), header("x-ratelimit-reset"));
    // The body only matters for errors (the server's message); still read it on success so the
    // connection is released promptly.
    let text = JsFuture::from(call(&response, "text", &[])?.unchecked_into::<Promise>()).await?;
    Ok((status, retry_after, reset, text.as_string().unwrap_or_default()))
}
