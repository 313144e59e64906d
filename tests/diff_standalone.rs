//! `keyspace-mode standalone`: commands over keys in different slots (and
//! shards) answer as a standalone redis-server 7.0 does, against a real one,
//! on `--shards 4`. The keys carry no hash tag; the fixed ones are picked to
//! live on four different shards. `cluster` mode (the default) keeps
//! refusing them with CROSSSLOT.

mod common;
mod raw_resp;

use common::{keys_on_different_shards, q, show, Diff};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use std::time::Duration;

fn start() -> Option<Diff> {
    Diff::start(&["--shards", "4", "--keyspace-mode", "standalone"])
}

#[track_caller]
fn script(d: &mut Diff, cmds: &[&[&str]]) {
    for c in cmds {
        let _ = d.check(c);
    }
}

/// Compares every key of both servers: type, value (read per type), TTL presence.
#[track_caller]
fn same_data(d: &mut Diff, keys: &[String]) {
    for k in keys {
        let t = d.check(&["type", k]);
        let t = match t {
            Ok(Value::SimpleString(s)) => s,
            Ok(Value::Okay) => "ok".into(),
            other => panic!("TYPE {k}: {other:?}"),
        };
        match t.as_str() {
            "string" => drop(d.check(&["get", k])),
            "list" => drop(d.check(&["lrange", k, "0", "-1"])),
            "set" => d.check_unordered(&["smembers", k]),
            "zset" => drop(d.check(&["zrange", k, "0", "-1", "withscores"])),
            "hash" => d.check_unordered(&["hgetall", k]),
            _ => {}
        }
        let (a, b) = d.both(&["pttl", k]);
        assert_eq!(show(a).starts_with('-'), show(b).starts_with('-'), "TTL presence of {k}");
    }
}

#[test]
fn parameter_and_cluster_default() {
    let Some(mut d) = start() else { return };
    assert_eq!(q(&mut d.a, "CONFIG GET keyspace-mode"), "[keyspace-mode,standalone]");
    assert!(q(&mut d.a, "CONFIG SET keyspace-mode cluster").starts_with("ERR CONFIG SET failed"));
    let k = keys_on_different_shards("p", 4, 2);
    d.check(&["set", &k[0], "v"]).unwrap();
    d.check(&["rename", &k[0], &k[1]]).unwrap();

    // The default stays Redis Cluster's rule, whatever the shard count.
    let ours = common::moonshard(&["--shards", "4"]);
    let mut c = ours.client();
    assert_eq!(q(&mut c, "CONFIG GET keyspace-mode"), "[keyspace-mode,cluster]");
    q(&mut c, &format!("SET {} v", k[0]));
    let crossslot = "CROSSSLOT Keys in request don't hash to the same slot";
    assert_eq!(q(&mut c, &format!("RENAME {} {}", k[0], k[1])), crossslot);
    let eval = common::run_str(&mut c, &["eval", "return 1", "2", &k[0], &k[1]]);
    assert_eq!(show(eval), crossslot);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .args(["--port", "0", "--keyspace-mode", "sharded"])
        .output()
        .expect("run moonshard");
    assert!(!bad.status.success(), "an unknown mode must be refused at start-up");
}

#[test]
fn multi_key_commands_across_shards() {
    let Some(mut d) = start() else { return };
    let k = keys_on_different_shards("k", 4, 4);
    let (a, b, c, e) = (k[0].as_str(), k[1].as_str(), k[2].as_str(), k[3].as_str());
    script(
        &mut d,
        &[
            // RENAME / RENAMENX / COPY, with TTLs and types
            &["set", a, "1", "px", "100000"],
            &["rename", a, b],
            &["exists", a, b],
            &["renamenx", b, c],
            &["set", a, "x"],
            &["renamenx", a, c],
            &["renamenx", a, e],
            &["rename", "missing", b],
            &["copy", e, a],
            &["copy", e, c],
            &["copy", e, c, "replace"],
            &["copy", e, b, "db", "1"],
            &["mget", a, b, c, e],
            // MSETNX
            &["del", a, b, c, e],
            &["msetnx", a, "1", b, "2"],
            &["msetnx", c, "3", b, "9"],
            &["msetnx", c, "3", e, "4"],
            &["mget", a, b, c, e],
            // SMOVE
            &["del", a, b, c, e],
            &["sadd", a, "m1", "m2", "3"],
            &["smove", a, b, "m1"],
            &["smove", a, b, "nope"],
            &["smove", a, b, "m2"],
            &["smove", a, b, "3"],
            &["exists", a],
            &["set", c, "str"],
            &["smove", b, c, "m1"],
            &["smove", c, b, "m1"],
            // LMOVE / RPOPLPUSH / the blocking forms when data is there
            &["del", a, b, c, e],
            &["rpush", a, "1", "2", "3", "4"],
            &["lmove", a, b, "left", "right"],
            &["lmove", a, b, "right", "left"],
            &["rpoplpush", a, c],
            &["blmove", a, e, "left", "left", "0"],
            &["brpoplpush", b, e, "0"],
            &["lmove", a, b, "left", "left"],
            &["exists", a],
            &["set", a, "str"],
            &["lmove", b, a, "left", "left"],
            &["lrange", e, "0", "-1"],
            &["lrange", c, "0", "-1"],
            // Set stores
            &["del", a, b, c, e],
            &["sadd", a, "1", "2", "3", "x"],
            &["sadd", b, "2", "3", "4"],
            &["sinterstore", c, a, b],
            &["sunionstore", e, a, b],
            &["sdiffstore", c, a, b],
            &["sinterstore", c, a, "nokey"],
            &["exists", c],
            &["sinter", a, b],
            &["sintercard", "2", a, b],
            // Sorted-set stores
            &["del", a, b, c, e],
            &["zadd", a, "1", "x", "2", "y", "3", "z"],
            &["zadd", b, "10", "y", "20", "w"],
            &["zunionstore", c, "2", a, b, "weights", "1", "2"],
            &["zinterstore", e, "2", a, b, "aggregate", "max"],
            &["zdiffstore", c, "2", a, b],
            &["zrangestore", e, a, "0", "1"],
            &["zrangestore", e, b, "(5", "+inf", "byscore"],
            &["zunion", "2", a, b, "withscores"],
            &["zrange", c, "0", "-1", "withscores"],
            &["zrange", e, "0", "-1", "withscores"],
            // GEO
            &["del", a, b, c, e],
            &["geoadd", a, "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"],
            &["geosearchstore", b, a, "fromlonlat", "15", "37", "byradius", "200", "km", "asc"],
            &["geosearchstore", c, a, "fromlonlat", "15", "37", "byradius", "200", "km", "asc", "storedist"],
            &["georadius", a, "15", "37", "200", "km", "store", e],
            &["zrange", b, "0", "-1", "withscores"],
            &["zrange", e, "0", "-1"],
            // BITOP
            &["del", a, b, c, e],
            &["set", a, "foobar"],
            &["set", b, "abcdef"],
            &["bitop", "and", c, a, b],
            &["bitop", "or", e, a, b, c],
            &["bitop", "not", e, a],
            &["bitop", "xor", c, a, "nokey"],
            &["get", c],
            // PFMERGE
            &["del", a, b, c, e],
            &["pfadd", a, "1", "2", "3"],
            &["pfadd", b, "3", "4"],
            &["pfmerge", c, a, b],
            &["pfcount", c],
            &["pfcount", a, b],
            &["pfmerge", e],
            &["pfcount", e],
            // SORT with BY/GET patterns over keys anywhere, and STORE
            &["del", a, b, c, e],
            &["rpush", a, "3", "1", "2"],
            &["mset", "w_1", "30", "w_2", "10", "w_3", "20", "o_1", "one", "o_2", "two", "o_3", "three"],
            &["hset", "h_1", "f", "b"],
            &["hset", "h_2", "f", "a"],
            &["sort", a, "by", "w_*"],
            &["sort", a, "by", "w_*", "get", "o_*", "get", "#"],
            &["sort", a, "by", "nosort", "get", "h_*->f"],
            &["sort", a, "by", "h_*->f", "alpha", "get", "o_*", "store", b],
            &["sort", a, "store", c],
            &["sort_ro", a, "by", "w_*", "get", "o_*"],
            &["lrange", b, "0", "-1"],
            &["lrange", c, "0", "-1"],
            // Ordinary multi-key reads and writes
            &["mset", a, "1", b, "2", c, "3"],
            &["mget", a, b, c, e],
            &["del", a, b, c, e, "w_1"],
            &["exists", a, b, c],
            &["object", "encoding", a],
        ],
    );
    let mut all: Vec<String> = k.clone();
    all.extend(["w_2", "o_1", "h_1"].map(String::from));
    same_data(&mut d, &all);
}

/// The same commands inside MULTI/EXEC, and randomized sequences.
#[test]
fn randomized_and_transactions() {
    let Some(mut d) = start() else { return };
    let keys: Vec<String> = (0..8).map(|i| format!("key:{i}")).collect();
    let mut rng = StdRng::seed_from_u64(19);
    let pick = |rng: &mut StdRng| keys[rng.gen_range(0..keys.len())].clone();
    for round in 0..400 {
        let (x, y, z) = (pick(&mut rng), pick(&mut rng), pick(&mut rng));
        let m = rng.gen_range(0..6).to_string();
        let cmd: Vec<String> = match rng.gen_range(0..22) {
            0 => vec!["rename".into(), x, y],
            1 => vec!["renamenx".into(), x, y],
            2 => vec!["copy".into(), x, y, "replace".into()],
            3 => vec!["msetnx".into(), x, m.clone(), y, m],
            4 => vec!["smove".into(), x, y, m],
            5 => vec!["lmove".into(), x, y, "left".into(), "right".into()],
            6 => vec!["rpoplpush".into(), x, y],
            7 => vec!["sinterstore".into(), x, y, z],
            8 => vec!["sunionstore".into(), x, y, z],
            9 => vec!["sdiffstore".into(), x, y, z],
            10 => vec!["zunionstore".into(), x, "2".into(), y, z],
            11 => vec!["zinterstore".into(), x, "2".into(), y, z, "aggregate".into(), "sum".into()],
            12 => vec!["zdiffstore".into(), x, "2".into(), y, z],
            13 => vec!["zrangestore".into(), x, y, "0".into(), "-1".into()],
            14 => vec!["sadd".into(), x, m.clone(), (rng.gen_range(0..6)).to_string()],
            15 => vec!["zadd".into(), x, m.clone(), m],
            16 => vec!["rpush".into(), x, m],
            17 => vec!["set".into(), x, m],
            18 => vec!["pfadd".into(), x, m],
            19 => vec!["pfmerge".into(), x, y, z],
            20 => vec!["bitop".into(), "or".into(), x, y, z],
            _ => vec!["del".into(), x],
        };
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        if round % 5 == 0 {
            // Wrapped in a transaction with a read of two other keys.
            let (r1, r2) = (pick(&mut rng), pick(&mut rng));
            d.check(&["multi"]).unwrap();
            let _ = d.check(&args);
            let _ = d.check(&["exists", &r1, &r2]);
            let _ = d.check(&["exec"]);
        } else {
            let _ = d.check(&args);
        }
    }
    same_data(&mut d, &keys);
}

/// A blocked BLMOVE/BRPOPLPUSH served by a push on another shard moves the
/// element to a destination on a third shard.
#[test]
fn blocking_moves_across_shards() {
    let Some(d) = start() else { return };
    let k = keys_on_different_shards("b", 4, 3);
    let url = d.ours.url();
    for (cmd, expect_at) in
        [(vec!["blmove", &k[0], &k[1], "left", "right", "5"], "right"), (vec!["brpoplpush", &k[0], &k[1], "5"], "left")]
    {
        let url2 = url.clone();
        let args: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        let waiter = std::thread::spawn(move || {
            let mut c = redis::Client::open(url2).unwrap().get_connection().unwrap();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            show(common::run_str(&mut c, &args))
        });
        std::thread::sleep(Duration::from_millis(100));
        let mut c = d.ours.client();
        q(&mut c, &format!("RPUSH {} {}", k[1], "old"));
        q(&mut c, &format!("RPUSH {} v", k[0]));
        assert_eq!(waiter.join().unwrap(), "v");
        let list = q(&mut c, &format!("LRANGE {} 0 -1", k[1]));
        assert_eq!(list, if expect_at == "right" { "[old,v]" } else { "[v,old]" });
        q(&mut c, &format!("DEL {} {}", k[0], k[1]));
    }
}

/// Scripts whose declared keys span shards, scripts touching keys they never
/// declared (read or written first, on any shard), shebang scripts, whole
/// keyspace commands and SORT patterns from scripts, and functions.
#[test]
fn scripts_across_shards() {
    let Some(mut d) = start() else { return };
    let k = keys_on_different_shards("s", 4, 4);
    let (a, b, c, e) = (k[0].as_str(), k[1].as_str(), k[2].as_str(), k[3].as_str());
    let mv = "local v = redis.call('get', KEYS[1]); redis.call('del', KEYS[1]); redis.call('set', KEYS[2], v); return redis.call('mget', KEYS[1], KEYS[2])";
    let undeclared = "redis.call('incrby', ARGV[1], 5); redis.call('rpush', ARGV[2], 'x'); redis.call('sadd', ARGV[3], 'm'); return {redis.call('get', ARGV[1]), redis.call('llen', ARGV[2]), redis.call('scard', ARGV[3]), redis.call('exists', ARGV[4])}";
    let shebang = "#!lua\nredis.call('set', KEYS[1], ARGV[1]); redis.call('set', ARGV[2], ARGV[1]); return redis.call('mget', KEYS[1], ARGV[2], KEYS[2])";
    let ro = "#!lua flags=no-writes\nreturn redis.call('mget', KEYS[1], KEYS[2], ARGV[1])";
    script(
        &mut d,
        &[
            &["set", a, "1"],
            &["eval", mv, "2", a, b],
            &["eval", mv, "2", b, c],
            &["eval", mv, "2", c, e],
            &["eval", undeclared, "0", a, b, c, e],
            &["eval", undeclared, "1", e, a, b, c, e],
            &["eval", undeclared, "0", a, b, c, e],
            &["eval", shebang, "2", a, b, "v", c],
            &["eval_ro", ro, "2", a, b, c],
            &["evalsha", "0123456789012345678901234567890123456789", "0"],
            &["script", "load", mv],
            &["eval", "local t = redis.call('keys', '*'); table.sort(t); return t", "0"],
            &["eval", "return redis.call('dbsize')", "1", a],
            &["eval", "redis.call('rpush', KEYS[1], '2', '1'); redis.call('set', 'w_1', 9); redis.call('set', 'w_2', 3); return redis.call('sort', KEYS[1], 'by', 'w_*')", "1", "srt"],
            &["eval", "return redis.call('get', ARGV[1]) .. redis.call('get', KEYS[1])", "1", c, a],
            &["eval", "redis.call('set', KEYS[1], 'z'); return redis.call('nosuch')", "1", a],
            &["mget", a, b, c, e],
            &["del", "w_1", "w_2", "srt"],
        ],
    );
    let sha = match d.check(&["script", "load", mv]) {
        Ok(Value::BulkString(s)) => String::from_utf8(s).unwrap(),
        other => panic!("SCRIPT LOAD: {other:?}"),
    };
    script(&mut d, &[&["set", e, "back"], &["evalsha", &sha, "2", e, a], &["evalsha", &sha, "2", a, b]]);
    // Functions
    let lib = "#!lua name=xs\nredis.register_function('mv', function(keys, args) local v = redis.call('get', keys[1]); redis.call('set', keys[2], v); redis.call('set', args[1], v); return redis.call('mget', keys[1], keys[2], args[1]) end)";
    script(
        &mut d,
        &[
            &["function", "load", "replace", lib],
            &["fcall", "mv", "2", b, c, e],
            &["fcall", "mv", "2", c, a, b],
            &["fcall", "mv", "0", a],
        ],
    );
    // Inside MULTI/EXEC, mixed with plain commands.
    script(
        &mut d,
        &[&["multi"], &["eval", mv, "2", b, c], &["eval", undeclared, "0", a, b, c, e], &["rename", c, b], &["exec"]],
    );
    same_data(&mut d, &k);
    let _ = d.check(&["function", "flush"]);
}

/// Scripts move value between keys on different shards (declared, and not
/// declared) from several clients, while others read the total by script
/// and by MULTI: the total never changes.
#[test]
fn concurrent_transfers_keep_the_total() {
    let ours = common::moonshard(&["--shards", "4", "--keyspace-mode", "standalone"]);
    let keys = keys_on_different_shards("acct", 4, 4);
    let mut c = ours.client();
    for k in &keys {
        q(&mut c, &format!("SET {k} 100"));
    }
    let transfer = "local n = tonumber(ARGV[1]); if tonumber(redis.call('get', KEYS[1])) >= n then redis.call('decrby', KEYS[1], n); redis.call('incrby', KEYS[2], n) end return 1";
    let hidden = "local n = tonumber(ARGV[3]); if tonumber(redis.call('get', ARGV[1])) >= n then redis.call('decrby', ARGV[1], n); redis.call('incrby', ARGV[2], n) end return 1";
    let total = "local t = 0 for _, k in ipairs(ARGV) do t = t + tonumber(redis.call('get', k)) end return t";
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (url, keys, stop) = (ours.url(), keys.clone(), stop.clone());
        let script = if w % 2 == 0 { transfer } else { hidden };
        workers.push(std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut rng = StdRng::seed_from_u64(w);
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (x, y) = (rng.gen_range(0..4), rng.gen_range(0..4));
                let amount = rng.gen_range(1..30).to_string();
                let args: Vec<&str> = if w % 2 == 0 {
                    vec!["eval", script, "2", &keys[x], &keys[y], &amount]
                } else {
                    vec!["eval", script, "0", &keys[x], &keys[y], &amount]
                };
                assert_eq!(show(common::run_str(&mut c, &args)), "1");
                n += 1;
            }
            n
        }));
    }
    let mut reads = 0;
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    let mut args = vec!["eval", total, "0"];
    args.extend(keys.iter().map(String::as_str));
    while std::time::Instant::now() < deadline {
        assert_eq!(show(common::run_str(&mut c, &args)), "400", "total read by a script");
        let mut pipe = redis::pipe();
        pipe.atomic();
        for k in &keys {
            pipe.cmd("GET").arg(k);
        }
        let vals: Vec<i64> = pipe.query(&mut c).unwrap();
        assert_eq!(vals.iter().sum::<i64>(), 400, "total read by MULTI: {vals:?}");
        reads += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let moved: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(moved > 100 && reads > 10, "too little ran: {moved} transfers, {reads} reads");
    eprintln!("{moved} transfers, {reads} reads of the total");
}

/// Scripts never run before (no shards learned) write on one shard, then
/// touch keys on others, from several clients at once: one that meets a
/// busy shard below one it holds starts over after its writes are taken
/// back (undo journal). Every call answers as if it ran once, the total
/// never changes, each transfer is logged once, and the AOF replays into
/// the same dataset (in moonshard and in redis-server).
#[test]
fn scripts_that_start_over_take_back_their_writes() {
    transfers_by_new_scripts(&[], "");
}

/// The same with effects the journal cannot take back (a notification or a
/// message is out once published): a script first enters every shard below
/// its highest and never has to start over after writing. Subscribers get
/// each announcement once.
#[test]
fn scripts_with_effects_that_cannot_be_taken_back() {
    transfers_by_new_scripts(&["--notify-keyspace-events", "KEA"], "");
    transfers_by_new_scripts(&[], "redis.call('publish', '__keyevent@0__:incrby', 'x'); ");
}

/// `extra`: server flags; `publish`: Lua run after the transfer's first
/// write. Either one announces each write on `__keyevent@0__:incrby`.
fn transfers_by_new_scripts(extra: &[&str], publish: &str) {
    let dir = common::temp_dir("standalone-undo");
    let d = dir.to_str().unwrap();
    let flags =
        [&["--shards", "4", "--keyspace-mode", "standalone", "--appendonly", "yes", "--dir", d][..], extra].concat();
    let ours = common::moonshard(&[&flags[..], &["--enable-debug-command", "yes"]].concat());
    let keys = keys_on_different_shards("undo", 4, 4);
    let mut c = ours.client();
    for k in &keys {
        q(&mut c, &format!("SET {k} 1000"));
    }
    // With notifications on, each transfer's writes are announced once.
    let mut events = ours.client();
    // DECRBY and INCRBY both announce `incrby` (as in Redis), the script's PUBLISH once.
    let announced_per_transfer = match (extra.is_empty(), publish.is_empty()) {
        (false, _) => 2,
        (true, false) => 1,
        (true, true) => 0,
    };
    let mut events = (announced_per_transfer != 0).then(|| {
        let mut ps = events.as_pubsub();
        ps.subscribe("__keyevent@0__:incrby").unwrap();
        ps.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        ps
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (url, keys, stop, publish) = (ours.url(), keys.clone(), stop.clone(), publish.to_string());
        workers.push(std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut rng = StdRng::seed_from_u64(w);
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let x = rng.gen_range(0..4);
                let y = (x + rng.gen_range(1..4)) % 4;
                // A new script each time: nothing learned, so it enters shards as it goes.
                // Between its writes, a refused call and a failed one (errors to count once).
                let script = format!(
                    "-- {w}.{n}\nlocal n = tonumber(ARGV[3]); redis.call('decrby', ARGV[1], n); {publish}\
                     redis.pcall('get'); redis.pcall('lpush', ARGV[1], 'x'); \
                     redis.call('rpush', 'log:' .. ARGV[1], n); redis.call('incrby', ARGV[2], n); return 1"
                );
                let amount = rng.gen_range(1..10).to_string();
                let args = ["eval", script.as_str(), "0", &keys[x], &keys[y], &amount];
                assert_eq!(show(common::run_str(&mut c, &args)), "1");
                n += 1;
            }
            n
        }));
    }
    let total = "local t = 0 for _, k in ipairs(ARGV) do t = t + tonumber(redis.call('get', k)) end return t";
    let mut args = vec!["eval", total, "0"];
    args.extend(keys.iter().map(String::as_str));
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < deadline {
        assert_eq!(show(common::run_str(&mut c, &args)), "4000", "total read by a script");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let moved: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(moved > 50, "too little ran: {moved} transfers");
    let logged: i64 = keys.iter().map(|k| q(&mut c, &format!("LLEN log:{k}")).parse::<i64>().unwrap()).sum();
    assert_eq!(logged as u64, moved, "each transfer logged once");
    // Counted once too (Redis runs each script once): a run taken back
    // withdraws its calls and its changes from the statistics.
    for cmd in ["decrby", "rpush", "incrby"] {
        let line = common::field_of(&mut c, "commandstats", &format!("cmdstat_{cmd}"));
        assert!(line.starts_with(&format!("calls={moved},")), "cmdstat_{cmd}:{line} after {moved} transfers");
    }
    // Its errors too: the refused GET and the failed LPUSH of each transfer.
    let get = common::field_of(&mut c, "commandstats", "cmdstat_get");
    assert!(
        get.ends_with(&format!("rejected_calls={moved},failed_calls=0")),
        "cmdstat_get:{get} after {moved} transfers"
    );
    let lpush = common::field_of(&mut c, "commandstats", "cmdstat_lpush");
    assert!(lpush.starts_with(&format!("calls={moved},")), "cmdstat_lpush:{lpush} after {moved} transfers");
    assert!(lpush.ends_with(&format!("failed_calls={moved}")), "cmdstat_lpush:{lpush} after {moved} transfers");
    for (code, count) in [("ERR", moved), ("WRONGTYPE", moved)] {
        let line = common::field_of(&mut c, "errorstats", &format!("errorstat_{code}"));
        assert_eq!(line, format!("count={count}"), "errorstat_{code} after {moved} transfers");
    }
    let changes = common::field_of(&mut c, "persistence", "rdb_changes_since_last_save");
    assert_eq!(changes, (4 + 3 * moved).to_string(), "dirty count after {moved} transfers");
    if let Some(ps) = events.as_mut() {
        let mut announced = 0;
        while ps.get_message().is_ok() {
            announced += 1;
        }
        assert_eq!(announced, announced_per_transfer * moved, "each transfer's writes announced once");
    }
    drop(events);
    let want = q(&mut c, "DEBUG DIGEST");
    drop(c);
    drop(ours);
    let again = common::moonshard(&[&flags[..], &["--enable-debug-command", "yes"]].concat());
    assert_eq!(q(&mut again.client(), "DEBUG DIGEST"), want, "moonshard replayed its AOF into another dataset");
    drop(again);
    if common::redis_server().is_some() {
        let redis = common::redis_on_aof(&dir);
        assert_eq!(q(&mut redis.client(), "DEBUG DIGEST"), want, "redis-server replayed the AOF into another dataset");
    }
    eprintln!("{moved} transfers");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A busy script holding several shards (standalone mode) is seen and
/// killed by SCRIPT KILL from another client; its shards serve again, and
/// one that wrote answers UNKILLABLE as Redis does.
#[test]
fn script_kill_of_a_multi_shard_script() {
    let ours = common::moonshard(&["--shards", "4", "--keyspace-mode", "standalone", "--busy-reply-threshold", "100"]);
    let k = keys_on_different_shards("busy", 4, 2);
    let (a, b) = (k[0].clone(), k[1].clone());
    // Reads both keys (two shards), then loops.
    let spin = "redis.call('get', KEYS[1]); redis.call('get', KEYS[2]); while true do end";
    let url = ours.url();
    let (a2, b2) = (a.clone(), b.clone());
    let runner = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        show(common::run_str(&mut c, &["eval", spin, "2", &a2, &b2]))
    });
    let mut c = ours.client();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = show(common::run_str(&mut c, &["get", &b]));
        if r.starts_with("BUSY") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the script never made its second shard busy: {r}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(q(&mut c, "SCRIPT KILL"), "OK");
    let died = runner.join().unwrap();
    assert!(died.contains("Script killed by user with SCRIPT KILL"), "{died}");
    assert_eq!(q(&mut c, &format!("SET {a} 1")), "OK");
    assert_eq!(q(&mut c, &format!("SET {b} 2")), "OK");
    // A script that wrote on one shard before spinning cannot be killed.
    // On a loaded machine the script can pass the busy threshold before it
    // reaches its write: then SCRIPT KILL rightly kills it (and it wrote
    // nothing); the scenario is tried again, and must end UNKILLABLE.
    let url = ours.url();
    let mut unkillable = false;
    for _ in 0..5 {
        let (a3, b3, url) = (a.clone(), b.clone(), url.clone());
        let writer = std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            let s = "redis.call('get', KEYS[2]); redis.call('set', KEYS[1], 'w'); local t = redis.call('time')[1] + 1 \
                     while tonumber(redis.call('time')[1]) <= t do end return 'done'";
            show(common::run_str(&mut c, &["eval", s, "2", &a3, &b3]))
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let killed = loop {
            let r = q(&mut c, "SCRIPT KILL");
            if r.starts_with("UNKILLABLE") {
                break false;
            }
            if r == "OK" {
                break true;
            }
            assert!(r.starts_with("NOTBUSY"), "{r}");
            assert!(std::time::Instant::now() < deadline, "never saw the writing script");
            std::thread::sleep(Duration::from_millis(10));
        };
        let reply = writer.join().unwrap();
        if !killed {
            assert_eq!(reply, "done");
            unkillable = true;
            break;
        }
        assert!(reply.contains("Script killed by user with SCRIPT KILL"), "{reply}");
        assert_eq!(q(&mut c, &format!("GET {a}")), "1", "a killed script had not written");
    }
    assert!(unkillable, "the writing script was never seen UNKILLABLE");
}

/// Client-side caching in standalone mode: a client tracking keys on
/// several shards is invalidated when a multi-shard command or script
/// changes them, as by single-key writes.
#[test]
fn tracking_invalidations_from_multi_shard_writes() {
    let ours = common::moonshard(&["--shards", "4", "--keyspace-mode", "standalone"]);
    let k = keys_on_different_shards("trk", 4, 3);
    let mut reader = ours.client();
    let mut writer = ours.client();
    let mut inv = ours.client();
    let inv_id = q(&mut inv, "CLIENT ID");
    let mut pubsub = inv.as_pubsub();
    pubsub.subscribe("__redis__:invalidate").unwrap();
    pubsub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(q(&mut reader, &format!("CLIENT TRACKING on REDIRECT {inv_id}")), "OK");
    for key in &k {
        q(&mut reader, &format!("SET {key} v"));
        q(&mut reader, &format!("GET {key}"));
    }
    // One command over three shards, then a script over two.
    assert_eq!(q(&mut writer, &format!("MSET {} 1 {} 2 {} 3", k[0], k[1], k[2])), "OK");
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 3 {
        let msg = pubsub.get_message().expect("invalidation");
        let keys: Vec<String> = msg.get_payload().unwrap_or_default();
        seen.extend(keys);
    }
    assert_eq!(seen, k.iter().cloned().collect());
    for key in &k {
        q(&mut reader, &format!("GET {key}"));
    }
    let s = "redis.call('set', KEYS[1], 'x'); redis.call('del', ARGV[1]); return 1";
    assert_eq!(show(common::run_str(&mut writer, &["eval", s, "1", &k[1], &k[2]])), "1");
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 2 {
        let msg = pubsub.get_message().expect("invalidation");
        let keys: Vec<String> = msg.get_payload().unwrap_or_default();
        seen.extend(keys);
    }
    assert_eq!(seen, [k[1].clone(), k[2].clone()].into_iter().collect());
}

/// The AOF (and so every replica) gets a multi-shard command or script of
/// standalone mode as one unit: a script's writes on several shards are
/// wrapped in MULTI/EXEC, and the files replay into the same dataset in
/// moonshard and redis-server.
#[test]
fn aof_records_multi_shard_writes_as_units() {
    let dir = common::temp_dir("standalone-aof");
    let d = dir.to_str().unwrap();
    let ours = common::moonshard(&[
        "--shards",
        "4",
        "--keyspace-mode",
        "standalone",
        "--appendonly",
        "yes",
        "--dir",
        d,
        "--enable-debug-command",
        "yes",
    ]);
    let k = keys_on_different_shards("aofk", 4, 4);
    let mut c = ours.client();
    q(&mut c, &format!("MSET {} 10 {} 20 {} 30 {} 40", k[0], k[1], k[2], k[3]));
    let mv = "redis.call('decrby', KEYS[1], 5); redis.call('incrby', KEYS[2], 5); redis.call('rpush', ARGV[1], 'log'); return 1";
    for i in 0..20 {
        let (x, y) = (&k[i % 4], &k[(i + 1) % 4]);
        show(common::run_str(&mut c, &["eval", mv, "2", x, y, &k[(i + 2) % 4].replace("aofk", "list")]));
    }
    q(&mut c, &format!("RENAME {} {}", k[0], "renamed"));
    q(&mut c, &format!("SMOVE nosuch {} m", k[1]));
    let want = q(&mut c, "DEBUG DIGEST");
    drop(c);
    drop(ours);
    let aof = std::fs::read(dir.join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
    let text = String::from_utf8_lossy(&aof);
    assert!(text.matches("MULTI").count() >= 20, "each script's writes should be one MULTI/EXEC unit:\n{text}");
    assert_eq!(text.matches("MULTI").count(), text.matches("EXEC").count());
    if common::redis_server().is_some() {
        let redis = common::redis_on_aof(&dir);
        let mut rc = redis.client();
        assert_eq!(q(&mut rc, "DEBUG DIGEST"), want, "redis-server replayed moonshard's AOF into another dataset");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sharded pub/sub takes channels of any slots in standalone mode, as a
/// standalone Redis does (redis-py's own tests subscribe so); cluster mode
/// keeps Redis Cluster's one-slot rule.
#[test]
fn shard_channels_of_different_slots() {
    let Some(pair) = raw_resp::start_pair(&["--keyspace-mode", "standalone"]) else { return };
    let mut both = raw_resp::Both::new(&pair);
    both.check_n(&["SSUBSCRIBE", "a", "b", "c"], 3);
    let mut publisher = raw_resp::Both::new(&pair);
    publisher.check(&["SPUBLISH", "b", "hello"]);
    publisher.check(&["PUBSUB", "SHARDNUMSUB", "a", "b", "c", "d"]);
    both.check_n(&["SUNSUBSCRIBE", "a", "c"], 2);
    publisher.check(&["PUBSUB", "SHARDNUMSUB", "a", "b"]);
    // The message to `b` reached each subscriber, before the unsubscriptions.
    let [ours, theirs] = both.drain();
    assert_eq!(ours, theirs);
    let cluster = common::moonshard(&["--shards", "4"]);
    let mut c = raw_resp::Raw::connect(cluster.port);
    assert_eq!(c.call(&["SSUBSCRIBE", "a", "b"]), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
}
