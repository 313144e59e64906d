//! RESP parsing and framing: protocol errors, inline commands, RESP3
//! encodings, pipelines across shards, and hostile input.
mod common;

use rand::{Rng, SeedableRng};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends `input` on a fresh connection; returns what came back and whether
/// the server closed the connection (rather than going quiet).
fn exchange(port: u16, input: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(input).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(150))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

const INPUTS: &[&[u8]] = &[
    b"*1\r\n+x\r\n",
    b"*x\r\n",
    b"*1\r\n$-2\r\n",
    b"*1\r\n$x\r\n",
    b"set \"a\r\n",
    b"set 'a'b\r\n",
    b"PING \"a\"b\r\n",
    b"*-1\r\nPING\r\n",
    b"*0\r\nPING\r\n",
    b"\r\nPING\r\n",
    b"   \r\n",
    b"*1\r\n$4\r\nPINGxx",
    b"*3000000000\r\n",
    b"*1\r\n$600000000\r\n",
    b"PING\nPING\n",
    b"*1\r\n$4\r\nPING\r\n*1\r\n:1\r\nPING\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$0\r\n\r\n",
    b"*1\r\n$+1\r\nx\r\n",
    b"*+1\r\n$1\r\nx\r\n",
    b"*01\r\n$4\r\nPING\r\n",
    b"*1 \r\n$4\r\nPING\r\n",
    b"*1\r\n$ 4\r\nPING\r\n",
    b"ECHO \"\\x41\\n\\t\"\r\n",
    b"ECHO 'it\\'s'\r\n",
    b"set k \"a b\"\r\nget k\r\nGET k\r\n",
    b"client reply off\r\nping\r\nclient reply on\r\nping\r\n",
    b"client reply skip\r\nping\r\nping\r\n",
    b"client reply off\r\nclient reply skip\r\nping\r\nclient reply on\r\n",
    b"quit\r\nping\r\n",
    b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n",
    b"hello 3\r\nping\r\nget nokey\r\nconfig get hz\r\nhello 2\r\nget nokey\r\n",
    b"hello 3\r\necho x\r\nexists nokey\r\ntime x\r\n",
];

#[test]
fn raw_protocol_matches_redis() {
    let Some(theirs) = common::redis_server() else {
        return;
    };
    let ours = common::moonshard(&["--shards", "4"]);
    for input in INPUTS {
        let a = exchange(ours.port, input);
        let b = exchange(theirs.port, input);
        // HELLO's reply carries the connection id, which differs.
        let mask = |v: &[u8]| {
            let mut s = String::from_utf8_lossy(v).into_owned();
            let mut from = 0;
            while let Some(i) = s[from..].find("$2\r\nid\r\n:").map(|i| i + from) {
                let end = s[i + 9..].find("\r\n").map(|e| i + 9 + e).unwrap_or(s.len());
                s.replace_range(i + 9..end, "#");
                from = i + 9;
            }
            s
        };
        assert_eq!(
            (mask(&a.0), a.1),
            (mask(&b.0), b.1),
            "reply or close differs for {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn proto_max_bulk_len_and_unauthenticated_limits() {
    let Some(mut d) = common::Diff::start(&[]) else {
        return;
    };
    let _ = d.check(&["CONFIG", "SET", "proto-max-bulk-len", "1000"]);
    let _ = d.check(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]);
    for input in [&b"*2\r\n$4\r\nECHO\r\n$1048577\r\n"[..], b"*2\r\n$4\r\nECHO\r\n$1048576\r\n"] {
        let a = exchange(d.ours.port, input);
        let b = exchange(d.theirs.port, input);
        assert_eq!(a, b, "{:?}", String::from_utf8_lossy(input));
    }
    let _ = d.check(&["CONFIG", "SET", "proto-max-bulk-len", "512mb"]);
    let _ = d.check(&["CONFIG", "SET", "requirepass", "pw"]);
    for input in [&b"*11\r\n"[..], b"*1\r\n$16385\r\n", b"*1\r\n$16384\r\n", b"*10\r\n"] {
        let a = exchange(d.ours.port, input);
        let b = exchange(d.theirs.port, input);
        assert_eq!(a, b, "{:?}", String::from_utf8_lossy(input));
    }
    let _ = d.check(&["CONFIG", "SET", "requirepass", ""]);
}

/// Reads `n` complete RESP2 replies of the simple kinds (+, -, :, $).
fn read_replies(s: &mut TcpStream, n: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(replies) = split_replies(&buf, n) {
            return replies;
        }
        let got = s.read(&mut chunk).unwrap();
        assert!(got > 0, "server closed the connection early");
        buf.extend_from_slice(&chunk[..got]);
    }
}

fn split_replies(buf: &[u8], n: usize) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while out.len() < n {
        let line_end = buf[i..].windows(2).position(|w| w == b"\r\n")? + i;
        let line = std::str::from_utf8(&buf[i..line_end]).unwrap();
        if let Some(len) = line.strip_prefix('$') {
            let len: i64 = len.parse().unwrap();
            if len < 0 {
                out.push("(nil)".to_string());
                i = line_end + 2;
                continue;
            }
            let start = line_end + 2;
            let end = start + len as usize;
            if buf.len() < end + 2 {
                return None;
            }
            out.push(String::from_utf8_lossy(&buf[start..end]).into_owned());
            i = end + 2;
        } else {
            out.push(line.to_string());
            i = line_end + 2;
        }
    }
    Some(out)
}

#[test]
fn pipeline_across_shards_keeps_order() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let (k, v) = (format!("key:{i}"), format!("value-{i}"));
        req.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len()).as_bytes());
        expected.push("+OK".to_string());
        // Read back an earlier key so consecutive commands hit different shards.
        let back = format!("key:{}", i / 2);
        req.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{back}\r\n", back.len()).as_bytes());
        expected.push(format!("value-{}", i / 2));
    }
    req.extend_from_slice(b"*1\r\n$6\r\nDBSIZE\r\n");
    expected.push(":1000".to_string());
    c.write_all(&req).unwrap();
    assert_eq!(read_replies(&mut c, expected.len()), expected);
}

#[test]
fn client_vanishing_mid_pipeline_harms_nobody() {
    let s = common::moonshard(&["--shards", "4"]);
    for round in 0..20 {
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let mut req = Vec::new();
        for i in 0..2000 {
            req.extend_from_slice(format!("SET k{round}:{i} {}\r\n", "x".repeat(100)).as_bytes());
        }
        // Cut the last request in half, then vanish without reading anything.
        req.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc");
        let _ = c.write_all(&req);
        drop(c);
    }
    let mut con = s.client();
    assert_eq!(common::run_str(&mut con, &["SET", "alive", "1"]), Ok(redis::Value::Okay));
    assert_eq!(common::run_str(&mut con, &["GET", "alive"]), Ok(redis::Value::BulkString(b"1".to_vec())));
}

#[test]
fn random_garbage_never_kills_the_server() {
    let mut s = common::moonshard(&["--shards", "2"]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let alphabet: &[u8] = b"*$+-:\r\n0123456789-\"' \\xPINGSETGET";
    for _ in 0..200 {
        let len = rng.gen_range(1..300);
        let input: Vec<u8> = (0..len)
            .map(|_| if rng.gen_bool(0.8) { alphabet[rng.gen_range(0..alphabet.len())] } else { rng.gen() })
            .collect();
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", s.port)) {
            let _ = c.write_all(&input);
            let _ = c.set_read_timeout(Some(Duration::from_millis(20)));
            let mut sink = [0u8; 4096];
            let _ = c.read(&mut sink);
        }
    }
    assert!(s.alive(), "moonshard died on random input");
    let mut con = s.client();
    assert_eq!(common::run_str(&mut con, &["PING"]), Ok(redis::Value::SimpleString("PONG".into())));
}
