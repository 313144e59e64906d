//! Where a script runs (scripting.md's slot rules) and the SCRIPT command.

use super::cache::{self, Flags, Script};
use super::call::{shard_bit, Abort, Extra, Run};
use super::vm::Vm;
use crate::commands::registry::Command;
use crate::net::client::ClientState;
use crate::protocol::Reply;
use crate::server::Server;
use crate::session::Session;
use crate::shard::{slot, Shard, ShardData};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
        return Err(Reply::err(crate::protocol::errors::NUMKEYS_TOO_MANY));
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
    /// Queued in MULTI and run by EXEC (Redis words the OOM refusal differently there).
    pub in_exec: bool,
    /// What the run's reply adds to `failed_calls`, its errors counted
    /// (see `call::Run::failed_calls`; `u32::MAX`: none); for `settle`.
    pub failed_calls: std::sync::atomic::AtomicU32,
}

impl Request<'_> {
    /// The `failed_calls` of the last run, once its reply was built.
    pub fn failed_calls(&self) -> Option<u32> {
        let n = self.failed_calls.load(Ordering::Relaxed);
        (n != u32::MAX).then_some(n)
    }
}

/// `Request::failed_calls` before any run.
pub fn not_run() -> std::sync::atomic::AtomicU32 {
    std::sync::atomic::AtomicU32::new(u32::MAX)
}

/// EVAL*'s checks before it runs anywhere: the script, whether it is
/// already in the cache, and its split arguments.
pub struct Eval<'a> {
    pub script: Arc<Script>,
    pub cached: bool,
    pub keys: &'a [Bytes],
    pub argv: &'a [Bytes],
    pub read_only: bool,
}

impl Eval<'_> {
    pub fn request(&self, in_exec: bool) -> Request<'_> {
        Request {
            job: Job::Script(&self.script, self.cached),
            keys: self.keys,
            argv: self.argv,
            flags: self.script.flags,
            read_only: self.read_only,
            in_exec,
            failed_calls: not_run(),
        }
    }
}

pub fn prepare_eval<'a>(server: &Server, cmd: Command, args: &'a [Bytes]) -> Result<Eval<'a>, Reply> {
    let by_sha = cmd.spec.name.starts_with("evalsha");
    let ro = cmd.spec.name.ends_with("_ro");
    if by_sha && args[1].len() != 40 {
        // No SHA1 has another length: Redis answers before anything else.
        return Err(Reply::error(crate::protocol::errors::NOSCRIPT));
    }
    let (keys, argv) = split_keys(args)?;
    let (script, cached) = if by_sha {
        match cache::sha_arg(&args[1]).and_then(|s| server.scripts.get(&s)) {
            Some(s) => (s, true),
            None => return Err(Reply::error(crate::protocol::errors::NOSCRIPT)),
        }
    } else {
        let sha = cache::sha1_hex(&args[1]);
        match server.scripts.get(&sha) {
            Some(s) => (s, true),
            None => match cache::parse_shebang(&args[1]) {
                Ok(flags) => (Arc::new(Script { sha, source: args[1].clone(), flags }), false),
                Err(e) => return Err(Reply::err(e)),
            },
        }
    };
    let flags = script.flags;
    if ro && !flags.compat && !flags.no_writes {
        // Redis compiles and caches the script before it looks at its
        // flags: a later EVALSHA finds it, a compile error comes first.
        if !cached {
            compile_and_cache(server, script)?;
        }
        return Err(Reply::err(crate::protocol::errors::RO_SCRIPT_WRITES));
    }
    Ok(Eval { script, cached, keys, argv, read_only: ro || flags.no_writes })
}

pub async fn eval(conn: &mut Session, cmd: Command, args: &[Bytes]) -> Reply {
    if conn.client.ldb != super::ldb::OFF {
        return super::ldb::eval(conn, cmd, args).await;
    }
    let (reply, failed_calls) = match prepare_eval(&conn.server, cmd, args) {
        Ok(e) => {
            let req = e.request(false);
            let reply = run_routed(conn, &req).await;
            (reply, req.failed_calls())
        }
        Err(r) => (r, None),
    };
    super::settle(&conn.server, cmd, &reply, failed_calls);
    reply
}

/// Runs `req` on the shard its keys pick, restarting a keyless script once
/// on the shard of the first key it touches.
pub async fn run_routed(conn: &mut Session, req: &Request<'_>) -> Reply {
    let server = conn.server.clone();
    if server.standalone {
        return run_standalone(conn, req).await;
    }
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
        let began = crate::util::clock_ns();
        let (reply, redirect) = run_on_shard(&server, shard, &mut guard, Vec::new(), &conn.client, req, start);
        drop(guard);
        shard.stats.ran(1, crate::util::clock_ns().saturating_sub(began));
        match redirect {
            Restart::On(to) if may_redirect => {
                shard_id = to;
                may_redirect = false;
            }
            _ => return reply,
        }
    }
}

/// What `job` is known by in the learned shard sets: its SHA or function name.
fn job_key<'a>(req: &'a Request<'_>) -> &'a [u8] {
    match &req.job {
        Job::Script(script, _) => &script.sha,
        Job::Function(f) => f.name.as_bytes(),
    }
}

/// The shard ids of `mask` (`Run::entered`'s encoding), ascending.
fn mask_ids(mask: u64, n: usize) -> Vec<usize> {
    (0..n).filter(|&i| mask & shard_bit(i) != 0).collect()
}

/// Restarts a standalone-mode script may take before it enters every shard.
const MAX_WIDENINGS: u32 = 2;

/// `run_routed` in standalone mode: the script enters, in ascending order,
/// the shards of its declared keys plus those its earlier runs needed
/// (`ScriptCache::learned`); one shard is the cluster-mode path. Keys it
/// touches on other shards are entered as it goes (`call::enter`); when that
/// would wait out of order before it wrote, it is rerun with the larger set.
async fn run_standalone(conn: &mut Session, req: &Request<'_>) -> Reply {
    let server = conn.server.clone();
    let n = server.shards.len();
    let home = conn.home_shard();
    let mut mask = server.scripts.learned(job_key(req));
    for k in req.keys {
        mask |= shard_bit(server.shards.for_key(k));
    }
    let unbound = req.keys.is_empty();
    let mut may_redirect = mask == 0;
    if mask == 0 {
        mask = shard_bit(home);
    }
    let mut widenings = 0;
    loop {
        let ids = mask_ids(mask, n);
        let mut guards = match server.shards.lock_many(&ids, server.busy_threshold()).await {
            Ok(g) => g,
            Err(busy) => return busy.reply(),
        };
        // The lowest shard's VM runs it (a keyless script's set is its
        // caller's home shard). Not the caller's home among several: the
        // same scripts, called over connections with different home shards,
        // were then compiled, collected and kept warm in every VM, which
        // cost BullMQ about a tenth of the server's CPU on two shards.
        let shard = server.shards.get(ids[0]);
        let function = matches!(req.job, Job::Function(_));
        let (data, extra) = split_home(&server, guards.iter_mut().map(|g| &mut **g), 0, function);
        let Some(data) = data else {
            return Reply::err(crate::protocol::errors::INTERNAL_ROUTING);
        };
        let start = Start { slot: None, unbound, may_redirect };
        let began = crate::util::clock_ns();
        let (reply, restart) = run_on_shard(&server, shard, data, extra, &conn.client, req, start);
        drop(guards);
        let busy = crate::util::clock_ns().saturating_sub(began);
        for &id in &ids {
            if id != shard.id {
                unmark_busy(server.shards.get(id));
            }
            server.shards.get(id).stats.ran(1, busy);
        }
        match restart {
            Restart::On(to) if may_redirect => mask = shard_bit(to),
            Restart::Widen(more) => {
                widenings += 1;
                mask |= more;
                if widenings > MAX_WIDENINGS {
                    mask = u64::MAX;
                }
            }
            _ => return reply,
        }
        may_redirect = false;
    }
}

/// Marks `shard`, held by a script running on another shard's VM
/// (standalone mode), as busy with that script: waiters wait for it as for
/// a script (and answer BUSY past the threshold), SCRIPT KILL sees it.
/// The entered shards of a multi-shard script: the one at `home` runs the
/// script's VM, the others are reached through `Extra` and marked busy with
/// it (waiters get BUSY past the threshold, SCRIPT KILL sees its writes).
fn split_home<'a>(
    server: &'a Server,
    entered: impl Iterator<Item = &'a mut ShardData>,
    home: usize,
    function: bool,
) -> (Option<&'a mut ShardData>, Vec<Extra<'a>>) {
    let now = crate::storage::now_ms();
    let mut data = None;
    let mut extra = Vec::new();
    for (i, d) in entered.enumerate() {
        if i == home {
            data = Some(d);
        } else {
            let other = server.shards.get(d.id);
            mark_busy(other, function, now, false);
            extra.push(Extra { shard: other, data: d as *mut ShardData, guard: None });
        }
    }
    (data, extra)
}

pub fn mark_busy(shard: &Shard, function: bool, since: u64, wrote: bool) {
    shard.script_kill.store(false, Ordering::SeqCst);
    shard.script_wrote.store(wrote, Ordering::SeqCst);
    shard.script_is_function.store(function, Ordering::SeqCst);
    shard.script_since.store(since.max(1), Ordering::Release);
}

/// Ends `mark_busy`.
pub fn unmark_busy(shard: &Shard) {
    shard.script_since.store(0, Ordering::Release);
    shard.script_kill.store(false, Ordering::SeqCst);
    shard.script_done.notify_waiters();
}

/// The shards EXEC must enter for a queued EVAL*/FCALL*: the owner of its
/// declared keys, or every shard for a keyless script (it may move to the
/// shard of the first key it touches). None when routing will refuse it.
pub fn shards_for_queued(server: &Server, cmd: Command, args: &[Bytes]) -> Vec<usize> {
    let Ok((keys, _)) = split_keys(args) else {
        return Vec::new();
    };
    // The script's own flags are looked up at EXEC; the widest rule here.
    if server.standalone {
        // Its undeclared keys may live anywhere, and EXEC cannot restart it.
        return (0..server.shards.len()).collect();
    }
    let wide = Flags { allow_cross_slot: true, ..Flags::default() };
    match route(server, keys, &wide) {
        Ok(Some((shard, _))) => vec![shard],
        Ok(None) if is_runner(cmd) => (0..server.shards.len()).collect(),
        _ => Vec::new(),
    }
}

/// EVAL*, EVALSHA*, FCALL* (the commands that run code on a shard).
pub fn is_runner(cmd: Command) -> bool {
    matches!(cmd.spec.name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro")
}

/// `run_routed` for EXEC: every shard the request may need is already
/// entered (`refs`), so nothing here locks or waits. A keyless script starts
/// on `home` (or the first entered shard) and may move once to another
/// entered shard.
pub fn run_entered(
    server: &Arc<Server>,
    client: &ClientState,
    home: usize,
    refs: &mut [&mut ShardData],
    req: &Request<'_>,
) -> Reply {
    if server.standalone {
        return run_entered_standalone(server, client, home, refs, req);
    }
    let (mut shard_id, slot) = match route(server, req.keys, &req.flags) {
        Ok(Some((shard, slot))) => (shard, slot),
        Ok(None) if refs.iter().any(|d| d.id == home) => (home, None),
        Ok(None) => match refs.first() {
            Some(d) => (d.id, None),
            None => return Reply::err(crate::protocol::errors::INTERNAL_ROUTING),
        },
        Err(r) => return r,
    };
    let unbound = req.keys.is_empty();
    let mut may_redirect = unbound;
    loop {
        let Some(data) = refs.iter_mut().find(|d| d.id == shard_id) else {
            return Reply::err(crate::protocol::errors::NON_LOCAL_KEY);
        };
        let start = Start { slot, unbound, may_redirect };
        let (reply, redirect) = run_on_shard(server, server.shards.get(shard_id), data, Vec::new(), client, req, start);
        match redirect {
            Restart::On(to) if may_redirect && refs.iter().any(|d| d.id == to) => {
                shard_id = to;
                may_redirect = false;
            }
            Restart::No => return reply,
            _ => return Reply::err(crate::protocol::errors::NON_LOCAL_KEY),
        }
    }
}

/// `run_entered` in standalone mode: EXEC (or AOF loading) entered every
/// shard; the script runs on its first declared key's shard (else `home`)
/// and sees all of them.
fn run_entered_standalone(
    server: &Arc<Server>,
    client: &ClientState,
    home: usize,
    refs: &mut [&mut ShardData],
    req: &Request<'_>,
) -> Reply {
    let want = req.keys.first().map_or(home, |k| server.shards.for_key(k));
    let hp = refs.iter().position(|d| d.id == want).unwrap_or(0);
    let function = matches!(req.job, Job::Function(_));
    let (data, extra) = split_home(server, refs.iter_mut().map(|d| &mut **d), hp, function);
    let Some(data) = data else {
        return Reply::err(crate::protocol::errors::INTERNAL_ROUTING);
    };
    let id = data.id;
    let start = Start { slot: None, unbound: req.keys.is_empty(), may_redirect: false };
    let (reply, restart) = run_on_shard(server, server.shards.get(id), data, extra, client, req, start);
    for d in refs.iter() {
        if d.id != id {
            unmark_busy(server.shards.get(d.id));
        }
    }
    match restart {
        Restart::No => reply,
        _ => Reply::err(crate::protocol::errors::NON_LOCAL_KEY),
    }
}

/// Why a script run ended without its reply being the answer.
pub enum Restart {
    No,
    /// Rerun on this shard (a keyless script's first key lives there).
    On(usize),
    /// Rerun with these shards entered as well (standalone mode).
    Widen(u64),
}
pub struct Start {
    pub slot: Option<u16>,
    pub unbound: bool,
    pub may_redirect: bool,
}

/// Marks the shard busy with a script for as long as it lives.
struct Busy<'a>(&'a Shard);

impl<'a> Busy<'a> {
    fn new(shard: &'a Shard, function: bool, now: u64) -> Busy<'a> {
        shard.script_kill.store(false, Ordering::SeqCst);
        shard.script_wrote.store(false, Ordering::SeqCst);
        shard.script_is_function.store(function, Ordering::SeqCst);
        shard.script_since.store(now.max(1), Ordering::Release);
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
pub(super) fn run_on_shard<'a>(
    server: &'a Arc<Server>,
    shard: &'a Shard,
    data: &mut ShardData,
    extra: Vec<Extra<'a>>,
    client: &'a ClientState,
    req: &Request<'_>,
    start: Start,
) -> (Reply, Restart) {
    let pre_oom = match oom_at_start(server, data, req) {
        Ok(over) => over,
        Err(r) => return (r, Restart::No),
    };
    let mut vm = match super::ShardScripting::of(&mut data.scripting).take_vm(server) {
        Ok(vm) => vm,
        Err(r) => return (r, Restart::No),
    };
    let raw = data as *mut ShardData;
    let (reply, redirect) = run_with_vm(server, shard, raw, extra, &mut vm, client, req, start, pre_oom);
    super::ShardScripting::of(&mut data.scripting).put_vm(vm);
    crate::pubsub::tracking::end_run(server, &mut [data], client.id());
    (reply, redirect)
}

/// Redis 7.0's memory rule at script start: over `maxmemory` (after trying
/// to evict), a script that declared flags and may write is refused unless
/// it has `allow-oom`. Ok(true): over the limit, so an eval-compat script
/// fails on its first denyoom command (see `call::execute`).
fn oom_at_start(server: &Server, data: &mut ShardData, req: &Request<'_>) -> Result<bool, Reply> {
    if server.config.maxmemory.load(Ordering::Relaxed) == 0 {
        return Ok(false);
    }
    let over = crate::shard::eviction::check_oom_for(server, true, &mut [data]).is_some();
    let f = req.flags;
    if over && !f.compat && !f.allow_oom && !f.no_writes {
        return Err(if req.in_exec {
            Reply::error("OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'")
        } else {
            crate::storage::memory::oom_reply()
        });
    }
    Ok(over)
}

#[allow(clippy::too_many_arguments)]
fn run_with_vm<'a>(
    server: &'a Arc<Server>,
    shard: &'a Shard,
    data: *mut ShardData,
    extra: Vec<Extra<'a>>,
    vm: &mut Vm,
    client: &'a ClientState,
    req: &Request<'_>,
    start: Start,
    pre_oom: bool,
) -> (Reply, Restart) {
    let now = crate::storage::now_ms();
    let function = matches!(req.job, Job::Function(_));
    // Standalone mode: errors of a run taken back are counted out with it.
    let _error_take_back = server.standalone.then(crate::stats::ErrorTakeBack::begin);
    let mut run = Run {
        server,
        shard,
        data,
        extra,
        entered: 0,
        function,
        caller: client,
        keys: req.keys,
        conn_state: None,
        db: client.db,
        resp: 2,
        now,
        read_only: req.read_only,
        flags: req.flags,
        slot: start.slot,
        unbound: start.unbound,
        may_redirect: start.may_redirect,
        wrote: false,
        journal: super::undo::Journal::new(),
        pre_oom,
        abort: None,
        started_ms: now,
        handed_off: false,
        name: match &req.job {
            Job::Script(script, _) => format!("f_{}", String::from_utf8_lossy(&script.sha)),
            Job::Function(f) => f.name.clone(),
        },
        slow_logged: false,
        args_buf: Vec::new(),
        routes: crate::commands::KeyRoutes::default(),
        reply: Reply::Nil,
        failed_calls: None,
        // Standalone mode: a run may be taken back and run again.
        tally: if server.standalone {
            crate::commands::dispatch::Tally::nested_retractable()
        } else {
            crate::commands::dispatch::Tally::nested()
        },
    };
    let reply = match &req.job {
        Job::Script(script, cached) => {
            if let Err(r) = vm.ensure_compiled(script) {
                return (r, Restart::No);
            }
            if !cached {
                server.scripts.insert((*script).clone());
            }
            let _busy = Busy::new(shard, false, now);
            // The script's writes reach the stream as one unit.
            let _unit = crate::propagate::Unit::begin_if_active(&server.propagation);
            vm.run_script(&mut run, &script.sha, req.keys, req.argv)
        }
        Job::Function(fref) => {
            let f = match super::functions::load_into(server, vm, &fref.name) {
                Ok(f) => f,
                Err(r) => return (r, Restart::No),
            };
            let _busy = Busy::new(shard, true, now);
            let _unit = crate::propagate::Unit::begin_if_active(&server.propagation);
            vm.run_function(&mut run, &f, req.keys, req.argv, &fref.name)
        }
    };
    req.failed_calls.store(run.failed_calls.unwrap_or(u32::MAX), Ordering::Relaxed);
    run.tally.publish(server, &client.info);
    // SELECT inside a script only affected the script.
    client.info.db.store(client.db, Ordering::Relaxed);
    // Shards the script entered itself: released, and learned for its next runs.
    for e in run.extra.drain(..) {
        if let Some(guard) = e.guard {
            drop(guard);
            unmark_busy(e.shard);
        }
    }
    if run.entered != 0 {
        server.scripts.learn(job_key(req), run.entered);
    }
    match run.abort {
        Some(Abort::Redirect(to)) => (reply, Restart::On(to)),
        Some(Abort::Widen) => (reply, Restart::Widen(run.entered)),
        _ => (reply, Restart::No),
    }
}

/// SCRIPT LOAD | EXISTS | FLUSH | KILL | HELP.
pub fn script(server: &Server, sub: &str, args: &[Bytes]) -> Reply {
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
    match compile_and_cache(server, script) {
        Ok(()) => Reply::Bulk(Bytes::copy_from_slice(&sha)),
        Err(r) => r,
    }
}

/// Compiles `script` on the validation VM and adds it to the cache.
fn compile_and_cache(server: &Server, script: Arc<Script>) -> Result<(), Reply> {
    with_checker(server, |vm| super::vm::compile(&vm.lua, script.body(), "@user_script").map(|_| ()))
        .map_err(|e| Reply::err(format!("Error compiling script (new function): {e}")))?;
    server.scripts.insert(script);
    Ok(())
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
    crate::commands::help::reply("SCRIPT", crate::commands::help::SCRIPT)
}
