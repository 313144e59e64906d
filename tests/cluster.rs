//! Redis Cluster mode: clusters of moonshard nodes, and mixed clusters of
//! moonshard and redis-server 7.0 nodes (the proof that the cluster bus
//! speaks Redis's binary format), built and checked by Redis's own
//! `redis-cli --cluster`. Every wait polls with a deadline; every process
//! is killed when its `Proc` drops.

#[path = "common/cluster.rs"]
mod cluster_util;
mod common;
#[path = "common/python.rs"]
mod python;

use cluster_util::*;

use common::{free_port, moonshard, Proc};
use std::process::Command;

/// `redis-cli -c` SET then GET of keys spread over every node, through any node.
fn set_get_across(nodes: &[&Proc]) {
    for i in 0..30 {
        let key = format!("key:{i}");
        let via = nodes[i % nodes.len()].port;
        assert_eq!(cli(via, &["-c", "set", &key, &format!("v{i}")]).trim(), "OK");
        let other = nodes[(i + 1) % nodes.len()].port;
        assert_eq!(cli(other, &["-c", "get", &key]).trim(), format!("v{i}"));
    }
    // Every node holds some of them.
    let total: i64 = nodes.iter().map(|n| cli(n.port, &["dbsize"]).trim().parse::<i64>().unwrap()).sum();
    assert_eq!(total, 30);
    for n in nodes {
        assert!(cli(n.port, &["dbsize"]).trim().parse::<i64>().unwrap() > 0);
    }
}

#[test]
fn three_moonshard_nodes_form_a_cluster_with_redis_cli() {
    if !tools_present() {
        return;
    }
    let nodes = [ms_node(&[]), ms_node(&[]), ms_node(&[])];
    let refs: Vec<&Proc> = nodes.iter().collect();
    assert!(cli(nodes[0].port, &["info", "cluster"]).contains("cluster_enabled:1"));
    create(&refs);
    wait_ok(&refs);
    check_clean(nodes[1].port);
    set_get_across(&refs);
    // Each node knows all three, connected, with their slots.
    for n in &nodes {
        let text = cli(n.port, &["cluster", "nodes"]);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.lines().all(|l| l.contains(" connected ") && l.contains("master")), "{text}");
        let info = cli(n.port, &["cluster", "info"]);
        assert!(info.contains("cluster_known_nodes:3") && info.contains("cluster_size:3"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    }
    // CLUSTER SLOTS covers everything once.
    let mut con = nodes[0].client();
    let slots: Vec<(i64, i64, Vec<redis::Value>)> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con).unwrap();
    let covered: i64 = slots.iter().map(|(a, b, _)| b - a + 1).sum();
    assert_eq!(covered, 16384);
    // CLUSTER LINKS: one outbound and one inbound link per peer, with a send
    // buffer that is what is queued for the peer (allocated == used here).
    let links: Vec<std::collections::HashMap<String, redis::Value>> =
        redis::cmd("CLUSTER").arg("LINKS").query(&mut con).unwrap();
    assert_eq!(links.len(), 4, "{links:?}");
    for l in &links {
        let int = |k: &str| match l.get(k) {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("{k}: {other:?}"),
        };
        assert!(int("create-time") > 0);
        assert!(int("send-buffer-used") >= 0 && int("send-buffer-allocated") >= int("send-buffer-used"));
        assert!(matches!(l.get("direction"), Some(redis::Value::BulkString(d)) if d == b"to" || d == b"from"));
    }
    // SELECT other than 0 is refused, as on a Redis Cluster node.
    assert_eq!(cli(nodes[0].port, &["select", "1"]).trim(), "ERR SELECT is not allowed in cluster mode");
    // redis-py's RedisCluster: slot discovery, SET/GET, pipelines, hash tags.
    if let Some(py) = python::venv_python() {
        cli(nodes[0].port, &["-c", "flushall"]);
        for n in &nodes {
            cli(n.port, &["flushall"]);
        }
        python::run_script(&py, "cluster_client.py", nodes[0].port, "cluster client ok");
    }
    // Resharding with redis-cli: CLUSTER SETSLOT IMPORTING/MIGRATING/NODE,
    // GETKEYSINSLOT and MIGRATE ... KEYS (sent as RESTORE-ASKING).
    let low: Vec<String> = (0..).map(|i| format!("low:{i}")).filter(|k| slot(k) < 10).take(4).collect();
    for k in &low {
        assert_eq!(cli(nodes[2].port, &["-c", "set", k, k]).trim(), "OK");
    }
    let keys_before: i64 = nodes.iter().map(|n| cli(n.port, &["dbsize"]).trim().parse::<i64>().unwrap()).sum();
    let (from, to) = (myid(&nodes[0]), myid(&nodes[1]));
    let out = cluster_tool(&[
        "reshard".into(),
        addr(&nodes[2]),
        "--cluster-from".into(),
        from,
        "--cluster-to".into(),
        to.clone(),
        "--cluster-slots".into(),
        "10".into(),
        "--cluster-yes".into(),
    ]);
    assert!(out.contains("Moving slot 9 from"), "{out}");
    assert!(!out.contains("ERR") && !out.contains("[ERR]"), "{out}");
    check_clean(nodes[2].port);
    let keys_after: i64 = nodes.iter().map(|n| cli(n.port, &["dbsize"]).trim().parse::<i64>().unwrap()).sum();
    assert_eq!(keys_before, keys_after);
    let line = cli(nodes[2].port, &["cluster", "nodes"]);
    assert!(line.lines().any(|l| l.starts_with(&to) && l.contains(" 0-9 ")), "{line}");
    // Every key is still reachable.
    assert_eq!(cli(nodes[2].port, &["-c", "get", "user:5"]).trim(), "5");
    for k in &low {
        assert_eq!(cli(nodes[1].port, &["get", k]).trim(), k.as_str());
        assert!(cli(nodes[0].port, &["get", k]).starts_with("MOVED "));
    }
}

#[test]
fn mixed_clusters_of_moonshard_and_redis_server() {
    if !tools_present() {
        return;
    }
    // redis-server first: the moonshard nodes MEET it.
    {
        let r = redis_node();
        let (a, b) = (ms_node(&[]), ms_node(&[]));
        create(&[&r, &a, &b]);
        wait_ok(&[&r, &a, &b]);
        check_clean(a.port);
        check_clean(r.port);
        let text = cli(r.port, &["cluster", "nodes"]);
        for m in [&a, &b] {
            let line = text.lines().find(|l| l.starts_with(&myid(m))).unwrap_or_else(|| panic!("{text}"));
            assert!(line.contains(&format!("127.0.0.1:{}@", m.port)), "{line}");
            assert!(line.contains(" master - ") && line.contains(" connected "), "{line}");
            let slots = line.split(' ').nth(8).expect("slots");
            assert!(!slots.is_empty(), "{line}");
        }
        set_get_across(&[&r, &a, &b]);
    }
    // moonshard first: the redis-server nodes MEET it.
    {
        let a = ms_node(&[]);
        let (r1, r2) = (redis_node(), redis_node());
        create(&[&a, &r1, &r2]);
        wait_ok(&[&a, &r1, &r2]);
        check_clean(r2.port);
        let text = cli(r1.port, &["cluster", "nodes"]);
        let line = text.lines().find(|l| l.starts_with(&myid(&a))).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(" master - ") && line.contains(" connected 0-5460"), "{line}");
        set_get_across(&[&a, &r1, &r2]);
    }
}

#[test]
fn restarted_node_rejoins_from_nodes_conf() {
    if !tools_present() {
        return;
    }
    let dir = common::temp_dir("cluster-restart");
    let dir_s = dir.to_string_lossy().into_owned();
    let port = free_port().to_string();
    let cport = free_port().to_string();
    let fixed = ["--dir", dir_s.as_str(), "--port", port.as_str(), "--cluster-port", cport.as_str()];
    let timeout = ["--cluster-node-timeout", "1000"];
    let start = || moonshard(&[&["--cluster-enabled", "yes", "--shards", "2"][..], &fixed[..], &timeout[..]].concat());
    let mut a = start();
    let (b, c) = (ms_node(&timeout), ms_node(&timeout));
    create(&[&a, &b, &c]);
    wait_ok(&[&a, &b, &c]);
    let id = myid(&a);
    let epoch_line = |p: &Proc| {
        cli(p.port, &["cluster", "info"]).lines().find(|l| l.starts_with("cluster_my_epoch")).map(str::to_string)
    };
    let epoch = epoch_line(&a);
    let conf = std::fs::read_to_string(dir.join("nodes.conf")).expect("nodes.conf written");
    assert!(conf.contains(&format!("{id} 127.0.0.1:{port}@{cport} myself,master")), "{conf}");
    assert!(conf.trim_end().lines().last().unwrap().starts_with("vars currentEpoch 3 lastVoteEpoch 0"), "{conf}");
    // Kill it (no goodbye), then start it again from its nodes.conf.
    let _ = a.child.kill();
    let _ = a.child.wait();
    // PFAIL after the node timeout, then FAIL by the masters' reports; the
    // cluster is down (full coverage is required).
    wait_until("the others to mark it failed", 15, || {
        [&b, &c].iter().all(|n| {
            cli(n.port, &["cluster", "nodes"]).lines().any(|l| l.starts_with(&id) && l.contains("master,fail "))
        })
    });
    wait_until("cluster_state:fail", 10, || cli(b.port, &["cluster", "info"]).contains("cluster_state:fail"));
    assert!(cli(b.port, &["get", "x"]).starts_with("CLUSTERDOWN The cluster is down"));
    a = start();
    assert_eq!(myid(&a), id);
    assert_eq!(epoch_line(&a), epoch);
    wait_ok(&[&a, &b, &c]);
    wait_until("the others to see it connected", 10, || {
        [&b, &c].iter().all(|n| {
            cli(n.port, &["cluster", "nodes"]).lines().any(|l| l.starts_with(&id) && l.contains(" connected "))
        })
    });
    check_clean(b.port);
    set_get_across(&[&a, &b, &c]);
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Redirections in symmetric situations on a moonshard node and on a
/// redis-server node of one cluster: the texts must match once the
/// addresses are swapped.
#[test]
fn redirections_match_redis_server() {
    if !tools_present() {
        return;
    }
    let m = ms_node(&[]);
    let r = redis_node();
    assign_halves(&m, &r);
    assert_eq!(cli(m.port, &["cluster", "meet", "127.0.0.1", &r.port.to_string()]).trim(), "OK");
    // Only redis-cli --cluster knows bus ports: MEET with the explicit one.
    meet_with_bus(&m, &r);
    wait_ok(&[&m, &r]);
    let (mid, rid) = (myid(&m), myid(&r));
    // Keys by slot: hash tags pick the slot side.
    let slot_of = |k: &str| cli(m.port, &["cluster", "keyslot", k]).trim().parse::<u32>().unwrap();
    let on_m = (0..).map(|i| format!("m{i}")).find(|k| slot_of(k) < 8192).unwrap();
    let on_r = (0..).map(|i| format!("r{i}")).find(|k| slot_of(k) >= 8192).unwrap();
    let swap = |s: String| s.replace(&addr(&m), "SELF").replace(&addr(&r), "SELF").replace("OTHER", "");
    let both = |ours: &[&str], theirs: &[&str]| (swap(cli(m.port, ours)), swap(cli(r.port, theirs)));
    // MOVED.
    let (a, b) = both(&["get", &on_r], &["get", &on_m]);
    assert!(a.starts_with("MOVED ") && b.starts_with("MOVED "), "{a} / {b}");
    assert_eq!(a.split(' ').nth(2), b.split(' ').nth(2));
    // CROSSSLOT (the error names no address).
    let (a, b) = both(&["mget", &on_m, &format!("{on_m}x")], &["mget", &on_r, &format!("{on_r}x")]);
    if slot_of(&format!("{on_m}x")) != slot_of(&on_m) {
        assert_eq!(a, cli(r.port, &["mget", "a", "b"]));
    }
    let _ = b;
    // ASK, TRYAGAIN, ASKING: m migrates the slot of {m}, r migrates the slot of {r}.
    let tag_m = format!("{{{on_m}}}");
    let tag_r = format!("{{{on_r}}}");
    assert_eq!(cli(m.port, &["set", &format!("{tag_m}present"), "1"]).trim(), "OK");
    assert_eq!(cli(r.port, &["set", &format!("{tag_r}present"), "1"]).trim(), "OK");
    let (sm, sr) = (slot_of(&on_m).to_string(), slot_of(&on_r).to_string());
    for (p, slot, to) in [(&m, &sm, &rid), (&r, &sr, &mid)] {
        assert_eq!(cli(p.port, &["cluster", "setslot", slot, "migrating", to]).trim(), "OK");
    }
    for (p, slot, from) in [(&r, &sm, &mid), (&m, &sr, &rid)] {
        assert_eq!(cli(p.port, &["cluster", "setslot", slot, "importing", from]).trim(), "OK");
    }
    // A missing key in a migrating slot: ASK to the importing node.
    let (a, b) = both(&["get", &format!("{tag_m}missing")], &["get", &format!("{tag_r}missing")]);
    assert!(a.starts_with("ASK ") && b.starts_with("ASK "), "{a} / {b}");
    // A present one is served.
    let (a, b) = both(&["get", &format!("{tag_m}present")], &["get", &format!("{tag_r}present")]);
    assert_eq!((a.trim(), b.trim()), ("1", "1"));
    // Some present, some missing: TRYAGAIN.
    let (a, b) = both(
        &["mget", &format!("{tag_m}present"), &format!("{tag_m}missing")],
        &["mget", &format!("{tag_r}present"), &format!("{tag_r}missing")],
    );
    assert_eq!(a, b);
    assert!(a.starts_with("TRYAGAIN"), "{a}");
    // On the importing side: MOVED without ASKING, served with it.
    let (a, b) = both(&["get", &format!("{tag_r}k")], &["get", &format!("{tag_m}k")]);
    assert!(a.starts_with("MOVED ") && b.starts_with("MOVED "), "{a} / {b}");
    let script = |tag: &str| format!("ASKING\nGET {tag}k\nASKING\nSET {tag}k v\nGET {tag}k\n");
    let pipe = |p: &Proc, input: String| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '{}' | redis-cli -p {}", input.replace('\n', "\\n"), p.port))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let a = swap(pipe(&m, script(&tag_r))).replace(&sr, "SLOT");
    let b = swap(pipe(&r, script(&tag_m))).replace(&sm, "SLOT");
    assert_eq!(a, b);
    assert!(a.starts_with("OK\n\nOK\nOK\nMOVED"), "{a}");
    // An unassigned slot.
    for (p, slot) in [(&m, &sm), (&r, &sr)] {
        assert_eq!(cli(p.port, &["cluster", "setslot", slot, "stable"]).trim(), "OK");
        assert_eq!(
            cli(p.port, &["del", &format!("{}present", if p.port == m.port { &tag_m } else { &tag_r })]).trim(),
            "1"
        );
        assert_eq!(cli(p.port, &["cluster", "delslots", slot]).trim(), "OK");
    }
    let (a, b) = both(&["get", &on_m], &["get", &on_r]);
    assert_eq!(a, b);
    // With a slot unassigned and full coverage required, the cluster is
    // down (once the state is recomputed), or the slot is not served.
    assert!(a.starts_with("CLUSTERDOWN"), "{a}");
}

#[test]
fn cluster_commands_errors_match_redis_server() {
    if !tools_present() {
        return;
    }
    let m = ms_node(&[]);
    let r = redis_node();
    let cases: &[&[&str]] = &[
        &["cluster", "addslots", "16384"],
        &["cluster", "addslots", "-1"],
        &["cluster", "addslots", "abc"],
        &["cluster", "addslots", "5", "5"],
        &["cluster", "delslots", "5"],
        &["cluster", "addslotsrange", "10", "5"],
        &["cluster", "addslotsrange", "1"],
        &["cluster", "addslotsrange", "1", "2", "3"],
        &["cluster", "countkeysinslot", "16384"],
        &["cluster", "countkeysinslot", "x"],
        &["cluster", "countkeysinslot", "5"],
        &["cluster", "getkeysinslot", "5", "-1"],
        &["cluster", "getkeysinslot", "5", "10"],
        &["cluster", "forget", "0000000000000000000000000000000000000000"],
        &["cluster", "count-failure-reports", "nope"],
        &["cluster", "set-config-epoch", "-5"],
        &["cluster", "set-config-epoch", "x"],
        &["cluster", "meet", "999.1.1.1", "7000"],
        &["cluster", "meet", "127.0.0.1", "x"],
        &["cluster", "meet", "127.0.0.1", "7000", "x"],
        &["cluster", "setslot", "5", "bogus"],
        &["cluster", "setslot", "99999", "stable"],
        &["cluster", "setslot", "5", "migrating", "0000000000000000000000000000000000000000"],
        &["cluster", "setslot", "5", "node", "0000000000000000000000000000000000000000"],
        &["cluster", "replicas", "0000000000000000000000000000000000000000"],
        &["cluster", "reset", "bogus"],
        &["cluster", "addslots", "7"],
        &["cluster", "addslots", "7"],
        &["cluster", "setslot", "7", "importing", "0000000000000000000000000000000000000000"],
        &["cluster", "delslots", "7"],
        &["cluster", "bumpepoch"],
        &["cluster", "bumpepoch"],
        &["cluster", "set-config-epoch", "3"],
        &["cluster", "keyslot", "{user}1"],
        &["cluster", "help"],
        &["cluster", "help", "extra"],
        &["select", "1"],
        &["select", "0"],
        &["asking"],
        &["readonly"],
        &["readwrite"],
    ];
    for c in cases {
        let (a, b) = (cli(m.port, c), cli(r.port, c));
        assert_eq!(a, b, "{c:?}");
    }
    // The id is 40 hex characters and stays the same.
    let id = myid(&m);
    assert!(id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    // CLUSTER NODES of a lone node, once ids and ports are set aside.
    let shape = |p: &Proc| {
        let text = cli(p.port, &["cluster", "nodes"]);
        let id = myid(p);
        let bus = text.split('@').nth(1).and_then(|s| s.split(' ').next()).unwrap_or("").to_string();
        text.replace(&id, "ID").replace(&format!(":{}@{bus} ", p.port), ":PORT@BUS ")
    };
    assert_eq!(shape(&m), shape(&r));
}

/// `cluster-preferred-endpoint-type` (`ip`, `hostname`, `unknown-endpoint`) shapes CLUSTER SLOTS,
/// CLUSTER SHARDS and MOVED as on redis-server: both nodes of a mixed cluster, set alike, describe
/// the cluster identically, and each redirects to the other by the same kind of endpoint.
#[test]
fn preferred_endpoint_types_match_redis_server() {
    if !tools_present() {
        return;
    }
    let (m, r) = moonshard_and_redis_halves();
    for (p, name) in [(&m, "host-m"), (&r, "host-r")] {
        assert_eq!(cli(p.port, &["config", "set", "cluster-announce-hostname", name]).trim(), "OK");
    }
    wait_until("hostnames gossiped", 20, || {
        [&m, &r].iter().all(|p| {
            let nodes = cli(p.port, &["cluster", "nodes"]);
            nodes.contains(",host-m ") && nodes.contains(",host-r ")
        })
    });
    let on_m = (0..).map(|i| format!("m{i}")).find(|k| slot(k) < 8192).unwrap();
    let on_r = (0..).map(|i| format!("r{i}")).find(|k| slot(k) >= 8192).unwrap();
    let view = |p: &Proc| {
        let slots =
            Command::new("redis-cli").args(["--no-raw", "-p", &p.port.to_string(), "cluster", "slots"]).output();
        let shards =
            Command::new("redis-cli").args(["-3", "--no-raw", "-p", &p.port.to_string(), "cluster", "shards"]).output();
        let text = |o: std::io::Result<std::process::Output>| String::from_utf8_lossy(&o.unwrap().stdout).into_owned();
        // SHARDS lists the shards in no set order (redis-server: its node table's): sorted here.
        let shards = text(shards);
        let mut entries: Vec<String> = Vec::new();
        for line in shards.lines() {
            let top = line.split_once(") ").is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
            match entries.last_mut() {
                Some(e) if !top => e.push_str(&format!("\n{line}")),
                _ => entries.push(line.split_once(") ").map_or(line, |(_, rest)| rest).to_string()),
            }
        }
        entries.sort();
        format!("{}\n{}", text(slots), entries.join("\n"))
    };
    for (kind, endpoint_m, endpoint_r) in [
        ("hostname", "host-m", "host-r"),
        ("unknown-endpoint", "", ""),
        ("ip", "127.0.0.1", "127.0.0.1"),
        ("hostname", "?", "host-r"),
    ] {
        if endpoint_m == "?" {
            assert_eq!(cli(m.port, &["config", "set", "cluster-announce-hostname", ""]).trim(), "OK");
            wait_until("hostname cleared", 20, || !cli(r.port, &["cluster", "nodes"]).contains(",host-m "));
        }
        for p in [&m, &r] {
            assert_eq!(cli(p.port, &["config", "set", "cluster-preferred-endpoint-type", kind]).trim(), "OK");
        }
        let moved_to_r = format!("MOVED {} {endpoint_r}:{}", slot(&on_r), r.port);
        let moved_to_m = format!("MOVED {} {endpoint_m}:{}", slot(&on_m), m.port);
        // redis-server applies the setting at once, moonshard within its cluster cron.
        wait_until("the endpoint type applies", 10, || cli(m.port, &["get", &on_r]).trim() == moved_to_r);
        assert_eq!(cli(r.port, &["get", &on_m]).trim(), moved_to_m, "{kind}");
        let (ours, theirs) = (view(&m), view(&r));
        assert_eq!(ours, theirs, "{kind}");
        if kind == "unknown-endpoint" {
            assert!(ours.contains("(nil)"), "{ours}");
        }
    }
}

/// A client blocked on a key whose slot moves to another node (a reshard)
/// is unblocked with `MOVED` to the new owner, as Redis's cron does
/// (clusterRedirectBlockedClientIfNeeded); it used to wait forever.
#[test]
fn a_blocked_client_is_redirected_when_its_slot_moves() {
    if !tools_present() {
        return;
    }
    let nodes = [ms_node(&[]), ms_node(&[]), ms_node(&[])];
    let refs: Vec<&Proc> = nodes.iter().collect();
    form(&refs);
    // key9184688 is in slot 10923, the first slot of the third node.
    assert_eq!(slot("key9184688"), 10923);
    let mut blocked = std::net::TcpStream::connect(("127.0.0.1", nodes[2].port)).unwrap();
    blocked.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    std::io::Write::write_all(&mut blocked, b"*3\r\n$5\r\nBRPOP\r\n$10\r\nkey9184688\r\n$1\r\n0\r\n").unwrap();
    wait_until("the client to block", 10, || cli(nodes[2].port, &["info", "clients"]).contains("blocked_clients:1"));
    let out = cluster_tool(&[
        "reshard".into(),
        addr(&nodes[2]),
        "--cluster-to".into(),
        myid(&nodes[0]),
        "--cluster-from".into(),
        myid(&nodes[2]),
        "--cluster-slots".into(),
        "1".into(),
        "--cluster-yes".into(),
    ]);
    assert!(!out.contains("ERR"), "reshard:\n{out}");
    let mut reply = String::new();
    let mut r = std::io::BufReader::new(blocked);
    std::io::BufRead::read_line(&mut r, &mut reply).expect("a reply to the blocked BRPOP");
    assert_eq!(reply.trim_end(), format!("-MOVED 10923 127.0.0.1:{}", nodes[0].port));
    for n in &nodes {
        assert!(cli(n.port, &["info", "clients"]).contains("blocked_clients:0"));
    }
}

/// Redis's "Cluster state changed: ok|fail" log line (a warning, `#`):
/// client libraries' test suites (the redis crate's) and operators wait
/// for it after `redis-cli --cluster create`.
#[test]
fn cluster_state_changes_are_logged_as_redis_logs_them() {
    if !tools_present() {
        return;
    }
    let dir = common::temp_dir("cluster-state-log");
    let logs: Vec<std::path::PathBuf> = (0..3).map(|i| dir.join(format!("node{i}.log"))).collect();
    let mut nodes: Vec<Proc> = logs
        .iter()
        .map(|log| ms_node(&["--cluster-node-timeout", "1000", "--logfile", log.to_str().unwrap()]))
        .collect();
    let refs: Vec<&Proc> = nodes.iter().collect();
    create(&refs);
    wait_ok(&refs);
    let read = |i: usize| std::fs::read_to_string(&logs[i]).unwrap_or_default();
    for i in 0..3 {
        wait_until("the ok line", 10, || read(i).contains(" # Cluster state changed: ok"));
        assert!(!read(i).contains("Cluster state changed: fail"), "{}", read(i));
    }
    // A master lost for longer than the node timeout: the others go to fail.
    drop(nodes.pop());
    wait_until("the fail line", 30, || read(0).contains(" # Cluster state changed: fail"));
    let _ = std::fs::remove_dir_all(&dir);
}
