//! DUMP, RESTORE, RESTORE-ASKING and MIGRATE (Redis's cluster.c).
//!
//! Payloads are Redis's: the value in RDB encoding, the RDB version (2
//! bytes) and a CRC-64 (`persist::rdb`), so values move between moonshard
//! and redis-server in both directions.
//!
//! MIGRATE talks to the target the way Redis does: a blocking connection
//! (kept for reuse up to 10 seconds per `host:port`), AUTH and SELECT when
//! needed, one RESTORE per key, each reply read within the timeout. Like
//! Redis, which blocks the whole server meanwhile, it holds its keys' shard
//! for the duration, so nothing changes the keys between their dump and
//! their deletion; clients of other shards carry on.

use super::keys::{exists_w, lookup_read, take_key};
use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::net::tls::Link;
use crate::persist::rdb;
use crate::protocol::Reply;
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub static COMMANDS: &[CommandSpec] = &[
    cmd("dump", 2, READONLY, K1, G::Generic, K(dump))
        .syntax("key%k")
        .doc("2.6.0", "Serializes a key's value in the format RESTORE reads.")
        .tips(&["nondeterministic_output"]),
    cmd("restore", -4, WRITE | DENYOOM, K1, G::Generic, K(restore))
        .syntax("key%k ttl%i serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds%i] [FREQ frequency%i]")
        .doc("2.6.0", "Creates a key from a value serialized by DUMP.")
        .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0))])
        .acl(&["dangerous"]),
    cmd("restore-asking", -4, WRITE | DENYOOM | ASKING, K1, G::Server, K(restore))
        .syntax("key%k ttl%i serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds%i] [FREQ frequency%i]")
        .doc("3.0.0", "RESTORE as sent by MIGRATE to a cluster node importing the slot.")
        .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0))])
        .acl(&["keyspace", "dangerous"]),
    cmd("migrate", -6, WRITE, KeySpec::Custom { find: migrate_keys, legacy: (3, 3, 1) }, G::Generic, K(migrate))
        .syntax("host port%i (key%k|\"\") destination-db%i timeout%i [COPY] [REPLACE] [[AUTH password]|[AUTH2 username password]] [KEYS key%k [key ...]]")
        .doc("2.6.0", "Moves keys to another server: DUMP here, RESTORE there, then DEL here.")
        .tips(&["nondeterministic_output"])
        .key_specs(&[
            ks(&["RW", "access", "delete"], idx(3), range(0, 1, 0)),
            ks(&["RW", "access", "delete", "incomplete"], kw("KEYS", -2), range(-1, 1, 0)),
        ])
        .acl(&["dangerous"]),
];

// -------------------------------------------------------------- DUMP

pub fn dump(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let opts = rdb::encode_options(&ctx.server.config);
    match lookup_read(ctx, &args[1]) {
        Some(e) => Reply::Bulk(Bytes::from(rdb::dump_payload(&e.value, &opts))),
        None => Reply::Nil,
    }
}

// -------------------------------------------------------------- RESTORE

/// Whether `sanitize-dump-payload` asks for a deep check of this RESTORE:
/// `yes`, or `clients` for a client's command (not the master's stream,
/// nor the AOF) whose user is not `skip-sanitize-payload`.
fn deep_check_asked(ctx: &Ctx) -> bool {
    match ctx.server.config.get("sanitize-dump-payload").as_deref() {
        Some("yes") => true,
        Some("clients") => {
            if ctx.origin == super::dispatch::Origin::AofLoad
                || ctx.server.persist.loading.load(std::sync::atomic::Ordering::Relaxed)
            {
                return false;
            }
            let id = ctx.client.user_id.load(std::sync::atomic::Ordering::Relaxed);
            ctx.server.acl.by_id(id).is_none_or(|u| u.rules().sanitize != Some(false))
        }
        _ => false,
    }
}

/// The deep checks Redis makes of a payload (`dump_payload_sanitizations`):
/// one per compact encoding (ziplist, listpack, intset, zipmap), so one per
/// node of a quicklist or a stream.
fn deep_checks(payload: &[u8]) -> u64 {
    match payload.first() {
        // zipmap, ziplist list, intset, ziplist zset and hash, listpack hash and zset.
        Some(9..=13 | 16 | 17) => 1,
        // Quicklists and streams: their number of nodes comes first.
        Some(14 | 15 | 18 | 19) => rdb_len(&payload[1..]).unwrap_or(0),
        _ => 0,
    }
}

/// An RDB length (6, 14, 32 or 64 bits) at the start of `b`.
fn rdb_len(b: &[u8]) -> Option<u64> {
    let first = *b.first()?;
    match first >> 6 {
        0 => Some(u64::from(first & 0x3f)),
        1 => Some(u64::from(first & 0x3f) << 8 | u64::from(*b.get(1)?)),
        _ if first == 0x80 => Some(u64::from(u32::from_be_bytes(b.get(1..5)?.try_into().ok()?))),
        _ if first == 0x81 => Some(u64::from_be_bytes(b.get(1..9)?.try_into().ok()?)),
        _ => None,
    }
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
pub fn restore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let (mut replace, mut absttl) = (false, false);
    let (mut lfu_freq, mut lru_idle) = (-1i64, -1i64);
    let mut j = 4;
    while j < args.len() {
        let additional = args.len() - j - 1;
        let a = &args[j];
        if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "absttl") {
            absttl = true;
        } else if eq_ic(a, "idletime") && additional >= 1 && lfu_freq == -1 {
            let Some(v) = parse_i64(&args[j + 1]) else {
                return Reply::not_integer();
            };
            if v < 0 {
                return Reply::err("Invalid IDLETIME value, must be >= 0");
            }
            lru_idle = v;
            j += 1;
        } else if eq_ic(a, "freq") && additional >= 1 && lru_idle == -1 {
            let Some(v) = parse_i64(&args[j + 1]) else {
                return Reply::not_integer();
            };
            if !(0..=255).contains(&v) {
                return Reply::err("Invalid FREQ value, must be >= 0 and <= 255");
            }
            lfu_freq = v;
            j += 1;
        } else {
            return Reply::syntax_error();
        }
        j += 1;
    }
    if !replace && exists_w(ctx, key) {
        return Reply::error("BUSYKEY Target key name already exists.");
    }
    let Some(ttl) = parse_i64(&args[2]) else {
        return Reply::not_integer();
    };
    if ttl < 0 {
        return Reply::err("Invalid TTL value, must be >= 0");
    }
    let payload = &args[3];
    let skip_crc = ctx.server.debug.skip_checksum.load(std::sync::atomic::Ordering::Relaxed);
    let valid = if skip_crc { rdb::payload_version_ok(payload) } else { rdb::verify_payload(payload) };
    if !valid {
        return Reply::err("DUMP payload version or checksum are wrong");
    }
    // moonshard always decodes a payload whole (a deep check); it is counted
    // where Redis would check deeply, as Redis counts it.
    if deep_check_asked(ctx) {
        let n = deep_checks(payload);
        ctx.server.stats.dump_payload_sanitizations.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    let value = match rdb::restore_payload(payload, &rdb::decode_options(&ctx.server.config)) {
        Ok(v) => v,
        Err(_) => return Reply::err("Bad data format"),
    };
    let deleted = replace && take_key(ctx, key).is_some();
    let now = ctx.now as i64;
    // Redis adds the TTL to the clock as a C long long: a TTL past the end
    // of the range wraps to the past, so the key counts as already expired.
    let when = if ttl != 0 && !absttl { ttl.wrapping_add(now) } else { ttl };
    // A TTL already in the past: the key is not created (replaying the AOF
    // keeps it, to let it expire as it did).
    if when != 0 && when <= now && ctx.origin != super::dispatch::Origin::AofLoad {
        if deleted {
            ctx.written(key, "del");
            if ctx.propagating() {
                ctx.propagate_as(vec![Bytes::from_static(b"DEL"), key.clone()]);
            }
        }
        return Reply::ok();
    }
    ctx.db(key).set_with_expiry(key, value, when.max(0) as u64);
    if when != 0 && !absttl && ctx.propagating() {
        // Replayed with the absolute expiry, as Redis propagates it.
        let mut argv = args.to_vec();
        argv[2] = Bytes::from(when.to_string());
        argv.push(Bytes::from_static(b"ABSTTL"));
        ctx.propagate_as(argv);
    }
    let access = if crate::storage::memory::lfu_mode() {
        (lfu_freq >= 0).then(|| crate::storage::memory::access_freq(lfu_freq as u8, ctx.now))
    } else {
        (lru_idle >= 0).then(|| crate::storage::memory::access_idle(lru_idle as u64, ctx.now))
    };
    if let Some(a) = access {
        ctx.db(key).set_access(key, a);
    }
    ctx.written(key, "restore");
    Reply::ok()
}

// -------------------------------------------------------------- MIGRATE

/// MIGRATE's keys: the one at 3, or those after KEYS (which needs the key
/// argument empty), skipping the arguments of AUTH and AUTH2.
fn migrate_keys(args: &[Bytes]) -> Vec<usize> {
    let argc = args.len();
    let (mut first, mut num) = (3, 1);
    let mut i = 6;
    while i < argc {
        let a = &args[i];
        if eq_ic(a, "keys") {
            if !args[3].is_empty() {
                num = 0;
            } else {
                first = i + 1;
                num = argc - first;
            }
            break;
        }
        if eq_ic(a, "auth") {
            i += 1;
        } else if eq_ic(a, "auth2") {
            i += 2;
        }
        i += 1;
    }
    (first..first + num).filter(|&p| p < argc).collect()
}

/// A connection to a MIGRATE target, kept between calls.
struct Cached {
    /// TLS when `tls-cluster yes` (as Redis's MIGRATE).
    stream: Link,
    /// The database last selected on it (-1: unknown).
    last_db: i64,
    last_use: Instant,
}

/// Cached connections by `host:port`. A MIGRATE takes its connection out
/// while it uses it, so concurrent MIGRATEs never share one.
static SOCKETS: parking_lot::Mutex<Vec<(String, Cached)>> = parking_lot::Mutex::new(Vec::new());
const SOCKET_CACHE_ITEMS: usize = 64;
const SOCKET_CACHE_TTL: Duration = Duration::from_secs(10);

/// C's `atoi`: optional spaces and sign, then digits; 0 when none.
fn atoi(s: &[u8]) -> i64 {
    let t = std::str::from_utf8(s).unwrap_or("").trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).take(18).collect();
    let v: i64 = digits.parse().unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

/// A cached connection, or a new one. `Ok(Err(e))`: the address resolved
/// but connecting failed; Redis only notices that when it writes, so the
/// caller reports it as a write error.
///
/// With `tls` (`tls-cluster yes`) the connection is TLS, presenting this
/// server's client certificate; a failed handshake is a failure to connect.
fn get_socket(
    name: &str,
    host: &[u8],
    port: &[u8],
    timeout: Duration,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Option<Result<Cached, SockErr>> {
    {
        let mut cache = SOCKETS.lock();
        cache.retain(|(_, c)| c.last_use.elapsed() <= SOCKET_CACHE_TTL);
        if let Some(i) = cache.iter().position(|(n, _)| n == name) {
            let (_, mut c) = cache.swap_remove(i);
            c.last_use = Instant::now();
            return Some(Ok(c));
        }
    }
    let host = String::from_utf8_lossy(host).into_owned();
    let port = u16::try_from(atoi(port)).ok()?;
    let addrs: Vec<_> = (host.as_str(), port).to_socket_addrs().ok()?.collect();
    let mut err = SockErr::Other;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let stream = match &tls {
                    None => Link::Plain(stream),
                    Some(config) => Link::tls(config.clone(), stream, &host, timeout).ok()?,
                };
                return Some(Ok(Cached { stream, last_db: -1, last_use: Instant::now() }));
            }
            Err(e) => err = sock_err(&e),
        }
    }
    if addrs.is_empty() {
        return None;
    }
    Some(Err(err))
}

/// MIGRATE's connections kept for reuse (INFO's `migrate_cached_sockets`;
/// one that outlived its time counts no more, as Redis's cron closes it).
pub fn cached_sockets() -> usize {
    SOCKETS.lock().iter().filter(|(_, c)| c.last_use.elapsed() <= SOCKET_CACHE_TTL).count()
}

fn put_socket(name: String, c: Cached) {
    let mut cache = SOCKETS.lock();
    if cache.len() >= SOCKET_CACHE_ITEMS {
        cache.swap_remove(0);
    }
    cache.push((name, c));
}

fn put_bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn put_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        put_bulk(out, a);
    }
}

/// How a socket operation failed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SockErr {
    Timeout,
    Other,
}

fn sock_err(e: &std::io::Error) -> SockErr {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => SockErr::Timeout,
        _ => SockErr::Other,
    }
}

/// One reply line without its CRLF (at most 1 KiB, as Redis reads it); an
/// empty line counts as a failure, as in Redis.
fn read_line<R: BufRead>(r: &mut R) -> Result<Vec<u8>, SockErr> {
    let mut line = Vec::new();
    let n = r.by_ref().take(1024).read_until(b'\n', &mut line).map_err(|e| sock_err(&e))?;
    if n == 0 {
        return Err(SockErr::Other);
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    if line.is_empty() {
        return Err(SockErr::Other);
    }
    Ok(line)
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password | AUTH2 username password] [KEYS key [key ...]]
pub fn migrate(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut copy, mut replace) = (false, false);
    let (mut user, mut pass): (Option<&Bytes>, Option<&Bytes>) = (None, None);
    let (mut first_key, mut num_keys) = (3, 1);
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = &args[j];
        if eq_ic(a, "copy") {
            copy = true;
        } else if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "auth") {
            if more == 0 {
                return Reply::syntax_error();
            }
            j += 1;
            pass = Some(&args[j]);
        } else if eq_ic(a, "auth2") {
            if more < 2 {
                return Reply::syntax_error();
            }
            user = Some(&args[j + 1]);
            pass = Some(&args[j + 2]);
            j += 2;
        } else if eq_ic(a, "keys") {
            if !args[3].is_empty() {
                return Reply::err("When using MIGRATE KEYS option, the key argument must be set to the empty string");
            }
            first_key = j + 1;
            num_keys = args.len() - j - 1;
            break;
        } else {
            return Reply::syntax_error();
        }
        j += 1;
    }
    let Some(timeout) = parse_i64(&args[5]) else {
        return Reply::not_integer();
    };
    let Some(dbid) = parse_i64(&args[4]) else {
        return Reply::not_integer();
    };
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });

    // The keys that are here, with their payloads and expiry.
    let opts = rdb::encode_options(&ctx.server.config);
    let mut found: Vec<(Bytes, Vec<u8>, u64)> = Vec::new();
    for key in &args[first_key..first_key + num_keys] {
        if let Some(e) = lookup_read(ctx, key) {
            found.push((key.clone(), rdb::dump_payload(&e.value, &opts), e.expire_at));
        }
    }
    if found.is_empty() {
        return Reply::status_static("NOKEY");
    }

    let name = format!("{}:{}", String::from_utf8_lossy(&args[1]), String::from_utf8_lossy(&args[2]));
    let tls = if ctx.server.config.get("tls-cluster").as_deref() == Some("yes") {
        match ctx.server.tls.client_config() {
            Ok(config) => Some(config),
            Err(_) => return Reply::error("IOERR error or timeout connecting to the client"),
        }
    } else {
        None
    };
    let mut may_retry = true;
    loop {
        let mut sock = match get_socket(&name, &args[1], &args[2], timeout, tls.clone()) {
            None => return Reply::error("IOERR error or timeout connecting to the client"),
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                if e != SockErr::Timeout && may_retry {
                    may_retry = false;
                    continue;
                }
                return Reply::error("IOERR error or timeout writing to target instance");
            }
        };
        let _ = sock.stream.socket().set_write_timeout(Some(timeout));
        let _ = sock.stream.socket().set_read_timeout(Some(timeout));

        let mut cmd = Vec::new();
        if let Some(p) = pass {
            match user {
                Some(u) => put_command(&mut cmd, &[b"AUTH", u, p]),
                None => put_command(&mut cmd, &[b"AUTH", p]),
            }
        }
        let select = sock.last_db != dbid;
        if select {
            put_command(&mut cmd, &[b"SELECT", dbid.to_string().as_bytes()]);
        }
        // Keys that expired since they were looked up are left out.
        let now = crate::storage::now_ms() as i64;
        let mut sent: Vec<&Bytes> = Vec::new();
        for (key, payload, expire_at) in &found {
            let mut ttl = 0i64;
            if *expire_at != 0 {
                ttl = *expire_at as i64 - now;
                if ttl < 0 {
                    continue;
                }
                ttl = ttl.max(1);
            }
            let ttl = ttl.to_string();
            // A cluster node sends RESTORE-ASKING: the target imports the slot.
            let restore: &[u8] = if ctx.server.cluster.is_some() { b"RESTORE-ASKING" } else { b"RESTORE" };
            let mut argv: Vec<&[u8]> = vec![restore, key, ttl.as_bytes(), payload];
            if replace {
                argv.push(b"REPLACE");
            }
            put_command(&mut cmd, &argv);
            sent.push(key);
        }

        // Send, in 64 KiB writes.
        let mut failure: Option<(bool, SockErr)> = None;
        for chunk in cmd.chunks(64 * 1024) {
            if let Err(e) = sock.stream.write_all(chunk) {
                failure = Some((true, sock_err(&e)));
                break;
            }
        }
        let mut reader = BufReader::new(&mut sock.stream);
        let read = read_line::<BufReader<&mut Link>>;
        let mut auth_reply = Vec::new();
        let mut select_reply = Vec::new();
        if failure.is_none() && pass.is_some() {
            match read(&mut reader) {
                Ok(l) => auth_reply = l,
                Err(e) => failure = Some((false, e)),
            }
        }
        if failure.is_none() && select {
            match read(&mut reader) {
                Ok(l) => select_reply = l,
                Err(e) => failure = Some((false, e)),
            }
        }
        if let Some((writing, e)) = failure {
            // Nothing was done yet: one more try on a fresh connection,
            // unless it timed out.
            if e != SockErr::Timeout && may_retry {
                may_retry = false;
                continue;
            }
            let what = if writing { "writing" } else { "reading" };
            return Reply::error(format!("IOERR error or timeout {what} to target instance"));
        }

        let mut target_error: Option<String> = None;
        let mut socket_error: Option<SockErr> = None;
        let mut deleted: Vec<Bytes> = Vec::new();
        let mut replies = 0;
        for key in &sent {
            let line = match read(&mut reader) {
                Ok(l) => l,
                Err(e) => {
                    socket_error = Some(e);
                    break;
                }
            };
            replies += 1;
            let failed = if pass.is_some() && auth_reply.first() == Some(&b'-') {
                Some(&auth_reply)
            } else if select && select_reply.first() == Some(&b'-') {
                Some(&select_reply)
            } else if line.first() == Some(&b'-') {
                Some(&line)
            } else {
                None
            };
            match failed {
                Some(errline) if target_error.is_none() => {
                    sock.last_db = -1;
                    target_error = Some(String::from_utf8_lossy(&errline[1..]).into_owned());
                }
                Some(_) => {}
                None if !copy => {
                    if ctx.db(key).remove(key).is_some() {
                        ctx.written(key, "del");
                    }
                    deleted.push((*key).clone());
                }
                None => {}
            }
        }
        if target_error.is_none() && replies == 0 && may_retry && socket_error.is_some_and(|e| e != SockErr::Timeout) {
            may_retry = false;
            continue;
        }
        if !deleted.is_empty() && ctx.propagating() {
            let mut argv = Vec::with_capacity(deleted.len() + 1);
            argv.push(Bytes::from_static(b"DEL"));
            argv.extend(deleted);
            ctx.propagate_as(argv);
        }
        let clean = reader.buffer().is_empty();
        drop(reader);
        if socket_error.is_some() && target_error.is_none() {
            return Reply::error("IOERR error or timeout reading to target instance");
        }
        if socket_error.is_none() && clean {
            if target_error.is_none() {
                sock.last_db = dbid;
            }
            sock.last_use = Instant::now();
            put_socket(name, sock);
        }
        return match target_error {
            Some(e) => Reply::err(format!("Target instance replied with error: {e}")),
            None => Reply::ok(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<Bytes> {
        args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    #[test]
    fn migrate_key_positions() {
        assert_eq!(migrate_keys(&v(&["migrate", "h", "1", "k", "0", "0"])), vec![3]);
        assert_eq!(migrate_keys(&v(&["migrate", "h", "1", "", "0", "0", "keys", "a", "b"])), vec![7, 8]);
        assert_eq!(migrate_keys(&v(&["migrate", "h", "1", "k", "0", "0", "auth", "keys"])), vec![3]);
        assert_eq!(migrate_keys(&v(&["migrate", "h", "1", "k", "0", "0", "auth2", "u", "keys", "copy"])), vec![3]);
        assert!(migrate_keys(&v(&["migrate", "h", "1", "k", "0", "0", "keys", "a"])).is_empty());
        assert_eq!(migrate_keys(&v(&["migrate", "h", "1", "", "0", "0", "copy", "replace", "KEYS", "x"])), vec![9]);
    }

    #[test]
    fn c_atoi() {
        assert_eq!(atoi(b"6379"), 6379);
        assert_eq!(atoi(b" 12abc"), 12);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b"-5"), -5);
    }
}
