//! Replicas in the cluster: becoming a replica (CLUSTER REPLICATE, or a
//! master that lost its slots), the election a replica runs when its
//! master fails, the vote masters give, and the manual failover (CLUSTER
//! FAILOVER [FORCE|TAKEOVER]). The rules are Redis 7.0's:
//!
//! - A replica whose master is FAIL (and still has slots) waits 500-1000 ms
//!   plus one second per replica of the same master with a larger
//!   replication offset (its rank), then bumps the current epoch and asks
//!   every node for a vote (FAILOVER_AUTH_REQUEST).
//! - A master serving slots votes at most once per epoch, for a replica
//!   whose master is FAIL (or any, for a manual failover), at most once
//!   per two node timeouts for replicas of the same master, and only if
//!   none of the claimed slots is held with a newer config epoch.
//! - With the votes of a majority of the masters serving slots, the
//!   replica takes the election's epoch as its config epoch, takes its
//!   master's slots and tells everyone (PONG to all).
//! - An election that does not conclude is abandoned after twice the node
//!   timeout (at least 2 s), and a new one may start after twice that.

use super::bus::{self, Body, Header, Message};
use super::state::{bit, flags::*, id_str, NodeId, State, NULL_ID, SLOTS};
use std::collections::HashMap;

/// How long a manual failover may take (ms).
pub const MF_TIMEOUT: u64 = 5000;
/// `mflags[0]`: the master paused its clients for a manual failover.
pub const MFLAG0_PAUSED: u8 = 1;
/// `mflags[0]`: vote even though the master is not failing (manual failover).
pub const MFLAG0_FORCEACK: u8 = 1 << 1;

#[derive(Default)]
pub struct Failover {
    /// This node's replication offset (the master's stream applied, for a
    /// replica), refreshed by the cron; sent in every header.
    pub my_offset: u64,
    /// ms when the link to the master went down (0: up).
    pub link_down_since: u64,
    /// The election: when it starts (or started), votes, its epoch.
    pub auth_time: u64,
    pub auth_count: usize,
    pub auth_sent: bool,
    pub auth_rank: usize,
    pub auth_epoch: u64,
    /// Per master: when this node last voted for one of its replicas.
    pub voted: HashMap<NodeId, u64>,
    /// Manual failover: when it ends (0: none in progress).
    pub mf_end: u64,
    /// Replica side: the election may start (the offset was reached, or FORCE).
    pub mf_can_start: bool,
    /// Replica side: the paused master's offset.
    pub mf_master_offset: Option<u64>,
    /// Master side: the replica taking over.
    pub mf_replica: Option<NodeId>,
    /// Master side: writes must be paused until the time (the link applies it).
    pub pause_until: u64,
    /// Master side: the pause is in effect (since the last cron tick).
    pub pause_engaged: bool,
    /// Master side: writes are paused and the offset was sampled after
    /// that (the offset sent is final).
    pub paused: bool,
    /// The master side's pause must be lifted.
    pub unpause: bool,
    /// Masters left without a working replica, since when (replica migration).
    pub orphaned_since: HashMap<NodeId, u64>,
    /// Why this replica cannot fail over now (logged once per reason).
    last_reason: &'static str,
    /// Log lines for the server log (drained by the cron).
    pub log: Vec<String>,
    /// This node's role or master changed (replication must follow).
    pub role_changed: bool,
}

impl State {
    /// Makes this node a replica of `master` (which must be known):
    /// replication follows from the state (see `link`).
    pub fn set_my_master(&mut self, master: NodeId) {
        if master == self.myself || !self.nodes.contains_key(&master) {
            return;
        }
        if self.me().flags & MASTER != 0 {
            let me = self.me_mut();
            me.flags &= !(MASTER | MIGRATE_TO);
            me.flags |= SLAVE;
            self.migrating.clear();
            self.importing.clear();
        }
        self.me_mut().master = Some(master);
        self.fo.role_changed = true;
        self.reset_manual_failover();
        self.fo.log.push(format!("Configuring this node as a replica of {}", id_str(&master)));
        self.dirty = true;
    }

    /// Where this node's replication must connect: its master's address
    /// while it is a replica.
    pub fn replication_target(&self) -> Option<(String, u16)> {
        let me = self.me();
        if me.flags & SLAVE == 0 {
            return None;
        }
        let m = self.nodes.get(&me.master?)?;
        (!m.ip.is_empty() && m.port != 0).then(|| (m.ip.clone(), m.port))
    }

    fn needed_quorum(&self) -> usize {
        self.size() / 2 + 1
    }

    /// This replica's rank among its master's replicas: how many of them
    /// have a larger replication offset.
    fn rank(&self) -> usize {
        let me = self.me();
        let Some(master) = me.master else { return 0 };
        self.nodes
            .values()
            .filter(|n| {
                n.id != self.myself
                    && n.master == Some(master)
                    && n.flags & (SLAVE | NOFAILOVER) == SLAVE
                    && n.repl_offset > self.fo.my_offset
            })
            .count()
    }

    fn cant_failover(&mut self, reason: &'static str) {
        if self.fo.last_reason != reason {
            self.fo.last_reason = reason;
            self.fo.log.push(reason.to_string());
        }
    }

    /// Replicas of `master` not marked FAIL.
    fn working_replicas(&self, master: &NodeId) -> usize {
        self.nodes.values().filter(|n| n.master.as_ref() == Some(master) && n.flags & (SLAVE | FAIL) == SLAVE).count()
    }

    /// A master that has replicas may receive one when it loses them all
    /// (Redis's MIGRATE_TO flag).
    fn mark_masters_with_replicas(&mut self) {
        let masters: Vec<NodeId> =
            self.nodes.values().filter(|n| n.flags & SLAVE != 0).filter_map(|n| n.master).collect();
        for m in masters {
            if let Some(n) = self.nodes.get_mut(&m) {
                if n.is_master() {
                    n.flags |= MIGRATE_TO;
                }
            }
        }
    }

    /// Replica migration (Redis's clusterHandleSlaveMigration): when a
    /// master serving slots has lost every replica, the replica with the
    /// smallest id among those of the best-served masters moves to it,
    /// after 5 s, if its own master keeps more than
    /// `cluster-migration-barrier` replicas.
    fn replica_migration(&mut self, now: u64) {
        let me = self.me();
        let Some(my_master) = me.master.filter(|_| me.flags & SLAVE != 0) else { return };
        if !self.settings.allow_replica_migration || !self.ok {
            return;
        }
        let masters: Vec<(NodeId, usize, bool)> = self
            .nodes
            .values()
            .filter(|n| n.is_master() && n.flags & FAIL == 0)
            .map(|n| {
                let ok = self.working_replicas(&n.id);
                (n.id, ok, ok == 0 && n.numslots > 0 && n.flags & MIGRATE_TO != 0)
            })
            .collect();
        let max = masters.iter().map(|m| m.1).max().unwrap_or(0);
        let mine = masters.iter().find(|m| m.0 == my_master).map_or(0, |m| m.1);
        if !masters.iter().any(|m| m.2) || max < 2 || mine != max {
            return;
        }
        let ok_here =
            self.nodes.values().filter(|n| n.master == Some(my_master) && n.flags & SLAVE != 0 && !n.failing()).count()
                as u64;
        if ok_here <= self.settings.migration_barrier {
            return;
        }
        let mut candidate = self.myself;
        let mut target = None;
        for (id, ok, orphaned) in &masters {
            if *orphaned {
                target = target.or(Some(*id));
                self.fo.orphaned_since.entry(*id).or_insert(now);
            } else {
                self.fo.orphaned_since.remove(id);
            }
            if *ok == max {
                for r in self.nodes.values().filter(|n| n.master == Some(*id) && n.flags & SLAVE != 0) {
                    if r.id < candidate {
                        candidate = r.id;
                    }
                }
            }
        }
        let Some(target) = target else { return };
        let since = self.fo.orphaned_since.get(&target).copied().unwrap_or(now);
        if candidate == self.myself && now - since > 5000 {
            self.fo.log.push(format!("Migrating to orphaned master {}", id_str(&target)));
            self.set_my_master(target);
        }
    }

    /// The cron's part (every 100 ms): manual failover time-out and
    /// progress, then the election (Redis's clusterHandleSlaveFailover).
    pub fn handle_failover(&mut self, now: u64) {
        if self.fo.mf_end != 0 && self.fo.mf_end < now {
            self.fo.log.push("Manual failover timed out.".into());
            self.reset_manual_failover();
        }
        let me_master = self.me().is_master();
        if me_master {
            // The paused master pings the replica taking over with its offset.
            if self.fo.mf_end != 0 && self.fo.paused {
                if let Some(r) = self.fo.mf_replica {
                    let msg = self.ping(bus::PING, Some(&r));
                    self.send_to(&r, msg);
                }
            }
            return;
        }
        self.mark_masters_with_replicas();
        self.replica_migration(now);
        if self.fo.mf_end != 0 && !self.fo.mf_can_start && self.fo.mf_master_offset == Some(self.fo.my_offset) {
            self.fo.mf_can_start = true;
            self.fo.log.push("All master replication stream processed, manual failover can start.".into());
        }
        self.election(now);
    }

    fn election(&mut self, now: u64) {
        let manual = self.fo.mf_end != 0 && self.fo.mf_can_start;
        let timeout = self.settings.node_timeout;
        let auth_timeout = (timeout * 2).max(2000);
        let auth_retry = auth_timeout * 2;
        let me = self.me();
        let Some(master) = me.master.and_then(|m| self.nodes.get(&m)) else { return };
        if me.flags & SLAVE == 0
            || (master.flags & FAIL == 0 && !manual)
            || ((self.settings.no_failover || me.flags & NOFAILOVER != 0) && !manual)
            || master.numslots == 0
        {
            self.fo.last_reason = "";
            return;
        }
        // Data too old: this replica must not win (validity factor).
        if !manual && self.settings.validity_factor > 0 {
            let mut age = if self.fo.link_down_since == 0 { 0 } else { now.saturating_sub(self.fo.link_down_since) };
            if age > timeout {
                age -= timeout;
            }
            if age > self.settings.repl_ping_period + timeout * self.settings.validity_factor {
                self.cant_failover("Disconnected from master for longer than allowed. Please check the 'cluster-replica-validity-factor' configuration option.");
                return;
            }
        }
        let auth_age = now.saturating_sub(self.fo.auth_time);
        if self.fo.auth_time == 0 || (now >= self.fo.auth_time && auth_age > auth_retry) {
            use rand::Rng;
            self.fo.auth_count = 0;
            self.fo.auth_sent = false;
            self.fo.auth_rank = self.rank();
            self.fo.auth_time = now + 500 + rand::thread_rng().gen_range(0..500) + self.fo.auth_rank as u64 * 1000;
            if manual {
                self.fo.auth_time = now;
                self.fo.auth_rank = 0;
            }
            self.fo.log.push(format!(
                "Start of election delayed for {} milliseconds (rank #{}, offset {}).",
                self.fo.auth_time - now,
                self.fo.auth_rank,
                self.fo.my_offset
            ));
            // Tell the other replicas of the master our offset now.
            let master = self.me().master.unwrap_or(NULL_ID);
            let peers: Vec<NodeId> = self
                .nodes
                .values()
                .filter(|n| n.master == Some(master) && n.flags & MYSELF == 0 && n.link.is_some())
                .map(|n| n.id)
                .collect();
            for p in peers {
                let msg = self.ping(bus::PONG, Some(&p));
                self.send_to(&p, msg);
            }
            return;
        }
        if !self.fo.auth_sent && !manual {
            let rank = self.rank();
            if rank > self.fo.auth_rank {
                self.fo.auth_time += (rank - self.fo.auth_rank) as u64 * 1000;
                self.fo.auth_rank = rank;
            }
        }
        if now < self.fo.auth_time {
            return;
        }
        if now - self.fo.auth_time > auth_timeout {
            self.cant_failover("Waiting for votes, but majority still not reached.");
            return;
        }
        if !self.fo.auth_sent {
            self.current_epoch += 1;
            self.fo.auth_epoch = self.current_epoch;
            self.fo.auth_sent = true;
            self.dirty = true;
            self.fo.log.push(format!("Starting a failover election for epoch {}.", self.current_epoch));
            let mut h = self.header(bus::AUTH_REQUEST);
            if manual {
                h.mflags[0] |= MFLAG0_FORCEACK;
            }
            self.sent[bus::AUTH_REQUEST as usize] += 1;
            let msg = bus::encode(&Message { header: h, body: Body::Other });
            self.broadcast(&msg);
            return;
        }
        if self.fo.auth_count >= self.needed_quorum() {
            self.fo.log.push("Failover election won: I'm the new master.".into());
            if self.me().config_epoch < self.fo.auth_epoch {
                let e = self.fo.auth_epoch;
                self.me_mut().config_epoch = e;
                self.fo.log.push(format!("configEpoch set to {e} after successful failover"));
            }
            self.replace_my_master();
        }
    }

    /// The replica becomes the master: its master's slots are its own, and
    /// everyone hears of it at once.
    pub fn replace_my_master(&mut self) {
        let me = self.me();
        let Some(old) = me.master.filter(|_| me.flags & SLAVE != 0) else { return };
        let myself = self.myself;
        let me = self.me_mut();
        me.flags = (me.flags & !SLAVE) | MASTER;
        me.master = None;
        for s in 0..SLOTS {
            if self.owner[s] == Some(old) {
                self.del_slot(s);
                self.add_slot(myself, s);
            }
        }
        self.dirty = true;
        self.fo.role_changed = true;
        self.fo.auth_time = 0;
        self.reset_manual_failover();
        self.update_state(super::state::now_ms());
        self.broadcast_pong();
    }

    /// CLUSTER FAILOVER TAKEOVER: a new config epoch without asking anyone.
    pub fn bump_epoch_without_consensus(&mut self) {
        let max = self.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0).max(self.current_epoch);
        let mine = self.me().config_epoch;
        if mine == 0 || mine != max {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            self.dirty = true;
            self.fo.log.push(format!("New configEpoch set to {e}"));
        }
    }

    /// A replica asks for our vote (FAILOVER_AUTH_REQUEST).
    pub(super) fn vote_if_needed(&mut self, h: &Header, now: u64) {
        let me = self.me();
        if me.flags & SLAVE != 0 || me.numslots == 0 {
            return;
        }
        if h.current_epoch < self.current_epoch || self.last_vote_epoch == self.current_epoch {
            return;
        }
        let force = h.mflags[0] & MFLAG0_FORCEACK != 0;
        let Some(node) = self.nodes.get(&h.sender) else { return };
        let Some(master) = node.master.filter(|_| !node.is_master()).and_then(|m| self.nodes.get(&m)) else {
            return;
        };
        if master.flags & FAIL == 0 && !force {
            return;
        }
        let master = master.id;
        let timeout = self.settings.node_timeout;
        if self.fo.voted.get(&master).is_some_and(|t| now.saturating_sub(*t) < timeout * 2) {
            return;
        }
        for s in 0..SLOTS {
            if !bit(&h.myslots, s) {
                continue;
            }
            let Some(owner) = self.owner[s] else { continue };
            if self.nodes.get(&owner).is_some_and(|o| o.config_epoch > h.config_epoch) {
                // The replica's view of the slots is stale.
                return;
            }
        }
        self.last_vote_epoch = self.current_epoch;
        self.fo.voted.insert(master, now);
        self.dirty = true;
        self.fo.log.push(format!("Failover auth granted to {} for epoch {}", id_str(&h.sender), self.current_epoch));
        self.sent[bus::AUTH_ACK as usize] += 1;
        let msg = bus::encode(&Message { header: self.header(bus::AUTH_ACK), body: Body::Other });
        self.send_to(&h.sender, msg);
    }

    /// A master voted for us (FAILOVER_AUTH_ACK).
    pub(super) fn count_ack(&mut self, h: &Header) {
        let voter = self.nodes.get(&h.sender).is_some_and(|n| n.is_master() && n.numslots > 0);
        if voter && h.current_epoch >= self.fo.auth_epoch && self.fo.auth_sent {
            self.fo.auth_count += 1;
            if self.fo.auth_count >= self.needed_quorum() {
                // Conclude at once rather than at the next cron tick.
                self.election(super::state::now_ms());
            }
        }
    }

    /// Our replica starts a manual failover (MFSTART): pause writes and
    /// send it our offset.
    pub(super) fn manual_failover_requested(&mut self, h: &Header, now: u64) {
        if self.nodes.get(&h.sender).and_then(|n| n.master) != Some(self.myself) {
            return;
        }
        self.reset_manual_failover();
        self.fo.mf_end = now + MF_TIMEOUT;
        self.fo.mf_replica = Some(h.sender);
        self.fo.pause_until = now + MF_TIMEOUT * 2;
        self.fo.log.push(format!("Manual failover requested by replica {}.", id_str(&h.sender)));
    }

    /// A header from our master: while it is paused for our manual
    /// failover, its offset is the one to reach.
    pub(super) fn note_master_offset(&mut self, h: &Header) {
        let me = self.me();
        if me.flags & SLAVE != 0
            && me.master == Some(h.sender)
            && h.mflags[0] & MFLAG0_PAUSED != 0
            && self.fo.mf_end != 0
            && self.fo.mf_master_offset.is_none()
        {
            self.fo.mf_master_offset = Some(h.offset);
            self.fo.log.push(format!("Received replication offset for paused master manual failover: {}", h.offset));
        }
    }

    /// CLUSTER FAILOVER on this replica (`force`: without the master's
    /// offset; the TAKEOVER case is the caller's).
    pub fn start_manual_failover(&mut self, force: bool) {
        self.reset_manual_failover();
        self.fo.mf_end = super::state::now_ms() + MF_TIMEOUT;
        if force {
            self.fo.mf_can_start = true;
            self.fo.log.push("Forced failover user request accepted.".into());
            return;
        }
        self.fo.log.push("Manual failover user request accepted.".into());
        if let Some(m) = self.me().master {
            self.sent[bus::MFSTART as usize] += 1;
            let msg = bus::encode(&Message { header: self.header(bus::MFSTART), body: Body::Other });
            self.send_to(&m, msg);
        }
    }

    pub fn reset_manual_failover(&mut self) {
        if self.fo.pause_engaged || self.fo.pause_until != 0 {
            self.fo.unpause = true;
        }
        self.fo.mf_end = 0;
        self.fo.mf_can_start = false;
        self.fo.mf_master_offset = None;
        self.fo.mf_replica = None;
        self.fo.pause_until = 0;
        self.fo.pause_engaged = false;
        self.fo.paused = false;
    }

    /// A node's replication offset (this node's own for myself).
    pub fn offset_of(&self, n: &super::state::Node) -> u64 {
        if n.flags & MYSELF != 0 {
            self.fo.my_offset
        } else {
            n.repl_offset
        }
    }

    /// A replica CLUSTER SLOTS lists: not failed, and it has synced
    /// (offset not 0).
    pub fn replica_available(&self, n: &super::state::Node) -> bool {
        n.flags & FAIL == 0 && self.offset_of(n) != 0
    }

    /// The paused flag for headers this master sends.
    pub(super) fn paused_flag(&self) -> u8 {
        if self.fo.mf_end != 0 && self.fo.paused && self.me().is_master() {
            MFLAG0_PAUSED
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::{now_ms, From, LinkHandle, Node};

    const A: NodeId = [b'a'; 40];
    const B: NodeId = [b'b'; 40];
    const C: NodeId = [b'c'; 40];
    const R: NodeId = [b'r'; 40];
    const R2: NodeId = [b's'; 40];

    /// A view of the cluster from `me`: masters A (slots 0-99, epoch 1),
    /// B (100-199, epoch 2), C (200-299, epoch 3); replicas R and R2 of A.
    fn view(me: NodeId) -> State {
        let mut st = State::new(me, 7000, 17000);
        st.settings.node_timeout = 1000;
        st.current_epoch = 3;
        st.nodes.remove(&me);
        for (id, epoch, first) in [(A, 1, 0), (B, 2, 100), (C, 3, 200)] {
            let mut n = Node::new(id, MASTER, 0);
            n.config_epoch = epoch;
            st.nodes.insert(id, n);
            for s in first..first + 100 {
                st.add_slot(id, s);
            }
        }
        for id in [R, R2] {
            let mut n = Node::new(id, SLAVE, 0);
            n.master = Some(A);
            st.nodes.insert(id, n);
        }
        st.myself = me;
        st.nodes.get_mut(&me).unwrap().flags |= MYSELF;
        st
    }

    /// Gives `id` an outbound link in `st`; returns what is sent through it.
    fn link(st: &mut State, id: NodeId) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        st.nodes.get_mut(&id).unwrap().link =
            Some(LinkHandle { id: 1, tx, ctime: 0, connected: true, io: Default::default() });
        rx
    }

    fn request(from: NodeId, epoch: u64, force: bool) -> Message {
        let mut st = view(from);
        st.current_epoch = epoch;
        let mut header = st.header(bus::AUTH_REQUEST);
        if force {
            header.mflags[0] |= MFLAG0_FORCEACK;
        }
        Message { header, body: Body::Other }
    }

    fn acks(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) -> usize {
        let mut n = 0;
        while let Ok(m) = rx.try_recv() {
            assert_eq!(bus::decode(&m).unwrap().header.kind, bus::AUTH_ACK);
            n += 1;
        }
        n
    }

    #[test]
    fn replicas_advertise_their_master() {
        let st = view(R);
        let h = st.header(bus::PING);
        assert_eq!(h.slaveof, A);
        assert_eq!(h.config_epoch, 1);
        assert!(bit(&h.myslots, 0) && bit(&h.myslots, 99) && !bit(&h.myslots, 100));
        assert_eq!(view(B).header(bus::PING).slaveof, NULL_ID);
    }

    #[test]
    fn a_master_votes_once_per_epoch_for_a_failed_master_with_current_slots() {
        let mut b = view(B);
        let mut to_r = link(&mut b, R);
        let mut to_r2 = link(&mut b, R2);
        // The master is not failing: no vote (unless forced).
        b.process(request(R, 4, false), From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert_eq!(acks(&mut to_r), 0);
        b.nodes.get_mut(&A).unwrap().flags |= FAIL;
        b.process(request(R, 5, false), From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert_eq!(acks(&mut to_r), 1);
        assert_eq!((b.current_epoch, b.last_vote_epoch), (5, 5));
        // The same epoch again (another replica): refused.
        b.process(request(R2, 5, false), From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert_eq!(acks(&mut to_r2), 0);
        // A newer epoch, but a replica of the same master within two node timeouts.
        b.process(request(R2, 6, false), From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert_eq!(acks(&mut to_r2), 0);
        b.fo.voted.insert(A, 0);
        b.process(request(R2, 7, false), From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert_eq!(acks(&mut to_r2), 1);
        // A request claiming slots now served with a newer epoch: refused.
        b.fo.voted.clear();
        b.nodes.get_mut(&A).unwrap().config_epoch = 8;
        let mut stale = request(R, 9, false);
        stale.header.config_epoch = 1;
        b.process(stale, From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert_eq!(acks(&mut to_r), 0);
        // A replica never votes, nor a master without slots.
        let mut r2 = view(R2);
        let mut to_r_from_replica = link(&mut r2, R);
        r2.nodes.get_mut(&A).unwrap().flags |= FAIL;
        r2.process(request(R, 10, false), From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert_eq!(acks(&mut to_r_from_replica), 0);
    }

    #[test]
    fn a_forced_request_gets_a_vote_while_the_master_is_up() {
        let mut c = view(C);
        let mut to_r = link(&mut c, R);
        c.process(request(R, 4, true), From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert_eq!(acks(&mut to_r), 1);
    }

    #[test]
    fn a_majority_of_votes_makes_the_replica_master_of_its_slots() {
        let mut r = view(R);
        r.nodes.get_mut(&A).unwrap().flags |= FAIL;
        r.fo.auth_sent = true;
        r.fo.auth_epoch = 4;
        r.current_epoch = 4;
        r.fo.auth_time = now_ms();
        let ack = |from: NodeId| {
            let mut st = view(from);
            st.current_epoch = 4;
            Message { header: st.header(bus::AUTH_ACK), body: Body::Other }
        };
        r.process(ack(B), From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert!(r.me().flags & SLAVE != 0, "one vote of three masters is not a majority");
        // A replica's ack does not count.
        r.process(ack(R2), From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert!(r.me().flags & SLAVE != 0);
        r.process(ack(C), From::Inbound(9), "127.0.0.1", "127.0.0.1");
        let me = r.me();
        assert!(me.is_master() && me.master.is_none());
        assert_eq!((me.numslots, me.config_epoch), (100, 4));
        assert_eq!(r.owner[0], Some(R));
        assert_eq!(r.nodes[&A].numslots, 0);
        assert_eq!(r.replication_target(), None);
    }

    #[test]
    fn an_election_waits_its_delay_and_stale_data_never_runs_one() {
        let mut r = view(R);
        r.settings.validity_factor = 10;
        r.settings.repl_ping_period = 10_000;
        r.nodes.get_mut(&A).unwrap().flags |= FAIL;
        let mut to_b = link(&mut r, B);
        let t = now_ms();
        r.handle_failover(t);
        let delay = r.fo.auth_time - t;
        assert!((500..1000).contains(&delay), "{delay}");
        r.handle_failover(t + delay - 1);
        assert!(!r.fo.auth_sent);
        r.handle_failover(t + delay);
        assert!(r.fo.auth_sent);
        assert_eq!((r.fo.auth_epoch, r.current_epoch), (4, 4));
        let req = bus::decode(&to_b.try_recv().unwrap()).unwrap();
        assert_eq!((req.header.kind, req.header.slaveof, req.header.current_epoch), (bus::AUTH_REQUEST, A, 4));
        // A replica that never synced (or too long ago) does not start one.
        let mut stale = view(R);
        stale.settings.validity_factor = 10;
        stale.settings.repl_ping_period = 10_000;
        stale.nodes.get_mut(&A).unwrap().flags |= FAIL;
        stale.fo.link_down_since = 1;
        stale.handle_failover(t);
        assert_eq!(stale.fo.auth_time, 0);
        // Factor 0: any age.
        stale.settings.validity_factor = 0;
        stale.handle_failover(t);
        assert!(stale.fo.auth_time > t);
    }

    #[test]
    fn a_master_that_lost_its_slots_follows_the_new_owner() {
        // A (restarted, epoch 1) hears of R owning its slots with epoch 4.
        let mut a = view(A);
        a.nodes.get_mut(&R).unwrap().flags = MASTER;
        a.nodes.get_mut(&R).unwrap().master = None;
        a.nodes.get_mut(&R).unwrap().ip = "127.0.0.1".into();
        a.nodes.get_mut(&R).unwrap().port = 7005;
        let mut slots = Box::new([0u8; crate::cluster::state::SLOT_BYTES]);
        for s in 0..100 {
            slots[s / 8] |= 1 << (s % 8);
        }
        let mut sender = view(B);
        sender.current_epoch = 4;
        let msg = Message { header: sender.header(bus::UPDATE), body: Body::Update { config_epoch: 4, id: R, slots } };
        a.process(msg, From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert_eq!(a.me().flags & (SLAVE | MASTER), SLAVE);
        assert_eq!(a.me().master, Some(R));
        assert_eq!(a.replication_target(), Some(("127.0.0.1".to_string(), 7005)));
        // R2, a replica of A, follows R too (with replica migration allowed).
        let mut r2 = view(R2);
        r2.settings.allow_replica_migration = true;
        r2.nodes.get_mut(&R).unwrap().flags = MASTER;
        r2.nodes.get_mut(&R).unwrap().master = None;
        let mut slots = Box::new([0u8; crate::cluster::state::SLOT_BYTES]);
        for s in 0..100 {
            slots[s / 8] |= 1 << (s % 8);
        }
        let msg = Message { header: sender.header(bus::UPDATE), body: Body::Update { config_epoch: 4, id: R, slots } };
        r2.process(msg, From::Inbound(9), "127.0.0.1", "127.0.0.1");
        assert_eq!(r2.me().master, Some(R));
    }
}
