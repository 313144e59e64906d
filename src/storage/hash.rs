//! Hash values in two encodings, as Redis keeps them.
//!
//! Small hashes are one packed buffer of alternating field and value entries
//! (each LEB128 length + bytes), like a listpack: about two bytes of
//! overhead per string, lookups by linear scan over at most
//! `hash-max-listpack-entries` pairs, and insertion order kept (so HGETALL
//! answers in Redis's order). Past the limits a hash becomes a table whose
//! slots hold one boxed buffer per pair (field and value in one allocation),
//! in an index set so HSCAN and HRANDFIELD have positions to work with.

use bytes::Bytes;
use indexmap::{Equivalent, IndexSet};
use std::hash::{Hash as StdHash, Hasher};

/// Redis 7.0 defaults (`hash-max-listpack-entries`, `hash-max-listpack-value`).
pub const DEFAULT_MAX_ENTRIES: usize = 512;
pub const DEFAULT_MAX_VALUE: usize = 64;

/// When a packed hash must become a table.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_entries: DEFAULT_MAX_ENTRIES, max_value: DEFAULT_MAX_VALUE }
    }
}

fn put_varint(out: &mut Vec<u8>, n: usize) {
    super::varint::put(out, n as u64);
}

fn varint_len(n: usize) -> usize {
    super::varint::len(n as u64)
}

/// Reads the varint at `pos`: (value, position after it).
fn get_varint(buf: &[u8], pos: usize) -> (usize, usize) {
    let (v, next) = super::varint::get(buf, pos).expect("packed hash entry is well formed");
    (v as usize, next)
}

/// One field/value pair in a single allocation: varint(field len), field, value.
#[derive(Debug, Clone)]
pub struct Pair(Box<[u8]>);

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Pair {
        let mut v = Vec::with_capacity(varint_len(field.len()) + field.len() + value.len());
        put_varint(&mut v, field.len());
        v.extend_from_slice(field);
        v.extend_from_slice(value);
        Pair(v.into_boxed_slice())
    }

    fn split(&self) -> (&[u8], &[u8]) {
        let (n, at) = get_varint(&self.0, 0);
        self.0[at..].split_at(n)
    }

    pub fn field(&self) -> &[u8] {
        self.split().0
    }

    pub fn value(&self) -> &[u8] {
        self.split().1
    }
}

impl StdHash for Pair {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.field().hash(state)
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Pair) -> bool {
        self.field() == other.field()
    }
}

impl Eq for Pair {}

/// Looks a pair up by its field alone.
#[derive(Hash)]
struct FieldKey<'a>(&'a [u8]);

impl Equivalent<Pair> for FieldKey<'_> {
    fn equivalent(&self, key: &Pair) -> bool {
        self.0 == key.field()
    }
}

pub type Table = IndexSet<Pair, ahash::RandomState>;

/// A packed small hash: entries field, value, field, value, ...
#[derive(Debug, Clone, Default)]
pub struct Packed {
    buf: Vec<u8>,
    pairs: usize,
}

/// Position of one pair inside a packed buffer.
struct Slot {
    start: usize,
    value: (usize, usize),
    end: usize,
}

impl Packed {
    fn iter(&self) -> PackedIter<'_> {
        PackedIter { buf: &self.buf, pos: 0 }
    }

    fn find(&self, field: &[u8]) -> Option<Slot> {
        let mut pos = 0;
        while pos < self.buf.len() {
            let (flen, fstart) = get_varint(&self.buf, pos);
            let (vlen, vstart) = get_varint(&self.buf, fstart + flen);
            let end = vstart + vlen;
            if self.buf.get(fstart..fstart + flen) == Some(field) {
                return Some(Slot { start: pos, value: (vstart, vlen), end });
            }
            pos = end;
        }
        None
    }

    fn encode_pair(field: &[u8], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(field.len() + value.len() + 4);
        put_varint(&mut v, field.len());
        v.extend_from_slice(field);
        put_varint(&mut v, value.len());
        v.extend_from_slice(value);
        v
    }
}

struct PackedIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let (flen, fstart) = get_varint(self.buf, self.pos);
        let (vlen, vstart) = get_varint(self.buf, fstart + flen);
        self.pos = vstart + vlen;
        Some((&self.buf[fstart..fstart + flen], &self.buf[vstart..vstart + vlen]))
    }
}

#[derive(Debug, Clone)]
pub enum Hash {
    Packed(Packed),
    Table(Box<Table>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Packed(Packed::default())
    }
}

impl Hash {
    pub fn new() -> Hash {
        Hash::default()
    }

    /// A packed hash holding `pairs` as given, whatever their lengths (a
    /// listpack read from an RDB file stays one, as in Redis). The fields
    /// must be distinct.
    pub fn packed_from<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Hash {
        let mut p = Packed::default();
        for (f, v) in pairs {
            p.buf.extend_from_slice(&Packed::encode_pair(f, v));
            p.pairs += 1;
        }
        p.buf.shrink_to_fit();
        Hash::Packed(p)
    }

    pub fn len(&self) -> usize {
        match self {
            Hash::Packed(p) => p.pairs,
            Hash::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes (MEMORY USAGE; see `storage::usage`): the packed buffer,
    /// or the table with one block per pair, sampled over the first
    /// `samples` pairs.
    pub fn heap_usage(&self, samples: usize) -> usize {
        use super::usage::{block, index_set_bytes, sampled};
        use std::mem::size_of;
        match self {
            Hash::Packed(p) => block(p.buf.capacity()),
            Hash::Table(t) => {
                block(size_of::<Table>())
                    + index_set_bytes(t.capacity(), size_of::<Pair>() + size_of::<usize>())
                    + sampled(t.iter().map(|p| block(p.0.len())), t.len(), samples)
            }
        }
    }

    /// The name `OBJECT ENCODING` gives.
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Packed(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Packed(p) => p.find(field).and_then(|s| p.buf.get(s.value.0..s.value.0 + s.value.1)),
            Hash::Table(t) => t.get(&FieldKey(field)).map(|p| p.value()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value`; true when the field is new. Converts to a
    /// table when the pair is too long for the packed form or the hash
    /// grows past `limits.max_entries` (and never converts back, as Redis).
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: Limits) -> bool {
        if matches!(self, Hash::Packed(_)) {
            if field.len() > limits.max_value || value.len() > limits.max_value {
                self.convert();
            } else {
                return self.set_packed(field, value, limits);
            }
        }
        let Hash::Table(t) = self else { return false };
        if t.len() == t.capacity() {
            // Grow the pair array by a quarter: left alone, the index set
            // sizes it like its hash table (up to 1.75x the pairs held).
            t.reserve_exact((t.len() / 4).max(8));
        }
        t.replace(Pair::new(field, value)).is_none()
    }

    fn set_packed(&mut self, field: &[u8], value: &[u8], limits: Limits) -> bool {
        let Hash::Packed(p) = self else { return false };
        match p.find(field) {
            Some(slot) => {
                let (vstart, vlen) = slot.value;
                let vhdr = varint_len(vlen);
                let mut enc = Vec::with_capacity(value.len() + 2);
                put_varint(&mut enc, value.len());
                enc.extend_from_slice(value);
                p.buf.splice(vstart - vhdr..slot.end, enc);
                p.buf.shrink_to_fit();
                false
            }
            None => {
                let enc = Packed::encode_pair(field, value);
                p.buf.reserve_exact(enc.len());
                p.buf.extend_from_slice(&enc);
                p.pairs += 1;
                if p.pairs > limits.max_entries {
                    self.convert();
                }
                true
            }
        }
    }

    /// Turns a packed hash into a table.
    fn convert(&mut self) {
        if let Hash::Packed(p) = self {
            let mut t = Table::with_capacity_and_hasher(p.pairs, ahash::RandomState::new());
            for (f, v) in p.iter() {
                t.insert(Pair::new(f, v));
            }
            *self = Hash::Table(Box::new(t));
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Packed(p) => match p.find(field) {
                Some(slot) => {
                    p.buf.drain(slot.start..slot.end);
                    p.buf.shrink_to_fit();
                    p.pairs -= 1;
                    true
                }
                None => false,
            },
            Hash::Table(t) => {
                let removed = t.swap_remove(&FieldKey(field));
                if removed && t.capacity() > 64 && t.len() * 8 < t.capacity() {
                    t.shrink_to_fit();
                }
                removed
            }
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            Hash::Packed(p) => Box::new(p.iter()),
            Hash::Table(t) => Box::new(t.iter().map(|p| p.split())),
        }
    }

    /// The pair at position `i` (0..len), for random picks.
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Packed(p) => p.iter().nth(i),
            Hash::Table(t) => t.get_index(i).map(|p| p.split()),
        }
    }

    /// All pairs as owned bytes, in iteration order.
    pub fn pairs(&self) -> Vec<(Bytes, Bytes)> {
        self.iter().map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v))).collect()
    }

    /// One HSCAN step over a table (`pos` 0 starts; returns the next position,
    /// 0 when done). Positions count down from the top so that swap-removal
    /// (which moves the last, already visited pair into the hole) and
    /// appends (not yet visited) never hide a pair present for the whole scan.
    /// A packed hash is returned whole, as Redis does for listpacks.
    pub fn scan(&self, pos: usize, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> usize {
        let t = match self {
            Hash::Packed(p) => {
                p.iter().for_each(|(k, v)| f(k, v));
                return 0;
            }
            Hash::Table(t) => t,
        };
        let mut next = if pos == 0 { t.len() } else { (pos - 1).min(t.len()) };
        let mut visited = 0;
        while next > 0 && visited < count {
            next -= 1;
            if let Some(p) = t.get_index(next) {
                let (k, v) = p.split();
                f(k, v);
            }
            visited += 1;
        }
        if next == 0 {
            0
        } else {
            next + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;

    #[test]
    fn matches_a_map_model_in_both_encodings() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let limits = Limits { max_entries: 32, max_value: 16 };
        for _round in 0..20 {
            let mut h = Hash::new();
            let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let mut order: Vec<Vec<u8>> = Vec::new();
            for _ in 0..300 {
                let f = format!("f{}", rng.gen_range(0..60)).into_bytes();
                let vlen = if rng.gen_bool(0.02) { 40 } else { rng.gen_range(0..8) };
                let v: Vec<u8> = (0..vlen).map(|_| rng.gen_range(b'a'..=b'z')).collect();
                if rng.gen_bool(0.3) {
                    assert_eq!(h.remove(&f), m.remove(&f).is_some());
                    order.retain(|x| x != &f);
                } else {
                    let new = h.set(&f, &v, limits);
                    assert_eq!(new, m.insert(f.clone(), v).is_none());
                    if new {
                        order.push(f);
                    }
                }
                assert_eq!(h.len(), m.len());
            }
            for (f, v) in &m {
                assert_eq!(h.get(f), Some(v.as_slice()));
            }
            if let Hash::Packed(_) = h {
                let got: Vec<Vec<u8>> = h.iter().map(|(f, _)| f.to_vec()).collect();
                assert_eq!(got, order, "packed hashes keep insertion order");
            }
            let mut seen = 0;
            let mut pos = 0;
            loop {
                pos = h.scan(pos, 7, |_, _| seen += 1);
                if pos == 0 {
                    break;
                }
            }
            assert_eq!(seen, m.len());
        }
    }

    #[test]
    fn converts_on_long_values_and_many_entries() {
        let limits = Limits { max_entries: 4, max_value: 8 };
        let mut h = Hash::new();
        h.set(b"a", b"1", limits);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"b", b"0123456789", limits);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"1"[..]));
        let mut h = Hash::new();
        for i in 0..4 {
            h.set(format!("f{i}").as_bytes(), b"v", limits);
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f9", b"v", limits);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 5);
    }
}
