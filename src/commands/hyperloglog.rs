//! HyperLogLog commands (Redis's hyperloglog.c): PFADD, PFCOUNT, PFMERGE,
//! PFDEBUG, PFSELFTEST. The value is a plain string in Redis's layout
//! (`storage::hll`), so it moves between redis-server and moonshard as is.

use super::keys::{lookup_read, lookup_write};
use super::{ConnCtx, Ctx};
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::shard::ShardData;
use crate::storage::hll::{self, Set};
use crate::storage::{Entry, SmallBytes, StrHint, Value};
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

// ------------------------------------------------------------ declarations

/// Keys of PFCOUNT and PFMERGE must share a slot (CROSSSLOT otherwise), as
/// on Redis Cluster.
pub static COMMANDS: &[CommandSpec] = &[
    cmd("pfadd", -2, WRITE | DENYOOM | FAST, K1, G::Hyperloglog, K(pfadd))
        .syntax("key%k [element [element ...]]")
        .doc("2.8.9", "Adds elements to a HyperLogLog, creating it if needed.")
        .key_specs(&[ks(&["RW", "insert"], idx(1), range(0, 1, 0))]),
    cmd("pfcount", -2, READONLY | MAY_REPLICATE, KALL, G::Hyperloglog, K(pfcount))
        .syntax("key%k [key ...]")
        .doc("2.8.9", "Estimates the number of distinct elements seen by one HyperLogLog, or by the union of several.")
        .key_specs(&[ks_noted(
            "RW because it may change the internal representation of the key, and propagate to replicas",
            &["RW", "access"],
            idx(1),
            range(-1, 1, 0),
        )]),
    cmd("pfmerge", -2, WRITE | DENYOOM, KALL, G::Hyperloglog, K(pfmerge))
        .syntax("destkey%k sourcekey%k [sourcekey ...]")
        .doc("2.8.9", "Stores the union of HyperLogLogs in the destination key.")
        .key_specs(&[
            ks(&["RW", "access", "insert"], idx(1), range(0, 1, 0)),
            ks(&["RO", "access"], idx(2), range(-1, 1, 0)),
        ]),
    cmd("pfdebug", 3, WRITE | DENYOOM | ADMIN, K2, G::Hyperloglog, K(pfdebug))
        .syntax("subcommand key%k")
        .doc("2.8.9", "Internal debugging of a HyperLogLog's representation.")
        .key_specs(&[ks(&["RW", "access"], idx(2), range(0, 1, 0))]),
    cmd("pfselftest", 1, ADMIN, NOKEYS, G::Hyperloglog, C(pfselftest))
        .doc("2.8.9", "Internal self-test of the HyperLogLog implementation."),
];

fn not_hll() -> Reply {
    Reply::error(hll::NOT_HLL)
}

fn corrupted() -> Reply {
    Reply::error(hll::CORRUPTED)
}

/// The HLL bytes of an entry, or Redis's error for a value that is not one.
fn hll_of(e: &Entry) -> Result<&[u8], Reply> {
    match &e.value {
        Value::Str(s) if hll::is_hll(s) => Ok(s),
        Value::Str(_) => Err(not_hll()),
        _ => Err(Reply::wrong_type()),
    }
}

/// Runs `f` on the entry's HLL bytes as a vector (moved out and back, no
/// copy for values on the heap); returns its result and the new length.
/// The caller checked `hll_of`.
fn edit<R>(e: &mut Entry, f: impl FnOnce(&mut Vec<u8>) -> R) -> (R, usize) {
    let Value::Str(s) = &mut e.value else {
        // Unreachable after `hll_of`; an empty edit keeps it harmless.
        return (f(&mut Vec::new()), 0);
    };
    let mut v = std::mem::take(s).into_vec();
    let r = f(&mut v);
    let len = v.len();
    *s = SmallBytes::from_vec(v);
    (r, len)
}

fn max_bytes(ctx: &Ctx) -> u64 {
    ctx.server.config.hll_sparse_max_bytes.load(Relaxed)
}

/// Redis's `dbUnshareStringValue`: a value an HLL command goes on with is
/// raw-encoded from then on. Strings longer than 44 bytes are reported raw
/// whatever their hint, so only short ones (new, small sparse values) need
/// the hint, and the others skip its lookup.
fn unshare(ctx: &mut Ctx, key: &[u8], len: usize) {
    if len <= 44 {
        ctx.db(key).set_str_hint(key, StrHint::Raw);
    }
}

/// Redis's `signalModifiedKey` without a keyspace notification: what PFCOUNT
/// does when it stores a freshly computed cardinality (WATCH sees a change).
fn signal_modified(ctx: &mut Ctx, key: &[u8]) {
    let (db, now) = (ctx.db, ctx.now);
    let ShardData { watches, dbs, .. } = ctx.shard_for(key);
    if !watches.is_empty() {
        if let Some(d) = dbs.get_mut(db) {
            watches.touch(db, key, d, now);
        }
    }
}

// -------------------------------------------------------------------- PFADD

pub fn pfadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let max = max_bytes(ctx);
    let mut updated = 0;
    let (result, len) = match lookup_write(ctx, key) {
        None => {
            let mut v = hll::new_sparse();
            for ele in &args[2..] {
                // A fresh value is valid: every add succeeds.
                if let Set::Updated = hll::add(&mut v, ele, max) {
                    updated += 1;
                }
            }
            // Creating the key counts as an update, which invalidates the cache.
            hll::invalidate(&mut v);
            let len = v.len();
            ctx.db(key).set(key, Value::Str(SmallBytes::from_vec(v)));
            updated += 1;
            (Ok(()), len)
        }
        Some(e) => match hll_of(e) {
            Err(r) => return r,
            Ok(_) => edit(e, |v| {
                for ele in &args[2..] {
                    match hll::add(v, ele, max) {
                        Set::Updated => updated += 1,
                        Set::Unchanged => {}
                        Set::Invalid => return Err(corrupted()),
                    }
                }
                if updated > 0 {
                    hll::invalidate(v);
                }
                Ok(())
            }),
        },
    };
    unshare(ctx, key, len);
    if let Err(e) = result {
        return e;
    }
    if updated > 0 {
        ctx.written(key, "pfadd");
        // Redis counts a change per register raised (and one for creating the key).
        ctx.set_dirty(updated);
    }
    Reply::Int(i64::from(updated > 0))
}

// ------------------------------------------------------------------ PFCOUNT

pub fn pfcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() > 2 {
        return pfcount_union(ctx, &args[1..]);
    }
    let key = &args[1];
    let (card, computed) = match lookup_read(ctx, key) {
        None => return Reply::Int(0),
        Some(e) => {
            let (cached, len) = match hll_of(e) {
                Ok(v) => (hll::cached(v), v.len()),
                Err(r) => return r,
            };
            let r = match cached {
                Some(card) => Ok((card, false)),
                None => {
                    edit(e, |v| {
                        let card = hll::count(v).ok_or_else(corrupted)?;
                        hll::set_cached(v, card);
                        Ok((card, true))
                    })
                    .0
                }
            };
            unshare(ctx, key, len);
            match r {
                Ok(x) => x,
                Err(e) => return e,
            }
        }
    };
    if computed {
        signal_modified(ctx, key);
        // Storing the cached cardinality is a change to the string (propagated, as in Redis).
        ctx.dirty(1);
    }
    // Redis replies with the unsigned value read as a signed one.
    Reply::Int(card as i64)
}

/// The cardinality of the union of several keys, computed over a temporary
/// one-byte-per-register array as Redis does; the keys are left untouched.
fn pfcount_union(ctx: &mut Ctx, keys: &[Bytes]) -> Reply {
    let mut max = Box::new([0u8; hll::REGISTERS]);
    for key in keys {
        let Some(e) = lookup_read(ctx, key) else {
            continue;
        };
        let v = match hll_of(e) {
            Ok(v) => v,
            Err(r) => return r,
        };
        if !hll::merge_into(&mut max, v) {
            return corrupted();
        }
    }
    Reply::Int(hll::estimate(&hll::raw_histogram(&max)) as i64)
}

// ------------------------------------------------------------------ PFMERGE

pub fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let dest = &args[1];
    let max_b = max_bytes(ctx);
    let mut max = Box::new([0u8; hll::REGISTERS]);
    let mut use_dense = false;
    // The destination is one of the sources (Redis starts at argument 1).
    for key in &args[1..] {
        let Some(e) = lookup_read(ctx, key) else {
            continue;
        };
        let v = match hll_of(e) {
            Ok(v) => v,
            Err(r) => return r,
        };
        use_dense |= hll::is_dense(v);
        if !hll::merge_into(&mut max, v) {
            return corrupted();
        }
    }
    let (result, len) = match lookup_write(ctx, dest) {
        Some(e) => edit(e, |v| store(v, &max, use_dense, max_b)),
        None => {
            let mut v = hll::new_sparse();
            let r = store(&mut v, &max, use_dense, max_b);
            let len = v.len();
            ctx.db(dest).set(dest, Value::Str(SmallBytes::from_vec(v)));
            (r, len)
        }
    };
    unshare(ctx, dest, len);
    if let Err(e) = result {
        return e;
    }
    // Redis signals PFMERGE as a mass PFADD.
    ctx.written(dest, "pfadd");
    Reply::ok()
}

fn store(v: &mut Vec<u8>, max: &[u8; hll::REGISTERS], use_dense: bool, max_bytes: u64) -> Result<(), Reply> {
    if use_dense && !hll::make_dense(v) {
        return Err(corrupted());
    }
    hll::store_merged(v, max, max_bytes);
    Ok(())
}

// ------------------------------------------------------------------ PFDEBUG

use crate::protocol::c_str;

pub fn pfdebug(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[2];
    let sub = c_str(&args[1]);
    let Some(e) = lookup_write(ctx, key) else {
        return Reply::err("The specified key does not exist");
    };
    if let Err(r) = hll_of(e) {
        return r;
    }
    let (reply, len) = edit(e, |v| {
        if sub.eq_ignore_ascii_case(b"getreg") {
            if !hll::make_dense(v) {
                return corrupted();
            }
            Reply::Array(hll::registers(v).into_iter().map(|r| Reply::Int(r as i64)).collect())
        } else if sub.eq_ignore_ascii_case(b"decode") {
            if hll::is_dense(v) {
                return Reply::err("HLL encoding is not sparse");
            }
            Reply::bulk(hll::decode(v))
        } else if sub.eq_ignore_ascii_case(b"encoding") {
            Reply::status(if hll::is_dense(v) { "dense" } else { "sparse" })
        } else if sub.eq_ignore_ascii_case(b"todense") {
            let was_sparse = !hll::is_dense(v);
            if !hll::make_dense(v) {
                return corrupted();
            }
            Reply::Int(i64::from(was_sparse))
        } else {
            Reply::error_concat(&[b"ERR Unknown PFDEBUG subcommand '", crate::protocol::c_str(sub), b"'"])
        }
    });
    unshare(ctx, key, len);
    reply
}

// --------------------------------------------------------------- PFSELFTEST

pub fn pfselftest(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    match hll::selftest(ctx.server.config.hll_sparse_max_bytes.load(Relaxed)) {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::error(e),
    }
}
