//! Streams, moonshard against a real redis-server: error texts, edge cases
//! of every command, consumer groups (PEL ownership, deleted entries in
//! XCLAIM/XAUTOCLAIM, lag and entries-read), and seeded random sequences
//! with explicit IDs so both servers hold the same entries.
//!
//! Times (idle, seen-time, delivery time) differ between two servers, so
//! replies that carry them are compared with those fields masked.
mod common;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use redis::Value;

fn check_all(d: &mut common::Diff, cmds: &[&str]) {
    for c in cmds {
        let args: Vec<&str> = c.split(' ').collect();
        let _ = d.check(&args);
    }
}

fn is_bulk(v: &Value, s: &str) -> bool {
    matches!(v, Value::BulkString(b) if b == s.as_bytes())
}

/// Replaces the value after any of `names` in flat maps, and every integer
/// that looks like a Unix time in ms, recursively.
fn mask(v: Value, names: &[&str]) -> Value {
    match v {
        Value::Int(n) if n > 1_000_000_000_000 => Value::Int(0),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut hide_next = false;
            for it in items {
                if hide_next {
                    out.push(Value::Nil);
                    hide_next = false;
                    continue;
                }
                hide_next = names.iter().any(|n| is_bulk(&it, n));
                out.push(mask(it, names));
            }
            Value::Array(out)
        }
        other => other,
    }
}

/// XPENDING's extended form: [id, consumer, idle, count] with idle hidden.
fn mask_pending(v: Value) -> Value {
    match v {
        Value::Array(rows) => Value::Array(
            rows.into_iter()
                .map(|r| match r {
                    Value::Array(mut f) if f.len() == 4 && matches!(f[2], Value::Int(_)) => {
                        f[2] = Value::Int(0);
                        Value::Array(f)
                    }
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

const TIME_FIELDS: &[&str] = &["idle", "seen-time", "radix-tree-nodes"];

#[track_caller]
fn check_masked(d: &mut common::Diff, args: &[&str]) {
    let (a, b) = d.both(args);
    let f = |r: Result<Value, String>| r.map(|v| mask_pending(mask(v, TIME_FIELDS)));
    assert_eq!(f(a), f(b), "moonshard and redis-server differ on {args:?}");
}

fn check_all_masked(d: &mut common::Diff, cmds: &[&str]) {
    for c in cmds {
        let args: Vec<&str> = c.split(' ').collect();
        check_masked(d, &args);
    }
}

#[test]
fn xadd_ids_options_and_errors() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    check_all(
        &mut d,
        &[
            "XADD s 0-0 f v",
            "XADD s 0-* f v",
            "XADD s 0-* f v",
            "XADD s 5 f v",
            "XADD s 5 f v",
            "XADD s 5-* f v",
            "XADD s 4-* f v",
            "XADD s 6-3 a 1 b 2",
            "XADD s 01-02 f v",
            "XADD s 7-x f v",
            "XADD s 7- f v",
            "XADD s -7 f v",
            "XADD s + f v",
            "XADD s - f v",
            "XADD s 8 f",
            "XADD s 8 f v g",
            "XADD s MAXLEN -1 9 f v",
            "XADD s MAXLEN x 9 f v",
            "XADD s MAXLEN 18446744073709551616 9 f v",
            "XADD s MAXLEN 1 MINID 0 9 f v",
            "XADD s MAXLEN 1 MAXLEN 2 9 f v",
            "XADD s LIMIT 10 9 f v",
            "XADD s LIMIT 0 9 f v",
            "XADD s MAXLEN 1 LIMIT 10 9 f v",
            "XADD s MAXLEN ~ 1 LIMIT -1 9 f v",
            "XADD s MAXLEN = 3 9 f v",
            "XLEN s",
            "XADD s MINID ~ abc 10 f v",
            "XADD s MINID = 7 10 f v",
            "XRANGE s - +",
            "XADD s NOMKSTREAM 11 f v",
            "XADD nos NOMKSTREAM 11 f v",
            "EXISTS nos",
            "XADD s nomkstream maxlen ~ 0 12 f v",
            "XLEN s",
            "XRANGE s - +",
            "XADD s 18446744073709551615-18446744073709551614 f v",
            "XADD s 18446744073709551615-* f v",
            "XADD s 18446744073709551615-* f v",
            "XADD s 13 f v",
            "SET str x",
            "XADD str 1 f v",
            "XADD str NOMKSTREAM 1 f v",
            "XLEN str",
            "XLEN nokey",
            "TYPE s",
            "OBJECT ENCODING s",
            "XADD e MAXLEN 0 1-1 f v",
            "XLEN e",
            "EXISTS e",
            "XINFO STREAM e",
        ],
    );
}

#[test]
fn ranges_delete_trim_setid() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    for i in 1..=250 {
        let id = format!("{}-{}", i / 3 + 1, i % 3);
        let v = i.to_string();
        let _ = d.check(&["XADD", "s", &id, "f", &v, "g", "x"]);
    }
    let _ = d.check(&["XADD", "s", "200-0", "other", "fields"]);
    check_all_masked(
        &mut d,
        &[
            "XRANGE s - + COUNT 5",
            "XRANGE s 10 12",
            "XRANGE s (10-1 (12-2",
            "XRANGE s (10 12-0",
            "XREVRANGE s + - COUNT 4",
            "XREVRANGE s (50-1 (40 COUNT 7",
            "XRANGE s (18446744073709551615-18446744073709551615 +",
            "XRANGE s - (0-0",
            "XRANGE s (- +",
            "XRANGE s - (+",
            "XRANGE s - + COUNT -1",
            "XRANGE s - + COUNT 0",
            "XRANGE s - + COUNT x",
            "XRANGE s - + FOO",
            "XRANGE s - + COUNT",
            "XRANGE s abc +",
            "XRANGE s 20 10",
            "XRANGE nokey - +",
            "XREVRANGE s 3 5",
            "XDEL s 1-1 1-2 2-0 999-0 1-1",
            "XDEL s 1-0",
            "XDEL s bad",
            "XDEL nokey bad",
            "XINFO STREAM s",
            "XRANGE s - + COUNT 3",
            "XTRIM s MAXLEN ~ 150",
            "XLEN s",
            "XTRIM s MAXLEN 140",
            "XINFO STREAM s",
            "XTRIM s MINID ~ 70",
            "XTRIM s MINID = 70-1",
            "XRANGE s - + COUNT 2",
            "XTRIM s MAXLEN ~ 10 LIMIT 50",
            "XLEN s",
            "XTRIM s MAXLEN ~ 10 LIMIT 0",
            "XLEN s",
            "XTRIM s",
            "XTRIM s MAXLEN",
            "XTRIM s FOO 1",
            "XTRIM s MAXLEN 1 extra",
            "XTRIM s MAXLEN 10 LIMIT 10",
            "XTRIM s LIMIT 10",
            "XTRIM nokey MAXLEN 0",
            "XTRIM s MINID ~ abc",
            "XSETID s 1-1",
            "XSETID s 200-0",
            "XSETID s 300-0 ENTRIESADDED 1",
            "XSETID s 300-0 ENTRIESADDED -1",
            "XSETID s 300-0 MAXDELETEDID 400-0",
            "XSETID s 300-0 MAXDELETEDID 1-0",
            "XSETID s 300-0 ENTRIESADDED 1000 MAXDELETEDID 250-0",
            "XSETID s 300-0 FOO",
            "XINFO STREAM s",
            "XADD s 300-0 f v",
            "XADD s 300-* f v",
            "XSETID nokey 1-1",
            "XSETID s +",
            "XTRIM s MAXLEN 0",
            "XINFO STREAM s",
            "XSETID s 1-0",
            "XADD s 2-0 f v",
            "XINFO STREAM s FULL",
        ],
    );
}

#[test]
fn groups_and_pel_ownership() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    check_all(
        &mut d,
        &[
            "XGROUP CREATE s g 0",
            "XGROUP CREATE s g 0 MKSTREAM",
            "XGROUP CREATE s g 0 FOO",
            "XGROUP CREATE s g2 0 ENTRIESREAD -2",
            "XGROUP CREATE s g2 0 ENTRIESREAD x",
            "XGROUP CREATE s g0 $ MKSTREAM ENTRIESREAD 3 MKSTREAM",
            "XGROUP SETID s nog 0",
            "XGROUP CREATECONSUMER s nog c",
            "XGROUP DELCONSUMER s nog c",
            "XGROUP DESTROY s nog",
            "XGROUP FOO s g",
            "XGROUP SETID s g0 0 FOO",
            "XGROUP SETID s g0 0 FOO 1",
            "XGROUP SETID s g0 x",
            "XGROUP SETID s g0 + ENTRIESREAD 5",
            "XGROUP SETID s g0 - ENTRIESREAD -1",
            "XGROUP CREATE s g0 0",
            "XGROUP CREATE s g1 bad",
            "SET str x",
            "XGROUP CREATE str g 0 MKSTREAM",
            "XGROUP DESTROY str g",
        ],
    );
    for i in 1..=6 {
        let id = format!("{i}-0");
        let _ = d.check(&["XADD", "s", &id, "n", &i.to_string()]);
    }
    check_all_masked(
        &mut d,
        &[
            "XGROUP CREATE s g 0",
            "XGROUP CREATE s g $",
            "XGROUP CREATE s late $",
            "XGROUP CREATE s mid 3-0",
            "XGROUP CREATE s er 2-0 ENTRIESREAD 5",
            "XINFO GROUPS s",
            "XREADGROUP GROUP g alice COUNT 2 STREAMS s >",
            "XREADGROUP GROUP g bob COUNT 1 STREAMS s >",
            "XREADGROUP GROUP g bob NOACK COUNT 1 STREAMS s >",
            "XINFO GROUPS s",
            "XPENDING s g",
            "XPENDING s g - + 10",
            "XPENDING s g - + 10 alice",
            "XPENDING s g - + 10 nobody",
            "XPENDING s g (1-0 + 10",
            "XPENDING s g IDLE 0 - + 10",
            "XPENDING s g IDLE 100000 - + 10",
            "XPENDING s g IDLE x - + 10",
            "XPENDING s g IDLE 0 - +",
            "XPENDING s g - + x",
            "XPENDING s g - +",
            "XPENDING s g - + -5",
            "XPENDING s g bad + 5",
            "XPENDING s nog",
            "XPENDING nokey g",
            "XPENDING str g",
            "XREADGROUP GROUP g alice STREAMS s 0",
            "XREADGROUP GROUP g alice COUNT 1 STREAMS s 0",
            "XREADGROUP GROUP g alice STREAMS s 1-0",
            "XREADGROUP GROUP g bob STREAMS s 0",
            "XREADGROUP GROUP g nobody STREAMS s 0",
            "XPENDING s g - + 10",
            "XINFO CONSUMERS s g",
            "XCLAIM s g bob 0 1-0",
            "XPENDING s g - + 10",
            "XCLAIM s g carol 0 1-0 2-0 5-0 JUSTID",
            "XINFO CONSUMERS s g",
            "XCLAIM s g carol 0 5-0 FORCE",
            "XPENDING s g - + 10",
            "XCLAIM s g carol 0 6-0 FORCE JUSTID RETRYCOUNT 7",
            "XPENDING s g - + 10",
            "XCLAIM s g dave 100000 1-0 2-0",
            "XCLAIM s g dave 0 1-0 IDLE 5000 RETRYCOUNT 9",
            "XPENDING s g - + 10",
            "XCLAIM s g dave 0 2-0 LASTID 6-0",
            "XINFO GROUPS s",
            "XCLAIM s g dave x 1-0",
            "XCLAIM s g dave 0 1-0 IDLE x",
            "XCLAIM s g dave 0 1-0 TIME x",
            "XCLAIM s g dave 0 1-0 RETRYCOUNT x",
            "XCLAIM s g dave 0 1-0 LASTID x",
            "XCLAIM s g dave 0 1-0 BOGUS",
            "XCLAIM s g dave 0 bad",
            "XCLAIM s nog dave 0 1-0",
            "XCLAIM nokey g dave 0 1-0",
            "XDEL s 2-0 5-0",
            "XREADGROUP GROUP g carol STREAMS s 0",
            "XCLAIM s g erin 0 2-0 5-0 6-0",
            "XPENDING s g - + 10",
            "XACK s g 1-0 6-0 9-0",
            "XACK s g bad",
            "XACK s nog 1-0",
            "XACK nokey g bad",
            "XPENDING s g",
            "XINFO STREAM s FULL",
            "XGROUP CREATECONSUMER s g frank",
            "XGROUP CREATECONSUMER s g frank",
            "XGROUP DELCONSUMER s g carol",
            "XGROUP DELCONSUMER s g ghost",
            "XINFO CONSUMERS s g",
            "XGROUP DESTROY s mid",
            "XGROUP DESTROY s mid",
            "XINFO GROUPS s",
            "XINFO CONSUMERS s nog",
            "XINFO STREAM nokey",
            "XINFO STREAM s FOO",
            "XINFO STREAM s FULL COUNT",
            "XINFO STREAM s FULL COUNT 1",
            "XINFO STREAM s FULL COUNT 0",
            "XINFO STREAM s FULL COUNT x",
            "XINFO STREAM str",
            "XINFO FOO s",
            "XINFO HELP",
            "XGROUP HELP",
        ],
    );
}

#[test]
fn autoclaim_and_deleted_entries() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    for i in 1..=30 {
        let id = format!("{i}-0");
        let _ = d.check(&["XADD", "s", &id, "n", &i.to_string()]);
    }
    check_all_masked(
        &mut d,
        &[
            "XGROUP CREATE s g 0",
            "XREADGROUP GROUP g a COUNT 20 STREAMS s >",
            "XDEL s 3-0 4-0 10-0",
            "XAUTOCLAIM s g b 0 0 COUNT 5",
            "XAUTOCLAIM s g b 0 0 COUNT 5 JUSTID",
            "XAUTOCLAIM s g b 0 (8-0 COUNT 3",
            "XAUTOCLAIM s g b 100000 0",
            "XAUTOCLAIM s g c 0 0",
            "XAUTOCLAIM s g c 0 0 COUNT 0",
            "XAUTOCLAIM s g c 0 0 COUNT -1",
            "XAUTOCLAIM s g c 0 0 COUNT x",
            "XAUTOCLAIM s g c 0 0 FOO",
            "XAUTOCLAIM s g c x 0",
            "XAUTOCLAIM s g c 0 bad",
            "XAUTOCLAIM s g c 0 (18446744073709551615-18446744073709551615",
            "XAUTOCLAIM s nog c 0 0",
            "XAUTOCLAIM nokey g c 0 0",
            "XPENDING s g",
            "XPENDING s g - + 100",
            "XINFO CONSUMERS s g",
            "XTRIM s MAXLEN 5",
            "XREADGROUP GROUP g c STREAMS s 0",
            "XAUTOCLAIM s g d 0 - COUNT 2",
            "XAUTOCLAIM s g d 0 - COUNT 100",
            "XINFO GROUPS s",
            "XREADGROUP GROUP g a STREAMS s >",
            "XINFO GROUPS s",
            "XADD s 31-0 n 31",
            "XINFO GROUPS s",
            "XREADGROUP GROUP g a STREAMS s >",
            "XINFO GROUPS s",
            "XINFO STREAM s FULL",
        ],
    );
}

#[test]
fn xread_parsing_and_nonblocking_reads() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    check_all(
        &mut d,
        &[
            "XADD {x}a 1-0 f 1",
            "XADD {x}a 2-0 f 2",
            "XADD {x}b 5-0 g 5",
            "XREAD STREAMS {x}a {x}b 0 0",
            "XREAD COUNT 1 STREAMS {x}a {x}b 0 0",
            "XREAD COUNT -5 STREAMS {x}a 0",
            "XREAD STREAMS {x}a {x}b 1 5",
            "XREAD STREAMS {x}a {x}b $ $",
            "XREAD STREAMS {x}a nokey 1 0",
            "XREAD STREAMS {x}a",
            "XREAD STREAMS {x}a 0 extra",
            "XREAD COUNT x STREAMS {x}a 0",
            "XREAD FOO STREAMS {x}a 0",
            "XREAD COUNT 1",
            "XREAD STREAMS {x}a >",
            "XREAD STREAMS {x}a +",
            "XREAD STREAMS {x}a -",
            "XREAD STREAMS {x}a bad",
            "XREAD BLOCK -1 STREAMS {x}a 0",
            "XREAD BLOCK x STREAMS {x}a 0",
            "XREAD BLOCK 10 STREAMS {x}a 0",
            "XREAD COUNT 1 BLOCK 1 COUNT 2 STREAMS {x}a 0",
            "XREAD GROUP g c STREAMS {x}a 0",
            "XREAD NOACK STREAMS {x}a 0",
            "SET {x}str v",
            "XREAD STREAMS {x}a {x}str 0 0",
            "XREAD STREAMS {x}str {x}a 0 0",
            "XREADGROUP STREAMS {x}a 0 0 0",
            "XREADGROUP GROUP g c STREAMS {x}a >",
            "XGROUP CREATE {x}a g 0",
            "XREADGROUP GROUP g c STREAMS {x}a $",
            "XREADGROUP GROUP g c STREAMS {x}a {x}b > >",
            "XREADGROUP GROUP g c COUNT 1 BLOCK 0 NOACK FOO STREAMS {x}a >",
            "XREADGROUP GROUP g c STREAMS {x}a 0 extra",
            "XREADGROUP GROUP g c BLOCK 10 STREAMS {x}a >",
            "XREADGROUP GROUP g c BLOCK 10 STREAMS {x}a >",
            "XREADGROUP GROUP g c STREAMS {x}a 18446744073709551615-18446744073709551615",
            "XREADGROUP GROUP g c STREAMS {x}a 0",
            "XREAD STREAMS a b c d",
            "DEL {x}a",
            "XREADGROUP GROUP g c STREAMS {x}a >",
        ],
    );
}

#[test]
fn multi_and_scripts_do_not_block() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    check_all(&mut d, &["XADD s 1-0 f v"]);
    // MULTI may be unavailable here; compare only when moonshard has it.
    if common::run_str(&mut d.a, &["MULTI"]).is_ok() {
        let _ = common::run_str(&mut d.b, &["MULTI"]);
        check_all(&mut d, &["XREAD BLOCK 0 STREAMS s $", "XREAD BLOCK 0 STREAMS s 0", "EXEC"]);
    }
    let probe = common::run_str(&mut d.a, &["EVAL", "return 1", "0"]);
    if probe == Ok(Value::Int(1)) {
        let _ = d.check(&["EVAL", "return redis.call('XADD', KEYS[1], '2-0', 'a', 'b')", "1", "s"]);
        let _ = d.check(&["EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+')", "1", "s"]);
        let _ = d.check(&["EVAL", "return redis.call('XREAD', 'STREAMS', KEYS[1], '0')", "1", "s"]);
        let (a, b) = d.both(&["EVAL", "return redis.call('xread', 'BLOCK', 0, 'STREAMS', KEYS[1], '$')", "1", "s"]);
        let head = |r: Result<Value, String>| r.err().map(|e| e.split(" script:").next().unwrap_or("").to_string());
        assert_eq!(head(a), head(b));
    }
}

/// A random stream command over two keys, with explicit IDs so that both
/// servers agree; the clock never enters a compared reply.
fn random_cmd(rng: &mut StdRng, next_ms: &mut u64) -> Vec<String> {
    let key = ["s1", "s2", "nokey"].choose(rng).unwrap().to_string();
    let group = ["g1", "g2"].choose(rng).unwrap().to_string();
    let consumer = ["c1", "c2", "c3"].choose(rng).unwrap().to_string();
    let some_id = |rng: &mut StdRng, next: u64| -> String {
        match rng.gen_range(0..12) {
            0 => "-".into(),
            1 => "+".into(),
            2 => format!("({}", rng.gen_range(0..next + 2)),
            3 => "bad".into(),
            _ => format!("{}-{}", rng.gen_range(0..next + 2), rng.gen_range(0..3)),
        }
    };
    let plain_id = |rng: &mut StdRng, next: u64| format!("{}-{}", rng.gen_range(0..next + 2), rng.gen_range(0..3));
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..22) {
        0..=5 => {
            let id = match rng.gen_range(0..10) {
                0 => format!("{}-*", *next_ms),
                1 => plain_id(rng, *next_ms),
                _ => {
                    *next_ms += rng.gen_range(0..3);
                    format!("{}-{}", *next_ms, rng.gen_range(0..4))
                }
            };
            let mut c = s(&["XADD", &key]);
            match rng.gen_range(0..8) {
                0 => c.extend(s(&["MAXLEN", "~", &rng.gen_range(0..150).to_string()])),
                1 => c.extend(s(&["MAXLEN", &rng.gen_range(0..150).to_string()])),
                2 => c.extend(s(&["MINID", "=", &plain_id(rng, *next_ms)])),
                3 => c.push("NOMKSTREAM".into()),
                _ => {}
            }
            c.push(id);
            let nf = rng.gen_range(1..3);
            for f in 0..nf {
                c.push(if rng.gen_bool(0.8) { format!("f{f}") } else { "other".into() });
                c.push(rng.gen_range(0..1000).to_string());
            }
            c
        }
        6 => s(&["XDEL", &key, &plain_id(rng, *next_ms), &plain_id(rng, *next_ms)]),
        7 => {
            let mut c = s(&["XTRIM", &key]);
            if rng.gen_bool(0.5) {
                c.extend(s(&["MAXLEN", ["~", "="].choose(rng).unwrap(), &rng.gen_range(0..200).to_string()]));
            } else {
                c.extend(s(&["MINID", ["~", "="].choose(rng).unwrap(), &plain_id(rng, *next_ms)]));
            }
            c
        }
        8 => {
            let mut c = s(&["XRANGE", &key, &some_id(rng, *next_ms), &some_id(rng, *next_ms)]);
            if rng.gen_bool(0.5) {
                c.extend(s(&["COUNT", &rng.gen_range(0..10).to_string()]));
            }
            c
        }
        9 => s(&["XREVRANGE", &key, &some_id(rng, *next_ms), &some_id(rng, *next_ms), "COUNT", "5"]),
        10 => s(&["XREAD", "COUNT", "3", "STREAMS", "s1", "s2", &plain_id(rng, *next_ms), &plain_id(rng, *next_ms)]),
        11 => match rng.gen_range(0..5) {
            0 => s(&["XGROUP", "CREATE", &key, &group, &plain_id(rng, *next_ms)]),
            1 => s(&["XGROUP", "SETID", &key, &group, &plain_id(rng, *next_ms)]),
            2 => s(&["XGROUP", "DESTROY", &key, &group]),
            3 => s(&["XGROUP", "CREATECONSUMER", &key, &group, &consumer]),
            _ => s(&["XGROUP", "DELCONSUMER", &key, &group, &consumer]),
        },
        12..=14 => {
            let mut c = s(&["XREADGROUP", "GROUP", &group, &consumer, "COUNT", &rng.gen_range(1..6).to_string()]);
            if rng.gen_bool(0.2) {
                c.push("NOACK".into());
            }
            let id = if rng.gen_bool(0.7) { ">".into() } else { plain_id(rng, *next_ms) };
            c.extend(s(&["STREAMS", &key, &id]));
            c
        }
        15 => s(&["XACK", &key, &group, &plain_id(rng, *next_ms), &plain_id(rng, *next_ms)]),
        16 => s(&["XPENDING", &key, &group]),
        17 => s(&["XPENDING", &key, &group, "-", "+", "10"]),
        18 => {
            let mut c = s(&["XCLAIM", &key, &group, &consumer, "0", &plain_id(rng, *next_ms)]);
            match rng.gen_range(0..4) {
                0 => c.push("JUSTID".into()),
                1 => c.push("FORCE".into()),
                2 => c.extend(s(&["RETRYCOUNT", "3"])),
                _ => {}
            }
            c
        }
        19 => s(&["XAUTOCLAIM", &key, &group, &consumer, "0", &plain_id(rng, *next_ms), "COUNT", "3"]),
        20 => s(&["XINFO", ["GROUPS", "STREAM"].choose(rng).unwrap(), &key]),
        _ => s(&["XLEN", &key]),
    }
}

#[test]
fn randomized_sequences() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    for seed in 0..6u64 {
        let _ = d.check(&["FLUSHALL"]);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut next_ms = 1;
        let mut history: Vec<String> = Vec::new();
        for _ in 0..500 {
            let cmd = random_cmd(&mut rng, &mut next_ms);
            history.push(cmd.join(" "));
            let args: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
            let (a, b) = d.both(&args);
            let f = |r: Result<Value, String>| r.map(|v| mask_pending(mask(v, TIME_FIELDS)));
            let (a, b) = (f(a), f(b));
            if a != b {
                let tail = history.len().saturating_sub(40);
                panic!(
                    "seed {seed}: differ on {args:?}\nours:   {a:?}\ntheirs: {b:?}\nlast commands:\n{}",
                    history[tail..].join("\n")
                );
            }
            if std::env::var("STREAMS_DIFF_TRACE").is_ok() {
                for g in ["g1", "g2"] {
                    for k in ["s1", "s2", "nokey"] {
                        let (a, b) = d.both(&["XINFO", "CONSUMERS", k, g]);
                        let (a, b) = (f(a), f(b));
                        assert_eq!(a, b, "seed {seed} after {args:?}: consumers of {k} {g}");
                    }
                }
            }
        }
        for key in ["s1", "s2"] {
            check_masked(&mut d, &["XINFO", "STREAM", key, "FULL", "COUNT", "0"]);
        }
    }
}

/// The keyspace events of `work` on `port`: channel names in order.
fn keyevents(port: u16, work: &mut dyn FnMut()) -> Vec<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut con = client.get_connection().expect("connect");
    let mut ps = con.as_pubsub();
    ps.psubscribe("__keyevent@0__:*").expect("psubscribe");
    work();
    ps.set_read_timeout(Some(std::time::Duration::from_millis(500))).expect("timeout");
    let mut out = Vec::new();
    while let Ok(msg) = ps.get_message() {
        out.push(msg.get_channel_name().to_string());
    }
    out
}

/// Consumer-group changes are notified (`xgroup-*`), reads, acks and claims
/// are not, and none of them touches a WATCH: Redis 7.0 counts them without
/// signalling the key as modified (fuzzer run 12 found EXEC aborted after
/// XGROUP SETID on a watched stream; trying the rest found extra `xack`,
/// `xclaim`, `xautoclaim`, `xreadgroup` events and missing `xgroup-createconsumer`
/// and `xgroup-delconsumer`).
#[test]
fn group_changes_notify_and_watch_as_redis() {
    let Some(mut d) = common::Diff::start(&["--shards", "2"]) else { return };
    let _ = d.check(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let script: &[&str] = &[
        "XADD {t}s 1-0 f v",
        "XGROUP CREATE {t}s g1 0",
        "XREADGROUP GROUP g1 c1 STREAMS {t}s >",
        "XACK {t}s g1 1-0",
        "XADD {t}s 2-0 f v",
        "XREADGROUP GROUP g1 c1 STREAMS {t}s >",
        "XCLAIM {t}s g1 c2 0 2-0 JUSTID",
        "XAUTOCLAIM {t}s g1 c3 0 0 JUSTID",
        "XREADGROUP GROUP g1 c1 STREAMS {t}s 0",
        "XGROUP SETID {t}s g1 0",
        "XGROUP CREATECONSUMER {t}s g1 c9",
        "XGROUP DELCONSUMER {t}s g1 c9",
        "XGROUP DESTROY {t}s g1",
        "XGROUP CREATE {t}s2 g1 $ MKSTREAM",
    ];
    let (ours, theirs) = (d.ours.port, d.theirs.port);
    let run = |port: u16| {
        keyevents(port, &mut || {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
            let mut con = client.get_connection().expect("connect");
            for c in script {
                let args: Vec<&str> = c.split(' ').collect();
                let _ = common::run_str(&mut con, &args);
            }
        })
    };
    let (a, b) = (run(ours), run(theirs));
    assert!(b.len() >= 10, "redis-server's events: {b:?}");
    assert_eq!(a, b, "keyspace events differ");

    // WATCH, then one group command from the same connection, then EXEC.
    for cmd in [
        "XACK {t}s g1 1-0",
        "XCLAIM {t}s g1 c2 0 1-0 JUSTID",
        "XAUTOCLAIM {t}s g1 c2 0 0 JUSTID",
        "XREADGROUP GROUP g1 c3 STREAMS {t}s 0",
        "XGROUP SETID {t}s g1 0",
        "XGROUP CREATE {t}s g2 0",
        "XGROUP CREATECONSUMER {t}s g1 c9",
        "XGROUP DELCONSUMER {t}s g1 c1",
        "XGROUP DESTROY {t}s g1",
        "XGROUP CREATE {t}new g1 0 MKSTREAM",
        "XADD {t}s 5-0 f v",
    ] {
        check_all(
            &mut d,
            &["FLUSHALL", "XADD {t}s 1-0 f v", "XGROUP CREATE {t}s g1 0", "XREADGROUP GROUP g1 c1 STREAMS {t}s >"],
        );
        let key = if cmd.contains("{t}new") { "{t}new" } else { "{t}s" };
        check_all(&mut d, &[&format!("WATCH {key}"), cmd, "MULTI", "PING"]);
        let _ = d.check(&["EXEC"]);
    }
}
