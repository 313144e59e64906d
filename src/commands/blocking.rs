//! Blocking commands (BLPOP, BRPOP, BLMOVE, BLMPOP, BZPOPMIN, BZPOPMAX, ...):
//! the per-shard waiter queues and the connection-side wait.

use crate::commands::table::Command;
use crate::net::connection::Connection;
use crate::protocol::Reply;
use bytes::Bytes;

/// A shard's queues of clients blocked on its keys.
#[derive(Default)]
pub struct Waiters {}

/// Runs a blocking command for `conn` (called by the connection loop).
pub async fn special(_conn: &mut Connection, cmd: Command, _args: &[Bytes]) -> Reply {
    Reply::err(format!(
        "command '{}' is not implemented yet",
        cmd.spec.name
    ))
}
