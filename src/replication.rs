//! Replication, master side: replicas (redis-server or moonshard) connect,
//! announce themselves with REPLCONF, and ask for the dataset with PSYNC or
//! SYNC. The master answers with a full resynchronization: the RDB snapshot
//! of the dataset, then the propagated write stream (`propagate`) from the
//! snapshot's instant on. The subscription is taken with every shard held,
//! at the same instant as the snapshot, so the replica gets every write
//! exactly once.
//!
//! The replica's connection leaves the ordinary request path once PSYNC is
//! accepted: a task of its own writes the stream to it and reads its
//! `REPLCONF ACK <offset>` reports (ROLE and INFO show them).

use crate::net::client::ClientInfo;
use crate::net::listener::log;
use crate::server::Server;
use bytes::BytesMut;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The replicas of this master, and connections on their way to become one.
#[derive(Default)]
pub struct Replicas {
    links: Mutex<Vec<Arc<Link>>>,
    /// The listening port each connection announced (client id -> port).
    announced: Mutex<HashMap<u64, u16>>,
    /// Connections whose PSYNC (true) or SYNC (false) was accepted, waiting
    /// for their connection task to hand them over.
    handoff: Mutex<HashMap<u64, bool>>,
    /// Entries in `handoff`: every connection checks it after each batch,
    /// so the common case (none) is one atomic load, not a shared lock.
    handoffs: std::sync::atomic::AtomicUsize,
    /// This server's master, when it is a replica.
    pub following: Mutex<Following>,
    /// Bumped by every REPLICAOF: the thread of an older one stops.
    generation: AtomicU64,
    /// A replica refusing its clients' writes.
    is_replica: AtomicBool,
    /// The master's stream offset applied so far (a replica's).
    pub applied: AtomicU64,
}

/// One replica's link: what the stream appended for it, waiting to be sent.
pub struct Link {
    pub ip: String,
    pub port: u16,
    /// The offset the replica last acknowledged.
    pub ack: AtomicU64,
    /// Unix seconds of the last acknowledgement (or of the sync's end).
    pub last_ack: AtomicU64,
    /// False while the snapshot is being sent.
    pub online: AtomicBool,
    pending: Mutex<Vec<u8>>,
    notify: tokio::sync::Notify,
}

impl crate::propagate::Subscriber for Link {
    fn append(&self, bytes: &[u8], _end: u64) {
        let mut p = self.pending.lock();
        let was_empty = p.is_empty();
        p.extend_from_slice(bytes);
        drop(p);
        if was_empty {
            self.notify.notify_one();
        }
    }
}

impl Replicas {
    /// REPLCONF listening-port: the port the replica's own clients use.
    pub fn announce(&self, client: u64, port: u16) {
        self.announced.lock().insert(client, port);
    }

    /// PSYNC / SYNC accepted: the connection becomes a replica link once the
    /// current batch is answered.
    pub fn request_sync(&self, client: u64, psync: bool) {
        if self.handoff.lock().insert(client, psync).is_none() {
            self.handoffs.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whether the connection asked to become a replica (Some(psync)).
    #[inline]
    pub fn take_handoff(&self, client: u64) -> Option<bool> {
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
        let _ = self.take_handoff(client);
    }

    pub fn links(&self) -> Vec<Arc<Link>> {
        self.links.lock().clone()
    }

    /// Replicas past their full sync.
    pub fn online(&self) -> Vec<Arc<Link>> {
        self.links.lock().iter().filter(|l| l.online.load(Ordering::Acquire)).cloned().collect()
    }
}

/// Every `repl-ping-replica-period` seconds a master with replicas sends
/// them a PING through the stream, so that an idle link is not taken for a
/// dead one (a replica drops a link silent for `repl-timeout`).
pub async fn cron(server: Arc<Server>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut since = 0i64;
    loop {
        tick.tick().await;
        if server.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        since += 1;
        if since >= server.config.get_i64("repl-ping-replica-period") {
            since = 0;
            if !server.replicas.online().is_empty() {
                server.propagation.emit_dbless(&[b"PING"]);
            }
        }
    }
}

fn now_secs() -> u64 {
    crate::storage::now_ms() / 1000
}

/// The snapshot for a full sync (BGSAVE's, no stop of the world) and the
/// subscription to the write stream, both taken at one instant with every
/// shard held: returns the RDB and the stream offset it stands for. Blocks
/// (call from a blocking thread).
fn snapshot_and_subscribe(server: &Server, link: Arc<Link>) -> std::io::Result<(Vec<u8>, u64)> {
    let mut offset = 0;
    let rdb = crate::persist::save::snapshot_for_replica(server, || offset = server.propagation.subscribe(link))?;
    Ok((rdb, offset))
}

/// Serves a connection whose PSYNC/SYNC was accepted, until the replica
/// goes away: full sync, then the write stream.
pub async fn serve_replica<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Arc<Server>,
    stream: &mut S,
    inbuf: &mut BytesMut,
    info: &Arc<ClientInfo>,
    psync: bool,
) {
    let port = server.replicas.announced.lock().remove(&info.id).unwrap_or(0);
    let ip = info.addr.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']'])).unwrap_or("").to_string();
    let link = Arc::new(Link {
        ip,
        port,
        ack: AtomicU64::new(0),
        last_ack: AtomicU64::new(now_secs()),
        online: AtomicBool::new(false),
        pending: Mutex::new(Vec::new()),
        notify: tokio::sync::Notify::new(),
    });
    let name = format!("{}:{}", link.ip, link.port);
    log(server, "notice", &format!("Replica {name} asks for synchronization"));
    log(server, "notice", "Starting BGSAVE for SYNC with target: replicas sockets");
    server.replicas.links.lock().push(link.clone());
    let (srv, l) = (server.clone(), link.clone());
    let snap = tokio::task::spawn_blocking(move || snapshot_and_subscribe(&srv, l)).await;
    let sub: Arc<dyn crate::propagate::Subscriber> = link.clone();
    if let Ok(Ok((rdb, offset))) = snap {
        link.ack.store(offset, Ordering::Release);
        let mut head = Vec::new();
        if psync {
            let replid = server.replid.lock().clone();
            head.extend_from_slice(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
        }
        head.extend_from_slice(format!("${}\r\n", rdb.len()).as_bytes());
        let sent = stream.write_all(&head).await.is_ok()
            && stream.write_all(&rdb).await.is_ok()
            && stream.flush().await.is_ok();
        if sent {
            link.online.store(true, Ordering::Release);
            link.last_ack.store(now_secs(), Ordering::Relaxed);
            log(server, "notice", &format!("Synchronization with replica {name} succeeded"));
            follow(server, stream, inbuf, info, &link).await;
        }
    }
    {
        // Subscribed even when the snapshot failed after its instant.
        // Subscribers leave with every shard entered (see `propagate::Unit`).
        let srv = server.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let guards: Vec<_> = srv.shards.list.iter().map(|s| s.lock_blocking()).collect();
            srv.propagation.unsubscribe(&sub);
            drop(guards);
        })
        .await;
    }
    server.replicas.links.lock().retain(|x| !Arc::ptr_eq(x, &link));
    log(server, "notice", &format!("Connection with replica {name} lost."));
}

/// The streaming phase: sends what the stream appended, reads the
/// replica's acknowledgements.
async fn follow<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Arc<Server>,
    stream: &mut S,
    inbuf: &mut BytesMut,
    info: &ClientInfo,
    link: &Link,
) {
    let mut parser = crate::protocol::RequestParser::new();
    loop {
        if server.shutting_down.load(Ordering::SeqCst) || info.killed.load(Ordering::Acquire) {
            return;
        }
        let out = std::mem::take(&mut *link.pending.lock());
        if !out.is_empty() {
            // (The flush hands a TLS stream's records to the socket.)
            if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() {
                return;
            }
            server.stats.net_output_bytes.fetch_add(out.len() as u64, Ordering::Relaxed);
            continue;
        }
        tokio::select! {
            _ = link.notify.notified() => {}
            r = stream.read_buf(inbuf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => loop {
                    match parser.parse(inbuf, 1 << 20, true) {
                        Ok(Some(args)) => {
                            let ack = args.len() >= 3
                                && crate::util::eq_ic(&args[0], "replconf")
                                && crate::util::eq_ic(&args[1], "ack");
                            if let Some(off) = ack.then(|| crate::util::parse_i64(&args[2])).flatten() {
                                link.ack.store(off.max(0) as u64, Ordering::Release);
                                link.last_ack.store(now_secs(), Ordering::Relaxed);
                            }
                        }
                        Ok(None) => break,
                        Err(_) => return,
                    }
                },
            },
            _ = info.kill_notify.notified() => {}
            _ = server.shutdown.notified() => return,
        }
    }
}

// ------------------------------------------------------------ replica side

/// This server's own master, when it is a replica (REPLICAOF host port).
#[derive(Default)]
pub struct Following {
    pub master: Option<(String, u16)>,
    /// The master's replication id and the offset applied so far.
    pub replid: String,
    pub link_up: bool,
    pub sync_in_progress: bool,
    pub last_io: u64,
}

impl Replicas {
    /// True while this server is a replica refusing writes from its clients.
    pub fn read_only_replica(&self) -> bool {
        self.is_replica.load(Ordering::Relaxed)
    }
}

/// REPLICAOF host port: forgets the dataset's past and follows `host:port`
/// from a thread of its own (reconnecting until told otherwise).
pub fn follow_master(server: &Arc<Server>, host: String, port: u16) {
    let gen = server.replicas.generation.fetch_add(1, Ordering::AcqRel) + 1;
    {
        let mut f = server.replicas.following.lock();
        *f = Following { master: Some((host.clone(), port)), ..Default::default() };
    }
    server
        .replicas
        .is_replica
        .store(server.config.get("replica-read-only").as_deref() != Some("no"), Ordering::Relaxed);
    log(server, "notice", &format!("Connecting to MASTER {host}:{port}"));
    let srv = server.clone();
    let _ = std::thread::Builder::new().name("moonshard-replica".into()).spawn(move || {
        while srv.replicas.generation.load(Ordering::Acquire) == gen && !srv.shutting_down.load(Ordering::SeqCst) {
            if let Err(e) = sync_with_master(&srv, &host, port, gen) {
                log(&srv, "warning", &format!("Error condition on socket for SYNC: {e}"));
            }
            {
                let mut f = srv.replicas.following.lock();
                if srv.replicas.generation.load(Ordering::Acquire) == gen {
                    f.link_up = false;
                    f.sync_in_progress = false;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    });
}

/// REPLICAOF NO ONE: stops following; the dataset stays.
pub fn stop_following(server: &Server) {
    server.replicas.generation.fetch_add(1, Ordering::AcqRel);
    server.replicas.is_replica.store(false, Ordering::Relaxed);
    *server.replicas.following.lock() = Following::default();
    log(server, "notice", "MASTER MODE enabled (user request from 'id=0')");
}

fn send_command(s: &mut std::net::TcpStream, argv: &[&[u8]]) -> std::io::Result<()> {
    use std::io::Write;
    let mut buf = Vec::new();
    crate::propagate::encode(&mut buf, argv);
    s.write_all(&buf)
}

/// Reads one line (without CRLF) from a blocking stream, byte by byte from
/// `buf` first. Skips the empty lines masters send as keep-alives.
fn read_line(s: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> std::io::Result<String> {
    use std::io::Read;
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            if text.is_empty() {
                continue;
            }
            return Ok(text);
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("the master closed the connection"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn expect_ok(line: &str, what: &str) -> std::io::Result<()> {
    if line.starts_with('-') {
        return Err(std::io::Error::other(format!("{what} answered {line}")));
    }
    Ok(())
}

/// One connection to the master: handshake, full sync, then the stream
/// until the link drops or this server follows another master.
fn sync_with_master(server: &Arc<Server>, host: &str, port: u16, gen: u64) -> std::io::Result<()> {
    use std::io::Read;
    let current = || server.replicas.generation.load(Ordering::Acquire) == gen;
    let mut s = std::net::TcpStream::connect((host, port))?;
    s.set_read_timeout(Some(std::time::Duration::from_millis(1000)))?;
    log(server, "notice", "MASTER <-> REPLICA sync started");
    let mut buf = Vec::new();
    send_command(&mut s, &[b"PING"])?;
    expect_ok(&read_line(&mut s, &mut buf)?, "PING")?;
    let me = server.port.load(Ordering::Relaxed).to_string();
    send_command(&mut s, &[b"REPLCONF", b"listening-port", me.as_bytes()])?;
    expect_ok(&read_line(&mut s, &mut buf)?, "REPLCONF listening-port")?;
    send_command(&mut s, &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    expect_ok(&read_line(&mut s, &mut buf)?, "REPLCONF capa")?;
    send_command(&mut s, &[b"PSYNC", b"?", b"-1"])?;
    let line = read_line(&mut s, &mut buf)?;
    let mut words = line.split_whitespace();
    if words.next() != Some("+FULLRESYNC") {
        return Err(std::io::Error::other(format!("PSYNC answered {line}")));
    }
    let replid = words.next().unwrap_or_default().to_string();
    let mut offset: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    log(server, "notice", &format!("Full resync from master: {replid}:{offset}"));
    server.replicas.following.lock().sync_in_progress = true;
    // The payload: `$<len>` then the file, or `$EOF:<mark>` then the file
    // followed by the mark.
    let head = read_line(&mut s, &mut buf)?;
    let mut rdb = std::mem::take(&mut buf);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut read_more = |s: &mut std::net::TcpStream, rdb: &mut Vec<u8>| -> std::io::Result<()> {
        match s.read(&mut chunk) {
            Ok(0) => Err(std::io::Error::other("the master closed the connection during the sync")),
            Ok(n) => {
                rdb.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Ok(()),
            Err(e) => Err(e),
        }
    };
    if let Some(mark) = head.strip_prefix("$EOF:") {
        let mark = mark.as_bytes().to_vec();
        while !(rdb.len() >= mark.len() && rdb.ends_with(&mark)) {
            read_more(&mut s, &mut rdb)?;
        }
        rdb.truncate(rdb.len() - mark.len());
    } else {
        let len: usize = head
            .strip_prefix('$')
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad sync payload header {head}")))?;
        while rdb.len() < len {
            read_more(&mut s, &mut rdb)?;
        }
        buf = rdb.split_off(len);
    }
    if !current() {
        return Ok(());
    }
    log(server, "notice", &format!("MASTER <-> REPLICA sync: receiving {} bytes from master to disk", rdb.len()));
    let mut loader = crate::persist::aof::Loader::new(server, "master");
    log(server, "notice", "MASTER <-> REPLICA sync: Flushing old data");
    let flush = |l: &mut crate::persist::aof::Loader, argv: &[&str]| {
        let _ = l.apply(argv.iter().map(|a| bytes::Bytes::copy_from_slice(a.as_bytes())).collect());
    };
    flush(&mut loader, &["FLUSHALL"]);
    flush(&mut loader, &["FUNCTION", "FLUSH"]);
    log(server, "notice", "MASTER <-> REPLICA sync: Loading DB in memory");
    let mut target = crate::persist::load::Target::Lock(&server.shards);
    let (_, loaded) = crate::persist::load::read_into(server, &rdb[..], &mut target, false)
        .map_err(|e| std::io::Error::other(format!("Failed trying to load the MASTER synchronization DB: {e}")))?;
    crate::persist::load::note_loaded(server, &loaded);
    drop(rdb);
    {
        let mut f = server.replicas.following.lock();
        f.replid = replid;
        f.link_up = true;
        f.sync_in_progress = false;
        f.last_io = now_secs();
    }
    server.replicas.applied.store(offset, Ordering::Release);
    log(server, "notice", "MASTER <-> REPLICA sync: Finished with success");
    // The stream.
    let mut last_ack = std::time::Instant::now();
    loop {
        if !current() || server.shutting_down.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut pos = 0;
        while let Some(argv) =
            crate::persist::aof::next_stream_command(&buf, &mut pos).map_err(std::io::Error::other)?
        {
            let getack =
                argv.len() >= 2 && crate::util::eq_ic(&argv[0], "replconf") && crate::util::eq_ic(&argv[1], "getack");
            if !getack {
                let _ = loader.apply(argv);
            }
            if getack {
                last_ack = std::time::Instant::now() - std::time::Duration::from_secs(2);
            }
        }
        if pos > 0 {
            offset += pos as u64;
            buf.drain(..pos);
            server.replicas.applied.store(offset, Ordering::Release);
            server.replicas.following.lock().last_io = now_secs();
        }
        if last_ack.elapsed() >= std::time::Duration::from_secs(1) {
            send_command(&mut s, &[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])?;
            last_ack = std::time::Instant::now();
        }
        read_more(&mut s, &mut buf)?;
    }
}
