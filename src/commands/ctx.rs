//! What a command handler sees.
//!
//! A keyed handler (`Exec::Keyed`) runs with the shards owning its keys
//! entered (locked) and gets a `Ctx`. Connection-level handlers
//! (`Exec::Conn`) get a `ConnCtx` with the client's state and the server.

use super::dispatch::Origin;
use crate::net::client::{ClientInfo, ClientState};
use crate::server::Server;
use crate::shard::ShardData;
use crate::storage::Db;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The shard a key of the running command was found to live on, known
/// before the handler runs (a script's call computes every key's shard to
/// check its rules). The key is recognised by its address and length only:
/// the route is handed to a `Ctx` that lives for that one command, while
/// the argument it names is alive and unchanged, so no other key can have
/// the same address and length meanwhile.
#[derive(Clone, Copy, Default)]
pub struct KeyRoute {
    addr: usize,
    len: usize,
    shard: usize,
}

impl KeyRoute {
    pub fn new(key: &[u8], shard: usize) -> Self {
        KeyRoute { addr: key.as_ptr() as usize, len: key.len(), shard }
    }

    /// Whether this route is `key`'s (see above for why address and
    /// length are enough).
    #[inline]
    fn names(&self, key: &[u8]) -> bool {
        self.addr == key.as_ptr() as usize && self.len == key.len()
    }
}

/// The routes of one command's keys, kept inline (a command names few
/// keys; past `ROUTES_KEPT` the rest are computed again when needed).
#[derive(Default)]
pub struct KeyRoutes {
    len: usize,
    at: [KeyRoute; ROUTES_KEPT],
}

const ROUTES_KEPT: usize = 8;

impl KeyRoutes {
    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn push(&mut self, route: KeyRoute) {
        if let Some(slot) = self.at.get_mut(self.len) {
            *slot = route;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[KeyRoute] {
        &self.at[..self.len]
    }

    /// The shard recorded for `key`, if any.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> Option<usize> {
        routed_shard(self.as_slice(), key)
    }
}

#[inline]
fn routed_shard(routes: &[KeyRoute], key: &[u8]) -> Option<usize> {
    routes.iter().find(|r| r.names(key)).map(|r| r.shard)
}

/// What a command changed, recorded by its handler and drained by dispatch.
#[derive(Default)]
pub struct Effects {
    /// Changes made (Redis's `server.dirty`): they count towards
    /// `rdb_changes_since_last_save`, and a command that made none is not
    /// propagated.
    pub dirty: u64,
    /// The command's replayable form, when it differs from what the client
    /// sent (relative expiry made absolute, randomness made concrete).
    pub rewritten: Option<Vec<Vec<Bytes>>>,
    /// Propagate even without a change (FLUSHALL of an empty dataset).
    pub force: bool,
}

pub struct Ctx<'a, 's> {
    pub server: &'a Server,
    /// The entered shards, ascending by id. Usually exactly one.
    shards: &'a mut [&'s mut ShardData],
    /// The client's selected database.
    pub db: usize,
    /// The command's notion of "now" (Unix ms), fixed for its whole run as in
    /// Redis (a script sees one time from start to end).
    pub now: u64,
    /// RESP version of the caller (2 or 3).
    pub resp: u8,
    /// The calling client (the script's caller for `redis.call`).
    pub client: &'a ClientInfo,
    pub origin: Origin,
    pub effects: Effects,
    /// Shards already known for this command's keys (several shards
    /// entered): spares the handler computing a key's slot again.
    routes: &'a [KeyRoute],
}

impl<'a, 's> Ctx<'a, 's> {
    /// A context for `client`'s command. `now` is 0: dispatch sets it when
    /// the command runs (a caller using the context outside dispatch sets it).
    pub fn new(
        server: &'a Server,
        shards: &'a mut [&'s mut ShardData],
        client: &'a ClientInfo,
        db: usize,
        resp: u8,
        origin: Origin,
    ) -> Self {
        Ctx { server, shards, db, now: 0, resp, client, origin, effects: Effects::default(), routes: &[] }
    }

    /// Hands over the shards already known for this command's arguments
    /// (see `KeyRoute`: they must name arguments of the one command this
    /// context runs).
    pub fn with_routes(mut self, routes: &'a [KeyRoute]) -> Self {
        self.routes = routes;
        self
    }

    /// True while running inside a Lua script (`redis.call`).
    pub fn in_script(&self) -> bool {
        self.origin == Origin::Script
    }

    /// The client's id.
    pub fn client_id(&self) -> u64 {
        self.client.id
    }

    /// Counts `n` more changes than `written` calls counted (LPUSH of many
    /// elements, MSET of many keys), as Redis's dirty counter does.
    pub fn dirty(&mut self, n: u64) {
        self.effects.dirty += n;
    }

    /// Propagates the command even if it changed nothing.
    pub fn force_propagation(&mut self) {
        self.effects.force = true;
    }

    /// Counts `n` fewer changes: a command that announces one change with
    /// several events (SET ... EX: `set` and `expire`) is one change for Redis.
    pub fn dirty_less(&mut self, n: u64) {
        self.effects.dirty = self.effects.dirty.saturating_sub(n);
    }

    /// Sets how many changes this command counts, whatever its `written`
    /// calls counted: Redis counts one change for LMOVE's two keys, none for
    /// an LTRIM that removed nothing (then it is not propagated either).
    pub fn set_dirty(&mut self, n: u64) {
        self.effects.dirty = n;
    }

    /// Propagates `argv` instead of the command as sent (call once per
    /// replacement command, in order).
    pub fn propagate_as(&mut self, argv: Vec<Bytes>) {
        self.effects.rewritten.get_or_insert_with(Vec::new).push(argv);
    }

    /// True when someone follows the write stream (AOF, replicas): handlers
    /// skip building rewritten forms nobody reads.
    pub fn propagating(&self) -> bool {
        self.server.propagation.active()
    }

    /// Index into `shards` of the shard that owns `key`.
    #[inline]
    fn pos_for(&self, key: &[u8]) -> usize {
        if self.shards.len() == 1 {
            return 0;
        }
        self.pos_among(key)
    }

    /// `pos_for` with several shards entered.
    #[inline(never)]
    fn pos_among(&self, key: &[u8]) -> usize {
        let id = match routed_shard(self.routes, key) {
            Some(shard) => shard,
            None => self.server.shards.for_key(key),
        };
        self.shards.iter().position(|s| s.id == id).expect("key routed to a shard that was not entered")
    }

    /// Whether the shard owning `key` is entered (keys a command finds at
    /// run time, such as SORT's BY/GET patterns, are checked with it).
    pub fn holds(&self, key: &[u8]) -> bool {
        if self.shards.len() == self.server.shards.len() {
            return true;
        }
        let id = self.server.shards.for_key(key);
        self.shards.iter().any(|s| s.id == id)
    }

    /// The selected database on the shard owning `key`.
    #[inline]
    pub fn db(&mut self, key: &[u8]) -> &mut Db {
        let i = self.pos_for(key);
        let db = self.db;
        &mut self.shards[i].dbs[db]
    }

    /// Database `index` on the shard owning `key` (COPY ... DB, MOVE).
    pub fn db_at(&mut self, key: &[u8], index: usize) -> &mut Db {
        let i = self.pos_for(key);
        &mut self.shards[i].dbs[index]
    }

    /// The whole shard owning `key`.
    #[inline]
    pub fn shard_for(&mut self, key: &[u8]) -> &mut ShardData {
        let i = self.pos_for(key);
        self.shards[i]
    }

    /// The entered shards (keyless commands and broadcasts get exactly one).
    pub fn shards(&mut self) -> &mut [&'s mut ShardData] {
        self.shards
    }

    /// The first (for keyless commands, the only) entered shard.
    pub fn home(&mut self) -> &mut ShardData {
        self.shards[0]
    }

    /// Called by every handler after it modified `key`: the hook for
    /// WATCH, keyspace notifications and waking blocked clients.
    #[inline]
    pub fn written(&mut self, key: &[u8], event: &'static str) {
        let db = self.db;
        self.written_in(key, db, event);
    }

    /// A change Redis 7.0 counts and (with `event`) notifies but does not
    /// signal as a modification of the key: a consumer group's state (XGROUP
    /// CREATE/SETID/DESTROY, a consumer made or deleted, reads, acks, claims)
    /// and XSETID. A WATCH of the key stays clean and tracking clients get no
    /// invalidation; readers blocked on it look again (a destroyed group
    /// answers NOGROUP).
    pub fn changed_unsignalled(&mut self, key: &[u8], event: Option<&'static str>) {
        self.effects.dirty += 1;
        let (db, server) = (self.db, self.server);
        self.shard_for(key).changed_unsignalled(server, db, key, event);
    }

    /// `written` for a key of database `db` other than the selected one
    /// (MOVE's and COPY ... DB's destination).
    #[inline]
    pub fn written_in(&mut self, key: &[u8], db: usize, event: &'static str) {
        self.effects.dirty += 1;
        let (now, server) = (self.now, self.server);
        let who = crate::shard::tracking::Who::command(self.client.id, self.in_script());
        self.shard_for(key).key_changed(server, db, key, event, now, who);
        if crate::storage::replica_expiry() {
            self.replica_client_wrote(key, db);
        }
    }

    /// A writable replica's client wrote `key`: it expires as on a master
    /// (`Db::note_replica_own`). Out of the write path's way.
    #[cold]
    #[inline(never)]
    fn replica_client_wrote(&mut self, key: &[u8], db: usize) {
        if self.origin == Origin::Client {
            self.shard_for(key).dbs[db].note_replica_own(key);
        }
    }

    /// Keys the entered shards reaped by expiry during this command:
    /// `expired` notifications when `notify-keyspace-events` wants them, and
    /// (`propagate`) their deletion in the write stream, ahead of the command.
    /// Forgets the keys reaped by expiry on this thread since the last
    /// drain (nobody follows expiries: no events, no DELs to propagate).
    #[inline]
    pub fn discard_expired(&mut self) {
        if !crate::storage::take_expired_logged() {
            return;
        }
        for shard in self.shards.iter_mut() {
            for db in shard.dbs.iter_mut() {
                if db.has_expired_log() {
                    db.take_expired_log();
                }
            }
        }
    }

    pub fn drain_expired(&mut self, propagate: bool) {
        // Nothing expired on this thread since the last drain: no database to look at.
        if !crate::storage::take_expired_logged() {
            return;
        }
        let server = self.server;
        let flags = server.config.notify_flags.load(Ordering::Relaxed);
        let current = self.client.id;
        for shard in self.shards.iter_mut() {
            drain_expired_log(server, flags, shard, propagate, current);
        }
    }

    /// FLUSHDB or FLUSHALL (every shard entered): tracking clients are told
    /// that every key is invalid, and the tracking tables are emptied.
    pub fn flushed_tracking(&mut self) {
        let (server, current) = (self.server, self.client.id);
        crate::pubsub::tracking::flushed(server, self.shards, current);
    }

    /// Database `db` of every entered shard is about to be emptied
    /// (FLUSHDB, FLUSHALL): watchers of its existing keys become dirty.
    pub fn flushing(&mut self, db: usize) {
        let now = self.now;
        for shard in self.shards.iter_mut() {
            let ShardData { watches, dbs, waiters, .. } = &mut **shard;
            if !watches.is_empty() {
                watches.touch_db(dbs, db, None, now);
            }
            waiters.signal_db(db);
        }
    }

    /// Databases `a` and `b` of every entered shard are about to be swapped.
    pub fn swapping(&mut self, a: usize, b: usize) {
        let now = self.now;
        for shard in self.shards.iter_mut() {
            let ShardData { watches, dbs, waiters, .. } = &mut **shard;
            if !watches.is_empty() {
                watches.touch_db(dbs, a, Some(b), now);
                watches.touch_db(dbs, b, Some(a), now);
            }
            // Clients blocked in either database look again once swapped.
            waiters.signal_db(a);
            waiters.signal_db(b);
        }
    }
}

/// Drains the expired-key logs of `shard`'s databases: invalidations for
/// clients that may cache the keys (`current`: the client whose command
/// reaped them, 0 for the server's expiry cycle), `expired` events when
/// `flags` select them, and DEL (UNLINK with `lazyfree-lazy-expire`) in the
/// write stream when `propagate`, as Redis propagates an expiry.
pub fn drain_expired_log(server: &Server, flags: u32, shard: &mut ShardData, propagate: bool, current: u64) {
    use crate::pubsub::notify;
    for i in 0..shard.dbs.len() {
        let db = &mut shard.dbs[i];
        if !db.has_expired_log() {
            continue;
        }
        let keys = db.take_expired_log();
        if server.tracking.engaged() {
            let who = crate::shard::tracking::Who::reaped(current);
            for key in &keys {
                crate::pubsub::tracking::key_changed(server, shard, key, who, true);
            }
        }
        if propagate {
            let lazy = server.config.get("lazyfree-lazy-expire").as_deref() == Some("yes");
            let verb: &'static [u8] = if lazy { b"UNLINK" } else { b"DEL" };
            for key in &keys {
                crate::propagate::emit(&server.propagation, i, &[Bytes::from_static(verb), key.clone()]);
            }
        }
        if flags & notify::EXPIRED != 0 {
            for key in keys {
                notify::keyspace_event(server, flags, "expired", &key, i);
            }
        }
    }
}

/// Context of a connection-level command.
pub struct ConnCtx<'a> {
    pub server: &'a Arc<Server>,
    pub client: &'a mut ClientState,
}
