//! SORT and SORT_RO (Redis's sort.c): sort a list, set or sorted set
//! numerically or bytewise, by its own elements or by values found under
//! keys made from a pattern, and return or store (SORT only) the elements or
//! values found under other pattern-made keys.
//!
//! Redis 7.0 is the reference for every reply, error and argument check
//! order, including:
//! - numeric weights are read as C's `strtod` reads them (leading blanks,
//!   hexadecimal, `inf`; an empty string is 0; overflow, underflow to a
//!   subnormal or zero, trailing bytes and NaN are errors) - see `c_strtod`.
//!   (Redis 7.0 reads `errno` after `strtod` without clearing it first, so
//!   after an out-of-range weight, valid weights on the same connection may
//!   be refused too until something clears it; moonshard judges each value
//!   on its own);
//! - ALPHA compares as `strcoll` in the C (or C.UTF-8) locale, i.e. bytewise
//!   up to the first NUL, except with STORE, where whole strings are
//!   compared; equal numeric weights fall back to the elements' bytes;
//! - a full sort is stable (glibc's qsort is a merge sort), and a BY sort
//!   narrowed by LIMIT runs Redis's partial quicksort (Bentley and McIlroy's
//!   three-way partition, descending only into parts that overlap the
//!   LIMIT window), so ties (ALPHA BY weights that are equal or missing)
//!   come out in Redis's order for lists;
//! - BY with a pattern without `*` (`nosort`) keeps the native order: list
//!   order (reversed by DESC), sorted-set score order (reversed by DESC),
//!   and set iteration order, except that a set is sorted ALPHA anyway when
//!   the result is stored or the command runs in a script (Redis's rule for
//!   deterministic replication);
//! - a sorted set is converted to the skiplist encoding by SORT, as Redis
//!   does (OBJECT ENCODING shows it).
//!
//! Cluster rule. Keys a BY or GET pattern forms may live in any slot, and a
//! handler here only sees the shards owning the command's keys. moonshard
//! applies Redis Cluster's rule as Redis 7.4 and later state it: a pattern
//! (other than `#`, and other than a BY pattern without `*`) is accepted
//! only when every key it can form hashes to the sorted key's slot, that is
//! when a `{hash tag}` before any `*` pins it there. Redis 7.0 Cluster
//! refused every BY pattern with `*` and every GET, `GET #` included
//! ("BY option of SORT denied in Cluster mode."); the later rule serves
//! strictly more commands, each of them exactly as standalone Redis 7.0
//! answers it, so it is the one applied here.

use super::keys::lookup_read;
use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::commands::spec::{Begin, Find, KeySpecDoc};
use crate::protocol::{BulkArray, Reply};
use crate::shard::slot::{crc16, key_slot};
use crate::storage::zset::Limits as ZLimits;
use crate::storage::{List, Value, ZSet};
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;
use std::cmp::Ordering;

// ------------------------------------------------------------ declarations

/// SORT's keys as Redis's `sortGetKeys` finds them: the sorted key, then
/// the destination of the last STORE (options are skipped by their
/// argument counts: LIMIT 2, GET 1, BY 1).
fn sort_keys(args: &[Bytes]) -> Vec<usize> {
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = cstr(&args[i]);
        if eq_ic(a, "limit") {
            i += 2;
        } else if eq_ic(a, "get") || eq_ic(a, "by") {
            i += 1;
        } else if eq_ic(a, "store") && i + 1 < args.len() {
            // The destination is looked at as an option name next, as Redis does.
            store = Some(i + 1);
        }
        i += 1;
    }
    let mut keys = vec![1];
    keys.extend(store);
    keys
}

/// Whether SORT/SORT_RO `args` name a BY or GET pattern that forms keys
/// (one with a `*`): in standalone mode those keys may live on any shard,
/// so the command runs with every shard entered.
pub fn forms_keys(name: &str, args: &[Bytes]) -> bool {
    if !name.starts_with("sort") {
        return false;
    }
    args.windows(2)
        .skip(2)
        .any(|w| (eq_ic(cstr(&w[0]), "by") || eq_ic(cstr(&w[0]), "get")) && cstr(&w[1]).contains(&b'*'))
}

fn sort_ro_keys(_args: &[Bytes]) -> Vec<usize> {
    vec![1]
}

const SORT_KEYS: KeySpec = KeySpec::Custom { find: sort_keys, legacy: (1, 1, 1) };
const SORT_RO_KEYS: KeySpec = KeySpec::Custom { find: sort_ro_keys, legacy: (1, 1, 1) };

const SORTED_KEY: KeySpecDoc = ks(&["RO", "access"], idx(1), range(0, 1, 0));
const PATTERN_KEYS: KeySpecDoc = ks_noted(
    "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort",
    &["RO", "access"],
    Begin::Unknown,
    Find::Unknown,
);
const STORE_KEY: KeySpecDoc = ks_noted(
    "For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array",
    &["OW", "update"],
    Begin::Unknown,
    Find::Unknown,
);

pub static COMMANDS: &[CommandSpec] = &[
    cmd("sort", -2, WRITE | DENYOOM, SORT_KEYS, G::Generic, K(sort))
        .syntax("key%k [BY pattern%p1] [LIMIT offset%i count%i] [GET pattern%p1 [GET pattern ...]] [ASC|DESC] [ALPHA] [STORE destination%k]")
        .doc(
            "1.0.0",
            "Sorts a list, set or sorted set, optionally by or with values from other keys; can store the result.",
        )
        .key_specs(&[SORTED_KEY, PATTERN_KEYS, STORE_KEY])
        .acl(&["-keyspace", "set", "sortedset", "list", "dangerous"]),
    cmd("sort_ro", -2, READONLY, SORT_RO_KEYS, G::Generic, K(sort_ro))
        .syntax("key%k [BY pattern%p1] [LIMIT offset%i count%i] [GET pattern%p1 [GET pattern ...]] [ASC|DESC] [ALPHA]")
        .doc("7.0.0", "SORT without STORE, for read-only contexts.")
        .key_specs(&[SORTED_KEY, PATTERN_KEYS])
        .acl(&["-keyspace", "set", "sortedset", "list", "dangerous"]),
];

const ERR_SCORES: &str = "One or more scores can't be converted into double";
const ERR_BY_CLUSTER: &str =
    "BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.";
const ERR_GET_CLUSTER: &str =
    "GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.";
const ERR_BY_ACL: &str = "BY option of SORT denied due to insufficient ACL permissions.";
const ERR_GET_ACL: &str = "GET option of SORT denied due to insufficient ACL permissions.";

/// Whether the client's user may read any key with this command, as BY
/// and GET patterns need (Redis asks it of the selector that allows the
/// command). Replaying the AOF checks nothing.
fn reads_any_key(ctx: &Ctx, args: &[Bytes]) -> bool {
    if ctx.origin == crate::commands::dispatch::Origin::AofLoad {
        return true;
    }
    let uid = ctx.client.user_id.load(std::sync::atomic::Ordering::Acquire);
    let Some(entry) = ctx.server.acl.by_id(uid) else {
        return false;
    };
    let rules = entry.rules();
    if rules.unrestricted() {
        return true;
    }
    let Some(cmd) = crate::commands::registry::lookup(&args[0]) else {
        return false;
    };
    rules.unrestricted_key_access(cmd.id, args, crate::acl::index::READ)
}

// The argument as C code sees it (`strcasecmp`, `strlen`...): up to its first NUL byte.
use crate::protocol::c_str as cstr;

/// The one slot every key matching `pattern` (a glob) hashes to, if the
/// pattern pins one: a wildcard or an escape before a complete non-empty
/// `{tag}` means any slot (Redis Cluster's rule for KEYS, SCAN and SORT).
fn pattern_slot(pattern: &[u8]) -> Option<u16> {
    // Where the first '{' is, once it is known that no tag closed yet;
    // `Err(())` once an empty "{}" has settled that the whole key is hashed.
    let mut open: Result<Option<usize>, ()> = Ok(None);
    for (i, &c) in pattern.iter().enumerate() {
        match c {
            b'*' | b'?' | b'[' | b'\\' => return None,
            b'{' if open == Ok(None) => open = Ok(Some(i)),
            b'}' => {
                if let Ok(Some(at)) = open {
                    if i == at + 1 {
                        open = Err(());
                    } else {
                        return Some(crc16(&pattern[at + 1..i]) & 0x3FFF);
                    }
                }
            }
            _ => {}
        }
    }
    Some(crc16(pattern) & 0x3FFF)
}

// ------------------------------------------------------------ strtod

/// A weight as Redis reads it with `strtod`: `None` when SORT must answer
/// "One or more scores can't be converted into double" (nothing parsed but
/// blanks or a sign, bytes left after the number, NaN, or a result out of
/// range: an overflow, or an inexact result below the smallest normal
/// double). The string ends at its first NUL byte, as C sees it.
pub(crate) fn c_strtod(s: &[u8]) -> Option<f64> {
    // The common case: a plain integer of up to 15 digits is exact.
    if s.len() <= 15 {
        if let Some(v) = parse_i64(s) {
            return Some(v as f64);
        }
    }
    let s = cstr(s);
    let r = crate::util::numbers::strtod(s);
    // Nothing parsed: strtod gives 0 and points back at the start, so only
    // the empty string passes.
    if r.end == 0 {
        return s.is_empty().then_some(0.0);
    }
    (r.end == s.len() && !r.value.is_nan() && !r.range_error).then_some(r.value)
}

// ------------------------------------------------------------ the command

pub fn sort(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    sort_generic(ctx, args, false)
}

pub fn sort_ro(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    sort_generic(ctx, args, true)
}

struct Options<'a> {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<&'a Bytes>,
    by: Option<&'a Bytes>,
    /// A BY pattern without `*` was given: keep the native order.
    dontsort: bool,
    gets: Vec<&'a Bytes>,
}

/// Parses the options left to right, stopping at the first error, as Redis.
/// `reads_any_key` answers whether BY and GET patterns are allowed to the
/// user; `standalone`: patterns may reach keys in any slot.
fn parse<'a>(
    args: &'a [Bytes],
    readonly: bool,
    standalone: bool,
    reads_any_key: impl Fn() -> bool,
) -> Result<Options<'a>, Reply> {
    let slot = key_slot(&args[1]);
    let mut o = Options {
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        store: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = cstr(&args[j]);
        if eq_ic(a, "asc") {
            o.desc = false;
        } else if eq_ic(a, "desc") {
            o.desc = true;
        } else if eq_ic(a, "alpha") {
            o.alpha = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            o.limit_start = parse_i64(&args[j + 1]).ok_or_else(Reply::not_integer)?;
            o.limit_count = parse_i64(&args[j + 2]).ok_or_else(Reply::not_integer)?;
            j += 2;
        } else if !readonly && eq_ic(a, "store") && left >= 1 {
            o.store = Some(&args[j + 1]);
            j += 1;
        } else if eq_ic(a, "by") && left >= 1 {
            let p = &args[j + 1];
            o.by = Some(p);
            if !cstr(p).contains(&b'*') {
                o.dontsort = true;
            } else if !standalone && pattern_slot(p) != Some(slot) {
                return Err(Reply::err(ERR_BY_CLUSTER));
            } else if !reads_any_key() {
                return Err(Reply::err(ERR_BY_ACL));
            }
            j += 1;
        } else if eq_ic(a, "get") && left >= 1 {
            let p = &args[j + 1];
            if !standalone && cstr(p) != b"#" && pattern_slot(p) != Some(slot) {
                return Err(Reply::err(ERR_GET_CLUSTER));
            }
            if !reads_any_key() {
                return Err(Reply::err(ERR_GET_ACL));
            }
            o.gets.push(p);
            j += 1;
        } else {
            return Err(Reply::syntax_error());
        }
        j += 1;
    }
    Ok(o)
}

/// The elements to sort, their bytes packed in one buffer (no allocation
/// per element), and the ALPHA weights found by pattern in another.
#[derive(Default)]
struct Items {
    bytes: Vec<u8>,
    weights: Vec<u8>,
    list: Vec<Item>,
}

/// One element: where its bytes are, its numeric weight, and where its
/// ALPHA weight is (`NO_WEIGHT` when the BY key was missing).
#[derive(Clone, Copy)]
struct Item {
    at: usize,
    len: usize,
    score: f64,
    by: (usize, usize),
}

const NO_WEIGHT: (usize, usize) = (usize::MAX, 0);

impl Items {
    fn with_capacity(n: usize) -> Items {
        Items { bytes: Vec::new(), weights: Vec::new(), list: Vec::with_capacity(n) }
    }

    fn push(&mut self, elem: &[u8]) {
        self.list.push(Item { at: self.bytes.len(), len: elem.len(), score: 0.0, by: NO_WEIGHT });
        self.bytes.extend_from_slice(elem);
    }

    fn elem(&self, i: &Item) -> &[u8] {
        &self.bytes[i.at..i.at + i.len]
    }
}

/// How two items compare, as Redis's `sortCompare`.
struct Order<'a> {
    desc: bool,
    alpha: bool,
    by_pattern: bool,
    store: bool,
    bytes: &'a [u8],
    weights: &'a [u8],
}

impl Order<'_> {
    fn cmp(&self, a: &Item, b: &Item) -> Ordering {
        let strings = |x: &[u8], y: &[u8]| if self.store { x.cmp(y) } else { cstr(x).cmp(cstr(y)) };
        let elem = |i: &Item| &self.bytes[i.at..i.at + i.len];
        let o = if !self.alpha {
            match a.score.partial_cmp(&b.score) {
                Some(Ordering::Equal) | None => elem(a).cmp(elem(b)),
                Some(o) => o,
            }
        } else if self.by_pattern {
            match (a.by == NO_WEIGHT, b.by == NO_WEIGHT) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => {
                    strings(&self.weights[a.by.0..a.by.0 + a.by.1], &self.weights[b.by.0..b.by.0 + b.by.1])
                }
            }
        } else {
            strings(elem(a), elem(b))
        };
        if self.desc {
            o.reverse()
        } else {
            o
        }
    }
}

/// Redis's `lookupKeyByPattern`: hands `f` what `pattern` gives for
/// `elem`. `#` gives the element itself; otherwise the first `*` is
/// replaced by the element and the key read as a string, or, with
/// `->field` after the `*`, as a hash's field. Missing keys, other types
/// and patterns without `*` give nothing. Every key formed here lives on an
/// entered shard: in cluster mode the parser let only patterns pinned to the
/// sorted key's slot through, in standalone mode routing entered every shard.
/// `key` is scratch space for the key's name.
fn by_pattern<R>(
    ctx: &mut Ctx,
    pattern: &[u8],
    elem: &[u8],
    key: &mut Vec<u8>,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    let c = cstr(pattern);
    if c == b"#" {
        return Some(f(elem));
    }
    let star = c.iter().position(|&b| b == b'*')?;
    // A "->" after the star followed by at least one byte names a field,
    // which runs to the pattern's real end.
    let arrow = c[star + 1..].windows(2).position(|w| w == b"->").map(|p| star + 1 + p);
    let (key_end, field) = match arrow {
        Some(at) if at + 2 < c.len() => (at, Some(&pattern[at + 2..])),
        _ => (pattern.len(), None),
    };
    key.clear();
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    if !ctx.holds(key) {
        // Unreachable: the parser's rule (cluster mode) or the routing
        // (standalone mode) entered it; never touch a shard not entered.
        return None;
    }
    match (lookup_read(ctx, key).map(|e| &e.value), field) {
        (Some(Value::Str(s)), None) => Some(f(s.as_slice())),
        (Some(Value::Hash(h)), Some(name)) => h.get(name).map(f),
        _ => None,
    }
}

fn sort_generic(ctx: &mut Ctx, args: &[Bytes], readonly: bool) -> Reply {
    let standalone = ctx.server.standalone;
    let mut o = match parse(args, readonly, standalone, || reads_any_key(ctx, args)) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let key = &args[1];
    let slot = key_slot(key);
    if let Some(dst) = o.store {
        // Routing entered the shards of the keys `sort_keys` finds; a STORE
        // it does not see (hidden behind an option name) must still share
        // the sorted key's slot.
        let apart = if ctx.server.standalone { !ctx.holds(dst) } else { key_slot(dst) != slot };
        if apart {
            return Reply::error(crate::protocol::errors::CROSSSLOT);
        }
    }
    let in_script = ctx.in_script();
    let (desc, store) = (o.desc, o.store.is_some());

    // The elements, in the order Redis loads them, and the output window.
    let mut items: Items;
    let (mut start, mut end): (i64, i64);
    {
        let entry = lookup_read(ctx, key);
        let mut value = match entry {
            None => None,
            Some(e) => match &mut e.value {
                v @ (Value::List(_) | Value::Set(_) | Value::ZSet(_)) => Some(v),
                _ => return Reply::wrong_type(),
            },
        };
        let is_set = matches!(value, Some(Value::Set(_)));
        if o.dontsort && is_set && (store || in_script) {
            // Replies and stored results must not depend on a set's layout.
            o.dontsort = false;
            o.alpha = true;
            o.by = None;
        }
        if let Some(Value::ZSet(z)) = value.as_deref_mut() {
            if let ZSet::Packed(_) = **z {
                // SORT turns a small sorted set into a skiplist, as Redis does.
                let all = z.range(0, z.len(), false);
                **z = ZSet::from_sorted(all, ZLimits { entries: 0, value: 0 });
            }
        }
        let n = match value.as_deref() {
            Some(Value::List(l)) => l.len(),
            Some(Value::Set(s)) => s.len(),
            Some(Value::ZSet(z)) => z.len(),
            _ => 0,
        } as i64;
        start = o.limit_start.max(0).min(n);
        let count = o.limit_count.max(-1).min(n);
        end = if count < 0 { n - 1 } else { start + count - 1 };
        if start >= n {
            start = n - 1;
            end = n - 2;
        }
        if end >= n {
            end = n - 1;
        }
        let window = end >= start;
        let (s, e) = (start.max(0) as usize, end.max(0) as usize);
        items = Items::with_capacity(if o.dontsort && window { e - s + 1 } else { n as usize });
        match value.as_deref() {
            None => {}
            Some(Value::List(l)) if o.dontsort && window => {
                let n = n as usize;
                if desc {
                    let picked: Vec<&[u8]> = l.range_iter(n - 1 - e, n - 1 - s).collect();
                    picked.iter().rev().for_each(|x| items.push(x));
                } else {
                    l.range_iter(s, e).for_each(|x| items.push(x));
                }
                end -= start;
                start = 0;
            }
            Some(Value::List(_)) if o.dontsort => {}
            Some(Value::List(l)) => l.iter().for_each(|x| items.push(x)),
            Some(Value::Set(set)) => set.for_each(|m| items.push(m)),
            Some(Value::ZSet(z)) if o.dontsort => {
                if window {
                    let n = n as usize;
                    let (lo, hi) = if desc { (n - 1 - e, n - s) } else { (s, e + 1) };
                    z.for_range(lo, hi, desc, |m, _| items.push(m));
                }
                end -= start;
                start = 0;
            }
            Some(Value::ZSet(z)) => z.for_range(0, n as usize, false, |m, _| items.push(m)),
            Some(_) => {}
        }
    }

    // The weights, then the sort.
    let mut keybuf = Vec::new();
    if !o.dontsort {
        let mut bad_score = false;
        let Items { bytes, weights, list } = &mut items;
        for item in list.iter_mut() {
            let elem = &bytes[item.at..item.at + item.len];
            match (o.by, o.alpha) {
                (None, true) => {}
                (None, false) => match c_strtod(elem) {
                    Some(v) => item.score = v,
                    None => bad_score = true,
                },
                (Some(p), true) => {
                    let at = weights.len();
                    if by_pattern(ctx, p, elem, &mut keybuf, |w| weights.extend_from_slice(w)).is_some() {
                        item.by = (at, weights.len() - at);
                    }
                }
                (Some(p), false) => match by_pattern(ctx, p, elem, &mut keybuf, c_strtod) {
                    Some(Some(v)) => item.score = v,
                    Some(None) => bad_score = true,
                    None => {}
                },
            }
        }
        if bad_score {
            return Reply::err(ERR_SCORES);
        }
        let order = Order { desc, alpha: o.alpha, by_pattern: o.by.is_some(), store, bytes, weights };
        let len = list.len() as i64;
        if o.by.is_some() && (start != 0 || end != len - 1) {
            if end >= start {
                partial_sort(list, start as usize, end as usize, &|a: &Item, b: &Item| order.cmp(a, b));
            }
        } else {
            list.sort_by(|a, b| order.cmp(a, b));
        }
    }

    // The output.
    let end = end.min(items.list.len() as i64 - 1);
    let window: &[Item] = if end >= start && start >= 0 { &items.list[start as usize..=end as usize] } else { &[] };
    let outputlen = if o.gets.is_empty() { window.len() } else { o.gets.len() * window.len() };
    let Some(dst) = o.store else {
        return reply(ctx, &o.gets, &items, window, outputlen);
    };
    let mut list = List::new();
    for item in window {
        let elem = items.elem(item);
        if o.gets.is_empty() {
            list.push_back(elem);
        }
        for p in &o.gets {
            if by_pattern(ctx, p, elem, &mut keybuf, |v| list.push_back(v)).is_none() {
                list.push_back(b"");
            }
        }
    }
    if outputlen > 0 {
        ctx.db(dst).set(dst.clone(), Value::List(Box::new(list)));
        ctx.written(dst, "sortstore");
        ctx.dirty(outputlen as u64 - 1);
    } else {
        let now = ctx.now;
        if ctx.db(dst).delete(dst, now) {
            ctx.written(dst, "del");
        }
    }
    Reply::Int(outputlen as i64)
}

/// The reply: the window's elements, or for each the GET values. Built in
/// wire form while no value is missing (a missing one is a null, whose
/// form depends on the protocol).
fn reply(ctx: &mut Ctx, gets: &[&Bytes], items: &Items, window: &[Item], outputlen: usize) -> Reply {
    let mut keybuf = Vec::new();
    let mut wire = BulkArray::with_capacity(window.iter().map(|i| i.len + 16).sum::<usize>().min(1 << 20));
    let mut out: Option<Vec<Reply>> = None;
    for item in window {
        let elem = items.elem(item);
        if gets.is_empty() {
            wire.push(elem);
            continue;
        }
        for p in gets {
            let found = match out.as_mut() {
                None => by_pattern(ctx, p, elem, &mut keybuf, |v| wire.push(v)),
                Some(out) => {
                    by_pattern(ctx, p, elem, &mut keybuf, |v| out.push(Reply::Bulk(Bytes::copy_from_slice(v))))
                }
            };
            if found.is_none() {
                let out = out.get_or_insert_with(|| {
                    let mut v = Vec::with_capacity(outputlen);
                    v.extend(wire.iter().map(|e| Reply::Bulk(Bytes::copy_from_slice(e))));
                    v
                });
                out.push(Reply::Nil);
            }
        }
    }
    match out {
        Some(v) => Reply::Array(v),
        None => Reply::BulkArray(wire),
    }
}

// ------------------------------------------------------------ partial sort

/// Sorts `v` enough that positions `lo..=hi` hold what a full sort puts
/// there, leaving the elements in the same arrangement as Redis's partial
/// quicksort (so ties come out in Redis's order). The method is Bentley and
/// McIlroy's ("Engineering a Sort Function", 1993): insertion sort below 7
/// elements, a median-of-three pivot (of three medians above 40), a
/// three-way partition that parks elements equal to the pivot at both ends
/// and then swaps them to the middle; only the parts that overlap `lo..=hi`
/// are sorted further.
fn partial_sort<T>(v: &mut [T], lo: usize, hi: usize, cmp: &impl Fn(&T, &T) -> Ordering) {
    partial_sort_part(v, 0, lo, hi, cmp);
}

/// `partial_sort` of the part `seg` of the whole vector, which starts at
/// `base` in it (`lo` and `hi` are positions in the whole vector).
fn partial_sort_part<T>(mut seg: &mut [T], mut base: usize, lo: usize, hi: usize, cmp: &impl Fn(&T, &T) -> Ordering) {
    let overlaps = |s: usize, len: usize| !(hi < s || lo >= s + len);
    loop {
        let n = seg.len();
        if n < 7 {
            insertion_sort(seg, cmp);
            return;
        }
        let mut pm = n / 2;
        if n > 7 {
            let (mut pl, mut pn) = (0, n - 1);
            if n > 40 {
                let d = n / 8;
                pl = median3(seg, pl, pl + d, pl + 2 * d, cmp);
                pm = median3(seg, pm - d, pm, pm + d, cmp);
                pn = median3(seg, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = median3(seg, pl, pm, pn, cmp);
        }
        seg.swap(0, pm);
        // seg[1..pa] and seg[pd+1..] hold elements equal to the pivot,
        // seg[pa..pb] smaller ones, seg[pc+1..=pd] greater ones.
        let (mut pa, mut pb, mut pc, mut pd) = (1, 1, n - 1, n - 1);
        let mut swapped = false;
        loop {
            while pb <= pc {
                let c = cmp(&seg[pb], &seg[0]);
                if c == Ordering::Greater {
                    break;
                }
                if c == Ordering::Equal {
                    swapped = true;
                    seg.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&seg[pc], &seg[0]);
                if c == Ordering::Less {
                    break;
                }
                if c == Ordering::Equal {
                    swapped = true;
                    seg.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            seg.swap(pb, pc);
            swapped = true;
            pb += 1;
            pc -= 1;
        }
        if !swapped {
            // Partitioned without a single move: finish by insertion.
            insertion_sort(seg, cmp);
            return;
        }
        let r = pa.min(pb - pa);
        swap_runs(seg, 0, pb - r, r);
        let r = (pd - pc).min(n - pd - 1);
        swap_runs(seg, pb, n - r, r);
        let left = pb - pa;
        if left > 1 && overlaps(base, left) {
            partial_sort_part(&mut seg[..left], base, lo, hi, cmp);
        }
        let right = pd - pc;
        if right > 1 && overlaps(base + n - right, right) {
            base += n - right;
            seg = &mut seg[n - right..];
            continue;
        }
        return;
    }
}

fn insertion_sort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && cmp(&v[j - 1], &v[j]) == Ordering::Greater {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn median3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> usize {
    use Ordering::{Greater, Less};
    if cmp(&v[a], &v[b]) == Less {
        if cmp(&v[b], &v[c]) == Less {
            b
        } else if cmp(&v[a], &v[c]) == Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Greater {
        b
    } else if cmp(&v[a], &v[c]) == Less {
        a
    } else {
        c
    }
}

/// Swaps v[a..a+n] with v[b..b+n] pairwise (the runs do not overlap).
fn swap_runs<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn strtod_like_c() {
        let ok = |s: &str, v: f64| assert_eq!(c_strtod(s.as_bytes()), Some(v), "{s:?}");
        let bad = |s: &str| assert_eq!(c_strtod(s.as_bytes()), None, "{s:?}");
        ok("", 0.0);
        ok("12", 12.0);
        ok(" \t5", 5.0);
        ok("1.", 1.0);
        ok(".5", 0.5);
        ok("1e+2", 100.0);
        ok("-0", -0.0);
        ok("0e-999", 0.0);
        ok("INF", f64::INFINITY);
        ok("-infinity", f64::NEG_INFINITY);
        ok("0x10", 16.0);
        ok("0X1P3", 8.0);
        ok("0x.8", 0.5);
        ok("0x1.8", 1.5);
        ok("0x1p-1074", f64::from_bits(1));
        ok("0x1p-1022", f64::MIN_POSITIVE);
        ok("0x1.fffffffffffffp1023", f64::MAX);
        ok("0x0p-9999", 0.0);
        ok("2.2250738585072014e-308", f64::MIN_POSITIVE);
        ok("12\0junk", 12.0);
        for s in [
            " ",
            "+",
            ".",
            "5e",
            "1e",
            "3\n",
            "nan",
            "-nan",
            "infinit",
            "0x",
            "0x.p1",
            "0x1p",
            "1e400",
            "1.8e308",
            "1e-310",
            "1e-400",
            "4.9406564584124654e-324",
            "0x1p1024",
            "0x1.00000000000001p-1074",
            "1_0",
            "x",
        ] {
            bad(s);
        }
        // Rounding of long hex mantissas: ties to even, sticky bits count.
        ok("0x1.00000000000008p0", 1.0);
        ok("0x1.00000000000018p0", 1.0 + 2.0 * f64::EPSILON);
        ok("0x1.000000000000080001p0", 1.0 + f64::EPSILON);
        ok("0x123456789abcdef0123", 0x123456789abcdef0123u128 as f64);
    }

    #[test]
    fn pattern_slots() {
        assert_eq!(pattern_slot(b"{user}:*"), Some(key_slot(b"user")));
        assert_eq!(pattern_slot(b"{user}:*->f"), Some(key_slot(b"user")));
        assert_eq!(pattern_slot(b"w_*"), None);
        assert_eq!(pattern_slot(b"w_{*}"), None);
        assert_eq!(pattern_slot(b"{}{a}*"), None);
        assert_eq!(pattern_slot(b"a?{b}"), None);
        assert_eq!(pattern_slot(b"nosort"), Some(key_slot(b"nosort")));
        assert_eq!(pattern_slot(b"{}{a}"), Some(key_slot(b"{}{a}")));
        assert_eq!(pattern_slot(b"x{a"), Some(key_slot(b"x{a")));
    }

    #[test]
    fn sort_keys_like_redis() {
        let a = |s: &str| s.split(' ').map(b).collect::<Vec<_>>();
        assert_eq!(sort_keys(&a("sort k")), vec![1]);
        assert_eq!(sort_keys(&a("sort k store d")), vec![1, 3]);
        assert_eq!(sort_keys(&a("sort k store d store e")), vec![1, 5]);
        assert_eq!(sort_keys(&a("sort k get store store d")), vec![1, 5]);
        assert_eq!(sort_keys(&a("sort k limit 0 1 by w_* store d")), vec![1, 8]);
        assert_eq!(sort_keys(&a("sort k store")), vec![1]);
        assert_eq!(sort_keys(&a("sort k store get store x")), vec![1, 3]);
    }

    /// The partial sort leaves the window exactly as a full sort would
    /// whenever the order is total.
    #[test]
    fn partial_sort_window() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let n = rng.gen_range(1..120);
            let v: Vec<u32> = (0..n).map(|_| rng.gen_range(0..1000)).collect();
            let lo = rng.gen_range(0..n);
            let hi = rng.gen_range(lo..n);
            let mut p = v.clone();
            partial_sort(&mut p, lo, hi, &|a: &u32, b: &u32| a.cmp(b));
            let mut f = v.clone();
            f.sort();
            assert_eq!(p[lo..=hi], f[lo..=hi], "{v:?} {lo} {hi}");
        }
    }
}
