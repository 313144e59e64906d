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

// ------------------------------------------------------------ oom-score-adj

/// The process's `oom_score_adj` before `oom-score-adj` first changed it
/// (None: not changed), given back when the option is turned off.
static OOM_BASE: parking_lot::Mutex<Option<i32>> = parking_lot::Mutex::new(None);

const OOM_SCORE_ADJ: &str = "/proc/self/oom_score_adj";

/// `oom-score-adj` (`no`, `yes` = `relative`, `absolute`) and
/// `oom-score-adj-values` (master, replica, background child): sets the
/// Linux OOM killer's score of this process for its role, as Redis's
/// setOOMScoreAdj does (relative scores add to the score the process had).
/// Called at start-up, on CONFIG SET of either and on a role change. Err:
/// the score could not be read or written (logged by the caller).
pub fn apply_oom_score_adj(config: &Config, replica: bool) -> Result<(), String> {
    let mode = config.get("oom-score-adj").unwrap_or_default();
    let mut base = OOM_BASE.lock();
    let value = if mode == "no" {
        match base.take() {
            Some(b) => b,
            None => return Ok(()),
        }
    } else {
        let b = match *base {
            Some(b) => b,
            None => {
                let text =
                    std::fs::read_to_string(OOM_SCORE_ADJ).map_err(|e| format!("Unable to read oom_score_adj: {e}"))?;
                let b = text.trim().parse().unwrap_or(0);
                *base = Some(b);
                b
            }
        };
        let values = config.get("oom-score-adj-values").unwrap_or_default();
        let class: i32 = values.split_whitespace().nth(usize::from(replica)).and_then(|v| v.parse().ok()).unwrap_or(0);
        let relative = mode != "absolute";
        (if relative { class + b } else { class }).clamp(-1000, 1000)
    };
    std::fs::write(OOM_SCORE_ADJ, format!("{value}\n")).map_err(|e| format!("Unable to write oom_score_adj: {e}"))
}

// ------------------------------------------------------------ crash report

/// A panic (DEBUG PANIC/ASSERT, `propagation-error-behavior panic`) after
/// its report: under `use-exit-on-panic` the process exits with status 1 (no
/// core dump), as Redis's serverPanic does; otherwise the caller aborts.
pub fn exit_on_panic_if_asked(config: &Config) {
    if config.get("use-exit-on-panic").as_deref() == Some("yes") {
        std::process::exit(1);
    }
}

/// Where the crash report goes: a leaked C string naming `logfile`, or null
/// for standard output (read by the signal handler, which must not lock).
static CRASH_LOG_PATH: std::sync::atomic::AtomicPtr<libc::c_char> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
static CRASH_LOG_ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Follows `logfile` and `crash-log-enabled` (at start-up and after CONFIG SET).
pub fn crash_log_follow(config: &Config) {
    use std::sync::atomic::Ordering;
    CRASH_LOG_ENABLED.store(config.get("crash-log-enabled").as_deref() != Some("no"), Ordering::Relaxed);
    let file = config.get("logfile").unwrap_or_default();
    let current = CRASH_LOG_PATH.load(Ordering::Acquire);
    // SAFETY: a non-null pointer here was made by `CString::into_raw` below
    // and is never freed, so it is a valid NUL-terminated string.
    let same = !current.is_null() && unsafe { std::ffi::CStr::from_ptr(current) }.to_bytes() == file.as_bytes();
    if same || (current.is_null() && file.is_empty()) {
        return;
    }
    // The old name is leaked on purpose: a handler may be reading it.
    let next = std::ffi::CString::new(file.clone()).ok().filter(|_| !file.is_empty());
    CRASH_LOG_PATH.store(next.map_or(std::ptr::null_mut(), std::ffi::CString::into_raw), Ordering::Release);
}

/// Installs the handlers that log a crash report on SIGSEGV, SIGBUS,
/// SIGFPE, SIGILL and SIGABRT (a `kill -ABRT` included) before the process
/// dies of the same signal, as Redis's `sigsegvHandler` does: supervisors
/// and operators look for "crashed by signal" in the log.
pub fn install_crash_handlers() {
    for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGABRT] {
        // SAFETY: `act` is zeroed then filled as sigaction(2) documents; the
        // handler has the SA_SIGINFO signature and only calls functions that
        // are async-signal-safe (clock_gettime, open, write, close, signal,
        // raise) on stack buffers.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_fatal_signal as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER | libc::SA_RESETHAND;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

/// A fixed buffer that `write!` fills without allocating.
struct StackBuf {
    buf: [u8; 256],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" fn on_fatal_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    if CRASH_LOG_ENABLED.load(std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
        let (code, sender) = unsafe {
            let i = &*info;
            (i.si_code, (i.si_code == libc::SI_USER).then(|| (i.si_pid(), i.si_uid())))
        };
        report_crash(sig, code, sender);
    }
    // SAFETY: SA_RESETHAND already restored the default action; raising the
    // signal again ends the process by it (a core dump where enabled).
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

fn report_crash(sig: i32, code: i32, sender: Option<(libc::pid_t, libc::uid_t)>) {
    use std::fmt::Write;
    let path = CRASH_LOG_PATH.load(std::sync::atomic::Ordering::Acquire);
    // SAFETY: `path` is null or a leaked valid C string; open/write/close
    // are async-signal-safe and get valid buffers.
    let fd = if path.is_null() {
        1
    } else {
        unsafe { libc::open(path, libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT, 0o644) }
    };
    if fd < 0 {
        return;
    }
    let mut ts: libc::timespec = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    let now = std::time::Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32);
    let role = if crate::storage::replica_expiry() { 'S' } else { 'M' };
    let pid = std::process::id();
    let line = |text: std::fmt::Arguments| {
        let mut b = StackBuf { buf: [0; 256], len: 0 };
        let _ = write!(b, "{pid}:{role} ");
        let _ = crate::net::listener::write_log_time(&mut b, now);
        let _ = writeln!(b, " # {text}");
        // SAFETY: writes `len` initialized bytes of `b.buf`.
        unsafe { libc::write(fd, b.buf.as_ptr().cast(), b.len) };
    };
    line(format_args!("=== MOONSHARD BUG REPORT START: Cut & paste starting from here ==="));
    line(format_args!("moonshard {} crashed by signal: {sig}, si_code: {code}", env!("CARGO_PKG_VERSION")));
    if let Some((pid, uid)) = sender {
        line(format_args!("Killed by PID: {pid}, UID: {uid}"));
    }
    line(format_args!("=== MOONSHARD BUG REPORT END ==="));
    if fd != 1 {
        // SAFETY: `fd` was opened above.
        unsafe { libc::close(fd) };
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
