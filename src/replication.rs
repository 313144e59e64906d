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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The replicas of this master, and connections on their way to become one.
#[derive(Default)]
pub struct Replicas {
    links: Mutex<Vec<Arc<Link>>>,
    /// The listening port each connection announced (client id -> port).
    announced: Mutex<HashMap<u64, u16>>,
    /// Connections whose PSYNC (true) or SYNC (false) was accepted, waiting
    /// for their connection task to hand them over.
    handoff: Mutex<HashMap<u64, bool>>,
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
        self.handoff.lock().insert(client, psync);
    }

    /// Whether the connection asked to become a replica (Some(psync)).
    pub fn take_handoff(&self, client: u64) -> Option<bool> {
        let mut h = self.handoff.lock();
        if h.is_empty() {
            return None;
        }
        h.remove(&client)
    }

    /// Forgets a connection that went away before it became a replica.
    pub fn forget(&self, client: u64) {
        self.announced.lock().remove(&client);
    }

    pub fn links(&self) -> Vec<Arc<Link>> {
        self.links.lock().clone()
    }

    /// Replicas past their full sync.
    pub fn online(&self) -> Vec<Arc<Link>> {
        self.links.lock().iter().filter(|l| l.online.load(Ordering::Acquire)).cloned().collect()
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
pub async fn serve_replica(
    server: &Arc<Server>,
    stream: &mut TcpStream,
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
        let sent = stream.write_all(&head).await.is_ok() && stream.write_all(&rdb).await.is_ok();
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
async fn follow(server: &Arc<Server>, stream: &mut TcpStream, inbuf: &mut BytesMut, info: &ClientInfo, link: &Link) {
    let mut parser = crate::protocol::RequestParser::new();
    loop {
        if server.shutting_down.load(Ordering::SeqCst) || info.killed.load(Ordering::Acquire) {
            return;
        }
        let out = std::mem::take(&mut *link.pending.lock());
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
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
