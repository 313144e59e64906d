//! Stream commands (Redis 7.0's t_stream.c): entries, trimming, consumer
//! groups and introspection. Reads for XREAD/XREADGROUP live in `read.rs`
//! (they may block: see `commands::blocking`), groups in `group.rs`, XINFO
//! in `info.rs`.

mod group;
mod info;
pub mod read;

pub use group::{xack, xautoclaim, xclaim, xgroup, xgroup_help, xpending};
pub use info::{xinfo, xinfo_help};

use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::storage::stream::{parse_id, Entry, ParsedId, StreamId, Trim};
use crate::storage::{Db, Stream, Value};
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;

// ------------------------------------------------------------ declarations

const XREAD_KEYS: KeySpec = KeySpec::Custom { find: read::xread_keys, legacy: (0, 0, 0) };
const XREADGROUP_KEYS: KeySpec = KeySpec::Custom { find: read::xreadgroup_keys, legacy: (0, 0, 0) };

static XGROUP_SUBS: &[CommandSpec] = &[
    cmd("xgroup|create", -5, WRITE | DENYOOM, K2, G::Stream, K(xgroup))
        .syntax("key%k groupname (id|$) [MKSTREAM] [ENTRIESREAD entries_read%i]")
        .doc("5.0.0", "Creates a consumer group at a position of the stream.")
        .key_specs(&[ks(&["RW", "insert"], idx(2), range(0, 1, 0))]),
    cmd("xgroup|setid", -5, WRITE, K2, G::Stream, K(xgroup))
        .syntax("key%k groupname (id|$) [ENTRIESREAD entries_read%i]")
        .doc("5.0.0", "Moves a group's last-delivered ID."),
    cmd("xgroup|destroy", 4, WRITE, K2, G::Stream, K(xgroup))
        .syntax("key%k groupname")
        .doc("5.0.0", "Deletes a consumer group with its pending entries.")
        .key_specs(&[ks(&["RW", "delete"], idx(2), range(0, 1, 0))]),
    cmd("xgroup|createconsumer", 5, WRITE | DENYOOM, K2, G::Stream, K(xgroup))
        .syntax("key%k groupname consumername")
        .doc("6.2.0", "Adds a consumer to a group.")
        .key_specs(&[ks(&["RW", "insert"], idx(2), range(0, 1, 0))]),
    cmd("xgroup|delconsumer", 5, WRITE, K2, G::Stream, K(xgroup))
        .syntax("key%k groupname consumername")
        .doc("5.0.0", "Removes a consumer and its pending entries from a group.")
        .key_specs(&[ks(&["RW", "delete"], idx(2), range(0, 1, 0))]),
    cmd("xgroup|help", 2, LOADING | STALE, NOKEYS, G::Stream, C(xgroup_help))
        .doc("5.0.0", "Lists the XGROUP subcommands."),
];

static XINFO_SUBS: &[CommandSpec] = &[
    cmd("xinfo|stream", -3, READONLY, K2, G::Stream, K(xinfo))
        .syntax("key%k [FULL [COUNT count%i]]")
        .doc("5.0.0", "Describes a stream, or fully with FULL."),
    cmd("xinfo|groups", 3, READONLY, K2, G::Stream, K(xinfo))
        .syntax("key%k")
        .doc("5.0.0", "Lists a stream's consumer groups."),
    cmd("xinfo|consumers", 4, READONLY, K2, G::Stream, K(xinfo))
        .syntax("key%k groupname")
        .doc("5.0.0", "Lists the consumers of a group.")
        .tips(&["nondeterministic_output"]),
    cmd("xinfo|help", 2, LOADING | STALE, NOKEYS, G::Stream, C(xinfo_help))
        .doc("5.0.0", "Lists the XINFO subcommands."),
];

pub static COMMANDS: &[CommandSpec] = &[
    cmd("xadd", -5, WRITE | DENYOOM | FAST, K1, G::Stream, K(xadd))
        .syntax("key%k [NOMKSTREAM] [(MAXLEN|MINID) [=|~] threshold [LIMIT count%i]] (*|id) field value [field value ...]")
        .doc("5.0.0", "Appends an entry to a stream, creating it unless told not to; can trim in the same call.")
        .tips(&["nondeterministic_output"])
        .key_specs(&[ks_noted(
            "UPDATE instead of INSERT because of the optional trimming feature",
            &["RW", "update"],
            idx(1),
            range(0, 1, 0),
        )]),
    cmd("xlen", 2, READONLY | FAST, K1, G::Stream, K(xlen))
        .syntax("key%k")
        .doc("5.0.0", "Counts the entries of a stream.")
        .key_specs(&[ks(&["RO"], idx(1), range(0, 1, 0))]),
    cmd("xrange", -4, READONLY, K1, G::Stream, K(xrange))
        .syntax("key%k start end [COUNT count%i]")
        .doc("5.0.0", "Returns the entries between two IDs, oldest first.")
        .key_specs(&[ks(&["RO", "access"], idx(1), range(0, 1, 0))]),
    cmd("xrevrange", -4, READONLY, K1, G::Stream, K(xrevrange))
        .syntax("key%k end start [COUNT count%i]")
        .doc("5.0.0", "Returns the entries between two IDs, newest first."),
    cmd("xdel", -3, WRITE | FAST, K1, G::Stream, K(xdel))
        .syntax("key%k id [id ...]")
        .doc("5.0.0", "Deletes entries by ID and counts those removed.")
        .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    cmd("xtrim", -4, WRITE, K1, G::Stream, K(xtrim))
        .syntax("key%k (MAXLEN|MINID) [=|~] threshold [LIMIT count%i]")
        .doc("5.0.0", "Drops the oldest entries by length or by minimal ID.")
        .tips(&["nondeterministic_output"])
        .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    cmd("xsetid", -3, WRITE | DENYOOM | FAST, K1, G::Stream, K(xsetid))
        .syntax("key%k last-id [ENTRIESADDED entries_added%i] [MAXDELETEDID max_deleted_entry_id]")
        .doc("5.0.0", "Sets a stream's last ID and, optionally, its added and deleted counters."),
    cmd("xack", -4, WRITE | FAST, K1, G::Stream, K(xack))
        .syntax("key%k group id [id ...]")
        .doc("5.0.0", "Acknowledges pending entries of a group.")
        .key_specs(&[ks(&["RW", "update"], idx(1), range(0, 1, 0))]),
    cmd("xpending", -3, READONLY, K1, G::Stream, K(xpending))
        .syntax("key%k group [[IDLE min-idle-time%i] start end count%i [consumer]]")
        .doc("5.0.0", "Summarizes or lists the pending entries of a group.")
        .tips(&["nondeterministic_output"]),
    cmd("xclaim", -6, WRITE | FAST, K1, G::Stream, K(xclaim))
        .syntax("key%k group consumer min-idle-time id [id ...] [IDLE ms%i] [TIME unix-time-milliseconds%t] [RETRYCOUNT count%i] [FORCE] [JUSTID] [LASTID id]")
        .doc("5.0.0", "Moves pending entries to another consumer.")
        .tips(&["nondeterministic_output"]),
    cmd("xautoclaim", -6, WRITE | FAST, K1, G::Stream, K(xautoclaim))
        .syntax("key%k group consumer min-idle-time start [COUNT count%i] [JUSTID]")
        .doc("6.2.0", "Scans the pending entries and claims the idle ones for a consumer.")
        .tips(&["nondeterministic_output"])
        .key_specs(&[ks(&["RW", "delete"], idx(1), range(0, 1, 0))]),
    // Both may block, so the connection loop runs them (commands::blocking);
    // their streams may live on several shards.
    cmd("xread", -4, READONLY | BLOCKING | MULTI_SHARD, XREAD_KEYS, G::Stream, B(crate::commands::blocking::attempt))
        .syntax("[COUNT count%i] [BLOCK milliseconds%i] (STREAMS key%k [key ...] id [id ...])")
        .doc("5.0.0", "Reads entries after given IDs from one or more streams, waiting if asked.")
        .key_specs(&[ks(&["RO", "access"], kw("STREAMS", 1), range(-1, 1, 2))]),
    cmd(
        "xreadgroup",
        -7,
        WRITE | BLOCKING | MULTI_SHARD,
        XREADGROUP_KEYS,
        G::Stream,
        B(crate::commands::blocking::attempt),
    )
        .syntax("(GROUP group consumer) [COUNT count%i] [BLOCK milliseconds%i] [NOACK] (STREAMS key%k [key ...] id [id ...])")
    .doc("5.0.0", "Reads entries for a consumer of a group, tracking them as pending.")
    .key_specs(&[ks(&["RO", "access"], kw("STREAMS", 4), range(-1, 1, 2))]),
    container("xgroup", -2, 0, G::Stream, XGROUP_SUBS)
        .doc("5.0.0", "Container for consumer-group management subcommands."),
    container("xinfo", -2, 0, G::Stream, XINFO_SUBS).doc("5.0.0", "Container for stream introspection subcommands."),
];

/// Default LIMIT of an approximate trim: 100 nodes' worth of entries
/// (`stream-node-max-entries`), 10,000 when that is 0, at most 1,000,000,
/// as in Redis.
fn approx_trim_limit(node_max_entries: u64) -> u64 {
    match node_max_entries.saturating_mul(100) {
        0 => 10_000,
        n => n.min(1_000_000),
    }
}

fn invalid_id() -> Reply {
    Reply::err("Invalid stream ID specified as stream command argument")
}

/// A strict ID (`-` and `+` refused), a bare ms meaning `<ms>-0`.
fn strict_id(arg: &[u8]) -> Result<StreamId, Reply> {
    parse_id(arg, 0, true, false).map(|p| p.id).ok_or_else(invalid_id)
}

/// An ID that may be `-` or `+`; a bare ms gets `missing_seq`.
fn loose_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, Reply> {
    parse_id(arg, missing_seq, false, false).map(|p| p.id).ok_or_else(invalid_id)
}

/// A range bound: `(id` is exclusive (and then strict).
fn interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    if arg.len() > 1 && arg[0] == b'(' {
        return Ok((parse_id(&arg[1..], missing_seq, true, false).ok_or_else(invalid_id)?.id, true));
    }
    Ok((loose_id(arg, missing_seq)?, false))
}

/// The start of an interval, moved past an exclusive bound.
fn range_start(arg: &[u8]) -> Result<StreamId, Reply> {
    match interval_id(arg, 0)? {
        (id, false) => Ok(id),
        (id, true) => id.incr().ok_or_else(|| Reply::err("invalid start ID for the interval")),
    }
}

fn range_end(arg: &[u8]) -> Result<StreamId, Reply> {
    match interval_id(arg, u64::MAX)? {
        (id, false) => Ok(id),
        (id, true) => id.decr().ok_or_else(|| Reply::err("invalid end ID for the interval")),
    }
}

fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(Reply::not_integer)
}

fn int_arg_msg(arg: &[u8], msg: &str) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(|| Reply::err(msg))
}

pub(crate) fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_bytes())
}

pub(crate) fn entry_reply((id, fields): Entry) -> Reply {
    Reply::Array(vec![id_reply(id), Reply::Array(fields.into_iter().map(Reply::Bulk).collect())])
}

pub(crate) fn entries_reply(v: Vec<Entry>) -> Reply {
    Reply::Array(v.into_iter().map(entry_reply).collect())
}

/// Redis's "unknown subcommand or wrong number of arguments" for containers.
pub(crate) fn sub_syntax_error(args: &[Bytes]) -> Reply {
    crate::commands::registry::subcommand_syntax_error(args)
}

pub(crate) fn stream_mut<'d>(db: &'d mut Db, key: &[u8], now: u64) -> Result<Option<&'d mut Stream>, Reply> {
    match db.value_mut(key, now) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// Wakes every client blocked on `key` (XREAD readers do not consume, so
/// all of them may have something to read now).
/// `stream_mut` for a read lookup (Redis's `lookupKeyRead`): counts a
/// keyspace hit or miss.
pub(crate) fn stream_read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Stream>, Reply> {
    let (now, server) = (ctx.now, ctx.server);
    let found = stream_mut(ctx.db(key), key, now);
    crate::commands::keys::count_read(server, &found);
    found
}

fn wake_readers(ctx: &mut Ctx, key: &[u8]) {
    let db = ctx.db;
    ctx.shard_for(key).waiters.signal_all(db, key);
}

/// XADD/XTRIM options, parsed as Redis's `streamParseAddOrTrimArgsOrReply`.
struct AddTrim {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    id: Option<ParsedId>,
    /// Position of the ID (XADD) or past the options (XTRIM).
    next: usize,
}

fn parse_add_trim(args: &[Bytes], xadd: bool, node_max_entries: u64) -> Result<AddTrim, Reply> {
    let argc = args.len();
    let mut p = AddTrim { trim: None, approx: false, limit: 0, nomkstream: false, id: None, next: 0 };
    let (mut limit, mut limit_given) = (0i64, false);
    let mut i = 2;
    while i < argc {
        let more = argc - 1 - i;
        let opt = &args[i];
        if xadd && &opt[..] == b"*" {
            break;
        } else if (eq_ic(opt, "maxlen") || eq_ic(opt, "minid")) && more > 0 {
            if p.trim.is_some() {
                return Err(Reply::err("syntax error, MAXLEN and MINID options at the same time are not compatible"));
            }
            p.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && next == b"~" {
                p.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if eq_ic(opt, "maxlen") {
                let n = int_arg(&args[i + 1])?;
                if n < 0 {
                    return Err(Reply::err("The MAXLEN argument must be >= 0."));
                }
                p.trim = Some(Trim::MaxLen(n as u64));
            } else {
                p.trim = Some(Trim::MinId(strict_id(&args[i + 1])?));
            }
            i += 1;
        } else if eq_ic(opt, "limit") && more > 0 {
            limit = int_arg(&args[i + 1])?;
            if limit < 0 {
                return Err(Reply::err("The LIMIT argument must be >= 0."));
            }
            limit_given = true;
            i += 1;
        } else if xadd && eq_ic(opt, "nomkstream") {
            p.nomkstream = true;
        } else if xadd {
            p.id = Some(parse_id(opt, 0, true, true).ok_or_else(invalid_id)?);
            break;
        } else {
            return Err(Reply::syntax_error());
        }
        i += 1;
    }
    p.next = i;
    if limit != 0 && p.trim.is_none() {
        return Err(Reply::err("syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && p.trim.is_none() {
        return Err(Reply::err("syntax error, XTRIM must be called with a trimming strategy"));
    }
    if limit_given {
        if !p.approx {
            return Err(Reply::err("syntax error, LIMIT cannot be used without the special ~ option"));
        }
        p.limit = limit as u64;
    } else {
        p.limit = if p.approx { approx_trim_limit(node_max_entries) } else { 0 };
    }
    Ok(p)
}

/// The ID XADD gives the new entry, or Redis's error.
fn next_id(last: StreamId, given: Option<ParsedId>, now: u64) -> Result<StreamId, Reply> {
    let smaller = || Reply::err("The ID specified in XADD is equal or smaller than the target stream top item");
    let id = match given {
        None if now > last.ms => StreamId::new(now, 0),
        None => last.incr().ok_or_else(smaller)?,
        Some(ParsedId { id, seq_given: true }) => id,
        Some(ParsedId { id, seq_given: false }) if id.ms == last.ms => {
            if last.seq == u64::MAX {
                return Err(smaller());
            }
            StreamId::new(last.ms, last.seq + 1)
        }
        Some(ParsedId { id, .. }) => id,
    };
    if id <= last {
        return Err(smaller());
    }
    Ok(id)
}

pub fn xadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let config = &ctx.server.config;
    let node_max_entries = config.stream_node_max_entries.load(std::sync::atomic::Ordering::Relaxed);
    let node_max_bytes = config.stream_node_max_bytes.load(std::sync::atomic::Ordering::Relaxed);
    let p = match parse_add_trim(args, true, node_max_entries) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let field_pos = p.next + 1;
    if args.len() < field_pos + 2 || !(args.len() - field_pos).is_multiple_of(2) {
        return Reply::wrong_arity("xadd");
    }
    if let Some(ParsedId { id, seq_given: true }) = p.id {
        if id.is_zero() {
            return Reply::err("The ID specified in XADD must be greater than 0-0");
        }
    }
    let now = ctx.now;
    let key = &args[1];
    let propagating = ctx.propagating();
    let db = ctx.db(key);
    let last = match stream_mut(db, key, now) {
        Err(e) => return e,
        Ok(None) if p.nomkstream => return Reply::Nil,
        Ok(None) => StreamId::MIN,
        Ok(Some(s)) => s.last_id,
    };
    if last == StreamId::MAX {
        return Reply::err("The stream has exhausted the last possible ID, unable to add more items");
    }
    let id = match next_id(last, p.id, now) {
        Ok(id) => id,
        Err(e) => return e,
    };
    if db.get(key, now).is_none() {
        db.set(key.clone(), Value::Stream(Box::default()));
    }
    let Ok(Some(s)) = stream_mut(db, key, now) else {
        return Reply::wrong_type();
    };
    s.append_within(id, &args[field_pos..], node_max_entries, node_max_bytes);
    if let Some(how) = p.trim {
        s.trim(how, p.approx, p.limit);
    }
    let replay = propagating.then(|| {
        let mut argv = vec![Bytes::from_static(b"XADD"), key.clone()];
        if p.nomkstream {
            argv.push(Bytes::from_static(b"NOMKSTREAM"));
        }
        argv.extend(exact_trim(&p, s));
        argv.push(id.to_bytes());
        argv.extend(args[field_pos..].iter().cloned());
        argv
    });
    ctx.written(key, "xadd");
    if let Some(argv) = replay {
        ctx.propagate_as(argv);
    }
    wake_readers(ctx, key);
    id_reply(id)
}

/// The trimming an XADD or XTRIM did, as exact options for the write stream:
/// approximate trimming (`~`, LIMIT) removes whole nodes, whose bounds differ
/// between servers, so it is replayed as the exact length or first ID it
/// left, as Redis rewrites it.
fn exact_trim(p: &AddTrim, s: &crate::storage::Stream) -> Vec<Bytes> {
    let eq = || Bytes::from_static(b"=");
    match p.trim {
        None => Vec::new(),
        Some(Trim::MaxLen(n)) if !p.approx => vec![Bytes::from_static(b"MAXLEN"), eq(), Bytes::from(n.to_string())],
        Some(Trim::MinId(id)) if !p.approx => vec![Bytes::from_static(b"MINID"), eq(), id.to_bytes()],
        Some(Trim::MaxLen(_)) => vec![Bytes::from_static(b"MAXLEN"), eq(), Bytes::from(s.len().to_string())],
        Some(Trim::MinId(_)) => match s.edge_id(false) {
            Some(first) => vec![Bytes::from_static(b"MINID"), eq(), first.to_bytes()],
            None => vec![Bytes::from_static(b"MAXLEN"), eq(), Bytes::from_static(b"0")],
        },
    }
}

pub fn xlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match stream_read(ctx, &args[1]) {
        Err(e) => e,
        Ok(s) => Reply::Int(s.map_or(0, |s| s.len() as i64)),
    }
}

fn range_cmd(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> Reply {
    let (start_arg, end_arg) = if rev { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
    let parsed = (|| {
        let start = range_start(start_arg)?;
        let end = range_end(end_arg)?;
        let mut count: i64 = -1;
        let mut j = 4;
        while j < args.len() {
            if eq_ic(&args[j], "count") && j + 1 < args.len() {
                count = int_arg(&args[j + 1])?.max(0);
                j += 2;
            } else {
                return Err(Reply::syntax_error());
            }
        }
        Ok((start, end, count))
    })();
    let (start, end, count) = match parsed {
        Ok(p) => p,
        Err(e) => return e,
    };
    let s = match stream_read(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(vec![]),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return Reply::NilArray;
    }
    let count = if count < 0 { 0 } else { usize::try_from(count).unwrap_or(usize::MAX) };
    entries_reply(s.range(start, end, rev, count))
}

pub fn xrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    range_cmd(ctx, args, false)
}

pub fn xrevrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    range_cmd(ctx, args, true)
}

pub fn xdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let key = &args[1];
    let s = match stream_mut(ctx.db(key), key, now) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(s)) => s,
    };
    let mut ids = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        match strict_id(a) {
            Ok(id) => ids.push(id),
            Err(e) => return e,
        }
    }
    let (mut deleted, mut first) = (0, false);
    for id in ids {
        if s.delete(id) {
            first |= id == s.first_id;
            if id > s.max_deleted_id {
                s.max_deleted_id = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        if s.is_empty() {
            s.first_id = StreamId::MIN;
        } else if first {
            s.first_id = s.edge_id(false).unwrap_or(StreamId::MAX);
        }
        ctx.written(key, "xdel");
    }
    Reply::Int(deleted)
}

pub fn xtrim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let node_max_entries = ctx.server.config.stream_node_max_entries.load(std::sync::atomic::Ordering::Relaxed);
    let p = match parse_add_trim(args, false, node_max_entries) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let now = ctx.now;
    let key = &args[1];
    let propagating = ctx.propagating();
    let s = match stream_mut(ctx.db(key), key, now) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(s)) => s,
    };
    let Some(how) = p.trim else {
        return Reply::Int(0);
    };
    let n = s.trim(how, p.approx, p.limit);
    if n > 0 {
        let replay = propagating.then(|| {
            let mut argv = vec![Bytes::from_static(b"XTRIM"), key.clone()];
            argv.extend(exact_trim(&p, s));
            argv
        });
        ctx.written(key, "xtrim");
        ctx.set_dirty(n);
        if let Some(argv) = replay {
            ctx.propagate_as(argv);
        }
    }
    Reply::Int(n as i64)
}

pub fn xsetid(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let parsed = (|| {
        let id = strict_id(&args[2])?;
        let (mut added, mut max_del) = (None, StreamId::MIN);
        let mut i = 3;
        while i < args.len() {
            let more = args.len() - 1 - i;
            if eq_ic(&args[i], "entriesadded") && more > 0 {
                let n = int_arg(&args[i + 1])?;
                if n < 0 {
                    return Err(Reply::err("entries_added must be positive"));
                }
                added = Some(n as u64);
            } else if eq_ic(&args[i], "maxdeletedid") && more > 0 {
                max_del = strict_id(&args[i + 1])?;
                if id < max_del {
                    return Err(Reply::err(
                        "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                    ));
                }
            } else {
                return Err(Reply::syntax_error());
            }
            i += 2;
        }
        Ok((id, added, max_del))
    })();
    let (id, added, max_del) = match parsed {
        Ok(p) => p,
        Err(e) => return e,
    };
    let now = ctx.now;
    let key = &args[1];
    let s = match stream_mut(ctx.db(key), key, now) {
        Err(e) => return e,
        Ok(None) => return Reply::err(crate::protocol::errors::NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    if !s.is_empty() {
        if s.edge_id(true).is_some_and(|top| id < top) {
            return Reply::err("The ID specified in XSETID is smaller than the target stream top item");
        }
        if added.is_some_and(|a| s.len() > a) {
            return Reply::err("The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    s.last_id = id;
    if let Some(a) = added {
        s.entries_added = a;
    }
    if !max_del.is_zero() {
        s.max_deleted_id = max_del;
    }
    // Not signalled as modified, as in Redis 7.0 (fuzzer run 8).
    ctx.changed_unsignalled(key, Some("xsetid"));
    Reply::ok()
}

/// Redis's `streamRangeHasTombstones` from `start` to the end.
pub(crate) fn has_tombstones_after(s: &Stream, start: StreamId) -> bool {
    if s.is_empty() || s.max_deleted_id.is_zero() || s.first_id > s.max_deleted_id {
        return false;
    }
    start <= s.max_deleted_id
}

/// Redis's `streamEstimateDistanceFromFirstEverEntry`: the logical read
/// counter of `id`, when it can be known.
pub(crate) fn estimate_entries_read(s: &Stream, id: StreamId) -> Option<u64> {
    if s.entries_added == 0 {
        return Some(0);
    }
    if s.is_empty() && id <= s.last_id {
        return Some(s.entries_added);
    }
    match id.cmp(&s.last_id) {
        std::cmp::Ordering::Equal => return Some(s.entries_added),
        std::cmp::Ordering::Greater => return None,
        std::cmp::Ordering::Less => {}
    }
    if s.max_deleted_id.is_zero() || s.max_deleted_id < s.first_id {
        match id.cmp(&s.first_id) {
            std::cmp::Ordering::Less => return Some(s.entries_added - s.len()),
            std::cmp::Ordering::Equal => return Some(s.entries_added - s.len() + 1),
            std::cmp::Ordering::Greater => {}
        }
    }
    None
}

/// A group's lag (entries not yet delivered), when it can be known.
pub(crate) fn group_lag(s: &Stream, last_id: StreamId, entries_read: Option<u64>) -> Option<i64> {
    if s.entries_added == 0 {
        return Some(0);
    }
    let read = match entries_read {
        Some(r) if !has_tombstones_after(s, last_id) => r,
        _ => estimate_entries_read(s, last_id)?,
    };
    Some((s.entries_added as i64).wrapping_sub(read as i64))
}
