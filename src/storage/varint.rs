//! LEB128-style variable-length integers (7 bits per byte, high bit set on
//! all but the last), the length prefix of every packed collection layout.

/// Appends `n`; returns how many bytes it took.
pub fn put(out: &mut Vec<u8>, mut n: u64) -> usize {
    let start = out.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.len() - start
}

/// Bytes `put` would take for `n`.
pub fn len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Reads the varint at `pos`: (value, position after it), or None when the
/// buffer ends inside it. Bits past 64 are ignored.
pub fn get(buf: &[u8], pos: usize) -> Option<(u64, usize)> {
    let (mut n, mut shift, mut i) = (0u64, 0u32, pos);
    loop {
        let b = *buf.get(i)?;
        i += 1;
        if shift < 64 {
            n |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            return Some((n, i));
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        for n in [0u64, 1, 127, 128, 300, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let mut v = vec![9];
            let used = super::put(&mut v, n);
            assert_eq!(used, super::len(n));
            assert_eq!(super::get(&v, 1), Some((n, 1 + used)));
        }
        assert_eq!(super::get(&[0x80], 0), None);
    }
}
