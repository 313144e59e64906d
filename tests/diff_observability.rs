//! SLOWLOG, MONITOR, LATENCY, CLIENT PAUSE / UNPAUSE / UNBLOCK and CLIENT
//! LIST flags against a real redis-server 7.0: the same commands, the same
//! replies (times and addresses normalized where they must differ).

mod common;
mod raw_resp;

use raw_resp::{start_pair, Both, Raw};
use std::time::{Duration, Instant};

/// A reply with the parts that differ between two servers by nature
/// (timestamps, durations, client addresses, ids) replaced by placeholders.
fn normalize_slowlog(reply: &str) -> String {
    // Entries are: *6 :id :time :usec *args... $addr $name
    let mut out = Vec::new();
    let lines: Vec<&str> = reply.split("\r\n").collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l == "*6" && i + 3 < lines.len() && lines[i + 1].starts_with(':') {
            out.push("*6".to_string());
            out.push(":ID".into());
            out.push(":TIME".into());
            out.push(":USEC".into());
            i += 4;
            continue;
        }
        if l.starts_with("127.0.0.1:") {
            out.push("ADDR".into());
        } else if l.starts_with('$') && lines.get(i + 1).is_some_and(|n| n.starts_with("127.0.0.1:")) {
            out.push("$N".into());
        } else {
            out.push(l.to_string());
        }
        i += 1;
    }
    out.join("\r\n")
}

#[test]
fn slowlog_entries_truncate_and_redact_as_redis() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    b.lines(&["CONFIG SET slowlog-log-slower-than 0", "SLOWLOG RESET", "CLIENT SETNAME watcher"]);
    // 40 arguments: 31 kept, then "... (9 more arguments)".
    let many: Vec<String> = (0..38).map(|i| format!("f{i}")).collect();
    let mut args = vec!["HSET", "h"];
    args.extend(many.iter().map(|s| s.as_str()));
    b.check(&args);
    let long = "x".repeat(200);
    b.check(&["SET", "long", &long]);
    b.check(&["AUTH", "secret"]);
    b.check(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    let ours = normalize_slowlog(&b.c[0].call(&["SLOWLOG", "GET", "-1"]));
    let theirs = normalize_slowlog(&b.c[1].call(&["SLOWLOG", "GET", "-1"]));
    assert_eq!(ours, theirs);
    assert!(ours.contains("... (9 more arguments)") && ours.contains("... (72 more bytes)"), "{ours}");
    assert!(ours.contains("(redacted)") && !ours.contains("secret"), "{ours}");
    assert!(ours.contains("watcher"), "client name in entries: {ours}");
    b.lines(&["SLOWLOG LEN", "SLOWLOG GET 0", "SLOWLOG GET 1 2", "SLOWLOG GET -2", "SLOWLOG GET x", "SLOWLOG NOPE"]);
    b.lines(&["SLOWLOG RESET", "SLOWLOG LEN", "CONFIG SET slowlog-max-len 1", "CONFIG SET slowlog-log-slower-than 0"]);
    b.lines(&["PING", "PING", "CONFIG SET slowlog-log-slower-than -1", "SLOWLOG LEN"]);
}

/// MONITOR lines without their timestamp and client address.
fn monitor_lines(m: &mut Raw, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let line = m.reply();
            // +1700000000.123456 [0 127.0.0.1:5555] "set" "k" "v"
            let rest = line.split_once(' ').map(|(_, r)| r).unwrap_or(&line);
            let (db_addr, cmd) = rest.split_once("] ").unwrap_or((rest, ""));
            let db = db_addr.trim_start_matches('[').split(' ').next().unwrap_or("");
            let from = if db_addr.ends_with("lua") { "lua" } else { "client" };
            format!("[{db} {from}] {}", cmd.trim_end())
        })
        .collect()
}

#[test]
fn monitor_shows_commands_scripts_and_transactions_as_redis() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut mon = [Raw::connect(pair.ports[0]), Raw::connect(pair.ports[1])];
    for m in mon.iter_mut() {
        assert_eq!(m.call(&["MONITOR"]), "+OK\r\n");
    }
    let mut b = Both::new(&pair);
    b.check(&["SET", "k", "a \"quoted\"\n\u{1}value"]);
    b.check(&["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]);
    b.check(&["AUTH", "nopass"]);
    b.check(&["SELECT", "3"]);
    b.check(&["MULTI"]);
    b.check(&["INCR", "n"]);
    b.check(&["EXEC"]);
    b.check(&["CONFIG", "GET", "maxclients"]); // admin: never shown
    b.check(&["PING"]);
    let ours = monitor_lines(&mut mon[0], 8);
    let theirs = monitor_lines(&mut mon[1], 8);
    assert_eq!(ours, theirs);
    assert!(ours[0].contains(r#""a \"quoted\"\n\x01value""#), "{ours:?}");
    assert!(ours.iter().any(|l| l.starts_with("[0 lua]")), "{ours:?}");
    assert!(ours.iter().any(|l| l.contains("(redacted)")), "{ours:?}");
    assert!(!ours.iter().any(|l| l.contains("\"config\"")), "{ours:?}");
    // The monitor's CLIENT LIST flag.
    let list = b.c[0].call(&["CLIENT", "LIST"]);
    assert!(list.contains("flags=O"), "{list}");
}

/// A blocking command is shown when it blocks, as Redis shows it (Redis
/// 7.0 feeds monitors once a command returns, and a blocked one returns at
/// once): not again when it is served or times out, and not at all to a
/// monitor that started after it blocked. (moonshard showed it when served,
/// after the command that served it, and to monitors newer than it.)
#[test]
fn monitor_shows_a_blocking_command_when_it_blocks() {
    let Some(pair) = start_pair(&[]) else { return };
    let got: Vec<Vec<String>> = pair
        .ports
        .iter()
        .map(|&port| {
            // Blocked before the monitor starts: never shown.
            let mut early = Raw::connect(port);
            early.send(&["BLPOP", "ml", "0"]);
            std::thread::sleep(Duration::from_millis(100));
            let mut m = Raw::connect(port);
            assert_eq!(m.call(&["MONITOR"]), "+OK\r\n");
            let mut c = Raw::connect(port);
            assert_eq!(c.call(&["LPUSH", "ml", "a"]), ":1\r\n");
            assert_eq!(early.reply(), "*2\r\n$2\r\nml\r\n$1\r\na\r\n");
            // Blocked while watched: shown as it blocks, before what serves
            // it; a timeout does not show it again.
            let mut w = Raw::connect(port);
            assert_eq!(w.call(&["BLPOP", "ml", "0.05"]), "*-1\r\n");
            w.send(&["BLPOP", "ml", "0"]);
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(c.call(&["RPUSH", "ml", "b"]), ":1\r\n");
            assert_eq!(w.reply(), "*2\r\n$2\r\nml\r\n$1\r\nb\r\n");
            assert_eq!(c.call(&["PING"]), "+PONG\r\n");
            monitor_lines(&mut m, 5)
        })
        .collect();
    assert_eq!(
        got[1],
        [
            "[0 client] \"LPUSH\" \"ml\" \"a\"",
            "[0 client] \"BLPOP\" \"ml\" \"0.05\"",
            "[0 client] \"BLPOP\" \"ml\" \"0\"",
            "[0 client] \"RPUSH\" \"ml\" \"b\"",
            "[0 client] \"PING\"",
        ],
        "redis-server"
    );
    assert_eq!(got[0], got[1]);
}

#[test]
fn latency_monitor_records_and_reports_as_redis() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    b.lines(&["LATENCY LATEST", "LATENCY HISTORY command", "LATENCY RESET", "LATENCY GRAPH command"]);
    b.lines(&["LATENCY NOPE", "LATENCY HISTORY", "LATENCY HELP x"]);
    // HELP lists the same subcommands (the explanations are our own words).
    let help = |r: &mut Raw| -> Vec<String> {
        r.call(&["LATENCY", "HELP"])
            .split("\r\n")
            .filter(|l| l.starts_with('+') && !l.starts_with("+ "))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(help(&mut b.c[0]), help(&mut b.c[1]));
    // A slow script (tens of ms of Lua) is a "command" event on both.
    b.check(&["CONFIG", "SET", "latency-monitor-threshold", "10"]);
    let spin = "local x = 0 for i = 1, 3000000 do x = x + i end return 1";
    b.unchecked(&["EVAL", spin, "0"]);
    let latest = |r: &mut Raw| r.call(&["LATENCY", "LATEST"]);
    let (ours, theirs) = (latest(&mut b.c[0]), latest(&mut b.c[1]));
    assert!(theirs.contains("command"), "redis-server recorded no event: {theirs}");
    assert!(ours.contains("command"), "moonshard recorded no event: {ours}");
    let history = b.c[0].call(&["LATENCY", "HISTORY", "command"]);
    assert!(history.starts_with("*1\r\n*2\r\n:"), "{history}");
    let graph = b.c[0].call(&["LATENCY", "GRAPH", "command"]);
    assert!(graph.contains("command - high"), "{graph}");
    b.lines(&["LATENCY RESET command nosuch", "LATENCY LATEST"]);
    // Per-command histograms: the same commands, counted the same.
    b.lines(&["CONFIG RESETSTAT", "SET a 1", "GET a", "GET a"]);
    let hist = b.c[0].call(&["LATENCY", "HISTOGRAM", "get", "set", "nosuch"]);
    assert!(hist.starts_with("%2\r\n") || hist.starts_with("*4\r\n"), "{hist}");
    assert!(hist.contains("get") && hist.contains("calls") && hist.contains(":2\r\n"), "{hist}");
}

/// Sends `args` on a fresh connection in a thread; returns how long the reply took.
fn timed(port: u16, args: &'static [&'static str]) -> std::thread::JoinHandle<(String, Duration)> {
    std::thread::spawn(move || {
        let mut c = Raw::connect(port);
        let t = Instant::now();
        let r = c.call(args);
        (r, t.elapsed())
    })
}

#[test]
fn client_pause_holds_writers_not_readers_as_redis() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    b.lines(&["SET k v", "CLIENT PAUSE -1", "CLIENT PAUSE x", "CLIENT PAUSE 10 NOPE", "CLIENT UNPAUSE"]);
    for &port in &pair.ports {
        let mut c = Raw::connect(port);
        assert_eq!(c.call(&["CLIENT", "PAUSE", "600", "WRITE"]), "+OK\r\n");
        let reader = timed(port, &["GET", "k"]);
        let writer = timed(port, &["SET", "k", "w"]);
        let script = timed(port, &["EVAL", "return redis.call('incr','n')", "0"]);
        // PUBLISH may replicate: held too.
        let publisher = timed(port, &["PUBLISH", "ch", "m"]);
        let ro_script = timed(port, &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"]);
        let (r, t) = reader.join().unwrap();
        assert_eq!(r, "$1\r\nv\r\n");
        assert!(t < Duration::from_millis(300), "a read waited {t:?} on port {port}");
        let (r, t) = ro_script.join().unwrap();
        assert_eq!(r, ":1\r\n");
        assert!(t < Duration::from_millis(300), "a no-writes script waited {t:?} on port {port}");
        // The three writers count as blocked once they have arrived (polled:
        // on a loaded machine a thread may take a while to connect).
        common::wait_until(5, "paused writers count as blocked", || {
            c.call(&["INFO", "clients"]).contains("blocked_clients:3")
        });
        let (r, t) = writer.join().unwrap();
        assert_eq!(r, "+OK\r\n");
        assert!(t >= Duration::from_millis(400), "a write ran during the pause ({t:?}) on {port}");
        let (r, _) = script.join().unwrap();
        assert_eq!(r, ":1\r\n");
        let (r, t) = publisher.join().unwrap();
        assert_eq!(r, ":0\r\n");
        assert!(t >= Duration::from_millis(400), "PUBLISH ran during the pause ({t:?}) on {port}");
        // UNPAUSE (not a write) runs during a WRITE pause and releases the writers at once.
        assert_eq!(c.call(&["CLIENT", "PAUSE", "5000", "WRITE"]), "+OK\r\n");
        let writer = timed(port, &["SET", "k", "x"]);
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        assert_eq!(c.call(&["CLIENT", "UNPAUSE"]), "+OK\r\n");
        let (r, _) = writer.join().unwrap();
        assert_eq!(r, "+OK\r\n");
        assert!(started.elapsed() < Duration::from_secs(2), "UNPAUSE did not release on {port}");
        // ALL holds everything, reads too, until it ends.
        assert_eq!(c.call(&["CLIENT", "PAUSE", "500", "ALL"]), "+OK\r\n");
        let (r, t) = timed(port, &["GET", "k"]).join().unwrap();
        assert_eq!(r, "$1\r\nx\r\n");
        assert!(t >= Duration::from_millis(300), "a read ran during CLIENT PAUSE ALL ({t:?}) on {port}");
    }
}

#[test]
fn client_unblock_and_blocked_flags_as_redis() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    b.lines(&["CLIENT UNBLOCK 999999", "CLIENT UNBLOCK x", "CLIENT UNBLOCK 1 NOPE", "CLIENT UNBLOCK 1 TIMEOUT x"]);
    for (how, expect) in [("TIMEOUT", "*-1\r\n"), ("ERROR", "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")] {
        for &port in &pair.ports {
            let mut waiter = Raw::connect(port);
            let id = waiter.call(&["CLIENT", "ID"]);
            let id = id.trim_start_matches(':').trim().to_string();
            waiter.send(&["BLPOP", "nothing", "0"]);
            let mut c = Raw::connect(port);
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let list = c.call(&["CLIENT", "LIST"]);
                let line = list.lines().find(|l| l.contains(&format!("id={id} "))).unwrap_or("").to_string();
                if line.contains("flags=b") && line.contains("cmd=blpop") {
                    break;
                }
                assert!(Instant::now() < deadline, "client never shown blocked on {port}: {list}");
                std::thread::sleep(Duration::from_millis(20));
            }
            let info = c.call(&["INFO", "clients"]);
            assert!(info.contains("blocked_clients:1"), "{info}");
            assert_eq!(c.call(&["CLIENT", "UNBLOCK", &id, how]), ":1\r\n");
            assert_eq!(waiter.reply(), expect, "{how} on {port}");
            assert_eq!(c.call(&["CLIENT", "UNBLOCK", &id]), ":0\r\n", "no longer blocked");
        }
    }
    // MULTI shows the x flag on both.
    for &port in &pair.ports {
        let mut c = Raw::connect(port);
        c.call(&["MULTI"]);
        let info = c.call(&["CLIENT", "INFO"]);
        assert_eq!(info, "+QUEUED\r\n", "CLIENT INFO is queued inside MULTI");
        let exec = c.call(&["EXEC"]);
        assert!(exec.contains("flags=x"), "{exec}");
    }
}
