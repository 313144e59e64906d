//! Scripts on a cluster node: a `redis.call` on a key of a slot the node
//! does not serve, on keys of several slots, or while the cluster is down
//! fails with Redis 7.0's texts. Differential: one moonshard node and one
//! redis-server node share a cluster, and the same situations (with the
//! key names swapped) are set up on both.

#[path = "common/cluster.rs"]
mod cluster_util;
mod common;

use cluster_util::*;
use common::Proc;

/// The reply with the script's SHA (which depends on the key names) and
/// the node addresses set aside.
fn norm(s: String) -> String {
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(at) = rest.find("script: ") {
        out.push_str(&rest[..at + 8]);
        rest = &rest[at + 8..];
        if rest.len() >= 40 && rest[..40].bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push_str("SHA");
            rest = &rest[40..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn script_calls_on_keys_elsewhere_fail_as_on_redis_server() {
    if !tools_present() {
        return;
    }
    let (m, r) = moonshard_and_redis_halves();
    let slot_of = |k: &str| cli(m.port, &["cluster", "keyslot", k]).trim().parse::<u32>().unwrap();
    // Per node: a local key, another local key of another slot (on the same
    // internal shard of moonshard: hash tags next to each other), a remote key.
    let local = |p: &Proc, prefix: &str| {
        let mine = |k: &String| (slot_of(k) < 8192) == (p.port == m.port);
        let a = (0..).map(|i| format!("{prefix}{i}")).find(|k| mine(k)).unwrap();
        let b = (0..)
            .map(|i| format!("{prefix}x{i}"))
            .find(|k| mine(k) && slot_of(k) != slot_of(&a) && slot_of(k).abs_diff(slot_of(&a)) < 200)
            .unwrap_or_else(|| {
                (0..).map(|i| format!("{prefix}y{i}")).find(|k| mine(k) && slot_of(k) != slot_of(&a)).unwrap()
            });
        (a, b)
    };
    let (ma, mb) = local(&m, "m");
    let (ra, rb) = local(&r, "r");
    for (p, k) in [(&m, &ma), (&m, &mb), (&r, &ra), (&r, &rb)] {
        assert_eq!(cli(p.port, &["set", k, "v"]).trim(), "OK");
    }
    // Cases: (script, keys) with LOCAL, LOCAL2, REMOTE to fill in per node.
    let cases: &[(&str, &[&str])] = &[
        ("return redis.call('get','REMOTE')", &[]),
        ("return redis.pcall('get','REMOTE')", &[]),
        ("local ok, e = pcall(redis.call, 'set', 'REMOTE', 'x') return tostring(ok)", &[]),
        ("return redis.call('get','LOCAL')", &[]),
        ("return redis.call('get',KEYS[1])", &["REMOTE"]),
        ("return redis.call('get',KEYS[1])", &["LOCAL"]),
        ("#!lua\nreturn redis.call('get','REMOTE')", &[]),
        ("#!lua flags=no-writes\nreturn redis.call('get','REMOTE')", &[]),
        ("#!lua flags=allow-cross-slot-keys\nreturn redis.call('get','REMOTE')", &[]),
        ("return redis.call('publish','chan','m')", &[]),
        ("redis.call('set','LOCAL','w') return redis.call('get','REMOTE')", &[]),
        ("return redis.call('get','LOCAL')", &[]),
    ];
    let run_on = |p: &Proc, (l, l2, rem): (&str, &str, &str), script: &str, keys: &[&str]| {
        let fill = |s: &str| s.replace("LOCAL2", l2).replace("LOCAL", l).replace("REMOTE", rem);
        let script = fill(script);
        let mut args = vec!["eval".to_string(), script, keys.len().to_string()];
        args.extend(keys.iter().map(|k| fill(k)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        norm(cli(p.port, &args)).replace(&addr(&m), "ADDR").replace(&addr(&r), "ADDR")
    };
    let both = |script: &str, keys: &[&str]| {
        let a = run_on(&m, (&ma, &mb, &ra), script, keys);
        let b = run_on(&r, (&ra, &rb, &ma), script, keys);
        (a, b)
    };
    for (script, keys) in cases {
        let (a, b) = both(script, keys);
        // MOVED names the slot, which differs: compare its shape.
        if a.starts_with("MOVED") {
            assert!(
                b.starts_with("MOVED") && a.trim_end().ends_with("ADDR") && b.trim_end().ends_with("ADDR"),
                "{a} / {b}"
            );
            continue;
        }
        assert_eq!(a, b, "{script}");
    }
    assert!(both(cases[0].0, cases[0].1).0.contains("Script attempted to access a non local key in a cluster node"));
    // Several slots in one call (both local): refused like a non-local key.
    let (a, b) = (
        run_on(&m, (&ma, &mb, &ra), "return redis.call('mget','LOCAL','LOCAL2')", &[]),
        run_on(&r, (&ra, &rb, &ma), "return redis.call('mget','LOCAL','LOCAL2')", &[]),
    );
    assert_eq!(a, b);
    assert!(a.contains("non local key"), "{a}");

    // The cluster down: each node gives up a slot it serves (no keys).
    let spare = |p: &Proc| {
        (if p.port == m.port { 100..8191 } else { 8292..16383 })
            .find(|s| ![&ma, &mb, &ra, &rb].iter().any(|k| slot_of(k) == *s))
    };
    for p in [&m, &r] {
        let s = spare(p).unwrap().to_string();
        assert_eq!(cli(p.port, &["cluster", "delslots", &s]).trim(), "OK");
    }
    for p in [&m, &r] {
        wait_until("cluster_state:fail", 15, || cli(p.port, &["cluster", "info"]).contains("cluster_state:fail"));
    }
    let down: &[(&str, &[&str])] = &[
        ("return redis.call('get','LOCAL')", &[]),
        ("return redis.pcall('set','LOCAL','x')", &[]),
        ("return redis.call('publish','chan','m')", &[]),
        ("return redis.call('get',KEYS[1])", &["LOCAL"]),
    ];
    for (script, keys) in down {
        let (a, b) = both(script, keys);
        assert_eq!(a, b, "{script}");
    }
    assert!(both(down[0].0, down[0].1).0.contains("Script attempted to execute a command while the cluster is down"));
    for p in [&m, &r] {
        assert_eq!(cli(p.port, &["config", "set", "cluster-allow-reads-when-down", "yes"]).trim(), "OK");
    }
    // The cron refreshes the setting ten times a second.
    std::thread::sleep(std::time::Duration::from_millis(300));
    for (script, keys) in down {
        let (a, b) = both(script, keys);
        assert_eq!(a, b, "{script}");
    }
    let (a, _) = both(down[1].0, down[1].1);
    assert!(a.contains("Script attempted to execute a write command while the cluster is down and readonly"), "{a}");
}
