//! MODULE: moonshard loads no native modules (its commands are built in),
//! so it answers as a redis-server with none loaded and refuses to load
//! one, saying why in the log.

use super::ConnCtx;
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use bytes::Bytes;

static MODULE_SUBS: &[CommandSpec] = &[
    cmd("module|help", 2, LOADING | STALE, NOKEYS, G::Server, C(help)).doc("5.0.0", "Lists the MODULE subcommands."),
    cmd("module|list", 2, ADMIN | NOSCRIPT, NOKEYS, G::Server, C(list))
        .doc("4.0.0", "Lists the loaded modules (none).")
        .tips(&["nondeterministic_output_order"]),
    cmd("module|load", -3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | PROTECTED, NOKEYS, G::Server, C(load))
        .syntax("path [arg [arg ...]]")
        .doc("4.0.0", "Loads a module (refused: moonshard loads no modules)."),
    cmd("module|loadex", -3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | PROTECTED, NOKEYS, G::Server, C(load))
        .syntax("path [CONFIG name value [CONFIG name value ...]] [ARGS arg [arg ...]]")
        .doc("7.0.0", "Loads a module with arguments (refused: moonshard loads no modules)."),
    cmd("module|unload", 3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | PROTECTED, NOKEYS, G::Server, C(unload))
        .syntax("name")
        .doc("4.0.0", "Unloads a module."),
];

pub static COMMANDS: &[CommandSpec] =
    &[container("module", -2, 0, G::Server, MODULE_SUBS).doc("4.0.0", "Container for module subcommands.")];

fn help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("MODULE", crate::commands::help::MODULE)
}

fn list(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Array(Vec::new())
}

fn load(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let path = String::from_utf8_lossy(&args[2]);
    let why = "moonshard does not load native modules (its command families are built in)";
    crate::net::listener::log(ctx.server, "warning", &format!("Module {path} failed to load: {why}"));
    Reply::err("Error loading the extension. Please check the server logs.")
}

fn unload(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::err("Error unloading module: no such module with that name")
}
