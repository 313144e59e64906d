//! Pub/sub commands: PUBLISH, SPUBLISH, PUBSUB ..., and the (un)subscribe
//! family, which changes the connection's state (`SubState`).

use super::{ConnCtx, Ctx};
use crate::commands::registry::Command;
use crate::commands::spec::prelude::*;
use crate::net::connection::Connection;
use crate::protocol::Reply;
use crate::pubsub::{Message, Subscriber, Via};
use bytes::Bytes;
use indexmap::IndexSet;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

// ------------------------------------------------------------ declarations

static PUBSUB_SUBS: &[CommandSpec] = &[
    cmd("pubsub|channels", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_channels))
        .doc("2.8.0", "Lists the active channels, optionally matching a pattern."),
    cmd("pubsub|numsub", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_numsub))
        .doc("2.8.0", "Counts the subscribers of channels."),
    cmd("pubsub|numpat", 2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_numpat))
        .doc("2.8.0", "Counts the pattern subscriptions."),
    cmd("pubsub|shardchannels", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_shardchannels))
        .doc("7.0.0", "Lists the active shard channels, optionally matching a pattern."),
    cmd("pubsub|shardnumsub", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_shardnumsub))
        .doc("7.0.0", "Counts the subscribers of shard channels."),
    cmd("pubsub|help", 2, LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_help))
        .doc("6.2.0", "Lists the PUBSUB subcommands."),
];

pub static COMMANDS: &[CommandSpec] = &[
    cmd("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, S)
        .doc("2.0.0", "Listens for messages on channels."),
    cmd("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, S)
        .doc("2.0.0", "Listens for messages on channels matching patterns."),
    cmd("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, KALL, G::Pubsub, S)
        .doc("7.0.0", "Listens for messages published to shard channels."),
    cmd("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, S)
        .doc("2.0.0", "Stops listening on channels."),
    cmd("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, S)
        .doc("2.0.0", "Stops listening on channel patterns."),
    cmd("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, KALL, G::Pubsub, S)
        .doc("7.0.0", "Stops listening to shard channels."),
    cmd("publish", 3, PUBSUB | LOADING | STALE | FAST, NOKEYS, G::Pubsub, K(publish))
        .doc("2.0.0", "Sends a message to a channel."),
    cmd("spublish", 3, PUBSUB | LOADING | STALE | FAST, K1, G::Pubsub, K(spublish))
        .doc("7.0.0", "Posts a message to a shard channel."),
    container("pubsub", -2, 0, G::Pubsub, PUBSUB_SUBS).doc("2.8.0", "Container for pub/sub introspection subcommands."),
];

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

pub fn publish(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(ctx.server.pubsub.publish(&args[1], &args[2]) as i64)
}

pub fn spublish(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(ctx.server.pubsub.spublish(&args[1], &args[2]) as i64)
}

fn names(v: Vec<Bytes>) -> Reply {
    Reply::Array(v.into_iter().map(Reply::Bulk).collect())
}

/// CHANNELS/SHARDCHANNELS take at most one pattern (Redis's own error text).
fn optional_pattern(args: &[Bytes]) -> Result<Option<&[u8]>, Reply> {
    if args.len() > 3 {
        return Err(Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    Ok(args.get(2).map(|p| &p[..]))
}

pub fn pubsub_channels(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    match optional_pattern(args) {
        Ok(p) => names(ctx.server.pubsub.channels(p)),
        Err(e) => e,
    }
}

pub fn pubsub_shardchannels(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    match optional_pattern(args) {
        Ok(p) => names(ctx.server.pubsub.shard_channels(p)),
        Err(e) => e,
    }
}

pub fn pubsub_numsub(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let reg = &ctx.server.pubsub;
    Reply::Array(args[2..].iter().flat_map(|c| [Reply::Bulk(c.clone()), Reply::Int(reg.numsub(c) as i64)]).collect())
}

pub fn pubsub_shardnumsub(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let reg = &ctx.server.pubsub;
    Reply::Array(
        args[2..].iter().flat_map(|c| [Reply::Bulk(c.clone()), Reply::Int(reg.shard_numsub(c) as i64)]).collect(),
    )
}

pub fn pubsub_numpat(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Int(ctx.server.pubsub.numpat() as i64)
}

pub fn pubsub_help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::status(l)).collect())
}

fn confirm(kind: &'static str, channel: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::Bulk(Bytes::from_static(kind.as_bytes())),
        channel.map_or(Reply::Nil, Reply::Bulk),
        Reply::Int(count as i64),
    ])
}

/// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UN- forms for `conn`.
pub fn subscription(conn: &mut Connection, cmd: Command, args: &[Bytes]) -> Reply {
    let (via, on, kind) = match cmd.spec.name {
        "subscribe" => (Via::Channel, true, "subscribe"),
        "psubscribe" => (Via::Pattern, true, "psubscribe"),
        "ssubscribe" => (Via::Shard, true, "ssubscribe"),
        "unsubscribe" => (Via::Channel, false, "unsubscribe"),
        "punsubscribe" => (Via::Pattern, false, "punsubscribe"),
        "sunsubscribe" => (Via::Shard, false, "sunsubscribe"),
        other => return Reply::err(format!("unknown pub/sub command '{other}'")),
    };
    let channels = &args[1..];
    // Shard channels follow Redis Cluster's rule: one slot per command.
    if via == Via::Shard {
        if let Some(first) = channels.first() {
            let slot = crate::shard::slot::key_slot(first);
            if channels.iter().any(|c| crate::shard::slot::key_slot(c) != slot) {
                return Reply::crossslot();
            }
        }
    }
    let reply = if on { subscribe(conn, via, kind, channels) } else { unsubscribe(conn, via, kind, channels) };
    update_meta(conn);
    reply
}

fn subscribe(conn: &mut Connection, via: Via, kind: &'static str, channels: &[Bytes]) -> Reply {
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

fn unsubscribe(conn: &mut Connection, via: Via, kind: &'static str, channels: &[Bytes]) -> Reply {
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

/// Drops every subscription (RESET, disconnection).
pub fn unsubscribe_all(conn: &mut Connection) {
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

fn update_meta(conn: &mut Connection) {
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
