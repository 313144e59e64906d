//! Long string values: stored from the request's own buffer and written from
//! it (no copy per GET), so every read and edit path must still see the same
//! bytes, edits must not leak into replies already queued, and pipelined
//! replies must keep their order around the long ones.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn value(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn cmd(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bulk(b: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", b.len()).into_bytes();
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
    out
}

/// Reads exactly `n` bytes (bounded by a timeout).
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = vec![0u8; n];
    s.read_exact(&mut out).unwrap();
    out
}

#[test]
fn long_values_round_trip_in_pipelines() {
    let ms = moonshard(&[]);
    let mut s = TcpStream::connect(("127.0.0.1", ms.port)).unwrap();
    let sizes = [23, 511, 512, 1024, 16 * 1024 - 1, 16 * 1024, 65536, 1 << 20];
    let mut req = Vec::new();
    let mut want = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        let key = format!("k{i}");
        let v = value(len, i as u8);
        req.extend(cmd(&[b"SET", key.as_bytes(), &v]));
        want.extend_from_slice(b"+OK\r\n");
    }
    // GETs of every size, interleaved with small replies, twice over.
    for _ in 0..2 {
        for (i, &len) in sizes.iter().enumerate() {
            let key = format!("k{i}");
            req.extend(cmd(&[b"GET", key.as_bytes()]));
            want.extend(bulk(&value(len, i as u8)));
            req.extend(cmd(&[b"STRLEN", key.as_bytes()]));
            want.extend(format!(":{len}\r\n").into_bytes());
        }
    }
    let k7: &[u8] = b"k7";
    req.extend(cmd(&[b"MGET", b"k6", k7]));
    want.extend_from_slice(b"*2\r\n");
    want.extend(bulk(&value(65536, 6)));
    want.extend(bulk(&value(1 << 20, 7)));
    s.write_all(&req).unwrap();
    let got = read_n(&mut s, want.len());
    assert!(
        got == want,
        "pipelined replies differ (first difference at byte {:?})",
        got.iter().zip(&want).position(|(a, b)| a != b)
    );
}

#[test]
fn edits_do_not_reach_replies_already_read() {
    let ms = moonshard(&[]);
    let mut s = TcpStream::connect(("127.0.0.1", ms.port)).unwrap();
    let v = value(100_000, 3);
    // GET then edits in the same pipeline: the GET's reply is queued (by
    // reference) before the edits run, and must show the old bytes.
    let mut req = cmd(&[b"SET", b"big", &v]);
    req.extend(cmd(&[b"GET", b"big"]));
    req.extend(cmd(&[b"SETRANGE", b"big", b"0", b"XYZ"]));
    req.extend(cmd(&[b"SETBIT", b"big", b"799999", b"1"]));
    req.extend(cmd(&[b"APPEND", b"big", b"tail"]));
    req.extend(cmd(&[b"GET", b"big"]));
    req.extend(cmd(&[b"GETRANGE", b"big", b"0", b"4"]));
    s.write_all(&req).unwrap();
    let mut edited = v.clone();
    edited[..3].copy_from_slice(b"XYZ");
    edited[99_999] |= 1;
    edited.extend_from_slice(b"tail");
    let mut want = b"+OK\r\n".to_vec();
    want.extend(bulk(&v));
    want.extend(b":100000\r\n");
    let old_bit = v[99_999] & 1;
    want.extend(format!(":{old_bit}\r\n").into_bytes());
    want.extend(b":100004\r\n");
    want.extend(bulk(&edited));
    want.extend(bulk(&edited[..5]));
    let got = read_n(&mut s, want.len());
    assert!(
        got == want,
        "replies differ (first difference at byte {:?})",
        got.iter().zip(&want).position(|(a, b)| a != b)
    );
}

#[test]
fn long_values_survive_copy_rename_and_dump() {
    let ms = moonshard(&[]);
    let mut c = ms.client();
    let v = value(70_000, 9);
    redis::cmd("SET").arg("{t}a").arg(&v).query::<()>(&mut c).unwrap();
    redis::cmd("COPY").arg("{t}a").arg("{t}b").query::<()>(&mut c).unwrap();
    redis::cmd("APPEND").arg("{t}b").arg("!").query::<()>(&mut c).unwrap();
    let a: Vec<u8> = redis::cmd("GET").arg("{t}a").query(&mut c).unwrap();
    assert_eq!(a, v, "an edit of the copy changed the original");
    let dump: Vec<u8> = redis::cmd("DUMP").arg("{t}a").query(&mut c).unwrap();
    redis::cmd("RESTORE").arg("c").arg(0).arg(&dump).query::<()>(&mut c).unwrap();
    let c_val: Vec<u8> = redis::cmd("GET").arg("c").query(&mut c).unwrap();
    assert_eq!(c_val, v);
    redis::cmd("RENAME").arg("{t}a").arg("{t}d").query::<()>(&mut c).unwrap();
    let d: Vec<u8> = redis::cmd("GET").arg("{t}d").query(&mut c).unwrap();
    assert_eq!(d, v);
    // The value and its bookkeeping are counted, not less than the bytes.
    let usage: i64 = redis::cmd("MEMORY").arg("USAGE").arg("{t}d").query(&mut c).unwrap();
    // mimalloc serves 70,000 bytes from its 80 KiB size class.
    assert!((70_000..90_000).contains(&usage), "MEMORY USAGE {usage}");
}

#[test]
fn memory_is_given_back_when_long_values_go() {
    let ms = moonshard(&[]);
    let mut c = ms.client();
    let used = |c: &mut redis::Connection| field_of(c, "memory", "used_memory").parse::<i64>().unwrap();
    let before = used(&mut c);
    let v = value(1 << 20, 1);
    for i in 0..20 {
        redis::cmd("SET").arg(format!("k{i}")).arg(&v).query::<()>(&mut c).unwrap();
        let _: Vec<u8> = redis::cmd("GET").arg(format!("k{i}")).query(&mut c).unwrap();
    }
    let full = used(&mut c);
    // (Give or take the connection's 16 KB read buffer, held at `before`
    // by a connection whose requests follow each other, and not after a big
    // request, whose buffer is freed.)
    assert!(full - before >= (20 << 20) - (16 << 10), "used_memory grew by {} for 20 MB of values", full - before);
    assert!(full - before < 24 << 20, "used_memory grew by {} for 20 MB of values", full - before);
    redis::cmd("FLUSHALL").query::<()>(&mut c).unwrap();
    let after = used(&mut c);
    assert!(after - before < 2 << 20, "used_memory still {} over the start after FLUSHALL", after - before);
}

#[test]
fn resp3_and_differential_replies_match_redis() {
    let Some(mut d) = Diff::start(&[]) else {
        return;
    };
    let v = String::from_utf8(value(40_000, 0).iter().map(|b| b'a' + b % 26).collect()).unwrap();
    let _ = d.check(&["SET", "s", &v]);
    let _ = d.check(&["GET", "s"]);
    let _ = d.check(&["GETEX", "s", "PX", "100000"]);
    let _ = d.check(&["GETSET", "s", &v[..30_000]]);
    let _ = d.check(&["GETDEL", "s"]);
    let _ = d.check(&["MSET", "{t}x", &v, "{t}y", &v[..600]]);
    let _ = d.check(&["MGET", "{t}x", "{t}y", "{t}nope"]);
    let _ = d.check(&["LCS", "{t}x", "{t}y", "LEN"]);
    // (HELLO's reply has the client id, which differs.)
    let (ours, theirs) = d.both(&["HELLO", "3"]);
    assert!(ours.is_ok() && theirs.is_ok());
    let _ = d.check(&["GET", "{t}x"]);
}
