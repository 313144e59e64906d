//! The commands ACL rules can name, with their categories: every command and
//! subcommand of the registry, plus the Redis 7.0 commands moonshard does
//! not run. Rules naming those are accepted and the categories count them
//! as Redis counts them, so `ACL CAT` and the rules `ACL LIST` prints (which
//! pick categories by how many of their commands a user may run) are
//! Redis's.
//!
//! A command's ACL id is its index in `registry::all()`, so the check of a
//! resolved command is a bit test; the other Redis commands come after.

use crate::commands::registry::{self, flags, CommandSpec, Exec, KeySpec};
use std::collections::HashMap;
use std::sync::OnceLock;

/// ACL categories in Redis's order (its bit order, the order `ACL CAT` and
/// COMMAND INFO list them, and the order `ACL LIST` tries them in).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Words of a selector's command bitmap.
pub const WORDS: usize = 16;
/// The last bit is never a command: `+@all` sets it, so a user made from
/// `+@all` minus some commands is told apart from one made by adding.
pub const FUTURE_BIT: usize = WORDS * 64 - 1;

/// Redis 7.0 commands moonshard does not run: name, arity, categories
/// (as redis-server 7.0 reports them).
const OTHER_REDIS_COMMANDS: &[(&str, i32, &[&str])] = &[
    ("asking", 1, &["fast", "connection"]),
    ("bgrewriteaof", 1, &["admin", "slow", "dangerous"]),
    ("client|caching", 3, &["slow", "connection"]),
    ("client|getredir", 2, &["slow", "connection"]),
    ("client|tracking", -3, &["slow", "connection"]),
    ("client|trackinginfo", 2, &["slow", "connection"]),
    ("cluster|addslots", -3, &["admin", "slow", "dangerous"]),
    ("cluster|addslotsrange", -4, &["admin", "slow", "dangerous"]),
    ("cluster|bumpepoch", 2, &["admin", "slow", "dangerous"]),
    ("cluster|count-failure-reports", 3, &["admin", "slow", "dangerous"]),
    ("cluster|countkeysinslot", 3, &["slow"]),
    ("cluster|delslots", -3, &["admin", "slow", "dangerous"]),
    ("cluster|delslotsrange", -4, &["admin", "slow", "dangerous"]),
    ("cluster|failover", -2, &["admin", "slow", "dangerous"]),
    ("cluster|flushslots", 2, &["admin", "slow", "dangerous"]),
    ("cluster|forget", 3, &["admin", "slow", "dangerous"]),
    ("cluster|getkeysinslot", 4, &["slow"]),
    ("cluster|links", 2, &["slow"]),
    ("cluster|meet", -4, &["admin", "slow", "dangerous"]),
    ("cluster|replicas", 3, &["admin", "slow", "dangerous"]),
    ("cluster|replicate", 3, &["admin", "slow", "dangerous"]),
    ("cluster|reset", -2, &["admin", "slow", "dangerous"]),
    ("cluster|saveconfig", 2, &["admin", "slow", "dangerous"]),
    ("cluster|set-config-epoch", 3, &["admin", "slow", "dangerous"]),
    ("cluster|setslot", -4, &["admin", "slow", "dangerous"]),
    ("cluster|slaves", 3, &["admin", "slow", "dangerous"]),
    ("dump", 2, &["keyspace", "read", "slow"]),
    ("failover", -1, &["admin", "slow", "dangerous"]),
    ("migrate", -6, &["keyspace", "write", "slow", "dangerous"]),
    ("module", -2, &["slow"]),
    ("module|help", 2, &["slow"]),
    ("module|list", 2, &["admin", "slow", "dangerous"]),
    ("module|load", -3, &["admin", "slow", "dangerous"]),
    ("module|loadex", -3, &["admin", "slow", "dangerous"]),
    ("module|unload", 3, &["admin", "slow", "dangerous"]),
    ("psync", -3, &["admin", "slow", "dangerous"]),
    ("readonly", 1, &["fast", "connection"]),
    ("readwrite", 1, &["fast", "connection"]),
    ("replconf", -1, &["admin", "slow", "dangerous"]),
    ("replicaof", 3, &["admin", "slow", "dangerous"]),
    ("restore", -4, &["keyspace", "write", "slow", "dangerous"]),
    ("restore-asking", -4, &["keyspace", "write", "slow", "dangerous"]),
    ("role", 1, &["admin", "fast", "dangerous"]),
    ("slaveof", 3, &["admin", "slow", "dangerous"]),
    ("sync", 1, &["admin", "slow", "dangerous"]),
];

/// Read (`ACCESS`) and write (`INSERT`/`DELETE`/`UPDATE`) permission bits,
/// as key specs ask for them and key patterns grant them.
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;
pub const RW: u8 = READ | WRITE;

/// What a command's keys need, decided from its key specs as Redis does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyAccess {
    /// No key arguments (or only channels, as SPUBLISH's).
    None,
    /// Every key needs the same permissions.
    Uniform(u8),
    /// Each key takes the flags of the key spec that finds it.
    PerSpec,
    /// SET: `GET` makes it read as well as write.
    Set,
    /// BITFIELD: read only when every operation is a GET.
    Bitfield,
}

/// Which arguments are channels, and how channel patterns match them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Channels {
    None,
    /// PUBLISH, SPUBLISH: argument 1, matched by glob.
    First,
    /// SUBSCRIBE, SSUBSCRIBE: every argument, matched by glob.
    All,
    /// PSUBSCRIBE: every argument, equal to an allowed pattern.
    AllLiteral,
}

pub struct Entry {
    /// Redis's full name (`config|get`).
    pub name: String,
    /// Bitmask over `CATEGORIES`.
    pub cats: u32,
    pub parent: Option<usize>,
    pub subs: Vec<usize>,
    /// Always allowed (AUTH, HELLO, ...).
    pub no_auth: bool,
    pub keys: KeyAccess,
    /// `(first, last, step)` when a plain range finds the keys and they
    /// need the same permissions (most commands, SET): the short way.
    pub key_range: Option<(i32, i32, i32)>,
    pub channels: Channels,
    /// Redis's arity (for commands moonshard does not run).
    pub arity: i32,
    /// The declaration, for commands moonshard runs.
    pub spec: Option<&'static CommandSpec>,
}

pub struct Index {
    /// By ACL id; None for ids no command has.
    pub entries: Vec<Option<Entry>>,
    /// By ACL id, what the request path's short check needs, packed.
    pub quick: Vec<Quick>,
    /// Top-level commands in table order.
    pub top: Vec<usize>,
    by_name: HashMap<String, usize, ahash::RandomState>,
}

/// A command as the short check sees it: its keys at `first`,
/// `first + step`, ... `last` (negative: from the end), and `kind`.
#[derive(Clone, Copy, Debug)]
pub struct Quick {
    pub first: i8,
    pub last: i8,
    pub step: i8,
    pub kind: u8,
}

impl Quick {
    /// No keys and no channels.
    pub const NO_KEYS: u8 = 0;
    // 1..=3: every key needs these permissions (READ, WRITE, RW).
    /// SET's keys: written, and read too with `GET`.
    pub const SET: u8 = 4;
    /// Channels, no keys: allowed when the selector allows every channel.
    pub const CHANNELS: u8 = 5;
    /// Anything else: the full check decides.
    pub const OTHER: u8 = 6;

    const NONE: Quick = Quick { first: 0, last: 0, step: 0, kind: Quick::OTHER };

    fn of(e: &Entry) -> Quick {
        let range = |kind: u8| match e.key_range {
            Some((f, l, st)) => match (i8::try_from(f), i8::try_from(l), i8::try_from(st)) {
                (Ok(first), Ok(last), Ok(step)) => Quick { first, last, step: step.max(1), kind },
                _ => Quick::NONE,
            },
            None => Quick::NONE,
        };
        match (e.keys, e.channels) {
            (KeyAccess::None, Channels::None) => Quick { kind: Quick::NO_KEYS, ..Quick::NONE },
            (KeyAccess::None, _) => Quick { kind: Quick::CHANNELS, ..Quick::NONE },
            (KeyAccess::Uniform(p), Channels::None) if p != 0 => range(p),
            (KeyAccess::Set, Channels::None) => range(Quick::SET),
            _ => Quick::NONE,
        }
    }
}

pub fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(build)
}

/// Bitmask of the named categories.
fn category_bits(names: &[&str]) -> u32 {
    names.iter().filter_map(|n| CATEGORIES.iter().position(|c| c == n)).fold(0, |m, i| m | 1 << i)
}

/// A category's bit, by name, case-insensitively.
pub fn category(name: &[u8]) -> Option<u32> {
    CATEGORIES.iter().position(|c| c.as_bytes().eq_ignore_ascii_case(name)).map(|i| 1 << i)
}

/// Commands newer than Redis 7.0 (CLIENT SETINFO) belong to no category,
/// so categories hold exactly Redis 7.0's commands.
fn newer_than_7_0(spec: &CommandSpec) -> bool {
    let mut parts = spec.since.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) > (7, 0)
}

fn key_access(spec: &CommandSpec) -> KeyAccess {
    if matches!(spec.keys, KeySpec::None) {
        return KeyAccess::None;
    }
    let docs: Vec<_> = spec.key_docs.iter().filter(|d| !d.flags.contains(&"not_key")).collect();
    if spec.key_docs.is_empty() {
        // COMMAND INFO reports RW+update for write commands, RO+access otherwise.
        return KeyAccess::Uniform(if spec.has(flags::WRITE) { WRITE } else { READ });
    }
    if docs.is_empty() {
        return KeyAccess::None;
    }
    if docs.iter().any(|d| d.flags.contains(&"variable_flags")) {
        return match spec.name {
            "set" => KeyAccess::Set,
            "bitfield" => KeyAccess::Bitfield,
            _ => KeyAccess::Uniform(RW),
        };
    }
    let first = perm_of(docs[0].flags);
    if docs.iter().all(|d| perm_of(d.flags) == first) {
        KeyAccess::Uniform(first)
    } else {
        KeyAccess::PerSpec
    }
}

/// The permissions a key spec's flags ask for.
pub fn perm_of(flags: &[&str]) -> u8 {
    let mut p = 0;
    for f in flags {
        match *f {
            "access" => p |= READ,
            "insert" | "delete" | "update" => p |= WRITE,
            _ => {}
        }
    }
    p
}

fn channels(spec: &CommandSpec) -> Channels {
    match spec.name {
        "publish" | "spublish" => Channels::First,
        "subscribe" | "ssubscribe" => Channels::All,
        "psubscribe" => Channels::AllLiteral,
        _ => Channels::None,
    }
}

fn build() -> Index {
    let all = registry::all();
    let mut entries: Vec<Option<Entry>> = Vec::new();
    let mut by_name = HashMap::default();
    let mut top = Vec::new();
    let real = |spec: &'static CommandSpec, parent: Option<usize>| {
        let cats =
            if newer_than_7_0(spec) { 0 } else { category_bits(&crate::commands::server::command::categories(spec)) };
        let keys = if matches!(spec.exec, Exec::Container) { KeyAccess::None } else { key_access(spec) };
        let key_range = match (keys, spec.keys) {
            (KeyAccess::Uniform(_) | KeyAccess::Set, KeySpec::Range { first, last, step }) if first >= 1 => {
                Some((first, last, step))
            }
            _ => None,
        };
        Entry {
            name: spec.name.to_string(),
            cats,
            parent,
            subs: Vec::new(),
            no_auth: spec.has(flags::NO_AUTH),
            keys,
            key_range,
            channels: channels(spec),
            arity: spec.arity,
            spec: Some(spec),
        }
    };
    entries.resize_with(all.len(), || None);
    for cmd in registry::top_level() {
        let Some(id) = registry::lookup(cmd.name.as_bytes()).map(|c| c.id) else {
            continue;
        };
        entries[id] = Some(real(cmd, None));
        by_name.insert(cmd.name.to_string(), id);
        top.push(id);
        for sub in cmd.subcommands {
            let Some(sid) = registry::lookup(sub.name.as_bytes()).map(|c| c.id) else {
                continue;
            };
            entries[sid] = Some(real(sub, Some(id)));
            by_name.insert(sub.name.to_string(), sid);
            if let Some(e) = entries[id].as_mut() {
                e.subs.push(sid);
            }
        }
    }
    for &(name, arity, cats) in OTHER_REDIS_COMMANDS {
        if by_name.contains_key(name) {
            continue; // moonshard has it by now
        }
        let parent = match name.split_once('|') {
            Some((p, _)) => match by_name.get(p) {
                Some(&pid) => Some(pid),
                None => continue, // its container is added first, below
            },
            None => None,
        };
        let id = entries.len();
        entries.push(Some(Entry {
            name: name.to_string(),
            cats: category_bits(cats),
            parent,
            subs: Vec::new(),
            no_auth: false,
            keys: KeyAccess::None,
            key_range: None,
            channels: Channels::None,
            arity,
            spec: None,
        }));
        by_name.insert(name.to_string(), id);
        match parent {
            Some(pid) => {
                if let Some(e) = entries[pid].as_mut() {
                    e.subs.push(id);
                }
            }
            None => top.push(id),
        }
    }
    assert!(entries.len() < FUTURE_BIT, "too many commands for the ACL bitmap");
    let quick = entries.iter().map(|e| e.as_ref().map_or(Quick::NONE, Quick::of)).collect();
    Index { entries, quick, top, by_name }
}

impl Index {
    pub fn get(&self, id: usize) -> Option<&Entry> {
        self.entries.get(id).and_then(|e| e.as_ref())
    }

    /// Redis's lookup of a command by its full name (`get`, `config|get`),
    /// case-insensitively: one level of subcommands, a container's
    /// subcommand only under its container.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        if name.is_empty() || name.iter().filter(|&&c| c == b'|').count() > 1 {
            return None;
        }
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.by_name.get(&lower).copied()
    }

    /// Every command in table order, each container followed by its subcommands.
    pub fn walk(&self) -> impl Iterator<Item = usize> + '_ {
        self.top
            .iter()
            .flat_map(move |&id| std::iter::once(id).chain(self.get(id).map(|e| e.subs.clone()).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_redis_command_has_an_id() {
        let ix = index();
        for name in ["get", "config|get", "acl|setuser", "wait", "cluster|addslots", "module|load", "CONFIG|GET"] {
            assert!(ix.lookup(name.as_bytes()).is_some(), "{name}");
        }
        assert!(ix.lookup(b"get|x").is_none());
        assert!(ix.lookup(b"config|get|x").is_none());
        let set = ix.get(ix.lookup(b"set").unwrap()).unwrap();
        assert_eq!(set.keys, KeyAccess::Set);
        let get = ix.get(ix.lookup(b"get").unwrap()).unwrap();
        assert_eq!(get.keys, KeyAccess::Uniform(READ));
        assert_eq!(ix.get(ix.lookup(b"spublish").unwrap()).unwrap().keys, KeyAccess::None);
        assert_eq!(ix.get(ix.lookup(b"client|setinfo").unwrap()).unwrap().cats, 0);
    }
}
