//! Shared mutable state behind one lock. Critical sections are short and never await.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::config::{Config, RateLimit, Token};
use crate::faults::Faults;
use crate::idempotency::IdempotencyStore;
use crate::ratelimit::RateLimiter;
use crate::record::Recorder;

pub struct State {
    pub max_body: usize,
    pub log_requests: bool,
    /// The configured limit, restored by `/reset` and `{"clear":true}`.
    pub base_rate_limit: Option<RateLimit>,
    /// The command line's settings, restored by `/reset` (not by `{"clear":true}`).
    pub base_settings: Settings,
    inner: Mutex<Inner>,
}

/// Behaviour switches changeable at run time (`GET`/`POST /settings`). Not faults: clearing
/// faults leaves them alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Honour `Idempotency-Key`. Off: keys are neither checked nor remembered, so every valid
    /// request is stored.
    pub idempotency: bool,
}

/// The body of `POST /settings`: absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsRequest {
    pub idempotency: Option<bool>,
}

impl Settings {
    pub fn apply(&mut self, req: &SettingsRequest) {
        if let Some(on) = req.idempotency {
            self.idempotency = on;
        }
    }
}

pub struct Inner {
    /// Keyed by token id.
    pub tokens: HashMap<String, Token>,
    pub recorder: Recorder,
    pub idempotency: IdempotencyStore,
    pub faults: Faults,
    pub limiter: RateLimiter,
    pub settings: Settings,
    /// Event ids keep counting across resets, so an id is never reused within one run.
    pub next_event_id: u64,
}

impl State {
    pub fn new(config: &Config) -> Self {
        let settings = Settings {
            idempotency: config.idempotency,
        };
        State {
            max_body: config.max_body,
            log_requests: config.log_requests,
            base_rate_limit: config.rate_limit,
            base_settings: settings,
            inner: Mutex::new(Inner {
                tokens: token_map(config.tokens.iter().cloned()),
                recorder: Recorder::default(),
                idempotency: IdempotencyStore::default(),
                faults: Faults::default(),
                limiter: RateLimiter::new(config.rate_limit),
                settings,
                next_event_id: 0,
            }),
        }
    }

    /// Locks the state. A panic elsewhere must not take the server down with it, so poisoning
    /// is ignored: every mutation leaves the state consistent.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// Clears faults and puts the rate limit back to its configured value.
    pub fn clear_faults(&mut self, base_rate_limit: Option<RateLimit>) {
        self.faults = Faults::default();
        self.limiter.set(base_rate_limit);
    }

    pub fn replace_tokens(&mut self, tokens: Vec<Token>) {
        self.tokens = token_map(tokens);
    }

    /// Tokens sorted by id, for stable listings.
    pub fn tokens_sorted(&self) -> Vec<&Token> {
        let mut v: Vec<&Token> = self.tokens.values().collect();
        v.sort_by(|a, b| a.token_id.cmp(&b.token_id));
        v
    }
}

fn token_map(tokens: impl IntoIterator<Item = Token>) -> HashMap<String, Token> {
    tokens
        .into_iter()
        .map(|t| (t.token_id.clone(), t))
        .collect()
}
