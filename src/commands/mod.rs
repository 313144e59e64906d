//! Commands: the declarative table (`table.rs`), the execution contexts
//! handed to handlers, and one module per command family.

pub mod ctx;
pub mod table;

pub mod blocking;
pub mod connection;
pub mod geo;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod pubsub;
pub mod server;
pub mod sets;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod zsets;

pub use ctx::{ConnCtx, Ctx};
pub use table::{lookup, CommandSpec, Exec, Group, KeySpec};

use crate::protocol::Reply;

/// Placeholder handler for table entries whose family has not landed yet.
pub fn not_yet(_ctx: &mut Ctx, args: &[bytes::Bytes]) -> Reply {
    Reply::err(format!("command '{}' is not implemented yet", String::from_utf8_lossy(&args[0]).to_lowercase()))
}
