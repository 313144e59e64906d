//! Small helpers shared by every layer: numbers (`numbers`, `longdouble`),
//! glob matching, the clock, quoting.

pub mod longdouble;
pub mod numbers;

pub use numbers::{parse_f64, parse_i64, parse_u64};

/// Wall-clock time since the Unix epoch. Read once per command (its `now`
/// and its duration), so it avoids std's `SystemTime` arithmetic.
#[inline]
pub fn wall_clock() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer;
    // CLOCK_REALTIME always exists on Linux. On failure `ts` stays zero.
    unsafe {
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
    }
    std::time::Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// `wall_clock` in nanoseconds since the Unix epoch: what dispatch times commands with.
#[inline]
pub fn clock_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: as in `wall_clock`.
    unsafe {
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
    }
    // The kernel gives 0 <= tv_nsec < 1e9 and a time after 1970: no
    // clamping needed (a failure leaves zero).
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// Case-insensitive ASCII comparison of an argument with a keyword.
pub fn eq_ic(arg: &[u8], kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}

/// Glob-style matching as Redis's `stringmatchlen` (`*`, `?`, `[...]`, `\\`).
///
/// Iterative with backtracking to the last `*` only, so hostile patterns
/// such as `a*a*a*...b` cost O(pattern * string), not exponential time.
pub fn glob_match(p: &[u8], s: &[u8], nocase: bool) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            if p[pi] == b'*' {
                star = Some((pi, si));
                pi += 1;
                continue;
            }
            if let Some(len) = match_token(p, pi, s[si], nocase) {
                pi += len;
                si += 1;
                continue;
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches the single pattern token at `p[pi..]` against `c`; returns the
/// token's length when it matches.
fn match_token(p: &[u8], pi: usize, c: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    match p[pi] {
        b'?' => Some(1),
        b'\\' if pi + 1 < p.len() => eq(p[pi + 1], c).then_some(2),
        b'[' => {
            let mut i = pi + 1;
            let not = i < p.len() && p[i] == b'^';
            if not {
                i += 1;
            }
            let mut matched = false;
            while i < p.len() && p[i] != b']' {
                if p[i] == b'\\' && i + 1 < p.len() {
                    i += 1;
                    matched |= eq(p[i], c);
                    i += 1;
                } else if i + 2 < p.len() && p[i + 1] == b'-' {
                    let (mut lo, mut hi) = (p[i], p[i + 2]);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    let (lo, hi, ch) = if nocase {
                        (lo.to_ascii_lowercase(), hi.to_ascii_lowercase(), c.to_ascii_lowercase())
                    } else {
                        (lo, hi, c)
                    };
                    matched |= ch >= lo && ch <= hi;
                    i += 3;
                } else {
                    matched |= eq(p[i], c);
                    i += 1;
                }
            }
            // `i` is at the closing ']' or at the end of an unterminated class.
            let len = (i + 1).min(p.len()) - pi;
            (matched != not).then_some(len.max(1))
        }
        other => eq(other, c).then_some(1),
    }
}

/// Appends `s` quoted as Redis's `sdscatrepr` quotes it (MONITOR, CLIENT
/// LIST's argv): printable ASCII as is, `\\` `\"` `\n` `\r` `\t` `\a` `\b`
/// escaped, any other byte as `\xhh`.
pub fn quote_repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', c]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// The largest single allocation the kernel grants redis-server here, as
/// Redis's allocator (jemalloc, mapping with MAP_NORESERVE unless the kernel
/// never overcommits) sees it: the commit limit under `vm.overcommit_memory
/// = 2`, else the user address space (128 TiB on x86-64).
pub fn allocation_limit() -> u64 {
    let never_overcommit = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|m| m.trim() == "2");
    let commit_limit = || {
        let s = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = s.lines().find(|l| l.starts_with("CommitLimit:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
    };
    never_overcommit.then(commit_limit).flatten().unwrap_or(1 << 47)
}

/// The machine's physical memory in bytes (0 when /proc does not say),
/// read once, as Redis reads it at start-up.
pub fn total_system_memory() -> u64 {
    static TOTAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(|| {
        read_proc("/proc/meminfo")
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    })
}

/// The text of a small file under /proc or /sys (None where it cannot be
/// read). Unlike `fs::read_to_string`, no `statx` first to size the buffer
/// (those files report size 0 anyway): INFO reads several per call.
pub fn read_proc(path: impl AsRef<std::path::Path>) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    String::from_utf8(buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        assert_eq!(parse_i64(b"123"), Some(123));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"012"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"+1"), None);
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h*llo", b"heeeello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"*", b"", false));
        assert!(!glob_match(b"a*a*a*a*a*a*a*a*b", &[b'a'; 40], false));
    }
}
