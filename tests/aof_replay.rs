//! The propagated write stream, read through the append-only file it feeds:
//! after a randomized workload on moonshard (every type, relative expiries,
//! randomness such as SPOP and XADD *, scripts, cross-shard MULTI/EXEC,
//! blocking pops, keys expiring and evicted), the AOF directory moonshard
//! wrote must reproduce exactly the same dataset (DEBUG DIGEST) when
//! redis-server 7.0 loads it, and when moonshard restarts from it.
//! redis-check-aof must accept it.

mod common;

use common::{run_str, Proc, Rng};
use redis::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn digest(con: &mut redis::Connection) -> String {
    match run_str(con, &["DEBUG", "DIGEST"]) {
        Ok(Value::SimpleString(s)) => s,
        Ok(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("DEBUG DIGEST answered {other:?}"),
    }
}

fn dbsizes(con: &mut redis::Connection) -> Vec<i64> {
    (0..4)
        .map(|db| {
            run_str(con, &["SELECT", &db.to_string()]).unwrap();
            match run_str(con, &["DBSIZE"]) {
                Ok(Value::Int(n)) => n,
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

/// One random write (or a few, for MULTI and scripts).
fn random_step(con: &mut redis::Connection, rng: &mut Rng) {
    let key = |rng: &mut Rng, p: &str| format!("{p}{}", rng.below(40));
    let tagged = |rng: &mut Rng, p: &str| format!("{{t{}}}{p}{}", rng.below(4), rng.below(10));
    let v = format!("v{}", rng.below(1000));
    let s = |x: &str| x.to_string();
    let cmd: Vec<String> = match rng.below(34) {
        0 => vec![s("SET"), key(rng, "s"), v],
        1 => vec![s("SET"), key(rng, "s"), v, s("EX"), (100 + rng.below(900)).to_string()],
        2 => vec![s("SETEX"), key(rng, "s"), (100 + rng.below(100)).to_string(), v],
        3 => vec![s("SET"), key(rng, "tmp"), v, s("PX"), (1 + rng.below(300)).to_string()],
        4 => vec![s("INCRBYFLOAT"), key(rng, "f"), format!("{}.{}", rng.below(100), rng.below(1000))],
        5 => vec![s("APPEND"), key(rng, "s"), v],
        6 => vec![s("EXPIRE"), key(rng, "s"), (100 + rng.below(1000)).to_string()],
        7 => vec![s("PEXPIRE"), key(rng, "l"), (1 + rng.below(200)).to_string()],
        8 => vec![s("GETEX"), key(rng, "s"), s("EX"), (500 + rng.below(100)).to_string()],
        9 => vec![s("LPUSH"), key(rng, "l"), v.clone(), format!("{v}x")],
        10 => vec![s("RPOP"), key(rng, "l")],
        11 => vec![s("LMOVE"), tagged(rng, "l"), tagged(rng, "l"), s(rng.pick(&["LEFT", "RIGHT"])), s("LEFT")],
        12 => vec![s("HSET"), key(rng, "h"), format!("f{}", rng.below(10)), v],
        13 => vec![s("HINCRBYFLOAT"), key(rng, "h"), format!("n{}", rng.below(3)), s("0.1")],
        14 => vec![s("HDEL"), key(rng, "h"), format!("f{}", rng.below(10))],
        15 => vec![s("SADD"), key(rng, "set"), v, format!("m{}", rng.below(20))],
        16 => vec![s("SPOP"), key(rng, "set")],
        17 => vec![s("SPOP"), key(rng, "set"), rng.below(4).to_string()],
        18 => vec![s("SMOVE"), tagged(rng, "set"), tagged(rng, "set"), format!("m{}", rng.below(20))],
        19 => vec![s("ZADD"), key(rng, "z"), format!("{}.5", rng.below(100)), format!("m{}", rng.below(30))],
        20 => vec![s("ZINCRBY"), key(rng, "z"), s("1.25"), format!("m{}", rng.below(30))],
        21 => vec![s("ZPOPMIN"), key(rng, "z")],
        22 => vec![s("XADD"), key(rng, "x"), s("MAXLEN"), s("~"), s("5"), s("*"), s("f"), v],
        23 => vec![s("XADD"), key(rng, "x"), s("*"), s("g"), v],
        24 => vec![s("XTRIM"), key(rng, "x"), s("MAXLEN"), s("~"), s("3")],
        25 => {
            let p = rng.pick(&["s", "l", "h", "set", "z", "x"]);
            vec![s("DEL"), key(rng, p)]
        }
        26 => vec![s("RENAME"), tagged(rng, "s"), tagged(rng, "s")],
        27 => vec![s("SELECT"), rng.below(3).to_string()],
        28 => vec![s("PFADD"), key(rng, "hll"), v],
        29 => vec![s("SETBIT"), key(rng, "bits"), rng.below(200).to_string(), s("1")],
        30 => {
            // A cross-shard transaction, applied atomically and replayed as one unit.
            let a = key(rng, "s");
            let b = key(rng, "set");
            let c = key(rng, "l");
            for cmd in [
                vec![s("MULTI")],
                vec![s("SET"), a, v.clone(), s("PX"), s("700000")],
                vec![s("SADD"), b, v.clone()],
                vec![s("LPUSH"), c, v],
                vec![s("EXEC")],
            ] {
                let args: Vec<&str> = cmd.iter().map(|x| x.as_str()).collect();
                let _ = run_str(con, &args);
            }
            return;
        }
        31 => {
            let script = "local r = redis.call('spop', KEYS[1]) \
                          if r then redis.call('rpush', KEYS[2], r) end \
                          redis.call('set', KEYS[3], ARGV[1], 'ex', 500) \
                          redis.call('incrbyfloat', KEYS[3] .. ':f', '0.5') \
                          return r";
            let t = format!("{{t{}}}", rng.below(4));
            vec![
                s("EVAL"),
                s(script),
                s("3"),
                format!("{t}set{}", rng.below(10)),
                format!("{t}l{}", rng.below(10)),
                format!("{t}s{}", rng.below(10)),
                v,
            ]
        }
        32 => vec![s("EVAL"), s("return redis.call('xadd', KEYS[1], '*', 'k', ARGV[1])"), s("1"), key(rng, "x"), v],
        _ => vec![s("COPY"), tagged(rng, "s"), tagged(rng, "s"), s("REPLACE")],
    };
    let args: Vec<&str> = cmd.iter().map(|x| x.as_str()).collect();
    let _ = run_str(con, &args);
}

fn aof_dir_server(dir: &std::path::Path, extra: &[&str]) -> Proc {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["--appendonly", "yes", "--dir", dir, "--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    common::moonshard(&args)
}

#[test]
fn aof_written_by_moonshard_replays_identically_in_redis_and_moonshard() {
    let Some(redis_probe) = common::redis_server() else { return };
    drop(redis_probe);
    let dir = tempdir("replay");
    let live = aof_dir_server(&dir, &["--shards", "4", "--appendfsync", "always"]);
    let mut con = live.client();
    let mut rng = Rng(0x5eed_a0f1);
    // A blocked pop served by a later push: replayed as the pop it became.
    let port = live.port;
    let popper = std::thread::spawn(move || {
        let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut c = c.get_connection().unwrap();
        run_str(&mut c, &["BLPOP", "{t0}q", "{t0}q2", "30"])
    });
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..3000 {
        random_step(&mut con, &mut rng);
    }
    run_str(&mut con, &["SELECT", "0"]).unwrap();
    run_str(&mut con, &["RPUSH", "{t0}q2", "a", "b"]).unwrap();
    assert!(matches!(popper.join().unwrap(), Ok(Value::Array(_))));
    // Keys with short TTLs expire (actively and on access) and are replayed as DEL.
    std::thread::sleep(Duration::from_millis(400));
    // Every key whose short TTL passed is reaped now (on access), so none is
    // counted here that a loader would drop as expired.
    for db in 0..4 {
        run_str(&mut con, &["SELECT", &db.to_string()]).unwrap();
        for p in ["tmp", "l", "s"] {
            for i in 0..40 {
                let _ = run_str(&mut con, &["EXISTS", &format!("{p}{i}")]);
            }
        }
    }
    // Eviction: DEL in the stream too.
    run_str(&mut con, &["SELECT", "3"]).unwrap();
    for i in 0..300 {
        run_str(&mut con, &["SET", &format!("big{i}"), &"x".repeat(2000)]).unwrap();
    }
    let used: u64 = common::field_of(&mut con, "memory", "used_memory").parse().unwrap();
    run_str(&mut con, &["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]).unwrap();
    run_str(&mut con, &["CONFIG", "SET", "maxmemory", &(used - 200_000).to_string()]).unwrap();
    run_str(&mut con, &["SET", "trigger", "x"]).unwrap();
    run_str(&mut con, &["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    let evicted = common::field_of(&mut con, "stats", "evicted_keys");
    assert!(evicted.parse::<u64>().unwrap() > 0, "nothing was evicted");

    let want = digest(&mut con);
    let want_sizes = dbsizes(&mut con);
    assert!(want_sizes.iter().sum::<i64>() > 100, "{want_sizes:?}");
    // Under `appendfsync always` the replies above left only once on disk:
    // a copy of the directory now holds everything.
    let copy = tempdir("replay-copy");
    copy_dir(&dir.join("appendonlydir"), &copy.join("appendonlydir"));
    drop(con);

    // redis-check-aof accepts it.
    let check = Command::new("redis-check-aof")
        .arg(copy.join("appendonlydir/appendonly.aof.manifest"))
        .output()
        .expect("redis-check-aof");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && out.contains("valid"), "redis-check-aof: {out}");

    // redis-server 7.0 loads it into the same dataset.
    let redis = common::redis_on_aof(&copy);
    let mut rc = redis.client();
    assert_eq!(dbsizes(&mut rc), want_sizes, "redis-server's key counts");
    assert_eq!(digest(&mut rc), want, "redis-server's dataset differs from moonshard's");
    drop(rc);
    drop(redis);

    // moonshard restarts from it (with another shard count) into the same dataset.
    drop(live);
    let again = aof_dir_server(&dir, &["--shards", "3"]);
    let mut con = again.client();
    assert_eq!(dbsizes(&mut con), want_sizes);
    assert_eq!(digest(&mut con), want, "moonshard's restart differs");
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("moonshard-{tag}-{}-{}", std::process::id(), rand_suffix()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn truncated_tail_is_cut_with_aof_load_truncated_and_refused_without() {
    let dir = tempdir("trunc");
    {
        let s = aof_dir_server(&dir, &["--appendfsync", "always"]);
        let mut c = s.client();
        for i in 0..20 {
            run_str(&mut c, &["SET", &format!("k{i}"), "v"]).unwrap();
        }
    }
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    let len = std::fs::metadata(&incr).unwrap().len();
    // Cut the last SET in the middle.
    std::fs::OpenOptions::new().write(true).open(&incr).unwrap().set_len(len - 5).unwrap();
    // aof-load-truncated no: refused.
    let refused = Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .args(["--port", "0", "--appendonly", "yes", "--aof-load-truncated", "no", "--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(msg.contains("Unexpected end of file reading the append only file"), "{msg}");
    // Default (yes): loads the 19 complete commands, cutting the torn one.
    let s = aof_dir_server(&dir, &["--appendfsync", "always"]);
    let mut c = s.client();
    assert_eq!(run_str(&mut c, &["DBSIZE"]), Ok(Value::Int(19)));
    run_str(&mut c, &["SET", "after", "1"]).unwrap();
    drop(c);
    drop(s);
    let s = aof_dir_server(&dir, &[]);
    let mut c = s.client();
    assert_eq!(run_str(&mut c, &["DBSIZE"]), Ok(Value::Int(20)), "writes after the cut are kept");
    // Damage in the middle: refused whatever aof-load-truncated says.
    drop(c);
    drop(s);
    let mut data = std::fs::read(&incr).unwrap();
    let mid = data.len() / 2;
    let at = mid + data[mid..].windows(3).position(|w| w == b"\r\n*").unwrap() + 2;
    data.splice(at..at, b"???\r\n".iter().copied());
    std::fs::write(&incr, data).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .args(["--port", "0", "--appendonly", "yes", "--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a damaged AOF must not load");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("append only file"));
}

/// A Redis 6 AOF is one file in `dir`: an RDB preamble followed by commands
/// (or commands only). Made here from what redis-server 7.0 writes (its base
/// RDB, then its incremental commands, concatenated), then loaded by both
/// servers: each moves it into the AOF directory as the base of a manifest,
/// as Redis 7 upgrades it, and both end with the same dataset.
#[test]
fn redis6_single_file_aof_is_upgraded_and_loaded_like_redis7_does() {
    let flags = ["--appendonly", "yes", "--aof-use-rdb-preamble", "yes", "--enable-debug-command", "yes"];
    let Some(redis) = common::redis_server_with(&flags) else {
        return;
    };
    let mut rc = redis.client();
    let mut rng = Rng(0x5eed_2026_1206);
    // Every type, several databases, long TTLs only (short ones would make
    // the compared datasets depend on when each server loaded them).
    let step = |rc: &mut redis::Connection, rng: &mut Rng| {
        let db = rng.below(3).to_string();
        let k = format!("k{}", rng.below(60));
        let v = format!("v{}", rng.below(1000));
        let cmds: [&[&str]; 9] = [
            &["SET", &k, &v],
            &["SET", &k, &v, "EX", "5000"],
            &["HSET", &format!("h{k}"), &v, &k],
            &["RPUSH", &format!("l{k}"), &v, &k],
            &["SADD", &format!("s{k}"), &v],
            &["ZADD", &format!("z{k}"), &rng.below(100).to_string(), &v],
            &["XADD", &format!("x{k}"), "*", "f", &v],
            &["DEL", &k],
            &["INCR", &format!("n{k}")],
        ];
        let cmd = cmds[rng.below(cmds.len() as u64) as usize];
        run_str(rc, &["SELECT", &db]).unwrap();
        let _ = run_str(rc, cmd);
    };
    for _ in 0..400 {
        step(&mut rc, &mut rng);
    }
    // Written in the base by a rewrite, then more commands in the new incr file.
    run_str(&mut rc, &["BGREWRITEAOF"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::field_of(&mut rc, "persistence", "aof_rewrite_in_progress") != "0"
        || common::field_of(&mut rc, "persistence", "aof_rewrite_scheduled") != "0"
    {
        assert!(Instant::now() < deadline, "rewrite did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..400 {
        step(&mut rc, &mut rng);
    }
    run_str(&mut rc, &["SELECT", "0"]).unwrap();
    let want = digest(&mut rc);
    let want_keys: Vec<i64> = dbsizes(&mut rc);
    let aofdir = redis.dir.as_ref().expect("redis dir").join("appendonlydir");
    let manifest = std::fs::read_to_string(aofdir.join("appendonly.aof.manifest")).unwrap();
    let mut single = Vec::new();
    for line in manifest.lines() {
        let name = line.split_whitespace().nth(1).unwrap();
        single.extend(std::fs::read(aofdir.join(name)).unwrap());
    }
    assert!(single.starts_with(b"REDIS"), "the base is an RDB preamble");
    // Commands only: the form Redis 6 wrote with aof-use-rdb-preamble no.
    let commands_only = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n\
*3\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\nx\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\n"
        .to_vec();
    for (what, file) in [("preamble", single), ("commands", commands_only)] {
        let (ours, theirs) = (tempdir("aof6-ours"), tempdir("aof6-theirs"));
        std::fs::write(ours.join("appendonly.aof"), &file).unwrap();
        std::fs::write(theirs.join("appendonly.aof"), &file).unwrap();
        let r = common::redis_on_aof(&theirs);
        let mut rc2 = r.client();
        let m = aof_dir_server(&ours, &[]);
        let mut mc = m.client();
        let (ds, rs) = (dbsizes(&mut mc), dbsizes(&mut rc2));
        run_str(&mut mc, &["SELECT", "0"]).unwrap();
        run_str(&mut rc2, &["SELECT", "0"]).unwrap();
        assert_eq!(
            digest(&mut mc),
            digest(&mut rc2),
            "{what}: moonshard and redis-server loaded different data ({ds:?} / {rs:?}, want {want_keys:?})"
        );
        if what == "preamble" {
            assert_eq!(ds, want_keys);
            assert_eq!(digest(&mut mc), want, "moonshard's dataset differs from the one that wrote the AOF");
        } else {
            assert_eq!(run_str(&mut mc, &["GET", "a"]), Ok(Value::BulkString(b"2".to_vec())));
        }
        // Both moved the file into the directory under the same manifest.
        assert!(!ours.join("appendonly.aof").exists());
        let ours_manifest = std::fs::read_to_string(ours.join("appendonlydir/appendonly.aof.manifest")).unwrap();
        let theirs_manifest = std::fs::read_to_string(theirs.join("appendonlydir/appendonly.aof.manifest")).unwrap();
        assert_eq!(ours_manifest, theirs_manifest, "{what}");
        // A write after the upgrade survives a restart from the new layout.
        run_str(&mut mc, &["SET", "after-upgrade", "1"]).unwrap();
        drop(mc);
        drop(m);
        let again = aof_dir_server(&ours, &[]);
        let mut ac = again.client();
        assert_eq!(run_str(&mut ac, &["GET", "after-upgrade"]), Ok(Value::BulkString(b"1".to_vec())), "{what}");
        let _ = std::fs::remove_dir_all(&ours);
        let _ = std::fs::remove_dir_all(&theirs);
    }
}
