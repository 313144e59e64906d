//! MEMORY (Redis's object.c `memoryCommand`): a key's footprint, the
//! server's memory breakdown, a diagnosis, the allocator's figures, and a
//! request to the allocator to give memory back. Also LOLWUT, the other
//! command that reports on the server itself in free text.
//!
//! moonshard allocates through mimalloc wrapped by a byte counter
//! (`storage::memory`): `used_memory` has Redis's meaning. Key figures come
//! from the layouts themselves (`storage::usage`), so they describe
//! moonshard's encodings, not Redis's: a plausible size that grows with the
//! value, not Redis's number.

use super::{ConnCtx, Ctx};
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::storage::{memory, usage};
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

// ------------------------------------------------------------ declarations

static MEMORY_SUBS: &[CommandSpec] = &[
    cmd("memory|doctor", 2, 0, NOKEYS, G::Server, C(memory_doctor))
        .doc("4.0.0", "Diagnoses the server's memory use in plain words.")
        .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
    cmd("memory|malloc-stats", 2, 0, NOKEYS, G::Server, C(memory_malloc_stats))
        .doc("4.0.0", "Reports the allocator's own figures.")
        .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
    cmd("memory|purge", 2, 0, NOKEYS, G::Server, C(memory_purge))
        .doc("4.0.0", "Asks the allocator to return free memory to the system.")
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    cmd("memory|stats", 2, 0, NOKEYS, G::Server, All(memory_stats))
        .doc("4.0.0", "Breaks the server's memory use down by purpose.")
        .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
    cmd("memory|usage", -3, READONLY, K2, G::Server, K(memory_usage))
        .syntax("key%k [SAMPLES count%i]")
        .doc("4.0.0", "Estimates the bytes a key and its value take.")
        .key_specs(&[ks(&["RO"], idx(2), range(0, 1, 0))]),
    cmd("memory|help", 2, LOADING | STALE, NOKEYS, G::Server, C(memory_help))
        .doc("4.0.0", "Lists the MEMORY subcommands."),
];

pub static COMMANDS: &[CommandSpec] = &[
    container("memory", -2, 0, G::Server, MEMORY_SUBS).doc("4.0.0", "Container for memory diagnostics subcommands."),
    cmd("lolwut", -1, READONLY | FAST, NOKEYS, G::Server, C(super::lolwut::lolwut))
        .syntax("[VERSION version%i]")
        .doc("5.0.0", "Draws a piece of generative art and names the server's version."),
];

// ------------------------------------------------------------ USAGE

/// MEMORY USAGE key [SAMPLES count]: options are checked before the key
/// is looked up; the key is found as the table holds it (no expiry check,
/// no hit/miss accounting, no access recorded), as Redis does.
pub fn memory_usage(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut samples = usage::DEFAULT_SAMPLES;
    let mut j = 3;
    while j < args.len() {
        if eq_ic(&args[j], "samples") && j + 1 < args.len() {
            let Some(n) = parse_i64(&args[j + 1]) else {
                return Reply::not_integer();
            };
            if n < 0 {
                return Reply::syntax_error();
            }
            // 0 measures every element.
            samples = usize::try_from(n).unwrap_or(usize::MAX);
            j += 1;
        } else {
            return Reply::syntax_error();
        }
        j += 1;
    }
    let key = &args[2];
    match ctx.db(key).memory_usage(key, samples) {
        Some(n) => Reply::Int(n as i64),
        None => Reply::Nil,
    }
}

// ------------------------------------------------------------ STATS

/// The server's memory breakdown, computed in one place for INFO memory,
/// MEMORY STATS, MEMORY DOCTOR and MALLOC-STATS.
pub struct Breakdown {
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    pub rss: u64,
    /// The allocator's view: what it handed out, and what it holds for its
    /// pages (mimalloc reports the same for active and resident on Linux).
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
    /// Ordinary clients' connections and buffers.
    pub clients_normal: u64,
    /// Replicas' connections, and the stream queued for them (Redis shares
    /// one buffer between replicas; here each replica has its queue).
    pub replica_clients: u64,
    pub queued_for_replicas: u64,
    pub backlog: u64,
    pub aof_buffer: u64,
    pub cluster_links: u64,
    pub scripts_eval: u64,
    pub functions: u64,
    /// Everything but the dataset: the above plus the keyspace's structures.
    pub overhead: u64,
    pub dataset: u64,
}

impl Breakdown {
    /// The figures now; `keyspace_overhead` is the keyspace structures' own
    /// memory, summed over the shards by the caller (which holds them).
    pub fn now(server: &crate::server::Server, keyspace_overhead: u64) -> Breakdown {
        let rss = memory::rss_bytes();
        let counting = memory::is_counting();
        // Without the counting allocator (a library embedding), RSS is the only figure.
        let used = if counting { memory::used_memory() } else { rss };
        // Records `used` as a peak too (see `peak_memory`).
        let peak = memory::peak_memory(used);
        let startup = memory::startup_memory().min(used);
        let links = server.replicas.links();
        let replica_ids: Vec<u64> = links.iter().map(|l| l.client.id).collect();
        let (mut clients_normal, mut replica_clients) = (0u64, 0u64);
        for c in server.clients.clients.iter() {
            let c = c.value();
            if replica_ids.contains(&c.id) {
                replica_clients += c.memory();
            } else {
                clients_normal += c.memory();
            }
        }
        let queued_for_replicas: u64 = links.iter().map(|l| l.pending_memory() as u64).sum();
        let backlog = server.replicas.history.lock().backlog_memory() as u64;
        let aof_buffer = server.aof.lock().as_ref().map_or(0, |a| a.pending_memory() as u64);
        let cluster_links = server.cluster.as_ref().map_or(0, |c| c.state.lock().links_memory());
        let scripts_eval = server.scripts.bytes() as u64;
        let functions = server.scripts.functions.figures().2 as u64;
        let overhead = (startup
            + clients_normal
            + replica_clients
            + queued_for_replicas
            + backlog
            + aof_buffer
            + scripts_eval
            + functions
            + keyspace_overhead)
            .min(used);
        let (allocated, active) =
            if counting { (used, crate::storage::alloc::committed().max(used)) } else { (rss, rss) };
        Breakdown {
            used,
            peak,
            startup,
            rss,
            allocated,
            active,
            resident: active,
            clients_normal,
            replica_clients,
            queued_for_replicas,
            backlog,
            aof_buffer,
            cluster_links,
            scripts_eval,
            functions,
            overhead,
            dataset: used - overhead,
        }
    }
}

/// Redis reports its ratios as C floats.
fn ratio(a: u64, b: u64) -> Reply {
    Reply::Double(if b == 0 { 0.0 } else { (a as f64 / b as f64) as f32 as f64 })
}

/// MEMORY STATS with every shard entered (one point in time), in Redis's
/// field names and order (`Breakdown`, the figures INFO memory shows).
pub fn memory_stats(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let s = |t: &str| Reply::bulk_str(t);
    let int = |n: u64| Reply::Int(n.min(i64::MAX as u64) as i64);
    let databases = ctx.server.databases();
    let mut per_db = vec![(0u64, 0u64, 0u64); databases];
    for shard in ctx.shards().iter() {
        for (i, db) in shard.dbs.iter().enumerate() {
            if let Some(d) = per_db.get_mut(i) {
                let (main, expires) = db.overhead();
                d.0 += db.len() as u64;
                d.1 += main as u64;
                d.2 += expires as u64;
            }
        }
    }
    let keyspace_overhead = per_db.iter().map(|&(_, main, expires)| main + expires).sum();
    let f = Breakdown::now(ctx.server, keyspace_overhead);
    let mut out = vec![
        (s("peak.allocated"), int(f.peak)),
        (s("total.allocated"), int(f.used)),
        (s("startup.allocated"), int(f.startup)),
        (s("replication.backlog"), int(f.backlog)),
        (s("clients.slaves"), int(f.replica_clients + f.queued_for_replicas)),
        (s("clients.normal"), int(f.clients_normal)),
        (s("cluster.links"), int(f.cluster_links)),
        (s("aof.buffer"), int(f.aof_buffer)),
        (s("lua.caches"), int(f.scripts_eval)),
        (s("functions.caches"), int(f.functions)),
    ];
    let mut keys = 0;
    for (i, &(count, main, expires)) in per_db.iter().enumerate() {
        if count == 0 {
            continue;
        }
        keys += count;
        let db = vec![(s("overhead.hashtable.main"), int(main)), (s("overhead.hashtable.expires"), int(expires))];
        out.push((Reply::bulk(format!("db.{i}")), Reply::Map(db)));
    }
    let net = f.used.saturating_sub(f.startup);
    out.extend([
        (s("overhead.total"), int(f.overhead)),
        (s("keys.count"), int(keys)),
        (s("keys.bytes-per-key"), int(net.checked_div(keys).unwrap_or(0))),
        (s("dataset.bytes"), int(f.dataset)),
        (s("dataset.percentage"), ratio(f.dataset * 100, net)),
        (s("peak.percentage"), ratio(f.used * 100, f.peak)),
        (s("allocator.allocated"), int(f.allocated)),
        (s("allocator.active"), int(f.active)),
        (s("allocator.resident"), int(f.resident)),
        (s("allocator-fragmentation.ratio"), ratio(f.active, f.allocated)),
        (s("allocator-fragmentation.bytes"), Reply::Int(f.active as i64 - f.allocated as i64)),
        (s("allocator-rss.ratio"), ratio(f.resident, f.active)),
        (s("allocator-rss.bytes"), Reply::Int(f.resident as i64 - f.active as i64)),
        (s("rss-overhead.ratio"), ratio(f.rss, f.resident)),
        (s("rss-overhead.bytes"), Reply::Int(f.rss as i64 - f.resident as i64)),
        (s("fragmentation"), ratio(f.rss, f.used)),
        (s("fragmentation.bytes"), Reply::Int(f.rss as i64 - f.used as i64)),
    ]);
    Reply::Map(out)
}

// ------------------------------------------------------------ DOCTOR

fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", UNITS[u])
    }
}

/// Below this much allocated memory there is nothing worth diagnosing.
const DOCTOR_MIN: u64 = 5 << 20;

/// The report: what looks wrong with memory, and what to do about it.
pub fn doctor_report(server: &crate::server::Server) -> String {
    let f = Breakdown::now(server, 0);
    if f.used < DOCTOR_MIN {
        return format!(
            "This server has allocated only {}, too little for a memory diagnosis to mean anything. \
             Ask again once it holds some data.\n",
            human(f.used)
        );
    }
    let mut findings = Vec::new();
    if f.peak as f64 > f.used as f64 * 1.5 {
        findings.push(format!(
            "* Past peak: the server once allocated {}, against {} now. Memory freed since may still be held \
             by the process (see the fragmentation figures); MEMORY PURGE asks the allocator to return what it can.",
            human(f.peak),
            human(f.used)
        ));
    }
    if f.rss > f.used && f.rss - f.used > 10 << 20 && f.rss as f64 > f.used as f64 * 1.4 {
        findings.push(format!(
            "* Fragmentation: the process occupies {} of RAM for {} allocated ({:.2} times). Frees scattered \
             over many pages leave them partly used; MEMORY PURGE may help, and the figure settles as \
             the data set is rewritten.",
            human(f.rss),
            human(f.used),
            f.rss as f64 / f.used as f64
        ));
    }
    let max = server.config.maxmemory.load(Relaxed);
    if max > 0 && f.used as f64 > max as f64 * 0.9 {
        let policy = server.config.get("maxmemory-policy").unwrap_or_default();
        findings.push(format!(
            "* Near the limit: {} allocated of a maxmemory of {} under the '{policy}' policy. Writes will {} \
             once the limit is passed.",
            human(f.used),
            human(max),
            if policy == "noeviction" { "be refused" } else { "evict keys" }
        ));
    }
    if server.scripts.len() > 1000 {
        findings.push(format!(
            "* Script cache: {} scripts are cached ({}). Scripts built with their arguments inside are \
             cached once per variant; pass arguments through ARGV, or SCRIPT FLUSH.",
            server.scripts.len(),
            human(f.scripts_eval)
        ));
    }
    if findings.is_empty() {
        return format!(
            "No memory problems found: {} allocated, peak {}, {} resident.\n",
            human(f.used),
            human(f.peak),
            human(f.rss)
        );
    }
    let mut report = String::from("Memory findings:\n\n");
    for line in findings {
        report.push_str(&line);
        report.push_str("\n\n");
    }
    report
}

pub fn memory_doctor(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Verbatim("txt", Bytes::from(doctor_report(ctx.server)))
}

// ------------------------------------------------------------ MALLOC-STATS, PURGE

/// What mimalloc reports about the process (its own estimates on Linux).
struct ProcessInfo {
    current_commit: usize,
    peak_commit: usize,
    page_faults: usize,
}

fn process_info() -> ProcessInfo {
    let (mut elapsed, mut user, mut system, mut rss, mut peak_rss) = (0usize, 0usize, 0usize, 0usize, 0usize);
    let (mut commit, mut peak_commit, mut faults) = (0usize, 0usize, 0usize);
    // SAFETY: mi_process_info only writes through the eight pointers it is
    // given, each to a distinct local `usize` that outlives the call; it has
    // no other precondition and may be called from any thread.
    unsafe {
        libmimalloc_sys::mi_process_info(
            &mut elapsed,
            &mut user,
            &mut system,
            &mut rss,
            &mut peak_rss,
            &mut commit,
            &mut peak_commit,
            &mut faults,
        );
    }
    ProcessInfo { current_commit: commit, peak_commit, page_faults: faults }
}

/// mimalloc's version as `major.minor.patch`.
fn mimalloc_version() -> String {
    // SAFETY: mi_version takes nothing and returns a constant.
    let v = unsafe { libmimalloc_sys::mi_version() };
    format!("{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
}

pub fn memory_malloc_stats(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let f = Breakdown::now(ctx.server, 0);
    let p = process_info();
    let text = format!(
        "allocator: mimalloc {}, behind moonshard's byte counter\n\
         counted by moonshard:\n\
         \x20 allocated (used_memory): {}\n\
         \x20 peak allocated: {}\n\
         \x20 allocated at start-up: {}\n\
         reported by the system:\n\
         \x20 resident (RSS): {}\n\
         reported by mimalloc (estimates on this platform):\n\
         \x20 committed: {}\n\
         \x20 peak committed: {}\n\
         \x20 page faults: {}\n",
        mimalloc_version(),
        f.used,
        f.peak,
        f.startup,
        f.rss,
        p.current_commit,
        p.peak_commit,
        p.page_faults
    );
    Reply::Verbatim("txt", Bytes::from(text))
}

/// Asks mimalloc to return the free memory it holds to the system.
pub fn purge() {
    // SAFETY: mi_collect has no precondition: it may run on any thread at
    // any time, frees nothing that is in use, and `force` only makes it
    // also release the free pages it would otherwise keep for reuse. It
    // covers the calling thread's heap and memory shared by all threads
    // (abandoned pages, the arenas); other threads' heaps collect their own
    // free pages as they allocate.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

pub fn memory_purge(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    purge();
    Reply::ok()
}

pub fn memory_help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("MEMORY", crate::commands::help::MEMORY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_and_info_are_callable() {
        purge();
        let p = process_info();
        assert!(p.peak_commit >= p.current_commit || p.peak_commit == 0);
        let v = mimalloc_version();
        assert!(v.starts_with('1') || v.starts_with('2') || v.starts_with('3'), "{v}");
    }

    #[test]
    fn human_units() {
        assert_eq!(human(512), "512B");
        assert_eq!(human(2048), "2.00K");
        assert_eq!(human(5 << 20), "5.00M");
    }
}
