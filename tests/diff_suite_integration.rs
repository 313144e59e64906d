//! Differential tests for what Redis 7.0.15's own `tests/integration`
//! units found when run against moonshard (docs/REDIS_TEST_SUITE.md): the
//! AOF manifest read as strictly as Redis reads it, an AOF replayed with
//! nothing expiring while it loads, the "CRC error" of a corrupt RDB, the
//! crash report of a fatal signal, `redis-cli --replica`, DEBUG LOADAOF
//! answering LOADING to others, and `aof-timestamp-enabled` at run time.
//! Each case runs against redis-server 7.0 and moonshard alike.

mod common;
mod raw_resp;

use raw_resp::Raw;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The two servers under test: (name, program).
fn servers() -> Option<[(&'static str, &'static str); 2]> {
    // (redis_server_with reports or fails a missing redis-server.)
    drop(common::redis_server_with(&[])?);
    Some([("moonshard", env!("CARGO_BIN_EXE_moonshard")), ("redis-server", "redis-server")])
}

/// Starts `program` on `dir` with `flags`, its log in `dir/stdout`.
fn start(program: &str, dir: &Path, flags: &[&str]) -> (Child, u16) {
    let port = common::free_port();
    let log = std::fs::File::create(dir.join("stdout")).unwrap();
    let child = Command::new(program)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir", dir.to_str().unwrap(), "--save", ""])
        .args(flags)
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    (child, port)
}

/// Waits up to `secs` for the process to exit; its status if it did.
fn exits_within(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn connect_when_up(port: u16, child: &mut Child) -> Raw {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Raw::connect(port);
        }
        assert!(child.try_wait().ok().flatten().is_none(), "the server exited at start-up");
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stdout")).unwrap_or_default()
}

fn resp(args: &[&str]) -> String {
    String::from_utf8(raw_resp::encode(args)).unwrap()
}

/// A data directory with an `appendonlydir` holding `files` (name, bytes)
/// and the manifest text given (None: no manifest).
fn aof_dir(what: &str, files: &[(&str, String)], manifest: Option<&str>) -> PathBuf {
    let dir = common::temp_dir(what);
    let aof = dir.join("appendonlydir");
    std::fs::create_dir_all(&aof).unwrap();
    for (name, body) in files {
        std::fs::write(aof.join(name), body).unwrap();
    }
    if let Some(m) = manifest {
        std::fs::write(aof.join("appendonly.aof.manifest"), m).unwrap();
    }
    dir
}

/// A refusal case: what it is, the AOF files, the manifest, the line expected.
type ManifestCase<'a> = (&'a str, Vec<(&'a str, String)>, String, &'a str);

const AOF_FLAGS: &[&str] = &["--appendonly", "yes", "--appendfilename", "appendonly.aof"];

/// Manifests Redis refuses to start from, each with the line it logs: both
/// servers must exit (never start on a partial dataset) and say why in
/// Redis's words.
#[test]
fn bad_aof_manifests_are_refused_like_redis() {
    let Some(servers) = servers() else { return };
    let set = |k: &str| resp(&["SET", k, "v"]);
    let incr1 = ("appendonly.aof.1.incr.aof", set("k1"));
    let incr2 = ("appendonly.aof.2.incr.aof", set("k2"));
    let base1 = ("appendonly.aof.1.base.aof", set("k0"));
    let long_name = format!("file {} seq 1 type i\n", "x".repeat(1100));
    let cases: Vec<ManifestCase> = vec![
        (
            "missing file",
            vec![base1.clone(), incr2.clone()],
            "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n\
             file appendonly.aof.2.incr.aof seq 2 type i\n"
                .into(),
            "appendonly.aof.1.incr.aof",
        ),
        (
            "non-monotonic",
            vec![incr1.clone(), incr2.clone()],
            "file appendonly.aof.2.incr.aof seq 2 type i\nfile appendonly.aof.1.incr.aof seq 1 type i\n".into(),
            "Found a non-monotonic sequence number",
        ),
        (
            "blank line",
            vec![incr1.clone(), incr2.clone()],
            "file appendonly.aof.1.incr.aof seq 1 type i\n\nfile appendonly.aof.2.incr.aof seq 2 type i\n".into(),
            "Invalid AOF manifest file format",
        ),
        (
            "missing key",
            vec![incr1.clone()],
            "filx appendonly.aof.1.incr.aof seq 1 type i\n".into(),
            "Invalid AOF manifest file format",
        ),
        (
            "odd parameter",
            vec![incr1.clone()],
            "file appendonly.aof.1.incr.aof seq 1 type i newkey\n".into(),
            "Invalid AOF manifest file format",
        ),
        ("line too long", vec![incr1.clone()], long_name, "The AOF manifest file contains too long line"),
        ("empty", vec![incr1.clone()], String::new(), "Found an empty AOF manifest"),
        (
            "duplicate base",
            vec![base1.clone(), incr1.clone()],
            "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.2.base.aof seq 2 type b\n".into(),
            "Found duplicate base file information",
        ),
    ];
    for (what, files, manifest, expected) in &cases {
        for (name, program) in servers {
            let dir = aof_dir("bad-manifest", files, Some(manifest));
            let (mut child, _) = start(program, &dir, AOF_FLAGS);
            let status = exits_within(&mut child, 10);
            let log = log_of(&dir);
            assert!(
                status.is_some_and(|s| !s.success()),
                "{name} did not refuse the manifest ({what}): {status:?}\n{log}"
            );
            assert!(log.contains(expected), "{name} ({what}) did not log {expected:?}:\n{log}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// While an AOF loads nothing expires (Redis's keyIsExpired is false
/// while loading): an RPUSH after a past PEXPIREAT extends the old list,
/// which then reads as expired; a manifest listing only an old-style
/// base gets its first incremental file.
#[test]
fn aof_replay_expires_nothing_until_loaded_like_redis() {
    let Some(servers) = servers() else { return };
    let body = [resp(&["RPUSH", "list", "foo"]), resp(&["PEXPIREAT", "list", "1000"]), resp(&["RPUSH", "list", "bar"])]
        .concat();
    let mut seen = Vec::new();
    for (name, program) in servers {
        let dir = aof_dir(
            "aof-expire",
            &[("appendonly.aof.1.incr.aof", body.clone())],
            Some("file appendonly.aof.1.incr.aof seq 1 type i\n"),
        );
        let (mut child, port) = start(program, &dir, AOF_FLAGS);
        let mut c = connect_when_up(port, &mut child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.call(&["PING"]).contains("LOADING") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        seen.push((name, c.call(&["LLEN", "list"]), c.call(&["EXISTS", "list"])));
        stop(child);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(seen[0].1, seen[1].1, "{seen:?}");
    assert_eq!(seen[0].2, seen[1].2, "{seen:?}");
    assert_eq!(seen[0].1, ":0\r\n", "{seen:?}");

    // An interrupted upgrade: the manifest names the old file as its
    // base, which is still in `dir`; both finish the move and add an incr.
    for (name, program) in servers {
        let dir = aof_dir("aof-upgrade", &[], Some("file appendonly.aof seq 1 type b\n"));
        std::fs::write(dir.join("appendonly.aof"), resp(&["SET", "k1", "v1"])).unwrap();
        let (mut child, port) = start(program, &dir, AOF_FLAGS);
        let mut c = connect_when_up(port, &mut child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.call(&["PING"]).contains("LOADING") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(c.call(&["GET", "k1"]), "$2\r\nv1\r\n", "{name}");
        let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
        assert_eq!(
            manifest, "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
            "{name}"
        );
        assert!(!dir.join("appendonly.aof").exists(), "{name} left the old file in dir");
        stop(child);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A dump.rdb whose CRC64 trailer is wrong: both refuse to start and log
/// the cause as "RDB CRC error" (what operators and Redis's tests grep).
#[test]
fn a_wrong_rdb_checksum_is_logged_as_a_crc_error_like_redis() {
    let Some(servers) = servers() else { return };
    for (name, program) in servers {
        let dir = common::temp_dir("rdb-crc");
        let (mut child, port) = start(program, &dir, &[]);
        let mut c = connect_when_up(port, &mut child);
        assert_eq!(c.call(&["SET", "a", "b"]), "+OK\r\n");
        assert_eq!(c.call(&["SAVE"]), "+OK\r\n");
        stop(child);
        let path = dir.join("dump.rdb");
        let mut data = std::fs::read(&path).unwrap();
        let n = data.len();
        data[n - 8..].copy_from_slice(b"foobar00");
        std::fs::write(&path, data).unwrap();
        let (mut child, _) = start(program, &dir, &[]);
        let status = exits_within(&mut child, 10);
        let log = log_of(&dir);
        assert!(status.is_some_and(|s| !s.success()), "{name} started on a corrupt RDB:\n{log}");
        assert!(log.contains("RDB CRC error"), "{name}:\n{log}");
        assert!(log.contains("Wrong RDB checksum"), "{name}:\n{log}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `kill -ABRT` (or a real fault): the log gets a crash report saying
/// which signal and who sent it, then the process dies of that signal.
#[test]
fn a_fatal_signal_leaves_a_crash_report_like_redis() {
    let Some(servers) = servers() else { return };
    for (name, program) in servers {
        let dir = common::temp_dir("crash-report");
        let (mut child, port) = start(program, &dir, &[]);
        drop(connect_when_up(port, &mut child));
        // SAFETY: sends SIGABRT to the child this test started and owns.
        unsafe { libc::kill(child.id() as i32, libc::SIGABRT) };
        let status = exits_within(&mut child, 10);
        let log = log_of(&dir);
        match status {
            Some(status) => {
                assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGABRT), "{name}")
            }
            // redis-server's report can hang when the signal lands inside
            // its allocator (the report's INFO section allocates): seen once
            // in CI. The reference's lines are still checked below.
            None if name == "redis-server" && log.contains("crashed by signal") => {}
            None => panic!("{name} survived SIGABRT:\n{log}"),
        }
        assert!(log.contains("crashed by signal: 6"), "{name}:\n{log}");
        assert!(log.contains(&format!("Killed by PID: {}", std::process::id())), "{name}:\n{log}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `redis-cli --replica` asks for an RDB without keys (`REPLCONF
/// rdb-filter-only ""`) and then prints the write stream: both servers
/// must keep streaming after the empty payload.
#[test]
fn redis_cli_replica_prints_the_write_stream_like_redis() {
    let Some(servers) = servers() else { return };
    if !common::has_program("redis-cli") {
        return;
    }
    for (name, program) in servers {
        for diskless in ["yes", "no"] {
            let dir = common::temp_dir("cli-replica");
            let flags = ["--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0"];
            let (mut child, port) = start(program, &dir, &flags);
            let mut c = connect_when_up(port, &mut child);
            assert_eq!(c.call(&["SET", "before", "1"]), "+OK\r\n");
            let out = std::fs::File::create(dir.join("cli")).unwrap();
            let mut cli = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "--replica"])
                .stdout(out)
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !c.call(&["INFO", "replication"]).contains("state=online") {
                assert!(Instant::now() < deadline, "{name}: redis-cli --replica never came online");
                std::thread::sleep(Duration::from_millis(50));
            }
            for i in 0..20 {
                c.call(&["SET", "test-key", &format!("test-value-{i}")]);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            let printed = loop {
                let text = std::fs::read_to_string(dir.join("cli")).unwrap_or_default();
                if text.contains("test-value-19") || Instant::now() > deadline {
                    break text;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let _ = cli.kill();
            let _ = cli.wait();
            let printed = printed.to_lowercase();
            assert!(printed.contains("\"set\",\"test-key\",\"test-value-19\""), "{name} ({diskless}): {printed}");
            assert!(!printed.contains("\"before\""), "{name}: the payload's keys were printed: {printed}");
            stop(child);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// DEBUG LOADAOF marks the server as loading (other clients get LOADING),
/// and a script from the AOF that runs past `busy-reply-threshold` is
/// logged as a slow script, as Redis logs it.
#[test]
fn debug_loadaof_is_a_load_like_redis() {
    let Some(servers) = servers() else { return };
    for (name, program) in servers {
        let dir = common::temp_dir("loadaof-loading");
        let flags = [
            "--appendonly",
            "yes",
            "--aof-use-rdb-preamble",
            "no",
            "--lua-time-limit",
            "1",
            "--enable-debug-command",
            "yes",
        ];
        let (mut child, port) = start(program, &dir, &flags);
        let mut c = connect_when_up(port, &mut child);
        assert_eq!(c.call(&["PING"]), "+PONG\r\n");
        let script = "redis.call('set',KEYS[1],'y'); for i=1,1500000 do redis.call('ping') end return 'ok'";
        let incr = std::fs::read_dir(dir.join("appendonlydir"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
            .expect("an incremental AOF file");
        std::fs::write(&incr, [resp(&["SELECT", "9"]), resp(&["EVAL", script, "1", "x"])].concat()).unwrap();
        let mut loader = Raw::connect(port);
        loader.send(&["DEBUG", "LOADAOF"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut refused = String::new();
        while Instant::now() < deadline {
            refused = c.call(&["PING"]);
            if refused.starts_with("-LOADING") {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(refused.starts_with("-LOADING"), "{name}: PING during DEBUG LOADAOF answered {refused:?}");
        loader.set_timeout(Duration::from_secs(30));
        assert_eq!(loader.reply(), "+OK\r\n", "{name}");
        assert!(log_of(&dir).contains("Slow script detected"), "{name}:\n{}", log_of(&dir));
        assert_eq!(c.call(&["SELECT", "9"]), "+OK\r\n");
        assert_eq!(c.call(&["GET", "x"]), "$1\r\ny\r\n", "{name}");
        stop(child);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `aof-timestamp-enabled` set at run time: the next write to the AOF and
/// the base of the next rewrite (AOF format) start with `#TS:`.
#[test]
fn aof_timestamps_set_at_run_time_like_redis() {
    let Some(servers) = servers() else { return };
    for (name, program) in servers {
        let dir = common::temp_dir("aof-ts");
        let (mut child, port) = start(program, &dir, &["--appendonly", "yes"]);
        let mut c = connect_when_up(port, &mut child);
        assert_eq!(c.call(&["CONFIG", "SET", "aof-timestamp-enabled", "yes"]), "+OK\r\n");
        assert_eq!(c.call(&["CONFIG", "SET", "aof-use-rdb-preamble", "no"]), "+OK\r\n");
        assert_eq!(c.call(&["SET", "foo", "bar"]), "+OK\r\n");
        let aof = dir.join("appendonlydir");
        let first_line = |suffix: &str| -> String {
            let path = std::fs::read_dir(&aof)
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .max()
                .expect("AOF file");
            let data = std::fs::read(path).unwrap_or_default();
            String::from_utf8_lossy(&data).lines().next().unwrap_or("").to_string()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !first_line(".incr.aof").starts_with("#TS:") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(first_line(".incr.aof").starts_with("#TS:"), "{name}: {:?}", first_line(".incr.aof"));
        c.call(&["BGREWRITEAOF"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c.call(&["INFO", "persistence"]).contains("aof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0")
            || !first_line(".base.aof").starts_with("#TS:")
        {
            assert!(
                Instant::now() < deadline,
                "{name}: no timestamped base: {:?} {:?}",
                first_line(".base.aof"),
                std::fs::read_dir(&aof).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        stop(child);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn start_on(program: &str, dir: &Path, port: u16, flags: &[&str]) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("stdout")).unwrap();
    Command::new(program)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir", dir.to_str().unwrap()])
        .args(flags)
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("start server")
}

/// A master and a second server on fresh directories and ports, both
/// stopped and their directories removed when dropped. With `follow`, the
/// second starts as a replica of the first (`--replicaof`).
struct Pair {
    master: Child,
    replica: Child,
    m: Raw,
    r: Raw,
    mport: u16,
    rport: u16,
    rdir: PathBuf,
    mdir: PathBuf,
}

impl Pair {
    fn start(master: (&str, &[&str]), replica: (&str, &[&str]), follow: bool) -> Pair {
        let (mdir, rdir) = (common::temp_dir("pair-master"), common::temp_dir("pair-replica"));
        let (mport, rport) = (common::free_port(), common::free_port());
        let mut master_child = start_on(master.0, &mdir, mport, master.1);
        let mport_s = mport.to_string();
        let mut rflags = replica.1.to_vec();
        if follow {
            rflags.extend_from_slice(&["--replicaof", "127.0.0.1", &mport_s]);
        }
        let mut replica_child = start_on(replica.0, &rdir, rport, &rflags);
        let m = connect_when_up(mport, &mut master_child);
        let r = connect_when_up(rport, &mut replica_child);
        Pair { master: master_child, replica: replica_child, m, r, mport, rport, rdir, mdir }
    }

    fn signal(&self, which: &Child, signal: i32) {
        // SAFETY: a signal to a child process this test started and owns.
        unsafe { libc::kill(which.id() as i32, signal) };
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for c in [&mut self.master, &mut self.replica] {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.mdir);
        let _ = std::fs::remove_dir_all(&self.rdir);
    }
}

fn info_field(c: &mut Raw, section: &str, field: &str) -> String {
    let text = c.call(&["INFO", section]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or("").trim().to_string()
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Redis 7.0 records the replication ID and offset in the RDB file it
/// saves, so that a restarted replica, or the replicas of a restarted
/// master, continue with a partial resync. Both directions with a real
/// redis-server: a redis-server replica of a restarted moonshard master,
/// and a restarted moonshard replica of a redis-server master.
#[test]
fn a_restart_continues_the_replication_history_with_redis() {
    let Some(_) = servers() else { return };
    let ours = env!("CARGO_BIN_EXE_moonshard");
    let common_flags = ["--save", "3600 1", "--repl-diskless-sync-delay", "0"];
    for (master_prog, replica_prog, restart_master) in [(ours, "redis-server", true), ("redis-server", ours, false)] {
        let (mdir, rdir) = (common::temp_dir("psync-master"), common::temp_dir("psync-replica"));
        let (mport, rport) = (common::free_port(), common::free_port());
        let mut master = start_on(master_prog, &mdir, mport, &common_flags);
        let mut replica_flags = common_flags.to_vec();
        let mport_s = mport.to_string();
        replica_flags.extend_from_slice(&["--replicaof", "127.0.0.1", &mport_s]);
        let mut replica = start_on(replica_prog, &rdir, rport, &replica_flags);
        let mut m = connect_when_up(mport, &mut master);
        let mut r = connect_when_up(rport, &mut replica);
        wait_for("the replica's link", 20, || info_field(&mut r, "replication", "master_link_status") == "up");
        for i in 0..200 {
            m.call(&["INCR", &format!("ctr{}", i % 7)]);
            m.call(&["SET", &format!("k{i}"), "v", "EX", "1000"]);
        }
        m.call(&["SET", "gone", "v", "PX", "1"]);
        let in_sync = |m: &mut Raw, r: &mut Raw| {
            info_field(m, "replication", "master_repl_offset") == info_field(r, "replication", "slave_repl_offset")
        };
        wait_for("the replica to catch up", 20, || in_sync(&mut m, &mut r));
        // A replica's link is not one of the master's connected_clients.
        assert_eq!(info_field(&mut m, "clients", "connected_clients"), "1", "{master_prog}");
        let who = if restart_master { "master" } else { "replica" };
        if restart_master {
            m.send(&["SHUTDOWN", "SAVE"]);
            let _ = exits_within(&mut master, 20);
            std::thread::sleep(Duration::from_millis(20));
            master = start_on(master_prog, &mdir, mport, &common_flags);
            m = connect_when_up(mport, &mut master);
        } else {
            r.send(&["SHUTDOWN", "SAVE"]);
            let _ = exits_within(&mut replica, 20);
            replica = start_on(replica_prog, &rdir, rport, &replica_flags);
            r = connect_when_up(rport, &mut replica);
        }
        wait_for("the link after the restart", 20, || {
            !r.call(&["PING"]).contains("LOADING") && info_field(&mut r, "replication", "master_link_status") == "up"
        });
        m.call(&["INCR", "ctr3"]);
        wait_for("the replica to catch up after the restart", 20, || in_sync(&mut m, &mut r));
        let stats = m.call(&["INFO", "stats"]);
        assert!(stats.contains("sync_full:0\r\n") || !restart_master, "{who} restart: {stats}");
        assert!(
            stats.contains("sync_partial_ok:1\r\n"),
            "the {who} restart did not continue with a partial resync: {stats}"
        );
        assert_eq!(m.call(&["GET", "ctr3"]), r.call(&["GET", "ctr3"]));
        // (The expired key goes on both once the master's DEL arrives.)
        wait_for("the same keys on both", 10, || {
            m.call(&["EXISTS", "gone"]) == ":0\r\n"
                && in_sync(&mut m, &mut r)
                && m.call(&["DBSIZE"]) == r.call(&["DBSIZE"])
        });
        assert_eq!(m.call(&["DBSIZE"]), ":207\r\n", "{who} restart");
        // CONFIG RESETSTAT clears the sync counters too.
        assert_eq!(m.call(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
        let stats = m.call(&["INFO", "stats"]);
        assert!(stats.contains("sync_partial_ok:0\r\n") && stats.contains("sync_full:0\r\n"), "{stats}");
        stop(master);
        stop(replica);
        let _ = std::fs::remove_dir_all(&mdir);
        let _ = std::fs::remove_dir_all(&rdir);
    }
}

/// A replica paused (SIGSTOP) and resumed (SIGCONT) keeps its link: the
/// timed read it was blocked in fails with EINTR on resume, which a
/// moonshard replica took for a lost master (a full resync, and a
/// shutdown that waited for it lost the wait). Against a redis-server
/// master, whose counters show any reconnection.
#[test]
fn a_paused_replica_keeps_its_link_like_redis() {
    let Some(_) = servers() else { return };
    let flags = ["--save", "", "--repl-diskless-sync-delay", "0"];
    let replica_flags = ["--save", "", "--loglevel", "verbose"];
    let mut p = Pair::start(("redis-server", &flags), (env!("CARGO_BIN_EXE_moonshard"), &replica_flags), true);
    wait_for("the replica's link", 20, || info_field(&mut p.r, "replication", "master_link_status") == "up");
    for round in 0..3 {
        p.signal(&p.replica, libc::SIGSTOP);
        for i in 0..500 {
            p.m.call(&["SET", &format!("k{i}"), &"x".repeat(100)]);
        }
        std::thread::sleep(Duration::from_millis(300));
        p.signal(&p.replica, libc::SIGCONT);
        p.m.call(&["INCR", "rounds"]);
        wait_for("the replica to catch up", 20, || {
            info_field(&mut p.m, "replication", "master_repl_offset")
                == info_field(&mut p.r, "replication", "slave_repl_offset")
        });
        let stats = p.m.call(&["INFO", "stats"]);
        assert!(
            stats.contains("sync_full:1\r\n") && stats.contains("sync_partial_ok:0\r\n"),
            "round {round}: the paused replica reconnected:\n{stats}\n{}",
            log_of(&p.rdir)
        );
    }
    assert_eq!(p.r.call(&["GET", "rounds"]), "$1\r\n3\r\n");
}

/// Two SHUTDOWNs waiting for a lagging replica are two blocked clients
/// sharing one wait: SHUTDOWN ABORT answers both with an error and the
/// master goes on (a second waiter used to go on waiting, then shut the
/// server down after the abort). The replica's link is not a connected
/// client.
#[test]
fn shutdown_abort_ends_every_waiting_shutdown_like_redis() {
    let Some(servers) = servers() else { return };
    for (name, program) in servers {
        let mflags = ["--save", "", "--repl-diskless-sync-delay", "0", "--shutdown-timeout", "60"];
        let mut p = Pair::start((program, &mflags), ("redis-server", &["--save", ""]), true);
        wait_for("the replica's link", 20, || info_field(&mut p.r, "replication", "master_link_status") == "up");
        p.signal(&p.replica, libc::SIGSTOP);
        p.m.call(&["INCR", "k"]);
        let mut waiters = [Raw::connect(p.mport), Raw::connect(p.mport)];
        for w in waiters.iter_mut() {
            w.send(&["SHUTDOWN"]);
        }
        wait_for("two blocked SHUTDOWNs", 10, || info_field(&mut p.m, "clients", "blocked_clients") == "2");
        assert_eq!(info_field(&mut p.m, "clients", "connected_clients"), "3", "{name}");
        assert!(!info_field(&mut p.m, "server", "shutdown_in_milliseconds").is_empty(), "{name}");
        assert_eq!(p.m.call(&["SHUTDOWN", "ABORT"]), "+OK\r\n", "{name}");
        for w in waiters.iter_mut() {
            assert_eq!(w.reply(), "-ERR Errors trying to SHUTDOWN. Check logs.\r\n", "{name}");
        }
        p.signal(&p.replica, libc::SIGCONT);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(p.m.call(&["PING"]), "+PONG\r\n", "{name} shut down after the abort");
        assert_eq!(p.m.call(&["SET", "after", "1"]), "+OK\r\n", "{name}: writes stay held");
    }
}

/// ROLE on a replica whose master has not started its sync yet (diskless
/// delay): `handshake`, as Redis reports every state between the TCP
/// connection and the PSYNC reply; then `connected`. Every pairing of
/// master and replica kind.
#[test]
fn a_replica_waiting_for_its_sync_is_in_handshake_like_redis() {
    let Some(servers) = servers() else { return };
    for (mname, mprog) in servers {
        for (rname, rprog) in servers {
            let mflags = ["--save", "", "--repl-diskless-sync-delay", "1"];
            let mut p = Pair::start((mprog, &mflags), (rprog, &["--save", ""]), false);
            assert_eq!(p.r.call(&["REPLICAOF", "127.0.0.1", &p.mport.to_string()]), "+OK\r\n");
            let state = |r: &mut Raw| r.call(&["ROLE"]).lines().nth(7).unwrap_or("").to_string();
            wait_for("the handshake state", 10, || state(&mut p.r) == "handshake");
            wait_for("the connected state", 20, || state(&mut p.r) == "connected");
            assert_eq!(p.m.call(&["PING"]), "+PONG\r\n", "{mname} -> {rname}");
        }
    }
}

/// A client blocked on a list when its server becomes a replica is
/// answered Redis's UNBLOCKED error and disconnected (left blocked, it took
/// the elements its new master pushed: the replica's list diverged).
#[test]
fn becoming_a_replica_unblocks_blocked_clients_like_redis() {
    let Some(servers) = servers() else { return };
    for (name, program) in servers {
        let mflags = ["--save", "", "--repl-diskless-sync-delay", "0"];
        let mut p = Pair::start(("redis-server", &mflags), (program, &["--save", ""]), false);
        let mut blocked = Raw::connect(p.rport);
        blocked.send(&["BLPOP", "foo", "0"]);
        wait_for("the blocked client", 10, || info_field(&mut p.r, "clients", "blocked_clients") == "1");
        assert_eq!(p.r.call(&["REPLICAOF", "127.0.0.1", &p.mport.to_string()]), "+OK\r\n");
        assert_eq!(
            blocked.reply(),
            "-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n",
            "{name}"
        );
        wait_for("the link", 20, || info_field(&mut p.r, "replication", "master_link_status") == "up");
        p.m.call(&["RPUSH", "foo", "a", "b", "c"]);
        wait_for("the same list on the replica", 10, || p.r.call(&["LLEN", "foo"]) == ":3\r\n");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(p.r.call(&["LLEN", "foo"]), ":3\r\n", "{name}");
    }
}

/// `repl-diskless-load swapdb` with a payload of another history (a new
/// replication ID): the replica answers LOADING while it loads (`loading:1`,
/// `async_loading:0`), as Redis does; its old dataset was other data. Only
/// a payload continuing its own history is loaded while the old one serves.
#[test]
fn swapdb_of_another_history_answers_loading_like_redis() {
    let Some(servers) = servers() else { return };
    for (name, program) in servers {
        let mflags = ["--save", "", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"];
        // (Redis answers clients while it loads every so many bytes read.)
        let rflags =
            ["--save", "", "--repl-diskless-load", "swapdb", "--loading-process-events-interval-bytes", "1024"];
        let mut p = Pair::start(("redis-server", &mflags), (program, &rflags), false);
        // Values past the master's 16 KB pipe buffer: each key is sent as it
        // is written, 200 keys at 10 ms each, so the transfer takes 2 s.
        let value = "x".repeat(20_000);
        for i in 0..200 {
            p.m.call(&["SET", &format!("k{i}"), &value]);
        }
        assert_eq!(p.r.call(&["SET", "old", "1"]), "+OK\r\n");
        assert_eq!(p.m.call(&["CONFIG", "SET", "rdb-key-save-delay", "10000"]), "+OK\r\n");
        assert_eq!(p.r.call(&["REPLICAOF", "127.0.0.1", &p.mport.to_string()]), "+OK\r\n");
        wait_for(&format!("{name}: the replica to load"), 10, || info_field(&mut p.r, "persistence", "loading") == "1");
        assert_eq!(info_field(&mut p.r, "persistence", "async_loading"), "0", "{name}");
        assert!(p.r.call(&["GET", "old"]).starts_with("-LOADING"), "{name}");
        wait_for("the sync", 30, || info_field(&mut p.r, "replication", "master_link_status") == "up");
        assert_eq!(info_field(&mut p.r, "persistence", "loading"), "0", "{name}");
        assert_eq!(p.r.call(&["DBSIZE"]), ":200\r\n", "{name}");
    }
}

/// A writable replica (`replica-read-only no`) expires the keys its own
/// clients wrote with a TTL, as Redis's expireSlaveKeys does; the keys its
/// master wrote still wait for the master's DEL.
#[test]
fn a_writable_replica_expires_its_own_keys_like_redis() {
    let Some(servers) = servers() else { return };
    for (name, program) in servers {
        let mflags = ["--save", "", "--repl-diskless-sync-delay", "0", "--enable-debug-command", "yes"];
        let rflags = ["--save", "", "--replica-read-only", "no"];
        let mut p = Pair::start(("redis-server", &mflags), (program, &rflags), true);
        wait_for("the link", 20, || info_field(&mut p.r, "replication", "master_link_status") == "up");
        // The master's key with a TTL, expiry paused on the master: the
        // replica must keep it (it reads as missing).
        assert_eq!(p.m.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), "+OK\r\n");
        p.m.call(&["SET", "from-master", "1", "PX", "200"]);
        wait_for("the master's key", 10, || p.r.call(&["DBSIZE"]) == ":1\r\n");
        for k in ["own1", "own2", "own3"] {
            assert_eq!(p.r.call(&["SET", k, "1", "PX", "500"]), "+OK\r\n", "{name}");
        }
        assert_eq!(p.r.call(&["SET", "own-forever", "1"]), "+OK\r\n", "{name}");
        assert_eq!(p.r.call(&["DBSIZE"]), ":5\r\n", "{name}");
        wait_for(&format!("{name}'s own keys to expire"), 10, || p.r.call(&["DBSIZE"]) == ":2\r\n");
        assert_eq!(p.r.call(&["EXISTS", "own-forever"]), ":1\r\n", "{name}");
        assert_eq!(p.r.call(&["EXISTS", "own1"]), ":0\r\n", "{name}");
        assert_eq!(info_field(&mut p.r, "keyspace", "db0"), "keys=2,expires=1,avg_ttl=0", "{name}");
    }
}

/// CLIENT KILL TYPE replica during a slow diskless transfer ends that
/// transfer at once (the replica sees the link drop and stops loading),
/// on a moonshard master as on redis-server.
#[test]
fn killing_a_replica_mid_transfer_ends_its_transfer_like_redis() {
    let Some(servers) = servers() else { return };
    for (name, program) in servers {
        let mflags = ["--save", "", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"];
        let rflags =
            ["--save", "", "--repl-diskless-load", "swapdb", "--loading-process-events-interval-bytes", "1024"];
        let mut p = Pair::start((program, &mflags), ("redis-server", &rflags), false);
        let value = "x".repeat(20_000);
        for i in 0..300 {
            p.m.call(&["SET", &format!("k{i}"), &value]);
        }
        assert_eq!(p.m.call(&["CONFIG", "SET", "rdb-key-save-delay", "20000"]), "+OK\r\n");
        assert_eq!(p.r.call(&["REPLICAOF", "127.0.0.1", &p.mport.to_string()]), "+OK\r\n");
        wait_for(&format!("{name}: the replica to load"), 10, || info_field(&mut p.r, "persistence", "loading") == "1");
        assert_eq!(p.m.call(&["CONFIG", "SET", "repl-diskless-sync-delay", "5"]), "+OK\r\n");
        assert_eq!(p.m.call(&["CLIENT", "KILL", "TYPE", "replica"]), ":1\r\n", "{name}");
        // The whole transfer takes 6 s; the kill ends it at once.
        wait_for(&format!("{name}: the transfer to end"), 2, || info_field(&mut p.r, "persistence", "loading") == "0");
        assert_eq!(p.m.call(&["CONFIG", "SET", "rdb-key-save-delay", "0"]), "+OK\r\n");
    }
}

/// An RDB holding an empty set (written by an old or broken writer) loads
/// without it, and the log names it as Redis's does.
#[test]
fn empty_keys_in_an_rdb_are_skipped_and_named_like_redis() {
    let Some(servers) = servers() else { return };
    // RDB 9: SELECTDB 0, a set "set" with no member, EOF, checksum 0 (unchecked).
    let mut rdb = b"REDIS0009".to_vec();
    rdb.extend_from_slice(&[0xFE, 0x00, 0x02, 0x03]);
    rdb.extend_from_slice(b"set");
    rdb.extend_from_slice(&[0x00, 0xFF]);
    rdb.extend_from_slice(&[0; 8]);
    for (name, program) in servers {
        let dir = common::temp_dir("empty-keys");
        std::fs::write(dir.join("dump.rdb"), &rdb).unwrap();
        let (mut child, port) = start(program, &dir, &[]);
        let mut c = connect_when_up(port, &mut child);
        wait_for("the load", 10, || !c.call(&["PING"]).contains("LOADING"));
        assert_eq!(c.call(&["DBSIZE"]), ":0\r\n", "{name}");
        let log = log_of(&dir);
        assert!(log.contains("rdbLoadObject skipping empty key: set"), "{name}:\n{log}");
        assert!(log.contains("keys loaded: 0, keys expired: 0, empty keys skipped: 1."), "{name}:\n{log}");
        stop(child);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
