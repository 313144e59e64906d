//! Local process settings that used to be stored and ignored, each compared
//! with redis-server 7.0 where one is installed: `unixsocket` and
//! `unixsocketperm` (clients over a Unix domain socket behave as TCP ones),
//! `pidfile`, `daemonize`, and `tcp-keepalive` on accepted sockets.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server started with `--unixsocket <dir>/s.sock` and its log in
/// `<dir>/log`; killed and its directory removed on drop.
struct Local {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
    /// The TCP port (0: the Unix socket only).
    port: u16,
}

impl Local {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// A `redis` crate connection over the Unix socket.
    fn unix_client(&self) -> redis::Connection {
        let url = format!("redis+unix://{}", self.sock.display());
        let client = redis::Client::open(url).expect("unix socket URL");
        client.get_connection_with_timeout(Duration::from_secs(10)).expect("connect over the unix socket")
    }

    fn tcp_client(&self) -> redis::Connection {
        assert_ne!(self.port, 0, "no TCP port");
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        c.get_connection_with_timeout(Duration::from_secs(10)).unwrap()
    }

    /// `redis-cli -s <socket> args...`
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli").arg("-s").arg(&self.sock).args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for the process to end (after SHUTDOWN) and returns its status.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut status = None;
        common::wait_until(20, "the server to exit", || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status.unwrap()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The last line of `log` that contains `what` (empty if none).
fn log_line(log: &str, what: &str) -> String {
    log.lines().rfind(|l| l.contains(what)).unwrap_or_default().to_string()
}

/// Starts `program` (moonshard or redis-server) with a Unix socket, on TCP
/// port `port` too unless it is 0, plus `extra`; returns once the log says
/// the socket is ready.
fn start(program: &str, port: u16, extra: &[&str]) -> Local {
    start_in(common::temp_dir("local"), program, port, extra)
}

/// `start` in a directory of the caller's.
fn start_in(dir: PathBuf, program: &str, port: u16, extra: &[&str]) -> Local {
    let sock = dir.join("s.sock");
    let mut command = Command::new(program);
    command
        .arg("--dir")
        .arg(&dir)
        .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .arg("--unixsocket")
        .arg(&sock)
        .arg("--logfile")
        .arg(dir.join("log"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = command.spawn().expect("start the server");
    let mut local = Local { child, dir, sock, port };
    common::wait_until(20, "the unix socket to be ready", || {
        if let Ok(Some(status)) = local.child.try_wait() {
            panic!("{program} exited with {status}:\n{}", local.log());
        }
        local.log().contains("The server is now ready to accept connections at")
    });
    local
}

fn moonshard(port: u16, extra: &[&str]) -> Local {
    start(env!("CARGO_BIN_EXE_moonshard"), port, extra)
}

/// redis-server with the same settings, when it is installed.
fn redis(port: u16, extra: &[&str]) -> Option<Local> {
    if !common::has_program("redis-server") {
        // Prints the loud notice (or fails under MOONSHARD_REQUIRE_REDIS).
        return common::redis_server().map(|_| unreachable!());
    }
    Some(start("redis-server", port, extra))
}

/// One request over a fresh Unix socket connection, raw; what came back
/// before the peer went quiet for half a second.
fn unix_exchange(sock: &Path, input: &[u8]) -> String {
    let mut s = UnixStream::connect(sock).expect("connect");
    // A refused client may be closed before it writes: its reply is still there to read.
    let _ = s.write_all(input);
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    String::from_utf8_lossy(&common::read_to_timeout(&mut s)).into_owned()
}

/// One `name=value` field of a CLIENT LIST / CLIENT INFO line.
fn field(line: &str, name: &str) -> String {
    let prefix = format!("{name}=");
    line.split_whitespace().find_map(|w| w.strip_prefix(prefix.as_str())).unwrap_or("?").to_string()
}

fn q(con: &mut redis::Connection, args: &[&str]) -> String {
    common::show(common::run_str(con, args))
}

#[test]
fn unix_socket_clients_are_served_like_tcp_clients() {
    let port = common::free_port();
    let s = moonshard(port, &["--unixsocketperm", "770", "--shards", "4"]);
    let meta = std::fs::metadata(&s.sock).expect("the socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o770, "unixsocketperm, read as octal");

    let mut u = s.unix_client();
    let mut t = s.tcp_client();
    // Commands, a pipeline across shards, a transaction, a script.
    assert_eq!(q(&mut u, &["SET", "{a}k", "1"]), "OK");
    assert_eq!(q(&mut t, &["GET", "{a}k"]), "1");
    let (a, b, c): (String, i64, Vec<String>) = redis::pipe()
        .cmd("SET")
        .arg("x")
        .arg("y")
        .cmd("INCR")
        .arg("{a}k")
        .cmd("MGET")
        .arg("x")
        .arg("{a}k")
        .query(&mut u)
        .expect("pipeline over the unix socket");
    assert_eq!((a.as_str(), b, c), ("OK", 2, vec!["y".to_string(), "2".to_string()]));
    let (n, v): (i64, String) =
        redis::pipe().atomic().incr("{a}k", 5).get("x").query(&mut u).expect("MULTI/EXEC over the unix socket");
    assert_eq!((n, v.as_str()), (7, "y"));
    let n: i64 = redis::cmd("EVAL")
        .arg("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        .arg(1)
        .arg("{a}k")
        .arg(3)
        .query(&mut u)
        .expect("a script over the unix socket");
    assert_eq!(n, 10);

    // Pub/sub: a Unix subscriber gets a message published over TCP.
    let mut sub_con = s.unix_client();
    let mut sub = sub_con.as_pubsub();
    sub.subscribe("news").unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    common::wait_until(10, "the subscription", || q(&mut t, &["PUBLISH", "news", "hello"]) == "1");
    let msg = sub.get_message().expect("a message over the unix socket");
    assert_eq!(msg.get_payload::<String>().unwrap(), "hello");
    drop(sub);
    drop(sub_con);

    // redis-cli -s, and what CLIENT INFO says about such a client.
    assert_eq!(s.cli(&["PING"]).trim(), "PONG");
    let path = s.sock.display().to_string();
    let info = s.cli(&["CLIENT", "INFO"]);
    assert_eq!(field(&info, "addr"), format!("{path}:0"), "{info}");
    assert_eq!(field(&info, "laddr"), format!("{path}:0"), "{info}");
    assert_eq!(field(&info, "flags"), "U", "{info}");
    let tcp_info = q(&mut t, &["CLIENT", "INFO"]);
    assert_eq!(field(&tcp_info, "flags"), "N", "{tcp_info}");

    // Counted, listed and killed like any client.
    common::wait_until(10, "the redis-cli clients to be gone", || {
        common::info_num(&mut t, "clients", "connected_clients") == 2
    });
    let _other = s.unix_client();
    assert_eq!(common::info_num(&mut t, "clients", "connected_clients"), 3);
    let list = q(&mut t, &["CLIENT", "LIST"]);
    assert_eq!(list.matches(&format!("addr={path}:0 laddr={path}:0")).count(), 2, "{list}");
    assert_eq!(q(&mut t, &["CLIENT", "KILL", "ADDR", &format!("{path}:0")]), "2");
    common::wait_until(10, "the killed clients to be gone", || {
        common::info_num(&mut t, "clients", "connected_clients") == 1
    });
    assert_ne!(q(&mut u, &["PING"]), "PONG", "the killed unix client is disconnected");
}

#[test]
fn transport_fields_match_redis_over_its_unix_socket() {
    let ours = moonshard(0, &["--unixsocketperm", "700", "--enable-debug-command", "local"]);
    let Some(theirs) = redis(0, &["--unixsocketperm", "700", "--enable-debug-command", "local"]) else {
        return;
    };
    // What a client of the socket sees of itself, the path masked.
    let view = |s: &Local| {
        let path = s.sock.display().to_string();
        let info = unix_exchange(&s.sock, b"CLIENT INFO\r\n");
        let mut out = Vec::new();
        for name in ["addr", "laddr", "flags", "db", "user", "resp"] {
            out.push(format!("{name}={}", field(&info, name).replace(&path, "SOCK")));
        }
        // DEBUG is allowed to a local client; the Unix socket is local.
        out.push(unix_exchange(&s.sock, b"DEBUG SLEEP 0\r\n"));
        out.push(unix_exchange(&s.sock, b"CONFIG GET unixsocketperm\r\n"));
        out.push(unix_exchange(&s.sock, b"CONFIG GET port\r\n"));
        out.push(format!("mode={:o}", std::fs::metadata(&s.sock).unwrap().permissions().mode() & 0o777));
        out
    };
    assert_eq!(view(&ours), view(&theirs));

    // Two clients of the socket, killed by address from a third.
    let kill = |s: &Local| {
        let path = s.sock.display().to_string();
        let mut a = UnixStream::connect(&s.sock).unwrap();
        let mut b = UnixStream::connect(&s.sock).unwrap();
        for c in [&mut a, &mut b] {
            c.write_all(b"PING\r\n").unwrap();
            let mut buf = [0u8; 7];
            c.read_exact(&mut buf).unwrap();
        }
        // The two, and redis-cli asking (earlier connections are gone).
        common::wait_until(10, "three clients", || s.cli(&["INFO", "clients"]).contains("connected_clients:3\r\n"));
        // skipme yes: the killer, on the same address, stays.
        s.cli(&["CLIENT", "KILL", "ADDR", &format!("{path}:0")])
    };
    assert_eq!(kill(&ours), kill(&theirs));

    // MONITOR names a Unix socket client `unix:<path>`.
    let monitor_line = |s: &Local| {
        let path = s.sock.display().to_string();
        let mut m = UnixStream::connect(&s.sock).unwrap();
        m.write_all(b"MONITOR\r\n").unwrap();
        let mut ok = [0u8; 5];
        m.read_exact(&mut ok).unwrap();
        s.cli(&["SET", "k", "v"]);
        m.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") && m.read(&mut byte).unwrap_or(0) == 1 {
            line.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&line).replace(&path, "SOCK");
        // Drop the timestamp.
        line.split_once(' ').map(|(_, rest)| rest.trim_end().to_string()).unwrap_or_default()
    };
    assert_eq!(monitor_line(&ours), "[0 unix:SOCK] \"SET\" \"k\" \"v\"");
    assert_eq!(monitor_line(&ours).to_lowercase(), monitor_line(&theirs).to_lowercase());
}

#[test]
fn port_zero_with_a_unix_socket_listens_on_the_socket_only() {
    let dir = common::temp_dir("stale");
    // A stale file where the socket goes is replaced, as Redis does.
    let sock = dir.join("s.sock");
    std::fs::write(&sock, "stale").unwrap();
    let mut s = start_in(dir, env!("CARGO_BIN_EXE_moonshard"), 0, &[]);
    assert!(std::fs::metadata(&sock).unwrap().file_type().is_socket(), "the stale file was replaced");
    let mut con = redis::Client::open(format!("redis+unix://{}", sock.display()))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(q(&mut con, &["CONFIG", "GET", "port"]), "[port,0]");
    assert_eq!(common::field_of(&mut con, "server", "tcp_port"), "0");
    let log = s.log();
    assert!(!log.contains("tcp on port"), "no TCP listener:\n{log}");
    // Nothing of this process listens on TCP.
    let pid = s.child.id();
    if common::has_program("ss") {
        let out = Command::new("ss").args(["-ltnpH"]).output().unwrap();
        let listening = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!listening.contains(&format!("pid={pid},")), "{listening}");
    }
    // SHUTDOWN removes the socket file, as Redis logs it.
    let _ = common::run_str(&mut con, &["SHUTDOWN", "NOSAVE"]);
    assert!(s.wait_exit().success());
    assert!(!sock.exists(), "the socket file is removed at shutdown");
    assert!(s.log().contains("Removing the unix socket file."), "{}", s.log());
}

/// A server that must fail to start: its exit status and log (redis-server
/// logs to its standard output without a logfile).
fn failed_start(program: &str, sock: &str) -> (Option<i32>, String) {
    let dir = DirGuard(common::temp_dir("fail"));
    let log = dir.0.join("log");
    let child = Command::new(program)
        .arg("--dir")
        .arg(&dir.0)
        .args(["--save", "", "--port", "0", "--unixsocket", sock])
        .arg("--logfile")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let (out, killed) = common::output_within(child, 20);
    assert!(!killed, "{program} did not exit");
    (out.status.code(), std::fs::read_to_string(&log).unwrap_or_default())
}

#[test]
fn a_unix_socket_that_cannot_be_bound_stops_the_server_as_redis() {
    let long = format!("/tmp/{}.sock", "x".repeat(120));
    for (sock, expected) in [
        ("/nonexistent-moonshard-dir/s.sock", "Failed opening Unix socket: bind: No such file or directory"),
        (long.as_str(), "Failed opening Unix socket: unix socket path too long (130), must be under 108"),
    ] {
        let (code, log) = failed_start(env!("CARGO_BIN_EXE_moonshard"), sock);
        assert_eq!(code, Some(1), "{log}");
        let ours = log_line(&log, "Failed opening Unix socket");
        assert!(ours.ends_with(&format!("# {expected}")), "{log}");
        if common::has_program("redis-server") {
            let (code, log) = failed_start("redis-server", sock);
            assert_eq!(code, Some(1), "{log}");
            let theirs = log_line(&log, "Failed opening Unix socket");
            assert_eq!(ours.split_once(" # ").map(|p| p.1), theirs.split_once(" # ").map(|p| p.1));
        }
    }
}

#[test]
fn maxclients_and_protected_mode_for_unix_clients() {
    let port = common::free_port();
    let s = moonshard(port, &["--maxclients", "2", "--protected-mode", "yes", "--bind", "127.0.0.1"]);
    let mut t = s.tcp_client();
    // Protected mode (on, no password) does not apply to the local socket.
    let mut u = s.unix_client();
    assert_eq!(q(&mut u, &["PING"]), "PONG");
    // Two clients: a third, on either transport, is refused.
    assert_eq!(unix_exchange(&s.sock, b"PING\r\n"), "-ERR max number of clients reached\r\n");
    assert_eq!(common::info_num(&mut t, "stats", "rejected_connections"), 1);
    drop(u);
    common::wait_until(10, "the unix client's slot to be free", || {
        common::info_num(&mut t, "clients", "connected_clients") == 1
    });
    assert_eq!(unix_exchange(&s.sock, b"PING\r\n"), "+PONG\r\n");
}

/// Removes a test's directory, however the test ends.
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the process whose pid a test read from a pid file, unless it
/// has gone.
struct PidGuard(i32);

impl Drop for PidGuard {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: a plain signal to a process id this test started.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
            }
        }
    }
}

fn alive(pid: i32) -> bool {
    // Zombies count as gone (ours are reaped by whoever owns them).
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

fn read_pid(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid = text.strip_suffix('\n')?.parse().ok()?;
    Some(pid)
}

#[test]
fn pidfile_is_written_at_start_and_removed_at_shutdown() {
    let dir = DirGuard(common::temp_dir("pid"));
    let pidfile = dir.0.join("moonshard.pid");
    let mut s = moonshard(0, &["--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(read_pid(&pidfile), Some(s.child.id() as i32), "pid and a newline");
    let mut con = s.unix_client();
    assert_eq!(q(&mut con, &["CONFIG", "GET", "pidfile"]), format!("[pidfile,{}]", pidfile.display()));
    let _ = common::run_str(&mut con, &["SHUTDOWN", "NOSAVE"]);
    assert!(s.wait_exit().success());
    assert!(!pidfile.exists(), "the pid file is removed at shutdown");
    assert!(s.log().contains("Removing the pid file."));

    // A SIGTERM shutdown removes it too.
    let s = moonshard(0, &["--pidfile", pidfile.to_str().unwrap()]);
    assert!(pidfile.exists());
    let pid = s.child.id() as i32;
    // SAFETY: a plain signal to the child this test started.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    common::wait_until(20, "the pid file to go after SIGTERM", || !pidfile.exists());
}

#[test]
fn daemonize_forks_into_the_background() {
    let dir = DirGuard(common::temp_dir("daemon"));
    let pidfile = dir.0.join("d.pid");
    let log = dir.0.join("d.log");
    let sock = dir.0.join("d.sock");
    let launcher = Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .arg("--dir")
        .arg(&dir.0)
        .args(["--save", "", "--port", "0", "--daemonize", "yes"])
        .arg("--pidfile")
        .arg(&pidfile)
        .arg("--logfile")
        .arg(&log)
        .arg("--unixsocket")
        .arg(&sock)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start moonshard");
    let launcher_pid = launcher.id() as i32;
    // The launching process returns at once, with 0 and nothing printed
    // (its output pipes close: the daemon's standard streams are /dev/null).
    let (out, killed) = common::output_within(launcher, 20);
    assert!(!killed, "the launching process did not return");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");

    let mut pid = 0;
    common::wait_until(20, "the daemon's pid file", || {
        pid = read_pid(&pidfile).unwrap_or(0);
        pid != 0
    });
    let guard = PidGuard(pid);
    assert_ne!(pid, launcher_pid, "the daemon is the forked child");
    assert!(alive(pid));
    // SAFETY: getsid only reads the session id of a process id.
    assert_eq!(unsafe { libc::getsid(pid) }, pid, "the daemon leads a session of its own");
    let null = std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap();
    assert_eq!(null, Path::new("/dev/null"), "standard output is /dev/null");

    common::wait_until(20, "the daemon's socket", || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("ready to accept connections at")
    });
    let mut con = redis::Client::open(format!("redis+unix://{}", sock.display()))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(q(&mut con, &["PING"]), "PONG");
    assert_eq!(q(&mut con, &["CONFIG", "GET", "daemonize"]), "[daemonize,yes]");
    let _ = common::run_str(&mut con, &["SHUTDOWN", "NOSAVE"]);
    common::wait_until(20, "the daemon to exit", || !alive(pid));
    assert!(!pidfile.exists(), "SHUTDOWN removes the pid file");
    assert!(!sock.exists(), "and the socket file");
    drop(guard);
}

/// The keepalive timer `ss -tno` shows on the server's side of the
/// connection from local port `client_port` to `port`, in seconds (None:
/// no keepalive timer).
fn keepalive_timer(port: u16, client_port: u16) -> Option<f64> {
    let out = Command::new("ss").args(["-tnoH", "state", "established"]).output().expect("ss");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() >= 4 && cols[2].ends_with(&format!(":{port}")) && cols[3].ends_with(&format!(":{client_port}"))
    })?;
    let timer = line.split("timer:(keepalive,").nth(1)?.split(',').next()?;
    parse_timer(timer)
}

/// A time as `ss -o` writes it: `1min39sec`, `6sec`, `6.700ms` (6.7 s),
/// `700ms`, `119min`.
fn parse_timer(timer: &str) -> Option<f64> {
    let mut secs = 0.0;
    let mut rest = timer;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(digits);
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num.parse().ok()?;
        secs += match unit {
            "min" => n * 60.0,
            "sec" => n,
            // `6.700ms` is 6.7 s; `700ms` alone is 0.7 s.
            "ms" if num.contains('.') => n,
            "ms" => n / 1000.0,
            "h" => n * 3600.0,
            _ => return None,
        };
        rest = next;
    }
    Some(secs)
}

/// Opens a TCP connection to `port` (kept open by the caller) and returns
/// the server's keepalive timer on it.
fn connect_and_read_timer(port: u16) -> (std::net::TcpStream, Option<f64>) {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let local = c.local_addr().unwrap().port();
    // A reply: the server has accepted the connection (and set its options);
    // the kernel lists it as established before that.
    c.write_all(b"PING\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut pong = [0u8; 7];
    c.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
    let mut timer = None;
    common::wait_until(10, "the accepted connection in ss", || {
        let out = Command::new("ss").args(["-tnH", "state", "established"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let ours = format!(":{port} ");
        let found = text.lines().any(|l| l.contains(&ours) && l.contains(&format!(":{local}")));
        if found {
            timer = keepalive_timer(port, local);
        }
        found
    });
    (c, timer)
}

#[test]
fn tcp_keepalive_is_set_on_accepted_sockets_as_redis_sets_it() {
    if !common::has_program("ss") {
        eprintln!("*** SKIPPED: no `ss` on this machine (the socket options are unit-tested) ***");
        return;
    }
    let ours = common::moonshard(&["--tcp-keepalive", "100"]);
    let theirs = common::redis_server_with(&["--tcp-keepalive", "100"]);
    let mut servers = vec![("moonshard", ours.port)];
    if let Some(r) = &theirs {
        servers.push(("redis-server", r.port));
    }
    for (name, port) in servers {
        let mut admin = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(10))
            .unwrap();
        let (_c1, t) = connect_and_read_timer(port);
        let t = t.unwrap_or_else(|| panic!("{name}: no keepalive timer with tcp-keepalive 100"));
        assert!(t > 60.0 && t <= 100.0, "{name}: first probe in {t} s");
        // CONFIG SET applies to new connections.
        assert_eq!(q(&mut admin, &["CONFIG", "SET", "tcp-keepalive", "0"]), "OK");
        let (_c2, t) = connect_and_read_timer(port);
        assert_eq!(t, None, "{name}: tcp-keepalive 0 sets no keepalive");
        assert_eq!(q(&mut admin, &["CONFIG", "SET", "tcp-keepalive", "7"]), "OK");
        let (_c3, t) = connect_and_read_timer(port);
        let t = t.unwrap_or_else(|| panic!("{name}: no keepalive timer with tcp-keepalive 7"));
        assert!(t <= 7.0, "{name}: first probe in {t} s");
        // Past the system's longest idle time (32767 s) Redis's option fails
        // and the system default (7200 s) stays, keepalive still on.
        assert_eq!(q(&mut admin, &["CONFIG", "SET", "tcp-keepalive", "40000"]), "OK");
        let (_c4, t) = connect_and_read_timer(port);
        let t = t.unwrap_or_else(|| panic!("{name}: no keepalive timer with tcp-keepalive 40000"));
        assert!(t > 7000.0 && t <= 7200.0, "{name}: first probe in {t} s");
    }
}

#[test]
fn blocked_unix_clients_are_served_and_noticed_when_gone() {
    let port = common::free_port();
    let s = moonshard(port, &[]);
    let mut t = s.tcp_client();
    // Served by a push from a TCP client.
    let mut waiting = UnixStream::connect(&s.sock).unwrap();
    waiting.write_all(b"BLPOP q 0\r\n").unwrap();
    common::wait_until(10, "the client to block", || common::info_num(&mut t, "clients", "blocked_clients") == 1);
    assert_eq!(q(&mut t, &["LPUSH", "q", "v"]), "1");
    waiting.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = [0u8; 18];
    waiting.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n");
    // A blocked client that goes away is noticed (and its slot freed).
    waiting.write_all(b"BLPOP q 0\r\n").unwrap();
    common::wait_until(10, "the client to block again", || common::info_num(&mut t, "clients", "blocked_clients") == 1);
    drop(waiting);
    common::wait_until(10, "the gone client to be dropped", || {
        common::info_num(&mut t, "clients", "blocked_clients") == 0
            && common::info_num(&mut t, "clients", "connected_clients") == 1
    });
    // Nothing was popped for it.
    assert_eq!(q(&mut t, &["LPUSH", "q", "w"]), "1");
}

/// The keepalive timer (seconds) on the connection process `pid` holds to
/// local TCP port `port`, once it has one.
fn keepalive_of_link(pid: u32, port: u16) -> Option<f64> {
    let out = Command::new("ss").args(["-tnopH", "state", "established"]).output().expect("ss");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() >= 5 && cols[3].ends_with(&format!(":{port}")) && l.contains(&format!("pid={pid},"))
    })?;
    parse_timer(line.split("timer:(keepalive,").nth(1)?.split(',').next()?)
}

#[test]
fn a_replica_keeps_its_link_to_the_master_alive_as_redis() {
    if !common::has_program("ss") {
        eprintln!("*** SKIPPED: no `ss` on this machine ***");
        return;
    }
    let mut pairs = Vec::new();
    let master = common::moonshard(&[]);
    let port = master.port.to_string();
    let replica = common::moonshard(&["--tcp-keepalive", "50", "--replicaof", "127.0.0.1", &port]);
    pairs.push(("moonshard", master, replica));
    if let Some(master) = common::redis_server() {
        let port = master.port.to_string();
        let replica = common::redis_server_with(&["--tcp-keepalive", "50", "--replicaof", "127.0.0.1", &port]);
        pairs.push(("redis-server", master, replica.expect("a second redis-server")));
    }
    for (name, master, replica) in &pairs {
        let mut t = None;
        common::wait_until(30, "the replica's link to have keepalive", || {
            t = keepalive_of_link(replica.child.id(), master.port);
            t.is_some()
        });
        let t = t.unwrap();
        assert!(t > 30.0 && t <= 50.0, "{name}: first probe in {t} s");
    }
}

#[test]
fn relative_socket_and_pid_paths_are_taken_from_dir_as_redis() {
    let run = |program: &str| {
        let dir = common::temp_dir("relative");
        let mut s = start_in(dir.clone(), program, 0, &["--unixsocket", "rel.sock", "--pidfile", "rel.pid"]);
        s.sock = dir.join("rel.sock");
        let pid = read_pid(&dir.join("rel.pid"));
        let info = unix_exchange(&s.sock, b"CLIENT INFO\r\n");
        let seen = (field(&info, "addr"), field(&info, "laddr"), pid == Some(s.child.id() as i32));
        let _ = unix_exchange(&s.sock, b"SHUTDOWN NOSAVE\r\n");
        s.wait_exit();
        let left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        (seen, left)
    };
    let ours = run(env!("CARGO_BIN_EXE_moonshard"));
    assert_eq!(ours, (("rel.sock:0".to_string(), "rel.sock:0".to_string(), true), vec!["log".to_string()]));
    if common::has_program("redis-server") {
        assert_eq!(ours, run("redis-server"));
    }
}
