//! Consumer groups: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM.

use super::{
    entry_reply, id_reply, int_arg, int_arg_msg, loose_id, range_end, range_start, stream_mut, strict_id,
    sub_syntax_error,
};
use crate::commands::{ConnCtx, Ctx};
use crate::protocol::c_str;
use crate::protocol::Reply;
use crate::storage::stream::{Group, Nack, StreamId};
use crate::storage::{Stream, Value};
use crate::util::eq_ic;
use bytes::Bytes;

fn nogroup(key: &[u8], group: &[u8]) -> Reply {
    Reply::error_concat(&[b"NOGROUP No such key '", c_str(key), b"' or consumer group '", c_str(group), b"'"])
}

pub(crate) fn nogroup_for_key(group: &[u8], key: &[u8]) -> Reply {
    Reply::error_concat(&[b"NOGROUP No such consumer group '", c_str(group), b"' for key name '", c_str(key), b"'"])
}

fn entries_read_arg(arg: &[u8]) -> Result<Option<u64>, Reply> {
    let n = int_arg(arg)?;
    if n < 0 && n != -1 {
        return Err(Reply::err("value for ENTRIESREAD must be positive or -1"));
    }
    Ok(u64::try_from(n).ok())
}

pub fn xgroup_help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("XGROUP", crate::commands::help::XGROUP)
}

/// Every XGROUP subcommand but HELP, in Redis's order of checks.
pub fn xgroup(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let argc = args.len();
    let sub = &args[1];
    let is = |name: &str| eq_ic(sub, name);
    let mut mkstream = false;
    let mut entries_read = None;
    if argc >= 6 && is("create") {
        let mut i = 5;
        while i < argc {
            if eq_ic(&args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if eq_ic(&args[i], "entriesread") && i + 1 < argc {
                match entries_read_arg(&args[i + 1]) {
                    Ok(n) => entries_read = n,
                    Err(e) => return e,
                }
                i += 2;
            } else {
                return sub_syntax_error(args);
            }
        }
    }
    if is("setid") && argc > 5 {
        // As in Redis: the option after the ID must be ENTRIESREAD with a
        // valid value; only then does the argument count decide.
        if !(eq_ic(&args[5], "entriesread") && argc > 6) {
            return sub_syntax_error(args);
        }
        match entries_read_arg(&args[6]) {
            Ok(n) => entries_read = n,
            Err(e) => return e,
        }
        if argc != 7 {
            return sub_syntax_error(args);
        }
    }
    let (key, name) = (&args[2], &args[3]);
    let now = ctx.now;
    let exists = match stream_mut(ctx.db(key), key, now) {
        Err(e) => return e,
        Ok(s) => s.map(|s| s.groups.contains_key(name)),
    };
    if !mkstream {
        let Some(has_group) = exists else {
            return Reply::err(
                "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
            );
        };
        if !has_group && (is("setid") || is("createconsumer") || is("delconsumer")) {
            return nogroup_for_key(name, key);
        }
    }
    if is("create") && (5..=8).contains(&argc) {
        create(ctx, args, exists.is_some(), entries_read)
    } else if is("setid") {
        setid(ctx, args, entries_read)
    } else if is("destroy") && argc == 4 {
        let removed = with_stream(ctx, key, |s| s.groups.remove(name).is_some());
        if removed == Some(true) {
            ctx.changed_unsignalled(key, Some("xgroup-destroy"));
            return Reply::Int(1);
        }
        Reply::Int(0)
    } else if is("createconsumer") && argc == 5 {
        let created = with_stream(ctx, key, |s| {
            let g = s.groups.get_mut(name)?;
            if g.consumers.contains_key(&args[4]) {
                return Some(false);
            }
            g.touch_consumer(&args[4], now);
            Some(true)
        });
        let created = created.flatten() == Some(true);
        if created {
            ctx.changed_unsignalled(key, Some("xgroup-createconsumer"));
        }
        Reply::Int(i64::from(created))
    } else if is("delconsumer") && argc == 5 {
        let pending = with_stream(ctx, key, |s| {
            let g = s.groups.get_mut(name)?;
            let c = g.consumers.remove(&args[4])?;
            for id in &c.pel {
                g.pel.remove(id);
            }
            Some(c.pel.len() as i64)
        });
        let pending = pending.flatten();
        if pending.is_some() {
            ctx.changed_unsignalled(key, Some("xgroup-delconsumer"));
        }
        Reply::Int(pending.unwrap_or(0))
    } else {
        sub_syntax_error(args)
    }
}

fn with_stream<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(&mut Stream) -> R) -> Option<R> {
    let now = ctx.now;
    match stream_mut(ctx.db(key), key, now) {
        Ok(Some(s)) => Some(f(s)),
        _ => None,
    }
}

fn create(ctx: &mut Ctx, args: &[Bytes], exists: bool, entries_read: Option<u64>) -> Reply {
    let (key, name) = (&args[2], &args[3]);
    let now = ctx.now;
    let id = if &args[4][..] == b"$" {
        match stream_mut(ctx.db(key), key, now) {
            Ok(Some(s)) => s.last_id,
            _ => StreamId::MIN,
        }
    } else {
        match strict_id(&args[4]) {
            Ok(id) => id,
            Err(e) => return e,
        }
    };
    if !exists {
        ctx.db(key).set(key.clone(), Value::Stream(Box::default()));
    }
    let created = with_stream(ctx, key, |s| {
        if s.groups.contains_key(name) {
            return false;
        }
        s.groups.insert(name.clone(), Group::new(id, entries_read));
        true
    });
    if !exists {
        ctx.written(key, "xgroup-create");
    }
    if created != Some(true) {
        return Reply::error("BUSYGROUP Consumer Group name already exists");
    }
    // One event: MKSTREAM's creation of the stream above already gave it.
    ctx.changed_unsignalled(key, exists.then_some("xgroup-create"));
    // One change for the group; making the stream (MKSTREAM) counts none in Redis.
    ctx.set_dirty(1);
    Reply::ok()
}

fn setid(ctx: &mut Ctx, args: &[Bytes], entries_read: Option<u64>) -> Reply {
    let (key, name) = (&args[2], &args[3]);
    let now = ctx.now;
    let last = match stream_mut(ctx.db(key), key, now) {
        Ok(Some(s)) => s.last_id,
        _ => StreamId::MIN,
    };
    let id = if &args[4][..] == b"$" {
        last
    } else {
        match loose_id(&args[4], 0) {
            Ok(id) => id,
            Err(e) => return e,
        }
    };
    with_stream(ctx, key, |s| {
        if let Some(g) = s.groups.get_mut(name) {
            g.last_id = id;
            g.entries_read = entries_read;
        }
    });
    ctx.changed_unsignalled(key, Some("xgroup-setid"));
    Reply::ok()
}

/// The stream and group a command works on, or Redis's NOGROUP.
fn stream_group<'d>(ctx: &'d mut Ctx, key: &[u8], group: &[u8]) -> Result<(&'d mut Stream, Bytes), Reply> {
    match super::stream_read(ctx, key)? {
        Some(s) => match s.groups.get_key_value(group) {
            Some((k, _)) => {
                let k = k.clone();
                Ok((s, k))
            }
            None => Err(nogroup(key, group)),
        },
        None => Err(nogroup(key, group)),
    }
}

pub fn xack(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let s = match super::stream_read(ctx, key) {
        Err(e) => return e,
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get_mut(&args[2])) else {
        return Reply::Int(0);
    };
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in &args[3..] {
        match strict_id(a) {
            Ok(id) => ids.push(id),
            Err(e) => return e,
        }
    }
    let acked = ids.into_iter().filter(|&id| g.remove_pending(id).is_some()).count();
    // Redis 7.0 neither notifies an XACK nor signals the key as modified.
    if acked > 0 {
        ctx.set_dirty(acked as u64);
    }
    Reply::Int(acked as i64)
}

struct PendingRange {
    idle: i64,
    start: StreamId,
    end: StreamId,
    count: i64,
    consumer: Option<Bytes>,
}

fn parse_pending(args: &[Bytes]) -> Result<Option<PendingRange>, Reply> {
    let argc = args.len();
    if argc == 3 {
        return Ok(None);
    }
    if !(6..=9).contains(&argc) {
        return Err(Reply::syntax_error());
    }
    let mut at = 3;
    let mut idle = 0;
    if eq_ic(&args[3], "idle") {
        idle = int_arg(&args[4])?;
        if argc < 8 {
            return Err(Reply::syntax_error());
        }
        at += 2;
    }
    let count = int_arg(&args[at + 2])?.max(0);
    let start = range_start(&args[at])?;
    let end = range_end(&args[at + 1])?;
    let consumer = args.get(at + 3).cloned();
    Ok(Some(PendingRange { idle, start, end, count, consumer }))
}

pub fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let range = match parse_pending(args) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let now = ctx.now;
    let (s, gname) = match stream_group(ctx, &args[1], &args[2]) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let Some(g) = s.groups.get(&gname) else {
        return Reply::Array(vec![]);
    };
    let Some(r) = range else {
        let (Some((first, _)), Some((last, _))) = (g.pel.first_key_value(), g.pel.last_key_value()) else {
            return Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]);
        };
        let owners = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| Reply::Array(vec![Reply::Bulk(n.clone()), Reply::Bulk(c.pel.len().to_string().into())]))
            .collect();
        return Reply::Array(vec![
            Reply::Int(g.pel.len() as i64),
            id_reply(*first),
            id_reply(*last),
            Reply::Array(owners),
        ]);
    };
    let ids: Box<dyn Iterator<Item = StreamId>> = match &r.consumer {
        Some(c) => match g.consumers.get(c) {
            None => return Reply::Array(vec![]),
            Some(c) => Box::new(c.pel.range(r.start..).copied()),
        },
        None => Box::new(g.pel.range(r.start..).map(|(k, _)| *k)),
    };
    let mut out = Vec::new();
    let mut count = r.count;
    for id in ids {
        if count == 0 || id > r.end {
            break;
        }
        let Some(n) = g.pel.get(&id) else {
            continue;
        };
        let idle = now as i64 - n.delivery_time as i64;
        if r.idle != 0 && idle < r.idle {
            continue;
        }
        count -= 1;
        out.push(Reply::Array(vec![
            id_reply(id),
            Reply::Bulk(n.consumer.clone()),
            Reply::Int(idle.max(0)),
            Reply::Int(n.delivery_count as i64),
        ]));
    }
    Reply::Array(out)
}

struct ClaimOpts {
    ids: Vec<StreamId>,
    delivery_time: Option<i64>,
    retry_count: Option<i64>,
    force: bool,
    justid: bool,
    last_id: StreamId,
}

fn parse_claim(args: &[Bytes], now: i64) -> Result<ClaimOpts, Reply> {
    let mut o = ClaimOpts {
        ids: Vec::new(),
        delivery_time: None,
        retry_count: None,
        force: false,
        justid: false,
        last_id: StreamId::MIN,
    };
    let mut j = 5;
    while j < args.len() {
        match strict_id(&args[j]) {
            Ok(id) => o.ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if eq_ic(opt, "force") {
            o.force = true;
        } else if eq_ic(opt, "justid") {
            o.justid = true;
        } else if eq_ic(opt, "idle") && more > 0 {
            j += 1;
            let idle = int_arg_msg(&args[j], "Invalid IDLE option argument for XCLAIM")?;
            o.delivery_time = Some(now.wrapping_sub(idle));
        } else if eq_ic(opt, "time") && more > 0 {
            j += 1;
            o.delivery_time = Some(int_arg_msg(&args[j], "Invalid TIME option argument for XCLAIM")?);
        } else if eq_ic(opt, "retrycount") && more > 0 {
            j += 1;
            o.retry_count = Some(int_arg_msg(&args[j], "Invalid RETRYCOUNT option argument for XCLAIM")?);
        } else if eq_ic(opt, "lastid") && more > 0 {
            j += 1;
            o.last_id = strict_id(&args[j])?;
        } else {
            return Err(Reply::error_concat(&[b"ERR Unrecognized XCLAIM option '", c_str(opt), b"'"]));
        }
        j += 1;
    }
    Ok(o)
}

/// An entry as XCLAIM/XAUTOCLAIM reply with it.
fn claimed_reply(s: &Stream, id: StreamId, justid: bool) -> Reply {
    if justid {
        return id_reply(id);
    }
    match s.get(id) {
        Some(fields) => entry_reply((id, fields)),
        None => Reply::Nil,
    }
}

/// Moves the pending `id` to `consumer` with a new delivery time; bumps the
/// delivery count as asked.
fn claim_one(g: &mut Group, id: StreamId, consumer: &Bytes, time: u64, count: Option<u64>, bump: bool) {
    g.transfer(id, consumer);
    if let Some(n) = g.pel.get_mut(&id) {
        n.delivery_time = time;
        match count {
            Some(c) => n.delivery_count = c,
            None if bump => n.delivery_count += 1,
            None => {}
        }
    }
}

pub fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let key = &args[1];
    let (s, gname) = match stream_group(ctx, key, &args[2]) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let min_idle = match int_arg_msg(&args[4], "Invalid min-idle-time argument for XCLAIM") {
        Ok(n) => n.max(0),
        Err(e) => return e,
    };
    let o = match parse_claim(args, now as i64) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let time = match o.delivery_time {
        Some(t) if t >= 0 && t <= now as i64 => t as u64,
        _ => now,
    };
    let consumer = &args[3];
    let mut out = Vec::new();
    let Some(mut g) = s.groups.remove(&gname) else {
        return Reply::Array(vec![]);
    };
    let created = !g.consumers.contains_key(consumer);
    let advanced = o.last_id > g.last_id;
    if advanced {
        g.last_id = o.last_id;
    }
    let mut dropped = 0;
    for &id in &o.ids {
        if !s.contains(id) {
            if g.remove_pending(id).is_some() {
                dropped += 1;
            }
            continue;
        }
        let mut fresh = false;
        if o.force && !g.pel.contains_key(&id) {
            g.pel.insert(id, Nack { delivery_time: now, delivery_count: 1, consumer: Bytes::new() });
            fresh = true;
        }
        let Some(n) = g.pel.get(&id) else {
            continue;
        };
        if !fresh && min_idle != 0 && (now as i64 - n.delivery_time as i64) < min_idle {
            continue;
        }
        g.touch_consumer(consumer, now);
        let retry = o.retry_count.map(|c| c as u64);
        claim_one(&mut g, id, consumer, time, retry, !o.justid);
        out.push(claimed_reply(s, id, o.justid));
    }
    let created = created && g.consumers.contains_key(consumer);
    s.groups.insert(gname, g);
    // Claims change only the group (no notification, WATCH stays clean, as
    // in Redis 7.0); a consumer made on the way is notified.
    if created {
        ctx.changed_unsignalled(key, Some("xgroup-createconsumer"));
    }
    // As Redis counts: each pending entry dropped or claimed, a consumer
    // created, or else the group's last ID moved forward.
    let changes = dropped + out.len() as u64;
    ctx.set_dirty(changes + created as u64 + u64::from(changes == 0 && advanced));
    Reply::Array(out)
}

pub fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    const ATTEMPTS_FACTOR: i64 = 10;
    let parsed = (|| {
        let min_idle = int_arg_msg(&args[4], "Invalid min-idle-time argument for XAUTOCLAIM")?.max(0);
        let start = range_start(&args[5])?;
        let (mut count, mut justid) = (100i64, false);
        let mut j = 6;
        while j < args.len() {
            let more = args.len() - 1 - j;
            if eq_ic(&args[j], "count") && more > 0 {
                let max = i64::MAX / 16;
                count = match crate::util::parse_i64(&args[j + 1]) {
                    Some(n) if (1..=max).contains(&n) => n,
                    _ => return Err(Reply::err(crate::protocol::errors::COUNT_GT_ZERO)),
                };
                j += 2;
            } else if eq_ic(&args[j], "justid") {
                justid = true;
                j += 1;
            } else {
                return Err(Reply::syntax_error());
            }
        }
        Ok((min_idle, start, count, justid))
    })();
    let (min_idle, start, mut count, justid) = match parsed {
        Ok(p) => p,
        Err(e) => return e,
    };
    let now = ctx.now;
    let key = &args[1];
    let (s, gname) = match stream_group(ctx, key, &args[2]) {
        Ok(x) => x,
        Err(e) => return e,
    };
    // Redis allocates COUNT stream IDs up front and refuses a COUNT whose
    // allocation the kernel would not grant it.
    if (count as u64).saturating_mul(16) > crate::util::allocation_limit() && s.groups.contains_key(&gname) {
        return Reply::err("Insufficient memory, failed allocating transient memory, COUNT too high.");
    }
    let Some(mut g) = s.groups.remove(&gname) else {
        return Reply::Array(vec![]);
    };
    let consumer = &args[3];
    let had_consumer = g.consumers.contains_key(consumer);
    let mut attempts = count.saturating_mul(ATTEMPTS_FACTOR);
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    let mut cursor = start;
    let mut next: Option<StreamId> = None;
    loop {
        let Some(id) = g.pel.range(cursor..).next().map(|(k, _)| *k) else {
            next = None;
            break;
        };
        if attempts == 0 || count == 0 {
            next = Some(id);
            break;
        }
        attempts -= 1;
        cursor = match id.incr() {
            Some(c) => c,
            None => StreamId::MAX,
        };
        if !s.contains(id) {
            g.remove_pending(id);
            deleted.push(id_reply(id));
            count -= 1;
        } else {
            let idle = g.pel.get(&id).map_or(0, |n| now as i64 - n.delivery_time as i64);
            if min_idle == 0 || idle >= min_idle {
                g.touch_consumer(consumer, now);
                claim_one(&mut g, id, consumer, now, None, !justid);
                claimed.push(claimed_reply(s, id, justid));
                count -= 1;
            }
        }
        if id == StreamId::MAX {
            break;
        }
    }
    let created = !had_consumer && g.consumers.contains_key(consumer);
    s.groups.insert(gname, g);
    if created {
        ctx.changed_unsignalled(key, Some("xgroup-createconsumer"));
    }
    // A change per pending entry claimed or dropped, and one for a new consumer.
    ctx.set_dirty((claimed.len() + deleted.len()) as u64 + created as u64);
    Reply::Array(vec![id_reply(next.unwrap_or(StreamId::MIN)), Reply::Array(claimed), Reply::Array(deleted)])
}
