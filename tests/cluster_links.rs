//! The cluster bus when peers stop answering. `cluster-link-sendbuf-limit`
//! (a link whose send buffer outgrows it is freed, counted in CLUSTER INFO,
//! logged, and connected again), CLUSTER LINKS' buffer figures, and INFO's
//! `mem_cluster_links`/`cluster_connections`; and a partition: a master cut
//! off from the majority stops serving after the node timeout
//! (`CLUSTERDOWN`) and serves again once the partition heals. Each is
//! checked on a moonshard node and on a redis-server node in the same
//! position. Peers are stopped with SIGSTOP (resumed when the guard drops);
//! every wait has a deadline.

#[path = "common/cluster.rs"]
mod cluster_util;
mod common;

use cluster_util::*;
use common::Proc;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// A process stopped with SIGSTOP until the guard drops (SIGCONT).
struct Stopped(u32);

impl Stopped {
    fn new(p: &Proc) -> Stopped {
        let pid = p.child.id();
        assert!(Command::new("kill").args(["-STOP", &pid.to_string()]).status().unwrap().success());
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0.to_string()]).status();
    }
}

/// CLUSTER LINKS as a list of field maps.
fn links(p: &Proc) -> Vec<HashMap<String, String>> {
    let text = cli(p.port, &["cluster", "links"]);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(12)
        .filter(|c| c.len() == 12)
        .map(|c| c.chunks(2).map(|kv| (kv[0].to_string(), kv[1].to_string())).collect())
        .collect()
}

/// The link of `p` in `dir` ("to"/"from") with the node `id`.
fn link(p: &Proc, dir: &str, id: &str) -> Option<HashMap<String, String>> {
    links(p).into_iter().find(|l| l["direction"] == dir && l["node"] == id)
}

fn num(l: &HashMap<String, String>, field: &str) -> u64 {
    l[field].parse().unwrap()
}

fn info_value(p: &Proc, section: &str, name: &str) -> u64 {
    let text = cli(p.port, &["info", section]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).map(|v| v.trim().parse().unwrap()).unwrap()
}

/// Node `a` (moonshard or redis-server) with a redis-server peer that stops
/// reading: what `a` shows and does, asserted the same for both kinds.
fn sendbuf_limit(kind: &str, make: &dyn Fn(&[&str]) -> Proc) {
    let log = common::temp_dir("cluster-links-log").join("node.log");
    let log_arg = log.to_string_lossy().into_owned();
    let a = make(&["--logfile", &log_arg]);
    let b = redis_node();
    meet_with_bus(&a, &b);
    wait_connected(&[&a, &b]);
    let b_id = myid(&b);
    wait_until("both links of a to b", 15, || link(&a, "to", &b_id).is_some() && link(&a, "from", &b_id).is_some());
    assert_eq!(cli(a.port, &["config", "get", "cluster-link-sendbuf-limit"]), "cluster-link-sendbuf-limit\n0\n");
    assert_eq!(info_field(&a, "total_cluster_links_buffer_limit_exceeded"), 0, "{kind}");
    assert_eq!(info_value(&a, "clients", "cluster_connections"), 2, "{kind}");
    // redis-server refreshes the figure in its cron: polled.
    wait_until("the links' memory to be counted", 10, || info_value(&a, "memory", "mem_cluster_links") > 0);
    let to = link(&a, "to", &b_id).unwrap();
    assert_eq!(to["events"], "r", "{kind}");
    assert_eq!(num(&to, "send-buffer-used"), 0, "{kind}");

    // b stops reading: PUBLISH messages pile up in a's link to b.
    let stopped = Stopped::new(&b);
    let mut con = a.client();
    let big = vec![b'm'; 1 << 20];
    let t0 = Instant::now();
    let mut published = 0u64;
    let mut used = 0;
    while used < 8 << 20 {
        assert!(published < 80 << 20 && t0.elapsed() < Duration::from_secs(60), "{kind}: the send buffer never grew");
        let _: i64 = redis::cmd("PUBLISH").arg("bulk").arg(&big).query(&mut con).unwrap();
        published += big.len() as u64;
        used = link(&a, "to", &b_id).map_or(0, |l| num(&l, "send-buffer-used"));
    }
    let to = link(&a, "to", &b_id).unwrap();
    assert!(num(&to, "send-buffer-allocated") >= num(&to, "send-buffer-used"), "{kind}: {to:?}");
    assert!(num(&to, "send-buffer-used") <= published + (1 << 20), "{kind}: {to:?}");
    assert_eq!(to["events"], "rw", "{kind}");
    // The buffer counts in the links' memory (the peer's kernel may still
    // take some bytes meanwhile, and redis-server refreshes the figure in
    // its cron: polled).
    wait_until("the links' memory to count the send buffer", 10, || {
        let used_now = link(&a, "to", &b_id).map_or(0, |l| num(&l, "send-buffer-used"));
        info_value(&a, "memory", "mem_cluster_links") >= used_now / 2
    });
    // No limit (0): the link stays.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(link(&a, "to", &b_id).unwrap()["create-time"], to["create-time"], "{kind}");
    assert_eq!(info_field(&a, "total_cluster_links_buffer_limit_exceeded"), 0, "{kind}");

    // Over the limit: the link is freed (its buffer with it) and connected again.
    assert_eq!(cli(a.port, &["config", "set", "cluster-link-sendbuf-limit", "4mb"]).trim(), "OK");
    wait_until("the link to be freed", 10, || info_field(&a, "total_cluster_links_buffer_limit_exceeded") == 1);
    wait_until("a new link to b", 10, || link(&a, "to", &b_id).is_some_and(|l| l["create-time"] != to["create-time"]));
    let new_to = link(&a, "to", &b_id).unwrap();
    assert!(num(&new_to, "send-buffer-used") < 4 << 20, "{kind}: {new_to:?}");
    assert!(info_value(&a, "memory", "mem_cluster_links") < used, "{kind}");
    // The warning, in each server's log file.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let line = format!("Freeing cluster link(to node {b_id}, used memory: ");
    assert!(text.contains(&line), "{kind}: no {line:?} in the log:\n{text}");
    assert!(text.contains(") due to exceeding send buffer memory limit."), "{kind}");

    // b reads again: the new link works and nothing more is freed.
    drop(stopped);
    assert_eq!(cli(a.port, &["publish", "bulk", "small"]).trim(), "0");
    wait_until("the links to settle", 15, || {
        link(&a, "to", &b_id).is_some_and(|l| num(&l, "send-buffer-used") == 0 && l["events"] == "r")
    });
    wait_connected(&[&a, &b]);
    assert_eq!(info_field(&a, "total_cluster_links_buffer_limit_exceeded"), 1, "{kind}");
    let _ = std::fs::remove_dir_all(log.parent().unwrap());
}

#[test]
fn link_send_buffer_limit_frees_the_link_as_redis_server() {
    if !tools_present() {
        return;
    }
    sendbuf_limit("redis-server", &|extra| {
        let cport = common::free_port().to_string();
        let mut args = vec!["--cluster-enabled", "yes", "--cluster-port", &cport];
        args.extend_from_slice(extra);
        common::redis_server_with(&args).expect("redis-server")
    });
    sendbuf_limit("moonshard", &|extra| ms_node(extra));
}

const NODE_TIMEOUT: u64 = 1000;

/// Master `x` of a three-master cluster is cut off from the other two (both
/// stopped): what its clients see, which must be the same for both kinds.
fn minority_master(x: &Proc, others: [&Proc; 2], all: &[&Proc]) -> Vec<String> {
    let key = (0..).map(|i| format!("part{i}")).find(|k| owner_of(all, k).port == x.port).unwrap();
    assert_eq!(cli(x.port, &["set", &key, "1"]).trim(), "OK");
    let stopped: Vec<Stopped> = others.iter().map(|p| Stopped::new(p)).collect();
    let t0 = Instant::now();
    // Writes go on until the node timeout has passed without an answer.
    let mut seen = Vec::new();
    let down = "CLUSTERDOWN The cluster is down";
    loop {
        let reply = cli(x.port, &["set", &key, "2"]).trim().to_string();
        if reply == down {
            break;
        }
        assert_eq!(reply, "OK", "port {}", x.port);
        assert!(t0.elapsed() < Duration::from_millis(NODE_TIMEOUT + 8000), "never went down");
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = t0.elapsed();
    eprintln!("port {}: CLUSTERDOWN {took:?} after the partition (node timeout {NODE_TIMEOUT} ms)", x.port);
    assert!(took >= Duration::from_millis(NODE_TIMEOUT * 8 / 10), "down after {took:?}, before the node timeout");
    assert!(cli(x.port, &["cluster", "info"]).contains("cluster_state:fail"));
    seen.push(cli(x.port, &["set", &key, "3"]));
    seen.push(cli(x.port, &["get", &key]));
    seen.push(cli(x.port, &["incr", "{other}"]));
    // Reads allowed while down: reads served, writes refused with their text.
    assert_eq!(cli(x.port, &["config", "set", "cluster-allow-reads-when-down", "yes"]).trim(), "OK");
    wait_until("reads to be served", 5, || cli(x.port, &["get", &key]).trim() == "2");
    seen.push(cli(x.port, &["get", &key]));
    seen.push(cli(x.port, &["set", &key, "4"]));
    assert_eq!(cli(x.port, &["config", "set", "cluster-allow-reads-when-down", "no"]).trim(), "OK");
    // The partition heals: the node serves again.
    drop(stopped);
    wait_until("the cluster to be ok again", 20, || state_ok(x.port));
    wait_until("writes to be served again", 10, || cli(x.port, &["set", &key, "5"]).trim() == "OK");
    wait_ok(all);
    seen
}

/// A partition isolating one master, once a moonshard node and once a
/// redis-server node, in a mixed cluster with a 1 s node timeout.
#[test]
fn a_master_in_the_minority_stops_serving_as_redis_server() {
    if !tools_present() {
        return;
    }
    let timeout = NODE_TIMEOUT.to_string();
    let a = ms_node(&["--cluster-node-timeout", &timeout]);
    let b = ms_node(&["--cluster-node-timeout", &timeout]);
    let cport = common::free_port().to_string();
    let r = common::redis_server_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        &cport,
        "--cluster-node-timeout",
        &timeout,
    ])
    .expect("redis-server");
    let all = [&a, &r, &b];
    create(&all);
    wait_ok(&all);
    wait_connected(&all);
    let on_moonshard = minority_master(&a, [&r, &b], &all);
    let on_redis = minority_master(&r, [&a, &b], &all);
    assert_eq!(on_moonshard, on_redis);
    assert_eq!(on_moonshard[0].trim(), "CLUSTERDOWN The cluster is down");
    assert_eq!(on_moonshard[4].trim(), "CLUSTERDOWN The cluster is down and only accepts read commands");
}
