//! Per-token fixed-window rate limiting.

use std::collections::HashMap;

use crate::config::RateLimit;

/// What the `X-RateLimit-*` headers report, and whether this request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Unix epoch seconds at which the current window ends (rounded up).
    pub reset_epoch_secs: u64,
    /// Whole seconds until the window ends, at least 1.
    pub retry_after_secs: u64,
    pub exceeded: bool,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: u64,
    count: u32,
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    config: Option<RateLimit>,
    /// Keyed by token id; only authenticated ids get a bucket, so this stays small.
    windows: HashMap<String, Window>,
}

impl RateLimiter {
    pub fn new(config: Option<RateLimit>) -> Self {
        RateLimiter {
            config,
            windows: HashMap::new(),
        }
    }

    pub fn config(&self) -> Option<RateLimit> {
        self.config
    }

    /// Replaces the limit and forgets all windows, so a new limit starts from a clean slate.
    pub fn set(&mut self, config: Option<RateLimit>) {
        self.config = config;
        self.windows.clear();
    }

    /// Counts one request against `key`. `None` when no limit is configured.
    pub fn hit(&mut self, key: &str, now_ms: u64) -> Option<RateInfo> {
        let cfg = self.config?;
        let window_ms = cfg.window_secs.saturating_mul(1000);
        let w = self.windows.entry(key.to_string()).or_insert(Window {
            start_ms: now_ms,
            count: 0,
        });
        if now_ms >= w.start_ms.saturating_add(window_ms) {
            *w = Window {
                start_ms: now_ms,
                count: 0,
            };
        }
        let exceeded = w.count >= cfg.limit;
        if !exceeded {
            w.count += 1;
        }
        Some(info(cfg, *w, now_ms, exceeded))
    }

    /// The header values for `key` without counting a request (for responses that were refused
    /// before the limiter was consulted).
    pub fn peek(&self, key: Option<&str>, now_ms: u64) -> Option<RateInfo> {
        let cfg = self.config?;
        let window_ms = cfg.window_secs.saturating_mul(1000);
        let w = key
            .and_then(|k| self.windows.get(k))
            .copied()
            .filter(|w| now_ms < w.start_ms.saturating_add(window_ms))
            .unwrap_or(Window {
                start_ms: now_ms,
                count: 0,
            });
        Some(info(cfg, w, now_ms, false))
    }
}

fn info(cfg: RateLimit, w: Window, now_ms: u64, exceeded: bool) -> RateInfo {
    let reset_ms = w
        .start_ms
        .saturating_add(cfg.window_secs.saturating_mul(1000));
    RateInfo {
        limit: cfg.limit,
        remaining: cfg.limit.saturating_sub(w.count),
        reset_epoch_secs: reset_ms.div_ceil(1000),
        retry_after_secs: reset_ms.saturating_sub(now_ms).div_ceil(1000).max(1),
        exceeded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_counts_and_resets() {
        let mut rl = RateLimiter::new(Some(RateLimit {
            limit: 2,
            window_secs: 10,
        }));
        let t = 1_000_000;
        assert_eq!(
            rl.hit("a", t).map(|i| (i.remaining, i.exceeded)),
            Some((1, false))
        );
        assert_eq!(
            rl.hit("a", t + 1).map(|i| (i.remaining, i.exceeded)),
            Some((0, false))
        );
        let over = rl.hit("a", t + 2_500).expect("limited");
        assert!(over.exceeded);
        assert_eq!(over.retry_after_secs, 8);
        assert_eq!(over.reset_epoch_secs, 1_010);
        // Other tokens have their own window.
        assert!(!rl.hit("b", t + 3).expect("limited").exceeded);
        // A new window starts once the old one ends.
        assert!(!rl.hit("a", t + 10_000).expect("limited").exceeded);
        assert_eq!(rl.peek(Some("zzz"), t).map(|i| i.remaining), Some(2));
    }

    #[test]
    fn unlimited_reports_nothing() {
        let mut rl = RateLimiter::default();
        assert!(rl.hit("a", 0).is_none());
        assert!(rl.peek(None, 0).is_none());
    }
}
