//! Networking: the listener, the per-connection loop, the client registry.

pub mod client;
pub mod connection;
pub mod eviction;
pub mod limits;
pub mod listener;
pub mod outbound;
pub mod tls;
