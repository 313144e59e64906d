//! The Lua debugger (SCRIPT DEBUG, `redis-cli --ldb`) against a real
//! redis-server 7.0: whole debugging sessions spoken in raw RESP and
//! compared byte for byte, redis-cli's own transcripts through a pipe, the
//! errors around the session, and what moonshard promises on top (other
//! clients keep being served, YES rolls back, SYNC keeps, a vanished
//! client does not leave its shard held).
//!
//! moonshard runs with one shard for the transcripts: a keyless script
//! whose debugger session names keys of several shards gets the cluster
//! keyspace's non-local-key error, as on a Redis Cluster node.

mod common;
mod raw_resp;

use raw_resp::Raw;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One debugging conversation: `setup` commands (one reply each), then the
/// debugger's commands until the session ends (its last lines, the EVAL
/// reply and the close) or the list runs out.
fn session(port: u16, setup: &[&[&str]], cmds: &[&[&str]]) -> String {
    let mut c = Raw::connect(port);
    c.set_timeout(Duration::from_secs(10));
    let mut out = String::new();
    for s in setup {
        let r = c.call(s);
        // HELLO's reply names the connection id, which differs.
        if !s[0].eq_ignore_ascii_case("hello") {
            out.push_str(&r);
        }
    }
    for cmd in cmds {
        c.send(cmd);
        let r = c.reply();
        assert!(!r.is_empty(), "no answer to {cmd:?} after:\n{out}");
        out.push_str(&r);
        if r.starts_with('*') && r.ends_with("+<endsession>\r\n") {
            out.push_str(&c.reply());
            out.push_str(if c.drain_to_eof(Duration::from_secs(5)) { "<closed>" } else { "<open>" });
            return normalize(&out);
        }
    }
    normalize(&out)
}

/// Addresses of Lua objects (`"function@0x..."`) differ between servers.
fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("@0x") {
        out.push_str(&rest[..i + 1]);
        let tail = &rest[i + 3..];
        let end = tail.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(tail.len());
        out.push_str("PTR");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn pair() -> Option<(common::Proc, common::Proc)> {
    let theirs = common::redis_server()?;
    let ours = common::moonshard(&["--shards", "1"]);
    Some((ours, theirs))
}

#[track_caller]
fn same(ours: &common::Proc, theirs: &common::Proc, setup: &[&[&str]], cmds: &[&[&str]]) -> String {
    let a = session(ours.port, setup, cmds);
    let b = session(theirs.port, setup, cmds);
    assert_eq!(a, b, "debugging sessions differ (moonshard first) for {cmds:?}");
    a
}

const SYNC: &[&str] = &["SCRIPT", "DEBUG", "SYNC"];
const YES: &[&str] = &["SCRIPT", "DEBUG", "YES"];

#[test]
fn sessions_match_redis() {
    let Some((ours, theirs)) = pair() else { return };
    let t = std::time::Instant::now();
    // Arguments refused before the script runs, and a compile error: the
    // session ends at once.
    same(&ours, &theirs, &[YES], &[&["EVAL", "return 1 +", "0"]]);
    same(&ours, &theirs, &[SYNC], &[&["EVAL", "return 1", "x"]]);
    same(&ours, &theirs, &[SYNC], &[&["EVAL", "return 1", "-1"]]);
    // Stepping over redis.call, with its log lines.
    let t1 =
        same(&ours, &theirs, &[SYNC], &[&["EVAL", "local x = 1\nreturn redis.call('ping')\n\n", "0"], &["s"], &["s"]]);
    assert!(t1.contains("+<redis> ping\r\n+<reply> \"+PONG\"\r\n+<endsession>\r\n+PONG\r\n<closed>"), "{t1}");
    // The inspection commands, maxlen, eval, redis, abort.
    same(
        &ours,
        &theirs,
        &[SYNC],
        &[
            &["EVAL", "local x = 1\nlocal y = {x, \"a\\r\\nb\"}\nreturn x", "0"],
            &["r", "set", "k", "v"],
            &["r", "nocmd"],
            &["r", "get"],
            &["redis"],
            &["e", "x"],
            &["s"],
            &["s"],
            &["p"],
            &["print", "y"],
            &["print", "a", "b"],
            &["e", "error('zz')"],
            &["e", "1 +"],
            &["e", "x = 5"],
            &["eval"],
            &["e", "{1,", "2}"],
            &["m", "5"],
            &["e", "string.rep('a', 100)"],
            &["r", "get", "k"],
            &["m", "0"],
            &["m"],
            &["zzz"],
            &["HELP"],
            &["a"],
        ],
    );
    // Errors of redis.pcall / redis.call are logged while stepping.
    same(
        &ours,
        &theirs,
        &[SYNC],
        &[
            &["EVAL", "redis.pcall('nocmd')\nredis.pcall('get','a','b')\nlocal r = redis.call('get', 'x')\nredis.pcall()\nreturn redis.pcall('set','a','b','c','d','e','f','g','h','i','j','k','l')", "0"],
            &["s"],
            &["s"],
            &["s"],
            &["s"],
            &["s"],
        ],
    );
    // Breakpoints, list, whole, trace, locals of a function, values of
    // every type (YES: the forked / scratch session).
    same(
        &ours,
        &theirs,
        &[YES],
        &[
            &[
                "EVAL",
                "local function f(a, b)\n  local t = {a, {b, {c = true}}, f, 2.5, 1e20}\n  redis.breakpoint()\n  return t\nend\nlocal r = f(1, 'x')\nredis.debug('d', r, nil, false)\nreturn r",
                "0",
            ],
            &["c"],
            &["t"],
            &["p"],
            &["p", "t"],
            &["p", "nope"],
            &["p", "KEYS"],
            &["s"],
            &["s"],
            &["t"],
            &["b"],
            &["b", "8", "3", "99", "-1", "-8", "x", "0", "8"],
            &["b"],
            &["l"],
            &["l", "1", "1"],
            &["l", "0", "x"],
            &["l", "-1"],
            &["w"],
            &["c"],
        ],
    );
    // A long table (the trimming hint once), for-loop locals, break points.
    same(
        &ours,
        &theirs,
        &[SYNC],
        &[
            &["EVAL", "local a = {}\nfor i=1,300 do a[i]=i end\nreturn #a", "0"],
            &["s"],
            &["s"],
            &["p"],
            &["p", "a"],
            &["p", "a"],
            &["m", "100"],
            &["b", "2", "3"],
            &["c"],
            &["b", "0"],
            &["c"],
        ],
    );
    // RESP3 replies in the log (redis.setresp(3)), from a RESP3 client.
    same(
        &ours,
        &theirs,
        &[&["HELLO", "3", "SETNAME", "x"], SYNC],
        &[
            &[
                "EVAL",
                "redis.setresp(3)\nlocal a = redis.call('hgetall', KEYS[1])\nlocal b = redis.call('smembers', KEYS[1]..'s')\nreturn redis.call('incrbyfloat', KEYS[1]..':f', '1.5')",
                "1",
                "h",
            ],
            &["r", "hset", "h", "a", "1"],
            &["r", "sadd", "hs", "m"],
            &["s"],
            &["s"],
            &["s"],
            &["s"],
        ],
    );
    // The infinite-loop stop, with a short busy-reply-threshold.
    same(
        &ours,
        &theirs,
        &[&["CONFIG", "SET", "busy-reply-threshold", "200"], SYNC],
        &[&["EVAL", "local i = 0\nwhile true do\n  i = i + 1\nend", "0"], &["c"], &["a"]],
    );
    for p in [&ours, &theirs] {
        Raw::connect(p.port).call(&["CONFIG", "SET", "busy-reply-threshold", "5000"]);
    }
    // The protocol limits of the debugger's reader end the script.
    let long = "x".repeat(1025);
    same(&ours, &theirs, &[SYNC], &[&["EVAL", "return 1", "0"], &["p", &long]]);
    assert!(t.elapsed() < Duration::from_secs(60));
}

#[test]
fn errors_around_sessions_match_redis() {
    let Some(mut d) = common::Diff::start(&["--shards", "2"]) else { return };
    for c in [
        &["SCRIPT", "DEBUG"][..],
        &["SCRIPT", "DEBUG", "yes", "no"],
        &["SCRIPT", "DEBUG", "maybe"],
        &["EVAL", "return {redis.breakpoint(), redis.debug('x')}", "0"],
        &["EVAL", "return redis.call('script', 'debug', 'yes')", "0"],
        &["EVAL", "return redis.pcall('script', 'debug', 'no')", "0"],
        &["SCRIPT", "DEBUG", "yes"],
        &["EVALSHA", "0000000000000000000000000000000000000000", "0"],
        &["EVALSHA_RO", "0000000000000000000000000000000000000000", "0"],
        &["EVALSHA", "abc", "0"],
        &["SCRIPT", "DEBUG", "NO"],
        &["EVAL", "return 1", "0"],
        &["MULTI"],
        &["SCRIPT", "DEBUG", "YES"],
        &["EXEC"],
        &["EVAL", "return 2", "0"],
    ] {
        d.check(c).ok();
    }
    // SCRIPT DEBUG is listed with Redis's flags and arity.
    d.check(&["COMMAND", "INFO", "SCRIPT|DEBUG"]).ok();
    // In a pipeline (replies pending) SCRIPT DEBUG is refused.
    let pipelined = b"*1\r\n$4\r\nPING\r\n*3\r\n$6\r\nSCRIPT\r\n$5\r\nDEBUG\r\n$3\r\nYES\r\n*3\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n0\r\n";
    let ours = d.ours.raw(pipelined, Duration::from_millis(300));
    let theirs = d.theirs.raw(pipelined, Duration::from_millis(300));
    assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
    assert!(String::from_utf8_lossy(&ours).contains("outside a pipeline"));
}

/// redis-cli --ldb / --ldb-sync-mode, driven through a pipe.
fn cli(port: u16, flags: &[&str], file: &std::path::Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(flags)
        .arg("--eval")
        .arg(file)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start redis-cli");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("redis-cli output");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    normalize(&s)
}

#[test]
fn redis_cli_ldb_transcripts_match() {
    if !common::has_program("redis-cli") {
        eprintln!("*** SKIPPED: redis-cli not on PATH ***");
        return;
    }
    let Some((ours, theirs)) = pair() else { return };
    let dir = common::temp_dir("ldb-cli");
    let script = dir.join("s.lua");
    std::fs::write(
        &script,
        "local a = redis.call('set', KEYS[1], ARGV[1])\nlocal t = {1,2,'x', k=5}\nredis.debug('hello', t, 3.5)\nredis.breakpoint()\nlocal b = redis.call('get', KEYS[1])\nreturn {a, b}\n",
    )
    .unwrap();
    let bad = dir.join("bad.lua");
    std::fs::write(&bad, "return 1 +\n").unwrap();
    let full = "s\nhelp\nn\np\np t\np KEYS\np nope\nl\nl 1 1\nw\nb 5\nb\nb -5\nb x\nt\ne 1+1\ne error(\"z\")\nr get foo\nr\nm\nm 10\nm 0\nc\nc\n";
    let mut transcripts = Vec::new();
    for p in [&ours, &theirs] {
        let mut t = String::new();
        // YES: the session's SET is rolled back.
        t.push_str(&cli(p.port, &["--ldb"], &script, &["foo", ",", "bar"], full));
        t.push_str(&p.cli(&["GET", "foo"]).unwrap_or_default());
        // SYNC: kept.
        t.push_str(&cli(p.port, &["--ldb-sync-mode"], &script, &["foo", ",", "baz"], "c\nc\n"));
        t.push_str(&p.cli(&["GET", "foo"]).unwrap_or_default());
        // Abort in SYNC mode keeps what ran before.
        t.push_str(&cli(p.port, &["--ldb-sync-mode"], &script, &["foo", ",", "qq"], "s\na\n"));
        t.push_str(&p.cli(&["GET", "foo"]).unwrap_or_default());
        // The client leaves mid-session (stdin ends): the script finishes.
        t.push_str(&cli(p.port, &["--ldb"], &script, &["foo", ",", "gone"], "s\n"));
        t.push_str(&cli(p.port, &["--ldb"], &bad, &[], "c\n"));
        transcripts.push(t);
    }
    assert_eq!(transcripts[0], transcripts[1], "redis-cli transcripts differ (moonshard first)");
    assert!(transcripts[0].contains("(Lua debugging session ended -- dataset changes rolled back)"));
    assert!(transcripts[0].contains("\"baz\""), "{}", transcripts[0]);
    let _ = std::fs::remove_dir_all(dir);
}

/// Reads replies until `want` shows up or `limit` passes.
fn wait_for(c: &mut Raw, want: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = String::new();
    while Instant::now() < deadline {
        let r = c.reply();
        seen.push_str(&r);
        if seen.contains(want) {
            break;
        }
    }
    seen
}

#[test]
fn sessions_leave_other_clients_served() {
    // Two shards and as few I/O threads as allowed: a session waiting for
    // its human must not hold a worker thread.
    let ours = common::moonshard(&["--shards", "2", "--io-threads", "1"]);
    let keys = common::keys_on_different_shards("k", 2, 2);
    let (k0, k1) = (keys[0].as_str(), keys[1].as_str());
    let mut other = Raw::connect(ours.port);
    other.set_timeout(Duration::from_secs(3));
    assert_eq!(other.call(&["SET", k0, "before"]), "+OK\r\n");

    // YES: the session writes its scratch copy; others see the real value,
    // and the session sees its own write.
    let mut dbg = Raw::connect(ours.port);
    dbg.set_timeout(Duration::from_secs(5));
    assert_eq!(dbg.call(YES), "+OK\r\n");
    let first =
        dbg.call(&["EVAL", "redis.call('set', KEYS[1], 'session')\nreturn redis.call('get', KEYS[1])", "1", k0]);
    assert!(first.contains("Stopped at 1"), "{first}");
    assert!(dbg.call(&["s"]).contains("<reply> \"+OK\""));
    assert_eq!(other.call(&["GET", k0]), "$6\r\nbefore\r\n");
    assert_eq!(other.call(&["SET", k1, "x"]), "+OK\r\n");
    assert_eq!(other.call(&["PING"]), "+PONG\r\n");
    let r = dbg.call(&["r", "get", k0]);
    assert!(r.contains("<reply> \"session\""), "{r}");
    dbg.send(&["c"]);
    let end = wait_for(&mut dbg, "$7\r\nsession\r\n", Duration::from_secs(5));
    assert!(end.contains("+<endsession>\r\n$7\r\nsession\r\n"), "{end}");
    assert!(dbg.drain_to_eof(Duration::from_secs(5)), "the connection closes after a session");
    assert_eq!(other.call(&["GET", k0]), "$6\r\nbefore\r\n", "YES mode rolls back");

    // SYNC: the session's shard waits (BUSY past the threshold), the other
    // shard is served; changes are kept.
    assert_eq!(other.call(&["CONFIG", "SET", "busy-reply-threshold", "300"]), "+OK\r\n");
    let mut dbg = Raw::connect(ours.port);
    dbg.set_timeout(Duration::from_secs(5));
    assert_eq!(dbg.call(SYNC), "+OK\r\n");
    let first = dbg.call(&["EVAL", "redis.call('set', KEYS[1], 'sync')\nreturn 1", "1", k0]);
    assert!(first.contains("Stopped at 1"), "{first}");
    assert_eq!(other.call(&["GET", k1]), "$1\r\nx\r\n");
    let busy = other.call(&["GET", k0]);
    assert!(busy.starts_with("-BUSY"), "{busy}");
    // The client vanishes: the script runs to its end and the shard is free.
    drop(dbg);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = other.call(&["GET", k0]);
        if r == "$4\r\nsync\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "the shard stayed held: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(other.call(&["CONFIG", "SET", "busy-reply-threshold", "5000"]), "+OK\r\n");

    // YES mode copies undeclared keys on first use, from the real data.
    let mut dbg = Raw::connect(ours.port);
    dbg.set_timeout(Duration::from_secs(5));
    assert_eq!(dbg.call(YES), "+OK\r\n");
    let script =
        "local v = redis.call('get', KEYS[1])\nredis.call('del', KEYS[1])\nreturn {v, redis.call('exists', KEYS[1])}";
    dbg.call(&["EVAL", script, "1", k0]);
    dbg.send(&["c"]);
    let end = wait_for(&mut dbg, "<endsession>", Duration::from_secs(5));
    let tail = dbg.reply();
    assert_eq!(tail, "*2\r\n$4\r\nsync\r\n:0\r\n", "{end}");
    assert_eq!(other.call(&["GET", k0]), "$4\r\nsync\r\n");
}

#[test]
fn shutdown_ends_a_waiting_session() {
    let mut ours = common::moonshard(&["--shards", "2"]);
    let mut dbg = Raw::connect(ours.port);
    assert_eq!(dbg.call(SYNC), "+OK\r\n");
    let first = dbg.call(&["EVAL", "redis.call('set', KEYS[1], 'v')\nreturn 1", "1", "k"]);
    assert!(first.contains("Stopped at 1"), "{first}");
    let mut other = Raw::connect(ours.port);
    other.send(&["SHUTDOWN", "NOSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ours.alive() {
        assert!(Instant::now() < deadline, "a session waiting for its client held the server at shutdown");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn standalone_sessions_reach_every_shard() {
    // In the standalone keyspace a debugged script reaches keys of any
    // shard: YES on its scratch copy (rolled back), SYNC on the real data.
    let ours = common::moonshard(&["--shards", "2", "--keyspace-mode", "standalone"]);
    let keys = common::keys_on_different_shards("s", 2, 2);
    let script =
        "redis.call('set', ARGV[1], '1')\nredis.call('set', ARGV[2], '2')\nreturn redis.call('mget', ARGV[1], ARGV[2])";
    let mut other = Raw::connect(ours.port);
    for (mode, after) in [(YES, "*2\r\n$-1\r\n$-1\r\n"), (SYNC, "*2\r\n$1\r\n1\r\n$1\r\n2\r\n")] {
        let t = session(ours.port, &[mode], &[&["EVAL", script, "0", &keys[0], &keys[1]], &["c"]]);
        assert!(t.ends_with("+<endsession>\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n<closed>"), "{t}");
        assert_eq!(other.call(&["MGET", &keys[0], &keys[1]]), after);
    }
}

/// One connection: SCRIPT DEBUG `mode`, then each batch written at once;
/// after a batch, reads until `until` has arrived (or the connection
/// closes), and at the end until the connection closes. Everything the
/// server wrote after SCRIPT DEBUG's `+OK`, as text.
/// A batch of commands written at once, and the text to wait for after it.
type Batch<'a> = (&'a [&'a [&'a str]], &'a str);

fn pipelined(port: u16, mode: &[&str], batches: &[Batch]) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut got = Vec::new();
    let read_until = |s: &mut std::net::TcpStream, got: &mut Vec<u8>, until: &str| {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline && (until.is_empty() || !String::from_utf8_lossy(got).contains(until)) {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        false
    };
    s.write_all(&raw_resp::encode(mode)).unwrap();
    read_until(&mut s, &mut got, "+OK\r\n");
    assert_eq!(got, b"+OK\r\n");
    got.clear();
    for (batch, until) in batches {
        let bytes: Vec<u8> = batch.iter().flat_map(|c| raw_resp::encode(c)).collect();
        s.write_all(&bytes).unwrap();
        if read_until(&mut s, &mut got, until) {
            break;
        }
    }
    // The session ends with the connection: read to the close.
    read_until(&mut s, &mut got, "");
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn pipelines_around_sessions_match_redis() {
    // Fuzzer run 7: Redis's debugger writes to the socket around the
    // client's output buffer (replies pipelined before the EVAL follow
    // `<endsession>`), reads only the socket (commands that came with the
    // EVAL are dropped), and EVALSHA stays refused inside EXEC.
    let Some((ours, theirs)) = pair() else { return };
    let cases: &[(&[&str], &[Batch])] = &[
        (YES, &[(&[&["HVALS", "", ""], &["EVAL_RO", "", ""]], "")]),
        (
            SYNC,
            &[
                (&[&["PING"], &["SET", "a", "b"], &["EVAL", "return 1", "0"], &["PING"]], "return 1\r\n"),
                (&[&["s"]], ""),
            ],
        ),
        (
            YES,
            &[
                (&[&["PING"], &["EVAL", "return 2", "0"]], "return 2\r\n"),
                (&[&["PING"], &["PING"]], "arguments.\r\n"),
                (&[&["c"]], ""),
            ],
        ),
        (
            SYNC,
            &[(
                &[
                    &["MULTI"],
                    &["EVALSHA", "0000000000000000000000000000000000000000", "0"],
                    &["EVALSHA_RO", "0000000000000000000000000000000000000000", "0"],
                    &["EVALSHA", "00", "0"],
                    &["EXEC"],
                    &["QUIT"],
                ],
                "",
            )],
        ),
    ];
    for (mode, batches) in cases {
        let a = pipelined(ours.port, mode, batches);
        let b = pipelined(theirs.port, mode, batches);
        assert!(a.ends_with("\r\n"), "{a}");
        if let (Some(first), Some(last)) = (b.find('\0'), b.rfind('\0')) {
            // redis-server 7.0.15 now and then writes NUL bytes in place of a
            // reply queued before a debugging session ended (its bug, seen in
            // a CI run): the rest must match around them.
            assert!(!a.contains('\0'), "{a:?}");
            assert!(
                a.starts_with(&b[..first]) && a.ends_with(&b[last + 1..]),
                "moonshard first, for {mode:?} {batches:?}:\n{a:?}\n{b:?}"
            );
            continue;
        }
        assert_eq!(a, b, "moonshard first, for {mode:?} {batches:?}");
    }
}
