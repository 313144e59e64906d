//! The packed layouts of older RDB files, read here: ziplists (lists,
//! hashes and sorted sets up to Redis 6.2, quicklist v1 nodes), zipmaps
//! (hashes of Redis 2.4 and before), and intsets (still written by 7.0 for
//! small integer sets, so they are written here too).

use super::listpack::Item;
use super::DecodeError;

// ----------------------------------------------------------------- ziplist

/// Decodes and fully validates a ziplist: header (bytes, tail offset,
/// count), each entry's previous-length field, encoding and bounds, the
/// terminator. Integers come back as `Item::Int`.
pub fn parse_ziplist(zl: &[u8]) -> Result<Vec<Item<'_>>, DecodeError> {
    let bad = || DecodeError::new("Ziplist integrity check failed.");
    const HDR: usize = 10;
    if zl.len() < HDR + 1 {
        return Err(bad());
    }
    let bytes = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    let tail = u32::from_le_bytes([zl[4], zl[5], zl[6], zl[7]]) as usize;
    let declared = u16::from_le_bytes([zl[8], zl[9]]);
    let end = zl.len() - 1;
    if bytes != zl.len() || zl[end] != 0xFF || tail > end {
        return Err(bad());
    }
    let mut out = Vec::new();
    let mut p = HDR;
    let mut prev_len = 0usize;
    let mut last = None;
    while zl[p] != 0xFF {
        let at = |i: usize| -> Result<u8, DecodeError> {
            let j = p.checked_add(i).ok_or_else(bad)?;
            if j >= end {
                return Err(bad());
            }
            Ok(zl[j])
        };
        // Previous entry's length: 1 byte, or 0xFE and 4 bytes LE.
        let (prevlen, plen) = if at(0)? < 0xFE {
            (at(0)? as usize, 1)
        } else {
            (u32::from_le_bytes([at(1)?, at(2)?, at(3)?, at(4)?]) as usize, 5)
        };
        if prevlen != prev_len {
            return Err(bad());
        }
        let e = at(plen)?;
        let q = plen; // offset of the encoding byte
        let (lensize, len, item): (usize, usize, Option<Item>) = match e >> 6 {
            0 => (1, (e & 0x3F) as usize, None),
            1 => (2, (((e & 0x3F) as usize) << 8) | at(q + 1)? as usize, None),
            2 => {
                let n = u32::from_be_bytes([at(q + 1)?, at(q + 2)?, at(q + 3)?, at(q + 4)?]) as usize;
                (5, n, None)
            }
            _ => {
                let int = |n: usize| -> Result<Vec<u8>, DecodeError> { (1..=n).map(|i| at(q + i)).collect() };
                match e {
                    0xC0 => {
                        let b = int(2)?;
                        (1, 2, Some(Item::Int(i16::from_le_bytes([b[0], b[1]]) as i64)))
                    }
                    0xD0 => {
                        let b = int(4)?;
                        (1, 4, Some(Item::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)))
                    }
                    0xE0 => {
                        let b = int(8)?;
                        let mut a = [0u8; 8];
                        a.copy_from_slice(&b);
                        (1, 8, Some(Item::Int(i64::from_le_bytes(a))))
                    }
                    0xF0 => {
                        let b = int(3)?;
                        let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                        (1, 3, Some(Item::Int(v as i64)))
                    }
                    0xFE => (1, 1, Some(Item::Int(at(q + 1)? as i8 as i64))),
                    0xF1..=0xFD => (1, 0, Some(Item::Int((e & 0x0F) as i64 - 1))),
                    _ => return Err(bad()),
                }
            }
        };
        let header = plen + lensize;
        let size = header.checked_add(len).ok_or_else(bad)?;
        let next = p.checked_add(size).ok_or_else(bad)?;
        if next > end {
            return Err(bad());
        }
        out.push(item.unwrap_or(Item::Str(&zl[p + header..next])));
        last = Some(p);
        prev_len = size;
        p = next;
    }
    if p != end || last.is_some_and(|l| l != tail) {
        return Err(bad());
    }
    if declared != u16::MAX && declared as usize != out.len() {
        return Err(bad());
    }
    Ok(out)
}

/// The ziplist Redis 6.2 builds for `items` (integers in the narrowest
/// integer encoding). Moonshard never writes ziplists; this is for tests
/// and tools that need RDB files of older versions.
pub fn write_ziplist(items: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    let mut tail = 10;
    for it in items {
        let start = body.len();
        tail = 10 + start;
        if prev < 254 {
            body.push(prev as u8);
        } else {
            body.push(0xFE);
            body.extend_from_slice(&(prev as u32).to_le_bytes());
        }
        match crate::util::parse_i64(it) {
            Some(v @ 0..=12) => body.push(0xF1 + v as u8),
            Some(v) if i8::try_from(v).is_ok() => body.extend_from_slice(&[0xFE, v as u8]),
            Some(v) if i16::try_from(v).is_ok() => {
                body.push(0xC0);
                body.extend_from_slice(&(v as i16).to_le_bytes());
            }
            Some(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
                body.push(0xF0);
                body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            Some(v) if i32::try_from(v).is_ok() => {
                body.push(0xD0);
                body.extend_from_slice(&(v as i32).to_le_bytes());
            }
            Some(v) => {
                body.push(0xE0);
                body.extend_from_slice(&v.to_le_bytes());
            }
            None if it.len() < 64 => {
                body.push(it.len() as u8);
                body.extend_from_slice(it);
            }
            None if it.len() < 16384 => {
                body.push(0x40 | (it.len() >> 8) as u8);
                body.push(it.len() as u8);
                body.extend_from_slice(it);
            }
            None => {
                body.push(0x80);
                body.extend_from_slice(&(it.len() as u32).to_be_bytes());
                body.extend_from_slice(it);
            }
        }
        prev = body.len() - start;
    }
    let mut zl = Vec::new();
    zl.extend_from_slice(&((body.len() + 11) as u32).to_le_bytes());
    zl.extend_from_slice(&(tail as u32).to_le_bytes());
    zl.extend_from_slice(&(items.len() as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xFF);
    zl
}

// ------------------------------------------------------------------ zipmap

/// A field and its value.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// Decodes a zipmap (count byte, then length-prefixed field, length-prefixed
/// value with a free-space byte, ..., 0xFF) into field/value pairs.
pub fn parse_zipmap(zm: &[u8]) -> Result<Vec<Pair<'_>>, DecodeError> {
    let bad = || DecodeError::new("Zipmap integrity check failed.");
    if zm.len() < 2 || zm[zm.len() - 1] != 0xFF {
        return Err(bad());
    }
    let end = zm.len() - 1;
    let len_at = |p: usize| -> Result<(usize, usize), DecodeError> {
        let b = *zm.get(p).filter(|_| p < end).ok_or_else(bad)?;
        if b < 254 {
            Ok((b as usize, 1))
        } else if b == 254 {
            let s = zm.get(p + 1..p + 5).filter(|_| p + 5 <= end).ok_or_else(bad)?;
            Ok((u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize, 5))
        } else {
            Err(bad())
        }
    };
    let mut out = Vec::new();
    let mut p = 1;
    while p < end && zm[p] != 0xFF {
        let (flen, s) = len_at(p)?;
        p += s;
        let fend = p.checked_add(flen).filter(|&e| e <= end).ok_or_else(bad)?;
        let field = &zm[p..fend];
        p = fend;
        let (vlen, s) = len_at(p)?;
        p += s;
        let free = *zm.get(p).filter(|_| p < end).ok_or_else(bad)? as usize;
        p += 1;
        let vend = p.checked_add(vlen).filter(|&e| e <= end).ok_or_else(bad)?;
        let value = &zm[p..vend];
        p = vend.checked_add(free).filter(|&e| e <= end).ok_or_else(bad)?;
        out.push((field, value));
    }
    if p != end || out.is_empty() || (zm[0] < 254 && zm[0] as usize != out.len()) {
        return Err(bad());
    }
    Ok(out)
}

// ------------------------------------------------------------------ intset

/// The intset Redis builds for these sorted, distinct integers: the
/// narrowest width (16, 32 or 64 bits) that holds them all.
pub fn write_intset(values: &[i64]) -> Vec<u8> {
    let width: usize = if values.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if values.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// Decodes an intset: a width of 2, 4 or 8, a count matching the size, at
/// least one element, strictly ascending.
pub fn parse_intset(is: &[u8]) -> Result<Vec<i64>, DecodeError> {
    let bad = || DecodeError::new("Intset integrity check failed.");
    if is.len() < 8 {
        return Err(bad());
    }
    let width = u32::from_le_bytes([is[0], is[1], is[2], is[3]]) as usize;
    let count = u32::from_le_bytes([is[4], is[5], is[6], is[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(is.len()) {
        return Err(bad());
    }
    if count == 0 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(count);
    for c in is[8..].chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        };
        if out.last().is_some_and(|&p| p >= v) {
            return Err(bad());
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ziplist_round_trip() {
        let big = vec![b'z'; 300];
        let huge = vec![b'h'; 17000];
        let items: Vec<&[u8]> =
            vec![b"a", b"5", b"-100", b"1000", b"-70000", b"3000000000", b"12", b"", &big, &huge, b"x"];
        let zl = write_ziplist(&items);
        let got = parse_ziplist(&zl).unwrap();
        let back: Vec<Vec<u8>> = got.iter().map(|i| i.to_vec()).collect();
        assert_eq!(back, items.iter().map(|i| i.to_vec()).collect::<Vec<_>>());
        for cut in 0..zl.len().min(400) {
            assert!(parse_ziplist(&zl[..cut]).is_err());
        }
        for i in 0..zl.len().min(400) {
            let mut bad = zl.clone();
            bad[i] ^= 0x33;
            let _ = parse_ziplist(&bad);
        }
        assert!(parse_ziplist(&write_ziplist(&[])).unwrap().is_empty());
    }

    #[test]
    fn zipmap_and_intset() {
        let zm = b"\x02\x03foo\x03\x00bar\x05hello\x05\x02world!!\xff";
        assert_eq!(parse_zipmap(zm).unwrap(), vec![(&b"foo"[..], &b"bar"[..]), (&b"hello"[..], &b"world"[..])]);
        assert!(parse_zipmap(b"\x03\x03foo\x03\x00bar\xff").is_err());
        assert!(parse_zipmap(b"\x00\xff").is_err());
        for v in [vec![1i64, 2, 3], vec![-40000, 5], vec![i64::MIN, 0, i64::MAX]] {
            let is = write_intset(&v);
            assert_eq!(parse_intset(&is).unwrap(), v);
        }
        assert_eq!(write_intset(&[1, 2])[..4], [2, 0, 0, 0]);
        assert!(parse_intset(&write_intset(&[])).is_err());
        assert!(parse_intset(b"\x02\x00\x00\x00\x02\x00\x00\x00\x05\x00\x05\x00").is_err());
    }
}
