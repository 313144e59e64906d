//! Helpers for tests that build clusters of moonshard and redis-server
//! nodes with `redis-cli --cluster` (every wait has a deadline; every
//! process is killed when its `Proc` drops).
#![allow(dead_code)]

use crate::common::{free_port, moonshard, redis_server_with, Proc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

pub fn tools_present() -> bool {
    if crate::common::has_program("redis-server") && crate::common::has_program("redis-cli") {
        return true;
    }
    assert!(
        std::env::var("MOONSHARD_REQUIRE_REDIS").as_deref() != Ok("1"),
        "redis-server and redis-cli are required (MOONSHARD_REQUIRE_REDIS=1)"
    );
    eprintln!("\n*** SKIPPED: redis-server/redis-cli not on PATH; cluster tests not run ***\n");
    false
}

/// A moonshard cluster node (bus port chosen free, not port + 10000).
pub fn ms_node(extra: &[&str]) -> Proc {
    let cport = free_port().to_string();
    let mut args =
        vec!["--cluster-enabled", "yes", "--cluster-port", &cport, "--shards", "2", "--repl-diskless-sync-delay", "0"];
    args.extend_from_slice(extra);
    moonshard(&args)
}

pub fn redis_node() -> Proc {
    let cport = free_port().to_string();
    redis_server_with(&["--cluster-enabled", "yes", "--cluster-port", &cport]).expect("redis-server")
}

pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `redis-cli --cluster <args>` with a deadline; returns its output.
pub fn cluster_tool(args: &[String]) -> String {
    cluster_tool_with(&[], args)
}

/// `cluster_tool` with redis-cli options before `--cluster` (`--tls ...`).
pub fn cluster_tool_with(options: &[String], args: &[String]) -> String {
    let child = Command::new("redis-cli")
        .args(options)
        .arg("--cluster")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli --cluster");
    let (out, killed) = crate::common::output_within(child, 40);
    if killed {
        let text = String::from_utf8_lossy(&out.stdout);
        let tail = &text[text.len().saturating_sub(1500)..];
        panic!("redis-cli --cluster {args:?} hung:\n...{tail}");
    }
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub fn addr(p: &Proc) -> String {
    port_addr(p.port)
}

pub fn port_addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// `redis-cli --cluster check` through the node on `port` finds nothing to
/// report: every slot covered, every node agreeing, no error or warning.
pub fn check_clean(port: u16) {
    check_clean_with(&[], port)
}

/// `check_clean` with redis-cli options before `--cluster` (`--tls ...`).
pub fn check_clean_with(options: &[String], port: u16) {
    let out = cluster_tool_with(options, &["check".to_string(), port_addr(port)]);
    assert!(
        out.contains("[OK] All nodes agree about slots configuration.")
            && out.contains("[OK] All 16384 slots covered.")
            && !out.contains("[ERR]")
            && !out.contains("[WARNING]"),
        "check not clean:\n{out}"
    );
}

/// Redis Cluster's hash slot of a key: the server's own function (checked against Redis
/// Cluster's known slots in tests/server.rs; in mixed clusters redis-server nodes' MOVED replies
/// would disagree with it at once).
pub fn slot(key: &str) -> u16 {
    moonshard::shard::slot::key_slot(key.as_bytes())
}

/// `redis-cli --cluster create` of masters only; asserts it went well.
pub fn create(nodes: &[&Proc]) {
    let mut args = vec!["create".to_string()];
    args.extend(nodes.iter().map(|n| addr(n)));
    args.push("--cluster-yes".into());
    let out = cluster_tool(&args);
    assert!(out.contains("[OK] All 16384 slots covered."), "create failed:\n{out}");
    assert!(out.contains("[OK] All nodes agree about slots configuration."), "create failed:\n{out}");
}

/// `common::wait_until` (argument order of these tests), polling every
/// 100 ms: most checks here start a redis-cli.
#[track_caller]
pub fn wait_until(what: &str, secs: u64, f: impl FnMut() -> bool) {
    crate::common::wait_every(Duration::from_millis(100), secs, what, f)
}

/// `create` of `nodes`, then waits for the cluster to be ok and every
/// link connected on each of them.
pub fn form(nodes: &[&Proc]) {
    create(nodes);
    wait_ok(nodes);
    wait_connected(nodes);
}

pub fn wait_ok(nodes: &[&Proc]) {
    for n in nodes {
        wait_until("cluster_state:ok", 15, || state_ok(n.port));
    }
}

/// Waits until every node sees every other one connected (a PUBLISH only
/// reaches the nodes this one has a link to).
pub fn wait_connected(nodes: &[&Proc]) {
    for n in nodes {
        wait_until("every link connected", 15, || {
            let text = cli(n.port, &["cluster", "nodes"]);
            text.lines().count() == nodes.len() && text.lines().all(|l| l.contains(" connected"))
        });
    }
}

pub fn myid(p: &Proc) -> String {
    node_id(p.port)
}

pub fn node_id(port: u16) -> String {
    cli(port, &["cluster", "myid"]).trim().to_string()
}

/// `cluster_state:ok` in the CLUSTER INFO of the node on `port`.
pub fn state_ok(port: u16) -> bool {
    cli(port, &["cluster", "info"]).contains("cluster_state:ok")
}

/// The bus port `node`'s CLUSTER NODES line gives for itself.
pub fn bus_port(node: &Proc) -> String {
    let nodes = cli(node.port, &["cluster", "nodes"]);
    nodes.split('@').nth(1).and_then(|s| s.split(' ').next()).unwrap().to_string()
}

/// `at` MEETs `other` with `other`'s explicit bus port (only `redis-cli
/// --cluster` knows bus ports); asserts the OK.
pub fn meet_with_bus(at: &Proc, other: &Proc) {
    let bus = bus_port(other);
    assert_eq!(cli(at.port, &["cluster", "meet", "127.0.0.1", &other.port.to_string(), &bus]).trim(), "OK");
}

/// Slots 0-8191 with config epoch 1 to `low`, 8192-16383 with epoch 2 to
/// `high` (asserting each OK).
pub fn assign_halves(low: &Proc, high: &Proc) {
    assert_eq!(cli(low.port, &["cluster", "addslotsrange", "0", "8191"]).trim(), "OK");
    assert_eq!(cli(high.port, &["cluster", "addslotsrange", "8192", "16383"]).trim(), "OK");
    assert_eq!(cli(low.port, &["cluster", "set-config-epoch", "1"]).trim(), "OK");
    assert_eq!(cli(high.port, &["cluster", "set-config-epoch", "2"]).trim(), "OK");
}

/// The node of `nodes` that serves `key`'s slot.
pub fn owner_of<'a>(nodes: &[&'a Proc], key: &str) -> &'a Proc {
    let slot: usize = cli(nodes[0].port, &["cluster", "keyslot", key]).trim().parse().unwrap();
    for n in nodes {
        let text = cli(n.port, &["cluster", "nodes"]);
        let me = text.lines().find(|l| l.contains("myself")).unwrap().to_string();
        for r in me.split(' ').skip(8) {
            let (a, b) = match r.split_once('-') {
                Some((a, b)) => (a.parse::<usize>(), b.parse::<usize>()),
                None => (r.parse(), r.parse()),
            };
            if let (Ok(a), Ok(b)) = (a, b) {
                if a <= slot && slot <= b {
                    return n;
                }
            }
        }
    }
    panic!("no node serves {key}");
}

/// A raw client connection, for subscribers: sends inline commands and
/// waits for bytes to arrive.
pub struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(p: &Proc) -> Raw {
        Raw { s: TcpStream::connect(("127.0.0.1", p.port)).unwrap(), buf: Vec::new() }
    }

    pub fn send(&mut self, line: &str) {
        self.s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }

    /// Reads until what arrived (since the last `expect`) contains
    /// `needle`; panics after `secs`. Returns what arrived.
    pub fn expect(&mut self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(at) = find(&self.buf, needle.as_bytes()) {
                let out: Vec<u8> = self.buf.drain(..at + needle.len()).collect();
                return String::from_utf8_lossy(&out).into_owned();
            }
            if Instant::now() > deadline {
                panic!("{needle:?} never came; got {:?}", String::from_utf8_lossy(&self.buf));
            }
            self.s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let mut chunk = [0u8; 8192];
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("connection closed waiting for {needle:?}"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    }

    /// What arrives within `ms` (nothing expected: for "no message" checks).
    pub fn quiet(&mut self, ms: u64) -> String {
        self.s.set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
        let mut chunk = [0u8; 8192];
        if let Ok(n) = self.s.read(&mut chunk) {
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let out = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        out
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A message as a RESP2 subscriber sees it.
pub fn message(channel: &str, payload: &str) -> String {
    format!("$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n", channel.len(), payload.len())
}

pub fn smessage(channel: &str, payload: &str) -> String {
    format!("$8\r\nsmessage\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n", channel.len(), payload.len())
}

pub fn pmessage(pattern: &str, channel: &str, payload: &str) -> String {
    format!(
        "$8\r\npmessage\r\n${}\r\n{pattern}\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
        pattern.len(),
        channel.len(),
        payload.len()
    )
}

/// A `CLUSTER INFO` field as a number.
pub fn info_field(p: &Proc, name: &str) -> u64 {
    let info = cli(p.port, &["cluster", "info"]);
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).map(|v| v.trim().parse().unwrap()).unwrap_or(0)
}

/// A two-node cluster: a moonshard node serving slots 0-8191 with config
/// epoch 1 and a redis-server node serving 8192-16383 with epoch 2, met over
/// the bus with the redis-server node's explicit bus port, the cluster ok.
pub fn moonshard_and_redis_halves() -> (Proc, Proc) {
    let m = ms_node(&[]);
    let r = redis_node();
    assign_halves(&m, &r);
    meet_with_bus(&m, &r);
    wait_ok(&[&m, &r]);
    (m, r)
}
