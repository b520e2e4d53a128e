//! The control port: inspect what the API port accepted, reset it, swap credentials and
//! script faults. JSON in and out, permissive CORS so a dev page can poll it.

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
use crate::faults::FaultRequest;
use crate::listener::ApiListener;
use crate::record::REDACTED;
use crate::state::{SettingsRequest, State};

#[derive(Clone)]
pub struct Control {
    pub state: Arc<State>,
    pub api: Arc<ApiListener>,
}

pub fn router(control: Control) -> Router {
    Router::new()
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
}

async fn events(AxState(c): AxState<Control>, Query(q): Query<EventsQuery>) -> Response {
    let inner = c.state.lock();
    match q.format.as_deref() {
        None | Some("json") => Json(inner.recorder.events_json()).into_response(),
        Some("ndjson") => (
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            inner.recorder.events_ndjson(),
        )
            .into_response(),
        Some("text") => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            inner.recorder.events_text(),
        )
            .into_response(),
        Some(other) => error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            format!("unknown format {other:?}; use json, ndjson or text"),
        ),
    }
}

async fn requests(AxState(c): AxState<Control>) -> Json<Value> {
    Json(c.state.lock().recorder.requests_json())
}

async fn reset(AxState(c): AxState<Control>) -> Response {
    {
        let mut inner = c.state.lock();
        inner.recorder.clear();
        inner.idempotency.clear();
        inner.clear_faults(c.state.base_rate_limit);
        inner.settings = c.state.base_settings;
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
