//! Keyspace commands through the real binary (expected replies are Redis 7.0's).

mod common;

use common::run_str;
use redis::Value;
use std::collections::BTreeSet;

fn int(n: i64) -> Result<Value, String> {
    Ok(Value::Int(n))
}

fn status(s: &str) -> Result<Value, String> {
    Ok(if s == "OK" { Value::Okay } else { Value::SimpleString(s.to_string()) })
}

fn err(s: &str) -> Result<Value, String> {
    Err(s.to_string())
}

fn set_many(c: &mut redis::Connection, keys: impl IntoIterator<Item = String>) {
    for k in keys {
        run_str(c, &["SET", &k, "v"]).unwrap();
    }
}

#[test]
fn del_exists_touch_type() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    set_many(&mut c, (0..20).map(|i| format!("k{i}")));
    assert_eq!(run_str(&mut c, &["EXISTS", "k1", "k1", "k2", "nope"]), int(3));
    assert_eq!(run_str(&mut c, &["TOUCH", "k1", "k1", "nope", "k3"]), int(3));
    assert_eq!(run_str(&mut c, &["DEL", "k1", "k1", "k2", "nope", "k19"]), int(3));
    assert_eq!(run_str(&mut c, &["UNLINK", "k3", "k4", "k3"]), int(2));
    assert_eq!(run_str(&mut c, &["EXISTS", "k1", "k2", "k3", "k4", "k19", "k5"]), int(1));
    assert_eq!(run_str(&mut c, &["DBSIZE"]), int(15));
    assert_eq!(run_str(&mut c, &["TYPE", "k5"]), status("string"));
    assert_eq!(run_str(&mut c, &["TYPE", "k1"]), status("none"));
}

#[test]
fn expire_options_and_ttls() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut c = s.client();
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "100"]), int(0));
    assert_eq!(run_str(&mut c, &["TTL", "k"]), int(-2));
    assert_eq!(run_str(&mut c, &["PTTL", "k"]), int(-2));
    assert_eq!(run_str(&mut c, &["EXPIRETIME", "k"]), int(-2));
    run_str(&mut c, &["SET", "k", "v"]).unwrap();
    assert_eq!(run_str(&mut c, &["TTL", "k"]), int(-1));
    assert_eq!(run_str(&mut c, &["PEXPIRETIME", "k"]), int(-1));
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "100", "XX"]), int(0));
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "100", "GT"]), int(0));
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "100", "NX"]), int(1));
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "200", "NX"]), int(0));
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "50", "GT"]), int(0));
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "200", "GT"]), int(1));
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "300", "LT"]), int(0));
    assert_eq!(run_str(&mut c, &["EXPIREAT", "k", "4000000000", "XX"]), int(1));
    assert_eq!(run_str(&mut c, &["EXPIRETIME", "k"]), int(4_000_000_000));
    assert_eq!(run_str(&mut c, &["PEXPIRETIME", "k"]), int(4_000_000_000_000));
    assert_eq!(run_str(&mut c, &["PEXPIREAT", "k", "4000000000001"]), int(1));
    assert_eq!(run_str(&mut c, &["PEXPIRETIME", "k"]), int(4_000_000_000_001));
    assert_eq!(run_str(&mut c, &["PEXPIRE", "k", "100000"]), int(1));
    assert!(matches!(run_str(&mut c, &["PTTL", "k"]), Ok(Value::Int(99_000..=100_000))));
    assert_eq!(run_str(&mut c, &["TTL", "k"]), int(100));
    assert_eq!(
        run_str(&mut c, &["EXPIRE", "k", "1", "NX", "XX"]),
        err("ERR NX and XX, GT or LT options at the same time are not compatible")
    );
    assert_eq!(
        run_str(&mut c, &["EXPIRE", "k", "1", "GT", "LT"]),
        err("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "1", "BOGUS"]), err("ERR Unsupported option BOGUS"));
    assert_eq!(
        run_str(&mut c, &["EXPIRE", "k", "9223372036854775807"]),
        err("ERR invalid expire time in 'expire' command")
    );
    assert_eq!(
        run_str(&mut c, &["PEXPIRE", "k", "9223372036854775807"]),
        err("ERR invalid expire time in 'pexpire' command")
    );
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "1.5"]), err("ERR value is not an integer or out of range"));
    assert_eq!(run_str(&mut c, &["PERSIST", "k"]), int(1));
    assert_eq!(run_str(&mut c, &["PERSIST", "k"]), int(0));
    assert_eq!(run_str(&mut c, &["TTL", "k"]), int(-1));
    // A time in the past deletes the key and still answers 1.
    assert_eq!(run_str(&mut c, &["EXPIRE", "k", "-10"]), int(1));
    assert_eq!(run_str(&mut c, &["EXISTS", "k"]), int(0));
    run_str(&mut c, &["SET", "k", "v"]).unwrap();
    assert_eq!(run_str(&mut c, &["EXPIREAT", "k", "0"]), int(1));
    assert_eq!(run_str(&mut c, &["GET", "k"]), Ok(Value::Nil));
}

#[test]
fn keys_and_randomkey_cover_every_shard() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    assert_eq!(run_str(&mut c, &["RANDOMKEY"]), Ok(Value::Nil));
    assert_eq!(run_str(&mut c, &["KEYS", "*"]), Ok(Value::Array(vec![])));
    let all: BTreeSet<String> = (0..100).map(|i| format!("user:{i}")).collect();
    set_many(&mut c, all.iter().cloned());
    set_many(&mut c, ["other".to_string()]);
    let keys: BTreeSet<String> = redis::cmd("KEYS").arg("user:*").query(&mut c).unwrap();
    assert_eq!(keys, all);
    let keys: BTreeSet<String> = redis::cmd("KEYS").arg("user:1?").query(&mut c).unwrap();
    assert_eq!(keys.len(), 10);
    let mut seen = BTreeSet::new();
    for _ in 0..400 {
        let k: String = redis::cmd("RANDOMKEY").query(&mut c).unwrap();
        assert!(all.contains(&k) || k == "other");
        seen.insert(k);
    }
    assert!(seen.len() > 20, "RANDOMKEY keeps returning the same few keys: {seen:?}");
}

fn scan_all(c: &mut redis::Connection, extra: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        let mut args = vec!["SCAN", &cursor];
        args.extend_from_slice(extra);
        let (next, keys): (String, Vec<String>) = redis::cmd(args[0]).arg(&args[1..]).query(c).unwrap();
        out.extend(keys);
        cursor = next;
        if cursor == "0" {
            return out;
        }
    }
    panic!("SCAN never returned cursor 0");
}

#[test]
fn scan_walks_all_shards() {
    for shards in ["1", "4"] {
        let s = common::moonshard(&["--shards", shards]);
        let mut c = s.client();
        assert!(scan_all(&mut c, &[]).is_empty());
        let all: BTreeSet<String> = (0..500).map(|i| format!("s{i}")).collect();
        set_many(&mut c, all.iter().cloned());
        for count in ["1", "10", "1000"] {
            let got = scan_all(&mut c, &["COUNT", count]);
            assert_eq!(got.len(), all.len(), "duplicates or losses with COUNT {count}");
            assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), all);
        }
        let got: BTreeSet<String> = scan_all(&mut c, &["MATCH", "s1*"]).into_iter().collect();
        assert_eq!(got, all.iter().filter(|k| k.starts_with("s1")).cloned().collect());
        assert_eq!(scan_all(&mut c, &["TYPE", "STRING"]).len(), 500);
        assert!(scan_all(&mut c, &["TYPE", "hash"]).is_empty());
        assert_eq!(run_str(&mut c, &["SCAN", "x"]), err("ERR invalid cursor"));
        assert_eq!(run_str(&mut c, &["SCAN", "0", "COUNT", "0"]), err("ERR syntax error"));
        assert_eq!(run_str(&mut c, &["SCAN", "0", "MATCH"]), err("ERR syntax error"));
    }
}

/// Keys present from start to end of a scan are returned even while other
/// keys come and go.
#[test]
fn scan_guarantee_under_churn() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let mut w = s.client();
    let stable: BTreeSet<String> = (0..300).map(|i| format!("stable{i}")).collect();
    set_many(&mut c, stable.iter().cloned());
    set_many(&mut c, (0..300).map(|i| format!("churn{i}")));
    let mut cursor = "0".to_string();
    let mut seen = BTreeSet::new();
    let mut step = 0;
    loop {
        let (next, keys): (String, Vec<String>) =
            redis::cmd("SCAN").arg(&cursor).arg("COUNT").arg(7).query(&mut c).unwrap();
        seen.extend(keys);
        // Delete some churn keys and add new ones between steps.
        run_str(&mut w, &["DEL", &format!("churn{step}"), &format!("churn{}", 299 - step % 300)]).unwrap();
        run_str(&mut w, &["SET", &format!("new{step}"), "v"]).unwrap();
        step += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    let missing: Vec<_> = stable.difference(&seen).collect();
    assert!(missing.is_empty(), "SCAN lost keys: {missing:?}");
}

#[test]
fn rename_copy_move_swapdb() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    assert_eq!(run_str(&mut c, &["RENAME", "{a}x", "{a}y"]), err("ERR no such key"));
    run_str(&mut c, &["SET", "{a}x", "1", "EX", "1000"]).unwrap();
    assert_eq!(run_str(&mut c, &["RENAME", "{a}x", "{a}y"]), status("OK"));
    assert!(matches!(run_str(&mut c, &["TTL", "{a}y"]), Ok(Value::Int(990..=1000))));
    run_str(&mut c, &["SET", "{a}z", "2"]).unwrap();
    assert_eq!(run_str(&mut c, &["RENAMENX", "{a}y", "{a}z"]), int(0));
    assert_eq!(run_str(&mut c, &["COPY", "{a}y", "{a}z"]), int(0));
    assert_eq!(run_str(&mut c, &["COPY", "{a}y", "{a}z", "REPLACE"]), int(1));
    assert!(matches!(run_str(&mut c, &["TTL", "{a}z"]), Ok(Value::Int(990..=1000))));
    assert_eq!(run_str(&mut c, &["COPY", "{a}y", "{a}y"]), err("ERR source and destination objects are the same"));
    assert_eq!(run_str(&mut c, &["COPY", "{a}y", "{a}w", "DB", "16"]), err("ERR DB index is out of range"));
    assert_eq!(run_str(&mut c, &["COPY", "{a}y", "{a}y", "DB", "3"]), int(1));
    assert_eq!(run_str(&mut c, &["MOVE", "{a}z", "3"]), int(1));
    assert_eq!(run_str(&mut c, &["MOVE", "{a}y", "3"]), int(0));
    assert_eq!(run_str(&mut c, &["EXISTS", "{a}z"]), int(0));
    run_str(&mut c, &["SELECT", "3"]).unwrap();
    assert_eq!(run_str(&mut c, &["MGET", "{a}y", "{a}z"]), Ok(Value::Array(vec![Value::BulkString(b"1".to_vec()); 2])));
    run_str(&mut c, &["SELECT", "0"]).unwrap();
    // SWAPDB swaps the databases on every shard.
    set_many(&mut c, (0..30).map(|i| format!("db0-{i}")));
    assert_eq!(run_str(&mut c, &["SWAPDB", "0", "3"]), status("OK"));
    assert_eq!(run_str(&mut c, &["DBSIZE"]), int(2));
    run_str(&mut c, &["SELECT", "3"]).unwrap();
    assert_eq!(run_str(&mut c, &["DBSIZE"]), int(31));
    assert_eq!(run_str(&mut c, &["SWAPDB", "0", "99"]), err("ERR DB index is out of range"));
    assert_eq!(run_str(&mut c, &["SWAPDB", "x", "1"]), err("ERR invalid first DB index"));
}

#[test]
fn object_subcommands() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut c = s.client();
    run_str(&mut c, &["MSET", "i", "123", "e", "hello", "r", &"x".repeat(45), "big", "100000"]).unwrap();
    let enc = |c: &mut redis::Connection, k: &str| run_str(c, &["OBJECT", "ENCODING", k]);
    assert_eq!(enc(&mut c, "i"), Ok(Value::BulkString(b"int".to_vec())));
    assert_eq!(enc(&mut c, "e"), Ok(Value::BulkString(b"embstr".to_vec())));
    assert_eq!(enc(&mut c, "r"), Ok(Value::BulkString(b"raw".to_vec())));
    assert_eq!(enc(&mut c, "nope"), Ok(Value::Nil));
    assert_eq!(run_str(&mut c, &["OBJECT", "REFCOUNT", "i"]), int(2147483647));
    assert_eq!(run_str(&mut c, &["OBJECT", "REFCOUNT", "big"]), int(1));
    assert_eq!(run_str(&mut c, &["OBJECT", "IDLETIME", "e"]), int(0));
    assert!(run_str(&mut c, &["OBJECT", "FREQ", "e"])
        .unwrap_err()
        .starts_with("ERR An LFU maxmemory policy is not selected"));
    let Ok(Value::Array(help)) = run_str(&mut c, &["OBJECT", "HELP"]) else { panic!() };
    assert_eq!(help.len(), 15);
    assert_eq!(run_str(&mut c, &["OBJECT", "NOPE", "x"]), err("ERR unknown subcommand 'NOPE'. Try OBJECT HELP."));
}

/// Commands whose keys must share a slot refuse cross-slot keys whatever the
/// shard count; per-key commands accept them.
#[test]
fn crossslot_does_not_depend_on_shard_count() {
    for shards in ["1", "4"] {
        let s = common::moonshard(&["--shards", shards]);
        let mut c = s.client();
        run_str(&mut c, &["MSET", "a", "1", "b", "2"]).unwrap();
        let cross = err("CROSSSLOT Keys in request don't hash to the same slot");
        assert_eq!(run_str(&mut c, &["RENAME", "a", "b"]), cross, "shards {shards}");
        assert_eq!(run_str(&mut c, &["RENAMENX", "a", "b"]), cross);
        assert_eq!(run_str(&mut c, &["COPY", "a", "b"]), cross);
        assert_eq!(run_str(&mut c, &["MSETNX", "a", "1", "b", "2"]), cross);
        assert_eq!(run_str(&mut c, &["LCS", "a", "b"]), cross);
        assert_eq!(run_str(&mut c, &["EXISTS", "a", "b", "c"]), int(2));
        assert_eq!(run_str(&mut c, &["DEL", "a", "b", "c"]), int(2));
        run_str(&mut c, &["SET", "{t}a", "1"]).unwrap();
        assert_eq!(run_str(&mut c, &["RENAME", "{t}a", "{t}b"]), status("OK"));
        assert_eq!(run_str(&mut c, &["COPY", "{t}b", "{t}c"]), int(1));
        assert_eq!(run_str(&mut c, &["MSETNX", "{t}d", "1", "{t}e", "2"]), int(1));
    }
}
