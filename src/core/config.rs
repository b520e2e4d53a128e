//! Options as the user gives them, and their validation into a [`Config`] the engine trusts.

use super::error::{Error, ErrorCode, Result};
use super::json::quoted;
use serde::Deserialize;

/// The recommended, versioned API base.
pub const DEFAULT_BASE_URL: &str = "https://api.tryinhouse.co/v1/api";
/// The path appended to the base for every event.
pub const TRACK_PATH: &str = "/chrome/events/track";

/// Options exactly as JavaScript passes them to `init` (hooks are taken off by the edge).
/// Unknown keys are an error, so a typo such as `tokenID` is caught at once.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
    pub retry: Option<RetryOptions>,
    pub debug: Option<bool>,
    pub wasm_url: Option<String>,
}

/// The JavaScript type an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    Text,
    Count,
    Flag,
    Retry,
    Hook,
}

/// Every option `init` accepts, with its type (camelCase, as JavaScript writes them).
pub const OPTION_NAMES: &[(&str, OptionKind)] = &[
    ("tokenId", OptionKind::Text),
    ("tokenSecret", OptionKind::Text),
    ("appId", OptionKind::Text),
    ("baseUrl", OptionKind::Text),
    ("allowAnyAppId", OptionKind::Flag),
    ("maxQueueEvents", OptionKind::Count),
    ("maxQueueBytes", OptionKind::Count),
    ("maxEventBytes", OptionKind::Count),
    ("requestTimeoutMs", OptionKind::Count),
    ("concurrency", OptionKind::Count),
    ("retry", OptionKind::Retry),
    ("debug", OptionKind::Flag),
    ("wasmUrl", OptionKind::Text),
    ("onError", OptionKind::Hook),
    ("onDrop", OptionKind::Hook),
];

/// Every key of the `retry` option.
pub const RETRY_OPTION_NAMES: &[&str] = &["baseDelayMs", "maxDelayMs", "maxAttempts", "maxRetryAfterMs"];

/// The error for an option name nobody knows, with the likely intended one when there is one
/// (`tokenID` → `tokenId`).
pub fn unknown_option(field: &str, known: &[&str]) -> Error {
    let name = field.rsplit('.').next().unwrap_or(field);
    let near = known.iter().find(|k| k.eq_ignore_ascii_case(name) || k.to_ascii_lowercase().replace('_', "") == name.to_ascii_lowercase().replace('_', ""));
    let hint = near.map(|k| format!(" (did you mean {}?)", quoted(k))).unwrap_or_default();
    Error::at(ErrorCode::InvalidOption, field, format!("unknown option {}{hint}; known options: {}", quoted(field), known.join(", ")))
}

/// The error for an option of the wrong JavaScript type.
pub fn wrong_type(field: &str, expected: &str, got: &str) -> Error {
    Error::at(ErrorCode::InvalidOption, field, format!("{field} must be {expected}, got {got}"))
}

/// The retry policy's tunables.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryOptions {
    pub base_delay_ms: Option<u32>,
    pub max_delay_ms: Option<u32>,
    pub max_attempts: Option<u32>,
    pub max_retry_after_ms: Option<u32>,
}

/// Credentials sent with every request. The secret lives only in memory: it is never persisted,
/// logged, or shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub token_id: String,
    pub token_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("token_id", &self.token_id).field("token_secret", &"<redacted>").finish()
    }
}

/// Retry policy, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First backoff delay; doubles per consecutive failure.
    pub base_delay_ms: u64,
    /// Cap of the exponential backoff.
    pub max_delay_ms: u64,
    /// Server-side failures (5xx, 429, timeouts) one event may suffer before it is dropped.
    /// Network errors while offline never count.
    pub max_attempts: u32,
    /// The longest wait a `Retry-After` (or rate-limit reset) may impose.
    pub max_retry_after_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base_delay_ms: 1_000, max_delay_ms: 300_000, max_attempts: 25, max_retry_after_ms: 86_400_000 }
    }
}

/// Bounds of the durable queue and of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Events kept at most; beyond it the oldest are evicted (and counted).
    pub max_queue_events: usize,
    /// Bytes of stored events kept at most (chrome.storage.local holds 10 MB for the whole
    /// extension; the default leaves more than half of it to the extension's own data).
    pub max_queue_bytes: usize,
    /// Largest serialized event accepted by `track`.
    pub max_event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_queue_events: 20_000, max_queue_bytes: 4 * 1024 * 1024, max_event_bytes: 32 * 1024 }
    }
}

/// Everything the engine and the edge need, validated.
#[derive(Clone, Debug)]
pub struct Config {
    pub credentials: Credentials,
    pub app_id: String,
    /// Base URL without a trailing slash.
    pub base_url: String,
    pub limits: Limits,
    pub retry: RetryPolicy,
    pub request_timeout_ms: u32,
    pub concurrency: usize,
    pub debug: bool,
}

impl Config {
    /// The full URL events are posted to.
    pub fn track_url(&self) -> String {
        format!("{}{}", self.base_url, TRACK_PATH)
    }
}

/// Validates options. `runtime_id` is `chrome.runtime.id` when running inside an extension.
/// Returns the config and warnings worth logging (such as the deprecated base URL).
pub fn validate(options: Options, runtime_id: Option<&str>) -> Result<(Config, Vec<String>)> {
    let mut warnings = Vec::new();
    let credentials = validate_credentials(options.token_id, options.token_secret)?;
    let app_id = validate_app_id(options.app_id, runtime_id, options.allow_any_app_id.unwrap_or(false))?;
    let base_url = validate_base_url(options.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL), &mut warnings)?;

    let defaults = Limits::default();
    let limits = Limits {
        max_queue_events: ranged("maxQueueEvents", options.max_queue_events, defaults.max_queue_events as u32, 1, 1_000_000)? as usize,
        max_queue_bytes: ranged("maxQueueBytes", options.max_queue_bytes, defaults.max_queue_bytes as u32, 1024, 64 * 1024 * 1024)? as usize,
        max_event_bytes: ranged("maxEventBytes", options.max_event_bytes, defaults.max_event_bytes as u32, 256, 1024 * 1024)? as usize,
    };
    if limits.max_event_bytes > limits.max_queue_bytes {
        return Err(Error::at(ErrorCode::InvalidOption, "maxEventBytes", "maxEventBytes must not exceed maxQueueBytes"));
    }
    let r = options.retry.unwrap_or_default();
    let dr = RetryPolicy::default();
    let retry = RetryPolicy {
        base_delay_ms: ranged("retry.baseDelayMs", r.base_delay_ms, dr.base_delay_ms as u32, 100, 600_000)? as u64,
        max_delay_ms: ranged("retry.maxDelayMs", r.max_delay_ms, dr.max_delay_ms as u32, 1_000, 86_400_000)? as u64,
        max_attempts: ranged("retry.maxAttempts", r.max_attempts, dr.max_attempts, 1, 1_000)?,
        max_retry_after_ms: ranged("retry.maxRetryAfterMs", r.max_retry_after_ms, dr.max_retry_after_ms as u32, 1_000, 7 * 86_400_000)? as u64,
    };
    if retry.max_delay_ms < retry.base_delay_ms {
        return Err(Error::at(ErrorCode::InvalidOption, "retry.maxDelayMs", "retry.maxDelayMs must be at least retry.baseDelayMs"));
    }
    // Chrome stops a service worker whose fetch takes longer than 30 s: stay well under it.
    let request_timeout_ms = ranged("requestTimeoutMs", options.request_timeout_ms, 10_000, 100, 25_000)?;
    let concurrency = ranged("concurrency", options.concurrency, 4, 1, 16)? as usize;
    let config = Config {
        credentials,
        app_id,
        base_url,
        limits,
        retry,
        request_timeout_ms,
        concurrency,
        debug: options.debug.unwrap_or(false),
    };
    Ok((config, warnings))
}

fn ranged(field: &str, value: Option<u32>, default: u32, min: u32, max: u32) -> Result<u32> {
    match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(v) => Err(Error::at(
            ErrorCode::InvalidOption,
            field,
            format!("{field} must be between {min} and {max}, got {v}"),
        )),
    }
}

/// Token id and secret: present, non-empty, at most 256 visible ASCII characters (they travel as
/// HTTP header values). The message never echoes the secret.
pub fn validate_credentials(token_id: Option<String>, token_secret: Option<String>) -> Result<Credentials> {
    let token_id = header_safe("tokenId", token_id, true)?;
    let token_secret = header_safe("tokenSecret", token_secret, false)?;
    Ok(Credentials { token_id, token_secret })
}

fn header_safe(field: &str, value: Option<String>, echo: bool) -> Result<String> {
    let value = value.ok_or_else(|| Error::at(ErrorCode::InvalidOption, field, format!("{field} is required")))?;
    if value.is_empty() {
        return Err(Error::at(ErrorCode::InvalidOption, field, format!("{field} must not be empty")));
    }
    if value.len() > 256 {
        return Err(Error::at(ErrorCode::InvalidOption, field, format!("{field} must be at most 256 characters")));
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_graphic()) {
        let shown = if echo { format!(" (in {})", quoted(&value)) } else { String::new() };
        return Err(Error::at(
            ErrorCode::InvalidOption,
            field,
            format!("{field} must be visible ASCII without spaces; found {}{shown}", quoted(bad.encode_utf8(&mut [0; 4]))),
        ));
    }
    Ok(value)
}

/// True for a well-formed Chrome extension id: 32 letters a–p.
pub fn is_extension_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| (b'a'..=b'p').contains(&b))
}

fn validate_app_id(app_id: Option<String>, runtime_id: Option<&str>, allow_any: bool) -> Result<String> {
    match (app_id, runtime_id) {
        (None, Some(id)) => Ok(id.to_string()),
        (Some(app), Some(id)) if app == id => Ok(app),
        (Some(app), Some(id)) => Err(Error::at(
            ErrorCode::AppIdMismatch,
            "appId",
            format!(
                "appId {} does not match this extension's id chrome.runtime.id {}; \
                 the Inhouse API only accepts events whose x-inhouse-app equals the registered extension id \
                 (omit appId to use chrome.runtime.id)",
                quoted(&app),
                quoted(id)
            ),
        )),
        (None, None) => Err(Error::at(
            ErrorCode::InvalidOption,
            "appId",
            "appId is required outside a Chrome extension (chrome.runtime.id is not available)",
        )),
        (Some(app), None) if is_extension_id(&app) => Ok(app),
        (Some(app), None) if allow_any && !app.is_empty() && app.len() <= 256 && app.chars().all(|c| c.is_ascii_graphic()) => Ok(app),
        (Some(app), None) => Err(Error::at(
            ErrorCode::InvalidOption,
            "appId",
            format!("appId {} is not a Chrome extension id (32 letters a-p); set allowAnyAppId: true only for development", quoted(&app)),
        )),
    }
}

/// `https://host[:port][/path]`, or `http://` on a loopback host for development. No query,
/// fragment or user info. Returns it without a trailing slash.
pub fn validate_base_url(raw: &str, warnings: &mut Vec<String>) -> Result<String> {
    let bad = |why: &str| Error::at(ErrorCode::InvalidOption, "baseUrl", format!("baseUrl {} {why}", quoted(raw)));
    let trimmed = raw.trim_end_matches('/');
    // A scheme is ASCII letters (and `+-.`): the first ':' must begin "://". Searching for a char
    // rather than a string keeps the two-way string searcher out of the wasm.
    let (scheme, rest) = trimmed.split_once(':').and_then(|(s, r)| Some((s, r.strip_prefix("//")?))).ok_or_else(|| bad("is not an absolute URL"))?;
    // Checked, though `find` gives a char boundary: a panicking slice would cost the wasm bytes.
    let (authority, path) = rest.split_at_checked(rest.find('/').unwrap_or(rest.len())).unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(bad("has no host"));
    }
    if authority.contains('@') {
        // Never echo the URL here: the user info may hold a password.
        return Err(Error::at(ErrorCode::InvalidOption, "baseUrl", "baseUrl must not contain user info (user:password@)"));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err(bad("must not contain a query or fragment"));
    }
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace"));
    }
    let host = host_of(authority);
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => return Err(bad("must use https (plain http is accepted only for 127.0.0.1, localhost or [::1])")),
        _ => return Err(bad("must use https")),
    }
    if path == "/api" {
        warnings.push(format!(
            "baseUrl {} is the deprecated legacy base; use {} instead",
            quoted(trimmed),
            quoted(&(trimmed.strip_suffix("/api").unwrap_or(trimmed).to_string() + "/v1/api"))
        ));
    }
    Ok(trimmed.to_string())
}

fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

fn is_loopback(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost" || host == "::1" || host.starts_with("127.") && host.split('.').count() == 4
}
