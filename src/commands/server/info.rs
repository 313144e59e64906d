//! INFO: Redis 7.0's sections and field names, filled from moonshard's state.
//!
//! INFO runs with every shard entered (the keyspace section adds up the
//! shards' key counts) and renders the requested sections.

use crate::commands::Ctx;
use crate::protocol::Reply;
use crate::server::Server;
use bytes::Bytes;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Sections in output order, and whether `INFO` / `INFO default` shows each.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

/// INFO, with every shard entered so the keyspace figures are one point in time.
pub fn info(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut totals: Vec<(i64, i64)> = vec![(0, 0); ctx.server.databases()];
    for shard in ctx.shards().iter() {
        for (i, db) in shard.dbs.iter().enumerate() {
            totals[i].0 += db.len() as i64;
            totals[i].1 += db.volatile_len() as i64;
        }
    }
    let wanted = selected(&args[1..]);
    let mut text = String::new();
    for (name, _) in SECTIONS {
        if !wanted.iter().any(|w| w == name) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        render(ctx.server, name, &totals, &mut text);
    }
    Reply::Verbatim("txt", Bytes::from(text))
}

/// The sections named by INFO's arguments (no argument: the default set).
fn selected(args: &[Bytes]) -> Vec<&'static str> {
    let defaults = || SECTIONS.iter().filter(|s| s.1).map(|s| s.0);
    if args.is_empty() {
        return defaults().collect();
    }
    let mut out = Vec::new();
    for a in args {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => out.extend(defaults()),
            "all" | "everything" => out.extend(SECTIONS.iter().map(|s| s.0)),
            _ => out.extend(SECTIONS.iter().map(|s| s.0).filter(|s| *s == a)),
        }
    }
    out
}

fn render(server: &Server, name: &str, totals: &[(i64, i64)], out: &mut String) {
    let title = match name {
        "cpu" => "CPU".to_string(),
        other => {
            let mut t = other.to_string();
            t[..1].make_ascii_uppercase();
            t
        }
    };
    let _ = write!(out, "# {title}\r\n");
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut f = |k: &str, v: String| fields.push((k.to_string(), v));
    match name {
        "server" => server_section(server, &mut f),
        "clients" => clients_section(server, &mut f),
        "memory" => memory_section(server, &mut f),
        "persistence" => persistence_section(server, &mut f),
        "stats" => stats_section(server, &mut f),
        "replication" => {
            f("role", "master".into());
            f("connected_slaves", "0".into());
            f("master_failover_state", "no-failover".into());
            f("master_replid", server.run_id.clone());
            f("master_replid2", "0000000000000000000000000000000000000000".into());
            f("master_repl_offset", "0".into());
            f("second_repl_offset", "-1".into());
            f("repl_backlog_active", "0".into());
            f("repl_backlog_size", server.config.get("repl-backlog-size").unwrap_or_default());
            f("repl_backlog_first_byte_offset", "0".into());
            f("repl_backlog_histlen", "0".into());
        }
        "cpu" => cpu_section(&mut f),
        "commandstats" => commandstats(server, &mut f),
        "errorstats" => {
            for (code, n) in server.stats.errors.lock().iter() {
                f(&format!("errorstat_{code}"), format!("count={n}"));
            }
        }
        "cluster" => f("cluster_enabled", "0".into()),
        "keyspace" => {
            for (i, (keys, expires)) in totals.iter().enumerate() {
                if *keys > 0 {
                    f(&format!("db{i}"), format!("keys={keys},expires={expires},avg_ttl=0"));
                }
            }
        }
        _ => {}
    }
    for (k, v) in fields {
        let _ = write!(out, "{k}:{v}\r\n");
    }
}

type Field<'a> = dyn FnMut(&str, String) + 'a;

fn server_section(server: &Server, f: &mut Field) {
    let uptime = server.started.elapsed().as_secs();
    let os = format!(
        "{} {} {}",
        std::fs::read_to_string("/proc/sys/kernel/ostype")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "Linux".into()),
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default(),
        std::env::consts::ARCH
    );
    let hz = server.config.get("hz").unwrap_or_else(|| "10".into());
    f("redis_version", crate::REDIS_VERSION.into());
    f("redis_git_sha1", "00000000".into());
    f("redis_git_dirty", "0".into());
    f("redis_build_id", "0".into());
    f("redis_mode", "standalone".into());
    f("moonshard_version", env!("CARGO_PKG_VERSION").into());
    f("os", os);
    f("arch_bits", (usize::BITS).to_string());
    f("monotonic_clock", "POSIX clock_gettime".into());
    f("multiplexing_api", "epoll".into());
    f("atomicvar_api", "c11-builtin".into());
    f("process_id", std::process::id().to_string());
    f("process_supervised", "no".into());
    f("run_id", server.run_id.clone());
    f("tcp_port", server.port.load(Ordering::Relaxed).to_string());
    f("server_time_usec", (crate::storage::now_ms() * 1000).to_string());
    f("uptime_in_seconds", uptime.to_string());
    f("uptime_in_days", (uptime / 86400).to_string());
    f("hz", hz.clone());
    f("configured_hz", hz);
    f("lru_clock", ((crate::storage::now_ms() / 1000) & ((1 << 24) - 1)).to_string());
    f("executable", std::env::current_exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default());
    f("config_file", server.config.file.clone().unwrap_or_default());
    f("io_threads_active", "0".into());
    f("shards", server.shards.len().to_string());
}

fn clients_section(server: &Server, f: &mut Field) {
    f("connected_clients", server.clients.len().to_string());
    f("cluster_connections", "0".into());
    f("maxclients", server.config.maxclients.load(Ordering::Relaxed).to_string());
    f("client_recent_max_input_buffer", "0".into());
    f("client_recent_max_output_buffer", "0".into());
    f("blocked_clients", "0".into());
    f("tracking_clients", "0".into());
    f("clients_in_timeout_table", "0".into());
}

/// Redis's `bytesToHuman`: B, K, M, G, T with two decimals.
pub fn human(n: u64) -> String {
    let n = n as f64;
    const UNITS: [(&str, u64); 4] = [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, size) in UNITS {
        let size = size as f64;
        if n >= size {
            return format!("{:.2}{unit}", n / size);
        }
    }
    format!("{n}B")
}

fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn memory_section(server: &Server, f: &mut Field) {
    use crate::storage::memory;
    let rss = memory::rss_bytes();
    // Without the counting allocator (a library embedding), RSS is the only figure.
    let used = if memory::is_counting() { memory::used_memory() } else { rss };
    // Records `used` as a peak too (see `peak_memory`).
    let peak = memory::peak_memory(used);
    let startup = memory::startup_memory().min(used);
    let maxmemory = server.config.maxmemory.load(Ordering::Relaxed);
    let system = total_system_memory();
    let perc =
        |part: u64, whole: u64| format!("{:.2}%", if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 });
    f("used_memory", used.to_string());
    f("used_memory_human", human(used));
    f("used_memory_rss", rss.to_string());
    f("used_memory_rss_human", human(rss));
    f("used_memory_peak", peak.to_string());
    f("used_memory_peak_human", human(peak));
    f("used_memory_peak_perc", perc(used, peak));
    f("used_memory_overhead", startup.to_string());
    f("used_memory_startup", startup.to_string());
    f("used_memory_dataset", (used - startup).to_string());
    f("used_memory_dataset_perc", perc(used - startup, used));
    f("total_system_memory", system.to_string());
    f("total_system_memory_human", human(system));
    f("used_memory_lua", "0".into());
    f("used_memory_lua_human", "0B".into());
    f("used_memory_scripts", "0".into());
    f("used_memory_scripts_human", "0B".into());
    f("maxmemory", maxmemory.to_string());
    f("maxmemory_human", human(maxmemory));
    f("maxmemory_policy", server.config.get("maxmemory-policy").unwrap_or_else(|| "noeviction".into()));
    let ratio = if used == 0 { 0.0 } else { rss as f64 / used as f64 };
    f("mem_fragmentation_ratio", format!("{ratio:.2}"));
    f("mem_fragmentation_bytes", (rss as i64 - used as i64).to_string());
    f("mem_not_counted_for_evict", "0".into());
    f("mem_allocator", "mimalloc".into());
    f("active_defrag_running", "0".into());
    f("lazyfree_pending_objects", "0".into());
    f("lazyfreed_objects", "0".into());
}

fn persistence_section(server: &Server, f: &mut Field) {
    let lastsave = server.lastsave.load(Ordering::Relaxed);
    let changes = server.stats.dirty.load(Ordering::Relaxed).saturating_sub(server.stats.dirty_at_save.load(Ordering::Relaxed));
    for (k, v) in [
        ("loading", "0".to_string()),
        ("async_loading", "0".into()),
        ("current_cow_peak", "0".into()),
        ("current_cow_size", "0".into()),
        ("current_cow_size_age", "0".into()),
        ("current_fork_perc", "0.00".into()),
        ("current_save_keys_processed", "0".into()),
        ("current_save_keys_total", "0".into()),
        ("rdb_changes_since_last_save", changes.to_string()),
        ("rdb_bgsave_in_progress", "0".into()),
        ("rdb_last_save_time", lastsave.to_string()),
        ("rdb_last_bgsave_status", "ok".into()),
        ("rdb_last_bgsave_time_sec", "-1".into()),
        ("rdb_current_bgsave_time_sec", "-1".into()),
        ("rdb_saves", "0".into()),
        ("rdb_last_cow_size", "0".into()),
        ("rdb_last_load_keys_expired", "0".into()),
        ("rdb_last_load_keys_loaded", "0".into()),
        ("aof_enabled", "0".into()),
        ("aof_rewrite_in_progress", "0".into()),
        ("aof_rewrite_scheduled", "0".into()),
        ("aof_last_rewrite_time_sec", "-1".into()),
        ("aof_current_rewrite_time_sec", "-1".into()),
        ("aof_last_bgrewrite_status", "ok".into()),
        ("aof_rewrites", "0".into()),
        ("aof_rewrites_consecutive_failures", "0".into()),
        ("aof_last_write_status", "ok".into()),
        ("aof_last_cow_size", "0".into()),
        ("module_fork_in_progress", "0".into()),
        ("module_fork_last_cow_size", "0".into()),
    ] {
        f(k, v);
    }
}

fn stats_section(server: &Server, f: &mut Field) {
    let s = &server.stats;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
    f("total_connections_received", get(&s.connections_received));
    f("total_commands_processed", get(&s.commands_processed));
    f("instantaneous_ops_per_sec", "0".into());
    f("total_net_input_bytes", get(&s.net_input_bytes));
    f("total_net_output_bytes", get(&s.net_output_bytes));
    f("total_net_repl_input_bytes", "0".into());
    f("total_net_repl_output_bytes", "0".into());
    f("instantaneous_input_kbps", "0.00".into());
    f("instantaneous_output_kbps", "0.00".into());
    f("rejected_connections", get(&s.rejected_connections));
    f("sync_full", "0".into());
    f("sync_partial_ok", "0".into());
    f("sync_partial_err", "0".into());
    f("expired_keys", get(&s.expired_keys));
    f("expired_stale_perc", "0.00".into());
    f("expired_time_cap_reached_count", "0".into());
    f("evicted_keys", get(&s.evicted_keys));
    f("evicted_clients", "0".into());
    f("total_eviction_exceeded_time", "0".into());
    f("current_eviction_exceeded_time", "0".into());
    f("keyspace_hits", get(&s.keyspace_hits));
    f("keyspace_misses", get(&s.keyspace_misses));
    f("pubsub_channels", "0".into());
    f("pubsub_patterns", "0".into());
    f("pubsubshard_channels", "0".into());
    f("latest_fork_usec", "0".into());
    f("total_forks", "0".into());
    f("unexpected_error_replies", "0".into());
    f("total_error_replies", get(&s.error_replies));
    f("dump_payload_sanitizations", "0".into());
}

/// Seconds of CPU time (user, system) of this process, from /proc.
fn cpu_times() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the parenthesised name; utime and stime are the 12th and 13th there.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (ticks(11), ticks(12))
}

fn cpu_section(f: &mut Field) {
    let (user, sys) = cpu_times();
    f("used_cpu_sys", format!("{sys:.6}"));
    f("used_cpu_user", format!("{user:.6}"));
    f("used_cpu_sys_children", "0.000000".into());
    f("used_cpu_user_children", "0.000000".into());
}

fn commandstats(server: &Server, f: &mut Field) {
    for (i, spec) in crate::commands::registry::all().iter().enumerate() {
        let Some(s) = server.stats.commands.get(i) else {
            continue;
        };
        let (calls, usec) = (s.calls.load(Ordering::Relaxed), s.usec.load(Ordering::Relaxed));
        let (rejected, failed) = (s.rejected.load(Ordering::Relaxed), s.failed.load(Ordering::Relaxed));
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        let per_call = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
        f(
            &format!("cmdstat_{}", spec.name),
            format!(
                "calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_selection() {
        let b = |s: &str| Bytes::from(s.to_string());
        assert!(!selected(&[]).contains(&"commandstats"));
        assert!(selected(&[b("ALL")]).contains(&"commandstats"));
        assert_eq!(selected(&[b("keyspace"), b("server")]), vec!["keyspace", "server"]);
        assert!(selected(&[b("nosuch")]).is_empty());
        assert_eq!(human(1024), "1.00K");
        assert_eq!(human(10), "10B");
    }
}
