//! MULTI, EXEC, DISCARD, WATCH, UNWATCH: the session's side of transactions.
//!
//! Queuing lives on the session (`Multi`). EXEC enters every shard the
//! queued commands (and the watched keys) need, in ascending shard order,
//! holds them for the whole transaction and runs each queued command through
//! dispatch with those shards entered: nobody else can observe a partial
//! transaction, a transaction on one shard costs one lock, and its writes go
//! to the propagated stream as one MULTI/EXEC unit.
//!
//! WATCH registers the client on each key in the owning shard's `Watches`;
//! `Ctx::written` (and FLUSHDB/FLUSHALL/SWAPDB) mark the watchers dirty.
//! Expiry is checked at EXEC time under the locks, as Redis 7.0 does.

use super::Session;
use crate::commands::dispatch::{self, Origin, Tally};
use crate::commands::registry::{flags, Command, Exec};
use crate::commands::spec::SessionOp;
use crate::commands::{ConnCtx, Ctx};
use crate::protocol::Reply;
use crate::server::Server;
use crate::shard::watches::{Seen, Watcher};
use crate::shard::ShardData;
use bytes::Bytes;
use std::sync::Arc;

/// A transaction being queued (between MULTI and EXEC).
#[derive(Default)]
pub struct Multi {
    pub queued: Vec<(Command, Vec<Bytes>)>,
    /// Bytes of the queued arguments (CLIENT LIST's `multi-mem`).
    pub bytes: usize,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    pub failed: bool,
}

/// The keys one client watches.
pub struct WatchSet {
    w: Arc<Watcher>,
    /// (shard, db, key)
    keys: Vec<(usize, usize, Bytes)>,
}

impl WatchSet {
    /// What the watched keys take for this client (CLIENT LIST's `tot-mem`):
    /// its list and the shards' registrations, about twice the key each.
    fn memory(&self) -> usize {
        const PER_KEY: usize = 2 * std::mem::size_of::<(usize, usize, Bytes)>();
        self.keys.iter().map(|k| PER_KEY + 2 * k.2.len()).sum()
    }

    fn shard_ids(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = self.keys.iter().map(|k| k.0).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub(super) fn dirty(&self) -> bool {
        self.w.dirty()
    }

    /// Checks expiry and unregisters every key; `shards` holds (at least)
    /// every shard of the watched keys. Returns true when EXEC may run.
    fn release(&self, shards: &mut [&mut ShardData], now: u64) -> bool {
        let mut clean = !self.dirty();
        for (sid, db, key) in &self.keys {
            let Some(shard) = shards.iter_mut().find(|s| s.id == *sid) else {
                continue;
            };
            let ShardData { dbs, watches, .. } = &mut **shard;
            if clean {
                if let Some(d) = dbs.get_mut(*db) {
                    clean = watches.unexpired(*db, key, &self.w, d, now);
                }
            }
            watches.remove(*db, key, &self.w);
        }
        clean
    }
}

/// MULTI/EXEC/DISCARD/WATCH/UNWATCH.
pub async fn run(conn: &mut Session, op: SessionOp, args: &[Bytes]) -> Reply {
    match op {
        SessionOp::Multi => {
            if conn.txn.is_some() {
                return Reply::err("MULTI calls can not be nested");
            }
            conn.txn = Some(Box::default());
            conn.client.info.meta.lock().multi = 0;
            Reply::ok()
        }
        SessionOp::Exec => exec(conn).await,
        SessionOp::Discard => {
            if conn.txn.take().is_none() {
                return Reply::err("DISCARD without MULTI");
            }
            conn.client.info.meta.lock().multi = -1;
            conn.client.info.bufs.multi.store(0, std::sync::atomic::Ordering::Relaxed);
            unwatch_all(conn).await;
            Reply::ok()
        }
        SessionOp::Watch => watch(conn, &args[1..]).await,
        _ => {
            unwatch_all(conn).await;
            Reply::ok()
        }
    }
}

async fn watch(conn: &mut Session, keys: &[Bytes]) -> Reply {
    if conn.txn.is_some() {
        return Reply::err("WATCH inside MULTI is not allowed");
    }
    let set = conn.watch.get_or_insert_with(|| Box::new(WatchSet { w: Arc::default(), keys: Vec::new() }));
    // Redis: no point in watching more once the transaction is doomed.
    if set.dirty() {
        return Reply::ok();
    }
    let server = conn.server.clone();
    let mut ids: Vec<usize> = keys.iter().map(|k| server.shards.for_key(k)).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut guards = match server.shards.lock_many(&ids, server.busy_threshold()).await {
        Ok(g) => g,
        Err(busy) => return busy.reply(),
    };
    let (db, now) = (conn.client.db, crate::storage::now_ms());
    for key in keys {
        if set.keys.iter().any(|(_, d, k)| *d == db && k == key) {
            continue;
        }
        let sid = server.shards.for_key(key);
        let Some(shard) = guards.iter_mut().find(|g| g.id == sid) else {
            continue;
        };
        let ShardData { dbs, watches, .. } = &mut **shard;
        let Some(d) = dbs.get_mut(db) else {
            continue;
        };
        let seen = if d.is_expired(key, now) {
            Seen::Expired
        } else if d.contains(key, now) {
            Seen::Live
        } else {
            Seen::Absent
        };
        watches.add(db, key, &set.w, seen);
        set.keys.push((sid, db, key.clone()));
    }
    conn.client.info.bufs.watch.store(set.memory(), std::sync::atomic::Ordering::Relaxed);
    Reply::ok()
}

/// Forgets every watched key of the client (UNWATCH, DISCARD, RESET, EXEC
/// that did not run, disconnection).
pub async fn unwatch_all(conn: &mut Session) {
    let Some(set) = conn.watch.take() else {
        return;
    };
    conn.client.info.bufs.watch.store(0, std::sync::atomic::Ordering::Relaxed);
    let server = conn.server.clone();
    // Wait out a running script rather than leaving stale registrations.
    let locked = server.shards.lock_many(&set.shard_ids(), u64::MAX).await;
    if let Ok(mut guards) = locked {
        let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
        set.release(&mut refs, 0);
    }
}

async fn exec(conn: &mut Session) -> Reply {
    let Some(txn) = conn.txn.take() else {
        return Reply::err("EXEC without MULTI");
    };
    if !conn.client.acl.refresh(&conn.server.acl) {
        // The user was removed: the connection closes, running nothing.
        conn.client.close_after_reply = true;
        return Reply::Multi(Vec::new());
    }
    conn.client.info.meta.lock().multi = -1;
    conn.client.info.bufs.multi.store(0, std::sync::atomic::Ordering::Relaxed);
    // A transaction that writes is refused as a whole, as a write command is.
    if crate::replication::not_enough_replicas(&conn.server)
        && txn.queued.iter().any(|(cmd, args)| crate::scripting::writes(&conn.server, *cmd, args))
    {
        unwatch_all(conn).await;
        let text = crate::scripting::NOREPLICAS;
        return Reply::error(format!("EXECABORT Transaction discarded because of: {text}"));
    }
    if conn.server.persist.misconf.load(std::sync::atomic::Ordering::Relaxed)
        && txn.queued.iter().any(|(cmd, args)| crate::scripting::writes(&conn.server, *cmd, args))
    {
        unwatch_all(conn).await;
        let text = crate::protocol::errors::MISCONF;
        return Reply::error(format!("EXECABORT Transaction discarded because of: {text}"));
    }
    if txn.failed {
        unwatch_all(conn).await;
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    if conn.watch.as_ref().is_some_and(|w| w.dirty()) {
        unwatch_all(conn).await;
        return Reply::NilArray;
    }
    if refused_for_memory(conn, &txn) {
        unwatch_all(conn).await;
        let text = crate::storage::memory::OOM_TEXT;
        return Reply::error(format!("EXECABORT Transaction discarded because of: {text}"));
    }
    let mut ids = Vec::new();
    for (cmd, args) in &txn.queued {
        shards_needed(conn, *cmd, args, &mut ids);
    }
    if let Some(w) = &conn.watch {
        ids.extend(w.shard_ids());
    }
    ids.sort_unstable();
    ids.dedup();
    let server = conn.server.clone();
    let locked = server.shards.lock_many(&ids, server.busy_threshold()).await;
    let busy = match locked {
        Ok(mut guards) => {
            let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
            return run_locked(conn, &txn, &ids, &mut refs);
        }
        Err(busy) => busy,
    };
    unwatch_all(conn).await;
    busy.reply()
}

#[inline]
fn oom_while_queuing(server: &Server) -> Option<Reply> {
    if !crate::shard::eviction::over_maxmemory(server) {
        return None;
    }
    crate::shard::eviction::check_oom_for(server, true, &mut [])
}

/// Redis refuses the whole EXEC over `maxmemory` when any queued command
/// is denyoom (a script's flags decide for EVAL/FCALL), evicting first.
fn refused_for_memory(conn: &Session, txn: &Multi) -> bool {
    let server = &conn.server;
    if !crate::shard::eviction::over_maxmemory(server) {
        return false;
    }
    let denyoom = txn.queued.iter().any(|(cmd, args)| match cmd.spec.exec {
        Exec::Session(SessionOp::Eval | SessionOp::Fcall) => crate::scripting::denyoom_queued(server, *cmd, args),
        _ => cmd.spec.has(flags::DENYOOM),
    });
    denyoom && crate::shard::eviction::check_oom_for(server, true, &mut []).is_some()
}

/// The shards a queued command will enter, added to `ids`.
fn shards_needed(conn: &mut Session, cmd: Command, args: &[Bytes], ids: &mut Vec<usize>) {
    let shards = &conn.server.shards;
    let keyed = |ids: &mut Vec<usize>, home: usize| {
        let positions = cmd.spec.key_positions(args);
        if positions.is_empty() {
            ids.push(home);
        }
        ids.extend(positions.iter().map(|&p| shards.for_key(&args[p])));
    };
    match cmd.spec.exec {
        Exec::Keyed(_) if conn.server.standalone && crate::commands::sort::forms_keys(cmd.spec.name, args) => {
            ids.extend(0..shards.len())
        }
        Exec::Keyed(_) | Exec::Blocking(_) => keyed(ids, conn.home_shard()),
        Exec::AllShards(..) => ids.extend(0..shards.len()),
        Exec::Session(SessionOp::Eval | SessionOp::Fcall) => {
            ids.extend(crate::scripting::shards_for_queued(&conn.server, cmd, args))
        }
        Exec::Routed(route, _) => {
            if let Ok(id) = route(&conn.server, args) {
                ids.push(id.min(shards.len().saturating_sub(1)));
            }
        }
        _ => {}
    }
}

/// Runs the queued commands with every needed shard entered. Nothing here
/// awaits: the shards stay entered from the first command to the last.
fn run_locked(conn: &mut Session, txn: &Multi, ids: &[usize], refs: &mut [&mut ShardData]) -> Reply {
    if let Some(set) = conn.watch.take() {
        conn.client.info.bufs.watch.store(0, std::sync::atomic::Ordering::Relaxed);
        if !set.release(refs, crate::storage::now_ms()) {
            return Reply::NilArray;
        }
    }
    let server = conn.server.clone();
    // The transaction's writes reach the stream as one MULTI/EXEC unit.
    let _unit = crate::propagate::Unit::begin_if_active(&server.propagation);
    let mut tally = Tally::nested();
    let began = tally.clock();
    let mut replies = Vec::with_capacity(txn.queued.len());
    // The queued commands run as part of the transaction (CLIENT INFO inside
    // it shows the x flag, as in Redis).
    conn.client.info.meta.lock().multi = txn.queued.len() as i64;
    // The protocol each reply is written in: the one in force once its
    // command ran (a queued HELLO answers in the protocol it selects).
    let mut protos = Vec::with_capacity(txn.queued.len());
    for (cmd, args) in &txn.queued {
        let reply = run_queued(conn, *cmd, args, ids, refs, &mut tally);
        replies.push(reply);
        protos.push(conn.client.resp);
    }
    // A queued HELLO switched protocols: the replies before it keep theirs,
    // as Redis writes each reply when its command runs.
    let last = conn.client.resp;
    if protos.iter().any(|&p| p != last) {
        for (reply, &p) in replies.iter_mut().zip(&protos) {
            if p != last {
                let mut out = Vec::new();
                reply.encode(p, &mut out);
                *reply = Reply::Encoded(out.into());
            }
        }
    }
    conn.client.info.meta.lock().multi = -1;
    tally.publish(&server, &conn.client.info);
    crate::pubsub::tracking::end_run(&server, refs, conn.client.id());
    let busy = dispatch::clock_ns().saturating_sub(began);
    for &id in ids {
        server.shards.get(id).stats.ran(txn.queued.len() as u64, busy);
    }
    Reply::Array(replies)
}

/// One queued command, through dispatch with the shards it needs.
fn run_queued(
    conn: &mut Session,
    cmd: Command,
    args: &[Bytes],
    ids: &[usize],
    refs: &mut [&mut ShardData],
    tally: &mut Tally,
) -> Reply {
    let server = conn.server.clone();
    // Permissions are checked again at EXEC: the rules may have changed
    // since the command was queued.
    if let Err(denied) = dispatch::acl_check(&server, &conn.client, cmd, args, dispatch::AclContext::Multi) {
        return dispatch::exec_denied(&server, denied);
    }
    let (db, resp) = (conn.client.db, conn.client.resp);
    match cmd.spec.exec {
        Exec::Keyed(_) | Exec::AllShards(_) | Exec::Blocking(_) => {
            let mut ctx = Ctx::new(&server, refs, &conn.client.info, db, resp, Origin::Exec);
            dispatch::call(&mut ctx, cmd, args, tally)
        }
        Exec::Routed(route, _) => {
            let sid = match route(&server, args) {
                Ok(sid) => sid,
                Err(e) => return e,
            };
            let Some(pos) = ids.iter().position(|&i| i == sid) else {
                return Reply::err(crate::protocol::errors::INTERNAL_ROUTING);
            };
            let mut one = [&mut *refs[pos]];
            let mut ctx = Ctx::new(&server, &mut one, &conn.client.info, db, resp, Origin::Exec);
            dispatch::call(&mut ctx, cmd, args, tally)
        }
        Exec::Conn(_) => {
            if let Some(pong) = conn.subscribed_ping(cmd, args) {
                return pong;
            }
            if cmd.spec.name == "script|debug" {
                // EXEC's reply is pending: Redis refuses it as in a pipeline.
                return Reply::err(crate::scripting::ldb::IN_PIPELINE);
            }
            dispatch::call_conn(&mut ConnCtx { server: &server, client: &mut conn.client }, cmd, args, Origin::Exec)
        }
        Exec::Container => match crate::commands::server::bare_container(cmd.spec.name) {
            Some(f) => f(&mut ConnCtx { server: &server, client: &mut conn.client }, args),
            None => Reply::wrong_arity(cmd.spec.name),
        },
        Exec::Session(op) => {
            let start = dispatch::clock_ns();
            let reply = match op {
                SessionOp::Eval | SessionOp::Fcall => {
                    dispatch::monitor_script(&server, &conn.client.info, conn.client.db, args);
                    if conn.client.ldb != crate::scripting::ldb::OFF
                        && cmd.spec.name.starts_with("evalsha")
                        && args.get(1).is_some_and(|sha| sha.len() == 40)
                    {
                        // SCRIPT DEBUG holds inside EXEC too (Redis checks
                        // the SHA's length first).
                        Reply::err(crate::scripting::ldb::EVALSHA_REFUSED)
                    } else {
                        let home = conn.home_shard();
                        crate::scripting::run_in_transaction(&server, &conn.client, home, refs, cmd, args)
                    }
                }
                SessionOp::Subscribe
                | SessionOp::Unsubscribe
                | SessionOp::PSubscribe
                | SessionOp::PUnsubscribe
                | SessionOp::SSubscribe
                | SessionOp::SUnsubscribe => super::subscribe::run(conn, op, args),
                SessionOp::ClientReply => crate::commands::connection::client_reply(&mut conn.client, args),
                // EXEC has already forgotten the watched keys.
                SessionOp::Unwatch => Reply::ok(),
                // Inside a transaction WAIT does not block.
                SessionOp::Wait => crate::replication::wait_now(&server, args, conn.woff),
                _ => Reply::err(format!("command '{}' cannot run inside a transaction", cmd.spec.name)),
            };
            dispatch::account_session(&server, &conn.client.info, conn.client.db, cmd, args, start, &reply);
            reply
        }
    }
}

/// Handles a request while MULTI is open: queues it (QUEUED) or refuses it,
/// flagging the transaction as Redis does. None: run it now (EXEC, DISCARD,
/// MULTI, WATCH, QUIT, RESET).
/// `watch_dirty`: a watched key changed, so EXEC will not run.
pub fn queue(server: &Server, txn: &mut Multi, cmd: Command, args: &[Bytes], watch_dirty: bool) -> Option<Reply> {
    if matches!(
        cmd.spec.exec,
        Exec::Session(
            SessionOp::Exec
                | SessionOp::Discard
                | SessionOp::Multi
                | SessionOp::Watch
                | SessionOp::Quit
                | SessionOp::Reset
        )
    ) {
        return None;
    }
    if cmd.spec.has(flags::NO_MULTI) {
        txn.failed = true;
        return Some(Reply::err("Command not allowed inside a transaction"));
    }
    // Queuing may grow memory without bound: over `maxmemory` (after
    // eviction) Redis refuses every command but EXEC/DISCARD/QUIT/RESET
    // inside MULTI, denyoom or not, and the transaction fails.
    if let Some(oom) = oom_while_queuing(server) {
        txn.failed = true;
        return Some(oom);
    }
    // A transaction that cannot run keeps nothing more, as in Redis
    // (CLIENT LIST's multi= stops counting).
    if txn.failed || watch_dirty {
        return Some(Reply::status("QUEUED"));
    }
    txn.bytes += args.iter().map(|a| a.len()).sum::<usize>();
    txn.queued.push((cmd, args.to_vec()));
    Some(Reply::status("QUEUED"))
}
