//! Streams on moonshard alone: blocking XREAD/XREADGROUP over streams on
//! several shards, wake-ups, RESP3 shapes, key routing, a large stream
//! against a model, and memory per entry.
//!
//! Where a test needs a client to be blocked before the next step it waits
//! `SETTLE` first; the assertions are on the data, never on durations.
mod common;

use redis::Value;
use std::thread::{self, JoinHandle};
use std::time::Duration;

const SETTLE: Duration = Duration::from_millis(250);

fn run(c: &mut redis::Connection, cmd: &str) -> Result<Value, String> {
    let a: Vec<&str> = cmd.split(' ').collect();
    common::run_str(c, &a)
}

fn q(c: &mut redis::Connection, cmd: &str) -> String {
    common::show(run(c, cmd))
}

fn blocked(s: &common::Proc, cmd: &str) -> JoinHandle<String> {
    let mut c = s.client();
    let cmd = cmd.to_string();
    thread::spawn(move || q(&mut c, &cmd))
}

#[test]
fn xread_blocks_across_shards_and_wakes_on_first_entry() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let keys = common::keys_on_different_shards("st", 4, 4);
    let ks = keys.join(" ");
    // `$` on missing keys means "after 0-0".
    let h = blocked(&s, &format!("XREAD BLOCK 0 STREAMS {ks} $ $ $ $"));
    thread::sleep(SETTLE);
    assert_eq!(q(&mut c, &format!("XADD {} 5-1 f v", keys[2])), "5-1");
    assert_eq!(h.join().unwrap(), format!("[[{},[[5-1,[f,v]]]]]", keys[2]));

    // `$` after existing entries: only what comes next.
    let h = blocked(&s, &format!("XREAD COUNT 10 BLOCK 0 STREAMS {ks} $ $ $ $"));
    thread::sleep(SETTLE);
    q(&mut c, &format!("XADD {} 6-0 a b", keys[3]));
    assert_eq!(h.join().unwrap(), format!("[[{},[[6-0,[a,b]]]]]", keys[3]));

    // Explicit IDs with data already there answer at once, from every shard.
    let all = q(&mut c, &format!("XREAD STREAMS {ks} 0 0 0 0"));
    assert_eq!(all, format!("[[{},[[5-1,[f,v]]]],[{},[[6-0,[a,b]]]]]", keys[2], keys[3]));

    // A timeout gives the null array.
    assert_eq!(q(&mut c, &format!("XREAD BLOCK 50 STREAMS {ks} $ $ $ $")), "nil");
    // Without BLOCK nothing waits.
    assert_eq!(q(&mut c, &format!("XREAD STREAMS {ks} $ $ $ $")), "nil");
}

#[test]
fn one_xadd_wakes_every_reader() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let keys = common::keys_on_different_shards("st", 4, 2);
    let hs: Vec<_> = (0..5)
        .map(|i| {
            let order =
                if i % 2 == 0 { format!("{} {}", keys[0], keys[1]) } else { format!("{} {}", keys[1], keys[0]) };
            blocked(&s, &format!("XREAD BLOCK 0 STREAMS {order} $ $"))
        })
        .collect();
    thread::sleep(SETTLE);
    q(&mut c, &format!("XADD {} 1-0 k v", keys[1]));
    for h in hs {
        assert_eq!(h.join().unwrap(), format!("[[{},[[1-0,[k,v]]]]]", keys[1]));
    }
}

#[test]
fn xreadgroup_blocking_delivers_each_entry_once() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let keys = common::keys_on_different_shards("st", 4, 2);
    for k in &keys {
        assert_eq!(q(&mut c, &format!("XGROUP CREATE {k} g $ MKSTREAM")), "OK");
    }
    let ks = keys.join(" ");
    let hs: Vec<_> =
        (0..3).map(|i| blocked(&s, &format!("XREADGROUP GROUP g c{i} COUNT 1 BLOCK 0 STREAMS {ks} > >"))).collect();
    thread::sleep(SETTLE);
    for (i, k) in [&keys[0], &keys[1], &keys[0]].iter().enumerate() {
        q(&mut c, &format!("XADD {k} {}-0 n {i}", i + 1));
        thread::sleep(Duration::from_millis(50));
    }
    let mut got: Vec<String> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    got.sort();
    let mut want = vec![
        format!("[[{},[[1-0,[n,0]]]]]", keys[0]),
        format!("[[{},[[2-0,[n,1]]]]]", keys[1]),
        format!("[[{},[[3-0,[n,2]]]]]", keys[0]),
    ];
    want.sort();
    assert_eq!(got, want);
    // Every delivery is pending, owned by the consumer that got it.
    let p0 = q(&mut c, &format!("XPENDING {} g", keys[0]));
    assert!(p0.starts_with("[2,1-0,3-0,"), "{p0}");
    assert!(q(&mut c, &format!("XPENDING {} g", keys[1])).starts_with("[1,2-0,2-0,"));
}

#[test]
fn blocked_xreadgroup_fails_when_group_goes_away() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut c = s.client();
    q(&mut c, "XGROUP CREATE gs g $ MKSTREAM");
    let h = blocked(&s, "XREADGROUP GROUP g c BLOCK 0 STREAMS gs >");
    thread::sleep(SETTLE);
    assert_eq!(q(&mut c, "XGROUP DESTROY gs g"), "1");
    let r = h.join().unwrap();
    assert!(r.starts_with("NOGROUP"), "{r}");

    q(&mut c, "XGROUP CREATE gs g $");
    let h = blocked(&s, "XREADGROUP GROUP g c BLOCK 0 STREAMS gs >");
    thread::sleep(SETTLE);
    q(&mut c, "DEL gs");
    let r = h.join().unwrap();
    assert!(r.starts_with("UNBLOCKED"), "{r}");
}

#[test]
fn xread_keeps_waiting_past_other_types_and_other_keys() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let h = blocked(&s, "XREAD BLOCK 0 STREAMS {w}a {w}b $ $");
    thread::sleep(SETTLE);
    // Writes that give the reader nothing: another key, another type.
    q(&mut c, "XADD {w}other 1-0 f v");
    q(&mut c, "SET {w}a str");
    q(&mut c, "DEL {w}a");
    thread::sleep(SETTLE);
    q(&mut c, "XADD {w}b 3-0 f v");
    assert_eq!(h.join().unwrap(), "[[{w}b,[[3-0,[f,v]]]]]");
}

#[test]
fn resp3_xread_is_a_map_and_blocking_timeout_is_null() {
    let s = common::moonshard(&["--shards", "2"]);
    let out = s.raw(
        b"HELLO 3\r\nXADD s 1-0 f v\r\nXREAD STREAMS s 0\r\nXREAD BLOCK 20 STREAMS s $\r\nXRANGE s - +\r\n",
        Duration::from_millis(400),
    );
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"), "{text}");
    assert!(text.contains("\r\n_\r\n*1\r\n*2\r\n$3\r\n1-0"), "{text}");
}

#[test]
fn type_scan_and_key_routing() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    for i in 0..20 {
        q(&mut c, &format!("XADD xs{i} * f v"));
        q(&mut c, &format!("SET str{i} v"));
    }
    assert_eq!(q(&mut c, "TYPE xs3"), "stream");
    assert_eq!(q(&mut c, "OBJECT ENCODING xs3"), "stream");
    let mut cursor = "0".to_string();
    let mut found = 0;
    loop {
        let r = run(&mut c, &format!("SCAN {cursor} TYPE stream COUNT 100")).unwrap();
        let Value::Array(parts) = r else { panic!() };
        let Value::BulkString(cur) = &parts[0] else { panic!() };
        let Value::Array(ks) = &parts[1] else { panic!() };
        for k in ks {
            let Value::BulkString(k) = k else { panic!() };
            assert!(k.starts_with(b"xs"));
            found += 1;
        }
        cursor = String::from_utf8_lossy(cur).into_owned();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(found, 20);
    assert_eq!(
        q(&mut c, "COMMAND GETKEYS XREAD COUNT 2 STREAMS a b c 0 0 0"),
        "[a,b,c]",
        "XREAD's keys come after STREAMS"
    );
    assert_eq!(q(&mut c, "COMMAND GETKEYS XREADGROUP GROUP g c STREAMS a b > >"), "[a,b]");
    // XREAD reads streams of different slots (and shards) in one call.
    assert!(q(&mut c, "XREAD STREAMS xs1 xs2 0 0").starts_with("[[xs1"));
}

#[test]
fn large_stream_against_model() {
    let s = common::moonshard(&["--shards", "1"]);
    let mut c = s.client();
    let mut model: Vec<(u64, u64)> = Vec::new();
    let mut p = redis::pipe();
    for i in 1..=3000u64 {
        let ms = i / 4 + 1;
        let seq = i % 4;
        p.cmd("XADD").arg("big").arg(format!("{ms}-{seq}")).arg("n").arg(i);
        model.push((ms, seq));
    }
    let _: () = p.query(&mut c).unwrap();
    // Delete every seventh entry, then trim exactly.
    let mut p = redis::pipe();
    for (ms, seq) in model.iter().step_by(7) {
        p.cmd("XDEL").arg("big").arg(format!("{ms}-{seq}"));
    }
    let _: () = p.query(&mut c).unwrap();
    let mut live: Vec<(u64, u64)> = model.iter().enumerate().filter(|(i, _)| i % 7 != 0).map(|(_, x)| *x).collect();
    assert_eq!(q(&mut c, "XLEN big"), live.len().to_string());
    assert_eq!(q(&mut c, "XTRIM big MAXLEN 2000"), (live.len() - 2000).to_string());
    live.drain(..live.len() - 2000);
    let all: Vec<(String, Vec<String>)> = redis::cmd("XRANGE").arg("big").arg("-").arg("+").query(&mut c).unwrap();
    assert_eq!(all.len(), 2000);
    for ((id, _), (ms, seq)) in all.iter().zip(&live) {
        assert_eq!(id, &format!("{ms}-{seq}"));
    }
    let rev: Vec<(String, Vec<String>)> =
        redis::cmd("XREVRANGE").arg("big").arg("+").arg("-").arg("COUNT").arg(5).query(&mut c).unwrap();
    let want: Vec<String> = live.iter().rev().take(5).map(|(m, s)| format!("{m}-{s}")).collect();
    assert_eq!(rev.into_iter().map(|e| e.0).collect::<Vec<_>>(), want);
}

/// One million `XADD s * f v` entries; prints bytes per entry for moonshard
/// and (when present) redis-server. Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn memory_per_entry() {
    fn used(c: &mut redis::Connection) -> (u64, u64) {
        let info: String = redis::cmd("INFO").arg("memory").query(c).unwrap();
        let get = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:")).map(|v| v.trim().parse::<u64>().unwrap_or(0)))
                .unwrap_or(0)
        };
        (get("used_memory"), get("used_memory_rss"))
    }
    fn fill(c: &mut redis::Connection) -> (u64, u64) {
        let before = used(c);
        for _ in 0..100 {
            let mut p = redis::pipe();
            for _ in 0..10_000 {
                p.cmd("XADD").arg("s").arg("*").arg("f").arg("v").ignore();
            }
            let _: () = p.query(c).unwrap();
        }
        let after = used(c);
        (after.0.saturating_sub(before.0), after.1.saturating_sub(before.1))
    }
    let s = common::moonshard(&["--shards", "1"]);
    let (u, r) = fill(&mut s.client());
    println!("moonshard: {:.1} B/entry used_memory, {:.1} B/entry RSS", u as f64 / 1e6, r as f64 / 1e6);
    if let Some(redis) = common::redis_server() {
        let (u, r) = fill(&mut redis.client());
        println!("redis-server: {:.1} B/entry used_memory, {:.1} B/entry RSS", u as f64 / 1e6, r as f64 / 1e6);
    }
}
