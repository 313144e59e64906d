//! TLS between servers, as Redis 7.0: `tls-replication yes` (a replica
//! reaches its master's TLS port, presenting its client certificate and
//! verifying the master against its CAs) and `tls-cluster yes` (the cluster
//! bus and MIGRATE over TLS; nodes announce their TLS ports, plaintext
//! clients are shown the plaintext ones). moonshard and redis-server 7.0 on
//! either side; certificates made in the test by `openssl`.

#[path = "common/certs.rs"]
mod certs;
#[path = "common/cluster.rs"]
mod cluster;
mod common;

use certs::{certs, cli_tls, cli_tls_args, tls_flags, Certs};
use common::Proc;
use std::process::{Command, Stdio};

/// The flags of a server whose replication link is TLS: its certificate
/// (and, with `client`, a distinct client certificate) and the CA `ca`.
fn link_flags(c: &Certs, client: bool, ca: &str) -> Vec<String> {
    let mut f: Vec<String> = vec![
        "--tls-replication".into(),
        "yes".into(),
        "--tls-cert-file".into(),
        c.path("server.crt"),
        "--tls-key-file".into(),
        c.path("server.key"),
        "--tls-ca-cert-file".into(),
        c.path(ca),
    ];
    if client {
        f.extend(["--tls-client-cert-file".into(), c.path("client.crt")]);
        f.extend(["--tls-client-key-file".into(), c.path("client.key")]);
    }
    f
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A moonshard with a TLS port only (`--port 0`), client certificates
/// required; `Proc::port` is its TLS port. Its log goes to `moonshard.log`
/// in its directory.
fn tls_only(c: &Certs, extra: &[&str]) -> Proc {
    let tls_port = common::free_port();
    let dir = common::temp_dir("tls-links");
    let log = std::fs::File::create(dir.join("moonshard.log")).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .args(["--port", "0", "--save", "", "--repl-diskless-sync-delay", "0", "--dir"])
        .arg(&dir)
        .args(tls_flags(c, tls_port, "yes"))
        .args(extra)
        .stdout(log)
        .spawn()
        .expect("start moonshard");
    common::wait_until(20, "the TLS listener", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("moonshard exited: {status}");
        }
        std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
    });
    Proc { port: tls_port, child, dir: Some(dir) }
}

/// A moonshard with a plaintext port and a TLS port (returned second).
fn both_ports(c: &Certs, extra: &[&str]) -> (Proc, u16) {
    let tls_port = common::free_port();
    let mut flags = tls_flags(c, tls_port, "yes");
    flags.extend(["--port".to_string(), common::free_port().to_string()]);
    let mut args = strs(&flags);
    args.extend_from_slice(extra);
    (common::moonshard(&args), tls_port)
}

fn link_up(con: &mut redis::Connection) -> bool {
    common::field_of(con, "replication", "master_link_status") == "up"
}

#[test]
fn moonshard_replica_of_a_tls_only_moonshard_master() {
    let Some(c) = certs() else { return };
    let master = tls_only(&c, &["--shards", "2"]);
    assert_eq!(cli_tls(&c, master.port, "ca.crt", Some(""), &["set", "before", "sync"]), "OK");
    let flags = link_flags(&c, true, "ca.crt");
    let replica = common::moonshard(&strs(&flags));
    let mut r = replica.client();
    assert_eq!(common::q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    common::wait_until(30, "master_link_status:up over TLS", || link_up(&mut r));
    assert_eq!(common::q(&mut r, "GET before"), "sync");
    // The stream flows over the TLS link.
    for i in 0..20 {
        assert_eq!(cli_tls(&c, master.port, "ca.crt", Some(""), &["set", &format!("k{i}"), &i.to_string()]), "OK");
    }
    common::wait_until(20, "writes to reach the replica", || common::q(&mut r, "GET k19") == "19");
    assert_eq!(common::q(&mut r, "DBSIZE"), "21");
    let info = cli_tls(&c, master.port, "ca.crt", Some(""), &["info", "replication"]);
    assert!(info.contains("connected_slaves:1"), "{info}");
}

#[test]
fn moonshard_replica_of_a_redis_master_over_tls() {
    let Some(c) = certs() else { return };
    let tls_port = common::free_port();
    let Some(master) = common::repl_redis(&strs(&tls_flags(&c, tls_port, "yes"))) else { return };
    let mut m = master.client();
    assert_eq!(common::q(&mut m, "SET before sync"), "OK");
    // No tls-client-cert-file: the replica presents its tls-cert-file.
    let flags = link_flags(&c, false, "ca.crt");
    let replica = common::moonshard(&strs(&flags));
    let mut r = replica.client();
    assert_eq!(common::q(&mut r, &format!("REPLICAOF 127.0.0.1 {tls_port}")), "OK");
    common::wait_until(30, "master_link_status:up over TLS", || link_up(&mut r));
    assert_eq!(common::q(&mut r, "GET before"), "sync");
    assert_eq!(common::q(&mut m, "RPUSH l a b c"), "3");
    assert_eq!(common::q(&mut m, "INCRBY n 41"), "41");
    common::wait_until(20, "writes to reach the replica", || common::q(&mut r, "GET n") == "41");
    assert_eq!(common::q(&mut r, "LRANGE l 0 -1"), "[a,b,c]");
    assert_eq!(common::info_num(&mut m, "replication", "connected_slaves"), 1);
}

#[test]
fn redis_replica_of_a_moonshard_master_over_tls() {
    let Some(c) = certs() else { return };
    let (master, tls_port) = both_ports(&c, &["--shards", "2", "--repl-diskless-sync-delay", "0"]);
    let mut m = master.client();
    assert_eq!(common::q(&mut m, "SET before sync"), "OK");
    let flags = link_flags(&c, true, "ca.crt");
    let Some(replica) = common::redis_server_with(&strs(&flags)) else { return };
    let mut r = replica.client();
    assert_eq!(common::q(&mut r, &format!("REPLICAOF 127.0.0.1 {tls_port}")), "OK");
    common::wait_until(30, "redis-server's master_link_status:up over TLS", || link_up(&mut r));
    assert_eq!(common::q(&mut r, "GET before"), "sync");
    assert_eq!(common::q(&mut m, "SADD s x y"), "2");
    assert_eq!(common::q(&mut m, "SET after sync"), "OK");
    common::wait_until(20, "writes to reach redis-server", || common::q(&mut r, "GET after") == "sync");
    assert_eq!(common::q(&mut r, "SCARD s"), "2");
    // The master lists its TLS replica.
    common::wait_until(20, "the master to list its replica", || {
        common::field_of(&mut m, "replication", "slave0").contains("state=online")
    });
}

/// A replica that does not trust the master's CA: the link stays down,
/// each attempt is logged with the reason, the replica retries, and it
/// connects once given the right CA (CONFIG SET reloads it).
#[test]
fn replica_with_the_wrong_ca_does_not_link_and_retries() {
    let Some(c) = certs() else { return };
    let master = tls_only(&c, &[]);
    assert_eq!(cli_tls(&c, master.port, "ca.crt", Some(""), &["set", "k", "v"]), "OK");
    let flags = link_flags(&c, true, "other-ca.crt");
    let (replica, log) = common::moonshard_logged(&strs(&flags));
    let mut r = replica.client();
    assert_eq!(common::q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    let failures = |text: &str| {
        text.lines().filter(|l| l.contains("Error condition on socket for SYNC") && l.contains("certificate")).count()
    };
    common::wait_until(30, "two failed attempts logged", || failures(&std::fs::read_to_string(&log).unwrap()) >= 2);
    assert!(!link_up(&mut r));
    assert_eq!(common::q(&mut r, "PING"), "PONG");
    assert_eq!(common::q(&mut r, "DBSIZE"), "0");
    // The master logged refused handshakes, not a replica.
    let info = cli_tls(&c, master.port, "ca.crt", Some(""), &["info", "replication"]);
    assert!(info.contains("connected_slaves:0"), "{info}");
    let ca = c.path("ca.crt");
    assert_eq!(common::q(&mut r, &format!("CONFIG SET tls-ca-cert-file {ca}")), "OK");
    common::wait_until(30, "the link once the CA is right", || link_up(&mut r));
    assert_eq!(common::q(&mut r, "GET k"), "v");
}

// ------------------------------------------------------------ tls-cluster

/// A cluster node with both ports and `tls-cluster yes` (bus port chosen
/// free); returns it (its plaintext port) and its TLS port.
fn tls_ms_node(c: &Certs) -> (Proc, u16) {
    let cport = common::free_port().to_string();
    let mut extra = vec!["--cluster-enabled", "yes", "--cluster-port", &cport, "--tls-cluster", "yes"];
    extra.extend(["--tls-replication", "yes", "--shards", "2"]);
    both_ports(c, &extra)
}

fn tls_redis_node(c: &Certs) -> (Proc, u16) {
    let (cport, tls_port) = (common::free_port().to_string(), common::free_port());
    let mut flags = tls_flags(c, tls_port, "yes");
    flags.extend(["--cluster-enabled", "yes", "--cluster-port", &cport, "--tls-cluster", "yes"].map(String::from));
    flags.extend(["--tls-replication", "yes"].map(String::from));
    (common::redis_server_with(&strs(&flags)).expect("redis-server"), tls_port)
}

/// redis-cli over TLS (client certificate) with `args`; its stdout.
fn tls_cli(c: &Certs, port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(cli_tls_args(c))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `redis-cli --tls --cluster create` of the TLS ports, then waits for
/// every node to be ok and linked.
fn tls_create(c: &Certs, tls_ports: &[u16], plain: &[&Proc]) {
    tls_create_with(c, tls_ports, plain, 0)
}

/// `tls_create` with `replicas` replicas per master.
fn tls_create_with(c: &Certs, tls_ports: &[u16], plain: &[&Proc], replicas: usize) {
    let mut args = vec!["create".to_string()];
    args.extend(tls_ports.iter().map(|p| cluster::port_addr(*p)));
    args.extend(["--cluster-replicas".to_string(), replicas.to_string()]);
    args.push("--cluster-yes".into());
    let out = cluster::cluster_tool_with(&cli_tls_args(c), &args);
    assert!(out.contains("[OK] All 16384 slots covered."), "create failed:\n{out}");
    cluster::wait_ok(plain);
    cluster::wait_connected(plain);
}

/// A key whose slot `node` (a TLS port) does not serve, and the owner's TLS port.
fn key_elsewhere(c: &Certs, node: u16, tls_ports: &[u16]) -> (String, u16) {
    let nodes = tls_cli(c, node, &["cluster", "nodes"]);
    for i in 0..1000 {
        let key = format!("key:{i}");
        let slot = cluster::slot(&key) as usize;
        for line in nodes.lines() {
            let port: u16 = line.split(' ').nth(1).and_then(|a| a.split([':', '@']).nth(1)?.parse().ok()).unwrap_or(0);
            let owns = line.split(' ').skip(8).any(|r| match r.split_once('-') {
                Some((a, b)) => {
                    a.parse::<usize>().is_ok_and(|a| a <= slot) && b.parse::<usize>().is_ok_and(|b| slot <= b)
                }
                None => r.parse::<usize>() == Ok(slot),
            });
            if owns && port != node && tls_ports.contains(&port) {
                return (key, port);
            }
        }
    }
    panic!("no key served elsewhere:\n{nodes}");
}

/// Checks a formed TLS cluster: `--cluster check` over TLS, TLS ports for
/// TLS clients and plaintext ports for plaintext ones (CLUSTER NODES,
/// SLOTS, SHARDS, MOVED), keys set and read across nodes with `-c`.
fn check_tls_cluster(c: &Certs, nodes: &[(&Proc, u16)]) {
    let tls_ports: Vec<u16> = nodes.iter().map(|n| n.1).collect();
    cluster::check_clean_with(&cli_tls_args(c), tls_ports[0]);
    for (node, _) in nodes {
        // The plaintext ports travel in the bus headers (pport): wait for them.
        cluster::wait_until("every node's plaintext port", 15, || {
            let plain = cluster::cli(node.port, &["cluster", "nodes"]);
            nodes.iter().all(|(o, _)| plain.contains(&format!("127.0.0.1:{}@", o.port)))
        });
    }
    for (node, tls_port) in nodes {
        let over_tls = tls_cli(c, *tls_port, &["cluster", "nodes"]);
        let plain = cluster::cli(node.port, &["cluster", "nodes"]);
        for (other, other_tls) in nodes {
            assert!(over_tls.contains(&format!("127.0.0.1:{other_tls}@")), "TLS ports expected:\n{over_tls}");
            assert!(plain.contains(&format!("127.0.0.1:{}@", other.port)), "plaintext ports expected:\n{plain}");
        }
        let shards = tls_cli(c, *tls_port, &["cluster", "shards"]);
        assert!(shards.contains("tls-port"), "{shards}");
        let slots = cluster::cli(node.port, &["cluster", "slots"]);
        assert!(nodes.iter().all(|(o, _)| slots.contains(&o.port.to_string())), "{slots}");
        let (key, owner) = key_elsewhere(c, *tls_port, &tls_ports);
        let moved = tls_cli(c, *tls_port, &["set", &key, "x"]);
        let slot = cluster::slot(&key);
        assert_eq!(moved, format!("MOVED {slot} 127.0.0.1:{owner}"));
        let owner_plain = nodes.iter().find(|n| n.1 == owner).map(|n| n.0.port).unwrap_or(0);
        let moved = cluster::cli(node.port, &["set", &key, "x"]);
        assert_eq!(moved.trim(), format!("MOVED {slot} 127.0.0.1:{owner_plain}"));
    }
    // Set through each node, read through the next, following redirections over TLS.
    for (i, (_, tls_port)) in nodes.iter().enumerate() {
        let next = nodes[(i + 1) % nodes.len()].1;
        for k in 0..5 {
            let key = format!("user:{i}:{k}");
            assert_eq!(tls_cli(c, *tls_port, &["-c", "set", &key, &format!("v{i}{k}")]), "OK");
            assert_eq!(tls_cli(c, next, &["-c", "get", &key]), format!("v{i}{k}"));
        }
    }
}

#[test]
fn tls_cluster_of_moonshard_nodes() {
    let Some(c) = certs() else { return };
    if !cluster::tools_present() {
        return;
    }
    let (a, b, d) = (tls_ms_node(&c), tls_ms_node(&c), tls_ms_node(&c));
    tls_create(&c, &[a.1, b.1, d.1], &[&a.0, &b.0, &d.0]);
    check_tls_cluster(&c, &[(&a.0, a.1), (&b.0, b.1), (&d.0, d.1)]);

    // MIGRATE goes over TLS: to the target's TLS port, not its plaintext one.
    let (key, owner_tls) = key_elsewhere(&c, b.1, &[a.1, d.1]);
    let (src, dst) = if owner_tls == a.1 { (&a, &d) } else { (&d, &a) };
    assert_eq!(tls_cli(&c, src.1, &["set", &key, "moving"]), "OK");
    let slot = cluster::slot(&key).to_string();
    let (src_id, dst_id) = (cluster::myid(&src.0), cluster::myid(&dst.0));
    assert_eq!(cluster::cli(dst.0.port, &["cluster", "setslot", &slot, "importing", &src_id]).trim(), "OK");
    assert_eq!(cluster::cli(src.0.port, &["cluster", "setslot", &slot, "migrating", &dst_id]).trim(), "OK");
    let plain = cluster::cli(src.0.port, &["migrate", "127.0.0.1", &dst.0.port.to_string(), &key, "0", "2000"]);
    assert!(plain.starts_with("IOERR"), "MIGRATE to a plaintext port with tls-cluster: {plain}");
    let over_tls = cluster::cli(src.0.port, &["migrate", "127.0.0.1", &dst.1.to_string(), &key, "0", "5000"]);
    assert_eq!(over_tls.trim(), "OK");
    assert_eq!(tls_cli(&c, src.1, &["get", &key]), format!("ASK {slot} 127.0.0.1:{}", dst.1));
    for n in [&dst.0, &src.0] {
        assert_eq!(cluster::cli(n.port, &["cluster", "setslot", &slot, "node", &dst_id]).trim(), "OK");
    }
    assert_eq!(tls_cli(&c, b.1, &["-c", "get", &key]), "moving");
}

/// Without `cluster-port`, the bus port is the TLS port + 10000 (Redis 7.0).
#[test]
fn tls_cluster_bus_port_follows_the_tls_port() {
    let Some(c) = certs() else { return };
    // A TLS port whose + 10000 is free too.
    let tls_port = (0..50)
        .map(|_| common::free_port())
        .find(|p| *p < 55000 && std::net::TcpListener::bind(("127.0.0.1", p + 10000)).is_ok())
        .expect("a free port pair");
    let mut flags = tls_flags(&c, tls_port, "yes");
    flags.extend(["--port", &common::free_port().to_string()].map(String::from));
    flags.extend(["--cluster-enabled", "yes", "--tls-cluster", "yes"].map(String::from));
    let node = common::moonshard(&strs(&flags));
    let me = cluster::cli(node.port, &["cluster", "nodes"]);
    assert!(me.contains(&format!(":{}@{} myself", node.port, tls_port + 10000)), "{me}");
    let me = tls_cli(&c, tls_port, &["cluster", "nodes"]);
    assert!(me.contains(&format!(":{tls_port}@{} myself", tls_port + 10000)), "{me}");
}

#[test]
fn tls_cluster_of_moonshard_and_redis_nodes() {
    let Some(c) = certs() else { return };
    if !cluster::tools_present() {
        return;
    }
    let (a, r, b) = (tls_ms_node(&c), tls_redis_node(&c), tls_ms_node(&c));
    tls_create(&c, &[a.1, r.1, b.1], &[&a.0, &r.0, &b.0]);
    check_tls_cluster(&c, &[(&a.0, a.1), (&r.0, r.1), (&b.0, b.1)]);
    // redis-server learned the moonshard nodes' plaintext ports (pport).
    let seen = cluster::cli(r.0.port, &["cluster", "nodes"]);
    assert!(seen.contains(&format!(":{}@", a.0.port)) && seen.contains(&format!(":{}@", b.0.port)), "{seen}");
}

/// 3 masters and 3 replicas: each replica follows its master over TLS
/// (`tls-replication yes`, the master's announced TLS port), and reads on
/// a replica (READONLY) see the writes made through the cluster over TLS.
#[test]
fn tls_cluster_with_replicas() {
    let Some(c) = certs() else { return };
    if !cluster::tools_present() {
        return;
    }
    let nodes: Vec<(Proc, u16)> = (0..6).map(|_| tls_ms_node(&c)).collect();
    let tls_ports: Vec<u16> = nodes.iter().map(|n| n.1).collect();
    let plain: Vec<&Proc> = nodes.iter().map(|n| &n.0).collect();
    tls_create_with(&c, &tls_ports, &plain, 1);
    let mut cons: Vec<redis::Connection> = plain.iter().map(|p| p.client()).collect();
    let roles: Vec<String> = cons.iter_mut().map(|con| common::field_of(con, "replication", "role")).collect();
    assert_eq!(roles.iter().filter(|r| *r == "slave").count(), 3, "{roles:?}");
    for (i, con) in cons.iter_mut().enumerate() {
        if roles[i] == "slave" {
            common::wait_until(30, "a replica's link over TLS", || link_up(con));
            let master_port: u16 = common::field_of(con, "replication", "master_port").parse().unwrap_or(0);
            assert!(tls_ports.contains(&master_port), "replica {i} follows {master_port}, not a TLS port");
        }
    }
    cluster::check_clean_with(&cli_tls_args(&c), tls_ports[0]);
    for k in 0..30 {
        assert_eq!(tls_cli(&c, tls_ports[k % 6], &["-c", "set", &format!("r:{k}"), "x"]), "OK");
    }
    for (i, con) in cons.iter_mut().enumerate() {
        if roles[i] != "slave" {
            continue;
        }
        let master_port: u16 = common::field_of(con, "replication", "master_port").parse().unwrap_or(0);
        let master = nodes.iter().position(|n| n.1 == master_port).expect("the master");
        let want = common::q(&mut plain[master].client(), "DBSIZE");
        assert_ne!(want, "0");
        assert_eq!(common::q(con, "READONLY"), "OK");
        common::wait_until(20, "the replica to hold its master's keys", || common::q(con, "DBSIZE") == want);
    }
}

/// On a server without TLS, CONFIG SET of the link settings answers as
/// redis-server: turning tls-replication or tls-cluster on needs a working
/// TLS configuration (the value is restored), certificate paths are taken
/// unchecked.
#[test]
fn config_set_of_link_settings_as_redis() {
    let Some(mut d) = common::Diff::start(&[]) else { return };
    for (name, value) in [
        ("tls-replication", "no"),
        ("tls-replication", "yes"),
        ("tls-cluster", "yes"),
        ("tls-cert-file", "/nonexistent/cert"),
        ("tls-client-cert-file", "/nonexistent/cert"),
        ("tls-client-key-file-pass", "secret"),
    ] {
        let _ = d.check(&["CONFIG", "SET", name, value]);
    }
    let _ = d.check(&["CONFIG", "GET", "tls-replication"]);
    let _ = d.check(&["CONFIG", "GET", "tls-cluster"]);
}
