//! The Python venv shared by every test that drives moonshard with redis-py:
//! one venv at target/pyvenv with redis-py 5, created on first use. Test
//! binaries run in parallel, so creation is serialized with a file lock.
//! Skips loudly when python3 or pip cannot provide redis-py, unless
//! MOONSHARD_REQUIRE_REDIS=1 (CI), where it fails instead.
//!
//! Include with `#[path = "common/python.rs"] mod python;` next to `mod common;`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn skip(why: &str) -> Option<PathBuf> {
    assert!(std::env::var("MOONSHARD_REQUIRE_REDIS").as_deref() != Ok("1"), "{why} (MOONSHARD_REQUIRE_REDIS=1)");
    eprintln!("\n*** SKIPPED: {why}; redis-py tests not run ***\n");
    None
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.status().map(|s| s.success()).unwrap_or(false)
}

/// The venv's python with redis-py 5 installed.
pub fn venv_python() -> Option<PathBuf> {
    if !crate::common::has_program("python3") {
        return skip("python3 is not on PATH");
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&target);
    let Ok(lock) = std::fs::File::create(target.join("pyvenv.lock")) else {
        return skip("cannot create target/pyvenv.lock");
    };
    // Held until this function returns: one creator at a time.
    if lock.lock().is_err() {
        return skip("cannot lock target/pyvenv.lock");
    }
    let dir = target.join("pyvenv");
    let python = dir.join("bin").join("python");
    if !python.exists() && !succeeds(Command::new("python3").args(["-m", "venv"]).arg(&dir)) {
        return skip("python3 -m venv failed");
    }
    let import = "import redis, sys; sys.exit(0 if redis.__version__.startswith('5.') else 1)";
    if !succeeds(Command::new(&python).args(["-c", import]))
        && !succeeds(Command::new(&python).args(["-m", "pip", "install", "--quiet", "redis==5.*"]))
    {
        return skip("pip install redis==5.* failed (offline?)");
    }
    Some(python)
}

/// Runs tests/python/`script` with the server's port as its argument and
/// asserts that it exits cleanly after printing `marker`.
pub fn run_script(python: &Path, script: &str, port: u16, marker: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script);
    let out = Command::new(python).arg(path).arg(port.to_string()).output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(marker),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
