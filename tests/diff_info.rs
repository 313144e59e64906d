//! INFO against a real redis-server 7.0: after the same commands both
//! servers show the same fields in every section (but for the declared
//! differences below), and the counters that must move identically do:
//! keyspace hits and misses for every read command of every family, the
//! changes since the last save for the write commands, commands processed,
//! error replies, expired and evicted keys, blocked clients, commandstats,
//! errorstats, latencystats and what CONFIG RESETSTAT resets.

mod common;
mod raw_resp;

use common::{run_str, Diff, Proc};
use redis::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Fields only redis-server has, with the reason moonshard leaves each out.
const ONLY_REDIS: &[(&str, &str, &str)] = &[
    ("Server", "gcc_version", "moonshard is built by rustc; no C compiler is involved"),
    ("Memory", "used_memory_vm_functions", "functions run in the shards' Lua VMs, counted in used_memory_vm_eval"),
    ("Stats", "reply_buffer_shrinks", "the output buffer has no resize policy to count (a plain growable buffer)"),
    ("Stats", "reply_buffer_expands", "as reply_buffer_shrinks"),
];

/// Fields only moonshard has.
const ONLY_MOONSHARD: &[(&str, &str, &str)] = &[
    ("Server", "moonshard_version", "moonshard's own version (redis_version is the protocol's)"),
    ("Server", "shards", "the number of shards"),
];

use common::{parse_info as parse, InfoSections as Info};

fn info(con: &mut redis::Connection, sections: &[&str]) -> Info {
    let mut args = vec!["INFO"];
    args.extend_from_slice(sections);
    match run_str(con, &args) {
        Ok(Value::BulkString(b)) => parse(&String::from_utf8_lossy(&b)),
        Ok(Value::VerbatimString { text, .. }) => parse(&text),
        other => panic!("INFO gave {other:?}"),
    }
}

/// One field as a number (missing: panics).
fn num(info: &Info, section: &str, field: &str) -> i64 {
    let v = info.get(section).and_then(|s| s.get(field)).unwrap_or_else(|| panic!("no {section}/{field}"));
    v.parse().unwrap_or_else(|_| panic!("{section}/{field} = {v}"))
}

/// The counters that must move identically on both servers.
const COUNTERS: &[(&str, &str)] = &[
    ("Stats", "keyspace_hits"),
    ("Stats", "keyspace_misses"),
    ("Persistence", "rdb_changes_since_last_save"),
    ("Stats", "total_commands_processed"),
    ("Stats", "total_error_replies"),
    ("Stats", "expired_keys"),
    ("Stats", "evicted_keys"),
];

fn counters(con: &mut redis::Connection) -> Vec<i64> {
    let i = info(con, &["stats", "persistence"]);
    COUNTERS.iter().map(|(s, f)| num(&i, s, f)).collect()
}

/// Both servers, redis-server working in a fresh temporary directory (so
/// it neither loads nor leaves a dump file where the tests run; removed when
/// the test ends), with the statistics reset once the clients are connected
/// (the client library's handshake differs: CLIENT SETINFO is Redis 7.2's).
fn start() -> Option<(Diff, TempDir)> {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if !common::has_program("redis-server") {
        // The harness's notice, or its failure under MOONSHARD_REQUIRE_REDIS=1.
        return common::redis_server().map(|_| unreachable!());
    }
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = TempDir(std::env::temp_dir().join(format!("moonshard-diff-info-{}-{n}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let theirs = loop {
        let port = common::free_port();
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut up = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // the port was taken: try another
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let p = Proc { port, child, dir: None };
        // Someone else's server may answer on that port: make sure it is ours.
        if up && num(&info(&mut p.client(), &["server"]), "Server", "process_id") == i64::from(p.child.id()) {
            break p;
        }
        assert!(Instant::now() < deadline, "redis-server did not start");
    };
    let ours = common::moonshard(&["--shards", "4"]);
    let (a, b) = (ours.client(), theirs.client());
    let mut d = Diff { ours, theirs, a, b };
    for c in [&mut d.a, &mut d.b] {
        run_str(c, &["CONFIG", "RESETSTAT"]).expect("CONFIG RESETSTAT");
    }
    Some((d, dir))
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Splits a scripted line: tab-separated when it has tabs (arguments with
/// spaces), else space-separated. A leading `~` means the replies may
/// differ (randomness, timing); the counters must not.
fn split(line: &str) -> (bool, Vec<&str>) {
    let (exact, line) = match line.strip_prefix('~') {
        Some(rest) => (false, rest),
        None => (true, line),
    };
    let args = if line.contains('\t') { line.split('\t').collect() } else { line.split(' ').collect() };
    (exact, args)
}

/// Runs each line on both servers and asserts the counters moved by the
/// same amounts (and the replies are equal unless marked `~`).
fn same_deltas(d: &mut Diff, lines: &[&str]) {
    same_deltas_but(d, lines, &[]);
}

/// `same_deltas`, not comparing the fields in `skip` (figures whose moment
/// depends on timing, such as keys the expiry cycle may reap first).
fn same_deltas_but(d: &mut Diff, lines: &[&str], skip: &[&str]) {
    let mut in_multi = false;
    for line in lines {
        let (exact, args) = split(line);
        if let Some(ms) = args[0].strip_prefix("SLEEP") {
            let _ = ms;
            std::thread::sleep(Duration::from_millis(args[1].parse().unwrap_or(100)));
            continue;
        }
        let name = args[0].to_ascii_uppercase();
        // INFO would be queued inside MULTI: compare around the whole transaction.
        let before = (!in_multi).then(|| (counters(&mut d.a), counters(&mut d.b)));
        let (ours, theirs) = if name == "SCANALL" {
            (scan_all(&mut d.a, &args[1..]), scan_all(&mut d.b, &args[1..]))
        } else {
            d.both(&args)
        };
        if exact {
            assert_eq!(ours, theirs, "replies differ on {line:?}");
        }
        in_multi = match name.as_str() {
            "MULTI" => ours.is_ok(),
            "EXEC" | "DISCARD" => false,
            _ => in_multi,
        };
        if let Some((a0, b0)) = before {
            if in_multi {
                continue;
            }
            let (a1, b1) = (counters(&mut d.a), counters(&mut d.b));
            for (i, (s, f)) in COUNTERS.iter().enumerate() {
                // moonshard's SCAN cursor takes one more call per shard.
                if skip.contains(f) || (name == "SCANALL" && *f == "total_commands_processed") {
                    continue;
                }
                let (da, db) = (a1[i] - a0[i], b1[i] - b0[i]);
                assert_eq!(da, db, "{s}/{f} moved by {da} on moonshard, {db} on redis-server after {line:?}");
            }
        }
    }
}

/// `SCAN cursor <args>` until the cursor comes back to 0: the keys found,
/// sorted (moonshard's cursor walks one shard at a time).
fn scan_all(con: &mut redis::Connection, args: &[&str]) -> Result<Value, String> {
    let mut cursor = "0".to_string();
    let mut keys = BTreeSet::new();
    loop {
        let mut cmd = vec!["SCAN", cursor.as_str()];
        cmd.extend_from_slice(args);
        let Value::Array(reply) = run_str(con, &cmd)? else { return Err("SCAN reply".into()) };
        let [Value::BulkString(next), Value::Array(found)] = &reply[..] else { return Err("SCAN reply".into()) };
        keys.extend(found.iter().cloned().filter_map(|k| match k {
            Value::BulkString(b) => Some(b),
            _ => None,
        }));
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            return Ok(Value::Array(keys.into_iter().map(Value::BulkString).collect()));
        }
    }
}

#[test]
fn read_commands_count_hits_and_misses_as_redis() {
    let Some((mut d, _dir)) = start() else { return };
    same_deltas(
        &mut d,
        &[
            // Strings, bitmaps, HyperLogLog (the missing key and a wrong type too).
            "SET s hello",
            "RPUSH l a b c",
            "GET s",
            "GET nosuch",
            "GET l",
            "MGET s nosuch l",
            "STRLEN s",
            "STRLEN nosuch",
            "GETRANGE s 0 2",
            "SUBSTR nosuch 0 1",
            "LCS s s",
            "GETBIT s 3",
            "GETBIT nosuch 3",
            "BITCOUNT s",
            "BITPOS s 1",
            "BITPOS nosuch 0",
            "BITFIELD_RO s GET u8 0",
            "BITFIELD s GET u8 0",
            "PFADD hll a b",
            "PFCOUNT hll",
            "PFCOUNT nosuch",
            // Keys.
            "EXISTS s nosuch s l",
            "TYPE s",
            "TYPE nosuch",
            "TTL s",
            "PTTL nosuch",
            "EXPIRETIME s",
            "PEXPIRETIME nosuch",
            "OBJECT ENCODING s",
            "OBJECT FREQ nosuch",
            "~OBJECT IDLETIME s",
            "OBJECT REFCOUNT l",
            "TOUCH s nosuch l",
            // Lists.
            "LRANGE l 0 -1",
            "LRANGE nosuch 0 -1",
            "LRANGE s 0 -1",
            "LLEN l",
            "LLEN nosuch",
            "LINDEX l 1",
            "LINDEX nosuch 1",
            "LPOS l b",
            "LPOS nosuch b",
            // Hashes.
            "HSET h f1 v1 f2 v2",
            "HGET h f1",
            "HGET h nofield",
            "HGET nosuch f1",
            "HGET s f1",
            "HMGET h f1 nofield",
            "HMGET nosuch f1",
            "HGETALL h",
            "HGETALL nosuch",
            "HKEYS h",
            "HVALS nosuch",
            "HLEN h",
            "HEXISTS h f1",
            "HEXISTS nosuch f1",
            "HSTRLEN h f1",
            "~HRANDFIELD h",
            "HRANDFIELD nosuch",
            "~HRANDFIELD h 2",
            "~HSCAN h 0",
            "HSCAN nosuch 0",
            // Sets.
            "SADD {s}a 1 2 3",
            "SADD {s}b 2 3 4",
            "SISMEMBER {s}a 1",
            "SISMEMBER nosuch 1",
            "SMISMEMBER {s}a 1 9",
            "~SMEMBERS {s}a",
            "SMEMBERS nosuch",
            "SCARD {s}a",
            "SCARD nosuch",
            "~SRANDMEMBER {s}a",
            "SRANDMEMBER nosuch 2",
            "~SSCAN {s}a 0",
            "~SINTER {s}a {s}b",
            "SINTER {s}a {s}none",
            "SINTERCARD 2 {s}a {s}b",
            "~SUNION {s}a {s}b {s}none",
            "~SDIFF {s}a {s}b",
            "SINTERSTORE {s}c {s}a {s}b",
            "SUNIONSTORE {s}c {s}a {s}none",
            "SDIFFSTORE {s}c {s}none {s}b",
            "SINTER {s}a s",
            // Sorted sets.
            "ZADD z 1 a 2 b 3 c",
            "ZSCORE z a",
            "ZSCORE nosuch a",
            "ZMSCORE z a nope",
            "ZRANK z b",
            "ZREVRANK nosuch b",
            "ZCARD z",
            "ZCOUNT z 0 10",
            "ZLEXCOUNT z - +",
            "ZRANGE z 0 -1 WITHSCORES",
            "ZRANGE nosuch 0 -1",
            "ZRANGE z 0 5 BYSCORE",
            "ZRANGEBYSCORE z 1 2",
            "ZREVRANGEBYSCORE z 2 1",
            "ZRANGEBYLEX z - +",
            "ZREVRANGEBYLEX z + -",
            "ZREVRANGE z 0 1",
            "~ZRANDMEMBER z",
            "ZRANDMEMBER nosuch",
            "~ZSCAN z 0",
            "ZSCAN nosuch 0",
            "ZADD {z}a 1 a 2 b",
            "ZADD {z}b 1 b 3 c",
            "ZUNION 2 {z}a {z}b WITHSCORES",
            "ZINTER 2 {z}a {z}none",
            "ZDIFF 2 {z}a {z}b",
            "ZINTERCARD 2 {z}a {z}b",
            "ZUNIONSTORE {z}c 2 {z}a {z}b",
            "ZRANGESTORE {z}d {z}a 0 -1",
            "ZRANGESTORE {z}d {z}none 0 -1",
            // Geo (sorted sets underneath).
            "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
            "GEODIST g Palermo Catania",
            "GEODIST nosuch a b",
            "GEOHASH g Palermo",
            "GEOPOS g Palermo nope",
            "GEOPOS nosuch a",
            "GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km ASC",
            "GEORADIUS_RO g 15 37 200 km ASC",
            "GEORADIUSBYMEMBER_RO g Palermo 200 km ASC",
            // Streams.
            "XADD st 1-1 f v",
            "XADD st 2-1 f v",
            "XLEN st",
            "XLEN nosuch",
            "XRANGE st - +",
            "XRANGE nosuch - +",
            "XREVRANGE st + -",
            "XREAD COUNT 5 STREAMS st nosuch 0 0",
            "XGROUP CREATE st g 0",
            "XREADGROUP GROUP g c1 STREAMS st >",
            "XREADGROUP GROUP nog c1 STREAMS st >",
            "XPENDING st g",
            "~XPENDING st g - + 10",
            "XACK st g 1-1",
            "~XCLAIM st g c2 0 2-1",
            "~XAUTOCLAIM st g c3 0 0",
            "~XINFO STREAM st",
            "XINFO GROUPS st",
            "XINFO STREAM nosuch",
            // A SCAN over every shard with TYPE looks each key up.
            // SCAN with TYPE looks each key up (the whole keyspace, over every shard).
            "SCANALL TYPE string",
            "SCANALL MATCH nothing* COUNT 3",
            "SCANALL TYPE hash COUNT 1",
        ],
    );
}

#[test]
fn write_commands_count_changes_as_redis() {
    let Some((mut d, _dir)) = start() else { return };
    same_deltas(
        &mut d,
        &[
            // Strings and keys.
            "SET a 1",
            "SET a 2 EX 100",
            "SET a 3 GET KEEPTTL",
            "SET a 4 NX",
            "SET b 1 XX",
            "SETEX b 100 v",
            "PSETEX c 100000 v",
            "SETNX c v",
            "SETNX d v",
            "MSET {m}1 1 {m}2 2 {m}3 3",
            "MSET x1 1 x2 2 x3 3",
            "MSETNX {m}4 1 {m}5 2",
            "MSETNX {m}4 1 {m}6 2",
            "INCR n",
            "INCRBY n 5",
            "DECR n",
            "INCRBYFLOAT f 1.5",
            "APPEND a xx",
            "SETRANGE a 1 zz",
            "SETRANGE a 1 ",
            "GETSET a new",
            "GETDEL a",
            "GETDEL a",
            "GETEX b PX 100000",
            "GETEX b PERSIST",
            "GETEX b",
            "DEL x1 x2 nosuch",
            "UNLINK x3 {m}1 {m}2",
            "EXPIRE {m}3 100",
            "EXPIRE {m}3 50 GT",
            "PEXPIRE {m}3 200000 GT",
            "EXPIREAT nosuch 100",
            "PERSIST {m}3",
            "PERSIST {m}3",
            "SET {r}1 v",
            "RENAME {r}1 {r}2",
            "RENAMENX {r}2 {r}2",
            "COPY {r}2 {r}3",
            "COPY {r}2 {r}3",
            "COPY {r}2 {r}3 REPLACE",
            "MOVE {r}3 2",
            "MOVE {r}2 2",
            "SWAPDB 0 2",
            "SWAPDB 0 2",
            "FLUSHDB",
            // Bitmaps and HyperLogLog.
            "SETBIT bm 7 1",
            "SETBIT bm 7 1",
            "SETBIT bm 100 0",
            "BITFIELD bm SET u8 0 1 SET u8 8 2 GET u8 0",
            "BITFIELD bm SET u8 0 1",
            "BITFIELD bm INCRBY u8 0 1 OVERFLOW FAIL INCRBY u4 0 100",
            "SET {b}1 ab",
            "SET {b}2 cd",
            "BITOP AND {b}3 {b}1 {b}2",
            "BITOP NOT {b}3 {b}none",
            "PFADD {h}1 a b c d",
            "PFADD {h}1 a",
            "PFADD {h}2 c d e",
            "PFCOUNT {h}1",
            "PFCOUNT {h}1",
            "PFMERGE {h}3 {h}1 {h}2",
            "PFCOUNT {h}1 {h}2",
            // Lists.
            "RPUSH l a b c d e",
            "LPUSH l x y",
            "LPUSHX l z",
            "LPUSHX nosuch z",
            "RPUSHX l q r",
            "LINSERT l BEFORE b bb",
            "LINSERT l BEFORE nothere bb",
            "LSET l 0 first",
            "LREM l 0 bb",
            "LREM l 0 nothere",
            "LTRIM l 0 5",
            "LTRIM l 0 -1",
            "LPOP l",
            "LPOP l 2",
            "RPOP l 10",
            "RPOP l",
            "RPUSH {l}a 1 2 3",
            "LMOVE {l}a {l}b LEFT RIGHT",
            "RPOPLPUSH {l}a {l}b",
            "RPOPLPUSH {l}b {l}b",
            "LMPOP 2 {l}none {l}b LEFT COUNT 5",
            "RPUSH {l}c 1 2 3",
            "BLPOP {l}c 0",
            "BRPOP {l}none {l}c 0",
            "BLMOVE {l}c {l}d LEFT RIGHT 0",
            "RPUSH {l}c 1 2",
            "BLMPOP 0 1 {l}c LEFT COUNT 5",
            // Hashes.
            "HSET h f1 v1 f2 v2 f3 3",
            "HSET h f1 v1",
            "HMSET h f4 v4 f5 v5",
            "HSETNX h f1 x",
            "HSETNX h f9 x",
            "HINCRBY h f3 2",
            "HINCRBYFLOAT h f3 1.5",
            "HDEL h f1 f2 nofield",
            "HDEL h nofield",
            "HDEL h f3 f4 f5 f9",
            // Sets.
            "SADD s a b c d",
            "SADD s a e",
            "SREM s a nope",
            "SREM s nope",
            "~SPOP s",
            "~SPOP s 2",
            "~SPOP s 10",
            "SADD {s}a 1 2",
            "SADD {s}b 2 3",
            "SMOVE {s}a {s}b 1",
            "SMOVE {s}a {s}b 2",
            "SMOVE {s}a {s}b nope",
            "SINTERSTORE {s}c {s}a {s}b",
            "SUNIONSTORE {s}c {s}a {s}b",
            "SDIFFSTORE {s}c {s}b {s}b",
            // Sorted sets and geo.
            "ZADD z 1 a 2 b 3 c",
            "ZADD z 1 a 5 d",
            "ZADD z XX CH 9 a 9 nope",
            "ZADD z INCR 1 a",
            "ZADD z GT 0 a",
            "ZINCRBY z 1 b",
            "ZREM z a nope",
            "ZREM z nope",
            "ZPOPMIN z",
            "ZPOPMAX z 2",
            "ZPOPMIN nosuch",
            "ZADD {z}a 1 a 2 b 3 c 4 d",
            "ZADD {z}b 1 b 3 c",
            "ZMPOP 2 {z}none {z}a MIN COUNT 2",
            "ZUNIONSTORE {z}c 2 {z}a {z}b",
            "ZINTERSTORE {z}c 2 {z}a {z}none",
            "ZDIFFSTORE {z}c 2 {z}b {z}a",
            "ZRANGESTORE {z}d {z}b 0 -1",
            "ZREMRANGEBYRANK {z}b 0 0",
            "ZREMRANGEBYSCORE {z}b 0 100",
            "ZADD {z}e 0 a 0 b 0 c",
            "ZREMRANGEBYLEX {z}e - +",
            "ZADD bz 1 a 2 b",
            "BZPOPMIN bz 0",
            "BZMPOP 0 1 bz MAX COUNT 3",
            "GEOADD {g}1 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
            "GEOADD {g}1 XX CH 13.5 38.1 Palermo",
            "GEOSEARCHSTORE {g}2 {g}1 FROMLONLAT 15 37 BYRADIUS 200 km",
            "GEOSEARCHSTORE {g}2 {g}1 FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
            "GEORADIUS {g}1 15 37 200 km STORE {g}3",
            "GEOSEARCHSTORE {g}2 {g}1 FROMLONLAT 0 0 BYRADIUS 1 km",
            // Streams.
            "XADD st 1-1 a 1",
            "XADD st 2-1 a 2",
            "XADD st 3-1 a 3",
            "XADD st 4-1 a 4",
            "XGROUP CREATE st g 0",
            "XGROUP CREATE st g 0",
            "XGROUP CREATE st2 g 0 MKSTREAM",
            "XGROUP CREATECONSUMER st g c0",
            "XGROUP CREATECONSUMER st g c0",
            "XREADGROUP GROUP g c1 COUNT 1 STREAMS st >",
            "XREADGROUP GROUP g c2 COUNT 2 STREAMS st >",
            "XREADGROUP GROUP g c1 STREAMS st 0",
            "XREADGROUP GROUP g c9 STREAMS st 0",
            "XACK st g 1-1 2-1 9-9",
            "~XCLAIM st g c3 0 3-1",
            "~XCLAIM st g c3 0 3-1 9-9 JUSTID",
            "XCLAIM st g c3 0 9-9 LASTID 50-0",
            "XDEL st 3-1",
            "~XAUTOCLAIM st g c4 0 0",
            "~XAUTOCLAIM st g c4 0 0 JUSTID",
            "XGROUP DELCONSUMER st g c1",
            "XGROUP DELCONSUMER st g nobody",
            "XGROUP SETID st g 0",
            "XGROUP DESTROY st g",
            "XGROUP DESTROY st g",
            "XDEL st 1-1 9-9",
            "XTRIM st MAXLEN 0",
            "XSETID st 10-1",
            "XADD nost NOMKSTREAM 1-1 a b",
            // Transactions and scripts count what their commands changed.
            "MULTI",
            "SET {t}1 1",
            "RPUSH {t}2 a b c",
            "EXEC",
            "EVAL\treturn redis.call('rpush', KEYS[1], 'a', 'b')\t1\t{t}3",
            "EVAL\tredis.call('del', KEYS[1]); return redis.call('sadd', KEYS[1], 1, 2, 3)\t1\t{t}4",
            "FUNCTION\tLOAD\t#!lua name=lib\nredis.register_function('f', function(k) return redis.call('incr', k[1]) end)",
            "FCALL f 1 {t}5",
            "FUNCTION DELETE lib",
            "FUNCTION FLUSH",
            // A flush counts the keys it removed.
            "FLUSHALL",
        ],
    );
}

#[test]
fn failing_commands_count_in_commandstats_and_errorstats_as_redis() {
    let Some((mut d, _dir)) = start() else { return };
    same_deltas(
        &mut d,
        &[
            "SET k v",
            "LPUSH k x",
            "NOSUCHCOMMAND a b",
            "GET",
            "CONFIG",
            "CONFIG GET",
            "CONFIG NOSUCHSUB",
            "INCR k",
            "SET n 1",
            "EXPIRE n abc",
            "SET n v EX 0",
            "HELLO 4",
            "AUTH nopass",
            "MULTI",
            "SET {m}a 1",
            "NOSUCH",
            "EXEC",
            "MULTI",
            "INCR k",
            "SET {m}a 1",
            "EXEC",
            "EVAL\treturn redis.call('incr', KEYS[1])\t1\tk",
            "EVAL\treturn redis.pcall('incr', KEYS[1])\t1\tk",
            "EVAL\tlocal r = redis.pcall('incr', KEYS[1]); return 5\t1\tk",
            "EVAL\treturn redis.error_reply('MYERR bad thing')\t0",
            "EVAL\treturn {err = 'OTHER bad'}\t0",
            "EVAL\treturn {err = 'NOSPACEINTHEFIRSTTHIRTYTWOBYTESOFTHISERROR x'}\t0",
            "EVAL\tsyntax error here\t0",
            "EVAL\treturn redis.call('nosuchcmd')\t0",
            "EVAL\treturn redis.call('get')\t0",
            "EVAL\tlocal r = redis.pcall('get'); return 1\t0",
            "EVAL\terror('raw lua error')\t0",
            "EVAL\treturn redis.call('lpush', KEYS[1], 'x')\t1\tk",
            "EVALSHA 0000000000000000000000000000000000000000 0",
            "SCRIPT FLUSH",
            "XADD s 1-1 a b",
            "XREADGROUP GROUP nog c STREAMS s >",
            "ZADD z NX XX 1 a",
            "OBJECT NOSUCH k",
        ],
    );
    let (a, b) = (info(&mut d.a, &["commandstats", "errorstats"]), info(&mut d.b, &["commandstats", "errorstats"]));
    // Calls, rejected and failed calls per command (the time differs).
    let strip = |i: &Info| -> BTreeMap<String, String> {
        i["Commandstats"]
            .iter()
            .map(|(k, v)| (k.clone(), v.split(',').filter(|p| !p.starts_with("usec")).collect::<Vec<_>>().join(",")))
            .collect()
    };
    assert_eq!(strip(&a), strip(&b), "commandstats differ");
    assert_eq!(a["Errorstats"], b["Errorstats"], "errorstats differ");
    assert!(a["Commandstats"].contains_key("cmdstat_config|get"), "subcommands are listed as container|sub");
}

#[test]
fn expired_and_evicted_keys_move_as_in_redis() {
    let Some((mut d, _dir)) = start() else { return };
    // Which of a lazy lookup and the active cycle reaps a key first is a
    // matter of timing: the totals are compared below.
    same_deltas_but(
        &mut d,
        &[
            "SET e1 v PX 30",
            "SET e2 v PX 30",
            "SET e3 v PX 30",
            "HSET e4 f v",
            "PEXPIRE e4 30",
            "RPUSH e5 a",
            "PEXPIRE e5 30",
            "SADD e6 a",
            "PEXPIRE e6 30",
            "ZADD e7 1 a",
            "PEXPIRE e7 30",
            "XADD e8 1-1 a b",
            "PEXPIRE e8 30",
            "SLEEP 60",
            // Reaped on access, whichever command touches them (every family counts it).
            "GET e1",
            "EXISTS e2",
            "SET e3 fresh",
            "HGET e4 f",
            "LLEN e5",
            "SISMEMBER e6 a",
            "ZSCORE e7 a",
            "XLEN e8",
            "SET p v",
            "PEXPIREAT p 1",
            "EXISTS p",
        ],
        &["expired_keys"],
    );
    // The active cycle reaps keys nobody touches: both count them (give them time).
    for c in [&mut d.a, &mut d.b] {
        for i in 0..20 {
            let _ = run_str(c, &["SET", &format!("active{i}"), "v", "PX", "20"]);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (a, b) = (info(&mut d.a, &["stats"]), info(&mut d.b, &["stats"]));
        let (ea, eb) = (num(&a, "Stats", "expired_keys"), num(&b, "Stats", "expired_keys"));
        if ea == eb && ea >= 28 {
            break;
        }
        assert!(Instant::now() < deadline, "expired_keys: moonshard {ea}, redis-server {eb}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Eviction: every key goes when the limit is 1 byte, and the write is refused.
    same_deltas(
        &mut d,
        &[
            "FLUSHALL",
            "MSET {v}1 a {v}2 b {v}3 c {v}4 d {v}5 e",
            "CONFIG SET maxmemory-policy allkeys-random",
            "CONFIG SET maxmemory 1",
            "SET {v}6 f",
            "CONFIG SET maxmemory 0",
            "DBSIZE",
        ],
    );
    for c in [&mut d.a, &mut d.b] {
        let i = info(c, &["stats"]);
        assert_eq!(num(&i, "Stats", "evicted_keys"), 5);
        assert!(num(&i, "Stats", "total_eviction_exceeded_time") >= 0);
    }
    // Memory is no longer over a limit: the overrun is over. (redis-server
    // keeps counting it until a command meets a maxmemory again.)
    assert_eq!(num(&info(&mut d.a, &["stats"]), "Stats", "current_eviction_exceeded_time"), 0);
}

#[test]
fn saves_reset_the_changes_since_the_last_save() {
    let Some((mut d, _dir)) = start() else { return };
    same_deltas(&mut d, &["MSET a 1 b 2", "SAVE", "SET c 3"]);
    // BGSAVE runs in the background on both: wait until both are done before comparing.
    let _ = d.both(&["BGSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    for c in [&mut d.a, &mut d.b] {
        while num(&info(c, &["persistence"]), "Persistence", "rdb_bgsave_in_progress") != 0 {
            assert!(Instant::now() < deadline, "a BGSAVE did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    same_deltas(&mut d, &["SET d 4"]);
    for c in [&mut d.a, &mut d.b] {
        let p = info(c, &["persistence"]);
        assert_eq!(num(&p, "Persistence", "rdb_changes_since_last_save"), 1, "the SET after BGSAVE");
        assert_eq!(num(&p, "Persistence", "rdb_saves"), 2);
        assert_eq!(p["Persistence"]["rdb_last_bgsave_status"], "ok");
        assert!(num(&p, "Persistence", "rdb_last_bgsave_time_sec") >= 0);
    }
    // With save points set, FLUSHALL saves: nothing is left to save after it.
    same_deltas(&mut d, &["CONFIG\tSET\tsave\t3600 1", "MSET x 1 y 2", "FLUSHALL", "CONFIG\tSET\tsave\t"]);
    for c in [&mut d.a, &mut d.b] {
        assert_eq!(num(&info(c, &["persistence"]), "Persistence", "rdb_changes_since_last_save"), 0);
    }
}

#[test]
fn blocked_clients_and_the_timeout_table_as_redis() {
    let Some((d, _dir)) = start() else { return };
    let servers = [&d.ours, &d.theirs];
    for (timeout, in_table) in [("0", 0), ("5", 1)] {
        let mut waiters: Vec<redis::Connection> = servers.iter().map(|p| p.client()).collect();
        let handles: Vec<_> = waiters
            .drain(..)
            .map(|mut c| {
                let t = timeout.to_string();
                std::thread::spawn(move || run_str(&mut c, &["BLPOP", "q", &t]))
            })
            .collect();
        for p in servers {
            let mut c = p.client();
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let i = info(&mut c, &["clients"]);
                if num(&i, "Clients", "blocked_clients") == 1 {
                    assert_eq!(num(&i, "Clients", "clients_in_timeout_table"), in_table, "timeout {timeout}");
                    break;
                }
                assert!(Instant::now() < deadline, "the BLPOP never showed as blocked");
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = run_str(&mut c, &["RPUSH", "q", "x"]);
        }
        for h in handles {
            assert!(h.join().unwrap().is_ok());
        }
        for p in servers {
            let i = info(&mut p.client(), &["clients"]);
            assert_eq!(num(&i, "Clients", "blocked_clients"), 0);
            assert_eq!(num(&i, "Clients", "clients_in_timeout_table"), 0);
        }
    }
}

/// The same workload on both servers, touching every section.
fn workload(d: &mut Diff) {
    for line in [
        "SET k v",
        "GET k",
        "GET nosuch",
        "LPUSH k x",
        "CONFIG GET maxmemory",
        "HSET h f v",
        "EXPIRE h 100",
        "EVAL\treturn redis.call('get', KEYS[1])\t1\tk",
        "SUBSCRIBE",
        "CLIENT ID",
    ] {
        let (_, args) = split(line);
        let _ = d.both(&args);
    }
}

#[test]
fn every_section_has_redis_fields() {
    let Some((mut d, _dir)) = start() else { return };
    workload(&mut d);
    let ours = info(&mut d.a, &["everything"]);
    let theirs = info(&mut d.b, &["everything"]);
    let mut problems = Vec::new();
    for (section, fields) in &theirs {
        let Some(mine) = ours.get(section) else {
            problems.push(format!("section {section} missing"));
            continue;
        };
        let (a, b): (BTreeSet<&String>, BTreeSet<&String>) = (mine.keys().collect(), fields.keys().collect());
        for f in b.difference(&a) {
            if !ONLY_REDIS.iter().any(|(s, n, _)| s == section && n == f) {
                problems.push(format!("{section}/{f} missing"));
            }
        }
        for f in a.difference(&b) {
            if !ONLY_MOONSHARD.iter().any(|(s, n, _)| s == section && n == f) {
                problems.push(format!("{section}/{f} is not Redis's"));
            }
        }
    }
    for section in ours.keys() {
        if !theirs.contains_key(section) && section != "Shards" {
            problems.push(format!("section {section} is not Redis's"));
        }
    }
    // Declared differences must stay real: a field that appears gets off the list.
    for (s, f, _) in ONLY_REDIS {
        if ours.get(*s).is_some_and(|m| m.contains_key(*f)) {
            problems.push(format!("{s}/{f} is declared missing but is there"));
        }
    }
    assert!(problems.is_empty(), "INFO differs from redis-server: {problems:#?}");
    // Section order and the default set are Redis's too.
    let titles = |c: &mut redis::Connection, args: &[&str]| -> Vec<String> {
        let mut v = vec!["INFO"];
        v.extend_from_slice(args);
        match run_str(c, &v) {
            Ok(Value::BulkString(b)) => String::from_utf8_lossy(&b)
                .split("\r\n")
                .filter_map(|l| l.strip_prefix("# ").map(str::to_string))
                .collect(),
            other => panic!("INFO gave {other:?}"),
        }
    };
    for args in [&[][..], &["default"], &["all"], &["server", "keyspace"], &["commandstats", "clients"]] {
        assert_eq!(titles(&mut d.a, args), titles(&mut d.b, args), "sections of INFO {args:?}");
    }
}

#[test]
fn fields_carry_truthful_values() {
    let Some((mut d, _dir)) = start() else { return };
    workload(&mut d);
    let mut sub = raw_resp::Raw::connect(d.ours.port);
    sub.call_n(&["SUBSCRIBE", "ch1", "ch2"], 2);
    sub.call(&["PSUBSCRIBE", "p*"]);
    let mut ssub = raw_resp::Raw::connect(d.ours.port);
    ssub.call(&["SSUBSCRIBE", "{s}x"]);
    let c = &mut d.a;
    for i in 0..50 {
        let _ = run_str(c, &["SET", &format!("ttl{i}"), "v", "EX", "100"]);
    }
    let _ = run_str(c, &["SCRIPT", "LOAD", "return 1"]);
    let _ = run_str(c, &["FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return 1 end)"]);
    let _ = run_str(c, &["FCALL", "f", "0"]);
    let i = info(c, &["everything"]);
    let f = |s: &str, k: &str| i[s][k].clone();
    assert_eq!(f("Stats", "pubsub_channels"), "2");
    assert_eq!(f("Stats", "pubsub_patterns"), "1");
    assert_eq!(f("Stats", "pubsubshard_channels"), "1");
    assert_eq!(f("Memory", "number_of_cached_scripts"), "2", "EVAL's script and SCRIPT LOAD's");
    assert_eq!(f("Memory", "number_of_functions"), "1");
    assert_eq!(f("Memory", "number_of_libraries"), "1");
    assert!(num(&i, "Memory", "used_memory_vm_eval") > 10_000, "the Lua VMs' memory");
    assert!(num(&i, "Memory", "used_memory_scripts_eval") > 0);
    assert!(num(&i, "Memory", "used_memory_functions") > 0);
    assert_eq!(
        num(&i, "Memory", "used_memory_scripts"),
        num(&i, "Memory", "used_memory_scripts_eval") + num(&i, "Memory", "used_memory_functions")
    );
    // The client asking holds its read buffer; idle (subscribed) ones give theirs back to the pool.
    assert!(num(&i, "Memory", "mem_clients_normal") > 16 * 1024, "the asking client's buffers");
    assert!(num(&i, "Memory", "used_memory_overhead") > num(&i, "Memory", "used_memory_startup"));
    assert!(num(&i, "Memory", "allocator_active") >= num(&i, "Memory", "allocator_allocated"));
    assert!(num(&i, "Clients", "client_recent_max_input_buffer") >= 16 * 1024);
    assert!(num(&i, "Stats", "total_reads_processed") > 50);
    assert!(num(&i, "Stats", "total_writes_processed") > 50);
    // avg_ttl: an honest estimate of the TTLs set (100 s, a little gone by).
    let db0 = f("Keyspace", "db0");
    let avg: i64 = db0.rsplit("avg_ttl=").next().and_then(|v| v.parse().ok()).unwrap_or(-1);
    assert!((90_000..=100_000).contains(&avg), "avg_ttl {avg} in {db0}");
    // The rates follow the traffic of the last ~1.6 s.
    for n in 0..300 {
        let _ = run_str(c, &["SET", "rate", &n.to_string()]);
    }
    std::thread::sleep(Duration::from_millis(250));
    let i = info(c, &["stats"]);
    assert!(num(&i, "Stats", "instantaneous_ops_per_sec") > 0);
    let kbps: f64 = i["Stats"]["instantaneous_input_kbps"].parse().unwrap();
    assert!(kbps > 0.0);
    std::thread::sleep(Duration::from_millis(2000));
    let i = info(c, &["stats"]);
    assert!(num(&i, "Stats", "instantaneous_ops_per_sec") <= 2, "idle again: {:?}", i["Stats"]);
    // CPU time comes from getrusage with microseconds.
    let cpu = info(c, &["cpu"]);
    let user: f64 = cpu["CPU"]["used_cpu_user"].parse().unwrap();
    assert!(user > 0.0);
}

#[test]
fn latencystats_follow_the_tracking_settings() {
    let Some((mut d, _dir)) = start() else { return };
    workload(&mut d);
    let names = |i: &Info| i["Latencystats"].keys().cloned().collect::<BTreeSet<_>>();
    let (a, b) = (info(&mut d.a, &["latencystats"]), info(&mut d.b, &["latencystats"]));
    assert_eq!(names(&a), names(&b));
    for v in a["Latencystats"].values() {
        let parts: Vec<&str> = v.split(',').collect();
        assert_eq!(parts.len(), 3, "{v}");
        for (p, want) in parts.iter().zip(["p50=", "p99=", "p99.9="]) {
            let num = p.strip_prefix(want).unwrap_or_else(|| panic!("{v}"));
            assert!(num.contains('.') && num.split('.').nth(1).map(str::len) == Some(3), "{v}");
        }
    }
    for c in [&mut d.a, &mut d.b] {
        run_str(c, &["CONFIG", "SET", "latency-tracking-info-percentiles", "0.5 99.99 100"]).unwrap();
        let _ = run_str(c, &["GET", "k"]);
    }
    let keys = |i: &Info| -> Vec<String> {
        i["Latencystats"]["latency_percentiles_usec_get"]
            .split(',')
            .map(|p| p.split('=').next().unwrap().to_string())
            .collect()
    };
    let (a, b) = (info(&mut d.a, &["latencystats"]), info(&mut d.b, &["latencystats"]));
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(keys(&a), ["p0.5", "p99.99", "p100"]);
    for c in [&mut d.a, &mut d.b] {
        run_str(c, &["CONFIG", "SET", "latency-tracking", "no"]).unwrap();
        assert!(info(c, &["latencystats"])["Latencystats"].is_empty());
        run_str(c, &["CONFIG", "SET", "latency-tracking", "yes"]).unwrap();
    }
}

#[test]
fn config_resetstat_resets_what_redis_resets() {
    let Some((mut d, _dir)) = start() else { return };
    workload(&mut d);
    let _ = d.both(&["SET", "x", "1", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    let _ = d.both(&["GET", "x"]);
    let _ = d.both(&["NOSUCHCOMMAND"]);
    let _ = d.both(&["SAVE"]);
    let _ = d.both(&["SET", "y", "1"]);
    let _ = d.both(&["CONFIG", "RESETSTAT"]);
    let (a, b) = (info(&mut d.a, &["everything"]), info(&mut d.b, &["everything"]));
    // Every counter Redis shows as zero after the reset is zero here too,
    // and the other way round (figures that are not counters excluded).
    // (io_threaded_*: every read is threaded here, none in redis-server by default.)
    let not_counters = [
        "uptime_in_days",
        "io_threads_active",
        "maxclients",
        "connected_clients",
        "io_threaded_reads_processed",
        "io_threaded_writes_processed",
        // Buffer sizes, not counters: Redis counts only the output that
        // overflows its 16 KB static buffer (moonshard all of it), and frees
        // an idle client's input buffer (moonshard keeps 16 KB).
        "client_recent_max_input_buffer",
        "client_recent_max_output_buffer",
    ];
    for section in ["Stats", "Persistence", "Clients"] {
        for (field, theirs) in &b[section] {
            let Some(mine) = a[section].get(field) else { continue };
            if not_counters.contains(&field.as_str()) || field.starts_with("instantaneous") {
                continue;
            }
            let zero = |v: &str| v.parse::<f64>().is_ok_and(|n| n == 0.0);
            assert_eq!(zero(mine), zero(theirs), "{section}/{field}: moonshard {mine}, redis-server {theirs}");
        }
    }
    assert_eq!(a["Errorstats"], b["Errorstats"]);
    assert_eq!(a["Commandstats"].keys().collect::<Vec<_>>(), b["Commandstats"].keys().collect::<Vec<_>>());
    assert_eq!(a["Latencystats"].keys().collect::<Vec<_>>(), b["Latencystats"].keys().collect::<Vec<_>>());
    // The changes since the last save are not statistics: RESETSTAT keeps them.
    assert_eq!(a["Persistence"]["rdb_changes_since_last_save"], "1");
}

#[test]
fn info_shards_shows_each_shard() {
    let Some((mut d, _dir)) = start() else { return };
    let c = &mut d.a;
    for i in 0..40 {
        let _ = run_str(c, &["SET", &format!("key{i}"), "v"]);
    }
    let _ = run_str(c, &["EXPIRE", "key1", "100"]);
    let i = info(c, &["shards"]);
    assert_eq!(i.keys().collect::<Vec<_>>(), ["Shards"]);
    let lines = &i["Shards"];
    assert_eq!(lines.len(), 4);
    let field = |line: &str, name: &str| -> i64 {
        line.split(',')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    let keys: i64 = lines.values().map(|l| field(l, "keys")).sum();
    let expires: i64 = lines.values().map(|l| field(l, "expires")).sum();
    let commands: i64 = lines.values().map(|l| field(l, "commands")).sum();
    assert_eq!((keys, expires), (40, 1));
    assert!(commands >= 41, "{lines:?}");
    assert!(lines.values().all(|l| field(l, "busy_usec") >= 0 && field(l, "lock_waits") >= 0));
    // Not in the default set nor in ALL; in EVERYTHING.
    assert!(!info(c, &[]).contains_key("Shards"));
    assert!(!info(c, &["all"]).contains_key("Shards"));
    assert!(info(c, &["everything"]).contains_key("Shards"));
    // A command that finds its shard held by a running script waits: a lock wait.
    let waits = |c: &mut redis::Connection| -> i64 {
        info(c, &["shards"])["Shards"].values().map(|l| field(l, "lock_waits")).sum()
    };
    let before = waits(c);
    let mut scripter = d.ours.client();
    let script = std::thread::spawn(move || {
        run_str(
            &mut scripter,
            &["EVAL", "local t = redis.call('time'); local s = t[1] * 1e6 + t[2]; local n = 0; while true do n = n + 1; if n % 1000 == 0 then local u = redis.call('time'); if u[1] * 1e6 + u[2] - s > 300000 then break end end end return 1", "1", "{w}k"],
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    let _ = run_str(c, &["GET", "{w}k"]);
    assert!(script.join().unwrap().is_ok());
    assert!(waits(c) > before, "the GET behind the script waited");
    // CONFIG RESETSTAT zeroes the per-shard counters (the keys stay).
    run_str(c, &["CONFIG", "RESETSTAT"]).unwrap();
    let i = info(c, &["shards"]);
    assert_eq!(i["Shards"].values().map(|l| field(l, "commands")).sum::<i64>(), 0);
    assert_eq!(i["Shards"].values().map(|l| field(l, "keys")).sum::<i64>(), 40);
}
