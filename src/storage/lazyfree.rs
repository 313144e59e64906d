//! Freeing big values away from the serving threads, as Redis's lazyfree
//! does for UNLINK, `FLUSHALL|FLUSHDB ASYNC` and the `lazyfree-lazy-*`
//! options: a value whose free takes many steps (a set of a million
//! members is a million allocations) is handed to one background thread, so
//! the shard it lived on goes on serving. A small value is dropped where it
//! is: handing it over would cost more than freeing it.
//!
//! INFO's `lazyfree_pending_objects` and `lazyfreed_objects` come from here.

use super::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Redis's LAZYFREE_THRESHOLD: values whose free effort is above it go to
/// the background thread.
pub const THRESHOLD: usize = 64;

/// Objects handed over and not freed yet.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// Objects the background thread has freed (reset by CONFIG RESETSTAT).
static FREED: AtomicU64 = AtomicU64::new(0);

type Job = (Box<dyn Send>, u64);

static QUEUE: OnceLock<crossbeam::channel::Sender<Job>> = OnceLock::new();

/// How many steps freeing `value` takes, in Redis's terms for our layouts:
/// a packed encoding is one allocation; a list is one per chunk; a hash
/// table, set or skiplist one per element; a stream one per node, plus each
/// consumer group with its pending entries (the first group's PEL standing
/// for all, as Redis estimates it).
pub fn effort(value: &Value) -> usize {
    match value {
        Value::Str(_) => 1,
        Value::List(l) => l.chunk_count(),
        Value::Hash(h) if h.encoding() == "hashtable" => h.len(),
        Value::Set(s) if s.encoding() == "hashtable" => s.len(),
        Value::ZSet(z) if z.encoding() == "skiplist" => z.len(),
        Value::Stream(s) => {
            let first_pel = s.groups.values().next().map_or(0, |g| g.pel.len());
            s.node_count() + s.groups.len() * (1 + first_pel)
        }
        Value::Hash(_) | Value::Set(_) | Value::ZSet(_) => 1,
    }
}

/// Frees `value` on the background thread when its effort is above the
/// threshold, here otherwise. True when it was handed over.
pub fn free_value(value: Value) -> bool {
    if effort(&value) <= THRESHOLD {
        drop(value);
        return false;
    }
    free_later(value, 1);
    true
}

/// Hands `obj`, counted as `objects` objects (a flushed database counts its
/// keys), to the background thread.
pub fn free_later<T: Send + 'static>(obj: T, objects: u64) {
    PENDING.fetch_add(objects, Ordering::Relaxed);
    let queue = QUEUE.get_or_init(start);
    if let Err(crossbeam::channel::SendError((obj, n))) = queue.send((Box::new(obj), objects)) {
        // The thread could not be started: free it here.
        drop(obj);
        done(n);
    }
}

fn done(objects: u64) {
    PENDING.fetch_sub(objects, Ordering::Relaxed);
    FREED.fetch_add(objects, Ordering::Relaxed);
}

fn start() -> crossbeam::channel::Sender<Job> {
    let (tx, rx) = crossbeam::channel::unbounded::<Job>();
    // If the thread cannot be spawned, `rx` is dropped with the closure and
    // every send fails: values are then freed by their senders.
    let _ = std::thread::Builder::new().name("moonshard-lazyfree".into()).spawn(move || {
        for (obj, objects) in rx {
            drop(obj);
            done(objects);
        }
    });
    tx
}

/// INFO `lazyfree_pending_objects`.
pub fn pending() -> u64 {
    PENDING.load(Ordering::Relaxed)
}

/// INFO `lazyfreed_objects`.
pub fn freed() -> u64 {
    FREED.load(Ordering::Relaxed)
}

/// CONFIG RESETSTAT.
pub fn reset_stats() {
    FREED.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{List, Set, SmallBytes};

    fn wait_pending_zero() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pending() != 0 {
            assert!(std::time::Instant::now() < deadline, "lazyfree never finished");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn small_values_are_freed_in_place_big_ones_in_the_background() {
        assert_eq!(effort(&Value::Str(SmallBytes::from_slice(b"x"))), 1);
        let mut small = Set::default();
        for i in 0..10 {
            small.insert(i.to_string().as_bytes(), 512);
        }
        assert!(!free_value(Value::Set(Box::new(small))));
        let mut big = Set::default();
        for i in 0..1000 {
            big.insert(format!("member-{i}").as_bytes(), 512);
        }
        assert_eq!(effort(&Value::Set(Box::new(big.clone()))), 1000);
        let before = freed();
        assert!(free_value(Value::Set(Box::new(big))));
        wait_pending_zero();
        assert!(freed() > before);
        let mut list = List::new();
        for i in 0..100_000 {
            list.push_back(format!("element-{i}").as_bytes());
        }
        assert!(effort(&Value::List(Box::new(list))) > THRESHOLD);
    }
}
