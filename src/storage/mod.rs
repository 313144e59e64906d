//! Value types, the per-database keyspace and expiry.

pub mod alloc;
pub mod codec;
mod db;
pub mod geohash;
pub mod hash;
pub mod hll;
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

pub use db::{take_expired_logged, Db, Entry, StrHint};
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
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let t = crate::util::wall_clock();
    t.as_secs() * 1000 + t.subsec_millis() as u64
}
