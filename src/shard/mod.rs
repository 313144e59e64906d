//! Shards: each owns a contiguous range of hash slots, all 16 databases of
//! those slots, and its own Lua VM. See docs/ARCHITECTURE.md for why a shard
//! is a lock-protected partition executed by whichever thread asks, rather
//! than a thread reached by messages.

pub mod eviction;
pub mod slot;
pub mod tracking;
pub mod waiters;
pub mod watches;

use crate::protocol::Reply;
use crate::storage::{now_ms, Db};
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Everything a shard owns. Only reachable through `Shard::lock*`.
pub struct ShardData {
    pub id: usize,
    pub dbs: Vec<Db>,
    /// Per-shard scripting state (this shard's Lua VM and compiled scripts).
    pub scripting: ScriptSlot,
    /// Clients blocked on this shard's keys (BLPOP and friends).
    pub waiters: waiters::Waiters,
    /// Clients WATCHing this shard's keys.
    pub watches: watches::Watches,
    /// Client-side caching: who may cache this shard's keys (CLIENT TRACKING).
    pub tracked: tracking::Tracked,
}

impl ShardData {
    pub fn total_keys(&self) -> usize {
        self.dbs.iter().map(|d| d.len()).sum()
    }

    /// `key` in database `db` changed (`who`: by whom, for client-side
    /// caching): its WATCHers become dirty, the first client blocked on it
    /// wakes, clients that may cache it are told, and keyspace
    /// notifications go out.
    #[inline]
    pub fn key_changed(
        &mut self,
        server: &crate::server::Server,
        db: usize,
        key: &[u8],
        event: &'static str,
        now: u64,
        who: tracking::Who,
    ) {
        // Usually nobody follows changes: a few loads decide it, inline in
        // every write.
        if self.waiters.is_empty()
            && self.watches.is_empty()
            && !server.tracking.engaged()
            && server.config.notify_flags.load(Ordering::Relaxed) == 0
        {
            return;
        }
        self.key_followed(server, db, key, event, now, who);
    }

    /// `key` changed without being signalled as modified (see
    /// `Ctx::changed_unsignalled`): blocked readers look again and `event` is
    /// notified; WATCH and tracking are left alone, as Redis 7.0 leaves them.
    pub fn changed_unsignalled(
        &mut self,
        server: &crate::server::Server,
        db: usize,
        key: &[u8],
        event: Option<&'static str>,
    ) {
        if !self.waiters.is_empty() {
            self.waiters.signal(db, key);
        }
        let flags = server.config.notify_flags.load(Ordering::Relaxed);
        if let Some(event) = event.filter(|_| flags != 0) {
            crate::pubsub::notify::keyspace_event(server, flags, event, key, db);
        }
    }

    /// `key_changed` when blocked clients, WATCH, tracking or keyspace
    /// notifications may follow the key.
    #[inline(never)]
    fn key_followed(
        &mut self,
        server: &crate::server::Server,
        db: usize,
        key: &[u8],
        event: &'static str,
        now: u64,
        who: tracking::Who,
    ) {
        self.waiters.signal(db, key);
        if !self.watches.is_empty() {
            if let Some(d) = self.dbs.get_mut(db) {
                self.watches.touch(db, key, d, now);
            }
        }
        if server.tracking.engaged() {
            crate::pubsub::tracking::key_changed(server, self, key, who, true);
        }
        let flags = server.config.notify_flags.load(Ordering::Relaxed);
        if flags != 0 {
            if flags & crate::pubsub::notify::NEW != 0 {
                // Keys this command created come first, as Redis notifies
                // `new` when the key is added, before the command's event.
                let created = self.dbs.get_mut(db).map(|d| d.take_created()).unwrap_or_default();
                for k in created {
                    crate::pubsub::notify::keyspace_event(server, flags, "new", &k, db);
                }
            }
            crate::pubsub::notify::keyspace_event(server, flags, event, key, db);
        }
    }
}

/// The server removed `key` on its own (eviction): like a write, and
/// replayed as DEL (UNLINK with `lazyfree-lazy-eviction`).
pub fn key_removed(server: &crate::server::Server, data: &mut ShardData, db: usize, key: &[u8], event: &'static str) {
    data.key_changed(server, db, key, event, now_ms(), tracking::Who::SERVER);
    if server.propagation.active() {
        let lazy = server.config.get("lazyfree-lazy-eviction").as_deref() == Some("yes");
        let verb: &'static [u8] = if lazy { b"UNLINK" } else { b"DEL" };
        let argv = [bytes::Bytes::from_static(verb), bytes::Bytes::copy_from_slice(key)];
        crate::propagate::emit(&server.propagation, db, &argv);
    }
}

/// This shard's scripting state (its Lua VM and compiled scripts). The
/// scripting layer owns what is inside; the shard only keeps it, so that it
/// is entered together with the shard's data.
#[derive(Default)]
pub struct ScriptSlot(pub Option<Box<dyn std::any::Any + Send>>);

pub type ShardGuard<'a> = MutexGuard<'a, ShardData>;

/// Why a shard could not be entered.
#[derive(Debug)]
pub enum Busy {
    /// A script has run longer than `busy-reply-threshold`; `function` when
    /// it was started by FCALL (only FUNCTION KILL can stop it then).
    Script { function: bool },
}

impl Busy {
    pub fn reply(&self) -> Reply {
        match self {
            Busy::Script { function: false } => {
                Reply::error("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
            }
            Busy::Script { function: true } => {
                Reply::error("BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")
            }
        }
    }
}

/// Per-shard figures for `INFO shards`, outside the lock: relaxed atomics,
/// added once per run of commands on the shard (a pipeline's same-shard run,
/// a multi-shard command, a transaction, a script), not once per command.
#[derive(Default)]
pub struct ShardStats {
    /// Commands run with the shard entered, as clients sent them: a script
    /// counts once, a transaction its queued commands, a multi-shard
    /// command once on each of its shards.
    pub commands: AtomicU64,
    /// Time the shard was held running them (ns).
    pub busy_ns: AtomicU64,
    /// Entries that found the shard held and had to wait for it.
    pub lock_waits: AtomicU64,
    /// Share of stale keys in active expiry's samples, a moving average
    /// as Redis keeps it (f64 bits).
    pub stale_perc: AtomicU64,
}

impl ShardStats {
    /// A run of `commands` that held the shard `busy_ns`.
    #[inline]
    pub fn ran(&self, commands: u64, busy_ns: u64) {
        self.commands.fetch_add(commands, Ordering::Relaxed);
        self.busy_ns.fetch_add(busy_ns, Ordering::Relaxed);
    }

    /// One active expiry cycle that found `expired` of `sampled` keys stale.
    pub fn expiry_sampled(&self, expired: usize, sampled: usize) {
        let current = if sampled == 0 { 0.0 } else { expired as f64 / sampled as f64 };
        let old = f64::from_bits(self.stale_perc.load(Ordering::Relaxed));
        self.stale_perc.store((current * 0.05 + old * 0.95).to_bits(), Ordering::Relaxed);
    }

    pub fn reset(&self) {
        for c in [&self.commands, &self.busy_ns, &self.lock_waits, &self.stale_perc] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

pub struct Shard {
    pub id: usize,
    databases: usize,
    data: Mutex<ShardData>,
    /// INFO shards' figures.
    pub stats: ShardStats,
    /// Unix ms at which the running script started; 0 when none runs.
    pub script_since: AtomicU64,
    /// Set by SCRIPT KILL / FUNCTION KILL; the Lua hook checks it.
    pub script_kill: AtomicBool,
    /// Set once the running script performed a write (it can no longer be killed).
    pub script_wrote: AtomicBool,
    /// True when the running script is a function (FCALL), for FUNCTION KILL vs SCRIPT KILL.
    pub script_is_function: AtomicBool,
    /// Woken when a script finishes, so waiters retry without polling.
    pub script_done: tokio::sync::Notify,
}

/// Thread yields a task spends waiting for a script that just started
/// before waiting for it asynchronously.
const SHORT_SCRIPT_YIELDS: usize = 4;

impl Shard {
    pub fn new(id: usize, databases: usize) -> Shard {
        Shard {
            id,
            databases,
            data: Mutex::new(ShardData {
                id,
                dbs: (0..databases).map(|_| Db::new()).collect(),
                scripting: ScriptSlot::default(),
                waiters: waiters::Waiters::default(),
                watches: watches::Watches::default(),
                tracked: tracking::Tracked::default(),
            }),
            script_since: AtomicU64::new(0),
            script_kill: AtomicBool::new(false),
            script_wrote: AtomicBool::new(false),
            script_is_function: AtomicBool::new(false),
            script_done: tokio::sync::Notify::new(),
            stats: ShardStats::default(),
        }
    }

    pub fn script_running(&self) -> bool {
        self.script_since.load(Ordering::Acquire) != 0
    }

    /// Milliseconds the running script has been running, if one runs.
    pub fn script_elapsed_ms(&self) -> Option<u64> {
        let since = self.script_since.load(Ordering::Acquire);
        (since != 0).then(|| now_ms().saturating_sub(since))
    }

    /// Non-blocking attempt to enter the shard.
    pub fn try_lock(&self) -> Option<ShardGuard<'_>> {
        self.data.try_lock()
    }

    /// Tries to enter the shard for up to `wait`, blocking the thread.
    pub fn try_lock_for(&self, wait: Duration) -> Option<ShardGuard<'_>> {
        self.data.try_lock_for(wait)
    }

    /// Enters the shard from a synchronous context that may block (shard
    /// maintenance, tests). Never call from a connection task.
    pub fn lock_blocking(&self) -> ShardGuard<'_> {
        self.data.lock()
    }

    /// Enters the shard from an async task.
    ///
    /// Ordinary commands hold a shard for microseconds, so a short timed wait
    /// on the mutex is the cheapest way in. A script may hold it for long: the
    /// task then waits asynchronously (its thread keeps serving other
    /// connections) and, once the script is past `busy-reply-threshold`, gets
    /// `BUSY` if `busy_ok` is false.
    pub async fn lock(&self, threshold_ms: u64, busy_ok: bool) -> Result<ShardGuard<'_>, Busy> {
        if let Some(g) = self.data.try_lock() {
            return Ok(g);
        }
        self.stats.lock_waits.fetch_add(1, Ordering::Relaxed);
        loop {
            if let Some(g) = self.data.try_lock() {
                return Ok(g);
            }
            if self.script_running() {
                // Most scripts take microseconds: wait for them as for a
                // command, yielding the thread so that the script's thread
                // (possibly preempted on this same CPU) can finish it. Only a
                // script still running after that is waited for as a long one.
                if self.script_elapsed_ms().unwrap_or(0) == 0 {
                    for _ in 0..SHORT_SCRIPT_YIELDS {
                        std::thread::yield_now();
                        if let Some(g) = self.data.try_lock() {
                            return Ok(g);
                        }
                    }
                }
                if !busy_ok && self.script_elapsed_ms().unwrap_or(0) >= threshold_ms {
                    return Err(Busy::Script { function: self.script_is_function.load(Ordering::SeqCst) });
                }
                let notified = self.script_done.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if !self.script_running() {
                    continue;
                }
                // Wake at the threshold at the latest, to answer BUSY then.
                let wait = Duration::from_millis(
                    threshold_ms.saturating_sub(self.script_elapsed_ms().unwrap_or(0)).clamp(1, 100),
                );
                let _ = tokio::time::timeout(wait, notified).await;
                continue;
            }
            if let Some(g) = self.data.try_lock_for(Duration::from_micros(200)) {
                return Ok(g);
            }
        }
    }
}

/// All shards of the server and the slot → shard map.
pub struct Shards {
    pub list: Vec<Shard>,
}

impl Shards {
    pub fn new(n: usize, databases: usize) -> Shards {
        Shards { list: (0..n).map(|i| Shard::new(i, databases)).collect() }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn for_key(&self, key: &[u8]) -> usize {
        slot::slot_shard(slot::key_slot(key), self.list.len())
    }

    pub fn get(&self, i: usize) -> &Shard {
        &self.list[i]
    }

    /// Enters several shards in ascending order (no deadlock between two
    /// such callers). If any is held by a script, nothing is held while
    /// waiting for it.
    pub async fn lock_many(&self, ids: &[usize], threshold_ms: u64) -> Result<Vec<ShardGuard<'_>>, Busy> {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        'retry: loop {
            for &id in ids {
                let shard = &self.list[id];
                if shard.script_running() {
                    // Wait (holding nothing) until it ends or BUSY applies.
                    drop(shard.lock(threshold_ms, false).await?);
                }
            }
            let mut guards = Vec::with_capacity(ids.len());
            for &id in ids {
                let shard = &self.list[id];
                if let Some(g) = shard.data.try_lock() {
                    guards.push(g);
                    continue;
                }
                shard.stats.lock_waits.fetch_add(1, Ordering::Relaxed);
                match shard.data.try_lock_for(Duration::from_millis(1)) {
                    Some(g) => guards.push(g),
                    None => {
                        drop(guards);
                        tokio::task::yield_now().await;
                        continue 'retry;
                    }
                }
            }
            return Ok(guards);
        }
    }
}

impl Shard {
    /// Number of databases (fixed at start-up).
    pub fn databases(&self) -> usize {
        self.databases
    }
}
