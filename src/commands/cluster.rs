//! CLUSTER and its subcommands, ASKING, READONLY, READWRITE. With
//! `cluster-enabled no` they answer as a standalone Redis (KEYSLOT aside:
//! hash slots are how moonshard places keys, with or without cluster mode).
//! The cluster itself lives in `crate::cluster`.

use super::{ConnCtx, Ctx};
use crate::cluster::state::{self, flags, id_str, parse_id, EndpointType, State, SLOTS};
use crate::cluster::{bus, Cluster};
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::server::Server;
use bytes::Bytes;
use std::sync::Arc;

static CLUSTER_SUBS: &[CommandSpec] = &[
    cmd("cluster|keyslot", 3, STALE, NOKEYS, G::Cluster, C(keyslot))
        .syntax("key")
        .doc("3.0.0", "Returns the hash slot of a key."),
    cmd("cluster|info", 2, STALE, NOKEYS, G::Cluster, C(info))
        .doc("3.0.0", "Reports the cluster state.")
        .tips(&["nondeterministic_output"]),
    cmd("cluster|help", 2, LOADING | STALE, NOKEYS, G::Cluster, C(help)).doc("5.0.0", "Lists the CLUSTER subcommands."),
    cmd("cluster|slots", 2, STALE, NOKEYS, G::Cluster, C(slots))
        .doc("3.0.0", "Maps hash slots to nodes.")
        .tips(&["nondeterministic_output"]),
    cmd("cluster|shards", 2, STALE, NOKEYS, G::Cluster, C(shards))
        .doc("7.0.0", "Describes the cluster's shards.")
        .tips(&["nondeterministic_output"]),
    cmd("cluster|nodes", 2, STALE, NOKEYS, G::Cluster, C(nodes))
        .doc("3.0.0", "Describes the cluster's nodes.")
        .tips(&["nondeterministic_output"]),
    cmd("cluster|myid", 2, STALE, NOKEYS, G::Cluster, C(myid)).doc("3.0.0", "Returns this node's id."),
    cmd("cluster|addslots", -3, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(addslots))
        .syntax("slot%i [slot ...]")
        .doc("3.0.0", "Assigns hash slots to this node."),
    cmd("cluster|addslotsrange", -4, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(addslotsrange))
        .syntax("start-slot%i end-slot%i [start-slot end-slot ...]")
        .doc("7.0.0", "Assigns ranges of hash slots to this node."),
    cmd("cluster|bumpepoch", 2, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(bumpepoch))
        .doc("3.0.0", "Advances this node's config epoch.")
        .tips(&["nondeterministic_output"]),
    cmd("cluster|count-failure-reports", 3, ADMIN | STALE, NOKEYS, G::Cluster, C(count_failure_reports))
        .syntax("node-id")
        .doc("3.0.0", "Counts the failure reports about a node.")
        .tips(&["nondeterministic_output"]),
    cmd("cluster|countkeysinslot", 3, STALE, NOKEYS, G::Cluster, Routed(slot_shard, countkeysinslot))
        .syntax("slot%i")
        .doc("3.0.0", "Counts the keys in a hash slot."),
    cmd("cluster|delslots", -3, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(delslots))
        .syntax("slot%i [slot ...]")
        .doc("3.0.0", "Unassigns hash slots from this node."),
    cmd("cluster|delslotsrange", -4, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(delslotsrange))
        .syntax("start-slot%i end-slot%i [start-slot end-slot ...]")
        .doc("7.0.0", "Unassigns ranges of hash slots from this node."),
    cmd("cluster|failover", -2, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(failover))
        .syntax("[FORCE|TAKEOVER]")
        .doc("3.0.0", "Makes this replica take over from its master."),
    cmd("cluster|flushslots", 2, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(flushslots))
        .doc("3.0.0", "Unassigns every hash slot of this node."),
    cmd("cluster|forget", 3, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(forget))
        .syntax("node-id")
        .doc("3.0.0", "Removes a node from this node's view of the cluster."),
    cmd("cluster|getkeysinslot", 4, STALE, NOKEYS, G::Cluster, Routed(slot_shard, getkeysinslot))
        .syntax("slot%i count%i")
        .doc("3.0.0", "Lists keys of a hash slot.")
        .tips(&["nondeterministic_output"]),
    cmd("cluster|links", 2, STALE, NOKEYS, G::Cluster, C(links))
        .doc("7.0.0", "Describes this node's links to its peers.")
        .tips(&["nondeterministic_output"]),
    cmd("cluster|meet", -4, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(meet))
        .syntax("ip port%i [cluster_bus_port%i]")
        .doc("3.0.0", "Connects this node to another node of the cluster."),
    cmd("cluster|replicas", 3, ADMIN | STALE, NOKEYS, G::Cluster, C(replicas))
        .syntax("node-id")
        .doc("5.0.0", "Lists the replicas of a master node.")
        .tips(&["nondeterministic_output"]),
    cmd("cluster|replicate", 3, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(replicate))
        .syntax("node-id")
        .doc("3.0.0", "Makes this node a replica of a master."),
    cmd("cluster|reset", -2, ADMIN | NOSCRIPT | STALE, NOKEYS, G::Cluster, C(reset))
        .syntax("[HARD|SOFT]")
        .doc("3.0.0", "Resets this node's cluster state."),
    cmd("cluster|saveconfig", 2, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(saveconfig))
        .doc("3.0.0", "Writes the cluster configuration to disk."),
    cmd("cluster|set-config-epoch", 3, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(set_config_epoch))
        .syntax("config-epoch%i")
        .doc("3.0.0", "Sets this node's config epoch."),
    cmd("cluster|setslot", -4, ADMIN | STALE | NO_ASYNC_LOADING, NOKEYS, G::Cluster, C(setslot))
        .syntax("slot%i (IMPORTING node-id|MIGRATING node-id|NODE node-id|STABLE)")
        .doc("3.0.0", "Changes the state of a hash slot on this node."),
    cmd("cluster|slaves", 3, ADMIN | STALE, NOKEYS, G::Cluster, C(replicas))
        .syntax("node-id")
        .doc("3.0.0", "Lists the replicas of a master node (old name of REPLICAS).")
        .tips(&["nondeterministic_output"]),
];

pub static COMMANDS: &[CommandSpec] = &[
    container("cluster", -2, 0, G::Cluster, CLUSTER_SUBS).doc("3.0.0", "Container for cluster subcommands."),
    cmd("asking", 1, FAST, NOKEYS, G::Cluster, C(asking))
        .doc("3.0.0", "Lets the next command reach a slot being imported (cluster mode).")
        .acl(&["connection"]),
    cmd("readonly", 1, LOADING | STALE | FAST, NOKEYS, G::Cluster, C(readonly))
        .doc("3.0.0", "Lets a cluster replica serve reads on this connection.")
        .acl(&["connection"]),
    cmd("readwrite", 1, LOADING | STALE | FAST, NOKEYS, G::Cluster, C(readwrite))
        .doc("3.0.0", "Ends READONLY on this connection.")
        .acl(&["connection"]),
];

const DISABLED: &str = "This instance has cluster support disabled";

/// The cluster, or the standalone error.
fn cluster(ctx: &ConnCtx) -> Result<Arc<Cluster>, Reply> {
    ctx.server.cluster.clone().ok_or_else(|| Reply::err(DISABLED))
}

macro_rules! cluster_or_err {
    ($ctx:expr) => {
        match cluster($ctx) {
            Ok(c) => c,
            Err(e) => return e,
        }
    };
}

/// Saves and republishes after a change made by a command.
fn commit(c: &Cluster, st: &mut State) {
    st.update_state(state::now_ms());
    let _ = c.commit(st);
}

pub fn keyslot(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    Reply::Int(crate::shard::slot::key_slot(&args[2]) as i64)
}

pub fn asking(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    if ctx.server.cluster.is_none() {
        return Reply::err(DISABLED);
    }
    ctx.client.cluster_asking = true;
    Reply::ok()
}

pub fn readonly(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    if ctx.server.cluster.is_none() {
        return Reply::err(DISABLED);
    }
    ctx.client.cluster_readonly = true;
    Reply::ok()
}

pub fn readwrite(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    if ctx.server.cluster.is_none() {
        return Reply::err(DISABLED);
    }
    ctx.client.cluster_readonly = false;
    Reply::ok()
}

pub fn help(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let _c = cluster_or_err!(ctx);
    super::help::reply("CLUSTER", super::help::CLUSTER)
}

pub fn myid(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    Reply::bulk_str(id_str(&c.id()))
}

pub fn nodes(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let text = c.state.lock().nodes_text_for(plain_client(ctx));
    Reply::Verbatim("txt", Bytes::from(text))
}

pub fn info(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let st = c.state.lock();
    let (assigned, ok, pfail, fail) = st.slot_counts();
    let mut out = format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\ncluster_slots_pfail:{pfail}\r\n\
         cluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\n\
         cluster_my_epoch:{}\r\n",
        if st.ok { "ok" } else { "fail" },
        st.nodes.len(),
        st.size(),
        st.current_epoch,
        st.me().config_epoch
    );
    for (what, counts) in [("sent", &st.sent), ("received", &st.received)] {
        for (t, n) in counts.iter().enumerate() {
            if *n > 0 {
                out.push_str(&format!("cluster_stats_messages_{}_{what}:{n}\r\n", bus::type_name(t)));
            }
        }
        out.push_str(&format!("cluster_stats_messages_{what}:{}\r\n", counts.iter().sum::<u64>()));
    }
    out.push_str(&format!("total_cluster_links_buffer_limit_exceeded:{}\r\n", st.links_freed));
    Reply::Verbatim("txt", Bytes::from(out))
}

/// The client is not on TLS (see `State::client_port`).
fn plain_client(ctx: &ConnCtx) -> bool {
    !ctx.client.info.tls.load(std::sync::atomic::Ordering::Relaxed)
}

/// A node in CLUSTER SLOTS: its preferred endpoint (nil for
/// `unknown-endpoint`), port (the one a plaintext or TLS client is shown),
/// id, then the endpoints not already given.
fn node_entry(st: &State, n: &state::Node, plain: bool) -> Reply {
    let endpoint = st.settings.endpoint;
    let mut more = Vec::new();
    if endpoint != EndpointType::Ip {
        more.push((Reply::bulk_str("ip"), Reply::bulk_str(&n.ip)));
    }
    if endpoint != EndpointType::Hostname && !n.hostname.is_empty() {
        more.push((Reply::bulk_str("hostname"), Reply::bulk_str(&n.hostname)));
    }
    Reply::Array(vec![
        if endpoint == EndpointType::Unknown { Reply::Nil } else { Reply::bulk_str(st.endpoint(n)) },
        Reply::Int(st.client_port(n, plain) as i64),
        Reply::bulk_str(id_str(&n.id)),
        Reply::Map(more),
    ])
}

pub fn slots(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let plain = plain_client(ctx);
    let st = c.state.lock();
    let mut out = Vec::new();
    let mut ranges: Vec<(usize, usize, &state::Node)> = Vec::new();
    for n in st.nodes.values().filter(|n| n.is_master() && n.numslots > 0) {
        for (a, b) in n.ranges() {
            ranges.push((a, b, n));
        }
    }
    ranges.sort_by_key(|r| r.0);
    for (a, b, n) in ranges {
        let mut entry = vec![Reply::Int(a as i64), Reply::Int(b as i64), node_entry(&st, n, plain)];
        for r in st.nodes.values().filter(|r| r.master == Some(n.id) && st.replica_available(r)) {
            entry.push(node_entry(&st, r, plain));
        }
        out.push(Reply::Array(entry));
    }
    Reply::Array(out)
}

pub fn shards(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let st = c.state.lock();
    let mut masters: Vec<&state::Node> = st.nodes.values().filter(|n| n.is_master()).collect();
    masters.sort_by_key(|n| n.ranges().first().map_or(usize::MAX, |r| r.0));
    let describe = |n: &state::Node| {
        let mut m = vec![(Reply::bulk_str("id"), Reply::bulk_str(id_str(&n.id)))];
        // With tls-cluster the announced port is the TLS one, and the
        // plaintext port (if any) is `port` (as Redis 7.0).
        if st.settings.tls_cluster {
            if n.pport != 0 {
                m.push((Reply::bulk_str("port"), Reply::Int(n.pport as i64)));
            }
            m.push((Reply::bulk_str("tls-port"), Reply::Int(n.port as i64)));
        } else {
            m.push((Reply::bulk_str("port"), Reply::Int(n.port as i64)));
        }
        m.push((Reply::bulk_str("ip"), Reply::bulk_str(&n.ip)));
        m.push((Reply::bulk_str("endpoint"), Reply::bulk_str(st.endpoint(n))));
        if !n.hostname.is_empty() {
            m.push((Reply::bulk_str("hostname"), Reply::bulk_str(&n.hostname)));
        }
        m.push((Reply::bulk_str("role"), Reply::bulk_str(if n.is_master() { "master" } else { "replica" })));
        let offset = st.offset_of(n);
        m.push((Reply::bulk_str("replication-offset"), Reply::Int(offset as i64)));
        let health = if n.flags & flags::FAIL != 0 {
            "fail"
        } else if n.flags & flags::SLAVE != 0 && offset == 0 {
            "loading"
        } else {
            "online"
        };
        m.push((Reply::bulk_str("health"), Reply::bulk_str(health)));
        Reply::Map(m)
    };
    let mut out = Vec::new();
    for m in masters {
        let slots: Vec<Reply> =
            m.ranges().into_iter().flat_map(|(a, b)| [Reply::Int(a as i64), Reply::Int(b as i64)]).collect();
        let mut nodes = vec![describe(m)];
        nodes.extend(st.nodes.values().filter(|r| r.master == Some(m.id)).map(describe));
        out.push(Reply::Map(vec![
            (Reply::bulk_str("slots"), Reply::Array(slots)),
            (Reply::bulk_str("nodes"), Reply::Array(nodes)),
        ]));
    }
    Reply::Array(out)
}

pub fn links(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let st = c.state.lock();
    let mut out = Vec::new();
    // The send buffer is the queue of messages not yet written (on an
    // inbound link: the replies not yet written).
    let link = |dir: &str, id: &state::NodeId, ctime: u64, queued: u64| {
        Reply::Map(vec![
            (Reply::bulk_str("direction"), Reply::bulk_str(dir)),
            (Reply::bulk_str("node"), Reply::bulk_str(id_str(id))),
            (Reply::bulk_str("create-time"), Reply::Int(ctime as i64)),
            (Reply::bulk_str("events"), Reply::bulk_str(if queued > 0 { "rw" } else { "r" })),
            (Reply::bulk_str("send-buffer-allocated"), Reply::Int(queued as i64)),
            (Reply::bulk_str("send-buffer-used"), Reply::Int(queued as i64)),
        ])
    };
    for n in st.nodes.values() {
        if let Some(l) = &n.link {
            out.push(link("to", &n.id, l.ctime, l.io.queued()));
        }
        if let Some(i) = &n.inbound {
            out.push(link("from", &n.id, i.ctime, i.io.queued()));
        }
    }
    Reply::Array(out)
}

/// A slot number as Redis parses it for cluster commands.
fn parse_slot(arg: &[u8]) -> Result<usize, Reply> {
    match std::str::from_utf8(arg).ok().and_then(|s| s.parse::<i64>().ok()) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Ok(s as usize),
        _ => Err(Reply::err("Invalid or out of range slot")),
    }
}

fn change_slots(ctx: &mut ConnCtx, slots: Vec<usize>, add: bool) -> Reply {
    let c = cluster_or_err!(ctx);
    let mut st = c.state.lock();
    if st.me().flags & flags::SLAVE != 0 {
        return Reply::err("Please use SETSLOT only with masters.");
    }
    let mut seen = std::collections::HashSet::new();
    for &s in &slots {
        if add && st.owner[s].is_some() {
            return Reply::err(format!("Slot {s} is already busy"));
        }
        if !add && st.owner[s].is_none() {
            return Reply::err(format!("Slot {s} is already unassigned"));
        }
        if !seen.insert(s) {
            return Reply::err(format!("Slot {s} specified multiple times"));
        }
    }
    let me = st.myself;
    for s in slots {
        if add {
            st.importing.remove(&s);
            st.add_slot(me, s);
        } else {
            st.del_slot(s);
        }
    }
    commit(&c, &mut st);
    Reply::ok()
}

pub fn addslots(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let _c = cluster_or_err!(ctx);
    match args[2..].iter().map(|a| parse_slot(a)).collect::<Result<Vec<_>, _>>() {
        Ok(slots) => change_slots(ctx, slots, true),
        Err(e) => e,
    }
}

pub fn delslots(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let _c = cluster_or_err!(ctx);
    match args[2..].iter().map(|a| parse_slot(a)).collect::<Result<Vec<_>, _>>() {
        Ok(slots) => change_slots(ctx, slots, false),
        Err(e) => e,
    }
}

fn ranges(args: &[Bytes], name: &str) -> Result<Vec<usize>, Reply> {
    if args.len() % 2 == 1 {
        return Err(Reply::wrong_arity(name));
    }
    let mut out = Vec::new();
    for pair in args[2..].chunks(2) {
        let (a, b) = (parse_slot(&pair[0])?, parse_slot(&pair[1])?);
        if a > b {
            return Err(Reply::err(format!("start slot number {a} is greater than end slot number {b}")));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

pub fn addslotsrange(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let _c = cluster_or_err!(ctx);
    match ranges(args, "cluster|addslotsrange") {
        Ok(slots) => change_slots(ctx, slots, true),
        Err(e) => e,
    }
}

pub fn delslotsrange(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let _c = cluster_or_err!(ctx);
    match ranges(args, "cluster|delslotsrange") {
        Ok(slots) => change_slots(ctx, slots, false),
        Err(e) => e,
    }
}

pub fn flushslots(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    if total_keys(ctx.server) > 0 {
        return Reply::err("DB must be empty to perform CLUSTER FLUSHSLOTS.");
    }
    let mut st = c.state.lock();
    let me = st.myself;
    for s in 0..SLOTS {
        if st.owner[s] == Some(me) {
            st.del_slot(s);
        }
    }
    commit(&c, &mut st);
    Reply::ok()
}

fn total_keys(server: &Server) -> usize {
    server.shards.list.iter().map(|s| s.lock_blocking().dbs.first().map_or(0, |d| d.len())).sum()
}

/// Keys of database 0 in `slot` (the cluster has only database 0).
pub fn keys_in_slot(server: &Server, slot: usize) -> usize {
    let shard = crate::shard::slot::slot_shard(slot as u16, server.shards.len());
    let data = server.shards.get(shard).lock_blocking();
    data.dbs.first().map_or(0, |d| d.count_in_slot(slot))
}

fn parse_int(arg: &[u8]) -> Result<i64, Reply> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| Reply::err("value is not an integer or out of range"))
}

/// COUNTKEYSINSLOT / GETKEYSINSLOT run on the shard that holds the slot.
/// A bad argument goes to shard 0, where the handler answers the error.
fn slot_shard(server: &Server, args: &[Bytes]) -> Result<usize, Reply> {
    let n = server.shards.len();
    Ok(match parse_int(&args[2]) {
        Ok(slot) if (0..SLOTS as i64).contains(&slot) => crate::shard::slot::slot_shard(slot as u16, n),
        _ => 0,
    })
}

pub fn countkeysinslot(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if ctx.server.cluster.is_none() {
        return Reply::err(DISABLED);
    }
    let slot = match parse_int(&args[2]) {
        Ok(s) if (0..SLOTS as i64).contains(&s) => s as usize,
        Ok(_) => return Reply::err("Invalid slot"),
        Err(e) => return e,
    };
    let n = ctx.shards()[0].dbs.first().map_or(0, |d| d.count_in_slot(slot));
    Reply::Int(n as i64)
}

pub fn getkeysinslot(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if ctx.server.cluster.is_none() {
        return Reply::err(DISABLED);
    }
    let (slot, count) = match (parse_int(&args[2]), parse_int(&args[3])) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if count < 0 || !(0..SLOTS as i64).contains(&slot) {
        return Reply::err("Invalid slot or number of keys");
    }
    let keys = ctx.shards()[0].dbs.first().map_or(Vec::new(), |d| d.keys_in_slot(slot as usize, count as usize));
    Reply::Array(keys.into_iter().map(Reply::bulk).collect())
}

pub fn meet(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    if args.len() > 5 {
        return Reply::wrong_arity("cluster|meet");
    }
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let port = match parse_int(&args[3]) {
        Ok(p) => p,
        Err(_) => return Reply::err(format!("Invalid TCP base port specified: {}", text(&args[3]))),
    };
    let cport = match args.get(4) {
        Some(a) => match parse_int(a) {
            Ok(p) => p,
            Err(_) => return Reply::err(format!("Invalid TCP bus port specified: {}", text(a))),
        },
        None => port + 10000,
    };
    let ip = text(&args[2]);
    let valid = ip.parse::<std::net::IpAddr>().is_ok() && (1..=65535).contains(&port) && (1..=65535).contains(&cport);
    if !valid {
        return Reply::err(format!("Invalid node address specified: {ip}:{}", text(&args[3])));
    }
    let mut st = c.state.lock();
    // An address already in handshake is not an error (Redis's EAGAIN).
    st.start_handshake(&ip, port as u16, cport as u16, true);
    commit(&c, &mut st);
    Reply::ok()
}

fn node_arg(st: &State, arg: &Bytes) -> Option<state::NodeId> {
    parse_id(arg).filter(|id| st.nodes.contains_key(id))
}

pub fn forget(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let mut st = c.state.lock();
    let Some(id) = node_arg(&st, &args[2]) else {
        return Reply::err(format!("Unknown node {}", String::from_utf8_lossy(&args[2])));
    };
    if id == st.myself {
        return Reply::err("I tried hard but I can't forget myself...");
    }
    if st.me().master == Some(id) {
        return Reply::err("Can't forget my master!");
    }
    st.blacklist.insert(id, state::now_ms() + 60_000);
    st.del_node(&id);
    commit(&c, &mut st);
    Reply::ok()
}

pub fn count_failure_reports(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let st = c.state.lock();
    match node_arg(&st, &args[2]) {
        Some(id) => {
            let timeout = st.settings.node_timeout * 2;
            let now = state::now_ms();
            Reply::Int(st.nodes[&id].fail_reports.iter().filter(|(_, t)| now - t <= timeout).count() as i64)
        }
        None => Reply::err(format!("Unknown node {}", String::from_utf8_lossy(&args[2]))),
    }
}

pub fn set_config_epoch(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let epoch = match parse_int(&args[2]) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let mut st = c.state.lock();
    if epoch < 0 {
        return Reply::err(format!("Invalid config epoch specified: {epoch}"));
    }
    if st.nodes.len() > 1 {
        return Reply::err("The user can assign a config epoch only when the node does not know any other node.");
    }
    if st.me().config_epoch != 0 {
        return Reply::err("Node config epoch is already non-zero");
    }
    st.me_mut().config_epoch = epoch as u64;
    if st.current_epoch < epoch as u64 {
        st.current_epoch = epoch as u64;
    }
    st.dirty = true;
    commit(&c, &mut st);
    Reply::ok()
}

pub fn bumpepoch(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let mut st = c.state.lock();
    let max = st.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0).max(st.current_epoch);
    let mine = st.me().config_epoch;
    let bumped = mine == 0 || mine != max;
    if bumped {
        st.current_epoch += 1;
        let e = st.current_epoch;
        st.me_mut().config_epoch = e;
        st.dirty = true;
    }
    let e = st.me().config_epoch;
    commit(&c, &mut st);
    Reply::status(&format!("{} {e}", if bumped { "BUMPED" } else { "STILL" }))
}

pub fn saveconfig(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let mut st = c.state.lock();
    st.dirty = true;
    match c.commit_with(&mut st, true) {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::err(format!("error saving the cluster node config: {e}")),
    }
}

pub fn reset(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let hard = match args.get(2) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"hard") && args.len() == 3 => true,
        Some(a) if a.eq_ignore_ascii_case(b"soft") && args.len() == 3 => false,
        Some(_) => return Reply::err("syntax error"),
    };
    let replica = c.state.lock().me().flags & flags::SLAVE != 0;
    if !replica && total_keys(ctx.server) > 0 {
        return Reply::err("CLUSTER RESET can't be called with master nodes containing keys");
    }
    if replica {
        // A replica turns into an empty master.
        {
            let mut st = c.state.lock();
            let me = st.me_mut();
            me.flags = (me.flags & !flags::SLAVE) | flags::MASTER;
            me.master = None;
            st.reset_manual_failover();
        }
        if ctx.server.replicas.following.lock().master.is_some() {
            crate::replication::stop_following(ctx.server);
        }
        for shard in &ctx.server.shards.list {
            shard.lock_blocking().dbs.iter_mut().for_each(|db| db.clear());
        }
    }
    let mut st = c.state.lock();
    st.migrating.clear();
    st.importing.clear();
    for s in 0..SLOTS {
        st.del_slot(s);
    }
    let me = st.myself;
    let others: Vec<_> = st.nodes.keys().filter(|id| **id != me).copied().collect();
    for id in others {
        st.del_node(&id);
    }
    if hard {
        st.current_epoch = 0;
        st.last_vote_epoch = 0;
        st.me_mut().config_epoch = 0;
        let new = state::random_id();
        let mut n = st.nodes.remove(&me).expect("myself");
        n.id = new;
        st.nodes.insert(new, n);
        st.myself = new;
    }
    st.dirty = true;
    commit(&c, &mut st);
    Reply::ok()
}

pub fn setslot(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let server = ctx.server.clone();
    let slot = match parse_slot(&args[2]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let action = args[3].to_ascii_lowercase();
    let mut st = c.state.lock();
    if st.me().flags & flags::SLAVE != 0 {
        return Reply::err("Please use SETSLOT only with masters.");
    }
    let me = st.myself;
    let unknown = |a: &Bytes| String::from_utf8_lossy(a).into_owned();
    match (&action[..], args.len()) {
        (b"migrating", 5) => {
            if st.owner[slot] != Some(me) {
                return Reply::err(format!("I'm not the owner of hash slot {slot}"));
            }
            let Some(id) = node_arg(&st, &args[4]) else {
                return Reply::err(format!("I don't know about node {}", unknown(&args[4])));
            };
            if !st.nodes[&id].is_master() {
                return Reply::err("Target node is not a master");
            }
            st.migrating.insert(slot, id);
        }
        (b"importing", 5) => {
            if st.owner[slot] == Some(me) {
                return Reply::err(format!("I'm already the owner of hash slot {slot}"));
            }
            let Some(id) = node_arg(&st, &args[4]) else {
                return Reply::err(format!("I don't know about node {}", unknown(&args[4])));
            };
            if !st.nodes[&id].is_master() {
                return Reply::err("Target node is not a master");
            }
            st.importing.insert(slot, id);
        }
        (b"stable", 4) => {
            st.migrating.remove(&slot);
            st.importing.remove(&slot);
        }
        (b"node", 5) => {
            let Some(id) = node_arg(&st, &args[4]) else {
                return Reply::err(format!("Unknown node {}", unknown(&args[4])));
            };
            if st.nodes[&id].flags & flags::SLAVE != 0 {
                return Reply::err(format!("Can't assign hashslot {slot} to a replica node."));
            }
            if st.owner[slot] == Some(me) && id != me {
                drop(st);
                let keys = keys_in_slot(&server, slot);
                st = c.state.lock();
                if keys > 0 {
                    return Reply::err(format!(
                        "Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                    ));
                }
            }
            if id != me && st.migrating.contains_key(&slot) {
                st.migrating.remove(&slot);
            }
            let mut bump = false;
            if id == me && st.importing.remove(&slot).is_some() {
                // The slot was imported: take a new epoch without waiting
                // for agreement, so the others accept the change.
                let max = st.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0);
                if st.me().config_epoch == 0 || st.me().config_epoch != max {
                    st.current_epoch += 1;
                    let e = st.current_epoch;
                    st.me_mut().config_epoch = e;
                }
                bump = true;
            }
            st.del_slot(slot);
            st.add_slot(id, slot);
            if bump {
                st.broadcast_pong();
            }
        }
        _ => return Reply::err("Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP"),
    }
    st.dirty = true;
    // nodes.conf is fsynced at once only when an epoch changed (a slot
    // move costs several SETSLOTs; an fsync each made it 40x slower).
    commit(&c, &mut st);
    Reply::ok()
}

pub fn replicate(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let keys = total_keys(ctx.server);
    let mut st = c.state.lock();
    let Some(id) = node_arg(&st, &args[2]) else {
        return Reply::err(format!("Unknown node {}", String::from_utf8_lossy(&args[2])));
    };
    if id == st.myself {
        return Reply::err("Can't replicate myself");
    }
    if st.nodes[&id].flags & flags::SLAVE != 0 {
        return Reply::err("I can only replicate a master, not a replica.");
    }
    if st.me().is_master() && (st.me().numslots != 0 || keys != 0) {
        return Reply::err("To set a master the node must be empty and without assigned slots.");
    }
    st.set_my_master(id);
    commit(&c, &mut st);
    Reply::ok()
}

pub fn replicas(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let st = c.state.lock();
    let Some(id) = node_arg(&st, &args[2]) else {
        return Reply::err(format!("Unknown node {}", String::from_utf8_lossy(&args[2])));
    };
    if !st.nodes[&id].is_master() {
        return Reply::err("The specified node is not a master");
    }
    let plain = plain_client(ctx);
    let lines: Vec<Reply> = st
        .nodes
        .values()
        .filter(|n| n.master == Some(id))
        .map(|n| Reply::bulk(Bytes::from(st.node_line_for(n, plain))))
        .collect();
    Reply::Array(lines)
}

pub fn failover(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let c = cluster_or_err!(ctx);
    let (force, takeover) = match args.get(2) {
        None => (false, false),
        Some(a) if args.len() == 3 && a.eq_ignore_ascii_case(b"force") => (true, false),
        Some(a) if args.len() == 3 && a.eq_ignore_ascii_case(b"takeover") => (true, true),
        Some(_) => return Reply::err("syntax error"),
    };
    let mut st = c.state.lock();
    if st.me().is_master() {
        return Reply::err("You should send CLUSTER FAILOVER to a replica");
    }
    let Some(master) = st.me().master.and_then(|m| st.nodes.get(&m)) else {
        return Reply::err("I'm a replica but my master is unknown to me");
    };
    if !force && (master.flags & flags::FAIL != 0 || master.link.is_none()) {
        return Reply::err("Master is down or failed, please use CLUSTER FAILOVER FORCE");
    }
    if takeover {
        st.reset_manual_failover();
        st.fo.log.push("Taking over the master (user request).".into());
        st.bump_epoch_without_consensus();
        st.replace_my_master();
    } else {
        st.start_manual_failover(force);
    }
    commit(&c, &mut st);
    Reply::ok()
}
