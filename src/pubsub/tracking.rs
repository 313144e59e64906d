//! Client-side caching (CLIENT TRACKING), as Redis 7.0 does it.
//!
//! - Default mode: after a read-only command, the keys it read are
//!   remembered for the client in the owning shard's table
//!   (`shard::tracking`); a change to such a key (a write, expiry,
//!   eviction) sends the client an invalidation for it and forgets it.
//! - BCAST mode: nothing is remembered; every change to a key under one of
//!   the client's prefixes is noted in its shard and broadcast when the
//!   command run that made it ends (Redis broadcasts before it sleeps), one
//!   message per prefix with the keys in byte order.
//! - FLUSHDB/FLUSHALL send every tracking client a null invalidation and
//!   empty the tables.
//!
//! A message goes to the client itself as a RESP3 push `invalidate`, or to
//! its REDIRECT client: a RESP3 push too, or for a RESP2 client in
//! subscribed mode a `message` on `__redis__:invalidate`. Messages are queued
//! in the receiving client's `Pushes` (already encoded for it) and its
//! connection is woken; the client's own changes are sent after the reply of
//! the command that made them.
//!
//! Cost when unused: one relaxed load (`active`) per change and per command
//! end, one load of the client's flags after each read-only command.

use crate::net::client::{tracking_flags as tf, ClientInfo};
use crate::server::Server;
use crate::shard::tracking::Who;
use crate::shard::ShardData;
use bytes::Bytes;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// The server-wide part: counters INFO reports and the BCAST prefix table.
#[derive(Default)]
pub struct Tracking {
    /// The clients with tracking on (`tracking_clients`, from bit
    /// `CLIENTS_SHIFT` up) and the keys in the shards' tables (below it),
    /// in one word: the check on every change is one load.
    state: AtomicU64,
    /// (key, client) pairs in the shards' tables.
    items: AtomicU64,
    /// `tracking-table-max-keys` (0: no limit).
    max_keys: AtomicU64,
    /// Prefix → the BCAST clients registered for it, in byte order.
    prefixes: RwLock<BTreeMap<Bytes, Vec<u64>>>,
    nprefixes: AtomicUsize,
}

/// What an invalidation message says.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Key(&'a [u8]),
    /// An array of keys already in wire form.
    Keys(&'a [u8]),
    /// Every key (a flush), as a null of the tracking client's protocol
    /// (whatever the protocol of the client it redirects to, as in Redis).
    Null,
}

/// `Tracking::state`: one tracking client, and the mask of the key count.
const CLIENTS_SHIFT: u32 = 40;
const KEYS_MASK: u64 = (1 << CLIENTS_SHIFT) - 1;

impl Tracking {
    /// True when some client tracks keys.
    #[inline]
    pub fn active(&self) -> bool {
        self.state.load(Relaxed) >> CLIENTS_SHIFT != 0
    }

    /// True when a change may concern client-side caching: some client
    /// tracks keys, or the tables still hold keys read by clients that
    /// stopped tracking (a change drops them, as in Redis). The check on
    /// every change.
    #[inline]
    pub fn engaged(&self) -> bool {
        self.state.load(Relaxed) != 0
    }

    fn keys(&self) -> u64 {
        self.state.load(Relaxed) & KEYS_MASK
    }

    /// True when some BCAST client listens to a prefix.
    #[inline]
    pub fn bcast_active(&self) -> bool {
        self.nprefixes.load(Relaxed) != 0
    }

    /// True when the tables hold more keys than `tracking-table-max-keys`.
    #[inline]
    pub fn over_limit(&self) -> bool {
        let state = self.state.load(Relaxed);
        state >> CLIENTS_SHIFT != 0 && {
            let max = self.max_keys.load(Relaxed);
            max != 0 && state & KEYS_MASK > max
        }
    }

    pub fn set_max_keys(&self, max: i64) {
        self.max_keys.store(max.max(0) as u64, Relaxed);
    }

    /// INFO's figures: (clients, keys, items, prefixes).
    pub fn figures(&self) -> (usize, u64, u64, usize) {
        let state = self.state.load(Relaxed);
        let clients = (state >> CLIENTS_SHIFT) as usize;
        (clients, state & KEYS_MASK, self.items.load(Relaxed), self.nprefixes.load(Relaxed))
    }

    fn counted(&self, keys: i64, items: i64) {
        add(&self.state, keys);
        add(&self.items, items);
    }

    fn client_on(&self, on: bool) {
        if on {
            self.state.fetch_add(1 << CLIENTS_SHIFT, Relaxed);
        } else {
            self.state.fetch_sub(1 << CLIENTS_SHIFT, Relaxed);
        }
    }
}

fn add(counter: &AtomicU64, n: i64) {
    if n >= 0 {
        counter.fetch_add(n as u64, Relaxed);
    } else {
        counter.fetch_sub(n.unsigned_abs(), Relaxed);
    }
}

// ------------------------------------------------------------ client modes

/// CLIENT TRACKING ON for `info`: `options` are the mode flags (BCAST,
/// OPTIN, OPTOUT, NOLOOP), `redirect` the client messages go to (0: itself),
/// `prefixes` BCAST prefixes to add (none: the empty prefix, every key).
/// The caller checked the options as Redis does.
pub fn enable(server: &Server, info: &ClientInfo, redirect: u64, options: u32, prefixes: &[Bytes]) {
    let t = &info.tracking;
    let old = t.flags();
    if old & tf::ON == 0 {
        server.tracking.client_on(true);
    }
    // CACHING survives, as in Redis; the other mode flags are replaced.
    let keep = old & tf::CACHING;
    t.redirect.store(redirect, Relaxed);
    if options & tf::BCAST != 0 {
        let wanted: Vec<Bytes> = if prefixes.is_empty() { vec![Bytes::new()] } else { prefixes.to_vec() };
        let mut mine = t.prefixes.lock();
        let mut table = server.tracking.prefixes.write();
        for p in wanted {
            let clients = table.entry(p.clone()).or_default();
            if !clients.contains(&info.id) {
                clients.push(info.id);
                if let Err(at) = mine.binary_search(&p) {
                    mine.insert(at, p);
                }
            }
        }
        server.tracking.nprefixes.store(table.len(), Relaxed);
    }
    let mode = options & (tf::BCAST | tf::OPTIN | tf::OPTOUT | tf::NOLOOP);
    t.flags.store(tf::ON | mode | keep, Relaxed);
}

/// CLIENT TRACKING OFF, RESET or disconnection. Keys the client tracked stay
/// in the tables until they change, as in Redis.
pub fn disable(server: &Server, info: &ClientInfo) {
    let t = &info.tracking;
    let old = t.flags.swap(0, Relaxed);
    if old & tf::BCAST != 0 {
        let mine = std::mem::take(&mut *t.prefixes.lock());
        let mut table = server.tracking.prefixes.write();
        for p in mine {
            if let Some(clients) = table.get_mut(&p) {
                clients.retain(|&id| id != info.id);
                if clients.is_empty() {
                    table.remove(&p);
                }
            }
        }
        server.tracking.nprefixes.store(table.len(), Relaxed);
    }
    if old & tf::ON != 0 {
        server.tracking.client_on(false);
    }
}

/// Redis's collision check of BCAST prefixes: a new prefix may not be a
/// prefix of (or have as prefix) one the client has, nor another new one.
pub fn prefix_collision(existing: &[Bytes], new: &[Bytes]) -> Option<Vec<u8>> {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    for (i, p) in new.iter().enumerate() {
        if let Some(old) = existing.iter().find(|old| overlap(old, p)) {
            let mut e = b"ERR Prefix '".to_vec();
            e.extend_from_slice(crate::protocol::c_str(p));
            e.extend_from_slice(b"' overlaps with an existing prefix '");
            e.extend_from_slice(crate::protocol::c_str(old));
            e.extend_from_slice(b"'. Prefixes for a single client must not overlap.");
            return Some(e);
        }
        if let Some(other) = new[i + 1..].iter().find(|q| overlap(p, q)) {
            let mut e = b"ERR Prefix '".to_vec();
            e.extend_from_slice(crate::protocol::c_str(p));
            e.extend_from_slice(b"' overlaps with another provided prefix '");
            e.extend_from_slice(crate::protocol::c_str(other));
            e.extend_from_slice(b"'. Prefixes for a single client must not overlap.");
            return Some(e);
        }
    }
    None
}

// ------------------------------------------------------------- read path

/// After a read-only command of client `info` (not BCAST, with `flags` its
/// tracking flags): remembers `keys` for it, unless OPTIN without CACHING
/// YES or OPTOUT with CACHING NO says not to.
pub fn remember<'k>(
    server: &Server,
    info: &ClientInfo,
    flags: u32,
    shards: &mut [&mut ShardData],
    keys: impl Iterator<Item = &'k Bytes>,
) {
    if flags & tf::BCAST != 0 {
        return;
    }
    let caching = flags & tf::CACHING != 0;
    if (flags & tf::OPTIN != 0 && !caching) || (flags & tf::OPTOUT != 0 && caching) {
        return;
    }
    for key in keys {
        let shard: &mut ShardData = if shards.len() == 1 {
            &mut *shards[0]
        } else {
            let id = server.shards.for_key(key);
            match shards.iter_mut().find(|s| s.id == id) {
                Some(s) => s,
                None => continue,
            }
        };
        let (new_key, new_item) = shard.tracked.remember(key, info.id);
        server.tracking.counted(new_key as i64, new_item as i64);
    }
}

// ------------------------------------------------------------ write path

/// `key` changed (`who`: by whom): its trackers get an invalidation
/// (unless NOLOOP and it is their own command's change) and BCAST clients
/// will hear of it at the end of the run. `bcast` is false for
/// invalidations that are no change (the table's own eviction).
pub fn key_changed(server: &Server, data: &mut ShardData, key: &[u8], who: Who, bcast: bool) {
    if bcast && server.tracking.bcast_active() {
        data.tracked.note_changed(key, who.by);
    }
    let Some(ids) = data.tracked.take(key) else {
        return;
    };
    server.tracking.counted(-1, -(ids.len() as i64));
    for id in ids {
        let Some(target) = server.clients.get(id) else {
            continue;
        };
        let flags = target.tracking.flags();
        // Keys remembered before the client turned tracking off, or
        // switched to BCAST, are no longer its business.
        if flags & tf::ON == 0 || flags & tf::BCAST != 0 {
            continue;
        }
        if id == who.current {
            if flags & tf::NOLOOP != 0 {
                continue;
            }
            if who.running {
                // After the reply of the command that made the change.
                target.pushes.defer(Some(key));
                continue;
            }
        }
        send(server, &target, Payload::Key(key), who.current);
    }
}

/// A flush by client `current`'s command: every tracking client is told
/// that every key is invalid (`current` itself after the reply), and the
/// entered shards' tables are emptied (a flush enters every shard).
pub fn flushed(server: &Server, shards: &mut [&mut ShardData], current: u64) {
    for shard in shards.iter_mut() {
        let (keys, items) = shard.tracked.clear();
        server.tracking.counted(-(keys as i64), -(items as i64));
    }
    if !server.tracking.active() {
        return;
    }
    for target in server.clients.snapshot() {
        if target.tracking.flags() & tf::ON == 0 {
            continue;
        }
        if target.id == current {
            target.pushes.defer(None);
        } else {
            send(server, &target, Payload::Null, current);
        }
    }
}

/// After the reply of client `info`'s command: the invalidations that
/// command caused for `info` itself (`defer`red), sent as Redis sends its
/// pending ones: each on its own, to `info` or its redirect client.
pub fn send_deferred(server: &Server, info: &Arc<ClientInfo>) {
    for key in info.pushes.take_deferred() {
        match key {
            Some(key) => send(server, info, Payload::Key(&key), info.id),
            None => send(server, info, Payload::Null, info.id),
        }
    }
}

/// The end of a run of commands by client `current` (0: the server's own
/// cycle) on `shards`: the keys they changed go to the BCAST clients of
/// each prefix (Redis broadcasts before it sleeps, after the replies).
#[inline]
pub fn end_run(server: &Server, shards: &mut [&mut ShardData], current: u64) {
    if server.tracking.bcast_active() {
        broadcast(server, shards, current);
    }
}

#[cold]
fn broadcast(server: &Server, shards: &mut [&mut ShardData], current: u64) {
    let mut changed: BTreeMap<Bytes, u64> = BTreeMap::new();
    for shard in shards.iter_mut() {
        if shard.tracked.has_changed() {
            let taken = shard.tracked.take_changed();
            if changed.is_empty() {
                changed = taken;
            } else {
                changed.extend(taken);
            }
        }
    }
    if changed.is_empty() {
        return;
    }
    let table = server.tracking.prefixes.read();
    for (prefix, clients) in table.iter() {
        let keys: Vec<(&Bytes, u64)> = changed
            .range::<[u8], _>((std::ops::Bound::Included(&prefix[..]), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, who)| (k, *who))
            .collect();
        if keys.is_empty() {
            continue;
        }
        let all = keys_array(keys.iter().map(|(k, _)| *k));
        for &id in clients {
            let Some(target) = server.clients.get(id) else {
                continue;
            };
            if target.tracking.flags() & tf::NOLOOP != 0 {
                // Without the keys this client changed itself.
                let own: Vec<&Bytes> = keys.iter().filter(|(_, who)| *who != id).map(|(k, _)| *k).collect();
                if !own.is_empty() {
                    send_as(server, &target, Payload::Keys(&keys_array(own.into_iter())), current, true);
                }
            } else {
                send_as(server, &target, Payload::Keys(&all), current, true);
            }
        }
    }
}

/// An array of keys in wire form (the same in RESP2 and RESP3).
fn keys_array<'k>(keys: impl ExactSizeIterator<Item = &'k Bytes>) -> Vec<u8> {
    let mut out = format!("*{}\r\n", keys.len()).into_bytes();
    for k in keys {
        crate::protocol::push_bulk(&mut out, k);
    }
    out
}

/// `tracking-table-max-keys`: while the tables hold too many keys, forgets
/// random ones, invalidating them for their clients as if they changed.
/// Called before client `current`'s next command (Redis checks before
/// every command) with `data` one shard entered.
pub fn enforce_limit(server: &Server, data: &mut ShardData, current: u64) {
    let max = server.tracking.max_keys.load(Relaxed);
    let who = Who { current, by: 0, running: false };
    while max != 0 && server.tracking.keys() > max {
        let Some(key) = data.tracked.random_key() else {
            return;
        };
        key_changed(server, data, &key, who, false);
    }
}

// ---------------------------------------------------------------- delivery

/// Sends one invalidation message on behalf of tracking client `target`:
/// to its REDIRECT client if it has one (or, that client gone, a
/// `tracking-redir-broken` push to itself), else to itself, in the protocol
/// of the receiver. Nothing goes to a RESP2 receiver that is neither a
/// redirect target nor in subscribed mode. `current` is the client whose
/// command (or run) is sending: its own connection needs no wake-up.
fn send(server: &Server, target: &Arc<ClientInfo>, payload: Payload<'_>, current: u64) {
    send_as(server, target, payload, current, false)
}

/// `send`; with `later`, a message for the `current` client itself waits
/// for the end of its pipeline (a broadcast: Redis sends those before it
/// sleeps).
fn send_as(server: &Server, target: &Arc<ClientInfo>, payload: Payload<'_>, current: u64, later: bool) {
    let redirect = target.tracking.redirect.load(Relaxed);
    let target_resp = target.meta.lock().resp;
    let dest = if redirect == 0 {
        target.clone()
    } else {
        match server.clients.get(redirect) {
            Some(dest) => dest,
            None => {
                target.tracking.set(tf::BROKEN_REDIR, true);
                if target_resp >= 3 {
                    let mut frame = b">2\r\n$21\r\ntracking-redir-broken\r\n".to_vec();
                    frame.extend_from_slice(format!(":{redirect}\r\n").as_bytes());
                    queue(server, target, &frame, current, false, false);
                }
                return;
            }
        }
    };
    let (resp, subscribed) = if redirect == 0 {
        (target_resp, false)
    } else {
        let meta = dest.meta.lock();
        (meta.resp, meta.sub + meta.psub + meta.ssub > 0)
    };
    let mut frame = Vec::with_capacity(64);
    if resp >= 3 {
        frame.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    } else if redirect != 0 && subscribed {
        frame.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    } else {
        return;
    }
    match payload {
        Payload::Key(k) => {
            frame.extend_from_slice(b"*1\r\n");
            crate::protocol::push_bulk(&mut frame, k);
        }
        Payload::Keys(proto) => frame.extend_from_slice(proto),
        Payload::Null if target_resp >= 3 => frame.extend_from_slice(b"_\r\n"),
        Payload::Null => frame.extend_from_slice(b"$-1\r\n"),
    }
    queue(server, &dest, &frame, current, subscribed, later);
}

/// Queues `frame` for `dest`, waking its connection unless it is the
/// `current` one (which writes it after its reply, or with `later` after
/// its pipeline's). A client whose queued pushes pass the hard output limit
/// of its class is closed, as Redis closes it.
fn queue(server: &Server, dest: &ClientInfo, frame: &[u8], current: u64, subscribed: bool, later: bool) {
    let mine = dest.id == current;
    let pending = dest.push(frame, !mine, mine && later);
    let limits = if subscribed { &server.config.pubsub_limits } else { &server.config.normal_limits };
    let hard = limits.hard.load(Relaxed);
    if hard != 0 && pending as u64 >= hard {
        dest.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn prefix_collisions_as_redis_words_them() {
        assert_eq!(prefix_collision(&[b("a")], &[b("c")]), None);
        let e = prefix_collision(&[b("a")], &[b("ab")]).unwrap();
        assert_eq!(
            String::from_utf8(e).unwrap(),
            "ERR Prefix 'ab' overlaps with an existing prefix 'a'. Prefixes for a single client must not overlap."
        );
        let e = prefix_collision(&[], &[b("ab"), b("a")]).unwrap();
        assert_eq!(
            String::from_utf8(e).unwrap(),
            "ERR Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a single client must not overlap."
        );
        assert!(prefix_collision(&[], &[b(""), b("x")]).is_some(), "the empty prefix overlaps everything");
    }

    #[test]
    fn keys_in_wire_form() {
        let keys = [b("a"), b("bc")];
        assert_eq!(keys_array(keys.iter()), b"*2\r\n$1\r\na\r\n$2\r\nbc\r\n");
    }
}
