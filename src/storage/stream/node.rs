//! A packed run of stream entries, the counterpart of one listpack in
//! Redis's radix tree.
//!
//! Layout of `data`: the master field names (count, then each name), then the
//! entries back to back. An entry is a flag byte, the ms delta against the
//! node's master ID, the sequence (as a delta when the ms delta is 0), then
//! either only the values (flag SAME: the fields are the master's) or the
//! field count and every field/value pair. Numbers are LEB128, strings are
//! length-prefixed. A typical `XADD s * f v` entry costs 5 to 6 bytes.
//! Deleting only flips a bit; the node goes away when no live entry is left.

use super::StreamId;
use bytes::Bytes;

const DELETED: u8 = 1;
const SAME: u8 = 2;

#[derive(Debug, Clone, Default)]
pub struct Node {
    data: Vec<u8>,
    /// Entries stored, deleted ones included (what fills a node).
    pub count: u16,
    /// Entries not deleted.
    pub live: u16,
    /// Offset of the last entry.
    last: u32,
    /// The size Redis's listpack for this node would have, less its two
    /// counters (live and deleted entries), which `lp_bytes` adds: Redis
    /// starts a new node by that size, so nodes split where Redis's do.
    lp_body: u32,
}

/// Listpack size of the master entry: header and terminator, the field
/// count, the names, the closing 0 (the two counters are added apart).
fn master_lp_size(names: &[&[u8]]) -> usize {
    use crate::storage::codec::listpack::{entry_size, int_entry_size, HEADER};
    HEADER
        + 1
        + int_entry_size(names.len() as i64)
        + names.iter().map(|n| entry_size(n)).sum::<usize>()
        + int_entry_size(0)
}

fn put_varint(out: &mut Vec<u8>, n: u64) {
    crate::storage::varint::put(out, n);
}

/// Reads the varint at `*pos` and moves past it (0 at a truncated end).
fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    match crate::storage::varint::get(buf, *pos) {
        Some((n, next)) => {
            *pos = next;
            n
        }
        None => {
            *pos = buf.len();
            0
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn get_str<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = get_varint(buf, pos) as usize;
    let start = (*pos).min(buf.len());
    let end = start.saturating_add(len).min(buf.len());
    *pos = end;
    &buf[start..end]
}

/// One entry's position and header, as the iterator yields it.
#[derive(Clone, Copy, Debug)]
pub struct EntryRef {
    pub pos: usize,
    pub id: StreamId,
    pub deleted: bool,
}

impl Node {
    /// A node whose master entry is `id` with `fields` (flat field/value list).
    pub fn new(master: StreamId, fields: &[Bytes]) -> Self {
        let mut data = Vec::with_capacity(64);
        let n = fields.len() / 2;
        put_varint(&mut data, n as u64);
        for f in fields.iter().step_by(2) {
            put_str(&mut data, f);
        }
        let names: Vec<&[u8]> = fields.iter().step_by(2).map(|f| &f[..]).collect();
        let lp_body = master_lp_size(&names) as u32;
        let mut node = Node { data, count: 0, live: 0, last: 0, lp_body };
        node.push(master, master, fields);
        node
    }

    /// A node with no entries yet whose master entry names `names` (a node
    /// read back from an RDB file, whose master fields are given).
    pub fn with_master_fields(names: &[&[u8]]) -> Self {
        let mut data = Vec::with_capacity(64);
        put_varint(&mut data, names.len() as u64);
        for f in names {
            put_str(&mut data, f);
        }
        Node { data, count: 0, live: 0, last: 0, lp_body: master_lp_size(names) as u32 }
    }

    /// The master entry's field names.
    pub fn master_fields(&self) -> Vec<&[u8]> {
        let mut pos = 0;
        let n = get_varint(&self.data, &mut pos);
        (0..n).map(|_| get_str(&self.data, &mut pos)).collect()
    }

    /// True when the entry at `pos` is stored with the master's field names.
    pub fn same_fields_at(&self, pos: usize) -> bool {
        self.data.get(pos).is_some_and(|f| f & SAME != 0)
    }

    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The size of the listpack Redis keeps for this node.
    pub fn lp_bytes(&self) -> usize {
        use crate::storage::codec::listpack::int_entry_size;
        self.lp_body as usize + int_entry_size(self.live as i64) + int_entry_size(self.count as i64 - self.live as i64)
    }

    pub fn heap_size(&self) -> usize {
        self.data.capacity()
    }

    pub fn shrink(&mut self) {
        self.data.shrink_to_fit();
    }

    fn header_end(&self) -> usize {
        let mut pos = 0;
        let n = get_varint(&self.data, &mut pos);
        for _ in 0..n {
            get_str(&self.data, &mut pos);
        }
        pos
    }

    fn same_fields(&self, fields: &[Bytes]) -> bool {
        let mut pos = 0;
        let n = get_varint(&self.data, &mut pos) as usize;
        if n != fields.len() / 2 {
            return false;
        }
        fields.iter().step_by(2).all(|f| get_str(&self.data, &mut pos) == &f[..])
    }

    /// Appends an entry; `id` is above every ID in the node.
    pub fn push(&mut self, master: StreamId, id: StreamId, fields: &[Bytes]) {
        use crate::storage::codec::listpack::{entry_size, int_entry_size};
        let same = self.same_fields(fields);
        let nf = (fields.len() / 2) as i64;
        let mut lp = int_entry_size(if same { 2 } else { 0 })
            + int_entry_size(id.ms.wrapping_sub(master.ms) as i64)
            + int_entry_size(id.seq.wrapping_sub(master.seq) as i64)
            + int_entry_size(if same { nf + 3 } else { 2 * nf + 4 });
        if same {
            lp += fields.iter().skip(1).step_by(2).map(|v| entry_size(v)).sum::<usize>();
        } else {
            lp += int_entry_size(nf) + fields.iter().map(|f| entry_size(f)).sum::<usize>();
        }
        self.lp_body = self.lp_body.saturating_add(lp.min(u32::MAX as usize) as u32);
        let start = self.data.len();
        self.data.push(if same { SAME } else { 0 });
        let ms_delta = id.ms - master.ms;
        put_varint(&mut self.data, ms_delta);
        put_varint(&mut self.data, if ms_delta == 0 { id.seq - master.seq } else { id.seq });
        if same {
            for v in fields.iter().skip(1).step_by(2) {
                put_str(&mut self.data, v);
            }
        } else {
            put_varint(&mut self.data, (fields.len() / 2) as u64);
            for s in fields {
                put_str(&mut self.data, s);
            }
        }
        self.last = start as u32;
        self.count += 1;
        self.live += 1;
    }

    /// Appends an entry read back from an RDB file, deleted or not; `id`
    /// is above every ID in the node and not below `master`.
    pub fn push_loaded(&mut self, master: StreamId, id: StreamId, fields: &[Bytes], deleted: bool) {
        self.push(master, id, fields);
        if deleted {
            self.mark_deleted(self.last as usize);
        }
    }

    /// Decodes the entry header at `pos`; returns it and the position of its fields.
    fn header(&self, master: StreamId, pos: usize) -> (EntryRef, u8, usize) {
        let mut p = pos;
        let flags = self.data.get(p).copied().unwrap_or(0);
        p += 1;
        let ms_delta = get_varint(&self.data, &mut p);
        let seq = get_varint(&self.data, &mut p);
        let id = if ms_delta == 0 {
            StreamId::new(master.ms, master.seq.wrapping_add(seq))
        } else {
            StreamId::new(master.ms.wrapping_add(ms_delta), seq)
        };
        (EntryRef { pos, id, deleted: flags & DELETED != 0 }, flags, p)
    }

    fn skip_fields(&self, flags: u8, mut p: usize, master_fields: usize) -> usize {
        let strings = if flags & SAME != 0 { master_fields } else { get_varint(&self.data, &mut p) as usize * 2 };
        for _ in 0..strings {
            get_str(&self.data, &mut p);
        }
        p
    }

    fn master_field_count(&self) -> usize {
        let mut pos = 0;
        get_varint(&self.data, &mut pos) as usize
    }

    /// The entries in order, deleted ones included.
    pub fn entries(&self, master: StreamId) -> impl Iterator<Item = EntryRef> + '_ {
        let nf = self.master_field_count();
        let mut pos = self.header_end();
        let mut left = self.count;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let (e, flags, p) = self.header(master, pos);
            pos = self.skip_fields(flags, p, nf);
            Some(e)
        })
    }

    /// The last entry's ID (deleted or not).
    pub fn last_id(&self, master: StreamId) -> StreamId {
        self.header(master, self.last as usize).0.id
    }

    /// The flat field/value list of the entry at `pos`.
    pub fn fields(&self, master: StreamId, pos: usize) -> Vec<Bytes> {
        let (_, flags, mut p) = self.header(master, pos);
        if flags & SAME != 0 {
            let mut hp = 0;
            let n = get_varint(&self.data, &mut hp) as usize;
            let mut out = Vec::with_capacity(n * 2);
            for _ in 0..n {
                out.push(Bytes::copy_from_slice(get_str(&self.data, &mut hp)));
                out.push(Bytes::copy_from_slice(get_str(&self.data, &mut p)));
            }
            out
        } else {
            let n = get_varint(&self.data, &mut p) as usize;
            (0..n * 2).map(|_| Bytes::copy_from_slice(get_str(&self.data, &mut p))).collect()
        }
    }

    /// Marks the entry at `pos` deleted. False when it already was.
    pub fn mark_deleted(&mut self, pos: usize) -> bool {
        match self.data.get_mut(pos) {
            Some(f) if *f & DELETED == 0 => {
                *f |= DELETED;
                self.live -= 1;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn round_trip() {
        let m = StreamId::new(100, 5);
        let mut n = Node::new(m, &b(&["f", "v", "g", "w"]));
        n.push(m, StreamId::new(100, 6), &b(&["f", "x", "g", "y"]));
        n.push(m, StreamId::new(300, 0), &b(&["other", "1"]));
        let e: Vec<_> = n.entries(m).collect();
        assert_eq!(e.iter().map(|e| e.id).collect::<Vec<_>>(), vec![m, StreamId::new(100, 6), StreamId::new(300, 0)]);
        assert_eq!(n.fields(m, e[1].pos), b(&["f", "x", "g", "y"]));
        assert_eq!(n.fields(m, e[2].pos), b(&["other", "1"]));
        assert_eq!(n.last_id(m), StreamId::new(300, 0));
        assert!(n.mark_deleted(e[1].pos));
        assert!(!n.mark_deleted(e[1].pos));
        assert!(n.entries(m).nth(1).unwrap().deleted);
        assert_eq!(n.live, 2);
    }
}
