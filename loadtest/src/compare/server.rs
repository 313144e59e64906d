//! Starting the servers under test on free loopback ports, pinned to CPUs.

use crate::client::{info_field, Client};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Moonshard,
    Redis,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Moonshard => "moonshard",
            Kind::Redis => "redis-server",
        }
    }
}

/// Where the programs are and how to pin them.
#[derive(Clone, Debug)]
pub struct Programs {
    pub moonshard: PathBuf,
    pub redis_server: PathBuf,
    pub redis_benchmark: PathBuf,
    /// None when `taskset` is missing: runs go unpinned (and the report says so).
    pub taskset: Option<PathBuf>,
    pub log_dir: PathBuf,
}

impl Programs {
    /// A command for `program`, prefixed with `taskset -c cpus` when pinning works.
    pub fn pinned(&self, cpus: &str, program: &Path) -> Command {
        match &self.taskset {
            Some(ts) if !cpus.is_empty() => {
                let mut c = Command::new(ts);
                c.arg("-c").arg(cpus).arg(program);
                c
            }
            _ => Command::new(program),
        }
    }
}

/// A running server, killed on drop.
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    child: Child,
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl Server {
    /// Starts `kind` pinned to `cpus`; `shards` applies to moonshard only.
    pub fn start(p: &Programs, kind: Kind, cpus: &str, shards: usize) -> Result<Server, String> {
        let port = free_port()?;
        let (program, args): (&Path, Vec<String>) = match kind {
            Kind::Moonshard => (
                &p.moonshard,
                vec![
                    "--port".into(),
                    port.to_string(),
                    "--shards".into(),
                    shards.to_string(),
                    "--loglevel".into(),
                    "warning".into(),
                    // No persistence, as the redis-server it is compared with.
                    "--save".into(),
                    "".into(),
                    "--appendonly".into(),
                    "no".into(),
                ],
            ),
            Kind::Redis => (
                &p.redis_server,
                [
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--loglevel",
                    "warning",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ),
        };
        let log = std::fs::File::create(p.log_dir.join(format!("{}-{port}.log", kind.label())))
            .map_err(|e| format!("log file: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = p
            .pinned(cpus, program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {}: {e}", program.display()))?;
        let mut server = Server { kind, port, child };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited at start ({status}); see its log", self.kind.label()));
            }
            if let Ok(mut c) = Client::connect(&self.addr(), Duration::from_secs(2)) {
                if c.call_str(&["PING"]).is_ok() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("{} did not answer PING within 20s", self.kind.label()))
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> Result<Client, String> {
        Client::connect(&self.addr(), Duration::from_secs(30))
            .map_err(|e| format!("connect {}: {e}", self.kind.label()))
    }

    /// `taskset` execs the server, so the child's pid is the server's.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in bytes, from /proc.
    pub fn rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let kb: u64 = info_field(&status, "VmRSS")?.trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    }

    /// INFO memory's used_memory, if the server reports it.
    pub fn used_memory(&self) -> Option<u64> {
        let info = self.client().ok()?.call_str(&["INFO", "memory"]).ok()?.as_text()?;
        info_field(&info, "used_memory")?.parse().ok()
    }

    pub fn dbsize(&self) -> Option<u64> {
        match self.client().ok()?.call_str(&["DBSIZE"]).ok()? {
            crate::resp::Value::Int(n) => u64::try_from(n).ok(),
            _ => None,
        }
    }

    /// Empties the server between runs so each starts from the same state.
    pub fn flush(&self) -> Result<(), String> {
        match self.client()?.call_str(&["FLUSHALL"])? {
            crate::resp::Value::Error(e) => Err(format!("FLUSHALL on {}: {e}", self.kind.label())),
            _ => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses a CPU list such as `0`, `0-3` or `0,2,4-5` into its size (for
/// choosing thread and shard counts); None when malformed.
pub fn cpu_count(list: &str) -> Option<usize> {
    let mut n = 0usize;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.trim().parse::<usize>().ok()?;
                n += 1;
            }
        }
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists() {
        assert_eq!(super::cpu_count("0"), Some(1));
        assert_eq!(super::cpu_count("0-3,8"), Some(5));
        assert_eq!(super::cpu_count("3-1"), None);
        assert_eq!(super::cpu_count(""), None);
    }
}
