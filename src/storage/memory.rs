//! Memory accounting, the `maxmemory` check and per-key access tracking.
//!
//! # How memory is counted
//!
//! `used_memory` is what the process has asked the allocator for and not yet
//! given back, the same definition Redis's `zmalloc` counter uses. The binary
//! installs [`Counting`] around mimalloc as its global allocator; every
//! allocation adds its size to a per-thread delta, and the delta is folded into
//! one process-wide atomic only once it passes [`FLUSH_AT`] bytes, so the
//! allocator hot path costs a thread-local add and a compare. The figure read
//! by other threads can therefore lag by at most `FLUSH_AT` per thread; the
//! evicting thread adds its own unflushed delta, so its own frees count at once.
//!
//! The limit is checked against this process-wide figure, not a per-shard one.
//! Per-shard byte accounting was considered and rejected: values are mutated in
//! place through `&mut` handles by every command family, so an exact per-shard
//! count would need a size delta from every mutation, and attributing allocator
//! deltas to the shard that was entered drifts (replies are built under the
//! shard and freed on the connection). Eviction is still shard-aware: it
//! samples candidates on every shard it can enter and removes the best one
//! wherever it lives (see `eviction.rs`).
//!
//! # Access tracking
//!
//! Each key carries a 32-bit access word (see `Db`). Under an LRU or a
//! non-LFU policy it is the Unix time in seconds of the last access; under an
//! LFU policy it is Redis's layout: minutes (24 bits) of the last decrement and
//! an 8-bit logarithmic counter. Touching a key under LRU is a plain store.

use crate::protocol::Reply;
use crate::server::Server;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Thread-local allocation deltas are published once they reach this size.
pub const FLUSH_AT: i64 = 64 * 1024;

static ALLOCATED: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static STARTUP: AtomicU64 = AtomicU64::new(0);
/// True once the counting allocator has seen an allocation (false in a
/// process that uses another global allocator, e.g. unit tests).
static COUNTING: AtomicBool = AtomicBool::new(false);

thread_local! {
    // `const` and no destructor: usable from inside the allocator without
    // lazy registration (which could itself allocate).
    static LOCAL: Cell<i64> = const { Cell::new(0) };
}

/// A global allocator that counts the bytes in use, wrapping another one.
pub struct Counting<A>(pub A);

#[inline]
fn account(delta: i64) {
    let published = LOCAL.try_with(|c| {
        let v = c.get() + delta;
        if v.abs() >= FLUSH_AT {
            c.set(0);
            publish(v);
        } else {
            c.set(v);
        }
    });
    if published.is_err() {
        publish(delta);
    }
}

#[cold]
fn publish(delta: i64) {
    let now = ALLOCATED.fetch_add(delta, Ordering::Relaxed) + delta;
    if delta > 0 {
        PEAK.fetch_max(now.max(0) as u64, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to the wrapped allocator unchanged; the
// counting touches only a const thread-local and atomics, never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() {
            account(layout.size() as i64);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() {
            account(layout.size() as i64);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        account(-(layout.size() as i64));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            account(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Bytes in use by the whole process, as seen from the calling thread.
pub fn used_memory() -> u64 {
    let local = LOCAL.try_with(|c| c.get()).unwrap_or(0);
    (ALLOCATED.load(Ordering::Relaxed) + local).max(0) as u64
}

/// Whether `used_memory` means anything (the counting allocator is installed).
pub fn is_counting() -> bool {
    COUNTING.load(Ordering::Relaxed)
}

/// The most memory ever in use, at least `used` and any `used` given before:
/// a thread's unflushed allocations count in its own readings only, so each
/// reading is recorded (INFO must never show a peak below a used_memory it
/// showed before).
pub fn peak_memory(used: u64) -> u64 {
    PEAK.fetch_max(used, Ordering::Relaxed).max(used)
}

/// Used memory when the server finished starting (INFO's `used_memory_startup`).
pub fn startup_memory() -> u64 {
    STARTUP.load(Ordering::Relaxed)
}

/// Resident set size of the process, from /proc (0 where unavailable).
pub fn rss_bytes() -> u64 {
    let pages = crate::util::read_proc("/proc/self/statm")
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .unwrap_or(0);
    pages * 4096
}

// ---------------------------------------------------------------------------
// Policies

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    pub fn of(server: &Server) -> Policy {
        Policy::parse(&server.config.get("maxmemory-policy").unwrap_or_default())
    }

    /// Only keys with a TTL are candidates.
    pub fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    pub fn lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }
}

// ---------------------------------------------------------------------------
// Access tracking

static LFU_MODE: AtomicBool = AtomicBool::new(false);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_MIN: AtomicU32 = AtomicU32::new(1);
/// Unix seconds, refreshed by the memory cron so writes need no clock call.
static CLOCK_SECS: AtomicU32 = AtomicU32::new(0);
/// Counter value of a new key under LFU (Redis's LFU_INIT_VAL), so that a new
/// key is not the first one evicted.
pub const LFU_INIT: u8 = 5;

/// Reads the tracking parameters from the configuration. The mode is
/// process-wide: it only says how the access word is interpreted.
pub fn refresh_tracking(server: &Server) {
    LFU_MODE.store(Policy::of(server).lfu(), Ordering::Relaxed);
    let factor = server.config.get_i64("lfu-log-factor").clamp(0, u32::MAX as i64) as u32;
    LFU_LOG_FACTOR.store(factor, Ordering::Relaxed);
    let decay = server.config.get_i64("lfu-decay-time").clamp(0, u32::MAX as i64) as u32;
    LFU_DECAY_MIN.store(decay, Ordering::Relaxed);
    CLOCK_SECS.store((crate::storage::now_ms() / 1000) as u32, Ordering::Relaxed);
}

/// Sets the interpretation of access words directly (unit tests).
pub fn set_lfu_mode(on: bool) {
    LFU_MODE.store(on, Ordering::Relaxed);
}

pub fn lfu_mode() -> bool {
    LFU_MODE.load(Ordering::Relaxed)
}

fn clock_ms() -> u64 {
    match CLOCK_SECS.load(Ordering::Relaxed) {
        0 => crate::storage::now_ms(),
        s => s as u64 * 1000,
    }
}

fn minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xFF_FFFF) as u32
}

/// The access word of a key created now.
pub fn new_access() -> u32 {
    let now = clock_ms();
    if lfu_mode() {
        (minutes(now) << 8) | LFU_INIT as u32
    } else {
        (now / 1000) as u32
    }
}

/// Records an access at `now_ms` (a read or a write of the key).
#[inline]
pub fn touch(access: &mut u32, now_ms: u64) {
    if lfu_mode() {
        *access = lfu_touched(*access, now_ms);
    } else {
        *access = (now_ms / 1000) as u32;
    }
}

/// The access word of a key last accessed `idle` seconds before `now_ms`
/// (meaningful while no LFU policy is selected).
pub fn access_idle(idle: u64, now_ms: u64) -> u32 {
    ((now_ms / 1000) as u32).saturating_sub(idle.min(u32::MAX as u64) as u32)
}

/// The access word of a key with LFU counter `freq`, decremented last at
/// `now_ms` (meaningful under an LFU policy).
pub fn access_freq(freq: u8, now_ms: u64) -> u32 {
    (minutes(now_ms) << 8) | freq as u32
}

/// Seconds since the last access (LRU words).
pub fn idle_secs(access: u32, now_ms: u64) -> u64 {
    ((now_ms / 1000) as u32).saturating_sub(access) as u64
}

/// The LFU counter after applying the decay for the minutes elapsed since it
/// was last decremented (what OBJECT FREQ reports).
pub fn lfu_counter(access: u32, now_ms: u64) -> u8 {
    let counter = (access & 0xFF) as u8;
    let decay = LFU_DECAY_MIN.load(Ordering::Relaxed);
    if decay == 0 {
        return counter;
    }
    let last = access >> 8;
    // The minute clock has 24 bits: it wraps, so the distance is taken modulo.
    let elapsed = minutes(now_ms).wrapping_sub(last) & 0xFF_FFFF;
    let periods = elapsed / decay;
    counter.saturating_sub(periods.min(255) as u8)
}

fn lfu_touched(access: u32, now_ms: u64) -> u32 {
    let mut counter = lfu_counter(access, now_ms);
    if counter < 255 {
        // Logarithmic growth: the more hits a key has, the less likely one more counts.
        let base = counter.saturating_sub(LFU_INIT) as f64;
        let factor = LFU_LOG_FACTOR.load(Ordering::Relaxed) as f64;
        let p = 1.0 / (base * factor + 1.0);
        if unit_random() < p {
            counter += 1;
        }
    }
    (minutes(now_ms) << 8) | counter as u32
}

/// A cheap uniform number in [0, 1): xorshift in a thread-local, no allocation.
fn unit_random() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE
        .try_with(|s| {
            let mut x = s.get();
            if x == 0 {
                x = (s as *const _ as u64) ^ crate::storage::now_ms() ^ 0x9E37_79B9_7F4A_7C15;
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.set(x);
            (x >> 11) as f64 / (1u64 << 53) as f64
        })
        .unwrap_or(0.5)
}

// ---------------------------------------------------------------------------
// The maxmemory check

/// Redis's reply to a write refused for memory.
pub const OOM_TEXT: &str = "OOM command not allowed when used memory > 'maxmemory'.";

pub fn oom_reply() -> Reply {
    Reply::error(OOM_TEXT)
}

/// Background duties: keeps the coarse clock and tracking mode current,
/// records the start-up baseline, and evicts when memory is over the limit
/// while no command arrives to do it.
pub async fn cron(server: std::sync::Arc<Server>) {
    refresh_tracking(&server);
    STARTUP.store(used_memory(), Ordering::Relaxed);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tick.tick().await;
        if server.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        if server.cron_is_paused() {
            continue;
        }
        refresh_tracking(&server);
        let max = server.config.maxmemory.load(Ordering::Relaxed);
        if max != 0 && is_counting() && used_memory() > max && !server.pause.writes_paused() {
            let policy = Policy::of(&server);
            if policy != Policy::NoEviction {
                crate::shard::eviction::perform(&server, policy, max, &mut []);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse() {
        assert_eq!(Policy::parse("allkeys-lru"), Policy::AllKeysLru);
        assert_eq!(Policy::parse("volatile-ttl"), Policy::VolatileTtl);
        assert_eq!(Policy::parse("nope"), Policy::NoEviction);
        assert!(Policy::VolatileLfu.volatile() && Policy::VolatileLfu.lfu());
        assert!(!Policy::AllKeysRandom.volatile());
    }

    #[test]
    fn lru_words_are_seconds() {
        let mut a = 0;
        touch_lru(&mut a, 10_500);
        assert_eq!(a, 10);
        assert_eq!(idle_secs(a, 15_000), 5);
        // A clock that went backwards reads as no idle time, not as a huge one.
        assert_eq!(idle_secs(a, 1_000), 0);
    }

    fn touch_lru(a: &mut u32, now: u64) {
        *a = (now / 1000) as u32;
    }

    #[test]
    fn lfu_counter_grows_slowly_and_decays() {
        let now = 10 * 60_000;
        let mut a = (minutes(now) << 8) | LFU_INIT as u32;
        for _ in 0..100_000 {
            a = lfu_touched(a, now);
        }
        let c = lfu_counter(a, now);
        // log factor 10: 100k hits land well below saturation but well above the start.
        assert!(c > 20 && c < 255, "counter {c}");
        // One minute per decay period by default.
        assert_eq!(lfu_counter(a, now + 3 * 60_000), c - 3);
        assert_eq!(lfu_counter(a, now + 1000 * 60_000), 0);
    }
}
