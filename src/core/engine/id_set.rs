//! The ids of the live events tracked with a `dedupKey`, to refuse a second one while the first
//! is queued.

/// A set of ids as a sorted `Vec` with binary search: `BTreeSet<String>` brought about 10 KB of
/// B-tree code into the wasm (twiggy, 2026-12-06) for a set that holds only the few events
/// tracked with a `dedupKey`.
#[derive(Debug, Default)]
pub(super) struct IdSet(Vec<String>);

impl IdSet {
    /// Adds `id`; `false` if it was there already.
    pub(super) fn insert(&mut self, id: String) -> bool {
        match self.0.binary_search(&id) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, id);
                true
            }
        }
    }

    /// Removes `id` if it is there.
    pub(super) fn remove(&mut self, id: &str) {
        if let Ok(at) = self.0.binary_search_by(|held| held.as_str().cmp(id)) {
            self.0.remove(at);
        }
    }
}
