//! The stored format: keys, the index's text and the segments' lines (see the module
//! documentation of `engine`).

use super::report::{DropCounts, Totals};
use super::segment::{Segment, Slot, SEGMENT_EVENTS};
use crate::core::config::Credentials;

use crate::core::json::{fnv1a, FNV_OFFSET};

/// Key of the index record.
pub const INDEX_KEY: &str = "inhouse:v1:index";

/// Key of the install id (a UUID; see [`Engine::adopt_install_id`](crate::core::engine::Engine::adopt_install_id)).
pub const INSTALL_KEY: &str = "inhouse:v1:install";
/// Prefix of every segment key.
pub const SEGMENT_PREFIX: &str = "inhouse:v1:seg:";

/// The storage key of segment `seq`.
pub fn segment_key(seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{seq}")
}

/// The number of a segment key, `None` for any other key.
pub(super) fn segment_seq(key: &str) -> Option<u64> {
    key.strip_prefix(SEGMENT_PREFIX)?.parse().ok()
}

/// What a start finds under [`INDEX_KEY`] (see [`Engine::index_state`](crate::core::engine::Engine::index_state)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexState {
    /// Nothing: a first start, or the index was removed. Trusted only once the stored segment
    /// keys are listed and none is found ([`Engine::index_accounts_for`](crate::core::engine::Engine::index_accounts_for)).
    Absent,
    /// An index whose checksum holds: read the segments it names.
    Readable,
    /// An index of the first version, which has no checksum (written before the checksum was
    /// added): read like [`IndexState::Readable`] once the stored segment keys are listed and
    /// it accounts for each.
    Unchecked,
    /// Something that is not an index, or one whose checksum fails: rebuild from every stored
    /// segment.
    Unreadable,
}

/// The first number of the index's text after its checksum line, the version of its format: 2
/// has a checksum line; 1 (no checksum) is still read ([`IndexState::Unchecked`]); any other is
/// unreadable.
pub(super) const INDEX_VERSION: u64 = 2;
const UNCHECKED_VERSION: u64 = 1;

/// The checksum line of an index (the first): FNV-1a of the text after its newline, as a number
/// JavaScript reads exactly. Any change to the index (a byte, a line lost or swapped, the end cut
/// off) makes it unreadable, so the queue is rebuilt from the segments instead of trusting a
/// damaged `next` or done-mark, which would overwrite or skip stored events.
pub(super) fn index_checksum(body: &str) -> u64 {
    fnv1a(&[body], FNV_OFFSET) >> 11
}

/// The index record, read back (see the module documentation for its text).
#[derive(Debug)]
pub(super) struct IndexDoc {
    pub(super) next: u64,
    pub(super) enabled: bool,
    /// The end of a wait the server asked for (`Retry-After`), 0 if none.
    pub(super) wait_until: u64,
    /// The next probe of a pause for refused credentials, 0 if none, and which credentials
    /// were refused ([`credentials_key`]).
    pub(super) pause_until: u64,
    pub(super) pause_key: u64,
    pub(super) totals: Totals,
    /// One line per stored segment: `[n, events, done...]`, at least two numbers.
    pub(super) segments: Vec<Vec<u64>>,
    /// Read from a version-1 index, which has no checksum.
    pub(super) unchecked: bool,
}

impl IndexDoc {
    /// `None` for anything but a well-formed index. The first line is `<version> next enabled`
    /// or, since waits are kept, `<version> next enabled wait_until pause_until pause_key`; the
    /// totals have seven numbers, or eight since `undeliverable`, or ten since `filtered` and
    /// `sampled`. A counter beyond 2^53 (JavaScript's exact integers) or a segment line claiming
    /// more than [`SEGMENT_EVENTS`] events is damage, not data. Segment lines come back in
    /// order, once each. Version 2 comes after a checksum line ([`index_checksum`]), which must
    /// hold; version 1 has none.
    pub(super) fn decode(text: &str) -> Option<IndexDoc> {
        const EXACT: u64 = 1 << 53;
        let (body, version) = match text.split_once('\n') {
            Some((check, body)) if check.parse() == Ok(index_checksum(body)) => (body, INDEX_VERSION),
            _ => (text, UNCHECKED_VERSION),
        };
        let mut head = number_lines(body)?;
        if head.len() < 2 || head[2..].iter().any(|line| line.len() < 2 || line[1] > SEGMENT_EVENTS as u64) {
            return None;
        }
        if head.iter().flatten().any(|&n| n > EXACT) {
            return None;
        }
        let segments = sorted_unique_by_key(head.split_off(2), |line| line[0]);
        let (next, enabled, wait_until, pause_until, pause_key) = match head[0][..] {
            [v, next, enabled @ (0 | 1)] if v == version => (next, enabled, 0, 0, 0),
            [v, next, enabled @ (0 | 1), wait, pause, key] if v == version => (next, enabled, wait, pause, key),
            _ => return None,
        };
        let (delivered, retried, rejected, evicted, retries_exhausted, purged, corrupt, undeliverable, filtered, sampled) = match head[1][..] {
            [a, b, c, d, e, f, g] => (a, b, c, d, e, f, g, 0, 0, 0),
            [a, b, c, d, e, f, g, h] => (a, b, c, d, e, f, g, h, 0, 0),
            [a, b, c, d, e, f, g, h, i, j] => (a, b, c, d, e, f, g, h, i, j),
            _ => return None,
        };
        let dropped = DropCounts { rejected, evicted, retries_exhausted, purged, corrupt, undeliverable, filtered, sampled };
        // A segment numbered at or past `next` would be overwritten by the next write.
        let next = segments.last().map_or(next, |line| next.max(line[0] + 1));
        let totals = Totals { delivered, retried, dropped };
        Some(IndexDoc { next, enabled: enabled == 1, wait_until, pause_until, pause_key, totals, segments, unchecked: version == UNCHECKED_VERSION })
    }
}

/// `items` in ascending order of `key`, the first of each key kept, by insertion into the sorted
/// list (at most a few thousand segments, stored nearly in order). No std sort: it is
/// instantiated per element type, and these two cost 7.3 KB of wasm (measured: the shipped wasm
/// 245,342 → 237,692 B raw, 100,873 → 97,903 B gzipped without them).
pub(super) fn sorted_unique_by_key<T>(items: Vec<T>, key: impl Fn(&T) -> u64) -> Vec<T> {
    let mut sorted: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if let Err(at) = sorted.binary_search_by_key(&key(&item), &key) {
            sorted.insert(at, item);
        }
    }
    sorted
}

/// Text as lines of whitespace-separated numbers; `None` if any word is not a number.
pub(super) fn number_lines(text: &str) -> Option<Vec<Vec<u64>>> {
    text.lines().map(|line| line.split_ascii_whitespace().map(|n| n.parse().ok()).collect()).collect()
}

/// A segment read back from its text: one line per event, `id<TAB>name<TAB>properties`.
/// No field can hold either separator: ids are hex digits and `-`, names letters, digits and
/// `_`, and the properties' JSON text escapes every control character. `None` unless every
/// line holds exactly three fields. The text becomes the segment's own: no event is copied.
pub(super) fn decode_segment(seq: u64, text: String, events: u64) -> Option<Segment> {
    // As many slots as the index says, if the text can hold them (a line is 3 bytes at least).
    let mut slots = Vec::with_capacity((text.len() / 3 + 1).min(events as usize));
    let mut start = 0;
    for line in text.split('\n') {
        let mut tabs = line.match_indices('\t').map(|(i, _)| u32::try_from(start + i + 1).ok());
        let (Some(name_at), Some(props_at), None) = (tabs.next(), tabs.next(), tabs.next()) else { return None };
        slots.push(Slot::new(u32::try_from(start).ok()?, name_at?, props_at?));
        start += line.len() + 1;
    }
    let live = slots.len();
    Some(Segment { seq, text, slots, live, cursor: 0, fresh: 0 })
}

/// A key for the refused credentials a stored pause belongs to: FNV-1a of the token id and the
/// app id (never the secret, which is not stored in any form).
pub(super) fn credentials_key(credentials: &Credentials, app_id: &str) -> u64 {
    // Stored as a number JavaScript reads exactly.
    fnv1a(&[&credentials.token_id, app_id], FNV_OFFSET) >> 11
}

// Host only, like proptest (a host-only dev-dependency).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Segments read by splitting strings: (id, name, properties), what the slots must match.
    fn std_segment(text: &str) -> Option<Vec<(String, String, String)>> {
        text.split('\n')
            .map(|line| {
                let mut fields = line.split('\t');
                let event = (fields.next()?.into(), fields.next()?.into(), fields.next()?.into());
                fields.next().is_none().then_some(event)
            })
            .collect()
    }

    fn events(text: &str) -> Option<Vec<(String, String, String)>> {
        let seg = decode_segment(7, text.to_string(), 100)?;
        assert_eq!(seg.text, text, "the text is kept as it is");
        assert_eq!((seg.live, seg.cursor, seg.fresh), (seg.slots.len(), 0, 0));
        Some((0..seg.slots.len()).map(|i| seg.fields(i)).map(|(a, b, c)| (a.into(), b.into(), c.into())).collect())
    }

    #[test]
    fn decode_segment_reads_like_std() {
        for text in ["", "\n", "a\tb\tc", "a\tb\tc\n", "a\tb\tc\nd\te\tf", "a\tb", "a\tb\tc\td", "\t\t", "\t\t\n\t\t", "é\tü\t{}"] {
            assert_eq!(events(text), std_segment(text), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn decode_segment_matches_std(text in "[ab\t\n\r]{0,30}") {
            prop_assert_eq!(events(&text), std_segment(&text));
        }

    }
}
