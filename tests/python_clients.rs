//! Real Python clients (redis-py from PyPI, in a venv under target/).
//! Skips loudly when python3 is missing, unless MOONSHARD_REQUIRE_REDIS=1.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn venv_python() -> Option<PathBuf> {
    let required = std::env::var("MOONSHARD_REQUIRE_REDIS").as_deref() == Ok("1");
    if !common::has_program("python3") {
        assert!(!required, "python3 is required (MOONSHARD_REQUIRE_REDIS=1) but not installed");
        eprintln!("\n*** SKIPPED: python3 not on PATH; Python client tests not run ***\n");
        return None;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("py-venv");
    let python = dir.join("bin").join("python");
    if !python.exists() {
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&dir).status().map(|s| s.success()).unwrap_or(false);
        if !ok {
            assert!(!required, "could not create a Python venv");
            eprintln!("\n*** SKIPPED: python3 -m venv failed; Python client tests not run ***\n");
            return None;
        }
    }
    let has_redis = Command::new(&python).args(["-c", "import redis"]).status().map(|s| s.success()).unwrap_or(false);
    if !has_redis {
        let ok = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "redis"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            assert!(!required, "pip install redis failed");
            eprintln!("\n*** SKIPPED: pip install redis failed (offline?); Python client tests not run ***\n");
            return None;
        }
    }
    Some(python)
}

#[test]
fn seed_script_with_redis_py() {
    let Some(python) = venv_python() else { return };
    let srv = common::moonshard(&["--shards", "4"]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/seed_script.py");
    let out = Command::new(python).arg(script).arg(srv.port.to_string()).output().expect("run python");
    assert!(
        out.status.success(),
        "seed script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("seed ok"));
}
