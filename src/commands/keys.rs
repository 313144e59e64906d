//! Keyspace commands (Redis's db.c, expire.c and object.c).

use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::shard::ShardData;
use crate::storage::{Entry, StrHint, Value};
use crate::util::{eq_ic, glob_match, parse_i64};
use bytes::Bytes;
use rand::seq::SliceRandom;
use std::sync::atomic::Ordering::Relaxed;

// ------------------------------------------------------------ declarations

pub static COMMANDS: &[CommandSpec] = &[
    cmd("del", -2, WRITE | MULTI_SHARD, KALL, G::Generic, K(del))
        .syntax("key%k [key ...]")
        .doc("1.0.0", "Removes keys.")
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .key_specs(&[ks(&["RM", "delete"], idx(1), range(-1, 1, 0))]),
    cmd("unlink", -2, WRITE | FAST | MULTI_SHARD, KALL, G::Generic, K(del))
        .syntax("key%k [key ...]")
        .doc("4.0.0", "Removes keys, freeing their memory in the background.")
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .key_specs(&[ks(&["RM", "delete"], idx(1), range(-1, 1, 0))]),
    cmd("exists", -2, READONLY | FAST | MULTI_SHARD, KALL, G::Generic, K(exists))
        .syntax("key%k [key ...]")
        .doc("1.0.0", "Counts how many of the given keys exist.")
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .key_specs(&[ks(&["RO"], idx(1), range(-1, 1, 0))]),
    cmd("touch", -2, READONLY | FAST | MULTI_SHARD, KALL, G::Generic, K(touch))
        .syntax("key%k [key ...]")
        .doc("3.2.1", "Marks keys as accessed; counts those that exist.")
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .key_specs(&[ks(&["RO"], idx(1), range(-1, 1, 0))]),
    cmd("type", 2, READONLY | FAST, K1, G::Generic, K(type_))
        .syntax("key%k")
        .doc("1.0.0", "Returns the type of the value at a key.")
        .key_specs(&[ks(&["RO"], idx(1), range(0, 1, 0))]),
    cmd("expire", -3, WRITE | FAST, K1, G::Generic, K(expire))
        .syntax("key%k seconds%i [NX|XX|GT|LT]")
        .doc("1.0.0", "Sets a key's time to live in seconds.")
        .key_specs(&[ks(&["RW", "update"], idx(1), range(0, 1, 0))]),
    cmd("pexpire", -3, WRITE | FAST, K1, G::Generic, K(pexpire))
        .syntax("key%k milliseconds%i [NX|XX|GT|LT]")
        .doc("2.6.0", "Sets a key's time to live in milliseconds."),
    cmd("expireat", -3, WRITE | FAST, K1, G::Generic, K(expireat))
        .syntax("key%k unix-time-seconds%t [NX|XX|GT|LT]")
        .doc("1.2.0", "Sets a key's expiry as a Unix time in seconds."),
    cmd("pexpireat", -3, WRITE | FAST, K1, G::Generic, K(pexpireat))
        .syntax("key%k unix-time-milliseconds%t [NX|XX|GT|LT]")
        .doc("2.6.0", "Sets a key's expiry as a Unix time in milliseconds."),
    cmd("ttl", 2, READONLY | FAST, K1, G::Generic, K(ttl))
        .syntax("key%k")
        .doc("1.0.0", "Returns a key's remaining time to live in seconds.")
        .tips(&["nondeterministic_output"])
        .key_specs(&[ks(&["RO", "access"], idx(1), range(0, 1, 0))]),
    cmd("pttl", 2, READONLY | FAST, K1, G::Generic, K(pttl))
        .syntax("key%k")
        .doc("2.6.0", "Returns a key's remaining time to live in milliseconds.")
        .tips(&["nondeterministic_output"]),
    cmd("expiretime", 2, READONLY | FAST, K1, G::Generic, K(expiretime))
        .syntax("key%k")
        .doc("7.0.0", "Returns a key's expiry as a Unix time in seconds."),
    cmd("pexpiretime", 2, READONLY | FAST, K1, G::Generic, K(pexpiretime))
        .syntax("key%k")
        .doc("7.0.0", "Returns a key's expiry as a Unix time in milliseconds."),
    cmd("persist", 2, WRITE | FAST, K1, G::Generic, K(persist)).syntax("key%k").doc("2.2.0", "Removes a key's expiry."),
    cmd("keys", 2, READONLY, NOKEYS, G::Generic, All(keys))
        .syntax("pattern%p")
        .doc("1.0.0", "Lists the keys matching a glob pattern.")
        .tips(&["request_policy:all_shards", "nondeterministic_output_order"])
        .acl(&["dangerous"]),
    cmd("scan", -2, READONLY, NOKEYS, G::Generic, All(scan))
        .syntax("cursor%i [MATCH pattern%p] [COUNT count%i] [TYPE type]")
        .doc("2.8.0", "Iterates the keyspace with a cursor.")
        .tips(&["nondeterministic_output", "request_policy:special"]),
    cmd("randomkey", 1, READONLY, NOKEYS, G::Generic, All(randomkey))
        .doc("1.0.0", "Returns a random key.")
        .tips(&["request_policy:all_shards", "nondeterministic_output"]),
    cmd("rename", 3, WRITE, K12, G::Generic, K(rename))
        .syntax("key%k newkey%k")
        .doc("1.0.0", "Renames a key, replacing any existing destination.")
        .key_specs(&[
            ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0)),
            ks(&["OW", "update"], idx(2), range(0, 1, 0)),
        ]),
    cmd("renamenx", 3, WRITE | FAST, K12, G::Generic, K(renamenx))
        .syntax("key%k newkey%k")
        .doc("1.0.0", "Renames a key only if the new name is free.")
        .key_specs(&[
            ks(&["RW", "access", "delete"], idx(1), range(0, 1, 0)),
            ks(&["OW", "insert"], idx(2), range(0, 1, 0)),
        ]),
    cmd("copy", -3, WRITE | DENYOOM, K12, G::Generic, K(copy))
        .syntax("source%k destination%k [DB destination-db%i] [REPLACE]")
        .doc("6.2.0", "Copies a key's value to another key.")
        .key_specs(&[ks(&["RO", "access"], idx(1), range(0, 1, 0)), ks(&["OW", "update"], idx(2), range(0, 1, 0))]),
    cmd("move", 3, WRITE | FAST, K1, G::Generic, K(move_))
        .syntax("key%k db%i")
        .doc("1.0.0", "Moves a key to another database.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("swapdb", 3, WRITE | FAST, NOKEYS, G::Server, All(swapdb))
        .syntax("index1%i index2%i")
        .doc("4.0.0", "Exchanges the contents of two databases.")
        .acl(&["keyspace", "dangerous"]),
    container("object", -2, 0, G::Generic, OBJECT_SUBS).doc("2.2.3", "Container for value introspection subcommands."),
];

static OBJECT_SUBS: &[CommandSpec] = &[
    cmd("object|encoding", 3, READONLY, K2, G::Generic, K(object_encoding))
        .syntax("key%k")
        .doc("2.2.3", "Returns the internal encoding of a value.")
        .key_specs(&[ks(&["RO"], idx(2), range(0, 1, 0))])
        .tips(&["nondeterministic_output"]),
    cmd("object|refcount", 3, READONLY, K2, G::Generic, K(object_refcount))
        .syntax("key%k")
        .doc("2.2.3", "Returns the reference count of a value.")
        .tips(&["nondeterministic_output"])
        .key_specs(&[ks(&["RO"], idx(2), range(0, 1, 0))]),
    cmd("object|idletime", 3, READONLY, K2, G::Generic, K(object_idletime))
        .syntax("key%k")
        .doc("2.2.3", "Returns the seconds since a key was last accessed.")
        .tips(&["nondeterministic_output"])
        .key_specs(&[ks(&["RO"], idx(2), range(0, 1, 0))]),
    cmd("object|freq", 3, READONLY, K2, G::Generic, K(object_freq))
        .syntax("key%k")
        .doc("4.0.0", "Returns the logarithmic access frequency counter of a key.")
        .tips(&["nondeterministic_output"])
        .key_specs(&[ks(&["RO"], idx(2), range(0, 1, 0))]),
    cmd("object|help", 2, LOADING | STALE, NOKEYS, G::Generic, K(object_help))
        .doc("6.2.0", "Lists the OBJECT subcommands."),
];

// ------------------------------------------------------------------ lookups

/// Redis's `lookupKeyRead`: counts a keyspace hit or miss, and the key if
/// this lookup reaped it.
pub(crate) fn lookup_read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c mut Entry> {
    let server = ctx.server;
    let e = lookup_write(ctx, key);
    let counter = if e.is_some() { &server.stats.keyspace_hits } else { &server.stats.keyspace_misses };
    counter.fetch_add(1, Relaxed);
    e
}

/// `lookup_read` that does not count as an access to the key (Redis's
/// LOOKUP_NOTOUCH: EXISTS, TYPE, TTL and OBJECT leave LRU/LFU data alone).
pub(crate) fn peek_read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c Entry> {
    let (server, now) = (ctx.server, ctx.now);
    let e = ctx.db(key).peek(key, now);
    let counter = if e.is_some() { &server.stats.keyspace_hits } else { &server.stats.keyspace_misses };
    counter.fetch_add(1, Relaxed);
    e
}

/// Counts a family's typed read lookup as Redis's `lookupKeyRead` counts
/// it: a keyspace hit when the key exists (a WRONGTYPE key included), a
/// miss when it does not.
#[inline]
pub(crate) fn count_read<T>(server: &crate::server::Server, found: &Result<Option<T>, Reply>) {
    let s = &server.stats;
    let counter = if matches!(found, Ok(None)) { &s.keyspace_misses } else { &s.keyspace_hits };
    counter.fetch_add(1, Relaxed);
}

/// Redis's `lookupKeyWrite`: no hit/miss accounting.
pub(crate) fn lookup_write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c mut Entry> {
    let (server, now) = (ctx.server, ctx.now);
    let (e, reaped) = ctx.db(key).lookup(key, now);
    if reaped {
        server.stats.expired_keys.fetch_add(1, Relaxed);
    }
    e
}

/// Whether a live key exists, without hit/miss accounting.
pub(crate) fn exists_w(ctx: &mut Ctx, key: &[u8]) -> bool {
    lookup_write(ctx, key).is_some()
}

/// Removes a live key, returning it; a key whose TTL passed counts as expired.
pub(crate) fn take_key(ctx: &mut Ctx, key: &[u8]) -> Option<Entry> {
    if !exists_w(ctx, key) {
        return None;
    }
    ctx.db(key).remove(key)
}

// -------------------------------------------------------------- DEL & co.

/// DEL and UNLINK. UNLINK (and DEL under `lazyfree-lazy-user-del`) frees
/// a big value on the lazyfree thread instead of holding the shard for it.
pub fn del(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let lazy = args[0].eq_ignore_ascii_case(b"unlink")
        || ctx.server.config.lazy_user_del.load(std::sync::atomic::Ordering::Relaxed);
    let mut n = 0;
    for key in &args[1..] {
        if let Some(entry) = take_key(ctx, key) {
            if lazy {
                crate::storage::lazyfree::free_value(entry.value);
            }
            ctx.written(key, "del");
            n += 1;
        }
    }
    Reply::Int(n)
}

/// EXISTS counts a key once per mention, as Redis does.
pub fn exists(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(args[1..].iter().filter(|k| peek_read(ctx, k).is_some()).count() as i64)
}

/// TOUCH counts the live keys, recording an access to each.
pub fn touch(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(args[1..].iter().filter(|k| lookup_read(ctx, k).is_some()).count() as i64)
}

pub fn type_(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match peek_read(ctx, &args[1]) {
        Some(e) => Reply::status(e.value.type_name()),
        None => Reply::status("none"),
    }
}

// ---------------------------------------------------------------- expiry

#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(args: &[Bytes]) -> Result<ExpireFlags, Reply> {
    let mut f = ExpireFlags::default();
    for a in args {
        if eq_ic(a, "nx") {
            f.nx = true;
        } else if eq_ic(a, "xx") {
            f.xx = true;
        } else if eq_ic(a, "gt") {
            f.gt = true;
        } else if eq_ic(a, "lt") {
            f.lt = true;
        } else {
            return Err(Reply::error_concat(&[b"ERR Unsupported option ", crate::protocol::c_str(a)]));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(Reply::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if f.gt && f.lt {
        return Err(Reply::err("GT and LT options at the same time are not compatible"));
    }
    Ok(f)
}

/// Whether the NX/XX/GT/LT condition lets a new expiry `when` replace `current` (0 = none).
fn expire_allowed(f: &ExpireFlags, current: u64, when: i64) -> bool {
    let none = current == 0;
    let cur = current as i64;
    !(f.nx && !none || f.xx && none || f.gt && (none || when <= cur) || f.lt && !none && when >= cur)
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: `base` is added to the time
/// (now for the relative forms), `secs` scales it from seconds.
fn expire_generic(ctx: &mut Ctx, args: &[Bytes], name: &str, base: i64, secs: bool) -> Reply {
    let flags = match parse_expire_flags(&args[3..]) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let Some(mut when) = parse_i64(&args[2]) else {
        return Reply::not_integer();
    };
    let bad = || Reply::err(format!("invalid expire time in '{name}' command"));
    if secs {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => return bad(),
        }
    }
    let Some(when) = when.checked_add(base) else {
        return bad();
    };
    let key = &args[1];
    let now = ctx.now;
    let Some(e) = lookup_write(ctx, key) else {
        return Reply::Int(0);
    };
    if !expire_allowed(&flags, e.expire_at, when) {
        return Reply::Int(0);
    }
    let replay = ctx.propagating();
    // (A replica applying its master's stream keeps the key: the master's
    // DEL follows.)
    if when <= now as i64 && !crate::storage::ttls_ignored() {
        ctx.db(key).remove(key);
        ctx.written(key, "del");
        if replay {
            ctx.propagate_as(vec![expiry_delete_verb(ctx), key.clone()]);
        }
    } else {
        ctx.db(key).set_expire(key, when as u64);
        ctx.written(key, "expire");
        if replay {
            // Replayed as PEXPIREAT with the absolute time, options kept.
            let mut argv = Vec::with_capacity(args.len());
            argv.push(Bytes::from_static(b"PEXPIREAT"));
            argv.push(key.clone());
            argv.push(Bytes::from(when.to_string()));
            argv.extend(args[3..].iter().cloned());
            ctx.propagate_as(argv);
        }
    }
    Reply::Int(1)
}

/// How a key removed because its new expiry is already past is replayed:
/// UNLINK under `lazyfree-lazy-expire`, else DEL (as Redis propagates it).
pub fn expiry_delete_verb(ctx: &Ctx) -> Bytes {
    if ctx.server.config.get("lazyfree-lazy-expire").as_deref() == Some("yes") {
        Bytes::from_static(b"UNLINK")
    } else {
        Bytes::from_static(b"DEL")
    }
}

pub fn expire(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now as i64;
    expire_generic(ctx, args, "expire", now, true)
}

pub fn pexpire(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now as i64;
    expire_generic(ctx, args, "pexpire", now, false)
}

pub fn expireat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, "expireat", 0, true)
}

pub fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, "pexpireat", 0, false)
}

/// TTL family: `ms` picks the unit, `absolute` the Unix time instead of the remainder.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], ms: bool, absolute: bool) -> Reply {
    let now = ctx.now;
    let Some(e) = peek_read(ctx, key) else {
        return Reply::Int(-2);
    };
    if e.expire_at == 0 {
        return Reply::Int(-1);
    }
    let t = if absolute { e.expire_at } else { e.expire_at.saturating_sub(now) };
    let t = t.min(i64::MAX as u64) as i64;
    Reply::Int(if ms { t } else { t.saturating_add(500) / 1000 })
}

pub fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], false, false)
}

pub fn pttl(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], true, false)
}

pub fn expiretime(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], false, true)
}

pub fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], true, true)
}

pub fn persist(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    match lookup_write(ctx, key) {
        Some(e) if e.expire_at != 0 => {
            ctx.db(key).set_expire(key, 0);
            ctx.written(key, "persist");
            Reply::Int(1)
        }
        _ => Reply::Int(0),
    }
}

// ------------------------------------------------------ whole keyspace

/// KEYS over every shard (all entered: one point in time).
pub fn keys(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (now, db) = (ctx.now, ctx.db);
    let pattern = &args[1][..];
    let all = pattern == b"*";
    let mut keys = Vec::new();
    for shard in ctx.shards().iter() {
        keys.extend(
            shard.dbs[db]
                .iter()
                .filter(|(k, e)| !(e.expire_at != 0 && e.expire_at <= now) && (all || glob_match(pattern, k, false)))
                .map(|(k, _)| Reply::Bulk(Bytes::copy_from_slice(k))),
        );
    }
    Reply::Array(keys)
}

/// RANDOMKEY: a random live key of a random shard that has one.
pub fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let (now, db) = (ctx.now, ctx.db);
    let mut found: Vec<Bytes> = ctx.shards().iter_mut().filter_map(|s| s.dbs[db].random_key(now)).collect();
    found.shuffle(&mut rand::thread_rng());
    found.pop().map_or(Reply::Nil, Reply::Bulk)
}

// ------------------------------------------------------------------ SCAN
//
// A SCAN cursor is `position * shards + shard`: the low part names the shard,
// the high part the position inside it as `Db::scan` understands it (0 = the
// shard's start). Cursor 0 is shard 0's start; the last shard's end gives 0.
// One call walks on into the next shards while COUNT allows, so a keyspace
// smaller than COUNT comes back whole from `SCAN 0`, as from Redis.

use super::sets::parse_cursor;

struct ScanOpts<'a> {
    count: usize,
    pattern: Option<&'a [u8]>,
    type_: Option<&'a [u8]>,
}

fn parse_scan_opts(args: &[Bytes]) -> Result<ScanOpts<'_>, Reply> {
    let mut o = ScanOpts { count: 10, pattern: None, type_: None };
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1);
        match value {
            Some(v) if eq_ic(&args[i], "count") => {
                let n = parse_i64(v).ok_or_else(Reply::not_integer)?;
                if n < 1 {
                    return Err(Reply::syntax_error());
                }
                o.count = n.min(1 << 20) as usize;
            }
            Some(v) if eq_ic(&args[i], "match") => o.pattern = (&v[..] != b"*").then_some(&v[..]),
            Some(v) if eq_ic(&args[i], "type") => o.type_ = Some(&v[..]),
            _ => return Err(Reply::syntax_error()),
        }
        i += 2;
    }
    Ok(o)
}

/// One SCAN step: about COUNT keys visited, from the cursor's shard on.
/// Runs with every shard entered (a point in time, as on Redis); a script
/// that holds only its own shard walks that shard alone.
pub fn scan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    // The cursor first, then the options, as Redis checks them.
    let Some(cursor) = parse_cursor(&args[1]) else { return Reply::err(crate::protocol::errors::INVALID_CURSOR) };
    let opts = match parse_scan_opts(&args[2..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let n = ctx.server.shards.len().max(1) as u64;
    let (first, mut pos) = ((cursor % n) as usize, usize::try_from(cursor / n).unwrap_or(usize::MAX));
    let (now, dbi, server) = (ctx.now, ctx.db, ctx.server);
    let mut held: Vec<&mut ShardData> = ctx.shards().iter_mut().map(|s| &mut **s).filter(|s| s.id >= first).collect();
    held.sort_by_key(|s| s.id);
    let mut keys = Vec::new();
    let mut budget = opts.count;
    for shard in held.iter_mut() {
        if shard.id != first {
            pos = 0;
        }
        let db = &mut shard.dbs[dbi];
        let mut expired = Vec::new();
        let mut visited = 0;
        let next = db.scan(pos, budget, |k, e| {
            visited += 1;
            if opts.pattern.is_some_and(|p| !glob_match(p, k, false)) {
                return;
            }
            let stale = e.expire_at != 0 && e.expire_at <= now;
            if let Some(t) = opts.type_ {
                // Redis looks the key up to learn its type, counting it as a read.
                let counter = if stale { &server.stats.keyspace_misses } else { &server.stats.keyspace_hits };
                counter.fetch_add(1, Relaxed);
                if stale || !t.eq_ignore_ascii_case(e.value.type_name().as_bytes()) {
                    if stale {
                        expired.push(Bytes::copy_from_slice(k));
                    }
                    return;
                }
            }
            if stale {
                expired.push(Bytes::copy_from_slice(k));
            } else {
                keys.push(Reply::Bulk(Bytes::copy_from_slice(k)));
            }
        });
        // Reaped as any access reaps an expired key (counted, notified and
        // replayed as DEL, as Redis's SCAN expires what it visits). Removing
        // visited keys only moves visited keys (see `Db::scan`).
        for k in &expired {
            db.delete(k, now);
        }
        budget = budget.saturating_sub(visited);
        if next != 0 || budget == 0 {
            return scan_reply(client_cursor(n, shard.id, next), keys);
        }
        // This shard is done: on to the next one held (a script holding
        // only its own shard ends its walk with it).
    }
    scan_reply(0, keys)
}

fn scan_reply(cursor: u64, keys: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(cursor.to_string()), Reply::Array(keys)])
}

/// Turns a position in `shard` (0: its end) into the client's cursor.
fn client_cursor(shards: u64, shard: usize, pos: usize) -> u64 {
    if pos == 0 {
        let next = shard as u64 + 1;
        if next >= shards {
            0
        } else {
            next
        }
    } else {
        (pos as u64).saturating_mul(shards).saturating_add(shard as u64)
    }
}

// -------------------------------------------------------- RENAME, COPY, MOVE

fn rename_generic(ctx: &mut Ctx, args: &[Bytes], nx: bool) -> Reply {
    let (src, dst) = (&args[1], &args[2]);
    if !exists_w(ctx, src) {
        return Reply::err(crate::protocol::errors::NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { Reply::Int(0) } else { Reply::ok() };
    }
    if nx && exists_w(ctx, dst) {
        return Reply::Int(0);
    }
    let hint = ctx.db(src).str_hint(src);
    let Some(entry) = ctx.db(src).remove(src) else {
        return Reply::err(crate::protocol::errors::NO_SUCH_KEY);
    };
    ctx.db(dst).put(dst.clone(), entry);
    ctx.db(dst).set_str_hint(dst, hint);
    ctx.written(src, "rename_from");
    ctx.written(dst, "rename_to");
    ctx.set_dirty(1);
    if nx {
        Reply::Int(1)
    } else {
        Reply::ok()
    }
}

pub fn rename(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    rename_generic(ctx, args, false)
}

pub fn renamenx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    rename_generic(ctx, args, true)
}

/// Parses a DB index argument as Redis's `getIntFromObjectOrReply` + `selectDb`.
fn db_index(ctx: &Ctx, arg: &[u8]) -> Result<usize, Reply> {
    let n = parse_i64(arg).ok_or_else(Reply::not_integer)?;
    if i32::try_from(n).is_err() {
        return Err(Reply::err(crate::protocol::errors::OUT_OF_RANGE_I32));
    }
    let dbs = ctx.server.databases();
    usize::try_from(n)
        .ok()
        .filter(|&i| i < dbs)
        .ok_or_else(|| Reply::err(crate::protocol::errors::DB_INDEX_OUT_OF_RANGE))
}

pub fn copy(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (src, dst) = (&args[1], &args[2]);
    let mut replace = false;
    let mut target = ctx.db;
    let mut j = 3;
    while j < args.len() {
        if eq_ic(&args[j], "replace") {
            replace = true;
        } else if eq_ic(&args[j], "db") && j + 1 < args.len() {
            match db_index(ctx, &args[j + 1]) {
                Ok(i) => target = i,
                Err(e) => return e,
            }
            j += 1;
        } else {
            return Reply::syntax_error();
        }
        j += 1;
    }
    if target == ctx.db && src == dst {
        return Reply::err(crate::protocol::errors::SAME_OBJECT);
    }
    let Some(e) = lookup_read(ctx, src) else {
        return Reply::Int(0);
    };
    let copied = Entry { value: e.value.clone(), expire_at: e.expire_at };
    let hint = ctx.db(src).str_hint(src);
    let now = ctx.now;
    let dest = ctx.db_at(dst, target);
    if dest.get(dst, now).is_some() && !replace {
        return Reply::Int(0);
    }
    dest.put(dst.clone(), copied);
    dest.set_str_hint(dst, hint);
    ctx.written_in(dst, target, "copy_to");
    Reply::Int(1)
}

pub fn move_(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let target = match db_index(ctx, &args[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    if target == ctx.db {
        return Reply::err(crate::protocol::errors::SAME_OBJECT);
    }
    if !exists_w(ctx, key) {
        return Reply::Int(0);
    }
    let now = ctx.now;
    if ctx.db_at(key, target).get(key, now).is_some() {
        return Reply::Int(0);
    }
    let hint = ctx.db(key).str_hint(key);
    let Some(entry) = ctx.db(key).remove(key) else {
        return Reply::Int(0);
    };
    let dest = ctx.db_at(key, target);
    dest.put(key.clone(), entry);
    dest.set_str_hint(key, hint);
    ctx.written(key, "move_from");
    ctx.written_in(key, target, "move_to");
    ctx.set_dirty(1);
    Reply::Int(1)
}

/// SWAPDB: every shard swaps the same pair.
pub fn swapdb(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let parse =
        |a: &[u8], what: &str| parse_i64(a).filter(|n| i32::try_from(*n).is_ok()).ok_or_else(|| Reply::err(what));
    let (a, b) = match (parse(&args[1], "invalid first DB index"), parse(&args[2], "invalid second DB index")) {
        (Err(e), _) | (_, Err(e)) => return e,
        (Ok(a), Ok(b)) => (a, b),
    };
    let dbs = ctx.server.databases() as i64;
    if !(0..dbs).contains(&a) || !(0..dbs).contains(&b) {
        return Reply::err(crate::protocol::errors::DB_INDEX_OUT_OF_RANGE);
    }
    // Swapping a database with itself changes nothing (WATCHed keys stay
    // clean), though Redis still counts it as a write.
    if a != b {
        ctx.swapping(a as usize, b as usize);
        for shard in ctx.shards().iter_mut() {
            shard.dbs.swap(a as usize, b as usize);
        }
    }
    ctx.dirty(1);
    Reply::ok()
}

// ------------------------------------------------------------------ OBJECT

fn object_lookup<'c>(ctx: &'c mut Ctx, args: &[Bytes]) -> Option<&'c Entry> {
    peek_read(ctx, &args[2])
}

pub fn object_encoding(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(e) = object_lookup(ctx, args) else {
        return Reply::Nil;
    };
    let enc = match &e.value {
        Value::Str(s) => string_encoding(s.len(), e.value.encoding(), ctx.db(&args[2]).str_hint(&args[2])),
        v => v.encoding(),
    };
    Reply::bulk_str(enc)
}

/// A string's encoding given how it was last written: Redis keeps strings
/// edited in place `raw`, and INCRBYFLOAT results `embstr` up to 44 bytes.
pub(crate) fn string_encoding(len: usize, by_content: &'static str, hint: StrHint) -> &'static str {
    match hint {
        StrHint::Plain => by_content,
        StrHint::Raw => "raw",
        StrHint::Embstr if len <= 44 => "embstr",
        StrHint::Embstr => "raw",
    }
}

/// Redis shares the objects of small integers (refcount INT_MAX); every
/// other value has one reference.
pub fn object_refcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(e) = object_lookup(ctx, args) else {
        return Reply::Nil;
    };
    Reply::Int(refcount(&e.value))
}

/// The reference count Redis reports for a value.
pub(crate) fn refcount(value: &Value) -> i64 {
    let shared = matches!(value, Value::Str(s) if parse_i64(s).is_some_and(|n| (0..10000).contains(&n)));
    if shared {
        i32::MAX as i64
    } else {
        1
    }
}

fn lfu_policy(ctx: &Ctx) -> bool {
    crate::storage::memory::Policy::of(ctx.server).lfu()
}

/// Seconds since the key was last accessed; refused under an LFU policy,
/// where the access word holds a frequency instead.
pub fn object_idletime(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let lfu = lfu_policy(ctx);
    if object_lookup(ctx, args).is_none() {
        return Reply::Nil;
    }
    if lfu {
        return Reply::err("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    let now = ctx.now;
    ctx.db(&args[2]).idle_secs(&args[2], now).map_or(Reply::Nil, |s| Reply::Int(s as i64))
}

/// The key's logarithmic access counter, decayed to now; only under an LFU policy.
pub fn object_freq(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let lfu = lfu_policy(ctx);
    if object_lookup(ctx, args).is_none() {
        return Reply::Nil;
    }
    if !lfu {
        return Reply::err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    let now = ctx.now;
    ctx.db(&args[2]).lfu_freq(&args[2], now).map_or(Reply::Nil, |f| Reply::Int(f as i64))
}

pub fn object_help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("OBJECT", crate::commands::help::OBJECT)
}

#[cfg(test)]
mod tests {
    use super::super::strings;
    use super::*;
    use crate::server::Server;

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    fn stat(c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(Relaxed)
    }

    /// Reads count hits and misses, writes do not; a lazily reaped key counts as expired.
    #[test]
    fn keyspace_stats() {
        let server = Server::new(crate::config::Config::default());
        let mut guard = server.shards.get(0).lock_blocking();
        let mut one = [&mut *guard];
        let client = crate::net::client::ClientInfo::new(1, String::new(), String::new(), -1);
        let mut ctx = Ctx::new(&server, &mut one, &client, 0, 2, crate::commands::dispatch::Origin::Client);
        ctx.now = crate::storage::now_ms();
        let st = &server.stats;
        strings::set(&mut ctx, &args(&["set", "a", "1"]));
        strings::incr(&mut ctx, &args(&["incr", "nothere"]));
        assert_eq!((stat(&st.keyspace_hits), stat(&st.keyspace_misses)), (0, 0));
        strings::get(&mut ctx, &args(&["get", "a"]));
        strings::mget(&mut ctx, &args(&["mget", "a", "b"]));
        exists(&mut ctx, &args(&["exists", "zz"]));
        assert_eq!((stat(&st.keyspace_hits), stat(&st.keyspace_misses)), (2, 2));
        let now = ctx.now;
        ctx.db(b"old").set_with_expiry(Bytes::from_static(b"old"), Value::Str(Default::default()), now - 1);
        assert_eq!(strings::get(&mut ctx, &args(&["get", "old"])), Reply::Nil);
        assert_eq!(stat(&st.expired_keys), 1);
        assert_eq!(stat(&st.keyspace_misses), 3);
    }
}
