//! What a command handler sees.
//!
//! A keyed handler (`Exec::Keyed`) runs with the shards owning its keys
//! entered (locked) and gets a `Ctx`. Connection-level handlers
//! (`Exec::Conn`) get a `ConnCtx` with the client's state and the server.

use crate::net::client::ClientState;
use crate::server::Server;
use crate::shard::ShardData;
use crate::storage::Db;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
    pub client_id: u64,
    /// True while running inside a Lua script (`redis.call`).
    pub in_script: bool,
    /// Set by a handler that must run on another shard instead (a script with
    /// no declared keys whose first key lives elsewhere); the caller reruns
    /// the whole command there.
    pub redirect: Option<usize>,
}

impl<'a, 's> Ctx<'a, 's> {
    pub fn new(server: &'a Server, shards: &'a mut [&'s mut ShardData], db: usize, resp: u8, client_id: u64) -> Self {
        Self::at(server, shards, db, resp, client_id, crate::storage::now_ms())
    }

    /// A context whose "now" (Unix ms) the caller already read: the
    /// connection reuses one clock reading per command for this and its stats.
    pub fn at(
        server: &'a Server,
        shards: &'a mut [&'s mut ShardData],
        db: usize,
        resp: u8,
        client_id: u64,
        now: u64,
    ) -> Self {
        Ctx { server, shards, db, now, resp, client_id, in_script: false, redirect: None }
    }

    /// Index into `shards` of the shard that owns `key`.
    fn pos_for(&self, key: &[u8]) -> usize {
        if self.shards.len() == 1 {
            return 0;
        }
        let id = self.server.shards.for_key(key);
        self.shards.iter().position(|s| s.id == id).expect("key routed to a shard that was not entered")
    }

    /// The selected database on the shard owning `key`.
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
    pub fn written(&mut self, key: &[u8], event: &'static str) {
        let db = self.db;
        self.written_in(key, db, event);
    }

    /// `written` for a key of database `db` other than the selected one
    /// (MOVE's and COPY ... DB's destination).
    pub fn written_in(&mut self, key: &[u8], db: usize, event: &'static str) {
        let now = self.now;
        let server = self.server;
        let ShardData { waiters, watches, dbs, .. } = self.shard_for(key);
        waiters.signal(db, key);
        if !watches.is_empty() {
            if let Some(d) = dbs.get_mut(db) {
                watches.touch(db, key, d, now);
            }
        }
        let flags = server.config.notify_flags.load(Ordering::Relaxed);
        if flags != 0 {
            crate::pubsub::notify::keyspace_event(server, flags, event, key, db);
        }
    }

    /// Publishes `expired` notifications for keys the entered shards reaped
    /// (lazily, during this command) when `notify-keyspace-events` wants them.
    pub fn expired_events(&mut self) {
        let server = self.server;
        let flags = server.config.notify_flags.load(Ordering::Relaxed);
        for shard in self.shards.iter_mut() {
            publish_expired(server, flags, &mut shard.dbs);
        }
    }

    /// Database `db` of every entered shard is about to be emptied
    /// (FLUSHDB, FLUSHALL): watchers of its existing keys become dirty.
    pub fn flushing(&mut self, db: usize) {
        let now = self.now;
        for shard in self.shards.iter_mut() {
            let ShardData { watches, dbs, .. } = &mut **shard;
            if !watches.is_empty() {
                watches.touch_db(dbs, db, None, now);
            }
        }
    }

    /// Databases `a` and `b` of every entered shard are about to be swapped.
    pub fn swapping(&mut self, a: usize, b: usize) {
        let now = self.now;
        for shard in self.shards.iter_mut() {
            let ShardData { watches, dbs, .. } = &mut **shard;
            if !watches.is_empty() {
                watches.touch_db(dbs, a, Some(b), now);
                watches.touch_db(dbs, b, Some(a), now);
            }
        }
    }
}

/// Drains the expired-key logs of `dbs`, publishing `expired` events when
/// `flags` select them.
pub fn publish_expired(server: &Server, flags: u32, dbs: &mut [Db]) {
    use crate::pubsub::notify;
    for (i, db) in dbs.iter_mut().enumerate() {
        if !db.has_expired_log() {
            continue;
        }
        let keys = db.take_expired_log();
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
