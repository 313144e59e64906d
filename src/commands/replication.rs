//! Replication commands of a master: ROLE, FAILOVER, and the replica
//! handshake (REPLCONF, PSYNC, SYNC; see `crate::replication`).

use super::ConnCtx;
use crate::commands::spec::prelude::*;
use crate::net::listener::log;
use crate::protocol::Reply;
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;

pub static COMMANDS: &[CommandSpec] = &[
    cmd("role", 1, NOSCRIPT | LOADING | STALE | FAST, NOKEYS, G::Server, C(role))
        .doc("2.8.12", "Reports this server's replication role.")
        .acl(&["admin", "dangerous"]),
    cmd("failover", -1, ADMIN | NOSCRIPT | STALE, NOKEYS, G::Server, C(failover))
        .syntax("[TO host port%i [FORCE]] [ABORT] [TIMEOUT milliseconds%i]")
        .doc("6.2.0", "Hands the master role over to a replica."),
    cmd("replicaof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, NOKEYS, G::Server, C(replicaof))
        .syntax("(host port%i|NO ONE)")
        .doc("5.0.0", "Follows another server as its replica, or stops following (NO ONE)."),
    cmd("slaveof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, NOKEYS, G::Server, C(replicaof))
        .syntax("(host port%i|NO ONE)")
        .doc("1.0.0", "Follows another server as its replica, or stops following (NO ONE); old name of REPLICAOF."),
    cmd("replconf", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, NOKEYS, G::Server, C(replconf))
        .doc("3.0.0", "Exchanges replication settings between a replica and its master (internal)."),
    cmd("psync", -3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, NOKEYS, G::Server, C(psync))
        .syntax("replicationid offset%i")
        .doc("2.8.0", "Asks the master for its replication stream, from an offset or in full (internal)."),
    cmd("wait", 3, NOSCRIPT, NOKEYS, G::Generic, Session(Op::Wait))
        .syntax("numreplicas%i timeout%i")
        .doc("3.0.0", "Blocks until the client's earlier writes reached a number of replicas, or a timeout passes.")
        .tips(&["request_policy:all_shards", "response_policy:agg_min"])
        .acl(&["connection", "-keyspace"]),
    cmd("sync", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, NOKEYS, G::Server, C(sync))
        .doc("1.0.0", "Asks the master for its whole dataset and replication stream (internal)."),
];

/// REPLICAOF host port | REPLICAOF NO ONE.
fn replicaof(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    if ctx.server.cluster.is_some() {
        return Reply::err("REPLICAOF not allowed in cluster mode.");
    }
    if ctx.server.replicas.failing_over.load(std::sync::atomic::Ordering::Acquire) {
        return Reply::err("REPLICAOF not allowed while failing over.");
    }
    // Who asked, as Redis logs it: the client's CLIENT LIST line.
    let who = |ctx: &ConnCtx| super::connection::client_line(&ctx.client.info, crate::storage::now_ms());
    if eq_ic(&args[1], "no") && eq_ic(&args[2], "one") {
        if ctx.server.replicas.following.lock().master.is_some() {
            crate::replication::stop_following(ctx.server);
            let _ = ctx.server.config.set("replicaof", "", true);
            log(ctx.server, "notice", &format!("MASTER MODE enabled (user request from '{}')", who(ctx)));
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
    let _ = ctx.server.config.set("replicaof", &format!("{host} {port}"), true);
    crate::replication::follow_master(ctx.server, host.clone(), port);
    log(ctx.server, "notice", &format!("REPLICAOF {host}:{port} enabled (user request from '{}')", who(ctx)));
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
        } else if eq_ic(opt, "capa") {
            if eq_ic(val, "psync2") {
                ctx.server.replicas.announce_psync2(ctx.client.id());
            } else if eq_ic(val, "eof") {
                ctx.server.replicas.announce_eof(ctx.client.id());
            }
        } else if eq_ic(opt, "ip-address") {
            // (Redis's limit: NET_HOST_STR_LEN, 256 with the terminator.)
            if val.len() >= 256 {
                return Reply::err(format!(
                    "REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    val.len()
                ));
            }
            ctx.server.replicas.announce_ip(ctx.client.id(), String::from_utf8_lossy(val).into_owned());
        } else if eq_ic(opt, "rdb-only") {
            match parse_i64(val) {
                Some(v @ 0..=1) => ctx.server.replicas.request_rdb_only(ctx.client.id(), v == 1),
                Some(_) => return Reply::err("value is out of range, value must between 0 and 1"),
                None => return Reply::not_integer(),
            }
        } else if eq_ic(opt, "rdb-filter-only") {
            // Include filters; "functions" is the only one, none: an empty RDB.
            let mut functions = false;
            for filter in val.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty()) {
                if !eq_ic(filter, "functions") {
                    return Reply::err(format!(
                        "Unsupported rdb-filter-only option: {}",
                        String::from_utf8_lossy(filter)
                    ));
                }
                functions = true;
            }
            ctx.server.replicas.request_rdb_filter(ctx.client.id(), functions);
        } else {
            return Reply::err(format!("Unrecognized REPLCONF option: {}", String::from_utf8_lossy(opt)));
        }
    }
    Reply::ok()
}

/// A replica whose own master link is down cannot serve a sync.
fn sync_refused(ctx: &ConnCtx) -> Option<Reply> {
    if ctx.server.replicas.failing_over.load(std::sync::atomic::Ordering::Acquire) {
        return Some(Reply::error("NOMASTERLINK Can't SYNC while failing over"));
    }
    let f = ctx.server.replicas.following.lock();
    (f.master.is_some() && !f.link_up)
        .then(|| Reply::error("NOMASTERLINK Can't SYNC while not connected with my master"))
}

/// PSYNC replid offset: the connection turns into a replica link after
/// this batch, continuing from `offset` when the backlog allows it (see
/// `crate::replication::master`).
fn psync(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    // PSYNC replid offset FAILOVER: the master hands its role over to us.
    if args.len() > 3 && eq_ic(&args[3], "failover") {
        let info = &ctx.client.info;
        let who = format!("id={} addr={} laddr={} fd={}", info.id, info.addr, info.laddr, info.fd);
        if let Err(e) =
            crate::replication::failover::psync_failover(ctx.server, &String::from_utf8_lossy(&args[1]), &who)
        {
            return Reply::err(e);
        }
    }
    if let Some(r) = sync_refused(ctx) {
        return r;
    }
    let Some(offset) = parse_i64(&args[2]) else {
        return Reply::not_integer();
    };
    let replid = String::from_utf8_lossy(&args[1]).into_owned();
    ctx.server.replicas.request_sync(ctx.client.id(), crate::replication::SyncRequest::Psync { replid, offset });
    Reply::NoReply
}

/// SYNC: the old protocol, a full sync with no +FULLRESYNC line.
fn sync(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    if let Some(r) = sync_refused(ctx) {
        return r;
    }
    ctx.server.replicas.request_sync(ctx.client.id(), crate::replication::SyncRequest::Sync);
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
            } else if f.handshake {
                "handshake"
            } else {
                "connecting"
            };
            let applied = ctx.server.replicas.offset() as i64;
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
    let offset = ctx.server.replicas.offset() as i64;
    Reply::Array(vec![Reply::bulk_str("master"), Reply::Int(offset), Reply::Array(replicas)])
}

/// FAILOVER [TO host port] [FORCE] [TIMEOUT ms] | FAILOVER ABORT, checked
/// in Redis's order (see `crate::replication::failover`).
fn failover(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    use crate::replication::failover as fo;
    if ctx.server.cluster.is_some() {
        return Reply::err("FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command instead.");
    }
    if args.len() == 2 && eq_ic(&args[1], "abort") {
        if fo::phase(ctx.server) == fo::Phase::None {
            return Reply::err("No failover in progress.");
        }
        fo::abort(ctx.server, "Failover manually aborted");
        return Reply::ok();
    }
    let mut req = fo::Request { target: None, force: false, timeout_ms: 0 };
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "timeout") && i + 1 < args.len() && req.timeout_ms == 0 {
            match parse_i64(&args[i + 1]) {
                Some(t) if t > 0 => req.timeout_ms = t as u64,
                Some(_) => return Reply::err("FAILOVER timeout must be greater than 0"),
                None => return Reply::not_integer(),
            }
            i += 2;
        } else if eq_ic(a, "to") && i + 2 < args.len() && req.target.is_none() {
            let Some(port) = parse_i64(&args[i + 2]) else {
                return Reply::not_integer();
            };
            // A port no replica can have matches none (Redis compares longs).
            let port = u16::try_from(port).unwrap_or(0);
            req.target = Some((String::from_utf8_lossy(&args[i + 1]).into_owned(), port));
            i += 3;
        } else if eq_ic(a, "force") && !req.force {
            req.force = true;
            i += 1;
        } else {
            return Reply::syntax_error();
        }
    }
    match fo::start(ctx.server, req) {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::err(e),
    }
}
