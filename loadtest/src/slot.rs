//! Redis Cluster key slots (CRC16/XMODEM of the hash tag, mod 16384), so the
//! seed workload can pick hash tags that cover every slot evenly whatever the
//! server's shard count.

pub const SLOTS: usize = 16384;

pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// The slot of a hash-tag body (the text between `{` and `}`).
pub fn tag_slot(tag: &[u8]) -> usize {
    crc16(tag) as usize % SLOTS
}

/// Width of the zero-padded number in a seed tag `t<digits>`.
pub const TAG_WIDTH: usize = 7;
/// The most seed tags we hand out: 16 per slot, far below the 10^7 candidates.
pub const MAX_TAGS: usize = 16 * SLOTS;

pub fn tag_text(n: u32) -> String {
    format!("t{n:0width$}", width = TAG_WIDTH)
}

/// Numbers `n` such that the tags `t<n>` land on evenly spaced slots: with
/// `count <= 16384` tag j sits on slot j*16384/count; beyond that every slot
/// gets `count/16384` (or one more) tags. Deterministic, so a later
/// verification run can rebuild the same set.
pub fn spread_tags(count: usize) -> Result<Vec<u32>, String> {
    if count == 0 || count > MAX_TAGS {
        return Err(format!("seed key space must be 1..={MAX_TAGS} tags"));
    }
    let target = |j: usize| {
        if count <= SLOTS {
            j * SLOTS / count
        } else {
            j % SLOTS
        }
    };
    let mut want = vec![0usize; SLOTS];
    for j in 0..count {
        want[target(j)] += 1;
    }
    let mut found: Vec<Vec<u32>> = vec![Vec::new(); SLOTS];
    let mut missing = count;
    let mut n: u32 = 0;
    while missing > 0 {
        if n >= 10u32.pow(TAG_WIDTH as u32) {
            return Err("could not find tags for every slot".into());
        }
        let s = tag_slot(tag_text(n).as_bytes());
        if found[s].len() < want[s] {
            found[s].push(n);
            missing -= 1;
        }
        n += 1;
    }
    let mut next = vec![0usize; SLOTS];
    Ok((0..count)
        .map(|j| {
            let s = target(j);
            next[s] += 1;
            found[s][next[s] - 1]
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_slots() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(tag_slot(b"foo"), 12182);
    }

    #[test]
    fn tags_cover_all_slots_evenly() {
        let tags = spread_tags(SLOTS).unwrap();
        let mut slots: Vec<usize> = tags.iter().map(|&n| tag_slot(tag_text(n).as_bytes())).collect();
        slots.sort_unstable();
        assert_eq!(slots, (0..SLOTS).collect::<Vec<_>>());
        let few = spread_tags(4).unwrap();
        let s: Vec<usize> = few.iter().map(|&n| tag_slot(tag_text(n).as_bytes())).collect();
        assert_eq!(s, vec![0, 4096, 8192, 12288]);
        assert!(spread_tags(0).is_err());
    }
}
