//! Bitmap commands on plain string values (Redis's bitops.c): SETBIT,
//! GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and BITFIELD_RO.
//!
//! A bitmap is a string read as a big-endian bit array: bit 0 is the most
//! significant bit of the first byte. Reads past the end see zeros; writes
//! past the end grow the string with zero bytes.
//!
//! Redis 7.0 is the reference for every reply, error text and argument
//! check order, including its quirks: BITCOUNT and BITPOS look the key up
//! before they parse their range (a missing key answers 0 / -1 whatever the
//! range says), and BITFIELD's signed SAT on a SET value near `i64::MIN`
//! saturates upwards as Redis's overflow check does.

use super::keys::lookup_read;
use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::storage::small::INLINE;
use crate::storage::{Entry, SmallBytes, StrHint, Value};
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

// ------------------------------------------------------------ declarations

pub static COMMANDS: &[CommandSpec] = &[
    cmd("setbit", 4, WRITE | DENYOOM, K1, G::Bitmap, K(setbit))
        .syntax("key%k offset%i value%i")
        .doc("2.2.0", "Sets or clears one bit of a string, growing it as needed; returns the old bit.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(1), range(0, 1, 0))]),
    cmd("getbit", 3, READONLY | FAST, K1, G::Bitmap, K(getbit))
        .syntax("key%k offset%i")
        .doc("2.2.0", "Returns one bit of a string (0 past its end)."),
    cmd("bitcount", -2, READONLY, K1, G::Bitmap, K(bitcount))
        .syntax("key%k [start%i end%i [BYTE|BIT]]")
        .doc("2.6.0", "Counts the set bits of a string, or of a byte or bit range of it."),
    cmd("bitpos", -3, READONLY, K1, G::Bitmap, K(bitpos))
        .syntax("key%k bit%i [start%i [end%i [BYTE|BIT]]]")
        .doc("2.8.7", "Finds the first set or clear bit of a string, optionally within a range."),
    cmd("bitop", -4, WRITE | DENYOOM, k(2, -1, 1), G::Bitmap, K(bitop))
        .syntax("operation destkey%k key%k [key ...]")
        .doc("2.6.0", "Stores the AND, OR, XOR or NOT of strings under a destination key.")
        .key_specs(&[ks(&["OW", "update"], idx(2), range(0, 1, 0)), ks(&["RO", "access"], idx(3), range(-1, 1, 0))]),
    cmd("bitfield", -2, WRITE | DENYOOM, K1, G::Bitmap, K(bitfield))
        .syntax("key%k [(GET encoding offset%i|[OVERFLOW (WRAP|SAT|FAIL)] (SET encoding offset%i value%i)|INCRBY encoding offset%i increment%i) [GET encoding offset|[OVERFLOW WRAP|SAT|FAIL] SET encoding offset value|INCRBY encoding offset increment ...]]")
        .doc("3.2.0", "Reads, writes and increments integers of any width at bit offsets of a string.")
        .key_specs(&[ks_noted(
            "This command allows both access and modification of the key",
            &["RW", "access", "update", "variable_flags"],
            idx(1),
            range(0, 1, 0),
        )]),
    cmd("bitfield_ro", -2, READONLY | FAST, K1, G::Bitmap, K(bitfield_ro))
        .syntax("key%k [GET encoding offset%i [GET encoding offset ...]]")
        .doc("6.0.0", "BITFIELD restricted to GET, for read-only contexts."),
];

const ERR_OFFSET: &str = "bit offset is not an integer or out of range";
const ERR_BIT: &str = "bit is not an integer or out of range";
const ERR_TYPE: &str = "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

// The argument as C code sees it (`strcasecmp`, `strlen`...): up to its first NUL byte.
use crate::protocol::c_str as cstr;

/// Redis's `getBitOffsetFromArgument`: a non-negative bit offset whose byte
/// lies below `proto-max-bulk-len`. With `hash_bits` (BITFIELD), `#N` means
/// N fields of that width (the product wraps as Redis's does, and a wrapped
/// negative result is refused like any negative offset).
fn bit_offset(ctx: &Ctx, arg: &[u8], hash_bits: Option<u32>) -> Result<u64, Reply> {
    let (digits, mul) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&arg[1..], bits as i64),
        _ => (arg, 1),
    };
    let off = parse_i64(digits).ok_or_else(|| Reply::err(ERR_OFFSET))?.wrapping_mul(mul);
    let max = ctx.server.config.proto_max_bulk_len.load(Relaxed);
    if off < 0 || (off >> 3) >= max {
        return Err(Reply::err(ERR_OFFSET));
    }
    Ok(off as u64)
}

/// The string under `key` for reading: `Ok(None)` when missing.
fn read_str<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c [u8]>, Reply> {
    match lookup_read(ctx, key) {
        None => Ok(None),
        Some(Entry { value: Value::Str(s), .. }) => Ok(Some(s.as_slice())),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// Redis's `lookupStringForBitCommand`, then `edit`: the string under `key`
/// is created or grown with zero bytes so that bit `maxbit` exists, and is
/// marked raw (Redis unshares it into a raw string before any edit, even one
/// that changes nothing). `edit` gets the bytes and whether the string was
/// created or grown.
fn edit_string<R>(ctx: &mut Ctx, key: &[u8], maxbit: u64, edit: impl FnOnce(&mut [u8], bool) -> R) -> Result<R, Reply> {
    // bit_offset keeps maxbit's byte below proto-max-bulk-len, an i64.
    let byte = (maxbit >> 3) as usize;
    let (server, now) = (ctx.server, ctx.now);
    let (found, reaped) = ctx.db(key).lookup_hinted(key, now, StrHint::Raw);
    if reaped {
        server.stats.expired_keys.fetch_add(1, Relaxed);
    }
    match found {
        Some(Entry { value: Value::Str(s), .. }) => {
            let grew = byte >= s.len();
            if grew {
                // Zero-fills up to and including `byte`, with APPEND's preallocation.
                s.write_at(byte, &[0]);
            }
            return Ok(edit(s.as_mut_slice(), grew));
        }
        Some(_) => return Err(Reply::wrong_type()),
        None => {}
    }
    // A new string is exactly `byte + 1` zero bytes, as Redis allocates it.
    let mut s = if byte < INLINE {
        SmallBytes::from_slice(&[0u8; INLINE][..byte + 1])
    } else {
        SmallBytes::from_vec(vec![0u8; byte + 1])
    };
    let r = edit(s.as_mut_slice(), true);
    let db = ctx.db(key);
    db.set(key, Value::Str(s));
    db.set_str_hint(key, StrHint::Raw);
    Ok(r)
}

// ------------------------------------------------------------ SETBIT/GETBIT

pub fn setbit(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let off = match bit_offset(ctx, &args[2], None) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let on = match parse_i64(&args[3]) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return Reply::err(ERR_BIT),
    };
    let byte = (off >> 3) as usize;
    let mask = 0x80u8 >> (off & 7);
    let edited = edit_string(ctx, key, off, |s, grew| {
        let b = &mut s[byte];
        let old = *b & mask != 0;
        if on {
            *b |= mask;
        } else {
            *b &= !mask;
        }
        (old, grew || old != on)
    });
    match edited {
        Ok((old, changed)) => {
            if changed {
                ctx.written(key, "setbit");
            }
            Reply::Int(old as i64)
        }
        Err(e) => e,
    }
}

pub fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let off = match bit_offset(ctx, &args[2], None) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match read_str(ctx, &args[1]) {
        Ok(s) => {
            let byte = s.and_then(|s| s.get((off >> 3) as usize)).copied().unwrap_or(0);
            Reply::Int(((byte << (off & 7)) >> 7) as i64)
        }
        Err(e) => e,
    }
}

// ---------------------------------------------------------------- counting

/// Set bits of `s`, a word at a time.
fn popcount(s: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if s.len() >= 64 && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just checked to support AVX2, the only
            // requirement of a #[target_feature(enable = "avx2")] function.
            return unsafe { popcount_avx2(s) };
        }
        if s.len() >= 8 && std::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU was just checked to support POPCNT.
            return unsafe { popcount_popcnt(s) };
        }
    }
    popcount_words(s)
}

/// The portable loop; the target-feature wrappers below compile the same
/// code with wider instructions (LLVM vectorizes it with AVX2).
#[inline(always)]
fn popcount_words(s: &[u8]) -> u64 {
    let (words, tail) = s.as_chunks::<8>();
    let mut n: u64 = words.iter().map(|w| u64::from(u64::from_ne_bytes(*w).count_ones())).sum();
    n += tail.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
    n
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn popcount_avx2(s: &[u8]) -> u64 {
    popcount_words(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn popcount_popcnt(s: &[u8]) -> u64 {
    popcount_words(s)
}

/// Set bits of `s` between bit positions `a` and `b` inclusive (`a <= b`,
/// both inside `s`).
fn count_range(s: &[u8], a: u64, b: u64) -> u64 {
    let (fa, fb) = ((a >> 3) as usize, (b >> 3) as usize);
    let Some(bytes) = s.get(fa..=fb) else {
        return 0;
    };
    let mut n = popcount(bytes);
    // Take off the bits of the edge bytes outside the range.
    n -= u64::from((s[fa] & !(0xFFu8 >> (a & 7))).count_ones());
    n -= u64::from((s[fb] & (0x7Fu8 >> (b & 7))).count_ones());
    n
}

/// `start`/`end` of BITCOUNT and BITPOS, negative from the end, clamped to
/// a string of `total` units (bytes or bits) as Redis clamps them.
fn clamp_range(start: i64, end: i64, total: i64) -> (i64, i64) {
    let start = if start < 0 { (total + start).max(0) } else { start };
    let end = if end < 0 { (total + end).max(0) } else { end };
    (start, end.min(total - 1))
}

/// BIT or BYTE (C string comparison, as Redis's `strcasecmp`).
fn parse_unit(a: &[u8]) -> Result<bool, Reply> {
    let a = cstr(a);
    if eq_ic(a, "bit") {
        Ok(true)
    } else if eq_ic(a, "byte") {
        Ok(false)
    } else {
        Err(Reply::syntax_error())
    }
}

/// A range in `unit`s as a bit range, or None when it is empty.
fn bit_range(start: i64, end: i64, len: usize, bits: bool) -> Option<(u64, u64)> {
    // A string holds at most proto-max-bulk-len bytes, so len * 8 fits an i64.
    let total = if bits { len as i64 * 8 } else { len as i64 };
    let (start, end) = clamp_range(start, end, total);
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if bits { (start, end) } else { (start * 8, end * 8 + 7) })
}

pub fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    // Redis 7.0 looks the key up first: a missing key is 0 whatever follows.
    let s = match read_str(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let range = match args.len() {
        2 => (!s.is_empty()).then(|| (0, s.len() as u64 * 8 - 1)),
        4 | 5 => {
            let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
                return Reply::not_integer();
            };
            if start < 0 && end < 0 && start > end {
                return Reply::Int(0);
            }
            let bits = match args.get(4).map(|a| parse_unit(a)).transpose() {
                Ok(b) => b.unwrap_or(false),
                Err(e) => return e,
            };
            bit_range(start, end, s.len(), bits)
        }
        _ => return Reply::syntax_error(),
    };
    Reply::Int(range.map_or(0, |(a, b)| count_range(s, a, b)) as i64)
}

// ------------------------------------------------------------------ BITPOS

/// Position of the first bit equal to `want` between bit positions `a` and
/// `b` inclusive (`a <= b`, both inside `s`), skipping whole words.
fn find_bit(s: &[u8], a: u64, b: u64, want: bool) -> Option<u64> {
    let (fa, fb) = ((a >> 3) as usize, (b >> 3) as usize);
    // Looking for a 1 in x ^ flip finds `want` in x.
    let flip8: u8 = if want { 0 } else { 0xFF };
    let flip64: u64 = if want { 0 } else { u64::MAX };
    let head = 0xFFu8 >> (a & 7);
    let tail = 0xFFu8 << (7 - (b & 7));
    let hit = |byte: usize, x: u8| Some(byte as u64 * 8 + u64::from(x.leading_zeros()));
    let first = *s.get(fa)? ^ flip8;
    if fa == fb {
        let x = first & head & tail;
        return if x != 0 { hit(fa, x) } else { None };
    }
    if first & head != 0 {
        return hit(fa, first & head);
    }
    let middle = s.get(fa + 1..fb)?;
    // Skip 64-byte blocks holding only the other bit (one vectorizable OR
    // per block), then find the word inside the block that stopped.
    let (blocks, _) = middle.as_chunks::<64>();
    let skip = blocks
        .iter()
        .position(|b| b.as_chunks::<8>().0.iter().fold(0, |acc, w| acc | (u64::from_ne_bytes(*w) ^ flip64)) != 0)
        .unwrap_or(blocks.len());
    let from = skip * 64;
    let (words, rest) = middle[from..].as_chunks::<8>();
    for (i, w) in words.iter().enumerate() {
        let x = u64::from_be_bytes(*w) ^ flip64;
        if x != 0 {
            return Some((fa + 1 + from + i * 8) as u64 * 8 + u64::from(x.leading_zeros()));
        }
    }
    let rest_at = fa + 1 + from + words.len() * 8;
    for (i, &byte) in rest.iter().enumerate() {
        if byte ^ flip8 != 0 {
            return hit(rest_at + i, byte ^ flip8);
        }
    }
    let last = (*s.get(fb)? ^ flip8) & tail;
    if last != 0 {
        hit(fb, last)
    } else {
        None
    }
}

pub fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let want = match parse_i64(&args[2]) {
        Some(b @ (0 | 1)) => b == 1,
        Some(_) => return Reply::err("The bit argument must be 1 or 0."),
        None => return Reply::not_integer(),
    };
    let s = match read_str(ctx, &args[1]) {
        Ok(Some(s)) => s,
        // A missing key is an endless run of zeros.
        Ok(None) => return Reply::Int(if want { -1 } else { 0 }),
        Err(e) => return e,
    };
    let (range, end_given) = match args.len() {
        3 => ((!s.is_empty()).then(|| (0, s.len() as u64 * 8 - 1)), false),
        4..=6 => {
            let Some(start) = parse_i64(&args[3]) else {
                return Reply::not_integer();
            };
            let bits = match args.get(5).map(|a| parse_unit(a)).transpose() {
                Ok(b) => b.unwrap_or(false),
                Err(e) => return e,
            };
            let end = match args.get(4) {
                Some(a) => match parse_i64(a) {
                    Some(e) => e,
                    None => return Reply::not_integer(),
                },
                None => s.len() as i64 - 1,
            };
            (bit_range(start, end, s.len(), bits), args.len() >= 5)
        }
        _ => return Reply::syntax_error(),
    };
    let Some((a, b)) = range else {
        return Reply::Int(-1);
    };
    match find_bit(s, a, b, want) {
        Some(p) => Reply::Int(p as i64),
        // With no end given the string counts as padded with zeros on the
        // right: the first clear bit is the one just past it.
        None if !want && !end_given => Reply::Int(b as i64 + 1),
        None => Reply::Int(-1),
    }
}

// ------------------------------------------------------------------- BITOP

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// `res[..src.len()] = f(res, src)`, eight bytes at a time.
#[inline(always)]
fn combine(res: &mut [u8], src: &[u8], f: impl Fn(u64, u64) -> u64) {
    let n = src.len().min(res.len());
    let (rw, rt) = res[..n].as_chunks_mut::<8>();
    let (sw, st) = src[..n].as_chunks::<8>();
    for (r, s) in rw.iter_mut().zip(sw) {
        *r = f(u64::from_ne_bytes(*r), u64::from_ne_bytes(*s)).to_ne_bytes();
    }
    for (r, s) in rt.iter_mut().zip(st) {
        *r = f(u64::from(*r), u64::from(*s)) as u8;
    }
}

/// Folds one more source into the result so far. `res` holds the result
/// of the previous sources, each padded with zeros to the longest.
fn fold_source(res: &mut Vec<u8>, src: &[u8], op: BitOp) {
    if src.len() > res.len() {
        res.resize(src.len(), 0);
    }
    match op {
        BitOp::And => {
            combine(res, src, |a, b| a & b);
            // The shorter source is zero past its end.
            res[src.len()..].fill(0);
        }
        BitOp::Or => combine(res, src, |a, b| a | b),
        BitOp::Xor => combine(res, src, |a, b| a ^ b),
        BitOp::Not => {}
    }
}

fn invert(res: &mut [u8]) {
    let (words, tail) = res.as_chunks_mut::<8>();
    for w in words {
        *w = (!u64::from_ne_bytes(*w)).to_ne_bytes();
    }
    for b in tail {
        *b = !*b;
    }
}

pub fn bitop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let name = cstr(&args[1]);
    let op = if eq_ic(name, "and") {
        BitOp::And
    } else if eq_ic(name, "or") {
        BitOp::Or
    } else if eq_ic(name, "xor") {
        BitOp::Xor
    } else if eq_ic(name, "not") {
        BitOp::Not
    } else {
        return Reply::syntax_error();
    };
    if op == BitOp::Not && args.len() != 4 {
        return Reply::err("BITOP NOT must be called with a single source key.");
    }
    let dest = &args[2];
    // Sources are read in order (a missing one is an empty string); the
    // first that is not a string fails the command before anything is stored.
    let mut res: Vec<u8> = Vec::new();
    for (i, key) in args[3..].iter().enumerate() {
        let src = match read_str(ctx, key) {
            Ok(s) => s.unwrap_or(&[]),
            Err(e) => return e,
        };
        if i == 0 {
            res.extend_from_slice(src);
            if op == BitOp::Not {
                invert(&mut res);
            }
        } else {
            fold_source(&mut res, src, op);
        }
    }
    let len = res.len();
    if len == 0 {
        // Redis deletes the destination outright (dbDelete), live or not.
        if ctx.db(dest).remove(dest).is_some() {
            ctx.written(dest, "del");
        }
        return Reply::Int(0);
    }
    let db = ctx.db(dest);
    db.set(dest, Value::Str(SmallBytes::from_vec(res)));
    db.set_str_hint(dest, StrHint::Raw);
    ctx.written(dest, "set");
    Reply::Int(len as i64)
}

// ---------------------------------------------------------------- BITFIELD

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    IncrBy,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
struct Field {
    op: FieldOp,
    offset: u64,
    /// SET's value or INCRBY's increment.
    value: i64,
    overflow: Overflow,
    bits: u32,
    signed: bool,
}

/// `i<1..64>` or `u<1..63>` (Redis reads the width with `strlen`, so up to a NUL).
fn parse_type(a: &[u8]) -> Result<(bool, u32), Reply> {
    let a = cstr(a);
    let signed = match a.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(Reply::err(ERR_TYPE)),
    };
    match parse_i64(&a[1..]) {
        Some(bits @ 1..=64) if signed || bits < 64 => Ok((signed, bits as u32)),
        _ => Err(Reply::err(ERR_TYPE)),
    }
}

/// Parses the operations (Redis checks them all before touching the key).
/// Returns them and the highest bit a SET or INCRBY writes (None if none does).
fn parse_fields(ctx: &Ctx, args: &[Bytes]) -> Result<(Vec<Field>, Option<u64>), Reply> {
    let mut fields = Vec::with_capacity((args.len() - 2) / 3);
    let mut highest: Option<u64> = None;
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = cstr(&args[j]);
        let op = if eq_ic(sub, "get") && remaining >= 2 {
            FieldOp::Get
        } else if eq_ic(sub, "set") && remaining >= 3 {
            FieldOp::Set
        } else if eq_ic(sub, "incrby") && remaining >= 3 {
            FieldOp::IncrBy
        } else if eq_ic(sub, "overflow") && remaining >= 1 {
            let kind = cstr(&args[j + 1]);
            overflow = if eq_ic(kind, "wrap") {
                Overflow::Wrap
            } else if eq_ic(kind, "sat") {
                Overflow::Sat
            } else if eq_ic(kind, "fail") {
                Overflow::Fail
            } else {
                return Err(Reply::err("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(Reply::syntax_error());
        };
        let (signed, bits) = parse_type(&args[j + 1])?;
        let offset = bit_offset(ctx, &args[j + 2], Some(bits))?;
        let mut value = 0;
        if op != FieldOp::Get {
            // offset < 2^63 and bits <= 64: no overflow in u64.
            let last = offset + u64::from(bits) - 1;
            highest = Some(highest.map_or(last, |h| h.max(last)));
            value = parse_i64(&args[j + 3]).ok_or_else(Reply::not_integer)?;
        }
        fields.push(Field { op, offset, value, overflow, bits, signed });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok((fields, highest))
}

/// The `bits`-wide unsigned field at bit `offset` (zeros past the end).
fn get_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    let byte = (offset >> 3) as usize;
    let mut buf = [0u8; 16];
    if let Some(src) = s.get(byte..) {
        let n = src.len().min(9);
        buf[..n].copy_from_slice(&src[..n]);
    }
    // The field lies in the first 9 bytes: read them as the top of a u128.
    let window = u128::from_be_bytes(buf);
    let shift = 128 - (offset & 7) as u32 - bits;
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    (window >> shift) as u64 & mask
}

/// Writes the low `bits` of `value` at bit `offset` (inside `s`).
fn set_field(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    let byte = (offset >> 3) as usize;
    let Some(dst) = s.get_mut(byte..) else {
        return;
    };
    let n = dst.len().min(9);
    let mut buf = [0u8; 16];
    buf[..n].copy_from_slice(&dst[..n]);
    let shift = 128 - (offset & 7) as u32 - bits;
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let window = u128::from_be_bytes(buf);
    let window = (window & !(u128::from(mask) << shift)) | (u128::from(value & mask) << shift);
    dst[..n].copy_from_slice(&window.to_be_bytes()[..n]);
}

/// Sign-extends a `bits`-wide field.
fn to_signed(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Redis's unsigned overflow check: `value + incr` against a `bits`-wide
/// unsigned integer. None when it fits, else the value to store (WRAP,
/// SAT; FAIL stores nothing).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = (1u64 << bits) - 1; // bits <= 63
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let wrapped = value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > max_incr) {
        Some(if ow == Overflow::Sat { max } else { wrapped })
    } else if incr < 0 && incr < min_incr {
        Some(if ow == Overflow::Sat { 0 } else { wrapped })
    } else {
        None
    }
}

/// Redis's signed overflow check, with its exact arithmetic: the limits it
/// compares against are computed with wrapping, which makes a SAT SET of a
/// value just above `i64::MIN` saturate to the maximum as in Redis.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max: i64 = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrapped = to_signed(value.wrapping_add(incr) as u64, bits);
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr) {
        Some(if ow == Overflow::Sat { max } else { wrapped })
    } else if value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr) {
        Some(if ow == Overflow::Sat { min } else { wrapped })
    } else {
        None
    }
}

/// Runs one SET or INCRBY on `s`: its reply and whether it changed a bit.
fn write_field(s: &mut [u8], f: &Field) -> (Reply, bool) {
    let raw = get_field(s, f.offset, f.bits);
    let (reply, old, new) = if f.signed {
        let old = to_signed(raw, f.bits);
        let (target, incr) = match f.op {
            FieldOp::IncrBy => (old, f.value),
            _ => (f.value, 0),
        };
        let new = match signed_overflow(target, incr, f.bits, f.overflow) {
            Some(_) if f.overflow == Overflow::Fail => return (Reply::Nil, false),
            Some(limited) => limited,
            None => target.wrapping_add(incr),
        };
        let reply = if f.op == FieldOp::IncrBy { new } else { old };
        (reply, old as u64, new as u64)
    } else {
        let (target, incr) = match f.op {
            FieldOp::IncrBy => (raw, f.value),
            _ => (f.value as u64, 0),
        };
        let new = match unsigned_overflow(target, incr, f.bits, f.overflow) {
            Some(_) if f.overflow == Overflow::Fail => return (Reply::Nil, false),
            Some(limited) => limited,
            None => target.wrapping_add(incr as u64),
        };
        let reply = if f.op == FieldOp::IncrBy { new } else { raw };
        (reply as i64, raw, new)
    };
    set_field(s, f.offset, f.bits, new);
    (Reply::Int(reply), old != new)
}

fn read_field(s: &[u8], f: &Field) -> Reply {
    let raw = get_field(s, f.offset, f.bits);
    Reply::Int(if f.signed { to_signed(raw, f.bits) } else { raw as i64 })
}

fn bitfield_generic(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> Reply {
    let key = &args[1];
    let (fields, highest) = match parse_fields(ctx, args) {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    let Some(highest) = highest else {
        // GETs only: a missing key reads as zeros.
        return match read_str(ctx, key) {
            Ok(s) => Reply::Array(fields.iter().map(|f| read_field(s.unwrap_or(&[]), f)).collect()),
            Err(e) => e,
        };
    };
    if read_only {
        return Reply::err("BITFIELD_RO only supports the GET subcommand");
    }
    let edited = edit_string(ctx, key, highest, |s, grew| {
        let mut changes = 0u64;
        let replies = fields
            .iter()
            .map(|f| match f.op {
                FieldOp::Get => read_field(s, f),
                _ => {
                    let (reply, changed) = write_field(s, f);
                    // A grown string counts as changed by every write that was not refused.
                    if changed || (grew && reply != Reply::Nil) {
                        changes += 1;
                    }
                    reply
                }
            })
            .collect();
        (replies, changes)
    });
    match edited {
        Ok((replies, changes)) => {
            if changes > 0 {
                ctx.written(key, "setbit");
                // A change per write that changed the string, as Redis counts.
                ctx.set_dirty(changes);
            }
            Reply::Array(replies)
        }
        Err(e) => e,
    }
}

pub fn bitfield(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    bitfield_generic(ctx, args, false)
}

pub fn bitfield_ro(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn bit(s: &[u8], i: u64) -> bool {
        s.get((i >> 3) as usize).is_some_and(|b| b & (0x80 >> (i & 7)) != 0)
    }

    fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
        // Runs of 0x00 and 0xFF make the word-skipping paths matter.
        (0..len)
            .map(|_| match rng.gen_range(0..4) {
                0 => 0,
                1 => 0xFF,
                _ => rng.gen(),
            })
            .collect()
    }

    #[test]
    fn popcount_variants_agree() {
        let mut rng = StdRng::seed_from_u64(1);
        for len in (0..300).chain([1000, 4096, 4099]) {
            let s = random_bytes(&mut rng, len);
            let naive: u64 = s.iter().map(|b| u64::from(b.count_ones())).sum();
            for start in 0..len.min(9) {
                let part = &s[start..];
                let want: u64 = part.iter().map(|b| u64::from(b.count_ones())).sum();
                assert_eq!(popcount(part), want);
                assert_eq!(popcount_words(part), want);
                #[cfg(target_arch = "x86_64")]
                {
                    if std::is_x86_feature_detected!("avx2") {
                        // SAFETY: AVX2 support was just checked.
                        assert_eq!(unsafe { popcount_avx2(part) }, want);
                    }
                    if std::is_x86_feature_detected!("popcnt") {
                        // SAFETY: POPCNT support was just checked.
                        assert_eq!(unsafe { popcount_popcnt(part) }, want);
                    }
                }
            }
            assert_eq!(popcount(&s), naive);
        }
    }

    #[test]
    fn ranges_match_bit_by_bit() {
        let mut rng = StdRng::seed_from_u64(2);
        for round in 0..4000 {
            let len = rng.gen_range(1..if round % 4 == 0 { 700 } else { 80 });
            let s = if round % 2 == 0 {
                random_bytes(&mut rng, len)
            } else {
                // Long runs with a few odd bits: the block-skipping path.
                let mut s = vec![if rng.gen_bool(0.5) { 0 } else { 0xFF }; len];
                for _ in 0..rng.gen_range(0..3) {
                    let i = rng.gen_range(0..len * 8);
                    s[i / 8] ^= 0x80 >> (i % 8);
                }
                s
            };
            let total = len as u64 * 8;
            let a = rng.gen_range(0..total);
            let b = rng.gen_range(a..total);
            let count = (a..=b).filter(|&i| bit(&s, i)).count() as u64;
            assert_eq!(count_range(&s, a, b), count, "{s:?} {a} {b}");
            for want in [false, true] {
                let first = (a..=b).find(|&i| bit(&s, i) == want);
                assert_eq!(find_bit(&s, a, b, want), first, "{s:?} {a} {b} {want}");
            }
        }
    }

    #[test]
    fn fields_match_bit_by_bit() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..5000 {
            let len = rng.gen_range(0..24);
            let mut s = random_bytes(&mut rng, len);
            let bits = rng.gen_range(1..=64u32);
            let offset = rng.gen_range(0..(len as u64 + 4) * 8);
            let want = (0..bits as u64).fold(0u64, |v, i| (v << 1) | u64::from(bit(&s, offset + i)));
            assert_eq!(get_field(&s, offset, bits), want);
            let value: u64 = rng.gen();
            let end = ((offset + bits as u64 - 1) >> 3) as usize;
            if end < s.len() {
                let before = s.clone();
                set_field(&mut s, offset, bits, value);
                for i in 0..s.len() as u64 * 8 {
                    let expect = if (offset..offset + bits as u64).contains(&i) {
                        value >> (bits as u64 - 1 - (i - offset)) & 1 == 1
                    } else {
                        bit(&before, i)
                    };
                    assert_eq!(bit(&s, i), expect);
                }
            }
        }
    }

    #[test]
    fn overflow_matches_exact_arithmetic() {
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..20000 {
            let bits = rng.gen_range(1..=64u32);
            let (min, max) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
            let value = rng.gen_range(min..=max) as i64;
            let incr: i64 = match rng.gen_range(0..3) {
                0 => rng.gen(),
                1 => rng.gen_range(-300..300),
                _ => (max - i128::from(value) + rng.gen_range(-2..3)).clamp(i64::MIN.into(), i64::MAX.into()) as i64,
            };
            let exact = i128::from(value) + i128::from(incr);
            let modulo = 1i128 << bits;
            let wrapped = (exact - min).rem_euclid(modulo) + min;
            let got_wrap = signed_overflow(value, incr, bits, Overflow::Wrap);
            let got_sat = signed_overflow(value, incr, bits, Overflow::Sat);
            if (min..=max).contains(&exact) {
                assert_eq!((got_wrap, got_sat), (None, None));
            } else {
                assert_eq!(got_wrap, Some(wrapped as i64));
                assert_eq!(got_sat, Some(if exact > max { max } else { min } as i64));
            }
            if bits < 64 {
                let umax = (1i128 << bits) - 1;
                let uvalue = rng.gen_range(0..=umax) as u64;
                let exact = i128::from(uvalue) + i128::from(incr);
                let got_wrap = unsigned_overflow(uvalue, incr, bits, Overflow::Wrap);
                let got_sat = unsigned_overflow(uvalue, incr, bits, Overflow::Sat);
                if (0..=umax).contains(&exact) {
                    assert_eq!((got_wrap, got_sat), (None, None));
                } else {
                    assert_eq!(got_wrap, Some(exact.rem_euclid(umax + 1) as u64));
                    assert_eq!(got_sat, Some(if exact > umax { umax as u64 } else { 0 }));
                }
            }
        }
        // Redis's own arithmetic: a SET just above i64::MIN saturates upwards.
        assert_eq!(signed_overflow(i64::MIN, 0, 8, Overflow::Sat), Some(127));
        assert_eq!(signed_overflow(i64::MIN + 200, 0, 8, Overflow::Sat), Some(-128));
        assert_eq!(signed_overflow(-1000, 0, 8, Overflow::Sat), Some(-128));
    }

    #[test]
    fn types_and_c_strings() {
        assert_eq!(parse_type(b"i64").ok(), Some((true, 64)));
        assert_eq!(parse_type(b"u63").ok(), Some((false, 63)));
        assert_eq!(parse_type(b"i8\0junk").ok(), Some((true, 8)));
        for bad in [&b"u64"[..], b"i65", b"i0", b"I8", b"8", b"", b"i", b"i08", b"i-1", b"u+3"] {
            assert!(parse_type(bad).is_err(), "{bad:?}");
        }
        assert_eq!(cstr(b"bit\0x"), b"bit");
    }

    #[test]
    fn bitop_folds_like_padded_bytes() {
        let mut rng = StdRng::seed_from_u64(5);
        for op in [BitOp::And, BitOp::Or, BitOp::Xor] {
            for _ in 0..500 {
                let srcs: Vec<Vec<u8>> = (0..rng.gen_range(1..5))
                    .map(|_| {
                        let len = rng.gen_range(0..40);
                        random_bytes(&mut rng, len)
                    })
                    .collect();
                let max = srcs.iter().map(Vec::len).max().unwrap_or(0);
                let want: Vec<u8> = (0..max)
                    .map(|j| {
                        let at = |s: &Vec<u8>| s.get(j).copied().unwrap_or(0);
                        srcs[1..].iter().fold(at(&srcs[0]), |acc, s| match op {
                            BitOp::And => acc & at(s),
                            BitOp::Or => acc | at(s),
                            _ => acc ^ at(s),
                        })
                    })
                    .collect();
                let mut res = srcs[0].clone();
                for s in &srcs[1..] {
                    fold_source(&mut res, s, op);
                }
                assert_eq!(res, want);
            }
        }
        let mut v: Vec<u8> = (0..19).collect();
        invert(&mut v);
        assert_eq!(v, (0..19u8).map(|b| !b).collect::<Vec<_>>());
    }
}
