//! Replication commands a master with no replicas answers: ROLE, FAILOVER.
//! (REPLICAOF, SYNC/PSYNC, REPLCONF and WAIT come with replication.)

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
];

/// A master with no replicas: `master`, its replication offset, no replicas.
fn role(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Array(vec![Reply::bulk_str("master"), Reply::Int(0), Reply::Array(Vec::new())])
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
