//! Statistics and observers: the counters behind INFO, per-command latency
//! percentiles, SLOWLOG, LATENCY events and MONITOR. Dispatch feeds all of
//! them (`commands::dispatch::account`).

pub mod latency;
pub mod latency_monitor;
pub mod monitor;
pub mod slowlog;

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters behind `INFO stats` and `INFO commandstats`.
#[derive(Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub commands_processed: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub expired_keys: AtomicU64,
    pub evicted_keys: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub error_replies: AtomicU64,
    /// Clients waiting in a blocking command.
    pub blocked_clients: AtomicU64,
    /// Changes since start-up (Redis's `server.dirty`), added by dispatch.
    pub dirty: AtomicU64,
    /// `dirty` at the last successful save (`rdb_changes_since_last_save` is the difference).
    pub dirty_at_save: AtomicU64,
    /// Per command (index into `commands::registry::all()`).
    pub commands: Vec<CommandStats>,
    /// Error replies by their first word (`ERR`, `WRONGTYPE`, ...), for INFO errorstats.
    pub errors: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
}

#[derive(Default)]
pub struct CommandStats {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            commands: (0..crate::commands::registry::all().len()).map(|_| CommandStats::default()).collect(),
            ..Default::default()
        }
    }

    /// Counts one error reply under its code, as INFO errorstats shows it.
    pub fn count_error(&self, text: &str) {
        self.error_replies.fetch_add(1, Ordering::Relaxed);
        // The code is the first word when it ends within 31 bytes, else ERR (as Redis reads it).
        let code = match text.as_bytes().iter().take(31).position(|&b| b == b' ') {
            Some(end) => &text[..end],
            None => "ERR",
        };
        let mut errors = self.errors.lock();
        let len = errors.len();
        match errors.get_mut(code) {
            Some(n) => *n += 1,
            // Bounded, as Redis bounds it: odd error codes from scripts could be endless.
            None if len < 128 => {
                errors.insert(code.to_string(), 1);
            }
            None => {}
        }
    }

    pub fn reset(&self) {
        self.errors.lock().clear();
        for c in [
            &self.connections_received,
            &self.rejected_connections,
            &self.commands_processed,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.expired_keys,
            &self.evicted_keys,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.error_replies,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        for c in &self.commands {
            c.calls.store(0, Ordering::Relaxed);
            c.usec.store(0, Ordering::Relaxed);
            c.rejected.store(0, Ordering::Relaxed);
            c.failed.store(0, Ordering::Relaxed);
        }
    }
}

/// Everything dispatch reports a finished command to, besides the counters.
#[derive(Default)]
pub struct Observers {
    pub latency: latency::Tracker,
    pub slowlog: slowlog::Slowlog,
    pub latency_monitor: latency_monitor::LatencyMonitor,
    pub monitors: monitor::Monitors,
}
