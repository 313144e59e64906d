//! cargo-fuzz target for the RESP request parser.
//!
//! Run (nightly): `cargo +nightly fuzz run resp_parser fuzz/corpus/resp_parser -- -max_total_time=60`
//! The same property runs on stable over the seed corpus: `cargo test --test fuzz_corpus`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/resp.rs"]
mod resp;

fuzz_target!(|data: &[u8]| {
    resp::check(data);
});
