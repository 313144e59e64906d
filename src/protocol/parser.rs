//! Incremental request parser for RESP multibulk and inline commands.
//!
//! The parser consumes bytes from a `BytesMut` read buffer and yields whole
//! commands (argument vectors). Partial input is kept in the parser's state,
//! so a huge pipeline or a huge bulk is scanned once, not once per read.

use bytes::{Buf, Bytes, BytesMut};

/// Inline requests and header lines longer than this are refused, as Redis does.
const MAX_INLINE: usize = 64 * 1024;
/// Before authentication Redis allows only small requests.
const UNAUTH_MAX_MULTIBULK: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16384;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl ParseError {
    fn new(msg: &str) -> Self {
        ParseError(format!("ERR Protocol error: {msg}"))
    }
}

#[derive(Default)]
pub struct RequestParser {
    /// Arguments of a multibulk request parsed so far.
    args: Vec<Bytes>,
    /// Arguments still expected for the current multibulk, 0 when between requests.
    remaining: usize,
    /// Length of the bulk whose header was read but whose payload has not fully arrived.
    pending_bulk: Option<usize>,
}

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one request from `buf`. Returns `Ok(None)` when more input is
    /// needed. An empty inline line yields `Some(vec![])`, which callers skip.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        max_bulk: i64,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ParseError> {
        if self.remaining == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                return parse_inline(buf);
            }
            let Some(line) = take_line(buf, 1)? else {
                if buf.len() > MAX_INLINE {
                    return Err(ParseError::new("too big mbulk count string"));
                }
                return Ok(None);
            };
            let count =
                parse_int(&line).ok_or_else(|| ParseError::new("invalid multibulk length"))?;
            if count > i32::MAX as i64 {
                return Err(ParseError::new("invalid multibulk length"));
            }
            if !authenticated && count > UNAUTH_MAX_MULTIBULK {
                return Err(ParseError::new("unauthenticated multibulk length"));
            }
            if count <= 0 {
                return Ok(Some(Vec::new()));
            }
            self.remaining = count as usize;
            self.args = Vec::with_capacity(self.remaining.min(1024));
        }
        while self.remaining > 0 {
            let len = match self.pending_bulk {
                Some(len) => len,
                None => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    if buf[0] != b'$' {
                        let got = String::from_utf8_lossy(&buf[..1]).into_owned();
                        return Err(ParseError::new(&format!("expected '$', got '{got}'")));
                    }
                    let Some(line) = take_line(buf, 1)? else {
                        if buf.len() > MAX_INLINE {
                            return Err(ParseError::new("too big bulk count string"));
                        }
                        return Ok(None);
                    };
                    let len =
                        parse_int(&line).ok_or_else(|| ParseError::new("invalid bulk length"))?;
                    if len < 0 || len > max_bulk {
                        return Err(ParseError::new("invalid bulk length"));
                    }
                    if !authenticated && len > UNAUTH_MAX_BULK {
                        return Err(ParseError::new("unauthenticated bulk length"));
                    }
                    let len = len as usize;
                    self.pending_bulk = Some(len);
                    if buf.capacity() - buf.len() < len + 2 && len >= 32 * 1024 {
                        // Big argument: grow the buffer once instead of many times.
                        buf.reserve(len + 2 - buf.len().min(len + 2));
                    }
                    len
                }
            };
            if buf.len() < len + 2 {
                return Ok(None);
            }
            let arg = Bytes::copy_from_slice(&buf[..len]);
            buf.advance(len + 2);
            self.pending_bulk = None;
            self.args.push(arg);
            self.remaining -= 1;
        }
        Ok(Some(std::mem::take(&mut self.args)))
    }
}

/// Takes a `\r\n`-terminated line starting after `skip` header bytes.
fn take_line(buf: &mut BytesMut, skip: usize) -> Result<Option<Bytes>, ParseError> {
    let limit = buf.len().min(MAX_INLINE + 2);
    let Some(pos) = buf[..limit].iter().position(|&b| b == b'\r') else {
        return Ok(None);
    };
    if pos + 1 >= buf.len() {
        return Ok(None);
    }
    let line = Bytes::copy_from_slice(&buf[skip..pos]);
    // Redis only looks for '\r' and skips the following byte.
    buf.advance(pos + 2);
    Ok(Some(line))
}

fn parse_int(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse::<i64>().ok()
}

fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_INLINE {
            return Err(ParseError::new("too big inline request"));
        }
        return Ok(None);
    };
    if nl > MAX_INLINE {
        return Err(ParseError::new("too big inline request"));
    }
    let mut line = &buf[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let args = split_args(line).ok_or_else(|| ParseError::new("unbalanced quotes in request"))?;
    buf.advance(nl + 1);
    Ok(Some(args))
}

/// Splits an inline command line the way Redis's `sdssplitargs` does:
/// whitespace separated, with "double quotes" (C escapes) and 'single quotes'.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && is_hex(line[i + 2])
                    && is_hex(line[i + 3])
                {
                    cur.push(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    // Closing quote must be followed by a space or the end.
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        args.push(Bytes::from(cur));
    }
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ParseError> {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(cmd) = p.parse(&mut buf, 512 * 1024 * 1024, true)? {
            out.push(cmd);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline() {
        let got = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\r\n").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(got[1], vec![Bytes::from("PING")]);
        assert_eq!(got[2][2], Bytes::from("b c"));
    }

    #[test]
    fn incremental_bytes() {
        let input = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n";
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            if let Some(cmd) = p.parse(&mut buf, 1 << 29, true).unwrap() {
                got = Some(cmd);
            }
        }
        assert_eq!(got.unwrap().len(), 3);
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_all(b"*1\r\n+x\r\n").unwrap_err().0,
            "ERR Protocol error: expected '$', got '+'"
        );
        assert_eq!(
            parse_all(b"*x\r\n").unwrap_err().0,
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            parse_all(b"*1\r\n$-2\r\n").unwrap_err().0,
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            parse_all(b"set \"a\r\n").unwrap_err().0,
            "ERR Protocol error: unbalanced quotes in request"
        );
    }
}
