//! String commands (Redis's t_string.c).

use super::Ctx;
use crate::protocol::Reply;
use crate::storage::Value;
use bytes::Bytes;

pub fn get(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    match ctx.db(&args[1]).value(&args[1], now) {
        Some(Value::Str(s)) => Reply::Bulk(s.clone()),
        Some(_) => Reply::wrong_type(),
        None => Reply::Nil,
    }
}

pub fn set(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    ctx.db(key).set(key.clone(), Value::Str(args[2].clone()));
    ctx.written(key, "set");
    Reply::ok()
}

pub use super::not_yet as setnx;
pub use super::not_yet as setex;
pub use super::not_yet as psetex;
pub use super::not_yet as getset;
pub use super::not_yet as getdel;
pub use super::not_yet as getex;
pub use super::not_yet as mget;
pub use super::not_yet as mset;
pub use super::not_yet as msetnx;
pub use super::not_yet as incr;
pub use super::not_yet as decr;
pub use super::not_yet as incrby;
pub use super::not_yet as decrby;
pub use super::not_yet as incrbyfloat;
pub use super::not_yet as append;
pub use super::not_yet as strlen;
pub use super::not_yet as getrange;
pub use super::not_yet as setrange;
