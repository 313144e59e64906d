//! One logical database of one shard: the key map plus the index of keys with a TTL.

use super::{memory, Value};
use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};
use rand::Rng;

type Map<K, V> = IndexMap<K, V, ahash::RandomState>;

/// What the map stores per key: the entry plus its access word for eviction
/// (kept beside `Entry` so that `Entry` stays what callers build and see).
#[derive(Debug)]
struct Slot {
    entry: Entry,
    /// Last access for LRU, or LFU time and counter: see `storage::memory`.
    access: u32,
    /// How a string value was last written, where that decides its OBJECT
    /// ENCODING (fits in `Slot`'s padding).
    str_hint: StrHint,
}

impl Slot {
    fn new(entry: Entry) -> Slot {
        Slot { entry, access: memory::new_access(), str_hint: StrHint::Plain }
    }
}

/// Redis encodes a string by how it was produced, not only by its content:
/// edited in place (APPEND, SETRANGE) it is `raw`, from INCRBYFLOAT `embstr`
/// even when it reads as an integer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StrHint {
    /// Encoded from the content (`int`, `embstr` or `raw` by length).
    #[default]
    Plain,
    Raw,
    Embstr,
}

#[derive(Debug)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry time in Unix milliseconds, 0 when the key is persistent.
    pub expire_at: u64,
}

/// A keyspace. Keys live in an insertion-ordered map so that a random key
/// and a scan position are O(1); deletion swaps the last key into the hole,
/// which is why `scan` walks positions from the top down (see there).
#[derive(Default)]
pub struct Db {
    map: Map<Bytes, Slot>,
    /// Keys that carry a TTL, sampled by the active expiry cycle.
    volatile: IndexSet<Bytes, ahash::RandomState>,
    /// Keys reaped lazily (on access) and not yet added to the server's
    /// `expired_keys`: a `Db` cannot see the server, so whoever can drains it.
    lazy_expired: u64,
    /// Keys removed by expiry (lazily or actively) since the last drain, for
    /// `expired` keyspace notifications. Bounded: drained every expiry cycle.
    expired_log: Vec<Bytes>,
}

/// Most expired keys remembered between two drains of the log.
const EXPIRED_LOG_MAX: usize = 4096;

impl Db {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// Removes `key` if its TTL has passed. Returns true when it did.
    fn expire_if_needed(&mut self, key: &[u8], now: u64) -> bool {
        match self.map.get(key) {
            Some(s) if s.entry.expire_at != 0 && s.entry.expire_at <= now => {
                self.remove_expired(key);
                self.lazy_expired += 1;
                true
            }
            _ => false,
        }
    }

    /// Removes a key whose TTL passed, remembering it for notifications.
    fn remove_expired(&mut self, key: &[u8]) {
        if let Some((_, k, _)) = self.map.swap_remove_full(key) {
            self.volatile.swap_remove(key);
            if self.expired_log.len() < EXPIRED_LOG_MAX {
                self.expired_log.push(k);
            }
        }
    }

    /// Keys removed by expiry since the last call (`expired` notifications).
    pub fn take_expired_log(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.expired_log)
    }

    /// True when some expired key waits in the log.
    pub fn has_expired_log(&self) -> bool {
        !self.expired_log.is_empty()
    }

    /// Lazily reaped keys since the last call (for `expired_keys`).
    pub fn take_lazy_expired(&mut self) -> u64 {
        std::mem::take(&mut self.lazy_expired)
    }

    /// Looks `key` up with one hash probe, reaping it if its TTL has passed.
    /// The flag is true when this call reaped it: the caller counts it in
    /// `expired_keys` itself (it is not added to the lazy counter).
    pub fn lookup(&mut self, key: &[u8], now: u64) -> (Option<&mut Entry>, bool) {
        let Some(i) = self.map.get_index_of(key) else {
            return (None, false);
        };
        let at = self.map.get_index(i).map_or(0, |(_, s)| s.entry.expire_at);
        if at != 0 && at <= now {
            self.remove_expired(key);
            return (None, true);
        }
        let slot = self.map.get_index_mut(i).map(|(_, s)| {
            memory::touch(&mut s.access, now);
            &mut s.entry
        });
        (slot, false)
    }

    /// True when `key` is present but its TTL has passed (KEYS skips such
    /// keys without deleting them, as Redis does).
    pub fn is_expired(&self, key: &[u8], now: u64) -> bool {
        matches!(self.map.get(key), Some(s) if s.entry.expire_at != 0 && s.entry.expire_at <= now)
    }

    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.get_mut(key, now).map(|e| &*e)
    }

    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.expire_if_needed(key, now);
        let s = self.map.get_mut(key)?;
        memory::touch(&mut s.access, now);
        Some(&mut s.entry)
    }

    /// Looks `key` up without counting it as an access (OBJECT, eviction).
    /// Expired keys are reaped as by any lookup.
    pub fn peek(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.expire_if_needed(key, now);
        self.map.get(key).map(|s| &s.entry)
    }

    /// Seconds since the key was last accessed (OBJECT IDLETIME; meaningful
    /// while no LFU policy is selected).
    pub fn idle_secs(&mut self, key: &[u8], now: u64) -> Option<u64> {
        self.expire_if_needed(key, now);
        self.map.get(key).map(|s| memory::idle_secs(s.access, now))
    }

    /// The key's decayed LFU counter (OBJECT FREQ; meaningful under an LFU policy).
    pub fn lfu_freq(&mut self, key: &[u8], now: u64) -> Option<u8> {
        self.expire_if_needed(key, now);
        self.map.get(key).map(|s| memory::lfu_counter(s.access, now))
    }

    /// How the string under `key` was last written (Plain when missing).
    pub fn str_hint(&self, key: &[u8]) -> StrHint {
        self.map.get(key).map_or(StrHint::Plain, |s| s.str_hint)
    }

    /// Records how the string under `key` was just written.
    pub fn set_str_hint(&mut self, key: &[u8], hint: StrHint) {
        if let Some(s) = self.map.get_mut(key) {
            s.str_hint = hint;
        }
    }

    /// The value under `key`, if any and not expired.
    pub fn value(&mut self, key: &[u8], now: u64) -> Option<&Value> {
        self.get(key, now).map(|e| &e.value)
    }

    pub fn value_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Value> {
        self.get_mut(key, now).map(|e| &mut e.value)
    }

    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.get(key, now).is_some()
    }

    /// Stores `value` under `key`, dropping any TTL (as Redis's plain SET does).
    pub fn set(&mut self, key: Bytes, value: Value) {
        self.set_with_expiry(key, value, 0);
    }

    /// Stores `value` and sets the absolute expiry `expire_at` (0 = none).
    pub fn set_with_expiry(&mut self, key: Bytes, value: Value, expire_at: u64) {
        match self.map.get_full_mut(&key[..]) {
            Some((_, _, s)) => {
                // An overwrite is a new object in Redis: it starts a fresh access history.
                s.access = memory::new_access();
                s.str_hint = StrHint::Plain;
                let e = &mut s.entry;
                let had = e.expire_at != 0;
                e.value = value;
                e.expire_at = expire_at;
                if had && expire_at == 0 {
                    self.volatile.swap_remove(&key[..]);
                } else if !had && expire_at != 0 {
                    self.volatile.insert(key);
                }
            }
            None => {
                if expire_at != 0 {
                    self.volatile.insert(key.clone());
                }
                self.map.insert(key, Slot::new(Entry { value, expire_at }));
            }
        }
    }

    /// Replaces the value, keeping the key's TTL (SET KEEPTTL, in-place updates).
    pub fn set_keep_ttl(&mut self, key: Bytes, value: Value) {
        match self.map.get_mut(&key[..]) {
            Some(s) => {
                s.access = memory::new_access();
                s.str_hint = StrHint::Plain;
                s.entry.value = value;
            }
            None => {
                self.map.insert(key, Slot::new(Entry { value, expire_at: 0 }));
            }
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let s = self.map.swap_remove(key)?;
        if s.entry.expire_at != 0 {
            self.volatile.swap_remove(key);
        }
        Some(s.entry)
    }

    /// Removes a key unless it already expired; returns whether a live key was removed.
    pub fn delete(&mut self, key: &[u8], now: u64) -> bool {
        if self.expire_if_needed(key, now) {
            return false;
        }
        self.remove(key).is_some()
    }

    /// The key's absolute expiry in ms, 0 when persistent. None if the key is missing.
    pub fn expire_at(&mut self, key: &[u8], now: u64) -> Option<u64> {
        self.get(key, now).map(|e| e.expire_at)
    }

    /// Sets the absolute expiry of an existing key. Returns false if missing.
    pub fn set_expire(&mut self, key: &[u8], at: u64) -> bool {
        let Some((_, k, s)) = self.map.get_full_mut(key) else {
            return false;
        };
        let e = &mut s.entry;
        if e.expire_at == 0 && at != 0 {
            self.volatile.insert(k.clone());
        } else if e.expire_at != 0 && at == 0 {
            self.volatile.swap_remove(key);
        }
        e.expire_at = at;
        true
    }

    /// Drops the TTL of `key`; true when it had one.
    pub fn persist(&mut self, key: &[u8], now: u64) -> bool {
        match self.get_mut(key, now) {
            Some(e) if e.expire_at != 0 => {
                e.expire_at = 0;
                self.volatile.swap_remove(key);
                true
            }
            _ => false,
        }
    }

    pub fn clear(&mut self) {
        self.map = Map::default();
        self.volatile = IndexSet::default();
    }

    /// Stores `entry` as is (value and TTL), replacing any previous key:
    /// RENAME, COPY and MOVE carry the TTL along.
    pub fn put(&mut self, key: Bytes, entry: Entry) {
        self.set_with_expiry(key, entry.value, entry.expire_at);
    }

    /// Takes the whole content out (FLUSHALL ASYNC drops it on another thread).
    pub fn take(&mut self) -> Db {
        std::mem::take(self)
    }

    /// A random live key, or None when the database is empty.
    pub fn random_key(&mut self, now: u64) -> Option<Bytes> {
        let mut rng = rand::thread_rng();
        // Expired keys met on the way are reaped; bound the tries like Redis.
        for _ in 0..100 {
            if self.map.is_empty() {
                return None;
            }
            let i = rng.gen_range(0..self.map.len());
            let (k, s) = self.map.get_index(i)?;
            if s.entry.expire_at != 0 && s.entry.expire_at <= now {
                let k = k.clone();
                self.remove_expired(&k);
                self.lazy_expired += 1;
                continue;
            }
            return Some(k.clone());
        }
        let i = rng.gen_range(0..self.map.len().max(1));
        self.map.get_index(i).map(|(k, _)| k.clone())
    }

    /// One step of a SCAN. `pos` is 0 to start, else the value returned by the
    /// previous step; returns the next position (0 when done).
    ///
    /// Positions count down from the top of the map. Removal swaps the last
    /// entry (already visited) into the hole, and insertion appends at the top
    /// (not yet visited): so every key present for the whole scan is returned
    /// at least once, which is SCAN's guarantee.
    pub fn scan(&self, pos: usize, count: usize, mut f: impl FnMut(&Bytes, &Entry)) -> usize {
        let mut next = if pos == 0 { self.map.len() } else { (pos - 1).min(self.map.len()) };
        let mut visited = 0;
        while next > 0 && visited < count {
            next -= 1;
            if let Some((k, s)) = self.map.get_index(next) {
                f(k, &s.entry);
            }
            visited += 1;
        }
        if next == 0 {
            0
        } else {
            next + 1
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.map.iter().map(|(k, s)| (k, &s.entry))
    }

    /// Calls `f` with up to `n` keys drawn at random (with repetition; only
    /// keys with a TTL when `volatile`), their entry and access word: the
    /// sample eviction picks its victims from.
    pub fn sample(&self, volatile: bool, n: usize, rng: &mut impl Rng, mut f: impl FnMut(&Bytes, &Entry, u32)) {
        let len = if volatile { self.volatile.len() } else { self.map.len() };
        if len == 0 {
            return;
        }
        for _ in 0..n.min(len) {
            let i = rng.gen_range(0..len);
            let found = if volatile {
                self.volatile.get_index(i).and_then(|k| self.map.get_key_value(&k[..]))
            } else {
                self.map.get_index(i)
            };
            if let Some((k, s)) = found {
                f(k, &s.entry, s.access);
            }
        }
    }

    /// A key drawn at random (only keys with a TTL when `volatile`), expired or not.
    pub fn random_candidate(&self, volatile: bool, rng: &mut impl Rng) -> Option<Bytes> {
        if volatile {
            let len = self.volatile.len();
            (len > 0).then(|| self.volatile.get_index(rng.gen_range(0..len)).cloned()).flatten()
        } else {
            let len = self.map.len();
            (len > 0).then(|| self.map.get_index(rng.gen_range(0..len)).map(|(k, _)| k.clone())).flatten()
        }
    }

    /// Active expiry: samples keys with a TTL and removes the expired ones.
    /// Returns how many were removed. Stops after `budget` samples.
    pub fn active_expire(&mut self, now: u64, budget: usize) -> usize {
        let mut removed = 0;
        let mut rng = rand::thread_rng();
        let mut sampled = 0;
        while sampled < budget && !self.volatile.is_empty() {
            let mut expired_in_round = 0;
            let round = 20.min(self.volatile.len());
            for _ in 0..round {
                let i = rng.gen_range(0..self.volatile.len());
                let Some(k) = self.volatile.get_index(i) else {
                    break;
                };
                let expired =
                    matches!(self.map.get(&k[..]), Some(s) if s.entry.expire_at != 0 && s.entry.expire_at <= now);
                if expired {
                    let k = k.clone();
                    self.remove_expired(&k);
                    expired_in_round += 1;
                }
                sampled += 1;
                if self.volatile.is_empty() {
                    break;
                }
            }
            removed += expired_in_round;
            // Like Redis: keep going only while a quarter of the sample was stale.
            if expired_in_round * 4 < round {
                break;
            }
        }
        removed
    }
}
