//! Set values, in Redis 7.0's two encodings: a sorted array of integers
//! ("intset") while every member is a canonical integer and the set is small,
//! and a hash table otherwise. As in Redis a set never converts back.

use bytes::Bytes;
use indexmap::IndexSet;
use rand::Rng;

/// The hash table keeps insertion positions so that a random member and a
/// scan cursor are O(1) (the same trick as the keyspace in `db.rs`).
type Table = IndexSet<Box<[u8]>, ahash::RandomState>;

#[derive(Debug, Clone)]
pub enum Set {
    Ints(Vec<i64>),
    Table(Table),
}

impl Default for Set {
    fn default() -> Self {
        Set::Ints(Vec::new())
    }
}

/// The integer a member stands for when it could live in an intset: only the
/// canonical decimal form counts ("01" or "+1" stay strings, as in Redis).
fn as_int(member: &[u8]) -> Option<i64> {
    crate::util::parse_i64(member)
}

fn int_bytes(i: i64) -> Bytes {
    Bytes::from(i.to_string())
}

impl Set {
    /// An empty set with the encoding Redis picks for a first member.
    pub fn for_member(member: &[u8]) -> Set {
        if as_int(member).is_some() {
            Set::Ints(Vec::new())
        } else {
            Set::Table(Table::default())
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Ints(v) => v.len(),
            Set::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes (MEMORY USAGE; see `storage::usage`): the integer array,
    /// or the table with one block per member, sampled over the first
    /// `samples` members.
    pub fn heap_usage(&self, samples: usize) -> usize {
        use super::usage::{block, index_set_bytes, sampled};
        use std::mem::size_of;
        match self {
            Set::Ints(v) => block(v.capacity() * size_of::<i64>()),
            Set::Table(t) => {
                index_set_bytes(t.capacity(), size_of::<Box<[u8]>>() + size_of::<usize>())
                    + sampled(t.iter().map(|m| block(m.len())), t.len(), samples)
            }
        }
    }

    /// The name `OBJECT ENCODING` replies with.
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Table(_) => "hashtable",
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            Set::Ints(v) => as_int(member).is_some_and(|i| v.binary_search(&i).is_ok()),
            Set::Table(t) => t.contains(member),
        }
    }

    /// Adds `member`; `max_intset` is `set-max-intset-entries`. True if new.
    pub fn insert(&mut self, member: &[u8], max_intset: usize) -> bool {
        if let Set::Ints(v) = self {
            match as_int(member) {
                Some(i) => {
                    let Err(pos) = v.binary_search(&i) else {
                        return false;
                    };
                    if v.len() < max_intset {
                        v.insert(pos, i);
                        return true;
                    }
                }
                None if v.is_empty() => {
                    *self = Set::Table(Table::default());
                }
                None => {}
            }
            self.convert_to_table();
        }
        match self {
            Set::Table(t) => t.insert(member.into()),
            Set::Ints(_) => false,
        }
    }

    fn convert_to_table(&mut self) {
        if let Set::Ints(v) = self {
            let mut t = Table::with_capacity_and_hasher(v.len() + 1, Default::default());
            for i in v.iter() {
                t.insert(i.to_string().into_bytes().into_boxed_slice());
            }
            *self = Set::Table(t);
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            Set::Ints(v) => match as_int(member).map(|i| v.binary_search(&i)) {
                Some(Ok(pos)) => {
                    v.remove(pos);
                    true
                }
                _ => false,
            },
            Set::Table(t) => t.swap_remove(member),
        }
    }

    /// The member at position `i` (0..len) of the set's internal order.
    pub fn member_at(&self, i: usize) -> Option<Bytes> {
        match self {
            Set::Ints(v) => v.get(i).map(|&n| int_bytes(n)),
            Set::Table(t) => t.get_index(i).map(|m| Bytes::copy_from_slice(m)),
        }
    }

    /// Removes and returns the member at position `i`.
    pub fn remove_at(&mut self, i: usize) -> Option<Bytes> {
        match self {
            Set::Ints(v) => (i < v.len()).then(|| int_bytes(v.remove(i))),
            Set::Table(t) => t.swap_remove_index(i).map(Bytes::from),
        }
    }

    pub fn random_index(&self, rng: &mut impl Rng) -> Option<usize> {
        let n = self.len();
        (n > 0).then(|| rng.gen_range(0..n))
    }

    /// Every member, in the set's internal order (ascending for an intset,
    /// as Redis replies).
    pub fn members(&self) -> Vec<Bytes> {
        match self {
            Set::Ints(v) => v.iter().map(|&i| int_bytes(i)).collect(),
            Set::Table(t) => t.iter().map(|m| Bytes::copy_from_slice(m)).collect(),
        }
    }

    /// Calls `f` for each member without allocating per member where possible.
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) {
        match self {
            Set::Ints(v) => {
                for i in v {
                    f(i.to_string().as_bytes());
                }
            }
            Set::Table(t) => t.iter().for_each(|m| f(m)),
        }
    }

    /// One SSCAN step. An intset is returned whole (cursor 0), as in Redis.
    /// The table is walked from the top down so that the swap on removal
    /// never hides a member that was present for the whole scan.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Bytes)) -> u64 {
        let t = match self {
            Set::Ints(v) => {
                v.iter().for_each(|&i| f(int_bytes(i)));
                return 0;
            }
            Set::Table(t) => t,
        };
        let top = t.len();
        let mut next = if cursor == 0 { top } else { usize::try_from(cursor - 1).unwrap_or(usize::MAX).min(top) };
        let mut visited = 0;
        while next > 0 && visited < count {
            next -= 1;
            if let Some(m) = t.get_index(next) {
                f(Bytes::copy_from_slice(m));
            }
            visited += 1;
        }
        if next == 0 {
            0
        } else {
            next as u64 + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_converts_on_string_or_size() {
        let mut s = Set::for_member(b"1");
        assert!(s.insert(b"3", 3));
        assert!(s.insert(b"1", 3));
        assert!(!s.insert(b"1", 3));
        assert_eq!(s.encoding(), "intset");
        assert_eq!(s.members(), vec![Bytes::from("1"), Bytes::from("3")]);
        assert!(s.insert(b"2", 3));
        assert!(s.insert(b"4", 3));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"2") && s.contains(b"4") && s.len() == 4);

        let mut s = Set::for_member(b"1");
        s.insert(b"1", 512);
        assert!(s.insert(b"01", 512));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"1") && s.contains(b"01"));
    }

    #[test]
    fn scan_visits_everything_once() {
        let mut s = Set::for_member(b"x");
        for i in 0..100 {
            s.insert(format!("m{i}").as_bytes(), 512);
        }
        let mut seen = std::collections::HashSet::new();
        let mut c = 0;
        loop {
            c = s.scan(c, 7, |m| assert!(seen.insert(m)));
            if c == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 100);
    }
}
