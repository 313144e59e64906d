//! Real Node.js applications against moonshard: BullMQ (queues, workers,
//! retries with backoff, queue events over streams) and ioredis's
//! `defineCommand` with its NOSCRIPT recovery. The JavaScript side is
//! tests/node/bullmq.test.mjs, run with node's built-in test runner.
//!
//! Needs `node` and `npm`; without them the test skips loudly, unless
//! MOONSHARD_REQUIRE_REDIS=1 (CI), where it fails instead. Packages come from
//! the committed lock file (`npm ci`) when tests/node/node_modules is missing.
#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "common/node.rs"]
mod node;

use std::process::Command;

#[test]
fn bullmq_and_ioredis_end_to_end() {
    if !node::packages_ready("the BullMQ and ioredis tests") {
        return;
    }
    let server = common::moonshard(&["--shards", "4"]);
    run_node(&server, "{jobs}");
}

/// BullMQ with its default `bull` prefix (keys of a queue in many slots),
/// as a standalone-Redis application uses it: `keyspace-mode standalone`.
#[test]
fn bullmq_default_prefix_in_standalone_mode() {
    if !node::packages_ready("the BullMQ and ioredis tests") {
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
        .current_dir(node::dir())
        .output()
        .expect("node could not start");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node --test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(stdout.contains("# fail 0"), "{stdout}");
}

/// ioredis over TLS with a client certificate (tests/node/ioredis_tls.mjs).
#[test]
fn ioredis_over_tls() {
    if !node::packages_ready("the BullMQ and ioredis tests") {
        return;
    }
    let Some(c) = certs::certs() else { return };
    let tls_port = common::free_port();
    let mut flags = certs::tls_flags(&c, tls_port, "yes");
    flags.extend(["--port".to_string(), common::free_port().to_string()]);
    let _server = common::moonshard(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    let out = Command::new("node")
        .arg("ioredis_tls.mjs")
        .env("MOONSHARD_TLS_PORT", tls_port.to_string())
        .env("MOONSHARD_CA", c.path("ca.crt"))
        .env("MOONSHARD_CERT", c.path("client.crt"))
        .env("MOONSHARD_KEY", c.path("client.key"))
        .current_dir(node::dir())
        .output()
        .expect("node could not start");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.contains("ioredis tls ok"), "--- stdout\n{stdout}\n--- stderr\n{stderr}");
}
