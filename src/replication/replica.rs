//! Replication, replica side: REPLICAOF host port follows a master (a
//! redis-server or a moonshard) from a thread of its own, reconnecting
//! until told otherwise. Each connection: PING, AUTH (`masterauth`,
//! `masteruser`), REPLCONF listening-port and capa, then PSYNC with this
//! server's replication ID and offset + 1 when it has a history (after a
//! sync, or its own as a former master), else `PSYNC ? -1`. `+CONTINUE`
//! goes on from the offset applied (with a new ID, the old one becomes
//! `master_replid2`); `+FULLRESYNC` loads the RDB that follows. Then the
//! stream: each command applied, its bytes counted and kept in the
//! backlog, REPLCONF ACK <offset> every second and on REPLCONF GETACK.

use super::now_secs;
use crate::net::listener::log;
use crate::net::tls::Link;
use crate::server::Server;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// This server's own master, when it is a replica (REPLICAOF host port).
#[derive(Default)]
pub struct Following {
    pub master: Option<(String, u16)>,
    pub link_up: bool,
    pub sync_in_progress: bool,
    /// Connected, exchanging PING/AUTH/REPLCONF/PSYNC (ROLE's `handshake`).
    pub handshake: bool,
    pub last_io: u64,
    /// Unix seconds when the link went down (INFO's
    /// master_link_down_since_seconds).
    pub down_since: u64,
    /// The replication ID and offset describe the dataset (false after a
    /// failed load: the next sync is a full one).
    pub valid_history: bool,
    /// The database the master's stream had selected at the offset applied
    /// (a partial resync continues in it).
    pub stream_db: usize,
}

/// REPLICAOF host port: follows `host:port` from a thread of its own
/// (reconnecting until told otherwise), trying to continue this server's
/// history first.
pub fn follow_master(server: &Arc<Server>, host: String, port: u16) {
    let gen = server.replicas.generation.fetch_add(1, Ordering::AcqRel) + 1;
    cut_master_link(server);
    {
        let mut f = server.replicas.following.lock();
        let was_master = f.master.is_none();
        // A master turning replica offers its own history; its stream
        // database is 0 unless start-up restored one from the RDB file.
        let (valid, db) = if was_master { (true, f.stream_db) } else { (f.valid_history, f.stream_db) };
        // As Redis's repl_down_since: now if a link to a master is cut
        // here, else unchanged (0, "never", for a master turning replica).
        let down_since = if f.link_up { now_secs() } else { f.down_since };
        *f = Following {
            master: Some((host.clone(), port)),
            valid_history: valid,
            stream_db: db,
            down_since,
            ..Default::default()
        };
    }
    server
        .replicas
        .is_replica
        .store(server.config.get("replica-read-only").as_deref() != Some("no"), Ordering::Relaxed);
    crate::storage::set_replica_expiry(true);
    // As Redis's disconnectAllBlockedClients: a client blocked on keys would
    // otherwise be served by the master's writes, taking elements the
    // master still has.
    for c in server.clients.snapshot() {
        if c.blocked.load(Ordering::Acquire) {
            c.unblock_request.store(crate::net::client::UNBLOCK_ROLE_CHANGE, Ordering::Release);
            c.unblock.notify_waiters();
        }
    }
    if let Err(e) = crate::process::apply_oom_score_adj(&server.config, true) {
        log(server, "warning", &e);
    }
    server.replicas.link_down.store(true, Ordering::Relaxed);
    // Our own replicas resynchronize with us (they may continue).
    for l in server.replicas.links() {
        l.client.kill();
    }
    let srv = server.clone();
    let _ = std::thread::Builder::new().name("moonshard-replica".into()).spawn(move || {
        crate::storage::ignore_ttls_on_this_thread(true);
        // The backlog now records the master's stream, not ours.
        super::detach_feed(&srv);
        // After a lost link the next try is at once, as Redis reconnects
        // when it frees its master client; else a second later.
        let mut reconnect = false;
        while srv.replicas.generation.load(Ordering::Acquire) == gen && !srv.shutting_down.load(Ordering::SeqCst) {
            let attempt = {
                let _one_at_a_time = srv.replicas.syncing.lock();
                if srv.replicas.generation.load(Ordering::Acquire) != gen {
                    break;
                }
                // Every try logs what Redis's connectWithMaster logs (tools
                // wait for these lines): the connection is started, then
                // either the handshake goes on or the error is logged below.
                let verb = if reconnect { "Reconnecting" } else { "Connecting" };
                log(&srv, "notice", &format!("{verb} to MASTER {host}:{port}"));
                log(&srv, "notice", "MASTER <-> REPLICA sync started");
                let attempt = sync_with_master(&srv, &host, port, gen);
                srv.replicas.master_socket.lock().take();
                attempt
            };
            let current = srv.replicas.generation.load(Ordering::Acquire) == gen;
            let was_up = srv.replicas.following.lock().link_up;
            if let Err(e) = attempt {
                // (An InvalidData error was logged where it happened.)
                if current && e.kind() != std::io::ErrorKind::InvalidData {
                    if !was_up {
                        log(&srv, "warning", &format!("Error condition on socket for SYNC: {}", os_text(&e)));
                    } else if e.to_string().starts_with("MASTER timeout") {
                        log(&srv, "warning", &e.to_string());
                    } else {
                        log(&srv, "verbose", &format!("The master link failed: {}", os_text(&e)));
                    }
                }
            }
            if current && was_up {
                // Redis's lines when its master client is freed.
                log(&srv, "warning", "Connection with master lost.");
                log(&srv, "notice", "Caching the disconnected master state.");
            }
            {
                let mut f = srv.replicas.following.lock();
                if srv.replicas.generation.load(Ordering::Acquire) == gen {
                    if f.link_up {
                        f.down_since = now_secs();
                    }
                    srv.replicas.link_down.store(true, Ordering::Relaxed);
                    f.link_up = false;
                    f.sync_in_progress = false;
                    f.handshake = false;
                }
            }
            reconnect = current && was_up;
            if reconnect {
                continue;
            }
            // Another try a second later, as Redis's replication cron does
            // (checked every 100 ms, so REPLICAOF or SHUTDOWN ends this at once).
            for _ in 0..10 {
                if srv.replicas.generation.load(Ordering::Acquire) != gen || srv.shutting_down.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
}

/// An error as Redis words it: a system error by its `strerror` text
/// alone ("Connection refused"), without Rust's " (os error 111)".
fn os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text.strip_suffix(&format!(" (os error {code})")).unwrap_or(&text).to_string(),
        None => text,
    }
}

/// Shuts the link to the master down (the thread reading it sees the
/// error and checks the generation).
fn cut_master_link(server: &Server) {
    if let Some(s) = server.replicas.master_socket.lock().take() {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

/// REPLICAOF NO ONE: stops following; the dataset stays. The replication
/// ID changes and the master's becomes `master_replid2`, valid up to the
/// offset applied, so that the other replicas of that master can continue
/// from this server.
pub fn stop_following(server: &Server) {
    unset_master(server);
}

/// Stops following the master (REPLICAOF NO ONE, a failover's target or an
/// aborted failover): the history shifts to a new ID, the backlog follows
/// this server's own stream.
pub(super) fn unset_master(server: &Server) {
    server.replicas.generation.fetch_add(1, Ordering::AcqRel);
    cut_master_link(server);
    // Wait for the batch being applied, if any: what is counted is applied.
    let applying = server.replicas.applying.lock();
    server.replicas.link_down.store(false, Ordering::Relaxed);
    *server.replicas.following.lock() = Following::default();
    {
        let mut h = server.replicas.history.lock();
        let mut id = server.replid.lock();
        h.shift_replid(&mut id, crate::server::random_id());
        log(
            server,
            "notice",
            &format!(
                "Setting secondary replication ID to {}, valid up to offset: {}. New replication ID is {}",
                h.replid2, h.second_offset, *id
            ),
        );
    }
    drop(applying);
    // The backlog goes on with this server's own stream (which starts with
    // a SELECT).
    if server.replicas.history.lock().has_backlog() {
        super::attach_feed(server);
    }
    // Writes are taken once the backlog follows them.
    server.replicas.is_replica.store(false, Ordering::Relaxed);
    crate::storage::set_replica_expiry(false);
    if let Err(e) = crate::process::apply_oom_score_adj(&server.config, false) {
        log(server, "warning", &e);
    }
    // Our replicas reconnect and continue with our new ID (PSYNC2); not
    // before this server is a master, or one could continue as a replica's
    // replica that nothing feeds any more.
    server.replicas.disconnect_replicas();
}

fn send_command(s: &mut Link, argv: &[&[u8]]) -> std::io::Result<()> {
    use std::io::Write;
    let mut buf = Vec::new();
    crate::propagate::encode(&mut buf, argv);
    s.write_all(&buf)
}

/// Reads one line (without CRLF) from a blocking stream, byte by byte from
/// `buf` first. Skips the empty lines masters send as keep-alives.
fn read_line(s: &mut Link, buf: &mut Vec<u8>, deadline: Instant) -> std::io::Result<String> {
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            if text.is_empty() {
                continue;
            }
            return Ok(text);
        }
        if Instant::now() > deadline {
            return Err(std::io::Error::other("Timeout connecting to the MASTER..."));
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) => return Err(std::io::Error::other("the master closed the connection")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if retry_read(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

fn expect_ok(line: &str, what: &str) -> std::io::Result<()> {
    if line.starts_with('-') {
        return Err(std::io::Error::other(format!("{what} answered {line}")));
    }
    Ok(())
}

/// One connection to the master: handshake, partial or full sync, then the
/// stream until the link drops or this server follows another master.
fn sync_with_master(server: &Arc<Server>, host: &str, port: u16, gen: u64) -> std::io::Result<()> {
    let replicas = &server.replicas;
    let current = || replicas.generation.load(Ordering::Acquire) == gen;
    let timeout = Duration::from_secs(server.config.get_i64("repl-timeout").max(1) as u64);
    // Every address the name resolves to, in order, as Redis's connect does
    // (`localhost` may give ::1 first to a master listening on 127.0.0.1 only).
    let mut connected = Err(std::io::Error::other("no address for the master"));
    let source = server.config.get("bind-source-addr").unwrap_or_default();
    for addr in std::net::ToSocketAddrs::to_socket_addrs(&(host, port))? {
        connected = crate::net::outbound::connect_timeout(&addr, &source, timeout);
        if connected.is_ok() {
            break;
        }
    }
    let sock = connected?;
    {
        // Checked under the lock that REPLICAOF's cut takes: either the
        // cut sees this socket or this attempt sees the newer generation.
        let mut held = replicas.master_socket.lock();
        if !current() {
            return Ok(());
        }
        *held = sock.try_clone().ok();
    }
    let _ = sock.set_nodelay(true);
    // The link to the master is a client connection to Redis: it gets
    // `tcp-keepalive` too.
    let keepalive = server.config.tcp_keepalive.load(Ordering::Relaxed);
    crate::net::listener::set_keepalive(std::os::fd::AsRawFd::as_raw_fd(&sock), keepalive);
    // `tls-replication yes`: the master's address is its TLS port; this
    // server presents its client certificate and verifies the master's.
    let mut s = if server.config.get("tls-replication").as_deref() == Some("yes") {
        let config = server.tls.client_config().map_err(std::io::Error::other)?;
        Link::tls(config, sock, host, timeout)?
    } else {
        Link::Plain(sock)
    };
    s.socket().set_read_timeout(Some(Duration::from_millis(100)))?;
    replicas.following.lock().handshake = true;
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    send_command(&mut s, &[b"PING"])?;
    let pong = read_line(&mut s, &mut buf, deadline)?;
    // A master that wants a password answers PING with NOAUTH: fine.
    if pong.starts_with('-') && !pong.starts_with("-NOAUTH") && !pong.starts_with("-NOPERM") {
        return Err(std::io::Error::other(format!("Error reply to PING from master: '{pong}'")));
    }
    log(server, "notice", "Master replied to PING, replication can continue...");
    let pass = server.config.get("masterauth").unwrap_or_default();
    if !pass.is_empty() {
        let user = server.config.get("masteruser").unwrap_or_default();
        if user.is_empty() {
            send_command(&mut s, &[b"AUTH", pass.as_bytes()])?;
        } else {
            send_command(&mut s, &[b"AUTH", user.as_bytes(), pass.as_bytes()])?;
        }
        let r = read_line(&mut s, &mut buf, deadline)?;
        if r.starts_with('-') {
            return Err(std::io::Error::other(format!("Unable to AUTH to MASTER: {r}")));
        }
    }
    // The port and address the master shows and FAILOVER TO names:
    // `replica-announce-port` / `replica-announce-ip` when set.
    // With `tls-replication yes` and a TLS port, that port (as Redis).
    let tls_port = server.config.get_i64("tls-port");
    let me = match server.config.get_i64("replica-announce-port") {
        p if p > 0 => p.to_string(),
        _ if tls_port > 0 && server.config.get("tls-replication").as_deref() == Some("yes") => tls_port.to_string(),
        _ => server.port.load(Ordering::Relaxed).to_string(),
    };
    send_command(&mut s, &[b"REPLCONF", b"listening-port", me.as_bytes()])?;
    let r = read_line(&mut s, &mut buf, deadline)?;
    if r.starts_with('-') {
        log(server, "notice", &format!("(Non critical) Master does not understand REPLCONF listening-port: {r}"));
    }
    let announce_ip = server.config.get("replica-announce-ip").unwrap_or_default();
    if !announce_ip.is_empty() {
        send_command(&mut s, &[b"REPLCONF", b"ip-address", announce_ip.as_bytes()])?;
        let r = read_line(&mut s, &mut buf, deadline)?;
        if r.starts_with('-') {
            log(server, "notice", &format!("(Non critical) Master does not understand REPLCONF ip-address: {r}"));
        }
    }
    send_command(&mut s, &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    expect_ok(&read_line(&mut s, &mut buf, deadline)?, "REPLCONF capa")?;
    let (valid, db) = {
        let f = replicas.following.lock();
        (f.valid_history, f.stream_db)
    };
    let (my_id, my_next) = (server.replid.lock().clone(), replicas.history.lock().offset + 1);
    // A master handing over its role (FAILOVER) asks the target to take it.
    let failover = super::failover::phase(server) == super::failover::Phase::InProgress;
    if valid {
        log(server, "notice", &format!("Trying a partial resynchronization (request {my_id}:{my_next})."));
        let next = my_next.to_string();
        let mut argv: Vec<&[u8]> = vec![b"PSYNC", my_id.as_bytes(), next.as_bytes()];
        if failover {
            argv.push(b"FAILOVER");
        }
        if send_command(&mut s, &argv).is_err() && failover {
            super::failover::abort(server, "Write error to failover target");
            return Err(std::io::Error::other("Write error sending the PSYNC command."));
        }
    } else {
        log(server, "notice", "Partial resynchronization not possible (no cached master)");
        send_command(&mut s, &[b"PSYNC", b"?", b"-1"])?;
    }
    let line = read_line(&mut s, &mut buf, deadline)?;
    if failover && current() {
        if line.starts_with("+CONTINUE") || line.starts_with("+FULLRESYNC") {
            super::failover::clear(server);
        } else {
            super::failover::abort(server, "Failover target rejected psync request");
            return Ok(());
        }
    }
    let mut words = line.split_whitespace();
    let mut loader = crate::persist::aof::Loader::new(server, "master");
    match words.next() {
        Some("+CONTINUE") if valid => {
            log(server, "notice", "Successful partial resynchronization with master.");
            if let Some(new_id) = words.next().filter(|id| *id != my_id) {
                let mut h = replicas.history.lock();
                h.shift_replid(&mut server.replid.lock(), new_id.to_string());
                drop(h);
                log(server, "notice", &format!("Master replication ID changed to {new_id}"));
                // Our replicas learn the new ID by reconnecting.
                replicas.disconnect_replicas();
            }
            if !replicas.history.lock().has_backlog() {
                replicas.history.lock().create_backlog();
            }
            loader.set_db(db);
            log(server, "notice", "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
        }
        Some("+FULLRESYNC") => {
            let replid = words.next().unwrap_or_default().to_string();
            let offset: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            log(server, "notice", &format!("Full resync from master: {replid}:{offset}"));
            full_sync(server, &mut s, &mut buf, &mut loader, (replid, offset), gen, timeout)?;
            if !current() {
                return Ok(());
            }
        }
        _ => return Err(std::io::Error::other(format!("Unexpected reply to PSYNC from master: {line}"))),
    }
    replicas.applied.store(replicas.history.lock().offset, Ordering::Release);
    {
        let mut f = replicas.following.lock();
        f.link_up = true;
        f.sync_in_progress = false;
        f.handshake = false;
        f.last_io = now_secs();
        replicas.link_down.store(false, Ordering::Relaxed);
    }
    stream(server, &mut s, buf, &mut loader, gen, timeout)
}

/// Where a full sync's payload goes before (or while) it is loaded:
/// `repl-diskless-load`.
#[derive(PartialEq, Eq, Clone, Copy)]
enum LoadFrom {
    /// `disabled`: to a temporary file in `dir`, which becomes `dbfilename`
    /// once complete, then loaded from there.
    Disk,
    /// `on-empty-db` with an empty dataset: parsed from the socket as it
    /// arrives.
    Socket,
    /// `swapdb`: kept in memory while the old dataset goes on serving, which
    /// is replaced only once the whole payload arrived.
    Memory,
}

/// `+FULLRESYNC`: reads the RDB payload (`$<len>` then the file, or
/// `$EOF:<mark>` then the file followed by the mark), empties the dataset
/// and loads it; the history restarts at the master's ID and offset.
fn full_sync(
    server: &Arc<Server>,
    s: &mut Link,
    buf: &mut Vec<u8>,
    loader: &mut crate::persist::aof::Loader,
    (replid, offset): (String, u64),
    gen: u64,
    timeout: Duration,
) -> std::io::Result<()> {
    let replicas = &server.replicas;
    {
        let mut f = replicas.following.lock();
        f.sync_in_progress = true;
        f.handshake = false;
    }
    replicas.transfer.start();
    struct Ended<'a>(&'a super::Transfer);
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            self.0.active.store(false, Ordering::Release);
        }
    }
    let _ended = Ended(&replicas.transfer);
    let head = read_line(s, buf, Instant::now() + timeout)?;
    let payload = match head.strip_prefix("$EOF:") {
        Some(mark) => Payload::Marked(mark.as_bytes().to_vec()),
        None => Payload::Sized(head.strip_prefix('$').and_then(|l| l.parse().ok()).ok_or_else(|| {
            std::io::Error::other(format!("Bad protocol from MASTER, the first byte is not '$': {head}"))
        })?),
    };
    let size = match &payload {
        Payload::Sized(len) => *len as i64,
        Payload::Marked(_) => 0,
    };
    replicas.transfer.size.store(size, Ordering::Relaxed);
    // What arrived with the header counts as read.
    replicas.transfer.received(buf.len() as u64);
    let from = match server.config.get("repl-diskless-load").as_deref() {
        Some("swapdb") => LoadFrom::Memory,
        Some("on-empty-db") if dataset_is_empty(server) => LoadFrom::Socket,
        _ => LoadFrom::Disk,
    };
    // (Redis's lines: "receiving <n> bytes from master to disk", "receiving
    // streamed RDB from master with EOF to parser", ...)
    let what = match &payload {
        Payload::Sized(len) => format!("{len} bytes from master"),
        Payload::Marked(_) => "streamed RDB from master with EOF".to_string(),
    };
    let mut last_data = Instant::now();
    let mut received: Option<Vec<u8>> = None;
    /// Clears the loading flag a swapdb load raised, however it ends.
    struct Lower<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Lower<'_> {
        fn drop(&mut self) {
            self.0.store(false, Ordering::SeqCst);
        }
    }
    let mut lower = None;
    let mut file: Option<std::path::PathBuf> = None;
    match from {
        LoadFrom::Disk => {
            log(server, "notice", &format!("MASTER <-> REPLICA sync: receiving {what} to disk"));
            file = Some(receive_to_disk(server, s, buf, &payload, &mut last_data, timeout)?);
        }
        LoadFrom::Memory => {
            log(server, "notice", &format!("MASTER <-> REPLICA sync: receiving {what} to memory"));
            // As Redis: the old dataset keeps serving (async_loading) only
            // when the payload continues the same history; a different
            // replication ID means other data, so clients get LOADING until
            // the new dataset is in (or the old one is back after a failure).
            let same_history = *server.replid.lock() == replid;
            let flag = if same_history { &server.persist.async_loading } else { &server.persist.loading };
            server.persist.begin_loading(size.max(0) as u64);
            flag.store(true, Ordering::SeqCst);
            lower = Some(Lower(flag));
            match receive_to_memory(server, s, buf, &payload, &mut last_data, timeout) {
                Ok(rdb) => received = Some(rdb),
                Err(e) => {
                    // What arrived is dropped; the dataset stays (Redis's lines
                    // for a swapdb load cut short).
                    log(
                        server,
                        "warning",
                        &format!("Failed trying to load the MASTER synchronization DB from socket: {e}"),
                    );
                    log(server, "notice", "MASTER <-> REPLICA sync: Discarding temporary DB in background");
                    return Err(logged());
                }
            }
        }
        LoadFrom::Socket => {
            log(server, "notice", &format!("MASTER <-> REPLICA sync: receiving {what} to parser"));
        }
    }
    let flush = |l: &mut crate::persist::aof::Loader| l.empty_dataset();
    if let Some(rdb) = received {
        let swapped = swap_in(server, loader, &rdb, (replid, offset), gen, flush);
        drop(lower);
        return swapped;
    }
    let _applying = replicas.applying.lock();
    // From here the dataset no longer matches any history until loaded.
    replicas.following.lock().valid_history = false;
    // Our own replicas follow the new history from scratch.
    replicas.disconnect_replicas();
    log(server, "notice", "MASTER <-> REPLICA sync: Flushing old data");
    flush(loader);
    log(server, "notice", "MASTER <-> REPLICA sync: Loading DB in memory");
    let mut target = crate::persist::load::Target::Lock(&server.shards);
    let source = if file.is_some() { "disk" } else { "socket" };
    // A load that fails leaves no half-loaded dataset behind (Redis empties
    // it too); the next try is a full sync.
    let failed = |l: &mut crate::persist::aof::Loader, e: String| {
        log(server, "warning", &e);
        let why = if source == "disk" { ", check server logs." } else { ": the payload did not load" };
        log(server, "warning", &format!("Failed trying to load the MASTER synchronization DB from {source}{why}"));
        flush(l);
        logged()
    };
    let loaded = if let Some(path) = file {
        let f = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(&path)?);
        match crate::persist::load::read_into(server, f, &mut target, false) {
            Ok((_, loaded)) => loaded,
            Err(e) => return Err(failed(loader, e)),
        }
    } else {
        let pre = std::mem::take(buf);
        let limit = match &payload {
            Payload::Sized(len) => Some(*len as u64),
            Payload::Marked(_) => None,
        };
        let sock = SocketReader { s, pre, at: 0, limit, last_data: &mut last_data, timeout, counted: server };
        let input = std::io::BufReader::with_capacity(1 << 16, sock);
        let (mut input, loaded) = match crate::persist::load::read_into(server, input, &mut target, false) {
            Ok(done) => done,
            Err(e) => return Err(failed(loader, e)),
        };
        if let Payload::Marked(mark) = &payload {
            let mut end = vec![0u8; mark.len()];
            if std::io::Read::read_exact(&mut input, &mut end).is_err() || &end != mark {
                log(server, "warning", "Replication stream EOF marker is broken");
                flush(loader);
                return Err(logged());
            }
        }
        // What was read past the payload is the stream's beginning.
        let mut rest = input.buffer().to_vec();
        let sock = input.into_inner();
        rest.extend_from_slice(&sock.pre[sock.at..]);
        *buf = rest;
        loaded
    };
    crate::persist::load::note_loaded(server, &loaded);
    adopt(server, replid, offset);
    Ok(())
}

/// `repl-diskless-load swapdb`: the payload received whole is loaded into a
/// dataset of its own while the old one goes on serving; only once it
/// loaded completely does it replace the old one (a corrupt payload leaves
/// the old dataset, and the history it stands for, as they were: the next
/// try may even continue it).
fn swap_in(
    server: &Arc<Server>,
    loader: &mut crate::persist::aof::Loader,
    rdb: &[u8],
    (replid, offset): (String, u64),
    gen: u64,
    flush: impl Fn(&mut crate::persist::aof::Loader),
) -> std::io::Result<()> {
    let replicas = &server.replicas;
    log(server, "notice", "MASTER <-> REPLICA sync: Loading DB in memory");
    let side = crate::shard::Shards::new(server.shards.len(), server.databases());
    let read = crate::persist::load::read_aside(server, rdb, &side);
    let (loaded, codes) = match read {
        Ok((_, loaded, codes)) => (loaded, codes),
        Err(e) => {
            log(server, "warning", &e);
            log(
                server,
                "warning",
                "Failed trying to load the MASTER synchronization DB from socket: the payload did not load",
            );
            log(server, "notice", "MASTER <-> REPLICA sync: Discarding temporary DB in background");
            discard_in_background(side);
            return Err(logged());
        }
    };
    let _applying = replicas.applying.lock();
    if replicas.generation.load(Ordering::Acquire) != gen {
        // REPLICAOF (or a failover) changed what this server follows while
        // the payload loaded: the old dataset stays.
        discard_in_background(side);
        return Ok(());
    }
    replicas.following.lock().valid_history = false;
    // Our own replicas follow the new history from scratch.
    replicas.disconnect_replicas();
    log(server, "notice", "MASTER <-> REPLICA sync: Swapping active DB with loaded DB");
    // The old dataset goes as a FLUSHALL does (watchers, trackers, a
    // snapshot in progress told), then each shard takes its loaded half.
    flush(loader);
    for (mine, loaded) in server.shards.list.iter().zip(&side.list) {
        let mut mine = mine.lock_blocking();
        std::mem::swap(&mut mine.dbs, &mut loaded.lock_blocking().dbs);
    }
    if !codes.is_empty() {
        if let Err(e) = crate::scripting::functions::load_saved_libraries(server, codes, true) {
            log(server, "warning", &format!("Failed loading library: {e}"));
        }
    }
    discard_in_background(side);
    crate::persist::load::note_loaded(server, &loaded);
    adopt(server, replid, offset);
    Ok(())
}

/// Frees a dataset no client sees on the lazyfree thread (counted by its
/// keys, as Redis counts an asynchronously emptied database).
fn discard_in_background(side: crate::shard::Shards) {
    let keys: usize = side.list.iter().map(|s| s.lock_blocking().dbs.iter().map(|d| d.len()).sum::<usize>()).sum();
    crate::storage::lazyfree::free_later(side, keys as u64);
}

/// An error whose cause was already logged (the retry loop adds no line).
fn logged() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, "(logged)")
}

/// After a full sync loaded: the history restarts at the master's ID and
/// offset, with a fresh backlog.
fn adopt(server: &Server, replid: String, offset: u64) {
    let replicas = &server.replicas;
    {
        let mut h = replicas.history.lock();
        *server.replid.lock() = replid;
        h.clear_replid2();
        h.offset = offset;
        h.free_backlog();
        h.create_backlog();
    }
    {
        let mut f = replicas.following.lock();
        f.valid_history = true;
        f.stream_db = 0;
    }
    log(server, "notice", "MASTER <-> REPLICA sync: Finished with success");
    // The AOF holds the old dataset: as Redis restarts it after a sync, it
    // is switched off and on again, so that its first base is the loaded
    // dataset (until that base is written, the old files stay as they were:
    // a restart replays the old dataset whole, never old and new mixed).
    if server.aof.lock().is_some() || server.persist.aof_initial.load(Ordering::Acquire) {
        if let Some(shared) = server.arc() {
            crate::persist::save::stop_aof(server);
            for _ in 0..10 {
                if crate::persist::aof::enable_at_runtime(&shared).is_ok() {
                    break;
                }
                log(
                    server,
                    "warning",
                    "Failed enabling the AOF after successful master synchronization! Trying it again in one second.",
                );
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
}

/// The RDB payload's framing.
enum Payload {
    /// `$<len>`: that many bytes.
    Sized(usize),
    /// `$EOF:<mark>`: bytes until the mark (diskless masters).
    Marked(Vec<u8>),
}

fn dataset_is_empty(server: &Server) -> bool {
    server.shards.list.iter().all(|s| s.lock_blocking().dbs.iter().all(|d| d.is_empty()))
}

/// The whole payload in memory; what follows it stays in `buf`.
fn receive_to_memory(
    server: &Server,
    s: &mut Link,
    buf: &mut Vec<u8>,
    payload: &Payload,
    last_data: &mut Instant,
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let mut rdb = std::mem::take(buf);
    match payload {
        Payload::Marked(mark) => {
            while !(rdb.len() >= mark.len() && rdb.ends_with(mark)) {
                read_some(server, s, &mut rdb, last_data, timeout)?;
            }
            rdb.truncate(rdb.len() - mark.len());
        }
        Payload::Sized(len) => {
            while rdb.len() < *len {
                read_some(server, s, &mut rdb, last_data, timeout)?;
            }
            *buf = rdb.split_off(*len);
        }
    }
    Ok(rdb)
}

/// The payload written to `temp-<unixtime>.<pid>.rdb` in `dir` as it
/// arrives (the last bytes held back until it is clear they are not the
/// mark), synced, then renamed to `dbfilename`. Returns that path.
fn receive_to_disk(
    server: &Server,
    s: &mut Link,
    buf: &mut Vec<u8>,
    payload: &Payload,
    last_data: &mut Instant,
    timeout: Duration,
) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    let path = crate::persist::save::rdb_path(server);
    let tmp = path.with_file_name(format!("temp-{}.{}.rdb", now_secs(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        let mut pending = std::mem::take(buf);
        match payload {
            Payload::Sized(len) => {
                let mut left = *len;
                loop {
                    let n = pending.len().min(left);
                    f.write_all(&pending[..n])?;
                    left -= n;
                    pending.drain(..n);
                    if left == 0 {
                        break;
                    }
                    read_some(server, s, &mut pending, last_data, timeout)?;
                }
                *buf = pending;
            }
            Payload::Marked(mark) => loop {
                if pending.len() >= mark.len() && pending.ends_with(mark) {
                    f.write_all(&pending[..pending.len() - mark.len()])?;
                    break;
                }
                let keep = mark.len().min(pending.len());
                let n = pending.len() - keep;
                f.write_all(&pending[..n])?;
                pending.drain(..n);
                read_some(server, s, &mut pending, last_data, timeout)?;
            },
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

/// The master's socket as a reader for a payload parsed as it arrives:
/// bytes already received first, then the socket (its short read timeout
/// retried until `repl-timeout` without data), at most `limit` bytes.
struct SocketReader<'a> {
    s: &'a mut Link,
    pre: Vec<u8>,
    at: usize,
    limit: Option<u64>,
    last_data: &'a mut Instant,
    timeout: Duration,
    /// Where the bytes read from the socket are counted.
    counted: &'a Server,
}

impl std::io::Read for SocketReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let want = match self.limit {
            Some(0) => return Ok(0),
            Some(l) => out.len().min(l as usize),
            None => out.len(),
        };
        let n = if self.at < self.pre.len() {
            let n = want.min(self.pre.len() - self.at);
            out[..n].copy_from_slice(&self.pre[self.at..self.at + n]);
            self.at += n;
            n
        } else {
            loop {
                match self.s.read(&mut out[..want]) {
                    Ok(0) => return Err(std::io::Error::other("the master closed the connection")),
                    Ok(n) => {
                        *self.last_data = Instant::now();
                        self.counted.stats.count_repl_input(n as u64);
                        self.counted.replicas.transfer.received(n as u64);
                        break n;
                    }
                    Err(e) if retry_read(&e) => {
                        if self.last_data.elapsed() > self.timeout {
                            return Err(std::io::Error::other("Timeout receiving bulk data from MASTER"));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if let Some(l) = self.limit.as_mut() {
            *l -= n as u64;
        }
        Ok(n)
    }
}

/// Reads what the socket has into `buf`; fails when the master has been
/// silent for `repl-timeout`.
/// A read that may simply be tried again: its timeout passed (the socket
/// has one, so that the loop notices REPLICAOF and shutdown), or a signal
/// interrupted it (SIGSTOP then SIGCONT makes a timed read fail with EINTR:
/// a paused replica must not drop its link when it resumes).
fn retry_read(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
}

fn read_some(
    server: &Server,
    s: &mut Link,
    buf: &mut Vec<u8>,
    last_data: &mut Instant,
    timeout: Duration,
) -> std::io::Result<()> {
    let mut chunk = [0u8; 64 * 1024];
    match s.read(&mut chunk) {
        Ok(0) => Err(std::io::Error::other("the master closed the connection")),
        Ok(n) => {
            server.stats.count_repl_input(n as u64);
            server.replicas.transfer.received(n as u64);
            buf.extend_from_slice(&chunk[..n]);
            *last_data = Instant::now();
            Ok(())
        }
        Err(e) if retry_read(&e) => {
            if last_data.elapsed() > timeout {
                return Err(std::io::Error::other("MASTER timeout: no data nor PING received..."));
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The command stream: applies each command; the offset (and backlog)
/// moves on at command boundaries outside MULTI, so that after a dropped
/// link the replica continues exactly after the last whole unit it applied.
fn stream(
    server: &Arc<Server>,
    s: &mut Link,
    mut buf: Vec<u8>,
    loader: &mut crate::persist::aof::Loader,
    gen: u64,
    timeout: Duration,
) -> std::io::Result<()> {
    let replicas = &server.replicas;
    // The master link as a client (CLIENT LIST flags=M, CLIENT KILL TYPE master).
    let peer = s.socket().peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let local = s.socket().local_addr().map(|a| a.to_string()).unwrap_or_default();
    // Counted like any client (unregister gives a slot back): not subject to maxclients.
    server.clients.admit(usize::MAX);
    let info = server.clients.register(peer, local, std::os::fd::AsRawFd::as_raw_fd(s.socket()));
    info.set_flag('M', true);
    info.replication_link.store(true, Ordering::Relaxed);
    struct Unregister<'a>(&'a Server, u64);
    impl Drop for Unregister<'_> {
        fn drop(&mut self) {
            self.0.clients.unregister(self.1);
        }
    }
    let _unregister = Unregister(server, info.id);
    let mut last_ack = Instant::now() - Duration::from_secs(2);
    let mut last_data = Instant::now();
    let mut scan = 0;
    loop {
        let applying = replicas.applying.lock();
        if replicas.generation.load(Ordering::Acquire) != gen || server.shutting_down.load(Ordering::SeqCst) {
            return Ok(());
        }
        if info.killed.load(Ordering::Acquire) {
            return Err(std::io::Error::other("the master link was killed (CLIENT KILL)"));
        }
        let mut committed = 0;
        let base = replicas.history.lock().offset;
        replicas.applied.store(base, Ordering::Release);
        while let Some(argv) =
            crate::persist::aof::next_stream_command(&buf, &mut scan).map_err(std::io::Error::other)?
        {
            let getack =
                argv.len() >= 2 && crate::util::eq_ic(&argv[0], "replconf") && crate::util::eq_ic(&argv[1], "getack");
            let ping = argv.len() == 1 && crate::util::eq_ic(&argv[0], "ping");
            if getack {
                last_ack = Instant::now() - Duration::from_secs(2);
            } else if !ping {
                // A command this server does not know (or with a wrong
                // arity) is skipped and logged as Redis logs the error it
                // would send its master.
                match crate::commands::registry::resolve(&argv) {
                    Ok(_) => {
                        let _ = loader.apply(argv);
                    }
                    Err(reply) => {
                        let text = reply.error_text().unwrap_or_default();
                        crate::commands::dispatch::unexpected_error(server, "<unknown>", text);
                    }
                }
            }
            if !loader.in_multi() {
                committed = scan;
                replicas.applied.store(base + committed as u64, Ordering::Release);
            }
        }
        if committed > 0 {
            replicas.feed_applied(&buf[..committed]);
            buf.drain(..committed);
            scan -= committed;
            let mut f = replicas.following.lock();
            f.last_io = now_secs();
            f.stream_db = loader.db();
        }
        drop(applying);
        // What was applied reaches the AOF file before the next read (and
        // before an ACK counts it), as Redis writes its AOF buffer before
        // its event loop sleeps: a killed replica keeps what it acknowledged.
        if committed > 0 {
            if let Some(aof) = server.aof.lock().clone() {
                aof.write_through(server.propagation.offset(), server);
            }
        }
        if last_ack.elapsed() >= Duration::from_secs(1) {
            let offset = replicas.history.lock().offset;
            send_command(s, &[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])?;
            last_ack = Instant::now();
        }
        read_some(server, s, &mut buf, &mut last_data, timeout)?;
    }
}
