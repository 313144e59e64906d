//! The command table: the one list of every command moonshard knows.
//!
//! Each entry is declarative (name, arity, flags, key positions, group) plus
//! the handler. Routing, arity checks, slot checks, `COMMAND` replies and the
//! scripting rules all read this table; nothing else lists commands.

use super::{
    connection as conn, geo, hashes, keys, lists, pubsub as ps, server as srv, sets, streams as xs, strings as str_,
    zsets,
};
use super::{ConnCtx, Ctx};
use crate::protocol::Reply;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::OnceLock;

pub type KeyedFn = fn(&mut Ctx, &[Bytes]) -> Reply;
pub type ConnFn = fn(&mut ConnCtx, &[Bytes]) -> Reply;
pub type MergeFn = fn(&mut ConnCtx, &[Bytes], Vec<Reply>) -> Reply;
pub type RouteFn = fn(&ConnCtx, &[Bytes]) -> Result<usize, Reply>;
pub type FinishFn = fn(&ConnCtx, &[Bytes], usize, Reply) -> Reply;
pub type KeysFn = fn(&[Bytes]) -> Vec<usize>;

/// How a command executes.
#[derive(Clone, Copy)]
pub enum Exec {
    /// Runs with the shard(s) owning its keys entered. A command with no
    /// keys runs on the client's home shard.
    Keyed(KeyedFn),
    /// Runs on every shard in turn; the replies are combined by the merge fn
    /// (DBSIZE, KEYS, FLUSHALL, ...).
    AllShards(KeyedFn, MergeFn),
    /// Runs on the one shard the route fn picks (SCAN: the shard its cursor
    /// names); the finish fn shapes the reply.
    OneShard(RouteFn, KeyedFn, FinishFn),
    /// Runs on the connection with no shard entered.
    Conn(ConnFn),
    /// Handled by the connection loop itself (transactions, blocking, pub/sub,
    /// scripts' routing).
    Special,
    /// A container such as CONFIG or CLIENT: dispatch on the subcommand.
    Container,
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
    /// moonshard: keys may live in different slots (and shards); the command
    /// is split per shard or runs with all owning shards entered.
    pub const MULTI_SHARD: u32 = 1 << 24;

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
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (SENTINEL, "sentinel"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
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

    /// The (first, last, step) triple of `COMMAND INFO`.
    pub fn legacy_keys(&self) -> (i32, i32, i32) {
        match self.keys {
            KeySpec::None | KeySpec::NumKeys { .. } => (0, 0, 0),
            KeySpec::Range { first, last, step } => (first, last, step),
            KeySpec::Custom { legacy, .. } => legacy,
        }
    }

    pub fn movable_keys(&self) -> bool {
        matches!(self.keys, KeySpec::NumKeys { .. } | KeySpec::Custom { .. })
    }
}

pub const fn cmd(name: &'static str, arity: i32, flags: u32, keys: KeySpec, group: Group, exec: Exec) -> CommandSpec {
    CommandSpec { name, arity, flags, keys, group, exec, subcommands: &[], summary: "", since: "1.0.0" }
}

const fn container(
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
        since: "1.0.0",
    }
}

const NOKEYS: KeySpec = KeySpec::None;
pub const fn k(first: i32, last: i32, step: i32) -> KeySpec {
    KeySpec::Range { first, last, step }
}
const K1: KeySpec = k(1, 1, 1);
const K12: KeySpec = k(1, 2, 1);
const KALL: KeySpec = k(1, -1, 1);
const fn nk(numkeys: usize) -> KeySpec {
    KeySpec::NumKeys { numkeys }
}

use Exec::{AllShards as All, Conn as C, Keyed as K, OneShard, Special as S};
use Group as G;

// ---------------------------------------------------------------- connection
static CLIENT_SUBS: &[CommandSpec] = &[
    cmd("client|id", 2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(conn::client_id)),
    cmd("client|setname", 3, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(conn::client_setname)),
    cmd("client|getname", 2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(conn::client_getname)),
    cmd("client|setinfo", 4, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(conn::client_setinfo)),
    cmd("client|list", -2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(conn::client_list)),
    cmd("client|info", 2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(conn::client_info)),
    cmd("client|kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(conn::client_kill)),
    cmd("client|no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(conn::client_no_evict)),
    cmd("client|reply", 3, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, S),
    cmd("client|help", 2, LOADING | STALE, NOKEYS, G::Connection, C(conn::client_help)),
];

static CONNECTION: &[CommandSpec] = &[
    cmd("ping", -1, FAST | SENTINEL, NOKEYS, G::Connection, C(conn::ping)),
    cmd("echo", 2, LOADING | STALE | FAST, NOKEYS, G::Connection, C(conn::echo)),
    cmd("quit", -1, ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH, NOKEYS, G::Connection, S),
    cmd(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY,
        NOKEYS,
        G::Connection,
        C(conn::hello),
    ),
    cmd(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY,
        NOKEYS,
        G::Connection,
        C(conn::auth),
    ),
    cmd("select", 2, LOADING | STALE | FAST, NOKEYS, G::Connection, C(conn::select)),
    cmd("reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, NOKEYS, G::Connection, S),
    container("client", -2, SENTINEL, G::Connection, CLIENT_SUBS),
];

// -------------------------------------------------------------------- server
static CONFIG_SUBS: &[CommandSpec] = &[
    cmd("config|get", -3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(srv::config_get)),
    cmd("config|set", -4, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(srv::config_set)),
    cmd("config|resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(srv::config_resetstat)),
    cmd("config|rewrite", 2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(srv::config_rewrite)),
    cmd("config|help", 2, LOADING | STALE, NOKEYS, G::Server, C(srv::config_help)),
];

static COMMAND_SUBS: &[CommandSpec] = &[
    cmd("command|count", 2, LOADING | STALE, NOKEYS, G::Server, C(srv::command_count)),
    cmd("command|info", -2, LOADING | STALE, NOKEYS, G::Server, C(srv::command_info)),
    cmd("command|docs", -2, LOADING | STALE, NOKEYS, G::Server, C(srv::command_docs)),
    cmd("command|list", -2, LOADING | STALE, NOKEYS, G::Server, C(srv::command_list)),
    cmd("command|getkeys", -4, LOADING | STALE, NOKEYS, G::Server, C(srv::command_getkeys)),
    cmd("command|help", 2, LOADING | STALE, NOKEYS, G::Server, C(srv::command_help)),
];

static CLUSTER_SUBS: &[CommandSpec] = &[
    cmd("cluster|keyslot", 3, STALE, NOKEYS, G::Cluster, C(srv::cluster_keyslot)),
    cmd("cluster|info", 2, STALE, NOKEYS, G::Cluster, C(srv::cluster_info)),
    cmd("cluster|help", 2, LOADING | STALE, NOKEYS, G::Cluster, C(srv::cluster_help)),
    cmd("cluster|slots", 2, LOADING | STALE, NOKEYS, G::Cluster, C(srv::cluster_disabled)),
    cmd("cluster|shards", 2, LOADING | STALE, NOKEYS, G::Cluster, C(srv::cluster_disabled)),
    cmd("cluster|nodes", 2, LOADING | STALE, NOKEYS, G::Cluster, C(srv::cluster_disabled)),
    cmd("cluster|myid", 2, LOADING | STALE, NOKEYS, G::Cluster, C(srv::cluster_disabled)),
];

static SERVER: &[CommandSpec] = &[
    cmd("info", -1, LOADING | STALE | SENTINEL, NOKEYS, G::Server, All(srv::info_shard, srv::info_merge)),
    container("command", -1, LOADING | STALE, G::Server, COMMAND_SUBS),
    container("config", -2, 0, G::Server, CONFIG_SUBS),
    container("cluster", -2, 0, G::Cluster, CLUSTER_SUBS),
    cmd("dbsize", 1, READONLY | FAST, NOKEYS, G::Server, All(srv::dbsize_shard, srv::merge_sum)),
    cmd("flushdb", -1, WRITE, NOKEYS, G::Server, All(srv::flushdb_shard, srv::merge_flush)),
    cmd("flushall", -1, WRITE, NOKEYS, G::Server, All(srv::flushall_shard, srv::merge_flush)),
    cmd("time", 1, LOADING | STALE | FAST, NOKEYS, G::Server, C(srv::time)),
    cmd(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | SENTINEL | ALLOW_BUSY,
        NOKEYS,
        G::Server,
        C(srv::shutdown),
    ),
    cmd("lastsave", 1, LOADING | STALE | FAST, NOKEYS, G::Server, C(srv::lastsave)),
    cmd("save", 1, ADMIN | NOSCRIPT | NO_MULTI, NOKEYS, G::Server, C(srv::save)),
    cmd("bgsave", -1, ADMIN | NOSCRIPT, NOKEYS, G::Server, C(srv::bgsave)),
];

// ---------------------------------------------------------------------- keys
static KEYS: &[CommandSpec] = &[
    cmd("del", -2, WRITE | MULTI_SHARD, KALL, G::Generic, K(keys::del)),
    cmd("unlink", -2, WRITE | FAST | MULTI_SHARD, KALL, G::Generic, K(keys::del)),
    cmd("exists", -2, READONLY | FAST | MULTI_SHARD, KALL, G::Generic, K(keys::exists)),
    cmd("touch", -2, READONLY | FAST | MULTI_SHARD, KALL, G::Generic, K(keys::touch)),
    cmd("type", 2, READONLY | FAST, K1, G::Generic, K(keys::type_)),
    cmd("expire", -3, WRITE | FAST, K1, G::Generic, K(keys::expire)),
    cmd("pexpire", -3, WRITE | FAST, K1, G::Generic, K(keys::pexpire)),
    cmd("expireat", -3, WRITE | FAST, K1, G::Generic, K(keys::expireat)),
    cmd("pexpireat", -3, WRITE | FAST, K1, G::Generic, K(keys::pexpireat)),
    cmd("ttl", 2, READONLY | FAST, K1, G::Generic, K(keys::ttl)),
    cmd("pttl", 2, READONLY | FAST, K1, G::Generic, K(keys::pttl)),
    cmd("expiretime", 2, READONLY | FAST, K1, G::Generic, K(keys::expiretime)),
    cmd("pexpiretime", 2, READONLY | FAST, K1, G::Generic, K(keys::pexpiretime)),
    cmd("persist", 2, WRITE | FAST, K1, G::Generic, K(keys::persist)),
    cmd("keys", 2, READONLY, NOKEYS, G::Generic, All(keys::keys_shard, keys::keys_merge)),
    cmd("scan", -2, READONLY, NOKEYS, G::Generic, OneShard(keys::scan_route, keys::scan_shard, keys::scan_finish)),
    cmd("randomkey", 1, READONLY, NOKEYS, G::Generic, All(keys::randomkey_shard, keys::randomkey_merge)),
    cmd("rename", 3, WRITE, K12, G::Generic, K(keys::rename)),
    cmd("renamenx", 3, WRITE | FAST, K12, G::Generic, K(keys::renamenx)),
    cmd("copy", -3, WRITE | DENYOOM, K12, G::Generic, K(keys::copy)),
    cmd("move", 3, WRITE | FAST, K1, G::Generic, K(keys::move_)),
    cmd("swapdb", 3, WRITE | FAST, NOKEYS, G::Server, All(keys::swapdb_shard, keys::swapdb_merge)),
    container("object", -2, 0, G::Generic, OBJECT_SUBS),
];

const K2: KeySpec = k(2, 2, 1);
static OBJECT_SUBS: &[CommandSpec] = &[
    cmd("object|encoding", 3, READONLY, K2, G::Generic, K(keys::object_encoding)),
    cmd("object|refcount", 3, READONLY, K2, G::Generic, K(keys::object_refcount)),
    cmd("object|idletime", 3, READONLY, K2, G::Generic, K(keys::object_idletime)),
    cmd("object|freq", 3, READONLY, K2, G::Generic, K(keys::object_freq)),
    cmd("object|help", 2, LOADING | STALE, NOKEYS, G::Generic, K(keys::object_help)),
];

// ------------------------------------------------------------------- strings
static STRINGS: &[CommandSpec] = &[
    cmd("get", 2, READONLY | FAST, K1, G::String, K(str_::get)),
    cmd("set", -3, WRITE | DENYOOM, K1, G::String, K(str_::set)),
    cmd("setnx", 3, WRITE | DENYOOM | FAST, K1, G::String, K(str_::setnx)),
    cmd("setex", 4, WRITE | DENYOOM, K1, G::String, K(str_::setex)),
    cmd("psetex", 4, WRITE | DENYOOM, K1, G::String, K(str_::psetex)),
    cmd("getset", 3, WRITE | DENYOOM | FAST, K1, G::String, K(str_::getset)),
    cmd("getdel", 2, WRITE | FAST, K1, G::String, K(str_::getdel)),
    cmd("getex", -2, WRITE | FAST, K1, G::String, K(str_::getex)),
    cmd("mget", -2, READONLY | FAST | MULTI_SHARD, KALL, G::String, K(str_::mget)),
    cmd("mset", -3, WRITE | DENYOOM | MULTI_SHARD, k(1, -1, 2), G::String, K(str_::mset)),
    cmd("msetnx", -3, WRITE | DENYOOM, k(1, -1, 2), G::String, K(str_::msetnx)),
    cmd("incr", 2, WRITE | DENYOOM | FAST, K1, G::String, K(str_::incr)),
    cmd("decr", 2, WRITE | DENYOOM | FAST, K1, G::String, K(str_::decr)),
    cmd("incrby", 3, WRITE | DENYOOM | FAST, K1, G::String, K(str_::incrby)),
    cmd("decrby", 3, WRITE | DENYOOM | FAST, K1, G::String, K(str_::decrby)),
    cmd("incrbyfloat", 3, WRITE | DENYOOM | FAST, K1, G::String, K(str_::incrbyfloat)),
    cmd("append", 3, WRITE | DENYOOM | FAST, K1, G::String, K(str_::append)),
    cmd("strlen", 2, READONLY | FAST, K1, G::String, K(str_::strlen)),
    cmd("getrange", 4, READONLY, K1, G::String, K(str_::getrange)),
    cmd("substr", 4, READONLY, K1, G::String, K(str_::getrange)),
    cmd("setrange", 4, WRITE | DENYOOM, K1, G::String, K(str_::setrange)),
    cmd("lcs", -3, READONLY, K12, G::String, K(str_::lcs)),
];

// ----------------------------------------------------------------- scripting
static SCRIPT_SUBS: &[CommandSpec] = &[
    cmd("script|load", 3, NOSCRIPT | STALE, NOKEYS, G::Scripting, S),
    cmd("script|exists", -3, NOSCRIPT | STALE, NOKEYS, G::Scripting, S),
    cmd("script|flush", -2, NOSCRIPT | STALE, NOKEYS, G::Scripting, S),
    cmd("script|kill", 2, NOSCRIPT | ALLOW_BUSY, NOKEYS, G::Scripting, S),
    cmd("script|help", 2, LOADING | STALE, NOKEYS, G::Scripting, S),
];

static FUNCTION_SUBS: &[CommandSpec] = &[
    cmd("function|load", -3, WRITE | DENYOOM | NOSCRIPT, NOKEYS, G::Scripting, S),
    cmd("function|delete", 3, WRITE | NOSCRIPT, NOKEYS, G::Scripting, S),
    cmd("function|flush", -2, WRITE | NOSCRIPT, NOKEYS, G::Scripting, S),
    cmd("function|list", -2, NOSCRIPT, NOKEYS, G::Scripting, S),
    cmd("function|dump", 2, NOSCRIPT, NOKEYS, G::Scripting, S),
    cmd("function|restore", -3, WRITE | DENYOOM | NOSCRIPT, NOKEYS, G::Scripting, S),
    cmd("function|stats", 2, NOSCRIPT | ALLOW_BUSY, NOKEYS, G::Scripting, S),
    cmd("function|kill", 2, NOSCRIPT | ALLOW_BUSY, NOKEYS, G::Scripting, S),
    cmd("function|help", 2, LOADING | STALE, NOKEYS, G::Scripting, S),
];

static SCRIPTING: &[CommandSpec] = &[
    cmd("eval", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE, nk(2), G::Scripting, S),
    cmd("evalsha", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE, nk(2), G::Scripting, S),
    cmd("eval_ro", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY, nk(2), G::Scripting, S),
    cmd("evalsha_ro", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY, nk(2), G::Scripting, S),
    cmd("fcall", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE, nk(2), G::Scripting, S),
    cmd("fcall_ro", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY, nk(2), G::Scripting, S),
    container("script", -2, 0, G::Scripting, SCRIPT_SUBS),
    container("function", -2, 0, G::Scripting, FUNCTION_SUBS),
];

// --------------------------------------------------------------------- lists
static LISTS: &[CommandSpec] = &[
    cmd("lpush", -3, WRITE | DENYOOM | FAST, K1, G::List, K(lists::lpush)),
    cmd("rpush", -3, WRITE | DENYOOM | FAST, K1, G::List, K(lists::rpush)),
    cmd("lpushx", -3, WRITE | DENYOOM | FAST, K1, G::List, K(lists::lpushx)),
    cmd("rpushx", -3, WRITE | DENYOOM | FAST, K1, G::List, K(lists::rpushx)),
    cmd("lpop", -2, WRITE | FAST, K1, G::List, K(lists::lpop)),
    cmd("rpop", -2, WRITE | FAST, K1, G::List, K(lists::rpop)),
    cmd("llen", 2, READONLY | FAST, K1, G::List, K(lists::llen)),
    cmd("lrange", 4, READONLY, K1, G::List, K(lists::lrange)),
    cmd("lindex", 3, READONLY, K1, G::List, K(lists::lindex)),
    cmd("lset", 4, WRITE | DENYOOM, K1, G::List, K(lists::lset)),
    cmd("lrem", 4, WRITE, K1, G::List, K(lists::lrem)),
    cmd("ltrim", 4, WRITE, K1, G::List, K(lists::ltrim)),
    cmd("linsert", 5, WRITE | DENYOOM, K1, G::List, K(lists::linsert)),
    cmd("lpos", -3, READONLY, K1, G::List, K(lists::lpos)),
    cmd("lmove", 5, WRITE | DENYOOM, K12, G::List, K(lists::lmove)),
    cmd("rpoplpush", 3, WRITE | DENYOOM, K12, G::List, K(lists::rpoplpush)),
    cmd("lmpop", -4, WRITE, nk(1), G::List, K(lists::lmpop)),
    cmd("blpop", -3, WRITE | NOSCRIPT | BLOCKING | MULTI_SHARD, k(1, -2, 1), G::List, S),
    cmd("brpop", -3, WRITE | NOSCRIPT | BLOCKING | MULTI_SHARD, k(1, -2, 1), G::List, S),
    cmd("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, K12, G::List, S),
    cmd("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, K12, G::List, S),
    cmd("blmpop", -5, WRITE | BLOCKING | MULTI_SHARD, nk(2), G::List, S),
];

// -------------------------------------------------------------------- hashes
static HASHES: &[CommandSpec] = &[
    cmd("hset", -4, WRITE | DENYOOM | FAST, K1, G::Hash, K(hashes::hset)),
    cmd("hsetnx", 4, WRITE | DENYOOM | FAST, K1, G::Hash, K(hashes::hsetnx)),
    cmd("hget", 3, READONLY | FAST, K1, G::Hash, K(hashes::hget)),
    cmd("hmset", -4, WRITE | DENYOOM | FAST, K1, G::Hash, K(hashes::hmset)),
    cmd("hmget", -3, READONLY | FAST, K1, G::Hash, K(hashes::hmget)),
    cmd("hgetall", 2, READONLY, K1, G::Hash, K(hashes::hgetall)),
    cmd("hdel", -3, WRITE | FAST, K1, G::Hash, K(hashes::hdel)),
    cmd("hexists", 3, READONLY | FAST, K1, G::Hash, K(hashes::hexists)),
    cmd("hlen", 2, READONLY | FAST, K1, G::Hash, K(hashes::hlen)),
    cmd("hkeys", 2, READONLY, K1, G::Hash, K(hashes::hkeys)),
    cmd("hvals", 2, READONLY, K1, G::Hash, K(hashes::hvals)),
    cmd("hincrby", 4, WRITE | DENYOOM | FAST, K1, G::Hash, K(hashes::hincrby)),
    cmd("hincrbyfloat", 4, WRITE | DENYOOM | FAST, K1, G::Hash, K(hashes::hincrbyfloat)),
    cmd("hstrlen", 3, READONLY | FAST, K1, G::Hash, K(hashes::hstrlen)),
    cmd("hrandfield", -2, READONLY, K1, G::Hash, K(hashes::hrandfield)),
    cmd("hscan", -3, READONLY, K1, G::Hash, K(hashes::hscan)),
];

// ---------------------------------------------------------------------- sets
static SETS: &[CommandSpec] = &[
    cmd("sadd", -3, WRITE | DENYOOM | FAST, K1, G::Set, K(sets::sadd)),
    cmd("srem", -3, WRITE | FAST, K1, G::Set, K(sets::srem)),
    cmd("smembers", 2, READONLY, K1, G::Set, K(sets::smembers)),
    cmd("sismember", 3, READONLY | FAST, K1, G::Set, K(sets::sismember)),
    cmd("smismember", -3, READONLY | FAST, K1, G::Set, K(sets::smismember)),
    cmd("scard", 2, READONLY | FAST, K1, G::Set, K(sets::scard)),
    cmd("spop", -2, WRITE | FAST, K1, G::Set, K(sets::spop)),
    cmd("srandmember", -2, READONLY, K1, G::Set, K(sets::srandmember)),
    cmd("smove", 4, WRITE | FAST, K12, G::Set, K(sets::smove)),
    cmd("sinter", -2, READONLY | MULTI_SHARD, KALL, G::Set, K(sets::sinter)),
    cmd("sintercard", -3, READONLY | MULTI_SHARD, nk(1), G::Set, K(sets::sintercard)),
    cmd("sunion", -2, READONLY | MULTI_SHARD, KALL, G::Set, K(sets::sunion)),
    cmd("sdiff", -2, READONLY | MULTI_SHARD, KALL, G::Set, K(sets::sdiff)),
    cmd("sinterstore", -3, WRITE | DENYOOM, KALL, G::Set, K(sets::sinterstore)),
    cmd("sunionstore", -3, WRITE | DENYOOM, KALL, G::Set, K(sets::sunionstore)),
    cmd("sdiffstore", -3, WRITE | DENYOOM, KALL, G::Set, K(sets::sdiffstore)),
    cmd("sscan", -3, READONLY, K1, G::Set, K(sets::sscan)),
];

// --------------------------------------------------------------- sorted sets
/// ZUNIONSTORE-style: destination at 1, numkeys at 2, then the sources.
fn store_numkeys_keys(args: &[Bytes]) -> Vec<usize> {
    let mut out = vec![1];
    if let Some(n) = args.get(2).and_then(|a| crate::util::parse_i64(a)) {
        if n > 0 && 3 + n as usize <= args.len() {
            out.extend(3..3 + n as usize);
        }
    }
    out
}
const STORE_NK: KeySpec = KeySpec::Custom { find: store_numkeys_keys, legacy: (1, 1, 1) };

static ZSETS: &[CommandSpec] = &[
    cmd("zadd", -4, WRITE | DENYOOM | FAST, K1, G::SortedSet, K(zsets::zadd)),
    cmd("zrem", -3, WRITE | FAST, K1, G::SortedSet, K(zsets::zrem)),
    cmd("zscore", 3, READONLY | FAST, K1, G::SortedSet, K(zsets::zscore)),
    cmd("zmscore", -3, READONLY | FAST, K1, G::SortedSet, K(zsets::zmscore)),
    cmd("zincrby", 4, WRITE | DENYOOM | FAST, K1, G::SortedSet, K(zsets::zincrby)),
    cmd("zcard", 2, READONLY | FAST, K1, G::SortedSet, K(zsets::zcard)),
    cmd("zcount", 4, READONLY | FAST, K1, G::SortedSet, K(zsets::zcount)),
    cmd("zlexcount", 4, READONLY | FAST, K1, G::SortedSet, K(zsets::zlexcount)),
    cmd("zrank", 3, READONLY | FAST, K1, G::SortedSet, K(zsets::zrank)),
    cmd("zrevrank", 3, READONLY | FAST, K1, G::SortedSet, K(zsets::zrevrank)),
    cmd("zrange", -4, READONLY, K1, G::SortedSet, K(zsets::zrange)),
    cmd("zrangestore", -5, WRITE | DENYOOM, K12, G::SortedSet, K(zsets::zrangestore)),
    cmd("zrangebyscore", -4, READONLY, K1, G::SortedSet, K(zsets::zrangebyscore)),
    cmd("zrevrangebyscore", -4, READONLY, K1, G::SortedSet, K(zsets::zrevrangebyscore)),
    cmd("zrangebylex", -4, READONLY, K1, G::SortedSet, K(zsets::zrangebylex)),
    cmd("zrevrangebylex", -4, READONLY, K1, G::SortedSet, K(zsets::zrevrangebylex)),
    cmd("zrevrange", -4, READONLY, K1, G::SortedSet, K(zsets::zrevrange)),
    cmd("zremrangebyscore", 4, WRITE, K1, G::SortedSet, K(zsets::zremrangebyscore)),
    cmd("zremrangebyrank", 4, WRITE, K1, G::SortedSet, K(zsets::zremrangebyrank)),
    cmd("zremrangebylex", 4, WRITE, K1, G::SortedSet, K(zsets::zremrangebylex)),
    cmd("zpopmin", -2, WRITE | FAST, K1, G::SortedSet, K(zsets::zpopmin)),
    cmd("zpopmax", -2, WRITE | FAST, K1, G::SortedSet, K(zsets::zpopmax)),
    cmd("zmpop", -4, WRITE, nk(1), G::SortedSet, K(zsets::zmpop)),
    cmd("zrandmember", -2, READONLY, K1, G::SortedSet, K(zsets::zrandmember)),
    cmd("zunionstore", -4, WRITE | DENYOOM, STORE_NK, G::SortedSet, K(zsets::zunionstore)),
    cmd("zinterstore", -4, WRITE | DENYOOM, STORE_NK, G::SortedSet, K(zsets::zinterstore)),
    cmd("zdiffstore", -4, WRITE | DENYOOM, STORE_NK, G::SortedSet, K(zsets::zdiffstore)),
    cmd("zunion", -3, READONLY | MULTI_SHARD, nk(1), G::SortedSet, K(zsets::zunion)),
    cmd("zinter", -3, READONLY | MULTI_SHARD, nk(1), G::SortedSet, K(zsets::zinter)),
    cmd("zdiff", -3, READONLY | MULTI_SHARD, nk(1), G::SortedSet, K(zsets::zdiff)),
    cmd("zintercard", -3, READONLY | MULTI_SHARD, nk(1), G::SortedSet, K(zsets::zintercard)),
    cmd("zscan", -3, READONLY, K1, G::SortedSet, K(zsets::zscan)),
    cmd("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST | MULTI_SHARD, k(1, -2, 1), G::SortedSet, S),
    cmd("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST | MULTI_SHARD, k(1, -2, 1), G::SortedSet, S),
    cmd("bzmpop", -5, WRITE | BLOCKING | MULTI_SHARD, nk(2), G::SortedSet, S),
];

// ------------------------------------------------------------------- streams
const XREAD_KEYS: KeySpec = KeySpec::Custom { find: xs::read::xread_keys, legacy: (0, 0, 0) };
const XREADGROUP_KEYS: KeySpec = KeySpec::Custom { find: xs::read::xreadgroup_keys, legacy: (0, 0, 0) };

static XGROUP_SUBS: &[CommandSpec] = &[
    cmd("xgroup|create", -5, WRITE | DENYOOM, K2, G::Stream, K(xs::xgroup)),
    cmd("xgroup|setid", -5, WRITE, K2, G::Stream, K(xs::xgroup)),
    cmd("xgroup|destroy", 4, WRITE, K2, G::Stream, K(xs::xgroup)),
    cmd("xgroup|createconsumer", 5, WRITE | DENYOOM, K2, G::Stream, K(xs::xgroup)),
    cmd("xgroup|delconsumer", 5, WRITE, K2, G::Stream, K(xs::xgroup)),
    cmd("xgroup|help", 2, LOADING | STALE, NOKEYS, G::Stream, C(xs::xgroup_help)),
];

static XINFO_SUBS: &[CommandSpec] = &[
    cmd("xinfo|stream", -3, READONLY, K2, G::Stream, K(xs::xinfo)),
    cmd("xinfo|groups", 3, READONLY, K2, G::Stream, K(xs::xinfo)),
    cmd("xinfo|consumers", 4, READONLY, K2, G::Stream, K(xs::xinfo)),
    cmd("xinfo|help", 2, LOADING | STALE, NOKEYS, G::Stream, C(xs::xinfo_help)),
];

static STREAMS: &[CommandSpec] = &[
    cmd("xadd", -5, WRITE | DENYOOM | FAST, K1, G::Stream, K(xs::xadd)),
    cmd("xlen", 2, READONLY | FAST, K1, G::Stream, K(xs::xlen)),
    cmd("xrange", -4, READONLY, K1, G::Stream, K(xs::xrange)),
    cmd("xrevrange", -4, READONLY, K1, G::Stream, K(xs::xrevrange)),
    cmd("xdel", -3, WRITE | FAST, K1, G::Stream, K(xs::xdel)),
    cmd("xtrim", -4, WRITE, K1, G::Stream, K(xs::xtrim)),
    cmd("xsetid", -3, WRITE | DENYOOM | FAST, K1, G::Stream, K(xs::xsetid)),
    cmd("xack", -4, WRITE | FAST, K1, G::Stream, K(xs::xack)),
    cmd("xpending", -3, READONLY, K1, G::Stream, K(xs::xpending)),
    cmd("xclaim", -6, WRITE | FAST, K1, G::Stream, K(xs::xclaim)),
    cmd("xautoclaim", -6, WRITE | FAST, K1, G::Stream, K(xs::xautoclaim)),
    // Both may block, so the connection loop runs them (commands::blocking);
    // their streams may live on several shards.
    cmd("xread", -4, READONLY | BLOCKING | MULTI_SHARD, XREAD_KEYS, G::Stream, S),
    cmd("xreadgroup", -7, WRITE | BLOCKING | MULTI_SHARD, XREADGROUP_KEYS, G::Stream, S),
    container("xgroup", -2, 0, G::Stream, XGROUP_SUBS),
    container("xinfo", -2, 0, G::Stream, XINFO_SUBS),
];

// -------------------------------------------------------------- transactions
static TRANSACTIONS: &[CommandSpec] = &[
    cmd("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G::Transactions, S),
    cmd("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, NOKEYS, G::Transactions, S),
    cmd("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G::Transactions, S),
    cmd("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | MULTI_SHARD, KALL, G::Transactions, S),
    cmd("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G::Transactions, S),
];

// -------------------------------------------------------------------- pubsub
static PUBSUB_SUBS: &[CommandSpec] = &[
    cmd("pubsub|channels", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(ps::pubsub_channels)),
    cmd("pubsub|numsub", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(ps::pubsub_numsub)),
    cmd("pubsub|numpat", 2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(ps::pubsub_numpat)),
    cmd("pubsub|shardchannels", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(ps::pubsub_shardchannels)),
    cmd("pubsub|shardnumsub", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(ps::pubsub_shardnumsub)),
    cmd("pubsub|help", 2, LOADING | STALE, NOKEYS, G::Pubsub, C(ps::pubsub_help)),
];

static PUBSUB_CMDS: &[CommandSpec] = &[
    cmd("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, S),
    cmd("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, S),
    cmd("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, KALL, G::Pubsub, S),
    cmd("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, S),
    cmd("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, S),
    cmd("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, KALL, G::Pubsub, S),
    cmd("publish", 3, PUBSUB | LOADING | STALE | FAST, NOKEYS, G::Pubsub, K(ps::publish)),
    cmd("spublish", 3, PUBSUB | LOADING | STALE | FAST, K1, G::Pubsub, K(ps::spublish)),
    container("pubsub", -2, 0, G::Pubsub, PUBSUB_SUBS),
];

/// Every family's entries. Adding a command means adding one line above.
static FAMILIES: &[&[CommandSpec]] = &[
    CONNECTION,
    SERVER,
    KEYS,
    STRINGS,
    SCRIPTING,
    LISTS,
    HASHES,
    SETS,
    ZSETS,
    STREAMS,
    TRANSACTIONS,
    PUBSUB_CMDS,
    geo::COMMANDS,
];

/// A resolved command: its table entry and its index in `all()` (for stats).
#[derive(Clone, Copy)]
pub struct Command {
    pub id: usize,
    pub spec: &'static CommandSpec,
}

struct Index {
    all: Vec<&'static CommandSpec>,
    by_name: HashMap<&'static str, Command, ahash::RandomState>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut all = Vec::new();
        let mut by_name = HashMap::default();
        for family in FAMILIES {
            for spec in family.iter() {
                by_name.insert(spec.name, Command { id: all.len(), spec });
                all.push(spec);
                for sub in spec.subcommands {
                    by_name.insert(sub.name, Command { id: all.len(), spec: sub });
                    all.push(sub);
                }
            }
        }
        Index { all, by_name }
    })
}

/// Every command and subcommand, in table order.
pub fn all() -> &'static [&'static CommandSpec] {
    &index().all
}

/// Top-level commands only.
pub fn top_level() -> impl Iterator<Item = &'static CommandSpec> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<Command> {
    let mut buf = [0u8; 48];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    index().by_name.get(lower).copied()
}

/// Resolves a container's subcommand (`CONFIG GET` → `config|get`).
pub fn lookup_sub(parent: &CommandSpec, sub: &[u8]) -> Option<Command> {
    if sub.len() > 40 {
        return None;
    }
    let mut name = String::with_capacity(parent.name.len() + 1 + sub.len());
    name.push_str(parent.name);
    name.push('|');
    name.push_str(&String::from_utf8_lossy(sub).to_ascii_lowercase());
    let cmd = index().by_name.get(name.as_str()).copied()?;
    parent.subcommands.iter().any(|s| std::ptr::eq(s, cmd.spec)).then_some(cmd)
}

/// Resolves `args` to the command that runs: the subcommand for containers.
/// Errors are Redis's texts for unknown commands, subcommands and arity.
pub fn resolve(args: &[Bytes]) -> Result<Command, Reply> {
    let Some(cmd) = lookup(&args[0]) else {
        return Err(unknown_command(args));
    };
    if !matches!(cmd.spec.exec, Exec::Container) {
        if !cmd.spec.arity_ok(args.len()) {
            return Err(Reply::wrong_arity(cmd.spec.name));
        }
        return Ok(cmd);
    }
    if args.len() < 2 {
        // A container may have a meaning of its own when called bare (COMMAND).
        if cmd.spec.arity_ok(args.len()) {
            return Ok(cmd);
        }
        return Err(Reply::wrong_arity(cmd.spec.name));
    }
    let Some(sub) = lookup_sub(cmd.spec, &args[1]) else {
        return Err(Reply::err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            truncate_for_error(&args[1]),
            cmd.spec.name.to_uppercase()
        )));
    };
    if !sub.spec.arity_ok(args.len()) {
        return Err(Reply::wrong_arity(sub.spec.name));
    }
    Ok(sub)
}

fn truncate_for_error(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.chars().take(128).collect()
}

/// Redis's reply to an unknown command, with the beginning of its arguments.
pub fn unknown_command(args: &[Bytes]) -> Reply {
    let mut shown = String::new();
    for a in &args[1..] {
        if shown.len() >= 128 {
            break;
        }
        shown.push('\'');
        shown.push_str(&truncate_for_error(a));
        shown.push_str("' ");
    }
    Reply::err(format!("unknown command '{}', with args beginning with: {}", truncate_for_error(&args[0]), shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for spec in all() {
            assert!(seen.insert(spec.name), "duplicate {}", spec.name);
            assert_eq!(spec.name, spec.name.to_lowercase());
        }
    }

    #[test]
    fn key_positions() {
        let args: Vec<Bytes> = ["mset", "a", "1", "b", "2"].iter().map(|s| Bytes::from(*s)).collect();
        assert_eq!(lookup(b"MSET").unwrap().spec.key_positions(&args), vec![1, 3]);
        let args: Vec<Bytes> = ["eval", "s", "2", "a", "b", "x"].iter().map(|s| Bytes::from(*s)).collect();
        assert_eq!(lookup(b"eval").unwrap().spec.key_positions(&args), vec![3, 4]);
    }
}
