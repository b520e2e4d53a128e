//! The options object as the user gives it: each key read into a [`Value`] and checked by
//! [`Options::set`] into one named field of [`Options`] (the names, the types, the ranges), with
//! errors that name the field.

use crate::core::error::{Error, ErrorCode, Result};
use crate::core::json::quoted;
use crate::core::json::Json;

/// The recommended, versioned API base.
pub const DEFAULT_BASE_URL: &str = "https://api.tryinhouse.co/v1/api";
/// The path appended to the base for every event.
pub const TRACK_PATH: &str = "/chrome/events/track";

/// Every top-level option `init` accepts (camelCase, as JavaScript writes them), in the order the
/// "known options" list of an unknown-option error shows them.
pub const OPTION_NAMES: [&str; 25] = [
    "tokenId",
    "tokenSecret",
    "appId",
    "baseUrl",
    "allowAnyAppId",
    "maxQueueEvents",
    "maxQueueBytes",
    "maxEventBytes",
    "requestTimeoutMs",
    "concurrency",
    "sessionTimeoutMs",
    "pageUrl",
    "enabled",
    "autoEvents",
    "captureErrors",
    "sampleRate",
    "uninstallUrl",
    "retry",
    "debug",
    "wasmUrl",
    "onError",
    "onDrop",
    "beforeSend",
    "plan",
    "planMode",
];

/// The keys of the `retry` option.
pub const RETRY_OPTION_NAMES: [&str; 4] = ["baseDelayMs", "maxDelayMs", "maxAttempts", "maxRetryAfterMs"];
/// The keys of the `autoEvents` option.
pub const AUTO_EVENT_NAMES: [&str; 4] = ["install", "update", "startup", "daily"];

/// Which object of the options a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Top,
    Retry,
    AutoEvents,
}

/// Chrome's limit on `chrome.runtime.setUninstallURL`.
pub const MAX_UNINSTALL_URL: usize = 1023;
/// What the SDK appends to the uninstall URL at most: `?install_id=` and 36, `&version=` and 23
/// (four numbers of up to 5 digits), `&days_installed=` and up to 6 digits: 102, rounded up.
pub const UNINSTALL_QUERY_ROOM: usize = 110;

/// A whole-number option's accepted values and its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

impl Range {
    /// The value given (or the default), checked: out of range is an error naming `field`.
    pub fn check(self, field: &str, given: Option<u32>) -> Result<u32> {
        let v = given.unwrap_or(self.default);
        if (self.min..=self.max).contains(&v) {
            return Ok(v);
        }
        Err(invalid(field, format!("{field} must be between {} and {}, got {v}", self.min, self.max)))
    }
}

pub const MAX_QUEUE_EVENTS: Range = Range { min: 1, max: 1_000_000, default: 20_000 };
/// chrome.storage.local holds 10 MB for the whole extension: the default leaves more than half
/// of it to the extension's own data.
pub const MAX_QUEUE_BYTES: Range = Range { min: 1024, max: 64 * 1024 * 1024, default: 4 * 1024 * 1024 };
pub const MAX_EVENT_BYTES: Range = Range { min: 256, max: 1024 * 1024, default: 32 * 1024 };
/// Chrome stops a service worker whose fetch takes longer than 30 s: stay well under it.
pub const REQUEST_TIMEOUT_MS: Range = Range { min: 100, max: 25_000, default: 10_000 };
/// Six: every connection Chrome opens to one HTTP/1.1 host (HTTP/2 multiplexes them anyway).
pub const CONCURRENCY: Range = Range { min: 1, max: 16, default: 6 };
/// Thirty minutes without user activity end a session (what GA4 and most analytics use).
pub const SESSION_TIMEOUT_MS: Range = Range { min: 1_000, max: 86_400_000, default: 30 * 60_000 };
pub const RETRY_BASE_DELAY_MS: Range = Range { min: 100, max: 600_000, default: 1_000 };
pub const RETRY_MAX_DELAY_MS: Range = Range { min: 1_000, max: 86_400_000, default: 300_000 };
pub const RETRY_MAX_ATTEMPTS: Range = Range { min: 1, max: 1_000, default: 25 };
pub const RETRY_MAX_RETRY_AFTER_MS: Range = Range { min: 1_000, max: 7 * 86_400_000, default: 86_400_000 };

/// A value of the options object, as the edge reads it from JavaScript whatever the option.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
    Bool(bool),
    Function,
    /// An object that is not an array (nor null, nor a function).
    Object,
    Array,
    /// Anything else, by the name messages give its type: `null`, `symbol`, `bigint`.
    Other(&'static str),
}

impl Value {
    /// The type as messages name it: `string`, `an array`, `-1`, `a fractional number`.
    fn described(&self) -> String {
        match self {
            Value::Text(_) => "string".into(),
            Value::Bool(_) => "boolean".into(),
            Value::Function => "function".into(),
            Value::Object => "object".into(),
            Value::Array => "an array".into(),
            Value::Other(name) => (*name).into(),
            Value::Number(n) if n.fract() == 0.0 => (*n as i64).to_string(),
            Value::Number(_) => "a fractional number".into(),
        }
    }
}

/// Options exactly as JavaScript passes them to `init`, type-checked but not yet validated.
/// `None`: not given.
#[derive(Default)]
pub struct Options {
    pub token_id: Option<String>,
    pub token_secret: Option<String>,
    pub app_id: Option<String>,
    pub base_url: Option<String>,
    /// Development override: outside an extension, accept an `appId` that is not an extension id.
    pub allow_any_app_id: Option<bool>,
    pub max_queue_events: Option<u32>,
    pub max_queue_bytes: Option<u32>,
    pub max_event_bytes: Option<u32>,
    pub request_timeout_ms: Option<u32>,
    pub concurrency: Option<u32>,
    pub session_timeout_ms: Option<u32>,
    /// `"origin"`, `"path"` or `"full"`: see [`PageUrl`](crate::core::origin::PageUrl).
    pub page_url: Option<String>,
    /// The opt-in choice of a new install (`false`: opted out until `setEnabled(true)`).
    pub enabled: Option<bool>,
    pub auto_events: AutoEventOptions,
    pub capture_errors: Option<bool>,
    pub sample_rate: Option<f64>,
    pub uninstall_url: Option<String>,
    pub debug: Option<bool>,
    /// The JavaScript loader's: checked here, used there.
    pub wasm_url: Option<String>,
    pub retry: RetryOptions,
    /// The tracking plan as given (checked by `validate`).
    pub plan: Option<Json>,
    /// `"reject"` or `"report"`: see [`PlanMode`](crate::core::plan::PlanMode).
    pub plan_mode: Option<String>,
}

/// The `autoEvents` option's keys.
#[derive(Debug, Default)]
pub struct AutoEventOptions {
    pub install: Option<bool>,
    pub update: Option<bool>,
    pub startup: Option<bool>,
    pub daily: Option<bool>,
}

/// The `retry` option's keys.
#[derive(Debug, Default)]
pub struct RetryOptions {
    pub base_delay_ms: Option<u32>,
    pub max_delay_ms: Option<u32>,
    pub max_attempts: Option<u32>,
    pub max_retry_after_ms: Option<u32>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("token_id", &self.token_id)
            .field("token_secret", &self.token_secret.as_ref().map(|_| "<redacted>"))
            .field("app_id", &self.app_id)
            .field("base_url", &self.base_url)
            .field("allow_any_app_id", &self.allow_any_app_id)
            .field("max_queue_events", &self.max_queue_events)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("max_event_bytes", &self.max_event_bytes)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("concurrency", &self.concurrency)
            .field("session_timeout_ms", &self.session_timeout_ms)
            .field("page_url", &self.page_url)
            .field("enabled", &self.enabled)
            .field("auto_events", &self.auto_events)
            .field("capture_errors", &self.capture_errors)
            .field("sample_rate", &self.sample_rate)
            .field("uninstall_url", &self.uninstall_url)
            .field("debug", &self.debug)
            .field("wasm_url", &self.wasm_url)
            .field("retry", &self.retry)
            .field("plan", &self.plan.as_ref().map(|_| "<plan>"))
            .field("plan_mode", &self.plan_mode)
            .finish()
    }
}

/// What the edge does after [`Options::set`] took a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// The value is in [`Options`].
    Stored,
    /// The key is `retry`: read its keys in [`Scope::Retry`].
    ReadRetry,
    /// The key is `autoEvents`: read its keys in [`Scope::AutoEvents`].
    ReadAutoEvents,
    /// The key is `beforeSend`: keep the function.
    BeforeSend,
    /// The key is `onError`: keep the function.
    OnError,
    /// The key is `onDrop`: keep the function.
    OnDrop,
    /// The key is `plan`: read the object into [`Options::plan`].
    ReadPlan,
}

impl Options {
    /// Takes one key of the options object (or of its `retry` or `autoEvents` object). An
    /// unknown key or a value of the wrong type is an error naming the field
    /// (`retry.maxAttempts must be a whole number, got a fractional number`).
    pub fn set(&mut self, scope: Scope, key: &str, value: Value) -> Result<Taken> {
        let field = match scope {
            Scope::Top => key.to_string(),
            Scope::Retry => format!("retry.{key}"),
            Scope::AutoEvents => format!("autoEvents.{key}"),
        };
        let field = field.as_str();
        if scope == Scope::AutoEvents {
            let slot = match key {
                "install" => &mut self.auto_events.install,
                "update" => &mut self.auto_events.update,
                "startup" => &mut self.auto_events.startup,
                "daily" => &mut self.auto_events.daily,
                _ => return Err(unknown_option(&AUTO_EVENT_NAMES, field, key)),
            };
            *slot = Some(flag(field, value)?);
            return Ok(Taken::Stored);
        }
        if scope == Scope::Retry {
            let slot = match key {
                "baseDelayMs" => &mut self.retry.base_delay_ms,
                "maxDelayMs" => &mut self.retry.max_delay_ms,
                "maxAttempts" => &mut self.retry.max_attempts,
                "maxRetryAfterMs" => &mut self.retry.max_retry_after_ms,
                _ => return Err(unknown_option(&RETRY_OPTION_NAMES, field, key)),
            };
            *slot = Some(whole(field, value)?);
            return Ok(Taken::Stored);
        }
        match key {
            "tokenId" => self.token_id = Some(text(field, value)?),
            "tokenSecret" => self.token_secret = Some(text(field, value)?),
            "appId" => self.app_id = Some(text(field, value)?),
            "baseUrl" => self.base_url = Some(text(field, value)?),
            "allowAnyAppId" => self.allow_any_app_id = Some(flag(field, value)?),
            "maxQueueEvents" => self.max_queue_events = Some(whole(field, value)?),
            "maxQueueBytes" => self.max_queue_bytes = Some(whole(field, value)?),
            "maxEventBytes" => self.max_event_bytes = Some(whole(field, value)?),
            "requestTimeoutMs" => self.request_timeout_ms = Some(whole(field, value)?),
            "concurrency" => self.concurrency = Some(whole(field, value)?),
            "sessionTimeoutMs" => self.session_timeout_ms = Some(whole(field, value)?),
            "pageUrl" => self.page_url = Some(text(field, value)?),
            "enabled" => self.enabled = Some(flag(field, value)?),
            "captureErrors" => self.capture_errors = Some(flag(field, value)?),
            "sampleRate" => self.sample_rate = Some(fraction(field, value)?),
            "uninstallUrl" => self.uninstall_url = Some(text(field, value)?),
            "autoEvents" if matches!(value, Value::Object | Value::Array) => return Ok(Taken::ReadAutoEvents),
            "autoEvents" => return Err(wrong_type(field, "an object such as {daily: false}", &value)),
            "debug" => self.debug = Some(flag(field, value)?),
            "wasmUrl" => self.wasm_url = Some(text(field, value)?),
            "plan" if value == Value::Object => return Ok(Taken::ReadPlan),
            "plan" => return Err(wrong_type(field, "an object of event names (the tracking plan)", &value)),
            "planMode" => self.plan_mode = Some(text(field, value)?),
            // An array's keys are read too (as ever: `retry: []` sets nothing).
            "retry" if matches!(value, Value::Object | Value::Array) => return Ok(Taken::ReadRetry),
            "retry" => return Err(wrong_type(field, "an object", &value)),
            "onError" | "onDrop" | "beforeSend" if value != Value::Function => return Err(wrong_type(field, "a function", &value)),
            "onError" => return Ok(Taken::OnError),
            "onDrop" => return Ok(Taken::OnDrop),
            "beforeSend" => return Ok(Taken::BeforeSend),
            _ => return Err(unknown_option(&OPTION_NAMES, field, key)),
        }
        Ok(Taken::Stored)
    }
}

fn text(field: &str, value: Value) -> Result<String> {
    match value {
        Value::Text(s) => Ok(s),
        other => Err(wrong_type(field, "a string", &other)),
    }
}

fn flag(field: &str, value: Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(b),
        other => Err(wrong_type(field, "true or false", &other)),
    }
}

fn whole(field: &str, value: Value) -> Result<u32> {
    match value {
        Value::Number(n) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) => Ok(n as u32),
        other => Err(wrong_type(field, "a whole number", &other)),
    }
}

fn fraction(field: &str, value: Value) -> Result<f64> {
    match value {
        Value::Number(n) if (0.0..=1.0).contains(&n) => Ok(n),
        Value::Number(n) => Err(invalid(field, format!("{field} must be between 0 and 1, got {}", number_text(n)))),
        other => Err(wrong_type(field, "a number between 0 and 1", &other)),
    }
}

/// A number as a message shows it, to six decimals (`1.5`, `-2`, `0.000001`). By hand: `{}` of
/// an `f64` brings Rust's float formatting into the wasm, measured at 14 KB of its 234 KB (about
/// 6 KB of the gzipped package) for this one message.
fn number_text(n: f64) -> String {
    if !n.is_finite() {
        return if n.is_nan() {
            "NaN".into()
        } else if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let scaled = (n.abs() * 1e6).round();
    if scaled >= 1e18 {
        return (n as i64).to_string();
    }
    let scaled = scaled as u64;
    let sign = if n < 0.0 && scaled > 0 { "-" } else { "" };
    let (whole, frac) = (scaled / 1_000_000, scaled % 1_000_000);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:06}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> Error {
    invalid(field, format!("{field} must be {expected}, got {}", got.described()))
}

/// Whether `name` and `key` are equal ignoring ASCII case and underscores in `key`.
fn same_letters(name: &str, key: &str) -> bool {
    let mut name = name.bytes();
    for k in key.bytes().filter(|&k| k != b'_') {
        match name.next() {
            Some(n) if n.eq_ignore_ascii_case(&k) => {}
            _ => return false,
        }
    }
    name.next().is_none()
}

/// An `INVALID_OPTION` error about `field`.
pub(super) fn invalid(field: &str, message: String) -> Error {
    Error::at(ErrorCode::InvalidOption, field, message)
}

/// The error for an option name nobody knows, with the likely intended one when it differs only
/// in case or underscores (`tokenID` → `tokenId`, `max_attempts` → `maxAttempts`).
fn unknown_option(known: &[&str], field: &str, key: &str) -> Error {
    let guess = known.iter().find(|name| same_letters(name, key)).map(|name| format!(" (did you mean \"{name}\"?)")).unwrap_or_default();
    invalid(field, format!("unknown option {}{guess}; known options: {}", quoted(field), known.join(", ")))
}
