//! Waiting for a blocking command (BLPOP, BZPOPMIN, XREAD BLOCK, ...).
//!
//! A blocked client never holds a shard while it waits, and it is the only
//! one that pops for itself. Under the locks of all its keys' shards it runs
//! the command through dispatch; if that answers `Reply::Blocked` it joins the
//! FIFO queue of every key (still under the locks, so no write can slip in
//! between) and waits. A write to a key (`Ctx::written`) wakes the first
//! queued client of that key; the client retries through dispatch under the
//! locks and either is served (then leaves every queue) or finds the element
//! gone and keeps its place. Whenever a client leaves a queue while the key
//! still holds data, the next client in line is woken, so a push of N
//! elements serves N waiters in arrival order.

use super::Session;
use crate::commands::blocking::{self as cmd_blocking, join, leave, pass_on};
use crate::commands::dispatch::{self, Origin, Tally};
use crate::commands::registry::Command;
use crate::commands::Ctx;
use crate::net::client::ClientInfo;
use crate::net::connection::Stream;
use crate::protocol::Reply;
use crate::server::Server;
use crate::shard::waiters::Waiter;
use crate::shard::ShardData;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

enum Wake {
    Notified,
    Timeout,
    Unblocked,
    Gone,
    /// Cluster mode: the keys' slot is no longer served here.
    Redirected(Reply),
}

/// Marks the client blocked (INFO `blocked_clients`, CLIENT LIST `flags=b`)
/// for as long as it lives; `unblockable` for a blocking command, which
/// CLIENT UNBLOCK may end (a client held by CLIENT PAUSE is blocked too, but
/// not unblockable); `timed` when the wait has a timeout (INFO
/// `clients_in_timeout_table`).
pub struct Blocked(Arc<Server>, Arc<ClientInfo>, bool, bool);

impl Blocked {
    pub fn new(s: &Session, unblockable: bool, timed: bool) -> Blocked {
        let info = s.client.info.clone();
        if unblockable {
            info.unblock_request.store(0, Ordering::Relaxed);
            info.blocked.store(true, Ordering::Release);
        }
        s.server.stats.blocked_clients.fetch_add(1, Ordering::Relaxed);
        if timed {
            s.server.stats.clients_in_timeout_table.fetch_add(1, Ordering::Relaxed);
        }
        info.set_flag('b', true);
        Blocked(s.server.clone(), info, unblockable, timed)
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        if self.2 {
            self.1.blocked.store(false, Ordering::Release);
        }
        self.0.stats.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        if self.3 {
            self.0.stats.clients_in_timeout_table.fetch_sub(1, Ordering::Relaxed);
        }
        self.1.set_flag('b', false);
    }
}

/// Runs a blocking command whose keys live on the shards `ids` (ascending).
/// How often a client blocked on a cluster node checks that its keys' slot
/// is still served here (Redis's clientsCron checks each client about as often).
const CLUSTER_RECHECK: Duration = Duration::from_millis(100);

/// Redis's clusterRedirectBlockedClientIfNeeded: the error that unblocks a
/// client whose keys' slot is no longer served here (`MOVED`, or
/// `CLUSTERDOWN` when unassigned or the cluster is down).
fn cluster_redirect(
    server: &crate::server::Server,
    cmd: Command,
    keys: &[Bytes],
    client: &crate::net::client::ClientState,
) -> Option<Reply> {
    let cluster = server.cluster.as_deref()?;
    let first = keys.first()?;
    let slot = crate::shard::slot::key_slot(first) as usize;
    let read_only_ok = client.cluster_readonly && !cmd.spec.is_write();
    let plain = !client.info.tls.load(Ordering::Relaxed);
    cluster.redirect_blocked(slot, read_only_ok, plain).map(|r| Reply::error(r.text()))
}

pub async fn run(conn: &mut Session, cmd: Command, args: &[Bytes], ids: Vec<usize>, stream: &mut Stream) -> Reply {
    let server = conn.server.clone();
    let (db, resp) = (conn.client.db, conn.client.resp);
    // CLIENT LIST shows a waiting client's command.
    conn.client.info.last_cmd.store(cmd.id, Ordering::Relaxed);
    let waiter = Arc::new(Waiter::new(db));
    // Known once the first attempt asks to wait (its arguments parsed then).
    let mut keys: Vec<Bytes> = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut registered = false;
    let mut pinned: Option<Vec<Bytes>> = None;
    let mut watch_socket = true;
    let mut blocked: Option<Blocked> = None;
    loop {
        let gone = registered && stream.socket().peer_closed();
        if gone {
            // Not served, and nothing pipelined behind it runs (as below).
            conn.client.close_after_reply = true;
            stream.socket().discard_input();
        }
        // A retry waits out a running script instead of answering BUSY.
        let threshold = if registered { u64::MAX } else { server.busy_threshold() };
        let done = match server.shards.lock_many(&ids, threshold).await {
            Err(busy) => {
                let reply = busy.reply();
                dispatch::rejected(&server, cmd, &reply);
                Some(reply)
            }
            Ok(mut guards) => {
                let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
                let origin = if registered { Origin::Blocked } else { Origin::Client };
                let mut ctx = Ctx::new(&server, &mut refs, &conn.client.info, db, resp, origin);
                ctx.now = crate::storage::now_ms();
                let reply = if gone {
                    Reply::NoReply
                } else {
                    let mut tally = Tally::start();
                    let began = tally.clock();
                    let r = dispatch::call(&mut ctx, cmd, pinned.as_deref().unwrap_or(args), &mut tally);
                    tally.publish(&server, &conn.client.info);
                    crate::pubsub::tracking::end_run(&server, ctx.shards(), conn.client.id());
                    let busy = dispatch::clock_ns().saturating_sub(began);
                    ids.iter().for_each(|&id| server.shards.get(id).stats.ran(1, busy));
                    r
                };
                match reply {
                    Reply::Blocked => {
                        if registered {
                            pass_on(&mut ctx, &keys, &waiter);
                        } else {
                            let req = match cmd_blocking::parse(cmd.spec.name, args, false) {
                                Ok(r) => r,
                                Err(e) => return e,
                            };
                            deadline = req.timeout.map(|t| Instant::now() + t);
                            keys = req.keys;
                            pinned = cmd_blocking::pinned_args(&mut ctx, args);
                            join(&mut ctx, &keys, &waiter);
                            registered = true;
                        }
                        None
                    }
                    r => {
                        if registered {
                            leave(&mut ctx, &keys, &waiter);
                        }
                        Some(r)
                    }
                }
            }
        };
        if let Some(r) = done {
            return r;
        }
        if blocked.is_none() {
            // Replies to the commands pipelined before this one go out now.
            conn.write_pending(stream).await;
            blocked = Some(Blocked::new(conn, true, deadline.is_some()));
        }
        let info = conn.client.info.clone();
        let wake = loop {
            let far = Instant::now() + Duration::from_secs(86400 * 365);
            let mut peek = [0u8; 1];
            // Created before the request is read, so an UNBLOCK between the
            // two is not missed.
            let unblocked = info.unblock.notified();
            if info.unblock_request.load(Ordering::Acquire) != 0 {
                break Wake::Unblocked;
            }
            let w = tokio::select! {
                biased;
                r = stream.socket().peek(&mut peek), if watch_socket => match r {
                    Ok(0) | Err(_) => Some(Wake::Gone),
                    // Pipelined input behind the blocking command: it waits
                    // for us; from now on only a hang-up behind it counts.
                    Ok(_) => {
                        watch_socket = false;
                        None
                    }
                },
                _ = stream.socket().read_closed(), if !watch_socket => Some(Wake::Gone),
                _ = info.kill_notify.notified() => if info.killed.load(Ordering::Acquire) {
                    Some(Wake::Gone)
                } else {
                    // Pushes (invalidations) for the client: written while it waits.
                    None
                },
                _ = server.shutdown.notified() => Some(Wake::Gone),
                _ = unblocked => Some(Wake::Unblocked),
                _ = waiter.notify.notified() => Some(Wake::Notified),
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => Some(Wake::Timeout),
                // Cluster mode: the keys' slot may move to another node (a
                // reshard) or the cluster go down; checked as Redis's cron does.
                _ = tokio::time::sleep(CLUSTER_RECHECK), if server.cluster.is_some() => {
                    cluster_redirect(&server, cmd, &keys, &conn.client).map(Wake::Redirected)
                },
            };
            if let Some(w) = w {
                break w;
            }
            if info.pushes.waiting() {
                conn.write_pending(stream).await;
            }
        };
        let reply = match wake {
            Wake::Notified => continue,
            Wake::Timeout => Reply::NilArray,
            Wake::Unblocked if info.unblock_request.load(Ordering::Acquire) == crate::net::client::UNBLOCK_ERROR => {
                Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
            }
            Wake::Unblocked
                if info.unblock_request.load(Ordering::Acquire) == crate::net::client::UNBLOCK_ROLE_CHANGE =>
            {
                conn.client.close_after_reply = true;
                Reply::error(
                    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
                )
            }
            Wake::Unblocked => Reply::NilArray,
            Wake::Gone => {
                // What the client pipelined behind the command is dropped
                // with it, as Redis frees a blocked client that hangs up.
                conn.client.close_after_reply = true;
                stream.socket().discard_input();
                Reply::NoReply
            }
            Wake::Redirected(reply) => reply,
        };
        drop(blocked);
        if let Ok(mut guards) = server.shards.lock_many(&ids, u64::MAX).await {
            let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
            let mut ctx = Ctx::new(&server, &mut refs, &conn.client.info, db, resp, Origin::Blocked);
            ctx.now = crate::storage::now_ms();
            leave(&mut ctx, &keys, &waiter);
        }
        if !matches!(reply, Reply::NoReply) {
            // The command ends without being served: counted as Redis counts
            // a timed-out or unblocked command.
            dispatch::account_unserved(&server, &conn.client.info, db, cmd, args, &reply);
        }
        return reply;
    }
}
