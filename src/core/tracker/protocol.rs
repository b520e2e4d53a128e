//! What the tracker and its shell say to each other: the commands it takes, the effects it asks
//! for, and the values they carry (see the table in the module documentation of `tracker`).

use crate::core::config::Credentials;
use crate::core::engine::{Dropped, FlushStatus, IndexState, Send, SlotRef, WritePlan};
use crate::core::error::Error;
use crate::core::event::{EventName, Props};
use crate::core::exception::Thrown;
use crate::core::origin::{Extension, ExtensionPages, Origin, Sender};
use crate::core::policy::Verdict;
use std::rc::Rc;

/// The browser's minimum alarm delay for packed extensions.
pub const MIN_ALARM_DELAY_MS: u64 = 30_000;
/// How often a long wait checks that its alarm still exists: the worker lives 30 s after its
/// last event, so a check every 20 s sees a cleared alarm before the worker stops.
pub const ALARM_CHECK_MS: u64 = 20_000;

/// A `track` call: what it was called with, where from, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackCall {
    pub name: EventName,
    pub props: Props,
    pub dedup_key: Option<String>,
    pub origin: Origin,
    pub at: u64,
}

/// A change of the profile.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileChange {
    Register(Props),
    Unregister(String),
    /// Forgets the user and the super properties and ends the session.
    Reset,
}

/// What the shell found out about where the tracker runs, once, before creating it.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `runtime.id` and the origin of the extension's own pages (the app id and a
    /// `chrome-extension://` origin where there is no extension: a test page).
    pub extension: Extension,
    pub extension_version: Option<String>,
    pub pages: ExtensionPages,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub locale: Option<String>,
    /// The customer gave a `beforeSend` hook.
    pub before_send: bool,
}

/// Which promise an answer settles: a number the shell chose when it made the promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reply(pub u64);

/// How a promise settles.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A track call's `{id, status}`: `queued`, `deduplicated`, `disabled`, `evicted`,
    /// `sampled` or `filtered`.
    Track { id: String, status: &'static str },
    /// Resolves with nothing (a stored setting, `ready`, `shutdown`).
    Done,
    /// Resolves with `null` (an exception that is not this extension's, or throttled).
    Nothing,
    /// `flush()`'s answer.
    Flushed(FlushStatus),
    /// Rejects with this error.
    Failed(Error),
}

/// Why the tracker asks storage for keys (the answer says it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFor {
    /// The start: the index, the install id, the profile, the lifecycle record.
    Start,
    /// The index cannot be trusted (what was found under its key): every segment, to rebuild
    /// the queue from.
    Rebuild(IndexState),
    /// Stored segments read after the start, oldest first.
    Segments,
}

/// Why the tracker asks for the stored segments' keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFor {
    /// The start, when the index is not a checked one (absent, unchecked or unreadable): it is
    /// trusted only if it accounts for every stored segment, else the queue is rebuilt.
    Start(IndexState),
    /// Segments a crash left behind, to remove once the queue is read.
    Orphans,
}

/// One value storage returned: its text, or whether anything else is stored under the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValue {
    pub key: String,
    pub text: Option<String>,
    pub present: bool,
}

/// What a `get` returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found(pub Vec<StoredValue>);

impl Found {
    /// The text under `key`, if one is stored there.
    pub fn text(&self, key: &str) -> Option<String> {
        self.0.iter().find(|v| v.key == key).and_then(|v| v.text.clone())
    }

    /// Whether anything at all is stored under `key`.
    pub fn present(&self, key: &str) -> bool {
        self.0.iter().any(|v| v.key == key && v.present)
    }

    /// Takes the text under `key` (each segment's text is moved, not copied).
    pub fn take(&mut self, key: &str) -> Option<String> {
        self.0.iter_mut().find(|v| v.key == key).and_then(|v| v.text.take())
    }
}

/// Where and how every request is sent; changes only with the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub credentials: Credentials,
    pub app_id: String,
    pub timeout_ms: u32,
}

/// What the shell is given to do (or answer to).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `track` (also `page` and `captureException`, which the tracker makes into one):
    /// `from` is the relayed call's `sender` (`None`: the background).
    Track {
        call: TrackCall,
        from: Option<Sender>,
        reply: Reply,
    },
    /// A `$pageview`: the page's `name` and `title` beside `props`.
    Page {
        name: Option<String>,
        title: Option<String>,
        props: Props,
        from: Option<Sender>,
        at: u64,
        reply: Reply,
    },
    /// A `$exception`, unless it is not this extension's or is throttled.
    Exception {
        thrown: Thrown,
        props: Props,
        from: Option<Sender>,
        at: u64,
        reply: Reply,
    },
    /// `identify(userId, traits)`.
    Identify {
        user_id: String,
        traits: Props,
        from: Option<Sender>,
        at: u64,
        reply: Reply,
    },
    /// `register`, `unregister`, `reset`.
    Profile {
        change: ProfileChange,
        reply: Reply,
    },
    SetEnabled {
        enabled: bool,
        purge: bool,
        reply: Reply,
    },
    SetCredentials(Credentials),
    /// `retry_now`: a wait caused by network errors ends now (an explicit flush in the
    /// background; a relayed one does not, so a page cannot turn an outage into a request
    /// per call).
    Flush {
        retry_now: bool,
        reply: Reply,
    },
    Ready {
        reply: Reply,
    },
    Shutdown {
        reply: Reply,
    },
    /// The SDK's alarm fired, or the browser started.
    Wake,
    /// Other code removed the SDK's data from `chrome.storage.local`.
    StorageLost,
    /// Other code removed the SDK's keys from `chrome.storage.session`.
    SessionStorageLost,
    /// The microtask [`Effect::PumpSoon`] asked for: `online` is what the browser says.
    Pump {
        online: bool,
    },
    /// The timer [`Effect::SetTimer`] set fired.
    Timer {
        online: bool,
    },
    Read {
        purpose: ReadFor,
        result: Result<Found, String>,
    },
    Listed {
        purpose: ListFor,
        keys: Option<Vec<String>>,
    },
    /// `chrome.storage.session`'s values (`None`: it could not be read).
    SessionRead(Option<Found>),
    /// The operating system, if the browser says.
    PlatformRead(Option<String>),
    Written(Result<(), String>),
    Sent {
        slot: SlotRef,
        verdict: Verdict,
    },
    SessionStored,
    /// What `beforeSend` did with the event: `Ok(None)` dropped it, `Ok(Some((renamed,
    /// props)))` kept it (renamed if `Some`), an error means it failed (the event goes on
    /// unchanged).
    BeforeSendDone(Result<Option<(Option<EventName>, Props)>, Error>),
}

/// What the tracker asks the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Settle(Reply, Outcome),
    /// Run the customer's `beforeSend` on this event (its own properties, without the SDK's
    /// context) and answer with [`Command::BeforeSendDone`]. One at a time.
    BeforeSend {
        name: EventName,
        props: Props,
    },
    /// `onError` (and the console, with `debug`).
    ReportError(Error),
    /// `onDrop`.
    ReportDrop(Dropped),
    /// `chrome.storage.local.set` the plan ([`Tracker::write_values`](crate::core::tracker::Tracker::write_values) gives its keys and
    /// texts), then answer [`Command::Written`].
    Write(Box<WritePlan>),
    /// `chrome.storage.local.remove`; no answer needed.
    Remove(Vec<String>),
    /// `chrome.storage.local.get(keys)` after `after_ms` (`None`: now), then answer
    /// [`Command::Read`].
    Read {
        keys: Vec<String>,
        purpose: ReadFor,
        after_ms: Option<u64>,
    },
    /// The keys of every stored segment; answer [`Command::Listed`].
    ListSegments(ListFor),
    /// `chrome.storage.session.get(keys)`; answer [`Command::SessionRead`].
    ReadSession(Vec<&'static str>),
    /// The operating system; answer [`Command::PlatformRead`].
    ReadPlatform,
    /// Store the session's text in `chrome.storage.session`; answer [`Command::SessionStored`].
    StoreSession(String),
    /// Mark this browser run in `chrome.storage.session`; no answer needed.
    MarkBrowserRun,
    /// Send one event; answer [`Command::Sent`] with the verdict.
    Send(Send, Rc<Target>),
    /// Answer [`Command::Pump`] from a microtask: a burst of calls shares one write.
    PumpSoon,
    /// Answer [`Command::Timer`] after `delay_ms` (replacing any timer set before).
    SetTimer {
        delay_ms: u64,
    },
    ClearTimer,
    /// The backstop alarm, which wakes a stopped worker: set or moved to `at`.
    SetAlarm {
        at: u64,
    },
    /// Set the backstop alarm for `at` again if other code cleared it.
    EnsureAlarm {
        at: u64,
    },
    ClearAlarm,
    /// After this task (nothing here is needed to be ready): the daily alarm, the uninstall URL,
    /// the mark of this browser run.
    StartOfRun {
        daily_alarm: bool,
        uninstall_url: Option<String>,
    },
    SetUninstallUrl(String),
    /// A `performance.mark` of the start's phases.
    Mark(&'static str),
}

/// Where the tracker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the stored queue. Calls wait.
    Starting,
    Running,
    ShutDown,
}
