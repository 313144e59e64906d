//! Server commands: INFO, CONFIG, COMMAND, DBSIZE, FLUSH*, TIME, SHUTDOWN ...

use super::{ConnCtx, Ctx};
use crate::protocol::Reply;
use bytes::Bytes;

pub fn conn_not_yet(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    Reply::err(format!(
        "command '{}' is not implemented yet",
        String::from_utf8_lossy(&args[0]).to_lowercase()
    ))
}

pub fn dbsize_shard(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let db = ctx.db;
    Reply::Int(ctx.home().dbs[db].len() as i64)
}

pub fn merge_sum(_ctx: &mut ConnCtx, _args: &[Bytes], replies: Vec<Reply>) -> Reply {
    Reply::Int(
        replies
            .iter()
            .map(|r| if let Reply::Int(n) = r { *n } else { 0 })
            .sum(),
    )
}

pub fn flushdb_shard(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let db = ctx.db;
    ctx.home().dbs[db].clear();
    Reply::ok()
}

pub fn flushall_shard(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    for db in ctx.home().dbs.iter_mut() {
        db.clear();
    }
    Reply::ok()
}

pub fn merge_flush(_ctx: &mut ConnCtx, _args: &[Bytes], _replies: Vec<Reply>) -> Reply {
    Reply::ok()
}

pub fn shutdown(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    ctx.server.request_shutdown();
    ctx.client.close_after_reply = true;
    Reply::NoReply
}

pub use super::not_yet as info_shard;
pub fn info_merge(_ctx: &mut ConnCtx, _args: &[Bytes], _replies: Vec<Reply>) -> Reply {
    Reply::bulk_str("# Server\r\nredis_version:7.0.15\r\n")
}

pub use conn_not_yet as config_get;
pub use conn_not_yet as config_set;
pub use conn_not_yet as config_resetstat;
pub use conn_not_yet as config_rewrite;
pub use conn_not_yet as config_help;
pub use conn_not_yet as command_count;
pub use conn_not_yet as command_info;
pub use conn_not_yet as command_docs;
pub use conn_not_yet as command_list;
pub use conn_not_yet as command_getkeys;
pub use conn_not_yet as command_help;
pub use conn_not_yet as cluster_keyslot;
pub use conn_not_yet as cluster_info;
pub use conn_not_yet as cluster_help;
pub use conn_not_yet as time;
pub use conn_not_yet as lastsave;
pub use conn_not_yet as save;
pub use conn_not_yet as bgsave;
