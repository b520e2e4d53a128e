//! The control port: inspect what the API port accepted, reset it, swap credentials and
//! script faults. JSON in and out, permissive CORS so a dev page can poll it; `GET /` is the
//! event viewer page ([`crate::viewer`]), built on these same endpoints.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, Request, State as AxState};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{validate_tokens, Token};
use crate::db::Op;
use crate::faults::FaultRequest;
use crate::listener::ApiListener;
use crate::record::{Page, REDACTED};
use crate::state::{SettingsRequest, State};
use crate::viewer;

#[derive(Clone)]
pub struct Control {
    pub state: Arc<State>,
    pub api: Arc<ApiListener>,
}

pub fn router(control: Control) -> Router {
    Router::new()
        .route("/", get(viewer::page))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/events", get(events))
        .route("/requests", get(requests))
        .route("/reset", post(reset))
        .route("/tokens", get(tokens).post(replace_tokens))
        .route("/faults", get(faults).post(set_faults))
        .route("/settings", get(settings).post(set_settings))
        .fallback(not_found)
        .layer(middleware::from_fn(cors))
        .with_state(control)
}

/// Allows any origin: the control port is loopback-only and holds no secrets.
async fn cors(req: Request, next: Next) -> Response {
    let mut response = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        next.run(req).await
    };
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({
        "status": "error",
        "errors": [{"code": code, "message": message.into(), "loc": ["body"], "ctx": {}, "details": {}}],
    });
    (status, Json(body)).into_response()
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        "unknown control endpoint",
    )
}

#[derive(Deserialize)]
struct EventsQuery {
    format: Option<String>,
    since: Option<String>,
    limit: Option<String>,
}

#[derive(Clone, Copy)]
enum Format {
    Json,
    Ndjson,
    Text,
}

/// Renders off the async runtime: a large dump takes a while and must not hold up a worker
/// thread that could be serving the API port.
async fn render<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("rendering failed: {e}"),
        )
    })
}

fn json_bytes(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /events[?format=json|ndjson|text][&since=SEQ][&limit=N]`. Only a snapshot is taken
/// under the state lock (see `Recorder::events_view`); serializing happens after it is
/// released, so reading never stalls the API port however many events there are.
async fn events(AxState(c): AxState<Control>, Query(q): Query<EventsQuery>) -> Response {
    let format = match q.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("ndjson") => Format::Ndjson,
        Some("text") => Format::Text,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                format!("unknown format {other:?}; use json, ndjson or text"),
            )
        }
    };
    let number = |name: &str, v: &Option<String>| -> Result<Option<u64>, String> {
        v.as_deref()
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{name} must be a non-negative integer, got {v:?}"))
            })
            .transpose()
    };
    let page = match (number("since", &q.since), number("limit", &q.limit)) {
        (Ok(since), Ok(limit)) => Page {
            since: since.unwrap_or(0),
            limit: limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        },
        (Err(e), _) | (_, Err(e)) => {
            return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", e);
        }
    };
    let view = c.state.lock().recorder.events_view();
    let rendered = render(move || match format {
        Format::Json => json_bytes(view.json(page)),
        Format::Ndjson => (
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            view.ndjson(page),
        )
            .into_response(),
        Format::Text => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            view.text(page),
        )
            .into_response(),
    })
    .await;
    rendered.unwrap_or_else(|e| e)
}

async fn requests(AxState(c): AxState<Control>) -> Response {
    let view = c.state.lock().recorder.requests_view();
    render(move || json_bytes(view.json()))
        .await
        .unwrap_or_else(|e| e)
}

async fn reset(AxState(c): AxState<Control>) -> Response {
    let committed = {
        let mut inner = c.state.lock();
        inner.recorder.clear();
        inner.idempotency.clear();
        inner.clear_faults(c.state.base_rate_limit);
        inner.settings = c.state.base_settings;
        c.state.db.as_ref().map(|db| {
            db.send(Op::Clear);
            db.sync()
        })
    };
    if let Some(committed) = committed {
        let _ = committed.await;
    }
    if let Err(e) = c.api.set_down(false).await {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("could not listen again: {e}"),
        );
    }
    Json(json!({"status": "ok"})).into_response()
}

fn token_list(c: &Control) -> Value {
    let inner = c.state.lock();
    let tokens: Vec<Value> = inner
        .tokens_sorted()
        .into_iter()
        .map(|t| json!({"token_id": t.token_id, "token_secret": REDACTED, "app_id": t.app_id}))
        .collect();
    json!({ "tokens": tokens })
}

async fn tokens(AxState(c): AxState<Control>) -> Json<Value> {
    Json(token_list(&c))
}

async fn replace_tokens(AxState(c): AxState<Control>, body: Bytes) -> Response {
    let tokens: Vec<Token> = match parse(&body) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e),
    };
    if let Err(e) = validate_tokens(&tokens) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e);
    }
    c.state.lock().replace_tokens(tokens);
    Json(token_list(&c)).into_response()
}

fn fault_state(c: &Control) -> Value {
    let inner = c.state.lock();
    let f = &inner.faults;
    json!({
        "fail_next": f.fail_next,
        "fail_event": f.fail_event.values().collect::<Vec<_>>(),
        "latency_ms": f.latency_ms,
        "reset_next": f.reset_next,
        "hang_next": f.hang_next,
        "store_then_reset_next": f.store_then_reset_next,
        "reset_event": f.reset_event.values().collect::<Vec<_>>(),
        "redirect_next": f.redirect_next,
        "stall_body_next": f.stall_body_next,
        "down": c.api.is_down(),
        "rate_limit": inner.limiter.config(),
    })
}

async fn faults(AxState(c): AxState<Control>) -> Json<Value> {
    Json(fault_state(&c))
}

async fn set_faults(AxState(c): AxState<Control>, body: Bytes) -> Response {
    let req: FaultRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e),
    };
    if let Err(e) = req.validate() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e);
    }
    {
        let mut inner = c.state.lock();
        if req.clear == Some(true) {
            inner.clear_faults(c.state.base_rate_limit);
        }
        inner.faults.apply(&req);
        if let Some(limit) = req.rate_limit {
            inner.limiter.set(limit);
        }
    }
    if req.arms_connection_fault() {
        // The faulted request must arrive on a fresh connection (see Faults::connection_faults_armed).
        c.api.close_idle_connections();
    }
    let down = match req.down {
        Some(down) => Some(down),
        None if req.clear == Some(true) => Some(false),
        None => None,
    };
    if let Some(down) = down {
        if let Err(e) = c.api.set_down(down).await {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                format!("could not listen again: {e}"),
            );
        }
    }
    Json(fault_state(&c)).into_response()
}

async fn settings(AxState(c): AxState<Control>) -> Json<Value> {
    Json(json!(c.state.lock().settings))
}

/// `{"idempotency": bool}`; absent fields stay as they are. Faults' `clear` leaves settings
/// alone; `POST /reset` restores the command line's.
async fn set_settings(AxState(c): AxState<Control>, body: Bytes) -> Response {
    let req: SettingsRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e),
    };
    let mut inner = c.state.lock();
    inner.settings.apply(&req);
    Json(json!(inner.settings)).into_response()
}
