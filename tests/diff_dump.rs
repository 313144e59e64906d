//! DUMP, RESTORE, MIGRATE and RDB files against a real redis-server 7.0
//! (both started with `--enable-debug-command yes`):
//! - seeded random values of every type and size class built by the same
//!   commands on both servers: DUMP payloads byte-equal where Redis's layout
//!   depends only on the content, and each server's payload RESTOREd on
//!   both, compared by type, encoding, DEBUG DIGEST-VALUE, XINFO STREAM FULL
//!   and a second DUMP;
//! - RESTORE's options and every error, damaged payloads refused alike;
//! - MIGRATE from moonshard and from redis-server into a third server, and
//!   from redis-server into moonshard, with COPY, REPLACE, KEYS, AUTH, AUTH2;
//! - RDB files: one written by `persist::rdb::RdbWriter` accepted by
//!   `redis-check-rdb` and loaded by redis-server with the same DEBUG
//!   DIGEST, and one saved by redis-server read by `RdbReader` and loaded
//!   into moonshard (through RESTORE) with the same digest and functions.

mod common;

use common::{run, run_str, Diff, Proc};
use moonshard::persist::crc64::crc64;
use moonshard::persist::rdb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;

fn start() -> Option<Diff> {
    Diff::start_with(&["--shards", "4", "--enable-debug-command", "yes"], &["--enable-debug-command", "yes"])
}

type Cmd = Vec<Vec<u8>>;

fn c(parts: &[&[u8]]) -> Cmd {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn refs(cmd: &Cmd) -> Vec<&[u8]> {
    cmd.iter().map(|a| &a[..]).collect()
}

/// Sends `cmd` to both servers and asserts equal replies.
#[track_caller]
fn check(d: &mut Diff, cmd: &Cmd) {
    let _ = checkv(d, cmd);
}

/// `check`, returning the reply.
#[track_caller]
fn checkv(d: &mut Diff, cmd: &Cmd) -> Result<Value, String> {
    let a = run(&mut d.a, &refs(cmd));
    let b = run(&mut d.b, &refs(cmd));
    assert_eq!(a, b, "moonshard and redis-server differ on {:?}", show_cmd(cmd));
    a
}

fn show_cmd(cmd: &Cmd) -> Vec<String> {
    cmd.iter().map(|a| String::from_utf8_lossy(&a[..a.len().min(60)]).into_owned()).collect()
}

fn bulk(v: Result<Value, String>) -> Vec<u8> {
    match v {
        Ok(Value::BulkString(b)) => b,
        other => panic!("expected a bulk reply, got {other:?}"),
    }
}

fn dump(con: &mut redis::Connection, key: &[u8]) -> Vec<u8> {
    bulk(run(con, &[b"DUMP", key]))
}

/// Random bytes, `lo..hi` of them.
fn rand_bytes(rng: &mut StdRng, lo: usize, hi: usize) -> Vec<u8> {
    let n = rng.gen_range(lo..hi);
    (0..n).map(|_| rng.gen()).collect()
}

/// An element of every kind Redis encodes differently.
fn element(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0 => rng.gen_range(-300..300).to_string().into_bytes(),
        1 => rng.gen::<i64>().to_string().into_bytes(),
        2 => rng.gen_range(-5_000_000..5_000_000i64).to_string().into_bytes(),
        3 => format!("{:03}", rng.gen_range(0..50)).into_bytes(),
        4 => Vec::new(),
        5 => rand_bytes(rng, 1, 30),
        6 => "ab".repeat(rng.gen_range(11..60)).into_bytes(),
        _ => format!("e{}", rng.gen_range(0..10_000)).into_bytes(),
    }
}

fn score(rng: &mut StdRng) -> Vec<u8> {
    let s = match rng.gen_range(0..8) {
        0 => ["0", "-0", "inf", "-inf", "1e300", "0.1", "3.141592653589793", "4611686018427387904", "1e18"]
            [rng.gen_range(0..9)]
        .to_string(),
        1 | 2 => rng.gen_range(-1000..1000).to_string(),
        _ => format!("{}", rng.gen_range(-1e6..1e6f64)),
    };
    s.into_bytes()
}

/// The commands building `key`, and whether redis-server's DUMP of the
/// result depends only on its content (not on a hash table's order, on
/// the history of a list's nodes, or on times).
fn build(rng: &mut StdRng, key: &[u8], class: usize, ms: &mut u64) -> (Vec<Cmd>, bool) {
    let k = key;
    let mut cmds = Vec::new();
    let det = match class {
        // Strings of every form: integers, binary, empty, compressible, long.
        0 => {
            let v = match rng.gen_range(0..9) {
                0 => rng.gen_range(-100_000..100_000).to_string().into_bytes(),
                1 => i64::MIN.to_string().into_bytes(),
                2 => b"12345678901".to_vec(),
                3 => Vec::new(),
                4 => rand_bytes(rng, 1, 200),
                5 => "x".repeat(rng.gen_range(21..3000)).into_bytes(),
                6 => rand_bytes(rng, 20_000, 20_001),
                7 => format!("{:?}", (0..rng.gen_range(5..400)).collect::<Vec<_>>()).into_bytes(),
                _ => element(rng),
            };
            cmds.push(c(&[b"SET", k, &v]));
            true
        }
        // Lists built at the tail (deterministic), small and large, with
        // elements past a node's size.
        1 => {
            let n = if rng.gen_bool(0.4) { rng.gen_range(300..1500) } else { rng.gen_range(1..30) };
            let mut cmd = c(&[b"RPUSH", k]);
            cmd.extend((0..n).map(|_| element(rng)));
            if rng.gen_bool(0.2) {
                cmd.push(vec![b'L'; 9000]);
                cmd.push(b"after".to_vec());
            }
            cmds.push(cmd);
            true
        }
        // A list built at the head: its nodes depend on the history.
        2 => {
            let mut cmd = c(&[b"LPUSH", k]);
            cmd.extend((0..rng.gen_range(1..600)).map(|_| element(rng)));
            cmds.push(cmd);
            cmds.push(c(&[b"RPUSH", k, b"tail"]));
            false
        }
        // Integer sets: an intset, or past 512 members a table.
        3 => {
            let n = if rng.gen_bool(0.3) { rng.gen_range(513..700) } else { rng.gen_range(1..100) };
            let mut cmd = c(&[b"SADD", k]);
            let wide = rng.gen_range(0..3);
            cmd.extend((0..n).map(|_| {
                match wide {
                    0 => rng.gen_range(-30_000..30_000i64),
                    1 => rng.gen_range(-3_000_000_000..3_000_000_000i64),
                    _ => rng.gen(),
                }
                .to_string()
                .into_bytes()
            }));
            cmds.push(cmd);
            n <= 512
        }
        // Sets of strings: a hash table (one member: deterministic).
        4 => {
            let n = if rng.gen_bool(0.2) { 0 } else { rng.gen_range(1..40) };
            let mut cmd = c(&[b"SADD", k]);
            cmd.extend((0..n).map(|_| element(rng)));
            cmd.push(b"not-an-int".to_vec());
            cmds.push(cmd);
            n == 0
        }
        // Sorted sets: listpack, skiplist past 128 members or with a long member.
        5 => {
            let n = if rng.gen_bool(0.3) { rng.gen_range(129..400) } else { rng.gen_range(1..60) };
            let mut cmd = c(&[b"ZADD", k]);
            for i in 0..n {
                cmd.push(score(rng));
                let mut m = element(rng);
                m.extend_from_slice(format!(":{i}").as_bytes());
                cmd.push(m);
            }
            cmds.push(cmd);
            if rng.gen_bool(0.2) {
                cmds.push(c(&[b"ZADD", k, b"1", &[b'y'; 80]]));
            }
            if rng.gen_bool(0.5) {
                cmds.push(c(&[b"ZINCRBY", k, b"2.5", b"newcomer"]));
                cmds.push(c(&[b"ZREMRANGEBYRANK", k, b"0", b"0"]));
            }
            true
        }
        // Hashes: listpack (deterministic), or a table past 512 fields or 64 bytes.
        6 => {
            let big = rng.gen_bool(0.3);
            let n = if big { rng.gen_range(513..700) } else { rng.gen_range(1..80) };
            let mut cmd = c(&[b"HSET", k]);
            let mut longest = 0;
            for i in 0..n {
                cmd.push(format!("f{i}").into_bytes());
                let v = element(rng);
                longest = longest.max(v.len());
                cmd.push(v);
            }
            cmds.push(cmd);
            let long = rng.gen_bool(0.15);
            if long {
                cmds.push(c(&[b"HSET", k, b"long", &[b'v'; 100]]));
            }
            cmds.push(c(&[b"HINCRBY", k, b"counter", b"7"]));
            cmds.push(c(&[b"HDEL", k, b"f0"]));
            !big && !long && longest <= 64
        }
        // Streams: one or many nodes, deleted entries, trimmed, groups
        // without consumers (no times), IDs set with XSETID.
        _ => {
            let n = if rng.gen_bool(0.4) { rng.gen_range(100..400) } else { rng.gen_range(1..20) };
            let names: Vec<Vec<u8>> = vec![b"temp".to_vec(), b"f".to_vec(), element(rng)];
            for i in 0..n {
                *ms += rng.gen_range(0..3);
                let mut cmd = c(&[b"XADD", k, format!("{}-{}", ms, i).as_bytes()]);
                let same = rng.gen_bool(0.7);
                for (j, name) in names.iter().enumerate().take(if same { 2 } else { rng.gen_range(1..4) }) {
                    cmd.push(if same { name.clone() } else { format!("g{j}").into_bytes() });
                    cmd.push(element(rng));
                }
                cmds.push(cmd);
            }
            if n > 3 {
                cmds.push(c(&[b"XDEL", k, format!("{}-1", ms).as_bytes(), format!("{}-2", ms).as_bytes()]));
                cmds.push(c(&[b"XTRIM", k, b"MINID", format!("{}", *ms - 5).as_bytes()]));
            }
            cmds.push(c(&[b"XGROUP", b"CREATE", k, b"grp", b"0"]));
            cmds.push(c(&[b"XGROUP", b"CREATE", k, b"late", b"$", b"ENTRIESREAD", b"3"]));
            true
        }
    };
    (cmds, det)
}

const CLASSES: usize = 8;

/// Asserts the two servers hold the same value under `key`.
#[track_caller]
fn same_value(d: &mut Diff, key: &[u8]) {
    let t = checkv(d, &c(&[b"TYPE", key]));
    check(d, &c(&[b"OBJECT", b"ENCODING", key]));
    check(d, &c(&[b"DEBUG", b"DIGEST-VALUE", key]));
    check(d, &c(&[b"PEXPIRETIME", key]));
    if matches!(&t, Ok(Value::SimpleString(s)) if s == "stream") {
        let (a, b) =
            (run(&mut d.a, &[b"XINFO", b"STREAM", key, b"FULL"]), run(&mut d.b, &[b"XINFO", b"STREAM", key, b"FULL"]));
        assert_eq!(mask(a), mask(b), "XINFO STREAM FULL {}", String::from_utf8_lossy(key));
    }
}

/// XINFO STREAM FULL without radix-tree-nodes (an internal figure of Redis's tree).
fn mask(v: Result<Value, String>) -> Result<Value, String> {
    v.map(|v| match v {
        Value::Array(items) => {
            let mut out = Vec::new();
            let mut hide = false;
            for it in items {
                out.push(if hide { Value::Nil } else { it.clone() });
                hide = matches!(&it, Value::BulkString(b) if b == b"radix-tree-nodes");
            }
            Value::Array(out)
        }
        other => other,
    })
}

#[test]
fn payloads_byte_equal_and_restored_both_ways() {
    let Some(mut d) = start() else { return };
    let mut rng = StdRng::seed_from_u64(2024);
    let mut ms = 1_000u64;
    let mut equal = 0;
    for i in 0..110 {
        let class = i % CLASSES;
        let key = format!("k{i}:{{t{}}}", i % 7).into_bytes();
        let (cmds, det) = build(&mut rng, &key, class, &mut ms);
        for cmd in &cmds {
            check(&mut d, cmd);
        }
        if rng.gen_bool(0.3) {
            check(&mut d, &c(&[b"PEXPIREAT", &key, b"4102444800000"]));
        }
        let ours = dump(&mut d.a, &key);
        let theirs = dump(&mut d.b, &key);
        if det {
            assert_eq!(ours, theirs, "DUMP {} (class {class}) differs", String::from_utf8_lossy(&key));
            equal += 1;
            // DEBUG OBJECT's serializedlength is the size of that encoding.
            let len = |con: &mut redis::Connection| match run(con, &[b"DEBUG", b"OBJECT", &key]) {
                Ok(Value::SimpleString(s)) => {
                    s.split(' ').find(|f| f.starts_with("serializedlength:")).map(str::to_string)
                }
                other => panic!("{other:?}"),
            };
            assert_eq!(len(&mut d.a), len(&mut d.b));
        }
        // Each server's payload restored on both.
        for (prefix, payload) in [(&b"from-redis:"[..], &theirs), (&b"from-moonshard:"[..], &ours)] {
            let mut copy = prefix.to_vec();
            copy.extend_from_slice(&key);
            assert_eq!(checkv(&mut d, &c(&[b"RESTORE", &copy, b"4102444800000", payload, b"ABSTTL"])), Ok(Value::Okay));
            same_value(&mut d, &copy);
            // Re-dumped after the round trip: equal where the layout is the content's.
            if det {
                assert_eq!(dump(&mut d.a, &copy), dump(&mut d.b, &copy), "re-DUMP {}", String::from_utf8_lossy(&copy));
            }
        }
        same_value(&mut d, &key);
    }
    assert!(equal > 60, "too few byte-comparable values: {equal}");
    check(&mut d, &c(&[b"DEBUG", b"DIGEST"]));
    // Without compression, and with compressed list nodes.
    check(&mut d, &c(&[b"CONFIG", b"SET", b"rdbcompression", b"no", b"list-compress-depth", b"1"]));
    for i in 0..30 {
        let key = format!("n{i}").into_bytes();
        let class = [0, 1, 5, 6, 7][i % 5];
        let (cmds, det) = build(&mut rng, &key, class, &mut ms);
        for cmd in &cmds {
            check(&mut d, cmd);
        }
        let ours = dump(&mut d.a, &key);
        if det {
            assert_eq!(ours, dump(&mut d.b, &key), "DUMP {} without compression", String::from_utf8_lossy(&key));
        }
    }
    // Another fill for list nodes.
    check(&mut d, &c(&[b"CONFIG", b"SET", b"list-max-listpack-size", b"7", b"list-compress-depth", b"0"]));
    let (cmds, _) = build(&mut rng, b"fill7", 1, &mut ms);
    for cmd in &cmds {
        check(&mut d, cmd);
    }
    assert_eq!(dump(&mut d.a, b"fill7"), dump(&mut d.b, b"fill7"));
}

/// A payload with a valid footer around `body`.
fn sealed(body: &[u8], version: u16) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

#[test]
fn restore_options_and_errors() {
    let Some(mut d) = start() else { return };
    check(&mut d, &c(&[b"RPUSH", b"l", b"a", b"b", b"c"]));
    check(&mut d, &c(&[b"SET", b"s", b"hello"]));
    let pl = dump(&mut d.b, b"l");
    let ps = dump(&mut d.b, b"s");
    assert_eq!(pl, dump(&mut d.a, b"l"));
    let cases: Vec<Cmd> = vec![
        c(&[b"DUMP", b"missing"]),
        c(&[b"DUMP"]),
        c(&[b"DUMP", b"a", b"b"]),
        c(&[b"RESTORE", b"l", b"0", &pl]),
        c(&[b"RESTORE", b"new", b"0"]),
        c(&[b"RESTORE", b"new", b"-1", &pl]),
        c(&[b"RESTORE", b"new", b"x", &pl]),
        c(&[b"RESTORE", b"new", b"0", &pl, b"BOGUS"]),
        c(&[b"RESTORE", b"new", b"0", &pl, b"IDLETIME"]),
        c(&[b"RESTORE", b"new", b"0", &pl, b"IDLETIME", b"-1"]),
        c(&[b"RESTORE", b"new", b"0", &pl, b"IDLETIME", b"x"]),
        c(&[b"RESTORE", b"new", b"0", &pl, b"FREQ", b"256"]),
        c(&[b"RESTORE", b"new", b"0", &pl, b"FREQ", b"-1"]),
        c(&[b"RESTORE", b"new", b"0", &pl, b"FREQ", b"1", b"IDLETIME", b"1"]),
        c(&[b"RESTORE", b"new", b"0", &pl, b"IDLETIME", b"1", b"FREQ", b"1"]),
        // The key check comes before the TTL and payload checks.
        c(&[b"RESTORE", b"l", b"-1", b"junk"]),
        c(&[b"RESTORE", b"new", b"0", b""]),
        c(&[b"RESTORE", b"new", b"0", b"short"]),
        c(&[b"RESTORE", b"new", b"0", &pl[..pl.len() - 1]]),
        c(&[b"RESTORE", b"new", b"0", &sealed(&pl[..pl.len() - 10], 11)]),
        c(&[b"RESTORE", b"new", b"0", &sealed(&pl[..pl.len() - 10], 9)]),
        c(&[b"RESTORE", b"new", b"0", &sealed(b"\xc8\x00", 10)]),
        c(&[b"RESTORE", b"new", b"0", &sealed(b"\x12\x00", 10)]),
        c(&[b"RESTORE", b"new", b"0", &sealed(b"\x06\x01", 10)]),
        c(&[b"RESTORE", b"new", b"0", &sealed(b"", 10)]),
        c(&[b"TYPE", b"new"]),
        // Old encodings redis-server still reads: a plain list, a set.
        c(&[b"RESTORE", b"old-list", b"0", &sealed(b"\x01\x02\x01a\xc0\x05", 6)]),
        c(&[b"LRANGE", b"old-list", b"0", b"-1"]),
        c(&[b"RESTORE", b"old-set", b"0", &sealed(b"\x02\x02\xc0\x05\x01x", 6)]),
        c(&[b"OBJECT", b"ENCODING", b"old-set"]),
        // REPLACE, ABSTTL, a TTL in the past.
        c(&[b"RESTORE", b"l", b"0", &ps, b"REPLACE"]),
        c(&[b"GET", b"l"]),
        c(&[b"RESTORE", b"l", b"1", &pl, b"REPLACE", b"ABSTTL"]),
        c(&[b"EXISTS", b"l"]),
        c(&[b"RESTORE", b"gone", b"1", &pl, b"ABSTTL"]),
        c(&[b"EXISTS", b"gone"]),
        c(&[b"RESTORE", b"t", b"4102444800123", &pl, b"ABSTTL"]),
        c(&[b"PEXPIRETIME", b"t"]),
        c(&[b"RESTORE", b"t2", b"0", &pl, b"replace", b"absttl", b"idletime", b"1000"]),
        c(&[b"OBJECT", b"IDLETIME", b"t2"]),
        c(&[b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lfu"]),
        c(&[b"RESTORE", b"t3", b"0", &pl, b"FREQ", b"100"]),
        c(&[b"OBJECT", b"FREQ", b"t3"]),
        c(&[b"CONFIG", b"SET", b"maxmemory-policy", b"noeviction"]),
        c(&[b"RESTORE", b"wrong", b"0", &ps]),
        c(&[b"LPUSH", b"wrong", b"x"]),
        c(&[b"COMMAND", b"INFO", b"dump", b"restore", b"restore-asking", b"migrate"]),
        c(&[b"COMMAND", b"GETKEYS", b"MIGRATE", b"h", b"1", b"", b"0", b"0", b"KEYS", b"a", b"b"]),
        c(&[b"COMMAND", b"GETKEYS", b"MIGRATE", b"h", b"1", b"k", b"0", b"0", b"AUTH", b"KEYS"]),
        c(&[b"RESTORE-ASKING", b"ra", b"0", &ps]),
        c(&[b"GET", b"ra"]),
    ];
    for cmd in &cases {
        check(&mut d, cmd);
    }
    // IDLETIME applies under LRU (and keeps counting).
    let idle = run_str(&mut d.a, &["OBJECT", "IDLETIME", "t2"]).unwrap();
    assert!(matches!(idle, Value::Int(n) if (1000..1005).contains(&n)), "{idle:?}");
}

#[test]
fn damaged_payloads_are_refused_alike() {
    let Some(mut d) = start() else { return };
    check(&mut d, &c(&[b"CONFIG", b"SET", b"sanitize-dump-payload", b"yes"]));
    let mut rng = StdRng::seed_from_u64(77);
    let mut ms = 1;
    let (mut refused, mut stricter) = (0, 0);
    for i in 0..40 {
        let key = format!("src{i}").into_bytes();
        let (cmds, _) = build(&mut rng, &key, i % CLASSES, &mut ms);
        for cmd in &cmds {
            check(&mut d, cmd);
        }
        let p = dump(&mut d.b, &key);
        let body = &p[..p.len() - 10];
        // A flipped bit without a new CRC, a truncation: the footer check.
        let mut flipped = p.clone();
        let at = rng.gen_range(0..p.len());
        flipped[at] ^= 1 << rng.gen_range(0..8);
        check(&mut d, &c(&[b"RESTORE", b"bad", b"0", &flipped]));
        check(&mut d, &c(&[b"RESTORE", b"bad", b"0", &p[..rng.gen_range(0..p.len())]]));
        // Damage behind a valid CRC: whatever redis-server refuses, moonshard
        // refuses too; what it accepts moonshard accepts with the same
        // content, or refuses (it checks more, e.g. member order).
        for _ in 0..6 {
            let mut b = body.to_vec();
            match rng.gen_range(0..3) {
                0 => {
                    let at = rng.gen_range(1..b.len());
                    b[at] = rng.gen();
                }
                1 => b.truncate(rng.gen_range(1..b.len())),
                _ => {
                    let at = rng.gen_range(1..b.len());
                    b.insert(at, rng.gen());
                }
            }
            let payload = sealed(&b, 10);
            let cmd = c(&[b"RESTORE", b"bad", b"0", &payload, b"REPLACE"]);
            let ours = run(&mut d.a, &refs(&cmd));
            let theirs = run(&mut d.b, &refs(&cmd));
            match (&ours, &theirs) {
                (Err(x), Err(y)) => {
                    assert_eq!(x, y);
                    refused += 1;
                }
                (Ok(_), Ok(_)) => same_value(&mut d, b"bad"),
                (Err(x), Ok(_)) => {
                    assert_eq!(x, "ERR Bad data format");
                    stricter += 1;
                    check(&mut d, &c(&[b"DEL", b"bad"]));
                }
                (Ok(_), Err(e)) => panic!("moonshard accepted a payload redis-server refuses ({e}): {b:?}"),
            }
        }
    }
    assert!(refused > 50, "only {refused} damaged payloads refused by both");
    eprintln!("damaged payloads: {refused} refused by both, {stricter} refused by moonshard only");
}

// ------------------------------------------------------------------ MIGRATE

/// MIGRATE from both servers into a third one (`target`): each into its
/// own database there, with equal replies; then the values compared there.
#[test]
fn migrate_both_ways() {
    let Some(mut d) = start() else { return };
    let Some(target) = common::redis_server_with(&["--enable-debug-command", "yes"]) else { return };
    let mut t = target.client();
    let tport = target.port.to_string();
    let mut rng = StdRng::seed_from_u64(5);
    let mut ms = 1;
    let mut keys = Vec::new();
    for i in 0..16 {
        let key = format!("{{m}}k{i}").into_bytes();
        let (cmds, _) = build(&mut rng, &key, i % CLASSES, &mut ms);
        for cmd in &cmds {
            check(&mut d, cmd);
        }
        keys.push(key);
    }
    check(&mut d, &c(&[b"PEXPIRE", &keys[0], b"100000"]));
    // ours -> target db 1, theirs -> target db 2, same command otherwise.
    let both = |d: &mut Diff, tail: &[&[u8]]| {
        let mk = |db: &[u8]| {
            let mut v = c(&[b"MIGRATE", b"127.0.0.1", tport.as_bytes()]);
            v.push(tail[0].to_vec());
            v.push(db.to_vec());
            v.extend(tail[1..].iter().map(|a| a.to_vec()));
            v
        };
        let a = run(&mut d.a, &refs(&mk(b"1")));
        let b = run(&mut d.b, &refs(&mk(b"2")));
        assert_eq!(a, b, "MIGRATE {:?}", show_cmd(&c(tail)));
        a
    };
    fn same_on_target(t: &mut redis::Connection, key: &[u8]) {
        run(t, &[b"SELECT", b"1"]).unwrap();
        let one = run(t, &[b"DEBUG", b"DIGEST-VALUE", key]);
        let one_ttl = run(t, &[b"PTTL", key]);
        run(t, &[b"SELECT", b"2"]).unwrap();
        let two = run(t, &[b"DEBUG", b"DIGEST-VALUE", key]);
        let two_ttl = run(t, &[b"PTTL", key]);
        assert_eq!(one, two, "{}", String::from_utf8_lossy(key));
        match (one_ttl, two_ttl) {
            (Ok(Value::Int(x)), Ok(Value::Int(y))) => assert!((x - y).abs() < 1000, "{x} {y}"),
            other => panic!("{other:?}"),
        }
    }
    let timeout: &[u8] = b"5000";
    assert_eq!(both(&mut d, &[b"nokey", timeout]), Ok(Value::SimpleString("NOKEY".into())));
    assert_eq!(both(&mut d, &[&keys[0], timeout]), Ok(Value::Okay));
    check(&mut d, &c(&[b"EXISTS", &keys[0]]));
    same_on_target(&mut t, &keys[0]);
    assert_eq!(both(&mut d, &[&keys[1], timeout, b"COPY"]), Ok(Value::Okay));
    check(&mut d, &c(&[b"EXISTS", &keys[1]]));
    same_on_target(&mut t, &keys[1]);
    // Already there: the target's error, then REPLACE.
    both(&mut d, &[&keys[1], timeout, b"COPY"]).unwrap_err();
    assert_eq!(both(&mut d, &[&keys[1], timeout, b"REPLACE"]), Ok(Value::Okay));
    // KEYS, some missing; errors of the arguments.
    let k: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    assert_eq!(
        both(&mut d, &[b"", timeout, b"KEYS", k[2], b"{m}missing", k[3], k[4], k[5], k[6], k[7]]),
        Ok(Value::Okay)
    );
    for key in &keys[2..8] {
        same_on_target(&mut t, key);
    }
    both(&mut d, &[k[8], timeout, b"KEYS", k[9]]).unwrap_err();
    both(&mut d, &[k[8], b"x"]).unwrap_err();
    both(&mut d, &[k[8], timeout, b"AUTH"]).unwrap_err();
    both(&mut d, &[k[8], timeout, b"BOGUS"]).unwrap_err();
    // Keys in different slots: refused here as for any multi-key command.
    let cross = c(&[b"MIGRATE", b"127.0.0.1", tport.as_bytes(), b"", b"0", b"100", b"KEYS", b"a", b"b"]);
    assert_eq!(run(&mut d.a, &refs(&cross)).unwrap_err(), "CROSSSLOT Keys in request don't hash to the same slot");
    // AUTH and AUTH2 against a server with a password (fresh connections).
    let Some(locked) = common::redis_server_with(&["--enable-debug-command", "yes", "--requirepass", "pw"]) else {
        return;
    };
    let lport = locked.port.to_string();
    let auth = |d: &mut Diff, key: &[u8], tail: &[&[u8]]| {
        let mk = |db: &[u8]| {
            let mut v = c(&[b"MIGRATE", b"127.0.0.1", lport.as_bytes(), key, db, b"5000"]);
            v.extend(tail.iter().map(|a| a.to_vec()));
            v
        };
        let a = run(&mut d.a, &refs(&mk(b"1")));
        let b = run(&mut d.b, &refs(&mk(b"2")));
        assert_eq!(a, b, "MIGRATE {:?}", show_cmd(&c(tail)));
        a
    };
    assert_eq!(
        auth(&mut d, k[8], &[]).unwrap_err(),
        "ERR Target instance replied with error: NOAUTH Authentication required."
    );
    assert_eq!(
        auth(&mut d, k[8], &[b"AUTH", b"wrong"]).unwrap_err(),
        "ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(auth(&mut d, k[8], &[b"AUTH", b"pw", b"COPY"]), Ok(Value::Okay));
    assert_eq!(auth(&mut d, k[9], &[b"AUTH2", b"default", b"pw"]), Ok(Value::Okay));
    check(&mut d, &c(&[b"EXISTS", k[8], k[9]]));
    let mut l = locked.client();
    run(&mut l, &[b"AUTH", b"pw"]).unwrap();
    same_on_target(&mut l, &keys[8]);
    same_on_target(&mut l, &keys[9]);
    // Nothing listens there.
    let closed = common::free_port().to_string();
    check(&mut d, &c(&[b"MIGRATE", b"127.0.0.1", closed.as_bytes(), k[10], b"0", b"1000"]));
    check(&mut d, &c(&[b"EXISTS", k[10]]));

    // redis-server migrating into moonshard: RESTORE, SELECT and AUTH as Redis sends them.
    let ours_port = d.ours.port.to_string();
    for (i, key) in keys[10..].iter().enumerate() {
        let mut v =
            c(&[b"MIGRATE", b"127.0.0.1", ours_port.as_bytes(), b"", b"3", b"5000", b"COPY", b"REPLACE", b"KEYS"]);
        v.push(key.clone());
        if i % 2 == 1 {
            v.insert(8, b"AUTH".to_vec());
            v.insert(9, b"nopass-needed".to_vec());
        }
        let r = run(&mut d.b, &refs(&v));
        if i % 2 == 1 {
            assert!(r.unwrap_err().contains("Target instance replied with error"));
            continue;
        }
        assert_eq!(r, Ok(Value::Okay));
        run(&mut d.a, &[b"SELECT", b"3"]).unwrap();
        let got = run(&mut d.a, &[b"DEBUG", b"DIGEST-VALUE", key]);
        run(&mut d.a, &[b"SELECT", b"0"]).unwrap();
        assert_eq!(got, run(&mut d.b, &[b"DEBUG", b"DIGEST-VALUE", key]));
    }
    drop(target);
    drop(locked);
}

// ---------------------------------------------------------------- RDB files

fn tmpdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("moonshard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn keys(con: &mut redis::Connection) -> Vec<Vec<u8>> {
    match run_str(con, &["KEYS", "*"]) {
        Ok(Value::Array(v)) => v.into_iter().map(|k| bulk(Ok(k))).collect(),
        other => panic!("{other:?}"),
    }
}

const LIB: &str = "#!lua name=mylib\nredis.register_function('echo1', function(keys, args) return args[1] end)";

/// An RDB file written by `RdbWriter` from moonshard's values: accepted by
/// redis-check-rdb, loaded by redis-server with the same digest.
#[test]
fn rdb_written_here_loads_in_redis() {
    if !common::has_program("redis-check-rdb") {
        eprintln!("*** SKIPPED: redis-check-rdb not installed ***");
        return;
    }
    let Some(mut d) = start() else { return };
    let mut rng = StdRng::seed_from_u64(31);
    let mut ms = 1;
    check(&mut d, &c(&[b"FUNCTION", b"LOAD", LIB.as_bytes()]));
    let dbs = [0usize, 2, 9];
    for db in dbs {
        check(&mut d, &c(&[b"SELECT", db.to_string().as_bytes()]));
        for i in 0..40 {
            let key = format!("d{db}:{i}").into_bytes();
            let (cmds, _) = build(&mut rng, &key, i % CLASSES, &mut ms);
            for cmd in &cmds {
                check(&mut d, cmd);
            }
            if i % 5 == 0 {
                check(&mut d, &c(&[b"PEXPIREAT", &key, b"4102444800000"]));
            }
        }
    }
    let digest = checkv(&mut d, &c(&[b"DEBUG", b"DIGEST"]));

    // Moonshard's values, through DUMP, into a file.
    let dir = tmpdir("rdbw");
    let path = dir.join("dump.rdb");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = rdb::RdbWriter::new(std::io::BufWriter::new(file), &rdb::WriterOptions::default()).unwrap();
    w.function(LIB.as_bytes()).unwrap();
    let opts = moonshard::storage::codec::DecodeOptions::default();
    let mut per_db = Vec::new();
    for db in dbs {
        run_str(&mut d.a, &["SELECT", &db.to_string()]).unwrap();
        let mut entries = Vec::new();
        for k in keys(&mut d.a) {
            let p = dump(&mut d.a, &k);
            let value = rdb::restore_payload(&p, &opts).unwrap();
            let expire = match run(&mut d.a, &[b"PEXPIRETIME", &k]) {
                Ok(Value::Int(t)) if t > 0 => Some(t as u64),
                _ => None,
            };
            entries.push((k, value, expire));
        }
        per_db.push((db, entries));
    }
    // The first database as a whole (with its sizing hint), the others'
    // keys interleaved, as a snapshot walk may emit them.
    let (first_db, first) = per_db.remove(0);
    w.select_db(first_db, first.len() as u64, 0).unwrap();
    for (k, v, e) in &first {
        w.entry(k, v, *e, rdb::Access::Idle(3)).unwrap();
    }
    let longest = per_db.iter().map(|(_, e)| e.len()).max().unwrap_or(0);
    for i in 0..longest {
        for (db, entries) in &per_db {
            if let Some((k, v, e)) = entries.get(i) {
                w.entry_at(*db, k, v, *e, rdb::Access::Freq(7)).unwrap();
            }
        }
    }
    w.finish().unwrap();
    let out = std::process::Command::new("redis-check-rdb").arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("RDB looks OK"), "redis-check-rdb: {text}");

    let loaded = common::redis_server_with(&[
        "--enable-debug-command",
        "yes",
        "--dir",
        dir.to_str().unwrap(),
        "--dbfilename",
        "dump.rdb",
    ])
    .unwrap();
    let mut l = loaded.client();
    assert_eq!(run_str(&mut l, &["DEBUG", "DIGEST"]), digest);
    assert_eq!(run_str(&mut l, &["FCALL", "echo1", "0", "hi"]), Ok(Value::BulkString(b"hi".to_vec())));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An RDB file saved by redis-server, read by `RdbReader` and loaded into
/// a fresh moonshard (RESTORE with the absolute expiry): same digest, same
/// functions, and the usage information Redis saved.
#[test]
fn rdb_saved_by_redis_reads_here() {
    let dir = tmpdir("rdbr");
    let Some(theirs) = common::redis_server_with(&[
        "--enable-debug-command",
        "yes",
        "--dir",
        dir.to_str().unwrap(),
        "--maxmemory-policy",
        "allkeys-lru",
    ]) else {
        return;
    };
    let mut r = theirs.client();
    let mut rng = StdRng::seed_from_u64(8);
    let mut ms = 1;
    run_str(&mut r, &["FUNCTION", "LOAD", LIB]).unwrap();
    for db in [0, 4, 15] {
        run_str(&mut r, &["SELECT", &db.to_string()]).unwrap();
        for i in 0..40 {
            let key = format!("r{db}:{i}").into_bytes();
            let (cmds, _) = build(&mut rng, &key, i % CLASSES, &mut ms);
            for cmd in &cmds {
                run(&mut r, &refs(cmd)).unwrap();
            }
            if i % 4 == 0 {
                run(&mut r, &[b"PEXPIREAT", &key, b"4102444800000"]).unwrap();
            }
        }
        // A consumer group with pending entries and consumers.
        run_str(&mut r, &["XADD", "{s}stream", "*", "a", "1"]).unwrap();
        run_str(&mut r, &["XGROUP", "CREATE", "{s}stream", "g", "0"]).ok();
        run_str(&mut r, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "{s}stream", ">"]).unwrap();
    }
    let digest = run_str(&mut r, &["DEBUG", "DIGEST"]);
    assert_eq!(run_str(&mut r, &["SAVE"]), Ok(Value::Okay));

    let ours = common::moonshard(&["--shards", "3", "--enable-debug-command", "yes"]);
    let mut m = ours.client();
    let file = std::fs::File::open(dir.join("dump.rdb")).unwrap();
    let reader = rdb::RdbReader::new(std::io::BufReader::new(file), rdb::ReaderOptions::default()).unwrap();
    let (mut entries, mut idle, mut aux) = (0, 0, Vec::new());
    let mut db = usize::MAX;
    for item in reader {
        match item.unwrap() {
            rdb::Item::Aux { key, .. } => aux.push(String::from_utf8_lossy(&key).into_owned()),
            rdb::Item::Function(code) => {
                assert_eq!(run(&mut m, &[b"FUNCTION", b"LOAD", &code]), Ok(Value::BulkString(b"mylib".to_vec())))
            }
            rdb::Item::Entry(e) => {
                if e.db != db {
                    db = e.db;
                    run_str(&mut m, &["SELECT", &db.to_string()]).unwrap();
                }
                entries += 1;
                idle += e.idle_secs.is_some() as usize;
                let p = rdb::dump_payload(&e.value, &Default::default());
                let ttl = e.expire_ms.unwrap_or(0).to_string();
                assert_eq!(run(&mut m, &[b"RESTORE", &e.key, ttl.as_bytes(), &p, b"ABSTTL"]), Ok(Value::Okay));
            }
            _ => {}
        }
    }
    assert_eq!(entries, 123);
    assert_eq!(idle, entries, "every key carries IDLE under an LRU policy");
    assert_eq!(aux, ["redis-ver", "redis-bits", "ctime", "used-mem", "aof-base"]);
    assert_eq!(run_str(&mut m, &["DEBUG", "DIGEST"]), digest);
    assert_eq!(run_str(&mut m, &["FCALL", "echo1", "0", "hi"]), Ok(Value::BulkString(b"hi".to_vec())));
    // XINFO STREAM FULL (group, PEL, consumer) is the same on both.
    for s in [&mut r, &mut m] {
        run_str(s, &["SELECT", "15"]).unwrap();
    }
    let a = mask(run_str(&mut r, &["XINFO", "STREAM", "{s}stream", "FULL"]));
    let b = mask(run_str(&mut m, &["XINFO", "STREAM", "{s}stream", "FULL"]));
    assert_eq!(a, b);
    drop(theirs);
    drop::<Proc>(ours);
    let _ = std::fs::remove_dir_all(&dir);
}

/// FUNCTION DUMP payloads are Redis's: byte-equal for one library, and
/// each server's payload restored on both.
#[test]
fn function_dump_and_restore() {
    let Some(mut d) = start() else { return };
    check(&mut d, &c(&[b"FUNCTION", b"LOAD", LIB.as_bytes()]));
    let ours = bulk(run(&mut d.a, &[b"FUNCTION", b"DUMP"]));
    let theirs = bulk(run(&mut d.b, &[b"FUNCTION", b"DUMP"]));
    assert_eq!(ours, theirs);
    let other = "#!lua name=other\nredis.register_function('two', function() return 2 end)";
    check(&mut d, &c(&[b"FUNCTION", b"LOAD", other.as_bytes()]));
    let ours = bulk(run(&mut d.a, &[b"FUNCTION", b"DUMP"]));
    let theirs = bulk(run(&mut d.b, &[b"FUNCTION", b"DUMP"]));
    for payload in [&ours, &theirs] {
        check(&mut d, &c(&[b"FUNCTION", b"DELETE", b"mylib"]));
        check(&mut d, &c(&[b"FUNCTION", b"RESTORE", payload]));
        check(&mut d, &c(&[b"FUNCTION", b"FLUSH"]));
        check(&mut d, &c(&[b"FUNCTION", b"RESTORE", payload]));
        check(&mut d, &c(&[b"FCALL", b"two", b"0"]));
        check(&mut d, &c(&[b"FUNCTION", b"RESTORE", payload, b"REPLACE"]));
        check(&mut d, &c(&[b"FUNCTION", b"RESTORE", payload, b"FLUSH"]));
        check(&mut d, &c(&[b"FUNCTION", b"RESTORE", &payload[..payload.len() - 1]]));
    }
    let key_payload = {
        check(&mut d, &c(&[b"SET", b"k", b"v"]));
        dump(&mut d.b, b"k")
    };
    check(&mut d, &c(&[b"FUNCTION", b"RESTORE", &key_payload]));
    check(&mut d, &c(&[b"FUNCTION", b"RESTORE", &sealed(b"\xf5\x05abc", 10)]));
    check(&mut d, &c(&[b"FUNCTION", b"RESTORE", &sealed(b"", 10)]));
    check(&mut d, &c(&[b"FUNCTION", b"RESTORE", &sealed(b"\xf5\x0a#!lua name", 10)]));
}

/// The commands in an append-only file (RESP arrays of bulk strings).
fn aof_commands(data: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut p = 0;
    let line = |p: &mut usize| -> Vec<u8> {
        let end = (*p..data.len()).find(|&i| data[i] == b'\n').unwrap();
        let l = data[*p..end - 1].to_vec();
        *p = end + 1;
        l
    };
    while p < data.len() {
        let head = line(&mut p);
        assert_eq!(head[0], b'*', "{:?}", String::from_utf8_lossy(&head));
        let n: usize = std::str::from_utf8(&head[1..]).unwrap().parse().unwrap();
        let mut cmd = Vec::new();
        for _ in 0..n {
            let len: usize = std::str::from_utf8(&line(&mut p)[1..]).unwrap().parse().unwrap();
            cmd.push(data[p..p + len].to_vec());
            p += len + 2;
        }
        out.push(cmd);
    }
    out
}

/// RESTORE with a relative TTL is replayed with the absolute one and
/// ABSTTL; one whose TTL already passed replaces nothing or is a DEL;
/// MIGRATE's removal of the keys it moved is a DEL; MIGRATE COPY and
/// DUMP write nothing.
#[test]
fn propagated_as_redis_propagates() {
    let Some(target) = common::redis_server() else { return };
    let dir = tmpdir("prop");
    let ours = common::moonshard(&["--appendonly", "yes", "--appendfsync", "always", "--dir", dir.to_str().unwrap()]);
    let mut m = ours.client();
    run_str(&mut m, &["SET", "src", "hello"]).unwrap();
    let p = dump(&mut m, b"src");
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert_eq!(run(&mut m, &[b"RESTORE", b"rel", b"100000", &p]), Ok(Value::Okay));
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert_eq!(run(&mut m, &[b"RESTORE", b"plain", b"0", &p]), Ok(Value::Okay));
    assert_eq!(run(&mut m, &[b"RESTORE", b"past", b"5000", &p, b"ABSTTL"]), Ok(Value::Okay));
    assert_eq!(run(&mut m, &[b"RESTORE", b"plain", b"5000", &p, b"ABSTTL", b"REPLACE"]), Ok(Value::Okay));
    assert_eq!(run(&mut m, &[b"EXISTS", b"plain", b"past"]), Ok(Value::Int(0)));
    run_str(&mut m, &["DUMP", "src"]).unwrap();
    run_str(&mut m, &["SET", "{t}a", "1"]).unwrap();
    run_str(&mut m, &["SET", "{t}b", "2"]).unwrap();
    let port = target.port.to_string();
    assert_eq!(run_str(&mut m, &["MIGRATE", "127.0.0.1", &port, "{t}a", "0", "1000", "COPY"]), Ok(Value::Okay));
    assert_eq!(
        run_str(&mut m, &["MIGRATE", "127.0.0.1", &port, "", "0", "1000", "REPLACE", "KEYS", "{t}a", "{t}b", "{t}c"]),
        Ok(Value::Okay)
    );
    let data = std::fs::read(dir.join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
    let cmds: Vec<Vec<String>> = aof_commands(&data)
        .into_iter()
        .map(|c| c.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect())
        .filter(|c: &Vec<String>| c[0] != "SELECT" && c[0] != "select")
        .collect();
    let names: Vec<&str> = cmds.iter().map(|c| c[0].as_str()).collect();
    assert_eq!(names, ["SET", "RESTORE", "RESTORE", "DEL", "SET", "SET", "DEL"], "{cmds:?}");
    let rel = &cmds[1];
    assert_eq!(rel.len(), 5);
    let when: i64 = rel[2].parse().unwrap();
    assert!((before + 100000..=after + 100000).contains(&when), "{rel:?}");
    assert_eq!(rel[4], "ABSTTL");
    assert_eq!(cmds[2][1..3], ["plain".to_string(), "0".to_string()]);
    assert_eq!(cmds[3][1..], ["plain".to_string()]);
    assert_eq!(cmds[6][1..], ["{t}a".to_string(), "{t}b".to_string()]);
    drop(ours);
    let _ = std::fs::remove_dir_all(&dir);
}

// --------------------------------------------------------- older encodings

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    moonshard::storage::codec::put_string(out, s, false);
}

fn put_len(out: &mut Vec<u8>, n: u64) {
    moonshard::storage::codec::put_len(out, n);
}

fn ziplist(items: &[Vec<u8>]) -> Vec<u8> {
    let refs: Vec<&[u8]> = items.iter().map(|i| &i[..]).collect();
    moonshard::storage::codec::legacy::write_ziplist(&refs)
}

fn zipmap(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut z = vec![pairs.len().min(254) as u8];
    let len = |z: &mut Vec<u8>, n: usize| {
        if n < 254 {
            z.push(n as u8);
        } else {
            z.push(254);
            z.extend_from_slice(&(n as u32).to_le_bytes());
        }
    };
    for (i, (f, v)) in pairs.iter().enumerate() {
        len(&mut z, f.len());
        z.extend_from_slice(f);
        len(&mut z, v.len());
        z.push((i % 3) as u8);
        z.extend_from_slice(v);
        z.extend(std::iter::repeat_n(b'#', i % 3));
    }
    z.push(0xFF);
    z
}

/// A stream of the first stream type (Redis 5 to 6.2): one node, an
/// entry deleted, a group with a pending entry owned by a consumer.
fn stream_v1(two_nodes: bool) -> Vec<u8> {
    use moonshard::storage::codec::listpack::Writer;
    let node = |first: u64, n: u64, deleted: Option<u64>| {
        let mut w = Writer::new();
        w.push_int(n as i64 - deleted.is_some() as i64);
        w.push_int(deleted.is_some() as i64);
        w.push_int(2);
        w.push(b"name");
        w.push(b"n");
        w.push_int(0);
        for i in 0..n {
            let same = i % 2 == 0;
            let del = deleted == Some(i);
            w.push_int((del as i64) | if same { 2 } else { 0 });
            w.push_int(i as i64);
            w.push_int(0);
            if same {
                w.push(format!("v{}", first + i).as_bytes());
                w.push((first + i).to_string().as_bytes());
                w.push_int(2 + 3);
            } else {
                w.push_int(1);
                w.push(b"other");
                w.push(b"x");
                w.push_int(2 + 4);
            }
        }
        w.finish()
    };
    let mut p = vec![15u8];
    let nodes: Vec<(u64, u64, Option<u64>)> =
        if two_nodes { vec![(100, 4, Some(1)), (200, 3, None)] } else { vec![(100, 5, Some(2))] };
    put_len(&mut p, nodes.len() as u64);
    let mut total = 0;
    let mut last = 0;
    for (first, n, del) in &nodes {
        let mut key = first.to_be_bytes().to_vec();
        key.extend_from_slice(&0u64.to_be_bytes());
        put_str(&mut p, &key);
        put_str(&mut p, &node(*first, *n, *del));
        total += n - del.is_some() as u64;
        last = first + n - 1;
    }
    put_len(&mut p, total);
    put_len(&mut p, last);
    put_len(&mut p, 0);
    put_len(&mut p, 2); // groups
    for (name, at) in [(&b"g1"[..], 100u64), (b"g2", last)] {
        put_str(&mut p, name);
        put_len(&mut p, at);
        put_len(&mut p, 0);
        put_len(&mut p, 1);
        p.extend_from_slice(&100u64.to_be_bytes());
        p.extend_from_slice(&0u64.to_be_bytes());
        p.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
        put_len(&mut p, 3);
        put_len(&mut p, 1);
        put_str(&mut p, b"alice");
        p.extend_from_slice(&1_700_000_000_123u64.to_le_bytes());
        put_len(&mut p, 1);
        p.extend_from_slice(&100u64.to_be_bytes());
        p.extend_from_slice(&0u64.to_be_bytes());
    }
    p
}

/// Values in the encodings of older files (RDB 9 and before: plain
/// types, text doubles, zipmaps, ziplists, quicklist v1, streams v1)
/// restored on both servers: same types, encodings and contents.
#[test]
fn older_encodings_restore_alike() {
    let Some(mut d) = start() else { return };
    let mut rng = StdRng::seed_from_u64(9);
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    for round in 0..12 {
        let big = round % 3 == 2;
        let n = if big { 600 } else { rng.gen_range(1..40) };
        let elems: Vec<Vec<u8>> = (0..n).map(|_| element(&mut rng)).collect();
        let ints: Vec<i64> = {
            let mut v: Vec<i64> =
                (0..n).map(|_| rng.gen_range(-70_000..70_000i64) * if round % 2 == 0 { 1 } else { 100_000 }).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let uniq: Vec<Vec<u8>> =
            elems.iter().enumerate().map(|(i, e)| [&e[..], format!("#{i}").as_bytes()].concat()).collect();
        // 1: a plain list.
        let mut p = vec![1u8];
        put_len(&mut p, n as u64);
        elems.iter().for_each(|e| put_str(&mut p, e));
        payloads.push(p);
        // 2: a plain set, of integers or strings.
        let mut p = vec![2u8];
        if round % 2 == 0 {
            put_len(&mut p, ints.len() as u64);
            ints.iter().for_each(|i| put_str(&mut p, i.to_string().as_bytes()));
        } else {
            put_len(&mut p, uniq.len() as u64);
            uniq.iter().for_each(|e| put_str(&mut p, e));
        }
        payloads.push(p);
        // 3: a zset with textual scores.
        let mut p = vec![3u8];
        put_len(&mut p, uniq.len() as u64);
        for (i, m) in uniq.iter().enumerate() {
            put_str(&mut p, m);
            match i % 5 {
                0 => p.push(254),
                1 => p.push(255),
                _ => {
                    let s = format!("{}", rng.gen_range(-1e3..1e3f64));
                    p.push(s.len() as u8);
                    p.extend_from_slice(s.as_bytes());
                }
            }
        }
        payloads.push(p);
        // 4: a plain hash.
        let mut p = vec![4u8];
        put_len(&mut p, uniq.len() as u64);
        for (m, v) in uniq.iter().zip(&elems) {
            put_str(&mut p, m);
            put_str(&mut p, v);
        }
        payloads.push(p);
        // 9: a zipmap hash.
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = uniq.iter().cloned().zip(elems.iter().cloned()).take(300).collect();
        let mut p = vec![9u8];
        put_str(&mut p, &zipmap(&pairs));
        payloads.push(p);
        // 10: a ziplist list.
        let mut p = vec![10u8];
        put_str(&mut p, &ziplist(&elems));
        payloads.push(p);
        // 11: an intset.
        let mut p = vec![11u8];
        put_str(&mut p, &moonshard::storage::codec::legacy::write_intset(&ints));
        payloads.push(p);
        // 12, 13: ziplist zset and hash.
        let mut zitems = Vec::new();
        let mut sorted: Vec<(f64, Vec<u8>)> =
            uniq.iter().map(|m| (rng.gen_range(-50..50) as f64 / 4.0, m.clone())).collect();
        sorted.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));
        for (s, m) in &sorted {
            zitems.push(m.clone());
            zitems.push(moonshard::protocol::format_double(*s).into_bytes());
        }
        let mut p = vec![12u8];
        put_str(&mut p, &ziplist(&zitems));
        payloads.push(p);
        let hitems: Vec<Vec<u8>> = pairs.iter().flat_map(|(f, v)| [f.clone(), v.clone()]).collect();
        let mut p = vec![13u8];
        put_str(&mut p, &ziplist(&hitems));
        payloads.push(p);
        // 14: a quicklist of ziplists.
        let mut p = vec![14u8];
        let chunks: Vec<&[Vec<u8>]> = elems.chunks(7).collect();
        put_len(&mut p, chunks.len() as u64);
        for ch in chunks {
            put_str(&mut p, &ziplist(ch));
        }
        payloads.push(p);
    }
    payloads.push(stream_v1(false));
    payloads.push(stream_v1(true));
    for (i, body) in payloads.iter().enumerate() {
        let key = format!("old{i}").into_bytes();
        let payload = sealed(body, 9);
        assert_eq!(checkv(&mut d, &c(&[b"RESTORE", &key, b"0", &payload])), Ok(Value::Okay), "type {}", body[0]);
        same_value(&mut d, &key);
        // And as RDB 10 payloads re-dumped by each.
        let again = dump(&mut d.b, &key);
        let mut copy = key.clone();
        copy.extend_from_slice(b":copy");
        check(&mut d, &c(&[b"RESTORE", &copy, b"0", &again]));
        same_value(&mut d, &copy);
    }
}

/// Timing, not a check (run with `--release -- --ignored --nocapture`): a
/// dataset SAVEd by redis-server, read by `RdbReader`, written again by
/// `RdbWriter`, loaded by a second redis-server; DUMP of a large value on
/// both servers.
#[test]
#[ignore]
fn rdb_speed() {
    use std::time::Instant;
    let dir = tmpdir("speed");
    let Some(theirs) = common::redis_server_with(&["--enable-debug-command", "yes", "--dir", dir.to_str().unwrap()])
    else {
        return;
    };
    let mut r = theirs.client();
    let mut rng = StdRng::seed_from_u64(1);
    let mut ms = 1;
    let mut pipe = redis::pipe();
    let mut n = 0;
    for i in 0..200_000u32 {
        let key = format!("key:{i}").into_bytes();
        let class = if i % 4 == 0 { [1, 3, 5, 6, 7][(i / 4 % 5) as usize] } else { 0 };
        let (cmds, _) = build(&mut rng, &key, class, &mut ms);
        for cmd in cmds {
            let mut c = redis::cmd(std::str::from_utf8(&cmd[0]).unwrap());
            for a in &cmd[1..] {
                c.arg(&a[..]);
            }
            pipe.add_command(c).ignore();
            n += 1;
        }
        if n > 2000 {
            pipe.query::<()>(&mut r).unwrap();
            pipe = redis::pipe();
            n = 0;
        }
    }
    pipe.query::<()>(&mut r).unwrap();
    let digest = run_str(&mut r, &["DEBUG", "DIGEST"]);
    let t = Instant::now();
    run_str(&mut r, &["SAVE"]).unwrap();
    let save = t.elapsed();
    let path = dir.join("dump.rdb");
    let size = std::fs::metadata(&path).unwrap().len();

    let t = Instant::now();
    let file = std::fs::File::open(&path).unwrap();
    let items: Vec<rdb::Item> =
        rdb::RdbReader::new(std::io::BufReader::with_capacity(1 << 20, file), Default::default())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let read = t.elapsed();

    let t = Instant::now();
    let out = dir.join("ours.rdb");
    let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&out).unwrap());
    let mut w = rdb::RdbWriter::new(f, &rdb::WriterOptions::default()).unwrap();
    let mut keys = 0;
    for item in &items {
        match item {
            rdb::Item::SelectDb(db) => w.select_db(*db, 0, 0).unwrap(),
            rdb::Item::Entry(e) => {
                keys += 1;
                w.entry(&e.key, &e.value, e.expire_ms.map(|t| t as u64), rdb::Access::None).unwrap();
            }
            _ => {}
        }
    }
    w.finish().unwrap().into_inner().unwrap().sync_all().unwrap();
    let write = t.elapsed();
    let ours_size = std::fs::metadata(&out).unwrap().len();

    // Both files loaded by redis-server (loading applies the same encoding
    // rules to both, e.g. small skiplists become listpacks).
    let load = |file: &str| {
        let t = Instant::now();
        let p = common::redis_server_with(&[
            "--enable-debug-command",
            "yes",
            "--dir",
            dir.to_str().unwrap(),
            "--dbfilename",
            file,
        ])
        .unwrap();
        let mut c = p.client();
        while run_str(&mut c, &["PING"]).is_err() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let took = t.elapsed();
        (run_str(&mut c, &["DEBUG", "DIGEST"]), took, p)
    };
    let (theirs_digest, load_theirs, _a) = load("dump.rdb");
    let (ours_digest, load, _b) = load("ours.rdb");
    assert_eq!(ours_digest, theirs_digest);
    assert_ne!(ours_digest, digest.clone().map(|_| redis::Value::Nil));

    // DUMP of a 1,000,000-element list on both servers.
    let ours = common::moonshard(&[]);
    let mut m = ours.client();
    for con in [&mut m, &mut r] {
        for chunk in 0..100 {
            let mut cmd = redis::cmd("RPUSH");
            cmd.arg("big");
            for j in 0..10_000 {
                cmd.arg(format!("element-{}", chunk * 10_000 + j));
            }
            cmd.query::<i64>(con).unwrap();
        }
    }
    let time_dump = |con: &mut redis::Connection| {
        let t = Instant::now();
        let p = dump(con, b"big");
        (t.elapsed(), p.len())
    };
    let (ours_dump, ours_len) = time_dump(&mut m);
    let (redis_dump, redis_len) = time_dump(&mut r);
    assert_eq!(ours_len, redis_len);
    eprintln!(
        "redis-server SAVE {keys} keys ({size} bytes): {save:?}; RdbReader: {read:?}; RdbWriter: {write:?} ({ours_size} bytes); \
         redis-server start-up loading that file: {load:?} (its own file: {load_theirs:?}); DUMP of a 1M-element list ({ours_len} bytes): moonshard {ours_dump:?}, redis-server {redis_dump:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
