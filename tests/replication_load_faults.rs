//! A replica's full sync going wrong, against a fake master (a TcpListener
//! in the test speaking the handshake, `+FULLRESYNC`, then a payload of its
//! choosing):
//! - `repl-diskless-load swapdb`: a corrupt payload, or a link that drops
//!   in the middle of it, leaves the replica's old dataset as it was (it is
//!   replaced only by a payload that loaded completely), the replica logs
//!   Redis 7.0's lines and tries again; a good payload then replaces it.
//!   redis-server 7.0 in the same role keeps its dataset when the link
//!   drops mid-transfer too (a corrupt diskless payload makes it exit).
//! - `on-empty-db`: a payload that fails half-way leaves no half-loaded
//!   dataset behind (Redis empties it too).

mod common;
use common::wait_until;

use common::{moonshard, q, redis_server_with, run_str, temp_dir};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MARK: &[u8; 40] = b"0123456789abcdef0123456789abcdef01234567";

/// What the fake master sends after `+FULLRESYNC` on one connection.
#[derive(Clone)]
enum Serve {
    /// `$EOF:<mark>`, these bytes, the mark; then the link stays open.
    Whole(Vec<u8>),
    /// `$EOF:<mark>` and these bytes, then the link closes.
    Cut(Vec<u8>),
}

/// A master that answers the replica handshake and serves `plan[i]` to the
/// i-th connection (the last one again after that). `gate` holds the
/// payload of connections past the first ones back until the test opens it.
struct FakeMaster {
    port: u16,
    connections: Arc<AtomicUsize>,
    /// Connections whose payload was sent completely.
    served: Arc<AtomicUsize>,
    gate: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl FakeMaster {
    fn start(plan: Vec<Serve>, gated_from: usize) -> FakeMaster {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, sv, g, st) = (connections.clone(), served.clone(), gate.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !st.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let i = c.fetch_add(1, Ordering::SeqCst);
                let what = plan[i.min(plan.len() - 1)].clone();
                let (sv, g, st) = (sv.clone(), g.clone(), st.clone());
                std::thread::spawn(move || serve(s, what, i >= gated_from, &g, &st, &sv));
            }
        });
        FakeMaster { port, connections, served, gate, stop }
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One complete RESP multibulk command at the start of `buf`, and its length.
fn parse_command(buf: &[u8]) -> Option<(Vec<String>, usize)> {
    let line_end = |from: usize| buf[from..].windows(2).position(|w| w == b"\r\n").map(|p| from + p);
    if buf.first() != Some(&b'*') {
        // An inline command (the keep-alive newline included).
        let end = line_end(0)?;
        let words = String::from_utf8_lossy(&buf[..end]).split_whitespace().map(String::from).collect();
        return Some((words, end + 2));
    }
    let end = line_end(0)?;
    let n: usize = std::str::from_utf8(&buf[1..end]).ok()?.parse().ok()?;
    let mut at = end + 2;
    let mut argv = Vec::new();
    for _ in 0..n {
        let end = line_end(at)?;
        let len: usize = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?;
        let start = end + 2;
        if buf.len() < start + len + 2 {
            return None;
        }
        argv.push(String::from_utf8_lossy(&buf[start..start + len]).into_owned());
        at = start + len + 2;
    }
    Some((argv, at))
}

fn serve(mut s: TcpStream, what: Serve, gated: bool, gate: &AtomicBool, stop: &AtomicBool, served: &AtomicUsize) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(60);
    // The handshake, up to PSYNC (or SYNC).
    'handshake: loop {
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return;
        }
        while let Some((argv, used)) = parse_command(&buf) {
            buf.drain(..used);
            let Some(name) = argv.first().map(|a| a.to_ascii_uppercase()) else { continue };
            match name.as_str() {
                "PING" => s.write_all(b"+PONG\r\n").unwrap_or(()),
                "PSYNC" | "SYNC" => break 'handshake,
                _ => s.write_all(b"+OK\r\n").unwrap_or(()),
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
    }
    let _ = s.write_all(b"+FULLRESYNC 1111111111111111111111111111111111111111 1000\r\n");
    while gated && !gate.load(Ordering::Relaxed) {
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return;
        }
        // Keep-alive newlines, as a master preparing the payload sends.
        if s.write_all(b"\n").is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut head = b"$EOF:".to_vec();
    head.extend_from_slice(MARK);
    head.extend_from_slice(b"\r\n");
    match what {
        Serve::Cut(bytes) => {
            head.extend_from_slice(&bytes);
            let _ = s.write_all(&head);
            served.fetch_add(1, Ordering::SeqCst);
            // Closed when dropped.
        }
        Serve::Whole(bytes) => {
            head.extend_from_slice(&bytes);
            head.extend_from_slice(MARK);
            let _ = s.write_all(&head);
            served.fetch_add(1, Ordering::SeqCst);
            // The link stays up (ACKs read and ignored) until the test ends.
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match s.read(&mut chunk) {
                    Ok(0) => return,
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

const NEW_KEYS: usize = 3000;

/// A valid RDB file holding `new:0..3000` and `new:mark` = `MARKERVALUE`
/// (saved by a moonshard), and the same bytes with one byte of that value
/// changed (the checksum no longer matches).
fn rdb_files() -> (Vec<u8>, Vec<u8>) {
    let src = moonshard(&[]);
    let mut c = src.client();
    // Enough keys for the loader to insert batches before the end of a cut payload.
    let mut pipe = redis::pipe();
    for i in 0..NEW_KEYS {
        pipe.cmd("SET").arg(format!("new:{i}")).arg(format!("n{i}")).ignore();
    }
    pipe.query::<()>(&mut c).expect("load the source");
    assert!(run_str(&mut c, &["SET", "new:mark", "MARKERVALUE"]).is_ok());
    assert_eq!(q(&mut c, "SAVE"), "OK");
    let good = std::fs::read(src.dir.as_ref().unwrap().join("dump.rdb")).expect("dump.rdb");
    let at = good.windows(11).position(|w| w == b"MARKERVALUE").expect("the value in the file") + 10;
    let mut bad = good.clone();
    bad[at] = b'F';
    (good, bad)
}

fn log_has(log: &std::path::Path, line: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|t| t.contains(line))
}

fn set_old_keys(c: &mut redis::Connection) {
    for i in 0..20 {
        assert!(run_str(c, &["SET", &format!("old:{i}"), &format!("o{i}")]).is_ok());
    }
}

fn old_keys_intact(c: &mut redis::Connection) {
    assert_eq!(q(c, "DBSIZE"), "20", "the old dataset must stay whole");
    assert_eq!(q(c, "GET old:7"), "o7");
    assert_eq!(q(c, "EXISTS new:mark"), "0");
}

#[test]
fn swapdb_keeps_the_old_dataset_when_the_payload_is_corrupt_or_cut() {
    let (good, bad) = rdb_files();
    let half = good[..good.len() / 2].to_vec();
    // 1: corrupt, 2: cut in the middle, 3 (held until the gate opens): good.
    let master = FakeMaster::start(vec![Serve::Whole(bad), Serve::Cut(half), Serve::Whole(good)], 2);
    let (replica, log) = common::moonshard_logged(&["--repl-diskless-load", "swapdb"]);
    let mut c = replica.client();
    set_old_keys(&mut c);
    assert!(run_str(&mut c, &["REPLICAOF", "127.0.0.1", &master.port.to_string()]).is_ok());

    // The corrupt payload: the old dataset stays, Redis's lines, a new try.
    wait_until(30, "the replica to try again after the corrupt payload", || {
        master.connections.load(Ordering::SeqCst) >= 2
    });
    assert!(log_has(&log, "Failed trying to load the MASTER synchronization DB from socket: "));
    assert!(log_has(&log, "MASTER <-> REPLICA sync: Discarding temporary DB in background"));
    old_keys_intact(&mut c);
    assert_eq!(common::field_of(&mut c, "replication", "master_link_status"), "down");

    // The link drops in the middle of the payload: same.
    wait_until(30, "the replica to try again after the cut payload", || master.connections.load(Ordering::SeqCst) >= 3);
    old_keys_intact(&mut c);
    assert!(!log_has(&log, "MASTER <-> REPLICA sync: Finished with success"));
    let discarded = |log: &std::path::Path| {
        std::fs::read_to_string(log).unwrap_or_default().matches("Discarding temporary DB in background").count()
    };
    assert_eq!(discarded(&log), 2, "both failed payloads discarded");

    // A good payload replaces the dataset.
    master.gate.store(true, Ordering::SeqCst);
    wait_until(30, "the good payload to be loaded", || {
        common::field_of(&mut c, "replication", "master_link_status") == "up"
    });
    assert_eq!(q(&mut c, "GET new:mark"), "MARKERVALUE");
    assert_eq!(q(&mut c, "DBSIZE"), (NEW_KEYS + 1).to_string());
    assert_eq!(q(&mut c, "EXISTS old:7"), "0");
    assert_eq!(common::field_of(&mut c, "replication", "master_repl_offset"), "1000");
    assert!(log_has(&log, "MASTER <-> REPLICA sync: Swapping active DB with loaded DB"));
    assert!(log_has(&log, "MASTER <-> REPLICA sync: Finished with success"));
    assert!(master.served.load(Ordering::SeqCst) >= 3);
}

/// The same cut link against redis-server 7.0 with `swapdb`: it keeps its
/// dataset and tries again, with the same log lines.
#[test]
fn redis_swapdb_keeps_its_dataset_when_the_link_drops_mid_transfer() {
    let dir = temp_dir("redis-swapdb");
    let log = dir.join("redis.log");
    let log_arg = log.to_string_lossy().into_owned();
    let Some(redis) =
        redis_server_with(&["--dir", dir.to_str().unwrap(), "--repl-diskless-load", "swapdb", "--logfile", &log_arg])
    else {
        return;
    };
    let (good, _) = rdb_files();
    let half = good[..good.len() / 2].to_vec();
    let master = FakeMaster::start(vec![Serve::Cut(half), Serve::Whole(good)], 1);
    let mut c = redis.client();
    set_old_keys(&mut c);
    assert!(run_str(&mut c, &["REPLICAOF", "127.0.0.1", &master.port.to_string()]).is_ok());
    wait_until(30, "redis-server to try again", || master.connections.load(Ordering::SeqCst) >= 2);
    old_keys_intact(&mut c);
    assert!(log_has(&log, "Failed trying to load the MASTER synchronization DB from socket: "));
    assert!(log_has(&log, "MASTER <-> REPLICA sync: Discarding temporary DB in background"));
    master.gate.store(true, Ordering::SeqCst);
    wait_until(30, "the good payload to be loaded", || {
        common::field_of(&mut c, "replication", "master_link_status") == "up"
    });
    assert_eq!(q(&mut c, "GET new:mark"), "MARKERVALUE");
    assert_eq!(q(&mut c, "DBSIZE"), (NEW_KEYS + 1).to_string());
    assert!(log_has(&log, "MASTER <-> REPLICA sync: Swapping active DB with loaded DB"));
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `on-empty-db` on an empty replica parses the payload as it arrives: a
/// payload cut half-way leaves nothing of it behind.
#[test]
fn on_empty_db_leaves_no_half_loaded_dataset() {
    let (good, _) = rdb_files();
    let half = good[..good.len() * 3 / 4].to_vec();
    let master = FakeMaster::start(vec![Serve::Cut(half), Serve::Whole(good)], 1);
    let (replica, log) = common::moonshard_logged(&["--repl-diskless-load", "on-empty-db"]);
    let mut c = replica.client();
    assert!(run_str(&mut c, &["REPLICAOF", "127.0.0.1", &master.port.to_string()]).is_ok());
    wait_until(30, "the replica to try again", || master.connections.load(Ordering::SeqCst) >= 2);
    assert_eq!(q(&mut c, "DBSIZE"), "0");
    assert!(log_has(&log, "Failed trying to load the MASTER synchronization DB from socket: "));
    master.gate.store(true, Ordering::SeqCst);
    wait_until(30, "the good payload to be loaded", || {
        common::field_of(&mut c, "replication", "master_link_status") == "up"
    });
    assert_eq!(q(&mut c, "DBSIZE"), (NEW_KEYS + 1).to_string());
}
