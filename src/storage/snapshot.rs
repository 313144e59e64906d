//! Point-in-time snapshots of a `Db` without copying it and without fork.
//!
//! A snapshot starts (with every shard entered, so all databases share one
//! instant) by attaching a `SnapState` to each `Db`. A background job then
//! walks each database's slots in position order, emitting every key that
//! existed at the start, a chunk at a time under the shard's lock. Writes go
//! on meanwhile; before one changes or removes a key the walk has not reached
//! yet, the `Db` emits that key's value as it was at the start (copy on
//! write, per key). So the emitted set is exactly the dataset at the start,
//! and the extra memory is bounded by what is written during the snapshot,
//! not by the dataset.
//!
//! The bookkeeping: `cursor` (positions below it are emitted), `done` (keys
//! at or above it already emitted out of order), `born` (keys created after
//! the start, never emitted). A removal swaps the last slot into the hole;
//! when the hole is below the cursor, the moved key is emitted first, since
//! the walk would now miss it.

use super::db::Entry;
use bytes::Bytes;
use std::collections::HashSet;

/// Receives the snapshot's keys: (database at the start, key, entry, LRU/LFU word).
pub type Emit = Box<dyn FnMut(usize, &[u8], &Entry, u32) + Send>;

pub struct SnapState {
    /// The database's index when the snapshot started (SWAPDB moves the
    /// `Db` and its state together).
    pub db: usize,
    pub cursor: usize,
    done: HashSet<Bytes, ahash::RandomState>,
    born: HashSet<Bytes, ahash::RandomState>,
    emit: Emit,
    /// Keys emitted so far.
    pub emitted: u64,
}

impl SnapState {
    pub fn new(db: usize, emit: Emit) -> SnapState {
        SnapState { db, cursor: 0, done: HashSet::default(), born: HashSet::default(), emit, emitted: 0 }
    }

    /// The key at position `pos` is about to change or move: emit its value
    /// as of the start if the walk has not and nothing else has.
    pub fn touch(&mut self, pos: usize, key: &[u8], entry: &Entry, access: u32) {
        if pos < self.cursor || self.born.contains(key) || self.done.contains(key) {
            return;
        }
        (self.emit)(self.db, key, entry, access);
        self.emitted += 1;
        self.done.insert(Bytes::copy_from_slice(key));
    }

    /// A key was created after the start.
    pub fn born(&mut self, key: &[u8]) {
        self.born.insert(Bytes::copy_from_slice(key));
    }

    /// The walk's step over the slot at the cursor.
    pub fn step(&mut self, key: &[u8], entry: &Entry, access: u32) {
        if !self.born.contains(key) && !self.done.remove(key) {
            (self.emit)(self.db, key, entry, access);
            self.emitted += 1;
        }
        self.cursor += 1;
    }

    /// Bytes of bookkeeping held (INFO's view of the snapshot's overhead).
    pub fn overhead(&self) -> usize {
        (self.done.iter().chain(self.born.iter())).map(|k| k.len() + 32).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::db::Db;
    use super::super::{SmallBytes, Value};
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    fn text(v: &Value) -> Vec<u8> {
        match v {
            Value::Str(s) => s.as_slice().to_vec(),
            _ => b"?".to_vec(),
        }
    }

    /// Random writes, deletions, expiries and flushes interleaved with the
    /// walk: what the snapshot emits is exactly the database at the start.
    #[test]
    fn emits_exactly_the_dataset_at_the_start() {
        for seed in 0..40u64 {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut db = Db::new();
            let n = rng.gen_range(0..3000);
            for i in 0..n {
                let exp = if rng.gen_bool(0.2) { 1_000_000 + rng.gen_range(0..1000) } else { 0 };
                db.set_with_expiry(format!("k{i}"), Value::Str(SmallBytes::from_slice(b"start")), exp);
            }
            let at_start: BTreeMap<Vec<u8>, Vec<u8>> = db.iter().map(|(k, e)| (k.to_vec(), text(&e.value))).collect();
            let got: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>> = Arc::default();
            let sink = got.clone();
            db.snapshot_begin(
                3,
                Box::new(move |dbi, k, e, _| {
                    assert_eq!(dbi, 3);
                    let old = sink.lock().unwrap().insert(k.to_vec(), text(&e.value));
                    assert!(old.is_none(), "key emitted twice");
                }),
            );
            let mut finished = false;
            while !finished {
                for _ in 0..rng.gen_range(0..20) {
                    let k = format!("k{}", rng.gen_range(0..n.max(1) + 500));
                    match rng.gen_range(0..10) {
                        0..=3 => db.set(&k, Value::Str(SmallBytes::from_slice(b"changed"))),
                        4..=5 => {
                            db.remove(k.as_bytes());
                        }
                        6 => {
                            db.set_expire(k.as_bytes(), 5);
                        }
                        7 => {
                            // Reaps keys whose TTL passed (now = far future).
                            db.active_expire(u64::MAX - 1, 5);
                        }
                        8 => {
                            if let (Some(e), _) = db.lookup(k.as_bytes(), 0) {
                                e.value = Value::Str(SmallBytes::from_slice(b"in place"));
                            }
                            // Every way to a mutable entry keeps the snapshot's copy.
                            if let Some(e) = db.get_mut(format!("k{}", rng.gen_range(0..n.max(1))).as_bytes(), 0) {
                                e.value = Value::Str(SmallBytes::from_slice(b"through get_mut"));
                            }
                        }
                        _ => {
                            if rng.gen_bool(0.02) {
                                db.clear();
                            }
                        }
                    }
                }
                finished = db.snapshot_step(rng.gen_range(1..50));
            }
            assert_eq!(*got.lock().unwrap(), at_start, "seed {seed}");
        }
    }
}
