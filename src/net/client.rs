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
    pub kill_notify: tokio::sync::Notify,
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
}

/// A connection's buffers as CLIENT LIST reports them (bytes).
#[derive(Default)]
pub struct Buffers {
    /// Unparsed input (`qbuf`) and the input buffer's size (`qbuf-free` is the difference).
    pub qbuf: AtomicUsize,
    pub qbuf_cap: AtomicUsize,
    /// The largest the input buffer has been (`rbp`).
    pub qbuf_peak: AtomicUsize,
    /// Arguments of the commands being run (`argv-mem`).
    pub argv: AtomicUsize,
    /// Arguments queued in MULTI (`multi-mem`).
    pub multi: AtomicUsize,
    /// Replies not yet written to the socket (`omem`), and the reply buffer's size.
    pub out: AtomicUsize,
    pub out_cap: AtomicUsize,
}

pub const UNBLOCK_TIMEOUT: u8 = 1;
pub const UNBLOCK_ERROR: u8 = 2;

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
            created: Instant::now(),
            db: AtomicUsize::new(0),
            last_active: AtomicU64::new(crate::storage::now_ms()),
            busy: AtomicBool::new(false),
            last_cmd: AtomicUsize::new(usize::MAX),
            meta: Mutex::new(ClientMeta { resp: 2, user: "default".into(), multi: -1, ..Default::default() }),
            killed: AtomicBool::new(false),
            kill_notify: tokio::sync::Notify::new(),
            blocked: AtomicBool::new(false),
            unblock: tokio::sync::Notify::new(),
            unblock_request: std::sync::atomic::AtomicU8::new(0),
            bufs: Buffers::default(),
            peak_in: AtomicU64::new(0),
            peak_out: AtomicU64::new(0),
            user_id: AtomicU64::new(crate::acl::DEFAULT_USER_ID),
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

    /// Memory this client's connection holds: its buffers, the arguments
    /// being run or queued in MULTI, and its record.
    pub fn memory(&self) -> u64 {
        let b = &self.bufs;
        (b.qbuf_cap.load(Ordering::Relaxed)
            + b.out_cap.load(Ordering::Relaxed)
            + b.argv.load(Ordering::Relaxed)
            + b.multi.load(Ordering::Relaxed)
            + std::mem::size_of::<ClientInfo>()) as u64
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

#[derive(Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    /// Connections admitted (reserved before registering), for `maxclients`.
    admitted: AtomicUsize,
    pub clients: DashMap<u64, Arc<ClientInfo>>,
}

impl ClientRegistry {
    pub fn register(&self, addr: String, laddr: String, fd: i32) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo::new(id, addr, laddr, fd));
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
        self.clients.remove(&id);
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
}
