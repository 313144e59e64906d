//! One logical database of one shard: the key table plus the index of keys with a TTL.
//!
//! # Layout (why it is not an `IndexMap<Bytes, ...>`)
//!
//! Redis spends about 100 bytes per small string key. A key here costs one
//! 64-byte [`Slot`] plus about 10 bytes of hash index:
//! - the key and a string value are [`SmallBytes`] (24 bytes each, inline up
//!   to 22 bytes: no allocation for typical keys and values);
//! - `Value` is 24 bytes (non-string types are boxed);
//! - slots live in fixed-size chunks rather than one vector, so growth never
//!   copies the whole keyspace nor leaves up to half of a doubled vector
//!   unused, and a slot's position is stable until a removal swaps the last
//!   slot into a hole;
//! - the hash index holds 4-byte slot positions (`hashbrown::HashTable<u32>`);
//!   the slot keeps the key's 32-bit hash, so growing the index rehashes no key.
//!
//! Positions are dense (`0..len`), which keeps RANDOMKEY, sampling and SCAN's
//! cursor O(1) as with an insertion-ordered map.

use super::keyslots::{self, SlotIndex};
use super::snapshot::{Emit, SnapState};
use super::{memory, SmallBytes, Value};
use bytes::Bytes;
use hashbrown::HashTable;
use indexmap::IndexSet;
use rand::Rng;

/// Slots per chunk (64 KiB of slots); only the first chunk grows gradually.
const CHUNK_SHIFT: u32 = 10;
const CHUNK: usize = 1 << CHUNK_SHIFT;

/// What the table stores per key.
#[derive(Debug)]
struct Slot {
    key: SmallBytes,
    entry: Entry,
    /// Last access for LRU, or LFU time and counter: see `storage::memory`.
    access: u32,
    /// The key's 30-bit hash (see `Db::hash`) above a 2-bit `StrHint`: the
    /// hash lets the index grow without rehashing keys, and both fit where
    /// the slot would otherwise have padding.
    meta: u32,
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

impl StrHint {
    fn bits(self) -> u32 {
        match self {
            StrHint::Plain => 0,
            StrHint::Raw => 1,
            StrHint::Embstr => 2,
        }
    }

    fn from_bits(b: u32) -> StrHint {
        match b & HINT_MASK {
            1 => StrHint::Raw,
            2 => StrHint::Embstr,
            _ => StrHint::Plain,
        }
    }
}

/// The low bits of `Slot::meta` that hold the `StrHint`.
const HINT_MASK: u32 = 3;

#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry time in Unix milliseconds, 0 when the key is persistent.
    pub expire_at: u64,
}

/// `Db::save` was told the value is not worth copying.
#[derive(Debug)]
pub struct NotSaved;

/// A key as it was (`Db::save`), to be put back (`Db::put_back`).
pub struct SavedKey {
    pub entry: Entry,
    access: u32,
    hint: u32,
}

/// Slots at dense positions, in chunks of `CHUNK`: every chunk but the last is full.
#[derive(Default)]
struct Slots {
    chunks: Vec<Vec<Slot>>,
    len: usize,
}

impl Slots {
    fn get(&self, i: usize) -> Option<&Slot> {
        self.chunks.get(i >> CHUNK_SHIFT)?.get(i & (CHUNK - 1))
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.chunks.get_mut(i >> CHUNK_SHIFT)?.get_mut(i & (CHUNK - 1))
    }

    fn push(&mut self, slot: Slot) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(slot),
            _ => {
                // The first chunk grows like a vector (small databases stay
                // small); later ones are allocated whole, once.
                let mut c = if self.chunks.is_empty() { Vec::new() } else { Vec::with_capacity(CHUNK) };
                c.push(slot);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    /// Removes the slot at `i`, moving the last slot into its place.
    fn swap_remove(&mut self, i: usize) -> Option<Slot> {
        if i >= self.len {
            return None;
        }
        // An emptied last chunk is kept until the next removal, so a key
        // added and removed at a chunk boundary does not allocate each time.
        if self.chunks.last().is_some_and(|c| c.is_empty()) {
            self.chunks.pop();
        }
        let last = self.chunks.last_mut()?.pop()?;
        self.len -= 1;
        if i == self.len {
            return Some(last);
        }
        self.get_mut(i).map(|s| std::mem::replace(s, last))
    }

    fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.chunks.iter().flatten()
    }
}

/// A keyspace. Removal swaps the last key into the hole, which is why
/// `scan` walks positions from the top down (see there).
#[derive(Default)]
pub struct Db {
    /// Positions in `slots`, found by the key's hash, in INDEX_PARTS tables
    /// chosen by hash bits (see `part`).
    index: [HashTable<u32>; INDEX_PARTS],
    slots: Slots,
    hasher: ahash::RandomState,
    /// Keys that carry a TTL, sampled by the active expiry cycle.
    volatile: IndexSet<SmallBytes, ahash::RandomState>,
    /// Keys reaped lazily (on access) and not yet added to the server's
    /// `expired_keys`: a `Db` cannot see the server, so whoever can drains it.
    lazy_expired: u64,
    /// Keys removed by expiry (lazily or actively) since the last drain, for
    /// `expired` keyspace notifications. Bounded: drained every expiry cycle.
    expired_log: Vec<Bytes>,
    /// A point-in-time snapshot in progress (`storage::snapshot`).
    snap: Option<Box<SnapState>>,
    /// A writable replica's own keys: those its clients wrote, which expire
    /// as on a master (Redis's expireSlaveKeys); every other key of a
    /// replica waits for its master's DEL.
    replica_own: ahash::AHashSet<Bytes>,
    /// Cluster mode: the keys of each hash slot (`storage::keyslots`).
    keyslots: Option<Box<SlotIndex>>,
    /// Keys created since the last drain, while `new` keyspace events are
    /// wanted (`note_new_keys`): the event layer notifies them ahead of the
    /// command's own event, as Redis notifies `new` when a key is added.
    created: Vec<Bytes>,
}

/// Whether key creations are logged for `new` keyspace events (the `n`
/// class of `notify-keyspace-events`, off unless asked for).
static NOTE_NEW_KEYS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn note_new_keys(on: bool) {
    NOTE_NEW_KEYS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// What one active expiry cycle over a database did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExpireCycle {
    pub removed: usize,
    pub sampled: usize,
    /// Stopped at its budget while keys were still found stale.
    pub capped: bool,
}

thread_local! {
    /// Set when this thread logged an expired key in some `Db`: whoever drains
    /// the logs after a command looks at every database only then.
    static EXPIRED_LOGGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread logged an expired key since the last call (and forgets it).
pub fn take_expired_logged() -> bool {
    EXPIRED_LOGGED.with(|f| f.replace(false))
}

/// Most expired keys remembered between two drains of the log.
const EXPIRED_LOG_MAX: usize = 4096;

/// The index's 64-bit hash from a slot's 30-bit one: hashbrown takes bucket
/// bits from the bottom and its tag from the top, so spread the bits over both.
fn spread(h: u32) -> u64 {
    (h as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The index is split into this many hash tables. A hashbrown table grows
/// by rehashing everything at once: one table of 1.5 million keys stalled
/// its shard for about 120 ms when it doubled (a SET's max latency under
/// load: 133 ms against 12-16 ms otherwise), where Redis rehashes
/// incrementally. Each part holds a sixteenth of the keys and grows on its
/// own, so a growth step costs a sixteenth of that.
const INDEX_PARTS: usize = 16;

/// Which part of the index holds hash `h`: bits of the spread hash that
/// hashbrown uses for neither the bucket (the bottom bits, for any table
/// below 2^40 buckets) nor the tag (the top 7).
#[inline]
fn part(h: u32) -> usize {
    ((spread(h) >> 40) as usize) % INDEX_PARTS
}

impl Db {
    pub fn new() -> Self {
        Self::default()
    }

    /// The key's 30-bit hash (the top bits of `Slot::meta`).
    fn hash(&self, key: &[u8]) -> u32 {
        (self.hasher.hash_one(key) as u32) >> 2
    }

    /// Position of `key`'s slot.
    fn find(&self, key: &[u8]) -> Option<usize> {
        self.find_hashed(key, self.hash(key))
    }

    fn find_hashed(&self, key: &[u8], h: u32) -> Option<usize> {
        let slots = &self.slots;
        self.index[part(h)]
            .find(spread(h), |&i| slots.get(i as usize).is_some_and(|s| s.meta >> 2 == h && s.key[..] == *key))
            .map(|&i| i as usize)
    }

    fn slot(&self, key: &[u8]) -> Option<&Slot> {
        self.find(key).and_then(|i| self.slots.get(i))
    }

    fn slot_mut(&mut self, key: &[u8]) -> Option<&mut Slot> {
        let i = self.find(key)?;
        self.snap_touch(i);
        self.slots.get_mut(i)
    }

    /// The slot at `i` may change: a snapshot in progress first keeps its
    /// value as of the snapshot's start (one branch when none runs).
    #[inline]
    fn snap_touch(&mut self, i: usize) {
        if let Some(snap) = self.snap.as_mut() {
            if let Some(s) = self.slots.get(i) {
                snap.touch(i, &s.key, &s.entry, s.access);
            }
        }
    }

    /// Appends a slot for a key known to be absent.
    fn insert_new(&mut self, key: &[u8], h: u32, entry: Entry) {
        let i = self.slots.len;
        // Positions are u32: 4 billion keys in one database of one shard
        // would need hundreds of GiB, far past any maxmemory.
        let pos = u32::try_from(i).expect("more than 2^32 keys in one database");
        self.slots.push(Slot { key: SmallBytes::from_slice(key), entry, access: memory::new_access(), meta: h << 2 });
        self.key_added(i, key);
        // Bounded like the expired log: every creating command drains it.
        if NOTE_NEW_KEYS.load(std::sync::atomic::Ordering::Relaxed) && self.created.len() < EXPIRED_LOG_MAX {
            self.created.push(Bytes::copy_from_slice(key));
        }
        if let Some(snap) = self.snap.as_mut() {
            snap.born(key);
        }
        let slots = &self.slots;
        self.index[part(h)]
            .insert_unique(spread(h), pos, |&j| spread(slots.get(j as usize).map_or(0, |s| s.meta >> 2)));
    }

    /// Removes the slot at position `i` from the index and the table.
    fn remove_at(&mut self, i: usize) -> Option<Slot> {
        if let Some(snap) = self.snap.as_ref() {
            // The removed key keeps its value in the snapshot; the last key,
            // moved into a hole the walk has passed, is emitted before it moves.
            let last = self.slots.len.saturating_sub(1);
            let behind = i < snap.cursor;
            self.snap_touch(i);
            if behind {
                self.snap_touch(last);
            }
        }
        let h = self.slots.get(i)?.meta >> 2;
        if let Ok(e) = self.index[part(h)].find_entry(spread(h), |&j| j as usize == i) {
            e.remove();
        }
        let last = self.slots.len - 1;
        let slot = self.slots.swap_remove(i)?;
        if let Some(ix) = self.keyslots.as_mut() {
            ix.removed(i, last);
        }
        if i != last {
            // The last slot moved into the hole: repoint its index entry.
            let moved = self.slots.get(i).map_or(0, |s| s.meta >> 2);
            if let Some(p) = self.index[part(moved)].find_mut(spread(moved), |&j| j as usize == last) {
                *p = i as u32;
            }
        }
        if slot.entry.expire_at != 0 {
            self.volatile.swap_remove(&slot.key[..]);
        }
        Some(slot)
    }

    /// A key was appended at `pos`: cluster mode indexes it by hash slot.
    #[inline]
    fn key_added(&mut self, pos: usize, key: &[u8]) {
        match self.keyslots.as_mut() {
            Some(ix) => ix.added(pos, key),
            None if keyslots::enabled() => self.index_slots(),
            None => {}
        }
    }

    /// Builds the slot index from the keys present (the first key added in
    /// cluster mode, or after a FLUSHALL).
    #[cold]
    fn index_slots(&mut self) {
        let mut ix = Box::<SlotIndex>::default();
        for (pos, s) in self.slots.iter().enumerate() {
            ix.added(pos, &s.key);
        }
        self.keyslots = Some(ix);
    }

    /// Keys in cluster hash slot `slot` (expired ones not yet reaped
    /// included, as Redis counts them).
    pub fn count_in_slot(&self, slot: usize) -> usize {
        match &self.keyslots {
            Some(ix) => ix.count(slot),
            None => self.iter().filter(|(k, _)| crate::shard::slot::key_slot(k) as usize == slot).count(),
        }
    }

    /// Up to `max` keys of cluster hash slot `slot`, newest first.
    pub fn keys_in_slot(&self, slot: usize, max: usize) -> Vec<Bytes> {
        match &self.keyslots {
            Some(ix) => {
                ix.positions(slot).take(max).filter_map(|p| self.slots.get(p).map(|s| s.key.to_bytes())).collect()
            }
            None => self
                .iter()
                .filter(|(k, _)| crate::shard::slot::key_slot(k) as usize == slot)
                .take(max)
                .map(|(k, _)| Bytes::copy_from_slice(k))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len
    }

    pub fn is_empty(&self) -> bool {
        self.slots.len == 0
    }

    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// The position of `key` if it is present and live; a key whose TTL has
    /// passed is removed (kept, but reported missing, while CLIENT PAUSE holds
    /// writes).
    fn live_slot(&mut self, key: &[u8], now: u64) -> Option<usize> {
        let i = self.find(key)?;
        if self.stale_at(i, now) {
            if !super::expiry_paused(now) {
                self.remove_expired(i);
                self.lazy_expired += 1;
            }
            return None;
        }
        Some(i)
    }

    fn stale_at(&self, i: usize, now: u64) -> bool {
        self.slots.get(i).is_some_and(|s| s.entry.expire_at != 0 && s.entry.expire_at <= now && !super::ttls_ignored())
    }

    /// Removes the key at `i` whose TTL passed, remembering it for notifications.
    fn remove_expired(&mut self, i: usize) {
        if let Some(s) = self.remove_at(i) {
            if self.expired_log.len() < EXPIRED_LOG_MAX {
                self.expired_log.push(s.key.to_bytes());
                EXPIRED_LOGGED.with(|f| f.set(true));
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

    /// Keys created since the last call (see `note_new_keys`).
    pub fn take_created(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.created)
    }

    /// Lazily reaped keys since the last call (for `expired_keys`).
    pub fn take_lazy_expired(&mut self) -> u64 {
        std::mem::take(&mut self.lazy_expired)
    }

    /// Looks `key` up with one hash probe, reaping it if its TTL has passed.
    /// The flag is true when this call reaped it: the caller counts it in
    /// `expired_keys` itself (it is not added to the lazy counter).
    pub fn lookup(&mut self, key: &[u8], now: u64) -> (Option<&mut Entry>, bool) {
        let Some(i) = self.find(key) else {
            return (None, false);
        };
        if self.stale_at(i, now) {
            if super::expiry_paused(now) {
                return (None, false);
            }
            self.remove_expired(i);
            return (None, true);
        }
        self.snap_touch(i);
        let slot = self.slots.get_mut(i).map(|s| {
            memory::touch(&mut s.access, now);
            &mut s.entry
        });
        (slot, false)
    }

    /// `lookup` for an in-place edit of a string: the hit slot's `StrHint`
    /// becomes `hint` in the same probe (SETBIT, BITFIELD: Redis unshares
    /// the value into a raw string before it edits it).
    pub fn lookup_hinted(&mut self, key: &[u8], now: u64, hint: StrHint) -> (Option<&mut Entry>, bool) {
        let Some(i) = self.find(key) else {
            return (None, false);
        };
        if self.stale_at(i, now) {
            if super::expiry_paused(now) {
                return (None, false);
            }
            self.remove_expired(i);
            return (None, true);
        }
        self.snap_touch(i);
        let slot = self.slots.get_mut(i).map(|s| {
            memory::touch(&mut s.access, now);
            s.meta = (s.meta & !HINT_MASK) | hint.bits();
            &mut s.entry
        });
        (slot, false)
    }

    /// True when `key` is present but its TTL has passed (KEYS skips such
    /// keys without deleting them, as Redis does).
    pub fn is_expired(&self, key: &[u8], now: u64) -> bool {
        self.find(key).is_some_and(|i| self.stale_at(i, now))
    }

    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.get_mut(key, now).map(|e| &*e)
    }

    /// `lookup` for callers that cannot count a reaped key themselves: it
    /// is counted lazily (see `take_lazy_expired`), so `expired_keys` sees it.
    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let i = self.live_slot(key, now)?;
        // The caller may change it: a snapshot in progress keeps it first.
        self.snap_touch(i);
        self.slots.get_mut(i).map(|s| {
            memory::touch(&mut s.access, now);
            &mut s.entry
        })
    }

    /// Looks `key` up without counting it as an access (OBJECT, eviction).
    /// Expired keys are reaped as by any lookup.
    pub fn peek(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        let i = self.live_slot(key, now)?;
        self.slots.get(i).map(|s| &s.entry)
    }

    /// The entry under `key` and its access word, as stored: expired or not,
    /// and without counting an access (DEBUG OBJECT, DEBUG DIGEST-VALUE).
    pub fn raw(&self, key: &[u8]) -> Option<(&Entry, u32)> {
        self.slot(key).map(|s| (&s.entry, s.access))
    }

    /// Seconds since the key was last accessed (OBJECT IDLETIME; meaningful
    /// while no LFU policy is selected).
    pub fn idle_secs(&mut self, key: &[u8], now: u64) -> Option<u64> {
        let i = self.live_slot(key, now)?;
        self.slots.get(i).map(|s| memory::idle_secs(s.access, now))
    }

    /// Sets the access word of `key` (RESTORE's IDLETIME and FREQ, keys
    /// loaded from an RDB file; see `memory::access_idle`/`access_freq`).
    pub fn set_access(&mut self, key: &[u8], access: u32) -> bool {
        match self.slot_mut(key) {
            Some(s) => {
                s.access = access;
                true
            }
            None => false,
        }
    }

    /// The key's decayed LFU counter (OBJECT FREQ; meaningful under an LFU policy).
    pub fn lfu_freq(&mut self, key: &[u8], now: u64) -> Option<u8> {
        let i = self.live_slot(key, now)?;
        self.slots.get(i).map(|s| memory::lfu_counter(s.access, now))
    }

    /// MEMORY USAGE of `key` (see `storage::usage` for the method): None
    /// when missing. A key whose TTL passed but that was not reaped yet is
    /// still measured, as Redis measures what its table holds.
    pub fn memory_usage(&self, key: &[u8], samples: usize) -> Option<usize> {
        use super::usage::{block, value_bytes};
        use std::mem::size_of;
        let slot = self.slot(key)?;
        // The slot, and one bucket of the index with its control byte at
        // the index's full load (7/8): what one more key costs, whatever
        // the current fill of this shard's tables.
        let mut n = size_of::<Slot>() + (size_of::<u32>() + 1) * 8 / 7 + 1;
        n += block(slot.key.heap_size());
        if slot.entry.expire_at != 0 {
            // Its entry in the TTL index (key handle and hash, a position
            // bucket with its control byte) and the index's copy of the key.
            n += size_of::<SmallBytes>() + size_of::<usize>() + (size_of::<usize>() + 1) * 8 / 7 + 1;
            n += block(slot.key.heap_size());
        }
        Some(n + value_bytes(&slot.entry.value, samples))
    }

    /// Bytes of the slot vectors.
    fn slots_bytes(&self) -> usize {
        self.slots.chunks.iter().map(|c| super::usage::block(c.capacity() * std::mem::size_of::<Slot>())).sum()
    }

    /// What this keyspace spends besides keys' and values' own bytes
    /// (MEMORY STATS's `overhead.hashtable.main` and `.expires`): the slot
    /// vectors and the hash index; the TTL index's entries and hash table.
    pub fn overhead(&self) -> (usize, usize) {
        use super::usage::{block, index_set_bytes, table_buckets, table_bytes};
        use std::mem::size_of;
        let index: usize = self.index.iter().map(|t| table_bytes(table_buckets(t.capacity()), size_of::<u32>())).sum();
        let chunk_list = block(self.slots.chunks.capacity() * size_of::<Vec<Slot>>());
        let main = self.slots_bytes() + chunk_list + index;
        let expires = if self.volatile.is_empty() {
            0
        } else {
            index_set_bytes(self.volatile.capacity(), size_of::<SmallBytes>() + size_of::<usize>())
        };
        (main, expires)
    }

    /// How the string under `key` was last written (Plain when missing).
    pub fn str_hint(&self, key: &[u8]) -> StrHint {
        self.slot(key).map_or(StrHint::Plain, |s| StrHint::from_bits(s.meta))
    }

    /// Records how the string under `key` was just written.
    pub fn set_str_hint(&mut self, key: &[u8], hint: StrHint) {
        if let Some(s) = self.slot_mut(key) {
            s.meta = (s.meta & !HINT_MASK) | hint.bits();
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
    pub fn set(&mut self, key: impl AsRef<[u8]>, value: Value) {
        self.set_with_expiry(key, value, 0);
    }

    /// Makes room for `additional` more keys (a loader's sizing hint), so a
    /// large load does not rehash the index again and again.
    pub fn reserve(&mut self, additional: usize) {
        let slots = &self.slots;
        for t in self.index.iter_mut() {
            t.reserve(additional.div_ceil(INDEX_PARTS), |&j| spread(slots.get(j as usize).map_or(0, |s| s.meta >> 2)));
        }
    }

    /// A key read from a file: added with one probe of the index when it is
    /// new (the common case), else stored over the old one. `access` is the
    /// LRU/LFU word to keep, if the file had one.
    pub fn insert_loaded(&mut self, key: &[u8], value: Value, expire_at: u64, access: Option<u32>) {
        let h = self.hash(key);
        let pos = self.slots.len;
        let slots = &self.slots;
        let fresh = match self.index[part(h)].entry(
            spread(h),
            |&i| slots.get(i as usize).is_some_and(|s| s.meta >> 2 == h && s.key[..] == *key),
            |&j| spread(slots.get(j as usize).map_or(0, |s| s.meta >> 2)),
        ) {
            hashbrown::hash_table::Entry::Vacant(v) if self.snap.is_none() && pos <= u32::MAX as usize => {
                v.insert(pos as u32);
                true
            }
            _ => false,
        };
        if !fresh {
            self.set_with_expiry(key, value, expire_at);
            if let Some(a) = access {
                self.set_access(key, a);
            }
            return;
        }
        if expire_at != 0 {
            self.volatile.insert(SmallBytes::from_slice(key));
        }
        let access = access.unwrap_or_else(memory::new_access);
        self.slots.push(Slot {
            key: SmallBytes::from_slice(key),
            entry: Entry { value, expire_at },
            access,
            meta: h << 2,
        });
        self.key_added(pos, key);
    }

    /// Stores `value` and sets the absolute expiry `expire_at` (0 = none).
    /// The key is copied: nothing stored refers to a request's buffer.
    pub fn set_with_expiry(&mut self, key: impl AsRef<[u8]>, value: Value, expire_at: u64) {
        let key = key.as_ref();
        let h = self.hash(key);
        let Some(i) = self.find_hashed(key, h) else {
            if expire_at != 0 {
                self.volatile.insert(SmallBytes::from_slice(key));
            }
            self.insert_new(key, h, Entry { value, expire_at });
            return;
        };
        self.snap_touch(i);
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        // An overwrite is a new object in Redis: it starts a fresh access history.
        s.access = memory::new_access();
        s.meta &= !HINT_MASK;
        let e = &mut s.entry;
        let had = e.expire_at != 0;
        // The old value is dropped after the slot is updated (a big one may take a while).
        let old = std::mem::replace(&mut e.value, value);
        e.expire_at = expire_at;
        if had && expire_at == 0 {
            self.volatile.swap_remove(key);
        } else if !had && expire_at != 0 {
            self.volatile.insert(SmallBytes::from_slice(key));
        }
        drop(old);
    }

    /// Replaces the value, keeping the key's TTL (SET KEEPTTL, in-place updates).
    pub fn set_keep_ttl(&mut self, key: impl AsRef<[u8]>, value: Value) {
        let key = key.as_ref();
        let h = self.hash(key);
        let found = self.find_hashed(key, h);
        if let Some(i) = found {
            self.snap_touch(i);
        }
        match found.and_then(|i| self.slots.get_mut(i)) {
            Some(s) => {
                s.access = memory::new_access();
                s.meta &= !HINT_MASK;
                s.entry.value = value;
            }
            None => self.insert_new(key, h, Entry { value, expire_at: 0 }),
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let i = self.find(key)?;
        self.remove_at(i).map(|s| s.entry)
    }

    /// Removes a key unless it already expired; returns whether a live key was removed.
    pub fn delete(&mut self, key: &[u8], now: u64) -> bool {
        match self.live_slot(key, now) {
            Some(i) => self.remove_at(i).is_some(),
            None => false,
        }
    }

    /// The key's absolute expiry in ms, 0 when persistent. None if the key is missing.
    pub fn expire_at(&mut self, key: &[u8], now: u64) -> Option<u64> {
        self.get(key, now).map(|e| e.expire_at)
    }

    /// Sets the absolute expiry of an existing key. Returns false if missing.
    pub fn set_expire(&mut self, key: &[u8], at: u64) -> bool {
        let Some(s) = self.slot_mut(key) else {
            return false;
        };
        let e = &mut s.entry;
        let was = e.expire_at;
        e.expire_at = at;
        if was == 0 && at != 0 {
            self.volatile.insert(SmallBytes::from_slice(key));
        } else if was != 0 && at == 0 {
            self.volatile.swap_remove(key);
        }
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
        self.snap_emit_rest();
        self.index = Default::default();
        self.slots = Slots::default();
        self.volatile = IndexSet::default();
        self.keyslots = None;
        // Creations not yet notified are of keys that are gone.
        self.created.clear();
        self.replica_own.clear();
    }

    /// A client of a writable replica wrote `key` (see `replica_own`).
    pub fn note_replica_own(&mut self, key: &[u8]) {
        if !self.replica_own.contains(key) {
            self.replica_own.insert(Bytes::copy_from_slice(key));
        }
    }

    /// Expires the replica's own keys whose TTL passed (logged as any expiry,
    /// for notifications and the AOF) and forgets those gone or without a
    /// TTL. Returns how many expired.
    pub fn expire_replica_own(&mut self, now: u64) -> usize {
        if self.replica_own.is_empty() {
            return 0;
        }
        let mut expired = 0;
        let keys: Vec<Bytes> = self.replica_own.iter().cloned().collect();
        for key in keys {
            let Some(i) = self.find(&key) else {
                self.replica_own.remove(&key);
                continue;
            };
            let at = self.slots.get(i).map_or(0, |s| s.entry.expire_at);
            if at == 0 {
                self.replica_own.remove(&key);
            } else if at <= now {
                self.remove_expired(i);
                self.replica_own.remove(&key);
                expired += 1;
            }
        }
        expired
    }

    /// A copy of `key` as stored (value, TTL, access word, string hint),
    /// expired or not, to put back with `put_back`: a standalone-mode
    /// script that must start over undoes its writes with these.
    /// Err when `worth` refuses the value (too costly to copy).
    pub fn save(&self, key: &[u8], worth: impl FnOnce(&Value) -> bool) -> Result<Option<SavedKey>, NotSaved> {
        match self.slot(key) {
            None => Ok(None),
            Some(s) if !worth(&s.entry.value) => Err(NotSaved),
            Some(s) => Ok(Some(SavedKey { entry: s.entry.clone(), access: s.access, hint: s.meta & HINT_MASK })),
        }
    }

    /// Makes `key` what `save` copied: absent for None.
    pub fn put_back(&mut self, key: &[u8], saved: Option<SavedKey>) {
        let Some(saved) = saved else {
            self.remove(key);
            return;
        };
        self.set_with_expiry(key, saved.entry.value, saved.entry.expire_at);
        if let Some(s) = self.slot_mut(key) {
            s.access = saved.access;
            s.meta = (s.meta & !HINT_MASK) | saved.hint;
        }
    }

    /// Stores `entry` as is (value and TTL), replacing any previous key:
    /// RENAME, COPY and MOVE carry the TTL along.
    pub fn put(&mut self, key: impl AsRef<[u8]>, entry: Entry) {
        self.set_with_expiry(key, entry.value, entry.expire_at);
    }

    /// Takes the whole content out (FLUSHALL ASYNC drops it on another thread).
    /// A snapshot in progress stays with this database.
    pub fn take(&mut self) -> Db {
        self.snap_emit_rest();
        let snap = self.snap.take();
        let old = std::mem::take(self);
        self.snap = snap;
        old
    }

    // ------------------------------------------------------------ snapshots

    /// Starts a snapshot of this database (call with every shard entered,
    /// so all databases share one instant). `db` is its index now.
    pub fn snapshot_begin(&mut self, db: usize, emit: Emit) {
        self.snap = Some(Box::new(SnapState::new(db, emit)));
    }

    /// Emits up to `max` more keys of the snapshot in progress. True when it
    /// has emitted them all (and detaches it).
    pub fn snapshot_step(&mut self, max: usize) -> bool {
        let Some(snap) = self.snap.as_mut() else {
            return true;
        };
        let end = self.slots.len.min(snap.cursor.saturating_add(max));
        while snap.cursor < end {
            let Some(s) = self.slots.get(snap.cursor) else {
                break;
            };
            snap.step(&s.key, &s.entry, s.access);
        }
        if snap.cursor >= self.slots.len {
            self.snap = None;
            return true;
        }
        false
    }

    /// Ends a snapshot early (the save failed or was aborted).
    pub fn snapshot_abort(&mut self) {
        self.snap = None;
    }

    /// A snapshot is in progress on this database (SWAPDB may have moved it
    /// to another index than the one the walk is at).
    pub fn snapshot_active(&self) -> bool {
        self.snap.is_some()
    }

    /// The whole database is about to go (FLUSHDB, FLUSHALL): a snapshot in
    /// progress first takes every key it has not emitted.
    fn snap_emit_rest(&mut self) {
        if self.snap.is_none() {
            return;
        }
        while !self.snapshot_step(4096) {}
    }

    /// A random live key, or None when the database is empty.
    pub fn random_key(&mut self, now: u64) -> Option<Bytes> {
        let mut rng = rand::thread_rng();
        // Expired keys met on the way are reaped; bound the tries like Redis.
        for _ in 0..100 {
            if self.slots.len == 0 {
                return None;
            }
            let i = rng.gen_range(0..self.slots.len);
            if self.stale_at(i, now) {
                self.remove_expired(i);
                self.lazy_expired += 1;
                continue;
            }
            return self.slots.get(i).map(|s| s.key.to_bytes());
        }
        let i = rng.gen_range(0..self.slots.len.max(1));
        self.slots.get(i).map(|s| s.key.to_bytes())
    }

    /// One step of a SCAN. `pos` is 0 to start, else the value returned by the
    /// previous step; returns the next position (0 when done).
    ///
    /// Positions count down from the top of the table. Removal swaps the last
    /// entry (already visited) into the hole, and insertion appends at the top
    /// (not yet visited): so every key present for the whole scan is returned
    /// at least once, which is SCAN's guarantee.
    pub fn scan(&self, pos: usize, count: usize, mut f: impl FnMut(&[u8], &Entry)) -> usize {
        let len = self.slots.len;
        let mut next = if pos == 0 { len } else { (pos - 1).min(len) };
        let mut visited = 0;
        while next > 0 && visited < count {
            next -= 1;
            if let Some(s) = self.slots.get(next) {
                f(&s.key, &s.entry);
            }
            visited += 1;
        }
        if next == 0 {
            0
        } else {
            next + 1
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.slots.iter().map(|s| (&s.key[..], &s.entry))
    }

    /// Every key with its entry and access word (LRU/LFU), as a save writes them.
    pub fn iter_with_access(&self) -> impl Iterator<Item = (&[u8], &Entry, u32)> {
        self.slots.iter().map(|s| (&s.key[..], &s.entry, s.access))
    }

    /// Calls `f` with up to `n` keys drawn at random (with repetition; only
    /// keys with a TTL when `volatile`), their entry and access word: the
    /// sample eviction picks its victims from.
    pub fn sample(&self, volatile: bool, n: usize, rng: &mut impl Rng, mut f: impl FnMut(&[u8], &Entry, u32)) {
        let len = if volatile { self.volatile.len() } else { self.slots.len };
        if len == 0 {
            return;
        }
        for _ in 0..n.min(len) {
            let i = rng.gen_range(0..len);
            let found =
                if volatile { self.volatile.get_index(i).and_then(|k| self.slot(k)) } else { self.slots.get(i) };
            if let Some(s) = found {
                f(&s.key, &s.entry, s.access);
            }
        }
    }

    /// A key drawn at random (only keys with a TTL when `volatile`), expired or not.
    pub fn random_candidate(&self, volatile: bool, rng: &mut impl Rng) -> Option<Bytes> {
        if volatile {
            let len = self.volatile.len();
            (len > 0).then(|| self.volatile.get_index(rng.gen_range(0..len)).map(|k| k.to_bytes())).flatten()
        } else {
            let len = self.slots.len;
            (len > 0).then(|| self.slots.get(rng.gen_range(0..len)).map(|s| s.key.to_bytes())).flatten()
        }
    }

    /// Active expiry: samples keys with a TTL and removes the expired ones.
    /// Returns how many were removed. Stops after `budget` samples.
    pub fn active_expire(&mut self, now: u64, budget: usize) -> usize {
        self.active_expire_cycle(now, budget).removed
    }

    /// `active_expire`, reporting what it sampled.
    pub fn active_expire_cycle(&mut self, now: u64, budget: usize) -> ExpireCycle {
        let mut removed = 0;
        let mut rng = rand::thread_rng();
        let mut sampled = 0;
        let mut capped = false;
        while !self.volatile.is_empty() {
            if sampled >= budget {
                // Out of work for this cycle while a quarter of the last round was stale.
                capped = true;
                break;
            }
            let mut expired_in_round = 0;
            let round = 20.min(self.volatile.len());
            for _ in 0..round {
                let i = rng.gen_range(0..self.volatile.len());
                let Some(k) = self.volatile.get_index(i) else {
                    break;
                };
                if let Some(pos) = self.find(k).filter(|&p| self.stale_at(p, now)) {
                    self.remove_expired(pos);
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
        ExpireCycle { removed, sampled, capped }
    }

    /// Up to `n` TTLs (ms from `now`) of keys that carry one, drawn at
    /// random when there are more (INFO keyspace's `avg_ttl`).
    pub fn sample_ttls(&self, now: u64, n: usize, rng: &mut impl Rng) -> Vec<u64> {
        let len = self.volatile.len();
        let ttl = |k: &SmallBytes| self.slot(k).map(|s| s.entry.expire_at.saturating_sub(now));
        if len <= n {
            return self.volatile.iter().filter_map(ttl).collect();
        }
        (0..n).filter_map(|_| self.volatile.get_index(rng.gen_range(0..len)).and_then(ttl)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::HashMap;

    fn val(s: &str) -> Value {
        Value::Str(SmallBytes::from(s))
    }

    #[test]
    fn put_back_restores_what_save_copied() {
        let mut db = Db::new();
        db.set_with_expiry("k", val("old"), 5_000);
        db.set_str_hint(b"k", StrHint::Raw);
        let k = db.save(b"k", |_| true).unwrap();
        let absent = db.save(b"new", |_| true).unwrap();
        assert!(db.save(b"k", |_| false).is_err());
        db.set("k", val("changed"));
        db.set("new", val("x"));
        db.put_back(b"k", k);
        db.put_back(b"new", absent);
        assert_eq!(text(&mut db, b"k"), Some(b"old".to_vec()));
        assert_eq!(db.expire_at(b"k", 0), Some(5_000));
        assert_eq!(db.volatile_len(), 1);
        assert_eq!(db.str_hint(b"k"), StrHint::Raw);
        assert!(!db.contains(b"new", 0));
        assert_eq!(db.len(), 1);
    }

    fn text(db: &mut Db, key: &[u8]) -> Option<Vec<u8>> {
        match db.value(key, 0) {
            Some(Value::Str(s)) => Some(s.to_vec()),
            _ => None,
        }
    }

    #[test]
    fn slot_is_64_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
    }

    /// Random inserts, overwrites, removals and TTL changes across several
    /// chunks agree with a HashMap model, and every position stays indexed.
    #[test]
    fn matches_a_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut db = Db::new();
        let mut model: HashMap<Vec<u8>, (String, u64)> = HashMap::new();
        for step in 0..30_000u32 {
            let k = format!("key:{}{}", rng.gen_range(0..3000), "x".repeat(rng.gen_range(0..30))).into_bytes();
            match rng.gen_range(0..10) {
                0..=4 => {
                    let v = format!("v{step}");
                    let at = if rng.gen_bool(0.2) { 1_000_000 + step as u64 } else { 0 };
                    db.set_with_expiry(&k, val(&v), at);
                    model.insert(k, (v, at));
                }
                5..=7 => assert_eq!(db.remove(&k).is_some(), model.remove(&k).is_some()),
                8 => {
                    let ok = db.set_expire(&k, 5);
                    assert_eq!(ok, model.get_mut(&k).map(|e| e.1 = 5).is_some());
                }
                _ => assert_eq!(text(&mut db, &k), model.get(&k).map(|e| e.0.clone().into_bytes())),
            }
        }
        assert_eq!(db.len(), model.len());
        let volatile = model.values().filter(|e| e.1 != 0).count();
        assert_eq!(db.volatile_len(), volatile);
        for (k, (v, at)) in &model {
            assert_eq!(db.expire_at(k, 0), Some(*at));
            assert_eq!(text(&mut db, k).as_deref(), Some(v.as_bytes()));
        }
        let mut seen = 0;
        let mut pos = 0;
        loop {
            pos = db.scan(pos, 100, |_, _| seen += 1);
            if pos == 0 {
                break;
            }
        }
        assert_eq!(seen, model.len());
        // Expire everything with a TTL at once.
        let mut reaped = 0;
        while db.volatile_len() > 0 {
            reaped += db.active_expire(u64::MAX - 1, 1000);
        }
        assert_eq!(reaped, volatile);
        assert_eq!(db.len(), model.len() - volatile);
    }
}
