//! The events an extension needs without writing them: `$extension_installed`,
//! `$extension_updated`, `$browser_updated`, `$browser_startup` and `$daily_active`.
//!
//! They are decided from stored state when a worker starts, not from `chrome.runtime.onInstalled`
//! alone: a worker stopped right after `onInstalled` would lose its event, and Chrome fires
//! `onInstalled` with reason `install` at every launch for an extension loaded from the command
//! line. What was seen (the extension's version, the browser's, the last day with a
//! `$daily_active`) is stored in `chrome.storage.local` by the same `set` as the events it caused,
//! so each is stored exactly once: either both are written, or neither and the next start decides
//! again. A browser start is told by a marker in `chrome.storage.session`, which the browser
//! empties when it closes.

use super::event::Props;
use super::json::{fnv1a, FNV_OFFSET};

/// Key of what was seen, in `chrome.storage.local`.
pub const LIFECYCLE_KEY: &str = "inhouse:v1:lifecycle";
/// Key of the marker of this browser run, in `chrome.storage.session`.
pub const STARTED_KEY: &str = "inhouse:v1:started";

/// What the last start saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub version: Option<String>,
    pub browser_version: Option<String>,
    /// The UTC day (days since 1970-01-01) of the last `$daily_active`.
    pub daily: Option<u64>,
    /// The UTC day of the install, when this record saw it.
    pub installed: Option<u64>,
}

impl Seen {
    /// Lines `v<version>`, `b<browser version>`, `d<day>`; `None` when damaged.
    pub fn decode(text: &str) -> Option<Seen> {
        let mut seen = Seen::default();
        for line in text.lines() {
            match line.split_at_checked(1)? {
                ("v", v) => seen.version = Some(v.into()),
                ("b", b) => seen.browser_version = Some(b.into()),
                ("d", d) => seen.daily = Some(d.parse().ok()?),
                ("i", i) => seen.installed = Some(i.parse().ok()?),
                _ => return None,
            }
        }
        Some(seen)
    }

    /// The text [`Seen::decode`] reads back.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let days = |d: Option<u64>| d.map(|d| d.to_string());
        for (tag, value) in [("v", self.version.clone()), ("b", self.browser_version.clone()), ("d", days(self.daily)), ("i", days(self.installed))] {
            if let Some(value) = value.filter(|v| !v.contains('\n')) {
                out.push_str(tag);
                out.push_str(&value);
                out.push('\n');
            }
        }
        out
    }
}

/// Which automatic events are on (the `autoEvents` option; all by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoEvents {
    pub install: bool,
    pub update: bool,
    pub startup: bool,
    pub daily: bool,
}

impl Default for AutoEvents {
    fn default() -> Self {
        AutoEvents { install: true, update: true, startup: true, daily: true }
    }
}

/// One automatic event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Installed,
    Updated { previous_version: String },
    BrowserUpdated { previous_version: String },
    Startup,
    DailyActive,
}

impl Lifecycle {
    /// The event's name (one of the SDK's own).
    pub fn name(&self) -> &'static str {
        match self {
            Lifecycle::Installed => "$extension_installed",
            Lifecycle::Updated { .. } => "$extension_updated",
            Lifecycle::BrowserUpdated { .. } => "$browser_updated",
            Lifecycle::Startup => "$browser_startup",
            Lifecycle::DailyActive => "$daily_active",
        }
    }

    /// The event's properties: `previous_version` for an update.
    pub fn props(&self) -> Props {
        match self {
            Lifecycle::Updated { previous_version } | Lifecycle::BrowserUpdated { previous_version } => {
                Props::of_strings(&[("previous_version", previous_version)])
            }
            _ => Props::of_strings(&[]),
        }
    }
}

/// What a worker's start knows.
#[derive(Clone, Debug, Default)]
pub struct Start<'a> {
    /// The extension's version now.
    pub version: Option<&'a str>,
    /// The browser's major version now.
    pub browser_version: Option<&'a str>,
    /// Today, in UTC days since 1970-01-01.
    pub day: u64,
    /// No marker of this browser run in `chrome.storage.session`: the browser started (or the
    /// extension was installed, updated or reloaded, which empties it too).
    pub browser_started: bool,
    /// Nothing of this install was stored: no install id (a new install, or its storage cleared).
    pub new_install: bool,
}

/// The events due at a start, and what to store as seen. `stored`: what the last start stored
/// (`None`: nothing, which for an install whose id was already stored means one from before the
/// SDK kept this record: no install or update event then).
pub fn at_start(stored: Option<&Seen>, start: &Start, auto: AutoEvents) -> (Vec<Lifecycle>, Seen) {
    let mut events = Vec::new();
    let mut installed_or_updated = false;
    match stored {
        None if start.new_install => {
            installed_or_updated = true;
            if auto.install {
                events.push(Lifecycle::Installed);
            }
        }
        None => {}
        Some(seen) => {
            if let (Some(before), Some(now)) = (seen.version.as_deref(), start.version) {
                if before != now {
                    installed_or_updated = true;
                    if auto.update {
                        events.push(Lifecycle::Updated { previous_version: before.into() });
                    }
                }
            }
            if let (Some(before), Some(now)) = (seen.browser_version.as_deref(), start.browser_version) {
                if before != now && auto.update {
                    events.push(Lifecycle::BrowserUpdated { previous_version: before.into() });
                }
            }
        }
    }
    if start.browser_started && !installed_or_updated && auto.startup {
        events.push(Lifecycle::Startup);
    }
    let previous_daily = stored.and_then(|s| s.daily);
    let daily = daily_due(previous_daily, start.day, auto);
    if daily.is_some() {
        events.push(Lifecycle::DailyActive);
    }
    let installed = match stored {
        None if start.new_install => Some(start.day),
        _ => stored.and_then(|s| s.installed),
    };
    let seen = Seen {
        version: start.version.map(String::from),
        browser_version: start.browser_version.map(String::from),
        daily: daily.or(previous_daily),
        installed,
    };
    (events, seen)
}

/// The day of a `$daily_active` due on `day`, after the last one on `last`.
pub fn daily_due(last: Option<u64>, day: u64, auto: AutoEvents) -> Option<u64> {
    (auto.daily && last.is_none_or(|last| day > last)).then_some(day)
}

/// The `uninstallUrl` with what the SDK appends: the install id, the version and the days since
/// install, each when known (`chrome.runtime.setUninstallURL` takes it as it is).
pub fn uninstall_url(base: &str, install_id: Option<&str>, version: Option<&str>, installed: Option<u64>, today: u64) -> String {
    let days = installed.map(|d| today.saturating_sub(d).to_string());
    let parts = [("install_id", install_id), ("version", version), ("days_installed", days.as_deref())];
    let mut out = base.to_string();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (key, value) in parts.into_iter().filter_map(|(k, v)| Some((k, v?))) {
        out.push(sep);
        sep = '&';
        out.push_str(key);
        out.push('=');
        // Ids, versions and numbers: letters, digits, '-' and '.', which need no escaping.
        out.extend(value.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')));
    }
    out
}

/// The names of the lifecycle events: never left out by `sampleRate`.
pub const LIFECYCLE_EVENTS: [&str; 5] = ["$extension_installed", "$extension_updated", "$browser_updated", "$browser_startup", "$daily_active"];

/// Where an install falls in `[0, 1)` for `sampleRate`: FNV-1a of its id (stable across Rust
/// versions, unlike std's hasher), so the same installs are kept on every start.
pub fn sample_point(install_id: &str) -> f64 {
    (fnv1a(&[install_id], FNV_OFFSET) >> 11) as f64 / (1u64 << 53) as f64
}

/// The UTC day of a time in milliseconds since the epoch.
pub fn utc_day(ms: u64) -> u64 {
    ms / 86_400_000
}
