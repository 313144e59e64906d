//! Differential tests: MULTI/EXEC/WATCH sequences and PUBSUB replies, byte
//! for byte against a real redis-server (moonshard runs with 4 shards, so
//! transactions over unrelated keys span shards).

mod common;
mod raw_resp;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use raw_resp::{start_pair, Both};
use std::time::Duration;

#[test]
fn queuing_errors_and_execabort() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.lines(&[
        "FLUSHALL",
        "EXEC",
        "DISCARD",
        "MULTI",
        "MULTI",
        "WATCH x",
        "SET a",
        "NOSUCHCOMMAND 1 2",
        "SET a 1",
        "EXEC",
        "GET a",
        "MULTI",
        "CONFIG GET nosuch",
        "EXEC",
        "MULTI",
        "SET a 1",
        "DISCARD",
        "EXEC",
        "GET a",
    ]);
}

#[test]
fn runtime_errors_are_reported_per_command() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.lines(&[
        "FLUSHALL",
        "MULTI",
        "SET a hello",
        "INCR a",
        "LPUSH a x",
        "APPEND a !",
        "GET a",
        "SET b 5",
        "INCRBY b 10",
        "MGET a b c",
        "DBSIZE",
        "EXISTS a b c",
        "DEL a b",
        "PING",
        "ECHO hi",
        "EXEC",
        "DBSIZE",
        "MULTI",
        "EXEC",
    ]);
}

#[test]
fn watch_aborts_on_changes_by_anyone() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    let mut b = Both::new(&p);
    a.lines(&["FLUSHALL", "SET w 1", "WATCH w", "SET w 2", "MULTI", "INCR w", "EXEC", "GET w"]);
    // Another client's write.
    a.lines(&["WATCH w", "MULTI", "INCR w"]);
    b.line_n("INCR w", 1);
    a.lines(&["EXEC", "GET w"]);
    // A key that did not exist, created by someone else.
    a.lines(&["WATCH fresh", "MULTI", "SET fresh mine"]);
    b.line_n("SET fresh theirs", 1);
    a.lines(&["EXEC", "GET fresh"]);
    // Deleted by someone else; several keys on different shards.
    a.lines(&["SET k1 1", "SET k2 2", "SET k3 3", "WATCH k1 k2 k3", "MULTI", "GET k1"]);
    b.line_n("DEL k3", 1);
    a.lines(&["EXEC"]);
    // Untouched keys: EXEC runs, and the watch is gone afterwards.
    a.lines(&["WATCH k1 k2", "MULTI", "INCR k1", "INCR k2", "EXEC", "SET k1 5", "MULTI", "GET k1", "EXEC"]);
    // UNWATCH and DISCARD forget the watch.
    a.lines(&["WATCH k1", "UNWATCH", "SET k1 9", "MULTI", "GET k1", "EXEC"]);
    a.lines(&["WATCH k1", "MULTI", "DISCARD", "SET k1 10", "MULTI", "GET k1", "EXEC"]);
    // A write that changes nothing still counts (as in Redis).
    a.lines(&["WATCH k1", "SET k1 10", "MULTI", "GET k1", "EXEC"]);
    // Reading does not.
    a.lines(&["WATCH k1", "GET k1", "EXISTS k1", "MULTI", "GET k1", "EXEC"]);
    // Watching in another db.
    a.lines(&["SELECT 3", "WATCH d3", "SELECT 0", "SET d3 x", "MULTI", "PING", "EXEC"]);
    a.lines(&[
        "SELECT 3", "WATCH d3", "SET d3 x", "SELECT 0", "MULTI", "PING", "EXEC", "SELECT 3", "FLUSHDB", "SELECT 0",
    ]);
}

#[test]
fn watch_and_flush_swap_move() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.lines(&["FLUSHALL", "SET w 1", "WATCH nokey", "FLUSHDB", "MULTI", "PING", "EXEC"]);
    a.lines(&["SET w 1", "WATCH w", "FLUSHDB", "MULTI", "PING", "EXEC"]);
    a.lines(&["SET w 1", "WATCH w", "FLUSHALL", "MULTI", "PING", "EXEC"]);
    a.lines(&["SET w 1", "WATCH w", "SELECT 5", "FLUSHDB", "SELECT 0", "MULTI", "PING", "EXEC"]);
    a.lines(&["SET g 1", "WATCH g", "SWAPDB 0 1", "MULTI", "PING", "EXEC", "SWAPDB 0 1"]);
    a.lines(&["WATCH zz", "SELECT 1", "SET zz 1", "SELECT 0", "SWAPDB 0 1", "MULTI", "PING", "EXEC", "SWAPDB 0 1"]);
    a.lines(&["WATCH zz", "SELECT 1", "MOVE zz 0", "SELECT 0", "MULTI", "PING", "EXEC"]);
    a.lines(&[
        "SET {z}z 1",
        "WATCH {z}z",
        "COPY {z}z {z}c DB 2",
        "MULTI",
        "PING",
        "EXEC",
        "WATCH {z}c",
        "COPY {z}z {z}c DB 0",
        "MULTI",
        "PING",
        "EXEC",
    ]);
    a.lines(&[
        "SELECT 2",
        "WATCH {z}c",
        "SELECT 0",
        "COPY {z}z {z}c DB 2 REPLACE",
        "MULTI",
        "PING",
        "EXEC",
        "FLUSHALL",
    ]);
}

#[test]
fn watch_sees_expiry() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.lines(&["FLUSHALL", "SET e 1 PX 100", "WATCH e", "MULTI", "PING"]);
    std::thread::sleep(Duration::from_millis(250));
    a.lines(&["EXEC"]);
    // Already expired when watched: its removal is no change.
    a.lines(&["SET f 1 PX 50"]);
    std::thread::sleep(Duration::from_millis(150));
    a.lines(&["WATCH f", "MULTI", "PING", "EXEC"]);
    // Expiry set after WATCH is a write.
    a.lines(&["SET g 1", "WATCH g", "EXPIRE g 100", "MULTI", "PING", "EXEC", "WATCH g", "PERSIST g", "MULTI", "EXEC"]);
}

#[test]
fn blocking_select_and_resp3_inside_multi() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.lines(&[
        "FLUSHALL",
        "MULTI",
        "BLPOP empty 0",
        "BRPOPLPUSH {e}mpty {e}other 0",
        "RPUSH l a b",
        "BLPOP l 0",
        "BZPOPMIN emptyz 0",
        "EXEC",
        "MULTI",
        "SELECT 4",
        "SET in4 yes",
        "SELECT 0",
        "GET in4",
        "EXEC",
        "SELECT 4",
        "GET in4",
        "SELECT 0",
    ]);
    a.unchecked(&["HELLO", "3"]);
    a.lines(&[
        "SET w 1",
        "WATCH w",
        "INCR w",
        "MULTI",
        "HGETALL nohash",
        "EXEC",
        "MULTI",
        "HSET h f v",
        "HGETALL h",
        "ZADD z 1.5 m",
        "ZSCORE z m",
        "EXEC",
    ]);
}

#[test]
fn pubsub_replies() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    let mut s = Both::new(&p);
    s.line_n("SUBSCRIBE news weather", 2);
    s.line_n("PSUBSCRIBE n*", 1);
    s.line_n("SSUBSCRIBE {s}a {s}b", 2);
    a.lines(&[
        "PUBSUB NUMSUB news weather nobody",
        "PUBSUB NUMPAT",
        "PUBSUB CHANNELS news",
        "PUBSUB CHANNELS w*",
        "PUBSUB SHARDNUMSUB {s}a {s}c",
        "PUBSUB SHARDCHANNELS {s}a",
        "PUBSUB CHANNELS a b",
        "PUBSUB HELP",
        "PUBSUB NOPE",
        "PUBLISH news hello",
        "PUBLISH other hi",
        "SPUBLISH {s}a shard",
        "SPUBLISH {s}zzz shard",
    ]);
    // The subscriber receives, in order: message and pmessage for "news", the smessage, then PONG.
    s.line_n("PING", 4);
    s.line_n("PING hi", 1);
    s.line_n("GET x", 1);
    s.line_n("CONFIG GET maxmemory", 1);
    s.line_n("UNSUBSCRIBE news", 1);
    s.line_n("PUNSUBSCRIBE", 1);
    s.line_n("SUNSUBSCRIBE {s}b", 1);
    s.line_n("SUNSUBSCRIBE", 1);
    s.line_n("UNSUBSCRIBE", 1);
    s.line_n("UNSUBSCRIBE", 1);
    s.line_n("PUNSUBSCRIBE", 1);
    s.check(&["PING"]);
    a.lines(&["PUBSUB NUMSUB news weather", "PUBSUB NUMPAT", "PUBSUB CHANNELS", "PUBLISH news x"]);
    // RESP3: pushes and ordinary replies side by side; self-publish arrives first.
    s.unchecked(&["HELLO", "3"]);
    s.line_n("SUBSCRIBE me", 1);
    s.line_n("SET k v", 1);
    s.line_n("PUBLISH me hi", 2);
    s.line_n("PSUBSCRIBE m*", 1);
    s.line_n("PUBLISH me again", 3);
    s.line_n("UNSUBSCRIBE", 1);
    s.line_n("PUNSUBSCRIBE", 1);
    s.line_n("UNSUBSCRIBE", 1);
    s.check(&["PING"]);
    // SUBSCRIBE queued in a transaction.
    let mut t = Both::new(&p);
    t.lines(&["MULTI", "SUBSCRIBE ch", "PING"]);
    t.line_n("EXEC", 1);
    t.check(&["PING"]);
    t.check(&["UNSUBSCRIBE"]);
}

#[test]
fn keyspace_notifications_match() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    let mut s = Both::new(&p);
    a.lines(&["FLUSHALL", "CONFIG SET notify-keyspace-events KEA", "CONFIG GET notify-keyspace-events"]);
    s.line_n("PSUBSCRIBE __key*__:*", 1);
    let cmds = [
        "SET {k}a 1",
        "INCR {k}a",
        "INCRBYFLOAT {k}a 1.5",
        "APPEND {k}a x",
        "SETRANGE {k}a 0 y",
        "EXPIRE {k}a 100",
        "PERSIST {k}a",
        "RENAME {k}a {k}b",
        "COPY {k}b {k}c",
        "DEL {k}b {k}c",
        "LPUSH {k}l a b c",
        "LPOP {k}l",
        "LSET {k}l 0 z",
        "LTRIM {k}l 0 0",
        "HSET {k}h f v",
        "HINCRBY {k}h n 1",
        "HDEL {k}h f",
        "SADD {k}s a b",
        "SREM {k}s a",
        "SINTERSTORE {k}s2 {k}s {k}s",
        "ZADD {k}z 1 a 2 b",
        "ZINCRBY {k}z 1 a",
        "ZREM {k}z a",
        "ZPOPMIN {k}z",
        "SET {k}t v PX 30",
    ];
    let mut expected_msgs = 0;
    for c in cmds {
        let args: Vec<&str> = c.split_whitespace().collect();
        a.check(&args);
        expected_msgs += 1;
    }
    // Collect what arrived on each side (two notifications per event).
    std::thread::sleep(Duration::from_millis(400));
    a.line_n("GET {k}t", 1);
    let got = s.drain();
    assert!(got[1].len() >= expected_msgs, "redis-server sent too few notifications: {}", got[1].len());
    assert_eq!(got[0], got[1]);
    a.check(&["CONFIG", "SET", "notify-keyspace-events", ""]);
}

/// Seeded random MULTI/EXEC/WATCH sequences from two clients per server.
#[test]
fn randomized_transactions() {
    let Some(p) = start_pair(&[]) else { return };
    let keys = ["a", "b", "c", "d", "e", "{a}x"];
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut a = Both::new(&p);
        let mut b = Both::new(&p);
        a.check(&["FLUSHALL"]);
        for _ in 0..250 {
            let k = keys[rng.gen_range(0..keys.len())];
            let v = rng.gen_range(0..100).to_string();
            if rng.gen_bool(0.15) {
                let cmd: Vec<&str> = match rng.gen_range(0..4) {
                    0 => vec!["SET", k, &v],
                    1 => vec!["DEL", k],
                    2 => vec!["INCR", k],
                    _ => vec!["GET", k],
                };
                b.check(&cmd);
                continue;
            }
            let cmd: Vec<&str> = match rng.gen_range(0..16) {
                0 | 1 => vec!["MULTI"],
                2 | 3 => vec!["EXEC"],
                4 => vec!["DISCARD"],
                5 => vec!["WATCH", k],
                6 => vec!["UNWATCH"],
                7 => vec!["SET", k, &v],
                8 => vec!["INCR", k],
                9 => vec!["LPUSH", k, &v],
                10 => vec!["GET", k],
                11 => vec!["DEL", k],
                12 => vec!["NOSUCH", k],
                13 => vec!["GET"],
                14 => vec!["MGET", "a", "b", "c", "d", "e"],
                _ => vec!["DBSIZE"],
            };
            a.check(&cmd);
        }
        a.check(&["DISCARD"]);
        a.check(&["MGET", "a", "b", "c", "d", "e", "{a}x"]);
    }
}
