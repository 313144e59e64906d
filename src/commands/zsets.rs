//! Sorted-set commands (Redis 7.0's t_zset.c), with its reply shapes and
//! error texts. Ranges are turned into rank intervals first (see
//! `storage::zset`), so they cost O(log n + m) on large sets.

use super::sets::{parse_cursor, scan_options, RANDOM_REPLY_MAX};
use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::protocol::{format_double, Reply};
use crate::storage::zset::{before, Limits, ZSet};
use crate::storage::Value;
use crate::util::{eq_ic, glob_match, parse_i64};
use bytes::Bytes;
use rand::Rng;
use std::collections::HashMap;

// ------------------------------------------------------------ declarations

/// ZUNIONSTORE-style: destination at 1, numkeys at 2, then the sources.
fn store_numkeys_keys(args: &[Bytes]) -> Vec<usize> {
    let mut out = vec![1];
    if let Some(n) = args.get(2).and_then(|a| crate::util::parse_i64(a)) {
        if n > 0 && 3 + n as usize <= args.len() {
            out.extend(3..3 + n as usize);
        }
    }
    out
}
const STORE_NK: KeySpec = KeySpec::Custom { find: store_numkeys_keys, legacy: (1, 1, 1) };

pub static COMMANDS: &[CommandSpec] = &[
    cmd("zadd", -4, WRITE | DENYOOM | FAST, K1, G::SortedSet, K(zadd))
        .syntax("key%k [NX|XX] [GT|LT] [CH] [INCR] score%d member [score member ...]")
    .doc("1.2.0", "Adds members with scores to a sorted set, or updates their scores.")
    .key_specs(&[ks(&["RW", "update"], idx(1), range(0, 1, 0))]),
    cmd("zrem", -3, WRITE | FAST, K1, G::SortedSet, K(zrem))
        .syntax("key%k member [member ...]")
    .doc("1.2.0", "Removes members from a sorted set.")
    .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    cmd("zscore", 3, READONLY | FAST, K1, G::SortedSet, K(zscore))
        .syntax("key%k member")
    .doc("1.2.0", "Returns a member's score."),
    cmd("zmscore", -3, READONLY | FAST, K1, G::SortedSet, K(zmscore))
        .syntax("key%k member [member ...]")
    .doc("6.2.0", "Returns the scores of several members."),
    cmd("zincrby", 4, WRITE | DENYOOM | FAST, K1, G::SortedSet, K(zincrby))
        .syntax("key%k increment%i member")
    .doc("1.2.0", "Adds to a member's score.")
    .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("zcard", 2, READONLY | FAST, K1, G::SortedSet, K(zcard))
        .syntax("key%k")
    .doc("1.2.0", "Counts the members of a sorted set.")
        .key_specs(&[ks(&["RO"], idx(1), range(0, 1, 0))]),
    cmd("zcount", 4, READONLY | FAST, K1, G::SortedSet, K(zcount))
        .syntax("key%k min%d max%d")
    .doc("2.0.0", "Counts the members with scores in a range."),
    cmd("zlexcount", 4, READONLY | FAST, K1, G::SortedSet, K(zlexcount))
        .syntax("key%k min max")
    .doc("2.8.9", "Counts the members in a lexicographical range."),
    cmd("zrank", 3, READONLY | FAST, K1, G::SortedSet, K(zrank))
        .syntax("key%k member")
    .doc("2.0.0", "Returns a member's rank, lowest score first."),
    cmd("zrevrank", 3, READONLY | FAST, K1, G::SortedSet, K(zrevrank))
        .syntax("key%k member")
    .doc("2.0.0", "Returns a member's rank, highest score first."),
    cmd("zrange", -4, READONLY, K1, G::SortedSet, K(zrange))
        .syntax("key%k start stop [BYSCORE|BYLEX] [REV] [LIMIT offset%i count%i] [WITHSCORES]")
    .doc("1.2.0", "Returns members by rank, score or lexicographical range.")
    .key_specs(&[ks(&["RO", "access"], idx(1), range(0, 1, 0))]),
    cmd("zrangestore", -5, WRITE | DENYOOM, K12, G::SortedSet, K(zrangestore))
        .syntax("dst%k src%k min max [BYSCORE|BYLEX] [REV] [LIMIT offset%i count%i]")
    .doc("6.2.0", "Stores a range of a sorted set in another key.")
    .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0)), ks(&["RO", "access"], idx(2), range(0, 1, 0))]),
    cmd("zrangebyscore", -4, READONLY, K1, G::SortedSet, K(zrangebyscore))
        .syntax("key%k min%d max%d [WITHSCORES] [LIMIT offset%i count%i]")
    .doc("1.0.5", "Returns members with scores in a range."),
    cmd("zrevrangebyscore", -4, READONLY, K1, G::SortedSet, K(zrevrangebyscore))
        .syntax("key%k max%d min%d [WITHSCORES] [LIMIT offset%i count%i]")
    .doc("2.2.0", "Returns members with scores in a range, highest first."),
    cmd("zrangebylex", -4, READONLY, K1, G::SortedSet, K(zrangebylex))
        .syntax("key%k min max [LIMIT offset%i count%i]")
    .doc("2.8.9", "Returns members in a lexicographical range."),
    cmd("zrevrangebylex", -4, READONLY, K1, G::SortedSet, K(zrevrangebylex))
        .syntax("key%k max min [LIMIT offset%i count%i]")
    .doc("2.8.9", "Returns members in a lexicographical range, in reverse."),
    cmd("zrevrange", -4, READONLY, K1, G::SortedSet, K(zrevrange))
        .syntax("key%k start%i stop%i [WITHSCORES]")
    .doc("1.2.0", "Returns members by rank, highest score first."),
    cmd("zremrangebyscore", 4, WRITE, K1, G::SortedSet, K(zremrangebyscore))
        .syntax("key%k min%d max%d")
    .doc("1.2.0", "Removes members with scores in a range.")
        .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    cmd("zremrangebyrank", 4, WRITE, K1, G::SortedSet, K(zremrangebyrank))
        .syntax("key%k start%i stop%i")
    .doc("2.0.0", "Removes members in a rank range.")
        .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    cmd("zremrangebylex", 4, WRITE, K1, G::SortedSet, K(zremrangebylex))
        .syntax("key%k min max")
    .doc("2.8.9", "Removes members in a lexicographical range.")
        .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    cmd("zpopmin", -2, WRITE | FAST, K1, G::SortedSet, K(zpopmin))
        .syntax("key%k [count%i]")
    .doc("5.0.0", "Removes and returns the lowest-scored members.")
        .key_specs(&[ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0))]),
    cmd("zpopmax", -2, WRITE | FAST, K1, G::SortedSet, K(zpopmax))
        .syntax("key%k [count%i]")
    .doc("5.0.0", "Removes and returns the highest-scored members.")
        .key_specs(&[ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0))]),
    cmd("zmpop", -4, WRITE, nk(1), G::SortedSet, K(zmpop))
        .syntax("numkeys%i key%k [key ...] (MIN|MAX) [COUNT count%i]")
    .doc("7.0.0", "Pops members from the first non-empty of several sorted sets.")
    .key_specs(&[ks(&["RW", "access", "delete"], idx(1), keynum(0, 1, 1))]),
    cmd("zrandmember", -2, READONLY, K1, G::SortedSet, K(zrandmember))
        .syntax("key%k [count%i [WITHSCORES]]")
    .doc("6.2.0", "Returns random members of a sorted set.")
    .tips(&["nondeterministic_output"]),
    cmd("zunionstore", -4, WRITE | DENYOOM, STORE_NK, G::SortedSet, K(zunionstore))
        .syntax("destination%k numkeys%i key%k [key ...] [WEIGHTS weight%i [weight ...]] [AGGREGATE (SUM|MIN|MAX)]")
    .doc("2.0.0", "Stores the union of sorted sets.")
    .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0)), ks(&["RO", "access"], idx(2), keynum(0, 1, 1))]),
    cmd("zinterstore", -4, WRITE | DENYOOM, STORE_NK, G::SortedSet, K(zinterstore))
        .syntax("destination%k numkeys%i key%k [key ...] [WEIGHTS weight%i [weight ...]] [AGGREGATE (SUM|MIN|MAX)]")
    .doc("2.0.0", "Stores the intersection of sorted sets.")
    .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0)), ks(&["RO", "access"], idx(2), keynum(0, 1, 1))]),
    cmd("zdiffstore", -4, WRITE | DENYOOM, STORE_NK, G::SortedSet, K(zdiffstore))
        .syntax("destination%k numkeys%i key%k [key ...]")
    .doc("6.2.0", "Stores the difference of sorted sets.")
        .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0)), ks(&["RO", "access"], idx(2), keynum(0, 1, 1))]),
    cmd("zunion", -3, READONLY | MULTI_SHARD, nk(1), G::SortedSet, K(zunion))
        .syntax("numkeys%i key%k [key ...] [WEIGHTS weight%i [weight ...]] [AGGREGATE (SUM|MIN|MAX)] [WITHSCORES]")
    .doc("6.2.0", "Unites sorted sets."),
    cmd("zinter", -3, READONLY | MULTI_SHARD, nk(1), G::SortedSet, K(zinter))
        .syntax("numkeys%i key%k [key ...] [WEIGHTS weight%i [weight ...]] [AGGREGATE (SUM|MIN|MAX)] [WITHSCORES]")
    .doc("6.2.0", "Intersects sorted sets."),
    cmd("zdiff", -3, READONLY | MULTI_SHARD, nk(1), G::SortedSet, K(zdiff))
        .syntax("numkeys%i key%k [key ...] [WITHSCORES]")
    .doc("6.2.0", "Subtracts sorted sets from the first."),
    cmd("zintercard", -3, READONLY | MULTI_SHARD, nk(1), G::SortedSet, K(zintercard))
        .syntax("numkeys%i key%k [key ...] [LIMIT limit%i]")
    .doc("7.0.0", "Counts the members of the intersection of sorted sets."),
    cmd("zscan", -3, READONLY, K1, G::SortedSet, K(zscan))
        .syntax("key%k cursor%i [MATCH pattern%p] [COUNT count%i]")
    .doc("2.8.0", "Iterates the members of a sorted set with a cursor.")
    .tips(&["nondeterministic_output"]),
    cmd("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST | MULTI_SHARD, k(1, -2, 1), G::SortedSet, B(crate::commands::blocking::attempt))
        .syntax("key%k [key ...] timeout%d")
    .doc("5.0.0", "Pops the lowest-scored member of the first non-empty sorted set, waiting if all are empty.")
    .key_specs(&[ks(&["RW", "access", "delete"], idx(1), range(-2, 1, 0))]),
    cmd("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST | MULTI_SHARD, k(1, -2, 1), G::SortedSet, B(crate::commands::blocking::attempt))
        .syntax("key%k [key ...] timeout%d")
    .doc("5.0.0", "Removes and returns the highest-scored member of the first non-empty sorted set, blocking until one is available.")
        .key_specs(&[ks(&["RW", "access", "delete"], idx(1), range(-2, 1, 0))]),
    cmd("bzmpop", -5, WRITE | BLOCKING | MULTI_SHARD, nk(2), G::SortedSet, B(crate::commands::blocking::attempt))
        .syntax("timeout%d numkeys%i key%k [key ...] (MIN|MAX) [COUNT count%i]")
    .doc("7.0.0", "Pops members from the first non-empty sorted set, waiting if all are empty.")
        .key_specs(&[ks(&["RW", "access", "delete"], idx(2), keynum(0, 1, 1))]),
];

fn limits(ctx: &Ctx) -> Limits {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &ctx.server.config;
    let get = |a: &std::sync::atomic::AtomicU64| usize::try_from(a.load(Relaxed)).unwrap_or(usize::MAX);
    Limits { entries: get(&c.zset_max_listpack_entries), value: get(&c.zset_max_listpack_value) }
}

/// The zset under `key`: None when missing, WRONGTYPE for another type.
/// Every caller is a read command: counts a keyspace hit or miss.
fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c ZSet>, Reply> {
    let (now, server) = (ctx.now, ctx.server);
    let found: Result<Option<&ZSet>, Reply> = match ctx.db(key).value(key, now) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(Reply::wrong_type()),
    };
    super::keys::count_read(server, &found);
    found
}

fn write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut ZSet>, Reply> {
    let now = ctx.now;
    match ctx.db(key).value_mut(key, now) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.now;
    if matches!(ctx.db(key).value(key, now), Some(Value::ZSet(z)) if z.is_empty()) {
        ctx.db(key).remove(key);
        ctx.written(key, "del");
    }
}

/// Stores a computed result at `dst`, or deletes `dst` when it is empty.
pub(crate) fn store_result(ctx: &mut Ctx, dst: &Bytes, items: Vec<(Bytes, f64)>, event: &'static str) -> Reply {
    let n = items.len();
    let now = ctx.now;
    if n == 0 {
        if ctx.db(dst).delete(dst, now) {
            ctx.written(dst, "del");
        }
    } else {
        let z = ZSet::from_sorted(items, limits(ctx));
        ctx.db(dst).set(dst.clone(), Value::ZSet(Box::new(z)));
        ctx.written(dst, event);
    }
    Reply::Int(n as i64)
}

/// Elements as a reply: members only, or with scores (flat pairs in RESP2,
/// one [member, score] array per element in RESP3, as Redis 7.0 replies).
fn elements_reply(resp: u8, items: Vec<(Bytes, f64)>, withscores: bool) -> Reply {
    if !withscores {
        return Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect());
    }
    if resp >= 3 {
        return Reply::Array(
            items.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)])).collect(),
        );
    }
    let mut out = Vec::with_capacity(items.len() * 2);
    for (m, s) in items {
        out.push(Reply::Bulk(m));
        out.push(Reply::Double(s));
    }
    Reply::Array(out)
}

/// Redis's getDoubleFromObject (scores, increments, weights): strtod over
/// the whole text, no leading space, no overflow to infinity, no NaN.
pub fn parse_score(arg: &[u8]) -> Option<f64> {
    if let Some(v) = integer_score(arg) {
        return Some(v);
    }
    parse_score_general(arg)
}

/// A score written as a plain integer of at most 15 digits, with an
/// optional '-': exactly representable as a double, so its value is the
/// integer's, as strtod gives it (`-0` included). Most scores are such, and
/// the general path costs several hundred instructions.
#[inline]
fn integer_score(arg: &[u8]) -> Option<f64> {
    let (neg, digits) = match arg.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, arg),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as u64;
    }
    let v = n as f64;
    Some(if neg { -v } else { v })
}

/// `parse_score` for any text.
fn parse_score_general(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v = parse_c_double(text)?;
    let literal_inf = text.trim_start_matches(['+', '-']).to_ascii_lowercase().starts_with("inf");
    if v.is_infinite() && !literal_inf {
        return None; // ERANGE overflow
    }
    if v == 0.0 && text.bytes().take_while(|c| !matches!(c, b'e' | b'E')).any(|c| (b'1'..=b'9').contains(&c)) {
        return None; // ERANGE underflow
    }
    Some(v)
}

/// C's strtod syntax over a whole text: decimal and exponent forms,
/// hexadecimal ("0x1.8p3"), "inf"/"infinity" with a sign. NaN is refused.
fn parse_c_double(text: &str) -> Option<f64> {
    let body = text.trim_start_matches(['+', '-']);
    if text.len() - body.len() > 1 {
        return None;
    }
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let v = parse_hex_float(hex)?;
        return Some(if text.starts_with('-') { -v } else { v });
    }
    if body.contains('_') {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// The part of a C hexadecimal float after "0x": hex digits with an
/// optional point, then an optional binary exponent "p[+-]digits".
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars().chain(frac.chars()) {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut e: i64 = -4 * frac.len() as i64;
    if let Some(exp) = exp {
        let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: i64 = digits.parse().unwrap_or(i64::MAX / 4).min(100_000);
        e += if exp.starts_with('-') { -n } else { n };
    }
    Some(v * 2f64.powi(e.clamp(-100_000, 100_000) as i32))
}

/// A score interval as ZRANGEBYSCORE takes it: "(" marks an open end.
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    min_open: bool,
    max: f64,
    max_open: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, min_open) = parse_score_bound(min)?;
        let (max, max_open) = parse_score_bound(max)?;
        Some(ScoreRange { min, min_open, max, max_open })
    }

    fn below_min(&self, s: f64) -> bool {
        if self.min_open {
            s <= self.min
        } else {
            s < self.min
        }
    }

    fn within_max(&self, s: f64) -> bool {
        if self.max_open {
            s < self.max
        } else {
            s <= self.max
        }
    }

    /// The rank interval [lo, hi) of the elements inside.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        (z.count_while_score(|s| self.below_min(s)), z.count_while_score(|s| self.within_max(s)))
    }
}

/// One end of a score range, parsed as Redis's zslParseRange does (plain
/// strtod: an empty text is 0, a leading space is allowed).
fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (open, rest) = match arg.first() {
        Some(b'(') => (true, &arg[1..]),
        _ => (false, arg),
    };
    // Redis parses the bound with strtod, which stops at a NUL byte.
    let text = std::str::from_utf8(crate::protocol::c_str(rest)).ok()?;
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if text.is_empty() {
        return Some((0.0, open));
    }
    if trimmed.is_empty() {
        return None;
    }
    parse_c_double(trimmed).map(|v| (v, open))
}

/// One end of a lexical range: "-", "+", "[x" or "(x".
#[derive(Clone)]
enum Lex {
    Min,
    Max,
    Incl(Bytes),
    Excl(Bytes),
}

impl Lex {
    fn parse(arg: &Bytes) -> Option<Lex> {
        match arg.first()? {
            b'-' if arg.len() == 1 => Some(Lex::Min),
            b'+' if arg.len() == 1 => Some(Lex::Max),
            b'[' => Some(Lex::Incl(arg.slice(1..))),
            b'(' => Some(Lex::Excl(arg.slice(1..))),
            _ => None,
        }
    }

    /// True when `m` lies before this bound taken as a minimum.
    fn below_min(&self, m: &[u8]) -> bool {
        match self {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(b) => m < &b[..],
            Lex::Excl(b) => m <= &b[..],
        }
    }

    /// True when `m` does not pass this bound taken as a maximum.
    fn within_max(&self, m: &[u8]) -> bool {
        match self {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(b) => m <= &b[..],
            Lex::Excl(b) => m < &b[..],
        }
    }
}

fn parse_lex_range(min: &Bytes, max: &Bytes) -> Option<(Lex, Lex)> {
    Some((Lex::parse(min)?, Lex::parse(max)?))
}

fn lex_ranks(z: &ZSet, min: &Lex, max: &Lex) -> (usize, usize) {
    (z.count_while(|_, m| min.below_min(m)), z.count_while(|_, m| max.within_max(m)))
}

/// ZRANGE's index arithmetic: negative indexes count from the end; returns
/// the rank interval [lo, hi), empty when out of range.
fn rank_interval(start: i64, end: i64, len: usize) -> (usize, usize) {
    let llen = len as i64;
    let mut start = if start < 0 { start + llen } else { start };
    let mut end = if end < 0 { end + llen } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return (0, 0);
    }
    if end >= llen {
        end = llen - 1;
    }
    (start as usize, end as usize + 1)
}

// ------------------------------------------------------------------ ZADD

#[derive(Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// ZADD and ZINCRBY (which is ZADD with INCR preset, exactly as in Redis).
fn zadd_generic(ctx: &mut Ctx, args: &[Bytes], incr: bool) -> Reply {
    let key = &args[1];
    let mut f = AddFlags { nx: false, xx: false, gt: false, lt: false, ch: false, incr };
    let mut i = 2;
    while let Some(a) = args.get(i) {
        match () {
            _ if eq_ic(a, "nx") => f.nx = true,
            _ if eq_ic(a, "xx") => f.xx = true,
            _ if eq_ic(a, "gt") => f.gt = true,
            _ if eq_ic(a, "lt") => f.lt = true,
            _ if eq_ic(a, "ch") => f.ch = true,
            _ if eq_ic(a, "incr") => f.incr = true,
            _ => break,
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Reply::syntax_error();
    }
    if f.nx && f.xx {
        return Reply::err("XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Reply::err("GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && rest.len() > 2 {
        return Reply::err("INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks_exact(2) {
        let Some(score) = parse_score(&p[0]) else { return Reply::not_float() };
        pairs.push((score, &p[1]));
    }
    let limits = limits(ctx);
    let now = ctx.now;
    let db = ctx.db(key);
    match db.value(key, now) {
        Some(Value::ZSet(_)) => {}
        Some(_) => return Reply::wrong_type(),
        None if f.xx => return if f.incr { Reply::Nil } else { Reply::Int(0) },
        None => db.set(key.clone(), Value::ZSet(Box::new(ZSet::for_first_member(pairs[0].1, limits)))),
    }
    let Some(Value::ZSet(z)) = db.value_mut(key, now) else { return Reply::wrong_type() };
    let (added, updated, last, nan) = add_pairs(z, &pairs, f, limits);
    // Only a zset this call created can be empty (NaN on its first INCR).
    let emptied = z.is_empty();
    if added + updated > 0 {
        ctx.written(key, if f.incr { "zincr" } else { "zadd" });
    }
    if emptied {
        ctx.db(key).remove(key);
        ctx.written(key, "del");
    }
    // A change per member added or updated, as Redis counts.
    ctx.set_dirty((added + updated) as u64);
    if nan {
        return Reply::err("resulting score is not a number (NaN)");
    }
    if f.incr {
        return last.map_or(Reply::Nil, Reply::Double);
    }
    Reply::Int(if f.ch { added + updated } else { added })
}

/// ZADD's loop over (score, member) pairs: (added, updated, the last score
/// set, whether an increment gave NaN, which stops it).
fn add_pairs(z: &mut ZSet, pairs: &[(f64, &Bytes)], f: AddFlags, limits: Limits) -> (i64, i64, Option<f64>, bool) {
    let (mut added, mut updated) = (0, 0);
    let mut last = None;
    let mut nan = false;
    for &(score, member) in pairs {
        match z.find(member) {
            Some((cur, at)) => {
                if f.nx {
                    continue;
                }
                let new = if f.incr { cur + score } else { score };
                if new.is_nan() {
                    nan = true;
                    break;
                }
                if (f.lt && new >= cur) || (f.gt && new <= cur) {
                    continue;
                }
                if new != cur {
                    z.rescore(at, member, new);
                    updated += 1;
                }
                last = Some(new);
            }
            None => {
                if f.xx {
                    continue;
                }
                z.add(member, score, limits);
                added += 1;
                last = Some(score);
            }
        }
    }
    (added, updated, last, nan)
}

pub fn zadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zadd_generic(ctx, args, false)
}

pub fn zincrby(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zadd_generic(ctx, args, true)
}

pub fn zrem(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let z = match write(ctx, key) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let mut removed = 0;
    for m in &args[2..] {
        if z.remove(m).is_some() {
            removed += 1;
            if z.is_empty() {
                break;
            }
        }
    }
    if removed > 0 {
        ctx.written(key, "zrem");
        drop_if_empty(ctx, key);
        ctx.set_dirty(removed as u64);
    }
    Reply::Int(removed)
}

pub fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]) {
        Ok(z) => z.and_then(|z| z.score(&args[2])).map_or(Reply::Nil, Reply::Double),
        Err(e) => e,
    }
}

pub fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]) {
        Ok(z) => Reply::Array(
            args[2..].iter().map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double)).collect(),
        ),
        Err(e) => e,
    }
}

pub fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]) {
        Ok(z) => Reply::Int(z.map_or(0, |z| z.len()) as i64),
        Err(e) => e,
    }
}

pub fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(range) = ScoreRange::parse(&args[2], &args[3]) else {
        return Reply::err(crate::protocol::errors::MIN_MAX_NOT_FLOAT);
    };
    match read(ctx, &args[1]) {
        Ok(z) => Reply::Int(z.map_or(0, |z| {
            let (lo, hi) = range.ranks(z);
            hi.saturating_sub(lo)
        }) as i64),
        Err(e) => e,
    }
}

pub fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some((min, max)) = parse_lex_range(&args[2], &args[3]) else {
        return Reply::err(crate::protocol::errors::MIN_MAX_NOT_RANGE_ITEM);
    };
    match read(ctx, &args[1]) {
        Ok(z) => Reply::Int(z.map_or(0, |z| {
            let (lo, hi) = lex_ranks(z, &min, &max);
            hi.saturating_sub(lo)
        }) as i64),
        Err(e) => e,
    }
}

fn rank_generic(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> Reply {
    match read(ctx, &args[1]) {
        Ok(Some(z)) => match z.rank(&args[2]) {
            Some(r) if rev => Reply::Int((z.len() - 1 - r) as i64),
            Some(r) => Reply::Int(r as i64),
            None => Reply::Nil,
        },
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

pub fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    rank_generic(ctx, args, false)
}

pub fn zrevrank(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    rank_generic(ctx, args, true)
}

// ---------------------------------------------------------------- ZRANGE

#[derive(Clone, Copy, PartialEq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Auto,
    Forward,
    Reverse,
}

enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(Lex, Lex),
}

/// The selected elements of `z`, in reply order. `limit` is (offset, count)
/// with Redis's meaning: a negative offset selects nothing, a negative count
/// everything after the offset.
fn select(z: &ZSet, range: &Range, rev: bool, limit: Option<(i64, i64)>) -> Vec<(Bytes, f64)> {
    let (lo, hi) = match range {
        Range::Rank(a, b) => rank_interval(*a, *b, z.len()),
        Range::Score(r) => r.ranks(z),
        Range::Lex(min, max) => lex_ranks(z, min, max),
    };
    // A rank range with REV counts its indexes from the top.
    let (lo, hi) = if rev && matches!(range, Range::Rank(..)) { (z.len() - hi, z.len() - lo) } else { (lo, hi) };
    if hi <= lo {
        return Vec::new();
    }
    let (offset, count) = limit.unwrap_or((0, -1));
    if offset < 0 {
        return Vec::new();
    }
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let n = hi - lo;
    if offset >= n {
        return Vec::new();
    }
    let take = if count < 0 { n - offset } else { (n - offset).min(usize::try_from(count).unwrap_or(usize::MAX)) };
    if rev {
        z.range(hi - offset - take, hi - offset, true)
    } else {
        z.range(lo + offset, lo + offset + take, false)
    }
}

/// Redis's zrangeGenericCommand: every ZRANGE form, plain or storing.
fn zrange_generic(ctx: &mut Ctx, args: &[Bytes], store: bool, mut by: By, mut dir: Dir) -> Reply {
    let base = if store { 2 } else { 1 };
    let key = &args[base];
    let mut withscores = false;
    let mut limit = None;
    let mut j = base + 3;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && eq_ic(a, "withscores") {
            withscores = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            let (Some(off), Some(cnt)) = (parse_i64(&args[j + 1]), parse_i64(&args[j + 2])) else {
                return Reply::not_integer();
            };
            limit = Some((off, cnt));
            j += 2;
        } else if by == By::Auto && eq_ic(a, "byscore") {
            by = By::Score;
        } else if by == By::Auto && eq_ic(a, "bylex") {
            by = By::Lex;
        } else if dir == Dir::Auto && eq_ic(a, "rev") {
            dir = Dir::Reverse;
        } else {
            return Reply::syntax_error();
        }
        j += 1;
    }
    if by == By::Auto {
        by = By::Rank;
    }
    let rev = dir == Dir::Reverse;
    if by == By::Rank {
        // Redis tells LIMIT apart by its count only: `LIMIT x -1` is no limit.
        if limit.is_some_and(|(_, count)| count != -1) {
            return Reply::err("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
        }
        limit = None;
    }
    if withscores && by == By::Lex {
        return Reply::err("syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let (mut a, mut b) = (&args[base + 1], &args[base + 2]);
    if rev && by != By::Rank {
        std::mem::swap(&mut a, &mut b);
    }
    let range = match by {
        By::Score => match ScoreRange::parse(a, b) {
            Some(r) => Range::Score(r),
            None => return Reply::err(crate::protocol::errors::MIN_MAX_NOT_FLOAT),
        },
        By::Lex => match parse_lex_range(a, b) {
            Some((min, max)) => Range::Lex(min, max),
            None => return Reply::err(crate::protocol::errors::MIN_MAX_NOT_RANGE_ITEM),
        },
        _ => match (parse_i64(a), parse_i64(b)) {
            (Some(x), Some(y)) => Range::Rank(x, y),
            _ => return Reply::not_integer(),
        },
    };
    let items = match read(ctx, key) {
        Ok(Some(z)) => select(z, &range, rev, limit),
        Ok(None) => Vec::new(),
        Err(e) => return e,
    };
    if store {
        let mut items = items;
        if rev {
            items.reverse();
        }
        return store_result(ctx, &args[1], items, "zrangestore");
    }
    elements_reply(ctx.resp, items, withscores)
}

pub fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zrange_generic(ctx, args, false, By::Auto, Dir::Auto)
}

pub fn zrangestore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zrange_generic(ctx, args, true, By::Auto, Dir::Auto)
}

pub fn zrevrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zrange_generic(ctx, args, false, By::Rank, Dir::Reverse)
}

pub fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zrange_generic(ctx, args, false, By::Score, Dir::Forward)
}

pub fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zrange_generic(ctx, args, false, By::Score, Dir::Reverse)
}

pub fn zrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zrange_generic(ctx, args, false, By::Lex, Dir::Forward)
}

pub fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zrange_generic(ctx, args, false, By::Lex, Dir::Reverse)
}

fn zremrange_generic(ctx: &mut Ctx, args: &[Bytes], range: Range, event: &'static str) -> Reply {
    let key = &args[1];
    let z = match write(ctx, key) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let (lo, hi) = match &range {
        Range::Rank(a, b) => rank_interval(*a, *b, z.len()),
        Range::Score(r) => r.ranks(z),
        Range::Lex(min, max) => lex_ranks(z, min, max),
    };
    let removed = z.remove_range(lo, hi);
    if removed > 0 {
        ctx.written(key, event);
        drop_if_empty(ctx, key);
        ctx.set_dirty(removed as u64);
    }
    Reply::Int(removed as i64)
}

pub fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (Some(a), Some(b)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return Reply::not_integer();
    };
    zremrange_generic(ctx, args, Range::Rank(a, b), "zremrangebyrank")
}

pub fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(r) = ScoreRange::parse(&args[2], &args[3]) else {
        return Reply::err(crate::protocol::errors::MIN_MAX_NOT_FLOAT);
    };
    zremrange_generic(ctx, args, Range::Score(r), "zremrangebyscore")
}

pub fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some((min, max)) = parse_lex_range(&args[2], &args[3]) else {
        return Reply::err(crate::protocol::errors::MIN_MAX_NOT_RANGE_ITEM);
    };
    zremrange_generic(ctx, args, Range::Lex(min, max), "zremrangebylex")
}

// ------------------------------------------------------------------- pops

/// Pops up to `count` elements from the low (`max` false) or high end of
/// the zset at `key`; deletes the key when emptied. One key lookup.
fn pop(ctx: &mut Ctx, key: &[u8], max: bool, count: usize) -> Result<Vec<(Bytes, f64)>, Reply> {
    let Some(z) = write(ctx, key)? else { return Ok(Vec::new()) };
    let n = count.min(z.len());
    let (lo, hi) = if max { (z.len() - n, z.len()) } else { (0, n) };
    let items = z.range(lo, hi, max);
    z.remove_range(lo, hi);
    let emptied = z.is_empty();
    if !items.is_empty() {
        ctx.written(key, if max { "zpopmax" } else { "zpopmin" });
    }
    if emptied {
        ctx.db(key).remove(key);
        ctx.written(key, "del");
    }
    // A change per member popped.
    ctx.set_dirty(items.len() as u64);
    Ok(items)
}

fn zpop_generic(ctx: &mut Ctx, args: &[Bytes], max: bool) -> Reply {
    if args.len() > 3 {
        return Reply::syntax_error();
    }
    let count = match args.get(2).map(|a| parse_i64(a)) {
        None => None,
        Some(None) => return Reply::err(crate::protocol::errors::OUT_OF_RANGE_POSITIVE),
        Some(Some(n)) if n < 0 => return Reply::err(crate::protocol::errors::OUT_OF_RANGE_POSITIVE),
        // A count of 0 still looks the key up: another type is WRONGTYPE.
        Some(Some(n)) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
    };
    let items = match pop(ctx, &args[1], max, count.unwrap_or(1)) {
        Ok(items) => items,
        Err(e) => return e,
    };
    match count {
        Some(_) => elements_reply(ctx.resp, items, true),
        None => elements_reply(2, items, true),
    }
}

pub fn zpopmin(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zpop_generic(ctx, args, false)
}

pub fn zpopmax(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zpop_generic(ctx, args, true)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count].
pub fn zmpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let numkeys = match parse_i64(&args[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return Reply::err(crate::protocol::errors::NUMKEYS_POSITIVE),
    };
    let where_idx = 2 + numkeys;
    if where_idx >= args.len() as u64 {
        return Reply::syntax_error();
    }
    let where_idx = where_idx as usize;
    let max = match &args[where_idx] {
        a if eq_ic(a, "min") => false,
        a if eq_ic(a, "max") => true,
        _ => return Reply::syntax_error(),
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && eq_ic(&args[j], "count") && j + 1 < args.len() {
            count = match parse_i64(&args[j + 1]) {
                Some(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => return Reply::err(crate::protocol::errors::COUNT_POSITIVE),
            };
            j += 2;
        } else {
            return Reply::syntax_error();
        }
    }
    for key in &args[2..where_idx] {
        match pop(ctx, key, max, count.unwrap_or(1)) {
            Ok(items) if items.is_empty() => continue,
            Ok(items) => {
                // Replayed as the pop it was, with the count it took (as Redis).
                if ctx.propagating() {
                    let verb: &'static [u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
                    ctx.propagate_as(vec![Bytes::from_static(verb), key.clone(), Bytes::from(items.len().to_string())]);
                }
                return Reply::Array(vec![Reply::Bulk(key.clone()), elements_reply(3, items, true)]);
            }
            Err(e) => return e,
        }
    }
    Reply::NilArray
}

pub fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut count = None;
    let mut withscores = false;
    if let Some(a) = args.get(2) {
        let n = match parse_i64(a) {
            None => return Reply::not_integer(),
            Some(i64::MIN) => {
                return Reply::err(
                    "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                )
            }
            Some(n) => n,
        };
        if args.len() > 4 || (args.len() == 4 && !eq_ic(&args[3], "withscores")) {
            return Reply::syntax_error();
        }
        withscores = args.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
            return Reply::err(crate::protocol::errors::OUT_OF_RANGE);
        }
        count = Some(n);
    }
    let z = match read(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return if count.is_some() { Reply::Array(vec![]) } else { Reply::Nil },
        Err(e) => return e,
    };
    // Our bound (see `RANDOM_REPLY_MAX`), checked where Redis would start replying.
    if count.is_some_and(|n| n < 0 && n.unsigned_abs() > RANDOM_REPLY_MAX) {
        return Reply::err(crate::protocol::errors::OUT_OF_RANGE);
    }
    let mut rng = rand::thread_rng();
    let len = z.len();
    let Some(count) = count else {
        return z.at_rank(rng.gen_range(0..len.max(1))).map_or(Reply::Nil, |(m, _)| Reply::Bulk(m));
    };
    let items: Vec<(Bytes, f64)> = if count >= 0 {
        if count as u64 >= len as u64 {
            z.range(0, len, false)
        } else {
            let picks = rand::seq::index::sample(&mut rng, len, count as usize);
            picks.into_iter().filter_map(|r| z.at_rank(r)).collect()
        }
    } else {
        (0..count.unsigned_abs()).filter_map(|_| z.at_rank(rng.gen_range(0..len))).collect()
    };
    elements_reply(ctx.resp, items, withscores)
}

// ------------------------------------------- ZUNION, ZINTER, ZDIFF, *STORE

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, target: &mut f64, v: f64) {
        match self {
            Aggregate::Sum => {
                *target += v;
                // +inf plus -inf: Redis settles on 0.
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if v < *target {
                    *target = v
                }
            }
            Aggregate::Max => {
                if v > *target {
                    *target = v
                }
            }
        }
    }
}

/// A source's score for `member` (a plain set's members score 1).
fn source_score(ctx: &mut Ctx, key: &[u8], member: &[u8]) -> Option<f64> {
    let now = ctx.now;
    match ctx.db(key).value(key, now)? {
        Value::ZSet(z) => z.score(member),
        Value::Set(s) => s.contains(member).then_some(1.0),
        _ => None,
    }
}

/// A source's size, looked up once per key as Redis's read lookup (counted).
fn source_len(ctx: &mut Ctx, key: &[u8]) -> Result<usize, Reply> {
    let (now, server) = (ctx.now, ctx.server);
    let found = match ctx.db(key).value(key, now) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z.len())),
        Some(Value::Set(s)) => Ok(Some(s.len())),
        Some(_) => Err(Reply::wrong_type()),
    };
    super::keys::count_read(server, &found);
    found.map(|n| n.unwrap_or(0))
}

/// Every element of a source, weighted (a NaN product counts as 0, as in Redis).
fn source_items(ctx: &mut Ctx, key: &[u8], weight: f64) -> Vec<(Bytes, f64)> {
    let now = ctx.now;
    let weigh = |s: f64| {
        let v = s * weight;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    match ctx.db(key).value(key, now) {
        Some(Value::ZSet(z)) => {
            let mut out = Vec::with_capacity(z.len());
            z.for_range(0, z.len(), false, |m, s| out.push((Bytes::copy_from_slice(m), weigh(s))));
            out
        }
        Some(Value::Set(s)) => s.members().into_iter().map(|m| (m, weigh(1.0))).collect(),
        _ => Vec::new(),
    }
}

struct OpArgs<'a> {
    keys: &'a [Bytes],
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    limit: usize,
}

/// Parses `numkeys key ... [WEIGHTS ..] [AGGREGATE ..] [WITHSCORES] [LIMIT n]`
/// from `args[at..]`, type-checking the keys before the options as Redis does.
fn parse_op<'a>(
    ctx: &mut Ctx,
    args: &'a [Bytes],
    at: usize,
    op: SetOp,
    store: bool,
    card: bool,
) -> Result<(OpArgs<'a>, Vec<usize>), Reply> {
    let numkeys = parse_i64(&args[at]).ok_or_else(Reply::not_integer)?;
    if numkeys < 1 {
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        return Err(Reply::err(format!("at least 1 input key is needed for '{name}' command")));
    }
    if numkeys as u64 > (args.len() - at - 1) as u64 {
        return Err(Reply::syntax_error());
    }
    let n = numkeys as usize;
    let keys = &args[at + 1..at + 1 + n];
    let lens = keys.iter().map(|k| source_len(ctx, k)).collect::<Result<Vec<_>, _>>()?;
    let mut o = OpArgs { keys, weights: vec![1.0; n], aggregate: Aggregate::Sum, withscores: false, limit: 0 };
    let mut j = at + 1 + n;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if op != SetOp::Diff && !card && left >= n && eq_ic(a, "weights") {
            for (w, arg) in o.weights.iter_mut().zip(&args[j + 1..j + 1 + n]) {
                *w = parse_score(arg).ok_or_else(|| Reply::err("weight value is not a float"))?;
            }
            j += n;
        } else if op != SetOp::Diff && !card && left >= 1 && eq_ic(a, "aggregate") {
            let v = &args[j + 1];
            o.aggregate = if eq_ic(v, "sum") {
                Aggregate::Sum
            } else if eq_ic(v, "min") {
                Aggregate::Min
            } else if eq_ic(v, "max") {
                Aggregate::Max
            } else {
                return Err(Reply::syntax_error());
            };
            j += 1;
        } else if !store && !card && eq_ic(a, "withscores") {
            o.withscores = true;
        } else if card && left >= 1 && eq_ic(a, "limit") {
            o.limit = match parse_i64(&args[j + 1]) {
                Some(l) if l >= 0 => usize::try_from(l).unwrap_or(usize::MAX),
                _ => return Err(Reply::err(crate::protocol::errors::LIMIT_NEGATIVE)),
            };
            j += 1;
        } else {
            return Err(Reply::syntax_error());
        }
        j += 1;
    }
    Ok((o, lens))
}

/// The result of the set operation, sorted by (score, member).
fn compute(ctx: &mut Ctx, o: &OpArgs, lens: &[usize], op: SetOp) -> Vec<(Bytes, f64)> {
    // Smallest first, as Redis orders its sources (which also fixes the
    // order in which floating-point sums are taken).
    let mut order: Vec<usize> = (0..o.keys.len()).collect();
    if op != SetOp::Diff {
        order.sort_by_key(|&i| lens[i]);
    }
    let mut out: Vec<(Bytes, f64)> = match op {
        SetOp::Union => {
            let mut acc: HashMap<Bytes, f64, ahash::RandomState> = HashMap::default();
            for &i in &order {
                for (m, s) in source_items(ctx, &o.keys[i], o.weights[i]) {
                    match acc.get_mut(&m) {
                        Some(t) => o.aggregate.apply(t, s),
                        None => {
                            acc.insert(m, s);
                        }
                    }
                }
            }
            acc.into_iter().collect()
        }
        SetOp::Inter => {
            if lens.contains(&0) {
                return Vec::new();
            }
            let mut cands = source_items(ctx, &o.keys[order[0]], o.weights[order[0]]);
            for &i in &order[1..] {
                let (key, w) = (&o.keys[i], o.weights[i]);
                cands.retain_mut(|(m, t)| match source_score(ctx, key, m) {
                    Some(v) => {
                        o.aggregate.apply(t, v * w);
                        true
                    }
                    None => false,
                });
            }
            cands
        }
        SetOp::Diff => {
            let mut cands = source_items(ctx, &o.keys[0], 1.0);
            for key in &o.keys[1..] {
                if cands.is_empty() {
                    break;
                }
                cands.retain(|(m, _)| source_score(ctx, key, m).is_none());
            }
            cands
        }
    };
    out.sort_by(|a, b| {
        if before(a.1, &a.0, b.1, &b.0) {
            std::cmp::Ordering::Less
        } else if before(b.1, &b.0, a.1, &a.0) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    out
}

fn op_read(ctx: &mut Ctx, args: &[Bytes], op: SetOp) -> Reply {
    let (o, lens) = match parse_op(ctx, args, 1, op, false, false) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let items = compute(ctx, &o, &lens, op);
    elements_reply(ctx.resp, items, o.withscores)
}

fn op_store(ctx: &mut Ctx, args: &[Bytes], op: SetOp, event: &'static str) -> Reply {
    let (o, lens) = match parse_op(ctx, args, 2, op, true, false) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let items = compute(ctx, &o, &lens, op);
    store_result(ctx, &args[1], items, event)
}

pub fn zunion(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    op_read(ctx, args, SetOp::Union)
}

pub fn zinter(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    op_read(ctx, args, SetOp::Inter)
}

pub fn zdiff(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    op_read(ctx, args, SetOp::Diff)
}

pub fn zunionstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    op_store(ctx, args, SetOp::Union, "zunionstore")
}

pub fn zinterstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    op_store(ctx, args, SetOp::Inter, "zinterstore")
}

pub fn zdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    op_store(ctx, args, SetOp::Diff, "zdiffstore")
}

pub fn zintercard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (o, lens) = match parse_op(ctx, args, 1, SetOp::Inter, false, true) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let n = compute(ctx, &o, &lens, SetOp::Inter).len();
    Reply::Int(if o.limit != 0 { n.min(o.limit) } else { n } as i64)
}

/// A score as ZSCAN shows it: Redis hands out a listpack's stored text,
/// where integral scores within +-2^62 are kept as integers.
fn scan_score(s: f64, packed: bool) -> String {
    const LIMIT: f64 = 4611686018427387904.0;
    if packed && (-LIMIT..=LIMIT).contains(&s) && s.trunc() == s {
        return (s as i64).to_string();
    }
    format_double(s)
}

pub fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(cursor) = parse_cursor(&args[2]) else { return Reply::err(crate::protocol::errors::INVALID_CURSOR) };
    let z = match read(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(vec![])]),
        Err(e) => return e,
    };
    let (pattern, count) = match scan_options(&args[3..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    let packed = z.encoding() == "listpack";
    let next = z.scan(cursor, count, |m, s| {
        if pattern.is_none_or(|p| glob_match(p, m, false)) {
            items.push(Reply::Bulk(Bytes::copy_from_slice(m)));
            items.push(Reply::bulk_str(&scan_score(s, packed)));
        }
    });
    Reply::Array(vec![Reply::bulk_str(&next.to_string()), Reply::Array(items)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The integer shortcut gives what the general (strtod) path gives, bit
    /// for bit, on integers and on near misses it must leave to it.
    #[test]
    fn integer_scores_match_the_general_parse() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let alphabet: &[u8] = b"0123456789-+. e";
        let mut cases: Vec<Vec<u8>> =
            ["0", "-0", "00", "-", "", "7", "-15", "000000012345", "999999999999999", "1000000000000000", "+5", "1e3"]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect();
        for _ in 0..100_000 {
            let len = rng.gen_range(0..18);
            let digits_only = rng.gen_bool(0.7);
            cases.push(
                (0..len)
                    .map(|i| {
                        if digits_only {
                            if i == 0 && rng.gen_bool(0.2) {
                                b'-'
                            } else {
                                rng.gen_range(b'0'..=b'9')
                            }
                        } else {
                            alphabet[rng.gen_range(0..alphabet.len())]
                        }
                    })
                    .collect(),
            );
        }
        for c in cases {
            let general = parse_score_general(&c);
            if let Some(v) = integer_score(&c) {
                assert_eq!(Some(v.to_bits()), general.map(f64::to_bits), "{:?}", String::from_utf8_lossy(&c));
            }
            assert_eq!(
                parse_score(&c).map(f64::to_bits),
                general.map(f64::to_bits),
                "{:?}",
                String::from_utf8_lossy(&c)
            );
        }
    }
}
