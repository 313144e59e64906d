//! Values in Redis's RDB encoding (version 10, as Redis 7.0 writes it),
//! both ways: what DUMP payloads and RDB files carry after a value's type
//! byte.
//!
//! Encoding picks the object type and layout redis-server 7.0 would pick for
//! the same content: strings as integers when they spell one (else LZF
//! compressed past 20 bytes when `rdbcompression` is on), lists as a
//! quicklist of listpacks split where Redis's `RPUSH` would split them,
//! intsets, listpack or skiplist zsets and hashes, streams as their nodes'
//! listpacks plus the consumer groups. Where Redis's layout depends only on
//! the content, the bytes are equal to redis-server's.
//!
//! Decoding reads every type and encoding Redis 7.0 reads, including those
//! of older files (ziplists, zipmaps, quicklist v1, streams v1, the textual
//! doubles of the first zset type), and decides the in-memory encoding by
//! Redis's rules for each. Input is untrusted: every length is checked
//! against the input before anything is allocated for it, every packed
//! structure is validated entry by entry (Redis's "deep sanitization",
//! always on here), duplicates and unordered members are refused, and a
//! corrupt payload is an error, never a panic.

pub mod legacy;
pub mod listpack;
pub mod lzf;

use super::stream::{Consumer, Group, Nack, Node, StreamId};
use super::{Hash, List, Set, SmallBytes, Stream, Value, ZSet};
use bytes::Bytes;
use listpack::Item;
use std::collections::HashSet;
use std::fmt;

/// RDB object type bytes.
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;

    /// True for the bytes that start a key/value pair in an RDB file.
    pub fn is_object_type(t: u8) -> bool {
        matches!(t, 0..=7 | 9..=19)
    }
}

/// Why a payload was refused (the text Redis would log for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(String);

impl DecodeError {
    pub fn new(msg: impl Into<String>) -> DecodeError {
        DecodeError(msg.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }

    fn eof() -> DecodeError {
        DecodeError::new("Unexpected EOF reading RDB file")
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

type Result<T> = std::result::Result<T, DecodeError>;

// ---------------------------------------------------------------- options

/// What encoding depends on (the server's configuration).
#[derive(Clone, Copy, Debug)]
pub struct EncodeOptions {
    /// `rdbcompression`: LZF for strings longer than 20 bytes.
    pub compression: bool,
    /// `list-max-listpack-size`: how full a quicklist node gets.
    pub list_fill: i32,
    /// `list-compress-depth`: inner quicklist nodes are kept compressed.
    pub list_compress_depth: usize,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions { compression: true, list_fill: -2, list_compress_depth: 0 }
    }
}

/// What decoding depends on: the thresholds that decide a loaded value's
/// encoding, as Redis applies them on load.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            set_max_intset_entries: 512,
        }
    }
}

/// A listpack may not grow past 1 GiB (Redis's `lpSafeToAdd`).
const LISTPACK_MAX_SAFETY_SIZE: usize = 1 << 30;
/// Quicklist elements this long get a node of their own (a "plain" node).
const PACKED_THRESHOLD: usize = 1 << 30;
/// Quicklist fill levels for negative `list-max-listpack-size` values.
const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
const QUICKLIST_SIZE_SAFETY_LIMIT: usize = 8192;
const QUICKLIST_SIZE_ESTIMATE_OVERHEAD: usize = 8;
const QUICKLIST_MIN_COMPRESS_BYTES: usize = 48;
const QUICKLIST_MIN_COMPRESS_IMPROVE: usize = 8;
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;
const STREAM_ITEM_DELETED: i64 = 1;
const STREAM_ITEM_SAMEFIELDS: i64 = 2;

// ------------------------------------------------------ writing primitives

/// An RDB length: 6, 14, 32 or 64 bits (big-endian past 14).
pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// The compact form of an integer that fits 8, 16 or 32 bits.
fn put_encoded_int(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(v) = i8::try_from(v) {
        out.extend_from_slice(&[0xC0, v as u8]);
    } else if let Ok(v) = i16::try_from(v) {
        out.push(0xC1);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        out.push(0xC2);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        return false;
    }
    true
}

fn put_lzf_blob(out: &mut Vec<u8>, compressed: &[u8], original_len: usize) {
    out.push(0xC3);
    put_len(out, compressed.len() as u64);
    put_len(out, original_len as u64);
    out.extend_from_slice(compressed);
}

/// A string as Redis's `rdbSaveRawString` writes it: an integer form when
/// it spells a small integer, LZF when `compress` and it is longer than 20
/// bytes and shrinks by at least 4, else length and bytes.
pub fn put_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = crate::util::parse_i64(s) {
            if put_encoded_int(out, v) {
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            put_lzf_blob(out, &c, s.len());
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// An integer as Redis writes an integer-valued string: compact when it
/// fits 32 bits, else its decimal digits.
pub fn put_int_string(out: &mut Vec<u8>, v: i64) {
    if !put_encoded_int(out, v) {
        let s = v.to_string();
        put_len(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
}

/// A Unix time in ms, 8 bytes little-endian.
pub fn put_ms(out: &mut Vec<u8>, t: u64) {
    out.extend_from_slice(&t.to_le_bytes());
}

// ------------------------------------------------------ reading primitives

/// Where decoding reads from: a DUMP payload in memory, or an RDB file
/// read as it goes.
pub trait Input {
    fn byte(&mut self) -> Result<u8>;
    /// Exactly `buf.len()` bytes.
    fn fill(&mut self, buf: &mut [u8]) -> Result<()>;
    /// Exactly `n` bytes. Memory grows with what actually arrives, so a
    /// lying length costs no more than the input it comes with.
    fn take(&mut self, n: u64) -> Result<Vec<u8>>;
}

/// Input from a byte slice.
pub struct SliceInput<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> SliceInput<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        SliceInput { data, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
}

impl Input for SliceInput<'_> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self.data.get(self.pos).ok_or_else(DecodeError::eof)?;
        self.pos += 1;
        Ok(b)
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        let end = self.pos.checked_add(buf.len()).filter(|&e| e <= self.data.len()).ok_or_else(DecodeError::eof)?;
        buf.copy_from_slice(&self.data[self.pos..end]);
        self.pos = end;
        Ok(())
    }

    fn take(&mut self, n: u64) -> Result<Vec<u8>> {
        let n = usize::try_from(n).map_err(|_| DecodeError::eof())?;
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(DecodeError::eof)?;
        let v = self.data[self.pos..end].to_vec();
        self.pos = end;
        Ok(v)
    }
}

/// A length, or (true) the special string encoding it announces.
pub fn read_len_or_enc(inp: &mut impl Input) -> Result<(u64, bool)> {
    let b = inp.byte()?;
    Ok(match b >> 6 {
        0 => ((b & 0x3F) as u64, false),
        1 => ((((b & 0x3F) as u64) << 8) | inp.byte()? as u64, false),
        3 => ((b & 0x3F) as u64, true),
        _ => match b {
            0x80 => {
                let mut a = [0u8; 4];
                inp.fill(&mut a)?;
                (u32::from_be_bytes(a) as u64, false)
            }
            0x81 => {
                let mut a = [0u8; 8];
                inp.fill(&mut a)?;
                (u64::from_be_bytes(a), false)
            }
            _ => return Err(DecodeError::new(format!("Unknown length encoding {} in rdbLoadLen()", b >> 6))),
        },
    })
}

/// A plain length (a special encoding here is corruption).
pub fn read_len(inp: &mut impl Input) -> Result<u64> {
    match read_len_or_enc(inp)? {
        (n, false) => Ok(n),
        (_, true) => Err(DecodeError::new("Unexpected encoded length")),
    }
}

/// A string in any of its forms: plain, integer, or LZF compressed.
pub fn read_string(inp: &mut impl Input) -> Result<Vec<u8>> {
    let (n, encoded) = read_len_or_enc(inp)?;
    if !encoded {
        return inp.take(n);
    }
    match n {
        0 => Ok((inp.byte()? as i8).to_string().into_bytes()),
        1 => {
            let mut a = [0u8; 2];
            inp.fill(&mut a)?;
            Ok(i16::from_le_bytes(a).to_string().into_bytes())
        }
        2 => {
            let mut a = [0u8; 4];
            inp.fill(&mut a)?;
            Ok(i32::from_le_bytes(a).to_string().into_bytes())
        }
        3 => {
            let clen = read_len(inp)?;
            let len = read_len(inp)?;
            let compressed = inp.take(clen)?;
            if len == 0 {
                // Redis's decompressor reports 0 bytes for any input here,
                // which is the expected length: an empty string.
                return Ok(Vec::new());
            }
            let bound = (compressed.len() as u64).saturating_mul(lzf::MAX_EXPANSION as u64);
            if len > bound {
                return Err(DecodeError::new("Invalid LZF compressed string"));
            }
            lzf::decompress(&compressed, len as usize).ok_or_else(|| DecodeError::new("Invalid LZF compressed string"))
        }
        k => Err(DecodeError::new(format!("Unknown RDB string encoding type {k}"))),
    }
}

/// A Unix time in ms (8 bytes little-endian).
pub fn read_ms(inp: &mut impl Input) -> Result<u64> {
    let mut a = [0u8; 8];
    inp.fill(&mut a)?;
    Ok(u64::from_le_bytes(a))
}

/// A double as the first zset type stores it: a length byte (253 NaN,
/// 254 +inf, 255 -inf) and its decimal text.
fn read_text_double(inp: &mut impl Input) -> Result<f64> {
    let len = inp.byte()?;
    match len {
        255 => Ok(f64::NEG_INFINITY),
        254 => Ok(f64::INFINITY),
        253 => Ok(f64::NAN),
        n => {
            let text = inp.take(n as u64)?;
            parse_c_double(&text).ok_or_else(|| DecodeError::new("Bad double value"))
        }
    }
}

/// The longest leading number of `text`, as C's `%lg` reads one.
fn parse_c_double(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?.trim_start();
    (1..=s.len()).rev().filter(|&i| s.is_char_boundary(i)).find_map(|i| {
        let t = &s[..i];
        if t.contains(['x', 'X', '_']) {
            return None;
        }
        t.parse::<f64>().ok()
    })
}

fn read_binary_double(inp: &mut impl Input) -> Result<f64> {
    let mut a = [0u8; 8];
    inp.fill(&mut a)?;
    Ok(f64::from_le_bytes(a))
}

// ------------------------------------------------------------------ encode

/// The RDB type byte `encode_value` writes `v` as.
pub fn type_of(v: &Value) -> u8 {
    match v {
        Value::Str(_) => types::STRING,
        Value::List(_) => types::LIST_QUICKLIST_2,
        Value::Set(s) => match **s {
            Set::Ints(_) => types::SET_INTSET,
            Set::Table(_) => types::SET,
        },
        Value::ZSet(z) => match **z {
            ZSet::Packed(_) => types::ZSET_LISTPACK,
            ZSet::Skip(_) => types::ZSET_2,
        },
        Value::Hash(h) => match **h {
            Hash::Packed(_) => types::HASH_LISTPACK,
            Hash::Table(_) => types::HASH,
        },
        Value::Stream(_) => types::STREAM_LISTPACKS_2,
    }
}

/// Appends the encoding of `v` (without its type byte: see `type_of`).
pub fn encode_value(v: &Value, opts: &EncodeOptions, out: &mut Vec<u8>) {
    let c = opts.compression;
    match v {
        Value::Str(s) => put_string(out, s, c),
        Value::List(l) => encode_list(l, opts, out),
        Value::Set(s) => match &**s {
            Set::Ints(v) => put_string(out, &legacy::write_intset(v), c),
            Set::Table(_) => {
                put_len(out, s.len() as u64);
                s.for_each(|m| put_string(out, m, c));
            }
        },
        Value::ZSet(z) => match &**z {
            ZSet::Packed(_) => {
                let mut w = listpack::Writer::new();
                z.for_range(0, z.len(), false, |m, score| {
                    w.push(m);
                    match double_to_i64(score) {
                        Some(i) => w.push_int(i),
                        None => w.push(crate::protocol::format_double(score).as_bytes()),
                    }
                });
                put_string(out, &w.finish(), c);
            }
            ZSet::Skip(_) => {
                // From the greatest element down, as Redis writes a skiplist.
                put_len(out, z.len() as u64);
                z.for_range(0, z.len(), true, |m, score| {
                    put_string(out, m, c);
                    out.extend_from_slice(&score.to_le_bytes());
                });
            }
        },
        Value::Hash(h) => match &**h {
            Hash::Packed(_) => {
                let mut w = listpack::Writer::new();
                for (f, v) in h.iter() {
                    w.push(f);
                    w.push(v);
                }
                put_string(out, &w.finish(), c);
            }
            Hash::Table(_) => {
                put_len(out, h.len() as u64);
                for (f, v) in h.iter() {
                    put_string(out, f, c);
                    put_string(out, v, c);
                }
            }
        },
        Value::Stream(s) => encode_stream(s, c, out),
    }
}

/// Redis's `double2ll`: the integer a double is exactly, within ±2^62.
fn double_to_i64(d: f64) -> Option<i64> {
    let lim = (i64::MAX / 2) as f64;
    if !(-lim..=lim).contains(&d) {
        return None;
    }
    let i = d as i64;
    (i as f64 == d).then_some(i)
}

/// One quicklist node being built.
enum QlNode {
    Packed(listpack::Writer),
    Plain(Vec<u8>),
}

/// Whether Redis's quicklist adds an element of `sz` bytes to a node of
/// `node_sz` bytes and `count` elements, given the fill setting.
fn node_accepts(node_sz: usize, count: usize, fill: i32, sz: usize) -> bool {
    let new_sz = node_sz + sz + QUICKLIST_SIZE_ESTIMATE_OVERHEAD;
    if fill < 0 {
        let level = (-(fill as i64) - 1) as usize;
        if OPTIMIZATION_LEVEL.get(level).is_some_and(|&max| new_sz <= max) {
            return true;
        }
    }
    new_sz <= QUICKLIST_SIZE_SAFETY_LIMIT && fill >= 0 && count < fill as usize
}

/// A list as the quicklist Redis builds by pushing its elements at the tail.
fn encode_list(l: &List, opts: &EncodeOptions, out: &mut Vec<u8>) {
    let fill = opts.list_fill.clamp(-5, (1 << 15) - 1);
    let mut nodes: Vec<QlNode> = Vec::new();
    for e in l.iter() {
        if e.len() >= PACKED_THRESHOLD {
            nodes.push(QlNode::Plain(e.to_vec()));
            continue;
        }
        match nodes.last_mut() {
            Some(QlNode::Packed(w)) if node_accepts(w.bytes(), w.count(), fill, e.len()) => w.push(e),
            _ => {
                let mut w = listpack::Writer::new();
                w.push(e);
                nodes.push(QlNode::Packed(w));
            }
        }
    }
    let n = nodes.len();
    let depth = opts.list_compress_depth;
    put_len(out, n as u64);
    for (i, node) in nodes.into_iter().enumerate() {
        let (container, data) = match node {
            QlNode::Packed(w) => (CONTAINER_PACKED, w.finish()),
            QlNode::Plain(d) => (CONTAINER_PLAIN, d),
        };
        put_len(out, container);
        // Inner nodes (past `depth` from both ends) live compressed when
        // that saves enough, and are written as they live.
        let inner = depth > 0 && n > 2 * depth && i >= depth && i < n - depth;
        if inner && data.len() >= QUICKLIST_MIN_COMPRESS_BYTES {
            if let Some(c) = lzf::compress(&data, data.len()) {
                if c.len() + QUICKLIST_MIN_COMPRESS_IMPROVE < data.len() {
                    put_lzf_blob(out, &c, data.len());
                    continue;
                }
            }
        }
        put_string(out, &data, opts.compression);
    }
}

/// A stream ID as a radix tree key and PEL entry: 128 bits big-endian.
fn raw_id(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

/// One stream node as the listpack Redis keeps: the master entry (live
/// count, deleted count, field names, 0), then each entry (flags, ID deltas,
/// the fields unless they are the master's, the values, the entry's size).
fn stream_node_listpack(master: StreamId, node: &Node) -> Vec<u8> {
    let mut w = listpack::Writer::new();
    w.push_int(node.live as i64);
    w.push_int(node.count as i64 - node.live as i64);
    let names = node.master_fields();
    w.push_int(names.len() as i64);
    for n in &names {
        w.push(n);
    }
    w.push_int(0);
    for e in node.entries(master) {
        let same = node.same_fields_at(e.pos);
        let fields = node.fields(master, e.pos);
        let nf = (fields.len() / 2) as i64;
        let flags = if e.deleted { STREAM_ITEM_DELETED } else { 0 } | if same { STREAM_ITEM_SAMEFIELDS } else { 0 };
        w.push_int(flags);
        w.push_int(e.id.ms.wrapping_sub(master.ms) as i64);
        w.push_int(e.id.seq.wrapping_sub(master.seq) as i64);
        if same {
            for v in fields.iter().skip(1).step_by(2) {
                w.push(v);
            }
        } else {
            w.push_int(nf);
            for s in &fields {
                w.push(s);
            }
        }
        w.push_int(if same { nf + 3 } else { 2 * nf + 4 });
    }
    w.finish()
}

fn encode_stream(s: &Stream, c: bool, out: &mut Vec<u8>) {
    put_len(out, s.node_count() as u64);
    for (master, node) in s.nodes() {
        put_string(out, &raw_id(master), c);
        put_string(out, &stream_node_listpack(master, node), c);
    }
    put_len(out, s.len());
    for id in [s.last_id, s.first_id, s.max_deleted_id] {
        put_len(out, id.ms);
        put_len(out, id.seq);
    }
    put_len(out, s.entries_added);
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_string(out, name, c);
        put_len(out, g.last_id.ms);
        put_len(out, g.last_id.seq);
        // An unknown read counter is Redis's -1.
        put_len(out, g.entries_read.unwrap_or(u64::MAX));
        put_len(out, g.pel.len() as u64);
        for (id, nack) in &g.pel {
            out.extend_from_slice(&raw_id(*id));
            put_ms(out, nack.delivery_time);
            put_len(out, nack.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (cname, consumer) in &g.consumers {
            put_string(out, cname, c);
            put_ms(out, consumer.seen_time);
            put_len(out, consumer.pel.len() as u64);
            for id in &consumer.pel {
                out.extend_from_slice(&raw_id(*id));
            }
        }
    }
}

// ------------------------------------------------------------------ decode

fn corrupt(msg: &str) -> DecodeError {
    DecodeError::new(msg)
}

/// Reads a count of elements (each at least one byte of input).
fn read_count(inp: &mut impl Input) -> Result<u64> {
    read_len(inp)
}

/// A capacity hint for `n` elements that cannot exceed what the input holds.
fn cap(n: u64) -> usize {
    n.min(1024) as usize
}

/// Decodes a value of RDB type `t`. `Ok(None)` is an empty collection,
/// which Redis skips when loading a file and refuses in RESTORE.
pub fn decode_value(t: u8, inp: &mut impl Input, opts: &DecodeOptions) -> Result<Option<Value>> {
    use types::*;
    let v = match t {
        STRING => Value::Str(SmallBytes::from_vec(read_string(inp)?)),
        LIST => {
            let n = read_count(inp)?;
            let mut l = List::new();
            for _ in 0..n {
                l.push_back(&read_string(inp)?);
            }
            if l.is_empty() {
                return Ok(None);
            }
            Value::List(Box::new(l))
        }
        LIST_QUICKLIST | LIST_QUICKLIST_2 => {
            let nodes = read_count(inp)?;
            let mut l = List::new();
            for _ in 0..nodes {
                let container = if t == LIST_QUICKLIST_2 { read_len(inp)? } else { CONTAINER_PACKED };
                if container != CONTAINER_PACKED && container != CONTAINER_PLAIN {
                    return Err(corrupt("Quicklist integrity check failed."));
                }
                let data = read_string(inp)?;
                if data.is_empty() {
                    return Err(corrupt("Quicklist integrity check failed."));
                }
                if container == CONTAINER_PLAIN {
                    l.push_back(&data);
                    continue;
                }
                let items = if t == LIST_QUICKLIST_2 { listpack::parse(&data)? } else { legacy::parse_ziplist(&data)? };
                for it in items {
                    match it {
                        Item::Str(s) => l.push_back(s),
                        Item::Int(v) => l.push_back(v.to_string().as_bytes()),
                    }
                }
            }
            if l.is_empty() {
                return Ok(None);
            }
            Value::List(Box::new(l))
        }
        LIST_ZIPLIST => {
            let data = read_string(inp)?;
            let items = legacy::parse_ziplist(&data)?;
            if items.is_empty() {
                return Ok(None);
            }
            let mut l = List::new();
            for it in items {
                l.push_back(&it.to_vec());
            }
            Value::List(Box::new(l))
        }
        SET => {
            let n = read_count(inp)?;
            let mut members = Vec::with_capacity(cap(n));
            for _ in 0..n {
                members.push(read_string(inp)?);
            }
            match build_set(members, opts)? {
                Some(s) => Value::Set(Box::new(s)),
                None => return Ok(None),
            }
        }
        SET_INTSET => {
            let data = read_string(inp)?;
            let ints = legacy::parse_intset(&data)?;
            let set = if ints.len() > opts.set_max_intset_entries {
                let mut s = Set::Table(Default::default());
                for v in ints {
                    s.insert(v.to_string().as_bytes(), 0);
                }
                s
            } else {
                Set::Ints(ints)
            };
            Value::Set(Box::new(set))
        }
        ZSET | ZSET_2 => {
            let n = read_count(inp)?;
            let mut items = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let m = read_string(inp)?;
                let score = if t == ZSET_2 { read_binary_double(inp)? } else { read_text_double(inp)? };
                if score.is_nan() {
                    return Err(corrupt("Zset with NAN score detected"));
                }
                items.push((m, score));
            }
            if items.is_empty() {
                return Ok(None);
            }
            let max_len = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
            let total: usize = items.iter().map(|(m, _)| m.len()).sum();
            sort_members(&mut items);
            if has_duplicates(items.iter().map(|(m, _)| &m[..])) {
                return Err(corrupt("Duplicate zset fields detected"));
            }
            let packed = items.len() <= opts.zset_max_listpack_entries
                && max_len <= opts.zset_max_listpack_value
                && total <= LISTPACK_MAX_SAFETY_SIZE;
            Value::ZSet(Box::new(ZSet::from_sorted_in(items.iter().map(|(m, s)| (&m[..], *s)), packed)))
        }
        ZSET_ZIPLIST | ZSET_LISTPACK => {
            let data = read_string(inp)?;
            let items = if t == ZSET_LISTPACK { listpack::parse(&data)? } else { legacy::parse_ziplist(&data)? };
            let what = if t == ZSET_LISTPACK {
                "Zset listpack integrity check failed."
            } else {
                "Zset ziplist integrity check failed."
            };
            if items.len() % 2 != 0 {
                return Err(corrupt(what));
            }
            let mut pairs = Vec::with_capacity(items.len() / 2);
            for p in items.chunks_exact(2) {
                let score = match p[1] {
                    Item::Int(v) => v as f64,
                    Item::Str(s) => crate::util::parse_f64(s).ok_or_else(|| corrupt(what))?,
                };
                pairs.push((p[0].to_vec(), score));
            }
            if has_duplicates(pairs.iter().map(|(m, _)| &m[..])) {
                return Err(corrupt(what));
            }
            if pairs.windows(2).any(|w| !crate::storage::zset::before(w[0].1, &w[0].0, w[1].1, &w[1].0)) {
                return Err(corrupt(what));
            }
            if pairs.is_empty() {
                return Ok(None);
            }
            let packed = pairs.len() <= opts.zset_max_listpack_entries;
            Value::ZSet(Box::new(ZSet::from_sorted_in(pairs.iter().map(|(m, s)| (&m[..], *s)), packed)))
        }
        HASH => {
            let n = read_count(inp)?;
            let mut pairs = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let f = read_string(inp)?;
                let v = read_string(inp)?;
                pairs.push((f, v));
            }
            if pairs.is_empty() {
                return Ok(None);
            }
            if has_duplicates(pairs.iter().map(|(f, _)| &f[..])) {
                return Err(corrupt("Duplicate hash fields detected"));
            }
            let max = opts.hash_max_listpack_value;
            let total: usize = pairs.iter().map(|(f, v)| f.len() + v.len()).sum();
            let packed = pairs.len() <= opts.hash_max_listpack_entries
                && pairs.iter().all(|(f, v)| f.len() <= max && v.len() <= max)
                && total <= LISTPACK_MAX_SAFETY_SIZE;
            Value::Hash(Box::new(build_hash(pairs.iter().map(|(f, v)| (&f[..], &v[..])), packed)))
        }
        HASH_ZIPMAP => {
            let data = read_string(inp)?;
            let pairs = legacy::parse_zipmap(&data)?;
            if has_duplicates(pairs.iter().map(|(f, _)| *f)) {
                return Err(corrupt("Hash zipmap with dup elements"));
            }
            let max_len = pairs.iter().map(|(f, v)| f.len().max(v.len())).max().unwrap_or(0);
            let packed = pairs.len() <= opts.hash_max_listpack_entries && max_len <= opts.hash_max_listpack_value;
            Value::Hash(Box::new(build_hash(pairs.iter().copied(), packed)))
        }
        HASH_ZIPLIST | HASH_LISTPACK => {
            let data = read_string(inp)?;
            let items = if t == HASH_LISTPACK { listpack::parse(&data)? } else { legacy::parse_ziplist(&data)? };
            let what = if t == HASH_LISTPACK {
                "Hash listpack integrity check failed."
            } else {
                "Hash ziplist integrity check failed."
            };
            if items.len() % 2 != 0 {
                return Err(corrupt(what));
            }
            let pairs: Vec<(Vec<u8>, Vec<u8>)> =
                items.chunks_exact(2).map(|p| (p[0].to_vec(), p[1].to_vec())).collect();
            if has_duplicates(pairs.iter().map(|(f, _)| &f[..])) {
                return Err(corrupt(what));
            }
            if pairs.is_empty() {
                return Ok(None);
            }
            let packed = pairs.len() <= opts.hash_max_listpack_entries;
            Value::Hash(Box::new(build_hash(pairs.iter().map(|(f, v)| (&f[..], &v[..])), packed)))
        }
        STREAM_LISTPACKS | STREAM_LISTPACKS_2 => Value::Stream(Box::new(decode_stream(t == STREAM_LISTPACKS_2, inp)?)),
        MODULE | MODULE_2 => return Err(corrupt("The RDB file contains module data I can't load")),
        other => return Err(DecodeError::new(format!("Unknown RDB encoding type {other}"))),
    };
    Ok(Some(v))
}

fn has_duplicates<'a>(items: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut seen = HashSet::new();
    for i in items {
        if !seen.insert(i) {
            return true;
        }
    }
    false
}

fn sort_members(items: &mut [(Vec<u8>, f64)]) {
    items.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
}

fn build_hash<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>, packed: bool) -> Hash {
    if packed {
        return Hash::packed_from(pairs);
    }
    let mut h = Hash::new();
    // Limits of zero: the first pair already makes it a table.
    let table = super::hash::Limits { max_entries: 0, max_value: 0 };
    for (f, v) in pairs {
        h.set(f, v, table);
    }
    h
}

/// A set read member by member (the plain SET type): an intset when small
/// and every member is an integer, as Redis loads it.
fn build_set(members: Vec<Vec<u8>>, opts: &DecodeOptions) -> Result<Option<Set>> {
    if members.is_empty() {
        return Ok(None);
    }
    let dup = || corrupt("Duplicate set members detected");
    if members.len() <= opts.set_max_intset_entries {
        let ints: Option<Vec<i64>> = members.iter().map(|m| crate::util::parse_i64(m)).collect();
        if let Some(mut ints) = ints {
            ints.sort_unstable();
            if ints.windows(2).any(|w| w[0] == w[1]) {
                return Err(dup());
            }
            return Ok(Some(Set::Ints(ints)));
        }
    }
    let mut s = Set::Table(Default::default());
    for m in &members {
        if !s.insert(m, 0) {
            return Err(dup());
        }
    }
    Ok(Some(s))
}

fn read_raw_id(inp: &mut impl Input) -> Result<StreamId> {
    let mut a = [0u8; 16];
    inp.fill(&mut a)?;
    let (ms, seq) = a.split_at(8);
    Ok(StreamId::new(
        u64::from_be_bytes(ms.try_into().unwrap_or_default()),
        u64::from_be_bytes(seq.try_into().unwrap_or_default()),
    ))
}

fn read_id(inp: &mut impl Input) -> Result<StreamId> {
    let ms = read_len(inp)?;
    let seq = read_len(inp)?;
    Ok(StreamId::new(ms, seq))
}

/// Reads one stream node listpack into `stream`, checking it as Redis's
/// stream listpack validation does, and that IDs only grow (`prev`: the
/// last ID seen in earlier nodes).
/// Entries one in-memory node holds at most (its counters are 16 bits): a
/// listpack with more (Redis allows it with `stream-node-max-entries 0`)
/// is split, each part under its first entry's ID.
const NODE_SPLIT: u16 = 60_000;

fn decode_stream_node(master: StreamId, lp: &[u8], prev: &mut Option<StreamId>) -> Result<Vec<(StreamId, Node)>> {
    let bad = || corrupt("Stream listpack integrity check failed.");
    let items = listpack::parse(lp).map_err(|_| bad())?;
    if items.is_empty() {
        return Err(corrupt("Empty listpack inside stream"));
    }
    let mut it = items.into_iter();
    let int = |it: &mut std::vec::IntoIter<Item>| -> Result<i64> { it.next().and_then(|i| i.as_int()).ok_or_else(bad) };
    let count = int(&mut it)?;
    let deleted = int(&mut it)?;
    let nmaster = int(&mut it)?;
    if count < 0 || deleted < 0 || nmaster < 0 {
        return Err(bad());
    }
    let mut names = Vec::with_capacity(cap(nmaster as u64));
    for _ in 0..nmaster {
        names.push(it.next().ok_or_else(bad)?.to_vec());
    }
    if int(&mut it)? != 0 {
        return Err(bad());
    }
    let total = count.checked_add(deleted).ok_or_else(bad)?;
    if total == 0 {
        return Err(corrupt("Empty listpack inside stream"));
    }
    if prev.is_some_and(|p| master <= p) {
        return Err(corrupt("Stream node IDs out of order"));
    }
    let name_refs: Vec<&[u8]> = names.iter().map(|n| &n[..]).collect();
    let mut parts: Vec<(StreamId, Node)> = Vec::new();
    let mut node = Node::with_master_fields(&name_refs);
    let mut node_master = master;
    let mut live = 0i64;
    for _ in 0..total {
        let flags = int(&mut it)?;
        let ms_diff = int(&mut it)?;
        let seq_diff = int(&mut it)?;
        let same = flags & STREAM_ITEM_SAMEFIELDS != 0;
        let mut fields: Vec<Bytes> = Vec::new();
        let nf = if same {
            for name in &names {
                fields.push(Bytes::copy_from_slice(name));
                fields.push(Bytes::from(it.next().ok_or_else(bad)?.to_vec()));
            }
            nmaster
        } else {
            let nf = int(&mut it)?;
            if nf < 0 {
                return Err(bad());
            }
            for _ in 0..nf.checked_mul(2).ok_or_else(bad)? {
                fields.push(Bytes::from(it.next().ok_or_else(bad)?.to_vec()));
            }
            nf
        };
        let expect = if same { nf + 3 } else { 2 * nf + 4 };
        if int(&mut it)? != expect {
            return Err(bad());
        }
        let id = StreamId::new(master.ms.wrapping_add(ms_diff as u64), master.seq.wrapping_add(seq_diff as u64));
        if id < master || prev.is_some_and(|p| id <= p) {
            return Err(corrupt("Stream entry IDs out of order"));
        }
        *prev = Some(id);
        if node.count >= NODE_SPLIT {
            let full = std::mem::replace(&mut node, Node::with_master_fields(&name_refs));
            live += full.live as i64;
            parts.push((node_master, full));
            node_master = id;
        }
        node.push_loaded(node_master, id, &fields, flags & STREAM_ITEM_DELETED != 0);
    }
    live += node.live as i64;
    parts.push((node_master, node));
    if it.next().is_some() || live != count {
        return Err(bad());
    }
    Ok(parts)
}

fn decode_stream(v2: bool, inp: &mut impl Input) -> Result<Stream> {
    let mut s = Stream::new();
    let nodes = read_count(inp)?;
    let mut prev = None;
    for _ in 0..nodes {
        let key = read_string(inp)?;
        if key.len() != 16 {
            return Err(corrupt("Stream node key entry is not the size of a stream ID"));
        }
        let master = read_raw_id(&mut SliceInput::new(&key))?;
        let lp = read_string(inp)?;
        for (m, node) in decode_stream_node(master, &lp, &mut prev)? {
            s.push_node(m, node);
        }
    }
    let length = read_len(inp)?;
    if length != s.len() {
        return Err(corrupt("Stream length inconsistent with its entries"));
    }
    s.last_id = read_id(inp)?;
    if prev.is_some_and(|p| p > s.last_id) {
        return Err(corrupt("Stream last ID below its entries"));
    }
    if v2 {
        s.first_id = read_id(inp)?;
        s.max_deleted_id = read_id(inp)?;
        s.entries_added = read_len(inp)?;
    } else {
        s.max_deleted_id = StreamId::MIN;
        s.entries_added = s.len();
        s.first_id = s.edge_id(false).unwrap_or(StreamId::MIN);
    }
    let groups = read_count(inp)?;
    for _ in 0..groups {
        let name = Bytes::from(read_string(inp)?);
        let last_id = read_id(inp)?;
        let entries_read = if v2 {
            match read_len(inp)? {
                u64::MAX => None,
                n => Some(n),
            }
        } else {
            estimate_entries_read(&s, last_id)
        };
        let mut g = Group::new(last_id, entries_read);
        let pel = read_count(inp)?;
        for _ in 0..pel {
            let id = read_raw_id(inp)?;
            let delivery_time = read_ms(inp)?;
            let delivery_count = read_len(inp)?;
            let nack = Nack { delivery_time, delivery_count, consumer: Bytes::new() };
            if g.pel.insert(id, nack).is_some() {
                return Err(corrupt("Duplicated global PEL entry loading stream consumer group"));
            }
        }
        let mut owned = 0u64;
        let consumers = read_count(inp)?;
        for _ in 0..consumers {
            let cname = Bytes::from(read_string(inp)?);
            let seen_time = read_ms(inp)?;
            let mut c = Consumer { seen_time, pel: Default::default() };
            let n = read_count(inp)?;
            for _ in 0..n {
                let id = read_raw_id(inp)?;
                let nack = g.pel.get_mut(&id).ok_or_else(|| corrupt("Consumer entry not found in group global PEL"))?;
                if !nack.consumer.is_empty() || !c.pel.insert(id) {
                    return Err(corrupt("Duplicated consumer PEL entry loading a stream consumer group"));
                }
                nack.consumer = cname.clone();
                owned += 1;
            }
            if g.consumers.insert(cname, c).is_some() {
                return Err(corrupt("Duplicate stream consumer detected."));
            }
        }
        if owned != g.pel.len() as u64 {
            return Err(corrupt("Stream CG PEL entry without consumer"));
        }
        if s.groups.insert(name, g).is_some() {
            return Err(corrupt("Duplicated consumer group name"));
        }
    }
    Ok(s)
}

/// The read counter of a group created at `id` (Redis's estimate for
/// groups loaded from streams of the first stream type).
fn estimate_entries_read(s: &Stream, id: StreamId) -> Option<u64> {
    if s.entries_added == 0 {
        return Some(0);
    }
    if s.is_empty() && id <= s.last_id {
        return Some(s.entries_added);
    }
    if id == s.last_id {
        return Some(s.entries_added);
    }
    if id > s.last_id {
        return None;
    }
    if s.max_deleted_id.is_zero() || s.max_deleted_id < s.first_id {
        if id < s.first_id {
            return Some(s.entries_added - s.len());
        }
        if id == s.first_id {
            return Some(s.entries_added - s.len() + 1);
        }
    }
    None
}

/// The value in a DUMP-style payload: a type byte, then the value. What
/// follows the value is not looked at (Redis reads RESTORE's payload,
/// footer included, the same way).
pub fn decode_single(payload: &[u8], opts: &DecodeOptions) -> Result<Value> {
    let mut inp = SliceInput::new(payload);
    let t = inp.byte()?;
    if !types::is_object_type(t) {
        return Err(DecodeError::new(format!("Unknown RDB encoding type {t}")));
    }
    let v = decode_value(t, &mut inp, opts)?.ok_or_else(|| corrupt("Empty keys are not allowed"))?;
    Ok(v)
}

#[cfg(test)]
mod tests;
