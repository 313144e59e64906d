//! Saving the dataset as an RDB file, Redis's way without its fork.
//!
//! - SAVE (and SHUTDOWN, FLUSHALL, DEBUG RELOAD) writes the file with every
//!   shard held: a stop-the-world save, as Redis's SAVE is.
//! - BGSAVE takes one point-in-time snapshot across all shards: with every
//!   shard entered for an instant, each non-empty database gets a snapshot
//!   state (`storage::snapshot`), then a background thread walks the shards
//!   a chunk of keys at a time and streams the file. Writes go on meanwhile;
//!   a key about to change before the walk reached it is first encoded as it
//!   was (copy on write per key), so the file is exactly the dataset at the
//!   instant BGSAVE ran, and the extra memory is what is overwritten during
//!   the save, not a copy of the dataset.
//! - The save points (`save`) and BGSAVE SCHEDULE start a BGSAVE from the
//!   persistence cron.
//!
//! A file is written to `temp-<pid>.rdb`, fsynced and renamed over
//! `dbfilename`, and the directory fsynced: a crash mid-save leaves the
//! previous file whole.

use super::rdb::{self, Access, RdbWriter, WriterOptions};
use crate::net::listener::log;
use crate::server::Server;
use crate::shard::ShardData;
use crate::storage::codec;
use crate::storage::memory::{self, Policy};
use crate::storage::Value;
use bytes::Bytes;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The save points: (seconds, changes) pairs.
pub fn save_points(config: &crate::config::Config) -> Vec<(u64, u64)> {
    let text = config.get("save").unwrap_or_default();
    let nums: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    nums.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

/// Where the RDB file lives: `dir`/`dbfilename`.
pub fn rdb_path(server: &Server) -> PathBuf {
    let dir = server.config.get("dir").filter(|d| !d.is_empty()).unwrap_or_else(|| ".".into());
    let name = server.config.get("dbfilename").unwrap_or_else(|| "dump.rdb".into());
    Path::new(&dir).join(name)
}

fn now_secs() -> u64 {
    crate::storage::now_ms() / 1000
}

/// The usage information a file carries per key: IDLE under an LRU policy,
/// FREQ under an LFU one, nothing otherwise (as Redis).
#[derive(Clone, Copy)]
enum AccessKind {
    None,
    Idle,
    Freq,
}

fn access_kind(server: &Server) -> AccessKind {
    match Policy::of(server) {
        p if p.lfu() => AccessKind::Freq,
        Policy::AllKeysLru | Policy::VolatileLru => AccessKind::Idle,
        _ => AccessKind::None,
    }
}

fn access_of(kind: AccessKind, word: u32, now_ms: u64) -> Access {
    match kind {
        AccessKind::None => Access::None,
        AccessKind::Idle => Access::Idle(memory::idle_secs(word, now_ms)),
        AccessKind::Freq => Access::Freq(memory::lfu_counter(word, now_ms)),
    }
}

/// How files are written, from the live configuration.
pub fn writer_options(server: &Server, aof_base: bool) -> WriterOptions {
    WriterOptions {
        checksum: server.config.get("rdbchecksum").as_deref() != Some("no"),
        encode: rdb::encode_options(&server.config),
        aof_base,
        used_memory: memory::used_memory(),
        ctime: None,
        repl: None,
    }
}

// ------------------------------------------------------- with shards held

/// Writes the whole dataset of `shards` (every shard, held by the caller)
/// and the function libraries as one RDB stream.
pub fn write_held<W: Write>(server: &Server, shards: &[&ShardData], out: W, aof_base: bool) -> io::Result<W> {
    write_held_as(server, shards, out, &writer_options(server, aof_base))
}

fn write_held_as<W: Write>(server: &Server, shards: &[&ShardData], out: W, opts: &WriterOptions) -> io::Result<W> {
    let mut w = RdbWriter::new(out, opts)?;
    for code in crate::scripting::functions::library_codes(server) {
        w.function(&code)?;
    }
    let (kind, now) = (access_kind(server), crate::storage::now_ms());
    for db in 0..server.databases() {
        let keys: usize = shards.iter().map(|s| s.dbs[db].len()).sum();
        if keys == 0 {
            continue;
        }
        let expires: usize = shards.iter().map(|s| s.dbs[db].volatile_len()).sum();
        w.select_db(db, keys as u64, expires as u64)?;
        for shard in shards {
            for (key, e, word) in shard.dbs[db].iter_with_access() {
                let expire = (e.expire_at != 0).then_some(e.expire_at);
                w.entry(key, &e.value, expire, access_of(kind, word, now))?;
            }
        }
    }
    w.finish()
}

/// Creates `path` through a temporary file in the same directory: `fill`
/// writes it, then it is fsynced, renamed over `path`, and the directory
/// fsynced. The temporary file is removed on failure.
pub fn write_durably(
    path: &Path,
    tmp_name: &str,
    fill: impl FnOnce(BufWriter<std::fs::File>) -> io::Result<BufWriter<std::fs::File>>,
) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let out = fill(BufWriter::with_capacity(1 << 20, file))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The temporary file of a background job: Redis names it by its child's
/// pid; here every job gets its own number, so that a cancelled job still
/// cleaning up never removes the file of the job started after it.
pub fn background_temp_name(prefix: &str, ext: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}-{}-{}.{ext}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// SAVE with every shard held by the caller: writes `dbfilename`, and on
/// success LASTSAVE moves and the changes since the last save start over.
pub fn save_held(server: &Server, shards: &[&ShardData]) -> Result<(), String> {
    save_held_with(server, shards, crate::replication::save_info(server, false))
}

/// `save_held` recording `repl` (the replication history the dataset
/// stands for, so that a restart may continue it with a partial resync).
pub fn save_held_with(server: &Server, shards: &[&ShardData], repl: Option<rdb::ReplInfo>) -> Result<(), String> {
    let path = rdb_path(server);
    let tmp = format!("temp-{}.rdb", std::process::id());
    let opts = WriterOptions { repl, ..writer_options(server, false) };
    match write_durably(&path, &tmp, |out| write_held_as(server, shards, out, &opts)) {
        Ok(()) => {
            log(server, "notice", "DB saved on disk");
            let stats = &server.stats;
            stats.dirty_at_save.store(stats.dirty.load(Ordering::Relaxed), Ordering::Relaxed);
            server.lastsave.store(now_secs(), Ordering::Relaxed);
            stats.rdb_saves.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            log(
                server,
                "warning",
                &format!(
                    "Failed opening the temp RDB file {tmp} (in server root dir {}) for saving: {e}",
                    path.parent().map(|p| p.display().to_string()).unwrap_or_default()
                ),
            );
            Err(e.to_string())
        }
    }
}

/// SAVE from a context holding no shard: enters them all (ascending, as
/// every multi-shard caller does) for the whole save.
pub fn save_locking(server: &Server) -> Result<(), String> {
    let guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
    let refs: Vec<&ShardData> = guards.iter().map(|g| &**g).collect();
    save_held(server, &refs)
}

// ------------------------------------------------------------- background

/// One key of the snapshot, taken under its shard's lock and written by
/// the background thread.
pub struct Record {
    pub db: usize,
    /// The key's bytes, then the value's encoding (one allocation under the
    /// lock); for a string, until `drain` encodes it outside every lock, the
    /// string's bytes themselves (`plain_string`).
    data: Vec<u8>,
    key_len: usize,
    pub value_type: u8,
    plain_string: bool,
    pub expire: Option<u64>,
    pub access: Access,
}

impl Record {
    fn bytes(&self) -> u64 {
        (self.data.len() + 64) as u64
    }

    pub fn key(&self) -> &[u8] {
        &self.data[..self.key_len]
    }

    /// The value's RDB encoding (after `drain`).
    pub fn encoded(&self) -> &[u8] {
        &self.data[self.key_len..]
    }
}

/// Where a background job's keys go: an RDB file (BGSAVE, an AOF base with
/// RDB preamble) or commands (an AOF base without).
pub trait Sink {
    fn function(&mut self, code: &[u8]) -> io::Result<()>;
    fn record(&mut self, r: &Record) -> io::Result<()>;
}

impl<W: Write> Sink for RdbWriter<W> {
    fn function(&mut self, code: &[u8]) -> io::Result<()> {
        RdbWriter::function(self, code)
    }

    fn record(&mut self, r: &Record) -> io::Result<()> {
        self.entry_encoded(r.db, r.key(), r.value_type, r.encoded(), r.expire, r.access)
    }
}

/// What a background job produces.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum JobKind {
    /// BGSAVE: `dbfilename`.
    Rdb,
    /// BGREWRITEAOF: a new base for the append-only file.
    AofRewrite,
}

/// A background job in progress.
pub struct Job {
    pub kind: JobKind,
    pub started: Instant,
    /// Unix seconds at the start (INFO's `rdb_current_bgsave_time_sec`).
    pub started_secs: u64,
    cancel: AtomicBool,
    /// Keys in the dataset at the start, and written so far.
    pub keys_total: u64,
    pub keys_done: AtomicU64,
    /// Encoded keys waiting for the writer, and their bytes now and at most.
    queue: parking_lot::Mutex<Vec<Record>>,
    pub queued_bytes: AtomicU64,
    pub peak_bytes: AtomicU64,
    /// `dirty` at the start: what the file holds.
    dirty_at_start: u64,
    /// `rdbcompression` at the start, for the strings `drain` encodes.
    compress: bool,
    /// The replication history at the snapshot's instant (RDB saves only).
    repl: Option<rdb::ReplInfo>,
}

impl Job {
    /// Queues `records` for the writer (emptied, its room kept).
    fn push_all(&self, records: &mut Vec<Record>) {
        let b: u64 = records.iter().map(Record::bytes).sum();
        self.queue.lock().append(records);
        let now = self.queued_bytes.fetch_add(b, Ordering::Relaxed) + b;
        self.peak_bytes.fetch_max(now, Ordering::Relaxed);
    }

    fn take(&self) -> Vec<Record> {
        let v = std::mem::take(&mut *self.queue.lock());
        let b: u64 = v.iter().map(Record::bytes).sum();
        self.queued_bytes.fetch_sub(b.min(self.queued_bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
        v
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
    }
}

/// Keys a database's snapshot hands to the job's queue at a time: one lock
/// of the queue and one update of its counters per batch, not per key (the
/// walk takes keys under the shard's lock).
const EMIT_BATCH: usize = 32;

/// A database's snapshot sink: emitted keys gather here and go to the job in
/// batches. What is left goes when the snapshot state is dropped (finished,
/// flushed or aborted), under the shard's lock, so once the walk sees no
/// state left every key is in the job's queue.
struct Batcher {
    job: Arc<Job>,
    batch: usize,
    records: Vec<Record>,
}

impl Batcher {
    fn add(&mut self, r: Record) {
        self.records.push(r);
        if self.records.len() >= self.batch {
            self.job.push_all(&mut self.records);
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        if !self.records.is_empty() {
            self.job.push_all(&mut self.records);
        }
    }
}

/// Why a background job did not start.
pub enum Refused {
    /// A job of the same kind runs.
    AlreadyRunning,
    /// A job of the other kind runs.
    Busy,
    /// It could not start (logged; the text says why).
    Failed(String),
}

/// Starts a snapshot job with every shard in `guards` entered: attaches the
/// snapshot states and registers the job. The caller spawns the walk.
fn begin(
    server: &Server,
    kind: JobKind,
    guards: &mut [parking_lot::MutexGuard<'_, ShardData>],
    repl: Option<rdb::ReplInfo>,
) -> Arc<Job> {
    let mut job = Job {
        kind,
        started: Instant::now(),
        started_secs: now_secs(),
        cancel: AtomicBool::new(false),
        keys_total: 0,
        keys_done: AtomicU64::new(0),
        queue: Default::default(),
        queued_bytes: AtomicU64::new(0),
        peak_bytes: AtomicU64::new(0),
        dirty_at_start: server.stats.dirty.load(Ordering::Relaxed),
        compress: rdb::encode_options(&server.config).compression,
        repl,
    };
    job.keys_total = guards.iter().map(|g| g.total_keys() as u64).sum();
    let job = Arc::new(job);
    let (access, encode) = (access_kind(server), rdb::encode_options(&server.config));
    // rdb-key-save-delay (tests) slows the walk key by key: progress shows per key.
    let batch = if server.config.get_i64("rdb-key-save-delay") != 0 { 1 } else { EMIT_BATCH };
    for g in guards.iter_mut() {
        for (i, db) in g.dbs.iter_mut().enumerate() {
            if db.is_empty() {
                continue;
            }
            let mut sink = Batcher { job: job.clone(), batch, records: Vec::with_capacity(batch) };
            db.snapshot_begin(
                i,
                Box::new(move |db, key, e, word| {
                    // Under the shard's lock: a string is only copied (most
                    // keys are strings, and compressing them here held a
                    // shard for the LZF of every value); `drain` encodes it.
                    let (data, plain_string) = match &e.value {
                        Value::Str(s) => {
                            let mut data = Vec::with_capacity(key.len() + s.len());
                            data.extend_from_slice(key);
                            data.extend_from_slice(s);
                            (data, true)
                        }
                        v => {
                            let mut data = key.to_vec();
                            codec::encode_value(v, &encode, &mut data);
                            (data, false)
                        }
                    };
                    sink.add(Record {
                        db,
                        data,
                        key_len: key.len(),
                        value_type: codec::type_of(&e.value),
                        plain_string,
                        expire: (e.expire_at != 0).then_some(e.expire_at),
                        // (The clock is read only when the policy keeps access figures.)
                        access: match access {
                            AccessKind::None => Access::None,
                            kind => access_of(kind, word, crate::storage::now_ms()),
                        },
                    });
                }),
            );
        }
    }
    job
}

/// Checks that no job runs, for a new one of `kind`.
fn may_start(server: &Server, kind: JobKind) -> Result<(), Refused> {
    match server.persist.job.lock().as_ref() {
        Some(j) if j.kind == kind => Err(Refused::AlreadyRunning),
        Some(_) => Err(Refused::Busy),
        None => Ok(()),
    }
}

/// Starts a background save: the snapshot begins now (every shard entered
/// for the moment it takes to attach the states), the file is written by a
/// background thread. Call from a thread that may block and holds no shard.
pub fn bgsave(server: &Arc<Server>) -> Result<(), Refused> {
    may_start(server, JobKind::Rdb)?;
    // (See prepare_shutdown: a replica's snapshot at a unit boundary.)
    let applying = server.replicas.at_unit_boundary(Duration::from_millis(500));
    let mut guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
    // Checked again with every shard held: two callers may race here.
    may_start(server, JobKind::Rdb)?;
    let repl = crate::replication::save_info(server, applying.is_some());
    let job = begin(server, JobKind::Rdb, &mut guards, repl);
    drop(applying);
    let codes = crate::scripting::functions::library_codes(server);
    *server.persist.job.lock() = Some(job.clone());
    drop(guards);
    server.stats.rdb_saves.fetch_add(1, Ordering::Relaxed);
    server.persist.last_bgsave_try.store(now_secs(), Ordering::Relaxed);
    log(server, "notice", &format!("Background saving started by pid {}", std::process::id()));
    let srv = server.clone();
    spawn_walk(server, job, move |job| {
        let path = rdb_path(&srv);
        let tmp = background_temp_name("temp-bg", "rdb");
        let result = write_durably(&path, &tmp, |out| {
            let opts = WriterOptions { repl: job.repl.clone(), ..writer_options(&srv, false) };
            let mut w = RdbWriter::new(out, &opts)?;
            walk(&srv, job, &codes, &mut w)?;
            w.finish()
        });
        finish_rdb(&srv, job, result);
    });
    Ok(())
}

/// Runs `work` on a background thread; without a thread the job is undone.
pub fn spawn_walk(server: &Arc<Server>, job: Arc<Job>, work: impl FnOnce(&Arc<Job>) + Send + 'static) {
    let mine = job.clone();
    let spawned = std::thread::Builder::new().name("moonshard-bgsave".into()).spawn(move || work(&mine));
    if spawned.is_err() {
        let mut guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
        for g in guards.iter_mut() {
            g.dbs.iter_mut().for_each(|d| d.snapshot_abort());
        }
        let mut slot = server.persist.job.lock();
        if slot.as_ref().is_some_and(|j| Arc::ptr_eq(j, &job)) {
            *slot = None;
        }
        log(server, "warning", "Can't start the background save: no thread");
    }
}

/// Keys the walk takes per visit to a shard: short enough that a shard is
/// never held for long, long enough that the locking is amortized.
const CHUNK: usize = 128;

/// The background thread's work: walks every shard's databases under their
/// locks, hands what was emitted to `sink` outside them.
pub fn walk(server: &Server, job: &Job, codes: &[Bytes], sink: &mut dyn Sink) -> io::Result<()> {
    for code in codes {
        sink.function(code)?;
    }
    let cancelled = || io::Error::other("the save was cancelled");
    loop {
        for db in 0..server.databases() {
            for shard in &server.shards.list {
                loop {
                    // rdb-key-save-delay (µs per key) slows the save down for tests.
                    let delay = server.config.get_i64("rdb-key-save-delay");
                    let chunk = if delay != 0 { 1 } else { CHUNK };
                    let done = {
                        let mut g = shard.lock_blocking();
                        if job.cancelled() {
                            return Err(cancelled());
                        }
                        g.dbs[db].snapshot_step(chunk)
                    };
                    drain(job, sink)?;
                    if delay > 0 {
                        std::thread::sleep(Duration::from_micros(delay as u64));
                    }
                    if done {
                        break;
                    }
                }
            }
        }
        // SWAPDB may have moved a database the walk had not finished
        // behind it: walk again until no snapshot state is left.
        let left = server.shards.list.iter().any(|s| s.lock_blocking().dbs.iter().any(|d| d.snapshot_active()));
        if !left {
            break;
        }
    }
    drain(job, sink)?;
    if job.cancelled() {
        return Err(cancelled());
    }
    Ok(())
}

/// Hands what was emitted to `sink`, encoding the strings first. Holds no lock.
fn drain(job: &Job, sink: &mut dyn Sink) -> io::Result<()> {
    for mut r in job.take() {
        if r.plain_string {
            let mut data = Vec::with_capacity(r.data.len() + 9);
            data.extend_from_slice(r.key());
            codec::put_string(&mut data, &r.data[r.key_len..], job.compress);
            r.data = data;
            r.plain_string = false;
        }
        sink.record(&r)?;
        job.keys_done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Clears the job slot if it still holds `job`.
pub fn release(server: &Server, job: &Arc<Job>) {
    let mut slot = server.persist.job.lock();
    if slot.as_ref().is_some_and(|j| Arc::ptr_eq(j, job)) {
        *slot = None;
    }
}

/// The end of a background save: the statistics, the log.
fn finish_rdb(server: &Arc<Server>, job: &Arc<Job>, result: io::Result<()>) {
    let p = &server.persist;
    if job.cancelled() {
        release(server, job);
        // Cancelled (FLUSHALL, SHUTDOWN): not a failure, as a killed child in Redis.
        log(server, "warning", "Background saving terminated by signal 10");
        return;
    }
    p.last_bgsave_secs.store(job.started.elapsed().as_secs() as i64, Ordering::Relaxed);
    p.last_cow_bytes.store(job.peak_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
    match result {
        Ok(()) => {
            log(server, "notice", "DB saved on disk");
            let stats = &server.stats;
            // Changes made during the save are not in the file: they stay counted.
            stats.dirty_at_save.fetch_max(job.dirty_at_start, Ordering::Relaxed);
            server.lastsave.store(now_secs(), Ordering::Relaxed);
            p.last_bgsave_ok.store(true, Ordering::Relaxed);
            log(server, "notice", "Background saving terminated with success");
        }
        Err(e) => {
            log(server, "warning", &format!("Write error saving DB on disk: {e}"));
            p.last_bgsave_ok.store(false, Ordering::Relaxed);
            log(server, "warning", "Background saving error");
        }
    }
    p.refresh_misconf(&server.config);
    // Last: whoever sees no save in progress sees its outcome.
    release(server, job);
}

/// A replica's full sync: the dataset as one RDB in memory, and
/// `at_instant` called at the snapshot's instant with every shard held (the
/// replica subscribes to the write stream there). The snapshot is BGSAVE's
/// (registered as a save in progress, so no other save runs over it, as a
/// sync's save shows in Redis): the shards are held only to attach it.
/// With another save running, the dataset is written with every shard held
/// instead. Blocks: call from a thread that may block and holds no shard.
pub fn snapshot_for_replica(server: &Server, at_instant: impl FnOnce()) -> io::Result<Vec<u8>> {
    snapshot_for_replica_to(server, Vec::new(), at_instant)
}

/// `snapshot_for_replica` written to `out` as the walk produces it (a
/// diskless sync streams it to the replica's socket): `out` may block, it
/// is never written with a shard held.
pub fn snapshot_for_replica_to<W: Write>(server: &Server, mut out: W, at_instant: impl FnOnce()) -> io::Result<W> {
    let mut guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
    if may_start(server, JobKind::Rdb).is_err() {
        let refs: Vec<&ShardData> = guards.iter().map(|g| &**g).collect();
        let rdb = write_held(server, &refs, Vec::new(), false);
        at_instant();
        drop(guards);
        out.write_all(&rdb?)?;
        return Ok(out);
    }
    let job = begin(server, JobKind::Rdb, &mut guards, None);
    let codes = crate::scripting::functions::library_codes(server);
    *server.persist.job.lock() = Some(job.clone());
    at_instant();
    drop(guards);
    let result = (|| {
        let mut w = RdbWriter::new(out, &writer_options(server, false))?;
        walk(server, &job, &codes, &mut w)?;
        w.finish()
    })();
    if result.is_err() && !job.cancelled() {
        // The walk stopped early: its snapshot states must not linger.
        let mut guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
        guards.iter_mut().for_each(|g| g.dbs.iter_mut().for_each(|d| d.snapshot_abort()));
    }
    release(server, &job);
    result
}

/// Starts a background AOF rewrite: with every shard held, the AOF moves
/// on to a new incremental file (`aof::cut`) and the snapshot begins; the
/// new base is written in the background, then the manifest names the new
/// base and incremental file only (`aof::rewrite_done`).
pub fn bgrewriteaof(server: &Arc<Server>) -> Result<(), Refused> {
    may_start(server, JobKind::AofRewrite)?;
    let mut guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
    may_start(server, JobKind::AofRewrite)?;
    let cut = match super::aof::cut(server) {
        Ok(c) => c,
        Err(e) => {
            drop(guards);
            log(server, "warning", &format!("Can't rewrite the append only file: {e}"));
            server.persist.aof_rewrite_ok.store(false, Ordering::Relaxed);
            return Err(Refused::Failed(e));
        }
    };
    let job = begin(server, JobKind::AofRewrite, &mut guards, None);
    let codes = crate::scripting::functions::library_codes(server);
    *server.persist.job.lock() = Some(job.clone());
    drop(guards);
    log(server, "notice", &format!("Background append only file rewriting started by pid {}", std::process::id()));
    let srv = server.clone();
    spawn_walk(server, job, move |job| {
        let result = super::aof::write_base(&cut, |out, preamble| {
            if preamble {
                let mut w = RdbWriter::new(out, &writer_options(&srv, true))?;
                walk(&srv, job, &codes, &mut w)?;
                w.finish()
            } else {
                let ts = srv.config.get("aof-timestamp-enabled").as_deref() == Some("yes");
                let mut w = super::aof::CommandWriter::new(out, ts);
                walk(&srv, job, &codes, &mut w)?;
                w.finish()
            }
        });
        let p = &srv.persist;
        if job.cancelled() {
            release(&srv, job);
            log(&srv, "warning", "Background AOF rewrite terminated by signal 10");
            return;
        }
        p.aof_last_rewrite_secs.store(job.started.elapsed().as_secs() as i64, Ordering::Relaxed);
        p.aof_last_cow_bytes.store(job.peak_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        match result.and_then(|()| super::aof::rewrite_done(&srv, &cut)) {
            Ok(()) => {
                p.aof_rewrites.fetch_add(1, Ordering::Relaxed);
                p.aof_rewrite_failures.store(0, Ordering::Relaxed);
                p.aof_rewrite_ok.store(true, Ordering::Relaxed);
                log(&srv, "notice", "Background AOF rewrite terminated with success");
                log(&srv, "notice", "Background AOF rewrite finished successfully");
            }
            Err(e) => {
                p.aof_rewrite_failures.fetch_add(1, Ordering::Relaxed);
                p.aof_rewrite_failed_at.store(now_secs(), Ordering::Relaxed);
                p.aof_rewrite_ok.store(false, Ordering::Relaxed);
                log(&srv, "warning", &format!("Background AOF rewrite failed: {e}"));
                if cut.initial && p.aof_initial.load(Ordering::Acquire) {
                    // The AOF waits for its first base: tried again by the cron.
                    super::aof::initial_failed(&srv, &cut);
                    p.aof_rewrite_scheduled.store(true, Ordering::Relaxed);
                }
            }
        }
        release(&srv, job);
    });
    Ok(())
}

/// After 3 failed AOF rewrites in a row, as Redis does, a scheduled or
/// automatic one waits a minute after the last failure, doubling with each
/// further failure up to an hour (BGREWRITEAOF itself is not held back).
fn rewrite_limited(p: &super::State) -> bool {
    let failures = p.aof_rewrite_failures.load(Ordering::Relaxed);
    if failures < 3 {
        return false;
    }
    let wait = (60u64 << (failures - 3).min(6)).min(3600);
    now_secs().saturating_sub(p.aof_rewrite_failed_at.load(Ordering::Relaxed)) < wait
}

/// `CONFIG SET appendonly no`: an AOF rewrite in progress stops (as Redis
/// kills its child), then the AOF.
pub fn stop_aof(server: &Server) {
    let rewriting = || server.persist.running().is_some_and(|j| j.kind == JobKind::AofRewrite);
    if rewriting() {
        let mut guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
        let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
        if rewriting() && cancel_held(server, &mut refs) {
            log(server, "notice", &format!("Killing running AOF rewrite child: {}", std::process::id()));
        }
    }
    super::aof::switch_off(server);
}

/// Stops the background save in progress, if any (FLUSHALL, SHUTDOWN),
/// with every shard held by the caller: its snapshot states go at once, its
/// thread notices and removes its temporary file.
pub fn cancel_held(server: &Server, shards: &mut [&mut ShardData]) -> bool {
    let Some(job) = server.persist.job.lock().take() else {
        return false;
    };
    job.cancel();
    for s in shards.iter_mut() {
        s.dbs.iter_mut().for_each(|d| d.snapshot_abort());
    }
    if job.kind == JobKind::AofRewrite && server.persist.aof_initial.load(Ordering::Acquire) {
        // The AOF still waits for its first base: a new one is written.
        server.persist.aof_rewrite_scheduled.store(true, Ordering::Relaxed);
    }
    true
}

/// The persistence cron (every 100 ms): BGSAVE SCHEDULE and the save points.
pub async fn cron(server: Arc<Server>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if server.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        if server.cron_is_paused() {
            continue;
        }
        let p = &server.persist;
        if p.loading.load(Ordering::Relaxed) || p.job.lock().is_some() {
            continue;
        }
        if !rewrite_limited(p)
            && (p.aof_rewrite_scheduled.swap(false, Ordering::Relaxed) || super::aof::rewrite_due(&server))
        {
            let srv = server.clone();
            let _ = tokio::task::spawn_blocking(move || bgrewriteaof(&srv)).await;
            continue;
        }
        let start = if p.bgsave_scheduled.load(Ordering::Relaxed) {
            true
        } else {
            let now = now_secs();
            let changes = server
                .stats
                .dirty
                .load(Ordering::Relaxed)
                .saturating_sub(server.stats.dirty_at_save.load(Ordering::Relaxed));
            let since_save = now.saturating_sub(server.lastsave.load(Ordering::Relaxed));
            let may_retry = p.last_bgsave_ok.load(Ordering::Relaxed)
                || now.saturating_sub(p.last_bgsave_try.load(Ordering::Relaxed)) > 5;
            match save_points(&server.config).into_iter().find(|&(secs, n)| changes >= n && since_save > secs) {
                Some((secs, n)) if may_retry => {
                    log(&server, "notice", &format!("{n} changes in {secs} seconds. Saving..."));
                    true
                }
                _ => false,
            }
        };
        if start {
            p.bgsave_scheduled.store(false, Ordering::Relaxed);
            let srv = server.clone();
            let _ = tokio::task::spawn_blocking(move || bgsave(&srv)).await;
        }
    }
}

/// Redis's log line for a save stopped by a shutdown.
fn killing_text(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Rdb => "There is a child saving an .rdb. Killing it!",
        JobKind::AofRewrite => "There is a child rewriting the AOF. Killing it!",
    }
}

/// The persistence part of a shutdown: a background save in progress
/// stops, and when `save` the final RDB file is written (every shard held).
/// Err: the save failed and `force` is off, so the server must not exit.
/// While the AOF's first base is written, the server does not exit unless
/// `force` (the dataset would have no AOF), as Redis.
pub fn prepare_shutdown(server: &Server, save: bool, force: bool) -> Result<(), String> {
    let result = prepare_shutdown_steps(server, save, force);
    if result.is_err() {
        log(server, "warning", "Errors trying to shut down the server. Check the logs for more information.");
    }
    result
}

fn prepare_shutdown_steps(server: &Server, save: bool, force: bool) -> Result<(), String> {
    let running = server.persist.running().map(|j| j.kind);
    if running == Some(JobKind::AofRewrite) && server.persist.aof_initial.load(Ordering::Acquire) {
        // Exiting now would leave no AOF of the dataset.
        if !force {
            log(server, "warning", "Writing initial AOF, can't exit.");
            return Err("writing initial AOF".into());
        }
        log(server, "warning", "Writing initial AOF. Exit anyway.");
    }
    if !save {
        // Exiting without a save: the running save only has to stop (a busy
        // script may hold a shard, so none is entered).
        if let Some(job) = server.persist.job.lock().take() {
            job.cancel();
            log(server, "warning", killing_text(job.kind));
        }
        return Ok(());
    }
    if server.shards.list.iter().any(|s| s.script_running()) {
        log(server, "warning", "Can't save the dataset while a script is running.");
        if force {
            log(server, "warning", "Error trying to save the DB. Exit anyway.");
            return Ok(());
        }
        return Err("a script is running".into());
    }
    // A replica saves at a unit boundary of its master's stream (taken
    // before the shards, in the stream's own order): the file then records
    // the offset a restart continues from.
    let applying = server.replicas.at_unit_boundary(Duration::from_secs(1));
    let mut guards: Vec<_> = server.shards.list.iter().map(|s| s.lock_blocking()).collect();
    let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
    let running = server.persist.running().map(|j| j.kind);
    if let Some(kind) = running.filter(|_| cancel_held(server, &mut refs)) {
        log(server, "warning", killing_text(kind));
    }
    {
        log(server, "notice", "Saving the final RDB snapshot before exiting.");
        let held: Vec<&ShardData> = refs.iter().map(|s| &**s).collect();
        let repl = crate::replication::save_info(server, applying.is_some());
        if let Err(e) = save_held_with(server, &held, repl) {
            if !force {
                log(server, "warning", "Error trying to save the DB, can't exit.");
                return Err(e);
            }
            log(server, "warning", "Error trying to save the DB. Exit anyway.");
        }
    }
    Ok(())
}
