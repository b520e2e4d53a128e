//! The delivery gate's states and timings (what `delivery.rs` decides with them).

/// While the server refuses the credentials, one probe this often (nothing is dropped meanwhile).
pub const PAUSE_PROBE_MS: u64 = 10 * 60_000;

/// While `navigator.onLine` is false, look again this often.
pub const OFFLINE_RECHECK_MS: u64 = 5_000;

/// An event is dropped as `undeliverable` after `retry.maxAttempts` network failures charged to
/// it, and never fewer than this: one reset connection must not drop an event, even with
/// `maxAttempts: 1`.
pub const NETWORK_CHARGES_MIN: u32 = 10;

/// Network errors back off no longer than this, so delivery resumes soon after the network does.
pub const NETWORK_BACKOFF_CAP_MS: u64 = 60_000;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Gate {
    Open,
    /// `server`: the server asked for the wait (5xx, 429); otherwise the network failed.
    Backoff {
        until: u64,
        server: bool,
    },
    Offline,
    Paused {
        probe_at: u64,
    },
}
