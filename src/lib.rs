//! moonshard: a Redis-compatible in-memory data server with per-core shards.
//!
//! Map of the code: `docs/ARCHITECTURE.md`.

pub mod commands;
pub mod config;
pub mod net;
pub mod persist;
pub mod propagate;
pub mod protocol;
pub mod pubsub;
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
    let server = Arc::new(server::Server::new(config));
    if let Err(e) = persist::aof::open_at_startup(&server) {
        net::listener::log(&server, "warning", &e);
        return Err(std::io::Error::other(e));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server.io_threads)
        .thread_name("moonshard-io")
        .enable_all()
        .build()?;
    let result = runtime.block_on(net::listener::serve(server.clone(), None));
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    persist::aof::disable(&server);
    result
}

/// The Redis version whose behaviour moonshard matches (INFO's `redis_version`).
pub const REDIS_VERSION: &str = "7.0.15";
