//! The server: shared state every connection sees, and start-up.

use crate::config::Config;
use crate::net::client::ClientRegistry;
use crate::shard::Shards;
use crate::stats::{Observers, Stats};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

pub struct Server {
    pub config: Config,
    pub shards: Shards,
    pub clients: ClientRegistry,
    pub stats: Stats,
    /// SLOWLOG, LATENCY, latency percentiles, MONITOR.
    pub observers: Observers,
    /// Saving and loading state (BGSAVE job, save points, LOADING).
    pub persist: crate::persist::State,
    /// The append-only file, while `appendonly` is on.
    pub aof: parking_lot::Mutex<Option<std::sync::Arc<crate::persist::aof::Aof>>>,
    /// CLIENT PAUSE.
    pub pause: crate::session::pause::Pause,
    /// The propagated write stream (AOF and replicas follow it).
    pub propagation: crate::propagate::Stream,
    /// Replicas following this server.
    pub replicas: crate::replication::Replicas,
    pub scripts: crate::scripting::ScriptCache,
    /// Pub/sub subscriptions (channels, patterns, shard channels).
    pub pubsub: crate::pubsub::Registry,
    /// Users and permissions.
    pub acl: crate::acl::Acl,
    /// Client-side caching (CLIENT TRACKING): counters and BCAST prefixes.
    pub tracking: crate::pubsub::tracking::Tracking,
    pub started: Instant,
    /// Unix seconds of the last SAVE/BGSAVE (start-up time until one), for LASTSAVE.
    pub lastsave: AtomicU64,
    pub run_id: String,
    /// The replication ID INFO reports as `master_replid` (DEBUG CHANGE-REPL-ID renews it).
    pub replid: parking_lot::Mutex<String>,
    /// Switches DEBUG turns (active expiry, script rules).
    pub debug: crate::commands::debug::Switches,
    /// The TCP port actually bound (differs from the config when it was 0).
    pub port: AtomicU64,
    /// The listening sockets (`bind` × `port`), changed by CONFIG SET.
    pub listeners: parking_lot::Mutex<Vec<crate::net::listener::Listening>>,
    /// The `unixsocket` listener, while it listens.
    pub unix_listener: parking_lot::Mutex<Option<crate::net::listener::UnixListening>>,
    /// TLS: the configuration new connections get, the `tls-port` listeners.
    pub tls: crate::net::tls::Tls,
    pub shutting_down: AtomicBool,
    /// DEBUG PAUSE-CRON 1: the periodic tasks (Redis's serverCron: expiry,
    /// clients, memory, saves, replication, cluster, a signal's shutdown)
    /// skip their turns until it is 0 again.
    pub cron_paused: AtomicBool,
    /// A SIGTERM/SIGINT's shutdown waits for the cron (paused): SHUTDOWN
    /// ABORT clears it then, as Redis clears `shutdown_asap`.
    pub signal_shutdown_pending: AtomicBool,
    pub shutdown: tokio::sync::Notify,
    /// A shutdown waits for its replicas to catch up (`SHUTDOWN ABORT` may stop it).
    /// (How many SHUTDOWNs wait: each is a blocked client, as in Redis.)
    pub shutdown_waiting: AtomicUsize,
    /// When that wait gives up (Unix ms): INFO's `shutdown_in_milliseconds`.
    pub shutdown_deadline_ms: AtomicU64,
    /// Counts `SHUTDOWN ABORT`s: every wait that began before one ends.
    pub shutdown_abort: AtomicU64,
    /// That wait held writes back (released if the shutdown then fails).
    pub shutdown_holds_writes: AtomicBool,
    /// Thread count of the connection runtime.
    pub io_threads: usize,
    /// `keyspace-mode standalone`: keys of one command or script may live in
    /// any slots (as on a standalone Redis); `cluster` applies Redis
    /// Cluster's same-slot rule.
    pub standalone: bool,
    /// `cluster-enabled yes`: this node's Redis Cluster state.
    pub cluster: Option<std::sync::Arc<crate::cluster::Cluster>>,
    /// The `Arc` this server lives in (set once it is shared), for the rare
    /// command that must hand the server to code taking an `Arc` (DEBUG
    /// LOADAOF replays the AOF as its own client does at start-up).
    me: std::sync::OnceLock<std::sync::Weak<Server>>,
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
            // On one core (CPU affinity, cgroup quota), one: a second worker
            // only preempts the first (BullMQ pinned to a core: 1,829
            // involuntary switches against 22 and more CPU per job,
            // docs/PERFORMANCE.md), and a long script hands its worker's
            // connections to a fresh thread after 20 ms anyway
            // (`scripting` hand-off).
            _ if cores == 1 => 1,
            // Else one per core and per shard, and at least two, so a long
            // script never stops every connection even for those 20 ms.
            _ => cores.max(shards).max(2),
        };
        let databases = config.get_i64("databases").clamp(1, 10_000) as usize;
        let run_id = random_id();
        let server = Server {
            shards: Shards::new(shards, databases),
            clients: ClientRegistry::new(config.client_eviction_limit.clone()),
            stats: Stats::new(),
            observers: Observers::default(),
            propagation: crate::propagate::Stream::default(),
            replicas: Default::default(),
            pause: Default::default(),
            aof: Default::default(),
            persist: Default::default(),
            scripts: crate::scripting::ScriptCache::default(),
            pubsub: crate::pubsub::Registry::new(shards, config.pubsub_limits.clone()),
            acl: crate::acl::Acl::new(),
            tracking: Default::default(),
            started: Instant::now(),
            lastsave: AtomicU64::new(crate::storage::now_ms() / 1000),
            run_id,
            replid: parking_lot::Mutex::new(random_id()),
            debug: Default::default(),
            port: AtomicU64::new(config.get_i64("port") as u64),
            listeners: Default::default(),
            unix_listener: Default::default(),
            tls: Default::default(),
            shutting_down: AtomicBool::new(false),
            cron_paused: AtomicBool::new(false),
            signal_shutdown_pending: AtomicBool::new(false),
            shutdown_waiting: AtomicUsize::new(0),
            shutdown_deadline_ms: AtomicU64::new(0),
            shutdown_abort: AtomicU64::new(0),
            shutdown_holds_writes: AtomicBool::new(false),
            shutdown: tokio::sync::Notify::new(),
            io_threads,
            standalone: config.get("keyspace-mode").as_deref() == Some("standalone"),
            cluster: None,
            me: std::sync::OnceLock::new(),
            config,
        };
        server.apply_config();
        server.apply_requirepass();
        server
    }

    /// Records the `Arc` the server lives in (see `me`).
    pub fn shared(self: &std::sync::Arc<Server>) {
        let _ = self.me.set(std::sync::Arc::downgrade(self));
    }

    /// The `Arc` the server lives in, once `shared` was called.
    pub fn arc(&self) -> Option<std::sync::Arc<Server>> {
        self.me.get().and_then(std::sync::Weak::upgrade)
    }

    /// `requirepass` is the default user's password, as in Redis.
    pub fn apply_requirepass(&self) {
        let pass = self.config.requirepass.read().clone();
        self.acl.set_default_password(pass.as_deref().map(str::as_bytes));
    }

    /// Copies the parameters the observers read on every command into
    /// their atomics (at start-up and after every CONFIG SET).
    pub fn apply_config(&self) {
        let c = &self.config;
        let o = &self.observers;
        o.slowlog.slower_than.store(c.get_i64("slowlog-log-slower-than"), Ordering::Relaxed);
        o.slowlog.max_len.store(c.get_i64("slowlog-max-len").max(0) as u64, Ordering::Relaxed);
        o.slowlog.trim();
        o.latency_monitor.threshold.store(c.get_i64("latency-monitor-threshold").max(0) as u64, Ordering::Relaxed);
        o.latency.enabled.store(c.get("latency-tracking").as_deref() == Some("yes"), Ordering::Relaxed);
        self.tracking.set_max_keys(c.get_i64("tracking-table-max-keys"));
        crate::process::crash_log_follow(c);
        self.replicas.follow_read_only(c);
        if let Some(aof) = self.aof.lock().as_ref() {
            let policy = crate::persist::aof::fsync_policy(&c.get("appendfsync").unwrap_or_default());
            aof.policy.store(policy, Ordering::Relaxed);
            aof.timestamps.store(c.get("aof-timestamp-enabled").as_deref() == Some("yes"), Ordering::Relaxed);
        }
        // A new maxmemory-policy or lfu-* value applies to the next access,
        // not only after the memory cron's next tick.
        crate::storage::memory::refresh_tracking(self);
        self.persist.refresh_misconf(c);
        // A lowered maxmemory-clients (or maxmemory under a percentage of
        // it) evicts before the reply, as Redis evicts before the next command.
        crate::net::eviction::reaccount_and_evict(self);
        // A raised (or removed) maxmemory may end an eviction overrun at once.
        if self.stats.eviction_exceeded_since.load(Ordering::Relaxed) != 0
            && !crate::shard::eviction::over_maxmemory(self)
        {
            self.stats.eviction_over(false);
        }
    }

    /// DEBUG PAUSE-CRON 1: every periodic task skips its turn, as Redis's
    /// serverCron does while paused.
    pub fn cron_is_paused(&self) -> bool {
        self.cron_paused.load(Ordering::Relaxed)
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
        // Connections waiting for input listen to their own waker.
        for c in self.clients.clients.iter() {
            c.wake_idle();
        }
    }
}

/// 40 random hex digits, as Redis's run and replication IDs.
pub fn random_id() -> String {
    (0..40).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect()
}
