//! What to do with each answer: response classification, backoff, `Retry-After`.
//! Pure functions of their inputs; the clock, the randomness and the reading of JSON and dates
//! (JavaScript's `JSON.parse` and `Date.parse` at the edge) are arguments.

use super::config::RetryPolicy;
use super::error::{Error, ErrorCode};

/// What the engine should do after one delivery attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The server has the event (2xx; or 409, an `Idempotency-Key` it already stored).
    Delivered,
    /// Retry later, spending one of the event's attempts; wait at least `after_ms` if given.
    Retry { after_ms: Option<u64>, error: Error },
    /// The request never reached the server (offline, refused, reset): back off, but spend no
    /// attempt, because the event itself is fine.
    Unreachable { error: Error },
    /// Stop delivering until something changes (credentials, base URL); drop nothing.
    Pause { error: Error },
    /// The server will never accept this event: drop it alone, and report why.
    Reject { error: Error },
    /// No request can be made of this event (a damaged stored id the browser refuses as a
    /// header value): drop it alone as `corrupt`, and report why. Never sent.
    Unsendable { error: Error },
}

impl Verdict {
    /// The error of a verdict other than `Delivered`.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Verdict::Delivered => None,
            Verdict::Retry { error, .. }
            | Verdict::Unreachable { error }
            | Verdict::Pause { error }
            | Verdict::Reject { error }
            | Verdict::Unsendable { error } => Some(error),
        }
    }
}

/// A parsed JSON document, read one step at a time. The edge implements it for the values
/// JavaScript's `JSON.parse` gives, so no JSON parser ships in the wasm; the decisions below
/// (which fields win, which shapes count) stay here, tested on the host with any JSON parser.
pub trait Doc: Sized {
    /// The member `key` of an object; `None` for anything else.
    fn field(&self, key: &str) -> Option<Self>;
    /// The first element of an array; `None` for anything else.
    fn first(&self) -> Option<Self>;
    /// The text of a string; `None` for anything else.
    fn text(&self) -> Option<String>;
}

/// The parts of an HTTP response that matter to classification.
#[derive(Clone, Debug, Default)]
pub struct Answer<'a> {
    pub status: u16,
    pub retry_after: Option<&'a str>,
    pub rate_limit_reset: Option<&'a str>,
    /// What the body said ([`ServerError::from_doc`] or [`ServerError::from_text`]).
    pub server: ServerError,
}

/// Classifies a response. `date_ms` reads a date (an HTTP date, or RFC 3339) as milliseconds
/// since the epoch, `None` if it is none; the edge passes JavaScript's `Date.parse`.
pub fn classify(answer: &Answer<'_>, now_ms: u64, date_ms: impl Fn(&str) -> Option<u64>) -> Verdict {
    use ErrorCode::*;
    let (code, what) = match answer.status {
        // 409: the idempotency key is already stored, so an earlier attempt delivered the event.
        200..=299 | 409 => return Verdict::Delivered,
        401 => (AuthFailed, "the server rejected the credentials; delivery is paused until setCredentials() is called"),
        403 => (PermissionDenied, "the server refused these credentials for this app; delivery is paused until setCredentials() is called"),
        404 | 405 => (EndpointNotFound, "the event endpoint was not found at the configured baseUrl; delivery is paused"),
        400 | 422 => (EventRejected, "the server rejected the event"),
        413 => (EventRejected, "the server rejected the event as too large"),
        429 => (RateLimited, "rate limited by the server"),
        _ => (ServerError, "the server failed"),
    };
    // "<what> (HTTP <status>, <server code>): <server message>"
    let server = &answer.server;
    let mut msg = format!("{what} (HTTP {}", answer.status);
    if let Some(c) = &server.code {
        msg.push_str(", ");
        msg.push_str(c);
    }
    msg.push(')');
    if let Some(m) = &server.message {
        msg.push_str(": ");
        msg.push_str(m);
    }
    let error = Error::new(code, msg);
    match code {
        AuthFailed | PermissionDenied | EndpointNotFound => Verdict::Pause { error },
        EventRejected => Verdict::Reject { error },
        _ => {
            let mut after = retry_after_ms(answer.retry_after, now_ms, &date_ms);
            if code == RateLimited {
                // Retry-After, then the quota's `resetsOn`, then X-RateLimit-Reset.
                after = after
                    .or_else(|| server.resets_on.as_deref().and_then(|s| rfc3339_ms(s, &date_ms)).map(|t| t.saturating_sub(now_ms)))
                    .or_else(|| rate_limit_reset_ms(answer.rate_limit_reset, now_ms));
            }
            Verdict::Retry { after_ms: after, error }
        }
    }
}

/// Code, message and quota reset read from whatever error body the server sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub resets_on: Option<String>,
}

impl ServerError {
    /// Reads a JSON body: Inhouse's `{"status":"error","errors":[{code,message}]}`, RFC 7807
    /// `{"title","detail","code"}`, `{"error","message"}`, `{"error":{"code","message"}}`, and a
    /// `resetsOn` anywhere near the top. Unknown shapes give what they can; never fails.
    pub fn from_doc<D: Doc>(v: &D) -> ServerError {
        let first = v.field("errors").and_then(|e| e.first());
        let nested = v.field("error");
        // The first error of an envelope wins, then a nested `error` object, then the top.
        let scopes = [first.as_ref(), nested.as_ref(), Some(v)];
        let pick = |keys: &[&str]| -> Option<String> {
            for scope in scopes.iter().flatten() {
                for k in keys {
                    if let Some(s) = scope.field(k).and_then(|f| f.text()) {
                        return Some(clip(&s, 500).into());
                    }
                }
            }
            None
        };
        ServerError {
            code: pick(&["code", "error"]),
            message: pick(&["message", "detail", "title"]),
            // At the top, in the error, or under the error's or the body's `details`.
            resets_on: pick(&["resetsOn", "resets_on"])
                .or_else(|| [first.as_ref(), Some(v)].into_iter().flatten().find_map(|scope| scope.field("details")?.field("resetsOn")?.text())),
        }
    }

    /// Reads a body that is not JSON: its text is the message, trimmed and clipped.
    pub fn from_text(body: &str) -> ServerError {
        let text = body.trim_ascii();
        ServerError { message: (!text.is_empty()).then(|| clip(text, 200).into()), ..Default::default() }
    }
}

/// The first `max` characters of `s`. Counts bytes that start a character: no UTF-8 decoding.
fn clip(s: &str, max: usize) -> &str {
    let mut n = 0;
    for (i, b) in s.bytes().enumerate() {
        if b & 0xC0 != 0x80 {
            if n == max {
                return s.get(..i).unwrap_or(s);
            }
            n += 1;
        }
    }
    s
}

/// `Retry-After` as delta-seconds or an HTTP date (read by `date_ms`), as milliseconds from
/// `now_ms`.
pub fn retry_after_ms(value: Option<&str>, now_ms: u64, date_ms: impl Fn(&str) -> Option<u64>) -> Option<u64> {
    let v = value?.trim_ascii();
    if v.as_bytes().first()?.is_ascii_digit() {
        return seconds_to_ms(v);
    }
    // HTTP dates end in "GMT" (RFC 9110); checked here because `Date.parse` reads much else
    // (`-5` is a date to it).
    if !v.ends_with("GMT") {
        return None;
    }
    date_ms(v).map(|t| t.saturating_sub(now_ms))
}

/// An RFC 3339 time (`resetsOn`) read by `date_ms`: a full date first, then optionally a time.
/// A time without a zone is UTC (`Date.parse` alone would read it as local time).
pub fn rfc3339_ms(s: &str, date_ms: impl Fn(&str) -> Option<u64>) -> Option<u64> {
    let s = s.trim_ascii();
    let b = s.as_bytes();
    // `Date.parse` also reads `2026` or `2026-11`, which are not times at which a quota resets.
    if b.len() < 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let time = b.get(10..).unwrap_or_default();
    if time.is_empty() || time.iter().any(|c| matches!(c, b'Z' | b'z' | b'+' | b'-')) {
        date_ms(s)
    } else {
        let mut utc = String::from(s);
        utc.push('Z');
        date_ms(&utc)
    }
}

/// `X-RateLimit-Reset`: servers send epoch seconds, epoch milliseconds or delta seconds; the
/// magnitude tells which.
pub fn rate_limit_reset_ms(value: Option<&str>, now_ms: u64) -> Option<u64> {
    let ms = seconds_to_ms(value?.trim_ascii())?;
    Some(if ms > 1_000_000_000_000_000 {
        (ms / 1000).saturating_sub(now_ms)
    } else if ms > 1_000_000_000_000 {
        ms.saturating_sub(now_ms)
    } else {
        ms
    })
}

/// Non-negative decimal seconds (`2`, `1.5`) as milliseconds. Hand-written: float parsing would
/// cost the wasm more bytes than the rest of this module. Absurdly large values saturate; the
/// engine caps every wait with maxRetryAfterMs.
fn seconds_to_ms(s: &str) -> Option<u64> {
    let (mut secs, mut frac, mut scale, mut point, mut whole_digits) = (0u64, 0u64, 100u64, false, 0u32);
    for b in s.bytes() {
        // One point, after at least one digit; from there on tenths, hundredths, thousandths
        // (finer digits are checked and ignored).
        if b == b'.' && !point && whole_digits > 0 {
            point = true;
            continue;
        }
        if !b.is_ascii_digit() {
            return None;
        }
        let d = u64::from(b - b'0');
        if point {
            frac += d * scale;
            scale /= 10;
        } else {
            secs = secs.saturating_mul(10).saturating_add(d);
            whole_digits += 1;
        }
    }
    (whole_digits > 0).then(|| secs.saturating_mul(1000).saturating_add(frac))
}

/// Exponential backoff with "equal jitter": after `failures` consecutive failures, wait between
/// half and all of `base·2^(failures-1)`, capped. Never zero, so no answer can cause a tight loop.
pub fn backoff_ms(policy: &RetryPolicy, failures: u32, unit_random: f64) -> u64 {
    let exp = failures.saturating_sub(1).min(30);
    let full = policy.base_delay_ms.saturating_mul(1u64 << exp).min(policy.max_delay_ms).max(1);
    let half = full / 2;
    // `.max(1)`: with a 1 ms `full`, `half` is 0 and a small `unit_random` would give 0.
    (half + ((full - half) as f64 * unit_random.clamp(0.0, 1.0)) as u64).max(1)
}
