//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, CLIENT ...

use super::ConnCtx;
use crate::protocol::Reply;
use bytes::Bytes;

pub fn ping(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    match args.len() {
        1 => Reply::status("PONG"),
        2 => Reply::Bulk(args[1].clone()),
        _ => Reply::wrong_arity("ping"),
    }
}

pub fn echo(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    Reply::Bulk(args[1].clone())
}

pub fn select(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let Some(db) = crate::util::parse_i64(&args[1]) else {
        return Reply::not_integer();
    };
    if db < 0 || db as usize >= ctx.server.databases() {
        return Reply::err("DB index is out of range");
    }
    ctx.client.set_db(db as usize);
    Reply::ok()
}

pub use crate::commands::server::conn_not_yet as hello;
pub use crate::commands::server::conn_not_yet as auth;
pub use crate::commands::server::conn_not_yet as client_id;
pub use crate::commands::server::conn_not_yet as client_setname;
pub use crate::commands::server::conn_not_yet as client_getname;
pub use crate::commands::server::conn_not_yet as client_setinfo;
pub use crate::commands::server::conn_not_yet as client_list;
pub use crate::commands::server::conn_not_yet as client_info;
pub use crate::commands::server::conn_not_yet as client_kill;
pub use crate::commands::server::conn_not_yet as client_no_evict;
pub use crate::commands::server::conn_not_yet as client_help;
