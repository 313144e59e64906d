//! Differential test of the large sorted-set encoding: sets of hundreds of
//! members (skiplist in both servers, default thresholds) through random
//! inserts, re-scores, removals, rank and range queries and pops, with
//! scores that often tie, compared reply for reply with a real redis-server.

mod common;

use common::{run_str, Diff};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use redis::Value;

const KEYS: [&str; 2] = ["{z}a", "{z}b"];
const LEX: &str = "{z}lex";
const MEMBERS: usize = 500;

fn member(rng: &mut StdRng) -> String {
    let i = rng.gen_range(0..MEMBERS);
    if i % 97 == 0 {
        // Past zset-max-listpack-value: a new key with it starts as a skiplist.
        format!("long-{i}-{}", "x".repeat(70))
    } else {
        format!("m{i:03}")
    }
}

/// Scores that tie often (small integers), plus fractions, big integers,
/// infinities and -0, which a skiplist keeps (a listpack stores it as 0).
fn score(rng: &mut StdRng) -> String {
    match rng.gen_range(0..20) {
        0 => "-inf".into(),
        1 => "+inf".into(),
        2 => "-0".into(),
        3 => format!("{}.{}", rng.gen_range(-50..50), rng.gen_range(0..100)),
        4 => rng.gen_range(-(1i64 << 55)..(1i64 << 55)).to_string(),
        5 => format!("{}e-3", rng.gen_range(-1000..1000)),
        _ => rng.gen_range(-40..40).to_string(),
    }
}

fn score_bound(rng: &mut StdRng) -> String {
    let s = rng.gen_range(-45..45).to_string();
    match rng.gen_range(0..8) {
        0 => "-inf".into(),
        1 => "+inf".into(),
        2 | 3 => format!("({s}"),
        _ => s,
    }
}

fn lex_bound(rng: &mut StdRng) -> String {
    match rng.gen_range(0..8) {
        0 => "-".into(),
        1 => "+".into(),
        2 | 3 => format!("(m{:03}", rng.gen_range(0..MEMBERS)),
        _ => format!("[m{:03}", rng.gen_range(0..MEMBERS)),
    }
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn card(d: &mut Diff, key: &str) -> i64 {
    match d.check(&["ZCARD", key]) {
        Ok(Value::Int(n)) => n,
        other => panic!("ZCARD {key}: {other:?}"),
    }
}

/// Refills `key` with one ZADD of many pairs while it is small, so the
/// random edits work on a big set.
fn keep_big(d: &mut Diff, rng: &mut StdRng, key: &str, lex: bool) {
    if card(d, key) >= 200 {
        return;
    }
    let mut line = format!("ZADD {key}");
    for _ in 0..250 {
        let s = if lex { "0".to_string() } else { score(rng) };
        line += &format!(" {s} {}", member(rng));
    }
    d.check(&words(&line)).ok();
}

fn compare_whole(d: &mut Diff, key: &str) {
    d.check(&["ZRANGE", key, "0", "-1", "WITHSCORES"]).ok();
    d.check(&["OBJECT", "ENCODING", key]).ok();
}

fn random_step(d: &mut Diff, rng: &mut StdRng) {
    let k = *KEYS.choose(rng).unwrap();
    let k2 = *KEYS.choose(rng).unwrap();
    let (m, m2) = (member(rng), member(rng));
    let (s, s2) = (score(rng), score(rng));
    let (b1, b2) = (score_bound(rng), score_bound(rng));
    let i1 = rng.gen_range(-550..550);
    let (i1s, i2s) = (i1.to_string(), (i1 + rng.gen_range(-3..30)).to_string());
    let (off, cnt) = (rng.gen_range(0..40).to_string(), rng.gen_range(-1..12).to_string());
    let rev = if rng.gen_bool(0.5) { "REV" } else { "" };
    let ws = if rng.gen_bool(0.5) { "WITHSCORES" } else { "" };
    let flag = ["NX", "XX", "GT", "LT", "CH", "GT CH", "XX LT CH", "INCR", "NX INCR"][rng.gen_range(0..9)];
    let line = match rng.gen_range(0..40) {
        0..=11 => format!("ZADD {k} {s} {m} {s2} {m2}"),
        12 | 13 => format!("ZADD {k} {flag} {s} {m}"),
        14 | 15 => format!("ZINCRBY {k} {} {m}", rng.gen_range(-3..4)),
        16..=18 => format!("ZREM {k} {m} {m2}"),
        19 => format!("ZMSCORE {k} {m} {m2}"),
        20 => format!("ZSCORE {k} {m}"),
        21 | 22 => format!("ZRANK {k} {m}"),
        23 => format!("ZREVRANK {k} {m}"),
        24 => format!("ZCOUNT {k} {b1} {b2}"),
        25 | 26 => format!("ZRANGE {k} {i1s} {i2s} {rev} {ws}"),
        27 => format!("ZRANGE {k} {b1} {b2} BYSCORE LIMIT {off} {cnt} {ws}"),
        28 => format!("ZREVRANGEBYSCORE {k} {b1} {b2} {ws} LIMIT {off} {cnt}"),
        29 => format!("ZREMRANGEBYRANK {k} {i1s} {i2s}"),
        30 => format!("ZREMRANGEBYSCORE {k} {b1} {b1}"),
        31..=33 => format!("{} {k} {}", ["ZPOPMIN", "ZPOPMAX"][rng.gen_range(0..2)], rng.gen_range(1..6)),
        34 => format!("{} {k}", ["ZPOPMIN", "ZPOPMAX"][rng.gen_range(0..2)]),
        35 => format!("ZMPOP 2 {k} {k2} {} COUNT {}", ["MIN", "MAX"][rng.gen_range(0..2)], rng.gen_range(1..4)),
        36 => format!("ZINTERSTORE {{z}}dst 2 {k} {k2} AGGREGATE {}", ["SUM", "MIN", "MAX"][rng.gen_range(0..3)]),
        37 => format!("ZRANGESTORE {{z}}dst {k} {i1s} {i2s}"),
        38 => "ZRANGE {z}dst 0 -1 WITHSCORES".to_string(),
        _ => {
            let (l1, l2) = (lex_bound(rng), lex_bound(rng));
            match rng.gen_range(0..6) {
                0 => format!("ZADD {LEX} 0 {m} 0 {m2}"),
                1 => format!("ZRANGEBYLEX {LEX} {l1} {l2} LIMIT {off} {cnt}"),
                2 => format!("ZREVRANGEBYLEX {LEX} {l1} {l2} LIMIT {off} {cnt}"),
                3 => format!("ZLEXCOUNT {LEX} {l1} {l2}"),
                4 => format!("ZRANK {LEX} {m}"),
                _ => format!("ZREMRANGEBYLEX {LEX} {l1} {l1}"),
            }
        }
    };
    d.check(&words(&line)).ok();
}

fn random_skiplists(d: &mut Diff, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    for step in 0..steps {
        if step % 50 == 0 {
            for k in KEYS {
                keep_big(d, &mut rng, k, false);
            }
            keep_big(d, &mut rng, LEX, true);
        }
        random_step(d, &mut rng);
        if step % 300 == 299 {
            for k in KEYS.iter().chain(&[LEX]) {
                compare_whole(d, k);
            }
        }
    }
    for k in KEYS.iter().chain(&[LEX]) {
        compare_whole(d, k);
    }
}

#[test]
fn random_skiplist_sequences_match_redis() {
    let Some(mut d) = Diff::start(&["--shards", "2"]) else { return };
    for seed in 0..2 {
        random_skiplists(&mut d, seed, 1500);
        assert_eq!(run_str(&mut d.a, &["OBJECT", "ENCODING", KEYS[0]]), Ok(Value::BulkString(b"skiplist".to_vec())));
    }
}

/// redis-benchmark's shape: one set grown by random ZADDs to thousands of
/// members with colliding integer scores, then popped empty from both ends.
#[test]
fn grown_then_popped_empty_matches_redis() {
    let Some(mut d) = Diff::start(&["--shards", "1"]) else { return };
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..60 {
        let mut line = String::from("ZADD {z}big");
        for _ in 0..100 {
            line += &format!(" {} element:{:06}", rng.gen_range(0..2000), rng.gen_range(0..8000));
        }
        d.check(&words(&line)).ok();
    }
    assert!(card(&mut d, "{z}big") > 3000);
    d.check(&["ZRANK", "{z}big", "element:000001"]).ok();
    d.check(&["ZCOUNT", "{z}big", "(100", "1900"]).ok();
    loop {
        let pop = ["ZPOPMIN", "ZPOPMAX"][rng.gen_range(0..2)];
        d.check(&[pop, "{z}big", &rng.gen_range(1..200).to_string()]).ok();
        d.check(&["ZRANGE", "{z}big", "0", "2", "WITHSCORES"]).ok();
        if card(&mut d, "{z}big") == 0 {
            break;
        }
    }
    d.check(&["EXISTS", "{z}big"]).ok();
}
