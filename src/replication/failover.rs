//! FAILOVER: a master hands its role over to one of its replicas without
//! losing a write, as Redis 7.0 does it.
//!
//! 1. `waiting-for-sync`: writes are held back (a pause of its own, beside
//!    CLIENT PAUSE), no PING goes into the stream, and the master watches its
//!    replicas' acknowledgements until the target (or, without `TO`, any
//!    replica) acknowledged the whole stream. With `TIMEOUT` it gives up at
//!    the deadline, or with `FORCE` fails over anyway.
//! 2. `failover-in-progress`: the master follows the target and asks it for
//!    `PSYNC <replid> <offset+1> FAILOVER`; the target, seeing its own master's
//!    ID, turns master and continues the old master's history (`+CONTINUE`).
//!    A `+CONTINUE` or `+FULLRESYNC` ends the failover; a refusal aborts it
//!    and this server is a master again.

use crate::net::listener::log;
use crate::server::Server;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Phase {
    #[default]
    None,
    WaitForSync,
    InProgress,
}

/// The failover under way, if any.
#[derive(Default)]
pub struct State {
    pub phase: Phase,
    pub target: Option<(String, u16)>,
    pub deadline: Option<Instant>,
    pub force: bool,
}

impl Phase {
    /// INFO replication's `master_failover_state`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::None => "no-failover",
            Phase::WaitForSync => "waiting-for-sync",
            Phase::InProgress => "failover-in-progress",
        }
    }
}

/// The current phase.
pub fn phase(server: &Server) -> Phase {
    server.replicas.failover.lock().phase
}

/// FAILOVER's parsed arguments.
pub struct Request {
    pub target: Option<(String, u16)>,
    pub force: bool,
    pub timeout_ms: u64,
}

/// FAILOVER [TO host port] [FORCE] [TIMEOUT ms], its arguments already
/// valid: the checks that depend on the state, then the failover starts
/// (writes held back) and a task drives it. Err is the error's text.
pub fn start(server: &Arc<Server>, req: Request) -> Result<(), &'static str> {
    let mut st = server.replicas.failover.lock();
    if st.phase != Phase::None {
        return Err("FAILOVER already in progress.");
    }
    if server.replicas.following.lock().master.is_some() {
        return Err("FAILOVER is not valid when server is a replica.");
    }
    let links = server.replicas.links();
    if links.is_empty() {
        return Err("FAILOVER requires connected replicas.");
    }
    if req.force && (req.timeout_ms == 0 || req.target.is_none()) {
        return Err("FAILOVER with force option requires both a timeout and target HOST and IP.");
    }
    if let Some((host, port)) = &req.target {
        let Some(link) = links.iter().find(|l| l.ip.eq_ignore_ascii_case(host) && l.port == *port) else {
            return Err("FAILOVER target HOST and PORT is not a replica.");
        };
        if !link.online.load(Ordering::Acquire) {
            return Err("FAILOVER target replica is not online.");
        }
        log(server, "notice", &format!("FAILOVER requested to {host}:{port}."));
    } else {
        log(server, "notice", "FAILOVER requested to any replica.");
    }
    *st = State {
        phase: Phase::WaitForSync,
        target: req.target,
        deadline: (req.timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(req.timeout_ms)),
        force: req.force,
    };
    server.replicas.failing_over.store(true, Ordering::Release);
    server.pause.hold_writes_for_failover(true);
    drop(st);
    let srv = server.clone();
    tokio::spawn(async move { drive(srv).await });
    Ok(())
}

/// Waits for the target to catch up (or the deadline), then fails over.
async fn drive(server: Arc<Server>) {
    loop {
        let notified = server.replicas.acks.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !step(&server) {
            return;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

/// One look at the failover waiting for sync; false once it left that phase.
fn step(server: &Arc<Server>) -> bool {
    let mut st = server.replicas.failover.lock();
    if st.phase != Phase::WaitForSync || server.shutting_down.load(Ordering::Relaxed) {
        return false;
    }
    if st.deadline.is_some_and(|d| Instant::now() >= d) {
        if st.force {
            let (host, port) = st.target.clone().unwrap_or_default();
            log(server, "notice", &format!("FAILOVER to {host}:{port} time out exceeded, failing over."));
            st.phase = Phase::InProgress;
            drop(st);
            let guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
            become_replica_of(server, host, port);
            drop(guards);
        } else {
            drop(st);
            abort(server, "Replica never caught up before timeout");
        }
        return false;
    }
    let offset = server.replicas.offset();
    let links = server.replicas.links();
    let synced = |l: &&Arc<super::Link>| l.ack.load(Ordering::Acquire) == offset;
    let caught_up = match &st.target {
        Some((host, port)) => links.iter().find(|l| l.ip.eq_ignore_ascii_case(host) && l.port == *port).filter(synced),
        None => links.iter().find(synced),
    };
    let Some(link) = caught_up.cloned() else {
        return true;
    };
    // A write that passed the pause before it began may still be on its way
    // to the stream: with every shard held, none is, and once this server
    // follows the target any later one is refused (READONLY).
    let guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
    if link.ack.load(Ordering::Acquire) != server.replicas.offset() {
        return true;
    }
    let (host, port) = (link.ip.clone(), link.port);
    st.target = Some((host.clone(), port));
    st.phase = Phase::InProgress;
    drop(st);
    log(server, "notice", &format!("Failover target {host}:{port} is synced, failing over."));
    become_replica_of(server, host, port);
    drop(guards);
    false
}

/// This master follows the failover's target (whose PSYNC carries FAILOVER).
fn become_replica_of(server: &Arc<Server>, host: String, port: u16) {
    let _ = server.config.set("replicaof", &format!("{host} {port}"), true);
    super::follow_master(server, host, port);
}

/// Ends the failover: writes go on (as a replica they are refused).
pub fn clear(server: &Server) {
    let mut st = server.replicas.failover.lock();
    if st.phase == Phase::None {
        return;
    }
    *st = State::default();
    server.replicas.failing_over.store(false, Ordering::Release);
    server.pause.hold_writes_for_failover(false);
}

/// FAILOVER ABORT, a deadline passed without FORCE, or the target refused:
/// a server that already follows the target is a master again.
pub fn abort(server: &Server, why: &str) {
    let (phase, target) = {
        let st = server.replicas.failover.lock();
        (st.phase, st.target.clone())
    };
    if phase == Phase::None {
        return;
    }
    match target {
        Some((host, port)) => log(server, "notice", &format!("FAILOVER to {host}:{port} aborted: {why}")),
        None => log(server, "notice", &format!("FAILOVER to any replica aborted: {why}")),
    }
    if phase == Phase::InProgress {
        super::replica::unset_master(server);
        let _ = server.config.set("replicaof", "", true);
    }
    clear(server);
}

/// `PSYNC replid offset FAILOVER` received: when `replid` is this server's
/// own (its master's, for a synced replica), it turns master so that the
/// PSYNC continues its history. Err is the error reply's text.
pub fn psync_failover(server: &Server, replid: &str, client: &str) -> Result<(), &'static str> {
    if *server.replid.lock() != replid {
        return Err("PSYNC FAILOVER replid must match my replid.");
    }
    if server.replicas.following.lock().master.is_some() {
        super::replica::unset_master(server);
        let _ = server.config.set("replicaof", "", true);
    }
    log(server, "notice", &format!("MASTER MODE enabled (failover request from '{client}')"));
    Ok(())
}
