//! The append-only file, in Redis 7's multi-part layout: a directory
//! (`appenddirname`) holding a base file (an RDB preamble or commands), one
//! or more incremental files of commands, and a manifest that lists them.
//! redis-server and moonshard read each other's directories.
//!
//! The AOF follows the propagated write stream (`crate::propagate`): the
//! stream appends bytes to `Aof::pending` in global order, and a writer
//! thread writes them and fsyncs per `appendfsync`: `always` fsyncs before
//! the clients whose writes it holds get their replies (one fsync serves
//! every write that arrived meanwhile: group commit), `everysec` once a
//! second, `no` never.
//!
//! At start-up the files are replayed through dispatch (`Origin::AofLoad`)
//! before the server accepts clients.

use crate::commands::dispatch::{self, Origin, Tally};
use crate::commands::registry::{self, Exec};
use crate::commands::spec::SessionOp;
use crate::commands::{ConnCtx, Ctx};
use crate::net::client::{ClientInfo, ClientState, ReplyMode};
use crate::server::Server;
use crate::shard::ShardData;
use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const FSYNC_ALWAYS: u8 = 0;
pub const FSYNC_EVERYSEC: u8 = 1;
pub const FSYNC_NO: u8 = 2;

pub fn fsync_policy(name: &str) -> u8 {
    match name {
        "always" => FSYNC_ALWAYS,
        "no" => FSYNC_NO,
        _ => FSYNC_EVERYSEC,
    }
}

// ------------------------------------------------------------------ manifest

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub seq: u64,
    /// b (base), h (history), i (incremental).
    pub kind: char,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<FileEntry>,
    pub incrs: Vec<FileEntry>,
}

impl Manifest {
    /// Parses a manifest as Redis 7 writes it: one `file <name> seq <n>
    /// type <b|h|i>` line per file. It is as strict as Redis's reader (a
    /// manifest Redis refuses is refused here, with its texts): no blank
    /// lines, every line ends in a newline and is shorter than 1024 bytes,
    /// increments in ascending order, one base. History entries are skipped.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        if text.is_empty() {
            return Err(manifest_error(None, "Found an empty AOF manifest"));
        }
        let mut max_seq = 0;
        for (n, raw) in text.split_inclusive('\n').enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            let line = raw.trim_matches([' ', '\t', '\r', '\n']);
            let here = Some((n + 1, line));
            if !raw.ends_with('\n') || raw.len() > MANIFEST_MAX_LINE {
                return Err(manifest_error(here, "The AOF manifest file contains too long line"));
            }
            let invalid = || manifest_error(here, "Invalid AOF manifest file format");
            let words = split_args(line).ok_or_else(invalid)?;
            if words.len() < 6 || words.len() % 2 == 1 {
                return Err(invalid());
            }
            let (mut name, mut seq, mut kind) = (None, 0u64, None);
            for pair in words.chunks(2) {
                let (k, v) = (&pair[0], &pair[1]);
                if k.eq_ignore_ascii_case("file") {
                    if v.contains('/') {
                        return Err(manifest_error(here, "File can't be a path, just a filename"));
                    }
                    name = Some(v.clone());
                } else if k.eq_ignore_ascii_case("seq") {
                    seq = leading_number(v);
                } else if k.eq_ignore_ascii_case("type") {
                    kind = v.chars().next();
                }
            }
            let (Some(name), true, Some(kind)) = (name, seq != 0, kind) else {
                return Err(invalid());
            };
            let entry = FileEntry { name, seq, kind };
            match kind {
                'b' => {
                    if m.base.is_some() {
                        return Err(manifest_error(here, "Found duplicate base file information"));
                    }
                    m.base = Some(entry);
                }
                'i' => {
                    if seq <= max_seq {
                        return Err(manifest_error(here, "Found a non-monotonic sequence number"));
                    }
                    max_seq = seq;
                    m.incrs.push(entry);
                }
                'h' => {}
                _ => return Err(manifest_error(here, "Unknown AOF file type")),
            }
        }
        Ok(m)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in self.base.iter().chain(self.incrs.iter()) {
            out.push_str(&format!("file {} seq {} type {}\n", quote_if_needed(&e.name), e.seq, e.kind));
        }
        out
    }
}

/// `DEBUG AOF-FLUSH-SLEEP <microseconds>`: each write of the AOF buffer waits
/// this long first (a test hook, as Redis's: it shows that replies wait for
/// the write under `appendfsync always`). 0 = off.
pub static FLUSH_SLEEP_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Redis reads a manifest line into a buffer of this size.
const MANIFEST_MAX_LINE: usize = 1024;

/// The refusal of a manifest, in the lines Redis logs (`at`: the line
/// number and text it was reading).
fn manifest_error(at: Option<(usize, &str)>, why: &str) -> String {
    let mut out = String::from("*** FATAL AOF MANIFEST FILE ERROR ***\n");
    if let Some((n, line)) = at {
        out.push_str(&format!("Reading the manifest file, at line {n}\n>>> '{line}'\n"));
    }
    out.push_str(why);
    out
}

/// A manifest's `seq` as C's atoll reads it: leading digits, else 0.
fn leading_number(v: &str) -> u64 {
    let digits: String = v.trim_start().chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or(0)
}

/// Splits a manifest line as Redis's `sdssplitargs` does: words, or
/// double-quoted strings with `\\n`, `\\r`, `\\t`, `\\b`, `\\a` and `\\xHH`
/// escapes, or single-quoted strings; a closing quote must end the word.
/// None for an unbalanced quote.
fn split_args(line: &str) -> Option<Vec<String>> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return Some(out);
        }
        let mut word = Vec::new();
        match b[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let c = *b.get(i)?;
                    i += 1;
                    if c == q {
                        break;
                    }
                    if c != b'\\' {
                        word.push(c);
                        continue;
                    }
                    let e = *b.get(i)?;
                    i += 1;
                    if q == b'\'' {
                        // Single quotes only escape themselves.
                        if e != b'\'' {
                            word.push(b'\\');
                        }
                        word.push(e);
                        continue;
                    }
                    let hex = |c: u8| (c as char).to_digit(16);
                    word.push(match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        b'x' if i + 1 < b.len() && hex(b[i]).is_some() && hex(b[i + 1]).is_some() => {
                            let v = hex(b[i])? * 16 + hex(b[i + 1])?;
                            i += 2;
                            v as u8
                        }
                        other => other,
                    });
                }
                if i < b.len() && !b[i].is_ascii_whitespace() {
                    return None;
                }
            }
            _ => {
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    word.push(b[i]);
                    i += 1;
                }
            }
        }
        out.push(String::from_utf8_lossy(&word).into_owned());
    }
}

/// A file name as Redis writes it into a manifest: as is, or quoted with
/// escapes (`sdscatrepr`) when it holds spaces, quotes or control bytes.
fn quote_if_needed(name: &str) -> String {
    let needs = name.bytes().any(|c| c == b'\\' || c == b'"' || c.is_ascii_whitespace() || !(0x20..0x7f).contains(&c));
    if !needs {
        return name.to_string();
    }
    let mut out = String::from("\"");
    for c in name.bytes() {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------- the files

/// Where the AOF lives, from the configuration.
pub struct Layout {
    pub dir: PathBuf,
    pub filename: String,
}

impl Layout {
    pub fn from_config(server: &Server) -> Layout {
        let c = &server.config;
        let base = PathBuf::from(c.get("dir").unwrap_or_else(|| ".".into()));
        let dirname = c.get("appenddirname").unwrap_or_else(|| "appendonlydir".into());
        let filename = c.get("appendfilename").unwrap_or_else(|| "appendonly.aof".into());
        Layout { dir: base.join(dirname), filename }
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join(format!("{}.manifest", self.filename))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Writes the manifest atomically (temporary file, fsync, rename, fsync of the directory).
fn write_manifest(layout: &Layout, m: &Manifest) -> std::io::Result<()> {
    super::rdb::write_file(&layout.manifest_path(), m.render().as_bytes())?;
    sync_dir(&layout.dir)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates a fresh AOF for an empty dataset: an empty base (an RDB preamble
/// or an empty command file, per `aof-use-rdb-preamble`), an empty first
/// incremental file and the manifest.
fn create_fresh(server: &Server, layout: &Layout) -> std::io::Result<Manifest> {
    std::fs::create_dir_all(&layout.dir)?;
    let preamble = server.config.get("aof-use-rdb-preamble").as_deref() != Some("no");
    let base_name = format!("{}.1.base.{}", layout.filename, if preamble { "rdb" } else { "aof" });
    let base_bytes = if preamble { super::rdb::empty(true, crate::storage::memory::used_memory()) } else { Vec::new() };
    super::rdb::write_file(&layout.path(&base_name), &base_bytes)?;
    let incr_name = format!("{}.1.incr.aof", layout.filename);
    std::fs::File::create(layout.path(&incr_name))?.sync_all()?;
    let m = Manifest {
        base: Some(FileEntry { name: base_name, seq: 1, kind: 'b' }),
        incrs: vec![FileEntry { name: incr_name, seq: 1, kind: 'i' }],
    };
    write_manifest(layout, &m)?;
    Ok(m)
}

// --------------------------------------------------------------- the writer

struct Pending {
    buf: Vec<u8>,
    /// Stream offset of the end of `buf`.
    end: u64,
}

/// How long writes are gathered under `everysec`/`no`, and the pile that
/// is written at once.
const GATHER_WINDOW: Duration = Duration::from_millis(5);
const GATHER_MAX: usize = 1 << 20;
/// How often an idle writer looks for bytes nobody wrote through (under
/// everysec and no it is not woken for them).
const IDLE_ROUND: Duration = Duration::from_millis(100);

/// The file end of the AOF, shared by the writer thread and the sessions
/// that write their clients' changes out before replying (`write_through`).
struct Output {
    file: std::fs::File,
    name: String,
    /// The buffer swapped with `Pending::buf` at each write, kept for its capacity.
    spare: Vec<u8>,
    last_ts: u64,
}

pub struct Aof {
    /// Stream offset when this writer started, and the bytes of the AOF's
    /// files then (`aof_current_size` is their sum with what was written since).
    pub start_offset: AtomicU64,
    pub start_bytes: AtomicU64,
    pending: Mutex<Pending>,
    out: Mutex<Output>,
    wake: Condvar,
    /// Stream offset up to which the file is written / fsynced.
    pub written: AtomicU64,
    pub synced: AtomicU64,
    /// Woken whenever `synced` moves (sessions waiting under `always`).
    pub synced_notify: tokio::sync::Notify,
    pub policy: AtomicU8,
    stop: AtomicBool,
    /// False after a failed write or fsync (INFO's aof_last_write_status).
    pub write_ok: AtomicBool,
    /// `aof-timestamp-enabled`: a `#TS:<unix secs>` line before each write
    /// in a new second (set again by every CONFIG SET).
    pub timestamps: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl crate::propagate::Subscriber for Aof {
    fn append(&self, bytes: &[u8], end: u64) {
        let mut p = self.pending.lock();
        let before = p.buf.len();
        p.buf.extend_from_slice(bytes);
        p.end = end;
        let after = p.buf.len();
        drop(p);
        // Under `always` the writer is woken for every first byte: sessions
        // wait for its fsync. Under everysec and no, the sessions write their
        // own bytes through before replying (`write_through`), so the writer
        // only picks up what nobody waits for (expiries, a master's stream)
        // at its next round (IDLE_ROUND): waking it for every batch cost a
        // futex wake and a context switch per batch, about a third of a SET's
        // time on one CPU. A large pile still wakes it early.
        let always = self.policy.load(Ordering::Relaxed) == FSYNC_ALWAYS;
        if (always && before == 0) || (before < GATHER_MAX && after >= GATHER_MAX) {
            self.wake.notify_one();
        }
    }

    /// A master's PINGs and GETACKs to its replicas stay out of the AOF, as
    /// in Redis; the stream offset moves past them all the same.
    fn append_replication_only(&self, _bytes: &[u8], end: u64) {
        self.pending.lock().end = end;
    }
}

impl Aof {
    /// Waits (asynchronously) until the stream is fsynced up to `offset`.
    pub async fn wait_synced(&self, offset: u64) {
        loop {
            let notified = self.synced_notify.notified();
            if self.synced.load(Ordering::Acquire) >= offset || self.stop.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Writes what is pending to the file (under `out`, so writes keep the
    /// stream's order whoever makes them).
    fn write_pending(&self, out: &mut Output, server: &Server) {
        let end = {
            let mut p = self.pending.lock();
            if p.buf.is_empty() {
                return;
            }
            std::mem::swap(&mut p.buf, &mut out.spare);
            p.end
        };
        let sleep = FLUSH_SLEEP_US.load(Ordering::Relaxed);
        if sleep > 0 {
            std::thread::sleep(Duration::from_micros(sleep));
        }
        let mut ok = true;
        if self.timestamps.load(Ordering::Relaxed) {
            let now = crate::storage::now_ms() / 1000;
            if now != out.last_ts {
                ok &= out.file.write_all(format!("#TS:{now}\r\n").as_bytes()).is_ok();
                out.last_ts = now;
            }
        }
        ok &= out.file.write_all(&out.spare).is_ok();
        out.spare.clear();
        if out.spare.capacity() > 4 * GATHER_MAX {
            out.spare = Vec::new();
        }
        if !ok {
            self.write_failed(server, &out.name);
        }
        self.written.store(end, Ordering::Release);
    }

    /// Under `everysec` and `no`: makes sure the stream is written to the
    /// file (not yet fsynced) up to `offset` before the caller replies, as
    /// Redis writes its AOF buffer before it answers. A `kill -9` of the
    /// process then loses nothing acknowledged: the kernel has the bytes.
    /// One session writes what every session produced meanwhile; the others
    /// find it done.
    pub fn write_through(&self, offset: u64, server: &Server) {
        if self.written.load(Ordering::Acquire) >= offset {
            return;
        }
        let mut out = self.out.lock();
        if self.written.load(Ordering::Acquire) < offset {
            self.write_pending(&mut out, server);
        }
    }

    fn run(self: Arc<Self>, sync_file: std::fs::File, server: Arc<Server>) {
        let mut last_sync = Instant::now();
        let mut last_write = Instant::now();
        loop {
            let policy = self.policy.load(Ordering::Relaxed);
            {
                let mut p = self.pending.lock();
                // Under everysec and no, writes nobody waits for (sessions
                // write their own through `write_through`) are gathered for a
                // few milliseconds into one write().
                if policy != FSYNC_ALWAYS && !p.buf.is_empty() && !self.stop.load(Ordering::Acquire) {
                    let since = last_write.elapsed();
                    if since < GATHER_WINDOW && p.buf.len() < GATHER_MAX {
                        self.wake.wait_for(&mut p, GATHER_WINDOW - since);
                    }
                }
                while p.buf.is_empty() && !self.stop.load(Ordering::Acquire) {
                    let unsynced = self.written.load(Ordering::Relaxed) > self.synced.load(Ordering::Relaxed);
                    if policy == FSYNC_ALWAYS && unsynced {
                        // Written under the previous policy (appendfsync just
                        // became always) and not fsynced: sessions wait for it.
                        break;
                    }
                    if policy == FSYNC_EVERYSEC && unsynced {
                        let left = Duration::from_secs(1).saturating_sub(last_sync.elapsed());
                        if left.is_zero() {
                            break;
                        }
                        // Rounds of at most IDLE_ROUND until the second is up.
                        self.wake.wait_for(&mut p, left.min(IDLE_ROUND));
                    } else {
                        self.wake.wait_for(&mut p, IDLE_ROUND);
                        if policy != self.policy.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                }
            }
            {
                let mut out = self.out.lock();
                self.write_pending(&mut out, &server);
            }
            last_write = Instant::now();
            // What the fsync below covers: everything written before it starts
            // (a duplicate descriptor, so sessions keep writing meanwhile).
            let written = self.written.load(Ordering::Acquire);
            let due = match policy {
                FSYNC_ALWAYS => written > self.synced.load(Ordering::Relaxed),
                FSYNC_EVERYSEC => last_sync.elapsed() >= Duration::from_secs(1),
                _ => false,
            };
            if due {
                if sync_file.sync_data().is_err() {
                    let name = self.out.lock().name.clone();
                    self.write_failed(&server, &name);
                }
                last_sync = Instant::now();
            }
            if due || policy == FSYNC_NO {
                self.synced.store(written, Ordering::Release);
                self.synced_notify.notify_waiters();
            }
            if self.stop.load(Ordering::Acquire) && self.pending.lock().buf.is_empty() {
                let _ = sync_file.sync_data();
                self.synced.store(self.written.load(Ordering::Acquire), Ordering::Release);
                self.synced_notify.notify_waiters();
                return;
            }
        }
    }

    fn write_failed(&self, server: &Server, name: &str) {
        if self.write_ok.swap(false, Ordering::AcqRel) {
            crate::net::listener::log(server, "warning", &format!("Error writing to the AOF file {name}"));
        }
    }

    /// Stops the writer after everything pending is written and fsynced.
    pub fn close(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

/// Starts appending the write stream to the AOF's last incremental file.
fn start_writer(server: &Arc<Server>, layout: &Layout, manifest: &Manifest) -> std::io::Result<Arc<Aof>> {
    let last =
        manifest.incrs.last().ok_or_else(|| std::io::Error::other("the AOF manifest lists no incremental file"))?;
    let path = layout.path(&last.name);
    let file = std::fs::OpenOptions::new().append(true).create(true).open(&path)?;
    let sync_file = file.try_clone()?;
    let policy = fsync_policy(&server.config.get("appendfsync").unwrap_or_default());
    let files_bytes: u64 = manifest
        .base
        .iter()
        .chain(manifest.incrs.iter())
        .filter_map(|f| std::fs::metadata(layout.path(&f.name)).ok())
        .map(|m| m.len())
        .sum();
    let aof = Arc::new(Aof {
        start_offset: AtomicU64::new(0),
        start_bytes: AtomicU64::new(files_bytes),
        pending: Mutex::new(Pending { buf: Vec::new(), end: 0 }),
        out: Mutex::new(Output { file, name: last.name.clone(), spare: Vec::new(), last_ts: 0 }),
        wake: Condvar::new(),
        written: AtomicU64::new(0),
        synced: AtomicU64::new(0),
        synced_notify: tokio::sync::Notify::new(),
        policy: AtomicU8::new(policy),
        stop: AtomicBool::new(false),
        write_ok: AtomicBool::new(true),
        timestamps: AtomicBool::new(server.config.get("aof-timestamp-enabled").as_deref() == Some("yes")),
        thread: Mutex::new(None),
    });
    let offset = server.propagation.subscribe(aof.clone());
    aof.start_offset.store(offset, Ordering::Release);
    aof.written.store(offset, Ordering::Release);
    aof.synced.store(offset, Ordering::Release);
    aof.pending.lock().end = offset;
    let (me, srv) = (aof.clone(), server.clone());
    let thread = std::thread::Builder::new().name("moonshard-aof".into()).spawn(move || me.run(sync_file, srv))?;
    *aof.thread.lock() = Some(thread);
    Ok(aof)
}

// --------------------------------------------------------------- start-up

/// At start-up with `appendonly yes`: loads the AOF (creating a fresh one
/// when there is none) and starts appending to it. Err: the server must not
/// start (the message says why, in Redis's words where Redis has them).
pub fn open_at_startup(server: &Arc<Server>) -> Result<(), String> {
    if server.config.get("appendonly").as_deref() != Some("yes") {
        return Ok(());
    }
    let layout = Layout::from_config(server);
    let manifest_path = layout.manifest_path();
    let mut manifest = if manifest_path.is_file() {
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            format!("Fatal error: can't open the AOF manifest file {} for reading: {e}", manifest_path.display())
        })?;
        Manifest::parse(&text)?
    } else {
        Manifest::default()
    };
    upgrade_single_file(server, &layout, &mut manifest)
        .map_err(|e| format!("Can't upgrade the old-style AOF file: {e}"))?;
    if manifest.base.is_none() && manifest.incrs.is_empty() {
        manifest = create_fresh(server, &layout).map_err(|e| format!("Can't create the append-only file: {e}"))?;
    } else {
        load(server, &layout, &manifest)?;
        if manifest.incrs.is_empty() {
            // As Redis opens one at start-up: a manifest with only a base
            // (an upgraded old AOF) gets its first incremental file.
            let seq = 1;
            let incr = FileEntry { name: format!("{}.{seq}.incr.aof", layout.filename), seq, kind: 'i' };
            std::fs::File::create(layout.path(&incr.name))
                .and_then(|f| f.sync_all())
                .map_err(|e| format!("Can't open the append-only file {}: {e}", incr.name))?;
            manifest.incrs.push(incr);
            write_manifest(&layout, &manifest).map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
        }
    }
    let aof = start_writer(server, &layout, &manifest).map_err(|e| format!("Can't open the append-only file: {e}"))?;
    server.persist.aof_base_size.store(aof.start_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
    *server.aof.lock() = Some(aof);
    Ok(())
}

/// A Redis 6 (or older) AOF: one file named `appendfilename` in `dir`, an
/// RDB preamble and/or commands. As Redis 7 does, it becomes the base of a
/// multi-part AOF when the AOF directory is missing, its manifest lists
/// nothing, or the manifest names only this file as its base and the file is
/// not in the directory yet (an upgrade interrupted before the move). The
/// manifest naming it is written first, then the file moves (a crash
/// between the two is the third case). True when it upgraded.
fn upgrade_single_file(server: &Server, layout: &Layout, m: &mut Manifest) -> std::io::Result<bool> {
    let base = layout.dir.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let old = base.join(&layout.filename);
    if !old.is_file() {
        return Ok(false);
    }
    let interrupted = m.incrs.is_empty()
        && m.base.as_ref().is_some_and(|b| b.name == layout.filename)
        && !layout.path(&layout.filename).exists();
    if layout.dir.is_dir() && (m.base.is_some() || !m.incrs.is_empty()) && !interrupted {
        return Ok(false);
    }
    std::fs::create_dir_all(&layout.dir)?;
    m.base = Some(FileEntry { name: layout.filename.clone(), seq: 1, kind: 'b' });
    write_manifest(layout, m)?;
    std::fs::rename(&old, layout.path(&layout.filename))?;
    sync_dir(&layout.dir)?;
    sync_dir(&base)?;
    let dirname = layout.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    crate::net::listener::log(
        server,
        "notice",
        &format!(
            "Successfully migrated an old-style AOF file ({}) into the AOF directory ({dirname}).",
            layout.filename
        ),
    );
    Ok(true)
}

/// `CONFIG SET appendonly yes` at run time. As Redis does, the AOF counts
/// as on at once, and its first base is written by a background rewrite
/// (`save::bgrewriteaof`, which sees `aof_initial`): until it ends the write
/// stream goes to a temporary incremental file and no manifest names
/// anything (a crash meanwhile leaves the directory as it was), SHUTDOWN
/// refuses to exit without FORCE, and a failed rewrite is tried again.
/// With another background job running, the rewrite starts after it.
/// Err: the rewrite could not start (the AOF stays off).
pub fn enable_at_runtime(server: &Arc<Server>) -> Result<(), String> {
    let p = &server.persist;
    if server.aof.lock().is_some() || p.aof_initial.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    match super::save::bgrewriteaof(server) {
        Ok(()) => Ok(()),
        Err(super::save::Refused::Failed(why)) => {
            p.aof_initial.store(false, Ordering::Release);
            crate::net::listener::log(
                server,
                "warning",
                "Redis needs to enable the AOF but can't trigger a background AOF rewrite operation. Check the \
                 above logs for more info about the error.",
            );
            Err(why)
        }
        Err(_) => {
            p.aof_rewrite_scheduled.store(true, Ordering::Relaxed);
            crate::net::listener::log(
                server,
                "warning",
                "AOF was enabled but there is already another background operation. An AOF background was \
                 scheduled to start when possible.",
            );
            Ok(())
        }
    }
}

/// `CONFIG SET appendonly no`: stops appending (everything pending written
/// and fsynced); a first base still being written is given up and its
/// temporary incremental file removed. The caller has stopped any rewrite.
pub fn switch_off(server: &Server) {
    server.persist.aof_rewrite_scheduled.store(false, Ordering::Relaxed);
    let initial = server.persist.aof_initial.swap(false, Ordering::AcqRel);
    disable(server);
    if initial {
        let layout = Layout::from_config(server);
        let _ = std::fs::remove_file(layout.path(&temp_incr_name(&layout)));
    }
}

/// The incremental file written while the first base is (Redis's name).
fn temp_incr_name(layout: &Layout) -> String {
    format!("temp-{}.incr", layout.filename)
}

fn push_command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

/// `CONFIG SET appendonly no`, and shutdown: stops appending, after
/// everything pending is written and fsynced.
pub fn disable(server: &Server) {
    let aof = server.aof.lock().take();
    if let Some(aof) = aof {
        let sub: Arc<dyn crate::propagate::Subscriber> = aof.clone();
        server.propagation.unsubscribe(&sub);
        aof.close();
    }
}

impl Aof {
    /// Bytes appended and not yet written to the file (INFO's `aof_buffer_length`).
    pub fn pending_len(&self) -> usize {
        self.pending.lock().buf.len()
    }

    /// Memory the buffer of appended bytes holds (INFO's `mem_aof_buffer`).
    pub fn pending_memory(&self) -> usize {
        self.pending.lock().buf.capacity()
    }

    /// Bytes of the AOF's files now (INFO's `aof_current_size`).
    pub fn current_size(&self) -> u64 {
        let since = self.written.load(Ordering::Relaxed).saturating_sub(self.start_offset.load(Ordering::Relaxed));
        self.start_bytes.load(Ordering::Relaxed) + since
    }
}

// ---------------------------------------------------------------- rewrite

/// The state of a rewrite after its cut: the AOF appends to `incr` (a new
/// incremental file); the new base will get sequence `seq`.
pub struct Cut {
    layout: Layout,
    seq: u64,
    incr: FileEntry,
    /// The files before the cut, deleted once the new base is in place.
    old: Option<Manifest>,
    preamble: bool,
    /// The AOF's first base (`aof_initial`): the stream goes to the
    /// temporary incremental file, renamed to `incr` when the base is done.
    pub initial: bool,
}

/// BGREWRITEAOF's cut, with every shard held by the caller: a new
/// incremental file, listed in the manifest after the existing files, and
/// the AOF writer moved on to it. From here on the old files plus the new
/// base (the snapshot at this instant) hold nothing twice.
pub fn cut(server: &Arc<Server>) -> Result<Cut, String> {
    let layout = Layout::from_config(server);
    std::fs::create_dir_all(&layout.dir).map_err(|e| e.to_string())?;
    let old = std::fs::read_to_string(layout.manifest_path()).ok().and_then(|t| Manifest::parse(&t).ok());
    let seq = old
        .as_ref()
        .map_or(0, |m| m.base.as_ref().map_or(0, |b| b.seq).max(m.incrs.iter().map(|i| i.seq).max().unwrap_or(0)))
        + 1;
    let incr = FileEntry { name: format!("{}.{seq}.incr.aof", layout.filename), seq, kind: 'i' };
    let sync = |f: std::fs::File| f.sync_all();
    let initial = server.persist.aof_initial.load(Ordering::Acquire);
    if initial {
        // Nothing is named in the manifest before the base is written. (A
        // writer left by a first base cancelled by FLUSHALL starts over.)
        disable(server);
        let temp = FileEntry { name: temp_incr_name(&layout), seq, kind: 'i' };
        std::fs::File::create(layout.path(&temp.name)).and_then(sync).map_err(|e| e.to_string())?;
        let during = Manifest { base: None, incrs: vec![temp] };
        let aof = start_writer(server, &layout, &during).map_err(|e| e.to_string())?;
        *server.aof.lock() = Some(aof);
    } else {
        std::fs::File::create(layout.path(&incr.name)).and_then(sync).map_err(|e| e.to_string())?;
        let mut during = old.clone().unwrap_or(Manifest { base: None, incrs: Vec::new() });
        during.incrs.push(incr.clone());
        write_manifest(&layout, &during).map_err(|e| e.to_string())?;
        if server.aof.lock().is_some() {
            disable(server);
            let aof = start_writer(server, &layout, &during).map_err(|e| e.to_string())?;
            *server.aof.lock() = Some(aof);
        }
    }
    let preamble = server.config.get("aof-use-rdb-preamble").as_deref() != Some("no");
    Ok(Cut { layout, seq, incr, old, preamble, initial })
}

/// Writes the rewrite's new base through a temporary file.
pub fn write_base(
    cut: &Cut,
    fill: impl FnOnce(std::io::BufWriter<std::fs::File>, bool) -> std::io::Result<std::io::BufWriter<std::fs::File>>,
) -> std::io::Result<()> {
    let tmp = super::save::background_temp_name("temp-rewriteaof-bg", "aof");
    super::save::write_durably(&cut.layout.path(&base_name(cut)), &tmp, |out| fill(out, cut.preamble))
}

fn base_name(cut: &Cut) -> String {
    format!("{}.{}.base.{}", cut.layout.filename, cut.seq, if cut.preamble { "rdb" } else { "aof" })
}

/// The rewrite's end: the manifest names the new base and the incremental
/// file started at the cut; the files before the cut go.
pub fn rewrite_done(server: &Server, cut: &Cut) -> std::io::Result<()> {
    if cut.initial {
        std::fs::rename(cut.layout.path(&temp_incr_name(&cut.layout)), cut.layout.path(&cut.incr.name))?;
        sync_dir(&cut.layout.dir)?;
        if let Some(aof) = server.aof.lock().as_ref() {
            aof.out.lock().name = cut.incr.name.clone();
        }
    }
    let m = Manifest {
        base: Some(FileEntry { name: base_name(cut), seq: cut.seq, kind: 'b' }),
        incrs: vec![cut.incr.clone()],
    };
    write_manifest(&cut.layout, &m)?;
    if let Some(old) = &cut.old {
        for f in old.base.iter().chain(old.incrs.iter()) {
            let _ = std::fs::remove_file(cut.layout.path(&f.name));
        }
    }
    let size: u64 = [base_name(cut), cut.incr.name.clone()]
        .iter()
        .filter_map(|n| std::fs::metadata(cut.layout.path(n)).ok())
        .map(|m| m.len())
        .sum();
    if let Some(aof) = server.aof.lock().as_ref() {
        let written = aof.written.load(Ordering::Relaxed);
        aof.start_offset.store(written, Ordering::Relaxed);
        aof.start_bytes.store(size, Ordering::Relaxed);
    }
    server.persist.aof_base_size.store(size, Ordering::Relaxed);
    if cut.initial {
        server.persist.aof_initial.store(false, Ordering::Release);
    }
    Ok(())
}

/// A first base that failed: the AOF stops appending to its temporary
/// incremental file, which goes, and stays waiting for the next try.
pub fn initial_failed(server: &Server, cut: &Cut) {
    if cut.initial {
        disable(server);
        let _ = std::fs::remove_file(cut.layout.path(&temp_incr_name(&cut.layout)));
    }
}

/// `auto-aof-rewrite-percentage` / `-min-size`: the AOF grew enough since
/// the last rewrite (or start-up) for a new one.
pub fn rewrite_due(server: &Server) -> bool {
    let Some(size) = server.aof.lock().as_ref().map(|a| a.current_size()) else {
        return false;
    };
    let perc = server.config.get_i64("auto-aof-rewrite-percentage");
    let min = server.config.get_i64("auto-aof-rewrite-min-size").max(0) as u64;
    if perc <= 0 || size <= min {
        return false;
    }
    let base = server.persist.aof_base_size.load(Ordering::Relaxed).max(1);
    let growth = (size.saturating_sub(base) * 100 / base) as i64;
    if growth >= perc {
        crate::net::listener::log(
            server,
            "notice",
            &format!("Starting automatic rewriting of AOF on {growth}% growth"),
        );
        return true;
    }
    false
}

/// An AOF base without RDB preamble: the snapshot's keys as RESTORE commands
/// (any type in one command, from its DUMP payload) and PEXPIREAT.
pub struct CommandWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    db: Option<usize>,
}

impl<W: Write> CommandWriter<W> {
    /// `timestamp`: the file starts with a `#TS:` annotation, as Redis's
    /// rewrite writes one under `aof-timestamp-enabled`.
    pub fn new(out: W, timestamp: bool) -> Self {
        let mut buf = Vec::new();
        if timestamp {
            buf.extend_from_slice(format!("#TS:{}\r\n", crate::storage::now_ms() / 1000).as_bytes());
        }
        CommandWriter { out, buf, db: None }
    }

    fn flush_some(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= 1 << 16 {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> super::save::Sink for CommandWriter<W> {
    fn function(&mut self, code: &[u8]) -> std::io::Result<()> {
        push_command(&mut self.buf, &[b"FUNCTION", b"LOAD", code]);
        self.flush_some()
    }

    fn record(&mut self, r: &super::save::Record) -> std::io::Result<()> {
        if self.db != Some(r.db) {
            self.db = Some(r.db);
            push_command(&mut self.buf, &[b"SELECT", r.db.to_string().as_bytes()]);
        }
        let payload = super::rdb::seal_payload(r.value_type, r.encoded());
        push_command(&mut self.buf, &[b"RESTORE", r.key(), b"0", &payload, b"REPLACE"]);
        if let Some(at) = r.expire {
            push_command(&mut self.buf, &[b"PEXPIREAT", r.key(), at.to_string().as_bytes()]);
        }
        self.flush_some()
    }
}

// ---------------------------------------------------------------- loading

/// What went wrong reading a file of commands.
enum ReadError {
    /// The file ends in the middle of a command.
    Truncated,
    Bad(String),
}

/// The next complete command at `*pos` of a replication stream (Ok(None):
/// incomplete, `*pos` unmoved).
pub(crate) fn next_stream_command(data: &[u8], pos: &mut usize) -> Result<Option<Vec<Bytes>>, String> {
    let start = *pos;
    match next_command(data, pos) {
        Ok(c) => Ok(c),
        Err(ReadError::Truncated) => {
            *pos = start;
            Ok(None)
        }
        Err(ReadError::Bad(_)) => Err("Protocol error in the master's stream".into()),
    }
}

/// Reads the next command at `*pos`, skipping `#` annotation lines.
fn next_command(data: &[u8], pos: &mut usize) -> Result<Option<Vec<Bytes>>, ReadError> {
    let line = |pos: &mut usize| -> Result<&[u8], ReadError> {
        let rest = &data[*pos..];
        let end = rest.windows(2).position(|w| w == b"\r\n").ok_or(ReadError::Truncated)?;
        *pos += end + 2;
        Ok(&rest[..end])
    };
    loop {
        let Some(&first) = data.get(*pos) else {
            return Ok(None);
        };
        if first == b'#' {
            line(pos)?;
            continue;
        }
        if first != b'*' {
            return Err(ReadError::Bad("Bad file format reading the append only file".into()));
        }
        let head = line(pos)?;
        let n: usize = std::str::from_utf8(&head[1..])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&n| n >= 1)
            .ok_or_else(|| ReadError::Bad("Bad file format reading the append only file".into()))?;
        let mut argv = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let head = line(pos)?;
            if head.first() != Some(&b'$') {
                return Err(ReadError::Bad("Bad file format reading the append only file".into()));
            }
            let len: usize = std::str::from_utf8(&head[1..])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ReadError::Bad("Bad file format reading the append only file".into()))?;
            let end = pos.checked_add(len).ok_or(ReadError::Truncated)?;
            if end + 2 > data.len() {
                return Err(ReadError::Truncated);
            }
            if &data[end..end + 2] != b"\r\n" {
                return Err(ReadError::Bad("Bad file format reading the append only file".into()));
            }
            argv.push(Bytes::copy_from_slice(&data[*pos..end]));
            *pos = end + 2;
        }
        return Ok(Some(argv));
    }
}

/// The client AOF commands (and a master's stream, on a replica) run as.
pub(crate) struct Loader<'a> {
    server: &'a Arc<Server>,
    client: ClientState,
    /// Commands of an open MULTI, applied at its EXEC.
    multi: Option<Vec<Vec<Bytes>>>,
    commands: u64,
}

impl<'a> Loader<'a> {
    /// A loader running commands as a client named `name`.
    pub(crate) fn new(server: &'a Arc<Server>, name: &str) -> Loader<'a> {
        Loader {
            server,
            client: ClientState {
                info: Arc::new(ClientInfo::new(0, name.into(), String::new(), -1)),
                db: 0,
                resp: 2,
                authenticated: true,
                acl: crate::acl::ClientAcl::new(server.acl.default_user()),
                close_after_reply: false,
                reply_mode: ReplyMode::On,
                cluster_asking: false,
                cluster_readonly: false,
                ldb: 0,
            },
            multi: None,
            commands: 0,
        }
    }

    /// Inside a MULTI whose EXEC has not arrived yet.
    pub(crate) fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// The database selected (a replica's master stream continues in it).
    pub(crate) fn db(&self) -> usize {
        self.client.db
    }

    pub(crate) fn set_db(&mut self, db: usize) {
        self.client.db = db;
    }

    /// Empties every database and the function libraries without running a
    /// command (a replica's full sync, as Redis's emptyData): nothing is
    /// saved, counted or propagated, where a FLUSHALL would save the empty
    /// dataset over the file the replica is about to load.
    pub(crate) fn empty_dataset(&mut self) {
        let mut guards: Vec<_> = self.server.shards.list.iter().map(|s| s.lock_blocking()).collect();
        let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
        let (db, resp) = (self.client.db, self.client.resp);
        let mut ctx = Ctx::new(self.server, &mut refs, &self.client.info, db, resp, Origin::AofLoad);
        crate::commands::debug::empty_dataset(&mut ctx);
    }

    pub(crate) fn apply(&mut self, argv: Vec<Bytes>) -> Result<(), String> {
        self.apply_in(argv, None)
    }

    /// `apply` with every shard already held by the caller (DEBUG LOADAOF),
    /// or entered for each command when `held` is None.
    fn apply_in(&mut self, argv: Vec<Bytes>, held: Option<&mut [&mut ShardData]>) -> Result<(), String> {
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        match name.as_str() {
            "multi" => {
                self.multi = Some(Vec::new());
                return Ok(());
            }
            "exec" => {
                let Some(queued) = self.multi.take() else {
                    return Err("EXEC without MULTI in the append only file".into());
                };
                // A transaction's shards are entered together for the whole unit.
                if let Some(refs) = held {
                    for argv in queued {
                        self.run(&argv, refs)?;
                    }
                    return Ok(());
                }
                let all: Vec<usize> = (0..self.server.shards.len()).collect();
                let mut guards: Vec<_> = all.iter().map(|&i| self.server.shards.get(i).lock_blocking()).collect();
                let mut refs: Vec<&mut crate::shard::ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
                for argv in queued {
                    self.run(&argv, &mut refs)?;
                }
                return Ok(());
            }
            _ => {}
        }
        if let Some(q) = self.multi.as_mut() {
            q.push(argv);
            return Ok(());
        }
        if let Some(refs) = held {
            return self.run(&argv, refs);
        }
        let all: Vec<usize> = (0..self.server.shards.len()).collect();
        let mut guards: Vec<_> = all.iter().map(|&i| self.server.shards.get(i).lock_blocking()).collect();
        let mut refs: Vec<&mut crate::shard::ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
        self.run(&argv, &mut refs)
    }

    /// Runs one command through dispatch with every shard entered (start-up:
    /// nothing else runs, so holding them all costs nothing).
    fn run(&mut self, argv: &[Bytes], refs: &mut [&mut crate::shard::ShardData]) -> Result<(), String> {
        // As Redis while loading, nothing expires: a key whose TTL passed is
        // still there for the commands after it (RPUSH after a past PEXPIREAT
        // extends the old list, which then reads as expired).
        let ignored = crate::storage::ttls_ignored();
        crate::storage::ignore_ttls_on_this_thread(true);
        let result = self.run_live(argv, refs);
        crate::storage::ignore_ttls_on_this_thread(ignored);
        result
    }

    fn run_live(&mut self, argv: &[Bytes], refs: &mut [&mut crate::shard::ShardData]) -> Result<(), String> {
        let cmd = registry::resolve(argv).map_err(|_| {
            format!("Unknown command '{}' reading the append only file", String::from_utf8_lossy(&argv[0]))
        })?;
        self.commands += 1;
        let server = self.server;
        let (db, resp) = (self.client.db, self.client.resp);
        match cmd.spec.exec {
            Exec::Keyed(_) | Exec::AllShards(_) | Exec::Blocking(_) => {
                let mut tally = Tally::start();
                let mut ctx = Ctx::new(server, refs, &self.client.info, db, resp, Origin::AofLoad);
                dispatch::call(&mut ctx, cmd, argv, &mut tally);
                tally.publish(server, &self.client.info);
            }
            Exec::Routed(route, _) => {
                if let Ok(id) = route(server, argv) {
                    if let Some(pos) = refs.iter().position(|s| s.id == id) {
                        let mut one = [&mut *refs[pos]];
                        let mut tally = Tally::start();
                        let mut ctx = Ctx::new(server, &mut one, &self.client.info, db, resp, Origin::AofLoad);
                        dispatch::call(&mut ctx, cmd, argv, &mut tally);
                        tally.publish(server, &self.client.info);
                    }
                }
            }
            Exec::Conn(_) => {
                let mut ctx = ConnCtx { server, client: &mut self.client };
                dispatch::call_conn(&mut ctx, cmd, argv, Origin::AofLoad);
            }
            Exec::Session(SessionOp::Eval | SessionOp::Fcall) => {
                let home = 0;
                let reply = crate::scripting::run_in_transaction(server, &self.client, home, refs, cmd, argv);
                if let Some(e) = reply.error_text() {
                    let e = String::from_utf8_lossy(e);
                    crate::net::listener::log(server, "warning", &format!("A script in the AOF failed: {e}"));
                }
            }
            Exec::Session(_) | Exec::Container => {}
        }
        Ok(())
    }
}

/// Replays the files the manifest lists. A last file cut short in its final
/// command is truncated there when `aof-load-truncated` is on (as Redis does);
/// any other damage refuses to start.
fn load(server: &Arc<Server>, layout: &Layout, m: &Manifest) -> Result<(), String> {
    load_into(server, layout, m, None)
}

/// Whether the AOF directory has a manifest (DEBUG LOADAOF with
/// `appendonly no` loads what a BGREWRITEAOF wrote).
pub fn manifest_exists(server: &Server) -> bool {
    Layout::from_config(server).manifest_path().is_file()
}

/// DEBUG LOADAOF: the caller holds every shard, whose databases it has
/// emptied; the files the manifest on disk lists are replayed into them.
pub fn reload_held(server: &Arc<Server>, held: &mut [&mut ShardData]) -> Result<(), String> {
    let layout = Layout::from_config(server);
    let text =
        std::fs::read_to_string(layout.manifest_path()).map_err(|e| format!("Can't open the AOF manifest: {e}"))?;
    let m = Manifest::parse(&text)?;
    load_into(server, &layout, &m, Some(held))
}

fn load_into(
    server: &Arc<Server>,
    layout: &Layout,
    m: &Manifest,
    mut held: Option<&mut [&mut ShardData]>,
) -> Result<(), String> {
    let started = Instant::now();
    let mut loader = Loader::new(server, "aof");
    let files: Vec<&FileEntry> = m.base.iter().chain(m.incrs.iter()).collect();
    let truncated_ok = server.config.get("aof-load-truncated").as_deref() != Some("no");
    // Every file the manifest lists must be there (Redis checks their sizes
    // before loading any): a missing one is fatal, never an older dataset.
    let mut total = 0;
    for f in &files {
        match std::fs::metadata(layout.path(&f.name)) {
            Ok(m) => total += m.len(),
            Err(e) => return Err(format!("Unable to obtain the AOF file {} length. stat: {e}", f.name)),
        }
    }
    server.persist.begin_loading(total);
    let progress_every = server.config.get_i64("loading-process-events-interval-bytes").max(1024) as u64;
    let mut done_before = 0u64;
    for (i, f) in files.iter().enumerate() {
        let path = layout.path(&f.name);
        let last = i + 1 == files.len();
        let data = std::fs::read(&path)
            .map_err(|e| format!("Fatal error: can't open the append log file {} for reading: {e}", f.name))?;
        let mut pos = 0usize;
        if data.starts_with(b"REDIS") {
            // An RDB preamble (the base of a multi-part AOF, or the head of
            // an old single-file AOF, whose commands follow it).
            let mut target = match held.as_deref_mut() {
                Some(refs) => super::load::Target::Held(refs),
                None => super::load::Target::Lock(&server.shards),
            };
            let (rest, loaded) = super::load::read_into(server, &data[..], &mut target, true)
                .map_err(|e| format!("Error reading the RDB preamble of the AOF file {}: {e}", f.name))?;
            super::load::note_loaded(server, &loaded);
            pos = data.len() - rest.len();
        }
        let mut good = pos;
        let mut published = 0usize;
        loop {
            match next_command(&data, &mut pos) {
                Ok(None) => break,
                Ok(Some(argv)) => {
                    loader.apply_in(argv, held.as_deref_mut())?;
                    if loader.multi.is_none() {
                        good = pos;
                    }
                    if (pos - published) as u64 >= progress_every {
                        published = pos;
                        server.persist.loaded_bytes(done_before + pos as u64);
                    }
                }
                Err(ReadError::Bad(msg)) => {
                    return Err(format!(
                    "{msg} {}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>",
                    f.name
                ))
                }
                Err(ReadError::Truncated) => {
                    if !last || !truncated_ok {
                        return Err(format!(
                            "Unexpected end of file reading the append only file {}. You can: 1) Make a backup of \
                             your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively \
                             you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
                            f.name
                        ));
                    }
                    let log = |m: &str| crate::net::listener::log(server, "warning", m);
                    log(&format!("!!! Warning: short read while loading the AOF file {}!!!", f.name));
                    log(&format!("!!! Truncating the AOF {} at offset {good} !!!", f.name));
                    truncate(&path, good as u64).map_err(|e| format!("Error truncating the AOF file: {e}"))?;
                    log("AOF loaded anyway because aof-load-truncated is enabled");
                    loader.multi = None;
                    break;
                }
            }
        }
        if loader.multi.is_some() {
            // A transaction with no EXEC at the end of the last file: never
            // acknowledged, so never applied.
            if !last || !truncated_ok {
                return Err(format!("Unexpected end of file reading the append only file {}", f.name));
            }
            crate::net::listener::log(server, "warning", "Revert incomplete MULTI/EXEC transaction in AOF file");
            truncate(&path, good as u64).map_err(|e| format!("Error truncating the AOF file: {e}"))?;
            loader.multi = None;
        }
        done_before += data.len() as u64;
        server.persist.loading_loaded_bytes.store(done_before, Ordering::Relaxed);
    }
    crate::net::listener::log(
        server,
        "notice",
        &format!("DB loaded from append only file: {:.3} seconds", started.elapsed().as_secs_f64()),
    );
    Ok(())
}

fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 1);
        assert_eq!(m.render(), text);
        let quoted = Manifest::parse("file \"my file.aof\" seq 2 type i\n").unwrap();
        assert_eq!(quoted.incrs[0].name, "my file.aof");
        assert!(quoted.render().contains("\"my file.aof\""));
        assert!(Manifest::parse("file x seq\n").is_err());
    }

    #[test]
    fn manifest_names_with_control_bytes_round_trip_as_redis_writes_them() {
        // Redis's test: appendfilename `" file seq \n\n.aof "`.
        let name = " file seq \n\n.aof .2.base.rdb";
        let m = Manifest { base: Some(FileEntry { name: name.into(), seq: 2, kind: 'b' }), incrs: vec![] };
        let text = m.render();
        assert_eq!(text, "file \" file seq \\n\\n.aof .2.base.rdb\" seq 2 type b\n");
        assert_eq!(Manifest::parse(&text).unwrap().base.unwrap().name, name);
        assert_eq!(split_args("'a\\'b' \"\\x41\\t\""), Some(vec!["a'b".to_string(), "A\t".to_string()]));
        assert_eq!(split_args("\"open"), None);
        assert_eq!(split_args("\"a\"b"), None, "a closing quote must end the word");
        // Strictness as Redis's reader: a last line without its newline,
        // a path, a zero sequence.
        assert!(Manifest::parse("file a seq 1 type i").is_err());
        assert!(Manifest::parse("file d/a seq 1 type i\n").unwrap_err().contains("File can't be a path"));
        assert!(Manifest::parse("file a seq 0 type i\n").unwrap_err().contains("Invalid AOF manifest file format"));
        assert!(Manifest::parse("# comment\nFILE a SEQ 1 TYPE i\n").is_ok());
    }

    #[test]
    fn commands_annotations_and_truncation() {
        let data = b"#TS:1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPI";
        let mut pos = 0;
        let first = next_command(data, &mut pos).ok().flatten().unwrap();
        assert_eq!(first, vec![Bytes::from("GET"), Bytes::from("a")]);
        assert!(matches!(next_command(data, &mut pos), Err(ReadError::Truncated)));
        let mut pos = 0;
        assert!(matches!(next_command(b"garbage\r\n", &mut pos), Err(ReadError::Bad(_))));
    }
}
