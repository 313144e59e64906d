//! SLOWLOG GET | LEN | RESET | HELP, over `stats::slowlog`.

use crate::commands::spec::prelude::*;
use crate::commands::ConnCtx;
use crate::protocol::Reply;
use bytes::Bytes;

// ------------------------------------------------------------ declarations

pub static SLOWLOG_SUBS: &[CommandSpec] = &[
    cmd("slowlog|get", -2, ADMIN | LOADING | STALE, NOKEYS, G::Server, C(slowlog_get))
        .syntax("[count%i]")
        .doc("2.2.12", "Returns the newest entries of the slow log.")
        .tips(&["request_policy:all_nodes", "nondeterministic_output"]),
    cmd("slowlog|len", 2, ADMIN | LOADING | STALE, NOKEYS, G::Server, C(slowlog_len))
        .doc("2.2.12", "Counts the entries in the slow log.")
        .tips(&["request_policy:all_nodes", "response_policy:agg_sum", "nondeterministic_output"]),
    cmd("slowlog|reset", 2, ADMIN | LOADING | STALE, NOKEYS, G::Server, C(slowlog_reset))
        .doc("2.2.12", "Empties the slow log.")
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd("slowlog|help", 2, LOADING | STALE, NOKEYS, G::Server, C(slowlog_help))
        .doc("6.2.0", "Lists the SLOWLOG subcommands."),
];

// ---------------------------------------------------------------- handlers

fn slowlog_get(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let log = &ctx.server.observers.slowlog;
    if args.len() > 3 {
        return Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(&args[1])
        ));
    }
    let count = match args.get(2) {
        None => 10,
        Some(a) => match crate::util::parse_i64(a) {
            Some(-1) => usize::MAX,
            Some(n) if n >= 0 => n as usize,
            _ => return Reply::err("count should be greater than or equal to -1"),
        },
    };
    Reply::Array(log.latest(count, |e| {
        Reply::Array(vec![
            Reply::Int(e.id as i64),
            Reply::Int(e.time as i64),
            Reply::Int(e.usec as i64),
            Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
            Reply::bulk(e.addr.clone()),
            Reply::Bulk(e.name.clone()),
        ])
    }))
}

fn slowlog_len(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Int(ctx.server.observers.slowlog.len() as i64)
}

fn slowlog_reset(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    ctx.server.observers.slowlog.reset();
    Reply::ok()
}

fn slowlog_help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("SLOWLOG", crate::commands::help::SLOWLOG)
}
