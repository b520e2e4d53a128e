//! The `Tracker` constructor's options object → [`Options`], key by key, so that an unknown key
//! or a wrong type is an error naming the field. The rules on values are the core's
//! (`core::config`).

use super::js::get;
use crate::core::config::{self, Options};
use crate::core::error::Error;
use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;

/// Reads `init`'s options object key by key, so that an unknown key or a wrong type is an
/// error naming the field (`retry.maxAttempts must be a whole number, got string`).
pub fn read(options: &JsValue) -> Result<(Options, Option<Function>, Option<Function>), Error> {
    use config::OptionKind;
    let mut o = Options::default();
    let (mut on_error, mut on_drop) = (None, None);
    let known: Vec<&str> = config::OPTION_NAMES.iter().map(|(n, _)| *n).collect();
    for key in Object::keys(options.unchecked_ref::<Object>()).iter() {
        let name = key.as_string().unwrap_or_default();
        let v = get(options, &name);
        if v.is_undefined() {
            continue;
        }
        let kind = config::OPTION_NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k).ok_or_else(|| config::unknown_option(&name, &known))?;
        match kind {
            OptionKind::Text => {
                let text = Some(v.as_string().ok_or_else(|| config::wrong_type(&name, "a string", &type_name(&v)))?);
                match name.as_str() {
                    "tokenId" => o.token_id = text,
                    "tokenSecret" => o.token_secret = text,
                    "appId" => o.app_id = text,
                    "baseUrl" => o.base_url = text,
                    _ => o.wasm_url = text,
                }
            }
            OptionKind::Count => {
                let n = Some(count(&name, &v)?);
                match name.as_str() {
                    "maxQueueEvents" => o.max_queue_events = n,
                    "maxQueueBytes" => o.max_queue_bytes = n,
                    "maxEventBytes" => o.max_event_bytes = n,
                    "requestTimeoutMs" => o.request_timeout_ms = n,
                    _ => o.concurrency = n,
                }
            }
            OptionKind::Flag => {
                let b = Some(v.as_bool().ok_or_else(|| config::wrong_type(&name, "true or false", &type_name(&v)))?);
                match name.as_str() {
                    "debug" => o.debug = b,
                    _ => o.allow_any_app_id = b,
                }
            }
            OptionKind::Retry => {
                if !v.is_object() {
                    return Err(config::wrong_type("retry", "an object", &type_name(&v)));
                }
                let mut r = config::RetryOptions::default();
                for key in Object::keys(v.unchecked_ref::<Object>()).iter() {
                    let sub = key.as_string().unwrap_or_default();
                    let field = format!("retry.{sub}");
                    let value = get(&v, &sub);
                    if value.is_undefined() {
                        continue;
                    }
                    let n = Some(count(&field, &value)?);
                    match sub.as_str() {
                        "baseDelayMs" => r.base_delay_ms = n,
                        "maxDelayMs" => r.max_delay_ms = n,
                        "maxAttempts" => r.max_attempts = n,
                        "maxRetryAfterMs" => r.max_retry_after_ms = n,
                        _ => return Err(config::unknown_option(&field, config::RETRY_OPTION_NAMES)),
                    }
                }
                o.retry = Some(r);
            }
            OptionKind::Hook => {
                let f = Some(v.dyn_into::<Function>().map_err(|v| config::wrong_type(&name, "a function", &type_name(&v)))?);
                if name == "onError" { on_error = f } else { on_drop = f }
            }
        }
    }
    Ok((o, on_error, on_drop))
}

fn count(field: &str, v: &JsValue) -> Result<u32, Error> {
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) => Ok(n as u32),
        _ => Err(config::wrong_type(field, "a whole number", &type_name(v))),
    }
}

fn type_name(v: &JsValue) -> String {
    if v.is_null() {
        "null".into()
    } else if js_sys::Array::is_array(v) {
        "an array".into()
    } else if let Some(n) = v.as_f64() {
        if n.fract() == 0.0 { format!("{}", n as i64) } else { "a fractional number".into() }
    } else {
        v.js_typeof().as_string().unwrap_or_default()
    }
}
