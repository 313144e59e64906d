//! The server: shared state every connection sees, and start-up.

use crate::config::Config;
use crate::net::client::ClientRegistry;
use crate::shard::Shards;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

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
    fn new() -> Stats {
        Stats {
            commands: (0..crate::commands::registry::all().len()).map(|_| CommandStats::default()).collect(),
            ..Default::default()
        }
    }

    /// Counts one error reply under its code, as INFO errorstats shows it.
    pub fn count_error(&self, text: &str) {
        self.error_replies.fetch_add(1, Ordering::Relaxed);
        let code = text.split(' ').next().unwrap_or("ERR");
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

pub struct Server {
    pub config: Config,
    pub shards: Shards,
    pub clients: ClientRegistry,
    pub stats: Stats,
    pub scripts: crate::scripting::ScriptCache,
    /// Pub/sub subscriptions (channels, patterns, shard channels).
    pub pubsub: crate::pubsub::Registry,
    pub started: Instant,
    /// Unix seconds of the last SAVE/BGSAVE (start-up time until one), for LASTSAVE.
    pub lastsave: AtomicU64,
    pub run_id: String,
    /// The TCP port actually bound (differs from the config when it was 0).
    pub port: AtomicU64,
    pub shutting_down: AtomicBool,
    pub shutdown: tokio::sync::Notify,
    /// Thread count of the connection runtime.
    pub io_threads: usize,
}

impl Server {
    pub fn new(config: Config) -> Server {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let shards = match config.get_i64("shards") {
            n if n > 0 => (n as usize).min(1024),
            _ => cores,
        };
        let io_threads = match config.get_i64("io-threads") {
            n if n > 0 => n as usize,
            // At least two, so a long script never stops every connection.
            _ => cores.max(shards).max(2),
        };
        let databases = config.get_i64("databases").clamp(1, 10_000) as usize;
        let run_id: String = (0..40).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect();
        Server {
            shards: Shards::new(shards, databases),
            clients: ClientRegistry::default(),
            stats: Stats::new(),
            scripts: crate::scripting::ScriptCache::default(),
            pubsub: crate::pubsub::Registry::new(shards, config.pubsub_limits.clone()),
            started: Instant::now(),
            lastsave: AtomicU64::new(crate::storage::now_ms() / 1000),
            run_id,
            port: AtomicU64::new(config.get_i64("port") as u64),
            shutting_down: AtomicBool::new(false),
            shutdown: tokio::sync::Notify::new(),
            io_threads,
            config,
        }
    }

    pub fn databases(&self) -> usize {
        self.shards.get(0).databases()
    }

    /// The busy-script threshold in ms.
    pub fn busy_threshold(&self) -> u64 {
        self.config.busy_reply_threshold_ms.load(Ordering::Relaxed)
    }

    /// Starts a clean shutdown: the listener stops, connections close.
    pub fn request_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.notify_waiters();
    }
}
