//! Replication with a real redis-server 7.0: a redis-server replica follows
//! a moonshard master (handshake, full sync by RDB, then the write stream)
//! and ends with the master's dataset, checked by DEBUG DIGEST on both.
//! The writes are a seeded random mix of every type, expiries, scripts,
//! cross-shard transactions and other databases, before the replica
//! connects (they travel in the snapshot) and after (in the stream).

mod common;

use common::{field_of, moonshard, q, redis_server_with, run_str, Proc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const SHARDS: usize = 4;

/// One random write from a mix over every type.
fn random_write(rng: &mut StdRng, con: &mut redis::Connection, keys: &[String]) {
    let k = &keys[rng.gen_range(0..keys.len())];
    let k2 = &keys[rng.gen_range(0..keys.len())];
    let n = rng.gen_range(0..1000).to_string();
    let s = |p: &str| format!("{p}:{k}");
    let cmd: Vec<String> = match rng.gen_range(0..26) {
        0 => vec!["SET".into(), s("str"), n],
        1 => vec!["APPEND".into(), s("str"), n],
        2 => vec!["INCRBYFLOAT".into(), s("num"), "1.5".into()],
        3 => vec!["SET".into(), s("ttl"), n, "EX".into(), "1000".into()],
        4 => vec!["EXPIRE".into(), s("str"), "500".into()],
        5 => vec!["SET".into(), s("short"), n, "PX".into(), rng.gen_range(20..200).to_string()],
        6 => vec!["RPUSH".into(), s("list"), n.clone(), n],
        7 => vec!["LPOP".into(), s("list")],
        8 => vec!["LMOVE".into(), s("list"), format!("list:{k2}"), "LEFT".into(), "RIGHT".into()],
        9 => vec!["HSET".into(), s("hash"), format!("f{n}"), n],
        10 => vec!["HINCRBY".into(), s("hash"), "ctr".into(), "3".into()],
        11 => vec!["SADD".into(), s("set"), n.clone(), format!("m{n}")],
        12 => vec!["SPOP".into(), s("set")],
        13 => vec!["ZADD".into(), s("zset"), n.clone(), format!("m{n}")],
        14 => vec!["ZINCRBY".into(), s("zset"), "2.5".into(), "m1".into()],
        15 => vec!["XADD".into(), s("stream"), "*".into(), "f".into(), n],
        16 => vec!["PFADD".into(), s("hll"), n.clone(), format!("x{n}")],
        17 => vec!["SETBIT".into(), s("bits"), n, "1".into()],
        18 => vec!["DEL".into(), s("str")],
        19 => vec!["COPY".into(), s("hash"), format!("copy:{k2}"), "REPLACE".into()],
        20 => vec!["EVAL".into(), SCRIPT.into(), "2".into(), s("lua"), format!("lua:{k}:b"), n],
        21 => vec!["PEXPIRE".into(), s("list"), rng.gen_range(30..300).to_string()],
        22 => vec!["GETEX".into(), s("ttl"), "PERSIST".into()],
        23 => vec!["SINTERSTORE".into(), format!("{{t}}dst{n}"), "{t}a".into(), "{t}b".into()],
        24 => vec!["SADD".into(), format!("{{t}}{}", ["a", "b"][rng.gen_range(0..2)]), n],
        _ => vec!["INCR".into(), s("num2")],
    };
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let _ = run_str(con, &args);
}

/// A script writing two keys, one of them with a random element (SPOP),
/// so that replicating its effects (not the script) is what keeps it exact.
const SCRIPT: &str = "redis.call('SADD', KEYS[1], ARGV[1], 'a', 'b', 'c') \
     redis.call('SPOP', KEYS[1]) \
     redis.call('INCRBY', KEYS[2], ARGV[1]) return 1";

/// A transaction over keys on different shards, in another database.
fn cross_shard_exec(rng: &mut StdRng, con: &mut redis::Connection, keys: &[String]) {
    let db = rng.gen_range(0..3).to_string();
    let n = rng.gen_range(0..100).to_string();
    assert_eq!(q(con, &format!("SELECT {db}")), "OK");
    assert_eq!(q(con, "MULTI"), "OK");
    for k in keys {
        let _ = run_str(con, &["INCRBY", &format!("tx:{k}"), &n]);
        let _ = run_str(con, &["HSET", &format!("txh:{k}"), &n, &n]);
    }
    let _ = run_str(con, &["EXEC"]);
    assert_eq!(q(con, "SELECT 0"), "OK");
}

fn load(rng: &mut StdRng, con: &mut redis::Connection, keys: &[String], n: usize) {
    for i in 0..n {
        if i % 50 == 0 {
            cross_shard_exec(rng, con, keys);
        } else {
            random_write(rng, con, keys);
        }
    }
}

fn digest(con: &mut redis::Connection) -> String {
    q(con, "DEBUG DIGEST")
}

/// Waits until the replica is linked and has applied the master's whole
/// stream, then until both digests agree (expiries may still be on their
/// way as DELs). Returns the last digests seen.
fn wait_in_sync(master: &mut redis::Connection, replica: &mut redis::Connection) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let offset = field_of(master, "replication", "master_repl_offset");
        let up = field_of(replica, "replication", "master_link_status") == "up";
        let theirs = field_of(replica, "replication", "slave_repl_offset");
        if up && offset == theirs {
            let (a, b) = (digest(master), digest(replica));
            if a == b || Instant::now() > deadline {
                return (a, b);
            }
        } else if Instant::now() > deadline {
            panic!("the replica did not catch up: link up {up}, master at {offset}, replica at {theirs}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The keys whose values or presence differ between the two servers, in
/// databases 0 to 2 (what a failed digest comparison shows).
fn differing_keys(master: &mut redis::Connection, replica: &mut redis::Connection) -> Vec<String> {
    let mut out = Vec::new();
    for db in 0..3 {
        let mut all = std::collections::BTreeSet::new();
        for c in [&mut *master, &mut *replica] {
            assert_eq!(q(c, &format!("SELECT {db}")), "OK");
            if let Ok(redis::Value::Array(keys)) = run_str(c, &["KEYS", "*"]) {
                for k in keys {
                    if let redis::Value::BulkString(b) = k {
                        all.insert(String::from_utf8_lossy(&b).into_owned());
                    }
                }
            }
        }
        for k in all {
            let a = (q(master, &format!("DEBUG DIGEST-VALUE {k}")), q(master, &format!("PTTL {k}")));
            let b = (q(replica, &format!("DEBUG DIGEST-VALUE {k}")), q(replica, &format!("PTTL {k}")));
            if a.0 != b.0 || (a.1.starts_with('-') != b.1.starts_with('-')) {
                out.push(format!("db{db} {k}: master {a:?} replica {b:?}"));
            }
        }
    }
    for c in [master, replica] {
        let _ = q(c, "SELECT 0");
    }
    out
}

#[track_caller]
fn assert_same(master: &mut redis::Connection, replica: &mut redis::Connection, what: &str) {
    let (a, b) = wait_in_sync(master, replica);
    if a != b {
        panic!("{what}: digests differ; keys: {:#?}", differing_keys(master, replica));
    }
}

fn start_replica(master: &Proc) -> Option<Proc> {
    let port = master.port.to_string();
    redis_server_with(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &port])
}

#[test]
fn redis_server_replica_follows_moonshard_master() {
    let master = moonshard(&["--shards", &SHARDS.to_string(), "--enable-debug-command", "yes"]);
    let mut m = master.client();
    let keys = common::keys_on_different_shards("k", SHARDS, SHARDS);
    let mut rng = StdRng::seed_from_u64(16);
    load(&mut rng, &mut m, &keys, 600);
    // Functions travel in the snapshot too.
    let lib = "#!lua name=repl\nredis.register_function('bump', function(k, a) return redis.call('INCR', k[1]) end)";
    assert_eq!(run_str(&mut m, &["FUNCTION", "LOAD", lib]), Ok(redis::Value::BulkString(b"repl".to_vec())));

    // A slow walk (µs per key), so that the writes below land while the
    // snapshot is being written: keys change before and after the walk
    // passes them.
    assert_eq!(q(&mut m, "CONFIG SET rdb-key-save-delay 2000"), "OK");
    let Some(replica) = start_replica(&master) else { return };
    let mut r = replica.client();
    // Writes while the replica connects and syncs, then after.
    let mut saw_sync = false;
    for _ in 0..20 {
        load(&mut rng, &mut m, &keys, 20);
        saw_sync |= field_of(&mut m, "persistence", "rdb_bgsave_in_progress") == "1";
    }
    assert!(saw_sync, "writes landed during the sync's snapshot");
    assert_eq!(q(&mut m, "CONFIG SET rdb-key-save-delay 0"), "OK");
    let _ = run_str(&mut m, &["FCALL", "bump", "1", "fn:ctr"]);
    assert_same(&mut m, &mut r, "after the full sync and the stream");
    assert_ne!(digest(&mut m), "0".repeat(40), "the dataset is not empty");
    load(&mut rng, &mut m, &keys, 600);
    assert_same(&mut m, &mut r, "after more of the stream");
    assert_eq!(q(&mut r, "GET fn:ctr"), "1");
    assert_eq!(q(&mut r, "FUNCTION LIST"), q(&mut m, "FUNCTION LIST"));

    // The master reports its replica.
    assert_eq!(field_of(&mut m, "replication", "connected_slaves"), "1");
    let line = field_of(&mut m, "replication", "slave0");
    assert!(
        line.starts_with(&format!("ip=127.0.0.1,port={},state=online,offset=", replica.port)),
        "slave0 line: {line}"
    );
    let role = run_str(&mut m, &["ROLE"]).unwrap();
    let redis::Value::Array(parts) = role else { panic!("ROLE answered {role:?}") };
    assert_eq!(parts.len(), 3);
    let redis::Value::Array(replicas) = &parts[2] else { panic!("ROLE replicas: {:?}", parts[2]) };
    assert_eq!(replicas.len(), 1);

    // An idle master pings its replicas through the stream: the offset
    // moves, and the replica follows it.
    assert_eq!(q(&mut m, "CONFIG SET repl-ping-replica-period 1"), "OK");
    let before: u64 = field_of(&mut m, "replication", "master_repl_offset").parse().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let after: u64 = field_of(&mut m, "replication", "master_repl_offset").parse().unwrap();
    assert!(after > before, "no PING went to the replica ({before} -> {after})");
    assert_same(&mut m, &mut r, "after the pings");
}

#[test]
fn replica_leaving_is_forgotten_and_a_new_one_syncs() {
    let master = moonshard(&["--shards", &SHARDS.to_string(), "--enable-debug-command", "yes"]);
    let mut m = master.client();
    let keys = common::keys_on_different_shards("k", SHARDS, SHARDS);
    let mut rng = StdRng::seed_from_u64(7);
    load(&mut rng, &mut m, &keys, 200);
    let Some(first) = start_replica(&master) else { return };
    let mut r = first.client();
    assert_same(&mut m, &mut r, "first replica");
    drop(r);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    while field_of(&mut m, "replication", "connected_slaves") != "0" {
        assert!(Instant::now() < deadline, "the dead replica is still listed");
        std::thread::sleep(Duration::from_millis(50));
    }
    load(&mut rng, &mut m, &keys, 200);
    let Some(second) = start_replica(&master) else { return };
    let mut r = second.client();
    load(&mut rng, &mut m, &keys, 200);
    assert_same(&mut m, &mut r, "second replica");
}

#[test]
fn moonshard_replica_follows_redis_server_master() {
    let Some(master) = redis_server_with(&["--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"]) else {
        return;
    };
    let mut m = master.client();
    let replica = moonshard(&["--shards", &SHARDS.to_string(), "--enable-debug-command", "yes"]);
    let mut r = replica.client();
    let keys: Vec<String> = (0..SHARDS).map(|i| format!("k{i}")).collect();
    let mut rng = StdRng::seed_from_u64(61);
    load(&mut rng, &mut m, &keys, 500);
    assert_eq!(q(&mut r, "SET mine 1"), "OK");
    assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK Already connected to specified master");
    load(&mut rng, &mut m, &keys, 300);
    assert_same(&mut m, &mut r, "moonshard replica after the full sync and the stream");
    assert_eq!(show_get(&mut r, "mine"), "nil", "the replica's own data went with the full sync");
    load(&mut rng, &mut m, &keys, 500);
    assert_same(&mut m, &mut r, "moonshard replica after more of the stream");

    // A read-only replica: clients' writes are refused, reads served.
    assert_eq!(q(&mut r, "SET x 1"), "READONLY You can't write against a read only replica.");
    assert_eq!(q(&mut r, "GET k0"), q(&mut m, "GET k0"));
    let role = run_str(&mut r, &["ROLE"]).unwrap();
    let redis::Value::Array(parts) = role else { panic!("ROLE answered {role:?}") };
    assert_eq!(parts.len(), 5);
    assert_eq!(parts[0], redis::Value::BulkString(b"slave".to_vec()));
    assert_eq!(parts[2], redis::Value::Int(master.port as i64));
    assert_eq!(parts[3], redis::Value::BulkString(b"connected".to_vec()));
    assert_eq!(field_of(&mut r, "replication", "role"), "slave");
    assert_eq!(field_of(&mut m, "replication", "connected_slaves"), "1");

    // Promoted: writes are accepted again and the master's no longer arrive.
    assert_eq!(q(&mut r, "REPLICAOF NO ONE"), "OK");
    assert_eq!(q(&mut r, "SET x 1"), "OK");
    assert_eq!(field_of(&mut r, "replication", "role"), "master");
    assert_eq!(q(&mut m, "SET after-promotion 1"), "OK");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(show_get(&mut r, "after-promotion"), "nil");
}

fn show_get(c: &mut redis::Connection, key: &str) -> String {
    q(c, &format!("GET {key}"))
}

/// The replication commands' argument errors, reply for reply with
/// redis-server.
#[test]
fn replication_command_errors_match_redis() {
    let Some(mut d) = common::Diff::start(&[]) else { return };
    for c in [
        &["REPLCONF"][..],
        &["REPLCONF", "listening-port"],
        &["REPLCONF", "nosuch", "1"],
        &["REPLCONF", "listening-port", "abc"],
        &["REPLCONF", "capa", "eof", "capa", "psync2"],
        &["REPLCONF", "listening-port", "6390"],
        &["REPLICAOF", "127.0.0.1", "notaport"],
        &["REPLICAOF", "127.0.0.1", "70000"],
        &["REPLICAOF", "NO", "ONE"],
        &["SLAVEOF", "no", "one"],
        &["PSYNC", "?"],
        &["SYNC", "x"],
        &["ROLE"],
    ] {
        let _ = d.check(c);
    }
}
