//! Client eviction (`maxmemory-clients`, Redis 7.0) against the live server:
//! a query buffer growing past the limit, CLIENT NO-EVICT, a lowered limit
//! evicting the largest clients first and only until the rest are under it,
//! a percentage of `maxmemory` and the 128 KB floor, a subscriber that stops
//! reading, INFO `evicted_clients` and DEBUG CLIENT-EVICTION. Every scenario
//! runs against redis-server 7.0 too, and both must agree.

mod common;

use common::{run_str, Proc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const EVENTUALLY: Duration = Duration::from_secs(20);

fn servers() -> Vec<(&'static str, Proc)> {
    let flags = ["--enable-debug-command", "yes"];
    let mut v = vec![("moonshard", common::moonshard(&[&["--shards", "4"][..], &flags].concat()))];
    if let Some(r) = common::redis_server_with(&flags) {
        v.push(("redis", r));
    }
    v
}

fn cmd(con: &mut redis::Connection, args: &[&str]) -> String {
    common::show(run_str(con, args))
}

/// The admin connection: never evicted itself.
fn admin(srv: &Proc) -> redis::Connection {
    let mut a = srv.client();
    assert_eq!(cmd(&mut a, &["CLIENT", "SETNAME", "admin"]), "OK");
    assert_eq!(cmd(&mut a, &["CLIENT", "NO-EVICT", "ON"]), "OK");
    a
}

fn info_u64(con: &mut redis::Connection, field: &str) -> u64 {
    common::info_num(con, "stats", field) as u64
}

/// CLIENT LIST's `field` of the client named `name`, None when it is gone.
fn field_of(con: &mut redis::Connection, name: &str, field: &str) -> Option<u64> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(con).unwrap();
    let line = list.lines().find(|l| l.contains(&format!(" name={name} ")))?;
    line.split_whitespace().find_map(|f| f.strip_prefix(&format!("{field}="))).and_then(|v| v.parse().ok())
}

fn listed(con: &mut redis::Connection, name: &str) -> bool {
    field_of(con, name, "tot-mem").is_some()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + EVENTUALLY;
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw connection named `name` (its CLIENT SETNAME answered).
fn named(port: u16, name: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("CLIENT SETNAME {name}\r\n").as_bytes()).unwrap();
    let mut ok = [0u8; 5];
    s.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
    s
}

/// Sends the start of a command whose one argument is `bytes` long, without
/// its end: the server holds `bytes` in the client's query buffer.
fn hold_query_buffer(s: &mut TcpStream, bytes: usize) {
    s.write_all(format!("*2\r\n${bytes}\r\n").as_bytes()).unwrap();
    // A write error is an eviction on the way, which the caller checks.
    let _ = s.write_all(&vec![b'v'; bytes]);
}

/// A client holding `bytes` in its query buffer, once the server has them all.
fn holder(srv: &Proc, admin: &mut redis::Connection, name: &str, bytes: usize) -> TcpStream {
    let mut s = named(srv.port, name);
    hold_query_buffer(&mut s, bytes);
    wait_until(&format!("{name} holds its bytes"), || field_of(admin, name, "qbuf").is_some_and(|q| q >= bytes as u64));
    s
}

/// True once the server closed `s` (read to the end within `within`).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 1 << 16];
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn a_growing_query_buffer_gets_its_client_evicted() {
    for (name, srv) in servers() {
        let mut admin = admin(&srv);
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxmemory-clients", "1mb"]), "OK");
        let mut small = named(srv.port, "small");
        hold_query_buffer(&mut small, 100_000);
        let mut big = named(srv.port, "big");
        hold_query_buffer(&mut big, 1_500_000);
        assert!(closed_within(&mut big, EVENTUALLY), "{name}: the client over the limit is evicted");
        assert!(!listed(&mut admin, "big"), "{name}");
        assert!(listed(&mut admin, "small"), "{name}: the rest are under the limit again");
        assert_eq!(info_u64(&mut admin, "evicted_clients"), 1, "{name}");
        assert_eq!(cmd(&mut admin, &["CONFIG", "RESETSTAT"]), "OK");
        assert_eq!(info_u64(&mut admin, "evicted_clients"), 0, "{name}");
        drop(small);
    }
}

#[test]
fn no_evict_spares_a_client_until_it_is_lifted() {
    for (name, srv) in servers() {
        let mut admin = admin(&srv);
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxmemory-clients", "1mb"]), "OK");
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0"]), "OK");
        // A RESP3 subscriber (it may send any command) that stops reading.
        let mut sub = named(srv.port, "reader");
        sub.write_all(b"HELLO 3\r\nCLIENT NO-EVICT ON\r\nSUBSCRIBE news\r\n").unwrap();
        wait_until("subscribed", || field_of(&mut admin, "reader", "sub") == Some(1));
        let payload = "x".repeat(200_000);
        // Far more than the limit, past what the sockets hold.
        for _ in 0..60 {
            assert_eq!(cmd(&mut admin, &["PUBLISH", "news", &payload]), "1", "{name}: a no-evict client stays");
        }
        assert!(listed(&mut admin, "reader"), "{name}");
        assert_eq!(info_u64(&mut admin, "evicted_clients"), 0, "{name}");
        sub.write_all(b"CLIENT NO-EVICT OFF\r\n").unwrap();
        assert!(closed_within(&mut sub, EVENTUALLY), "{name}: lifting no-evict evicts it");
        assert_eq!(info_u64(&mut admin, "evicted_clients"), 1, "{name}");
    }
}

#[test]
fn a_lowered_limit_evicts_the_largest_first_and_only_until_under_it() {
    for (name, srv) in servers() {
        let mut admin = admin(&srv);
        let sizes = [("s", 128 * 1024), ("m", 1024 * 1024), ("l", 3 * 1024 * 1024)];
        let mut held = Vec::new();
        let mut mem = std::collections::HashMap::new();
        for (size_name, bytes) in sizes {
            for i in 0..3 {
                let client = format!("{size_name}{i}");
                held.push(holder(&srv, &mut admin, &client, bytes));
                mem.insert(client.clone(), field_of(&mut admin, &client, "tot-mem").unwrap());
            }
        }
        let sum = |prefix: &str| -> u64 { mem.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum() };
        let admin_mem = field_of(&mut admin, "admin", "tot-mem").unwrap();
        // Room for the small and middle clients (and some slack for the
        // admin's own buffers), not for any large one.
        let limit = sum("s") + sum("m") + admin_mem + 512 * 1024;
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxmemory-clients", &limit.to_string()]), "OK");
        for client in ["l0", "l1", "l2"] {
            assert!(!listed(&mut admin, client), "{name}: {client} (largest) evicted at once");
        }
        for client in ["m0", "m1", "m2", "s0", "s1", "s2"] {
            assert!(listed(&mut admin, client), "{name}: {client} kept (the rest were under the limit)");
        }
        assert_eq!(info_u64(&mut admin, "evicted_clients"), 3, "{name}");
        let limit = sum("s") + admin_mem + 512 * 1024;
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxmemory-clients", &limit.to_string()]), "OK");
        for client in ["m0", "m1", "m2"] {
            assert!(!listed(&mut admin, client), "{name}: {client} evicted next");
        }
        for client in ["s0", "s1", "s2"] {
            assert!(listed(&mut admin, client), "{name}: {client} kept");
        }
        assert_eq!(info_u64(&mut admin, "evicted_clients"), 6, "{name}");
        drop(held);
    }
}

#[test]
fn a_percentage_of_maxmemory_and_the_smallest_limit() {
    for (name, srv) in servers() {
        let mut admin = admin(&srv);
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxmemory", "20mb"]), "OK");
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxmemory-clients", "10%"]), "OK");
        assert_eq!(cmd(&mut admin, &["CONFIG", "GET", "maxmemory-clients"]), "[maxmemory-clients,10%]", "{name}");
        // 10% of 20 MB: 2 MB.
        let mut kept = holder(&srv, &mut admin, "kept", 1024 * 1024);
        let mut over = named(srv.port, "over");
        hold_query_buffer(&mut over, 2_500_000);
        assert!(closed_within(&mut over, EVENTUALLY), "{name}: over 10% of maxmemory");
        assert!(listed(&mut admin, "kept"), "{name}");
        // A percentage of no maxmemory limits nothing.
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxmemory", "0"]), "OK");
        let _unlimited = holder(&srv, &mut admin, "unlimited", 2_500_000);
        assert!(listed(&mut admin, "unlimited"), "{name}");
        drop(_unlimited);
        wait_until("unlimited gone", || !listed(&mut admin, "unlimited"));
        // The smallest limit is 128 KB: `1` still lets small clients talk.
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxmemory-clients", "1"]), "OK");
        let mut talker = named(srv.port, "talker");
        talker.write_all(b"PING\r\n").unwrap();
        let mut pong = [0u8; 7];
        talker.read_exact(&mut pong).unwrap();
        assert_eq!(&pong, b"+PONG\r\n", "{name}");
        assert!(closed_within(&mut kept, EVENTUALLY), "{name}: 1 MB is over 128 KB");
        assert!(listed(&mut admin, "talker"), "{name}");
    }
}

#[test]
fn a_subscriber_that_stops_reading_is_evicted() {
    for (name, srv) in servers() {
        let mut admin = admin(&srv);
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0"]), "OK");
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxmemory-clients", "1mb"]), "OK");
        let mut sub = named(srv.port, "sleeper");
        sub.write_all(b"SUBSCRIBE news\r\n").unwrap();
        wait_until("subscribed", || field_of(&mut admin, "sleeper", "sub") == Some(1));
        let payload = "x".repeat(200_000);
        let mut published = 0;
        while listed(&mut admin, "sleeper") {
            assert!(published < 200, "{name}: the subscriber holds 40 MB and was not evicted");
            cmd(&mut admin, &["PUBLISH", "news", &payload]);
            published += 1;
        }
        assert!(closed_within(&mut sub, EVENTUALLY), "{name}");
        assert_eq!(info_u64(&mut admin, "evicted_clients"), 1, "{name}");
    }
}

#[test]
fn debug_client_eviction_reports_the_buckets() {
    let mut texts = Vec::new();
    for (name, srv) in servers() {
        let mut admin = admin(&srv);
        // Keeping grown reply buffers (the suite's steady measurements): both take it.
        assert_eq!(cmd(&mut admin, &["DEBUG", "REPLYBUFFER", "RESIZING", "0"]), "OK", "{name}");
        assert_eq!(cmd(&mut admin, &["DEBUG", "REPLYBUFFER", "RESIZING", "1"]), "OK", "{name}");
        let disabled = cmd(&mut admin, &["DEBUG", "CLIENT-EVICTION"]);
        assert_eq!(disabled, "ERR maxmemory-clients is disabled.", "{name}");
        assert_eq!(cmd(&mut admin, &["CONFIG", "SET", "maxmemory-clients", "10mb"]), "OK");
        let _held = holder(&srv, &mut admin, "held", 300_000);
        let text = cmd(&mut admin, &["DEBUG", "CLIENT-EVICTION"]);
        // The sizes are each server's own; the layout and the counts agree.
        let masked: Vec<String> = text
            .lines()
            .map(|l| {
                let (head, tail) = l.split_once("tot-mem:").unwrap_or((l, ""));
                let clients = tail.split_once("clients:").map(|x| x.1).unwrap_or("");
                let mem = tail.split(',').next().unwrap_or("").trim();
                let mem = if mem == "0" { "0" } else { "N" };
                format!("{head}tot-mem: {mem}, clients:{clients}")
            })
            .collect();
        assert_eq!(masked.len(), 19, "{name}: {text}");
        assert!(masked[4].starts_with("bucket     262144 -     524287"), "{name}: {text}");
        assert!(masked[4].ends_with("clients: 1"), "{name}: the 300 KB client: {text}");
        texts.push(masked);
    }
    if texts.len() == 2 {
        assert_eq!(texts[0], texts[1]);
    }
}
