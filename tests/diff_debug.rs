//! DEBUG against a real redis-server 7.0 (started with
//! `--enable-debug-command yes`): DIGEST and DIGEST-VALUE over seeded random
//! datasets of every type and encoding, with and without TTLs, in several
//! databases and over four shards; PROTOCOL byte for byte in RESP2 and RESP3;
//! the `enable-debug-command` refusal (`no`, and `local` from 127.0.0.1 and
//! from 127.0.0.2); SET-ACTIVE-EXPIRE; SLEEP in SLOWLOG and LATENCY; HELP and
//! the error texts of the other subcommands.

mod common;
mod raw_resp;

use common::{run_str, Diff};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use std::time::{Duration, Instant};

const ZERO: &str = "0000000000000000000000000000000000000000";

fn start() -> Option<Diff> {
    Diff::start_with(&["--shards", "4", "--enable-debug-command", "yes"], &["--enable-debug-command", "yes"])
}

fn status(v: &Result<Value, String>) -> String {
    match v {
        Ok(Value::SimpleString(s)) => s.clone(),
        Ok(Value::Okay) => "OK".into(),
        other => panic!("expected a status reply, got {other:?}"),
    }
}

/// DEBUG DIGEST on both servers: equal, and returned.
#[track_caller]
fn digest(d: &mut Diff) -> String {
    status(&d.check(&["DEBUG", "DIGEST"]))
}

/// DEBUG DIGEST-VALUE of every key of the selected database on both servers.
#[track_caller]
fn digest_every_value(d: &mut Diff) {
    let mut keys = match run_str(&mut d.a, &["KEYS", "*"]) {
        Ok(Value::Array(keys)) => keys,
        other => panic!("KEYS: {other:?}"),
    };
    keys.sort_by_key(|k| format!("{k:?}"));
    let names: Vec<String> = keys
        .iter()
        .map(|k| match k {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("key {other:?}"),
        })
        .collect();
    d.check_unordered(&["KEYS", "*"]);
    for chunk in names.chunks(40) {
        let mut args = vec!["DEBUG", "DIGEST-VALUE"];
        args.extend(chunk.iter().map(|s| s.as_str()));
        let _ = d.check(&args);
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// A list or set element: integers (packed as integers by Redis), words,
/// and longer strings.
fn element(rng: &mut StdRng) -> String {
    match rng.gen_range(0..6) {
        0 => rng.gen_range(-200..200).to_string(),
        1 => rng.gen::<i64>().to_string(),
        2 => format!("{:03}", rng.gen_range(0..50)), // leading zeros: not an integer
        3 => "x".repeat(rng.gen_range(60..120)),
        _ => format!("e{}", rng.gen_range(0..10_000)),
    }
}

/// A score in every form Redis prints differently with `%.17g`.
fn score(rng: &mut StdRng) -> String {
    match rng.gen_range(0..10) {
        0 => pick(rng, &["0", "-0", "inf", "-inf", "1e300", "-1e-300", "0.1", "1.1", "3.141592653589793"]).to_string(),
        1 | 2 => rng.gen_range(-1000..1000).to_string(),
        3 => format!("{}", rng.gen_range(-1e17..1e17f64).trunc()),
        _ => format!("{}", rng.gen_range(-1e6..1e6f64)),
    }
}

/// Commands creating `key` with a value of a random type and encoding.
fn create(rng: &mut StdRng, key: &str, stream_ms: &mut u64) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let k = key.to_string();
    let mut cmds: Vec<Vec<String>> = Vec::new();
    match rng.gen_range(0..11) {
        0 => {
            let v = match rng.gen_range(0..5) {
                0 => rng.gen_range(-10_000..10_000).to_string(),
                1 => i64::MAX.to_string(),
                2 => "x".repeat(rng.gen_range(45..200)),
                _ => element(rng),
            };
            cmds.push(vec!["SET".into(), k.clone(), v]);
            match rng.gen_range(0..4) {
                0 => cmds.push(s(&["APPEND", key, "tail"])),
                1 => cmds.push(s(&["SETRANGE", key, "3", "zz"])),
                _ => {}
            }
        }
        1 | 2 => {
            let n = if rng.gen_bool(0.3) { rng.gen_range(600..1000) } else { rng.gen_range(1..12) };
            let mut c = s(&["RPUSH", key]);
            c.extend((0..n).map(|_| element(rng)));
            cmds.push(c);
            cmds.push(s(&["LPUSH", key, "head", "7"]));
            if rng.gen_bool(0.5) {
                cmds.push(s(&["LSET", key, "1", "changed"]));
                cmds.push(s(&["LINSERT", key, "BEFORE", "head", "before"]));
                cmds.push(s(&["LREM", key, "1", "7"]));
            }
        }
        3 | 4 => {
            let n = if rng.gen_bool(0.3) { rng.gen_range(520..700) } else { rng.gen_range(1..20) };
            let mut c = s(&["SADD", key]);
            if rng.gen_bool(0.6) {
                c.extend((0..n).map(|_| rng.gen_range(-100_000..100_000i64).to_string()));
            } else {
                c.extend((0..n).map(|_| element(rng)));
            }
            cmds.push(c);
        }
        5 | 6 => {
            let n = if rng.gen_bool(0.3) { rng.gen_range(130..300) } else { rng.gen_range(1..20) };
            let mut c = s(&["ZADD", key]);
            for i in 0..n {
                c.push(score(rng));
                c.push(if rng.gen_bool(0.3) { format!("{i}") } else { format!("m{i}") });
            }
            cmds.push(c);
            cmds.push(s(&["ZINCRBY", key, "2.5", "m0"]));
            if rng.gen_bool(0.2) {
                // A long member turns a small sorted set into a skiplist.
                cmds.push(vec!["ZADD".into(), k.clone(), "1".into(), "y".repeat(80)]);
            }
        }
        7 | 8 => {
            let n = if rng.gen_bool(0.3) { rng.gen_range(520..700) } else { rng.gen_range(1..20) };
            let mut c = s(&["HSET", key]);
            for i in 0..n {
                c.push(format!("f{i}"));
                c.push(element(rng));
            }
            cmds.push(c);
            cmds.push(s(&["HINCRBY", key, "counter", "5"]));
            cmds.push(s(&["HINCRBYFLOAT", key, "float", "1.25"]));
        }
        _ => {
            let n = if rng.gen_bool(0.3) { rng.gen_range(120..220) } else { rng.gen_range(1..10) };
            for i in 0..n {
                *stream_ms += rng.gen_range(0..3);
                let id = format!("{}-{}", stream_ms, i);
                let mut c = vec!["XADD".into(), k.clone(), id];
                for f in 0..rng.gen_range(1..4) {
                    c.push(if rng.gen_bool(0.7) { format!("f{f}") } else { element(rng) });
                    c.push(element(rng));
                }
                cmds.push(c);
            }
            cmds.push(s(&["XGROUP", "CREATE", key, "g", "0"]));
            cmds.push(s(&["XDEL", key, &format!("{}-0", stream_ms)]));
        }
    }
    match rng.gen_range(0..4) {
        0 => cmds.push(s(&["EXPIRE", key, "100000"])),
        1 => cmds.push(s(&["PEXPIREAT", key, "4000000000000"])),
        _ => {}
    }
    cmds
}

/// Fills databases 0, 1, 5 and 15 with random keys of every type, checking
/// each reply, the digests after each database, then edits and moves keys.
#[test]
fn digests_match_redis_on_random_datasets() {
    let Some(mut d) = start() else { return };
    assert_eq!(digest(&mut d), ZERO, "an empty dataset digests to zeros");
    let mut rng = StdRng::seed_from_u64(14);
    let mut stream_ms = 1_000;
    let dbs = ["0", "1", "5", "15"];
    let mut seen = std::collections::BTreeSet::new();
    for (n, db) in dbs.iter().enumerate() {
        let _ = d.check(&["SELECT", db]);
        for i in 0..60 {
            let key = format!("k{db}:{i}");
            for c in create(&mut rng, &key, &mut stream_ms) {
                let args: Vec<&str> = c.iter().map(|s| s.as_str()).collect();
                let _ = d.check(&args);
            }
        }
        let all = digest(&mut d);
        assert_ne!(all, ZERO);
        digest_every_value(&mut d);
        for i in 0..60 {
            let key = format!("k{db}:{i}");
            let t = d.check(&["TYPE", &key]);
            let e = d.check(&["OBJECT", "ENCODING", &key]);
            seen.insert(format!("{}:{}", common::show(t), common::show(e)));
        }
        // The same data in another database gives another digest.
        if n == 0 {
            let _ = d.check(&["SET", "probe", "1"]);
            let before = digest(&mut d);
            let _ = d.check(&["MOVE", "probe", "2"]);
            assert_ne!(digest(&mut d), before, "the database index is part of the digest");
            let _ = d.check(&["SELECT", "2"]);
            let _ = d.check(&["DEL", "probe"]);
            let _ = d.check(&["SELECT", db]);
        }
    }

    let wanted = [
        "string:int",
        "string:embstr",
        "string:raw",
        "list:quicklist",
        "set:intset",
        "set:hashtable",
        "zset:listpack",
        "zset:skiplist",
        "hash:listpack",
        "hash:hashtable",
        "stream:stream",
    ];
    for w in wanted {
        assert!(seen.contains(w), "no {w} value in the dataset: {seen:?}");
    }

    // Edits: TTLs added and dropped, elements removed, keys moved between
    // databases, databases swapped and flushed.
    for round in 0..2 {
        for db in dbs {
            let _ = d.check(&["SELECT", db]);
            for _ in 0..25 {
                let key = format!("k{db}:{}", rng.gen_range(0..60));
                let k = key.as_str();
                let cmd: Vec<String> = match rng.gen_range(0..10) {
                    0 => vec!["PERSIST".into(), key.clone()],
                    1 => vec!["EXPIRE".into(), key.clone(), "5000".into()],
                    2 => vec!["DEL".into(), key.clone()],
                    3 => vec!["MOVE".into(), key.clone(), pick(&mut rng, &dbs).to_string()],
                    4 => vec!["LPOP".into(), key.clone()],
                    5 => vec!["SREM".into(), key.clone(), "7".into(), "e1".into()],
                    6 => vec!["ZREM".into(), key.clone(), "m1".into()],
                    7 => vec!["HDEL".into(), key.clone(), "f0".into()],
                    8 => vec!["XTRIM".into(), key.clone(), "MAXLEN".into(), "5".into()],
                    _ => vec!["TYPE".into(), k.to_string()],
                };
                let args: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
                let _ = d.check(&args);
            }
            digest_every_value(&mut d);
        }
        digest(&mut d);
        let _ = d.check(&["SWAPDB", "0", if round == 0 { "1" } else { "5" }]);
        digest(&mut d);
    }
    let _ = d.check(&["SELECT", "15"]);
    let _ = d.check(&["FLUSHDB"]);
    assert_ne!(digest(&mut d), ZERO);
    let _ = d.check(&["FLUSHALL"]);
    assert_eq!(digest(&mut d), ZERO);
}

/// Single values whose digests hinge on one detail of the definition.
#[test]
fn digest_value_details() {
    let Some(mut d) = start() else { return };
    for c in [
        "SET s 123",
        "SET big 99999999999999999999",
        "RPUSH l a 1 -5 1000000",
        "SADD si 3 1 2",
        "SADD ss b a",
        "ZADD z -0 neg 0 pos 1.5 x inf y -inf w 0.1 t",
        "HSET h a 1 b 2.50",
        "XADD x 5-1 f v",
        "XADD x 5-2 f 1 g 2",
        "XADD e 1-1 f v",
        "XDEL e 1-1",
    ] {
        let args: Vec<&str> = c.split(' ').collect();
        let _ = d.check(&args);
    }
    let keys = ["s", "big", "l", "si", "ss", "z", "h", "x", "e", "missing"];
    let mut args = vec!["DEBUG", "DIGEST-VALUE"];
    args.extend(keys);
    let plain = d.check(&args);
    let _ = d.check(&["DEBUG", "DIGEST-VALUE"]);
    // A TTL changes the value's digest, whatever the TTL.
    let _ = d.check(&["EXPIRE", "s", "1000"]);
    let one = d.check(&["DEBUG", "DIGEST-VALUE", "s"]);
    let _ = d.check(&["EXPIRE", "s", "2000"]);
    assert_eq!(d.check(&["DEBUG", "DIGEST-VALUE", "s"]), one);
    assert_ne!(d.check(&args), plain);
    // Missing keys digest to zeros.
    assert_eq!(status(&Ok(first(d.check(&["DEBUG", "DIGEST-VALUE", "missing"])))), ZERO);
    digest(&mut d);
}

fn first(v: Result<Value, String>) -> Value {
    match v {
        Ok(Value::Array(mut items)) if !items.is_empty() => items.remove(0),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// DEBUG POPULATE makes the same keys and values (digest), skips existing
/// keys, and refuses bad counts and sizes as Redis does.
#[test]
fn populate_matches_redis() {
    let Some(mut d) = start() else { return };
    for c in [
        "DEBUG POPULATE 50",
        "SET key:3 mine",
        "DEBUG POPULATE 60",
        "DEBUG POPULATE 20 p 3",
        "DEBUG POPULATE 20 q 12",
        "DEBUG POPULATE 0",
        "DEBUG POPULATE -1",
        "DEBUG POPULATE abc",
        "DEBUG POPULATE 5 r -1",
        "DEBUG POPULATE 5 r x",
        "DEBUG POPULATE 1 a b c",
        "GET key:3",
        "GET q:1",
        "GET p:15",
        "DBSIZE",
    ] {
        let args: Vec<&str> = c.split(' ').collect();
        let _ = d.check(&args);
    }
    digest(&mut d);
}

/// PROTOCOL replies byte for byte, RESP2 and RESP3, attributes and pushes included.
#[test]
fn protocol_bytes_match() {
    let Some(theirs) = common::redis_server_with(&["--enable-debug-command", "yes"]) else { return };
    let ours = common::moonshard(&["--shards", "4", "--enable-debug-command", "yes"]);
    let mut b = raw_resp::Both { c: [raw_resp::Raw::connect(ours.port), raw_resp::Raw::connect(theirs.port)] };
    let types = [
        "string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "push", "verbatim", "true",
        "false", "nosuch", "STRING",
    ];
    for proto in ["2", "3"] {
        b.unchecked(&["HELLO", proto]);
        for t in types {
            let n = if proto == "3" && t == "push" { 2 } else { 1 };
            let got = b.check_n(&["DEBUG", "PROTOCOL", t], n);
            if t == "attrib" && proto == "3" {
                assert!(got.starts_with("|1\r\n"), "{got:?}");
            }
        }
        // Inside a transaction the attribute and the push precede their reply in EXEC's array.
        b.check(&["MULTI"]);
        b.check(&["DEBUG", "PROTOCOL", "attrib"]);
        b.check(&["DEBUG", "PROTOCOL", "map"]);
        b.check(&["EXEC"]);
    }
}

/// `enable-debug-command no` (the default) refuses DEBUG with Redis's text,
/// after the arity check and before authentication, and a refused DEBUG
/// inside MULTI aborts the transaction.
#[test]
fn refused_when_not_enabled() {
    let Some(mut d) = Diff::start_with(&["--shards", "4"], &[]) else { return };
    for c in ["DEBUG HELP", "DEBUG DIGEST", "DEBUG nosuch", "DEBUG", "CONFIG GET enable-debug-command"] {
        let args: Vec<&str> = c.split(' ').collect();
        let _ = d.check(&args);
    }
    let refused = d.check(&["DEBUG", "SLEEP", "0"]).unwrap_err();
    assert!(
        refused.starts_with("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\"")
    );
    let _ = d.check(&["CONFIG", "SET", "enable-debug-command", "yes"]);
    let _ = d.check(&["MULTI"]);
    let _ = d.check(&["DEBUG", "DIGEST"]);
    let _ = d.check(&["SET", "a", "1"]);
    let _ = d.check(&["EXEC"]);
    let _ = d.check(&["GET", "a"]);
    // Refused before authentication is checked.
    let _ = d.check(&["CONFIG", "SET", "requirepass", "pw"]);
    let mut a2 = d.ours.client();
    let mut b2 = d.theirs.client();
    assert_eq!(run_str(&mut a2, &["DEBUG", "HELP"]), run_str(&mut b2, &["DEBUG", "HELP"]));
    assert!(run_str(&mut a2, &["DEBUG", "HELP"]).unwrap_err().starts_with("ERR DEBUG command not allowed"));
}

/// Connects to `port` from `source` (a loopback address), sends `input`
/// and returns what comes back.
fn exchange_from(source: &str, port: u16, input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stream = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
        sock.connect(format!("127.0.0.1:{port}").parse().unwrap()).await.unwrap()
    });
    let mut s = stream.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.write_all(input).unwrap();
    common::read_quiet(&mut s, Duration::from_millis(300))
}

/// `local`: allowed from 127.0.0.1, refused from 127.0.0.2 (Redis compares
/// the address with 127.0.0.1 and ::1), byte for byte as Redis answers.
#[test]
fn local_allows_only_127_0_0_1() {
    let flags = ["--enable-debug-command", "local", "--protected-mode", "no"];
    let Some(mut d) = Diff::start_with(&["--shards", "4", flags[0], flags[1], flags[2], flags[3]], &flags) else {
        return;
    };
    let _ = d.check(&["CONFIG", "GET", "enable-debug-command"]);
    let _ = d.check(&["CONFIG", "SET", "enable-debug-command", "yes"]);
    let input = b"DEBUG SLEEP 0\r\nDEBUG\r\nDEBUG foo\r\nMULTI\r\nDEBUG DIGEST\r\nEXEC\r\n";
    for source in ["127.0.0.1", "127.0.0.2"] {
        let ours = exchange_from(source, d.ours.port, input);
        let theirs = exchange_from(source, d.theirs.port, input);
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs), "from {source}");
        let refused = String::from_utf8_lossy(&ours).contains("DEBUG command not allowed");
        assert_eq!(refused, source != "127.0.0.1", "from {source}: {}", String::from_utf8_lossy(&ours));
    }
}

fn dbsize(c: &mut redis::Connection) -> i64 {
    match run_str(c, &["DBSIZE"]) {
        Ok(Value::Int(n)) => n,
        other => panic!("DBSIZE: {other:?}"),
    }
}

/// With the active expiry cycle off, keys past their TTL stay until
/// accessed; turned back on, the cycle removes them.
#[test]
fn set_active_expire_stops_the_cycle() {
    let Some(mut d) = start() else { return };
    let _ = d.check(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for i in 0..20 {
        let _ = d.check(&["SET", &format!("t{i}"), "v", "PX", "30"]);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(dbsize(&mut d.a), 20, "moonshard expired keys actively while the cycle was off");
    assert_eq!(dbsize(&mut d.b), 20);
    // Access still expires a key.
    let _ = d.check(&["GET", "t0"]);
    assert_eq!(dbsize(&mut d.a), 19);
    // `atoi`: any text that does not read as a non-zero number switches it off.
    let _ = d.check(&["DEBUG", "SET-ACTIVE-EXPIRE", "yes"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(dbsize(&mut d.a), 19);
    let _ = d.check(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while dbsize(&mut d.a) > 0 || dbsize(&mut d.b) > 0 {
        assert!(Instant::now() < deadline, "keys not expired once the cycle was back on");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = d.check(&["DEBUG", "SET-ACTIVE-EXPIRE"]);
}

/// DEBUG SLEEP is timed like any command (SLOWLOG, LATENCY) and stops
/// every shard while it sleeps, as it stops Redis.
#[test]
fn sleep_shows_in_slowlog_and_latency_and_stops_the_server() {
    let Some(mut d) = start() else { return };
    for c in ["CONFIG SET latency-monitor-threshold 100", "SLOWLOG RESET", "SET k v"] {
        let args: Vec<&str> = c.split(' ').collect();
        let _ = d.check(&args);
    }
    let _ = d.check(&["DEBUG", "SLEEP", "0.2"]);
    for c in [&mut d.a, &mut d.b] {
        let entry = first(run_str(c, &["SLOWLOG", "GET", "1"]));
        let Value::Array(fields) = entry else { panic!("{entry:?}") };
        assert!(matches!(fields[2], Value::Int(us) if us >= 200_000), "{fields:?}");
        let args = format!("{:?}", fields[3]);
        assert!(args.contains("DEBUG") && args.contains("SLEEP") && args.contains("0.2"), "{args}");
        let latest = format!("{:?}", run_str(c, &["LATENCY", "LATEST"]));
        assert!(latest.contains("command"), "{latest}");
    }
    // While one client sleeps, another client's command waits for it.
    let mut other = d.ours.client();
    let _ = run_str(&mut other, &["PING"]);
    let port = d.ours.port;
    let sleeper = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        run_str(&mut c, &["DEBUG", "SLEEP", "0.5"])
    });
    std::thread::sleep(Duration::from_millis(150));
    let t = Instant::now();
    for k in ["k", "{a}x", "{b}y", "{c}z"] {
        assert!(run_str(&mut other, &["GET", k]).is_ok());
    }
    assert!(t.elapsed() >= Duration::from_millis(200), "GETs ran while DEBUG SLEEP held the server: {:?}", t.elapsed());
    assert_eq!(sleeper.join().unwrap(), Ok(Value::Okay));
    // Junk and negative times do not sleep (strtod reads them as 0 or below).
    for c in ["DEBUG SLEEP abc", "DEBUG SLEEP -1", "DEBUG SLEEP 0"] {
        let args: Vec<&str> = c.split(' ').collect();
        let _ = d.check(&args);
    }
}

/// HELP, OBJECT's shape, and the replies and errors of the other subcommands.
#[test]
fn help_object_and_errors_match() {
    let Some(mut d) = start() else { return };
    for c in [
        "DEBUG HELP",
        "DEBUG help",
        "DEBUG HELP extra",
        "DEBUG nosuch",
        "DEBUG DIGEST extra",
        "DEBUG OBJECT missing",
        "DEBUG OBJECT",
        "DEBUG SLEEP",
        "DEBUG PROTOCOL",
        "DEBUG QUICKLIST-PACKED-THRESHOLD 0",
        "DEBUG QUICKLIST-PACKED-THRESHOLD 1b",
        "DEBUG QUICKLIST-PACKED-THRESHOLD 100mb",
        "DEBUG QUICKLIST-PACKED-THRESHOLD 5gb",
        "DEBUG QUICKLIST-PACKED-THRESHOLD abc",
        "DEBUG RELOAD bogus",
        "DEBUG ERROR two words",
        "DEBUG LOG hello",
        "DEBUG CHANGE-REPL-ID",
        "DEBUG SET-DISABLE-DENY-SCRIPTS 0",
        "DEBUG CLUSTERLINK KILL to x",
        "DEBUG REPLYBUFFER bogus 1",
        "DEBUG STRINGMATCH-LEN",
        "DEBUG JMAP",
        "DEBUG ZIPLIST k",
        "DEBUG DICT-RESIZING 1",
    ] {
        let args: Vec<&str> = c.split(' ').collect();
        let _ = d.check(&args);
    }
    let _ = d.check(&["DEBUG", "ERROR", "custom error text"]);
    let _ = d.check(&["DEBUG", "ERROR", "WRONGTYPE with\r\nnewlines"]);
    // OBJECT: Redis's fields in Redis's order; encoding and refcount as Redis has them.
    for c in [
        "SET s 123",
        "SET e hello",
        "SET r xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "RPUSH l a b c",
        "SADD si 1 2",
        "ZADD z 1 a",
        "HSET h f v",
        "XADD x 1-1 f v",
        "SET gone v PX 1",
    ] {
        let args: Vec<&str> = c.split(' ').collect();
        let _ = d.check(&args);
    }
    std::thread::sleep(Duration::from_millis(5));
    let shape = |text: String| -> Vec<String> {
        text.split(' ')
            .map(|f| {
                let (name, value) = f.split_once(':').unwrap_or((f, ""));
                match name {
                    "encoding" | "refcount" | "ql_listpack_max" | "ql_compressed" => f.to_string(),
                    "at" => {
                        assert!(value.starts_with("0x"), "{text}");
                        name.to_string()
                    }
                    _ => name.to_string(),
                }
            })
            .collect()
    };
    for key in ["s", "e", "r", "l", "si", "z", "h", "x"] {
        let ours = status(&run_str(&mut d.a, &["DEBUG", "OBJECT", key]));
        let theirs = status(&run_str(&mut d.b, &["DEBUG", "OBJECT", key]));
        assert_eq!(shape(ours), shape(theirs), "DEBUG OBJECT {key}");
    }
    let before = info_replid(&mut d.a);
    let _ = d.check(&["DEBUG", "CHANGE-REPL-ID"]);
    let after = info_replid(&mut d.a);
    assert!(before != after && after.len() == 40, "{before} -> {after}");
    let _ = d.check(&["DEBUG", "STRINGMATCH-TEST"]);
}

fn info_replid(c: &mut redis::Connection) -> String {
    let info = match run_str(c, &["INFO", "replication"]) {
        Ok(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    info.lines().find_map(|l| l.strip_prefix("master_replid:")).unwrap_or_default().trim().to_string()
}

/// SET-DISABLE-DENY-SCRIPTS lets scripts call `noscript` commands.
#[test]
fn disable_deny_scripts() {
    let Some(mut d) = start() else { return };
    let script = "return redis.call('debug', 'digest-value', KEYS[1])";
    let _ = d.check(&["SET", "k", "v"]);
    let _ = d.check(&["EVAL", script, "1", "k"]);
    let _ = d.check(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"]);
    let _ = d.check(&["EVAL", script, "1", "k"]);
    let _ = d.check(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0"]);
    let _ = d.check(&["EVAL", script, "1", "k"]);
    // A script holds one shard: DEBUG reaches no further (where Redis, one
    // shard, reaches everything), and says so instead of failing.
    let _ = d.check(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"]);
    let keys = common::keys_on_different_shards("k", 4, 4);
    for k in &keys {
        let _ = d.check(&["SET", k, "v"]);
    }
    let mut refused = 0;
    for sub in ["digest-value", "object"] {
        for k in &keys {
            let script = format!("return redis.call('debug', '{sub}', '{k}')");
            match run_str(&mut d.a, &["EVAL", &script, "0"]) {
                Ok(_) => {}
                Err(e) => {
                    assert!(e.contains("from a script reaches only the keys of the script's shard"), "{e}");
                    refused += 1;
                }
            }
        }
    }
    assert_eq!(refused, 6, "three of the four keys live on other shards than the script's, twice");
    let e = run_str(&mut d.a, &["EVAL", "return redis.call('debug', 'digest')", "0"]).unwrap_err();
    assert!(e.contains("DEBUG DIGEST from a script"), "{e}");
    let _ = d.check(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0"]);
}

/// DEBUG RELOAD NOFLUSH loads the file over a dataset that was not emptied:
/// without MERGE, a library that still exists fails the load (Redis's
/// "Library 'name' already exists", logged) before the keys behind it in the
/// file; with MERGE the file's libraries and keys replace those of the same
/// names. (moonshard merged in both cases.)
#[test]
fn reload_noflush_without_merge_refuses_existing_libraries() {
    let Some(mut d) = start() else { return };
    let lib = |n: &str| format!("#!lua name={n}\nredis.register_function('{n}', function() return 'hello' end)");
    let (one, two) = (lib("test1"), lib("test2"));
    for c in [
        &["SET", "{t}x", "1"][..],
        &["FUNCTION", "LOAD", &one],
        &["DEBUG", "RELOAD"],
        &["FUNCTION", "LOAD", &two],
        &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"],
        &["FCALL", "test1", "0"],
        &["FCALL", "test2", "0"],
        &["DEBUG", "RELOAD", "NOFLUSH"],
        &["FCALL", "test2", "0"],
        &["GET", "{t}x"],
        &["DBSIZE"],
        &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"],
        &["FUNCTION", "DELETE", "test1"],
        &["FUNCTION", "DELETE", "test2"],
        &["RENAME", "{t}x", "{t}y"],
        // Nothing of the file exists any more (a key of the file that
        // exists would stop redis-server: "Duplicated key found in RDB
        // file"): it loads next to what is there.
        &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH"],
        &["FCALL", "test1", "0"],
        &["MGET", "{t}x", "{t}y"],
    ] {
        let _ = d.check(c);
    }
    let refused = d.check(&["DEBUG", "RELOAD", "NOFLUSH"]);
    assert!(format!("{refused:?}").contains("Error trying to load the RDB dump"), "{refused:?}");
}
