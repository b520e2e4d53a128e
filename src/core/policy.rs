//! What to do with each answer: response classification, backoff, `Retry-After`.
//! Pure functions of their inputs; the clock and the randomness are arguments.

use super::config::RetryPolicy;
use super::error::{Error, ErrorCode};
use super::event::days_from_civil;
use super::json::{self, Json};

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
}

/// The parts of an HTTP response that matter to classification.
#[derive(Clone, Debug, Default)]
pub struct Answer<'a> {
    pub status: u16,
    pub retry_after: Option<&'a str>,
    pub rate_limit_reset: Option<&'a str>,
    pub body: &'a str,
}

/// Classifies a response. Any body is tolerated: Inhouse's envelope, RFC 7807, or anything else.
pub fn classify(answer: &Answer<'_>, now_ms: u64) -> Verdict {
    let status = answer.status;
    let server = ServerError::parse(answer.body);
    let describe = |what: &str| {
        let mut msg = format!("{what} (HTTP {status}");
        if let Some(code) = &server.code {
            msg.push_str(", ");
            msg.push_str(code);
        }
        msg.push(')');
        if let Some(m) = &server.message {
            msg.push_str(": ");
            msg.push_str(m);
        }
        msg
    };
    match status {
        200..=299 => Verdict::Delivered,
        // The idempotency key is already stored: the event was delivered by an earlier attempt.
        409 => Verdict::Delivered,
        401 => Verdict::Pause { error: Error::new(ErrorCode::AuthFailed, describe("the server rejected the credentials; delivery is paused until setCredentials() is called")) },
        403 => Verdict::Pause { error: Error::new(ErrorCode::PermissionDenied, describe("the server refused these credentials for this app; delivery is paused until setCredentials() is called")) },
        404 | 405 => Verdict::Pause { error: Error::new(ErrorCode::EndpointNotFound, describe("the event endpoint was not found at the configured baseUrl; delivery is paused")) },
        400 | 422 => Verdict::Reject { error: Error::new(ErrorCode::EventRejected, describe("the server rejected the event")) },
        413 => Verdict::Reject { error: Error::new(ErrorCode::EventRejected, describe("the server rejected the event as too large")) },
        429 => {
            let after = retry_after_ms(answer.retry_after, now_ms)
                .or_else(|| server.resets_on.as_deref().and_then(parse_rfc3339_ms).map(|t| t.saturating_sub(now_ms)))
                .or_else(|| rate_limit_reset_ms(answer.rate_limit_reset, now_ms));
            Verdict::Retry { after_ms: after, error: Error::new(ErrorCode::RateLimited, describe("rate limited by the server")) }
        }
        _ => Verdict::Retry {
            after_ms: retry_after_ms(answer.retry_after, now_ms),
            error: Error::new(ErrorCode::ServerError, describe("the server failed")),
        },
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
    /// Reads Inhouse's `{"status":"error","errors":[{code,message}]}`, RFC 7807
    /// `{"title","detail","code"}`, `{"error","message"}`, `{"error":{"code","message"}}`, and
    /// a `resetsOn` anywhere near the top. Unknown shapes give what they can; never fails.
    pub fn parse(body: &str) -> ServerError {
        let Some(v) = json::parse(body) else {
            let text = body.trim();
            let message = (!text.is_empty()).then(|| text.chars().take(200).collect());
            return ServerError { message, ..Default::default() };
        };
        let first = v.get("errors").and_then(|e| e.at(0));
        let nested = v.get("error").filter(|e| matches!(e, Json::Object(_)));
        let pick = |keys: &[&str]| -> Option<String> {
            for scope in [first, nested, Some(&v)].into_iter().flatten() {
                for k in keys {
                    if let Some(s) = scope.get(k).and_then(Json::as_str) {
                        return Some(s.chars().take(500).collect());
                    }
                }
            }
            None
        };
        ServerError {
            code: pick(&["code", "error"]),
            message: pick(&["message", "detail", "title"]),
            // At the top, in the error, or under the error's or the body's `details`.
            resets_on: pick(&["resetsOn", "resets_on"]).or_else(|| {
                [first, Some(&v)].into_iter().flatten().find_map(|scope| {
                    scope.get("details").and_then(|d| d.get("resetsOn")).and_then(Json::as_str).map(String::from)
                })
            }),
        }
    }
}

/// `Retry-After` as delta-seconds or an HTTP date, as milliseconds from `now_ms`.
pub fn retry_after_ms(value: Option<&str>, now_ms: u64) -> Option<u64> {
    let v = value?.trim();
    if v.starts_with(|c: char| c.is_ascii_digit()) {
        return seconds_to_ms(v);
    }
    parse_http_date_ms(v).map(|t| t.saturating_sub(now_ms))
}

/// `X-RateLimit-Reset`: servers send epoch seconds, epoch milliseconds or delta seconds; the
/// magnitude tells which.
pub fn rate_limit_reset_ms(value: Option<&str>, now_ms: u64) -> Option<u64> {
    let ms = seconds_to_ms(value?.trim())?;
    Some(if ms > 1_000_000_000_000_000 {
        (ms / 1000).saturating_sub(now_ms)
    } else if ms > 1_000_000_000_000 {
        ms.saturating_sub(now_ms)
    } else {
        ms
    })
}

/// Non-negative decimal seconds (`2`, `1.5`) as milliseconds. Hand-written: float parsing would
/// cost the wasm more bytes than the rest of this module.
fn seconds_to_ms(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Absurdly large values saturate; the engine caps every wait with maxRetryAfterMs.
    let secs = whole.bytes().fold(0u64, |acc, b| acc.saturating_mul(10).saturating_add(u64::from(b - b'0')));
    let millis = frac.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    Some(secs.saturating_mul(1000).saturating_add(millis))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP requires senders to use.
pub fn parse_http_date_ms(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(month))? as u32 + 1;
    let (h, mi, se) = hms(time)?;
    epoch_ms(year.parse().ok()?, m, day.parse().ok()?, h, mi, se, 0)
}

/// RFC 3339 / ISO 8601 (`2026-11-22T10:00:00Z`, offsets, fractions, or a bare date).
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    // Checked splits and `get` throughout (the positions come from `find`, so they never fail):
    // a panicking str slice would pull its message formatting, and Unicode tables, into the wasm.
    let (date, rest) = s.split_at_checked(s.find(['T', 't', ' ']).unwrap_or(s.len()))?;
    let mut d = date.split('-');
    let (y, m, day) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    if rest.is_empty() {
        return epoch_ms(y, m, day, 0, 0, 0, 0);
    }
    let rest = rest.get(1..)?;
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at_checked(zone_at)?;
    let (clock, frac) = time.split_once('.').unwrap_or((time, ""));
    let (h, mi, se) = hms(clock)?;
    let ms = frac.get(..3.min(frac.len())).map(|f| format!("{f:0<3}").parse::<u64>().unwrap_or(0)).unwrap_or(0);
    let base = epoch_ms(y, m, day, h, mi, se, ms)? as i64;
    let offset_min = match zone.as_bytes().first() {
        Some(b'+') | Some(b'-') => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            // After the ASCII sign; `get`, never indexing: a malformed zone holding multibyte
            // characters (any server may send any `resetsOn`) must give `None`, not panic.
            let digits = zone.get(1..)?;
            let (oh, om) = match digits.split_once(':') {
                Some(parts) => parts,
                None => (digits.get(..digits.len().min(2))?, digits.get(digits.len().min(2)..)?),
            };
            sign * (oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().unwrap_or(0))
        }
        _ => 0,
    };
    u64::try_from(base - offset_min * 60_000).ok()
}

fn hms(t: &str) -> Option<(u32, u32, u32)> {
    let mut it = t.split(':');
    let h = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let s = it.next().map(|s| s.parse().ok()).unwrap_or(Some(0))?;
    (h < 24 && m < 60 && s < 61).then_some((h, m, s))
}

fn epoch_ms(y: i64, m: u32, d: u32, h: u32, mi: u32, s: u32, ms: u64) -> Option<u64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    u64::try_from(days * 86_400 + (h * 3600 + mi * 60 + s) as i64).ok().map(|secs| secs * 1000 + ms)
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
