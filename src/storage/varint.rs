//! LEB128-style variable-length integers (7 bits per byte, high bit set on
//! all but the last), the length prefix of every packed collection layout.

/// Appends `n`; returns how many bytes it took.
pub fn put(out: &mut Vec<u8>, n: u64) -> usize {
    let (bytes, len) = encode(n);
    out.extend_from_slice(&bytes[..len]);
    len
}

/// The bytes of `n` (the first `len` of the array) and `len`.
pub fn encode(mut n: u64) -> ([u8; 10], usize) {
    let mut bytes = [0u8; 10];
    let mut len = 0;
    while n >= 0x80 {
        bytes[len] = (n as u8) | 0x80;
        n >>= 7;
        len += 1;
    }
    bytes[len] = n as u8;
    (bytes, len + 1)
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
