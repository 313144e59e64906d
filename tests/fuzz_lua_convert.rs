//! The Lua conversion fuzz property (fuzz/harness/lua_convert.rs) on stable:
//! seeded random inputs plus hand-written edge cases, so CI runs it without
//! a nightly toolchain.

#[path = "../fuzz/harness/lua_convert.rs"]
mod lua_convert;

use rand::{Rng, SeedableRng};

#[test]
fn seeded_inputs_convert_without_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..800 {
        let len = rng.gen_range(0..96);
        let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        lua_convert::check(&data);
    }
}

#[test]
fn edge_cases() {
    // Deep nesting (tag 7 in the Lua builder wraps the table 255 * 8 times).
    lua_convert::check(&[0, 7, 255, 7, 255, 7, 255]);
    lua_convert::check(&[1, 7, 255, 4, 7, 255]);
    // Self-reference, NaN, inf, metatables.
    lua_convert::check(&[0, 4, 3, 2, 8, 4]);
    lua_convert::check(&[1, 4, 3, 2, 8, 4]);
    // Nested arrays of every reply kind, both protocols.
    for cfg in 0..2u8 {
        let data: Vec<u8> = std::iter::once(cfg).chain((0..200u32).map(|i| (i * 37 % 251) as u8)).collect();
        lua_convert::check(&data);
    }
}
