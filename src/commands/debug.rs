//! DEBUG: Redis 7.0's testing and introspection command.
//!
//! Refused unless `enable-debug-command` allows the client (`yes`, or
//! `local` for 127.0.0.1 and ::1): the session checks that before anything
//! else (`dispatch::protected`), as Redis does right after the arity check.
//!
//! DEBUG runs with every shard entered (`Exec::AllShards`), so each
//! subcommand sees one point in time across the whole keyspace, as on a
//! single-threaded Redis: DIGEST covers every shard, DIGEST-VALUE and OBJECT
//! take keys of any slot, and SLEEP stops the whole server for its duration,
//! as Redis's does (it runs inside dispatch, so SLOWLOG and LATENCY see it).
//!
//! What moonshard implements, with Redis's replies: HELP, DIGEST,
//! DIGEST-VALUE, OBJECT, SLEEP, SET-ACTIVE-EXPIRE, PROTOCOL, POPULATE, LOG,
//! ERROR, CHANGE-REPL-ID, SET-DISABLE-DENY-SCRIPTS, STRINGMATCH-TEST and
//! QUICKLIST-PACKED-THRESHOLD (validated like Redis; moonshard's lists have
//! no plain nodes, so the threshold changes nothing). The subcommands that
//! act on internals moonshard does not have (SDS strings, jemalloc,
//! listpacks, dict hash tables, persistence, crash handlers, ...) answer an
//! error that says so; names Redis 7.0 does not know get Redis's
//! unknown-subcommand error.

use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::protocol::{format_double, Reply};
use crate::storage::stream::StreamId;
use crate::storage::Entry;
use crate::storage::SmallBytes;
use crate::storage::Value;
use crate::util::parse_i64;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub static COMMANDS: &[CommandSpec] =
    &[cmd("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED, NOKEYS, G::Server, All(debug))
        .doc("1.0.0", "Testing and introspection subcommands (DIGEST, OBJECT, SLEEP, ...).")];

/// Server-wide switches DEBUG turns.
pub struct Switches {
    /// The active expiry cycle runs (DEBUG SET-ACTIVE-EXPIRE).
    pub active_expire: AtomicBool,
    /// Scripts may call commands flagged `noscript` (DEBUG SET-DISABLE-DENY-SCRIPTS).
    pub deny_scripts_disabled: AtomicBool,
    /// DEBUG QUICKLIST-PACKED-THRESHOLD's value, kept for show: moonshard's
    /// list chunks hold elements of any size, so nothing reads it.
    pub quicklist_packed_threshold: AtomicU64,
    /// RESTORE and RDB loading skip the CRC64 check
    /// (DEBUG SET-SKIP-CHECKSUM-VALIDATION).
    pub skip_checksum: AtomicBool,
}

/// Redis's default packed threshold (1 GiB).
const PACKED_THRESHOLD_DEFAULT: u64 = 1 << 30;

impl Default for Switches {
    fn default() -> Self {
        Switches {
            active_expire: AtomicBool::new(true),
            deny_scripts_disabled: AtomicBool::new(false),
            quicklist_packed_threshold: AtomicU64::new(PACKED_THRESHOLD_DEFAULT),
            skip_checksum: AtomicBool::new(false),
        }
    }
}

pub fn debug(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    let argc = args.len();
    let s = ctx.server;
    match (&sub[..], argc) {
        (b"help", 2) => help(),
        (b"digest" | b"populate", _) if !every_shard(ctx) => from_script(&sub),
        (b"digest-value" | b"object", _) if !args[2..].iter().all(|k| reachable(ctx, k)) => from_script(&sub),
        (b"digest", 2) => Reply::Status(hex(&dataset_digest(ctx)).into()),
        (b"digest-value", _) => digest_values(ctx, &args[2..]),
        (b"object", 3) => object(ctx, &args[2]),
        (b"sleep", 3) => {
            // Redis reads the seconds with strtod: junk reads as 0, a
            // negative or absurd time does not sleep.
            if let Ok(d) = Duration::try_from_secs_f64(strtod_prefix(&args[2])) {
                std::thread::sleep(d);
            }
            Reply::ok()
        }
        (b"set-active-expire", 3) => {
            s.debug.active_expire.store(atoi(&args[2]) != 0, Ordering::Relaxed);
            Reply::ok()
        }
        (b"set-disable-deny-scripts", 3) => {
            s.debug.deny_scripts_disabled.store(atoi(&args[2]) != 0, Ordering::Relaxed);
            Reply::ok()
        }
        (b"quicklist-packed-threshold", 3) => quicklist_packed_threshold(ctx, &args[2]),
        (b"protocol", 3) => protocol(ctx.resp, &args[2]),
        (b"populate", 3..=5) => populate(ctx, args),
        (b"log", 3) => {
            let msg = format!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
            crate::net::listener::log(s, "warning", &msg);
            Reply::ok()
        }
        // The text is the whole error line, prefix included.
        (b"error", 3) => Reply::Error(String::from_utf8_lossy(&args[2]).into_owned()),
        (b"change-repl-id", 2) => {
            crate::net::listener::log(s, "warning", "Changing replication IDs after receiving DEBUG change-repl-id");
            *s.replid.lock() = crate::server::random_id();
            Reply::ok()
        }
        (b"stringmatch-test", 2) => {
            stringmatch_fuzz();
            Reply::status_static("Apparently Redis did not crash: test passed")
        }
        (b"reload", _) if !every_shard(ctx) => from_script(&sub),
        (b"reload", _) => {
            if args[2..].iter().any(|o| !["merge", "noflush", "nosave"].iter().any(|w| eq(o, w))) {
                return Reply::err("DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
            }
            let has = |w: &str| args[2..].iter().any(|o| eq(o, w));
            reload(ctx, !has("nosave"), !has("noflush"), has("merge"))
        }
        (b"loadaof", _) if !every_shard(ctx) => from_script(&sub),
        (b"loadaof", _) => loadaof(ctx),
        (b"set-skip-checksum-validation", 3) => {
            s.debug.skip_checksum.store(atoi(&args[2]) != 0, Ordering::Relaxed);
            Reply::ok()
        }
        (b"restart" | b"crash-and-recover", _) => lacks(&sub, "restart support: it does not re-execute itself"),
        // Crashes on request, as Redis does (failover drills use them):
        // the log says why, then the process dies by the same signal.
        (b"segfault", _) => crash(s, libc::SIGSEGV, &["Crashed running DEBUG SEGFAULT"]),
        (b"panic", _) => crash(
            s,
            libc::SIGABRT,
            &[
                "------------------------------------------------",
                "!!! Software Failure. Press left mouse button to continue",
                &format!(
                    "Guru Meditation: DEBUG PANIC called at Unix time {} #debug.rs",
                    crate::storage::now_ms() / 1000
                ),
            ],
        ),
        (b"assert", _) => {
            crash(s, libc::SIGABRT, &["=== ASSERTION FAILED ===", "==> debug.rs 'DEBUG ASSERT' is not true"])
        }
        (b"oom", _) => crash(s, libc::SIGABRT, &["Out Of Memory allocating DEBUG OOM's request!"]),
        (b"leak", 3) => lacks(&sub, "manual memory management to leak from"),
        (b"sdslen", 3) => lacks(&sub, "SDS strings"),
        (b"listpack", 3) => lacks(&sub, "listpack encoded objects to print"),
        (b"quicklist", 3 | 4) => lacks(&sub, "quicklist nodes to print"),
        (b"htstats" | b"htstats-key", 3) => lacks(&sub, "dict hash tables with Redis's statistics"),
        (b"structsize", 2) => lacks(&sub, "Redis's C structures"),
        (b"mallctl" | b"mallctl-str", 3..) => lacks(&sub, "jemalloc (it uses mimalloc)"),
        (b"client-eviction", 2) => match crate::net::eviction::buckets_report(s) {
            Some(text) => Reply::Verbatim("txt", Bytes::from(text)),
            None => Reply::err("maxmemory-clients is disabled."),
        },
        (b"pause-cron", 3) => match parse_i64(&args[2]) {
            Some(on) => {
                s.cron_paused.store(on != 0, Ordering::Relaxed);
                Reply::ok()
            }
            None => Reply::not_integer(),
        },
        (b"replybuffer", 4) if eq(&args[2], "resizing") => match parse_i64(&args[3]) {
            Some(on) => {
                crate::net::connection::REPLY_BUFFER_RESIZING.store(on != 0, Ordering::Relaxed);
                Reply::ok()
            }
            None => Reply::not_integer(),
        },
        (b"replybuffer", 4) if eq(&args[2], "peak-reset-time") => lacks(&sub, "reply buffer peaks to reset"),
        (b"aof-flush-sleep", 3) => match parse_i64(&args[2]) {
            Some(us) => {
                crate::persist::aof::FLUSH_SLEEP_US.store(us.max(0) as u64, Ordering::Relaxed);
                Reply::ok()
            }
            None => Reply::not_integer(),
        },
        // A command for the replicas only, not run here (a test tool: it
        // makes a replica's dataset diverge on purpose).
        (b"replicate", 3..) => {
            let argv: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
            s.propagation.emit_dbless(&argv);
            Reply::ok()
        }
        (b"drop-cluster-packet-filter", 3) => lacks(&sub, "cluster bus packet filter"),
        (b"config-rewrite-force-all", 2) => lacks(&sub, "forced full config rewrite"),
        (b"clusterlink", 5) if eq(&args[2], "kill") && s.cluster.is_none() => {
            Reply::err("Debug option only available for cluster mode enabled setup!")
        }
        (b"clusterlink", 5) if eq(&args[2], "kill") => lacks(&sub, "way to cut one cluster bus link on request"),
        _ => Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
        )),
    }
}

/// True when every shard is entered. A script that may call DEBUG (DEBUG
/// SET-DISABLE-DENY-SCRIPTS 1) holds only its own shard.
fn every_shard(ctx: &mut Ctx) -> bool {
    ctx.shards().len() == ctx.server.shards.len()
}

/// True when the shard owning `key` is entered.
fn reachable(ctx: &mut Ctx, key: &[u8]) -> bool {
    let id = ctx.server.shards.for_key(key);
    ctx.shards().iter().any(|s| s.id == id)
}

fn from_script(sub: &[u8]) -> Reply {
    Reply::err(format!(
        "DEBUG {} from a script reaches only the keys of the script's shard",
        String::from_utf8_lossy(sub).to_ascii_uppercase()
    ))
}

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// The error of a subcommand that pokes an internal moonshard does not have.
/// DEBUG RELOAD: saves the dataset (unless NOSAVE), empties it (unless
/// NOFLUSH) and loads the file back, every shard held throughout. Without
/// MERGE, a library of the file that was not emptied first fails the load.
fn reload(ctx: &mut Ctx, save: bool, flush: bool, merge: bool) -> Reply {
    let server = ctx.server;
    if save {
        let held: Vec<&crate::shard::ShardData> = ctx.shards().iter().map(|s| &**s).collect();
        if crate::persist::save::save_held(server, &held).is_err() {
            return Reply::error("ERR");
        }
    }
    if flush {
        empty_dataset(ctx);
    }
    let loaded = std::fs::File::open(crate::persist::save::rdb_path(server)).map_err(|e| e.to_string()).and_then(|f| {
        let size = f.metadata().map_or(0, |m| m.len());
        let mut target = crate::persist::load::Target::Held(ctx.shards());
        let input = std::io::BufReader::new(f);
        server.persist.while_loading(size, || {
            if flush || merge {
                crate::persist::load::read_into(server, input, &mut target, false)
            } else {
                crate::persist::load::read_into_keeping_libraries(server, input, &mut target)
            }
        })
    });
    match loaded {
        Ok(_) => {
            crate::net::listener::log(server, "warning", "DB reloaded by DEBUG RELOAD");
            Reply::ok()
        }
        Err(e) => {
            crate::net::listener::log(server, "warning", &e);
            Reply::err("Error trying to load the RDB dump")
        }
    }
}

/// Empties every database and the function libraries before a reload, as
/// Redis's emptyData does (watchers and tracking clients told, a snapshot
/// in progress cancelled), every shard held.
pub(crate) fn empty_dataset(ctx: &mut Ctx) {
    let server = ctx.server;
    for db in 0..server.databases() {
        ctx.flushing(db);
    }
    ctx.flushed_tracking();
    crate::persist::save::cancel_held(server, ctx.shards());
    for shard in ctx.shards().iter_mut() {
        shard.dbs.iter_mut().for_each(|d| d.clear());
    }
    crate::scripting::functions::flush_libraries(server);
}

/// DEBUG LOADAOF: writes out what the append-only file is owed, empties
/// the dataset (functions too, as Redis's emptyData does) and replays the
/// files the manifest lists (with `appendonly no`, those a BGREWRITEAOF
/// left), every shard held throughout. Redis exits when there is no AOF to
/// load or it cannot be loaded; here the command fails instead (before
/// emptying anything when there is no manifest).
fn loadaof(ctx: &mut Ctx) -> Reply {
    let server = ctx.server;
    let Some(shared) = server.arc() else {
        return Reply::err("DEBUG LOADAOF is not available in this process");
    };
    match server.aof.lock().clone() {
        Some(aof) => aof.write_through(server.propagation.offset(), server),
        None if !crate::persist::aof::manifest_exists(server) => {
            return Reply::err("DEBUG LOADAOF found no append-only file to load (appendonly is off)");
        }
        None => {}
    }
    empty_dataset(ctx);
    let shards = ctx.shards();
    let reload = || crate::persist::aof::reload_held(&shared, shards);
    match server.persist.while_loading(0, || crate::propagate::muted(reload)) {
        Ok(()) => {
            // What was replayed is already in the file: nothing to propagate.
            ctx.dirty_less(u64::MAX);
            crate::net::listener::log(server, "warning", "Append Only File loaded by DEBUG LOADAOF");
            Reply::ok()
        }
        Err(e) => {
            crate::net::listener::log(server, "warning", &e);
            Reply::err("Error trying to load the AOF files, check server logs.")
        }
    }
}

/// Logs `lines` (and the crash line tools look for), then ends the process
/// by `signal` with its default action (a core dump where enabled), as
/// Redis's bug report ends.
fn crash(server: &crate::server::Server, signal: i32, lines: &[&str]) -> ! {
    let log = |m: &str| crate::net::listener::log(server, "warning", m);
    log("=== MOONSHARD BUG REPORT START: Cut & paste starting from here ===");
    log(&format!("moonshard {} crashed by signal: {signal}, si_code: 0", env!("CARGO_PKG_VERSION")));
    lines.iter().for_each(|l| log(l));
    log("=== MOONSHARD BUG REPORT END ===");
    if signal == libc::SIGABRT {
        crate::process::exit_on_panic_if_asked(&server.config);
    }
    // SAFETY: `signal` resets the handler of one signal number to its
    // default (Rust's runtime installs one for SIGSEGV to report stack
    // overflows) and `raise` sends that signal to this thread; both are
    // plain libc calls with valid arguments and no memory passed.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
    std::process::abort()
}

fn lacks(sub: &[u8], what: &str) -> Reply {
    Reply::err(format!(
        "DEBUG {} is not supported: moonshard has no {what}",
        String::from_utf8_lossy(sub).to_ascii_uppercase()
    ))
}

fn help() -> Reply {
    crate::commands::help::reply("DEBUG", crate::commands::help::DEBUG)
}

// ------------------------------------------------------------------ digests

/// A 20-byte digest, as Redis's DEBUG DIGEST builds it from SHA-1s.
pub type Digest = [u8; 20];

fn sha1(data: &[u8]) -> Digest {
    use sha1::Digest as _;
    sha1::Sha1::digest(data).into()
}

/// Folds `data` into `d` order-independently: `d ^= SHA1(data)`. An
/// element's own digest is folded in the same way (hashed once more).
fn xor_in(d: &mut Digest, data: &[u8]) {
    for (a, b) in d.iter_mut().zip(sha1(data)) {
        *a ^= b;
    }
}

/// Folds `data` into `d` so that order matters: `d = SHA1(d ^ SHA1(data))`.
fn mix_in(d: &mut Digest, data: &[u8]) {
    xor_in(d, data);
    *d = sha1(d);
}

/// Redis's object type codes, which the digest mixes in.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// Adds a value (and whether it has a TTL) to `d` exactly as Redis 7.0's
/// DEBUG DIGEST does, so both servers give the same digest for the same data:
/// the type code (big-endian u32), then per type: a string's bytes; list
/// elements in order; set members unordered (xor); for a sorted set, each
/// member's own digest of its name and its score printed as `%.17g`, folded
/// in unordered; for a hash, each field's digest of name then value, likewise; for a stream,
/// every live entry in order as `ms.seq`, then its fields and values (consumer
/// groups and stream metadata are not part of Redis's digest either). A key
/// with a TTL adds the constant `!!expire!!`, whatever the TTL.
pub fn object_digest(d: &mut Digest, entry: &Entry) {
    let v = &entry.value;
    mix_in(d, &type_code(v).to_be_bytes());
    match v {
        Value::Str(s) => mix_in(d, s),
        Value::List(l) => {
            for e in l.iter() {
                mix_in(d, e);
            }
        }
        Value::Set(s) => s.for_each(|m| xor_in(d, m)),
        Value::ZSet(z) => z.for_range(0, z.len(), false, |member, score| {
            let mut e = [0u8; 20];
            mix_in(&mut e, member);
            mix_in(&mut e, format_double(score).as_bytes());
            xor_in(d, &e);
        }),
        Value::Hash(h) => {
            for (field, value) in h.iter() {
                let mut e = [0u8; 20];
                mix_in(&mut e, field);
                mix_in(&mut e, value);
                xor_in(d, &e);
            }
        }
        Value::Stream(s) => {
            for (id, fields) in s.range(StreamId::MIN, StreamId::MAX, false, 0) {
                mix_in(d, format!("{}.{}", id.ms, id.seq).as_bytes());
                for f in &fields {
                    mix_in(d, f);
                }
            }
        }
    }
    if entry.expire_at != 0 {
        xor_in(d, b"!!expire!!");
    }
}

/// DEBUG DIGEST: every database that holds keys on any shard mixes in its
/// index, then folds in each key's digest (key name, then value) unordered. Keys whose
/// TTL passed but that were not reaped yet count, as in Redis, which walks
/// its tables as they are. An empty dataset gives 20 zero bytes.
fn dataset_digest(ctx: &mut Ctx) -> Digest {
    let mut out = [0u8; 20];
    let shards = ctx.shards();
    let databases = shards.first().map_or(0, |s| s.dbs.len());
    for j in 0..databases {
        if shards.iter().all(|s| s.dbs[j].is_empty()) {
            continue;
        }
        mix_in(&mut out, &(j as u32).to_be_bytes());
        for shard in shards.iter() {
            for (key, entry) in shard.dbs[j].iter() {
                let mut d = [0u8; 20];
                mix_in(&mut d, key);
                object_digest(&mut d, entry);
                xor_in(&mut out, &d);
            }
        }
    }
    out
}

/// DEBUG DIGEST-VALUE: each key's value digest (without its name), zeros for
/// a missing key; expired keys not yet reaped still count, as in Redis.
fn digest_values(ctx: &mut Ctx, keys: &[Bytes]) -> Reply {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let mut d = [0u8; 20];
        if let Some((entry, _)) = ctx.db(key).raw(key) {
            object_digest(&mut d, entry);
        }
        out.push(Reply::Status(hex(&d).into()));
    }
    Reply::Array(out)
}

fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

// ------------------------------------------------------------------- OBJECT

/// DEBUG OBJECT: Redis's one-line description of a value. The address is the
/// value's, the encoding what OBJECT ENCODING reports, `lru` the 24-bit
/// seconds clock of the last access, and lists (quicklists in Redis 7.0) add
/// their chunk figures. `serializedlength` is the size of the value's RDB
/// encoding (`storage::codec`, LZF per `rdbcompression`), as Redis
/// computes it. Expired keys not yet reaped are shown, as in Redis.
fn object(ctx: &mut Ctx, key: &[u8]) -> Reply {
    let now = ctx.now;
    let lfu = crate::storage::memory::Policy::of(ctx.server).lfu();
    let list_max = ctx.server.config.get("list-max-listpack-size").unwrap_or_default();
    let rdb_opts = crate::persist::rdb::encode_options(&ctx.server.config);
    let db = ctx.db(key);
    let hint = db.str_hint(key);
    let Some((entry, access)) = db.raw(key) else {
        return Reply::err(crate::protocol::errors::NO_SUCH_KEY);
    };
    let value = &entry.value;
    let encoding = match value {
        Value::Str(s) => super::keys::string_encoding(s.len(), value.encoding(), hint),
        v => v.encoding(),
    };
    // Under an LFU policy the access word holds minutes and a counter, as
    // Redis's lru field does; the idle time is then not tracked.
    let idle = if lfu { 0 } else { crate::storage::memory::idle_secs(access, now) };
    let mut extra = String::new();
    if let Value::List(l) = value {
        let (nodes, bytes) = l.chunk_stats();
        let avg = if nodes == 0 { 0.0 } else { l.len() as f64 / nodes as f64 };
        // moonshard never compresses list chunks.
        extra = format!(
            " ql_nodes:{nodes} ql_avg_node:{avg:.2} ql_listpack_max:{list_max} ql_compressed:0 ql_uncompressed_size:{bytes}"
        );
    }
    Reply::Status(
        format!(
            "Value at:{:p} refcount:{} encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}{}",
            value as *const Value,
            super::keys::refcount(value),
            encoding,
            {
                let mut out = Vec::new();
                crate::storage::codec::encode_value(value, &rdb_opts, &mut out);
                out.len()
            },
            access & 0xFF_FFFF,
            idle,
            extra
        )
        .into(),
    )
}

// ------------------------------------------------------------------ the rest

/// C's `atoi`: leading blanks, a sign and digits; anything else reads as 0.
fn atoi(b: &[u8]) -> i64 {
    let mut i = 0;
    while i < b.len() && (b[i] == b' ' || (b'\t'..=b'\r').contains(&b[i])) {
        i += 1;
    }
    let neg = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let mut n: i64 = 0;
    while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add((d - b'0') as i64);
        i += 1;
    }
    if neg {
        -n
    } else {
        n
    }
}

/// C's `strtod` on the longest prefix that converts; 0 when there is none.
fn strtod_prefix(b: &[u8]) -> f64 {
    crate::util::numbers::strtod(b).value
}

/// DEBUG QUICKLIST-PACKED-THRESHOLD: Redis accepts a memory size up to 4 GB
/// less 1 MB (0 restores the default).
fn quicklist_packed_threshold(ctx: &mut Ctx, arg: &[u8]) -> Reply {
    let size = std::str::from_utf8(arg).ok().and_then(crate::config::parse_memory);
    match size {
        Some(n) if n as u64 <= (1u64 << 32) - (1 << 20) => {
            let n = if n == 0 { PACKED_THRESHOLD_DEFAULT } else { n as u64 };
            ctx.server.debug.quicklist_packed_threshold.store(n, Ordering::Relaxed);
            Reply::ok()
        }
        _ => Reply::err("argument must be a memory value bigger than 1 and smaller than 4gb"),
    }
}

/// DEBUG PROTOCOL: one sample of each reply type, with Redis's RESP2 forms.
fn protocol(resp: u8, name: &[u8]) -> Reply {
    let bulk = |s: &str| Reply::bulk_str(s);
    let ints = || (0..3).map(Reply::Int).collect::<Vec<_>>();
    let name = name.to_ascii_lowercase();
    match &name[..] {
        b"string" => bulk("Hello World"),
        b"integer" => Reply::Int(12345),
        // Redis's sample value, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        b"double" => Reply::Double(3.141),
        b"bignum" => Reply::BigNumber("1234567999999999999999999999999999999".into()),
        b"null" => Reply::Nil,
        b"array" => Reply::Array(ints()),
        b"set" => Reply::Set(ints()),
        b"map" => Reply::Map((0..3).map(|j| (Reply::Int(j), Reply::Bool(j == 1))).collect()),
        b"attrib" => {
            let real = bulk("Some real reply following the attribute");
            if resp < 3 {
                return real;
            }
            let attr = vec![(bulk("key-popularity"), Reply::Array(vec![bulk("key:123"), Reply::Int(90)]))];
            Reply::Multi(vec![Reply::Attribute(attr), real])
        }
        b"push" => {
            if resp < 3 {
                return Reply::err("RESP2 is not supported by this command");
            }
            Reply::Multi(vec![
                Reply::Push(vec![bulk("server-cpu-usage"), Reply::Int(42)]),
                bulk("Some real reply following the push reply"),
            ])
        }
        b"true" => Reply::Bool(true),
        b"false" => Reply::Bool(false),
        b"verbatim" => Reply::Verbatim("txt", Bytes::from_static(b"This is a verbatim\nstring")),
        _ => Reply::err(
            "Wrong protocol type name. Please use one of the following: \
             string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        ),
    }
}

/// DEBUG POPULATE count [prefix] [size]: string keys `prefix:N` holding
/// `value:N` (cut or padded with zero bytes to `size`), skipping keys that
/// exist. As in Redis they are not propagated and count no change, but
/// WATCHers of those keys see them change.
fn populate(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let positive = |a: &[u8]| parse_i64(a).filter(|&n| n >= 0);
    let out_of_range = || Reply::err(crate::protocol::errors::OUT_OF_RANGE_POSITIVE);
    let Some(count) = positive(&args[2]) else {
        return out_of_range();
    };
    let size = match args.get(4) {
        Some(a) => match positive(a) {
            Some(n) => n as usize,
            None => return out_of_range(),
        },
        None => 0,
    };
    // A value larger than any request may carry is refused rather than
    // allocated (Redis would try, and abort if it cannot).
    let max_bulk = ctx.server.config.proto_max_bulk_len.load(Ordering::Relaxed).max(0) as usize;
    if size > max_bulk {
        return Reply::err("value size exceeds proto-max-bulk-len");
    }
    let prefix = args.get(3).map_or(&b"key"[..], |p| &p[..]);
    let (db, now) = (ctx.db, ctx.now);
    for j in 0..count {
        // Redis formats the name into a 128-byte buffer.
        let mut key = prefix.to_vec();
        key.extend_from_slice(format!(":{j}").as_bytes());
        key.truncate(127);
        if ctx.db(&key).contains(&key, now) {
            continue;
        }
        let text = format!("value:{j}");
        let value = if size == 0 {
            text.into_bytes()
        } else {
            let mut v = vec![0u8; size];
            let n = size.min(text.len());
            v[..n].copy_from_slice(&text.as_bytes()[..n]);
            v
        };
        let shard = ctx.shard_for(&key);
        shard.dbs[db].set(&key, Value::Str(SmallBytes::from_vec(value)));
        let crate::shard::ShardData { watches, dbs, .. } = shard;
        if !watches.is_empty() {
            watches.touch(db, &key, &mut dbs[db], now);
        }
    }
    Reply::ok()
}

/// DEBUG STRINGMATCH-TEST: random patterns against random strings through
/// the glob matcher KEYS, SCAN and PSUBSCRIBE use; passing means it neither
/// panicked nor hung. A tenth of Redis's million rounds: every shard waits
/// while it runs.
fn stringmatch_fuzz() {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut pattern = [0u8; 32];
    let mut text = [0u8; 32];
    for _ in 0..100_000 {
        rng.fill(&mut pattern[..]);
        rng.fill(&mut text[..]);
        let (plen, tlen) = (rng.gen_range(0..=32), rng.gen_range(0..=32));
        let _ = crate::util::glob_match(&pattern[..plen], &text[..tlen], false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_number_parsing() {
        assert_eq!(atoi(b"1"), 1);
        assert_eq!(atoi(b"  -3x"), -3);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b""), 0);
        assert_eq!(atoi(b"+7"), 7);
        assert_eq!(atoi(b"99999999999999999999999"), i64::MAX);
        assert_eq!(strtod_prefix(b"0.5"), 0.5);
        assert_eq!(strtod_prefix(b" 1.5e1s"), 15.0);
        assert_eq!(strtod_prefix(b"abc"), 0.0);
        assert_eq!(strtod_prefix(b"."), 0.0);
        assert_eq!(strtod_prefix(b"-"), 0.0);
        assert_eq!(strtod_prefix(b".25"), 0.25);
        assert_eq!(strtod_prefix(b"3."), 3.0);
        assert_eq!(strtod_prefix(b"2e"), 2.0);
        assert_eq!(strtod_prefix(b"2e+"), 2.0);
        assert_eq!(strtod_prefix(b"-1"), -1.0);
        assert_eq!(strtod_prefix(b"inf"), f64::INFINITY);
        assert_eq!(strtod_prefix(b"-Infinity"), f64::NEG_INFINITY);
        assert!(strtod_prefix(b"nan").is_nan());
        assert!(Duration::try_from_secs_f64(strtod_prefix(b"-1")).is_err());
        assert!(Duration::try_from_secs_f64(strtod_prefix(b"inf")).is_err());
    }

    /// Digests of values computed by hand from Redis's definition.
    #[test]
    fn digest_building_blocks() {
        let mut d = [0u8; 20];
        xor_in(&mut d, b"abc");
        assert_eq!(hex(&d), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let mut m = [0u8; 20];
        mix_in(&mut m, b"abc");
        assert_eq!(m, sha1(&d));
        // Xoring the same data twice cancels out.
        xor_in(&mut d, b"abc");
        assert_eq!(d, [0u8; 20]);
    }

    #[test]
    fn local_clients_are_127_0_0_1_and_ipv6_loopback_only() {
        use crate::commands::dispatch::is_local_client;
        assert!(is_local_client("127.0.0.1:5000"));
        assert!(is_local_client("[::1]:5000"));
        assert!(!is_local_client("127.0.0.2:5000"));
        assert!(!is_local_client("[::ffff:127.0.0.1]:5000"));
        assert!(!is_local_client("10.0.0.1:5000"));
        assert!(!is_local_client(""));
    }
}
