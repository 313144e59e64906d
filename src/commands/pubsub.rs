//! Pub/sub commands: PUBLISH, SPUBLISH, PUBSUB ..., and the declarations of
//! the (un)subscribe family, which the session runs (`session::subscribe`).

use super::{ConnCtx, Ctx};
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use bytes::Bytes;

// ------------------------------------------------------------ declarations

static PUBSUB_SUBS: &[CommandSpec] = &[
    cmd("pubsub|channels", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_channels))
        .syntax("[pattern%p]")
        .doc("2.8.0", "Lists the active channels, optionally matching a pattern."),
    cmd("pubsub|numsub", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_numsub))
        .syntax("[channel [channel ...]]")
        .doc("2.8.0", "Counts the subscribers of channels."),
    cmd("pubsub|numpat", 2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_numpat))
        .doc("2.8.0", "Counts the pattern subscriptions."),
    cmd("pubsub|shardchannels", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_shardchannels))
        .syntax("[pattern%p]")
        .doc("7.0.0", "Lists the active shard channels, optionally matching a pattern."),
    cmd("pubsub|shardnumsub", -2, PUBSUB | LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_shardnumsub))
        .syntax("[shardchannel [shardchannel ...]]")
        .doc("7.0.0", "Counts the subscribers of shard channels."),
    cmd("pubsub|help", 2, LOADING | STALE, NOKEYS, G::Pubsub, C(pubsub_help))
        .doc("6.2.0", "Lists the PUBSUB subcommands.")
        .acl(&["-pubsub"]),
];

pub static COMMANDS: &[CommandSpec] = &[
    cmd("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, Session(Op::Subscribe))
        .syntax("channel [channel ...]")
        .doc("2.0.0", "Listens for messages on channels."),
    cmd("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, Session(Op::PSubscribe))
        .syntax("pattern%p [pattern ...]")
        .doc("2.0.0", "Listens for messages on channels matching patterns."),
    cmd("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, KALL, G::Pubsub, Session(Op::SSubscribe))
        .syntax("shardchannel [shardchannel ...]")
        .doc("7.0.0", "Listens for messages published to shard channels.")
        .key_specs(&[ks(&["not_key"], idx(1), range(-1, 1, 0))]),
    cmd("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, Session(Op::Unsubscribe))
        .syntax("[channel [channel ...]]")
        .doc("2.0.0", "Stops listening on channels."),
    cmd("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, G::Pubsub, Session(Op::PUnsubscribe))
        .syntax("[pattern%p [pattern ...]]")
        .doc("2.0.0", "Stops listening on channel patterns."),
    cmd("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, KALL, G::Pubsub, Session(Op::SUnsubscribe))
        .syntax("[shardchannel [shardchannel ...]]")
        .doc("7.0.0", "Stops listening to shard channels.")
        .key_specs(&[ks(&["not_key"], idx(1), range(-1, 1, 0))]),
    cmd("publish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, NOKEYS, G::Pubsub, K(publish))
        .syntax("channel message")
        .doc("2.0.0", "Sends a message to a channel."),
    cmd("spublish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, K1, G::Pubsub, K(spublish))
        .syntax("shardchannel message")
        .doc("7.0.0", "Posts a message to a shard channel.")
        .key_specs(&[ks(&["not_key"], idx(1), range(0, 1, 0))]),
    container("pubsub", -2, 0, G::Pubsub, PUBSUB_SUBS).doc("2.8.0", "Container for pub/sub introspection subcommands."),
];

/// The reply counts this node's receivers only; in cluster mode the bus
/// carries the message to every other node (SPUBLISH: to the nodes of this
/// node's shard), as Redis does.
pub fn publish(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let n = ctx.server.pubsub.publish(&args[1], &args[2]);
    if let Some(cluster) = &ctx.server.cluster {
        cluster.publish(false, &args[1], &args[2]);
    }
    Reply::Int(n as i64)
}

pub fn spublish(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let n = ctx.server.pubsub.spublish(&args[1], &args[2]);
    if let Some(cluster) = &ctx.server.cluster {
        cluster.publish(true, &args[1], &args[2]);
    }
    Reply::Int(n as i64)
}

fn names(v: Vec<Bytes>) -> Reply {
    Reply::Array(v.into_iter().map(Reply::Bulk).collect())
}

/// CHANNELS/SHARDCHANNELS take at most one pattern (Redis's own error text).
fn optional_pattern(args: &[Bytes]) -> Result<Option<&[u8]>, Reply> {
    if args.len() > 3 {
        return Err(crate::commands::registry::subcommand_syntax_error(args));
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
    crate::commands::help::reply("PUBSUB", crate::commands::help::PUBSUB)
}
