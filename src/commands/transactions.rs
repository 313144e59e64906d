//! MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queuing lives on the connection (`Multi`). EXEC enters every shard the
//! queued commands (and the watched keys) need, in ascending shard order,
//! holds them for the whole transaction and runs each queued command through
//! the command table with those shards entered: nobody else can observe a
//! partial transaction, and a transaction on one shard costs one lock.
//!
//! WATCH registers the client on each key in the owning shard's `Watches`;
//! `Ctx::written` (and FLUSHDB/FLUSHALL/SWAPDB) mark the watchers dirty.
//! Expiry is checked at EXEC time under the locks, as Redis 7.0 does.

use crate::commands::registry::{flags, Command, Exec, Group};
use crate::commands::spec::prelude::*;
use crate::commands::{ConnCtx, Ctx};
use crate::net::connection::Connection;
use crate::protocol::Reply;
use crate::shard::ShardData;
use crate::storage::Db;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

// ------------------------------------------------------------ declarations

pub static COMMANDS: &[CommandSpec] = &[
    cmd("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G::Transactions, S)
        .doc("1.2.0", "Starts a transaction."),
    cmd("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, NOKEYS, G::Transactions, S)
        .doc("1.2.0", "Runs the queued commands of a transaction."),
    cmd("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G::Transactions, S)
        .doc("2.0.0", "Drops the queued commands of a transaction."),
    cmd("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | MULTI_SHARD, KALL, G::Transactions, S)
        .doc("2.2.0", "Makes the next transaction conditional on keys staying unchanged."),
    cmd("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G::Transactions, S)
        .doc("2.2.0", "Forgets every watched key."),
];

/// A transaction being queued (between MULTI and EXEC).
#[derive(Default)]
pub struct Multi {
    pub queued: Vec<(Command, Vec<Bytes>)>,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    pub failed: bool,
}

/// One client's watch: set when any watched key is touched.
#[derive(Default)]
pub struct Watcher {
    dirty: AtomicBool,
}

/// What a watched key looked like when WATCH ran.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seen {
    Absent,
    Live,
    /// Present but past its TTL: its later removal by expiry is no change.
    Expired,
}

struct Entry {
    db: usize,
    w: Arc<Watcher>,
    seen: Seen,
}

/// A shard's watched keys.
#[derive(Default)]
pub struct Watches {
    map: HashMap<Bytes, Vec<Entry>, ahash::RandomState>,
}

/// True when `key` is in `db`, expired or not (never reaps it).
fn present(db: &mut Db, key: &[u8], now: u64) -> bool {
    db.is_expired(key, now) || db.contains(key, now)
}

impl Watches {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A write to `key` in database `index` (Redis's touchWatchedKey).
    pub fn touch(&mut self, index: usize, key: &[u8], db: &mut Db, now: u64) {
        let Some(list) = self.map.get_mut(key) else {
            return;
        };
        let mut exists = None;
        for e in list.iter_mut().filter(|e| e.db == index) {
            if e.seen == Seen::Expired && !*exists.get_or_insert_with(|| present(db, key, now)) {
                // The expired key is gone: logically nothing changed.
                e.seen = Seen::Absent;
                continue;
            }
            e.w.dirty.store(true, Ordering::Release);
        }
    }

    /// Database `emptied` is about to be flushed, or swapped with `replaced`
    /// (Redis's touchAllWatchedKeysInDb): watchers of keys that exist in
    /// either become dirty, except where the change is only about expired keys.
    pub fn touch_db(&mut self, dbs: &mut [Db], emptied: usize, replaced: Option<usize>, now: u64) {
        if emptied >= dbs.len() || replaced.is_some_and(|r| r >= dbs.len()) {
            return;
        }
        for (key, list) in self.map.iter_mut() {
            if !list.iter().any(|e| e.db == emptied) {
                continue;
            }
            let in_emptied = present(&mut dbs[emptied], key, now);
            let in_replaced = replaced.is_some_and(|r| present(&mut dbs[r], key, now));
            if !in_emptied && !in_replaced {
                continue;
            }
            let replaced_expired = replaced.is_some_and(|r| dbs[r].is_expired(key, now));
            for e in list.iter_mut().filter(|e| e.db == emptied) {
                match e.seen {
                    Seen::Expired if !in_replaced => {
                        e.seen = Seen::Absent;
                        continue;
                    }
                    Seen::Expired if replaced_expired => continue,
                    Seen::Absent | Seen::Live if !in_emptied && replaced_expired => {
                        e.seen = Seen::Expired;
                        continue;
                    }
                    _ => {}
                }
                e.w.dirty.store(true, Ordering::Release);
            }
        }
    }

    fn add(&mut self, index: usize, key: &Bytes, w: &Arc<Watcher>, seen: Seen) {
        self.map.entry(key.clone()).or_default().push(Entry { db: index, w: w.clone(), seen });
    }

    fn remove(&mut self, index: usize, key: &[u8], w: &Arc<Watcher>) {
        if let Some(list) = self.map.get_mut(key) {
            list.retain(|e| !(e.db == index && Arc::ptr_eq(&e.w, w)));
            if list.is_empty() {
                self.map.remove(key);
            }
        }
    }

    /// At EXEC: false when `key` expired since WATCH (Redis 7.0 aborts then,
    /// whether or not the expired key was already reaped).
    fn unexpired(&self, index: usize, key: &[u8], w: &Arc<Watcher>, db: &mut Db, now: u64) -> bool {
        let Some(list) = self.map.get(key) else {
            return true;
        };
        list.iter().filter(|e| e.db == index && Arc::ptr_eq(&e.w, w)).all(|e| match e.seen {
            Seen::Expired => true,
            Seen::Absent => !db.is_expired(key, now),
            Seen::Live => !db.is_expired(key, now) && db.contains(key, now),
        })
    }
}

/// The keys one client watches.
pub struct WatchSet {
    w: Arc<Watcher>,
    /// (shard, db, key)
    keys: Vec<(usize, usize, Bytes)>,
}

impl WatchSet {
    fn shard_ids(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = self.keys.iter().map(|k| k.0).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn dirty(&self) -> bool {
        self.w.dirty.load(Ordering::Acquire)
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

/// MULTI/EXEC/DISCARD/WATCH/UNWATCH (called by the connection loop).
pub async fn special(conn: &mut Connection, cmd: Command, args: &[Bytes]) -> Reply {
    match cmd.spec.name {
        "multi" => {
            if conn.txn.is_some() {
                return Reply::err("MULTI calls can not be nested");
            }
            conn.txn = Some(Box::default());
            conn.client.info.meta.lock().multi = 0;
            Reply::ok()
        }
        "exec" => exec(conn).await,
        "discard" => {
            if conn.txn.take().is_none() {
                return Reply::err("DISCARD without MULTI");
            }
            conn.client.info.meta.lock().multi = -1;
            unwatch_all(conn).await;
            Reply::ok()
        }
        "watch" => watch(conn, &args[1..]).await,
        "unwatch" => {
            unwatch_all(conn).await;
            Reply::ok()
        }
        _ => Reply::err(format!("unknown transaction command '{}'", cmd.spec.name)),
    }
}

async fn watch(conn: &mut Connection, keys: &[Bytes]) -> Reply {
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
    Reply::ok()
}

/// Forgets every watched key of the client (UNWATCH, DISCARD, RESET, EXEC
/// that did not run, disconnection).
pub async fn unwatch_all(conn: &mut Connection) {
    let Some(set) = conn.watch.take() else {
        return;
    };
    let server = conn.server.clone();
    // Wait out a running script rather than leaving stale registrations.
    let locked = server.shards.lock_many(&set.shard_ids(), u64::MAX).await;
    if let Ok(mut guards) = locked {
        let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
        set.release(&mut refs, 0);
    }
}

async fn exec(conn: &mut Connection) -> Reply {
    let Some(txn) = conn.txn.take() else {
        return Reply::err("EXEC without MULTI");
    };
    conn.client.info.meta.lock().multi = -1;
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

/// Redis refuses the whole EXEC over `maxmemory` when any queued command
/// is denyoom (a script's flags decide for EVAL/FCALL), evicting first.
fn refused_for_memory(conn: &Connection, txn: &Multi) -> bool {
    let server = &conn.server;
    if !crate::storage::memory::over_maxmemory(server) {
        return false;
    }
    let denyoom = txn.queued.iter().any(|(cmd, args)| match cmd.spec.group {
        Group::Scripting => crate::scripting::denyoom_queued(server, *cmd, args),
        _ => cmd.spec.has(flags::DENYOOM),
    });
    denyoom && crate::storage::memory::check_oom_for(server, true, &mut []).is_some()
}

/// The shards a queued command will enter, added to `ids`.
fn shards_needed(conn: &mut Connection, cmd: Command, args: &[Bytes], ids: &mut Vec<usize>) {
    let shards = &conn.server.shards;
    let keyed = |ids: &mut Vec<usize>, home: usize| {
        let positions = cmd.spec.key_positions(args);
        if positions.is_empty() {
            ids.push(home);
        }
        ids.extend(positions.iter().map(|&p| shards.for_key(&args[p])));
    };
    match cmd.spec.exec {
        Exec::Keyed(_) => keyed(ids, conn.home_shard()),
        Exec::AllShards(..) => ids.extend(0..shards.len()),
        Exec::Special if cmd.spec.group == Group::Scripting => {
            ids.extend(crate::scripting::shards_for_queued(&conn.server, cmd, args))
        }
        Exec::Special if cmd.spec.has(flags::BLOCKING) => keyed(ids, conn.home_shard()),
        Exec::OneShard(route, ..) => {
            let server = conn.server.clone();
            let ctx = ConnCtx { server: &server, client: &mut conn.client };
            if let Ok(id) = route(&ctx, args) {
                ids.push(id.min(shards.len().saturating_sub(1)));
            }
        }
        _ => {}
    }
}

/// Runs the queued commands with every needed shard entered. Nothing here
/// awaits: the shards stay entered from the first command to the last.
fn run_locked(conn: &mut Connection, txn: &Multi, ids: &[usize], refs: &mut [&mut ShardData]) -> Reply {
    if let Some(set) = conn.watch.take() {
        if !set.release(refs, crate::storage::now_ms()) {
            return Reply::NilArray;
        }
    }
    let mut replies = Vec::with_capacity(txn.queued.len());
    for (cmd, args) in &txn.queued {
        let start = Instant::now();
        conn.client.info.last_cmd.store(cmd.id, Ordering::Relaxed);
        let reply = run_queued(conn, *cmd, args, ids, refs);
        conn.count(*cmd, start, &reply);
        replies.push(reply);
    }
    if conn.server.config.notify_flags.load(Ordering::Relaxed) & crate::pubsub::notify::EXPIRED != 0 {
        let (server, db, resp, id) = (conn.server.clone(), conn.client.db, conn.client.resp, conn.client.id());
        Ctx::new(&server, refs, db, resp, id).expired_events();
    }
    Reply::Array(replies)
}

fn run_queued(
    conn: &mut Connection,
    cmd: Command,
    args: &[Bytes],
    ids: &[usize],
    refs: &mut [&mut ShardData],
) -> Reply {
    let server = conn.server.clone();
    let (db, resp, id) = (conn.client.db, conn.client.resp, conn.client.id());
    match cmd.spec.exec {
        Exec::Keyed(f) => f(&mut Ctx::new(&server, refs, db, resp, id), args),
        Exec::AllShards(run, merge) => {
            let mut replies = Vec::with_capacity(refs.len());
            for shard in refs.iter_mut() {
                let mut one = [&mut **shard];
                replies.push(run(&mut Ctx::new(&server, &mut one, db, resp, id), args));
            }
            if let Some(e) = replies.iter().find(|r| r.is_error()) {
                return e.clone();
            }
            merge(&mut ConnCtx { server: &server, client: &mut conn.client }, args, replies)
        }
        Exec::OneShard(route, run, finish) => {
            let routed = route(&ConnCtx { server: &server, client: &mut conn.client }, args);
            let sid = match routed {
                Ok(sid) => sid,
                Err(e) => return e,
            };
            let Some(pos) = ids.iter().position(|&i| i == sid) else {
                return Reply::err("internal routing error");
            };
            let mut one = [&mut *refs[pos]];
            let r = run(&mut Ctx::new(&server, &mut one, db, resp, id), args);
            finish(&ConnCtx { server: &server, client: &mut conn.client }, args, sid, r)
        }
        Exec::Conn(f) => {
            if let Some(pong) = conn.subscribed_ping(cmd, args) {
                return pong;
            }
            f(&mut ConnCtx { server: &server, client: &mut conn.client }, args)
        }
        Exec::Container => match crate::commands::server::bare_container(cmd.spec.name) {
            Some(f) => f(&mut ConnCtx { server: &server, client: &mut conn.client }, args),
            None => Reply::wrong_arity(cmd.spec.name),
        },
        Exec::Special => match cmd.spec.name {
            _ if cmd.spec.group == Group::Scripting => {
                let home = conn.home_shard();
                crate::scripting::run_in_transaction(&server, &conn.client, home, refs, cmd, args)
            }
            _ if cmd.spec.has(flags::BLOCKING) => {
                crate::commands::blocking::run_nonblocking(&mut Ctx::new(&server, refs, db, resp, id), args)
            }
            _ if cmd.spec.group == Group::Pubsub => crate::commands::pubsub::subscription(conn, cmd, args),
            "client|reply" => crate::commands::connection::client_reply(&mut conn.client, args),
            // EXEC has already forgotten the watched keys.
            "unwatch" => Reply::ok(),
            _ => Reply::err(format!("command '{}' cannot run inside a transaction", cmd.spec.name)),
        },
    }
}

/// Handles a request while MULTI is open: queues it (QUEUED) or refuses it,
/// flagging the transaction as Redis does. None: run it now (EXEC, DISCARD,
/// MULTI, WATCH, QUIT, RESET).
pub fn queue(txn: &mut Multi, cmd: Command, args: &[Bytes]) -> Option<Reply> {
    if matches!(cmd.spec.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset") {
        return None;
    }
    if cmd.spec.has(flags::NO_MULTI) {
        txn.failed = true;
        return Some(Reply::err("Command not allowed inside a transaction"));
    }
    // Keyed commands were checked by routing; blocking ones are not routed.
    if cmd.spec.has(flags::BLOCKING) && !cmd.spec.has(flags::MULTI_SHARD) {
        let slots: Vec<u16> =
            cmd.spec.key_positions(args).iter().map(|&p| crate::shard::slot::key_slot(&args[p])).collect();
        if slots.windows(2).any(|w| w[0] != w[1]) {
            txn.failed = true;
            return Some(Reply::crossslot());
        }
    }
    txn.queued.push((cmd, args.to_vec()));
    Some(Reply::status("QUEUED"))
}
