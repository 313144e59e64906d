//! Stream entry IDs (`<ms>-<seq>`) and Redis's rules for parsing them.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    pub fn is_zero(self) -> bool {
        self == Self::MIN
    }

    /// The next ID, or None past the last possible one.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID, or None before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    pub fn to_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from(self.to_string())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// An ID as written by a client. `seq_given` is false for `<ms>-*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedId {
    pub id: StreamId,
    pub seq_given: bool,
}

/// Redis's `string2ull`: a strict integer first, then C's `strtoull`, which
/// also takes leading blanks, a sign and leading zeros (so `01-02` is 1-2).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = crate::util::parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses an ID the way Redis's `streamParseID` does. `missing_seq` fills
/// in a bare `<ms>`; `strict` refuses `-` and `+`; `allow_star_seq` accepts
/// `<ms>-*` (XADD only).
pub fn parse_id(arg: &[u8], missing_seq: u64, strict: bool, allow_star_seq: bool) -> Option<ParsedId> {
    if arg.len() > 127 {
        return None;
    }
    match arg {
        b"-" if !strict => return Some(ParsedId { id: StreamId::MIN, seq_given: true }),
        b"+" if !strict => return Some(ParsedId { id: StreamId::MAX, seq_given: true }),
        b"-" | b"+" => return None,
        _ => {}
    }
    // C strings stop at a NUL byte: Redis sees only what precedes it.
    let arg = arg.split(|&b| b == 0).next().unwrap_or_default();
    match arg.iter().position(|&b| b == b'-') {
        None => Some(ParsedId { id: StreamId::new(string2ull(arg)?, missing_seq), seq_given: true }),
        Some(dash) => {
            let ms = string2ull(&arg[..dash])?;
            let rest = &arg[dash + 1..];
            if allow_star_seq && rest == b"*" {
                return Some(ParsedId { id: StreamId::new(ms, 0), seq_given: false });
            }
            Some(ParsedId { id: StreamId::new(ms, string2ull(rest)?), seq_given: true })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<StreamId> {
        parse_id(s.as_bytes(), 0, false, false).map(|p| p.id)
    }

    #[test]
    fn parses_like_redis() {
        assert_eq!(p("1-2"), Some(StreamId::new(1, 2)));
        assert_eq!(p("5"), Some(StreamId::new(5, 0)));
        assert_eq!(p("01-02"), Some(StreamId::new(1, 2)));
        assert_eq!(p(" 7"), Some(StreamId::new(7, 0)));
        assert_eq!(p("-"), Some(StreamId::MIN));
        assert_eq!(p("+"), Some(StreamId::MAX));
        assert_eq!(p("18446744073709551615-18446744073709551615"), Some(StreamId::MAX));
        for bad in ["", "-1", "1-", "1--1", "1-2-3", "x", "18446744073709551616", "1-*", "1 -2"] {
            assert_eq!(p(bad), None, "{bad}");
        }
        assert_eq!(parse_id(b"-", 0, true, false), None);
        assert_eq!(parse_id(b"3-*", 0, true, true), Some(ParsedId { id: StreamId::new(3, 0), seq_given: false }));
    }

    #[test]
    fn incr_decr_edges() {
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::MIN.decr(), None);
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::new(2, 0).decr(), Some(StreamId::new(1, u64::MAX)));
    }
}
