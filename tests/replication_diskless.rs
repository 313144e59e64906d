//! Full synchronization through the disk or the socket, both roles, with
//! redis-server 7.0 on the other side:
//! - master: `repl-diskless-sync yes` sends a replica that announced
//!   `capa eof` `$EOF:<40 chars>`, the RDB, and the mark again, writing no
//!   file; `no` (or a replica without `capa eof`) saves `dbfilename` and
//!   sends it as `$<len>`: the same framing redis-server chooses in each
//!   case. `repl-diskless-sync-delay` holds the transfer back, and
//!   `repl-diskless-sync-max-replicas` starts it as soon as that many wait.
//! - replica: `repl-diskless-load disabled` leaves the received payload as
//!   `dbfilename` (as a redis-server replica does), `on-empty-db` on an
//!   empty replica and `swapdb` load without touching the disk; the dataset
//!   equals the master's in every case (DEBUG DIGEST).

mod common;
use common::wait_until;

use common::{field_of, moonshard, q, redis_server_with, repl_moonshard, repl_redis, run_str, Proc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn load(c: &mut redis::Connection, tag: &str, n: usize) {
    for i in 0..n {
        let k = format!("{tag}:{}", i % 97);
        let args: Vec<String> = match i % 4 {
            0 => vec!["SET".into(), k, "x".repeat(i % 300)],
            1 => vec!["RPUSH".into(), format!("l:{k}"), i.to_string()],
            2 => vec!["HSET".into(), format!("h:{k}"), format!("f{}", i % 13), i.to_string()],
            _ => vec!["ZADD".into(), format!("z:{k}"), i.to_string(), format!("m{}", i % 11)],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(run_str(c, &args).is_ok());
    }
}

fn dump_exists(p: &Proc) -> bool {
    p.dir.as_ref().is_some_and(|d| d.join("dump.rdb").exists())
}

/// A raw full sync: REPLCONF (with `capa eof` when asked), PSYNC ? -1;
/// returns the payload's header line (`$EOF:<mark>` or `$<len>`) and
/// checks the payload's end (the mark, or exactly `len` bytes).
fn raw_sync_header(port: u16, eof: bool) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let mut read_until = |s: &mut TcpStream, got: &mut Vec<u8>, done: &dyn Fn(&[u8]) -> bool| {
        while !done(got) {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the master closed the link");
            got.extend_from_slice(&buf[..n]);
        }
    };
    let capa = if eof { "REPLCONF capa eof capa psync2\r\n" } else { "REPLCONF capa psync2\r\n" };
    s.write_all(capa.as_bytes()).unwrap();
    read_until(&mut s, &mut got, &|g| g.ends_with(b"\r\n"));
    got.clear();
    s.write_all(b"PSYNC ? -1\r\n").unwrap();
    let find = |g: &[u8], from: usize, what: &[u8]| g[from..].windows(what.len()).position(|w| w == what);
    read_until(&mut s, &mut got, &|g| {
        find(g, 0, b"+FULLRESYNC").and_then(|i| find(g, i, b"$")).is_some_and(|d| find(g, d, b"\r\n").is_some())
    });
    let dollar = find(&got, 0, b"$").unwrap();
    let end = dollar + find(&got, dollar, b"\r\n").unwrap();
    let header = String::from_utf8_lossy(&got[dollar..end]).into_owned();
    let body = end + 2;
    if let Some(mark) = header.strip_prefix("$EOF:") {
        assert_eq!(mark.len(), 40, "the mark is 40 characters");
        let mark = mark.as_bytes().to_vec();
        read_until(&mut s, &mut got, &|g| g.len() >= body + 40 && g.ends_with(&mark));
        assert!(got[body..].starts_with(b"REDIS"), "an RDB follows the mark");
        format!("$EOF:<{} chars>", mark.len())
    } else {
        let len: usize = header[1..].parse().unwrap();
        read_until(&mut s, &mut got, &|g| g.len() >= body + len);
        assert!(got[body..].starts_with(b"REDIS"));
        assert!(got.len() == body + len, "nothing follows the payload before the first ACK");
        "$<len>".into()
    }
}

#[test]
fn master_framing_and_files_match_redis() {
    let Some(theirs) = redis_server_with(&["--repl-diskless-sync-delay", "0"]) else { return };
    let ours = moonshard(&["--repl-diskless-sync-delay", "0", "--shards", "3"]);
    for p in [&ours, &theirs] {
        load(&mut p.client(), "a", 300);
    }
    // Diskless (the default) with capa eof; on disk without it.
    for eof in [true, false] {
        assert_eq!(raw_sync_header(ours.port, eof), raw_sync_header(theirs.port, eof), "capa eof: {eof}");
    }
    assert!(dump_exists(&ours) && dump_exists(&theirs), "the disk sync saved dbfilename on both");
    for p in [&ours, &theirs] {
        if let Some(d) = &p.dir {
            let _ = std::fs::remove_file(d.join("dump.rdb"));
        }
    }
    for p in [&ours, &theirs] {
        assert_eq!(raw_sync_header(p.port, true), "$EOF:<40 chars>");
        assert!(!dump_exists(p), "a diskless sync writes no file");
    }
    // repl-diskless-sync no: on disk whatever the replica can take.
    for p in [&ours, &theirs] {
        assert_eq!(q(&mut p.client(), "CONFIG SET repl-diskless-sync no"), "OK");
    }
    assert_eq!(raw_sync_header(ours.port, true), raw_sync_header(theirs.port, true));
    assert_eq!(raw_sync_header(ours.port, true), "$<len>");
    assert!(dump_exists(&ours) && dump_exists(&theirs), "the disk sync saved dbfilename");
}

/// `repl-diskless-sync-delay` holds a diskless transfer back;
/// `repl-diskless-sync-max-replicas` starts it once that many replicas wait.
#[test]
fn diskless_delay_and_max_replicas() {
    let master = moonshard(&["--repl-diskless-sync-delay", "2", "--shards", "2"]);
    let mut m = master.client();
    load(&mut m, "a", 200);
    let r1 = moonshard(&["--shards", "2"]);
    let mut c1 = r1.client();
    let start = Instant::now();
    assert_eq!(q(&mut c1, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    wait_until(10, "the delayed sync", || field_of(&mut c1, "replication", "master_link_status") == "up");
    assert!(start.elapsed() >= Duration::from_millis(1900), "the transfer waited the delay ({:?})", start.elapsed());
    assert_eq!(q(&mut c1, "DBSIZE"), q(&mut m, "DBSIZE"));

    // A long delay, but two replicas waiting start the transfer at once.
    assert_eq!(q(&mut m, "CONFIG SET repl-diskless-sync-delay 60"), "OK");
    assert_eq!(q(&mut m, "CONFIG SET repl-diskless-sync-max-replicas 2"), "OK");
    let Some(r2) = redis_server_with(&[]) else { return };
    let r3 = moonshard(&["--shards", "1"]);
    let start = Instant::now();
    for r in [&r2, &r3] {
        assert_eq!(q(&mut r.client(), &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    }
    for r in [&r2, &r3] {
        let mut c = r.client();
        wait_until(20, "the two replicas' transfer", || field_of(&mut c, "replication", "master_link_status") == "up");
        assert_eq!(q(&mut c, "DBSIZE"), q(&mut m, "DBSIZE"));
    }
    assert!(start.elapsed() < Duration::from_secs(30), "the transfer did not wait the 60 s delay");
}

/// A moonshard replica under each `repl-diskless-load`, following a
/// redis-server master (diskless, `$EOF:`) and a moonshard master on disk
/// (`$<len>`); a redis-server replica beside it for the file it leaves.
#[test]
fn replica_diskless_load_modes() {
    let Some(rmaster) = repl_redis(&[]) else { return };
    let mmaster = repl_moonshard(2, &["--repl-diskless-sync", "no"]);
    for (i, master) in [&rmaster, &mmaster].into_iter().enumerate() {
        let mut m = master.client();
        load(&mut m, &format!("m{i}"), 400);
        // (mode, whether the replica has data of its own, whether the payload goes through the disk)
        for (mode, data, on_disk) in [
            ("disabled", true, true),
            ("on-empty-db", true, true),
            ("on-empty-db", false, false),
            ("swapdb", true, false),
        ] {
            let replica = moonshard(&["--repl-diskless-load", mode, "--enable-debug-command", "yes", "--shards", "3"]);
            let mut r = replica.client();
            if data {
                assert_eq!(q(&mut r, "SET old 1"), "OK");
            }
            assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
            wait_until(10, "the sync", || {
                field_of(&mut r, "replication", "master_link_status") == "up"
                    && field_of(&mut r, "replication", "slave_repl_offset")
                        == field_of(&mut m, "replication", "master_repl_offset")
            });
            assert_eq!(q(&mut r, "DEBUG DIGEST"), q(&mut m, "DEBUG DIGEST"), "{mode} from master {i}");
            assert_eq!(q(&mut r, "EXISTS old"), "0");
            assert_eq!(dump_exists(&replica), on_disk, "{mode} (data: {data}): dbfilename written");
            // The stream goes on after the load.
            load(&mut m, &format!("m{i}{mode}"), 50);
            wait_until(10, "the stream after the load", || {
                field_of(&mut r, "replication", "slave_repl_offset")
                    == field_of(&mut m, "replication", "master_repl_offset")
            });
            assert_eq!(q(&mut r, "DEBUG DIGEST"), q(&mut m, "DEBUG DIGEST"), "{mode}: the stream after the load");
            load(&mut m, &format!("m{i}c"), 50);
        }
    }
    // A redis-server replica with repl-diskless-load disabled leaves the
    // payload as dbfilename too.
    let Some(rr) = redis_server_with(&[]) else { return };
    assert_eq!(q(&mut rr.client(), &format!("REPLICAOF 127.0.0.1 {}", mmaster.port)), "OK");
    let mut c = rr.client();
    wait_until(10, "the redis-server replica", || field_of(&mut c, "replication", "master_link_status") == "up");
    assert!(dump_exists(&rr));
}

/// Replicas waiting for a diskless sync at the same moment share one walk
/// of the dataset, as redis-server forks one child for all of them: one
/// "Starting BGSAVE for SYNC" line, `sync_full` counted per replica (as
/// Redis counts it), every replica equal to the master. Started by
/// `repl-diskless-sync-max-replicas` (deterministic), and by the delay
/// running out with a second replica arrived meanwhile (moonshard only).
#[test]
fn simultaneous_diskless_replicas_share_one_walk() {
    const LINE: &str = "Starting BGSAVE for SYNC with target: replicas sockets";
    let count = |log: &std::path::Path| std::fs::read_to_string(log).unwrap_or_default().matches(LINE).count();
    let rdir = common::temp_dir("shared-walk-redis");
    let rlog = rdir.join("redis.log");
    let rlog_arg = rlog.to_string_lossy().into_owned();
    let by_max = ["--repl-diskless-sync-delay", "60", "--repl-diskless-sync-max-replicas", "2"];
    let Some(theirs) = redis_server_with(
        &[&["--dir", rdir.to_str().unwrap(), "--logfile", &rlog_arg, "--enable-debug-command", "yes"][..], &by_max]
            .concat(),
    ) else {
        return;
    };
    let (ours, olog) =
        common::moonshard_logged(&[&["--enable-debug-command", "yes", "--shards", "2"][..], &by_max].concat());
    let (ours_delay, dlog) = common::moonshard_logged(&[
        "--enable-debug-command",
        "yes",
        "--shards",
        "3",
        "--repl-diskless-sync-delay",
        "3",
    ]);
    for (master, log) in [(&theirs, &rlog), (&ours, &olog), (&ours_delay, &dlog)] {
        let mut m = master.client();
        load(&mut m, "s", 600);
        let replicas: Vec<Proc> = (0..2)
            .map(|i| moonshard(&["--enable-debug-command", "yes", "--shards", if i == 0 { "1" } else { "4" }]))
            .collect();
        for r in &replicas {
            assert_eq!(q(&mut r.client(), &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
        }
        for r in &replicas {
            let mut c = r.client();
            wait_until(30, "both replicas' transfer", || {
                field_of(&mut c, "replication", "master_link_status") == "up"
                    && field_of(&mut c, "replication", "slave_repl_offset")
                        == field_of(&mut m, "replication", "master_repl_offset")
            });
            assert_eq!(q(&mut c, "DEBUG DIGEST"), q(&mut m, "DEBUG DIGEST"));
        }
        assert_eq!(count(log), 1, "one walk for both replicas ({})", log.display());
        assert_eq!(field_of(&mut m, "stats", "sync_full"), "2");
        // The stream goes on to both.
        load(&mut m, "t", 100);
        for r in &replicas {
            let mut c = r.client();
            wait_until(20, "the stream after the shared sync", || {
                field_of(&mut c, "replication", "slave_repl_offset")
                    == field_of(&mut m, "replication", "master_repl_offset")
            });
            assert_eq!(q(&mut c, "DEBUG DIGEST"), q(&mut m, "DEBUG DIGEST"));
        }
    }
    drop(theirs);
    let _ = std::fs::remove_dir_all(&rdir);
}

/// A replica that stops reading in the middle of a shared diskless transfer
/// is given up after `repl-timeout` (Redis's "Disconnecting timedout replica
/// (streaming sync)"), and the replica sharing the walk with it completes.
#[test]
fn a_stalled_replica_does_not_hold_a_shared_walk_back() {
    let (master, log) = common::moonshard_logged(&[
        "--enable-debug-command",
        "yes",
        "--repl-diskless-sync-delay",
        "60",
        "--repl-diskless-sync-max-replicas",
        "2",
        "--repl-timeout",
        "2",
        "--rdbcompression",
        "no",
    ]);
    let mut m = master.client();
    // Far more than the socket buffers and the walk's queue hold (~30 MB).
    assert_eq!(q(&mut m, "DEBUG POPULATE 100000 big 300"), "OK");
    // The stalled one: asks for a diskless sync, then never reads.
    let mut stalled = TcpStream::connect(("127.0.0.1", master.port)).unwrap();
    stalled.write_all(b"REPLCONF listening-port 1\r\nREPLCONF capa eof capa psync2\r\nPSYNC ? -1\r\n").unwrap();
    let replica = moonshard(&["--enable-debug-command", "yes"]);
    let mut r = replica.client();
    assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    wait_until(60, "the other replica's transfer", || {
        field_of(&mut r, "replication", "master_link_status") == "up"
            && field_of(&mut r, "replication", "slave_repl_offset")
                == field_of(&mut m, "replication", "master_repl_offset")
    });
    assert_eq!(q(&mut r, "DEBUG DIGEST"), q(&mut m, "DEBUG DIGEST"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(text.matches("Starting BGSAVE for SYNC with target: replicas sockets").count(), 1, "one shared walk");
    assert!(text.contains("Disconnecting timedout replica (streaming sync): 127.0.0.1:1"), "{text}");
    drop(stalled);
}
