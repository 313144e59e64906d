//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP, XREAD, XREADGROUP): the per-shard waiter queues and the
//! connection-side wait.
//!
//! Design: a blocked client never holds a shard while it waits, and it is the
//! only one that pops for itself. Under the locks of all its keys' shards it
//! tries the non-blocking form; if nothing is there it joins the FIFO queue
//! of every key (still under the locks, so no write can slip in between) and
//! waits. A write to a key (`Ctx::written`) wakes the first queued client of
//! that key; the client retries under the locks and either pops (then leaves
//! every queue) or finds the element gone and keeps its place. Because every
//! pop happens inside the client's own locked retry, a client blocked on keys
//! of several shards pops exactly one element in total. Whenever a client
//! leaves a queue while the key still holds data, the next client in line is
//! woken, so a push of N elements serves N waiters in arrival order.
//!
//! Stream readers (XREAD, XREADGROUP) follow the same path, but reading does
//! not consume, so XADD wakes every reader of the key (`signal_all`).

use crate::commands::lists;
use crate::commands::registry::{self, Command, Exec};
use crate::commands::streams::read::{self as xread, ReadReq};
use crate::commands::Ctx;
use crate::net::connection::Connection;
use crate::protocol::Reply;
use crate::shard::ShardData;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// One blocked client, queued on each of its keys.
pub struct Waiter {
    db: usize,
    notify: Notify,
}

/// A shard's queues of clients blocked on its keys.
#[derive(Default)]
pub struct Waiters {
    queues: HashMap<Bytes, VecDeque<Arc<Waiter>>, ahash::RandomState>,
}

impl Waiters {
    /// Wakes the first client blocked on `key` in `db` (called on every write).
    pub fn signal(&self, db: usize, key: &[u8]) {
        if self.queues.is_empty() {
            return;
        }
        if let Some(w) = self.queues.get(key).and_then(|q| q.iter().find(|w| w.db == db)) {
            w.notify.notify_one();
        }
    }

    /// Wakes every client blocked on `key` in `db` (XADD: readers do not
    /// consume, so each of them may be served).
    pub fn signal_all(&self, db: usize, key: &[u8]) {
        if let Some(q) = self.queues.get(key) {
            for w in q.iter().filter(|w| w.db == db) {
                w.notify.notify_one();
            }
        }
    }

    /// Wakes the client queued right after `w` on `key` (a woken client
    /// that could not use the key passes the wake-up on).
    fn signal_after(&self, key: &[u8], w: &Arc<Waiter>) {
        let Some(q) = self.queues.get(key) else {
            return;
        };
        let mut after = q.iter().skip_while(|x| !Arc::ptr_eq(x, w)).skip(1);
        if let Some(next) = after.find(|x| x.db == w.db) {
            next.notify.notify_one();
        }
    }

    fn add(&mut self, key: &Bytes, w: &Arc<Waiter>) {
        let q = self.queues.entry(key.clone()).or_default();
        if !q.iter().any(|x| Arc::ptr_eq(x, w)) {
            q.push_back(w.clone());
        }
    }

    fn remove(&mut self, key: &[u8], w: &Arc<Waiter>) {
        if let Some(q) = self.queues.get_mut(key) {
            q.retain(|x| !Arc::ptr_eq(x, w));
            if q.is_empty() {
                self.queues.remove(key);
            }
        }
    }

    /// Number of (client, key) registrations: 0 when nobody is blocked here.
    pub fn len(&self) -> usize {
        self.queues.values().map(|q| q.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}

/// What a blocking command pops once an element is there.
enum Kind {
    Pop {
        left: bool,
    },
    MPop {
        left: bool,
        count: usize,
    },
    Move {
        dst: Bytes,
        from_left: bool,
        to_left: bool,
    },
    ZPop {
        max: bool,
    },
    ZMPop {
        max: bool,
        count: usize,
    },
    /// XREAD / XREADGROUP.
    Stream(Box<ReadReq>),
}

struct Request {
    keys: Vec<Bytes>,
    kind: Kind,
    /// None blocks forever.
    timeout: Option<Duration>,
}

impl Request {
    fn wants(&self) -> &'static str {
        match self.kind {
            Kind::ZPop { .. } | Kind::ZMPop { .. } => "zset",
            _ => "list",
        }
    }

    /// The reply when the command may not block (MULTI, scripts).
    fn denied(&self) -> Reply {
        match &self.kind {
            Kind::Move { .. } => Reply::Nil,
            _ => Reply::NilArray,
        }
    }
}

/// Redis's blocking timeout: float seconds as `strtold` reads them (hex
/// forms included), truncated to whole milliseconds (so 0.0001 means
/// "forever", as in Redis).
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let secs = crate::commands::strings::longdouble::parse(arg)
        .ok_or_else(|| Reply::err("timeout is not a float or out of range"))?
        .to_f64();
    let ms = secs * 1000.0;
    // C's cast of an out-of-range value gives LLONG_MIN: Redis then says "negative".
    if !ms.is_finite() || !(-9.2e18..9.2e18).contains(&ms) || (ms as i64) < 0 {
        return Err(Reply::err("timeout is negative"));
    }
    let ms = ms as u64;
    Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

fn side(arg: &[u8]) -> Result<bool, Reply> {
    if crate::util::eq_ic(arg, "left") {
        Ok(true)
    } else if crate::util::eq_ic(arg, "right") {
        Ok(false)
    } else {
        Err(Reply::syntax_error())
    }
}

/// Parses a blocking command in Redis's order of checks. XREAD and
/// XREADGROUP block only with BLOCK (`in_script`: where BLOCK is an error).
fn parse(name: &str, args: &[Bytes], in_script: bool) -> Result<Request, Reply> {
    if matches!(name, "xread" | "xreadgroup") {
        let r = xread::parse(args, in_script)?;
        let timeout = r.block.flatten();
        return Ok(Request { keys: r.keys.clone(), kind: Kind::Stream(Box::new(r)), timeout });
    }
    let last = args.len() - 1;
    let (keys, kind, timeout_at) = match name {
        "blpop" | "brpop" => (args[1..last].to_vec(), Kind::Pop { left: name == "blpop" }, last),
        "bzpopmin" | "bzpopmax" => (args[1..last].to_vec(), Kind::ZPop { max: name == "bzpopmax" }, last),
        "blmove" => {
            let (from_left, to_left) = (side(&args[3])?, side(&args[4])?);
            (vec![args[1].clone()], Kind::Move { dst: args[2].clone(), from_left, to_left }, 5)
        }
        "brpoplpush" => {
            (vec![args[1].clone()], Kind::Move { dst: args[2].clone(), from_left: false, to_left: true }, 3)
        }
        "blmpop" => {
            let m = lists::parse_mpop(args, 2, ("left", "right"))?;
            (m.keys, Kind::MPop { left: m.first, count: m.count }, 1)
        }
        "bzmpop" => {
            let m = lists::parse_mpop(args, 2, ("min", "max"))?;
            (m.keys, Kind::ZMPop { max: !m.first, count: m.count }, 1)
        }
        _ => return Err(Reply::err(format!("unknown blocking command '{name}'"))),
    };
    let timeout = parse_timeout(&args[timeout_at])?;
    Ok(Request { keys, kind, timeout })
}

/// Runs a keyed command of another family through the command table.
fn call(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match registry::lookup(&args[0]).map(|c| c.spec.exec) {
        Some(Exec::Keyed(f)) => f(ctx, args),
        _ => Reply::err("internal error: missing non-blocking command"),
    }
}

/// Pops for `req` from `key`, which holds a value of the wanted type.
/// None when nothing could be popped after all.
fn serve(ctx: &mut Ctx, req: &Request, key: &Bytes) -> Option<Reply> {
    let r = match &req.kind {
        Kind::Pop { left } => match lists::pop_many(ctx, key, *left, 1) {
            Err(e) => e,
            Ok(Some(mut v)) if !v.is_empty() => {
                Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(v.pop().unwrap_or_default())])
            }
            Ok(_) => return None,
        },
        Kind::MPop { left, count } => lists::mpop_one(ctx, key, *left, *count),
        Kind::Move { dst, from_left, to_left } => lists::move_one(ctx, key, dst, *from_left, *to_left),
        Kind::ZPop { max } => {
            let name = if *max { "zpopmax" } else { "zpopmin" };
            match call(ctx, &[Bytes::from_static(name.as_bytes()), key.clone()]) {
                Reply::Array(items) if items.is_empty() => return None,
                Reply::Array(items) => Reply::Array(std::iter::once(Reply::Bulk(key.clone())).chain(items).collect()),
                other => other,
            }
        }
        Kind::ZMPop { max, count } => call(
            ctx,
            &[
                Bytes::from_static(b"zmpop"),
                Bytes::from_static(b"1"),
                key.clone(),
                Bytes::from_static(if *max { b"MAX" } else { b"MIN" }),
                Bytes::from_static(b"COUNT"),
                Bytes::from(count.to_string()),
            ],
        ),
        Kind::Stream(_) => return None,
    };
    match r {
        Reply::Nil | Reply::NilArray => None,
        r => Some(r),
    }
}

/// One non-blocking try over the keys in order. The first try reports a
/// key of the wrong type as Redis does; a retry after a wake-up skips it
/// (Redis keeps such a client blocked).
fn attempt(ctx: &mut Ctx, req: &mut Request, retry: bool) -> Option<Reply> {
    if let Kind::Stream(r) = &mut req.kind {
        return xread::attempt(ctx, r, retry);
    }
    let now = ctx.now;
    for key in &req.keys {
        let Some(t) = ctx.db(key).value(key, now).map(|v| v.type_name()) else {
            continue;
        };
        if t != req.wants() {
            if retry {
                continue;
            }
            return Some(Reply::wrong_type());
        }
        if let Some(r) = serve(ctx, req, key) {
            return Some(r);
        }
    }
    None
}

/// The blocking command run as its non-blocking form, as inside MULTI or a
/// script: the result if something is there, else the "timed out" reply.
pub fn run_nonblocking(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(cmd) = registry::lookup(&args[0]) else {
        return registry::unknown_command(args);
    };
    match parse(cmd.spec.name, args, ctx.in_script) {
        Err(e) => e,
        Ok(mut req) => attempt(ctx, &mut req, false).unwrap_or_else(|| req.denied()),
    }
}

fn join(ctx: &mut Ctx, req: &Request, w: &Arc<Waiter>) {
    for key in &req.keys {
        ctx.shard_for(key).waiters.add(key, w);
    }
}

/// Leaves every queue; a key that still holds data wakes its next client.
fn leave(ctx: &mut Ctx, req: &Request, w: &Arc<Waiter>) {
    let now = ctx.now;
    for key in &req.keys {
        let shard = ctx.shard_for(key);
        shard.waiters.remove(key, w);
        if shard.dbs.get_mut(w.db).is_some_and(|db| db.contains(key, now)) {
            shard.waiters.signal(w.db, key);
        }
    }
}

/// After a wake-up that found nothing usable (a key of another type), lets
/// the next client in line look at the keys that hold data.
fn pass_on(ctx: &mut Ctx, req: &Request, w: &Arc<Waiter>) {
    let now = ctx.now;
    for key in &req.keys {
        let shard = ctx.shard_for(key);
        if shard.dbs.get_mut(w.db).is_some_and(|db| db.contains(key, now)) {
            shard.waiters.signal_after(key, w);
        }
    }
}

/// True when the peer has closed its side (checked right before popping on
/// its behalf, so an element is never handed to a client that is gone).
fn peer_closed(stream: &tokio::net::TcpStream) -> bool {
    use std::os::fd::AsFd;
    let Ok(fd) = stream.as_fd().try_clone_to_owned() else {
        return false;
    };
    let s = std::net::TcpStream::from(fd);
    let mut b = [0u8; 1];
    match s.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

enum Wake {
    Notified,
    Timeout,
    Gone,
}

/// Runs a blocking command for `conn` (called by the connection loop).
pub async fn special(conn: &mut Connection, cmd: Command, args: &[Bytes]) -> Reply {
    let name = cmd.spec.name;
    if matches!(name, "blmove" | "brpoplpush")
        && crate::shard::slot::key_slot(&args[1]) != crate::shard::slot::key_slot(&args[2])
    {
        return Reply::crossslot();
    }
    let mut req = match parse(name, args, false) {
        Ok(r) => r,
        Err(e) => return e,
    };
    // XREAD without BLOCK is an ordinary read over possibly several shards.
    let may_block = !matches!(&req.kind, Kind::Stream(r) if r.block.is_none());
    let server = conn.server.clone();
    let mut ids: Vec<usize> = req.keys.iter().map(|k| server.shards.for_key(k)).collect();
    if let Kind::Move { dst, .. } = &req.kind {
        ids.push(server.shards.for_key(dst));
    }
    ids.sort_unstable();
    ids.dedup();
    let (db, resp, client_id) = (conn.client.db, conn.client.resp, conn.client.id());
    let waiter = Arc::new(Waiter { db, notify: Notify::new() });
    let deadline = req.timeout.map(|t| Instant::now() + t);
    let mut registered = false;
    let mut watch_socket = true;
    loop {
        let gone = registered && peer_closed(&conn.stream);
        // A retry waits out a running script instead of answering BUSY.
        let threshold = if registered { u64::MAX } else { server.busy_threshold() };
        let done = match server.shards.lock_many(&ids, threshold).await {
            Err(busy) => Some(busy.reply()),
            Ok(mut guards) => {
                let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
                let mut ctx = Ctx::new(&server, &mut refs, db, resp, client_id);
                let got = if gone { Some(Reply::NoReply) } else { attempt(&mut ctx, &mut req, registered) };
                match got {
                    Some(r) => {
                        if registered {
                            leave(&mut ctx, &req, &waiter);
                        }
                        Some(r)
                    }
                    None if !may_block => Some(Reply::NilArray),
                    None => {
                        if registered {
                            pass_on(&mut ctx, &req, &waiter);
                        } else {
                            join(&mut ctx, &req, &waiter);
                            registered = true;
                        }
                        None
                    }
                }
            }
        };
        if let Some(r) = done {
            return r;
        }
        let wake = loop {
            let far = Instant::now() + Duration::from_secs(86400 * 365);
            let mut peek = [0u8; 1];
            let w = tokio::select! {
                biased;
                r = conn.stream.peek(&mut peek), if watch_socket => match r {
                    Ok(0) | Err(_) => Some(Wake::Gone),
                    // Pipelined input behind the blocking command: it waits
                    // for us; stop watching the socket (it stays readable).
                    Ok(_) => {
                        watch_socket = false;
                        None
                    }
                },
                _ = conn.client.info.kill_notify.notified() => Some(Wake::Gone),
                _ = server.shutdown.notified() => Some(Wake::Gone),
                _ = waiter.notify.notified() => Some(Wake::Notified),
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => Some(Wake::Timeout),
            };
            if let Some(w) = w {
                break w;
            }
        };
        let reply = match wake {
            Wake::Notified => continue,
            Wake::Timeout => Reply::NilArray,
            Wake::Gone => Reply::NoReply,
        };
        if let Ok(mut guards) = server.shards.lock_many(&ids, u64::MAX).await {
            let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
            let mut ctx = Ctx::new(&server, &mut refs, db, resp, client_id);
            leave(&mut ctx, &req, &waiter);
        }
        return reply;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_as_redis() {
        let err = |s: &str| parse_timeout(s.as_bytes()).err().map(|r| format!("{r:?}"));
        assert_eq!(parse_timeout(b"0").ok(), Some(None));
        assert_eq!(parse_timeout(b"0.0001").ok(), Some(None));
        assert_eq!(parse_timeout(b"1.5").ok(), Some(Some(Duration::from_millis(1500))));
        assert!(err("-1").unwrap().contains("timeout is negative"));
        assert!(err("inf").unwrap().contains("timeout is negative"));
        assert!(err("1e100").unwrap().contains("timeout is negative"));
        assert!(err("abc").unwrap().contains("not a float"));
        assert!(err("nan").unwrap().contains("not a float"));
        assert_eq!(parse_timeout(b"-0.0001").ok(), Some(None));
    }
}
