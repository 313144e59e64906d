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

#[inline]
pub fn crc16(data: &[u8]) -> u16 {
    let t = &CRC16_TABLES;
    let mut crc: u16 = 0;
    if data.len() < 8 {
        // Hash tags and short keys: the plain loop has no set-up cost.
        for &b in data {
            crc = (crc << 8) ^ t[0][(((crc >> 8) as u8) ^ b) as usize];
        }
        return crc;
    }
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        crc = t[7][((crc >> 8) as u8 ^ c[0]) as usize]
            ^ t[6][(crc as u8 ^ c[1]) as usize]
            ^ t[5][c[2] as usize]
            ^ t[4][c[3] as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc << 8) ^ t[0][(((crc >> 8) as u8) ^ b) as usize];
    }
    crc
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

pub fn key_slot(key: &[u8]) -> u16 {
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
