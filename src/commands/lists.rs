//! Lists commands.
