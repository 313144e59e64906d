//! The per-slot key index in cluster mode: `CLUSTER COUNTKEYSINSLOT` and
//! `GETKEYSINSLOT` after a random mix of writes equal a redis-server
//! cluster node's (the same keys, newest first); and a node that loses a
//! slot to a master with a newer config epoch deletes the keys it still
//! held there, as Redis does (moonshard and redis-server side by side).

#[path = "common/cluster.rs"]
mod cluster_util;
mod common;

use cluster_util::*;
use common::Proc;
use rand::{Rng, SeedableRng};

/// A one-node cluster serving every slot.
fn lone(p: &Proc) {
    assert_eq!(cli(p.port, &["cluster", "addslotsrange", "0", "16383"]).trim(), "OK");
    wait_ok(&[p]);
}

#[test]
fn slot_key_listing_matches_redis_server() {
    if !tools_present() {
        return;
    }
    let m = ms_node(&[]);
    let r = redis_node();
    lone(&m);
    lone(&r);
    let (mut a, mut b) = (m.client(), r.client());
    let tags = ["{u1}", "{u2}", "{cart}", "{x}", "{order:7}", "{q}"];
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut run = |args: Vec<String>| {
        let x = common::run_str(&mut a, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let y = common::run_str(&mut b, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(x, y, "{args:?}");
    };
    let listing = |p: &Proc| {
        let mut out = String::new();
        for t in &tags {
            let slot = cli(p.port, &["cluster", "keyslot", t]).trim().to_string();
            out.push_str(&cli(p.port, &["cluster", "countkeysinslot", &slot]));
            // The same keys (the order differs where Redis re-adds a key
            // that moonshard overwrites in place, e.g. RENAME onto a key).
            let all = cli(p.port, &["cluster", "getkeysinslot", &slot, "1000"]);
            let mut keys: Vec<&str> = all.lines().collect();
            keys.sort();
            out.push_str(&keys.join(" "));
            out.push('\n');
            let some = cli(p.port, &["cluster", "getkeysinslot", &slot, "3"]);
            assert!(some.lines().all(|k| keys.contains(&k)), "{some}");
            out.push_str(&format!("{}\n", some.lines().count()));
        }
        out
    };
    for round in 0..3000 {
        let t = tags[rng.gen_range(0..tags.len())];
        let k = format!("{t}{}", rng.gen_range(0..40));
        let k2 = format!("{t}{}", rng.gen_range(0..40));
        let args: Vec<String> = match rng.gen_range(0..10) {
            0..=2 => vec!["set".into(), k, round.to_string()],
            3 => vec!["del".into(), k, k2],
            4 => vec!["rename".into(), k, k2],
            5 => vec!["lpush".into(), k, "x".into()],
            6 => vec!["unlink".into(), k],
            7 => vec!["getdel".into(), k],
            8 => vec!["sadd".into(), k, round.to_string()],
            _ => vec!["copy".into(), k, k2],
        };
        run(args);
        if round == 1500 {
            assert_eq!(listing(&m), listing(&r));
            run(vec!["flushall".into()]);
        }
    }
    let (x, y) = (listing(&m), listing(&r));
    assert_eq!(x, y);
    assert!(x.lines().any(|l| l.parse::<u32>().is_ok_and(|n| n > 10)), "{x}");
    // An empty slot, and the whole keyspace in the counts.
    assert_eq!(cli(m.port, &["cluster", "countkeysinslot", "0"]), cli(r.port, &["cluster", "countkeysinslot", "0"]));
    assert_eq!(cli(m.port, &["dbsize"]), cli(r.port, &["dbsize"]));
}

#[test]
fn keys_of_a_slot_lost_to_a_newer_epoch_are_deleted() {
    if !tools_present() {
        return;
    }
    let (m, r) = moonshard_and_redis_halves();
    wait_connected(&[&m, &r]);
    let slot_of = |k: &str| cli(m.port, &["cluster", "keyslot", k]).trim().parse::<u32>().unwrap();
    // A tag on each side, with keys; and keys in other slots that stay.
    let tm = (0..).map(|i| format!("{{m{i}}}")).find(|k| slot_of(k) < 8192).unwrap();
    let tr = (0..).map(|i| format!("{{r{i}}}")).find(|k| slot_of(k) >= 8192).unwrap();
    let stay_m = (0..).map(|i| format!("sm{i}")).find(|k| slot_of(k) < 8192 && slot_of(k) != slot_of(&tm)).unwrap();
    let stay_r = (0..).map(|i| format!("sr{i}")).find(|k| slot_of(k) >= 8192 && slot_of(k) != slot_of(&tr)).unwrap();
    for (p, tag, stay) in [(&m, &tm, &stay_m), (&r, &tr, &stay_r)] {
        for i in 0..25 {
            assert_eq!(cli(p.port, &["set", &format!("{tag}{i}"), "v"]).trim(), "OK");
        }
        assert_eq!(cli(p.port, &["set", stay, "v"]).trim(), "OK");
    }
    // Each node takes a newer epoch and claims the other's slot on its own:
    // the other learns it from gossip (or an UPDATE) and gives the slot up.
    let (sm, sr) = (slot_of(&tm).to_string(), slot_of(&tr).to_string());
    let mut watcher = m.client();
    let _: () = redis::cmd("WATCH").arg(format!("{tm}0")).query(&mut watcher).unwrap();
    for (p, slot, owner) in [(&r, &sm, &m), (&m, &sr, &r)] {
        // The newer epoch first: a claim made with the old one would be
        // answered with an UPDATE that gives the slot straight back.
        let bumped = cli(p.port, &["cluster", "bumpepoch"]);
        assert!(bumped.starts_with("BUMPED") || bumped.starts_with("STILL"), "{bumped}");
        assert_eq!(cli(p.port, &["cluster", "setslot", slot, "node", &myid(p)]).trim(), "OK");
        wait_until("the slot to change hands", 15, || {
            cli(owner.port, &["cluster", "countkeysinslot", slot]).trim() == "0"
                && cli(owner.port, &["get", &format!("{}0", if owner.port == m.port { &tm } else { &tr })])
                    .starts_with("MOVED")
        });
    }
    // Both kinds of node dropped the same keys and kept the rest.
    for p in [&m, &r] {
        assert_eq!(cli(p.port, &["dbsize"]).trim(), "1", "port {}", p.port);
    }
    assert_eq!(cli(m.port, &["get", &stay_m]).trim(), "v");
    assert_eq!(cli(r.port, &["get", &stay_r]).trim(), "v");
    // The deletion touched the watched key: the transaction fails.
    let _: () = redis::cmd("MULTI").query(&mut watcher).unwrap();
    let _: () = redis::cmd("PING").query(&mut watcher).unwrap();
    let res: redis::Value = redis::cmd("EXEC").query(&mut watcher).unwrap();
    assert_eq!(res, redis::Value::Nil);
}
