//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, CLIENT ...

use super::ConnCtx;
use crate::commands::dispatch::AclContext;
use crate::commands::spec::prelude::*;
use crate::net::client::{ClientInfo, ClientState, ReplyMode};
use crate::protocol::Reply;
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

// ------------------------------------------------------------ declarations

static CLIENT_SUBS: &[CommandSpec] = &[
    cmd("client|id", 2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_id))
        .doc("5.0.0", "Returns this connection's unique id."),
    cmd("client|setname", 3, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_setname))
        .syntax("connection-name")
        .doc("2.6.9", "Gives this connection a name."),
    cmd("client|getname", 2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_getname))
        .doc("2.6.9", "Returns this connection's name."),
    cmd("client|setinfo", 4, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_setinfo))
        .syntax("(LIB-NAME libname|LIB-VER libver)")
        .doc("7.2.0", "Records the client library's name or version."),
    cmd("client|list", -2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_list))
        .syntax("[TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID client-id%i [client-id ...]]")
        .doc("2.4.0", "Describes the open connections, one line each.")
        .tips(&["nondeterministic_output"]),
    cmd("client|info", 2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_info))
        .doc("6.2.0", "Describes this connection.")
        .tips(&["nondeterministic_output"]),
    cmd("client|kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_kill))
        .syntax("(ip:port|([ID client-id%i]|[TYPE (NORMAL|MASTER|SLAVE|REPLICA|PUBSUB)]|[USER username]|[ADDR ip:port]|[LADDR ip:port]|[SKIPME yes/no]) [[ID client-id]|[TYPE NORMAL|MASTER|SLAVE|REPLICA|PUBSUB]|[USER username]|[ADDR ip:port]|[LADDR ip:port]|[SKIPME yes/no] ...])")
        .doc("2.4.0", "Closes the connections matching the given filters."),
    cmd("client|no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_no_evict))
        .syntax("(ON|OFF)")
        .doc("7.0.0", "Sets whether this connection may be evicted."),
    cmd("client|pause", -3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_pause))
        .syntax("timeout%i [WRITE|ALL]")
        .doc("2.9.50", "Holds back clients' commands (all, or those that may write) for a time."),
    cmd("client|unpause", 2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_unpause))
        .doc("6.2.0", "Ends a CLIENT PAUSE."),
    cmd("client|unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_unblock))
        .syntax("client-id%i [TIMEOUT|ERROR]")
        .doc("5.0.0", "Ends another connection's wait in a blocking command."),
    cmd("client|reply", 3, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, Session(Op::ClientReply))
        .syntax("(ON|OFF|SKIP)")
        .doc("3.2.0", "Turns the server's replies to this connection on or off."),
    cmd("client|tracking", -3, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_tracking))
        .syntax("(ON|OFF) [REDIRECT client-id%i] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]")
        .doc("6.0.0", "Turns server-assisted client-side caching on or off for this connection."),
    cmd("client|caching", 3, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_caching))
        .syntax("(YES|NO)")
        .doc("6.0.0", "Says whether the keys of the next command are tracked (OPTIN/OPTOUT modes)."),
    cmd("client|getredir", 2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_getredir))
        .doc("6.0.0", "Returns the client id tracking invalidations are redirected to."),
    cmd("client|trackinginfo", 2, NOSCRIPT | LOADING | STALE, NOKEYS, G::Connection, C(client_trackinginfo))
        .doc("6.2.0", "Describes this connection's client-side caching mode."),
    cmd("client|help", 2, LOADING | STALE, NOKEYS, G::Connection, C(client_help))
        .doc("5.0.0", "Lists the CLIENT subcommands."),
];

pub static COMMANDS: &[CommandSpec] = &[
    cmd("ping", -1, FAST | SENTINEL, NOKEYS, G::Connection, C(ping))
        .syntax("[message]")
        .doc("1.0.0", "Answers PONG, or echoes the argument; checks the connection is alive.")
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    cmd("echo", 2, LOADING | STALE | FAST, NOKEYS, G::Connection, C(echo))
        .syntax("message")
        .doc("1.0.0", "Returns the given string."),
    cmd("quit", -1, ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH, NOKEYS, G::Connection, Session(Op::Quit))
        .doc("1.0.0", "Closes the connection after replying."),
    cmd(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY,
        NOKEYS,
        G::Connection,
        C(hello),
    )
    .syntax("[protover%i [AUTH username password] [SETNAME clientname]]")
    .doc("6.0.0", "Picks the protocol version, optionally authenticates and names the connection."),
    cmd(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY,
        NOKEYS,
        G::Connection,
        C(auth),
    )
    .syntax("[username] password")
    .doc("1.0.0", "Authenticates the connection."),
    cmd("select", 2, LOADING | STALE | FAST, NOKEYS, G::Connection, C(select))
        .syntax("index%i")
        .doc("1.0.0", "Switches the connection to another logical database."),
    cmd(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        NOKEYS,
        G::Connection,
        Session(Op::Reset),
    )
    .doc("6.2.0", "Returns the connection to its initial state."),
    container("client", -2, SENTINEL, G::Connection, CLIENT_SUBS)
        .doc("2.4.0", "Container for connection management subcommands."),
];

pub fn ping(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    match args.len() {
        1 => Reply::status_static("PONG"),
        2 => Reply::Bulk(args[1].clone()),
        _ => Reply::wrong_arity("ping"),
    }
}

pub fn echo(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    Reply::Bulk(args[1].clone())
}

pub fn select(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let Some(db) = parse_i64(&args[1]) else {
        return Reply::not_integer();
    };
    // Redis reads the index as an `int`.
    if i32::try_from(db).is_err() {
        return Reply::err(crate::protocol::errors::OUT_OF_RANGE_I32);
    }
    if db != 0 && ctx.server.cluster.is_some() {
        return Reply::err("SELECT is not allowed in cluster mode");
    }
    if db < 0 || db as u64 >= ctx.server.databases() as u64 {
        return Reply::err(crate::protocol::errors::DB_INDEX_OUT_OF_RANGE);
    }
    ctx.client.set_db(db as usize);
    Reply::ok()
}

/// Authenticates the connection as `user`: on success it runs as that
/// user from now on; a failure is recorded in the ACL log (reason `auth`,
/// the command as typed for object).
fn authenticate(ctx: &mut ConnCtx, user: &[u8], pass: &[u8], typed: &Bytes) -> bool {
    if crate::commands::acl::log_in(ctx.server, ctx.client, user, |rules| rules.password_matches(pass)) {
        return true;
    }
    let info = &ctx.client.info;
    let context = if info.meta.lock().multi >= 0 { AclContext::Multi } else { AclContext::Toplevel };
    crate::commands::dispatch::acl_log(
        ctx.server,
        info,
        crate::acl::log::Reason::Auth,
        context,
        typed.clone(),
        Bytes::copy_from_slice(user),
    );
    false
}

fn wrongpass() -> Reply {
    Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
}

pub fn auth(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let (user, pass): (&[u8], &[u8]) = match args.len() {
        2 => {
            if ctx.server.acl.default_nopass() {
                return Reply::err(
                    "AUTH <password> called without any password configured for the default user. \
                     Are you sure your configuration is correct?",
                );
            }
            (b"default", &args[1])
        }
        3 => (&args[1], &args[2]),
        _ => return Reply::syntax_error(),
    };
    if !authenticate(ctx, user, pass, &args[0]) {
        return wrongpass();
    }
    Reply::ok()
}

pub fn hello(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let mut proto = None;
    if let Some(v) = args.get(1) {
        let Some(v) = parse_i64(v) else {
            return Reply::err("Protocol version is not an integer or out of range");
        };
        if !(2..=3).contains(&v) {
            return Reply::error("NOPROTO unsupported protocol version");
        }
        proto = Some(v as u8);
    }
    let mut j = 2;
    // Options take effect in order, as in Redis 7.0: AUTH authenticates and
    // SETNAME names the client at once, whatever follows.
    while j < args.len() {
        let more = args.len() - 1 - j;
        if eq_ic(&args[j], "auth") && more >= 2 {
            if !authenticate(ctx, &args[j + 1], &args[j + 2], &args[0]) {
                return wrongpass();
            }
            j += 3;
        } else if eq_ic(&args[j], "setname") && more >= 1 {
            if let Err(e) = set_name(ctx.client, &args[j + 1]) {
                return e;
            }
            j += 2;
        } else {
            return Reply::error_from_bytes(
                [&b"ERR Syntax error in HELLO option '"[..], crate::protocol::c_str(&args[j]), b"'"].concat(),
            );
        }
    }
    if !ctx.client.authenticated {
        return Reply::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH \
             <user> <pass> option can be used to authenticate the client and select the RESP protocol version \
             at the same time",
        );
    }
    if let Some(p) = proto {
        ctx.client.set_resp(p);
    }
    let s = |t: &str| Reply::bulk_str(t);
    Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(crate::REDIS_VERSION)),
        (s("proto"), Reply::Int(ctx.client.resp as i64)),
        (s("id"), Reply::Int(ctx.client.id() as i64)),
        (s("mode"), s("standalone")),
        (s("role"), s("master")),
        (s("modules"), Reply::Array(Vec::new())),
    ])
}

/// Redis allows only printable ASCII without spaces in client names and
/// library attributes, so CLIENT LIST stays one line with space-separated fields.
fn valid_attr(v: &[u8]) -> bool {
    v.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn set_name(client: &mut ClientState, name: &Bytes) -> Result<(), Reply> {
    if !valid_attr(name) {
        return Err(Reply::err("Client names cannot contain spaces, newlines or special characters."));
    }
    client.info.meta.lock().name = (!name.is_empty()).then(|| name.clone());
    Ok(())
}

pub fn client_id(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Int(ctx.client.id() as i64)
}

pub fn client_setname(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    match set_name(ctx.client, &args[2]) {
        Ok(()) => Reply::ok(),
        Err(e) => e,
    }
}

pub fn client_getname(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    match &ctx.client.info.meta.lock().name {
        Some(n) => Reply::Bulk(n.clone()),
        None => Reply::Nil,
    }
}

/// CLIENT SETINFO (Redis 7.2; client libraries send it on connect).
pub fn client_setinfo(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let attr = String::from_utf8_lossy(&args[2]).into_owned();
    let lib_name = if attr.eq_ignore_ascii_case("lib-name") {
        true
    } else if attr.eq_ignore_ascii_case("lib-ver") {
        false
    } else {
        return Reply::err(format!("Unrecognized option '{attr}'"));
    };
    if !valid_attr(&args[3]) {
        return Reply::err(format!("{attr} cannot contain spaces, newlines or special characters."));
    }
    let value = (!args[3].is_empty()).then(|| String::from_utf8_lossy(&args[3]).into_owned());
    let mut meta = ctx.client.info.meta.lock();
    if lib_name {
        meta.lib_name = value;
    } else {
        meta.lib_ver = value;
    }
    Reply::ok()
}

/// One CLIENT LIST line in Redis 7's field order (7.2's lib-name/lib-ver at the end).
/// Buffer sizes are the connection's own buffers (`ClientInfo::bufs`): one
/// input buffer (`qbuf`, `rbs`) and one reply buffer (`obl`, `omem`).
pub fn client_line(c: &ClientInfo, now_ms: u64) -> String {
    let meta = c.meta.lock().clone();
    let age = c.created.elapsed().as_secs();
    let idle = now_ms.saturating_sub(c.last_active.load(Ordering::Relaxed)) / 1000;
    let cmd = match c.last_cmd.load(Ordering::Relaxed) {
        usize::MAX => "NULL",
        i => crate::commands::registry::all().get(i).map(|s| s.name).unwrap_or("NULL"),
    };
    let tracking = c.tracking.flags();
    let flags = client_flags(&meta, tracking);
    let redir = if tracking == 0 { -1 } else { c.tracking.redirect.load(Ordering::Relaxed) as i64 };
    let b = &c.bufs;
    let load = |a: &std::sync::atomic::AtomicUsize| a.load(Ordering::Relaxed);
    let (qbuf, qbuf_cap, peak) = (load(&b.qbuf), load(&b.qbuf_cap), load(&b.qbuf_peak));
    let (argv, multi, out) = (load(&b.argv), load(&b.multi), load(&b.out));
    // Messages waiting for a subscriber count as its output, as in Redis
    // (they overlap `out` while being written: the larger stands for both).
    let out = out.max(load(&b.pubsub));
    let tot = c.memory();
    let events = if out > 0 { "rw" } else { "r" };
    let name = meta.name.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} \
         qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll=0 omem={} tot-mem={} events={} \
         cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        name,
        age,
        idle,
        flags,
        c.db.load(Ordering::Relaxed),
        meta.sub,
        meta.psub,
        meta.ssub,
        meta.multi,
        qbuf,
        qbuf_cap.saturating_sub(qbuf),
        argv,
        multi,
        qbuf_cap,
        peak,
        out,
        out,
        tot,
        events,
        cmd,
        meta.user,
        redir,
        meta.resp,
        meta.lib_name.as_deref().unwrap_or(""),
        meta.lib_ver.as_deref().unwrap_or(""),
    )
}

/// CLIENT LIST's flag letters in Redis's order: the ones recorded in
/// `meta.flags`, subscribed (`P`), in MULTI (`x`), and the tracking ones
/// (`t` on, `R` broken redirect, `B` broadcast); `N` for none.
fn client_flags(meta: &crate::net::client::ClientMeta, tracking: u32) -> String {
    use crate::net::client::tracking_flags as tf;
    let mut have: Vec<char> = meta.flags.chars().collect();
    if meta.sub + meta.psub + meta.ssub > 0 {
        have.push('P');
    }
    if meta.multi >= 0 {
        have.push('x');
    }
    if tracking & tf::ON != 0 {
        have.push('t');
    }
    if tracking & tf::BROKEN_REDIR != 0 {
        have.push('R');
    }
    if tracking & tf::BCAST != 0 {
        have.push('B');
    }
    let mut out: String = "OSMPxbtRBdcuAUre".chars().filter(|f| have.contains(f)).collect();
    // Letters Redis's order does not place go last, in the order recorded.
    for f in have {
        if !out.contains(f) {
            out.push(f);
        }
    }
    if out.is_empty() {
        out.push('N');
    }
    out
}

fn is_pubsub(c: &ClientInfo) -> bool {
    let m = c.meta.lock();
    m.sub + m.psub + m.ssub > 0
}

/// Client types of CLIENT LIST/KILL TYPE (replica links have flag S, a
/// replica's link to its master flag M).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    Master,
    Pubsub,
}

fn parse_type(arg: &[u8]) -> Result<ClientType, Reply> {
    let t = if eq_ic(arg, "normal") {
        ClientType::Normal
    } else if eq_ic(arg, "replica") || eq_ic(arg, "slave") {
        ClientType::Replica
    } else if eq_ic(arg, "master") {
        ClientType::Master
    } else if eq_ic(arg, "pubsub") {
        ClientType::Pubsub
    } else {
        return Err(Reply::error_concat(&[b"ERR Unknown client type '", crate::protocol::c_str(arg), b"'"]));
    };
    Ok(t)
}

fn type_matches(c: &ClientInfo, t: ClientType) -> bool {
    let (replica, master) = {
        let meta = c.meta.lock();
        (meta.flags.contains('S'), meta.flags.contains('M'))
    };
    match t {
        ClientType::Normal => !replica && !master && !is_pubsub(c),
        ClientType::Pubsub => !replica && !master && is_pubsub(c),
        ClientType::Replica => replica,
        ClientType::Master => master,
    }
}

fn lines(clients: impl Iterator<Item = Arc<ClientInfo>>) -> Reply {
    let now = crate::storage::now_ms();
    let mut text = String::new();
    for c in clients {
        text.push_str(&client_line(&c, now));
        text.push('\n');
    }
    Reply::Verbatim("txt", Bytes::from(text))
}

pub fn client_list(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let all = ctx.server.clients.live();
    if args.len() == 2 {
        return lines(all.into_iter());
    }
    if args.len() == 4 && eq_ic(&args[2], "type") {
        let t = match parse_type(&args[3]) {
            Ok(t) => t,
            Err(e) => return e,
        };
        return lines(all.into_iter().filter(|c| type_matches(c, t)));
    }
    if args.len() >= 4 && eq_ic(&args[2], "id") {
        let mut ids = Vec::with_capacity(args.len() - 3);
        for a in &args[3..] {
            match parse_i64(a) {
                Some(id) => ids.push(id),
                None => return Reply::err("Invalid client ID"),
            }
        }
        // Redis lists them in the order asked, each once per mention.
        let now = crate::storage::now_ms();
        let mut text = String::new();
        for id in ids {
            if let Some(c) = u64::try_from(id).ok().and_then(|id| ctx.server.clients.get(id)) {
                text.push_str(&client_line(&c, now));
                text.push('\n');
            }
        }
        return Reply::Verbatim("txt", Bytes::from(text));
    }
    Reply::syntax_error()
}

pub fn client_info(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let mut line = client_line(&ctx.client.info, crate::storage::now_ms());
    line.push('\n');
    Reply::Verbatim("txt", Bytes::from(line))
}

/// CLIENT KILL's filters (new form); every given one must match.
#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    kind: Option<ClientType>,
    addr: Option<String>,
    laddr: Option<String>,
    user: Option<u64>,
    skipme: bool,
}

fn parse_kill_filter(server: &crate::server::Server, args: &[Bytes]) -> Result<KillFilter, Reply> {
    let mut f = KillFilter { skipme: true, ..Default::default() };
    if !args.len().is_multiple_of(2) {
        return Err(Reply::syntax_error());
    }
    for pair in args.chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        let text = || String::from_utf8_lossy(val).into_owned();
        if eq_ic(opt, "id") {
            match parse_i64(val) {
                Some(id) if id > 0 => f.id = Some(id as u64),
                _ => return Err(Reply::err("client-id should be greater than 0")),
            }
        } else if eq_ic(opt, "type") {
            f.kind = Some(parse_type(val)?);
        } else if eq_ic(opt, "addr") {
            f.addr = Some(text());
        } else if eq_ic(opt, "laddr") {
            f.laddr = Some(text());
        } else if eq_ic(opt, "user") {
            match server.acl.get(val) {
                Some(u) => f.user = Some(u.id),
                None => return Err(Reply::error_concat(&[b"ERR No such user '", crate::protocol::c_str(val), b"'"])),
            }
        } else if eq_ic(opt, "skipme") {
            f.skipme = if eq_ic(val, "yes") {
                true
            } else if eq_ic(val, "no") {
                false
            } else {
                return Err(Reply::syntax_error());
            };
        } else {
            return Err(Reply::syntax_error());
        }
    }
    Ok(f)
}

impl KillFilter {
    fn matches(&self, c: &ClientInfo, me: u64) -> bool {
        (!self.skipme || c.id != me)
            && self.id.is_none_or(|id| c.id == id)
            && self.kind.is_none_or(|t| type_matches(c, t))
            && self.addr.as_ref().is_none_or(|a| &c.addr == a)
            && self.laddr.as_ref().is_none_or(|a| &c.laddr == a)
            && self.user.is_none_or(|u| c.user_id.load(Ordering::Acquire) == u)
    }
}

/// Kills `c`; the own connection closes once this reply is written.
fn kill(ctx: &mut ConnCtx, c: &ClientInfo) {
    if c.id == ctx.client.id() {
        ctx.client.close_after_reply = true;
    } else {
        c.kill();
    }
}

pub fn client_kill(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let me = ctx.client.id();
    if args.len() == 3 {
        // The old form: CLIENT KILL addr:port, which may kill the caller too.
        let addr = String::from_utf8_lossy(&args[2]);
        let Some(c) = ctx.server.clients.live().into_iter().find(|c| c.addr == addr) else {
            return Reply::err("No such client");
        };
        kill(ctx, &c);
        return Reply::ok();
    }
    let filter = match parse_kill_filter(ctx.server, &args[2..]) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let mut killed = 0;
    for c in ctx.server.clients.live() {
        if filter.matches(&c, me) {
            kill(ctx, &c);
            killed += 1;
        }
    }
    Reply::Int(killed)
}

/// CLIENT NO-EVICT ON|OFF: the client is never evicted for
/// `maxmemory-clients` (CLIENT LIST's `e` flag). Lifting it may evict at
/// once, this client included.
pub fn client_no_evict(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let on = if eq_ic(&args[2], "on") {
        true
    } else if eq_ic(&args[2], "off") {
        false
    } else {
        return Reply::syntax_error();
    };
    ctx.client.info.set_flag('e', on);
    ctx.client.info.no_evict.store(on, Ordering::Relaxed);
    if !on {
        crate::net::eviction::reaccount_and_evict(ctx.server);
    }
    Reply::ok()
}

/// CLIENT PAUSE timeout [WRITE|ALL].
pub fn client_pause(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let Some(ms) = crate::util::parse_i64(&args[2]) else {
        return Reply::err(crate::protocol::errors::TIMEOUT_NOT_INTEGER);
    };
    if ms < 0 {
        return Reply::err(crate::protocol::errors::TIMEOUT_NEGATIVE);
    }
    let all = match args.get(3) {
        None => true,
        Some(m) if eq_ic(m, "all") => true,
        Some(m) if eq_ic(m, "write") => false,
        Some(_) => return Reply::err("CLIENT PAUSE mode must be WRITE or ALL"),
    };
    if args.len() > 4 {
        return Reply::syntax_error();
    }
    let until = crate::storage::now_ms().saturating_add(ms as u64);
    ctx.server.pause.start(until, all);
    Reply::ok()
}

pub fn client_unpause(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    ctx.server.pause.stop();
    Reply::ok()
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 when the client was waiting in a
/// blocking command and is now woken.
pub fn client_unblock(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    use crate::net::client::{UNBLOCK_ERROR, UNBLOCK_TIMEOUT};
    // Redis checks the reason before the id.
    let how = match args.get(3) {
        None => UNBLOCK_TIMEOUT,
        Some(r) if args.len() == 4 && eq_ic(r, "timeout") => UNBLOCK_TIMEOUT,
        Some(r) if args.len() == 4 && eq_ic(r, "error") => UNBLOCK_ERROR,
        Some(_) if args.len() == 4 => return Reply::err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
        Some(_) => {
            return Reply::err(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[1])
            ))
        }
    };
    let Some(id) = crate::util::parse_i64(&args[2]) else {
        return Reply::not_integer();
    };
    let Some(target) = u64::try_from(id).ok().and_then(|id| ctx.server.clients.get(id)) else {
        return Reply::Int(0);
    };
    if !target.blocked.load(Ordering::Acquire) {
        return Reply::Int(0);
    }
    target.unblock_request.store(how, Ordering::Release);
    target.unblock.notify_waiters();
    Reply::Int(1)
}

/// CLIENT REPLY ON|OFF|SKIP; the connection loop drops replies per the mode.
pub fn client_reply(client: &mut ClientState, args: &[Bytes]) -> Reply {
    let Some(mode) = args.get(2) else {
        return Reply::wrong_arity("client|reply");
    };
    if eq_ic(mode, "on") {
        client.reply_mode = ReplyMode::On;
        Reply::ok()
    } else if eq_ic(mode, "off") {
        client.reply_mode = ReplyMode::Off;
        Reply::NoReply
    } else if eq_ic(mode, "skip") {
        // Only when replies are on: SKIP under OFF changes nothing.
        if client.reply_mode != ReplyMode::Off {
            client.reply_mode = ReplyMode::SkipNext;
        }
        Reply::NoReply
    } else {
        Reply::syntax_error()
    }
}

// ------------------------------------------------------ client-side caching

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP]: options parsed and checked in Redis's order, with
/// Redis's errors.
pub fn client_tracking(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    use crate::net::client::tracking_flags as tf;
    let mut redirect: u64 = 0;
    let mut options = 0u32;
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if eq_ic(a, "redirect") && more {
            j += 1;
            if redirect != 0 {
                return Reply::err("A client can only redirect to a single other client");
            }
            let Some(id) = parse_i64(&args[j]) else {
                return Reply::not_integer();
            };
            // The client must exist now (it may go away later).
            match u64::try_from(id).ok().filter(|&id| id != 0 && ctx.server.clients.get(id).is_some()) {
                Some(id) => redirect = id,
                None => return Reply::err("The client ID you want redirect to does not exist"),
            }
        } else if eq_ic(a, "bcast") {
            options |= tf::BCAST;
        } else if eq_ic(a, "optin") {
            options |= tf::OPTIN;
        } else if eq_ic(a, "optout") {
            options |= tf::OPTOUT;
        } else if eq_ic(a, "noloop") {
            options |= tf::NOLOOP;
        } else if eq_ic(a, "prefix") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return Reply::syntax_error();
        }
        j += 1;
    }
    let info = ctx.client.info.clone();
    if eq_ic(&args[2], "off") {
        crate::pubsub::tracking::disable(ctx.server, &info);
        return Reply::ok();
    }
    if !eq_ic(&args[2], "on") {
        return Reply::syntax_error();
    }
    let current = info.tracking.flags();
    if options & tf::BCAST == 0 && !prefixes.is_empty() {
        return Reply::err("PREFIX option requires BCAST mode to be enabled");
    }
    if current & tf::ON != 0 && (current & tf::BCAST) != (options & tf::BCAST) {
        return Reply::err(
            "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        );
    }
    if options & tf::BCAST != 0 && options & (tf::OPTIN | tf::OPTOUT) != 0 {
        return Reply::err("OPTIN and OPTOUT are not compatible with BCAST");
    }
    if options & tf::OPTIN != 0 && options & tf::OPTOUT != 0 {
        return Reply::err("You can't specify both OPTIN mode and OPTOUT mode");
    }
    if (options & tf::OPTIN != 0 && current & tf::OPTOUT != 0)
        || (options & tf::OPTOUT != 0 && current & tf::OPTIN != 0)
    {
        return Reply::err(
            "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        );
    }
    if options & tf::BCAST != 0 {
        let existing = info.tracking.prefixes.lock().clone();
        if let Some(e) = crate::pubsub::tracking::prefix_collision(&existing, &prefixes) {
            return Reply::error_from_bytes(e);
        }
    }
    crate::pubsub::tracking::enable(ctx.server, &info, redirect, options, &prefixes);
    Reply::ok()
}

/// CLIENT CACHING YES|NO: whether the next command's keys are tracked, in
/// OPTIN (YES) or OPTOUT (NO) mode.
pub fn client_caching(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    use crate::net::client::tracking_flags as tf;
    let t = &ctx.client.info.tracking;
    let flags = t.flags();
    if flags & tf::ON == 0 {
        return Reply::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        );
    }
    if eq_ic(&args[2], "yes") {
        if flags & tf::OPTIN == 0 {
            return Reply::err("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
        }
    } else if eq_ic(&args[2], "no") {
        if flags & tf::OPTOUT == 0 {
            return Reply::err("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
        }
    } else {
        return Reply::syntax_error();
    }
    t.set(tf::CACHING, true);
    Reply::ok()
}

/// CLIENT GETREDIR: the redirect client (0: none), -1 when not tracking.
pub fn client_getredir(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let t = &ctx.client.info.tracking;
    if t.flags() & crate::net::client::tracking_flags::ON == 0 {
        return Reply::Int(-1);
    }
    Reply::Int(t.redirect.load(Ordering::Relaxed) as i64)
}

/// CLIENT TRACKINGINFO: flags, redirect and prefixes, as Redis lists them.
pub fn client_trackinginfo(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    use crate::net::client::tracking_flags as tf;
    let t = &ctx.client.info.tracking;
    let flags = t.flags();
    let on = flags & tf::ON != 0;
    let mut names: Vec<Reply> = vec![Reply::bulk_str(if on { "on" } else { "off" })];
    let caching = flags & tf::CACHING != 0;
    for (flag, name) in [(tf::BCAST, "bcast"), (tf::OPTIN, "optin"), (tf::OPTOUT, "optout")] {
        if flags & flag != 0 {
            names.push(Reply::bulk_str(name));
            if caching && flag == tf::OPTIN {
                names.push(Reply::bulk_str("caching-yes"));
            }
            if caching && flag == tf::OPTOUT {
                names.push(Reply::bulk_str("caching-no"));
            }
        }
    }
    for (flag, name) in [(tf::NOLOOP, "noloop"), (tf::BROKEN_REDIR, "broken_redirect")] {
        if flags & flag != 0 {
            names.push(Reply::bulk_str(name));
        }
    }
    let redirect = if on { t.redirect.load(Ordering::Relaxed) as i64 } else { -1 };
    let prefixes: Vec<Reply> = t.prefixes.lock().iter().map(|p| Reply::Bulk(p.clone())).collect();
    Reply::Map(vec![
        (Reply::bulk_str("flags"), Reply::Set(names)),
        (Reply::bulk_str("redirect"), Reply::Int(redirect)),
        (Reply::bulk_str("prefixes"), Reply::Array(prefixes)),
    ])
}

pub fn client_help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("CLIENT", crate::commands::help::CLIENT)
}
