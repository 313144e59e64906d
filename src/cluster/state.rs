//! What this node knows of the cluster: the nodes, who serves each slot,
//! the epochs, and how a bus message changes that (Redis 7.0's rules:
//! handshakes, gossip, failure reports, slot ownership by config epoch,
//! UPDATE, config epoch collisions). Pure state: the network lives in
//! `link`, the file in `config_file`.

use super::bus::{self, Body, Gossip, Header, Message};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

pub const SLOTS: usize = 16384;
pub const SLOT_BYTES: usize = SLOTS / 8;

/// A node's 40-character id.
pub type NodeId = [u8; 40];
pub const NULL_ID: NodeId = [0; 40];

pub mod flags {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;
}
use flags::*;

pub fn random_id() -> NodeId {
    let mut id = [0u8; 40];
    for c in id.iter_mut() {
        *c = b"0123456789abcdef"[(rand::random::<u8>() & 15) as usize];
    }
    id
}

pub fn id_str(id: &NodeId) -> &str {
    std::str::from_utf8(id).unwrap_or("")
}

/// A node id as a client wrote it (must be 40 bytes).
pub fn parse_id(b: &[u8]) -> Option<NodeId> {
    b.try_into().ok()
}

pub fn bit(bits: &[u8; SLOT_BYTES], slot: usize) -> bool {
    bits[slot >> 3] & (1 << (slot & 7)) != 0
}
/// The slots set in `claimed` and not in `held`, in ascending order.
fn claimed_beyond(claimed: &[u8; SLOT_BYTES], held: Option<&[u8; SLOT_BYTES]>) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, &c) in claimed.iter().enumerate() {
        let mut b = c & !held.map_or(0, |h| h[i]);
        while b != 0 {
            out.push(i * 8 + b.trailing_zeros() as usize);
            b &= b - 1;
        }
    }
    out
}

fn set_bit(bits: &mut [u8; SLOT_BYTES], slot: usize, on: bool) {
    if on {
        bits[slot >> 3] |= 1 << (slot & 7);
    } else {
        bits[slot >> 3] &= !(1 << (slot & 7));
    }
}

/// What a bus connection's task shares with the state: its send buffer,
/// its receive buffer, and the signal that frees the connection.
#[derive(Default)]
pub struct LinkIo {
    /// Bytes queued and not yet written (CLUSTER LINKS' send buffer).
    pub queued: AtomicU64,
    /// Bytes the task holds for reading (INFO's `mem_cluster_links`).
    pub read_buf: AtomicU64,
    /// The link is freed: the task drops the connection and its queue.
    pub close: tokio::sync::Notify,
}

impl LinkIo {
    pub fn queued(&self) -> u64 {
        self.queued.load(Relaxed)
    }
    /// Memory the link holds: its buffers and a fixed part for the
    /// connection's state.
    pub fn memory(&self) -> u64 {
        256 + self.queued() + self.read_buf.load(Relaxed)
    }
}

/// The outbound connection to a node (this node pings through it). Dropped,
/// it frees the connection.
pub struct LinkHandle {
    pub id: u64,
    pub tx: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    pub ctime: u64,
    /// The connection is established (messages queued before are sent then).
    pub connected: bool,
    pub io: Arc<LinkIo>,
}

impl LinkHandle {
    /// Queues `msg` for the peer.
    pub fn send(&self, msg: Vec<u8>) {
        // Counted before it can be written (and uncounted), never after.
        let len = msg.len() as u64;
        self.io.queued.fetch_add(len, Relaxed);
        if self.tx.send(msg).is_err() {
            self.io.queued.fetch_sub(len, Relaxed);
        }
    }
}

impl Drop for LinkHandle {
    fn drop(&mut self) {
        self.io.close.notify_one();
    }
}

/// A connection a peer opened (it pings us there; we answer on it).
pub struct Inbound {
    pub id: u64,
    pub ctime: u64,
    pub io: Arc<LinkIo>,
}

pub struct Node {
    pub id: NodeId,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub pport: u16,
    pub hostname: String,
    pub flags: u16,
    pub master: Option<NodeId>,
    pub config_epoch: u64,
    /// ms: when the pending ping was sent (0: none pending).
    pub ping_sent: u64,
    pub pong_received: u64,
    pub data_received: u64,
    pub fail_time: u64,
    pub ctime: u64,
    pub slots: Box<[u8; SLOT_BYTES]>,
    pub numslots: usize,
    pub link: Option<LinkHandle>,
    /// The connection this node pings us on (CLUSTER LINKS).
    pub inbound: Option<Inbound>,
    /// Masters that reported this node failing, and when.
    pub fail_reports: Vec<(NodeId, u64)>,
    pub repl_offset: u64,
}

impl Node {
    pub fn new(id: NodeId, node_flags: u16, now: u64) -> Node {
        Node {
            id,
            ip: String::new(),
            port: 0,
            cport: 0,
            pport: 0,
            hostname: String::new(),
            flags: node_flags,
            master: None,
            config_epoch: 0,
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            ctime: now,
            slots: Box::new([0; SLOT_BYTES]),
            numslots: 0,
            link: None,
            inbound: None,
            fail_reports: Vec::new(),
            repl_offset: 0,
        }
    }
    pub fn is_master(&self) -> bool {
        self.flags & MASTER != 0
    }
    pub fn failing(&self) -> bool {
        self.flags & (PFAIL | FAIL) != 0
    }
    pub fn in_handshake(&self) -> bool {
        self.flags & HANDSHAKE != 0
    }

    /// Redis's flag words for CLUSTER NODES.
    pub fn flag_words(&self) -> String {
        let names = [
            (MYSELF, "myself"),
            (MASTER, "master"),
            (SLAVE, "slave"),
            (PFAIL, "fail?"),
            (FAIL, "fail"),
            (HANDSHAKE, "handshake"),
            (NOADDR, "noaddr"),
            (NOFAILOVER, "nofailover"),
        ];
        let words: Vec<&str> = names.iter().filter(|(f, _)| self.flags & f != 0).map(|(_, n)| *n).collect();
        if words.is_empty() {
            "noflags".into()
        } else {
            words.join(",")
        }
    }

    /// The slots as ranges (start, end), ascending.
    pub fn ranges(&self) -> Vec<(usize, usize)> {
        ranges_of(&self.slots)
    }
}

pub fn ranges_of(bits: &[u8; SLOT_BYTES]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut s = 0;
    while s <= SLOTS {
        // Whole bytes that do not end or start a range are skipped.
        if s % 8 == 0 && s < SLOTS {
            let byte = bits[s / 8];
            if (byte == 0 && start.is_none()) || (byte == 0xff && start.is_some()) {
                s += 8;
                continue;
            }
        }
        let on = s < SLOTS && bit(bits, s);
        s += 1;
        let s = s - 1;
        match (on, start) {
            (true, None) => start = Some(s),
            (false, Some(b)) => {
                out.push((b, s - 1));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Settings read from the configuration (refreshed by the cron).
#[derive(Clone, Default)]
pub struct Settings {
    pub node_timeout: u64,
    pub require_full_coverage: bool,
    pub announce_ip: String,
    pub hostname: String,
    /// `cluster-replica-validity-factor` (0: any data age may fail over).
    pub validity_factor: u64,
    /// `repl-ping-replica-period`, in ms.
    pub repl_ping_period: u64,
    /// `cluster-allow-replica-migration`.
    pub allow_replica_migration: bool,
    /// `cluster-replica-no-failover`.
    pub no_failover: bool,
    /// `cluster-migration-barrier`.
    pub migration_barrier: u64,
    /// `cluster-link-sendbuf-limit` in bytes (0: none).
    pub sendbuf_limit: u64,
    /// `tls-cluster`: nodes announce their TLS port, and their plaintext
    /// port (`pport`) is what a plaintext client is shown.
    pub tls_cluster: bool,
    /// `cluster-preferred-endpoint-type`.
    pub endpoint: EndpointType,
}

/// `cluster-preferred-endpoint-type`: what clients are told to connect to
/// (redirections, CLUSTER SLOTS, CLUSTER SHARDS).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub enum EndpointType {
    #[default]
    Ip,
    Hostname,
    /// Clients reach the node at the address they already use.
    Unknown,
}

impl EndpointType {
    pub fn from_config(value: &str) -> EndpointType {
        match value {
            "hostname" => EndpointType::Hostname,
            "unknown-endpoint" => EndpointType::Unknown,
            _ => EndpointType::Ip,
        }
    }
}

/// Where a message came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum From {
    /// A connection this node opened (the node whose `link.id` this is).
    Outbound(u64),
    /// A connection a peer opened.
    Inbound(u64),
}

pub struct State {
    pub myself: NodeId,
    pub nodes: HashMap<NodeId, Node>,
    pub owner: Vec<Option<NodeId>>,
    pub migrating: HashMap<usize, NodeId>,
    pub importing: HashMap<usize, NodeId>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    pub ok: bool,
    pub sent: [u64; bus::TYPES],
    pub received: [u64; bus::TYPES],
    /// nodes.conf must be rewritten.
    pub dirty: bool,
    /// (current epoch, this node's config epoch, last vote epoch) as last
    /// fsynced to nodes.conf: a change of one is fsynced at once.
    pub synced_epochs: Option<(u64, u64, u64)>,
    /// Forgotten nodes gossip must not re-add, until the time (ms).
    pub blacklist: HashMap<NodeId, u64>,
    pub settings: Settings,
    pub next_link_id: u64,
    /// PUBLISH / PUBLISHSHARD messages received and not yet delivered to
    /// this node's subscribers: (shard, channel, message).
    pub inbox: Vec<(bool, Vec<u8>, Vec<u8>)>,
    /// Slots this node served and lost to a master with a newer config
    /// epoch: their keys are to be deleted (Redis's dirty slots).
    pub lost_slots: Vec<usize>,
    /// Slots this node or its master stopped serving: the shard channels
    /// subscribed here in them are unsubscribed (Redis's
    /// removeChannelsInSlot, called by clusterDelSlot).
    pub unsubscribe_slots: Vec<usize>,
    /// The connections peers opened, by link id (their task removes them).
    pub inbound_io: HashMap<u64, Arc<LinkIo>>,
    /// Links freed for exceeding `cluster-link-sendbuf-limit`.
    pub links_freed: u64,
    first_update: u64,
    among_minority_time: u64,
    /// Warning-level log lines for the cron to write ("Cluster state
    /// changed: ok", which tools and client test suites wait for).
    pub warnings: Vec<String>,
    /// Replica election and votes (`failover.rs`).
    pub fo: super::failover::Failover,
}

pub fn now_ms() -> u64 {
    crate::storage::now_ms()
}

impl State {
    /// The endpoint clients are given for `n`, as Redis 7.0 names it: its
    /// IP; its hostname, or `?` when it announces none; or the empty
    /// string for `unknown-endpoint`.
    pub fn endpoint<'a>(&self, n: &'a Node) -> &'a str {
        match self.settings.endpoint {
            EndpointType::Ip => &n.ip,
            EndpointType::Hostname if n.hostname.is_empty() => "?",
            EndpointType::Hostname => &n.hostname,
            EndpointType::Unknown => "",
        }
    }

    pub fn new(myself: NodeId, port: u16, cport: u16) -> State {
        let mut me = Node::new(myself, MYSELF | MASTER, now_ms());
        me.port = port;
        me.cport = cport;
        let mut nodes = HashMap::new();
        nodes.insert(myself, me);
        State {
            myself,
            nodes,
            owner: vec![None; SLOTS],
            migrating: HashMap::new(),
            importing: HashMap::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            ok: false,
            sent: [0; bus::TYPES],
            received: [0; bus::TYPES],
            dirty: true,
            synced_epochs: None,
            blacklist: HashMap::new(),
            settings: Settings { node_timeout: 15000, require_full_coverage: true, ..Default::default() },
            next_link_id: 1,
            inbox: Vec::new(),
            lost_slots: Vec::new(),
            unsubscribe_slots: Vec::new(),
            inbound_io: HashMap::new(),
            links_freed: 0,
            first_update: 0,
            among_minority_time: 0,
            warnings: Vec::new(),
            fo: Default::default(),
        }
    }

    pub fn me(&self) -> &Node {
        &self.nodes[&self.myself]
    }
    pub fn me_mut(&mut self) -> &mut Node {
        self.nodes.get_mut(&self.myself).expect("myself is always known")
    }

    // ------------------------------------------------------------ slots

    pub fn add_slot(&mut self, id: NodeId, slot: usize) -> bool {
        if self.owner[slot].is_some() {
            return false;
        }
        let Some(n) = self.nodes.get_mut(&id) else { return false };
        set_bit(&mut n.slots, slot, true);
        n.numslots += 1;
        self.owner[slot] = Some(id);
        self.dirty = true;
        true
    }

    pub fn del_slot(&mut self, slot: usize) -> bool {
        let Some(id) = self.owner[slot].take() else { return false };
        // As Redis: the nodes serving the slot were its owner and the
        // owner's replicas; if this node was one, its shard channels go.
        let me = self.me();
        if id == self.myself || (me.flags & SLAVE != 0 && me.master == Some(id)) {
            self.unsubscribe_slots.push(slot);
        }
        if let Some(n) = self.nodes.get_mut(&id) {
            if bit(&n.slots, slot) {
                set_bit(&mut n.slots, slot, false);
                n.numslots -= 1;
            }
        }
        self.dirty = true;
        true
    }

    /// Masters serving at least one slot.
    pub fn size(&self) -> usize {
        self.nodes.values().filter(|n| n.is_master() && n.numslots > 0).count()
    }

    // ------------------------------------------------------------ nodes

    pub fn del_node(&mut self, id: &NodeId) {
        for s in 0..SLOTS {
            if self.owner[s].as_ref() == Some(id) {
                self.owner[s] = None;
            }
        }
        self.migrating.retain(|_, n| n != id);
        self.importing.retain(|_, n| n != id);
        for n in self.nodes.values_mut() {
            n.fail_reports.retain(|(r, _)| r != id);
        }
        self.nodes.remove(id);
        self.dirty = true;
    }

    fn rename(&mut self, old: &NodeId, new: NodeId) {
        if let Some(mut n) = self.nodes.remove(old) {
            n.id = new;
            self.nodes.insert(new, n);
            self.dirty = true;
        }
    }

    /// Starts a handshake with ip:port (CLUSTER MEET with `meet`, or a node
    /// learned by gossip). False when the address is invalid or one is
    /// already in progress.
    pub fn start_handshake(&mut self, ip: &str, port: u16, cport: u16, meet: bool) -> bool {
        let Ok(addr) = ip.parse::<std::net::IpAddr>() else { return false };
        if port == 0 || cport == 0 {
            return false;
        }
        let ip = addr.to_string();
        if self.nodes.values().any(|n| n.in_handshake() && n.ip == ip && n.port == port && n.cport == cport) {
            return false;
        }
        let mut n = Node::new(random_id(), HANDSHAKE | if meet { MEET } else { 0 }, now_ms());
        n.ip = ip;
        n.port = port;
        n.cport = cport;
        self.nodes.insert(n.id, n);
        true
    }

    pub fn node_by_link(&self, link: u64) -> Option<NodeId> {
        self.nodes.values().find(|n| n.link.as_ref().is_some_and(|l| l.id == link)).map(|n| n.id)
    }

    // ------------------------------------------------------------ output

    /// The port a client is shown for `n` (CLUSTER NODES/SLOTS/REPLICAS,
    /// MOVED, ASK): its announced port, which is its TLS port with
    /// `tls-cluster yes`, except for a plaintext client, shown the node's
    /// plaintext port when it has one (Redis 7.0's `use_pport`).
    pub fn client_port(&self, n: &Node, plain_client: bool) -> u16 {
        if self.settings.tls_cluster && plain_client && n.pport != 0 {
            n.pport
        } else {
            n.port
        }
    }

    /// One line of CLUSTER NODES / nodes.conf (without the newline).
    pub fn node_line(&self, n: &Node) -> String {
        self.node_line_for(n, false)
    }

    /// `node_line` as a plaintext client (`plain_client`) or a TLS one sees it.
    pub fn node_line_for(&self, n: &Node, plain_client: bool) -> String {
        use std::fmt::Write;
        let mut s = format!("{} {}:{}@{}", id_str(&n.id), n.ip, self.client_port(n, plain_client), n.cport);
        if !n.hostname.is_empty() {
            let _ = write!(s, ",{}", n.hostname);
        }
        let master = n.master.as_ref().map_or("-", id_str);
        let link = if n.link.as_ref().is_some_and(|l| l.connected) || n.flags & MYSELF != 0 {
            "connected"
        } else {
            "disconnected"
        };
        // A replica is shown with its master's config epoch, as Redis does.
        let epoch = match n.master.and_then(|m| self.nodes.get(&m)) {
            Some(m) if n.flags & SLAVE != 0 => m.config_epoch,
            _ => n.config_epoch,
        };
        let _ = write!(s, " {} {} {} {} {} {}", n.flag_words(), master, n.ping_sent, n.pong_received, epoch, link);
        for (a, b) in n.ranges() {
            if a == b {
                let _ = write!(s, " {a}");
            } else {
                let _ = write!(s, " {a}-{b}");
            }
        }
        if n.flags & MYSELF != 0 {
            let mut open: Vec<(usize, String)> = Vec::new();
            for (slot, to) in &self.migrating {
                open.push((*slot, format!(" [{slot}->-{}]", id_str(to))));
            }
            for (slot, from) in &self.importing {
                if !self.migrating.contains_key(slot) {
                    open.push((*slot, format!(" [{slot}-<-{}]", id_str(from))));
                }
            }
            open.sort();
            open.into_iter().for_each(|(_, t)| s.push_str(&t));
        }
        s
    }

    /// CLUSTER NODES: every node, one line each.
    pub fn nodes_text(&self) -> String {
        self.nodes_text_for(false)
    }

    /// `nodes_text` as a plaintext client or a TLS one sees it.
    pub fn nodes_text_for(&self, plain_client: bool) -> String {
        let mut ids: Vec<&NodeId> = self.nodes.keys().collect();
        ids.sort();
        let mut out = String::new();
        for id in ids {
            out.push_str(&self.node_line_for(&self.nodes[id], plain_client));
            out.push('\n');
        }
        out
    }

    pub(super) fn header(&self, kind: u16) -> Header {
        let me = self.me();
        // A replica advertises its master's slots and config epoch.
        let master = me.master.and_then(|m| self.nodes.get(&m)).filter(|_| me.flags & SLAVE != 0).unwrap_or(me);
        Header {
            kind,
            port: me.port,
            count: 0,
            current_epoch: self.current_epoch,
            config_epoch: master.config_epoch,
            offset: self.fo.my_offset,
            sender: self.myself,
            myslots: master.slots.clone(),
            slaveof: if me.flags & SLAVE != 0 { me.master.unwrap_or(NULL_ID) } else { NULL_ID },
            myip: self.settings.announce_ip.clone(),
            extensions: 0,
            pport: me.pport,
            cport: me.cport,
            flags: me.flags,
            state: if self.ok { 0 } else { 1 },
            mflags: [self.paused_flag(), 0, 0],
        }
    }

    fn gossip_of(n: &Node) -> Gossip {
        Gossip {
            id: n.id,
            ping_sent: (n.ping_sent / 1000) as u32,
            pong_received: (n.pong_received / 1000) as u32,
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
            flags: n.flags,
            pport: n.pport,
        }
    }

    /// A PING, PONG or MEET with gossip about a few random nodes and every
    /// node in PFAIL, as Redis picks them.
    pub fn ping(&mut self, kind: u16, to: Option<&NodeId>) -> Vec<u8> {
        use rand::seq::SliceRandom;
        let fresh = self.nodes.len().saturating_sub(2);
        let wanted = (self.nodes.len() / 10).max(3).min(fresh);
        let mut candidates: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| {
                n.flags & (MYSELF | PFAIL | HANDSHAKE | NOADDR) == 0
                    && Some(&n.id) != to
                    && !(n.link.is_none() && n.numslots == 0)
            })
            .collect();
        candidates.shuffle(&mut rand::thread_rng());
        let mut gossip: Vec<Gossip> = candidates.iter().take(wanted).map(|n| Self::gossip_of(n)).collect();
        gossip.extend(
            self.nodes
                .values()
                .filter(|n| n.flags & PFAIL != 0 && n.flags & (HANDSHAKE | NOADDR) == 0)
                .map(Self::gossip_of),
        );
        let hostname = Some(self.settings.hostname.clone()).filter(|h| !h.is_empty());
        self.sent[kind as usize] += 1;
        bus::encode(&Message { header: self.header(kind), body: Body::Ping { gossip, hostname } })
    }

    fn fail_message(&mut self, id: NodeId) -> Vec<u8> {
        self.sent[bus::FAIL as usize] += 1;
        bus::encode(&Message { header: self.header(bus::FAIL), body: Body::Fail { id } })
    }

    fn update_message(&mut self, about: &NodeId) -> Option<Vec<u8>> {
        let n = self.nodes.get(about)?;
        let body = Body::Update { config_epoch: n.config_epoch, id: n.id, slots: n.slots.clone() };
        self.sent[bus::UPDATE as usize] += 1;
        Some(bus::encode(&Message { header: self.header(bus::UPDATE), body }))
    }

    /// Sends `msg` through the outbound link of `to` (if it has one).
    pub fn send_to(&self, to: &NodeId, msg: Vec<u8>) {
        if let Some(l) = self.nodes.get(to).and_then(|n| n.link.as_ref()) {
            l.send(msg);
        }
    }

    pub(super) fn broadcast(&self, msg: &[u8]) {
        for n in self.nodes.values() {
            if n.flags & (MYSELF | HANDSHAKE) == 0 {
                if let Some(l) = &n.link {
                    l.send(msg.to_vec());
                }
            }
        }
    }

    /// PUBLISH (`shard` false) goes to every node; SPUBLISH's PUBLISHSHARD
    /// to the other nodes of this node's shard (its master and that
    /// master's replicas), as Redis's clusterPropagatePublish(Shard).
    pub fn propagate_publish(&mut self, shard: bool, channel: &[u8], message: &[u8]) {
        let kind = if shard { bus::PUBLISHSHARD } else { bus::PUBLISH };
        let my_master = match self.me().master {
            Some(m) if !self.me().is_master() => m,
            _ => self.myself,
        };
        let mut targets = self.nodes.values().filter(|n| {
            n.flags & (MYSELF | HANDSHAKE) == 0
                && n.link.is_some()
                && (!shard || n.id == my_master || n.master == Some(my_master))
        });
        let Some(first) = targets.next() else { return };
        let body = Body::Publish { channel: channel.to_vec(), message: message.to_vec() };
        let msg = bus::encode(&Message { header: self.header(kind), body });
        let mut sent = 0;
        for n in std::iter::once(first).chain(targets) {
            if let Some(l) = &n.link {
                l.send(msg.clone());
                sent += 1;
            }
        }
        self.sent[kind as usize] += sent;
    }

    /// Pings every connected node now (after a change others must learn soon).
    pub fn broadcast_pong(&mut self) {
        let targets: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.flags & (MYSELF | HANDSHAKE) == 0 && n.link.is_some())
            .map(|n| n.id)
            .collect();
        for id in targets {
            let msg = self.ping(bus::PONG, Some(&id));
            self.send_to(&id, msg);
        }
    }

    // ------------------------------------------------------------ processing

    /// Handles one message. Returns the messages to answer on the same
    /// connection. `peer_ip`/`local_ip`: the connection's addresses.
    pub fn process(&mut self, msg: Message, from: From, peer_ip: &str, local_ip: &str) -> Vec<Vec<u8>> {
        let now = now_ms();
        let h = &msg.header;
        let kind = h.kind;
        if (kind as usize) < bus::TYPES {
            self.received[kind as usize] += 1;
        }
        let mut replies = Vec::new();
        let sender_known = self.nodes.get(&h.sender).is_some_and(|n| !n.in_handshake());
        let mut link_node = match from {
            From::Outbound(l) => self.node_by_link(l),
            From::Inbound(_) => None,
        };
        if sender_known {
            let n = self.nodes.get_mut(&h.sender).expect("known");
            n.data_received = now;
            // Its plaintext port with tls-cluster (not in nodes.conf).
            n.pport = h.pport;
            if let From::Inbound(l) = from {
                if n.inbound.as_ref().map(|i| i.id) != Some(l) {
                    if let Some(io) = self.inbound_io.get(&l) {
                        n.inbound = Some(Inbound { id: l, ctime: now, io: io.clone() });
                    }
                }
            }
            if h.config_epoch > n.config_epoch {
                n.config_epoch = h.config_epoch;
                self.dirty = true;
            }
            n.repl_offset = h.offset;
            if h.current_epoch > self.current_epoch {
                self.current_epoch = h.current_epoch;
                self.dirty = true;
            }
        }
        if sender_known {
            self.note_master_offset(&msg.header);
        }
        if kind == bus::PING || kind == bus::MEET {
            // Learn our own address from the connection a MEET came on.
            if (kind == bus::MEET || self.me().ip.is_empty()) && self.settings.announce_ip.is_empty() {
                let ip = local_ip.to_string();
                if self.me().ip != ip {
                    self.me_mut().ip = ip;
                    self.dirty = true;
                }
            }
            if !sender_known && kind == bus::MEET && !self.nodes.contains_key(&h.sender) {
                let mut n = Node::new(random_id(), HANDSHAKE, now);
                n.ip = if h.myip.is_empty() { peer_ip.to_string() } else { h.myip.clone() };
                n.port = h.port;
                n.cport = h.cport;
                n.pport = h.pport;
                self.nodes.insert(n.id, n);
                self.dirty = true;
                if let Body::Ping { gossip, .. } = &msg.body {
                    self.gossip(None, gossip, now);
                }
            }
            replies.push(self.ping(bus::PONG, Some(&h.sender)));
        }
        match kind {
            bus::PING | bus::PONG | bus::MEET => {
                if let Some(lid) = link_node {
                    let in_handshake = self.nodes[&lid].in_handshake();
                    if in_handshake {
                        if sender_known {
                            // We already know this node by its real id.
                            let (ip, port, cport) = {
                                let n = &self.nodes[&lid];
                                (n.ip.clone(), h.port, h.cport)
                            };
                            if let Some(s) = self.nodes.get_mut(&h.sender) {
                                if s.link.is_none() && (s.ip != ip || s.port != port || s.cport != cport) {
                                    s.ip = ip;
                                    s.port = port;
                                    s.cport = cport;
                                }
                            }
                            self.del_node(&lid);
                            return replies;
                        }
                        self.rename(&lid, h.sender);
                        link_node = Some(h.sender);
                        let n = self.nodes.get_mut(&h.sender).expect("renamed");
                        n.flags &= !HANDSHAKE;
                        n.flags |= if h.slaveof == NULL_ID { MASTER } else { SLAVE };
                        n.config_epoch = h.config_epoch;
                        n.data_received = now;
                        n.pport = h.pport;
                        self.dirty = true;
                    } else if lid != h.sender {
                        // The node at this address has another id now.
                        let n = self.nodes.get_mut(&lid).expect("link node");
                        n.flags |= NOADDR;
                        n.ip.clear();
                        n.port = 0;
                        n.cport = 0;
                        n.link = None;
                        self.dirty = true;
                        return replies;
                    }
                }
                let known = self.nodes.get(&h.sender).is_some_and(|n| !n.in_handshake());
                if !known {
                    return replies;
                }
                if kind == bus::PONG && link_node == Some(h.sender) {
                    let timeout = self.settings.node_timeout;
                    let n = self.nodes.get_mut(&h.sender).expect("known");
                    n.pong_received = now;
                    n.ping_sent = 0;
                    if n.flags & PFAIL != 0 {
                        n.flags &= !PFAIL;
                    } else if n.flags & FAIL != 0 && (n.numslots == 0 || now - n.fail_time > timeout * 2) {
                        n.flags &= !FAIL;
                        self.dirty = true;
                    }
                }
                if kind == bus::PING {
                    // A node that gets its address wrong (restarted elsewhere) is followed.
                    let ip = if h.myip.is_empty() { peer_ip.to_string() } else { h.myip.clone() };
                    let n = self.nodes.get_mut(&h.sender).expect("known");
                    if n.link.is_none() && (n.ip != ip || n.port != h.port || n.cport != h.cport) {
                        n.ip = ip;
                        n.port = h.port;
                        n.cport = h.cport;
                        n.flags &= !NOADDR;
                        self.dirty = true;
                    }
                }
                // Role.
                {
                    let n = self.nodes.get_mut(&h.sender).expect("known");
                    if h.slaveof == NULL_ID {
                        if n.flags & SLAVE != 0 || n.flags & MASTER == 0 {
                            n.flags = (n.flags & !SLAVE) | MASTER;
                            n.master = None;
                            self.dirty = true;
                        }
                    } else if n.master != Some(h.slaveof) {
                        let was_master = n.flags & MASTER != 0;
                        n.flags = (n.flags & !MASTER) | SLAVE;
                        n.master = Some(h.slaveof);
                        self.dirty = true;
                        if was_master {
                            // A master turned into a replica serves no slots any more.
                            for s in 0..SLOTS {
                                if self.owner[s] == Some(h.sender) {
                                    self.del_slot(s);
                                }
                            }
                        }
                    }
                }
                let sender_master = h.slaveof == NULL_ID;
                // A replica advertises its master's slots: compare with those.
                let dirty_slots = match self.nodes.get(&if sender_master { h.sender } else { h.slaveof }) {
                    Some(m) => m.slots != h.myslots,
                    None => false,
                };
                if sender_master && dirty_slots {
                    self.update_slots_with(h.sender, h.config_epoch, &h.myslots);
                }
                // The sender claims slots someone else got with a newer epoch: tell it.
                if dirty_slots {
                    // Slots held by the sender (or the master it follows)
                    // are its bitmap here: only the others are looked at.
                    let holder = if sender_master { h.sender } else { h.slaveof };
                    let held = self.nodes.get(&holder).map(|n| n.slots.clone());
                    for s in claimed_beyond(&h.myslots, held.as_deref()) {
                        let Some(owner) = self.owner[s] else { continue };
                        if owner == h.sender || (!sender_master && owner == h.slaveof) {
                            continue;
                        }
                        if self.nodes.get(&owner).is_some_and(|o| o.config_epoch > h.config_epoch) {
                            if let Some(m) = self.update_message(&owner) {
                                self.send_to(&h.sender, m);
                            }
                            break;
                        }
                    }
                }
                if sender_master && self.me().is_master() && h.config_epoch == self.me().config_epoch {
                    self.config_epoch_collision(&h.sender);
                }
                if let Body::Ping { gossip, hostname } = &msg.body {
                    let sender = h.sender;
                    self.gossip(Some(sender), gossip, now);
                    let name = hostname.clone().unwrap_or_default();
                    let n = self.nodes.get_mut(&sender).expect("known");
                    if n.hostname != name {
                        n.hostname = name;
                        self.dirty = true;
                    }
                }
            }
            bus::FAIL => {
                if let (true, Body::Fail { id }) = (sender_known, &msg.body) {
                    if let Some(n) = self.nodes.get_mut(id) {
                        if n.flags & (FAIL | MYSELF) == 0 {
                            n.flags = (n.flags | FAIL) & !PFAIL;
                            n.fail_time = now;
                            self.dirty = true;
                        }
                    }
                }
            }
            bus::AUTH_REQUEST if sender_known => self.vote_if_needed(&msg.header, now),
            bus::AUTH_ACK if sender_known => self.count_ack(&msg.header),
            bus::MFSTART if sender_known => self.manual_failover_requested(&msg.header, now),
            bus::UPDATE => {
                if let (true, Body::Update { config_epoch, id, slots }) = (sender_known, &msg.body) {
                    let known = self.nodes.get(id).map(|n| n.config_epoch);
                    if known.is_some_and(|e| e < *config_epoch) {
                        let n = self.nodes.get_mut(id).expect("known");
                        n.config_epoch = *config_epoch;
                        if n.flags & SLAVE != 0 {
                            n.flags = (n.flags & !SLAVE) | MASTER;
                            n.master = None;
                        }
                        self.update_slots_with(*id, *config_epoch, slots);
                        self.dirty = true;
                    }
                }
            }
            bus::PUBLISH | bus::PUBLISHSHARD => {
                // Redis drops a publish from a node it does not know.
                if let (true, Body::Publish { channel, message }) = (sender_known, msg.body) {
                    self.inbox.push((kind == bus::PUBLISHSHARD, channel, message));
                }
            }
            _ => {}
        }
        replies
    }

    /// A master claims `slots` with `epoch`: it takes every slot that is
    /// unassigned or held with an older config epoch (slots being imported
    /// here excepted), as Redis's clusterUpdateSlotsConfigWith.
    /// When the master this node is (or follows) loses its last slot to
    /// `sender`, this node follows `sender` (a failed-over master coming
    /// back, or the other replicas of a master that was replaced).
    fn update_slots_with(&mut self, sender: NodeId, epoch: u64, slots: &[u8; SLOT_BYTES]) {
        if sender == self.myself {
            return;
        }
        let cur_master = if self.me().is_master() { Some(self.myself) } else { self.me().master };
        let sender_slots: usize = slots.iter().map(|b| b.count_ones() as usize).sum();
        let mut migrated = 0;
        // Only the slots the sender claims and does not hold here can
        // change (its own slots are its bitmap): a PONG of a master with
        // thousands of slots costs a pass over 2 KB, not 16384 lookups.
        let held = self.nodes.get(&sender).map(|n| n.slots.clone());
        for s in claimed_beyond(slots, held.as_deref()) {
            if self.importing.contains_key(&s) {
                continue;
            }
            let older = match self.owner[s] {
                None => true,
                Some(o) => self.nodes.get(&o).is_none_or(|n| n.config_epoch < epoch),
            };
            if older {
                if self.owner[s] == Some(self.myself) {
                    self.migrating.remove(&s);
                    self.lost_slots.push(s);
                }
                if self.owner[s].is_some() && self.owner[s] == cur_master {
                    migrated += 1;
                }
                self.del_slot(s);
                self.add_slot(sender, s);
            }
        }
        let emptied = cur_master.and_then(|m| self.nodes.get(&m)).is_some_and(|m| m.numslots == 0);
        if migrated > 0 && emptied && (self.settings.allow_replica_migration || sender_slots == migrated) {
            self.set_my_master(sender);
        }
    }

    /// Two masters with the same config epoch: the one with the smaller
    /// id takes a new epoch.
    fn config_epoch_collision(&mut self, sender: &NodeId) {
        if sender[..] <= self.myself[..] {
            return;
        }
        self.current_epoch += 1;
        let e = self.current_epoch;
        self.me_mut().config_epoch = e;
        self.dirty = true;
    }

    fn gossip(&mut self, sender: Option<NodeId>, entries: &[Gossip], now: u64) {
        let sender_master = sender.and_then(|s| self.nodes.get(&s)).is_some_and(|n| n.is_master());
        for g in entries {
            if self.nodes.contains_key(&g.id) {
                if let (true, Some(s)) = (sender_master, sender) {
                    if g.id != self.myself {
                        let n = self.nodes.get_mut(&g.id).expect("known");
                        if g.flags & (FAIL | PFAIL) != 0 {
                            match n.fail_reports.iter_mut().find(|(r, _)| *r == s) {
                                Some(r) => r.1 = now,
                                None => n.fail_reports.push((s, now)),
                            }
                            self.mark_failing_if_needed(&g.id, now);
                        } else {
                            n.fail_reports.retain(|(r, _)| *r != s);
                        }
                    }
                }
                let n = self.nodes.get_mut(&g.id).expect("known");
                if g.flags & (FAIL | PFAIL) == 0 && n.ping_sent == 0 && n.fail_reports.is_empty() {
                    let pong = g.pong_received as u64 * 1000;
                    if pong <= now + 500 && pong > n.pong_received {
                        n.pong_received = pong;
                    }
                }
                if n.flags & (FAIL | PFAIL) != 0
                    && n.link.is_none()
                    && g.flags & (FAIL | PFAIL) == 0
                    && (n.ip != g.ip || n.port != g.port || n.cport != g.cport)
                {
                    n.ip = g.ip.clone();
                    n.port = g.port;
                    n.cport = g.cport;
                    n.pport = g.pport;
                    n.flags &= !NOADDR;
                    self.dirty = true;
                }
            } else if sender.is_some()
                && g.flags & NOADDR == 0
                && self.blacklist.get(&g.id).is_none_or(|&until| until < now)
                && self.start_handshake(&g.ip, g.port, g.cport, false)
            {
                // Its plaintext port, until it tells us itself.
                let pport = g.pport;
                let found = self.nodes.values_mut().find(|n| n.in_handshake() && n.ip == g.ip && n.port == g.port);
                if let Some(n) = found {
                    n.pport = pport;
                }
            }
        }
    }

    fn mark_failing_if_needed(&mut self, id: &NodeId, now: u64) {
        let timeout = self.settings.node_timeout;
        let needed = self.size() / 2 + 1;
        let me_master = self.me().is_master();
        let Some(n) = self.nodes.get_mut(id) else { return };
        if n.flags & PFAIL == 0 || n.flags & FAIL != 0 {
            return;
        }
        n.fail_reports.retain(|(_, t)| now - *t <= timeout * 2);
        let failures = n.fail_reports.len() + me_master as usize;
        if failures < needed {
            return;
        }
        n.flags = (n.flags | FAIL) & !PFAIL;
        n.fail_time = now;
        self.dirty = true;
        let msg = self.fail_message(*id);
        self.broadcast(&msg);
    }

    /// Once per 100 ms: handshake time-outs, pings, PFAIL detection, the
    /// cluster state. Returns the nodes that need an outbound connection.
    pub fn cron(&mut self, tick: u64) -> Vec<(NodeId, String, u16)> {
        let now = now_ms();
        let timeout = self.settings.node_timeout.max(1);
        let handshake_timeout = timeout.max(1000);
        self.blacklist.retain(|_, until| *until > now);
        let expired: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.in_handshake() && now.saturating_sub(n.ctime) > handshake_timeout)
            .map(|n| n.id)
            .collect();
        for id in expired {
            self.del_node(&id);
        }
        let mut connect = Vec::new();
        for n in self.nodes.values() {
            if n.flags & (MYSELF | NOADDR) == 0 && n.link.is_none() && !n.ip.is_empty() && n.cport != 0 {
                connect.push((n.id, n.ip.clone(), n.cport));
            }
        }
        // Every second: ping the node among five random ones whose pong is oldest.
        if tick.is_multiple_of(10) {
            use rand::seq::IteratorRandom;
            let pick = self
                .nodes
                .values()
                .filter(|n| {
                    n.flags & (MYSELF | HANDSHAKE) == 0
                        && n.ping_sent == 0
                        && n.link.as_ref().is_some_and(|l| l.connected)
                })
                .choose_multiple(&mut rand::thread_rng(), 5)
                .into_iter()
                .min_by_key(|n| n.pong_received)
                .map(|n| n.id);
            if let Some(id) = pick {
                self.ping_node(&id, now);
            }
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let mut drop_links = Vec::new();
        for id in ids {
            let n = &self.nodes[&id];
            if n.flags & (MYSELF | NOADDR | HANDSHAKE) != 0 {
                continue;
            }
            if let Some(l) = &n.link {
                if l.connected
                    && now.saturating_sub(l.ctime) > timeout
                    && n.ping_sent != 0
                    && now - n.ping_sent > timeout / 2
                    && now.saturating_sub(n.data_received) > timeout / 2
                {
                    drop_links.push(id);
                }
            }
            let n = &self.nodes[&id];
            if n.link.as_ref().is_some_and(|l| l.connected)
                && n.ping_sent == 0
                && now.saturating_sub(n.pong_received) > timeout / 2
            {
                self.ping_node(&id, now);
            }
            let n = self.nodes.get_mut(&id).expect("listed");
            if n.ping_sent != 0 {
                let delay = (now - n.ping_sent).min(now.saturating_sub(n.data_received));
                if delay > timeout && n.flags & (PFAIL | FAIL) == 0 {
                    n.flags |= PFAIL;
                }
            }
        }
        for id in drop_links {
            if let Some(n) = self.nodes.get_mut(&id) {
                n.link = None;
            }
        }
        let pfail: Vec<NodeId> = self.nodes.values().filter(|n| n.flags & PFAIL != 0).map(|n| n.id).collect();
        for id in pfail {
            self.mark_failing_if_needed(&id, now);
        }
        self.update_state(now);
        self.handle_failover(now);
        connect
    }

    /// Redis's check of `cluster-link-sendbuf-limit` (each cron tick): a
    /// link whose send buffer grew past the limit (its peer does not read)
    /// is freed; an outbound one is connected again by the next tick.
    /// Returns the log lines.
    pub fn free_links_over_limit(&mut self) -> Vec<String> {
        let limit = self.settings.sendbuf_limit;
        let mut logs = Vec::new();
        if limit == 0 {
            return logs;
        }
        for n in self.nodes.values_mut() {
            let id = id_str(&n.id).to_string();
            let to = n.link.as_ref().map(|l| l.io.queued()).filter(|&q| q > limit);
            let from = n.inbound.as_ref().map(|i| i.io.queued()).filter(|&q| q > limit);
            for (dir, used) in [("to", to), ("from", from)] {
                let Some(used) = used else { continue };
                logs.push(format!(
                    "Freeing cluster link({dir} node {id}, used memory: {used}) due to exceeding send buffer memory limit."
                ));
                if dir == "to" {
                    n.link = None;
                } else if let Some(i) = n.inbound.take() {
                    i.io.close.notify_one();
                }
                self.links_freed += 1;
            }
        }
        logs
    }

    /// INFO's `mem_cluster_links`: what every bus connection holds.
    pub fn links_memory(&self) -> u64 {
        let mut total = 0;
        for n in self.nodes.values() {
            total += n.link.as_ref().map_or(0, |l| l.io.memory());
            total += n.inbound.as_ref().map_or(0, |i| i.io.memory());
        }
        total
    }

    fn ping_node(&mut self, id: &NodeId, now: u64) {
        let msg = self.ping(bus::PING, Some(id));
        if let Some(n) = self.nodes.get_mut(id) {
            if let Some(l) = &n.link {
                l.send(msg);
                if n.ping_sent == 0 {
                    n.ping_sent = now;
                }
            }
        }
    }

    /// The first message on a new outbound connection: MEET for a node
    /// CLUSTER MEET named, PING otherwise.
    pub fn link_established(&mut self, link: u64) -> Option<Vec<u8>> {
        let id = self.node_by_link(link)?;
        let now = now_ms();
        let meet = self.nodes[&id].flags & MEET != 0;
        let msg = self.ping(if meet { bus::MEET } else { bus::PING }, Some(&id));
        let n = self.nodes.get_mut(&id).expect("found");
        n.flags &= !MEET;
        if let Some(l) = n.link.as_mut() {
            l.connected = true;
            l.ctime = now;
        }
        if n.ping_sent == 0 {
            n.ping_sent = now;
        }
        Some(msg)
    }

    pub fn link_closed(&mut self, link: u64) {
        if let Some(id) = self.node_by_link(link) {
            if let Some(n) = self.nodes.get_mut(&id) {
                n.link = None;
            }
        }
    }

    /// Redis's clusterUpdateState: ok when every slot is served by a
    /// reachable node (with full coverage required) and a majority of the
    /// masters serving slots is reachable.
    pub fn update_state(&mut self, now: u64) {
        if self.first_update == 0 {
            self.first_update = now;
        }
        // A master just started waits a little before accepting writes.
        if self.me().is_master() && !self.ok && now - self.first_update < 2000 {
            return;
        }
        let mut ok = true;
        if self.settings.require_full_coverage {
            // Usually no node is failing: then coverage is every slot having
            // an owner, and a slot's owner has it in its bitmap (counted by
            // `numslots`), so this costs a look at each node, not at each
            // slot (it runs after every bus message and cluster command).
            let failing: Vec<NodeId> = self.nodes.values().filter(|n| n.flags & FAIL != 0).map(|n| n.id).collect();
            ok = if failing.is_empty() {
                self.nodes.values().map(|n| n.numslots).sum::<usize>() == SLOTS
            } else {
                self.owner.iter().all(|o| o.is_some_and(|id| !failing.contains(&id)))
            };
        }
        let size = self.size();
        let reachable = self.nodes.values().filter(|n| n.is_master() && n.numslots > 0 && !n.failing()).count();
        if reachable < size / 2 + 1 {
            ok = false;
            self.among_minority_time = now;
        }
        if ok != self.ok {
            let rejoin = self.settings.node_timeout.clamp(500, 5000);
            if ok && self.me().is_master() && now - self.among_minority_time < rejoin {
                return;
            }
            self.ok = ok;
            self.warnings.push(format!("Cluster state changed: {}", if ok { "ok" } else { "fail" }));
        }
    }

    /// CLUSTER INFO's slot counts: assigned, ok, pfail, fail.
    pub fn slot_counts(&self) -> (usize, usize, usize, usize) {
        let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
        for id in self.owner.iter().flatten() {
            assigned += 1;
            match self.nodes.get(id).map(|n| n.flags) {
                Some(f) if f & FAIL != 0 => fail += 1,
                Some(f) if f & PFAIL != 0 => pfail += 1,
                _ => ok += 1,
            }
        }
        (assigned, ok, pfail, fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping_from(st: &mut State, kind: u16) -> Message {
        bus::decode(&st.ping(kind, None)).unwrap()
    }

    #[test]
    fn meet_handshake_renames_and_learns_slots() {
        let mut a = State::new(random_id(), 7000, 17000);
        let mut b = State::new(random_id(), 7001, 17001);
        for s in 0..100 {
            b.add_slot(b.myself, s);
        }
        b.me_mut().config_epoch = 2;
        assert!(a.start_handshake("127.0.0.1", 7001, 17001, true));
        // a's link to the handshake node connects and sends MEET.
        let hs = *a.nodes.keys().find(|k| **k != a.myself).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        a.nodes.get_mut(&hs).unwrap().link =
            Some(LinkHandle { id: 7, tx, ctime: 0, connected: false, io: Default::default() });
        let meet = bus::decode(&a.link_established(7).unwrap()).unwrap();
        assert_eq!(meet.header.kind, bus::MEET);
        // b answers with a PONG and learns a as a handshake node.
        let replies = b.process(meet, From::Inbound(1), "127.0.0.1", "127.0.0.1");
        assert_eq!(replies.len(), 1);
        assert_eq!(b.nodes.len(), 2);
        assert_eq!(b.me().ip, "127.0.0.1");
        let pong = bus::decode(&replies[0]).unwrap();
        a.process(pong, From::Outbound(7), "127.0.0.1", "127.0.0.1");
        let bn = &a.nodes[&b.myself];
        assert_eq!(bn.flags, MASTER);
        assert_eq!(bn.numslots, 100);
        assert_eq!(a.owner[5], Some(b.myself));
        assert!(a.node_line(bn).ends_with(" master - 0 0 2 disconnected 0-99") || a.node_line(bn).contains(" 2 "));
    }

    #[test]
    fn higher_epoch_wins_slots_and_collision_bumps_smaller_id() {
        let mut a = State::new([b'1'; 40], 7000, 17000);
        let mut b = State::new([b'2'; 40], 7001, 17001);
        b.nodes.insert(a.myself, Node::new(a.myself, MASTER, 0));
        a.nodes.insert(b.myself, Node::new(b.myself, MASTER, 0));
        a.add_slot(a.myself, 1);
        a.me_mut().config_epoch = 1;
        b.me_mut().config_epoch = 1;
        a.current_epoch = 1;
        b.current_epoch = 1;
        b.add_slot(b.myself, 1);
        // b hears a (same epoch): b has the larger id, a must bump (not b).
        let m = ping_from(&mut a, bus::PING);
        b.process(m, From::Inbound(1), "127.0.0.1", "127.0.0.1");
        assert_eq!(b.me().config_epoch, 1);
        let m = ping_from(&mut b, bus::PING);
        a.process(m, From::Inbound(1), "127.0.0.1", "127.0.0.1");
        assert_eq!(a.me().config_epoch, 2);
        // a's next ping wins slot 1 on b.
        let m = ping_from(&mut a, bus::PING);
        b.process(m, From::Inbound(1), "127.0.0.1", "127.0.0.1");
        assert_eq!(b.owner[1], Some(a.myself));
        assert_eq!(b.me().numslots, 0);
    }

    #[test]
    fn claimed_beyond_lists_the_claimed_slots_not_held() {
        let mut claimed = [0u8; SLOT_BYTES];
        let mut held = [0u8; SLOT_BYTES];
        for s in [0, 7, 8, 63, 64, 5000, 16383] {
            set_bit(&mut claimed, s, true);
        }
        for s in [7, 64, 9999] {
            set_bit(&mut held, s, true);
        }
        assert_eq!(claimed_beyond(&claimed, Some(&held)), vec![0, 8, 63, 5000, 16383]);
        assert_eq!(claimed_beyond(&claimed, None), vec![0, 7, 8, 63, 64, 5000, 16383]);
        // The state check counts slots by node: a slot unassigned is seen.
        let mut st = State::new([b'a'; 40], 7000, 17000);
        st.update_state(1);
        st.update_state(5000);
        for s in 0..SLOTS {
            st.add_slot([b'a'; 40], s);
        }
        st.update_state(10_000);
        assert!(st.ok);
        st.del_slot(42);
        st.update_state(20_000);
        assert!(!st.ok);
    }

    #[test]
    fn node_lines_use_redis_format() {
        let mut a = State::new([b'a'; 40], 7000, 17000);
        a.me_mut().ip = "127.0.0.1".into();
        for s in [0, 1, 2, 5, 16383] {
            a.add_slot(a.myself, s);
        }
        a.migrating.insert(5, [b'b'; 40]);
        a.importing.insert(7, [b'c'; 40]);
        let line = a.node_line(a.me());
        assert_eq!(
            line,
            format!(
                "{} 127.0.0.1:7000@17000 myself,master - 0 0 0 connected 0-2 5 16383 [5->-{}] [7-<-{}]",
                "a".repeat(40),
                "b".repeat(40),
                "c".repeat(40)
            )
        );
    }

    #[test]
    fn slots_lost_by_this_node_or_its_master_drop_shard_channels() {
        let mut st = State::new(random_id(), 7000, 17000);
        let other = random_id();
        st.nodes.insert(other, Node::new(other, MASTER, 0));
        let me = st.myself;
        st.add_slot(me, 1);
        st.add_slot(other, 2);
        st.del_slot(1);
        st.del_slot(2);
        assert_eq!(st.unsubscribe_slots, [1]);
        // A replica serves its master's shard channels.
        st.unsubscribe_slots.clear();
        st.add_slot(other, 3);
        let n = st.me_mut();
        n.flags = (n.flags & !MASTER) | SLAVE;
        n.master = Some(other);
        st.del_slot(3);
        assert_eq!(st.unsubscribe_slots, [3]);
    }

    #[test]
    fn links_over_the_send_buffer_limit_are_freed_and_counted() {
        let mut st = State::new(random_id(), 7000, 17000);
        let other = random_id();
        st.nodes.insert(other, Node::new(other, MASTER, 0));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let io: Arc<LinkIo> = Default::default();
        st.nodes.get_mut(&other).unwrap().link =
            Some(LinkHandle { id: 9, tx, ctime: 0, connected: true, io: io.clone() });
        st.nodes[&other].link.as_ref().unwrap().send(vec![0; 5000]);
        assert_eq!(io.queued(), 5000);
        // No limit: nothing happens.
        assert!(st.free_links_over_limit().is_empty());
        st.settings.sendbuf_limit = 5000;
        assert!(st.free_links_over_limit().is_empty());
        st.settings.sendbuf_limit = 4999;
        let logs = st.free_links_over_limit();
        assert_eq!(
            logs,
            [format!(
                "Freeing cluster link(to node {}, used memory: 5000) due to exceeding send buffer memory limit.",
                id_str(&other)
            )]
        );
        assert!(st.nodes[&other].link.is_none());
        assert_eq!(st.links_freed, 1);
    }
}
