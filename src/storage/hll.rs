//! HyperLogLog in Redis's own byte layout, so a value written here reads the
//! same in redis-server and the reverse (GET/SET of the raw string).
//!
//! Layout (all of it a plain string value):
//!
//! ```text
//! +------+----------+---------+------------------+--------------------+
//! | HYLL | encoding | 3 bytes | cardinality (LE) | registers          |
//! +------+----------+---------+------------------+--------------------+
//!   0..4      4        5..8         8..16           16..
//! ```
//!
//! The cached cardinality is valid while the top bit of its last byte (byte
//! 15) is clear. Encoding 0 is dense: 16384 registers of 6 bits, packed from
//! the least significant bit of each byte upward (12288 bytes). Encoding 1 is
//! sparse: a run-length code of opcodes covering the 16384 registers:
//!
//! - `00xxxxxx` ZERO: 1..64 registers at 0;
//! - `01xxxxxx yyyyyyyy` XZERO: 1..16384 registers at 0 (14-bit length - 1);
//! - `1vvvvvxx` VAL: 1..4 registers at value 1..32.
//!
//! A sparse value is promoted to dense when a register needs a value above
//! 32, or when a split would make it longer than `hll-sparse-max-bytes`.
//!
//! Redis reads one byte past the end of the string in two places (the high
//! part of the last dense register, the second byte of an XZERO that ends the
//! string) and finds its string terminator there; this module reads a zero at
//! those positions and never reads or writes outside the buffer. Every sparse
//! edit follows Redis's algorithm step for step (where a run is split, which
//! neighbouring VAL opcodes are merged), so the bytes come out identical.
//!
//! One difference remains, on hand-made values only: when Redis splits an
//! XZERO cut short by the end of the string (a value no Redis command
//! produces), it writes the last byte of the new opcodes past the end, where
//! its terminator was, and a later read of a cut-short XZERO there sees that
//! byte instead of 0. The visible bytes after the split are the same here;
//! only later reads of such a value can differ.

/// Header length.
pub const HDR: usize = 16;
/// log2 of the register count.
const P: u32 = 14;
/// Hash bits left after the register index.
const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
const P_MASK: u64 = REGISTERS as u64 - 1;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
/// Bytes of the dense register array.
pub const DENSE_REGS: usize = (REGISTERS * BITS).div_ceil(8);
/// Length of a dense value.
pub const DENSE_SIZE: usize = HDR + DENSE_REGS;
pub const DENSE: u8 = 0;
pub const SPARSE: u8 = 1;
const MAX_ENCODING: u8 = 1;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;

/// 0.5 / ln(2): the estimator's alpha as m grows without bound.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The seed Redis passes to MurmurHash64A.
const SEED: u64 = 0xadc8_3b19;

/// Redis's error for a value that is not a HyperLogLog.
pub const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// Redis's error for a sparse value whose opcodes do not cover exactly 16384 registers.
pub const CORRUPTED: &str = "INVALIDOBJ Corrupted HLL object detected";

// ------------------------------------------------------------------ hashing

/// MurmurHash2, 64-bit version (MurmurHash64A), reading 8-byte blocks as
/// little-endian words as Redis does on every architecture.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    // Redis takes the length as a C int; strings here are far below 2^31.
    let mut h = seed ^ (data.len() as i32 as i64 as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let mut k = u64::from_le_bytes(word);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element goes to and the length of its `0...01` pattern
/// (1..=51): the value the register takes if it is larger.
pub fn pat_len(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, SEED);
    let index = (hash & P_MASK) as usize;
    // The sentinel bit bounds the count at Q + 1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ------------------------------------------------------------------- header

/// Redis's `isHLLObjectOrReply` test on a string's bytes: long enough for the
/// header, the magic, a known encoding, and the exact length when dense.
pub fn is_hll(v: &[u8]) -> bool {
    v.len() >= HDR && &v[..4] == b"HYLL" && v[4] <= MAX_ENCODING && (v[4] != DENSE || v.len() == DENSE_SIZE)
}

/// True for a dense value (the caller checked `is_hll`).
pub fn is_dense(v: &[u8]) -> bool {
    v[4] == DENSE
}

/// The cached cardinality, when the cache is valid.
pub fn cached(v: &[u8]) -> Option<u64> {
    let mut card = [0u8; 8];
    card.copy_from_slice(&v[8..16]);
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

/// Stores `card` as the cached cardinality (a value with the top bit set
/// stays invalid, exactly as in Redis).
pub fn set_cached(v: &mut [u8], card: u64) {
    v[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate(v: &mut [u8]) {
    v[15] |= 0x80;
}

/// A new, empty HLL: sparse, one XZERO opcode covering every register, cached
/// cardinality 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2 * REGISTERS.div_ceil(SPARSE_XZERO_MAX_LEN));
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(SPARSE_XZERO_MAX_LEN);
        v.extend_from_slice(&xzero(n));
        left -= n;
    }
    v
}

// ------------------------------------------------------------- dense layout

/// Register `i` of a dense register array. The last register's high byte
/// lies past the array; its bits are masked out anyway.
#[inline]
pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = regs.get(byte).copied().unwrap_or(0) as u16;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u16;
    (((b0 >> fb) | (b1 << (8 - fb))) as u8) & REGISTER_MAX
}

/// Sets register `i` to `val` (0..=63).
#[inline]
pub fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = (val & REGISTER_MAX) as u16;
    if let Some(b) = regs.get_mut(byte) {
        *b &= !((REGISTER_MAX as u16) << fb) as u8;
        *b |= (v << fb) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((REGISTER_MAX as u16) >> (8 - fb)) as u8;
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// Raises register `i` to `count` if it is lower; true when it changed.
#[inline]
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

// ------------------------------------------------------------ sparse layout

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    /// A run of zero registers; `wide` for the two-byte XZERO form.
    Zero {
        len: usize,
        wide: bool,
    },
    Val {
        value: u8,
        len: usize,
    },
}

impl Op {
    fn span(self) -> usize {
        match self {
            Op::Zero { len, .. } | Op::Val { len, .. } => len,
        }
    }

    fn bytes(self) -> usize {
        match self {
            Op::Zero { wide: true, .. } => 2,
            _ => 1,
        }
    }
}

/// The opcode at `p` (< v.len()). An XZERO cut short by the end of the
/// string reads its second byte as 0, as Redis reads its terminator.
#[inline]
fn op_at(v: &[u8], p: usize) -> Op {
    let b = v[p];
    if b & 0x80 != 0 {
        let (value, len) = val_fields(b);
        Op::Val { value, len }
    } else if b & 0x40 != 0 {
        let lo = v.get(p + 1).copied().unwrap_or(0) as usize;
        Op::Zero { len: ((((b & 0x3f) as usize) << 8) | lo) + 1, wide: true }
    } else {
        Op::Zero { len: (b & 0x3f) as usize + 1, wide: false }
    }
}

/// (value, run length) of a VAL opcode byte.
fn val_fields(b: u8) -> (u8, usize) {
    (((b >> 2) & 0x1f) + 1, (b & 0x3) as usize + 1)
}

fn val_byte(value: u8, len: usize) -> u8 {
    ((value - 1) << 2) | (len as u8 - 1) | 0x80
}

fn zero_byte(len: usize) -> u8 {
    (len - 1) as u8
}

fn xzero(len: usize) -> [u8; 2] {
    let l = len - 1;
    [(l >> 8) as u8 | 0x40, (l & 0xff) as u8]
}

/// Walks the sparse opcodes of `v`, calling `f(first_register, op)` for each,
/// and stops at the first opcode that would run past the last register.
/// True when the opcodes cover exactly the 16384 registers (the check the
/// patched Redis 7.0 applies when it reads a sparse value).
fn walk_sparse(v: &[u8], mut f: impl FnMut(usize, Op)) -> bool {
    let mut p = HDR;
    let mut idx = 0usize;
    while p < v.len() {
        let op = op_at(v, p);
        if idx + op.span() > REGISTERS {
            return false;
        }
        f(idx, op);
        idx += op.span();
        p += op.bytes();
    }
    idx == REGISTERS
}

/// The dense form of a sparse value (header copied, encoding set to dense),
/// or None when the opcodes are corrupted. A dense value is returned as is.
pub fn to_dense(v: &[u8]) -> Option<Vec<u8>> {
    if v[4] == DENSE {
        return Some(v.to_vec());
    }
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&v[..HDR]);
    d[4] = DENSE;
    let regs = &mut d[HDR..];
    let valid = walk_sparse(v, |first, op| {
        if let Op::Val { value, len } = op {
            for i in first..first + len {
                dense_set(regs, i, value);
            }
        }
    });
    valid.then_some(d)
}

/// Converts `v` to dense in place; false (and `v` untouched) when corrupted.
pub fn make_dense(v: &mut Vec<u8>) -> bool {
    if v[4] == DENSE {
        return true;
    }
    match to_dense(v) {
        Some(d) => {
            *v = d;
            true
        }
        None => false,
    }
}

/// Outcome of raising one register.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Set {
    Unchanged,
    Updated,
    /// The sparse opcodes are corrupted (Redis's -1).
    Invalid,
}

/// Redis's `hllSparseSet`: raises register `index` of the sparse value `v` to
/// `count` if it is lower, splitting and merging opcodes exactly as Redis
/// does. Promotes `v` to dense when `count` is above 32 or the value would
/// outgrow `max_bytes`.
pub fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: u64) -> Set {
    sparse_set_after(v, index, count, max_bytes, &mut Vec::new())
}

/// `sparse_set` for a caller raising registers in increasing index order
/// (PFMERGE): `trail` holds (position, first register) of opcodes that no
/// edit so far has touched, all before the previous edit's `prev`, so the
/// search for the opcode covering `index` resumes from the last of them
/// instead of the start. Redis always searches from the start; resuming
/// finds the same opcode and the same predecessor, because every trail
/// opcode ends before the previous index and every edit starts at `prev`.
fn sparse_set_after(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: u64, trail: &mut Vec<(usize, usize)>) -> Set {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    // Step 1: the opcode covering `index`, the one before it, its first register.
    let end = v.len();
    let (mut p, mut first) = trail.pop().unwrap_or((HDR, 0));
    let mut prev: Option<usize> = None;
    let mut found = None;
    while p < end {
        let op = op_at(v, p);
        if index < first + op.span() {
            found = Some(op);
            break;
        }
        trail.push((p, first));
        prev = Some(p);
        p += op.bytes();
        first += op.span();
    }
    let Some(op) = found else {
        return Set::Invalid;
    };
    // Whatever happens next starts at `prev`: the opcodes before it stay as they are.
    let keep = trail.partition_point(|&(pos, _)| prev.is_some_and(|pr| pos < pr));
    trail.truncate(keep);
    let next = p + op.bytes();
    let has_next = next < end;

    // Step 2: the trivial cases, edited in place.
    let mut in_place = false;
    match op {
        Op::Val { value, len } => {
            if value >= count {
                return Set::Unchanged;
            }
            if len == 1 {
                v[p] = val_byte(count, 1);
                in_place = true;
            }
        }
        Op::Zero { len: 1, wide: false } => {
            v[p] = val_byte(count, 1);
            in_place = true;
        }
        Op::Zero { .. } => {}
    }

    if !in_place {
        // The general case: split the opcode into up to three.
        let last = first + op.span() - 1;
        let mut seq = [0u8; 5];
        let mut n = 0;
        let push_zero = |seq: &mut [u8; 5], n: &mut usize, len: usize| {
            if len > SPARSE_ZERO_MAX_LEN {
                seq[*n..*n + 2].copy_from_slice(&xzero(len));
                *n += 2;
            } else {
                seq[*n] = zero_byte(len);
                *n += 1;
            }
        };
        match op {
            Op::Zero { .. } => {
                if index != first {
                    push_zero(&mut seq, &mut n, index - first);
                }
                seq[n] = val_byte(count, 1);
                n += 1;
                if index != last {
                    push_zero(&mut seq, &mut n, last - index);
                }
            }
            Op::Val { value, .. } => {
                if index != first {
                    seq[n] = val_byte(value, index - first);
                    n += 1;
                }
                seq[n] = val_byte(count, 1);
                n += 1;
                if index != last {
                    seq[n] = val_byte(value, last - index);
                    n += 1;
                }
            }
        }
        // Step 3: put the new sequence in place of the old opcode.
        let old_len = op.bytes();
        let new_total = end as i64 + n as i64 - old_len as i64;
        if n > old_len && new_total as u64 > max_bytes {
            return promote(v, index, count);
        }
        // An XZERO cut short by the end has one byte here, not two; Redis
        // still sizes the result as if it had two.
        let replaced = if has_next { p..next } else { p..end };
        v.splice(replaced, seq[..n].iter().copied());
        v.truncate(new_total.max(0) as usize);
    }

    // Step 4: merge adjacent VAL opcodes of the same value, scanning up to
    // five opcodes from the one before the edit.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < v.len() {
        if scan == 0 {
            break;
        }
        scan -= 1;
        let b = v[p];
        if b & 0xc0 == 0x40 {
            p += 2;
            continue;
        }
        if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < v.len() && v[p + 1] & 0x80 != 0 {
            let (v1, l1) = val_fields(v[p]);
            let (v2, l2) = val_fields(v[p + 1]);
            if v1 == v2 && l1 + l2 <= SPARSE_VAL_MAX_LEN {
                v[p + 1] = val_byte(v1, l1 + l2);
                v.remove(p);
                continue;
            }
        }
        p += 1;
    }
    invalidate(v);
    Set::Updated
}

/// Converts to dense and raises the register there (Redis's `promote:`
/// label: the cache is left for the caller to invalidate).
fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Set {
    if !make_dense(v) {
        return Set::Invalid;
    }
    dense_raise(&mut v[HDR..], index, count);
    Set::Updated
}

/// Redis's `hllAdd` on a value that passed `is_hll`.
pub fn add(v: &mut Vec<u8>, element: &[u8], max_bytes: u64) -> Set {
    let (index, count) = pat_len(element);
    if v[4] == DENSE {
        if dense_raise(&mut v[HDR..], index, count) {
            Set::Updated
        } else {
            Set::Unchanged
        }
    } else {
        sparse_set(v, index, count, max_bytes)
    }
}

// ---------------------------------------------------------------- counting

/// How many registers hold each value (0..=63).
pub type Histogram = [u32; 64];

/// The register histogram of a value that passed `is_hll`; None for corrupted
/// sparse opcodes.
pub fn histogram(v: &[u8]) -> Option<Histogram> {
    let mut h = [0u32; 64];
    if v[4] == DENSE {
        for_each_dense_group(&v[HDR..], |_, r| {
            for x in r {
                h[x as usize] += 1;
            }
        });
        return Some(h);
    }
    let valid = walk_sparse(v, |_, op| match op {
        Op::Zero { len, .. } => h[0] += len as u32,
        Op::Val { value, len } => h[value as usize] += len as u32,
    });
    valid.then_some(h)
}

/// The histogram of a raw register array (one byte per register).
pub fn raw_histogram(regs: &[u8; REGISTERS]) -> Histogram {
    let mut h = [0u32; 64];
    for word in regs.chunks_exact(8) {
        // Mostly-empty unions skip eight zero registers at a time.
        if word.iter().all(|&r| r == 0) {
            h[0] += 8;
            continue;
        }
        for &r in word {
            h[(r & 63) as usize] += 1;
        }
    }
    h
}

/// Calls `f(group, [r0, r1, r2, r3])` for each group of four registers of a
/// dense register array: every three bytes hold four registers, so this
/// reads them without per-register shifts and bounds checks.
#[inline]
fn for_each_dense_group(regs: &[u8], mut f: impl FnMut(usize, [u8; 4])) {
    for (g, b) in regs.chunks_exact(3).enumerate() {
        let (b0, b1, b2) = (b[0], b[1], b[2]);
        f(g, [b0 & 63, ((b0 >> 6) | (b1 << 2)) & 63, ((b1 >> 4) | (b2 << 4)) & 63, b2 >> 2]);
    }
}

/// Ertl's sigma, "New cardinality estimation algorithms for HyperLogLog
/// sketches" (arXiv:1702.01284).
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

/// Ertl's tau, same paper.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// C's `llroundl` on x86-64: half away from zero; NaN and values outside
/// the i64 range give i64::MIN (the "integer indefinite" value).
fn llround(x: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    let r = x.round();
    // NaN is outside every range.
    if (-LIMIT..LIMIT).contains(&r) {
        r as i64
    } else {
        i64::MIN
    }
}

/// Redis's cardinality estimate from a register histogram (Ertl's improved
/// estimator, Redis 5.0 and later), with Redis's conversions: the rounded
/// value goes through a double before it becomes the unsigned result.
pub fn estimate(h: &Histogram) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    let e = llround(ALPHA_INF * m * m / z) as f64;
    if e < 0.0 {
        e as i64 as u64
    } else {
        e as u64
    }
}

/// The cardinality of a value that passed `is_hll`, ignoring the cache.
pub fn count(v: &[u8]) -> Option<u64> {
    histogram(v).map(|h| estimate(&h))
}

/// Redis's `hllMerge`: raises each of `max`'s registers to the value's.
/// False when the value's sparse opcodes are corrupted.
pub fn merge_into(max: &mut [u8; REGISTERS], v: &[u8]) -> bool {
    if v[4] == DENSE {
        for_each_dense_group(&v[HDR..], |g, r| {
            for (m, x) in max[4 * g..4 * g + 4].iter_mut().zip(r) {
                *m = (*m).max(x);
            }
        });
        return true;
    }
    walk_sparse(v, |first, op| {
        if let Op::Val { value, len } = op {
            for m in &mut max[first..first + len] {
                if value > *m {
                    *m = value;
                }
            }
        }
    })
}

/// Writes the merged registers `max` into `v` (PFMERGE's destination, which
/// is dense when `dense` or sparse otherwise), register by register in
/// index order as Redis does, so a sparse destination gets Redis's bytes.
pub fn store_merged(v: &mut Vec<u8>, max: &[u8; REGISTERS], max_bytes: u64) {
    let mut trail = Vec::new();
    for (i, &m) in max.iter().enumerate() {
        if m == 0 {
            continue;
        }
        if v[4] == DENSE {
            dense_raise(&mut v[HDR..], i, m);
        } else {
            // Redis ignores the result here: the destination was validated.
            sparse_set_after(v, i, m, max_bytes, &mut trail);
        }
    }
    invalidate(v);
}

/// PFDEBUG DECODE's text for a sparse value: `z:N`, `Z:N`, `v:V,N` opcodes.
pub fn decode(v: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut p = HDR;
    while p < v.len() {
        let op = op_at(v, p);
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = match op {
            Op::Zero { len, wide: false } => write!(out, "z:{len}"),
            Op::Zero { len, wide: true } => write!(out, "Z:{len}"),
            Op::Val { value, len } => write!(out, "v:{value},{len}"),
        };
        p += op.bytes();
    }
    out
}

/// Every register of a value (PFDEBUG GETREG, after conversion to dense).
pub fn registers(v: &[u8]) -> Vec<u8> {
    let regs = &v[HDR..];
    (0..REGISTERS).map(|i| dense_get(regs, i)).collect()
}

/// PFSELFTEST: register access, then the estimate's error and the
/// agreement of sparse and dense forms up to 10 million elements.
pub fn selftest(max_bytes: u64) -> Result<(), String> {
    selftest_sized(max_bytes, 1000, 10_000_000)
}

fn selftest_sized(max_bytes: u64, cycles: usize, elements: u64) -> Result<(), String> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut dense = vec![0u8; DENSE_REGS];
    let mut bytes = vec![0u8; REGISTERS];
    // xorshift64: cheap enough for 16 million draws in a debug build.
    let mut x: u64 = rng.gen::<u64>() | 1;
    for _ in 0..cycles {
        for (i, b) in bytes.iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = (x >> 32) as u8 & REGISTER_MAX;
            *b = r;
            dense_set(&mut dense, i, r);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let got = dense_get(&dense, i);
            if got != b {
                return Err(format!("TESTFAILED Register {i} should be {b} but is {got}"));
            }
        }
    }
    let mut full = vec![0u8; DENSE_SIZE];
    full[..4].copy_from_slice(b"HYLL");
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let seed: u64 = rng.gen();
    let mut checkpoint: u64 = 1;
    for j in 1..=elements {
        let ele = (j ^ seed).to_le_bytes();
        let (index, count) = pat_len(&ele);
        dense_raise(&mut full[HDR..], index, count);
        if sparse[4] == DENSE {
            dense_raise(&mut sparse[HDR..], index, count);
        } else {
            sparse_set(&mut sparse, index, count, max_bytes);
        }
        if j != checkpoint {
            continue;
        }
        if j < max_bytes / 2 && sparse[4] != SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let card = count_or_zero(&full);
        if card != count_or_zero(&sparse) {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = (checkpoint as i64 - card as i64).unsigned_abs();
        let maxerr = if j == 10 { 1 } else { (relerr * 6.0 * checkpoint as f64).ceil() as u64 };
        if abserr > maxerr {
            return Err(format!("TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"));
        }
        checkpoint *= 10;
    }
    Ok(())
}

fn count_or_zero(v: &[u8]) -> u64 {
    count(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn murmur_reference_values() {
        // MurmurHash64A of the empty input is fixed by the seed alone.
        assert_eq!(murmur64a(b"", 0), 0);
        // Inputs of every tail length go through the tail switch; the hash must
        // differ per length and be stable.
        let data = b"0123456789abcdef";
        let hashes: Vec<u64> = (0..=16).map(|n| murmur64a(&data[..n], SEED)).collect();
        let distinct: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(distinct.len(), hashes.len());
    }

    /// Register and pattern values checked against redis-server 7.0
    /// (`PFADD k <element>` then `PFDEBUG GETREG k`).
    #[test]
    fn pattern_matches_redis() {
        assert_eq!(pat_len(b"a"), (12711, 2));
        assert_eq!(pat_len(b"hello"), (9216, 1));
        assert_eq!(pat_len(b""), (5938, 2));
        assert_eq!(pat_len(b"\x00\xff binary"), (15862, 4));
        assert_eq!(pat_len(&[b'x'; 100]), (15288, 1));
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut regs = vec![0u8; DENSE_REGS];
        let mut model = vec![0u8; REGISTERS];
        for _ in 0..3 {
            for (i, m) in model.iter_mut().enumerate() {
                *m = rng.gen::<u8>() & 63;
                dense_set(&mut regs, i, *m);
            }
            for (i, m) in model.iter().enumerate() {
                assert_eq!(dense_get(&regs, i), *m, "register {i}");
            }
        }
    }

    #[test]
    fn grouped_reads_match_register_reads() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let mut v = vec![0u8; DENSE_SIZE];
        v[..4].copy_from_slice(b"HYLL");
        for b in &mut v[HDR..] {
            *b = rng.gen();
        }
        let regs = registers(&v);
        let mut h = [0u32; 64];
        for &r in &regs {
            h[r as usize] += 1;
        }
        assert_eq!(histogram(&v), Some(h));
        let mut max = [0u8; REGISTERS];
        for m in max.iter_mut() {
            *m = rng.gen_range(0..64);
        }
        let expect: Vec<u8> = max.iter().zip(&regs).map(|(a, b)| *a.max(b)).collect();
        assert!(merge_into(&mut max, &v));
        assert_eq!(max.to_vec(), expect);
        assert_eq!(raw_histogram(&max), {
            let mut h = [0u32; 64];
            for &m in &expect {
                h[m as usize] += 1;
            }
            h
        });
    }

    #[test]
    fn new_value_layout() {
        let v = new_sparse();
        assert_eq!(v, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert!(is_hll(&v));
        assert_eq!(cached(&v), Some(0));
        assert_eq!(count(&v), Some(0));
        assert_eq!(decode(&v), "Z:16384");
    }

    /// Sparse and dense forms fed the same elements agree on every register
    /// and on the estimate, before and after the promotion.
    #[test]
    fn sparse_tracks_dense() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut sparse = new_sparse();
        let mut dense = to_dense(&sparse).unwrap();
        let mut promoted_at = None;
        for n in 0..20_000u32 {
            let ele: [u8; 4] = rng.gen();
            let a = add(&mut sparse, &ele, 3000);
            let b = add(&mut dense, &ele, 3000);
            assert_ne!(a, Set::Invalid);
            assert_eq!(a == Set::Updated, b == Set::Updated, "element {n}");
            if sparse[4] == SPARSE {
                assert!(sparse.len() <= 3000);
                assert_eq!(to_dense(&sparse).unwrap()[HDR..], dense[HDR..], "element {n}");
            } else if promoted_at.is_none() {
                promoted_at = Some(n);
            }
            if n % 500 == 0 {
                assert_eq!(count(&sparse), count(&dense));
            }
        }
        assert!(promoted_at.is_some());
        assert_eq!(sparse[HDR..], dense[HDR..]);
        let c = count(&dense).unwrap();
        assert!((19_000..21_000).contains(&c), "{c}");
    }

    /// A valid sparse value of random, non-canonical opcodes.
    fn random_sparse(rng: &mut rand::rngs::StdRng) -> Vec<u8> {
        let mut v = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
        let mut left = REGISTERS;
        let top = if rng.gen_bool(0.5) { 2 } else { 32 };
        while left > 0 {
            let n = match rng.gen_range(0..4) {
                0 => rng.gen_range(1..=4).min(left),
                1 => rng.gen_range(1..=64).min(left),
                _ => rng.gen_range(1..=400).min(left),
            };
            match rng.gen_range(0..4) {
                0 if n <= 4 => v.push(val_byte(rng.gen_range(1..=top), n)),
                1 if n <= 64 => v.push(zero_byte(n)),
                _ => v.extend_from_slice(&xzero(n)),
            }
            left -= n;
        }
        v
    }

    /// PFMERGE's resumed searches give the bytes of searches from the start.
    #[test]
    fn merge_resume_matches_full_search() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for round in 0..80 {
            let dest = if round % 3 == 0 { new_sparse() } else { random_sparse(&mut rng) };
            let mut max = [0u8; REGISTERS];
            let density = rng.gen_range(0.0..0.3);
            let top = if rng.gen_bool(0.5) { 3 } else { 32 };
            for m in max.iter_mut() {
                if rng.gen_bool(density) {
                    *m = rng.gen_range(1..=top);
                }
            }
            assert!(merge_into(&mut max, &dest));
            let limit = [60, 300, 3000, 100_000][round % 4];
            let mut fast = dest.clone();
            store_merged(&mut fast, &max, limit);
            let mut slow = dest.clone();
            for (i, &m) in max.iter().enumerate() {
                if m == 0 {
                    continue;
                }
                if slow[4] == DENSE {
                    dense_raise(&mut slow[HDR..], i, m);
                } else {
                    sparse_set(&mut slow, i, m, limit);
                }
            }
            invalidate(&mut slow);
            assert_eq!(fast, slow, "round {round}");
        }
    }

    #[test]
    fn estimator_edges() {
        let mut h = [0u32; 64];
        h[0] = REGISTERS as u32;
        assert_eq!(estimate(&h), 0);
        // Every register at 50: the estimate overflows i64, as in Redis.
        let mut h = [0u32; 64];
        h[50] = REGISTERS as u32;
        assert_eq!(estimate(&h), 1u64 << 63);
        // Every register at 51: z is 0, the quotient infinite.
        let mut h = [0u32; 64];
        h[51] = REGISTERS as u32;
        assert_eq!(estimate(&h), 1u64 << 63);
        // Values above 51 (only in hand-made dense values) count as neither
        // zero nor 51: nothing is left of z.
        let mut h = [0u32; 64];
        h[60] = REGISTERS as u32;
        assert_eq!(estimate(&h), 1u64 << 63);
    }

    #[test]
    fn corrupted_sparse_detected() {
        let mut v = new_sparse();
        v.push(0x00); // one register too many
        assert_eq!(count(&v), None);
        assert!(to_dense(&v).is_none());
        let mut max = [0u8; REGISTERS];
        assert!(!merge_into(&mut max, &v));
        let mut short = new_sparse();
        short.truncate(HDR);
        assert_eq!(count(&short), None);
        assert_eq!(add(&mut short, b"x", 3000), Set::Invalid);
        // An XZERO cut short reads its second byte as 0: 0x7f alone is 16129.
        let mut cut = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
        cut.extend_from_slice(&xzero(255));
        cut.push(0x7f);
        assert_eq!(count(&cut), Some(0));
    }

    /// Random bytes after a valid header never panic and never grow without bound.
    #[test]
    fn fuzz_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for round in 0..2000 {
            let len = rng.gen_range(0..60);
            let mut v = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
            v.extend((0..len).map(|_| rng.gen::<u8>()));
            if round % 3 == 0 {
                // Mostly-valid input: a real value with one byte flipped.
                v = new_sparse();
                for i in 0..rng.gen_range(0..50u32) {
                    add(&mut v, &i.to_le_bytes(), 3000);
                }
                let at = rng.gen_range(HDR..v.len());
                v[at] ^= 1 << rng.gen_range(0..8);
            }
            let _ = count(&v);
            let _ = decode(&v);
            let mut max = [0u8; REGISTERS];
            let _ = merge_into(&mut max, &v);
            let _ = to_dense(&v);
            for i in 0..20u32 {
                if !is_hll(&v) || add(&mut v, &i.to_be_bytes(), 300) == Set::Invalid {
                    break;
                }
            }
        }
    }

    #[test]
    fn selftest_passes_small() {
        selftest_sized(3000, 3, 100_000).unwrap();
    }

    /// PFSELFTEST's cardinality-10 check allows an error of 1 (as Redis's):
    /// the estimate of 10 elements is the number of registers they reach, so
    /// the check fails only when two register collisions happen among them,
    /// which depends on the random seed alone (fuzzer run 9 saw moonshard
    /// answer `TESTFAILED Too big error. card:10 abserr:2` once).
    #[test]
    fn selftest_card10_error_is_collisions_only() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9009);
        for _ in 0..20_000 {
            let seed: u64 = rng.gen();
            let mut regs = std::collections::HashMap::new();
            for j in 1..=10u64 {
                let (index, count) = pat_len(&(j ^ seed).to_le_bytes());
                let r = regs.entry(index).or_insert(0u8);
                *r = (*r).max(count);
            }
            let mut h = [0u32; 64];
            h[0] = (REGISTERS - regs.len()) as u32;
            for &c in regs.values() {
                h[c as usize] += 1;
            }
            assert_eq!(estimate(&h), regs.len() as u64, "seed {seed}");
        }
    }
}
