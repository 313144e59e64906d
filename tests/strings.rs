//! String commands through the real binary (expected replies are Redis 7.0's).

mod common;

use common::run_str;
use redis::Value;

fn bulk(s: &str) -> Result<Value, String> {
    Ok(Value::BulkString(s.as_bytes().to_vec()))
}

fn ok() -> Result<Value, String> {
    Ok(Value::Okay)
}

fn int(n: i64) -> Result<Value, String> {
    Ok(Value::Int(n))
}

fn err(s: &str) -> Result<Value, String> {
    Err(s.to_string())
}

#[test]
fn set_get_and_options() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    assert_eq!(run_str(&mut c, &["GET", "k"]), Ok(Value::Nil));
    assert_eq!(run_str(&mut c, &["SET", "k", "v"]), ok());
    assert_eq!(run_str(&mut c, &["SET", "k", "w", "GET"]), bulk("v"));
    assert_eq!(run_str(&mut c, &["SET", "k", "x", "NX"]), Ok(Value::Nil));
    assert_eq!(run_str(&mut c, &["SET", "k", "x", "NX", "GET"]), bulk("w"));
    assert_eq!(run_str(&mut c, &["SET", "n", "x", "XX"]), Ok(Value::Nil));
    assert_eq!(run_str(&mut c, &["SET", "k", "v", "NX", "XX"]), err("ERR syntax error"));
    assert_eq!(run_str(&mut c, &["SET", "k", "v", "EX", "1", "PX", "1"]), err("ERR syntax error"));
    assert_eq!(run_str(&mut c, &["SET", "k", "v", "KEEPTTL", "EX", "1"]), err("ERR syntax error"));
    assert_eq!(run_str(&mut c, &["SET", "k", "v", "EX", "0"]), err("ERR invalid expire time in 'set' command"));
    assert_eq!(
        run_str(&mut c, &["SET", "k", "v", "PX", "9223372036854775807"]),
        err("ERR invalid expire time in 'set' command")
    );
    assert_eq!(run_str(&mut c, &["SET", "k", "v", "EX", "x"]), err("ERR value is not an integer or out of range"));
    assert_eq!(run_str(&mut c, &["SETEX", "k", "0", "v"]), err("ERR invalid expire time in 'setex' command"));
    assert_eq!(run_str(&mut c, &["PSETEX", "k", "-1", "v"]), err("ERR invalid expire time in 'psetex' command"));
    assert_eq!(run_str(&mut c, &["SET", "k", "v", "EX", "100"]), ok());
    assert_eq!(run_str(&mut c, &["SET", "k", "v2", "KEEPTTL"]), ok());
    assert!(matches!(run_str(&mut c, &["TTL", "k"]), Ok(Value::Int(99..=100))));
    assert_eq!(run_str(&mut c, &["SET", "k", "v3"]), ok());
    assert_eq!(run_str(&mut c, &["TTL", "k"]), int(-1));
    assert_eq!(run_str(&mut c, &["SETNX", "k", "z"]), int(0));
    assert_eq!(run_str(&mut c, &["SETNX", "fresh", "z"]), int(1));
    assert_eq!(run_str(&mut c, &["GETSET", "fresh", "y"]), bulk("z"));
    assert_eq!(run_str(&mut c, &["GETDEL", "fresh"]), bulk("y"));
    assert_eq!(run_str(&mut c, &["GETDEL", "fresh"]), Ok(Value::Nil));
    // An absolute expiry already in the past leaves nothing behind.
    assert_eq!(run_str(&mut c, &["SET", "k", "v", "EXAT", "1"]), ok());
    assert_eq!(run_str(&mut c, &["EXISTS", "k"]), int(0));
}

#[test]
fn getex() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut c = s.client();
    assert_eq!(run_str(&mut c, &["GETEX", "k", "EX", "x"]), Ok(Value::Nil));
    run_str(&mut c, &["SET", "k", "v"]).unwrap();
    assert_eq!(run_str(&mut c, &["GETEX", "k", "EX", "x"]), err("ERR value is not an integer or out of range"));
    assert_eq!(run_str(&mut c, &["GETEX", "k", "EX", "0"]), err("ERR invalid expire time in 'getex' command"));
    assert_eq!(run_str(&mut c, &["GETEX", "k", "PERSIST", "EX", "5"]), err("ERR syntax error"));
    assert_eq!(run_str(&mut c, &["GETEX", "k", "KEEPTTL"]), err("ERR syntax error"));
    assert_eq!(run_str(&mut c, &["GETEX", "k", "EX", "50"]), bulk("v"));
    assert!(matches!(run_str(&mut c, &["TTL", "k"]), Ok(Value::Int(49..=50))));
    assert_eq!(run_str(&mut c, &["GETEX", "k", "PERSIST"]), bulk("v"));
    assert_eq!(run_str(&mut c, &["TTL", "k"]), int(-1));
    assert_eq!(run_str(&mut c, &["GETEX", "k", "PXAT", "1"]), bulk("v"));
    assert_eq!(run_str(&mut c, &["GET", "k"]), Ok(Value::Nil));
}

#[test]
fn mget_mset_across_shards_keep_caller_order() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let keys: Vec<String> = (0..40).map(|i| format!("key{i}")).collect();
    let mut mset = vec!["MSET".to_string()];
    for k in &keys {
        mset.push(k.clone());
        mset.push(format!("val-{k}"));
    }
    let args: Vec<&str> = mset.iter().map(|s| s.as_str()).collect();
    assert_eq!(run_str(&mut c, &args), ok());
    let mut mget: Vec<&str> = vec!["MGET"];
    mget.extend(keys.iter().rev().map(|s| s.as_str()));
    mget.push("missing");
    let Ok(Value::Array(items)) = run_str(&mut c, &mget) else { panic!() };
    for (item, k) in items.iter().zip(keys.iter().rev()) {
        assert_eq!(item, &Value::BulkString(format!("val-{k}").into_bytes()));
    }
    assert_eq!(items.last(), Some(&Value::Nil));
    assert_eq!(run_str(&mut c, &["MSET", "a", "1", "b"]), err("ERR wrong number of arguments for 'mset' command"));
    assert_eq!(run_str(&mut c, &["MSETNX", "{t}a", "1", "{t}b", "2"]), int(1));
    assert_eq!(run_str(&mut c, &["MSETNX", "{t}b", "1", "{t}c", "2"]), int(0));
    assert_eq!(run_str(&mut c, &["EXISTS", "{t}c"]), int(0));
}

#[test]
fn integer_counters() {
    let s = common::moonshard(&["--shards", "3"]);
    let mut c = s.client();
    assert_eq!(run_str(&mut c, &["INCR", "n"]), int(1));
    assert_eq!(run_str(&mut c, &["INCRBY", "n", "41"]), int(42));
    assert_eq!(run_str(&mut c, &["DECRBY", "n", "50"]), int(-8));
    assert_eq!(run_str(&mut c, &["DECR", "n"]), int(-9));
    assert_eq!(run_str(&mut c, &["INCRBY", "n", "1.5"]), err("ERR value is not an integer or out of range"));
    assert_eq!(run_str(&mut c, &["DECRBY", "n", "-9223372036854775808"]), err("ERR decrement would overflow"));
    run_str(&mut c, &["SET", "n", "9223372036854775807"]).unwrap();
    assert_eq!(run_str(&mut c, &["INCR", "n"]), err("ERR increment or decrement would overflow"));
    run_str(&mut c, &["SET", "n", "-9223372036854775808"]).unwrap();
    assert_eq!(run_str(&mut c, &["DECR", "n"]), err("ERR increment or decrement would overflow"));
    for bad in ["abc", " 1", "1 ", "01", "+1", "-0", "1.0", ""] {
        run_str(&mut c, &["SET", "b", bad]).unwrap();
        assert_eq!(run_str(&mut c, &["INCR", "b"]), err("ERR value is not an integer or out of range"), "{bad:?}");
    }
    // Counters keep the key's TTL.
    run_str(&mut c, &["SET", "t", "1", "EX", "100"]).unwrap();
    assert_eq!(run_str(&mut c, &["INCR", "t"]), int(2));
    assert!(matches!(run_str(&mut c, &["TTL", "t"]), Ok(Value::Int(99..=100))));
}

#[test]
fn incrbyfloat_formats_like_redis() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut c = s.client();
    assert_eq!(run_str(&mut c, &["INCRBYFLOAT", "f", "0.1"]), bulk("0.1"));
    assert_eq!(run_str(&mut c, &["INCRBYFLOAT", "f", "0.1"]), bulk("0.2"));
    assert_eq!(run_str(&mut c, &["INCRBYFLOAT", "f", "0.1"]), bulk("0.3"));
    run_str(&mut c, &["SET", "g", "10.5"]).unwrap();
    assert_eq!(run_str(&mut c, &["INCRBYFLOAT", "g", "0.1"]), bulk("10.6"));
    assert_eq!(run_str(&mut c, &["INCRBYFLOAT", "h", "1e5"]), bulk("100000"));
    assert_eq!(run_str(&mut c, &["INCRBYFLOAT", "h", "-100000"]), bulk("0"));
    assert_eq!(run_str(&mut c, &["INCRBYFLOAT", "i", "1000.1"]), bulk("1000.09999999999999998"));
    assert_eq!(run_str(&mut c, &["INCRBYFLOAT", "f", "abc"]), err("ERR value is not a valid float"));
    assert_eq!(run_str(&mut c, &["INCRBYFLOAT", "f", "inf"]), err("ERR increment would produce NaN or Infinity"));
    run_str(&mut c, &["SET", "bad", "x"]).unwrap();
    assert_eq!(run_str(&mut c, &["INCRBYFLOAT", "bad", "1"]), err("ERR value is not a valid float"));
}

#[test]
fn append_strlen_ranges() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut c = s.client();
    assert_eq!(run_str(&mut c, &["APPEND", "s", "Hello"]), int(5));
    assert_eq!(run_str(&mut c, &["APPEND", "s", " World"]), int(11));
    assert_eq!(run_str(&mut c, &["STRLEN", "s"]), int(11));
    assert_eq!(run_str(&mut c, &["STRLEN", "none"]), int(0));
    assert_eq!(run_str(&mut c, &["GETRANGE", "s", "0", "4"]), bulk("Hello"));
    assert_eq!(run_str(&mut c, &["GETRANGE", "s", "-5", "-1"]), bulk("World"));
    assert_eq!(run_str(&mut c, &["GETRANGE", "s", "-1", "-5"]), bulk(""));
    assert_eq!(run_str(&mut c, &["GETRANGE", "s", "-100", "100"]), bulk("Hello World"));
    assert_eq!(run_str(&mut c, &["SUBSTR", "s", "6", "-1"]), bulk("World"));
    assert_eq!(run_str(&mut c, &["GETRANGE", "none", "0", "-1"]), bulk(""));
    assert_eq!(run_str(&mut c, &["SETRANGE", "s", "6", "Redis"]), int(11));
    assert_eq!(run_str(&mut c, &["GET", "s"]), bulk("Hello Redis"));
    assert_eq!(run_str(&mut c, &["SETRANGE", "p", "3", "x"]), int(4));
    assert_eq!(run_str(&mut c, &["GET", "p"]), bulk("\0\0\0x"));
    assert_eq!(run_str(&mut c, &["SETRANGE", "q", "3", ""]), int(0));
    assert_eq!(run_str(&mut c, &["EXISTS", "q"]), int(0));
    assert_eq!(run_str(&mut c, &["SETRANGE", "s", "-1", "x"]), err("ERR offset is out of range"));
    // Many appends to one key stay cheap (amortized in-place growth).
    let chunk = "x".repeat(1000);
    for i in 1..=2000 {
        assert_eq!(run_str(&mut c, &["APPEND", "big", &chunk]), int(i * 1000));
    }
    assert_eq!(run_str(&mut c, &["GETRANGE", "big", "1999999", "-1"]), bulk("x"));
}

#[test]
fn sizes_bounded_by_proto_max_bulk_len() {
    let s = common::moonshard(&["--shards", "2", "--proto-max-bulk-len", "1mb"]);
    let mut c = s.client();
    let too_big = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
    assert_eq!(run_str(&mut c, &["SETRANGE", "k", "1048576", "x"]), err(too_big));
    assert_eq!(run_str(&mut c, &["SETRANGE", "k", "1048575", "x"]), int(1048576));
    assert_eq!(run_str(&mut c, &["APPEND", "k", "y"]), err(too_big));
    assert_eq!(run_str(&mut c, &["SETRANGE", "k", "9223372036854775807", "x"]), err(too_big));
    assert_eq!(run_str(&mut c, &["STRLEN", "k"]), int(1048576));
}

#[test]
fn lcs() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    run_str(&mut c, &["MSET", "{l}a", "ohmytext", "{l}b", "mynewtext"]).unwrap();
    assert_eq!(run_str(&mut c, &["LCS", "{l}a", "{l}b"]), bulk("mytext"));
    assert_eq!(run_str(&mut c, &["LCS", "{l}a", "{l}b", "LEN"]), int(6));
    assert_eq!(
        run_str(&mut c, &["LCS", "{l}a", "{l}b", "IDX", "LEN"]),
        err("ERR If you want both the length and indexes, please just use IDX.")
    );
    assert_eq!(run_str(&mut c, &["LCS", "a", "b"]), err("CROSSSLOT Keys in request don't hash to the same slot"));
}

/// WRONGTYPE needs a non-string value; lists may not exist on this branch yet.
#[test]
fn wrong_type_when_lists_exist() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut c = s.client();
    match run_str(&mut c, &["RPUSH", "l", "a"]) {
        Err(e) if e.contains("not implemented yet") => {
            eprintln!("SKIPPED: RPUSH is not implemented yet, WRONGTYPE not checked");
            return;
        }
        r => assert_eq!(r, int(1)),
    }
    let wt = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for cmd in [
        &["GET", "l"][..],
        &["SET", "l", "v", "GET"],
        &["GETSET", "l", "v"],
        &["GETDEL", "l"],
        &["GETEX", "l"],
        &["INCR", "l"],
        &["INCRBYFLOAT", "l", "1"],
        &["APPEND", "l", "x"],
        &["STRLEN", "l"],
        &["GETRANGE", "l", "0", "1"],
        &["SETRANGE", "l", "0", "x"],
    ] {
        assert_eq!(run_str(&mut c, cmd), err(wt), "{cmd:?}");
    }
    assert_eq!(run_str(&mut c, &["MGET", "l"]), Ok(Value::Array(vec![Value::Nil])));
    assert_eq!(run_str(&mut c, &["TYPE", "l"]), Ok(Value::SimpleString("list".into())));
    assert_eq!(run_str(&mut c, &["SET", "l", "v"]), ok());
}
