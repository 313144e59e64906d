//! redis-py (from PyPI, in a venv at target/pyvenv) against moonshard:
//! transactional pipelines, WATCH, pub/sub in RESP2 and RESP3, keyspace
//! notifications. Skips loudly when python3 or pip cannot provide redis-py,
//! unless MOONSHARD_REQUIRE_REDIS=1.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn skip(why: &str) -> Option<PathBuf> {
    assert!(std::env::var("MOONSHARD_REQUIRE_REDIS").as_deref() != Ok("1"), "{why} (MOONSHARD_REQUIRE_REDIS=1)");
    eprintln!("\n*** SKIPPED: {why}; redis-py tests not run ***\n");
    None
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.status().map(|s| s.success()).unwrap_or(false)
}

/// The venv's python with redis-py 5 installed, creating it on first use.
fn venv_python() -> Option<PathBuf> {
    if !common::has_program("python3") {
        return skip("python3 is not on PATH");
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("pyvenv");
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

#[test]
fn redis_py_transactions_and_pubsub() {
    let Some(python) = venv_python() else { return };
    let srv = common::moonshard(&["--shards", "4"]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_txn_pubsub.py");
    let out = Command::new(python).arg(script).arg(srv.port.to_string()).output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("txn-pubsub ok"),
        "redis-py test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
