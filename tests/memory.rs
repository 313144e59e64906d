//! maxmemory: eviction policies keep memory under the limit under a load that
//! writes twice the limit; noeviction refuses writes and keeps reads; the
//! OOM text is Redis's.

mod common;

use std::time::{Duration, Instant};

const MB: u64 = 1024 * 1024;

fn info(con: &mut redis::Connection, section: &str) -> String {
    match common::run_str(con, &["INFO", section]) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(redis::Value::VerbatimString { text, .. }) => text,
        other => panic!("INFO {section}: {other:?}"),
    }
}

fn field(con: &mut redis::Connection, section: &str, name: &str) -> String {
    let text = info(con, section);
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim_end().to_string())
        .unwrap_or_else(|| panic!("no {name} in INFO {section}:\n{text}"))
}

fn num(con: &mut redis::Connection, section: &str, name: &str) -> u64 {
    field(con, section, name).parse().unwrap()
}

fn used(con: &mut redis::Connection) -> u64 {
    num(con, "memory", "used_memory")
}

/// SETs `count` keys `prefix{i}` of `size` bytes in pipelines of 100.
fn load(con: &mut redis::Connection, prefix: &str, count: usize, size: usize, ex: Option<u64>) {
    let value = vec![b'x'; size];
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        let mut p = redis::pipe();
        for i in chunk {
            let c = p.cmd("SET").arg(format!("{prefix}{i}")).arg(&value[..]);
            if let Some(ex) = ex {
                c.arg("EX").arg(ex + *i as u64);
            }
        }
        let replies: Vec<redis::Value> = p.query(con).expect("pipeline");
        for r in replies {
            assert_eq!(r, redis::Value::Okay, "SET {prefix}");
        }
    }
}

fn exists(con: &mut redis::Connection, key: &str) -> bool {
    common::run_str(con, &["EXISTS", key]) == Ok(redis::Value::Int(1))
}

/// Waits (bounded) for the memory cron to finish an eviction a command started.
fn settle(con: &mut redis::Connection, max: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let u = used(con);
        if u <= max || Instant::now() > deadline {
            return u;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn info_memory_fields() {
    let s = common::moonshard(&["--shards", "2", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lfu"]);
    let mut con = s.client();
    let before = used(&mut con);
    assert!(before > 0, "used_memory is counted");
    load(&mut con, "k", 1000, 1000, None);
    let after = used(&mut con);
    // 1000 values of 1000 bytes: at least that much more is in use.
    assert!(after >= before + 1_000_000, "used_memory {before} -> {after}");
    assert!(after < before + 4_000_000, "used_memory {before} -> {after}: accounting far off");
    assert_eq!(field(&mut con, "memory", "maxmemory"), (64 * MB).to_string());
    assert_eq!(field(&mut con, "memory", "maxmemory_human"), "64.00M");
    assert_eq!(field(&mut con, "memory", "maxmemory_policy"), "allkeys-lfu");
    assert!(field(&mut con, "memory", "used_memory_human").ends_with('M'));
    assert!(num(&mut con, "memory", "used_memory_peak") >= after);
    let ratio: f64 = field(&mut con, "memory", "mem_fragmentation_ratio").parse().unwrap();
    assert!(ratio > 0.0);
    assert_eq!(num(&mut con, "stats", "evicted_keys"), 0);
    // Deleting gives the memory back to the count.
    common::run_str(&mut con, &["FLUSHALL"]).unwrap();
    let flushed = used(&mut con);
    assert!(flushed < after - 900_000, "after FLUSHALL used_memory {after} -> {flushed}");
}

#[test]
fn noeviction_refuses_writes_and_serves_reads_like_redis() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else {
        return;
    };
    d.check(&["SET", "a", "1"]).unwrap();
    d.check(&["RPUSH", "l", "x", "y"]).unwrap();
    // Any server uses more than one byte: every denyoom command is refused.
    d.check(&["CONFIG", "SET", "maxmemory", "1"]).unwrap();
    let oom = d.check(&["SET", "b", "2"]).unwrap_err();
    assert_eq!(oom, "OOM command not allowed when used memory > 'maxmemory'.");
    for args in [
        &["INCR", "a"][..],
        &["APPEND", "a", "x"],
        &["RPUSH", "l", "z"],
        &["MSET", "x", "1", "y", "2"],
        &["SADD", "s", "m"],
        &["HSET", "h", "f", "v"],
    ] {
        assert!(d.check(args).is_err(), "{args:?} must be refused");
    }
    // Reads and commands that only free memory keep working.
    d.check(&["GET", "a"]).unwrap();
    d.check(&["LRANGE", "l", "0", "-1"]).unwrap();
    d.check(&["EXISTS", "a", "b"]).unwrap();
    d.check(&["LPOP", "l"]).unwrap();
    d.check(&["DEL", "a"]).unwrap();
    d.check(&["EXPIRE", "l", "100"]).unwrap();
    d.check(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    d.check(&["SET", "b", "2"]).unwrap();
    d.check(&["GET", "b"]).unwrap();
    // Refusals are rejected calls and OOM errors, as Redis counts them.
    let stats = info(&mut d.a, "errorstats");
    assert!(stats.contains("errorstat_OOM:count=7"), "{stats}");
    let cmdstats = info(&mut d.a, "commandstats");
    assert!(cmdstats.lines().any(|l| l.starts_with("cmdstat_set:") && l.contains("rejected_calls=1")), "{cmdstats}");
}

#[test]
fn noeviction_at_a_real_limit() {
    let s = common::moonshard(&["--shards", "4", "--maxmemory", "20mb"]);
    let mut con = s.client();
    let value = vec![b'v'; 10_000];
    let mut stored = 0;
    let mut refused = None;
    for i in 0..4000 {
        match common::run(&mut con, &[b"SET", format!("k{i}").as_bytes(), &value]) {
            Ok(_) => stored = i + 1,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(refused.as_deref(), Some("OOM command not allowed when used memory > 'maxmemory'."));
    // It stopped near the limit, not early.
    assert!(stored > 1000, "only {stored} keys of 10 KB fit under 20 MB");
    assert!(used(&mut con) <= 21 * MB);
    // Every stored key reads back; nothing was evicted.
    for i in (0..stored).step_by(97) {
        let v = common::run(&mut con, &[b"GET", format!("k{i}").as_bytes()]).unwrap();
        assert_eq!(v, redis::Value::BulkString(value.clone()));
    }
    assert_eq!(common::run_str(&mut con, &["DBSIZE"]), Ok(redis::Value::Int(stored as i64)));
    assert_eq!(num(&mut con, "stats", "evicted_keys"), 0);
}

/// The acceptance load: writes twice the limit; memory stays under it.
fn twice_the_limit(policy: &str) {
    let limit = 20 * MB;
    let s = common::moonshard(&["--shards", "4", "--maxmemory", "20mb", "--maxmemory-policy", policy]);
    let mut con = s.client();
    let mut worst = 0;
    // 4000 values of 10 KB: 40 MB written, checked after every 400 keys.
    for round in 0..10 {
        load(&mut con, &format!("r{round}:"), 400, 10_000, Some(100_000));
        worst = worst.max(used(&mut con));
    }
    let settled = settle(&mut con, limit);
    // The peak is tracked by the allocator counter itself, so it covers moments no INFO saw.
    worst = worst.max(num(&mut con, "memory", "used_memory_peak"));
    // Slack: per-thread counts publish every 64 KB, and one command may overshoot before the cron catches up.
    assert!(worst <= limit + 2 * MB, "{policy}: used_memory reached {worst} over a limit of {limit}");
    assert!(settled <= limit, "{policy}: used_memory {settled} after the load");
    // The eviction cron may still be at work: the count and DBSIZE are read
    // until no eviction happened between them (a loaded CI machine showed
    // 5 keys evicted between the two reads).
    let (mut evicted, mut keys) = (0, 0);
    for _ in 0..100 {
        let before = num(&mut con, "stats", "evicted_keys");
        keys = match common::run_str(&mut con, &["DBSIZE"]) {
            Ok(redis::Value::Int(n)) => n as u64,
            other => panic!("{other:?}"),
        };
        evicted = num(&mut con, "stats", "evicted_keys");
        if before == evicted {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let rss = num(&mut con, "memory", "used_memory_rss");
    eprintln!(
        "{policy}: limit {limit}, peak seen {worst}, settled {settled}, rss {rss}, {evicted} evicted, {keys} kept"
    );
    assert!(evicted >= 1500, "{policy}: only {evicted} evictions");
    assert_eq!(keys + evicted, 4000, "{policy}: every key is either stored or counted as evicted");
    // The server keeps answering, and the newest keys are there.
    assert_eq!(common::run_str(&mut con, &["PING"]), Ok(redis::Value::SimpleString("PONG".into())));
    assert!(exists(&mut con, "r9:399"), "{policy}: the last key written was evicted");
}

#[test]
fn allkeys_lru_under_twice_the_limit() {
    twice_the_limit("allkeys-lru");
}

#[test]
fn other_policies_under_twice_the_limit() {
    for policy in ["allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"] {
        twice_the_limit(policy);
    }
}

#[test]
fn volatile_policies_spare_persistent_keys_and_fail_when_only_those_remain() {
    let s = common::moonshard(&["--shards", "4", "--maxmemory-policy", "volatile-lru"]);
    let mut con = s.client();
    load(&mut con, "p", 300, 10_000, None);
    load(&mut con, "v", 200, 10_000, Some(1000));
    let u = used(&mut con);
    // Room for about half the volatile keys.
    let max = u - 1_000_000;
    common::run_str(&mut con, &["CONFIG", "SET", "maxmemory", &max.to_string()]).unwrap();
    let r = common::run_str(&mut con, &["SET", "trigger", "x"]);
    let _ = settle(&mut con, max);
    for i in 0..300 {
        assert!(exists(&mut con, &format!("p{i}")), "persistent key p{i} was evicted");
    }
    let volatile_left = (0..200).filter(|i| exists(&mut con, &format!("v{i}"))).count();
    assert!(volatile_left < 200, "nothing evicted (SET gave {r:?})");
    // Below what the persistent keys need: every volatile key goes, then writes fail.
    let max = u - 3_000_000;
    common::run_str(&mut con, &["CONFIG", "SET", "maxmemory", &max.to_string()]).unwrap();
    // A write that starts eviction may still run while eviction is within its
    // time budget (as in Redis); once nothing is left to evict, writes fail.
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = common::run_str(&mut con, &["SET", "trigger2", "x"]);
        if r.is_err() || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(r, Err("OOM command not allowed when used memory > 'maxmemory'.".to_string()));
    assert_eq!((0..200).filter(|i| exists(&mut con, &format!("v{i}"))).count(), 0);
    assert_eq!(common::run_str(&mut con, &["GET", "p0"]).map(|v| v != redis::Value::Nil), Ok(true));
}

#[test]
fn volatile_ttl_evicts_the_soonest_expiring() {
    let s = common::moonshard(&["--shards", "4", "--maxmemory-policy", "volatile-ttl", "--maxmemory-samples", "10"]);
    let mut con = s.client();
    load(&mut con, "p", 100, 10_000, None);
    // v{i} expires at now + 1000 + i seconds: v0 first.
    load(&mut con, "v", 200, 10_000, Some(1000));
    let u = used(&mut con);
    let max = u - 1_000_000;
    common::run_str(&mut con, &["CONFIG", "SET", "maxmemory", &max.to_string()]).unwrap();
    common::run_str(&mut con, &["SET", "trigger", "x"]).unwrap();
    assert!(settle(&mut con, max) <= max);
    // Every command evicts while memory is over the limit (INFO too, as in
    // Redis): lift the limit before counting.
    common::run_str(&mut con, &["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    let gone: Vec<usize> = (0..200).filter(|i| !exists(&mut con, &format!("v{i}"))).collect();
    assert!(gone.len() >= 80, "only {} evicted", gone.len());
    // Sampling approximates the order: the soonest-expiring half goes first
    // (at least 90% of it, or of what was evicted), the latest quarter last.
    let early = gone.iter().filter(|&&i| i < 100).count();
    let late = gone.iter().filter(|&&i| i >= 150).count();
    assert!(early * 10 >= gone.len().min(100) * 9, "evicted {gone:?}: the soonest-expiring half should go first");
    assert!(late * 10 <= gone.len(), "evicted {gone:?}: the latest-expiring keys should stay");
    assert!((0..100).all(|i| exists(&mut con, &format!("p{i}"))));
    assert_eq!(num(&mut con, "stats", "evicted_keys"), gone.len() as u64);
}

#[test]
fn lru_and_lfu_keep_the_keys_in_use() {
    // LFU: keys read many times outlive keys written once.
    let s = common::moonshard(&["--shards", "4", "--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lfu"]);
    let mut con = s.client();
    load(&mut con, "hot", 100, 10_000, None);
    for _ in 0..30 {
        let mut p = redis::pipe();
        for i in 0..100 {
            p.cmd("GET").arg(format!("hot{i}")).ignore();
        }
        let () = p.query(&mut con).unwrap();
    }
    load(&mut con, "cold", 3000, 10_000, None);
    settle(&mut con, 20 * MB);
    let hot_left = (0..100).filter(|i| exists(&mut con, &format!("hot{i}"))).count();
    assert!(hot_left >= 95, "LFU kept only {hot_left} of 100 hot keys");

    // LRU (one-second clock, as Redis's): keys read after a pause outlive the ones left idle.
    let s = common::moonshard(&["--shards", "4", "--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut con = s.client();
    load(&mut con, "old", 1000, 10_000, None);
    std::thread::sleep(Duration::from_millis(2100));
    for i in 0..100 {
        common::run_str(&mut con, &["GET", &format!("old{i}")]).unwrap();
    }
    load(&mut con, "new", 1500, 10_000, None);
    settle(&mut con, 20 * MB);
    let used_left = (0..100).filter(|i| exists(&mut con, &format!("old{i}"))).count();
    let idle_left = (100..1000).filter(|i| exists(&mut con, &format!("old{i}"))).count();
    assert!(used_left >= 95, "LRU kept only {used_left} of 100 recently read keys");
    assert!(idle_left < 600, "LRU kept {idle_left} of 900 idle keys");
}

/// After a FLUSHALL of a large dataset the freed memory goes back to the
/// system within seconds (redis-server's jemalloc does it by decay; an
/// allocator that keeps its free pages would hold the dataset's RSS for good).
#[test]
fn rss_falls_after_flushall() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut con = s.client();
    let base = num(&mut con, "memory", "used_memory_rss");
    // 40,000 values of 2 KB: about 80 MB.
    load(&mut con, "big", 40_000, 2048, None);
    let full = num(&mut con, "memory", "used_memory_rss");
    assert!(full > base + 60 * MB, "RSS {base} -> {full} after loading 80 MB");
    common::run_str(&mut con, &["FLUSHALL"]).unwrap();
    // Idle meanwhile: requests would make the allocator work, and its own
    // upkeep on that path would purge too.
    std::thread::sleep(Duration::from_secs(4));
    let rss = num(&mut con, "memory", "used_memory_rss");
    assert!(rss < base + 20 * MB, "RSS {base} -> {full} -> {rss}: not returned 4 s after FLUSHALL");
}
