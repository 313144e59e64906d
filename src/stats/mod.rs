//! Statistics and observers: the counters behind INFO, per-command latency
//! percentiles, SLOWLOG, LATENCY events and MONITOR. Dispatch feeds all of
//! them (`commands::dispatch::account`).

pub mod latency;
pub mod latency_monitor;
pub mod monitor;
pub mod sampler;
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
    /// Clients closed for `maxmemory-clients` (`net::eviction`).
    pub evicted_clients: AtomicU64,
    pub net_input_bytes: AtomicU64,
    /// Socket reads that returned (next to the byte count: one cache line).
    pub reads_processed: AtomicU64,
    pub net_output_bytes: AtomicU64,
    /// Socket writes.
    pub writes_processed: AtomicU64,
    /// Bytes of the replication stream and snapshots received from a
    /// master and sent to replicas (counted in `net_*_bytes` too, as Redis
    /// 7.0 counts them).
    pub net_repl_input_bytes: AtomicU64,
    pub net_repl_output_bytes: AtomicU64,
    pub error_replies: AtomicU64,
    /// Errors of commands from a master's stream or the AOF being loaded
    /// (Redis's `unexpected_error_replies`).
    pub unexpected_error_replies: AtomicU64,
    /// Deep checks of RESTORE payloads `sanitize-dump-payload` asked for.
    pub dump_payload_sanitizations: AtomicU64,
    /// Clients waiting in a blocking command.
    pub blocked_clients: AtomicU64,
    /// Blocked clients whose wait has a timeout (Redis's timeout table).
    pub clients_in_timeout_table: AtomicU64,
    /// Active expiry: cycles that stopped at their work limit with keys
    /// still stale, and the time spent in cycles (µs).
    pub expire_time_cap_reached: AtomicU64,
    pub expire_cycle_us: AtomicU64,
    /// Time memory stayed over `maxmemory` after eviction tried (µs), and
    /// since when it is over now (ns since the epoch, 0 when not).
    pub eviction_exceeded_us: AtomicU64,
    pub eviction_exceeded_since: AtomicU64,
    /// SAVE/BGSAVE runs.
    pub rdb_saves: AtomicU64,
    /// Instantaneous rates and recent client buffer peaks (`sampler::cron`).
    pub sampler: parking_lot::Mutex<sampler::Sampler>,
    /// Changes since start-up (Redis's `server.dirty`), added by dispatch.
    pub dirty: AtomicU64,
    /// `dirty` at the last successful save (`rdb_changes_since_last_save` is the difference).
    pub dirty_at_save: AtomicU64,
    /// Per command (index into `commands::registry::all()`).
    pub commands: Vec<CommandStats>,
    /// Error replies by their first word (`ERR`, `WRONGTYPE`, ...), for INFO errorstats.
    pub errors: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
}

/// The code INFO errorstats counts an error text under, as Redis finds it:
/// the first word when a space comes within the first 31 bytes, else `ERR`.
pub fn error_code(text: &[u8]) -> &[u8] {
    match text.iter().take(31).position(|&c| c == b' ') {
        Some(end) => &text[..end],
        None => b"ERR",
    }
}

/// Subtracts what a run taken back had added, never below zero (a
/// RESETSTAT may have come in between).
pub fn take_back(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
}

thread_local! {
    /// True while this thread runs something that may be taken back and run
    /// again (a standalone-mode script: see `dispatch::Tally`): the errors it
    /// counts are noted in `TAKE_BACK_NOTES` so that `Stats::take_back_errors`
    /// can count them out. A thread runs one script at a time.
    static TAKE_BACK_ON: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Whether `TAKE_BACK_NOTES` holds anything.
    static TAKE_BACK_NOTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Touched only when such a run counts an error.
    static TAKE_BACK_NOTES: std::cell::RefCell<ErrorNotes> = const { std::cell::RefCell::new(ErrorNotes::new()) };
}

struct ErrorNotes {
    /// Error codes counted (`None`: only in `error_replies`, the table was full).
    codes: Vec<Option<String>>,
    /// Commands whose `rejected_calls` went up.
    rejected: Vec<usize>,
}

impl ErrorNotes {
    const fn new() -> ErrorNotes {
        ErrorNotes { codes: Vec::new(), rejected: Vec::new() }
    }
}

/// Notes an error counted by a run that may be taken back.
#[cold]
fn note_for_take_back(note: impl FnOnce(&mut ErrorNotes)) {
    TAKE_BACK_NOTED.set(true);
    TAKE_BACK_NOTES.with_borrow_mut(note);
}

/// While it lives, the errors this thread counts are noted for
/// `Stats::take_back_errors`; however the run ends, the noting ends with it.
pub struct ErrorTakeBack(());

impl ErrorTakeBack {
    pub fn begin() -> ErrorTakeBack {
        TAKE_BACK_ON.set(true);
        ErrorTakeBack(())
    }
}

impl Drop for ErrorTakeBack {
    fn drop(&mut self) {
        TAKE_BACK_ON.set(false);
        // What the completed run counted stays counted.
        if TAKE_BACK_NOTED.replace(false) {
            TAKE_BACK_NOTES.with_borrow_mut(|notes| *notes = ErrorNotes::new());
        }
    }
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

    /// Bytes received from this server's master (stream or snapshot).
    pub fn count_repl_input(&self, n: u64) {
        self.net_input_bytes.fetch_add(n, Ordering::Relaxed);
        self.net_repl_input_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes sent to a replica (stream or snapshot).
    pub fn count_repl_output(&self, n: u64) {
        self.net_output_bytes.fetch_add(n, Ordering::Relaxed);
        self.net_repl_output_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one error reply under its code, as INFO errorstats shows it.
    pub fn count_error(&self, text: impl AsRef<[u8]>) {
        self.error_replies.fetch_add(1, Ordering::Relaxed);
        let code = String::from_utf8_lossy(error_code(text.as_ref()));
        let mut errors = self.errors.lock();
        let len = errors.len();
        let counted = match errors.get_mut(&*code) {
            Some(n) => {
                *n += 1;
                true
            }
            // Bounded, as Redis bounds it: odd error codes from scripts could be endless.
            None if len < 128 => {
                errors.insert(code.to_string(), 1);
                true
            }
            None => false,
        };
        drop(errors);
        if TAKE_BACK_ON.get() {
            note_for_take_back(|notes| notes.codes.push(counted.then(|| code.into_owned())));
        }
    }

    /// Counts a command refused before it ran (`rejected_calls`).
    pub fn count_rejected(&self, command: usize) {
        self.commands[command].rejected.fetch_add(1, Ordering::Relaxed);
        if TAKE_BACK_ON.get() {
            note_for_take_back(|notes| notes.rejected.push(command));
        }
    }

    /// Counts out the errors and refusals noted since `ErrorTakeBack::begin`
    /// (or the last take-back): their run was undone and runs again, and
    /// Redis counts what one run does.
    pub fn take_back_errors(&self) {
        if !TAKE_BACK_ON.get() || !TAKE_BACK_NOTED.replace(false) {
            return;
        }
        let notes = TAKE_BACK_NOTES.with_borrow_mut(|notes| std::mem::replace(notes, ErrorNotes::new()));
        let mut errors = self.errors.lock();
        for code in notes.codes {
            take_back(&self.error_replies, 1);
            if let Some(n) = code.as_ref().and_then(|c| errors.get_mut(c)) {
                *n -= 1;
                if *n == 0 {
                    errors.remove(code.as_deref().unwrap_or_default());
                }
            }
        }
        for command in notes.rejected {
            take_back(&self.commands[command].rejected, 1);
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
            &self.evicted_clients,
            &self.net_input_bytes,
            &self.reads_processed,
            &self.net_output_bytes,
            &self.writes_processed,
            &self.net_repl_input_bytes,
            &self.net_repl_output_bytes,
            &self.error_replies,
            &self.unexpected_error_replies,
            &self.dump_payload_sanitizations,
            &self.expire_time_cap_reached,
            &self.expire_cycle_us,
            &self.eviction_exceeded_us,
            &self.rdb_saves,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        // An eviction overrun in progress is measured from now on.
        if self.eviction_exceeded_since.load(Ordering::Relaxed) != 0 {
            self.eviction_exceeded_since.store(crate::util::clock_ns(), Ordering::Relaxed);
        }
        self.sampler.lock().reset();
        for c in &self.commands {
            c.calls.store(0, Ordering::Relaxed);
            c.usec.store(0, Ordering::Relaxed);
            c.rejected.store(0, Ordering::Relaxed);
            c.failed.store(0, Ordering::Relaxed);
        }
    }
}

impl Stats {
    /// Eviction ran and memory is still over the limit (`over`), or is back
    /// under it: the time it stays over adds up in `total_eviction_exceeded_time`.
    pub fn eviction_over(&self, over: bool) {
        let since = self.eviction_exceeded_since.load(Ordering::Relaxed);
        match (over, since) {
            (true, 0) => self.eviction_exceeded_since.store(crate::util::clock_ns().max(1), Ordering::Relaxed),
            (false, s) if s != 0 => {
                self.eviction_exceeded_since.store(0, Ordering::Relaxed);
                let us = crate::util::clock_ns().saturating_sub(s) / 1000;
                self.eviction_exceeded_us.fetch_add(us, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// (total, current) time memory has stayed over `maxmemory`, in ms.
    pub fn eviction_exceeded_ms(&self) -> (u64, u64) {
        let since = self.eviction_exceeded_since.load(Ordering::Relaxed);
        let current_us = if since == 0 { 0 } else { crate::util::clock_ns().saturating_sub(since) / 1000 };
        ((self.eviction_exceeded_us.load(Ordering::Relaxed) + current_us) / 1000, current_us / 1000)
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
