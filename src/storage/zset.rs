//! Sorted set values, in Redis 7.0's two encodings: a packed buffer for small
//! sets ("listpack") and, past `zset-max-listpack-entries` members or
//! `zset-max-listpack-value` bytes in a member, a skiplist with spans plus a
//! member index ("skiplist"). Elements are ordered by (score, member).
//!
//! Commands talk to both encodings through ranks: "how many elements come
//! before this bound" (`count_while`), "visit ranks a..b" (`for_range`), so
//! every range query is O(log n + m) on the skiplist.

use super::zskiplist::SkipList;
use bytes::Bytes;

/// Conversion thresholds (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { entries: 128, value: 64 }
    }
}

/// Where `find` found a member: only good until the next edit.
#[derive(Clone, Copy, Debug)]
pub struct Found(usize, usize);

#[derive(Debug, Clone)]
pub enum ZSet {
    Packed(Packed),
    Skip(SkipList),
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::Packed(Packed::default())
    }
}

/// Total order of elements: by score, then bytewise by member.
pub fn before(a_score: f64, a: &[u8], b_score: f64, b: &[u8]) -> bool {
    a_score < b_score || (a_score == b_score && a < b)
}

impl ZSet {
    /// An empty zset in the encoding Redis 7.0's ZADD picks for a new key,
    /// which looks only at the first member's length.
    pub fn for_first_member(member: &[u8], limits: Limits) -> ZSet {
        if limits.entries == 0 || member.len() > limits.value {
            ZSet::Skip(SkipList::new())
        } else {
            ZSet::default()
        }
    }

    /// A zset built from sorted, distinct elements, in the encoding Redis
    /// gives a computed result (ZUNIONSTORE and friends).
    pub fn from_sorted(items: Vec<(Bytes, f64)>, limits: Limits) -> ZSet {
        let max_len = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        let mut z = if items.len() <= limits.entries && max_len <= limits.value {
            ZSet::default()
        } else {
            ZSet::Skip(SkipList::new())
        };
        match &mut z {
            ZSet::Packed(p) => {
                for (m, s) in &items {
                    p.push_back(m, *s);
                }
            }
            ZSet::Skip(sl) => {
                for (m, s) in items {
                    sl.insert(Vec::from(m).into_boxed_slice(), s);
                }
            }
        }
        z
    }

    /// A zset from sorted, distinct elements in the encoding asked for
    /// (`packed`), whatever the limits say: RDB loading decides the
    /// encoding by Redis's rules for each stored type.
    pub fn from_sorted_in<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>, packed: bool) -> ZSet {
        if packed {
            let mut p = Packed::default();
            for (m, s) in items {
                p.push_back(m, s);
            }
            p.buf.shrink_to_fit();
            ZSet::Packed(p)
        } else {
            let mut sl = SkipList::new();
            for (m, s) in items {
                sl.insert(m.to_vec().into_boxed_slice(), s);
            }
            ZSet::Skip(sl)
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZSet::Packed(p) => p.len,
            ZSet::Skip(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes (MEMORY USAGE; see `storage::usage`).
    pub fn heap_usage(&self, samples: usize) -> usize {
        match self {
            ZSet::Packed(p) => super::usage::block(p.buf.capacity()),
            ZSet::Skip(s) => s.heap_usage(samples),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            ZSet::Packed(_) => "listpack",
            ZSet::Skip(_) => "skiplist",
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(p) => p.find(member).map(|(_, _, s)| s),
            ZSet::Skip(s) => s.score(member),
        }
    }

    /// Inserts or re-scores `member`; returns the previous score.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: Limits) -> Option<f64> {
        match self.find(member) {
            Some((old, at)) => {
                self.rescore(at, member, score);
                Some(old)
            }
            None => {
                self.add(member, score, limits);
                None
            }
        }
    }

    /// `member`'s score and where it is, for one `rescore` before any other
    /// edit: ZADD looks a member up once, then decides.
    pub fn find(&self, member: &[u8]) -> Option<(f64, Found)> {
        match self {
            ZSet::Packed(p) => p.find(member).map(|(start, end, s)| (s, Found(start, end))),
            ZSet::Skip(s) => s.find(member).map(|(idx, sc)| (sc, Found(idx as usize, 0))),
        }
    }

    /// Gives the member `find` returned `at` for a new score.
    pub fn rescore(&mut self, at: Found, member: &[u8], score: f64) {
        match self {
            ZSet::Packed(p) => {
                let Found(start, end) = at;
                if p.entry(start).is_some_and(|(_, old, _)| old != score) {
                    p.remove_span(start, end);
                    p.insert_sorted(member, score);
                }
            }
            ZSet::Skip(s) => {
                if let Ok(idx) = u32::try_from(at.0) {
                    s.rescore(idx, score);
                }
            }
        }
    }

    /// Adds a member `find` did not find, converting to a skiplist past the limits.
    pub fn add(&mut self, member: &[u8], score: f64, limits: Limits) {
        if let ZSet::Packed(p) = self {
            if p.len < limits.entries && member.len() <= limits.value {
                p.insert_sorted(member, score);
                return;
            }
            self.convert_to_skiplist();
        }
        if let ZSet::Skip(s) = self {
            s.insert(member.into(), score);
        }
    }

    fn convert_to_skiplist(&mut self) {
        if let ZSet::Packed(p) = self {
            let mut s = SkipList::new();
            p.for_each(|m, sc| {
                s.insert(m.into(), sc);
            });
            *self = ZSet::Skip(s);
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(p) => {
                let (start, end, score) = p.find(member)?;
                p.remove_span(start, end);
                Some(score)
            }
            ZSet::Skip(s) => s.remove(member),
        }
    }

    /// 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZSet::Packed(p) => {
                let mut rank = None;
                let mut i = 0;
                p.for_each_until(|m, _| {
                    if m == member {
                        rank = Some(i);
                        return false;
                    }
                    i += 1;
                    true
                });
                rank
            }
            ZSet::Skip(s) => s.rank(member),
        }
    }

    /// Number of leading elements (in order) for which `pred` holds. `pred`
    /// must be monotone over the order (true, then false): score and lex
    /// bounds are.
    pub fn count_while(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSet::Packed(p) => {
                let mut n = 0;
                p.for_each_until(|m, s| {
                    let go = pred(s, m);
                    n += go as usize;
                    go
                });
                n
            }
            ZSet::Skip(s) => s.count_while(pred),
        }
    }

    /// `count_while` for a predicate on the score alone, which spares the
    /// skiplist reading members.
    pub fn count_while_score(&self, mut pred: impl FnMut(f64) -> bool) -> usize {
        match self {
            ZSet::Skip(s) => s.count_while_score(pred),
            _ => self.count_while(|s, _| pred(s)),
        }
    }

    /// Visits ranks `start..end` (clamped), ascending, or descending when `rev`.
    pub fn for_range(&self, start: usize, end: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        let end = end.min(self.len());
        if start >= end {
            return;
        }
        match self {
            ZSet::Packed(p) => {
                if rev {
                    // A packed entry cannot be decoded backwards: collect, then replay.
                    let mut all: Vec<(&[u8], f64)> = Vec::with_capacity(end - start);
                    p.for_ranks(start, end, |m, s| all.push((m, s)));
                    for (m, s) in all.into_iter().rev() {
                        f(m, s);
                    }
                } else {
                    p.for_ranks(start, end, f);
                }
            }
            ZSet::Skip(s) => s.for_range(start, end, rev, f),
        }
    }

    /// Collects ranks `start..end` as owned pairs.
    pub fn range(&self, start: usize, end: usize, rev: bool) -> Vec<(Bytes, f64)> {
        let mut out = Vec::with_capacity(end.min(self.len()).saturating_sub(start));
        self.for_range(start, end, rev, |m, s| out.push((Bytes::copy_from_slice(m), s)));
        out
    }

    /// Removes ranks `start..end` (clamped); returns how many went.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        match self {
            ZSet::Packed(p) => p.remove_ranks(start, end),
            ZSet::Skip(s) => s.remove_ranks(start, end),
        }
        end - start
    }

    /// The element at rank `r`.
    pub fn at_rank(&self, r: usize) -> Option<(Bytes, f64)> {
        let mut out = None;
        self.for_range(r, r + 1, false, |m, s| out = Some((Bytes::copy_from_slice(m), s)));
        out
    }

    /// One ZSCAN step. A listpack is returned whole (cursor 0), as in Redis.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match self {
            ZSet::Packed(p) => {
                p.for_each(&mut f);
                0
            }
            ZSet::Skip(s) => s.scan(cursor, count, f),
        }
    }
}

/// The listpack-like encoding: one buffer of entries, each a LEB128 member
/// length, the member bytes, then the score as 8 little-endian bytes, kept in
/// order. Every operation is a linear walk, fine for the <= 128 entries it holds.
#[derive(Debug, Clone, Default)]
pub struct Packed {
    buf: Vec<u8>,
    len: usize,
}

fn put_varint(out: &mut Vec<u8>, n: usize) {
    super::varint::put(out, n as u64);
}

impl Packed {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Decodes the entry at byte offset `at`: (member, score, next offset).
    fn entry(&self, at: usize) -> Option<(&[u8], f64, usize)> {
        let (n, i) = super::varint::get(&self.buf, at)?;
        let n = usize::try_from(n).ok()?;
        let member = self.buf.get(i..i + n)?;
        let raw = self.buf.get(i + n..i + n + 8)?;
        let score = f64::from_le_bytes(raw.try_into().ok()?);
        Some((member, score, i + n + 8))
    }

    /// Walks entries while `f` returns true.
    fn for_each_until<'a>(&'a self, mut f: impl FnMut(&'a [u8], f64) -> bool) {
        let mut at = 0;
        while let Some((m, s, next)) = self.entry(at) {
            if !f(m, s) {
                return;
            }
            at = next;
        }
    }

    fn for_each<'a>(&'a self, mut f: impl FnMut(&'a [u8], f64)) {
        self.for_each_until(|m, s| {
            f(m, s);
            true
        });
    }

    fn for_ranks<'a>(&'a self, start: usize, end: usize, mut f: impl FnMut(&'a [u8], f64)) {
        let mut i = 0;
        self.for_each_until(|m, s| {
            if i >= start {
                f(m, s);
            }
            i += 1;
            i < end
        });
    }

    /// Byte offsets (start, end) and score of `member`'s entry.
    fn find(&self, member: &[u8]) -> Option<(usize, usize, f64)> {
        let mut at = 0;
        while let Some((m, s, next)) = self.entry(at) {
            if m == member {
                return Some((at, next, s));
            }
            at = next;
        }
        None
    }

    /// Byte offset of the entry with rank `r` (or the buffer end).
    fn offset_of_rank(&self, r: usize) -> usize {
        let mut at = 0;
        for _ in 0..r {
            match self.entry(at) {
                Some((_, _, next)) => at = next,
                None => break,
            }
        }
        at
    }

    fn encode(member: &[u8], score: f64) -> Vec<u8> {
        // Redis keeps integral scores in a listpack as integers, which turns -0 into 0.
        let score = if score == 0.0 { 0.0 } else { score };
        let mut e = Vec::with_capacity(member.len() + 10);
        put_varint(&mut e, member.len());
        e.extend_from_slice(member);
        e.extend_from_slice(&score.to_le_bytes());
        e
    }

    fn insert_sorted(&mut self, member: &[u8], score: f64) {
        let mut at = 0;
        while let Some((m, s, next)) = self.entry(at) {
            if before(score, member, s, m) {
                break;
            }
            at = next;
        }
        let e = Self::encode(member, score);
        self.buf.reserve_exact(e.len());
        self.buf.splice(at..at, e);
        self.len += 1;
    }

    /// Appends an element known to sort after every present one.
    fn push_back(&mut self, member: &[u8], score: f64) {
        self.buf.extend_from_slice(&Self::encode(member, score));
        self.len += 1;
    }

    fn remove_span(&mut self, start: usize, end: usize) {
        self.buf.drain(start..end);
        self.len -= 1;
        self.shrink();
    }

    fn remove_ranks(&mut self, start: usize, end: usize) {
        let a = self.offset_of_rank(start);
        let b = self.offset_of_rank(end);
        self.buf.drain(a..b);
        self.len -= end - start;
        self.shrink();
    }

    fn shrink(&mut self) {
        if self.buf.capacity() > 2 * self.buf.len() + 64 {
            self.buf.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(z: &ZSet) -> Vec<(Vec<u8>, f64)> {
        let mut out = vec![];
        z.for_range(0, z.len(), false, |m, s| out.push((m.to_vec(), s)));
        out
    }

    #[test]
    fn both_encodings_agree() {
        let small = Limits { entries: 1000, value: 1000 };
        let tiny = Limits { entries: 0, value: 0 };
        let mut a = ZSet::default();
        let mut b = ZSet::Skip(SkipList::new());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        use rand::{Rng, SeedableRng};
        for _ in 0..3000 {
            let m = format!("m{}", rng.gen_range(0..200)).into_bytes();
            let s = rng.gen_range(-5..5) as f64;
            match rng.gen_range(0..4) {
                0 => assert_eq!(a.remove(&m), b.remove(&m)),
                1 => {
                    let (x, y) = (rng.gen_range(0..50), rng.gen_range(0..50));
                    assert_eq!(a.remove_range(x, y), b.remove_range(x, y));
                }
                _ => assert_eq!(a.insert(&m, s, small), b.insert(&m, s, tiny)),
            }
            assert_eq!(a.len(), b.len());
            assert_eq!(a.rank(&m), b.rank(&m));
            assert_eq!(a.count_while(|sc, _| sc < s), b.count_while(|sc, _| sc < s));
        }
        assert_eq!(members(&a), members(&b));
        let mut sorted = members(&a);
        sorted.sort_by(|x, y| x.1.partial_cmp(&y.1).unwrap().then(x.0.cmp(&y.0)));
        assert_eq!(sorted, members(&a));
        let (mut ra, mut rb) = (vec![], vec![]);
        a.for_range(3, 40, true, |m, s| ra.push((m.to_vec(), s)));
        b.for_range(3, 40, true, |m, s| rb.push((m.to_vec(), s)));
        assert_eq!(ra, rb);
    }

    #[test]
    fn converts_past_limits() {
        let limits = Limits { entries: 2, value: 4 };
        let mut z = ZSet::for_first_member(b"a", limits);
        z.insert(b"a", 1.0, limits);
        z.insert(b"b", 2.0, limits);
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"c", 3.0, limits);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(members(&z).len(), 3);
        let mut z = ZSet::for_first_member(b"a", limits);
        z.insert(b"a", 1.0, limits);
        z.insert(b"long member", 1.0, limits);
        assert_eq!(z.encoding(), "skiplist");
    }
}
