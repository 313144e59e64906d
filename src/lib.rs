//! moonshard: a Redis-compatible in-memory data server with per-core shards.
//!
//! Map of the code: `docs/ARCHITECTURE.md`.

pub mod acl;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod net;
pub mod persist;
pub mod process;
pub mod propagate;
pub mod protocol;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod session;
pub mod shard;
pub mod stats;
pub mod storage;
pub mod util;

use std::sync::Arc;

/// Builds the runtime and serves until shutdown. Used by `main` and tests.
pub fn run(config: config::Config) -> std::io::Result<()> {
    let mut server = server::Server::new(config);
    if let Err(e) = cluster::link::open(&mut server) {
        net::listener::log(&server, "warning", &e);
        return Err(std::io::Error::other(e));
    }
    let server = Arc::new(server);
    server.shared();
    if let Err(e) =
        process::apply_oom_score_adj(&server.config, server.config.get("replicaof").is_some_and(|r| !r.is_empty()))
    {
        net::listener::log(&server, "warning", &e);
    }
    if let Err(e) = commands::acl::load_at_startup(&server) {
        net::listener::log(&server, "warning", &e);
        return Err(std::io::Error::other(e));
    }
    storage::alloc::start_decay_thread();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server.io_threads)
        .thread_name(RUNTIME_THREAD_NAME)
        .enable_all()
        .build()?;
    let result = runtime.block_on(net::listener::serve(server.clone(), None));
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    persist::aof::disable(&server);
    result
}

/// The Redis version whose behaviour moonshard matches (INFO's `redis_version`).
pub const REDIS_VERSION: &str = "7.0.15";

/// The name of the runtime's threads (the ones that serve clients; INFO
/// CPU finds them by it).
pub const RUNTIME_THREAD_NAME: &str = "moonshard-io";

#[cfg(test)]
mod layering {
    //! The layers the code is organised in, checked on the source: lower
    //! layers never reach up (storage and shard know nothing of commands,
    //! scripting, sessions or the network; configuration knows nothing of
    //! pub/sub).

    fn sources(dir: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src").join(dir)];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                for e in std::fs::read_dir(&p).unwrap() {
                    stack.push(e.unwrap().path());
                }
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
            }
        }
        assert!(!out.is_empty(), "no sources under src/{dir}");
        out
    }

    fn forbid(dir: &str, uppers: &[&str]) {
        for (path, text) in sources(dir) {
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for up in uppers {
                    assert!(!line.contains(up), "{path} reaches up into {up}: {line}");
                }
            }
        }
    }

    #[test]
    fn storage_and_shard_import_nothing_above_them() {
        let uppers = ["crate::commands", "crate::scripting", "crate::session", "crate::net", "crate::cluster"];
        forbid("storage", &uppers);
        forbid("shard", &uppers);
    }

    #[test]
    fn config_does_not_import_pubsub() {
        forbid("config", &["crate::pubsub"]);
    }
}
