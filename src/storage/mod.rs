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
mod value;
pub mod varint;
pub mod zset;
mod zskiplist;

pub use db::{Db, Entry, StrHint};
pub use value::{Hash, List, Set, SmallBytes, Stream, Value, ZSet};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let t = crate::util::wall_clock();
    t.as_secs() * 1000 + t.subsec_millis() as u64
}
