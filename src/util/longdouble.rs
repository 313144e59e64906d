//! x87 80-bit extended precision (C's `long double` on x86-64), in software.
//!
//! Redis computes INCRBYFLOAT in `long double` and prints the result with
//! `%.17Lf`; an `f64` cannot reproduce those digits (1000.1 reads back as
//! "1000.09999999999999998" there). This module parses decimal and hex text
//! with correct rounding to a 64-bit mantissa, adds with correct rounding and
//! prints exactly, which is what glibc's `strtold`, the FPU and `printf` do.

use std::cmp::Ordering;

/// Exponent of the least significant mantissa bit: the smallest (shared by
/// subnormals) and the largest for a finite value.
const MIN_E: i64 = -16445;
const MAX_E: i64 = 16320;

/// `m * 2^e`, negative when `neg`; `m` has its top bit set unless the value
/// is zero or subnormal (then `e == MIN_E`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ld {
    neg: bool,
    m: u64,
    e: i64,
    inf: bool,
}

impl Ld {
    pub const ZERO: Ld = Ld { neg: false, m: 0, e: 0, inf: false };

    /// The correctly rounded sum; None when it is infinite or NaN.
    pub fn checked_add(self, o: Ld) -> Option<Ld> {
        if self.inf || o.inf {
            return None;
        }
        if o.m == 0 {
            return Some(self);
        }
        if self.m == 0 {
            return Some(o);
        }
        let (big, small) = if (self.e, self.m) >= (o.e, o.m) { (self, o) } else { (o, self) };
        // 62 guard bits below the larger mantissa keep the result exact
        // enough for one correct rounding, as guard/round/sticky bits do.
        let x = (big.m as u128) << 62;
        let d = big.e - small.e;
        let full = (small.m as u128) << 62;
        let (y, lost) = if d >= 128 { (0, true) } else { (full >> d, full & ((1u128 << d) - 1) != 0) };
        let (z, sticky) = if big.neg == small.neg {
            (x + y, lost)
        } else {
            // Subtracting y plus a fraction: borrow one and keep the rest as sticky.
            (x - y - lost as u128, lost)
        };
        if z == 0 && !sticky {
            return Some(Ld::ZERO);
        }
        round(big.neg, z, big.e - 62, sticky)
    }

    /// True for the infinities that "inf" and "infinity" parse to.
    pub fn is_inf(self) -> bool {
        self.inf
    }

    /// The nearest `f64` (for uses that need no extended precision, such as
    /// blocking timeouts); out of range values become infinite or zero.
    pub fn to_f64(self) -> f64 {
        let mut v = if self.inf { f64::INFINITY } else { self.m as f64 };
        let mut e = if self.inf || self.m == 0 { 0 } else { self.e };
        // Scale in steps that are themselves representable.
        while e > 1000 {
            v *= 2f64.powi(1000);
            e -= 1000;
        }
        while e < -1000 {
            v *= 2f64.powi(-1000);
            e += 1000;
        }
        v *= 2f64.powi(e as i32);
        if self.neg {
            -v
        } else {
            v
        }
    }

    /// `%.17Lf` with trailing zeros (and a bare '.') removed, "-0" as "0":
    /// Redis's human-friendly long double rendering.
    pub fn to_human(self) -> String {
        let digits = if self.e >= 0 {
            let mut n = Big::from_u128(self.m as u128);
            n.shl(self.e as u64);
            n.to_decimal() + "00000000000000000"
        } else {
            let x = self.m as u128 * 100_000_000_000_000_000u128;
            let s = (-self.e) as u32;
            let q = if s >= 128 {
                0
            } else {
                let (q, r) = (x >> s, x & ((1u128 << s) - 1));
                let half = 1u128 << (s - 1);
                q + (r > half || r == half && q & 1 == 1) as u128
            };
            format!("{q:018}")
        };
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let body = if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") };
        if self.neg && body != "0" {
            format!("-{body}")
        } else {
            body
        }
    }
}

/// Rounds `x * 2^e` (plus a nonzero tail below `x` when `sticky`) to the
/// nearest extended value, ties to even. None on overflow.
fn round(neg: bool, x: u128, e: i64, sticky: bool) -> Option<Ld> {
    let bits = 128 - x.leading_zeros() as i64;
    let shift = (bits - 64).max(MIN_E - e);
    let (m, e) = if shift <= 0 {
        ((x << -shift) as u64, e + shift)
    } else if shift > 128 {
        (0, e + shift)
    } else {
        let kept = if shift == 128 { 0 } else { x >> shift };
        let rest = if shift == 128 { x } else { x & ((1u128 << shift) - 1) };
        let half = 1u128 << (shift - 1);
        let up = rest > half || rest == half && (sticky || kept & 1 == 1);
        let m = kept + up as u128;
        if m >> 64 != 0 {
            ((m >> 1) as u64, e + shift + 1)
        } else {
            (m as u64, e + shift)
        }
    };
    if m == 0 {
        return Some(Ld { neg, m: 0, e: MIN_E, inf: false });
    }
    if e > MAX_E {
        return None;
    }
    Some(Ld { neg, m, e, inf: false })
}

/// Parses text as Redis's `string2ld` (glibc `strtold` over the whole
/// string): None for anything it refuses, NaN, or a value out of range.
pub fn parse(s: &[u8]) -> Option<Ld> {
    if s.is_empty() || s.len() >= 5 * 1024 || matches!(s[0], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        return None;
    }
    let (neg, body) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(Ld { neg, m: 0, e: 0, inf: true });
    }
    let v = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        parse_hex(neg, &body[2..])?
    } else {
        parse_dec(neg, body)?
    };
    Some(v)
}

/// Splits `digits[.digits]` (at least one digit) and returns (all digits, fraction length, rest).
fn mantissa(s: &[u8], is_digit: fn(&u8) -> bool) -> Option<(Vec<u8>, usize, &[u8])> {
    let int = s.iter().take_while(|c| is_digit(c)).count();
    let mut digits = s[..int].to_vec();
    let mut rest = &s[int..];
    let mut frac = 0;
    if rest.first() == Some(&b'.') {
        frac = rest[1..].iter().take_while(|c| is_digit(c)).count();
        digits.extend_from_slice(&rest[1..1 + frac]);
        rest = &rest[1 + frac..];
    }
    (!digits.is_empty()).then_some((digits, frac, rest))
}

/// An exponent suffix (`e12`, `P-3`): must be all of `rest`. Saturates.
fn exponent(rest: &[u8], marker: u8) -> Option<i64> {
    let Some((&c, tail)) = rest.split_first() else {
        return Some(0);
    };
    if c | 0x20 != marker {
        return None;
    }
    let (neg, digits) = match tail.first() {
        Some(b'-') => (true, &tail[1..]),
        Some(b'+') => (false, &tail[1..]),
        _ => (false, tail),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |acc, d| acc.saturating_mul(10).saturating_add((d - b'0') as i64));
    Some(if neg { -v } else { v })
}

fn parse_dec(neg: bool, s: &[u8]) -> Option<Ld> {
    let (digits, frac, rest) = mantissa(s, u8::is_ascii_digit)?;
    let k = exponent(rest, b'e')?.saturating_sub(frac as i64);
    let digits: Vec<u8> = digits.into_iter().skip_while(|&d| d == b'0').collect();
    if digits.is_empty() {
        return Some(Ld { neg, ..Ld::ZERO });
    }
    // value < 10^mag: refuse what overflows or underflows to zero before
    // building huge numbers (glibc reports ERANGE, Redis refuses those).
    let mag = k.saturating_add(digits.len() as i64);
    if !(-4951..=4933).contains(&mag) {
        return None;
    }
    let d = Big::from_decimal(&digits);
    let v = if k >= 0 {
        let mut n = d;
        n.mul_pow10(k as u64);
        let (x, shift, sticky) = n.top128();
        round(neg, x, shift, sticky)?
    } else {
        let mut b = Big::from_u128(1);
        b.mul_pow10((-k) as u64);
        divide(neg, d, b)?
    };
    (v.m != 0).then_some(v)
}

fn parse_hex(neg: bool, s: &[u8]) -> Option<Ld> {
    let (digits, frac, rest) = mantissa(s, u8::is_ascii_hexdigit)?;
    let p = exponent(rest, b'p')?;
    let mut d = Big::default();
    for c in digits {
        let v = (c as char).to_digit(16)?;
        d.shl(4);
        d.add_small(v);
    }
    if d.is_zero() {
        return Some(Ld { neg, ..Ld::ZERO });
    }
    let (x, shift, sticky) = d.top128();
    let e = p.saturating_sub(4 * frac as i64).saturating_add(shift).clamp(-100_000, 100_000);
    let v = round(neg, x, e, sticky)?;
    (v.m != 0).then_some(v)
}

/// Correctly rounded `num / den`.
fn divide(neg: bool, mut num: Big, mut den: Big) -> Option<Ld> {
    // Scale so the quotient has 66 or 67 bits: enough for rounding to 64.
    let t = num.bitlen() as i64 - den.bitlen() as i64 - 66;
    if t < 0 {
        num.shl((-t) as u64);
    } else {
        den.shl(t as u64);
    }
    den.shl(67);
    let mut q: u128 = 0;
    for i in (0..=67).rev() {
        if num.cmp(&den) != Ordering::Less {
            num.sub_assign(&den);
            q |= 1 << i;
        }
        den.shr1();
    }
    round(neg, q, t, !num.is_zero())
}

/// Just enough of an unsigned big integer (little-endian 32-bit limbs).
#[derive(Default, Clone)]
struct Big(Vec<u32>);

impl Big {
    fn from_u128(mut v: u128) -> Big {
        let mut b = Big::default();
        while v != 0 {
            b.0.push(v as u32);
            v >>= 32;
        }
        b
    }

    fn from_decimal(digits: &[u8]) -> Big {
        let mut b = Big::default();
        for chunk in digits.chunks(9) {
            let v = chunk.iter().fold(0u32, |a, d| a * 10 + (d - b'0') as u32);
            b.mul_small(10u32.pow(chunk.len() as u32));
            b.add_small(v);
        }
        b
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|&l| l == 0)
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn bitlen(&self) -> u64 {
        match self.0.iter().rposition(|&l| l != 0) {
            Some(i) => i as u64 * 32 + 32 - self.0[i].leading_zeros() as u64,
            None => 0,
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for l in self.0.iter_mut() {
            let v = *l as u64 * m as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn add_small(&mut self, a: u32) {
        let mut carry = a as u64;
        for l in self.0.iter_mut() {
            if carry == 0 {
                return;
            }
            let v = *l as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow10(&mut self, mut k: u64) {
        while k >= 9 {
            self.mul_small(1_000_000_000);
            k -= 9;
        }
        self.mul_small(10u32.pow(k as u32));
    }

    fn shl(&mut self, n: u64) {
        let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
        if bits != 0 {
            let mut carry = 0u32;
            for l in self.0.iter_mut() {
                let v = *l;
                *l = (v << bits) | carry;
                carry = v >> (32 - bits);
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if limbs != 0 && !self.is_zero() {
            self.0.splice(0..0, std::iter::repeat_n(0, limbs));
        }
    }

    fn shr1(&mut self) {
        let mut carry = 0u32;
        for l in self.0.iter_mut().rev() {
            let v = *l;
            *l = (v >> 1) | (carry << 31);
            carry = v & 1;
        }
        self.trim();
    }

    fn cmp(&self, o: &Big) -> Ordering {
        let (a, b) = (self.bitlen(), o.bitlen());
        if a != b {
            return a.cmp(&b);
        }
        for i in (0..self.0.len().min(o.0.len())).rev() {
            match self.0[i].cmp(&o.0[i]) {
                Ordering::Equal => continue,
                other => return other,
            }
        }
        Ordering::Equal
    }

    /// `self -= o`, requires `self >= o`.
    fn sub_assign(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = self.0[i] as i64 - o.0.get(i).copied().unwrap_or(0) as i64 - borrow;
            borrow = (v < 0) as i64;
            self.0[i] = v.rem_euclid(1 << 32) as u32;
        }
        self.trim();
    }

    /// The top (up to) 128 bits, the weight of their lowest bit, and whether
    /// anything nonzero lies below.
    fn top128(&self) -> (u128, i64, bool) {
        let bl = self.bitlen();
        let shift = bl.saturating_sub(128);
        let mut x: u128 = 0;
        for i in (shift..bl).rev() {
            let bit = (self.0[(i / 32) as usize] >> (i % 32)) & 1;
            x = (x << 1) | bit as u128;
        }
        let sticky = (0..shift).any(|i| (self.0[(i / 32) as usize] >> (i % 32)) & 1 != 0);
        (x, shift as i64, sticky)
    }

    fn to_decimal(&self) -> String {
        let mut n = self.clone();
        n.trim();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            let mut rem = 0u64;
            for l in n.0.iter_mut().rev() {
                let v = (rem << 32) | *l as u64;
                *l = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            n.trim();
            chunks.push(rem as u32);
        }
        let mut out = chunks.pop().map_or_else(|| "0".to_string(), |c| c.to_string());
        for c in chunks.iter().rev() {
            out.push_str(&format!("{c:09}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        Some(parse(a.as_bytes())?.checked_add(parse(b.as_bytes())?)?.to_human())
    }

    #[test]
    fn matches_redis_on_x86_64() {
        // Expected strings are what redis-server 7.0 (x86-64) replies.
        assert_eq!(incr("0", "1000.1").unwrap(), "1000.09999999999999998");
        assert_eq!(incr("1000.09999999999999998", "0.1").unwrap(), "1000.19999999999999996");
        assert_eq!(incr("0", "300.3").unwrap(), "300.29999999999999999");
        assert_eq!(incr("0", "123456789.123").unwrap(), "123456789.12299999999959255");
        assert_eq!(incr("123456789.12299999999959255", "0.001").unwrap(), "123456789.12399999999615829");
        assert_eq!(incr("0.1", "0.2").unwrap(), "0.3");
        assert_eq!(incr("10.5", "0.1").unwrap(), "10.6");
        assert_eq!(incr("0.1", "0.1").unwrap(), "0.2");
        assert_eq!(incr("5000", "1e-5").unwrap(), "5000.00001000000000007");
        assert_eq!(incr("0", "3.14159265358979323846").unwrap(), "3.14159265358979324");
        assert_eq!(incr("1e20", "1.5").unwrap(), "100000000000000000000");
        assert_eq!(incr("0", "1e-20").unwrap(), "0");
        assert_eq!(incr("0", "-0.0").unwrap(), "0");
        assert_eq!(incr("1500", "-1500").unwrap(), "0");
        assert_eq!(incr("0", "0x10").unwrap(), "16");
        assert!(incr("0", "1e400").unwrap().starts_with("10000000000000000000281880683947586514586"));
        assert_eq!(incr("1e4932", "1e4932"), None);
        assert_eq!(incr("0", "inf"), None);
    }

    #[test]
    fn converts_to_f64() {
        let f = |s: &str| parse(s.as_bytes()).map(Ld::to_f64);
        assert_eq!(f("0x0.1"), Some(0.0625));
        assert_eq!(f("-2.5"), Some(-2.5));
        assert_eq!(f("0.1"), Some(0.1));
        assert_eq!(f("1e400"), Some(f64::INFINITY));
        assert_eq!(f("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(f("1e-400"), Some(0.0));
        assert_eq!(f("0"), Some(0.0));
        assert!(parse(b"inf").is_some_and(Ld::is_inf) && !parse(b"1e4000").is_some_and(Ld::is_inf));
    }

    #[test]
    fn refuses_what_strtold_refuses() {
        for bad in ["", " 1", "1 ", "abc", "1e", "0x", "nan", "1.2.3", "--1", "1e99999", "1e-99999", ".", "e5"] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        for good in ["1.", ".5", "+3", "-2.5e+3", "1E5", "INF", "-Infinity", "0e99999", "0x1p4", "0x.8"] {
            assert!(parse(good.as_bytes()).is_some(), "{good:?}");
        }
    }
}
