//! Set commands (Redis 7.0's t_set.c), with its reply shapes and error texts.
//!
//! Multi-key reads (SINTER, SUNION, SDIFF, SINTERCARD) may see keys on
//! several shards: each source is looked at through `ctx.db(key)` in turn, and
//! only the smallest source (SINTER) or the result is copied.

use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::storage::{Set, Value};
use crate::util::{eq_ic, glob_match, parse_i64};
use bytes::Bytes;
use rand::Rng;

// ------------------------------------------------------------ declarations

pub static COMMANDS: &[CommandSpec] = &[
    cmd("sadd", -3, WRITE | DENYOOM | FAST, K1, G::Set, K(sadd))
        .syntax("key%k member [member ...]")
        .doc("1.0.0", "Adds members to a set.")
        .key_specs(&[ks(&["RW", "insert"], idx(1), range(0, 1, 0))]),
    cmd("srem", -3, WRITE | FAST, K1, G::Set, K(srem))
        .syntax("key%k member [member ...]")
        .doc("1.0.0", "Removes members from a set.")
        .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    cmd("smembers", 2, READONLY, K1, G::Set, K(smembers))
        .syntax("key%k")
        .doc("1.0.0", "Returns every member of a set.")
        .tips(&["nondeterministic_output_order"])
        .key_specs(&[ks(&["RO", "access"], idx(1), range(0, 1, 0))]),
    cmd("sismember", 3, READONLY | FAST, K1, G::Set, K(sismember))
        .syntax("key%k member")
        .doc("1.0.0", "Tells whether a value is a member of a set.")
        .key_specs(&[ks(&["RO"], idx(1), range(0, 1, 0))]),
    cmd("smismember", -3, READONLY | FAST, K1, G::Set, K(smismember))
        .syntax("key%k member [member ...]")
        .doc("6.2.0", "Tells, for several values, whether each is a member of a set."),
    cmd("scard", 2, READONLY | FAST, K1, G::Set, K(scard))
        .syntax("key%k")
        .doc("1.0.0", "Counts the members of a set.")
        .key_specs(&[ks(&["RO"], idx(1), range(0, 1, 0))]),
    cmd("spop", -2, WRITE | FAST, K1, G::Set, K(spop))
        .syntax("key%k [count%i]")
        .doc("1.0.0", "Removes and returns random members of a set.")
        .tips(&["nondeterministic_output"])
        .key_specs(&[ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0))]),
    cmd("srandmember", -2, READONLY, K1, G::Set, K(srandmember))
        .syntax("key%k [count%i]")
        .doc("1.0.0", "Returns random members of a set.")
        .tips(&["nondeterministic_output"]),
    cmd("smove", 4, WRITE | FAST, K12, G::Set, K(smove))
        .syntax("source%k destination%k member")
        .doc("1.0.0", "Moves a member from one set to another.")
        .key_specs(&[
            ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0)),
            ks(&["RW", "insert"], idx(2), range(0, 1, 0)),
        ]),
    cmd("sinter", -2, READONLY | MULTI_SHARD, KALL, G::Set, K(sinter))
        .syntax("key%k [key ...]")
        .doc("1.0.0", "Intersects sets.")
        .tips(&["nondeterministic_output_order"]),
    cmd("sintercard", -3, READONLY | MULTI_SHARD, nk(1), G::Set, K(sintercard))
        .syntax("numkeys%i key%k [key ...] [LIMIT limit%i]")
        .doc("7.0.0", "Counts the members of the intersection of sets."),
    cmd("sunion", -2, READONLY | MULTI_SHARD, KALL, G::Set, K(sunion))
        .syntax("key%k [key ...]")
        .doc("1.0.0", "Unites sets.")
        .tips(&["nondeterministic_output_order"]),
    cmd("sdiff", -2, READONLY | MULTI_SHARD, KALL, G::Set, K(sdiff))
        .syntax("key%k [key ...]")
        .doc("1.0.0", "Subtracts sets from the first.")
        .tips(&["nondeterministic_output_order"]),
    cmd("sinterstore", -3, WRITE | DENYOOM, KALL, G::Set, K(sinterstore))
        .syntax("destination%k key%k [key ...]")
        .doc("1.0.0", "Stores the intersection of sets.")
        .key_specs(&[ks(&["RW", "update"], idx(1), range(0, 1, 0)), ks(&["RO", "access"], idx(2), range(-1, 1, 0))]),
    cmd("sunionstore", -3, WRITE | DENYOOM, KALL, G::Set, K(sunionstore))
        .syntax("destination%k key%k [key ...]")
        .doc("1.0.0", "Stores the union of sets.")
        .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0)), ks(&["RO", "access"], idx(2), range(-1, 1, 0))]),
    cmd("sdiffstore", -3, WRITE | DENYOOM, KALL, G::Set, K(sdiffstore))
        .syntax("destination%k key%k [key ...]")
        .doc("1.0.0", "Stores the difference of sets.")
        .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0)), ks(&["RO", "access"], idx(2), range(-1, 1, 0))]),
    cmd("sscan", -3, READONLY, K1, G::Set, K(sscan))
        .syntax("key%k cursor%i [MATCH pattern%p] [COUNT count%i]")
        .doc("2.8.0", "Iterates the members of a set with a cursor.")
        .tips(&["nondeterministic_output"]),
];

/// Most elements a random-member command with a negative count may reply
/// with: a bound on the reply's memory that Redis lacks.
pub const RANDOM_REPLY_MAX: u64 = 10_000_000;

fn max_intset(ctx: &Ctx) -> usize {
    let n = ctx.server.config.set_max_intset_entries.load(std::sync::atomic::Ordering::Relaxed);
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The set under `key`: None when missing, WRONGTYPE for another type.
fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c Set>, Reply> {
    let now = ctx.now;
    match ctx.db(key).value(key, now) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// `read` for a read command's lookup: counts a keyspace hit or miss.
fn read_counted<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c Set>, Reply> {
    let server = ctx.server;
    let found = read(ctx, key);
    super::keys::count_read(server, &found);
    found
}

fn write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Set>, Reply> {
    let now = ctx.now;
    match ctx.db(key).value_mut(key, now) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// Deletes `key` when the set under it became empty (Redis never keeps one).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.now;
    if matches!(ctx.db(key).value(key, now), Some(Value::Set(s)) if s.is_empty()) {
        ctx.db(key).remove(key);
        ctx.written(key, "del");
    }
}

fn bulks(members: Vec<Bytes>) -> Vec<Reply> {
    members.into_iter().map(Reply::Bulk).collect()
}

pub fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let max = max_intset(ctx);
    let now = ctx.now;
    let db = ctx.db(key);
    match db.value(key, now) {
        Some(Value::Set(_)) => {}
        Some(_) => return Reply::wrong_type(),
        None => db.set(key, Value::Set(Box::new(Set::for_member(&args[2])))),
    }
    let Some(Value::Set(set)) = db.value_mut(key, now) else { return Reply::wrong_type() };
    let added = args[2..].iter().filter(|m| set.insert(m, max)).count();
    if added > 0 {
        ctx.written(key, "sadd");
        ctx.set_dirty(added as u64);
    }
    Reply::Int(added as i64)
}

pub fn srem(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let set = match write(ctx, key) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let mut removed = 0;
    for m in &args[2..] {
        if set.remove(m) {
            removed += 1;
            if set.is_empty() {
                break;
            }
        }
    }
    if removed > 0 {
        ctx.written(key, "srem");
        drop_if_empty(ctx, key);
        ctx.set_dirty(removed as u64);
    }
    Reply::Int(removed)
}

pub fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match read_counted(ctx, &args[1]) {
        Ok(Some(s)) => Reply::Set(bulks(s.members())),
        Ok(None) => Reply::Set(vec![]),
        Err(e) => e,
    }
}

pub fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match read_counted(ctx, &args[1]) {
        Ok(s) => Reply::Int(s.is_some_and(|s| s.contains(&args[2])) as i64),
        Err(e) => e,
    }
}

pub fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match read_counted(ctx, &args[1]) {
        Ok(s) => Reply::Array(args[2..].iter().map(|m| Reply::Int(s.is_some_and(|s| s.contains(m)) as i64)).collect()),
        Err(e) => e,
    }
}

pub fn scard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match read_counted(ctx, &args[1]) {
        Ok(s) => Reply::Int(s.map_or(0, |s| s.len()) as i64),
        Err(e) => e,
    }
}

pub fn spop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    if args.len() > 3 {
        return Reply::syntax_error();
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => return Reply::err(crate::protocol::errors::OUT_OF_RANGE_POSITIVE),
        },
    };
    let set = match write(ctx, key) {
        Ok(Some(s)) => s,
        Ok(None) => return if count.is_some() { Reply::Set(vec![]) } else { Reply::Nil },
        Err(e) => return e,
    };
    let mut rng = rand::thread_rng();
    // Redis counts a change per member popped (the deletion of the key included).
    let changes = count.map_or(1, |n| n.min(set.len() as u64));
    let took_all = count.is_some_and(|n| n >= set.len() as u64);
    let reply = match count {
        None => {
            let i = set.random_index(&mut rng).unwrap_or(0);
            set.remove_at(i).map_or(Reply::Nil, Reply::Bulk)
        }
        Some(0) => return Reply::Set(vec![]),
        Some(n) if n >= set.len() as u64 => {
            let all = std::mem::take(set).members();
            Reply::Set(bulks(all))
        }
        Some(n) => {
            let mut out = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let Some(i) = set.random_index(&mut rng) else { break };
                out.extend(set.remove_at(i).map(Reply::Bulk));
            }
            Reply::Set(out)
        }
    };
    ctx.written(key, "spop");
    drop_if_empty(ctx, key);
    ctx.set_dirty(changes);
    if took_all {
        // Popping all of it, Redis replies through its SUNION code, whose
        // read lookup counts a keyspace hit.
        ctx.server.stats.keyspace_hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    if ctx.propagating() {
        replay_spop(ctx, key, took_all, &reply);
    }
    reply
}

/// SPOP's randomness made concrete for the write stream, as Redis does: the
/// members it took as SREM (1,024 per command), or DEL/UNLINK when it took
/// the whole set.
fn replay_spop(ctx: &mut Ctx, key: &Bytes, took_all: bool, reply: &Reply) {
    let members: Vec<Bytes> = match reply {
        Reply::Bulk(m) => vec![m.clone()],
        Reply::Set(items) => {
            items.iter().filter_map(|r| if let Reply::Bulk(m) = r { Some(m.clone()) } else { None }).collect()
        }
        _ => return,
    };
    if took_all {
        let lazy = ctx.server.config.get("lazyfree-lazy-server-del").as_deref() == Some("yes");
        let verb: &'static [u8] = if lazy { b"UNLINK" } else { b"DEL" };
        ctx.propagate_as(vec![Bytes::from_static(verb), key.clone()]);
        return;
    }
    for chunk in members.chunks(1024) {
        let mut argv = Vec::with_capacity(chunk.len() + 2);
        argv.push(Bytes::from_static(b"SREM"));
        argv.push(key.clone());
        argv.extend(chunk.iter().cloned());
        ctx.propagate_as(argv);
    }
}

pub fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return Reply::syntax_error();
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            None => return Reply::not_integer(),
            Some(i64::MIN) => {
                return Reply::err(
                    "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                )
            }
            Some(n) => Some(n),
        },
    };
    let set = match read_counted(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return if count.is_some() { Reply::Array(vec![]) } else { Reply::Nil },
        Err(e) => return e,
    };
    // Our bound (see `RANDOM_REPLY_MAX`), checked where Redis would start replying.
    if count.is_some_and(|n| n < 0 && n.unsigned_abs() > RANDOM_REPLY_MAX) {
        return Reply::err(crate::protocol::errors::OUT_OF_RANGE);
    }
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        return set.random_index(&mut rng).and_then(|i| set.member_at(i)).map_or(Reply::Nil, Reply::Bulk);
    };
    Reply::Array(random_members(set, count, &mut rng))
}

/// SRANDMEMBER's sampling: distinct members for a positive count, draws
/// with repetition for a negative one.
fn random_members(set: &Set, count: i64, rng: &mut impl Rng) -> Vec<Reply> {
    let len = set.len();
    if count >= 0 {
        let n = count as u64;
        if n >= len as u64 {
            return bulks(set.members());
        }
        let picks = rand::seq::index::sample(rng, len, n as usize);
        return picks.into_iter().filter_map(|i| set.member_at(i)).map(Reply::Bulk).collect();
    }
    (0..count.unsigned_abs().min(RANDOM_REPLY_MAX))
        .filter_map(|_| set.member_at(rng.gen_range(0..len)))
        .map(Reply::Bulk)
        .collect()
}

pub fn smove(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let now = ctx.now;
    let src_has = match read(ctx, src) {
        Ok(None) => return Reply::Int(0),
        Ok(Some(s)) => s.contains(member),
        Err(e) => return e,
    };
    let dst_exists = match read(ctx, dst) {
        Ok(d) => d.is_some(),
        Err(e) => return e,
    };
    if src == dst || !src_has {
        return Reply::Int(src_has as i64);
    }
    if let Ok(Some(s)) = write(ctx, src) {
        s.remove(member);
    }
    ctx.written(src, "srem");
    drop_if_empty(ctx, src);
    let max = max_intset(ctx);
    if !dst_exists {
        ctx.db(dst).set(dst, Value::Set(Box::new(Set::for_member(member))));
    }
    let added = match ctx.db(dst).value_mut(dst, now) {
        Some(Value::Set(d)) => d.insert(member, max),
        _ => false,
    };
    if added {
        ctx.written(dst, "sadd");
    }
    // One change for the source, one more when the destination gained the member.
    ctx.set_dirty(1 + added as u64);
    Reply::Int(1)
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Type-checks every key (as Redis does before computing) and returns each
/// key's cardinality, None for a missing key.
fn sizes(ctx: &mut Ctx, keys: &[Bytes]) -> Result<Vec<Option<usize>>, Reply> {
    keys.iter().map(|k| read_counted(ctx, k).map(|s| s.map(|s| s.len()))).collect()
}

/// The result of SINTER/SUNION/SDIFF over `keys`, built as Redis builds its
/// temporary set (starting as an intset), so the encoding and, for an
/// intset, the reply order match. `limit` stops an intersection early.
fn compute(ctx: &mut Ctx, keys: &[Bytes], op: Op, limit: usize) -> Result<Set, Reply> {
    let sizes = sizes(ctx, keys)?;
    let max = max_intset(ctx);
    let mut out = Set::default();
    match op {
        Op::Inter => {
            if sizes.iter().any(|s| s.unwrap_or(0) == 0) {
                return Ok(out);
            }
            let mut order: Vec<usize> = (0..keys.len()).collect();
            order.sort_by_key(|&i| sizes[i]);
            let mut cands = read(ctx, &keys[order[0]])?.map(|s| s.members()).unwrap_or_default();
            for &i in &order[1..] {
                let Some(s) = read(ctx, &keys[i])? else { return Ok(out) };
                cands.retain(|m| s.contains(m));
            }
            for m in cands {
                out.insert(&m, max);
                if limit != 0 && out.len() >= limit {
                    break;
                }
            }
        }
        Op::Union => {
            for k in keys {
                if let Some(s) = read(ctx, k)? {
                    s.for_each(|m| {
                        out.insert(m, max);
                    });
                }
            }
        }
        Op::Diff => {
            let Some(first) = read(ctx, &keys[0])? else { return Ok(out) };
            let mut cands = first.members();
            for k in &keys[1..] {
                if cands.is_empty() {
                    break;
                }
                if let Some(s) = read(ctx, k)? {
                    cands.retain(|m| !s.contains(m));
                }
            }
            for m in cands {
                out.insert(&m, max);
            }
        }
    }
    Ok(out)
}

fn read_op(ctx: &mut Ctx, args: &[Bytes], op: Op) -> Reply {
    match compute(ctx, &args[1..], op, 0) {
        Ok(s) => Reply::Set(bulks(s.members())),
        Err(e) => e,
    }
}

fn store_op(ctx: &mut Ctx, args: &[Bytes], op: Op, event: &'static str) -> Reply {
    let dst = &args[1];
    let result = match compute(ctx, &args[2..], op, 0) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let n = result.len();
    let now = ctx.now;
    if n == 0 {
        if ctx.db(dst).delete(dst, now) {
            ctx.written(dst, "del");
        }
    } else {
        ctx.db(dst).set(dst, Value::Set(Box::new(result)));
        ctx.written(dst, event);
    }
    Reply::Int(n as i64)
}

pub fn sinter(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    read_op(ctx, args, Op::Inter)
}

pub fn sunion(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    read_op(ctx, args, Op::Union)
}

pub fn sdiff(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    read_op(ctx, args, Op::Diff)
}

pub fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    store_op(ctx, args, Op::Inter, "sinterstore")
}

pub fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    store_op(ctx, args, Op::Union, "sunionstore")
}

pub fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    store_op(ctx, args, Op::Diff, "sdiffstore")
}

pub fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let numkeys = match parse_i64(&args[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return Reply::err(crate::protocol::errors::NUMKEYS_POSITIVE),
    };
    if numkeys > (args.len() - 2) as u64 {
        return Reply::err(crate::protocol::errors::NUMKEYS_TOO_MANY);
    }
    let end = 2 + numkeys as usize;
    let mut limit = 0usize;
    let mut j = end;
    while j < args.len() {
        if eq_ic(&args[j], "limit") && j + 1 < args.len() {
            limit = match parse_i64(&args[j + 1]) {
                Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                _ => return Reply::err(crate::protocol::errors::LIMIT_NEGATIVE),
            };
            j += 2;
        } else {
            return Reply::syntax_error();
        }
    }
    match compute(ctx, &args[2..end], Op::Inter, limit) {
        Ok(s) => Reply::Int(s.len() as i64),
        Err(e) => e,
    }
}

/// The options of SSCAN/HSCAN/ZSCAN after the cursor: (pattern, count).
pub fn scan_options(args: &[Bytes]) -> Result<(Option<&[u8]>, usize), Reply> {
    let mut pattern = None;
    let mut count = 10usize;
    let mut j = 0;
    while j < args.len() {
        let more = j + 1 < args.len();
        if eq_ic(&args[j], "count") && more {
            match parse_i64(&args[j + 1]) {
                None => return Err(Reply::not_integer()),
                Some(n) if n < 1 => return Err(Reply::syntax_error()),
                Some(n) => count = usize::try_from(n).unwrap_or(usize::MAX),
            }
        } else if eq_ic(&args[j], "match") && more {
            let p = &args[j + 1][..];
            // "*" matches everything: skip the matching work, as Redis does.
            pattern = (p != b"*").then_some(p);
        } else {
            return Err(Reply::syntax_error());
        }
        j += 2;
    }
    Ok((pattern, count))
}

/// Parses a SCAN-family cursor as Redis does, with C's `strtoul`: an
/// optional sign (a '-' wraps around), digits, nothing else; the empty
/// string is 0; a value past 64 bits is refused.
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    // Redis reads the cursor with strtoul, as a C string: it ends at the
    // first NUL byte (`"\x00"` and `"7\x00x"` are the cursors 0 and 7).
    let arg = arg.split(|&b| b == 0).next().unwrap_or_default();
    if arg.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

pub fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(cursor) = parse_cursor(&args[2]) else { return Reply::err(crate::protocol::errors::INVALID_CURSOR) };
    let set = match read_counted(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(vec![])]),
        Err(e) => return e,
    };
    let (pattern, count) = match scan_options(&args[3..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    let next = set.scan(cursor, count, |m| {
        if pattern.is_none_or(|p| glob_match(p, &m, false)) {
            items.push(Reply::Bulk(m));
        }
    });
    Reply::Array(vec![Reply::bulk_str(&next.to_string()), Reply::Array(items)])
}
