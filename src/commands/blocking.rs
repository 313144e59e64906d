//! The command side of blocking commands (BLPOP, BRPOP, BLMOVE,
//! BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, XREAD, XREADGROUP): parsing
//! them, and one non-blocking attempt (`attempt`, their handler).
//!
//! The waiting is the session's (`session::blocking`): a blocked client holds
//! no lock; it queues on its keys (`shard::waiters`), and a write to one of
//! them wakes it to retry through dispatch. Every pop happens inside the
//! client's own locked attempt, so a client blocked on keys of several
//! shards pops exactly one element in total.

use crate::commands::dispatch::Origin;
use crate::commands::lists;
use crate::commands::registry::{self, Exec};
use crate::commands::streams::read::{self as xread, ReadReq};
use crate::commands::Ctx;
use crate::protocol::Reply;
use crate::shard::waiters::Waiter;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

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
        /// BRPOPLPUSH (replayed as RPOPLPUSH; BLMOVE as LMOVE, as Redis).
        rpoplpush: bool,
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

pub struct Request {
    pub keys: Vec<Bytes>,
    kind: Kind,
    /// None blocks forever.
    pub timeout: Option<Duration>,
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
    let secs = crate::util::longdouble::parse(arg)
        .ok_or_else(|| Reply::err("timeout is not a float or out of range"))?
        .to_f64();
    let ms = secs * 1000.0;
    // C's cast of an out-of-range value gives LLONG_MIN: Redis then says "negative".
    if !ms.is_finite() || !(-9.2e18..9.2e18).contains(&ms) || (ms as i64) < 0 {
        return Err(Reply::err(crate::protocol::errors::TIMEOUT_NEGATIVE));
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
pub fn parse(name: &str, args: &[Bytes], in_script: bool) -> Result<Request, Reply> {
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
            (vec![args[1].clone()], Kind::Move { dst: args[2].clone(), from_left, to_left, rpoplpush: false }, 5)
        }
        "brpoplpush" => {
            let kind = Kind::Move { dst: args[2].clone(), from_left: false, to_left: true, rpoplpush: true };
            (vec![args[1].clone()], kind, 3)
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
        Kind::Move { dst, from_left, to_left, .. } => lists::move_one(ctx, key, dst, *from_left, *to_left),
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

/// One non-blocking try over the keys in order: the reply and the key it
/// came from. The first try reports a key of the wrong type as Redis does; a
/// retry after a wake-up skips it (Redis keeps such a client blocked).
fn try_serve(ctx: &mut Ctx, req: &mut Request, retry: bool) -> Option<(Reply, Bytes)> {
    if let Kind::Stream(r) = &mut req.kind {
        return xread::attempt(ctx, r, retry).map(|reply| (reply, Bytes::new()));
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
            return Some((Reply::wrong_type(), key.clone()));
        }
        if let Some(r) = serve(ctx, req, key) {
            return Some((r, key.clone()));
        }
    }
    None
}

/// The non-blocking form a served pop is replayed as (Redis propagates a
/// blocking pop as LPOP, LMOVE, ZPOPMIN ...).
/// `popped`: how many elements an MPOP form took (Redis replays the count
/// it popped, not the one asked for).
fn replayed_as(req: &Request, key: &Bytes, popped: Option<usize>) -> Option<Vec<Bytes>> {
    let s = |b: &'static [u8]| Bytes::from_static(b);
    let side = |left: bool| s(if left { b"LEFT" } else { b"RIGHT" });
    let count = |n: usize| Bytes::from(n.to_string());
    Some(match &req.kind {
        Kind::Pop { left } => vec![s(if *left { b"LPOP" } else { b"RPOP" }), key.clone()],
        Kind::MPop { left, count: n } => {
            vec![s(if *left { b"LPOP" } else { b"RPOP" }), key.clone(), count(popped.unwrap_or(*n))]
        }
        Kind::Move { dst, rpoplpush: true, .. } => vec![s(b"RPOPLPUSH"), key.clone(), dst.clone()],
        Kind::Move { dst, from_left, to_left, .. } => {
            vec![s(b"LMOVE"), key.clone(), dst.clone(), side(*from_left), side(*to_left)]
        }
        Kind::ZPop { max } => vec![s(if *max { b"ZPOPMAX" } else { b"ZPOPMIN" }), key.clone()],
        Kind::ZMPop { max, count: n } => {
            vec![s(if *max { b"ZPOPMAX" } else { b"ZPOPMIN" }), key.clone(), count(popped.unwrap_or(*n))]
        }
        Kind::Stream(_) => return None,
    })
}

/// The number of elements in an MPOP reply (`[key, [elements]]`).
pub fn popped(reply: &Reply) -> Option<usize> {
    match reply {
        Reply::Array(parts) if parts.len() == 2 => match &parts[1] {
            Reply::Array(items) => Some(items.len()),
            _ => None,
        },
        _ => None,
    }
}

/// The handler of every blocking command (`Exec::Blocking`): one attempt
/// at the non-blocking form. With nothing there, a client's command answers
/// `Reply::Blocked` (the session waits); inside MULTI or a script it gives
/// the timeout reply at once, as Redis does.
pub fn attempt(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(cmd) = registry::lookup(&args[0]) else {
        return registry::unknown_command(args);
    };
    let mut req = match parse(cmd.spec.name, args, ctx.in_script()) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let may_wait = matches!(ctx.origin, Origin::Client | Origin::Blocked);
    match try_serve(ctx, &mut req, ctx.origin == Origin::Blocked) {
        Some((reply, key)) => {
            if !reply.is_error() && ctx.propagating() {
                if let Some(argv) = replayed_as(&req, &key, popped(&reply)) {
                    // The one replayed form (ZMPOP, served through its
                    // handler, has already named its own).
                    ctx.effects.rewritten = None;
                    ctx.propagate_as(argv);
                }
            }
            reply
        }
        // XREAD without BLOCK is an ordinary read.
        None if matches!(&req.kind, Kind::Stream(r) if r.block.is_none()) => Reply::NilArray,
        None if may_wait => Reply::Blocked,
        None => req.denied(),
    }
}

/// The arguments a blocked client retries with: XREAD's `$` fixed to the
/// IDs of when it blocked. None: retry with the original arguments.
pub fn pinned_args(ctx: &mut Ctx, args: &[Bytes]) -> Option<Vec<Bytes>> {
    if crate::util::eq_ic(&args[0], "xread") {
        xread::pin_ids(ctx, args)
    } else {
        None
    }
}

/// Queues the client on every key of the request.
pub fn join(ctx: &mut Ctx, keys: &[Bytes], w: &Arc<Waiter>) {
    for key in keys {
        ctx.shard_for(key).waiters.add(key, w);
    }
}

/// Leaves every queue; a key that still holds data wakes its next client.
pub fn leave(ctx: &mut Ctx, keys: &[Bytes], w: &Arc<Waiter>) {
    let now = ctx.now;
    for key in keys {
        let shard = ctx.shard_for(key);
        shard.waiters.remove(key, w);
        if shard.dbs.get_mut(w.db).is_some_and(|db| db.contains(key, now)) {
            shard.waiters.signal(w.db, key);
        }
    }
}

/// After a wake-up that found nothing usable (a key of another type), lets
/// the next client in line look at the keys that hold data.
pub fn pass_on(ctx: &mut Ctx, keys: &[Bytes], w: &Arc<Waiter>) {
    let now = ctx.now;
    for key in keys {
        let shard = ctx.shard_for(key);
        if shard.dbs.get_mut(w.db).is_some_and(|db| db.contains(key, now)) {
            shard.waiters.signal_after(key, w);
        }
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
