//! The keys a shard's clients WATCH. A write to a watched key (`Ctx::written`)
//! or a FLUSHDB/FLUSHALL/SWAPDB over it marks the watching clients dirty;
//! EXEC checks the mark, and expiry, under the shard locks, as Redis 7.0 does.

use crate::storage::Db;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One client's watch: set when any watched key is touched.
#[derive(Default)]
pub struct Watcher {
    dirty: AtomicBool,
}

impl Watcher {
    pub fn dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }
}

/// What a watched key looked like when WATCH ran.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Seen {
    Absent,
    Live,
    /// Present but past its TTL: its later removal by expiry is no change.
    Expired,
}

struct Entry {
    db: usize,
    w: Arc<Watcher>,
    seen: Seen,
}

/// A shard's watched keys.
#[derive(Default)]
pub struct Watches {
    map: HashMap<Bytes, Vec<Entry>, ahash::RandomState>,
}

/// True when `key` is in `db`, expired or not (never reaps it).
pub fn present(db: &mut Db, key: &[u8], now: u64) -> bool {
    db.is_expired(key, now) || db.contains(key, now)
}

impl Watches {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A write to `key` in database `index` (Redis's touchWatchedKey).
    pub fn touch(&mut self, index: usize, key: &[u8], db: &mut Db, now: u64) {
        let Some(list) = self.map.get_mut(key) else {
            return;
        };
        let mut exists = None;
        for e in list.iter_mut().filter(|e| e.db == index) {
            if e.seen == Seen::Expired && !*exists.get_or_insert_with(|| present(db, key, now)) {
                // The expired key is gone: logically nothing changed.
                e.seen = Seen::Absent;
                continue;
            }
            e.w.dirty.store(true, Ordering::Release);
        }
    }

    /// Database `emptied` is about to be flushed, or swapped with `replaced`
    /// (Redis's touchAllWatchedKeysInDb): watchers of keys that exist in
    /// either become dirty, except where the change is only about expired keys.
    pub fn touch_db(&mut self, dbs: &mut [Db], emptied: usize, replaced: Option<usize>, now: u64) {
        if emptied >= dbs.len() || replaced.is_some_and(|r| r >= dbs.len()) {
            return;
        }
        for (key, list) in self.map.iter_mut() {
            if !list.iter().any(|e| e.db == emptied) {
                continue;
            }
            let in_emptied = present(&mut dbs[emptied], key, now);
            let in_replaced = replaced.is_some_and(|r| present(&mut dbs[r], key, now));
            if !in_emptied && !in_replaced {
                continue;
            }
            let replaced_expired = replaced.is_some_and(|r| dbs[r].is_expired(key, now));
            for e in list.iter_mut().filter(|e| e.db == emptied) {
                match e.seen {
                    Seen::Expired if !in_replaced => {
                        e.seen = Seen::Absent;
                        continue;
                    }
                    Seen::Expired if replaced_expired => continue,
                    Seen::Absent | Seen::Live if !in_emptied && replaced_expired => {
                        e.seen = Seen::Expired;
                        continue;
                    }
                    _ => {}
                }
                e.w.dirty.store(true, Ordering::Release);
            }
        }
    }

    pub fn add(&mut self, index: usize, key: &Bytes, w: &Arc<Watcher>, seen: Seen) {
        self.map.entry(key.clone()).or_default().push(Entry { db: index, w: w.clone(), seen });
    }

    pub fn remove(&mut self, index: usize, key: &[u8], w: &Arc<Watcher>) {
        if let Some(list) = self.map.get_mut(key) {
            list.retain(|e| !(e.db == index && Arc::ptr_eq(&e.w, w)));
            if list.is_empty() {
                self.map.remove(key);
            }
        }
    }

    /// At EXEC: false when `key` expired since WATCH (Redis 7.0 aborts then,
    /// whether or not the expired key was already reaped).
    pub fn unexpired(&self, index: usize, key: &[u8], w: &Arc<Watcher>, db: &mut Db, now: u64) -> bool {
        let Some(list) = self.map.get(key) else {
            return true;
        };
        list.iter().filter(|e| e.db == index && Arc::ptr_eq(&e.w, w)).all(|e| match e.seen {
            Seen::Expired => true,
            Seen::Absent => !db.is_expired(key, now),
            Seen::Live => !db.is_expired(key, now) && db.contains(key, now),
        })
    }
}
