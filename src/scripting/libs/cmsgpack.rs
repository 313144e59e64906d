//! The `cmsgpack` library with the behaviour of lua-cmsgpack 0.4.0 as Redis
//! ships it: integers in the smallest integer encoding, other numbers as
//! float32 when exact else float64, a table as an array when its keys are
//! exactly 1..n, tables nested 16 deep packed as nil. Decoding is iterative
//! and applies Lua's C stack limit where lua-cmsgpack does, so a deeply
//! nested or truncated input gives an error, never a crash.

use super::arg::{c_integer, exact, number, Args};
use crate::scripting::api::lua_error;
use mlua::{ffi, Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;
/// Beyond Redis: the deepest nesting and the most strings or tables one call
/// returns. Each holds an mlua reference while decoding, and running out of
/// mlua's reference stack (LUAI_MAXCSTACK slots, shared by the VM) panics.
const MAX_DEPTH: usize = 1000;
const MAX_REF_RESULTS: usize = 2000;
const TOO_MANY: &str = "too many return values at once; use unpack_one or unpack_limit instead.";
/// LUAI_MAXCSTACK of Lua 5.1.
const MAX_STACK: usize = 8000;

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", super::arg::exact_function(lua, pack)?)?;
    t.raw_set("unpack", lua.create_function(unpack)?)?;
    t.raw_set("unpack_one", lua.create_function(unpack_one)?)?;
    t.raw_set("unpack_limit", lua.create_function(unpack_limit)?)?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

// ---------------------------------------------------------------------------
// Packing

fn put_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn put_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn put_number(out: &mut Vec<u8>, n: f64) {
    // IS_INT64_EQUIVALENT: not infinite and unchanged by a cast to int64.
    if !n.is_infinite() && c_integer(n) as f64 == n {
        put_int(out, c_integer(n));
    } else if n as f32 as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn put_len(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b16 + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// True when the keys are exactly 1..n (lua-cmsgpack's `table_is_an_array`).
fn is_array(t: &Table) -> mlua::Result<bool> {
    let mut count: i64 = 0;
    let mut max: i64 = 0;
    let mut array = true;
    t.for_each(|k: Value, _: Value| {
        if !array {
            return Ok(());
        }
        match number(&k) {
            Some(n) if n > 0.0 && n == (n as i32) as f64 => {
                max = max.max(n as i64);
                count += 1;
            }
            _ => array = false,
        }
        Ok(())
    })?;
    Ok(array && max == count)
}

/// A table being packed: an array by index, a map by Lua's `next` (the
/// pending value of a map entry comes after its key).
enum Open {
    Array { t: Table, len: usize, i: usize },
    Map { t: Table, key: Value, value: Option<Value> },
}

fn put_scalar(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => put_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(_) | Value::Number(_) => put_number(out, number(v).unwrap_or(0.0)),
        _ => out.push(0xc0),
    }
}

/// Packs one value. Nested tables are walked with an explicit stack of at
/// most 16 open tables (deeper ones pack as nil, which also ends cycles),
/// each holding O(1) Lua references however wide it is.
fn pack_value(lua: &Lua, out: &mut Vec<u8>, v: Value) -> mlua::Result<()> {
    let mut open: Vec<Open> = Vec::new();
    let mut item = Some(v);
    loop {
        if let Some(v) = item.take() {
            match v {
                Value::Table(t) if open.len() < MAX_NESTING => {
                    let t = super::seen_through(lua, t);
                    if is_array(&t)? {
                        let len = t.raw_len();
                        put_len(out, len, 0x90, 0xdc);
                        open.push(Open::Array { t, len, i: 0 });
                    } else {
                        let mut n = 0usize;
                        t.for_each(|_: Value, _: Value| {
                            n += 1;
                            Ok(())
                        })?;
                        put_len(out, n, 0x80, 0xde);
                        open.push(Open::Map { t, key: Value::Nil, value: None });
                    }
                }
                other => put_scalar(out, &other),
            }
        }
        let Some(top) = open.last_mut() else { return Ok(()) };
        match top {
            Open::Array { t, len, i } => {
                if *i < *len {
                    *i += 1;
                    // lua_gettable: metamethods apply.
                    let v: Value = t.get(*i)?;
                    item = Some(exact(v, t, *i)?);
                } else {
                    open.pop();
                }
            }
            Open::Map { t, key, value } => {
                if let Some(v) = value.take() {
                    item = Some(v);
                } else {
                    let (k, v) = super::arg::next_exact(lua, t, std::mem::take(key))?;
                    if k.is_nil() {
                        open.pop();
                    } else {
                        *value = Some(exact(v, t, k.clone())?);
                        *key = k.clone();
                        item = Some(k);
                    }
                }
            }
        }
    }
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    if args.is_empty() {
        return Err(Args::new(&args, "pack").error(lua, 0, "MessagePack pack needs input."));
    }
    // lua_checkstack(L, nargs) with the arguments already on the stack.
    if args.len() * 2 >= MAX_STACK {
        return Err(Args::new(&args, "pack").error(lua, 0, "Too many arguments for MessagePack pack."));
    }
    let mut out = Vec::new();
    for v in args {
        pack_value(lua, &mut out, v)?;
    }
    lua.create_string(&out)
}

// ---------------------------------------------------------------------------
// Unpacking
//
// In two passes: the input is first read in Rust into a list of tokens,
// with every check lua-cmsgpack makes (truncation, bad format, its stack
// use, nil or NaN map keys) in its order, and nothing is built while any of
// them can still fail. The Lua values are then built from the tokens in one
// protected call with Lua's own API. Building them one mlua call at a time
// cost a protected call (two closures for Lua's collector) per string,
// table and table slot: a fifth of a BullMQ job's instructions.

enum Fail {
    Eof,
    BadFormat,
    Lua(mlua::Error),
}

/// One decoded item, in order: a container's items follow it.
#[derive(Clone, Copy)]
enum Token {
    Nil,
    Bool(bool),
    Number(f64),
    /// Start and length of the string's bytes in the input.
    Str(usize, usize),
    /// A table of this many array items, or map pairs, that follow.
    Array(u64),
    Map(u64),
}

/// A table being filled: its items left, and for a map the key read
/// (checked when its value is complete, as `lua_settable` does).
enum Fill {
    Array { left: u64 },
    Map { left: u64, key: Option<Done> },
}

/// What a finished value is, as a map key.
#[derive(PartialEq)]
enum Done {
    Nil,
    NaN,
    Other,
}

struct Decoder<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    /// Lua stack slots lua-cmsgpack would be using (arguments, finished
    /// values, tables and keys being filled).
    top: usize,
    tokens: Vec<Token>,
    /// The deepest nesting of tables seen.
    depth: usize,
}

impl Decoder<'_> {
    fn need(&self, n: usize) -> Result<&[u8], Fail> {
        match self.data.get(self.pos..).filter(|r| r.len() >= n) {
            Some(r) => Ok(&r[..n]),
            None => Err(Fail::Eof),
        }
    }

    fn overflow(&self, what: &str) -> Fail {
        Fail::Lua(lua_error(self.lua, format!("stack overflow ({what})")))
    }

    fn check_stack(&self, what: &str) -> Result<(), Fail> {
        if self.top + 1 > MAX_STACK {
            return Err(self.overflow(what));
        }
        Ok(())
    }

    fn be(b: &[u8]) -> u64 {
        b.iter().fold(0, |acc, &x| (acc << 8) | x as u64)
    }

    fn scalar(&mut self, token: Token) -> Result<Option<Done>, Fail> {
        self.tokens.push(token);
        Ok(Some(match token {
            Token::Nil => Done::Nil,
            Token::Number(n) if n.is_nan() => Done::NaN,
            _ => Done::Other,
        }))
    }

    fn string(&mut self, hdr: usize, len: usize) -> Result<Option<Done>, Fail> {
        let total = hdr.checked_add(len).ok_or(Fail::Eof)?;
        self.need(total)?;
        let start = self.pos + hdr;
        self.pos += total;
        self.scalar(Token::Str(start, len))
    }

    /// Reads one item: a complete value, or a table to fill (pushed on
    /// `open`, then None).
    fn item(&mut self, open: &mut Vec<Fill>) -> Result<Option<Done>, Fail> {
        let head = self.need(1)?[0];
        self.check_stack(TOO_MANY)?;
        macro_rules! fixed {
            ($n:expr) => {{
                let b = self.need(1 + $n)?;
                let v = Self::be(&b[1..]);
                self.pos += 1 + $n;
                v
            }};
        }
        let number = match head {
            0xcc => fixed!(1) as f64,
            0xd0 => fixed!(1) as u8 as i8 as f64,
            0xcd => fixed!(2) as f64,
            0xd1 => fixed!(2) as u16 as i16 as f64,
            0xce => fixed!(4) as f64,
            0xd2 => fixed!(4) as u32 as i32 as f64,
            // lua-cmsgpack reads uint64 into a signed integer too.
            0xcf | 0xd3 => fixed!(8) as i64 as f64,
            0xc0 => {
                self.pos += 1;
                return self.scalar(Token::Nil);
            }
            0xc3 | 0xc2 => {
                self.pos += 1;
                return self.scalar(Token::Bool(head == 0xc3));
            }
            0xca => f32::from_bits(fixed!(4) as u32) as f64,
            0xcb => f64::from_bits(fixed!(8)),
            0xd9 => {
                let l = self.need(2)?[1] as usize;
                return self.string(2, l);
            }
            0xda => {
                let l = Self::be(&self.need(3)?[1..]) as usize;
                return self.string(3, l);
            }
            0xdb => {
                let l = Self::be(&self.need(5)?[1..]) as usize;
                return self.string(5, l);
            }
            0xdc => {
                let l = fixed!(2);
                return self.open_array(open, l);
            }
            0xdd => {
                let l = fixed!(4);
                return self.open_array(open, l);
            }
            0xde => {
                let l = fixed!(2);
                return self.open_map(open, l);
            }
            0xdf => {
                let l = fixed!(4);
                return self.open_map(open, l);
            }
            _ if head & 0x80 == 0 => {
                self.pos += 1;
                head as f64
            }
            _ if head & 0xe0 == 0xe0 => {
                self.pos += 1;
                head as i8 as f64
            }
            _ if head & 0xe0 == 0xa0 => return self.string(1, (head & 0x1f) as usize),
            _ if head & 0xf0 == 0x90 => {
                self.pos += 1;
                return self.open_array(open, (head & 0xf) as u64);
            }
            _ if head & 0xf0 == 0x80 => {
                self.pos += 1;
                return self.open_map(open, (head & 0xf) as u64);
            }
            _ => return Err(Fail::BadFormat),
        };
        self.scalar(Token::Number(number))
    }

    fn open_array(&mut self, open: &mut Vec<Fill>, len: u64) -> Result<Option<Done>, Fail> {
        self.top += 1;
        self.check_stack("in function mp_decode_to_lua_array")?;
        if open.len() >= MAX_DEPTH {
            return Err(self.overflow("in function mp_decode_to_lua_array"));
        }
        self.tokens.push(Token::Array(len));
        if len == 0 {
            self.top -= 1;
            return Ok(Some(Done::Other));
        }
        // The index pushed before each element.
        self.top += 1;
        open.push(Fill::Array { left: len });
        self.depth = self.depth.max(open.len());
        Ok(None)
    }

    fn open_map(&mut self, open: &mut Vec<Fill>, len: u64) -> Result<Option<Done>, Fail> {
        self.tokens.push(Token::Map(len));
        if len == 0 {
            return Ok(Some(Done::Other));
        }
        if open.len() >= MAX_DEPTH {
            return Err(self.overflow(TOO_MANY));
        }
        self.top += 1;
        open.push(Fill::Map { left: len, key: None });
        self.depth = self.depth.max(open.len());
        Ok(None)
    }

    /// Reads one top-level value.
    fn value(&mut self) -> Result<(), Fail> {
        let mut open: Vec<Fill> = Vec::new();
        loop {
            let Some(mut done) = self.item(&mut open)? else { continue };
            // Count finished values into their tables, closing full ones.
            loop {
                let Some(top) = open.last_mut() else { return Ok(()) };
                match top {
                    Fill::Array { left } => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.top -= 2;
                    }
                    Fill::Map { left, key } => {
                        let Some(k) = key.take() else {
                            *key = Some(done);
                            self.top += 1;
                            break;
                        };
                        self.top -= 1;
                        // lua_settable: a nil or NaN key is an error.
                        match k {
                            Done::Nil => return Err(Fail::Lua(plain_error("table index is nil"))),
                            Done::NaN => return Err(Fail::Lua(plain_error("table index is NaN"))),
                            Done::Other => {}
                        }
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.top -= 1;
                    }
                }
                open.pop();
                done = Done::Other;
            }
        }
    }
}

/// An error raised by the Lua core inside a C function: no position.
fn plain_error(msg: &str) -> mlua::Error {
    mlua::Error::RuntimeError(msg.to_string())
}

/// Pushes the value of the tokens from `*at` (moving past it) as
/// lua-cmsgpack builds it: tables empty at first, filled in order with raw
/// sets, so that they grow (and `pairs` walks them) as in Redis.
///
/// # Safety
/// Inside a protected call, with stack space for twice the nesting; `data`
/// holds the strings the tokens point into. A Lua error (out of memory)
/// jumps over these frames, which hold nothing to drop.
unsafe fn push_tokens(state: *mut ffi::lua_State, data: &[u8], tokens: &[Token], at: &mut usize) {
    let token = tokens[*at];
    *at += 1;
    // SAFETY: per the function's contract; string tokens lie within `data`.
    unsafe {
        match token {
            Token::Nil => ffi::lua_pushnil(state),
            Token::Bool(b) => ffi::lua_pushboolean(state, b as std::os::raw::c_int),
            Token::Number(n) => ffi::lua_pushnumber(state, n),
            Token::Str(start, len) => {
                ffi::lua_pushlstring(state, data.as_ptr().add(start).cast(), len);
            }
            Token::Array(len) => {
                ffi::lua_createtable(state, 0, 0);
                for i in 1..=len {
                    ffi::lua_pushnumber(state, i as f64);
                    push_tokens(state, data, tokens, at);
                    ffi::lua_rawset(state, -3);
                }
            }
            Token::Map(len) => {
                ffi::lua_createtable(state, 0, 0);
                for _ in 0..len {
                    push_tokens(state, data, tokens, at);
                    push_tokens(state, data, tokens, at);
                    ffi::lua_rawset(state, -3);
                }
            }
        }
    }
}

/// `mp_unpack_full`: up to `limit` values from `offset`; with a limit or
/// offset, the next offset (-1 at the end) comes first.
fn unpack_full(lua: &Lua, a: &Args, nargs: usize, limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    let s = a.check_string(lua, 1)?;
    let data = s.as_bytes();
    let len = data.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(lua_error(
            lua,
            format!("Invalid request to unpack with offset of {} and limit of {}.", offset as i32, len as i32),
        ));
    }
    if offset as u64 > len as u64 {
        let shown = offset as i32;
        return Err(lua_error(lua, format!("Start offset {shown} greater than input length {}.", len as i32)));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let input = &data[offset as usize..];
    let mut d = Decoder { lua, data: input, pos: 0, top: nargs, tokens: Vec::new(), depth: 0 };
    let mut count = 0;
    let mut refs = 0;
    while d.pos < d.data.len() && count < limit {
        let first = d.tokens.len();
        match d.value() {
            Ok(()) => {
                if matches!(d.tokens[first], Token::Str(..) | Token::Array(_) | Token::Map(_)) {
                    refs += 1;
                    if refs > MAX_REF_RESULTS {
                        return Err(lua_error(lua, format!("stack overflow ({TOO_MANY})")));
                    }
                }
            }
            Err(Fail::Eof) => return Err(lua_error(lua, "Missing bytes in input.")),
            Err(Fail::BadFormat) => return Err(lua_error(lua, "Bad data format in input.")),
            Err(Fail::Lua(e)) => return Err(e),
        }
        d.top += 1;
        count += 1;
    }
    let (tokens, depth, end) = (d.tokens, d.depth, d.pos);
    // Room for the results and, per table level, a table and a key, with
    // the value being built at the deepest.
    let room = count as usize + 2 * depth + 1;
    // SAFETY: inside mlua's protected call; `push_tokens`'s contract: the
    // stack is grown first, `input` outlives the call, and the tokens were
    // checked whole above (each container's items follow it).
    let mut values = unsafe {
        lua.exec_raw::<MultiValue>((), |state| {
            if ffi::lua_checkstack(state, room as std::os::raw::c_int) == 0 {
                ffi::luaL_error(state, c"stack overflow (%s)".as_ptr(), c"in function mp_unpack_full".as_ptr());
            }
            let mut at = 0;
            while at < tokens.len() {
                push_tokens(state, input, &tokens, &mut at);
            }
        })?
    };
    if !decode_all {
        let left = input.len() - end;
        let next = if left == 0 { -1 } else { (len - left) as i32 as i64 };
        values.push_front(Value::Number(next as f64));
    }
    Ok(values)
}

fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let a = Args::new(&args, "unpack");
    unpack_full(lua, &a, args.len().max(1), 0, 0)
}

fn unpack_one(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let a = Args::new(&args, "unpack_one");
    // Redis keeps these as lua_Integer (64 bits), printing them as `int`.
    let offset = a.opt_integer(lua, 2, 0)?;
    unpack_full(lua, &a, 1, 1, offset)
}

fn unpack_limit(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let a = Args::new(&args, "unpack_limit");
    let limit = a.check_integer(lua, 2)?;
    let offset = a.opt_integer(lua, 3, 0)?;
    unpack_full(lua, &a, 1, limit, offset)
}
