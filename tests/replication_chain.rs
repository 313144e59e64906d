//! Chained replication with redis-server 7.0 in the chain: a replica serves
//! replicas of its own, passing its master's stream on byte for byte, so
//! every node of the chain has the same replication ID and offset. A
//! sub-replica whose link drops continues from the middle node's backlog,
//! and after the middle node is promoted (REPLICAOF NO ONE) its replicas
//! continue its history through `master_replid2` (PSYNC2), without a full
//! sync. Datasets compared with DEBUG DIGEST.

mod common;
use common::info_num as num;
use common::wait_until;

use common::{field_of, q, repl_moonshard, repl_redis, run_str};

/// Writes over several types, databases and a transaction.
fn load(c: &mut redis::Connection, tag: &str, n: usize) {
    for i in 0..n {
        let k = format!("{tag}:{}", i % 41);
        let args: Vec<String> = match i % 7 {
            0 => vec!["SET".into(), k, i.to_string()],
            1 => vec!["RPUSH".into(), format!("l:{k}"), i.to_string()],
            2 => vec!["HSET".into(), format!("h:{k}"), format!("f{}", i % 7), i.to_string()],
            3 => vec!["ZADD".into(), format!("z:{k}"), i.to_string(), format!("m{}", i % 11)],
            4 => vec!["SADD".into(), format!("s:{k}"), i.to_string()],
            5 => vec!["SET".into(), format!("ttl:{k}"), i.to_string(), "EX".into(), "1000".into()],
            _ => vec!["INCRBY".into(), format!("n:{k}"), i.to_string()],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(run_str(c, &args).is_ok());
        if i % 50 == 0 {
            for cmd in ["SELECT 1", "MULTI", "INCR a", "INCR b", "EXEC", "SELECT 0"] {
                let _ = q(c, cmd);
            }
        }
    }
}

/// Waits until every node has the top master's replication ID and offset
/// with its link up, then compares the datasets.
#[track_caller]
fn assert_chain_in_sync(top: &mut redis::Connection, others: &mut [&mut redis::Connection], what: &str) {
    let id = field_of(top, "replication", "master_replid");
    let offset = field_of(top, "replication", "master_repl_offset");
    for (i, c) in others.iter_mut().enumerate() {
        wait_until(10, &format!("{what}: node {i} to catch up"), || {
            field_of(c, "replication", "master_link_status") == "up"
                && field_of(c, "replication", "master_repl_offset") == offset
        });
        assert_eq!(field_of(c, "replication", "master_replid"), id, "{what}: node {i}'s replication ID");
    }
    let digest = q(top, "DEBUG DIGEST");
    for (i, c) in others.iter_mut().enumerate() {
        assert_eq!(q(c, "DEBUG DIGEST"), digest, "{what}: node {i}'s dataset");
    }
}

/// redis-server master -> moonshard (middle) -> a redis-server and a
/// moonshard sub-replica.
#[test]
fn moonshard_replica_serves_sub_replicas_byte_for_byte() {
    let Some(top) = repl_redis(&[]) else { return };
    let Some(leaf_r) = repl_redis(&[]) else { return };
    let (middle, leaf_m) = (repl_moonshard(3, &[]), repl_moonshard(2, &[]));
    let (mut t, mut m, mut lr, mut lm) = (top.client(), middle.client(), leaf_r.client(), leaf_m.client());
    load(&mut t, "a", 200);
    assert_eq!(q(&mut m, &format!("REPLICAOF 127.0.0.1 {}", top.port)), "OK");
    wait_until(10, "the middle node's link", || field_of(&mut m, "replication", "master_link_status") == "up");
    for c in [&mut lr, &mut lm] {
        assert_eq!(q(c, &format!("REPLICAOF 127.0.0.1 {}", middle.port)), "OK");
    }
    load(&mut t, "b", 300);
    assert_chain_in_sync(&mut t, &mut [&mut m, &mut lr, &mut lm], "after the sub-replicas' full syncs");
    assert_eq!(num(&mut m, "stats", "sync_full"), 2);

    // The sub-replicas' links drop: they continue from the middle's backlog.
    assert_eq!(q(&mut m, "CLIENT KILL TYPE replica"), "2");
    load(&mut t, "c", 200);
    wait_until(10, "both partial resyncs", || num(&mut m, "stats", "sync_partial_ok") == 2);
    assert_chain_in_sync(&mut t, &mut [&mut m, &mut lr, &mut lm], "after the partial resyncs");
    assert_eq!(num(&mut m, "stats", "sync_full"), 2, "no full sync after the links dropped");

    // The middle's own link drops and resumes: the chain follows.
    assert_eq!(q(&mut t, "CLIENT KILL TYPE replica"), "1");
    load(&mut t, "d", 100);
    assert_chain_in_sync(&mut t, &mut [&mut m, &mut lr, &mut lm], "after the middle's partial resync");

    // The middle is promoted: its replicas continue its history (replid2).
    let old_id = field_of(&mut t, "replication", "master_replid");
    assert_eq!(q(&mut m, "REPLICAOF NO ONE"), "OK");
    assert_eq!(field_of(&mut m, "replication", "master_replid2"), old_id);
    load(&mut m, "e", 200);
    wait_until(10, "the partial resyncs after the promotion", || num(&mut m, "stats", "sync_partial_ok") == 4);
    assert_eq!(num(&mut m, "stats", "sync_full"), 2, "no full sync after the promotion");
    assert_chain_in_sync(&mut m, &mut [&mut lr, &mut lm], "after the promotion");
    for c in [&mut lr, &mut lm] {
        assert_eq!(field_of(c, "replication", "master_replid2"), old_id);
    }
}

/// moonshard master -> redis-server (middle) -> moonshard sub-replica,
/// and moonshard master -> moonshard (middle) -> moonshard.
#[test]
fn chains_with_a_moonshard_master() {
    let top = repl_moonshard(3, &[]);
    let Some(middle_r) = repl_redis(&[]) else { return };
    let (middle_m, leaf1, leaf2) = (repl_moonshard(2, &[]), repl_moonshard(1, &[]), repl_moonshard(4, &[]));
    let (mut t, mut mr, mut mm, mut l1, mut l2) =
        (top.client(), middle_r.client(), middle_m.client(), leaf1.client(), leaf2.client());
    load(&mut t, "a", 100);
    for c in [&mut mr, &mut mm] {
        assert_eq!(q(c, &format!("REPLICAOF 127.0.0.1 {}", top.port)), "OK");
        wait_until(10, "the middle nodes' links", || field_of(c, "replication", "master_link_status") == "up");
    }
    assert_eq!(q(&mut l1, &format!("REPLICAOF 127.0.0.1 {}", middle_r.port)), "OK");
    assert_eq!(q(&mut l2, &format!("REPLICAOF 127.0.0.1 {}", middle_m.port)), "OK");
    load(&mut t, "b", 300);
    assert_chain_in_sync(&mut t, &mut [&mut mr, &mut mm, &mut l1, &mut l2], "both chains");
    assert_eq!(q(&mut mm, "CLIENT KILL TYPE replica"), "1");
    load(&mut t, "c", 100);
    assert_chain_in_sync(&mut t, &mut [&mut mr, &mut mm, &mut l1, &mut l2], "after a sub-replica's link dropped");
    assert_eq!(num(&mut mm, "stats", "sync_partial_ok"), 1);
}
