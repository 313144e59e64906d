//! Test harness: start the real `moonshard` binary (and, for differential
//! tests, a real `redis-server`) on ephemeral ports and talk to them.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A small seeded xorshift generator: randomized tests print their seed and replay exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Below the kernel's ephemeral range (ip_local_port_range, 32768 by
    // default): a port handed out here and bound later (a cluster node
    // restarted on its old port) cannot meanwhile become the local port of
    // some outgoing connection, which a port from `bind(0)` could.
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()))
        .unwrap_or(32768);
    const FIRST: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    if low > FIRST + 1000 {
        let span = low - FIRST;
        // Test binaries run one after another, their tests in parallel: a
        // per-process starting point and a per-call step keep them apart.
        let start = std::process::id().wrapping_mul(7919) % span;
        for _ in 0..200 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = FIRST + (start + n.wrapping_mul(37)) % span;
            if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
                return port as u16;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not start listening on {port}");
}

/// Connects, sends raw bytes and returns what arrives until the peer
/// closes or stays quiet for `quiet`.
pub fn exchange(port: u16, input: &[u8], quiet: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(input).unwrap();
    read_quiet(&mut s, quiet)
}

/// Reads from `s` until the peer closes or stays quiet for `quiet`.
pub fn read_quiet(s: &mut TcpStream, quiet: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(quiet)).unwrap();
    read_to_timeout(s)
}

/// Reads until the peer closes or the read timeout set on `s` passes (any stream kind).
pub fn read_to_timeout(s: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// A running server process, killed on drop. `dir` is its private working
/// directory (removed on drop), so no test reads or leaves a `dump.rdb` or
/// AOF where another test's server would load it.
pub struct Proc {
    pub port: u16,
    pub child: Child,
    pub dir: Option<std::path::PathBuf>,
}

impl Proc {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Connection {
        let c = redis::Client::open(self.url()).unwrap();
        c.get_connection_with_timeout(Duration::from_secs(10)).unwrap()
    }

    /// Sends raw bytes and returns what arrives until the peer stops sending
    /// for `quiet` or closes.
    pub fn raw(&self, input: &[u8], quiet: Duration) -> Vec<u8> {
        exchange(self.port, input, quiet)
    }

    /// Runs `redis-cli` against this server (None if redis-cli is missing).
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli").arg("-p").arg(self.port.to_string()).args(args).output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh empty directory under the system temp dir, unique per call.
pub fn temp_dir(what: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("moonshard-test-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test directory");
    dir
}

/// `--dir <fresh temp dir>` unless the caller chose a directory itself.
fn private_dir(extra: &[&str], what: &str) -> Option<std::path::PathBuf> {
    if extra.contains(&"--dir") {
        None
    } else {
        Some(temp_dir(what))
    }
}

/// Starts moonshard with extra flags, e.g. `&["--shards", "4"]`.
///
/// The server binds port 0 and reports the port it got in its log (standard
/// output, as Redis logs without a `logfile`), so
/// parallel tests never race for a port.
/// Set by a test binary whose failures need the servers' notices (a cluster
/// election's steps) in the captured output; libtest prints them only when
/// a test fails.
pub static SHOW_NOTICES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn moonshard(extra: &[&str]) -> Proc {
    use std::io::BufRead;
    let dir = private_dir(extra, "moonshard");
    let mut command = Command::new(env!("CARGO_BIN_EXE_moonshard"));
    if let Some(dir) = &dir {
        command.arg("--dir").arg(dir);
    }
    // No save points unless the test sets them (as the redis-server
    // started next to it), so no background save runs by surprise.
    if !extra.contains(&"--save") {
        command.args(["--save", ""]);
    }
    let mut child = command
        .args(["--port", "0"])
        .args(extra)
        .args(["--loglevel", "notice"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start moonshard");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("tcp on port ").nth(1) {
                if let Some(tx) = tx.take() {
                    let port: u16 = rest.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(0);
                    let _ = tx.send(port);
                }
                continue;
            }
            // `<pid>:<M|S> <dd Mon yyyy hh:mm:ss.mmm> <level mark> <message>`:
            // notices stay quiet unless MOONSHARD_TEST_LOGS is set.
            let notice = [":M ", ":S "]
                .iter()
                .find_map(|role| line.split_once(role))
                .and_then(|(_, r)| r.get(25..))
                .is_some_and(|t| t.starts_with("* "));
            if !notice
                || SHOW_NOTICES.load(std::sync::atomic::Ordering::Relaxed)
                || std::env::var_os("MOONSHARD_TEST_LOGS").is_some()
            {
                eprintln!("[moonshard] {line}");
            }
        }
    });
    // With `--logfile` the log (and the line naming the port) goes there.
    let logfile = extra.iter().position(|a| *a == "--logfile").and_then(|i| extra.get(i + 1));
    let port = match logfile {
        Some(path) => {
            let mut port = 0;
            wait_until(20, "moonshard to report its port in its log file", || {
                port = port_in_log(std::path::Path::new(path));
                port != 0
            });
            port
        }
        None => rx.recv_timeout(Duration::from_secs(20)).expect("moonshard did not report its port"),
    };
    // The port is reported once the listener is bound: no probe connection
    // (which would show up in CLIENT LIST) is needed.
    Proc { port, child, dir }
}

/// The port a moonshard log file says it listens on (0 while not there yet).
fn port_in_log(log: &std::path::Path) -> u16 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.split("tcp on port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// `moonshard` with its log (every level) in a file of its directory.
pub fn moonshard_logged(extra: &[&str]) -> (Proc, std::path::PathBuf) {
    let dir = temp_dir("logged");
    let log = dir.join("moonshard.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .arg("--dir")
        .arg(&dir)
        .args(["--port", "0", "--save", "", "--loglevel", "notice"])
        .args(extra)
        .stdout(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start moonshard");
    let mut port = 0;
    wait_until(20, "moonshard to report its port", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("moonshard exited: {status}");
        }
        port = port_in_log(&log);
        port != 0
    });
    (Proc { port, child, dir: Some(dir) }, log)
}

/// Polls `f` every 20 ms until it holds; fails naming `what` after `secs` seconds.
#[track_caller]
pub fn wait_until(secs: u64, what: &str, f: impl FnMut() -> bool) {
    wait_every(Duration::from_millis(20), secs, what, f)
}

/// `wait_until` polling every `every` (for checks that cost a process each).
#[track_caller]
pub fn wait_every(every: Duration, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

/// Waits at most `secs` seconds for `child` to exit (killing it then) and
/// returns its output, and whether it had to be killed.
pub fn output_within(mut child: Child, secs: u64) -> (std::process::Output, bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut killed = false;
    while !matches!(child.try_wait(), Ok(Some(_))) {
        if Instant::now() > deadline {
            let _ = child.kill();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().expect("the child's output"), killed)
}

/// An INFO field as a number (fails when it is not one).
pub fn info_num(con: &mut redis::Connection, section: &str, name: &str) -> i64 {
    field_of(con, section, name).parse().unwrap_or_else(|_| panic!("INFO {name} is not a number"))
}

pub fn field_of(con: &mut redis::Connection, section: &str, name: &str) -> String {
    let text = match run_str(con, &["INFO", section]) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(redis::Value::VerbatimString { text, .. }) => text,
        other => panic!("INFO {section} answered {other:?}"),
    };
    let prefix = format!("{name}:");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or("").trim().to_string()
}

pub fn has_program(name: &str) -> bool {
    Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Starts a real redis-server for differential tests. Returns None (after a
/// loud notice) when it is not installed, unless MOONSHARD_REQUIRE_REDIS=1,
/// in which case its absence fails the test.
pub fn redis_server() -> Option<Proc> {
    redis_server_with(&[])
}

/// `redis_server` with extra flags, e.g. `&["--enable-debug-command", "yes"]`.
pub fn redis_server_with(extra: &[&str]) -> Option<Proc> {
    if !has_program("redis-server") {
        if std::env::var("MOONSHARD_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("redis-server is required (MOONSHARD_REQUIRE_REDIS=1) but not installed");
        }
        eprintln!(
            "\n*** SKIPPED: redis-server not on PATH; differential test not run (apt-get install redis-server) ***\n"
        );
        return None;
    }
    let port = free_port();
    let dir = private_dir(extra, "redis");
    let mut command = Command::new("redis-server");
    if let Some(dir) = &dir {
        command.arg("--dir").arg(dir);
    }
    let mut child = command
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    wait_for_port(port, &mut child, "redis-server");
    Some(Proc { port, child, dir })
}

/// A moonshard node for replication tests, as master or replica: `shards`
/// shards, full syncs start at once (`repl-diskless-sync-delay 0`; Redis's
/// default waits 5 s for more replicas), DEBUG enabled, then `extra`.
pub fn repl_moonshard(shards: usize, extra: &[&str]) -> Proc {
    let shards = shards.to_string();
    let mut args = vec!["--repl-diskless-sync-delay", "0", "--shards", &shards, "--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    moonshard(&args)
}

/// The redis-server counterpart of `repl_moonshard` (None, as
/// `redis_server_with`, when it is not installed).
pub fn repl_redis(extra: &[&str]) -> Option<Proc> {
    let mut args = vec!["--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"];
    args.extend_from_slice(extra);
    redis_server_with(&args)
}

/// Runs one command, returning the reply or the error text as a Value-like string.
pub fn run(con: &mut redis::Connection, args: &[&[u8]]) -> Result<redis::Value, String> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap_or("?"));
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query::<redis::Value>(con).map_err(|e| error_text(&e))
}

/// Same, for string arguments.
pub fn run_str(con: &mut redis::Connection, args: &[&str]) -> Result<redis::Value, String> {
    let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    run(con, &bytes)
}

/// The error line as the server sent it ("ERR ...", "WRONGTYPE ...").
pub fn error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// A moonshard and a redis-server side by side; `check` sends the same
/// command to both and asserts equal replies.
pub struct Diff {
    pub ours: Proc,
    pub theirs: Proc,
    pub a: redis::Connection,
    pub b: redis::Connection,
}

impl Diff {
    pub fn start(extra: &[&str]) -> Option<Diff> {
        Diff::start_with(extra, &[])
    }

    /// Extra flags for each server: `ours` for moonshard, `theirs` for redis-server.
    pub fn start_with(ours: &[&str], theirs: &[&str]) -> Option<Diff> {
        let theirs = redis_server_with(theirs)?;
        let ours = moonshard(ours);
        let a = ours.client();
        let b = theirs.client();
        Some(Diff { ours, theirs, a, b })
    }

    /// Sends `args` to both servers and returns both replies.
    pub fn both(&mut self, args: &[&str]) -> (Result<redis::Value, String>, Result<redis::Value, String>) {
        (run_str(&mut self.a, args), run_str(&mut self.b, args))
    }

    /// Asserts both servers answer `args` identically.
    #[track_caller]
    pub fn check(&mut self, args: &[&str]) -> Result<redis::Value, String> {
        let (ours, theirs) = self.both(args);
        assert_eq!(ours, theirs, "moonshard and redis-server differ on {args:?}");
        ours
    }

    /// Like `check`, but compares arrays as multisets (order not specified by Redis).
    #[track_caller]
    pub fn check_unordered(&mut self, args: &[&str]) {
        let (ours, theirs) = self.both(args);
        assert_eq!(sorted(ours), sorted(theirs), "moonshard and redis-server differ on {args:?}");
    }
}

fn sorted(v: Result<redis::Value, String>) -> Result<redis::Value, String> {
    v.map(|v| match v {
        redis::Value::Array(mut items) => {
            items.sort_by_key(|i| format!("{i:?}"));
            redis::Value::Array(items)
        }
        other => other,
    })
}

/// Renders a reply compactly for assertions: `a`, `3`, `nil`, `[a,b]`, or the error text.
pub fn show(r: Result<redis::Value, String>) -> String {
    fn v(x: &redis::Value) -> String {
        use redis::Value;
        match x {
            Value::Nil => "nil".into(),
            Value::Int(i) => i.to_string(),
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            Value::Okay => "OK".into(),
            Value::Array(items) => format!("[{}]", items.iter().map(v).collect::<Vec<_>>().join(",")),
            other => format!("{other:?}"),
        }
    }
    match r {
        Ok(x) => v(&x),
        Err(e) => e,
    }
}

/// Runs a space-separated command and renders the reply with `show`.
pub fn q(c: &mut redis::Connection, cmd: &str) -> String {
    let args: Vec<&str> = cmd.split(' ').collect();
    show(run_str(c, &args))
}

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// `n` keys named `{prefix}{i}` that live on pairwise different shards out of
/// `shards` (uses the server's own slot math).
pub fn keys_on_different_shards(prefix: &str, shards: usize, n: usize) -> Vec<String> {
    use moonshard::shard::slot::{key_slot, slot_shard};
    let mut out = Vec::new();
    let mut used = std::collections::HashSet::new();
    for i in 0.. {
        let k = format!("{prefix}{i}");
        if used.insert(slot_shard(key_slot(k.as_bytes()), shards)) {
            out.push(k);
            if out.len() == n {
                break;
            }
        }
    }
    out
}

/// redis-server started on the append-only file in `dir`, once it has loaded it.
pub fn redis_on_aof(dir: &std::path::Path) -> Proc {
    redis_on_aof_with(dir, &[])
}

/// `redis_on_aof` with extra flags.
pub fn redis_on_aof_with(dir: &std::path::Path, extra: &[&str]) -> Proc {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["--appendonly", "yes", "--dir", dir, "--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    let redis = redis_server_with(&args).expect("redis-server");
    let mut rc = redis.client();
    let deadline = Instant::now() + Duration::from_secs(10);
    while field_of(&mut rc, "persistence", "loading") != "0" {
        assert!(Instant::now() < deadline, "redis-server is still loading");
        std::thread::sleep(Duration::from_millis(20));
    }
    redis
}

/// Parsed INFO text: section title → field → value.
pub type InfoSections = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>;

/// Parses INFO's text into its sections.
pub fn parse_info(text: &str) -> InfoSections {
    let mut out = InfoSections::new();
    let mut section = String::new();
    for line in text.split("\r\n") {
        if let Some(title) = line.strip_prefix("# ") {
            section = title.to_string();
            out.entry(section.clone()).or_default();
        } else if let Some((k, v)) = line.split_once(':') {
            out.entry(section.clone()).or_default().insert(k.to_string(), v.to_string());
        }
    }
    out
}
