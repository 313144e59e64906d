//! Differential tests for what running Redis 7.0.15's own test suite
//! (`./runtest --host --port`, external-server mode) against moonshard
//! found: the forms commands take in the write stream, MULTI over
//! `maxmemory`, `new` keyspace events, blocked readers woken by FLUSHALL
//! and SWAPDB, the lazyfree counters, LATENCY HISTOGRAM of a container,
//! stream nodes sized by `stream-node-max-entries`, DEBUG LOADAOF, and a
//! write acknowledged right after `appendfsync always` is set.

mod common;
mod raw_resp;

use raw_resp::{start_pair, Both, Raw};
use std::time::{Duration, Instant};

/// The commands of an AOF file (RESP arrays), command names lower-cased.
fn aof_commands(path: &std::path::Path) -> Vec<Vec<String>> {
    let data = std::fs::read(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut pos = 0;
    let line = |pos: &mut usize| -> Option<String> {
        let end = data[*pos..].windows(2).position(|w| w == b"\r\n")? + *pos;
        let s = String::from_utf8_lossy(&data[*pos..end]).into_owned();
        *pos = end + 2;
        Some(s)
    };
    while pos < data.len() {
        let Some(head) = line(&mut pos) else { break };
        let n: usize = head.trim_start_matches('*').parse().expect("array header");
        let mut argv = Vec::new();
        for i in 0..n {
            let len: usize = line(&mut pos).expect("bulk header").trim_start_matches('$').parse().expect("len");
            let arg = String::from_utf8_lossy(&data[pos..pos + len]).into_owned();
            pos += len + 2;
            argv.push(if i == 0 { arg.to_lowercase() } else { arg });
        }
        out.push(argv);
    }
    out
}

/// A command line of the AOF with the absolute times that differ between
/// two servers (after PXAT) replaced by `*`.
fn normalized(argv: &[String]) -> String {
    let mut words = Vec::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 && argv[i - 1].eq_ignore_ascii_case("pxat") && a != "4102444800000" {
            words.push("*".to_string());
        } else {
            words.push(a.clone());
        }
    }
    words.join(" ")
}

fn incr_aof(p: &common::Proc) -> std::path::PathBuf {
    p.dir.as_ref().expect("private dir").join("appendonlydir/appendonly.aof.1.incr.aof")
}

/// redis-server and moonshard (`shards` shards) both started with `flags`.
fn pair_with(shards: &str, flags: &[&str]) -> Option<(common::Proc, common::Proc)> {
    let theirs = common::redis_server_with(flags)?;
    let mut ours_flags = vec!["--shards", shards];
    ours_flags.extend_from_slice(flags);
    Some((common::moonshard(&ours_flags), theirs))
}

/// Sends each command of `script` to both servers and asserts equal replies.
#[track_caller]
fn same_replies(c: &mut [Raw; 2], script: &[&[&str]]) {
    for args in script {
        let replies: Vec<String> = c.iter_mut().map(|r| r.call(args)).collect();
        assert_eq!(replies[0], replies[1], "replies differ on {args:?}");
    }
}

/// What Redis propagates instead of the command as sent: SET with an
/// expiry always as `SET k v PXAT t` (PXAT and GET too), LMPOP/BLMPOP as
/// LPOP/RPOP with the count popped, ZMPOP/BZMPOP as ZPOPMIN/ZPOPMAX, a
/// transaction's SELECT before its MULTI, and the DEL of a key SCAN found
/// expired.
#[test]
fn propagated_forms_match_redis() {
    let Some((ours, theirs)) =
        pair_with("1", &["--appendonly", "yes", "--appendfsync", "always", "--enable-debug-command", "yes"])
    else {
        return;
    };
    let mut c = [Raw::connect(ours.port), Raw::connect(theirs.port)];
    let script: &[&[&str]] = &[
        &["SELECT", "3"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["SET", "b", "2"],
        &["EXEC"],
        &["SELECT", "0"],
        &["SET", "k", "v", "pxat", "4102444800000", "GET"],
        &["SET", "k2", "v", "EX", "100"],
        &["RPUSH", "l", "a", "b", "c"],
        &["LMPOP", "1", "l", "LEFT", "COUNT", "10"],
        &["RPUSH", "l2", "x", "y"],
        &["BLMPOP", "0", "2", "nosuch", "l2", "RIGHT", "COUNT", "1"],
        &["ZADD", "z", "1", "a", "2", "b"],
        &["ZMPOP", "1", "z", "MAX", "COUNT", "5"],
        &["ZADD", "z2", "1", "a", "2", "b"],
        &["BZMPOP", "0", "1", "z2", "MIN"],
        // GETSET goes out as SET, SET ... GET without its GETs, BRPOPLPUSH
        // as RPOPLPUSH and BLMOVE as LMOVE (integration/replication).
        &["GETSET", "gs", "1"],
        &["SET", "gs", "2", "GET", "XX"],
        &["SET", "gs2", "3", "NX", "GET"],
        &["RPUSH", "{t}l", "a", "b"],
        &["BRPOPLPUSH", "{t}l", "{t}l2", "0"],
        &["BLMOVE", "{t}l2", "{t}l3", "LEFT", "RIGHT", "0"],
        &["DEBUG", "SET-ACTIVE-EXPIRE", "0"],
        &["SET", "e1", "v", "PX", "1"],
    ];
    same_replies(&mut c, script);
    std::thread::sleep(Duration::from_millis(20));
    for r in c.iter_mut() {
        r.call(&["SCAN", "0"]);
        r.call(&["SET", "end", "1"]);
    }
    let read = |p: &common::Proc| -> Vec<String> {
        let mut lines: Vec<String> = aof_commands(&incr_aof(p)).iter().map(|a| normalized(a)).collect();
        // Both files begin with the SELECT of the first write's database.
        lines.retain(|l| !l.is_empty());
        lines
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut a, mut b) = (read(&ours), read(&theirs));
    while (a.last().map(String::as_str) != Some("set end 1") || b.last().map(String::as_str) != Some("set end 1"))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
        (a, b) = (read(&ours), read(&theirs));
    }
    assert_eq!(a, b, "moonshard's AOF (left) differs from redis-server's (right)");
    assert!(a.contains(&"select 3".to_string()) && a.iter().any(|l| l == "rpop l2 1"), "{a:?}");
}

/// Over `maxmemory`, every command queued inside MULTI is refused with OOM
/// (denyoom or not) and EXEC aborts, as in Redis; DISCARD still works.
#[test]
fn multi_queuing_over_maxmemory_fails_like_redis() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    let mut admin = Both::new(&p);
    a.lines(&["FLUSHALL", "MULTI", "SET foo1 bar1"]);
    admin.line("CONFIG SET maxmemory 1");
    a.lines(&["LPUSH mylist myvalue", "GET foo1"]);
    admin.line("CONFIG SET maxmemory 0");
    a.lines(&["SET foo2 bar2", "EXEC", "EXISTS foo1 foo2"]);
    admin.line("CONFIG SET maxmemory 1");
    a.lines(&["MULTI", "SET x 1", "DISCARD"]);
    admin.line("CONFIG SET maxmemory 0");
    a.line("PING");
}

/// `notify-keyspace-events` with `n`: a key's creation is notified as
/// `new`, ahead of the command's own event, on any shard.
#[test]
fn new_key_events_like_redis() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    let mut sub = Both::new(&p);
    a.line("CONFIG SET notify-keyspace-events KEA");
    a.line("CONFIG SET notify-keyspace-events En");
    sub.line("PSUBSCRIBE *");
    for l in
        ["SET foo bar", "SET foo baz", "SET bar bar", "RPUSH l a", "RPUSH l b", "HSET h f v", "DEL foo", "SET foo x"]
    {
        a.line(l);
    }
    a.line("CONFIG SET notify-keyspace-events KEAn");
    a.lines(&["SADD s m", "SADD s n", "INCR counter"]);
    let [ours, theirs] = sub.drain();
    assert!(!theirs.is_empty());
    assert_eq!(ours, theirs);
    a.check(&["CONFIG", "SET", "notify-keyspace-events", ""]);
}

/// FLUSHALL answers a reader blocked on a consumer group with Redis's
/// "no longer exists" error; SWAPDB serves a client blocked on a key that
/// the swap brings in.
#[test]
fn flushall_and_swapdb_wake_blocked_clients_like_redis() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    let mut blocked = Both::new(&p);
    a.lines(&["FLUSHALL", "XADD mystream 666 f v", "XGROUP CREATE mystream mygroup $"]);
    blocked.send(&["XREADGROUP", "GROUP", "mygroup", "Alice", "BLOCK", "0", "STREAMS", "mystream", ">"]);
    std::thread::sleep(Duration::from_millis(200));
    a.line("FLUSHALL");
    blocked.expect_same_reply("XREADGROUP woken by FLUSHALL");

    blocked.send(&["BLPOP", "k", "0"]);
    std::thread::sleep(Duration::from_millis(200));
    a.lines(&["SELECT 1", "RPUSH k hello", "SWAPDB 0 1"]);
    blocked.expect_same_reply("BLPOP woken by SWAPDB");
    a.lines(&["LLEN k", "SELECT 0", "LLEN k"]);
}

fn info_field(c: &mut Raw, section: &str, field: &str) -> String {
    let text = c.call(&["INFO", section]);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}: {text}"))
        .trim()
        .to_string()
}

/// UNLINK of a big value, `lazyfree-lazy-user-del`, FLUSHALL ASYNC and
/// CONFIG RESETSTAT move INFO's lazyfree counters as on Redis.
#[test]
fn lazyfree_counters_like_redis() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.lines(&["FLUSHALL", "CONFIG RESETSTAT"]);
    let members: Vec<String> = (0..1000).map(|i| format!("member:{i}")).collect();
    let mut sadd = vec!["SADD", "big"];
    sadd.extend(members.iter().map(String::as_str));
    a.check(&sadd);
    a.lines(&["SADD small a b c", "UNLINK big small"]);
    let settle = |a: &mut Both, want: &str| {
        for (i, c) in a.c.iter_mut().enumerate() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while info_field(c, "memory", "lazyfree_pending_objects") != "0" {
                assert!(Instant::now() < deadline, "lazyfree never finished (server {i})");
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(info_field(c, "memory", "lazyfreed_objects"), want, "server {i}");
        }
    };
    settle(&mut a, "1");
    a.check(&sadd);
    a.lines(&["CONFIG SET lazyfree-lazy-user-del yes", "DEL big", "CONFIG SET lazyfree-lazy-user-del no"]);
    settle(&mut a, "2");
    a.lines(&["MSET {t}k1 1 {t}k2 2 {t}k3 3", "FLUSHALL ASYNC"]);
    settle(&mut a, "5");
    a.line("CONFIG RESETSTAT");
    settle(&mut a, "0");
}

/// LATENCY HISTOGRAM of a container gives each of its subcommands that ran.
#[test]
fn latency_histogram_of_a_container_like_redis() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.line("CONFIG RESETSTAT");
    a.unchecked(&["CLIENT", "ID"]);
    a.unchecked(&["CLIENT", "LIST"]);
    let names = |c: &mut Raw| -> Vec<String> {
        let reply = c.call(&["LATENCY", "HISTOGRAM", "client"]);
        let mut found: Vec<String> = reply.lines().filter(|l| l.starts_with("client|")).map(str::to_string).collect();
        found.sort();
        found
    };
    let (ours, theirs) = (names(&mut a.c[0]), names(&mut a.c[1]));
    assert_eq!(ours, vec!["client|id".to_string(), "client|list".to_string()]);
    assert_eq!(ours, theirs);
}

/// `stream-node-max-entries` set at run time sizes the nodes new entries go
/// to, so approximate trimming (whole nodes, LIMIT 100 nodes' worth) removes
/// what Redis removes.
#[test]
fn stream_nodes_follow_stream_node_max_entries_like_redis() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.lines(&["FLUSHALL", "CONFIG SET stream-node-max-entries 10"]);
    for i in 1..=100 {
        a.check(&["XADD", "mystream", &format!("{i}-0"), "xitem", &i.to_string()]);
    }
    a.lines(&[
        "XTRIM mystream MAXLEN ~ 55",
        "XLEN mystream",
        "XTRIM mystream MAXLEN ~ 0 LIMIT 20",
        "XLEN mystream",
        "XADD mystream MAXLEN ~ 0 LIMIT 10 101-0 xitem 101",
        "XLEN mystream",
        "CONFIG SET stream-node-max-entries 5",
    ]);
    for i in 102..=200 {
        a.check(&["XADD", "mystream", &format!("{i}-0"), "f", "v"]);
    }
    a.lines(&["XTRIM mystream MINID ~ 150", "XLEN mystream", "CONFIG SET stream-node-max-entries 100"]);
}

/// DEBUG LOADAOF writes out the AOF, empties the dataset and replays the
/// files; the dataset (DEBUG DIGEST) comes back the same as on Redis. A
/// write right after `appendfsync always` is set at run time is answered
/// (it waited for an fsync that never came).
#[test]
fn debug_loadaof_reloads_like_redis() {
    let Some((ours, theirs)) = pair_with("4", &["--appendonly", "yes", "--enable-debug-command", "yes"]) else {
        return;
    };
    let mut c = [Raw::connect(ours.port), Raw::connect(theirs.port)];
    let script: &[&[&str]] = &[
        &["CONFIG", "SET", "appendfsync", "always"],
        &["SET", "a", "1"],
        &["RPUSH", "l", "x", "y"],
        &["HSET", "h", "f", "v"],
        &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
        &["XADD", "s", "1-1", "f", "v"],
        &["SELECT", "2"],
        &["SET", "b", "2"],
        &["SELECT", "0"],
    ];
    same_replies(&mut c, script);
    let digest: Vec<String> = c.iter_mut().map(|r| r.call(&["DEBUG", "DIGEST"])).collect();
    assert_eq!(digest[0], digest[1]);
    for r in c.iter_mut() {
        assert_eq!(r.call(&["DEBUG", "LOADAOF"]), "+OK\r\n");
    }
    let after: Vec<String> = c.iter_mut().map(|r| r.call(&["DEBUG", "DIGEST"])).collect();
    assert_eq!(after, digest, "the dataset after DEBUG LOADAOF");
    for r in c.iter_mut() {
        assert!(r.call(&["XINFO", "GROUPS", "s"]).contains("$1\r\ng\r\n"));
    }

    // appendfsync switched to always at run time: the next write is answered.
    let mut ms = Raw::connect(ours.port);
    ms.set_timeout(Duration::from_secs(5));
    for i in 0..5 {
        ms.call(&["CONFIG", "SET", "appendfsync", "everysec"]);
        std::thread::sleep(Duration::from_millis(30 * i));
        ms.call(&["CONFIG", "SET", "appendfsync", "always"]);
        assert_eq!(ms.call(&["SET", "after", &i.to_string()]), "+OK\r\n", "write {i} after appendfsync always");
    }
}

/// DEBUG SEGFAULT, PANIC and ASSERT end the process by the signal Redis's
/// ends by (SIGSEGV, SIGABRT), after a log line that says why.
#[test]
fn debug_crash_subcommands_end_the_process_like_redis() {
    use std::os::unix::process::ExitStatusExt;
    for sub in ["SEGFAULT", "PANIC", "ASSERT"] {
        let Some(mut theirs) = common::redis_server_with(&["--enable-debug-command", "yes"]) else { return };
        let mut ours = common::moonshard(&["--enable-debug-command", "yes"]);
        let mut signals = Vec::new();
        for p in [&mut ours, &mut theirs] {
            let mut c = Raw::connect(p.port);
            c.send(&["DEBUG", sub]);
            let deadline = Instant::now() + Duration::from_secs(30);
            let status = loop {
                if let Some(status) = p.child.try_wait().expect("wait") {
                    break status;
                }
                assert!(Instant::now() < deadline, "DEBUG {sub} did not end the process");
                std::thread::sleep(Duration::from_millis(20));
            };
            signals.push(status.signal());
        }
        assert!(signals[0].is_some(), "DEBUG {sub}: moonshard exited instead of dying by a signal");
        assert_eq!(signals[0], signals[1], "DEBUG {sub}: moonshard (left) and redis-server (right) signals");
    }
}

/// `tracking-table-max-keys` lowered with CONFIG SET takes effect on an
/// idle server (Redis's cron enforces it as well as every command): a
/// tracked key is invalidated without any further command.
#[test]
fn tracking_table_limit_is_enforced_while_idle_like_redis() {
    let Some(p) = start_pair(&[]) else { return };
    for port in p.ports {
        let mut sub = Raw::connect(port);
        let id = sub.call(&["CLIENT", "ID"]);
        let id = id.trim().trim_start_matches(':').to_string();
        sub.call(&["SUBSCRIBE", "__redis__:invalidate"]);
        let mut t = Raw::connect(port);
        assert_eq!(t.call(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]), "+OK\r\n");
        t.call(&["MSET", "{t}key1", "1", "{t}key2", "2"]);
        t.call(&["MGET", "{t}key1", "{t}key2"]);
        t.call(&["CONFIG", "SET", "tracking-table-max-keys", "1"]);
        sub.set_timeout(Duration::from_secs(3));
        let message = sub.reply();
        assert!(
            message.contains("invalidate") && message.contains("{t}key"),
            "port {port}: no invalidation while idle: {message:?}"
        );
        t.call(&["CONFIG", "SET", "tracking-table-max-keys", "0"]);
    }
}

/// A cluster node keeps Redis Cluster's same-slot rule: the standalone
/// keyspace is refused with `cluster-enabled yes`.
#[test]
fn standalone_keyspace_is_refused_on_a_cluster_node() {
    let dir = common::temp_dir("standalone-cluster");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .args(["--port", "0", "--cluster-enabled", "yes", "--keyspace-mode", "standalone", "--dir"])
        .arg(&dir)
        .output()
        .expect("run moonshard");
    assert!(!out.status.success(), "moonshard started a cluster node in the standalone keyspace");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("keyspace-mode standalone cannot be used with cluster-enabled yes"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A subscriber that stops reading: CLIENT LIST's `omem` counts the
/// messages waiting for it, and the pubsub soft limit closes it once it has
/// been over the limit long enough even when no more messages come (it was
/// left connected until the next message).
#[test]
fn pubsub_soft_limit_closes_a_silent_subscriber_like_redis() {
    let Some(p) = start_pair(&[]) else { return };
    for port in p.ports {
        let mut admin = Raw::connect(port);
        admin.call(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 100000 1"]);
        let mut sub = Raw::connect(port);
        sub.call(&["CLIENT", "SETNAME", "silent"]);
        sub.call(&["SUBSCRIBE", "foo"]);
        let payload = "x".repeat(1000);
        let omem = |admin: &mut Raw| -> Option<u64> {
            let list = admin.call(&["CLIENT", "LIST"]);
            let line = list.lines().find(|l| l.contains("name=silent"))?;
            line.split("omem=").nth(1)?.split_whitespace().next()?.parse().ok()
        };
        let mut last = 0;
        for _ in 0..100_000 {
            admin.call(&["PUBLISH", "foo", &payload]);
            last = omem(&mut admin).unwrap_or(u64::MAX);
            if last > 100_000 {
                break;
            }
        }
        assert!(last > 100_000 && last != u64::MAX, "port {port}: omem never passed the soft limit ({last})");
        let started = Instant::now();
        while omem(&mut admin).is_some() {
            assert!(started.elapsed() < Duration::from_secs(6), "port {port}: the silent subscriber was never closed");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(started.elapsed() >= Duration::from_millis(500), "port {port}: closed before the soft limit's time");
        admin.call(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60"]);
    }
}

/// `oom-score-adj` sets the process's `/proc/<pid>/oom_score_adj` by role,
/// relative or absolute, and gives the old score back when turned off: the
/// same scores as redis-server's after the same commands.
#[test]
fn oom_score_adj_follows_the_role_like_redis() {
    let Some(theirs) = common::redis_server() else { return };
    let ours = common::moonshard(&[]);
    let mut seen = Vec::new();
    for p in [&ours, &theirs] {
        let pid = p.child.id();
        let score = || std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap().trim().to_string();
        let mut c = Raw::connect(p.port);
        let mut scores = vec![score()];
        for cmd in [
            &["CONFIG", "SET", "oom-score-adj-values", "10 20 30"][..],
            &["CONFIG", "SET", "oom-score-adj", "yes"],
            &["CONFIG", "SET", "oom-score-adj-values", "15 20 30"],
            &["REPLICAOF", "127.0.0.1", "1"],
            &["REPLICAOF", "NO", "ONE"],
            &["CONFIG", "SET", "oom-score-adj", "absolute"],
            &["CONFIG", "SET", "oom-score-adj-values", "25 5 30"],
            &["CONFIG", "SET", "oom-score-adj", "no"],
        ] {
            assert_eq!(c.call(cmd), "+OK\r\n", "{cmd:?}");
            scores.push(score());
        }
        // Lowering the score below where it started needs CAP_SYS_RESOURCE:
        // both refuse it the same way where the process lacks it.
        c.call(&["CONFIG", "SET", "oom-score-adj", "yes"]);
        scores.push(c.call(&["CONFIG", "SET", "oom-score-adj-values", "-900 -900 -900"]));
        scores.push(score());
        c.call(&["CONFIG", "SET", "oom-score-adj", "no"]);
        let bad = c.call(&["CONFIG", "SET", "oom-score-adj-values", "1 2"]);
        assert!(bad.starts_with("-ERR CONFIG SET failed"), "{bad}");
        seen.push(scores);
    }
    assert_eq!(seen[0], seen[1], "oom_score_adj after each step: moonshard (left), redis-server (right)");
}

/// On a cluster node serving every slot, a shebang script that reaches two
/// slots gets Redis's slot-rule error even when the slots live on different
/// shards of the node (it got "non local key").
#[test]
fn a_shebang_script_over_two_slots_of_one_node_gets_the_slot_error() {
    let node = common::moonshard(&["--cluster-enabled", "yes", "--cluster-port", &common::free_port().to_string()]);
    let mut c = Raw::connect(node.port);
    assert_eq!(c.call(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), "+OK\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.call(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
        assert!(Instant::now() < deadline, "the one-node cluster never became ok");
        std::thread::sleep(Duration::from_millis(50));
    }
    let script = "#!lua\nredis.call('set', 'foo', 'bar')\nredis.call('set', 'bar', 'foo')\nreturn 'OK'";
    let reply = c.call(&["EVAL", script, "0"]);
    assert!(reply.starts_with("-ERR Script attempted to access keys that do not hash to the same slot"), "{reply}");
}
