//! Lua scripting: one sandboxed Lua 5.1 VM per shard, a global script cache.
//!
//! A script runs synchronously on the connection's worker thread while it
//! holds its shard's lock, so `redis.call` reaches the shard's data directly
//! and nothing else runs on that shard meanwhile. Other tasks that need the
//! shard wait asynchronously (BUSY past the threshold); SCRIPT KILL works
//! through the shard's atomics without the lock. See docs/ARCHITECTURE.md.

mod api;
mod bytecode;
pub mod cache;
mod call;
pub mod commands;
pub mod convert;
pub mod functions;
pub mod ldb;
pub mod libs;
pub mod router;
mod undo;
mod views;
mod vm;

pub use cache::ScriptCache;
pub use call::NOREPLICAS;

use crate::commands::registry::Command;
use crate::net::client::ClientState;
use crate::protocol::Reply;
use crate::server::Server;
use crate::shard::ShardData;
use bytes::Bytes;
use std::sync::Arc;

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

    /// Bytes this shard's Lua VM uses (0 before its first script).
    pub fn vm_memory(&self) -> usize {
        self.vm.as_ref().map_or(0, |v| v.lua.used_memory())
    }

    /// Number of scripts compiled into this shard's VM (tests, INFO).
    pub fn compiled_scripts(&self) -> usize {
        self.vm.as_ref().map_or(0, |v| v.compiled_count())
    }

    /// Bytes the Lua VM in a shard's slot uses (0 before its first script).
    pub fn vm_memory_of(slot: &crate::shard::ScriptSlot) -> usize {
        slot.0.as_ref().and_then(|b| b.downcast_ref::<ShardScripting>()).map_or(0, |s| s.vm_memory())
    }

    /// The scripting state a shard keeps in its slot (created on first use).
    pub fn of(slot: &mut crate::shard::ScriptSlot) -> &mut ShardScripting {
        if !matches!(&slot.0, Some(b) if b.is::<ShardScripting>()) {
            slot.0 = Some(Box::<ShardScripting>::default());
        }
        match slot.0.as_mut().and_then(|b| b.downcast_mut::<ShardScripting>()) {
            Some(s) => s,
            None => unreachable!("the slot was just filled with ShardScripting"),
        }
    }
}

/// The shards EXEC must enter for a queued scripting command (see
/// `router::shards_for_queued`).
pub fn shards_for_queued(server: &Server, cmd: Command, args: &[Bytes]) -> Vec<usize> {
    if router::is_runner(cmd) {
        router::shards_for_queued(server, cmd, args)
    } else {
        Vec::new()
    }
}

/// Whether a queued scripting command counts as `denyoom` for EXEC's memory
/// check, as Redis derives it: a script or function that declared flags and
/// may write without `allow-oom`, and FUNCTION LOAD/RESTORE.
pub fn denyoom_queued(server: &Server, cmd: Command, args: &[Bytes]) -> bool {
    match script_flags(server, cmd, args) {
        Some(flags) => !flags.compat && !flags.allow_oom && !flags.no_writes,
        None => cmd.spec.has(crate::commands::registry::flags::DENYOOM),
    }
}

/// Whether an EVAL*/FCALL* may write, as CLIENT PAUSE WRITE judges it: not
/// the _RO forms, not scripts or functions flagged `no-writes`, not an
/// unknown script (it fails without running).
pub fn may_write(server: &Server, cmd: Command, args: &[Bytes]) -> bool {
    if cmd.spec.name.ends_with("_ro") {
        return false;
    }
    script_flags(server, cmd, args).is_some_and(|f| f.compat || !f.no_writes)
}

/// The flags of the script or function an EVAL*/FCALL* would run, when known.
fn script_flags(server: &Server, cmd: Command, args: &[Bytes]) -> Option<cache::Flags> {
    Some(match cmd.spec.name {
        "eval" | "eval_ro" => match server.scripts.get(&cache::sha1_hex(&args[1])) {
            Some(s) => s.flags,
            None => cache::parse_shebang(&args[1]).unwrap_or(cache::Flags::COMPAT),
        },
        "evalsha" | "evalsha_ro" => cache::sha_arg(&args[1]).and_then(|s| server.scripts.get(&s))?.flags,
        "fcall" | "fcall_ro" => functions::flags_of(server, &args[1])?,
        _ => return None,
    })
}

/// Whether Redis counts the command as a write when it checks
/// `min-replicas-to-write`: a script or function that declared flags
/// without `no-writes` does; otherwise the command's own flag decides.
pub fn writes(server: &Server, cmd: Command, args: &[Bytes]) -> bool {
    match script_flags(server, cmd, args) {
        Some(f) => !f.compat && !f.no_writes,
        None => cmd.spec.is_write(),
    }
}

/// Whether dispatch leaves the error statistics of `cmd`'s reply to
/// `settle`: EVAL*/FCALL*, whose replies may hold errors counted while the
/// script ran, or flagged as counted already (`ignore_error_stats_update`).
pub fn settles_errors(cmd: Command) -> bool {
    matches!(
        cmd.spec.exec,
        crate::commands::spec::Exec::Session(
            crate::commands::spec::SessionOp::Eval | crate::commands::spec::SessionOp::Fcall
        )
    )
}

/// Counts the errors of a scripting command's reply as Redis does: when the
/// script's reply was built (`failed_calls` is Some), its errors are counted
/// already and it adds that many `failed_calls`; otherwise an error reply
/// (a refusal before the script ran, a compile error) counts once.
pub fn settle(server: &Server, cmd: Command, reply: &Reply, failed_calls: Option<u32>) {
    let failed = match failed_calls {
        Some(n) => n,
        None => match reply.error_text() {
            Some(text) => {
                server.stats.count_error(text);
                1
            }
            None => 0,
        },
    };
    if failed > 0 {
        server.stats.commands[cmd.id].failed.fetch_add(u64::from(failed), std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs a scripting command queued in a transaction, during EXEC. `refs`
/// are the shards EXEC entered (at least those `shards_for_queued` named):
/// nothing here locks or waits. `home` is where a keyless script starts.
pub fn run_in_transaction(
    server: &Arc<Server>,
    client: &ClientState,
    home: usize,
    refs: &mut [&mut ShardData],
    cmd: Command,
    args: &[Bytes],
) -> Reply {
    match cmd.spec.name {
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => {
            let (reply, failed_calls) = match router::prepare_eval(server, cmd, args) {
                Ok(e) => {
                    let req = e.request(true);
                    (router::run_entered(server, client, home, refs, &req), req.failed_calls())
                }
                Err(r) => (r, None),
            };
            settle(server, cmd, &reply, failed_calls);
            reply
        }
        "fcall" | "fcall_ro" => {
            let (reply, failed_calls) = match functions::prepare(server, cmd, args) {
                Ok(p) => {
                    let req = p.request(true);
                    let reply = functions::tracking(server, home, args, &p.fref.name, || {
                        router::run_entered(server, client, home, refs, &req)
                    });
                    (reply, req.failed_calls())
                }
                Err(r) => (r, None),
            };
            settle(server, cmd, &reply, failed_calls);
            reply
        }
        name if name.starts_with("script|") => router::script(server, &name[7..], args),
        name if name.starts_with("function|") => functions::command(server, &name[9..], args),
        _ => Reply::err(format!("command '{}' cannot run inside a transaction", cmd.spec.name)),
    }
}
