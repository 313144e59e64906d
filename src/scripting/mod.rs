//! Lua scripting: one sandboxed Lua 5.1 VM per shard, a global script cache.
//!
//! A script runs synchronously on the connection's worker thread while it
//! holds its shard's lock, so `redis.call` reaches the shard's data directly
//! and nothing else runs on that shard meanwhile. Other tasks that need the
//! shard wait asynchronously (BUSY past the threshold); SCRIPT KILL works
//! through the shard's atomics without the lock. See docs/ARCHITECTURE.md.

mod api;
pub mod cache;
mod call;
pub mod convert;
pub mod functions;
pub mod libs;
mod router;
mod vm;

pub use cache::ScriptCache;

use crate::commands::table::Command;
use crate::net::connection::Connection;
use crate::protocol::Reply;
use crate::server::Server;
use bytes::Bytes;

/// A shard's scripting state: its Lua VM (created on first use) and the
/// scripts compiled into it.
#[derive(Default)]
pub struct ShardScripting {
    vm: Option<vm::Vm>,
}

impl ShardScripting {
    /// Moves the VM out for a run (creating it if needed), so the script can
    /// borrow the shard's databases while the VM runs.
    fn take_vm(&mut self, server: &Server) -> Result<vm::Vm, Reply> {
        let limit = server.config.lua_memory_limit.load(std::sync::atomic::Ordering::Relaxed);
        let mut vm = match self.vm.take() {
            Some(vm) => vm,
            None => vm::Vm::new(limit).map_err(|e| Reply::err(format!("Failed to create a Lua VM: {e}")))?,
        };
        vm.set_memory_limit(limit);
        vm.sync_epoch(server.scripts.epoch());
        Ok(vm)
    }

    fn put_vm(&mut self, vm: vm::Vm) {
        if !vm.broken {
            self.vm = Some(vm);
        }
    }

    /// Number of scripts compiled into this shard's VM (tests, INFO).
    pub fn compiled_scripts(&self) -> usize {
        self.vm.as_ref().map_or(0, |v| v.compiled_count())
    }
}

/// Runs EVAL/EVALSHA/EVAL_RO/EVALSHA_RO/FCALL/FCALL_RO and the SCRIPT and
/// FUNCTION subcommands for `conn` (called by the connection loop).
pub async fn special(conn: &mut Connection, cmd: Command, args: &[Bytes]) -> Reply {
    match cmd.spec.name {
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => router::eval(conn, cmd, args).await,
        "fcall" | "fcall_ro" => functions::fcall(conn, cmd, args).await,
        name if name.starts_with("script|") => router::script(conn, &name[7..], args),
        name if name.starts_with("function|") => functions::command(conn, &name[9..], args),
        _ => Reply::err(format!("command '{}' is not implemented yet", cmd.spec.name)),
    }
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
