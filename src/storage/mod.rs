//! Value types, the per-database keyspace and expiry.

pub mod alloc;
pub mod codec;
mod db;
pub mod geohash;
pub mod hash;
pub mod hll;
pub mod keyslots;
pub mod lazyfree;
pub mod list;
pub mod memory;
pub mod set;
pub mod small;
pub mod snapshot;
pub mod stream;
pub mod usage;
mod value;
pub mod varint;
pub mod zset;
mod zskiplist;

pub use db::{note_new_keys, take_expired_logged, Db, Entry, SavedKey, StrHint};
pub use value::{Hash, List, Set, SmallBytes, Stream, Value, ZSet};

/// CLIENT PAUSE WRITE/ALL in force until this Unix ms: expired keys read as
/// missing but are not removed, so the dataset does not change.
static EXPIRY_PAUSED_UNTIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn pause_expiry_until(until_ms: u64) {
    EXPIRY_PAUSED_UNTIL.store(until_ms, std::sync::atomic::Ordering::Release);
}

/// True while expiry is paused (checked only for keys whose TTL has passed).
pub fn expiry_paused(now: u64) -> bool {
    EXPIRY_PAUSED_UNTIL.load(std::sync::atomic::Ordering::Acquire) > now
        || REPLICA_KEEPS_EXPIRED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A replica does not expire keys itself: a key whose TTL passed reads as
/// missing to its clients but stays until its master's DEL arrives.
static REPLICA_KEEPS_EXPIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_replica_expiry(on: bool) {
    REPLICA_KEEPS_EXPIRED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// True while this server follows a master (its active expiry stops).
#[inline]
pub fn replica_expiry() -> bool {
    REPLICA_KEEPS_EXPIRED.load(std::sync::atomic::Ordering::Relaxed)
}

thread_local! {
    /// Set on the thread applying a master's stream: there every key is live
    /// whatever its TTL, as the master saw it when it ran the command.
    static TTL_IGNORED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

pub fn ignore_ttls_on_this_thread(on: bool) {
    TTL_IGNORED.with(|c| c.set(on));
}

#[inline]
pub fn ttls_ignored() -> bool {
    TTL_IGNORED.with(|c| c.get())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let t = crate::util::wall_clock();
    t.as_secs() * 1000 + t.subsec_millis() as u64
}
