//! LZF, the compression RDB files and DUMP payloads use for long strings.
//!
//! The format: a control byte below 32 starts a run of `ctrl + 1` literal
//! bytes; otherwise its top 3 bits are a match length (7 meaning "one more
//! length byte follows") and its low 5 bits with the next byte a distance
//! back into the output.
//!
//! `compress` reproduces the choices of the LZF compressor Redis ships (a
//! 64 Ki-slot hash table of 3-byte prefixes, the "very fast" variant that
//! re-hashes the last two positions of a match, references never pointing at
//! the first input byte), so that a payload we write is byte-equal to the one
//! redis-server writes for the same string. Redis leaves its hash table
//! uninitialised on the stack; we start from an empty one, which gives the
//! same output unless a stale slot happens to point at a usable match.
//! Written from the format description, not from the C code; no crate offers
//! this exact variant, and a pure Rust port keeps the decoder bounds-checked.

/// Hash table size (log2), as Redis builds liblzf.
const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
/// Longest literal run one control byte covers.
const MAX_LIT: usize = 1 << 5;
/// Farthest back a reference may point (+1).
const MAX_OFF: usize = 1 << 13;
/// Longest match (+2) one reference encodes.
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// The most bytes `decompress` can produce per input byte: a 3-byte
/// reference expands to at most 264 bytes.
pub const MAX_EXPANSION: usize = 88;

#[inline]
fn first(p: &[u8], i: usize) -> u32 {
    ((p[i] as u32) << 8) | p[i + 1] as u32
}

#[inline]
fn next(v: u32, p: &[u8], i: usize) -> u32 {
    (v << 8) | p[i + 2] as u32
}

#[inline]
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// Compresses `input` into at most `out_len` bytes (give or take the one
/// byte of slack Redis allocates); None when it does not fit, which is what
/// makes a caller store the string uncompressed. Empty input gives None.
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    if input.is_empty() || out_len == 0 || input.len() >= u32::MAX as usize {
        return None;
    }
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let table = &mut *t;
        // A new generation empties every slot without touching the table
        // (Redis leaves its table uninitialised; clearing 256 KiB per call
        // would cost more than compressing a short string).
        table.generation = table.generation.wrapping_add(1);
        if table.generation == 0 {
            table.slots.iter_mut().for_each(|s| *s = 0);
            table.generation = 1;
        }
        compress_with(input, out_len, table)
    })
}

/// The hash table of `compress`: a slot holds `generation << 32 | position + 1`.
struct Table {
    slots: Vec<u64>,
    generation: u32,
}

thread_local! {
    static TABLE: std::cell::RefCell<Table> = std::cell::RefCell::new(Table { slots: vec![0; HSIZE], generation: 0 });
}

impl Table {
    #[inline]
    fn get(&self, slot: usize) -> u32 {
        let v = self.slots[slot];
        if (v >> 32) as u32 == self.generation {
            v as u32
        } else {
            0
        }
    }

    #[inline]
    fn set(&mut self, slot: usize, pos: usize) {
        self.slots[slot] = (self.generation as u64) << 32 | (pos as u64 + 1);
    }
}

fn compress_with(input: &[u8], out_len: usize, htab: &mut Table) -> Option<Vec<u8>> {
    let in_len = input.len();
    let mut out: Vec<u8> = Vec::with_capacity(out_len + 1);
    // `op` is the write position; out[op - lit - 1] is the open run's control byte.
    let mut op = 1usize;
    out.push(0);
    let mut lit = 0usize;
    let mut ip = 0usize;

    if in_len >= 3 {
        let mut hval = first(input, ip);
        while ip < in_len - 2 {
            hval = next(hval, input, ip);
            let slot = idx(hval);
            let r = htab.get(slot);
            htab.set(slot, ip);
            let candidate = (r != 0).then(|| r as usize - 1);
            let matched = candidate.filter(|&r| {
                r < ip
                    && ip - r - 1 < MAX_OFF
                    && r > 0
                    && input[r + 2] == input[ip + 2]
                    && input[r] == input[ip]
                    && input[r + 1] == input[ip + 1]
            });
            if let Some(r) = matched {
                let off = ip - r - 1;
                let mut len = 2usize;
                let maxlen = (in_len - ip - len).min(MAX_REF);
                // The output check, first conservative then exact.
                if op + 3 + 1 >= out_len && op - (lit == 0) as usize + 3 + 1 >= out_len {
                    return None;
                }
                out[op - lit - 1] = (lit as u8).wrapping_sub(1);
                if lit == 0 {
                    op -= 1;
                    out.truncate(op);
                }
                // Extend the match: sixteen unchecked steps when there is room
                // for them (stopping at the first difference), then one by
                // one up to `maxlen`.
                let mut mismatch = false;
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            mismatch = true;
                            break;
                        }
                    }
                }
                if !mismatch {
                    loop {
                        len += 1;
                        if !(len < maxlen && input[r + len] == input[ip + len]) {
                            break;
                        }
                    }
                }
                len -= 2;
                ip += 1;
                if len < 7 {
                    out.push(((off >> 8) + (len << 5)) as u8);
                } else {
                    out.push(((off >> 8) + (7 << 5)) as u8);
                    out.push((len - 7) as u8);
                }
                out.push(off as u8);
                op = out.len();
                // Start a new run.
                lit = 0;
                out.push(0);
                op += 1;
                ip += len + 1;
                if ip >= in_len - 2 {
                    break;
                }
                // Hash the last two positions of the match.
                ip -= 2;
                hval = first(input, ip);
                hval = next(hval, input, ip);
                htab.set(idx(hval), ip);
                ip += 1;
                hval = next(hval, input, ip);
                htab.set(idx(hval), ip);
                ip += 1;
            } else {
                if op >= out_len {
                    return None;
                }
                lit += 1;
                out.push(input[ip]);
                op += 1;
                ip += 1;
                if lit == MAX_LIT {
                    out[op - lit - 1] = (lit - 1) as u8;
                    lit = 0;
                    out.push(0);
                    op += 1;
                }
            }
        }
    }
    if op + 3 > out_len {
        return None;
    }
    while ip < in_len {
        lit += 1;
        out.push(input[ip]);
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            out.push(0);
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    if lit == 0 {
        op -= 1;
    }
    out.truncate(op);
    Some(out)
}

/// Decompresses `input`, which must expand to exactly `out_len` bytes.
/// Never reads or writes out of bounds; `out_len` is bounded by the caller
/// against `input.len() * MAX_EXPANSION` before allocating.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if out.len() + n > out_len {
                return None;
            }
            let lit = input.get(ip..ip + n)?;
            out.extend_from_slice(lit);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            let mut back = (ctrl & 0x1f) << 8;
            if len == 7 {
                len += *input.get(ip)? as usize;
                ip += 1;
            }
            back += *input.get(ip)? as usize;
            ip += 1;
            len += 2;
            if out.len() + len > out_len {
                return None;
            }
            let dist = back + 1;
            let mut from = out.len().checked_sub(dist)?;
            // A source that overlaps what is written repeats its first
            // `dist` bytes: copy at most `dist` at a time.
            let mut left = len;
            while left > 0 {
                let n = left.min(dist);
                out.extend_from_within(from..from + n);
                from += n;
                left -= n;
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[u8]) {
        if let Some(c) = compress(data, data.len().saturating_sub(4)) {
            assert_eq!(decompress(&c, data.len()).as_deref(), Some(data));
        }
    }

    #[test]
    fn known_vectors() {
        // What redis-server 7.0 writes for a string of 30 'a's (DUMP payload body).
        let a = vec![b'a'; 30];
        assert_eq!(compress(&a, 26).unwrap(), vec![0x01, b'a', b'a', 0xe0, 0x11, 0x00, 0x01, b'a', b'a']);
        round_trip(&a);
        // Incompressible data does not fit in len - 4.
        let r: Vec<u8> = (0..64u8).collect();
        assert_eq!(compress(&r, 60), None);
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let mut seed = 7u64;
        for n in [1usize, 2, 3, 21, 40, 100, 1000, 9000, 70000] {
            let mut data = Vec::with_capacity(n);
            for i in 0..n {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                data.push(if (seed >> 40).is_multiple_of(3) { (seed >> 33) as u8 } else { (i % 7) as u8 + b'a' });
            }
            round_trip(&data);
            if let Some(c) = compress(&data, data.len() + 64) {
                assert_eq!(decompress(&c, data.len()).as_deref(), Some(&data[..]));
                // Wrong lengths and truncations are refused, never a panic.
                assert_eq!(decompress(&c, data.len() + 1), None);
                assert_eq!(decompress(&c[..c.len() - 1], data.len()), None);
                for cut in 0..c.len().min(40) {
                    let _ = decompress(&c[cut..], data.len());
                }
            }
        }
        // A back reference before the start of the output.
        assert_eq!(decompress(&[0x20, 0x05], 3), None);
        assert_eq!(decompress(&[], 0), Some(vec![]));
    }
}
