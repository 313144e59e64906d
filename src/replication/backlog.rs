//! The replication history of this server: its offset in the replication
//! stream (`master_repl_offset`), the previous replication ID it can still
//! continue (`master_replid2` up to `second_repl_offset`), and the backlog,
//! the last `repl-backlog-size` bytes of the stream, from which a replica
//! that lost its link resumes with a partial resynchronization.
//!
//! A master feeds it from its own propagated stream (`Feed` subscribes to
//! `propagate::Stream` while the backlog exists); a replica feeds it with
//! the bytes of its master's stream it applied, so that after a promotion
//! its own replicas can continue from it (PSYNC2).

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

/// Redis's smallest backlog: a smaller `repl-backlog-size` is raised to it.
pub const MIN_BACKLOG: usize = 16 * 1024;

pub struct History {
    /// Bytes of the replication stream this server produced or applied.
    pub offset: u64,
    /// The replication ID before the last change of ID (40 zeros: none).
    pub replid2: String,
    /// The first offset `replid2` does not cover (-1: none).
    pub second_offset: i64,
    /// The last bytes of the stream, up to `limit` (None: no backlog).
    backlog: Option<VecDeque<u8>>,
    pub limit: usize,
    /// The replication offset minus the write stream's offset while the
    /// backlog follows the stream (a client's last write, known as a stream
    /// offset, in replication terms: WAIT).
    delta: i64,
}

pub const NO_ID: &str = "0000000000000000000000000000000000000000";

impl Default for History {
    fn default() -> Self {
        History { offset: 0, replid2: NO_ID.into(), second_offset: -1, backlog: None, limit: 1 << 20, delta: 0 }
    }
}

impl History {
    /// Appends stream bytes: the offset moves on, the backlog keeps the
    /// last `limit` of them.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.offset += bytes.len() as u64;
        if let Some(b) = self.backlog.as_mut() {
            b.extend(bytes);
            if b.len() > self.limit {
                let excess = b.len() - self.limit;
                b.drain(..excess);
            }
        }
    }

    /// The feed subscribes at write-stream offset `stream_at`.
    pub fn attached_at(&mut self, stream_at: u64) {
        self.delta = self.offset as i64 - stream_at as i64;
    }

    /// The replication offset that write-stream offset `stream_at` stands for.
    pub fn repl_offset_of(&self, stream_at: u64) -> u64 {
        (stream_at as i64 + self.delta).max(0) as u64
    }

    pub fn has_backlog(&self) -> bool {
        self.backlog.is_some()
    }

    /// Starts an empty backlog at the current offset.
    pub fn create_backlog(&mut self) {
        self.backlog = Some(VecDeque::new());
    }

    pub fn free_backlog(&mut self) {
        self.backlog = None;
    }

    /// Memory the backlog's buffer holds (`mem_replication_backlog`).
    pub fn backlog_memory(&self) -> usize {
        self.backlog.as_ref().map_or(0, |b| b.capacity())
    }

    /// Bytes the backlog holds (`repl_backlog_histlen`).
    pub fn histlen(&self) -> u64 {
        self.backlog.as_ref().map_or(0, |b| b.len() as u64)
    }

    /// The offset of the backlog's first byte (`repl_backlog_first_byte_offset`;
    /// offsets of bytes count from 1, as Redis counts them).
    pub fn first_byte_offset(&self) -> u64 {
        if self.backlog.is_none() {
            return 0;
        }
        self.offset + 1 - self.histlen()
    }

    /// Sets the backlog's size (`repl-backlog-size`, at least 16kb).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(MIN_BACKLOG);
        if let Some(b) = self.backlog.as_mut() {
            if b.len() > self.limit {
                let excess = b.len() - self.limit;
                b.drain(..excess);
            }
        }
    }

    /// The stream from offset `from` (the first byte a replica lacks) to the
    /// end, when the backlog still holds it all.
    pub fn since(&self, from: u64) -> Option<Vec<u8>> {
        let b = self.backlog.as_ref()?;
        let first = self.first_byte_offset();
        if from < first || from > self.offset + 1 {
            return None;
        }
        let skip = (from - first) as usize;
        let (a, c) = b.as_slices();
        let mut out = Vec::with_capacity(b.len() - skip);
        if skip < a.len() {
            out.extend_from_slice(&a[skip..]);
            out.extend_from_slice(c);
        } else {
            out.extend_from_slice(&c[skip - a.len()..]);
        }
        Some(out)
    }

    /// A new history begins (a new replication ID with no past one): the
    /// previous ID is forgotten.
    pub fn clear_replid2(&mut self) {
        self.replid2 = NO_ID.into();
        self.second_offset = -1;
    }

    /// The replication ID changes while the history goes on (a promoted
    /// replica, a master's new ID after a partial resync): the old ID stays
    /// valid up to the current offset.
    pub fn shift_replid(&mut self, replid: &mut String, new: String) {
        self.replid2 = std::mem::replace(replid, new);
        self.second_offset = self.offset as i64 + 1;
    }
}

/// The backlog's subscription to the propagated stream (a master's).
pub struct Feed(pub Arc<Mutex<History>>);

impl crate::propagate::Subscriber for Feed {
    fn append(&self, bytes: &[u8], _end: u64) {
        self.0.lock().feed(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_keeps_the_last_bytes_and_answers_offsets() {
        let mut h = History::default();
        h.feed(b"before");
        assert_eq!(h.offset, 6);
        assert!(h.since(7).is_none(), "no backlog yet");
        h.create_backlog();
        assert_eq!(h.first_byte_offset(), 7);
        assert_eq!(h.since(7).unwrap(), b"");
        h.set_limit(0);
        assert_eq!(h.limit, MIN_BACKLOG);
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        h.feed(&data);
        assert_eq!(h.histlen(), MIN_BACKLOG as u64);
        assert_eq!(h.offset, 40_006);
        let first = h.first_byte_offset();
        assert_eq!(first, 40_006 + 1 - MIN_BACKLOG as u64);
        assert!(h.since(first - 1).is_none());
        assert_eq!(h.since(first).unwrap(), &data[data.len() - MIN_BACKLOG..]);
        assert_eq!(h.since(40_006).unwrap(), &data[data.len() - 1..]);
        assert_eq!(h.since(40_007).unwrap(), b"");
        assert!(h.since(40_008).is_none());
        let mut id = "a".repeat(40);
        h.shift_replid(&mut id, "b".repeat(40));
        assert_eq!((h.replid2.as_str(), h.second_offset), ("a".repeat(40).as_str(), 40_007));
    }
}
