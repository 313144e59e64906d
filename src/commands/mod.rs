//! Commands: what a declaration is (`spec`), the registry that collects the
//! families (`registry`), the execution contexts handed to handlers, and one
//! module per command family, each declaring its commands next to its handlers.

pub mod ctx;
pub mod dispatch;
pub mod registry;
pub mod spec;
pub mod syntax;

pub mod acl;
pub mod bitmaps;
pub mod blocking;
pub mod cluster;
pub mod connection;
pub mod debug;
pub mod dump;
pub mod geo;
pub mod hashes;
pub mod help;
pub mod hyperloglog;
pub mod keys;
pub mod lists;
pub mod lolwut;
pub mod memory;
pub mod module;
pub mod pubsub;
pub mod replication;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod zsets;

pub use ctx::{ConnCtx, Ctx, KeyRoute, KeyRoutes};
pub use registry::lookup;
pub use spec::{CommandSpec, Exec, Group, KeySpec};
