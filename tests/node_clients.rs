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

/// node-redis (the `redis` package, v5) step by step against moonshard and
/// against redis-server 7.0, RESP2 and RESP3: every type's commands through
/// the library's own reply transforms, SCAN iterators, MULTI and WATCH,
/// scripts and functions, blocking pops on duplicated clients, pub/sub
/// (plain, pattern and sharded), CLIENT/HELLO/COMMAND/CONFIG introspection
/// and error texts. Each step's result must be the same line from both
/// (tests/node/node_redis_steps.mjs; orders Redis leaves unspecified are
/// sorted there).
#[test]
fn node_redis_steps_answer_as_redis_server_does() {
    if !node::packages_ready("the node-redis steps") {
        return;
    }
    let Some(theirs) = common::redis_server() else { return };
    let ours = common::moonshard(&["--shards", "4"]);
    let steps = |port: u16, resp: &str| {
        let out = Command::new("node")
            .args(["node_redis_steps.mjs", &port.to_string(), resp])
            .current_dir(node::dir())
            .output()
            .expect("node could not start");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "node failed\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    for resp in ["2", "3"] {
        let (a, b) = (steps(ours.port, resp), steps(theirs.port, resp));
        assert!(b.lines().count() > 80, "redis-server's run stopped early:\n{b}");
        assert!(!a.contains("TIMEOUT") && !b.contains("TIMEOUT"), "a step hung:\n{a}\n{b}");
        for (x, y) in a.lines().zip(b.lines()) {
            assert_eq!(x, y, "RESP{resp}: moonshard's line, then redis-server's");
        }
        assert_eq!(a.lines().count(), b.lines().count(), "RESP{resp}");
    }
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
