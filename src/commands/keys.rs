//! Keyspace commands (Redis's db.c and expire.c).

use super::{ConnCtx, Ctx};
use crate::protocol::Reply;
use bytes::Bytes;

pub fn del(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let mut n = 0;
    for key in &args[1..] {
        if ctx.db(key).delete(key, now) {
            ctx.written(key, "del");
            n += 1;
        }
    }
    Reply::Int(n)
}

pub fn exists(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let mut n = 0;
    for key in &args[1..] {
        if ctx.db(key).contains(key, now) {
            n += 1;
        }
    }
    Reply::Int(n)
}

pub use super::not_yet as touch;
pub use super::not_yet as type_;
pub use super::not_yet as expire;
pub use super::not_yet as pexpire;
pub use super::not_yet as expireat;
pub use super::not_yet as pexpireat;
pub use super::not_yet as ttl;
pub use super::not_yet as pttl;
pub use super::not_yet as expiretime;
pub use super::not_yet as pexpiretime;
pub use super::not_yet as persist;
pub use super::not_yet as keys_shard;
pub use super::not_yet as randomkey_shard;
pub use super::not_yet as scan_shard;
pub use super::not_yet as rename;
pub use super::not_yet as renamenx;
pub use super::not_yet as copy;

pub fn keys_merge(_ctx: &mut ConnCtx, _args: &[Bytes], replies: Vec<Reply>) -> Reply {
    replies.into_iter().next().unwrap_or(Reply::Array(vec![]))
}

pub fn randomkey_merge(_ctx: &mut ConnCtx, _args: &[Bytes], replies: Vec<Reply>) -> Reply {
    replies.into_iter().next().unwrap_or(Reply::Nil)
}

pub fn scan_route(_ctx: &ConnCtx, _args: &[Bytes]) -> Result<usize, Reply> {
    Ok(0)
}

pub fn scan_finish(_ctx: &ConnCtx, _args: &[Bytes], _shard: usize, reply: Reply) -> Reply {
    reply
}
