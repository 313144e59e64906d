//! Cluster-aware clients against a 3-master moonshard cluster, across a
//! `redis-cli --cluster reshard`: redis-py's `RedisCluster`
//! (tests/python/cluster_apps.py) and ioredis's `Cluster` with BullMQ
//! (tests/node/cluster_apps.mjs) run EVALSHA with hash tags, pipelines,
//! pub/sub and (node) a BullMQ queue with a `{prefix}`, once before the
//! resharding and once after (which also reads back what the first run
//! wrote). Skips loudly when python3, node or the packages are missing.

#[path = "common/cluster.rs"]
mod cluster_util;
mod common;
#[path = "common/node.rs"]
mod node;
#[path = "common/python.rs"]
#[allow(dead_code)]
mod python;

use cluster_util::*;
use common::Proc;
use std::path::PathBuf;
use std::process::Command;

/// Runs a client program with a deadline; asserts it printed `marker`.
fn run(mut cmd: Command, marker: &str) {
    let child =
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("client program");
    let (out, _) = common::output_within(child, 60);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(marker),
        "{marker}: failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn clients(node: &Proc, phase: &str, py: &Option<PathBuf>, node_js: bool) {
    if let Some(py) = py {
        let mut c = Command::new(py);
        c.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/cluster_apps.py"));
        c.arg(node.port.to_string()).arg(phase);
        run(c, &format!("cluster apps {phase} ok"));
    }
    if node_js {
        let mut c = Command::new("node");
        c.arg("cluster_apps.mjs").arg(node.port.to_string()).arg(phase).current_dir(node::dir());
        run(c, &format!("cluster apps {phase} ok"));
    }
}

#[test]
fn redis_py_and_ioredis_clusters_across_a_resharding() {
    if !tools_present() {
        return;
    }
    let py = python::venv_python();
    let node_js = node::packages_ready("the ioredis Cluster run");
    if py.is_none() && !node_js {
        return;
    }
    let nodes = [ms_node(&[]), ms_node(&[]), ms_node(&[])];
    let refs: Vec<&Proc> = nodes.iter().collect();
    form(&refs);
    clients(&nodes[0], "before", &py, node_js);
    let keys_before: i64 = nodes.iter().map(|n| cli(n.port, &["dbsize"]).trim().parse::<i64>().unwrap()).sum();
    // The first node's first slots (with keys of both runs) go to the second
    // (each slot moved costs several nodes.conf rewrites: a few only).
    let out = cluster_tool(&[
        "reshard".into(),
        addr(&nodes[2]),
        "--cluster-from".into(),
        myid(&nodes[0]),
        "--cluster-to".into(),
        myid(&nodes[1]),
        "--cluster-slots".into(),
        "120".into(),
        "--cluster-yes".into(),
    ]);
    assert!(!out.contains("[ERR]") && out.contains("Moving slot"), "{out}");
    let keys_after: i64 = nodes.iter().map(|n| cli(n.port, &["dbsize"]).trim().parse::<i64>().unwrap()).sum();
    assert_eq!(keys_before, keys_after);
    let moved: i64 = (0..100)
        .map(|s| cli(nodes[1].port, &["cluster", "countkeysinslot", &s.to_string()]).trim().parse::<i64>().unwrap())
        .sum();
    assert!(moved >= 40, "{moved} keys moved");
    wait_ok(&refs);
    clients(&nodes[2], "after", &py, node_js);
}
