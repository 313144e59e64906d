//! Set values.

use bytes::Bytes;
use std::collections::HashSet;

pub type Set = HashSet<Bytes, ahash::RandomState>;
