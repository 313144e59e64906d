//! Replication, master side: a connection whose PSYNC or SYNC was accepted
//! becomes a replica link. PSYNC with a replication ID this server knows
//! (its own, or the previous one up to `second_repl_offset`) and an offset
//! the backlog still holds continues the replica's stream (`+CONTINUE`);
//! any other request gets a full resynchronization: the RDB snapshot of the
//! dataset, then the propagated write stream from the snapshot's instant
//! on. The subscription is taken with every shard held, at the same instant
//! as the snapshot, so the replica gets every write exactly once.
//!
//! The link leaves the ordinary request path: a task of its own writes the
//! stream to it and reads its `REPLCONF ACK <offset>` reports (ROLE, INFO
//! and WAIT use them).

use super::now_secs;
use crate::net::client::ClientInfo;
use crate::net::listener::log;
use crate::propagate::Subscriber;
use crate::server::Server;
use bytes::BytesMut;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a connection asked for.
#[derive(Clone, Debug)]
pub enum SyncRequest {
    /// SYNC: a full sync with no `+FULLRESYNC` line.
    Sync,
    /// PSYNC replid offset (`?` and -1: a full sync on purpose).
    Psync { replid: String, offset: i64 },
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
    /// Waiting for its diskless full sync to start (`repl-diskless-sync-delay`).
    waiting: AtomicBool,
    /// A disk-based full sync sends it the saved file (INFO's `send_bulk`).
    pub sending_file: AtomicBool,
    /// The shared diskless transfer it joined (set as `waiting` ends).
    share: Mutex<Option<Joined>>,
    /// Its task is leaving: a snapshot's instant no longer subscribes it.
    gone: AtomicBool,
    /// The replica's connection (CLIENT KILL, a master turning replica).
    pub client: Arc<ClientInfo>,
    pending: Mutex<Vec<u8>>,
    notify: tokio::sync::Notify,
}

impl Link {
    /// Memory holding the stream not yet sent to this replica.
    pub fn pending_memory(&self) -> usize {
        self.pending.lock().capacity()
    }
}

impl Subscriber for Link {
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

/// The snapshot for a full sync (BGSAVE's, no stop of the world) and the
/// subscription of `links` to the write stream, both taken at one instant
/// with every shard held. The first replica creates the backlog, with a new
/// replication ID (no past history to continue). `on_instant` gets the
/// replication ID and the offset the RDB stands for. Blocks.
fn snapshot_and_subscribe_to<W: std::io::Write>(
    server: &Server,
    links: Vec<Arc<Link>>,
    out: W,
    on_instant: impl FnOnce(&str, u64),
) -> std::io::Result<W> {
    let replicas = &server.replicas;
    // A replica serving a replica of its own (chained) passes its master's
    // stream on from the offset its dataset stands for at the snapshot's
    // instant (every shard held: no command is being applied).
    let master = replicas.following.lock().master.is_none();
    if !master {
        return crate::persist::save::snapshot_for_replica_to(server, out, || {
            let mut forward = replicas.forward.lock();
            let from = replicas.applied.load(Ordering::Acquire);
            forward.extend(links.into_iter().filter(|l| !l.gone.load(Ordering::Acquire)).map(|l| (l, from)));
            drop(forward);
            on_instant(&server.replid.lock(), from);
        });
    }
    crate::persist::save::snapshot_for_replica_to(server, out, || {
        let (replid, offset) = server.propagation.with_subscribers(true, |subs, stream_at| {
            let live = links.into_iter().filter(|l| !l.gone.load(Ordering::Acquire));
            subs.extend(live.map(|l| l as Arc<dyn Subscriber>));
            let mut h = replicas.history.lock();
            if !h.has_backlog() {
                *server.replid.lock() = crate::server::random_id();
                h.clear_replid2();
                h.create_backlog();
            }
            if !replicas.feeding.swap(true, Ordering::AcqRel) {
                h.attached_at(stream_at);
                subs.push(replicas.feed.clone());
            }
            (server.replid.lock().clone(), h.offset)
        });
        on_instant(&replid, offset);
    })
}

/// PSYNC's partial resynchronization: when the request continues this
/// server's history and the backlog holds the rest, the link gets the
/// missing bytes and follows the stream from there (both under the
/// stream's lock, so nothing is lost or doubled). Returns the replication
/// ID and the bytes sent, or why not.
fn try_partial(server: &Server, link: &Arc<Link>, replid: &str, from: i64) -> Result<(String, usize), String> {
    let me = server.replid.lock().clone();
    if server.replicas.following.lock().master.is_some() {
        // Chained: from the backlog of the master's stream, then that stream
        // as it is applied (the forward list held: the stream waits).
        let mut forward = server.replicas.forward.lock();
        let h = server.replicas.history.lock();
        let bytes = backlog_since(&h, &me, link, replid, from)?;
        link.pending.lock().extend_from_slice(&bytes);
        forward.push((link.clone(), h.offset));
        return Ok((me, bytes.len()));
    }
    let sub: Arc<dyn Subscriber> = link.clone();
    server.propagation.with_subscribers(false, |subs, _| {
        let h = server.replicas.history.lock();
        let me = server.replid.lock().clone();
        let bytes = backlog_since(&h, &me, link, replid, from)?;
        link.pending.lock().extend_from_slice(&bytes);
        subs.push(sub);
        Ok((me, bytes.len()))
    })
}

/// Subscribes `link` to the write stream from this instant: the offset a
/// FULLRESYNC without keys announces (what follows it reaches the link).
fn subscribe_now(server: &Server, link: &Arc<Link>) -> u64 {
    if server.replicas.following.lock().master.is_some() {
        let mut forward = server.replicas.forward.lock();
        let offset = server.replicas.history.lock().offset;
        forward.push((link.clone(), offset));
        return offset;
    }
    let sub: Arc<dyn Subscriber> = link.clone();
    // A new replica starts in database 0: the next emission names its own.
    server.propagation.with_subscribers(true, |subs, _| {
        let offset = server.replicas.history.lock().offset;
        subs.push(sub);
        offset
    })
}

/// The backlog's bytes from offset `from`, when `replid` is this server's
/// ID (or the previous one, up to where it was valid) and the backlog still
/// holds them; else why not (the log line).
fn backlog_since(h: &super::History, me: &str, link: &Link, replid: &str, from: i64) -> Result<Vec<u8>, String> {
    if replid != me {
        if replid != h.replid2 {
            return Err(format!(
                "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{replid}', my \
                 replication IDs are '{me}' and '{}')",
                h.replid2
            ));
        }
        if from > h.second_offset {
            return Err(format!(
                "Partial resynchronization not accepted: Requested offset for second ID was {from}, but I can reply \
                 up to {}",
                h.second_offset
            ));
        }
    }
    u64::try_from(from).ok().and_then(|f| h.since(f)).ok_or_else(|| {
        format!(
            "Unable to partial resync with replica {}:{} for lack of backlog (Replica request was: {from}).",
            link.ip, link.port
        )
    })
}

/// One replica's part of a diskless transfer that several replicas may
/// share: the snapshot's instant (replication ID and offset), the end mark,
/// and the RDB's bytes as the one walk produces them (an empty piece last
/// when the walk completed).
struct Joined {
    at: tokio::sync::oneshot::Receiver<(String, u64)>,
    mark: Arc<str>,
    pieces: tokio::sync::mpsc::Receiver<Arc<[u8]>>,
}

/// Who starts diskless transfers: one at a time, so that a replica is
/// claimed by one transfer only.
static DISKLESS_START: Mutex<()> = Mutex::new(());

/// `repl-diskless-sync-delay`: a diskless transfer starts that many seconds
/// after the replica asked, or as soon as `repl-diskless-sync-max-replicas`
/// replicas wait for one (0: no such limit). The replica whose wait ends
/// first starts one walk of the dataset for every replica waiting then, as
/// Redis forks one child for them all; the others join it. A newline a
/// second keeps the link alive meanwhile, as Redis does. None when the
/// replica went away.
async fn wait_for_diskless_start<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Arc<Server>,
    stream: &mut S,
    inbuf: &mut BytesMut,
    link: &Arc<Link>,
) -> Option<Joined> {
    let asked = std::time::Instant::now();
    let mut last_newline = asked;
    link.waiting.store(true, Ordering::Release);
    loop {
        if let Some(joined) = link.share.lock().take() {
            return Some(joined);
        }
        let delay = server.config.get_i64("repl-diskless-sync-delay").max(0) as u64;
        let max = server.config.get_i64("repl-diskless-sync-max-replicas").max(0) as usize;
        let waiting = server.replicas.links().iter().filter(|l| l.waiting.load(Ordering::Acquire)).count();
        if asked.elapsed().as_secs() >= delay || (max > 0 && waiting >= max) {
            start_shared_diskless(server);
            continue;
        }
        if last_newline.elapsed().as_secs() >= 1 {
            last_newline = std::time::Instant::now();
            if stream.write_all(b"\n").await.is_err() || stream.flush().await.is_err() {
                stop_waiting(link);
                return None;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            r = stream.read_buf(inbuf) => if matches!(r, Ok(0) | Err(_)) {
                stop_waiting(link);
                return None;
            },
            _ = server.shutdown.notified() => {
                stop_waiting(link);
                return None;
            }
        }
        if server.shutting_down.load(Ordering::SeqCst) || link.client.killed.load(Ordering::Acquire) {
            stop_waiting(link);
            return None;
        }
    }
}

/// A replica that went away while it waited: no transfer claims it any
/// more, and one that already did leaves it out (its receiver dropped).
fn stop_waiting(link: &Link) {
    let _one = DISKLESS_START.lock();
    link.waiting.store(false, Ordering::Release);
    drop(link.share.lock().take());
}

/// Starts one diskless transfer for every replica waiting for one: one
/// snapshot and walk, its bytes handed to each replica's task.
fn start_shared_diskless(server: &Arc<Server>) {
    let _one = DISKLESS_START.lock();
    let mark: Arc<str> = crate::server::random_id().into();
    let mut links = Vec::new();
    let mut outs = Vec::new();
    let mut instants = Vec::new();
    for l in server.replicas.links() {
        if !l.waiting.load(Ordering::Acquire) {
            continue;
        }
        let (tx, pieces) = tokio::sync::mpsc::channel(16);
        let (at_tx, at) = tokio::sync::oneshot::channel();
        *l.share.lock() = Some(Joined { at, mark: mark.clone(), pieces });
        l.waiting.store(false, Ordering::Release);
        outs.push(tx);
        instants.push(at_tx);
        links.push(l);
    }
    if links.is_empty() {
        return;
    }
    log(server, "notice", "Starting BGSAVE for SYNC with target: replicas sockets");
    let srv = server.clone();
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(64 * 1024, FanOut(outs));
        let walked = snapshot_and_subscribe_to(&srv, links, out, |replid, offset| {
            for t in instants {
                let _ = t.send((replid.to_string(), offset));
            }
        })
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()));
        if let Ok(mut fan) = walked {
            // The empty piece: the walk completed.
            let _ = std::io::Write::write_all(&mut fan, &[]);
            fan.end();
        }
    });
}

/// Passes the RDB's bytes, as the walk produces them, to the tasks that
/// write them to the replicas' sockets (it blocks while the slowest lags:
/// the walk holds no shard while it writes). A replica that went away is
/// left out; with none left the walk stops.
struct FanOut(Vec<tokio::sync::mpsc::Sender<Arc<[u8]>>>);

impl FanOut {
    /// The last piece, empty: the payload is complete.
    fn end(&mut self) {
        let done: Arc<[u8]> = Arc::from(&[][..]);
        for tx in &self.0 {
            let _ = tx.blocking_send(done.clone());
        }
    }
}

impl std::io::Write for FanOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let piece: Arc<[u8]> = Arc::from(buf);
        self.0.retain(|tx| tx.blocking_send(piece.clone()).is_ok());
        if self.0.is_empty() {
            return Err(std::io::Error::other("the replicas went away"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A diskless full sync (`repl-diskless-sync yes`, the replica announced
/// `capa eof`): `$EOF:<40 random characters>`, the RDB streamed to the
/// socket as the shared walk produces it, and the same 40 characters again.
/// True when all of it was sent.
async fn full_sync_diskless<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Arc<Server>,
    stream: &mut S,
    link: &Arc<Link>,
    req: &SyncRequest,
    joined: Joined,
) -> bool {
    let Joined { at, mark, mut pieces } = joined;
    let Ok((replid, offset)) = at.await else {
        return false;
    };
    link.ack.store(offset, Ordering::Release);
    let mut head = Vec::new();
    if matches!(req, SyncRequest::Psync { .. }) {
        head.extend_from_slice(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
    }
    head.extend_from_slice(format!("$EOF:{mark}\r\n").as_bytes());
    if stream.write_all(&head).await.is_err() {
        return false;
    }
    let mut complete = false;
    // A replica that takes nothing for `repl-timeout` is given up, as Redis
    // does: the walk it shares waits for its slowest replica.
    let timeout = std::time::Duration::from_secs(server.config.get_i64("repl-timeout").max(1) as u64);
    loop {
        // CLIENT KILL of the replica ends its transfer at once (the walk it
        // shares goes on for the others).
        let piece = tokio::select! {
            p = pieces.recv() => p,
            _ = link.client.kill_notify.notified() => {
                if link.client.killed.load(Ordering::Acquire) {
                    return false;
                }
                continue;
            }
        };
        let Some(piece) = piece else { break };
        if piece.is_empty() {
            complete = true;
            break;
        }
        // (Returning drops the receiver: the walk leaves this replica out.)
        match tokio::time::timeout(timeout, stream.write_all(&piece)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return false,
            Err(_) => {
                log(
                    server,
                    "warning",
                    &format!("Disconnecting timedout replica (streaming sync): {}:{}", link.ip, link.port),
                );
                return false;
            }
        }
        server.stats.count_repl_output(piece.len() as u64);
    }
    if !complete || stream.write_all(mark.as_bytes()).await.is_err() {
        return false;
    }
    server.stats.count_repl_output(mark.len() as u64);
    stream.flush().await.is_ok()
}

/// A full sync through the disk (`repl-diskless-sync no`, or a replica
/// without `capa eof`): the snapshot is saved to `dbfilename` in `dir`, as
/// Redis's BGSAVE for replication does, then the file is sent with its
/// length (`$<len>`). True when all of it was sent.
async fn full_sync_disk<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Arc<Server>,
    stream: &mut S,
    link: &Arc<Link>,
    req: &SyncRequest,
) -> bool {
    let (srv, l) = (server.clone(), link.clone());
    let saved = tokio::task::spawn_blocking(move || -> std::io::Result<(std::path::PathBuf, String, u64)> {
        let path = crate::persist::save::rdb_path(&srv);
        let tmp = path.with_file_name(format!("temp-{}-repl.rdb", std::process::id()));
        let file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let mut at = (String::new(), 0);
        let file = snapshot_and_subscribe_to(&srv, vec![l], file, |replid, offset| at = (replid.to_string(), offset))
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()));
        match file.and_then(|f| f.sync_all()) {
            Ok(()) => std::fs::rename(&tmp, &path)?,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
        Ok((path, at.0, at.1))
    })
    .await;
    let Ok(Ok((path, replid, offset))) = saved else {
        return false;
    };
    link.ack.store(offset, Ordering::Release);
    let Ok(file) = std::fs::File::open(&path) else {
        return false;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    let mut head = Vec::new();
    if matches!(req, SyncRequest::Psync { .. }) {
        head.extend_from_slice(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
    }
    head.extend_from_slice(format!("${len}\r\n").as_bytes());
    link.sending_file.store(true, Ordering::Relaxed);
    if stream.write_all(&head).await.is_err() {
        return false;
    }
    // Read on a blocking thread (the file may be replaced meanwhile by a
    // BGSAVE: the open handle is not).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let reader = tokio::task::spawn_blocking(move || {
        let mut file = file;
        let mut left = len;
        while left > 0 {
            let mut buf = vec![0u8; (64 * 1024).min(left as usize)];
            match std::io::Read::read(&mut file, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.blocking_send(buf).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut sent = 0u64;
    while let Some(chunk) = rx.recv().await {
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
        sent += chunk.len() as u64;
    }
    drop(rx);
    let _ = reader.await;
    if sent != len {
        return false;
    }
    server.stats.count_repl_output(sent);
    stream.flush().await.is_ok()
}

/// A full sync whose RDB leaves the keys out (`REPLCONF rdb-filter-only`,
/// `redis-cli --functions-rdb`): the function libraries (`functions`) or
/// nothing. It is built at once, shared with no other replica and not
/// delayed by `repl-diskless-sync-delay`. `offset`: where the write stream
/// that follows it starts (`redis-cli --replica` prints it). True when all
/// of it was sent.
async fn full_sync_filtered<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Arc<Server>,
    stream: &mut S,
    req: &SyncRequest,
    eof: bool,
    functions: bool,
    offset: u64,
) -> bool {
    let codes = if functions { crate::scripting::functions::library_codes(server) } else { Vec::new() };
    let opts = crate::persist::save::writer_options(server, false);
    let rdb = crate::persist::rdb::RdbWriter::new(Vec::new(), &opts).and_then(|mut w| {
        for code in &codes {
            w.function(code)?;
        }
        w.finish()
    });
    let Ok(rdb) = rdb else {
        return false;
    };
    let mut out = Vec::with_capacity(rdb.len() + 160);
    if matches!(req, SyncRequest::Psync { .. }) {
        out.extend_from_slice(format!("+FULLRESYNC {} {offset}\r\n", server.replid.lock()).as_bytes());
    }
    let mark = crate::server::random_id();
    if eof {
        out.extend_from_slice(format!("$EOF:{mark}\r\n").as_bytes());
    } else {
        out.extend_from_slice(format!("${}\r\n", rdb.len()).as_bytes());
    }
    out.extend_from_slice(&rdb);
    if eof {
        out.extend_from_slice(mark.as_bytes());
    }
    server.stats.net_output_bytes.fetch_add(out.len() as u64, Ordering::Relaxed);
    stream.write_all(&out).await.is_ok() && stream.flush().await.is_ok()
}

/// After a full sync's payload: a replica that asked for the RDB only
/// (`REPLCONF rdb-only 1`: redis-cli --rdb) is done; any other follows the
/// write stream. Unless `at_once`, the stream waits for the replica's first
/// ACK: after an EOF-marked payload the mark must be the last bytes it reads.
#[allow(clippy::too_many_arguments)]
async fn after_payload<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Arc<Server>,
    stream: &mut S,
    inbuf: &mut BytesMut,
    info: &Arc<ClientInfo>,
    link: &Arc<Link>,
    name: &str,
    rdb_only: bool,
    at_once: bool,
) {
    if rdb_only {
        log(
            server,
            "notice",
            &format!("RDB transfer completed, rdb only replica ({name}) should be disconnected asap"),
        );
        return;
    }
    follow(server, stream, inbuf, info, link, at_once).await;
}

/// Serves a connection whose PSYNC/SYNC was accepted, until the replica
/// goes away: partial or full sync, then the write stream.
pub async fn serve_replica<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Arc<Server>,
    stream: &mut S,
    inbuf: &mut BytesMut,
    info: &Arc<ClientInfo>,
    req: SyncRequest,
) {
    let replicas = &server.replicas;
    let (port, psync2, eof) = replicas.announced.lock().remove(&info.id).unwrap_or((0, false, false));
    let rdb_request = replicas.take_rdb_request(info.id);
    // The address the replica announced (`replica-announce-ip`), else the
    // connection's: what ROLE and INFO show and FAILOVER TO matches.
    let ip = replicas.take_announced_ip(info.id).unwrap_or_else(|| {
        info.addr.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']'])).unwrap_or("").to_string()
    });
    let link = Arc::new(Link {
        ip,
        port,
        ack: AtomicU64::new(0),
        last_ack: AtomicU64::new(now_secs()),
        online: AtomicBool::new(false),
        waiting: AtomicBool::new(false),
        sending_file: AtomicBool::new(false),
        share: Mutex::new(None),
        gone: AtomicBool::new(false),
        client: info.clone(),
        pending: Mutex::new(Vec::new()),
        notify: tokio::sync::Notify::new(),
    });
    info.set_flag('S', true);
    // As Redis names a replica in its log (no REPLCONF listening-port: redis-cli --rdb).
    let name = match link.port {
        0 => format!("{}:<unknown-replica-port>", link.ip),
        port => format!("{}:{port}", link.ip),
    };
    replicas.links.lock().push(link.clone());
    *replicas.idle_since.lock() = None;
    let sub: Arc<dyn Subscriber> = link.clone();
    let mut partial = None;
    if let SyncRequest::Psync { replid, offset } = &req {
        log(server, "notice", &format!("Replica {name} asks for synchronization"));
        if replid == "?" {
            log(server, "notice", &format!("Full resync requested by replica {name}"));
        } else if !rdb_request.filtered {
            match try_partial(server, &link, replid, *offset) {
                Ok(done) => partial = Some((done, *offset)),
                Err(why) => {
                    log(server, "notice", &why);
                    replicas.sync_partial_err.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    } else {
        log(server, "notice", &format!("Replica {name} asks for synchronization"));
    }
    if rdb_request.filtered {
        // Keys left out: the RDB is built at once. Unless the replica asked
        // for the RDB only (redis-cli --functions-rdb), the write stream
        // follows it from the RDB's instant (redis-cli --replica).
        replicas.sync_full.fetch_add(1, Ordering::Relaxed);
        let offset = if rdb_request.rdb_only { replicas.history.lock().offset } else { subscribe_now(server, &link) };
        if full_sync_filtered(server, stream, &req, eof, rdb_request.functions, offset).await {
            if !rdb_request.rdb_only {
                link.online.store(true, Ordering::Release);
                link.last_ack.store(now_secs(), Ordering::Relaxed);
                log(server, "notice", &format!("Synchronization with replica {name} succeeded"));
            }
            after_payload(server, stream, inbuf, info, &link, &name, rdb_request.rdb_only, !eof).await;
        }
    } else if let Some(((replid, n), from)) = partial {
        replicas.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
        link.ack.store(from.max(1) as u64 - 1, Ordering::Release);
        link.online.store(true, Ordering::Release);
        let head = if psync2 { format!("+CONTINUE {replid}\r\n") } else { "+CONTINUE\r\n".to_string() };
        log(
            server,
            "notice",
            &format!(
                "Partial resynchronization request from {name} accepted. Sending {n} bytes of backlog starting from \
                 offset {from}."
            ),
        );
        if stream.write_all(head.as_bytes()).await.is_ok() {
            follow(server, stream, inbuf, info, &link, true).await;
        }
    } else {
        replicas.sync_full.fetch_add(1, Ordering::Relaxed);
        let diskless = eof && server.config.get("repl-diskless-sync").as_deref() == Some("yes");
        let sent = if diskless {
            match wait_for_diskless_start(server, stream, inbuf, &link).await {
                Some(joined) => full_sync_diskless(server, stream, &link, &req, joined).await,
                None => false,
            }
        } else {
            log(server, "notice", "Starting BGSAVE for SYNC with target: disk");
            full_sync_disk(server, stream, &link, &req).await
        };
        if sent {
            link.online.store(true, Ordering::Release);
            link.last_ack.store(now_secs(), Ordering::Relaxed);
            if diskless {
                log(
                    server,
                    "notice",
                    &format!(
                        "Streamed RDB transfer with replica {name} succeeded (socket). Waiting for REPLCONF ACK from \
                         slave to enable streaming"
                    ),
                );
            } else {
                log(server, "notice", &format!("Synchronization with replica {name} succeeded"));
            }
            after_payload(server, stream, inbuf, info, &link, &name, rdb_request.rdb_only, !diskless).await;
        }
    }
    {
        // Subscribed even when the snapshot failed after its instant.
        // Subscribers leave with every shard entered (see `propagate::Unit`);
        // a shared snapshot's instant after this one leaves it out.
        link.gone.store(true, Ordering::Release);
        stop_waiting(&link);
        let (srv, link_for_exit) = (server.clone(), link.clone());
        let _ = tokio::task::spawn_blocking(move || {
            srv.replicas.forward.lock().retain(|(l, _)| !Arc::ptr_eq(l, &link_for_exit));
            let guards: Vec<_> = srv.shards.list.iter().map(|s| s.lock_blocking()).collect();
            srv.propagation.unsubscribe(&sub);
            drop(guards);
        })
        .await;
    }
    {
        let mut links = replicas.links.lock();
        links.retain(|x| !Arc::ptr_eq(x, &link));
        if links.is_empty() {
            *replicas.idle_since.lock() = Some(std::time::Instant::now());
        }
    }
    replicas.acks.notify_waiters();
    log(server, "notice", &format!("Connection with replica {name} lost."));
}

/// The replica class of `client-output-buffer-limit` applied to the bytes
/// waiting for a replica: the hard limit at once, the soft one once it held
/// for longer than its seconds. Logs as Redis does when it is overcome.
fn over_output_limit(
    server: &Server,
    info: &ClientInfo,
    queued: usize,
    soft_since: &mut Option<std::time::Instant>,
) -> bool {
    let value = server.config.get("client-output-buffer-limit").unwrap_or_default();
    let Some((hard, soft, secs)) = crate::config::output_limits::output_limits(&value, "slave") else {
        return false;
    };
    let queued = queued as u64;
    let over = if hard > 0 && queued >= hard {
        true
    } else if soft > 0 && queued >= soft {
        let since = *soft_since.get_or_insert_with(std::time::Instant::now);
        since.elapsed() > std::time::Duration::from_secs(secs)
    } else {
        *soft_since = None;
        false
    };
    if over {
        log(
            server,
            "warning",
            &format!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                info.id, info.addr
            ),
        );
    }
    over
}

/// The streaming phase: sends what the stream appended, reads the
/// replica's acknowledgements.
async fn follow<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Arc<Server>,
    stream: &mut S,
    inbuf: &mut BytesMut,
    info: &ClientInfo,
    link: &Link,
    mut streaming: bool,
) {
    let mut parser = crate::protocol::RequestParser::new();
    let mut soft_since = None;
    loop {
        if server.shutting_down.load(Ordering::SeqCst) || info.killed.load(Ordering::Acquire) {
            return;
        }
        if over_output_limit(server, info, link.pending.lock().len(), &mut soft_since) {
            return;
        }
        let out = if streaming { std::mem::take(&mut *link.pending.lock()) } else { Vec::new() };
        if !out.is_empty() {
            // The replica's output buffer, for client_recent_max_output_buffer.
            info.note_output(out.len());
            // A replica that stops reading: what waits for it is checked
            // against its limits while the write waits.
            let write = stream.write_all(&out);
            tokio::pin!(write);
            loop {
                tokio::select! {
                    r = &mut write => match r {
                        Ok(()) => break,
                        Err(_) => return,
                    },
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                        let queued = out.len() + link.pending.lock().len();
                        if over_output_limit(server, info, queued, &mut soft_since) {
                            return;
                        }
                    }
                }
            }
            // (The flush hands a TLS stream's records to the socket.)
            if stream.flush().await.is_err() {
                return;
            }
            server.stats.count_repl_output(out.len() as u64);
            continue;
        }
        let _ = stream.flush().await;
        tokio::select! {
            _ = link.notify.notified(), if streaming => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(250)), if !streaming => {}
            r = stream.read_buf(inbuf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => loop {
                    match parser.parse(inbuf, 1 << 20, true) {
                        Ok(Some(args)) => {
                            let ack = args.len() >= 3
                                && crate::util::eq_ic(&args[0], "replconf")
                                && crate::util::eq_ic(&args[1], "ack");
                            streaming |= ack;
                            if let Some(off) = ack.then(|| crate::util::parse_i64(&args[2])).flatten() {
                                link.ack.store(off.max(0) as u64, Ordering::Release);
                                link.last_ack.store(now_secs(), Ordering::Relaxed);
                                server.replicas.acks.notify_waiters();
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
