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
    /// A nodes.conf text waits for the cron to write it (see `commit`).
    unsynced: AtomicBool,
    /// That text, with its version.
    pending: Mutex<Option<(u64, String)>>,
    /// The version of the last text rendered, and (under its own lock, which
    /// the cron takes without the state lock) of the last one written: an
    /// older text never replaces a newer one.
    versions: std::sync::atomic::AtomicU64,
    written: Mutex<u64>,
    /// `cluster-allow-reads-when-down` (refreshed by the cron).
    pub reads_when_down: AtomicBool,
    /// `cluster-allow-pubsubshard-when-down` (refreshed by the cron).
    pub pubsubshard_when_down: AtomicBool,
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
    /// The client is not on TLS: with `tls-cluster yes` redirections name
    /// the nodes' plaintext ports.
    pub plain_client: bool,
    /// The client sent READONLY (a replica serves its reads).
    pub readonly: bool,
    /// SSUBSCRIBE, SUNSUBSCRIBE or SPUBLISH.
    pub shard_channel: bool,
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
            unsynced: AtomicBool::new(false),
            pending: Mutex::new(None),
            versions: std::sync::atomic::AtomicU64::new(0),
            written: Mutex::new(0),
            reads_when_down: AtomicBool::new(false),
            pubsubshard_when_down: AtomicBool::new(true),
            path,
            role_changed: tokio::sync::Notify::new(),
            server: std::sync::OnceLock::new(),
        };
        let mut st = c.state.lock();
        st.dirty = true;
        c.commit_with(&mut st, true)
            .map_err(|e| format!("Can't write the cluster config file {}: {e}", c.path.display()))?;
        drop(st);
        Ok(c)
    }

    /// After a change of `st`: republishes the fast-path bitmap and the
    /// state, and rewrites nodes.conf if needed, always atomically
    /// ([`config_file::save`]). The file is written at once, before the
    /// caller goes on, when an epoch changed (the current epoch, this node's
    /// config epoch or its last vote: a node must never vote twice in an
    /// epoch or go back to an older one after a restart); any other change
    /// (slots, nodes, flags) is written by the cron within 100 ms
    /// ([`Cluster::sync_pending`]), outside the state lock. Slot ownership
    /// is settled by config epochs, so a slot change lost in a crash is
    /// learned again from the cluster; writing the file under the lock after
    /// every SETSLOT and every PONG that moved a slot made resharding wait
    /// on the disk (3.6x slower than redis-server).
    pub fn commit(&self, st: &mut State) -> std::io::Result<()> {
        self.commit_with(st, false)
    }

    /// [`Cluster::commit`]; `sync` fsyncs nodes.conf at once whatever
    /// changed (CLUSTER SAVECONFIG).
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
        // This node's slot bitmap (a slot is in it exactly when this node
        // owns it), less the slots migrating or importing.
        let mut words = [0u64; state::SLOTS / 64];
        for (w, bytes) in words.iter_mut().zip(st.me().slots.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            *w = u64::from_le_bytes(b);
        }
        for &s in st.migrating.keys().chain(st.importing.keys()) {
            if s < state::SLOTS {
                words[s / 64] &= !(1 << (s % 64));
            }
        }
        for (word, bits) in self.fast.iter().zip(words) {
            word.store(bits, Relaxed);
        }
        st.dirty = false;
        let epochs = (st.current_epoch, st.me().config_epoch, st.last_vote_epoch);
        let sync = sync || st.synced_epochs != Some(epochs);
        let text = config_file::render(st);
        let version = self.versions.fetch_add(1, Relaxed) + 1;
        if sync {
            self.pending.lock().take();
            self.write_version(version, &text)?;
            st.synced_epochs = Some(epochs);
        } else {
            *self.pending.lock() = Some((version, text));
            self.unsynced.store(true, Relaxed);
        }
        Ok(())
    }

    /// Writes the text of `version` unless a newer one is on disk already.
    fn write_version(&self, version: u64, text: &str) -> std::io::Result<()> {
        let mut last = self.written.lock();
        if version <= *last {
            return Ok(());
        }
        config_file::save(&self.path, text)?;
        *last = version;
        Ok(())
    }

    /// A change of nodes.conf waits for its fsync.
    pub fn has_unsynced(&self) -> bool {
        self.unsynced.load(Relaxed)
    }

    /// Writes the nodes.conf text a change left for the cron (called after
    /// the state lock is let go; it blocks on the disk). Also run at
    /// shutdown.
    pub fn sync_pending(&self) -> std::io::Result<()> {
        if !self.unsynced.swap(false, Relaxed) {
            return Ok(());
        }
        let Some((version, text)) = self.pending.lock().take() else {
            return Ok(());
        };
        self.write_version(version, &text).inspect_err(|_| {
            // Tried again at the next tick, unless a newer text came.
            let mut p = self.pending.lock();
            if p.is_none() {
                *p = Some((version, text.clone()));
            }
            self.unsynced.store(true, Relaxed);
        })
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
        let allow_shard_channels_when_down = self.pubsubshard_when_down.load(Relaxed);
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
            // Shard channels have their own switch (Redis 7.0), on by default.
            if q.shard_channel {
                if !allow_shard_channels_when_down {
                    return Some(Redirect::Down);
                }
            } else if !allow_reads_when_down {
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
            return Some(Redirect::Ask(slot, addr_of(&st, &to, q.plain_client)));
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
            return Some(Redirect::Moved(slot, addr_of(&st, &owner, q.plain_client)));
        }
        None
    }
}

impl Cluster {
    /// Redis's clusterRedirectBlockedClientIfNeeded, for a client blocked
    /// on keys of `slot`: `Down` while the cluster is down, `Unbound` or
    /// `Moved` once the slot is neither served nor imported here (a
    /// read-only client of a replica reads its master's slots).
    pub fn redirect_blocked(&self, slot: usize, read_only_ok: bool, plain_client: bool) -> Option<Redirect> {
        let st = self.state.lock();
        if !st.ok {
            return Some(Redirect::Down);
        }
        let owner = st.owner[slot];
        if owner == Some(st.myself) || st.importing.contains_key(&slot) {
            return None;
        }
        let me = st.me();
        if read_only_ok && owner.is_some() && me.flags & state::flags::SLAVE != 0 && me.master == owner {
            return None;
        }
        match owner {
            None => Some(Redirect::Unbound),
            Some(o) => Some(Redirect::Moved(slot, addr_of(&st, &o, plain_client))),
        }
    }
}

/// `endpoint:port` of a node, as redirections name it.
pub fn addr_of(st: &State, id: &NodeId, plain_client: bool) -> String {
    match st.nodes.get(id) {
        Some(n) => format!("{}:{}", st.endpoint(n), st.client_port(n, plain_client)),
        None => ":0".into(),
    }
}
