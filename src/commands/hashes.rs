//! Hash commands (Redis's t_hash.c).

use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::storage::hash::Limits;
use crate::storage::{Db, Hash, Value};
use crate::util::longdouble;
use crate::util::{eq_ic, glob_match, parse_i64};
use bytes::Bytes;
use rand::Rng;

// ------------------------------------------------------------ declarations

pub static COMMANDS: &[CommandSpec] = &[
    cmd("hset", -4, WRITE | DENYOOM | FAST, K1, G::Hash, K(hset))
        .syntax("key%k field value [field value ...]")
        .doc("2.0.0", "Sets fields of a hash.")
        .key_specs(&[ks(&["RW", "update"], idx(1), range(0, 1, 0))]),
    cmd("hsetnx", 4, WRITE | DENYOOM | FAST, K1, G::Hash, K(hsetnx))
        .syntax("key%k field value")
        .doc("2.0.0", "Sets a hash field only if it does not exist.")
        .key_specs(&[ks(&["RW", "insert"], idx(1), range(0, 1, 0))]),
    cmd("hget", 3, READONLY | FAST, K1, G::Hash, K(hget))
        .syntax("key%k field")
        .doc("2.0.0", "Returns the value of a hash field.")
        .key_specs(&[ks(&["RO", "access"], idx(1), range(0, 1, 0))]),
    cmd("hmset", -4, WRITE | DENYOOM | FAST, K1, G::Hash, K(hmset))
        .syntax("key%k field value [field value ...]")
        .doc("2.0.0", "Sets fields of a hash (older form of HSET)."),
    cmd("hmget", -3, READONLY | FAST, K1, G::Hash, K(hmget))
        .syntax("key%k field [field ...]")
        .doc("2.0.0", "Returns the values of several hash fields."),
    cmd("hgetall", 2, READONLY, K1, G::Hash, K(hgetall))
        .syntax("key%k")
        .doc("2.0.0", "Returns every field and value of a hash.")
        .tips(&["nondeterministic_output_order"])
        .key_specs(&[ks(&["RO", "access"], idx(1), range(0, 1, 0))]),
    cmd("hdel", -3, WRITE | FAST, K1, G::Hash, K(hdel))
        .syntax("key%k field [field ...]")
        .doc("2.0.0", "Removes fields from a hash.")
        .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    cmd("hexists", 3, READONLY | FAST, K1, G::Hash, K(hexists))
        .syntax("key%k field")
        .doc("2.0.0", "Tells whether a hash field exists.")
        .key_specs(&[ks(&["RO"], idx(1), range(0, 1, 0))]),
    cmd("hlen", 2, READONLY | FAST, K1, G::Hash, K(hlen))
        .syntax("key%k")
        .doc("2.0.0", "Counts the fields of a hash.")
        .key_specs(&[ks(&["RO"], idx(1), range(0, 1, 0))]),
    cmd("hkeys", 2, READONLY, K1, G::Hash, K(hkeys))
        .syntax("key%k")
        .doc("2.0.0", "Returns the field names of a hash.")
        .tips(&["nondeterministic_output_order"]),
    cmd("hvals", 2, READONLY, K1, G::Hash, K(hvals))
        .syntax("key%k")
        .doc("2.0.0", "Returns the values of a hash.")
        .tips(&["nondeterministic_output_order"]),
    cmd("hincrby", 4, WRITE | DENYOOM | FAST, K1, G::Hash, K(hincrby))
        .syntax("key%k field increment%i")
        .doc("2.0.0", "Adds an integer to a hash field.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("hincrbyfloat", 4, WRITE | DENYOOM | FAST, K1, G::Hash, K(hincrbyfloat))
        .syntax("key%k field increment%d")
        .doc("2.6.0", "Adds a floating point number to a hash field.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("hstrlen", 3, READONLY | FAST, K1, G::Hash, K(hstrlen))
        .syntax("key%k field")
        .doc("3.2.0", "Returns the length of a hash field's value.")
        .key_specs(&[ks(&["RO"], idx(1), range(0, 1, 0))]),
    cmd("hrandfield", -2, READONLY, K1, G::Hash, K(hrandfield))
        .syntax("key%k [count%i [WITHVALUES]]")
        .doc("6.2.0", "Returns random fields of a hash.")
        .tips(&["nondeterministic_output"]),
    cmd("hscan", -3, READONLY, K1, G::Hash, K(hscan))
        .syntax("key%k cursor%i [MATCH pattern%p] [COUNT count%i]")
        .doc("2.8.0", "Iterates the fields of a hash with a cursor.")
        .tips(&["nondeterministic_output"]),
];

fn hash_mut<'d>(db: &'d mut Db, key: &[u8], now: u64) -> Result<Option<&'d mut Hash>, Reply> {
    match db.value_mut(key, now) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// The hash under `key`, created empty when missing.
fn hash_or_create<'d>(db: &'d mut Db, key: &Bytes, now: u64) -> Result<&'d mut Hash, Reply> {
    if hash_mut(db, key, now)?.is_none() {
        db.set(key.clone(), Value::Hash(Box::default()));
    }
    match db.value_mut(key, now) {
        Some(Value::Hash(h)) => Ok(h),
        _ => Err(Reply::wrong_type()),
    }
}

/// The packed-encoding limits, from the live config.
fn limits(ctx: &Ctx) -> Limits {
    let c = &ctx.server.config;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as usize;
    Limits { max_entries: get(&c.hash_max_listpack_entries), max_value: get(&c.hash_max_listpack_value) }
}

fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(b))
}

fn set_pairs(ctx: &mut Ctx, args: &[Bytes], name: &str) -> Result<i64, Reply> {
    if !args.len().is_multiple_of(2) {
        return Err(Reply::wrong_arity(name));
    }
    let lim = limits(ctx);
    let now = ctx.now;
    let h = hash_or_create(ctx.db(&args[1]), &args[1], now)?;
    let mut created = 0;
    for pair in args[2..].chunks_exact(2) {
        if h.set(&pair[0], &pair[1], lim) {
            created += 1;
        }
    }
    ctx.written(&args[1], "hset");
    // A change per field given, new or not, as Redis counts.
    ctx.set_dirty(args.len() as u64 / 2 - 1);
    Ok(created)
}

pub fn hset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    set_pairs(ctx, args, "hset").map_or_else(|e| e, Reply::Int)
}

pub fn hmset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    set_pairs(ctx, args, "hmset").map_or_else(|e| e, |_| Reply::ok())
}

pub fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let lim = limits(ctx);
    let now = ctx.now;
    let h = match hash_or_create(ctx.db(&args[1]), &args[1], now) {
        Ok(h) => h,
        Err(e) => return e,
    };
    if h.contains(&args[2]) {
        return Reply::Int(0);
    }
    h.set(&args[2], &args[3], lim);
    ctx.written(&args[1], "hset");
    Reply::Int(1)
}

/// Runs `f` on the hash under `key` (None when missing) for read commands.
fn read<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&Hash>) -> R) -> Result<R, Reply> {
    let (now, server) = (ctx.now, ctx.server);
    let found = hash_mut(ctx.db(key), key, now);
    super::keys::count_read(server, &found);
    Ok(f(found?.map(|h| &*h)))
}

fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

pub fn hget(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(read(ctx, &args[1], |h| h.and_then(|h| h.get(&args[2])).map_or(Reply::Nil, bulk)))
}

pub fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(read(ctx, &args[1], |h| {
        Reply::Array(args[2..].iter().map(|f| h.and_then(|h| h.get(f)).map_or(Reply::Nil, bulk)).collect())
    }))
}

pub fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(read(ctx, &args[1], |h| {
        Reply::Map(h.map(|h| h.iter().map(|(f, v)| (bulk(f), bulk(v))).collect()).unwrap_or_default())
    }))
}

pub fn hkeys(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(read(ctx, &args[1], |h| {
        Reply::Array(h.map(|h| h.iter().map(|(f, _)| bulk(f)).collect()).unwrap_or_default())
    }))
}

pub fn hvals(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(read(ctx, &args[1], |h| {
        Reply::Array(h.map(|h| h.iter().map(|(_, v)| bulk(v)).collect()).unwrap_or_default())
    }))
}

pub fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(read(ctx, &args[1], |h| Reply::Int(h.is_some_and(|h| h.contains(&args[2])) as i64)))
}

pub fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(read(ctx, &args[1], |h| Reply::Int(h.map_or(0, |h| h.len() as i64))))
}

pub fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(read(ctx, &args[1], |h| Reply::Int(h.and_then(|h| h.get(&args[2])).map_or(0, |v| v.len() as i64))))
}

pub fn hdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let now = ctx.now;
    let db = ctx.db(key);
    let h = match hash_mut(db, key, now) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(h)) => h,
    };
    let removed = args[2..].iter().filter(|f| h.remove(f)).count();
    let dropped = h.is_empty();
    if dropped {
        db.remove(key);
    }
    if removed > 0 {
        ctx.written(key, "hdel");
        // Redis reports the deletion of the emptied key after the HDEL itself.
        if dropped {
            ctx.written(key, "del");
        }
        ctx.set_dirty(removed as u64);
    }
    Reply::Int(removed as i64)
}

pub fn hincrby(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(incr) = parse_i64(&args[3]) else {
        return Reply::not_integer();
    };
    let lim = limits(ctx);
    let now = ctx.now;
    let h = match hash_or_create(ctx.db(&args[1]), &args[1], now) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let cur = match h.get(&args[2]) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => return drop_new_empty(ctx, &args[1], Reply::err("hash value is not an integer")),
        },
    };
    let Some(new) = cur.checked_add(incr) else {
        return drop_new_empty(ctx, &args[1], Reply::err(crate::protocol::errors::INCR_OVERFLOW));
    };
    h.set(&args[2], new.to_string().as_bytes(), lim);
    ctx.written(&args[1], "hincrby");
    Reply::Int(new)
}

/// An error after `hash_or_create` must not leave an empty hash behind.
fn drop_new_empty(ctx: &mut Ctx, key: &[u8], r: Reply) -> Reply {
    let db = ctx.db(key);
    if matches!(db.value_mut(key, 0), Some(Value::Hash(h)) if h.is_empty()) {
        db.remove(key);
    }
    r
}

/// HINCRBYFLOAT computes in x87 extended precision like Redis on x86-64
/// (the same emulation as INCRBYFLOAT), so results match it digit for digit.
pub fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(incr) = longdouble::parse(&args[3]) else {
        return Reply::not_float();
    };
    if incr.is_inf() {
        return Reply::err("value is NaN or Infinity");
    }
    let lim = limits(ctx);
    let now = ctx.now;
    let h = match hash_or_create(ctx.db(&args[1]), &args[1], now) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let cur = match h.get(&args[2]) {
        None => longdouble::Ld::ZERO,
        Some(v) => match longdouble::parse(v) {
            Some(n) => n,
            None => return drop_new_empty(ctx, &args[1], Reply::err("hash value is not a float")),
        },
    };
    let Some(new) = cur.checked_add(incr) else {
        return drop_new_empty(ctx, &args[1], Reply::err(crate::protocol::errors::INCR_NAN));
    };
    let text = Bytes::from(new.to_human());
    h.set(&args[2], &text, lim);
    ctx.written(&args[1], "hincrbyfloat");
    if ctx.propagating() {
        // Replayed as the value it produced, as Redis does.
        ctx.propagate_as(vec![Bytes::from_static(b"HSET"), args[1].clone(), args[2].clone(), text.clone()]);
    }
    Reply::Bulk(text)
}

/// Largest |count| HRANDFIELD serves: the reply is built in memory.
const MAX_RANDFIELD: u64 = 1 << 20;

pub fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(count_arg) = args.get(2) else {
        return reply(read(ctx, &args[1], |h| match h {
            Some(h) if !h.is_empty() => {
                let i = rand::thread_rng().gen_range(0..h.len());
                h.get_index(i).map_or(Reply::Nil, |(f, _)| bulk(f))
            }
            _ => Reply::Nil,
        }));
    };
    let Some(count) = parse_i64(count_arg) else {
        return Reply::not_integer();
    };
    if count == i64::MIN {
        return Reply::err("value is out of range, value must between -9223372036854775807 and 9223372036854775807");
    }
    let withvalues = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && eq_ic(a, "withvalues") => true,
        Some(_) => return Reply::syntax_error(),
    };
    if withvalues && count.unsigned_abs() > (i64::MAX / 2) as u64 {
        return Reply::err(crate::protocol::errors::OUT_OF_RANGE);
    }
    let resp = ctx.resp;
    reply(read(ctx, &args[1], |h| {
        let Some(h) = h else {
            return Reply::Array(vec![]);
        };
        // Our bound (see `MAX_RANDFIELD`), checked where Redis would start replying.
        if count.unsigned_abs() > MAX_RANDFIELD && count < 0 {
            return Reply::err(crate::protocol::errors::OUT_OF_RANGE);
        }
        let picks = pick_fields(h, count);
        // A packed hash has no O(1) positions: index it once.
        let packed: Vec<(&[u8], &[u8])> = match h {
            Hash::Packed(_) => h.iter().collect(),
            Hash::Table(_) => Vec::new(),
        };
        let at = |i: usize| {
            if packed.is_empty() {
                h.get_index(i)
            } else {
                packed.get(i).copied()
            }
        };
        let mut out = Vec::with_capacity(picks.len() * if withvalues { 2 } else { 1 });
        for i in picks {
            let Some((f, v)) = at(i) else { continue };
            match (withvalues, resp) {
                (false, _) => out.push(bulk(f)),
                (true, 3) => out.push(Reply::Array(vec![bulk(f), bulk(v)])),
                (true, _) => {
                    out.push(bulk(f));
                    out.push(bulk(v));
                }
            }
        }
        Reply::Array(out)
    }))
}

/// Positions for HRANDFIELD: `count` distinct ones when positive (all of
/// them, in order, when count >= len), |count| independent draws when negative.
fn pick_fields(h: &Hash, count: i64) -> Vec<usize> {
    let len = h.len();
    let mut rng = rand::thread_rng();
    if count < 0 {
        return (0..count.unsigned_abs()).map(|_| rng.gen_range(0..len)).collect();
    }
    let count = count as u64;
    if count >= len as u64 {
        return (0..len).collect();
    }
    rand::seq::index::sample(&mut rng, len, count as usize).into_vec()
}

pub fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(cursor) = super::sets::parse_cursor(&args[2]) else {
        return Reply::err(crate::protocol::errors::INVALID_CURSOR);
    };
    let empty = || Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(vec![])]);
    let (now, server) = (ctx.now, ctx.server);
    let found = hash_mut(ctx.db(&args[1]), &args[1], now);
    super::keys::count_read(server, &found);
    match found {
        Err(e) => return e,
        Ok(None) => return empty(),
        Ok(Some(_)) => {}
    }
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let Some(v) = args.get(i + 1) else {
            return Reply::syntax_error();
        };
        if eq_ic(&args[i], "count") {
            match parse_i64(v) {
                None => return Reply::not_integer(),
                Some(n) if n < 1 => return Reply::syntax_error(),
                Some(n) => count = n.min(1 << 20) as usize,
            }
        } else if eq_ic(&args[i], "match") {
            pattern = Some(v);
        } else {
            return Reply::syntax_error();
        }
        i += 2;
    }
    let Ok(Some(h)) = hash_mut(ctx.db(&args[1]), &args[1], now) else {
        return empty();
    };
    let mut items = Vec::new();
    let pos = usize::try_from(cursor).unwrap_or(usize::MAX);
    let next = h.scan(pos, count, |f, v| {
        if pattern.is_none_or(|p| glob_match(p, f, false)) {
            items.push(bulk(f));
            items.push(bulk(v));
        }
    });
    Reply::Array(vec![Reply::Bulk(Bytes::from(next.to_string())), Reply::Array(items)])
}

#[cfg(test)]
mod tests {
    use crate::commands::sets::parse_cursor;

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"-"), None);
        assert_eq!(parse_cursor(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_cursor(b"12"), Some(12));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"x"), None);
        assert_eq!(parse_cursor(b"99999999999999999999999"), None);
        assert_eq!(parse_cursor(b"\x00"), Some(0));
        assert_eq!(parse_cursor(b"7\x00x"), Some(7));
        assert_eq!(parse_cursor(b" 0"), None);
    }
}
