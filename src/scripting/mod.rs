//! Lua scripting: one sandboxed Lua 5.1 VM per shard, a global script cache.

/// A shard's scripting state: its Lua VM and the scripts compiled into it.
#[derive(Default)]
pub struct ShardScripting {}

/// The global script cache (SHA1 → source), shared by every connection.
#[derive(Default)]
pub struct ScriptCache {}

/// Runs EVAL/EVALSHA/EVAL_RO/EVALSHA_RO/FCALL/FCALL_RO and the SCRIPT and
/// FUNCTION subcommands for `conn` (called by the connection loop).
pub async fn special(
    _conn: &mut crate::net::connection::Connection,
    cmd: crate::commands::table::Command,
    _args: &[bytes::Bytes],
) -> crate::protocol::Reply {
    crate::protocol::Reply::err(format!("command '{}' is not implemented yet", cmd.spec.name))
}

/// Runs EVAL/EVALSHA/FCALL queued in a transaction, on shards EXEC has
/// already entered (all of them, since a script may touch undeclared keys).
pub fn run_in_transaction(
    _ctx: &mut crate::commands::Ctx,
    cmd: crate::commands::table::Command,
    _args: &[bytes::Bytes],
) -> crate::protocol::Reply {
    crate::protocol::Reply::err(format!("command '{}' is not implemented yet", cmd.spec.name))
}
