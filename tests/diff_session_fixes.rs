//! Request-path differences from Redis 7.0 found by the fuzzer, each
//! checked against a real redis-server: replies pipelined ahead of a blocking
//! command, an EXEC refused for its arity, and frames Redis waits on.

mod common;
mod raw_resp;

use raw_resp::{start_pair, Both};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends raw bytes and returns what arrives within `wait`.
fn send(port: u16, bytes: &[u8], wait: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(bytes).unwrap();
    std::thread::sleep(wait);
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn replies_before_a_blocking_command_are_sent_before_it_blocks() {
    let Some(pair) = start_pair(&[]) else { return };
    // WAIT with no replica blocks too (fuzzer run 8: an error reply before it was withheld).
    for block in ["BLPOP q 0", "BZPOPMIN z 0", "XREAD BLOCK 0 STREAMS s $", "BLMOVE {t}a {t}b LEFT LEFT 0", "WAIT 1 0"]
    {
        let input = format!("PING\r\nSET k v\r\n{block}\r\n");
        let got: Vec<Vec<u8>> =
            pair.ports.iter().map(|&p| send(p, input.as_bytes(), Duration::from_millis(150))).collect();
        assert_eq!(got[1], b"+PONG\r\n+OK\r\n", "redis-server, {block}");
        assert_eq!(got[0], got[1], "moonshard withheld replies before {block}");
    }
}

#[test]
fn exec_refused_for_arity_aborts_the_transaction() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    b.lines(&["MULTI", "SET k v", "EXEC x", "GET k", "EXEC"]);
    b.lines(&["MULTI", "SET k v", "DISCARD x", "EXEC"]);
    b.lines(&["MULTI", "MULTI x", "EXEC", "MULTI", "WATCH", "EXEC"]);
    // Outside MULTI too: EXECABORT, and the watched keys are released (the
    // connection's own SET would otherwise make the next EXEC fail).
    b.lines(&["EXEC x", "WATCH k", "EXEC x y", "SET k 2", "MULTI", "GET k", "EXEC"]);
}

/// SCAN's cursor is checked when the command runs, before its options: an
/// invalid one inside MULTI is queued and fails in EXEC, as in Redis.
#[test]
fn scan_cursor_is_checked_when_scan_runs() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    b.lines(&["SCAN a", "SCAN a COUNT x", "SCAN 0 COUNT x", "SCAN -1"]);
    b.lines(&["MULTI", "SCAN a", "SCAN 0 COUNT 0", "SSCAN k a", "EXEC"]);
}

/// HELLO queued in MULTI: each reply of the EXEC array is written in the
/// protocol in force once its command ran (before the HELLO: the old one;
/// the HELLO's own reply and later ones: the new one).
#[test]
fn exec_replies_follow_a_queued_hello() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    // Client ids differ between the servers: mask the value after `id`.
    let mask = |r: String| {
        let mut out = String::new();
        let mut rest = r.as_str();
        while let Some(i) = rest.find("$2\r\nid\r\n:") {
            let start = i + "$2\r\nid\r\n:".len();
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            rest = &rest[rest.find('\r').unwrap_or(0)..];
            out.push('#');
        }
        out + rest
    };
    b.check(&["HSET", "h", "f", "v"]);
    let cases: &[&[&str]] = &[
        &["MULTI", "HGETALL h", "HELLO 3", "HGETALL h", "EXEC"],
        &["MULTI", "HGETALL h", "HELLO 2", "HGETALL h", "EXEC"],
        &["MULTI", "HELLO 3", "HELLO 2", "EXEC"],
        &["MULTI", "HELLO 2", "HELLO 3", "ZPOPMIN missing 1", "EXEC", "HELLO 2"],
    ];
    for case in cases {
        for line in *case {
            let args: Vec<&str> = line.split(' ').collect();
            let ours = mask(b.c[0].call(&args));
            let theirs = mask(b.c[1].call(&args));
            assert_eq!(ours, theirs, "{case:?}: {line}");
        }
    }
}

#[test]
fn incomplete_frames_wait_and_whole_long_inline_lines_run() {
    let Some(pair) = start_pair(&[]) else { return };
    let cases: &[&[u8]] = &[b"*92\r\n3", b"*1\r\n*1\r", b"*2\r\n$3\r\nGET\r\n$1", b"*1\r\n$4\r\nPING\r\n*1\r\n*1\r\n"];
    for &case in cases {
        let got: Vec<Vec<u8>> = pair.ports.iter().map(|&p| send(p, case, Duration::from_millis(100))).collect();
        assert_eq!(got[0], got[1], "{:?}", String::from_utf8_lossy(case));
    }
    let long = format!("ECHO {}\r\n", "x".repeat(70_000));
    let got: Vec<Vec<u8>> = pair.ports.iter().map(|&p| send(p, long.as_bytes(), Duration::from_millis(200))).collect();
    assert!(got[1].starts_with(b"$70000\r\n"), "redis-server runs a whole 70 KB inline line");
    assert_eq!(got[0], got[1]);
}

/// A blocked client that hangs up (closes its sending side) is gone, with
/// whatever it pipelined behind the blocking command, whether that came in
/// the same packet or later: Redis frees it, so the command behind never
/// runs and the element pushed next is not taken. The connection ends with
/// a FIN, not a reset. (moonshard ran the pipelined SET, and did not notice
/// a hang-up behind input it had not read yet.)
#[test]
fn a_blocked_client_that_hangs_up_takes_its_pipeline_with_it() {
    let Some(pair) = start_pair(&[]) else { return };
    let blpop = raw_resp::encode(&["BLPOP", "hl", "0"]);
    let set = raw_resp::encode(&["SET", "hf", "1"]);
    for together in [true, false] {
        let got: Vec<String> = pair
            .ports
            .iter()
            .map(|&port| {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                if together {
                    s.write_all(&[blpop.clone(), set.clone()].concat()).unwrap();
                } else {
                    s.write_all(&blpop).unwrap();
                    std::thread::sleep(Duration::from_millis(100));
                    s.write_all(&set).unwrap();
                }
                std::thread::sleep(Duration::from_millis(100));
                s.shutdown(std::net::Shutdown::Write).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 64];
                let end = match s.read(&mut buf) {
                    Ok(0) => "closed".to_string(),
                    Ok(n) => format!("replied {:?}", String::from_utf8_lossy(&buf[..n])),
                    Err(e) => format!("failed: {:?}", e.kind()),
                };
                let mut c = raw_resp::Raw::connect(port);
                let after = [c.call(&["LPUSH", "hl", "x"]), c.call(&["GET", "hf"]), c.call(&["LPOP", "hl"])];
                format!("{end}; {}", after.concat())
            })
            .collect();
        assert_eq!(got[1], "closed; :1\r\n$-1\r\n$1\r\nx\r\n", "redis-server, together: {together}");
        assert_eq!(got[0], got[1], "together: {together}");
    }
}

/// A command pipelined behind a blocking one, in a later packet, runs once
/// the blocking command is served (the wait for a hang-up behind that input
/// must leave it readable).
#[test]
fn a_request_behind_a_blocked_command_runs_once_it_is_served() {
    let Some(pair) = start_pair(&[]) else { return };
    let got: Vec<String> = pair
        .ports
        .iter()
        .map(|&port| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(&raw_resp::encode(&["BLPOP", "pl", "0"])).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            s.write_all(&raw_resp::encode(&["PING"])).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let mut c = raw_resp::Raw::connect(port);
            assert_eq!(c.call(&["LPUSH", "pl", "x"]), ":1\r\n");
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut out = Vec::new();
            let mut buf = [0u8; 256];
            let want = b"*2\r\n$2\r\npl\r\n$1\r\nx\r\n+PONG\r\n".len();
            while out.len() < want {
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        })
        .collect();
    assert_eq!(got[1], "*2\r\n$2\r\npl\r\n$1\r\nx\r\n+PONG\r\n", "redis-server");
    assert_eq!(got[0], got[1]);
}
