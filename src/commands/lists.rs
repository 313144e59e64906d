//! List commands (Redis's t_list.c). Argument errors come before type
//! errors or after them exactly where Redis checks them.

use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::protocol::{BulkArray, Reply};
use crate::storage::{Db, List, Value};
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;

// ------------------------------------------------------------ declarations

pub static COMMANDS: &[CommandSpec] = &[
    cmd("lpush", -3, WRITE | DENYOOM | FAST, K1, G::List, K(lpush))
        .syntax("key%k element [element ...]")
        .doc("1.0.0", "Prepends elements to a list.")
        .key_specs(&[ks(&["RW", "insert"], idx(1), range(0, 1, 0))]),
    cmd("rpush", -3, WRITE | DENYOOM | FAST, K1, G::List, K(rpush))
        .syntax("key%k element [element ...]")
        .doc("1.0.0", "Appends elements to a list.")
        .key_specs(&[ks(&["RW", "insert"], idx(1), range(0, 1, 0))]),
    cmd("lpushx", -3, WRITE | DENYOOM | FAST, K1, G::List, K(lpushx))
        .syntax("key%k element [element ...]")
        .doc("2.2.0", "Prepends elements to an existing list.")
        .key_specs(&[ks(&["RW", "insert"], idx(1), range(0, 1, 0))]),
    cmd("rpushx", -3, WRITE | DENYOOM | FAST, K1, G::List, K(rpushx))
        .syntax("key%k element [element ...]")
        .doc("2.2.0", "Appends elements to an existing list.")
        .key_specs(&[ks(&["RW", "insert"], idx(1), range(0, 1, 0))]),
    cmd("lpop", -2, WRITE | FAST, K1, G::List, K(lpop))
        .syntax("key%k [count%i]")
        .doc("1.0.0", "Removes and returns elements from the head of a list.")
        .key_specs(&[ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0))]),
    cmd("rpop", -2, WRITE | FAST, K1, G::List, K(rpop))
        .syntax("key%k [count%i]")
        .doc("1.0.0", "Removes and returns elements from the tail of a list.")
        .key_specs(&[ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0))]),
    cmd("llen", 2, READONLY | FAST, K1, G::List, K(llen))
        .syntax("key%k")
        .doc("1.0.0", "Returns the length of a list.")
        .key_specs(&[ks(&["RO"], idx(1), range(0, 1, 0))]),
    cmd("lrange", 4, READONLY, K1, G::List, K(lrange))
        .syntax("key%k start%i stop%i")
        .doc("1.0.0", "Returns a range of list elements.")
        .key_specs(&[ks(&["RO", "access"], idx(1), range(0, 1, 0))]),
    cmd("lindex", 3, READONLY, K1, G::List, K(lindex))
        .syntax("key%k index%i")
        .doc("1.0.0", "Returns the list element at an index."),
    cmd("lset", 4, WRITE | DENYOOM, K1, G::List, K(lset))
        .syntax("key%k index%i element")
        .doc("1.0.0", "Replaces the list element at an index."),
    cmd("lrem", 4, WRITE, K1, G::List, K(lrem))
        .syntax("key%k count%i element")
        .doc("1.0.0", "Removes occurrences of an element from a list.")
        .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    cmd("ltrim", 4, WRITE, K1, G::List, K(ltrim))
        .syntax("key%k start%i stop%i")
        .doc("1.0.0", "Keeps only a range of a list.")
        .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    cmd("linsert", 5, WRITE | DENYOOM, K1, G::List, K(linsert))
        .syntax("key%k (BEFORE|AFTER) pivot element")
        .doc("2.2.0", "Inserts an element before or after another in a list.")
        .key_specs(&[ks(&["RW", "insert"], idx(1), range(0, 1, 0))]),
    cmd("lpos", -3, READONLY, K1, G::List, K(lpos))
        .syntax("key%k element [RANK rank%i] [COUNT num-matches%i] [MAXLEN len%i]")
        .doc("6.0.6", "Finds the positions of an element in a list."),
    cmd("lmove", 5, WRITE | DENYOOM, K12, G::List, K(lmove))
        .syntax("source%k destination%k (LEFT|RIGHT) (LEFT|RIGHT)")
        .doc("6.2.0", "Pops an element from one list and pushes it onto another.")
        .key_specs(&[
            ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0)),
            ks(&["RW", "insert"], idx(2), range(0, 1, 0)),
        ]),
    cmd("rpoplpush", 3, WRITE | DENYOOM, K12, G::List, K(rpoplpush))
        .syntax("source%k destination%k")
        .doc("1.2.0", "Pops from the tail of one list and pushes to the head of another.")
        .key_specs(&[
            ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0)),
            ks(&["RW", "insert"], idx(2), range(0, 1, 0)),
        ]),
    cmd("lmpop", -4, WRITE, nk(1), G::List, K(lmpop))
        .syntax("numkeys%i key%k [key ...] (LEFT|RIGHT) [COUNT count%i]")
        .doc("7.0.0", "Pops elements from the first non-empty of several lists.")
        .key_specs(&[ks(&["RW", "access", "delete"], idx(1), keynum(0, 1, 1))]),
    cmd(
        "blpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING | MULTI_SHARD,
        k(1, -2, 1),
        G::List,
        B(crate::commands::blocking::attempt),
    )
    .syntax("key%k [key ...] timeout%d")
    .doc("2.0.0", "Pops from the head of the first non-empty list, waiting if all are empty.")
    .key_specs(&[ks(&["RW", "access", "delete"], idx(1), range(-2, 1, 0))]),
    cmd(
        "brpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING | MULTI_SHARD,
        k(1, -2, 1),
        G::List,
        B(crate::commands::blocking::attempt),
    )
    .syntax("key%k [key ...] timeout%d")
    .doc("2.0.0", "Pops from the tail of the first non-empty list, waiting if all are empty.")
    .key_specs(&[ks(&["RW", "access", "delete"], idx(1), range(-2, 1, 0))]),
    cmd("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, K12, G::List, B(crate::commands::blocking::attempt))
        .syntax("source%k destination%k (LEFT|RIGHT) (LEFT|RIGHT) timeout%d")
        .doc("6.2.0", "Moves an element between lists, waiting for one to arrive.")
        .key_specs(&[
            ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0)),
            ks(&["RW", "insert"], idx(2), range(0, 1, 0)),
        ]),
    cmd("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, K12, G::List, B(crate::commands::blocking::attempt))
        .syntax("source%k destination%k timeout%d")
        .doc("2.2.0", "Pops from one list's tail onto another's head, waiting if empty.")
        .key_specs(&[
            ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0)),
            ks(&["RW", "insert"], idx(2), range(0, 1, 0)),
        ]),
    cmd("blmpop", -5, WRITE | BLOCKING | MULTI_SHARD, nk(2), G::List, B(crate::commands::blocking::attempt))
        .syntax("timeout%d numkeys%i key%k [key ...] (LEFT|RIGHT) [COUNT count%i]")
        .doc("7.0.0", "Pops elements from the first non-empty of several lists, waiting if all are empty.")
        .key_specs(&[ks(&["RW", "access", "delete"], idx(2), keynum(0, 1, 1))]),
];

/// The list under `key`: Ok(None) when missing, Err(WRONGTYPE) for another type.
fn list_mut<'d>(db: &'d mut Db, key: &[u8], now: u64) -> Result<Option<&'d mut List>, Reply> {
    match db.value_mut(key, now) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// `list_mut` for read commands: counts a keyspace hit or miss.
fn list_read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut List>, Reply> {
    let (now, server) = (ctx.now, ctx.server);
    let found = list_mut(ctx.db(key), key, now);
    super::keys::count_read(server, &found);
    found
}

/// Removes `key` if its list became empty (Redis never keeps empty
/// collections); true when it did.
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) -> bool {
    let db = ctx.db(key);
    let empty = matches!(db.value_mut(key, 0), Some(Value::List(l)) if l.is_empty());
    if empty {
        db.remove(key);
    }
    empty
}

/// Reports a change to `key` with `event`, then its deletion when the change
/// emptied it: Redis notifies in that order.
fn written_maybe_dropped(ctx: &mut Ctx, key: &[u8], event: &'static str) {
    let dropped = drop_if_empty(ctx, key);
    ctx.written(key, event);
    if dropped {
        ctx.written(key, "del");
    }
}

fn side(arg: &[u8]) -> Option<bool> {
    if eq_ic(arg, "left") {
        Some(true)
    } else if eq_ic(arg, "right") {
        Some(false)
    } else {
        None
    }
}

/// Resolves Redis's start/stop range over `len` elements; None when empty.
fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start.saturating_add(len) } else { start };
    let mut stop = if stop < 0 { stop.saturating_add(len) } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

fn push_generic(ctx: &mut Ctx, args: &[Bytes], left: bool, only_existing: bool) -> Reply {
    let key = &args[1];
    let now = ctx.now;
    let db = ctx.db(key);
    let len = match list_mut(db, key, now) {
        Err(e) => return e,
        Ok(Some(l)) => {
            args[2..].iter().for_each(|e| l.push(left, e));
            l.len()
        }
        Ok(None) if only_existing => return Reply::Int(0),
        Ok(None) => {
            let mut l = List::new();
            args[2..].iter().for_each(|e| l.push(left, e));
            let n = l.len();
            db.set(key, Value::List(Box::new(l)));
            n
        }
    };
    ctx.written(key, if left { "lpush" } else { "rpush" });
    // A change per element pushed, as Redis counts.
    ctx.set_dirty(args.len() as u64 - 2);
    Reply::Int(len as i64)
}

pub fn lpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    push_generic(ctx, args, true, false)
}

pub fn rpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    push_generic(ctx, args, false, false)
}

pub fn lpushx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    push_generic(ctx, args, true, true)
}

pub fn rpushx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    push_generic(ctx, args, false, true)
}

/// Pops up to `count` elements from one end of `key`, deleting it when it
/// empties. None when the key is missing.
pub fn pop_many(ctx: &mut Ctx, key: &[u8], left: bool, count: usize) -> Result<Option<Vec<Bytes>>, Reply> {
    let now = ctx.now;
    let Some(l) = list_mut(ctx.db(key), key, now)? else {
        return Ok(None);
    };
    let n = count.min(l.len());
    let out: Vec<Bytes> = (0..n).filter_map(|_| l.pop(left)).collect();
    if !out.is_empty() {
        written_maybe_dropped(ctx, key, if left { "lpop" } else { "rpop" });
        ctx.set_dirty(out.len() as u64);
    }
    Ok(Some(out))
}

fn pop_generic(ctx: &mut Ctx, args: &[Bytes], left: bool) -> Reply {
    if args.len() > 3 {
        return Reply::wrong_arity(if left { "lpop" } else { "rpop" });
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Reply::err(crate::protocol::errors::OUT_OF_RANGE_POSITIVE),
        },
    };
    match (pop_many(ctx, &args[1], left, count.unwrap_or(1)), count) {
        (Err(e), _) => e,
        (Ok(None), None) => Reply::Nil,
        (Ok(None), Some(_)) => Reply::NilArray,
        (Ok(Some(mut v)), None) => v.pop().map(Reply::Bulk).unwrap_or(Reply::Nil),
        (Ok(Some(v)), Some(_)) => Reply::Array(v.into_iter().map(Reply::Bulk).collect()),
    }
}

pub fn lpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    pop_generic(ctx, args, true)
}

pub fn rpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    pop_generic(ctx, args, false)
}

pub fn llen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match list_read(ctx, &args[1]) {
        Err(e) => e,
        Ok(l) => Reply::Int(l.map_or(0, |l| l.len() as i64)),
    }
}

pub fn lrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (Some(start), Some(stop)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return Reply::not_integer();
    };
    let l = match list_read(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(vec![]),
        Ok(Some(l)) => l,
    };
    match clamp_range(start, stop, l.len()) {
        None => Reply::Array(vec![]),
        Some((a, b)) => {
            // Written straight into wire form: no allocation per element.
            let mut out = BulkArray::with_capacity((b - a + 1).saturating_mul(16).min(1 << 20));
            for e in l.range_iter(a, b) {
                out.push(e);
            }
            Reply::BulkArray(out)
        }
    }
}

/// Maps a possibly negative index onto 0..len.
fn index_of(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i.checked_add(len as i64)? } else { i };
    (i >= 0 && (i as u64) < len as u64).then_some(i as usize)
}

pub fn lindex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let l = match list_read(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Nil,
        Ok(Some(l)) => l,
    };
    let Some(i) = parse_i64(&args[2]) else {
        return Reply::not_integer();
    };
    match index_of(i, l.len()).and_then(|i| l.get(i)) {
        Some(e) => Reply::Bulk(Bytes::copy_from_slice(e)),
        None => Reply::Nil,
    }
}

pub fn lset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let l = match list_mut(ctx.db(&args[1]), &args[1], now) {
        Err(e) => return e,
        Ok(None) => return Reply::err(crate::protocol::errors::NO_SUCH_KEY),
        Ok(Some(l)) => l,
    };
    let Some(i) = parse_i64(&args[2]) else {
        return Reply::not_integer();
    };
    match index_of(i, l.len()) {
        Some(i) if l.set(i, &args[3]) => {
            ctx.written(&args[1], "lset");
            Reply::ok()
        }
        _ => Reply::err("index out of range"),
    }
}

pub fn lrem(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(count) = parse_i64(&args[2]) else {
        return Reply::not_integer();
    };
    let (key, elem) = (&args[1], &args[3][..]);
    let now = ctx.now;
    let l = match list_mut(ctx.db(key), key, now) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(l)) => l,
    };
    let len = l.len();
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs().min(usize::MAX as u64) as usize };
    // Indexes to drop, chosen from the head (count >= 0) or the tail.
    let hits: Vec<usize> = if count >= 0 {
        l.iter().enumerate().filter(|(_, e)| *e == elem).map(|(i, _)| i).take(limit).collect()
    } else {
        l.iter().rev().enumerate().filter(|(_, e)| *e == elem).map(|(i, _)| len - 1 - i).take(limit).collect()
    };
    if hits.is_empty() {
        return Reply::Int(0);
    }
    let mut drop = hits.clone();
    drop.sort_unstable();
    l.retain(|i, _| drop.binary_search(&i).is_err());
    written_maybe_dropped(ctx, key, "lrem");
    ctx.set_dirty(hits.len() as u64);
    Reply::Int(hits.len() as i64)
}

pub fn ltrim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (Some(start), Some(stop)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return Reply::not_integer();
    };
    let key = &args[1];
    let now = ctx.now;
    let l = match list_mut(ctx.db(key), key, now) {
        Err(e) => return e,
        Ok(None) => return Reply::ok(),
        Ok(Some(l)) => l,
    };
    let len = l.len();
    let (front, back) = match clamp_range(start, stop, len) {
        None => (len, 0),
        Some((a, b)) => (a, len - 1 - b),
    };
    // Redis reports (and dirties WATCH) even when nothing was trimmed.
    l.drop_front(front);
    l.drop_back(back);
    written_maybe_dropped(ctx, key, "ltrim");
    // A change per element removed: none (and no propagation) when nothing was.
    ctx.set_dirty((front + back).min(len) as u64);
    Reply::ok()
}

pub fn linsert(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let after = if eq_ic(&args[2], "after") {
        true
    } else if eq_ic(&args[2], "before") {
        false
    } else {
        return Reply::syntax_error();
    };
    let key = &args[1];
    let now = ctx.now;
    let l = match list_mut(ctx.db(key), key, now) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(l)) => l,
    };
    let Some(pos) = l.iter().position(|e| e == &args[3][..]) else {
        return Reply::Int(-1);
    };
    l.insert(pos, after, &args[4]);
    let len = l.len();
    ctx.written(key, "linsert");
    Reply::Int(len as i64)
}

struct LposOpts {
    rank: i64,
    count: Option<usize>,
    maxlen: usize,
}

fn lpos_opts(args: &[Bytes]) -> Result<LposOpts, Reply> {
    let mut o = LposOpts { rank: 1, count: None, maxlen: 0 };
    let mut i = 3;
    while i < args.len() {
        let Some(v) = args.get(i + 1) else {
            return Err(Reply::syntax_error());
        };
        if eq_ic(&args[i], "rank") {
            o.rank = parse_i64(v).ok_or_else(Reply::not_integer)?;
            if o.rank == 0 {
                return Err(Reply::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if eq_ic(&args[i], "count") {
            // Redis reports a non-integer COUNT or MAXLEN as negative.
            match parse_i64(v) {
                Some(c) if c >= 0 => o.count = Some(c as usize),
                _ => return Err(Reply::err("COUNT can't be negative")),
            }
        } else if eq_ic(&args[i], "maxlen") {
            match parse_i64(v) {
                Some(m) if m >= 0 => o.maxlen = m as usize,
                _ => return Err(Reply::err("MAXLEN can't be negative")),
            }
        } else {
            return Err(Reply::syntax_error());
        }
        i += 2;
    }
    Ok(o)
}

pub fn lpos(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let o = match lpos_opts(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let l = match list_read(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return if o.count.is_some() { Reply::Array(vec![]) } else { Reply::Nil },
        Ok(Some(l)) => l,
    };
    let elem = &args[2][..];
    let len = l.len();
    let from_tail = o.rank < 0;
    // Redis 7.0 negates RANK without an overflow check; i64::MIN ends up as -1.
    let skip = if o.rank == i64::MIN { 0 } else { o.rank.unsigned_abs() - 1 };
    let want = match o.count {
        Some(0) => usize::MAX,
        Some(c) => c,
        None => 1,
    };
    let scan = if o.maxlen == 0 { len } else { o.maxlen.min(len) };
    let items: Box<dyn Iterator<Item = (usize, &[u8])>> = if from_tail {
        Box::new(l.iter().rev().enumerate().map(|(i, e)| (len - 1 - i, e)))
    } else {
        Box::new(l.iter().enumerate())
    };
    let found: Vec<Reply> = items
        .take(scan)
        .filter(|(_, e)| *e == elem)
        .skip(skip.min(usize::MAX as u64) as usize)
        .take(want)
        .map(|(i, _)| Reply::Int(i as i64))
        .collect();
    match o.count {
        Some(_) => Reply::Array(found),
        None => found.into_iter().next().unwrap_or(Reply::Nil),
    }
}

/// LMOVE's core: pops from `src` and pushes onto `dst`. Nil when `src` is
/// missing; WRONGTYPE when either key holds another type.
pub fn move_one(ctx: &mut Ctx, src: &Bytes, dst: &Bytes, from_left: bool, to_left: bool) -> Reply {
    let now = ctx.now;
    match list_mut(ctx.db(src), src, now) {
        Err(e) => return e,
        Ok(None) => return Reply::Nil,
        Ok(Some(_)) => {}
    }
    if let Err(e) = list_mut(ctx.db(dst), dst, now) {
        return e;
    }
    let Ok(Some(l)) = list_mut(ctx.db(src), src, now) else {
        return Reply::Nil;
    };
    let Some(e) = l.pop(from_left) else {
        return Reply::Nil;
    };
    let (push_event, pop_event) = (if to_left { "lpush" } else { "rpush" }, if from_left { "lpop" } else { "rpop" });
    if src == dst {
        // Rotation: the list never goes through the empty state.
        l.push(to_left, &e);
        ctx.written(src, push_event);
        ctx.written(src, pop_event);
        ctx.set_dirty(1);
        return Reply::Bulk(e);
    }
    // Redis pushes (and notifies) on the destination before it reports the
    // pop and a possible deletion of the source.
    let db = ctx.db(dst);
    match list_mut(db, dst, now) {
        Ok(Some(d)) => d.push(to_left, &e),
        _ => {
            let mut d = List::new();
            d.push(to_left, &e);
            db.set(dst, Value::List(Box::new(d)));
        }
    }
    ctx.written(dst, push_event);
    written_maybe_dropped(ctx, src, pop_event);
    // One change for the move, as Redis counts it.
    ctx.set_dirty(1);
    Reply::Bulk(e)
}

pub fn lmove(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (Some(from), Some(to)) = (side(&args[3]), side(&args[4])) else {
        return Reply::syntax_error();
    };
    move_one(ctx, &args[1], &args[2], from, to)
}

pub fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    move_one(ctx, &args[1], &args[2], false, true)
}

/// Parsed `numkeys key... LEFT|RIGHT [COUNT n]` (LMPOP, BLMPOP; also the
/// MIN|MAX form of ZMPOP and BZMPOP through `ends`).
pub struct MpopArgs {
    pub keys: Vec<Bytes>,
    /// True for LEFT (or MIN).
    pub first: bool,
    pub count: usize,
}

/// Parses an MPOP tail starting at `args[at]` (the numkeys argument).
pub fn parse_mpop(args: &[Bytes], at: usize, ends: (&str, &str)) -> Result<MpopArgs, Reply> {
    let numkeys = match args.get(at).and_then(|a| parse_i64(a)) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(Reply::err(crate::protocol::errors::NUMKEYS_POSITIVE)),
    };
    let where_at = (at as u64 + 1).saturating_add(numkeys);
    if where_at >= args.len() as u64 {
        return Err(Reply::syntax_error());
    }
    let where_at = where_at as usize;
    let first = if eq_ic(&args[where_at], ends.0) {
        true
    } else if eq_ic(&args[where_at], ends.1) {
        false
    } else {
        return Err(Reply::syntax_error());
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && eq_ic(&args[j], "count") && j + 1 < args.len() {
            match parse_i64(&args[j + 1]) {
                Some(n) if n > 0 => count = Some(n as usize),
                _ => return Err(Reply::err(crate::protocol::errors::COUNT_POSITIVE)),
            }
            j += 2;
        } else {
            return Err(Reply::syntax_error());
        }
    }
    Ok(MpopArgs { keys: args[at + 1..where_at].to_vec(), first, count: count.unwrap_or(1) })
}

/// LMPOP on one key known to hold a list: `[key, [elements]]`.
pub fn mpop_one(ctx: &mut Ctx, key: &Bytes, left: bool, count: usize) -> Reply {
    match pop_many(ctx, key, left, count) {
        Err(e) => e,
        Ok(Some(v)) if !v.is_empty() => {
            Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(v.into_iter().map(Reply::Bulk).collect())])
        }
        Ok(_) => Reply::NilArray,
    }
}

pub fn lmpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let m = match parse_mpop(args, 1, ("left", "right")) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let now = ctx.now;
    for key in &m.keys {
        match list_mut(ctx.db(key), key, now) {
            Err(e) => return e,
            Ok(None) => continue,
            Ok(Some(_)) => {
                let reply = mpop_one(ctx, key, m.first, m.count);
                // Replayed as the pop it was, with the count it took (as Redis).
                if let (Some(n), true) = (crate::commands::blocking::popped(&reply), ctx.propagating()) {
                    let verb: &'static [u8] = if m.first { b"LPOP" } else { b"RPOP" };
                    ctx.propagate_as(vec![Bytes::from_static(verb), key.clone(), Bytes::from(n.to_string())]);
                }
                return reply;
            }
        }
    }
    Reply::NilArray
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(clamp_range(0, -1, 3), Some((0, 2)));
        assert_eq!(clamp_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(clamp_range(2, 1, 3), None);
        assert_eq!(clamp_range(3, 5, 3), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(index_of(-1, 3), Some(2));
        assert_eq!(index_of(-4, 3), None);
        assert_eq!(index_of(i64::MIN, 3), None);
    }
}
