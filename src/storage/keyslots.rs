//! The keys of each cluster hash slot, for `CLUSTER COUNTKEYSINSLOT`,
//! `GETKEYSINSLOT` and the deletion of the keys of a slot this node no
//! longer serves, without a walk over the whole keyspace.
//!
//! Kept only in cluster mode (`enable` at startup): a standalone server
//! pays one never-taken branch per added key. A database's index is a
//! doubly linked list per slot threaded through the key table's dense
//! positions (`links[pos]`, parallel to the table, so a table slot stays
//! 64 bytes), with a head and a count per slot. A new key goes to the head
//! of its slot's list, as Redis 7.0 adds it, so GETKEYSINSLOT lists keys
//! newest first like Redis. When the table moves its last key into a hole,
//! `removed` repoints that key's neighbours.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

const SLOTS: usize = 16384;
const NONE: u32 = u32::MAX;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Cluster mode: databases index their keys by slot from now on.
pub fn enable() {
    ENABLED.store(true, Relaxed);
}

#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Relaxed)
}

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    slot: u16,
}

pub struct SlotIndex {
    heads: Box<[u32]>,
    counts: Box<[u32]>,
    /// By position in the key table.
    links: Vec<Link>,
}

impl Default for SlotIndex {
    fn default() -> Self {
        SlotIndex { heads: vec![NONE; SLOTS].into(), counts: vec![0; SLOTS].into(), links: Vec::new() }
    }
}

impl SlotIndex {
    /// A key was appended to the table at `pos` (always its length).
    pub fn added(&mut self, pos: usize, key: &[u8]) {
        debug_assert_eq!(pos, self.links.len());
        let slot = crate::shard::slot::key_slot(key);
        let s = slot as usize;
        let head = self.heads[s];
        self.links.push(Link { prev: NONE, next: head, slot });
        if head != NONE {
            self.links[head as usize].prev = pos as u32;
        }
        self.heads[s] = pos as u32;
        self.counts[s] += 1;
    }

    /// The key at `pos` left the table, whose last key (at `last`, before
    /// the removal) moved into `pos`.
    pub fn removed(&mut self, pos: usize, last: usize) {
        let Some(&l) = self.links.get(pos) else { return };
        self.unlink(l);
        self.counts[l.slot as usize] -= 1;
        let Some(moved) = self.links.pop() else { return };
        if pos == last {
            return;
        }
        // The last key's links were kept current by the unlink above, even
        // when it neighboured the removed key.
        self.links[pos] = moved;
        let p = pos as u32;
        if moved.prev != NONE {
            self.links[moved.prev as usize].next = p;
        } else {
            self.heads[moved.slot as usize] = p;
        }
        if moved.next != NONE {
            self.links[moved.next as usize].prev = p;
        }
    }

    fn unlink(&mut self, l: Link) {
        if l.prev != NONE {
            self.links[l.prev as usize].next = l.next;
        } else {
            self.heads[l.slot as usize] = l.next;
        }
        if l.next != NONE {
            self.links[l.next as usize].prev = l.prev;
        }
    }

    pub fn count(&self, slot: usize) -> usize {
        self.counts.get(slot).map_or(0, |&c| c as usize)
    }

    /// Table positions of the keys in `slot`, newest first.
    pub fn positions(&self, slot: usize) -> impl Iterator<Item = usize> + '_ {
        let mut at = self.heads.get(slot).copied().unwrap_or(NONE);
        std::iter::from_fn(move || {
            if at == NONE {
                return None;
            }
            let here = at as usize;
            at = self.links.get(here).map_or(NONE, |l| l.next);
            Some(here)
        })
    }

    /// Bytes held (MEMORY / INFO overhead).
    pub fn bytes(&self) -> usize {
        SLOTS * 8 + self.links.capacity() * std::mem::size_of::<Link>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::slot::key_slot;
    use rand::{Rng, SeedableRng};

    /// Random adds and swap-removes against a model (a plain vector of keys
    /// standing for the table): counts, lists and their order agree.
    #[test]
    fn index_follows_a_swap_remove_table() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let mut ix = SlotIndex::default();
        let mut table: Vec<Vec<u8>> = Vec::new();
        // Few tags, so slots hold several keys and neighbours move often.
        let key =
            |rng: &mut rand::rngs::StdRng| format!("{{t{}}}k{}", rng.gen_range(0..6), rng.gen::<u32>()).into_bytes();
        for round in 0..20_000 {
            if table.is_empty() || rng.gen_bool(0.55) {
                let k = key(&mut rng);
                ix.added(table.len(), &k);
                table.push(k);
            } else {
                let pos = rng.gen_range(0..table.len());
                let last = table.len() - 1;
                table.swap_remove(pos);
                ix.removed(pos, last);
            }
            if round % 997 == 0 || round == 19_999 {
                for t in 0..6 {
                    let slot = key_slot(format!("{{t{t}}}").as_bytes()) as usize;
                    let listed: Vec<&[u8]> = ix.positions(slot).map(|p| &table[p][..]).collect();
                    let expected = table.iter().filter(|k| key_slot(k) as usize == slot).count();
                    assert_eq!(listed.len(), expected);
                    assert_eq!(ix.count(slot), expected);
                    assert!(listed.iter().all(|k| key_slot(k) as usize == slot));
                }
            }
        }
        // Newest first, as Redis lists them.
        let mut ix = SlotIndex::default();
        for (i, k) in ["{a}1", "{a}2", "{a}3"].iter().enumerate() {
            ix.added(i, k.as_bytes());
        }
        let slot = key_slot(b"{a}") as usize;
        assert_eq!(ix.positions(slot).collect::<Vec<_>>(), vec![2, 1, 0]);
        ix.removed(0, 2); // "{a}3" moves to 0
        assert_eq!(ix.positions(slot).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(ix.count(slot), 2);
    }
}
