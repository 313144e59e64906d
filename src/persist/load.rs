//! Loading an RDB stream into the shards: at start-up (`dump.rdb`, or an
//! append-only file's RDB base), and for DEBUG RELOAD.
//!
//! Keys are routed to their shard and inserted in batches, so a shard is
//! entered once per batch rather than once per key. Keys whose TTL passed
//! are dropped (counted as `keys expired`), as a Redis master does. An error
//! anywhere refuses the file: at start-up the server then exits, so a
//! half-loaded dataset is never served.

use super::rdb::{self, Item, RdbReader, ReaderOptions};
use crate::net::listener::log;
use crate::server::Server;
use crate::shard::ShardData;
use crate::storage::{memory, Value};
use bytes::Bytes;
use std::io::BufRead;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Where loaded keys go.
pub enum Target<'a, 's> {
    /// Enter each shard for each batch (start-up: nothing else runs yet
    /// but clients asking for INFO).
    Lock(&'a crate::shard::Shards),
    /// The caller holds every shard (DEBUG RELOAD).
    Held(&'a mut [&'s mut ShardData]),
}

impl Target<'_, '_> {
    fn with_shard(&mut self, id: usize, f: impl FnOnce(&mut ShardData)) {
        match self {
            Target::Lock(shards) => f(&mut shards.get(id).lock_blocking()),
            Target::Held(held) => {
                if let Some(s) = held.iter_mut().find(|s| s.id == id) {
                    f(s)
                }
            }
        }
    }
}

/// What a load did.
#[derive(Default, Debug)]
pub struct Loaded {
    pub keys: u64,
    pub expired: u64,
    pub functions: usize,
    /// Keys skipped because their collection was empty, and the first 10.
    pub empty_skipped: u64,
    pub empty_named: Vec<Bytes>,
    /// The replication history the file records (repl-id and friends).
    pub repl: Option<super::rdb::ReplInfo>,
    /// Start-up only: the keys dropped as expired (their DELs go to a
    /// restored backlog), None once they outgrew `repl-backlog-size`.
    pub expired_keys: Option<Vec<(usize, Bytes)>>,
}

struct Pending {
    db: usize,
    key: Bytes,
    value: Value,
    expire_at: u64,
    access: Option<u32>,
}

const BATCH: usize = 512;

fn insert_items(s: &mut ShardData, items: Vec<Pending>) {
    for p in items {
        s.dbs[p.db].insert_loaded(&p.key, p.value, p.expire_at, p.access);
    }
}

/// Where `read_with` hands its batches: straight into the target, or (at
/// start-up) to an inserting thread, so decoding the file and building the
/// keyspace run in parallel.
enum Sink<'t, 'a, 's> {
    Direct(&'t mut Target<'a, 's>),
    Pipe(std::sync::mpsc::SyncSender<(usize, Vec<Pending>)>, &'a crate::shard::Shards),
}

impl Sink<'_, '_, '_> {
    fn insert(&mut self, shard: usize, batch: &mut Vec<Pending>) {
        if batch.is_empty() {
            return;
        }
        let items = std::mem::take(batch);
        match self {
            Sink::Direct(target) => target.with_shard(shard, |s| insert_items(s, items)),
            Sink::Pipe(tx, _) => {
                let _ = tx.send((shard, items));
            }
        }
    }

    fn with_shard(&mut self, id: usize, f: impl FnOnce(&mut ShardData)) {
        match self {
            Sink::Direct(target) => target.with_shard(id, f),
            Sink::Pipe(_, shards) => f(&mut shards.get(id).lock_blocking()),
        }
    }
}

/// Reads an RDB stream into `target` and loads its function libraries.
/// Returns the input positioned after the file (an AOF may go on) and what
/// was loaded. `verbose`: log the file's origin as Redis does at start-up.
pub fn read_into<R: BufRead>(
    server: &Server,
    input: R,
    target: &mut Target,
    verbose: bool,
) -> Result<(R, Loaded), String> {
    read_into_with(server, input, target, verbose, Libraries::Replace)
}

/// `read_into` on a dataset that was not emptied first (DEBUG RELOAD
/// NOFLUSH without MERGE): a library of the file that exists already fails
/// the load as it is met, before the keys that follow it in the file, as
/// Redis's load without `RDBFLAGS_ALLOW_DUP` does.
pub fn read_into_keeping_libraries<R: BufRead>(
    server: &Server,
    input: R,
    target: &mut Target,
) -> Result<(R, Loaded), String> {
    read_into_with(server, input, target, false, Libraries::Keep)
}

/// What a load does with the function libraries of the file.
enum Libraries<'a> {
    /// Loaded at the end, replacing libraries of the same names.
    Replace,
    /// Loaded as they are met; one whose name exists fails the load.
    Keep,
    /// Their code is handed to the caller, nothing loaded.
    Defer(&'a mut Vec<Bytes>),
}

fn read_into_with<R: BufRead>(
    server: &Server,
    input: R,
    target: &mut Target,
    verbose: bool,
    libraries: Libraries,
) -> Result<(R, Loaded), String> {
    match target {
        Target::Lock(shards) => {
            let shards: &crate::shard::Shards = shards;
            std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<Pending>)>(32);
                let inserter = scope.spawn(move || {
                    for (id, items) in rx {
                        insert_items(&mut shards.get(id).lock_blocking(), items);
                    }
                });
                let result = read_with(server, input, &mut Sink::Pipe(tx, shards), verbose, libraries);
                // The sender is gone with the sink: the inserter ends once it drained.
                let _ = inserter.join();
                result
            })
        }
        held => read_with(server, input, &mut Sink::Direct(held), verbose, libraries),
    }
}

/// Reads an RDB stream into `side`, a set of shards no client sees (a
/// replica's `repl-diskless-load swapdb`), leaving the server's dataset and
/// function libraries alone: the libraries' code is returned for the caller
/// to load once it swapped the datasets. Nothing changes on error.
pub fn read_aside<R: BufRead>(
    server: &Server,
    input: R,
    side: &crate::shard::Shards,
) -> Result<(R, Loaded, Vec<Bytes>), String> {
    let mut codes = Vec::new();
    let mut target = Target::Lock(side);
    let (input, loaded) =
        read_with(server, input, &mut Sink::Direct(&mut target), false, Libraries::Defer(&mut codes))?;
    Ok((input, loaded, codes))
}

fn read_with<R: BufRead>(
    server: &Server,
    input: R,
    sink: &mut Sink,
    verbose: bool,
    libraries: Libraries,
) -> Result<(R, Loaded), String> {
    let opts = ReaderOptions {
        checksum: server.config.get("rdbchecksum").as_deref() != Some("no")
            && !server.debug.skip_checksum.load(std::sync::atomic::Ordering::Relaxed),
        decode: rdb::decode_options(&server.config),
        databases: server.databases(),
    };
    let mut reader = RdbReader::new(input, opts).map_err(|e| e.0)?;
    let now = crate::storage::now_ms();
    let lfu = memory::lfu_mode();
    let key_delay = server.config.get_i64("key-load-delay");
    let progress_every = server.config.get_i64("loading-process-events-interval-bytes").max(1024) as u64;
    let mut progress_at = 0u64;
    let mut batches: Vec<Vec<Pending>> = (0..server.shards.len()).map(|_| Vec::new()).collect();
    let mut codes = Vec::new();
    let mut loaded = Loaded::default();
    // (Collected only at start-up, up to what a backlog could hold.)
    let mut expired_budget = if verbose { server.config.get_i64("repl-backlog-size").max(0) as usize } else { 0 };
    if verbose {
        loaded.expired_keys = Some(Vec::new());
    }
    let (mut repl_db, mut repl_id, mut repl_offset) = (None, None, None);
    // A replica keeps expired keys (its master's DELs remove them); at
    // start-up, one configured to follow a master already counts as one.
    let keep_expired = crate::storage::replica_expiry()
        || (verbose && !server.config.get("replicaof").unwrap_or_default().trim().is_empty());
    let p = &server.persist;
    let mut failure = None;
    let mut current_db = 0;
    while let Some(item) = reader.next() {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                failure = Some(e.0);
                break;
            }
        };
        match item {
            Item::Aux { key, value } if verbose => {
                let text = String::from_utf8_lossy(&value);
                match &key[..] {
                    b"repl-stream-db" => repl_db = text.parse::<i64>().ok(),
                    b"repl-id" => repl_id = Some(text.to_string()),
                    b"repl-offset" => repl_offset = text.parse::<i64>().ok(),
                    b"redis-ver" => log(server, "notice", &format!("Loading RDB produced by version {text}")),
                    b"ctime" => {
                        let age = (now / 1000) as i64 - text.parse::<i64>().unwrap_or(0);
                        log(server, "notice", &format!("RDB age {age} seconds"));
                    }
                    b"used-mem" => {
                        let mem = text.parse::<u64>().unwrap_or(0);
                        p.loading_rdb_used_mem.store(mem, Ordering::Relaxed);
                        let mb = mem as f64 / (1024.0 * 1024.0);
                        log(server, "notice", &format!("RDB memory usage when created {mb:.2} Mb"));
                    }
                    _ => {}
                }
            }
            Item::Function(code) if matches!(libraries, Libraries::Keep) => {
                loaded.functions += 1;
                if let Err(e) = crate::scripting::functions::load_saved_libraries(server, vec![code], false) {
                    failure = Some(format!("Failed loading library: {e}"));
                    break;
                }
            }
            Item::Function(code) => codes.push(code),
            Item::SelectDb(db) => current_db = db,
            Item::ResizeDb { keys, .. } => {
                // Size each shard's share up front (keys spread evenly over slots).
                let n = server.shards.len();
                let share = (keys as usize / n).saturating_add(keys as usize / (8 * n)).min(1 << 26);
                for id in 0..n {
                    sink.with_shard(id, |s| {
                        if let Some(db) = s.dbs.get_mut(current_db) {
                            db.reserve(share);
                        }
                    });
                }
            }
            Item::Entry(e) => {
                if e.expire_ms.is_some_and(|t| t <= now as i64) && !keep_expired {
                    loaded.expired += 1;
                    if let Some(keys) = loaded.expired_keys.as_mut() {
                        // A DEL of it in the stream: about 30 bytes and the key.
                        let cost = 30 + e.key.len();
                        if cost > expired_budget {
                            loaded.expired_keys = None;
                        } else {
                            expired_budget -= cost;
                            keys.push((e.db, e.key.clone()));
                        }
                    }
                    continue;
                }
                let access = match (lfu, e.idle_secs, e.freq) {
                    (false, Some(idle), _) => Some(memory::access_idle(idle, now)),
                    (true, _, Some(f)) => Some(memory::access_freq(f, now)),
                    _ => None,
                };
                let shard = server.shards.for_key(&e.key);
                let expire_at = e.expire_ms.map(|t| t as u64).unwrap_or(0);
                if batches[shard].capacity() == 0 {
                    batches[shard].reserve(BATCH);
                }
                batches[shard].push(Pending { db: e.db, key: e.key, value: e.value, expire_at, access });
                loaded.keys += 1;
                if batches[shard].len() >= BATCH {
                    sink.insert(shard, &mut batches[shard]);
                }
                if reader.position() >= progress_at + progress_every {
                    progress_at = reader.position();
                    p.loaded_bytes(progress_at);
                }
                if key_delay > 0 {
                    std::thread::sleep(std::time::Duration::from_micros(key_delay as u64));
                }
            }
            _ => {}
        }
    }
    if let Some(e) = failure {
        // Redis logs a bad checksum on its own line, then the generic report
        // naming the cause ("RDB CRC error": what tools and tests look for).
        let cause = if e.starts_with("Wrong RDB checksum") {
            log(server, "warning", &e);
            "RDB CRC error".to_string()
        } else {
            e
        };
        return Err(format!("Internal error in RDB reading offset {} -> {cause}", reader.position()));
    }
    for (shard, batch) in batches.iter_mut().enumerate() {
        sink.insert(shard, batch);
    }
    loaded.functions += codes.len();
    loaded.empty_skipped = reader.empty_keys_skipped();
    loaded.empty_named = reader.empty_keys_named().to_vec();
    if let (Some(stream_db), Some(id), Some(offset)) = (repl_db, repl_id, repl_offset) {
        loaded.repl = Some(super::rdb::ReplInfo { stream_db, id, offset });
    }
    match libraries {
        Libraries::Defer(out) => *out = codes,
        _ if codes.is_empty() => {}
        _ => crate::scripting::functions::load_saved_libraries(server, codes, true)
            .map_err(|e| format!("Failed loading library: {e}"))?,
    }
    p.loading_loaded_bytes.store(reader.position(), Ordering::Relaxed);
    Ok((reader.into_inner(), loaded))
}

/// Loads `dbfilename` at start-up when `appendonly` is off (a missing file
/// is an empty dataset). Err: the server must not start.
pub fn rdb_at_startup(server: &Arc<Server>) -> Result<(), String> {
    let path = super::save::rdb_path(server);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("Fatal error loading the DB: {e}. Exiting.")),
    };
    let started = Instant::now();
    server.persist.begin_loading(file.metadata().map(|m| m.len()).unwrap_or(0));
    let input = std::io::BufReader::with_capacity(1 << 20, file);
    let mut target = Target::Lock(&server.shards);
    let (_, mut loaded) = read_into(server, input, &mut target, true)
        .map_err(|e| format!("{e}\nTerminating server after rdb file reading failure."))?;
    note_loaded(server, &loaded);
    log(server, "notice", &format!("DB loaded from disk: {:.3} seconds", started.elapsed().as_secs_f64()));
    // A history the file records is continued; too many expired keys for
    // the backlog to carry their DELs make the replicas sync in full.
    if let (Some(info), Some(expired)) = (loaded.repl.take(), loaded.expired_keys.take()) {
        crate::replication::restore_history(server, info, expired);
    }
    Ok(())
}

/// The log line and INFO figures after a load.
pub fn note_loaded(server: &Server, loaded: &Loaded) {
    // As Redis: the first 10 empty keys named, their count in the summary.
    for key in &loaded.empty_named {
        log(server, "warning", &format!("rdbLoadObject skipping empty key: {}", String::from_utf8_lossy(key)));
    }
    if loaded.empty_skipped > 0 {
        log(
            server,
            "warning",
            &format!(
                "Done loading RDB, keys loaded: {}, keys expired: {}, empty keys skipped: {}.",
                loaded.keys, loaded.expired, loaded.empty_skipped
            ),
        );
    } else {
        log(
            server,
            "notice",
            &format!("Done loading RDB, keys loaded: {}, keys expired: {}.", loaded.keys, loaded.expired),
        );
    }
    let p = &server.persist;
    p.last_load_keys_loaded.store(loaded.keys, Ordering::Relaxed);
    p.last_load_keys_expired.store(loaded.expired, Ordering::Relaxed);
}

/// Loads the dataset at start-up: the append-only file when `appendonly`
/// is on (Redis ignores the RDB file then), `dbfilename` otherwise.
pub fn at_startup(server: &Arc<Server>) -> Result<(), String> {
    if server.config.get("appendonly").as_deref() == Some("yes") {
        super::aof::open_at_startup(server)
    } else {
        rdb_at_startup(server)
    }
}
