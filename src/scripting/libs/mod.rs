//! The libraries Redis gives scripts besides the standard ones, written here
//! in Rust: cjson, cmsgpack, bit, struct, and the deterministic math.random.

pub(crate) mod arg;
pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod random;
pub mod struct_;
