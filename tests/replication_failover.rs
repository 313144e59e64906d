//! FAILOVER [TO host port] [FORCE] [TIMEOUT ms] | FAILOVER ABORT, against
//! redis-server 7.0:
//! - the errors and the states (`master_failover_state`) reply for reply
//!   with redis-server, in the same topology on both sides: a master with a
//!   hand-driven replica (a raw connection that took a full sync and never
//!   acknowledges, so a failover to it waits);
//! - writes are held back while the failover waits, and go on after ABORT
//!   or a timeout;
//! - a real failover in each pairing: moonshard master and moonshard
//!   replica, moonshard master and redis-server replica, redis-server
//!   master and moonshard replica. The roles swap, the old master continues
//!   the history with a partial resync (no full sync), the datasets are
//!   identical (DEBUG DIGEST) and writes on the new master reach the old one.

mod common;
use common::info_num as num;
use common::wait_until;

use common::{field_of, free_port, moonshard, q, redis_server_with, repl_moonshard, repl_redis, run_str, show, Proc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `cmd` on both connections (moonshard's, redis-server's): the replies
/// must be equal; returns moonshard's.
fn both(a: &mut redis::Connection, b: &mut redis::Connection, cmd: &str) -> String {
    let (x, y) = (q(a, cmd), q(b, cmd));
    assert_eq!(x, y, "moonshard and redis-server differ on {cmd}");
    x
}

/// A replica driven by hand: announces `port`, asks for a full sync, reads
/// the RDB, then stays connected without ever acknowledging.
struct SilentReplica {
    _s: TcpStream,
}

fn silent_replica(master: u16, port: u16) -> SilentReplica {
    silent_replica_announcing(master, port, None)
}

/// `silent_replica`, announcing `ip` (REPLCONF ip-address) when given.
fn silent_replica_announcing(master: u16, port: u16, ip: Option<&str>) -> SilentReplica {
    let mut s = TcpStream::connect(("127.0.0.1", master)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let read_until = |s: &mut TcpStream, got: &mut Vec<u8>, done: &dyn Fn(&[u8]) -> bool| {
        let mut buf = [0u8; 65536];
        while !done(got) {
            let n = s.read(&mut buf).unwrap_or_else(|e| panic!("{e}: got {:?}", String::from_utf8_lossy(got)));
            assert!(n > 0, "the master closed the link");
            got.extend_from_slice(&buf[..n]);
        }
    };
    // (PSYNC must not follow a reply still unsent: one at a time.)
    s.write_all(format!("REPLCONF listening-port {port}\r\n").as_bytes()).unwrap();
    read_until(&mut s, &mut got, &|g| g.ends_with(b"\r\n"));
    if let Some(ip) = ip {
        s.write_all(format!("REPLCONF ip-address {ip}\r\n").as_bytes()).unwrap();
        read_until(&mut s, &mut got, &|g| g.len() >= 10);
        assert_eq!(got, b"+OK\r\n+OK\r\n");
        // (One +OK stays: the reads below count it.)
        got.truncate(5);
    }
    s.write_all(b"PSYNC ? -1\r\n").unwrap();
    // +OK, +FULLRESYNC id offset, then $len and the RDB (or $EOF:<mark>...<mark>).
    read_until(&mut s, &mut got, &|g| g.windows(2).filter(|w| w == b"\r\n").count() >= 3);
    let find = |from: usize, what: &[u8]| got[from..].windows(what.len()).position(|w| w == what).map(|i| i + from);
    let after_full = find(0, b"+FULLRESYNC").expect("a full sync");
    let bulk = find(after_full, b"$").expect("the RDB's header");
    let header_end = find(bulk, b"\r\n").unwrap();
    let header = String::from_utf8_lossy(&got[bulk + 1..header_end]).into_owned();
    if let Some(mark) = header.strip_prefix("EOF:") {
        let mark = mark.as_bytes().to_vec();
        read_until(&mut s, &mut got, &|g| g.len() > header_end + 2 + mark.len() && g.ends_with(&mark));
    } else {
        let len: usize = header.parse().unwrap();
        read_until(&mut s, &mut got, &|g| g.len() >= header_end + 2 + len);
    }
    SilentReplica { _s: s }
}

/// A master with a silent replica, for moonshard and for redis-server:
/// the failover's errors and states answer alike.
#[test]
fn failover_errors_and_states_match_redis() {
    let Some(theirs) = repl_redis(&[]) else { return };
    let ours = repl_moonshard(3, &[]);
    let (mut a, mut b) = (ours.client(), theirs.client());
    // Argument errors, and no replica yet.
    for cmd in [
        "FAILOVER",
        "FAILOVER ABORT",
        "FAILOVER abort x",
        "FAILOVER TIMEOUT 0",
        "FAILOVER TIMEOUT -5",
        "FAILOVER TIMEOUT x",
        "FAILOVER TIMEOUT",
        "FAILOVER TO 127.0.0.1",
        "FAILOVER TO 127.0.0.1 x",
        "FAILOVER TO 127.0.0.1 1 TO 127.0.0.1 2",
        "FAILOVER FORCE FORCE",
        "FAILOVER TIMEOUT 10 TIMEOUT 10",
        "FAILOVER nosuch",
        "FAILOVER FORCE",
    ] {
        both(&mut a, &mut b, cmd);
    }
    assert_eq!(both(&mut a, &mut b, "SET k v"), "OK");
    let port = free_port();
    let _ra = silent_replica(ours.port, port);
    let _rb = silent_replica(theirs.port, port);
    wait_until(5, "the replicas online", || {
        field_of(&mut a, "replication", "slave0").contains("state=online")
            && field_of(&mut b, "replication", "slave0").contains("state=online")
    });
    // (The replicas never acknowledge: past this write they lag for good.)
    assert_eq!(both(&mut a, &mut b, "SET k2 v"), "OK");
    for cmd in [
        "FAILOVER FORCE",
        "FAILOVER FORCE TIMEOUT 100",
        &format!("FAILOVER TO 127.0.0.1 {port} FORCE"),
        "FAILOVER TO 127.0.0.1 1",
        "FAILOVER TO 10.1.1.1 1 TIMEOUT 5",
        "FAILOVER ABORT",
    ] {
        both(&mut a, &mut b, cmd);
    }
    let state = |c: &mut redis::Connection| field_of(c, "replication", "master_failover_state");
    for c in [&mut a, &mut b] {
        assert_eq!(state(c), "no-failover");
    }
    // The silent replica never catches up: the failover waits, writes are
    // held back, then ABORT lets them go on.
    assert_eq!(both(&mut a, &mut b, &format!("FAILOVER TO 127.0.0.1 {port}")), "OK");
    for c in [&mut a, &mut b] {
        assert_eq!(state(c), "waiting-for-sync");
    }
    for cmd in ["FAILOVER", "FAILOVER TO 127.0.0.1 1", "REPLICAOF 127.0.0.1 1", "REPLICAOF NO ONE", "GET k", "ROLE"] {
        both(&mut a, &mut b, cmd);
    }
    for p in [&ours, &theirs] {
        let writer = held_write(p, "SET held 1");
        std::thread::sleep(Duration::from_millis(300));
        assert!(!writer.is_finished(), "a write waits while the failover waits (port {})", p.port);
        let mut c = p.client();
        assert_eq!(q(&mut c, "FAILOVER ABORT"), "OK");
        assert_eq!(writer.join().unwrap(), "OK");
        assert_eq!(state(&mut c), "no-failover");
        assert_eq!(q(&mut c, "FAILOVER ABORT"), "ERR No failover in progress.");
    }
    // With a timeout and no FORCE the failover gives up by itself.
    assert_eq!(both(&mut a, &mut b, &format!("FAILOVER TO 127.0.0.1 {port} TIMEOUT 200")), "OK");
    for p in [&ours, &theirs] {
        let start = Instant::now();
        assert_eq!(held_write(p, "SET after:timeout 1").join().unwrap(), "OK");
        assert!(start.elapsed() < Duration::from_secs(3));
    }
    for c in [&mut a, &mut b] {
        wait_until(5, "the failover to give up", || state(c) == "no-failover");
    }
    both(&mut a, &mut b, "ROLE");
    both(&mut a, &mut b, "GET after:timeout");
}

/// A write sent on a connection of its own; the thread answers its reply.
fn held_write(p: &Proc, cmd: &str) -> std::thread::JoinHandle<String> {
    let mut c = p.client();
    let cmd = cmd.to_string();
    std::thread::spawn(move || q(&mut c, &cmd))
}

fn load(c: &mut redis::Connection, tag: &str, n: usize) {
    for i in 0..n {
        let k = format!("{tag}:{}", i % 37);
        let args: Vec<String> = match i % 5 {
            0 => vec!["SET".into(), k, i.to_string()],
            1 => vec!["RPUSH".into(), format!("l:{k}"), i.to_string()],
            2 => vec!["HSET".into(), format!("h:{k}"), format!("f{}", i % 7), i.to_string()],
            3 => vec!["ZADD".into(), format!("z:{k}"), i.to_string(), format!("m{}", i % 11)],
            _ => vec!["INCRBY".into(), format!("n:{k}"), i.to_string()],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(run_str(c, &args).is_ok());
    }
}

/// Waits until `replica` follows `master` with the whole stream applied
/// and both datasets have the same digest.
#[track_caller]
fn assert_in_sync(master: &mut redis::Connection, replica: &mut redis::Connection, what: &str) {
    wait_until(10, what, || {
        field_of(replica, "replication", "master_link_status") == "up"
            && field_of(master, "replication", "master_repl_offset")
                == field_of(replica, "replication", "slave_repl_offset")
    });
    if q(master, "DEBUG DIGEST") != q(replica, "DEBUG DIGEST") {
        panic!("{what}: digests differ: {:?}", differing_keys(master, replica));
    }
}

/// The keys whose values differ (or exist on one side only).
fn differing_keys(a: &mut redis::Connection, b: &mut redis::Connection) -> Vec<String> {
    let keys = |c: &mut redis::Connection| -> std::collections::BTreeSet<String> {
        match run_str(c, &["KEYS", "*"]) {
            Ok(redis::Value::Array(v)) => v
                .into_iter()
                .filter_map(|k| match k {
                    redis::Value::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    _ => None,
                })
                .collect(),
            _ => Default::default(),
        }
    };
    let all: std::collections::BTreeSet<String> = keys(a).union(&keys(b)).cloned().collect();
    all.into_iter()
        .filter_map(|k| {
            let (x, y) = (q(a, &format!("DEBUG DIGEST-VALUE {k}")), q(b, &format!("DEBUG DIGEST-VALUE {k}")));
            (x != y).then(|| format!("{k}: {x} / {y}"))
        })
        .collect()
}

/// Master `m` (port mp) fails over to replica `r` (port rp): the roles swap,
/// `m` continues with a partial resync, the data is the same both ways.
fn fail_over_and_check(m: &Proc, r: &Proc, failover: &str) {
    let (mut mc, mut rc) = (m.client(), r.client());
    assert_eq!(q(&mut rc, &format!("REPLICAOF 127.0.0.1 {}", m.port)), "OK");
    load(&mut mc, "a", 300);
    assert_in_sync(&mut mc, &mut rc, "the replica before the failover");
    let (old_id, full) = (field_of(&mut mc, "replication", "master_replid"), num(&mut rc, "stats", "sync_full"));
    let writer = {
        // Writes issued while the failover runs wait, then find a replica.
        let mut c = m.client();
        std::thread::spawn(move || {
            let mut replies = Vec::new();
            for i in 0..20 {
                replies.push(show(run_str(&mut c, &["SET", &format!("during:{i}"), "x"])));
                std::thread::sleep(Duration::from_millis(10));
            }
            replies
        })
    };
    assert_eq!(q(&mut mc, failover), "OK");
    wait_until(10, "the roles to swap", || {
        field_of(&mut rc, "replication", "role") == "master"
            && field_of(&mut mc, "replication", "role") == "slave"
            && field_of(&mut mc, "replication", "master_failover_state") == "no-failover"
            && field_of(&mut mc, "replication", "master_link_status") == "up"
    });
    assert_eq!(field_of(&mut mc, "replication", "master_port"), r.port.to_string());
    assert_eq!(field_of(&mut rc, "replication", "master_replid2"), old_id, "the new master continues the history");
    assert_eq!(num(&mut rc, "stats", "sync_partial_ok"), 1, "the old master continued with a partial resync");
    assert_eq!(num(&mut rc, "stats", "sync_full"), full, "no full sync");
    for reply in writer.join().unwrap() {
        assert!(
            reply == "OK" || reply == "READONLY You can't write against a read only replica.",
            "a write during the failover answered {reply}"
        );
    }
    assert_eq!(q(&mut mc, "SET x 1"), "READONLY You can't write against a read only replica.");
    load(&mut rc, "b", 300);
    assert_in_sync(&mut rc, &mut mc, "the old master following the new one");
    assert_eq!(field_of(&mut mc, "replication", "master_replid"), field_of(&mut rc, "replication", "master_replid"));
}

#[test]
fn moonshard_master_fails_over_to_moonshard_replica() {
    let (m, r) = (repl_moonshard(3, &[]), repl_moonshard(2, &[]));
    fail_over_and_check(&m, &r, "FAILOVER");
}

#[test]
fn moonshard_master_fails_over_to_redis_server_replica() {
    let Some(r) = repl_redis(&[]) else { return };
    let m = repl_moonshard(3, &[]);
    fail_over_and_check(&m, &r, &format!("FAILOVER TO 127.0.0.1 {} TIMEOUT 5000", r.port));
}

#[test]
fn redis_server_master_fails_over_to_moonshard_replica() {
    let Some(m) = repl_redis(&[]) else { return };
    let r = repl_moonshard(3, &[]);
    fail_over_and_check(&m, &r, &format!("FAILOVER TO 127.0.0.1 {} FORCE TIMEOUT 5000", r.port));
}

/// FAILOVER TO host port names a replica by the address it announced
/// (`replica-announce-ip`, sent as REPLCONF ip-address), else by its
/// connection's address, compared as text without case, and by its
/// listening port: the same replies as redis-server's. INFO shows the
/// announced address.
#[test]
fn failover_to_matches_the_announced_address() {
    let Some(theirs) = repl_redis(&[]) else { return };
    let ours = repl_moonshard(3, &[]);
    let (mut a, mut b) = (ours.client(), theirs.client());
    // The address's length limit (on a connection of its own: it announces).
    for len in [255, 256] {
        let cmd = format!("REPLCONF ip-address {}", "h".repeat(len));
        let (mut x, mut y) = (ours.client(), theirs.client());
        both(&mut x, &mut y, &cmd);
    }
    let (p1, p2) = (free_port(), free_port());
    let _replicas = [ours.port, theirs.port]
        .map(|m| (silent_replica_announcing(m, p1, Some("replica.example")), silent_replica_announcing(m, p2, None)));
    let addr = |c: &mut redis::Connection, n: usize| {
        let line = field_of(c, "replication", &format!("slave{n}"));
        line.split(",state=").next().unwrap_or("").to_string()
    };
    wait_until(5, "the replicas online", || {
        [&mut a, &mut b]
            .into_iter()
            .all(|c| (0..2).all(|n| field_of(c, "replication", &format!("slave{n}")).contains("state=online")))
    });
    // (The replicas never acknowledge: past this write they lag for good.)
    assert_eq!(both(&mut a, &mut b, "SET k v"), "OK");
    for n in 0..2 {
        assert_eq!(addr(&mut a, n), addr(&mut b, n));
    }
    assert_eq!(addr(&mut a, 0), format!("ip=replica.example,port={p1}"));
    assert_eq!(addr(&mut a, 1), format!("ip=127.0.0.1,port={p2}"));
    for cmd in [
        format!("FAILOVER TO 127.0.0.1 {p1}"),
        format!("FAILOVER TO replica.example {p2}"),
        format!("FAILOVER TO localhost {p2}"),
        format!("FAILOVER TO replica.example.com {p1}"),
    ] {
        assert_eq!(both(&mut a, &mut b, &cmd), "ERR FAILOVER target HOST and PORT is not a replica.");
    }
    // Each failover waits (for a replica that never catches up) until aborted.
    for cmd in [format!("FAILOVER TO REPLICA.example {p1}"), format!("FAILOVER TO 127.0.0.1 {p2}")] {
        assert_eq!(both(&mut a, &mut b, &cmd), "OK");
        for c in [&mut a, &mut b] {
            assert_eq!(field_of(c, "replication", "master_failover_state"), "waiting-for-sync");
        }
        assert_eq!(both(&mut a, &mut b, "FAILOVER ABORT"), "OK");
    }
}

/// Real failovers to a replica announcing `localhost`, named so in FAILOVER
/// TO: the master matches it and connects to it by that name.
#[test]
fn failover_to_an_announced_name_completes() {
    let announcing = ["--replica-announce-ip", "localhost"];
    // redis-server master, moonshard replica (which sends REPLCONF ip-address).
    if let Some(m) = repl_redis(&[]) {
        let r = moonshard(
            &[&["--repl-diskless-sync-delay", "0", "--enable-debug-command", "yes"][..], &announcing].concat(),
        );
        fail_over_and_check(&m, &r, &format!("FAILOVER TO localhost {} TIMEOUT 5000", r.port));
    }
    // moonshard master, redis-server replica.
    let m = repl_moonshard(3, &[]);
    if let Some(r) = repl_redis(&announcing) {
        fail_over_and_check(&m, &r, &format!("FAILOVER TO LOCALHOST {} TIMEOUT 5000", r.port));
    }
    // moonshard both sides.
    let (m, r) = (repl_moonshard(3, &[]), repl_moonshard(2, &announcing));
    fail_over_and_check(&m, &r, &format!("FAILOVER TO localhost {}", r.port));
}

/// `replica-announce-ip` / `replica-announce-port` reach the master (INFO's
/// slave line), both ways with redis-server.
#[test]
fn replicas_announce_their_address_and_port() {
    let announcing = ["--replica-announce-ip", "replica.example", "--replica-announce-port", "1234"];
    let Some(rm) = repl_redis(&[]) else { return };
    let mm = repl_moonshard(3, &[]);
    let ours = moonshard(&announcing);
    let Some(theirs) = redis_server_with(&announcing) else { return };
    for (master, replica) in [(&rm, &ours), (&mm, &theirs)] {
        assert_eq!(q(&mut replica.client(), &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
        let mut c = master.client();
        wait_until(10, "the replica online", || {
            field_of(&mut c, "replication", "slave0").starts_with("ip=replica.example,port=1234,state=online")
        });
    }
}
