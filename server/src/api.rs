//! The API port: `POST /v1/api/chrome/events/track` (and the deprecated `/api/...` path),
//! checked as strictly as production, with CORS for browser callers.

use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use serde_json::{json, Value};

use crate::config::Token;
use crate::db::{Db, Op};
use crate::envelope::{self, ApiError, ErrorItem};
use crate::faults::{ConnectionFault, FaultKind, Injected};
use crate::idempotency::{body_hash, canonical_json, Lookup, Remembered};
use crate::listener::ConnCtx;
use crate::ratelimit::RateInfo;
use crate::record::{printable, Duplicate, EventHeaders, RequestEntry, StoredEvent, REDACTED};
use crate::state::{Inner, State};
use crate::time::{now_ms, rfc3339};

pub const TRACK_PATH: &str = "/v1/api/chrome/events/track";
pub const LEGACY_TRACK_PATH: &str = "/api/chrome/events/track";

pub const TOKEN_ID: &str = "x-inhouse-token-id";
pub const TOKEN_SECRET: &str = "x-inhouse-token-secret";
pub const APP: &str = "x-inhouse-app";
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REQUEST_ID: &str = "x-request-id";

/// Longest event name (the SDK's snake_case rule), not counting a reserved `$` prefix.
pub const MAX_EVENT_NAME_CHARS: usize = 128;
/// The SDK's own events are named `$` + a snake_case name (`$identify`, `$pageview`).
pub const RESERVED_PREFIX: char = '$';
/// The SDK's own events: the only names accepted with the reserved prefix (the SDK's
/// `core::event::SDK_EVENTS`; `tests/sdk_names.rs` checks they agree).
pub const SDK_EVENTS: [&str; 8] = [
    "$identify",
    "$extension_installed",
    "$extension_updated",
    "$browser_updated",
    "$browser_startup",
    "$daily_active",
    "$pageview",
    "$exception",
];
/// The rule as a regular expression, for error `ctx`.
pub const EVENT_NAME_PATTERN: &str = "^[a-z][a-z0-9_]{0,127}$, or one of the SDK's own $ events";
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 256;
/// A hung request, or a stalled response body, is abandoned after this long.
pub const HANG_LIMIT: Duration = Duration::from_secs(60);
/// A request body must arrive within this long.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// An oversized body is read and discarded up to this many bytes so the client gets a clean
/// 413 rather than a broken pipe; beyond it the connection is closed after the response.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

const ALLOW_HEADERS: &str =
    "content-type, x-inhouse-token-id, x-inhouse-token-secret, x-inhouse-app, idempotency-key, x-request-id";
const EXPOSE_HEADERS: &str =
    "X-Request-ID, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, \
X-RateLimit-Reset, Idempotent-Replayed, Deprecation";
const ALLOW_METHODS: &str = "POST, OPTIONS";

/// A response before the per-request headers (request id, CORS) are added.
struct Reply {
    status: StatusCode,
    body: Bytes,
    headers: HeaderMap,
    code: Option<&'static str>,
}

impl Reply {
    fn json(status: StatusCode, body: &Value) -> Self {
        Reply::raw_json(status, Bytes::from(body.to_string()))
    }

    fn raw_json(status: StatusCode, body: Bytes) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Reply {
            status,
            body,
            headers,
            code: None,
        }
    }

    fn error(err: &ApiError) -> Self {
        let mut reply = Reply::json(err.status, &err.body());
        reply.code = Some(err.code());
        reply
    }

    fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            body: Bytes::new(),
            headers: HeaderMap::new(),
            code: None,
        }
    }

    fn header(mut self, name: &'static str, value: HeaderValue) -> Self {
        self.headers.insert(HeaderName::from_static(name), value);
        self
    }
}

/// What the request log and the stderr line need to know about a request.
#[derive(Default)]
struct Seen {
    event_name: Option<String>,
    idempotency_key: Option<String>,
    app: Option<String>,
    /// The injected fault that decided the outcome (`Latency` if a delay was the only one).
    injected: Option<FaultKind>,
    latency_ms: Option<u64>,
    /// `item.id` of the success produced (stored or replayed).
    item_id: Option<String>,
}

/// How a track request ends: with a response, or with its connection dropped by a fault.
enum Outcome {
    /// A response; its body stalls when `seen.injected` is `StallBody`.
    Respond(Reply),
    /// `Reset`, `Hang`, `StoreThenReset` or `ResetEvent`: no response is ever sent.
    Drop(FaultKind),
}

/// The body of every API response: complete, or (`stall_body`) stalled part way.
pub type ApiBody = Either<Full<Bytes>, StallBody>;

/// A `stall_body` response's body: the first half of the real body, then nothing. The
/// connection stays open until the client gives up, the server drops it (down, shutdown), or
/// [`HANG_LIMIT`] passes, when it is reset. The response declares the full `Content-Length`,
/// so the client waits for bytes that never come.
pub struct StallBody {
    partial: Option<Bytes>,
    /// Never completes; kills the connection after [`HANG_LIMIT`].
    stall: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl StallBody {
    fn new(full: &Bytes, conn: ConnCtx) -> Self {
        let partial = full.slice(..full.len() / 2);
        StallBody {
            partial: (!partial.is_empty()).then_some(partial),
            stall: Box::pin(async move {
                tokio::select! {
                    _ = tokio::time::sleep(HANG_LIMIT) => conn.kill(),
                    _ = conn.killed() => {}
                }
                std::future::pending::<()>().await
            }),
        }
    }
}

impl Body for StallBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(partial) = self.partial.take() {
            return Poll::Ready(Some(Ok(Frame::data(partial))));
        }
        self.stall.as_mut().poll(cx).map(|()| None)
    }
}

/// Entry point for every request on the API port.
pub async fn handle(state: Arc<State>, conn: ConnCtx, req: Request<Incoming>) -> Response<ApiBody> {
    let at_ms = now_ms();
    let request_id = client_request_id(req.headers()).unwrap_or_else(generate_request_id);
    let origin = req.headers().get(header::ORIGIN).cloned();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut seen = Seen::default();

    let is_track = path == TRACK_PATH || path == LEGACY_TRACK_PATH;
    let outcome = if !is_track {
        Outcome::Respond(Reply::error(&ApiError::single(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            format!("no route for {method} {}", printable(&path)),
            &["path"],
        )))
    } else if method == Method::OPTIONS {
        Outcome::Respond(preflight(req.headers()))
    } else if method != Method::POST {
        Outcome::Respond(
            Reply::error(&ApiError::single(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("{method} is not allowed here; use POST"),
                &["method"],
            ))
            .header("allow", HeaderValue::from_static(ALLOW_METHODS)),
        )
    } else {
        track(&state, req, &request_id, &mut seen).await
    };

    let f = Finish {
        at_ms,
        method,
        path,
        request_id,
        origin,
        seen,
    };
    let mut reply = match outcome {
        Outcome::Respond(reply) => reply,
        Outcome::Drop(kind) => return drop_connection(&state, &conn, kind, f).await,
    };
    if f.path == LEGACY_TRACK_PATH {
        reply = reply
            .header("deprecation", HeaderValue::from_static("true"))
            .header(
                "link",
                HeaderValue::from_static(
                    "</v1/api/chrome/events/track>; rel=\"successor-version\"",
                ),
            );
    }
    finish(&state, &conn, reply, f)
}

struct Finish {
    at_ms: u64,
    method: Method,
    path: String,
    request_id: String,
    origin: Option<HeaderValue>,
    seen: Seen,
}

/// Records a request in the log and prints its stderr line; `status` is `None` when no
/// response is sent. Returns whether responses should close their connection.
fn record(state: &State, f: &Finish, status: Option<StatusCode>, code: Option<&str>) -> bool {
    let close = {
        let mut inner = state.lock();
        inner.recorder.request(RequestEntry {
            at_ms: f.at_ms,
            method: f.method.to_string(),
            path: f.path.clone(),
            status: status.map(|s| s.as_u16()),
            code: code.map(String::from),
            idempotency_key: f.seen.idempotency_key.clone(),
            event_name: f.seen.event_name.clone(),
            request_id: f.request_id.clone(),
            injected: f.seen.injected,
            latency_ms: f.seen.latency_ms,
            item_id: f.seen.item_id.clone(),
        });
        inner.faults.connection_faults_armed()
    };
    if state.log_requests {
        let opt = |s: &Option<String>, safe: fn(char) -> bool| {
            s.as_deref()
                .map_or_else(|| "-".to_string(), |v| log_value(v, safe))
        };
        eprintln!(
            "{} {} {} {} event={} key={} app={} request_id={}{}{}{}",
            rfc3339(now_ms()),
            status.map_or_else(|| "---".to_string(), |s| s.as_u16().to_string()),
            f.method,
            log_value(&f.path, path_char),
            opt(&f.seen.event_name, event_name_char),
            opt(&f.seen.idempotency_key, token_char),
            opt(&f.seen.app, token_char),
            log_value(&f.request_id, token_char),
            code.map(|c| format!(" code={c}")).unwrap_or_default(),
            f.seen
                .injected
                .map(|k| format!(" injected={}", k.as_str()))
                .unwrap_or_default(),
            f.seen
                .latency_ms
                .map(|ms| format!(" latency_ms={ms}"))
                .unwrap_or_default(),
        );
    }
    close
}

/// Characters an event name may show unquoted in a log line: the name rule's, plus `$`.
fn event_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$'
}

/// Characters an idempotency key, app id or request id may show unquoted.
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '$' | '+' | '/' | '=' | '@')
}

/// Characters a path may show unquoted: visible ASCII but quotes and backslashes.
fn path_char(c: char) -> bool {
    c.is_ascii_graphic() && c != '"' && c != '\\'
}

/// A value for a `name=value` log field: as it is when every character is `safe` (and it is
/// neither empty nor `-`, which means absent), else a JSON string with every control character
/// escaped, so one request stays one parseable line whatever the client sent.
pub fn log_value(value: &str, safe: fn(char) -> bool) -> String {
    if !value.is_empty() && value != "-" && value.chars().all(safe) {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A connection fault: logs the request, then drops the connection (`reset`, `reset_event`,
/// `store_then_reset`) or holds it silently until the client gives up or [`HANG_LIMIT`] passes
/// (`hang`). Never returns: the connection task drops this future once the connection is gone.
async fn drop_connection(
    state: &State,
    conn: &ConnCtx,
    kind: FaultKind,
    f: Finish,
) -> Response<ApiBody> {
    record(state, &f, None, None);
    if kind == FaultKind::Hang {
        tokio::select! {
            _ = tokio::time::sleep(HANG_LIMIT) => conn.kill(),
            _ = conn.killed() => {}
        }
    } else {
        conn.kill();
    }
    std::future::pending().await
}

/// Adds the headers every response carries, records the request and logs it. A `stall_body`
/// response gets its full `Content-Length` but only part of its body (see [`StallBody`]).
fn finish(state: &State, conn: &ConnCtx, reply: Reply, f: Finish) -> Response<ApiBody> {
    let status = reply.status;
    let code = reply.code;
    let close = record(state, &f, Some(status), code);

    let stall = f.seen.injected == Some(FaultKind::StallBody);
    let full_len = reply.body.len();
    let body = if stall {
        Either::Right(StallBody::new(&reply.body, conn.clone()))
    } else {
        Either::Left(Full::new(reply.body))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.extend(reply.headers);
    if stall {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(full_len));
    }
    if let Ok(v) = HeaderValue::from_str(&f.request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID), v);
    }
    match f.origin {
        Some(origin) => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        None => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn preflight(req_headers: &HeaderMap) -> Reply {
    let mut reply = Reply::empty(StatusCode::NO_CONTENT)
        .header(
            "access-control-allow-methods",
            HeaderValue::from_static(ALLOW_METHODS),
        )
        .header(
            "access-control-allow-headers",
            HeaderValue::from_static(ALLOW_HEADERS),
        )
        .header("access-control-max-age", HeaderValue::from_static("600"));
    // Chrome's Private Network Access asks before a public page may reach loopback.
    if req_headers
        .get("access-control-request-private-network")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        reply = reply.header(
            "access-control-allow-private-network",
            HeaderValue::from_static("true"),
        );
    }
    reply
}

/// A POST to a track path: faults first, then the checks in contract order, then storage.
async fn track(
    state: &State,
    req: Request<Incoming>,
    request_id: &str,
    seen: &mut Seen,
) -> Outcome {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    seen.idempotency_key = headers.get(IDEMPOTENCY_KEY).map(lossy);
    seen.app = headers.get(APP).map(lossy);

    let body = read_body(body, headers, state.max_body).await;

    let (conn_fault, latency_ms) = {
        let mut inner = state.lock();
        (
            inner.faults.take_connection_fault(),
            inner.faults.latency_ms,
        )
    };
    if let Some(fault) = conn_fault {
        // Nothing is processed, but the log shows what was sent.
        seen.event_name = peek_event_name(&body);
        let kind = match fault {
            ConnectionFault::Reset => FaultKind::Reset,
            ConnectionFault::Hang => FaultKind::Hang,
        };
        seen.injected = Some(kind);
        return Outcome::Drop(kind);
    }
    if latency_ms > 0 {
        seen.injected = Some(FaultKind::Latency);
        seen.latency_ms = Some(latency_ms);
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }

    let (outcome, persisted) = decide(state, &parts, body, request_id, seen);
    if let Some(committed) = persisted {
        // `--db`: what this request stored is on disk before it is answered.
        let _ = committed.await;
    }
    outcome
}

/// The part of a track request decided under the state lock: the faults checked after the
/// body arrived, then the checks and storage. With `--db`, the receiver resolves once what was
/// stored is committed.
fn decide(
    state: &State,
    parts: &hyper::http::request::Parts,
    body: Result<Bytes, BodyError>,
    request_id: &str,
    seen: &mut Seen,
) -> (Outcome, Option<tokio::sync::oneshot::Receiver<()>>) {
    let headers = &parts.headers;
    let mut inner = state.lock();
    if let Some((status, location)) = inner.faults.take_redirect() {
        seen.event_name = peek_event_name(&body);
        seen.injected = Some(FaultKind::Redirect);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
        let location = location
            .and_then(|l| HeaderValue::from_str(&l).ok())
            .unwrap_or_else(|| moved_location(&parts.uri));
        let reply = Reply::empty(status).header("location", location);
        return (Outcome::Respond(reply), None);
    }
    if let Some(injected) = inner.faults.take_fail_next() {
        seen.event_name = peek_event_name(&body);
        seen.injected = Some(FaultKind::FailNext);
        let reply = injected_reply(&injected, "injected failure (fail_next)", &[]);
        return (Outcome::Respond(reply), None);
    }
    let ctx = TrackCtx {
        headers,
        path: parts.uri.path(),
        request_id,
        db: state.db.as_ref(),
    };
    let mut rate: Option<RateInfo> = None;
    let mut persisted = None;
    let mut reply = match body {
        Ok(body) => process(&mut inner, &ctx, &body, seen, &mut rate, &mut persisted),
        Err(err) => body_error_reply(err, state.max_body),
    };
    // Every track response reports the limit, even when refused before the limiter counted it.
    let rate = rate.or_else(|| {
        inner.limiter.peek(
            headers.get(TOKEN_ID).and_then(|v| v.to_str().ok()),
            now_ms(),
        )
    });
    if let Some(info) = rate {
        reply = reply
            .header("x-ratelimit-limit", HeaderValue::from(info.limit))
            .header("x-ratelimit-remaining", HeaderValue::from(info.remaining))
            .header(
                "x-ratelimit-reset",
                HeaderValue::from(info.reset_epoch_secs),
            );
    }
    if let Some(kind) = seen.injected.filter(|k| k.drops_response()) {
        // `store_then_reset` or `reset_event`, decided in `process`.
        return (Outcome::Drop(kind), persisted);
    }
    (Outcome::Respond(reply), persisted)
}

/// `redirect_next`'s default `Location`: the request's own path with `/moved` appended, as a
/// relative reference, so it resolves against the scheme, host and port the client used.
fn moved_location(uri: &Uri) -> HeaderValue {
    let location = match uri.query() {
        Some(query) => format!("{}/moved?{query}", uri.path()),
        None => format!("{}/moved", uri.path()),
    };
    HeaderValue::from_str(&location).unwrap_or_else(|_| HeaderValue::from_static("/moved"))
}

/// The event name of a body that will not be processed, for the request log only.
fn peek_event_name(body: &Result<Bytes, BodyError>) -> Option<String> {
    let body = body.as_ref().ok()?;
    let parsed: Value = serde_json::from_slice(body).ok()?;
    parsed.get("event_name")?.as_str().map(String::from)
}

struct TrackCtx<'a> {
    headers: &'a HeaderMap,
    path: &'a str,
    request_id: &'a str,
    db: Option<&'a Db>,
}

/// The synchronous part of a track request, run under the state lock. With `--db`, what it
/// stores is queued for the file and `persisted` resolves once it is committed.
fn process(
    inner: &mut Inner,
    ctx: &TrackCtx,
    body: &[u8],
    seen: &mut Seen,
    rate: &mut Option<RateInfo>,
    persisted: &mut Option<tokio::sync::oneshot::Receiver<()>>,
) -> Reply {
    let headers = ctx.headers;
    let token = match authenticate(inner, headers) {
        Ok(token) => token.clone(),
        Err(e) => return Reply::error(&e),
    };
    if !is_json_content_type(headers) {
        return Reply::error(&ApiError::single(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
            &["header", "content-type"],
        ));
    }
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Reply::error(&ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorItem::new(
                    "VALIDATION_ERROR",
                    "request body is not valid JSON",
                    &["body"],
                )
                .ctx("error", e.to_string()),
            ))
        }
    };
    seen.event_name = parsed
        .get("event_name")
        .and_then(Value::as_str)
        .map(String::from);
    let (event_name, properties) = match validate_event(&parsed) {
        Ok(ok) => ok,
        Err(e) => return Reply::error(&e),
    };
    let key = match idempotency_key(headers) {
        Ok(key) => key,
        Err(e) => return Reply::error(&e),
    };
    if inner.faults.take_reset_event(&event_name) {
        // A valid request whose connection a middlebox kills: the server never sees it, so it
        // is not counted against the rate limit, replayed or stored. `track` drops the
        // connection; this reply is never sent.
        seen.injected = Some(FaultKind::ResetEvent);
        return Reply::empty(StatusCode::OK);
    }

    let now = now_ms();
    if let Some(info) = inner.limiter.hit(&token.token_id, now) {
        *rate = Some(info);
        if info.exceeded {
            let err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorItem::new(
                    "RATE_LIMIT_EXCEEDED",
                    "too many requests for this token; retry later",
                    &[],
                )
                .ctx("limit", info.limit)
                .ctx("retry_after", info.retry_after_secs),
            );
            return Reply::error(&err)
                .header("retry-after", HeaderValue::from(info.retry_after_secs));
        }
    }

    // Without idempotency a key is only recorded with the event: never looked up or remembered.
    let idempotent_key = key.as_deref().filter(|_| inner.settings.idempotency);
    // Records keep a hash of the canonical body, not the body.
    let hash = idempotent_key.map(|_| body_hash(&canonical_json(&parsed)));
    if let (Some(key), Some(hash)) = (idempotent_key, hash) {
        match inner.idempotency.lookup(&token.token_id, key, hash) {
            Lookup::Fresh => {}
            Lookup::Replay(original) => {
                let (response, event_id) = (original.response.clone(), original.event_id.clone());
                seen.item_id = Some(event_id.clone());
                inner.recorder.duplicate(Duplicate {
                    idempotency_key: key.to_string(),
                    at_ms: now,
                    event_id,
                    request_id: ctx.request_id.to_string(),
                });
                return Reply::raw_json(StatusCode::OK, response)
                    .header("idempotent-replayed", HeaderValue::from_static("true"));
            }
            Lookup::Conflict(original) => {
                let err = ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorItem::new(
                        "RESOURCE_ALREADY_EXISTS",
                        "Idempotency-Key was already used with a different request body",
                        &["header", IDEMPOTENCY_KEY],
                    )
                    .ctx("reason", "idempotency_conflict")
                    .ctx("event_id", original.event_id.clone()),
                );
                return Reply::error(&err);
            }
        }
    }

    if let Some(injected) = inner.faults.take_fail_event(&event_name) {
        seen.injected = Some(FaultKind::FailEvent);
        let message = format!("event '{event_name}' rejected (injected fail_event)");
        return injected_reply(&injected, &message, &["body", "event_name"]);
    }

    inner.next_event_id += 1;
    let id = format!("evt_{}", inner.next_event_id);
    let received_at = rfc3339(now);
    let response = Bytes::from(
        json!({
            "status": "success",
            "item": {"id": id, "event_name": event_name, "received_at": received_at},
        })
        .to_string(),
    );
    let opt_header = |name: header::HeaderName| headers.get(name).map(lossy);
    let seq = inner.recorder.next_seq();
    let stored = inner.recorder.store(StoredEvent {
        seq,
        id: id.clone(),
        received_at,
        received_at_ms: now,
        event_name,
        properties,
        idempotency_key: key.clone(),
        request_id: ctx.request_id.to_string(),
        path: ctx.path.to_string(),
        headers: EventHeaders {
            token_id: token.token_id.clone(),
            app: token.app_id.clone(),
            token_secret: REDACTED,
            content_type: opt_header(header::CONTENT_TYPE),
            origin: opt_header(header::ORIGIN),
            user_agent: opt_header(header::USER_AGENT),
        },
    });
    if let Some(db) = ctx.db {
        db.send(Op::Event(stored.event));
        if let (true, Some(first_seq)) = (stored.dropped > 0, inner.recorder.first_seq()) {
            db.send(Op::DropEventsBefore {
                first_seq,
                dropped_oldest: inner.recorder.dropped_oldest(),
            });
        }
    }
    if let (Some(key), Some(hash)) = (idempotent_key, hash) {
        let record = Remembered {
            body_hash: hash,
            event_id: id.clone(),
            response: response.clone(),
        };
        if let Some(db) = ctx.db {
            db.send(Op::Remember {
                token_id: token.token_id.clone(),
                key: key.to_string(),
                record: record.clone(),
            });
        }
        let forgotten = inner.idempotency.remember(&token.token_id, key, record);
        if let (Some(db), false) = (ctx.db, forgotten.is_empty()) {
            db.send(Op::Forget(forgotten));
        }
    }
    *persisted = ctx.db.map(Db::sync);
    seen.item_id = Some(id);
    if inner.faults.take_store_then_reset() {
        // Stored and remembered exactly as above; only the answer is lost.
        seen.injected = Some(FaultKind::StoreThenReset);
    } else if inner.faults.take_stall_body() {
        // Stored and remembered exactly as above; the answer starts but never finishes.
        seen.injected = Some(FaultKind::StallBody);
    }
    Reply::raw_json(StatusCode::OK, response)
}

/// Required extension headers, then token id, secret and app, in that order.
fn authenticate<'a>(inner: &'a Inner, headers: &HeaderMap) -> Result<&'a Token, ApiError> {
    let missing: Vec<ErrorItem> = [TOKEN_ID, TOKEN_SECRET, APP]
        .into_iter()
        .filter(|name| {
            headers
                .get(*name)
                .map_or(true, |v| v.as_bytes().trim_ascii().is_empty())
        })
        .map(|name| {
            ErrorItem::new(
                "AUTHENTICATION_REQUIRED",
                format!("missing required header {name}"),
                &["header", name],
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            errors: missing,
        });
    }
    let bytes = |name: &str| headers.get(name).map_or(&[][..], HeaderValue::as_bytes);

    let token = std::str::from_utf8(bytes(TOKEN_ID))
        .ok()
        .and_then(|id| inner.tokens.get(id))
        .ok_or_else(|| {
            ApiError::single(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "token is invalid or unknown",
                &["header", TOKEN_ID],
            )
        })?;
    if !constant_time_eq(bytes(TOKEN_SECRET), token.token_secret.as_bytes()) {
        return Err(ApiError::single(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            "token secret does not match",
            &["header", TOKEN_SECRET],
        ));
    }
    let app = bytes(APP);
    if app != token.app_id.as_bytes() {
        let sent = String::from_utf8_lossy(app).into_owned();
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorItem::new(
                "INSUFFICIENT_PERMISSIONS",
                format!("token is not authorised for app '{sent}'"),
                &["header", APP],
            )
            .ctx("reason", "app_mismatch")
            .ctx("app", sent),
        ));
    }
    Ok(token)
}

/// Compares without an early exit, so response timing does not reveal how much of a secret
/// matched. (The length is not secret-dependent in a useful way.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// `application/json`, optionally with parameters such as `; charset=utf-8`.
fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// Schema: an object with exactly `event_name` (see [`event_name_problem`]) and `properties`
/// (object). All violations are reported at once.
fn validate_event(body: &Value) -> Result<(String, Value), ApiError> {
    let unprocessable = |errors| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        errors,
    };
    let Some(obj) = body.as_object() else {
        return Err(unprocessable(vec![ErrorItem::new(
            "VALIDATION_ERROR",
            "request body must be a JSON object",
            &["body"],
        )]));
    };
    let mut errors = Vec::new();
    let invalid =
        |msg: &str, field: &str| ErrorItem::new("VALIDATION_ERROR", msg, &["body", field]);

    let event_name = match obj.get("event_name") {
        None => {
            errors.push(invalid("field required", "event_name"));
            None
        }
        Some(Value::String(s)) => match event_name_problem(s) {
            None => Some(s.clone()),
            Some(problem) => {
                errors.push(
                    invalid(&problem, "event_name")
                        .ctx("pattern", EVENT_NAME_PATTERN)
                        .ctx("max_length", MAX_EVENT_NAME_CHARS),
                );
                None
            }
        },
        Some(_) => {
            errors.push(invalid("event_name must be a string", "event_name"));
            None
        }
    };
    let properties = match obj.get("properties") {
        None => {
            errors.push(invalid("field required", "properties"));
            None
        }
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => {
            errors.push(invalid("properties must be a JSON object", "properties"));
            None
        }
    };
    for field in obj
        .keys()
        .filter(|k| *k != "event_name" && *k != "properties")
    {
        errors.push(ErrorItem::new(
            "VALIDATION_ERROR",
            "unknown field",
            &["body", field],
        ));
    }
    match (event_name, properties) {
        (Some(name), Some(props)) if errors.is_empty() => Ok((name, props)),
        _ => Err(unprocessable(errors)),
    }
}

/// The SDK's rule: snake_case, 1–128 characters, a lowercase ASCII letter first, then lowercase
/// letters, digits and `_` (the SDK lowercases names before sending, so the wire name must
/// already be lowercase). The SDK's own events add a reserved `$` prefix to such a name
/// (`$identify`). Returns what is wrong, or `None` for a valid name.
pub fn event_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("event_name must not be empty".into());
    }
    let (rest, offset, after) = match name.strip_prefix(RESERVED_PREFIX) {
        Some(rest) => (rest, 1, " after the reserved '$' prefix"),
        None => (name, 0, ""),
    };
    let shown = quote_name(name);
    if rest.is_empty() {
        return Some(format!(
            "event_name {shown} needs a snake_case name after the reserved '$' prefix, e.g. '$pageview'"
        ));
    }
    let chars = rest.chars().count();
    if chars > MAX_EVENT_NAME_CHARS {
        return Some(format!(
            "event_name must be at most {MAX_EVENT_NAME_CHARS} characters{after}, got {chars}"
        ));
    }
    let lowered = " (names are lowercase on the wire: the SDK lowercases them before sending)";
    let first = rest.chars().next()?;
    if !first.is_ascii_lowercase() {
        let hint = if first.is_ascii_uppercase() {
            lowered
        } else {
            ""
        };
        return Some(format!(
            "event_name {shown} must start with a lowercase ASCII letter{after}, not {first:?}{hint}"
        ));
    }
    if let Some((at, bad)) = rest
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        let hint = if bad.is_ascii_uppercase() {
            lowered
        } else {
            ""
        };
        return Some(format!(
            "event_name {shown} must be snake_case: only lowercase ASCII letters, digits and '_'{after}; \
found {bad:?} at position {}{hint}",
            at + offset
        ));
    }
    if offset == 1 && !SDK_EVENTS.contains(&name) {
        return Some(format!(
            "event_name {shown} uses the '$' prefix, which is reserved for the SDK's own events ({}); \
an application's event name starts with a letter",
            SDK_EVENTS.join(", ")
        ));
    }
    None
}

/// The name for an error message: quoted, escaped, and cut short if long.
fn quote_name(name: &str) -> String {
    const SHOWN: usize = 64;
    let mut shown: String = name.chars().take(SHOWN).collect();
    if name.chars().nth(SHOWN).is_some() {
        shown.push('…');
    }
    format!("'{}'", shown.escape_debug())
}

/// The optional `Idempotency-Key`: 1..=256 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = |msg: &str| {
        ApiError::single(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            msg,
            &["header", IDEMPOTENCY_KEY],
        )
    };
    let key = value
        .to_str()
        .map_err(|_| bad("Idempotency-Key must be visible ASCII"))?;
    if key.is_empty() {
        return Err(bad("Idempotency-Key must not be empty"));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(bad("Idempotency-Key must be at most 256 characters"));
    }
    Ok(Some(key.to_string()))
}

fn injected_reply(injected: &Injected, message: &str, loc: &[&str]) -> Reply {
    let status = StatusCode::from_u16(injected.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut reply = if matches!(status.as_u16(), 204 | 205 | 304) {
        Reply::empty(status)
    } else if let Some(body) = &injected.body {
        Reply::json(status, body)
    } else if status.is_success() {
        Reply::json(status, &json!({"status": "ok"}))
    } else {
        let mut err = envelope::for_status(status, message);
        for item in &mut err.errors {
            item.loc = loc.iter().map(|s| s.to_string()).collect();
        }
        Reply::error(&err)
    };
    if !status.is_success() && reply.code.is_none() {
        reply.code = Some(envelope::code_for_status(status));
    }
    if let Some(v) = injected
        .retry_after
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        reply = reply.header("retry-after", v);
    }
    reply
}

enum BodyError {
    /// Over the limit; `drained` says whether the rest was read, leaving the connection usable.
    TooLarge {
        drained: bool,
    },
    Timeout,
    Broken,
}

fn body_error_reply(err: BodyError, max_body: usize) -> Reply {
    match err {
        BodyError::TooLarge { drained } => {
            let reply = Reply::error(&ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorItem::new(
                    "PAYLOAD_TOO_LARGE",
                    format!("request body exceeds {max_body} bytes"),
                    &["body"],
                )
                .ctx("max_bytes", max_body),
            ));
            if drained {
                reply
            } else {
                reply.header("connection", HeaderValue::from_static("close"))
            }
        }
        BodyError::Timeout => Reply::error(&ApiError::single(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            "request body was not received in time",
            &["body"],
        ))
        .header("connection", HeaderValue::from_static("close")),
        BodyError::Broken => Reply::error(&ApiError::single(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "request body could not be read",
            &["body"],
        ))
        .header("connection", HeaderValue::from_static("close")),
    }
}

/// Reads at most `max` bytes into memory; anything beyond is discarded (up to a drain limit).
async fn read_body(body: Incoming, headers: &HeaderMap, max: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(BodyError::TooLarge { drained: false });
    }
    match tokio::time::timeout(BODY_TIMEOUT, collect_capped(body, max)).await {
        Ok(result) => result,
        Err(_) => Err(BodyError::Timeout),
    }
}

async fn collect_capped(mut body: Incoming, max: usize) -> Result<Bytes, BodyError> {
    let mut buf = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > DRAIN_LIMIT {
            return Err(BodyError::TooLarge { drained: false });
        }
        if total <= max {
            buf.extend_from_slice(&data);
        }
    }
    if total > max {
        return Err(BodyError::TooLarge { drained: true });
    }
    Ok(buf.freeze())
}

/// The client's `X-Request-ID` if it is 8–128 characters of letters, digits, `.`, `_`, `-`.
fn client_request_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(REQUEST_ID)?.to_str().ok()?;
    let ok = (8..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then(|| v.to_string())
}

/// `req_` + 32 hex digits: a process-wide counter hashed under fresh random keys, so ids are
/// unique within a run and unpredictable across runs.
fn generate_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = (n, now_ms());
    let (a, b) = (
        RandomState::new().hash_one(seed),
        RandomState::new().hash_one(seed),
    );
    format!("req_{a:016x}{b:016x}")
}

fn lossy(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_rules() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc.DEF_123-x"));
        assert_eq!(client_request_id(&h).as_deref(), Some("abc.DEF_123-x"));
        for bad in ["short", "has space in it", "semi;colon;x"] {
            h.insert(REQUEST_ID, HeaderValue::from_static(bad));
            assert_eq!(client_request_id(&h), None, "{bad}");
        }
        let a = generate_request_id();
        assert!(a.starts_with("req_") && a.len() == 36 && a != generate_request_id());
    }

    #[test]
    fn content_type_allows_parameters() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(is_json_content_type(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json_content_type(&h));
    }

    #[test]
    fn schema_reports_every_violation() {
        let err = validate_event(&json!({"event_name": "", "extra": 1})).expect_err("invalid");
        let locs: Vec<Vec<String>> = err.errors.iter().map(|e| e.loc.clone()).collect();
        assert_eq!(
            locs,
            vec![
                vec!["body", "event_name"],
                vec!["body", "properties"],
                vec!["body", "extra"]
            ]
        );
        assert!(validate_event(&json!({"event_name": "a".repeat(128), "properties": {}})).is_ok());
        assert!(validate_event(&json!({"event_name": "a".repeat(129), "properties": {}})).is_err());
    }

    #[test]
    fn event_name_rule() {
        let long = "a".repeat(MAX_EVENT_NAME_CHARS);
        let reserved_long = format!("${long}");
        for ok in [
            "a",
            "button_click",
            "e2e_rate",
            "x_1_",
            "$identify",
            "$pageview",
            "$extension_installed",
            "$exception",
            long.as_str(),
        ] {
            assert_eq!(event_name_problem(ok), None, "{ok}");
        }
        assert!(event_name_problem(&reserved_long)
            .unwrap()
            .contains("reserved for the SDK's own events"));
        assert!(event_name_problem("$custom_event")
            .unwrap()
            .contains("reserved for the SDK's own events ($identify, "));
        let too_long = format!("{long}a");
        let reserved_too_long = format!("${too_long}");
        for (bad, says) in [
            ("", "must not be empty"),
            ("Hello World!", "must start with a lowercase ASCII letter"),
            ("hello world", "found ' ' at position 5"),
            (
                "1st_event",
                "must start with a lowercase ASCII letter, not '1'",
            ),
            ("_x", "must start with a lowercase ASCII letter"),
            ("Button", "the SDK lowercases them"),
            ("buttonClick", "found 'C' at position 6"),
            ("page-view", "found '-' at position 4"),
            ("caf\u{e9}", "found 'é' at position 3"),
            ("$", "after the reserved '$' prefix"),
            (
                "$$x",
                "lowercase ASCII letter after the reserved '$' prefix, not '$'",
            ),
            ("$Identify", "after the reserved '$' prefix"),
            ("$id-x", "at position 3"),
            ("x$", "found '$' at position 1"),
            (too_long.as_str(), "at most 128 characters, got 129"),
            (
                reserved_too_long.as_str(),
                "after the reserved '$' prefix, got 129",
            ),
        ] {
            let problem = event_name_problem(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(problem.contains(says), "{bad:?}: {problem}");
        }
        let shown = quote_name(&"z".repeat(1000));
        assert!(shown.chars().count() < 80 && shown.ends_with("…'"));
    }

    #[test]
    fn log_values_are_quoted_when_needed() {
        assert_eq!(log_value("button_click", event_name_char), "button_click");
        assert_eq!(log_value("$pageview", event_name_char), "$pageview");
        assert_eq!(
            log_value("Hello World!", event_name_char),
            r#""Hello World!""#
        );
        assert_eq!(log_value("", event_name_char), r#""""#);
        assert_eq!(log_value("-", token_char), r#""-""#);
        assert_eq!(
            log_value("a\"b\\c\nd\u{1b}[2J\u{85}", event_name_char),
            r#""a\"b\\c\nd\u001b[2J\u0085""#
        );
        let quoted = log_value("x y=\"z\"\u{2028}", event_name_char);
        let back: String = serde_json::from_str(&quoted).expect("JSON string");
        assert_eq!(back, "x y=\"z\"\u{2028}");
        assert_eq!(
            log_value("3f2a-9c_k.1:x", token_char),
            "3f2a-9c_k.1:x",
            "keys stay readable"
        );
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
