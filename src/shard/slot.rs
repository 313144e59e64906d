//! Redis Cluster hash slots: CRC16-XMODEM of the key (or of its `{hash tag}`) mod 16384.

pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis Cluster uses.
const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// Slicing-by-8 tables: `TABLES[k][x]` is the CRC of byte `x` followed by
/// `k` zero bytes. The CRC is linear, so eight bytes fold in with eight
/// independent lookups instead of eight dependent ones: the key's slot is
/// computed for every keyed command.
const fn crc16_tables() -> [[u16; 256]; 8] {
    let t0 = crc16_table();
    let mut tables = [[0u16; 256]; 8];
    tables[0] = t0;
    let mut k = 1;
    while k < 8 {
        let mut x = 0;
        while x < 256 {
            let prev = tables[k - 1][x];
            tables[k][x] = (prev << 8) ^ t0[(prev >> 8) as usize];
            x += 1;
        }
        k += 1;
    }
    tables
}

static CRC16_TABLES: [[u16; 256]; 8] = crc16_tables();

pub fn crc16(data: &[u8]) -> u16 {
    crc16_until::<false>(data).unwrap_or_default()
}

/// CRC16 of `data`, or None as soon as a `{` is seen when `STOP_AT_BRACE`.
///
/// Eight bytes at a time (slicing-by-8): one load, one test for `{` and
/// eight independent table lookups. The CRC starts at 0, so leading zero
/// bytes leave it unchanged: the first `len % 8` bytes go in as the end of a
/// zero-padded word and every word after is whole, with no byte-wise tail.
#[inline(always)]
fn crc16_until<const STOP_AT_BRACE: bool>(data: &[u8]) -> Option<u16> {
    let t = &CRC16_TABLES;
    let mut crc: u16 = 0;
    let Some(first) = data.first_chunk::<8>() else {
        // Hash tags and short keys: byte by byte, with no set-up.
        for &b in data {
            if STOP_AT_BRACE && b == b'{' {
                return None;
            }
            crc = (crc << 8) ^ t[0][(((crc >> 8) as u8) ^ b) as usize];
        }
        return Some(crc);
    };
    let head = data.len() % 8;
    let body = &data[head..];
    if head > 0 {
        // The head's bytes moved to the top of the word, the rest shifted out.
        let word = u64::from_le_bytes(*first) << (8 * (8 - head));
        if STOP_AT_BRACE && has_byte(word, b'{') {
            return None;
        }
        crc = fold_word(crc, word);
    }
    let (words, _) = body.as_chunks::<8>();
    for w in words {
        let word = u64::from_le_bytes(*w);
        if STOP_AT_BRACE && has_byte(word, b'{') {
            return None;
        }
        crc = fold_word(crc, word);
    }
    Some(crc)
}

/// The CRC after eight more bytes, given as a little-endian word.
#[inline(always)]
fn fold_word(crc: u16, word: u64) -> u16 {
    let t = &CRC16_TABLES;
    // The CRC's high byte meets the first byte, its low byte the second.
    let x = word ^ crc.swap_bytes() as u64;
    let byte = |i: u32| ((x >> (8 * i)) & 0xff) as usize;
    t[7][byte(0)]
        ^ t[6][byte(1)]
        ^ t[5][byte(2)]
        ^ t[4][byte(3)]
        ^ t[3][byte(4)]
        ^ t[2][byte(5)]
        ^ t[1][byte(6)]
        ^ t[0][byte(7)]
}

/// The part of the key that is hashed: the text inside the first `{...}` when
/// it is non-empty, else the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    // (memchr: a key's slot is computed for each key of each command, and
    // scripts' keys are often long: the byte-by-byte scan cost more than the CRC.)
    if let Some(open) = memchr::memchr(b'{', key) {
        if let Some(len) = memchr::memchr(b'}', &key[open + 1..]) {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The key's hash slot. Most keys have no `{`: the CRC of the whole key is
/// computed while the same 8-byte pass looks for one, and only a key that
/// has one goes through `hash_tag`. (A separate `memchr` before the CRC cost
/// about 50 instructions a key: a slot is computed for each key of each
/// command, and a script's commands name many long keys.)
#[inline]
pub fn key_slot(key: &[u8]) -> u16 {
    match crc16_until::<true>(key) {
        Some(crc) => crc & (SLOTS as u16 - 1),
        None => tagged_slot(key),
    }
}

/// Whether any byte of `word` equals `byte` (the exact zero-byte test on
/// `word ^ byte*0x01..01`).
#[inline(always)]
fn has_byte(word: u64, byte: u8) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = word ^ (ONES * byte as u64);
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// The slot of a key holding a `{`: of its hash tag when that is non-empty.
#[cold]
#[inline(never)]
fn tagged_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS as u16 - 1)
}

/// Slots map to shards in contiguous ranges, so a shard is a "node" in Redis Cluster terms.
pub fn slot_shard(slot: u16, shards: usize) -> usize {
    slot as usize * shards / SLOTS
}

/// First slot owned by `shard` (inclusive) and the first slot past it.
pub fn shard_slot_range(shard: usize, shards: usize) -> (usize, usize) {
    let start = (shard * SLOTS).div_ceil(shards);
    let end = ((shard + 1) * SLOTS).div_ceil(shards);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_slots() {
        // Values given by Redis's CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn fused_scan_equals_tag_then_crc() {
        // Keys with and without braces at every position of the 8-byte
        // pass and of its remainder, empty and unclosed tags among them.
        let reference = |key: &[u8]| crc16(hash_tag(key)) & (SLOTS as u16 - 1);
        let mut x: u32 = 777;
        for len in 0..40 {
            for brace_at in 0..=len {
                for close in [None, Some(0usize), Some(1), Some(3)] {
                    let mut key: Vec<u8> = (0..len)
                        .map(|_| {
                            x = x.wrapping_mul(1103515245).wrapping_add(12345);
                            b'a' + ((x >> 16) % 26) as u8
                        })
                        .collect();
                    if brace_at < len {
                        key[brace_at] = b'{';
                        if let Some(d) = close {
                            if brace_at + 1 + d < len {
                                key[brace_at + 1 + d] = b'}';
                            }
                        }
                    }
                    assert_eq!(key_slot(&key), reference(&key), "{:?}", String::from_utf8_lossy(&key));
                }
            }
        }
        // Bytes next to `{` in value (0x7a, 0x7c, 0xfb) are not braces.
        for b in [0x7au8, 0x7c, 0xfb, 0x00, 0xff] {
            let key = vec![b; 17];
            assert_eq!(key_slot(&key), crc16(&key) & 0x3fff);
        }
    }

    #[test]
    fn sliced_crc_equals_bytewise() {
        let t = crc16_table();
        let bytewise =
            |data: &[u8]| data.iter().fold(0u16, |crc, &b| (crc << 8) ^ t[(((crc >> 8) as u8) ^ b) as usize]);
        let mut x: u32 = 12345;
        for len in 0..100 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1103515245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            assert_eq!(crc16(&data), bytewise(&data), "length {len}");
        }
    }

    #[test]
    fn ranges_cover_slots() {
        for shards in 1..=7 {
            for slot in 0..SLOTS as u16 {
                let s = slot_shard(slot, shards);
                let (a, b) = shard_slot_range(s, shards);
                assert!((a..b).contains(&(slot as usize)), "slot {slot} shards {shards}");
            }
        }
    }
}
