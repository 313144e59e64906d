//! Blocking pops: timeouts, wake-ups, FIFO order, keys on several shards,
//! clients that go away while blocked.
//!
//! Where a test needs a client to be blocked before the next step it waits
//! `SETTLE` first; the assertions are on the data, never on durations.
mod common;

use redis::Value;
use std::io::Write;
use std::thread::{self, JoinHandle};
use std::time::Duration;

const SETTLE: Duration = Duration::from_millis(250);

fn args(cmd: &str) -> Vec<String> {
    cmd.split(' ').map(String::from).collect()
}

fn run(c: &mut redis::Connection, cmd: &str) -> Result<Value, String> {
    let a = args(cmd);
    let refs: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    common::run_str(c, &refs)
}

fn q(c: &mut redis::Connection, cmd: &str) -> String {
    common::show(run(c, cmd))
}

/// Runs `cmd` on a fresh connection in a thread; the reply comes back rendered.
fn blocked(s: &common::Proc, cmd: &str) -> JoinHandle<String> {
    let mut c = s.client();
    let cmd = cmd.to_string();
    thread::spawn(move || q(&mut c, &cmd))
}

/// Two keys, without hash tags, owned by different shards of `n`.
fn keys_on_two_shards(n: usize) -> (String, String) {
    let mut k = common::keys_on_different_shards("q", n, 2).into_iter();
    (k.next().unwrap_or_default(), k.next().unwrap_or_default())
}

#[test]
fn timeouts_and_argument_errors() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    assert_eq!(q(&mut c, "BLPOP q 0.05"), "nil");
    assert_eq!(q(&mut c, "BRPOP q1 q2 0.05"), "nil");
    assert_eq!(q(&mut c, "BLMOVE {t}a {t}b LEFT RIGHT 0.05"), "nil");
    assert_eq!(q(&mut c, "BRPOPLPUSH {t}a {t}b 0.05"), "nil");
    assert_eq!(q(&mut c, "BLMPOP 0.05 2 a b LEFT"), "nil");
    assert_eq!(q(&mut c, "BZPOPMIN z 0.05"), "nil");
    assert_eq!(q(&mut c, "BZMPOP 0.05 1 z MIN"), "nil");
    assert_eq!(q(&mut c, "BLPOP q abc"), "ERR timeout is not a float or out of range");
    assert_eq!(q(&mut c, "BLPOP q -1"), "ERR timeout is negative");
    assert_eq!(q(&mut c, "BLPOP q inf"), "ERR timeout is negative");
    assert_eq!(q(&mut c, "BLMOVE {t}a {t}b UP RIGHT 0"), "ERR syntax error");
    assert_eq!(q(&mut c, "BLMOVE a b LEFT RIGHT 0"), "CROSSSLOT Keys in request don't hash to the same slot");
    assert_eq!(q(&mut c, "BLMPOP x 0 a LEFT"), "ERR numkeys should be greater than 0");
    assert_eq!(q(&mut c, "BLMPOP x 1 a LEFT"), "ERR timeout is not a float or out of range");
    assert_eq!(q(&mut c, "BLMPOP 0 1 a MIDDLE"), "ERR syntax error");
    assert_eq!(q(&mut c, "BLMPOP 0 1 a LEFT COUNT 0"), "ERR count should be greater than 0");
    assert_eq!(q(&mut c, "BZMPOP 0 1 a LEFT"), "ERR syntax error");
    q(&mut c, "SET s v");
    assert_eq!(q(&mut c, "BLPOP s 0"), "WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(q(&mut c, "BZPOPMAX s 0"), "WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(q(&mut c, "BZMPOP 0 1 s MAX"), "WRONGTYPE Operation against a key holding the wrong kind of value");
    // The connection still works after a timeout.
    assert_eq!(q(&mut c, "RPUSH q a b"), "2");
    assert_eq!(q(&mut c, "BRPOP nokey q 0"), "[q,b]");
    assert_eq!(q(&mut c, "BLPOP q 0"), "[q,a]");
}

#[test]
fn woken_by_pushes_of_other_clients() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let pop = blocked(&s, "BLPOP q 10");
    let mv = blocked(&s, "BLMOVE {t}src {t}dst RIGHT LEFT 10");
    let mp = blocked(&s, "BLMPOP 10 2 m1 m2 RIGHT COUNT 2");
    thread::sleep(SETTLE);
    q(&mut c, "RPUSH q x");
    q(&mut c, "RPUSH {t}src 1 2");
    q(&mut c, "RPUSH m2 a b c");
    assert_eq!(pop.join().unwrap(), "[q,x]");
    assert_eq!(mv.join().unwrap(), "2");
    assert_eq!(mp.join().unwrap(), "[m2,[c,b]]");
    assert_eq!(q(&mut c, "EXISTS q"), "0");
    assert_eq!(q(&mut c, "LRANGE {t}src 0 -1"), "[1]");
    assert_eq!(q(&mut c, "LRANGE {t}dst 0 -1"), "[2]");
    assert_eq!(q(&mut c, "LRANGE m2 0 -1"), "[a]");
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(blocked(&s, "BLPOP q 10"));
        thread::sleep(SETTLE);
    }
    // One push of three: each waiter gets one, in arrival order.
    q(&mut c, "RPUSH q 1 2 3");
    let got: Vec<String> = waiting.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, ["[q,1]", "[q,2]", "[q,3]"]);
    // One element at a time: the earliest waiter gets it, the next stays blocked.
    let first = blocked(&s, "BRPOP q 10");
    thread::sleep(SETTLE);
    let second = blocked(&s, "BRPOP q 10");
    thread::sleep(SETTLE);
    q(&mut c, "RPUSH q a");
    assert_eq!(first.join().unwrap(), "[q,a]");
    q(&mut c, "RPUSH q b");
    assert_eq!(second.join().unwrap(), "[q,b]");
}

#[test]
fn a_waiter_for_another_type_does_not_stall_the_queue() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let z = blocked(&s, "BZPOPMIN k 1");
    thread::sleep(SETTLE);
    let l = blocked(&s, "BLPOP k 10");
    thread::sleep(SETTLE);
    q(&mut c, "RPUSH k x");
    assert_eq!(l.join().unwrap(), "[k,x]");
    assert_eq!(z.join().unwrap(), "nil");
}

#[test]
fn keys_on_different_shards_pop_exactly_one_element() {
    let s = common::moonshard(&["--shards", "4"]);
    let (a, b) = keys_on_two_shards(4);
    let mut c = s.client();
    // The first key to get an element wins.
    let w = blocked(&s, &format!("BLPOP {a} {b} 10"));
    thread::sleep(SETTLE);
    q(&mut c, &format!("RPUSH {b} x"));
    assert_eq!(w.join().unwrap(), format!("[{b},x]"));
    // Many clients blocked on both keys while two clients push to both at
    // once: every client gets exactly one element, none is lost or doubled.
    let n = 8;
    let waiting: Vec<_> = (0..n).map(|_| blocked(&s, &format!("BLPOP {a} {b} 10"))).collect();
    thread::sleep(SETTLE);
    let pushers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|key| {
            let mut pc = s.client();
            thread::spawn(move || {
                for i in 0..n {
                    q(&mut pc, &format!("RPUSH {key} {key}-{i}"));
                }
            })
        })
        .collect();
    pushers.into_iter().for_each(|p| p.join().unwrap());
    let got: Vec<String> = waiting.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(got.iter().all(|r| r.starts_with('[')), "every waiter was served: {got:?}");
    let mut popped: Vec<String> =
        got.iter().map(|r| r.trim_matches(['[', ']']).split(',').nth(1).unwrap().to_string()).collect();
    popped.sort();
    popped.dedup();
    assert_eq!(popped.len(), n, "no element went to two clients");
    let left: i64 = [&a, &b].iter().map(|k| q(&mut c, &format!("LLEN {k}")).parse::<i64>().unwrap()).sum();
    assert_eq!(left as usize, n, "2n pushed, n popped");
}

#[test]
fn a_client_that_disconnects_while_blocked_leaves_no_waiter() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    raw.write_all(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n").unwrap();
    thread::sleep(SETTLE);
    drop(raw);
    thread::sleep(SETTLE);
    q(&mut c, "RPUSH q x");
    assert_eq!(q(&mut c, "LRANGE q 0 -1"), "[x]", "the element stays in the list");
    // The queue still works for the next client.
    let w = blocked(&s, "BLPOP q2 10");
    thread::sleep(SETTLE);
    q(&mut c, "RPUSH q2 y");
    assert_eq!(w.join().unwrap(), "[q2,y]");
}

#[test]
fn blocked_on_a_zset_is_woken_by_zadd() {
    let s = common::moonshard(&["--shards", "4"]);
    let mut c = s.client();
    if q(&mut c, "ZADD probe 1 a").contains("not implemented") {
        eprintln!("*** SKIPPED: ZADD not implemented on this branch; zset wake-up not tested ***");
        return;
    }
    let w = blocked(&s, "BZPOPMIN z1 z2 10");
    let m = blocked(&s, "BZMPOP 10 1 z3 MAX COUNT 5");
    thread::sleep(SETTLE);
    q(&mut c, "ZADD z2 1 a 2 b");
    q(&mut c, "ZADD z3 1 a 2 b");
    assert_eq!(w.join().unwrap(), "[z2,a,1]");
    assert_eq!(m.join().unwrap(), "[z3,[[b,2],[a,1]]]");
    assert_eq!(q(&mut c, "ZCARD z2"), "1");
}
