//! The process around the server: `daemonize` (into the background before
//! anything starts) and `pidfile`, as redis-server 7.0 handles them.

use crate::config::Config;
use crate::server::Server;
use std::path::PathBuf;

/// Where Redis writes its pid when daemonized without a `pidfile`.
pub const DEFAULT_PIDFILE: &str = "/var/run/redis.pid";

/// Whether the server goes into the background: `daemonize yes`, unless a
/// supervisor (`supervised upstart|systemd|auto`, with the supervisor's
/// variable in the environment) keeps the process in the foreground, as
/// Redis decides it.
pub fn background(config: &Config) -> bool {
    if config.get("daemonize").as_deref() != Some("yes") {
        return false;
    }
    let upstart = std::env::var_os("UPSTART_JOB").is_some();
    let systemd = std::env::var_os("NOTIFY_SOCKET").is_some();
    let supervised = match config.get("supervised").as_deref() {
        Some("upstart") => upstart,
        Some("systemd") => systemd,
        Some("auto") => upstart || systemd,
        _ => false,
    };
    !supervised
}

/// Goes into the background as Redis does: the launching process exits 0 at
/// once, the child leads a new session with its standard input, output and
/// error on /dev/null (so with no `logfile` the log goes nowhere). A
/// daemonized server without a `pidfile` writes Redis's default one.
///
/// Must run before any thread exists (no runtime, no logging thread): only
/// the calling thread survives a fork.
pub fn daemonize(config: &Config) {
    if config.get("pidfile").unwrap_or_default().is_empty() {
        let _ = config.set("pidfile", DEFAULT_PIDFILE, true);
    }
    // SAFETY: the process has a single thread here (main calls this before
    // the runtime or any other thread starts), so the child is a complete
    // copy of it; the parent only exits. fork touches no Rust-visible memory.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        // No child: stay in the foreground rather than not run at all.
        eprintln!("moonshard: fork failed: {}", std::io::Error::last_os_error());
        return;
    }
    if pid > 0 {
        std::process::exit(0);
    }
    // SAFETY: plain system calls on descriptors this process owns: a new
    // session, /dev/null opened (the path is a NUL-terminated literal) and
    // duplicated onto 0, 1 and 2, then the spare descriptor closed.
    unsafe {
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0);
        if fd != -1 {
            libc::dup2(fd, libc::STDIN_FILENO);
            libc::dup2(fd, libc::STDOUT_FILENO);
            libc::dup2(fd, libc::STDERR_FILENO);
            if fd > libc::STDERR_FILENO {
                libc::close(fd);
            }
        }
    }
}

/// A path from the configuration as Redis opens it: Redis works in `dir`,
/// so a relative path is taken from there.
pub fn in_dir(config: &Config, path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    match config.get("dir").filter(|d| !d.is_empty()) {
        Some(dir) if path.is_relative() => PathBuf::from(dir).join(path),
        _ => path,
    }
}

/// Writes the pid and a newline to `pidfile`, when one is set (daemonizing
/// set Redis's default). Best effort, as in Redis 7.0: a file that cannot
/// be written is silently skipped.
pub fn write_pidfile(server: &Server) {
    let file = server.config.get("pidfile").unwrap_or_default();
    if !file.is_empty() {
        let _ = std::fs::write(in_dir(&server.config, &file), format!("{}\n", std::process::id()));
    }
}

/// Removes `pidfile` at shutdown (logged as Redis logs it).
pub fn remove_pidfile(server: &Server) {
    let file = server.config.get("pidfile").unwrap_or_default();
    if !file.is_empty() {
        crate::net::listener::log(server, "notice", "Removing the pid file.");
        let _ = std::fs::remove_file(in_dir(&server.config, &file));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_only_when_daemonized_and_unsupervised() {
        let cfg = Config::default();
        assert!(!background(&cfg));
        cfg.set("daemonize", "yes", true).unwrap();
        let upstart = std::env::var_os("UPSTART_JOB").is_some();
        let systemd = std::env::var_os("NOTIFY_SOCKET").is_some();
        assert!(background(&cfg), "supervised no");
        cfg.set("supervised", "upstart", true).unwrap();
        assert_eq!(background(&cfg), !upstart, "upstart without UPSTART_JOB still forks");
        cfg.set("supervised", "systemd", true).unwrap();
        assert_eq!(background(&cfg), !systemd, "systemd without NOTIFY_SOCKET still forks");
        cfg.set("supervised", "auto", true).unwrap();
        assert_eq!(background(&cfg), !(upstart || systemd));
    }

    #[test]
    fn relative_paths_are_taken_from_dir() {
        let cfg = Config::default();
        cfg.set("dir", "/srv/data", true).unwrap();
        assert_eq!(in_dir(&cfg, "redis.sock"), PathBuf::from("/srv/data/redis.sock"));
        assert_eq!(in_dir(&cfg, "/run/redis.pid"), PathBuf::from("/run/redis.pid"));
    }
}
