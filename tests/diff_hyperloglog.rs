//! HyperLogLog commands against a real redis-server 7.0, byte for byte: every
//! reply (raw RESP) equal and `GET key` identical after every step, so values
//! move between the two servers as plain strings. Covers randomized PFADD
//! streams across the sparse-to-dense promotion, PFCOUNT caching and unions,
//! PFMERGE, PFDEBUG, values carried from one server to the other, hand-made
//! and corrupted values, `hll-sparse-max-bytes`, and the side effects
//! (encodings, WATCH, keyspace events).

mod common;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

// ------------------------------------------------------------- raw client

/// A RESP client that returns each reply as its exact bytes.
struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn connect(port: u16) -> Conn {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Conn { w, r }
    }

    fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out).expect("send");
    }

    fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args);
        let mut out = Vec::new();
        self.read_value(&mut out).unwrap_or_else(|e| panic!("no reply to {:?}: {e}", show_args(args)));
        out
    }

    fn read_value(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof"));
        }
        out.extend_from_slice(&line);
        let n: i64 = String::from_utf8_lossy(&line[1..]).trim().parse().unwrap_or(0);
        match line[0] {
            b'$' if n >= 0 => {
                let mut buf = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut buf)?;
                out.extend_from_slice(&buf);
            }
            b'*' if n > 0 => {
                for _ in 0..n {
                    self.read_value(out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads whatever arrives until the server is quiet for `quiet`.
    fn drain(&mut self, quiet: Duration) -> Vec<Vec<u8>> {
        self.w.set_read_timeout(Some(quiet)).unwrap();
        let mut got = Vec::new();
        loop {
            let mut out = Vec::new();
            if self.read_value(&mut out).is_err() {
                break;
            }
            got.push(out);
        }
        self.w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        got
    }
}

fn show_args(args: &[&[u8]]) -> Vec<String> {
    args.iter()
        .map(|a| {
            let s = String::from_utf8_lossy(a);
            if s.len() > 60 {
                format!("{}...({} bytes)", &s[..s.char_indices().nth(60).map_or(s.len(), |(i, _)| i)], a.len())
            } else {
                s.into_owned()
            }
        })
        .collect()
}

fn show_reply(r: &[u8]) -> String {
    let s = String::from_utf8_lossy(r);
    if s.len() > 300 {
        format!("{}... ({} bytes)", s.chars().take(300).collect::<String>(), r.len())
    } else {
        s.into_owned()
    }
}

/// A moonshard (4 shards) and a redis-server with one raw client each.
struct Pair {
    _ours: common::Proc,
    _theirs: common::Proc,
    ports: [u16; 2],
    c: [Conn; 2],
}

impl Pair {
    fn start() -> Option<Pair> {
        let theirs = common::redis_server()?;
        let ours = common::moonshard(&["--shards", "4"]);
        let ports = [ours.port, theirs.port];
        let c = [Conn::connect(ports[0]), Conn::connect(ports[1])];
        Some(Pair { _ours: ours, _theirs: theirs, ports, c })
    }

    /// A second pair of clients on the same servers.
    fn clients(&self) -> [Conn; 2] {
        [Conn::connect(self.ports[0]), Conn::connect(self.ports[1])]
    }

    /// Sends `args` to both servers and asserts byte-identical replies.
    #[track_caller]
    fn ck(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let ours = self.c[0].call(args);
        let theirs = self.c[1].call(args);
        assert!(
            ours == theirs,
            "moonshard and redis-server differ on {:?}\n  moonshard: {}\n  redis:     {}",
            show_args(args),
            show_reply(&ours),
            show_reply(&theirs)
        );
        ours
    }

    /// `ck` on whitespace-separated words.
    #[track_caller]
    fn line(&mut self, line: &str) -> Vec<u8> {
        let words: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        self.ck(&words)
    }

    #[track_caller]
    fn lines(&mut self, lines: &[&str]) {
        for l in lines {
            self.line(l);
        }
    }

    /// Asserts `GET key` is byte-identical on both servers.
    #[track_caller]
    fn same_value(&mut self, key: &str) -> Vec<u8> {
        self.ck(&[b"GET", key.as_bytes()])
    }

    /// Stores `value` under `key` on both servers.
    #[track_caller]
    fn set_both(&mut self, key: &str, value: &[u8]) {
        self.ck(&[b"SET", key.as_bytes(), value]);
    }

    /// The value of `key` on redis-server.
    fn redis_value(&mut self, key: &str) -> Vec<u8> {
        bulk_body(&self.c[1].call(&[b"GET", key.as_bytes()]))
    }
}

/// The payload of a bulk reply.
fn bulk_body(reply: &[u8]) -> Vec<u8> {
    assert_eq!(reply[0], b'$', "not a bulk reply: {}", show_reply(reply));
    let nl = reply.iter().position(|&b| b == b'\n').unwrap();
    reply[nl + 1..reply.len() - 2].to_vec()
}

fn int_reply(reply: &[u8]) -> i64 {
    assert_eq!(reply[0], b':', "not an integer reply: {}", show_reply(reply));
    String::from_utf8_lossy(&reply[1..]).trim().parse().unwrap()
}

const KEYS: [&str; 4] = ["{h}a", "{h}b", "{h}c", "{h}d"];

/// An element drawn from pools that repeat often (small integers, a few
/// words), with binary and empty elements mixed in.
fn element(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0 => Vec::new(),
        1 => (0..rng.gen_range(1..40)).map(|_| rng.gen()).collect(),
        2 => format!("word-{}", rng.gen_range(0..30)).into_bytes(),
        3 => vec![0u8; rng.gen_range(1..20)],
        _ => rng.gen_range(0..5000u32).to_string().into_bytes(),
    }
}

fn elements(rng: &mut StdRng, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| element(rng)).collect()
}

fn pfadd(p: &mut Pair, key: &str, elems: &[Vec<u8>]) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
    args.extend(elems.iter().map(Vec::as_slice));
    p.ck(&args)
}

// ------------------------------------------------------------------- tests

/// Random PFADD streams on four keys (small and large batches, so keys cross
/// the sparse-to-dense boundary at different points), interleaved with
/// PFCOUNT (cached and recomputed), unions, PFMERGE, PFDEBUG and DEL; the
/// raw value of every touched key is compared after each step.
#[test]
fn random_streams() {
    let Some(mut p) = Pair::start() else { return };
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    p.line("FLUSHALL");
    for step in 0..1500 {
        let key = KEYS[rng.gen_range(0..KEYS.len())];
        match rng.gen_range(0..100) {
            0..=44 => {
                let n = match rng.gen_range(0..10) {
                    0 => 0,
                    1..=6 => rng.gen_range(1..6),
                    7 | 8 => rng.gen_range(10..80),
                    _ => rng.gen_range(200..700),
                };
                let elems = elements(&mut rng, n);
                pfadd(&mut p, key, &elems);
            }
            45..=64 => {
                p.ck(&[b"PFCOUNT", key.as_bytes()]);
                // A second call reads the cache written by the first.
                if rng.gen_bool(0.3) {
                    p.ck(&[b"PFCOUNT", key.as_bytes()]);
                }
            }
            65..=74 => {
                let mut args: Vec<&[u8]> = vec![b"PFCOUNT"];
                for _ in 0..rng.gen_range(2..5) {
                    args.push(if rng.gen_bool(0.1) { b"{h}missing" } else { KEYS[rng.gen_range(0..4)].as_bytes() });
                }
                p.ck(&args);
            }
            75..=84 => {
                let mut args: Vec<&[u8]> = vec![b"PFMERGE", key.as_bytes()];
                for _ in 0..rng.gen_range(0..4) {
                    args.push(if rng.gen_bool(0.1) { b"{h}missing" } else { KEYS[rng.gen_range(0..4)].as_bytes() });
                }
                p.ck(&args);
            }
            85..=89 => {
                p.ck(&[b"PFDEBUG", b"ENCODING", key.as_bytes()]);
                p.ck(&[b"PFDEBUG", b"DECODE", key.as_bytes()]);
            }
            90 => {
                p.ck(&[b"PFDEBUG", b"GETREG", key.as_bytes()]);
            }
            91 => {
                p.ck(&[b"PFDEBUG", b"TODENSE", key.as_bytes()]);
            }
            92..=94 => {
                p.ck(&[b"DEL", key.as_bytes()]);
            }
            _ => {
                p.ck(&[b"OBJECT", b"ENCODING", key.as_bytes()]);
                p.ck(&[b"STRLEN", key.as_bytes()]);
            }
        }
        p.same_value(key);
        if step % 100 == 0 {
            for k in KEYS {
                p.same_value(k);
            }
        }
    }
    // The streams reached both encodings.
    let encodings: Vec<String> = KEYS
        .iter()
        .map(|k| String::from_utf8_lossy(&p.ck(&[b"PFDEBUG", b"ENCODING", k.as_bytes()])).into_owned())
        .collect();
    assert!(encodings.iter().any(|e| e.contains("dense")), "{encodings:?}");
}

/// One key grown one element at a time from empty to well past the
/// promotion: the exact bytes after every PFADD and PFCOUNT.
#[test]
fn growth_through_promotion() {
    let Some(mut p) = Pair::start() else { return };
    let mut rng = StdRng::seed_from_u64(7);
    let mut promoted = None;
    for i in 0..1000 {
        let n = if i < 300 { 1 } else { rng.gen_range(1..7) };
        let elems: Vec<Vec<u8>> =
            (0..n)
                .map(|j| {
                    if j == 0 && i % 7 == 0 {
                        element(&mut rng)
                    } else {
                        format!("e{}", rng.gen::<u32>()).into_bytes()
                    }
                })
                .collect();
        pfadd(&mut p, "{g}k", &elems);
        if i % 3 == 0 {
            p.line("PFCOUNT {g}k");
        }
        p.same_value("{g}k");
        if promoted.is_none() && p.line("PFDEBUG ENCODING {g}k") == b"+dense\r\n" {
            promoted = Some(i);
        }
    }
    assert!(promoted.is_some(), "never promoted");
    p.lines(&["PFCOUNT {g}k", "PFCOUNT {g}k", "GET {g}k", "OBJECT ENCODING {g}k", "TYPE {g}k"]);
}

/// Values produced by redis-server read here with the same answers, and the
/// reverse; both keep evolving identically afterwards.
#[test]
fn values_move_between_servers() {
    let Some(mut p) = Pair::start() else { return };
    let mut rng = StdRng::seed_from_u64(11);
    for (round, n) in [0usize, 1, 5, 60, 400, 900, 3000].into_iter().enumerate() {
        let elems = elements(&mut rng, n);
        // Built on one side only, then carried to the other with GET/SET.
        let (from, to) = if round % 2 == 0 { (1, 0) } else { (0, 1) };
        let mut args: Vec<&[u8]> = vec![b"PFADD", b"{m}src"];
        args.extend(elems.iter().map(Vec::as_slice));
        p.c[from].call(&[b"DEL", b"{m}src"]);
        p.c[from].call(&args);
        if round % 3 == 0 {
            // Sometimes with a valid cached cardinality in the header.
            p.c[from].call(&[b"PFCOUNT", b"{m}src"]);
        }
        let value = bulk_body(&p.c[from].call(&[b"GET", b"{m}src"]));
        p.c[to].call(&[b"SET", b"{m}src", &value]);
        p.same_value("{m}src");
        p.lines(&["PFDEBUG ENCODING {m}src", "PFCOUNT {m}src", "PFCOUNT {m}src {m}none"]);
        p.same_value("{m}src");
        let more = elements(&mut rng, 50);
        pfadd(&mut p, "{m}src", &more);
        p.same_value("{m}src");
        p.lines(&["PFCOUNT {m}src", "PFMERGE {m}dst {m}src", "PFCOUNT {m}dst", "PFDEBUG GETREG {m}src"]);
        p.same_value("{m}dst");
        p.same_value("{m}src");
    }
}

/// A dense value whose registers all hold `v` (and the 16-byte header).
fn dense_value(regs: &[u8], card: [u8; 8]) -> Vec<u8> {
    let mut out = b"HYLL\x00\x00\x00\x00".to_vec();
    out.extend_from_slice(&card);
    let mut packed = vec![0u8; 12288];
    for (i, &r) in regs.iter().enumerate() {
        let byte = i * 6 / 8;
        let fb = (i * 6) & 7;
        let v = (r & 63) as u16;
        packed[byte] |= (v << fb) as u8;
        if byte + 1 < packed.len() {
            packed[byte + 1] |= (v >> (8 - fb)) as u8;
        }
    }
    out.extend_from_slice(&packed);
    out
}

const STALE: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 0x80];

/// Hand-made dense values, including register values no hash produces:
/// the estimator's corner cases (an estimate past i64, an infinite one) and
/// the cache write-back agree.
#[test]
fn estimator_on_hand_made_dense_values() {
    let Some(mut p) = Pair::start() else { return };
    let mut rng = StdRng::seed_from_u64(13);
    let mut values: Vec<Vec<u8>> = (0..64u8).map(|v| dense_value(&[v; 16384], STALE)).collect();
    for _ in 0..30 {
        let top = rng.gen_range(1..64u8);
        let zeros = rng.gen_range(0.0..1.0);
        let regs: Vec<u8> = (0..16384).map(|_| if rng.gen_bool(zeros) { 0 } else { rng.gen_range(0..=top) }).collect();
        values.push(dense_value(&regs, STALE));
    }
    // Mostly empty, with a few set registers (small cardinalities).
    for n in [1usize, 2, 10, 100, 1000] {
        let mut regs = vec![0u8; 16384];
        for _ in 0..n {
            regs[rng.gen_range(0..16384)] = rng.gen_range(1..8);
        }
        values.push(dense_value(&regs, STALE));
    }
    // A valid cache is believed as it is, whatever the registers say.
    values.push(dense_value(&[3; 16384], 12345u64.to_le_bytes()));
    values.push(dense_value(&[0; 16384], (i64::MAX as u64).to_le_bytes()));
    for v in &values {
        p.set_both("{e}k", v);
        p.lines(&["PFCOUNT {e}k", "GET {e}k", "PFCOUNT {e}k", "PFCOUNT {e}k {e}none", "OBJECT ENCODING {e}k"]);
        p.lines(&["PFMERGE {e}m {e}k", "GET {e}m", "PFCOUNT {e}m", "DEL {e}m"]);
        p.lines(&["PFADD {e}k a b c d", "GET {e}k", "PFCOUNT {e}k"]);
    }
}

/// Opcode encoders for hand-made sparse values.
fn zero(n: usize) -> Vec<u8> {
    vec![(n - 1) as u8]
}
fn xzero(n: usize) -> Vec<u8> {
    vec![0x40 | ((n - 1) >> 8) as u8, ((n - 1) & 0xff) as u8]
}
fn val(v: u8, n: usize) -> Vec<u8> {
    vec![0x80 | ((v - 1) << 2) | (n - 1) as u8]
}

fn sparse_header(card: [u8; 8]) -> Vec<u8> {
    let mut out = b"HYLL\x01\x00\x00\x00".to_vec();
    out.extend_from_slice(&card);
    out
}

/// A valid sparse value of random, non-canonical opcodes (short XZEROs,
/// ZEROs next to each other, VALs of any length) covering 16384 registers.
fn random_sparse(rng: &mut StdRng) -> Vec<u8> {
    let mut out = sparse_header(STALE);
    let mut left = 16384usize;
    let dense_ops = rng.gen_bool(0.5);
    // Few distinct values make neighbouring VALs of equal value (which Redis
    // merges when an edit comes near them) common.
    let top = if rng.gen_bool(0.5) { 2 } else { 32 };
    while left > 0 {
        let op = match rng.gen_range(0..10) {
            0..=3 if dense_ops => val(rng.gen_range(1..=top), rng.gen_range(1..=4).min(left)),
            0 => val(rng.gen_range(1..=top), rng.gen_range(1..=4).min(left)),
            1..=3 => zero(rng.gen_range(1..=64).min(left)),
            4 | 5 => xzero(rng.gen_range(1..=300).min(left)),
            6 => xzero(rng.gen_range(1..=16384).min(left)),
            _ => zero(rng.gen_range(1..=8).min(left)),
        };
        let span = match op[0] {
            b if b & 0x80 != 0 => (b & 3) as usize + 1,
            b if b & 0x40 != 0 => ((((b & 0x3f) as usize) << 8) | op[1] as usize) + 1,
            b => b as usize + 1,
        };
        left -= span;
        out.extend_from_slice(&op);
    }
    out
}

/// Hand-made sparse values take the same edits (splits of short XZEROs,
/// merges of neighbouring VALs, promotion) in both servers.
#[test]
fn hand_made_sparse_values() {
    let Some(mut p) = Pair::start() else { return };
    let mut rng = StdRng::seed_from_u64(17);
    for round in 0..60 {
        let v = random_sparse(&mut rng);
        p.set_both("{s}k", &v);
        p.lines(&["PFDEBUG DECODE {s}k", "PFCOUNT {s}k", "GET {s}k", "PFCOUNT {s}k {s}none"]);
        for _ in 0..rng.gen_range(1..40) {
            let n = rng.gen_range(1..4);
            let elems = elements(&mut rng, n);
            pfadd(&mut p, "{s}k", &elems);
            p.same_value("{s}k");
        }
        p.lines(&["PFDEBUG DECODE {s}k", "PFCOUNT {s}k", "GET {s}k"]);
        // PFMERGE into another hand-made sparse destination.
        let w = random_sparse(&mut rng);
        p.set_both("{s}d", &w);
        p.lines(&["PFMERGE {s}d {s}k", "GET {s}d", "PFCOUNT {s}d", "PFDEBUG ENCODING {s}d"]);
        if round % 10 == 0 {
            p.lines(&["PFDEBUG GETREG {s}k", "PFDEBUG TODENSE {s}d", "GET {s}d"]);
        }
    }
}

/// Corrupted and truncated values: the same error (or the same answer, when
/// Redis does not notice) from every command, the same bytes afterwards,
/// and moonshard stays up.
#[test]
fn corrupted_values() {
    let Some(mut p) = Pair::start() else { return };
    let mut rng = StdRng::seed_from_u64(19);
    // Sources: valid values of each shape, built on redis-server.
    let mut sources = Vec::new();
    for n in [0usize, 3, 40, 300, 2000] {
        let elems = elements(&mut rng, n);
        let mut args: Vec<&[u8]> = vec![b"PFADD", b"{c}src"];
        args.extend(elems.iter().map(Vec::as_slice));
        p.c[1].call(&[b"DEL", b"{c}src"]);
        p.c[1].call(&args);
        sources.push(p.redis_value("{c}src"));
    }
    let mut corrupted: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"HYLL".to_vec(),
        b"HYLL\x01\0\0\0\0\0\0\0\0\0\0".to_vec(),
        b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec(),
        b"HYLL\x02\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff".to_vec(),
        b"HYLX\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff".to_vec(),
        b"12345".to_vec(),
        // Exactly 16384 registers, then more opcodes.
        [sparse_header(STALE), xzero(16384), zero(1)].concat(),
        [sparse_header(STALE), xzero(16384), val(3, 1)].concat(),
        [sparse_header(STALE), xzero(16384), xzero(16384)].concat(),
        // Too few registers, and a VAL past the end.
        [sparse_header(STALE), xzero(16000)].concat(),
        [sparse_header(STALE), xzero(16383), val(2, 2)].concat(),
        // An XZERO cut short by the end of the string (its second byte reads as 0).
        [sparse_header(STALE), xzero(16384 - 16129), vec![0x7f]].concat(),
        [sparse_header(STALE), xzero(100), vec![0x7f]].concat(),
        // Dense of the wrong length.
        [b"HYLL\x00\0\0\0\0\0\0\0\0\0\0\x80".to_vec(), vec![0u8; 100]].concat(),
        // A valid-looking cache on a broken value is believed.
        [sparse_header(7u64.to_le_bytes()), xzero(5)].concat(),
    ];
    for _ in 0..120 {
        let mut v = sources[rng.gen_range(0..sources.len())].clone();
        match rng.gen_range(0..4) {
            0 => {
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..v.len());
                    v[at] ^= 1 << rng.gen_range(0..8);
                }
            }
            1 => {
                let at = rng.gen_range(0..v.len());
                v[at] = rng.gen();
            }
            2 => v.truncate(rng.gen_range(0..v.len())),
            _ => v.extend((0..rng.gen_range(1..4)).map(|_| rng.gen::<u8>())),
        }
        corrupted.push(v);
    }
    let ops: &[&[&str]] = &[
        &["PFCOUNT", "{c}k"],
        &["PFCOUNT", "{c}k", "{c}none"],
        &["PFADD", "{c}k", "x"],
        &["PFADD", "{c}k"],
        &["PFMERGE", "{c}dst", "{c}k"],
        &["PFMERGE", "{c}k"],
        &["PFDEBUG", "GETREG", "{c}k"],
        &["PFDEBUG", "DECODE", "{c}k"],
        &["PFDEBUG", "ENCODING", "{c}k"],
        &["PFDEBUG", "TODENSE", "{c}k"],
        &["PFDEBUG", "NOSUCH", "{c}k"],
    ];
    let mut errors = 0;
    for v in &corrupted {
        for op in ops {
            p.set_both("{c}k", v);
            p.ck(&[b"DEL", b"{c}dst"]);
            let args: Vec<&[u8]> = op.iter().map(|a| a.as_bytes()).collect();
            if p.ck(&args).starts_with(b"-") {
                errors += 1;
            }
            p.same_value("{c}k");
            p.same_value("{c}dst");
            p.line("OBJECT ENCODING {c}k");
        }
    }
    assert!(errors > 500, "too few corrupted values were refused: {errors}");
    p.lines(&["PING", "EXISTS {c}k {c}dst"]);
}

/// `hll-sparse-max-bytes` read and set like Redis's, and the promotion point
/// it sets, at several values.
#[test]
fn sparse_max_bytes_boundary() {
    let Some(mut p) = Pair::start() else { return };
    p.lines(&[
        "CONFIG GET hll-sparse-max-bytes",
        "CONFIG SET hll-sparse-max-bytes -1",
        "CONFIG SET hll-sparse-max-bytes abc",
        "CONFIG SET hll-sparse-max-bytes 1k",
        "CONFIG GET hll-sparse-max-bytes",
    ]);
    let mut rng = StdRng::seed_from_u64(23);
    for limit in ["0", "18", "19", "20", "40", "100", "777", "3000", "6000"] {
        p.line(&format!("CONFIG SET hll-sparse-max-bytes {limit}"));
        p.line("CONFIG GET hll-sparse-max-bytes");
        p.line("DEL {b}k");
        p.line("PFADD {b}k");
        let mut dense_for = 0;
        for _ in 0..1200 {
            // One element at a time near small limits, small batches otherwise.
            let n = if limit.len() < 3 { 1 } else { rng.gen_range(1..6) };
            let elems: Vec<Vec<u8>> = (0..n).map(|_| format!("m{}", rng.gen::<u32>()).into_bytes()).collect();
            pfadd(&mut p, "{b}k", &elems);
            let len = int_reply(&p.line("STRLEN {b}k"));
            p.same_value("{b}k");
            if len == 12304 {
                dense_for += 1;
                if dense_for > 3 {
                    break;
                }
            }
        }
        p.lines(&["PFDEBUG ENCODING {b}k", "PFCOUNT {b}k"]);
        // PFMERGE into a sparse destination grows it under the same limit.
        p.lines(&["DEL {b}m", "PFADD {b}m x", "PFMERGE {b}m {b}k", "GET {b}m", "PFDEBUG ENCODING {b}m"]);
    }
    p.line("CONFIG SET hll-sparse-max-bytes 3000");
}

/// Errors, arities, types, encodings and COMMAND metadata.
#[test]
fn errors_and_metadata() {
    let Some(mut p) = Pair::start() else { return };
    p.lines(&[
        "PFADD",
        "PFCOUNT",
        "PFMERGE",
        "PFDEBUG",
        "PFDEBUG GETREG",
        "PFDEBUG GETREG {x}k extra",
        "PFSELFTEST extra",
        "PFDEBUG GETREG {x}nokey",
        "PFDEBUG NOSUCH {x}nokey",
        "PFCOUNT {x}nokey",
        "PFCOUNT {x}nokey {x}nokey2",
        "PFMERGE {x}dst",
        "GET {x}dst",
        "PFADD {x}empty",
        "GET {x}empty",
        "PFADD {x}empty",
        "TYPE {x}empty",
        "OBJECT ENCODING {x}empty",
        "PFDEBUG ENCODING {x}empty",
        "PFDEBUG DECODE {x}empty",
        "PFDEBUG getreg {x}empty",
        "PFDEBUG DECODE {x}empty",
        "PFDEBUG TODENSE {x}empty",
        "PFDEBUG TODENSE {x}empty",
        "GET {x}empty",
        "RPUSH {x}list a",
        "PFADD {x}list a",
        "PFCOUNT {x}list",
        "PFCOUNT {x}list {x}empty",
        "PFMERGE {x}list {x}empty",
        "PFMERGE {x}empty {x}list",
        "PFDEBUG ENCODING {x}list",
        "SET {x}str hello",
        "PFADD {x}str a",
        "PFCOUNT {x}str",
        "PFCOUNT {x}empty {x}str",
        "PFMERGE {x}empty {x}str",
        "SET {x}int 12345",
        "PFCOUNT {x}int",
        "OBJECT ENCODING {x}int",
        "COMMAND INFO pfadd pfcount pfmerge pfdebug pfselftest",
        "COMMAND GETKEYS PFMERGE a b c",
        "COMMAND GETKEYS PFDEBUG GETREG k",
    ]);
    // A value written by SET is a string; once an HLL command touched it,
    // it is raw-encoded as in Redis.
    let v = p.redis_value("{x}empty");
    p.set_both("{x}copy", &v);
    p.lines(&["OBJECT ENCODING {x}copy", "PFCOUNT {x}copy", "OBJECT ENCODING {x}copy", "TYPE {x}copy"]);
    // From scripts and transactions.
    p.ck(&[
        b"EVAL",
        b"return {redis.call('pfadd', KEYS[1], 'a', 'b'), redis.call('pfcount', KEYS[1])}",
        b"1",
        b"{x}lua",
    ]);
    p.ck(&[b"EVAL", b"return redis.call('pfmerge', KEYS[1], KEYS[2])", b"2", b"{x}lua2", b"{x}lua"]);
    p.lines(&[
        "GET {x}lua",
        "GET {x}lua2",
        "MULTI",
        "PFADD {x}tx a",
        "PFCOUNT {x}tx",
        "PFADD {x}tx",
        "EXEC",
        "GET {x}tx",
    ]);
    // Keys of different slots: Redis Cluster's CROSSSLOT here.
    let ours = p.c[0].call(&[b"PFCOUNT", b"a", b"b"]);
    assert!(ours.starts_with(b"-CROSSSLOT"), "{}", show_reply(&ours));
    let ours = p.c[0].call(&[b"PFMERGE", b"a", b"b"]);
    assert!(ours.starts_with(b"-CROSSSLOT"), "{}", show_reply(&ours));
    // Group and category.
    let docs = p.c[0].call(&[b"COMMAND", b"DOCS", b"pfadd"]);
    assert!(docs.windows(11).any(|w| w == b"hyperloglog"), "{}", show_reply(&docs));
    let lists: Vec<Vec<u8>> =
        p.c.iter_mut().map(|c| c.call(&[b"COMMAND", b"LIST", b"FILTERBY", b"ACLCAT", b"hyperloglog"])).collect();
    let names = |r: &[u8]| {
        let mut v: Vec<String> =
            String::from_utf8_lossy(r).lines().filter(|l| l.starts_with("pf")).map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(names(&lists[0]), names(&lists[1]));
    assert_eq!(names(&lists[0]).len(), 5);
}

/// PFSELFTEST answers OK (its long part runs in a separate thread of the
/// test binary, in parallel with the other tests).
#[test]
fn selftest() {
    let Some(mut p) = Pair::start() else { return };
    p.line("PFSELFTEST");
}

/// WATCH sees PFADD, PFMERGE and a PFCOUNT that stores a new cardinality,
/// not a PFCOUNT answered from the cache; keyspace events are Redis's.
#[test]
fn watch_and_notifications() {
    let Some(mut p) = Pair::start() else { return };
    let mut other = p.clients();
    let mut sub = p.clients();
    // String-class events only: PFADD and PFMERGE's `pfadd` is one.
    p.lines(&["FLUSHALL", "CONFIG SET notify-keyspace-events KE$", "PFADD {w}k a b c"]);
    for s in sub.iter_mut() {
        s.call(&[b"PSUBSCRIBE", b"__key*__:*"]);
    }
    let both = |o: &mut [Conn; 2], args: &[&[u8]]| {
        let a = o[0].call(args);
        let b = o[1].call(args);
        assert_eq!(a, b, "{:?}", show_args(args));
    };
    for (action, aborts) in [
        (&["PFCOUNT", "{w}k"][..], true),
        (&["PFCOUNT", "{w}k"][..], false),
        (&["PFADD", "{w}k", "a"][..], false),
        (&["PFADD", "{w}k", "zz", "yy"][..], true),
        (&["PFCOUNT", "{w}k", "{w}j"][..], false),
        (&["PFMERGE", "{w}k"][..], true),
        (&["PFDEBUG", "TODENSE", "{w}k"][..], false),
        (&["PFDEBUG", "ENCODING", "{w}k"][..], false),
    ] {
        p.line("WATCH {w}k");
        let args: Vec<&[u8]> = action.iter().map(|a| a.as_bytes()).collect();
        both(&mut other, &args);
        p.line("MULTI");
        p.line("PING");
        let exec = p.line("EXEC");
        assert_eq!(exec.starts_with(b"*-1"), aborts, "{action:?}: {}", show_reply(&exec));
    }
    p.lines(&["PFADD {w}n x", "PFMERGE {w}m {w}n", "PFCOUNT {w}m"]);
    let got: Vec<Vec<Vec<u8>>> = sub.iter_mut().map(|s| s.drain(Duration::from_millis(300))).collect();
    assert!(got[1].len() >= 6, "redis-server sent too few events: {}", got[1].len());
    assert_eq!(got[0], got[1]);
    p.ck(&[b"CONFIG", b"SET", b"notify-keyspace-events", b""]);
}
