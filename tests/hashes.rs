//! Hash commands against the real binary (expected replies are Redis 7.0's).
mod common;

use redis::Value;
use std::collections::{BTreeMap, BTreeSet};

fn show(r: Result<Value, String>) -> String {
    fn v(x: &Value) -> String {
        match x {
            Value::Nil => "nil".into(),
            Value::Int(i) => i.to_string(),
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            Value::Okay => "OK".into(),
            Value::Array(items) => {
                format!("[{}]", items.iter().map(v).collect::<Vec<_>>().join(","))
            }
            other => format!("{other:?}"),
        }
    }
    match r {
        Ok(x) => v(&x),
        Err(e) => e,
    }
}

fn q(c: &mut redis::Connection, cmd: &str) -> String {
    let args: Vec<&str> = cmd.split(' ').collect();
    show(common::run_str(c, &args))
}

const WRONG: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn set_get_del() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    assert_eq!(q(&mut c, "HSET h a 1 b 2"), "2");
    assert_eq!(q(&mut c, "HSET h a 9 c 3"), "1");
    assert_eq!(q(&mut c, "HSET h a"), "ERR wrong number of arguments for 'hset' command");
    assert_eq!(q(&mut c, "HMSET h a 1 b"), "ERR wrong number of arguments for 'hmset' command");
    assert_eq!(q(&mut c, "HMSET h d 4"), "OK");
    assert_eq!(q(&mut c, "HSETNX h a 100"), "0");
    assert_eq!(q(&mut c, "HSETNX h e 5"), "1");
    assert_eq!(q(&mut c, "HGET h a"), "9");
    assert_eq!(q(&mut c, "HGET h zz"), "nil");
    assert_eq!(q(&mut c, "HGET nokey a"), "nil");
    assert_eq!(q(&mut c, "HMGET h a zz b"), "[9,nil,2]");
    assert_eq!(q(&mut c, "HMGET nokey a b"), "[nil,nil]");
    assert_eq!(q(&mut c, "HGETALL h"), "[a,9,b,2,c,3,d,4,e,5]", "insertion order, as a listpack");
    assert_eq!(q(&mut c, "HKEYS h"), "[a,b,c,d,e]");
    assert_eq!(q(&mut c, "HVALS h"), "[9,2,3,4,5]");
    assert_eq!(q(&mut c, "HGETALL nokey"), "[]");
    assert_eq!(q(&mut c, "HKEYS nokey"), "[]");
    assert_eq!(q(&mut c, "HLEN h"), "5");
    assert_eq!(q(&mut c, "HLEN nokey"), "0");
    assert_eq!(q(&mut c, "HEXISTS h a"), "1");
    assert_eq!(q(&mut c, "HEXISTS h zz"), "0");
    assert_eq!(q(&mut c, "HEXISTS nokey a"), "0");
    assert_eq!(q(&mut c, "HSTRLEN h a"), "1");
    assert_eq!(q(&mut c, "HSTRLEN h zz"), "0");
    assert_eq!(q(&mut c, "HDEL h a zz b"), "2");
    assert_eq!(q(&mut c, "HDEL nokey a"), "0");
    assert_eq!(q(&mut c, "HDEL h c d e"), "3");
    assert_eq!(q(&mut c, "EXISTS h"), "0", "an emptied hash is deleted");
}

#[test]
fn incr() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    assert_eq!(q(&mut c, "HINCRBY h n 5"), "5");
    assert_eq!(q(&mut c, "HINCRBY h n -7"), "-2");
    assert_eq!(q(&mut c, "HINCRBY h n x"), "ERR value is not an integer or out of range");
    q(&mut c, "HSET h s abc big 9223372036854775807 f 1.5");
    assert_eq!(q(&mut c, "HINCRBY h s 1"), "ERR hash value is not an integer");
    assert_eq!(q(&mut c, "HINCRBY h f 1"), "ERR hash value is not an integer");
    assert_eq!(q(&mut c, "HINCRBY h big 1"), "ERR increment or decrement would overflow");
    assert_eq!(q(&mut c, "HINCRBYFLOAT h f 0.1"), "1.6");
    assert_eq!(q(&mut c, "HINCRBYFLOAT h x 10.1"), "10.1");
    assert_eq!(q(&mut c, "HINCRBYFLOAT h x 0.2"), "10.3");
    assert_eq!(q(&mut c, "HINCRBYFLOAT h y 1.0e2"), "100");
    assert_eq!(q(&mut c, "HINCRBYFLOAT h y -100"), "0");
    assert_eq!(q(&mut c, "HINCRBYFLOAT h s 1"), "ERR hash value is not a float");
    assert_eq!(q(&mut c, "HINCRBYFLOAT h x abc"), "ERR value is not a valid float");
    assert_eq!(q(&mut c, "HINCRBYFLOAT h x inf"), "ERR value is NaN or Infinity");
    assert_eq!(q(&mut c, "HINCRBY nokey2 x y"), "ERR value is not an integer or out of range");
    q(&mut c, "HSET e s abc");
    q(&mut c, "DEL e");
    assert_eq!(q(&mut c, "HINCRBY e2 f 1"), "1");
    assert_eq!(q(&mut c, "HGET e2 f"), "1");
}

#[test]
fn randfield_shapes() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    q(&mut c, "HSET h a 1 b 2 c 3");
    let one = q(&mut c, "HRANDFIELD h");
    assert!(["a", "b", "c"].contains(&one.as_str()), "{one}");
    assert_eq!(q(&mut c, "HRANDFIELD nokey"), "nil");
    assert_eq!(q(&mut c, "HRANDFIELD nokey 3"), "[]");
    assert_eq!(q(&mut c, "HRANDFIELD h 0"), "[]");
    assert_eq!(q(&mut c, "HRANDFIELD h 10"), "[a,b,c]", "count >= size gives the whole hash");
    assert_eq!(q(&mut c, "HRANDFIELD h 10 WITHVALUES"), "[a,1,b,2,c,3]");
    let two: Vec<String> = redis::cmd("HRANDFIELD").arg("h").arg(2).query(&mut c).unwrap();
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1], "positive count: distinct fields");
    let many: Vec<String> = redis::cmd("HRANDFIELD").arg("h").arg(-50).query(&mut c).unwrap();
    assert_eq!(many.len(), 50, "negative count: repeats allowed");
    assert!(many.iter().all(|f| ["a", "b", "c"].contains(&f.as_str())));
    let wv: Vec<String> = redis::cmd("HRANDFIELD").arg("h").arg(-7).arg("WITHVALUES").query(&mut c).unwrap();
    assert_eq!(wv.len(), 14);
    for p in wv.chunks(2) {
        let expect = match p[0].as_str() {
            "a" => "1",
            "b" => "2",
            _ => "3",
        };
        assert_eq!(p[1], expect);
    }
    assert_eq!(q(&mut c, "HRANDFIELD h 1 WITHVALUE"), "ERR syntax error");
    assert_eq!(q(&mut c, "HRANDFIELD h x"), "ERR value is not an integer or out of range");
    assert_eq!(
        q(&mut c, "HRANDFIELD h -9223372036854775808"),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(q(&mut c, "HRANDFIELD h 4611686018427387904 WITHVALUES"), "ERR value is out of range");
}

#[test]
fn scan_small_and_large() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    q(&mut c, "HSET h a 1 b 2 ab 3");
    assert_eq!(q(&mut c, "HSCAN h 0"), "[0,[a,1,b,2,ab,3]]", "a listpack hash comes back whole");
    assert_eq!(q(&mut c, "HSCAN h 0 MATCH a*"), "[0,[a,1,ab,3]]");
    assert_eq!(q(&mut c, "HSCAN h 0 COUNT 1"), "[0,[a,1,b,2,ab,3]]");
    assert_eq!(q(&mut c, "HSCAN nokey 0"), "[0,[]]");
    assert_eq!(q(&mut c, "HSCAN h x"), "ERR invalid cursor");
    assert_eq!(q(&mut c, "HSCAN h 0 COUNT 0"), "ERR syntax error");
    assert_eq!(q(&mut c, "HSCAN h 0 COUNT x"), "ERR value is not an integer or out of range");
    assert_eq!(q(&mut c, "HSCAN h 0 TYPE string"), "ERR syntax error");
    // Past 512 fields the hash is a table and scans in steps.
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.cmd("HSET").arg("big").arg(format!("f{i}")).arg(i).ignore();
    }
    let () = pipe.query(&mut c).unwrap();
    let mut cursor = "0".to_string();
    let mut seen = BTreeMap::new();
    let mut steps = 0;
    loop {
        let (next, items): (String, Vec<String>) =
            redis::cmd("HSCAN").arg("big").arg(&cursor).arg("COUNT").arg(100).query(&mut c).unwrap();
        for p in items.chunks(2) {
            seen.insert(p[0].clone(), p[1].clone());
        }
        steps += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert!(steps > 5, "a table scan takes several steps");
    assert_eq!(seen.len(), 2000);
    assert_eq!(seen["f1234"], "1234");
    let keys: BTreeSet<String> = redis::cmd("HKEYS").arg("big").query(&mut c).unwrap();
    assert_eq!(keys.len(), 2000);
    assert_eq!(q(&mut c, "HDEL big f0 f1"), "2");
    assert_eq!(q(&mut c, "HLEN big"), "1998");
    assert_eq!(q(&mut c, "HGET big f1999"), "1999");
}

#[test]
fn long_values_and_conversion_keep_data() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    q(&mut c, "HSET h a 1 b 2");
    let long = "v".repeat(100);
    assert_eq!(q(&mut c, &format!("HSET h c {long}")), "1");
    assert_eq!(q(&mut c, "HMGET h a b"), "[1,2]");
    assert_eq!(q(&mut c, "HSTRLEN h c"), "100");
    assert_eq!(q(&mut c, "HLEN h"), "3");
}

#[test]
fn wrong_type_everywhere() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    q(&mut c, "SET s v");
    for cmd in [
        "HSET s a 1",
        "HSETNX s a 1",
        "HMSET s a 1",
        "HGET s a",
        "HMGET s a",
        "HGETALL s",
        "HDEL s a",
        "HEXISTS s a",
        "HLEN s",
        "HKEYS s",
        "HVALS s",
        "HINCRBY s a 1",
        "HINCRBYFLOAT s a 1",
        "HSTRLEN s a",
        "HRANDFIELD s",
        "HRANDFIELD s 2",
        "HSCAN s 0",
        "HSCAN s 0 COUNT 0",
    ] {
        assert_eq!(q(&mut c, cmd), WRONG, "{cmd}");
    }
    assert_eq!(q(&mut c, "GET s"), "v");
}
