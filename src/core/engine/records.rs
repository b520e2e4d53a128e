//! Who sends, kept beside the queue: the install's id (`$install_id` on every event), the
//! profile (the identified user and the super properties) and the lifecycle record (what the
//! last start saw). Each is written by the write that stores the events tracked with it (the
//! same `set`), so the queue's writes carry them; their state is private to this file.

use crate::core::event::{is_uuid, new_install_id, Rng};
use crate::core::lifecycle::Seen;
use crate::core::profile::Profile;

/// A value kept in `chrome.storage.local` beside the queue, written by the next write after each
/// change.
#[derive(Debug)]
struct Record<T> {
    value: T,
    /// Bumped at each change.
    generation: u64,
    /// The generation stored (`None`: it was removed by other code).
    stored: Option<u64>,
}

impl<T: Default> Default for Record<T> {
    fn default() -> Self {
        Record { value: T::default(), generation: 0, stored: Some(0) }
    }
}

impl<T> Record<T> {
    /// The value read from storage: stored as it is.
    fn adopt(&mut self, value: T) {
        self.value = value;
        self.stored = Some(self.generation);
    }
    fn change<R>(&mut self, change: impl FnOnce(&mut T) -> R) -> R {
        self.generation += 1;
        change(&mut self.value)
    }
    /// The generation to write, when the stored one is older.
    fn due(&self) -> Option<u64> {
        (self.stored != Some(self.generation)).then_some(self.generation)
    }
}

/// What one write stores of the records: the generations, to mark them stored once it commits.
#[derive(Debug, Default)]
pub(super) struct RecordsWritten {
    install: Option<String>,
    profile: Option<u64>,
    lifecycle: Option<u64>,
}

/// The texts one write stores.
#[derive(Debug, Default)]
pub(super) struct RecordTexts {
    pub(super) install: Option<String>,
    pub(super) profile: Option<String>,
    pub(super) lifecycle: Option<String>,
}

/// The install id, the profile and the lifecycle record, and whether each is stored. Nothing
/// stored reads as the empty profile and no lifecycle record: by default they need no storing.
#[derive(Debug, Default)]
pub(super) struct Records {
    id: Option<String>,
    persisted: bool,
    /// The id was created at this start (none was stored).
    created: bool,
    profile: Record<Profile>,
    lifecycle: Record<Option<Seen>>,
}

impl Records {
    /// The install id read from storage, or, when there is none or it is not an id, a new one.
    /// Returns whether a new one was made (to be stored soon).
    pub(super) fn adopt_install_id(&mut self, stored: Option<&str>, rng: &mut Rng) -> bool {
        match stored.filter(|s| is_uuid(s)) {
            Some(id) => {
                (self.id, self.persisted) = (Some(id.into()), true);
                false
            }
            None => {
                self.new_install_id(rng);
                self.created = true;
                true
            }
        }
    }

    /// A new random install id, to be stored by the next write.
    pub(super) fn new_install_id(&mut self, rng: &mut Rng) {
        (self.id, self.persisted) = (Some(new_install_id(rng)), false);
    }

    pub(super) fn install_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Whether this start created the install id: nothing of the install was stored.
    pub(super) fn created(&self) -> bool {
        self.created
    }

    /// The profile read from storage; `false` if it could not be read (then the empty profile
    /// replaces it, to be stored).
    pub(super) fn adopt_profile(&mut self, text: &str) -> bool {
        match Profile::decode(text) {
            Some(profile) => {
                self.profile.adopt(profile);
                true
            }
            None => {
                self.profile.change(|p| *p = Profile::default());
                false
            }
        }
    }

    pub(super) fn profile(&self) -> &Profile {
        &self.profile.value
    }

    pub(super) fn change_profile<T>(&mut self, change: impl FnOnce(&mut Profile) -> T) -> T {
        self.profile.change(change)
    }

    /// The profile's generation to write, if any. Opted out (`enabled` false), nothing about the
    /// user is stored: a changed profile stays in memory (written once the user opts in), unless
    /// it is the empty one (a reset or a purge), which erases what was stored.
    pub(super) fn profile_due(&self, enabled: bool) -> Option<u64> {
        self.profile.due().filter(|_| enabled || self.profile.value == Profile::default())
    }

    /// What the last start saw, read from storage (a damaged record counts as none).
    pub(super) fn adopt_lifecycle(&mut self, stored: Option<&str>) {
        if let Some(seen) = stored.and_then(Seen::decode) {
            self.lifecycle.adopt(Some(seen));
        }
    }

    pub(super) fn lifecycle(&self) -> Option<&Seen> {
        self.lifecycle.value.as_ref()
    }

    /// Records what this start saw; `true` if it changed (to be stored).
    pub(super) fn set_lifecycle(&mut self, seen: Seen) -> bool {
        if self.lifecycle.value.as_ref() == Some(&seen) {
            return false;
        }
        self.lifecycle.change(|s| *s = Some(seen));
        true
    }

    /// Whether anything but the profile waits to be stored (the profile: [`Records::profile_due`]).
    pub(super) fn lifecycle_due(&self) -> bool {
        self.lifecycle.due().is_some()
    }

    /// What a write planned now stores (`profile_due` as [`Records::profile_due`] says), and
    /// their texts.
    pub(super) fn plan(&self, profile_due: Option<u64>) -> (RecordsWritten, RecordTexts) {
        let install = if self.persisted { None } else { self.id.clone() };
        let lifecycle_due = self.lifecycle.due();
        let texts = RecordTexts {
            install: install.clone(),
            profile: profile_due.map(|_| self.profile.value.encode()),
            lifecycle: lifecycle_due.map(|_| self.lifecycle.value.as_ref().map(Seen::encode).unwrap_or_default()),
        };
        (RecordsWritten { install, profile: profile_due, lifecycle: lifecycle_due }, texts)
    }

    /// A write that stored `written` committed.
    pub(super) fn written(&mut self, written: RecordsWritten) {
        // Stored, unless a newer id (a purge) came while the write was out.
        if written.install.is_some() && written.install == self.id {
            self.persisted = true;
        }
        if written.profile.is_some() {
            self.profile.stored = written.profile;
        }
        if written.lifecycle.is_some() {
            self.lifecycle.stored = written.lifecycle;
        }
    }

    /// Other code removed them from storage: each is written again.
    pub(super) fn lost(&mut self) {
        self.persisted = false;
        self.profile.stored = None;
        self.lifecycle.stored = None;
    }
}
