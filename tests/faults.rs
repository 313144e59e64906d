//! Faults: a client killed mid-pipeline (or mid-script-call pipeline) loses
//! nothing that was acknowledged, the server applies exactly what it
//! processed, and keeps serving everyone else.

mod common;

use rand::{Rng, SeedableRng};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const PIPELINE: usize = 10_000;

fn commandstat_calls(con: &mut redis::Connection, cmd: &str) -> u64 {
    let text: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    let prefix = format!("cmdstat_{cmd}:calls=");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn get_i64(con: &mut redis::Connection, key: &str) -> i64 {
    let v: Option<i64> = redis::cmd("GET").arg(key).query(con).unwrap();
    v.unwrap_or(0)
}

/// Reads integer replies (`:n\r\n`) until `want` of them have arrived,
/// returning their values in order.
fn read_int_replies(s: &mut TcpStream, want: usize) -> Vec<i64> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::with_capacity(want);
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        let n = s.read(&mut buf).expect("replies arrive");
        assert!(n > 0, "server closed early");
        pending.extend_from_slice(&buf[..n]);
        while got.len() < want {
            let Some(end) = pending.windows(2).position(|w| w == b"\r\n") else { break };
            let line = String::from_utf8(pending[..end].to_vec()).unwrap();
            let v = line.strip_prefix(':').unwrap_or_else(|| panic!("not an integer reply: {line}"));
            got.push(v.parse().unwrap());
            pending.drain(..end + 2);
        }
    }
    got
}

/// Waits until the server is done with the killed connection: it has left
/// CLIENT LIST and the command count no longer moves.
fn settle(admin: &mut redis::Connection, clients: usize, cmd: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = u64::MAX;
    loop {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(admin).unwrap();
        let calls = commandstat_calls(admin, cmd);
        if list.lines().count() == clients && calls == last {
            return calls;
        }
        last = calls;
        assert!(Instant::now() < deadline, "the killed client never went away");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pipelines `PIPELINE` copies of `request`, reads only the first `read`
/// replies, and drops the socket with the rest in flight. Returns the values
/// those replies carried.
fn kill_mid_pipeline(port: u16, request: &[u8], read: usize) -> Vec<i64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut w = s.try_clone().unwrap();
    let all = request.repeat(PIPELINE);
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&all);
    });
    let replies = read_int_replies(&mut s, read);
    let _ = s.shutdown(std::net::Shutdown::Both);
    drop(s);
    writer.join().unwrap();
    replies
}

fn check_rounds(srv: &common::Proc, request: &[u8], key: &str, stat: &str, seed: u64) {
    let mut admin = srv.client();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut acknowledged = 0i64;
    for round in 0..5 {
        let read = rng.gen_range(1..PIPELINE / 2);
        let replies = kill_mid_pipeline(srv.port, request, read);
        // Replies are the counter's successive values: nothing skipped or repeated.
        let expected: Vec<i64> = (acknowledged + 1..=acknowledged + read as i64).collect();
        assert_eq!(replies, expected, "round {round}");
        let processed = settle(&mut admin, 1, stat) as i64;
        let counter = get_i64(&mut admin, key);
        assert_eq!(counter, processed, "round {round}: the counter is exactly what the server processed");
        assert!(counter >= acknowledged + read as i64, "round {round}: acknowledged increments lost");
        acknowledged = counter;
    }
    // Still serving, and the counter keeps counting from there.
    let next: i64 = redis::cmd("INCR").arg(key).query(&mut admin).unwrap();
    assert_eq!(next, acknowledged + 1);
}

#[test]
fn killed_mid_pipeline_loses_nothing_acknowledged() {
    let srv = common::moonshard(&["--shards", "4"]);
    check_rounds(&srv, b"*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n", "counter", "incr", 7);
}

#[test]
fn killed_mid_script_pipeline_loses_nothing_acknowledged() {
    let srv = common::moonshard(&["--shards", "4"]);
    let script = "return redis.call('INCR', KEYS[1])";
    let req = format!("*4\r\n$4\r\nEVAL\r\n${}\r\n{script}\r\n$1\r\n1\r\n$2\r\nsc\r\n", script.len());
    check_rounds(&srv, req.as_bytes(), "sc", "eval", 11);
}

/// Other clients keep working while pipelining clients are killed again and
/// again, and their own counters are exact.
#[test]
fn others_unaffected_by_killed_pipelines() {
    let srv = common::moonshard(&["--shards", "4"]);
    let port = srv.port;
    let workers: Vec<_> = (0..3)
        .map(|t| {
            std::thread::spawn(move || {
                let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let mut con = c.get_connection_with_timeout(Duration::from_secs(10)).unwrap();
                let key = format!("worker:{t}");
                for i in 1..=300i64 {
                    let v: i64 = redis::cmd("INCR").arg(&key).query(&mut con).unwrap();
                    assert_eq!(v, i);
                }
            })
        })
        .collect();
    for _ in 0..6 {
        kill_mid_pipeline(port, b"INCR chaos\r\n", 100);
    }
    for w in workers {
        w.join().expect("a well-behaved client saw a wrong reply");
    }
    let mut admin = srv.client();
    for t in 0..3 {
        assert_eq!(get_i64(&mut admin, &format!("worker:{t}")), 300);
    }
    assert!(get_i64(&mut admin, "chaos") >= 600);
}
