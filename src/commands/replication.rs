//! Replication commands of a master: ROLE, FAILOVER, and the replica
//! handshake (REPLCONF, PSYNC, SYNC; see `crate::replication`).

use super::ConnCtx;
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;

pub static COMMANDS: &[CommandSpec] = &[
    cmd("role", 1, NOSCRIPT | LOADING | STALE | FAST, NOKEYS, G::Server, C(role))
        .doc("2.8.12", "Reports this server's replication role.")
        .acl(&["admin", "dangerous"]),
    cmd("failover", -1, ADMIN | NOSCRIPT | STALE, NOKEYS, G::Server, C(failover))
        .doc("6.2.0", "Hands the master role over to a replica."),
    cmd("replicaof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, NOKEYS, G::Server, C(replicaof))
        .doc("5.0.0", "Follows another server as its replica, or stops following (NO ONE)."),
    cmd("slaveof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, NOKEYS, G::Server, C(replicaof))
        .doc("1.0.0", "Follows another server as its replica, or stops following (NO ONE); old name of REPLICAOF."),
    cmd("replconf", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, NOKEYS, G::Server, C(replconf))
        .doc("3.0.0", "Exchanges replication settings between a replica and its master (internal)."),
    cmd("psync", -3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, NOKEYS, G::Server, C(psync))
        .doc("2.8.0", "Asks the master for its replication stream, from an offset or in full (internal)."),
    cmd("sync", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, NOKEYS, G::Server, C(sync))
        .doc("1.0.0", "Asks the master for its whole dataset and replication stream (internal)."),
];

/// REPLICAOF host port | REPLICAOF NO ONE.
fn replicaof(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    if eq_ic(&args[1], "no") && eq_ic(&args[2], "one") {
        if ctx.server.replicas.following.lock().master.is_some() {
            crate::replication::stop_following(ctx.server);
        }
        return Reply::ok();
    }
    let Some(port) = parse_i64(&args[2]).and_then(|p| u16::try_from(p).ok()) else {
        return Reply::err("Invalid master port");
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    if ctx.server.replicas.following.lock().master.as_ref() == Some(&(host.clone(), port)) {
        return Reply::Status("OK Already connected to specified master".into());
    }
    crate::replication::follow_master(ctx.server, host, port);
    Reply::ok()
}

/// REPLCONF option value ...: the replica's settings (listening-port is
/// kept for ROLE and INFO; the others need no answer but +OK).
fn replconf(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return Reply::syntax_error();
    }
    for pair in args[1..].chunks_exact(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if eq_ic(opt, "listening-port") {
            match parse_i64(val).and_then(|p| u16::try_from(p).ok()) {
                Some(port) => ctx.server.replicas.announce(ctx.client.id(), port),
                None => return Reply::not_integer(),
            }
        } else if eq_ic(opt, "ack") || eq_ic(opt, "getack") {
            // Only a replica link sends ACK; a master does not answer it.
            return Reply::NoReply;
        } else if !(eq_ic(opt, "capa") || eq_ic(opt, "ip-address") || eq_ic(opt, "rdb-only")) {
            return Reply::err(format!("Unrecognized REPLCONF option: {}", String::from_utf8_lossy(opt)));
        }
    }
    Reply::ok()
}

/// PSYNC replid offset: always a full resynchronization (no backlog yet);
/// the connection turns into a replica link after this batch.
fn psync(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    ctx.server.replicas.request_sync(ctx.client.id(), true);
    Reply::NoReply
}

/// SYNC: the old protocol, a full sync with no +FULLRESYNC line.
fn sync(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    ctx.server.replicas.request_sync(ctx.client.id(), false);
    Reply::NoReply
}

/// A master: `master`, its replication offset, and each online replica as
/// [ip, port, acknowledged offset].
fn role(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    {
        let f = ctx.server.replicas.following.lock();
        if let Some((host, port)) = &f.master {
            let state = if f.link_up {
                "connected"
            } else if f.sync_in_progress {
                "sync"
            } else {
                "connecting"
            };
            let applied = ctx.server.replicas.applied.load(std::sync::atomic::Ordering::Relaxed) as i64;
            return Reply::Array(vec![
                Reply::bulk_str("slave"),
                Reply::bulk_str(host),
                Reply::Int(*port as i64),
                Reply::bulk_str(state),
                Reply::Int(if f.link_up { applied } else { -1 }),
            ]);
        }
    }
    let replicas = ctx
        .server
        .replicas
        .online()
        .iter()
        .map(|l| {
            let ack = l.ack.load(std::sync::atomic::Ordering::Relaxed);
            Reply::Array(vec![
                Reply::bulk_str(&l.ip),
                Reply::bulk_str(&l.port.to_string()),
                Reply::bulk_str(&ack.to_string()),
            ])
        })
        .collect();
    let offset = ctx.server.propagation.offset() as i64;
    Reply::Array(vec![Reply::bulk_str("master"), Reply::Int(offset), Reply::Array(replicas)])
}

/// FAILOVER [TO host port] [FORCE] [TIMEOUT ms] | FAILOVER ABORT, checked
/// as Redis checks it; with no replica connected it never starts.
fn failover(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    if args.len() == 2 && eq_ic(&args[1], "abort") {
        return Reply::err("No failover in progress.");
    }
    let (mut to, mut force, mut timeout) = (false, false, false);
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "to") && i + 2 < args.len() && !to {
            if parse_i64(&args[i + 2]).is_none() {
                return Reply::not_integer();
            }
            to = true;
            i += 3;
        } else if eq_ic(a, "timeout") && i + 1 < args.len() && !timeout {
            match parse_i64(&args[i + 1]) {
                Some(t) if t > 0 => timeout = true,
                Some(_) => return Reply::err("FAILOVER timeout must be greater than 0"),
                None => return Reply::not_integer(),
            }
            i += 2;
        } else if eq_ic(a, "force") && !force {
            force = true;
            i += 1;
        } else {
            return Reply::syntax_error();
        }
    }
    Reply::err("FAILOVER requires connected replicas.")
}
