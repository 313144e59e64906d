//! Hash values.

use bytes::Bytes;
use std::collections::HashMap;

pub type Hash = HashMap<Bytes, Bytes, ahash::RandomState>;
