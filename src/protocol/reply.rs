//! Replies as values, encoded for RESP2 or RESP3 at write time.

use bytes::Bytes;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+text`; borrowed for the fixed texts (`OK`, `PONG`, ...) so the
    /// commonest replies allocate nothing.
    Status(Cow<'static, str>),
    /// `-text`; the text carries its own prefix (`ERR ...`, `WRONGTYPE ...`).
    Error(String),
    /// An error whose text is not valid UTF-8 (it quotes client bytes, which
    /// Redis sends back as they are): see `Reply::error_from_bytes`.
    ErrorBytes(Bytes),
    Int(i64),
    Bulk(Bytes),
    /// Null bulk (`$-1` in RESP2, `_` in RESP3).
    Nil,
    /// Null array (`*-1` in RESP2, `_` in RESP3).
    NilArray,
    Array(Vec<Reply>),
    /// RESP3 map; a flat array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 set; an array in RESP2.
    Set(Vec<Reply>),
    /// RESP3 double; a bulk string in RESP2.
    Double(f64),
    /// A RESP3 double already formatted (GEOPOS's coordinates, which Redis
    /// prints with 17 decimals); a bulk string in RESP2.
    DoubleText(String),
    /// RESP3 boolean; integer 1/0 in RESP2.
    Bool(bool),
    /// RESP3 big number; a bulk string in RESP2.
    BigNumber(String),
    /// RESP3 verbatim string (format, text); a bulk string in RESP2.
    Verbatim(&'static str, Bytes),
    /// RESP3 push; an array in RESP2 (pub/sub messages).
    Push(Vec<Reply>),
    /// RESP3 attribute: a map about the reply written after it (inside a
    /// `Multi`); RESP2 clients get nothing (DEBUG PROTOCOL attrib).
    Attribute(Vec<(Reply, Reply)>),
    /// An array of bulk strings already in wire form (see `BulkArray`).
    BulkArray(BulkArray),
    /// Several replies written back to back (used by commands such as
    /// SUBSCRIBE that answer once per argument).
    Multi(Vec<Reply>),
    /// A reply already in wire form for the protocol of the client it goes
    /// to (a script's nested result, built without recursion).
    Encoded(Bytes),
    /// Nothing is written (the reply is deferred or suppressed).
    NoReply,
    /// A blocking command found nothing: the session makes the client wait
    /// (see `Exec::Blocking`). Never written.
    Blocked,
}

/// An array of bulk strings kept in its wire form, which is the same in
/// RESP2 and RESP3. A reply of many elements (LRANGE) is then one buffer
/// written element by element, instead of an allocation per element.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BulkArray {
    count: usize,
    /// `$len\r\nbytes\r\n` per element.
    body: Vec<u8>,
}

impl BulkArray {
    /// An empty array with room for about `bytes` bytes of elements.
    pub fn with_capacity(bytes: usize) -> BulkArray {
        BulkArray { count: 0, body: Vec::with_capacity(bytes) }
    }

    pub fn push(&mut self, element: &[u8]) {
        push_bulk(&mut self.body, element);
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The elements, read back from the wire form.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest = &self.body[..];
        std::iter::from_fn(move || {
            // Only `push` writes the body: `$`, digits, CRLF, bytes, CRLF.
            let digits_end = rest.iter().position(|&b| b == b'\r')?;
            let len: usize = std::str::from_utf8(rest.get(1..digits_end)?).ok()?.parse().ok()?;
            let start = digits_end + 2;
            let element = rest.get(start..start + len)?;
            rest = rest.get(start + len + 2..)?;
            Some(element)
        })
    }
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status(Cow::Borrowed("OK"))
    }
    pub fn status(s: &str) -> Reply {
        Reply::Status(Cow::Owned(s.to_string()))
    }
    /// A status reply with a fixed text (no allocation).
    pub fn status_static(s: &'static str) -> Reply {
        Reply::Status(Cow::Borrowed(s))
    }
    /// An error with the generic `ERR ` prefix.
    pub fn err(msg: impl AsRef<str>) -> Reply {
        Reply::Error(format!("ERR {}", msg.as_ref()))
    }
    /// An error whose text already has its own prefix code.
    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }
    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }
    /// An error reply built from bytes that may quote client input: kept as
    /// text when it is valid UTF-8, else as bytes, so nothing is re-encoded.
    pub fn error_from_bytes(text: Vec<u8>) -> Reply {
        match String::from_utf8(text) {
            Ok(s) => Reply::Error(s),
            Err(e) => Reply::ErrorBytes(Bytes::from(e.into_bytes())),
        }
    }
    /// An error text made of `parts`; client bytes among them are quoted by
    /// the caller as C's `%s` quotes them (`c_str`).
    pub fn error_concat(parts: &[&[u8]]) -> Reply {
        Reply::error_from_bytes(parts.concat())
    }
    /// True for a push, or replies that are all pushes (SUBSCRIBE's
    /// confirmations): Redis sends them even under CLIENT REPLY OFF|SKIP.
    pub fn is_push(&self) -> bool {
        match self {
            Reply::Push(_) => true,
            Reply::Multi(items) => !items.is_empty() && items.iter().all(|r| matches!(r, Reply::Push(_))),
            _ => false,
        }
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_) | Reply::ErrorBytes(_))
    }
    /// The text of an error reply (without the leading `-`).
    pub fn error_text(&self) -> Option<&[u8]> {
        match self {
            Reply::Error(s) => Some(s.as_bytes()),
            Reply::ErrorBytes(b) => Some(b),
            _ => None,
        }
    }
    pub fn wrong_type() -> Reply {
        Reply::Error(super::errors::WRONGTYPE.into())
    }
    pub fn syntax_error() -> Reply {
        Reply::err(crate::protocol::errors::SYNTAX)
    }
    pub fn not_integer() -> Reply {
        Reply::err(crate::protocol::errors::NOT_INTEGER)
    }
    pub fn not_float() -> Reply {
        Reply::err(crate::protocol::errors::NOT_FLOAT)
    }
    pub fn wrong_arity(name: &str) -> Reply {
        Reply::err(format!("wrong number of arguments for '{name}' command"))
    }
    pub fn crossslot() -> Reply {
        Reply::Error(super::errors::CROSSSLOT.into())
    }
    /// Encodes `self` for a client speaking RESP `proto` (2 or 3).
    pub fn encode(&self, proto: u8, out: &mut Vec<u8>) {
        match self {
            Reply::Status(s) => {
                out.push(b'+');
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Error(s) => push_error(out, s.as_bytes()),
            Reply::ErrorBytes(s) => push_error(out, s),
            Reply::Encoded(b) => out.extend_from_slice(b),
            // A single digit (SADD, HSET, counters...) in one store.
            Reply::Int(i @ 0..=9) => out.extend_from_slice(&[b':', b'0' + *i as u8, b'\r', b'\n']),
            Reply::Int(i) => {
                out.push(b':');
                push_int(out, *i);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Bulk(b) => push_bulk(out, b),
            Reply::Nil => {
                if proto >= 3 {
                    out.extend_from_slice(b"_\r\n")
                } else {
                    out.extend_from_slice(b"$-1\r\n")
                }
            }
            Reply::NilArray => {
                if proto >= 3 {
                    out.extend_from_slice(b"_\r\n")
                } else {
                    out.extend_from_slice(b"*-1\r\n")
                }
            }
            Reply::Array(items) => {
                push_header(out, b'*', items.len());
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Map(pairs) => {
                if proto >= 3 {
                    push_header(out, b'%', pairs.len());
                } else {
                    push_header(out, b'*', pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Set(items) => {
                push_header(out, if proto >= 3 { b'~' } else { b'*' }, items.len());
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Push(items) => {
                push_header(out, if proto >= 3 { b'>' } else { b'*' }, items.len());
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Attribute(pairs) => {
                if proto >= 3 {
                    push_header(out, b'|', pairs.len());
                    for (k, v) in pairs {
                        k.encode(proto, out);
                        v.encode(proto, out);
                    }
                }
            }
            Reply::Double(d) => {
                if let Some(i) = printed_as_integer(*d) {
                    if proto >= 3 {
                        out.push(b',');
                    } else {
                        let len = i.unsigned_abs().checked_ilog10().map_or(1, |l| l as usize + 1) + (i < 0) as usize;
                        push_header(out, b'$', len);
                    }
                    push_int(out, i);
                    out.extend_from_slice(b"\r\n");
                } else if proto >= 3 {
                    out.push(b',');
                    out.extend_from_slice(format_double(*d).as_bytes());
                    out.extend_from_slice(b"\r\n");
                } else {
                    push_bulk(out, format_double(*d).as_bytes());
                }
            }
            Reply::DoubleText(t) => {
                if proto >= 3 {
                    out.push(b',');
                    out.extend_from_slice(t.as_bytes());
                    out.extend_from_slice(b"\r\n");
                } else {
                    push_bulk(out, t.as_bytes());
                }
            }
            Reply::Bool(b) => {
                if proto >= 3 {
                    out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" });
                }
            }
            Reply::BigNumber(n) => {
                if proto >= 3 {
                    out.push(b'(');
                    out.extend_from_slice(n.as_bytes());
                    out.extend_from_slice(b"\r\n");
                } else {
                    push_bulk(out, n.as_bytes());
                }
            }
            Reply::Verbatim(fmt, text) => {
                if proto >= 3 {
                    push_header(out, b'=', text.len() + 4);
                    out.extend_from_slice(fmt.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(text);
                    out.extend_from_slice(b"\r\n");
                } else {
                    push_bulk(out, text);
                }
            }
            Reply::Multi(items) => {
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::BulkArray(a) => {
                push_header(out, b'*', a.count);
                out.extend_from_slice(&a.body);
            }
            Reply::NoReply | Reply::Blocked => {}
        }
    }
}

/// Writes `i` in decimal straight into `out`. (A fixed 20-byte stack buffer
/// got its digit loop fully unrolled into ~140 instructions per call, more
/// than the rest of a small reply's encoding.)
fn push_int(out: &mut Vec<u8>, i: i64) {
    if i < 0 {
        out.push(b'-');
    }
    let mut n = i.unsigned_abs();
    let len = n.checked_ilog10().map_or(1, |l| l as usize + 1);
    let start = out.len();
    out.resize(start + len, b'0');
    for d in out[start..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn push_error(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'-');
    // A newline inside an error would break the framing.
    for &b in text {
        out.push(if b == b'\r' || b == b'\n' { b' ' } else { b });
    }
    out.extend_from_slice(b"\r\n");
}

/// What C's `%s` prints of client bytes: everything before the first NUL.
/// Redis formats the client input it quotes in error texts that way.
pub fn c_str(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(end) => &b[..end],
        None => b,
    }
}

/// Appends a RESP header: `<tag><len>\r\n`. Lengths under 100 (nearly every
/// bulk and array of a reply or of the write stream) are one fixed-size
/// piece the compiler stores inline.
#[inline(always)]
pub fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    if len < 10 {
        out.extend_from_slice(&[tag, b'0' + len as u8, b'\r', b'\n']);
    } else if len < 100 {
        out.extend_from_slice(&[tag, b'0' + (len / 10) as u8, b'0' + (len % 10) as u8, b'\r', b'\n']);
    } else {
        push_long_header(out, tag, len);
    }
}

#[inline(never)]
fn push_long_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    push_int(out, len as i64);
    out.extend_from_slice(b"\r\n");
}

/// Appends `b` as a bulk string (`$len\r\nbytes\r\n`).
#[inline]
pub fn push_bulk(out: &mut Vec<u8>, b: &[u8]) {
    push_header(out, b'$', b.len());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

pub use crate::util::numbers::format_double;
use crate::util::numbers::printed_as_integer;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::numbers::trim_zeros;

    #[test]
    fn headers_at_every_digit_count() {
        for n in [0usize, 1, 9, 10, 11, 42, 99, 100, 101, 999, 1000, 65535, usize::MAX >> 1] {
            let mut out = Vec::new();
            push_header(&mut out, b'$', n);
            assert_eq!(out, format!("${n}\r\n").into_bytes());
        }
    }

    #[test]
    fn bulk_array_is_an_array_of_bulks_on_the_wire() {
        let items: [&[u8]; 4] = [b"a", b"", b"with\r\ncrlf", &[0u8, 255, 36]];
        let mut packed = BulkArray::with_capacity(8);
        for item in items {
            packed.push(item);
        }
        assert_eq!(packed.iter().collect::<Vec<_>>(), items.to_vec());
        let plain = Reply::Array(items.iter().map(|b| Reply::Bulk(Bytes::copy_from_slice(b))).collect());
        for proto in [2, 3] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            Reply::BulkArray(packed.clone()).encode(proto, &mut a);
            plain.encode(proto, &mut b);
            assert_eq!(a, b);
        }
        let mut empty = Vec::new();
        Reply::BulkArray(BulkArray::default()).encode(2, &mut empty);
        assert_eq!(empty, b"*0\r\n");
    }

    fn enc(r: Reply, proto: u8) -> String {
        let mut out = Vec::new();
        r.encode(proto, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_both_protocols() {
        assert_eq!(enc(Reply::Nil, 2), "$-1\r\n");
        assert_eq!(enc(Reply::Nil, 3), "_\r\n");
        assert_eq!(enc(Reply::Int(-42), 2), ":-42\r\n");
        assert_eq!(enc(Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]), 2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]), 3), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(Reply::Double(1.5), 2), "$3\r\n1.5\r\n");
        assert_eq!(enc(Reply::Bool(true), 2), ":1\r\n");
        let attr = Reply::Attribute(vec![(Reply::bulk_str("a"), Reply::Int(1))]);
        assert_eq!(enc(attr.clone(), 3), "|1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(attr, 2), "");
    }

    #[test]
    fn g17() {
        assert_eq!(format_double(1.1), "1.1000000000000001");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(0.0), "0");
        assert_eq!(format_double(-12345.0), "-12345");
        assert_eq!(format_double(99999999999999984.0), "99999999999999984");
        assert_eq!(format_double(1e17), "1e+17");
        assert_eq!(format_double(9007199254740993.0), "9007199254740992");
        assert_eq!(enc(Reply::Double(-0.0), 2), "$2\r\n-0\r\n");
        assert_eq!(enc(Reply::Double(42.0), 2), "$2\r\n42\r\n");
        assert_eq!(enc(Reply::Double(42.0), 3), ",42\r\n");
        assert_eq!(enc(Reply::Double(2.5), 3), ",2.5\r\n");
        assert_eq!(enc(Reply::DoubleText("13.36138933897018433".into()), 3), ",13.36138933897018433\r\n");
        assert_eq!(enc(Reply::DoubleText("-1.5".into()), 2), "$4\r\n-1.5\r\n");
        assert_eq!(enc(Reply::Double(-1234567.0), 2), "$8\r\n-1234567\r\n");
        for i in [0, 1, 7, 9, 10, 11, 99, 100, -1, -9, -10, 12345, i64::MAX, i64::MIN] {
            assert_eq!(enc(Reply::Int(i), 2), format!(":{i}\r\n"));
        }
    }

    /// The integer shortcut agrees with the general `%.17g` path.
    #[test]
    fn integral_doubles_match_the_general_format() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..5000 {
            let d = match rng.gen_range(0..3) {
                0 => rng.gen_range(-1000..1000) as f64,
                1 => rng.gen_range(-(1i64 << 60)..(1i64 << 60)) as f64,
                _ => (rng.gen::<f64>() * 1e17).trunc(),
            };
            let Some(i) = printed_as_integer(d) else { continue };
            let sci = format!("{:.16e}", d);
            let (mantissa, e) = sci.split_once('e').unwrap();
            let e: i32 = e.parse().unwrap();
            assert!(e < 17, "{d}");
            assert_eq!(i.to_string(), trim_zeros(&format!("{:.*}", (16 - e).max(0) as usize, d)), "{sci} {mantissa}");
        }
    }
}
