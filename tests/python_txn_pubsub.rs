//! redis-py (from PyPI, in a venv at target/pyvenv) against moonshard:
//! transactional pipelines, WATCH, pub/sub in RESP2 and RESP3, keyspace
//! notifications. Skips loudly when python3 or pip cannot provide redis-py,
//! unless MOONSHARD_REQUIRE_REDIS=1.

mod common;

#[path = "common/python.rs"]
mod python;

#[test]
fn redis_py_transactions_and_pubsub() {
    let Some(py) = python::venv_python() else { return };
    let srv = common::moonshard(&["--shards", "4"]);
    python::run_script(&py, "test_txn_pubsub.py", srv.port, "txn-pubsub ok");
}
