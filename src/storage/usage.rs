//! Memory figures for `MEMORY USAGE` and `MEMORY STATS`: the bytes
//! moonshard's own layouts hold, computed from their sizes and capacities
//! (nothing is copied or walked beyond the samples).
//!
//! # Method
//!
//! - A key costs its slot in the keyspace table (`Db`, 64 bytes), one
//!   bucket of the hash index over the slots at the index's full load, its
//!   bytes when they are too long to live inside the slot, and, when it has
//!   a TTL, its entry in the TTL index. (The tables' current fill is left
//!   out: a shard holding few keys would charge them its minimum table.)
//! - A value costs every heap block it owns. A block is counted as the
//!   block the allocator hands out for the request ([`block`]: mimalloc's
//!   size classes), not as the bytes asked for.
//! - Fixed parts of a collection (its header, the vector or hash table that
//!   holds its elements) are counted exactly from their capacities. The
//!   per-element blocks of a large collection (one block per member or
//!   field/value pair in a hash table, per chunk of a list, per node of a
//!   stream) are sampled as Redis samples: the first `samples` elements are
//!   measured and their average is multiplied by the element count
//!   (`samples` 0 measures all). Packed encodings are one buffer: exact.
//! - Not counted: the allocator's own metadata, and the slack inside the
//!   B-tree nodes of a stream.

use super::value::Value;
use std::mem::size_of;

/// Redis's default number of sampled elements (`MEMORY USAGE ... SAMPLES`).
pub const DEFAULT_SAMPLES: usize = 5;

/// The size of the block mimalloc serves for a request of `n` bytes: up to
/// 64 bytes in steps of 8, then four size classes per power of two (at
/// most 12.5% over the request), and whole 4 KiB pages for requests past
/// the largest class (128 KiB).
pub fn block(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let words = n.div_ceil(8);
    if words <= 8 {
        return words * 8;
    }
    if n > 128 * 1024 {
        return n.next_multiple_of(4096);
    }
    let w = words - 1;
    let top = usize::BITS - 1 - w.leading_zeros();
    let shift = top - 2;
    (((w >> shift) + 1) << shift) * 8
}

/// Buckets of a SwissTable (hashbrown, the index of an `IndexMap`) able to
/// hold `capacity` entries: a power of two kept at most 7/8 full.
pub fn table_buckets(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        1..=3 => 4,
        4..=7 => 8,
        c => (c * 8 / 7).next_power_of_two(),
    }
}

/// A SwissTable's one block: `bucket` bytes per bucket plus one control
/// byte each (and a group of spare control bytes).
pub fn table_bytes(buckets: usize, bucket: usize) -> usize {
    if buckets == 0 {
        0
    } else {
        block(buckets * bucket + buckets + 16)
    }
}

/// An `IndexSet` with room for `capacity` entries of `entry` bytes (hash
/// included): the entry vector plus the index of `usize` positions.
pub fn index_set_bytes(capacity: usize, entry: usize) -> usize {
    block(capacity * entry) + table_bytes(table_buckets(capacity), size_of::<usize>())
}

/// `count` elements whose own blocks `sizes` yields (in iteration order),
/// measured on the first `samples` (all when 0) and scaled to `count`.
pub fn sampled(sizes: impl Iterator<Item = usize>, count: usize, samples: usize) -> usize {
    let limit = if samples == 0 { usize::MAX } else { samples };
    let (mut seen, mut total) = (0usize, 0usize);
    for s in sizes.take(limit) {
        seen += 1;
        total += s;
    }
    if seen == 0 {
        0
    } else {
        (total as f64 / seen as f64 * count as f64) as usize
    }
}

/// Heap bytes of a value (the 24-byte `Value` itself lives in the key's slot).
pub fn value_bytes(v: &Value, samples: usize) -> usize {
    match v {
        Value::Str(s) => s.heap_blocks(),
        Value::List(l) => block(size_of::<super::List>()) + l.heap_usage(samples),
        Value::Hash(h) => block(size_of::<super::Hash>()) + h.heap_usage(samples),
        Value::Set(s) => block(size_of::<super::Set>()) + s.heap_usage(samples),
        Value::ZSet(z) => block(size_of::<super::ZSet>()) + z.heap_usage(samples),
        Value::Stream(s) => block(size_of::<super::Stream>()) + s.heap_usage(samples),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes() {
        assert_eq!(block(0), 0);
        assert_eq!(block(1), 8);
        assert_eq!(block(64), 64);
        assert_eq!(block(65), 80);
        assert_eq!(block(80), 80);
        assert_eq!(block(81), 96);
        assert_eq!(block(129), 160);
        assert_eq!(block(1000), 1024);
        assert_eq!(block(1025), 1280);
        assert_eq!(block(200_000), 200_704);
        for n in 1..100_000 {
            let b = block(n);
            assert!(b >= n && b as f64 <= n as f64 * 1.25 + 8.0, "{n} -> {b}");
        }
    }

    #[test]
    fn sampling_scales() {
        assert_eq!(sampled([10, 20].into_iter(), 10, 5), 150);
        assert_eq!(sampled([10, 20, 30].into_iter(), 3, 0), 60);
        assert_eq!(sampled(std::iter::empty(), 0, 5), 0);
    }
}
