//! Redis's own cluster tools (`redis-cli --cluster add-node`, `del-node`,
//! `rebalance`, `fix`, `info`, `call`) driving moonshard nodes, alone and
//! mixed with a redis-server node, and a cluster-aware client load (a small
//! MOVED/ASK/TRYAGAIN-following client below) running while slots move.
//! Where Redis has the behaviour the same scenario runs on a redis-server
//! cluster and the observations are compared. Every wait has a deadline;
//! every process is killed when its `Proc` drops.

#[path = "common/cluster.rs"]
mod cluster_util;
mod common;

use cluster_util::*;
use common::Proc;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tool(args: &[&str]) -> String {
    cluster_tool(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

/// Waits until every node knows exactly `nodes`, all connected, and every
/// node's state is ok (a node that just joined waits Redis's rejoin delay).
fn settle(nodes: &[&Proc]) {
    wait_connected(nodes);
    for n in nodes {
        wait_until("cluster_state:ok", 20, || state_ok(n.port));
    }
}

/// Slots each node serves, as `--cluster info` reports them, in `nodes` order.
fn slots_per_node(nodes: &[&Proc]) -> Vec<usize> {
    let out = tool(&["info", &addr(nodes[0])]);
    nodes
        .iter()
        .map(|n| {
            let line = out.lines().find(|l| l.starts_with(&format!("{} ", addr(n)))).unwrap_or("");
            line.split(" | ").nth(1).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).unwrap_or(0)
        })
        .collect()
}

/// A minimal cluster-aware client: a slot map learned from MOVED, ASK
/// followed with ASKING, TRYAGAIN retried. Any other error is returned.
struct ClusterClient {
    conns: HashMap<u16, (BufReader<TcpStream>, TcpStream)>,
    slots: Vec<u16>,
    pub redirects: u64,
}

#[derive(Debug, PartialEq)]
enum Resp {
    Simple(String),
    Err(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

fn read_resp(r: &mut BufReader<TcpStream>) -> std::io::Result<Resp> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let line = line.trim_end();
    if line.is_empty() {
        return Err(std::io::Error::other("connection closed"));
    }
    let (t, rest) = line.split_at(1);
    Ok(match t {
        "+" => Resp::Simple(rest.into()),
        "-" => Resp::Err(rest.into()),
        ":" => Resp::Int(rest.parse().unwrap()),
        "$" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                Resp::Bulk(None)
            } else {
                let mut buf = vec![0u8; n as usize + 2];
                std::io::Read::read_exact(r, &mut buf)?;
                buf.truncate(n as usize);
                Resp::Bulk(Some(buf))
            }
        }
        "*" => {
            let n: i64 = rest.parse().unwrap();
            Resp::Array((0..n.max(0)).map(|_| read_resp(r)).collect::<Result<_, _>>()?)
        }
        _ => panic!("bad reply line {line:?}"),
    })
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

impl ClusterClient {
    fn new(seed: u16) -> ClusterClient {
        ClusterClient { conns: HashMap::new(), slots: vec![seed; 16384], redirects: 0 }
    }

    fn conn(&mut self, port: u16) -> &mut (BufReader<TcpStream>, TcpStream) {
        self.conns.entry(port).or_insert_with(|| {
            let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            (BufReader::new(s.try_clone().unwrap()), s)
        })
    }

    fn roundtrip(&mut self, port: u16, asking: bool, args: &[&str]) -> Resp {
        let c = self.conn(port);
        let mut req = Vec::new();
        if asking {
            req.extend(encode(&["ASKING"]));
        }
        req.extend(encode(args));
        c.1.write_all(&req).expect("write");
        if asking {
            assert_eq!(read_resp(&mut c.0).expect("read"), Resp::Simple("OK".into()));
        }
        read_resp(&mut c.0).expect("read")
    }

    /// Runs a command on the keys' slot; `Err` for an error that a client
    /// library cannot retry.
    fn call(&mut self, slot_key: &str, args: &[&str]) -> Result<Resp, String> {
        let slot = usize::from(slot(slot_key));
        let mut port = self.slots[slot];
        let mut asking = false;
        for _ in 0..200 {
            match self.roundtrip(port, asking, args) {
                Resp::Err(e) => {
                    asking = false;
                    let parts: Vec<&str> = e.split(' ').collect();
                    match parts[0] {
                        "MOVED" | "ASK" => {
                            self.redirects += 1;
                            let to: u16 = parts[2].rsplit(':').next().unwrap().parse().unwrap();
                            if parts[0] == "MOVED" {
                                self.slots[slot] = to;
                            } else {
                                asking = true;
                            }
                            port = to;
                        }
                        "TRYAGAIN" => {
                            self.redirects += 1;
                            std::thread::sleep(Duration::from_millis(5));
                            port = self.slots[slot];
                        }
                        _ => return Err(e),
                    }
                }
                r => return Ok(r),
            }
        }
        Err(format!("too many redirections for {args:?}"))
    }
}

/// Writes keys of several types and counters across the cluster until
/// `stop`; returns what each key must hold at the end. Panics on an error
/// that is not MOVED/ASK/TRYAGAIN.
fn load(seed: u16, stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) -> (HashMap<String, String>, u64) {
    let mut c = ClusterClient::new(seed);
    let mut expect = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut round = 0u64;
    while !stop.load(Relaxed) && Instant::now() < deadline {
        for i in 0..300 {
            let k = format!("load:{i}");
            let v = format!("v{i}.{round}");
            c.call(&k, &["SET", &k, &v]).unwrap_or_else(|e| panic!("SET {k}: {e}"));
            expect.insert(k, v.clone());
            if i % 10 == 0 {
                // Several keys in one slot: TRYAGAIN while the slot is split.
                let (a, b) = (format!("{{m{i}}}a"), format!("{{m{i}}}b"));
                c.call(&a, &["MSET", &a, &v, &b, &v]).unwrap_or_else(|e| panic!("MSET {a}: {e}"));
                expect.insert(a, v.clone());
                expect.insert(b, v.clone());
                let n = format!("cnt:{i}");
                let got = c.call(&n, &["INCR", &n]).unwrap_or_else(|e| panic!("INCR {n}: {e}"));
                assert_eq!(got, Resp::Int(round as i64 + 1), "INCR {n}");
                expect.insert(n, (round + 1).to_string());
            }
            ops.fetch_add(1, Relaxed);
        }
        round += 1;
    }
    for (k, v) in &expect {
        let got = c.call(k, &["GET", k]).unwrap_or_else(|e| panic!("GET {k}: {e}"));
        assert_eq!(got, Resp::Bulk(Some(v.clone().into_bytes())), "key {k} after the moves");
    }
    (expect, c.redirects)
}

fn write_keys(nodes: &[&Proc], n: usize) {
    let mut c = ClusterClient::new(nodes[0].port);
    for i in 0..n {
        let k = format!("k:{i}");
        c.call(&k, &["SET", &k, &i.to_string()]).unwrap();
    }
    // A few other types, so MIGRATE carries their serialized forms.
    for t in 0..20 {
        let h = format!("h:{t}");
        c.call(&h, &["HSET", &h, "f", "1", "g", "2"]).unwrap();
        let l = format!("l:{t}");
        c.call(&l, &["RPUSH", &l, "a", "b", "c"]).unwrap();
        let z = format!("z:{t}");
        c.call(&z, &["ZADD", &z, "1", "a", "2.5", "b"]).unwrap();
        let s = format!("s:{t}");
        c.call(&s, &["SADD", &s, "x", "y", "1", "2"]).unwrap();
        let x = format!("x:{t}");
        c.call(&x, &["XADD", &x, "1-1", "f", "v"]).unwrap();
        let e = format!("e:{t}");
        c.call(&e, &["SET", &e, "v", "EX", "1000"]).unwrap();
    }
}

fn read_keys(nodes: &[&Proc], n: usize) {
    let mut c = ClusterClient::new(nodes[0].port);
    for i in 0..n {
        let k = format!("k:{i}");
        assert_eq!(c.call(&k, &["GET", &k]).unwrap(), Resp::Bulk(Some(i.to_string().into_bytes())), "{k}");
    }
    for t in 0..20 {
        let h = format!("h:{t}");
        assert_eq!(c.call(&h, &["HGET", &h, "g"]).unwrap(), Resp::Bulk(Some(b"2".to_vec())), "{h}");
        let l = format!("l:{t}");
        assert_eq!(c.call(&l, &["LINDEX", &l, "2"]).unwrap(), Resp::Bulk(Some(b"c".to_vec())), "{l}");
        let z = format!("z:{t}");
        assert_eq!(c.call(&z, &["ZSCORE", &z, "b"]).unwrap(), Resp::Bulk(Some(b"2.5".to_vec())), "{z}");
        let s = format!("s:{t}");
        assert_eq!(c.call(&s, &["SCARD", &s]).unwrap(), Resp::Int(4), "{s}");
        let x = format!("x:{t}");
        assert_eq!(c.call(&x, &["XLEN", &x]).unwrap(), Resp::Int(1), "{x}");
        let e = format!("e:{t}");
        match c.call(&e, &["TTL", &e]).unwrap() {
            Resp::Int(ttl) => assert!((900..=1000).contains(&ttl), "{e} ttl {ttl}"),
            r => panic!("{e}: {r:?}"),
        }
    }
}

fn total_keys(node: &Proc) -> usize {
    let out = tool(&["info", &addr(node)]);
    let line = out.lines().find(|l| l.contains(" keys in ")).unwrap_or_else(|| panic!("info:\n{out}"));
    line.split(' ').find_map(|w| w.parse().ok()).unwrap()
}

/// add-node, rebalance with empty masters, fix of an open slot, info,
/// call, rebalance with a weight of 0, del-node; on the nodes `make` gives
/// (moonshard or redis-server). Returns observations to compare.
fn lifecycle(make: &dyn Fn() -> Proc) -> Vec<String> {
    let (a, b, c, d) = (make(), make(), make(), make());
    let three = [&a, &b, &c];
    create(&three);
    settle(&three);
    write_keys(&three, 1000);
    let all_keys = 1000 + 6 * 20;
    let mut seen = Vec::new();

    let out = tool(&["add-node", &addr(&d), &addr(&a)]);
    assert!(out.contains("[OK] New node added correctly."), "add-node:\n{out}");
    let four = [&a, &b, &c, &d];
    settle(&four);
    assert_eq!(slots_per_node(&four)[3], 0);

    // A small weight for the new master keeps the move short (a debug
    // build moves a slot in about 15 ms).
    let w = format!("{}=0.03", myid(&d));
    let out = tool(&["rebalance", &addr(&a), "--cluster-use-empty-masters", "--cluster-weight", &w]);
    assert!(out.contains("Rebalancing across 4 nodes"), "rebalance:\n{out}");
    assert!(!out.contains("ERR") && !out.contains("*** "), "rebalance:\n{out}");
    let slots = slots_per_node(&four);
    seen.push(format!("after rebalance {slots:?}"));
    assert!(slots[3] > 100 && slots.iter().sum::<usize>() == 16384, "{slots:?}");
    check_clean(a.port);
    read_keys(&four, 1000);
    assert_eq!(total_keys(&a), all_keys);

    // An open slot left behind: half-migrated keys, MIGRATING on the
    // owner, IMPORTING on the target. `fix` finishes the move.
    let slot: usize = cli(a.port, &["cluster", "keyslot", "{fix}"]).trim().parse().unwrap();
    let owner = owner_of(&four, "{fix}");
    let target = four.iter().find(|n| n.port != owner.port).unwrap();
    for i in 0..10 {
        cli(owner.port, &["set", &format!("{{fix}}{i}"), &i.to_string()]);
    }
    let s = slot.to_string();
    assert_eq!(cli(target.port, &["cluster", "setslot", &s, "importing", &myid(owner)]).trim(), "OK");
    assert_eq!(cli(owner.port, &["cluster", "setslot", &s, "migrating", &myid(target)]).trim(), "OK");
    let started = Instant::now();
    let out = cli(
        owner.port,
        &["migrate", "127.0.0.1", &target.port.to_string(), "", "0", "5000", "keys", "{fix}0", "{fix}1", "{fix}2"],
    );
    assert_eq!(out.trim(), "OK");
    // Each RESTORE-ASKING of the batch once waited ~90 ms for a lock.
    assert!(started.elapsed() < Duration::from_millis(250), "MIGRATE took {:?}", started.elapsed());
    let out = tool(&["check", &addr(&a)]);
    assert!(out.contains(&format!("[WARNING] The following slots are open: {slot}")), "check:\n{out}");
    seen.push(format!("ask {}", cli(owner.port, &["get", "{fix}1"]).trim().starts_with("ASK")));
    let out = tool(&["fix", &addr(&a)]);
    assert!(!out.contains("[ERR]") && !out.contains("replied with error"), "fix:\n{out}");
    check_clean(a.port);
    let new_owner = owner_of(&four, "{fix}");
    seen.push(format!("fix moved the slot to the importing node: {}", new_owner.port == target.port));
    for i in 0..10 {
        assert_eq!(cli(new_owner.port, &["get", &format!("{{fix}}{i}")]).trim(), i.to_string());
    }
    assert_eq!(total_keys(&a), all_keys + 10);

    // call: one command on every master.
    let out = tool(&["call", &addr(&a), "DBSIZE"]);
    let sum: usize = out.lines().filter_map(|l| l.split(": ").nth(1)?.trim().parse::<usize>().ok()).sum();
    assert_eq!(sum, all_keys + 10, "call:\n{out}");
    seen.push(format!("call lines {}", out.lines().filter(|l| l.contains(": ")).count()));

    // Weight 0: every slot leaves d; then d leaves the cluster.
    let w = format!("{}=0", myid(&d));
    let out = tool(&["rebalance", &addr(&a), "--cluster-weight", &w]);
    assert!(!out.contains("ERR") && !out.contains("*** "), "rebalance:\n{out}");
    let slots = slots_per_node(&four);
    seen.push(format!("after weight 0 {slots:?}"));
    assert_eq!(slots[3], 0);
    read_keys(&three, 1000);
    let did = myid(&d);
    let out = tool(&["del-node", &addr(&a), &did]);
    assert!(out.contains("Sending CLUSTER RESET SOFT to the deleted node."), "del-node:\n{out}");
    for n in three {
        let text = cli(n.port, &["cluster", "nodes"]);
        assert!(!text.contains(&did), "{} still knows the deleted node:\n{text}", n.port);
    }
    // The deleted node forgot everyone; it keeps its id (soft reset).
    assert_eq!(cli(d.port, &["cluster", "nodes"]).lines().count(), 1);
    assert_eq!(myid(&d), did);
    seen.push(format!("deleted node info: {}", cli(d.port, &["cluster", "info"]).lines().next().unwrap_or("")));
    settle(&three);
    check_clean(a.port);
    seen
}

#[test]
fn add_rebalance_fix_del_node_as_redis() {
    if !tools_present() {
        return;
    }
    let ms = std::thread::spawn(|| lifecycle(&|| ms_node(&[])));
    let rs = lifecycle(&redis_node);
    let ms = ms.join().unwrap();
    assert_eq!(ms, rs);
}

/// CLUSTER FORGET: the forgotten node is not learned again from the other
/// nodes' gossip for 60 seconds; a MEET brings it back at once.
fn forget_blacklist(make: &dyn Fn() -> Proc) -> Vec<String> {
    let (a, b, c) = (make(), make(), make());
    let three = [&a, &b, &c];
    create(&three);
    settle(&three);
    let cid = myid(&c);
    let mut seen = vec![cli(a.port, &["cluster", "forget", &cid]).trim().to_string()];
    seen.push(cli(a.port, &["cluster", "forget", &cid]).trim().to_string().replace(&cid, "ID"));
    // Gossip from b (which still knows c) and c's pings do not bring it back.
    std::thread::sleep(Duration::from_millis(2500));
    let text = cli(a.port, &["cluster", "nodes"]);
    seen.push(format!("known after gossip: {}", text.lines().count()));
    seen.push(format!("state {}", cli(a.port, &["cluster", "info"]).lines().next().unwrap_or("")));
    seen
}

#[test]
fn forget_blacklists_the_node_as_redis() {
    if !tools_present() {
        return;
    }
    let ms = std::thread::spawn(|| forget_blacklist(&|| ms_node(&[])));
    let rs = forget_blacklist(&redis_node);
    assert_eq!(ms.join().unwrap(), rs);
}

/// Rebalance (to a new empty master and back) with a client load running:
/// only MOVED/ASK/TRYAGAIN seen, every key reads back what was written last.
#[test]
fn rebalance_and_reshard_under_client_load() {
    if !tools_present() {
        return;
    }
    let (a, b, c, d) = (ms_node(&[]), ms_node(&[]), ms_node(&[]), ms_node(&[]));
    let three = [&a, &b, &c];
    create(&three);
    settle(&three);
    let out = tool(&["add-node", &addr(&d), &addr(&a)]);
    assert!(out.contains("[OK] New node added correctly."), "add-node:\n{out}");
    let four = [&a, &b, &c, &d];
    settle(&four);
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let seed = a.port;
    let load_thread = {
        let (stop, ops) = (stop.clone(), ops.clone());
        std::thread::spawn(move || load(seed, stop, ops))
    };
    wait_until("the load to start", 10, || ops.load(Relaxed) > 300);
    let w = format!("{}=0.03", myid(&d));
    let out = tool(&["rebalance", &addr(&a), "--cluster-use-empty-masters", "--cluster-weight", &w]);
    assert!(!out.contains("ERR") && !out.contains("*** "), "rebalance:\n{out}");
    let w = format!("{}=0", myid(&d));
    let out = tool(&["rebalance", &addr(&a), "--cluster-weight", &w]);
    assert!(!out.contains("ERR") && !out.contains("*** "), "rebalance:\n{out}");
    let to = myid(&b);
    let out = tool(&[
        "reshard",
        &addr(&a),
        "--cluster-from",
        &myid(&a),
        "--cluster-to",
        &to,
        "--cluster-slots",
        "150",
        "--cluster-yes",
    ]);
    assert!(!out.contains("ERR") && !out.contains("*** "), "reshard:\n{out}");
    stop.store(true, Relaxed);
    let (expect, redirects) = load_thread.join().expect("the client load saw an error it cannot retry");
    assert!(expect.len() > 300);
    // The load ran while slots moved: it was redirected (MOVED at least).
    assert!(redirects > 0);
    check_clean(a.port);
    let slots = slots_per_node(&four);
    assert_eq!(slots[3], 0);
    assert_eq!(slots[1], 5461 + 150, "{slots:?}");
}

/// A redis-server node joins a moonshard cluster; rebalance moves slots
/// (and keys of every type) to it and back.
#[test]
fn mixed_add_node_and_rebalance_both_ways() {
    if !tools_present() {
        return;
    }
    let (a, b, c) = (ms_node(&[]), ms_node(&[]), ms_node(&[]));
    let r = redis_node();
    let three = [&a, &b, &c];
    create(&three);
    settle(&three);
    write_keys(&three, 1000);
    let out = tool(&["add-node", &addr(&r), &addr(&a)]);
    assert!(out.contains("[OK] New node added correctly."), "add-node:\n{out}");
    let four = [&a, &b, &c, &r];
    settle(&four);
    let w = format!("{}=0.05", myid(&r));
    let out = tool(&["rebalance", &addr(&a), "--cluster-use-empty-masters", "--cluster-weight", &w]);
    assert!(!out.contains("ERR") && !out.contains("*** "), "rebalance:\n{out}");
    let slots = slots_per_node(&four);
    assert!(slots[3] > 200 && slots.iter().sum::<usize>() == 16384, "{slots:?}");
    check_clean(r.port);
    read_keys(&four, 1000);
    // Back: the redis-server node hands every slot to moonshard nodes.
    let w = format!("{}=0", myid(&r));
    let out = tool(&["rebalance", &addr(&r), "--cluster-weight", &w]);
    assert!(!out.contains("ERR") && !out.contains("*** "), "rebalance:\n{out}");
    assert_eq!(slots_per_node(&four)[3], 0);
    check_clean(a.port);
    read_keys(&three, 1000);
    assert_eq!(total_keys(&a), 1000 + 6 * 20);
}

/// `redis-benchmark --cluster` runs its default tests against a moonshard
/// cluster without an error (it follows the slots itself, MOVED is an error
/// to it).
#[test]
fn redis_benchmark_cluster_runs_clean() {
    if !tools_present() || !common::has_program("redis-benchmark") {
        return;
    }
    let (a, b, c) = (ms_node(&[]), ms_node(&[]), ms_node(&[]));
    let three = [&a, &b, &c];
    create(&three);
    settle(&three);
    let child = std::process::Command::new("redis-benchmark")
        .args(["--cluster", "-p", &a.port.to_string(), "-n", "500", "-c", "10", "-q"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("redis-benchmark");
    let (out, killed) = common::output_within(child, 50);
    assert!(!killed, "redis-benchmark --cluster hung");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "redis-benchmark:\n{text}");
    assert!(text.contains("Cluster has 3 master nodes"), "{text}");
    assert!(!text.to_lowercase().contains("error"), "redis-benchmark:\n{text}");
    // Every default test finished with a rate.
    for t in ["PING_INLINE", "SET", "GET", "INCR", "LPUSH", "RPOP", "SADD", "HSET", "SPOP", "ZADD", "ZPOPMIN"] {
        assert!(text.contains(&format!(" {t}: ")) || text.contains(&format!("{t}: ")), "{t} missing:\n{text}");
    }
    assert!(text.contains("MSET (10 keys):") && text.matches("requests per second").count() >= 20, "{text}");
}

/// The keys of `master` (k:0..n written by `write_keys`) read on `replica`
/// with READONLY, plus DBSIZE: the replica holds what its master holds.
fn replica_has_masters_keys(replica: &Proc, master: &Proc, masters: &[&Proc]) {
    wait_until("the replica to sync", 20, || {
        cli(replica.port, &["info", "replication"]).contains("master_link_status:up")
            && cli(replica.port, &["dbsize"]) == cli(master.port, &["dbsize"])
    });
    let mut con = replica.client();
    assert_eq!(common::run_str(&mut con, &["readonly"]), Ok(redis::Value::Okay));
    let mut read = 0;
    for i in 0..200 {
        let k = format!("k:{i}");
        if owner_of(masters, &k).port == master.port {
            let v = common::run_str(&mut con, &["get", &k]);
            assert_eq!(v, Ok(redis::Value::BulkString(i.to_string().into_bytes())), "{k}");
            read += 1;
        }
    }
    assert!(read > 50, "{read}");
}

/// `redis-cli --cluster add-node NEW EXISTING --cluster-slave`, with and
/// without `--cluster-master-id`, adds moonshard nodes as replicas to a
/// cluster of a moonshard and a redis-server master: each follows the
/// master redis-cli chose (the one with the fewest replicas, or the one
/// named), syncs its keys and serves them to READONLY clients.
#[test]
fn add_node_as_replica_of_a_mixed_cluster() {
    if !tools_present() {
        return;
    }
    let (m, r) = moonshard_and_redis_halves();
    write_keys(&[&m, &r], 200);
    let port_of = |id: &str| if myid(&m) == id { m.port } else { r.port };
    // No master named: redis-cli picks one (both have no replica yet).
    let n1 = ms_node(&[]);
    let out = tool(&["add-node", &addr(&n1), &addr(&r), "--cluster-slave"]);
    assert!(out.contains("[OK] New node added correctly."), "add-node:\n{out}");
    let picked = out
        .lines()
        .find_map(|l| l.split("Automatically selected master 127.0.0.1:").nth(1))
        .and_then(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u16>().ok())
        .unwrap_or_else(|| panic!("add-node chose no master:\n{out}"));
    let (first, second) = if picked == m.port { (&m, &r) } else { (&r, &m) };
    assert_eq!(picked, first.port);
    // The master with no replica left is named for the second one.
    let n2 = ms_node(&[]);
    let out = tool(&["add-node", &addr(&n2), &addr(first), "--cluster-slave", "--cluster-master-id", &myid(second)]);
    assert!(out.contains("[OK] New node added correctly."), "add-node:\n{out}");
    let all = [&m, &r, &n1, &n2];
    settle(&all);
    for (replica, master) in [(&n1, first), (&n2, second)] {
        let master_id = myid(master);
        wait_until("every node to list the replica", 20, || {
            all.iter().all(|p| {
                cli(p.port, &["cluster", "nodes"])
                    .lines()
                    .any(|l| l.starts_with(&myid(replica)) && l.contains(&format!("slave {master_id} ")))
            })
        });
        let role = cli(replica.port, &["role"]);
        assert_eq!(role.lines().take(3).collect::<Vec<_>>(), ["slave", "127.0.0.1", &master.port.to_string()]);
        assert_eq!(port_of(&master_id), master.port);
        replica_has_masters_keys(replica, master, &[&m, &r]);
    }
    check_clean(r.port);
    check_clean(n1.port);
    // Writes on the masters reach their new replicas.
    for (replica, master) in [(&n1, first), (&n2, second)] {
        let key = (0..).map(|i| format!("new:{i}")).find(|k| owner_of(&[&m, &r], k).port == master.port).unwrap();
        assert_eq!(cli(master.port, &["set", &key, "fresh"]).trim(), "OK");
        let mut con = replica.client();
        assert_eq!(common::run_str(&mut con, &["readonly"]), Ok(redis::Value::Okay));
        wait_until("the write to reach the replica", 10, || {
            common::run_str(&mut con, &["get", &key]) == Ok(redis::Value::BulkString(b"fresh".to_vec()))
        });
    }
}
