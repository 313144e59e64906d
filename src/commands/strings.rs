//! String commands (Redis's t_string.c).

use super::keys::{exists_w, lookup_read, lookup_write};
use super::Ctx;
use crate::protocol::Reply;
use crate::storage::{Entry, SmallBytes, StrHint, Value};
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

use crate::commands::spec::prelude::*;
use crate::util::longdouble;

// ------------------------------------------------------------ declarations

pub static COMMANDS: &[CommandSpec] = &[
    cmd("get", 2, READONLY | FAST, K1, G::String, K(get))
        .syntax("key%k")
        .doc("1.0.0", "Returns the string value of a key.")
        .key_specs(&[ks(&["RO", "access"], idx(1), range(0, 1, 0))]),
    cmd("set", -3, WRITE | DENYOOM, K1, G::String, K(set))
        .syntax("key%k value [NX|XX] [GET] [EX seconds%i|PX milliseconds%i|EXAT unix-time-seconds%t|PXAT unix-time-milliseconds%t|KEEPTTL]")
        .doc("1.0.0", "Stores a string value, with optional expiry and conditions.")
        .key_specs(&[ks_noted(
            "RW and ACCESS due to the optional `GET` argument",
            &["RW", "access", "update", "variable_flags"],
            idx(1),
            range(0, 1, 0),
        )]),
    cmd("setnx", 3, WRITE | DENYOOM | FAST, K1, G::String, K(setnx))
        .syntax("key%k value")
        .doc("1.0.0", "Stores a string value only if the key does not exist.")
        .key_specs(&[ks(&["OW", "insert"], idx(1), range(0, 1, 0))]),
    cmd("setex", 4, WRITE | DENYOOM, K1, G::String, K(setex))
        .syntax("key%k seconds%i value")
        .doc("2.0.0", "Stores a string value with a time to live in seconds.")
        .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0))]),
    cmd("psetex", 4, WRITE | DENYOOM, K1, G::String, K(psetex))
        .syntax("key%k milliseconds%i value")
        .doc("2.6.0", "Stores a string value with a time to live in milliseconds.")
        .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0))]),
    cmd("getset", 3, WRITE | DENYOOM | FAST, K1, G::String, K(getset))
        .syntax("key%k value")
        .doc("1.0.0", "Stores a string value and returns the previous one.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("getdel", 2, WRITE | FAST, K1, G::String, K(getdel))
        .syntax("key%k")
        .doc("6.2.0", "Returns a string value and deletes the key.")
        .key_specs(&[ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0))]),
    cmd("getex", -2, WRITE | FAST, K1, G::String, K(getex))
        .syntax("key%k [EX seconds%i|PX milliseconds%i|EXAT unix-time-seconds%t|PXAT unix-time-milliseconds%t|PERSIST]")
        .doc("6.2.0", "Returns a string value and changes its expiry.")
        .key_specs(&[ks_noted(
            "RW and UPDATE because it changes the TTL",
            &["RW", "access", "update"],
            idx(1),
            range(0, 1, 0),
        )]),
    cmd("mget", -2, READONLY | FAST | MULTI_SHARD, KALL, G::String, K(mget))
        .syntax("key%k [key ...]")
        .doc("1.0.0", "Returns the values of several keys.")
        .tips(&["request_policy:multi_shard"])
        .key_specs(&[ks(&["RO", "access"], idx(1), range(-1, 1, 0))]),
    cmd("mset", -3, WRITE | DENYOOM | MULTI_SHARD, k(1, -1, 2), G::String, K(mset))
        .syntax("key%k value [key value ...]")
        .doc("1.0.1", "Stores several string values.")
        .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"])
        .key_specs(&[ks(&["OW", "update"], idx(1), range(-1, 2, 0))]),
    cmd("msetnx", -3, WRITE | DENYOOM, k(1, -1, 2), G::String, K(msetnx))
        .syntax("key%k value [key value ...]")
        .doc("1.0.1", "Stores several string values only if none of the keys exist.")
        .tips(&["request_policy:multi_shard", "response_policy:agg_min"])
        .key_specs(&[ks(&["OW", "insert"], idx(1), range(-1, 2, 0))]),
    cmd("incr", 2, WRITE | DENYOOM | FAST, K1, G::String, K(incr))
        .syntax("key%k")
        .doc("1.0.0", "Adds one to an integer value.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("decr", 2, WRITE | DENYOOM | FAST, K1, G::String, K(decr))
        .syntax("key%k")
        .doc("1.0.0", "Subtracts one from an integer value.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("incrby", 3, WRITE | DENYOOM | FAST, K1, G::String, K(incrby))
        .syntax("key%k increment%i")
        .doc("1.0.0", "Adds an integer to an integer value.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("decrby", 3, WRITE | DENYOOM | FAST, K1, G::String, K(decrby))
        .syntax("key%k decrement%i")
        .doc("1.0.0", "Subtracts an integer from an integer value.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("incrbyfloat", 3, WRITE | DENYOOM | FAST, K1, G::String, K(incrbyfloat))
        .syntax("key%k increment%d")
        .doc("2.6.0", "Adds a floating point number to a numeric value.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("append", 3, WRITE | DENYOOM | FAST, K1, G::String, K(append))
        .syntax("key%k value")
        .doc("2.0.0", "Appends to a string value.")
        .key_specs(&[ks(&["RW", "insert"], idx(1), range(0, 1, 0))]),
    cmd("strlen", 2, READONLY | FAST, K1, G::String, K(strlen))
        .syntax("key%k")
        .doc("2.2.0", "Returns the length of a string value.")
        .key_specs(&[ks(&["RO"], idx(1), range(0, 1, 0))]),
    cmd("getrange", 4, READONLY, K1, G::String, K(getrange))
        .syntax("key%k start%i end%i").doc("2.4.0", "Returns part of a string value."),
    cmd("substr", 4, READONLY, K1, G::String, K(getrange))
        .syntax("key%k start%i end%i")
        .doc("1.0.0", "Returns part of a string value (older name of GETRANGE)."),
    cmd("setrange", 4, WRITE | DENYOOM, K1, G::String, K(setrange))
        .syntax("key%k offset%i value")
        .doc("2.2.0", "Overwrites part of a string value at an offset."),
    cmd("lcs", -3, READONLY, K12, G::String, K(lcs))
        .syntax("key1%k key2%k0 [LEN] [IDX] [MINMATCHLEN len%i] [WITHMATCHLEN]")
        .doc("7.0.0", "Finds the longest common subsequence of two strings."),
];

/// The string held by an entry, or WRONGTYPE.
fn as_str(e: &Entry) -> Result<&SmallBytes, Reply> {
    match &e.value {
        Value::Str(s) => Ok(s),
        _ => Err(Reply::wrong_type()),
    }
}

/// Redis's `getGenericCommand`: the value as a reply (nil when missing).
#[inline(always)]
fn get_reply(ctx: &mut Ctx, key: &[u8]) -> Result<Reply, Reply> {
    match lookup_read(ctx, key) {
        None => Ok(Reply::Nil),
        Some(e) => as_str(e).map(|s| Reply::Bulk(s.to_bytes())),
    }
}

fn result(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// Redis's `checkStringLength`: a string may not outgrow `proto-max-bulk-len`.
fn check_len(ctx: &Ctx, size: u64, append: u64) -> Result<(), Reply> {
    let max = ctx.server.config.proto_max_bulk_len.load(Relaxed);
    match size.checked_add(append) {
        Some(total) if total <= i64::MAX as u64 && total as i64 <= max => Ok(()),
        _ => Err(Reply::err("string exceeds maximum allowed size (proto-max-bulk-len)")),
    }
}

pub fn get(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    result(get_reply(ctx, &args[1]))
}

// ------------------------------------------------------------- SET family

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpireKind {
    fn parse(a: &[u8]) -> Option<ExpireKind> {
        [("ex", ExpireKind::Ex), ("px", ExpireKind::Px), ("exat", ExpireKind::ExAt), ("pxat", ExpireKind::PxAt)]
            .into_iter()
            .find(|(name, _)| eq_ic(a, name))
            .map(|(_, k)| k)
    }
}

#[derive(Default)]
struct SetOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a [u8])>,
}

/// Redis's `parseExtendedStringArgumentsOrReply` for SET (`for_set`) and GETEX:
/// conflicting options are a syntax error, repeating the same one is not.
fn parse_set_opts(args: &[Bytes], for_set: bool) -> Result<SetOpts<'_>, Reply> {
    let mut o = SetOpts::default();
    let mut j = 0;
    while j < args.len() {
        let a = &args[j][..];
        if for_set && eq_ic(a, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && eq_ic(a, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && eq_ic(a, "get") {
            o.get = true;
        } else if for_set && eq_ic(a, "keepttl") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && eq_ic(a, "persist") && !o.keepttl && o.expire.is_none() {
            o.persist = true;
        } else if let (Some(kind), Some(v)) = (ExpireKind::parse(a), args.get(j + 1)) {
            if o.keepttl || o.persist || o.expire.is_some_and(|(k, _)| k != kind) {
                return Err(Reply::syntax_error());
            }
            o.expire = Some((kind, v));
            j += 1;
        } else {
            return Err(Reply::syntax_error());
        }
        j += 1;
    }
    Ok(o)
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry in ms.
fn expire_ms(kind: ExpireKind, arg: &[u8], now: u64, cmd: &str) -> Result<u64, Reply> {
    let v = parse_i64(arg).ok_or_else(Reply::not_integer)?;
    let bad = || Reply::err(format!("invalid expire time in '{cmd}' command"));
    if v <= 0 {
        return Err(bad());
    }
    let ms = match kind {
        ExpireKind::Ex | ExpireKind::ExAt => v.checked_mul(1000).ok_or_else(bad)?,
        ExpireKind::Px | ExpireKind::PxAt => v,
    };
    let ms = match kind {
        ExpireKind::Ex | ExpireKind::Px => ms.checked_add(now as i64).ok_or_else(bad)?,
        ExpireKind::ExAt | ExpireKind::PxAt => ms,
    };
    Ok(ms as u64)
}

/// Redis's `setGenericCommand`. `replies` overrides the (ok, aborted) replies.
fn set_generic(ctx: &mut Ctx, key: &Bytes, val: &Bytes, o: &SetOpts, cmd: &str, replies: Option<(i64, i64)>) -> Reply {
    let at = match o.expire.map(|(kind, arg)| expire_ms(kind, arg, ctx.now, cmd)).transpose() {
        Ok(at) => at,
        Err(e) => return e,
    };
    let old = if o.get {
        match get_reply(ctx, key) {
            Ok(r) => Some(r),
            Err(e) => return e,
        }
    } else {
        None
    };
    let found = exists_w(ctx, key);
    if o.nx && found || o.xx && !found {
        return old.unwrap_or(match replies {
            Some((_, aborted)) => Reply::Int(aborted),
            None => Reply::Nil,
        });
    }
    let value = Value::Str(SmallBytes::from_arg(val));
    let db = ctx.db(key);
    if o.keepttl {
        db.set_keep_ttl(key, value);
    } else {
        db.set_with_expiry(key, value, at.unwrap_or(0));
    }
    ctx.written(key, "set");
    if let Some(at) = at {
        ctx.written(key, "expire");
        // One change; replayed with its absolute expiry, as Redis propagates it.
        ctx.dirty_less(1);
        // Always rewritten, PXAT too (as Redis: `SET k v pxat t GET` goes out
        // as `SET k v PXAT t`).
        if ctx.propagating() {
            ctx.propagate_as(vec![
                Bytes::from_static(b"SET"),
                key.clone(),
                val.clone(),
                Bytes::from_static(b"PXAT"),
                Bytes::from(at.to_string()),
            ]);
        }
    }
    old.unwrap_or(match replies {
        Some((ok, _)) => Reply::Int(ok),
        None => Reply::ok(),
    })
}

pub fn set(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match parse_set_opts(&args[3..], true) {
        // (The common case first, exactly as before: no GET to strip.)
        Ok(o) if !o.get => set_generic(ctx, &args[1], &args[2], &o, "set", None),
        Ok(o) => {
            let reply = set_generic(ctx, &args[1], &args[2], &o, "set", None);
            // As Redis: `SET ... GET` goes out without its GETs (with an
            // expiry the whole command was rewritten already). Nothing goes
            // out when NX/XX left the key alone.
            if o.expire.is_none() && ctx.propagating() {
                let argv = args.iter().enumerate().filter(|(i, a)| *i < 3 || !eq_ic(a, "get")).map(|(_, a)| a.clone());
                ctx.propagate_as(argv.collect());
            }
            reply
        }
        Err(e) => e,
    }
}

pub fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let o = SetOpts { nx: true, ..Default::default() };
    set_generic(ctx, &args[1], &args[2], &o, "setnx", Some((1, 0)))
}

pub fn setex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let o = SetOpts { expire: Some((ExpireKind::Ex, &args[2])), ..Default::default() };
    set_generic(ctx, &args[1], &args[3], &o, "setex", None)
}

pub fn psetex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let o = SetOpts { expire: Some((ExpireKind::Px, &args[2])), ..Default::default() };
    set_generic(ctx, &args[1], &args[3], &o, "psetex", None)
}

pub fn getset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let old = match get_reply(ctx, key) {
        Ok(r) => r,
        Err(e) => return e,
    };
    ctx.db(key).set(key, Value::Str(SmallBytes::from_arg(&args[2])));
    ctx.written(key, "set");
    // Replayed as SET, as Redis propagates GETSET.
    if ctx.propagating() {
        ctx.propagate_as(vec![Bytes::from_static(b"SET"), key.clone(), args[2].clone()]);
    }
    old
}

pub fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let old = match get_reply(ctx, key) {
        Ok(Reply::Nil) => return Reply::Nil,
        Ok(r) => r,
        Err(e) => return e,
    };
    ctx.db(key).remove(key);
    ctx.written(key, "del");
    if ctx.propagating() {
        ctx.propagate_as(vec![Bytes::from_static(b"DEL"), key.clone()]);
    }
    old
}

pub fn getex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let o = match parse_set_opts(&args[2..], false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let key = &args[1];
    let now = ctx.now;
    let value = match lookup_read(ctx, key) {
        None => return Reply::Nil,
        Some(e) => match as_str(e) {
            Ok(s) => s.to_bytes(),
            Err(err) => return err,
        },
    };
    let at = match o.expire.map(|(kind, arg)| expire_ms(kind, arg, now, "getex")).transpose() {
        Ok(at) => at,
        Err(e) => return e,
    };
    let absolute = matches!(o.expire, Some((ExpireKind::ExAt | ExpireKind::PxAt, _)));
    let replay = ctx.propagating();
    match at {
        Some(at) if absolute && at <= now && !crate::storage::ttls_ignored() => {
            ctx.db(key).remove(key);
            ctx.written(key, "del");
            if replay {
                ctx.propagate_as(vec![crate::commands::keys::expiry_delete_verb(ctx), key.clone()]);
            }
        }
        Some(at) => {
            ctx.db(key).set_expire(key, at);
            ctx.written(key, "expire");
            if replay {
                ctx.propagate_as(vec![Bytes::from_static(b"PEXPIREAT"), key.clone(), Bytes::from(at.to_string())]);
            }
        }
        None if o.persist && ctx.db(key).persist(key, now) => {
            ctx.written(key, "persist");
            if replay {
                ctx.propagate_as(vec![Bytes::from_static(b"PERSIST"), key.clone()]);
            }
        }
        None => {}
    }
    Reply::Bulk(value)
}

// ------------------------------------------------------------ multi-key

pub fn mget(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let items = args[1..]
        .iter()
        .map(|k| match lookup_read(ctx, k).map(|e| &e.value) {
            Some(Value::Str(s)) => Reply::Bulk(s.to_bytes()),
            _ => Reply::Nil,
        })
        .collect();
    Reply::Array(items)
}

fn mset_arity(args: &[Bytes], name: &str) -> Result<(), Reply> {
    if args.len().is_multiple_of(2) {
        Err(Reply::wrong_arity(name))
    } else {
        Ok(())
    }
}

fn mset_all(ctx: &mut Ctx, args: &[Bytes]) {
    for pair in args[1..].chunks_exact(2) {
        ctx.db(&pair[0]).set(&pair[0], Value::Str(SmallBytes::from_arg(&pair[1])));
        ctx.written(&pair[0], "set");
    }
}

pub fn mset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if let Err(e) = mset_arity(args, "mset") {
        return e;
    }
    mset_all(ctx, args);
    Reply::ok()
}

pub fn msetnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if let Err(e) = mset_arity(args, "msetnx") {
        return e;
    }
    if args[1..].iter().step_by(2).any(|k| exists_w(ctx, k)) {
        return Reply::Int(0);
    }
    mset_all(ctx, args);
    Reply::Int(1)
}

// ------------------------------------------------------------- counters

/// Replaces a string value in place, keeping the key's TTL.
fn store_keep_ttl(ctx: &mut Ctx, key: &Bytes, value: SmallBytes, hint: StrHint) {
    let now = ctx.now;
    let db = ctx.db(key);
    match db.get_mut(key, now) {
        Some(e) => e.value = Value::Str(value),
        None => db.set(key, Value::Str(value)),
    }
    db.set_str_hint(key, hint);
}

/// The current string under `key` for a read-modify-write (None when missing).
fn current_str<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut SmallBytes>, Reply> {
    match lookup_write(ctx, key) {
        None => Ok(None),
        Some(Entry { value: Value::Str(s), .. }) => Ok(Some(s)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

fn incr_by(ctx: &mut Ctx, key: &Bytes, by: i64) -> Reply {
    let new = match current_str(ctx, key) {
        Ok(None) => by,
        Ok(Some(s)) => {
            let Some(cur) = parse_i64(s) else {
                return Reply::not_integer();
            };
            let Some(new) = cur.checked_add(by) else {
                return Reply::err(crate::protocol::errors::INCR_OVERFLOW);
            };
            // In place: the key keeps its TTL and slot.
            *s = SmallBytes::from_i64(new);
            ctx.db(key).set_str_hint(key, StrHint::Plain);
            ctx.written(key, "incrby");
            return Reply::Int(new);
        }
        Err(e) => return e,
    };
    store_keep_ttl(ctx, key, SmallBytes::from_i64(new), StrHint::Plain);
    ctx.written(key, "incrby");
    Reply::Int(new)
}

pub fn incr(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    incr_by(ctx, &args[1], 1)
}

pub fn decr(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    incr_by(ctx, &args[1], -1)
}

pub fn incrby(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match parse_i64(&args[2]) {
        Some(by) => incr_by(ctx, &args[1], by),
        None => Reply::not_integer(),
    }
}

pub fn decrby(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match parse_i64(&args[2]) {
        Some(i64::MIN) => Reply::err("decrement would overflow"),
        Some(by) => incr_by(ctx, &args[1], -by),
        None => Reply::not_integer(),
    }
}

/// INCRBYFLOAT computes in x87 extended precision like Redis on x86-64, so
/// results (and their 17-decimal rendering) match it digit for digit.
pub fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let cur = match current_str(ctx, key) {
        Ok(None) => longdouble::Ld::ZERO,
        Ok(Some(s)) => match longdouble::parse(s) {
            Some(v) => v,
            None => return Reply::not_float(),
        },
        Err(e) => return e,
    };
    let Some(by) = longdouble::parse(&args[2]) else {
        return Reply::not_float();
    };
    let Some(sum) = cur.checked_add(by) else {
        return Reply::err(crate::protocol::errors::INCR_NAN);
    };
    let text = Bytes::from(sum.to_human());
    store_keep_ttl(ctx, key, SmallBytes::from_slice(&text), StrHint::Embstr);
    ctx.written(key, "incrbyfloat");
    if ctx.propagating() {
        // Replayed as the value it produced: float formatting must not decide a replica's data.
        ctx.propagate_as(vec![Bytes::from_static(b"SET"), key.clone(), text.clone(), Bytes::from_static(b"KEEPTTL")]);
    }
    Reply::Bulk(text)
}

// ------------------------------------------------------ string surgery

pub fn append(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, tail) = (&args[1], &args[2]);
    let cur_len = match current_str(ctx, key) {
        Ok(cur) => cur.map(|c| c.len()),
        Err(e) => return e,
    };
    let len = match cur_len {
        None => {
            ctx.db(key).set(key, Value::Str(SmallBytes::from_slice(tail)));
            tail.len()
        }
        Some(at) => {
            if let Err(e) = check_len(ctx, at as u64, tail.len() as u64) {
                return e;
            }
            // Edited in place; `write_at` preallocates, so repeated APPENDs
            // are amortized O(1) as in Redis.
            let len = match current_str(ctx, key) {
                Ok(Some(s)) => {
                    s.write_at(at, tail);
                    s.len()
                }
                _ => return Reply::err("internal error"),
            };
            ctx.db(key).set_str_hint(key, StrHint::Raw);
            len
        }
    };
    ctx.written(key, "append");
    Reply::Int(len as i64)
}

pub fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match lookup_read(ctx, &args[1]) {
        None => Reply::Int(0),
        Some(e) => match as_str(e) {
            Ok(s) => Reply::Int(s.len() as i64),
            Err(err) => err,
        },
    }
}

pub fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return Reply::not_integer();
    };
    let s = match lookup_read(ctx, &args[1]) {
        None => return Reply::bulk_str(""),
        Some(e) => match as_str(e) {
            Ok(s) => s,
            Err(err) => return err,
        },
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Reply::bulk_str("");
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    if start > end || len == 0 {
        return Reply::bulk_str("");
    }
    Reply::Bulk(Bytes::copy_from_slice(&s[start as usize..=end as usize]))
}

pub fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, value) = (&args[1], &args[3]);
    let Some(offset) = parse_i64(&args[2]) else {
        return Reply::not_integer();
    };
    let Ok(offset) = u64::try_from(offset) else {
        return Reply::err("offset is out of range");
    };
    let cur_len = match current_str(ctx, key) {
        Ok(c) => c.map(|c| c.len()),
        Err(e) => return e,
    };
    if value.is_empty() {
        return Reply::Int(cur_len.map_or(0, |c| c as i64));
    }
    if let Err(e) = check_len(ctx, offset, value.len() as u64) {
        return e;
    }
    // check_len bounds offset + len by proto-max-bulk-len, so it fits memory.
    let at = offset as usize;
    let len = match current_str(ctx, key) {
        Ok(Some(s)) => {
            s.write_at(at, value);
            let len = s.len();
            ctx.db(key).set_str_hint(key, StrHint::Raw);
            len
        }
        _ => {
            let mut s = SmallBytes::new();
            s.write_at(at, value);
            let len = s.len();
            store_keep_ttl(ctx, key, s, StrHint::Raw);
            len
        }
    };
    ctx.written(key, "setrange");
    Reply::Int(len as i64)
}

// ------------------------------------------------------------------ LCS

pub fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    // Redis reads both keys before it looks at the options.
    let mut fetch = |k: &[u8]| match lookup_read(ctx, k) {
        None => Ok(Bytes::new()),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(s.to_bytes()),
            _ => Err(Reply::err("The specified keys must contain string values")),
        },
    };
    let (a, b) = match (fetch(&args[1]), fetch(&args[2])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let opts = match parse_lcs_opts(&args[3..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    if opts.idx && opts.len {
        return Reply::err("If you want both the length and indexes, please just use IDX.");
    }
    // The DP table is (len(a)+1) x (len(b)+1) u32 cells, bounded like Redis's.
    let cells = (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1);
    let max = ctx.server.config.proto_max_bulk_len.load(Relaxed).max(0) as u64;
    if cells.saturating_mul(4) > max {
        return Reply::err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    lcs_reply(&a, &b, cells as usize, &opts)
}

fn parse_lcs_opts(args: &[Bytes]) -> Result<LcsOpts, Reply> {
    let mut opts = LcsOpts::default();
    let mut j = 0;
    while j < args.len() {
        let a = &args[j];
        if eq_ic(a, "idx") {
            opts.idx = true;
        } else if eq_ic(a, "len") {
            opts.len = true;
        } else if eq_ic(a, "withmatchlen") {
            opts.withmatchlen = true;
        } else if eq_ic(a, "minmatchlen") && j + 1 < args.len() {
            opts.minmatchlen = parse_i64(&args[j + 1]).ok_or_else(Reply::not_integer)?.max(0) as u64;
            j += 1;
        } else {
            return Err(Reply::syntax_error());
        }
        j += 1;
    }
    Ok(opts)
}

#[derive(Default)]
struct LcsOpts {
    idx: bool,
    len: bool,
    withmatchlen: bool,
    minmatchlen: u64,
}

fn lcs_reply(a: &[u8], b: &[u8], cells: usize, o: &LcsOpts) -> Reply {
    let w = b.len() + 1;
    let mut dp = vec![0u32; cells];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[a.len() * w + b.len()];
    if o.len {
        return Reply::Int(total as i64);
    }
    // Walk back from the end, collecting the common string and its ranges.
    let mut out = vec![0u8; total as usize];
    let mut idx = total as usize;
    let (mut i, mut j) = (a.len(), b.len());
    let mut matches = Vec::new();
    let mut range: Option<(usize, usize, usize, usize)> = None; // a start,end; b start,end
    let emit = |r: (usize, usize, usize, usize), matches: &mut Vec<Reply>| {
        let len = (r.1 - r.0 + 1) as u64;
        if len >= o.minmatchlen {
            let mut m = vec![
                Reply::Array(vec![Reply::Int(r.0 as i64), Reply::Int(r.1 as i64)]),
                Reply::Array(vec![Reply::Int(r.2 as i64), Reply::Int(r.3 as i64)]),
            ];
            if o.withmatchlen {
                m.push(Reply::Int(len as i64));
            }
            matches.push(Reply::Array(m));
        }
    };
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            idx -= 1;
            out[idx] = a[i - 1];
            let (ai, bj) = (i - 1, j - 1);
            range = match range {
                Some(r) if r.0 == ai + 1 && r.2 == bj + 1 => Some((ai, r.1, bj, r.3)),
                Some(r) => {
                    emit(r, &mut matches);
                    Some((ai, ai, bj, bj))
                }
                None => Some((ai, ai, bj, bj)),
            };
            i -= 1;
            j -= 1;
        } else if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    if let Some(r) = range {
        emit(r, &mut matches);
    }
    if !o.idx {
        return Reply::Bulk(Bytes::from(out));
    }
    Reply::Map(vec![
        (Reply::bulk_str("matches"), Reply::Array(matches)),
        (Reply::bulk_str("len"), Reply::Int(total as i64)),
    ])
}
