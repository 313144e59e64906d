//! Server commands: INFO, COMMAND, CONFIG, CLUSTER, DBSIZE, FLUSH*, TIME,
//! SAVE/BGSAVE/LASTSAVE, SHUTDOWN and signals.
mod common;

use redis::Value;
use std::time::{Duration, Instant};

fn text(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::SimpleString(s) => s,
        Value::VerbatimString { text, .. } => text,
        other => panic!("not text: {other:?}"),
    }
}

fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':'))).map(|v| v.trim_end().to_string())
}

#[test]
fn errors_and_fixed_replies_match_redis() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else {
        return;
    };
    let cases: &[&[&str]] = &[
        &["CLUSTER", "INFO"],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "HELP"],
        &["CLUSTER", "foo"],
        &["CLUSTER"],
        &["CLUSTER", "KEYSLOT"],
        &["COMMAND", "GETKEYS", "foo", "a"],
        &["COMMAND", "GETKEYS", "ping", "a"],
        &["COMMAND", "GETKEYS", "get", "a", "b"],
        &["COMMAND", "GETKEYS", "set", "a"],
        &["COMMAND", "GETKEYS", "set", "a", "b"],
        &["COMMAND", "GETKEYS", "eval", "x", "0"],
        &["COMMAND", "GETKEYS", "eval", "x", "2", "a", "b", "c"],
        &["COMMAND", "GETKEYS", "eval", "x", "5", "a"],
        &["COMMAND", "GETKEYS", "config", "get"],
        &["COMMAND", "GETKEYS", "del", "a", "b", "c"],
        &["COMMAND", "GETKEYS"],
        &["COMMAND", "LIST", "FILTERBY", "foo", "bar"],
        &["COMMAND", "LIST", "x"],
        &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"],
        &["COMMAND", "LIST", "FILTERBY", "MODULE", "x"],
        &["COMMAND", "DOCS", "nosuch"],
        &["COMMAND", "INFO", "nosuch"],
        &["COMMAND", "foo"],
        &["COMMAND", "COUNT", "x"],
        &["FLUSHALL", "foo"],
        &["FLUSHDB", "a", "b"],
        &["SET", "k", "v"],
        &["FLUSHALL", "ASYNC"],
        &["DBSIZE"],
        &["SET", "k", "v"],
        &["FLUSHDB", "SYNC"],
        &["DBSIZE"],
        &["BGSAVE", "foo"],
        &["SAVE"],
        &["SAVE", "x"],
        &["SHUTDOWN", "ABORT"],
        &["SHUTDOWN", "foo"],
        &["SHUTDOWN", "NOSAVE", "ABORT"],
        &["LASTSAVE", "x"],
        &["TIME", "x"],
        &["DBSIZE", "x"],
        &["INFO", "nosuchsection"],
    ];
    for c in cases {
        let _ = d.check(c);
    }
    // Fields that are ours and Redis's alike, for the commands this family owns.
    for name in [
        "ping",
        "echo",
        "quit",
        "hello",
        "auth",
        "select",
        "reset",
        "client",
        "client|list",
        "client|kill",
        "client|reply",
        "info",
        "command",
        "command|docs",
        "config",
        "config|get",
        "config|set",
        "cluster",
        "cluster|keyslot",
        "dbsize",
        "flushdb",
        "flushall",
        "time",
        "shutdown",
        "lastsave",
        "get",
        "set",
        "del",
        "mset",
    ] {
        let (ours, theirs) = d.both(&["COMMAND", "INFO", name]);
        let head = |v: Result<Value, String>| match v {
            Ok(Value::Array(mut entries)) => match entries.remove(0) {
                Value::Array(fields) => fields.into_iter().take(8).collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(head(ours), head(theirs), "COMMAND INFO {name}");
    }
}

#[test]
fn info_sections_and_keyspace_across_shards() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else {
        return;
    };
    for i in 0..100 {
        let _ = d.check(&["SET", &format!("key{i}"), "v"]);
    }
    // Keys with a TTL count as `expires` (only once EXPIRE exists on this build).
    for i in 0..10 {
        let args = ["EXPIRE", &format!("key{i}"), "1000"];
        if common::run_str(&mut d.a, &args).is_ok() {
            common::run_str(&mut d.b, &args).unwrap();
        }
    }
    let _ = d.check(&["SELECT", "2"]);
    for i in 0..5 {
        let _ = d.check(&["SET", &format!("other{i}"), "v"]);
    }
    let _ = d.check(&["SELECT", "0"]);
    let (ours, theirs) = d.both(&["INFO", "keyspace"]);
    let strip = |s: String| s.lines().map(|l| l.split(",avg_ttl").next().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(strip(text(ours.unwrap())), strip(text(theirs.unwrap())));

    let info = text(common::run_str(&mut d.a, &["INFO"]).unwrap());
    let headers: Vec<&str> = info.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headers,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    assert!(info.contains("\r\n\r\n# Clients\r\n"), "sections are separated by a blank line");
    assert_eq!(info_field(&info, "redis_version").as_deref(), Some("7.0.15"));
    assert_eq!(info_field(&info, "redis_mode").as_deref(), Some("standalone"));
    assert_eq!(info_field(&info, "tcp_port"), Some(d.ours.port.to_string()));
    assert_eq!(info_field(&info, "role").as_deref(), Some("master"));
    assert_eq!(info_field(&info, "connected_slaves").as_deref(), Some("0"));
    assert_eq!(info_field(&info, "cluster_enabled").as_deref(), Some("0"));
    assert_eq!(info_field(&info, "loading").as_deref(), Some("0"));
    assert_eq!(info_field(&info, "maxmemory_policy").as_deref(), Some("noeviction"));
    assert_eq!(info_field(&info, "maxmemory").as_deref(), Some("0"));
    assert!(info_field(&info, "moonshard_version").is_some());
    assert!(info_field(&info, "used_memory").unwrap().parse::<u64>().unwrap() > 0);
    assert!(info_field(&info, "connected_clients").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(info_field(&info, "process_id").unwrap().parse::<u32>().is_ok());

    let some = text(common::run_str(&mut d.a, &["INFO", "cluster", "SERVER"]).unwrap());
    let headers: Vec<&str> = some.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(headers, ["# Server", "# Cluster"]);
    let all = text(common::run_str(&mut d.a, &["INFO", "all"]).unwrap());
    assert!(all.contains("# Commandstats"));
}

#[test]
fn commandstats_and_errorstats() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut c = s.client();
    common::run_str(&mut c, &["CONFIG", "RESETSTAT"]).unwrap();
    common::run_str(&mut c, &["SET", "a", "1"]).unwrap();
    common::run_str(&mut c, &["GET", "a"]).unwrap();
    common::run_str(&mut c, &["GET", "a"]).unwrap();
    common::run_str(&mut c, &["CONFIG", "GET", "hz"]).unwrap();
    let _ = common::run_str(&mut c, &["CONFIG", "SET", "hz", "x"]);
    let _ = common::run_str(&mut c, &["NOSUCHCMD"]);
    let _ = common::run_str(&mut c, &["HELLO", "9"]);
    let info = text(common::run_str(&mut c, &["INFO", "commandstats", "errorstats"]).unwrap());
    let get = info_field(&info, "cmdstat_get").unwrap();
    assert!(get.starts_with("calls=2,usec="), "{get}");
    assert!(get.ends_with(",rejected_calls=0,failed_calls=0"), "{get}");
    assert!(info_field(&info, "cmdstat_config|get").unwrap().starts_with("calls=1,"));
    assert!(info_field(&info, "cmdstat_config|set").unwrap().ends_with("failed_calls=1"));
    assert_eq!(info_field(&info, "errorstat_ERR").as_deref(), Some("count=2"));
    assert_eq!(info_field(&info, "errorstat_NOPROTO").as_deref(), Some("count=1"));
    common::run_str(&mut c, &["CONFIG", "RESETSTAT"]).unwrap();
    let info = text(common::run_str(&mut c, &["INFO", "commandstats"]).unwrap());
    assert!(info_field(&info, "cmdstat_get").is_none());
}

#[test]
fn command_introspection() {
    let s = common::moonshard(&[]);
    let mut c = s.client();
    let count = match common::run_str(&mut c, &["COMMAND", "COUNT"]).unwrap() {
        Value::Int(n) => n,
        other => panic!("{other:?}"),
    };
    let all = match common::run_str(&mut c, &["COMMAND"]).unwrap() {
        Value::Array(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(all.len() as i64, count);
    let list = match common::run_str(&mut c, &["COMMAND", "LIST"]).unwrap() {
        Value::Array(v) => v.into_iter().map(text).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert!(list.contains(&"config|get".to_string()) && list.contains(&"get".to_string()));
    let pattern = match common::run_str(&mut c, &["COMMAND", "LIST", "FILTERBY", "PATTERN", "client|*"]).unwrap() {
        Value::Array(v) => v.into_iter().map(text).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert!(pattern.iter().all(|n| n.starts_with("client|")) && pattern.contains(&"client|kill".to_string()));
    let conn = match common::run_str(&mut c, &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection"]).unwrap() {
        Value::Array(v) => v.into_iter().map(text).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert!(conn.contains(&"ping".to_string()) && !conn.contains(&"get".to_string()));
    assert_eq!(
        common::run_str(&mut c, &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]),
        Ok(Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::BulkString(b"b".to_vec())]))
    );
    // COMMAND DOCS: a map of name -> docs with summary, since and group.
    let docs = common::run_str(&mut c, &["COMMAND", "DOCS", "get", "config"]).unwrap();
    let Value::Array(items) = docs else { panic!("{docs:?}") };
    assert_eq!(items.len(), 4);
    assert_eq!(text(items[0].clone()), "get");
    let Value::Array(fields) = &items[1] else { panic!() };
    let pairs: Vec<String> = fields.iter().map(|v| format!("{v:?}")).collect();
    assert!(pairs.iter().any(|p| p.contains("summary")) && pairs.iter().any(|p| p.contains("1.0.0")));
}

#[test]
fn redis_cli_uses_command_docs() {
    let s = common::moonshard(&[]);
    let Some(out) = s.cli(&["COMMAND", "DOCS", "set"]) else {
        return;
    };
    assert!(out.contains("summary") && out.contains("group") && out.contains("string"), "{out}");
    let out = s.cli(&["PING"]).unwrap();
    assert_eq!(out.trim(), "PONG");
    // Commands piped on stdin, as in scripted redis-cli use.
    let mut child = std::process::Command::new("redis-cli")
        .args(["-p", &s.port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SET x 1\nGET x\nINFO keyspace\nCLIENT SETNAME cli\nCLIENT GETNAME\n")
        .unwrap();
    let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert!(out.starts_with("OK\n1\n# Keyspace\r\n"), "{out}");
    assert!(out.contains("db0:keys=1,expires=0,avg_ttl=0"), "{out}");
    assert!(out.ends_with("OK\ncli\n"), "{out}");
}

#[test]
fn time_save_lastsave() {
    let s = common::moonshard(&[]);
    let mut c = s.client();
    let Value::Array(t) = common::run_str(&mut c, &["TIME"]).unwrap() else { panic!() };
    let secs: u64 = text(t[0].clone()).parse().unwrap();
    let micros: u64 = text(t[1].clone()).parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(secs.abs_diff(now) < 60 && micros < 1_000_000);
    let Value::Int(before) = common::run_str(&mut c, &["LASTSAVE"]).unwrap() else { panic!() };
    assert!((before as u64).abs_diff(now) < 60);
    assert_eq!(common::run_str(&mut c, &["SAVE"]), Ok(Value::Okay));
    assert_eq!(common::run_str(&mut c, &["BGSAVE"]), Ok(Value::SimpleString("Background saving started".into())));
    // A second one while the first runs is refused, SCHEDULE or not (as Redis).
    let again = common::run_str(&mut c, &["BGSAVE", "SCHEDULE"]);
    assert!(
        again == Err("ERR Background save already in progress".into())
            || again == Ok(Value::SimpleString("Background saving started".into())),
        "{again:?}"
    );
    while common::field_of(&mut c, "persistence", "rdb_bgsave_in_progress") != "0" {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let Value::Int(after) = common::run_str(&mut c, &["LASTSAVE"]).unwrap() else { panic!() };
    assert!(after >= before);
}

#[test]
fn dbsize_and_flush_across_shards() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    for i in 0..200 {
        common::run_str(&mut c, &["SET", &format!("k{i}"), "v"]).unwrap();
    }
    common::run_str(&mut c, &["SELECT", "1"]).unwrap();
    common::run_str(&mut c, &["SET", "x", "v"]).unwrap();
    assert_eq!(common::run_str(&mut c, &["DBSIZE"]), Ok(Value::Int(1)));
    common::run_str(&mut c, &["FLUSHDB"]).unwrap();
    assert_eq!(common::run_str(&mut c, &["DBSIZE"]), Ok(Value::Int(0)));
    common::run_str(&mut c, &["SELECT", "0"]).unwrap();
    assert_eq!(common::run_str(&mut c, &["DBSIZE"]), Ok(Value::Int(200)));
    assert_eq!(common::run_str(&mut c, &["FLUSHALL", "ASYNC"]), Ok(Value::Okay));
    assert_eq!(common::run_str(&mut c, &["DBSIZE"]), Ok(Value::Int(0)));
    assert_eq!(common::run_str(&mut c, &["GET", "k1"]), Ok(Value::Nil));
}

fn wait_exit(p: &mut common::Proc) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn shutdown_exits_cleanly() {
    for args in [&["SHUTDOWN"][..], &["SHUTDOWN", "NOSAVE"], &["SHUTDOWN", "SAVE", "NOW", "FORCE"]] {
        let mut s = common::moonshard(&["--shards", "2"]);
        let mut other = s.client();
        let mut c = s.client();
        assert!(common::run_str(&mut c, args).is_err(), "SHUTDOWN closes the connection without a reply");
        assert!(wait_exit(&mut s).success());
        assert!(common::run_str(&mut other, &["PING"]).is_err());
    }
}

#[test]
fn signals_exit_cleanly() {
    for signal in ["TERM", "INT"] {
        let mut s = common::moonshard(&[]);
        let mut c = s.client();
        common::run_str(&mut c, &["SET", "a", "1"]).unwrap();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &s.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = wait_exit(&mut s);
        assert_eq!(exit.code(), Some(0), "SIG{signal}");
    }
}

/// CLUSTER KEYSLOT answers as a Redis Cluster node does (a standalone Redis
/// refuses it, but slots are moonshard's routing unit, so users need it).
#[test]
fn cluster_keyslot_matches_redis_cluster() {
    let s = common::moonshard(&["--shards", "3"]);
    let mut c = s.client();
    // Values from Redis Cluster's documentation and CRC16 test vectors.
    for (key, slot) in
        [("somekey", 11058), ("foo{hash_tag}", 2515), ("bar{hash_tag}", 2515), ("foo", 12182), ("{}x", 10595)]
    {
        let got: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut c).unwrap();
        assert_eq!(got, slot, "slot of {key}");
    }
    let same: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg("{user1000}.following").query(&mut c).unwrap();
    let tag: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg("user1000").query(&mut c).unwrap();
    assert_eq!(same, tag);
}

/// `logfile`: the log lines go to the file (opened per line, so a rotated
/// file is followed), scripts' `redis.log` lines among them at their level;
/// a file that cannot be opened stops the start-up with Redis's text and
/// exit status (compared with redis-server's).
#[test]
fn logfile_receives_the_log() {
    let dir = common::temp_dir("logfile");
    let log = dir.join("moonshard.log");
    let port = common::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .args(["--port", &port.to_string(), "--save", "", "--dir"])
        .arg(&dir)
        .arg("--logfile")
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start moonshard");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    common::wait_until(20, "the ready line in the log file", || read(&log).contains("Ready to accept connections"));
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
    let mut c = client.get_connection().expect("connect");
    let eval = |c: &mut redis::Connection, level: &str, text: &str| {
        let script = format!("redis.log(redis.{level}, '{text}') return 1");
        common::run_str(c, &["EVAL", &script, "0"]).expect("EVAL");
    };
    eval(&mut c, "LOG_WARNING", "a warning from a script");
    eval(&mut c, "LOG_DEBUG", "a debug line from a script");
    // Rotated away: the next line starts a new file.
    std::fs::rename(&log, dir.join("moonshard.log.1")).expect("rotate");
    eval(&mut c, "LOG_NOTICE", "after the rotation");
    common::wait_until(10, "the script's lines", || read(&log).contains("after the rotation"));
    let old = read(&dir.join("moonshard.log.1"));
    assert!(
        old.lines().any(|l| l.contains(" # a warning from a script") && l.contains(":M ")),
        "a warning line in Redis's format: {old}"
    );
    assert!(!old.contains("a debug line"), "below loglevel notice: not logged");
    let _ = child.kill();
    let _ = child.wait();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout).expect("stdout");
    assert!(!stdout.contains("Ready to accept"), "nothing on standard output with a log file: {stdout}");

    // A log file that cannot be opened.
    let missing = dir.join("no-such-dir").join("x.log");
    let missing = missing.to_str().expect("utf-8 path");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .args(["--port", "0", "--save", "", "--logfile", missing])
        .output()
        .expect("run moonshard");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Can't open the log file: No such file or directory"), "{text}");
    if common::has_program("redis-server") {
        let theirs = std::process::Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--logfile", missing])
            .output()
            .expect("run redis-server");
        assert_eq!(theirs.status.code(), Some(1));
        let said = format!("{}{}", String::from_utf8_lossy(&theirs.stdout), String::from_utf8_lossy(&theirs.stderr));
        assert!(said.contains("Can't open the log file: No such file or directory"), "{said}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
