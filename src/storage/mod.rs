//! Value types, the per-database keyspace and expiry.

pub mod alloc;
mod db;
pub mod geohash;
pub mod hash;
pub mod hll;
pub mod list;
pub mod memory;
pub mod set;
pub mod small;
pub mod stream;
pub mod usage;
mod value;
pub mod varint;
pub mod zset;
mod zskiplist;

pub use db::{Db, Entry, StrHint};
pub use value::{Hash, List, Set, SmallBytes, Stream, Value, ZSet};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
