//! List values.

use bytes::Bytes;
use std::collections::VecDeque;

pub type List = VecDeque<Bytes>;
