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
    pub created: Instant,
    pub db: AtomicUsize,
    /// Unix ms of the last command.
    pub last_active: AtomicU64,
    /// Index in the command table of the last command run.
    pub last_cmd: AtomicUsize,
    pub meta: Mutex<ClientMeta>,
    /// Set by CLIENT KILL; the connection closes at its next wakeup.
    pub killed: AtomicBool,
    pub kill_notify: tokio::sync::Notify,
}

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
    pub multi: i64,
    pub flags: String,
}

impl ClientInfo {
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill_notify.notify_one();
    }
}

/// The state a connection keeps for itself.
pub struct ClientState {
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub resp: u8,
    pub authenticated: bool,
    /// Close the connection once the pending replies are written (QUIT, protocol error).
    pub close_after_reply: bool,
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
    pub clients: DashMap<u64, Arc<ClientInfo>>,
}

impl ClientRegistry {
    pub fn register(&self, addr: String, laddr: String) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            db: AtomicUsize::new(0),
            last_active: AtomicU64::new(crate::storage::now_ms()),
            last_cmd: AtomicUsize::new(usize::MAX),
            meta: Mutex::new(ClientMeta {
                resp: 2,
                user: "default".into(),
                ..Default::default()
            }),
            killed: AtomicBool::new(false),
            kill_notify: tokio::sync::Notify::new(),
        });
        self.clients.insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        self.clients.remove(&id);
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
