//! The scripting commands' declarations: EVAL and friends, FCALL, SCRIPT and
//! FUNCTION. The handlers live in `router` (scripts) and `functions`.

use crate::commands::spec::prelude::*;

// ------------------------------------------------------------ declarations

static SCRIPT_SUBS: &[CommandSpec] = &[
    cmd("script|load", 3, NOSCRIPT | STALE, NOKEYS, G::Scripting, C(script_load))
        .syntax("script")
        .doc("2.6.0", "Adds a script to the cache without running it.")
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd("script|exists", -3, NOSCRIPT, NOKEYS, G::Scripting, C(script_exists))
        .syntax("sha1 [sha1 ...]")
        .doc("2.6.0", "Tells which SHA1s are in the script cache.")
        .tips(&["request_policy:all_shards", "response_policy:agg_logical_and"]),
    cmd("script|flush", -2, NOSCRIPT, NOKEYS, G::Scripting, C(script_flush))
        .syntax("[ASYNC|SYNC]")
        .doc("2.6.0", "Empties the script cache.")
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd("script|kill", 2, NOSCRIPT | ALLOW_BUSY, NOKEYS, G::Scripting, C(script_kill))
        .doc("2.6.0", "Stops the running script if it has not written.")
        .tips(&["request_policy:all_shards", "response_policy:one_succeeded"]),
    cmd("script|debug", 3, NOSCRIPT, NOKEYS, G::Scripting, C(script_debug))
        .syntax("(YES|SYNC|NO)")
        .doc("3.2.0", "Turns the Lua debugger on (YES, SYNC) or off for the next EVAL."),
    cmd("script|help", 2, LOADING | STALE, NOKEYS, G::Scripting, C(script_help))
        .doc("5.0.0", "Lists the SCRIPT subcommands."),
];

static FUNCTION_SUBS: &[CommandSpec] = &[
    cmd("function|load", -3, WRITE | DENYOOM | NOSCRIPT, NOKEYS, G::Scripting, C(function_cmd))
        .syntax("[REPLACE] function-code")
        .doc("7.0.0", "Creates a function library.")
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    cmd("function|delete", 3, WRITE | NOSCRIPT, NOKEYS, G::Scripting, C(function_cmd))
        .syntax("library-name")
        .doc("7.0.0", "Deletes a function library.")
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    cmd("function|flush", -2, WRITE | NOSCRIPT, NOKEYS, G::Scripting, C(function_cmd))
        .syntax("[ASYNC|SYNC]")
        .doc("7.0.0", "Deletes every function library.")
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    cmd("function|list", -2, NOSCRIPT, NOKEYS, G::Scripting, C(function_cmd))
        .syntax("[LIBRARYNAME library-name-pattern] [WITHCODE]")
        .doc("7.0.0", "Describes the function libraries.")
        .tips(&["nondeterministic_output_order"]),
    cmd("function|dump", 2, NOSCRIPT, NOKEYS, G::Scripting, C(function_cmd))
        .doc("7.0.0", "Serializes every function library."),
    cmd("function|restore", -3, WRITE | DENYOOM | NOSCRIPT, NOKEYS, G::Scripting, C(function_cmd))
        .syntax("serialized-value [FLUSH|APPEND|REPLACE]")
        .doc("7.0.0", "Restores function libraries from a serialized payload.")
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    cmd("function|stats", 2, NOSCRIPT | ALLOW_BUSY, NOKEYS, G::Scripting, C(function_cmd))
        .doc("7.0.0", "Reports the running function and the engines.")
        .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
    cmd("function|kill", 2, NOSCRIPT | ALLOW_BUSY, NOKEYS, G::Scripting, C(function_cmd))
        .doc("7.0.0", "Stops the running function if it has not written.")
        .tips(&["request_policy:all_shards", "response_policy:one_succeeded"]),
    cmd("function|help", 2, LOADING | STALE, NOKEYS, G::Scripting, C(function_cmd))
        .doc("7.0.0", "Lists the FUNCTION subcommands."),
];

pub static COMMANDS: &[CommandSpec] = &[
    cmd("eval", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE, nk(2), G::Scripting, Session(Op::Eval))
        .syntax("script numkeys%i [key%k [key ...]] [arg [arg ...]]")
        .doc("2.6.0", "Runs a Lua script.")
        .key_specs(&[ks_noted(
            "We cannot tell how the keys will be used so we assume the worst, RW and UPDATE",
            &["RW", "access", "update"],
            idx(2),
            keynum(0, 1, 1),
        )]),
    cmd("evalsha", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE, nk(2), G::Scripting, Session(Op::Eval))
        .syntax("sha1 numkeys%i [key%k [key ...]] [arg [arg ...]]")
        .doc("2.6.0", "Runs a cached Lua script by its SHA1.")
        .key_specs(&[ks(&["RW", "access", "update"], idx(2), keynum(0, 1, 1))]),
    cmd(
        "eval_ro",
        -3,
        NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY,
        nk(2),
        G::Scripting,
        Session(Op::Eval),
    )
    .syntax("script numkeys%i [key%k [key ...]] [arg [arg ...]]")
    .doc("7.0.0", "Runs a read-only Lua script.")
    .key_specs(&[ks_noted(
        "We cannot tell how the keys will be used so we assume the worst, RO and ACCESS",
        &["RO", "access"],
        idx(2),
        keynum(0, 1, 1),
    )]),
    cmd(
        "evalsha_ro",
        -3,
        NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY,
        nk(2),
        G::Scripting,
        Session(Op::Eval),
    )
    .syntax("sha1 numkeys%i [key%k [key ...]] [arg [arg ...]]")
    .doc("7.0.0", "Runs a cached read-only Lua script by its SHA1."),
    cmd("fcall", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE, nk(2), G::Scripting, Session(Op::Fcall))
        .syntax("function numkeys%i [key%k [key ...]] [arg [arg ...]]")
        .doc("7.0.0", "Calls a library function.")
        .key_specs(&[ks_noted(
            "We cannot tell how the keys will be used so we assume the worst, RW and UPDATE",
            &["RW", "access", "update"],
            idx(2),
            keynum(0, 1, 1),
        )]),
    cmd(
        "fcall_ro",
        -3,
        NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY,
        nk(2),
        G::Scripting,
        Session(Op::Fcall),
    )
    .syntax("function numkeys%i [key%k [key ...]] [arg [arg ...]]")
    .doc("7.0.0", "Calls a read-only library function.")
    .key_specs(&[ks_noted(
        "We cannot tell how the keys will be used so we assume the worst, RO and ACCESS",
        &["RO", "access"],
        idx(2),
        keynum(0, 1, 1),
    )]),
    container("script", -2, 0, G::Scripting, SCRIPT_SUBS).doc("2.6.0", "Container for script cache subcommands."),
    container("function", -2, 0, G::Scripting, FUNCTION_SUBS)
        .doc("7.0.0", "Container for function library subcommands."),
];

// ---------------------------------------------------------------- handlers
// SCRIPT and FUNCTION subcommands touch no shard: they read or change the
// server's script cache and function libraries.

use crate::commands::ConnCtx;
use crate::protocol::Reply;
use bytes::Bytes;

fn script_load(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    super::router::script(ctx.server, "load", args)
}

fn script_exists(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    super::router::script(ctx.server, "exists", args)
}

fn script_flush(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    super::router::script(ctx.server, "flush", args)
}

fn script_kill(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    super::router::script(ctx.server, "kill", args)
}

fn script_debug(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    super::ldb::script_debug(ctx.client, &args[2])
}

fn script_help(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    super::router::script(ctx.server, "help", args)
}

/// FUNCTION's subcommands, by the name after `function|`.
fn function_cmd(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    super::functions::command(ctx.server, &sub, args)
}
