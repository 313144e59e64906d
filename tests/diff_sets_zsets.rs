//! Differential tests: the same SET and SORTED SET commands sent to
//! moonshard and to a real redis-server must get the same replies.
//! Keys share the hash tag `{t}` so multi-key forms run on both.

mod common;

use common::{run_str, Diff};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use redis::Value;

/// Small encoding thresholds on both servers, so short random runs cross
/// from intset/listpack to hashtable/skiplist and back through new keys.
const SMALL: &[&str] = &["--shards", "4", "--set-max-intset-entries", "8", "--zset-max-listpack-entries", "8"];

fn start(flags: &[&str]) -> Option<Diff> {
    let mut d = Diff::start(flags)?;
    if flags.contains(&"--set-max-intset-entries") {
        run_str(&mut d.b, &["CONFIG", "SET", "set-max-intset-entries", "8"]).unwrap();
        run_str(&mut d.b, &["CONFIG", "SET", "zset-max-listpack-entries", "8"]).unwrap();
    }
    Some(d)
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Runs each line on both servers; lines starting with `~` compare as unordered.
fn script(d: &mut Diff, text: &str) {
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.strip_prefix('~') {
            Some(rest) => d.check_unordered(&words(rest)),
            None => {
                let _ = d.check(&words(line));
            }
        }
    }
}

/// OBJECT ENCODING, compared only once moonshard has the command.
fn check_encoding(d: &mut Diff, key: &str) {
    let (ours, theirs) = d.both(&["OBJECT", "ENCODING", key]);
    match ours {
        Err(e) if e.contains("unknown command") => {}
        ours => assert_eq!(ours, theirs, "OBJECT ENCODING {key}"),
    }
}

#[test]
fn set_commands_match_redis() {
    let Some(mut d) = start(&["--shards", "4"]) else { return };
    script(
        &mut d,
        "
        SADD {t}s 3 1 2
        SMEMBERS {t}s
        SADD {t}s 2 a b
        SCARD {t}s
        SISMEMBER {t}s a
        SISMEMBER {t}s zz
        SISMEMBER {t}none a
        SMISMEMBER {t}s a zz 1
        SMISMEMBER {t}none a
        SREM {t}s a zz
        SREM {t}none a
        SET {t}str v
        SADD {t}str a
        SREM {t}str a
        SMEMBERS {t}str
        SISMEMBER {t}str a
        SMISMEMBER {t}str a
        SCARD {t}str
        SPOP {t}str
        SRANDMEMBER {t}str
        SINTER {t}s {t}str
        SUNION {t}none {t}str
        SDIFF {t}str
        SINTERCARD 1 {t}str
        SSCAN {t}str 0
        SMOVE {t}s {t}str 1
        SMOVE {t}str {t}s 1
        SINTERSTORE {t}d {t}str
        SPOP {t}none
        SPOP {t}none 3
        SPOP {t}s 0
        SPOP {t}s -1
        SPOP {t}s x
        SPOP {t}s 1 2
        SRANDMEMBER {t}none
        SRANDMEMBER {t}none 5
        SRANDMEMBER {t}s 0
        SRANDMEMBER {t}s x
        SRANDMEMBER {t}s 1 2
        SRANDMEMBER {t}s -9223372036854775808
        ~SRANDMEMBER {t}s 100
        SMOVE {t}none {t}s 1
        SMOVE {t}s {t}s 1
        SMOVE {t}s {t}s zz
        SMOVE {t}s {t}d zz
        SMOVE {t}s {t}d 1
        ~SMEMBERS {t}d
        ~SMEMBERS {t}s
        SADD {t}a 1 2 3 4 x y
        SADD {t}b 3 4 5 y z
        SADD {t}c 4 y q
        ~SINTER {t}a {t}b {t}c
        SINTER {t}a {t}none
        ~SUNION {t}a {t}b {t}none {t}c
        ~SDIFF {t}a {t}b
        ~SDIFF {t}a {t}none
        SDIFF {t}none {t}a
        SINTERSTORE {t}d {t}a {t}b
        ~SMEMBERS {t}d
        SUNIONSTORE {t}d {t}a {t}b {t}c
        SCARD {t}d
        SDIFFSTORE {t}d {t}a {t}b {t}c
        ~SMEMBERS {t}d
        SINTERSTORE {t}d {t}a {t}none
        EXISTS {t}d
        SINTERSTORE {t}str {t}a
        SCARD {t}str
        SINTERCARD 0 {t}a
        SINTERCARD x {t}a
        SINTERCARD 4 {t}a {t}b
        SINTERCARD 2 {t}a {t}b
        SINTERCARD 2 {t}a {t}b LIMIT 1
        SINTERCARD 2 {t}a {t}b LIMIT 0
        SINTERCARD 2 {t}a {t}b LIMIT -1
        SINTERCARD 2 {t}a {t}b LIMIT x
        SINTERCARD 2 {t}a {t}b LIMIT
        SINTERCARD 2 {t}a {t}b FOO 1
        SADD {t}i 5 -3 100 0
        SMEMBERS {t}i
        SSCAN {t}i 0
        SSCAN {t}i 0 MATCH 1*
        SSCAN {t}i x
        SSCAN {t}i 0 COUNT 0
        SSCAN {t}i 0 COUNT x
        SSCAN {t}i 0 TYPE set
        SSCAN {t}i 0 MATCH
        SSCAN {t}none 0
        SUNIONSTORE {t}u {t}i {t}i
        SMEMBERS {t}u
        SADD {t}n 01 1 +1 -0 9223372036854775808
        SCARD {t}n
        SISMEMBER {t}n 1
        ",
    );
    for key in ["{t}i", "{t}a", "{t}u", "{t}n"] {
        check_encoding(&mut d, key);
    }
}

#[test]
fn zset_commands_match_redis() {
    let Some(mut d) = start(&["--shards", "4"]) else { return };
    script(
        &mut d,
        "
        ZADD {t}z 1 a 2 b 3 c 4 d 5 e
        ZADD {t}z NX XX 1 a
        ZADD {t}z GT LT 1 a
        ZADD {t}z GT NX 1 a
        ZADD {t}z LT NX 1 a
        ZADD {t}z INCR 1 a 2 b
        ZADD {t}z 1 a 2
        ZADD {t}z
        ZADD {t}z NX
        ZADD {t}z x a
        ZADD {t}z nan a
        ZADD {t}z 1e400 a
        ZADD {t}z 0x10 a
        ZADD {t}z 1e-400 a
        ZADD {t}z INCR 1 a
        ZADD {t}z XX INCR 1 zz
        ZADD {t}none XX 1 a
        ZADD {t}none XX INCR 1 a
        EXISTS {t}none
        ZADD {t}z CH GT 5 a 0 b 7 f
        ZADD {t}z CH LT 0 a 9 b
        ZADD {t}z CH 0 a 2 b
        ZADD {t}z NX INCR 1 a
        ZADD {t}z GT INCR -1 a
        ZADD {t}z LT INCR -1 a
        ZADD {t}z INCR 0 a
        ZINCRBY {t}z 1.5 a
        ZINCRBY {t}z x a
        ZINCRBY {t}z 1 nx
        ZINCRBY {t}inf inf a
        ZINCRBY {t}inf -inf a
        ZSCORE {t}inf a
        ZRANGE {t}z 0 -1 WITHSCORES
        ZSCORE {t}z a
        ZSCORE {t}z zz
        ZSCORE {t}none a
        ZMSCORE {t}z a zz b
        ZMSCORE {t}none a
        ZCARD {t}z
        ZCARD {t}none
        ZRANK {t}z c
        ZRANK {t}z zz
        ZREVRANK {t}z c
        ZREVRANK {t}none c
        ZCOUNT {t}z (1 3
        ZCOUNT {t}z -inf +inf
        ZCOUNT {t}z 3 1
        ZCOUNT {t}z x 1
        ZCOUNT {t}z ( 1
        ZCOUNT {t}none 1 2
        ZREM {t}z a zz
        ZREM {t}none a
        SET {t}str v
        ZADD {t}str 1 a
        ZINCRBY {t}str 1 a
        ZREM {t}str a
        ZSCORE {t}str a
        ZMSCORE {t}str a
        ZCARD {t}str
        ZCOUNT {t}str 1 2
        ZLEXCOUNT {t}str - +
        ZRANK {t}str a
        ZRANGE {t}str 0 1
        ZRANGEBYSCORE {t}str 0 1
        ZRANGEBYLEX {t}str - +
        ZRANGESTORE {t}d {t}str 0 1
        ZREMRANGEBYRANK {t}str 0 1
        ZREMRANGEBYSCORE {t}str 0 1
        ZREMRANGEBYLEX {t}str - +
        ZPOPMIN {t}str
        ZPOPMAX {t}str 2
        ZPOPMAX {t}str 0
        ZPOPMIN {t}str 0
        ZPOPMIN {t}str -1
        ZMPOP 1 {t}str MIN
        ZRANDMEMBER {t}str
        ZUNION 1 {t}str
        ZINTERSTORE {t}d 1 {t}str
        ZDIFF 1 {t}str
        ZINTERCARD 1 {t}str
        ZSCAN {t}str 0
        ",
    );
}

#[test]
fn zset_ranges_match_redis() {
    let Some(mut d) = start(&["--shards", "4"]) else { return };
    script(
        &mut d,
        "
        ZADD {t}z 1 a 2 b 3 c 4 d 5 e 5 f -inf g +inf h 1.5 i 0.1 j -0 k 1e20 l
        ZRANGE {t}z 0 -1 WITHSCORES
        ZRANGE {t}z 1 -2
        ZRANGE {t}z -100 100
        ZRANGE {t}z 3 1
        ZRANGE {t}z 100 200
        ZRANGE {t}z -1 -1
        ZRANGE {t}z x 1
        ZRANGE {t}z 0 -1 REV WITHSCORES
        ZRANGE {t}z 0 1 LIMIT 0 1
        ZRANGE {t}z 0 -1 BYSCORE LIMIT 0 1
        ZRANGE {t}z -inf +inf BYSCORE LIMIT 2 3 WITHSCORES
        ZRANGE {t}z +inf -inf BYSCORE REV LIMIT 2 3 WITHSCORES
        ZRANGE {t}z (1 (5 BYSCORE
        ZRANGE {t}z (5 (1 BYSCORE REV
        ZRANGE {t}z (1 5 BYSCORE LIMIT 0 -5 WITHSCORES
        ZRANGE {t}z (1 5 BYSCORE LIMIT -1 5
        ZRANGE {t}z (1 5 BYSCORE LIMIT 100 5
        ZRANGE {t}z (1 5 BYSCORE LIMIT 1 0
        ZRANGE {t}z 0 -1 BYSCORE BYSCORE
        ZRANGE {t}z 0 -1 BYSCORE BYLEX
        ZRANGE {t}z 0 -1 REV REV
        ZRANGE {t}z 0 -1 LIMIT 1
        ZRANGE {t}z 0 -1 LIMIT x 1 BYSCORE
        ZRANGE {t}z - + BYLEX WITHSCORES
        ZRANGE {t}z a b BYLEX
        ZRANGE {t}z a b BYSCORE
        ZRANGEBYSCORE {t}z -inf +inf WITHSCORES LIMIT 1 2
        ZRANGEBYSCORE {t}z (-inf (+inf
        ZRANGEBYSCORE {t}z (1 (1
        ZRANGEBYSCORE {t}z 1 1
        ZRANGEBYSCORE {t}z -inf +inf BYSCORE
        ZRANGEBYSCORE {t}z -inf +inf REV
        ZREVRANGEBYSCORE {t}z 4 (1 WITHSCORES LIMIT 1 2
        ZREVRANGEBYSCORE {t}z (4 -inf
        ZREVRANGEBYSCORE {t}z -inf +inf
        ZREVRANGE {t}z 0 2 WITHSCORES
        ZREVRANGE {t}z -3 -1
        ZREVRANGE {t}z 0 -1 REV
        ZREVRANGE {t}z 0 -1 LIMIT 0 1
        ZADD {t}lex 0 a 0 b 0 c 0 d 0 e 0 f 0 g 0 aa 0 ab
        ZRANGEBYLEX {t}lex - +
        ZRANGEBYLEX {t}lex [a (c
        ZRANGEBYLEX {t}lex (a [c LIMIT 1 10
        ZRANGEBYLEX {t}lex (aa +
        ZRANGEBYLEX {t}lex + -
        ZRANGEBYLEX {t}lex [c [a
        ZRANGEBYLEX {t}lex - + LIMIT 2 3
        ZRANGEBYLEX {t}lex a +
        ZRANGEBYLEX {t}lex [a ++
        ZRANGEBYLEX {t}lex - + WITHSCORES
        ZREVRANGEBYLEX {t}lex [d (a
        ZREVRANGEBYLEX {t}lex + - LIMIT 0 2
        ZREVRANGEBYLEX {t}lex - +
        ZRANGE {t}lex [g [b BYLEX REV LIMIT 1 2
        ZLEXCOUNT {t}lex - +
        ZLEXCOUNT {t}lex [b (d
        ZLEXCOUNT {t}lex (d [b
        ZLEXCOUNT {t}lex b d
        ZLEXCOUNT {t}none - +
        ZRANGESTORE {t}d {t}z 1 3
        ZRANGE {t}d 0 -1 WITHSCORES
        ZRANGESTORE {t}d {t}z (5 +inf BYSCORE
        ZRANGE {t}d 0 -1 WITHSCORES
        ZRANGESTORE {t}d {t}z 100 200
        EXISTS {t}d
        ZRANGESTORE {t}d {t}lex [e - BYLEX REV LIMIT 1 2
        ZRANGE {t}d 0 -1
        ZRANGESTORE {t}d {t}z 0 -1 WITHSCORES
        ZRANGESTORE {t}d {t}none 0 -1
        ZREMRANGEBYSCORE {t}z (4 5
        ZREMRANGEBYSCORE {t}z x 5
        ZREMRANGEBYLEX {t}lex - [b
        ZREMRANGEBYLEX {t}lex a b
        ZREMRANGEBYRANK {t}z -1 -1
        ZREMRANGEBYRANK {t}z 5 2
        ZREMRANGEBYRANK {t}z x 2
        ZREMRANGEBYRANK {t}none 0 -1
        ZRANGE {t}z 0 -1 WITHSCORES
        ZRANGE {t}lex 0 -1
        ZREMRANGEBYRANK {t}z 0 -1
        EXISTS {t}z
        ",
    );
}

#[test]
fn zset_pops_and_set_operations_match_redis() {
    let Some(mut d) = start(&["--shards", "4"]) else { return };
    script(
        &mut d,
        "
        ZADD {t}z 1 a 2 b 3 c 4 d 5 e 6 f
        ZPOPMIN {t}z
        ZPOPMAX {t}z
        ZPOPMIN {t}z 2
        ZPOPMIN {t}z 0
        ZPOPMIN {t}z -1
        ZPOPMIN {t}z x
        ZPOPMIN {t}z 1 2
        ZPOPMIN {t}none
        ZPOPMIN {t}none 3
        ZPOPMIN {t}none 0
        ZPOPMAX {t}z 0
        ZCARD {t}z
        ZPOPMAX {t}z 10
        EXISTS {t}z
        ZADD {t}z 1 a 2 b 3 c 4 d
        ZMPOP 0 {t}z MIN
        ZMPOP x {t}z MIN
        ZMPOP 1 {t}z FOO
        ZMPOP 1 {t}z MIN COUNT 0
        ZMPOP 1 {t}z MIN COUNT x
        ZMPOP 1 {t}z MIN COUNT 1 COUNT 1
        ZMPOP 1 {t}z MIN COUNT
        ZMPOP 2 {t}none {t}z MAX COUNT 2
        ZMPOP 1 {t}z MIN
        ZMPOP 1 {t}none MIN
        ZMPOP 3 {t}none {t}z {t}none MIN COUNT 10
        EXISTS {t}z
        ZRANDMEMBER {t}none
        ZRANDMEMBER {t}none 3
        ZADD {t}z 1 a 2 b 3 c
        ZRANDMEMBER {t}z 0
        ZRANDMEMBER {t}z x
        ZRANDMEMBER {t}z 1 2
        ZRANDMEMBER {t}z 1 withscores x
        ZRANDMEMBER {t}z -9223372036854775808
        ZRANDMEMBER {t}z -9223372036854775807 withscores
        ~ZRANDMEMBER {t}z 10
        ZADD {t}a 1 x 2 y 3 z
        ZADD {t}b 10 y 20 z 30 w
        SADD {t}s x w q
        ZUNION 2 {t}a {t}b WITHSCORES
        ZUNION 3 {t}a {t}b {t}s WITHSCORES
        ZUNION 2 {t}a {t}b WEIGHTS 2 0.5 WITHSCORES
        ZUNION 2 {t}a {t}b AGGREGATE MIN WITHSCORES
        ZUNION 2 {t}a {t}b AGGREGATE max WITHSCORES
        ZUNION 2 {t}a {t}b
        ZUNION 2 {t}a {t}none WITHSCORES
        ZINTER 2 {t}a {t}b WITHSCORES
        ZINTER 2 {t}a {t}s WITHSCORES
        ZINTER 2 {t}a {t}b WEIGHTS 1 -1 AGGREGATE SUM WITHSCORES
        ZINTER 2 {t}a {t}none
        ZDIFF 2 {t}a {t}b WITHSCORES
        ZDIFF 2 {t}b {t}s
        ZDIFF 1 {t}s WITHSCORES
        ZDIFF 2 {t}a {t}b WEIGHTS 1 1
        ZDIFF 2 {t}a {t}b AGGREGATE MIN
        ZUNION 0 {t}a
        ZUNION -1 {t}a
        ZUNION x {t}a
        ZUNION 3 {t}a {t}b
        ZUNION 2 {t}a {t}b WEIGHTS 1
        ZUNION 2 {t}a {t}b WEIGHTS 1 x
        ZUNION 2 {t}a {t}b AGGREGATE foo
        ZUNION 2 {t}a {t}b AGGREGATE
        ZUNION 2 {t}a {t}str WEIGHTS x
        ZUNION 2 {t}a {t}b FOO
        ZUNIONSTORE {t}d 2 {t}a {t}b WEIGHTS 2 3
        ZRANGE {t}d 0 -1 WITHSCORES
        ZUNIONSTORE {t}d 2 {t}a {t}b WITHSCORES
        ZINTERSTORE {t}d 2 {t}a {t}b AGGREGATE MAX
        ZRANGE {t}d 0 -1 WITHSCORES
        ZDIFFSTORE {t}d 2 {t}a {t}b
        ZRANGE {t}d 0 -1 WITHSCORES
        ZINTERSTORE {t}d 2 {t}a {t}none
        EXISTS {t}d
        ZUNIONSTORE {t}d 0 {t}a
        ZDIFFSTORE {t}d 0 {t}a
        ZINTERCARD 2 {t}a {t}b
        ZINTERCARD 2 {t}a {t}b LIMIT 1
        ZINTERCARD 2 {t}a {t}b LIMIT 0
        ZINTERCARD 2 {t}a {t}b LIMIT -1
        ZINTERCARD 2 {t}a {t}b WITHSCORES
        ZINTERCARD 2 {t}a {t}b WEIGHTS 1 1
        ZINTERCARD 0 {t}a
        ZADD {t}inf inf a -inf b
        ZUNION 2 {t}inf {t}inf WEIGHTS 1 -1 WITHSCORES
        ZUNION 1 {t}inf WEIGHTS 0 WITHSCORES
        ZINTER 2 {t}inf {t}inf WEIGHTS 1 -1 WITHSCORES
        ZINTER 2 {t}inf {t}inf AGGREGATE MIN WITHSCORES
        ZADD {t}f 0.1 a 0.2 b 1.1 c 3.0000000001 d 1e-5 e 123456789012345678 f
        ZRANGE {t}f 0 -1 WITHSCORES
        ZUNION 2 {t}f {t}f WITHSCORES
        ZSCAN {t}f 0
        ZSCAN {t}f 0 MATCH [ab]
        ZSCAN {t}f 0 COUNT 0
        ZSCAN {t}f x
        ZSCAN {t}none 0
        ",
    );
}

#[test]
fn encodings_follow_redis_thresholds() {
    let Some(mut d) = start(SMALL) else { return };
    let long = "x".repeat(70);
    for i in 0..10 {
        let _ = d.check(&["SADD", "{t}i", &i.to_string()]);
        check_encoding(&mut d, "{t}i");
        let _ = d.check(&["ZADD", "{t}z", &i.to_string(), &format!("m{i}")]);
        check_encoding(&mut d, "{t}z");
    }
    let _ = d.check(&["ZADD", "{t}long", "1", &long]);
    check_encoding(&mut d, "{t}long");
    let _ = d.check(&["ZADD", "{t}short", "1", "a"]);
    let _ = d.check(&["ZADD", "{t}short", "2", &long]);
    check_encoding(&mut d, "{t}short");
    let _ = d.check(&["ZUNIONSTORE", "{t}u", "1", "{t}short"]);
    check_encoding(&mut d, "{t}u");
    let _ = d.check(&["ZRANGESTORE", "{t}u", "{t}z", "0", "3"]);
    check_encoding(&mut d, "{t}u");
    let _ = d.check(&["SADD", "{t}m", "1", "2"]);
    let _ = d.check(&["SUNIONSTORE", "{t}m2", "{t}m", "{t}m"]);
    check_encoding(&mut d, "{t}m2");
    let _ = d.check(&["SADD", "{t}m", "a"]);
    check_encoding(&mut d, "{t}m");
}

/// Sends a randomized sequence of set commands to both servers.
fn random_sets(d: &mut Diff, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let keys = ["{t}s0", "{t}s1", "{t}s2", "{t}s3"];
    let member = |rng: &mut StdRng| -> String {
        if rng.gen_bool(0.6) {
            rng.gen_range(-5..20).to_string()
        } else {
            format!("m{}", rng.gen_range(0..15))
        }
    };
    for _ in 0..steps {
        let k = *keys.choose(&mut rng).unwrap();
        let k2 = *keys.choose(&mut rng).unwrap();
        let k3 = *keys.choose(&mut rng).unwrap();
        let ms: Vec<String> = (0..rng.gen_range(1..5)).map(|_| member(&mut rng)).collect();
        let m = ms[0].as_str();
        let mut unordered = false;
        let with_members = |cmd: &'static str| {
            let mut v = vec![cmd, k];
            v.extend(ms.iter().map(String::as_str));
            v
        };
        let args: Vec<&str> = match rng.gen_range(0..16) {
            0..=3 => with_members("SADD"),
            4 => with_members("SREM"),
            5 => vec!["SISMEMBER", k, m],
            6 => with_members("SMISMEMBER"),
            7 => vec!["SCARD", k],
            8 => {
                unordered = true;
                vec!["SMEMBERS", k]
            }
            9 => {
                unordered = true;
                vec![["SINTER", "SUNION", "SDIFF"][rng.gen_range(0..3)], k, k2, k3]
            }
            10 => vec![["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"][rng.gen_range(0..3)], k, k2, k3],
            11 => vec!["SMOVE", k, k2, m],
            12 => vec!["SINTERCARD", "2", k, k2, "LIMIT", ["0", "1", "3"][rng.gen_range(0..3)]],
            13 => {
                unordered = true;
                vec!["SRANDMEMBER", k, "100"]
            }
            14 => {
                spop_both(d, k, rng.gen_range(0..4));
                continue;
            }
            _ => {
                check_encoding(d, k);
                continue;
            }
        };
        if unordered {
            d.check_unordered(&args);
        } else {
            let _ = d.check(&args);
        }
    }
    for k in keys {
        d.check_unordered(&["SMEMBERS", k]);
    }
}

/// SPOP picks at random: pop on moonshard, check the shape and that the
/// members were there, then remove the same members from redis-server.
fn spop_both(d: &mut Diff, key: &str, count: usize) {
    let card = match run_str(&mut d.b, &["SCARD", key]) {
        Ok(Value::Int(n)) => n as usize,
        other => panic!("SCARD: {other:?}"),
    };
    let popped: Vec<Vec<u8>> = match run_str(&mut d.a, &["SPOP", key, &count.to_string()]).unwrap() {
        Value::Array(items) | Value::Set(items) => items
            .into_iter()
            .map(|v| match v {
                Value::BulkString(b) => b,
                other => panic!("SPOP member {other:?}"),
            })
            .collect(),
        other => panic!("SPOP reply {other:?}"),
    };
    assert_eq!(popped.len(), count.min(card), "SPOP {key} {count}");
    for m in popped {
        let m = String::from_utf8(m).unwrap();
        assert_eq!(run_str(&mut d.b, &["SREM", key, &m]), Ok(Value::Int(1)), "popped {m} was not in {key}");
    }
}

#[test]
fn random_set_sequences_match_redis() {
    let Some(mut d) = start(SMALL) else { return };
    for seed in 0..3 {
        random_sets(&mut d, seed, 300);
    }
}

fn score(rng: &mut StdRng) -> String {
    match rng.gen_range(0..10) {
        0 => "-inf".into(),
        1 => "+inf".into(),
        2 => "1.5".into(),
        3 => "-0.25".into(),
        _ => rng.gen_range(-5..10).to_string(),
    }
}

fn score_bound(rng: &mut StdRng) -> String {
    let s = score(rng);
    if rng.gen_bool(0.3) {
        format!("({s}")
    } else {
        s
    }
}

fn lex_bound(rng: &mut StdRng) -> String {
    match rng.gen_range(0..6) {
        0 => "-".into(),
        1 => "+".into(),
        2 => format!("(m{}", rng.gen_range(0..12)),
        _ => format!("[m{}", rng.gen_range(0..12)),
    }
}

/// Sends a randomized sequence of sorted-set commands to both servers.
fn random_zsets(d: &mut Diff, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let keys = ["{t}z0", "{t}z1", "{t}z2"];
    for _ in 0..steps {
        let k = *keys.choose(&mut rng).unwrap();
        let k2 = *keys.choose(&mut rng).unwrap();
        let m = format!("m{}", rng.gen_range(0..12));
        let (s1, s2) = (score(&mut rng), score(&mut rng));
        let (b1, b2) = (score_bound(&mut rng), score_bound(&mut rng));
        let (l1, l2) = (lex_bound(&mut rng), lex_bound(&mut rng));
        let (i1, i2) = (rng.gen_range(-8..8).to_string(), rng.gen_range(-8..8).to_string());
        let (off, cnt) = (rng.gen_range(-1..5).to_string(), rng.gen_range(-1..5).to_string());
        let m2 = format!("m{}", rng.gen_range(0..12));
        let flag = ["NX", "XX", "GT", "LT", "CH", "INCR", "GT CH", "XX LT", "NX INCR"][rng.gen_range(0..9)];
        let rev = if rng.gen_bool(0.5) { "REV" } else { "" };
        let ws = if rng.gen_bool(0.5) { "WITHSCORES" } else { "" };
        let line: String = match rng.gen_range(0..24) {
            0..=4 => format!("ZADD {k} {s1} {m} {s2} {m2}"),
            5 => format!("ZADD {k} {flag} {s1} {m}"),
            6 => format!("ZINCRBY {k} {s1} {m}"),
            7 => format!("ZREM {k} {m} {m2}"),
            8 => format!("ZSCORE {k} {m}"),
            9 => format!("ZMSCORE {k} {m} {m2}"),
            10 => format!("ZRANK {k} {m}"),
            11 => format!("ZREVRANK {k} {m}"),
            12 => format!("ZCOUNT {k} {b1} {b2}"),
            13 => format!("ZRANGE {k} {i1} {i2} {rev} {ws}"),
            14 => format!("ZRANGE {k} {b1} {b2} BYSCORE {rev} LIMIT {off} {cnt} {ws}"),
            15 => format!("ZRANGEBYSCORE {k} {b1} {b2} {ws}"),
            16 => format!("ZREVRANGEBYSCORE {k} {b1} {b2} LIMIT {off} {cnt}"),
            17 => format!("ZREMRANGEBYSCORE {k} {b1} {b2}"),
            18 => format!("ZREMRANGEBYRANK {k} {i1} {i2}"),
            19 => format!("{} {k} {}", ["ZPOPMIN", "ZPOPMAX"][rng.gen_range(0..2)], rng.gen_range(1..4)),
            20 => format!("ZMPOP 2 {k} {k2} {} COUNT 2", ["MIN", "MAX"][rng.gen_range(0..2)]),
            21 => format!(
                "{} {k} 2 {k} {k2} WEIGHTS 1 {} AGGREGATE {}",
                ["ZUNIONSTORE", "ZINTERSTORE"][rng.gen_range(0..2)],
                ["2", "-1", "0.5"][rng.gen_range(0..3)],
                ["SUM", "MIN", "MAX"][rng.gen_range(0..3)]
            ),
            22 => format!("{} 2 {k} {k2} WITHSCORES", ["ZUNION", "ZINTER", "ZDIFF"][rng.gen_range(0..3)]),
            _ => format!("ZRANGESTORE {k2} {k} {i1} {i2} {rev}"),
        };
        let _ = d.check(&words(&line));
        // Lexical ranges are only defined when all scores are equal.
        let lex = match rng.gen_range(0..5) {
            0 => format!("ZADD {{t}}lex 0 {m} 0 {m2}"),
            1 => format!("ZRANGEBYLEX {{t}}lex {l1} {l2} LIMIT {off} {cnt}"),
            2 => format!("ZREVRANGEBYLEX {{t}}lex {l1} {l2}"),
            3 => format!("ZLEXCOUNT {{t}}lex {l1} {l2}"),
            _ => format!("ZREMRANGEBYLEX {{t}}lex {l1} {l2}"),
        };
        let _ = d.check(&words(&lex));
    }
    for k in keys.iter().chain(&["{t}lex"]) {
        let _ = d.check(&["ZRANGE", k, "0", "-1", "WITHSCORES"]);
        check_encoding(d, k);
    }
}

#[test]
fn random_zset_sequences_match_redis() {
    let Some(mut d) = start(&["--shards", "4"]) else { return };
    for seed in 0..2 {
        random_zsets(&mut d, seed, 300);
    }
}

#[test]
fn random_zset_sequences_match_redis_past_listpack() {
    let Some(mut d) = start(SMALL) else { return };
    for seed in 10..12 {
        random_zsets(&mut d, seed, 300);
    }
}
