//! Persistence in Redis's formats: the append-only file (`aof`), RDB files
//! (`rdb`) and their CRC-64 (`crc64`), saving the dataset (`save`: SAVE,
//! BGSAVE's fork-less snapshot, save points) and loading it (`load`).

pub mod aof;
pub mod crc64;
pub mod load;
pub mod rdb;
pub mod save;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// What INFO `persistence` reports and what the save and load paths share.
pub struct State {
    /// The background save in progress (one at a time, as Redis's one child).
    pub job: parking_lot::Mutex<Option<Arc<save::Job>>>,
    /// BGSAVE SCHEDULE: start one as soon as the running job ends.
    pub bgsave_scheduled: AtomicBool,
    pub last_bgsave_ok: AtomicBool,
    /// Seconds the last background save took; -1 before the first.
    pub last_bgsave_secs: AtomicI64,
    /// Unix seconds of the last background save attempt (a failed save is
    /// retried by the save points after 5 seconds, as Redis does).
    pub last_bgsave_try: AtomicU64,
    /// BGREWRITEAOF SCHEDULE-like state and the last rewrite's outcome.
    pub aof_rewrite_scheduled: AtomicBool,
    pub aof_rewrite_ok: AtomicBool,
    pub aof_last_rewrite_secs: AtomicI64,
    pub aof_rewrites: AtomicU64,
    pub aof_rewrite_failures: AtomicU64,
    /// Unix seconds of the last failed rewrite: after 3 failures in a row
    /// the next scheduled or automatic one waits (`save::rewrite_limited`).
    pub aof_rewrite_failed_at: AtomicU64,
    /// `CONFIG SET appendonly yes` turned the AOF on and its first base is
    /// not written yet (Redis's AOF_WAIT_REWRITE): see `aof::enable_at_runtime`.
    pub aof_initial: AtomicBool,
    /// Bytes of the AOF (base and incremental files) after the last rewrite
    /// or load: `auto-aof-rewrite-percentage` grows from it.
    pub aof_base_size: AtomicU64,
    /// Keys the last background save copied on write (its `cow` figure).
    pub last_cow_bytes: AtomicU64,
    /// The same figure of the last AOF rewrite (`aof_last_cow_size`).
    pub aof_last_cow_bytes: AtomicU64,
    /// Write commands are refused with MISCONF (`stop-writes-on-bgsave-error`).
    pub misconf: AtomicBool,
    /// The dataset is being loaded: commands without the `loading` flag get LOADING.
    pub loading: AtomicBool,
    /// The start-up load has not ended. Connections accepted meanwhile wait
    /// until it ends or until it has read `loading-process-events-interval-bytes`
    /// (`starting_seen`; then they get LOADING), as Redis serves them only
    /// from its event loop, which a load runs every that many bytes: a short
    /// load (or none) is never seen by a client.
    pub starting: AtomicBool,
    pub starting_seen: AtomicBool,
    /// A replica loads its master's payload aside while the old dataset
    /// goes on serving (`repl-diskless-load swapdb`: INFO's `async_loading`).
    pub async_loading: AtomicBool,
    pub loading_started: AtomicU64,
    pub loading_total_bytes: AtomicU64,
    pub loading_loaded_bytes: AtomicU64,
    pub loading_rdb_used_mem: AtomicU64,
    pub last_load_keys_loaded: AtomicU64,
    pub last_load_keys_expired: AtomicU64,
}

impl State {
    /// A load of `total` bytes starts: INFO's loading_* figures from zero.
    pub fn begin_loading(&self, total: u64) {
        self.loading_started.store(crate::storage::now_ms() / 1000, Ordering::Relaxed);
        self.loading_total_bytes.store(total, Ordering::Relaxed);
        self.loading_loaded_bytes.store(0, Ordering::Relaxed);
    }

    /// A load's progress (`loading_loaded_bytes`), published every
    /// `loading-process-events-interval-bytes`: from the first one on, a
    /// start-up load answers the clients waiting for it with LOADING.
    pub fn loaded_bytes(&self, bytes: u64) {
        self.loading_loaded_bytes.store(bytes, Ordering::Relaxed);
        if self.starting.load(Ordering::Relaxed) && !self.starting_seen.load(Ordering::Relaxed) {
            self.starting_seen.store(true, Ordering::SeqCst);
        }
    }

    /// Waits while the start-up load has neither ended nor shown progress
    /// (a connection's first step; no wait once the server is up).
    pub async fn startup_gate(&self) {
        while self.starting.load(Ordering::SeqCst) && !self.starting_seen.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Runs `load` with the server marked as loading (other clients get
    /// LOADING meanwhile, as during Redis's DEBUG RELOAD and LOADAOF).
    pub fn while_loading<T>(&self, total: u64, load: impl FnOnce() -> T) -> T {
        self.begin_loading(total);
        let was = self.loading.swap(true, Ordering::SeqCst);
        let out = load();
        self.loading.store(was, Ordering::SeqCst);
        out
    }
}

impl Default for State {
    fn default() -> Self {
        State {
            job: Default::default(),
            bgsave_scheduled: AtomicBool::new(false),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_secs: AtomicI64::new(-1),
            last_bgsave_try: AtomicU64::new(0),
            last_cow_bytes: AtomicU64::new(0),
            aof_last_cow_bytes: AtomicU64::new(0),
            aof_rewrite_scheduled: AtomicBool::new(false),
            aof_rewrite_ok: AtomicBool::new(true),
            aof_last_rewrite_secs: AtomicI64::new(-1),
            aof_rewrites: AtomicU64::new(0),
            aof_rewrite_failures: AtomicU64::new(0),
            aof_rewrite_failed_at: AtomicU64::new(0),
            aof_initial: AtomicBool::new(false),
            aof_base_size: AtomicU64::new(0),
            misconf: AtomicBool::new(false),
            loading: AtomicBool::new(false),
            starting: AtomicBool::new(true),
            starting_seen: AtomicBool::new(false),
            async_loading: AtomicBool::new(false),
            loading_started: AtomicU64::new(0),
            loading_total_bytes: AtomicU64::new(0),
            loading_loaded_bytes: AtomicU64::new(0),
            loading_rdb_used_mem: AtomicU64::new(0),
            last_load_keys_loaded: AtomicU64::new(0),
            last_load_keys_expired: AtomicU64::new(0),
        }
    }
}

impl State {
    /// The running background job, if any.
    pub fn running(&self) -> Option<Arc<save::Job>> {
        self.job.lock().clone()
    }

    /// Recomputes the MISCONF switch: Redis refuses writes while the last
    /// background save failed, save points are set and
    /// `stop-writes-on-bgsave-error` is on.
    pub fn refresh_misconf(&self, config: &crate::config::Config) {
        let on = !self.last_bgsave_ok.load(Ordering::Relaxed)
            && config.get("stop-writes-on-bgsave-error").as_deref() == Some("yes")
            && !save::save_points(config).is_empty();
        self.misconf.store(on, Ordering::Relaxed);
    }
}
