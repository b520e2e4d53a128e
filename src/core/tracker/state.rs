//! The tracker's own bookkeeping between commands: the calls that wait their turn, the call
//! `beforeSend` is looking at, and how far the start is.

use super::protocol::{Found, ProfileChange, Reply, TrackCall};
use crate::core::profile::Profile;

/// A call that waits its turn (see the module documentation).
#[derive(Debug)]
pub(super) enum WaitingCall {
    /// `hooked`: `beforeSend` is still to see it (decided when the call is made: calls made
    /// while the hook runs are not passed to it again, so a hook that tracks cannot loop).
    Track {
        call: TrackCall,
        hooked: bool,
        reply: Option<Reply>,
    },
    Profile(ProfileChange, Reply),
    /// `identify`: the profile change and its `$identify` event, which stand or fall together
    /// (an event that cannot be stored changes nothing).
    Identify {
        user_id: String,
        call: TrackCall,
        hooked: bool,
        reply: Reply,
    },
    Consent {
        enabled: bool,
        purge: bool,
        reply: Reply,
    },
}

/// The call `beforeSend` is looking at.
#[derive(Debug)]
pub(super) struct HookWait {
    pub(super) call: TrackCall,
    pub(super) reply: Option<Reply>,
    /// For `identify`: the profile before it, restored if the event cannot be stored.
    pub(super) profile_before: Option<Profile>,
}

/// What the start read from storage.
#[derive(Debug)]
pub(super) enum Loaded {
    /// The stored index (`None`: nothing stored); the segments it names are read afterwards.
    Stored(Option<String>),
    /// The index could not be read: the queue was rebuilt from every stored segment.
    Rebuilt,
}

/// How far the start is.
#[derive(Debug, Default)]
pub(super) struct StartState {
    /// `chrome.storage.session`'s answer, once it came (`Some(None)`: unreadable).
    pub(super) session: Option<Option<Found>>,
    pub(super) os: Option<Option<String>>,
    /// The stored queue's answer, once it came.
    pub(super) stored: Option<Result<Loaded, String>>,
    /// The session and the platform were taken into the context (the first start only).
    pub(super) context_read: bool,
    /// Start reads that failed so far (each tried again after a longer wait).
    pub(super) failures: u32,
    /// Other code cleared `chrome.storage.session` while starting: a missing marker of the
    /// browser run means that, not a browser start.
    pub(super) session_cleared: bool,
    /// The index read at start, against which orphan segments are judged.
    pub(super) index: Option<String>,
    /// The stored segment keys, when the start listed them (an index without a checksum, or
    /// none): the orphans are judged from them, with no second listing.
    pub(super) listed: Option<Vec<String>>,
    /// Segment keys being read, and the reads of them that failed in a row.
    pub(super) segment_keys: usize,
    pub(super) segment_failures: u32,
}
