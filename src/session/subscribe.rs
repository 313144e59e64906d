//! SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UN- forms: the session's
//! subscriptions and its incoming message queue (`SubState`), and the rules
//! of subscribed mode.

use super::Session;
use crate::commands::spec::SessionOp;
use crate::protocol::Reply;
use crate::pubsub::{Message, Subscriber, Via};
use bytes::Bytes;
use indexmap::IndexSet;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

/// A connection's subscriptions and its incoming message queue.
pub struct SubState {
    pub sub: Arc<Subscriber>,
    pub rx: UnboundedReceiver<Message>,
    channels: IndexSet<Bytes, ahash::RandomState>,
    patterns: IndexSet<Bytes, ahash::RandomState>,
    shard_channels: IndexSet<Bytes, ahash::RandomState>,
    /// Message bytes encoded into the output buffer and not yet written.
    pub unflushed: usize,
}

impl SubState {
    /// The count SUBSCRIBE/PSUBSCRIBE report (shard channels count apart).
    fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// True while the connection is in subscribed mode.
    pub fn active(&self) -> bool {
        self.count() + self.shard_channels.len() > 0
    }

    fn set(&mut self, via: Via) -> &mut IndexSet<Bytes, ahash::RandomState> {
        match via {
            Via::Channel => &mut self.channels,
            Via::Pattern => &mut self.patterns,
            Via::Shard => &mut self.shard_channels,
        }
    }

    fn count_for(&self, via: Via) -> usize {
        match via {
            Via::Shard => self.shard_channels.len(),
            _ => self.count(),
        }
    }
}

fn confirm(kind: &'static str, channel: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::Bulk(Bytes::from_static(kind.as_bytes())),
        channel.map_or(Reply::Nil, Reply::Bulk),
        Reply::Int(count as i64),
    ])
}

/// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UN- forms for `conn`.
pub fn run(conn: &mut Session, op: SessionOp, args: &[Bytes]) -> Reply {
    let (via, on, kind) = match op {
        SessionOp::Subscribe => (Via::Channel, true, "subscribe"),
        SessionOp::PSubscribe => (Via::Pattern, true, "psubscribe"),
        SessionOp::SSubscribe => (Via::Shard, true, "ssubscribe"),
        SessionOp::Unsubscribe => (Via::Channel, false, "unsubscribe"),
        SessionOp::PUnsubscribe => (Via::Pattern, false, "punsubscribe"),
        _ => (Via::Shard, false, "sunsubscribe"),
    };
    let channels = &args[1..];
    // Shard channels follow Redis Cluster's rule, one slot per command
    // (a standalone Redis, and `keyspace-mode standalone`, take any).
    if via == Via::Shard && !conn.server.standalone {
        if let Some(first) = channels.first() {
            let slot = crate::shard::slot::key_slot(first);
            if channels.iter().any(|c| crate::shard::slot::key_slot(c) != slot) {
                return Reply::crossslot();
            }
        }
    }
    let reply = if on { subscribe(conn, via, kind, channels) } else { unsubscribe(conn, via, kind, channels) };
    update_meta(conn);
    if on && !conn.client.acl.is_current(&conn.server.acl) {
        recheck_channels(conn, op, args);
    }
    reply
}

/// The user's rules changed while this subscription was being made: had
/// the change come first, the command would have been refused, and had it
/// come after, ACL SETUSER would have closed this connection. Do the latter.
fn recheck_channels(conn: &mut Session, op: SessionOp, args: &[Bytes]) {
    let server = conn.server.clone();
    let Some(cmd) = crate::commands::registry::named(args) else {
        return;
    };
    let allowed = conn.client.acl.refresh(&server.acl) && conn.client.acl.rules().check(cmd.id, args).is_ok();
    if !allowed && !matches!(op, SessionOp::Unsubscribe | SessionOp::PUnsubscribe | SessionOp::SUnsubscribe) {
        conn.client.close_after_reply = true;
    }
}

fn subscribe(conn: &mut Session, via: Via, kind: &'static str, channels: &[Bytes]) -> Reply {
    let server = conn.server.clone();
    let state = conn.sub.get_or_insert_with(|| {
        let (sub, rx) = Subscriber::new(conn.client.info.clone());
        Box::new(SubState {
            sub,
            rx,
            channels: IndexSet::default(),
            patterns: IndexSet::default(),
            shard_channels: IndexSet::default(),
            unflushed: 0,
        })
    });
    let mut out = Vec::with_capacity(channels.len());
    for ch in channels {
        if state.set(via).insert(ch.clone()) {
            server.pubsub.subscribe(via, ch, &state.sub);
        }
        out.push(confirm(kind, Some(ch.clone()), state.count_for(via)));
    }
    Reply::Multi(out)
}

fn unsubscribe(conn: &mut Session, via: Via, kind: &'static str, channels: &[Bytes]) -> Reply {
    let server = conn.server.clone();
    let Some(state) = conn.sub.as_mut() else {
        let mut out = vec![];
        for ch in channels {
            out.push(confirm(kind, Some(ch.clone()), 0));
        }
        if out.is_empty() {
            out.push(confirm(kind, None, 0));
        }
        return Reply::Multi(out);
    };
    let targets: Vec<Bytes> =
        if channels.is_empty() { state.set(via).iter().cloned().collect() } else { channels.to_vec() };
    let mut out = Vec::with_capacity(targets.len().max(1));
    for ch in targets {
        if state.set(via).shift_remove(&ch) {
            server.pubsub.unsubscribe(via, &ch, state.sub.id());
        }
        out.push(confirm(kind, Some(ch), state.count_for(via)));
    }
    if out.is_empty() {
        out.push(confirm(kind, None, state.count_for(via)));
    }
    if !state.active() {
        // Messages that arrived before the last unsubscription still go out.
        conn.drain_messages();
        conn.sub = None;
    }
    Reply::Multi(out)
}

/// Puts one message of the subscriber's queue into the output. A shard
/// channel the node dropped because it stopped serving the slot comes out as
/// Redis sends it, a `sunsubscribe` with the shard subscriptions left (or
/// nothing, if the client unsubscribed meanwhile). Returns true for such a
/// drop: the caller then calls [`settle`].
pub fn take_message(conn: &mut Session, msg: Message) -> bool {
    let Some(state) = conn.sub.as_mut() else {
        return false;
    };
    state.unflushed += msg.size();
    let Some(channel) = msg.lost_channel() else {
        msg.reply().encode(conn.client.resp, &mut conn.out);
        return false;
    };
    if state.shard_channels.shift_remove(channel) {
        let left = state.shard_channels.len();
        confirm("sunsubscribe", Some(channel.clone()), left).encode(conn.client.resp, &mut conn.out);
    }
    true
}

/// After subscriptions were dropped by the server: the client's counts, and
/// the end of subscribed mode when none is left (as Redis clears the
/// client's pubsub flag).
pub fn settle(conn: &mut Session) {
    if conn.sub.as_ref().is_some_and(|s| !s.active()) {
        conn.drain_messages();
        conn.sub = None;
    }
    update_meta(conn);
}

/// Drops every subscription (RESET, disconnection).
pub fn unsubscribe_all(conn: &mut Session) {
    let Some(state) = conn.sub.take() else {
        return;
    };
    let reg = &conn.server.pubsub;
    let id = state.sub.id();
    for (via, set) in
        [(Via::Channel, &state.channels), (Via::Pattern, &state.patterns), (Via::Shard, &state.shard_channels)]
    {
        for ch in set {
            reg.unsubscribe(via, ch, id);
        }
    }
    update_meta(conn);
}

fn update_meta(conn: &mut Session) {
    let (sub, psub, ssub) =
        conn.sub.as_ref().map_or((0, 0, 0), |s| (s.channels.len(), s.patterns.len(), s.shard_channels.len()));
    let mut meta = conn.client.info.meta.lock();
    meta.sub = sub;
    meta.psub = psub;
    meta.ssub = ssub;
}

/// Commands a RESP2 client may send while subscribed.
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

pub fn not_allowed_when_subscribed(name: &str) -> Reply {
    Reply::err(format!(
        "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// PING in RESP2 subscribed mode: ["pong", message or ""].
pub fn subscribed_ping(args: &[Bytes]) -> Reply {
    Reply::Array(vec![Reply::Bulk(Bytes::from_static(b"pong")), Reply::Bulk(args.get(1).cloned().unwrap_or_default())])
}
