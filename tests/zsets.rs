//! Sorted-set commands against the real binary: multi-shard reads, CROSSSLOT
//! for the atomic forms, a large (skiplist) zset checked against a model,
//! ZSCAN, RESP3 shapes.

mod common;

use common::{moonshard, run_str};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use std::collections::BTreeSet;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn strings(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::BulkString(b) => String::from_utf8(b).unwrap(),
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn multi_key_reads_span_shards() {
    let server = moonshard(&["--shards", "4"]);
    let mut c = server.client();
    let k = common::keys_on_different_shards("zkey", 4, 3);
    run_str(&mut c, &["ZADD", &k[0], "1", "a", "2", "b", "3", "c"]).unwrap();
    run_str(&mut c, &["ZADD", &k[1], "10", "b", "20", "c", "30", "d"]).unwrap();
    run_str(&mut c, &["SADD", &k[2], "c", "e"]).unwrap();
    let r = run_str(&mut c, &["ZUNION", "3", &k[0], &k[1], &k[2], "WITHSCORES"]).unwrap();
    assert_eq!(strings(r), ["a", "1", "e", "1", "b", "12", "c", "24", "d", "30"]);
    let r = run_str(&mut c, &["ZINTER", "2", &k[0], &k[1], "WEIGHTS", "2", "1", "AGGREGATE", "MAX"]).unwrap();
    assert_eq!(strings(r), ["b", "c"]);
    let r = run_str(&mut c, &["ZINTER", "3", &k[0], &k[1], &k[2], "WITHSCORES"]).unwrap();
    assert_eq!(strings(r), ["c", "24"]);
    let r = run_str(&mut c, &["ZDIFF", "3", &k[0], &k[1], &k[2], "WITHSCORES"]).unwrap();
    assert_eq!(strings(r), ["a", "1"]);
    assert_eq!(run_str(&mut c, &["ZINTERCARD", "2", &k[0], &k[1]]), Ok(Value::Int(2)));
    assert_eq!(run_str(&mut c, &["ZINTERCARD", "2", &k[0], &k[1], "LIMIT", "1"]), Ok(Value::Int(1)));
    run_str(&mut c, &["SET", &k[2], "x"]).unwrap();
    let e = run_str(&mut c, &["ZUNION", "2", &k[0], &k[2]]).unwrap_err();
    assert!(e.starts_with("WRONGTYPE"), "{e}");
}

#[test]
fn atomic_forms_need_one_slot() {
    for shards in ["1", "4"] {
        let server = moonshard(&["--shards", shards]);
        let mut c = server.client();
        run_str(&mut c, &["ZADD", "a", "1", "x"]).unwrap();
        run_str(&mut c, &["ZADD", "b", "2", "x"]).unwrap();
        for cmd in [
            vec!["ZUNIONSTORE", "d", "2", "a", "b"],
            vec!["ZINTERSTORE", "a", "2", "a", "b"],
            vec!["ZDIFFSTORE", "d", "1", "a"],
            vec!["ZRANGESTORE", "d", "a", "0", "-1"],
            vec!["ZMPOP", "2", "a", "b", "MIN"],
        ] {
            let e = run_str(&mut c, &cmd).unwrap_err();
            assert!(e.starts_with("CROSSSLOT"), "{cmd:?} with {shards} shards: {e}");
        }
        run_str(&mut c, &["ZADD", "{t}a", "1", "x", "2", "y"]).unwrap();
        assert_eq!(run_str(&mut c, &["ZRANGESTORE", "{t}d", "{t}a", "0", "0"]), Ok(Value::Int(1)));
        assert_eq!(run_str(&mut c, &["ZUNIONSTORE", "{t}u", "2", "{t}a", "{t}d"]), Ok(Value::Int(2)));
        assert_eq!(
            strings(run_str(&mut c, &["ZRANGE", "{t}u", "0", "-1", "WITHSCORES"]).unwrap()),
            ["x", "2", "y", "2"]
        );
    }
}

/// A 5000-member zset (skiplist encoding) checked against a sorted model
/// through random edits, rank and range queries.
#[test]
fn large_zset_matches_a_model() {
    let server = moonshard(&["--shards", "4"]);
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(42);
    let mut model: BTreeSet<(i64, String)> = BTreeSet::new();
    let mut scores = std::collections::HashMap::new();
    let mut pipe = redis::pipe();
    for i in 0..5000 {
        let (m, s) = (format!("m{i:05}"), rng.gen_range(0..1000i64));
        pipe.cmd("ZADD").arg("big").arg(s).arg(&m).ignore();
        model.insert((s, m.clone()));
        scores.insert(m, s);
    }
    pipe.query::<()>(&mut c).unwrap();
    for step in 0..300 {
        let m = format!("m{:05}", rng.gen_range(0..5000));
        match step % 3 {
            0 => {
                let s = rng.gen_range(0..1000i64);
                run_str(&mut c, &["ZADD", "big", &s.to_string(), &m]).unwrap();
                if let Some(old) = scores.insert(m.clone(), s) {
                    model.remove(&(old, m.clone()));
                }
                model.insert((s, m.clone()));
            }
            1 => {
                if let Some(old) = scores.remove(&m) {
                    model.remove(&(old, m.clone()));
                }
                run_str(&mut c, &["ZREM", "big", &m]).unwrap();
            }
            _ => {}
        }
        let sorted: Vec<&(i64, String)> = model.iter().collect();
        let want_rank = sorted.iter().position(|(_, x)| *x == m);
        let got = run_str(&mut c, &["ZRANK", "big", &m]).unwrap();
        match want_rank {
            Some(r) => assert_eq!(got, Value::Int(r as i64)),
            None => assert_eq!(got, Value::Nil),
        }
        let start = rng.gen_range(0..sorted.len());
        let got = strings(run_str(&mut c, &["ZRANGE", "big", &start.to_string(), &(start + 4).to_string()]).unwrap());
        let want: Vec<String> = sorted.iter().skip(start).take(5).map(|(_, x)| x.clone()).collect();
        assert_eq!(got, want);
        let (lo, hi) = (rng.gen_range(0..1000), rng.gen_range(0..1000));
        let n = model.iter().filter(|(s, _)| *s > lo && *s <= hi).count();
        assert_eq!(run_str(&mut c, &["ZCOUNT", "big", &format!("({lo}"), &hi.to_string()]), Ok(Value::Int(n as i64)));
        let got =
            strings(run_str(&mut c, &["ZREVRANGEBYSCORE", "big", &hi.to_string(), "-inf", "LIMIT", "3", "2"]).unwrap());
        let want: Vec<String> =
            sorted.iter().rev().filter(|(s, _)| *s <= hi).skip(3).take(2).map(|(_, x)| x.clone()).collect();
        assert_eq!(got, want);
    }
    assert_eq!(run_str(&mut c, &["ZCARD", "big"]), Ok(Value::Int(model.len() as i64)));
    // Removing ranks and popping keep the order.
    run_str(&mut c, &["ZREMRANGEBYRANK", "big", "10", "19"]).unwrap();
    let sorted: Vec<String> = model.iter().map(|(_, m)| m.clone()).collect();
    let got = strings(run_str(&mut c, &["ZRANGE", "big", "8", "11"]).unwrap());
    assert_eq!(got, [sorted[8].clone(), sorted[9].clone(), sorted[20].clone(), sorted[21].clone()]);
    let got = strings(run_str(&mut c, &["ZPOPMAX", "big", "2"]).unwrap());
    assert_eq!(got[0], sorted[sorted.len() - 1]);
    assert_eq!(got[2], sorted[sorted.len() - 2]);
}

#[test]
fn zscan_walks_a_large_zset() {
    let server = moonshard(&["--shards", "4"]);
    let mut c = server.client();
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("ZADD").arg("z").arg(i).arg(format!("m{i}")).ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    let mut seen = std::collections::HashMap::new();
    let mut cursor = "0".to_string();
    let mut rounds = 0;
    loop {
        let Value::Array(parts) = run_str(&mut c, &["ZSCAN", "z", &cursor, "COUNT", "100"]).unwrap() else { panic!() };
        let Value::BulkString(next) = &parts[0] else { panic!() };
        cursor = String::from_utf8(next.clone()).unwrap();
        for pair in strings(parts[1].clone()).chunks(2) {
            seen.insert(pair[0].clone(), pair[1].clone());
        }
        rounds += 1;
        if cursor == "0" {
            break;
        }
        assert!(rounds < 1000);
    }
    assert!(rounds > 1);
    assert_eq!(seen.len(), 1000);
    assert_eq!(seen["m7"], "7");
}

#[test]
fn empty_zsets_are_deleted_and_nan_is_refused() {
    let server = moonshard(&["--shards", "4"]);
    let mut c = server.client();
    run_str(&mut c, &["ZADD", "z", "1", "a"]).unwrap();
    assert_eq!(strings(run_str(&mut c, &["ZPOPMIN", "z", "5"]).unwrap()), ["a", "1"]);
    assert_eq!(run_str(&mut c, &["EXISTS", "z"]), Ok(Value::Int(0)));
    run_str(&mut c, &["ZADD", "z", "inf", "a"]).unwrap();
    let e = run_str(&mut c, &["ZINCRBY", "z", "-inf", "a"]).unwrap_err();
    assert_eq!(e, "ERR resulting score is not a number (NaN)");
    assert_eq!(run_str(&mut c, &["ZSCORE", "z", "a"]), Ok(bulk("inf")));
    assert_eq!(run_str(&mut c, &["ZREMRANGEBYSCORE", "z", "-inf", "+inf"]), Ok(Value::Int(1)));
    assert_eq!(run_str(&mut c, &["EXISTS", "z"]), Ok(Value::Int(0)));
}

fn hello3(c: &mut redis::Connection) -> bool {
    match redis::cmd("HELLO").arg(3).query::<Value>(c) {
        Ok(_) => true,
        Err(e) if e.to_string().contains("not implemented") => {
            eprintln!("\n*** SKIPPED: HELLO not implemented in this build; RESP3 shapes not checked ***\n");
            false
        }
        Err(e) => panic!("HELLO 3: {e}"),
    }
}

#[test]
fn resp3_shapes() {
    let server = moonshard(&["--shards", "4"]);
    let mut c = server.client();
    if !hello3(&mut c) {
        return;
    }
    let pair = |m: &str, s: f64| Value::Array(vec![bulk(m), Value::Double(s)]);
    run_str(&mut c, &["ZADD", "{t}z", "1", "a", "2.5", "b", "3", "c"]).unwrap();
    assert_eq!(run_str(&mut c, &["ZSCORE", "{t}z", "b"]), Ok(Value::Double(2.5)));
    assert_eq!(run_str(&mut c, &["ZSCORE", "{t}z", "x"]), Ok(Value::Nil));
    assert_eq!(run_str(&mut c, &["ZMSCORE", "{t}z", "a", "x"]), Ok(Value::Array(vec![Value::Double(1.0), Value::Nil])));
    assert_eq!(run_str(&mut c, &["ZINCRBY", "{t}z", "1", "a"]), Ok(Value::Double(2.0)));
    assert_eq!(run_str(&mut c, &["ZADD", "{t}z", "INCR", "-1", "a"]), Ok(Value::Double(1.0)));
    assert_eq!(
        run_str(&mut c, &["ZRANGE", "{t}z", "0", "1", "WITHSCORES"]),
        Ok(Value::Array(vec![pair("a", 1.0), pair("b", 2.5)]))
    );
    assert_eq!(run_str(&mut c, &["ZRANGE", "{t}z", "0", "0"]), Ok(Value::Array(vec![bulk("a")])));
    assert_eq!(
        run_str(&mut c, &["ZUNION", "1", "{t}z", "WITHSCORES"]),
        Ok(Value::Array(vec![pair("a", 1.0), pair("b", 2.5), pair("c", 3.0)]))
    );
    assert_eq!(
        run_str(&mut c, &["ZRANDMEMBER", "{t}z", "-1", "WITHSCORES"])
            .map(|v| matches!(v, Value::Array(ref a) if matches!(a[0], Value::Array(_)))),
        Ok(true)
    );
    assert_eq!(run_str(&mut c, &["ZPOPMIN", "{t}z"]), Ok(Value::Array(vec![bulk("a"), Value::Double(1.0)])));
    assert_eq!(run_str(&mut c, &["ZPOPMAX", "{t}z", "1"]), Ok(Value::Array(vec![pair("c", 3.0)])));
    assert_eq!(
        run_str(&mut c, &["ZMPOP", "1", "{t}z", "MIN"]),
        Ok(Value::Array(vec![bulk("{t}z"), Value::Array(vec![pair("b", 2.5)])]))
    );
    assert_eq!(run_str(&mut c, &["ZMPOP", "1", "{t}z", "MIN"]), Ok(Value::Nil));
    assert_eq!(run_str(&mut c, &["ZPOPMIN", "{t}z"]), Ok(Value::Array(vec![])));
    run_str(&mut c, &["ZADD", "{t}i", "inf", "a"]).unwrap();
    assert_eq!(run_str(&mut c, &["ZSCORE", "{t}i", "a"]), Ok(Value::Double(f64::INFINITY)));
}
