//! List commands against the real binary (expected replies are Redis 7.0's).
mod common;

use common::q;

const WRONG: &str = common::WRONGTYPE;

#[test]
fn push_pop_len_range() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    assert_eq!(q(&mut c, "RPUSH l a b c"), "3");
    assert_eq!(q(&mut c, "LPUSH l z y"), "5");
    assert_eq!(q(&mut c, "LRANGE l 0 -1"), "[y,z,a,b,c]");
    assert_eq!(q(&mut c, "LRANGE l -2 -1"), "[b,c]");
    assert_eq!(q(&mut c, "LRANGE l -100 1"), "[y,z]");
    assert_eq!(q(&mut c, "LRANGE l 3 1"), "[]");
    assert_eq!(q(&mut c, "LRANGE l 5 10"), "[]");
    assert_eq!(q(&mut c, "LRANGE l 0 x"), "ERR value is not an integer or out of range");
    assert_eq!(q(&mut c, "LRANGE nokey 0 -1"), "[]");
    assert_eq!(q(&mut c, "LLEN l"), "5");
    assert_eq!(q(&mut c, "LLEN nokey"), "0");
    assert_eq!(q(&mut c, "LPOP l"), "y");
    assert_eq!(q(&mut c, "RPOP l"), "c");
    assert_eq!(q(&mut c, "LPOP l 2"), "[z,a]");
    assert_eq!(q(&mut c, "LPOP l 0"), "[]");
    assert_eq!(q(&mut c, "RPOP l 10"), "[b]");
    assert_eq!(q(&mut c, "EXISTS l"), "0", "an emptied list is deleted");
    assert_eq!(q(&mut c, "LPOP l"), "nil");
    assert_eq!(q(&mut c, "LPOP l 3"), "nil");
    assert_eq!(q(&mut c, "LPOP l -1"), "ERR value is out of range, must be positive");
    assert_eq!(q(&mut c, "LPOP l 1 2"), "ERR wrong number of arguments for 'lpop' command");
    assert_eq!(q(&mut c, "LPUSHX l a"), "0");
    assert_eq!(q(&mut c, "RPUSHX l a"), "0");
    assert_eq!(q(&mut c, "RPUSH l a"), "1");
    assert_eq!(q(&mut c, "LPUSHX l b c"), "3");
    assert_eq!(q(&mut c, "RPUSHX l d"), "4");
    assert_eq!(q(&mut c, "LRANGE l 0 -1"), "[c,b,a,d]");
}

#[test]
fn index_set_insert_rem_trim_pos() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    q(&mut c, "RPUSH l a b c a b a");
    assert_eq!(q(&mut c, "LINDEX l 0"), "a");
    assert_eq!(q(&mut c, "LINDEX l -1"), "a");
    assert_eq!(q(&mut c, "LINDEX l -2"), "b");
    assert_eq!(q(&mut c, "LINDEX l 6"), "nil");
    assert_eq!(q(&mut c, "LINDEX l -7"), "nil");
    assert_eq!(q(&mut c, "LINDEX l x"), "ERR value is not an integer or out of range");
    assert_eq!(q(&mut c, "LINDEX nokey x"), "nil");
    assert_eq!(q(&mut c, "LSET l -1 z"), "OK");
    assert_eq!(q(&mut c, "LSET l 6 z"), "ERR index out of range");
    assert_eq!(q(&mut c, "LSET nokey 0 z"), "ERR no such key");
    assert_eq!(q(&mut c, "LRANGE l 0 -1"), "[a,b,c,a,b,z]");
    assert_eq!(q(&mut c, "LPOS l a"), "0");
    assert_eq!(q(&mut c, "LPOS l a RANK 2"), "3");
    assert_eq!(q(&mut c, "LPOS l a RANK -1"), "3");
    assert_eq!(q(&mut c, "LPOS l b COUNT 0"), "[1,4]");
    assert_eq!(q(&mut c, "LPOS l b RANK -1 COUNT 0"), "[4,1]");
    assert_eq!(q(&mut c, "LPOS l b COUNT 0 MAXLEN 3"), "[1]");
    assert_eq!(q(&mut c, "LPOS l nope"), "nil");
    assert_eq!(q(&mut c, "LPOS l nope COUNT 2"), "[]");
    assert_eq!(q(&mut c, "LPOS nokey a COUNT 2"), "[]");
    assert!(q(&mut c, "LPOS l a RANK 0").starts_with("ERR RANK can't be zero"));
    assert_eq!(q(&mut c, "LPOS l a COUNT -1"), "ERR COUNT can't be negative");
    assert_eq!(q(&mut c, "LPOS l a MAXLEN -1"), "ERR MAXLEN can't be negative");
    assert_eq!(q(&mut c, "LPOS l a RANK"), "ERR syntax error");
    assert_eq!(q(&mut c, "LINSERT l BEFORE c x"), "7");
    assert_eq!(q(&mut c, "LINSERT l AFTER z y"), "8");
    assert_eq!(q(&mut c, "LINSERT l AFTER nope y"), "-1");
    assert_eq!(q(&mut c, "LINSERT nokey AFTER a y"), "0");
    assert_eq!(q(&mut c, "LINSERT l MIDDLE a y"), "ERR syntax error");
    assert_eq!(q(&mut c, "LRANGE l 0 -1"), "[a,b,x,c,a,b,z,y]");
    assert_eq!(q(&mut c, "LREM l -1 b"), "1");
    assert_eq!(q(&mut c, "LRANGE l 0 -1"), "[a,b,x,c,a,z,y]");
    assert_eq!(q(&mut c, "LREM l 0 a"), "2");
    assert_eq!(q(&mut c, "LREM l 0 nope"), "0");
    assert_eq!(q(&mut c, "LREM nokey 0 a"), "0");
    assert_eq!(q(&mut c, "LRANGE l 0 -1"), "[b,x,c,z,y]");
    assert_eq!(q(&mut c, "LTRIM l 1 -2"), "OK");
    assert_eq!(q(&mut c, "LRANGE l 0 -1"), "[x,c,z]");
    assert_eq!(q(&mut c, "LTRIM l 5 10"), "OK");
    assert_eq!(q(&mut c, "EXISTS l"), "0");
    assert_eq!(q(&mut c, "LTRIM nokey 0 1"), "OK");
}

#[test]
fn move_and_mpop() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    q(&mut c, "RPUSH {t}a 1 2 3");
    assert_eq!(q(&mut c, "LMOVE {t}a {t}b LEFT RIGHT"), "1");
    assert_eq!(q(&mut c, "LMOVE {t}a {t}b RIGHT LEFT"), "3");
    assert_eq!(q(&mut c, "LRANGE {t}b 0 -1"), "[3,1]");
    assert_eq!(q(&mut c, "RPOPLPUSH {t}b {t}b"), "1", "rotation");
    assert_eq!(q(&mut c, "LRANGE {t}b 0 -1"), "[1,3]");
    assert_eq!(q(&mut c, "LMOVE {t}a {t}a LEFT RIGHT"), "2");
    assert_eq!(q(&mut c, "LRANGE {t}a 0 -1"), "[2]");
    assert_eq!(q(&mut c, "RPOPLPUSH {t}a {t}c"), "2");
    assert_eq!(q(&mut c, "EXISTS {t}a"), "0");
    assert_eq!(q(&mut c, "RPOPLPUSH {t}a {t}c"), "nil");
    assert_eq!(q(&mut c, "LMOVE {t}a {t}c UP LEFT"), "ERR syntax error");
    assert_eq!(q(&mut c, "LMOVE a b LEFT LEFT"), "CROSSSLOT Keys in request don't hash to the same slot");
    assert_eq!(q(&mut c, "LMPOP 2 {t}a {t}b LEFT"), "[{t}b,[1]]");
    assert_eq!(q(&mut c, "LMPOP 2 {t}a {t}b RIGHT COUNT 5"), "[{t}b,[3]]");
    assert_eq!(q(&mut c, "LMPOP 2 {t}a {t}b RIGHT COUNT 5"), "nil");
    assert_eq!(q(&mut c, "LMPOP 0 {t}a LEFT"), "ERR numkeys should be greater than 0");
    assert_eq!(q(&mut c, "LMPOP 3 {t}a LEFT"), "ERR syntax error");
    assert_eq!(q(&mut c, "LMPOP 1 {t}a LEFT COUNT 0"), "ERR count should be greater than 0");
    assert_eq!(q(&mut c, "LMPOP 1 {t}a LEFT COUNT 1 COUNT 1"), "ERR syntax error");
}

#[test]
fn wrong_type_everywhere() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    q(&mut c, "SET {t}s v");
    q(&mut c, "RPUSH {t}l a");
    for cmd in [
        "LPUSH {t}s a",
        "RPUSH {t}s a",
        "LPUSHX {t}s a",
        "RPUSHX {t}s a",
        "LPOP {t}s",
        "RPOP {t}s 2",
        "LLEN {t}s",
        "LRANGE {t}s 0 -1",
        "LINDEX {t}s 0",
        "LSET {t}s 0 a",
        "LREM {t}s 0 a",
        "LTRIM {t}s 0 1",
        "LINSERT {t}s BEFORE a b",
        "LPOS {t}s a",
        "LMOVE {t}s {t}l LEFT LEFT",
        "LMOVE {t}l {t}s LEFT LEFT",
        "RPOPLPUSH {t}l {t}s",
        "LMPOP 1 {t}s LEFT",
        "BLPOP {t}s 0",
        "BLMPOP 0 1 {t}s LEFT",
        "BLMOVE {t}l {t}s LEFT LEFT 0",
    ] {
        assert_eq!(q(&mut c, cmd), WRONG, "{cmd}");
    }
    assert_eq!(q(&mut c, "LRANGE {t}l 0 -1"), "[a]", "a failed move pops nothing");
    assert_eq!(q(&mut c, "GET {t}s"), "v");
}

#[test]
fn big_lists_span_many_chunks() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let big = "x".repeat(10_000);
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("RPUSH").arg("l").arg(format!("e{i}")).ignore();
    }
    pipe.cmd("LPUSH").arg("l").arg(&big).ignore();
    let () = pipe.query(&mut c).unwrap();
    assert_eq!(q(&mut c, "LLEN l"), "3001");
    assert_eq!(q(&mut c, "LINDEX l 1500"), "e1499");
    assert_eq!(q(&mut c, "LINDEX l -1"), "e2999");
    assert_eq!(q(&mut c, "LRANGE l 2998 3000"), "[e2997,e2998,e2999]");
    assert_eq!(q(&mut c, "LSET l 2000 mid"), "OK");
    assert_eq!(q(&mut c, "LINDEX l 2000"), "mid");
    assert_eq!(q(&mut c, "LPOS l e2500"), "2501");
    assert_eq!(q(&mut c, "LTRIM l 1 -1001"), "OK");
    assert_eq!(q(&mut c, "LLEN l"), "2000");
    assert_eq!(q(&mut c, "LINDEX l 0"), "e0");
    assert_eq!(q(&mut c, "LINDEX l -1"), "mid", "LSET 2000 landed on the last kept element");
    let v: Vec<String> = redis::cmd("LPOP").arg("l").arg(2000).query(&mut c).unwrap();
    assert_eq!(v.len(), 2000);
    assert_eq!(v[1998], "e1998");
    assert_eq!(q(&mut c, "EXISTS l"), "0");
}
