//! The libraries Redis gives scripts besides the standard ones, written here
//! in Rust: cjson, cmsgpack, bit, struct, and the deterministic math.random;
//! and `tonumber` with a fast path for plain integers.

mod arg;
pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod random;
pub mod struct_;
pub mod tonumber;
