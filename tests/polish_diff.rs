//! Differential tests for small compatibility details, byte for byte
//! against a real redis-server 7.0: keyspace notifications of keys emptied
//! by pops and removals, OBJECT IDLETIME/FREQ, string encodings, float
//! parsing (long double HINCRBYFLOAT, hex floats), the BUSY text of a
//! running function, and COMMAND INFO key specs.

mod common;
mod raw_resp;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use raw_resp::{start_pair, Both, Raw};
use std::time::{Duration, Instant};

#[test]
fn emptied_lists_and_hashes_notify_del() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    let mut sub = Both::new(&p);
    a.lines(&["FLUSHALL", "CONFIG SET notify-keyspace-events KEA"]);
    sub.line("PSUBSCRIBE __key*__:*");
    let script = [
        "RPUSH {k}l a b",
        "LPOP {k}l",
        "RPOP {k}l",
        "RPUSH {k}l a b c",
        "LPOP {k}l 5",
        "RPUSH {k}l a",
        "RPOP {k}l 0",
        "LMPOP 1 {k}l LEFT",
        "RPUSH {k}l a b",
        "LMPOP 2 {k}none {k}l RIGHT COUNT 9",
        "RPUSH {k}l x y x",
        "LREM {k}l 0 x",
        "LREM {k}l 0 nothing",
        "LREM {k}l -1 y",
        "RPUSH {k}l a b",
        "LTRIM {k}l 0 -1",
        "LTRIM {k}l 5 10",
        "LTRIM {k}l 0 1",
        "RPUSH {k}s a",
        "LMOVE {k}s {k}d LEFT RIGHT",
        "LMOVE {k}d {k}d LEFT LEFT",
        "RPUSH {k}d b",
        "LMOVE {k}d {k}d RIGHT LEFT",
        "RPOPLPUSH {k}d {k}e",
        "RPOPLPUSH {k}d {k}e",
        "BLPOP {k}e 1",
        "BRPOP {k}e 1",
        "RPUSH {k}e z",
        "BLMOVE {k}e {k}f LEFT LEFT 1",
        "BLMPOP 1 {k}f 1 LEFT COUNT 2",
        "HSET {k}h f v g w",
        "HDEL {k}h f nope",
        "HDEL {k}h nope",
        "HDEL {k}h g",
        "HSET {k}h f 1",
        "HINCRBY {k}h f 2",
        "HDEL {k}h f",
    ];
    a.lines(&script);

    // A blocked client served by a push: the pusher's event, then the
    // pop and the deletion (the same stream if the pop comes first).
    let mut b = Both::new(&p);
    b.send(&["BLPOP", "{k}w", "5"]);
    std::thread::sleep(Duration::from_millis(200));
    a.line("RPUSH {k}w v");
    b.expect_same_reply("BLPOP {k}w 5");
    b.send(&["BLMOVE", "{k}x", "{k}y", "RIGHT", "LEFT", "5"]);
    std::thread::sleep(Duration::from_millis(200));
    a.line("LPUSH {k}x v");
    b.expect_same_reply("BLMOVE {k}x {k}y RIGHT LEFT 5");

    let got = sub.drain();
    let dels = got[1].iter().filter(|m| m.contains("\r\ndel\r\n")).count();
    assert!(dels >= 10, "redis-server sent too few del events: {dels}");
    assert_eq!(got[0], got[1]);
    a.check(&["CONFIG", "SET", "notify-keyspace-events", ""]);
}

#[test]
fn object_idletime_and_freq() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.lines(&[
        "FLUSHALL",
        "OBJECT FREQ nokey",
        "OBJECT IDLETIME nokey",
        "SET k v",
        "OBJECT FREQ k",
        "OBJECT FREQ nokey",
    ]);
    // A key just written has been idle for (about) no time on either.
    for c in &mut a.c {
        let idle = c.call(&["OBJECT", "IDLETIME", "k"]);
        assert!(idle == ":0\r\n" || idle == ":1\r\n", "{idle}");
    }

    a.line("CONFIG SET maxmemory-policy allkeys-lfu");
    a.lines(&["OBJECT IDLETIME k", "OBJECT IDLETIME nokey"]);
    // moonshard's memory cron switches the access words to LFU within
    // ~100 ms: wait until a fresh key shows the initial counter.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        a.c[0].call(&["SET", "probe", "v"]);
        if a.c[0].call(&["OBJECT", "FREQ", "probe"]) == ":5\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "moonshard never switched to LFU tracking");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Reads that do not count as an access (EXISTS, TYPE, TTL, OBJECT)
    // leave the counter at its initial value; the first real access
    // always increments it (later ones only with some probability).
    a.lines(&[
        "DEL k",
        "SET k v",
        "OBJECT FREQ k",
        "EXISTS k",
        "TYPE k",
        "TTL k",
        "PTTL k",
        "EXPIRETIME k",
        "OBJECT ENCODING k",
        "OBJECT REFCOUNT k",
        "OBJECT FREQ k",
        "GET k",
        "OBJECT FREQ k",
        "RPUSH l a",
        "OBJECT FREQ l",
        "RPUSH l b",
        "OBJECT FREQ l",
    ]);
    a.line("CONFIG SET maxmemory-policy noeviction");
    a.line("OBJECT FREQ k");
}

#[test]
fn string_encodings_follow_history() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    let long = "x".repeat(50);
    let steps: Vec<String> = vec![
        "SET s 12".into(),
        "OBJECT ENCODING s".into(),
        "APPEND s 3".into(),
        "OBJECT ENCODING s".into(),
        "SET s hello".into(),
        "OBJECT ENCODING s".into(),
        "APPEND s world".into(),
        "OBJECT ENCODING s".into(),
        "SET s 1".into(),
        "SETRANGE s 0 2".into(),
        "OBJECT ENCODING s".into(),
        "SETRANGE fresh 0 7".into(),
        "OBJECT ENCODING fresh".into(),
        "SET f 1".into(),
        "INCRBYFLOAT f 2".into(),
        "OBJECT ENCODING f".into(),
        "INCRBYFLOAT f 0.5".into(),
        "OBJECT ENCODING f".into(),
        "INCR f2".into(),
        "OBJECT ENCODING f2".into(),
        "APPEND newkey 42".into(),
        "OBJECT ENCODING newkey".into(),
        "APPEND newkey2 abc".into(),
        "OBJECT ENCODING newkey2".into(),
        format!("SET big {long}"),
        "OBJECT ENCODING big".into(),
        "SET s 7".into(),
        "APPEND s 1".into(),
        "RENAME s {s}r".into(),
        "OBJECT ENCODING {s}r".into(),
        "COPY {s}r {s}c".into(),
        "OBJECT ENCODING {s}c".into(),
        "INCR {s}c".into(),
        "OBJECT ENCODING {s}c".into(),
        "SET f 3".into(),
        "INCRBYFLOAT f 1".into(),
        "APPEND f 0".into(),
        "OBJECT ENCODING f".into(),
        "SET f 3 KEEPTTL".into(),
        "OBJECT ENCODING f".into(),
        "MSET f 10 g 1.5".into(),
        "OBJECT ENCODING f".into(),
        "OBJECT ENCODING g".into(),
        "SET b 5".into(),
        "OBJECT ENCODING b".into(),
        "GETSET b 6".into(),
        "OBJECT ENCODING b".into(),
    ];
    a.line("FLUSHALL");
    for s in &steps {
        a.line(s);
    }
    // An empty SETRANGE writes nothing, so the encoding stays.
    a.lines(&["INCRBYFLOAT e 1", "OBJECT ENCODING e"]);
    a.check(&["SETRANGE", "e", "0", ""]);
    a.lines(&["OBJECT ENCODING e", "SETRANGE e 1 0", "OBJECT ENCODING e", "GET e"]);
}

#[test]
fn float_parsing_matches_strtold() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.lines(&[
        "FLUSHALL",
        "HINCRBYFLOAT h g 1000.1",
        "HINCRBYFLOAT h g 0.2",
        "HINCRBYFLOAT h g -1000.3",
        "HINCRBYFLOAT h f 0x10",
        "HINCRBYFLOAT h f 0x1.8p1",
        "HINCRBYFLOAT h k 1e400",
        "HINCRBYFLOAT h k 1.7e308",
        "HINCRBYFLOAT h k 1e5000",
        "HINCRBYFLOAT h k nan",
        "HINCRBYFLOAT h k inf",
        "HINCRBYFLOAT h k -infinity",
        "HINCRBYFLOAT h k 0x",
        "HINCRBYFLOAT h k 1e-400",
        "HINCRBYFLOAT h z 1e-400",
        "HINCRBYFLOAT h y 3.0",
        "HINCRBYFLOAT h y 1e20",
        "HSET h s 0x1p3",
        "HINCRBYFLOAT h s 1",
        "HSET h bad abc",
        "HINCRBYFLOAT h bad 1",
        "HINCRBYFLOAT nohash f -0",
        "EXISTS nohash",
        "HMGET h g f k z y s bad",
        "INCRBYFLOAT s 0x10",
        "INCRBYFLOAT s 1000.1",
        "SET s2 0x10",
        "INCRBYFLOAT s2 1",
        "ZADD z 0x10 a",
        "ZINCRBY z 0x10 a",
        "ZADD z 0x1.8p1 d",
        "ZADD z 0x1p-1080 e",
        "ZADD z 1e-400 e",
        "ZADD z 0x1p1024 e",
        "ZADD z 1e400 e",
        "ZRANGEBYSCORE z 0x1 0x20 WITHSCORES",
        "BLPOP nokey 0x",
        "BLPOP nokey -0x1",
        "BLPOP nokey 1e400",
        "BLPOP nokey inf",
        "BLPOP nokey 0x0.1",
    ]);
    for c in &mut a.c {
        c.call(&["HSET", "h", "\t1", "x"]);
    }
    a.check(&["HINCRBYFLOAT", "h", "y", " 1"]);
    a.check(&["HINCRBYFLOAT", "h", "y", "1 "]);

    // Random walks: the long double sums must agree digit for digit.
    let mut rng = StdRng::seed_from_u64(0x5eed_00f1);
    for _ in 0..150 {
        let by = match rng.gen_range(0..4) {
            0 => format!("{}.{}", rng.gen_range(-2000..2000), rng.gen_range(0..1000)),
            1 => format!("{}e{}", rng.gen_range(1..99), rng.gen_range(-12..12)),
            2 => format!("0x{:x}.{:x}p{}", rng.gen_range(0..4096), rng.gen_range(0..256), rng.gen_range(-8..8)),
            _ => format!("-0.{:03}", rng.gen_range(0..1000)),
        };
        a.check(&["HINCRBYFLOAT", "walk", "f", &by]);
        a.check(&["INCRBYFLOAT", "walk2", &by]);
    }
}

#[test]
fn busy_text_names_the_kill_command() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    a.lines(&["FUNCTION FLUSH", "CONFIG SET busy-reply-threshold 100"]);
    a.check(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=spinlib\nredis.register_function('spin', function() local i = 0 while true do i = i + 1 end end)",
    ]);
    let runs: [(&[&str], &str); 2] = [
        (&["FCALL", "spin", "1", "{a}k"], "FUNCTION"),
        (&["EVAL", "local i = 0 while true do i = i + 1 end", "1", "{a}k"], "SCRIPT"),
    ];
    for (call, kill) in runs {
        let mut runner = Both::new(&p);
        runner.send(call);
        for c in &mut a.c {
            wait_busy(c);
        }
        a.check(&["GET", "{a}k"]);
        a.check(&[kill, "KILL"]);
        runner.expect_same_reply(&format!("{call:?} killed"));
        a.check(&["GET", "{a}k"]);
    }
}

/// Waits until the running script makes a command on its key answer BUSY.
fn wait_busy(c: &mut Raw) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if c.call(&["GET", "{a}k"]).starts_with("-BUSY") {
            return;
        }
        assert!(Instant::now() < deadline, "the script never made the server BUSY");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn command_info_key_specs() {
    let Some(p) = start_pair(&[]) else { return };
    let mut a = Both::new(&p);
    let names = [
        "get",
        "set",
        "del",
        "mset",
        "mget",
        "rename",
        "lpush",
        "eval",
        "xread",
        "zunionstore",
        "getset",
        "setnx",
        "getex",
        "incr",
        "append",
        "exists",
        "expire",
        "unlink",
        "renamenx",
        "msetnx",
        "copy",
        "hset",
        "hdel",
        "sadd",
        "sinterstore",
        "smove",
        "zadd",
        "zinterstore",
        "zrangestore",
        "lpop",
        "lmove",
        "blpop",
        "blmove",
        "lmpop",
        "blmpop",
        "zmpop",
        "bzpopmin",
        "evalsha",
        "eval_ro",
        "fcall",
        "xadd",
        "xreadgroup",
        "rpoplpush",
    ];
    for name in names {
        a.check(&["COMMAND", "INFO", name]);
    }
    // Same again in RESP3, where the key specs and their flags are sets.
    for c in &mut a.c {
        c.call(&["HELLO", "3"]);
    }
    for name in names {
        a.check(&["COMMAND", "INFO", name]);
    }
}
