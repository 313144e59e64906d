//! The one execution path: every command that runs, whoever runs it (a
//! client, EXEC, `redis.call`, a blocked client's retry, AOF loading), runs
//! through `call` (shards entered) or `call_conn` (no shard needed).
//!
//! In order, a call:
//! 1. refuses what must not run now (`denyoom` over `maxmemory`); the
//!    session has already authorized it (`authorize`), before routing, so an
//!    unauthenticated client learns nothing about keys;
//! 2. runs the handler, which records what it changed in `ctx.effects`;
//! 3. times and counts it (commandstats, errorstats, latency percentiles,
//!    SLOWLOG, LATENCY events, MONITOR);
//! 4. drains its effects: `expired` notifications for keys it reaped, the
//!    dirty counter, and the propagated write stream (`crate::propagate`).
//!
//! WATCH dirtying, keyspace notifications and waking blocked clients happen
//! as the handler writes (`Ctx::written`), still under the shard locks.

use super::registry::Command;
use super::spec::{flags, Exec};
use super::{ConnCtx, Ctx};
use crate::net::client::{ClientInfo, ClientState};
use crate::protocol::Reply;
use crate::server::Server;
use crate::stats::latency::HistogramRef;
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

/// Who runs a command. Decides which checks apply and where its effects go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin {
    /// A client's own command.
    Client,
    /// A command queued in MULTI, run by EXEC.
    Exec,
    /// `redis.call` / `redis.pcall` from a script or function.
    Script,
    /// A blocked client's retry after a write woke it.
    Blocked,
    /// Replaying the append-only file at start-up.
    AofLoad,
}

pub use crate::stats::monitor::Span;
pub use crate::util::clock_ns;

/// The clock and the statistics of consecutive calls by one caller (a
/// same-shard run of a pipeline, a transaction, a script). Statistics are
/// published when the command changes and when the run ends, so a pipeline
/// of N SETs costs a few atomic adds instead of 4N; one clock reading serves
/// as the end of one call and the start of the next.
pub struct Tally {
    /// When the next call starts (the previous one's end), in ns since the epoch.
    clock: u64,
    cmd: Option<Command>,
    calls: u64,
    usec: u64,
    failed: u64,
    dirty: u64,
    /// This thread's latency histogram of the current command, looked up
    /// once per run of that command (None: latency tracking is off).
    histogram: Option<HistogramRef>,
    /// The commands run inside another one (EXEC's queued commands, a
    /// script's calls): the client's last command (CLIENT LIST `cmd=`)
    /// stays the outer one, as in Redis.
    nested: bool,
    /// A run that may be taken back (a standalone-mode script that starts
    /// over): what it publishes is also noted in `RETRACTABLE`, so that
    /// `withdraw` can take it out again.
    retractable: bool,
}

thread_local! {
    /// What the retractable run on this thread published so far, per command
    /// (id, calls, usec, failed). A thread runs one script at a time, and
    /// scripts do not nest. Kept out of `Tally`, which every call path
    /// carries, so that the others pay nothing for it.
    static RETRACTABLE: std::cell::RefCell<Vec<(usize, u64, u64, u64)>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Tally {
    /// A run starting now.
    pub fn start() -> Tally {
        Tally::at(clock_ns())
    }

    /// The next call starts now (a script's command: the Lua code between
    /// two calls is not theirs).
    pub fn restart(&mut self) {
        self.clock = clock_ns();
    }

    /// When the last call ended (the run's start before any), ns since the epoch.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// A run starting at `clock` (ns since the epoch), read by the caller.
    pub fn at(clock: u64) -> Tally {
        Tally {
            clock,
            cmd: None,
            calls: 0,
            usec: 0,
            failed: 0,
            dirty: 0,
            histogram: None,
            nested: false,
            retractable: false,
        }
    }

    /// A run of the commands of another command (EXEC, a script) starting
    /// now: they do not become the client's last command.
    pub fn nested() -> Tally {
        Tally { nested: true, ..Tally::start() }
    }

    /// `nested`, for a run that may be taken back and run again (see
    /// `withdraw`): Redis counts a script's commands once.
    pub fn nested_retractable() -> Tally {
        RETRACTABLE.with_borrow_mut(Vec::clear);
        Tally { retractable: true, ..Tally::nested() }
    }

    /// Takes back everything this run counted (calls, their time and
    /// failures, the dirty count, and with an `ErrorTakeBack` alive its
    /// errors and refusals): the run was undone and runs again. Only for a
    /// `nested_retractable` tally; others keep their counts.
    pub fn withdraw(&mut self, server: &Server) {
        if !self.retractable {
            return;
        }
        let stats = &server.stats;
        stats.take_back_errors();
        RETRACTABLE.with_borrow_mut(|published| {
            use crate::stats::take_back;
            for (id, calls, usec, failed) in published.drain(..) {
                take_back(&stats.commands_processed, calls);
                let s = &stats.commands[id];
                take_back(&s.calls, calls);
                take_back(&s.usec, usec);
                take_back(&s.failed, failed);
            }
        });
        (self.cmd, self.calls, self.usec, self.failed, self.dirty) = (None, 0, 0, 0, 0);
    }

    /// Notes what a retractable run published (see `withdraw`).
    #[cold]
    fn note_published(&self, id: usize) {
        RETRACTABLE.with_borrow_mut(|published| match published.iter_mut().find(|p| p.0 == id) {
            // One entry per command: as many as the script uses commands.
            Some(p) => (p.1, p.2, p.3) = (p.1 + self.calls, p.2 + self.usec, p.3 + self.failed),
            None => published.push((id, self.calls, self.usec, self.failed)),
        });
    }

    #[inline(always)]
    fn add(&mut self, server: &Server, client: &ClientInfo, cmd: Command, took_ns: u64, failed: bool, latency: bool) {
        if self.cmd.map(|c| c.id) != Some(cmd.id) {
            self.switch_command(server, client, cmd, latency);
        }
        self.calls += 1;
        self.usec += took_ns / 1000;
        self.failed += failed as u64;
        if let Some(h) = self.histogram {
            h.get().add(took_ns);
        }
    }

    /// A call of another command than the previous one: publish the
    /// previous command's counts and look up this one's histogram.
    #[inline(never)]
    fn switch_command(&mut self, server: &Server, client: &ClientInfo, cmd: Command, latency: bool) {
        self.flush_command(server, client);
        self.cmd = Some(cmd);
        self.histogram = if latency { server.observers.latency.histogram(cmd.id) } else { None };
    }

    fn flush_command(&mut self, server: &Server, client: &ClientInfo) {
        let Some(cmd) = self.cmd.take() else {
            return;
        };
        let stats = &server.stats;
        stats.commands_processed.fetch_add(self.calls, Relaxed);
        let s = &stats.commands[cmd.id];
        s.calls.fetch_add(self.calls, Relaxed);
        s.usec.fetch_add(self.usec, Relaxed);
        if self.failed > 0 {
            s.failed.fetch_add(self.failed, Relaxed);
        }
        if !self.nested {
            client.last_cmd.store(cmd.id, Relaxed);
        }
        if self.retractable {
            self.note_published(cmd.id);
        }
        (self.calls, self.usec, self.failed) = (0, 0, 0);
    }

    /// Publishes what the run counted. Call once the run ends.
    pub fn publish(&mut self, server: &Server, client: &ClientInfo) {
        self.flush_command(server, client);
        if self.dirty > 0 {
            server.stats.dirty.fetch_add(self.dirty, Relaxed);
            self.dirty = 0;
        }
    }
}

/// Counts a command refused before it ran (`rejected_calls`) and its error.
pub fn rejected(server: &Server, cmd: Command, reply: &Reply) {
    server.stats.count_rejected(cmd.id);
    if let Some(text) = reply.error_text() {
        server.stats.count_error(text);
    }
}

/// Authorization of a client's command, before routing: `NOAUTH` until
/// the client authenticated (when the default user needs a password), then
/// the ACL check of the command, its keys and channels. `in_multi`: the
/// command is being queued in MULTI. A user allowed everything (the
/// default user) costs one flag test; a command its user's one selector
/// allows with every key matching a pattern, a short inline check.
#[inline]
pub fn authorize(
    server: &Server,
    client: &ClientState,
    cmd: Command,
    args: &[Bytes],
    in_multi: bool,
) -> Result<(), Reply> {
    if client.authenticated && (client.acl.unrestricted() || client.acl.rules().quick_allows(cmd.id, args)) {
        return Ok(());
    }
    authorize_checked(server, client, cmd, args, in_multi)
}

#[inline(never)]
fn authorize_checked(
    server: &Server,
    client: &ClientState,
    cmd: Command,
    args: &[Bytes],
    in_multi: bool,
) -> Result<(), Reply> {
    if !client.authenticated && !cmd.spec.has(flags::NO_AUTH) && server.acl.auth_required() {
        let reply = Reply::error(crate::protocol::errors::NOAUTH);
        rejected(server, cmd, &reply);
        return Err(reply);
    }
    // Redis refuses a no-multi command inside MULTI before looking at ACLs.
    if in_multi && cmd.spec.has(flags::NO_MULTI) {
        return Ok(());
    }
    let context = if in_multi { AclContext::Multi } else { AclContext::Toplevel };
    // The client's last command (CLIENT LIST, the ACL log's client-info)
    // is the one being refused, as in Redis.
    client.info.last_cmd.store(cmd.id, Relaxed);
    match acl_check(server, client, cmd, args, context) {
        Ok(()) => Ok(()),
        Err(denied) => {
            let reply = match denied {
                Denied::Command => {
                    Reply::error(format!("NOPERM this user has no permissions to run the '{}' command", cmd.spec.name))
                }
                Denied::Key(_) => {
                    Reply::error("NOPERM this user has no permissions to access one of the keys used as arguments")
                }
                Denied::Channel(_) => {
                    Reply::error("NOPERM this user has no permissions to access one of the channels used as arguments")
                }
            };
            rejected(server, cmd, &reply);
            Err(reply)
        }
    }
}

pub use crate::acl::log::Context as AclContext;
pub use crate::acl::Denied;

/// The ACL check every command passes, whoever runs it (a client, EXEC for
/// each queued command, `redis.call` against the script's caller): Redis's
/// rules for the command, its keys (read or write, per its key specs) and
/// its channels. A refusal is recorded in the ACL log.
#[inline(always)]
pub fn acl_check(
    server: &Server,
    client: &ClientState,
    cmd: Command,
    args: &[Bytes],
    context: AclContext,
) -> Result<(), Denied> {
    // The request path's short check first (what `authorize` does): each
    // `redis.call` of a script and each queued command at EXEC passes here.
    if client.acl.unrestricted() || client.acl.rules().quick_allows(cmd.id, args) {
        return Ok(());
    }
    acl_check_rules(server, client, cmd, args, context)
}

/// `acl_check` for a user with rules.
#[inline(never)]
fn acl_check_rules(
    server: &Server,
    client: &ClientState,
    cmd: Command,
    args: &[Bytes],
    context: AclContext,
) -> Result<(), Denied> {
    let Err(denied) = client.acl.rules().check(cmd.id, args) else {
        return Ok(());
    };
    use crate::acl::log::Reason;
    let (reason, object) = match denied {
        Denied::Command => (Reason::Command, Bytes::from_static(cmd.spec.name.as_bytes())),
        Denied::Key(p) => (Reason::Key, args[p].clone()),
        Denied::Channel(p) => (Reason::Channel, args[p].clone()),
    };
    acl_log(server, &client.info, reason, context, object, client.acl.name().clone());
    Err(denied)
}

/// Adds an entry to the ACL log for `info`'s client.
pub fn acl_log(
    server: &Server,
    info: &ClientInfo,
    reason: crate::acl::log::Reason,
    context: AclContext,
    object: Bytes,
    username: Bytes,
) {
    let now = crate::storage::now_ms();
    let entry = crate::acl::log::Entry {
        count: 1,
        reason,
        context,
        object,
        username,
        ctime: now,
        client_info: crate::commands::connection::client_line(info, now),
    };
    let max = server.config.get_i64("acllog-max-len").max(0) as usize;
    server.acl.log(entry, max);
}

/// EXEC's reply for a queued command the user may no longer run.
pub fn exec_denied(server: &Server, denied: Denied) -> Reply {
    let why = match denied {
        Denied::Command => "no permission to execute the command or subcommand",
        Denied::Key(_) => "no permission to touch the specified keys",
        Denied::Channel(_) => "no permission to access one of the channels used as arguments",
    };
    let reply = Reply::error(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. \
         This command is no longer allowed for the following reason: {why}"
    ));
    if let Some(text) = reply.error_text() {
        server.stats.count_error(text);
    }
    reply
}

/// The error `redis.call` raises for a command the script's user may not run.
pub fn script_denied(denied: Denied) -> &'static str {
    match denied {
        Denied::Command => "The user executing the script can't run this command or subcommand",
        Denied::Key(_) => {
            "The user executing the script can't access at least one of the keys mentioned in the \
                           command arguments"
        }
        Denied::Channel(_) => "The user executing the script can't publish to the channel mentioned in the command",
    }
}

/// The persistence state's refusals, after authorization: `MISCONF` for a
/// write (and PING, as Redis) while the last background save failed, and
/// `LOADING` for a command without the `loading` flag while the dataset loads.
#[inline]
pub fn persistence_gate(server: &Server, cmd: Command, args: &[Bytes]) -> Result<(), Reply> {
    let p = &server.persist;
    if p.misconf.load(Relaxed) && (cmd.spec.name == "ping" || crate::scripting::writes(server, cmd, args)) {
        let reply = Reply::error(crate::protocol::errors::MISCONF);
        rejected(server, cmd, &reply);
        return Err(reply);
    }
    if server.replicas.read_only_replica() && crate::scripting::writes(server, cmd, args) {
        let reply = Reply::error("READONLY You can't write against a read only replica.");
        rejected(server, cmd, &reply);
        return Err(reply);
    }
    if p.loading.load(Relaxed) && !cmd.spec.has(flags::LOADING) {
        let reply = Reply::error(crate::protocol::errors::LOADING);
        rejected(server, cmd, &reply);
        return Err(reply);
    }
    Ok(())
}

/// Cluster mode: where a client's keyed command must go instead of running
/// here (Redis's getNodeByQuery): `CROSSSLOT` for keys in several slots,
/// `MOVED` to the slot's owner, `ASK`/`TRYAGAIN` while the slot migrates,
/// `CLUSTERDOWN`. Keys are looked up only for a migrating or importing
/// slot. EXEC's commands were checked as they were queued; a script's
/// declared keys are checked here like any command's.
#[inline(never)]
pub fn cluster_gate(
    server: &Server,
    cluster: &crate::cluster::Cluster,
    client: &mut ClientState,
    cmd: Command,
    args: &[Bytes],
    in_multi: bool,
) -> Result<(), Reply> {
    let asking = client.cluster_asking || cmd.spec.has(flags::ASKING);
    if client.cluster_asking && !in_multi && cmd.spec.name != "asking" {
        client.cluster_asking = false;
    }
    // The keys' one slot; the common key spec (one key, or a range) is
    // walked without building a vector of positions.
    let (slot, nkeys) = match cmd.spec.keys {
        super::spec::KeySpec::None => return Ok(()),
        super::spec::KeySpec::Range { first, last, step } => {
            let argc = args.len() as i32;
            let last = if last < 0 { argc + last } else { last }.min(argc - 1);
            if first < 0 || first > last {
                return Ok(());
            }
            let keys = (first as usize..=last as usize).step_by(step.max(1) as usize);
            let slot = crate::shard::slot::key_slot(&args[first as usize]);
            let mut n = 1;
            for p in keys.skip(1) {
                if crate::shard::slot::key_slot(&args[p]) != slot {
                    return Err(cluster_crossslot(server, cmd));
                }
                n += 1;
            }
            (slot, n)
        }
        _ => {
            let positions = cmd.spec.key_positions(args);
            let Some(&first) = positions.first() else {
                return Ok(());
            };
            let slot = crate::shard::slot::key_slot(&args[first]);
            if positions.iter().any(|&p| crate::shard::slot::key_slot(&args[p]) != slot) {
                return Err(cluster_crossslot(server, cmd));
            }
            (slot, positions.len())
        }
    };
    let db = client.db;
    let mut count_keys = || {
        if cmd.spec.name == "migrate" {
            return (0, 0);
        }
        let positions = cmd.spec.key_positions(args);
        let shard = server.shards.get(crate::shard::slot::slot_shard(slot, server.shards.len()));
        let Some(mut data) = shard.try_lock_for(std::time::Duration::from_millis(100)) else {
            // Busy with a script: the client retries.
            return (1, 1);
        };
        let now = crate::storage::now_ms();
        let present = positions.iter().filter(|&&p| data.dbs[db].contains(&args[p], now)).count();
        (present, positions.len() - present)
    };
    let shard_channel = matches!(cmd.spec.name, "ssubscribe" | "sunsubscribe" | "spublish");
    let mut query = crate::cluster::Query {
        slot: slot as usize,
        write: &mut || crate::scripting::writes(server, cmd, args),
        asking,
        multiple_keys: nkeys > 1,
        migrate: cmd.spec.name == "migrate",
        plain_client: !client.info.tls.load(std::sync::atomic::Ordering::Relaxed),
        // A replica serves its master's shard channels as it serves a
        // READONLY client's reads (Redis's pubsubshard_included).
        readonly: client.cluster_readonly || shard_channel,
        shard_channel,
        count_keys: &mut count_keys,
    };
    match cluster.route(&mut query) {
        None => Ok(()),
        Some(redirect) => {
            let reply = Reply::error(redirect.text());
            rejected(server, cmd, &reply);
            Err(reply)
        }
    }
}

#[cold]
fn cluster_crossslot(server: &Server, cmd: Command) -> Reply {
    let reply = Reply::crossslot();
    rejected(server, cmd, &reply);
    reply
}

/// Redis's check of protected commands (DEBUG), right after the arity
/// check and before authentication: refused unless `enable-debug-command`
/// is `yes`, or `local` and the client connects from 127.0.0.1 or ::1 or
/// over the Unix socket (flag `U`), as Redis's islocalClient.
pub fn protected(server: &Server, client: &ClientInfo, cmd: Command) -> Result<(), Reply> {
    let (param, what) = match cmd.spec.name {
        "debug" => ("enable-debug-command", "DEBUG"),
        "module|load" | "module|loadex" | "module|unload" => ("enable-module-command", "MODULE"),
        _ => return Ok(()),
    };
    let allowed = match server.config.get(param).as_deref() {
        Some("yes") => true,
        Some("local") => client.unix.load(std::sync::atomic::Ordering::Relaxed) || is_local_client(&client.addr),
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    let reply = Reply::err(format!(
        "{what} command not allowed. If the {param} option is set to \"local\", you can run it from a local \
         connection, otherwise you need to set this option in the configuration file, and then restart the server."
    ));
    rejected(server, cmd, &reply);
    Err(reply)
}

/// Redis's notion of a local client: the peer address is exactly 127.0.0.1
/// or ::1 (other loopback addresses such as 127.0.0.2 are not local).
pub fn is_local_client(addr: &str) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    match addr.parse::<SocketAddr>().map(|a| a.ip()) {
        Ok(ip) => ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST),
        Err(_) => false,
    }
}

/// Runs `cmd` with the shards it needs entered in `ctx`: refusal checks,
/// the handler, accounting, effects. The caller's clock and counters are in
/// `tally`.
pub fn call(ctx: &mut Ctx, cmd: Command, args: &[Bytes], tally: &mut Tally) -> Reply {
    call_inline(ctx, cmd, args, tally)
}

/// `call`, inlined into the two hot callers (a client's command, a
/// script's `redis.call`), where the caller's origin is known at compile
/// time and the call itself costs as much as the checks it skips.
#[inline(always)]
pub fn call_inline(ctx: &mut Ctx, cmd: Command, args: &[Bytes], tally: &mut Tally) -> Reply {
    // maxmemory: evict or refuse before a write. EXEC checks a whole
    // transaction up front and a script applies its own rules.
    if matches!(ctx.origin, Origin::Client | Origin::Blocked) {
        if let Some(oom) = crate::shard::eviction::check_oom(ctx.server, cmd.spec.has(flags::DENYOOM), ctx.shards()) {
            rejected(ctx.server, cmd, &oom);
            return oom;
        }
    }
    let start = tally.clock;
    if ctx.origin != Origin::Script {
        // A script's commands see the time the script started, as in Redis.
        ctx.now = start / 1_000_000;
    }
    let reply = match cmd.spec.exec {
        Exec::Keyed(f) | Exec::AllShards(f) | Exec::Routed(_, f) | Exec::Blocking(f) => f(ctx, args),
        _ => Reply::err(crate::protocol::errors::INTERNAL_ROUTING),
    };
    if let Reply::Blocked = reply {
        // Nothing happened: the session waits and calls again. MONITOR
        // shows the command now, when it blocks, as Redis does.
        if ctx.origin == Origin::Client {
            monitor_blocked(ctx, cmd, args, start);
        }
        return reply;
    }
    let end = clock_ns();
    tally.clock = end;
    account(ctx.server, ctx.client, ctx.origin, ctx.db, cmd, args, Span { start, end }, &reply, tally);
    drain_effects(ctx, args, tally);
    // Client-side caching: the keys a read-only command read (after the
    // invalidations of keys it reaped, as Redis orders them). A script's
    // reads are remembered by the script runner.
    let tracking = ctx.client.tracking.flags();
    if tracking != 0 && cmd.spec.has(flags::READONLY) && ctx.origin != Origin::Script {
        remember_keys(ctx, cmd, args, tracking);
    }
    reply
}

/// A blocking command that found nothing to serve: shown to MONITOR as it
/// blocks (not again when it is served, times out or is unblocked).
#[cold]
fn monitor_blocked(ctx: &Ctx, cmd: Command, args: &[Bytes], start: u64) {
    let monitors = &ctx.server.observers.monitors;
    if !monitors.is_empty() && !cmd.spec.has(flags::SKIP_MONITOR) && !cmd.spec.has(flags::ADMIN) {
        monitors.feed(ctx.client, ctx.origin, ctx.db, args, Span { start, end: clock_ns() });
    }
}

#[cold]
fn remember_keys(ctx: &mut Ctx, cmd: Command, args: &[Bytes], tracking: u32) {
    let positions = cmd.spec.key_positions(args);
    let (server, client) = (ctx.server, ctx.client);
    crate::pubsub::tracking::remember(server, client, tracking, ctx.shards(), positions.iter().map(|&i| &args[i]));
}

/// Runs a command that needs no shard (`Exec::Conn`).
pub fn call_conn(ctx: &mut ConnCtx, cmd: Command, args: &[Bytes], origin: Origin) -> Reply {
    let Exec::Conn(f) = cmd.spec.exec else {
        return Reply::err(crate::protocol::errors::INTERNAL_ROUTING);
    };
    // A command run by EXEC or a script leaves the outer one as the
    // client's last command.
    let nested = matches!(origin, Origin::Exec | Origin::Script);
    let mut tally = if nested { Tally::nested() } else { Tally::start() };
    let start = tally.clock;
    if !nested {
        // CLIENT LIST/INFO show the running command as the caller's current one.
        ctx.client.info.last_cmd.store(cmd.id, Relaxed);
    }
    let reply = f(ctx, args);
    let end = clock_ns();
    let (server, info, db) = (ctx.server.clone(), ctx.client.info.clone(), ctx.client.db);
    // The few write commands that need no shard (FUNCTION LOAD/DELETE/FLUSH/
    // RESTORE) change server state that replicas and the AOF must follow.
    if cmd.spec.is_write() && !reply.is_error() {
        tally.dirty += 1;
        if server.propagation.active() {
            crate::propagate::emit(&server.propagation, db, args);
        }
    }
    account(&server, &info, origin, db, cmd, args, Span { start, end }, &reply, &mut tally);
    tally.publish(&server, &info);
    reply
}

/// Accounts for a command the session ran itself (`Exec::Session`: EVAL,
/// EXEC, a blocking command, SUBSCRIBE, ...), started at `start`.
pub fn account_session(
    server: &Server,
    client: &ClientInfo,
    db: usize,
    cmd: Command,
    args: &[Bytes],
    start: u64,
    reply: &Reply,
) {
    let mut tally = Tally::at(start);
    let end = clock_ns();
    account(server, client, Origin::Client, db, cmd, args, Span { start, end }, reply, &mut tally);
    tally.publish(server, client);
}

/// Accounts for a blocking command that ends without being served (a
/// timeout, CLIENT UNBLOCK, a redirection): counted as Redis counts it, and
/// not shown to MONITOR again (it was when it blocked).
pub fn account_unserved(server: &Server, client: &ClientInfo, db: usize, cmd: Command, args: &[Bytes], reply: &Reply) {
    let now = clock_ns();
    let mut tally = Tally::at(now);
    account(server, client, Origin::Blocked, db, cmd, args, Span { start: now, end: now }, reply, &mut tally);
    tally.publish(server, client);
}

/// Shows a script run (EVAL*, FCALL*) to MONITOR before the commands it runs,
/// as Redis does: those commands are flagged `skip_monitor`, so `account`
/// does not show them when they end.
pub fn monitor_script(server: &Server, client: &ClientInfo, db: usize, args: &[Bytes]) {
    if !server.observers.monitors.is_empty() {
        let now = clock_ns();
        server.observers.monitors.feed(client, Origin::Client, db, args, Span { start: now, end: now });
    }
}

/// An error from a command of the AOF being loaded or of the master's
/// stream: counted and logged as Redis does (it should not happen).
/// `name`: the command's, or `<unknown>` for one that did not resolve.
#[cold]
pub fn unexpected_error(server: &Server, name: &str, text: &[u8]) {
    server.stats.unexpected_error_replies.fetch_add(1, Relaxed);
    let (from, to) =
        if server.persist.loading.load(Relaxed) { ("server", "AOF-loading-client") } else { ("replica", "master") };
    // As Redis shows it: a plain ERR message without its code, a reply
    // with another code as it went out, with its dash.
    let text = String::from_utf8_lossy(text);
    let shown = match text.strip_prefix("ERR ") {
        Some(message) => message.to_string(),
        None => format!("-{text}"),
    };
    crate::net::listener::log(
        server,
        "warning",
        &format!(
            "== CRITICAL == This {from} is sending an error to its {to}: '{shown}' after processing the command '{}'",
            name
        ),
    );
    // propagation-error-behavior: `panic` (or `panic-on-replicas` on a
    // replica) stops the process rather than let its dataset diverge.
    let behavior = server.config.get("propagation-error-behavior").unwrap_or_default();
    if behavior == "panic" || (behavior == "panic-on-replicas" && from == "replica") {
        crate::net::listener::log(
            server,
            "warning",
            &format!("Guru Meditation: This {from} panicked sending an error to its {to} after processing the command '{name}' #dispatch.rs"),
        );
        crate::process::exit_on_panic_if_asked(&server.config);
        std::process::abort();
    }
}

/// Step 3: statistics and observers of one finished call.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn account(
    server: &Server,
    client: &ClientInfo,
    origin: Origin,
    db: usize,
    cmd: Command,
    args: &[Bytes],
    span: Span,
    reply: &Reply,
    tally: &mut Tally,
) {
    let took_ns = span.end.saturating_sub(span.start);
    let failed = match reply.error_text() {
        // A script's errors are counted as it ran (`scripting::settle`).
        Some(_) if crate::scripting::settles_errors(cmd) => false,
        Some(text) => {
            server.stats.count_error(text);
            if origin == Origin::AofLoad {
                unexpected_error(server, cmd.spec.name, text);
            }
            true
        }
        None => false,
    };
    let loading = origin == Origin::AofLoad;
    let obs = &server.observers;
    tally.add(server, client, cmd, took_ns, failed, !loading && obs.latency.enabled.load(Relaxed));
    if loading {
        return;
    }
    let usec = took_ns / 1000;
    // The rest is cheap checks of atomics first: these observers are rarely on.
    let slower_than = obs.slowlog.slower_than.load(Relaxed);
    if slower_than >= 0 && usec as i64 >= slower_than && !cmd.spec.has(flags::SKIP_SLOWLOG) {
        obs.slowlog.offer(server, client, origin, args, usec);
    }
    if obs.latency_monitor.threshold.load(Relaxed) != 0 {
        obs.latency_monitor.command(server, cmd, usec);
    }
    // A blocked command was shown when it blocked.
    if !obs.monitors.is_empty()
        && !cmd.spec.has(flags::SKIP_MONITOR)
        && !cmd.spec.has(flags::ADMIN)
        && origin != Origin::Blocked
    {
        obs.monitors.feed(client, origin, db, args, span);
    }
}

/// Step 4: what the command changed, for everyone who follows changes.
#[inline(always)]
fn drain_effects(ctx: &mut Ctx, args: &[Bytes], tally: &mut Tally) {
    let server = ctx.server;
    let propagate = server.propagation.active();
    let flags = server.config.notify_flags.load(Relaxed);
    let followed = flags & crate::pubsub::notify::EXPIRED != 0 || propagate || server.tracking.engaged();
    if !followed && ctx.effects.rewritten.is_none() {
        // Nobody follows expiries or the write stream: only the count. Keys
        // this command reaped are forgotten now: a replica or AOF that
        // subscribes later must not get their DELs (the key may exist again
        // by then, and its snapshot already has the truth).
        ctx.discard_expired();
        tally.dirty += ctx.effects.dirty;
        ctx.effects.dirty = 0;
        ctx.effects.force = false;
        return;
    }
    drain_followed(ctx, args, tally, propagate, followed);
}

/// `drain_effects` when expiries or the write stream are followed.
#[inline(never)]
fn drain_followed(ctx: &mut Ctx, args: &[Bytes], tally: &mut Tally, propagate: bool, followed: bool) {
    let stream = &ctx.server.propagation;
    // Keys the command reaped by expiry: notified, and replayed as DEL/UNLINK.
    if followed {
        ctx.drain_expired(propagate);
    }
    let effects = std::mem::take(&mut ctx.effects);
    if effects.dirty == 0 && !effects.force {
        return;
    }
    tally.dirty += effects.dirty;
    if !propagate {
        return;
    }
    match effects.rewritten {
        None => crate::propagate::emit(stream, ctx.db, args),
        Some(list) => {
            for argv in &list {
                crate::propagate::emit(stream, ctx.db, argv);
            }
        }
    }
}
