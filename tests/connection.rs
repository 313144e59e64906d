//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, RESET, CLIENT.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn exchange(port: u16, input: &[u8]) -> Vec<u8> {
    common::exchange(port, input, Duration::from_millis(300))
}

fn text(v: redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::SimpleString(s) => s,
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("not text: {other:?}"),
    }
}

#[test]
fn replies_and_errors_match_redis() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else {
        return;
    };
    let cases: &[&[&str]] = &[
        &["PING"],
        &["PING", "hello"],
        &["PING", "a", "b"],
        &["ECHO", "x y"],
        &["ECHO"],
        &["HELLO", "4"],
        &["HELLO", "1"],
        &["HELLO", "abc"],
        &["HELLO", "3", "auth", "a"],
        &["HELLO", "2", "setname"],
        &["HELLO", "2", "foo"],
        &["HELLO", "2", "auth", "other", "x"],
        &["HELLO", "2", "setname", "a b"],
        &["AUTH", "x"],
        &["AUTH", "a", "b"],
        &["AUTH", "default", "anything"],
        &["AUTH", "a", "b", "c"],
        &["SELECT", "100"],
        &["SELECT", "abc"],
        &["SELECT", "-1"],
        &["SELECT", "15"],
        &["SELECT", "0"],
        &["CLIENT", "SETNAME", "a b"],
        &["CLIENT", "SETNAME", "a\nb"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", "conn-1"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", ""],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "KILL", "1.2.3.4:5"],
        &["CLIENT", "KILL", "ID", "999"],
        &["CLIENT", "KILL", "ID", "abc"],
        &["CLIENT", "KILL", "ID", "0"],
        &["CLIENT", "KILL", "foo", "bar"],
        &["CLIENT", "KILL", "ID", "1", "SKIPME", "maybe"],
        &["CLIENT", "KILL", "ID", "1", "SKIPME"],
        &["CLIENT", "KILL", "USER", "nobody"],
        &["CLIENT", "KILL", "LADDR", "1.1.1.1:1"],
        &["CLIENT", "KILL", "ADDR", "1.1.1.1:1", "TYPE", "normal"],
        &["CLIENT", "KILL", "TYPE", "foo"],
        &["CLIENT", "KILL", "TYPE", "master"],
        &["CLIENT", "LIST", "TYPE", "foo"],
        &["CLIENT", "LIST", "TYPE", "replica"],
        &["CLIENT", "LIST", "ID", "abc"],
        &["CLIENT", "LIST", "ID", "0", "99999"],
        &["CLIENT", "LIST", "foo"],
        &["CLIENT", "REPLY", "foo"],
        &["CLIENT", "NO-EVICT", "maybe"],
        &["CLIENT", "NO-EVICT", "on"],
        &["CLIENT", "NO-EVICT", "off"],
        &["CLIENT", "foo"],
        &["CLIENT"],
        &["CLIENT", "ID", "x"],
        &["CLIENT", "SETNAME"],
    ];
    for c in cases {
        let _ = d.check(c);
    }
}

#[test]
fn hello_switches_protocol() {
    let s = common::moonshard(&[]);
    let out = String::from_utf8(exchange(s.port, b"HELLO 3 SETNAME app\r\nGET nokey\r\nCLIENT GETNAME\r\nHELLO\r\n"))
        .unwrap();
    assert!(
        out.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"),
        "{out}"
    );
    assert!(out.contains("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n_\r\n$3\r\napp\r\n%7"), "{out}");
    // HELLO with no version keeps RESP3.
    assert!(out.ends_with("$7\r\nmodules\r\n*0\r\n"), "{out}");
    assert_eq!(out.matches(":3\r\n").count(), 2, "{out}");
}

#[test]
fn auth_flow_matches_redis() {
    let Some(mut d) = common::Diff::start(&[]) else {
        return;
    };
    let _ = d.check(&["CONFIG", "SET", "requirepass", "secret"]);
    let script: &[u8] = b"PING\r\nGET k\r\nAUTH wrong\r\nAUTH default wrong\r\nAUTH other secret\r\nHELLO 3\r\nHELLO 2 SETNAME x\r\n\
        HELLO 2 AUTH default wrong\r\nCLIENT GETNAME\r\nAUTH secret\r\nPING\r\nRESET\r\nPING\r\nHELLO 2 AUTH default secret SETNAME n\r\nCLIENT GETNAME\r\nRESET\r\nAUTH default secret\r\nPING\r\nQUIT\r\n";
    let mask = |v: Vec<u8>| {
        let s = String::from_utf8_lossy(&v).into_owned();
        // HELLO's id differs; cut it out.
        s.split("$2\r\nid\r\n")
            .map(|part| part.split_once("\r\n").map(|(_, r)| r).unwrap_or(part).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(mask(exchange(d.ours.port, script)), mask(exchange(d.theirs.port, script)));
    let _ = d.check(&["CONFIG", "SET", "requirepass", ""]);
}

#[test]
fn requirepass_flag_requires_auth() {
    let s = common::moonshard(&["--requirepass", "pw"]);
    let out = String::from_utf8(exchange(s.port, b"PING\r\nAUTH pw\r\nPING\r\n")).unwrap();
    assert_eq!(out, "-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n");
}

#[test]
fn select_and_reset_match_redis() {
    let Some(d) = common::Diff::start(&["--shards", "3"]) else {
        return;
    };
    let script: &[u8] = b"SELECT 2\r\nSET k v2\r\nSELECT 0\r\nGET k\r\nSELECT 2\r\nGET k\r\nCLIENT SETNAME n\r\nRESET\r\nGET k\r\nCLIENT GETNAME\r\n\
        CLIENT REPLY OFF\r\nRESET\r\nPING\r\n";
    assert_eq!(exchange(d.ours.port, script), exchange(d.theirs.port, script));
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|f| f.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[test]
fn client_list_info_and_setinfo() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut a = s.client();
    let mut b = s.client();
    common::run_str(&mut a, &["CLIENT", "SETNAME", "alpha"]).unwrap();
    common::run_str(&mut a, &["CLIENT", "SETINFO", "LIB-NAME", "mylib"]).unwrap();
    common::run_str(&mut a, &["CLIENT", "SETINFO", "lib-ver", "1.2"]).unwrap();
    assert_eq!(
        common::run_str(&mut a, &["CLIENT", "SETINFO", "lib-name", "a b"]),
        Err("ERR lib-name cannot contain spaces, newlines or special characters.".into())
    );
    assert_eq!(
        common::run_str(&mut a, &["CLIENT", "SETINFO", "foo", "x"]),
        Err("ERR Unrecognized option 'foo'".into())
    );
    common::run_str(&mut a, &["SELECT", "3"]).unwrap();
    let id_a = match common::run_str(&mut a, &["CLIENT", "ID"]).unwrap() {
        redis::Value::Int(i) => i,
        other => panic!("{other:?}"),
    };
    let info = text(common::run_str(&mut a, &["CLIENT", "INFO"]).unwrap());
    assert!(info.ends_with('\n'));
    let info = info.trim_end();
    let names: Vec<&str> = info.trim_end().split(' ').map(|f| f.split('=').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "id",
            "addr",
            "laddr",
            "fd",
            "name",
            "age",
            "idle",
            "flags",
            "db",
            "sub",
            "psub",
            "ssub",
            "multi",
            "qbuf",
            "qbuf-free",
            "argv-mem",
            "multi-mem",
            "rbs",
            "rbp",
            "obl",
            "oll",
            "omem",
            "tot-mem",
            "events",
            "cmd",
            "user",
            "redir",
            "resp",
            "lib-name",
            "lib-ver"
        ]
    );
    assert_eq!(field(info, "id"), id_a.to_string());
    assert_eq!(field(info, "name"), "alpha");
    assert_eq!(field(info, "db"), "3");
    assert_eq!(field(info, "cmd"), "client|info");
    assert_eq!(field(info, "flags"), "N");
    assert_eq!(field(info, "multi"), "-1");
    assert_eq!(field(info, "lib-name"), "mylib");
    assert_eq!(field(info, "lib-ver"), "1.2");
    assert_eq!(field(info, "laddr"), format!("127.0.0.1:{}", s.port));

    let list = text(common::run_str(&mut b, &["CLIENT", "LIST"]).unwrap());
    assert_eq!(list.lines().count(), 2, "{list}");
    let ids: Vec<i64> = list.lines().map(|l| field(l, "id").parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered by id: {list}");
    let only = text(common::run_str(&mut b, &["CLIENT", "LIST", "ID", &id_a.to_string()]).unwrap());
    assert_eq!(only.lines().count(), 1);
    assert_eq!(field(only.lines().next().unwrap(), "name"), "alpha");
    let normal = text(common::run_str(&mut b, &["CLIENT", "LIST", "TYPE", "normal"]).unwrap());
    assert_eq!(normal.lines().count(), 2);
}

#[test]
fn client_kill_forms() {
    let s = common::moonshard(&[]);
    let mut me = s.client();
    let mut victim = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    victim.write_all(b"CLIENT ID\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = victim.read(&mut buf).unwrap();
    let id: String = String::from_utf8_lossy(&buf[1..n]).trim().to_string();
    // The new form never kills the caller unless SKIPME NO.
    let my_id = match common::run_str(&mut me, &["CLIENT", "ID"]).unwrap() {
        redis::Value::Int(i) => i.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(common::run_str(&mut me, &["CLIENT", "KILL", "ID", &my_id]), Ok(redis::Value::Int(0)));
    assert_eq!(common::run_str(&mut me, &["CLIENT", "KILL", "ID", &id]), Ok(redis::Value::Int(1)));
    victim.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(victim.read(&mut buf).unwrap_or(0), 0, "killed connection must be closed");

    // Old form by address.
    let mut other = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let addr = other.local_addr().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(common::run_str(&mut me, &["CLIENT", "KILL", &addr]), Ok(redis::Value::Okay));
    other.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(other.read(&mut buf).unwrap_or(0), 0);
    assert_eq!(common::run_str(&mut me, &["CLIENT", "KILL", &addr]), Err("ERR No such client".into()));

    // SKIPME NO with a filter matching only the caller: it replies, then closes.
    let mut last = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    last.write_all(b"CLIENT KILL USER default SKIPME no\r\n").unwrap();
    last.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = last.read_to_end(&mut out);
    assert!(out.starts_with(b":"), "{:?}", String::from_utf8_lossy(&out));
    // That killed `me` too.
    assert!(common::run_str(&mut me, &["PING"]).is_err());
}

#[test]
fn client_reply_modes() {
    let s = common::moonshard(&[]);
    let out = exchange(s.port, b"CLIENT REPLY OFF\r\nSET a 1\r\nCLIENT REPLY SKIP\r\nCLIENT REPLY ON\r\nGET a\r\nCLIENT REPLY SKIP\r\nGET a\r\nPING\r\n");
    assert_eq!(String::from_utf8(out).unwrap(), "+OK\r\n$1\r\n1\r\n+PONG\r\n");
}
