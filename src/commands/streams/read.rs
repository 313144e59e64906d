//! XREAD and XREADGROUP. Both run through `commands::blocking` (they are
//! blocking commands in the table): `parse` checks the options, `attempt`
//! serves what is there under the locks of every stream's shard.

use super::{entries_reply, entry_reply, estimate_entries_read, has_tombstones_after, id_reply, int_arg};
use crate::commands::Ctx;
use crate::protocol::Reply;
use crate::storage::stream::{parse_id, Nack, StreamId};
use crate::storage::Stream;
use crate::util::eq_ic;
use bytes::Bytes;
use std::time::Duration;

/// How an ID argument reads before it is resolved against the stream.
#[derive(Clone, Copy, Debug)]
enum Pos {
    /// `>`: the group's undelivered entries.
    New,
    After(StreamId),
}

#[derive(Debug)]
pub struct ReadReq {
    /// (group, consumer) for XREADGROUP.
    group: Option<(Bytes, Bytes)>,
    noack: bool,
    /// 0: no limit.
    count: usize,
    /// Present when BLOCK was given; None inside means forever.
    pub block: Option<Option<Duration>>,
    pub keys: Vec<Bytes>,
    id_args: Vec<Bytes>,
    /// IDs resolved by the first attempt (`$` fixed to the last ID then).
    resolved: Vec<Pos>,
}

/// The ID arguments' keys: after the first STREAMS (searched from `from`),
/// half of what follows.
fn keys_after_streams(args: &[Bytes], from: usize) -> Vec<usize> {
    let Some(at) = args.iter().skip(from).position(|a| eq_ic(a, "streams")).map(|p| p + from) else {
        return Vec::new();
    };
    let n = (args.len() - at - 1) / 2;
    (at + 1..at + 1 + n).collect()
}

/// XREAD's arguments with each `$` replaced by its stream's last ID now
/// (0-0 for a missing stream): a blocked XREAD waits for entries after the
/// IDs it saw when it blocked, whatever its retries see. None when there is
/// no `$` to fix.
pub fn pin_ids(ctx: &mut Ctx, args: &[Bytes]) -> Option<Vec<Bytes>> {
    let keys = xread_keys(args);
    let n = keys.len();
    let first = *keys.first()?;
    let mut out = None;
    for (i, &k) in keys.iter().enumerate() {
        let at = first + n + i;
        if args.get(at).is_some_and(|a| &a[..] == b"$") {
            let last = match stream_of(ctx, &args[k], false) {
                Ok(Some(s)) => s.last_id,
                _ => StreamId::MIN,
            };
            out.get_or_insert_with(|| args.to_vec())[at] = Bytes::from(last.to_string());
        }
    }
    out
}

pub fn xread_keys(args: &[Bytes]) -> Vec<usize> {
    keys_after_streams(args, 1)
}

pub fn xreadgroup_keys(args: &[Bytes]) -> Vec<usize> {
    keys_after_streams(args, 4)
}

/// Parses the options in Redis's order of checks. `in_script`: BLOCK is an
/// error there, as in Redis.
pub fn parse(args: &[Bytes], in_script: bool) -> Result<ReadReq, Reply> {
    let group_cmd = args[0].len() == 10;
    let name = String::from_utf8_lossy(&args[0]).into_owned();
    let mut req =
        ReadReq { group: None, noack: false, count: 0, block: None, keys: vec![], id_args: vec![], resolved: vec![] };
    let mut streams_at = 0;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i];
        if eq_ic(o, "block") && more > 0 {
            if in_script {
                return Err(Reply::err(format!("{name} command is not allowed with BLOCK option from scripts")));
            }
            i += 1;
            let ms = crate::util::parse_i64(&args[i])
                .ok_or_else(|| Reply::err(crate::protocol::errors::TIMEOUT_NOT_INTEGER))?;
            if ms < 0 {
                return Err(Reply::err(crate::protocol::errors::TIMEOUT_NEGATIVE));
            }
            req.block = Some((ms > 0).then(|| Duration::from_millis(ms as u64)));
        } else if eq_ic(o, "count") && more > 0 {
            i += 1;
            req.count = usize::try_from(int_arg(&args[i])?.max(0)).unwrap_or(usize::MAX);
        } else if eq_ic(o, "streams") && more > 0 {
            streams_at = i + 1;
            let n = args.len() - streams_at;
            if !n.is_multiple_of(2) {
                // Redis 7.0 names XREAD and '$' for XREADGROUP too.
                return Err(Reply::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            req.keys = args[streams_at..streams_at + n / 2].to_vec();
            req.id_args = args[streams_at + n / 2..].to_vec();
            break;
        } else if eq_ic(o, "group") && more >= 2 {
            if !group_cmd {
                return Err(Reply::err("The GROUP option is only supported by XREADGROUP. You called XREAD instead."));
            }
            req.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if eq_ic(o, "noack") {
            if !group_cmd {
                return Err(Reply::err("The NOACK option is only supported by XREADGROUP. You called XREAD instead."));
            }
            req.noack = true;
        } else {
            return Err(Reply::syntax_error());
        }
        i += 1;
    }
    if streams_at == 0 {
        return Err(Reply::syntax_error());
    }
    if group_cmd && req.group.is_none() {
        return Err(Reply::err("Missing GROUP option for XREADGROUP"));
    }
    Ok(req)
}

/// The stream under `key`; `counted` makes it a read lookup (a keyspace hit
/// or miss): Redis looks each key up twice in a first try (resolving the
/// IDs, then serving), and not at all through its read path when it serves
/// a blocked client.
fn stream_of<'d>(ctx: &'d mut Ctx, key: &[u8], counted: bool) -> Result<Option<&'d mut Stream>, Reply> {
    if counted {
        return super::stream_read(ctx, key);
    }
    let now = ctx.now;
    super::stream_mut(ctx.db(key), key, now)
}

/// Resolves the IDs against the streams, checking types and groups in
/// Redis's order (per stream: type, group, then the ID).
fn resolve(ctx: &mut Ctx, req: &ReadReq) -> Result<Vec<Pos>, Reply> {
    let mut out = Vec::with_capacity(req.keys.len());
    for (key, arg) in req.keys.iter().zip(&req.id_args) {
        let s = stream_of(ctx, key, true)?;
        if let Some((g, _)) = &req.group {
            if !s.as_ref().is_some_and(|s| s.groups.contains_key(g)) {
                return Err(Reply::error_concat(&[
                    b"NOGROUP No such key '",
                    crate::protocol::c_str(key),
                    b"' or consumer group '",
                    crate::protocol::c_str(g),
                    b"' in XREADGROUP with GROUP option",
                ]));
            }
        }
        let pos = match &arg[..] {
            b"$" if req.group.is_some() => {
                return Err(Reply::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                ))
            }
            b"$" => Pos::After(s.map_or(StreamId::MIN, |s| s.last_id)),
            b">" if req.group.is_none() => {
                return Err(Reply::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ))
            }
            b">" => Pos::New,
            a => match parse_id(a, 0, true, false) {
                // The greatest ID is how Redis marks `>`: it reads the same.
                Some(p) if p.id == StreamId::MAX && req.group.is_some() => Pos::New,
                Some(p) => Pos::After(p.id),
                None => return Err(super::invalid_id()),
            },
        };
        out.push(pos);
    }
    Ok(out)
}

/// One try: the reply when something was served (or an error), None when
/// the caller should block. A retry (after a wake-up) skips keys that are no
/// longer streams instead of failing, as a blocked Redis client does.
pub fn attempt(ctx: &mut Ctx, req: &mut ReadReq, retry: bool) -> Option<Reply> {
    // A caller holding only some shards (a script on its own shard) must not
    // reach a stream elsewhere.
    for key in &req.keys {
        let owner = ctx.server.shards.for_key(key);
        if !ctx.shards().iter().any(|s| s.id == owner) {
            return Some(Reply::err(crate::protocol::errors::NON_LOCAL_KEY));
        }
    }
    if !retry {
        match resolve(ctx, req) {
            Ok(r) => req.resolved = r,
            Err(e) => return Some(e),
        }
    } else {
        // A retry's IDs were fixed when the client blocked (`pin_ids`): no
        // type or group checks now, a blocked client skips such keys.
        req.resolved = req
            .id_args
            .iter()
            .map(|a| match parse_id(a, 0, true, false) {
                Some(p) if !(p.id == StreamId::MAX && req.group.is_some()) => Pos::After(p.id),
                _ => Pos::New,
            })
            .collect();
    }
    let mut served: Vec<(Bytes, Reply)> = Vec::new();
    let mut created_in: Vec<Bytes> = Vec::new();
    for i in 0..req.keys.len() {
        let key = req.keys[i].clone();
        let pos = req.resolved.get(i).copied().unwrap_or(Pos::New);
        let now = ctx.now;
        let s = match stream_of(ctx, &key, !retry) {
            Ok(Some(s)) => s,
            Ok(None) | Err(_) if retry && req.group.is_some() => {
                return Some(Reply::error("UNBLOCKED the stream key no longer exists"));
            }
            _ => continue,
        };
        let r = match &req.group {
            None => read_plain(s, pos, req.count),
            Some((g, c)) => {
                if !s.groups.contains_key(g) {
                    return Some(Reply::error(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    ));
                }
                let known = s.groups.get(g).is_some_and(|grp| grp.consumers.contains_key(c));
                let r = read_group(s, g, c, pos, req.count, req.noack, now);
                if !known && s.groups.get(g).is_some_and(|grp| grp.consumers.contains_key(c)) {
                    created_in.push(key.clone());
                }
                r
            }
        };
        if let Some(r) = r {
            served.push((key, r));
        }
    }
    if served.is_empty() {
        return None;
    }
    if req.group.is_some() {
        // Reading changes only the group: Redis 7.0 notifies the consumers it
        // makes, nothing else, and leaves WATCH and tracking alone.
        for key in &created_in {
            ctx.changed_unsignalled(key, Some("xgroup-createconsumer"));
        }
        // A change per stream served and per consumer created, as Redis counts.
        ctx.set_dirty((served.len() + created_in.len()) as u64);
    }
    Some(if ctx.resp >= 3 {
        Reply::Map(served.into_iter().map(|(k, v)| (Reply::Bulk(k), v)).collect())
    } else {
        Reply::Array(served.into_iter().map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), v])).collect())
    })
}

fn read_plain(s: &Stream, pos: Pos, count: usize) -> Option<Reply> {
    let Pos::After(gt) = pos else {
        return None;
    };
    let top = s.edge_id(true)?;
    if top <= gt {
        return None;
    }
    let start = gt.incr()?;
    Some(entries_reply(s.range(start, StreamId::MAX, false, count)))
}

fn read_group(s: &mut Stream, g: &Bytes, c: &Bytes, pos: Pos, count: usize, noack: bool, now: u64) -> Option<Reply> {
    let mut group = s.groups.remove(g)?;
    // The consumer comes into being (and is seen) only when it is served.
    let r = match pos {
        Pos::After(gt) => {
            group.touch_consumer(c, now);
            Some(history(s, &mut group, c, gt, count, now))
        }
        Pos::New => {
            let top = s.edge_id(true);
            match top {
                Some(top) if top > group.last_id => {
                    group.touch_consumer(c, now);
                    let start = group.last_id.incr().unwrap_or(StreamId::MAX);
                    let entries = s.range(start, StreamId::MAX, false, count);
                    for (id, _) in &entries {
                        deliver(s, &mut group, c, *id, noack, now);
                    }
                    Some(entries_reply(entries))
                }
                _ => None,
            }
        }
    };
    s.groups.insert(g.clone(), group);
    r
}

/// Records the delivery of `id` to consumer `c`: the group's position, and
/// the pending entry unless NOACK.
fn deliver(s: &Stream, g: &mut crate::storage::stream::Group, c: &Bytes, id: StreamId, noack: bool, now: u64) {
    if id > g.last_id {
        if g.entries_read.is_some() && !has_tombstones_after(s, id) {
            g.entries_read = g.entries_read.map(|n| n + 1);
        } else if s.entries_added > 0 {
            g.entries_read = estimate_entries_read(s, id);
        }
        g.last_id = id;
    }
    if noack {
        return;
    }
    match g.pel.get_mut(&id) {
        Some(n) => {
            n.delivery_time = now;
            n.delivery_count = 1;
            g.transfer(id, c);
        }
        None => {
            g.pel.insert(id, Nack { delivery_time: now, delivery_count: 1, consumer: c.clone() });
            if let Some(cons) = g.consumers.get_mut(c) {
                cons.pel.insert(id);
            }
        }
    }
}

/// The consumer's pending entries after `gt`; deleted ones come back with
/// no fields.
fn history(
    s: &Stream,
    g: &mut crate::storage::stream::Group,
    c: &Bytes,
    gt: StreamId,
    count: usize,
    now: u64,
) -> Reply {
    let Some(start) = gt.incr() else {
        return Reply::Array(vec![]);
    };
    let ids: Vec<StreamId> = match g.consumers.get(c) {
        Some(cons) => cons.pel.range(start..).take(if count == 0 { usize::MAX } else { count }).copied().collect(),
        None => vec![],
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match s.get(id) {
            Some(fields) => {
                if let Some(n) = g.pel.get_mut(&id) {
                    n.delivery_time = now;
                    n.delivery_count += 1;
                }
                out.push(entry_reply((id, fields)));
            }
            None => out.push(Reply::Array(vec![id_reply(id), Reply::NilArray])),
        }
    }
    Reply::Array(out)
}
