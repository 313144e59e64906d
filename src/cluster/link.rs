//! The cluster bus on the network: the listener on the bus port (peers
//! ping us there and get their PONGs back on the same connection), one
//! outbound connection per known node (we ping through it), and the cron
//! that runs ten times a second (handshakes, pings, failure detection,
//! the cluster state, nodes.conf).

use super::bus;
use super::state::{From, LinkHandle, LinkIo, Settings};
use super::Cluster;
use crate::server::Server;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest message accepted (publish messages can be large).
const MAX_MESSAGE: usize = 64 << 20;

/// `tls-cluster yes`: the bus speaks TLS, and the node's client port is
/// its TLS port.
fn tls_cluster(server: &Server) -> bool {
    server.config.get("tls-cluster").as_deref() == Some("yes")
}

/// The node's main client port: its TLS port with `tls-cluster yes` (when
/// it has one), else `port`, its plaintext port.
fn main_port(server: &Server, port: u16) -> u16 {
    let tls_port = server.config.get_i64("tls-port").clamp(0, 65535) as u16;
    if tls_cluster(server) && tls_port != 0 {
        tls_port
    } else {
        port
    }
}

/// The bus port: `cluster-port`, or the main client port + 10000 (the
/// TLS port's with `tls-cluster yes`, as Redis).
pub fn bus_port(server: &Server, port: u16) -> u16 {
    match server.config.get_i64("cluster-port") {
        p if p > 0 && p <= 65535 => p as u16,
        _ => main_port(server, port).wrapping_add(10000),
    }
}

/// Binds the bus port on the `bind` addresses and starts the accept loop
/// and the cron. Called once the client port is bound.
pub fn start(server: &Arc<Server>, cluster: &Arc<Cluster>, port: u16, binds: &[&str]) -> Result<(), String> {
    let cport = bus_port(server, port);
    let _ = cluster.server.set(Arc::downgrade(server));
    let binds: Vec<&str> = if binds.is_empty() { vec!["0.0.0.0"] } else { binds.to_vec() };
    for addr in binds {
        let addr = addr.trim_start_matches('-');
        let sock = std::net::TcpListener::bind((addr, cport))
            .map_err(|e| format!("Could not bind the cluster bus port {addr}:{cport}: {e}"))?;
        sock.set_nonblocking(true).map_err(|e| e.to_string())?;
        let listener = TcpListener::from_std(sock).map_err(|e| e.to_string())?;
        tokio::spawn(accept_loop(cluster.clone(), listener));
    }
    {
        let mut st = cluster.state.lock();
        refresh_settings(server, &mut st, port, cport);
        let _ = cluster.commit(&mut st);
    }
    tokio::spawn(cron_loop(server.clone(), cluster.clone(), port, cport));
    // Replication follows a role change at once (the cron also checks).
    let (srv, c) = (server.clone(), cluster.clone());
    tokio::spawn(async move {
        loop {
            c.role_changed.notified().await;
            if srv.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let target = c.state.lock().replication_target();
            follow(&srv, target);
        }
    });
    Ok(())
}

fn refresh_settings(server: &Server, st: &mut super::state::State, port: u16, cport: u16) {
    let c = &server.config;
    st.settings = Settings {
        node_timeout: c.get_i64("cluster-node-timeout").max(1) as u64,
        require_full_coverage: c.get("cluster-require-full-coverage").as_deref() != Some("no"),
        announce_ip: c.get("cluster-announce-ip").unwrap_or_default(),
        hostname: c.get("cluster-announce-hostname").unwrap_or_default(),
        validity_factor: c.get_i64("cluster-replica-validity-factor").max(0) as u64,
        repl_ping_period: c.get_i64("repl-ping-replica-period").max(1) as u64 * 1000,
        allow_replica_migration: c.get("cluster-allow-replica-migration").as_deref() != Some("no"),
        no_failover: c.get("cluster-replica-no-failover").as_deref() == Some("yes"),
        migration_barrier: c.get_i64("cluster-migration-barrier").max(0) as u64,
        sendbuf_limit: c.get_i64("cluster-link-sendbuf-limit").max(0) as u64,
        tls_cluster: tls_cluster(server),
        endpoint: super::state::EndpointType::from_config(
            &c.get("cluster-preferred-endpoint-type").unwrap_or_default(),
        ),
    };
    // Redis 7.0's announced ports: the main port (TLS with tls-cluster) and,
    // with tls-cluster, the plaintext one as `pport` (0: none).
    let tls = st.settings.tls_cluster;
    let plain = server.config.get_i64("port").clamp(0, 65535) as u16;
    let (mut announced_port, mut announced_pport) = (main_port(server, port), if tls { plain } else { 0 });
    let (announce_port, announce_tls_port) =
        (c.get_i64("cluster-announce-port").max(0) as u16, c.get_i64("cluster-announce-tls-port").max(0) as u16);
    if tls && announce_tls_port != 0 {
        announced_port = announce_tls_port;
        announced_pport = announce_port;
    } else if announce_port != 0 {
        announced_port = announce_port;
    }
    let announced_cport = match c.get_i64("cluster-announce-bus-port") {
        p if p > 0 => p as u16,
        _ => cport,
    };
    let announce_ip = st.settings.announce_ip.clone();
    let hostname = st.settings.hostname.clone();
    let st_no_failover = st.settings.no_failover;
    let me = st.me_mut();
    let mut changed = false;
    if me.port != announced_port || me.cport != announced_cport || me.pport != announced_pport {
        me.port = announced_port;
        me.cport = announced_cport;
        me.pport = announced_pport;
        changed = true;
    }
    if !announce_ip.is_empty() && me.ip != announce_ip {
        me.ip = announce_ip;
        changed = true;
    }
    // cluster-replica-no-failover shows as this node's nofailover flag.
    let nofailover = if st_no_failover { super::state::flags::NOFAILOVER } else { 0 };
    if me.flags & super::state::flags::NOFAILOVER != nofailover {
        me.flags ^= super::state::flags::NOFAILOVER;
        changed = true;
    }
    if me.hostname != hostname {
        me.hostname = hostname;
        changed = true;
    }
    if changed {
        st.dirty = true;
    }
}

async fn cron_loop(server: Arc<Server>, cluster: Arc<Cluster>, port: u16, cport: u16) {
    let mut tick: u64 = 0;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        if server.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if server.cron_is_paused() {
            continue;
        }
        let reads = server.config.get("cluster-allow-reads-when-down").as_deref() == Some("yes");
        cluster.reads_when_down.store(reads, std::sync::atomic::Ordering::Relaxed);
        let shard_channels = server.config.get("cluster-allow-pubsubshard-when-down").as_deref() != Some("no");
        cluster.pubsubshard_when_down.store(shard_channels, std::sync::atomic::Ordering::Relaxed);
        let offset = server.replicas.offset();
        let link_down_since = {
            let f = server.replicas.following.lock();
            if f.master.is_some() && !f.link_up {
                // Never synced with this master: its data is of any age
                // (such a replica does not fail over, as in Redis).
                Some(if f.last_io == 0 { 1 } else { f.down_since * 1000 })
            } else {
                None
            }
        };
        let mut st = cluster.state.lock();
        refresh_settings(&server, &mut st, port, cport);
        st.fo.my_offset = offset;
        // The offset was read a tick after the manual failover's pause began: final.
        st.fo.paused = st.fo.pause_engaged;
        st.fo.link_down_since = link_down_since.map_or(0, |t| t.max(1));
        apply_pause(&server, &mut st);
        let freed = st.free_links_over_limit();
        let connect = st.cron(tick);
        for (id, ip, bus) in connect {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let io: Arc<LinkIo> = Default::default();
            let link = st.next_link_id;
            st.next_link_id += 1;
            let now = super::state::now_ms();
            if let Some(n) = st.nodes.get_mut(&id) {
                n.link = Some(LinkHandle { id: link, tx, ctime: now, connected: false, io: io.clone() });
                // The first PING counts from the connection attempt: a node
                // that cannot be reached at all still times out (PFAIL).
                if n.ping_sent == 0 {
                    n.ping_sent = now;
                }
            }
            let timeout = st.settings.node_timeout;
            tokio::spawn(outbound(cluster.clone(), link, ip, bus, (rx, io), timeout));
        }
        apply_pause(&server, &mut st);
        let target = st.replication_target();
        let logs = std::mem::take(&mut st.fo.log);
        let warnings = std::mem::take(&mut st.warnings);
        if let Err(e) = cluster.commit(&mut st) {
            drop(st);
            crate::net::listener::log(&server, "warning", &format!("Could not save the cluster config file: {e}"));
        } else {
            drop(st);
        }
        for line in freed.into_iter().chain(warnings) {
            crate::net::listener::log(&server, "warning", &line);
        }
        for line in logs {
            crate::net::listener::log(&server, "notice", &line);
        }
        // Changes since the last tick reach the disk, off the
        // runtime's threads and with no lock held.
        if cluster.has_unsynced() {
            let (c, srv) = (cluster.clone(), server.clone());
            tokio::task::spawn_blocking(move || {
                if let Err(e) = c.sync_pending() {
                    let text = format!("Could not save the cluster config file: {e}");
                    crate::net::listener::log(&srv, "warning", &text);
                }
            });
        }
        follow(&server, target);
        tick += 1;
    }
}

/// The manual failover's write pause on a master: started when a replica
/// asked for it (the offset sent from then on is final), lifted when the
/// failover ends.
fn apply_pause(server: &Server, st: &mut super::state::State) {
    if st.fo.unpause {
        st.fo.unpause = false;
        server.pause.stop();
    }
    if st.fo.pause_until != 0 && !st.fo.pause_engaged {
        server.pause.start(st.fo.pause_until, false);
        st.fo.pause_engaged = true;
    }
}

/// Makes replication follow the cluster's view: this node replicates its
/// master while it is a replica, and stops when it becomes a master.
fn follow(server: &Arc<Server>, target: Option<(String, u16)>) {
    let current = server.replicas.following.lock().master.clone();
    if current == target {
        return;
    }
    match target {
        Some((ip, port)) => {
            crate::net::listener::log(server, "notice", &format!("Cluster: replicating {ip}:{port}"));
            crate::replication::follow_master(server, ip, port);
        }
        None => {
            // Stopping waits for every shard: not on the runtime's threads.
            static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if STOPPING.swap(true, std::sync::atomic::Ordering::AcqRel) {
                return;
            }
            let srv = server.clone();
            tokio::task::spawn_blocking(move || {
                if srv.replicas.following.lock().master.is_some() {
                    crate::replication::stop_following(&srv);
                }
                STOPPING.store(false, std::sync::atomic::Ordering::Release);
            });
        }
    }
}

async fn accept_loop(cluster: Arc<Cluster>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        // tls-cluster yes: each peer first completes a TLS handshake with a
        // certificate the CAs signed (decided at each accept, as Redis).
        let tls = cluster.server.get().and_then(std::sync::Weak::upgrade).filter(|s| tls_cluster(s));
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let (peer_ip, local_ip) = addresses(&stream);
            let stream: BusStream = match tls {
                None => Box::new(stream),
                Some(server) => {
                    let Some(acceptor) = server.tls.bus_acceptor() else { return };
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => Box::new(s),
                        Ok(Err(e)) => {
                            let text = format!("Error accepting cluster node connection: {e} (addr={peer_ip})");
                            crate::net::listener::log(&server, "verbose", &text);
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            let io: Arc<LinkIo> = Default::default();
            let link = {
                let mut st = cluster.state.lock();
                st.next_link_id += 1;
                let id = st.next_link_id;
                st.inbound_io.insert(id, io.clone());
                id
            };
            serve_link(cluster, stream, (peer_ip, local_ip), From::Inbound(link), io, None).await;
        });
    }
}

/// A bus connection: plain TCP, or TLS over it (`tls-cluster yes`).
trait BusIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> BusIo for T {}
type BusStream = Box<dyn BusIo>;

/// The longest a bus peer's TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The peer's and this end's addresses of a connection.
fn addresses(stream: &TcpStream) -> (String, String) {
    (
        stream.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
        stream.local_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
    )
}

/// Wraps an outbound bus connection in TLS when `tls-cluster yes`.
async fn outbound_stream(cluster: &Cluster, stream: TcpStream, ip: &str) -> Option<BusStream> {
    let server = cluster.server.get().and_then(std::sync::Weak::upgrade);
    let Some(server) = server.filter(|s| tls_cluster(s)) else {
        return Some(Box::new(stream));
    };
    let config = match server.tls.client_config() {
        Ok(c) => c,
        Err(e) => {
            crate::net::listener::log(&server, "verbose", &format!("Cluster bus: no TLS to {ip}: {e}"));
            return None;
        }
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, connector.connect(crate::net::tls::server_name(ip), stream)).await
    {
        Ok(Ok(s)) => Some(Box::new(s)),
        Ok(Err(e)) => {
            crate::net::listener::log(&server, "verbose", &format!("Cluster bus: TLS handshake with {ip} failed: {e}"));
            None
        }
        Err(_) => None,
    }
}

async fn outbound(
    cluster: Arc<Cluster>,
    link: u64,
    ip: String,
    port: u16,
    (rx, io): (tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>, Arc<LinkIo>),
    timeout_ms: u64,
) {
    // From `bind-source-addr` when set, as Redis's bus connects.
    let source = cluster.server.get().and_then(|s| s.upgrade()).and_then(|s| s.config.get("bind-source-addr"));
    let connect = async {
        let peer = tokio::net::lookup_host((ip.as_str(), port))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other("no address for the node"))?;
        crate::net::outbound::connect(peer, source.as_deref().unwrap_or_default()).await
    };
    let stream = match tokio::time::timeout(Duration::from_millis(timeout_ms.clamp(100, 5000)), connect).await {
        Ok(Ok(s)) => s,
        _ => {
            // Let the cron try again a little later.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut st = cluster.state.lock();
            st.link_closed(link);
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let addrs = addresses(&stream);
    let Some(stream) = outbound_stream(&cluster, stream, &ip).await else {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cluster.state.lock().link_closed(link);
        return;
    };
    let first = cluster.state.lock().link_established(link);
    let Some(first) = first else { return };
    serve_link(cluster, stream, addrs, From::Outbound(link), io, Some((rx, first))).await;
}

/// An outbound link's queue and its first message.
type Outbound = (tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>, Vec<u8>);

/// Writes `bytes` unless the link is freed first; false if it did not.
async fn write_or_close(wr: &mut tokio::io::WriteHalf<BusStream>, io: &LinkIo, bytes: &[u8]) -> bool {
    // (TLS holds written bytes until flushed.)
    tokio::select! {
        r = async { wr.write_all(bytes).await?; wr.flush().await } => r.is_ok(),
        _ = io.close.notified() => false,
    }
}

/// Reads messages from a bus connection and applies them; writes the
/// replies (and, on an outbound link, what the node queues for the peer).
async fn serve_link(
    cluster: Arc<Cluster>,
    stream: BusStream,
    (peer_ip, local_ip): (String, String),
    from: From,
    io: Arc<LinkIo>,
    outbound: Option<Outbound>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (mut rx, first) = match outbound {
        Some((rx, first)) => (Some(rx), Some(first)),
        None => (None, None),
    };
    if let Some(first) = first {
        if !write_or_close(&mut wr, &io, &first).await {
            finish(&cluster, from);
            return;
        }
    }
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 64 * 1024];
    let read_buf = |buf: &Vec<u8>| (buf.capacity() + 64 * 1024) as u64;
    io.read_buf.store(read_buf(&buf), Relaxed);
    loop {
        tokio::select! {
            next = async { match rx.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => {
                let Some(msg) = next else { break };
                if !write_or_close(&mut wr, &io, &msg).await {
                    break;
                }
                io.queued.fetch_sub(msg.len() as u64, Relaxed);
            }
            _ = io.close.notified() => break,
            read = rd.read(&mut chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let mut replies = Vec::new();
                let mut inbox = Vec::new();
                let mut lost = Vec::new();
                let mut bad = false;
                while buf.len() >= 8 {
                    let Some(len) = bus::announced_len(&buf[..8]).filter(|&l| l <= MAX_MESSAGE) else {
                        bad = true;
                        break;
                    };
                    if buf.len() < len {
                        break;
                    }
                    let frame: Vec<u8> = buf.drain(..len).collect();
                    let Ok(msg) = bus::decode(&frame) else { continue };
                    let mut st = cluster.state.lock();
                    if let From::Outbound(l) = from {
                        if st.node_by_link(l).is_none() {
                            bad = true;
                            break;
                        }
                    }
                    replies.extend(st.process(msg, from, &peer_ip, &local_ip));
                    inbox.append(&mut st.inbox);
                    lost.append(&mut st.lost_slots);
                    st.update_state(super::state::now_ms());
                    let _ = cluster.commit(&mut st);
                }
                if buf.is_empty() && buf.capacity() > 64 * 1024 {
                    buf = Vec::with_capacity(8192);
                }
                io.read_buf.store(read_buf(&buf), Relaxed);
                deliver(&cluster, inbox);
                drop_keys_in_slots(&cluster, &lost);
                // The replies are this link's send buffer until written.
                let pending: u64 = replies.iter().map(|r| r.len() as u64).sum();
                io.queued.fetch_add(pending, Relaxed);
                for r in replies {
                    if !write_or_close(&mut wr, &io, &r).await {
                        bad = true;
                        break;
                    }
                    io.queued.fetch_sub(r.len() as u64, Relaxed);
                }
                if bad {
                    break;
                }
            }
        }
    }
    finish(&cluster, from);
}

/// Hands the messages PUBLISH / PUBLISHSHARD brought to this node's
/// subscribers (the bus's lock is not held).
fn deliver(cluster: &Cluster, inbox: Vec<(bool, Vec<u8>, Vec<u8>)>) {
    if inbox.is_empty() {
        return;
    }
    let Some(server) = cluster.server.get().and_then(std::sync::Weak::upgrade) else { return };
    for (shard, channel, message) in inbox {
        let (channel, message) = (bytes::Bytes::from(channel), bytes::Bytes::from(message));
        if shard {
            server.pubsub.spublish(&channel, &message);
        } else {
            server.pubsub.publish(&channel, &message);
        }
    }
}

/// Deletes the keys left in slots this node no longer serves (Redis's
/// delKeysInSlot after a configuration update): each is replayed as DEL
/// and followed like a write (WATCH, tracking, blocked clients).
fn drop_keys_in_slots(cluster: &Cluster, slots: &[usize]) {
    if slots.is_empty() {
        return;
    }
    let Some(server) = cluster.server.get().and_then(std::sync::Weak::upgrade) else { return };
    let lazy = server.config.get("lazyfree-lazy-server-del").as_deref() == Some("yes");
    let verb = bytes::Bytes::from_static(if lazy { b"UNLINK" } else { b"DEL" });
    let now = crate::storage::now_ms();
    for &slot in slots {
        let shard = server.shards.get(crate::shard::slot::slot_shard(slot as u16, server.shards.len()));
        let mut data = shard.lock_blocking();
        let Some(db) = data.dbs.first_mut() else { continue };
        let keys = db.keys_in_slot(slot, usize::MAX);
        for key in &keys {
            data.dbs[0].remove(key);
            data.key_changed(&server, 0, key, "del", now, crate::shard::tracking::Who::SERVER);
            if server.propagation.active() {
                crate::propagate::emit(&server.propagation, 0, &[verb.clone(), key.clone()]);
            }
        }
        if !keys.is_empty() {
            crate::pubsub::tracking::end_run(&server, &mut [&mut data], 0);
            server.stats.dirty.fetch_add(keys.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn finish(cluster: &Cluster, from: From) {
    let mut st = cluster.state.lock();
    match from {
        From::Outbound(l) => st.link_closed(l),
        From::Inbound(l) => {
            st.inbound_io.remove(&l);
            for n in st.nodes.values_mut() {
                if n.inbound.as_ref().is_some_and(|i| i.id == l) {
                    n.inbound = None;
                }
            }
        }
    }
}

/// `cluster-enabled yes`: opens the node's state from `cluster-config-file`
/// (relative to `dir`) before the server starts.
pub fn open(server: &mut Server) -> Result<(), String> {
    if server.config.get("cluster-enabled").as_deref() != Some("yes") {
        return Ok(());
    }
    // A Redis Cluster node refuses keys of several slots whatever it holds:
    // the standalone keyspace (any keys together) cannot be one.
    if server.standalone {
        return Err("keyspace-mode standalone cannot be used with cluster-enabled yes:                     a cluster node keeps Redis Cluster's same-slot rule"
            .into());
    }
    let dir = server.config.get("dir").filter(|d| !d.is_empty()).unwrap_or_else(|| ".".into());
    let name = server.config.get("cluster-config-file").unwrap_or_else(|| "nodes.conf".into());
    let port = server.config.get_i64("port").clamp(0, 65535) as u16;
    let cluster = Cluster::open(std::path::Path::new(&dir).join(name), port, bus_port(server, port))?;
    crate::storage::keyslots::enable();
    server.cluster = Some(Arc::new(cluster));
    Ok(())
}
