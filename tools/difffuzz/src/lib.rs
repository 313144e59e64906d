//! difffuzz: a randomized differential fuzzer. It starts moonshard and a
//! redis-server 7.0 on loopback, draws commands from Redis's own command
//! declarations, sends both servers the same byte stream and compares the
//! replies byte for byte. Known, documented differences are filtered by the
//! declared rules in `rules.rs`; every other difference is minimized to a
//! short redis-cli script and reported, with crashes, hangs and RSS growth.

pub mod conn;
pub mod docs;
pub mod fuzz;
pub mod gen;
pub mod lua;
pub mod minimize;
pub mod report;
pub mod resp;
pub mod rules;
pub mod server;

pub use fuzz::{run, Config, Summary};
