//! RDB snapshots end to end: files written by redis-server 7.0 load into
//! moonshard and the other way round (same DEBUG DIGEST, TTLs, functions),
//! BGSAVE is one point in time while writes go on, a crash mid-save keeps
//! the previous file, a damaged file refuses to start, MISCONF after a
//! failed save, LOADING while loading, saving at SHUTDOWN, SIGTERM and
//! FLUSHALL, DEBUG RELOAD, save points.

mod common;

use common::{run_str, Proc, Rng};
use redis::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn text(v: Value) -> String {
    match v {
        Value::SimpleString(s) => s,
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Int(n) => n.to_string(),
        Value::Okay => "OK".into(),
        other => format!("{other:?}"),
    }
}

fn cmd(con: &mut redis::Connection, args: &[&str]) -> String {
    match run_str(con, args) {
        Ok(v) => text(v),
        Err(e) => e,
    }
}

fn digest(con: &mut redis::Connection) -> String {
    cmd(con, &["DEBUG", "DIGEST"])
}

/// Every type in its small and large encodings, TTLs, several databases,
/// a stream with a consumer group and pending entries, a function library.
fn fill(con: &mut redis::Connection, seed: u64) {
    let mut rng = Rng(seed);
    for db in [0, 2, 5] {
        cmd(con, &["SELECT", &db.to_string()]);
        for i in 0..150 {
            let big = rng.below(4) == 0;
            let n = if big { 300 } else { 1 + rng.below(8) };
            let k = format!("k{db}:{i}");
            match i % 8 {
                0 => {
                    let v = if big { "x".repeat(5000) } else { format!("{}", rng.below(100000)) };
                    cmd(con, &["SET", &k, &v]);
                }
                1 => {
                    for j in 0..n {
                        cmd(con, &["RPUSH", &k, &format!("e{j}-{}", rng.below(1000))]);
                    }
                }
                2 => {
                    for j in 0..n {
                        let m = if big { format!("{j}") } else { format!("m{j}") };
                        cmd(con, &["SADD", &k, &m]);
                    }
                }
                3 => {
                    for j in 0..n {
                        cmd(con, &["ZADD", &k, &format!("{}.5", rng.below(1000)), &format!("z{j}")]);
                    }
                }
                4 => {
                    for j in 0..n {
                        let v = if big && j == 0 { "y".repeat(100) } else { format!("{j}") };
                        cmd(con, &["HSET", &k, &format!("f{j}"), &v]);
                    }
                }
                5 => {
                    for j in 0..n.min(40) {
                        cmd(con, &["XADD", &k, &format!("{}-{}", j + 1, rng.below(3)), "f", &format!("{j}")]);
                    }
                    cmd(con, &["XGROUP", "CREATE", &k, "g", "0"]);
                    cmd(con, &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", &k, ">"]);
                }
                6 => {
                    cmd(con, &["PFADD", &k, "a", "b", &format!("c{}", rng.below(100))]);
                }
                _ => {
                    cmd(con, &["SET", &k, "short-lived"]);
                }
            }
            if rng.below(5) == 0 {
                cmd(con, &["PEXPIRE", &k, &(100_000 + rng.below(1_000_000)).to_string()]);
            }
        }
    }
    cmd(con, &["SELECT", "0"]);
    let lib = "#!lua name=persisted\nredis.register_function('answer', function() return 42 end)";
    cmd(con, &["FUNCTION", "LOAD", "REPLACE", lib]);
}

fn dbsizes(con: &mut redis::Connection) -> Vec<String> {
    let sizes = (0..6).map(|db| {
        cmd(con, &["SELECT", &db.to_string()]);
        cmd(con, &["DBSIZE"])
    });
    let v = sizes.collect();
    cmd(con, &["SELECT", "0"]);
    v
}

/// TTLs of every key of database 0 in ms (-1: none).
fn ttls(con: &mut redis::Connection) -> Vec<(String, i64)> {
    let keys = match run_str(con, &["KEYS", "*"]) {
        Ok(Value::Array(a)) => a.into_iter().map(text).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let mut out: Vec<(String, i64)> =
        keys.into_iter().map(|k| (k.clone(), cmd(con, &["PTTL", &k]).parse().unwrap())).collect();
    out.sort();
    out
}

/// The same keys with the same TTLs, give or take the seconds between the reads.
fn assert_same_ttls(got: &[(String, i64)], want: &[(String, i64)]) {
    assert_eq!(got.len(), want.len());
    for ((k, a), (k2, b)) in got.iter().zip(want) {
        assert_eq!(k, k2);
        assert!((*a < 0) == (*b < 0) && (a - b).abs() < 5_000, "{k}: TTL {a} ms, expected about {b} ms");
    }
}

fn wait_save(con: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::field_of(con, "persistence", "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn in_dir(dir: &Path, extra: &[&str]) -> Proc {
    let mut args = vec!["--dir", dir.to_str().unwrap(), "--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    common::moonshard(&args)
}

/// A private directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        TempDir(common::temp_dir(what))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn redis_dump_loads_into_moonshard_identically() {
    let src = TempDir::new("rdb-from-redis");
    let Some(redis) = common::redis_server_with(&["--dir", src.0.to_str().unwrap(), "--enable-debug-command", "yes"])
    else {
        return;
    };
    let mut rc = redis.client();
    fill(&mut rc, 7);
    let want = digest(&mut rc);
    let sizes = dbsizes(&mut rc);
    let want_ttls = ttls(&mut rc);
    assert_eq!(cmd(&mut rc, &["SAVE"]), "OK");
    let dst = TempDir::new("rdb-into-moonshard");
    std::fs::copy(src.0.join("dump.rdb"), dst.0.join("dump.rdb")).unwrap();
    drop(rc);
    drop(redis);

    let ours = in_dir(&dst.0, &["--shards", "3"]);
    let mut c = ours.client();
    assert_eq!(dbsizes(&mut c), sizes);
    assert_eq!(digest(&mut c), want, "moonshard's dataset differs from redis-server's");
    assert_same_ttls(&ttls(&mut c), &want_ttls);
    assert_eq!(cmd(&mut c, &["FCALL", "answer", "0"]), "42");
    let loaded: u64 = common::field_of(&mut c, "persistence", "rdb_last_load_keys_loaded").parse().unwrap();
    assert_eq!(loaded, sizes.iter().map(|s| s.parse::<u64>().unwrap()).sum::<u64>());
}

#[test]
fn moonshard_dump_passes_redis_check_rdb_and_loads_into_redis() {
    if common::redis_server().is_none() {
        return;
    }
    for extra in [&[][..], &["--rdbcompression", "no", "--maxmemory-policy", "allkeys-lru"][..]] {
        let dir = TempDir::new("rdb-from-moonshard");
        let mut args = vec!["--shards", "4"];
        args.extend_from_slice(extra);
        let ours = in_dir(&dir.0, &args);
        let mut c = ours.client();
        fill(&mut c, 11);
        let want = digest(&mut c);
        let sizes = dbsizes(&mut c);
        let want_ttls = ttls(&mut c);
        assert_eq!(cmd(&mut c, &["BGSAVE"]), "Background saving started");
        wait_save(&mut c);
        assert_eq!(common::field_of(&mut c, "persistence", "rdb_last_bgsave_status"), "ok");
        assert_eq!(common::field_of(&mut c, "persistence", "rdb_changes_since_last_save"), "0");

        let check = Command::new("redis-check-rdb").arg(dir.0.join("dump.rdb")).output().expect("redis-check-rdb");
        let out = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success() && out.contains("RDB looks OK"), "redis-check-rdb: {out}");

        let theirs = TempDir::new("rdb-into-redis");
        std::fs::copy(dir.0.join("dump.rdb"), theirs.0.join("dump.rdb")).unwrap();
        let redis =
            common::redis_server_with(&["--dir", theirs.0.to_str().unwrap(), "--enable-debug-command", "yes"]).unwrap();
        let mut rc = redis.client();
        assert_eq!(dbsizes(&mut rc), sizes);
        assert_eq!(digest(&mut rc), want, "redis-server's dataset differs from moonshard's");
        assert_same_ttls(&ttls(&mut rc), &want_ttls);
        assert_eq!(cmd(&mut rc, &["FCALL", "answer", "0"]), "42");
    }
}

/// Cross-shard transfers keep a zero sum; the file taken during them must
/// too, hold every key that existed at BGSAVE (even if deleted during the
/// save) and none created after it.
#[test]
fn bgsave_is_one_point_in_time_while_writes_go_on() {
    let dir = TempDir::new("rdb-pit");
    let ours = in_dir(&dir.0, &["--shards", "4"]);
    let mut c = ours.client();
    for i in 0..3000 {
        cmd(&mut c, &["SET", &format!("acct{i}"), "0"]);
    }
    for i in 0..100 {
        cmd(&mut c, &["SET", &format!("before{i}"), "x"]);
    }
    // About 1 s of walking: the writers below run through the save.
    cmd(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "500"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (port, stop) = (ours.port, stop.clone());
            std::thread::spawn(move || {
                let mut con =
                    redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
                let mut rng = Rng(99 + w);
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 200_000 {
                    let (a, b) = (rng.below(3000), rng.below(3000));
                    let amount = (1 + rng.below(50)).to_string();
                    let mut p = redis::pipe();
                    p.atomic()
                        .cmd("DECRBY")
                        .arg(format!("acct{a}"))
                        .arg(&amount)
                        .cmd("INCRBY")
                        .arg(format!("acct{b}"))
                        .arg(&amount);
                    let _: () = p.query(&mut con).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(cmd(&mut c, &["BGSAVE"]), "Background saving started");
    for i in 0..100 {
        cmd(&mut c, &["DEL", &format!("before{i}")]);
        cmd(&mut c, &["SET", &format!("after{i}"), "x"]);
    }
    assert_eq!(common::field_of(&mut c, "persistence", "rdb_bgsave_in_progress"), "1", "the save ended too soon");
    wait_save(&mut c);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let done: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(done > 100, "the writers barely ran ({done})");
    assert_eq!(common::field_of(&mut c, "persistence", "rdb_last_bgsave_status"), "ok");
    drop(c);
    drop(ours);

    let again = in_dir(&dir.0, &["--shards", "2"]);
    let mut c = again.client();
    assert_eq!(cmd(&mut c, &["DBSIZE"]), "3100");
    let mut sum = 0i64;
    for i in 0..3000 {
        sum += cmd(&mut c, &["GET", &format!("acct{i}")]).parse::<i64>().unwrap();
    }
    assert_eq!(sum, 0, "a transfer is half in the snapshot");
    assert_eq!(cmd(&mut c, &["EXISTS", "before0", "before99"]), "2");
    assert_eq!(cmd(&mut c, &["EXISTS", "after0", "after99"]), "0");
}

#[test]
fn crash_during_bgsave_keeps_the_previous_file() {
    let dir = TempDir::new("rdb-crash");
    let mut ours = in_dir(&dir.0, &[]);
    let mut c = ours.client();
    cmd(&mut c, &["DEBUG", "POPULATE", "2000", "old"]);
    assert_eq!(cmd(&mut c, &["SAVE"]), "OK");
    let want = digest(&mut c);
    cmd(&mut c, &["DEBUG", "POPULATE", "3000", "new"]);
    cmd(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
    assert_eq!(cmd(&mut c, &["BGSAVE"]), "Background saving started");
    std::thread::sleep(Duration::from_millis(300));
    ours.child.kill().unwrap();
    ours.child.wait().unwrap();
    drop(c);
    drop(ours);
    let again = in_dir(&dir.0, &[]);
    let mut c = again.client();
    assert_eq!(cmd(&mut c, &["DBSIZE"]), "2000");
    assert_eq!(digest(&mut c), want);
}

/// Starts moonshard on a dump that must be refused: it exits non-zero and says why.
fn refused(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .args(["--port", "0", "--dir", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut child = out;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "moonshard started on a damaged file");
            let mut log = String::new();
            use std::io::Read;
            // The log (standard output) and the exit message (standard error).
            child.stdout.take().unwrap().read_to_string(&mut log).unwrap();
            child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
            assert!(!log.contains("Ready to accept"), "{log}");
            return log;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("moonshard neither started nor exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn damaged_files_refuse_to_start() {
    let dir = TempDir::new("rdb-damaged");
    {
        let ours = in_dir(&dir.0, &[]);
        let mut c = ours.client();
        cmd(&mut c, &["DEBUG", "POPULATE", "500"]);
        assert_eq!(cmd(&mut c, &["SAVE"]), "OK");
    }
    let path = dir.0.join("dump.rdb");
    let good = std::fs::read(&path).unwrap();
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let log = refused(&dir.0);
    assert!(log.contains("Terminating server after rdb file reading failure."), "{log}");
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    std::fs::write(&path, &flipped).unwrap();
    let log = refused(&dir.0);
    assert!(log.contains("Terminating server after rdb file reading failure."), "{log}");
    std::fs::write(&path, b"garbage, not an RDB file").unwrap();
    let log = refused(&dir.0);
    assert!(log.contains("Wrong signature"), "{log}");
}

/// A failed background save refuses writes (and PING) with Redis's MISCONF
/// text, compared with redis-server's, until a save succeeds again.
#[test]
fn misconf_after_a_failed_bgsave_as_redis() {
    let rdir = TempDir::new("misconf-redis");
    let Some(redis) = common::redis_server_with(&["--dir", rdir.0.to_str().unwrap(), "--save", "3600 1"]) else {
        return;
    };
    let mdir = TempDir::new("misconf-ours");
    let ours = in_dir(&mdir.0, &["--save", "3600 1"]);
    let mut replies = Vec::new();
    for (s, d) in [(&redis, &rdir), (&ours, &mdir)] {
        let mut c = s.client();
        cmd(&mut c, &["SET", "k", "v"]);
        // The file cannot be renamed over a directory: the save fails.
        std::fs::create_dir_all(d.0.join("dump.rdb").join("blocker")).unwrap();
        assert_eq!(cmd(&mut c, &["BGSAVE"]), "Background saving started");
        let deadline = Instant::now() + Duration::from_secs(10);
        while common::field_of(&mut c, "persistence", "rdb_last_bgsave_status") != "err" {
            assert!(Instant::now() < deadline, "the save did not fail");
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = vec![cmd(&mut c, &["SET", "k", "w"]), cmd(&mut c, &["PING"]), cmd(&mut c, &["GET", "k"])];
        std::fs::remove_dir_all(d.0.join("dump.rdb")).unwrap();
        // Saving again clears it.
        assert_eq!(cmd(&mut c, &["BGSAVE"]), "Background saving started");
        wait_save(&mut c);
        replies.push((got, cmd(&mut c, &["SET", "k", "w"])));
    }
    assert!(replies[0].0[0].starts_with("MISCONF"), "{replies:?}");
    assert_eq!(replies[0], replies[1]);
}

#[test]
fn clients_get_loading_while_the_dataset_loads() {
    let dir = TempDir::new("rdb-loading");
    populated_dump(&dir.0, 3000);
    let port = common::free_port();
    let (port_arg, dir_arg) = (port.to_string(), dir.0.to_str().unwrap().to_string());
    let mut child = spawn_quiet(
        env!("CARGO_BIN_EXE_moonshard"),
        // Clients are answered (LOADING) from the first KB on, as Redis
        // processes its events every this many bytes of a load.
        &["--port", &port_arg, "--dir", &dir_arg, "--key-load-delay", "1000"],
        &["--loading-process-events-interval-bytes", "1024"],
    );
    let guard = scopeguard(&mut child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "never listened");
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let out = common::exchange(port, b"PING\r\nINFO persistence\r\n", Duration::from_millis(200));
        if !out.is_empty() {
            break String::from_utf8_lossy(&out).into_owned();
        }
        assert!(Instant::now() < deadline, "no answer while loading");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(first.starts_with("-LOADING Redis is loading the dataset in memory\r\n"), "{first}");
    assert!(first.contains("loading:1"), "{first}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = common::exchange(port, b"PING\r\n", Duration::from_millis(100));
        if out == b"+PONG\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "still loading");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(guard);
}

/// A short load (one under `loading-process-events-interval-bytes`, or no
/// file at all) is never seen by clients: one connecting at start-up waits
/// and gets its answer, never LOADING, from redis-server and moonshard alike
/// (clients and test harnesses connect as soon as the port accepts).
#[test]
fn a_short_start_up_load_keeps_clients_waiting_not_loading() {
    let Some(_redis) = common::redis_server() else { return };
    for program in [env!("CARGO_BIN_EXE_moonshard"), "redis-server"] {
        let dir = TempDir::new("rdb-short-load");
        populated_dump(&dir.0, 2000);
        for (file, delay) in [("dump.rdb", "200"), ("absent.rdb", "0")] {
            let port = common::free_port();
            let (port_arg, dir_arg) = (port.to_string(), dir.0.to_str().unwrap().to_string());
            let mut child = spawn_quiet(
                program,
                &["--port", &port_arg, "--dir", &dir_arg, "--dbfilename", file],
                &["--key-load-delay", delay, "--save", ""],
            );
            let guard = scopeguard(&mut child);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut s = loop {
                if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    break s;
                }
                assert!(Instant::now() < deadline, "{program} never listened");
                std::thread::sleep(Duration::from_millis(1));
            };
            use std::io::{Read, Write};
            s.write_all(
                b"DBSIZE
",
            )
            .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut got = [0u8; 64];
            let n = s.read(&mut got).unwrap();
            let want = if file == "dump.rdb" { ":2000\r\n" } else { ":0\r\n" };
            assert_eq!(String::from_utf8_lossy(&got[..n]), want, "{program} {file}");
            drop(guard);
        }
    }
}

/// A `dump.rdb` in `dir` of `keys` keys (DEBUG POPULATE), written by moonshard.
fn populated_dump(dir: &Path, keys: usize) {
    let ours = in_dir(dir, &[]);
    let mut c = ours.client();
    cmd(&mut c, &["DEBUG", "POPULATE", &keys.to_string()]);
    assert_eq!(cmd(&mut c, &["SAVE"]), "OK");
}

/// Starts `program` with `args` then `more`, its output discarded.
fn spawn_quiet(program: &str, args: &[&str], more: &[&str]) -> std::process::Child {
    Command::new(program).args(args).args(more).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

struct Killer<'a>(&'a mut std::process::Child);

impl Drop for Killer<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scopeguard(c: &mut std::process::Child) -> Killer<'_> {
    Killer(c)
}

#[test]
fn shutdown_sigterm_and_flushall_save_when_save_points_are_set() {
    let dir = TempDir::new("rdb-shutdown");
    let mut ours = in_dir(&dir.0, &["--save", "3600 1"]);
    let mut c = ours.client();
    cmd(&mut c, &["SET", "a", "1"]);
    let _ = run_str(&mut c, &["SHUTDOWN"]);
    ours.child.wait().unwrap();
    drop(ours);

    let mut ours = in_dir(&dir.0, &["--save", "3600 1"]);
    let mut c = ours.client();
    assert_eq!(cmd(&mut c, &["GET", "a"]), "1");
    cmd(&mut c, &["SET", "b", "2"]);
    let pid = ours.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(ours.child.wait().unwrap().success());
    drop(ours);

    let mut ours = in_dir(&dir.0, &["--save", "3600 1"]);
    let mut c = ours.client();
    assert_eq!((cmd(&mut c, &["GET", "a"]), cmd(&mut c, &["GET", "b"])), ("1".into(), "2".into()));
    // SHUTDOWN NOSAVE keeps the last file as it is.
    cmd(&mut c, &["SET", "c", "3"]);
    let _ = run_str(&mut c, &["SHUTDOWN", "NOSAVE"]);
    ours.child.wait().unwrap();
    drop(ours);

    let ours = in_dir(&dir.0, &["--save", "3600 1"]);
    let mut c = ours.client();
    assert_eq!(cmd(&mut c, &["EXISTS", "a", "b", "c"]), "2");
    // FLUSHALL saves the empty dataset at once.
    assert_eq!(cmd(&mut c, &["FLUSHALL"]), "OK");
    drop(c);
    drop(ours);
    let ours = in_dir(&dir.0, &[]);
    let mut c = ours.client();
    assert_eq!(cmd(&mut c, &["DBSIZE"]), "0");
}

#[test]
fn debug_reload_and_save_points() {
    let dir = TempDir::new("rdb-reload");
    let ours = in_dir(&dir.0, &["--save", "1 1", "--shards", "3"]);
    let mut c = ours.client();
    fill(&mut c, 5);
    let want = digest(&mut c);
    let want_ttls = ttls(&mut c);
    assert_eq!(cmd(&mut c, &["DEBUG", "RELOAD"]), "OK");
    assert_eq!(digest(&mut c), want);
    assert_same_ttls(&ttls(&mut c), &want_ttls);
    assert_eq!(cmd(&mut c, &["FCALL", "answer", "0"]), "42");
    // The save point `1 1` saves in the background within about 2 s.
    let saves: u64 = common::field_of(&mut c, "persistence", "rdb_saves").parse().unwrap();
    cmd(&mut c, &["SET", "one-more", "x"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now: u64 = common::field_of(&mut c, "persistence", "rdb_saves").parse().unwrap();
        if now > saves && common::field_of(&mut c, "persistence", "rdb_changes_since_last_save") == "0" {
            break;
        }
        assert!(Instant::now() < deadline, "the save point did not save");
        std::thread::sleep(Duration::from_millis(50));
    }
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("save").query(&mut c).unwrap();
    assert_eq!(got, ["save", "1 1"]);
    assert!(cmd(&mut c, &["CONFIG", "SET", "save", "1 x"]).contains("Invalid save parameters"));
}

/// `CONFIG SET appendonly yes` on a server holding data writes a base from
/// the dataset (RDB preamble or commands), then appends: moonshard and
/// redis-server both restart from that directory into the same dataset.
#[test]
fn appendonly_switched_on_with_data_writes_a_base_redis_loads() {
    if common::redis_server().is_none() {
        return;
    }
    for preamble in ["yes", "no"] {
        let dir = TempDir::new("aof-base");
        let ours = in_dir(&dir.0, &["--aof-use-rdb-preamble", preamble, "--appendfsync", "always"]);
        let mut c = ours.client();
        fill(&mut c, 3);
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "appendonly", "yes"]), "OK");
        cmd(&mut c, &["SET", "after-switch", "1"]);
        cmd(&mut c, &["INCR", "after-switch"]);
        // The base is written in the background (as redis-server's child does).
        let deadline = Instant::now() + Duration::from_secs(30);
        while common::field_of(&mut c, "persistence", "aof_rewrite_in_progress") != "0" {
            assert!(Instant::now() < deadline, "the first base was not written");
            std::thread::sleep(Duration::from_millis(20));
        }
        let want = digest(&mut c);
        let sizes = dbsizes(&mut c);
        drop(c);
        drop(ours);
        let check = Command::new("redis-check-aof")
            .arg(dir.0.join("appendonlydir/appendonly.aof.manifest"))
            .output()
            .expect("redis-check-aof");
        let out = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "redis-check-aof ({preamble}): {out}");

        let again = in_dir(&dir.0, &["--appendonly", "yes"]);
        let mut c = again.client();
        assert_eq!(dbsizes(&mut c), sizes, "preamble {preamble}");
        assert_eq!(digest(&mut c), want, "moonshard's restart, preamble {preamble}");
        drop(c);
        drop(again);

        let copy = TempDir::new("aof-base-redis");
        std::fs::create_dir_all(copy.0.join("appendonlydir")).unwrap();
        for e in std::fs::read_dir(dir.0.join("appendonlydir")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), copy.0.join("appendonlydir").join(e.file_name())).unwrap();
        }
        let redis = common::redis_on_aof(&copy.0);
        let mut rc = redis.client();
        assert_eq!(dbsizes(&mut rc), sizes, "redis-server, preamble {preamble}");
        assert_eq!(digest(&mut rc), want, "redis-server's load, preamble {preamble}");
    }
}

/// `CONFIG SET appendonly yes` on a server holding data answers at once and
/// writes the AOF's first base in the background, as Redis does: meanwhile
/// the AOF counts as on, SHUTDOWN refuses to exit (the dataset would have no
/// AOF), BGREWRITEAOF is refused, writes go on, and `appendonly no` gives
/// the rewrite up. Switched on again (a FLUSHALL and new data while the
/// base is written), both servers leave the same files, and each directory
/// restarts either server into the dataset the clients saw.
#[test]
fn appendonly_switched_on_writes_its_first_base_in_the_background_like_redis() {
    if common::redis_server().is_none() {
        return;
    }
    let dirs = [TempDir::new("aof-first-base-ours"), TempDir::new("aof-first-base-redis")];
    let mut seen: Vec<(Vec<String>, Vec<String>, String)> = Vec::new();
    for (which, dir) in ["moonshard", "redis-server"].into_iter().zip(&dirs) {
        // 450 keys at 5 ms each: the walk lasts about 2 s.
        let flags = ["--appendfsync", "always", "--rdb-key-save-delay", "5000", "--enable-debug-command", "yes"];
        let server = if which == "moonshard" {
            in_dir(&dir.0, &flags)
        } else {
            let mut args = vec!["--dir", dir.0.to_str().unwrap()];
            args.extend_from_slice(&flags);
            common::redis_server_with(&args).expect("redis-server")
        };
        let mut c = server.client();
        fill(&mut c, 5);
        let field =
            |c: &mut redis::Connection, name: &str| format!("{name}:{}", common::field_of(c, "persistence", name));
        let mut replies = vec![cmd(&mut c, &["CONFIG", "SET", "appendonly", "yes"])];
        replies.push(field(&mut c, "aof_enabled"));
        replies.push(field(&mut c, "aof_rewrite_in_progress"));
        replies.push(cmd(&mut c, &["SHUTDOWN"]));
        replies.push(cmd(&mut c, &["BGREWRITEAOF"]));
        for i in 0..50 {
            cmd(&mut c, &["SET", &format!("during{i}"), "x"]);
            cmd(&mut c, &["INCR", "counter"]);
        }
        replies.push(field(&mut c, "aof_rewrite_in_progress"));
        replies.push(cmd(&mut c, &["CONFIG", "SET", "appendonly", "no"]));
        replies.push(field(&mut c, "aof_enabled"));
        replies.push(field(&mut c, "aof_rewrite_in_progress"));
        // On again; a FLUSHALL while the base is written (Redis's child goes
        // on, moonshard starts its snapshot over) leaves the same result.
        replies.push(cmd(&mut c, &["CONFIG", "SET", "appendonly", "yes"]));
        replies.push(cmd(&mut c, &["FLUSHALL"]));
        fill(&mut c, 6);
        cmd(&mut c, &["INCR", "counter"]);
        cmd(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while common::field_of(&mut c, "persistence", "aof_rewrite_in_progress") != "0" {
            assert!(Instant::now() < deadline, "{which}: the first base was not written");
            std::thread::sleep(Duration::from_millis(20));
        }
        replies.push(field(&mut c, "aof_last_bgrewrite_status"));
        cmd(&mut c, &["SET", "after", "1"]);
        let want = digest(&mut c);
        let mut files: Vec<String> = std::fs::read_dir(dir.0.join("appendonlydir"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        seen.push((replies, files, want));
        drop(c);
        drop(server);
    }
    assert_eq!(seen[0].0, seen[1].0, "replies and INFO fields, moonshard then redis-server");
    assert_eq!(seen[0].1, seen[1].1, "the files of the AOF directory");
    assert_eq!(seen[0].2, seen[1].2, "the dataset");
    for (dir, want) in dirs.iter().zip([&seen[0].2, &seen[1].2]) {
        let again = in_dir(&dir.0, &["--appendonly", "yes"]);
        assert_eq!(&digest(&mut again.client()), want, "moonshard restarted from {}", dir.0.display());
        drop(again);
        let redis = common::redis_on_aof(&dir.0);
        assert_eq!(&digest(&mut redis.client()), want, "redis-server restarted from {}", dir.0.display());
    }
}

/// BGREWRITEAOF while writes go on: the new base is the snapshot at the
/// cut, the writes after it are in the new incremental file, the old files
/// are gone, and both servers restart from the directory into the dataset
/// the clients saw.
#[test]
fn bgrewriteaof_under_writes_keeps_every_write() {
    if common::redis_server().is_none() {
        return;
    }
    for preamble in ["yes", "no"] {
        let dir = TempDir::new("aof-rewrite");
        let ours = in_dir(
            &dir.0,
            &["--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", preamble, "--shards", "3"],
        );
        let mut c = ours.client();
        fill(&mut c, 13);
        cmd(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "20000"]);
        assert_eq!(cmd(&mut c, &["BGREWRITEAOF"]), "Background append only file rewriting started");
        assert_eq!(cmd(&mut c, &["BGREWRITEAOF"]), "ERR Background append only file rewriting already in progress");
        assert_eq!(cmd(&mut c, &["BGSAVE"]).split(':').next().unwrap(), "ERR Another child process is active (AOF?)");
        for i in 0..200 {
            cmd(&mut c, &["INCR", &format!("k0:{}", i % 10 * 8)]);
            cmd(&mut c, &["SET", &format!("during{i}"), "x"]);
            cmd(&mut c, &["DEL", &format!("k0:{}", 1 + i % 100 * 8)]);
        }
        assert_eq!(
            common::field_of(&mut c, "persistence", "aof_rewrite_in_progress"),
            "1",
            "the rewrite ended early (preamble {preamble}, status {})",
            common::field_of(&mut c, "persistence", "aof_last_bgrewrite_status")
        );
        cmd(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while common::field_of(&mut c, "persistence", "aof_rewrite_in_progress") != "0" {
            assert!(Instant::now() < deadline, "the rewrite did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(common::field_of(&mut c, "persistence", "aof_last_bgrewrite_status"), "ok");
        assert_eq!(common::field_of(&mut c, "persistence", "aof_rewrites"), "1");
        cmd(&mut c, &["SET", "after-rewrite", "1"]);
        let want = digest(&mut c);
        let sizes = dbsizes(&mut c);
        let manifest = std::fs::read_to_string(dir.0.join("appendonlydir/appendonly.aof.manifest")).unwrap();
        let ext = if preamble == "yes" { "rdb" } else { "aof" };
        assert_eq!(
            manifest,
            format!("file appendonly.aof.2.base.{ext} seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n")
        );
        let files = std::fs::read_dir(dir.0.join("appendonlydir")).unwrap().count();
        assert_eq!(files, 3, "the old files are removed");
        drop(c);
        drop(ours);

        let check = Command::new("redis-check-aof")
            .arg(dir.0.join("appendonlydir/appendonly.aof.manifest"))
            .output()
            .expect("redis-check-aof");
        assert!(check.status.success(), "redis-check-aof: {}", String::from_utf8_lossy(&check.stdout));
        let again = in_dir(&dir.0, &["--appendonly", "yes"]);
        let mut c = again.client();
        assert_eq!(dbsizes(&mut c), sizes);
        assert_eq!(digest(&mut c), want, "moonshard's restart after the rewrite ({preamble})");
        drop(c);
        drop(again);
        let redis = common::redis_on_aof(&dir.0);
        let mut rc = redis.client();
        assert_eq!(digest(&mut rc), want, "redis-server's load after the rewrite ({preamble})");
    }
}
