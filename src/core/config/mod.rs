//! Options as the user gives them, and their validation into a [`Config`] the engine trusts.
//!
//! The edge reads each key of the options object into a [`Value`] and hands it to
//! [`Options::set`], which knows the name and checks the type, into one named field of
//! [`Options`]; [`validate`] then checks the values (whole numbers against their [`Range`]) and
//! builds the [`Config`]. Adding an option: a field of [`Options`], its arm in `set` and its name
//! in [`OPTION_NAMES`], its check in [`validate`]; then `index.d.ts` and the README.

mod options;

use options::invalid;
pub use options::*;

use super::error::{Error, ErrorCode, Result};
use super::json::quoted;
use super::lifecycle::AutoEvents;
use super::origin::PageUrl;
use super::plan::{Plan, PlanMode};
use std::rc::Rc;

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
            base_delay_ms: RETRY_BASE_DELAY_MS.default.into(),
            max_delay_ms: RETRY_MAX_DELAY_MS.default.into(),
            max_attempts: RETRY_MAX_ATTEMPTS.default,
            max_retry_after_ms: RETRY_MAX_RETRY_AFTER_MS.default.into(),
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
            max_queue_events: MAX_QUEUE_EVENTS.default as usize,
            max_queue_bytes: MAX_QUEUE_BYTES.default as usize,
            max_event_bytes: MAX_EVENT_BYTES.default as usize,
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
    pub session_timeout_ms: u64,
    pub page_url: PageUrl,
    /// The opt-in choice of a new install (a stored choice wins).
    pub enabled: bool,
    pub auto_events: AutoEvents,
    pub capture_errors: bool,
    /// The share of installs whose events are kept (by a hash of the install id).
    pub sample_rate: f64,
    pub uninstall_url: Option<String>,
    pub debug: bool,
    /// The tracking plan `track()` checks events against, and what a mismatch does.
    pub plan: Option<Rc<Plan>>,
    pub plan_mode: PlanMode,
}

impl Config {
    /// The full URL events are posted to.
    pub fn track_url(&self) -> String {
        format!("{}{TRACK_PATH}", self.base_url)
    }
}

/// Validates options. `runtime_id` is `chrome.runtime.id` when running inside an extension.
/// Returns the config and warnings worth logging (such as the deprecated base URL).
pub fn validate(options: Options, runtime_id: Option<&str>) -> Result<(Config, Vec<String>)> {
    let mut warnings = Vec::new();
    let credentials = validate_credentials(options.token_id, options.token_secret)?;
    let app_id = validate_app_id(options.app_id, runtime_id, options.allow_any_app_id == Some(true))?;
    let base_url = validate_base_url(options.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL), &mut warnings)?;
    let limits = Limits {
        max_queue_events: MAX_QUEUE_EVENTS.check("maxQueueEvents", options.max_queue_events)? as usize,
        max_queue_bytes: MAX_QUEUE_BYTES.check("maxQueueBytes", options.max_queue_bytes)? as usize,
        max_event_bytes: MAX_EVENT_BYTES.check("maxEventBytes", options.max_event_bytes)? as usize,
    };
    let request_timeout_ms = REQUEST_TIMEOUT_MS.check("requestTimeoutMs", options.request_timeout_ms)?;
    let concurrency = CONCURRENCY.check("concurrency", options.concurrency)? as usize;
    let session_timeout_ms = SESSION_TIMEOUT_MS.check("sessionTimeoutMs", options.session_timeout_ms)?.into();
    let page_url = match options.page_url.as_deref() {
        None | Some("origin") => PageUrl::Origin,
        Some("path") => PageUrl::Path,
        Some("full") => PageUrl::Full,
        Some(other) => return Err(invalid("pageUrl", format!("pageUrl must be \"origin\", \"path\" or \"full\", got {}", quoted(other)))),
    };
    let r = &options.retry;
    let retry = RetryPolicy {
        base_delay_ms: RETRY_BASE_DELAY_MS.check("retry.baseDelayMs", r.base_delay_ms)?.into(),
        max_delay_ms: RETRY_MAX_DELAY_MS.check("retry.maxDelayMs", r.max_delay_ms)?.into(),
        max_attempts: RETRY_MAX_ATTEMPTS.check("retry.maxAttempts", r.max_attempts)?,
        max_retry_after_ms: RETRY_MAX_RETRY_AFTER_MS.check("retry.maxRetryAfterMs", r.max_retry_after_ms)?.into(),
    };
    if limits.max_event_bytes > limits.max_queue_bytes {
        return Err(invalid("maxEventBytes", "maxEventBytes must not exceed maxQueueBytes".into()));
    }
    if retry.max_delay_ms < retry.base_delay_ms {
        return Err(invalid("retry.maxDelayMs", "retry.maxDelayMs must be at least retry.baseDelayMs".into()));
    }
    let debug = options.debug == Some(true);
    let uninstall_url = options.uninstall_url.map(|url| validate_uninstall_url(&url)).transpose()?;
    let a = &options.auto_events;
    let auto_events = AutoEvents {
        install: a.install != Some(false),
        update: a.update != Some(false),
        startup: a.startup != Some(false),
        daily: a.daily != Some(false),
    };
    let plan = options.plan.as_ref().map(Plan::from_spec).transpose()?.map(Rc::new);
    let plan_mode = match (&plan, options.plan_mode.as_deref()) {
        (_, None) => PlanMode::default(),
        (None, Some(_)) => return Err(invalid("planMode", "planMode is given without a plan".into())),
        (Some(_), Some(mode)) => PlanMode::parse(mode)?,
    };
    let config = Config {
        credentials,
        app_id,
        base_url,
        limits,
        retry,
        request_timeout_ms,
        concurrency,
        session_timeout_ms,
        page_url,
        enabled: options.enabled != Some(false),
        auto_events,
        capture_errors: options.capture_errors == Some(true),
        sample_rate: options.sample_rate.unwrap_or(1.0),
        uninstall_url,
        debug,
        plan,
        plan_mode,
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
    let Some(value) = value else { return Err(invalid(field, format!("{field} is required"))) };
    if value.is_empty() {
        return Err(invalid(field, format!("{field} must not be empty")));
    }
    if value.len() > 256 {
        return Err(invalid(field, format!("{field} must be at most 256 characters")));
    }
    let Some(at) = value.bytes().position(|b| !b.is_ascii_graphic()) else { return Ok(value) };
    // Every byte before `at` is ASCII, so a character starts there: show all of its bytes.
    let len = value.bytes().skip(at + 1).take_while(|b| b & 0xC0 == 0x80).count();
    let bad = quoted(value.get(at..=at + len).unwrap_or(""));
    let shown = if echo { format!(" (in {})", quoted(&value)) } else { String::new() };
    Err(invalid(field, format!("{field} must be visible ASCII without spaces; found {bad}{shown}")))
}

/// True for a well-formed Chrome extension id: 32 letters a–p.
pub fn is_extension_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| (b'a'..=b'p').contains(&b))
}

fn validate_app_id(app_id: Option<String>, runtime_id: Option<&str>, allow_any: bool) -> Result<String> {
    match (app_id, runtime_id) {
        (None, Some(id)) => Ok(id.into()),
        (Some(app), Some(id)) if app == id => Ok(app),
        (Some(app), Some(id)) => Err(Error::at(
            ErrorCode::AppIdMismatch,
            "appId",
            format!(
                "appId {} does not match this extension's id chrome.runtime.id {}; the Inhouse API only accepts events whose \
                 x-inhouse-app equals the registered extension id (omit appId to use chrome.runtime.id)",
                quoted(&app),
                quoted(id)
            ),
        )),
        (None, None) => Err(invalid("appId", "appId is required outside a Chrome extension (chrome.runtime.id is not available)".into())),
        (Some(app), None) if is_extension_id(&app) => Ok(app),
        (Some(app), None) if allow_any && !app.is_empty() && app.len() <= 256 && app.bytes().all(|b| b.is_ascii_graphic()) => Ok(app),
        (Some(app), None) => Err(invalid(
            "appId",
            format!("appId {} is not a Chrome extension id (32 letters a-p); set allowAnyAppId: true only for development", quoted(&app)),
        )),
    }
}

/// The `uninstallUrl`: an `http(s)` page of the customer's (a survey, or their server), with room
/// left under Chrome's limit for what the SDK appends.
fn validate_uninstall_url(url: &str) -> Result<String> {
    // Scheme and "//" apart: the package's scan for remote URLs reads any "https://…" text in the wasm.
    let scheme_ok = url.split_once(':').is_some_and(|(scheme, rest)| {
        (scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")) && rest.starts_with("//") && rest.len() > 2
    });
    if !scheme_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("uninstallUrl", format!("uninstallUrl {} must be an http(s) URL without spaces", quoted(url))));
    }
    if url.contains('#') {
        return Err(invalid("uninstallUrl", format!("uninstallUrl {} must not have a fragment: the SDK appends query parameters", quoted(url))));
    }
    let room = MAX_UNINSTALL_URL - UNINSTALL_QUERY_ROOM;
    if url.len() > room {
        return Err(invalid(
            "uninstallUrl",
            format!(
                "uninstallUrl is {} characters; Chrome allows {MAX_UNINSTALL_URL} and the SDK appends up to {UNINSTALL_QUERY_ROOM} \
                 (install id, version, days since install), so it must be at most {room}",
                url.len()
            ),
        ));
    }
    Ok(url.to_string())
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
            return Err(invalid("baseUrl", "baseUrl must not contain user info (user:password@)".into()));
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
        return Err(invalid("baseUrl", format!("baseUrl {} {why}", quoted(raw))));
    }
    if path == b"/api" {
        let base = trimmed.get(..url.len() - path.len()).unwrap_or(trimmed);
        let modern = quoted(&format!("{base}/v1/api"));
        warnings.push(format!("baseUrl {} is the deprecated legacy base; use {modern} instead", quoted(trimmed)));
    }
    Ok(trimmed.into())
}

/// Where `byte` first is in `b`, or its length.
fn find(b: &[u8], byte: u8) -> usize {
    b.iter().position(|&x| x == byte).unwrap_or(b.len())
}
