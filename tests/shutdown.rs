//! SIGTERM during load: the server finishes the replies of requests it is
//! executing, closes connections on reply boundaries, and exits 0.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Length of the first complete RESP reply in `buf`, None if it is incomplete.
fn reply_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..line_end]).expect("header is text");
    let after = line_end + 2;
    match buf.first()? {
        b'+' | b'-' | b':' => Some(after),
        b'$' => {
            let n: i64 = line.parse().expect("bulk length");
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then(|| {
                assert_eq!(&buf[end - 2..end], b"\r\n", "bulk not terminated");
                end
            })
        }
        b'*' => {
            let n: i64 = line.parse().expect("array length");
            let mut at = after;
            for _ in 0..n.max(0) {
                at += reply_len(&buf[at..])?;
            }
            Some(at)
        }
        other => panic!("not a RESP reply: starts with {:?}", *other as char),
    }
}

/// Splits `buf` into complete replies; panics on garbage.
fn split_replies(buf: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        match reply_len(&buf[at..]) {
            Some(n) => {
                out.push(&buf[at..at + n]);
                at += n;
            }
            None => break,
        }
    }
    (out, buf.len() - at)
}

/// Reads until EOF or reset; returns the bytes.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Pipelines INCR in batches of 200, reading each batch's replies: returns
/// every byte received and the number of INCRs sent.
fn lockstep_client(port: u16, key: String, stop: Arc<AtomicBool>) -> (Vec<u8>, usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let one = format!("*2\r\n$4\r\nINCR\r\n${}\r\n{key}\r\n", key.len());
    let batch = one.repeat(200);
    let mut received = Vec::new();
    let mut sent = 0;
    let mut buf = [0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        if s.write_all(batch.as_bytes()).is_err() {
            break;
        }
        sent += 200;
        // Read this batch's replies (or whatever arrives before the close).
        let target = split_replies(&received).0.len() + 200;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return (received, sent),
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
            if split_replies(&received).0.len() >= target {
                break;
            }
        }
    }
    received.extend(read_to_close(&mut s));
    (received, sent)
}

/// Writes INCRs as fast as it can on one thread, reads on another.
fn firehose_client(port: u16, key: String, stop: Arc<AtomicBool>) -> Vec<u8> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut writer = s.try_clone().unwrap();
    let one = format!("*2\r\n$4\r\nINCR\r\n${}\r\n{key}\r\n", key.len());
    let batch = one.repeat(500);
    let w = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if writer.write_all(batch.as_bytes()).is_err() {
                break;
            }
        }
    });
    let mut reader = s;
    reader.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let got = read_to_close(&mut reader);
    let _ = w.join();
    got
}

/// The replies must be complete and count 1, 2, 3, ... in order.
fn check_incr_stream(who: &str, bytes: &[u8]) -> usize {
    let (replies, leftover) = split_replies(bytes);
    assert_eq!(leftover, 0, "{who}: the connection closed in the middle of a reply");
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(*r, format!(":{}\r\n", i + 1).as_bytes(), "{who}: reply {i}");
    }
    replies.len()
}

#[test]
fn sigterm_under_load_completes_replies_and_exits_zero() {
    let mut server = common::moonshard(&["--shards", "4"]);
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let lockstep: Vec<_> = (0..3)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || lockstep_client(port, format!("lock{i}"), stop))
        })
        .collect();
    let firehose: Vec<_> = (0..2)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || firehose_client(port, format!("fire{i}"), stop))
        })
        .collect();

    // Let the load build up, then SIGTERM while it runs.
    std::thread::sleep(Duration::from_millis(700));
    let pid = server.child.id().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());

    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}");

    let mut total = 0;
    for (i, h) in lockstep.into_iter().enumerate() {
        let (bytes, sent) = h.join().unwrap();
        let n = check_incr_stream(&format!("lockstep client {i}"), &bytes);
        assert!(n <= sent);
        total += n;
    }
    for (i, h) in firehose.into_iter().enumerate() {
        total += check_incr_stream(&format!("firehose client {i}"), &h.join().unwrap());
    }
    eprintln!("replies received before the close: {total}");
    assert!(total > 1000, "the load never got going ({total} replies)");
    // Nothing listens any more.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn reply_splitter_detects_partial_replies() {
    assert_eq!(split_replies(b":1\r\n:2\r\n").1, 0);
    assert_eq!(split_replies(b":1\r\n:2").1, 2);
    assert_eq!(split_replies(b"$3\r\nab").1, 6);
    assert_eq!(split_replies(b"*2\r\n:1\r\n$-1\r\n+OK\r\n").0.len(), 2);
    assert_eq!(split_replies(b"*2\r\n:1\r\n").1, 8);
}

/// Starts moonshard (`ours`) or redis-server with `args`, logging to a file
/// in a fresh directory named for `what`: the server, that directory (to
/// remove at the end) and the log file.
fn start_logged(ours: bool, what: &str, args: &[&str]) -> (common::Proc, std::path::PathBuf, std::path::PathBuf) {
    let dir = common::temp_dir(what);
    let log = dir.join("server.log");
    let log_arg = log.to_str().unwrap().to_string();
    let all = [args, &["--logfile", log_arg.as_str()]].concat();
    let server = if ours { common::moonshard(&all) } else { common::redis_server_with(&all).expect("redis-server") };
    (server, dir, log)
}

/// SHUTDOWN waits for a lagging replica (`shutdown-timeout`), holding writes back while reads go on,
/// `SHUTDOWN ABORT` ends that wait, and the log says what was waited for: the same replies and log
/// lines from moonshard and redis-server (each with a redis-server replica stopped by SIGSTOP).
#[test]
fn shutdown_waits_for_a_lagging_replica_as_redis_server() {
    if common::redis_server_with(&[]).is_none() {
        return;
    }
    let mut seen = Vec::new();
    for ours in [true, false] {
        let args = ["--shutdown-timeout", "3", "--repl-diskless-sync-delay", "0"];
        let (mut master, dir, log) = start_logged(ours, "shutdown-wait", &args);
        let port = master.port.to_string();
        let mut replica = common::redis_server_with(&["--replicaof", "127.0.0.1", &port]).unwrap();
        let mut m = master.client();
        common::wait_until(20, "the replica online", || {
            common::field_of(&mut m, "replication", "slave0").contains("state=online")
        });
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        // SAFETY: kill(2) on the pid of a child this test started and still owns.
        unsafe { libc::kill(replica.child.id() as i32, libc::SIGSTOP) };
        let mut got = vec![common::q(&mut m, "SET k v")];
        let url = master.url();
        let shutdown = std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            common::q(&mut c, "SHUTDOWN")
        });
        common::wait_until(10, "the wait for replicas", || {
            log_text().contains("Waiting for replicas before shutting down.")
        });
        // Reads go on; a write waits for the end of the pause.
        got.push(common::q(&mut m, "GET k"));
        let url = master.url();
        let write = std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            common::q(&mut c, "SET k2 v2")
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(!write.is_finished(), "a write ran during the wait for replicas");
        got.push(common::q(&mut m, "SHUTDOWN ABORT"));
        got.push(shutdown.join().unwrap());
        got.push(write.join().unwrap());
        got.push(common::q(&mut m, "SHUTDOWN ABORT"));
        common::wait_until(10, "the abort logged", || log_text().contains("Shutdown manually aborted."));
        // A shutdown whose save fails after the wait: writes go on afterwards.
        let blocker = master.dir.clone().unwrap().join("dump.rdb");
        std::fs::create_dir_all(blocker.join("x")).unwrap();
        got.push(common::q(&mut master.client(), "SHUTDOWN SAVE"));
        got.push(common::q(&mut master.client(), "SET k3 v3"));
        std::fs::remove_dir_all(&blocker).unwrap();
        // Now a shutdown that waits out the timeout for the stopped replica, then exits.
        let t0 = Instant::now();
        let _ = common::run_str(&mut m, &["SHUTDOWN"]);
        let _ = master.child.wait();
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(2500), "shutdown did not wait: {took:?} (ours: {ours}, {got:?})");
        let text = log_text();
        let lagging = format!("Lagging replica 127.0.0.1:{} reported offset", replica.port);
        assert!(text.contains(&lagging), "{text}");
        assert!(text.contains("0 of 1 replicas are in sync when shutting down."), "{text}");
        // SAFETY: as above.
        unsafe { libc::kill(replica.child.id() as i32, libc::SIGCONT) };
        let _ = replica.child.kill();
        seen.push(got);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0][3], "ERR Errors trying to SHUTDOWN. Check logs.", "{seen:?}");
    assert_eq!(seen[0][6], "ERR Errors trying to SHUTDOWN. Check logs.", "{seen:?}");
    assert_eq!(seen[0][7], "OK", "{seen:?}");
}

/// Redis shuts down from its cron: with DEBUG PAUSE-CRON 1 a SIGTERM's
/// shutdown waits, SHUTDOWN ABORT cancels it, and the server serves on.
#[test]
fn shutdown_abort_cancels_a_sigterm_while_the_cron_is_paused() {
    if common::redis_server_with(&[]).is_none() {
        return;
    }
    let mut seen = Vec::new();
    for ours in [true, false] {
        let (mut srv, dir, log) = start_logged(ours, "sigterm-abort", &["--enable-debug-command", "yes"]);
        let mut c = srv.client();
        let mut got = vec![common::q(&mut c, "DEBUG PAUSE-CRON 1")];
        // SAFETY: kill(2) on the pid of a child this test started and still owns.
        unsafe { libc::kill(srv.child.id() as i32, libc::SIGTERM) };
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        common::wait_until(10, "the signal logged", || log_text().contains("Received SIGTERM scheduling shutdown"));
        std::thread::sleep(Duration::from_millis(200));
        assert!(srv.alive(), "the shutdown ran with the cron paused (ours: {ours})");
        got.push(common::q(&mut c, "SHUTDOWN ABORT"));
        got.push(common::q(&mut c, "DEBUG PAUSE-CRON 0"));
        std::thread::sleep(Duration::from_millis(300));
        got.push(common::q(&mut c, "PING"));
        got.push(common::q(&mut c, "SHUTDOWN ABORT"));
        assert!(srv.alive(), "ours: {ours}");
        assert!(log_text().contains("Shutdown manually aborted."), "ours: {ours}");
        seen.push(got);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], ["OK", "OK", "OK", "PONG", "ERR No shutdown in progress."]);
}

/// While the AOF's first base is written (`CONFIG SET appendonly yes`),
/// neither SHUTDOWN nor SIGTERM exits, with Redis's log lines, and
/// SHUTDOWN FORCE does; the same on both servers.
#[test]
fn no_exit_while_the_first_aof_base_is_written_unless_forced() {
    if common::redis_server_with(&[]).is_none() {
        return;
    }
    let mut seen = Vec::new();
    for ours in [true, false] {
        let (mut srv, dir, log) = start_logged(ours, "first-aof-base-shutdown", &["--rdb-key-save-delay", "1000000"]);
        let mut c = srv.client();
        for i in 0..20 {
            common::q(&mut c, &format!("SET k{i} v"));
        }
        let mut got = vec![common::q(&mut c, "CONFIG SET appendonly yes")];
        got.push(common::q(&mut c, "SHUTDOWN"));
        // SAFETY: kill(2) on the pid of a child this test started and still owns.
        unsafe { libc::kill(srv.child.id() as i32, libc::SIGTERM) };
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        // Refused twice: the SHUTDOWN, then the signal.
        let refusals = "Errors trying to shut down the server. Check the logs for more information.";
        common::wait_until(10, "the refused SIGTERM logged", || log_text().matches(refusals).count() == 2);
        std::thread::sleep(Duration::from_millis(100));
        assert!(srv.alive(), "ours: {ours}");
        got.push(common::q(&mut c, "PING"));
        assert_eq!(log_text().matches("Writing initial AOF, can't exit.").count(), 2, "ours: {ours}");
        assert!(!log_text().contains("received but errors"), "ours: {ours}: a line Redis 7.0 logs only while loading");
        let _ = common::run_str(&mut c, &["SHUTDOWN", "NOSAVE", "FORCE"]);
        common::wait_until(10, "the forced exit", || !srv.alive());
        assert!(log_text().contains("Writing initial AOF. Exit anyway."), "ours: {ours}");
        seen.push(got);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], ["OK", "ERR Errors trying to SHUTDOWN. Check logs.", "PONG"]);
}
