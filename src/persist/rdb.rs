//! Redis's RDB file format (version 10, as Redis 7.0 writes it), and the
//! DUMP payload (one value, the RDB version and a CRC-64).
//!
//! A file: `REDIS0010`, aux fields (`redis-ver`, `redis-bits`, `ctime`,
//! `used-mem`, optional replication fields, `aof-base`), function libraries,
//! then per non-empty database SELECTDB and RESIZEDB followed by its keys
//! (each optionally preceded by EXPIRETIME_MS, IDLE or FREQ), EOF, and the
//! CRC-64 of everything before (0 when `rdbchecksum` is off). Values are
//! encoded by `storage::codec`.
//!
//! [`RdbWriter`] streams a file to any `Write`, fed one database and one key
//! at a time (a point-in-time snapshot can feed it shard by shard).
//! [`RdbReader`] is an iterator over what a file holds, reading any
//! `BufRead` as it goes, and checks the trailer at the end.

use super::crc64::crc64;
use crate::storage::codec::{self, DecodeError, DecodeOptions, EncodeOptions, Input};
use crate::storage::Value;
use bytes::Bytes;
use std::io::{self, BufRead, Write};

pub const VERSION: u32 = 10;

const OP_FUNCTION2: u8 = 0xF5;
const OP_FUNCTION: u8 = 0xF6;
const OP_MODULE_AUX: u8 = 0xF7;
const OP_IDLE: u8 = 0xF8;
const OP_FREQ: u8 = 0xF9;
const OP_AUX: u8 = 0xFA;
const OP_RESIZEDB: u8 = 0xFB;
const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
const OP_SELECTDB: u8 = 0xFE;
const OP_EOF: u8 = 0xFF;

// ------------------------------------------------------------------ writer

/// Replication fields some files carry (`repl-stream-db`, `repl-id`,
/// `repl-offset`).
#[derive(Clone, Debug)]
pub struct ReplInfo {
    pub stream_db: i64,
    pub id: String,
    pub offset: i64,
}

/// How a file is written.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// `rdbchecksum`: the trailer is the CRC-64, or 0 when off.
    pub checksum: bool,
    /// `rdbcompression` and the list layout parameters.
    pub encode: EncodeOptions,
    /// The file is an append-only file's base (`aof-base` 1).
    pub aof_base: bool,
    /// `used-mem` (bytes in use when the snapshot was taken).
    pub used_memory: u64,
    /// `ctime` in Unix seconds (None: now).
    pub ctime: Option<u64>,
    pub repl: Option<ReplInfo>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            checksum: true,
            encode: EncodeOptions::default(),
            aof_base: false,
            used_memory: 0,
            ctime: None,
            repl: None,
        }
    }
}

/// Usage information saved with a key when the eviction policy keeps it
/// (Redis writes IDLE under an LRU policy, FREQ under an LFU one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    None,
    /// Seconds since the last access.
    Idle(u64),
    /// The LFU counter.
    Freq(u8),
}

/// Streams an RDB file. Call `select_db` before each database's keys,
/// `entry` for each key, and `finish` at the end.
pub struct RdbWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    crc: u64,
    checksum: bool,
    encode: EncodeOptions,
    written: u64,
    /// The database the last SELECTDB named.
    db: Option<usize>,
}

/// Bytes gathered before they are written out (and checksummed).
const FLUSH_AT: usize = 64 * 1024;

impl<W: Write> RdbWriter<W> {
    /// Starts a file: the signature and the aux fields Redis writes.
    pub fn new(out: W, opts: &WriterOptions) -> io::Result<Self> {
        let mut w = RdbWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            crc: 0,
            checksum: opts.checksum,
            encode: opts.encode,
            written: 0,
            db: None,
        };
        w.buf.extend_from_slice(format!("REDIS{VERSION:04}").as_bytes());
        w.aux(b"redis-ver", crate::REDIS_VERSION.as_bytes())?;
        w.aux_int(b"redis-bits", usize::BITS as i64)?;
        let ctime = opts.ctime.unwrap_or_else(|| crate::storage::now_ms() / 1000);
        w.aux_int(b"ctime", ctime.min(i64::MAX as u64) as i64)?;
        w.aux_int(b"used-mem", opts.used_memory.min(i64::MAX as u64) as i64)?;
        if let Some(r) = &opts.repl {
            w.aux_int(b"repl-stream-db", r.stream_db)?;
            w.aux(b"repl-id", r.id.as_bytes())?;
            w.aux_int(b"repl-offset", r.offset)?;
        }
        w.aux_int(b"aof-base", opts.aof_base as i64)?;
        Ok(w)
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.checksum {
            self.crc = crc64(self.crc, &self.buf);
        }
        self.out.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// An aux field (string key, string value).
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.buf.push(OP_AUX);
        codec::put_string(&mut self.buf, key, self.encode.compression);
        codec::put_string(&mut self.buf, value, self.encode.compression);
        self.maybe_flush()
    }

    /// An aux field whose value is an integer (written as its digits).
    pub fn aux_int(&mut self, key: &[u8], value: i64) -> io::Result<()> {
        self.aux(key, value.to_string().as_bytes())
    }

    /// A function library: its code, shebang line included.
    pub fn function(&mut self, code: &[u8]) -> io::Result<()> {
        self.buf.push(OP_FUNCTION2);
        codec::put_string(&mut self.buf, code, self.encode.compression);
        self.maybe_flush()
    }

    /// Starts database `db`, which holds `keys` keys, `expires` of them
    /// with a TTL (a sizing hint for the loader). Redis skips empty ones.
    pub fn select_db(&mut self, db: usize, keys: u64, expires: u64) -> io::Result<()> {
        self.db = Some(db);
        self.buf.push(OP_SELECTDB);
        codec::put_len(&mut self.buf, db as u64);
        self.buf.push(OP_RESIZEDB);
        codec::put_len(&mut self.buf, keys);
        codec::put_len(&mut self.buf, expires);
        self.maybe_flush()
    }

    /// One key: its absolute expiry in Unix ms (if any), its usage
    /// information, its value.
    pub fn entry(&mut self, key: &[u8], value: &Value, expire_ms: Option<u64>, access: Access) -> io::Result<()> {
        self.entry_head(expire_ms, access);
        self.buf.push(codec::type_of(value));
        codec::put_string(&mut self.buf, key, self.encode.compression);
        codec::encode_value(value, &self.encode, &mut self.buf);
        self.maybe_flush()
    }

    /// `entry` for a key of database `db`, which may differ from the last
    /// one's (keys emitted out of order by a snapshot walk): a SELECTDB
    /// (without sizing hint) is written when the database changes. Loaders,
    /// Redis's included, accept a database selected more than once.
    pub fn entry_at(
        &mut self,
        db: usize,
        key: &[u8],
        value: &Value,
        expire_ms: Option<u64>,
        access: Access,
    ) -> io::Result<()> {
        self.switch_db(db);
        self.entry(key, value, expire_ms, access)
    }

    /// A key whose value was encoded beforehand (`codec::type_of` and
    /// `codec::encode_value`, e.g. under the shard's lock, the file written
    /// elsewhere), in database `db`.
    pub fn entry_encoded(
        &mut self,
        db: usize,
        key: &[u8],
        value_type: u8,
        encoded: &[u8],
        expire_ms: Option<u64>,
        access: Access,
    ) -> io::Result<()> {
        self.switch_db(db);
        self.entry_head(expire_ms, access);
        self.buf.push(value_type);
        codec::put_string(&mut self.buf, key, self.encode.compression);
        self.buf.extend_from_slice(encoded);
        self.maybe_flush()
    }

    fn switch_db(&mut self, db: usize) {
        if self.db != Some(db) {
            self.db = Some(db);
            self.buf.push(OP_SELECTDB);
            codec::put_len(&mut self.buf, db as u64);
        }
    }

    /// The opcodes before a key: expiry, usage information.
    fn entry_head(&mut self, expire_ms: Option<u64>, access: Access) {
        if let Some(t) = expire_ms {
            self.buf.push(OP_EXPIRETIME_MS);
            codec::put_ms(&mut self.buf, t);
        }
        match access {
            Access::None => {}
            Access::Idle(secs) => {
                self.buf.push(OP_IDLE);
                codec::put_len(&mut self.buf, secs);
            }
            Access::Freq(f) => {
                self.buf.push(OP_FREQ);
                self.buf.push(f);
            }
        }
    }

    /// Bytes produced so far (written or buffered).
    pub fn bytes(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Ends the file (EOF and trailer) and hands the output back.
    pub fn finish(mut self) -> io::Result<W> {
        self.buf.push(OP_EOF);
        self.flush_buf()?;
        let crc = if self.checksum { self.crc } else { 0 };
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// An RDB file of an empty dataset, with Redis's aux fields; `aof_base`
/// marks it as an append-only file's base.
pub fn empty(aof_base: bool, used_memory: u64) -> Vec<u8> {
    let opts = WriterOptions { aof_base, used_memory, ..Default::default() };
    let w = RdbWriter::new(Vec::new(), &opts).and_then(|w| w.finish());
    // Writing to a Vec cannot fail.
    w.unwrap_or_default()
}

/// Writes `bytes` to `path` durably: a temporary file, fsynced, renamed.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

// ------------------------------------------------------------------ reader

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError(pub String);

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RdbError {}

impl From<DecodeError> for RdbError {
    fn from(e: DecodeError) -> Self {
        RdbError(e.message().to_string())
    }
}

/// How a file is read.
#[derive(Clone, Copy, Debug)]
pub struct ReaderOptions {
    /// `rdbchecksum`: verify the trailer (a trailer of 0 is never checked).
    pub checksum: bool,
    /// Encoding thresholds applied to loaded values.
    pub decode: DecodeOptions,
    /// Databases this server has: a file selecting one beyond is refused.
    pub databases: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions { checksum: true, decode: DecodeOptions::default(), databases: 16 }
    }
}

/// One key read back.
#[derive(Debug)]
pub struct Entry {
    pub db: usize,
    pub key: Bytes,
    pub value: Value,
    /// Absolute expiry in Unix ms as stored: it may be in the past, zero or
    /// negative (long expired); the caller decides what to do with it.
    pub expire_ms: Option<i64>,
    /// Seconds idle when saved (IDLE), under an LRU policy.
    pub idle_secs: Option<u64>,
    /// LFU counter when saved (FREQ), under an LFU policy.
    pub freq: Option<u8>,
}

/// What a file holds, in file order.
#[derive(Debug)]
pub enum Item {
    Aux {
        key: Bytes,
        value: Bytes,
    },
    /// A function library's code (older 7.0 release candidates' form
    /// converted to it).
    Function(Bytes),
    /// A SELECTDB opcode; the entries that follow carry the database too.
    SelectDb(usize),
    /// A RESIZEDB sizing hint for the selected database.
    ResizeDb {
        keys: u64,
        expires: u64,
    },
    Entry(Entry),
}

/// Input from a `BufRead`, checksummed as it is consumed.
struct Stream<R: BufRead> {
    r: R,
    crc: u64,
    checksum: bool,
    pos: u64,
}

impl<R: BufRead> Stream<R> {
    fn read_some(&mut self, want: usize, mut sink: impl FnMut(&[u8])) -> Result<usize, DecodeError> {
        let buf = loop {
            match self.r.fill_buf() {
                Ok(b) => break b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DecodeError::new(format!("Error reading the RDB file: {e}"))),
            }
        };
        if buf.is_empty() {
            return Err(DecodeError::new("Unexpected EOF reading RDB file"));
        }
        let n = buf.len().min(want);
        sink(&buf[..n]);
        if self.checksum {
            self.crc = crc64(self.crc, &buf[..n]);
        }
        self.pos += n as u64;
        self.r.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> Input for Stream<R> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let mut b = [0u8];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), DecodeError> {
        let mut at = 0;
        while at < buf.len() {
            let want = buf.len() - at;
            let n = self.read_some(want, |d| buf[at..at + d.len()].copy_from_slice(d))?;
            at += n;
        }
        Ok(())
    }

    fn take(&mut self, n: u64) -> Result<Vec<u8>, DecodeError> {
        // Grows with what arrives, not with what the length claims.
        let mut v = Vec::with_capacity(n.min(1 << 16) as usize);
        while (v.len() as u64) < n {
            let want = (n - v.len() as u64).min(1 << 20) as usize;
            self.read_some(want, |d| v.extend_from_slice(d))?;
        }
        Ok(v)
    }
}

/// Reads an RDB file item by item. The iterator ends after the EOF opcode
/// and a good trailer; an error ends it too (after yielding the error).
pub struct RdbReader<R: BufRead> {
    inp: Stream<R>,
    version: u32,
    db: usize,
    opts: ReaderOptions,
    done: bool,
    empty_keys_skipped: u64,
    /// The first few of them, for the log (Redis names up to 10).
    empty_keys_named: Vec<Bytes>,
}

impl<R: BufRead> RdbReader<R> {
    /// Checks the signature and version.
    pub fn new(r: R, opts: ReaderOptions) -> Result<Self, RdbError> {
        let mut inp = Stream { r, crc: 0, checksum: opts.checksum, pos: 0 };
        let mut magic = [0u8; 9];
        inp.fill(&mut magic)
            .map_err(|_| RdbError("Short read or OOM loading DB. Unrecoverable error, aborting now.".into()))?;
        if &magic[..5] != b"REDIS" {
            return Err(RdbError("Wrong signature trying to load DB from file".into()));
        }
        // atoi: leading digits, 0 when none.
        let digits: String = magic[5..].iter().take_while(|b| b.is_ascii_digit()).map(|&b| b as char).collect();
        let version: u32 = digits.parse().unwrap_or(0);
        if !(1..=VERSION).contains(&version) {
            return Err(RdbError(format!("Can't handle RDB format version {version}")));
        }
        Ok(RdbReader { inp, version, db: 0, opts, done: false, empty_keys_skipped: 0, empty_keys_named: Vec::new() })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.inp.pos
    }

    /// Keys holding an empty collection, skipped as Redis skips them.
    pub fn empty_keys_skipped(&self) -> u64 {
        self.empty_keys_skipped
    }

    /// The first (up to 10) keys skipped as empty.
    pub fn empty_keys_named(&self) -> &[Bytes] {
        &self.empty_keys_named
    }

    /// The input, positioned right after what was read (after the trailer
    /// once the iterator ended: an AOF's tail may follow).
    pub fn into_inner(self) -> R {
        self.inp.r
    }

    fn next_item(&mut self) -> Result<Option<Item>, RdbError> {
        let mut expire_ms = None;
        let mut idle_secs = None;
        let mut freq = None;
        loop {
            let t = self.inp.byte()?;
            match t {
                OP_EXPIRETIME => {
                    let mut a = [0u8; 4];
                    self.inp.fill(&mut a)?;
                    expire_ms = Some(i32::from_le_bytes(a) as i64 * 1000);
                }
                OP_EXPIRETIME_MS => expire_ms = Some(codec::read_ms(&mut self.inp)? as i64),
                OP_FREQ => freq = Some(self.inp.byte()?),
                OP_IDLE => idle_secs = Some(codec::read_len(&mut self.inp)?),
                OP_EOF => {
                    self.check_trailer()?;
                    return Ok(None);
                }
                OP_SELECTDB => {
                    let db = codec::read_len(&mut self.inp)?;
                    if db >= self.opts.databases as u64 {
                        return Err(RdbError(format!(
                            "FATAL: Data file was created with a Redis server configured to handle more than {} databases. Exiting\n",
                            self.opts.databases
                        )));
                    }
                    self.db = db as usize;
                    return Ok(Some(Item::SelectDb(self.db)));
                }
                OP_RESIZEDB => {
                    let keys = codec::read_len(&mut self.inp)?;
                    let expires = codec::read_len(&mut self.inp)?;
                    return Ok(Some(Item::ResizeDb { keys, expires }));
                }
                OP_AUX => {
                    let key = codec::read_string(&mut self.inp)?;
                    let value = codec::read_string(&mut self.inp)?;
                    return Ok(Some(Item::Aux { key: key.into(), value: value.into() }));
                }
                OP_MODULE_AUX => {
                    return Err(RdbError(
                        "The RDB file contains AUX module data I can't load: no matching module".into(),
                    ))
                }
                OP_FUNCTION => {
                    let code = self.old_function()?;
                    return Ok(Some(Item::Function(code.into())));
                }
                OP_FUNCTION2 => {
                    let code = codec::read_string(&mut self.inp)
                        .map_err(|_| RdbError("Failed loading library, Failed loading library payload".into()))?;
                    return Ok(Some(Item::Function(code.into())));
                }
                t => {
                    let key = codec::read_string(&mut self.inp)?;
                    if !codec::types::is_object_type(t) {
                        return Err(RdbError(format!("Unknown RDB encoding type {t}")));
                    }
                    match codec::decode_value(t, &mut self.inp, &self.opts.decode)? {
                        Some(value) => {
                            return Ok(Some(Item::Entry(Entry {
                                db: self.db,
                                key: key.into(),
                                value,
                                expire_ms,
                                idle_secs,
                                freq,
                            })))
                        }
                        None => {
                            self.empty_keys_skipped += 1;
                            if self.empty_keys_named.len() < 10 {
                                self.empty_keys_named.push(Bytes::copy_from_slice(&key));
                            }
                            expire_ms = None;
                            idle_secs = None;
                            freq = None;
                        }
                    }
                }
            }
        }
    }

    /// The library format of Redis 7.0's release candidates: name, engine,
    /// optional description, code, turned into today's code with shebang.
    fn old_function(&mut self) -> Result<Vec<u8>, RdbError> {
        let fail = |what: &str| RdbError(format!("Failed loading library, Failed loading {what}"));
        let name = codec::read_string(&mut self.inp).map_err(|_| fail("library name"))?;
        let engine = codec::read_string(&mut self.inp).map_err(|_| fail("engine name"))?;
        let has_desc = codec::read_len(&mut self.inp).map_err(|_| fail("library description indicator"))?;
        if has_desc != 0 {
            codec::read_string(&mut self.inp).map_err(|_| fail("library description"))?;
        }
        let blob = codec::read_string(&mut self.inp).map_err(|_| fail("library blob"))?;
        let mut code = b"#!".to_vec();
        code.extend_from_slice(&engine);
        code.extend_from_slice(b" name=");
        code.extend_from_slice(&name);
        code.push(b'\n');
        code.extend_from_slice(&blob);
        Ok(code)
    }

    fn check_trailer(&mut self) -> Result<(), RdbError> {
        if self.version < 5 {
            return Ok(());
        }
        let expected = self.inp.crc;
        let mut t = [0u8; 8];
        self.inp.fill(&mut t)?;
        let stored = u64::from_le_bytes(t);
        if self.opts.checksum && stored != 0 && stored != expected {
            return Err(RdbError(format!(
                "Wrong RDB checksum expected: ({stored:x}) but got ({expected:x}). Aborting now."
            )));
        }
        Ok(())
    }
}

impl<R: BufRead> Iterator for RdbReader<R> {
    type Item = Result<Item, RdbError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_item() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Checks an RDB file that must hold no keys (an append-only file's base
/// written by a server with an empty dataset).
pub fn check_empty(data: &[u8]) -> Result<(), String> {
    let opts = ReaderOptions { databases: usize::MAX, ..Default::default() };
    let reader = RdbReader::new(data, opts).map_err(|e| e.0)?;
    for item in reader {
        match item.map_err(|e| e.0)? {
            Item::Entry(_) | Item::Function(_) => {
                return Err("the RDB file holds data, and loading data from RDB is not supported yet".into())
            }
            _ => {}
        }
    }
    Ok(())
}

// ------------------------------------------------------- from the config

/// Encoding parameters from the live configuration (`rdbcompression`,
/// `list-max-listpack-size`, `list-compress-depth`).
pub fn encode_options(cfg: &crate::config::Config) -> EncodeOptions {
    EncodeOptions {
        compression: cfg.get("rdbcompression").as_deref() != Some("no"),
        list_fill: cfg.get_i64("list-max-listpack-size").clamp(i32::MIN as i64, i32::MAX as i64) as i32,
        list_compress_depth: cfg.get_i64("list-compress-depth").max(0) as usize,
    }
}

/// Load-time encoding thresholds from the live configuration.
pub fn decode_options(cfg: &crate::config::Config) -> DecodeOptions {
    use std::sync::atomic::Ordering::Relaxed;
    let get = |a: &std::sync::atomic::AtomicU64| usize::try_from(a.load(Relaxed)).unwrap_or(usize::MAX);
    DecodeOptions {
        hash_max_listpack_entries: get(&cfg.hash_max_listpack_entries),
        hash_max_listpack_value: get(&cfg.hash_max_listpack_value),
        zset_max_listpack_entries: get(&cfg.zset_max_listpack_entries),
        zset_max_listpack_value: get(&cfg.zset_max_listpack_value),
        set_max_intset_entries: get(&cfg.set_max_intset_entries),
    }
}

// ------------------------------------------------------------ DUMP payload

/// The 10-byte footer: RDB version (2 bytes LE) and the CRC-64 (LE) of
/// everything before it.
fn seal(mut body: Vec<u8>) -> Vec<u8> {
    body.extend_from_slice(&(VERSION as u16).to_le_bytes());
    let crc = crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// The DUMP payload of a value, byte-equal to redis-server 7.0's where its
/// encoding depends only on the content.
pub fn dump_payload(value: &Value, opts: &EncodeOptions) -> Vec<u8> {
    let mut out = vec![codec::type_of(value)];
    codec::encode_value(value, opts, &mut out);
    seal(out)
}

/// A DUMP payload from a value encoded beforehand (its type byte and body).
pub fn seal_payload(value_type: u8, encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() + 11);
    out.push(value_type);
    out.extend_from_slice(encoded);
    seal(out)
}

/// Redis's check of a DUMP payload: long enough for the footer, a version
/// this server reads, a matching CRC-64.
pub fn verify_payload(p: &[u8]) -> bool {
    payload_version_ok(p) && crc64(0, &p[..p.len() - 8]).to_le_bytes() == p[p.len() - 8..]
}

/// A payload's footer names an RDB version this server reads (the check
/// left when DEBUG SET-SKIP-CHECKSUM-VALIDATION skips the CRC).
pub fn payload_version_ok(p: &[u8]) -> bool {
    if p.len() < 10 {
        return false;
    }
    let footer = &p[p.len() - 10..];
    u16::from_le_bytes([footer[0], footer[1]]) as u32 <= VERSION
}

/// The value in a DUMP payload (already verified with `verify_payload`).
pub fn restore_payload(p: &[u8], opts: &DecodeOptions) -> Result<Value, DecodeError> {
    codec::decode_single(p, opts)
}

/// FUNCTION DUMP's payload: each library's code after a FUNCTION2 opcode,
/// then the footer.
pub fn functions_payload<'a>(codes: impl IntoIterator<Item = &'a [u8]>, compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OP_FUNCTION2);
        codec::put_string(&mut out, code, compress);
    }
    seal(out)
}

/// The libraries in a FUNCTION RESTORE payload, or the error text Redis
/// replies with.
pub fn parse_functions_payload(p: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if !verify_payload(p) {
        return Err("DUMP payload version or checksum are wrong".into());
    }
    let body_end = p.len() - 10;
    let mut inp = codec::SliceInput::new(p);
    let mut codes = Vec::new();
    while inp.position() < body_end {
        let t = inp.byte().map_err(|_| "can not read data type".to_string())?;
        match t {
            OP_FUNCTION2 => {
                codes.push(codec::read_string(&mut inp).map_err(|_| "Failed loading library payload".to_string())?)
            }
            OP_FUNCTION => {
                let mut r = RdbReader {
                    inp: Stream { r: &p[inp.position()..], crc: 0, checksum: false, pos: 0 },
                    version: VERSION,
                    db: 0,
                    opts: ReaderOptions::default(),
                    done: false,
                    empty_keys_skipped: 0,
                    empty_keys_named: Vec::new(),
                };
                let code =
                    r.old_function().map_err(|e| e.0.trim_start_matches("Failed loading library, ").to_string())?;
                let used = r.inp.pos as usize;
                codes.push(code);
                let mut skip = vec![0u8; used];
                inp.fill(&mut skip).map_err(|_| "can not read data type".to_string())?;
            }
            _ => return Err("given type is not a function".into()),
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests;
