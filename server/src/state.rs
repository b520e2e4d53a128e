//! Shared mutable state behind one lock. Critical sections are short and never await.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, RateLimit, Token};
use crate::db::{Db, Loaded, Op};
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
    /// Both ports close a connection whose request head takes longer than this.
    pub header_read_timeout: Duration,
    /// `--db`: changes to mirror, sent under the lock so the file sees them in order.
    pub db: Option<Db>,
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
    /// `db` and `loaded` come from [`Db::open`] with `--db`: what the file held is put back
    /// (within the caps; what does not fit is deleted from the file too).
    pub fn new(config: &Config, db: Option<Db>, loaded: Option<Loaded>) -> Self {
        let settings = Settings {
            idempotency: config.idempotency,
        };
        let limits = config.memory_limits();
        let mut inner = Inner {
            tokens: token_map(config.tokens.iter().cloned()),
            recorder: Recorder::new(limits),
            idempotency: IdempotencyStore::new(limits.idempotency),
            faults: Faults::default(),
            limiter: RateLimiter::new(config.rate_limit),
            settings,
            next_event_id: 0,
        };
        if let Some(loaded) = loaded {
            inner.next_event_id = loaded.last_event_id;
            let dropped = inner.recorder.restore(loaded.events, loaded.dropped_oldest);
            let mut forgotten = Vec::new();
            for (token_id, key, record) in loaded.remembered {
                forgotten.extend(inner.idempotency.remember(&token_id, &key, record));
            }
            if let Some(db) = &db {
                if let (true, Some(first_seq)) = (dropped > 0, inner.recorder.first_seq()) {
                    db.send(Op::DropEventsBefore {
                        first_seq,
                        dropped_oldest: inner.recorder.dropped_oldest(),
                    });
                }
                if !forgotten.is_empty() {
                    db.send(Op::Forget(forgotten));
                }
            }
        }
        State {
            max_body: config.max_body,
            log_requests: config.log_requests,
            base_rate_limit: config.rate_limit,
            base_settings: settings,
            header_read_timeout: config.header_read_timeout,
            db,
            inner: Mutex::new(inner),
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
