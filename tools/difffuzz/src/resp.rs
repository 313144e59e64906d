//! RESP2/RESP3: encoding requests and parsing replies incrementally.
//!
//! Every parsed reply keeps its raw bytes: the first comparison is always
//! byte for byte; the parsed tree is only for the declared rules (multiset
//! comparison, shape, tolerance) and for describing a difference.

use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1`
    NilBulk,
    /// `*-1`
    NilArray,
    /// RESP3 `_`
    Null,
    Array(Vec<Value>),
    Double(Vec<u8>),
    Bool(bool),
    Big(Vec<u8>),
    Verbatim(Vec<u8>),
    BlobError(Vec<u8>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Push(Vec<Value>),
    Attr(Vec<(Value, Value)>, Box<Value>),
}

impl Value {
    /// The error text (for `-` and `!` replies).
    pub fn error(&self) -> Option<&[u8]> {
        match self {
            Value::Error(e) | Value::BlobError(e) => Some(e),
            Value::Attr(_, v) => v.error(),
            _ => None,
        }
    }

    /// The first word of an error reply (`ERR`, `WRONGTYPE`, `CROSSSLOT`,
    /// ...); `error` when the text starts with anything else (a script's
    /// own error text, say), so that such errors group together.
    pub fn error_word(&self) -> Option<String> {
        self.error().map(|e| {
            let w = e.split(|&c| c == b' ').next().unwrap_or(b"");
            let code = !w.is_empty()
                && w.len() <= 24
                && w[0].is_ascii_uppercase()
                && w.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
            if code {
                String::from_utf8_lossy(w).into_owned()
            } else {
                "error".into()
            }
        })
    }

    /// A short name for the reply's type.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Simple(_) => "status",
            Value::Error(_) => "error",
            Value::Int(_) => "int",
            Value::Bulk(_) => "bulk",
            Value::NilBulk => "nil",
            Value::NilArray => "nil-array",
            Value::Null => "null",
            Value::Array(_) => "array",
            Value::Double(_) => "double",
            Value::Bool(_) => "bool",
            Value::Big(_) => "bignum",
            Value::Verbatim(_) => "verbatim",
            Value::BlobError(_) => "blob-error",
            Value::Map(_) => "map",
            Value::Set(_) => "set",
            Value::Push(_) => "push",
            Value::Attr(..) => "attribute",
        }
    }

    /// The reply's type, or the first word of its error.
    pub fn describe(&self) -> String {
        self.error_word().unwrap_or_else(|| self.kind().to_string())
    }

    /// Elements of an aggregate (arrays, sets, pushes; maps flattened).
    pub fn items(&self) -> Option<Vec<&Value>> {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => Some(v.iter().collect()),
            Value::Map(m) => Some(m.iter().flat_map(|(k, v)| [k, v]).collect()),
            _ => None,
        }
    }

    /// Bytes of a string-like reply.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Simple(b) | Value::Bulk(b) | Value::Verbatim(b) | Value::Double(b) | Value::Big(b) => Some(b),
            _ => None,
        }
    }
}

/// Encodes one request as a RESP array of bulk strings.
pub fn encode_command(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Encodes a parsed value back into RESP (canonical form, used to order
/// elements for multiset comparisons and to print replies).
pub fn encode(v: &Value, out: &mut Vec<u8>) {
    fn line(out: &mut Vec<u8>, prefix: u8, body: &[u8]) {
        out.push(prefix);
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    fn blob(out: &mut Vec<u8>, prefix: u8, body: &[u8]) {
        out.push(prefix);
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    match v {
        Value::Simple(b) => line(out, b'+', b),
        Value::Error(b) => line(out, b'-', b),
        Value::Int(i) => line(out, b':', i.to_string().as_bytes()),
        Value::Bulk(b) => blob(out, b'$', b),
        Value::NilBulk => out.extend_from_slice(b"$-1\r\n"),
        Value::NilArray => out.extend_from_slice(b"*-1\r\n"),
        Value::Null => out.extend_from_slice(b"_\r\n"),
        Value::Double(b) => line(out, b',', b),
        Value::Bool(t) => out.extend_from_slice(if *t { b"#t\r\n" } else { b"#f\r\n" }),
        Value::Big(b) => line(out, b'(', b),
        Value::Verbatim(b) => blob(out, b'=', b),
        Value::BlobError(b) => blob(out, b'!', b),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            let p = match v {
                Value::Array(_) => b'*',
                Value::Set(_) => b'~',
                _ => b'>',
            };
            line(out, p, items.len().to_string().as_bytes());
            for i in items {
                encode(i, out);
            }
        }
        Value::Map(pairs) | Value::Attr(pairs, _) => {
            let p = if matches!(v, Value::Map(_)) { b'%' } else { b'|' };
            line(out, p, pairs.len().to_string().as_bytes());
            for (k, x) in pairs {
                encode(k, out);
                encode(x, out);
            }
            if let Value::Attr(_, inner) = v {
                encode(inner, out);
            }
        }
    }
}

pub fn to_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, &mut out);
    out
}

/// Parses one reply from the start of `buf`. `Ok(None)`: more bytes needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, String> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0)? {
        Some(v) => Ok(Some((v, pos))),
        None => Ok(None),
    }
}

fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let start = *pos;
    let rel = buf[start..].windows(2).position(|w| w == b"\r\n")?;
    *pos = start + rel + 2;
    Some(&buf[start..start + rel])
}

fn parse_int(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("bad integer in reply: {:?}", String::from_utf8_lossy(line)))
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Value>, String> {
    if depth > 10_000 {
        return Err("reply nested too deeply".into());
    }
    if *pos >= buf.len() {
        return Ok(None);
    }
    let prefix = buf[*pos];
    *pos += 1;
    let Some(line) = read_line(buf, pos) else { return Ok(None) };
    let blob = |pos: &mut usize, n: i64| -> Result<Option<Vec<u8>>, String> {
        if n < 0 {
            return Err(format!("negative blob length {n}"));
        }
        let n = n as usize;
        if buf.len() < *pos + n + 2 {
            return Ok(None);
        }
        let body = buf[*pos..*pos + n].to_vec();
        if &buf[*pos + n..*pos + n + 2] != b"\r\n" {
            return Err("blob not terminated by CRLF".into());
        }
        *pos += n + 2;
        Ok(Some(body))
    };
    let v = match prefix {
        b'+' => Value::Simple(line.to_vec()),
        b'-' => Value::Error(line.to_vec()),
        b':' => Value::Int(parse_int(line)?),
        b',' => Value::Double(line.to_vec()),
        b'(' => Value::Big(line.to_vec()),
        b'_' => Value::Null,
        b'#' => Value::Bool(line == b"t"),
        b'$' | b'=' | b'!' => {
            let n = parse_int(line)?;
            if n == -1 && prefix == b'$' {
                Value::NilBulk
            } else {
                let Some(body) = blob(pos, n)? else { return Ok(None) };
                match prefix {
                    b'$' => Value::Bulk(body),
                    b'=' => Value::Verbatim(body),
                    _ => Value::BlobError(body),
                }
            }
        }
        b'*' | b'~' | b'>' => {
            let n = parse_int(line)?;
            if n == -1 && prefix == b'*' {
                Value::NilArray
            } else {
                if n < 0 {
                    return Err(format!("negative aggregate length {n}"));
                }
                let mut items = Vec::with_capacity((n as usize).min(4096));
                for _ in 0..n {
                    match parse_at(buf, pos, depth + 1)? {
                        Some(v) => items.push(v),
                        None => return Ok(None),
                    }
                }
                match prefix {
                    b'*' => Value::Array(items),
                    b'~' => Value::Set(items),
                    _ => Value::Push(items),
                }
            }
        }
        b'%' | b'|' => {
            let n = parse_int(line)?;
            if n < 0 {
                return Err(format!("negative map length {n}"));
            }
            let mut pairs = Vec::with_capacity((n as usize).min(4096));
            for _ in 0..n {
                let Some(k) = parse_at(buf, pos, depth + 1)? else { return Ok(None) };
                let Some(v) = parse_at(buf, pos, depth + 1)? else { return Ok(None) };
                pairs.push((k, v));
            }
            if prefix == b'%' {
                Value::Map(pairs)
            } else {
                let Some(inner) = parse_at(buf, pos, depth + 1)? else { return Ok(None) };
                Value::Attr(pairs, Box::new(inner))
            }
        }
        other => return Err(format!("unexpected reply type byte {:?}", other as char)),
    };
    Ok(Some(v))
}

/// Renders bytes as redis-cli would accept them inside double quotes.
pub fn quote(arg: &[u8]) -> String {
    let plain = !arg.is_empty()
        && arg.iter().all(|&c| c.is_ascii_alphanumeric() || b"-_.:*{}|@$#+()[]<>/,=?^~!&%".contains(&c));
    if plain {
        return String::from_utf8_lossy(arg).into_owned();
    }
    let mut s = String::from("\"");
    for &c in arg {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('"');
    s
}

/// A one-line rendering of a reply for reports, cut at `max` characters.
pub fn show(raw: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &c in raw {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
        if s.len() > max {
            s.truncate(max);
            s.push_str("...");
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resp2_and_resp3() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x y\r\n",
            b":-12\r\n",
            b"$3\r\na\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"%1\r\n+k\r\n,1.5\r\n",
            b"~2\r\n#t\r\n_\r\n",
            b">2\r\n+a\r\n(123\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"!3\r\nERR\r\n",
        ];
        for c in cases {
            let (v, n) = parse(c).unwrap().unwrap();
            assert_eq!(n, c.len());
            assert_eq!(&to_bytes(&v)[..], *c, "round trip of {:?}", String::from_utf8_lossy(c));
            for cut in 0..c.len() {
                assert_eq!(parse(&c[..cut]).unwrap(), None, "prefix {cut} of {:?}", String::from_utf8_lossy(c));
            }
        }
        assert_eq!(Value::Error(b"WRONGTYPE x".to_vec()).error_word().as_deref(), Some("WRONGTYPE"));
        assert_eq!(Value::Error(b"\xff\x01 x".to_vec()).error_word().as_deref(), Some("error"));
        assert_eq!(Value::Error(b"-1".to_vec()).error_word().as_deref(), Some("error"));
        assert!(parse(b"?x\r\n").is_err());
    }

    #[test]
    fn quotes_for_redis_cli() {
        assert_eq!(quote(b"abc"), "abc");
        assert_eq!(quote(b""), "\"\"");
        assert_eq!(quote(b"a b"), "\"a b\"");
        assert_eq!(quote(b"\x00\xff\r\n\""), "\"\\x00\\xff\\r\\n\\\"\"");
    }
}
