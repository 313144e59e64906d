//! INFO's fields against a real redis-server 7.0, section by section: a
//! master and its replica on each side, both fresh and then after the same
//! workload (keys with TTLs, EVAL, FUNCTION LOAD and FCALL, an error, a
//! BGSAVE, the replica attached and in sync). Every field redis-server
//! reports in the sections below must be in moonshard's INFO or on the
//! commented omission list, and the fields that used to be constants show
//! the truth (replication bytes and buffers, the main thread's CPU, the
//! link's down time). Also: a replica of a dead port logs, on every try,
//! the lines Redis logs, at Redis's cadence.

mod common;

use common::{run_str, wait_until, Proc};
use redis::Value;
use std::time::Duration;

/// The sections compared.
const SECTIONS: &[&str] =
    &["Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU", "Modules", "Errorstats", "Keyspace"];

/// Fields redis-server reports that moonshard leaves out, and why: each
/// could only be a placeholder here.
const OMITTED: &[(&str, &str, &str)] = &[
    ("Server", "gcc_version", "moonshard is built by rustc; no C compiler is involved"),
    (
        "Memory",
        "used_memory_vm_functions",
        "functions and EVAL scripts share each shard's Lua VM: its memory cannot be split between them \
         (all of it is used_memory_vm_eval, and used_memory_vm_total equals it)",
    ),
    ("Stats", "reply_buffer_shrinks", "the reply buffer has no resize policy to count (a plain growable buffer)"),
    ("Stats", "reply_buffer_expands", "as reply_buffer_shrinks"),
];

use common::{parse_info as parse, InfoSections as Info};

fn info(p: &Proc) -> Info {
    match run_str(&mut p.client(), &["INFO", "everything"]) {
        Ok(Value::BulkString(b)) => parse(&String::from_utf8_lossy(&b)),
        Ok(Value::VerbatimString { text, .. }) => parse(&text),
        other => panic!("INFO gave {other:?}"),
    }
}

fn field(i: &Info, section: &str, name: &str) -> String {
    i.get(section).and_then(|s| s.get(name)).cloned().unwrap_or_else(|| panic!("no {section}/{name} in {i:?}"))
}

fn num(i: &Info, section: &str, name: &str) -> f64 {
    let v = field(i, section, name);
    v.parse().unwrap_or_else(|_| panic!("{section}/{name} = {v} is not a number"))
}

/// The fields of `theirs` (in the compared sections) that `ours` lacks and
/// the omission list does not name, with the section when it is missing.
fn missing(theirs: &Info, ours: &Info, what: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for section in SECTIONS {
        let Some(fields) = theirs.get(*section) else {
            problems.push(format!("{what}: redis-server has no section {section}"));
            continue;
        };
        let Some(mine) = ours.get(*section) else {
            problems.push(format!("{what}: section {section} missing"));
            continue;
        };
        for name in fields.keys() {
            // The client library's handshake sends CLIENT SETINFO (Redis
            // 7.2's), which redis-server 7.0 refuses with ERR and moonshard
            // accepts: that line depends on the client, not on the server.
            if *section == "Errorstats" && name == "errorstat_ERR" {
                continue;
            }
            if !mine.contains_key(name) && !OMITTED.iter().any(|(s, n, _)| s == section && n == name) {
                problems.push(format!("{what}: {section}/{name} missing (redis-server: {})", fields[name]));
            }
        }
    }
    // The list stays true: a field moonshard reports comes off it.
    for (s, n, _) in OMITTED {
        if ours.get(*s).is_some_and(|m| m.contains_key(*n)) {
            problems.push(format!("{what}: {s}/{n} is on the omission list but reported"));
        }
    }
    problems
}

/// The same workload on a master (its replica attached before).
fn workload(p: &Proc) {
    let mut c = p.client();
    for args in [
        &["SET", "k", "v"][..],
        &["SET", "t", "v", "EX", "100"],
        &["HSET", "h", "f", "v"],
        &["GET", "k"],
        &["GET", "nosuch"],
        &["LPUSH", "k", "x"],
        &["EVAL", "return redis.call('get', KEYS[1])", "1", "k"],
        &["FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return 1 end)"],
        &["FCALL", "f", "0"],
    ] {
        let _ = run_str(&mut c, args);
    }
    // The replica's full sync may still count as a save in progress for a
    // moment (redis-server reaps its child in its cron, up to 100 ms later).
    wait_until(30, "the full sync's save to end", || field(&info(p), "Persistence", "rdb_bgsave_in_progress") == "0");
    run_str(&mut c, &["BGSAVE"]).expect("BGSAVE");
    wait_until(30, "the BGSAVE to end", || {
        let i = info(p);
        field(&i, "Persistence", "rdb_bgsave_in_progress") == "0" && num(&i, "Persistence", "rdb_saves") >= 1.0
    });
}

/// Makes `replica` follow `master` and waits for the link to be up with
/// the replica at the master's offset.
fn attach(replica: &Proc, master: &Proc) {
    run_str(&mut replica.client(), &["REPLICAOF", "127.0.0.1", &master.port.to_string()]).expect("REPLICAOF");
    wait_until(60, "the replica to be in sync", || {
        let (r, m) = (info(replica), info(master));
        field(&r, "Replication", "master_link_status") == "up"
            && field(&r, "Replication", "slave_repl_offset") == field(&m, "Replication", "master_repl_offset")
    });
}

#[test]
fn every_redis_field_is_reported_fresh_and_after_a_workload() {
    let Some(their_master) = common::repl_redis(&[]) else { return };
    let Some(their_replica) = common::repl_redis(&[]) else { return };
    let our_master = common::repl_moonshard(4, &[]);
    let our_replica = common::repl_moonshard(2, &[]);
    let mut problems = missing(&info(&their_master), &info(&our_master), "fresh");
    attach(&their_replica, &their_master);
    attach(&our_replica, &our_master);
    workload(&their_master);
    workload(&our_master);
    // One error on both, so that Errorstats has a line to compare.
    for p in [&their_master, &our_master] {
        let _ = run_str(&mut p.client(), &["INCR", "h"]);
    }
    for (r, m) in [(&their_replica, &their_master), (&our_replica, &our_master)] {
        wait_until(30, "the replica to apply the workload", || {
            field(&info(r), "Replication", "slave_repl_offset") == field(&info(m), "Replication", "master_repl_offset")
        });
    }
    let (tm, om) = (info(&their_master), info(&our_master));
    let (tr, or) = (info(&their_replica), info(&our_replica));
    problems.extend(missing(&tm, &om, "master"));
    problems.extend(missing(&tr, &or, "replica"));
    assert!(problems.is_empty(), "INFO lacks redis-server's fields: {problems:#?}");

    // The fields that were constants, now from real state.
    assert!(num(&om, "Stats", "total_net_repl_output_bytes") > 0.0, "the master sent the snapshot and stream");
    assert!(num(&or, "Stats", "total_net_repl_input_bytes") > 0.0, "the replica received them");
    assert_eq!(num(&om, "Stats", "total_net_repl_input_bytes"), 0.0, "{om:?}");
    assert_eq!(num(&or, "Stats", "total_net_repl_output_bytes"), 0.0, "{or:?}");
    // As Redis 7.0: the stream to a replica counts in the replication
    // bytes and in the network bytes too, on both ends.
    let big = "x".repeat(1_000_000);
    for (m, r) in [(&their_master, &their_replica), (&our_master, &our_replica)] {
        let (m0, r0) = (info(m), info(r));
        run_str(&mut m.client(), &["SET", "big", &big]).expect("SET");
        wait_until(30, "the replica to apply the big value", || {
            field(&info(r), "Replication", "slave_repl_offset") == field(&info(m), "Replication", "master_repl_offset")
        });
        let (m1, r1) = (info(m), info(r));
        let moved = |a: &Info, b: &Info, name: &str| num(b, "Stats", name) - num(a, "Stats", name);
        for (what, a, b, names) in [
            ("master", &m0, &m1, ["total_net_repl_output_bytes", "total_net_output_bytes"]),
            ("replica", &r0, &r1, ["total_net_repl_input_bytes", "total_net_input_bytes"]),
        ] {
            for name in names {
                let n = moved(a, b, name);
                assert!((1_000_000.0..1_500_000.0).contains(&n), "{what}'s {name} moved by {n} for a 1 MB write");
            }
        }
    }
    for i in [&om, &or] {
        assert!(num(i, "Memory", "mem_replication_backlog") > 0.0, "the backlog holds the stream");
        assert!(num(i, "Memory", "mem_total_replication_buffers") >= num(i, "Memory", "mem_replication_backlog"));
        assert_eq!(field(i, "Persistence", "async_loading"), "0");
        assert_eq!(field(i, "Stats", "unexpected_error_replies"), "0");
        // The runtime threads are part of the process.
        for kind in ["sys", "user"] {
            let main = num(i, "CPU", &format!("used_cpu_{kind}_main_thread"));
            let all = num(i, "CPU", &format!("used_cpu_{kind}"));
            assert!(main >= 0.0 && main <= all + 0.02, "used_cpu_{kind}_main_thread {main} > used_cpu_{kind} {all}");
        }
    }
    // A script busy for 400 ms runs on a runtime thread: the main thread's
    // figures take most of what the process spent meanwhile (on a loaded
    // machine the script may get less than 400 ms of CPU).
    let main_cpu = |i: &Info| num(i, "CPU", "used_cpu_user_main_thread") + num(i, "CPU", "used_cpu_sys_main_thread");
    let all_cpu = |i: &Info| num(i, "CPU", "used_cpu_user") + num(i, "CPU", "used_cpu_sys");
    let busy = "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] \
                while true do t = redis.call('TIME') if t[1] * 1e6 + t[2] - s > 400000 then return 1 end end";
    let before = info(&our_master);
    run_str(&mut our_master.client(), &["EVAL", busy, "0"]).expect("the busy script");
    let after = info(&our_master);
    let (main, all) = (main_cpu(&after) - main_cpu(&before), all_cpu(&after) - all_cpu(&before));
    assert!(all >= 0.05 && main >= all * 0.7 - 0.03, "the process spent {all} s, its main thread {main} s");
    assert!(num(&om, "Memory", "mem_clients_slaves") > 0.0, "the replica's connection");
    assert_eq!(num(&or, "Memory", "mem_clients_slaves"), 0.0);
    assert_eq!(num(&om, "Replication", "connected_slaves"), num(&tm, "Replication", "connected_slaves"));
    // Memory figures add up as Redis's do.
    assert_eq!(
        num(&om, "Memory", "used_memory_scripts"),
        num(&om, "Memory", "used_memory_scripts_eval") + num(&om, "Memory", "used_memory_functions")
    );
    assert!(num(&om, "Memory", "used_memory_vm_total") >= num(&om, "Memory", "used_memory_vm_eval"));
    for i in [&tm, &om] {
        assert!(i["Errorstats"].contains_key("errorstat_WRONGTYPE"), "{:?}", i["Errorstats"]);
    }
}

#[test]
fn a_replica_that_never_linked_shows_no_down_time_as_redis() {
    let Some(theirs) = common::repl_redis(&[]) else { return };
    let ours = common::repl_moonshard(2, &[]);
    let dead = common::free_port().to_string();
    for p in [&theirs, &ours] {
        run_str(&mut p.client(), &["REPLICAOF", "127.0.0.1", &dead]).expect("REPLICAOF");
    }
    std::thread::sleep(Duration::from_millis(1200));
    for p in [&theirs, &ours] {
        let i = info(p);
        assert_eq!(field(&i, "Replication", "master_link_status"), "down");
        assert_eq!(field(&i, "Replication", "master_link_down_since_seconds"), "-1", "{:?}", i["Replication"]);
        assert_eq!(field(&i, "Replication", "replica_announced"), "1");
        run_str(&mut p.client(), &["CONFIG", "SET", "replica-announced", "no"]).expect("CONFIG SET");
        assert_eq!(field(&info(p), "Replication", "replica_announced"), "0");
    }
}

#[test]
fn migrate_keeps_its_connection_as_redis_counts_it() {
    let Some(theirs) = common::redis_server() else { return };
    let Some(target) = common::redis_server() else { return };
    let ours = common::moonshard(&["--shards", "2"]);
    for (p, key) in [(&theirs, "a"), (&ours, "b")] {
        let mut c = p.client();
        assert_eq!(num(&info(p), "Stats", "migrate_cached_sockets"), 0.0);
        run_str(&mut c, &["SET", key, "v"]).expect("SET");
        run_str(&mut c, &["MIGRATE", "127.0.0.1", &target.port.to_string(), key, "0", "5000"]).expect("MIGRATE");
        assert_eq!(num(&info(p), "Stats", "migrate_cached_sockets"), 1.0, "{:?}", info(p)["Stats"]);
    }
}

/// A log line's time (ms of the day) and message, for Redis's format
/// `pid:R dd Mon yyyy hh:mm:ss.mmm <mark> message`.
fn log_line(line: &str) -> Option<(u64, String)> {
    let parts: Vec<&str> = line.splitn(6, ' ').collect();
    let [_, _, _, _, time, rest] = parts[..] else { return None };
    let (hms, ms) = time.split_once('.')?;
    let mut t = 0;
    for p in hms.split(':') {
        t = t * 60 + p.parse::<u64>().ok()?;
    }
    let ms = t * 1000 + ms.parse::<u64>().ok()?;
    Some((ms, rest.get(2..)?.to_string()))
}

/// The tries a log shows to connect to `addr`: the time of each
/// `Connecting to MASTER` line whose next two lines are Redis's.
fn tries(log: &str, addr: &str) -> Vec<u64> {
    let lines: Vec<(u64, String)> = log.lines().filter_map(log_line).collect();
    let mut out = Vec::new();
    for w in lines.windows(3) {
        if w[0].1 == format!("Connecting to MASTER {addr}")
            && w[1].1 == "MASTER <-> REPLICA sync started"
            && w[2].1 == "Error condition on socket for SYNC: Connection refused"
        {
            out.push(w[0].0);
        }
    }
    out
}

#[test]
fn a_replica_of_a_dead_port_logs_every_try_as_redis() {
    if !common::has_program("redis-server") {
        let _ = common::redis_server();
        return;
    }
    let their_dir = common::temp_dir("redis-retry-log");
    let their_log = their_dir.join("redis.log");
    let dir_arg = their_dir.to_string_lossy().into_owned();
    let log_arg = their_log.to_string_lossy().into_owned();
    let Some(theirs) = common::redis_server_with(&["--dir", &dir_arg, "--logfile", &log_arg]) else { return };
    let (ours, our_log) = common::moonshard_logged(&["--shards", "2"]);
    let dead = common::free_port();
    let addr = format!("127.0.0.1:{dead}");
    for p in [&theirs, &ours] {
        run_str(&mut p.client(), &["REPLICAOF", "127.0.0.1", &dead.to_string()]).expect("REPLICAOF");
    }
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    // Redis's replication cron tries once a second: three tries within 15 s.
    wait_until(15, "three tries in redis-server's log", || tries(&read(&their_log), &addr).len() >= 3);
    wait_until(15, "three tries in moonshard's log", || tries(&read(&our_log), &addr).len() >= 3);
    // Who asked is logged as Redis logs it, with the client's CLIENT LIST line.
    for p in [&theirs, &ours] {
        run_str(&mut p.client(), &["REPLICAOF", "NO", "ONE"]).expect("REPLICAOF NO ONE");
    }
    for path in [&their_log, &our_log] {
        wait_until(10, "MASTER MODE enabled in the log", || {
            read(path).contains("* MASTER MODE enabled (user request from 'id=")
        });
        let text = read(path);
        let line = format!("* REPLICAOF {addr} enabled (user request from 'id=");
        assert!(text.contains(&line), "no {line:?} in {}", path.display());
        assert!(text.contains(" cmd=replicaof user=default "), "{}", path.display());
    }
    let our_text = read(&our_log);
    let (theirs_t, ours_t) = (tries(&read(&their_log), &addr), tries(&our_text, &addr));
    drop((theirs, ours));
    let _ = std::fs::remove_dir_all(&their_dir);
    // A try about every second on both (generous bounds for a loaded machine;
    // the times are of one day, and a test does not run across midnight twice).
    for (who, t) in [("redis-server", &theirs_t), ("moonshard", &ours_t)] {
        for pair in t.windows(2) {
            let gap = pair[1].saturating_sub(pair[0]);
            assert!((300..=3000).contains(&gap), "{who}: tries {gap} ms apart: {t:?}");
        }
    }
    // No Rust error decoration in the error line.
    assert!(!our_text.contains("(os error"), "moonshard's log words errors as Rust does: {our_text}");
}

#[test]
fn log_lines_are_parsed() {
    let l = "1632:S 06 Dec 2026 20:52:08.769 * Connecting to MASTER 127.0.0.1:1";
    assert_eq!(log_line(l), Some(((20 * 3600 + 52 * 60 + 8) * 1000 + 769, "Connecting to MASTER 127.0.0.1:1".into())));
    let log = "1:S 06 Dec 2026 00:00:01.000 * Connecting to MASTER h:1\n\
               1:S 06 Dec 2026 00:00:01.000 * MASTER <-> REPLICA sync started\n\
               1:S 06 Dec 2026 00:00:01.001 # Error condition on socket for SYNC: Connection refused\n";
    assert_eq!(tries(log, "h:1"), vec![1000]);
}

#[test]
fn restore_counts_deep_checks_as_redis() {
    let Some(theirs) = common::redis_server() else { return };
    let ours = common::moonshard(&["--shards", "2"]);
    let sanitizations = |p: &Proc| num(&info(p), "Stats", "dump_payload_sanitizations");
    for p in [&theirs, &ours] {
        let mut c = p.client();
        for args in [
            &["CONFIG", "SET", "list-max-listpack-size", "2"][..],
            &["SET", "s", "v"],
            &["RPUSH", "l", "a", "b", "c", "d", "e"],
            &["SADD", "ints", "1", "2", "3"],
            &["SADD", "set", "a", "b"],
            &["HSET", "h", "f", "v"],
            &["ZADD", "z", "1", "a"],
            &["XADD", "st", "1-1", "f", "v"],
        ] {
            run_str(&mut c, args).expect("setting up");
        }
    }
    for sanitize in ["no", "yes", "clients"] {
        for key in ["s", "l", "ints", "set", "h", "z", "st"] {
            let mut moved = Vec::new();
            for p in [&theirs, &ours] {
                let mut c = p.client();
                run_str(&mut c, &["CONFIG", "SET", "sanitize-dump-payload", sanitize]).expect("CONFIG SET");
                let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut c).expect("DUMP");
                let before = sanitizations(p);
                let _: () = redis::cmd("RESTORE")
                    .arg(format!("{key}-copy"))
                    .arg(0)
                    .arg(payload)
                    .arg("REPLACE")
                    .query(&mut c)
                    .expect("RESTORE");
                moved.push(sanitizations(p) - before);
            }
            assert_eq!(moved[0], moved[1], "sanitize-dump-payload {sanitize}, {key}: redis-server, moonshard");
        }
    }
}

#[test]
fn errors_while_loading_the_aof_are_unexpected_as_in_redis() {
    if !common::has_program("redis-server") {
        let _ = common::redis_server();
        return;
    }
    // SET a x; INCR a (not an integer); LPUSH a y (wrong type).
    let aof = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nx\r\n\
*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*3\r\n$5\r\nLPUSH\r\n$1\r\na\r\n$1\r\ny\r\n";
    let (their_dir, our_dir) = (common::temp_dir("aof-errors-redis"), common::temp_dir("aof-errors-ours"));
    for d in [&their_dir, &our_dir] {
        std::fs::write(d.join("appendonly.aof"), aof).expect("write the AOF");
    }
    let their_log = their_dir.join("redis.log").to_string_lossy().into_owned();
    let our_log = our_dir.join("moonshard.log").to_string_lossy().into_owned();
    let theirs = common::redis_on_aof_with(&their_dir, &["--logfile", &their_log]);
    let ours = common::moonshard(&[
        "--appendonly",
        "yes",
        "--dir",
        our_dir.to_str().expect("a UTF-8 path"),
        "--logfile",
        &our_log,
    ]);
    wait_until(20, "moonshard to load its AOF", || field(&info(&ours), "Persistence", "loading") == "0");
    // Through redis-cli: the client library's handshake would add errors of its own.
    let cli_info = |p: &Proc| {
        parse(&p.cli(&["INFO", "everything"]).unwrap_or_default().replace("\r\n", "\n").replace('\n', "\r\n"))
    };
    let (ti, oi) = (cli_info(&theirs), cli_info(&ours));
    // (redis-server's ERR count also has the client library's CLIENT SETINFO,
    // sent by redis_on_aof's connection, that Redis 7.0 refuses.)
    for (section, name) in [("Stats", "unexpected_error_replies"), ("Errorstats", "errorstat_WRONGTYPE")] {
        assert_eq!(field(&oi, section, name), field(&ti, section, name), "{section}/{name}");
    }
    assert_eq!(field(&oi, "Stats", "unexpected_error_replies"), "2");
    assert_eq!(field(&oi, "Stats", "total_error_replies"), "2");
    assert_eq!(field(&oi, "Errorstats", "errorstat_ERR"), "count=1");
    // The lines Redis logs for them, word for word.
    let critical = |path: &str| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("== CRITICAL == ").map(|(_, m)| m.to_string()))
            .collect()
    };
    assert_eq!(critical(&our_log), critical(&their_log));
    assert_eq!(critical(&our_log).len(), 2);
    drop((theirs, ours));
    for d in [their_dir, our_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_full_sync_in_progress_shows_redis_transfer_fields() {
    let Some(their_master) = common::repl_redis(&[]) else { return };
    let Some(their_replica) = common::repl_redis(&[]) else { return };
    let our_master = common::repl_moonshard(2, &[]);
    let our_replica = common::repl_moonshard(2, &[]);
    const TRANSFER: &[&str] = &[
        "master_sync_total_bytes",
        "master_sync_read_bytes",
        "master_sync_left_bytes",
        "master_sync_perc",
        "master_sync_last_io_seconds_ago",
    ];
    for (who, m, r) in [("redis-server", &their_master, &their_replica), ("moonshard", &our_master, &our_replica)] {
        let mut c = m.client();
        // 200 keys at 10 ms each: a save of 2 s, long enough to be seen.
        let mut mset = vec!["MSET".to_string()];
        for i in 0..200 {
            mset.extend([format!("k{i}"), "v".repeat(100)]);
        }
        let args: Vec<&str> = mset.iter().map(String::as_str).collect();
        run_str(&mut c, &args).expect("MSET");
        run_str(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "10000"]).expect("CONFIG SET");
        run_str(&mut r.client(), &["REPLICAOF", "127.0.0.1", &m.port.to_string()]).expect("REPLICAOF");
        let mut seen = None;
        wait_until(30, "the replica to show the transfer", || {
            let i = info(r);
            if field(&i, "Replication", "master_sync_in_progress") == "1" && i["Replication"].contains_key(TRANSFER[0])
            {
                seen = Some(i["Replication"].clone());
            }
            seen.is_some()
        });
        let seen = seen.unwrap_or_default();
        for name in TRANSFER {
            assert!(seen.contains_key(*name), "{who}: no {name} during the sync: {seen:?}");
        }
        let n = |name: &str| seen[name].parse::<i64>().unwrap_or(i64::MIN);
        // A payload of unknown size (a diskless sync's, ended by a mark) is 0 bytes long.
        assert!(n("master_sync_total_bytes") >= -1, "{who}: {seen:?}");
        if n("master_sync_total_bytes") > 0 {
            assert_eq!(n("master_sync_left_bytes"), n("master_sync_total_bytes") - n("master_sync_read_bytes"));
        }
        run_str(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]).expect("CONFIG SET");
        wait_until(60, "the sync to end", || field(&info(r), "Replication", "master_link_status") == "up");
        let done = info(r);
        assert!(!done["Replication"].contains_key(TRANSFER[0]), "{who}: transfer fields after the sync: {done:?}");
    }
}

/// The messages of a log from the first `Connection with master lost.` on, `n` of them.
fn after_lost(log: &str, n: usize) -> Vec<String> {
    let messages: Vec<String> = log.lines().filter_map(log_line).map(|(_, m)| m).collect();
    let from = messages.iter().position(|m| m == "Connection with master lost.").unwrap_or(messages.len());
    messages[from..].iter().take(n).cloned().collect()
}

#[test]
fn a_replica_whose_master_dies_logs_as_redis() {
    if !common::has_program("redis-server") {
        let _ = common::redis_server();
        return;
    }
    let their_dir = common::temp_dir("redis-lost-master");
    let their_log = their_dir.join("redis.log");
    let dir_arg = their_dir.to_string_lossy().into_owned();
    let log_arg = their_log.to_string_lossy().into_owned();
    let Some(theirs) = common::redis_server_with(&["--dir", &dir_arg, "--logfile", &log_arg]) else { return };
    let (ours, our_log) = common::moonshard_logged(&["--shards", "2"]);
    let their_master = common::repl_redis(&[]).expect("redis-server");
    let our_master = common::repl_moonshard(2, &[]);
    attach(&theirs, &their_master);
    attach(&ours, &our_master);
    let addrs = [format!("127.0.0.1:{}", their_master.port), format!("127.0.0.1:{}", our_master.port)];
    drop((their_master, our_master));
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let [their_addr, our_addr] = &addrs;
    wait_until(20, "redis-server to retry twice", || tries(&read(&their_log), their_addr).len() >= 2);
    wait_until(20, "moonshard to retry twice", || tries(&read(&our_log), our_addr).len() >= 2);
    let (theirs_m, ours_m) = (after_lost(&read(&their_log), 4), after_lost(&read(&our_log), 4));
    drop((theirs, ours));
    let _ = std::fs::remove_dir_all(&their_dir);
    // The lines of the lost link and the immediate try; how that try ends
    // depends on how far the dead master's socket is closed (refused, or
    // reset: on redis-server too); the later tries, every second, are the
    // `tries` above.
    let expected = |addr: &str| -> Vec<String> {
        vec![
            "Connection with master lost.".to_string(),
            "Caching the disconnected master state.".to_string(),
            format!("Reconnecting to MASTER {addr}"),
            "MASTER <-> REPLICA sync started".to_string(),
        ]
    };
    assert_eq!(theirs_m, expected(their_addr), "redis-server's lines (the reference)");
    assert_eq!(ours_m, expected(our_addr), "moonshard's lines");
}

#[test]
fn a_replica_receiving_the_saved_file_is_in_send_bulk_as_in_redis() {
    use std::io::{Read, Write};
    let Some(theirs) = common::repl_redis(&[]) else { return };
    let ours = common::repl_moonshard(2, &[]);
    for (who, m) in [("redis-server", &theirs), ("moonshard", &ours)] {
        // 20 MB: more than the sockets' buffers hold while the replica does not read.
        run_str(&mut m.client(), &["DEBUG", "POPULATE", "5000", "key", "4096"]).expect("DEBUG POPULATE");
        run_str(&mut m.client(), &["CONFIG", "SET", "rdbcompression", "no"]).expect("CONFIG SET");
        // A replica without `capa eof`, so the sync goes through a file, that
        // stops reading after its PSYNC.
        let mut s = std::net::TcpStream::connect(("127.0.0.1", m.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s.write_all(b"REPLCONF listening-port 4321\r\n").expect("write");
        let mut ok = [0u8; 5];
        s.read_exact(&mut ok).expect("+OK");
        s.write_all(b"PSYNC ? -1\r\n").expect("write");
        let mut state = String::new();
        wait_until(60, &format!("{who}: the replica's state to be send_bulk"), || {
            state = field(&info(m), "Replication", "slave0");
            state.contains("state=send_bulk")
        });
        assert!(state.starts_with("ip=127.0.0.1,port=4321,state=send_bulk,"), "{who}: {state}");
        drop(s);
    }
}
