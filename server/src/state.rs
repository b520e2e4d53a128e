//! Shared mutable state behind one lock. Critical sections are short and never await.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

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
    inner: Mutex<Inner>,
}

pub struct Inner {
    /// Keyed by token id.
    pub tokens: HashMap<String, Token>,
    pub recorder: Recorder,
    pub idempotency: IdempotencyStore,
    pub faults: Faults,
    pub limiter: RateLimiter,
    /// Event ids keep counting across resets, so an id is never reused within one run.
    pub next_event_id: u64,
}

impl State {
    pub fn new(config: &Config) -> Self {
        State {
            max_body: config.max_body,
            log_requests: config.log_requests,
            base_rate_limit: config.rate_limit,
            inner: Mutex::new(Inner {
                tokens: token_map(config.tokens.iter().cloned()),
                recorder: Recorder::default(),
                idempotency: IdempotencyStore::default(),
                faults: Faults::default(),
                limiter: RateLimiter::new(config.rate_limit),
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
