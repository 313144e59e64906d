//! INFO: Redis 7.0's sections and field names, filled from moonshard's state.
//!
//! INFO runs with every shard entered, so the figures that live in the
//! shards (keys, TTLs, the keyspace's memory, the Lua VMs) are one point in
//! time. A Redis field moonshard cannot fill truthfully is left out (the
//! list and the reasons are in tests/diff_info.rs); a field that is
//! truthfully constant here (no forks, no replicas, no active defrag)
//! reports that constant.
//!
//! Beyond Redis: the `shards` section (`INFO shards` or `INFO everything`),
//! one line per shard.

use crate::commands::Ctx;
use crate::protocol::Reply;
use crate::server::Server;
use crate::stats::sampler::{self, Metric};
use bytes::Bytes;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Sections in output order, and whether `INFO` / `INFO default` and
/// `INFO all` show each (`INFO everything` shows them all).
const SECTIONS: &[(&str, bool, bool)] = &[
    ("server", true, true),
    ("clients", true, true),
    ("memory", true, true),
    ("persistence", true, true),
    ("stats", true, true),
    ("replication", true, true),
    ("cpu", true, true),
    ("modules", true, true),
    ("commandstats", false, true),
    ("errorstats", true, true),
    ("latencystats", false, true),
    ("cluster", true, true),
    ("keyspace", true, true),
    ("shards", false, false),
];

/// TTLs sampled per database of each shard for `avg_ttl`.
const TTL_SAMPLES: usize = 64;

/// What INFO reads in the shards while it has them entered.
#[derive(Default)]
struct ShardFigures {
    /// Per database: keys, keys with a TTL, and the sum of the sampled TTLs
    /// (ms) with the number sampled.
    dbs: Vec<DbFigures>,
    /// Per shard: keys and keys with a TTL over all databases.
    shards: Vec<(u64, u64)>,
    /// The keyspace structures' own memory (`used_memory_overhead`).
    keyspace_overhead: u64,
    /// Bytes the shards' Lua VMs use.
    lua_vms: u64,
}

#[derive(Default, Clone, Copy)]
struct DbFigures {
    keys: u64,
    expires: u64,
    /// Σ over shards of (mean sampled TTL × keys with a TTL), for a mean
    /// weighted by each shard's share.
    ttl_weighted: f64,
}

/// INFO, with every shard entered so the keyspace figures are one point in time.
pub fn info(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let wanted = selected(&args[1..]);
    let server = ctx.server;
    let now = crate::storage::now_ms();
    let mut figures = ShardFigures { dbs: vec![DbFigures::default(); server.databases()], ..Default::default() };
    let mut rng = rand::thread_rng();
    let mut lazily_expired = 0;
    for shard in ctx.shards().iter_mut() {
        let (mut keys, mut expires) = (0, 0);
        for (i, db) in shard.dbs.iter_mut().enumerate() {
            // Keys reaped on access and not yet counted by the expiry cycle.
            lazily_expired += db.take_lazy_expired();
            let (k, e) = (db.len() as u64, db.volatile_len() as u64);
            (keys, expires) = (keys + k, expires + e);
            let d = &mut figures.dbs[i];
            d.keys += k;
            d.expires += e;
            if e > 0 && wanted.contains(&"keyspace") {
                let ttls = db.sample_ttls(now, TTL_SAMPLES, &mut rng);
                if !ttls.is_empty() {
                    d.ttl_weighted += ttls.iter().sum::<u64>() as f64 / ttls.len() as f64 * e as f64;
                }
            }
            let (main, expires) = db.overhead();
            figures.keyspace_overhead += (main + expires) as u64;
        }
        figures.shards.push((keys, expires));
        figures.lua_vms += crate::scripting::ShardScripting::vm_memory_of(&shard.scripting) as u64;
    }
    if lazily_expired > 0 {
        server.stats.expired_keys.fetch_add(lazily_expired, Ordering::Relaxed);
    }
    let mut text = String::new();
    for (name, ..) in SECTIONS {
        if !wanted.iter().any(|w| w == name) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        render(server, name, &figures, &mut text);
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
            "all" => out.extend(SECTIONS.iter().filter(|s| s.2).map(|s| s.0)),
            "everything" => out.extend(SECTIONS.iter().map(|s| s.0)),
            _ => out.extend(SECTIONS.iter().map(|s| s.0).filter(|s| *s == a)),
        }
    }
    out
}

fn render(server: &Server, name: &str, figures: &ShardFigures, out: &mut String) {
    let title = match name {
        "cpu" => "CPU".to_string(),
        other => {
            let mut t = other.to_string();
            t[..1].make_ascii_uppercase();
            t
        }
    };
    let _ = write!(out, "# {title}\r\n");
    // Each field goes straight into the text (INFO is what exporters and
    // client libraries' ready checks call: no formatting machinery per line).
    let mut f = |k: &str, v: String| {
        out.push_str(k);
        out.push(':');
        out.push_str(&v);
        out.push_str("\r\n");
    };
    match name {
        "server" => server_section(server, &mut f),
        "clients" => clients_section(server, &mut f),
        "memory" => memory_section(server, figures, &mut f),
        "persistence" => persistence_section(server, &mut f),
        "stats" => stats_section(server, &mut f),
        "replication" => replication_section(server, &mut f),
        "cpu" => cpu_section(&mut f),
        "commandstats" => commandstats(server, &mut f),
        "errorstats" => {
            for (code, n) in server.stats.errors.lock().iter() {
                f(&format!("errorstat_{}", safe(code)), format!("count={n}"));
            }
        }
        "latencystats" => latencystats(server, &mut f),
        "cluster" => f("cluster_enabled", if server.cluster.is_some() { "1" } else { "0" }.into()),
        "keyspace" => {
            for (i, d) in figures.dbs.iter().enumerate() {
                if d.keys > 0 || d.expires > 0 {
                    let avg_ttl = if d.expires > 0 { (d.ttl_weighted / d.expires as f64) as u64 } else { 0 };
                    f(&format!("db{i}"), format!("keys={},expires={},avg_ttl={avg_ttl}", d.keys, d.expires));
                }
            }
        }
        "shards" => shards_section(server, figures, &mut f),
        _ => {}
    }
}

type Field<'a> = dyn FnMut(&str, String) + 'a;

/// A name as INFO may show it: Redis replaces the characters that would
/// break the format (`#`, `:`, CR, LF) with `_`.
fn safe(name: &str) -> String {
    name.replace(['#', ':', '\r', '\n'], "_")
}

/// A stable identifier of this build: a hash of the version and the target.
fn build_id() -> String {
    let id = format!(
        "moonshard {} {} {}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    // FNV-1a, 64 bits.
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    format!("{h:x}")
}

fn server_section(server: &Server, f: &mut Field) {
    let uptime = server.started.elapsed().as_secs();
    // Read once, as Redis calls uname once and keeps its executable's path.
    static OS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static EXECUTABLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let os = OS.get_or_init(|| {
        let read = |p: &str| crate::util::read_proc(p).map(|s| s.trim().to_string());
        let kernel = read("/proc/sys/kernel/ostype").unwrap_or_else(|| "Linux".into());
        format!("{kernel} {} {}", read("/proc/sys/kernel/osrelease").unwrap_or_default(), std::env::consts::ARCH)
    });
    let executable = EXECUTABLE
        .get_or_init(|| std::env::current_exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default());
    f("redis_version", crate::REDIS_VERSION.into());
    // No git revision is built in: Redis shows the same when built outside git.
    f("redis_git_sha1", "00000000".into());
    f("redis_git_dirty", "0".into());
    f("redis_build_id", build_id());
    f("redis_mode", "standalone".into());
    f("moonshard_version", env!("CARGO_PKG_VERSION").into());
    f("os", os.clone());
    f("arch_bits", (usize::BITS).to_string());
    f("monotonic_clock", "POSIX clock_gettime".into());
    f("multiplexing_api", "epoll".into());
    f("atomicvar_api", "c11-builtin".into());
    f("process_id", std::process::id().to_string());
    f("process_supervised", "no".into());
    f("run_id", server.run_id.clone());
    f("tcp_port", server.port.load(Ordering::Relaxed).to_string());
    f("server_time_usec", (crate::util::clock_ns() / 1000).to_string());
    f("uptime_in_seconds", uptime.to_string());
    f("uptime_in_days", (uptime / 86400).to_string());
    // moonshard's background duties run every 100 ms whatever `hz` says.
    f("hz", "10".into());
    f("configured_hz", server.config.get("hz").unwrap_or_else(|| "10".into()));
    f("lru_clock", ((crate::storage::now_ms() / 1000) & ((1 << 24) - 1)).to_string());
    f("executable", executable.clone());
    f("config_file", server.config.file.clone().unwrap_or_default());
    // Connections are read and written by several worker threads at once.
    f("io_threads_active", u8::from(server.io_threads > 1).to_string());
    if server.shutdown_waiting.load(Ordering::SeqCst) > 0 {
        let left = server.shutdown_deadline_ms.load(Ordering::SeqCst).saturating_sub(crate::storage::now_ms());
        f("shutdown_in_milliseconds", left.to_string());
    }
    f("shards", server.shards.len().to_string());
}

fn clients_section(server: &Server, f: &mut Field) {
    let s = &server.stats;
    let (live_in, live_out) = sampler::fold_client_peaks(server, false);
    let (recent_in, recent_out) = s.sampler.lock().recent_peaks(crate::storage::now_ms() / 1000);
    // As Redis: every client but the replicas (listed under replication).
    let replicas = server.replicas.links().len();
    f("connected_clients", server.clients.len().saturating_sub(replicas).to_string());
    // Redis counts two connections (in and out) per known node.
    let known = server.cluster.as_ref().map_or(1, |c| c.state.lock().nodes.len());
    f("cluster_connections", (known.saturating_sub(1) * 2).to_string());
    f("maxclients", server.config.maxclients.load(Ordering::Relaxed).to_string());
    f("client_recent_max_input_buffer", recent_in.max(live_in).to_string());
    f("client_recent_max_output_buffer", recent_out.max(live_out).to_string());
    // (SHUTDOWNs waiting for replicas are blocked clients too, as in Redis.)
    let blocked = s.blocked_clients.load(Ordering::Relaxed) + server.shutdown_waiting.load(Ordering::SeqCst) as u64;
    f("blocked_clients", blocked.to_string());
    f("tracking_clients", server.tracking.figures().0.to_string());
    f("clients_in_timeout_table", s.clients_in_timeout_table.load(Ordering::Relaxed).to_string());
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

fn ratio(part: u64, whole: u64) -> String {
    format!("{:.2}", if whole == 0 { 0.0 } else { part as f64 / whole as f64 })
}

fn memory_section(server: &Server, figures: &ShardFigures, f: &mut Field) {
    let m = crate::commands::memory::Breakdown::now(server, figures.keyspace_overhead);
    let (used, rss, peak, startup, overhead, dataset) = (m.used, m.rss, m.peak, m.startup, m.overhead, m.dataset);
    let (allocated, active, resident) = (m.allocated, m.active, m.resident);
    let (scripts_eval, functions_mem, backlog) = (m.scripts_eval, m.functions, m.backlog);
    let maxmemory = server.config.maxmemory.load(Ordering::Relaxed);
    let system = crate::util::total_system_memory();
    let perc =
        |part: u64, whole: u64| format!("{:.2}%", if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 });
    let scripts = &server.scripts;
    let (functions, libraries, _) = scripts.functions.figures();
    // Every shard's VM runs scripts and functions alike, plus the VM that checks scripts.
    let vm = figures.lua_vms + scripts.checker_memory() as u64;
    f("used_memory", used.to_string());
    f("used_memory_human", human(used));
    f("used_memory_rss", rss.to_string());
    f("used_memory_rss_human", human(rss));
    f("used_memory_peak", peak.to_string());
    f("used_memory_peak_human", human(peak));
    f("used_memory_peak_perc", perc(used, peak));
    f("used_memory_overhead", overhead.to_string());
    f("used_memory_startup", startup.to_string());
    f("used_memory_dataset", dataset.to_string());
    f("used_memory_dataset_perc", perc(dataset, used.saturating_sub(startup).max(1)));
    f("allocator_allocated", allocated.to_string());
    f("allocator_active", active.to_string());
    f("allocator_resident", resident.to_string());
    f("total_system_memory", system.to_string());
    f("total_system_memory_human", human(system));
    f("used_memory_lua", vm.to_string());
    f("used_memory_vm_eval", vm.to_string());
    f("used_memory_lua_human", human(vm));
    f("used_memory_scripts_eval", scripts_eval.to_string());
    f("number_of_cached_scripts", scripts.len().to_string());
    f("number_of_functions", functions.to_string());
    f("number_of_libraries", libraries.to_string());
    f("used_memory_vm_total", vm.to_string());
    f("used_memory_vm_total_human", human(vm));
    f("used_memory_functions", functions_mem.to_string());
    f("used_memory_scripts", (scripts_eval + functions_mem).to_string());
    f("used_memory_scripts_human", human(scripts_eval + functions_mem));
    f("maxmemory", maxmemory.to_string());
    f("maxmemory_human", human(maxmemory));
    f("maxmemory_policy", server.config.get("maxmemory-policy").unwrap_or_else(|| "noeviction".into()));
    f("allocator_frag_ratio", ratio(active, allocated));
    f("allocator_frag_bytes", active.saturating_sub(allocated).to_string());
    f("allocator_rss_ratio", ratio(resident, active));
    f("allocator_rss_bytes", (resident as i64 - active as i64).to_string());
    f("rss_overhead_ratio", ratio(rss, resident));
    f("rss_overhead_bytes", (rss as i64 - resident as i64).to_string());
    f("mem_fragmentation_ratio", ratio(rss, used));
    f("mem_fragmentation_bytes", (rss as i64 - used as i64).to_string());
    // Eviction counts all of used_memory: nothing is left out.
    f("mem_not_counted_for_evict", "0".into());
    f("mem_replication_backlog", backlog.to_string());
    // The backlog plus the stream queued for each replica (Redis shares one
    // buffer between them; here each replica has its queue).
    f("mem_total_replication_buffers", (backlog + m.queued_for_replicas).to_string());
    f("mem_clients_slaves", (m.replica_clients + m.queued_for_replicas).to_string());
    f("mem_clients_normal", m.clients_normal.to_string());
    f("mem_cluster_links", m.cluster_links.to_string());
    f("mem_aof_buffer", m.aof_buffer.to_string());
    f("mem_allocator", "mimalloc".into());
    f("active_defrag_running", "0".into());
    f("lazyfree_pending_objects", crate::storage::lazyfree::pending().to_string());
    f("lazyfreed_objects", crate::storage::lazyfree::freed().to_string());
}

fn persistence_section(server: &Server, f: &mut Field) {
    let s = &server.stats;
    let p = &server.persist;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
    let now = crate::storage::now_ms() / 1000;
    let lastsave = server.lastsave.load(Ordering::Relaxed);
    let changes = s.dirty.load(Ordering::Relaxed).saturating_sub(s.dirty_at_save.load(Ordering::Relaxed));
    let loading = p.loading.load(Ordering::Relaxed);
    let job = p.running();
    let rdb_job = job.as_ref().filter(|j| j.kind == crate::persist::save::JobKind::Rdb);
    let aof_job = job.as_ref().filter(|j| j.kind == crate::persist::save::JobKind::AofRewrite);
    // No fork: the copy-on-write figures are the bytes of keys the running
    // save copied before they changed, waiting to be written.
    let (cow, cow_peak, processed, total, current_secs) = match &job {
        Some(j) => (
            j.queued_bytes.load(Ordering::Relaxed),
            j.peak_bytes.load(Ordering::Relaxed),
            j.keys_done.load(Ordering::Relaxed),
            j.keys_total,
            now.saturating_sub(j.started_secs) as i64,
        ),
        None => (0, 0, 0, 0, -1),
    };
    let aof = server.aof.lock().clone();
    let aof_write_ok = aof.as_ref().is_none_or(|a| a.write_ok.load(Ordering::Relaxed));
    let status = |ok: bool| if ok { "ok" } else { "err" }.to_string();
    f("loading", (loading as u8).to_string());
    f("async_loading", u8::from(p.async_loading.load(Ordering::Relaxed)).to_string());
    f("current_cow_peak", cow_peak.to_string());
    f("current_cow_size", cow.to_string());
    f("current_cow_size_age", "0".into());
    // Redis's progress of the running save, in percent of the keys written.
    let perc = if total == 0 { 0.0 } else { processed as f64 * 100.0 / total as f64 };
    f("current_fork_perc", format!("{perc:.2}"));
    f("current_save_keys_processed", processed.to_string());
    f("current_save_keys_total", total.to_string());
    if loading {
        let total = p.loading_total_bytes.load(Ordering::Relaxed);
        let done = p.loading_loaded_bytes.load(Ordering::Relaxed);
        let started = p.loading_started.load(Ordering::Relaxed);
        let perc = if total == 0 { 0.0 } else { done as f64 * 100.0 / total as f64 };
        let elapsed = now.saturating_sub(started);
        let eta = if done == 0 { 1 } else { (total.saturating_sub(done) as f64 * elapsed as f64 / done as f64) as u64 };
        f("loading_start_time", started.to_string());
        f("loading_total_bytes", total.to_string());
        f("loading_rdb_used_mem", get(&p.loading_rdb_used_mem));
        f("loading_loaded_bytes", done.to_string());
        f("loading_loaded_perc", format!("{perc:.2}"));
        f("loading_eta_seconds", eta.to_string());
    }
    f("rdb_changes_since_last_save", changes.to_string());
    f("rdb_bgsave_in_progress", (rdb_job.is_some() as u8).to_string());
    f("rdb_last_save_time", lastsave.to_string());
    f("rdb_last_bgsave_status", status(p.last_bgsave_ok.load(Ordering::Relaxed)));
    f("rdb_last_bgsave_time_sec", p.last_bgsave_secs.load(Ordering::Relaxed).to_string());
    f("rdb_current_bgsave_time_sec", if rdb_job.is_some() { current_secs } else { -1 }.to_string());
    f("rdb_saves", get(&s.rdb_saves));
    f("rdb_last_cow_size", get(&p.last_cow_bytes));
    f("rdb_last_load_keys_expired", get(&p.last_load_keys_expired));
    f("rdb_last_load_keys_loaded", get(&p.last_load_keys_loaded));
    let aof_on = aof.is_some() || p.aof_initial.load(Ordering::Relaxed);
    f("aof_enabled", u8::from(aof_on).to_string());
    f("aof_rewrite_in_progress", (aof_job.is_some() as u8).to_string());
    f("aof_rewrite_scheduled", (p.aof_rewrite_scheduled.load(Ordering::Relaxed) as u8).to_string());
    f("aof_last_rewrite_time_sec", p.aof_last_rewrite_secs.load(Ordering::Relaxed).to_string());
    f("aof_current_rewrite_time_sec", if aof_job.is_some() { current_secs } else { -1 }.to_string());
    f("aof_last_bgrewrite_status", status(p.aof_rewrite_ok.load(Ordering::Relaxed)));
    f("aof_rewrites", get(&p.aof_rewrites));
    f("aof_rewrites_consecutive_failures", get(&p.aof_rewrite_failures));
    f("aof_last_write_status", status(aof_write_ok));
    f("aof_last_cow_size", get(&p.aof_last_cow_bytes));
    f("module_fork_in_progress", "0".into());
    f("module_fork_last_cow_size", "0".into());
    if let Some(a) = &aof {
        f("aof_current_size", a.current_size().to_string());
        f("aof_base_size", get(&p.aof_base_size));
        f("aof_pending_rewrite", (p.aof_rewrite_scheduled.load(Ordering::Relaxed) as u8).to_string());
        f("aof_buffer_length", a.pending_len().to_string());
        // The AOF's thread writes and fsyncs itself: no background fsync job
        // is ever queued, and no write ever waits for one.
        f("aof_pending_bio_fsync", "0".into());
        f("aof_delayed_fsync", "0".into());
    }
}

fn replication_section(server: &Server, f: &mut Field) {
    use std::sync::atomic::Ordering::Relaxed;
    let replicas = &server.replicas;
    let now = crate::storage::now_ms() / 1000;
    let following = replicas.following.lock();
    let (offset, replid2, second, backlog, size, first, histlen) = {
        let h = replicas.history.lock();
        (h.offset, h.replid2.clone(), h.second_offset, h.has_backlog(), h.limit, h.first_byte_offset(), h.histlen())
    };
    if let Some((host, port)) = &following.master {
        let ago = now.saturating_sub(following.last_io);
        f("role", "slave".into());
        f("master_host", host.clone());
        f("master_port", port.to_string());
        f("master_link_status", if following.link_up { "up" } else { "down" }.into());
        f("master_last_io_seconds_ago", if following.link_up { ago.to_string() } else { "-1".into() });
        f("master_sync_in_progress", u8::from(following.sync_in_progress).to_string());
        f("slave_read_repl_offset", offset.to_string());
        f("slave_repl_offset", offset.to_string());
        let t = &replicas.transfer;
        if following.sync_in_progress && t.active.load(Relaxed) {
            let (size, read) = (t.size.load(Relaxed), t.read.load(Relaxed) as i64);
            let perc = if size > 0 { read as f64 * 100.0 / size as f64 } else { 0.0 };
            f("master_sync_total_bytes", size.to_string());
            f("master_sync_read_bytes", read.to_string());
            f("master_sync_left_bytes", (size - read).to_string());
            f("master_sync_perc", format!("{perc:.2}"));
            f("master_sync_last_io_seconds_ago", now.saturating_sub(t.last_io.load(Relaxed)).to_string());
        }
        if !following.link_up {
            // -1 when no link to a master was ever lost (Redis's repl_down_since 0).
            let since = following.down_since;
            f(
                "master_link_down_since_seconds",
                if since == 0 { -1 } else { now.saturating_sub(since) as i64 }.to_string(),
            );
        }
        f("slave_priority", server.config.get("replica-priority").unwrap_or_else(|| "100".into()));
        let ro = server.config.get("replica-read-only").as_deref() != Some("no");
        f("slave_read_only", u8::from(ro).to_string());
        let announced = server.config.get("replica-announced").as_deref() != Some("no");
        f("replica_announced", u8::from(announced).to_string());
    } else {
        f("role", "master".into());
    }
    drop(following);
    let links = replicas.links();
    f("connected_slaves", links.len().to_string());
    if server.config.writes_need_replicas.load(Relaxed) {
        let lag = server.config.get_i64("min-replicas-max-lag").max(0) as u64;
        let good = replicas.online().iter().filter(|l| now.saturating_sub(l.last_ack.load(Relaxed)) <= lag).count();
        f("min_slaves_good_slaves", good.to_string());
    }
    for (i, l) in links.iter().enumerate() {
        let online = l.online.load(Relaxed);
        // As Redis: waiting for (or receiving) a snapshot being made, then,
        // for a disk-based sync, receiving the saved file.
        let state = match (online, l.sending_file.load(Relaxed)) {
            (true, _) => "online",
            (false, true) => "send_bulk",
            (false, false) => "wait_bgsave",
        };
        let ack = l.ack.load(Relaxed);
        let lag = now.saturating_sub(l.last_ack.load(Relaxed));
        f(&format!("slave{i}"), format!("ip={},port={},state={state},offset={ack},lag={lag}", l.ip, l.port));
    }
    f("master_failover_state", crate::replication::failover::phase(server).name().into());
    f("master_replid", server.replid.lock().clone());
    f("master_replid2", replid2);
    f("master_repl_offset", offset.to_string());
    f("second_repl_offset", second.to_string());
    f("repl_backlog_active", u8::from(backlog).to_string());
    f("repl_backlog_size", size.to_string());
    f("repl_backlog_first_byte_offset", first.to_string());
    f("repl_backlog_histlen", histlen.to_string());
}

fn stats_section(server: &Server, f: &mut Field) {
    let s = &server.stats;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
    let (ops, input, output, repl_input, repl_output) = {
        let sampler = s.sampler.lock();
        (
            sampler.rate(Metric::Commands),
            sampler.rate(Metric::NetInput),
            sampler.rate(Metric::NetOutput),
            sampler.rate(Metric::ReplInput),
            sampler.rate(Metric::ReplOutput),
        )
    };
    let kbps = |bytes_per_sec: u64| format!("{:.2}", bytes_per_sec as f64 / 1024.0);
    let shards = &server.shards.list;
    let stale = shards.iter().map(|sh| f64::from_bits(sh.stats.stale_perc.load(Ordering::Relaxed))).sum::<f64>()
        / shards.len().max(1) as f64;
    let (exceeded_total, exceeded_now) = s.eviction_exceeded_ms();
    let (channels, patterns, shard_channels) = server.pubsub.counts();
    let threaded = server.io_threads > 1;
    f("total_connections_received", get(&s.connections_received));
    f("total_commands_processed", get(&s.commands_processed));
    f("instantaneous_ops_per_sec", ops.to_string());
    f("total_net_input_bytes", get(&s.net_input_bytes));
    f("total_net_output_bytes", get(&s.net_output_bytes));
    f("total_net_repl_input_bytes", get(&s.net_repl_input_bytes));
    f("total_net_repl_output_bytes", get(&s.net_repl_output_bytes));
    f("instantaneous_input_kbps", kbps(input));
    f("instantaneous_output_kbps", kbps(output));
    f("instantaneous_input_repl_kbps", kbps(repl_input));
    f("instantaneous_output_repl_kbps", kbps(repl_output));
    f("rejected_connections", get(&s.rejected_connections));
    f("sync_full", get(&server.replicas.sync_full));
    f("sync_partial_ok", get(&server.replicas.sync_partial_ok));
    f("sync_partial_err", get(&server.replicas.sync_partial_err));
    f("expired_keys", get(&s.expired_keys));
    f("expired_stale_perc", format!("{:.2}", stale * 100.0));
    f("expired_time_cap_reached_count", get(&s.expire_time_cap_reached));
    f("expire_cycle_cpu_milliseconds", (s.expire_cycle_us.load(Ordering::Relaxed) / 1000).to_string());
    f("evicted_keys", get(&s.evicted_keys));
    f("evicted_clients", get(&s.evicted_clients));
    f("total_eviction_exceeded_time", exceeded_total.to_string());
    f("current_eviction_exceeded_time", exceeded_now.to_string());
    f("keyspace_hits", get(&s.keyspace_hits));
    f("keyspace_misses", get(&s.keyspace_misses));
    f("pubsub_channels", channels.to_string());
    f("pubsub_patterns", patterns.to_string());
    f("pubsubshard_channels", shard_channels.to_string());
    // moonshard never forks (saves are fork-less snapshots) nor defragments.
    f("latest_fork_usec", "0".into());
    f("total_forks", "0".into());
    f("migrate_cached_sockets", crate::commands::dump::cached_sockets().to_string());
    // A writable replica keeps no table of the keys it gave a TTL itself
    // (Redis's slaveKeysWithExpire): it tracks none.
    f("slave_expires_tracked_keys", "0".into());
    f("active_defrag_hits", "0".into());
    f("active_defrag_misses", "0".into());
    f("active_defrag_key_hits", "0".into());
    f("active_defrag_key_misses", "0".into());
    f("total_active_defrag_time", "0".into());
    f("current_active_defrag_time", "0".into());
    let (_, tracked_keys, tracked_items, prefixes) = server.tracking.figures();
    f("tracking_total_keys", tracked_keys.to_string());
    f("tracking_total_items", tracked_items.to_string());
    f("tracking_total_prefixes", prefixes.to_string());
    f("unexpected_error_replies", get(&s.unexpected_error_replies));
    f("total_error_replies", get(&s.error_replies));
    f("dump_payload_sanitizations", get(&s.dump_payload_sanitizations));
    f("total_reads_processed", get(&s.reads_processed));
    f("total_writes_processed", get(&s.writes_processed));
    // Every read and write runs on one of the worker threads when there are several.
    f("io_threaded_reads_processed", if threaded { get(&s.reads_processed) } else { "0".into() });
    f("io_threaded_writes_processed", if threaded { get(&s.writes_processed) } else { "0".into() });
}

/// Seconds of CPU time (user, system) of this process.
fn cpu_times() -> (libc::timeval, libc::timeval) {
    // SAFETY: getrusage writes one rusage struct through the pointer, which
    // points at a zeroed, properly aligned value owned by this frame.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always a valid target.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        let zero = libc::timeval { tv_sec: 0, tv_usec: 0 };
        return (zero, zero);
    }
    (usage.ru_utime, usage.ru_stime)
}

/// Which threads of the process are the runtime's, by thread id: a thread's
/// name is read once, not at every INFO (those reads were a third of an
/// INFO's cost). Threads that ended are forgotten at the next INFO.
static RUNTIME_TIDS: parking_lot::Mutex<Vec<(u64, bool)>> = parking_lot::Mutex::new(Vec::new());

/// CPU time (user, system) of the runtime's threads, in clock ticks, from
/// /proc (None where it cannot be read).
fn runtime_threads_cpu() -> Option<(u64, u64)> {
    let (mut user, mut sys, mut seen) = (0u64, 0u64, false);
    let mut known = RUNTIME_TIDS.lock();
    let mut now: Vec<(u64, bool)> = Vec::with_capacity(known.len());
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path();
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<u64>().ok()) else { continue };
        // The runtime's threads: its workers and the threads that take a
        // worker's place while a long script runs (block_in_place).
        let runtime = match known.iter().find(|(t, _)| *t == tid) {
            Some(&(_, runtime)) => runtime,
            None => crate::util::read_proc(path.join("comm"))
                .is_some_and(|name| name.trim_end() == crate::RUNTIME_THREAD_NAME),
        };
        now.push((tid, runtime));
        if !runtime {
            continue;
        }
        let Some(stat) = crate::util::read_proc(path.join("stat")) else { continue };
        // The fields after the name (which ends with the last ')'):
        // state is the 3rd field, utime the 14th and stime the 15th.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut fields = rest.split_ascii_whitespace().skip(11);
        let (Some(u), Some(s)) = (fields.next(), fields.next()) else { continue };
        let (Ok(u), Ok(s)) = (u.parse::<u64>(), s.parse::<u64>()) else { continue };
        (user, sys, seen) = (user + u, sys + s, true);
    }
    *known = now;
    seen.then_some((user, sys))
}

fn cpu_section(f: &mut Field) {
    let (user, sys) = cpu_times();
    let secs = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    f("used_cpu_sys", secs(sys));
    f("used_cpu_user", secs(user));
    // moonshard never forks: no child ever used CPU.
    f("used_cpu_sys_children", "0.000000".into());
    f("used_cpu_user_children", "0.000000".into());
    // Redis's main thread is the one that reads requests, runs commands and
    // writes replies; here the runtime's threads all do that (the
    // background threads, as Redis's bio and fork children, are left out),
    // so these are their sum. Clock ticks, so 1/100 s steps.
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if let (Some((user, sys)), true) = (runtime_threads_cpu(), hz > 0) {
        let hz = hz as u64;
        let secs = |ticks: u64| format!("{}.{:06}", ticks / hz, (ticks % hz) * 1_000_000 / hz);
        f("used_cpu_sys_main_thread", secs(sys));
        f("used_cpu_user_main_thread", secs(user));
    }
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
            &format!("cmdstat_{}", safe(spec.name)),
            format!(
                "calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}"
            ),
        );
    }
}

/// `latency-tracking-info-percentiles`: the numbers in 0..=100 it lists.
fn info_percentiles(server: &Server) -> Vec<f64> {
    let value = server.config.get("latency-tracking-info-percentiles").unwrap_or_default();
    value.split_whitespace().filter_map(|p| p.parse::<f64>().ok()).filter(|p| (0.0..=100.0).contains(p)).collect()
}

/// A percentile as Redis names it: `%f` with the trailing zeros (and dot) trimmed.
fn percentile_name(p: f64) -> String {
    let s = format!("{p:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn latencystats(server: &Server, f: &mut Field) {
    let tracker = &server.observers.latency;
    if !tracker.enabled.load(Ordering::Relaxed) {
        return;
    }
    let pcts = info_percentiles(server);
    let names: Vec<String> = pcts.iter().map(|&p| percentile_name(p)).collect();
    for (id, spec) in crate::commands::registry::all().iter().enumerate() {
        let Some(values) = tracker.percentiles(id, &pcts) else {
            continue;
        };
        let line: Vec<String> = names.iter().zip(values).map(|(n, v)| format!("p{n}={v:.3}")).collect();
        f(&format!("latency_percentiles_usec_{}", safe(spec.name)), line.join(","));
    }
}

/// Beyond Redis: one line per shard with its keys, keys with a TTL, the
/// commands run on it, the time it was held running them and how often a
/// command had to wait for it.
fn shards_section(server: &Server, figures: &ShardFigures, f: &mut Field) {
    for (shard, &(keys, expires)) in server.shards.list.iter().zip(&figures.shards) {
        let s = &shard.stats;
        f(
            &format!("shard{}", shard.id),
            format!(
                "keys={keys},expires={expires},commands={},busy_usec={},lock_waits={}",
                s.commands.load(Ordering::Relaxed),
                s.busy_ns.load(Ordering::Relaxed) / 1000,
                s.lock_waits.load(Ordering::Relaxed)
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
        assert!(!selected(&[b("all")]).contains(&"shards"));
        assert!(selected(&[b("everything")]).contains(&"shards"));
        assert_eq!(selected(&[b("shards")]), vec!["shards"]);
        assert_eq!(selected(&[b("keyspace"), b("server")]), vec!["keyspace", "server"]);
        assert!(selected(&[b("nosuch")]).is_empty());
        assert_eq!(human(1024), "1.00K");
        assert_eq!(human(10), "10B");
    }

    #[test]
    fn percentile_names_as_redis_prints_them() {
        assert_eq!(percentile_name(50.0), "50");
        assert_eq!(percentile_name(99.9), "99.9");
        assert_eq!(percentile_name(99.99), "99.99");
        assert_eq!(percentile_name(0.5), "0.5");
        assert_eq!(safe("a:b#c"), "a_b_c");
    }
}
