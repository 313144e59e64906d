//! Choosing and removing keys while memory is over `maxmemory`.
//!
//! LRU, LFU and TTL policies are approximated as Redis does: each round draws
//! `maxmemory-samples` keys from every database of every shard it can enter,
//! keeps the best candidates seen during the call in a small pool (best =
//! idlest, least frequently used, or soonest to expire), and removes the best
//! one. The random policies take a random key, visiting databases round-robin.
//!
//! A command that finds memory over the limit runs this with its own shards
//! entered; the other shards are entered only if they are free right now
//! (`try_lock`), so eviction never waits and never deadlocks against another
//! connection doing the same. Work per call is bounded by time, derived from
//! `maxmemory-eviction-tenacity` like Redis's; the memory cron carries on.

use crate::protocol::Reply;
use crate::server::Server;
use crate::shard::ShardData;
use crate::storage::memory::{self, is_counting, used_memory, Policy};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Memory is under the limit.
    Done,
    /// The time budget ran out first; the command may run, eviction continues later.
    Running,
    /// Nothing left to evict (or the policy has no candidates): still over.
    Fail,
}

/// Candidates kept between rounds of one call, as Redis's eviction pool.
const POOL: usize = 16;

struct Candidate {
    score: u64,
    shard: usize,
    db: usize,
    key: Bytes,
}

/// Evicts until used memory is at most `max`, with `held` the shards the
/// caller has entered (empty from the cron).
pub fn perform(server: &Server, policy: Policy, max: u64, held: &mut [&mut ShardData]) -> Outcome {
    if replica_ignores_maxmemory(server) {
        return Outcome::Done;
    }
    let mut guards = Vec::new();
    for shard in &server.shards.list {
        if !held.iter().any(|h| h.id == shard.id) {
            if let Some(g) = shard.try_lock() {
                guards.push(g);
            }
        }
    }
    let mut all: Vec<&mut ShardData> = held.iter_mut().map(|s| &mut **s).collect();
    all.extend(guards.iter_mut().map(|g| &mut **g));
    let samples = server.config.get_i64("maxmemory-samples").clamp(1, 64) as usize;
    let budget = time_limit(server.config.get_i64("maxmemory-eviction-tenacity"));
    let started = std::time::Instant::now();
    let outcome = evict_while(server, policy, &mut all, samples, budget, || memory::used_memory() > max);
    server.observers.latency_monitor.add_if_needed("eviction-cycle", started.elapsed().as_millis() as u64);
    outcome
}

/// Redis's time limit per eviction call for a tenacity of 0..=100: linear up
/// to 10 (500 µs), then growing 15% per step, unlimited at 100.
fn time_limit(tenacity: i64) -> Duration {
    let t = tenacity.clamp(0, 100);
    if t <= 10 {
        Duration::from_micros(50 * t as u64)
    } else if t < 100 {
        Duration::from_micros((500.0 * 1.15f64.powi(t as i32 - 10)) as u64)
    } else {
        Duration::from_secs(3600)
    }
}

/// Removes victims chosen by `policy` while `over()` says memory is over the
/// limit. Returns how it ended; counts the evictions in INFO stats.
pub fn evict_while(
    server: &Server,
    policy: Policy,
    shards: &mut [&mut ShardData],
    samples: usize,
    budget: Duration,
    mut over: impl FnMut() -> bool,
) -> Outcome {
    let start = Instant::now();
    let now = crate::storage::now_ms();
    let mut rng = rand::thread_rng();
    let mut pool: Vec<Candidate> = Vec::with_capacity(POOL + 1);
    let mut next_db = 0usize;
    let mut evicted = 0u64;
    let mut rounds = 0u64;
    let outcome = loop {
        if !over() {
            break Outcome::Done;
        }
        let victim = match policy {
            Policy::NoEviction => None,
            Policy::AllKeysRandom | Policy::VolatileRandom => {
                random_victim(shards, policy.volatile(), &mut next_db, &mut rng)
            }
            _ => pooled_victim(shards, policy, samples, now, &mut pool, &mut rng),
        };
        let Some((si, db, key)) = victim else {
            break Outcome::Fail;
        };
        if shards[si].dbs[db].remove(&key).is_some() {
            evicted += 1;
            // WATCH, keyspace notifications and the write stream learn of it like of any write.
            super::key_removed(server, shards[si], db, &key, "evicted");
        }
        rounds += 1;
        if rounds.is_multiple_of(16) && start.elapsed() >= budget {
            break Outcome::Running;
        }
    };
    if evicted > 0 {
        server.stats.evicted_keys.fetch_add(evicted, Ordering::Relaxed);
    }
    outcome
}

/// How good a victim a sampled key is: higher is evicted first.
fn score(policy: Policy, expire_at: u64, access: u32, now: u64) -> u64 {
    match policy {
        Policy::AllKeysLfu | Policy::VolatileLfu => 255 - memory::lfu_counter(access, now) as u64,
        Policy::VolatileTtl => u64::MAX - expire_at,
        _ => memory::idle_secs(access, now),
    }
}

fn pooled_victim(
    shards: &mut [&mut ShardData],
    policy: Policy,
    samples: usize,
    now: u64,
    pool: &mut Vec<Candidate>,
    rng: &mut impl rand::Rng,
) -> Option<(usize, usize, Bytes)> {
    for (si, shard) in shards.iter().enumerate() {
        for (di, db) in shard.dbs.iter().enumerate() {
            db.sample(policy.volatile(), samples, rng, |key, entry, access| {
                let score = score(policy, entry.expire_at, access, now);
                offer(pool, Candidate { score, shard: si, db: di, key: Bytes::copy_from_slice(key) });
            });
        }
    }
    // Candidates only leave the pool here, and the caller holds every shard
    // they come from, so the best one still exists.
    pool.pop().map(|c| (c.shard, c.db, c.key))
}

/// Adds a candidate to the pool (kept ascending by score, at most `POOL`).
fn offer(pool: &mut Vec<Candidate>, c: Candidate) {
    if pool.len() >= POOL && pool.first().is_some_and(|worst| worst.score >= c.score) {
        return;
    }
    if pool.iter().any(|p| p.shard == c.shard && p.db == c.db && p.key == c.key) {
        return;
    }
    let at = pool.partition_point(|p| p.score <= c.score);
    pool.insert(at, c);
    if pool.len() > POOL {
        pool.remove(0);
    }
}

fn random_victim(
    shards: &mut [&mut ShardData],
    volatile: bool,
    next_db: &mut usize,
    rng: &mut impl rand::Rng,
) -> Option<(usize, usize, Bytes)> {
    let per_shard = shards.first().map_or(0, |s| s.dbs.len());
    let total = shards.len() * per_shard;
    for _ in 0..total {
        let slot = *next_db % total;
        *next_db = next_db.wrapping_add(1);
        let (si, di) = (slot / per_shard, slot % per_shard);
        if let Some(key) = shards[si].dbs[di].random_candidate(volatile, rng) {
            return Some((si, di, key));
        }
    }
    None
}

// ---------------------------------------------------------------------------
// The maxmemory check

/// The maxmemory check run before a command with its shard(s) entered.
///
/// With `maxmemory` 0 this is one relaxed load. Over the limit, keys are
/// evicted first (any policy but noeviction), as Redis does before every
/// command; a command flagged `denyoom` then gets the OOM error if memory
/// could not be brought under the limit. Reads always run.
#[inline]
pub fn check_oom(server: &Server, denyoom: bool, shards: &mut [&mut ShardData]) -> Option<Reply> {
    let max = server.config.maxmemory.load(Ordering::Relaxed);
    if max == 0 {
        return None;
    }
    over_limit(server, max, denyoom, shards)
}

/// The same check for callers that decide themselves whether the work may
/// grow memory (scripts: `deny` is true unless the script allows OOM, and
/// `redis.call` of a denyoom command inside a script that started over the
/// limit). `shards` are the shards the caller has entered.
pub fn check_oom_for(server: &Server, deny: bool, shards: &mut [&mut ShardData]) -> Option<Reply> {
    let max = server.config.maxmemory.load(Ordering::Relaxed);
    if max == 0 {
        return None;
    }
    over_limit(server, max, deny, shards)
}

/// True when memory is over a non-zero `maxmemory` (no eviction attempted).
pub fn over_maxmemory(server: &Server) -> bool {
    let max = server.config.maxmemory.load(Ordering::Relaxed);
    max != 0 && is_counting() && used_memory() > max && !replica_ignores_maxmemory(server)
}

/// A replica leaves its dataset's size to its master (`replica-ignore-maxmemory`, on by default, as
/// in Redis): keys it evicted itself would be missing from it while the master still has them.
fn replica_ignores_maxmemory(server: &Server) -> bool {
    crate::storage::replica_expiry() && server.config.get("replica-ignore-maxmemory").as_deref() != Some("no")
}

#[cold]
fn over_limit(server: &Server, max: u64, deny: bool, shards: &mut [&mut ShardData]) -> Option<Reply> {
    // Nothing is evicted while CLIENT PAUSE holds writes (and no write runs).
    if !is_counting() || used_memory() <= max || server.pause.writes_paused() || replica_ignores_maxmemory(server) {
        return None;
    }
    let policy = Policy::of(server);
    let outcome = match policy {
        Policy::NoEviction => Outcome::Fail,
        _ => perform(server, policy, max, shards),
    };
    server.stats.eviction_over(outcome != Outcome::Done);
    (deny && outcome == Outcome::Fail).then(memory::oom_reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::storage::Value;

    fn server() -> Server {
        let cfg = Config::default();
        cfg.set("shards", "2", true).unwrap();
        Server::new(cfg)
    }

    fn fill(server: &Server, n: usize, ttl_base: Option<u64>) {
        for i in 0..n {
            let key = Bytes::from(format!("k{i}"));
            let mut g = server.shards.get(server.shards.for_key(&key)).lock_blocking();
            let at = ttl_base.map_or(0, |b| b + i as u64 * 1000);
            g.dbs[0].set_with_expiry(key, Value::Str(b"v"[..].into()), at);
        }
    }

    fn keys(server: &Server) -> usize {
        server.shards.list.iter().map(|s| s.lock_blocking().total_keys()).sum()
    }

    fn run(server: &Server, policy: Policy, count: usize) -> Outcome {
        let mut left = count;
        let mut guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
        let mut all: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
        evict_while(server, policy, &mut all, 5, Duration::from_secs(60), || {
            let go = left > 0;
            left = left.saturating_sub(1);
            go
        })
    }

    #[test]
    fn noeviction_fails_and_keeps_keys() {
        let s = server();
        fill(&s, 10, None);
        assert_eq!(run(&s, Policy::NoEviction, 3), Outcome::Fail);
        assert_eq!(keys(&s), 10);
    }

    #[test]
    fn each_policy_evicts_what_it_may() {
        for policy in [Policy::AllKeysLru, Policy::AllKeysLfu, Policy::AllKeysRandom] {
            let s = server();
            fill(&s, 50, None);
            assert_eq!(run(&s, policy, 20), Outcome::Done, "{policy:?}");
            assert_eq!(keys(&s), 30, "{policy:?}");
            assert_eq!(s.stats.evicted_keys.load(Ordering::Relaxed), 20);
        }
        for policy in [Policy::VolatileLru, Policy::VolatileLfu, Policy::VolatileRandom, Policy::VolatileTtl] {
            let s = server();
            fill(&s, 50, None);
            // Only persistent keys: nothing to evict.
            assert_eq!(run(&s, policy, 1), Outcome::Fail, "{policy:?}");
            assert_eq!(keys(&s), 50);
        }
    }

    #[test]
    fn volatile_ttl_prefers_the_soonest_expiry() {
        let s = server();
        let base = crate::storage::now_ms() + 3_600_000;
        fill(&s, 200, Some(base));
        assert_eq!(run(&s, Policy::VolatileTtl, 50), Outcome::Done);
        // Keys are k0..k199 with ascending expiry: the evicted ones lean to the low end.
        let mut gone_low = 0;
        let mut gone_high = 0;
        for i in 0..200 {
            let key = format!("k{i}");
            let mut g = s.shards.get(s.shards.for_key(key.as_bytes())).lock_blocking();
            if g.dbs[0].peek(key.as_bytes(), 0).is_none() {
                if i < 100 {
                    gone_low += 1;
                } else {
                    gone_high += 1;
                }
            }
        }
        assert_eq!(gone_low + gone_high, 50);
        assert!(gone_low > 3 * gone_high, "low {gone_low} high {gone_high}");
    }

    #[test]
    fn lru_prefers_idle_keys() {
        let s = server();
        fill(&s, 200, None);
        // Half the keys were last used long ago.
        let old = crate::storage::now_ms().saturating_sub(3_600_000);
        for i in 0..100 {
            let key = format!("k{i}");
            let mut g = s.shards.get(s.shards.for_key(key.as_bytes())).lock_blocking();
            let _ = g.dbs[0].get(key.as_bytes(), old);
        }
        assert_eq!(run(&s, Policy::AllKeysLru, 50), Outcome::Done);
        let mut g_old = 0;
        for i in 0..100 {
            let key = format!("k{i}");
            let mut g = s.shards.get(s.shards.for_key(key.as_bytes())).lock_blocking();
            if g.dbs[0].peek(key.as_bytes(), 0).is_none() {
                g_old += 1;
            }
        }
        assert!(g_old >= 45, "only {g_old} of 50 evictions hit the idle half");
    }

    #[test]
    fn pool_keeps_the_best() {
        let mut pool = Vec::new();
        for (i, score) in [5u64, 1, 9, 3, 9, 7].into_iter().enumerate() {
            offer(&mut pool, Candidate { score, shard: 0, db: 0, key: Bytes::from(format!("{i}")) });
        }
        offer(&mut pool, Candidate { score: 100, shard: 0, db: 0, key: Bytes::from("0") });
        assert_eq!(pool.len(), 6, "a key already pooled is not added twice");
        assert_eq!(pool.last().map(|c| c.score), Some(9));
        assert!(pool.windows(2).all(|w| w[0].score <= w[1].score));
        assert_eq!(time_limit(10), Duration::from_micros(500));
        assert_eq!(time_limit(0), Duration::ZERO);
    }
}
