//! `SmallBytes`: the compact byte string used for keys and string values.
//!
//! Most keys and string values are short (`key:000000012345`, counters,
//! flags), so storing them as `bytes::Bytes` (a 32-byte handle plus a heap
//! allocation with its own header) costs more than the data. A `SmallBytes`
//! is 24 bytes: up to [`INLINE`] bytes live inside it with no allocation;
//! longer strings live in one exact-size heap block. The representation has
//! a spare tag byte, so `Value` (whose other variants are boxed) stays 24
//! bytes too.
//!
//! A heap string may keep spare capacity (`spare` bytes past its length) so
//! that repeated APPEND/SETRANGE grow it in amortized O(1), as Redis's sds
//! preallocation does; every other constructor allocates exactly.
//!
//! A string of at least [`SHARED_MIN`] bytes set from a request argument
//! ([`SmallBytes::from_arg`]) keeps the argument's own buffer, reference
//! counted: SET stores it without a copy, and GET's reply holds another
//! reference instead of a copy (the connection writes it straight from
//! there). An edit in place first takes a private copy.

use bytes::Bytes;
use std::fmt;

/// Longest string stored without a heap allocation.
pub const INLINE: usize = 22;

/// Shortest string kept as a shared buffer by `from_arg`. Below it a copy
/// costs less than the two extra blocks a shared buffer holds (the handle
/// and its reference count, 56 bytes).
pub const SHARED_MIN: usize = 512;

/// The block `bytes` allocates for the reference count of a buffer taken
/// from a `Vec` once it is first shared (its buffer, capacity and count).
const SHARED_HEADER: usize = 24;

/// Most spare capacity kept after a growing edit (Redis's SDS_MAX_PREALLOC).
const MAX_PREALLOC: usize = 1 << 20;

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        buf: [u8; INLINE],
    },
    /// `buf.len()` is the capacity; the string is `buf[..buf.len() - spare]`.
    Heap {
        spare: u32,
        buf: Box<[u8]>,
    },
    /// A long string shared with the replies that read it (boxed: a `Bytes`
    /// is 32 bytes, and `SmallBytes` must stay 24).
    Shared(Box<Bytes>),
}

#[derive(Clone)]
pub struct SmallBytes(Repr);

impl SmallBytes {
    pub const fn new() -> SmallBytes {
        SmallBytes(Repr::Inline { len: 0, buf: [0; INLINE] })
    }

    pub fn from_slice(s: &[u8]) -> SmallBytes {
        if s.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..s.len()].copy_from_slice(s);
            SmallBytes(Repr::Inline { len: s.len() as u8, buf })
        } else {
            SmallBytes(Repr::Heap { spare: 0, buf: Box::from(s) })
        }
    }

    /// Takes over `v` (no copy when it is long and exactly sized).
    pub fn from_vec(v: Vec<u8>) -> SmallBytes {
        if v.len() <= INLINE {
            SmallBytes::from_slice(&v)
        } else {
            SmallBytes(Repr::Heap { spare: 0, buf: v.into_boxed_slice() })
        }
    }

    /// A string set from a request argument: a long one keeps the
    /// argument's buffer (no copy; see the module notes). Only for buffers
    /// that hold nothing but the string (the parser copies each argument
    /// into its own), or the stored string would pin the rest.
    pub fn from_arg(b: &Bytes) -> SmallBytes {
        if b.len() >= SHARED_MIN {
            SmallBytes(Repr::Shared(Box::new(b.clone())))
        } else {
            SmallBytes::from_slice(b)
        }
    }

    /// The decimal text of `n`, as INCR stores it (never allocates).
    pub fn from_i64(n: i64) -> SmallBytes {
        let mut buf = [0u8; INLINE];
        let mut pos = INLINE;
        let mut m = n.unsigned_abs();
        loop {
            pos -= 1;
            buf[pos] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        if n < 0 {
            pos -= 1;
            buf[pos] = b'-';
        }
        buf.copy_within(pos.., 0);
        SmallBytes(Repr::Inline { len: (INLINE - pos) as u8, buf })
    }

    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..*len as usize],
            Repr::Heap { spare, buf } => &buf[..buf.len() - *spare as usize],
            Repr::Shared(b) => b,
        }
    }

    /// The string's bytes, for edits that keep its length (SETBIT, BITFIELD).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.bytes_mut()
    }

    /// The string as `Bytes`, for replies (which outlive the shard lock): a
    /// copy, or another reference to a shared buffer.
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Shared(b) => Bytes::clone(b),
            _ => Bytes::copy_from_slice(self.as_slice()),
        }
    }

    /// The string as a vector, keeping a heap string's capacity.
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Inline { len, buf } => buf[..len as usize].to_vec(),
            Repr::Heap { spare, buf } => {
                let mut v = buf.into_vec();
                let len = v.len() - spare as usize;
                v.truncate(len);
                v
            }
            Repr::Shared(b) => Vec::from(*b),
        }
    }

    /// Writes `tail` at `at` (zero-filling any gap), growing the string with
    /// preallocation: the edit APPEND and SETRANGE make.
    pub fn write_at(&mut self, at: usize, tail: &[u8]) {
        let end = at + tail.len();
        if end <= self.len() {
            self.bytes_mut()[at..end].copy_from_slice(tail);
            return;
        }
        if end <= INLINE {
            if let Repr::Inline { len, buf } = &mut self.0 {
                buf[*len as usize..at.max(*len as usize)].fill(0);
                buf[at..end].copy_from_slice(tail);
                *len = end as u8;
                return;
            }
        }
        let mut v = std::mem::take(self).into_vec();
        if v.capacity() < end {
            let want = if end < MAX_PREALLOC { end * 2 } else { end + MAX_PREALLOC };
            v.reserve_exact(want - v.len());
        }
        v.resize(at.max(v.len()), 0);
        v.truncate(at);
        v.extend_from_slice(tail);
        *self = SmallBytes::with_spare(v);
    }

    /// Keeps `v`'s spare capacity (bounded by `MAX_PREALLOC`) for later growth.
    fn with_spare(mut v: Vec<u8>) -> SmallBytes {
        if v.len() <= INLINE {
            return SmallBytes::from_slice(&v);
        }
        let len = v.len();
        let cap = v.capacity().min(len + MAX_PREALLOC);
        v.resize(cap, 0);
        SmallBytes(Repr::Heap { spare: (cap - len) as u32, buf: v.into_boxed_slice() })
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        if let Repr::Shared(b) = &self.0 {
            // Copy on write: readers may hold the shared buffer.
            self.0 = Repr::Heap { spare: 0, buf: Box::from(&b[..]) };
        }
        match &mut self.0 {
            Repr::Inline { len, buf } => &mut buf[..*len as usize],
            Repr::Heap { spare, buf } => {
                let len = buf.len() - *spare as usize;
                &mut buf[..len]
            }
            Repr::Shared(_) => unreachable!("made private above"),
        }
    }

    /// Heap bytes owned beyond the 24-byte handle, as one block (keys are
    /// never shared; see `heap_blocks` for values).
    pub fn heap_size(&self) -> usize {
        match &self.0 {
            Repr::Inline { .. } => 0,
            Repr::Heap { buf, .. } => buf.len(),
            Repr::Shared(b) => b.len(),
        }
    }

    /// The allocator blocks the string holds (MEMORY USAGE): its buffer,
    /// plus for a shared one the boxed handle and the reference count.
    pub fn heap_blocks(&self) -> usize {
        use super::usage::block;
        match &self.0 {
            Repr::Shared(b) => block(std::mem::size_of::<Bytes>()) + block(SHARED_HEADER) + block(b.len()),
            _ => block(self.heap_size()),
        }
    }

    /// True when the string is a buffer shared with replies (tests).
    pub fn is_shared(&self) -> bool {
        matches!(self.0, Repr::Shared(_))
    }

    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

impl Default for SmallBytes {
    fn default() -> Self {
        SmallBytes::new()
    }
}

impl std::ops::Deref for SmallBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SmallBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::borrow::Borrow<[u8]> for SmallBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SmallBytes {}

impl std::hash::Hash for SmallBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(s: &[u8]) -> Self {
        SmallBytes::from_slice(s)
    }
}

impl From<&Bytes> for SmallBytes {
    fn from(b: &Bytes) -> Self {
        SmallBytes::from_slice(b)
    }
}

impl From<Bytes> for SmallBytes {
    fn from(b: Bytes) -> Self {
        SmallBytes::from_slice(&b)
    }
}

impl From<Vec<u8>> for SmallBytes {
    fn from(v: Vec<u8>) -> Self {
        SmallBytes::from_vec(v)
    }
}

impl From<&str> for SmallBytes {
    fn from(s: &str) -> Self {
        SmallBytes::from_slice(s.as_bytes())
    }
}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_compact() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        assert_eq!(std::mem::size_of::<crate::storage::Value>(), 24);
    }

    #[test]
    fn inline_and_heap() {
        for n in [0, 1, INLINE, INLINE + 1, 100] {
            let data: Vec<u8> = (0..n as u8).collect();
            let s = SmallBytes::from_slice(&data);
            assert_eq!(&s[..], &data[..]);
            assert_eq!(s.is_inline(), n <= INLINE);
            assert_eq!(SmallBytes::from_vec(data.clone()), s);
            assert_eq!(s.clone().into_vec(), data);
        }
    }

    #[test]
    fn shared_strings_copy_on_write() {
        let arg = Bytes::from(vec![7u8; SHARED_MIN]);
        let mut s = SmallBytes::from_arg(&arg);
        assert!(s.is_shared());
        assert!(!SmallBytes::from_arg(&Bytes::from(vec![7u8; SHARED_MIN - 1])).is_shared());
        let reply = s.to_bytes();
        assert_eq!(reply.as_ptr(), arg.as_ptr(), "a reply shares the buffer");
        s.as_mut_slice()[0] = 1;
        assert!(!s.is_shared());
        assert_eq!(reply[0], 7, "an edit reached a reply already taken");
        assert_eq!(s[0], 1);
        let mut t = SmallBytes::from_arg(&arg);
        t.write_at(SHARED_MIN, b"tail");
        assert_eq!(&t[SHARED_MIN..], b"tail");
        assert_eq!(arg.len(), SHARED_MIN);
        assert_eq!(SmallBytes::from_arg(&arg).into_vec(), vec![7u8; SHARED_MIN]);
        assert!(SmallBytes::from_arg(&arg).heap_blocks() > SHARED_MIN);
    }

    #[test]
    fn integers() {
        for n in [0, 1, -1, 42, i64::MAX, i64::MIN, 1000000] {
            assert_eq!(&SmallBytes::from_i64(n)[..], n.to_string().as_bytes());
        }
    }

    #[test]
    fn write_at_matches_a_vector() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let mut s = SmallBytes::new();
            let mut model: Vec<u8> = Vec::new();
            for _ in 0..20 {
                let at = if rng.gen_bool(0.5) { model.len() } else { rng.gen_range(0..40) };
                let tail: Vec<u8> = (0..rng.gen_range(0..30)).map(|_| rng.gen()).collect();
                s.write_at(at, &tail);
                if model.len() < at + tail.len() {
                    model.resize(at + tail.len(), 0);
                }
                model[at..at + tail.len()].copy_from_slice(&tail);
                assert_eq!(&s[..], &model[..]);
            }
        }
    }
}
