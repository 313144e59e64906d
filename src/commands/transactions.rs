//! MULTI, EXEC, DISCARD, WATCH, UNWATCH: declared here like every family;
//! the session runs them (`session::multi`), and the shards keep the watched
//! keys (`shard::watches`).

use crate::commands::spec::prelude::*;

// ------------------------------------------------------------ declarations

pub static COMMANDS: &[CommandSpec] = &[
    cmd("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G::Transactions, Session(Op::Multi))
        .doc("1.2.0", "Starts a transaction."),
    cmd("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, NOKEYS, G::Transactions, Session(Op::Exec))
        .doc("1.2.0", "Runs the queued commands of a transaction."),
    cmd("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G::Transactions, Session(Op::Discard))
        .doc("2.0.0", "Drops the queued commands of a transaction."),
    cmd(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | MULTI_SHARD,
        KALL,
        G::Transactions,
        Session(Op::Watch),
    )
    .syntax("key%k [key ...]")
    .doc("2.2.0", "Makes the next transaction conditional on keys staying unchanged.")
    .key_specs(&[ks(&["RO"], idx(1), range(-1, 1, 0))]),
    cmd("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G::Transactions, Session(Op::Unwatch))
        .doc("2.2.0", "Forgets every watched key."),
];
