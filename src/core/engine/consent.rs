//! The user's choice: opt-in or opt-out (a purge drops the queue and forgets the install), and
//! whether that choice and the profile are stored.

use super::*;

impl Engine {
    /// Opt-in or opt-out. Disabling stops collection and delivery; with `purge`, every queued
    /// event is dropped (counted as `purged`). The choice is persisted by the next write.
    /// Before [`Engine::restore`], the choice is also remembered and applied over the stored
    /// one (and a purge to the stored queue) once it is read.
    pub fn set_enabled(&mut self, enabled: bool, purge: bool, now: u64) {
        self.consent.enabled = enabled;
        if !self.consent.restored {
            self.consent.consent_override = Some(enabled);
            self.consent.purge_on_restore |= purge;
        }
        if !enabled {
            let (first, segments) = self.take_pending();
            self.settle(&segments, first, TicketResult::Disabled);
        }
        if purge {
            self.purge(now);
        }
        self.write_soon();
    }

    /// Drops every queued event as `purged` (also those of the write in progress), and forgets
    /// the install id (a new one from now on).
    pub(super) fn purge(&mut self, now: u64) {
        if self.records.install_id().is_some() {
            self.new_install_id();
        }
        self.change_profile(|p| *p = Profile::default());
        self.purge_unloaded();
        if let Some(w) = self.store.writing.as_mut() {
            w.purged = true;
        }
        for si in 0..self.queue.segments.len() {
            for i in self.queue.segments[si].cursor..self.queue.segments[si].slots.len() {
                let s = &self.queue.segments[si];
                if !s.slots[i].done {
                    self.drop_slot(SlotRef { seq: s.seq, index: i as u32 }, DropReason::Purged, "purged on opt-out".into(), now);
                }
            }
        }
    }

    /// Whether the stored queue has been read ([`Engine::restore`] or [`Engine::rebuild`]).
    pub fn restored(&self) -> bool {
        self.consent.restored
    }

    /// Whether tracking is enabled.
    pub fn enabled(&self) -> bool {
        self.consent.enabled
    }

    /// Whether the opt-in/opt-out choice in memory is the one stored.
    pub fn consent_persisted(&self) -> bool {
        self.consent.enabled == self.consent.enabled_persisted && self.store.writing.is_none()
    }

    /// Whether the opt-in choice and the profile, as they are now, are stored (as far as they
    /// will be: see `Engine::profile_due`).
    pub fn settings_persisted(&self) -> bool {
        self.consent_persisted() && self.profile_due().is_none()
    }

    /// The profile's generation to write, if any. Opted out, nothing about the user is stored:
    /// a changed profile stays in memory (written once the user opts in), unless it is the
    /// empty one (a reset or a purge), which erases what was stored.
    pub(super) fn profile_due(&self) -> Option<u64> {
        self.records.profile_due(self.consent.enabled)
    }
}
