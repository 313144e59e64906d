//! Redis's listpack: the packed sequence of strings and integers that holds
//! small hashes, sorted sets, quicklist nodes and stream nodes in RDB 10.
//!
//! Layout: total bytes (u32 LE), element count (u16 LE, 65535 = "count it"),
//! the entries, and a 0xFF terminator. An entry is an encoding byte (with
//! the length or a small integer folded in), its data, then the entry's own
//! size in 1 to 5 "backlen" bytes so the list can be walked backwards.
//! Strings that spell a canonical 64-bit integer are stored as integers, in
//! the narrowest of 7, 13, 16, 24, 32 or 64 bits.

use super::DecodeError;

pub const HEADER: usize = 6;
const EOF: u8 = 0xFF;
const COUNT_UNKNOWN: u16 = u16::MAX;

/// One element as decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Item<'_> {
    /// The element as the string Redis hands out (integers in decimal).
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Item::Int(v) => v.to_string().into_bytes(),
            Item::Str(s) => s.to_vec(),
        }
    }

    /// The integer value, for elements that must be numbers (stream
    /// headers): an integer entry, or a string that spells one.
    pub fn as_int(self) -> Option<i64> {
        match self {
            Item::Int(v) => Some(v),
            Item::Str(s) => crate::util::parse_i64(s),
        }
    }

    pub fn eq_bytes(self, b: &[u8]) -> bool {
        match self {
            Item::Str(s) => s == b,
            Item::Int(v) => crate::util::parse_i64(b) == Some(v),
        }
    }
}

/// Size of the backlen that follows an entry of `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn put_backlen(out: &mut Vec<u8>, len: usize) {
    let l = len as u64;
    match backlen_size(len) {
        1 => out.push(l as u8),
        2 => out.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]),
        3 => out.extend_from_slice(&[(l >> 14) as u8, ((l >> 7) & 127) as u8 | 128, (l & 127) as u8 | 128]),
        4 => out.extend_from_slice(&[
            (l >> 21) as u8,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
        _ => out.extend_from_slice(&[
            (l >> 28) as u8,
            ((l >> 21) & 127) as u8 | 128,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
    }
}

/// Bytes an integer entry takes, backlen included.
pub fn int_entry_size(v: i64) -> usize {
    let enc = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    };
    enc + backlen_size(enc)
}

/// Bytes an element takes once appended, backlen included.
pub fn entry_size(s: &[u8]) -> usize {
    match crate::util::parse_i64(s) {
        Some(v) => int_entry_size(v),
        None => {
            let enc = s.len()
                + match s.len() {
                    0..=63 => 1,
                    64..=4095 => 2,
                    _ => 5,
                };
            enc + backlen_size(enc)
        }
    }
}

/// Builds a listpack the way Redis's `lpAppend` does.
pub struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Writer {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; HEADER]);
        Writer { buf, count: 0 }
    }

    /// Total size the finished listpack will have.
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Appends a string (stored as an integer when it spells one).
    pub fn push(&mut self, s: &[u8]) {
        if let Some(v) = crate::util::parse_i64(s) {
            return self.push_int(v);
        }
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xE0 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        let len = self.buf.len() - start;
        put_backlen(&mut self.buf, len);
        self.count += 1;
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        match v {
            0..=127 => self.buf.push(v as u8),
            -4096..=4095 => {
                let u = (v as u64) & 0x1FFF;
                self.buf.push(0xC0 | (u >> 8) as u8);
                self.buf.push(u as u8);
            }
            -32768..=32767 => {
                self.buf.push(0xF1);
                self.buf.extend_from_slice(&(v as i16).to_le_bytes());
            }
            -8388608..=8388607 => {
                self.buf.push(0xF2);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            -2147483648..=2147483647 => {
                self.buf.push(0xF3);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes());
            }
            _ => {
                self.buf.push(0xF4);
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        let len = self.buf.len() - start;
        put_backlen(&mut self.buf, len);
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let n = self.count.min(COUNT_UNKNOWN as usize) as u16;
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

fn corrupt() -> DecodeError {
    DecodeError::new("Listpack integrity check failed.")
}

/// Decodes and fully validates a listpack: header size and count, every
/// entry's encoding, bounds and backlen, the terminator.
pub fn parse(lp: &[u8]) -> Result<Vec<Item<'_>>, DecodeError> {
    if lp.len() < HEADER + 1 {
        return Err(corrupt());
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    if total != lp.len() || lp[lp.len() - 1] != EOF {
        return Err(corrupt());
    }
    let declared = u16::from_le_bytes([lp[4], lp[5]]);
    let end = lp.len() - 1;
    let mut out = Vec::with_capacity((declared as usize).min(end / 2));
    let mut p = HEADER;
    while p < end && lp[p] != EOF {
        let b = lp[p];
        let byte = |i: usize| -> Result<u8, DecodeError> {
            let at = p + i;
            if at >= end {
                return Err(corrupt());
            }
            Ok(lp[at])
        };
        // (header bytes, data bytes, item)
        let (hdr, item_len, item): (usize, usize, Option<Item>) = if b & 0x80 == 0 {
            (1, 0, Some(Item::Int((b & 0x7F) as i64)))
        } else if b & 0xC0 == 0x80 {
            (1, (b & 0x3F) as usize, None)
        } else if b & 0xE0 == 0xC0 {
            let u = (((b & 0x1F) as u64) << 8) | byte(1)? as u64;
            let v = if u >= 1 << 12 { u as i64 - (1 << 13) } else { u as i64 };
            (2, 0, Some(Item::Int(v)))
        } else if b & 0xF0 == 0xE0 {
            (2, (((b & 0x0F) as usize) << 8) | byte(1)? as usize, None)
        } else {
            match b {
                0xF0 => {
                    let n = u32::from_le_bytes([byte(1)?, byte(2)?, byte(3)?, byte(4)?]) as usize;
                    (5, n, None)
                }
                0xF1 => (3, 0, Some(Item::Int(i16::from_le_bytes([byte(1)?, byte(2)?]) as i64))),
                0xF2 => {
                    let u = (byte(1)? as u32) | (byte(2)? as u32) << 8 | (byte(3)? as u32) << 16;
                    let v = ((u << 8) as i32 >> 8) as i64;
                    (4, 0, Some(Item::Int(v)))
                }
                0xF3 => (5, 0, Some(Item::Int(i32::from_le_bytes([byte(1)?, byte(2)?, byte(3)?, byte(4)?]) as i64))),
                0xF4 => {
                    let mut a = [0u8; 8];
                    for (i, x) in a.iter_mut().enumerate() {
                        *x = byte(i + 1)?;
                    }
                    (9, 0, Some(Item::Int(i64::from_le_bytes(a))))
                }
                _ => return Err(corrupt()),
            }
        };
        let entry = hdr.checked_add(item_len).ok_or_else(corrupt)?;
        let back = backlen_size(entry);
        let next = p.checked_add(entry + back).ok_or_else(corrupt)?;
        if next > end {
            return Err(corrupt());
        }
        let mut expect = Vec::with_capacity(5);
        put_backlen(&mut expect, entry);
        if lp[p + entry..next] != expect[..] {
            return Err(corrupt());
        }
        out.push(item.unwrap_or(Item::Str(&lp[p + hdr..p + entry])));
        p = next;
    }
    if p != end {
        return Err(corrupt());
    }
    if declared != COUNT_UNKNOWN && declared as usize != out.len() {
        return Err(corrupt());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_bytes() {
        // RPUSH l a b 1 2 300 70000 -5 on redis-server 7.0: the quicklist node.
        let mut w = Writer::new();
        for e in ["a", "b", "1", "2", "300", "70000", "-5"] {
            w.push(e.as_bytes());
        }
        let lp = w.finish();
        assert_eq!(
            lp,
            b"\x1c\x00\x00\x00\x07\x00\x81a\x02\x81b\x02\x01\x01\x02\x01\xc1,\x02\xf2p\x11\x01\x04\xdf\xfb\x02\xff"
        );
        let items = parse(&lp).unwrap();
        assert_eq!(items[0], Item::Str(b"a"));
        assert_eq!(items[4], Item::Int(300));
        assert_eq!(items[5], Item::Int(70000));
        assert_eq!(items[6], Item::Int(-5));
    }

    #[test]
    fn round_trips_every_encoding() {
        let ints = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            32768,
            8388607,
            -8388608,
            8388608,
            i32::MAX as i64,
            i32::MIN as i64,
            i32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN,
        ];
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 200];
        let strs: Vec<&[u8]> = vec![b"", b"hello", b"007", b"-0", &mid, &long];
        let mut w = Writer::new();
        let mut size = HEADER + 1;
        for v in ints {
            w.push_int(v);
            size += int_entry_size(v);
        }
        for s in &strs {
            w.push(s);
            size += entry_size(s);
        }
        assert_eq!(w.bytes(), size);
        let lp = w.finish();
        assert_eq!(lp.len(), size);
        let items = parse(&lp).unwrap();
        for (i, v) in ints.iter().enumerate() {
            assert_eq!(items[i], Item::Int(*v));
        }
        for (i, s) in strs.iter().enumerate() {
            assert_eq!(items[ints.len() + i], Item::Str(s));
        }
        // Every truncation and every single-byte change is refused or decoded, never a panic.
        for cut in 0..lp.len() {
            assert!(parse(&lp[..cut]).is_err());
        }
        for i in 0..lp.len().min(300) {
            let mut bad = lp.clone();
            bad[i] ^= 0x5A;
            let _ = parse(&bad);
        }
    }
}
