//! What a command declaration is: name, arity, flags, key positions, group,
//! docs and handler. Each family declares its commands next to its handlers
//! (`pub static COMMANDS: &[CommandSpec]` in its file) with the builders
//! below; `registry` collects the families. Routing, arity and slot checks,
//! `COMMAND` replies, ACL categories and the scripting rules all read these
//! declarations; nothing else lists commands.

use super::{ConnCtx, Ctx};
use crate::protocol::Reply;
use bytes::Bytes;

pub type KeyedFn = fn(&mut Ctx, &[Bytes]) -> Reply;
pub type ConnFn = fn(&mut ConnCtx, &[Bytes]) -> Reply;
pub type RouteFn = fn(&crate::server::Server, &[Bytes]) -> Result<usize, Reply>;
pub type KeysFn = fn(&[Bytes]) -> Vec<usize>;

/// How a command executes. Every kind but `Session` runs through
/// `dispatch::call` (shards entered) or `dispatch::call_conn` (none).
#[derive(Clone, Copy)]
pub enum Exec {
    /// Runs with the shard(s) owning its keys entered. A command with no
    /// keys runs on the client's home shard.
    Keyed(KeyedFn),
    /// A command that may wait for data (BLPOP, XREAD BLOCK, ...): routed
    /// like `Keyed`; the handler tries its non-blocking form and answers
    /// `Reply::Blocked` when the client should wait (never inside EXEC or a
    /// script, where it gives the timeout reply). The session does the waiting
    /// and retries through dispatch when a write wakes it.
    Blocking(KeyedFn),
    /// Runs with every shard entered at once (DBSIZE, KEYS, FLUSHALL, INFO):
    /// one point in time across the keyspace, as on a single-threaded Redis.
    AllShards(KeyedFn),
    /// Runs with the one shard the route fn names entered (SCAN: the shard
    /// its cursor points into).
    Routed(RouteFn, KeyedFn),
    /// Runs with no shard entered: it reads or changes the client's state or
    /// the server's (CLIENT, CONFIG, SCRIPT LOAD, ...).
    Conn(ConnFn),
    /// Part of the session's own state machine (transactions, subscriptions,
    /// blocking waits, scripts that pick their shard, MONITOR): the session
    /// handles it, and every command it runs goes through dispatch.
    Session(SessionOp),
    /// A container such as CONFIG or CLIENT: dispatch on the subcommand.
    Container,
}

/// The commands the session handles itself (see `Exec::Session`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SessionOp {
    Quit,
    Reset,
    ClientReply,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
    SSubscribe,
    SUnsubscribe,
    /// EVAL, EVALSHA and their _RO forms.
    Eval,
    /// FCALL and FCALL_RO.
    Fcall,
    Monitor,
    /// WAIT numreplicas timeout.
    Wait,
}

/// Where the keys of a command are.
#[derive(Clone, Copy)]
pub enum KeySpec {
    None,
    /// Keys at `first`, `first+step`, ... up to `last` (negative: from the end).
    Range {
        first: i32,
        last: i32,
        step: i32,
    },
    /// A count at `numkeys`, then that many keys from `numkeys + 1` (EVAL, LMPOP).
    NumKeys {
        numkeys: usize,
    },
    /// Anything else (ZUNIONSTORE's destination plus numkeys, XREAD's STREAMS).
    Custom {
        find: KeysFn,
        legacy: (i32, i32, i32),
    },
}

pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 14;
    pub const NO_MULTI: u32 = 1 << 15;
    pub const ALLOW_BUSY: u32 = 1 << 16;
    pub const SENTINEL: u32 = 1 << 17;
    pub const NO_ASYNC_LOADING: u32 = 1 << 18;
    /// Redis's CMD_ASKING (RESTORE-ASKING): accepted on an importing slot.
    pub const ASKING: u32 = 1 << 19;
    /// moonshard: keys may live in different slots (and shards); the command
    /// is split per shard or runs with all owning shards entered.
    pub const MULTI_SHARD: u32 = 1 << 24;
    /// Redis's CMD_PROTECTED (not reported by `COMMAND`): refused unless its
    /// `enable-*-command` parameter allows the client (`dispatch::protected`).
    pub const PROTECTED: u32 = 1 << 25;

    /// Names as `COMMAND` reports them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (SENTINEL, "sentinel"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

use flags::*;

/// The command groups of `COMMAND DOCS`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Group {
    Generic,
    String,
    List,
    Set,
    SortedSet,
    Hash,
    Pubsub,
    Transactions,
    Connection,
    Server,
    Scripting,
    Cluster,
    Stream,
    Bitmap,
    Hyperloglog,
    Geo,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Generic => "generic",
            Group::String => "string",
            Group::List => "list",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::Hash => "hash",
            Group::Pubsub => "pubsub",
            Group::Transactions => "transactions",
            Group::Connection => "connection",
            Group::Server => "server",
            Group::Scripting => "scripting",
            Group::Cluster => "cluster",
            Group::Stream => "stream",
            Group::Bitmap => "bitmap",
            Group::Hyperloglog => "hyperloglog",
            Group::Geo => "geo",
        }
    }
}

pub struct CommandSpec {
    /// Lower-case name; subcommands are named `parent|sub` as Redis reports them.
    pub name: &'static str,
    /// Redis arity: exact argument count including the name, or -N for "at least N".
    pub arity: i32,
    pub flags: u32,
    pub keys: KeySpec,
    pub group: Group,
    pub exec: Exec,
    pub subcommands: &'static [CommandSpec],
    /// Short description for `COMMAND DOCS` (our own words).
    pub summary: &'static str,
    /// First Redis version with the command.
    pub since: &'static str,
    /// The arguments, as `redis-cli help` prints them (see `syntax`).
    pub syntax: &'static str,
    /// Redis's command tips (hints for cluster-aware clients).
    pub tips: &'static [&'static str],
    /// Redis's exact key specs, where they say more than `keys` implies.
    pub key_docs: &'static [KeySpecDoc],
    /// ACL categories beyond those the flags and group imply (@dangerous ...);
    /// `-name` removes one the group implies.
    pub acl_extra: &'static [&'static str],
}

impl CommandSpec {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn is_write(&self) -> bool {
        self.has(WRITE)
    }

    /// True when the arity allows `argc` arguments.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        (a >= 0 && argc == a as usize) || (a < 0 && argc >= (-a) as usize)
    }

    /// The name shown to users in errors (`config|get`).
    pub fn display_name(&self) -> &'static str {
        self.name
    }

    /// Positions of the key arguments in `args` (args[0] is the command name).
    /// Malformed counts give no keys; the handler reports the error.
    pub fn key_positions(&self, args: &[Bytes]) -> Vec<usize> {
        let argc = args.len() as i32;
        match self.keys {
            KeySpec::None => Vec::new(),
            KeySpec::Range { first, last, step } => {
                let last = if last < 0 { argc + last } else { last };
                let mut out = Vec::new();
                let mut i = first;
                while i <= last && i < argc {
                    out.push(i as usize);
                    i += step.max(1);
                }
                out
            }
            KeySpec::NumKeys { numkeys } => {
                let Some(n) = args.get(numkeys).and_then(|a| crate::util::parse_i64(a)) else {
                    return Vec::new();
                };
                if n < 0 || (numkeys as i64 + 1).saturating_add(n) > argc as i64 {
                    return Vec::new();
                }
                (numkeys + 1..numkeys + 1 + n as usize).collect()
            }
            KeySpec::Custom { find, .. } => find(args),
        }
    }

    /// The positions `key_positions` gives, one at a time: without
    /// allocating for the fixed ranges most commands declare.
    pub fn key_positions_iter(&self, args: &[Bytes]) -> KeyPositions {
        match self.keys {
            KeySpec::Range { first, last, step } => {
                let argc = args.len() as i32;
                let last = if last < 0 { argc + last } else { last };
                KeyPositions::Range { next: first, last: last.min(argc - 1), step: step.max(1) }
            }
            _ => KeyPositions::List(self.key_positions(args).into_iter()),
        }
    }

    /// The (first, last, step) triple of `COMMAND INFO`.
    pub fn legacy_keys(&self) -> (i32, i32, i32) {
        match self.keys {
            KeySpec::None | KeySpec::NumKeys { .. } => (0, 0, 0),
            KeySpec::Range { first, last, step } => (first, last, step),
            KeySpec::Custom { legacy, .. } => legacy,
        }
    }

    /// Sharded pub/sub: its channels are routed like keys but are no keys.
    pub fn keys_are_channels(&self) -> bool {
        !self.key_docs.is_empty() && self.key_docs.iter().all(|d| d.flags.contains(&"not_key"))
    }

    pub fn movable_keys(&self) -> bool {
        matches!(self.keys, KeySpec::NumKeys { .. } | KeySpec::Custom { .. })
    }
}

/// A command; chain `.doc(...)` and the other builders below.
pub const fn cmd(name: &'static str, arity: i32, flags: u32, keys: KeySpec, group: Group, exec: Exec) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        keys,
        group,
        exec,
        subcommands: &[],
        summary: "",
        since: "",
        syntax: "",
        tips: &[],
        key_docs: &[],
        acl_extra: &[],
    }
}

/// A container (CONFIG, CLIENT, ...) whose subcommands are declared in `subs`.
pub const fn container(
    name: &'static str,
    arity: i32,
    flags: u32,
    group: Group,
    subs: &'static [CommandSpec],
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        keys: KeySpec::None,
        group,
        exec: Exec::Container,
        subcommands: subs,
        summary: "",
        since: "",
        syntax: "",
        tips: &[],
        key_docs: &[],
        acl_extra: &[],
    }
}

impl CommandSpec {
    /// `COMMAND DOCS`: the Redis version that introduced the command and a
    /// one-line summary in our own words.
    pub const fn doc(self, since: &'static str, summary: &'static str) -> CommandSpec {
        CommandSpec { since, summary, ..self }
    }

    /// The arguments for `COMMAND DOCS`, in the notation of `commands::syntax`.
    pub const fn syntax(self, syntax: &'static str) -> CommandSpec {
        CommandSpec { syntax, ..self }
    }

    pub const fn tips(self, tips: &'static [&'static str]) -> CommandSpec {
        CommandSpec { tips, ..self }
    }

    pub const fn key_specs(self, key_docs: &'static [KeySpecDoc]) -> CommandSpec {
        CommandSpec { key_docs, ..self }
    }

    pub const fn acl(self, acl_extra: &'static [&'static str]) -> CommandSpec {
        CommandSpec { acl_extra, ..self }
    }
}

pub const NOKEYS: KeySpec = KeySpec::None;
pub const fn k(first: i32, last: i32, step: i32) -> KeySpec {
    KeySpec::Range { first, last, step }
}
pub const K1: KeySpec = k(1, 1, 1);
pub const K12: KeySpec = k(1, 2, 1);
pub const KALL: KeySpec = k(1, -1, 1);
pub const fn nk(numkeys: usize) -> KeySpec {
    KeySpec::NumKeys { numkeys }
}
pub const K2: KeySpec = k(2, 2, 1);

// ------------------------------------------------------------- key spec docs

/// One key spec as COMMAND INFO reports it.
pub struct KeySpecDoc {
    /// Redis's note on the spec; empty when it has none.
    pub notes: &'static str,
    pub flags: &'static [&'static str],
    pub begin: Begin,
    pub find: Find,
}

/// Where the search for keys starts.
pub enum Begin {
    /// At a fixed argument index.
    Index(i64),
    /// After the first match of a keyword, searched from `startfrom`.
    Keyword(&'static str, i64),
    /// Nowhere fixed (SORT's STORE may come anywhere).
    Unknown,
}

/// How keys are found from the start.
pub enum Find {
    /// `lastkey` (relative; negative counts from the end), `keystep`, `limit`.
    Range(i64, i64, i64),
    /// `keynumidx`, `firstkey`, `keystep`: a count argument then the keys.
    Keynum(i64, i64, i64),
    /// Only the command's own parser knows.
    Unknown,
}

pub const fn ks(flags: &'static [&'static str], begin: Begin, find: Find) -> KeySpecDoc {
    KeySpecDoc { notes: "", flags, begin, find }
}

pub const fn ks_noted(notes: &'static str, flags: &'static [&'static str], begin: Begin, find: Find) -> KeySpecDoc {
    KeySpecDoc { notes, flags, begin, find }
}

pub const fn idx(i: i64) -> Begin {
    Begin::Index(i)
}

pub const fn kw(keyword: &'static str, startfrom: i64) -> Begin {
    Begin::Keyword(keyword, startfrom)
}

pub const fn range(lastkey: i64, keystep: i64, limit: i64) -> Find {
    Find::Range(lastkey, keystep, limit)
}

pub const fn keynum(keynumidx: i64, firstkey: i64, keystep: i64) -> Find {
    Find::Keynum(keynumidx, firstkey, keystep)
}

/// Everything a family file needs to declare its commands.
pub mod prelude {
    pub use super::flags::*;
    pub use super::Exec::{AllShards as All, Blocking as B, Conn as C, Keyed as K, Routed, Session};
    pub use super::Group as G;
    pub use super::SessionOp as Op;
    pub use super::{cmd, container, idx, k, keynum, ks, ks_noted, kw, nk, range, CommandSpec, KeySpec};
    pub use super::{K1, K12, K2, KALL, NOKEYS};
}

/// Key positions of a request (`CommandSpec::key_positions_iter`).
pub enum KeyPositions {
    Range { next: i32, last: i32, step: i32 },
    List(std::vec::IntoIter<usize>),
}

impl Iterator for KeyPositions {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            KeyPositions::Range { next, last, step } => {
                if *next > *last {
                    return None;
                }
                let i = *next;
                *next += *step;
                Some(i as usize)
            }
            KeyPositions::List(it) => it.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    /// The iterator gives exactly `key_positions`, for every command and
    /// argument counts from none to many.
    #[test]
    fn key_positions_iter_matches() {
        for spec in super::super::registry::all() {
            for argc in 0..12 {
                let args: Vec<Bytes> =
                    (0..argc).map(|i| Bytes::from(if i == 2 { "2".to_string() } else { format!("a{i}") })).collect();
                let iter: Vec<usize> = spec.key_positions_iter(&args).collect();
                assert_eq!(iter, spec.key_positions(&args), "{} with {argc} arguments", spec.name);
            }
        }
    }
}
