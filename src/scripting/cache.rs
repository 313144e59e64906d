//! The global script cache: SHA1 → source and shebang flags, shared by every
//! connection. Shards compile lazily from it; `SCRIPT FLUSH` bumps an epoch
//! that makes every shard drop its compiled set on next use.

use bytes::Bytes;
use dashmap::DashMap;
use sha1::{Digest, Sha1};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Script flags from a `#!lua flags=...` shebang (or a function's flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// No shebang: Redis's "eval compat mode".
    pub compat: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot: bool,
}

impl Flags {
    pub const COMPAT: Flags = Flags {
        compat: true,
        no_writes: false,
        allow_oom: false,
        allow_stale: false,
        no_cluster: false,
        allow_cross_slot: false,
    };

    /// Sets the flag named `name`; false when the name is unknown.
    pub fn set(&mut self, name: &str) -> bool {
        match name {
            "no-writes" => self.no_writes = true,
            "allow-oom" => self.allow_oom = true,
            "allow-stale" => self.allow_stale = true,
            "no-cluster" => self.no_cluster = true,
            "allow-cross-slot-keys" => self.allow_cross_slot = true,
            _ => return false,
        }
        true
    }

    /// Names in Redis's order, for FUNCTION LIST.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (on, name) in [
            (self.no_writes, "no-writes"),
            (self.allow_oom, "allow-oom"),
            (self.allow_stale, "allow-stale"),
            (self.no_cluster, "no-cluster"),
            (self.allow_cross_slot, "allow-cross-slot-keys"),
        ] {
            if on {
                v.push(name);
            }
        }
        v
    }
}

/// One cached script.
pub struct Script {
    pub sha: [u8; 40],
    pub source: Bytes,
    pub flags: Flags,
}

impl Script {
    /// The body as compiled: the shebang line blanked so line numbers match
    /// the source.
    pub fn body(&self) -> &[u8] {
        if self.flags.compat {
            return &self.source;
        }
        let end = self.source.iter().position(|&c| c == b'\n').unwrap_or(self.source.len());
        &self.source[end..]
    }
}

/// Parses a script's shebang. Errors are Redis's texts (without "ERR ").
pub fn parse_shebang(source: &[u8]) -> Result<Flags, String> {
    if !source.starts_with(b"#!") {
        return Ok(Flags::COMPAT);
    }
    let Some(end) = source.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&source[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = Flags::default();
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        for name in list.split(',').filter(|s| !s.is_empty()) {
            if !flags.set(name) {
                return Err(format!("Unexpected flag in script shebang: {name}"));
            }
        }
    }
    Ok(flags)
}

/// Lower-case hex SHA1 of `data`.
pub fn sha1_hex(data: &[u8]) -> [u8; 40] {
    let digest = Sha1::digest(data);
    let mut out = [0u8; 40];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in digest.iter().enumerate() {
        out[i * 2] = HEX[(b >> 4) as usize];
        out[i * 2 + 1] = HEX[(b & 15) as usize];
    }
    out
}

/// A 40-character SHA argument, lower-cased; None when it cannot be a SHA.
pub fn sha_arg(arg: &[u8]) -> Option<[u8; 40]> {
    if arg.len() != 40 {
        return None;
    }
    let mut out = [0u8; 40];
    for (o, c) in out.iter_mut().zip(arg) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}

/// The global script cache plus the function libraries.
#[derive(Default)]
pub struct ScriptCache {
    scripts: DashMap<[u8; 40], Arc<Script>, ahash::RandomState>,
    /// Bumped by SCRIPT FLUSH; shards compare it with their own.
    epoch: AtomicU64,
    /// The function libraries (FUNCTION LOAD and friends).
    pub functions: super::functions::Registry,
    /// A private VM for validating scripts and libraries without entering a shard.
    pub(crate) checker: parking_lot::Mutex<Option<super::vm::Vm>>,
    /// `keyspace-mode standalone`: the shards (bit i: shard i; bit 63: 63
    /// and above) each script (by SHA) or function (by name) entered beyond
    /// its declared keys' in earlier runs; its next run enters them from
    /// the start.
    learned: DashMap<Box<[u8]>, u64, ahash::RandomState>,
}

impl ScriptCache {
    /// The shards `job` (a SHA or a function name) needed in earlier runs.
    pub fn learned(&self, job: &[u8]) -> u64 {
        self.learned.get(job).map_or(0, |m| *m.value())
    }

    /// Records that `job` needed the shards `mask` (added to what it needed).
    pub fn learn(&self, job: &[u8], mask: u64) {
        if mask != 0 {
            *self.learned.entry(job.into()).or_insert(0) |= mask;
        }
    }

    pub fn get(&self, sha: &[u8; 40]) -> Option<Arc<Script>> {
        self.scripts.get(sha).map(|e| e.value().clone())
    }

    pub fn contains(&self, sha: &[u8; 40]) -> bool {
        self.scripts.contains_key(sha)
    }

    pub fn insert(&self, script: Arc<Script>) {
        self.scripts.insert(script.sha, script);
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn flush(&self) {
        self.scripts.clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    /// Bytes the cached scripts hold: each script's record and source text
    /// (MEMORY STATS `lua.caches`; compiled functions live in the shards' VMs).
    pub fn bytes(&self) -> usize {
        use crate::storage::usage::block;
        self.scripts.iter().map(|e| block(std::mem::size_of::<Script>()) + block(e.value().source.len())).sum()
    }

    /// Bytes the private checking VM uses (0 when none, or when it is busy).
    pub fn checker_memory(&self) -> usize {
        self.checker.try_lock().and_then(|vm| vm.as_ref().map(|v| v.lua.used_memory())).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        assert_eq!(parse_shebang(b"return 1"), Ok(Flags::COMPAT));
        let f = parse_shebang(b"#!lua flags=no-writes,allow-cross-slot-keys\nreturn 1").unwrap();
        assert!(f.no_writes && f.allow_cross_slot && !f.compat);
        assert_eq!(parse_shebang(b"#!lua\nx"), Ok(Flags::default()));
        assert_eq!(parse_shebang(b"#!lua flags=\nx"), Ok(Flags::default()));
        assert_eq!(parse_shebang(b"#!js\nx").unwrap_err(), "Unexpected engine in script shebang: #!js");
        assert_eq!(parse_shebang(b"#!lua flags=x\n").unwrap_err(), "Unexpected flag in script shebang: x");
        assert_eq!(parse_shebang(b"#!lua name=foo\n").unwrap_err(), "Unknown lua shebang option: name=foo");
        assert_eq!(parse_shebang(b"#!lua").unwrap_err(), "Invalid script shebang");
    }

    #[test]
    fn sha() {
        assert_eq!(&sha1_hex(b""), b"da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}
