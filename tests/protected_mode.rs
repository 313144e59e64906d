//! Protected mode: with no password, clients from outside the loopback
//! interface get Redis's DENIED text (byte for byte, compared with a real
//! redis-server when one is installed) and are disconnected.

mod common;

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A non-loopback address of this machine (the one its default route uses).
fn outside_address() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the source address.
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Connects, optionally sends `input`, and returns everything until close or 1 s of silence.
fn exchange(addr: SocketAddr, input: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    if !input.is_empty() {
        let _ = s.write_all(input);
    }
    common::read_quiet(&mut s, Duration::from_secs(1))
}

fn redis_on_all_interfaces() -> Option<common::Proc> {
    if !common::has_program("redis-server") {
        return None;
    }
    let port = common::free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "0.0.0.0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let proc = common::Proc { port, child, dir: None };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(proc)
}

#[test]
fn outside_clients_are_denied_without_a_password() {
    let Some(ip) = outside_address() else {
        eprintln!("*** SKIPPED: no non-loopback address on this machine (the decision is unit-tested) ***");
        return;
    };
    let s = common::moonshard(&["--bind", "0.0.0.0", "--protected-mode", "yes"]);
    let outside = SocketAddr::new(ip, s.port);
    let inside = SocketAddr::new("127.0.0.1".parse().unwrap(), s.port);

    // Refused at once, before any command, and disconnected.
    let denied = exchange(outside, b"");
    assert!(denied.starts_with(b"-DENIED Redis is running in protected mode"), "{}", String::from_utf8_lossy(&denied));
    assert!(denied.ends_with(b"\r\n"));
    assert_eq!(exchange(outside, b"PING\r\n"), denied);
    if let Some(r) = redis_on_all_interfaces() {
        let theirs = exchange(SocketAddr::new(ip, r.port), b"PING\r\n");
        assert_eq!(
            String::from_utf8_lossy(&denied),
            String::from_utf8_lossy(&theirs),
            "DENIED text differs from Redis"
        );
    }

    // Loopback clients are served, and see the refusals counted.
    assert_eq!(exchange(inside, b"PING\r\n"), b"+PONG\r\n");
    let mut con = s.client();
    let stats = match common::run_str(&mut con, &["INFO", "stats"]) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(stats.contains("rejected_connections:2\r\n"), "{stats}");

    // A password lifts it: outside clients get to authenticate.
    common::run_str(&mut con, &["CONFIG", "SET", "requirepass", "secret"]).unwrap();
    assert_eq!(exchange(outside, b"PING\r\n"), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(exchange(outside, b"AUTH secret\r\nPING\r\n"), b"+OK\r\n+PONG\r\n");

    // So does protected-mode no.
    common::run_str(&mut con, &["AUTH", "secret"]).unwrap();
    common::run_str(&mut con, &["CONFIG", "SET", "requirepass", ""]).unwrap();
    assert!(exchange(outside, b"PING\r\n").starts_with(b"-DENIED"));
    common::run_str(&mut con, &["CONFIG", "SET", "protected-mode", "no"]).unwrap();
    assert_eq!(exchange(outside, b"PING\r\n"), b"+PONG\r\n");
}
