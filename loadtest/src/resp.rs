//! Just enough RESP for a load generator: encode a command once, then scan
//! replies without building values (only their boundaries and whether the
//! top-level reply is an error). A small value parser serves setup and
//! verification, where speed does not matter.

/// Appends `args` as a RESP multibulk request.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Nesting deeper than this is treated as a protocol error: no server under
/// test has a reason to send it, and it bounds the scanner's work.
const MAX_DEPTH: usize = 64;

#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// A whole reply ends at this offset; `error` when its top level is `-` or `!`.
    Done {
        end: usize,
        error: bool,
    },
    Incomplete,
    Invalid,
}

/// Finds where the reply starting at `buf[pos]` ends.
pub fn scan(buf: &[u8], pos: usize) -> Scan {
    let error = matches!(buf.get(pos), Some(b'-') | Some(b'!'));
    match skip(buf, pos, 0) {
        Ok(Some(end)) => Scan::Done { end, error },
        Ok(None) => Scan::Incomplete,
        Err(()) => Scan::Invalid,
    }
}

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    rest.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

fn parse_len(digits: &[u8]) -> Result<i64, ()> {
    std::str::from_utf8(digits).ok().and_then(|s| s.parse::<i64>().ok()).ok_or(())
}

/// Ok(Some(end)) after a whole reply, Ok(None) when more bytes are needed.
fn skip(buf: &[u8], pos: usize, depth: usize) -> Result<Option<usize>, ()> {
    if depth > MAX_DEPTH {
        return Err(());
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(eol) = line_end(buf, pos + 1) else {
        return Ok(None);
    };
    let after = eol + 2;
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(after)),
        b'$' | b'!' | b'=' => {
            let n = parse_len(&buf[pos + 1..eol])?;
            if n < 0 {
                return Ok(Some(after));
            }
            let end = after.checked_add(n as usize).and_then(|e| e.checked_add(2)).ok_or(())?;
            Ok((end <= buf.len()).then_some(end))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = parse_len(&buf[pos + 1..eol])?;
            let items = if matches!(kind, b'%' | b'|') { n.saturating_mul(2) } else { n };
            let mut at = after;
            for _ in 0..items.max(0) {
                match skip(buf, at, depth + 1)? {
                    Some(next) => at = next,
                    None => return Ok(None),
                }
            }
            Ok(Some(at))
        }
        _ => Err(()),
    }
}

/// A decoded reply, for setup and verification traffic only.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Value>),
}

impl Value {
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Status(s) => Some(s.clone()),
            Value::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

/// Decodes the reply at `buf[pos]`; None when incomplete. RESP3 aggregates
/// decode as arrays, which is all verification needs.
pub fn parse(buf: &[u8], pos: usize) -> Result<Option<(Value, usize)>, String> {
    parse_at(buf, pos, 0)
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Value, usize)>, String> {
    if depth > MAX_DEPTH {
        return Err("reply nested too deeply".into());
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(eol) = line_end(buf, pos + 1) else {
        return Ok(None);
    };
    let line = &buf[pos + 1..eol];
    let text = || String::from_utf8_lossy(line).into_owned();
    let after = eol + 2;
    let bad = || format!("bad reply line {:?}", String::from_utf8_lossy(line));
    let v = match kind {
        b'+' => Value::Status(text()),
        b'-' => Value::Error(text()),
        b':' => Value::Int(parse_len(line).map_err(|_| bad())?),
        b'_' => Value::Nil,
        b',' | b'(' | b'#' => Value::Status(text()),
        b'$' | b'=' | b'!' => {
            let n = parse_len(line).map_err(|_| bad())?;
            if n < 0 {
                return Ok(Some((Value::Nil, after)));
            }
            let end = after.checked_add(n as usize).ok_or_else(bad)?;
            if end + 2 > buf.len() {
                return Ok(None);
            }
            let data = buf[after..end].to_vec();
            let v = if kind == b'!' {
                Value::Error(String::from_utf8_lossy(&data).into_owned())
            } else {
                Value::Bulk(data)
            };
            return Ok(Some((v, end + 2)));
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = parse_len(line).map_err(|_| bad())?;
            if n < 0 {
                return Ok(Some((Value::Nil, after)));
            }
            let items = if matches!(kind, b'%' | b'|') { n.saturating_mul(2) } else { n };
            let mut at = after;
            let mut out = Vec::with_capacity((items as usize).min(4096));
            for _ in 0..items {
                match parse_at(buf, at, depth + 1)? {
                    Some((v, next)) => {
                        out.push(v);
                        at = next;
                    }
                    None => return Ok(None),
                }
            }
            return Ok(Some((Value::Array(out), at)));
        }
        _ => return Err(bad()),
    };
    Ok(Some((v, after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_multibulk() {
        let mut out = Vec::new();
        encode(&[b"SET", b"k", b""], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn scans_replies_and_flags_errors() {
        let buf = b"+OK\r\n-ERR x\r\n$3\r\nabc\r\n*2\r\n:1\r\n$-1\r\n$5\r\nab";
        let mut pos = 0;
        let mut seen = Vec::new();
        while let Scan::Done { end, error } = scan(buf, pos) {
            seen.push(error);
            pos = end;
        }
        assert_eq!(seen, vec![false, true, false, false]);
        assert_eq!(scan(buf, pos), Scan::Incomplete);
        assert_eq!(scan(b"?x\r\n", 0), Scan::Invalid);
        assert_eq!(scan(b"*2\r\n:1\r\n", 0), Scan::Incomplete);
    }

    #[test]
    fn parses_values() {
        let buf = b"*3\r\n$1\r\na\r\n:7\r\n$-1\r\n";
        let (v, end) = parse(buf, 0).unwrap().unwrap();
        assert_eq!(end, buf.len());
        assert_eq!(v, Value::Array(vec![Value::Bulk(b"a".to_vec()), Value::Int(7), Value::Nil]));
        assert_eq!(parse(b"$3\r\nab", 0).unwrap(), None);
    }
}
