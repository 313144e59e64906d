//! Redis Cluster mode (`cluster-enabled yes`): this node is a Redis Cluster
//! 7.0 node. `state` holds what it knows (nodes, slots, epochs) and applies
//! the bus messages; `bus` is the binary wire format; `link` the bus
//! listener, the connections and the 100 ms cron; `config_file` nodes.conf.
//!
//! Commands reach the cluster through `Cluster::route` (the redirection
//! check dispatch runs before a keyed command: MOVED, ASK, TRYAGAIN,
//! CLUSTERDOWN) and the CLUSTER commands (`commands::cluster`). The slots
//! this node serves without further checks are mirrored in an atomic
//! bitmap, so the check of a command on a stable slot takes no lock.

pub mod bus;
pub mod config_file;
pub mod failover;
pub mod link;
pub mod state;

use parking_lot::Mutex;
use state::{NodeId, State};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

pub struct Cluster {
    pub state: Mutex<State>,
    /// Slots owned here and neither migrating nor importing.
    fast: Vec<AtomicU64>,
    /// The cluster state is ok.
    ok: AtomicBool,
    /// `cluster-allow-reads-when-down` (refreshed by the cron).
    pub reads_when_down: AtomicBool,
    pub path: PathBuf,
    /// This node became a master or a replica: replication must follow now.
    pub role_changed: tokio::sync::Notify,
    /// The server, for delivering the messages PUBLISH(SHARD) brings
    /// (set when the bus starts).
    pub server: std::sync::OnceLock<std::sync::Weak<crate::server::Server>>,
}

/// Where a command must go instead of running here.
pub enum Redirect {
    Moved(usize, String),
    Ask(usize, String),
    TryAgain,
    Unbound,
    Down,
    DownReadOnly,
}

impl Redirect {
    pub fn text(&self) -> String {
        match self {
            Redirect::Moved(slot, addr) => format!("MOVED {slot} {addr}"),
            Redirect::Ask(slot, addr) => format!("ASK {slot} {addr}"),
            Redirect::TryAgain => "TRYAGAIN Multiple keys request during rehashing of slot".into(),
            Redirect::Unbound => "CLUSTERDOWN Hash slot not served".into(),
            Redirect::Down => "CLUSTERDOWN The cluster is down".into(),
            Redirect::DownReadOnly => "CLUSTERDOWN The cluster is down and only accepts read commands".into(),
        }
    }
}

/// What the caller knows of a command for routing it.
pub struct Query<'a> {
    /// The one slot of its keys.
    pub slot: usize,
    pub write: &'a mut dyn FnMut() -> bool,
    /// The client sent ASKING (or the command is RESTORE-ASKING).
    pub asking: bool,
    pub multiple_keys: bool,
    /// The command is MIGRATE: it runs here while the slot is open.
    pub migrate: bool,
    /// The client sent READONLY (a replica serves its reads).
    pub readonly: bool,
    /// Counts the keys present and missing here (asked only for a slot
    /// being migrated or imported): (existing, missing).
    pub count_keys: &'a mut dyn FnMut() -> (usize, usize),
}

impl Cluster {
    /// Opens the node's state: nodes.conf if it exists, else a new node
    /// with a random id (the file is written at once, as Redis does).
    pub fn open(path: PathBuf, port: u16, cport: u16) -> Result<Cluster, String> {
        let st = match config_file::load(&path, port, cport)? {
            Some(st) => st,
            None => State::new(state::random_id(), port, cport),
        };
        let c = Cluster {
            state: Mutex::new(st),
            fast: (0..state::SLOTS / 64).map(|_| AtomicU64::new(0)).collect(),
            ok: AtomicBool::new(false),
            reads_when_down: AtomicBool::new(false),
            path,
            role_changed: tokio::sync::Notify::new(),
            server: std::sync::OnceLock::new(),
        };
        let mut st = c.state.lock();
        st.dirty = true;
        c.commit(&mut st).map_err(|e| format!("Can't write the cluster config file {}: {e}", c.path.display()))?;
        drop(st);
        Ok(c)
    }

    /// After a change of `st`: republishes the fast-path bitmap and the
    /// state, and rewrites nodes.conf if needed.
    pub fn commit(&self, st: &mut State) -> std::io::Result<()> {
        self.commit_with(st, true)
    }

    /// [`Cluster::commit`]; nodes.conf is fsynced only when `sync`.
    pub fn commit_with(&self, st: &mut State, sync: bool) -> std::io::Result<()> {
        self.ok.store(st.ok, Relaxed);
        if !st.unsubscribe_slots.is_empty() {
            let slots = std::mem::take(&mut st.unsubscribe_slots);
            // Only the registry's maps are taken under the state lock (no
            // shard lock: SPUBLISH takes the state lock inside one).
            if let Some(server) = self.server.get().and_then(std::sync::Weak::upgrade) {
                server.pubsub.unsubscribe_slots(&slots);
            }
        }
        if std::mem::take(&mut st.fo.role_changed) {
            self.role_changed.notify_one();
        }
        if !st.dirty {
            // Slot ownership and migrations change only with the configuration.
            return Ok(());
        }
        let me = st.myself;
        for (w, word) in self.fast.iter().enumerate() {
            let mut bits = 0u64;
            for b in 0..64 {
                let s = w * 64 + b;
                if st.owner[s] == Some(me) && !st.migrating.contains_key(&s) && !st.importing.contains_key(&s) {
                    bits |= 1 << b;
                }
            }
            word.store(bits, Relaxed);
        }
        st.dirty = false;
        config_file::write_atomic_with(&self.path, &config_file::render(st), sync)
    }

    /// PUBLISH / SPUBLISH ran here: the bus carries the message on.
    pub fn publish(&self, shard: bool, channel: &[u8], message: &[u8]) {
        self.state.lock().propagate_publish(shard, channel, message);
    }

    pub fn id(&self) -> NodeId {
        self.state.lock().myself
    }

    /// Where a keyed command on `q.slot` runs: `None` here, or the
    /// redirection (Redis's getNodeByQuery).
    #[inline]
    pub fn route(&self, q: &mut Query) -> Option<Redirect> {
        let fast = self.fast[q.slot / 64].load(Relaxed) & (1 << (q.slot % 64)) != 0;
        if fast && self.ok.load(Relaxed) {
            return None;
        }
        self.route_slow(q)
    }

    #[cold]
    fn route_slow(&self, q: &mut Query) -> Option<Redirect> {
        let allow_reads_when_down = self.reads_when_down.load(Relaxed);
        let st = self.state.lock();
        let slot = q.slot;
        let Some(owner) = st.owner[slot] else {
            return Some(Redirect::Unbound);
        };
        let migrating = owner == st.myself && st.migrating.contains_key(&slot);
        let importing = st.importing.contains_key(&slot);
        // Keys are counted only where the answer depends on them: a single
        // key sent with ASKING to an importing node (each RESTORE-ASKING of
        // a MIGRATE) needs no count, and no wait for its shard's lock.
        let count = migrating || (importing && q.asking && q.multiple_keys);
        let (existing, missing) = if count { (q.count_keys)() } else { (0, 0) };
        if !st.ok {
            if !allow_reads_when_down {
                return Some(Redirect::Down);
            }
            if (q.write)() {
                return Some(Redirect::DownReadOnly);
            }
        }
        // As Redis: MIGRATE works on the local node while the slot is
        // migrating or importing (`--cluster fix` moves keys out of an
        // importing node).
        if (migrating || importing) && q.migrate {
            return None;
        }
        if migrating && missing > 0 {
            if existing > 0 {
                return Some(Redirect::TryAgain);
            }
            let to = st.migrating[&slot];
            return Some(Redirect::Ask(slot, addr_of(&st, &to)));
        }
        if importing && q.asking {
            if q.multiple_keys && missing > 0 {
                return Some(Redirect::TryAgain);
            }
            return None;
        }
        if owner != st.myself {
            // A READONLY client reads from a replica of the slot's owner.
            let me = st.me();
            if q.readonly && me.flags & state::flags::SLAVE != 0 && me.master == Some(owner) && !(q.write)() {
                return None;
            }
            return Some(Redirect::Moved(slot, addr_of(&st, &owner)));
        }
        None
    }
}

/// `ip:port` of a node, as redirections name it.
pub fn addr_of(st: &State, id: &NodeId) -> String {
    match st.nodes.get(id) {
        Some(n) => format!("{}:{}", n.ip, n.port),
        None => ":0".into(),
    }
}
