//! The clients blocked on a shard's keys (BLPOP and friends), FIFO per key.
//! A write to a key wakes the first client queued on it; the client retries
//! under the shard locks and either pops or passes the wake-up on.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::Notify;

/// One blocked client, queued on each of its keys.
pub struct Waiter {
    pub db: usize,
    pub notify: Notify,
}

impl Waiter {
    pub fn new(db: usize) -> Waiter {
        Waiter { db, notify: Notify::new() }
    }
}

/// A shard's queues of clients blocked on its keys.
#[derive(Default)]
pub struct Waiters {
    queues: HashMap<Bytes, VecDeque<Arc<Waiter>>, ahash::RandomState>,
}

impl Waiters {
    /// Wakes the first client blocked on `key` in `db` (called on every write).
    pub fn signal(&self, db: usize, key: &[u8]) {
        if self.queues.is_empty() {
            return;
        }
        if let Some(w) = self.queues.get(key).and_then(|q| q.iter().find(|w| w.db == db)) {
            w.notify.notify_one();
        }
    }

    /// Wakes every client blocked on `key` in `db` (XADD: readers do not
    /// consume, so each of them may be served).
    pub fn signal_all(&self, db: usize, key: &[u8]) {
        if let Some(q) = self.queues.get(key) {
            for w in q.iter().filter(|w| w.db == db) {
                w.notify.notify_one();
            }
        }
    }

    /// Wakes every client blocked on any key of `db` (FLUSHDB, FLUSHALL,
    /// SWAPDB): each looks at its keys again. A stream reader whose key is
    /// gone gets Redis's "no longer exists" error; the others wait on.
    pub fn signal_db(&self, db: usize) {
        for w in self.queues.values().flatten().filter(|w| w.db == db) {
            w.notify.notify_one();
        }
    }

    /// Wakes the client queued right after `w` on `key` (a woken client
    /// that could not use the key passes the wake-up on).
    pub fn signal_after(&self, key: &[u8], w: &Arc<Waiter>) {
        let Some(q) = self.queues.get(key) else {
            return;
        };
        let mut after = q.iter().skip_while(|x| !Arc::ptr_eq(x, w)).skip(1);
        if let Some(next) = after.find(|x| x.db == w.db) {
            next.notify.notify_one();
        }
    }

    pub fn add(&mut self, key: &Bytes, w: &Arc<Waiter>) {
        let q = self.queues.entry(key.clone()).or_default();
        if !q.iter().any(|x| Arc::ptr_eq(x, w)) {
            q.push_back(w.clone());
        }
    }

    pub fn remove(&mut self, key: &[u8], w: &Arc<Waiter>) {
        if let Some(q) = self.queues.get_mut(key) {
            q.retain(|x| !Arc::ptr_eq(x, w));
            if q.is_empty() {
                self.queues.remove(key);
            }
        }
    }

    /// Number of (client, key) registrations: 0 when nobody is blocked here.
    pub fn len(&self) -> usize {
        self.queues.values().map(|q| q.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}
