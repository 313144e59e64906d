//! What a command handler sees.
//!
//! A keyed handler (`Exec::Keyed`) runs with the shards owning its keys
//! entered (locked) and gets a `Ctx`. Connection-level handlers
//! (`Exec::Conn`) get a `ConnCtx` with the client's state and the server.

use crate::net::client::ClientState;
use crate::server::Server;
use crate::shard::ShardData;
use crate::storage::Db;
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
    pub fn new(
        server: &'a Server,
        shards: &'a mut [&'s mut ShardData],
        db: usize,
        resp: u8,
        client_id: u64,
    ) -> Self {
        Ctx {
            server,
            shards,
            db,
            now: crate::storage::now_ms(),
            resp,
            client_id,
            in_script: false,
            redirect: None,
        }
    }

    /// Index into `shards` of the shard that owns `key`.
    fn pos_for(&self, key: &[u8]) -> usize {
        if self.shards.len() == 1 {
            return 0;
        }
        let id = self.server.shards.for_key(key);
        self.shards
            .iter()
            .position(|s| s.id == id)
            .expect("key routed to a shard that was not entered")
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
    pub fn written(&mut self, _key: &[u8], _event: &'static str) {}
}

/// Context of a connection-level command.
pub struct ConnCtx<'a> {
    pub server: &'a Arc<Server>,
    pub client: &'a mut ClientState,
}
