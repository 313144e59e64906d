//! Pub/sub: the registry of subscriptions and delivery to subscribers.
//!
//! Publishers on any thread look subscribers up in concurrent maps and hand
//! each one the message through its own unbounded queue; the subscriber's
//! connection loop drains the queue alongside socket reads. The queue is
//! unbounded as a channel but bounded in bytes: every subscriber counts the
//! bytes waiting for it (queued plus not yet written to the socket), and
//! `client-output-buffer-limit pubsub` disconnects one that falls too far
//! behind instead of letting it grow memory.

pub mod notify;
pub mod tracking;

use crate::net::client::ClientInfo;
use crate::protocol::Reply;
use bytes::Bytes;
use dashmap::DashMap;
use indexmap::IndexMap;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Which subscription a message was delivered through.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Via {
    Channel,
    Pattern,
    Shard,
}

/// One message on its way to one subscriber. Cloning shares the bytes.
pub struct Message {
    via: Via,
    /// The matching pattern (pmessage only).
    pattern: Bytes,
    channel: Bytes,
    payload: Bytes,
    /// Not a message: the node stopped serving the shard channel's slot and
    /// dropped the subscription (the session answers `sunsubscribe`).
    lost: bool,
}

impl Message {
    /// The shard channel this "message" says was unsubscribed by the
    /// server, if that is what it is.
    pub fn lost_channel(&self) -> Option<&Bytes> {
        self.lost.then_some(&self.channel)
    }

    /// What the subscriber receives: a push in RESP3, an array in RESP2.
    pub fn reply(&self) -> Reply {
        let mut items = Vec::with_capacity(4);
        let kind: &'static [u8] = match self.via {
            Via::Channel => b"message",
            Via::Pattern => b"pmessage",
            Via::Shard => b"smessage",
        };
        items.push(Reply::Bulk(Bytes::from_static(kind)));
        if self.via == Via::Pattern {
            items.push(Reply::Bulk(self.pattern.clone()));
        }
        items.push(Reply::Bulk(self.channel.clone()));
        items.push(Reply::Bulk(self.payload.clone()));
        Reply::Push(items)
    }

    /// Bytes the message takes once encoded (what the output limit counts).
    pub fn size(&self) -> usize {
        let bulk = |n: usize| n + 16;
        8 + bulk(9) + bulk(self.pattern.len()) + bulk(self.channel.len()) + bulk(self.payload.len())
    }
}

pub use crate::config::output_limits::Limits;

/// The publishing side of one subscribed connection.
pub struct Subscriber {
    pub info: Arc<ClientInfo>,
    tx: mpsc::UnboundedSender<Message>,
    /// Unix ms since which the bytes waiting for the subscriber (queued or
    /// in its unwritten output: `info.bufs.pubsub`, part of CLIENT LIST's
    /// `omem`) have been over the soft limit (0: not over).
    soft_since: AtomicU64,
}

impl Subscriber {
    pub fn new(info: Arc<ClientInfo>) -> (Arc<Subscriber>, mpsc::UnboundedReceiver<Message>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(Subscriber { info, tx, soft_since: AtomicU64::new(0) }), rx)
    }

    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// The connection wrote `n` bytes of messages to its socket.
    pub fn written(&self, n: usize) {
        self.info.bufs.pubsub.fetch_sub(n, Ordering::AcqRel);
    }

    /// Queues `msg` unless the subscriber is over its limits, in which case
    /// it is disconnected (as Redis closes a client that overcomes them).
    fn deliver(&self, msg: Message, limits: &Limits) {
        if self.info.killed.load(Ordering::Relaxed) {
            return;
        }
        let size = msg.size();
        let pending = self.info.bufs.pubsub.fetch_add(size, Ordering::AcqRel) + size;
        if self.over_limits(pending as u64, limits) {
            self.info.bufs.pubsub.fetch_sub(size, Ordering::AcqRel);
            self.info.kill();
            return;
        }
        if self.tx.send(msg).is_err() {
            self.info.bufs.pubsub.fetch_sub(size, Ordering::AcqRel);
        } else if self.info.eviction_on() {
            // `maxmemory-clients`: the publisher's connection evicts if the
            // messages waiting here put the clients over the limit.
            self.info.account_memory();
        }
    }

    /// While the bytes waiting for the subscriber (queued, and `unwritten`
    /// of its connection's output) stay at or over the soft limit: the Unix ms at which it is to be closed (`soft_secs` after it
    /// went over), so one that stopped reading is closed even when no more
    /// messages come, as Redis's clientsCron closes it.
    pub fn soft_deadline_ms(&self, limits: &Limits, unwritten: usize) -> Option<u64> {
        let soft = limits.soft.load(Ordering::Relaxed);
        let pending = self.info.bufs.pubsub.load(Ordering::Acquire) as u64 + unwritten as u64;
        if soft == 0 || pending < soft {
            return None;
        }
        let now = crate::storage::now_ms();
        let since = match self.soft_since.compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => now,
            Err(since) => since,
        };
        Some(since + limits.soft_secs.load(Ordering::Relaxed).saturating_mul(1000) + 1)
    }

    fn over_limits(&self, pending: u64, limits: &Limits) -> bool {
        let hard = limits.hard.load(Ordering::Relaxed);
        if hard > 0 && pending >= hard {
            return true;
        }
        let soft = limits.soft.load(Ordering::Relaxed);
        if soft == 0 || pending < soft {
            self.soft_since.store(0, Ordering::Relaxed);
            return false;
        }
        let now = crate::storage::now_ms();
        match self.soft_since.compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => false,
            Err(since) => now.saturating_sub(since) >= limits.soft_secs.load(Ordering::Relaxed).saturating_mul(1000),
        }
    }
}

type Subs = Vec<Arc<Subscriber>>;
type ChannelMap = DashMap<Bytes, Subs, ahash::RandomState>;

/// Every subscription of the server.
pub struct Registry {
    channels: ChannelMap,
    /// Pattern → subscribers, in first-subscription order.
    patterns: RwLock<IndexMap<Bytes, Subs, ahash::RandomState>>,
    /// Number of patterns, read without the lock by every PUBLISH.
    npatterns: AtomicUsize,
    /// Shard channels, one map per shard: a shard channel lives on the
    /// shard that owns its slot.
    shard_channels: Vec<ChannelMap>,
    limits: Arc<Limits>,
}

fn add(subs: &mut Subs, s: &Arc<Subscriber>) {
    if !subs.iter().any(|x| x.id() == s.id()) {
        subs.push(s.clone());
    }
}

fn remove_from(map: &ChannelMap, channel: &[u8], id: u64) {
    if let Some(mut subs) = map.get_mut(channel) {
        subs.retain(|x| x.id() != id);
    }
    map.remove_if(channel, |_, subs| subs.is_empty());
}

fn count_in(map: &ChannelMap, channel: &[u8]) -> usize {
    map.get(channel).map_or(0, |s| s.len())
}

fn names_in(map: &ChannelMap, pattern: Option<&[u8]>, out: &mut Vec<Bytes>) {
    for e in map.iter() {
        if pattern.is_none_or(|p| crate::util::glob_match(p, e.key(), false)) {
            out.push(e.key().clone());
        }
    }
}

impl Registry {
    pub fn new(shards: usize, limits: Arc<Limits>) -> Registry {
        Registry {
            channels: ChannelMap::default(),
            patterns: RwLock::new(IndexMap::default()),
            npatterns: AtomicUsize::new(0),
            shard_channels: (0..shards.max(1)).map(|_| ChannelMap::default()).collect(),
            limits,
        }
    }

    fn shard_map(&self, channel: &[u8]) -> &ChannelMap {
        let id = crate::shard::slot::slot_shard(crate::shard::slot::key_slot(channel), self.shard_channels.len());
        &self.shard_channels[id]
    }

    pub fn subscribe(&self, via: Via, channel: &Bytes, s: &Arc<Subscriber>) {
        match via {
            Via::Channel => add(&mut self.channels.entry(channel.clone()).or_default(), s),
            Via::Shard => add(&mut self.shard_map(channel).entry(channel.clone()).or_default(), s),
            Via::Pattern => {
                let mut pats = self.patterns.write();
                add(pats.entry(channel.clone()).or_default(), s);
                self.npatterns.store(pats.len(), Ordering::Release);
            }
        }
    }

    pub fn unsubscribe(&self, via: Via, channel: &[u8], id: u64) {
        match via {
            Via::Channel => remove_from(&self.channels, channel, id),
            Via::Shard => remove_from(self.shard_map(channel), channel, id),
            Via::Pattern => {
                let mut pats = self.patterns.write();
                if let Some(subs) = pats.get_mut(channel) {
                    subs.retain(|x| x.id() != id);
                    if subs.is_empty() {
                        pats.shift_remove(channel);
                    }
                }
                self.npatterns.store(pats.len(), Ordering::Release);
            }
        }
    }

    /// PUBLISH: delivers to channel subscribers then to matching patterns;
    /// returns the number of deliveries (Redis's receiver count).
    pub fn publish(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let mut n = 0;
        if let Some(subs) = self.channels.get(&channel[..]) {
            for s in subs.iter() {
                let msg = Message {
                    via: Via::Channel,
                    pattern: Bytes::new(),
                    channel: channel.clone(),
                    payload: payload.clone(),
                    lost: false,
                };
                s.deliver(msg, &self.limits);
                n += 1;
            }
        }
        if self.npatterns.load(Ordering::Acquire) == 0 {
            return n;
        }
        let pats = self.patterns.read();
        for (pattern, subs) in pats.iter() {
            if !crate::util::glob_match(pattern, channel, false) {
                continue;
            }
            for s in subs {
                let msg = Message {
                    via: Via::Pattern,
                    pattern: pattern.clone(),
                    channel: channel.clone(),
                    payload: payload.clone(),
                    lost: false,
                };
                s.deliver(msg, &self.limits);
                n += 1;
            }
        }
        n
    }

    /// SPUBLISH: delivers to the shard channel's subscribers.
    pub fn spublish(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let Some(subs) = self.shard_map(channel).get(&channel[..]) else {
            return 0;
        };
        for s in subs.iter() {
            let msg = Message {
                via: Via::Shard,
                pattern: Bytes::new(),
                channel: channel.clone(),
                payload: payload.clone(),
                lost: false,
            };
            s.deliver(msg, &self.limits);
        }
        subs.len()
    }

    /// The node no longer serves `slots` (cluster mode): every shard channel
    /// of those slots is dropped and each of its subscribers is told with a
    /// `sunsubscribe` (Redis's removeChannelsInSlot), slot by slot, channels
    /// in byte order within a slot, as Redis walks them.
    pub fn unsubscribe_slots(&self, slots: &[usize]) {
        use crate::shard::slot::{key_slot, slot_shard};
        let mut wanted = vec![false; 16384];
        let mut maps = vec![false; self.shard_channels.len()];
        for &s in slots {
            if s < wanted.len() {
                wanted[s] = true;
                maps[slot_shard(s as u16, self.shard_channels.len())] = true;
            }
        }
        let mut found: Vec<(u16, Bytes, usize)> = Vec::new();
        for (i, map) in self.shard_channels.iter().enumerate().filter(|(i, _)| maps[*i]) {
            for e in map.iter() {
                let slot = key_slot(e.key());
                if wanted[slot as usize] {
                    found.push((slot, e.key().clone(), i));
                }
            }
        }
        found.sort();
        for (_, channel, i) in found {
            let Some((_, subs)) = self.shard_channels[i].remove(&channel) else { continue };
            for s in subs {
                if s.info.killed.load(Ordering::Relaxed) {
                    continue;
                }
                let msg = Message {
                    via: Via::Shard,
                    pattern: Bytes::new(),
                    channel: channel.clone(),
                    payload: Bytes::new(),
                    lost: true,
                };
                // Not subject to the output limits: it carries no payload.
                let size = msg.size();
                s.info.bufs.pubsub.fetch_add(size, Ordering::AcqRel);
                if s.tx.send(msg).is_err() {
                    s.info.bufs.pubsub.fetch_sub(size, Ordering::AcqRel);
                }
            }
        }
    }

    /// True when someone listens on `channel` directly or through a pattern
    /// (lets keyspace notifications skip building messages nobody reads).
    pub fn has_listeners(&self) -> bool {
        !self.channels.is_empty() || self.npatterns.load(Ordering::Acquire) > 0
    }

    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut out = Vec::new();
        names_in(&self.channels, pattern, &mut out);
        out
    }

    pub fn shard_channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut out = Vec::new();
        for map in &self.shard_channels {
            names_in(map, pattern, &mut out);
        }
        out
    }

    pub fn numsub(&self, channel: &[u8]) -> usize {
        count_in(&self.channels, channel)
    }

    pub fn shard_numsub(&self, channel: &[u8]) -> usize {
        count_in(self.shard_map(channel), channel)
    }

    pub fn numpat(&self) -> usize {
        self.npatterns.load(Ordering::Acquire)
    }

    /// Calls `f` for every subscription (ACL changes look for the ones a
    /// user may no longer hold).
    pub fn for_each_subscription(&self, mut f: impl FnMut(Via, &Bytes, &Subscriber)) {
        for e in self.channels.iter() {
            e.value().iter().for_each(|s| f(Via::Channel, e.key(), s));
        }
        for (p, subs) in self.patterns.read().iter() {
            subs.iter().for_each(|s| f(Via::Pattern, p, s));
        }
        for map in &self.shard_channels {
            for e in map.iter() {
                e.value().iter().for_each(|s| f(Via::Shard, e.key(), s));
            }
        }
    }

    /// Channels, patterns and shard channels with at least one subscriber.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.channels.len(), self.numpat(), self.shard_channels.iter().map(|m| m.len()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(reg: &Registry, ch: &Bytes) -> (Arc<Subscriber>, mpsc::UnboundedReceiver<Message>) {
        let clients = crate::net::client::ClientRegistry::default();
        let (s, rx) = Subscriber::new(clients.register("a".into(), "b".into(), 0));
        reg.subscribe(Via::Channel, ch, &s);
        (s, rx)
    }

    #[test]
    fn hard_and_soft_limits_disconnect() {
        let limits = Arc::new(Limits::default());
        let reg = Registry::new(2, limits.clone());
        let ch = Bytes::from_static(b"ch");
        let payload = Bytes::from(vec![b'x'; 1000]);
        limits.hard.store(10_000, Ordering::Relaxed);
        let (s, mut rx) = subscriber(&reg, &ch);
        for _ in 0..9 {
            reg.publish(&ch, &payload);
        }
        assert!(!s.info.killed.load(Ordering::Relaxed));
        // Writing what was queued makes room again.
        let mut n = 0;
        while let Ok(m) = rx.try_recv() {
            s.written(m.size());
            n += 1;
        }
        assert_eq!(n, 9);
        for _ in 0..20 {
            reg.publish(&ch, &payload);
        }
        assert!(s.info.killed.load(Ordering::Relaxed));
        // Soft limit with no grace: the second delivery over it disconnects.
        limits.hard.store(0, Ordering::Relaxed);
        limits.soft.store(1500, Ordering::Relaxed);
        let (s2, _rx2) = subscriber(&reg, &Bytes::from_static(b"soft"));
        let soft = Bytes::from_static(b"soft");
        reg.publish(&soft, &payload);
        reg.publish(&soft, &payload);
        assert!(!s2.info.killed.load(Ordering::Relaxed));
        reg.publish(&soft, &payload);
        assert!(s2.info.killed.load(Ordering::Relaxed));
    }

    #[test]
    fn lost_slots_drop_their_shard_channels_in_slot_and_byte_order() {
        let reg = Registry::new(4, Arc::new(Limits::default()));
        let clients = crate::net::client::ClientRegistry::default();
        let (s, mut rx) = Subscriber::new(clients.register("a".into(), "b".into(), 0));
        let names: [&[u8]; 4] = [b"{a}z", b"{a}b", b"{b}x", b"other"];
        for n in names {
            reg.subscribe(Via::Shard, &Bytes::from_static(n), &s);
        }
        let slot = |c: &[u8]| crate::shard::slot::key_slot(c) as usize;
        let (sa, sb) = (slot(b"a"), slot(b"b"));
        assert!(sa > sb);
        reg.unsubscribe_slots(&[sa, sb]);
        let mut got = Vec::new();
        while let Ok(m) = rx.try_recv() {
            got.push(m.lost_channel().expect("a lost channel").clone());
        }
        // Ascending slots ({b} before {a}), byte order within one.
        assert_eq!(got, [&b"{b}x"[..], b"{a}b", b"{a}z"]);
        assert_eq!(reg.shard_channels(None), [Bytes::from_static(b"other")]);
        assert_eq!(reg.shard_numsub(b"{a}z"), 0);
    }
}
