//! Sorted set values.

use bytes::Bytes;
use std::collections::HashMap;

/// Placeholder until the sorted-set family lands.
#[derive(Default, Debug, Clone)]
pub struct ZSet {
    pub members: HashMap<Bytes, f64, ahash::RandomState>,
}
