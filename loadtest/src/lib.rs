//! loadtest: a load generator for Redis-compatible servers, and the driver
//! that measures moonshard against redis-server (`loadtest compare`).
//!
//! How to run it and read its output: docs/PERFORMANCE.md.

pub mod cli;
pub mod client;
pub mod compare;
pub mod report;
pub mod resp;
pub mod run;
pub mod seed;
pub mod slot;
pub mod workload;

pub use cli::{main_with_args, run_parsed};
