//! Sets commands.
