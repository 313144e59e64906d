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
    let mut child = Command::new("redis-cli")
        .arg("--cluster")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli --cluster");
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let tail = &text[text.len().saturating_sub(1500)..];
            panic!("redis-cli --cluster {args:?} hung:\n...{tail}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub fn addr(p: &Proc) -> String {
    format!("127.0.0.1:{}", p.port)
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

pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

pub fn wait_ok(nodes: &[&Proc]) {
    for n in nodes {
        wait_until("cluster_state:ok", 15, || cli(n.port, &["cluster", "info"]).contains("cluster_state:ok"));
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
    cli(p.port, &["cluster", "myid"]).trim().to_string()
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
    assert_eq!(cli(m.port, &["cluster", "addslotsrange", "0", "8191"]).trim(), "OK");
    assert_eq!(cli(r.port, &["cluster", "addslotsrange", "8192", "16383"]).trim(), "OK");
    assert_eq!(cli(m.port, &["cluster", "set-config-epoch", "1"]).trim(), "OK");
    assert_eq!(cli(r.port, &["cluster", "set-config-epoch", "2"]).trim(), "OK");
    let rbus = cli(r.port, &["cluster", "nodes"]);
    let rbus = rbus.split('@').nth(1).and_then(|s| s.split(' ').next()).unwrap().to_string();
    assert_eq!(cli(m.port, &["cluster", "meet", "127.0.0.1", &r.port.to_string(), &rbus]).trim(), "OK");
    wait_ok(&[&m, &r]);
    (m, r)
}
