//! Configuration: flags, config file, CONFIG GET/SET/REWRITE, maxclients.
mod common;

use redis::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn pairs(v: Value) -> BTreeMap<String, String> {
    let text = |v: Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    match v {
        Value::Array(items) => {
            let mut it = items.into_iter();
            let mut out = BTreeMap::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.insert(text(k), text(v));
            }
            out
        }
        Value::Map(items) => items.into_iter().map(|(k, v)| (text(k), text(v))).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_redis_parameter_is_known_with_its_default() {
    let Some(mut d) = common::Diff::start(&[]) else {
        return;
    };
    let ours = pairs(common::run_str(&mut d.a, &["CONFIG", "GET", "*"]).unwrap());
    let theirs = pairs(common::run_str(&mut d.b, &["CONFIG", "GET", "*"]).unwrap());
    // Values that depend on how each process was started, or where moonshard's meaning differs.
    let differ =
        ["port", "dir", "bind", "pidfile", "daemonize", "io-threads", "loglevel", "save", "appendonly", "logfile"];
    for (name, value) in &theirs {
        let Some(mine) = ours.get(name) else { panic!("CONFIG GET * lacks {name}") };
        if !differ.contains(&name.as_str()) {
            assert_eq!(mine, value, "default of {name}");
        }
    }
    assert_eq!(ours.get("save").map(String::as_str), Some(""));
    assert_eq!(ours.get("appendonly").map(String::as_str), Some("no"));
    assert!(ours.contains_key("shards"), "moonshard's own parameters are listed too");
}

#[test]
fn config_get_and_set_match_redis() {
    let Some(mut d) = common::Diff::start(&[]) else {
        return;
    };
    let cases: &[&[&str]] = &[
        &["CONFIG", "SET", "foo", "bar"],
        &["CONFIG", "SET", "daemonize", "no"],
        &["CONFIG", "SET", "maxmemory", "abc"],
        &["CONFIG", "SET", "maxmemory", "-1"],
        &["CONFIG", "SET", "maxclients", "abc"],
        &["CONFIG", "SET", "maxclients", "0"],
        &["CONFIG", "SET", "appendfsync", "foo"],
        &["CONFIG", "SET", "loglevel", "foo"],
        &["CONFIG", "SET", "maxmemory-policy", "foo"],
        &["CONFIG", "SET", "hz", "1", "hz", "2"],
        &["CONFIG", "SET", "hz", "10", "foo"],
        &["CONFIG", "SET", "hz", "x", "foo", "bar"],
        &["CONFIG", "SET", "hz", "-1"],
        &["CONFIG", "SET", "activedefrag", "maybe"],
        &["CONFIG", "SET", "dir", "/tmp"],
        &["CONFIG", "SET", "proto-max-bulk-len", "1000"],
        &["CONFIG", "SET", "hz", "20", "maxmemory", "1k"],
        &["CONFIG", "GET", "hz"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "hz", "30", "maxmemory", "x"],
        &["CONFIG", "GET", "hz"],
        &["CONFIG", "SET", "maxmemory", "2mb", "MAXMEMORY-POLICY", "ALLKEYS-LRU"],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CONFIG", "SET", "lua-time-limit", "10", "busy-reply-threshold", "20"],
        &["CONFIG", "GET", "busy-reply-threshold"],
        &["CONFIG", "SET", "appendonly", "NO"],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["CONFIG", "GET", "nonexist"],
        &["CONFIG", "GET"],
        &["CONFIG", "SET", "hz"],
        &["CONFIG", "foo"],
        &["CONFIG"],
        &["CONFIG", "RESETSTAT", "x"],
        &["CONFIG", "REWRITE"],
    ];
    for c in cases {
        let _ = d.check(c);
    }
    // Reply order of CONFIG GET is unspecified in Redis (a hash table): compare as maps.
    for pattern in
        [&["maxmemory*"][..], &["*max-*-entries*"], &["hz", "lua-t*", "HZ"], &["slave*"], &["notify-keyspace-events"]]
    {
        let mut args = vec!["CONFIG", "GET"];
        args.extend_from_slice(pattern);
        let (ours, theirs) = d.both(&args);
        assert_eq!(pairs(ours.unwrap()), pairs(theirs.unwrap()), "{args:?}");
    }
}

#[test]
fn config_get_in_resp3_is_a_map() {
    let s = common::moonshard(&[]);
    let out = s.raw(b"HELLO 3\r\nCONFIG GET maxclients\r\nPING\r\n", Duration::from_millis(300));
    let out = String::from_utf8(out).unwrap();
    assert!(out.ends_with("%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n+PONG\r\n"), "{out}");
}

fn spawn(args: &[&str], port: u16) -> common::Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut p = common::Proc { port, child, dir: None };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(p.alive(), "moonshard exited early");
        assert!(std::time::Instant::now() < deadline, "moonshard did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

#[test]
fn config_file_then_flags_override() {
    let dir = std::env::temp_dir().join(format!("moonshard-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("moonshard.conf");
    let port = common::free_port();
    std::fs::write(
        &file,
        format!(
            "# test config\nport {}\nbind 127.0.0.1\nmaxclients 77\nhz 15\ndatabases 4\nrequirepass \"from file\"\nloglevel warning\nsave 900 1\nsave 300 10\n",
            common::free_port()
        ),
    )
    .unwrap();
    let path = file.to_string_lossy().into_owned();
    let s = spawn(&[&path, "--port", &port.to_string(), "--hz", "25", "--requirepass", "flag pass"], port);
    let mut c = s.client();
    assert_eq!(common::run_str(&mut c, &["PING"]), Err("NOAUTH Authentication required.".into()));
    assert_eq!(
        common::run_str(&mut c, &["AUTH", "from file"]),
        Err("WRONGPASS invalid username-password pair or user is disabled.".into())
    );
    assert_eq!(common::run_str(&mut c, &["AUTH", "flag pass"]), Ok(Value::Okay));
    let get = |c: &mut redis::Connection, name: &str| {
        pairs(common::run_str(c, &["CONFIG", "GET", name]).unwrap()).remove(name).unwrap()
    };
    assert_eq!(get(&mut c, "hz"), "25", "flags override the file");
    assert_eq!(get(&mut c, "maxclients"), "77", "the file applies");
    assert_eq!(get(&mut c, "save"), "900 1 300 10");
    assert_eq!(common::run_str(&mut c, &["SELECT", "4"]), Err("ERR DB index is out of range".into()));
    assert_eq!(common::run_str(&mut c, &["SELECT", "3"]), Ok(Value::Okay));

    // INFO names the file; CONFIG REWRITE writes the running values back.
    let info = match common::run_str(&mut c, &["INFO", "server"]).unwrap() {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(info.contains(&format!("config_file:{}", std::fs::canonicalize(&file).unwrap().display())), "{info}");
    common::run_str(&mut c, &["CONFIG", "SET", "maxclients", "88", "maxmemory", "5mb"]).unwrap();
    assert_eq!(common::run_str(&mut c, &["CONFIG", "REWRITE"]), Ok(Value::Okay));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# test config\n"), "{text}");
    assert!(
        text.contains("maxclients 88\n") && text.contains("hz 25\n") && text.contains("maxmemory 5242880\n"),
        "{text}"
    );
    assert!(text.contains(&format!("port {port}\n")), "{text}");
    assert_eq!(text.matches("save ").count(), 1, "{text}");
    drop(s);

    // The rewritten file starts a server with the same settings.
    let s = spawn(&[&path], port);
    let mut c = s.client();
    common::run_str(&mut c, &["AUTH", "flag pass"]).unwrap();
    assert_eq!(get(&mut c, "maxclients"), "88");
    assert_eq!(get(&mut c, "save"), "900 1 300 10");
    drop(s);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_flags_and_files_fail_to_start() {
    for args in [
        &["--nosuchoption", "1"][..],
        &["--port", "notaport"],
        &["/nonexistent/moonshard.conf"],
        &["--maxclients", "0"],
    ] {
        let status = Command::new(env!("CARGO_BIN_EXE_moonshard"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1), "{args:?}");
    }
}

#[test]
fn maxclients_is_enforced() {
    let s = common::moonshard(&[]);
    let mut control = s.client();
    // Wait until the harness's start-up probe connections are gone, then lower the limit.
    loop {
        let list = match common::run_str(&mut control, &["CLIENT", "LIST"]).unwrap() {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        };
        if list.lines().count() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    common::run_str(&mut control, &["CONFIG", "SET", "maxclients", "3"]).unwrap();
    let mut held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(("127.0.0.1", s.port)).unwrap()).collect();
    // Make sure both are admitted before the fourth arrives.
    for c in held.iter_mut() {
        c.write_all(b"PING\r\n").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 7];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n");
    }
    let mut extra = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = extra.read_to_end(&mut out);
    assert_eq!(out, b"-ERR max number of clients reached\r\n");
    // A slot freed is a slot available again.
    let mut last = held.pop().unwrap();
    last.write_all(b"QUIT\r\n").unwrap();
    let mut sink = Vec::new();
    let _ = last.read_to_end(&mut sink);
    loop {
        let list = match common::run_str(&mut control, &["CLIENT", "LIST"]).unwrap() {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        };
        if list.lines().count() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut again = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    again.write_all(b"PING\r\n").unwrap();
    again.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 7];
    again.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
}

/// `maxmemory-clients` takes a memory value or a percentage of maxmemory,
/// as Redis 7.0's (a redis.conf with `maxmemory-clients 10%` must load):
/// every form and error, reply for reply with redis-server.
#[test]
fn maxmemory_clients_takes_sizes_and_percentages_as_redis() {
    let Some(mut d) = common::Diff::start(&[]) else {
        return;
    };
    for v in ["10%", "0", "5mb", "0%", "-1%", "abc%", "-5", "1.5%", "200%", "100%", "101%", "1gb", "%"] {
        let _ = d.check(&["CONFIG", "SET", "maxmemory-clients", v]);
        let _ = d.check(&["CONFIG", "GET", "maxmemory-clients"]);
    }
    // From the command line (and so from a config file line) too.
    let ms = common::moonshard(&["--maxmemory-clients", "15%"]);
    let mut c = ms.client();
    assert_eq!(common::q(&mut c, "CONFIG GET maxmemory-clients"), "[maxmemory-clients,15%]");
}
