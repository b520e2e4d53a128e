//! One error type for the whole SDK. Its `code` is stable (it crosses to JavaScript as
//! `error.code` and is part of the public API); the message is for humans and may improve.

use std::fmt;

/// Stable error codes. The string form (`as_str`) is what JavaScript sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// An option given to `init` is missing or malformed.
    InvalidOption,
    /// The configured `appId` differs from the extension's own `chrome.runtime.id`.
    AppIdMismatch,
    /// The event name breaks the naming rule.
    InvalidEventName,
    /// The properties are not plain JSON, or break a limit.
    InvalidProperties,
    /// The serialized event is larger than the per-event limit.
    EventTooLarge,
    /// A per-call option of `track` (such as `dedupKey`) is malformed.
    InvalidTrackOption,
    /// The user id given to `identify` is empty, too long or holds control characters.
    InvalidUserId,
    /// `chrome.storage.local` refused a write or a read (quota, corruption, missing API).
    StorageError,
    /// The tracker was shut down; create a new one.
    ShutDown,
    /// The server rejected the credentials (401): delivery pauses until they change.
    AuthFailed,
    /// The server refused this app for these credentials (403): delivery pauses.
    PermissionDenied,
    /// The endpoint does not exist at the configured base URL (404/405): delivery pauses.
    EndpointNotFound,
    /// The server answered with a redirect, which the SDK never follows (the token secret must
    /// not reach another address): a configuration error; delivery pauses.
    Redirected,
    /// The server asked us to slow down (429).
    RateLimited,
    /// The server failed (5xx, or an unexpected status).
    ServerError,
    /// The request never got an answer: offline, refused, reset, CORS.
    NetworkError,
    /// The request took longer than `requestTimeoutMs`.
    Timeout,
    /// The server rejected one event as invalid (400/413/422); that event was dropped.
    EventRejected,
    /// The `beforeSend` hook threw, or returned what cannot be sent: the event was kept as it
    /// was (reported through `onError`).
    BeforeSendFailed,
    /// The event is not in the tracking plan (`planMode: 'reject'`).
    UnknownEvent,
    /// A property breaks the tracking plan: not declared, of the wrong type, or a required one
    /// missing (`planMode: 'reject'`).
    InvalidProperty,
    /// An event that breaks the tracking plan was stored anyway (`planMode: 'report'`); reported
    /// through `onError`, never thrown.
    PlanViolation,
    /// A bug or an impossible state; please report it.
    Internal,
}

impl ErrorCode {
    /// The stable string code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidOption => "INVALID_OPTION",
            ErrorCode::AppIdMismatch => "APP_ID_MISMATCH",
            ErrorCode::InvalidEventName => "INVALID_EVENT_NAME",
            ErrorCode::InvalidProperties => "INVALID_PROPERTIES",
            ErrorCode::EventTooLarge => "EVENT_TOO_LARGE",
            ErrorCode::InvalidTrackOption => "INVALID_TRACK_OPTION",
            ErrorCode::InvalidUserId => "INVALID_USER_ID",
            ErrorCode::StorageError => "STORAGE_ERROR",
            ErrorCode::ShutDown => "SHUT_DOWN",
            ErrorCode::AuthFailed => "AUTH_FAILED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::Redirected => "REDIRECTED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::ServerError => "SERVER_ERROR",
            ErrorCode::NetworkError => "NETWORK_ERROR",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::EventRejected => "EVENT_REJECTED",
            ErrorCode::BeforeSendFailed => "BEFORE_SEND_FAILED",
            ErrorCode::UnknownEvent => "UNKNOWN_EVENT",
            ErrorCode::InvalidProperty => "INVALID_PROPERTY",
            ErrorCode::PlanViolation => "PLAN_VIOLATION",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// An error with a stable code, a readable message and, for input errors, the offending field
/// (`"tokenId"`, `"eventName"`, `"properties.user.tags[2]"`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Stable code.
    pub code: ErrorCode,
    /// What was wrong, where, and what the rule is.
    pub message: String,
    /// The field the error is about, when there is one.
    pub field: Option<String>,
}

impl Error {
    /// An error without a field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), field: None }
    }

    /// An error about one field.
    pub fn at(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), field: Some(field.into()) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

/// Result with the SDK's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
