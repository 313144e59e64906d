//! Server configuration: command-line flags, a Redis-style config file, and
//! the live parameter set behind `CONFIG GET`/`CONFIG SET`.

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// One known configuration parameter.
pub struct Param {
    pub name: &'static str,
    pub default: &'static str,
    /// Older name accepted as a synonym (e.g. `lua-time-limit`).
    pub alias: Option<&'static str>,
    pub kind: Kind,
    /// False for parameters only settable at start-up.
    pub mutable: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    /// A size with optional unit suffix (kb, mb, gb).
    Memory,
    Str,
    Enum(&'static [&'static str]),
}

macro_rules! p {
    ($name:expr, $default:expr, $kind:expr) => {
        Param {
            name: $name,
            default: $default,
            alias: None,
            kind: $kind,
            mutable: true,
        }
    };
    ($name:expr, $default:expr, $kind:expr, alias = $alias:expr) => {
        Param {
            name: $name,
            default: $default,
            alias: Some($alias),
            kind: $kind,
            mutable: true,
        }
    };
    ($name:expr, $default:expr, $kind:expr, immutable) => {
        Param {
            name: $name,
            default: $default,
            alias: None,
            kind: $kind,
            mutable: false,
        }
    };
}

const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
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

/// Every parameter Redis 7.0 knows, plus moonshard's own. Ones that do not
/// apply to us (encodings, persistence) are stored and reported so tools that
/// set them keep working.
pub static PARAMS: &[Param] = &[
    // moonshard's own
    p!("shards", "0", Kind::Int, immutable),
    p!("io-threads", "0", Kind::Int, immutable),
    p!("lua-memory-limit", "256mb", Kind::Memory),
    // network and clients
    p!("port", "6379", Kind::Int, immutable),
    p!("bind", "127.0.0.1", Kind::Str, immutable),
    p!("protected-mode", "yes", Kind::Bool),
    p!("tcp-backlog", "511", Kind::Int, immutable),
    p!("timeout", "0", Kind::Int),
    p!("tcp-keepalive", "300", Kind::Int),
    p!("maxclients", "10000", Kind::Int),
    p!("databases", "16", Kind::Int, immutable),
    p!("requirepass", "", Kind::Str),
    p!("loglevel", "notice", Kind::Enum(LOGLEVELS)),
    p!("logfile", "", Kind::Str, immutable),
    p!("proto-max-bulk-len", "512mb", Kind::Memory),
    p!("client-query-buffer-limit", "1gb", Kind::Memory),
    p!(
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        Kind::Str
    ),
    // memory
    p!("maxmemory", "0", Kind::Memory),
    p!("maxmemory-policy", "noeviction", Kind::Enum(POLICIES)),
    p!("maxmemory-samples", "5", Kind::Int),
    p!("lfu-log-factor", "10", Kind::Int),
    p!("lfu-decay-time", "1", Kind::Int),
    p!("active-expire-effort", "1", Kind::Int),
    p!("lazyfree-lazy-eviction", "no", Kind::Bool),
    p!("lazyfree-lazy-expire", "no", Kind::Bool),
    p!("lazyfree-lazy-server-del", "no", Kind::Bool),
    p!("lazyfree-lazy-user-del", "no", Kind::Bool),
    p!("lazyfree-lazy-user-flush", "no", Kind::Bool),
    // scripting
    p!(
        "busy-reply-threshold",
        "5000",
        Kind::Int,
        alias = "lua-time-limit"
    ),
    // events
    p!("notify-keyspace-events", "", Kind::Str),
    // persistence: off in moonshard, reported as Redis reports it when off
    p!("save", "", Kind::Str),
    p!("appendonly", "no", Kind::Bool),
    p!(
        "appendfsync",
        "everysec",
        Kind::Enum(&["always", "everysec", "no"])
    ),
    p!("appendfilename", "appendonly.aof", Kind::Str, immutable),
    p!("dbfilename", "dump.rdb", Kind::Str),
    p!("dir", "/", Kind::Str),
    p!("rdbcompression", "yes", Kind::Bool),
    p!("rdbchecksum", "yes", Kind::Bool),
    p!("stop-writes-on-bgsave-error", "yes", Kind::Bool),
    // encodings: accepted and reported only
    p!(
        "hash-max-listpack-entries",
        "128",
        Kind::Int,
        alias = "hash-max-ziplist-entries"
    ),
    p!(
        "hash-max-listpack-value",
        "64",
        Kind::Int,
        alias = "hash-max-ziplist-value"
    ),
    p!(
        "list-max-listpack-size",
        "-2",
        Kind::Int,
        alias = "list-max-ziplist-size"
    ),
    p!("list-compress-depth", "0", Kind::Int),
    p!("set-max-intset-entries", "512", Kind::Int),
    p!(
        "zset-max-listpack-entries",
        "128",
        Kind::Int,
        alias = "zset-max-ziplist-entries"
    ),
    p!(
        "zset-max-listpack-value",
        "64",
        Kind::Int,
        alias = "zset-max-ziplist-value"
    ),
    p!("stream-node-max-bytes", "4096", Kind::Memory),
    p!("stream-node-max-entries", "100", Kind::Int),
    p!("hll-sparse-max-bytes", "3000", Kind::Memory),
    p!("activerehashing", "yes", Kind::Bool),
    p!("hz", "10", Kind::Int),
    p!("dynamic-hz", "yes", Kind::Bool),
    // logs and misc
    p!("slowlog-log-slower-than", "10000", Kind::Int),
    p!("slowlog-max-len", "128", Kind::Int),
    p!("latency-monitor-threshold", "0", Kind::Int),
    p!("latency-tracking", "yes", Kind::Bool),
    p!("daemonize", "no", Kind::Bool, immutable),
    p!("pidfile", "", Kind::Str, immutable),
    p!(
        "supervised",
        "no",
        Kind::Enum(&["upstart", "systemd", "auto", "no"])
    ),
    p!("always-show-logo", "no", Kind::Bool, immutable),
    p!("set-proc-title", "yes", Kind::Bool, immutable),
    p!("enable-debug-command", "no", Kind::Str, immutable),
    p!("cluster-enabled", "no", Kind::Bool, immutable),
    p!("replicaof", "", Kind::Str, alias = "slaveof"),
    p!(
        "replica-read-only",
        "yes",
        Kind::Bool,
        alias = "slave-read-only"
    ),
    p!(
        "min-replicas-to-write",
        "0",
        Kind::Int,
        alias = "min-slaves-to-write"
    ),
    p!("repl-diskless-sync", "yes", Kind::Bool),
    p!("io-threads-do-reads", "no", Kind::Bool, immutable),
    p!("jemalloc-bg-thread", "yes", Kind::Bool),
    p!("activedefrag", "no", Kind::Bool),
    p!("lua-replicate-commands", "yes", Kind::Bool),
    p!("oom-score-adj", "no", Kind::Str),
    p!("tracking-table-max-keys", "1000000", Kind::Int),
    p!("acllog-max-len", "128", Kind::Int),
    p!("aclfile", "", Kind::Str, immutable),
    p!("unixsocket", "", Kind::Str, immutable),
    p!("unixsocketperm", "0", Kind::Int, immutable),
    p!("tls-port", "0", Kind::Int),
];

pub fn find_param(name: &str) -> Option<&'static Param> {
    let lower = name.to_ascii_lowercase();
    PARAMS
        .iter()
        .find(|p| p.name == lower || p.alias == Some(lower.as_str()))
}

/// Parses a Redis memory size: "100", "1k", "1kb", "5mb", "2gb" (case-insensitive).
pub fn parse_memory(s: &str) -> Option<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let units: [(&str, i64); 8] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
        ("b", 1),
        ("", 1),
    ];
    for (suffix, mul) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            if num.is_empty() {
                continue;
            }
            return num.parse::<i64>().ok().and_then(|n| n.checked_mul(mul));
        }
    }
    None
}

/// Validates a value for `param` and returns the canonical text stored.
pub fn normalize(param: &Param, value: &str) -> Result<String, String> {
    match param.kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int => value
            .trim()
            .parse::<i64>()
            .map(|v| v.to_string())
            .map_err(|_| "argument couldn't be parsed into an integer".into()),
        Kind::Memory => parse_memory(value)
            .map(|v| v.to_string())
            .ok_or_else(|| "argument must be a memory value".into()),
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

/// The live configuration. Values are kept as text (what `CONFIG GET`
/// reports); the few read on hot paths are mirrored into atomics.
pub struct Config {
    values: RwLock<BTreeMap<&'static str, String>>,
    pub proto_max_bulk_len: AtomicI64,
    pub busy_reply_threshold_ms: AtomicU64,
    pub lua_memory_limit: AtomicU64,
    pub maxmemory: AtomicU64,
    pub maxclients: AtomicU64,
    pub timeout_secs: AtomicU64,
    /// Bumped on every change to `requirepass` so connections can re-read it.
    pub requirepass: RwLock<Option<String>>,
}

impl Default for Config {
    fn default() -> Self {
        let values = PARAMS
            .iter()
            .map(|p| (p.name, normalize(p, p.default).unwrap_or_default()))
            .collect();
        let cfg = Config {
            values: RwLock::new(values),
            proto_max_bulk_len: AtomicI64::new(0),
            busy_reply_threshold_ms: AtomicU64::new(0),
            lua_memory_limit: AtomicU64::new(0),
            maxmemory: AtomicU64::new(0),
            maxclients: AtomicU64::new(0),
            timeout_secs: AtomicU64::new(0),
            requirepass: RwLock::new(None),
        };
        for p in PARAMS {
            cfg.refresh_hot(p.name);
        }
        cfg
    }
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
        let p = find_param(name).ok_or_else(|| {
            format!("Unknown option or number of arguments for CONFIG SET - '{name}'")
        })?;
        if !p.mutable && !startup {
            return Err(format!("CONFIG SET failed (possibly related to argument '{}') - can't set immutable config", p.name));
        }
        let v = normalize(p, value).map_err(|e| {
            format!(
                "CONFIG SET failed (possibly related to argument '{}') - {e}",
                p.name
            )
        })?;
        self.values.write().insert(p.name, v);
        self.refresh_hot(p.name);
        Ok(())
    }

    /// All (name, value) pairs whose name or alias matches the glob `pattern`.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(String, String)> {
        let values = self.values.read();
        let mut out = Vec::new();
        for p in PARAMS {
            let v = values.get(p.name).cloned().unwrap_or_default();
            if crate::util::glob_match(pattern, p.name.as_bytes(), true) {
                out.push((p.name.to_string(), v.clone()));
            }
            if let Some(alias) = p.alias {
                if crate::util::glob_match(pattern, alias.as_bytes(), true) {
                    out.push((alias.to_string(), v));
                }
            }
        }
        out
    }

    fn refresh_hot(&self, name: &str) {
        let v = self.get_i64(name);
        match name {
            "proto-max-bulk-len" => self.proto_max_bulk_len.store(v, Ordering::Relaxed),
            "busy-reply-threshold" => self
                .busy_reply_threshold_ms
                .store(v.max(0) as u64, Ordering::Relaxed),
            "lua-memory-limit" => self
                .lua_memory_limit
                .store(v.max(0) as u64, Ordering::Relaxed),
            "maxmemory" => self.maxmemory.store(v.max(0) as u64, Ordering::Relaxed),
            "maxclients" => self.maxclients.store(v.max(0) as u64, Ordering::Relaxed),
            "timeout" => self.timeout_secs.store(v.max(0) as u64, Ordering::Relaxed),
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
        let cfg = Config::default();
        let mut rest = args;
        if let Some(first) = rest.first() {
            if !first.starts_with("--") {
                let text = std::fs::read_to_string(first)
                    .map_err(|e| format!("can't open config file '{first}': {e}"))?;
                cfg.load_file_text(&text)?;
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
            cfg.set(name, &values.join(" "), true)
                .map_err(|e| format!("--{name}: {e}"))?;
        }
        Ok(cfg)
    }

    fn load_file_text(&self, text: &str) -> Result<(), String> {
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
            if name.eq_ignore_ascii_case("include") || name.eq_ignore_ascii_case("rename-command") {
                continue;
            }
            self.set(name, &values.join(" "), true)
                .map_err(|e| format!("line {}: {e}", lineno + 1))?;
        }
        Ok(())
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
    }

    #[test]
    fn aliases_and_flags() {
        let cfg = Config::from_args(&[
            "--port".into(),
            "7000".into(),
            "--lua-time-limit".into(),
            "100".into(),
        ])
        .unwrap();
        assert_eq!(cfg.get("port").unwrap(), "7000");
        assert_eq!(cfg.get("busy-reply-threshold").unwrap(), "100");
        assert_eq!(cfg.busy_reply_threshold_ms.load(Ordering::Relaxed), 100);
    }
}
