//! Bitmap commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD,
//! BITFIELD_RO) against a real redis-server 7.0, reply by reply and then
//! byte for byte on every key: randomized sequences with a fixed seed,
//! the error cases, the size limits, OOM, and the keyspace events.
//!
//! The keys share the hash tag `{bm}`: BITOP's keys must be in one slot.

mod common;
mod raw_resp;

use common::Diff;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use raw_resp::Raw;
use redis::Value;
use std::time::Duration;

const KEYS: &[&str] = &["{bm}a", "{bm}b", "{bm}c", "{bm}d"];
const LIST: &str = "{bm}list";

fn start() -> Option<Diff> {
    Diff::start(&["--shards", "4"])
}

/// Runs each command on both servers, asserting equal replies.
#[track_caller]
fn script(d: &mut Diff, cmds: &[&[&str]]) {
    for c in cmds {
        let _ = d.check(c);
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// A bit offset near a byte or word boundary.
fn offset(rng: &mut StdRng) -> i64 {
    let base = *pick(rng, &[0i64, 1, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 191, 255, 256, 511, 1023, 2047, 4095]);
    (base + rng.gen_range(-2..=2)).max(0)
}

/// A BITCOUNT/BITPOS bound: small, negative, or extreme.
fn bound(rng: &mut StdRng, bits: bool) -> String {
    let span = if bits { 600 } else { 70 };
    match rng.gen_range(0..20) {
        0 => i64::MAX.to_string(),
        1 => i64::MIN.to_string(),
        2 => "-1".into(),
        3 => "0".into(),
        _ => rng.gen_range(-span..=span).to_string(),
    }
}

/// A value worth storing into a `bits`-wide field: at and around its limits,
/// or anything.
fn field_value(rng: &mut StdRng, bits: u32, signed: bool) -> i64 {
    let (min, max): (i128, i128) =
        if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) };
    let v: i128 = match rng.gen_range(0..10) {
        0 => min,
        1 => max,
        2 => min - rng.gen_range(1..4),
        3 => max + rng.gen_range(1..4),
        4 => i64::MIN.into(),
        5 => i64::MAX.into(),
        6 => rng.gen_range(-3..4),
        7 => rng.gen::<i64>().into(),
        8 => i128::from(i64::MIN) + rng.gen_range(0..300),
        _ => rng.gen_range(min..=max),
    };
    v.clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

fn field_type(rng: &mut StdRng) -> (String, u32, bool) {
    let signed = rng.gen_bool(0.5);
    let bits = if signed { rng.gen_range(1..=64) } else { rng.gen_range(1..=63) };
    (format!("{}{bits}", if signed { 'i' } else { 'u' }), bits, signed)
}

fn field_offset(rng: &mut StdRng, bits: u32) -> String {
    if rng.gen_bool(0.25) {
        format!("#{}", rng.gen_range(0..(600 / bits as i64).max(2)))
    } else {
        offset(rng).min(4000).to_string()
    }
}

/// Arguments for BITFIELD (`ro`: GETs only, for BITFIELD_RO).
fn bitfield_args(rng: &mut StdRng, key: &str, ro: bool) -> Vec<String> {
    let mut a = vec![if ro { "BITFIELD_RO" } else { "BITFIELD" }.to_string(), key.to_string()];
    for _ in 0..rng.gen_range(1..=4) {
        if !ro && rng.gen_bool(0.3) {
            a.push("OVERFLOW".into());
            a.push(pick(rng, &["WRAP", "SAT", "FAIL", "wrap", "sat", "fail"]).to_string());
        }
        let (ty, bits, signed) = field_type(rng);
        let op = if ro { 0 } else { rng.gen_range(0..3) };
        let off = field_offset(rng, bits);
        match op {
            0 => a.extend(["GET".to_string(), ty, off]),
            1 => a.extend(["SET".to_string(), ty, off, field_value(rng, bits, signed).to_string()]),
            _ => {
                let incr = if rng.gen_bool(0.5) { rng.gen_range(-5..=5) } else { field_value(rng, bits, signed) };
                a.extend(["INCRBY".to_string(), ty, off, incr.to_string()]);
            }
        }
    }
    a
}

/// Random bytes, often runs of 0x00 or 0xFF (word-skipping paths), some
/// texts Redis stores as integers, and the empty string.
fn value(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..6) {
        0 => Vec::new(),
        1 => rng.gen_range(-1000..100000).to_string().into_bytes(),
        2 => vec![*pick(rng, &[0u8, 0xFF]); rng.gen_range(1..40)],
        _ => (0..rng.gen_range(1..60)).map(|_| rng.gen()).collect(),
    }
}

/// Sends binary `args` to both servers and asserts equal replies.
#[track_caller]
fn check_bin(d: &mut Diff, args: &[&[u8]]) {
    let ours = common::run(&mut d.a, args);
    let theirs = common::run(&mut d.b, args);
    assert_eq!(ours, theirs, "moonshard and redis-server differ on {:?}", args_text(args));
}

fn args_text(args: &[&[u8]]) -> Vec<String> {
    args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

fn random_step(d: &mut Diff, rng: &mut StdRng) {
    let key = *pick(rng, KEYS);
    let bits = rng.gen_bool(0.5);
    let unit = if bits { "BIT" } else { *pick(rng, &["BYTE", "byte", "bit"]) };
    let args: Vec<String> = match rng.gen_range(0..100) {
        0..=17 => {
            let bit = if rng.gen_bool(0.6) { "1" } else { "0" };
            vec!["SETBIT".into(), key.into(), offset(rng).to_string(), bit.into()]
        }
        18..=27 => vec!["GETBIT".into(), key.into(), offset(rng).to_string()],
        28..=39 => match rng.gen_range(0..3) {
            0 => vec!["BITCOUNT".into(), key.into()],
            1 => vec!["BITCOUNT".into(), key.into(), bound(rng, false), bound(rng, false)],
            _ => vec!["BITCOUNT".into(), key.into(), bound(rng, bits), bound(rng, bits), unit.into()],
        },
        40..=53 => {
            let mut a = vec!["BITPOS".into(), key.into(), pick(rng, &["0", "1"]).to_string()];
            match rng.gen_range(0..4) {
                0 => {}
                1 => a.push(bound(rng, false)),
                2 => a.extend([bound(rng, false), bound(rng, false)]),
                _ => a.extend([bound(rng, bits), bound(rng, bits), unit.into()]),
            }
            a
        }
        54..=63 => {
            let op = *pick(rng, &["AND", "OR", "XOR", "NOT", "and", "Or"]);
            let n = if op == "NOT" { 1 } else { rng.gen_range(1..=4) };
            let mut a = vec!["BITOP".into(), op.into(), pick(rng, KEYS).to_string()];
            for _ in 0..n {
                a.push(if rng.gen_bool(0.1) { "{bm}missing".into() } else { pick(rng, KEYS).to_string() });
            }
            a
        }
        64..=79 => bitfield_args(rng, key, false),
        80..=85 => bitfield_args(rng, key, true),
        86..=89 => {
            let v = value(rng);
            check_bin(d, &[b"SET", key.as_bytes(), &v]);
            return;
        }
        90 => vec!["DEL".into(), key.into()],
        91..=92 => {
            let v = value(rng);
            check_bin(d, &[b"APPEND", key.as_bytes(), &v]);
            return;
        }
        93 => vec!["EXPIRE".into(), key.into(), "1000".into()],
        94 => {
            // TTLs tick: compare whether the key still has one.
            let (a, b) = d.both(&["TTL", key]);
            let sign = |r: Result<Value, String>| r.map(|v| if let Value::Int(n) = v { n.signum() } else { 9 });
            assert_eq!(sign(a), sign(b), "TTL {key}");
            return;
        }
        95 => vec!["SETRANGE".into(), key.into(), rng.gen_range(0..50).to_string(), "xyz".into()],
        _ => vec!["STRLEN".into(), key.into()],
    };
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let _ = d.check(&refs);
}

/// Every key, byte for byte, with its encoding.
fn compare_keys(d: &mut Diff) {
    for key in KEYS {
        let _ = d.check(&["GET", key]);
        let _ = d.check(&["OBJECT", "ENCODING", key]);
    }
}

/// Subscribes one raw connection per server to every keyevent.
fn subscribe_events(d: &mut Diff) -> [Raw; 2] {
    let _ = d.check(&["CONFIG", "SET", "notify-keyspace-events", "EA"]);
    let mut subs = [Raw::connect(d.ours.port), Raw::connect(d.theirs.port)];
    for s in &mut subs {
        let r = s.call(&["PSUBSCRIBE", "__keyevent@0__:*"]);
        assert!(r.contains("psubscribe"), "{r}");
    }
    subs
}

fn drain(sub: &mut Raw) -> Vec<String> {
    sub.set_timeout(Duration::from_millis(300));
    std::iter::from_fn(|| Some(sub.reply()).filter(|m| !m.is_empty())).collect()
}

#[test]
fn random_sequences_match_redis() {
    let Some(mut d) = start() else { return };
    let _ = d.check(&["RPUSH", LIST, "x"]);
    let mut subs = subscribe_events(&mut d);
    let mut rng = StdRng::seed_from_u64(0xB17);
    for round in 0..40 {
        for _ in 0..60 {
            random_step(&mut d, &mut rng);
        }
        compare_keys(&mut d);
        if round % 10 == 9 {
            script(&mut d, &[&["DEL", KEYS[0], KEYS[1], KEYS[2], KEYS[3]]]);
        }
    }
    let [ours, theirs] = &mut subs;
    let (ours, theirs) = (drain(ours), drain(theirs));
    let count = |name: &str| theirs.iter().filter(|m| m.contains(&format!(":{name}\r\n"))).count();
    assert!(count("setbit") > 100 && count("set") > 20 && count("del") > 3, "too few events from redis-server");
    assert_eq!(ours, theirs, "keyspace events differ");
    let _ = d.check(&["CONFIG", "SET", "notify-keyspace-events", ""]);
}

#[test]
fn every_bitfield_width_and_overflow_mode() {
    let Some(mut d) = start() else { return };
    let mut rng = StdRng::seed_from_u64(64);
    for signed in [true, false] {
        for bits in 1..=64u32 {
            if !signed && bits == 64 {
                continue;
            }
            let ty = format!("{}{bits}", if signed { 'i' } else { 'u' });
            for ow in ["WRAP", "SAT", "FAIL"] {
                for _ in 0..3 {
                    let off = offset(&mut rng).min(300).to_string();
                    let v = field_value(&mut rng, bits, signed).to_string();
                    let incr = field_value(&mut rng, bits, signed).to_string();
                    let key = KEYS[0];
                    let _ = d.check(&[
                        "BITFIELD", key, "OVERFLOW", ow, "SET", &ty, &off, &v, "INCRBY", &ty, &off, &incr, "GET", &ty,
                        &off, "INCRBY", &ty, &off, "1", "INCRBY", &ty, &off, "-1",
                    ]);
                    let _ = d.check(&["BITFIELD_RO", key, "GET", &ty, &off, "GET", &ty, "#1", "GET", "u8", "0"]);
                }
            }
        }
        let _ = d.check(&["GET", KEYS[0]]);
    }
    // Signed SAT arithmetic quirks near i64::MIN, for every width.
    for bits in 1..=64 {
        let ty = format!("i{bits}");
        for v in ["-9223372036854775808", "-9223372036854775700", "-9223372036854775000", "9223372036854775807"] {
            let _ = d.check(&["BITFIELD", "{bm}q", "OVERFLOW", "SAT", "SET", &ty, "3", v, "GET", &ty, "3"]);
        }
    }
    let _ = d.check(&["GET", "{bm}q"]);
}

#[test]
fn errors_and_edge_cases() {
    let Some(mut d) = start() else { return };
    script(
        &mut d,
        &[
            &["SET", "{bm}s", "foobar"],
            &["RPUSH", LIST, "x"],
            &["SET", "{bm}n", "12345"],
            &["SET", "{bm}e", ""],
            // SETBIT / GETBIT
            &["SETBIT", "{bm}k", "-1", "1"],
            &["SETBIT", "{bm}k", "abc", "1"],
            &["SETBIT", "{bm}k", "1.5", "1"],
            &["SETBIT", "{bm}k", "01", "1"],
            &["SETBIT", "{bm}k", "+1", "1"],
            &["SETBIT", "{bm}k", "#1", "1"],
            &["SETBIT", "{bm}k", "", "1"],
            &["SETBIT", "{bm}k", "4294967296", "1"],
            &["SETBIT", "{bm}k", "9223372036854775807", "1"],
            &["SETBIT", "{bm}k", "99999999999999999999", "1"],
            &["SETBIT", "{bm}k", "0", "2"],
            &["SETBIT", "{bm}k", "0", "-1"],
            &["SETBIT", "{bm}k", "0", "abc"],
            &["SETBIT", "{bm}k", "0", "01"],
            &["SETBIT", "{bm}k", "0", ""],
            &["SETBIT", "{bm}k", "x", "x"],
            &["SETBIT", LIST, "0", "x"],
            &["SETBIT", LIST, "0", "1"],
            &["SETBIT", "{bm}k", "1"],
            &["EXISTS", "{bm}k"],
            &["SETBIT", "{bm}k", "0", "0"],
            &["GET", "{bm}k"],
            &["OBJECT", "ENCODING", "{bm}k"],
            &["SETBIT", "{bm}n", "0", "0"],
            &["OBJECT", "ENCODING", "{bm}n"],
            &["SETBIT", "{bm}n", "6", "0"],
            &["GET", "{bm}n"],
            &["SETBIT", "{bm}e", "7", "1"],
            &["GET", "{bm}e"],
            &["GETBIT", "{bm}k", "-1"],
            &["GETBIT", "{bm}k", "4294967296"],
            &["GETBIT", "{bm}k", "4294967295"],
            &["GETBIT", "{bm}k", "#1"],
            &["GETBIT", "{bm}nokey", "5"],
            &["GETBIT", "{bm}n", "10"],
            &["GETBIT", LIST, "x"],
            &["GETBIT", LIST, "0"],
            &["GETBIT", "{bm}k"],
            // BITCOUNT
            &["BITCOUNT", "{bm}s"],
            &["BITCOUNT", "{bm}s", "0"],
            &["BITCOUNT", "{bm}s", "0", "1", "2", "3"],
            &["BITCOUNT", "{bm}s", "a", "b"],
            &["BITCOUNT", "{bm}s", "0", "b"],
            &["BITCOUNT", "{bm}s", "0", "1", "foo"],
            &["BITCOUNT", "{bm}s", "0", "1", "bits"],
            &["BITCOUNT", "{bm}s", "-1", "-2", "foo"],
            &["BITCOUNT", "{bm}s", "-1", "-2", "bit"],
            &["BITCOUNT", "{bm}s", "-100", "-200"],
            &["BITCOUNT", "{bm}s", "-200", "-100"],
            &["BITCOUNT", "{bm}s", "-100", "-100", "bit"],
            &["BITCOUNT", "{bm}s", "5", "3"],
            &["BITCOUNT", "{bm}s", "1", "1"],
            &["BITCOUNT", "{bm}s", "9", "100"],
            &["BITCOUNT", "{bm}s", "9", "100", "BIT"],
            &["BITCOUNT", "{bm}s", "1", "-1", "BYTE"],
            &["BITCOUNT", "{bm}s", "0", "-1", "BiT"],
            &["BITCOUNT", "{bm}s", "-9223372036854775808", "9223372036854775807", "bit"],
            &["BITCOUNT", "{bm}nokey", "a", "b"],
            &["BITCOUNT", "{bm}nokey", "0"],
            &["BITCOUNT", "{bm}nokey", "0", "1", "foo"],
            &["BITCOUNT", "{bm}e"],
            &["BITCOUNT", "{bm}e", "0", "-1", "bit"],
            &["BITCOUNT", LIST],
            &["BITCOUNT", LIST, "a", "b"],
            &["BITCOUNT"],
            // BITPOS
            &["BITPOS", "{bm}s", "2"],
            &["BITPOS", "{bm}s", "-1"],
            &["BITPOS", "{bm}s", "a"],
            &["BITPOS", "{bm}s", "1", "a"],
            &["BITPOS", "{bm}s", "1", "0", "a"],
            &["BITPOS", "{bm}s", "1", "0", "1", "foo"],
            &["BITPOS", "{bm}s", "1", "0", "a", "foo"],
            &["BITPOS", "{bm}s", "1", "a", "0", "foo"],
            &["BITPOS", "{bm}s", "1", "0", "1", "bit", "extra"],
            &["BITPOS", "{bm}s", "0", "100"],
            &["BITPOS", "{bm}s", "0", "-1"],
            &["BITPOS", "{bm}s", "1", "-10", "-20"],
            &["BITPOS", "{bm}s", "1", "-1", "-100"],
            &["BITPOS", "{bm}nokey", "0", "a", "b", "c"],
            &["BITPOS", "{bm}nokey", "1"],
            &["BITPOS", "{bm}nokey", "0"],
            &["BITPOS", "{bm}nokey", "2"],
            &["BITPOS", "{bm}e", "0"],
            &["BITPOS", "{bm}e", "1"],
            &["BITPOS", "{bm}e", "0", "0", "-1", "bit"],
            &["BITPOS", LIST, "1"],
            &["BITPOS", LIST, "2"],
            &["BITPOS", "{bm}s"],
            &["SET", "{bm}f", "\u{7f}\u{7f}"],
            &["SETBIT", "{bm}ff", "0", "1"],
            &["BITOP", "NOT", "{bm}ff", "{bm}ff"],
            &["BITPOS", "{bm}ff", "0"],
            &["BITPOS", "{bm}ff", "0", "0"],
            &["BITPOS", "{bm}ff", "0", "0", "-1"],
            &["BITPOS", "{bm}ff", "0", "1", "6", "bit"],
            &["BITPOS", "{bm}ff", "1", "1", "6", "bit"],
            // BITOP
            &["BITOP", "foo", "{bm}d", "{bm}s"],
            &["BITOP", "DIFF", "{bm}d", "{bm}s", "{bm}s"],
            &["BITOP", "ONE", "{bm}d", "{bm}s", "{bm}s"],
            &["BITOP", "NOT", "{bm}d", "{bm}s", "{bm}s"],
            &["BITOP", "not", "{bm}d"],
            &["BITOP", "AND", "{bm}d"],
            &["BITOP", "AND", "{bm}d", LIST],
            &["BITOP", "AND", "{bm}d", "{bm}s", LIST],
            &["BITOP", "OR", "{bm}d", "{bm}nokey", LIST],
            &["EXISTS", "{bm}d"],
            &["BITOP", "AND", "{bm}d", "{bm}s", "{bm}n"],
            &["GET", "{bm}d"],
            &["OBJECT", "ENCODING", "{bm}d"],
            &["EXPIRE", "{bm}d", "1000"],
            &["BITOP", "OR", "{bm}d", "{bm}s"],
            &["TTL", "{bm}d"],
            &["BITOP", "XOR", "{bm}d", "{bm}nokey", "{bm}nokey2"],
            &["EXISTS", "{bm}d"],
            &["BITOP", "NOT", "{bm}d", "{bm}e"],
            &["BITOP", "AND", LIST, "{bm}s"],
            &["TYPE", LIST],
            &["RPUSH", LIST, "x"],
            &["BITOP", "AND", LIST, "{bm}nokey"],
            &["TYPE", LIST],
            &["BITOP", "XOR", "{bm}d", "{bm}s", "{bm}s", "{bm}s"],
            &["GET", "{bm}d"],
            &["RPUSH", LIST, "x"],
            // BITFIELD
            &["BITFIELD", "{bm}s"],
            &["BITFIELD", "{bm}nokey"],
            &["BITFIELD_RO", "{bm}s"],
            &["BITFIELD", "{bm}s", "GET"],
            &["BITFIELD", "{bm}s", "GET", "u8"],
            &["BITFIELD", "{bm}s", "GET", "u64", "0"],
            &["BITFIELD", "{bm}s", "GET", "i65", "0"],
            &["BITFIELD", "{bm}s", "GET", "i0", "0"],
            &["BITFIELD", "{bm}s", "GET", "x8", "0"],
            &["BITFIELD", "{bm}s", "GET", "U8", "0"],
            &["BITFIELD", "{bm}s", "GET", "u08", "0"],
            &["BITFIELD", "{bm}s", "GET", "", "0"],
            &["BITFIELD", "{bm}s", "GET", "u8", "-1"],
            &["BITFIELD", "{bm}s", "GET", "u8", "#-1"],
            &["BITFIELD", "{bm}s", "GET", "u8", "#"],
            &["BITFIELD", "{bm}s", "GET", "u8", "##1"],
            &["BITFIELD", "{bm}s", "GET", "u8", "#0"],
            &["BITFIELD", "{bm}s", "GET", "i64", "#144115188075855872"],
            &["BITFIELD", "{bm}s", "GET", "i64", "#144115188075855871"],
            &["BITFIELD", "{bm}s", "GET", "u8", "#536870912"],
            &["BITFIELD", "{bm}s", "GET", "u8", "#536870911"],
            &["BITFIELD", "{bm}s", "GET", "u8", "4294967296"],
            &["BITFIELD", "{bm}s", "SET", "u8", "0", "x"],
            &["BITFIELD", "{bm}s", "SET", "u8", "0"],
            &["BITFIELD", "{bm}s", "INCRBY", "u8", "0", "1.5"],
            &["BITFIELD", "{bm}s", "OVERFLOW"],
            &["BITFIELD", "{bm}s", "OVERFLOW", "foo", "GET", "u8", "0"],
            &["BITFIELD", "{bm}s", "OVERFLOW", "WRAP"],
            &["BITFIELD", "{bm}s", "FOO"],
            &["BITFIELD", "{bm}s", "GET", "u8", "0", "SET"],
            &["BITFIELD", "{bm}s", "GET", "u8", "0", "GET", "u8", "x"],
            &["BITFIELD", "{bm}s", "SET", "u8", "#1", "1", "SET", "u8", "#2", "2", "GET", "u16", "#0"],
            &["GET", "{bm}s"],
            &["BITFIELD", LIST, "GET", "u8", "0"],
            &["BITFIELD", LIST, "SET", "u8", "0", "1"],
            &["BITFIELD", LIST, "FOO"],
            &["BITFIELD_RO", LIST, "GET", "u8", "0"],
            &["BITFIELD_RO", "{bm}s", "SET", "u8", "0", "1"],
            &["BITFIELD_RO", "{bm}s", "INCRBY", "u8", "0", "1"],
            &["BITFIELD_RO", "{bm}s", "GET", "u8", "0", "OVERFLOW", "SAT"],
            &["BITFIELD_RO", "{bm}s", "OVERFLOW", "SAT", "SET", "u8", "0", "x"],
            &["BITFIELD_RO", "{bm}s", "SET", "u8", "x", "1"],
            &["BITFIELD_RO", "{bm}s", "FOO"],
            &["BITFIELD_RO", "{bm}nokey", "GET", "u8", "0", "SET", "i8", "0", "1"],
            &["BITFIELD_RO", "{bm}nokey", "GET", "i64", "100"],
            &["BITFIELD", "{bm}nf", "OVERFLOW", "FAIL", "INCRBY", "u2", "100", "5"],
            &["GET", "{bm}nf"],
            &["BITFIELD", "{bm}nf", "OVERFLOW", "FAIL", "SET", "i4", "0", "8", "SET", "i4", "0", "-9"],
            &["BITFIELD", "{bm}nf", "OVERFLOW", "SAT", "SET", "u8", "0", "-1", "GET", "u8", "0"],
            &["BITFIELD", "{bm}nf", "OVERFLOW", "WRAP", "SET", "u8", "0", "-1", "GET", "u8", "0"],
            &["BITFIELD", "{bm}nf", "set", "u63", "0", "-1", "get", "u63", "0", "get", "i64", "0"],
            &["BITFIELD", "{bm}nf", "overflow", "sat", "incrby", "i64", "0", "9223372036854775807"],
            &["BITFIELD", "{bm}nf", "overflow", "wrap", "incrby", "i64", "0", "9223372036854775807"],
            &["BITFIELD", "{bm}nf", "overflow", "fail", "incrby", "i64", "0", "-9223372036854775808"],
            &["GET", "{bm}nf"],
            &["BITFIELD"],
            &["BITFIELD_RO"],
            // In scripts and transactions.
            &["EVAL", "return redis.call('setbit', KEYS[1], 9, 1)", "1", "{bm}lua"],
            &["EVAL", "return redis.call('bitfield', KEYS[1], 'incrby', 'u4', 0, 20)", "1", "{bm}lua"],
            &["EVAL_RO", "return redis.call('bitfield_ro', KEYS[1], 'get', 'u16', 0)", "1", "{bm}lua"],
            &["EVAL_RO", "return redis.call('bitcount', KEYS[1])", "1", "{bm}lua"],
            &["MULTI"],
            &["SETBIT", "{bm}tx", "3", "1"],
            &["BITCOUNT", "{bm}tx"],
            &["BITFIELD", "{bm}tx", "GET", "u4", "0"],
            &["EXEC"],
        ],
    );
    // Binary arguments: Redis compares BIT/BYTE, the BITOP operation, the
    // BITFIELD keywords and the field type as C strings, up to a NUL.
    for args in [
        &[&b"BITCOUNT"[..], b"{bm}s", b"0", b"-1", b"bit\0junk"][..],
        &[b"BITPOS", b"{bm}s", b"1", b"0", b"-1", b"BYTE\0"],
        &[b"BITOP", b"xor\0x", b"{bm}d", b"{bm}s"],
        &[b"BITFIELD", b"{bm}s", b"get\0x", b"u8", b"0"],
        &[b"BITFIELD", b"{bm}s", b"get", b"i8\0x", b"0"],
        &[b"BITFIELD", b"{bm}s", b"OVERFLOW", b"sat\0", b"INCRBY", b"u8", b"0", b"1000"],
        &[b"SETBIT", b"{bm}s", b"1\0", b"1"],
        &[b"BITFIELD", b"{bm}s", b"GET", b"u8", b"#1\0"],
    ] {
        check_bin(&mut d, args);
    }
    let _ = d.check(&["GET", "{bm}s"]);
    let _ = d.check(&["COMMAND", "INFO", "setbit", "getbit", "bitcount", "bitpos", "bitop", "bitfield", "bitfield_ro"]);
    let _ = d.check(&["COMMAND", "GETKEYS", "BITOP", "AND", "{bm}d", "{bm}a", "{bm}b"]);
    let _ = d.check(&["COMMAND", "GETKEYS", "BITFIELD", "{bm}d", "GET", "u8", "0"]);
}

/// BITOP's keys must share a slot (as on Redis Cluster); only moonshard
/// is checked, a standalone redis-server has no slots.
#[test]
fn bitop_keys_must_share_a_slot() {
    let ours = common::moonshard(&["--shards", "4"]);
    let mut c = ours.client();
    let crossslot = "CROSSSLOT Keys in request don't hash to the same slot";
    assert_eq!(common::q(&mut c, "BITOP AND dest a b"), crossslot);
    assert_eq!(common::q(&mut c, "BITOP NOT x y"), crossslot);
    assert_eq!(common::q(&mut c, "SETBIT {t}a 0 1"), "0");
    assert_eq!(common::q(&mut c, "BITOP OR {t}d {t}a {t}b"), "1");
}

#[test]
fn size_limits_and_oom() {
    let Some(mut d) = start() else { return };
    let big = (1u64 << 20) * 8;
    let (last, past) = ((big - 1).to_string(), big.to_string());
    script(
        &mut d,
        &[
            &["CONFIG", "SET", "proto-max-bulk-len", "1048576"],
            &["SETBIT", "{bm}big", &past, "1"],
            &["EXISTS", "{bm}big"],
            &["SETBIT", "{bm}big", &last, "1"],
            &["STRLEN", "{bm}big"],
            &["GETBIT", "{bm}big", &past],
            &["BITFIELD", "{bm}big", "SET", "u8", "8388600", "255"],
            &["BITFIELD", "{bm}big", "SET", "u8", "8388601", "255"],
            &["BITFIELD", "{bm}big", "SET", "u8", "#1048575", "170"],
            &["BITFIELD", "{bm}big", "GET", "u8", "#1048576"],
            &["BITFIELD", "{bm}big", "GET", "u16", "#524287", "GET", "i64", "8388544"],
            &["BITCOUNT", "{bm}big"],
            &["BITCOUNT", "{bm}big", "-2", "-1"],
            &["BITCOUNT", "{bm}big", "100", "8388607", "BIT"],
            &["BITPOS", "{bm}big", "1"],
            &["BITPOS", "{bm}big", "0", "-1"],
            &["BITPOS", "{bm}big", "1", "8", "-1", "BIT"],
            &["BITPOS", "{bm}big", "0", "1048570", "-1"],
            &["SETBIT", "{bm}big2", "4000000", "1"],
            &["BITOP", "AND", "{bm}and", "{bm}big", "{bm}big2"],
            &["BITCOUNT", "{bm}and"],
            &["BITOP", "XOR", "{bm}xor", "{bm}big", "{bm}big2"],
            &["BITCOUNT", "{bm}xor"],
            &["BITOP", "NOT", "{bm}not", "{bm}big"],
            &["BITCOUNT", "{bm}not"],
            &["BITPOS", "{bm}not", "0"],
            &["SETBIT", "{bm}small", "7", "1"],
            &["APPEND", "{bm}small", "x"],
            &["CONFIG", "SET", "proto-max-bulk-len", "536870912"],
            &["SETBIT", "{bm}k", "4294967296", "1"],
            &["BITFIELD", "{bm}k", "SET", "u8", "4294967289", "1"],
        ],
    );
    for key in ["{bm}big", "{bm}big2", "{bm}and", "{bm}xor", "{bm}not"] {
        let _ = d.check(&["GET", key]);
    }
    // Under maxmemory with noeviction the denyoom commands are refused;
    // reads (BITFIELD_RO, but not BITFIELD even with only GETs) still work.
    script(
        &mut d,
        &[
            &["SET", "{bm}m", "x"],
            &["CONFIG", "SET", "maxmemory", "1"],
            &["SETBIT", "{bm}m", "0", "1"],
            &["BITOP", "NOT", "{bm}m2", "{bm}m"],
            &["BITFIELD", "{bm}m", "GET", "u8", "0"],
            &["BITFIELD_RO", "{bm}m", "GET", "u8", "0"],
            &["GETBIT", "{bm}m", "1"],
            &["BITCOUNT", "{bm}m"],
            &["BITPOS", "{bm}m", "1"],
            &["CONFIG", "SET", "maxmemory", "0"],
            &["SETBIT", "{bm}m", "0", "1"],
        ],
    );
}

/// RESP3: a BITFIELD operation refused by OVERFLOW FAIL is a null.
#[test]
fn resp3_null_for_failed_overflow() {
    let Some(p) = raw_resp::start_pair(&[]) else { return };
    let mut both = raw_resp::Both::new(&p);
    both.unchecked(&["HELLO", "3"]);
    both.check(&["BITFIELD", "{bm}r", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9", "GET", "u2", "0"]);
    both.check(&["BITFIELD_RO", "{bm}r", "GET", "i2", "0"]);
}

/// WATCH sees a SETBIT or BITFIELD only when it changed a bit or grew the
/// string, as Redis signals the key only then.
#[test]
fn watch_sees_only_real_changes() {
    let Some(mut d) = start() else { return };
    let mut other = [d.ours.client(), d.theirs.client()];
    let _ = d.check(&["SETBIT", "{bm}w", "5", "1"]);
    let writes: &[&[&str]] = &[
        &["SETBIT", "{bm}w", "5", "1"],
        &["SETBIT", "{bm}w", "5", "0"],
        &["BITFIELD", "{bm}w", "SET", "u4", "0", "0"],
        &["BITFIELD", "{bm}w", "SET", "u4", "0", "3"],
        &["BITFIELD", "{bm}w", "OVERFLOW", "FAIL", "INCRBY", "u4", "0", "100"],
        &["SETBIT", "{bm}w", "100", "0"],
        &["BITFIELD", "{bm}w", "GET", "u4", "0"],
        &["BITOP", "OR", "{bm}w", "{bm}w"],
    ];
    for w in writes {
        let _ = d.check(&["WATCH", "{bm}w"]);
        let (ours, theirs) = (common::run_str(&mut other[0], w), common::run_str(&mut other[1], w));
        assert_eq!(ours, theirs, "{w:?}");
        let _ = d.check(&["MULTI"]);
        let _ = d.check(&["GET", "{bm}w"]);
        let _ = d.check(&["EXEC"]);
    }
}
