//! Transactions through a real client: atomic pipelines over keys on
//! different shards, WATCH under concurrency, and cross-shard atomicity.

mod common;
mod raw_resp;

use redis::Commands;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Keys that land on each of the 4 shards (slot * 4 / 16384), two per shard.
fn keys_on_all_shards(_con: &mut redis::Connection) -> Vec<String> {
    let mut per_shard: Vec<Vec<String>> = vec![Vec::new(); 4];
    for i in 0.. {
        let k = format!("acct:{i}");
        let slot = moonshard::shard::slot::key_slot(k.as_bytes());
        let shard = (slot as usize) * 4 / 16384;
        if per_shard[shard].len() < 2 {
            per_shard[shard].push(k);
        }
        if per_shard.iter().all(|v| v.len() == 2) {
            break;
        }
    }
    per_shard.concat()
}

#[test]
fn atomic_pipeline_over_many_shards() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut con = s.client();
    let keys = keys_on_all_shards(&mut con);
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (i, k) in keys.iter().enumerate() {
        pipe.set(k, i as i64);
    }
    for k in &keys {
        pipe.incr(k, 10);
    }
    pipe.cmd("DBSIZE");
    let res: Vec<redis::Value> = pipe.query(&mut con).unwrap();
    assert_eq!(res.len(), keys.len() * 2 + 1);
    assert_eq!(res.last(), Some(&redis::Value::Int(keys.len() as i64)));
    let vals: Vec<i64> = con.mget(&keys).unwrap();
    assert_eq!(vals, (0..keys.len() as i64).map(|i| i + 10).collect::<Vec<_>>());
}

#[test]
fn runtime_error_inside_exec_does_not_stop_the_rest() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut con = raw_resp::Raw::connect(s.port);
    assert_eq!(con.call(&["SET", "str", "x"]), "+OK\r\n");
    assert_eq!(con.call(&["MULTI"]), "+OK\r\n");
    for c in [&["INCR", "str"][..], &["SET", "other", "1"], &["INCR", "other"]] {
        assert_eq!(con.call(c), "+QUEUED\r\n");
    }
    assert_eq!(con.call(&["EXEC"]), "*3\r\n-ERR value is not an integer or out of range\r\n+OK\r\n:2\r\n");
}

#[test]
fn crossslot_command_inside_multi_aborts_the_transaction() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut con = s.client();
    common::run_str(&mut con, &["SET", "a", "1"]).unwrap();
    common::run_str(&mut con, &["MULTI"]).unwrap();
    let e = common::run_str(&mut con, &["RENAME", "a", "b"]).unwrap_err();
    assert!(e.starts_with("CROSSSLOT"), "{e}");
    let e = common::run_str(&mut con, &["EXEC"]).unwrap_err();
    assert_eq!(e, "EXECABORT Transaction discarded because of previous errors.");
    common::run_str(&mut con, &["MULTI"]).unwrap();
    let e = common::run_str(&mut con, &["BLMOVE", "a", "b", "LEFT", "LEFT", "0"]).unwrap_err();
    assert!(e.starts_with("CROSSSLOT"), "{e}");
    common::run_str(&mut con, &["DISCARD"]).unwrap();
    // Same-slot keys are fine.
    common::run_str(&mut con, &["SET", "{t}a", "1"]).unwrap();
    common::run_str(&mut con, &["MULTI"]).unwrap();
    common::run_str(&mut con, &["RENAME", "{t}a", "{t}b"]).unwrap();
    common::run_str(&mut con, &["MSET", "x", "1", "y", "2"]).unwrap();
    let exec = common::run_str(&mut con, &["EXEC"]).unwrap();
    assert_eq!(exec, redis::Value::Array(vec![redis::Value::Okay, redis::Value::Okay]));
}

#[test]
fn optimistic_locking_with_watch_counts_every_increment() {
    let s = common::moonshard(&["--shards", "4"]);
    let url = s.url();
    let threads = 4;
    let per_thread = 60;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut done = 0;
                let mut attempts = 0;
                while done < per_thread {
                    attempts += 1;
                    assert!(attempts < 100_000, "WATCH retries never succeed");
                    let _: () = redis::cmd("WATCH").arg("counter").arg("other").query(&mut con).unwrap();
                    let v: Option<i64> = con.get("counter").unwrap();
                    let res: Option<(i64,)> = redis::pipe()
                        .atomic()
                        .set("counter", v.unwrap_or(0) + 1)
                        .ignore()
                        .incr("other", 1)
                        .query(&mut con)
                        .unwrap();
                    if res.is_some() {
                        done += 1;
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut con = s.client();
    let counter: i64 = con.get("counter").unwrap();
    let other: i64 = con.get("other").unwrap();
    assert_eq!(counter, threads * per_thread);
    assert_eq!(other, threads * per_thread);
}

/// Transfers between keys on different shards while readers check that the
/// total never changes, both through MULTI/MGET/EXEC and plain MGET.
#[test]
fn cross_shard_transactions_are_atomic() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut con = s.client();
    let keys = keys_on_all_shards(&mut con);
    let start = 1000i64;
    for k in &keys {
        let _: () = con.set(k, start).unwrap();
    }
    let total = start * keys.len() as i64;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3u64)
        .map(|t| {
            let (url, keys) = (s.url(), keys.clone());
            std::thread::spawn(move || {
                use rand::{Rng, SeedableRng};
                let mut rng = rand::rngs::StdRng::seed_from_u64(t);
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                for _ in 0..300 {
                    let a = rng.gen_range(0..keys.len());
                    let b = (a + rng.gen_range(1..keys.len())) % keys.len();
                    let amount = rng.gen_range(1..50);
                    let (x, y): (i64, i64) =
                        redis::pipe().atomic().decr(&keys[a], amount).incr(&keys[b], amount).query(&mut con).unwrap();
                    assert!(x + y != 0 || amount == 0);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (url, keys, stop) = (s.url(), keys.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut checks = 0;
                while !stop.load(Ordering::Relaxed) || checks < 50 {
                    let vals: Vec<i64> = if r == 0 {
                        let (v,): (Vec<i64>,) = redis::pipe().atomic().mget(&keys).query(&mut con).unwrap();
                        v
                    } else {
                        con.mget(&keys).unwrap()
                    };
                    assert_eq!(vals.iter().sum::<i64>(), total, "a reader saw a partial transfer: {vals:?}");
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() >= 50);
    }
    let vals: Vec<i64> = con.mget(&keys).unwrap();
    assert_eq!(vals.iter().sum::<i64>(), total);
}

#[test]
fn keyless_commands_inside_multi_see_every_shard() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut con = s.client();
    let keys = keys_on_all_shards(&mut con);
    let mut pipe = redis::pipe();
    pipe.atomic();
    for k in &keys {
        pipe.set(k, 1).ignore();
    }
    pipe.cmd("DBSIZE").cmd("KEYS").arg("acct:*").cmd("FLUSHALL").ignore().cmd("DBSIZE");
    let (n, mut listed, after): (i64, Vec<String>, i64) = pipe.query(&mut con).unwrap();
    listed.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(n, keys.len() as i64);
    assert_eq!(listed, expected);
    assert_eq!(after, 0);
}

#[test]
fn disconnect_inside_multi_and_with_watches_leaves_no_trace() {
    let s = common::moonshard(&["--shards", "4"]);
    {
        let mut con = s.client();
        common::run_str(&mut con, &["WATCH", "a", "b", "c"]).unwrap();
        common::run_str(&mut con, &["MULTI"]).unwrap();
        common::run_str(&mut con, &["SET", "a", "1"]).unwrap();
    }
    let mut con = s.client();
    // The abandoned transaction never ran.
    for _ in 0..50 {
        if common::run_str(&mut con, &["CLIENT", "LIST"]).map(|v| format!("{v:?}").matches("id=").count()).unwrap_or(0)
            == 1
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(common::run_str(&mut con, &["EXISTS", "a"]).unwrap(), redis::Value::Int(0));
    common::run_str(&mut con, &["SET", "a", "2"]).unwrap();
    let info = common::run_str(&mut con, &["CLIENT", "INFO"]).unwrap();
    assert!(format!("{info:?}").contains("multi=-1"), "{info:?}");
}
