//! Server configuration: command-line flags, a Redis-style config file, and
//! the live parameter set behind `CONFIG GET`/`CONFIG SET`.

pub mod keyspace_events;
pub mod output_limits;

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// One known configuration parameter.
pub struct Param {
    pub name: &'static str,
    pub default: &'static str,
    /// Older name accepted as a synonym (e.g. `lua-time-limit`).
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub access: Access,
}

/// Whether `CONFIG SET` may change a parameter.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Mutable,
    /// Only settable at start-up (config file, flags).
    Immutable,
    /// Redis refuses these at run time unless `enable-protected-configs` is on.
    Protected,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// An integer with Redis's inclusive bounds.
    Int(i64, i64),
    /// An integer written in octal (a file mode), bounds inclusive; stored
    /// and reported in octal, as Redis does.
    Octal(i64, i64),
    /// A size with optional unit suffix (k, kb, m, mb, g, gb), at least the bound.
    Memory(i64),
    /// A size as `Memory`, or a percentage of `maxmemory` written `N%`
    /// (Redis's PERCENT_CONFIG: `maxmemory-clients`).
    MemoryOrPercent,
    Str,
    Enum(&'static [&'static str]),
}

macro_rules! p {
    ($name:expr, $default:expr, $kind:expr, $access:ident) => {
        Param { name: $name, default: $default, alias: None, kind: $kind, access: Access::$access }
    };
    ($name:expr, $default:expr, $kind:expr, $access:ident, alias = $alias:expr) => {
        Param { name: $name, default: $default, alias: Some($alias), kind: $kind, access: Access::$access }
    };
}

/// Who may use a protected action (DEBUG, MODULE, protected configs):
/// nobody, anyone, or clients connected from 127.0.0.1 / ::1.
const PROTECTED_ACTION: &[&str] = &["no", "yes", "local"];
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Every parameter Redis 7.0 knows (names, defaults, bounds and mutability
/// as `redis-server` 7.0 reports them), plus moonshard's own. Ones that do
/// not apply to us (encodings, persistence, replication, TLS) are stored and
/// reported so tools that set them keep working.
pub static PARAMS: &[Param] = &[
    // moonshard's own
    p!("shards", "0", Kind::Int(0, 1024), Immutable),
    p!("keyspace-mode", "cluster", Kind::Enum(&["cluster", "standalone"]), Immutable),
    p!("lua-memory-limit", "268435456", Kind::Memory(0), Mutable),
    // Redis 7.0 (io-threads: 0 means one per core, our default)
    p!("acl-pubsub-default", "resetchannels", Kind::Enum(&["allchannels", "resetchannels"]), Mutable),
    p!("aclfile", "", Kind::Str, Immutable),
    p!("acllog-max-len", "128", Kind::Int(0, i64::MAX), Mutable),
    p!("active-defrag-cycle-max", "25", Kind::Int(1, 99), Mutable),
    p!("active-defrag-cycle-min", "1", Kind::Int(1, 99), Mutable),
    p!("active-defrag-ignore-bytes", "104857600", Kind::Memory(1), Mutable),
    p!("active-defrag-max-scan-fields", "1000", Kind::Int(1, i64::MAX), Mutable),
    p!("active-defrag-threshold-lower", "10", Kind::Int(0, 1000), Mutable),
    p!("active-defrag-threshold-upper", "100", Kind::Int(0, 1000), Mutable),
    p!("active-expire-effort", "1", Kind::Int(1, 10), Mutable),
    p!("activedefrag", "no", Kind::Bool, Mutable),
    p!("activerehashing", "yes", Kind::Bool, Mutable),
    p!("always-show-logo", "no", Kind::Bool, Immutable),
    p!("aof-disable-auto-gc", "no", Kind::Bool, Mutable),
    p!("aof-load-truncated", "yes", Kind::Bool, Mutable),
    p!("aof-rewrite-incremental-fsync", "yes", Kind::Bool, Mutable),
    p!("aof-timestamp-enabled", "no", Kind::Bool, Mutable),
    p!("aof-use-rdb-preamble", "yes", Kind::Bool, Mutable),
    p!("aof_rewrite_cpulist", "", Kind::Str, Immutable),
    p!("appenddirname", "appendonlydir", Kind::Str, Immutable),
    p!("appendfilename", "appendonly.aof", Kind::Str, Immutable),
    p!("appendfsync", "everysec", Kind::Enum(&["everysec", "always", "no"]), Mutable),
    p!("appendonly", "no", Kind::Bool, Mutable),
    p!("auto-aof-rewrite-min-size", "67108864", Kind::Memory(0), Mutable),
    p!("auto-aof-rewrite-percentage", "100", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("bgsave_cpulist", "", Kind::Str, Immutable),
    p!("bind", "127.0.0.1", Kind::Str, Mutable),
    p!("bind-source-addr", "", Kind::Str, Mutable),
    p!("bio_cpulist", "", Kind::Str, Immutable),
    p!("busy-reply-threshold", "5000", Kind::Int(0, i64::MAX), Mutable, alias = "lua-time-limit"),
    p!(
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        Kind::Str,
        Mutable
    ),
    p!("client-query-buffer-limit", "1073741824", Kind::Memory(1048576), Mutable),
    p!("cluster-allow-pubsubshard-when-down", "yes", Kind::Bool, Mutable),
    p!("cluster-allow-reads-when-down", "no", Kind::Bool, Mutable),
    p!("cluster-allow-replica-migration", "yes", Kind::Bool, Mutable),
    p!("cluster-announce-bus-port", "0", Kind::Int(0, 65535), Mutable),
    p!("cluster-announce-hostname", "", Kind::Str, Mutable),
    p!("cluster-announce-ip", "", Kind::Str, Mutable),
    p!("cluster-announce-port", "0", Kind::Int(0, 65535), Mutable),
    p!("cluster-announce-tls-port", "0", Kind::Int(0, 65535), Mutable),
    p!("cluster-config-file", "nodes.conf", Kind::Str, Immutable),
    p!("cluster-enabled", "no", Kind::Bool, Immutable),
    p!("cluster-link-sendbuf-limit", "0", Kind::Memory(0), Mutable),
    p!("cluster-migration-barrier", "1", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("cluster-node-timeout", "15000", Kind::Int(0, i64::MAX), Mutable),
    p!("cluster-port", "0", Kind::Int(i64::MIN, i64::MAX), Immutable),
    p!("cluster-preferred-endpoint-type", "ip", Kind::Enum(&["ip", "hostname", "unknown-endpoint"]), Mutable),
    p!("cluster-replica-no-failover", "no", Kind::Bool, Mutable, alias = "cluster-slave-no-failover"),
    p!(
        "cluster-replica-validity-factor",
        "10",
        Kind::Int(0, i32::MAX as i64),
        Mutable,
        alias = "cluster-slave-validity-factor"
    ),
    p!("cluster-require-full-coverage", "yes", Kind::Bool, Mutable),
    p!("crash-log-enabled", "yes", Kind::Bool, Mutable),
    p!("crash-memcheck-enabled", "yes", Kind::Bool, Mutable),
    p!("daemonize", "no", Kind::Bool, Immutable),
    p!("databases", "16", Kind::Int(1, i32::MAX as i64), Immutable),
    p!("dbfilename", "dump.rdb", Kind::Str, Protected),
    p!("dir", "", Kind::Str, Protected),
    p!("disable-thp", "yes", Kind::Bool, Immutable),
    p!("dynamic-hz", "yes", Kind::Bool, Mutable),
    p!("enable-debug-command", "no", Kind::Enum(PROTECTED_ACTION), Immutable),
    p!("enable-module-command", "no", Kind::Enum(PROTECTED_ACTION), Immutable),
    p!("enable-protected-configs", "no", Kind::Enum(PROTECTED_ACTION), Immutable),
    p!("hash-max-listpack-entries", "512", Kind::Int(0, i64::MAX), Mutable, alias = "hash-max-ziplist-entries"),
    p!("hash-max-listpack-value", "64", Kind::Memory(0), Mutable, alias = "hash-max-ziplist-value"),
    p!("hll-sparse-max-bytes", "3000", Kind::Memory(0), Mutable),
    p!("hz", "10", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("ignore-warnings", "", Kind::Str, Mutable),
    p!("io-threads", "0", Kind::Int(i64::MIN, i64::MAX), Immutable),
    p!("io-threads-do-reads", "no", Kind::Bool, Immutable),
    p!("jemalloc-bg-thread", "yes", Kind::Bool, Mutable),
    p!("latency-monitor-threshold", "0", Kind::Int(0, i64::MAX), Mutable),
    p!("latency-tracking", "yes", Kind::Bool, Mutable),
    p!("latency-tracking-info-percentiles", "50 99 99.9", Kind::Str, Mutable),
    p!("key-load-delay", "0", Kind::Int(i32::MIN as i64, i32::MAX as i64), Mutable),
    // How often (in bytes read) a load publishes its progress: INFO's
    // loading_loaded_bytes/_perc/eta (clients are served throughout).
    p!("loading-process-events-interval-bytes", "2097152", Kind::Int(1024, i32::MAX as i64), Mutable),
    p!("lazyfree-lazy-eviction", "no", Kind::Bool, Mutable),
    p!("lazyfree-lazy-expire", "no", Kind::Bool, Mutable),
    p!("lazyfree-lazy-server-del", "no", Kind::Bool, Mutable),
    p!("lazyfree-lazy-user-del", "no", Kind::Bool, Mutable),
    p!("lazyfree-lazy-user-flush", "no", Kind::Bool, Mutable),
    p!("lfu-decay-time", "1", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("lfu-log-factor", "10", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("list-compress-depth", "0", Kind::Int(0, i32::MAX as i64), Mutable),
    p!(
        "list-max-listpack-size",
        "-2",
        Kind::Int(i32::MIN as i64, i32::MAX as i64),
        Mutable,
        alias = "list-max-ziplist-size"
    ),
    p!("logfile", "", Kind::Str, Immutable),
    p!("loglevel", "notice", Kind::Enum(LOGLEVELS), Mutable),
    p!("masterauth", "", Kind::Str, Mutable),
    p!("masteruser", "", Kind::Str, Mutable),
    p!("maxclients", "10000", Kind::Int(1, u32::MAX as i64), Mutable),
    p!("maxmemory", "0", Kind::Memory(0), Mutable),
    p!("maxmemory-clients", "0", Kind::MemoryOrPercent, Mutable),
    p!("maxmemory-eviction-tenacity", "10", Kind::Int(0, 100), Mutable),
    p!("maxmemory-policy", "noeviction", Kind::Enum(POLICIES), Mutable),
    p!("maxmemory-samples", "5", Kind::Int(1, i32::MAX as i64), Mutable),
    p!("min-replicas-max-lag", "10", Kind::Int(0, i32::MAX as i64), Mutable, alias = "min-slaves-max-lag"),
    p!("min-replicas-to-write", "0", Kind::Int(0, i32::MAX as i64), Mutable, alias = "min-slaves-to-write"),
    p!("no-appendfsync-on-rewrite", "no", Kind::Bool, Mutable),
    p!("notify-keyspace-events", "", Kind::Str, Mutable),
    p!("oom-score-adj", "no", Kind::Enum(&["no", "yes", "relative", "absolute"]), Mutable),
    p!("oom-score-adj-values", "0 200 800", Kind::Str, Mutable),
    p!("pidfile", "", Kind::Str, Immutable),
    p!("port", "6379", Kind::Int(0, 65535), Mutable),
    p!("proc-title-template", "{title} {listen-addr} {server-mode}", Kind::Str, Mutable),
    p!("propagation-error-behavior", "ignore", Kind::Enum(&["ignore", "panic", "panic-on-replicas"]), Mutable),
    p!("protected-mode", "yes", Kind::Bool, Mutable),
    p!("proto-max-bulk-len", "536870912", Kind::Memory(1048576), Mutable),
    p!("rdb-del-sync-files", "no", Kind::Bool, Mutable),
    p!("rdb-key-save-delay", "0", Kind::Int(i32::MIN as i64, i32::MAX as i64), Mutable),
    p!("rdb-save-incremental-fsync", "yes", Kind::Bool, Mutable),
    p!("rdbchecksum", "yes", Kind::Bool, Immutable),
    p!("rdbcompression", "yes", Kind::Bool, Mutable),
    p!("repl-backlog-size", "1048576", Kind::Memory(1), Mutable),
    p!("repl-backlog-ttl", "3600", Kind::Int(0, i64::MAX), Mutable),
    p!("repl-disable-tcp-nodelay", "no", Kind::Bool, Mutable),
    p!("repl-diskless-load", "disabled", Kind::Enum(&["disabled", "on-empty-db", "swapdb"]), Mutable),
    p!("repl-diskless-sync", "yes", Kind::Bool, Mutable),
    p!("repl-diskless-sync-delay", "5", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("repl-diskless-sync-max-replicas", "0", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("repl-ping-replica-period", "10", Kind::Int(1, i32::MAX as i64), Mutable, alias = "repl-ping-slave-period"),
    p!("repl-timeout", "60", Kind::Int(1, i32::MAX as i64), Mutable),
    p!("replica-announce-ip", "", Kind::Str, Mutable, alias = "slave-announce-ip"),
    p!("replica-announce-port", "0", Kind::Int(0, 65535), Mutable, alias = "slave-announce-port"),
    p!("replica-announced", "yes", Kind::Bool, Mutable),
    p!("replica-ignore-disk-write-errors", "no", Kind::Bool, Mutable),
    p!("replica-ignore-maxmemory", "yes", Kind::Bool, Mutable, alias = "slave-ignore-maxmemory"),
    p!("replica-lazy-flush", "no", Kind::Bool, Mutable, alias = "slave-lazy-flush"),
    p!("replica-priority", "100", Kind::Int(0, i32::MAX as i64), Mutable, alias = "slave-priority"),
    p!("replica-read-only", "yes", Kind::Bool, Mutable, alias = "slave-read-only"),
    p!("replica-serve-stale-data", "yes", Kind::Bool, Mutable, alias = "slave-serve-stale-data"),
    p!("replicaof", "", Kind::Str, Immutable, alias = "slaveof"),
    p!("requirepass", "", Kind::Str, Mutable),
    p!("sanitize-dump-payload", "no", Kind::Enum(&["no", "yes", "clients"]), Mutable),
    // A panic (DEBUG PANIC/ASSERT, propagation-error-behavior panic) exits
    // with status 1 instead of aborting (Redis's test hook for valgrind).
    p!("use-exit-on-panic", "no", Kind::Bool, Mutable),
    p!("save", "3600 1 300 100 60 10000", Kind::Str, Mutable),
    p!("server_cpulist", "", Kind::Str, Immutable),
    p!("set-max-intset-entries", "512", Kind::Int(0, i64::MAX), Mutable),
    p!("set-proc-title", "yes", Kind::Bool, Immutable),
    p!("shutdown-on-sigint", "default", Kind::Enum(&["default", "save", "nosave", "now", "force"]), Mutable),
    p!("shutdown-on-sigterm", "default", Kind::Enum(&["default", "save", "nosave", "now", "force"]), Mutable),
    p!("shutdown-timeout", "10", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("slowlog-log-slower-than", "10000", Kind::Int(-1, i64::MAX), Mutable),
    p!("slowlog-max-len", "128", Kind::Int(0, i64::MAX), Mutable),
    p!("socket-mark-id", "0", Kind::Int(i64::MIN, i64::MAX), Immutable),
    p!("stop-writes-on-bgsave-error", "yes", Kind::Bool, Mutable),
    p!("stream-node-max-bytes", "4096", Kind::Memory(0), Mutable),
    p!("stream-node-max-entries", "100", Kind::Int(0, i64::MAX), Mutable),
    p!("supervised", "no", Kind::Enum(&["upstart", "systemd", "auto", "no"]), Immutable),
    p!("syslog-enabled", "no", Kind::Bool, Immutable),
    p!("syslog-facility", "local0", Kind::Str, Immutable),
    p!("syslog-ident", "redis", Kind::Str, Immutable),
    p!("tcp-backlog", "511", Kind::Int(i64::MIN, i64::MAX), Immutable),
    p!("tcp-keepalive", "300", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("timeout", "0", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("tls-auth-clients", "yes", Kind::Enum(&["no", "yes", "optional"]), Mutable),
    // Beyond Redis 7.0 (as Valkey names it): CN logs a client in as the ACL
    // user its certificate's common name names.
    p!("tls-auth-clients-user", "off", Kind::Enum(&["off", "cn"]), Mutable),
    p!("tls-ca-cert-dir", "", Kind::Str, Mutable),
    p!("tls-ca-cert-file", "", Kind::Str, Mutable),
    p!("tls-cert-file", "", Kind::Str, Mutable),
    p!("tls-ciphers", "", Kind::Str, Mutable),
    p!("tls-ciphersuites", "", Kind::Str, Mutable),
    p!("tls-client-cert-file", "", Kind::Str, Mutable),
    p!("tls-client-key-file", "", Kind::Str, Mutable),
    p!("tls-client-key-file-pass", "", Kind::Str, Mutable),
    p!("tls-cluster", "no", Kind::Bool, Mutable),
    p!("tls-dh-params-file", "", Kind::Str, Mutable),
    p!("tls-key-file", "", Kind::Str, Mutable),
    p!("tls-key-file-pass", "", Kind::Str, Mutable),
    p!("tls-port", "0", Kind::Int(0, 65535), Mutable),
    p!("tls-prefer-server-ciphers", "no", Kind::Bool, Mutable),
    p!("tls-protocols", "", Kind::Str, Mutable),
    p!("tls-replication", "no", Kind::Bool, Mutable),
    p!("tls-session-cache-size", "20480", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("tls-session-cache-timeout", "300", Kind::Int(0, i32::MAX as i64), Mutable),
    p!("tls-session-caching", "yes", Kind::Bool, Mutable),
    p!("tracking-table-max-keys", "1000000", Kind::Int(0, i64::MAX), Mutable),
    p!("unixsocket", "", Kind::Str, Immutable),
    p!("unixsocketperm", "0", Kind::Octal(0, 0o777), Immutable),
    p!("zset-max-listpack-entries", "128", Kind::Int(0, i64::MAX), Mutable, alias = "zset-max-ziplist-entries"),
    p!("zset-max-listpack-value", "64", Kind::Memory(0), Mutable, alias = "zset-max-ziplist-value"),
];

pub fn find_param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(name) || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(name)))
}

/// Parses a Redis memory size: "100", "1k" (1000), "1kb" (1024), "5mb", "2gb"
/// (units case-insensitive). Negative sizes are refused.
pub fn parse_memory(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let units: [(&str, i64); 7] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
        ("b", 1),
    ];
    let (num, mul) =
        units.iter().find_map(|(suffix, mul)| lower.strip_suffix(suffix).map(|n| (n, *mul))).unwrap_or((&lower, 1));
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<i64>().ok().and_then(|n| n.checked_mul(mul))
}

/// An octal number as Redis reads one (`strtoll` in base 8): leading
/// white space and a sign allowed, then octal digits to the end (none at
/// all reads as 0); a value past the 64-bit range saturates, so it fails
/// the bounds check rather than the parse.
pub fn parse_octal(value: &str) -> Option<i64> {
    let s = value.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        // No digits: nothing is consumed, which only an empty value survives.
        return value.is_empty().then_some(0);
    }
    if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let mut v: i64 = 0;
    for b in digits.bytes() {
        v = match v.checked_mul(8).and_then(|v| v.checked_add(i64::from(b - b'0'))) {
            Some(v) => v,
            None => return Some(if negative { i64::MIN } else { i64::MAX }),
        };
    }
    Some(if negative { -v } else { v })
}

/// The file mode `unixsocketperm` asks for (0: leave the mode as created).
pub fn unixsocket_mode(config: &Config) -> u32 {
    config.get("unixsocketperm").and_then(|v| u32::from_str_radix(&v, 8).ok()).unwrap_or(0)
}

/// Validates a value for `param` and returns the canonical text stored
/// (what `CONFIG GET` shows: sizes in bytes, enums lower-case).
pub fn normalize(param: &Param, value: &str) -> Result<String, String> {
    match param.kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int(lo, hi) => {
            let v = crate::util::parse_i64(value.as_bytes()).ok_or("argument couldn't be parsed into an integer")?;
            if v < lo || v > hi {
                return Err(format!("argument must be between {lo} and {hi} inclusive"));
            }
            Ok(v.to_string())
        }
        Kind::Octal(lo, hi) => {
            let v = parse_octal(value).ok_or("argument couldn't be parsed as an octal number")?;
            if v < lo || v > hi {
                return Err(format!("argument must be between {lo:o} and {hi:o} inclusive"));
            }
            Ok(format!("{v:o}"))
        }
        Kind::Memory(lo) => {
            let v = parse_memory(value).ok_or("argument must be a memory value")?;
            if v < lo {
                return Err(format!("argument must be between {lo} and {} inclusive", i64::MAX));
            }
            Ok(v.to_string())
        }
        Kind::MemoryOrPercent => {
            if let Some(percent) = value.strip_suffix('%') {
                return match crate::util::parse_i64(percent.as_bytes()) {
                    Some(0) => Ok("0".into()),
                    Some(p @ 1..=100) => Ok(format!("{p}%")),
                    Some(p) if p > 100 => Err("percentage argument must be less or equal to 100".into()),
                    _ => Err("argument must be a memory or percent value".into()),
                };
            }
            let v = parse_memory(value).ok_or("argument must be a memory or percent value")?;
            if v < 0 {
                return Err(format!("argument must be between 0 and {} inclusive", i64::MAX));
            }
            Ok(v.to_string())
        }
        Kind::Str if param.name == "notify-keyspace-events" => keyspace_events::normalize(value),
        Kind::Str if param.name == "bind" && bind_count(value) > BIND_MAX => {
            Err("Too many bind addresses specified.".into())
        }
        Kind::Str if param.name == "save" => normalize_save(value),
        Kind::Str if param.name == "latency-tracking-info-percentiles" => normalize_percentiles(value),
        Kind::Str if param.name == "oom-score-adj-values" => {
            let words: Vec<&str> = value.split_whitespace().collect();
            let ok =
                words.len() == 3 && words.iter().all(|x| x.parse::<i32>().is_ok_and(|n| (-2000..=2000).contains(&n)));
            if ok {
                Ok(words.join(" "))
            } else {
                Err("Invalid oom-score-adj-values".into())
            }
        }
        Kind::Str => Ok(value.to_string()),
        Kind::Enum(options) => {
            let lower = value.to_ascii_lowercase();
            if options.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err("argument(s) must be one of the following: ".to_string() + &options.join(", "))
            }
        }
    }
}

/// The most addresses `bind` takes (Redis's limit).
pub const BIND_MAX: usize = 16;

/// The number of addresses in a `bind` value, split on single spaces as
/// Redis splits it (an empty value has none).
pub fn bind_count(value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        value.split(' ').count()
    }
}

/// Parameters Redis hides from `CONFIG GET` patterns (and CONFIG REWRITE).
const HIDDEN: &[&str] =
    &["rdb-key-save-delay", "key-load-delay", "loading-process-events-interval-bytes", "use-exit-on-panic"];

/// `latency-tracking-info-percentiles`: numbers in 0..=100, written back as
/// Redis writes them (`%f` with trailing zeros and dot trimmed: `50`, `99.9`).
fn normalize_percentiles(value: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for word in value.split_whitespace() {
        match word.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => {
                let s = format!("{p:.6}");
                out.push(s.trim_end_matches('0').trim_end_matches('.').to_string());
            }
            _ => return Err("Invalid latency-tracking-info-percentiles parameters".into()),
        }
    }
    Ok(out.join(" "))
}

/// `save`: pairs of seconds and changes (`""` turns saving off), written
/// back as Redis writes them.
fn normalize_save(value: &str) -> Result<String, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if !words.len().is_multiple_of(2) || words.iter().any(|w| w.parse::<u64>().is_err() || w.len() > 18) {
        return Err("Invalid save parameters".into());
    }
    Ok(words.iter().map(|w| w.parse::<u64>().unwrap_or(0).to_string()).collect::<Vec<_>>().join(" "))
}

/// The live configuration. Values are kept as text (what `CONFIG GET`
/// reports); the few read on hot paths are mirrored into atomics.
pub struct Config {
    values: RwLock<BTreeMap<&'static str, String>>,
    pub proto_max_bulk_len: AtomicI64,
    pub busy_reply_threshold_ms: AtomicU64,
    pub lua_memory_limit: AtomicU64,
    pub maxmemory: AtomicU64,
    /// `maxmemory-clients` in bytes (a percentage applied to `maxmemory`),
    /// 0 when clients are not evicted; read after every read and write of a
    /// connection, so it is kept resolved here.
    pub client_eviction_limit: Arc<AtomicU64>,
    pub maxclients: AtomicU64,
    pub timeout_secs: AtomicU64,
    /// `tcp-keepalive`, read at every accept.
    pub tcp_keepalive: AtomicU64,
    /// Read by every hash write to pick the encoding.
    pub hash_max_listpack_entries: AtomicU64,
    pub hash_max_listpack_value: AtomicU64,
    /// Read by every sorted-set and set write, likewise.
    pub zset_max_listpack_entries: AtomicU64,
    pub zset_max_listpack_value: AtomicU64,
    pub set_max_intset_entries: AtomicU64,
    /// Read by every sparse HyperLogLog write.
    pub hll_sparse_max_bytes: AtomicU64,
    /// Read by every XADD (where a stream node ends) and approximate trim.
    pub stream_node_max_entries: AtomicU64,
    pub stream_node_max_bytes: AtomicU64,
    /// `notify-keyspace-events` as flags, read by every write.
    pub notify_flags: AtomicU32,
    /// The pubsub class of `client-output-buffer-limit`, read by every delivery.
    pub pubsub_limits: Arc<output_limits::Limits>,
    /// The normal class of `client-output-buffer-limit`, read by every connection loop turn.
    pub normal_limits: Arc<output_limits::Limits>,
    /// `client-query-buffer-limit`, checked after every read.
    pub query_buffer_limit: AtomicU64,
    /// `min-replicas-to-write` and `min-replicas-max-lag` both set: with no
    /// replicas, every write is refused (`NOREPLICAS`), as on Redis.
    pub writes_need_replicas: std::sync::atomic::AtomicBool,
    /// `lazyfree-lazy-user-del` (DEL frees as UNLINK) and
    /// `lazyfree-lazy-user-flush` (FLUSHALL/FLUSHDB without a mode are ASYNC).
    pub lazy_user_del: std::sync::atomic::AtomicBool,
    pub lazy_user_flush: std::sync::atomic::AtomicBool,
    /// The password of the default user, `None` when none is set.
    pub requirepass: RwLock<Option<String>>,
    /// Absolute path of the config file the server started with.
    pub file: Option<String>,
    /// The `user` directives of the config file and flags (the words after
    /// `user`), for the ACL to load at start-up.
    pub user_lines: RwLock<Vec<Vec<String>>>,
}

impl Default for Config {
    fn default() -> Self {
        let mut values: BTreeMap<&'static str, String> = PARAMS
            .iter()
            .map(|p| (p.name, normalize(p, p.default).unwrap_or_else(|_| p.default.to_string())))
            .collect();
        // Redis reports its working directory as `dir`.
        if let Ok(cwd) = std::env::current_dir() {
            values.insert("dir", cwd.to_string_lossy().into_owned());
        }
        let cfg = Config {
            values: RwLock::new(values),
            proto_max_bulk_len: AtomicI64::new(0),
            busy_reply_threshold_ms: AtomicU64::new(0),
            lua_memory_limit: AtomicU64::new(0),
            maxmemory: AtomicU64::new(0),
            client_eviction_limit: Arc::default(),
            maxclients: AtomicU64::new(0),
            timeout_secs: AtomicU64::new(0),
            tcp_keepalive: AtomicU64::new(0),
            hash_max_listpack_entries: AtomicU64::new(0),
            hash_max_listpack_value: AtomicU64::new(0),
            zset_max_listpack_entries: AtomicU64::new(0),
            zset_max_listpack_value: AtomicU64::new(0),
            set_max_intset_entries: AtomicU64::new(0),
            hll_sparse_max_bytes: AtomicU64::new(0),
            notify_flags: AtomicU32::new(0),
            pubsub_limits: Arc::default(),
            normal_limits: Arc::default(),
            query_buffer_limit: AtomicU64::new(0),
            writes_need_replicas: std::sync::atomic::AtomicBool::new(false),
            lazy_user_del: std::sync::atomic::AtomicBool::new(false),
            stream_node_max_entries: AtomicU64::new(100),
            stream_node_max_bytes: AtomicU64::new(4096),
            lazy_user_flush: std::sync::atomic::AtomicBool::new(false),
            requirepass: RwLock::new(None),
            file: None,
            user_lines: RwLock::new(Vec::new()),
        };
        for p in PARAMS {
            cfg.refresh_hot(p.name);
        }
        cfg
    }
}

/// The error prefix Redis puts before a refused `CONFIG SET` value.
fn set_failed(name: &str, why: &str) -> String {
    format!("CONFIG SET failed (possibly related to argument '{name}') - {why}")
}

impl Config {
    /// The stored text of a parameter (canonical name or alias).
    pub fn get(&self, name: &str) -> Option<String> {
        let p = find_param(name)?;
        self.values.read().get(p.name).cloned()
    }

    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// Sets a parameter. `startup` allows immutable ones (config file, flags).
    pub fn set(&self, name: &str, value: &str, startup: bool) -> Result<(), String> {
        self.set_many(&[(name, value)], startup)
    }

    /// Sets several parameters at once, all or nothing, with Redis's checks
    /// in Redis's order: names, mutability and duplicates first, then values.
    pub fn set_many(&self, pairs: &[(&str, &str)], startup: bool) -> Result<(), String> {
        let mut found: Vec<(&'static Param, &str)> = Vec::with_capacity(pairs.len());
        for &(name, value) in pairs {
            let Some(p) = find_param(name) else {
                return Err(format!("Unknown option or number of arguments for CONFIG SET - '{name}'"));
            };
            if !startup {
                match p.access {
                    Access::Immutable => return Err(set_failed(name, "can't set immutable config")),
                    Access::Protected => return Err(set_failed(name, "can't set protected config")),
                    Access::Mutable => {}
                }
                // Redis compares the names as given: a name and its alias may both appear.
                if pairs[..found.len()].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    return Err(set_failed(name, "duplicate parameter"));
                }
            }
            found.push((p, value));
        }
        let mut normalized = Vec::with_capacity(found.len());
        for (i, (p, value)) in found.iter().enumerate() {
            let v = if p.name == "client-output-buffer-limit" {
                let current = self.get(p.name).unwrap_or_default();
                output_limits::merge_output_limits(&current, value)
            } else {
                normalize(p, value)
            };
            let v = v.map_err(|e| set_failed(pairs[i].0, &e))?;
            normalized.push((p.name, v));
        }
        let mut values = self.values.write();
        for (name, v) in &normalized {
            values.insert(name, v.clone());
        }
        drop(values);
        for (name, _) in normalized {
            self.refresh_hot(name);
        }
        Ok(())
    }

    /// All (name, value) pairs whose name or alias matches the glob `pattern`.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        let values = self.values.read();
        let mut out = Vec::new();
        let exact = !pattern.iter().any(|c| b"*?[".contains(c));
        for p in PARAMS {
            let v = values.get(p.name).cloned().unwrap_or_default();
            // Redis's hidden (debugging) parameters answer only to their exact name.
            if HIDDEN.contains(&p.name) && !(exact && p.name.as_bytes().eq_ignore_ascii_case(pattern)) {
                continue;
            }
            if crate::util::glob_match(pattern, p.name.as_bytes(), true) {
                out.push((p.name, v.clone()));
            }
            if let Some(alias) = p.alias {
                if crate::util::glob_match(pattern, alias.as_bytes(), true) {
                    out.push((alias, v));
                }
            }
        }
        out
    }

    /// Every parameter's current value, canonical names only (CONFIG REWRITE).
    pub fn snapshot(&self) -> Vec<(&'static str, String)> {
        let values = self.values.read();
        PARAMS.iter().map(|p| (p.name, values.get(p.name).cloned().unwrap_or_default())).collect()
    }

    /// Redis's getClientEvictionLimit: `maxmemory-clients` in bytes, or as
    /// a percentage of `maxmemory` (none while `maxmemory` is 0), never under
    /// 128 KB (a limit that small would leave no client able to talk).
    fn resolve_client_eviction_limit(&self) -> u64 {
        const FLOOR: u64 = 128 * 1024;
        let value = self.get("maxmemory-clients").unwrap_or_default();
        let bytes = match value.strip_suffix('%') {
            Some(percent) => {
                let maxmemory = self.get_i64("maxmemory").max(0) as f64;
                (maxmemory * percent.parse::<f64>().unwrap_or(0.0) / 100.0) as u64
            }
            None => self.get_i64("maxmemory-clients").max(0) as u64,
        };
        if bytes == 0 {
            0
        } else {
            bytes.max(FLOOR)
        }
    }

    fn refresh_hot(&self, name: &str) {
        let v = self.get_i64(name);
        match name {
            "proto-max-bulk-len" => self.proto_max_bulk_len.store(v, Ordering::Relaxed),
            "busy-reply-threshold" => self.busy_reply_threshold_ms.store(v.max(0) as u64, Ordering::Relaxed),
            "lua-memory-limit" => self.lua_memory_limit.store(v.max(0) as u64, Ordering::Relaxed),
            "maxmemory" | "maxmemory-clients" => {
                self.maxmemory.store(self.get_i64("maxmemory").max(0) as u64, Ordering::Relaxed);
                self.client_eviction_limit.store(self.resolve_client_eviction_limit(), Ordering::Relaxed);
            }
            "maxclients" => self.maxclients.store(v.max(0) as u64, Ordering::Relaxed),
            "timeout" => self.timeout_secs.store(v.max(0) as u64, Ordering::Relaxed),
            "tcp-keepalive" => self.tcp_keepalive.store(v.max(0) as u64, Ordering::Relaxed),
            "client-query-buffer-limit" => self.query_buffer_limit.store(v.max(0) as u64, Ordering::Relaxed),
            "hash-max-listpack-entries" => self.hash_max_listpack_entries.store(v.max(0) as u64, Ordering::Relaxed),
            "zset-max-listpack-entries" => self.zset_max_listpack_entries.store(v.max(0) as u64, Ordering::Relaxed),
            "zset-max-listpack-value" => self.zset_max_listpack_value.store(v.max(0) as u64, Ordering::Relaxed),
            "set-max-intset-entries" => self.set_max_intset_entries.store(v.max(0) as u64, Ordering::Relaxed),
            "hash-max-listpack-value" => self.hash_max_listpack_value.store(v.max(0) as u64, Ordering::Relaxed),
            "hll-sparse-max-bytes" => self.hll_sparse_max_bytes.store(v.max(0) as u64, Ordering::Relaxed),
            "stream-node-max-entries" => self.stream_node_max_entries.store(v.max(0) as u64, Ordering::Relaxed),
            "stream-node-max-bytes" => self.stream_node_max_bytes.store(v.max(0) as u64, Ordering::Relaxed),
            "notify-keyspace-events" => {
                let flags = keyspace_events::parse_flags(&self.get(name).unwrap_or_default()).unwrap_or(0);
                self.notify_flags.store(flags, Ordering::Relaxed);
                crate::storage::note_new_keys(flags & keyspace_events::NEW != 0);
            }
            "client-output-buffer-limit" => {
                let value = self.get(name).unwrap_or_default();
                let (hard, soft, secs) = output_limits::output_limits(&value, "pubsub").unwrap_or((0, 0, 0));
                self.pubsub_limits.hard.store(hard, Ordering::Relaxed);
                self.pubsub_limits.soft.store(soft, Ordering::Relaxed);
                self.pubsub_limits.soft_secs.store(secs, Ordering::Relaxed);
                let (hard, soft, secs) = output_limits::output_limits(&value, "normal").unwrap_or((0, 0, 0));
                self.normal_limits.hard.store(hard, Ordering::Relaxed);
                self.normal_limits.soft.store(soft, Ordering::Relaxed);
                self.normal_limits.soft_secs.store(secs, Ordering::Relaxed);
            }
            "lazyfree-lazy-user-del" => {
                self.lazy_user_del.store(self.get(name).as_deref() == Some("yes"), Ordering::Relaxed)
            }
            "lazyfree-lazy-user-flush" => {
                self.lazy_user_flush.store(self.get(name).as_deref() == Some("yes"), Ordering::Relaxed)
            }
            "min-replicas-to-write" | "min-replicas-max-lag" => {
                let on = self.get_i64("min-replicas-to-write") > 0 && self.get_i64("min-replicas-max-lag") > 0;
                self.writes_need_replicas.store(on, Ordering::Relaxed);
            }
            "requirepass" => {
                let pass = self.get("requirepass").unwrap_or_default();
                *self.requirepass.write() = if pass.is_empty() { None } else { Some(pass) };
            }
            _ => {}
        }
    }

    /// Builds the configuration from the command line: an optional config file
    /// as the first argument, then `--name value...` pairs overriding it.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut cfg = Config::default();
        let mut rest = args;
        // Redis reads the command line as lines after the file's: a `--save`
        // adds to the file's save points (the first `save` anywhere replaces
        // the defaults).
        let mut save_seen = false;
        if let Some(first) = rest.first() {
            if !first.starts_with("--") {
                let text =
                    std::fs::read_to_string(first).map_err(|e| format!("can't open config file '{first}': {e}"))?;
                save_seen = cfg.load_file_text(&text)?;
                let path = std::fs::canonicalize(first)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| first.clone());
                cfg.file = Some(path);
                rest = &rest[1..];
            }
        }
        let mut i = 0;
        while i < rest.len() {
            let flag = &rest[i];
            let Some(name) = flag.strip_prefix("--") else {
                return Err(format!("unexpected argument '{flag}'"));
            };
            if name == "help" || name == "version" {
                return Err(name.to_string());
            }
            i += 1;
            let mut values = Vec::new();
            while i < rest.len() && !rest[i].starts_with("--") {
                values.push(rest[i].clone());
                i += 1;
            }
            if name.eq_ignore_ascii_case("user") {
                cfg.user_lines.write().push(values);
                continue;
            }
            let value = if name.eq_ignore_ascii_case("save") {
                cfg.merged_save(&mut save_seen, values.join(" "))
            } else {
                values.join(" ")
            };
            cfg.set(name, &value, true).map_err(|e| format!("--{name}: {e}"))?;
        }
        Ok(cfg)
    }

    /// A `save` directive read at start-up: the first replaces the default
    /// save points, the next ones add to them, `""` clears them.
    fn merged_save(&self, seen: &mut bool, add: String) -> String {
        let prev = if *seen { self.get("save").unwrap_or_default() } else { String::new() };
        *seen = true;
        if prev.is_empty() || add.is_empty() {
            add
        } else {
            format!("{prev} {add}")
        }
    }

    /// Applies a config file's lines; true when one was a `save`.
    fn load_file_text(&self, text: &str) -> Result<bool, String> {
        // The first `save` line replaces the default save points, the next ones add to it.
        let mut save_seen = false;
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let args = crate::protocol::split_args_str(line)
                .ok_or_else(|| format!("line {}: unbalanced quotes", lineno + 1))?;
            let Some((name, values)) = args.split_first() else {
                continue;
            };
            if name.eq_ignore_ascii_case("user") {
                self.user_lines.write().push(values.to_vec());
                continue;
            }
            // Directives that are not parameters; `rename-command` and modules are not supported.
            if ["include", "rename-command", "loadmodule"].iter().any(|d| name.eq_ignore_ascii_case(d)) {
                continue;
            }
            // `save` may appear on several lines; each adds a rule.
            let value = if name.eq_ignore_ascii_case("save") {
                self.merged_save(&mut save_seen, values.join(" "))
            } else {
                values.join(" ")
            };
            self.set(name, &value, true).map_err(|e| format!("config file line {}: {e}", lineno + 1))?;
        }
        Ok(save_seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("5MB"), Some(5 << 20));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("1k"), Some(1000));
    }

    #[test]
    fn set_checks_like_redis() {
        let cfg = Config::default();
        assert_eq!(cfg.get("hz").unwrap(), "10");
        let e = cfg.set_many(&[("hz", "5"), ("hz", "6")], false).unwrap_err();
        assert!(e.ends_with("duplicate parameter"), "{e}");
        let e = cfg.set_many(&[("hz", "5"), ("maxmemory", "x")], false).unwrap_err();
        assert!(e.ends_with("argument must be a memory value"), "{e}");
        assert_eq!(cfg.get("hz").unwrap(), "10", "a failed CONFIG SET changes nothing");
        assert!(cfg.set("daemonize", "yes", false).unwrap_err().ends_with("can't set immutable config"));
        assert!(cfg.set("hz", "-1", false).unwrap_err().ends_with("between 0 and 2147483647 inclusive"));
        cfg.set_many(&[("hz", "5"), ("maxmemory", "1mb")], false).unwrap();
        assert_eq!(cfg.get("maxmemory").unwrap(), "1048576");
    }

    #[test]
    fn config_file_then_flags() {
        let dir = std::env::temp_dir().join(format!("moonshard-cfg-{}", std::process::id()));
        std::fs::write(&dir, "# comment\nport 7001\nmaxclients 5\nsave 900 1\nsave 300 10\nrequirepass \"a b\"\n")
            .unwrap();
        let path = dir.to_string_lossy().into_owned();
        let cfg = Config::from_args(&[path.clone(), "--port".into(), "7002".into()]).unwrap();
        std::fs::remove_file(&dir).ok();
        assert_eq!(cfg.get("port").unwrap(), "7002");
        assert_eq!(cfg.get("maxclients").unwrap(), "5");
        assert_eq!(cfg.get("save").unwrap(), "900 1 300 10");
        assert_eq!(cfg.requirepass.read().as_deref(), Some("a b"));
        // As Redis: a `--save` adds to the file's save points; the first
        // `save` anywhere replaces the defaults; "" clears them.
        std::fs::write(&dir, "save 900 1\n").unwrap();
        let args = |extra: &[&str]| {
            let mut a = vec![path.clone()];
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        };
        let cfg = Config::from_args(&args(&["--save", "100", "100"])).unwrap();
        assert_eq!(cfg.get("save").unwrap(), "900 1 100 100");
        let cfg = Config::from_args(&args(&["--save", ""])).unwrap();
        assert_eq!(cfg.get("save").unwrap(), "");
        std::fs::remove_file(&dir).ok();
        let cfg = Config::from_args(&["--save".into(), "100".into(), "100".into()]).unwrap();
        assert_eq!(cfg.get("save").unwrap(), "100 100");
        let cfg = Config::from_args(&[]).unwrap();
        assert_eq!(cfg.get("save").unwrap(), "3600 1 300 100 60 10000");
    }

    #[test]
    fn latency_percentiles_as_redis_writes_them() {
        let cfg = Config::default();
        assert_eq!(cfg.get("latency-tracking-info-percentiles").unwrap(), "50 99 99.9");
        cfg.set("latency-tracking-info-percentiles", "0 50.0 100 1.5e1", false).unwrap();
        assert_eq!(cfg.get("latency-tracking-info-percentiles").unwrap(), "0 50 100 15");
        for bad in ["10.0 50.0 a", "10 101", "-1"] {
            assert!(cfg.set("latency-tracking-info-percentiles", bad, false).is_err(), "{bad}");
        }
        assert_eq!(cfg.get("latency-tracking-info-percentiles").unwrap(), "0 50 100 15");
        cfg.set("latency-tracking-info-percentiles", "", false).unwrap();
        assert_eq!(cfg.get("latency-tracking-info-percentiles").unwrap(), "");
    }

    #[test]
    fn octal_as_redis_reads_it() {
        assert_eq!(parse_octal("770"), Some(0o770));
        assert_eq!(parse_octal("0770"), Some(0o770));
        assert_eq!(parse_octal(" +7"), Some(7));
        assert_eq!(parse_octal("-0"), Some(0));
        assert_eq!(parse_octal(""), Some(0));
        assert_eq!(parse_octal("7777777777777777777777777"), Some(i64::MAX));
        for bad in ["8", "0o7", "abc", "7 ", "+", " ", "0x7"] {
            assert_eq!(parse_octal(bad), None, "{bad:?}");
        }
        let cfg = Config::default();
        assert_eq!(cfg.get("unixsocketperm").unwrap(), "0");
        cfg.set("unixsocketperm", "0770", true).unwrap();
        assert_eq!(cfg.get("unixsocketperm").unwrap(), "770");
        assert_eq!(unixsocket_mode(&cfg), 0o770);
        let e = cfg.set("unixsocketperm", "1000", true).unwrap_err();
        assert!(e.ends_with("argument must be between 0 and 777 inclusive"), "{e}");
        let e = cfg.set("unixsocketperm", "9", true).unwrap_err();
        assert!(e.ends_with("argument couldn't be parsed as an octal number"), "{e}");
        assert!(cfg.set("unixsocketperm", "7", false).unwrap_err().ends_with("can't set immutable config"));
    }

    #[test]
    fn aliases_and_flags() {
        let cfg =
            Config::from_args(&["--port".into(), "7000".into(), "--lua-time-limit".into(), "100".into()]).unwrap();
        assert_eq!(cfg.get("port").unwrap(), "7000");
        assert_eq!(cfg.get("busy-reply-threshold").unwrap(), "100");
        assert_eq!(cfg.busy_reply_threshold_ms.load(Ordering::Relaxed), 100);
    }
}
