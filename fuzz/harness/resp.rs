//! The property both the fuzz target and `tests/fuzz_corpus.rs` check.
//!
//! The first input byte picks the parser settings and how the rest is cut
//! into reads; the rest is what a client sends. The parser must not panic,
//! must make progress, and must yield the same requests (or the same
//! protocol error) whether the bytes arrive at once or in pieces: the
//! connection loop relies on that, since TCP gives no framing.

use bytes::{Bytes, BytesMut};
use moonshard::protocol::RequestParser;

/// Redis's default `proto-max-bulk-len`.
const DEFAULT_MAX_BULK: i64 = 512 * 1024 * 1024;

pub type Outcome = Vec<Result<Vec<Bytes>, String>>;

pub fn check(data: &[u8]) {
    let Some((&cfg, input)) = data.split_first() else {
        return;
    };
    let authenticated = cfg & 1 == 0;
    let max_bulk = if cfg & 2 == 0 { DEFAULT_MAX_BULK } else { 64 };
    // Long inputs get proportionally longer reads: trickling a 64 KB header one
    // byte at a time is quadratic (as in Redis) and would only test patience.
    let piece = (1 + (cfg >> 2) as usize % 13) * (1 + input.len() / 1024);
    let whole = parse(input, input.len().max(1), max_bulk, authenticated);
    let pieces = parse(input, piece, max_bulk, authenticated);
    assert_eq!(whole, pieces, "parse depends on how the input was split (pieces of {piece})");
}

/// Feeds `input` in reads of `piece` bytes and parses after each read as the
/// connection loop does, stopping at the first protocol error.
pub fn parse(input: &[u8], piece: usize, max_bulk: i64, authenticated: bool) -> Outcome {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut steps = 0usize;
    for chunk in input.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            steps += 1;
            // Each request or empty line consumes at least one byte.
            assert!(steps <= input.len() + input.len() / piece + 2, "parser made no progress");
            match parser.parse(&mut buf, max_bulk, authenticated) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => out.push(Ok(args)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.0));
                    return out;
                }
            }
        }
    }
    out
}
