//! ACL: users and their permissions (`crate::acl` holds the users, the
//! rules and the check; these are the commands that show and change them).

use super::ConnCtx;
use crate::acl::{self, ClientAcl, Denied, User};
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::pubsub::Via;
use crate::server::Server;
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

// ------------------------------------------------------------ declarations

const ADM: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

static ACL_SUBS: &[CommandSpec] = &[
    cmd("acl|cat", -2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(acl_cat))
        .syntax("[categoryname]")
        .doc("6.0.0", "Lists the ACL categories, or the commands of one category."),
    cmd("acl|deluser", -3, ADM, NOKEYS, G::Server, C(acl_deluser))
        .syntax("username [username ...]")
        .doc("6.0.0", "Removes users, disconnecting the connections authenticated as them."),
    cmd("acl|dryrun", -4, ADM, NOKEYS, G::Server, C(acl_dryrun))
        .syntax("username command [arg [arg ...]]")
        .doc("7.0.0", "Tells whether a user could run a command, without running it."),
    cmd("acl|genpass", -2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(acl_genpass))
        .syntax("[bits%i]")
        .doc("6.0.0", "Returns random hex digits from a secure generator, for use as a password."),
    cmd("acl|getuser", 3, ADM, NOKEYS, G::Server, C(acl_getuser))
        .syntax("username")
        .doc("6.0.0", "Describes one user's rules."),
    cmd("acl|help", 2, LOADING | STALE, NOKEYS, G::Server, C(acl_help)).doc("6.0.0", "Lists the ACL subcommands."),
    cmd("acl|list", 2, ADM, NOKEYS, G::Server, C(acl_list))
        .doc("6.0.0", "Lists every user with its rules, as the ACL file holds them."),
    cmd("acl|load", 2, ADM, NOKEYS, G::Server, C(acl_load))
        .doc("6.0.0", "Replaces the users with those of the ACL file."),
    cmd("acl|log", -2, ADM, NOKEYS, G::Server, C(acl_log))
        .syntax("[count%i|RESET]")
        .doc("6.0.0", "Shows the latest refused commands and failed logins, or clears them."),
    cmd("acl|save", 2, ADM, NOKEYS, G::Server, C(acl_save)).doc("6.0.0", "Writes the users to the ACL file."),
    cmd("acl|setuser", -3, ADM, NOKEYS, G::Server, C(acl_setuser))
        .syntax("username [rule [rule ...]]")
        .doc("6.0.0", "Creates a user or changes its rules, all rules or none."),
    cmd("acl|users", 2, ADM, NOKEYS, G::Server, C(acl_users)).doc("6.0.0", "Lists the user names."),
    cmd("acl|whoami", 2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(acl_whoami))
        .doc("6.0.0", "Returns the name of this connection's user."),
];

pub static COMMANDS: &[CommandSpec] =
    &[container("acl", -2, 0, G::Server, ACL_SUBS).doc("6.0.0", "Container for user and permission subcommands.")];

// ---------------------------------------------------------------- handlers

fn pubsub_all(server: &Server) -> bool {
    server.config.get("acl-pubsub-default").as_deref() == Some("allchannels")
}

fn no_acl_file() -> Reply {
    Reply::err(
        "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL \
         SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in \
         order to store users in the Redis configuration.",
    )
}

fn acl_file(server: &Server) -> Option<String> {
    server.config.get("aclfile").filter(|f| !f.is_empty())
}

/// Where the ACL file `name` is: a relative name is taken from `dir`, the
/// directory redis-server works in.
fn acl_path(server: &Server, name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(name);
    match server.config.get("dir").filter(|d| !d.is_empty()) {
        Some(dir) if path.is_relative() => std::path::Path::new(&dir).join(path),
        _ => path.to_path_buf(),
    }
}

/// Closes the connections of the removed users `ids`; the caller's own
/// once this reply is written.
pub fn kill_clients_of(ctx: &mut ConnCtx, ids: &[u64]) {
    if ids.is_empty() {
        return;
    }
    for c in ctx.server.clients.snapshot() {
        if !ids.contains(&c.user_id.load(Ordering::Acquire)) {
            continue;
        }
        if c.id == ctx.client.id() {
            ctx.client.close_after_reply = true;
        } else {
            c.kill();
        }
    }
}

/// After a change of `entry`'s rules: its subscribers that hold a channel
/// or pattern the new rules no longer allow are disconnected, as Redis
/// does (patterns must be allowed literally).
fn kill_revoked_subscribers(ctx: &mut ConnCtx, entry: &acl::UserEntry, before: &User) {
    let after = entry.rules();
    let Some(upcoming) = after.all_channel_patterns() else {
        return;
    };
    // Nothing revoked when every old pattern is still there.
    let old: Vec<_> = before.selectors.iter().flat_map(|s| s.channels.iter()).collect();
    let all_before = before.selectors.iter().any(|s| s.allchannels);
    if !all_before && old.iter().all(|p| upcoming.iter().any(|u| u.text == p.text)) {
        return;
    }
    let mut doomed = Vec::new();
    ctx.server.pubsub.for_each_subscription(|via, channel, sub| {
        if sub.info.user_id.load(Ordering::Acquire) != entry.id || doomed.contains(&sub.info.id) {
            return;
        }
        if !acl::user::channel_allowed(&upcoming, channel, via == Via::Pattern) {
            doomed.push(sub.info.id);
        }
    });
    for id in doomed {
        if id == ctx.client.id() {
            ctx.client.close_after_reply = true;
        } else if let Some(c) = ctx.server.clients.get(id) {
            c.kill();
        }
    }
}

pub fn acl_setuser(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    match ctx.server.acl.setuser(&args[2], &args[3..], pubsub_all(ctx.server)) {
        Ok((entry, before)) => {
            if let Some(before) = before {
                kill_revoked_subscribers(ctx, &entry, &before);
            }
            Reply::ok()
        }
        Err(e) => Reply::error_from_bytes(e),
    }
}

pub fn acl_deluser(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    match ctx.server.acl.deluser(&args[2..]) {
        Ok(removed) => {
            let ids: Vec<u64> = removed.iter().map(|e| e.id).collect();
            kill_clients_of(ctx, &ids);
            Reply::Int(removed.len() as i64)
        }
        Err(e) => Reply::error(e),
    }
}

fn selector_fields(s: &acl::user::Selector) -> Vec<(Reply, Reply)> {
    let b = |v: Vec<u8>| Reply::Bulk(Bytes::from(v));
    vec![
        (Reply::bulk_str("commands"), b(s.describe_commands())),
        (Reply::bulk_str("keys"), b(s.describe_keys())),
        (Reply::bulk_str("channels"), b(s.describe_channels())),
    ]
}

pub fn acl_getuser(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let Some(entry) = ctx.server.acl.get(&args[2]) else {
        return Reply::Nil;
    };
    let u = entry.rules();
    let mut fields = vec![
        (Reply::bulk_str("flags"), Reply::Set(u.flag_names().into_iter().map(Reply::bulk_str).collect())),
        (
            Reply::bulk_str("passwords"),
            Reply::Array(u.password_hexes().into_iter().map(|h| Reply::Bulk(Bytes::from(h))).collect()),
        ),
    ];
    fields.extend(selector_fields(u.root()));
    let selectors = u.selectors[1..].iter().map(|s| Reply::Map(selector_fields(s))).collect();
    fields.push((Reply::bulk_str("selectors"), Reply::Array(selectors)));
    Reply::Map(fields)
}

fn user_line(name: &[u8], u: &User) -> Bytes {
    let mut line = b"user ".to_vec();
    line.extend_from_slice(name);
    line.push(b' ');
    line.extend_from_slice(&u.describe());
    Bytes::from(line)
}

pub fn acl_list(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Array(ctx.server.acl.users().iter().map(|(n, u)| Reply::Bulk(user_line(n, u))).collect())
}

pub fn acl_users(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Array(ctx.server.acl.users().into_iter().map(|(n, _)| Reply::Bulk(n)).collect())
}

pub fn acl_whoami(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Bulk(ctx.client.acl.name().clone())
}

pub fn acl_cat(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return crate::commands::registry::subcommand_syntax_error(args);
    }
    let Some(name) = args.get(2) else {
        return Reply::Array(acl::index::CATEGORIES.iter().map(|c| Reply::bulk_str(c)).collect());
    };
    let Some(cat) = acl::index::category(name) else {
        let shown = crate::protocol::c_str(name);
        return Reply::error_concat(&[b"ERR Unknown category '", &shown[..shown.len().min(128)], b"'"]);
    };
    let ix = acl::index::index();
    let names = ix.walk().filter_map(|id| ix.get(id)).filter(|e| e.cats & cat != 0);
    Reply::Array(names.map(|e| Reply::bulk_str(&e.name)).collect())
}

pub fn acl_genpass(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return crate::commands::registry::subcommand_syntax_error(args);
    }
    let bits = match args.get(2) {
        None => 256,
        Some(a) => match parse_i64(a) {
            Some(n) => n,
            None => return Reply::not_integer(),
        },
    };
    if bits <= 0 || bits > 4096 {
        return Reply::err(
            "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        );
    }
    let chars = (bits as usize).div_ceil(4);
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let pass: Vec<u8> = (0..chars).map(|_| DIGITS[rng.gen_range(0..16)]).collect();
    Reply::Bulk(Bytes::from(pass))
}

pub fn acl_log(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return crate::commands::registry::subcommand_syntax_error(args);
    }
    let mut count = 10i64;
    if let Some(a) = args.get(2) {
        if eq_ic(a, "reset") {
            ctx.server.acl.log.lock().reset();
            return Reply::ok();
        }
        match parse_i64(a) {
            Some(n) => count = n.max(0),
            None => return Reply::not_integer(),
        }
    }
    let now = crate::storage::now_ms();
    let log = ctx.server.acl.log.lock();
    let s = |t: &str| Reply::bulk_str(t);
    let entries = log
        .newest(count as usize)
        .map(|e| {
            Reply::Map(vec![
                (s("count"), Reply::Int(e.count as i64)),
                (s("reason"), s(e.reason.name())),
                (s("context"), s(e.context.name())),
                (s("object"), Reply::Bulk(e.object.clone())),
                (s("username"), Reply::Bulk(e.username.clone())),
                (s("age-seconds"), Reply::Double(now.saturating_sub(e.ctime) as f64 / 1000.0)),
                (s("client-info"), Reply::bulk(e.client_info.clone())),
            ])
        })
        .collect();
    Reply::Array(entries)
}

/// The text ACL DRYRUN answers for a refusal.
fn dryrun_text(d: Denied, name: &str, args: &[Bytes]) -> Bytes {
    let mut t = Vec::new();
    match d {
        Denied::Command => {
            t.extend_from_slice(b"This user has no permissions to run the '");
            t.extend_from_slice(name.as_bytes());
            t.extend_from_slice(b"' command");
        }
        Denied::Key(p) | Denied::Channel(p) => {
            t.extend_from_slice(b"This user has no permissions to access the '");
            t.extend_from_slice(crate::protocol::c_str(&args[p]));
            t.extend_from_slice(if matches!(d, Denied::Key(_)) { b"' key".as_slice() } else { b"' channel" });
        }
    }
    Bytes::from(t)
}

pub fn acl_dryrun(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let Some(entry) = ctx.server.acl.get(&args[2]) else {
        return Reply::error_concat(&[b"ERR User '", crate::protocol::c_str(&args[2]), b"' not found"]);
    };
    let line = &args[3..];
    let not_found = || Reply::error_concat(&[b"ERR Command '", crate::protocol::c_str(&line[0]), b"' not found"]);
    let ix = acl::index::index();
    let (id, name, arity) = match crate::commands::registry::named(line) {
        Some(c) => (c.id, c.spec.name.to_string(), c.spec.arity),
        None if line[0].contains(&b'|') => return not_found(),
        None => {
            // A Redis command moonshard does not run: its ACL entry.
            let mut name = String::from_utf8_lossy(&line[0]).to_ascii_lowercase();
            let top = ix.lookup(name.as_bytes()).and_then(|id| ix.get(id));
            if let (Some(t), Some(sub)) = (top, line.get(1)) {
                if !t.subs.is_empty() {
                    name = format!("{name}|{}", String::from_utf8_lossy(sub).to_ascii_lowercase());
                }
            }
            match ix.lookup(name.as_bytes()).and_then(|id| ix.get(id).map(|e| (id, e))) {
                Some((id, e)) => (id, e.name.clone(), e.arity),
                None => return not_found(),
            }
        }
    };
    let argc = line.len() as i32;
    if (arity >= 0 && argc != arity) || (arity < 0 && argc < -arity) {
        return Reply::wrong_arity(&name);
    }
    match entry.rules().check(id, line) {
        Ok(()) => Reply::ok(),
        Err(d) => Reply::Bulk(dryrun_text(d, &name, line)),
    }
}

pub fn acl_load(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let Some(path) = acl_file(ctx.server) else {
        return no_acl_file();
    };
    match acl::file::load(&path, &acl_path(ctx.server, &path), pubsub_all(ctx.server)) {
        Ok(users) => {
            let removed = ctx.server.acl.replace_all(users);
            let ids: Vec<u64> = removed.iter().map(|e| e.id).collect();
            kill_clients_of(ctx, &ids);
            Reply::ok()
        }
        Err(e) => Reply::err(e),
    }
}

pub fn acl_save(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let Some(path) = acl_file(ctx.server) else {
        return no_acl_file();
    };
    let text = acl::file::render(&ctx.server.acl.users());
    match acl::file::save(&acl_path(ctx.server, &path), &text) {
        Ok(()) => Reply::ok(),
        Err(e) => {
            crate::net::listener::log(ctx.server, "warning", &format!("Writing ACL file for ACL SAVE: {e}"));
            Reply::err("There was an error trying to save the ACLs. Please check the server logs for more information")
        }
    }
}

pub fn acl_help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("ACL", crate::commands::help::ACL)
}

/// Binds a connection to `entry` after a successful AUTH or HELLO AUTH.
pub fn bind_client(client: &mut crate::net::client::ClientState, entry: &Arc<acl::UserEntry>) {
    client.acl = ClientAcl::new(entry.clone());
    client.authenticated = true;
}

/// Logs `client` in as the user `name` when it exists, is enabled and
/// `accepts` its rules (AUTH and HELLO: the password; a TLS client
/// certificate under `tls-auth-clients-user cn`: nothing more).
pub fn log_in(
    server: &Server,
    client: &mut crate::net::client::ClientState,
    name: &[u8],
    accepts: impl FnOnce(&User) -> bool,
) -> bool {
    let info = client.info.clone();
    let mut bound = None;
    server.acl.authenticate(name, accepts, |entry| {
        // Bound while removals wait: DELUSER sees this connection.
        info.user_id.store(entry.id, Ordering::Release);
        info.meta.lock().user = String::from_utf8_lossy(&entry.name).into_owned();
        bound = Some(entry.clone());
    });
    match bound {
        Some(entry) => {
            bind_client(client, &entry);
            true
        }
        None => false,
    }
}

/// Start-up: the users of the config file's `user` lines or of the ACL
/// file (not both), after `requirepass` set the default user's password.
pub fn load_at_startup(server: &Server) -> Result<(), String> {
    let lines = server.config.user_lines.read().clone();
    let file = acl_file(server);
    if file.is_some() && !lines.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is \
                    invalid. This setup is very likely to lead to configuration errors and security holes, please \
                    define either an ACL file or declare users directly in your redis.conf, but not both."
            .to_string());
    }
    let all = pubsub_all(server);
    if !lines.is_empty() {
        let users = acl::file::configured_users(&lines, all)?;
        server.acl.add_configured(users);
    }
    if let Some(path) = file {
        let users = acl::file::load(&path, &acl_path(server, &path), all)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        server.acl.replace_all(users);
    }
    Ok(())
}
