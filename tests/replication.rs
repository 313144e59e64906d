//! Replication with a real redis-server 7.0: a redis-server replica follows
//! a moonshard master (handshake, full sync by RDB, then the write stream)
//! and ends with the master's dataset, checked by DEBUG DIGEST on both.
//! The writes are a seeded random mix of every type, expiries, scripts,
//! cross-shard transactions and other databases, before the replica
//! connects (they travel in the snapshot) and after (in the stream).

mod common;
use common::info_num as num;
use common::wait_until;

use common::{field_of, q, redis_server_with, repl_moonshard, repl_redis, run_str, Proc};
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
        let mut spaces = (q(master, "INFO keyspace"), q(replica, "INFO keyspace"));
        for c in [&mut *master, &mut *replica] {
            let mut ks: Vec<String> = match run_str(c, &["KEYS", "*"]) {
                Ok(redis::Value::Array(v)) => v.into_iter().map(|k| format!("{k:?}")).collect(),
                _ => vec![],
            };
            ks.sort();
            spaces.0.push_str(&format!("\n{} {}", ks.len(), ks.join(",")));
        }
        panic!("{what}: digests differ; keys: {:#?}; keyspaces {spaces:?}", differing_keys(master, replica));
    }
}

fn start_replica(master: &Proc) -> Option<Proc> {
    let port = master.port.to_string();
    redis_server_with(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &port])
}

/// A redis-server master loaded with `writes` random writes from `seed`
/// (keys k0..), and a moonshard (not yet following it), with clients.
#[allow(clippy::type_complexity)]
fn redis_master_and_moonshard(
    seed: u64,
    writes: usize,
) -> Option<(common::Proc, redis::Connection, common::Proc, redis::Connection, Vec<String>, StdRng)> {
    let master = repl_redis(&[])?;
    let mut m = master.client();
    let replica = repl_moonshard(SHARDS, &[]);
    let r = replica.client();
    let keys: Vec<String> = (0..SHARDS).map(|i| format!("k{i}")).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    load(&mut rng, &mut m, &keys, writes);
    Some((master, m, replica, r, keys, rng))
}

/// A moonshard master (SHARDS shards, DEBUG allowed), a client, keys on
/// every shard, and `writes` random writes over them from `seed`.
fn loaded_master(seed: u64, writes: usize) -> (common::Proc, redis::Connection, Vec<String>, StdRng) {
    let master = repl_moonshard(SHARDS, &[]);
    let mut m = master.client();
    let keys = common::keys_on_different_shards("k", SHARDS, SHARDS);
    let mut rng = StdRng::seed_from_u64(seed);
    load(&mut rng, &mut m, &keys, writes);
    (master, m, keys, rng)
}

#[test]
fn redis_server_replica_follows_moonshard_master() {
    let (master, mut m, keys, mut rng) = loaded_master(16, 600);
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
    let (master, mut m, keys, mut rng) = loaded_master(7, 200);
    let Some(first) = start_replica(&master) else { return };
    let mut r = first.client();
    assert_same(&mut m, &mut r, "first replica");
    drop(r);
    drop(first);
    wait_until(10, "the dead replica to leave the list", || field_of(&mut m, "replication", "connected_slaves") == "0");
    load(&mut rng, &mut m, &keys, 200);
    let Some(second) = start_replica(&master) else { return };
    let mut r = second.client();
    load(&mut rng, &mut m, &keys, 200);
    assert_same(&mut m, &mut r, "second replica");
}

#[test]
fn moonshard_replica_follows_redis_server_master() {
    let Some((master, mut m, _replica, mut r, keys, mut rng)) = redis_master_and_moonshard(61, 500) else {
        return;
    };
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
        &["REPLCONF", "rdb-only", "2"],
        &["REPLCONF", "rdb-only", "x"],
        &["REPLCONF", "rdb-only", "0"],
        &["REPLCONF", "rdb-filter-only", "foo"],
        &["REPLCONF", "rdb-filter-only", "functions foo"],
        &["REPLCONF", "rdb-filter-only", "FUNCTIONS"],
        &["REPLCONF", "rdb-filter-only", ""],
        &["REPLCONF", "rdb-filter-only"],
        &["REPLICAOF", "127.0.0.1", "notaport"],
        &["REPLICAOF", "127.0.0.1", "70000"],
        &["REPLICAOF", "NO", "ONE"],
        &["SLAVEOF", "no", "one"],
        &["PSYNC", "?"],
        &["SYNC", "x"],
        &["ROLE"],
        &["WAIT", "x", "1"],
        &["WAIT", "1", "x"],
        &["WAIT", "1", "-1"],
        &["WAIT", "1", "1.5"],
        &["WAIT", "0", "0"],
        &["WAIT", "1", "10"],
        &["WAIT", "1"],
        &["EVAL", "return redis.call('wait', 0, 0)", "0"],
        &["COMMAND", "INFO", "wait"],
        &["MULTI"],
        &["WAIT", "1", "0"],
        &["EXEC"],
    ] {
        let _ = d.check(c);
    }
}

/// The history fields INFO replication reports on both sides of a link in
/// sync: the same replication ID and offset.
#[track_caller]
fn assert_same_history(master: &mut redis::Connection, replica: &mut redis::Connection) {
    // (A PING or GETACK may still be on its way to the replica.)
    let deadline = Instant::now() + Duration::from_secs(10);
    for name in ["master_replid", "master_repl_offset"] {
        loop {
            let (a, b) = (field_of(master, "replication", name), field_of(replica, "replication", name));
            if a == b {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: master {a}, replica {b}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn redis_server_replica_resumes_with_partial_resync_from_moonshard_backlog() {
    let master = repl_moonshard(SHARDS, &[]);
    let mut m = master.client();
    assert_eq!(field_of(&mut m, "replication", "repl_backlog_active"), "0");
    let keys = common::keys_on_different_shards("k", SHARDS, SHARDS);
    let mut rng = StdRng::seed_from_u64(3);
    load(&mut rng, &mut m, &keys, 200);
    let Some(replica) = start_replica(&master) else { return };
    let mut r = replica.client();
    load(&mut rng, &mut m, &keys, 200);
    assert_same(&mut m, &mut r, "after the full sync");
    assert_eq!(field_of(&mut m, "replication", "repl_backlog_active"), "1");
    assert_same_history(&mut m, &mut r);
    let histlen = num(&mut m, "replication", "repl_backlog_histlen");
    let first = num(&mut m, "replication", "repl_backlog_first_byte_offset");
    let offset = num(&mut m, "replication", "master_repl_offset");
    assert!(histlen > 0 && first + histlen - 1 == offset, "backlog {first}+{histlen} vs offset {offset}");
    assert_eq!((num(&mut m, "stats", "sync_full"), num(&mut m, "stats", "sync_partial_ok")), (1, 0));

    // Drop the link twice while writes go on: each time the replica
    // continues from the backlog.
    for round in 1..=2 {
        assert_eq!(q(&mut m, "CLIENT KILL TYPE replica"), "1");
        load(&mut rng, &mut m, &keys, 100);
        wait_until(10, "the partial resync", || num(&mut m, "stats", "sync_partial_ok") == round);
        load(&mut rng, &mut m, &keys, 100);
        assert_same(&mut m, &mut r, "after a partial resync");
        assert_same_history(&mut m, &mut r);
    }
    assert_eq!(num(&mut m, "stats", "sync_full"), 1, "no full resync happened");
    assert_eq!(num(&mut m, "stats", "sync_partial_err"), 0);
}

#[test]
fn moonshard_replica_resumes_with_partial_resync_from_redis_server() {
    let Some((master, mut m, _replica, mut r, keys, mut rng)) = redis_master_and_moonshard(5, 300) else {
        return;
    };
    assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    load(&mut rng, &mut m, &keys, 200);
    assert_same(&mut m, &mut r, "after the full sync");
    assert_same_history(&mut m, &mut r);
    assert_eq!(field_of(&mut r, "replication", "repl_backlog_active"), "1");
    // (A fresh server asks to continue its own history first, as Redis
    // does: that counts as a refused partial resync on the master.)
    let (full, err) = (num(&mut m, "stats", "sync_full"), num(&mut m, "stats", "sync_partial_err"));

    // The master drops the link: the replica continues where it was.
    assert_eq!(q(&mut m, "CLIENT KILL TYPE replica"), "1");
    load(&mut rng, &mut m, &keys, 150);
    wait_until(10, "the partial resync", || num(&mut m, "stats", "sync_partial_ok") == 1);
    load(&mut rng, &mut m, &keys, 150);
    assert_same(&mut m, &mut r, "after the master dropped the link");

    // The replica drops its link to the master: the same.
    assert_eq!(q(&mut r, "CLIENT KILL TYPE master"), "1");
    load(&mut rng, &mut m, &keys, 150);
    wait_until(10, "the second partial resync", || num(&mut m, "stats", "sync_partial_ok") == 2);
    load(&mut rng, &mut m, &keys, 150);
    assert_same(&mut m, &mut r, "after the replica dropped the link");
    assert_same_history(&mut m, &mut r);
    assert_eq!(num(&mut m, "stats", "sync_full"), full, "no full resync happened");
    assert_eq!(num(&mut m, "stats", "sync_partial_err"), err);
}

#[test]
fn backlog_overrun_falls_back_to_a_full_resync() {
    let master = repl_moonshard(SHARDS, &[]);
    let mut m = master.client();
    assert_eq!(q(&mut m, "CONFIG SET repl-backlog-size 1"), "OK");
    wait_until(5, "the backlog's new size", || field_of(&mut m, "replication", "repl_backlog_size") == "16384");
    let keys = common::keys_on_different_shards("k", SHARDS, SHARDS);
    let mut rng = StdRng::seed_from_u64(9);
    load(&mut rng, &mut m, &keys, 100);
    let Some(replica) = start_replica(&master) else { return };
    let mut r = replica.client();
    assert_same(&mut m, &mut r, "after the full sync");
    // The replica sleeps, the master drops it and writes more than the
    // backlog holds: when it wakes up and asks to continue, it cannot.
    let port = replica.port;
    let sleeper = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        let _ = run_str(&mut c, &["DEBUG", "SLEEP", "1.5"]);
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(q(&mut m, "CLIENT KILL TYPE replica"), "1");
    let big = "x".repeat(1000);
    for i in 0..40 {
        assert_eq!(q(&mut m, &format!("SET big:{i} {big}")), "OK");
    }
    let histlen = num(&mut m, "replication", "repl_backlog_histlen");
    assert_eq!(histlen, 16384, "the backlog is full and no bigger");
    sleeper.join().unwrap();
    wait_until(10, "the full resync", || num(&mut m, "stats", "sync_full") == 2);
    assert_eq!(num(&mut m, "stats", "sync_partial_err"), 1);
    assert_eq!(num(&mut m, "stats", "sync_partial_ok"), 0);
    load(&mut rng, &mut m, &keys, 100);
    assert_same(&mut m, &mut r, "after the full resync");
}

/// PSYNC2: moonshard master M with a moonshard replica R1 and a
/// redis-server replica R2. Both links drop and continue from M's backlog;
/// then R1 is promoted (its ID changes, M's becomes its replid2) and R2,
/// pointed at R1, continues its history there with a partial resync.
#[test]
fn promoted_moonshard_replica_lets_the_other_replica_continue() {
    let (master, mut m, keys, mut rng) = loaded_master(11, 200);
    let r1p = repl_moonshard(2, &[]);
    let mut r1 = r1p.client();
    assert_eq!(q(&mut r1, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    let Some(r2p) = start_replica(&master) else { return };
    let mut r2 = r2p.client();
    load(&mut rng, &mut m, &keys, 200);
    assert_same(&mut m, &mut r1, "moonshard replica");
    assert_same(&mut m, &mut r2, "redis-server replica");
    let full = num(&mut m, "stats", "sync_full");
    assert!(full >= 2, "each replica had a full sync");

    assert_eq!(q(&mut m, "CLIENT KILL TYPE replica"), "2");
    load(&mut rng, &mut m, &keys, 100);
    wait_until(10, "both partial resyncs", || num(&mut m, "stats", "sync_partial_ok") == 2);
    assert_eq!(num(&mut m, "stats", "sync_full"), full, "no full resync after the links dropped");
    assert_same(&mut m, &mut r1, "moonshard replica after its partial resync");
    assert_same(&mut m, &mut r2, "redis-server replica after its partial resync");
    assert_same_history(&mut m, &mut r1);
    assert_same_history(&mut m, &mut r2);

    // Promote R1 while M and both replicas are at the same offset. M's
    // PINGs stop first: one that reached R2 and not R1 would put R2 past
    // the history R1 continues, and Redis's answer to that is a full sync.
    assert_eq!(q(&mut m, "CONFIG SET repl-ping-replica-period 3600"), "OK");
    let old_id = field_of(&mut m, "replication", "master_replid");
    wait_until(10, "both replicas at the master's offset", || {
        let at = num(&mut m, "replication", "master_repl_offset");
        num(&mut r1, "replication", "master_repl_offset") == at
            && num(&mut r2, "replication", "master_repl_offset") == at
    });
    let offset = num(&mut m, "replication", "master_repl_offset");
    assert_eq!(q(&mut r1, "REPLICAOF NO ONE"), "OK");
    assert_eq!(field_of(&mut r1, "replication", "master_replid2"), old_id);
    // (A PING from the master may have reached R1 after `offset` was read:
    // the history continues from where R1 stood when promoted.)
    let second = num(&mut r1, "replication", "second_repl_offset");
    assert!(second > offset, "second_repl_offset {second} continues the master's {offset}");
    assert_eq!(second, num(&mut r1, "replication", "master_repl_offset") + 1);
    assert_ne!(field_of(&mut r1, "replication", "master_replid"), old_id);
    assert_eq!(q(&mut r2, &format!("REPLICAOF 127.0.0.1 {}", r1p.port)), "OK");
    assert_eq!(q(&mut r1, "SET after:promotion 1"), "OK");
    wait_until(10, "R2's partial resync with R1", || num(&mut r1, "stats", "sync_partial_ok") == 1);
    assert_eq!(num(&mut r1, "stats", "sync_full"), 0, "R2 continued its history");
    for i in 0..50 {
        assert_eq!(q(&mut r1, &format!("RPUSH {{p}}list {i}")), "1".to_string().replace('1', &(i + 1).to_string()));
    }
    assert_same(&mut r1, &mut r2, "redis-server replica following the promoted moonshard");
    assert_eq!(field_of(&mut r2, "replication", "master_replid"), field_of(&mut r1, "replication", "master_replid"));
}

/// WAIT with a redis-server and a moonshard replica: counts the replicas
/// that acknowledged the client's writes, returns at once when enough did,
/// at the timeout otherwise; inside MULTI it does not block; a replica
/// refuses it. A moonshard replica answers REPLCONF GETACK.
#[test]
fn wait_counts_acknowledging_replicas() {
    let master = repl_moonshard(SHARDS, &[]);
    let mut m = master.client();
    assert_eq!(q(&mut m, "WAIT 0 0"), "0");
    assert_eq!(q(&mut m, "SET a 1"), "OK");
    let started = Instant::now();
    assert_eq!(q(&mut m, "WAIT 1 150"), "0", "no replica yet");
    assert!(started.elapsed() >= Duration::from_millis(140), "WAIT waited for its timeout");
    let Some(redis_replica) = start_replica(&master) else { return };
    let ours = repl_moonshard(2, &[]);
    let mut r = ours.client();
    assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    wait_until(10, "two online replicas", || {
        field_of(&mut m, "replication", "slave1").contains("state=online")
            && field_of(&mut m, "replication", "slave0").contains("state=online")
    });
    // Writes, then WAIT: both replicas acknowledge them (GETACK makes them
    // answer at once, long before the timeout).
    for i in 0..50 {
        assert_eq!(q(&mut m, &format!("SET key{i} {i}")), "OK");
    }
    let started = Instant::now();
    assert_eq!(q(&mut m, "WAIT 2 5000"), "2");
    assert!(started.elapsed() < Duration::from_millis(900), "WAIT returned once both acknowledged");
    assert_eq!(q(&mut r, "GET key49"), "49");
    assert_eq!(q(&mut redis_replica.client(), "GET key49"), "49");
    // More replicas than there are: the timeout, with the count.
    let started = Instant::now();
    assert_eq!(q(&mut m, "WAIT 3 200"), "2");
    assert!(started.elapsed() >= Duration::from_millis(190));
    // Inside MULTI it answers without blocking.
    assert_eq!(q(&mut m, "MULTI"), "OK");
    assert_eq!(q(&mut m, "WAIT 5 0"), "QUEUED");
    assert_eq!(run_str(&mut m, &["EXEC"]), Ok(redis::Value::Array(vec![redis::Value::Int(2)])));
    // A client that wrote nothing waits for nobody.
    let mut other = master.client();
    assert_eq!(q(&mut other, "WAIT 2 0"), "2");
    assert_eq!(
        q(&mut r, "WAIT 1 0"),
        "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is \
         configured to be writable (which is not the default) writes to replicas are just local and are not \
         propagated."
    );
    // The moonshard replica's offset keeps up with the master's.
    assert_eq!(
        field_of(&mut r, "replication", "master_repl_offset"),
        field_of(&mut m, "replication", "master_repl_offset")
    );
}

/// min-replicas-to-write / min-replicas-max-lag: writes are refused
/// without enough replicas, accepted with them.
#[test]
fn min_replicas_to_write_refuses_writes_without_replicas() {
    let master = repl_moonshard(2, &["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"]);
    let mut m = master.client();
    assert_eq!(q(&mut m, "SET a 1"), "NOREPLICAS Not enough good replicas to write.");
    assert_eq!(q(&mut m, "GET a"), "nil");
    let Some(replica) = start_replica(&master) else { return };
    wait_until(10, "a good replica", || q(&mut m, "SET a 1") == "OK");
    assert_eq!(field_of(&mut m, "replication", "min_slaves_good_slaves"), "1");
    drop(replica);
    wait_until(10, "the replica's departure", || field_of(&mut m, "replication", "connected_slaves") == "0");
    assert_eq!(q(&mut m, "SET a 2"), "NOREPLICAS Not enough good replicas to write.");
    assert_eq!(q(&mut m, "CONFIG SET min-replicas-to-write 0"), "OK");
    assert_eq!(q(&mut m, "SET a 2"), "OK");
}

/// masterauth and masteruser: a replica authenticates before the
/// handshake, with a redis-server master and with a moonshard master.
#[test]
fn replicas_authenticate_with_masterauth_and_masteruser() {
    let Some(redis_master) = repl_redis(&["--requirepass", "s3cret"]) else {
        return;
    };
    let client = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/", redis_master.port)).unwrap();
    let mut rm = client.get_connection().unwrap();
    assert_eq!(q(&mut rm, "SET from:redis 1"), "OK");
    let ours = repl_moonshard(2, &[]);
    let mut r = ours.client();
    // Without the password the link never comes up.
    assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", redis_master.port)), "OK");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(field_of(&mut r, "replication", "master_link_status"), "down");
    assert_eq!(q(&mut r, "CONFIG SET masterauth s3cret"), "OK");
    wait_until(10, "the link with the password", || field_of(&mut r, "replication", "master_link_status") == "up");
    wait_until(5, "the data", || q(&mut r, "GET from:redis") == "1");

    // A moonshard master with requirepass, followed by a redis-server
    // replica (masterauth) and a moonshard replica (masteruser + masterauth).
    let master = repl_moonshard(2, &["--requirepass", "pw"]);
    let client = redis::Client::open(format!("redis://:pw@127.0.0.1:{}/", master.port)).unwrap();
    let mut m = client.get_connection().unwrap();
    assert_eq!(q(&mut m, "ACL SETUSER repl on >replpw +@all ~* &*"), "OK");
    assert_eq!(q(&mut m, "SET from:moonshard 2"), "OK");
    let port = master.port.to_string();
    let Some(rs) = redis_server_with(&["--replicaof", "127.0.0.1", &port, "--masterauth", "pw"]) else { return };
    let mut rsc = rs.client();
    wait_until(10, "the redis-server replica", || q(&mut rsc, "GET from:moonshard") == "2");
    let second = repl_moonshard(2, &["--masteruser", "repl", "--masterauth", "replpw"]);
    let mut s = second.client();
    assert_eq!(q(&mut s, &format!("REPLICAOF 127.0.0.1 {port}")), "OK");
    wait_until(10, "the moonshard replica", || q(&mut s, "GET from:moonshard") == "2");
}

/// A replica does not expire keys itself: a key whose TTL passed reads as
/// missing there but stays until the master's DEL. With
/// replica-serve-stale-data no, a replica whose link is down refuses
/// commands not flagged stale.
#[test]
fn replica_keeps_expired_keys_and_refuses_stale_reads_when_asked() {
    let master = repl_moonshard(2, &[]);
    let mut m = master.client();
    let ours = repl_moonshard(2, &[]);
    let mut r = ours.client();
    assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    wait_until(10, "the link", || field_of(&mut r, "replication", "master_link_status") == "up");
    // The master does not expire either for now, so only its DEL removes it.
    assert_eq!(q(&mut m, "DEBUG SET-ACTIVE-EXPIRE 0"), "OK");
    assert_eq!(q(&mut m, "SET shortlived v PX 100"), "OK");
    wait_until(5, "the key on the replica", || q(&mut r, "DBSIZE") == "1");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(q(&mut r, "GET shortlived"), "nil", "reads as missing");
    assert_eq!(q(&mut r, "EXISTS shortlived"), "0");
    assert_eq!(q(&mut r, "DBSIZE"), "1", "but stays");
    // A read on the master expires it there and propagates the DEL.
    assert_eq!(q(&mut m, "GET shortlived"), "nil");
    wait_until(5, "the master's DEL", || q(&mut r, "DBSIZE") == "0");

    assert_eq!(q(&mut r, "CONFIG SET replica-serve-stale-data no"), "OK");
    assert_eq!(q(&mut r, "GET x"), "nil", "the link is up");
    drop(m);
    drop(master);
    wait_until(10, "the link down", || field_of(&mut r, "replication", "master_link_status") == "down");
    assert_eq!(q(&mut r, "GET x"), "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.");
    assert_eq!(q(&mut r, "PING"), "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.");
    assert_eq!(q(&mut r, "CONFIG SET replica-serve-stale-data yes"), "OK");
    assert_eq!(q(&mut r, "GET x"), "nil");
}

/// Keys reaped by expiry while nobody followed the write stream are not
/// replayed as DELs to a replica that attaches later: by then the keys were
/// written again (and the snapshot has them). A replica once lost every
/// such key (found by a full sync under a write load with short TTLs).
#[test]
fn expiries_before_a_replica_attaches_are_not_replayed_to_it() {
    let master = repl_moonshard(1, &["--io-threads", "1"]);
    let mut m = master.client();
    let replica = repl_moonshard(1, &["--io-threads", "1"]);
    let mut r = replica.client();
    // Only the commands below reap: no active expiry in between.
    assert_eq!(q(&mut m, "DEBUG SET-ACTIVE-EXPIRE 0"), "OK");
    for i in 0..20 {
        assert_eq!(q(&mut m, &format!("SET k{i} v PX 20")), "OK");
    }
    std::thread::sleep(Duration::from_millis(60));
    // Each SET finds its key expired: reaped, then written again.
    for i in 0..20 {
        assert_eq!(q(&mut m, &format!("SET k{i} again")), "OK");
    }
    assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    wait_until(10, "the link", || field_of(&mut r, "replication", "master_link_status") == "up");
    // The next writes on the master's (only) worker thread.
    assert_eq!(q(&mut m, "SET other 1"), "OK");
    assert_same(&mut m, &mut r, "after keys reaped before the replica came");
    assert_eq!(q(&mut r, "DBSIZE"), "21");
    assert_eq!(q(&mut r, "GET k7"), "again");
}

/// A master's PINGs and REPLCONF GETACKs reach its replicas (and count in
/// the offset) but not its AOF, as with Redis.
#[test]
fn replication_only_commands_stay_out_of_the_aof() {
    let master = repl_moonshard(2, &["--appendonly", "yes", "--repl-ping-replica-period", "1"]);
    let mut m = master.client();
    let Some(replica) = start_replica(&master) else { return };
    let mut r = replica.client();
    assert_eq!(q(&mut m, "SET a 1"), "OK");
    assert_eq!(q(&mut m, "WAIT 1 2000"), "1");
    let before = num(&mut m, "replication", "master_repl_offset");
    wait_until(5, "a PING", || num(&mut m, "replication", "master_repl_offset") > before);
    assert_eq!(q(&mut m, "SET b 2"), "OK");
    wait_until(5, "the replica", || q(&mut r, "GET b") == "2");
    let dir = master.dir.as_ref().expect("private dir").join("appendonlydir");
    let mut aof = String::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.to_string_lossy().ends_with(".incr.aof") {
            aof.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
        }
    }
    assert!(aof.contains("$1\r\nb\r\n"), "the writes are in the AOF: {aof:?}");
    assert!(!aof.contains("PING") && !aof.contains("GETACK"), "replication-only commands in the AOF: {aof:?}");
}

/// A replica under `maxmemory` keeps every key its master sends (`replica-ignore-maxmemory`, on by
/// default, as in Redis): evicting on its own would leave it with a dataset its master does not
/// have. With the setting off it evicts, as redis-server does.
#[test]
fn a_replica_over_maxmemory_keeps_its_masters_keys() {
    let master = repl_moonshard(SHARDS, &[]);
    let mut m = master.client();
    let port = master.port.to_string();
    let replica = repl_moonshard(
        SHARDS,
        &["--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru", "--replicaof", "127.0.0.1", &port],
    );
    let mut r = replica.client();
    let value = "v".repeat(1000);
    for batch in 0..20 {
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.cmd("SET").arg(format!("key:{batch}:{i}")).arg(&value).ignore();
        }
        let () = pipe.query(&mut m).unwrap();
    }
    assert_same(&mut m, &mut r, "over maxmemory");
    assert_eq!(q(&mut r, "DBSIZE"), "20000");
    assert_eq!(num(&mut r, "stats", "evicted_keys"), 0);
    assert!(num(&mut r, "memory", "used_memory") > 3 << 20);
    // Switched off, the replica's own eviction brings it under the limit.
    assert_eq!(q(&mut r, "CONFIG SET replica-ignore-maxmemory no"), "OK");
    wait_until(20, "the replica evicts", || num(&mut r, "stats", "evicted_keys") > 0);
}

/// `redis-cli --rdb` and `redis-cli --functions-rdb` (REPLCONF rdb-only and
/// rdb-filter-only) against moonshard: the files pass redis-check-rdb and
/// redis-server loads them with the keys and the function library, or the
/// library alone.
#[test]
fn redis_cli_rdb_and_functions_rdb_load_into_redis_server() {
    if !common::has_program("redis-cli") || !common::has_program("redis-check-rdb") {
        assert!(std::env::var("MOONSHARD_REQUIRE_REDIS").as_deref() != Ok("1"), "redis-tools are required");
        return;
    }
    let ms = repl_moonshard(2, &[]);
    let mut c = ms.client();
    let lib = "#!lua name=cli_lib\nredis.register_function('cli_f', function() return 'from moonshard' end)";
    assert_eq!(q_args(&mut c, &["FUNCTION", "LOAD", lib]), "cli_lib");
    for i in 0..50 {
        q_args(&mut c, &["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    q_args(&mut c, &["RPUSH", "list", "a", "b", "c"]);
    let dir = common::temp_dir("cli-rdb");
    for (flag, file, keys) in [("--functions-rdb", "functions.rdb", 0), ("--rdb", "all.rdb", 51)] {
        let path = dir.join(file);
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &ms.port.to_string(), flag])
            .arg(&path)
            .output()
            .expect("run redis-cli");
        let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "redis-cli {flag}: {text}");
        assert!(text.contains("Transfer finished with success"), "redis-cli {flag}: {text}");
        let check = std::process::Command::new("redis-check-rdb").arg(&path).output().expect("run redis-check-rdb");
        let report = String::from_utf8_lossy(&check.stdout).to_string();
        assert!(check.status.success() && report.contains("RDB looks OK"), "{flag}: {report}");
        // redis-server loads the file: the library, and the keys unless filtered out.
        let Some(r) = redis_server_with(&["--dir", dir.to_str().unwrap_or_default(), "--dbfilename", file]) else {
            return;
        };
        let mut rc = r.client();
        assert_eq!(q_args(&mut rc, &["DBSIZE"]), keys.to_string(), "{flag}");
        assert_eq!(q_args(&mut rc, &["FCALL", "cli_f", "0"]), "from moonshard", "{flag}");
        if keys > 0 {
            assert_eq!(q_args(&mut rc, &["LRANGE", "list", "0", "-1"]), "[a,b,c]", "{flag}");
        }
    }
    // The server goes on serving after the two RDB-only syncs.
    let mut c = ms.client();
    assert_eq!(q_args(&mut c, &["PING"]), "PONG");
}

fn q_args(c: &mut redis::Connection, args: &[&str]) -> String {
    common::show(run_str(c, args))
}

/// Redis 7.0's default save points on the replica: its full sync must not
/// save the emptied dataset over the payload it is about to load (a
/// replica with the defaults once loaded nothing), and a replica with
/// `appendonly yes` keeps what the sync brought across a restart (its AOF
/// is rewritten from the loaded dataset, as Redis restarts the AOF).
#[test]
fn replica_with_default_save_points_and_aof_keeps_the_synced_dataset() {
    const DEFAULT_SAVE: &str = "3600 1 300 100 60 10000";
    let (master, mut m, keys, mut rng) = loaded_master(31, 300);
    let port = master.port.to_string();
    for diskless in ["yes", "no"] {
        assert_eq!(q(&mut m, &format!("CONFIG SET repl-diskless-sync {diskless}")), "OK");
        let replica = repl_moonshard(2, &["--save", DEFAULT_SAVE, "--replicaof", "127.0.0.1", &port]);
        let mut r = replica.client();
        assert_same(&mut m, &mut r, &format!("replica with save points (diskless {diskless})"));
        assert_ne!(q(&mut r, "DBSIZE"), "0", "the replica loaded nothing");
    }

    let dir = common::temp_dir("replica-aof");
    let dir_s = dir.to_str().unwrap().to_string();
    let flags = ["--dir", dir_s.as_str(), "--appendonly", "yes", "--save", DEFAULT_SAVE];
    let mut args = flags.to_vec();
    args.extend_from_slice(&["--replicaof", "127.0.0.1", &port]);
    let replica = repl_moonshard(2, &args);
    let mut r = replica.client();
    load(&mut rng, &mut m, &keys, 50);
    assert_same(&mut m, &mut r, "replica with appendonly yes");
    // The rewrite that follows the sync ends before the restart.
    wait_until(20, "the AOF rewrite after the sync", || {
        field_of(&mut r, "persistence", "aof_rewrite_in_progress") == "0"
            && field_of(&mut r, "persistence", "aof_rewrite_scheduled") == "0"
            && num(&mut r, "persistence", "aof_rewrites") >= 1
    });
    assert_eq!(q(&mut r, "REPLICAOF NO ONE"), "OK");
    drop(r);
    drop(replica);
    let restarted = repl_moonshard(2, &flags);
    let mut r = restarted.client();
    wait_until(20, "loaded", || field_of(&mut r, "persistence", "loading") == "0");
    // (Compared until both agree: keys with short TTLs expire on both.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while digest(&mut r) != digest(&mut m) {
        if Instant::now() > deadline {
            panic!("the replica's AOF lost what the full sync brought: {:#?}", differing_keys(&mut m, &mut r));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(q(&mut r, "DBSIZE"), "0");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `bind-source-addr`: a replica connects to its master from that address,
/// which the master reports (INFO `slave0:ip=`), both ways with redis-server.
#[test]
fn replicas_connect_from_bind_source_addr() {
    // 127.0.0.2 is not a local client to protected mode.
    let Some(master) = repl_redis(&["--protected-mode", "no"]) else { return };
    let mut m = master.client();
    let replica = repl_moonshard(2, &[]);
    let mut r = replica.client();
    assert_eq!(q(&mut r, "CONFIG SET bind-source-addr 127.0.0.2"), "OK");
    assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    wait_until(10, "the moonshard replica to connect", || field_of(&mut m, "replication", "connected_slaves") == "1");
    let line = field_of(&mut m, "replication", "slave0");
    assert!(line.starts_with("ip=127.0.0.2,"), "redis-server master's slave0 line: {line}");

    let ours = repl_moonshard(2, &["--protected-mode", "no"]);
    let mut o = ours.client();
    let port = ours.port.to_string();
    let Some(theirs) = redis_server_with(&["--bind-source-addr", "127.0.0.2", "--replicaof", "127.0.0.1", &port])
    else {
        return;
    };
    let mut t = theirs.client();
    wait_until(10, "the redis-server replica to connect", || {
        field_of(&mut o, "replication", "connected_slaves") == "1"
    });
    let line = field_of(&mut o, "replication", "slave0");
    assert!(line.starts_with("ip=127.0.0.2,"), "moonshard master's slave0 line: {line}");
    assert_eq!(q(&mut o, "SET k v"), "OK");
    wait_until(10, "the write to reach the replica", || q(&mut t, "GET k") == "v");
}
