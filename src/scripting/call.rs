//! `redis.call` / `redis.pcall`: running commands from a script directly on
//! the shard the script holds, with Redis's script rules (noscript commands,
//! read-only scripts, the slot rules of scripting.md).

use super::cache::Flags;
use super::convert::{self, push_bytes};
use crate::commands::dispatch::{self, Origin, Tally};
use crate::commands::registry::{self, flags, Command, Exec};
use crate::commands::{ConnCtx, Ctx};
use crate::net::client::ClientState;
use crate::protocol::Reply;
use crate::server::Server;
use crate::shard::{slot, Shard, ShardData};
use bytes::Bytes;
use mlua::ffi;
use std::cell::Cell;
use std::ffi::c_int;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Why a running script must stop no matter what it catches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abort {
    Kill,
    /// A script with no declared keys touched another shard's key first:
    /// rerun it there.
    Redirect(usize),
    Shutdown,
    /// The VM hit `lua-memory-limit`: a script that catches that error
    /// (pcall) would go on allocating on a VM that has nothing left.
    OutOfMemory,
}

impl Abort {
    pub fn message(self) -> &'static str {
        match self {
            Abort::Kill => "ERR Script killed by user with SCRIPT KILL...",
            Abort::Redirect(_) => "ERR script moved to another shard",
            Abort::Shutdown => "ERR Script killed by server shutdown",
            Abort::OutOfMemory => "ERR Error running script: Lua VM out of memory (lua-memory-limit)",
        }
    }
}

/// Everything a script's `redis.call` needs while it runs.
pub struct Run<'a> {
    pub server: &'a Arc<Server>,
    pub shard: &'a Shard,
    /// The shard's data, entered by the runner (its VM moved out meanwhile).
    pub data: *mut ShardData,
    /// The caller's state.
    pub caller: &'a ClientState,
    /// A copy of it for connection-level commands (SELECT in a script only
    /// affects the script, as in Redis 7), made on the first such command.
    pub conn_state: Option<ClientState>,
    pub db: usize,
    /// RESP version the script speaks (`redis.setresp`).
    pub resp: u8,
    pub now: u64,
    pub read_only: bool,
    pub flags: Flags,
    /// The slot undeclared keys must match (shebang scripts).
    pub slot: Option<u16>,
    /// No key touched yet by a script with no declared keys.
    pub unbound: bool,
    /// False once the script was restarted (no second redirect).
    pub may_redirect: bool,
    pub wrote: bool,
    /// Memory was over `maxmemory` when the script started.
    pub pre_oom: bool,
    pub abort: Option<Abort>,
    /// When the script started (ms), as `now`: one clock read serves both.
    pub started_ms: u64,
    /// The worker thread was handed to the runtime (long script).
    pub handed_off: bool,
    pub args_buf: Vec<Bytes>,
    /// The last command's reply, kept here while it is pushed to Lua (see
    /// `raw_call`).
    pub reply: Reply,
    /// Statistics of the script's commands, published when it ends.
    pub tally: Tally,
}

thread_local! {
    static CURRENT: Cell<*mut ()> = const { Cell::new(std::ptr::null_mut()) };
}

/// Makes `run` the current script of this thread until dropped.
pub struct Enter(());

impl Enter {
    pub fn new(run: &mut Run<'_>) -> Enter {
        CURRENT.with(|c| c.set(run as *mut Run<'_> as *mut ()));
        Enter(())
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null_mut()));
    }
}

/// Runs `f` on the script currently running on this thread, if any.
pub fn with_run<R>(f: impl FnOnce(&mut Run<'_>) -> R) -> Option<R> {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return None;
    }
    // SAFETY: `CURRENT` is set only by `Enter::new` from a `&mut Run` that
    // outlives the `Enter` guard, and cleared when the guard drops. A script
    // runs synchronously on this thread, so nothing else uses the Run while
    // a Lua callback holds this reference; callbacks never nest (commands
    // run from scripts cannot run scripts).
    let run = unsafe { &mut *(p as *mut Run<'_>) };
    Some(f(run))
}

/// `redis.call`: runs a command, raising its error reply.
///
/// Both entry points are raw C functions rather than mlua callbacks: the
/// per-call argument and value handling of a callback cost more than the
/// command itself for small commands (the seed script's LPUSH).
pub unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a C function with a valid state.
    unsafe { raw_call(state, true) }
}

/// `redis.pcall`: runs a command, returning its error reply as a table.
pub unsafe extern "C-unwind" fn redis_pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a C function with a valid state.
    unsafe { raw_call(state, false) }
}

/// What the Rust half of a call produced, for the Lua half to push. Holds
/// nothing that needs dropping: everything owned (arguments, the reply)
/// stays in the `Run`.
#[derive(Clone, Copy)]
enum Outcome {
    /// Not inside a script (library code being loaded may not run commands).
    NoScript,
    Abort,
    /// An error of the call itself: `{err = code .. text}`; `counted` when
    /// errorstats counted it already (a check of the command that failed).
    Failed {
        code: &'static str,
        text: &'static str,
        counted: bool,
    },
    /// The command ran; its reply (prepared for pushing) is in `reply`.
    Ran {
        reply: *const Reply,
        resp: u8,
        is_error: bool,
    },
    Panicked,
}

/// The two halves of `redis.call`/`redis.pcall`.
///
/// The first half reads the arguments (strings in place, numbers converted
/// in Rust, so Lua allocates nothing) and runs the command; the second
/// pushes the result. Only the second half calls Lua functions that may
/// raise (out of memory, or the error `redis.call` raises on purpose), and
/// Lua raises with `longjmp`: the frames it jumps over own nothing that
/// needs dropping, because the arguments and the reply live in the `Run`.
///
/// # Safety
/// `state` is the Lua state calling this C function.
unsafe fn raw_call(state: *mut ffi::lua_State, raise: bool) -> c_int {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the caller passes a valid state; `run_command` only reads
        // this call's stack slots.
        with_run(|run| unsafe { run_command(state, run) }).unwrap_or(Outcome::NoScript)
    }))
    .unwrap_or(Outcome::Panicked);
    // SAFETY: `state` is valid; every pushed value is checked for stack
    // space first (`lua_checkstack`).
    unsafe {
        if ffi::lua_checkstack(state, 4) == 0 {
            return raise_static(state, c"stack overflow");
        }
        match outcome {
            Outcome::NoScript => {
                ffi::luaL_where(state, 1);
                let msg: &[u8] = if raise {
                    b"Script attempted to access nonexistent global variable 'call'"
                } else {
                    b"Script attempted to access nonexistent global variable 'pcall'"
                };
                push_bytes(state, msg);
                ffi::lua_concat(state, 2);
                ffi::lua_error(state)
            }
            Outcome::Abort => raise_static(state, c"script aborted"),
            Outcome::Panicked => raise_static(state, c"ERR internal error running the command"),
            Outcome::Failed { code, text, counted } => {
                ffi::lua_createtable(state, 0, 2);
                push_bytes(state, code.as_bytes());
                push_bytes(state, text.as_bytes());
                ffi::lua_concat(state, 2);
                ffi::lua_setfield(state, -2, c"err".as_ptr());
                if counted {
                    ffi::lua_pushboolean(state, 1);
                    ffi::lua_setfield(state, -2, convert::ERROR_COUNTED.as_ptr());
                }
                if raise {
                    ffi::lua_error(state)
                }
                1
            }
            Outcome::Ran { reply, resp, is_error } => {
                // SAFETY: the reply lives in the Run, which outlives the
                // script, and nothing else touches it until the next call.
                convert::push_reply(state, &*reply, resp);
                if is_error && raise {
                    ffi::lua_error(state)
                }
                1
            }
        }
    }
}

/// Raises a fixed message.
///
/// # Safety
/// `state` is valid with one free stack slot.
unsafe fn raise_static(state: *mut ffi::lua_State, msg: &'static std::ffi::CStr) -> c_int {
    // SAFETY: per the function's contract.
    unsafe {
        ffi::lua_pushstring(state, msg.as_ptr());
        ffi::lua_error(state)
    }
}

/// The Rust half of a call: arguments, checks, the command itself.
///
/// # Safety
/// `state` is the Lua state of the running call.
unsafe fn run_command(state: *mut ffi::lua_State, run: &mut Run<'_>) -> Outcome {
    if run.abort.is_some() {
        return Outcome::Abort;
    }
    // SAFETY: reading this call's own arguments, which Lua keeps on the
    // stack (and so alive) for the whole call.
    let argc = unsafe { ffi::lua_gettop(state) };
    if argc <= 0 {
        return Outcome::Failed {
            code: "ERR ",
            text: "Please specify at least one argument for this redis lib call",
            counted: false,
        };
    }
    let mut argv = std::mem::take(&mut run.args_buf);
    argv.clear();
    for i in 1..=argc {
        // SAFETY: as above; `lua_type`, `lua_tolstring` on a string and
        // `lua_tonumber` neither allocate nor raise.
        let arg = unsafe {
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(state, i, &mut len);
                    Some(Bytes::copy_from_slice(std::slice::from_raw_parts(p as *const u8, len)))
                }
                ffi::LUA_TNUMBER => Some(number_arg(ffi::lua_tonumber(state, i))),
                _ => None,
            }
        };
        match arg {
            Some(b) => argv.push(b),
            None => {
                run.args_buf = argv;
                return Outcome::Failed {
                    code: "ERR ",
                    text: "Lua redis lib command arguments must be strings or integers",
                    counted: false,
                };
            }
        }
    }
    let result = execute(run, &argv);
    argv.clear();
    run.args_buf = argv;
    match result {
        Ok(reply) => {
            let is_error = reply.is_error();
            run.reply = convert::prepare_for_lua(reply, run.resp);
            Outcome::Ran { reply: &run.reply, resp: run.resp, is_error }
        }
        Err(CallErr::Abort) => Outcome::Abort,
        Err(CallErr::Msg(m)) => Outcome::Failed { code: "ERR ", text: m, counted: true },
        Err(CallErr::Coded(m)) => Outcome::Failed { code: "", text: m, counted: true },
    }
}

enum CallErr {
    Msg(&'static str),
    /// A message that carries its own error code.
    Coded(&'static str),
    Abort,
}

/// A number argument as Redis 7.0 sends it to the command (`%.17g`).
fn number_arg(n: f64) -> Bytes {
    Bytes::from(crate::protocol::format_double(n))
}

/// Checks and runs one command for the script. A check that refuses the
/// command counts its error (and the command's `rejected_calls`) now, as
/// Redis does; the script sees it flagged as counted.
fn execute(run: &mut Run<'_>, argv: &[Bytes]) -> Result<Reply, CallErr> {
    let cmd = match registry::resolve(argv) {
        Ok(c) => c,
        Err(Reply::Error(e)) if e.starts_with("ERR wrong number of arguments") => {
            let err = CallErr::Msg("Wrong number of args calling Redis command from script");
            if let Some(cmd) = registry::named(argv) {
                run.server.stats.commands[cmd.id].rejected.fetch_add(1, Ordering::Relaxed);
            }
            count_refusal(run, &err);
            return Err(err);
        }
        Err(_) => {
            let err = CallErr::Msg("Unknown Redis command called from script");
            count_refusal(run, &err);
            return Err(err);
        }
    };
    let result = check_and_run(run, cmd, argv);
    if let Err(err) = &result {
        run.server.stats.commands[cmd.id].rejected.fetch_add(1, Ordering::Relaxed);
        count_refusal(run, err);
    }
    result
}

/// Counts a refused call's error in errorstats.
fn count_refusal(run: &Run<'_>, err: &CallErr) {
    match err {
        CallErr::Msg(m) => run.server.stats.count_error(&format!("ERR {m}")),
        CallErr::Coded(m) => run.server.stats.count_error(m),
        CallErr::Abort => {}
    }
}

fn check_and_run(run: &mut Run<'_>, cmd: Command, argv: &[Bytes]) -> Result<Reply, CallErr> {
    let spec = cmd.spec;
    if spec.has(flags::NOSCRIPT) && !run.server.debug.deny_scripts_disabled.load(Ordering::Relaxed) {
        return Err(CallErr::Msg("This Redis command is not allowed from script"));
    }
    if spec.is_write() && run.read_only {
        return Err(CallErr::Msg("Write commands are not allowed from read-only scripts."));
    }
    // Only before the first write: a script cannot be stopped halfway.
    if run.pre_oom && !run.wrote && !run.flags.allow_oom && spec.has(flags::DENYOOM) {
        return Err(CallErr::Coded(crate::storage::memory::OOM_TEXT));
    }
    check_keys(run, cmd, argv)?;
    if spec.is_write() {
        run.wrote = true;
        run.shard.script_wrote.store(true, Ordering::Release);
    }
    Ok(run_through_dispatch(run, cmd, argv))
}

/// The slot rules for keys a script touches (scripting.md, "Where a script runs").
fn check_keys(run: &mut Run<'_>, cmd: Command, argv: &[Bytes]) -> Result<(), CallErr> {
    let shards = run.server.shards.len();
    for pos in cmd.spec.key_positions(argv) {
        let s = slot::key_slot(&argv[pos]);
        let owner = slot::slot_shard(s, shards);
        if run.unbound {
            if owner != run.shard.id {
                if !run.wrote && run.may_redirect {
                    run.abort = Some(Abort::Redirect(owner));
                    return Err(CallErr::Abort);
                }
                return Err(CallErr::Msg("Script attempted to access a non local key in a cluster node"));
            }
            run.unbound = false;
        }
        if owner != run.shard.id {
            return Err(CallErr::Msg("Script attempted to access a non local key in a cluster node"));
        }
        if !run.flags.compat && !run.flags.allow_cross_slot {
            match run.slot {
                None => run.slot = Some(s),
                Some(want) if want != s => {
                    return Err(CallErr::Msg("Script attempted to access keys that do not hash to the same slot"))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// The script's own copy of the caller's state, for connection-level
/// commands, in step with the script's database and RESP version.
fn conn_state<'r>(run: &'r mut Run<'_>) -> &'r mut ClientState {
    let caller = run.caller;
    let state = run.conn_state.get_or_insert_with(|| ClientState {
        info: caller.info.clone(),
        db: caller.db,
        resp: caller.resp,
        authenticated: true,
        close_after_reply: false,
        reply_mode: Default::default(),
    });
    state.db = run.db;
    state.resp = run.resp;
    state
}

/// Runs the checked command through dispatch, on the script's shard.
fn run_through_dispatch(run: &mut Run<'_>, cmd: Command, argv: &[Bytes]) -> Reply {
    run.tally.restart();
    match cmd.spec.exec {
        Exec::Keyed(_) | Exec::AllShards(_) | Exec::Blocking(_) => {
            with_ctx(run, |ctx, tally| dispatch::call(ctx, cmd, argv, tally))
        }
        Exec::Routed(route, _) => match route(run.server, argv) {
            Err(e) => e,
            Ok(id) if id != run.shard.id => Reply::err("Script attempted to access a non local key in a cluster node"),
            Ok(_) => with_ctx(run, |ctx, tally| dispatch::call(ctx, cmd, argv, tally)),
        },
        Exec::Conn(_) => {
            let server = run.server;
            let mut ctx = ConnCtx { server, client: conn_state(run) };
            let r = dispatch::call_conn(&mut ctx, cmd, argv, Origin::Script);
            run.db = ctx.client.db;
            r
        }
        Exec::Container => match crate::commands::server::bare_container(cmd.spec.name) {
            Some(f) => {
                let server = run.server;
                f(&mut ConnCtx { server, client: conn_state(run) }, argv)
            }
            None => Reply::wrong_arity(cmd.spec.name),
        },
        Exec::Session(_) => Reply::err("This Redis command is not allowed from script"),
    }
}

fn with_ctx<R>(run: &mut Run<'_>, f: impl FnOnce(&mut Ctx, &mut Tally) -> R) -> R {
    // SAFETY: `run.data` points at the ShardData the runner holds locked for
    // the whole script (see `vm::Vm::run`); the runner touches it only
    // through this pointer until the script returns, and the VM that is
    // running us was moved out of it, so this is the only live reference.
    let data = unsafe { &mut *run.data };
    let mut one = [data];
    let mut ctx = Ctx::new(run.server, &mut one, &run.caller.info, run.db, run.resp, Origin::Script);
    // The script's clock is fixed at its start (as in Redis).
    ctx.now = run.now;
    f(&mut ctx, &mut run.tally)
}
