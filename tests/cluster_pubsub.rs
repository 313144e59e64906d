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
    form(&refs);
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
    form(&refs);
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
    assign_halves(&m, &r);
    for other in [&r, &replica] {
        meet_with_bus(&m, other);
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

/// The `sunsubscribe` a server sends when it drops a shard subscription
/// itself, RESP2 or RESP3 (`left`: the shard subscriptions left).
fn sunsub(resp3: bool, channel: &str, left: usize) -> String {
    let kind = if resp3 { '>' } else { '*' };
    format!("{kind}3\r\n$12\r\nsunsubscribe\r\n${}\r\n{channel}\r\n:{left}\r\n", channel.len())
}

/// Shard subscribers of one node: a RESP2 client on two channels of the
/// slot (given in reverse byte order) and a plain channel, a RESP3 client
/// and a RESP2 client on the one channel.
struct ShardSubs {
    two: Raw,
    resp3: Raw,
    one: Raw,
}

fn shard_subs(p: &Proc, chan: &str) -> ShardSubs {
    let tagged = format!("{{{chan}}}x");
    let mut two = Raw::connect(p);
    two.send(&format!("SSUBSCRIBE {tagged} {chan}"));
    two.expect(&format!("${}\r\n{chan}\r\n:2\r\n", chan.len()), 5);
    two.send("SUBSCRIBE plain");
    two.expect("$5\r\nplain\r\n:1\r\n", 5);
    let mut resp3 = Raw::connect(p);
    resp3.send("HELLO 3");
    resp3.expect("proto", 5);
    resp3.send(&format!("SSUBSCRIBE {chan}"));
    resp3.expect(&format!(">3\r\n$10\r\nssubscribe\r\n${}\r\n{chan}\r\n:1\r\n", chan.len()), 5);
    let one = subscriber(p, &format!("SSUBSCRIBE {chan}"));
    ShardSubs { two, resp3, one }
}

/// What every node, moonshard or redis-server, tells its subscribers when
/// it stops serving their channel's slot, and the state they are left in.
fn expect_dropped(node: &Proc, subs: &mut ShardSubs, chan: &str) {
    let tagged = format!("{{{chan}}}x");
    // Slot by slot, channels in byte order, each with the count left.
    let both = format!("{}{}", sunsub(false, chan, 1), sunsub(false, &tagged, 0));
    assert_eq!(subs.two.expect(&both, 10), both, "on port {}", node.port);
    assert_eq!(subs.resp3.expect(&sunsub(true, chan, 0), 10), sunsub(true, chan, 0));
    assert_eq!(subs.one.expect(&sunsub(false, chan, 0), 10), sunsub(false, chan, 0));
    // Still subscribed to a plain channel: PING answers in subscribed form.
    subs.two.send("PING");
    assert_eq!(subs.two.expect("\r\n\r\n", 5), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    // Nothing left: out of subscribed mode, no shard subscription counted.
    subs.one.send("PING");
    assert_eq!(subs.one.expect("\r\n", 5), "+PONG\r\n");
    subs.one.send("CLIENT INFO");
    let info = subs.one.expect("\n\r\n", 5);
    assert!(info.contains(" ssub=0 ") && info.contains(" sub=0 "), "{info}");
    assert!(cli(node.port, &["pubsub", "shardchannels", "*ch*"]).trim().is_empty());
    assert_eq!(cli(node.port, &["pubsub", "shardnumsub", chan]), format!("{chan}\n0\n"));
}

/// A slot moved as `redis-cli --cluster reshard` moves it (no keys).
fn move_slot(slot: &str, from: &Proc, to: &Proc) {
    let (from_id, to_id) = (myid(from), myid(to));
    assert_eq!(cli(to.port, &["cluster", "setslot", slot, "importing", &from_id]).trim(), "OK");
    assert_eq!(cli(from.port, &["cluster", "setslot", slot, "migrating", &to_id]).trim(), "OK");
    assert_eq!(cli(to.port, &["cluster", "setslot", slot, "node", &to_id]).trim(), "OK");
    assert_eq!(cli(from.port, &["cluster", "setslot", slot, "node", &to_id]).trim(), "OK");
}

/// Redis 7.0 drops the shard subscriptions of a slot a node stops serving
/// and tells each subscriber with a `sunsubscribe` push: a moonshard node
/// and a redis-server node, each losing a slot to the other in a
/// resharding, send the same bytes to the same kinds of subscribers.
#[test]
fn shard_subscribers_are_dropped_when_their_slot_moves_as_on_redis_server() {
    if !tools_present() {
        return;
    }
    let (m, r) = moonshard_and_redis_halves();
    wait_connected(&[&m, &r]);
    let nodes = [&m, &r];
    // Channel names of one length, so both sides are held to the same bytes.
    let chan_on = |p: &Proc| (100..).map(|i| format!("ch{i}")).find(|c| owner_of(&nodes, c).port == p.port).unwrap();
    let (chan_m, chan_r) = (chan_on(&m), chan_on(&r));
    let mut subs_m = shard_subs(&m, &chan_m);
    let mut subs_r = shard_subs(&r, &chan_r);
    // A subscriber of another slot of the losing node keeps its channel.
    let other_m = (100..).map(|i| format!("ot{i}")).find(|c| {
        owner_of(&nodes, c).port == m.port
            && cli(m.port, &["cluster", "keyslot", c]) != cli(m.port, &["cluster", "keyslot", &chan_m])
    });
    let other_m = other_m.unwrap();
    let mut stays = subscriber(&m, &format!("SSUBSCRIBE {other_m}"));
    let slot = |c: &str| cli(m.port, &["cluster", "keyslot", c]).trim().to_string();
    move_slot(&slot(&chan_m), &m, &r);
    move_slot(&slot(&chan_r), &r, &m);
    expect_dropped(&m, &mut subs_m, &chan_m);
    expect_dropped(&r, &mut subs_r, &chan_r);
    // Both nodes agree on the new owners; the moved channels now live there.
    wait_until("both nodes to agree on the moved slots", 15, || {
        owner_of(&[&m], &chan_r).port == m.port && owner_of(&[&r], &chan_m).port == r.port
    });
    assert_eq!(cli(r.port, &["spublish", &chan_m, "after"]).trim(), "0");
    assert!(subs_m.one.quiet(200).is_empty());
    assert_eq!(cli(m.port, &["spublish", &other_m, "still"]).trim(), "1");
    stays.expect(&smessage(&other_m, "still"), 5);
    assert_eq!(cli(m.port, &["pubsub", "shardchannels"]).trim(), other_m);
}

/// The same after a manual failover: the old master (moonshard in one
/// shard, redis-server in the other) drops its shard subscribers when its
/// replica takes the slots, while the subscribers of the promoted replica
/// keep theirs (Redis removes the channels only on nodes that served the
/// slot's old owner: the promoted replica is a master by then).
#[test]
fn shard_subscribers_of_an_old_master_are_dropped_after_a_failover() {
    if !tools_present() {
        return;
    }
    let (m, r) = moonshard_and_redis_halves();
    let (r_rep, m_rep) = (redis_node(), ms_node(&[]));
    for other in [&r_rep, &m_rep] {
        meet_with_bus(&m, other);
    }
    let all = [&m, &r, &r_rep, &m_rep];
    wait_connected(&all);
    // A redis-server replica of the moonshard master and the other way round.
    for (rep, master) in [(&r_rep, &m), (&m_rep, &r)] {
        assert_eq!(cli(rep.port, &["cluster", "replicate", &myid(master)]).trim(), "OK");
    }
    wait_ok(&all);
    for rep in [&r_rep, &m_rep] {
        wait_until("the replica to sync", 20, || {
            cli(rep.port, &["info", "replication"]).contains("master_link_status:up")
        });
    }
    let masters = [&m, &r];
    let chan_on = |p: &Proc| (100..).map(|i| format!("ch{i}")).find(|c| owner_of(&masters, c).port == p.port).unwrap();
    let (chan_m, chan_r) = (chan_on(&m), chan_on(&r));
    let mut subs_m = shard_subs(&m, &chan_m);
    let mut subs_r = shard_subs(&r, &chan_r);
    // Replicas serve their master's shard channels.
    let mut on_r_rep = subscriber(&r_rep, &format!("SSUBSCRIBE {chan_m}"));
    let mut on_m_rep = subscriber(&m_rep, &format!("SSUBSCRIBE {chan_r}"));
    // One failover after the other: two elections at once may ask for the
    // same epoch, and a master votes once per epoch.
    for (rep, old, subs, chan) in [(&r_rep, &m, &mut subs_m, &chan_m), (&m_rep, &r, &mut subs_r, &chan_r)] {
        assert_eq!(cli(rep.port, &["cluster", "failover"]).trim(), "OK");
        expect_dropped(old, subs, chan);
        wait_until("the old master to follow its replica", 20, || cli(old.port, &["role"]).starts_with("slave"));
    }
    // The promoted replicas kept their subscribers.
    assert_eq!(cli(r_rep.port, &["spublish", &chan_m, "new master"]).trim(), "1");
    on_r_rep.expect(&smessage(&chan_m, "new master"), 5);
    assert_eq!(cli(m_rep.port, &["spublish", &chan_r, "new master"]).trim(), "1");
    on_m_rep.expect(&smessage(&chan_r, "new master"), 5);
    assert!(subs_m.resp3.quiet(200).is_empty() && subs_r.resp3.quiet(200).is_empty());
}

/// With the cluster down, shard channels follow `cluster-allow-pubsubshard-when-down` (default
/// yes), not `cluster-allow-reads-when-down`: the same replies from moonshard and redis-server.
#[test]
fn shard_channels_when_the_cluster_is_down_as_redis_server() {
    if !tools_present() {
        return;
    }
    let chan = (0..).map(|i| format!("ch{i}")).find(|c| slot(c) <= 100).unwrap();
    let run = |p: &Proc| {
        // Slots 0-100 only: the node serves them, but the cluster is not fully covered.
        assert_eq!(cli(p.port, &["cluster", "addslotsrange", "0", "100"]).trim(), "OK");
        wait_until("cluster_state:fail", 20, || cli(p.port, &["cluster", "info"]).contains("cluster_state:fail"));
        let mut out = vec![cli(p.port, &["spublish", &chan, "x"]), cli(p.port, &["get", &chan])];
        let mut s = Raw::connect(p);
        s.send(&format!("SSUBSCRIBE {chan}"));
        out.push(s.expect(":1\r\n", 5));
        assert_eq!(cli(p.port, &["config", "set", "cluster-allow-pubsubshard-when-down", "no"]).trim(), "OK");
        // moonshard reads the setting in its cluster cron (100 ms).
        wait_until("the setting applies", 10, || cli(p.port, &["spublish", &chan, "x"]).starts_with("CLUSTERDOWN"));
        out.push(cli(p.port, &["spublish", &chan, "x"]));
        let mut s = Raw::connect(p);
        s.send(&format!("SSUBSCRIBE {chan}"));
        out.push(s.expect("\r\n", 5));
        out
    };
    let ours = run(&ms_node(&[]));
    let theirs = run(&redis_node());
    assert_eq!(ours, theirs);
    assert_eq!(ours[0].trim(), "0", "{ours:?}");
    assert!(ours[1].starts_with("CLUSTERDOWN"), "{ours:?}");
}
