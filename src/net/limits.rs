//! Client limits: the idle `timeout` (a cron, like Redis's clientsCron), the
//! normal class of `client-output-buffer-limit` (checked by the connection as
//! its output grows and while a write waits), and the query buffer limit.

use crate::net::client::ClientInfo;
use crate::pubsub::Limits;
use crate::server::Server;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often idle clients are looked for: `timeout` counts in seconds.
const IDLE_SCAN: Duration = Duration::from_millis(250);

/// The clients cron: re-accounts clients' memory for `maxmemory-clients`
/// (`net::eviction`) and closes clients idle for longer than `timeout`
/// seconds. Like Redis 7.0, subscribed clients and clients inside a command
/// (blocked ones included) are never idle.
pub async fn clients_cron(server: Arc<Server>) {
    let mut tick = tokio::time::interval(IDLE_SCAN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if server.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        if server.cron_is_paused() {
            continue;
        }
        // Clients whose memory changed without a check of theirs (a
        // no-evict flag lifted, messages delivered while they wait).
        crate::net::eviction::reaccount_and_evict(&server);
        let secs = server.config.timeout_secs.load(Ordering::Relaxed);
        let now = crate::storage::now_ms();
        for c in server.clients.snapshot() {
            if secs != 0 && is_idle(&c, now, secs.saturating_mul(1000)) {
                crate::net::listener::log(&server, "verbose", "Closing idle client");
                c.kill();
            } else if holds_idle_buffer(&c, now) {
                c.trim_buffers.store(true, Ordering::Relaxed);
                c.wake_idle();
            }
        }
    }
}

/// A connection that kept its read buffer (its requests came close
/// together) and has now waited 2 s with it empty, as Redis trims an idle
/// client's query buffer.
fn holds_idle_buffer(c: &ClientInfo, now_ms: u64) -> bool {
    c.bufs.qbuf_cap.load(Ordering::Relaxed) != 0
        && c.bufs.qbuf.load(Ordering::Relaxed) == 0
        && !c.busy.load(Ordering::Acquire)
        && !c.trim_buffers.load(Ordering::Relaxed)
        && now_ms.saturating_sub(c.last_active.load(Ordering::Relaxed)) > 2000
}

fn is_idle(c: &ClientInfo, now_ms: u64, max_idle_ms: u64) -> bool {
    if c.busy.load(Ordering::Acquire) || c.killed.load(Ordering::Relaxed) {
        return false;
    }
    if now_ms.saturating_sub(c.last_active.load(Ordering::Relaxed)) <= max_idle_ms {
        return false;
    }
    let m = c.meta.lock();
    m.sub + m.psub + m.ssub == 0
}

/// The normal class of `client-output-buffer-limit` as one connection applies
/// it to its pending output. Refreshed from the config once per loop turn so
/// the per-reply check is a single comparison.
#[derive(Debug)]
pub struct OutputLimit {
    hard: usize,
    soft: usize,
    soft_secs: u64,
    /// Since when the pending output has stayed at or over the soft limit.
    soft_since: Option<Instant>,
    /// Output shorter than this needs no check (the lowest limit set).
    pub check_from: usize,
}

impl Default for OutputLimit {
    fn default() -> Self {
        OutputLimit { hard: 0, soft: 0, soft_secs: 0, soft_since: None, check_from: usize::MAX }
    }
}

impl OutputLimit {
    pub fn refresh(&mut self, limits: &Limits) {
        let as_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        self.hard = as_usize(limits.hard.load(Ordering::Relaxed));
        self.soft = as_usize(limits.soft.load(Ordering::Relaxed));
        self.soft_secs = limits.soft_secs.load(Ordering::Relaxed);
        let nonzero = |v: usize| if v == 0 { usize::MAX } else { v };
        self.check_from = nonzero(self.hard).min(nonzero(self.soft));
    }

    /// Turns the limit off (a subscribed client answers to the pubsub class).
    pub fn disable(&mut self) {
        *self = OutputLimit::default();
    }

    /// Whether `pending` bytes of output overcome the limits, Redis's way: the
    /// hard limit at once, the soft one once it has held for over `soft_secs`.
    pub fn overcome(&mut self, pending: usize) -> bool {
        if self.hard > 0 && pending >= self.hard {
            return true;
        }
        match self.soft_deadline(pending) {
            Some(deadline) => Instant::now() >= deadline,
            None => false,
        }
    }

    /// When output held at `pending` bytes overcomes the soft limit, if ever.
    pub fn soft_deadline(&mut self, pending: usize) -> Option<Instant> {
        if self.soft == 0 || pending < self.soft {
            self.soft_since = None;
            return None;
        }
        let since = *self.soft_since.get_or_insert_with(Instant::now);
        // Redis closes when the elapsed time is strictly over the setting.
        Some(since + Duration::from_secs(self.soft_secs) + Duration::from_millis(1))
    }
}

/// Sleeps until `deadline`, or forever when there is none.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Whether a client's buffered request overcomes `client-query-buffer-limit`
/// (Redis logs it and closes the connection without a reply).
pub fn query_buffer_overcome(server: &Server, info: &ClientInfo, unparsed: &[u8]) -> bool {
    let buffered = unparsed.len();
    let head = unparsed;
    let limit = server.config.query_buffer_limit.load(Ordering::Relaxed);
    if limit == 0 || buffered as u64 <= limit {
        return false;
    }
    let head = String::from_utf8_lossy(&head[..head.len().min(64)]).escape_debug().to_string();
    let msg = format!(
        "Closing client that reached max query buffer length: id={} addr={} qbuf={buffered} (qbuf initial bytes: \"{head}\")",
        info.id, info.addr
    );
    crate::net::listener::log(server, "warning", &msg);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(hard: u64, soft: u64, secs: u64) -> OutputLimit {
        let l = Limits::default();
        l.hard.store(hard, Ordering::Relaxed);
        l.soft.store(soft, Ordering::Relaxed);
        l.soft_secs.store(secs, Ordering::Relaxed);
        let mut o = OutputLimit::default();
        o.refresh(&l);
        o
    }

    #[test]
    fn hard_and_soft() {
        let mut o = limit(0, 0, 0);
        assert_eq!(o.check_from, usize::MAX);
        assert!(!o.overcome(usize::MAX));
        let mut o = limit(1000, 100, 0);
        assert_eq!(o.check_from, 100);
        assert!(o.overcome(1000));
        assert!(!o.overcome(999), "soft limit: first sighting only starts the clock");
        std::thread::sleep(Duration::from_millis(5));
        assert!(o.overcome(100));
        assert!(!o.overcome(99), "under the soft limit resets it");
        assert!(!o.overcome(500));
        let mut o = limit(0, 100, 60);
        assert!(!o.overcome(100));
        assert!(!o.overcome(100));
        assert!(o.soft_deadline(100).is_some_and(|d| d > Instant::now() + Duration::from_secs(59)));
    }
}
