//! Real Node.js applications against moonshard: BullMQ (queues, workers,
//! retries with backoff, queue events over streams) and ioredis's
//! `defineCommand` with its NOSCRIPT recovery. The JavaScript side is
//! tests/node/bullmq.test.mjs, run with node's built-in test runner.
//!
//! Needs `node` and `npm`; without them the test skips loudly, unless
//! MOONSHARD_REQUIRE_REDIS=1 (CI), where it fails instead. Packages come from
//! the committed lock file (`npm ci`) when tests/node/node_modules is missing.
mod common;

use std::path::PathBuf;
use std::process::Command;

fn required() -> bool {
    std::env::var("MOONSHARD_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("node")
}

/// True when node and the packages are ready; false (after a loud note)
/// when the test should be skipped.
fn prepare() -> bool {
    if !common::has_program("node") || !common::has_program("npm") {
        assert!(!required(), "node and npm are required (MOONSHARD_REQUIRE_REDIS=1)");
        eprintln!("SKIPPED: node/npm not found; the BullMQ and ioredis tests did not run");
        return false;
    }
    let dir = node_dir();
    if !dir.join("node_modules").join("bullmq").exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .expect("npm ci could not start");
        if !out.status.success() {
            let msg = format!("npm ci failed:\n{}", String::from_utf8_lossy(&out.stderr));
            assert!(!required(), "{msg}");
            eprintln!("SKIPPED: {msg}");
            return false;
        }
    }
    true
}

#[test]
fn bullmq_and_ioredis_end_to_end() {
    if !prepare() {
        return;
    }
    let server = common::moonshard(&["--shards", "4"]);
    run_node(&server, "{jobs}");
}

/// BullMQ with its default `bull` prefix (keys of a queue in many slots),
/// as a standalone-Redis application uses it: `keyspace-mode standalone`.
#[test]
fn bullmq_default_prefix_in_standalone_mode() {
    if !prepare() {
        return;
    }
    let server = common::moonshard(&["--shards", "2", "--keyspace-mode", "standalone"]);
    run_node(&server, "bull");
}

fn run_node(server: &common::Proc, prefix: &str) {
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1", "bullmq.test.mjs"])
        .env("MOONSHARD_PORT", server.port.to_string())
        .env("MOONSHARD_BULL_PREFIX", prefix)
        .current_dir(node_dir())
        .output()
        .expect("node could not start");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node --test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
