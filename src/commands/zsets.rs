//! Zsets commands.
