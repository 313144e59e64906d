//! List values, stored compactly as Redis's quicklist does: a deque of
//! chunks, each a packed byte buffer of entries.
//!
//! An entry is `len` as LEB128, the bytes, then `len`'s LEB128 bytes again in
//! reverse order, so a chunk can be walked from either end (what a listpack's
//! back-length is for). A small element costs its length plus two bytes,
//! instead of a pointer-sized handle plus a heap block per element.

use bytes::Bytes;
use std::collections::VecDeque;

/// Chunk size limit in bytes (Redis's `list-max-listpack-size -2`).
const CHUNK_BYTES: usize = 8192;
/// Most free room a push to the head makes in front of a chunk's entries.
const FRONT_ROOM: usize = 2048;

/// A packed run of entries. The entries are `buf[head..]`: the bytes before
/// `head` are free room, so pushing to (and popping from) the front of the
/// head chunk moves nothing most of the time, where a listpack moves the
/// whole buffer on every push.
#[derive(Debug, Clone, Default)]
struct Chunk {
    buf: Vec<u8>,
    head: usize,
    count: usize,
}

fn varint_len(n: usize) -> usize {
    super::varint::len(n as u64)
}

fn encoded_len(e: &[u8]) -> usize {
    e.len() + 2 * varint_len(e.len())
}

fn put_entry(out: &mut Vec<u8>, e: &[u8]) {
    let start = out.len();
    out.resize(start + encoded_len(e), 0);
    write_entry(&mut out[start..], e);
}

/// Writes the entry for `e` into `slot`, which is exactly `encoded_len(e)` long.
fn write_entry(slot: &mut [u8], e: &[u8]) {
    let (hdr, n) = super::varint::encode(e.len() as u64);
    slot[..n].copy_from_slice(&hdr[..n]);
    slot[n..n + e.len()].copy_from_slice(e);
    for (dst, b) in slot[n + e.len()..].iter_mut().zip(hdr[..n].iter().rev()) {
        *dst = *b;
    }
}

/// Decodes the entry starting at `pos`: (data start, data len, next entry).
fn entry_at(buf: &[u8], pos: usize) -> (usize, usize, usize) {
    let (mut len, mut shift, mut i) = (0usize, 0u32, pos);
    loop {
        let b = buf[i];
        len |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let hdr = i - pos;
    (i, len, i + len + hdr)
}

/// Decodes the entry ending at `end`: (data start, data len, entry start).
fn entry_before(buf: &[u8], end: usize) -> (usize, usize, usize) {
    let (mut len, mut shift, mut i) = (0usize, 0u32, end);
    loop {
        i -= 1;
        let b = buf[i];
        len |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let hdr = end - i;
    let data = i - len;
    (data, len, data - hdr)
}

impl Chunk {
    /// The packed entries.
    fn data(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    fn fits(&self, e: &[u8]) -> bool {
        self.count == 0 || self.data().len() + encoded_len(e) <= CHUNK_BYTES
    }

    /// Drops the free room in front (a chunk that stops being the head).
    fn compact(&mut self) {
        if self.head > 0 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.shrink_to_fit();
    }

    fn push_back(&mut self, e: &[u8]) {
        self.buf.reserve_exact(encoded_len(e));
        put_entry(&mut self.buf, e);
        self.count += 1;
    }

    fn push_front(&mut self, e: &[u8]) {
        let need = encoded_len(e);
        if self.head < need {
            // Move the entries once to make room for this and later pushes:
            // as much room again as there are bytes, up to FRONT_ROOM.
            let len = self.data().len();
            let room = need.max(len.min(FRONT_ROOM));
            let mut grown = Vec::with_capacity(room + len);
            grown.resize(room, 0);
            grown.extend_from_slice(self.data());
            self.buf = grown;
            self.head = room;
        }
        let start = self.head - need;
        write_entry(&mut self.buf[start..self.head], e);
        self.head = start;
        self.count += 1;
    }

    fn pop_front(&mut self) -> Bytes {
        let (d, n, next) = entry_at(&self.buf, self.head);
        let out = Bytes::copy_from_slice(&self.buf[d..d + n]);
        self.head = next;
        self.count -= 1;
        out
    }

    fn pop_back(&mut self) -> Bytes {
        let (d, n, start) = entry_before(&self.buf, self.buf.len());
        let out = Bytes::copy_from_slice(&self.buf[d..d + n]);
        self.buf.truncate(start.max(self.head));
        self.count -= 1;
        out
    }

    fn iter(&self) -> ChunkIter<'_> {
        ChunkIter { buf: &self.buf, front: self.head, back: self.buf.len() }
    }

    /// Byte offset in `buf` of entry `i` (or the end for `i == count`).
    fn offset_of(&self, i: usize) -> usize {
        let mut pos = self.head;
        for _ in 0..i {
            pos = entry_at(&self.buf, pos).2;
        }
        pos
    }

    /// Packs `items` into chunks of at most `CHUNK_BYTES` (one oversized
    /// element gets a chunk of its own).
    fn pack<'a>(items: impl Iterator<Item = &'a [u8]>) -> Vec<Chunk> {
        let mut out = Vec::new();
        let mut cur = Chunk::default();
        for e in items {
            if !cur.fits(e) {
                cur.buf.shrink_to_fit();
                out.push(std::mem::take(&mut cur));
            }
            put_entry(&mut cur.buf, e);
            cur.count += 1;
        }
        if cur.count > 0 {
            cur.buf.shrink_to_fit();
            out.push(cur);
        }
        out
    }
}

/// Walks a chunk's entries from both ends.
struct ChunkIter<'a> {
    buf: &'a [u8],
    front: usize,
    back: usize,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (d, n, next) = entry_at(self.buf, self.front);
        self.front = next;
        Some(&self.buf[d..d + n])
    }
}

impl<'a> DoubleEndedIterator for ChunkIter<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (d, n, start) = entry_before(self.buf, self.back);
        self.back = start;
        Some(&self.buf[d..d + n])
    }
}

#[derive(Debug, Clone, Default)]
pub struct List {
    chunks: VecDeque<Chunk>,
    len: usize,
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks holding the elements (one allocation each).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    pub fn push_back(&mut self, e: &[u8]) {
        match self.chunks.back_mut() {
            Some(c) if c.fits(e) => c.push_back(e),
            _ => {
                let mut c = Chunk::default();
                c.push_back(e);
                self.chunks.push_back(c);
            }
        }
        self.len += 1;
    }

    pub fn push_front(&mut self, e: &[u8]) {
        match self.chunks.front_mut() {
            Some(c) if c.fits(e) => c.push_front(e),
            _ => {
                if let Some(old) = self.chunks.front_mut() {
                    old.compact();
                }
                let mut c = Chunk::default();
                c.push_back(e);
                self.chunks.push_front(c);
            }
        }
        self.len += 1;
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        let c = self.chunks.front_mut()?;
        let e = c.pop_front();
        if c.count == 0 {
            self.chunks.pop_front();
        }
        self.len -= 1;
        Some(e)
    }

    pub fn pop_back(&mut self) -> Option<Bytes> {
        let c = self.chunks.back_mut()?;
        let e = c.pop_back();
        if c.count == 0 {
            self.chunks.pop_back();
        }
        self.len -= 1;
        Some(e)
    }

    /// Pops from the head (`left`) or the tail.
    pub fn pop(&mut self, left: bool) -> Option<Bytes> {
        if left {
            self.pop_front()
        } else {
            self.pop_back()
        }
    }

    pub fn push(&mut self, left: bool, e: &[u8]) {
        if left {
            self.push_front(e)
        } else {
            self.push_back(e)
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// The chunk holding element `i` and the element's index inside it.
    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.len {
            return None;
        }
        if i < self.len / 2 {
            let mut rest = i;
            for (ci, c) in self.chunks.iter().enumerate() {
                if rest < c.count {
                    return Some((ci, rest));
                }
                rest -= c.count;
            }
        } else {
            let mut from_end = self.len - 1 - i;
            for (ci, c) in self.chunks.iter().enumerate().rev() {
                if from_end < c.count {
                    return Some((ci, c.count - 1 - from_end));
                }
                from_end -= c.count;
            }
        }
        None
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (ci, off) = self.locate(i)?;
        self.chunks.get(ci)?.iter().nth(off)
    }

    /// Elements `start..=stop` (already clamped by the caller), borrowed.
    pub fn range_iter(&self, start: usize, stop: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (ci, off, want) = match self.locate(start) {
            Some((ci, off)) => (ci, off, stop.saturating_sub(start) + 1),
            None => (0, 0, 0),
        };
        self.chunks.iter().skip(ci).flat_map(|c| c.iter()).skip(off).take(want)
    }

    /// Rewrites the chunk holding element `i`: `f` gets its elements and the
    /// position of `i` among them.
    fn edit_chunk(&mut self, i: usize, f: impl FnOnce(&mut Vec<Vec<u8>>, usize)) -> bool {
        let Some((ci, off)) = self.locate(i) else {
            return false;
        };
        let Some(c) = self.chunks.get(ci) else {
            return false;
        };
        let mut items: Vec<Vec<u8>> = c.iter().map(|e| e.to_vec()).collect();
        let before = items.len();
        f(&mut items, off);
        self.len = self.len + items.len() - before;
        let packed = Chunk::pack(items.iter().map(|v| v.as_slice()));
        self.chunks.remove(ci);
        for (k, c) in packed.into_iter().enumerate() {
            self.chunks.insert(ci + k, c);
        }
        true
    }

    pub fn set(&mut self, i: usize, e: &[u8]) -> bool {
        self.edit_chunk(i, |items, off| {
            if let Some(slot) = items.get_mut(off) {
                *slot = e.to_vec();
            }
        })
    }

    /// Inserts `e` before (or after) element `i`.
    pub fn insert(&mut self, i: usize, after: bool, e: &[u8]) -> bool {
        self.edit_chunk(i, |items, off| {
            let at = if after { off + 1 } else { off };
            items.insert(at.min(items.len()), e.to_vec());
        })
    }

    /// Removes the first `n` elements.
    pub fn drop_front(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(c) = self.chunks.front_mut() else {
                break;
            };
            if n >= c.count {
                n -= c.count;
                self.chunks.pop_front();
            } else {
                c.head = c.offset_of(n);
                c.compact();
                c.count -= n;
                n = 0;
            }
        }
    }

    /// Removes the last `n` elements.
    pub fn drop_back(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(c) = self.chunks.back_mut() else {
                break;
            };
            if n >= c.count {
                n -= c.count;
                self.chunks.pop_back();
            } else {
                let keep = c.count - n;
                let cut = c.offset_of(keep);
                c.buf.truncate(cut);
                c.buf.shrink_to_fit();
                c.count = keep;
                n = 0;
            }
        }
    }

    /// Keeps only the elements for which `keep(index, element)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(usize, &[u8]) -> bool) {
        let rebuilt = {
            let kept = self.iter().enumerate().filter(|(i, e)| keep(*i, e)).map(|(_, e)| e);
            List::from_chunks(Chunk::pack(kept))
        };
        *self = rebuilt;
    }

    fn from_chunks(chunks: Vec<Chunk>) -> List {
        let len = chunks.iter().map(|c| c.count).sum();
        List { chunks: chunks.into(), len }
    }

    /// Heap bytes (MEMORY USAGE; see `storage::usage`): the chunk deque,
    /// and each chunk's buffer, sampled over the first `samples` chunks.
    pub fn heap_usage(&self, samples: usize) -> usize {
        use super::usage::{block, sampled};
        let ring = block(self.chunks.capacity() * std::mem::size_of::<Chunk>());
        ring + sampled(self.chunks.iter().map(|c| block(c.buf.capacity())), self.chunks.len(), samples)
    }

    /// Chunk count and the bytes their entries take (DEBUG OBJECT's
    /// quicklist figures).
    pub fn chunk_stats(&self) -> (usize, usize) {
        (self.chunks.len(), self.chunks.iter().map(|c| c.buf.len() - c.head).sum())
    }
}

impl<'a> FromIterator<&'a [u8]> for List {
    fn from_iter<T: IntoIterator<Item = &'a [u8]>>(iter: T) -> List {
        List::from_chunks(Chunk::pack(iter.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn model_check(l: &List, m: &VecDeque<Vec<u8>>) {
        assert_eq!(l.len(), m.len());
        let got: Vec<&[u8]> = l.iter().collect();
        let want: Vec<&[u8]> = m.iter().map(|v| v.as_slice()).collect();
        assert_eq!(got, want);
        let back: Vec<&[u8]> = l.iter().rev().collect();
        let want_back: Vec<&[u8]> = m.iter().rev().map(|v| v.as_slice()).collect();
        assert_eq!(back, want_back);
        assert_eq!(l.chunks.iter().map(|c| c.count).sum::<usize>(), l.len);
    }

    #[test]
    fn head_pushes_leave_room_only_in_the_head_chunk() {
        let mut l = List::new();
        for i in 0..100_000u32 {
            l.push_front(i.to_string().as_bytes());
        }
        let data: usize = l.chunks.iter().map(|c| c.data().len()).sum();
        let spare: usize = l.chunks.iter().map(|c| c.buf.capacity() - c.data().len()).sum();
        assert!(spare <= FRONT_ROOM, "{spare} spare bytes over {data} bytes of entries");
        assert!(l.chunks.iter().skip(1).all(|c| c.head == 0));
        assert_eq!(l.get(0), Some(&b"99999"[..]));
        assert_eq!(l.get(99_999), Some(&b"0"[..]));
    }

    #[test]
    fn matches_a_deque_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut l = List::new();
        let mut m: VecDeque<Vec<u8>> = VecDeque::new();
        for step in 0..20_000 {
            let len = if rng.gen_bool(0.01) { rng.gen_range(100..20_000) } else { rng.gen_range(0..40) };
            let e: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            match rng.gen_range(0..10) {
                0..=2 => {
                    l.push_front(&e);
                    m.push_front(e);
                }
                3..=5 => {
                    l.push_back(&e);
                    m.push_back(e);
                }
                6 => assert_eq!(l.pop_front().map(|b| b.to_vec()), m.pop_front()),
                7 => assert_eq!(l.pop_back().map(|b| b.to_vec()), m.pop_back()),
                8 if !m.is_empty() => {
                    let i = rng.gen_range(0..m.len());
                    assert_eq!(l.get(i), Some(m[i].as_slice()));
                    if rng.gen_bool(0.5) {
                        l.set(i, &e);
                        m[i] = e;
                    } else {
                        l.insert(i, true, &e);
                        m.insert(i + 1, e);
                    }
                }
                _ if !m.is_empty() => {
                    let n = rng.gen_range(0..3.min(m.len()) + 1);
                    if rng.gen_bool(0.5) {
                        l.drop_front(n);
                        m.drain(..n);
                    } else {
                        l.drop_back(n);
                        m.truncate(m.len() - n);
                    }
                }
                _ => {}
            }
            if step % 997 == 0 {
                model_check(&l, &m);
                let a = rng.gen_range(0..m.len().max(1));
                let b = rng.gen_range(a..m.len().max(1));
                if !m.is_empty() {
                    let got: Vec<Bytes> = l.range_iter(a, b).map(Bytes::copy_from_slice).collect();
                    let want: Vec<Bytes> = m.range(a..=b).map(|v| Bytes::copy_from_slice(v)).collect();
                    assert_eq!(got, want);
                }
            }
        }
        model_check(&l, &m);
        l.retain(|i, _| i % 3 == 0);
        let m: VecDeque<Vec<u8>> = m.into_iter().enumerate().filter(|(i, _)| i % 3 == 0).map(|(_, e)| e).collect();
        model_check(&l, &m);
    }
}
