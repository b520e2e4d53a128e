//! A segment in memory: its stored text and a small slot per event.

use super::report::SlotRef;
use crate::core::event::{field, line_stored_bytes, NewEvent};

/// Events per segment at most: bounds the size of one storage value.
pub const SEGMENT_EVENTS: usize = 500;

/// The first slot from `k` on that is not done (or `slots.len()`).
pub(super) fn skip_done(slots: &[Slot], mut k: usize) -> usize {
    while slots.get(k).is_some_and(|s| s.done) {
        k += 1;
    }
    k
}

/// One event of a segment: where its line sits in the segment's text, and its delivery state.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    pub(super) not_before: u64,
    /// Where its line starts (its id), where its name starts, where its properties start.
    pub(super) start: u32,
    pub(super) name_at: u32,
    pub(super) props_at: u32,
    /// Server failures: at most `retry.maxAttempts`, 1,000.
    pub(super) attempts: u16,
    /// Network failures charged to this event (see `Engine::suspects`): at most 255.
    pub(super) net_failures: u8,
    pub(super) done: bool,
    pub(super) in_flight: bool,
}

impl Slot {
    pub(super) fn new(start: u32, name_at: u32, props_at: u32) -> Slot {
        Slot { not_before: 0, start, name_at, props_at, attempts: 0, net_failures: 0, done: false, in_flight: false }
    }
}

/// A request out: its event, its number in send order, and which credentials it carries.
#[derive(Clone, Copy, Debug)]
pub(super) struct Flight {
    pub(super) slot: SlotRef,
    pub(super) seq: u64,
    pub(super) credentials: u32,
}

/// A segment: its stored text (the events' lines joined by `\n`, exactly as written) and a
/// small slot per event. Pending events are appended to the segment they will be written in.
#[derive(Clone, Debug)]
pub(super) struct Segment {
    pub(super) seq: u64,
    pub(super) text: String,
    pub(super) slots: Vec<Slot>,
    pub(super) live: usize,
    /// The first slot not done (or `slots.len()`): where eviction starts looking.
    pub(super) cursor: usize,
    /// The first slot neither done nor ever sent (or `slots.len()`). Every slot before it is
    /// done, in flight, or waiting in `Engine::retrying`; every one from it on, not done, is
    /// sendable at once.
    pub(super) fresh: usize,
}

impl Segment {
    pub(super) fn new(seq: u64) -> Segment {
        Segment { seq, text: String::new(), slots: Vec::new(), live: 0, cursor: 0, fresh: 0 }
    }

    /// Appends an event's line.
    pub(super) fn push(&mut self, event: &NewEvent) {
        if !self.slots.is_empty() {
            self.text.push('\n');
        }
        let start = self.text.len();
        self.text.push_str(event.line());
        // A segment holds at most `SEGMENT_EVENTS` events of at most `max_event_bytes`.
        let (name_at, props_at) = event.fields_at();
        let at = |k: usize| (start + k) as u32;
        self.slots.push(Slot::new(at(0), at(name_at), at(props_at)));
        self.live += 1;
    }

    /// Where slot `i`'s line ends.
    pub(super) fn end(&self, i: usize) -> usize {
        self.slots.get(i + 1).map_or(self.text.len(), |next| next.start as usize - 1)
    }

    /// Slot `i`'s fields: its id, name and properties.
    pub(super) fn fields(&self, i: usize) -> (&str, &str, &str) {
        let Some(slot) = self.slots.get(i) else {
            return ("", "", "");
        };
        let (name_at, props_at) = (slot.name_at as usize, slot.props_at as usize);
        let t = &self.text;
        (field(t, slot.start as usize, name_at - 1), field(t, name_at, props_at - 1), field(t, props_at, self.end(i)))
    }

    /// [`NewEvent::stored_bytes`] of slot `i`.
    pub(super) fn stored_bytes(&self, i: usize) -> usize {
        line_stored_bytes(self.end(i) - self.slots.get(i).map_or(0, |s| s.start as usize))
    }

    /// The stored bytes of all its events (`NewEvent::stored_bytes` of each), from its text:
    /// its lines and `line_stored_bytes`' 22 more each, less the newlines between them (a
    /// written segment holds one event at least).
    pub(super) fn all_stored_bytes(&self) -> usize {
        self.text.len() + 1 + 21 * self.slots.len()
    }

    /// Marks slot `i` done (it must be live) and moves the cursors past what is done.
    pub(super) fn mark_done(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i) {
            slot.done = true;
            self.live -= 1;
        }
        self.advance();
    }

    pub(super) fn advance(&mut self) {
        self.cursor = skip_done(&self.slots, self.cursor);
        self.fresh = skip_done(&self.slots, self.fresh.max(self.cursor));
    }

    /// Drops the events before the cursor (all done: evicted while pending) from the text.
    /// Once per write at most, and only after evictions.
    pub(super) fn compact(&mut self) {
        let Some(cut) = self.slots.get(self.cursor).map(|s| s.start) else {
            return;
        };
        if cut == 0 {
            return;
        }
        self.text = self.text.get(cut as usize..).map(String::from).unwrap_or_default();
        self.slots = self.slots.get(self.cursor..).map(<[Slot]>::to_vec).unwrap_or_default();
        for slot in &mut self.slots {
            slot.start -= cut;
            slot.name_at -= cut;
            slot.props_at -= cut;
        }
        (self.cursor, self.fresh) = (0, 0);
    }
}
