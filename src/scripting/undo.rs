//! Standalone mode: taking back the writes of a script that must start over.
//!
//! A script enters the shards of keys it did not declare as it meets them
//! (`call::enter`). A shard above every shard it holds is waited for; one
//! below is only tried, because waiting for it could close a cycle with a
//! script that holds it and waits upwards. When that shard is busy, the
//! script starts over with the larger set, entered in ascending order. If it
//! already wrote, its writes are first put back as they were, from this
//! journal: the copy of each key it wrote, taken before its first write of
//! that key, and the position of the write stream (AOF, replicas) it had
//! reached, so that no client, file or replica sees a partial run.
//!
//! Copies cost time, so the journal is kept only while it can be needed:
//! while the shards the script holds are not all the shards from 0 to its
//! highest one (then a shard below may be missing). A write the journal
//! cannot take back (a big value, an effect outside the keys such as a
//! keyspace notification or PUBLISH) first makes the script hold every
//! shard below its highest (`call::prepare_effects`); from then on it never
//! needs a shard below one it holds, and enters any gap above in ascending
//! order, so it never has to start over.

use crate::commands::registry::Command;
use crate::shard::ShardData;
use crate::storage::{SavedKey, SmallBytes, Value};
use std::cell::Cell;

/// Most keys a journal copies: past that, cheaper to hold the shards below.
const MAX_KEYS: usize = 256;
/// Largest value copied (heap bytes).
const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most bytes one journal holds.
const MAX_BYTES: usize = 1024 * 1024;
/// Largest collection copied (elements; checked first, so that measuring
/// the bytes of a big one costs nothing).
const MAX_ELEMENTS: usize = 128;

/// What a script wrote, as it was before (see the module comment).
pub struct Journal {
    /// Every write so far can be taken back. False once the script holds
    /// every shard below its highest and wrote: nothing is recorded then.
    pub undoable: bool,
    saved: Vec<Before>,
    /// Heap bytes of the copies.
    bytes: usize,
}

struct Before {
    shard: usize,
    db: usize,
    key: SmallBytes,
    was: Option<SavedKey>,
    /// The write stream's unit length when the copy was taken: later
    /// commands on this key are the script's own.
    unit_at: usize,
}

thread_local! {
    /// The list of the last journal on this thread, kept for the next one:
    /// a script writing small values on one shard allocates nothing here.
    static SPARE: Cell<Vec<Before>> = const { Cell::new(Vec::new()) };
}

impl Journal {
    pub fn new() -> Journal {
        Journal { undoable: true, saved: Vec::new(), bytes: 0 }
    }

    /// No rollback can be needed any more: forget the copies.
    pub fn close(&mut self) {
        self.undoable = false;
        self.saved.clear();
        self.bytes = 0;
    }

    /// Copies `key` (database `db` of `data`) unless it is already copied.
    /// False when the copy would cost too much: the caller must not rely on
    /// the journal for this write.
    pub fn record(&mut self, data: &ShardData, db: usize, key: &[u8]) -> bool {
        let shard = data.id;
        if self.saved.iter().any(|b| b.shard == shard && b.db == db && b.key[..] == *key) {
            return true;
        }
        if self.saved.len() >= MAX_KEYS {
            return false;
        }
        let Some(d) = data.dbs.get(db) else { return false };
        let budget = MAX_BYTES.saturating_sub(self.bytes).min(MAX_VALUE_BYTES);
        let mut size = 0;
        let Ok(was) = d.save(key, |v| {
            size = copy_size(v);
            size <= budget
        }) else {
            return false;
        };
        self.bytes += size;
        if self.saved.capacity() == 0 {
            self.saved = SPARE.with(|s| s.take());
        }
        let unit_at = crate::propagate::unit_len();
        self.saved.push(Before { shard, db, key: SmallBytes::from_slice(key), was, unit_at });
        true
    }

    /// Whether anything was recorded.
    pub fn is_empty(&self) -> bool {
        self.saved.is_empty()
    }

    /// Puts every copied key back as it was, newest first, and forgets the
    /// script's commands in the write stream's unit (not the deletions of
    /// other keys it found expired). `data_of` finds a held shard's data.
    pub fn roll_back(&mut self, mut data_of: impl FnMut(usize) -> Option<*mut ShardData>) {
        let Some(from) = self.saved.iter().map(|b| b.unit_at).min() else { return };
        let saved = std::mem::take(&mut self.saved);
        crate::propagate::unit_forget(from, |db, argv, at| {
            let expiry =
                argv.len() == 2 && (argv[0].eq_ignore_ascii_case(b"del") || argv[0].eq_ignore_ascii_case(b"unlink"));
            expiry && !saved.iter().any(|b| b.db == db && b.key[..] == argv[1][..] && b.unit_at <= at)
        });
        for b in saved.into_iter().rev() {
            let Some(data) = data_of(b.shard) else { continue };
            // SAFETY: `data_of` returns the data of a shard the script holds
            // (locked until it returns) and that nothing else references
            // while the rollback runs (no command of the script is running).
            let data = unsafe { &mut *data };
            if let Some(d) = data.dbs.get_mut(b.db) {
                d.put_back(&b.key, b.was);
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.saved.capacity() != 0 {
            let mut saved = std::mem::take(&mut self.saved);
            saved.clear();
            SPARE.with(|s| s.set(saved));
        }
    }
}

/// What copying `v` before a write would cost, in heap bytes (usize::MAX:
/// too much whatever the budget).
fn copy_size(v: &Value) -> usize {
    let elements = match v {
        Value::Str(s) => return s.len(),
        Value::List(l) => l.len(),
        Value::Hash(h) => h.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
        // Consumer groups and pending entries come with a stream.
        Value::Stream(_) => return usize::MAX,
    };
    if elements > MAX_ELEMENTS {
        return usize::MAX;
    }
    crate::storage::usage::value_bytes(v, 0)
}

/// Commands whose writes reach beyond their keys in the script's database
/// (another database, another server): never journaled. (Whole-keyspace
/// commands such as SWAPDB are not keyed, so never journaled either.)
pub fn beyond_keys(cmd: Command) -> bool {
    matches!(cmd.spec.name, "move" | "copy" | "migrate")
}
