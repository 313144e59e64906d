//! Expiry: lazy on access and active in the background, on every shard.

mod common;

use common::run_str;
use redis::Value;
use std::time::{Duration, Instant};

fn dbsize(c: &mut redis::Connection) -> i64 {
    match run_str(c, &["DBSIZE"]) {
        Ok(Value::Int(n)) => n,
        other => panic!("DBSIZE: {other:?}"),
    }
}

/// Polls DBSIZE (which never touches keys) until it equals `want`.
fn wait_dbsize(c: &mut redis::Connection, want: i64, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let n = dbsize(c);
        if n == want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn active_expiry_empties_every_shard_without_access() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    // Keys spread over all slots, hence all shards; a few stay.
    for i in 0..400 {
        run_str(&mut c, &["SET", &format!("vol{i}"), "v", "PX", "200"]).unwrap();
    }
    for i in 0..8 {
        run_str(&mut c, &["SET", &format!("keep{i}"), "v"]).unwrap();
    }
    run_str(&mut c, &["SET", "late", "v", "EX", "1000"]).unwrap();
    let n = wait_dbsize(&mut c, 9, Duration::from_secs(15));
    assert_eq!(n, 9, "expired keys were not removed in the background");
    assert_eq!(run_str(&mut c, &["EXISTS", "keep0", "keep7", "late"]), Ok(Value::Int(3)));
}

#[test]
fn active_expiry_in_other_databases() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut c = s.client();
    run_str(&mut c, &["SELECT", "5"]).unwrap();
    for i in 0..50 {
        run_str(&mut c, &["SET", &format!("k{i}"), "v", "PX", "100"]).unwrap();
    }
    assert_eq!(wait_dbsize(&mut c, 0, Duration::from_secs(15)), 0);
}

#[test]
fn lazy_expiry_on_access() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    run_str(&mut c, &["SET", "a", "1", "PX", "30"]).unwrap();
    run_str(&mut c, &["SET", "b", "2", "PX", "30"]).unwrap();
    run_str(&mut c, &["SET", "{b}c", "3", "PX", "30"]).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(run_str(&mut c, &["GET", "a"]), Ok(Value::Nil));
    assert_eq!(run_str(&mut c, &["TTL", "b"]), Ok(Value::Int(-2)));
    assert_eq!(run_str(&mut c, &["RENAME", "{b}c", "{b}d"]), Err("ERR no such key".into()));
    assert_eq!(run_str(&mut c, &["INCR", "a"]), Ok(Value::Int(1)));
    assert_eq!(run_str(&mut c, &["TTL", "a"]), Ok(Value::Int(-1)));
}

#[test]
fn persist_and_overwrite_cancel_expiry() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut c = s.client();
    run_str(&mut c, &["SET", "p", "1", "PX", "100"]).unwrap();
    run_str(&mut c, &["SET", "o", "1", "PX", "100"]).unwrap();
    run_str(&mut c, &["SET", "g", "1", "PX", "100"]).unwrap();
    run_str(&mut c, &["SET", "x", "1", "PX", "100"]).unwrap();
    assert_eq!(run_str(&mut c, &["PERSIST", "p"]), Ok(Value::Int(1)));
    assert_eq!(run_str(&mut c, &["SET", "o", "2"]), Ok(Value::Okay));
    assert_eq!(run_str(&mut c, &["GETEX", "g", "PERSIST"]), Ok(Value::BulkString(b"1".to_vec())));
    assert_eq!(wait_dbsize(&mut c, 3, Duration::from_secs(15)), 3);
    assert_eq!(
        run_str(&mut c, &["MGET", "p", "o", "g", "x"]).map(|v| format!("{v:?}")),
        Ok(format!(
            "{:?}",
            Value::Array(vec![
                Value::BulkString(b"1".to_vec()),
                Value::BulkString(b"2".to_vec()),
                Value::BulkString(b"1".to_vec()),
                Value::Nil,
            ])
        ))
    );
}

#[test]
fn keys_and_scan_skip_expired_keys() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    for i in 0..20 {
        run_str(&mut c, &["SET", &format!("e{i}"), "v", "PX", "20"]).unwrap();
    }
    run_str(&mut c, &["SET", "stay", "v"]).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert_eq!(keys, vec!["stay".to_string()]);
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let (next, keys): (String, Vec<String>) =
            redis::cmd("SCAN").arg(&cursor).arg("COUNT").arg(100).query(&mut c).unwrap();
        seen.extend(keys);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, vec!["stay".to_string()]);
    assert!(matches!(run_str(&mut c, &["RANDOMKEY"]), Ok(Value::BulkString(k)) if k == b"stay"));
}
