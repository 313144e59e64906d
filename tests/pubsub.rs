//! Pub/sub through real clients: delivery and order across threads, shard
//! channels, keyspace notifications, cleanup, and the output buffer limit.

mod common;
mod raw_resp;

use raw_resp::Raw;
use std::time::{Duration, Instant};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn numsub(con: &mut redis::Connection, ch: &str) -> i64 {
    let v: (String, i64) = redis::cmd("PUBSUB").arg("NUMSUB").arg(ch).query(con).unwrap();
    v.1
}

#[test]
fn subscribe_publish_through_the_redis_crate() {
    let s = common::moonshard(&["--shards", "4"]);
    let client = redis::Client::open(s.url()).unwrap();
    let mut sub_con = client.get_connection().unwrap();
    let mut ps = sub_con.as_pubsub();
    ps.subscribe("news").unwrap();
    ps.psubscribe("w*").unwrap();
    ps.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut con = s.client();
    let n: i64 = redis::cmd("PUBLISH").arg("news").arg("hello").query(&mut con).unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("PUBLISH").arg("weather").arg("sunny").query(&mut con).unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("PUBLISH").arg("nobody").arg("x").query(&mut con).unwrap();
    assert_eq!(n, 0);
    let m = ps.get_message().unwrap();
    assert_eq!((m.get_channel_name(), m.get_payload::<String>().unwrap()), ("news", "hello".to_string()));
    let m = ps.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "weather");
    assert_eq!(m.get_pattern::<String>().unwrap(), "w*");
    assert_eq!(m.get_payload::<String>().unwrap(), "sunny");
    assert_eq!(numsub(&mut con, "news"), 1);
    let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut con).unwrap();
    assert_eq!(numpat, 1);
    drop(ps);
    drop(sub_con);
    wait_until("the subscriber to be forgotten", || numsub(&mut con, "news") == 0);
    let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut con).unwrap();
    assert_eq!(numpat, 0);
}

/// Several publishers on their own threads; every subscriber gets every
/// message, and each publisher's messages in the order it sent them.
#[test]
fn per_publisher_order_is_preserved() {
    let s = common::moonshard(&["--shards", "4"]);
    let publishers = 4;
    let per = 300;
    let mut subs: Vec<Raw> = (0..3).map(|_| Raw::connect(s.port)).collect();
    for (i, sub) in subs.iter_mut().enumerate() {
        if i == 2 {
            sub.call(&["HELLO", "3"]);
        }
        sub.call(&["SUBSCRIBE", "feed"]);
    }
    let handles: Vec<_> = (0..publishers)
        .map(|p| {
            let url = s.url();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                for i in 0..per {
                    let n: i64 = redis::cmd("PUBLISH").arg("feed").arg(format!("{p}:{i}")).query(&mut con).unwrap();
                    assert_eq!(n, 3);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for sub in &mut subs {
        let mut next = vec![0; publishers];
        for _ in 0..publishers * per {
            let m = sub.reply();
            let payload = m.rsplit("\r\n").nth(1).unwrap_or_default().to_string();
            let (p, i) = payload.split_once(':').expect("payload");
            let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[p], "publisher {p} out of order");
            next[p] += 1;
        }
        assert_eq!(next, vec![per; publishers]);
    }
}

#[test]
fn shard_channels_and_crossslot() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut sub = Raw::connect(s.port);
    let e = sub.call(&["SSUBSCRIBE", "a", "b"]);
    assert_eq!(e, "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert!(sub.call_n(&["SSUBSCRIBE", "{u}a", "{u}b"], 2).contains("ssubscribe"));
    let mut con = s.client();
    let n: i64 = redis::cmd("SPUBLISH").arg("{u}b").arg("hi").query(&mut con).unwrap();
    assert_eq!(n, 1);
    // A plain PUBLISH does not reach shard subscribers.
    let n: i64 = redis::cmd("PUBLISH").arg("{u}b").arg("hi").query(&mut con).unwrap();
    assert_eq!(n, 0);
    assert_eq!(sub.reply(), "*3\r\n$8\r\nsmessage\r\n$4\r\n{u}b\r\n$2\r\nhi\r\n");
    let chans: Vec<String> = redis::cmd("PUBSUB").arg("SHARDCHANNELS").query(&mut con).unwrap();
    assert_eq!(chans.len(), 2);
    assert_eq!(sub.call(&["SUNSUBSCRIBE", "a", "b"]), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
}

#[test]
fn reset_and_client_list_show_subscriptions() {
    let s = common::moonshard(&[]);
    let mut sub = Raw::connect(s.port);
    sub.call_n(&["SUBSCRIBE", "a", "b"], 2);
    sub.call(&["PSUBSCRIBE", "p*"]);
    let mut con = s.client();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert!(list.contains("sub=2 psub=1"), "{list}");
    assert!(list.lines().any(|l| l.contains("flags=P")), "{list}");
    assert_eq!(sub.call(&["RESET"]), "+RESET\r\n");
    assert_eq!(sub.call(&["GET", "x"]), "$-1\r\n");
    assert_eq!(numsub(&mut con, "a"), 0);
}

#[test]
fn keyspace_notifications_for_expiry_and_writes() {
    let s = common::moonshard(&["--shards", "2"]);
    let mut con = s.client();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("notify-keyspace-events").arg("Ex$").query(&mut con).unwrap();
    let mut sub = Raw::connect(s.port);
    sub.call(&["SUBSCRIBE", "__keyevent@0__:expired", "__keyevent@0__:set"]);
    sub.reply();
    let _: () = redis::cmd("SET").arg("t1").arg("v").arg("PX").arg(20).query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("t2").arg("v").arg("PX").arg(20).query(&mut con).unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(sub.reply());
    }
    let text = got.join("");
    // Both SETs, then both keys expire in the background.
    assert_eq!(text.matches("__keyevent@0__:set").count(), 2, "{text}");
    assert_eq!(text.matches("__keyevent@0__:expired").count(), 2, "{text}");
    assert!(text.contains("$2\r\nt1\r\n") && text.contains("$2\r\nt2\r\n"), "{text}");
    // Generic events are not selected.
    let _: i64 = redis::cmd("DEL").arg("nothing").query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let _: i64 = redis::cmd("DEL").arg("k").query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("k2").arg("v").query(&mut con).unwrap();
    assert!(sub.reply().contains("$1\r\nk\r\n"));
    assert!(sub.reply().contains("$2\r\nk2\r\n"));
}

/// A subscriber that never reads is disconnected by the pubsub output
/// limit, and the server does not keep what it could not send.
#[test]
fn slow_subscriber_is_disconnected() {
    let mut s = common::moonshard(&["--shards", "2"]);
    let mut con = s.client();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 1mb 512kb 1")
        .query(&mut con)
        .unwrap();
    let limits: (String, String) =
        redis::cmd("CONFIG").arg("GET").arg("client-output-buffer-limit").query(&mut con).unwrap();
    assert!(limits.1.ends_with("pubsub 1048576 524288 1"), "{limits:?}");
    let mut sub = Raw::connect(s.port);
    sub.call(&["SUBSCRIBE", "firehose"]);
    let payload = "x".repeat(64 * 1024);
    let mut dropped_at = None;
    // 3000 * 64 KiB = 192 MiB if nothing were dropped.
    for i in 0..3000 {
        let n: i64 = redis::cmd("PUBLISH").arg("firehose").arg(&payload).query(&mut con).unwrap();
        if n == 0 {
            dropped_at = Some(i);
            break;
        }
    }
    let dropped_at = dropped_at.expect("the slow subscriber was never disconnected");
    eprintln!("slow subscriber dropped after {dropped_at} messages");
    assert!(dropped_at < 1000, "disconnected only after {dropped_at} messages");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert!(!list.contains("sub=1"), "{list}");
    // The subscriber sees the end of its stream after what was in flight.
    assert!(sub.drain_to_eof(Duration::from_secs(10)), "the slow subscriber's connection stayed open");
    let rss_kb = std::fs::read_to_string(format!("/proc/{}/status", s.child.id()))
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()));
    if let Some(kb) = rss_kb {
        assert!(kb < 100 * 1024, "server RSS grew to {kb} kB");
    }
    assert!(s.alive());
    // Everything still works for others.
    let mut sub2 = Raw::connect(s.port);
    sub2.call(&["SUBSCRIBE", "firehose"]);
    let n: i64 = redis::cmd("PUBLISH").arg("firehose").arg("small").query(&mut con).unwrap();
    assert_eq!(n, 1);
    assert!(sub2.reply().contains("small"));
}
