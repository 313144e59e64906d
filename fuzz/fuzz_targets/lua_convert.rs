//! cargo-fuzz target for the Lua conversion layer (replies <-> Lua values).
//!
//! Run (nightly): `cargo +nightly fuzz run lua_convert fuzz/corpus/lua_convert -- -max_total_time=60`
//! The same property runs on stable over seeded inputs: `cargo test --test fuzz_lua_convert`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/lua_convert.rs"]
mod lua_convert;

fuzz_target!(|data: &[u8]| {
    lua_convert::check(data);
});
