//! Incremental request parser for RESP multibulk and inline commands.
//!
//! The parser consumes bytes from a `BytesMut` read buffer and yields whole
//! commands (argument vectors). Partial input is kept in the parser's state,
//! so a huge pipeline or a huge bulk is scanned once, not once per read.

use bytes::{Buf, Bytes, BytesMut};

/// Inline requests and header lines longer than this are refused, as Redis does.
const MAX_INLINE: usize = 64 * 1024;
/// Before authentication Redis allows only small requests.
const UNAUTH_MAX_MULTIBULK: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16384;
/// Bulks at least this long get a buffer sized for them (Redis's PROTO_MBULK_BIG_ARG).
const BIG_ARG: usize = 32 * 1024;
/// What a big bulk's header alone may reserve; more is reserved as data arrives.
const FIRST_BIG_RESERVE: usize = 1 << 20;
/// A read is attempted with at least this much room, else the buffer grows by `READ_CHUNK`.
const MIN_READ: usize = 4096;
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl ParseError {
    fn new(msg: &str) -> Self {
        ParseError(format!("ERR Protocol error: {msg}"))
    }
}

/// Command names remembered by the parser (see `RequestParser::names`).
const NAMES: usize = 4;
/// Longest command name remembered.
const NAME_MAX: usize = 24;
/// The most arguments the parser keeps room for between requests.
const ARGS_KEPT: usize = 64;

#[derive(Default)]
pub struct RequestParser {
    /// Arguments of a multibulk request still incomplete when the input
    /// ran out (between calls; during one they go straight to its output).
    args: Vec<Bytes>,
    /// Arguments still expected for the current multibulk, 0 when between requests.
    remaining: usize,
    /// Length of the bulk whose header was read but whose payload has not fully arrived.
    pending_bulk: Option<usize>,
    /// The last command names seen (first arguments, as sent), each in a
    /// buffer of its own: a request that repeats one shares it (a reference
    /// count) instead of allocating its own copy. Pipelines and most clients
    /// send the same few commands over and over.
    names: [Bytes; NAMES],
    /// The entry of `names` replaced next.
    next_name: usize,
}

/// The requests of a read: their arguments in one vector, reused from one
/// read to the next (no allocation per request).
#[derive(Default)]
pub struct Batch {
    args: Vec<Bytes>,
    /// Where each request's arguments end in `args`.
    ends: Vec<usize>,
}

impl Batch {
    /// The number of requests.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Forgets the requests (and their arguments), keeping the room.
    pub fn clear(&mut self) {
        self.args.clear();
        self.ends.clear();
    }

    /// Room for this many arguments is kept.
    pub fn capacity(&self) -> usize {
        self.args.capacity()
    }
}

impl std::ops::Index<usize> for Batch {
    type Output = [Bytes];

    fn index(&self, i: usize) -> &[Bytes] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.args[start..self.ends[i]]
    }
}

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one request from `buf`. Returns `Ok(None)` when more input is
    /// needed. An empty inline line yields `Some(vec![])`, which callers skip.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        max_bulk: i64,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ParseError> {
        let mut out = Vec::new();
        Ok(self.next(buf, max_bulk, authenticated, &mut out)?.then_some(out))
    }

    /// Parses one request from `buf` into `batch`. Returns `Ok(false)` when
    /// more input is needed, `Ok(true)` when a request was taken (an empty
    /// one, such as an empty inline line, is not added).
    pub fn parse_into(
        &mut self,
        buf: &mut BytesMut,
        max_bulk: i64,
        authenticated: bool,
        batch: &mut Batch,
    ) -> Result<bool, ParseError> {
        let before = batch.args.len();
        let done = self.next(buf, max_bulk, authenticated, &mut batch.args)?;
        if done && batch.args.len() > before {
            batch.ends.push(batch.args.len());
        }
        Ok(done)
    }

    /// Parses every whole request in `buf` into `batch` (whatever an error
    /// leaves: the requests before it are in `batch`). Multibulk requests
    /// that follow each other are read through one cursor, and `buf` is
    /// advanced once for them all.
    pub fn parse_batch(
        &mut self,
        buf: &mut BytesMut,
        max_bulk: i64,
        authenticated: bool,
        batch: &mut Batch,
    ) -> Result<(), ParseError> {
        if self.remaining == 0 && buf.first() == Some(&b'*') {
            let mut pos = 0;
            let capacity = buf.capacity();
            let r = loop {
                let start = batch.args.len();
                match self.parse_multibulk(buf, &mut pos, max_bulk, authenticated, capacity, &mut batch.args, start) {
                    Ok(true) => {
                        if batch.args.len() > start {
                            batch.ends.push(batch.args.len());
                        }
                        if buf.get(pos) != Some(&b'*') {
                            break Ok(());
                        }
                    }
                    Ok(false) => {
                        // An incomplete request: its arguments wait (see `next`).
                        self.args.extend(batch.args.drain(start..));
                        break Ok(());
                    }
                    Err(e) => {
                        batch.args.truncate(start);
                        break Err(e);
                    }
                }
            };
            buf.advance(pos);
            r?;
        }
        if buf.is_empty() {
            // All taken (the usual end of a read): an empty buffer holds no
            // request, and `next` would only find that out the long way.
            return Ok(());
        }
        // The rest (inline requests, a big bulk taken over, ...) one by one.
        while self.parse_into(buf, max_bulk, authenticated, batch)? {}
        Ok(())
    }

    /// Parses one request from `buf`, appending its arguments to `out` when
    /// the result is `Ok(true)`; `Ok(false)` when more input is needed.
    fn next(
        &mut self,
        buf: &mut BytesMut,
        max_bulk: i64,
        authenticated: bool,
        out: &mut Vec<Bytes>,
    ) -> Result<bool, ParseError> {
        if self.remaining == 0 && buf.first().is_some_and(|&b| b != b'*') {
            return match parse_inline(buf)? {
                Some(args) => {
                    out.extend(args);
                    Ok(true)
                }
                None => Ok(false),
            };
        }
        // The arguments go straight to `out`; those of a request the input
        // ends in the middle of wait in `self.args` for the next call.
        let start = out.len();
        if !self.args.is_empty() {
            out.append(&mut self.args);
        }
        let r = self.next_multibulk(buf, max_bulk, authenticated, out, start);
        match r {
            Ok(true) => {
                if self.args.capacity() > ARGS_KEPT {
                    // Room for a long request is not kept.
                    self.args = Vec::new();
                }
            }
            Ok(false) => self.args.extend(out.drain(start..)),
            Err(_) => out.truncate(start),
        }
        r
    }

    /// `next` for a multibulk request, whose arguments start at `out[start]`.
    ///
    /// The request is read through a cursor and `buf` is advanced once at the
    /// end: advancing a `BytesMut` per header line costs more than the scan.
    fn next_multibulk(
        &mut self,
        buf: &mut BytesMut,
        max_bulk: i64,
        authenticated: bool,
        out: &mut Vec<Bytes>,
        start: usize,
    ) -> Result<bool, ParseError> {
        loop {
            if let Some(len) = self.pending_bulk.filter(|_| self.remaining > 0) {
                if holds_just(buf, len) {
                    // The buffer was sized for this bulk and holds nothing
                    // else: the argument takes it over, no copy (as Redis
                    // takes over its query buffer for a big argument).
                    out.push(buf.split_to(len).freeze());
                    buf.advance(2);
                    self.pending_bulk = None;
                    self.remaining -= 1;
                    if self.remaining == 0 {
                        return Ok(true);
                    }
                }
            }
            let mut pos = 0;
            let r = self.parse_multibulk(buf, &mut pos, max_bulk, authenticated, buf.capacity(), out, start);
            buf.advance(pos);
            match r {
                Ok(false) if self.pending_bulk.is_some_and(|len| holds_just(buf, len)) => continue,
                r => return r,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn parse_multibulk(
        &mut self,
        data: &[u8],
        pos: &mut usize,
        max_bulk: i64,
        authenticated: bool,
        capacity: usize,
        out: &mut Vec<Bytes>,
        start: usize,
    ) -> Result<bool, ParseError> {
        if self.remaining == 0 {
            if data.is_empty() {
                return Ok(false);
            }
            let Some(count) = take_int_line(data, pos) else {
                if data.len() > MAX_INLINE {
                    return Err(ParseError::new("too big mbulk count string"));
                }
                return Ok(false);
            };
            let count = match count {
                Some(c) if c <= i32::MAX as i64 => c,
                _ => return Err(ParseError::new("invalid multibulk length")),
            };
            if !authenticated && count > UNAUTH_MAX_MULTIBULK {
                return Err(ParseError::new("unauthenticated multibulk length"));
            }
            if count <= 0 {
                return Ok(true);
            }
            self.remaining = count as usize;
            out.reserve(self.remaining.min(1024));
        }
        while self.remaining > 0 {
            let rest = &data[*pos..];
            let len = match self.pending_bulk {
                Some(len) => len,
                None => {
                    let Some(&first) = rest.first() else {
                        return Ok(false);
                    };
                    // Like Redis, the header line is looked at only once it has arrived whole.
                    let mut after = *pos;
                    let Some(len) = take_int_line(data, &mut after) else {
                        if rest.len() > MAX_INLINE {
                            return Err(ParseError::new("too big bulk count string"));
                        }
                        return Ok(false);
                    };
                    if first != b'$' {
                        let got = String::from_utf8_lossy(&[first]).into_owned();
                        return Err(ParseError::new(&format!("expected '$', got '{got}'")));
                    }
                    *pos = after;
                    let len = len.ok_or_else(|| ParseError::new("invalid bulk length"))?;
                    if len < 0 || len > max_bulk {
                        return Err(ParseError::new("invalid bulk length"));
                    }
                    if !authenticated && len > UNAUTH_MAX_BULK {
                        return Err(ParseError::new("unauthenticated bulk length"));
                    }
                    self.pending_bulk = Some(len as usize);
                    len as usize
                }
            };
            let Some(arg) = data.get(*pos..).and_then(|r| r.get(..len)).filter(|_| data.len() >= *pos + len + 2) else {
                return Ok(false);
            };
            if len >= BIG_ARG && just_room(data.len() - *pos, capacity - *pos, len) {
                // Taken over without a copy by `next`.
                return Ok(false);
            }
            let arg = if out.len() == start && len <= NAME_MAX { self.name(arg) } else { Bytes::copy_from_slice(arg) };
            out.push(arg);
            *pos += len + 2;
            self.pending_bulk = None;
            self.remaining -= 1;
        }
        Ok(true)
    }

    /// A command name (a request's first argument): the remembered copy
    /// when it is one of the last names seen (no allocation), else a new
    /// copy that replaces the oldest one. The copy holds nothing but the
    /// name, so whoever keeps it pins nothing else.
    #[inline]
    fn name(&mut self, arg: &[u8]) -> Bytes {
        if let Some(known) = self.names.iter().find(|n| same_short(n, arg)) {
            return known.clone();
        }
        let b = Bytes::copy_from_slice(arg);
        self.names[self.next_name] = b.clone();
        self.next_name = (self.next_name + 1) % NAMES;
        b
    }

    /// True while a big bulk is expected: its input needs a buffer sized
    /// for it (`grow_for_read`).
    pub fn pending_big(&self) -> bool {
        self.pending_bulk.is_some_and(|len| len >= BIG_ARG)
    }

    /// The declared length of the big argument being read (with its CRLF),
    /// 0 when none: what its query buffer is about to hold.
    pub fn pending_big_len(&self) -> usize {
        self.pending_bulk.filter(|&len| len >= BIG_ARG).map_or(0, |len| len + 2)
    }

    /// Makes room in `buf` before the next read. A big bulk is not reserved
    /// whole when its header arrives (a client could declare 500 MB and stall):
    /// the buffer grows with the data that actually arrives, at most doubling,
    /// never past the bulk's end nor past `limit` (the query buffer limit).
    pub fn grow_for_read(&self, buf: &mut BytesMut, limit: usize) {
        let spare = buf.capacity() - buf.len();
        let big = self.pending_bulk.filter(|&len| len >= BIG_ARG);
        let Some(len) = big else {
            if spare < MIN_READ {
                buf.reserve(READ_CHUNK);
            }
            return;
        };
        let total = len.saturating_add(2);
        let missing = total.saturating_sub(buf.len());
        if spare >= missing.min(READ_CHUNK) {
            return;
        }
        let target = buf.len().saturating_mul(2).max(FIRST_BIG_RESERVE).min(total).min(limit.saturating_add(1));
        let target = target.max(buf.len() + missing.min(READ_CHUNK));
        // An exact allocation: `reserve` would round up by doubling, past the bulk's end.
        let mut grown = BytesMut::with_capacity(target);
        grown.extend_from_slice(buf);
        *buf = grown;
    }
}

/// `a == b` for short strings, without a call to `memcmp`.
#[inline]
fn same_short(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// True when `buf` holds exactly a big bulk of `len` bytes and its CRLF, in
/// an allocation not much bigger (see `parse`).
fn holds_just(buf: &BytesMut, len: usize) -> bool {
    len >= BIG_ARG && just_room(buf.len(), buf.capacity(), len)
}

/// A buffer of `filled` bytes and `capacity` holds one bulk of `len` bytes
/// and at most an eighth more room: an argument may keep it whole.
fn just_room(filled: usize, capacity: usize, len: usize) -> bool {
    filled == len + 2 && capacity - filled <= filled / 8
}

/// Takes a `*N` or `$N` header line at `*pos`, returning `None` until its
/// `\r` and the byte after it have arrived, then `Some(number)` (`Some(None)`
/// when the number is not a strict Redis integer). No allocation: this runs
/// for every argument of every request.
#[inline(always)]
fn take_int_line(data: &[u8], pos: &mut usize) -> Option<Option<i64>> {
    // The most usual header, one or two digits (no leading zero), read
    // inline. Same result as the general path.
    if let Some(rest) = data.get(*pos..*pos + 5) {
        let d1 = rest[1].wrapping_sub(b'0');
        if d1 < 10 {
            if rest[2] == b'\r' {
                *pos += 4;
                return Some(Some(d1 as i64));
            }
            let d2 = rest[2].wrapping_sub(b'0');
            if d2 < 10 && d1 != 0 && rest[3] == b'\r' {
                *pos += 5;
                return Some(Some((d1 * 10 + d2) as i64));
            }
        }
    }
    take_int_line_general(data, pos)
}

/// `take_int_line` for any header line.
#[inline(never)]
fn take_int_line_general(data: &[u8], pos: &mut usize) -> Option<Option<i64>> {
    let rest = &data[*pos..];
    // Fast path, the usual header: up to 6 digits without a leading zero,
    // then '\r' and one more byte. Same result as the general path below.
    let mut n = 0i64;
    let mut i = 1;
    while let Some(&c) = rest.get(i).filter(|c| c.is_ascii_digit()) {
        if i == 7 {
            break;
        }
        n = n * 10 + (c - b'0') as i64;
        i += 1;
    }
    if i > 1 && i < 8 && rest.get(i) == Some(&b'\r') && rest.len() > i + 1 && (i == 2 || rest[1] != b'0') {
        *pos += i + 2;
        return Some(Some(n));
    }
    let limit = rest.len().min(MAX_INLINE + 2);
    let cr = rest[..limit].iter().position(|&b| b == b'\r')?;
    if cr + 1 >= rest.len() {
        return None;
    }
    // A line that is only "\r" has no number (and no type byte before it).
    let n = rest.get(1..cr).and_then(crate::util::parse_i64);
    // Like Redis, only the '\r' is looked for; the byte after it is skipped unseen.
    *pos += cr + 2;
    Some(n)
}

fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_INLINE {
            return Err(ParseError::new("too big inline request"));
        }
        return Ok(None);
    };
    // A whole line is run whatever its length, as Redis does: the limit is
    // for a line still waiting for its end.
    let mut line = &buf[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let args = split_args(line).ok_or_else(|| ParseError::new("unbalanced quotes in request"))?;
    buf.advance(nl + 1);
    Ok(Some(args))
}

/// Splits an inline command line the way Redis's `sdssplitargs` does:
/// whitespace separated, with "double quotes" (C escapes) and 'single quotes'.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' && is_hex(line[i + 2]) && is_hex(line[i + 3]) {
                    cur.push(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    // Closing quote must be followed by a space or the end.
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        args.push(Bytes::from(cur));
    }
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ParseError> {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(cmd) = p.parse(&mut buf, 512 * 1024 * 1024, true)? {
            out.push(cmd);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline() {
        let got = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\r\n").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(got[1], vec![Bytes::from("PING")]);
        assert_eq!(got[2][2], Bytes::from("b c"));
    }

    #[test]
    fn incremental_bytes() {
        let input = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n";
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            if let Some(cmd) = p.parse(&mut buf, 1 << 29, true).unwrap() {
                got = Some(cmd);
            }
        }
        assert_eq!(got.unwrap().len(), 3);
    }

    /// Big bulks arriving in random pieces, read the way the connection
    /// reads (`grow_for_read` before each read): every request comes out
    /// whole, and a bulk that got a buffer of its own is taken over
    /// without a copy.
    #[test]
    fn big_bulks_in_random_pieces() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for round in 0..40 {
            let mut input = Vec::new();
            let mut want = Vec::new();
            for i in 0..4 {
                let len = if rng.gen_bool(0.6) { rng.gen_range(BIG_ARG..BIG_ARG * 5) } else { rng.gen_range(0..100) };
                let val: Vec<u8> = (0..len).map(|j| (j * 7 + i + round) as u8).collect();
                input.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${len}\r\n").as_bytes());
                input.extend_from_slice(&val);
                input.extend_from_slice(b"\r\n");
                want.push(vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from(val)]);
            }
            let mut p = RequestParser::new();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut rest = &input[..];
            let mut taken_over = 0;
            while !rest.is_empty() {
                p.grow_for_read(&mut buf, usize::MAX);
                let room = buf.capacity() - buf.len();
                let n = rng.gen_range(1..=rest.len().min(room).min(70_000));
                buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                let base = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.capacity();
                while let Some(cmd) = p.parse(&mut buf, 1 << 29, true).unwrap() {
                    if base.contains(&(cmd[2].as_ptr() as usize)) && cmd[2].len() >= BIG_ARG {
                        taken_over += 1;
                    }
                    got.push(cmd);
                }
            }
            assert_eq!(got, want, "round {round}");
            assert!(buf.is_empty());
            assert!(taken_over <= want.len());
        }
        // One big bulk whose header came first and whose body then fills
        // the buffer sized for it: taken over.
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$40000\r\n"[..]);
        assert_eq!(p.parse(&mut buf, 1 << 29, true).unwrap(), None);
        p.grow_for_read(&mut buf, usize::MAX);
        assert_eq!(buf.capacity(), 40002);
        let start = buf.as_ptr() as usize;
        buf.extend_from_slice(&[b'x'; 40000]);
        buf.extend_from_slice(b"\r\n");
        let cmd = p.parse(&mut buf, 1 << 29, true).unwrap().unwrap();
        assert_eq!(cmd[1].len(), 40000);
        assert_eq!(cmd[1].as_ptr() as usize, start, "the bulk was copied");
    }

    /// Header lines: the fast path agrees with the strict integer parser on
    /// every short line of digits, signs, zeros and other bytes.
    #[test]
    fn header_fast_path_matches_the_general_parse() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let alphabet: &[u8] = b"0123456789-+ x\r\n";
        for _ in 0..200_000 {
            let len = rng.gen_range(0..12);
            let mut line = vec![b'$'];
            line.extend((0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())]));
            let mut pos = 0;
            let got = take_int_line(&line, &mut pos);
            // The general rule: the line ends at its first '\r' (with one
            // byte after it), and its number is a strict Redis integer.
            let want = line
                .iter()
                .position(|&b| b == b'\r')
                .filter(|&cr| cr + 1 < line.len())
                .map(|cr| (crate::util::parse_i64(&line[1..cr]), cr + 2));
            assert_eq!(got, want.map(|w| w.0), "{:?}", String::from_utf8_lossy(&line));
            if let Some((_, end)) = want {
                assert_eq!(pos, end, "{:?}", String::from_utf8_lossy(&line));
            }
        }
    }

    #[test]
    fn errors() {
        assert_eq!(parse_all(b"*1\r\n+x\r\n").unwrap_err().0, "ERR Protocol error: expected '$', got '+'");
        assert_eq!(parse_all(b"*x\r\n").unwrap_err().0, "ERR Protocol error: invalid multibulk length");
        assert_eq!(parse_all(b"*1\r\n$-2\r\n").unwrap_err().0, "ERR Protocol error: invalid bulk length");
        assert_eq!(parse_all(b"set \"a\r\n").unwrap_err().0, "ERR Protocol error: unbalanced quotes in request");
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let alphabet: &[u8] = b"*$\r\n0123456789-+\"' \\xabc";
        for _ in 0..20_000 {
            let len = rng.gen_range(0..64);
            let input: Vec<u8> = (0..len)
                .map(|_| if rng.gen_bool(0.85) { alphabet[rng.gen_range(0..alphabet.len())] } else { rng.gen() })
                .collect();
            let mut p = RequestParser::new();
            let mut buf = BytesMut::new();
            // Feed in random chunks, as a socket would.
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = rng.gen_range(1..=rest.len());
                buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                loop {
                    match p.parse(&mut buf, 1 << 20, rng.gen_bool(0.5)) {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(e) => {
                            assert!(e.0.starts_with("ERR Protocol error: "), "{}", e.0);
                            rest = &[];
                            break;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn big_bulk_grows_with_arrivals() {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$500000000\r\nab"[..]);
        assert_eq!(p.parse(&mut buf, 1 << 30, true).unwrap(), None);
        p.grow_for_read(&mut buf, usize::MAX);
        assert!(buf.capacity() <= 2 << 20, "header alone reserved {}", buf.capacity());
        // As data arrives the buffer grows with it, never past twice what came plus 1 MB.
        let len = 3_000_000;
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(format!("*2\r\n$3\r\nGET\r\n${len}\r\n").as_bytes());
        assert_eq!(p.parse(&mut buf, 1 << 30, true).unwrap(), None);
        let mut sent = 0;
        while sent < len {
            p.grow_for_read(&mut buf, usize::MAX);
            let room = (buf.capacity() - buf.len()).min(len - sent).min(100_000);
            assert!(room > 0);
            buf.extend_from_slice(&vec![b'z'; room]);
            sent += room;
            assert!(buf.capacity() <= 2 * buf.len() + (2 << 20), "{} for {}", buf.capacity(), buf.len());
            assert_eq!(p.parse(&mut buf, 1 << 30, true).unwrap(), None);
        }
        buf.extend_from_slice(b"\r\n");
        let args = p.parse(&mut buf, 1 << 30, true).unwrap().unwrap();
        assert_eq!(args[1].len(), len);
        // The query buffer limit caps the growth.
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*1\r\n$400000000\r\n"[..]);
        assert_eq!(p.parse(&mut buf, 1 << 30, true).unwrap(), None);
        buf.extend_from_slice(&vec![0u8; 1 << 20]);
        p.grow_for_read(&mut buf, 1 << 20);
        assert!(buf.capacity() <= (1 << 20) + READ_CHUNK);
    }

    /// Requests parsed into a batch (`parse_batch`, or `parse_into` one by
    /// one) from input cut in random places (so that requests span reads)
    /// come out as `parse` gives them, the batch's arguments reused from one
    /// read to the next.
    #[test]
    fn batches_match_single_requests() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut input = Vec::new();
        for i in 0..300 {
            match rng.gen_range(0..4) {
                0 => input.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n$5\r\nkey{:02}\r\n", i % 100).as_bytes()),
                1 => input.extend_from_slice(b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$0\r\n\r\n"),
                2 => input.extend_from_slice(b"PING x\r\n\r\n*0\r\n"),
                _ => {
                    let name: String = (0..rng.gen_range(1..30)).map(|_| rng.gen_range(b'a'..=b'z') as char).collect();
                    input.extend_from_slice(format!("*1\r\n${}\r\n{name}\r\n", name.len()).as_bytes());
                }
            }
        }
        let want = parse_all(&input).unwrap();
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut batch = Batch::default();
        let mut got: Vec<Vec<Bytes>> = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = rng.gen_range(1..=rest.len().min(200));
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if rng.gen_bool(0.5) {
                p.parse_batch(&mut buf, 1 << 20, true, &mut batch).unwrap();
            } else {
                while p.parse_into(&mut buf, 1 << 20, true, &mut batch).unwrap() {}
            }
            got.extend((0..batch.len()).map(|i| batch[i].to_vec()));
            batch.clear();
        }
        assert!(buf.is_empty());
        assert_eq!(got, want.into_iter().filter(|r| !r.is_empty()).collect::<Vec<_>>());
    }

    /// `parse_batch` keeps the requests before a protocol error, and the
    /// input is consumed up to the error, as `parse` one by one does.
    #[test]
    fn batch_keeps_requests_before_an_error() {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n*1\r\n+x\r\n"[..]);
        let mut batch = Batch::default();
        let e = p.parse_batch(&mut buf, 1 << 20, true, &mut batch).unwrap_err();
        assert_eq!(e.0, "ERR Protocol error: expected '$', got '+'");
        assert_eq!(batch.len(), 2);
        assert_eq!(&batch[1][0][..], b"PING");
        // Unauthenticated limits apply as well.
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*20\r\n"[..]);
        let mut batch = Batch::default();
        let e = p.parse_batch(&mut buf, 1 << 20, false, &mut batch).unwrap_err();
        assert_eq!(e.0, "ERR Protocol error: unauthenticated multibulk length");
        assert_eq!(batch.len(), 1);
    }

    /// A repeated command name shares one buffer holding just the name,
    /// and names keep their case as sent.
    #[test]
    fn repeated_names_share_a_buffer() {
        let reqs = parse_all(b"*1\r\n$3\r\nGET\r\n*1\r\n$3\r\nget\r\n*2\r\n$3\r\nGET\r\n$3\r\nGET\r\n").unwrap();
        assert_eq!(&reqs[0][0][..], b"GET");
        assert_eq!(&reqs[1][0][..], b"get");
        assert_eq!(reqs[0][0].as_ptr(), reqs[2][0].as_ptr());
        assert_ne!(reqs[0][0].as_ptr(), reqs[1][0].as_ptr());
        // Other arguments are copies of their own.
        assert_ne!(reqs[2][1].as_ptr(), reqs[2][0].as_ptr());
    }

    #[test]
    fn strict_header_integers() {
        assert_eq!(parse_all(b"*+1\r\n$1\r\nx\r\n").unwrap_err().0, "ERR Protocol error: invalid multibulk length");
        assert_eq!(parse_all(b"*1\r\n$01\r\nx\r\n").unwrap_err().0, "ERR Protocol error: invalid bulk length");
        assert!(parse_all(b"*-1\r\n*0\r\n").unwrap().iter().all(|c| c.is_empty()));
    }
}
