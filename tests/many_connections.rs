//! Many connections at once: idle connections hold no read buffer (it goes
//! back to a per-worker pool while they wait), so these check that requests
//! split over reads, interleaved across connections, still arrive whole, and
//! that thousands of idle connections are served. Bounded: a few seconds.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn reply(s: &mut TcpStream, want: &[u8]) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

#[test]
fn thousands_of_idle_connections_are_served() {
    let ms = moonshard(&["--shards", "2"]);
    let started = Instant::now();
    let n = 2000;
    let mut conns: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(("127.0.0.1", ms.port)).unwrap()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_all(format!("SET k{i} v{i}\r\n").as_bytes()).unwrap();
    }
    for c in conns.iter_mut() {
        reply(c, b"+OK\r\n");
    }
    let mut admin = ms.client();
    assert_eq!(field_of(&mut admin, "clients", "connected_clients"), (n + 1).to_string());
    // Every idle connection still answers, in reverse order of opening.
    for (i, c) in conns.iter_mut().enumerate().rev() {
        c.write_all(format!("GET k{i}\r\n").as_bytes()).unwrap();
        let v = format!("v{i}");
        reply(c, format!("${}\r\n{v}\r\n", v.len()).as_bytes());
    }
    drop(conns);
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn requests_split_across_reads_and_connections_arrive_whole() {
    let ms = moonshard(&[]);
    let big = "x".repeat(40_000);
    let reqs: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            let v = if i % 2 == 0 { format!("small{i}") } else { big.clone() };
            format!("*3\r\n$3\r\nSET\r\n$2\r\nk{i}\r\n${}\r\n{v}\r\n*2\r\n$3\r\nGET\r\n$2\r\nk{i}\r\n", v.len())
                .into_bytes()
        })
        .collect();
    let mut conns: Vec<TcpStream> =
        (0..reqs.len()).map(|_| TcpStream::connect(("127.0.0.1", ms.port)).unwrap()).collect();
    for c in &conns {
        c.set_nodelay(true).unwrap();
    }
    // Send every request in pieces, round robin over the connections, so
    // each connection's partial input waits while the others read.
    let mut sent = vec![0usize; reqs.len()];
    let mut piece = 1;
    while sent.iter().zip(&reqs).any(|(s, r)| s < &r.len()) {
        for (i, c) in conns.iter_mut().enumerate() {
            let end = (sent[i] + piece).min(reqs[i].len());
            c.write_all(&reqs[i][sent[i]..end]).unwrap();
            sent[i] = end;
        }
        piece = piece * 3 + 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let v = if i % 2 == 0 { format!("small{i}") } else { big.clone() };
        reply(c, format!("+OK\r\n${}\r\n{v}\r\n", v.len()).as_bytes());
    }
}

/// An idle connection holds no read buffer, and CLIENT LIST says so (qbuf,
/// qbuf-free and rbs 0), while the asking connection shows the one it uses.
#[test]
fn client_list_reports_idle_connections_without_a_buffer() {
    let server = common::moonshard(&[]);
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    idle.write_all(b"CLIENT SETNAME idle\r\n").unwrap();
    reply(&mut idle, b"+OK\r\n");
    let mut c = server.client();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = q(&mut c, "CLIENT LIST");
        let line = list.lines().find(|l| l.contains("name=idle")).expect("the idle client").to_string();
        if line.contains(" qbuf=0 qbuf-free=0 ") && line.contains(" rbs=0 ") {
            let me = list.lines().find(|l| l.contains("cmd=client|list")).expect("the asking client");
            assert!(!me.contains(" rbs=0 "), "{me}");
            break;
        }
        assert!(Instant::now() < deadline, "idle client still reports a buffer: {line}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connection whose requests follow each other keeps its read buffer
/// between them (CLIENT LIST shows its room, as Redis keeps a client's query
/// buffer), and gives it back once it has waited 2 s, as Redis's cron trims
/// an idle client's buffer.
#[test]
fn a_busy_connection_keeps_its_read_buffer_until_it_idles() {
    let server = common::moonshard(&[]);
    let mut busy = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    busy.write_all(b"CLIENT SETNAME busy\r\n").unwrap();
    reply(&mut busy, b"+OK\r\n");
    for _ in 0..5 {
        busy.write_all(b"PING\r\n").unwrap();
        reply(&mut busy, b"+PONG\r\n");
    }
    let mut c = server.client();
    let line = |c: &mut redis::Connection| {
        q(c, "CLIENT LIST").lines().find(|l| l.contains("name=busy")).expect("the busy client").to_string()
    };
    let kept = line(&mut c);
    assert!(!kept.contains(" qbuf-free=0 ") && !kept.contains(" rbs=0 "), "the buffer was given back: {kept}");
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let now = line(&mut c);
        if now.contains(" qbuf=0 qbuf-free=0 ") && now.contains(" rbs=0 ") {
            break;
        }
        assert!(Instant::now() < deadline, "an idle connection kept its buffer: {now}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // It is served as before.
    busy.write_all(b"PING\r\n").unwrap();
    reply(&mut busy, b"+PONG\r\n");
}
