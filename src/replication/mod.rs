//! Replication, wire-compatible with Redis 7.0 in both directions.
//!
//! - `master`: replicas (redis-server or moonshard) connect, announce
//!   themselves with REPLCONF and ask for the stream with PSYNC (or SYNC).
//!   A replica whose replication ID and offset the backlog still covers
//!   continues from there (`+CONTINUE`); any other gets a full
//!   resynchronization: the RDB snapshot (no fork) then the propagated write
//!   stream from the snapshot's instant on.
//! - `replica`: REPLICAOF host port follows a master from a thread of its
//!   own: handshake, PSYNC with the history it has, full or partial sync,
//!   then the stream, acknowledged with REPLCONF ACK.
//! - `backlog`: the replication offset, IDs and backlog both roles keep
//!   (what INFO replication reports and PSYNC is answered from).
//!
//! This file holds the state both sides share and the once-a-second cron.

mod backlog;
pub mod failover;
mod master;
mod replica;

pub use backlog::History;
pub use master::{serve_replica, Link, SyncRequest};
pub use replica::{follow_master, stop_following, Following};

use crate::net::listener::log;
use crate::server::Server;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What a connection asked of the RDB of its full sync (`redis-cli --rdb`
/// sends `rdb-only 1`, `--functions-rdb` also `rdb-filter-only functions`).
#[derive(Clone, Copy, Default, Debug)]
pub struct RdbRequest {
    /// The connection is closed once the RDB is sent: no write stream.
    pub rdb_only: bool,
    /// No keys in the RDB (`rdb-filter-only`) ...
    pub filtered: bool,
    /// ... but the function libraries (`rdb-filter-only functions`).
    pub functions: bool,
}

/// The replicas of this master, connections on their way to become one,
/// and this server's own master when it is a replica.
pub struct Replicas {
    links: Mutex<Vec<Arc<Link>>>,
    /// The full sync payload being received from the master (INFO's
    /// `master_sync_*` fields).
    pub transfer: Transfer,
    /// What each connection announced with REPLCONF (client id -> listening
    /// port, whether it understands `+CONTINUE <replid>`, and whether it
    /// reads an RDB of unknown length ended by a mark: `capa eof`).
    announced: Mutex<HashMap<u64, (u16, bool, bool)>>,
    /// REPLCONF ip-address (the replica's `replica-announce-ip`): the address
    /// its link shows and FAILOVER TO matches instead of the connection's.
    announced_ip: Mutex<HashMap<u64, String>>,
    /// REPLCONF rdb-only / rdb-filter-only: what a connection asked of the
    /// RDB of its full sync.
    rdb_requests: Mutex<HashMap<u64, RdbRequest>>,
    /// Connections whose PSYNC or SYNC was accepted, waiting for their
    /// connection task to hand them over.
    handoff: Mutex<HashMap<u64, SyncRequest>>,
    /// Entries in `handoff`: every connection checks it after each batch,
    /// so the common case (none) is one atomic load, not a shared lock.
    handoffs: AtomicUsize,
    /// This server's master, when it is a replica.
    pub following: Mutex<Following>,
    /// Bumped by every REPLICAOF: the thread of an older one stops.
    generation: AtomicU64,
    /// The link to the master, as a handle to cut it when the server stops
    /// following that master, so that the thread of the older REPLICAOF
    /// stops at once, not after a transfer it no longer wants.
    master_socket: Mutex<Option<std::net::TcpStream>>,
    /// Held by a replica's link thread for each attempt to sync, so that two
    /// REPLICAOF in quick succession never run two syncs side by side (they
    /// would both flush and load, and share the temporary file's name).
    syncing: Mutex<()>,
    /// A replica refusing its clients' writes.
    is_replica: AtomicBool,
    /// Offset, previous ID and backlog (see `backlog`).
    pub history: Arc<Mutex<History>>,
    /// The backlog's subscription to the propagated stream, and whether it
    /// is subscribed (a master with a backlog).
    feed: Arc<dyn crate::propagate::Subscriber>,
    feeding: AtomicBool,
    /// Held by a replica while it applies a batch of its master's stream and
    /// counts it, so that REPLICAOF NO ONE sees whole batches only.
    applying: Mutex<()>,
    /// When the last replica left (the backlog's time to live counts from it).
    idle_since: Mutex<Option<std::time::Instant>>,
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    /// A replica whose link to its master is down (replica-serve-stale-data).
    pub link_down: AtomicBool,
    /// Woken by every replica's acknowledgement (WAIT).
    pub acks: tokio::sync::Notify,
    /// A replica's own replicas (chained): the master's stream is passed on
    /// to them byte for byte as it is applied, each from the offset it
    /// joined at.
    forward: Mutex<Vec<(Arc<Link>, u64)>>,
    /// A replica: the offset its dataset stands for at this instant (the
    /// last command outside MULTI applied), read with every shard held.
    applied: AtomicU64,
    /// FAILOVER under way (see `failover`), and whether there is one.
    pub failover: Mutex<failover::State>,
    pub failing_over: AtomicBool,
}

/// A full sync's payload on its way from the master, as Redis's
/// `repl_transfer_*`: its size (-1 until the master said it, 0 for a
/// payload ended by a mark), the bytes read and when the last arrived.
#[derive(Default)]
pub struct Transfer {
    pub active: AtomicBool,
    pub size: std::sync::atomic::AtomicI64,
    pub read: AtomicU64,
    pub last_io: AtomicU64,
}

impl Transfer {
    /// A full sync starts: nothing known of the payload yet.
    pub fn start(&self) {
        self.size.store(-1, Ordering::Relaxed);
        self.read.store(0, Ordering::Relaxed);
        self.last_io.store(now_secs(), Ordering::Relaxed);
        self.active.store(true, Ordering::Release);
    }

    /// Bytes of the payload arrived (nothing while no full sync runs).
    pub fn received(&self, n: u64) {
        if self.active.load(Ordering::Relaxed) {
            self.read.fetch_add(n, Ordering::Relaxed);
            self.last_io.store(now_secs(), Ordering::Relaxed);
        }
    }
}

impl Default for Replicas {
    fn default() -> Self {
        let history = Arc::new(Mutex::new(History::default()));
        Replicas {
            links: Mutex::default(),
            transfer: Transfer::default(),
            announced: Mutex::default(),
            announced_ip: Mutex::default(),
            rdb_requests: Mutex::default(),
            handoff: Mutex::default(),
            handoffs: AtomicUsize::new(0),
            following: Mutex::default(),
            generation: AtomicU64::new(0),
            master_socket: Mutex::default(),
            syncing: Mutex::default(),
            is_replica: AtomicBool::new(false),
            feed: Arc::new(backlog::Feed(history.clone())),
            history,
            feeding: AtomicBool::new(false),
            applying: Mutex::new(()),
            idle_since: Mutex::new(None),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            acks: tokio::sync::Notify::new(),
            link_down: AtomicBool::new(false),
            forward: Mutex::default(),
            applied: AtomicU64::new(0),
            failover: Mutex::default(),
            failing_over: AtomicBool::new(false),
        }
    }
}

impl Replicas {
    /// Waits up to `wait` for a replica to be between two units of its
    /// master's stream and keeps it there while the guard lives (a snapshot
    /// then records an exact offset). Take it before any shard.
    pub fn at_unit_boundary(&self, wait: std::time::Duration) -> Option<parking_lot::MutexGuard<'_, ()>> {
        self.applying.try_lock_for(wait)
    }

    /// REPLCONF listening-port: the port the replica's own clients use.
    pub fn announce(&self, client: u64, port: u16) {
        self.announced.lock().entry(client).or_insert((0, false, false)).0 = port;
    }

    /// REPLCONF ip-address: the address the replica announces.
    pub fn announce_ip(&self, client: u64, ip: String) {
        self.announced_ip.lock().insert(client, ip);
    }

    /// REPLCONF rdb-only 0|1.
    pub fn request_rdb_only(&self, client: u64, only: bool) {
        self.rdb_requests.lock().entry(client).or_default().rdb_only = only;
    }

    /// REPLCONF rdb-filter-only: keys are left out of the RDB, and the
    /// function libraries too unless `functions`.
    pub fn request_rdb_filter(&self, client: u64, functions: bool) {
        let mut requests = self.rdb_requests.lock();
        let r = requests.entry(client).or_default();
        r.filtered = true;
        r.functions = functions;
    }

    /// What a connection asked of its RDB (taken once).
    pub(crate) fn take_rdb_request(&self, client: u64) -> RdbRequest {
        self.rdb_requests.lock().remove(&client).unwrap_or_default()
    }

    /// The address a connection announced, if any (taken once).
    pub(crate) fn take_announced_ip(&self, client: u64) -> Option<String> {
        self.announced_ip.lock().remove(&client)
    }

    /// REPLCONF capa psync2: the replica understands `+CONTINUE <replid>`.
    pub fn announce_psync2(&self, client: u64) {
        self.announced.lock().entry(client).or_insert((0, false, false)).1 = true;
    }

    /// REPLCONF capa eof: the replica can take a diskless transfer.
    pub fn announce_eof(&self, client: u64) {
        self.announced.lock().entry(client).or_insert((0, false, false)).2 = true;
    }

    /// PSYNC / SYNC accepted: the connection becomes a replica link once the
    /// current batch is answered.
    pub fn request_sync(&self, client: u64, req: SyncRequest) {
        if self.handoff.lock().insert(client, req).is_none() {
            self.handoffs.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whether the connection asked to become a replica.
    #[inline]
    pub fn take_handoff(&self, client: u64) -> Option<SyncRequest> {
        if self.handoffs.load(Ordering::Acquire) == 0 {
            return None;
        }
        let taken = self.handoff.lock().remove(&client);
        if taken.is_some() {
            self.handoffs.fetch_sub(1, Ordering::AcqRel);
        }
        taken
    }

    /// Forgets a connection that went away before it became a replica.
    pub fn forget(&self, client: u64) {
        self.announced.lock().remove(&client);
        self.announced_ip.lock().remove(&client);
        self.rdb_requests.lock().remove(&client);
        let _ = self.take_handoff(client);
    }

    pub fn links(&self) -> Vec<Arc<Link>> {
        self.links.lock().clone()
    }

    /// Replicas past their full sync.
    pub fn online(&self) -> Vec<Arc<Link>> {
        self.links.lock().iter().filter(|l| l.online.load(Ordering::Acquire)).cloned().collect()
    }

    /// True while this server is a replica refusing writes from its clients.
    pub fn read_only_replica(&self) -> bool {
        self.is_replica.load(Ordering::Relaxed)
    }

    /// `replica-read-only` set at run time: a replica's client writes follow it.
    pub fn follow_read_only(&self, config: &crate::config::Config) {
        if self.following.lock().master.is_some() {
            let ro = config.get("replica-read-only").as_deref() != Some("no");
            self.is_replica.store(ro, Ordering::Relaxed);
        }
    }

    /// This server's replication offset (`master_repl_offset`).
    pub fn offset(&self) -> u64 {
        self.history.lock().offset
    }

    /// A replica passes on the bytes of its master's stream it applied
    /// (`applied` ends at the history's offset after they were fed) to its
    /// own replicas, each from the offset it joined at.
    fn feed_applied(&self, bytes: &[u8]) {
        let forward = self.forward.lock();
        let mut h = self.history.lock();
        let start = h.offset;
        h.feed(bytes);
        drop(h);
        for (link, from) in forward.iter() {
            let skip = from.saturating_sub(start) as usize;
            if skip < bytes.len() {
                crate::propagate::Subscriber::append(&**link, &bytes[skip..], 0);
            }
        }
    }

    /// Disconnects this server's replicas (they reconnect and resynchronize:
    /// a new master, a new history, a promotion).
    fn disconnect_replicas(&self) {
        self.forward.lock().clear();
        for l in self.links() {
            l.client.kill();
        }
    }
}

/// Subscribes the backlog to the propagated stream (a master's), with every
/// shard held (subscribers join and leave between units). Blocks.
fn attach_feed(server: &Server) {
    if server.replicas.feeding.swap(true, Ordering::AcqRel) {
        return;
    }
    let guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
    let feed = server.replicas.feed.clone();
    let history = &server.replicas.history;
    server.propagation.with_subscribers(true, |subs, at| {
        history.lock().attached_at(at);
        subs.push(feed);
    });
    drop(guards);
}

/// Stops feeding the backlog from the propagated stream. Blocks.
fn detach_feed(server: &Server) {
    if !server.replicas.feeding.swap(false, Ordering::AcqRel) {
        return;
    }
    let guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
    server.propagation.unsubscribe(&server.replicas.feed);
    drop(guards);
}

/// What a snapshot taken now records of the replication history (the RDB
/// aux fields repl-stream-db, repl-id, repl-offset), as Redis's
/// rdbPopulateSaveInfo: a master that has a backlog (it is in a replication
/// chain), or a replica whose dataset continues a history. Call with every
/// shard held. A replica's figures are exact only between two units of its
/// master's stream: `applying_held` says the caller holds `applying`, else
/// it is tried here and, when busy, nothing is recorded (the restart then
/// syncs in full, never from a wrong offset).
pub fn save_info(server: &Server, applying_held: bool) -> Option<crate::persist::rdb::ReplInfo> {
    let replicas = &server.replicas;
    let (following, valid, stream_db) = {
        let f = replicas.following.lock();
        (f.master.is_some(), f.valid_history, f.stream_db)
    };
    if !following {
        let h = replicas.history.lock();
        if !h.has_backlog() {
            return None;
        }
        // (No SELECT since the last full sync: the next write brings one.)
        let db = server.propagation.selected_db().unwrap_or(0);
        return Some(crate::persist::rdb::ReplInfo {
            stream_db: db as i64,
            id: server.replid.lock().clone(),
            offset: h.offset as i64,
        });
    }
    let _unit_boundary = if applying_held { None } else { Some(replicas.applying.try_lock()?) };
    if !valid {
        return None;
    }
    let offset = replicas.history.lock().offset as i64;
    Some(crate::persist::rdb::ReplInfo { stream_db: stream_db as i64, id: server.replid.lock().clone(), offset })
}

/// After start-up loaded an RDB file recording a replication history
/// (`save_info`): a replica continues it (its first PSYNC asks for the next
/// byte), a master keeps it as its previous history (replicas that follow
/// it continue with a partial resync) under a new ID, with an empty backlog
/// from there. `expired`: the keys the load dropped as expired, whose DELs
/// a master puts in that backlog (its replicas still have them), as Redis
/// feeds them while it loads.
pub fn restore_history(server: &Arc<Server>, info: crate::persist::rdb::ReplInfo, expired: Vec<(usize, bytes::Bytes)>) {
    if info.offset < 0 || info.stream_db < 0 || info.id.len() != 40 {
        return;
    }
    let replica = !server.config.get("replicaof").unwrap_or_default().trim().is_empty();
    if replica {
        *server.replid.lock() = info.id;
        server.replicas.history.lock().offset = info.offset as u64;
        let mut f = server.replicas.following.lock();
        f.valid_history = true;
        f.stream_db = info.stream_db as usize;
        return;
    }
    {
        let mut h = server.replicas.history.lock();
        h.offset = info.offset as u64;
        h.replid2 = info.id;
        h.second_offset = info.offset + 1;
        *server.replid.lock() = crate::server::random_id();
        h.create_backlog();
    }
    attach_feed(server);
    let lazy = server.config.get("lazyfree-lazy-expire").as_deref() == Some("yes");
    let verb = bytes::Bytes::from_static(if lazy { b"UNLINK" } else { b"DEL" });
    for (db, key) in expired {
        crate::propagate::emit(&server.propagation, db, &[verb.clone(), key]);
    }
}

/// `replicaof host port` in the config file or flags: followed from the
/// start, once the dataset on disk is loaded (as Redis connects to its
/// master after loading). Called by the listener before it lets clients
/// past LOADING, so that a client's REPLICAOF always comes after it (read
/// later, the setting a client's REPLICAOF stored would start a second
/// link beside the first).
pub fn follow_configured_master(server: &Arc<Server>) {
    let configured = server.config.get("replicaof").unwrap_or_default();
    let mut words = configured.split_whitespace();
    if let (Some(host), Some(port)) = (words.next(), words.next().and_then(|p| p.parse::<u16>().ok())) {
        follow_master(server, host.to_string(), port);
    }
}

/// Once a second: the backlog's size follows `repl-backlog-size`; every
/// `repl-ping-replica-period` seconds a master with replicas sends them a
/// PING through the stream, so that an idle link is not taken for a dead
/// one; a master without replicas for `repl-backlog-ttl` seconds frees its
/// backlog.
pub async fn cron(server: Arc<Server>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut since = 0i64;
    loop {
        tick.tick().await;
        if server.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        if server.cron_is_paused() {
            continue;
        }
        let limit = server.config.get_i64("repl-backlog-size").max(0) as usize;
        server.replicas.history.lock().set_limit(limit);
        let is_master = server.replicas.following.lock().master.is_none();
        since += 1;
        if since >= server.config.get_i64("repl-ping-replica-period") {
            since = 0;
            // (Not while a failover waits for its target to match the offset.)
            let failing_over = server.replicas.failing_over.load(Ordering::Acquire);
            if is_master && !failing_over && !server.replicas.links.lock().is_empty() {
                server.propagation.emit_dbless(&[b"PING"]);
            }
        }
        let ttl = server.config.get_i64("repl-backlog-ttl");
        let idle = *server.replicas.idle_since.lock();
        if let Some(idle) = idle {
            if is_master && ttl > 0 && idle.elapsed().as_secs() >= ttl as u64 {
                *server.replicas.idle_since.lock() = None;
                let srv = server.clone();
                let _ = tokio::task::spawn_blocking(move || free_backlog(&srv, ttl)).await;
            }
        }
    }
}

/// A master alone for `repl-backlog-ttl`: the backlog goes, and with it the
/// history (a new replication ID), as Redis does.
fn free_backlog(server: &Server, ttl: i64) {
    if !server.replicas.links.lock().is_empty() || !server.replicas.history.lock().has_backlog() {
        return;
    }
    detach_feed(server);
    let mut h = server.replicas.history.lock();
    h.free_backlog();
    h.clear_replid2();
    *server.replid.lock() = crate::server::random_id();
    drop(h);
    log(server, "notice", &format!("Replication backlog freed after {ttl} seconds without connected replicas."));
}

/// `min-replicas-to-write` with `min-replicas-max-lag`: whether writes are
/// refused now (`NOREPLICAS`) for lack of replicas that acknowledged within
/// the lag.
#[inline]
pub fn not_enough_replicas(server: &Server) -> bool {
    server.config.writes_need_replicas.load(Ordering::Relaxed) && count_says_no(server)
}

#[cold]
fn count_says_no(server: &Server) -> bool {
    if server.replicas.following.lock().master.is_some() {
        return false;
    }
    let need = server.config.get_i64("min-replicas-to-write").max(0) as usize;
    let lag = server.config.get_i64("min-replicas-max-lag").max(0) as u64;
    let now = now_secs();
    let good = server
        .replicas
        .online()
        .iter()
        .filter(|l| now.saturating_sub(l.last_ack.load(Ordering::Relaxed)) <= lag)
        .count();
    good < need
}

fn now_secs() -> u64 {
    crate::storage::now_ms() / 1000
}

/// `replica-serve-stale-data no`: while a replica's link to its master is
/// down, commands not flagged `stale` are refused (`MASTERDOWN`).
#[inline]
pub fn stale_refused(server: &Server, cmd: &crate::commands::spec::CommandSpec) -> bool {
    server.replicas.link_down.load(Ordering::Relaxed)
        && !cmd.has(crate::commands::spec::flags::STALE)
        && server.config.get("replica-serve-stale-data").as_deref() == Some("no")
}

pub const MASTERDOWN: &str = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

/// Parses WAIT's arguments as Redis does: (numreplicas, timeout ms).
fn wait_args(args: &[bytes::Bytes]) -> Result<(i64, u64), crate::protocol::Reply> {
    use crate::protocol::Reply;
    let Some(n) = crate::util::parse_i64(&args[1]) else {
        return Err(Reply::not_integer());
    };
    let Some(ms) = crate::util::parse_i64(&args[2]) else {
        return Err(Reply::err("timeout is not an integer or out of range"));
    };
    if ms < 0 {
        return Err(Reply::err("timeout is negative"));
    }
    Ok((n, ms as u64))
}

/// The replicas that acknowledged the stream up to a client's last write
/// (`woff`, a write-stream offset; 0: it wrote nothing).
fn acked_replicas(server: &Server, woff: u64) -> i64 {
    let target = if woff == 0 { 0 } else { server.replicas.history.lock().repl_offset_of(woff) };
    server.replicas.online().iter().filter(|l| l.ack.load(Ordering::Acquire) >= target).count() as i64
}

const WAIT_ON_REPLICA: &str = "WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a \
                               replica is configured to be writable (which is not the default) writes to replicas \
                               are just local and are not propagated.";

/// WAIT inside a transaction: the count now, without blocking.
pub fn wait_now(server: &Server, args: &[bytes::Bytes], woff: u64) -> crate::protocol::Reply {
    use crate::protocol::Reply;
    if server.replicas.following.lock().master.is_some() {
        return Reply::err(WAIT_ON_REPLICA);
    }
    match wait_args(args) {
        Ok(_) => Reply::Int(acked_replicas(server, woff)),
        Err(e) => e,
    }
}

/// WAIT numreplicas timeout: asks the replicas for an acknowledgement
/// (REPLCONF GETACK) and waits until `numreplicas` of them acknowledged
/// the client's last write, or `timeout` ms passed (0: no limit). Answers
/// how many did.
pub async fn wait(server: &Arc<Server>, args: &[bytes::Bytes], woff: u64, may_block: bool) -> crate::protocol::Reply {
    use crate::protocol::Reply;
    if !may_block {
        return wait_now(server, args, woff);
    }
    if server.replicas.following.lock().master.is_some() {
        return Reply::err(WAIT_ON_REPLICA);
    }
    let (want, ms) = match wait_args(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let mut acked = acked_replicas(server, woff);
    if acked >= want {
        return Reply::Int(acked);
    }
    if !server.replicas.links.lock().is_empty() && !server.replicas.failing_over.load(Ordering::Acquire) {
        server.propagation.emit_dbless(&[b"REPLCONF".as_slice(), b"GETACK", b"*"]);
    }
    let deadline = (ms > 0).then(|| tokio::time::Instant::now() + std::time::Duration::from_millis(ms));
    loop {
        let notified = server.replicas.acks.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        acked = acked_replicas(server, woff);
        if acked >= want || server.shutting_down.load(Ordering::Relaxed) {
            return Reply::Int(acked);
        }
        let step = tokio::time::Instant::now() + std::time::Duration::from_millis(100);
        let until = deadline.map_or(step, |d| d.min(step));
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(until) => {}
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Reply::Int(acked_replicas(server, woff));
        }
    }
}

/// Redis 7.0's pause before a shutdown (SHUTDOWN without NOW, SIGTERM, SIGINT): while a replica has
/// not acknowledged the whole stream, writes are held back and the shutdown waits for it, up to
/// `shutdown-timeout` seconds, so that a clean stop loses no write a replica could still receive.
/// Reads go on meanwhile. Returns false when `SHUTDOWN ABORT` ended the wait (writes resume).
/// Blocks the calling thread.
pub fn wait_for_replicas_before_shutdown(server: &Server) -> bool {
    let secs = server.config.get_i64("shutdown-timeout").max(0) as u64;
    let links = server.replicas.links();
    if links.is_empty() {
        return true;
    }
    let in_sync = |l: &master::Link| l.ack.load(Ordering::Acquire) == server.replicas.offset();
    if secs > 0 && !links.iter().all(|l| in_sync(l)) {
        log(server, "notice", "Waiting for replicas before shutting down.");
        // A second SHUTDOWN joins the first one's wait (and its deadline).
        let aborts = server.shutdown_abort.load(Ordering::SeqCst);
        let now = crate::storage::now_ms();
        if server.shutdown_waiting.fetch_add(1, Ordering::SeqCst) == 0 {
            server.shutdown_deadline_ms.store(now + secs * 1000, Ordering::SeqCst);
        }
        server.pause.hold_writes_for_failover(true);
        server.shutdown_holds_writes.store(true, Ordering::SeqCst);
        let aborted = || server.shutdown_abort.load(Ordering::SeqCst) != aborts;
        while crate::storage::now_ms() < server.shutdown_deadline_ms.load(Ordering::SeqCst)
            && !aborted()
            && !server.replicas.links().iter().all(|l| in_sync(l))
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let last = server.shutdown_waiting.fetch_sub(1, Ordering::SeqCst) == 1;
        if aborted() {
            // Writes resume once no SHUTDOWN waits any more.
            if last {
                release_shutdown_hold(server);
            }
            return false;
        }
    }
    let links = server.replicas.links();
    let offset = server.replicas.offset();
    let now = crate::storage::now_ms() / 1000;
    let mut lagging = 0;
    for l in &links {
        let ack = l.ack.load(Ordering::Acquire);
        if ack != offset {
            lagging += 1;
            let online = l.online.load(Ordering::Acquire);
            let lag = if online { now.saturating_sub(l.last_ack.load(Ordering::Acquire)) } else { 0 };
            let state = if online { "online" } else { "wait_bgsave" };
            let behind = offset as i64 - ack as i64;
            log(
                server,
                "warning",
                &format!(
                    "Lagging replica {}:{} reported offset {behind} behind master, lag={lag}, state={state}.",
                    l.ip, l.port
                ),
            );
        }
    }
    log(
        server,
        "notice",
        &format!("{} of {} replicas are in sync when shutting down.", links.len() - lagging, links.len()),
    );
    true
}

/// A shutdown that waited for its replicas did not happen after all (the final save failed):
/// writes go on, as after Redis's abortShutdown.
pub fn release_shutdown_hold(server: &Server) {
    if server.shutdown_holds_writes.swap(false, Ordering::SeqCst) {
        server.pause.hold_writes_for_failover(false);
    }
}
