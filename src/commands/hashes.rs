//! Hashes commands.
