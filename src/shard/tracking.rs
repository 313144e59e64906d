//! Client-side caching, the shard's part: which clients may cache each of
//! this shard's keys (CLIENT TRACKING's default mode), and the keys changed
//! since the last broadcast (BCAST mode). Read and written under the shard
//! lock, like `watches`. Keys are tracked by name whatever the database, as
//! Redis tracks them: a write to `k` in any database invalidates `k`.
//! Delivering the invalidations is `pubsub::tracking`'s work.

use bytes::Bytes;
use indexmap::IndexMap;
use std::collections::BTreeMap;

/// Who changed a key, as client-side caching needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Who {
    /// The client whose command is running (0: none, the server's own
    /// cycles). A NOLOOP client is not told of keys its own command
    /// changed, expired or evicted; invalidations for it wait for the
    /// command's reply when `running`.
    pub current: u64,
    /// The client that made the change, as BCAST NOLOOP filters it: 0 for
    /// the server itself (expiry, eviction), `SCRIPT` for a script's write.
    pub by: u64,
    /// A command is executing (not yet replied to).
    pub running: bool,
}

impl Who {
    /// The change of a script (Redis's script client is not its caller).
    pub const SCRIPT: u64 = u64::MAX;

    /// The server's own change, outside any command (active expiry).
    pub const SERVER: Who = Who { current: 0, by: 0, running: false };

    /// A change made by `client`'s running command (`script`: through a
    /// script it runs).
    pub fn command(client: u64, script: bool) -> Who {
        Who { current: client, by: if script { Who::SCRIPT } else { client }, running: true }
    }

    /// A key expired or evicted while `client`'s command runs (0: none).
    pub fn reaped(client: u64) -> Who {
        Who { current: client, by: 0, running: client != 0 }
    }
}

#[derive(Default)]
pub struct Tracked {
    /// Key → the ids of the clients that read it since its last change
    /// (dead or no longer tracking ones are dropped lazily, as in Redis).
    keys: IndexMap<Bytes, Vec<u64>, ahash::RandomState>,
    /// Ids stored over all keys (INFO's `tracking_total_items`).
    items: usize,
    /// Keys changed since the last broadcast, each with the id of the
    /// client that changed it last (0: the server itself, by expiry or
    /// eviction), in byte order as Redis broadcasts them.
    changed: BTreeMap<Bytes, u64>,
}

impl Tracked {
    /// True when no key is tracked here.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn items(&self) -> usize {
        self.items
    }

    /// Client `id` may now cache `key`. Returns (key added, id added).
    pub fn remember(&mut self, key: &[u8], id: u64) -> (bool, bool) {
        if let Some(ids) = self.keys.get_mut(key) {
            if ids.contains(&id) {
                return (false, false);
            }
            ids.push(id);
            self.items += 1;
            return (false, true);
        }
        self.keys.insert(Bytes::copy_from_slice(key), vec![id]);
        self.items += 1;
        (true, true)
    }

    /// `key` changed: the clients that may cache it, no longer tracked.
    #[inline]
    pub fn take(&mut self, key: &[u8]) -> Option<Vec<u64>> {
        if self.keys.is_empty() {
            return None;
        }
        let ids = self.keys.swap_remove(key)?;
        self.items -= ids.len();
        Some(ids)
    }

    /// A tracked key picked at random (for `tracking-table-max-keys`).
    pub fn random_key(&self) -> Option<Bytes> {
        if self.keys.is_empty() {
            return None;
        }
        let i = rand::random::<usize>() % self.keys.len();
        self.keys.get_index(i).map(|(k, _)| k.clone())
    }

    /// Forgets every tracked key (a flush): (keys, ids) dropped.
    pub fn clear(&mut self) -> (usize, usize) {
        let dropped = (self.keys.len(), self.items);
        self.keys = IndexMap::default();
        self.items = 0;
        dropped
    }

    /// Remembers that `key` changed, by client `by`, for the next broadcast.
    pub fn note_changed(&mut self, key: &[u8], by: u64) {
        match self.changed.get_mut(key) {
            Some(who) => *who = by,
            None => {
                self.changed.insert(Bytes::copy_from_slice(key), by);
            }
        }
    }

    #[inline]
    pub fn has_changed(&self) -> bool {
        !self.changed.is_empty()
    }

    /// The keys changed since the last call, for broadcasting.
    pub fn take_changed(&mut self) -> BTreeMap<Bytes, u64> {
        std::mem::take(&mut self.changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remember_take_and_counts() {
        let mut t = Tracked::default();
        assert_eq!(t.remember(b"a", 1), (true, true));
        assert_eq!(t.remember(b"a", 1), (false, false));
        assert_eq!(t.remember(b"a", 2), (false, true));
        assert_eq!(t.remember(b"b", 2), (true, true));
        assert_eq!((t.len(), t.items()), (2, 3));
        assert_eq!(t.take(b"a"), Some(vec![1, 2]));
        assert_eq!(t.take(b"a"), None);
        assert_eq!((t.len(), t.items()), (1, 1));
        assert_eq!(t.random_key().as_deref(), Some(&b"b"[..]));
        assert_eq!(t.clear(), (1, 1));
        assert!(t.is_empty() && t.random_key().is_none());
    }

    #[test]
    fn changed_keys_keep_the_last_writer_in_byte_order() {
        let mut t = Tracked::default();
        t.note_changed(b"b", 1);
        t.note_changed(b"a", 2);
        t.note_changed(b"b", 3);
        assert!(t.has_changed());
        let changed: Vec<(Bytes, u64)> = t.take_changed().into_iter().collect();
        assert_eq!(changed, vec![(Bytes::from_static(b"a"), 2), (Bytes::from_static(b"b"), 3)]);
        assert!(!t.has_changed());
    }
}
