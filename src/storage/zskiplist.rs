//! The large sorted-set encoding: a skiplist whose links carry spans (how
//! many elements a link jumps over), as in Redis, so rank lookups and rank
//! ranges are O(log n); plus a hash index from member to node.
//!
//! The layout is chosen for cache misses, which is what a search in a big
//! set costs: a search should touch one cache line per step.
//! - Nodes live in one arena (`Vec<Node>`) and link to each other by u32
//!   index, which keeps the code free of unsafe. A node holds the member, the
//!   score and the level-0 links.
//! - The links of levels 1 and up (one node in four has any) live in a second
//!   arena, `towers`: one block of 16-byte slots per node, a header slot
//!   (owner node, number of links) then one slot per level. An upper-level link
//!   points at the next node's tower, not at its node, so following it lands
//!   directly on the links to read next.
//! - Every link also holds the score of the element it points to, so the step
//!   that overshoots (the next element is not before the target) is decided
//!   without visiting that element; only a tie on the score visits its member.
//!
//! The member's bytes are stored once, in the node; the index holds only node
//! numbers and hashes the member through the arena. Freed nodes and towers
//! are reused (towers by size).

use super::zset::before;
use hashbrown::HashTable;
use rand::Rng;

const MAX_LEVEL: usize = 32;
const NIL: u32 = u32::MAX;
/// `next0` of a slot on the free list (never a valid node number).
const FREE: u32 = u32::MAX - 1;
/// Node 0 is the header: no element, links at every level.
const HEAD: u32 = 0;
/// The header's tower is the first block of `towers`.
const HEAD_TOWER: u32 = 0;

/// A link at level >= 1, or the header slot of a tower (`next`: the owner
/// node, `span`: how many links follow, `score` unused).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// The next node's tower, NIL at the end.
    next: u32,
    /// Elements passed by following this link (to NIL: elements after the node).
    span: u32,
    /// The next node's score (meaningless when `next` is NIL).
    score: f64,
}

#[derive(Clone, Debug)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    /// The score of `next0` (meaningless when `next0` is NIL).
    next_score: f64,
    /// The previous node at level 0, NIL for the first.
    back: u32,
    /// Level 0 needs no span: it is always 1.
    next0: u32,
    /// Offset of this node's tower in `towers`, NIL for a node of level 1.
    tower: u32,
}

/// Where a search compares: an upper-level link names a tower, level 0 a node.
#[derive(Clone, Copy)]
enum Target {
    Tower(u32),
    Node(u32),
}

#[derive(Clone)]
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    towers: Vec<Slot>,
    /// Freed towers, by number of links.
    free_towers: Vec<Vec<u32>>,
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

/// The predecessors of a position: `at[0]` is a node, `at[i]` for i >= 1 a
/// tower; `rank[i]` is the rank of `at[i]` (the header has rank 0).
struct Update {
    at: [u32; MAX_LEVEL],
    rank: [usize; MAX_LEVEL],
}

impl SkipList {
    pub fn new() -> SkipList {
        let head = Node {
            member: Box::default(),
            score: f64::NEG_INFINITY,
            next_score: 0.0,
            back: NIL,
            next0: NIL,
            tower: HEAD_TOWER,
        };
        let mut towers = vec![Slot { next: NIL, span: 0, score: 0.0 }; MAX_LEVEL];
        towers[HEAD_TOWER as usize] = Slot { next: HEAD, span: (MAX_LEVEL - 1) as u32, score: 0.0 };
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            towers,
            free_towers: vec![Vec::new(); MAX_LEVEL],
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

    /// Heap bytes (MEMORY USAGE; see `storage::usage`): the node and tower
    /// arenas, the free lists, the member index, and one block per member,
    /// sampled over the first `samples` live nodes.
    pub fn heap_usage(&self, samples: usize) -> usize {
        use super::usage::{block, sampled, table_buckets, table_bytes};
        use std::mem::size_of;
        let arenas = block(self.nodes.capacity() * size_of::<Node>())
            + block(self.towers.capacity() * size_of::<Slot>())
            + block(self.free.capacity() * size_of::<u32>())
            + block(self.free_towers.capacity() * size_of::<Vec<u32>>())
            + self.free_towers.iter().map(|v| block(v.capacity() * size_of::<u32>())).sum::<usize>();
        let index = table_bytes(table_buckets(self.index.capacity()), size_of::<u32>());
        let members = self.nodes.iter().skip(1).filter(|n| n.next0 != FREE).map(|n| block(n.member.len()));
        arenas + index + sampled(members, self.len, samples)
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

    /// The link at level `lvl` >= 1 of tower `t`.
    fn up(&self, t: u32, lvl: usize) -> Slot {
        self.towers[t as usize + lvl]
    }

    fn up_mut(&mut self, t: u32, lvl: usize) -> &mut Slot {
        &mut self.towers[t as usize + lvl]
    }

    /// The node owning tower `t`.
    fn owner(&self, t: u32) -> u32 {
        self.towers[t as usize].next
    }

    fn node_level(&self, x: u32) -> usize {
        match self.node(x).tower {
            NIL => 1,
            t => 1 + self.towers[t as usize].span as usize,
        }
    }

    fn member_of(&self, t: Target) -> &[u8] {
        match t {
            Target::Tower(t) => &self.node(self.owner(t)).member,
            Target::Node(x) => &self.node(x).member,
        }
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
    fn find_update(&self, score: f64, member: &[u8]) -> Update {
        self.find_before(score, member, NIL)
    }

    /// The nodes before node `me`, which is in the list: a step that would
    /// land on `me` stops without comparing members. In a search for an
    /// element already there, the score tie is mostly with itself.
    fn find_preds(&self, me: u32) -> Update {
        let n = self.node(me);
        self.find_before(n.score, &n.member, me)
    }

    /// `find_update`, where `me` (or NIL) is the node holding (score, member).
    fn find_before(&self, score: f64, member: &[u8], me: u32) -> Update {
        let mut u = Update { at: [HEAD_TOWER; MAX_LEVEL], rank: [0; MAX_LEVEL] };
        let goes_before = |s: f64, t: Target| s < score || (s == score && self.member_of(t) < member);
        // NIL when `me` is NIL or has no tower: never taken for another node.
        let my_tower = if me == NIL { NIL } else { self.node(me).tower };
        let mut t = HEAD_TOWER;
        let mut rank = 0;
        for i in (1..self.level).rev() {
            loop {
                let l = self.up(t, i);
                if l.next == NIL || l.next == my_tower || !goes_before(l.score, Target::Tower(l.next)) {
                    break;
                }
                rank += l.span as usize;
                t = l.next;
            }
            u.at[i] = t;
            u.rank[i] = rank;
        }
        let mut x = self.owner(t);
        loop {
            let n = self.node(x);
            if n.next0 == NIL || n.next0 == me || !goes_before(n.next_score, Target::Node(n.next0)) {
                break;
            }
            rank += 1;
            x = n.next0;
        }
        u.at[0] = x;
        u.rank[0] = rank;
        u
    }

    /// Threads the (already filled) node `idx`, with its tower, into the list at its place.
    fn link(&mut self, idx: u32) {
        let lvl = self.node_level(idx);
        let n = self.node(idx);
        let (score, tower) = (n.score, n.tower);
        let mut u = self.find_update(score, &n.member);
        if lvl > self.level {
            for i in self.level..lvl {
                u.rank[i] = 0;
                u.at[i] = HEAD_TOWER;
                let len = self.len as u32;
                *self.up_mut(HEAD_TOWER, i) = Slot { next: NIL, span: len, score: 0.0 };
            }
            self.level = lvl;
        }
        for i in 1..lvl {
            let prev = self.up(u.at[i], i);
            let skipped = u.rank[0] - u.rank[i];
            let span = (prev.span as usize).saturating_sub(skipped) as u32;
            *self.up_mut(tower, i) = Slot { next: prev.next, span, score: prev.score };
            *self.up_mut(u.at[i], i) = Slot { next: tower, span: (skipped + 1) as u32, score };
        }
        for i in lvl..self.level {
            let l = self.up_mut(u.at[i], i);
            l.span += 1;
        }
        let prev = u.at[0];
        let p = self.node_mut(prev);
        let (after, after_score) = (p.next0, p.next_score);
        p.next0 = idx;
        p.next_score = score;
        let n = self.node_mut(idx);
        n.next0 = after;
        n.next_score = after_score;
        n.back = if prev == HEAD { NIL } else { prev };
        if after == NIL {
            self.tail = idx;
        } else {
            self.node_mut(after).back = idx;
        }
        self.len += 1;
    }

    /// Takes `idx` out of the list, given the nodes before it at each level.
    fn unlink_with(&mut self, idx: u32, u: &Update) {
        let lvl = self.node_level(idx);
        let n = self.node(idx);
        let (tower, back, after, after_score) = (n.tower, n.back, n.next0, n.next_score);
        for i in 1..self.level {
            let prev = u.at[i];
            if i < lvl && self.up(prev, i).next == tower {
                let mine = self.up(tower, i);
                let l = self.up_mut(prev, i);
                *l = Slot { next: mine.next, span: (l.span + mine.span).saturating_sub(1), score: mine.score };
            } else {
                let l = self.up_mut(prev, i);
                l.span = l.span.saturating_sub(1);
            }
        }
        let p = self.node_mut(u.at[0]);
        p.next0 = after;
        p.next_score = after_score;
        if after == NIL {
            self.tail = back;
        } else {
            self.node_mut(after).back = back;
        }
        while self.level > 1 && self.up(HEAD_TOWER, self.level - 1).next == NIL {
            self.level -= 1;
        }
        self.len -= 1;
    }

    fn unlink(&mut self, idx: u32) {
        let u = self.find_preds(idx);
        self.unlink_with(idx, &u);
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

    /// A tower of `links` links (levels 1..=links) owned by node `owner`.
    fn alloc_tower(&mut self, links: usize, owner: u32) -> u32 {
        let t = match self.free_towers.get_mut(links).and_then(Vec::pop) {
            Some(t) => t,
            None => {
                let t = self.towers.len();
                self.towers.resize(t + links + 1, Slot::default());
                t as u32
            }
        };
        self.towers[t as usize] = Slot { next: owner, span: links as u32, score: 0.0 };
        t
    }

    /// Drops node `idx` from the index and puts it (and its tower) on the free lists.
    fn release(&mut self, idx: u32) {
        let h = self.hash(&self.node(idx).member);
        if let Ok(e) = self.index.find_entry(h, |&i| i == idx) {
            e.remove();
        }
        let tower = self.node(idx).tower;
        if tower != NIL {
            let links = self.towers[tower as usize].span as usize;
            if let Some(f) = self.free_towers.get_mut(links) {
                f.push(tower);
            }
        }
        let n = self.node_mut(idx);
        n.member = Box::default();
        n.tower = NIL;
        n.next0 = FREE;
        self.free.push(idx);
    }

    /// Adds a member known to be absent.
    pub fn insert(&mut self, member: Box<[u8]>, score: f64) {
        let lvl = random_level();
        let h = self.hash(&member);
        let idx = self.alloc(Node { member, score, next_score: 0.0, back: NIL, next0: NIL, tower: NIL });
        if lvl > 1 {
            let t = self.alloc_tower(lvl - 1, idx);
            self.node_mut(idx).tower = t;
        }
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
        Some(self.rescore(idx, score))
    }

    /// The node holding `member` (a handle for `rescore`) and its score.
    pub fn find(&self, member: &[u8]) -> Option<(u32, f64)> {
        self.lookup(member).map(|i| (i, self.node(i).score))
    }

    /// Gives node `idx` (from `find`, no edit since) a new score; returns the old one.
    pub fn rescore(&mut self, idx: u32, score: f64) -> f64 {
        let n = self.node(idx);
        let old = n.score;
        if old == score {
            return old;
        }
        // Keep the node where it is when the new score does not move it. The
        // next score is at hand; the previous node is read only if needed.
        let fits_next = n.next0 == NIL || before(score, &n.member, n.next_score, &self.node(n.next0).member);
        let fits = fits_next
            && (n.back == NIL || {
                let b = self.node(n.back);
                before(b.score, &b.member, score, &n.member)
            });
        if !fits {
            self.unlink(idx);
            self.node_mut(idx).score = score;
            self.link(idx);
            return old;
        }
        // In place: only the links to it, which carry its score, change.
        let back = if n.back == NIL { HEAD } else { n.back };
        if n.tower != NIL {
            let u = self.find_preds(idx);
            for i in 1..self.node_level(idx) {
                self.up_mut(u.at[i], i).score = score;
            }
        }
        self.node_mut(back).next_score = score;
        self.node_mut(idx).score = score;
        old
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let idx = self.lookup(member)?;
        let score = self.node(idx).score;
        self.unlink(idx);
        self.release(idx);
        Some(score)
    }

    /// Number of leading elements for which the monotone `goes` holds; it is
    /// given a score and where the element is, to read its member only on need.
    fn count_by(&self, mut goes: impl FnMut(f64, Target) -> bool) -> usize {
        let mut t = HEAD_TOWER;
        let mut rank = 0;
        for i in (1..self.level).rev() {
            loop {
                let l = self.up(t, i);
                if l.next == NIL || !goes(l.score, Target::Tower(l.next)) {
                    break;
                }
                rank += l.span as usize;
                t = l.next;
            }
        }
        let mut x = self.owner(t);
        loop {
            let n = self.node(x);
            if n.next0 == NIL || !goes(n.next_score, Target::Node(n.next0)) {
                break;
            }
            rank += 1;
            x = n.next0;
        }
        rank
    }

    /// Number of leading elements satisfying the monotone `pred`.
    pub fn count_while(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        self.count_by(|s, t| pred(s, self.member_of(t)))
    }

    /// Number of leading elements whose score satisfies the monotone `pred`
    /// (never reads a member).
    pub fn count_while_score(&self, mut pred: impl FnMut(f64) -> bool) -> usize {
        self.count_by(|s, _| pred(s))
    }

    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let n = self.node(self.lookup(member)?);
        Some(self.count_by(|s, t| s < n.score || (s == n.score && self.member_of(t) < &*n.member)))
    }

    /// The node with 0-based rank `r`, or NIL.
    fn node_at(&self, r: usize) -> u32 {
        let target = r + 1;
        let mut traversed = 0;
        let mut t = HEAD_TOWER;
        for i in (1..self.level).rev() {
            loop {
                let l = self.up(t, i);
                if l.next == NIL || traversed + l.span as usize > target {
                    break;
                }
                traversed += l.span as usize;
                t = l.next;
            }
            if traversed == target {
                return self.owner(t);
            }
        }
        let mut x = self.owner(t);
        while traversed < target {
            x = self.node(x).next0;
            if x == NIL {
                return NIL;
            }
            traversed += 1;
        }
        x
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
        let mut u = Update { at: [HEAD_TOWER; MAX_LEVEL], rank: [0; MAX_LEVEL] };
        let mut traversed = 0;
        let mut t = HEAD_TOWER;
        for i in (1..self.level).rev() {
            loop {
                let l = self.up(t, i);
                if l.next == NIL || traversed + l.span as usize > start {
                    break;
                }
                traversed += l.span as usize;
                t = l.next;
            }
            u.at[i] = t;
        }
        let mut x = self.owner(t);
        while traversed < start {
            match self.node(x).next0 {
                NIL => return,
                next => x = next,
            }
            traversed += 1;
        }
        u.at[0] = x;
        let mut x = self.node(x).next0;
        for _ in start..end {
            if x == NIL {
                break;
            }
            let after = self.node(x).next0;
            self.unlink_with(x, &u);
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

    /// Walks every level: order, back links, cached scores, spans, towers.
    fn check_links(s: &SkipList) {
        let mut rank_of = std::collections::HashMap::new();
        let (mut x, mut rank, mut prev) = (HEAD, 0usize, NIL);
        loop {
            let n = s.node(x);
            if x != HEAD {
                assert_eq!(n.back, prev, "back of {x}");
                let p = s.node(if prev == NIL { HEAD } else { prev });
                if prev != NIL {
                    assert!(before(p.score, &p.member, n.score, &n.member), "order at {x}");
                }
                assert_eq!(p.next_score, n.score, "cached score before {x}");
            }
            rank_of.insert(x, rank);
            if n.next0 == NIL {
                assert_eq!(s.tail, if x == HEAD { NIL } else { x });
                break;
            }
            (prev, x, rank) = (if x == HEAD { NIL } else { x }, n.next0, rank + 1);
        }
        assert_eq!(rank, s.len());
        for i in 1..MAX_LEVEL {
            let mut t = HEAD_TOWER;
            loop {
                let owner = s.owner(t);
                assert_eq!(s.node(owner).tower, t);
                assert!(s.node_level(owner) > i);
                let l = s.up(t, i);
                let from = rank_of[&owner];
                if l.next == NIL || i >= s.level {
                    if i < s.level {
                        assert_eq!(l.span as usize, s.len() - from, "span to the end, level {i}");
                    } else {
                        assert_eq!(l.next, NIL, "level {i} above the list's level");
                    }
                    break;
                }
                let to = s.owner(l.next);
                assert_eq!(l.score, s.node(to).score, "cached score at level {i}");
                assert_eq!(l.span as usize, rank_of[&to] - from, "span at level {i}");
                t = l.next;
            }
        }
    }

    fn check_spans(s: &SkipList) {
        check_links(s);
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

    /// Thousands of elements (levels up to 7 or so) with scores that collide,
    /// re-scores that stay in place and that move, and pops from both ends.
    #[test]
    fn towers_survive_big_random_edits() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut s = SkipList::new();
        let mut model = std::collections::BTreeMap::new();
        for step in 0..60_000 {
            let m = format!("m{}", rng.gen_range(0..6000));
            let score = rng.gen_range(0..400) as f64 / 4.0;
            match rng.gen_range(0..10) {
                0 => assert_eq!(s.remove(m.as_bytes()), model.remove(&m)),
                1 => {
                    // A small nudge mostly keeps the node in place.
                    if let Some((idx, old)) = s.find(m.as_bytes()) {
                        let new = old + 0.001;
                        assert_eq!(s.rescore(idx, new), old);
                        model.insert(m.clone(), new);
                        if step < 8000 {
                            check_links(&s);
                        }
                    }
                }
                2 if !s.is_empty() => {
                    let n = rng.gen_range(1..4).min(s.len());
                    let (a, b) = if rng.gen_bool(0.5) { (0, n) } else { (s.len() - n, s.len()) };
                    let mut gone = vec![];
                    s.for_range(a, b, false, |m, _| gone.push(String::from_utf8(m.to_vec()).unwrap()));
                    s.remove_ranks(a, b);
                    for g in gone {
                        model.remove(&g);
                    }
                }
                _ => assert_eq!(s.set(m.as_bytes(), score), model.insert(m.clone(), score)),
            }
            if step % 15_000 == 0 {
                check_spans(&s);
            }
        }
        check_spans(&s);
        assert!(s.level >= 5, "level {}", s.level);
        let mut sorted: Vec<(f64, String)> = model.iter().map(|(m, &sc)| (sc, m.clone())).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut got = vec![];
        s.for_range(0, s.len(), false, |m, sc| got.push((sc, String::from_utf8(m.to_vec()).unwrap())));
        assert_eq!(got, sorted);
        for (r, (sc, m)) in sorted.iter().enumerate().step_by(97) {
            assert_eq!(s.rank(m.as_bytes()), Some(r));
            assert_eq!(s.count_while_score(|x| x < *sc), sorted.iter().take_while(|e| e.0 < *sc).count());
        }
        // Emptying it brings the level back down.
        s.remove_ranks(0, s.len());
        assert!(s.is_empty());
        assert_eq!(s.level, 1);
        check_spans(&s);
    }
}
