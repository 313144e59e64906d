//! Client eviction (`maxmemory-clients`, Redis 7.0): when the connections
//! together hold as much memory as the limit, the ones holding the most are
//! closed until the rest are under it again. Protects the server from many
//! clients each within its own limits (query buffer, output buffer) that
//! add up to more memory than the host has.
//!
//! Every client keeps its share of the total up to date where its memory
//! changes (`ClientInfo::account_memory`): after a read (its query buffer),
//! before a write (its replies, watched keys, subscriptions, tracking
//! prefixes, MULTI queue), and when a publisher queues a message for it.
//! Each of those checks the total against the limit (two relaxed loads when
//! under it). The clients cron and `CONFIG SET` re-account every client, for
//! those that changed without a check (a no-evict flag lifted, a lowered
//! limit).
//!
//! Differences from Redis: victims are taken by exact size, largest first,
//! where Redis takes them by power-of-two bucket; a client that stops reading
//! its replies holds one batch of them (its connection stops reading until
//! the socket takes them), so its output never grows past that to be evicted.

use crate::net::client::ClientInfo;
use crate::server::Server;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Closes the clients holding the most memory while the clients together
/// hold `maxmemory-clients` or more. Cheap when under the limit.
#[inline]
pub fn evict_if_over(server: &Server) {
    let pool = &server.clients.memory;
    let limit = pool.limit.load(Ordering::Relaxed);
    if limit != 0 && pool.total.load(Ordering::Relaxed) >= limit {
        evict(server, limit);
    }
}

/// Re-accounts every client, then evicts if the total is over the limit
/// (the clients cron, `CONFIG SET`, `CLIENT NO-EVICT off`).
pub fn reaccount_and_evict(server: &Server) {
    if server.clients.memory.limit.load(Ordering::Relaxed) == 0 {
        return;
    }
    for c in server.clients.clients.iter() {
        c.value().account_memory();
    }
    evict_if_over(server);
}

/// Whether `c` may be evicted: not CLIENT NO-EVICT, not a replica link.
fn evictable(c: &ClientInfo) -> bool {
    !c.no_evict.load(Ordering::Relaxed)
        && !c.replication_link.load(Ordering::Relaxed)
        && !c.killed.load(Ordering::Acquire)
}

#[cold]
fn evict(server: &Server, limit: u64) {
    let _one_evictor = server.clients.evicting.lock();
    // The running total moves by deltas from many threads; what is decided
    // here is decided on the shares themselves.
    let clients = server.clients.snapshot();
    let mut total: u64 = clients.iter().map(|c| c.accounted.load(Ordering::SeqCst)).sum();
    if total < limit {
        return;
    }
    let mut victims: Vec<(u64, Arc<ClientInfo>)> =
        clients.into_iter().filter(|c| evictable(c)).map(|c| (c.accounted.load(Ordering::SeqCst), c)).collect();
    // Largest first; among equals the oldest (the snapshot is by id).
    victims.sort_by_key(|v| std::cmp::Reverse(v.0));
    let now = crate::storage::now_ms();
    for (share, c) in victims {
        if total < limit {
            return;
        }
        let line = crate::commands::connection::client_line(&c, now);
        crate::net::listener::log(server, "notice", &format!("Evicting client: {line}"));
        c.kill();
        c.unaccount_memory();
        total = total.saturating_sub(share);
        server.stats.evicted_clients.fetch_add(1, Ordering::Relaxed);
    }
    if total >= limit {
        warn_over_limit(server);
    }
}

/// Redis's warning when no evictable client is left and the rest (no-evict
/// clients) still hold the limit; at most once a minute here, since every
/// check repeats it while they do.
fn warn_over_limit(server: &Server) {
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    let now = crate::storage::now_ms();
    let last = LAST_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60_000
        && LAST_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        crate::net::listener::log(server, "warning", "Over client maxmemory after evicting all evictable clients");
    }
}

/// DEBUG CLIENT-EVICTION: the evictable clients by size, in Redis's
/// power-of-two buckets (under 32 KB, then one per doubling up to 4 GB and
/// over); None while `maxmemory-clients` is off.
pub fn buckets_report(server: &Server) -> Option<String> {
    const MIN_LOG: u32 = 15;
    const MAX_LOG: u32 = 33;
    const BUCKETS: usize = (1 + MAX_LOG - MIN_LOG) as usize;
    if server.clients.memory.limit.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let mut sums = [(0u64, 0usize); BUCKETS];
    for c in server.clients.snapshot().iter().filter(|c| evictable(c)) {
        let mem = c.accounted.load(Ordering::Relaxed);
        let bits = u64::BITS - mem.leading_zeros();
        let bucket = (bits.clamp(MIN_LOG, MAX_LOG) - MIN_LOG) as usize;
        sums[bucket].0 += mem;
        sums[bucket].1 += 1;
    }
    let mut text = String::new();
    for (j, (mem, clients)) in sums.iter().enumerate() {
        if j == 0 {
            text.push_str("bucket          0");
        } else {
            text.push_str(&format!("bucket {:>10}", 1u64 << (j as u32 - 1 + MIN_LOG)));
        }
        if j == BUCKETS - 1 {
            text.push_str("+            : ");
        } else {
            text.push_str(&format!(" - {:>10}: ", (1u64 << (j as u32 + MIN_LOG)) - 1));
        }
        text.push_str(&format!("tot-mem: {mem:>10}, clients: {clients}\n"));
    }
    Some(text)
}
