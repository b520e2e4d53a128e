//! Options as the user gives them, and their validation into a [`Config`] the engine trusts.
//!
//! One table, [`OPTIONS`], describes every option: its name, the JavaScript type it takes and,
//! for a number, its range and default. The edge reads each key of the options object into a
//! [`Value`] and hands it to [`Options::set`], which knows the name and checks the type;
//! [`validate`] then checks the values. Messages are built with [`cat`] and
//! [`push_u64`]: `format!` would bring Rust's formatting machinery into the wasm.

use super::error::{Error, ErrorCode, Result};
use super::json::quoted;
use super::text::{cat, push_u64, u64_text};

/// The recommended, versioned API base.
pub const DEFAULT_BASE_URL: &str = "https://api.tryinhouse.co/v1/api";
/// The path appended to the base for every event.
pub const TRACK_PATH: &str = "/chrome/events/track";

/// The JavaScript type an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// A string.
    Text,
    /// A whole number within the row's `min..=max`.
    Count,
    /// `true` or `false`.
    Flag,
    /// The `retry` object, whose keys are the rows from [`RETRY`]` + 1` on.
    Retry,
    /// A function (`onError`, `onDrop`): the edge keeps it.
    Hook,
}

impl OptionKind {
    fn expected(self) -> &'static str {
        match self {
            OptionKind::Text => "a string",
            OptionKind::Count => "a whole number",
            OptionKind::Flag => "true or false",
            OptionKind::Retry => "an object",
            OptionKind::Hook => "a function",
        }
    }
}

/// One option: its key (within `retry` for the last rows), its type and, for a count, its range
/// and default.
#[derive(Debug)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: OptionKind,
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

const fn row(name: &'static str, kind: OptionKind) -> OptionSpec {
    OptionSpec { name, kind, min: 0, max: 0, default: 0 }
}

const fn count(name: &'static str, min: u32, max: u32, default: u32) -> OptionSpec {
    OptionSpec { name, kind: OptionKind::Count, min, max, default }
}

// Rows of [`OPTIONS`].
pub const TOKEN_ID: usize = 0;
pub const TOKEN_SECRET: usize = 1;
pub const APP_ID: usize = 2;
pub const BASE_URL: usize = 3;
pub const ALLOW_ANY_APP_ID: usize = 4;
pub const MAX_QUEUE_EVENTS: usize = 5;
pub const MAX_QUEUE_BYTES: usize = 6;
pub const MAX_EVENT_BYTES: usize = 7;
pub const REQUEST_TIMEOUT_MS: usize = 8;
pub const CONCURRENCY: usize = 9;
pub const RETRY: usize = 10;
pub const DEBUG: usize = 11;
pub const WASM_URL: usize = 12;
pub const ON_ERROR: usize = 13;
pub const ON_DROP: usize = 14;
/// The first key of `retry`: rows from here on are `retry.*`.
pub const RETRY_BASE_DELAY_MS: usize = 15;
pub const RETRY_MAX_DELAY_MS: usize = 16;
pub const RETRY_MAX_ATTEMPTS: usize = 17;
pub const RETRY_MAX_RETRY_AFTER_MS: usize = 18;

/// Every option `init` accepts (camelCase, as JavaScript writes them), top-level keys in the order
/// the "known options" list shows them, then the keys of `retry`.
pub const OPTIONS: [OptionSpec; 19] = [
    row("tokenId", OptionKind::Text),
    row("tokenSecret", OptionKind::Text),
    row("appId", OptionKind::Text),
    row("baseUrl", OptionKind::Text),
    // Development override: outside an extension, accept an `appId` that is not an extension id.
    row("allowAnyAppId", OptionKind::Flag),
    count("maxQueueEvents", 1, 1_000_000, 20_000),
    // chrome.storage.local holds 10 MB for the whole extension: the default leaves more than
    // half of it to the extension's own data.
    count("maxQueueBytes", 1024, 64 * 1024 * 1024, 4 * 1024 * 1024),
    count("maxEventBytes", 256, 1024 * 1024, 32 * 1024),
    // Chrome stops a service worker whose fetch takes longer than 30 s: stay well under it.
    count("requestTimeoutMs", 100, 25_000, 10_000),
    // Six: every connection Chrome opens to one HTTP/1.1 host (HTTP/2 multiplexes them anyway).
    count("concurrency", 1, 16, 6),
    row("retry", OptionKind::Retry),
    row("debug", OptionKind::Flag),
    // The JavaScript loader's: checked here, used there.
    row("wasmUrl", OptionKind::Text),
    row("onError", OptionKind::Hook),
    row("onDrop", OptionKind::Hook),
    count("baseDelayMs", 100, 600_000, 1_000),
    count("maxDelayMs", 1_000, 86_400_000, 300_000),
    count("maxAttempts", 1, 1_000, 25),
    count("maxRetryAfterMs", 1_000, 7 * 86_400_000, 86_400_000),
];

/// The rows of the top-level keys, or of the keys of `retry`.
fn rows(in_retry: bool) -> &'static [OptionSpec] {
    let rows = if in_retry { OPTIONS.get(RETRY_BASE_DELAY_MS..) } else { OPTIONS.get(..RETRY_BASE_DELAY_MS) };
    rows.unwrap_or(&[])
}

/// An option's path as messages and `error.field` show it: `retry.maxAttempts`.
fn field(in_retry: bool, key: &str) -> String {
    cat(&[if in_retry { "retry." } else { "" }, key])
}

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

/// Options exactly as JavaScript passes them to `init`, type-checked but not yet validated.
#[derive(Default)]
pub struct Options {
    pub token_id: Option<String>,
    pub token_secret: Option<String>,
    pub app_id: Option<String>,
    pub base_url: Option<String>,
    /// Counts and flags (`1` for true) by their row of [`OPTIONS`]; `None` when not given.
    pub numbers: [Option<u32>; OPTIONS.len()],
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("token_id", &self.token_id)
            .field("token_secret", &self.token_secret.as_ref().map(|_| "<redacted>"))
            .field("app_id", &self.app_id)
            .field("base_url", &self.base_url)
            .field("numbers", &self.numbers)
            .finish()
    }
}

impl Options {
    /// Takes one key of the options object (`in_retry`: of its `retry` object). An unknown key
    /// or a value of the wrong type is an error naming the field (`retry.maxAttempts must be a
    /// whole number, got a fractional number`). Returns the option's row, so that the edge can
    /// read [`RETRY`]'s keys and keep the [`ON_ERROR`] and [`ON_DROP`] functions.
    pub fn set(&mut self, in_retry: bool, key: &str, value: Value) -> Result<usize> {
        let rows = rows(in_retry);
        let Some(i) = rows.iter().position(|o| o.name == key) else {
            return Err(unknown_option(rows, in_retry, key));
        };
        let row = i + if in_retry { RETRY_BASE_DELAY_MS } else { 0 };
        let kind = rows.get(i).map_or(OptionKind::Hook, |o| o.kind);
        let number = match (kind, &value) {
            (OptionKind::Count, Value::Number(n)) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(n) => Some(*n as u32),
            (OptionKind::Flag, Value::Bool(b)) => Some(u32::from(*b)),
            (OptionKind::Text, Value::Text(_)) | (OptionKind::Hook, Value::Function) => None,
            // An array's keys are read too (as ever: `retry: []` sets nothing).
            (OptionKind::Retry, Value::Object | Value::Array) => None,
            _ => {
                let field = field(in_retry, key);
                let mut got = String::new();
                push_type(&mut got, &value);
                return Err(invalid(&field, &[&field, " must be ", kind.expected(), ", got ", &got]));
            }
        };
        if let Some(slot) = self.numbers.get_mut(row) {
            *slot = number;
        }
        if let Value::Text(s) = value {
            let slot = match row {
                TOKEN_ID => &mut self.token_id,
                TOKEN_SECRET => &mut self.token_secret,
                APP_ID => &mut self.app_id,
                BASE_URL => &mut self.base_url,
                _ => return Ok(row),
            };
            *slot = Some(s);
        }
        Ok(row)
    }

    /// Every count and flag by its row (a flag is 0 or 1), defaults filled in; a count out of
    /// its range, or two that contradict each other, is an error.
    fn numbers(&self) -> Result<[u32; OPTIONS.len()]> {
        let mut out = [0; OPTIONS.len()];
        for (row, ((spec, given), slot)) in OPTIONS.iter().zip(&self.numbers).zip(&mut out).enumerate() {
            let v = given.unwrap_or(spec.default);
            if spec.kind == OptionKind::Count && !(spec.min <= v && v <= spec.max) {
                let field = field(row >= RETRY_BASE_DELAY_MS, spec.name);
                let (min, max, got) = (u64_text(spec.min.into()), u64_text(spec.max.into()), u64_text(v.into()));
                return Err(invalid(&field, &[&field, " must be between ", &min, " and ", &max, ", got ", &got]));
            }
            *slot = v;
        }
        let broken = if out[MAX_EVENT_BYTES] > out[MAX_QUEUE_BYTES] {
            ["maxEventBytes", " must not exceed maxQueueBytes"]
        } else if out[RETRY_MAX_DELAY_MS] < out[RETRY_BASE_DELAY_MS] {
            ["retry.maxDelayMs", " must be at least retry.baseDelayMs"]
        } else {
            return Ok(out);
        };
        Err(invalid(broken[0], &broken))
    }
}

/// The type of a value as messages name it: `string`, `an array`, `-1`, `a fractional number`.
fn push_type(out: &mut String, v: &Value) {
    out.push_str(match v {
        Value::Text(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Function => "function",
        Value::Object => "object",
        Value::Array => "an array",
        Value::Other(name) => name,
        Value::Number(n) if n.fract() == 0.0 => {
            let n = *n as i64;
            if n < 0 {
                out.push('-');
            }
            return push_u64(out, n.unsigned_abs());
        }
        Value::Number(_) => "a fractional number",
    })
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

/// An `INVALID_OPTION` error about `field`, its message `parts` end to end.
fn invalid(field: &str, parts: &[&str]) -> Error {
    error(ErrorCode::InvalidOption, field, parts)
}

#[inline(never)]
fn error(code: ErrorCode, field: &str, parts: &[&str]) -> Error {
    Error::at(code, field, cat(parts))
}

/// The error for an option name nobody knows, with the likely intended one when it differs only
/// in case or underscores (`tokenID` → `tokenId`, `max_attempts` → `maxAttempts`).
fn unknown_option(rows: &[OptionSpec], in_retry: bool, key: &str) -> Error {
    let field = field(in_retry, key);
    let mut m = quoted(&field);
    if let Some(o) = rows.iter().find(|o| same_letters(o.name, key)) {
        m.push_str(" (did you mean \"");
        m.push_str(o.name);
        m.push_str("\"?)");
    }
    m.push_str("; known options: ");
    for (i, o) in rows.iter().enumerate() {
        m.push_str(if i > 0 { ", " } else { "" });
        m.push_str(o.name);
    }
    invalid(&field, &["unknown option ", &m])
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
        RetryPolicy {
            base_delay_ms: OPTIONS[RETRY_BASE_DELAY_MS].default.into(),
            max_delay_ms: OPTIONS[RETRY_MAX_DELAY_MS].default.into(),
            max_attempts: OPTIONS[RETRY_MAX_ATTEMPTS].default,
            max_retry_after_ms: OPTIONS[RETRY_MAX_RETRY_AFTER_MS].default.into(),
        }
    }
}

/// Bounds of the durable queue and of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Events kept at most; beyond it the oldest are evicted (and counted).
    pub max_queue_events: usize,
    /// Bytes of stored events kept at most.
    pub max_queue_bytes: usize,
    /// Largest serialized event accepted by `track`.
    pub max_event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_queue_events: OPTIONS[MAX_QUEUE_EVENTS].default as usize,
            max_queue_bytes: OPTIONS[MAX_QUEUE_BYTES].default as usize,
            max_event_bytes: OPTIONS[MAX_EVENT_BYTES].default as usize,
        }
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
        cat(&[self.base_url.as_str(), TRACK_PATH])
    }
}

/// Validates options. `runtime_id` is `chrome.runtime.id` when running inside an extension.
/// Returns the config and warnings worth logging (such as the deprecated base URL).
pub fn validate(mut options: Options, runtime_id: Option<&str>) -> Result<(Config, Vec<String>)> {
    let mut warnings = Vec::new();
    let credentials = validate_credentials(options.token_id.take(), options.token_secret.take())?;
    let allow_any = options.numbers.get(ALLOW_ANY_APP_ID) == Some(&Some(1));
    let app_id = validate_app_id(options.app_id.take(), runtime_id, allow_any)?;
    let base_url = validate_base_url(options.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL), &mut warnings)?;
    let n = options.numbers()?;
    let config = Config {
        credentials,
        app_id,
        base_url,
        limits: Limits {
            max_queue_events: n[MAX_QUEUE_EVENTS] as usize,
            max_queue_bytes: n[MAX_QUEUE_BYTES] as usize,
            max_event_bytes: n[MAX_EVENT_BYTES] as usize,
        },
        retry: RetryPolicy {
            base_delay_ms: n[RETRY_BASE_DELAY_MS].into(),
            max_delay_ms: n[RETRY_MAX_DELAY_MS].into(),
            max_attempts: n[RETRY_MAX_ATTEMPTS],
            max_retry_after_ms: n[RETRY_MAX_RETRY_AFTER_MS].into(),
        },
        request_timeout_ms: n[REQUEST_TIMEOUT_MS],
        concurrency: n[CONCURRENCY] as usize,
        debug: n[DEBUG] == 1,
    };
    Ok((config, warnings))
}

/// Token id and secret: present, non-empty, at most 256 visible ASCII characters (they travel as
/// HTTP header values). The message never echoes the secret.
pub fn validate_credentials(token_id: Option<String>, token_secret: Option<String>) -> Result<Credentials> {
    let token_id = header_safe("tokenId", token_id, true)?;
    let token_secret = header_safe("tokenSecret", token_secret, false)?;
    Ok(Credentials { token_id, token_secret })
}

fn header_safe(field: &str, value: Option<String>, echo: bool) -> Result<String> {
    let Some(value) = value else { return Err(invalid(field, &[field, " is required"])) };
    if value.is_empty() {
        return Err(invalid(field, &[field, " must not be empty"]));
    }
    if value.len() > 256 {
        return Err(invalid(field, &[field, " must be at most 256 characters"]));
    }
    let Some(at) = value.bytes().position(|b| !b.is_ascii_graphic()) else { return Ok(value) };
    // Every byte before `at` is ASCII, so a character starts there: show all of its bytes.
    let len = value.bytes().skip(at + 1).take_while(|b| b & 0xC0 == 0x80).count();
    let bad = quoted(value.get(at..=at + len).unwrap_or(""));
    let shown = if echo { cat(&[" (in ", &quoted(&value), ")"]) } else { String::new() };
    Err(invalid(field, &[field, " must be visible ASCII without spaces; found ", &bad, &shown]))
}

/// True for a well-formed Chrome extension id: 32 letters a–p.
pub fn is_extension_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| (b'a'..=b'p').contains(&b))
}

fn validate_app_id(app_id: Option<String>, runtime_id: Option<&str>, allow_any: bool) -> Result<String> {
    match (app_id, runtime_id) {
        (None, Some(id)) => Ok(id.into()),
        (Some(app), Some(id)) if app == id => Ok(app),
        (Some(app), Some(id)) => Err(error(
            ErrorCode::AppIdMismatch,
            "appId",
            &[
                "appId ",
                &quoted(&app),
                " does not match this extension's id chrome.runtime.id ",
                &quoted(id),
                "; the Inhouse API only accepts events whose x-inhouse-app equals the registered extension id \
                 (omit appId to use chrome.runtime.id)",
            ],
        )),
        (None, None) => Err(invalid("appId", &["appId is required outside a Chrome extension (chrome.runtime.id is not available)"])),
        (Some(app), None) if is_extension_id(&app) => Ok(app),
        (Some(app), None) if allow_any && !app.is_empty() && app.len() <= 256 && app.bytes().all(|b| b.is_ascii_graphic()) => Ok(app),
        (Some(app), None) => Err(invalid(
            "appId",
            &["appId ", &quoted(&app), " is not a Chrome extension id (32 letters a-p); set allowAnyAppId: true only for development"],
        )),
    }
}

/// `https://host[:port][/path]`, or `http://` on a loopback host for development. No query,
/// fragment or user info. Returns it without a trailing slash.
pub fn validate_base_url(raw: &str, warnings: &mut Vec<String>) -> Result<String> {
    // Bytes and `get` throughout: no string searcher, no char-boundary checks, no panicking
    // slice. Every position found is that of an ASCII byte, so a character boundary.
    let mut url = raw.as_bytes();
    while let [rest @ .., b'/'] = url {
        url = rest;
    }
    let trimmed = raw.get(..url.len()).unwrap_or(raw);
    // A scheme is ASCII letters (and `+-.`): the first ':' must begin "://".
    let (scheme, rest) = url.split_at_checked(find(url, b':')).unwrap_or((url, b""));
    let rest = rest.strip_prefix(b"://");
    let (authority, path) = rest.map_or((&b""[..], &b""[..]), |r| r.split_at_checked(find(r, b'/')).unwrap_or((r, b"")));
    let host = match authority.strip_prefix(b"[") {
        Some(v6) => v6.get(..find(v6, b']')),
        None => authority.get(..find(authority, b':')),
    };
    let host = host.unwrap_or(b"");
    let loopback =
        host.eq_ignore_ascii_case(b"localhost") || host == b"::1" || host.starts_with(b"127.") && host.iter().filter(|&&b| b == b'.').count() == 3;
    let why = match rest {
        None => "is not an absolute URL",
        Some(_) if authority.is_empty() => "has no host",
        Some(_) if find(authority, b'@') < authority.len() => {
            // Never echo the URL here: the user info may hold a password.
            return Err(invalid("baseUrl", &["baseUrl must not contain user info (user:password@)"]));
        }
        Some(rest) if rest.iter().any(|&b| b == b'?' || b == b'#') => "must not contain a query or fragment",
        Some(rest) if trimmed.get(url.len() - rest.len()..).is_some_and(|r| r.chars().any(|c| c.is_whitespace() || c.is_control())) => {
            "contains whitespace"
        }
        _ if scheme.eq_ignore_ascii_case(b"https") => "",
        _ if !scheme.eq_ignore_ascii_case(b"http") => "must use https",
        _ if !loopback => "must use https (plain http is accepted only for 127.0.0.1, localhost or [::1])",
        _ => "",
    };
    if !why.is_empty() {
        return Err(invalid("baseUrl", &["baseUrl ", &quoted(raw), " ", why]));
    }
    if path == b"/api" {
        let base = trimmed.get(..url.len() - path.len()).unwrap_or(trimmed);
        let modern = quoted(&cat(&[base, "/v1/api"]));
        warnings.push(cat(&["baseUrl ", &quoted(trimmed), " is the deprecated legacy base; use ", &modern, " instead"]));
    }
    Ok(trimmed.into())
}

/// Where `byte` first is in `b`, or its length.
fn find(b: &[u8], byte: u8) -> usize {
    b.iter().position(|&x| x == byte).unwrap_or(b.len())
}
