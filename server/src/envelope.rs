//! Inhouse's JSON envelopes: `{"status":"error","errors":[{code,message,loc,ctx,details}]}`.

use hyper::StatusCode;
use serde_json::{json, Map, Value};

/// One entry of the `errors` array.
#[derive(Debug, Clone)]
pub struct ErrorItem {
    pub code: &'static str,
    pub message: String,
    pub loc: Vec<String>,
    pub ctx: Map<String, Value>,
}

impl ErrorItem {
    pub fn new(code: &'static str, message: impl Into<String>, loc: &[&str]) -> Self {
        ErrorItem {
            code,
            message: message.into(),
            loc: loc.iter().map(|s| s.to_string()).collect(),
            ctx: Map::new(),
        }
    }

    pub fn ctx(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.ctx.insert(key.to_string(), value.into());
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "loc": self.loc,
            "ctx": self.ctx,
            "details": {},
        })
    }
}

/// A complete error response: status plus one or more error items.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorItem>,
}

impl ApiError {
    pub fn new(status: StatusCode, item: ErrorItem) -> Self {
        ApiError {
            status,
            errors: vec![item],
        }
    }

    pub fn single(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        loc: &[&str],
    ) -> Self {
        Self::new(status, ErrorItem::new(code, message, loc))
    }

    /// The code of the first error, for logs and counters.
    pub fn code(&self) -> &'static str {
        self.errors.first().map_or("", |e| e.code)
    }

    pub fn body(&self) -> Value {
        json!({
            "status": "error",
            "errors": self.errors.iter().map(ErrorItem::to_json).collect::<Vec<_>>(),
        })
    }
}

/// The code Inhouse would plausibly use for a status, for faults that only name a status.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "VALIDATION_ERROR",
        401 => "AUTHENTICATION_REQUIRED",
        403 => "INSUFFICIENT_PERMISSIONS",
        404 => "RESOURCE_NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        408 => "REQUEST_TIMEOUT",
        409 => "RESOURCE_ALREADY_EXISTS",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        429 => "RATE_LIMIT_EXCEEDED",
        502 => "BAD_GATEWAY",
        503 => "SERVICE_UNAVAILABLE",
        504 => "GATEWAY_TIMEOUT",
        s if s >= 500 => "INTERNAL_ERROR",
        _ => "REQUEST_FAILED",
    }
}

/// A default error for a bare status, used by injected faults.
pub fn for_status(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::single(status, code_for_status(status), message, &[])
}
