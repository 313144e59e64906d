//! The declared rules: every way the fuzzer deviates from "same bytes in,
//! same bytes out" is listed here with its reason, and the final statistics
//! count how often each rule applied. Nothing is filtered silently.
//!
//! Four tables:
//! - `SKIP`: commands never generated (they would break the harness itself);
//! - `COMPARE`: commands whose replies are compared by something weaker than
//!   bytes, because Redis itself leaves part of the reply unspecified
//!   (order, timing, randomness); the first matching entry wins;
//! - `ACCEPT`: documented moonshard differences (README), filtered only when
//!   the replies actually have that form;
//! - `DOMAINS`: argument values the generator keeps away from, because they
//!   would make the two runs diverge for reasons outside the servers
//!   (clock, unbounded waits, gigabyte allocations).

use crate::docs::Cmd;
use crate::resp::{to_bytes, Value};

pub struct SkipRule {
    pub id: &'static str,
    pub commands: &'static [&'static str],
    pub reason: &'static str,
}

pub static SKIP: &[SkipRule] = &[
    SkipRule {
        id: "push-mode",
        commands: &["subscribe", "psubscribe", "ssubscribe", "monitor"],
        reason: "puts the connection into push mode: replies stop pairing with requests \
                 (pub/sub has its own tests in tests/pubsub.rs)",
    },
    SkipRule {
        id: "reply-mode",
        commands: &["client|reply", "client|tracking"],
        reason: "CLIENT REPLY OFF|SKIP suppresses replies and CLIENT TRACKING adds invalidation pushes: \
                 the stream could no longer be paired request by request",
    },
    SkipRule {
        id: "debug-session",
        commands: &["script|debug"],
        reason: "SCRIPT DEBUG YES|SYNC turns the connection's next EVAL into a Lua debugging session: the \
                 commands that follow are read as debugger commands (or dropped), replies pipelined before the \
                 EVAL follow the session's last lines, and the session closes the connection (fuzzer run 7: \
                 19 hangs); the debugger is compared in tests/diff_ldb.rs",
    },
    SkipRule {
        id: "own-connection",
        commands: &["quit", "client|kill", "client|pause"],
        reason: "ends the fuzzer's own connection or stalls every client of the server",
    },
    SkipRule {
        id: "process-level",
        commands: &["shutdown", "debug", "module|load", "module|loadex", "module|unload"],
        reason: "stops the server, loads code from disk, or (DEBUG) sleeps/crashes/reloads on purpose; \
                 Redis also refuses DEBUG by default (enable-debug-command no)",
    },
    SkipRule {
        id: "network",
        commands: &["replicaof", "slaveof", "sync", "psync", "replconf", "failover", "migrate"],
        reason: "connects to other hosts or turns the connection into a replication stream; \
                 the fuzzer never leaves loopback",
    },
    SkipRule {
        id: "server-config",
        commands: &["config|set", "config|rewrite"],
        reason: "changes server-wide behaviour (ports, memory limits, file paths) for the rest of the run",
    },
    SkipRule {
        id: "fork-timing",
        commands: &["bgsave", "bgrewriteaof"],
        reason: "runs in a forked child; the next call's reply depends on whether that child finished",
    },
    SkipRule {
        id: "acl-users",
        commands: &["acl|setuser", "acl|deluser", "acl|load", "acl|save"],
        reason: "changes the users for the rest of the run: a rule on the default user (off, a password, \
                 -@all) locks the fuzzer out; ACL is compared in tests/diff_acl.rs",
    },
];

/// How the replies of one command are compared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Compare {
    Exact,
    /// The top-level aggregate as a multiset.
    Unordered,
    /// Every aggregate, at every depth, as a multiset.
    UnorderedDeep,
    /// A flat `[k, v, k, v]` array (or a map) as a multiset of pairs.
    UnorderedPairs,
    /// Like `UnorderedPairs`, leaving out pairs whose key is listed
    /// (instance-specific configuration values).
    PairsExcept(&'static [&'static str]),
    /// The reply's type only; error texts still compared exactly.
    Shape,
    /// Integers within ±n (values that depend on the moment a command ran).
    Tolerance(i64),
    /// `[cursor, items]`: items as a multiset (pairs when `true`) when both
    /// cursors are 0, else the shape only.
    Scan(bool),
    /// Values that follow these names in flat pair lists or maps are masked,
    /// as is the time column of pending-entry rows (`[id, consumer, ms, n]`).
    Mask(&'static [&'static str]),
    /// A `DUMP` payload: exact, except that a hash-table set or hash (RDB
    /// types 2 and 4) may list its elements in another order: then the
    /// type byte, the length, the RDB version and the body's bytes as a
    /// multiset must agree (the checksum is left out); and a stream's
    /// (types 15, 19, 21) delivery and seen times (8-byte millisecond
    /// stamps) may differ by up to 10 s, every other byte equal.
    DumpPayload,
    /// COMMAND, COMMAND INFO and COMMAND LIST: compared at every depth as
    /// multisets, leaving out CLIENT SETINFO (declared by moonshard beyond
    /// Redis 7.0, README).
    CommandTable,
    /// The same type and, for aggregates, the same number of elements
    /// (which elements: unspecified); errors exactly.
    Count,
    /// Exact, or both errors of the form `<prefix>...<suffix>` (the part in
    /// between names one of several candidates Redis picks in hash order).
    ErrorForm(&'static [u8], &'static [u8]),
    /// Exact, or one reply `+OK` and the other an error that starts with
    /// this text (an outcome a random seed decides on either server).
    OkOrError(&'static [u8]),
}

pub enum Matcher {
    Commands(&'static [&'static str]),
    /// A command tip from Redis's `COMMAND INFO`.
    Tip(&'static str),
    /// SORT/SORT_RO with `BY` a pattern without `*` (no sorting: set order).
    SortNosort,
    /// Like `SortNosort`, with `LIMIT` (a window of the set's order).
    SortNosortLimit,
    /// SORT/SORT_RO `BY` a pattern with `*`, and `ALPHA`.
    SortAlphaBy,
    /// Like `SortAlphaBy`, with `LIMIT` (a window of that order).
    SortAlphaByLimit,
}

pub struct CompareRule {
    pub id: &'static str,
    pub matcher: Matcher,
    pub compare: Compare,
    pub reason: &'static str,
}

/// Instance-specific configuration parameters (ports, paths, moonshard's own).
const CONFIG_INSTANCE: &[&str] = &[
    "port",
    "bind",
    "dir",
    "pidfile",
    "logfile",
    "save",
    "appendonly",
    "daemonize",
    "shards",
    "io-threads",
    "lua-memory-limit",
    "keyspace-mode",
    "tls-auth-clients-user",
    "enable-debug-command",
    "unixsocket",
    "tls-port",
];

pub static COMPARE: &[CompareRule] = &[
    CompareRule {
        id: "exact-despite-tip",
        matcher: Matcher::Commands(&["object|encoding", "xadd", "xtrim", "xclaim", "xautoclaim"]),
        compare: Compare::Exact,
        reason: "Redis tags these nondeterministic_output, but the generator removes the cause \
                 (explicit stream IDs, idle times 0 or far away; same encodings) and README promises \
                 Redis's encoding names",
    },
    CompareRule {
        id: "dump-hash-order",
        matcher: Matcher::Commands(&["dump"]),
        compare: Compare::DumpPayload,
        reason: "README: a DUMP payload equals Redis's byte for byte except for hash-table sets and hashes, \
                 whose element order is Redis's hash order: those are compared as the same elements in any order; \
                 a stream's pending-entry delivery and consumer seen times are each server's clock (±10 s)",
    },
    CompareRule {
        id: "time-tolerance-s",
        matcher: Matcher::Commands(&["ttl", "expiretime"]),
        compare: Compare::Tolerance(1),
        reason: "the expiry was set a few milliseconds apart on the two servers",
    },
    CompareRule {
        id: "time-tolerance-ms",
        matcher: Matcher::Commands(&["pttl", "pexpiretime"]),
        compare: Compare::Tolerance(1000),
        reason: "the expiry was set a few milliseconds apart on the two servers",
    },
    CompareRule {
        id: "pairs-unordered",
        matcher: Matcher::Commands(&["hgetall"]),
        compare: Compare::UnorderedPairs,
        reason: "Redis documents the field order of a hash as unspecified (tip nondeterministic_output_order)",
    },
    CompareRule {
        id: "config-get",
        matcher: Matcher::Commands(&["config|get"]),
        compare: Compare::PairsExcept(CONFIG_INSTANCE),
        reason: "parameter order is unspecified; ports, paths, persistence flags given at start-up and \
                 moonshard's own parameters (README: shards, io-threads, lua-memory-limit, keyspace-mode, tls-auth-clients-user) differ per instance",
    },
    CompareRule {
        id: "scan-cursor",
        matcher: Matcher::Commands(&["scan", "sscan"]),
        compare: Compare::Scan(false),
        reason: "cursor values and the split of elements over calls are implementation-specific; \
                 a scan from cursor 0 that completes in one call must return the same elements \
                 (any other call: shape only)",
    },
    CompareRule {
        id: "scan-cursor",
        matcher: Matcher::Commands(&["hscan", "zscan"]),
        compare: Compare::Scan(true),
        reason: "cursor values and the split of elements over calls are implementation-specific; \
                 a scan from cursor 0 that completes in one call must return the same elements \
                 (any other call: shape only)",
    },
    CompareRule {
        id: "command-table-order",
        matcher: Matcher::Commands(&["command", "command|info", "command|list"]),
        compare: Compare::CommandTable,
        reason: "Redis lists its command table in its hash tables' order, which changes per process; \
                 CLIENT SETINFO is declared by moonshard beyond Redis 7.0 (README)",
    },
    CompareRule {
        id: "acl-cat-order",
        matcher: Matcher::Commands(&["acl|cat"]),
        compare: Compare::Unordered,
        reason: "README: Redis 7.0 lists a category's commands in its hash table's order, which changes per process",
    },
    CompareRule {
        id: "acl-log-client",
        matcher: Matcher::Commands(&["acl|log"]),
        compare: Compare::Mask(&["age-seconds", "client-info"]),
        reason: "an entry's age and its client's id, address and buffer sizes are each server's own",
    },
    CompareRule {
        id: "mask-idle",
        matcher: Matcher::Commands(&["xpending", "xinfo|consumers", "xinfo|stream"]),
        compare: Compare::Mask(&["idle", "seen-time", "active-time", "inactive"]),
        reason: "idle and delivery times are measured from the moment each server saw a command",
    },
    CompareRule {
        id: "hello-id",
        matcher: Matcher::Commands(&["hello"]),
        compare: Compare::Mask(&["id"]),
        reason: "client ids count every connection the server ever accepted",
    },
    CompareRule {
        id: "instance-specific",
        matcher: Matcher::Commands(&[
            "client|id",
            "client|info",
            "client|list",
            "lolwut",
            "acl|genpass",
            "memory|usage",
            "latency|reset",
            "command|docs",
            "function|dump",
            "object|refcount",
        ]),
        compare: Compare::Shape,
        reason: "connection ids/addresses, random output, allocator sizes, latency samples, and \
                 (README) moonshard's own COMMAND DOCS summaries and FUNCTION DUMP payload format",
    },
    CompareRule {
        id: "function-order",
        matcher: Matcher::Commands(&["function|list"]),
        compare: Compare::UnorderedDeep,
        reason: "libraries and the functions of a library live in dictionaries: order unspecified at every level",
    },
    CompareRule {
        id: "set-order",
        matcher: Matcher::Commands(&["pubsub|channels", "pubsub|shardchannels"]),
        compare: Compare::Unordered,
        reason: "Redis iterates a dictionary: order unspecified",
    },
    CompareRule {
        id: "sort-nosort-limit",
        matcher: Matcher::SortNosortLimit,
        compare: Compare::Count,
        reason: "SORT ... BY <pattern without *> LIMIT skips sorting and returns a window of the set's own \
                 (unspecified) order: which elements it picks is unspecified, their number is not \
                 (fuzzer run 7)",
    },
    CompareRule {
        id: "function-exists-order",
        matcher: Matcher::Commands(&["function|load", "function|restore"]),
        compare: Compare::ErrorForm(b"ERR Function ", b" already exists"),
        reason: "a library clashing with existing functions under several names: Redis names the first clash \
                 in its dictionary's order, whose hash seed is random per process (fuzzer run 7)",
    },
    CompareRule {
        id: "pfselftest-seed",
        matcher: Matcher::Commands(&["pfselftest"]),
        compare: Compare::OkOrError(b"TESTFAILED Too big error. card:10 abserr:"),
        reason: "PFSELFTEST adds elements derived from a random seed (Redis: rand(), moonshard: its own) and at \
                 cardinality 10 allows an error of 1, which two register collisions among the 10 elements exceed \
                 (about 4 calls in a million; Redis's source calls it statistically likely from time to time): \
                 either server may fail that check on any call (fuzzer run 9: moonshard once in about 1,000 calls, \
                 not reproducible)",
    },
    CompareRule {
        id: "sort-alpha-ties-limit",
        matcher: Matcher::SortAlphaByLimit,
        compare: Compare::Count,
        reason: "SORT ... BY <pattern> ALPHA LIMIT: a window of the order `sort-alpha-ties` describes, so \
                 which of the tied elements it holds is unspecified (a sorted set is read in its dictionary's \
                 order too; fuzzer run with --mutate, standalone keyspace)",
    },
    CompareRule {
        id: "sort-alpha-ties",
        matcher: Matcher::SortAlphaBy,
        compare: Compare::Unordered,
        reason: "SORT ... BY <pattern> ALPHA: Redis compares the weights alone, with no tie-break, so elements \
                 whose weights are equal or missing keep the order they were read in, for a set its unspecified \
                 iteration order (numeric sorts break ties by the elements; fuzzer run 8)",
    },
    CompareRule {
        id: "sort-nosort",
        matcher: Matcher::SortNosort,
        compare: Compare::Unordered,
        reason: "SORT ... BY <pattern without *> skips sorting and returns the set's own order",
    },
    CompareRule {
        id: "tip-order",
        matcher: Matcher::Tip("nondeterministic_output_order"),
        compare: Compare::Unordered,
        reason: "Redis declares the reply order unspecified (tip nondeterministic_output_order)",
    },
    CompareRule {
        id: "tip-nondeterministic",
        matcher: Matcher::Tip("nondeterministic_output"),
        compare: Compare::Shape,
        reason: "Redis declares the reply nondeterministic (random picks, clock, memory stats): \
                 compared by type, errors exactly",
    },
];

pub struct AcceptRule {
    pub id: &'static str,
    /// Commands it applies to (empty: any).
    pub commands: &'static [&'static str],
    pub test: fn(ours: &Value, theirs: &Value) -> bool,
    pub reason: &'static str,
}

fn err_starts(v: &Value, prefix: &[u8]) -> bool {
    v.error().is_some_and(|e| e.starts_with(prefix))
}

fn err_contains(v: &Value, needle: &[u8]) -> bool {
    v.error().is_some_and(|e| e.windows(needle.len()).any(|w| w == needle))
}

pub static ACCEPT: &[AcceptRule] = &[
    AcceptRule {
        id: "crossslot",
        commands: &[],
        test: |ours, theirs| err_starts(ours, b"CROSSSLOT") && !err_starts(theirs, b"CROSSSLOT"),
        reason: "README: commands atomic across keys need their keys in one hash slot, as on Redis Cluster",
    },
    AcceptRule {
        id: "script-cluster-keys",
        commands: &[],
        test: |ours, theirs| {
            (err_contains(ours, b"Script attempted to access a non local key in a cluster node")
                || err_contains(ours, b"Script attempted to access keys that do not hash to the same slot"))
                // A refusal Redis gives whatever the keys is no slot matter.
                && !err_contains(theirs, b"cluster support disabled")
        },
        reason: "README scripting rule 2: keys a script touches must live on its shard / in its declared slot",
    },
    AcceptRule {
        id: "per-shard-busy",
        commands: &[],
        test: |ours, _| err_starts(ours, b"BUSY "),
        reason: "README scripting rule 6: a long script makes only its own shard answer BUSY",
    },
    AcceptRule {
        id: "sort-pattern-slot",
        commands: &["sort", "sort_ro"],
        test: |ours, theirs| {
            let denied = |v: &Value| {
                err_starts(v, b"ERR BY option of SORT denied in Cluster mode")
                    || err_starts(v, b"ERR GET option of SORT denied in Cluster mode")
            };
            denied(ours) && !denied(theirs)
        },
        reason: "README: SORT/SORT_RO BY and GET patterns that form keys must be pinned to the sorted key's slot \
                 by a hash tag, as on Redis Cluster (checked while parsing, before the key's type)",
    },
    AcceptRule {
        id: "cluster-keyslot",
        commands: &["cluster|keyslot"],
        test: |ours, theirs| matches!(ours, Value::Int(_)) && err_contains(theirs, b"cluster support disabled"),
        reason: "README: CLUSTER KEYSLOT answers as a Redis Cluster node (slots are moonshard's routing unit)",
    },
];

/// Value domains the generator stays inside, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// Relative or absolute expiry: never a key that expires during the run.
    Expiry,
    /// Timeout (seconds, double) of a blocking command: short, never 0.
    BlockSeconds,
    /// Milliseconds to block (XREAD BLOCK, WAIT): short, never 0.
    BlockMillis,
    /// Idle-time thresholds and claimed idle times: 0 or hours away.
    Idle,
    /// Count of SRANDMEMBER/HRANDFIELD/ZRANDMEMBER: small, or beyond the limit.
    RandomCount,
    /// Bit offsets: small, or invalid (negative, beyond 2^32).
    BitOffset,
    /// Byte offsets (SETRANGE): small, or invalid.
    ByteOffset,
    /// The key of a lex range.
    LexKey,
    /// A construct the generator leaves out or shapes (no argument values).
    Structural,
    /// XADD's ID: explicit (`<ms>-<seq>` or `<ms>-*`), never the clock.
    StreamIdNoClock,
}

pub struct DomainRule {
    pub id: &'static str,
    pub domain: Domain,
    /// `command:argument` pairs; `*` as command matches any.
    pub args: &'static [&'static str],
    pub reason: &'static str,
}

pub static DOMAINS: &[DomainRule] = &[
    DomainRule {
        id: "expiry-no-race",
        domain: Domain::Expiry,
        args: &[
            "*:seconds",
            "*:milliseconds",
            "*:unix-time-seconds",
            "*:unix-time-milliseconds",
            "restore:ttl",
            "restore-asking:ttl",
        ],
        reason: "a key that expires during the run expires at a slightly different moment on each server; \
                 expiries are 0/negative (immediate), at least a day away, or invalid; the seed's key with a \
                 TTL has one no drawn value equals (a relative EXPIRE ... GT must not tie with it)",
    },
    DomainRule {
        id: "block-short",
        domain: Domain::BlockSeconds,
        args: &[
            "blpop:timeout",
            "brpop:timeout",
            "brpoplpush:timeout",
            "blmove:timeout",
            "blmpop:timeout",
            "bzpopmin:timeout",
            "bzpopmax:timeout",
            "bzmpop:timeout",
        ],
        reason: "timeout 0 on an empty key blocks forever (no other client feeds it); timeouts are a few ms or invalid",
    },
    DomainRule {
        id: "block-short",
        domain: Domain::BlockMillis,
        args: &["xread:milliseconds", "xreadgroup:milliseconds", "wait:timeout"],
        reason: "BLOCK 0 / WAIT n 0 block forever; a few ms or invalid; mutations never swap the arguments of \
                 a blocking command (a swap turned `WAIT 0 5` into `WAIT 5 0`: fuzzer run 9)",
    },
    DomainRule {
        id: "idle-far",
        domain: Domain::Idle,
        args: &["xclaim:min-idle-time", "xautoclaim:min-idle-time", "xpending:min-idle-time", "xclaim:ms"],
        reason: "idle times are measured from the moment each server saw a command; thresholds are 0 or hours away",
    },
    DomainRule {
        id: "random-count-cap",
        domain: Domain::RandomCount,
        args: &["srandmember:count", "hrandfield:count", "zrandmember:count"],
        reason: "a huge negative count makes Redis build a reply of |count| random elements (gigabytes)",
    },
    DomainRule {
        id: "allocation-cap",
        domain: Domain::BitOffset,
        args: &["setbit:offset", "getbit:offset", "bitfield:offset", "bitfield_ro:offset"],
        reason: "a valid offset near the 512 MB limit allocates 512 MB in each server per call",
    },
    DomainRule {
        id: "allocation-cap",
        domain: Domain::ByteOffset,
        args: &["setrange:offset"],
        reason: "a valid offset near the 512 MB limit allocates 512 MB in each server per call",
    },
    DomainRule {
        id: "redis-crasher",
        domain: Domain::Structural,
        args: &["eval:script", "function|load:function-code"],
        reason: "`error(t)` with a table lacking a string `err` field crashes redis-server 7.0.15 \
                 (SIGSEGV; found by this fuzzer): scripts raise errors with strings or `{err=...}` only",
    },
    DomainRule {
        id: "lex-same-score",
        domain: Domain::LexKey,
        args: &["zrangebylex:key", "zrevrangebylex:key", "zlexcount:key", "zremrangebylex:key", "zrange:src"],
        reason: "Redis leaves lex ranges over members with different scores unspecified: \
                 lex ranges (and ZRANGE/ZRANGESTORE BYLEX) only read `{t}lex`, whose scores are all 0",
    },
    DomainRule {
        id: "multi-one-channel",
        domain: Domain::Structural,
        args: &[],
        reason: "inside MULTI, (S|P)UNSUBSCRIBE with several channels writes one message per channel into \
                 its single EXEC slot, so stray replies follow the EXEC array (Redis quirk): \
                 unsubscribes name at most one channel (any command may be queued after a stray MULTI)",
    },
    DomainRule {
        id: "script-one-shard",
        domain: Domain::Structural,
        args: &[],
        reason: "README deliberate difference: in keyspace-mode cluster, FLUSHALL, FLUSHDB, SWAPDB, DBSIZE and \
                 RANDOMKEY called from a script or function act on the script's shard only: scripts do not call them",
    },
    DomainRule {
        id: "lua-random-per-vm",
        domain: Domain::Structural,
        args: &[],
        reason: "math.random continues one sequence per Lua VM; moonshard has a VM per shard (README), \
                 so the n-th call differs from Redis's single VM: scripts do not call math.random",
    },
    DomainRule {
        id: "stream-id-no-clock",
        domain: Domain::StreamIdNoClock,
        args: &["xadd:id", "xadd:auto_id"],
        reason: "`*` takes the ID from each server's clock; the generator uses explicit `<ms>-<seq>` or `<ms>-*`",
    },
];

/// The domain rule (if any) for argument `arg` of command `cmd`.
/// A rule naming the command wins over a `*` rule.
/// Commands whose reply may take longer than the hang limit by design.
pub struct SlowRule {
    pub id: &'static str,
    pub commands: &'static [&'static str],
    /// Seconds to wait for each reply of a step that contains one of them.
    pub secs: u64,
    pub reason: &'static str,
}

pub static SLOW: &[SlowRule] = &[SlowRule {
    id: "pfselftest-slow",
    commands: &["pfselftest"],
    secs: 30,
    reason: "PFSELFTEST adds 10 million elements to two HyperLogLogs by design: 0.9 to 1.5 s per call in redis-server \
             7.0.15 on this shared machine at load 9, more at the fuzzer's nice level (fuzzer run 9: 7 'hangs' of \
             redis-server alone, answered by hand): a step containing it waits up to 30 s per reply",
}];

/// How long to wait for each reply of a step made of these commands.
pub fn reply_deadline(names: &[String], hang: std::time::Duration) -> std::time::Duration {
    SLOW.iter()
        .filter(|r| names.iter().any(|n| r.commands.contains(&n.as_str())))
        .map(|r| std::time::Duration::from_secs(r.secs))
        .fold(hang, |a, b| a.max(b))
}

pub fn domain(cmd: &str, arg: &str) -> Option<&'static DomainRule> {
    let hit = |wild: bool| {
        DOMAINS.iter().find(|d| {
            d.args.iter().any(|p| {
                let (c, a) = p.split_once(':').unwrap_or(("*", p));
                a == arg && if wild { c == "*" } else { c == cmd }
            })
        })
    };
    hit(false).or_else(|| hit(true))
}

pub fn skip_rule(name: &str) -> Option<&'static SkipRule> {
    SKIP.iter().find(|r| r.commands.contains(&name))
}

fn sort_nosort(argv: &[Vec<u8>]) -> bool {
    argv.windows(2).any(|w| w[0].eq_ignore_ascii_case(b"by") && !w[1].contains(&b'*'))
}

/// How to compare replies of `argv` (a command of `cmd`), and the rule that says so.
pub fn compare_for(cmd: Option<&Cmd>, argv: &[Vec<u8>]) -> (Compare, Option<&'static CompareRule>) {
    let Some(cmd) = cmd else { return (Compare::Exact, None) };
    let (c, r) = compare_rule(cmd, argv);
    // A scan that does not start at cursor 0 continues an implementation-specific walk.
    if let Compare::Scan(_) = c {
        let at = if cmd.name == "scan" { 1 } else { 2 };
        if argv.get(at).map(|v| v.as_slice()) != Some(b"0") {
            return (Compare::Shape, r);
        }
    }
    (c, r)
}

fn compare_rule(cmd: &Cmd, argv: &[Vec<u8>]) -> (Compare, Option<&'static CompareRule>) {
    for r in COMPARE {
        let hit = match &r.matcher {
            Matcher::Commands(list) => list.contains(&cmd.name.as_str()),
            Matcher::Tip(t) => cmd.has_tip(t),
            Matcher::SortNosort => (cmd.name == "sort" || cmd.name == "sort_ro") && sort_nosort(argv),
            Matcher::SortAlphaBy => sort_alpha_by(&cmd.name, argv),
            Matcher::SortAlphaByLimit => {
                sort_alpha_by(&cmd.name, argv) && argv.iter().any(|a| a.eq_ignore_ascii_case(b"limit"))
            }
            Matcher::SortNosortLimit => {
                (cmd.name == "sort" || cmd.name == "sort_ro")
                    && sort_nosort(argv)
                    && argv.iter().any(|a| a.eq_ignore_ascii_case(b"limit"))
            }
        };
        if hit {
            return (r.compare, Some(r));
        }
    }
    (Compare::Exact, None)
}

/// SORT/SORT_RO `BY` a pattern with `*`, and `ALPHA`.
fn sort_alpha_by(name: &str, argv: &[Vec<u8>]) -> bool {
    (name == "sort" || name == "sort_ro")
        && argv.windows(2).any(|w| w[0].eq_ignore_ascii_case(b"by") && w[1].contains(&b'*'))
        && argv.iter().any(|a| a.eq_ignore_ascii_case(b"alpha"))
}

/// A documented difference that explains these replies, if any.
pub fn accept(name: &str, ours: &Value, theirs: &Value) -> Option<&'static AcceptRule> {
    ACCEPT.iter().find(|r| (r.commands.is_empty() || r.commands.contains(&name)) && (r.test)(ours, theirs))
}

fn sorted(items: Vec<&Value>) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = items.into_iter().map(to_bytes).collect();
    v.sort();
    v
}

fn pair_list(v: &Value) -> Option<Vec<(&Value, &Value)>> {
    match v {
        Value::Array(items) if items.len() % 2 == 0 => Some(items.chunks(2).map(|c| (&c[0], &c[1])).collect()),
        Value::Map(m) => Some(m.iter().map(|(k, x)| (k, x)).collect()),
        _ => None,
    }
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// `v` without CLIENT SETINFO, as a name or as an entry (an array it
/// heads), at any depth.
fn without_setinfo(v: &Value) -> Value {
    let setinfo = |x: &Value| match x {
        Value::Bulk(b) => b.eq_ignore_ascii_case(b"client|setinfo"),
        Value::Array(items) => {
            matches!(items.first(), Some(Value::Bulk(b)) if b.eq_ignore_ascii_case(b"client|setinfo"))
        }
        _ => false,
    };
    match v {
        Value::Array(items) => Value::Array(items.iter().filter(|x| !setinfo(x)).map(without_setinfo).collect()),
        other => other.clone(),
    }
}

fn multiset_eq(a: &Value, b: &Value) -> bool {
    if !same_kind(a, b) {
        return false;
    }
    match (a.items(), b.items()) {
        (Some(_), Some(_)) if matches!(a, Value::Map(_)) => pairs_eq(a, b, &[]),
        (Some(x), Some(y)) => x.len() == y.len() && sorted(x) == sorted(y),
        _ => a == b,
    }
}

fn pairs_eq(a: &Value, b: &Value, except: &[&str]) -> bool {
    if !same_kind(a, b) {
        return false;
    }
    let canon = |v: &Value| -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = pair_list(v)?
            .into_iter()
            .filter(|(k, _)| !k.bytes().is_some_and(|kb| except.iter().any(|e| e.as_bytes() == kb)))
            .map(|(k, x)| (to_bytes(k), to_bytes(x)))
            .collect();
        out.sort();
        Some(out)
    };
    match (canon(a), canon(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// `v` with every aggregate's elements sorted, recursively.
fn canonical(v: &Value) -> Value {
    let sort = |items: &[Value]| {
        let mut out: Vec<Value> = items.iter().map(canonical).collect();
        out.sort_by_key(to_bytes);
        out
    };
    match v {
        Value::Array(items) => Value::Array(sort(items)),
        Value::Set(items) => Value::Set(sort(items)),
        Value::Push(items) => Value::Push(sort(items)),
        Value::Map(m) => {
            let mut out: Vec<(Value, Value)> = m.iter().map(|(k, x)| (canonical(k), canonical(x))).collect();
            out.sort_by_key(|(k, x)| (to_bytes(k), to_bytes(x)));
            Value::Map(out)
        }
        other => other.clone(),
    }
}

fn shape_eq(a: &Value, b: &Value) -> bool {
    match (a.error(), b.error()) {
        (Some(x), Some(y)) => x == y,
        (None, None) => same_kind(a, b),
        _ => false,
    }
}

fn mask(v: &Value, names: &[&str]) -> Value {
    let is_name = |x: &Value| x.bytes().is_some_and(|b| names.iter().any(|n| n.as_bytes() == b));
    match v {
        Value::Array(items) => {
            // A pending-entry row: [id, consumer, ms, count] or [id, ms, count].
            let id_like = |x: &Value| x.bytes().is_some_and(|b| b.contains(&b'-'));
            if items.len() == 4
                && id_like(&items[0])
                && matches!(items[1], Value::Bulk(_))
                && matches!(items[2], Value::Int(_))
                && matches!(items[3], Value::Int(_))
            {
                let mut out = items.clone();
                out[2] = Value::Null;
                return Value::Array(out);
            }
            if items.len() == 3
                && id_like(&items[0])
                && matches!(items[1], Value::Int(_))
                && matches!(items[2], Value::Int(_))
            {
                let mut out = items.clone();
                out[1] = Value::Null;
                return Value::Array(out);
            }
            let mut out = Vec::with_capacity(items.len());
            let mut prev_name = false;
            for x in items {
                out.push(if prev_name { Value::Null } else { mask(x, names) });
                prev_name = is_name(x);
            }
            Value::Array(out)
        }
        Value::Map(m) => Value::Map(
            m.iter().map(|(k, x)| (k.clone(), if is_name(k) { Value::Null } else { mask(x, names) })).collect(),
        ),
        Value::Set(items) => Value::Set(items.iter().map(|x| mask(x, names)).collect()),
        other => other.clone(),
    }
}

/// Whether `a` and `b` are equal under `cmp`.
pub fn equal(cmp: Compare, a: &Value, b: &Value) -> bool {
    match cmp {
        Compare::Exact => a == b,
        Compare::Unordered => multiset_eq(a, b),
        Compare::CommandTable => canonical(&without_setinfo(a)) == canonical(&without_setinfo(b)),
        Compare::UnorderedDeep => canonical(a) == canonical(b),
        Compare::UnorderedPairs => pairs_eq(a, b, &[]),
        Compare::PairsExcept(except) => pairs_eq(a, b, except),
        Compare::Shape => shape_eq(a, b),
        Compare::Tolerance(n) => match (a, b) {
            (Value::Int(x), Value::Int(y)) => (x - y).abs() <= n,
            _ => a == b,
        },
        Compare::Scan(pairs) => match (a, b) {
            (Value::Array(x), Value::Array(y)) if x.len() == 2 && y.len() == 2 => {
                let done = |c: &Value| c.bytes() == Some(b"0");
                if done(&x[0]) && done(&y[0]) {
                    if pairs {
                        pairs_eq(&x[1], &y[1], &[])
                    } else {
                        multiset_eq(&x[1], &y[1])
                    }
                } else {
                    same_kind(&x[1], &y[1])
                }
            }
            _ => shape_eq(a, b) && (a.error().is_some() || a == b || same_kind(a, b)),
        },
        Compare::Mask(names) => mask(a, names) == mask(b, names),
        Compare::Count => shape_eq(a, b) && a.items().map(|x| x.len()) == b.items().map(|x| x.len()),
        Compare::ErrorForm(prefix, suffix) => {
            let form = |v: &Value| {
                v.error().is_some_and(|e| {
                    e.len() > prefix.len() + suffix.len() && e.starts_with(prefix) && e.ends_with(suffix)
                })
            };
            a == b || (form(a) && form(b))
        }
        Compare::DumpPayload => a == b || dump_reordered(a, b) || dump_stream_times(a, b),
        Compare::OkOrError(prefix) => {
            let ok = |v: &Value| *v == Value::Simple(b"OK".to_vec());
            let failed = |v: &Value| v.error().is_some_and(|e| e.starts_with(prefix));
            a == b || (ok(a) && failed(b)) || (failed(a) && ok(b))
        }
    }
}

/// Two DUMP payloads of one stream (RDB type 15, 19 or 21) that differ only
/// inside 8-byte little-endian millisecond stamps (pending entries' delivery
/// times, consumers' seen times) that lie within 10 s of each other, and in
/// the checksum.
fn dump_stream_times(a: &Value, b: &Value) -> bool {
    const TRAILER: usize = 10;
    let (Value::Bulk(x), Value::Bulk(y)) = (a, b) else { return false };
    if x.len() != y.len() || x.len() <= TRAILER + 1 || !matches!(x[0], 15 | 19 | 21) || x[0] != y[0] {
        return false;
    }
    let n = x.len() - TRAILER;
    if x[n..n + 2] != y[n..n + 2] {
        return false;
    }
    let stamp = |p: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&p[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let clock = |ms: u64| (1_000_000_000_000..100_000_000_000_000).contains(&ms);
    let mut i = 1;
    while i < n {
        if x[i] == y[i] {
            i += 1;
            continue;
        }
        let window = (i.saturating_sub(7).max(1)..=i).filter(|&s| s + 8 <= n).find(|&s| {
            let (p, q) = (stamp(x, s), stamp(y, s));
            clock(p) && clock(q) && p.abs_diff(q) <= 10_000
        });
        match window {
            Some(s) => i = s + 8,
            None => return false,
        }
    }
    true
}

/// Two DUMP payloads of one hash-table set or hash (RDB type 2 or 4) that
/// differ only in the order of their elements: same type byte, length and
/// RDB version, and the same bytes between type and trailer as a multiset.
fn dump_reordered(a: &Value, b: &Value) -> bool {
    const TRAILER: usize = 10; // RDB version (2 bytes) and CRC-64 (8 bytes)
    let (Value::Bulk(x), Value::Bulk(y)) = (a, b) else { return false };
    if x.len() != y.len() || x.len() <= TRAILER + 1 || !matches!(x[0], 2 | 4) || x[0] != y[0] {
        return false;
    }
    let body = |p: &[u8]| {
        let mut v = p[1..p.len() - TRAILER].to_vec();
        v.sort_unstable();
        v
    };
    let version = |p: &[u8]| p[p.len() - TRAILER..p.len() - TRAILER + 2].to_vec();
    version(x) == version(y) && body(x) == body(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn comparisons() {
        let a = Value::Array(vec![bulk("a"), bulk("b")]);
        let b = Value::Array(vec![bulk("b"), bulk("a")]);
        assert!(!equal(Compare::Exact, &a, &b));
        assert!(equal(Compare::Unordered, &a, &b));
        let c = Value::Array(vec![bulk("b"), bulk("b")]);
        assert!(!equal(Compare::Unordered, &a, &c));
        let p1 = Value::Array(vec![bulk("f"), bulk("1"), bulk("g"), bulk("2")]);
        let p2 = Value::Array(vec![bulk("g"), bulk("2"), bulk("f"), bulk("1")]);
        let p3 = Value::Array(vec![bulk("g"), bulk("1"), bulk("f"), bulk("2")]);
        assert!(equal(Compare::UnorderedPairs, &p1, &p2));
        assert!(!equal(Compare::UnorderedPairs, &p1, &p3));
        let c1 = Value::Array(vec![bulk("port"), bulk("1"), bulk("maxmemory"), bulk("0")]);
        let c2 = Value::Array(vec![bulk("maxmemory"), bulk("0"), bulk("port"), bulk("2")]);
        let c3 = Value::Array(vec![bulk("maxmemory"), bulk("1"), bulk("port"), bulk("2")]);
        assert!(equal(Compare::PairsExcept(&["port"]), &c1, &c2));
        assert!(!equal(Compare::PairsExcept(&["port"]), &c1, &c3));
        let d1 = Value::Array(vec![Value::Array(vec![bulk("f1"), bulk("f3")]), bulk("x")]);
        let d2 = Value::Array(vec![bulk("x"), Value::Array(vec![bulk("f3"), bulk("f1")])]);
        assert!(!equal(Compare::Unordered, &d1, &d2));
        assert!(equal(Compare::UnorderedDeep, &d1, &d2));
        assert!(!equal(Compare::UnorderedDeep, &d1, &a));
        assert!(equal(Compare::Tolerance(1), &Value::Int(5), &Value::Int(4)));
        assert!(!equal(Compare::Tolerance(1), &Value::Int(5), &Value::Int(3)));
        assert!(equal(Compare::Shape, &bulk("x"), &bulk("y")));
        assert!(!equal(Compare::Shape, &Value::Error(b"ERR a".to_vec()), &Value::Error(b"ERR b".to_vec())));
        let s1 = Value::Array(vec![bulk("0"), Value::Array(vec![bulk("a"), bulk("b")])]);
        let s2 = Value::Array(vec![bulk("0"), Value::Array(vec![bulk("b"), bulk("a")])]);
        let s3 = Value::Array(vec![bulk("17"), Value::Array(vec![bulk("b")])]);
        assert!(equal(Compare::Scan(false), &s1, &s2));
        assert!(equal(Compare::Scan(false), &s1, &s3));
        let x1 = Value::Array(vec![Value::Array(vec![bulk("1-1"), bulk("c1"), Value::Int(5), Value::Int(1)])]);
        let x2 = Value::Array(vec![Value::Array(vec![bulk("1-1"), bulk("c1"), Value::Int(9), Value::Int(1)])]);
        let x3 = Value::Array(vec![Value::Array(vec![bulk("1-1"), bulk("c1"), Value::Int(9), Value::Int(2)])]);
        assert!(equal(Compare::Mask(&["idle"]), &x1, &x2));
        assert!(!equal(Compare::Mask(&["idle"]), &x1, &x3));
        let h1 = Value::Array(vec![bulk("name"), bulk("c"), bulk("idle"), Value::Int(4)]);
        let h2 = Value::Array(vec![bulk("name"), bulk("c"), bulk("idle"), Value::Int(7)]);
        assert!(equal(Compare::Mask(&["idle"]), &h1, &h2));
        let one_a = Value::Array(vec![bulk("a")]);
        let one_b = Value::Array(vec![bulk("b")]);
        assert!(equal(Compare::Count, &one_a, &one_b));
        assert!(!equal(Compare::Count, &one_a, &a));
        assert!(!equal(Compare::Count, &one_a, &Value::Error(b"ERR x".to_vec())));
        let exists = Compare::ErrorForm(b"ERR Function ", b" already exists");
        let f1 = Value::Error(b"ERR Function f1 already exists".to_vec());
        let f2 = Value::Error(b"ERR Function f2 already exists".to_vec());
        assert!(equal(exists, &f1, &f2));
        assert!(!equal(exists, &f1, &Value::Error(b"ERR Library 'l' already exists".to_vec())));
        assert!(!equal(exists, &f1, &Value::Simple(b"OK".to_vec())));
        let seeded = Compare::OkOrError(b"TESTFAILED Too big error. card:10 abserr:");
        let ok = Value::Simple(b"OK".to_vec());
        let card10 = Value::Error(b"TESTFAILED Too big error. card:10 abserr:2".to_vec());
        let card100 = Value::Error(b"TESTFAILED Too big error. card:100 abserr:90".to_vec());
        assert!(equal(seeded, &ok, &card10) && equal(seeded, &card10, &ok) && equal(seeded, &ok, &ok));
        assert!(!equal(seeded, &ok, &card100));
        assert!(!equal(seeded, &card10, &Value::Error(b"ERR unknown command".to_vec())));
        // DUMP of a two-member hash-table set in both orders, then a changed member, then a list.
        let d_ab = Value::Bulk(b"\x02\x02\x01a\x01b\x0a\x00CRCCRC01".to_vec());
        let d_ba = Value::Bulk(b"\x02\x02\x01b\x01a\x0a\x00CRCCRC02".to_vec());
        let d_ac = Value::Bulk(b"\x02\x02\x01a\x01c\x0a\x00CRCCRC03".to_vec());
        let l_ba = Value::Bulk(b"\x12\x02\x01b\x01a\x0a\x00CRCCRC02".to_vec());
        let l_ab = Value::Bulk(b"\x12\x02\x01a\x01b\x0a\x00CRCCRC01".to_vec());
        assert!(equal(Compare::DumpPayload, &d_ab, &d_ba));
        assert!(!equal(Compare::DumpPayload, &d_ab, &d_ac));
        assert!(!equal(Compare::DumpPayload, &l_ab, &l_ba));
        assert!(!equal(Compare::Exact, &d_ab, &d_ba));
        // A stream payload whose delivery time is 1 ms later, then one whose
        // other bytes differ too, then one whose stamps are a minute apart.
        let stream = |ms: u64, tail: u8| {
            let mut p = vec![19u8, 1, 2, 3];
            p.extend_from_slice(&ms.to_le_bytes());
            p.extend_from_slice(&[2, b'c', b'1', tail, 10, 0]);
            p.extend_from_slice(b"CRC64xyz");
            Value::Bulk(p)
        };
        let now = 1_765_000_000_000u64;
        assert!(equal(Compare::DumpPayload, &stream(now, 0), &stream(now + 1, 0)));
        assert!(equal(Compare::DumpPayload, &stream(now + 255, 0), &stream(now + 256, 0)));
        assert!(!equal(Compare::DumpPayload, &stream(now, 0), &stream(now + 1, 1)));
        assert!(!equal(Compare::DumpPayload, &stream(now, 0), &stream(now + 60_000, 0)));
    }

    #[test]
    fn rules_are_consistent() {
        for r in SKIP {
            assert!(!r.reason.is_empty());
        }
        assert_eq!(domain("set", "seconds").map(|d| d.domain), Some(Domain::Expiry));
        assert_eq!(domain("xread", "milliseconds").map(|d| d.domain), Some(Domain::BlockMillis));
        assert!(domain("xadd", "id").is_some());
        assert!(domain("get", "key").is_none());
        assert_eq!(skip_rule("monitor").map(|r| r.id), Some("push-mode"));
        let hang = std::time::Duration::from_secs(5);
        assert_eq!(reply_deadline(&["get".into(), "set".into()], hang), hang);
        assert_eq!(reply_deadline(&["multi".into(), "pfselftest".into()], hang).as_secs(), 30);
        let crossslot = Value::Error(b"CROSSSLOT Keys in request don't hash to the same slot".to_vec());
        assert_eq!(accept("rename", &crossslot, &Value::Simple(b"OK".to_vec())).map(|r| r.id), Some("crossslot"));
        assert!(accept("rename", &Value::Simple(b"OK".to_vec()), &crossslot).is_none());
        let denied = Value::Error(
            b"ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots."
                .to_vec(),
        );
        let wrongtype = Value::Error(b"WRONGTYPE Operation against a key holding the wrong kind of value".to_vec());
        assert_eq!(accept("sort", &denied, &wrongtype).map(|r| r.id), Some("sort-pattern-slot"));
        assert!(accept("sort", &wrongtype, &denied).is_none());
        assert!(accept("get", &denied, &wrongtype).is_none());
    }
}
