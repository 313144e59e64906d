//! Client limits against the live server: `maxclients`, `timeout`,
//! `client-query-buffer-limit`, `client-output-buffer-limit` (normal class),
//! CLIENT KILL, big bulk headers that never get their payload, and a client
//! that never reads its replies. Where the behaviour is observable from the
//! outside, the same scenario also runs against a real redis-server and both
//! must agree.

mod common;

use common::{run_str, Proc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Generous bound for "eventually": liveness, not timing.
const EVENTUALLY: Duration = Duration::from_secs(15);

fn servers() -> Vec<(&'static str, Proc)> {
    let mut v = vec![("moonshard", common::moonshard(&["--shards", "4"]))];
    if let Some(r) = common::redis_server() {
        v.push(("redis", r));
    }
    v
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn cmd(con: &mut redis::Connection, args: &[&str]) -> String {
    common::show(run_str(con, args))
}

fn info_u64(con: &mut redis::Connection, field: &str) -> u64 {
    let text: String = redis::cmd("INFO").query(con).unwrap();
    let prefix = format!("{field}:");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn client_count(con: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(con).unwrap();
    list.lines().count()
}

/// CLIENT LIST's `omem` (pending output bytes) of client `id`, 0 when gone.
fn client_omem(con: &mut redis::Connection, id: u64) -> u64 {
    let list: String = redis::cmd("CLIENT").arg("LIST").arg("ID").arg(id).query(con).unwrap();
    list.split_whitespace().find_map(|f| f.strip_prefix("omem=")).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn client_listed(con: &mut redis::Connection, id: u64) -> bool {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(con).unwrap();
    list.lines().any(|l| l.starts_with(&format!("id={id} ")))
}

/// Reads until the peer closes (Ok(bytes)) or `within` passes (Err(bytes)).
fn read_until_closed(s: &mut TcpStream, within: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Ok(got),
        }
    }
    Err(got)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + EVENTUALLY;
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One request, one reply line (or bulk header), on a raw socket.
fn raw_call(s: &mut TcpStream, req: &[u8]) -> Vec<u8> {
    s.write_all(req).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "peer closed after {:?}", String::from_utf8_lossy(&got));
        got.push(b[0]);
    }
    got
}

#[test]
fn maxclients_refuses_the_next_client() {
    for (name, srv) in servers() {
        let mut admin = srv.client();
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxclients", "3"]), "OK", "{name}");
        let mut a = connect(srv.port);
        let mut b = connect(srv.port);
        assert_eq!(raw_call(&mut a, b"PING\r\n"), b"+PONG\r\n");
        assert_eq!(raw_call(&mut b, b"PING\r\n"), b"+PONG\r\n");
        let mut extra = connect(srv.port);
        let got = read_until_closed(&mut extra, EVENTUALLY).expect("refused client is closed");
        assert_eq!(String::from_utf8_lossy(&got), "-ERR max number of clients reached\r\n", "{name}");
        // A slot frees up when a client leaves.
        drop(a);
        wait_until("slot freed", || client_count(&mut admin) == 2);
        let mut c = connect(srv.port);
        assert_eq!(raw_call(&mut c, b"PING\r\n"), b"+PONG\r\n", "{name}");
        assert!(info_u64(&mut admin, "rejected_connections") >= 1, "{name}");
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxclients", "10000"]), "OK");
        drop((b, c));
    }
}

#[test]
fn idle_timeout_spares_subscribed_blocked_and_busy_clients() {
    for (name, srv) in servers() {
        // Connected (and idle) before the timeout is set: the check is periodic, not per read.
        let mut idle = connect(srv.port);
        assert_eq!(raw_call(&mut idle, b"PING\r\n"), b"+PONG\r\n");
        let mut sub = connect(srv.port);
        sub.write_all(b"SUBSCRIBE news\r\n").unwrap();
        let mut resp3_sub = connect(srv.port);
        resp3_sub.write_all(b"HELLO 3\r\nSUBSCRIBE news\r\n").unwrap();
        let mut blocked = connect(srv.port);
        blocked.write_all(b"BLPOP waitlist 0\r\n").unwrap();
        let mut admin = srv.client();
        wait_until("all connected", || client_count(&mut admin) == 5);
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "timeout", "1"]), "OK", "{name}");

        let got = read_until_closed(&mut idle, EVENTUALLY).unwrap_or_else(|_| panic!("{name}: idle client kept"));
        assert!(got.is_empty(), "{name}: closed without a reply, got {got:?}");
        // The admin connection is idle too between commands; keep it busy while checking.
        let mut active = connect(srv.port);
        for _ in 0..8 {
            assert_eq!(raw_call(&mut active, b"PING\r\n"), b"+PONG\r\n", "{name}: an active client is kept");
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut admin = srv.client();
        assert_eq!(cmd(&mut admin, &["PUBLISH", "news", "hi"]), "2", "{name}: both subscribers kept");
        assert_eq!(cmd(&mut admin, &["RPUSH", "waitlist", "x"]), "1", "{name}");
        let mut buf = vec![0u8; 256];
        blocked.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let n = blocked.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"*2\r\n$8\r\nwaitlist\r\n$1\r\nx\r\n", "{name}: blocked client kept");
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "timeout", "0"]), "OK");
    }
}

#[test]
fn query_buffer_limit_closes_without_reply() {
    for (name, srv) in servers() {
        let mut admin = srv.client();
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "client-query-buffer-limit", "1mb"]), "OK", "{name}");
        // A value under the limit is fine.
        let mut ok = connect(srv.port);
        let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$900000\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'v', 900_000));
        req.extend_from_slice(b"\r\n");
        assert_eq!(raw_call(&mut ok, &req), b"+OK\r\n", "{name}");
        // A bulk past it closes the connection, with no reply.
        let mut big = connect(srv.port);
        let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$2000000\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'x', 1_500_000));
        let _ = big.write_all(&req);
        let got = read_until_closed(&mut big, EVENTUALLY).unwrap_or_else(|_| panic!("{name}: not closed"));
        assert!(got.is_empty(), "{name}: no reply expected, got {:?}", String::from_utf8_lossy(&got));
        assert_eq!(cmd(&mut admin, &["EXISTS", "z"]), "0", "{name}");
        assert_eq!(cmd(&mut admin, &["STRLEN", "k"]), "900000", "{name}");
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "client-query-buffer-limit", "1gb"]), "OK");
    }
}

/// A bulk header alone must not reserve its whole length: many connections
/// each declaring 500 MB and stalling cost a few MB each at most.
#[test]
fn declared_bulk_reserves_only_what_arrives() {
    let srv = common::moonshard(&["--shards", "4"]);
    let mut admin = srv.client();
    let before = info_u64(&mut admin, "used_memory");
    let conns: Vec<TcpStream> = (0..12)
        .map(|i| {
            let mut s = connect(srv.port);
            let mut req = format!("*3\r\n$3\r\nSET\r\n$3\r\nz{i:02}\r\n$500000000\r\n").into_bytes();
            req.extend(std::iter::repeat_n(b'x', 100_000));
            s.write_all(&req).unwrap();
            s
        })
        .collect();
    wait_until("all connected", || client_count(&mut admin) == 13);
    // Let the server read what was sent.
    std::thread::sleep(Duration::from_millis(300));
    let after = info_u64(&mut admin, "used_memory");
    let grew = after.saturating_sub(before);
    assert!(grew < 12 * 3 * 1024 * 1024, "12 stalled 500 MB bulks grew used_memory by {grew} bytes");
    drop(conns);

    // A big value still arrives whole when sent in pieces.
    let mut s = connect(srv.port);
    let len = 5_000_000;
    s.write_all(format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${len}\r\n").as_bytes()).unwrap();
    let chunk = vec![b'q'; 300_000];
    let mut sent = 0;
    while sent < len {
        let n = chunk.len().min(len - sent);
        s.write_all(&chunk[..n]).unwrap();
        sent += n;
    }
    assert_eq!(raw_call(&mut s, b"\r\n"), b"+OK\r\n");
    assert_eq!(cmd(&mut admin, &["STRLEN", "big"]), len.to_string());
    let v: Vec<u8> = redis::cmd("GET").arg("big").query(&mut admin).unwrap();
    assert!(v.iter().all(|&b| b == b'q'));
}

/// Pipelines `count` GETs of `key` on a socket that never reads its replies;
/// the writing happens on a thread, since the server stops reading once its
/// replies back up.
fn stuck_reader(port: u16, key: &str, count: usize) -> (TcpStream, u64, std::thread::JoinHandle<()>) {
    let mut s = connect(port);
    let id_line = raw_call(&mut s, b"CLIENT ID\r\n");
    let id: u64 = String::from_utf8_lossy(&id_line[1..id_line.len() - 2]).parse().unwrap();
    let mut w = s.try_clone().unwrap();
    let req = format!("GET {key}\r\n").repeat(count);
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(req.as_bytes());
    });
    (s, id, writer)
}

/// Other clients, on keys spread over every shard, each get their answers.
fn others_are_served(port: u16, round: usize) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let mut con = c.get_connection_with_timeout(Duration::from_secs(10)).unwrap();
                for i in 0..100 {
                    let key = format!("other:{round}:{t}:{i}");
                    assert_eq!(cmd(&mut con, &["SET", &key, &i.to_string()]), "OK");
                    assert_eq!(cmd(&mut con, &["GET", &key]), i.to_string());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a well-behaved client failed while another never read");
    }
}

#[test]
fn a_client_that_never_reads_stalls_nobody_and_output_limits_drop_it() {
    let srv = common::moonshard(&["--shards", "4"]);
    let mut admin = srv.client();
    let value = "v".repeat(100_000);
    assert_eq!(cmd(&mut admin, &["SET", "big", &value]), "OK");
    let base = info_u64(&mut admin, "used_memory");

    // No limit (the default): the stuck client holds its pending replies, no
    // more. (Long values are shared with the replies that read them, so the
    // pending output is counted in CLIENT LIST's omem, not in used_memory.)
    let (_slow, id, writer) = stuck_reader(srv.port, "big", 100_000);
    wait_until("replies pending", || client_omem(&mut admin, id) > 4_000_000);
    others_are_served(srv.port, 0);
    assert_eq!(cmd(&mut admin, &["CLIENT", "KILL", "ID", &id.to_string()]), "1", "a stuck writer can be killed");
    writer.join().unwrap();
    wait_until("memory returned after kill", || info_u64(&mut admin, "used_memory") < base + 2_000_000);

    // Hard limit: dropped as soon as its pending output reaches it.
    assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "client-output-buffer-limit", "normal 4mb 0 0"]), "OK");
    let (mut slow, id, writer) = stuck_reader(srv.port, "big", 100_000);
    wait_until("hard limit closes the client", || !client_listed(&mut admin, id));
    let got = read_until_closed(&mut slow, EVENTUALLY).expect("closed");
    assert!(got.is_empty(), "dropped output is not sent, got {} bytes", got.len());
    writer.join().unwrap();
    others_are_served(srv.port, 1);
    wait_until("memory returned after hard limit", || info_u64(&mut admin, "used_memory") < base + 2_000_000);

    // Soft limit: dropped once its output stays over it for the given seconds.
    // 300 replies (30 MB, more than the kernel's socket buffers take) are
    // produced in one turn of the loop, then wait unread.
    assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "client-output-buffer-limit", "normal 0 1mb 1"]), "OK");
    let (mut slow, id, writer) = stuck_reader(srv.port, "big", 300);
    wait_until("soft limit closes the client", || !client_listed(&mut admin, id));
    // Only now read: what had reached the socket, then the end.
    read_until_closed(&mut slow, EVENTUALLY).expect("closed");
    writer.join().unwrap();
    wait_until("memory returned after soft limit", || info_u64(&mut admin, "used_memory") < base + 2_000_000);

    // A client that reads its replies is never dropped by the same limits.
    assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "client-output-buffer-limit", "normal 4mb 1mb 1"]), "OK");
    for _ in 0..20 {
        let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut admin).unwrap();
        assert_eq!(got.len(), 100_000);
    }
    assert_eq!(cmd(&mut admin, &["PING"]), "PONG");
}

/// The same stuck-reader scenario on both servers: both drop the client.
#[test]
fn output_hard_limit_matches_redis() {
    for (name, srv) in servers() {
        let mut admin = srv.client();
        assert_eq!(cmd(&mut admin, &["SET", "big", &"v".repeat(100_000)]), "OK");
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "client-output-buffer-limit", "normal 4mb 0 0"]), "OK");
        let (mut slow, _id, writer) = stuck_reader(srv.port, "big", 2000);
        read_until_closed(&mut slow, EVENTUALLY).unwrap_or_else(|_| panic!("{name}: not dropped"));
        writer.join().unwrap();
        let limits = cmd(&mut admin, &["CONFIG", "GET", "client-output-buffer-limit"]);
        assert!(limits.contains("normal 4194304 0 0"), "{name}: {limits}");
        assert_eq!(client_count(&mut admin), 1, "{name}");
    }
}

#[test]
fn client_kill_filters_match_redis() {
    let mut results: Vec<Vec<String>> = Vec::new();
    for (name, srv) in servers() {
        let mut me = srv.client();
        let mut a = connect(srv.port);
        let a_id = raw_call(&mut a, b"CLIENT ID\r\n");
        let a_id = String::from_utf8_lossy(&a_id[1..a_id.len() - 2]).into_owned();
        let mut b = connect(srv.port);
        raw_call(&mut b, b"PING\r\n");
        let b_addr = b.local_addr().unwrap().to_string();
        let mut c = connect(srv.port);
        raw_call(&mut c, b"PING\r\n");
        let laddr = format!("127.0.0.1:{}", srv.port);
        let mut seen = vec![
            cmd(&mut me, &["CLIENT", "KILL", "ID", "999999"]),
            cmd(&mut me, &["CLIENT", "KILL", "ID", &a_id]),
            cmd(&mut me, &["CLIENT", "KILL", "ADDR", &b_addr]),
            cmd(&mut me, &["CLIENT", "KILL", "ADDR", "1.2.3.4:5"]),
            cmd(&mut me, &["CLIENT", "KILL", "ID", "abc"]),
            cmd(&mut me, &["CLIENT", "KILL", "SKIPME", "maybe"]),
            cmd(&mut me, &["CLIENT", "KILL", "1.2.3.4:5"]),
            cmd(&mut me, &["CLIENT", "KILL", "USER", "nosuchuser"]),
        ];
        for (s, what) in [(&mut a, "id"), (&mut b, "addr")] {
            read_until_closed(s, EVENTUALLY).unwrap_or_else(|_| panic!("{name}: kill by {what} left it open"));
        }
        // LADDR + USER with SKIPME yes (the default) spares the caller, kills c.
        seen.push(cmd(&mut me, &["CLIENT", "KILL", "LADDR", &laddr, "USER", "default"]));
        read_until_closed(&mut c, EVENTUALLY).unwrap_or_else(|_| panic!("{name}: kill by laddr left it open"));
        seen.push(cmd(&mut me, &["PING"]));
        // SKIPME no kills the caller too.
        seen.push(cmd(&mut me, &["CLIENT", "KILL", "LADDR", &laddr, "SKIPME", "no"]));
        let mut fresh = srv.client();
        seen.push(cmd(&mut fresh, &["PING"]));
        results.push(seen);
    }
    let expect = [
        "0",
        "1",
        "1",
        "0",
        "ERR client-id should be greater than 0",
        "ERR syntax error",
        "ERR No such client",
        "ERR No such user 'nosuchuser'",
        "1",
        "PONG",
    ];
    for seen in &results {
        assert_eq!(&seen[..expect.len()], &expect[..], "{seen:?}");
        // The caller's own reply comes back before it is closed, or not at all.
        assert_eq!(seen[expect.len() + 1], "PONG");
    }
    if results.len() == 2 {
        assert_eq!(results[0], results[1], "moonshard vs redis");
    }
}
