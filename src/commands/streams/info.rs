//! XINFO STREAM [FULL [COUNT n]] | GROUPS | CONSUMERS | HELP.

use super::{entries_reply, entry_reply, group_lag, id_reply, int_arg, sub_syntax_error};
use crate::commands::{ConnCtx, Ctx};
use crate::protocol::Reply;
use crate::storage::stream::{Group, StreamId};
use crate::storage::Stream;
use crate::util::eq_ic;
use bytes::Bytes;

fn field(name: &'static str, v: Reply) -> (Reply, Reply) {
    (Reply::Bulk(Bytes::from_static(name.as_bytes())), v)
}

fn opt_int(v: Option<i64>) -> Reply {
    v.map_or(Reply::Nil, Reply::Int)
}

pub fn xinfo_help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("XINFO", crate::commands::help::XINFO)
}

pub fn xinfo(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[2];
    let s = match super::stream_read(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::err(crate::protocol::errors::NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    let sub = &args[1];
    if eq_ic(sub, "consumers") && args.len() == 4 {
        let Some(g) = s.groups.get(&args[3]) else {
            return super::group::nogroup_for_key(&args[3], key);
        };
        let now = crate::storage::now_ms();
        let list = g
            .consumers
            .iter()
            .map(|(name, c)| {
                Reply::Map(vec![
                    field("name", Reply::Bulk(name.clone())),
                    field("pending", Reply::Int(c.pel.len() as i64)),
                    field("idle", Reply::Int((now as i64 - c.seen_time as i64).max(0))),
                ])
            })
            .collect();
        Reply::Array(list)
    } else if eq_ic(sub, "groups") && args.len() == 3 {
        Reply::Array(s.groups.iter().map(|(name, g)| group_summary(s, name, g)).collect())
    } else if eq_ic(sub, "stream") {
        stream_info(s, args)
    } else {
        sub_syntax_error(args)
    }
}

fn group_summary(s: &Stream, name: &Bytes, g: &Group) -> Reply {
    Reply::Map(vec![
        field("name", Reply::Bulk(name.clone())),
        field("consumers", Reply::Int(g.consumers.len() as i64)),
        field("pending", Reply::Int(g.pel.len() as i64)),
        field("last-delivered-id", id_reply(g.last_id)),
        field("entries-read", opt_int(g.entries_read.map(|n| n as i64))),
        field("lag", opt_int(group_lag(s, g.last_id, g.entries_read))),
    ])
}

/// Internal nodes Redis's radix tree would have for the node keys: a
/// rough stand-in (the layout differs), shown for tools that read it.
fn tree_nodes(s: &Stream) -> i64 {
    if s.node_count() == 0 {
        1
    } else {
        s.node_count() as i64 + 1
    }
}

fn stream_info(s: &Stream, args: &[Bytes]) -> Reply {
    let argc = args.len();
    let full = match argc {
        3 => false,
        4 | 6 if eq_ic(&args[3], "full") => true,
        _ => return sub_syntax_error(args),
    };
    let mut count: i64 = 10;
    if argc == 6 {
        if !eq_ic(&args[4], "count") {
            return sub_syntax_error(args);
        }
        count = match int_arg(&args[5]) {
            Ok(n) => n.max(0),
            Err(e) => return e,
        };
    }
    let mut m = vec![
        field("length", Reply::Int(s.len() as i64)),
        field("radix-tree-keys", Reply::Int(s.node_count() as i64)),
        field("radix-tree-nodes", Reply::Int(tree_nodes(s))),
        field("last-generated-id", id_reply(s.last_id)),
        field("max-deleted-entry-id", id_reply(s.max_deleted_id)),
        field("entries-added", Reply::Int(s.entries_added as i64)),
        field("recorded-first-entry-id", id_reply(s.first_id)),
    ];
    if !full {
        m.push(field("groups", Reply::Int(s.groups.len() as i64)));
        let edge = |last: bool| s.range(StreamId::MIN, StreamId::MAX, last, 1).pop().map_or(Reply::Nil, entry_reply);
        m.push(field("first-entry", edge(false)));
        m.push(field("last-entry", edge(true)));
        return Reply::Map(m);
    }
    let limit = usize::try_from(count).unwrap_or(usize::MAX);
    m.push(field("entries", entries_reply(s.range(StreamId::MIN, StreamId::MAX, false, limit))));
    let groups = s.groups.iter().map(|(name, g)| group_full(s, name, g, limit)).collect();
    m.push(field("groups", Reply::Array(groups)));
    Reply::Map(m)
}

fn take(limit: usize) -> usize {
    if limit == 0 {
        usize::MAX
    } else {
        limit
    }
}

fn group_full(s: &Stream, name: &Bytes, g: &Group, limit: usize) -> Reply {
    let pending = g
        .pel
        .iter()
        .take(take(limit))
        .map(|(id, n)| {
            Reply::Array(vec![
                id_reply(*id),
                Reply::Bulk(n.consumer.clone()),
                Reply::Int(n.delivery_time as i64),
                Reply::Int(n.delivery_count as i64),
            ])
        })
        .collect();
    let consumers = g
        .consumers
        .iter()
        .map(|(cname, c)| {
            let pel = c
                .pel
                .iter()
                .take(take(limit))
                .filter_map(|id| g.pel.get(id).map(|n| (id, n)))
                .map(|(id, n)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::Int(n.delivery_time as i64),
                        Reply::Int(n.delivery_count as i64),
                    ])
                })
                .collect();
            Reply::Map(vec![
                field("name", Reply::Bulk(cname.clone())),
                field("seen-time", Reply::Int(c.seen_time as i64)),
                field("pel-count", Reply::Int(c.pel.len() as i64)),
                field("pending", Reply::Array(pel)),
            ])
        })
        .collect();
    Reply::Map(vec![
        field("name", Reply::Bulk(name.clone())),
        field("last-delivered-id", id_reply(g.last_id)),
        field("entries-read", opt_int(g.entries_read.map(|n| n as i64))),
        field("lag", opt_int(group_lag(s, g.last_id, g.entries_read))),
        field("pel-count", Reply::Int(g.pel.len() as i64)),
        field("pending", Reply::Array(pending)),
        field("consumers", Reply::Array(consumers)),
    ])
}
