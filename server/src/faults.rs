//! Scripted misbehaviour for the API port. Every fault is a count or a fixed delay, never a
//! probability, so end-to-end tests are deterministic.

use std::collections::BTreeMap;

use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::config::RateLimit;

/// Upper bound for `latency_ms`, so a typo cannot wedge a test run.
pub const MAX_LATENCY_MS: u64 = 60_000;

/// A response to inject instead of processing the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Injected {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailNext {
    pub count: u32,
    #[serde(flatten)]
    pub response: Injected,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailEvent {
    pub event_name: String,
    /// `None` means until cleared.
    pub count: Option<u32>,
    #[serde(flatten)]
    pub response: Injected,
}

/// `reset_event`: drop the connection of a valid request carrying this event name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetEvent {
    pub event_name: String,
    /// `None` means until cleared.
    pub count: Option<u32>,
}

/// `redirect_next`: answer the next `count` track requests with a 3xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedirectNext {
    pub count: u32,
    pub status: u16,
    /// `None`: the request's own path with `/moved` appended.
    pub location: Option<String>,
}

/// The redirect statuses `redirect_next` accepts.
pub const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// What a track request's connection should suffer before any response is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionFault {
    /// Drop the TCP connection without a response.
    Reset,
    /// Send nothing until the client gives up (bounded server-side).
    Hang,
}

/// Which injected fault touched a request, as the request log and `faults_injected` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `reset_next`: connection dropped, nothing processed.
    Reset,
    /// `hang_next`: never answered, nothing processed.
    Hang,
    /// `store_then_reset_next`: stored like a success, then the connection dropped.
    StoreThenReset,
    /// `fail_next`: an injected error response, nothing stored.
    FailNext,
    /// `fail_event`: an injected error response for that event name, nothing stored.
    FailEvent,
    /// `latency_ms`: answered late, otherwise unaffected.
    Latency,
    /// `reset_event`: a valid request with that event name had its connection dropped,
    /// nothing stored.
    ResetEvent,
    /// `redirect_next`: answered with a 3xx and a `Location`, nothing stored.
    Redirect,
    /// `stall_body_next`: stored like a success; the 200's body was never finished.
    StallBody,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Reset,
        FaultKind::Hang,
        FaultKind::StoreThenReset,
        FaultKind::FailNext,
        FaultKind::FailEvent,
        FaultKind::Latency,
        FaultKind::ResetEvent,
        FaultKind::Redirect,
        FaultKind::StallBody,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Reset => "reset",
            FaultKind::Hang => "hang",
            FaultKind::StoreThenReset => "store_then_reset",
            FaultKind::FailNext => "fail_next",
            FaultKind::FailEvent => "fail_event",
            FaultKind::Latency => "latency",
            FaultKind::ResetEvent => "reset_event",
            FaultKind::Redirect => "redirect",
            FaultKind::StallBody => "stall_body",
        }
    }

    /// Whether the client gets no response at all. (`stall_body` sends the status line and
    /// headers, so it is not one of these.)
    pub fn drops_response(self) -> bool {
        matches!(
            self,
            FaultKind::Reset | FaultKind::Hang | FaultKind::StoreThenReset | FaultKind::ResetEvent
        )
    }
}

/// Faults that live in shared state. `down` and `rate_limit` are owned elsewhere (the listener
/// and the limiter) and only reported alongside these.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faults {
    pub fail_next: Option<FailNext>,
    pub fail_event: BTreeMap<String, FailEvent>,
    pub latency_ms: u64,
    pub reset_next: u32,
    pub hang_next: u32,
    pub store_then_reset_next: u32,
    pub reset_event: BTreeMap<String, ResetEvent>,
    pub redirect_next: Option<RedirectNext>,
    pub stall_body_next: u32,
}

impl Faults {
    pub fn take_connection_fault(&mut self) -> Option<ConnectionFault> {
        if take_one(&mut self.reset_next) {
            Some(ConnectionFault::Reset)
        } else if take_one(&mut self.hang_next) {
            Some(ConnectionFault::Hang)
        } else {
            None
        }
    }

    /// Whether a connection fault is armed; responses then close their connection, so the
    /// faulted request arrives on a fresh one (browsers silently resend a request whose reused
    /// keep-alive connection dies, which would hide the fault from the code under test).
    pub fn connection_faults_armed(&self) -> bool {
        self.reset_next > 0
            || self.hang_next > 0
            || self.store_then_reset_next > 0
            || !self.reset_event.is_empty()
    }

    /// Called once a request's event has been stored: whether to drop its response.
    pub fn take_store_then_reset(&mut self) -> bool {
        take_one(&mut self.store_then_reset_next)
    }

    /// Called once a request's event has been stored (and not claimed by
    /// `store_then_reset`): whether to stall its response body.
    pub fn take_stall_body(&mut self) -> bool {
        take_one(&mut self.stall_body_next)
    }

    /// Called for a valid request: whether to drop its connection because of its event name.
    pub fn take_reset_event(&mut self, event_name: &str) -> bool {
        let Some(f) = self.reset_event.get_mut(event_name) else {
            return false;
        };
        if let Some(n) = f.count.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.reset_event.remove(event_name);
            }
        }
        true
    }

    /// The status and `Location` (`None`: the default) of the next redirect, if one is armed.
    pub fn take_redirect(&mut self) -> Option<(u16, Option<String>)> {
        let f = self.redirect_next.as_mut()?;
        let taken = (f.status, f.location.clone());
        f.count = f.count.saturating_sub(1);
        if f.count == 0 {
            self.redirect_next = None;
        }
        Some(taken)
    }

    pub fn take_fail_next(&mut self) -> Option<Injected> {
        let f = self.fail_next.as_mut()?;
        let response = f.response.clone();
        f.count = f.count.saturating_sub(1);
        if f.count == 0 {
            self.fail_next = None;
        }
        Some(response)
    }

    pub fn take_fail_event(&mut self, event_name: &str) -> Option<Injected> {
        let f = self.fail_event.get_mut(event_name)?;
        let response = f.response.clone();
        if let Some(n) = f.count.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.fail_event.remove(event_name);
            }
        }
        Some(response)
    }

    /// Applies a validated request; `clear` goes first so `{"clear":true,...}` means "only these".
    pub fn apply(&mut self, req: &FaultRequest) {
        if req.clear == Some(true) {
            *self = Faults::default();
        }
        if let Some(spec) = &req.fail_next {
            self.fail_next = (spec.count > 0).then(|| FailNext {
                count: spec.count,
                response: spec.injected(),
            });
        }
        for spec in req.fail_event.iter().flat_map(OneOrMany::as_slice) {
            if spec.count == Some(0) {
                self.fail_event.remove(&spec.event_name);
            } else {
                self.fail_event.insert(
                    spec.event_name.clone(),
                    FailEvent {
                        event_name: spec.event_name.clone(),
                        count: spec.count,
                        response: spec.injected(),
                    },
                );
            }
        }
        if let Some(ms) = req.latency_ms {
            self.latency_ms = ms;
        }
        if let Some(n) = req.reset_next {
            self.reset_next = n;
        }
        if let Some(n) = req.hang_next {
            self.hang_next = n;
        }
        if let Some(n) = req.store_then_reset_next {
            self.store_then_reset_next = n;
        }
        for spec in req.reset_event.iter().flat_map(OneOrMany::as_slice) {
            if spec.count == Some(0) {
                self.reset_event.remove(&spec.event_name);
            } else {
                self.reset_event.insert(
                    spec.event_name.clone(),
                    ResetEvent {
                        event_name: spec.event_name.clone(),
                        count: spec.count,
                    },
                );
            }
        }
        if let Some(spec) = &req.redirect_next {
            self.redirect_next = (spec.count > 0).then(|| RedirectNext {
                count: spec.count,
                status: spec.status,
                location: spec.location.clone(),
            });
        }
        if let Some(n) = req.stall_body_next {
            self.stall_body_next = n;
        }
    }
}

fn take_one(n: &mut u32) -> bool {
    if *n > 0 {
        *n -= 1;
        true
    } else {
        false
    }
}

/// The body of `POST /faults`: any combination of fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    pub fail_next: Option<FailNextSpec>,
    pub fail_event: Option<OneOrMany<FailEventSpec>>,
    pub latency_ms: Option<u64>,
    pub reset_next: Option<u32>,
    pub hang_next: Option<u32>,
    pub store_then_reset_next: Option<u32>,
    pub reset_event: Option<OneOrMany<ResetEventSpec>>,
    pub redirect_next: Option<RedirectSpec>,
    pub stall_body_next: Option<u32>,
    pub down: Option<bool>,
    /// Absent: unchanged; `null`: no limit; object: new limit.
    #[serde(default, deserialize_with = "present")]
    pub rate_limit: Option<Option<RateLimit>>,
    pub clear: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(t) => std::slice::from_ref(t),
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailNextSpec {
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default = "service_unavailable")]
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailEventSpec {
    pub event_name: String,
    #[serde(default = "unprocessable")]
    pub status: u16,
    #[serde(default)]
    pub count: Option<u32>,
    pub retry_after: Option<String>,
    pub body: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetEventSpec {
    pub event_name: String,
    #[serde(default)]
    pub count: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectSpec {
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default = "temporary_redirect")]
    pub status: u16,
    pub location: Option<String>,
}

fn one() -> u32 {
    1
}
fn service_unavailable() -> u16 {
    503
}
fn unprocessable() -> u16 {
    422
}
fn temporary_redirect() -> u16 {
    307
}

/// Distinguishes an explicit `null` from an absent field.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl FailNextSpec {
    fn injected(&self) -> Injected {
        Injected {
            status: self.status,
            retry_after: self.retry_after.clone(),
            body: self.body.clone(),
        }
    }
}

impl FailEventSpec {
    fn injected(&self) -> Injected {
        Injected {
            status: self.status,
            retry_after: self.retry_after.clone(),
            body: self.body.clone(),
        }
    }
}

impl FaultRequest {
    /// Rejects values the API port could not honour, before anything is applied.
    pub fn validate(&self) -> Result<(), String> {
        let check = |what: &str, status: u16, retry_after: &Option<String>| -> Result<(), String> {
            if !(200..=599).contains(&status) || StatusCode::from_u16(status).is_err() {
                return Err(format!(
                    "{what}.status must be an HTTP status from 200 to 599"
                ));
            }
            if let Some(v) = retry_after {
                HeaderValue::from_str(v)
                    .map_err(|_| format!("{what}.retry_after is not a valid header value"))?;
            }
            Ok(())
        };
        if let Some(f) = &self.fail_next {
            check("fail_next", f.status, &f.retry_after)?;
        }
        for f in self.fail_event.iter().flat_map(OneOrMany::as_slice) {
            if f.event_name.is_empty() {
                return Err("fail_event.event_name must be non-empty".into());
            }
            check("fail_event", f.status, &f.retry_after)?;
        }
        for f in self.reset_event.iter().flat_map(OneOrMany::as_slice) {
            if f.event_name.is_empty() {
                return Err("reset_event.event_name must be non-empty".into());
            }
        }
        if let Some(r) = &self.redirect_next {
            if !REDIRECT_STATUSES.contains(&r.status) {
                return Err("redirect_next.status must be 301, 302, 303, 307 or 308".into());
            }
            if let Some(location) = &r.location {
                if location.is_empty() || HeaderValue::from_str(location).is_err() {
                    return Err(
                        "redirect_next.location must be a non-empty, valid header value".into(),
                    );
                }
            }
        }
        if self.latency_ms.is_some_and(|ms| ms > MAX_LATENCY_MS) {
            return Err(format!("latency_ms must be at most {MAX_LATENCY_MS}"));
        }
        if let Some(Some(rl)) = self.rate_limit {
            if rl.limit == 0 || rl.window_secs == 0 {
                return Err("rate_limit.limit and rate_limit.window_secs must be positive".into());
            }
        }
        Ok(())
    }

    /// Whether this request arms a connection-level fault.
    pub fn arms_connection_fault(&self) -> bool {
        [self.reset_next, self.hang_next, self.store_then_reset_next]
            .iter()
            .any(|n| n.is_some_and(|n| n > 0))
            || self
                .reset_event
                .iter()
                .flat_map(OneOrMany::as_slice)
                .any(|f| f.count != Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> FaultRequest {
        serde_json::from_str(json).expect("valid fault request")
    }

    #[test]
    fn fail_next_counts_down() {
        let mut f = Faults::default();
        f.apply(&req(r#"{"fail_next":{"count":2,"status":500}}"#));
        assert_eq!(f.take_fail_next().map(|i| i.status), Some(500));
        assert_eq!(f.take_fail_next().map(|i| i.status), Some(500));
        assert_eq!(f.take_fail_next(), None);
    }

    #[test]
    fn fail_event_forever_until_cleared() {
        let mut f = Faults::default();
        f.apply(&req(r#"{"fail_event":{"event_name":"x","count":null}}"#));
        for _ in 0..5 {
            assert_eq!(f.take_fail_event("x").map(|i| i.status), Some(422));
        }
        assert_eq!(f.take_fail_event("y"), None);
        f.apply(&req(r#"{"clear":true}"#));
        assert_eq!(f.take_fail_event("x"), None);
    }

    #[test]
    fn store_then_reset_counts_down_and_closes_connections() {
        let mut f = Faults::default();
        let r = req(r#"{"store_then_reset_next":2}"#);
        assert!(r.arms_connection_fault());
        f.apply(&r);
        assert!(f.connection_faults_armed());
        assert_eq!(
            f.take_connection_fault(),
            None,
            "not a pre-processing fault"
        );
        assert!(f.take_store_then_reset());
        assert!(f.take_store_then_reset());
        assert!(!f.take_store_then_reset());
        assert!(!f.connection_faults_armed());
    }

    #[test]
    fn reset_event_by_name_counted_or_forever_and_closes_connections() {
        let mut f = Faults::default();
        let r = req(
            r#"{"reset_event":[{"event_name":"x","count":null},{"event_name":"y","count":1}]}"#,
        );
        assert!(r.arms_connection_fault());
        f.apply(&r);
        assert!(f.connection_faults_armed());
        assert_eq!(f.take_connection_fault(), None, "chosen by event name");
        assert!(f.take_reset_event("y"));
        assert!(!f.take_reset_event("y"));
        for _ in 0..3 {
            assert!(f.take_reset_event("x"));
        }
        assert!(!f.take_reset_event("z"));
        let r = req(r#"{"reset_event":{"event_name":"x","count":0}}"#);
        assert!(!r.arms_connection_fault());
        f.apply(&r);
        assert!(!f.take_reset_event("x"));
        assert!(!f.connection_faults_armed());
    }

    #[test]
    fn redirect_defaults_and_counts_down() {
        let mut f = Faults::default();
        let r = req(r#"{"redirect_next":{}}"#);
        assert!(!r.arms_connection_fault());
        f.apply(&r);
        assert_eq!(f.take_redirect(), Some((307, None)));
        assert_eq!(f.take_redirect(), None);
        f.apply(&req(
            r#"{"redirect_next":{"count":2,"status":301,"location":"http://h/x"}}"#,
        ));
        let expected = Some((301, Some("http://h/x".to_string())));
        assert_eq!(f.take_redirect(), expected);
        assert_eq!(f.take_redirect(), expected);
        assert_eq!(f.take_redirect(), None);
        f.apply(&req(r#"{"redirect_next":{"count":3}}"#));
        f.apply(&req(r#"{"redirect_next":{"count":0}}"#));
        assert_eq!(f.take_redirect(), None, "count 0 disarms");
    }

    #[test]
    fn stall_body_counts_down_without_closing_connections() {
        let mut f = Faults::default();
        let r = req(r#"{"stall_body_next":2}"#);
        assert!(!r.arms_connection_fault());
        f.apply(&r);
        assert!(!f.connection_faults_armed());
        assert!(f.take_stall_body());
        assert!(f.take_stall_body());
        assert!(!f.take_stall_body());
    }

    #[test]
    fn rate_limit_null_differs_from_absent() {
        assert_eq!(req(r#"{"rate_limit":null}"#).rate_limit, Some(None));
        assert_eq!(req(r#"{}"#).rate_limit, None);
    }

    #[test]
    fn validation_rejects_nonsense() {
        assert!(req(r#"{"fail_next":{"status":99}}"#).validate().is_err());
        assert!(req(r#"{"fail_next":{"retry_after":"a\nb"}}"#)
            .validate()
            .is_err());
        assert!(req(r#"{"latency_ms":999999}"#).validate().is_err());
        for bad in [
            r#"{"redirect_next":{"status":200}}"#,
            r#"{"redirect_next":{"status":304}}"#,
            r#"{"redirect_next":{"location":""}}"#,
            r#"{"redirect_next":{"location":"a\nb"}}"#,
            r#"{"reset_event":{"event_name":""}}"#,
        ] {
            assert!(req(bad).validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<FaultRequest>(r#"{"redirect_next":{"x":1}}"#).is_err());
        assert!(serde_json::from_str::<FaultRequest>(r#"{"bogus":1}"#).is_err());
    }
}
