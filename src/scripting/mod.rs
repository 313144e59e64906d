//! Lua scripting: one sandboxed Lua 5.1 VM per shard, a global script cache.

/// A shard's scripting state: its Lua VM and the scripts compiled into it.
#[derive(Default)]
pub struct ShardScripting {}

/// The global script cache (SHA1 → source), shared by every connection.
#[derive(Default)]
pub struct ScriptCache {}
