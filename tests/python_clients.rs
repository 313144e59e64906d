//! Real Python clients (redis-py from PyPI, in the shared venv of
//! tests/common/python.rs): the seed example, redis-py's script helper with
//! its NOSCRIPT recovery, and redis-py's Lock.

mod common;
#[path = "common/python.rs"]
mod python;

#[test]
fn seed_script_with_redis_py() {
    let Some(py) = python::venv_python() else { return };
    let srv = common::moonshard(&["--shards", "4"]);
    python::run_script(&py, "seed_script.py", srv.port, "seed ok");
}

#[test]
fn register_script_noscript_recovery() {
    let Some(py) = python::venv_python() else { return };
    let srv = common::moonshard(&["--shards", "4"]);
    python::run_script(&py, "scripts.py", srv.port, "scripts ok");
}

#[test]
fn redis_py_lock() {
    let Some(py) = python::venv_python() else { return };
    let srv = common::moonshard(&["--shards", "4"]);
    python::run_script(&py, "lock.py", srv.port, "lock ok");
}

/// Standalone-Redis application patterns over untagged keys, run against
/// moonshard in `standalone` mode and against redis-server: the same script
/// passes on both.
#[test]
fn standalone_mode_applications_over_untagged_keys() {
    let Some(py) = python::venv_python() else { return };
    let srv = common::moonshard(&["--shards", "4", "--keyspace-mode", "standalone"]);
    python::run_script(&py, "standalone_apps.py", srv.port, "standalone apps ok");
    if let Some(redis) = common::redis_server() {
        python::run_script(&py, "standalone_apps.py", redis.port, "standalone apps ok");
    }
}
