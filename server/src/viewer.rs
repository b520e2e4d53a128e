//! `GET /` on the control port: a page that shows the events arriving, highlights duplicates
//! and arms faults with buttons. One self-contained HTML file (inline CSS and JavaScript, no
//! external asset) compiled into the binary.
//!
//! The page adds no server state and holds no lock: it polls the existing paging
//! (`GET /events?since=&limit=`, see [`crate::record::EventsView::page`]), `GET /faults` and
//! `GET /settings`, and posts to `POST /faults`, `POST /settings` and `POST /reset`, exactly as a
//! script would. Every value from a client is written into the page as text, never as markup.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The page, as served.
pub const PAGE: &str = include_str!("viewer.html");

/// Only what the page itself contains may run or load, and it may talk only to this port.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// `GET /`: the page, never cached (a new server may serve a newer one on the same port).
pub async fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        PAGE,
    )
        .into_response()
}
