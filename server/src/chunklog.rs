//! An append-only log, bounded by entry count and by (estimated) bytes, whose snapshot is
//! cheap enough to take under the state lock: full chunks are immutable and shared (`Arc`), so
//! a snapshot copies one pointer per chunk plus the open tail's entry pointers, never an entry.
//! Readers then serialize the snapshot without the lock while writers go on appending.

use std::collections::VecDeque;
use std::sync::Arc;

/// A chunk is sealed (made immutable and shareable) at this many entries...
const CHUNK_ENTRIES: usize = 256;
/// ...or at this fraction of the byte cap, so that entries dropped from the front of a chunk
/// still shared by it hold at most about this much memory past the cap.
const CHUNK_BYTES_DIVISOR: usize = 32;

pub struct ChunkLog<T> {
    sealed: VecDeque<Arc<[Arc<T>]>>,
    /// Entries at the front of `sealed[0]` already dropped.
    skip: usize,
    tail: Vec<Arc<T>>,
    tail_bytes: usize,
    /// The estimated size of every live entry, oldest first.
    sizes: VecDeque<usize>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    /// Entries dropped to stay within the caps since creation or the last `clear`.
    dropped: u64,
}

impl<T> ChunkLog<T> {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        ChunkLog {
            sealed: VecDeque::new(),
            skip: 0,
            tail: Vec::new(),
            tail_bytes: 0,
            sizes: VecDeque::new(),
            bytes: 0,
            max_entries: max_entries.max(1),
            max_bytes: max_bytes.max(1),
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Estimated bytes held by the live entries.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Restores the dropped counter (a `--db` restart).
    pub fn set_dropped(&mut self, dropped: u64) {
        self.dropped = dropped;
    }

    /// Appends an entry of `size` estimated bytes, then drops the oldest entries while over a
    /// cap, never the one just added. Returns the shared entry and how many were dropped.
    pub fn push(&mut self, item: T, size: usize) -> (Arc<T>, usize) {
        let item = Arc::new(item);
        self.sizes.push_back(size);
        self.bytes += size;
        self.tail.push(item.clone());
        self.tail_bytes += size;
        if self.tail.len() >= CHUNK_ENTRIES
            || self.tail_bytes >= (self.max_bytes / CHUNK_BYTES_DIVISOR).max(1)
        {
            self.sealed
                .push_back(Arc::from(std::mem::take(&mut self.tail)));
            self.tail_bytes = 0;
        }
        let mut dropped = 0;
        while self.len() > 1 && (self.len() > self.max_entries || self.bytes > self.max_bytes) {
            self.pop_front();
            dropped += 1;
        }
        self.dropped += dropped as u64;
        (item, dropped)
    }

    fn pop_front(&mut self) {
        let Some(size) = self.sizes.pop_front() else {
            return;
        };
        self.bytes -= size;
        if let Some(first) = self.sealed.front() {
            self.skip += 1;
            if self.skip == first.len() {
                self.sealed.pop_front();
                self.skip = 0;
            }
        } else {
            self.tail.remove(0);
            self.tail_bytes -= size;
        }
    }

    /// Forgets every entry and the dropped counter; the caps stay.
    pub fn clear(&mut self) {
        *self = ChunkLog::new(self.max_entries, self.max_bytes);
    }

    /// The live entries as they are now, unaffected by later pushes, drops and clears.
    /// Costs one pointer copy per chunk plus one per entry of the open tail.
    pub fn snapshot(&self) -> Snapshot<T> {
        Snapshot {
            chunks: self.sealed.iter().cloned().collect(),
            skip: self.skip,
            tail: self.tail.clone(),
            len: self.len(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        slices(&self.sealed, self.skip, &self.tail).flat_map(|s| s.iter().map(|a| &**a))
    }
}

fn slices<'a, C: AsRef<[Arc<T>]> + 'a, T: 'a>(
    chunks: impl IntoIterator<Item = &'a C>,
    skip: usize,
    tail: &'a [Arc<T>],
) -> impl Iterator<Item = &'a [Arc<T>]> {
    chunks
        .into_iter()
        .enumerate()
        .map(move |(i, c)| {
            let c = c.as_ref();
            if i == 0 {
                &c[skip.min(c.len())..]
            } else {
                c
            }
        })
        .chain(std::iter::once(tail))
        .filter(|s| !s.is_empty())
}

/// An immutable view of a [`ChunkLog`]; `Send` and `'static`, so it can be serialized on
/// another thread.
pub struct Snapshot<T> {
    chunks: Vec<Arc<[Arc<T>]>>,
    skip: usize,
    tail: Vec<Arc<T>>,
    len: usize,
}

impl<T> Snapshot<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in runs, oldest first (lets a reader skip whole runs).
    pub fn slices(&self) -> impl Iterator<Item = &[Arc<T>]> {
        slices(&self.chunks, self.skip, &self.tail)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slices().flat_map(|s| s.iter().map(|a| &**a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(log: &ChunkLog<u32>) -> Vec<u32> {
        log.iter().copied().collect()
    }

    #[test]
    fn keeps_order_across_chunks_and_drops_oldest_by_count() {
        let mut log = ChunkLog::new(600, usize::MAX);
        for i in 0..1000u32 {
            log.push(i, 1);
        }
        assert_eq!(log.len(), 600);
        assert_eq!(log.dropped(), 400);
        assert_eq!(items(&log), (400..1000).collect::<Vec<_>>());
        let snap = log.snapshot();
        assert_eq!(snap.iter().copied().collect::<Vec<_>>(), items(&log));
        assert_eq!(snap.len(), 600);
    }

    #[test]
    fn drops_oldest_by_bytes_but_keeps_the_newest() {
        let mut log = ChunkLog::new(usize::MAX, 100);
        for i in 0..10u32 {
            let (_, dropped) = log.push(i, 30);
            assert_eq!(dropped, usize::from(i >= 3), "{i}");
        }
        assert_eq!(items(&log), [7, 8, 9]);
        assert_eq!(log.bytes(), 90);
        let (_, dropped) = log.push(10, 1000);
        assert_eq!((dropped, items(&log)), (3, vec![10]), "the newest stays");
        assert_eq!(log.dropped(), 10);
    }

    #[test]
    fn snapshot_is_unaffected_by_later_changes() {
        let mut log = ChunkLog::new(300, usize::MAX);
        for i in 0..500u32 {
            log.push(i, 1);
        }
        let snap = log.snapshot();
        for i in 500..900u32 {
            log.push(i, 1);
        }
        log.clear();
        log.push(7, 1);
        assert_eq!(
            snap.iter().copied().collect::<Vec<_>>(),
            (200..500).collect::<Vec<_>>()
        );
        assert_eq!((items(&log), log.dropped()), (vec![7], 0));
    }
}
