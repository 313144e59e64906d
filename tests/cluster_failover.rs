//! Cluster replicas and failover: `redis-cli --cluster create
//! --cluster-replicas 1`, replicas serving READONLY reads, a master killed
//! with `kill -9` under a client load (its replica is elected, the cluster
//! is ok again, the killed node restarts from nodes.conf as a replica of
//! the new master), and the same across moonshard and redis-server nodes:
//! replicas of each other, automatic and manual failovers (CLUSTER
//! FAILOVER, FORCE, TAKEOVER) in both directions, and the error texts
//! compared with redis-server's. Every wait polls with a deadline; every
//! process is killed when its `Proc` drops.

#[path = "common/cluster.rs"]
mod cluster_util;
mod common;

use cluster_util::*;
use common::{free_port, moonshard, Proc};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Short enough for quick failovers, long enough that a node starved of CPU for a moment on a
/// loaded 2-core machine (debug builds, a write load, six nodes) is not failed over by mistake: at
/// 1000 ms a mixed-cluster run once saw its redis-server replica take over unasked.
const NODE_TIMEOUT: &str = "2000";

/// Where a node lives, so that it can be started again from its nodes.conf.
#[derive(Clone)]
struct Place {
    port: u16,
    cport: u16,
    dir: std::path::PathBuf,
}

fn place(what: &str) -> Place {
    Place { port: free_port(), cport: free_port(), dir: common::temp_dir(what) }
}

fn start_ms(p: &Place) -> Proc {
    // An election that fails under CI load is explained by the nodes' notices.
    common::SHOW_NOTICES.store(true, Ordering::Relaxed);
    let (port, cport, dir) = (p.port.to_string(), p.cport.to_string(), p.dir.to_string_lossy().into_owned());
    moonshard(&[
        "--cluster-enabled",
        "yes",
        "--cluster-node-timeout",
        NODE_TIMEOUT,
        "--shards",
        "2",
        "--port",
        &port,
        "--cluster-port",
        &cport,
        "--dir",
        &dir,
        // Full syncs start at once (Redis's default waits 5 s for more replicas).
        "--repl-diskless-sync-delay",
        "0",
    ])
}

fn start_redis(p: &Place) -> Proc {
    let child = Command::new("redis-server")
        .args(["--port", &p.port.to_string(), "--cluster-port", &p.cport.to_string()])
        .arg("--dir")
        .arg(&p.dir)
        .args(["--cluster-enabled", "yes", "--cluster-node-timeout", NODE_TIMEOUT])
        .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--repl-diskless-sync-delay", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let proc = Proc { port: p.port, child, dir: None };
    wait_until("redis-server to accept connections", 10, || cli(p.port, &["ping"]).trim() == "PONG");
    proc
}

fn role(port: u16) -> String {
    cli(port, &["role"]).lines().next().unwrap_or("").to_string()
}

/// The port of the master this node replicates (ROLE's second line).
fn master_port(port: u16) -> Option<u16> {
    let out = cli(port, &["role"]);
    let lines: Vec<&str> = out.lines().collect();
    (lines.first() == Some(&"slave")).then(|| lines.get(2).and_then(|p| p.parse().ok())).flatten()
}

fn dbsize(port: u16) -> i64 {
    cli(port, &["dbsize"]).trim().parse().unwrap_or(-1)
}

/// The replicas CLUSTER REPLICAS lists: (id, address, flags, master id).
fn replicas_of(via: u16, master: &str) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = cli(via, &["cluster", "replicas", master])
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() >= 8).then(|| (f[0].into(), f[1].into(), f[2].replace("myself,", ""), f[3].into()))
        })
        .collect();
    v.sort();
    v
}

/// `redis-cli --cluster create --cluster-replicas 1` of the nodes on
/// `ports`; asserts every slot is covered and waits for cluster_state:ok on
/// each.
fn create_with_replicas(ports: &[u16]) {
    let mut args = vec!["create".to_string()];
    args.extend(ports.iter().map(|p| port_addr(*p)));
    args.extend(["--cluster-replicas".to_string(), "1".into(), "--cluster-yes".into()]);
    let out = cluster_tool(&args);
    assert!(out.contains("[OK] All 16384 slots covered."), "create failed:\n{out}");
    for &p in ports {
        wait_until("cluster_state:ok", 15, || state_ok(p));
    }
}

/// Makes `node` a replica of `master` and waits for its first sync.
fn add_replica(node: u16, master: u16, via: u16) {
    let out = cluster_tool(&[
        "add-node".to_string(),
        port_addr(node),
        port_addr(via),
        "--cluster-slave".into(),
        "--cluster-master-id".into(),
        node_id(master),
    ]);
    assert!(out.contains("[OK] New node added correctly."), "add-node failed:\n{out}");
    wait_until("the replica to follow its master", 15, || {
        master_port(node) == Some(master) && cli(node, &["info", "replication"]).contains("master_link_status:up")
    });
}

// ------------------------------------------------------------ client load

/// A tiny cluster client: follows MOVED, retries on errors and dead nodes.
struct Router {
    seeds: Vec<u16>,
    owner: HashMap<u16, u16>,
    conns: HashMap<u16, redis::Connection>,
    errors: usize,
}

impl Router {
    fn new(seeds: Vec<u16>) -> Router {
        Router { seeds, owner: HashMap::new(), conns: HashMap::new(), errors: 0 }
    }

    /// Runs a command on the key's owner; None when it did not succeed
    /// before the deadline.
    fn run(&mut self, args: &[&str], deadline: Instant) -> Option<redis::Value> {
        let s = slot(args[1]);
        let mut port = *self.owner.get(&s).unwrap_or(&self.seeds[0]);
        let mut n = 0;
        while Instant::now() < deadline {
            n += 1;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.conns.entry(port) {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                match client.get_connection_with_timeout(Duration::from_millis(300)) {
                    Ok(c) => {
                        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                        slot.insert(c);
                    }
                    Err(_) => {
                        self.errors += 1;
                        port = self.seeds[n % self.seeds.len()];
                        std::thread::sleep(Duration::from_millis(30));
                        continue;
                    }
                }
            }
            let con = self.conns.get_mut(&port).expect("connected");
            match common::run_str(con, args) {
                Ok(v) => {
                    self.owner.insert(s, port);
                    return Some(v);
                }
                Err(e) if e.starts_with("MOVED ") => {
                    port = e.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(port);
                }
                Err(_) => {
                    self.errors += 1;
                    self.conns.remove(&port);
                    port = self.seeds[n % self.seeds.len()];
                    std::thread::sleep(Duration::from_millis(30));
                }
            }
        }
        None
    }
}

/// SET load:<i> <i> in a loop through the cluster; records when each
/// write was acknowledged.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Instant>>>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Load {
    fn start(seeds: Vec<u16>) -> Load {
        Load::with_prefix(seeds, "load")
    }

    fn with_prefix(seeds: Vec<u16>, prefix: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), acked.clone());
        let thread = std::thread::spawn(move || {
            let mut r = Router::new(seeds);
            let mut i = 0usize;
            while !s.load(Ordering::Relaxed) {
                let key = format!("{prefix}:{i}");
                let v = i.to_string();
                if r.run(&["set", &key, &v], Instant::now() + Duration::from_secs(20)).is_none() {
                    break;
                }
                a.lock().unwrap().push(Instant::now());
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            r.errors
        });
        Load { stop, acked, thread: Some(thread) }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops; returns (writes acknowledged, errors retried, longest gap).
    fn finish(mut self) -> (usize, usize, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self.thread.take().unwrap().join().unwrap();
        let acked = self.acked.lock().unwrap();
        let gap = acked.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
        (acked.len(), errors, gap)
    }
}

/// Every key below `upto` holds its value, read through the cluster.
fn verify_keys(seeds: Vec<u16>, prefix: &str, upto: usize) {
    let mut r = Router::new(seeds);
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..upto {
        let key = format!("{prefix}:{i}");
        let got = r.run(&["get", &key], deadline);
        assert_eq!(got, Some(redis::Value::BulkString(i.to_string().into_bytes())), "{key} lost");
    }
}

// ------------------------------------------------------------ tests

#[test]
fn replicas_and_failover_of_moonshard_nodes() {
    if !tools_present() {
        return;
    }
    let places: Vec<Place> = (0..6).map(|_| place("cluster-failover")).collect();
    let mut nodes: Vec<Option<Proc>> = places.iter().map(|p| Some(start_ms(p))).collect();
    let ports: Vec<u16> = places.iter().map(|p| p.port).collect();
    create_with_replicas(&ports);
    let masters: Vec<u16> = ports.iter().copied().filter(|p| role(*p) == "master").collect();
    assert_eq!(masters.len(), 3);
    for &p in &ports {
        if !masters.contains(&p) {
            wait_until("replica link up", 10, || cli(p, &["info", "replication"]).contains("master_link_status:up"));
        }
    }
    check_clean(ports[0]);

    // The master of slot 0's keys and its replica.
    let m = masters[0];
    let m_id = node_id(m);
    wait_until("a node lists m's replica", 20, || replicas_of(ports[1], &m_id).len() == 1);
    let reps = replicas_of(ports[1], &m_id);
    assert_eq!(reps.len(), 1, "{reps:?}");
    assert_eq!(reps[0].2, "slave");
    assert_eq!(reps[0].3, m_id);
    let r: u16 = reps[0].1.split('@').next().unwrap().rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(master_port(r), Some(m));
    // Every node lists the same replicas once gossip has carried the new roles (on a loaded
    // machine a node can still be a ping behind); SLAVES is the old name.
    for &p in &ports {
        wait_until("every node knows the replica", 20, || replicas_of(p, &m_id) == reps);
        assert_eq!(cli(p, &["cluster", "slaves", &m_id]).lines().count(), 1);
    }
    // SHARDS: both roles.
    let shards = cli(r, &["cluster", "shards"]);
    assert_eq!(shards.lines().filter(|l| *l == "replica").count(), 3, "{shards}");
    assert_eq!(shards.lines().filter(|l| *l == "master").count(), 3, "{shards}");

    // A key of m's: MOVED from its replica unless READONLY (reads only).
    let nodes_text = cli(m, &["cluster", "nodes"]);
    let mine: Vec<(usize, usize)> = nodes_text
        .lines()
        .find(|l| l.contains("myself"))
        .unwrap()
        .split(' ')
        .skip(8)
        .map(|rg| {
            let (x, y) = rg.split_once('-').unwrap_or((rg, rg));
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| mine.iter().any(|&(x, y)| (x..=y).contains(&(slot(k) as usize))))
        .unwrap();
    assert_eq!(cli(m, &["set", &key, "v"]).trim(), "OK");
    wait_until("the replica to get the key", 5, || dbsize(r) >= 1);
    // CLUSTER SLOTS: the master then its replica, once the replica has synced
    // something (offset not 0), as Redis lists them.
    wait_until("CLUSTER SLOTS to list the replica", 5, || {
        let slots = cli(r, &["cluster", "slots"]);
        slots.contains(&format!("\n{r}\n")) && slots.contains(&format!("\n{m}\n"))
    });
    let moved = format!("MOVED {} 127.0.0.1:{m}", slot(&key));
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{r}/")).unwrap().get_connection().unwrap();
    assert_eq!(common::run_str(&mut con, &["get", &key]), Err(moved.clone()));
    assert_eq!(common::run_str(&mut con, &["readonly"]), Ok(redis::Value::Okay));
    assert_eq!(common::run_str(&mut con, &["get", &key]), Ok(redis::Value::BulkString(b"v".to_vec())));
    assert_eq!(common::run_str(&mut con, &["set", &key, "w"]), Err(moved.clone()));
    assert_eq!(common::run_str(&mut con, &["readwrite"]), Ok(redis::Value::Okay));
    assert_eq!(common::run_str(&mut con, &["get", &key]), Err(moved));
    drop(con);

    // kill -9 the master under a client load.
    let load = Load::start(ports.clone());
    wait_until("some writes", 20, || load.count() > 50);
    std::thread::sleep(Duration::from_millis(300));
    // Writes acknowledged well before the kill were replicated.
    let safe = load.count();
    std::thread::sleep(Duration::from_millis(500));
    let m_index = ports.iter().position(|p| *p == m).unwrap();
    let mut killed = nodes[m_index].take().unwrap();
    let _ = killed.child.kill();
    let _ = killed.child.wait();
    let t0 = Instant::now();
    let others: Vec<u16> = ports.iter().copied().filter(|p| *p != m).collect();
    wait_until("the replica to take over", 15, || role(r) == "master");
    for &p in &others {
        wait_until("cluster_state:ok after the failover", 20, || state_ok(p));
    }
    let took = t0.elapsed();
    eprintln!("failover: replica master and cluster ok {took:?} after kill -9 (node timeout {NODE_TIMEOUT} ms)");
    // Node timeout, FAIL agreement, the election's 0.5-1 s delay, votes.
    assert!(took < Duration::from_secs(10), "failover took {took:?}");
    let before = load.count();
    wait_until("writes to go on after the failover", 15, || load.count() > before + 50);

    // The killed node comes back from its nodes.conf as a replica of the new master.
    nodes[m_index] = Some(start_ms(&places[m_index]));
    assert_eq!(node_id(m), m_id);
    wait_until("the old master to follow the new one", 15, || master_port(m) == Some(r));
    let (acked, errors, gap) = load.finish();
    eprintln!("load: {acked} writes acknowledged, {errors} retried errors, longest gap {gap:?}");
    wait_until("the old master to sync", 15, || {
        cli(m, &["info", "replication"]).contains("master_link_status:up") && dbsize(m) == dbsize(r)
    });
    let as_replica = format!("slave {}", node_id(r));
    wait_until("every node to see the old master as a replica of the new one", 20, || {
        ports
            .iter()
            .all(|&p| cli(p, &["cluster", "nodes"]).lines().any(|l| l.starts_with(&m_id) && l.contains(&as_replica)))
    });
    check_clean(others[0]);
    verify_keys(others.clone(), "load", safe);

    // A manual failover under load loses no acknowledged write: the master
    // pauses writes and hands over its final offset; the writes it held are
    // redirected to the new master afterwards.
    let load = Load::with_prefix(ports.clone(), "manual");
    wait_until("some writes", 20, || load.count() > 50);
    assert_eq!(cli(m, &["cluster", "failover"]).trim(), "OK");
    wait_until("the old master to be master again", 20, || role(m) == "master");
    wait_until("r to follow it", 20, || master_port(r) == Some(m));
    let n = load.count();
    wait_until("writes to go on after the manual failover", 20, || load.count() > n + 50);
    let (acked, _, gap) = load.finish();
    eprintln!("manual failover under load: {acked} writes, longest gap {gap:?}");
    verify_keys(ports.clone(), "manual", acked);
    drop(nodes);
    for p in places {
        let _ = std::fs::remove_dir_all(p.dir);
    }
}

#[test]
fn failovers_across_moonshard_and_redis_server() {
    if !tools_present() {
        return;
    }
    // Masters: moonshard a, b; redis-server c. Replicas: redis-server d of
    // a, moonshard e of c, moonshard f of b.
    let pl: Vec<Place> = (0..6).map(|_| place("cluster-mixed-failover")).collect();
    let (a, b, c, d, e, f) = (pl[0].port, pl[1].port, pl[2].port, pl[3].port, pl[4].port, pl[5].port);
    let _pa = start_ms(&pl[0]);
    let mut pb = Some(start_ms(&pl[1]));
    let mut pc = Some(start_redis(&pl[2]));
    let _pd = start_redis(&pl[3]);
    let _pe = start_ms(&pl[4]);
    let _pf = start_ms(&pl[5]);
    let out = cluster_tool(&["create".into(), port_addr(a), port_addr(b), port_addr(c), "--cluster-yes".into()]);
    assert!(out.contains("[OK] All 16384 slots covered."), "create failed:\n{out}");
    add_replica(d, a, c);
    add_replica(e, c, a);
    add_replica(f, b, a);
    for p in [a, b, c, d, e, f] {
        wait_until("cluster_state:ok", 15, || state_ok(p));
    }
    check_clean(c);
    check_clean(a);

    // Both kinds of node describe the replicas alike.
    for master in [a, b, c] {
        let id = node_id(master);
        wait_until("every node to agree on the replicas", 20, || {
            let on_redis = replicas_of(c, &id);
            on_redis.len() == 1 && [a, b, d, e, f].iter().all(|&p| replicas_of(p, &id) == on_redis)
        });
    }
    // CLUSTER NODES (timestamps aside), SLOTS and SHARDS (entries in any
    // order) as redis-server gives them, once replicas have an offset.
    for i in 0..20 {
        assert_eq!(cli(a, &["-c", "set", &format!("seed:{i}"), "v"]).trim(), "OK");
    }
    let nodes_view = |p: u16| {
        let mut v: Vec<String> = cli(p, &["cluster", "nodes"])
            .lines()
            .map(|l| {
                let mut f: Vec<String> = l.split(' ').map(str::to_string).collect();
                f[2] = f[2].replace("myself,", "");
                f[4].clear();
                f[5].clear();
                f.join(" ")
            })
            .collect();
        v.sort();
        v
    };
    let sorted_lines = |p: u16, what: &str| {
        let mut v: Vec<String> = cli(p, &["cluster", what]).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    for ms in [a, e] {
        let t0 = Instant::now();
        while !(nodes_view(ms) == nodes_view(c)
            && sorted_lines(ms, "slots") == sorted_lines(c, "slots")
            && sorted_lines(ms, "shards") == sorted_lines(d, "shards"))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "views differ:\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                nodes_view(ms),
                nodes_view(c),
                sorted_lines(ms, "slots"),
                sorted_lines(c, "slots"),
                sorted_lines(ms, "shards"),
                sorted_lines(d, "shards")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(sorted_lines(a, "slots").iter().filter(|l| l.starts_with("127.0.0.1")).count(), 6);

    // Error texts, moonshard against redis-server in the same positions.
    let (a_id, c_id, d_id) = (node_id(a), node_id(c), node_id(d));
    let same = |ms: u16, rs: u16, ms_args: &[&str], rs_args: &[&str]| {
        assert_eq!(cli(ms, ms_args), cli(rs, rs_args), "{ms_args:?} / {rs_args:?}");
    };
    same(a, c, &["cluster", "replicate", &a_id], &["cluster", "replicate", &c_id]);
    same(a, c, &["cluster", "replicate", &d_id], &["cluster", "replicate", &d_id]);
    same(a, c, &["cluster", "replicate", "nosuchnode"], &["cluster", "replicate", "nosuchnode"]);
    same(a, c, &["cluster", "replicate", &c_id], &["cluster", "replicate", &a_id]);
    same(a, c, &["cluster", "failover"], &["cluster", "failover"]);
    same(e, d, &["cluster", "failover", "sometimes"], &["cluster", "failover", "sometimes"]);
    same(e, d, &["cluster", "replicas", &node_id(e)], &["cluster", "replicas", &d_id]);
    same(a, c, &["replicaof", "127.0.0.1", "1"], &["replicaof", "127.0.0.1", "1"]);
    same(a, c, &["cluster", "count-failure-reports", &d_id], &["cluster", "count-failure-reports", &d_id]);

    let load = Load::start(vec![a, b, e]);
    wait_until("some writes", 20, || load.count() > 30);

    // 1. kill -9 the redis-server master: the moonshard replica is elected
    //    by the two moonshard masters.
    let mut killed = pc.take().unwrap();
    let _ = killed.child.kill();
    let _ = killed.child.wait();
    wait_until("moonshard e to take over from redis-server c", 15, || role(e) == "master");
    for p in [a, b, d, e, f] {
        wait_until("cluster_state:ok", 20, || state_ok(p));
    }
    let n = load.count();
    wait_until("writes to go on", 15, || load.count() > n + 30);

    // 2. Manual failover: the redis-server replica takes over from moonshard a
    //    (a pauses its writes and hands over its offset, then follows d).
    assert_eq!(cli(d, &["cluster", "failover"]).trim(), "OK");
    wait_until("redis-server d to take over from moonshard a", 20, || role(d) == "master");
    wait_until("a to follow d", 20, || master_port(a) == Some(d));

    // 3. kill -9 moonshard b: its moonshard replica f needs the votes of
    //    both other masters, redis-server d and moonshard e.
    let mut killed = pb.take().unwrap();
    let _ = killed.child.kill();
    let _ = killed.child.wait();
    wait_until("f to take over from b", 15, || role(f) == "master");
    for p in [a, d, e, f] {
        wait_until("cluster_state:ok", 20, || state_ok(p));
    }
    pb = Some(start_ms(&pl[1]));
    wait_until("b to come back as a replica of f", 15, || master_port(b) == Some(f));

    // 4. FORCE on b (votes with FORCEACK, the master up), then TAKEOVER on
    //    f (no vote at all).
    wait_until("b to sync", 20, || cli(b, &["info", "replication"]).contains("master_link_status:up"));
    // A forced election that misses its majority within its time (votes
    // late on a loaded machine) ends the manual failover, as on Redis; the
    // operator asks again. Two tries, each with the nodes' views on failure.
    let mut won = false;
    for attempt in 1..=2 {
        assert_eq!(cli(b, &["cluster", "failover", "force"]).trim(), "OK");
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(12) && !won {
            won = role(b) == "master";
            std::thread::sleep(Duration::from_millis(100));
        }
        if won {
            break;
        }
        eprintln!("forced failover of b, try {attempt}, not won in 12 s; the views:");
        for p in [a, b, d, e, f] {
            eprintln!("--- {p}:\n{}{}", cli(p, &["cluster", "nodes"]), cli(p, &["cluster", "info"]));
        }
    }
    assert!(won, "timed out waiting for b to take over from f (two CLUSTER FAILOVER FORCE)");
    wait_until("f to follow b", 20, || master_port(f) == Some(b));
    assert_eq!(cli(f, &["cluster", "failover", "takeover"]).trim(), "OK");
    wait_until("f to take over again", 20, || role(f) == "master");
    wait_until("b to follow f", 20, || master_port(b) == Some(f));

    // 5. The killed redis-server comes back as a replica of moonshard e.
    pc = Some(start_redis(&pl[2]));
    wait_until("c to follow e", 15, || master_port(c) == Some(e));
    for p in [a, b, c, d, e, f] {
        wait_until("cluster_state:ok at the end", 15, || state_ok(p));
    }
    let n = load.count();
    wait_until("writes to go on at the end", 15, || load.count() > n + 30);
    let (acked, errors, gap) = load.finish();
    eprintln!("mixed load: {acked} writes acknowledged, {errors} retried errors, longest gap {gap:?}");
    wait_until("c to sync", 15, || {
        cli(c, &["info", "replication"]).contains("master_link_status:up") && dbsize(c) == dbsize(e)
    });
    check_clean(c);
    check_clean(b);
    drop(pc);
    drop(pb);
    for p in pl {
        let _ = std::fs::remove_dir_all(p.dir);
    }
}

/// cluster-migration-barrier: a master that loses its only replica gets
/// one from the master that has two (the replica with the smallest id
/// moves, 5 s after the master became orphaned).
#[test]
fn a_replica_migrates_to_an_orphaned_master() {
    if !tools_present() {
        return;
    }
    let places: Vec<Place> = (0..7).map(|_| place("cluster-migration")).collect();
    let mut nodes: Vec<Option<Proc>> = places.iter().map(|p| Some(start_ms(p))).collect();
    let ports: Vec<u16> = places.iter().map(|p| p.port).collect();
    create_with_replicas(&ports);
    // Who replicates whom.
    let follows: HashMap<u16, u16> = ports.iter().filter_map(|&p| master_port(p).map(|m| (p, m))).collect();
    assert_eq!(follows.len(), 4, "{follows:?}");
    let count = |m: u16| follows.values().filter(|&&x| x == m).count();
    let rich = *follows.values().find(|&&m| count(m) == 2).expect("a master with two replicas");
    let (&lonely_replica, &poor) = follows.iter().find(|(_, &m)| count(m) == 1).unwrap();
    // The replica of `rich` with the smallest id moves.
    let mut candidates: Vec<(String, u16)> =
        follows.iter().filter(|(_, &m)| m == rich).map(|(&r, _)| (node_id(r), r)).collect();
    candidates.sort();
    let (mover, stayer) = (candidates[0].1, candidates[1].1);
    // A master becomes a migration target only once a node has seen it with a replica (Redis's
    // MIGRATE_TO): wait until every node knows every replica's role before the kill (under load a
    // node was once still a ping behind, never saw the lonely replica as one, and nothing moved).
    let roles: Vec<(String, String)> =
        follows.iter().map(|(&r, &m)| (node_id(r), format!("slave {}", node_id(m)))).collect();
    wait_until("every node to know every replica", 20, || {
        ports.iter().all(|&p| {
            let nodes = cli(p, &["cluster", "nodes"]);
            roles
                .iter()
                .all(|(id, role)| nodes.lines().any(|l| l.starts_with(id.as_str()) && l.contains(role.as_str())))
        })
    });
    let i = ports.iter().position(|&p| p == lonely_replica).unwrap();
    let mut killed = nodes[i].take().unwrap();
    let _ = killed.child.kill();
    let _ = killed.child.wait();
    let t0 = Instant::now();
    // About 6.5 s here (node timeout, FAIL agreement, then Redis's 5 s
    // delay); generous for a loaded CI machine, and what the mover saw is
    // shown if it never moves.
    let deadline = t0 + Duration::from_secs(45);
    while master_port(mover) != Some(poor) {
        assert!(
            Instant::now() < deadline,
            "no replica migrated to the orphaned master {poor}; the mover {mover} saw:\n{}\n{}",
            cli(mover, &["cluster", "nodes"]),
            cli(mover, &["cluster", "info"])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("replica migration after {:?}", t0.elapsed());
    assert!(t0.elapsed() > Duration::from_secs(5), "migrated before the 5 s delay");
    assert_eq!(master_port(stayer), Some(rich));
    let poor_id = node_id(poor);
    wait_until("everyone to see the new replica", 10, || {
        ports.iter().filter(|&&p| p != lonely_replica).all(|&p| {
            cli(p, &["cluster", "nodes"]).lines().any(|l| l.starts_with(&node_id(mover)) && l.contains(&poor_id))
        })
    });
    // The killed replica restarts from its nodes.conf as a replica of its master.
    nodes[i] = Some(start_ms(&places[i]));
    wait_until("the restarted replica to follow its master", 15, || master_port(lonely_replica) == Some(poor));
    // CLUSTER RESET on a replica: an empty master, replication stopped.
    for i in 0..30 {
        assert_eq!(cli(rich, &["-c", "set", &format!("r:{i}"), "v"]).trim(), "OK");
    }
    wait_until("the replica to hold keys", 10, || dbsize(stayer) > 0 && dbsize(stayer) == dbsize(rich));
    assert_eq!(cli(stayer, &["cluster", "reset"]).trim(), "OK");
    assert_eq!(role(stayer), "master");
    assert_eq!(dbsize(stayer), 0);
    assert_eq!(cli(stayer, &["cluster", "nodes"]).lines().count(), 1);
    drop(nodes);
    for p in places {
        let _ = std::fs::remove_dir_all(p.dir);
    }
}
