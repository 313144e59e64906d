//! Stream values: entries in packed nodes (see `node.rs`) indexed by their
//! first ID in a B-tree, plus consumer groups with their pending lists.
//!
//! A node holds at most `NODE_MAX_ENTRIES` entries or `NODE_MAX_BYTES`
//! bytes of Redis's listpack for it, as Redis's `stream-node-max-entries`
//! and `stream-node-max-bytes` defaults do, so nodes split where Redis's
//! do: approximate trimming (`~`) drops the same whole nodes, and RDB
//! payloads carry the same listpacks.

mod id;
mod node;

pub use id::{parse_id, ParsedId, StreamId};
pub use node::{EntryRef, Node};

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

pub const NODE_MAX_ENTRIES: u16 = 100;
pub const NODE_MAX_BYTES: usize = 4096;
/// Redis's bound on one listpack (STREAM_LISTPACK_MAX_SIZE).
const LISTPACK_MAX_BYTES: usize = 1 << 30;

/// One delivered, not yet acknowledged entry of a group.
#[derive(Debug, Clone)]
pub struct Nack {
    pub delivery_time: u64,
    pub delivery_count: u64,
    pub consumer: Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct Consumer {
    pub seen_time: u64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read (its logical position); None when unknown.
    pub entries_read: Option<u64>,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> Self {
        Group { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// Removes `id` from the group's and its owner's pending lists.
    pub fn remove_pending(&mut self, id: StreamId) -> Option<Nack> {
        let nack = self.pel.remove(&id)?;
        if let Some(c) = self.consumers.get_mut(&nack.consumer) {
            c.pel.remove(&id);
        }
        Some(nack)
    }

    /// Hands the pending `id` to `consumer` (which exists).
    pub fn transfer(&mut self, id: StreamId, consumer: &Bytes) {
        let Some(nack) = self.pel.get_mut(&id) else {
            return;
        };
        if nack.consumer != *consumer {
            if let Some(old) = self.consumers.get_mut(&nack.consumer) {
                old.pel.remove(&id);
            }
            nack.consumer = consumer.clone();
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// The consumer named `name`, created when missing; its seen time is now.
    pub fn touch_consumer(&mut self, name: &Bytes, now: u64) -> &mut Consumer {
        let c = self.consumers.entry(name.clone()).or_default();
        c.seen_time = now;
        c
    }
}

/// What XADD/XTRIM trim by.
#[derive(Clone, Copy, Debug)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Debug, Clone, Default)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    len: u64,
    pub last_id: StreamId,
    /// First live entry when the stream was last trimmed or deleted from.
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Bytes, Group>,
}

/// A decoded entry: its ID and flat field/value list.
pub type Entry = (StreamId, Vec<Bytes>);

impl Stream {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes in ID order, each under its master ID (RDB encoding).
    pub fn nodes(&self) -> impl Iterator<Item = (StreamId, &Node)> {
        self.nodes.iter().map(|(k, n)| (*k, n))
    }

    /// Appends a node decoded from an RDB file: its entries come after
    /// every entry already present, and none is below `master`. The
    /// length grows by its live entries; the IDs and counters are the
    /// caller's to set.
    pub fn push_node(&mut self, master: StreamId, node: Node) {
        self.len += u64::from(node.live);
        self.nodes.insert(master, node);
    }

    /// Appends an entry; `id` is above `last_id` (the caller checked).
    pub fn append(&mut self, id: StreamId, fields: &[Bytes]) {
        self.append_within(id, fields, NODE_MAX_ENTRIES as u64, NODE_MAX_BYTES as u64);
    }

    /// `append` with the node limits `stream-node-max-entries` and
    /// `stream-node-max-bytes` set (0: no entry limit; bytes capped at 1 GiB,
    /// as Redis caps a listpack).
    pub fn append_within(&mut self, id: StreamId, fields: &[Bytes], max_entries: u64, max_bytes: u64) {
        let max_bytes = match max_bytes {
            0 => LISTPACK_MAX_BYTES,
            n => (n as usize).min(LISTPACK_MAX_BYTES),
        };
        // A node counts its entries in 16 bits: "no limit" (0) and larger
        // limits stop at 65,535 entries per node.
        let max_entries = match max_entries {
            0 => u64::from(u16::MAX),
            n => n.min(u64::from(u16::MAX)),
        };
        let total: usize = fields.iter().map(|f| f.len()).sum();
        let fits = self
            .nodes
            .last_key_value()
            .is_some_and(|(_, n)| n.lp_bytes().saturating_add(total) < max_bytes && u64::from(n.count) < max_entries);
        match self.nodes.last_entry() {
            Some(mut e) if fits => {
                let master = *e.key();
                e.get_mut().push(master, id, fields);
            }
            last => {
                // A full node is final: give back its spare capacity.
                if let Some(mut e) = last {
                    e.get_mut().shrink();
                }
                self.nodes.insert(id, Node::new(id, fields));
            }
        }
        if self.len == 0 {
            self.first_id = id;
        }
        self.len += 1;
        self.last_id = id;
        self.entries_added += 1;
    }

    /// Calls `f` on each live entry with `start <= id <= end`, in order
    /// (reversed when `rev`), until it returns false.
    fn walk(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        mut f: impl FnMut(StreamId, &Node, StreamId, usize) -> bool,
    ) {
        if start > end {
            return;
        }
        if !rev {
            let from = self.nodes.range(..=start).next_back().map_or(start, |(k, _)| *k);
            for (&master, node) in self.nodes.range(from..) {
                if master > end {
                    return;
                }
                for e in node.entries(master) {
                    if e.id < start || e.deleted {
                        continue;
                    }
                    if e.id > end || !f(e.id, node, master, e.pos) {
                        return;
                    }
                }
            }
        } else {
            let mut buf = Vec::with_capacity(NODE_MAX_ENTRIES as usize);
            for (&master, node) in self.nodes.range(..=end).rev() {
                buf.clear();
                buf.extend(node.entries(master));
                for e in buf.iter().rev() {
                    if e.id > end || e.deleted {
                        continue;
                    }
                    if e.id < start || !f(e.id, node, master, e.pos) {
                        return;
                    }
                }
            }
        }
    }

    /// Live entries in `[start, end]`, at most `count` of them (0: all).
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool, count: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        self.walk(start, end, rev, |id, node, master, pos| {
            out.push((id, node.fields(master, pos)));
            count == 0 || out.len() < count
        });
        out
    }

    /// The live entry `id`.
    pub fn get(&self, id: StreamId) -> Option<Vec<Bytes>> {
        let mut got = None;
        self.walk(id, id, false, |_, node, master, pos| {
            got = Some(node.fields(master, pos));
            false
        });
        got
    }

    pub fn contains(&self, id: StreamId) -> bool {
        let mut found = false;
        self.walk(id, id, false, |_, _, _, _| {
            found = true;
            false
        });
        found
    }

    /// The first or last live entry's ID.
    pub fn edge_id(&self, last: bool) -> Option<StreamId> {
        let mut got = None;
        self.walk(StreamId::MIN, StreamId::MAX, last, |id, _, _, _| {
            got = Some(id);
            false
        });
        got
    }

    /// Marks the live entry `id` deleted. Does not touch first/max-deleted IDs.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(e) = node.entries(master).find(|e| e.id == id && !e.deleted) else {
            return false;
        };
        node.mark_deleted(e.pos);
        if node.live == 0 {
            self.nodes.remove(&master);
        }
        self.len -= 1;
        true
    }

    /// Trims as Redis's `streamTrim` does: whole nodes first; an exact trim
    /// then marks entries of the next node deleted, an approximate one stops.
    /// `limit` bounds the entries removed (0: no bound). Returns the count.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        while let Some(mut e) = self.nodes.first_entry() {
            if let Trim::MaxLen(max) = how {
                if self.len <= max {
                    break;
                }
            }
            let master = *e.key();
            let live = u64::from(e.get().live);
            if limit != 0 && deleted + live > limit {
                break;
            }
            let remove = match how {
                Trim::MaxLen(max) => self.len - live >= max,
                Trim::MinId(min) => e.get().last_id(master) < min,
            };
            if remove {
                e.remove();
                self.len -= live;
                deleted += live;
                continue;
            }
            if approx {
                break;
            }
            let node = e.get_mut();
            let entries: Vec<_> = node.entries(master).collect();
            for ent in entries {
                let stop = match how {
                    Trim::MaxLen(max) => self.len <= max,
                    Trim::MinId(min) => ent.id >= min,
                };
                if stop {
                    break;
                }
                if node.mark_deleted(ent.pos) {
                    self.len -= 1;
                    deleted += 1;
                }
            }
            break;
        }
        self.first_id = if self.len == 0 { StreamId::MIN } else { self.edge_id(false).unwrap_or(StreamId::MIN) };
        deleted
    }

    /// Heap bytes (MEMORY USAGE; see `storage::usage`): each node's
    /// B-tree entry and buffer (buffers sampled over the first `samples`
    /// nodes), and the consumer groups with their pending entries.
    pub fn heap_usage(&self, samples: usize) -> usize {
        use super::usage::{block, sampled};
        use std::mem::size_of;
        let entry = size_of::<StreamId>() + size_of::<Node>();
        let nodes = self.nodes.len() * entry
            + sampled(self.nodes.values().map(|n| block(n.heap_size())), self.nodes.len(), samples);
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| {
                let consumers: usize = g
                    .consumers
                    .iter()
                    .map(|(n, c)| {
                        size_of::<Bytes>()
                            + block(n.len())
                            + size_of::<Consumer>()
                            + c.pel.len() * size_of::<StreamId>()
                    })
                    .sum();
                size_of::<Bytes>()
                    + block(name.len())
                    + size_of::<Group>()
                    + g.pel.len() * (size_of::<StreamId>() + size_of::<Nack>())
                    + consumers
            })
            .sum();
        nodes + groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fv(v: &str) -> Vec<Bytes> {
        vec![Bytes::from_static(b"f"), Bytes::copy_from_slice(v.as_bytes())]
    }

    fn filled(n: u64) -> Stream {
        let mut s = Stream::new();
        for i in 1..=n {
            s.append(StreamId::new(i, 0), &fv(&i.to_string()));
        }
        s
    }

    #[test]
    fn ranges_both_ways_across_nodes() {
        let s = filled(350);
        assert_eq!(s.node_count(), 4);
        let ids = |v: Vec<Entry>| v.into_iter().map(|e| e.0.ms).collect::<Vec<_>>();
        assert_eq!(ids(s.range(StreamId::new(98, 0), StreamId::new(103, 0), false, 0)), (98..=103).collect::<Vec<_>>());
        assert_eq!(ids(s.range(StreamId::new(98, 0), StreamId::new(103, 0), true, 3)), vec![103, 102, 101]);
        assert_eq!(s.get(StreamId::new(200, 0)), Some(fv("200")));
        assert_eq!(s.edge_id(true), Some(StreamId::new(350, 0)));
    }

    #[test]
    fn trims_like_redis() {
        let mut s = filled(350);
        assert_eq!(s.trim(Trim::MaxLen(120), true, 0), 200);
        assert_eq!(s.len(), 150);
        assert_eq!(s.trim(Trim::MaxLen(120), false, 0), 30);
        assert_eq!(s.first_id, StreamId::new(231, 0));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(300, 0)), false, 0), 69);
        assert_eq!(s.len(), 51);
        assert!(s.delete(StreamId::new(300, 0)));
        assert!(!s.delete(StreamId::new(300, 0)));
        assert_eq!(s.edge_id(false), Some(StreamId::new(301, 0)));
    }
}
