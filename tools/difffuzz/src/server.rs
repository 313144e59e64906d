//! Starting, watching and stopping the two servers.
//!
//! Both run on free loopback ports. A spawned server is killed by pid when
//! its `Server` is dropped, which also happens while a panic unwinds.

use std::collections::VecDeque;
use std::io::BufRead;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub enum Launch {
    /// Spawn moonshard from this binary with these extra flags.
    Moonshard { bin: PathBuf, flags: Vec<String> },
    /// Spawn redis-server (this program) with these extra flags.
    Redis { bin: PathBuf, flags: Vec<String> },
    /// Use a server someone else started (no crash or RSS watching unless a pid is given).
    Connect { port: u16, pid: Option<u32> },
}

pub struct Server {
    pub name: &'static str,
    pub port: u16,
    launch: Launch,
    child: Option<Child>,
    pid: Option<u32>,
    /// The last lines the process wrote on stderr (panics end up here).
    log: Arc<Mutex<VecDeque<String>>>,
    dir: Option<PathBuf>,
    /// A `sh` loop that kills the server if difffuzz itself dies without
    /// unwinding (SIGKILL, stack overflow): the server never outlives us.
    watchdog: Option<Child>,
    pub starts: u32,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn temp_dir(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("difffuzz-{name}-{}-{n}", std::process::id()))
}

fn keep_tail(log: &Arc<Mutex<VecDeque<String>>>, line: String) {
    if let Ok(mut l) = log.lock() {
        if l.len() >= 400 {
            l.pop_front();
        }
        l.push_back(line);
    }
}

impl Server {
    pub fn start(name: &'static str, launch: Launch) -> Result<Server, String> {
        let mut s = Server {
            name,
            port: 0,
            launch,
            child: None,
            pid: None,
            log: Arc::new(Mutex::new(VecDeque::new())),
            dir: None,
            watchdog: None,
            starts: 0,
        };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> Result<(), String> {
        self.starts += 1;
        match self.launch.clone() {
            Launch::Connect { port, pid } => {
                self.port = port;
                self.pid = pid;
                TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("{}: connect {port}: {e}", self.name))?;
                Ok(())
            }
            Launch::Moonshard { bin, flags } => {
                self.spawn_moonshard(&bin, &flags)?;
                self.arm_watchdog();
                Ok(())
            }
            Launch::Redis { bin, flags } => {
                let mut last = String::new();
                for _ in 0..5 {
                    match self.spawn_redis(&bin, &flags) {
                        Ok(()) => {
                            self.arm_watchdog();
                            return Ok(());
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }

    fn spawn_moonshard(&mut self, bin: &Path, flags: &[String]) -> Result<(), String> {
        let mut child = Command::new(bin)
            .args(["--port", "0", "--loglevel", "notice"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start moonshard from {}: {e}", bin.display()))?;
        // The log is on standard output (as Redis's), a panic on standard
        // error: both feed the tail kept for crash reports.
        let stdout = child.stdout.take().ok_or("moonshard stdout not piped")?;
        let stderr = child.stderr.take().ok_or("moonshard stderr not piped")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("tcp on port ").nth(1) {
                    if let Some(tx) = tx.take() {
                        let port: u16 = rest.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(0);
                        let _ = tx.send(port);
                    }
                }
                keep_tail(&log, line);
            }
        });
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                keep_tail(&log, line);
            }
        });
        self.pid = Some(child.id());
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) if port != 0 => {
                self.port = port;
                Ok(())
            }
            _ => {
                self.kill();
                Err(format!("moonshard did not report its port; log:\n{}", self.log_tail()))
            }
        }
    }

    fn spawn_redis(&mut self, bin: &Path, flags: &[String]) -> Result<(), String> {
        let port = free_port().map_err(|e| e.to_string())?;
        let dir = temp_dir("redis");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        // redis-server logs (crash reports included) on stdout.
        if let Some(stderr) = child.stdout.take() {
            let log = self.log.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                    keep_tail(&log, line);
                }
            });
        }
        self.pid = Some(child.id());
        self.child = Some(child);
        self.dir = Some(dir);
        self.port = port;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if !self.alive() {
                self.kill();
                return Err(format!("redis-server exited at start (port {port} taken?)"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err("redis-server did not start listening".into())
    }

    fn arm_watchdog(&mut self) {
        let Some(pid) = self.pid else { return };
        let script = format!(
            "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; kill -9 {pid} 2>/dev/null",
            me = std::process::id()
        );
        self.watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
    }

    /// Whether the process is still running (always true for `Connect` without a pid).
    pub fn alive(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => match self.pid {
                Some(pid) => Path::new(&format!("/proc/{pid}")).exists(),
                None => true,
            },
        }
    }

    /// How the process ended, if it did.
    pub fn exit_status(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(st)) => Some(st.to_string()),
            _ => None,
        }
    }

    /// Resident set size in KiB, from /proc/<pid>/status.
    pub fn rss_kb(&self) -> Option<u64> {
        let pid = self.pid?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn log_tail(&self) -> String {
        self.log.lock().map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default()
    }

    pub fn can_restart(&self) -> bool {
        !matches!(self.launch, Launch::Connect { .. })
    }

    /// Kills the process (if we started it) and starts a fresh one.
    pub fn restart(&mut self) -> Result<(), String> {
        if !self.can_restart() {
            return Err(format!("{} was not started by difffuzz and cannot be restarted", self.name));
        }
        self.kill();
        if let Ok(mut l) = self.log.lock() {
            l.clear();
        }
        self.spawn()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
