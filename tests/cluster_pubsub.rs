//! Pub/sub in cluster mode: PUBLISH is broadcast over the cluster bus
//! (clusterMsg type PUBLISH) and reaches subscribers on every node;
//! SPUBLISH runs on the shard channel's slot owner (MOVED elsewhere) and
//! reaches the subscribers there. Tested on moonshard-only clusters and on
//! mixed clusters with redis-server 7.0 nodes, both directions.

#[path = "common/cluster.rs"]
mod cluster_util;
mod common;

use cluster_util::*;
use common::Proc;

/// A subscriber on `p` to `what` (`SUBSCRIBE news`, ...), confirmed.
fn subscriber(p: &Proc, what: &str) -> Raw {
    let mut s = Raw::connect(p);
    s.send(what);
    let kind = what.split(' ').next().unwrap().to_lowercase();
    s.expect(&format!("${}\r\n{kind}\r\n", kind.len()), 5);
    s.expect(":1\r\n", 5);
    s
}

#[test]
fn publish_reaches_every_node_of_a_moonshard_cluster() {
    if !tools_present() {
        return;
    }
    let nodes = [ms_node(&[]), ms_node(&[]), ms_node(&[])];
    let refs: Vec<&Proc> = nodes.iter().collect();
    create(&refs);
    wait_ok(&refs);
    wait_connected(&refs);
    let mut s0 = subscriber(&nodes[0], "SUBSCRIBE news");
    let mut s1 = subscriber(&nodes[1], "SUBSCRIBE news");
    let mut s2 = subscriber(&nodes[2], "PSUBSCRIBE ne*");
    let mut other = subscriber(&nodes[1], "SUBSCRIBE sports");
    // The reply counts this node's receivers only, as Redis's.
    assert_eq!(cli(nodes[0].port, &["publish", "news", "hello"]).trim(), "1");
    s0.expect(&message("news", "hello"), 5);
    s1.expect(&message("news", "hello"), 5);
    s2.expect(&pmessage("ne*", "news", "hello"), 5);
    assert_eq!(cli(nodes[2].port, &["publish", "news", "second one"]).trim(), "1");
    s0.expect(&message("news", "second one"), 5);
    s1.expect(&message("news", "second one"), 5);
    s2.expect(&pmessage("ne*", "news", "second one"), 5);
    // Binary payloads, an empty message, a large one.
    let big = "x".repeat(100_000);
    assert_eq!(cli(nodes[1].port, &["publish", "news", ""]).trim(), "1");
    assert_eq!(cli(nodes[1].port, &["publish", "news", &big]).trim(), "1");
    for s in [&mut s0, &mut s1] {
        s.expect(&message("news", ""), 5);
        s.expect(&message("news", &big), 5);
    }
    assert!(other.quiet(200).is_empty());
    // One PUBLISH message per peer, counted as Redis counts them.
    assert!(info_field(&nodes[0], "cluster_stats_messages_publish_sent") >= 2);
    assert!(info_field(&nodes[0], "cluster_stats_messages_publish_received") >= 3);

    // SPUBLISH: the shard channel's slot owner serves it; the others redirect.
    let owner = owner_of(&refs, "orders");
    let elsewhere = refs.iter().find(|n| n.port != owner.port).unwrap();
    let slot = cli(owner.port, &["cluster", "keyslot", "orders"]).trim().to_string();
    let moved = format!("MOVED {slot} 127.0.0.1:{}", owner.port);
    assert_eq!(cli(elsewhere.port, &["spublish", "orders", "x"]).trim(), moved);
    let mut wrong = Raw::connect(elsewhere);
    wrong.send("SSUBSCRIBE orders");
    wrong.expect(&format!("-{moved}\r\n"), 5);
    let mut ss = subscriber(owner, "SSUBSCRIBE orders");
    let mut plain = subscriber(elsewhere, "SUBSCRIBE orders");
    assert_eq!(cli(owner.port, &["spublish", "orders", "o1"]).trim(), "1");
    ss.expect(&smessage("orders", "o1"), 5);
    // A shard message is not a PUBLISH: other nodes' channel subscribers see nothing.
    assert!(plain.quiet(300).is_empty());
    // No replicas: nobody else serves the slot, no PUBLISHSHARD is sent.
    assert_eq!(info_field(owner, "cluster_stats_messages_publishshard_sent"), 0);
}

#[test]
fn publish_crosses_between_moonshard_and_redis_server_nodes() {
    if !tools_present() {
        return;
    }
    let r = redis_node();
    let (a, b) = (ms_node(&[]), ms_node(&[]));
    let refs = [&r, &a, &b];
    create(&refs);
    wait_ok(&refs);
    wait_connected(&refs);
    let mut on_r = subscriber(&r, "SUBSCRIBE news");
    let mut on_a = subscriber(&a, "SUBSCRIBE news");
    let mut pat_b = subscriber(&b, "PSUBSCRIBE n?ws");
    // Published on moonshard: the redis-server node's subscriber gets it.
    assert_eq!(cli(a.port, &["publish", "news", "from moonshard"]).trim(), "1");
    on_r.expect(&message("news", "from moonshard"), 5);
    on_a.expect(&message("news", "from moonshard"), 5);
    pat_b.expect(&pmessage("n?ws", "news", "from moonshard"), 5);
    // Published on redis-server: the moonshard nodes' subscribers get it.
    let big = "y".repeat(100_000);
    assert_eq!(cli(r.port, &["publish", "news", "from redis"]).trim(), "1");
    assert_eq!(cli(r.port, &["publish", "news", &big]).trim(), "1");
    for s in [&mut on_a, &mut on_r] {
        s.expect(&message("news", "from redis"), 5);
        s.expect(&message("news", &big), 5);
    }
    pat_b.expect(&pmessage("n?ws", "news", "from redis"), 5);
    pat_b.expect(&pmessage("n?ws", "news", &big), 5);
    assert!(info_field(&r, "cluster_stats_messages_publish_received") >= 1);
    assert!(info_field(&a, "cluster_stats_messages_publish_received") >= 2);

    // SPUBLISH redirects the same way on both kinds of node.
    let chan_r = (0..).map(|i| format!("c{i}")).find(|c| owner_of(&refs, c).port == r.port).unwrap();
    let chan_a = (0..).map(|i| format!("c{i}")).find(|c| owner_of(&refs, c).port == a.port).unwrap();
    let from_a = cli(a.port, &["spublish", &chan_r, "m"]);
    let from_r = cli(r.port, &["spublish", &chan_a, "m"]);
    let slot = |c: &str| cli(r.port, &["cluster", "keyslot", c]).trim().to_string();
    assert_eq!(from_a.trim(), format!("MOVED {} 127.0.0.1:{}", slot(&chan_r), r.port));
    assert_eq!(from_r.trim(), format!("MOVED {} 127.0.0.1:{}", slot(&chan_a), a.port));
    let mut ss_a = subscriber(&a, &format!("SSUBSCRIBE {chan_a}"));
    let mut ss_r = subscriber(&r, &format!("SSUBSCRIBE {chan_r}"));
    assert_eq!(cli(a.port, &["spublish", &chan_a, "m1"]).trim(), "1");
    assert_eq!(cli(r.port, &["spublish", &chan_r, "m2"]).trim(), "1");
    ss_a.expect(&smessage(&chan_a, "m1"), 5);
    ss_r.expect(&smessage(&chan_r, "m2"), 5);
}

/// A redis-server replica of a moonshard master: SPUBLISH on the master
/// sends PUBLISHSHARD to the replica, whose shard subscribers get it; an
/// SPUBLISH the replica serves comes back to the master's subscribers.
#[test]
fn shard_messages_reach_a_redis_server_replica_of_a_moonshard_master() {
    if !tools_present() {
        return;
    }
    let m = ms_node(&[]);
    let r = redis_node();
    let replica = redis_node();
    assert_eq!(cli(m.port, &["cluster", "addslotsrange", "0", "8191"]).trim(), "OK");
    assert_eq!(cli(r.port, &["cluster", "addslotsrange", "8192", "16383"]).trim(), "OK");
    assert_eq!(cli(m.port, &["cluster", "set-config-epoch", "1"]).trim(), "OK");
    assert_eq!(cli(r.port, &["cluster", "set-config-epoch", "2"]).trim(), "OK");
    for other in [&r, &replica] {
        let bus = cli(other.port, &["cluster", "nodes"]);
        let bus = bus.split('@').nth(1).and_then(|s| s.split(' ').next()).unwrap().to_string();
        assert_eq!(cli(m.port, &["cluster", "meet", "127.0.0.1", &other.port.to_string(), &bus]).trim(), "OK");
    }
    wait_connected(&[&m, &r, &replica]);
    let mid = myid(&m);
    assert_eq!(cli(replica.port, &["cluster", "replicate", &mid]).trim(), "OK");
    wait_until("the replica to be known as one", 15, || {
        cli(m.port, &["cluster", "nodes"])
            .lines()
            .any(|l| l.starts_with(&myid(&replica)) && l.contains(&format!("slave {mid}")))
    });
    wait_ok(&[&m, &r, &replica]);
    let chan = (0..).map(|i| format!("s{i}")).find(|c| owner_of(&[&m, &r], c).port == m.port).unwrap();
    let mut on_replica = subscriber(&replica, &format!("SSUBSCRIBE {chan}"));
    let mut on_master = subscriber(&m, &format!("SSUBSCRIBE {chan}"));
    // Published on the moonshard master: its subscriber and the replica's.
    assert_eq!(cli(m.port, &["spublish", &chan, "from master"]).trim(), "1");
    on_master.expect(&smessage(&chan, "from master"), 5);
    on_replica.expect(&smessage(&chan, "from master"), 5);
    assert!(info_field(&m, "cluster_stats_messages_publishshard_sent") >= 1);
    // Published on the redis-server replica (it serves shard channels of
    // its master's slots): PUBLISHSHARD back to the moonshard master.
    assert_eq!(cli(replica.port, &["spublish", &chan, "from replica"]).trim(), "1");
    on_replica.expect(&smessage(&chan, "from replica"), 5);
    on_master.expect(&smessage(&chan, "from replica"), 5);
    assert!(info_field(&m, "cluster_stats_messages_publishshard_received") >= 1);
    // The other master's node gets no shard message of this shard.
    let mut on_r = Raw::connect(&r);
    on_r.send(&format!("SSUBSCRIBE {chan}"));
    assert!(on_r.expect("MOVED", 5).contains("MOVED"));
}
