//! Node.js with tests/node's packages (BullMQ, ioredis, node-redis), installed from the
//! committed lock file (`npm ci`) on first use. Tests run in parallel and
//! test binaries may too, so the install is serialized with a file lock
//! (two `npm ci` at once race on node_modules). Skips loudly without node
//! or npm, unless MOONSHARD_REQUIRE_REDIS=1 (CI), where it fails instead.
//!
//! Include with `#[path = "common/node.rs"] mod node;` next to `mod common;`.

use std::path::PathBuf;
use std::process::Command;

/// tests/node: the packages and the JavaScript programs.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("node")
}

/// True when node and the packages are ready; false (after a loud note
/// naming `what` did not run) when the test should be skipped.
pub fn packages_ready(what: &str) -> bool {
    let required = std::env::var("MOONSHARD_REQUIRE_REDIS").is_ok_and(|v| v == "1");
    let skip = |why: String| {
        assert!(!required, "{why} (MOONSHARD_REQUIRE_REDIS=1)");
        eprintln!("\n*** SKIPPED: {why}; {what} did not run ***\n");
        false
    };
    if !crate::common::has_program("node") || !crate::common::has_program("npm") {
        return skip("node and npm are not on PATH".into());
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&target);
    let Ok(lock) = std::fs::File::create(target.join("npm.lock")) else {
        return skip("cannot create target/npm.lock".into());
    };
    // Held until this function returns: one installer at a time.
    if lock.lock().is_err() {
        return skip("cannot lock target/npm.lock".into());
    }
    // Every package of package.json (an older install may lack a newer one).
    if ["bullmq", "ioredis", "redis"].iter().all(|p| dir().join("node_modules").join(p).exists()) {
        return true;
    }
    match Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir()).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => skip(format!("npm ci failed:\n{}", String::from_utf8_lossy(&out.stderr))),
        Err(e) => skip(format!("npm could not start: {e}")),
    }
}
