//! Server commands: INFO, CONFIG, COMMAND, DBSIZE, FLUSH*, TIME, SHUTDOWN,
//! SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE ... (the saving itself lives in
//! `persist::save`, the AOF in `persist::aof`).

pub mod command;
mod info;
mod latency;
mod slowlog;

pub use command::{
    command_count, command_docs, command_getkeys, command_getkeysandflags, command_help, command_info, command_list,
};

use super::spec::ConnFn;
use super::{ConnCtx, Ctx};
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::util::eq_ic;
use bytes::Bytes;
use std::sync::atomic::Ordering;

// ------------------------------------------------------------ declarations

static CONFIG_SUBS: &[CommandSpec] = &[
    cmd("config|get", -3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(config_get))
        .syntax("parameter [parameter ...]")
        .doc("2.0.0", "Returns configuration parameters matching patterns."),
    cmd("config|set", -4, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(config_set))
        .syntax("parameter value [parameter value ...]")
        .doc("2.0.0", "Changes configuration parameters at run time, all or none.")
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd("config|resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(config_resetstat))
        .doc("2.0.0", "Zeroes the statistics reported by INFO."),
    cmd("config|rewrite", 2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(config_rewrite))
        .doc("2.8.0", "Writes the running configuration back to the config file."),
    cmd("config|help", 2, LOADING | STALE, NOKEYS, G::Server, C(config_help))
        .doc("5.0.0", "Lists the CONFIG subcommands."),
];

static COMMAND_SUBS: &[CommandSpec] = &[
    cmd("command|count", 2, LOADING | STALE, NOKEYS, G::Server, C(command_count))
        .doc("2.8.13", "Counts the commands the server knows."),
    cmd("command|info", -2, LOADING | STALE, NOKEYS, G::Server, C(command_info))
        .syntax("[command-name [command-name ...]]")
        .doc("2.8.13", "Describes the named commands.")
        .tips(&["nondeterministic_output_order"]),
    cmd("command|docs", -2, LOADING | STALE, NOKEYS, G::Server, C(command_docs))
        .syntax("[command-name [command-name ...]]")
        .doc("7.0.0", "Returns documentation for commands.")
        .tips(&["nondeterministic_output_order"]),
    cmd("command|list", -2, LOADING | STALE, NOKEYS, G::Server, C(command_list))
        .syntax("[FILTERBY (MODULE module-name|ACLCAT category|PATTERN pattern%p)]")
        .doc("7.0.0", "Lists command names, optionally filtered.")
        .tips(&["nondeterministic_output_order"]),
    cmd("command|getkeysandflags", -4, LOADING | STALE, NOKEYS, G::Server, C(command_getkeysandflags))
        .doc("7.0.0", "Extracts the key names and their access flags from a full command line."),
    cmd("command|getkeys", -4, LOADING | STALE, NOKEYS, G::Server, C(command_getkeys))
        .doc("2.8.13", "Extracts the key names from a full command line."),
    cmd("command|help", 2, LOADING | STALE, NOKEYS, G::Server, C(command_help))
        .doc("5.0.0", "Lists the COMMAND subcommands."),
];

pub static COMMANDS: &[CommandSpec] = &[
    cmd("info", -1, LOADING | STALE | SENTINEL, NOKEYS, G::Server, All(info::info))
        .syntax("[section [section ...]]")
        .doc("1.0.0", "Reports server state and statistics, by section.")
        .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"])
        .acl(&["dangerous"]),
    container("command", -1, LOADING | STALE, G::Server, COMMAND_SUBS)
        .doc("2.8.13", "Describes every command.")
        .tips(&["nondeterministic_output_order"]),
    container("config", -2, 0, G::Server, CONFIG_SUBS).doc("2.0.0", "Container for configuration subcommands."),
    container("slowlog", -2, 0, G::Server, slowlog::SLOWLOG_SUBS).doc("2.2.12", "Container for slow log subcommands."),
    container("latency", -2, 0, G::Server, latency::LATENCY_SUBS)
        .doc("2.8.13", "Container for latency diagnostics subcommands."),
    cmd("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, Session(Op::Monitor))
        .doc("1.0.0", "Streams every command the server runs, as it runs."),
    cmd("dbsize", 1, READONLY | FAST, NOKEYS, G::Server, All(dbsize))
        .doc("1.0.0", "Counts the keys in the selected database.")
        .tips(&["request_policy:all_shards", "response_policy:agg_sum"])
        .acl(&["keyspace"]),
    cmd("flushdb", -1, WRITE, NOKEYS, G::Server, All(flushdb))
        .syntax("[ASYNC|SYNC]")
        .doc("1.0.0", "Deletes every key of the selected database.")
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .acl(&["keyspace", "dangerous"]),
    cmd("flushall", -1, WRITE, NOKEYS, G::Server, All(flushall))
        .syntax("[ASYNC|SYNC]")
        .doc("1.0.0", "Deletes every key of every database.")
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .acl(&["keyspace", "dangerous"]),
    cmd("time", 1, LOADING | STALE | FAST, NOKEYS, G::Server, C(time))
        .doc("2.6.0", "Returns the server's clock as seconds and microseconds.")
        .tips(&["nondeterministic_output"]),
    cmd(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | SENTINEL | ALLOW_BUSY,
        NOKEYS,
        G::Server,
        C(shutdown),
    )
    .syntax("[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]")
    .doc("1.0.0", "Stops the server."),
    cmd("lastsave", 1, LOADING | STALE | FAST, NOKEYS, G::Server, C(lastsave))
        .doc("1.0.0", "Returns the Unix time of the last successful save.")
        .tips(&["nondeterministic_output"])
        .acl(&["admin", "dangerous"]),
    cmd("save", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, NOKEYS, G::Server, C(save))
        .doc("1.0.0", "Saves the dataset synchronously."),
    cmd("bgsave", -1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, NOKEYS, G::Server, C(bgsave))
        .syntax("[SCHEDULE]")
        .doc("1.0.0", "Saves the dataset in the background."),
    cmd("bgrewriteaof", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, NOKEYS, G::Server, C(bgrewriteaof))
        .doc("1.0.0", "Rewrites the append-only file from the dataset in the background."),
];

pub fn conn_not_yet(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    Reply::err(format!("command '{}' is not implemented yet", String::from_utf8_lossy(&args[0]).to_lowercase()))
}

/// The handler of a container command called without a subcommand
/// (`COMMAND` alone), if it has one.
pub fn bare_container(name: &str) -> Option<ConnFn> {
    match name {
        "command" => Some(command::command),
        _ => None,
    }
}

pub fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let db = ctx.db;
    Reply::Int(ctx.shards().iter().map(|s| s.dbs[db].len() as i64).sum())
}

/// FLUSHDB/FLUSHALL's optional mode: true for ASYNC (without a mode,
/// `lazyfree-lazy-user-flush` decides, as in Redis).
fn flush_async(ctx: &Ctx, args: &[Bytes]) -> Result<bool, Reply> {
    match args.len() {
        1 => Ok(ctx.server.config.lazy_user_flush.load(std::sync::atomic::Ordering::Relaxed)),
        2 if eq_ic(&args[1], "async") => Ok(true),
        2 if eq_ic(&args[1], "sync") => Ok(false),
        _ => Err(Reply::syntax_error()),
    }
}

/// Empties `dbs`; with ASYNC the old contents go to the lazyfree thread
/// (counted there by keys, as Redis counts them) so a huge keyspace does
/// not hold the shard while it is dropped.
fn flush(dbs: &mut [crate::storage::Db], asynchronous: bool) {
    if !asynchronous {
        dbs.iter_mut().for_each(|db| db.clear());
        return;
    }
    let old: Vec<crate::storage::Db> = dbs.iter_mut().filter(|db| !db.is_empty()).map(|db| db.take()).collect();
    let keys: usize = old.iter().map(|db| db.len()).sum();
    if keys > 0 {
        crate::storage::lazyfree::free_later(old, keys as u64);
    }
}

pub fn flushdb(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let asynchronous = match flush_async(ctx, args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let db = ctx.db;
    ctx.flushing(db);
    ctx.flushed_tracking();
    let mut removed = 0;
    for shard in ctx.shards().iter_mut() {
        removed += shard.dbs[db].len() as u64;
        flush(std::slice::from_mut(&mut shard.dbs[db]), asynchronous);
    }
    // Redis counts every removed key, and propagates FLUSHDB even when empty.
    ctx.dirty(removed);
    ctx.force_propagation();
    Reply::ok()
}

pub fn flushall(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let asynchronous = match flush_async(ctx, args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    for db in 0..ctx.server.databases() {
        ctx.flushing(db);
    }
    ctx.flushed_tracking();
    // A background save in progress stops (Redis kills its child): the
    // file it was writing is already out of date.
    crate::persist::save::cancel_held(ctx.server, ctx.shards());
    let mut removed = 0;
    for shard in ctx.shards().iter_mut() {
        removed += shard.total_keys() as u64;
        flush(&mut shard.dbs, asynchronous);
    }
    ctx.dirty(removed);
    ctx.force_propagation();
    // With save points configured Redis saves right after a FLUSHALL: the
    // changes since the last save (this command's included) start over.
    if !crate::persist::save::save_points(&ctx.server.config).is_empty() {
        let server = ctx.server;
        let held: Vec<&crate::shard::ShardData> = ctx.shards().iter().map(|s| &**s).collect();
        let _ = crate::persist::save::save_held(server, &held);
        let stats = &ctx.server.stats;
        stats.dirty_at_save.store(stats.dirty.load(Ordering::Relaxed) + removed, Ordering::Relaxed);
        ctx.server.lastsave.store(crate::storage::now_ms() / 1000, Ordering::Relaxed);
    }
    Reply::ok()
}

pub fn shutdown(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let (mut abort, mut nosave, mut save, mut force, mut now) = (false, false, false, false, false);
    for a in &args[1..] {
        if eq_ic(a, "abort") {
            abort = true;
        } else if eq_ic(a, "nosave") {
            nosave = true;
        } else if eq_ic(a, "save") {
            save = true;
        } else if eq_ic(a, "force") {
            force = true;
        } else if eq_ic(a, "now") {
            now = true;
        } else {
            return Reply::syntax_error();
        }
    }
    if abort {
        if args.len() > 2 {
            return Reply::syntax_error();
        }
        // Only the wait for lagging replicas can be aborted; the rest of a shutdown is immediate.
        if ctx.server.shutdown_waiting.load(Ordering::SeqCst) > 0 {
            // Every SHUTDOWN waiting gets its error (they share one wait).
            ctx.server.shutdown_abort.fetch_add(1, Ordering::SeqCst);
            crate::net::listener::log(ctx.server, "notice", "Shutdown manually aborted.");
            return Reply::ok();
        }
        // A signal's shutdown not yet begun (the cron is paused).
        if ctx.server.signal_shutdown_pending.swap(false, Ordering::SeqCst) {
            crate::net::listener::log(ctx.server, "notice", "Shutdown manually aborted.");
            return Reply::ok();
        }
        return Reply::err("No shutdown in progress.");
    }
    if nosave && save {
        return Reply::syntax_error();
    }
    crate::net::listener::log(ctx.server, "warning", "User requested shutdown...");
    if !now && !block_in_place(|| crate::replication::wait_for_replicas_before_shutdown(ctx.server)) {
        return Reply::err("Errors trying to SHUTDOWN. Check logs.");
    }
    let save = save || (!nosave && !crate::persist::save::save_points(&ctx.server.config).is_empty());
    if crate::persist::save::prepare_shutdown(ctx.server, save, force).is_err() {
        crate::replication::release_shutdown_hold(ctx.server);
        return Reply::err("Errors trying to SHUTDOWN. Check logs.");
    }
    ctx.server.request_shutdown();
    ctx.client.close_after_reply = true;
    Reply::NoReply
}

pub fn time(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Reply::Array(vec![Reply::bulk(now.as_secs().to_string()), Reply::bulk(now.subsec_micros().to_string())])
}

pub fn lastsave(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Int(ctx.server.lastsave.load(Ordering::Relaxed) as i64)
}

pub fn save(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    if ctx.server.persist.running().is_some_and(|j| j.kind == crate::persist::save::JobKind::Rdb) {
        return Reply::err("Background save already in progress");
    }
    match crate::persist::save::save_locking(ctx.server) {
        Ok(()) => Reply::ok(),
        Err(_) => Reply::error("ERR"),
    }
}

pub fn bgsave(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    use crate::persist::save::Refused;
    let schedule = match args.len() {
        1 => false,
        2 if eq_ic(&args[1], "schedule") => true,
        _ => return Reply::syntax_error(),
    };
    match crate::persist::save::bgsave(ctx.server) {
        Ok(()) => Reply::status("Background saving started"),
        Err(Refused::AlreadyRunning) => Reply::err("Background save already in progress"),
        Err(Refused::Busy) if schedule => {
            ctx.server.persist.bgsave_scheduled.store(true, Ordering::Relaxed);
            Reply::status("Background saving scheduled")
        }
        Err(Refused::Busy | Refused::Failed(_)) => Reply::err(
            "Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to \
             schedule a BGSAVE whenever possible.",
        ),
    }
}

pub fn bgrewriteaof(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    use crate::persist::save::Refused;
    match crate::persist::save::bgrewriteaof(ctx.server) {
        Ok(()) => Reply::status("Background append only file rewriting started"),
        Err(Refused::AlreadyRunning) => Reply::err("Background append only file rewriting already in progress"),
        Err(Refused::Busy) => {
            ctx.server.persist.aof_rewrite_scheduled.store(true, Ordering::Relaxed);
            Reply::status("Background append only file rewriting scheduled")
        }
        Err(Refused::Failed(_)) => {
            Reply::err("Can't execute an AOF background rewriting. Please check the server logs for more information.")
        }
    }
}

// -------------------------------------------------------------------- CONFIG

pub fn config_get(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let mut pairs: Vec<(&'static str, String)> = Vec::new();
    for pattern in &args[2..] {
        for (name, value) in ctx.server.config.matching(pattern) {
            if !pairs.iter().any(|(n, _)| *n == name) {
                pairs.push((name, value));
            }
        }
    }
    Reply::Map(pairs.into_iter().map(|(n, v)| (Reply::bulk_str(n), Reply::bulk(v))).collect())
}

pub fn config_set(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let rest = &args[2..];
    if !rest.len().is_multiple_of(2) {
        return Reply::syntax_error();
    }
    let text: Vec<String> = rest.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let pairs: Vec<(&str, &str)> = text.chunks(2).map(|p| (p[0].as_str(), p[1].as_str())).collect();
    let before: Vec<Option<String>> = pairs.iter().map(|(n, _)| ctx.server.config.get(n)).collect();
    match ctx.server.config.set_many(&pairs, false) {
        Ok(()) => {
            if let Err(e) = apply_listeners(ctx.server, &pairs) {
                // As Redis does when applying fails: every value given goes back.
                let restore: Vec<(&str, &str)> =
                    pairs.iter().zip(&before).filter_map(|((n, _), v)| v.as_deref().map(|v| (*n, v))).collect();
                let _ = ctx.server.config.set_many(&restore, true);
                return Reply::err(e);
            }
            ctx.server.apply_config();
            if pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case("requirepass")) {
                ctx.server.apply_requirepass();
            }
            let oom = pairs.iter().find(|(n, _)| {
                n.eq_ignore_ascii_case("oom-score-adj") || n.eq_ignore_ascii_case("oom-score-adj-values")
            });
            if let Some((name, _)) = oom {
                let replica = crate::storage::replica_expiry();
                if let Err(e) = crate::process::apply_oom_score_adj(&ctx.server.config, replica) {
                    // As Redis: logged, every value given goes back (and is applied again).
                    let log = |m: &str| crate::net::listener::log(ctx.server, "warning", m);
                    log(&e);
                    log(&format!(
                        "Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings."
                    ));
                    let restore: Vec<(&str, &str)> =
                        pairs.iter().zip(&before).filter_map(|((n, _), v)| v.as_deref().map(|v| (*n, v))).collect();
                    let _ = ctx.server.config.set_many(&restore, true);
                    let _ = crate::process::apply_oom_score_adj(&ctx.server.config, replica);
                    return Reply::err(format!(
                        "CONFIG SET failed (possibly related to argument '{name}') - Failed to set current oom_score_adj. Check server logs."
                    ));
                }
            }
            if let Some((name, value)) = pairs.iter().find(|(n, _)| n.eq_ignore_ascii_case("appendonly")) {
                if let Err(e) = switch_aof(ctx.server, value) {
                    let _ = ctx.server.config.set("appendonly", "no", true);
                    return Reply::err(format!("CONFIG SET failed (possibly related to argument '{name}') - {e}"));
                }
            }
            Reply::ok()
        }
        Err(e) => Reply::err(e),
    }
}

/// `CONFIG SET port|bind` at run time: listen on the new addresses before
/// closing the old ones. The error names the first of the two given, with
/// Redis's text for it; the reason goes to the log, as Redis logs it.
fn apply_listeners(server: &std::sync::Arc<crate::server::Server>, pairs: &[(&str, &str)]) -> Result<(), String> {
    apply_tls(server, pairs)?;
    let Some((first, _)) = pairs.iter().find(|(n, _)| n.eq_ignore_ascii_case("port") || n.eq_ignore_ascii_case("bind"))
    else {
        return Ok(());
    };
    let port = server.config.get_i64("port").clamp(0, 65535) as u16;
    let binds = server.config.get("bind").unwrap_or_default();
    let Err(why) = crate::net::listener::rebind(server, port, &binds, false) else {
        return Ok(());
    };
    let log = crate::net::listener::log;
    log(server, "warning", &format!("Warning: {why}"));
    let (name, text) = if first.eq_ignore_ascii_case("port") {
        ("port", "Unable to listen on this port. Check server logs.")
    } else {
        log(server, "warning", "Failed to bind");
        ("bind", "Failed to bind to specified addresses.")
    };
    log(
        server,
        "warning",
        &format!(
            "Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings."
        ),
    );
    Err(format!("CONFIG SET failed (possibly related to argument '{name}') - {text}"))
}

/// `CONFIG SET` of the TLS parameters: new certificates, keys, CAs or
/// protocols rebuild the configuration new connections get (those already
/// connected keep theirs); `tls-port` listens on the new port (configuring
/// TLS first when it was off). The error names the parameter, as Redis does.
fn apply_tls(server: &std::sync::Arc<crate::server::Server>, pairs: &[(&str, &str)]) -> Result<(), String> {
    let failed = |name: &str, text: &str| {
        let log = crate::net::listener::log;
        log(
            server,
            "warning",
            &format!(
                "Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings."
            ),
        );
        format!("CONFIG SET failed (possibly related to argument '{name}') - {text}")
    };
    const RELOAD_FAILED: &str = "Unable to update TLS configuration. Check server logs.";
    let material = pairs.iter().find(|(n, _)| crate::net::tls::MATERIAL.iter().any(|m| n.eq_ignore_ascii_case(m)));
    let tls_port = server.config.get_i64("tls-port").clamp(0, 65535) as u16;
    // Only while TLS is wanted (a TLS port, tls-replication, tls-cluster):
    // Redis accepts certificate paths on a server without TLS unchecked.
    if let Some((name, _)) = material.filter(|_| crate::net::tls::wanted(&server.config)) {
        // tls-auth-clients alone never fails CONFIG SET (Redis reads it at
        // each accept); its new value applies once the configuration builds.
        let only_auth = name.eq_ignore_ascii_case("tls-auth-clients") && pairs.len() == 1;
        if server.tls.reload(server).is_err() && !only_auth {
            return Err(failed(&name.to_ascii_lowercase(), RELOAD_FAILED));
        }
    }
    if pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case("tls-port") || n.eq_ignore_ascii_case("bind")) {
        let named = pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case("tls-port"));
        if tls_port != 0 && !server.tls.configured() && server.tls.reload(server).is_err() {
            return Err(failed("tls-port", RELOAD_FAILED));
        }
        if named || tls_port != 0 {
            let binds = server.config.get("bind").unwrap_or_default();
            if let Err(why) = crate::net::listener::rebind_tls(server, tls_port, &binds) {
                crate::net::listener::log(server, "warning", &format!("Warning: {why}"));
                let name = if named { "tls-port" } else { "bind" };
                return Err(failed(name, "Unable to listen on this port. Check server logs."));
            }
        }
    }
    Ok(())
}

/// `CONFIG SET appendonly yes|no` at run time.
fn switch_aof(server: &std::sync::Arc<crate::server::Server>, value: &str) -> Result<(), String> {
    if value.eq_ignore_ascii_case("yes") {
        crate::persist::aof::enable_at_runtime(server)
    } else {
        crate::persist::save::stop_aof(server);
        Ok(())
    }
}

pub fn config_resetstat(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    ctx.server.stats.reset();
    ctx.server.observers.latency.reset();
    crate::storage::lazyfree::reset_stats();
    // (Redis's resetServerStats clears the sync counters too.)
    let r = &ctx.server.replicas;
    for c in [&r.sync_full, &r.sync_partial_ok, &r.sync_partial_err] {
        c.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    for shard in &ctx.server.shards.list {
        shard.stats.reset();
    }
    Reply::ok()
}

pub fn config_rewrite(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let Some(path) = ctx.server.config.file.clone() else {
        return Reply::err("The server is running without a config file");
    };
    // The users go to the config file as `user` lines, unless they live in an ACL file.
    let users: Vec<String> = match ctx.server.config.get("aclfile").filter(|f| !f.is_empty()) {
        Some(_) => Vec::new(),
        None => {
            let users = ctx.server.acl.users();
            let text = crate::acl::file::render(&users);
            String::from_utf8_lossy(&text).lines().map(str::to_string).collect()
        }
    };
    match rewrite_file(&ctx.server.config, &path, &users) {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::err(format!("Rewriting config file: {e}")),
    }
}

/// Rewrites the config file in place: each known parameter's first line
/// gets the running value, repeated lines of it go, comments and unknown
/// lines stay, and parameters changed from their default are appended.
/// `user` lines are replaced one for one by `users`, the rest appended.
fn rewrite_file(config: &crate::config::Config, path: &str, users: &[String]) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path)?;
    let values = config.snapshot();
    let mut written: Vec<&str> = Vec::new();
    let mut out = String::new();
    let mut users = users.iter();
    for line in old.lines() {
        let word = line.split_whitespace().next().unwrap_or("");
        if word.eq_ignore_ascii_case("user") {
            if let Some(u) = users.next() {
                out.push_str(u);
                out.push('\n');
            }
            continue;
        }
        let param = (!word.starts_with('#')).then(|| crate::config::find_param(word)).flatten();
        match param {
            Some(p) => {
                if !written.contains(&p.name) {
                    written.push(p.name);
                    let v = values.iter().find(|(n, _)| *n == p.name).map(|(_, v)| v.as_str()).unwrap_or("");
                    out.push_str(&format_directive(p.name, v));
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (name, value) in &values {
        let p = crate::config::find_param(name);
        let default = p.map(|p| crate::config::normalize(p, p.default).unwrap_or_default()).unwrap_or_default();
        if !written.contains(name) && *value != default && *name != "dir" {
            out.push_str(&format_directive(name, value));
        }
    }
    for u in users {
        out.push_str(u);
        out.push('\n');
    }
    let tmp = format!("{path}.moonshard-tmp");
    std::fs::write(&tmp, out)?;
    std::fs::rename(&tmp, path)
}

fn format_directive(name: &str, value: &str) -> String {
    if value.is_empty() || value.contains(['"', '\'']) || (value.contains(' ') && !is_multiword(name)) {
        format!("{name} \"{}\"\n", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("{name} {value}\n")
    }
}

/// Parameters whose value is a list of words on one line.
fn is_multiword(name: &str) -> bool {
    matches!(
        name,
        "save"
            | "bind"
            | "client-output-buffer-limit"
            | "oom-score-adj-values"
            | "latency-tracking-info-percentiles"
            | "replicaof"
    )
}

pub fn config_help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("CONFIG", crate::commands::help::CONFIG)
}

/// Runs `f`, which blocks, off the connection runtime's worker (other connections move to the
/// remaining workers meanwhile) when there is such a runtime.
fn block_in_place<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
