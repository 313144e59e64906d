//! RESP wire format: request parsing and reply encoding. No I/O here.

pub mod errors;
mod parser;
mod reply;

pub use parser::{split_args, Batch, ParseError, RequestParser};
pub use reply::{c_str, format_double, push_bulk, push_header, BulkArray, Reply};

/// Splits a config-file or inline line into words (quotes as in Redis).
pub fn split_args_str(line: &str) -> Option<Vec<String>> {
    parser::split_args(line.as_bytes()).map(|v| v.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect())
}
