//! Numbers as Redis reads and prints them, in one place for every command
//! family and the Lua libraries: strict integers (`string2ll`), strict
//! floats, C's `strtod` (with its hexadecimal and special forms, and range
//! errors), and `%.17g`. Long doubles (INCRBYFLOAT) are in `longdouble`.

/// Parses a Redis integer argument: optional '-', digits, no spaces, no '+'.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = (c - b'0') as i64;
        v = if neg { v.checked_mul(10)?.checked_sub(d)? } else { v.checked_mul(10)?.checked_add(d)? };
    }
    if neg && v == 0 {
        return None; // "-0" is not a valid integer in Redis's strict parser
    }
    Some(v)
}

pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let v = parse_i64(s)?;
    u64::try_from(v).ok()
}

/// Parses a float the way Redis's `strtold`-based parser accepts it:
/// no leading/trailing spaces, "inf"/"-inf"/"+inf" allowed, NaN refused.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s[s.len() - 1].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // Rust accepts forms C does not ("1e" is refused by both; "0x10" only by Rust).
            if text.contains(['x', 'X', '_']) || text.eq_ignore_ascii_case("nan") {
                return None;
            }
            text.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        return None;
    }
    Some(v)
}

/// What C's `strtod` reads at the start of `s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Strtod {
    pub value: f64,
    /// Bytes read (0: nothing converts, `value` is 0).
    pub end: usize,
    /// ERANGE: the result overflowed, or underflowed inexactly below the
    /// smallest normal double.
    pub range_error: bool,
}

/// C's `strtod`: leading blanks, a sign, then decimal digits with a fraction
/// and exponent, `0x` hexadecimal with a binary exponent, `inf`/`infinity`,
/// or `nan` (with an optional `(chars)`); the rest is left unread.
pub fn strtod(s: &[u8]) -> Strtod {
    let nothing = Strtod { value: 0.0, end: 0, range_error: false };
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut p = 0;
    while matches!(at(p), b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        p += 1;
    }
    let neg = match at(p) {
        b'-' => {
            p += 1;
            true
        }
        b'+' => {
            p += 1;
            false
        }
        _ => false,
    };
    let sign = |v: f64| if neg { -v } else { v };
    let word = |p: usize, w: &[u8]| w.iter().enumerate().all(|(i, c)| at(p + i).to_ascii_lowercase() == *c);
    if word(p, b"inf") {
        let end = if word(p, b"infinity") { p + 8 } else { p + 3 };
        return Strtod { value: sign(f64::INFINITY), end, range_error: false };
    }
    if word(p, b"nan") {
        let mut end = p + 3;
        if at(end) == b'(' {
            let mut q = end + 1;
            while at(q).is_ascii_alphanumeric() || at(q) == b'_' {
                q += 1;
            }
            if at(q) == b')' {
                end = q + 1;
            }
        }
        return Strtod { value: sign(f64::NAN), end, range_error: false };
    }
    if at(p) == b'0' && at(p + 1) | 0x20 == b'x' {
        if let Some((value, used, range_error)) = hex_strtod(&s[p + 2..]) {
            return Strtod { value: sign(value), end: p + 2 + used, range_error };
        }
        // "0x" without a hex digit: the "0" is all that converts.
        return Strtod { value: sign(0.0), end: p + 1, range_error: false };
    }
    let digits = |from: usize| s.get(from..).map_or(0, |r| r.iter().take_while(|b| b.is_ascii_digit()).count());
    let int = digits(p);
    let mut end = p + int;
    let mut frac = 0;
    if at(end) == b'.' {
        frac = digits(end + 1);
        if int + frac > 0 {
            end += 1 + frac;
        }
    }
    if int + frac == 0 {
        return nothing;
    }
    let mantissa_nonzero = s[p..end].iter().any(|b| (b'1'..=b'9').contains(b));
    if at(end) | 0x20 == b'e' {
        let mut e = end + 1;
        if matches!(at(e), b'+' | b'-') {
            e += 1;
        }
        let n = digits(e);
        if n > 0 {
            end = e + n;
        }
    }
    let Some(v) = std::str::from_utf8(&s[p..end]).ok().and_then(|t| t.parse::<f64>().ok()) else {
        return nothing;
    };
    let range_error = v.is_infinite() || (v == 0.0 && mantissa_nonzero) || (v != 0.0 && v.abs() < f64::MIN_POSITIVE);
    Strtod { value: sign(v), end, range_error }
}

/// The hexadecimal form after "0x": `None` when no hex digit follows (the
/// caller's "0" is then all strtod reads), else the value, the bytes read and
/// whether the result is out of range.
fn hex_strtod(s: &[u8]) -> Option<(f64, usize, bool)> {
    let hex = |b: u8| (b as char).to_digit(16);
    // Up to 16 significant hex digits in `m`; later ones only matter as a
    // sticky bit. The value is m * 2^exp (+ the sticky part).
    let (mut m, mut exp, mut sticky, mut any) = (0u64, 0i64, false, false);
    let mut i = 0;
    let mut in_frac = false;
    while i < s.len() {
        let b = s[i];
        if b == b'.' && !in_frac {
            in_frac = true;
        } else if let Some(d) = hex(b) {
            any = true;
            if m >> 60 == 0 {
                m = m * 16 + d as u64;
                if in_frac {
                    exp -= 4;
                }
            } else {
                sticky |= d != 0;
                if !in_frac {
                    exp += 4;
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    if !any {
        return None;
    }
    if matches!(s.get(i), Some(b'p' | b'P')) {
        let mut e = i + 1;
        let neg = match s.get(e) {
            Some(b'-') => {
                e += 1;
                true
            }
            Some(b'+') => {
                e += 1;
                false
            }
            _ => false,
        };
        let n = s[e..].iter().take_while(|b| b.is_ascii_digit()).count();
        if n > 0 {
            let mut p: i64 = 0;
            for &d in &s[e..e + n] {
                p = (p * 10 + (d - b'0') as i64).min(1 << 20);
            }
            exp += if neg { -p } else { p };
            i = e + n;
        }
    }
    let (value, range_error) = round_binary(m, exp, sticky);
    Some((value, i, range_error))
}

/// m * 2^exp (m != 0 unless the value is zero; `sticky`: nonzero bits below
/// m) rounded to the nearest double, ties to even; `None` on overflow or an
/// inexact result below the smallest normal double (C's ERANGE).
fn round_binary(m: u64, exp: i64, sticky: bool) -> (f64, bool) {
    if m == 0 {
        return (0.0, false);
    }
    let lz = m.leading_zeros() as i64;
    let m = (m as u128) << lz;
    // value = m / 2^63 * 2^e with m in [2^63, 2^64)
    let mut e = exp - lz + 63;
    if e > 1023 {
        return (f64::INFINITY, true);
    }
    // Bits of m dropped: 11 for a normal result, more for a subnormal one.
    let drop = (-e - 1011).max(11);
    if drop > 127 {
        return (0.0, true);
    }
    let mut q = m >> drop;
    let rem = m & ((1u128 << drop) - 1);
    let half = 1u128 << (drop - 1);
    let inexact = rem != 0 || sticky;
    if rem > half || (rem == half && (sticky || q & 1 == 1)) {
        q += 1;
    }
    if drop == 11 {
        if q == 1 << 53 {
            q >>= 1;
            e += 1;
            if e > 1023 {
                return (f64::INFINITY, true);
            }
        }
        (f64::from_bits((((e + 1023) as u64) << 52) | (q as u64 & ((1 << 52) - 1))), false)
    } else {
        (f64::from_bits(q as u64), inexact && q < 1 << 52)
    }
}

/// Formats a double the way Redis 7.0 replies with one (`%.17g`, `inf`, `-inf`, `nan`).
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        // C prints the sign of a NaN too (0/0 is -nan on x86-64).
        return if d.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    format_g17(d)
}

/// The integer `%.17g` prints for `d`, when it prints one: an integral value
/// below 1e17 has at most 17 digits, all significant, so it is printed
/// exactly and without exponent. Integral scores are common, and this spares
/// them the exact (Dragon4) formatting the general case needs.
pub fn printed_as_integer(d: f64) -> Option<i64> {
    // -0 prints as "-0", which no i64 does.
    (d.fract() == 0.0 && d.abs() < 1e17 && !(d == 0.0 && d.is_sign_negative())).then_some(d as i64)
}

/// C's `%.17g`.
fn format_g17(d: f64) -> String {
    if let Some(i) = printed_as_integer(d) {
        return i.to_string();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let exp = d.abs().log10().floor() as i32;
    // %g uses scientific notation when exp < -4 or exp >= precision.
    let sci = format!("{:.16e}", d);
    let (mantissa, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let real_exp: i32 = e.parse().unwrap_or(exp);
    if !(-4..17).contains(&real_exp) {
        let m = trim_zeros(mantissa);
        let sign = if real_exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", m, sign, real_exp.abs())
    } else {
        let decimals = (16 - real_exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

pub(crate) fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}
