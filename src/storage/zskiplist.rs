//! The large sorted-set encoding: a skiplist whose links carry spans (how
//! many elements a link jumps over), as in Redis, so rank lookups and rank
//! ranges are O(log n); plus a hash index from member to node.
//!
//! Nodes live in one arena (`Vec<Node>`) and link to each other by u32 index,
//! which keeps the code free of unsafe and a node at 48 bytes. The member's
//! bytes are stored once, in the node; the index holds only node numbers and
//! hashes the member through the arena. Freed slots are reused.

use super::zset::before;
use hashbrown::HashTable;
use rand::Rng;

const MAX_LEVEL: usize = 32;
const NIL: u32 = u32::MAX;
/// `next0` of a slot on the free list (never a valid node number).
const FREE: u32 = u32::MAX - 1;
/// Slot 0 is the header: no element, links at every level.
const HEAD: u32 = 0;

#[derive(Clone, Copy, Debug)]
struct Link {
    next: u32,
    /// Elements passed by following this link (to NIL: elements after the node).
    span: u32,
}

#[derive(Clone, Debug)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    /// The previous node at level 0, NIL for the first.
    back: u32,
    /// Level 0 needs no span: it is always 1.
    next0: u32,
    /// Levels 1.. (three nodes in four have none).
    upper: Option<Box<[Link]>>,
}

#[derive(Clone)]
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    level: usize,
    tail: u32,
    len: usize,
    index: HashTable<u32>,
    hasher: ahash::RandomState,
}

impl std::fmt::Debug for SkipList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipList").field("len", &self.len).field("level", &self.level).finish()
    }
}

impl Default for SkipList {
    fn default() -> Self {
        Self::new()
    }
}

fn random_level() -> usize {
    // Each level is kept with probability 1/4, as in Redis.
    let mut rng = rand::thread_rng();
    let mut level = 1;
    while level < MAX_LEVEL && rng.gen::<u32>() & 3 == 0 {
        level += 1;
    }
    level
}

impl SkipList {
    pub fn new() -> SkipList {
        let head = Node {
            member: Box::default(),
            score: f64::NEG_INFINITY,
            back: NIL,
            next0: NIL,
            upper: Some(vec![Link { next: NIL, span: 0 }; MAX_LEVEL - 1].into_boxed_slice()),
        };
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            level: 1,
            tail: NIL,
            len: 0,
            index: HashTable::new(),
            hasher: ahash::RandomState::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn node(&self, x: u32) -> &Node {
        &self.nodes[x as usize]
    }

    fn node_mut(&mut self, x: u32) -> &mut Node {
        &mut self.nodes[x as usize]
    }

    fn next(&self, x: u32, lvl: usize) -> u32 {
        let n = self.node(x);
        if lvl == 0 {
            n.next0
        } else {
            n.upper.as_ref().and_then(|u| u.get(lvl - 1)).map_or(NIL, |l| l.next)
        }
    }

    fn span(&self, x: u32, lvl: usize) -> usize {
        if lvl == 0 {
            return 1;
        }
        self.node(x).upper.as_ref().and_then(|u| u.get(lvl - 1)).map_or(0, |l| l.span as usize)
    }

    fn set_link(&mut self, x: u32, lvl: usize, next: u32, span: usize) {
        let n = self.node_mut(x);
        if lvl == 0 {
            n.next0 = next;
        } else if let Some(l) = n.upper.as_mut().and_then(|u| u.get_mut(lvl - 1)) {
            *l = Link { next, span: span as u32 };
        }
    }

    fn add_span(&mut self, x: u32, lvl: usize, delta: isize) {
        if let Some(l) = self.node_mut(x).upper.as_mut().and_then(|u| u.get_mut(lvl - 1)) {
            l.span = (l.span as isize + delta).max(0) as u32;
        }
    }

    fn node_level(&self, x: u32) -> usize {
        1 + self.node(x).upper.as_ref().map_or(0, |u| u.len())
    }

    fn hash(&self, member: &[u8]) -> u64 {
        self.hasher.hash_one(member)
    }

    fn lookup(&self, member: &[u8]) -> Option<u32> {
        self.index.find(self.hash(member), |&i| *self.nodes[i as usize].member == *member).copied()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.lookup(member).map(|i| self.node(i).score)
    }

    /// For each level, the last node ordered before (score, member) and its rank.
    fn find_update(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], [usize; MAX_LEVEL]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let nx = self.next(x, i);
                if nx == NIL {
                    break;
                }
                let n = self.node(nx);
                if !before(n.score, &n.member, score, member) {
                    break;
                }
                rank[i] += self.span(x, i);
                x = nx;
            }
            update[i] = x;
        }
        (update, rank)
    }

    /// Threads the (already filled) slot `idx` into the list at its place.
    fn link(&mut self, idx: u32) {
        let lvl = self.node_level(idx);
        let n = self.node(idx);
        let (mut update, mut rank) = self.find_update(n.score, &n.member);
        if lvl > self.level {
            for i in self.level..lvl {
                rank[i] = 0;
                update[i] = HEAD;
                let len = self.len;
                self.set_link(HEAD, i, NIL, len);
            }
            self.level = lvl;
        }
        for i in 0..lvl {
            let prev = update[i];
            let after = self.next(prev, i);
            let prev_span = self.span(prev, i);
            let skipped = rank[0] - rank[i];
            self.set_link(idx, i, after, prev_span.saturating_sub(skipped));
            self.set_link(prev, i, idx, skipped + 1);
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(lvl) {
            self.add_span(u, i, 1);
        }
        let back = if update[0] == HEAD { NIL } else { update[0] };
        self.node_mut(idx).back = back;
        let after = self.node(idx).next0;
        if after == NIL {
            self.tail = idx;
        } else {
            self.node_mut(after).back = idx;
        }
        self.len += 1;
    }

    /// Takes `idx` out of the list, given the nodes before it at each level.
    fn unlink_with(&mut self, idx: u32, update: &[u32; MAX_LEVEL]) {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            if self.next(u, i) == idx {
                let span = (self.span(u, i) + self.span(idx, i)).saturating_sub(1);
                let after = self.next(idx, i);
                self.set_link(u, i, after, span);
            } else if i > 0 {
                self.add_span(u, i, -1);
            }
        }
        let (back, after) = (self.node(idx).back, self.node(idx).next0);
        if after == NIL {
            self.tail = back;
        } else {
            self.node_mut(after).back = back;
        }
        while self.level > 1 && self.next(HEAD, self.level - 1) == NIL {
            self.level -= 1;
        }
        self.len -= 1;
    }

    fn unlink(&mut self, idx: u32) {
        let n = self.node(idx);
        let (update, _) = self.find_update(n.score, &n.member);
        self.unlink_with(idx, &update);
    }

    fn alloc(&mut self, node: Node) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// Drops slot `idx` from the index and puts it on the free list.
    fn release(&mut self, idx: u32) {
        let h = self.hash(&self.node(idx).member);
        if let Ok(e) = self.index.find_entry(h, |&i| i == idx) {
            e.remove();
        }
        let n = self.node_mut(idx);
        n.member = Box::default();
        n.upper = None;
        n.next0 = FREE;
        self.free.push(idx);
    }

    /// Adds a member known to be absent.
    pub fn insert(&mut self, member: Box<[u8]>, score: f64) {
        let lvl = random_level();
        let upper = (lvl > 1).then(|| vec![Link { next: NIL, span: 0 }; lvl - 1].into_boxed_slice());
        let h = self.hash(&member);
        let idx = self.alloc(Node { member, score, back: NIL, next0: NIL, upper });
        self.link(idx);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index.insert_unique(h, idx, |&i| hasher.hash_one(&*nodes[i as usize].member));
    }

    /// Inserts or re-scores; returns the previous score.
    pub fn set(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let Some(idx) = self.lookup(member) else {
            self.insert(member.into(), score);
            return None;
        };
        let n = self.node(idx);
        let old = n.score;
        if old == score {
            return Some(old);
        }
        // Keep the node where it is when the new score does not move it.
        let fits_back = n.back == NIL || {
            let b = self.node(n.back);
            before(b.score, &b.member, score, member)
        };
        let fits_next = n.next0 == NIL || {
            let a = self.node(n.next0);
            before(score, member, a.score, &a.member)
        };
        if fits_back && fits_next {
            self.node_mut(idx).score = score;
        } else {
            self.unlink(idx);
            self.node_mut(idx).score = score;
            self.link(idx);
        }
        Some(old)
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let idx = self.lookup(member)?;
        let score = self.node(idx).score;
        self.unlink(idx);
        self.release(idx);
        Some(score)
    }

    /// Number of leading elements satisfying the monotone `pred`.
    pub fn count_while(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let mut x = HEAD;
        let mut rank = 0;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx == NIL {
                    break;
                }
                let n = self.node(nx);
                if !pred(n.score, &n.member) {
                    break;
                }
                rank += self.span(x, i);
                x = nx;
            }
        }
        rank
    }

    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let n = self.node(self.lookup(member)?);
        Some(self.count_while(|s, m| before(s, m, n.score, &n.member)))
    }

    /// The node with 0-based rank `r`, or NIL.
    fn node_at(&self, r: usize) -> u32 {
        let target = r + 1;
        let mut traversed = 0;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx == NIL || traversed + self.span(x, i) > target {
                    break;
                }
                traversed += self.span(x, i);
                x = nx;
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }

    /// Visits ranks `start..end` (end <= len), backwards when `rev`.
    pub fn for_range(&self, start: usize, end: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        if start >= end {
            return;
        }
        let mut x = self.node_at(if rev { end - 1 } else { start });
        for _ in start..end {
            if x == NIL || x == FREE {
                return;
            }
            let n = self.node(x);
            f(&n.member, n.score);
            x = if rev { n.back } else { n.next0 };
        }
    }

    /// Removes ranks `start..end` (end <= len) in O(log n + m).
    pub fn remove_ranks(&mut self, start: usize, end: usize) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut traversed = 0;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx == NIL || traversed + self.span(x, i) > start {
                    break;
                }
                traversed += self.span(x, i);
                x = nx;
            }
            update[i] = x;
        }
        let mut x = self.node(update[0]).next0;
        for _ in start..end {
            if x == NIL {
                break;
            }
            let after = self.node(x).next0;
            self.unlink_with(x, &update);
            self.release(x);
            x = after;
        }
    }

    /// One ZSCAN step over arena slots: removals never move a node, so every
    /// member present for the whole scan is returned exactly once.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], f64)) -> u64 {
        let mut pos = usize::try_from(cursor).unwrap_or(usize::MAX).max(1);
        let mut visited = 0;
        while pos < self.nodes.len() && visited < count {
            let n = &self.nodes[pos];
            if n.next0 != FREE {
                f(&n.member, n.score);
            }
            visited += 1;
            pos += 1;
        }
        if pos >= self.nodes.len() {
            0
        } else {
            pos as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_spans(s: &SkipList) {
        // Every rank must round-trip through node_at and count_while.
        for r in 0..s.len() {
            let x = s.node_at(r);
            assert_ne!(x, NIL, "rank {r}");
            let n = s.node(x);
            assert_eq!(s.rank(&n.member), Some(r));
        }
        assert_eq!(s.node_at(s.len()), NIL);
    }

    #[test]
    fn ranks_survive_random_edits() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut s = SkipList::new();
        let mut model = std::collections::BTreeMap::new();
        for step in 0..4000 {
            let m = format!("k{}", rng.gen_range(0..300));
            let score = rng.gen_range(0..20) as f64;
            if rng.gen_bool(0.3) {
                assert_eq!(s.remove(m.as_bytes()), model.remove(&m));
            } else {
                assert_eq!(s.set(m.as_bytes(), score), model.insert(m.clone(), score));
            }
            if step % 500 == 0 {
                check_spans(&s);
                let (a, b) = (rng.gen_range(0..50), rng.gen_range(50..90));
                let before_len = s.len();
                let mut gone = vec![];
                s.for_range(a, b.min(before_len), false, |m, _| gone.push(String::from_utf8(m.to_vec()).unwrap()));
                s.remove_ranks(a, b.min(before_len));
                for g in gone {
                    model.remove(&g);
                }
                check_spans(&s);
            }
        }
        assert_eq!(s.len(), model.len());
        let mut c = 0;
        let mut seen = 0;
        loop {
            c = s.scan(c, 10, |_, _| seen += 1);
            if c == 0 {
                break;
            }
        }
        assert_eq!(seen, model.len());
    }
}
