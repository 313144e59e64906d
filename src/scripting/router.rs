//! Where a script runs (scripting.md's slot rules) and the SCRIPT command.

use super::cache::{self, Flags, Script};
use super::call::{Abort, Run};
use super::vm::Vm;
use crate::commands::table::Command;
use crate::net::client::ClientState;
use crate::net::connection::Connection;
use crate::protocol::Reply;
use crate::server::Server;
use crate::shard::{slot, Shard, ShardData};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Splits `cmd script numkeys key... arg...` into keys and args.
pub fn split_keys(args: &[Bytes]) -> Result<(&[Bytes], &[Bytes]), Reply> {
    let Some(n) = crate::util::parse_i64(&args[2]) else {
        return Err(Reply::not_integer());
    };
    if n < 0 {
        return Err(Reply::err("Number of keys can't be negative"));
    }
    let rest = &args[3..];
    if n as u64 > rest.len() as u64 {
        return Err(Reply::err("Number of keys can't be greater than number of args"));
    }
    Ok(rest.split_at(n as usize))
}

/// The shard declared keys put a script on (None: no keys, start anywhere)
/// and the slot undeclared keys must match.
pub fn route(server: &Server, keys: &[Bytes], flags: &Flags) -> Result<Option<(usize, Option<u16>)>, Reply> {
    let Some((first, rest)) = keys.split_first() else {
        return Ok(None);
    };
    let n = server.shards.len();
    let first_slot = slot::key_slot(first);
    let shard = slot::slot_shard(first_slot, n);
    let mut one_slot = true;
    for k in rest {
        let s = slot::key_slot(k);
        if s != first_slot {
            one_slot = false;
            if !flags.allow_cross_slot || slot::slot_shard(s, n) != shard {
                return Err(Reply::crossslot());
            }
        }
    }
    Ok(Some((shard, one_slot.then_some(first_slot))))
}

/// What to run once on the shard.
pub enum Job<'a> {
    Script(&'a Arc<Script>, bool),
    Function(&'a super::functions::FunctionRef),
}

pub struct Request<'a> {
    pub job: Job<'a>,
    pub keys: &'a [Bytes],
    pub argv: &'a [Bytes],
    pub flags: Flags,
    pub read_only: bool,
}

pub async fn eval(conn: &mut Connection, cmd: Command, args: &[Bytes]) -> Reply {
    let by_sha = cmd.spec.name.starts_with("evalsha");
    let ro = cmd.spec.name.ends_with("_ro");
    let (keys, argv) = match split_keys(args) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let server = conn.server.clone();
    let (script, cached) = if by_sha {
        match cache::sha_arg(&args[1]).and_then(|s| server.scripts.get(&s)) {
            Some(s) => (s, true),
            None => return Reply::error("NOSCRIPT No matching script. Please use EVAL."),
        }
    } else {
        let sha = cache::sha1_hex(&args[1]);
        match server.scripts.get(&sha) {
            Some(s) => (s, true),
            None => match cache::parse_shebang(&args[1]) {
                Ok(flags) => (Arc::new(Script { sha, source: args[1].clone(), flags }), false),
                Err(e) => return Reply::err(e),
            },
        }
    };
    let flags = script.flags;
    if ro && !flags.compat && !flags.no_writes {
        return Reply::err("Can not execute a script with write flag using *_ro command.");
    }
    let req = Request { job: Job::Script(&script, cached), keys, argv, flags, read_only: ro || flags.no_writes };
    run_routed(conn, &req).await
}

/// Runs `req` on the shard its keys pick, restarting a keyless script once
/// on the shard of the first key it touches.
pub async fn run_routed(conn: &mut Connection, req: &Request<'_>) -> Reply {
    let server = conn.server.clone();
    let (mut shard_id, slot) = match route(&server, req.keys, &req.flags) {
        Ok(Some((shard, slot))) => (shard, slot),
        Ok(None) => (conn.home_shard(), None),
        Err(r) => return r,
    };
    let unbound = req.keys.is_empty();
    let mut may_redirect = unbound;
    loop {
        let shard = server.shards.get(shard_id);
        let mut guard = match shard.lock(server.busy_threshold(), false).await {
            Ok(g) => g,
            Err(busy) => return busy.reply(),
        };
        let start = Start { slot, unbound, may_redirect };
        let (reply, redirect) = run_on_shard(&server, shard, &mut guard, &conn.client, req, start);
        drop(guard);
        match redirect {
            Some(to) if may_redirect => {
                shard_id = to;
                may_redirect = false;
            }
            _ => return reply,
        }
    }
}

pub struct Start {
    pub slot: Option<u16>,
    pub unbound: bool,
    pub may_redirect: bool,
}

/// Marks the shard busy with a script for as long as it lives.
struct Busy<'a>(&'a Shard);

impl<'a> Busy<'a> {
    fn new(shard: &'a Shard, function: bool) -> Busy<'a> {
        shard.script_kill.store(false, Ordering::SeqCst);
        shard.script_wrote.store(false, Ordering::SeqCst);
        shard.script_is_function.store(function, Ordering::SeqCst);
        shard.script_since.store(crate::storage::now_ms().max(1), Ordering::Release);
        Busy(shard)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.script_since.store(0, Ordering::Release);
        self.0.script_kill.store(false, Ordering::SeqCst);
        self.0.script_done.notify_waiters();
    }
}

/// Runs the request with the shard entered. Returns the reply, or the shard
/// to restart on.
fn run_on_shard(
    server: &Arc<Server>,
    shard: &Shard,
    data: &mut ShardData,
    client: &ClientState,
    req: &Request<'_>,
    start: Start,
) -> (Reply, Option<usize>) {
    let mut vm = match data.scripting.take_vm(server) {
        Ok(vm) => vm,
        Err(r) => return (r, None),
    };
    let (reply, redirect) = run_with_vm(server, shard, data as *mut ShardData, &mut vm, client, req, start);
    data.scripting.put_vm(vm);
    (reply, redirect)
}

fn run_with_vm(
    server: &Arc<Server>,
    shard: &Shard,
    data: *mut ShardData,
    vm: &mut Vm,
    client: &ClientState,
    req: &Request<'_>,
    start: Start,
) -> (Reply, Option<usize>) {
    let mut run = Run {
        server,
        shard,
        data,
        client: ClientState {
            info: client.info.clone(),
            db: client.db,
            resp: client.resp,
            authenticated: true,
            close_after_reply: false,
            reply_mode: Default::default(),
        },
        db: client.db,
        resp: 2,
        now: crate::storage::now_ms(),
        read_only: req.read_only,
        flags: req.flags,
        slot: start.slot,
        unbound: start.unbound,
        may_redirect: start.may_redirect,
        wrote: false,
        abort: None,
        started: Instant::now(),
        handed_off: false,
        args_buf: Vec::new(),
    };
    let reply = match &req.job {
        Job::Script(script, cached) => {
            let f = match vm.function(script) {
                Ok(f) => f,
                Err(r) => return (r, None),
            };
            if !cached {
                server.scripts.insert((*script).clone());
            }
            if let Err(e) = vm.set_keys_argv(req.keys, req.argv) {
                vm.broken = true;
                return (Reply::err(format!("Error running script: {e}")), None);
            }
            let name = String::from_utf8_lossy(&script.sha).into_owned();
            let _busy = Busy::new(shard, false);
            vm.run(&mut run, &f, &name)
        }
        Job::Function(fref) => {
            let f = match super::functions::load_into(server, vm, &fref.name) {
                Ok(f) => f,
                Err(r) => return (r, None),
            };
            let _busy = Busy::new(shard, true);
            vm.run_function(&mut run, &f, req.keys, req.argv, &fref.name)
        }
    };
    // SELECT inside a script only affected the script.
    client.info.db.store(client.db, Ordering::Relaxed);
    match run.abort {
        Some(Abort::Redirect(to)) => (reply, Some(to)),
        _ => (reply, None),
    }
}

/// SCRIPT LOAD | EXISTS | FLUSH | KILL | HELP.
pub fn script(conn: &mut Connection, sub: &str, args: &[Bytes]) -> Reply {
    let server = &conn.server;
    match sub {
        "load" => load(server, &args[2]),
        "exists" => Reply::Array(
            args[2..]
                .iter()
                .map(|a| Reply::Int(cache::sha_arg(a).is_some_and(|s| server.scripts.contains(&s)) as i64))
                .collect(),
        ),
        "flush" => {
            if args.len() > 3
                || (args.len() == 3 && !crate::util::eq_ic(&args[2], "sync") && !crate::util::eq_ic(&args[2], "async"))
            {
                return Reply::err("SCRIPT FLUSH only support SYNC|ASYNC option");
            }
            server.scripts.flush();
            Reply::ok()
        }
        "kill" => kill(server, false),
        _ => help(),
    }
}

fn load(server: &Server, source: &Bytes) -> Reply {
    let sha = cache::sha1_hex(source);
    if server.scripts.contains(&sha) {
        return Reply::Bulk(Bytes::copy_from_slice(&sha));
    }
    let flags = match cache::parse_shebang(source) {
        Ok(f) => f,
        Err(e) => return Reply::err(e),
    };
    let script = Arc::new(Script { sha, source: source.clone(), flags });
    if let Err(e) = with_checker(server, |vm| super::vm::compile(&vm.lua, script.body(), "@user_script").map(|_| ())) {
        return Reply::err(format!("Error compiling script (new function): {e}"));
    }
    server.scripts.insert(script);
    Reply::Bulk(Bytes::copy_from_slice(&sha))
}

/// Runs `f` on the server's private validation VM.
pub fn with_checker<R>(server: &Server, f: impl FnOnce(&mut Vm) -> Result<R, String>) -> Result<R, String> {
    let mut slot = server.scripts.checker.lock();
    if slot.is_none() {
        let limit = server.config.lua_memory_limit.load(Ordering::Relaxed);
        *slot = Some(Vm::new(limit).map_err(|e| e.to_string())?);
    }
    let vm = slot.as_mut().expect("checker VM just created");
    let r = f(vm);
    if vm.broken {
        *slot = None;
    }
    r
}

/// SCRIPT KILL (`function` false) and FUNCTION KILL: no shard lock needed.
pub fn kill(server: &Server, function: bool) -> Reply {
    let mut running_other = false;
    let mut unkillable = false;
    let mut killed = false;
    for shard in &server.shards.list {
        if !shard.script_running() {
            continue;
        }
        if shard.script_is_function.load(Ordering::SeqCst) != function {
            running_other = true;
            continue;
        }
        shard.script_kill.store(true, Ordering::SeqCst);
        if shard.script_wrote.load(Ordering::SeqCst) {
            shard.script_kill.store(false, Ordering::SeqCst);
            unkillable = true;
        } else {
            killed = true;
        }
    }
    if killed {
        Reply::ok()
    } else if unkillable {
        Reply::error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        )
    } else if running_other {
        let other = if function { "SCRIPT KILL" } else { "FUNCTION KILL" };
        Reply::error(format!("BUSY Redis is busy running a script. You can only call {other} or SHUTDOWN NOSAVE."))
    } else {
        Reply::error("NOTBUSY No scripts in execution right now.")
    }
}

fn help() -> Reply {
    let lines = [
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::status(l)).collect())
}
