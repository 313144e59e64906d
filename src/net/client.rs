//! Per-connection state and the registry of connected clients.

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What other connections may read about a client (CLIENT LIST/KILL, INFO).
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    /// The socket's descriptor, shown by CLIENT LIST.
    pub fd: i32,
    /// The connection is TLS (`tls-port`): with `tls-cluster yes` it is
    /// shown the nodes' TLS ports, a plaintext client their plain ports.
    pub tls: AtomicBool,
    /// Connected over the Unix socket (`unixsocket`): a local client, flag `U`.
    pub unix: AtomicBool,
    pub created: Instant,
    pub db: AtomicUsize,
    /// Unix ms of the last interaction (bytes read or written), as Redis's
    /// `lastinteraction`: CLIENT LIST's idle and the `timeout` check read it.
    pub last_active: AtomicU64,
    /// Set while the connection runs commands (a blocked or scripting client
    /// included): such a client is not idle, whatever `timeout` says.
    pub busy: AtomicBool,
    /// Index in the command table of the last command run.
    pub last_cmd: AtomicUsize,
    pub meta: Mutex<ClientMeta>,
    /// Set by CLIENT KILL; the connection closes at its next wakeup.
    pub killed: AtomicBool,
    /// Set by the clients cron for a connection that has waited 2 s holding
    /// its read buffer: woken, it gives the buffer back (Redis trims an idle
    /// client's query buffer in its cron).
    pub trim_buffers: AtomicBool,
    /// Wakes the connection wherever it waits: for CLIENT KILL (`killed` is
    /// set first) or for pushes queued in `pushes`. Waiters check `killed`.
    pub kill_notify: tokio::sync::Notify,
    /// The connection task while it waits for input (`wake_idle`): cheaper to
    /// register per wait than two `Notify` waiters (kill, shutdown).
    idle_waker: Mutex<Option<std::task::Waker>>,
    /// CLIENT TRACKING's mode (read by whoever sends this client invalidations).
    pub tracking: Tracking,
    /// Pushes (invalidation messages) queued for this connection by other clients.
    pub pushes: Pushes,
    /// Set while the client waits in a blocking command.
    pub blocked: AtomicBool,
    /// CLIENT UNBLOCK: `unblock_request` says how (UNBLOCK_TIMEOUT or
    /// UNBLOCK_ERROR, 0 for none) and `unblock` wakes the blocked client.
    pub unblock: tokio::sync::Notify,
    pub unblock_request: std::sync::atomic::AtomicU8,
    /// Buffer sizes for CLIENT LIST, published by the connection as they change.
    pub bufs: Buffers,
    /// The largest input buffer and pending output seen since INFO's
    /// sampler last looked (`client_recent_max_*_buffer`).
    pub peak_in: AtomicU64,
    pub peak_out: AtomicU64,
    /// The id of the ACL user the connection is authenticated as
    /// (`acl::UserEntry::id`): removing a user closes its connections.
    pub user_id: AtomicU64,
    /// CLIENT NO-EVICT ON: never evicted for `maxmemory-clients`.
    pub no_evict: AtomicBool,
    /// The memory of this client counted in `ClientRegistry::accounted`
    /// (see `net::eviction`); 0 once it may no longer count (a replica
    /// link, a client evicted or gone).
    pub accounted: AtomicU64,
    /// Set on a replica's link and on the link to this server's master:
    /// never evicted, never counted against `maxmemory-clients`.
    pub replication_link: AtomicBool,
    /// The registry's count of all clients' memory (`ClientRegistry::memory`),
    /// which `account_memory` keeps this client's share of; an unlisted
    /// client has one of its own.
    pool: Arc<ClientsMemory>,
}

/// The memory of the connected clients together, as `maxmemory-clients`
/// compares it (Redis's `stat_clients_type_memory` of normal and pub/sub
/// clients): the sum of every client's `accounted`, kept by deltas.
#[derive(Default)]
pub struct ClientsMemory {
    pub total: AtomicU64,
    /// `Config::client_eviction_limit` (shared): 0 while no client is evicted.
    pub limit: Arc<AtomicU64>,
}

/// A connection's buffers as CLIENT LIST reports them (bytes).
#[derive(Default)]
pub struct Buffers {
    /// Unparsed input (`qbuf`) and the input buffer's size (`qbuf-free` is the difference).
    pub qbuf: AtomicUsize,
    pub qbuf_cap: AtomicUsize,
    /// The declared length of a big argument on its way (`maxmemory-clients`
    /// counts it from its header, as Redis allocates it then), 0 for none.
    pub qbuf_declared: AtomicUsize,
    /// The largest the input buffer has been (`rbp`).
    pub qbuf_peak: AtomicUsize,
    /// Arguments of the commands being run (`argv-mem`).
    pub argv: AtomicUsize,
    /// Arguments queued in MULTI (`multi-mem`).
    pub multi: AtomicUsize,
    /// Replies not yet written to the socket (`omem`), and the reply buffer's size.
    pub out: AtomicUsize,
    pub out_cap: AtomicUsize,
    /// Pub/sub messages queued for the client or in its unwritten output
    /// (counted against the pubsub output limits; part of `omem`).
    pub pubsub: AtomicUsize,
    /// The watched keys' bookkeeping (WATCH), in bytes.
    pub watch: AtomicUsize,
}

pub const UNBLOCK_TIMEOUT: u8 = 1;
pub const UNBLOCK_ERROR: u8 = 2;
/// The server became a replica: blocked clients get Redis's UNBLOCKED error
/// and are disconnected (their keys now change only by the master's hand).
pub const UNBLOCK_ROLE_CHANGE: u8 = 3;

#[derive(Default, Clone)]
pub struct ClientMeta {
    pub name: Option<Bytes>,
    pub lib_name: Option<String>,
    pub lib_ver: Option<String>,
    pub resp: u8,
    pub user: String,
    /// Subscribed channels/patterns counts and MULTI state, for CLIENT LIST.
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// Commands queued in MULTI, -1 outside a transaction (as CLIENT LIST shows it).
    pub multi: i64,
    pub flags: String,
}

impl ClientInfo {
    /// A client record; `register` lists it, an internal client (AOF
    /// loading, tests) stays unlisted.
    pub fn new(id: u64, addr: String, laddr: String, fd: i32) -> ClientInfo {
        ClientInfo {
            id,
            addr,
            laddr,
            fd,
            tls: AtomicBool::new(false),
            unix: AtomicBool::new(false),
            created: Instant::now(),
            db: AtomicUsize::new(0),
            last_active: AtomicU64::new(crate::storage::now_ms()),
            busy: AtomicBool::new(false),
            last_cmd: AtomicUsize::new(usize::MAX),
            meta: Mutex::new(ClientMeta { resp: 2, user: "default".into(), multi: -1, ..Default::default() }),
            killed: AtomicBool::new(false),
            kill_notify: tokio::sync::Notify::new(),
            idle_waker: Mutex::new(None),
            trim_buffers: AtomicBool::new(false),
            tracking: Tracking::default(),
            pushes: Pushes::default(),
            blocked: AtomicBool::new(false),
            unblock: tokio::sync::Notify::new(),
            unblock_request: std::sync::atomic::AtomicU8::new(0),
            bufs: Buffers::default(),
            peak_in: AtomicU64::new(0),
            peak_out: AtomicU64::new(0),
            user_id: AtomicU64::new(crate::acl::DEFAULT_USER_ID),
            no_evict: AtomicBool::new(false),
            accounted: AtomicU64::new(0),
            replication_link: AtomicBool::new(false),
            pool: Arc::default(),
        }
    }

    /// The input buffer's size after a read (a store only when it grew past
    /// the recent peak).
    #[inline]
    pub fn note_input(&self, capacity: usize) {
        let cap = capacity as u64;
        if cap > self.peak_in.load(Ordering::Relaxed) {
            self.peak_in.store(cap, Ordering::Relaxed);
        }
    }

    /// Output about to be written (`pending` bytes).
    #[inline]
    pub fn note_output(&self, pending: usize) {
        if pending as u64 > self.peak_out.load(Ordering::Relaxed) {
            self.peak_out.store(pending as u64, Ordering::Relaxed);
        }
    }

    /// The largest (input buffer, pending output) since the last `take`;
    /// `take` starts the next period from the present input buffer.
    pub fn buffer_peaks(&self, take: bool) -> (u64, u64) {
        if !take {
            return (self.peak_in.load(Ordering::Relaxed), self.peak_out.load(Ordering::Relaxed));
        }
        let now_in = self.bufs.qbuf_cap.load(Ordering::Relaxed) as u64;
        (self.peak_in.swap(now_in, Ordering::Relaxed), self.peak_out.swap(0, Ordering::Relaxed))
    }

    /// Memory this client's connection holds (CLIENT LIST's `tot-mem`, what
    /// `maxmemory-clients` limits): its input buffer, its output (the reply
    /// buffer, or the messages waiting for it when more), the arguments
    /// being run or queued in MULTI, what its watched keys, subscriptions and
    /// tracking prefixes take, and its record. As Redis's, the bookkeeping
    /// of subscriptions and prefixes is an estimate, not walked per byte.
    pub fn memory(&self) -> u64 {
        /// A subscription's entries: the client's set and the channel's list.
        const PER_SUBSCRIPTION: usize = 64;
        /// A tracking prefix's entry besides its bytes.
        const PER_PREFIX: usize = 48;
        let b = &self.bufs;
        let load = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        let out = load(&b.out_cap).max(load(&b.pubsub));
        let subscriptions = {
            let m = self.meta.lock();
            m.sub + m.psub + m.ssub
        };
        let prefixes: usize = if self.tracking.flags() & tracking_flags::BCAST != 0 {
            self.tracking.prefixes.lock().iter().map(|p| p.len() + PER_PREFIX).sum()
        } else {
            0
        };
        (load(&b.qbuf_cap).max(load(&b.qbuf_declared))
            + out
            + load(&b.argv)
            + load(&b.multi)
            + load(&b.watch)
            + subscriptions * PER_SUBSCRIPTION
            + prefixes
            + std::mem::size_of::<ClientInfo>()) as u64
    }

    /// True while `maxmemory-clients` is set: memory is then accounted as it
    /// changes (one relaxed load otherwise).
    #[inline]
    pub fn eviction_on(&self) -> bool {
        self.pool.limit.load(Ordering::Relaxed) != 0
    }

    /// Brings this client's share of the clients' total memory up to date.
    /// Any thread may call it (a publisher for its subscriber). Shares move
    /// by swaps, so the total stays the sum of the shares whichever threads
    /// race; a client evicted meanwhile takes its share out again.
    pub fn account_memory(&self) {
        if self.replication_link.load(Ordering::Relaxed) {
            return;
        }
        let now = self.memory();
        let before = self.accounted.swap(now, Ordering::SeqCst);
        self.pool.shift(before, now);
        if self.killed.load(Ordering::SeqCst) {
            self.unaccount_memory();
        }
    }

    /// Takes this client's share out of the total (evicted, gone, or a replica link).
    pub fn unaccount_memory(&self) {
        let before = self.accounted.swap(0, Ordering::SeqCst);
        self.pool.shift(before, 0);
    }

    /// Marks a client of the Unix socket (set once, before it runs a command).
    pub fn mark_unix(&self) {
        self.unix.store(true, Ordering::Relaxed);
        self.set_flag('U', true);
    }

    /// Sets or clears one of CLIENT LIST's flag letters.
    pub fn set_flag(&self, flag: char, on: bool) {
        let mut meta = self.meta.lock();
        if on {
            if !meta.flags.contains(flag) {
                meta.flags.push(flag);
            }
        } else {
            meta.flags.retain(|c| c != flag);
        }
    }

    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill_notify.notify_one();
        self.wake_idle();
    }

    /// Wakes the connection if it waits for input (a kill, pushes queued, a
    /// shutdown: the waiter checks those flags after registering, under the
    /// same lock, so a wake between its check and its wait is not lost).
    pub fn wake_idle(&self) {
        if let Some(w) = self.idle_waker.lock().as_ref() {
            w.wake_by_ref();
        }
    }

    /// The connection task ends: its waker must not outlive it here.
    pub fn forget_idle(&self) {
        self.idle_waker.lock().take();
    }

    /// Registers the connection task waiting for input (see `wake_idle`).
    pub fn register_idle(&self, waker: &std::task::Waker) {
        let mut slot = self.idle_waker.lock();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    /// Queues an encoded push for this client, waking its connection when
    /// `wake`, for after the replies already made when `later`; returns the
    /// bytes now queued.
    pub fn push(&self, frame: &[u8], wake: bool, later: bool) -> usize {
        let pending = self.pushes.queue(frame, later);
        if wake {
            self.kill_notify.notify_one();
            self.wake_idle();
        }
        pending
    }
}

/// CLIENT TRACKING flags (`Tracking::flags`), as Redis names them.
pub mod tracking_flags {
    pub const ON: u32 = 1;
    pub const BCAST: u32 = 1 << 1;
    pub const OPTIN: u32 = 1 << 2;
    pub const OPTOUT: u32 = 1 << 3;
    pub const NOLOOP: u32 = 1 << 4;
    /// CLIENT CACHING YES (under OPTIN) or NO (under OPTOUT) for the next command.
    pub const CACHING: u32 = 1 << 5;
    /// The redirect client went away (CLIENT LIST's `R`).
    pub const BROKEN_REDIR: u32 = 1 << 6;
}

/// A client's CLIENT TRACKING mode.
#[derive(Default)]
pub struct Tracking {
    /// `tracking_flags`; 0 while tracking is off.
    pub flags: std::sync::atomic::AtomicU32,
    /// The client invalidations go to (REDIRECT), 0 for this one.
    pub redirect: AtomicU64,
    /// BCAST prefixes, in byte order (CLIENT TRACKINGINFO lists them so).
    pub prefixes: Mutex<Vec<Bytes>>,
}

impl Tracking {
    #[inline]
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn set(&self, flag: u32, on: bool) {
        if on {
            self.flags.fetch_or(flag, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!flag, Ordering::Relaxed);
        }
    }
}

/// Pushes waiting for a connection: encoded messages other clients (or the
/// server) queued, which go out before the connection's next reply or as
/// soon as it waits (`now`); messages its own commands broadcast, which go
/// out with the next write, after the replies of its pipeline (`later`, as
/// Redis broadcasts before it sleeps); and the invalidations its own
/// running command caused for it, which Redis sends right after that
/// command's reply (`deferred`: a key, or None for a flush).
#[derive(Default)]
pub struct Pushes {
    waiting: AtomicBool,
    queue: Mutex<PushQueue>,
}

#[derive(Default)]
struct PushQueue {
    now: Vec<u8>,
    later: Vec<u8>,
    deferred: Vec<Option<Bytes>>,
}

impl PushQueue {
    fn empty(&self) -> bool {
        self.now.is_empty() && self.later.is_empty() && self.deferred.is_empty()
    }
}

impl Pushes {
    /// True when something is queued (one relaxed load: the per-reply check).
    #[inline]
    pub fn waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Queues an encoded `frame` (`later`: for the next write rather than
    /// before the next reply); returns the bytes now queued.
    pub fn queue(&self, frame: &[u8], later: bool) -> usize {
        let mut q = self.queue.lock();
        if later {
            q.later.extend_from_slice(frame);
        } else {
            q.now.extend_from_slice(frame);
        }
        self.waiting.store(true, Ordering::Release);
        q.now.len() + q.later.len()
    }

    /// Remembers an invalidation of `key` (None: every key) for after the
    /// running command's reply.
    pub fn defer(&self, key: Option<&[u8]>) {
        let mut q = self.queue.lock();
        q.deferred.push(key.map(Bytes::copy_from_slice));
        self.waiting.store(true, Ordering::Release);
    }

    /// Moves the messages due before the next reply into `out` (with
    /// `all`, also those due at the next write).
    pub fn take_encoded(&self, out: &mut Vec<u8>, all: bool) {
        let mut q = self.queue.lock();
        out.extend_from_slice(&q.now);
        q.now.clear();
        if all {
            out.extend_from_slice(&q.later);
            q.later.clear();
        }
        self.waiting.store(!q.empty(), Ordering::Release);
    }

    /// The deferred invalidations, in the order they happened.
    pub fn take_deferred(&self) -> Vec<Option<Bytes>> {
        let mut q = self.queue.lock();
        let taken = std::mem::take(&mut q.deferred);
        self.waiting.store(!q.empty(), Ordering::Release);
        taken
    }
}

/// CLIENT REPLY's modes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Drop the reply of the next command only.
    Skip,
    /// Set by CLIENT REPLY SKIP itself: becomes `Skip` once its own (suppressed)
    /// reply is dropped.
    SkipNext,
}

/// The state a connection keeps for itself.
pub struct ClientState {
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub resp: u8,
    pub authenticated: bool,
    /// The ACL user and its rules.
    pub acl: crate::acl::ClientAcl,
    /// Close the connection once the pending replies are written (QUIT, protocol error).
    pub close_after_reply: bool,
    pub reply_mode: ReplyMode,
    /// Cluster mode: ASKING was sent (the next command may reach an importing slot).
    pub cluster_asking: bool,
    /// Cluster mode: READONLY was sent.
    pub cluster_readonly: bool,
    /// SCRIPT DEBUG's mode (`scripting::ldb::OFF`, `YES`, `SYNC`).
    pub ldb: u8,
}

impl ClientState {
    pub fn id(&self) -> u64 {
        self.info.id
    }

    pub fn set_db(&mut self, db: usize) {
        self.db = db;
        self.info.db.store(db, Ordering::Relaxed);
    }

    pub fn set_resp(&mut self, resp: u8) {
        self.resp = resp;
        self.info.meta.lock().resp = resp;
    }
}

impl ClientsMemory {
    /// One client's share went from `before` to `now`.
    fn shift(&self, before: u64, now: u64) {
        if now >= before {
            self.total.fetch_add(now - before, Ordering::Relaxed);
        } else {
            self.total.fetch_sub(before - now, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    /// Connections admitted (reserved before registering), for `maxclients`.
    admitted: AtomicUsize,
    pub clients: DashMap<u64, Arc<ClientInfo>>,
    /// The clients' memory together (`maxmemory-clients`, `net::eviction`).
    pub memory: Arc<ClientsMemory>,
    /// Held while clients are evicted: one evictor at a time.
    pub evicting: Mutex<()>,
}

impl ClientRegistry {
    /// A registry whose clients are limited by `limit` (`maxmemory-clients`
    /// in bytes, shared with the configuration).
    pub fn new(limit: Arc<AtomicU64>) -> ClientRegistry {
        let memory = Arc::new(ClientsMemory { total: AtomicU64::new(0), limit });
        ClientRegistry { memory, ..Default::default() }
    }

    pub fn register(&self, addr: String, laddr: String, fd: i32) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut info = ClientInfo::new(id, addr, laddr, fd);
        info.pool = self.memory.clone();
        let info = Arc::new(info);
        self.clients.insert(id, info.clone());
        info
    }

    /// Claims a connection slot; false (and nothing claimed) when `max` are taken.
    /// Atomic, so simultaneous connects cannot all slip under the limit.
    pub fn admit(&self, max: usize) -> bool {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= max {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Removes a registered client and gives back its slot.
    pub fn unregister(&self, id: u64) {
        // Slot first: once a client is gone from CLIENT LIST its slot is free.
        self.admitted.fetch_sub(1, Ordering::AcqRel);
        if let Some((_, c)) = self.clients.remove(&id) {
            c.unaccount_memory();
        }
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.clients.get(&id).map(|e| e.value().clone())
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// A snapshot of every client, ordered by id.
    pub fn snapshot(&self) -> Vec<Arc<ClientInfo>> {
        let mut v: Vec<_> = self.clients.iter().map(|e| e.value().clone()).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// The clients not killed, ordered by id: those CLIENT LIST and KILL
    /// see (a killed client's connection may not have ended yet; Redis
    /// frees another client at once).
    pub fn live(&self) -> Vec<Arc<ClientInfo>> {
        let mut v = self.snapshot();
        v.retain(|c| !c.killed.load(Ordering::Acquire));
        v
    }
}
