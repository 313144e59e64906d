//! `redis.call` / `redis.pcall`: running commands from a script directly on
//! the shard the script holds, with Redis's script rules (noscript commands,
//! read-only scripts, the slot rules of scripting.md).

use super::cache::Flags;
use super::convert::{self, push_bytes};
use crate::commands::dispatch::{self, Origin, Tally};
use crate::commands::registry::{self, flags, Command, Exec};
use crate::commands::{ConnCtx, Ctx, KeyRoute, KeyRoutes};
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
    /// Standalone mode: the script touched a key on a shard it could not
    /// enter without waiting out of order: its writes were taken back
    /// (`undo`); rerun it with the shards `Run::entered` names.
    Widen,
    Shutdown,
    /// The VM hit `lua-memory-limit`: a script that catches that error
    /// (pcall) would go on allocating on a VM that has nothing left.
    OutOfMemory,
}

impl Abort {
    pub fn message(self) -> &'static str {
        match self {
            Abort::Kill => "ERR Script killed by user with SCRIPT KILL...",
            Abort::Redirect(_) | Abort::Widen => "ERR script moved to another shard",
            Abort::Shutdown => "ERR Script killed by server shutdown",
            Abort::OutOfMemory => "ERR Error running script: Lua VM out of memory (lua-memory-limit)",
        }
    }
}

/// A shard a standalone-mode script holds besides its own (`Run::shard`).
pub struct Extra<'a> {
    pub shard: &'a Shard,
    /// Its data: entered by the runner, or by the script itself (`guard`).
    pub data: *mut ShardData,
    pub guard: Option<crate::shard::ShardGuard<'a>>,
}

/// Everything a script's `redis.call` needs while it runs.
pub struct Run<'a> {
    pub server: &'a Arc<Server>,
    pub shard: &'a Shard,
    /// The shard's data, entered by the runner (its VM moved out meanwhile).
    pub data: *mut ShardData,
    /// Standalone mode: the other shards entered (empty otherwise, and for a
    /// script whose keys live on one shard).
    pub extra: Vec<Extra<'a>>,
    /// Standalone mode: the shards the script entered or wanted (bit i:
    /// shard i, bit 63: 63 and above), learned for its next runs.
    pub entered: u64,
    /// The script is a function (FCALL), for the busy marks of `extra`.
    pub function: bool,
    /// The caller's state.
    pub caller: &'a ClientState,
    /// The script's declared keys (KEYS): Redis 7.0 remembers these for a
    /// tracking caller whenever the script runs a read-only command.
    pub keys: &'a [Bytes],
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
    /// Standalone mode: copies of what the script wrote while a shard below
    /// its highest may still be missing, to start it over (`undo`).
    pub journal: super::undo::Journal,
    /// Memory was over `maxmemory` when the script started.
    pub pre_oom: bool,
    pub abort: Option<Abort>,
    /// When the script started (ms), as `now`: one clock read serves both.
    pub started_ms: u64,
    /// The worker thread was handed to the runtime (long script).
    pub handed_off: bool,
    /// What the "Slow script detected" line names: `f_<sha>` for a script
    /// (Redis's name for its Lua function), the function's name for FCALL.
    pub name: String,
    /// That line was logged (once per run, past `busy-reply-threshold`).
    pub slow_logged: bool,
    pub args_buf: Vec<Bytes>,
    /// Standalone mode: the shard of each key of the call being run, as
    /// `check_keys` found it, for the command's `Ctx` (emptied once the
    /// command ran: the routes name its arguments).
    pub routes: KeyRoutes,
    /// The last command's reply, kept here while it is pushed to Lua (see
    /// `raw_call`).
    pub reply: Reply,
    /// Set once the script's reply was built: how many `failed_calls` it
    /// adds to its command (its error replies, counted in the error
    /// statistics already, as Redis counts them while it writes the reply).
    /// None: the reply's own error, if any, is still to be counted.
    pub failed_calls: Option<u32>,
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

/// Whether a script runs on this thread.
pub fn running() -> bool {
    CURRENT.with(|c| !c.get().is_null())
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
    /// it was a refusal of the command, already in the error statistics
    /// (the table then says `ignore_error_stats_update`, as Redis's does).
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
        // The arguments were copied: drop them, so the reply has room even
        // after thousands of them (`unpack` of a big table), as in Redis.
        ffi::lua_settop(state, 0);
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
                    ffi::lua_setfield(state, -2, c"ignore_error_stats_update".as_ptr());
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
    let logging = super::ldb::logging();
    if argc <= 0 {
        if logging {
            super::ldb::log_error("Please specify at least one argument for this redis lib call");
        }
        return Outcome::Failed {
            code: "ERR ",
            text: "Please specify at least one argument for this redis lib call",
            counted: false,
        };
    }
    let mut argv = std::mem::take(&mut run.args_buf);
    argv.clear();
    // The command as a recent call named it: its name is shared, not copied,
    // and the table lookup is skipped.
    let mut known = None;
    for i in 1..=argc {
        // SAFETY: as above; `lua_type`, `lua_tolstring` on a string and
        // `lua_tonumber` neither allocate nor raise.
        let arg = unsafe {
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(state, i, &mut len);
                    let s = std::slice::from_raw_parts(p as *const u8, len);
                    match if i == 1 { recent::find(s) } else { None } {
                        Some((name, cmd)) => {
                            known = Some(cmd);
                            Some(name)
                        }
                        None => Some(Bytes::copy_from_slice(s)),
                    }
                }
                ffi::LUA_TNUMBER => Some(number_arg(ffi::lua_tonumber(state, i))),
                _ => None,
            }
        };
        match arg {
            Some(b) => argv.push(b),
            None => {
                run.args_buf = argv;
                if logging {
                    super::ldb::log_error("Lua redis lib command arguments must be strings or integers");
                }
                return Outcome::Failed {
                    code: "ERR ",
                    text: "Lua redis lib command arguments must be strings or integers",
                    counted: false,
                };
            }
        }
    }
    if logging {
        super::ldb::log_command(&argv);
    }
    let result = execute(run, &argv, known);
    argv.clear();
    run.args_buf = argv;
    if logging {
        match &result {
            Ok(reply) => super::ldb::log_reply(reply, run.resp),
            Err(CallErr::Msg(m)) | Err(CallErr::Coded(m)) => super::ldb::log_error(m),
            Err(CallErr::Abort) => {}
        }
    }
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
    // Integral values (counters, scores) print as integers: no formatting
    // machinery, no growing string.
    if let Some(i) = crate::util::numbers::printed_as_integer(n) {
        let mut buf = [0u8; 24];
        let len = write_i64(&mut buf, i);
        return Bytes::copy_from_slice(&buf[buf.len() - len..]);
    }
    Bytes::from(crate::protocol::format_double(n))
}

/// Writes `i` in decimal at the end of `buf`, returning how many bytes it took.
fn write_i64(buf: &mut [u8; 24], i: i64) -> usize {
    let mut n = i.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    buf.len() - pos
}

/// A small cache of the commands scripts called on this thread, by name
/// exactly as written: a script calls the same few commands over and over,
/// and a hit spares both the case-folding table lookup and a copy of the
/// name (the cached `Bytes` is shared). Only plain commands (no container)
/// are cached, so the name alone decides the command; arity is still checked
/// for each call.
mod recent {
    use super::{Command, Exec};
    use bytes::Bytes;
    use std::cell::RefCell;

    /// Sets of `WAYS` entries each, a name's set chosen by a hash of its
    /// ends and length. BullMQ's scripts call 57 commands, 24 of them for
    /// every job, many alike (HMGET and HMSET, XADD and ZADD): with one
    /// entry per slot a third of its calls missed.
    const SETS: usize = 16;
    const WAYS: usize = 4;
    const NAME_MAX: usize = 24;

    struct Entry {
        name: Bytes,
        cmd: Command,
    }

    struct Cache {
        sets: [[Option<Entry>; WAYS]; SETS],
        /// The way each set replaces next (round robin).
        next: [u8; SETS],
    }

    thread_local! {
        static CACHE: RefCell<Cache> = const {
            RefCell::new(Cache { sets: [const { [const { None }; WAYS] }; SETS], next: [0; SETS] })
        };
    }

    #[inline]
    fn set_of(name: &[u8]) -> usize {
        match name {
            [] => 0,
            [only] => *only as usize,
            [first, .., last] => (*first as usize).wrapping_mul(31) ^ (*last as usize) ^ (name.len() << 2),
        }
        .wrapping_rem(SETS)
    }

    /// The cached name and command for `name`, if a script called it lately.
    #[inline]
    pub fn find(name: &[u8]) -> Option<(Bytes, Command)> {
        if name.len() > NAME_MAX {
            return None;
        }
        CACHE.with(|c| {
            let c = c.borrow();
            let e = c.sets[set_of(name)].iter().flatten().find(|e| e.name[..] == *name)?;
            Some((e.name.clone(), e.cmd))
        })
    }

    /// Remembers that `name` resolved to `cmd` (a plain command only).
    pub fn remember(name: &Bytes, cmd: Command) {
        // A container's name alone does not decide the command (nor does it
        // name its subcommand, whose name has a `|`); a plain command was
        // found by `registry::lookup_top(name)` itself.
        if name.len() > NAME_MAX || matches!(cmd.spec.exec, Exec::Container) || cmd.spec.name.contains('|') {
            return;
        }
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            let set = set_of(name);
            let way = c.next[set] as usize % WAYS;
            c.next[set] = ((way + 1) % WAYS) as u8;
            c.sets[set][way] = Some(Entry { name: name.clone(), cmd });
        });
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::commands::registry;

        fn command(name: &str) -> Command {
            let argv = [Bytes::copy_from_slice(name.as_bytes())];
            registry::lookup_top(&argv[0]).expect("a known command")
        }

        #[test]
        fn every_name_finds_its_own_command_once_seen() {
            // The commands BullMQ's scripts call for every job (those that
            // missed a one-entry-per-slot cache), several alike.
            let names = [
                "XADD",
                "ZADD",
                "HMSET",
                "HMGET",
                "ZRANGEBYSCORE",
                "XTRIM",
                "HSET",
                "EXISTS",
                "ZREMRANGEBYRANK",
                "LREM",
                "HGET",
            ];
            for round in 0..3 {
                for n in names {
                    let name = Bytes::copy_from_slice(n.as_bytes());
                    match find(&name) {
                        Some((cached, cmd)) => {
                            assert_eq!(&cached[..], n.as_bytes());
                            assert!(cmd.spec.name.eq_ignore_ascii_case(n), "{n} found {}", cmd.spec.name);
                        }
                        None => remember(&name, command(n)),
                    }
                }
                if round > 0 {
                    // Once warm, every one of them is found.
                    for n in names {
                        assert!(find(n.as_bytes()).is_some(), "{n} evicted");
                    }
                }
            }
            // More alike names than ways: the oldest goes, none is confused.
            let set = set_of(b"HGET");
            let alike: Vec<&str> =
                ["HGET", "HSET", "HDEL", "HLEN", "HKEYS", "HVALS", "HINCRBY", "HEXISTS", "HSETNX", "HSCAN"]
                    .into_iter()
                    .filter(|n| set_of(n.as_bytes()) == set)
                    .collect();
            for n in &alike {
                remember(&Bytes::copy_from_slice(n.as_bytes()), command(n));
            }
            for n in &alike {
                if let Some((_, cmd)) = find(n.as_bytes()) {
                    assert!(cmd.spec.name.eq_ignore_ascii_case(n));
                }
            }
        }
    }
}

/// Resolves a call's command: `known` when the name was found in the
/// cache of recent calls (then only the arity is checked), else the table.
fn resolve(argv: &[Bytes], known: Option<Command>) -> Result<Command, Reply> {
    match known {
        Some(cmd) if cmd.spec.arity_ok(argv.len()) => Ok(cmd),
        Some(cmd) => Err(Reply::wrong_arity(cmd.spec.name)),
        None => {
            let r = registry::resolve(argv);
            if let Ok(cmd) = &r {
                recent::remember(&argv[0], *cmd);
            }
            r
        }
    }
}

/// Checks and runs one command for the script.
fn execute(run: &mut Run<'_>, argv: &[Bytes], known: Option<Command>) -> Result<Reply, CallErr> {
    let cmd = match resolve(argv, known) {
        Ok(c) => c,
        Err(Reply::Error(e)) if e.starts_with("ERR wrong number of arguments") => {
            let err = CallErr::Msg(crate::protocol::errors::SCRIPT_WRONG_ARITY);
            return Err(refuse(run, found(argv), err));
        }
        Err(_) => {
            let err = match redis_noscript(argv) {
                Some(true) => CallErr::Msg(crate::protocol::errors::SCRIPT_DENIED),
                Some(false) => CallErr::Msg(crate::protocol::errors::SCRIPT_WRONG_ARITY),
                None => CallErr::Msg("Unknown Redis command called from script"),
            };
            return Err(refuse(run, None, err));
        }
    };
    let spec = cmd.spec;
    if spec.has(flags::NOSCRIPT) && !run.server.debug.deny_scripts_disabled.load(Ordering::Relaxed) {
        return Err(refuse(run, Some(cmd), CallErr::Msg(crate::protocol::errors::SCRIPT_DENIED)));
    }
    if let Err(denied) = dispatch::acl_check(run.server, run.caller, cmd, argv, dispatch::AclContext::Lua) {
        return Err(refuse(run, Some(cmd), CallErr::Msg(dispatch::script_denied(denied))));
    }
    // Redis counts may-replicate commands (PUBLISH, SPUBLISH, PFCOUNT...)
    // as writes here, so read-only scripts may run during CLIENT PAUSE WRITE.
    if run.read_only && (spec.is_write() || spec.has(flags::MAY_REPLICATE)) {
        return Err(refuse(run, Some(cmd), CallErr::Msg("Write commands are not allowed from read-only scripts.")));
    }
    // Once the script wrote it must be able to go on: these checks of the
    // server's state apply before its first write only, as in Redis.
    if spec.is_write() && !run.wrote && crate::replication::not_enough_replicas(run.server) {
        return Err(refuse(run, Some(cmd), CallErr::Coded(NOREPLICAS)));
    }
    if spec.is_write() && !run.wrote && run.server.persist.misconf.load(Ordering::Relaxed) {
        return Err(refuse(run, Some(cmd), CallErr::Coded(crate::protocol::errors::MISCONF)));
    }
    if run.pre_oom && !run.wrote && !run.flags.allow_oom && spec.has(flags::DENYOOM) {
        return Err(refuse(run, Some(cmd), CallErr::Coded(crate::storage::memory::OOM_TEXT)));
    }
    if let Err(e) = check_keys(run, cmd, argv) {
        return Err(refuse(run, Some(cmd), e));
    }
    if run.server.standalone && run.journal.undoable && (spec.is_write() || spec.has(flags::MAY_REPLICATE)) {
        if let Err(e) = prepare_effects(run, cmd, argv) {
            return Err(refuse(run, Some(cmd), e));
        }
    }
    if spec.is_write() && !run.wrote {
        // SCRIPT KILL runs on another thread: it sets `script_kill`, then
        // reads `script_wrote`; this sets `script_wrote`, then reads
        // `script_kill` (all SeqCst). One of the two sees the other: a kill
        // answered OK always stops the script before its first write.
        run.shard.script_wrote.store(true, Ordering::SeqCst);
        for e in &run.extra {
            e.shard.script_wrote.store(true, Ordering::SeqCst);
        }
        let kill = run.shard.script_kill.load(Ordering::SeqCst)
            || run.extra.iter().any(|e| e.shard.script_kill.load(Ordering::SeqCst));
        if kill {
            run.abort = Some(Abort::Kill);
            return Err(CallErr::Abort);
        }
    }
    if spec.is_write() {
        run.wrote = true;
    }
    Ok(run_through_dispatch(run, cmd, argv))
}

/// Redis's refusal of a write while `min-replicas-to-write` is not met.
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// Counts a command the script's call refused, as Redis counts it: in the
/// error statistics and, for a known command, its `rejected_calls`.
fn refuse(run: &Run<'_>, cmd: Option<Command>, err: CallErr) -> CallErr {
    let stats = &run.server.stats;
    match err {
        CallErr::Msg(m) => stats.count_error(format!("ERR {m}")),
        CallErr::Coded(m) => stats.count_error(m),
        CallErr::Abort => return err,
    }
    if let Some(cmd) = cmd {
        stats.count_rejected(cmd.id);
    }
    err
}

/// Commands Redis 7.0 has and flags `noscript` that moonshard does not
/// have, with Redis's arity: a script calling one gets Redis's answer.
const REDIS_NOSCRIPT: &[(&str, i32)] =
    &[("client|pause", -3), ("client|unblock", -3), ("client|unpause", 2), ("debug", -2)];

/// The command or subcommand `argv` names, whatever its arity.
fn found(argv: &[Bytes]) -> Option<Command> {
    let cmd = registry::lookup_top(&argv[0])?;
    match argv.get(1) {
        Some(sub) if matches!(cmd.spec.exec, Exec::Container) => registry::lookup_sub(cmd.spec, sub),
        _ => Some(cmd),
    }
}

/// Whether Redis would find the command `argv` names (its lookup, without
/// the arity check): `redis.acl_check_cmd`.
pub fn command_exists(argv: &[Bytes]) -> bool {
    found(argv).is_some() || redis_noscript(argv).is_some()
}

/// Whether the running script's user may run `argv` (`redis.acl_check_cmd`).
pub fn acl_allows(argv: &[Bytes]) -> bool {
    let ix = crate::acl::index::index();
    let id = match found(argv) {
        Some(c) => Some(c.id),
        None => {
            let base = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
            let sub = argv.get(1).map(|s| format!("{base}|{}", String::from_utf8_lossy(s).to_ascii_lowercase()));
            sub.and_then(|n| ix.lookup(n.as_bytes())).or_else(|| ix.lookup(base.as_bytes()))
        }
    };
    let Some(id) = id else {
        return false;
    };
    with_run(|run| run.caller.acl.unrestricted() || run.caller.acl.rules().check(id, argv).is_ok()).unwrap_or(true)
}

/// Redis's containers among those: their subcommand names the command.
const REDIS_CONTAINERS: &[&str] = &["client", "cluster", "module", "script"];

/// Whether `argv` names one of `REDIS_NOSCRIPT` (Some), and then whether
/// its arity holds, as Redis's lookup and arity check would see it.
fn redis_noscript(argv: &[Bytes]) -> Option<bool> {
    if argv[0].contains(&b'|') {
        return None;
    }
    let base = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    let name = match argv.get(1) {
        Some(sub) if REDIS_CONTAINERS.contains(&base.as_str()) => {
            format!("{base}|{}", String::from_utf8_lossy(sub).to_ascii_lowercase())
        }
        _ => base,
    };
    let &(_, arity) = REDIS_NOSCRIPT.iter().find(|(n, _)| *n == name)?;
    let argc = argv.len() as i32;
    Some(if arity >= 0 { argc == arity } else { argc >= -arity })
}

/// The slot rules for keys a script touches (scripting.md, "Where a script runs").
fn check_keys(run: &mut Run<'_>, cmd: Command, argv: &[Bytes]) -> Result<(), CallErr> {
    if run.server.cluster.is_some() {
        cluster_check(run, cmd, argv)?;
    }
    let shards = run.server.shards.len();
    if super::ldb::is_scratch(run.server, run.shard) {
        // A YES-mode debugging session: its keys are copied into its
        // scratch shard on first use.
        // SAFETY: `data` is the scratch shard the running script entered,
        // held by its runner; no other reference to it is alive while a
        // command of the script is being prepared.
        let data = unsafe { &mut *run.data };
        for pos in cmd.spec.key_positions_iter(argv) {
            super::ldb::touch(run.server, data, run.db, &argv[pos]);
        }
        if run.server.standalone {
            run.unbound = false;
            return Ok(());
        }
    }
    if run.server.standalone
        && (matches!(cmd.spec.exec, Exec::AllShards(_)) || crate::commands::sort::forms_keys(cmd.spec.name, argv))
    {
        // Whole-keyspace commands (KEYS, DBSIZE, FLUSHALL, ...) and SORT's
        // patterns see every shard, as on a standalone Redis.
        for id in 0..shards {
            enter(run, id)?;
        }
        run.unbound = false;
    }
    let slot_rule = !run.flags.compat && !run.flags.allow_cross_slot && !run.server.standalone;
    if shards == 1 && run.shard.id == 0 && !slot_rule {
        // Every key lives on this one shard and no slot rule applies: the
        // loop below would check nothing, so no key's slot is computed.
        if run.unbound && cmd.spec.key_positions_iter(argv).next().is_some() {
            run.unbound = false;
        }
        return Ok(());
    }
    run.routes.clear();
    for pos in cmd.spec.key_positions_iter(argv) {
        let s = slot::key_slot(&argv[pos]);
        // On a cluster node, a second slot the node serves breaks the slot
        // rule whichever shard holds it: Redis reports that (its node holds
        // both), not a non-local key. (Without cluster mode a shard stands
        // for a node: another shard's key is non-local first.)
        if slot_rule && run.server.cluster.is_some() && run.slot.is_some_and(|want| want != s) {
            return Err(CallErr::Msg("Script attempted to access keys that do not hash to the same slot"));
        }
        let owner = slot::slot_shard(s, shards);
        // Only a call holding several shards looks its keys up again.
        if run.server.standalone && (owner != run.shard.id || !run.extra.is_empty()) {
            run.routes.push(KeyRoute::new(&argv[pos], owner));
        }
        if run.unbound {
            if owner != run.shard.id {
                if !run.wrote && run.may_redirect && run.extra.is_empty() {
                    run.abort = Some(Abort::Redirect(owner));
                    return Err(CallErr::Abort);
                }
                if !run.server.standalone {
                    return Err(CallErr::Msg(crate::protocol::errors::NON_LOCAL_KEY));
                }
            }
            run.unbound = false;
        }
        if owner != run.shard.id {
            if !run.server.standalone {
                return Err(CallErr::Msg(crate::protocol::errors::NON_LOCAL_KEY));
            }
            enter(run, owner)?;
            continue;
        }
        if slot_rule {
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

/// Cluster mode (`cluster-enabled yes`): a call whose keys are in a slot
/// this node does not serve (or in several slots) fails, and so does any
/// keyed call while the cluster is down, as Redis's
/// scriptVerifyClusterState decides with getNodeByQuery. What the master
/// sends and what the AOF holds (client id 0) is obeyed as it comes.
#[cold]
fn cluster_check(run: &mut Run<'_>, cmd: Command, argv: &[Bytes]) -> Result<(), CallErr> {
    let Some(cluster) = run.server.cluster.as_deref() else { return Ok(()) };
    if run.caller.id() == 0 {
        return Ok(());
    }
    let positions = cmd.spec.key_positions(argv);
    let Some(&first) = positions.first() else { return Ok(()) };
    let s = slot::key_slot(&argv[first]);
    if positions.iter().any(|&p| slot::key_slot(&argv[p]) != s) {
        return Err(CallErr::Msg(crate::protocol::errors::NON_LOCAL_KEY));
    }
    let (server, here, data, now, db) = (run.server, run.shard.id, run.data, run.now, run.db);
    // Asked only for a slot being migrated or imported.
    let mut count_keys = || {
        if slot::slot_shard(s, server.shards.len()) != here {
            return (0, positions.len());
        }
        // SAFETY: as in `with_ctx`: the runner holds this shard's data locked
        // for the whole script and reaches it only through `run.data`; no
        // other reference to it is alive while this check runs.
        let data = unsafe { &mut *data };
        let present =
            positions.iter().filter(|&&p| data.dbs.get_mut(db).is_some_and(|d| d.contains(&argv[p], now))).count();
        (present, positions.len() - present)
    };
    let mut query = crate::cluster::Query {
        slot: s as usize,
        write: &mut || crate::scripting::writes(server, cmd, argv),
        asking: run.caller.cluster_asking,
        multiple_keys: positions.len() > 1,
        migrate: cmd.spec.name == "migrate",
        plain_client: true,
        readonly: run.caller.cluster_readonly,
        shard_channel: cmd.spec.name == "spublish",
        count_keys: &mut count_keys,
    };
    match cluster.route(&mut query) {
        None => Ok(()),
        Some(crate::cluster::Redirect::Down) => {
            Err(CallErr::Msg("Script attempted to execute a command while the cluster is down"))
        }
        Some(crate::cluster::Redirect::DownReadOnly) => {
            Err(CallErr::Msg("Script attempted to execute a write command while the cluster is down and readonly"))
        }
        Some(_) => Err(CallErr::Msg(crate::protocol::errors::NON_LOCAL_KEY)),
    }
}

/// The bit of shard `id` in `Run::entered`.
pub fn shard_bit(id: usize) -> u64 {
    1u64 << id.min(63)
}

/// How long a script whose writes cannot be taken back waits for a shard
/// below one it holds (see `enter`; its journal keeps that from happening).
const OUT_OF_ORDER_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// How long a script with writes to take back waits for a busy shard below
/// one it holds before it takes them back and starts over.
const SHORT_OUT_OF_ORDER_WAIT: std::time::Duration = std::time::Duration::from_micros(200);

/// The highest shard id the script holds.
fn highest_held(run: &Run<'_>) -> usize {
    run.extra.iter().map(|e| e.shard.id).fold(run.shard.id, usize::max)
}

/// Whether the script holds every shard from 0 to its highest: it can then
/// never need one below a shard it holds.
fn holds_prefix(run: &Run<'_>) -> bool {
    run.extra.len() == highest_held(run)
}

/// Standalone mode, before a command that may write or publish: makes sure
/// the script can still start over if a shard it needs later is busy (see
/// `undo`). The keys the command writes are copied into the journal; when
/// that cannot serve (a big value, effects beyond the keys, keyspace
/// notifications), the script first enters every shard below its highest,
/// after which it never needs to start over.
fn prepare_effects(run: &mut Run<'_>, cmd: Command, argv: &[Bytes]) -> Result<(), CallErr> {
    // A YES-mode debugging session writes to its scratch copy only.
    if holds_prefix(run) || super::ldb::is_scratch(run.server, run.shard) {
        run.journal.close();
        return Ok(());
    }
    if journal_keys(run, cmd, argv) {
        return Ok(());
    }
    for id in 0..highest_held(run) {
        enter(run, id)?;
    }
    run.journal.close();
    Ok(())
}

/// Copies the keys `cmd` writes into the journal; false when the journal
/// cannot take this command back.
fn journal_keys(run: &mut Run<'_>, cmd: Command, argv: &[Bytes]) -> bool {
    let keyed = matches!(cmd.spec.exec, Exec::Keyed(_) | Exec::Blocking(_) | Exec::Routed(..));
    if !keyed
        || cmd.spec.has(flags::PUBSUB)
        || super::undo::beyond_keys(cmd)
        || run.server.config.notify_flags.load(Ordering::Relaxed) != 0
    {
        return false;
    }
    let shards = run.server.shards.len();
    let mut any = false;
    for pos in cmd.spec.key_positions_iter(argv) {
        any = true;
        // Holding one shard, every key checked is on it (`check_keys`).
        let id = match run.extra.is_empty() {
            true => run.shard.id,
            false => match run.routes.shard_of(&argv[pos]) {
                Some(shard) => shard,
                None => slot::slot_shard(slot::key_slot(&argv[pos]), shards),
            },
        };
        let Some(data) = held_data(run, id) else { return false };
        // SAFETY: `held_data` points at a shard the script holds until it
        // returns; nothing else references it while the call is prepared.
        let data = unsafe { &*data };
        if !run.journal.record(data, run.db, &argv[pos]) {
            return false;
        }
    }
    // A write without keys has effects the journal cannot hold.
    any
}

/// The data of shard `id` if the script holds it.
fn held_data(run: &Run<'_>, id: usize) -> Option<*mut ShardData> {
    if id == run.shard.id {
        return Some(run.data);
    }
    run.extra.iter().find(|e| e.shard.id == id).map(|e| e.data)
}

/// Standalone mode: makes sure the script holds shard `id`, entering it if
/// needed, never waiting in a way that could close a cycle: a shard above
/// every shard held is waited for (every waiter waits upwards); one below
/// is only tried, and if busy the script starts over with the larger set,
/// entered in ascending order (`Abort::Widen`), after its writes are taken
/// back (`undo`). A script that wrote what cannot be taken back holds every
/// shard from 0 to its highest (`prepare_effects`), and enters the gap up
/// to a higher one in order, so it never meets a shard below.
fn enter(run: &mut Run<'_>, id: usize) -> Result<(), CallErr> {
    enter_shard(run, id, true)
}

/// `enter`; `learn`: remember the shard for the script's next runs (not
/// the gaps filled in order: those runs start with the shards they need
/// and keep a journal instead).
fn enter_shard(run: &mut Run<'_>, id: usize, learn: bool) -> Result<(), CallErr> {
    if id == run.shard.id || run.extra.iter().any(|e| e.shard.id == id) {
        return Ok(());
    }
    let highest = highest_held(run);
    if id > highest + 1 && !run.journal.undoable {
        for gap in highest + 1..id {
            enter_shard(run, gap, false)?;
        }
    }
    if learn {
        run.entered |= shard_bit(id);
    }
    let shard = run.server.shards.get(id);
    let guard = match shard.try_lock() {
        Some(g) => Some(g),
        None if id > highest => Some(shard.lock_blocking()),
        None if run.journal.undoable => {
            // A shard is mostly busy with a command that ends in microseconds:
            // a short bounded wait spares the rollback (it cannot close a
            // cycle for longer than the wait).
            let waited = if run.journal.is_empty() { None } else { shard.try_lock_for(SHORT_OUT_OF_ORDER_WAIT) };
            if waited.is_none() {
                start_over(run);
                return Err(CallErr::Abort);
            }
            waited
        }
        None => {
            let deadline = std::time::Instant::now() + OUT_OF_ORDER_WAIT;
            let mut got = None;
            while got.is_none() && std::time::Instant::now() < deadline {
                got = shard.try_lock_for(std::time::Duration::from_millis(1));
            }
            got
        }
    };
    let Some(mut guard) = guard else {
        return Err(CallErr::Msg(SHARD_BUSY_AFTER_WRITE));
    };
    super::router::mark_busy(shard, run.function, run.started_ms, run.wrote);
    let data: *mut ShardData = &mut *guard;
    run.extra.push(Extra { shard, data, guard: Some(guard) });
    Ok(())
}

/// The script needs a busy shard below one it holds: its writes are taken
/// back and it is rerun with the shards `Run::entered` names.
#[cold]
fn start_over(run: &mut Run<'_>) {
    // Its calls are counted once, by the run that completes.
    run.tally.withdraw(run.server);
    if !run.journal.is_empty() {
        // Out of the Run while it runs, so that `held_data` can read the Run.
        let mut journal = std::mem::replace(&mut run.journal, super::undo::Journal::new());
        journal.roll_back(|id| held_data(run, id));
        run.journal = journal;
    }
    run.abort = Some(Abort::Widen);
}

/// A script whose writes cannot be taken back could not enter a shard below
/// one it holds in time (standalone mode). `prepare_effects` keeps such a
/// script from ever needing one; this bound stays in case it does.
const SHARD_BUSY_AFTER_WRITE: &str =
    "Script attempted to access a key on a busy shard after it wrote; its next runs enter that shard from the start";

/// The script's own copy of the caller's state, for connection-level
/// commands, in step with the script's database and RESP version.
fn conn_state<'r>(run: &'r mut Run<'_>) -> &'r mut ClientState {
    let caller = run.caller;
    let state = run.conn_state.get_or_insert_with(|| ClientState {
        info: caller.info.clone(),
        db: caller.db,
        resp: caller.resp,
        authenticated: true,
        acl: caller.acl.clone(),
        close_after_reply: false,
        reply_mode: Default::default(),
        cluster_asking: false,
        cluster_readonly: false,
        ldb: 0,
    });
    state.db = run.db;
    state.resp = run.resp;
    state
}

/// Runs the checked command through dispatch, on the script's shard.
fn run_through_dispatch(run: &mut Run<'_>, cmd: Command, argv: &[Bytes]) -> Reply {
    run.tally.restart();
    match cmd.spec.exec {
        Exec::Keyed(_) | Exec::AllShards(_) | Exec::Blocking(_) => {}
        // (The slot-routed CLUSTER subcommands answer "cluster support
        // disabled" on a server without cluster mode, wherever they run.)
        Exec::Routed(..) if run.server.cluster.is_none() => {}
        Exec::Routed(route, _) => match route(run.server, argv) {
            Err(e) => {
                // Counted as the session counts it.
                crate::commands::dispatch::rejected(run.server, cmd, &e);
                return e;
            }
            Ok(id) if id != run.shard.id => {
                let e = Reply::err(crate::protocol::errors::NON_LOCAL_KEY);
                crate::commands::dispatch::rejected(run.server, cmd, &e);
                return e;
            }
            Ok(_) => {}
        },
        Exec::Conn(_) => {
            let server = run.server;
            let mut ctx = ConnCtx { server, client: conn_state(run) };
            let r = dispatch::call_conn(&mut ctx, cmd, argv, Origin::Script);
            run.db = ctx.client.db;
            return r;
        }
        Exec::Container => {
            return match crate::commands::server::bare_container(cmd.spec.name) {
                Some(f) => {
                    let server = run.server;
                    f(&mut ConnCtx { server, client: conn_state(run) }, argv)
                }
                None => Reply::wrong_arity(cmd.spec.name),
            }
        }
        Exec::Session(_) => {
            let e = Reply::err(crate::protocol::errors::SCRIPT_DENIED);
            crate::commands::dispatch::rejected(run.server, cmd, &e);
            return e;
        }
    }
    // A command run on the script's shard(s).
    let reply = with_ctx(run, |ctx, tally| dispatch::call_inline(ctx, cmd, argv, tally));
    run.routes.clear();
    remember_script_keys(run, cmd);
    reply
}

/// Client-side caching of a script's reads, as Redis 7.0 does it: a
/// read-only command run by the script remembers the script's declared
/// keys (not the keys the command read) for a tracking caller.
#[inline(always)]
fn remember_script_keys(run: &mut Run<'_>, cmd: Command) {
    let tracking = run.caller.info.tracking.flags();
    if tracking == 0 || !cmd.spec.has(crate::commands::registry::flags::READONLY) || run.keys.is_empty() {
        return;
    }
    remember_keys_now(run, tracking);
}

#[cold]
#[inline(never)]
fn remember_keys_now(run: &mut Run<'_>, tracking: u32) {
    let keys = run.keys;
    with_ctx(run, |ctx, _| {
        let (server, client) = (ctx.server, ctx.client);
        crate::pubsub::tracking::remember(server, client, tracking, ctx.shards(), keys.iter())
    });
}

fn with_ctx<R>(run: &mut Run<'_>, f: impl FnOnce(&mut Ctx, &mut Tally) -> R) -> R {
    // SAFETY: `run.data` points at the ShardData the runner holds locked for
    // the whole script (see `vm::Vm::run`); the runner touches it only
    // through this pointer until the script returns, and the VM that is
    // running us was moved out of it, so this is the only live reference.
    let data = unsafe { &mut *run.data };
    if !run.extra.is_empty() {
        return with_entered(run, data, f);
    }
    let mut one = [data];
    let mut ctx = Ctx::new(run.server, &mut one, &run.caller.info, run.db, run.resp, Origin::Script);
    // The script's clock is fixed at its start (as in Redis).
    ctx.now = run.now;
    f(&mut ctx, &mut run.tally)
}

/// `with_ctx` for a script holding several shards (standalone mode): the
/// shards' list is built on the stack for up to four (a multi-shard
/// script's every call comes through here).
#[cold]
fn with_entered<R>(run: &mut Run<'_>, data: &mut ShardData, f: impl FnOnce(&mut Ctx, &mut Tally) -> R) -> R {
    let other = |run: &Run<'_>, i: usize| {
        let shard: *mut ShardData = run.extra[i].data;
        // SAFETY: each `extra` shard is held (by the runner or by the guard
        // in `Extra`) until the script returns, and only reached through
        // this pointer meanwhile; each is taken once per call, and the
        // shards are distinct, so the references are.
        unsafe { &mut *shard }
    };
    match run.extra.len() {
        1 => {
            let mut all = [data, other(run, 0)];
            with_shards(run, &mut all, f)
        }
        2 => {
            let mut all = [data, other(run, 0), other(run, 1)];
            with_shards(run, &mut all, f)
        }
        3 => {
            let mut all = [data, other(run, 0), other(run, 1), other(run, 2)];
            with_shards(run, &mut all, f)
        }
        n => {
            let mut all: Vec<&mut ShardData> = Vec::with_capacity(n + 1);
            all.push(data);
            for i in 0..n {
                all.push(other(run, i));
            }
            with_shards(run, &mut all, f)
        }
    }
}

fn with_shards<R>(run: &mut Run<'_>, all: &mut [&mut ShardData], f: impl FnOnce(&mut Ctx, &mut Tally) -> R) -> R {
    let mut ctx = Ctx::new(run.server, all, &run.caller.info, run.db, run.resp, Origin::Script)
        .with_routes(run.routes.as_slice());
    ctx.now = run.now;
    f(&mut ctx, &mut run.tally)
}
