//! The `cjson` library with the behaviour of the lua-cjson 2.1.0 Redis
//! ships: its number format (`%.14g`), its array-or-object rules, its
//! escaping (`/` becomes `\/`), its configuration functions and its error
//! texts. Both directions are iterative, so no input can exhaust the native
//! stack; nesting limits and Lua's C stack limit (LUAI_MAXCSTACK) are
//! applied where lua-cjson applies them, so errors come at the same depth.

use super::arg::exact;
use super::arg::{number, Args};
use crate::scripting::api::{lua_error, type_name};
use mlua::{Lua, MultiValue, Table, Value};
use parking_lot::Mutex;
use std::sync::Arc;

/// LUAI_MAXCSTACK of Lua 5.1: values a C function may hold on the stack.
const MAX_STACK: usize = 8000;
/// The deepest nesting either direction accepts whatever the configured
/// depth: each open level holds mlua references, whose auxiliary stack is
/// itself limited to LUAI_MAXCSTACK slots (running out of it panics).
pub const MAX_DEPTH: usize = 1000;

#[derive(Clone, Copy)]
pub struct Config {
    sparse_convert: bool,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0: error, 1: allowed ("nan"/"inf"), 2: encoded as null.
    encode_invalid_numbers: i32,
    decode_invalid_numbers: bool,
    encode_keep_buffer: bool,
    precision: i32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: true,
            encode_keep_buffer: true,
            precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    new_instance(lua)
}

/// A cjson table with its own configuration (`cjson.new()` makes more).
fn new_instance(lua: &Lua) -> mlua::Result<Table> {
    let cfg: Shared = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    let c = cfg.clone();
    t.raw_set("encode", super::arg::exact_function(lua, move |lua, args: MultiValue| encode_fn(lua, &c, args))?)?;
    let c = cfg.clone();
    t.raw_set("decode", lua.create_function(move |lua, args: MultiValue| decode_fn(lua, &c, args))?)?;
    let c = cfg.clone();
    t.raw_set("encode_sparse_array", lua.create_function(move |lua, args: MultiValue| sparse_array(lua, &c, args))?)?;
    let c = cfg.clone();
    t.raw_set(
        "encode_max_depth",
        lua.create_function(move |lua, args: MultiValue| {
            int_option(lua, &args, "encode_max_depth", 1, i32::MAX, &mut c.lock().encode_max_depth)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode_max_depth",
        lua.create_function(move |lua, args: MultiValue| {
            int_option(lua, &args, "decode_max_depth", 1, i32::MAX, &mut c.lock().decode_max_depth)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "encode_number_precision",
        lua.create_function(move |lua, args: MultiValue| {
            int_option(lua, &args, "encode_number_precision", 1, 14, &mut c.lock().precision)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "encode_keep_buffer",
        lua.create_function(move |lua, args: MultiValue| {
            bool_option(lua, &args, "encode_keep_buffer", &mut c.lock().encode_keep_buffer)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, args: MultiValue| {
            let a = Args::new(&args, "encode_invalid_numbers");
            check_arg_count(lua, &a, 1)?;
            let mut setting = c.lock().encode_invalid_numbers;
            let v = enum_option(lua, &a, 1, &mut setting, &["off", "on", "null"])?;
            c.lock().encode_invalid_numbers = setting;
            Ok(v)
        })?,
    )?;
    let c = cfg;
    t.raw_set(
        "decode_invalid_numbers",
        lua.create_function(move |lua, args: MultiValue| {
            bool_option(lua, &args, "decode_invalid_numbers", &mut c.lock().decode_invalid_numbers)
        })?,
    )?;
    t.raw_set("new", lua.create_function(move |lua, ()| new_instance(lua))?)?;
    t.raw_set("null", Value::NULL)?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

// ---------------------------------------------------------------------------
// Configuration functions

fn check_arg_count(lua: &Lua, a: &Args, max: usize) -> mlua::Result<()> {
    if a.len() > max {
        return Err(a.error(lua, max + 1, "found too many arguments"));
    }
    Ok(())
}

fn int_option(
    lua: &Lua,
    args: &MultiValue,
    name: &'static str,
    min: i32,
    max: i32,
    setting: &mut i32,
) -> mlua::Result<f64> {
    let a = Args::new(args, name);
    check_arg_count(lua, &a, 1)?;
    set_int(lua, &a, 1, min, max, setting)?;
    Ok(*setting as f64)
}

fn set_int(lua: &Lua, a: &Args, i: usize, min: i32, max: i32, setting: &mut i32) -> mlua::Result<()> {
    if !a.is_nil(i) {
        let v = a.check_integer(lua, i)? as i32;
        if v < min || v > max {
            // lua-cjson always names argument 1 here.
            return Err(a.error(lua, 1, &format!("expected integer between {min} and {max}")));
        }
        *setting = v;
    }
    Ok(())
}

/// `json_enum_option`: a boolean or one of `options`; the current value
/// comes back as a boolean when it is off/on, else as its name.
fn enum_option(lua: &Lua, a: &Args, i: usize, setting: &mut i32, options: &[&str]) -> mlua::Result<Value> {
    match a.get(i) {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = *b as i32,
        Some(_) => {
            let s = a.check_string(lua, i)?;
            let s = s.as_bytes();
            match options.iter().position(|o| o.as_bytes() == &s[..]) {
                Some(p) => *setting = p as i32,
                None => {
                    let msg = format!("invalid option '{}'", String::from_utf8_lossy(&s));
                    return Err(a.error(lua, i, &msg));
                }
            }
        }
    }
    Ok(match *setting {
        0 => Value::Boolean(false),
        1 => Value::Boolean(true),
        n => Value::String(lua.create_string(options.get(n as usize).copied().unwrap_or(""))?),
    })
}

fn bool_option(lua: &Lua, args: &MultiValue, name: &'static str, setting: &mut bool) -> mlua::Result<Value> {
    let a = Args::new(args, name);
    check_arg_count(lua, &a, 1)?;
    let mut v = *setting as i32;
    let r = enum_option(lua, &a, 1, &mut v, &["off", "on"])?;
    *setting = v != 0;
    Ok(r)
}

fn sparse_array(lua: &Lua, cfg: &Shared, args: MultiValue) -> mlua::Result<(Value, f64, f64)> {
    let a = Args::new(&args, "encode_sparse_array");
    check_arg_count(lua, &a, 3)?;
    // Each setting is stored as soon as it is read, as lua-cjson does, so
    // a bad later argument leaves the earlier ones changed.
    let mut convert = cfg.lock().sparse_convert as i32;
    let conv = enum_option(lua, &a, 1, &mut convert, &["off", "on"])?;
    cfg.lock().sparse_convert = convert != 0;
    let mut ratio = cfg.lock().sparse_ratio;
    set_int(lua, &a, 2, 0, i32::MAX, &mut ratio)?;
    cfg.lock().sparse_ratio = ratio;
    let mut safe = cfg.lock().sparse_safe;
    set_int(lua, &a, 3, 0, i32::MAX, &mut safe)?;
    cfg.lock().sparse_safe = safe;
    let c = *cfg.lock();
    Ok((conv, c.sparse_ratio as f64, c.sparse_safe as f64))
}

// ---------------------------------------------------------------------------
// Encoding

/// C's `%.<precision>g` of a finite double.
pub fn format_g(d: f64, precision: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, d);
    let (mantissa, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", trim_zeros(mantissa), sign, exp.unsigned_abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

struct Encoder<'a> {
    lua: &'a Lua,
    cfg: Config,
    out: Vec<u8>,
    /// mlua references the open objects may still hold in collected pairs.
    refs_left: usize,
}

/// Collected pairs of all open objects together hold at most this many
/// mlua references; a table that does not fit is walked with `next`.
const PAIR_REFS: usize = 1024;

enum Frame {
    Array {
        t: Table,
        len: i32,
        i: i32,
    },
    /// Small tables come with their pairs, collected in the scan; others
    /// are walked with Lua's `next` from the last key, so a wide table holds
    /// no more than one key and one value at a time.
    Object {
        t: Table,
        key: Value,
        first: bool,
        pairs: Option<std::vec::IntoIter<(Value, Value)>>,
        refs: usize,
    },
}

impl Frame {
    /// Lua stack slots lua-cjson holds while inside this table.
    fn slots(&self) -> usize {
        match self {
            Frame::Array { .. } => 1,
            Frame::Object { .. } => 2,
        }
    }
}

impl Encoder<'_> {
    fn error(&self, what: &str, reason: &str) -> mlua::Error {
        lua_error(self.lua, format!("Cannot serialise {what}: {reason}"))
    }

    fn number(&mut self, n: f64) -> mlua::Result<()> {
        if n.is_nan() || n.is_infinite() {
            match self.cfg.encode_invalid_numbers {
                0 => return Err(self.error("number", "must not be NaN or Inf")),
                1 if n.is_nan() => {
                    self.out.extend_from_slice(b"nan");
                    return Ok(());
                }
                1 => {
                    self.out.extend_from_slice(if n > 0.0 { b"inf" } else { b"-inf" });
                    return Ok(());
                }
                _ => {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
            }
        }
        self.out.extend_from_slice(format_g(n, self.cfg.precision as usize).as_bytes());
        Ok(())
    }

    fn string(&mut self, s: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.out.reserve(s.len() + 2);
        self.out.push(b'"');
        for &c in s {
            match c {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'/' => self.out.extend_from_slice(b"\\/"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                8 => self.out.extend_from_slice(b"\\b"),
                12 => self.out.extend_from_slice(b"\\f"),
                0..=31 | 127 => {
                    self.out.extend_from_slice(b"\\u00");
                    self.out.push(HEX[(c >> 4) as usize]);
                    self.out.push(HEX[(c & 15) as usize]);
                }
                _ => self.out.push(c),
            }
        }
        self.out.push(b'"');
    }

    /// Appends a scalar, or returns the frame for a table to descend into.
    fn value(&mut self, v: Value, stack: &[Frame]) -> mlua::Result<Option<Frame>> {
        match v {
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Integer(_) | Value::Number(_) => self.number(number(&v).unwrap_or(0.0))?,
            Value::Boolean(true) => self.out.extend_from_slice(b"true"),
            Value::Boolean(false) => self.out.extend_from_slice(b"false"),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Table(t) => {
                let depth = stack.len() + 1;
                let slots: usize = 1 + stack.iter().map(Frame::slots).sum::<usize>();
                let limit = (self.cfg.encode_max_depth as usize).min(MAX_DEPTH);
                if depth > limit || slots + 3 > MAX_STACK {
                    return Err(lua_error(self.lua, format!("Cannot serialise, excessive nesting ({depth})")));
                }
                return self.table(super::seen_through(self.lua, t)).map(Some);
            }
            other => return Err(self.error(type_name(&other), "type not supported")),
        }
        Ok(None)
    }

    /// lua-cjson's array test: every key a positive integer and the array
    /// not excessively sparse. Gives the array length, or the pairs for an
    /// object.
    fn table(&mut self, t: Table) -> mlua::Result<Frame> {
        let mut max: i32 = 0;
        let mut items: i32 = 0;
        let mut array = true;
        let mut pairs = Some(Vec::new());
        let budget = self.refs_left / 2;
        t.for_each(|k: Value, v: Value| {
            // A key read as 0 may be -0.0 or 1e-300 (mlua's conversion):
            // the walk by `next_exact` writes it as it is.
            if matches!(k, Value::Integer(0)) {
                pairs = None;
            }
            if let Some(p) = &mut pairs {
                if p.len() < budget {
                    p.push((k.clone(), v));
                } else {
                    pairs = None;
                }
            }
            if !array {
                return Ok(());
            }
            match number(&k) {
                Some(n) if n != 0.0 && n.floor() == n && n >= 1.0 => {
                    if n > max as f64 {
                        // C's double-to-int conversion on x86.
                        max = if n < 2_147_483_648.0 { n as i32 } else { i32::MIN };
                    }
                    items = items.wrapping_add(1);
                }
                _ => array = false,
            }
            Ok(())
        })?;
        if array {
            let c = &self.cfg;
            if c.sparse_ratio > 0 && max > items.wrapping_mul(c.sparse_ratio) && max > c.sparse_safe {
                if !c.sparse_convert {
                    return Err(self.error("table", "excessively sparse array"));
                }
            } else if max > 0 {
                self.out.push(b'[');
                return Ok(Frame::Array { t, len: max, i: 0 });
            }
        }
        self.out.push(b'{');
        let refs = pairs.as_ref().map_or(0, |p| p.len() * 2);
        self.refs_left -= refs;
        Ok(Frame::Object { t, key: Value::Nil, first: true, pairs: pairs.map(Vec::into_iter), refs })
    }

    fn key(&mut self, k: &Value) -> mlua::Result<()> {
        match k {
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Integer(_) | Value::Number(_) => {
                self.out.push(b'"');
                self.number(number(k).unwrap_or(0.0))?;
                self.out.push(b'"');
            }
            other => return Err(self.error(type_name(other), "table key must be a number or string")),
        }
        self.out.push(b':');
        Ok(())
    }

    fn run(&mut self, v: Value) -> mlua::Result<()> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut next = Some(v);
        loop {
            if let Some(v) = next.take() {
                if let Some(f) = self.value(v, &stack)? {
                    stack.push(f);
                }
            }
            let Some(top) = stack.last_mut() else { return Ok(()) };
            match top {
                Frame::Array { t, len, i } => {
                    if *i < *len {
                        if *i > 0 {
                            self.out.push(b',');
                        }
                        *i += 1;
                        next = Some(exact(t.raw_get(*i)?, t, *i)?);
                    } else {
                        self.out.push(b']');
                        stack.pop();
                    }
                }
                Frame::Object { t, key, first, pairs, refs } => {
                    let (k, v): (Value, Value) = match pairs {
                        Some(p) => p.next().unwrap_or((Value::Nil, Value::Nil)),
                        None => super::arg::next_exact(self.lua, t, std::mem::take(key))?,
                    };
                    if k.is_nil() {
                        self.out.push(b'}');
                        self.refs_left += *refs;
                        stack.pop();
                    } else {
                        if !*first {
                            self.out.push(b',');
                        }
                        *first = false;
                        self.key(&k)?;
                        next = Some(exact(v, t, k.clone())?);
                        if pairs.is_none() {
                            *key = k;
                        }
                    }
                }
            }
        }
    }
}

/// cjson.encode of `v` with `cfg`.
pub fn encode(lua: &Lua, cfg: Config, v: Value) -> mlua::Result<Vec<u8>> {
    let mut e = Encoder { lua, cfg, out: Vec::new(), refs_left: PAIR_REFS };
    e.run(v)?;
    Ok(e.out)
}

fn encode_fn(lua: &Lua, cfg: &Shared, args: MultiValue) -> mlua::Result<mlua::String> {
    let a = Args::new(&args, "encode");
    if a.len() != 1 {
        return Err(a.error(lua, 1, "expected 1 argument"));
    }
    let v = args.into_iter().next().unwrap_or(Value::Nil);
    let cfg = *cfg.lock();
    lua.create_string(encode(lua, cfg, v)?)
}

// ---------------------------------------------------------------------------
// Decoding

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        }
    }
}

struct Token {
    kind: Tok,
    /// 0-based offset where the token (or its error) starts.
    index: usize,
    num: f64,
}

struct Parser<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    cfg: Config,
    /// The last string token's bytes.
    tmp: Vec<u8>,
    depth: usize,
}

enum Open {
    Array { t: Table, i: i64 },
    Object { t: Table, key: mlua::String },
}

impl Parser<'_> {
    /// The byte at `i`; the input ends with an implicit NUL, as in C.
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn token(&mut self) -> Token {
        while let b' ' | b'\t' | b'\r' | b'\n' = self.at(self.pos) {
            self.pos += 1;
        }
        let index = self.pos;
        let c = self.at(self.pos);
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        let tok = |kind| Token { kind, index, num: 0.0 };
        if let Some(kind) = single {
            self.pos += 1;
            return tok(kind);
        }
        match c {
            0 => tok(Tok::End),
            b'"' => self.string_token(index),
            b'-' | b'0'..=b'9' => {
                if !self.cfg.decode_invalid_numbers && self.invalid_number() {
                    return tok(Tok::Error("invalid number"));
                }
                self.number_token(index)
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                let rest = &self.data[self.pos.min(self.data.len())..];
                if rest.starts_with(b"true") {
                    self.pos += 4;
                    tok(Tok::Bool(true))
                } else if rest.starts_with(b"false") {
                    self.pos += 5;
                    tok(Tok::Bool(false))
                } else if rest.starts_with(b"null") {
                    self.pos += 4;
                    tok(Tok::Null)
                } else if self.cfg.decode_invalid_numbers && self.invalid_number() {
                    self.number_token(index)
                } else {
                    tok(Tok::Error("invalid token"))
                }
            }
            _ => tok(Tok::Error("invalid token")),
        }
    }

    /// Numbers JSON forbids: a leading `+`, hex, leading zeros, inf, nan.
    fn invalid_number(&self) -> bool {
        let mut p = self.pos;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return c2 | 0x20 == b'x' || c2.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let word = |w: &[u8]| (0..3).all(|i| self.at(p + i).to_ascii_lowercase() == w[i]);
        word(b"inf") || word(b"nan")
    }

    fn number_token(&mut self, index: usize) -> Token {
        match strtod(self.data, self.pos) {
            Some((num, end)) => {
                self.pos = end;
                Token { kind: Tok::Num, index, num }
            }
            None => Token { kind: Tok::Error("invalid number"), index: self.pos, num: 0.0 },
        }
    }

    fn string_token(&mut self, index: usize) -> Token {
        let err = |p: &Parser, e| Token { kind: Tok::Error(e), index: p.pos, num: 0.0 };
        self.pos += 1;
        self.tmp.clear();
        loop {
            let c = self.at(self.pos);
            match c {
                b'"' => break,
                0 => return err(self, "unexpected end of string"),
                b'\\' => {
                    let e = match self.at(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            if !self.unicode_escape() {
                                return err(self, "invalid unicode escape code");
                            }
                            continue;
                        }
                        _ => return err(self, "invalid escape code"),
                    };
                    self.tmp.push(e);
                    self.pos += 2;
                }
                _ => {
                    self.tmp.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        Token { kind: Tok::Str, index, num: 0.0 }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for i in 0..4 {
            v = (v << 4) | (self.at(at + i) as char).to_digit(16)?;
        }
        Some(v)
    }

    /// `\uXXXX` (with a surrogate pair) at `pos`, appended as UTF-8.
    fn unicode_escape(&mut self) -> bool {
        let Some(mut cp) = self.hex4(self.pos + 2) else { return false };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 || self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else { return false };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        push_utf8(&mut self.tmp, cp);
        self.pos += len;
        true
    }

    fn error(&self, expected: &str, t: &Token) -> mlua::Error {
        lua_error(self.lua, format!("Expected {expected} but found {} at character {}", t.kind.name(), t.index + 1))
    }

    /// Enters an array or object: the depth limit and Lua's stack limit.
    fn descend(&mut self, open: &[Open], slots: usize) -> mlua::Result<()> {
        self.depth += 1;
        let used: usize = 1 + open.iter().map(|o| if matches!(o, Open::Array { .. }) { 1 } else { 2 }).sum::<usize>();
        let limit = (self.cfg.decode_max_depth as usize).min(MAX_DEPTH);
        if self.depth <= limit && used + slots <= MAX_STACK {
            return Ok(());
        }
        Err(lua_error(
            self.lua,
            format!("Found too many nested data structures ({}) at character {}", self.depth, self.pos),
        ))
    }

    /// After `{` and a key string: the colon; returns the key.
    fn key(&mut self, t: &Token) -> mlua::Result<mlua::String> {
        if t.kind != Tok::Str {
            return Err(self.error("object key string", t));
        }
        let key = self.lua.create_string(&self.tmp)?;
        let colon = self.token();
        if colon.kind != Tok::Colon {
            return Err(self.error("colon", &colon));
        }
        Ok(key)
    }

    fn run(&mut self) -> mlua::Result<Value> {
        let mut open: Vec<Open> = Vec::new();
        let mut tok = self.token();
        loop {
            // `tok` starts a value.
            let mut value = match tok.kind {
                Tok::Str => Value::String(self.lua.create_string(&self.tmp)?),
                Tok::Num => Value::Number(tok.num),
                Tok::Bool(b) => Value::Boolean(b),
                Tok::Null => Value::NULL,
                Tok::ObjBegin => {
                    self.descend(&open, 3)?;
                    let t = self.lua.create_table()?;
                    let first = self.token();
                    if first.kind == Tok::ObjEnd {
                        self.depth -= 1;
                        Value::Table(t)
                    } else {
                        let key = self.key(&first)?;
                        open.push(Open::Object { t, key });
                        tok = self.token();
                        continue;
                    }
                }
                Tok::ArrBegin => {
                    self.descend(&open, 2)?;
                    let t = self.lua.create_table()?;
                    let first = self.token();
                    if first.kind == Tok::ArrEnd {
                        self.depth -= 1;
                        Value::Table(t)
                    } else {
                        open.push(Open::Array { t, i: 1 });
                        tok = first;
                        continue;
                    }
                }
                _ => return Err(self.error("value", &tok)),
            };
            // Store complete values into their containers, closing those
            // that end here.
            loop {
                let Some(top) = open.last_mut() else { return Ok(value) };
                let next = self.token();
                match top {
                    Open::Array { t, i } => {
                        t.raw_set(*i, value)?;
                        match next.kind {
                            Tok::ArrEnd => {}
                            Tok::Comma => {
                                *i += 1;
                                tok = self.token();
                                break;
                            }
                            _ => return Err(self.error("comma or array end", &next)),
                        }
                    }
                    Open::Object { t, key } => {
                        t.raw_set(key.clone(), value)?;
                        match next.kind {
                            Tok::ObjEnd => {}
                            Tok::Comma => {
                                let kt = self.token();
                                let k = self.key(&kt)?;
                                *key = k;
                                tok = self.token();
                                break;
                            }
                            _ => return Err(self.error("comma or object end", &next)),
                        }
                    }
                }
                self.depth -= 1;
                value = match open.pop() {
                    Some(Open::Array { t, .. } | Open::Object { t, .. }) => Value::Table(t),
                    None => Value::Nil,
                };
            }
        }
    }
}

fn push_utf8(out: &mut Vec<u8>, cp: u32) {
    if cp <= 0x7F {
        out.push(cp as u8);
    } else if cp <= 0x7FF {
        out.extend_from_slice(&[(cp >> 6) as u8 | 0xC0, (cp & 0x3F) as u8 | 0x80]);
    } else if cp <= 0xFFFF {
        out.extend_from_slice(&[(cp >> 12) as u8 | 0xE0, ((cp >> 6) & 0x3F) as u8 | 0x80, (cp & 0x3F) as u8 | 0x80]);
    } else {
        out.extend_from_slice(&[
            (cp >> 18) as u8 | 0xF0,
            ((cp >> 12) & 0x3F) as u8 | 0x80,
            ((cp >> 6) & 0x3F) as u8 | 0x80,
            (cp & 0x3F) as u8 | 0x80,
        ]);
    }
}

/// C's `strtod` on `s[start..]`: the value and where it ends, or None when
/// nothing converts.
pub fn strtod(s: &[u8], start: usize) -> Option<(f64, usize)> {
    let r = crate::util::numbers::strtod(s.get(start..)?);
    (r.end > 0).then_some((r.value, start + r.end))
}

/// cjson.decode of `data` with `cfg`.
pub fn decode(lua: &Lua, cfg: Config, data: &[u8]) -> mlua::Result<Value> {
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(lua_error(lua, "JSON parser does not support UTF-16 or UTF-32"));
    }
    let mut p = Parser { lua, data, pos: 0, cfg, tmp: Vec::new(), depth: 0 };
    let v = p.run()?;
    let end = p.token();
    if end.kind != Tok::End {
        return Err(p.error("the end", &end));
    }
    Ok(v)
}

fn decode_fn(lua: &Lua, cfg: &Shared, args: MultiValue) -> mlua::Result<Value> {
    let a = Args::new(&args, "decode");
    if a.len() != 1 {
        return Err(a.error(lua, 1, "expected 1 argument"));
    }
    let s = a.check_string(lua, 1)?;
    let cfg = *cfg.lock();
    decode(lua, cfg, &s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format() {
        assert_eq!(format_g(0.1, 14), "0.1");
        assert_eq!(format_g(1e15, 14), "1e+15");
        assert_eq!(format_g(123456789012345.0, 14), "1.2345678901234e+14");
        assert_eq!(format_g(1.5, 14), "1.5");
        assert_eq!(format_g(0.0001, 14), "0.0001");
        assert_eq!(format_g(0.00001, 14), "1e-05");
        assert_eq!(format_g(100.0, 14), "100");
        assert_eq!(format_g(1.23456, 3), "1.23");
    }

    #[test]
    fn strtod_prefixes() {
        assert_eq!(strtod(b"12abc", 0), Some((12.0, 2)));
        assert_eq!(strtod(b"-1.5e3]", 0), Some((-1500.0, 6)));
        assert_eq!(strtod(b"1e", 0), Some((1.0, 1)));
        assert_eq!(strtod(b"0x10", 0), Some((16.0, 4)));
        assert_eq!(strtod(b"0x", 0), Some((0.0, 1)));
        assert_eq!(strtod(b"-", 0), None);
        assert_eq!(strtod(b"Infinity", 0), Some((f64::INFINITY, 8)));
        assert!(strtod(b"nan", 0).is_some_and(|(v, e)| v.is_nan() && e == 3));
    }
}
