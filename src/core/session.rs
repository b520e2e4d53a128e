//! Sessions: `$session_id` on every event.
//!
//! The rule: a session ends after `sessionTimeoutMs` without user activity, and when the browser
//! closes (its state lives in `chrome.storage.session`, which survives the worker and is gone
//! when the browser closes). Events from the extension's pages and content scripts (through
//! `/client`) are user activity: they extend the session. Events the background tracks itself
//! join the current session without extending it, so a background timer cannot keep a session
//! alive for days; when the session has expired, such an event starts a new one (which it does
//! not extend either). `reset()` ends the session.

use super::event::{new_event_id, Rng};

/// Key of the session record in `chrome.storage.session`.
pub const SESSION_KEY: &str = "inhouse:v1:session";

/// One session: its id (a UUIDv7 of its start), when it started and when the user last acted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub started_at: u64,
    pub last_activity: u64,
}

impl Session {
    /// `id started_at last_activity`, as [`Session::encode`] writes it; `None` for anything else.
    pub fn decode(text: &str) -> Option<Session> {
        let mut words = text.split_ascii_whitespace();
        let id = words.next()?;
        let started_at = words.next()?.parse().ok()?;
        let last_activity = words.next()?.parse().ok()?;
        let valid = words.next().is_none() && super::event::is_uuid(id) && started_at <= last_activity;
        valid.then(|| Session { id: id.into(), started_at, last_activity })
    }

    /// The stored text.
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.id, self.started_at, self.last_activity)
    }
}

/// Whether an event is the user's doing (it extends the session) or the background's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// From an extension page or a content script.
    User,
    /// Tracked by the background itself.
    Background,
}

/// The current session and the rule that ends it.
#[derive(Debug)]
pub struct Sessions {
    current: Option<Session>,
    timeout_ms: u64,
    /// Changed since it was last handed out to be stored.
    dirty: bool,
}

impl Sessions {
    /// No session yet; `timeout_ms` of inactivity ends one.
    pub fn new(timeout_ms: u64) -> Sessions {
        Sessions { current: None, timeout_ms, dirty: false }
    }

    /// The session read from `chrome.storage.session` at start (`None`: the browser just
    /// started, or there was none).
    pub fn adopt(&mut self, stored: Option<&str>) {
        self.current = stored.and_then(Session::decode);
    }

    /// The session an event tracked at `now` belongs to: the current one while it lasts, or a
    /// new one. User activity extends it.
    pub fn join(&mut self, now: u64, activity: Activity, rng: &mut Rng) -> &str {
        // A clock set back counts as no time passed.
        let live = self.current.as_ref().is_some_and(|s| now.saturating_sub(s.last_activity) < self.timeout_ms);
        if !live {
            self.current = Some(Session { id: new_event_id(now, rng), started_at: now, last_activity: now });
            self.dirty = true;
        }
        let Some(session) = self.current.as_mut() else { return "" };
        if activity == Activity::User && now > session.last_activity {
            session.last_activity = now;
            self.dirty = true;
        }
        &session.id
    }

    /// Ends the session (`reset()`): the next event starts a new one.
    pub fn end(&mut self) {
        self.current = None;
        self.dirty = true;
    }

    /// The session an event at `now` would join without starting a new one, if any.
    pub fn live(&self, now: u64) -> Option<&Session> {
        self.current.as_ref().filter(|s| now.saturating_sub(s.last_activity) < self.timeout_ms)
    }

    /// Other code removed it from storage: it is stored again with the next change check.
    pub fn unstored(&mut self) {
        self.dirty = true;
    }

    /// Whether it changed since it was last handed out to be stored.
    pub fn changed(&self) -> bool {
        self.dirty
    }

    /// The text to store, when it changed since the last call (`""` once the session ended).
    pub fn take_changed(&mut self) -> Option<String> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        Some(self.current.as_ref().map(Session::encode).unwrap_or_default())
    }
}
