//! Conversions between command replies and Lua values, as Redis 7.0 does
//! them for RESP2 and RESP3 (`redis.setresp`).

use crate::protocol::format_double;
use crate::protocol::Reply;
use crate::protocol::{push_bulk, push_header};
use mlua::{ffi, Lua, Table, Value};
use std::ffi::{c_char, c_int};

/// Rewrites a command reply into the shapes `push_reply` pushes as they
/// are: error texts normalized, and RESP3-only types a RESP2 script sees as
/// strings already formatted. Common replies pass through untouched.
pub fn prepare_for_lua(r: Reply, resp: u8) -> Reply {
    match r {
        Reply::Error(e) => Reply::error_from_bytes(command_error(e.as_bytes())),
        Reply::ErrorBytes(e) => Reply::error_from_bytes(command_error(&e)),
        Reply::Double(d) if resp < 3 => Reply::Bulk(format_double(d).into()),
        Reply::DoubleText(t) if resp < 3 => Reply::Bulk(t.into()),
        Reply::BigNumber(n) if resp < 3 => Reply::Bulk(n.into()),
        Reply::Verbatim(_, text) if resp < 3 => Reply::Bulk(text),
        Reply::Array(items) => Reply::Array(prepare_all(items, resp)),
        Reply::Push(items) => Reply::Push(prepare_all(items, resp)),
        Reply::Multi(items) => Reply::Multi(prepare_all(items, resp)),
        Reply::Set(items) => Reply::Set(prepare_all(items, resp)),
        Reply::Map(pairs) => {
            Reply::Map(pairs.into_iter().map(|(k, v)| (prepare_for_lua(k, resp), prepare_for_lua(v, resp))).collect())
        }
        other => other,
    }
}

fn prepare_all(items: Vec<Reply>, resp: u8) -> Vec<Reply> {
    items.into_iter().map(|r| prepare_for_lua(r, resp)).collect()
}

/// A command reply as the Lua value a script receives (what `push_reply`
/// pushes, as an mlua handle: for tests and the fuzz harness).
pub fn reply_to_lua(lua: &Lua, r: &Reply, resp: u8) -> mlua::Result<Value> {
    let r = prepare_for_lua(r.clone(), resp);
    // SAFETY: the closure pushes one value inside mlua's protected call,
    // which catches anything Lua raises.
    unsafe { lua.exec_raw::<Value>((), |state| push_reply(state, &r, resp)) }
}

/// Pushes a command reply, prepared by `prepare_for_lua`, as the Lua value
/// Redis 7.0 gives a script speaking RESP `resp`. An error reply becomes
/// `{err=...}` (the caller decides whether to raise it).
///
/// # Safety
/// `state` is a valid Lua state. Lua may raise (out of memory) from here:
/// this function owns nothing that needs dropping.
pub unsafe fn push_reply(state: *mut ffi::lua_State, r: &Reply, resp: u8) {
    // SAFETY: stack space for a container, a key and a value is reserved
    // before anything is pushed (`luaL_checkstack` raises if it cannot).
    unsafe {
        ffi::luaL_checkstack(state, 4, std::ptr::null());
        match r {
            Reply::Status(s) => {
                ffi::lua_createtable(state, 0, 1);
                push_bytes(state, s.as_bytes());
                ffi::lua_setfield(state, -2, c"ok".as_ptr());
            }
            Reply::Error(e) => push_command_error(state, e.as_bytes()),
            Reply::ErrorBytes(e) => push_command_error(state, e),
            // Only script results are encoded ahead; no command replies so.
            Reply::Encoded(_) => push_null(state, resp),
            Reply::Int(i) => ffi::lua_pushnumber(state, *i as f64),
            Reply::Bulk(b) => push_bytes(state, b),
            // An attribute only annotates the reply after it (no command a script may call sends one).
            Reply::Nil | Reply::NilArray | Reply::NoReply | Reply::Blocked | Reply::Attribute(_) => {
                push_null(state, resp)
            }
            Reply::Array(items) | Reply::Push(items) | Reply::Multi(items) => push_array(state, items, resp),
            Reply::BulkArray(a) => {
                ffi::lua_createtable(state, a.len().min(i32::MAX as usize) as c_int, 0);
                for (i, element) in a.iter().enumerate() {
                    push_bytes(state, element);
                    ffi::lua_rawseti_(state, -2, (i + 1).min(i32::MAX as usize) as c_int);
                }
            }
            Reply::Map(pairs) if resp >= 3 => {
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_createtable(state, 0, pairs.len().min(i32::MAX as usize) as c_int);
                for (k, v) in pairs {
                    if !is_null(k) {
                        push_reply(state, k, resp);
                        push_reply(state, v, resp);
                        ffi::lua_rawset(state, -3);
                    }
                }
                ffi::lua_setfield(state, -2, c"map".as_ptr());
            }
            Reply::Map(pairs) => {
                ffi::lua_createtable(state, (pairs.len().saturating_mul(2)).min(i32::MAX as usize) as c_int, 0);
                for (i, (k, v)) in pairs.iter().enumerate() {
                    push_reply(state, k, resp);
                    ffi::lua_rawseti_(state, -2, (i * 2 + 1) as c_int);
                    push_reply(state, v, resp);
                    ffi::lua_rawseti_(state, -2, (i * 2 + 2) as c_int);
                }
            }
            Reply::Set(items) if resp >= 3 => {
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_createtable(state, 0, items.len().min(i32::MAX as usize) as c_int);
                for item in items {
                    if !is_null(item) {
                        push_reply(state, item, resp);
                        ffi::lua_pushboolean(state, 1);
                        ffi::lua_rawset(state, -3);
                    }
                }
                ffi::lua_setfield(state, -2, c"set".as_ptr());
            }
            Reply::Set(items) => push_array(state, items, resp),
            Reply::Double(d) => {
                // RESP2 doubles were turned into strings by `prepare_for_lua`.
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_pushnumber(state, *d);
                ffi::lua_setfield(state, -2, c"double".as_ptr());
            }
            Reply::DoubleText(t) => {
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_pushnumber(state, t.parse().unwrap_or(0.0));
                ffi::lua_setfield(state, -2, c"double".as_ptr());
            }
            Reply::Bool(b) if resp >= 3 => ffi::lua_pushboolean(state, *b as c_int),
            Reply::Bool(b) => ffi::lua_pushnumber(state, if *b { 1.0 } else { 0.0 }),
            Reply::BigNumber(n) => {
                ffi::lua_createtable(state, 0, 1);
                push_bytes(state, n.as_bytes());
                ffi::lua_setfield(state, -2, c"big_number".as_ptr());
            }
            Reply::Verbatim(fmt, text) => {
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_createtable(state, 0, 2);
                push_bytes(state, fmt.as_bytes());
                ffi::lua_setfield(state, -2, c"format".as_ptr());
                push_bytes(state, text);
                ffi::lua_setfield(state, -2, c"string".as_ptr());
                ffi::lua_setfield(state, -2, c"verbatim_string".as_ptr());
            }
        }
    }
}

/// A reply that becomes `nil` in RESP3 (and cannot be a table key).
fn is_null(r: &Reply) -> bool {
    matches!(r, Reply::Nil | Reply::NilArray | Reply::NoReply)
}

/// # Safety
/// As `push_reply`.
unsafe fn push_null(state: *mut ffi::lua_State, resp: u8) {
    // SAFETY: per the function's contract (space checked by the caller).
    unsafe {
        if resp >= 3 {
            ffi::lua_pushnil(state)
        } else {
            ffi::lua_pushboolean(state, 0)
        }
    }
}

/// # Safety
/// As `push_reply`.
unsafe fn push_array(state: *mut ffi::lua_State, items: &[Reply], resp: u8) {
    // SAFETY: per the function's contract (space checked by the caller).
    unsafe {
        ffi::lua_createtable(state, items.len().min(i32::MAX as usize) as c_int, 0);
        for (i, item) in items.iter().enumerate() {
            push_reply(state, item, resp);
            ffi::lua_rawseti_(state, -2, (i + 1).min(i32::MAX as usize) as c_int);
        }
    }
}

/// Pushes `b` as a Lua string.
///
/// # Safety
/// `state` is valid with one free stack slot.
pub(crate) unsafe fn push_bytes(state: *mut ffi::lua_State, b: &[u8]) {
    // SAFETY: per the function's contract; `b` is valid for its length.
    unsafe {
        ffi::lua_pushlstring(state, b.as_ptr() as *const c_char, b.len());
    }
}

/// Pushes `{err = text, ignore_error_stats_update = true}`: the error of a
/// command a script ran, which was counted in the statistics already.
///
/// # Safety
/// As `push_reply`, with 3 free stack slots.
pub(crate) unsafe fn push_command_error(state: *mut ffi::lua_State, text: &[u8]) {
    // SAFETY: per the function's contract.
    unsafe {
        ffi::lua_createtable(state, 0, 2);
        push_bytes(state, text);
        ffi::lua_setfield(state, -2, c"err".as_ptr());
        ffi::lua_pushboolean(state, 1);
        ffi::lua_setfield(state, -2, c"ignore_error_stats_update".as_ptr());
    }
}

/// A command's error reply as a script sees it: Redis puts the reply's `-`
/// back in front and normalizes (`normalize_error_bytes`).
pub fn command_error(text: &[u8]) -> Vec<u8> {
    let mut dashed = Vec::with_capacity(text.len() + 1);
    dashed.push(b'-');
    dashed.extend_from_slice(text);
    normalize_error_bytes(&dashed)
}

/// `{err=...}`, as `redis.error_reply` builds it.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set("err", lua.create_string(normalize_error_bytes(text))?)?;
    Ok(t)
}

/// Redis's Lua C stack limit (`LUAI_MAXCSTACK`). Converting a script's
/// result, Redis reserves 4 slots per nesting level and answers an element
/// it has no room for with `reached lua stack limit` instead.
const MAX_C_STACK: i32 = 8000;
const RESERVE: i32 = 4;
/// The stack depth at Redis's result: its error handler, then the result.
const ROOT_DEPTH: i32 = 2;
/// Beyond Redis: how many elements a result may write from tables it
/// reaches again (a table in itself twice, or one shared many times, makes
/// a reply exponentially large: Redis builds it until memory runs out).
const REPEAT_BUDGET: u64 = 65_536;
/// The reply when that budget runs out.
const REPEAT_ERROR: &str = "ERR reply too large: the script's result repeats its tables too often";

/// A script's result as the reply Redis 7.0 sends. `script_resp` is the
/// script's `redis.setresp` version (how booleans come out), `client_resp`
/// the caller's protocol. `on_error` sees each error reply the result holds
/// (its text and whether it carries `ignore_error_stats_update`).
///
/// Scalars and a top-level error become the plain `Reply`; any other table
/// is written in wire form without recursion (`Reply::Encoded`), so nesting
/// is bounded only by Redis's own stack rule.
pub fn script_reply(
    lua: &Lua,
    v: &Value,
    script_resp: u8,
    client_resp: u8,
    on_error: &mut dyn FnMut(&[u8], bool),
) -> Reply {
    match v {
        Value::String(s) => return Reply::Bulk(bytes::Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) => return bool_reply(*b, script_resp),
        Value::Integer(i) => return Reply::Int(*i),
        Value::Number(n) => return Reply::Int(c_cast(*n)),
        Value::Table(_) => {}
        _ => return Reply::Nil,
    }
    let mut w = Walk {
        script_resp,
        client_resp,
        out: Vec::new(),
        frames: Vec::new(),
        top_error: None,
        seen: ahash::AHashSet::new(),
        repeating: 0,
        budget: REPEAT_BUDGET,
        on_error,
    };
    // SAFETY: `walk` runs inside mlua's protected call with the result at
    // index 1. It keeps nothing that needs dropping in its own frames (all
    // state is in `w`, borrowed), so an error Lua raises (out of memory)
    // jumps over plain frames only and comes back here as `Err`.
    let r = unsafe { lua.exec_raw::<()>(v.clone(), |state| walk(state, &mut w)) };
    match r {
        Err(e) => Reply::err(format!("Error running script: {e}")),
        Ok(()) if w.budget == 0 => {
            (w.on_error)(REPEAT_ERROR.as_bytes(), false);
            Reply::error(REPEAT_ERROR)
        }
        Ok(()) => match w.top_error.take() {
            Some(text) => Reply::error_from_bytes(text),
            None => Reply::Encoded(bytes::Bytes::from(w.out)),
        },
    }
}

/// `script_reply` for a client speaking the script's protocol, ignoring
/// error statistics (tests and the fuzz harness).
pub fn lua_to_reply(lua: &Lua, v: &Value, resp: u8) -> Reply {
    script_reply(lua, v, resp, resp, &mut |_, _| {})
}

fn bool_reply(b: bool, script_resp: u8) -> Reply {
    if script_resp >= 3 {
        Reply::Bool(b)
    } else if b {
        Reply::Int(1)
    } else {
        Reply::Nil
    }
}

/// C's `(long long)` cast of a double as x86-64 performs it (Redis replies
/// with that): out-of-range and NaN become i64::MIN.
pub fn c_cast(n: f64) -> i64 {
    if n.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

struct Walk<'a> {
    script_resp: u8,
    client_resp: u8,
    out: Vec<u8>,
    frames: Vec<Frame>,
    /// The result itself is an error table: its text.
    top_error: Option<Vec<u8>>,
    /// Tables written so far (by address), to tell when one comes again.
    seen: ahash::AHashSet<usize>,
    /// Open frames of tables met before.
    repeating: u32,
    /// Elements left to write inside those (`REPEAT_BUDGET`); 0 stops.
    budget: u64,
    on_error: &'a mut dyn FnMut(&[u8], bool),
}

#[derive(Clone, Copy)]
enum Kind {
    /// The next index to read.
    Array(i64),
    /// Whether the pair's value (on the stack top) is next, else its key.
    Map(bool),
    Set,
}

/// A table being written: where it is on the stack, and Redis's stack depth
/// at it (which decides when its elements run out of room).
#[derive(Clone, Copy)]
struct Frame {
    kind: Kind,
    depth: i32,
    /// Stack index of the table iterated.
    table: i32,
    /// First stack slot to drop when the table is done.
    base: i32,
    /// The table was written before in this result.
    repeat: bool,
}

impl Walk<'_> {
    fn push_frame(&mut self, state: *mut ffi::lua_State, kind: Kind, depth: i32, table: i32, base: i32) {
        // SAFETY: `table` is a valid index of a table; only its address is read.
        let addr = unsafe { ffi::lua_topointer(state, table) } as usize;
        let repeat = !self.seen.insert(addr);
        self.repeating += repeat as u32;
        self.frames.push(Frame { kind, depth, table, base, repeat });
    }

    fn pop_frame(&mut self) {
        if let Some(f) = self.frames.pop() {
            self.repeating -= f.repeat as u32;
        }
    }

    fn leaf(&mut self, r: Reply) {
        r.encode(self.client_resp, &mut self.out);
    }

    fn error(&mut self, text: &[u8], ignore_stats: bool) {
        let text = crate::protocol::c_str(text);
        (self.on_error)(text, ignore_stats);
        Reply::ErrorBytes(bytes::Bytes::copy_from_slice(text)).encode(self.client_resp, &mut self.out);
    }
}

/// Pushes the string `k`.
///
/// # Safety
/// `state` is valid with a free slot (Lua may raise out of memory).
unsafe fn push_key(state: *mut ffi::lua_State, k: &[u8]) {
    // SAFETY: per the function's contract.
    unsafe {
        ffi::lua_pushlstring(state, k.as_ptr() as *const c_char, k.len());
    }
}

/// The raw field `k` of the table at `idx`, pushed.
///
/// # Safety
/// As `push_key`; `idx` is an absolute index of a table.
unsafe fn raw_field(state: *mut ffi::lua_State, idx: i32, k: &[u8]) -> c_int {
    // SAFETY: per the function's contract.
    unsafe {
        push_key(state, k);
        ffi::lua_rawget(state, idx);
        ffi::lua_type(state, -1)
    }
}

/// The bytes of the string at `idx` (valid while it stays on the stack).
///
/// # Safety
/// The value at `idx` is a string.
unsafe fn string_at<'s>(state: *mut ffi::lua_State, idx: i32) -> &'s [u8] {
    let mut len = 0usize;
    // SAFETY: a string value: `lua_tolstring` neither converts nor allocates.
    unsafe {
        let p = ffi::lua_tolstring(state, idx, &mut len);
        std::slice::from_raw_parts(p as *const u8, len)
    }
}

/// Converts the result at index 1 (Redis's `luaReplyToRedisReply`, with an
/// explicit stack of frames instead of recursion).
///
/// # Safety
/// Inside a protected call, the result at index 1 and nothing above it.
unsafe fn walk(state: *mut ffi::lua_State, w: &mut Walk) {
    // SAFETY: per the function's contract; every push is preceded by a
    // stack check in `emit`, which reserves room for a level's work.
    unsafe {
        if ffi::lua_checkstack(state, RESERVE + 2) == 0 {
            w.error(b"ERR reached lua stack limit", false);
            return;
        }
        if let Some(text) = error_field(state, 1) {
            // A top-level error stays a plain error reply.
            let flagged = ignore_stats(state, 1);
            let text = crate::protocol::c_str(text).to_vec();
            (w.on_error)(&text, flagged);
            w.top_error = Some(text);
            return;
        }
        emit(state, ROOT_DEPTH, w);
        while let Some(i) = w.frames.len().checked_sub(1) {
            if w.budget == 0 {
                break;
            }
            let f = w.frames[i];
            match f.kind {
                Kind::Array(next) => {
                    ffi::lua_rawgeti(state, f.table, next as _);
                    if ffi::lua_type(state, -1) == ffi::LUA_TNIL {
                        ffi::lua_settop(state, f.base - 1);
                        w.pop_frame();
                        continue;
                    }
                    w.frames[i].kind = Kind::Array(next + 1);
                    emit(state, f.depth + 1, w);
                }
                Kind::Map(true) => {
                    w.frames[i].kind = Kind::Map(false);
                    emit(state, f.depth + 3, w);
                }
                Kind::Map(false) => {
                    if ffi::lua_next(state, f.table) == 0 {
                        ffi::lua_settop(state, f.base - 1);
                        w.pop_frame();
                        continue;
                    }
                    w.frames[i].kind = Kind::Map(true);
                    ffi::lua_pushvalue(state, -2);
                    emit(state, f.depth + 4, w);
                }
                Kind::Set => {
                    if ffi::lua_next(state, f.table) == 0 {
                        ffi::lua_settop(state, f.base - 1);
                        w.pop_frame();
                        continue;
                    }
                    ffi::lua_pop(state, 1);
                    ffi::lua_pushvalue(state, -1);
                    emit(state, f.depth + 3, w);
                }
            }
        }
        ffi::lua_settop(state, 0);
    }
}

/// The `err` string of the table at `idx`, if it is one (leaves the stack as it was).
///
/// # Safety
/// As `raw_field`; the result borrows a string the table holds.
unsafe fn error_field<'s>(state: *mut ffi::lua_State, idx: i32) -> Option<&'s [u8]> {
    // SAFETY: per the function's contract. The string stays alive while the
    // table (below it on the stack) holds it.
    unsafe {
        if ffi::lua_type(state, idx) != ffi::LUA_TTABLE {
            return None;
        }
        let t = raw_field(state, idx, b"err");
        let text = (t == ffi::LUA_TSTRING).then(|| string_at(state, -1));
        ffi::lua_pop(state, 1);
        text
    }
}

/// Whether the error table at `idx` says its error was counted already.
///
/// # Safety
/// As `raw_field`.
unsafe fn ignore_stats(state: *mut ffi::lua_State, idx: i32) -> bool {
    // SAFETY: per the function's contract.
    unsafe {
        let t = raw_field(state, idx, b"ignore_error_stats_update");
        let on = t == ffi::LUA_TBOOLEAN && ffi::lua_toboolean(state, -1) != 0;
        ffi::lua_pop(state, 1);
        on
    }
}

/// Writes the value on the stack top, found at Redis's stack depth `depth`,
/// and pops it; a table to iterate stays on the stack as a new frame.
///
/// # Safety
/// As `walk`.
unsafe fn emit(state: *mut ffi::lua_State, depth: i32, w: &mut Walk) {
    // SAFETY: per the function's contract; `RESERVE` slots are checked
    // before anything is pushed, and a level pushes at most that many.
    unsafe {
        if w.repeating > 0 {
            if w.budget == 0 {
                ffi::lua_pop(state, 1);
                return;
            }
            w.budget -= 1;
        }
        if depth + RESERVE > MAX_C_STACK || ffi::lua_checkstack(state, RESERVE) == 0 {
            w.error(b"ERR reached lua stack limit", false);
            ffi::lua_pop(state, 1);
            return;
        }
        let idx = ffi::lua_gettop(state);
        match ffi::lua_type(state, idx) {
            ffi::LUA_TSTRING => {
                let b = string_at(state, idx);
                push_bulk(&mut w.out, b);
            }
            ffi::LUA_TBOOLEAN => w.leaf(bool_reply(ffi::lua_toboolean(state, idx) != 0, w.script_resp)),
            ffi::LUA_TNUMBER => w.leaf(Reply::Int(c_cast(ffi::lua_tonumber(state, idx)))),
            ffi::LUA_TTABLE => {
                if table(state, idx, depth, w) {
                    return;
                }
            }
            _ => w.leaf(Reply::Nil),
        }
        ffi::lua_settop(state, idx - 1);
    }
}

/// A copy of `b` with CR and LF turned into spaces (as Redis sanitizes
/// status and big number texts).
fn no_newlines(b: &[u8]) -> Vec<u8> {
    b.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect()
}

/// Writes the table at `idx` (the stack top). True when it opened a frame
/// (the table stays on the stack); false when it was written whole.
///
/// # Safety
/// As `emit`, with `RESERVE` free slots.
unsafe fn table(state: *mut ffi::lua_State, idx: i32, depth: i32, w: &mut Walk) -> bool {
    // SAFETY: per the function's contract; each branch pops what it pushed
    // (at most `RESERVE` values at a time).
    unsafe {
        if let Some(text) = error_field(state, idx) {
            let flagged = ignore_stats(state, idx);
            w.error(text, flagged);
            return false;
        }
        if raw_field(state, idx, b"ok") == ffi::LUA_TSTRING {
            let text = no_newlines(crate::protocol::c_str(string_at(state, -1)));
            w.out.push(b'+');
            w.out.extend_from_slice(&text);
            w.out.extend_from_slice(b"\r\n");
            ffi::lua_pop(state, 1);
            return false;
        }
        ffi::lua_pop(state, 1);
        if raw_field(state, idx, b"double") == ffi::LUA_TNUMBER {
            let d = ffi::lua_tonumber(state, -1);
            ffi::lua_pop(state, 1);
            w.leaf(Reply::Double(d));
            return false;
        }
        ffi::lua_pop(state, 1);
        if raw_field(state, idx, b"big_number") == ffi::LUA_TSTRING {
            let text = no_newlines(string_at(state, -1));
            ffi::lua_pop(state, 1);
            if w.client_resp >= 3 {
                w.out.push(b'(');
                w.out.extend_from_slice(&text);
                w.out.extend_from_slice(b"\r\n");
            } else {
                push_bulk(&mut w.out, &text);
            }
            return false;
        }
        ffi::lua_pop(state, 1);
        if raw_field(state, idx, b"verbatim_string") == ffi::LUA_TTABLE {
            let v = ffi::lua_gettop(state);
            if raw_field(state, v, b"format") == ffi::LUA_TSTRING {
                if raw_field(state, v, b"string") == ffi::LUA_TSTRING {
                    let format = crate::protocol::c_str(string_at(state, -2));
                    let text = string_at(state, -1);
                    if w.client_resp >= 3 {
                        // Three bytes of the format, padded with spaces.
                        let mut ext = [b' '; 3];
                        for (d, s) in ext.iter_mut().zip(format) {
                            *d = *s;
                        }
                        push_header(&mut w.out, b'=', text.len() + 4);
                        w.out.extend_from_slice(&ext);
                        w.out.push(b':');
                        w.out.extend_from_slice(text);
                        w.out.extend_from_slice(b"\r\n");
                    } else {
                        push_bulk(&mut w.out, text);
                    }
                    ffi::lua_pop(state, 3);
                    return false;
                }
                ffi::lua_pop(state, 1);
            }
            ffi::lua_pop(state, 1);
        }
        ffi::lua_pop(state, 1);
        for (key, set) in [(&b"map"[..], false), (&b"set"[..], true)] {
            if raw_field(state, idx, key) == ffi::LUA_TTABLE {
                let t = idx + 1;
                let mut n = 0usize;
                ffi::lua_pushnil(state);
                while ffi::lua_next(state, t) != 0 {
                    ffi::lua_pop(state, 1);
                    n += 1;
                }
                let three = w.client_resp >= 3;
                match (set, three) {
                    (false, true) => push_header(&mut w.out, b'%', n),
                    (false, false) => push_header(&mut w.out, b'*', n * 2),
                    (true, true) => push_header(&mut w.out, b'~', n),
                    (true, false) => push_header(&mut w.out, b'*', n),
                }
                ffi::lua_pushnil(state);
                let kind = if set { Kind::Set } else { Kind::Map(false) };
                w.push_frame(state, kind, depth, t, idx);
                return true;
            }
            ffi::lua_pop(state, 1);
        }
        let mut n = 0usize;
        loop {
            ffi::lua_rawgeti(state, idx, (n + 1) as _);
            let nil = ffi::lua_type(state, -1) == ffi::LUA_TNIL;
            ffi::lua_pop(state, 1);
            if nil {
                break;
            }
            n += 1;
        }
        push_header(&mut w.out, b'*', n);
        w.push_frame(state, Kind::Array(1), depth, idx, idx);
        true
    }
}

/// Redis's normal form of an error text as a script receives it
/// (`luaPushErrorBuff`): "CODE message", with "ERR" as the code when the
/// text has no space, no CR/LF at the ends, and nothing after a NUL.
pub fn normalize_error_bytes(text: &[u8]) -> Vec<u8> {
    let text = crate::protocol::c_str(text);
    let trim = |m: &[u8]| -> Vec<u8> {
        let start = m.iter().position(|&c| c != b'\r' && c != b'\n').unwrap_or(m.len());
        let end = m.iter().rposition(|&c| c != b'\r' && c != b'\n').map_or(start, |e| e + 1);
        m[start..end.max(start)].to_vec()
    };
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&c| c == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    let mut out = code.to_vec();
    out.push(b' ');
    out.extend_from_slice(&trim(msg));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(r: &Reply, resp: u8) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(resp, &mut out);
        out
    }

    #[test]
    fn errors_normalized() {
        let n = |t: &str| String::from_utf8(command_error(t.as_bytes())).unwrap();
        assert_eq!(n("ERR foo bar"), "ERR foo bar");
        assert_eq!(n("bar"), "ERR bar");
        assert_eq!(n("WRONGTYPE x\r\n"), "WRONGTYPE x");
        assert_eq!(n("ERR a\0b"), "ERR a");
        assert_eq!(normalize_error_bytes(b"plain"), b"ERR plain");
        assert_eq!(normalize_error_bytes(b"-"), b"ERR ");
        assert_eq!(normalize_error_bytes(b"-FOO bar\r\n"), b"FOO bar");
    }

    #[test]
    fn casts() {
        assert_eq!(c_cast(3.99), 3);
        assert_eq!(c_cast(-3.7), -3);
        assert_eq!(c_cast(1e300), i64::MIN);
        assert_eq!(c_cast(f64::NAN), i64::MIN);
    }

    #[test]
    fn round_trip() {
        let lua = Lua::new();
        let r = Reply::Array(vec![Reply::Int(1), Reply::bulk_str("x"), Reply::Status("OK".into())]);
        let v = reply_to_lua(&lua, &r, 2).unwrap();
        assert_eq!(wire(&lua_to_reply(&lua, &v, 2), 2), wire(&r, 2));
        let m = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Double(1.5))]);
        let v = reply_to_lua(&lua, &m, 3).unwrap();
        assert_eq!(wire(&lua_to_reply(&lua, &v, 3), 3), wire(&m, 3));
        let v = reply_to_lua(&lua, &Reply::Array(vec![Reply::Double(1.5), Reply::Nil]), 2).unwrap();
        assert_eq!(wire(&lua_to_reply(&lua, &v, 2), 2), b"*2\r\n$3\r\n1.5\r\n$-1\r\n");
        let v = reply_to_lua(&lua, &Reply::Error("FOO bar".into()), 2).unwrap();
        assert_eq!(lua_to_reply(&lua, &v, 2), Reply::Error("FOO bar".into()));
    }

    /// Redis answers the element it has no stack room for with an error, at
    /// the depths its C stack rule gives: 7995 nested arrays, 2664 maps.
    #[test]
    fn deep_nesting_follows_the_stack_rule() {
        let lua = Lua::new();
        let t: Table = lua.load("local t = {} t[1] = t return t").eval().unwrap();
        let mut errors = 0;
        let r = script_reply(&lua, &Value::Table(t), 2, 2, &mut |text, flagged| {
            assert_eq!(text, b"ERR reached lua stack limit");
            assert!(!flagged);
            errors += 1;
        });
        let out = wire(&r, 2);
        assert_eq!(errors, 1);
        assert_eq!(out.len(), 7995 * 4 + 30);
        assert!(out.ends_with(b"*1\r\n-ERR reached lua stack limit\r\n"));
        let t: Value = lua.load("local t = 1 for i = 1, 3000 do t = {map = {k = t}} end return t").eval().unwrap();
        let out = wire(&lua_to_reply(&lua, &t, 3), 3);
        assert_eq!(out.len(), 2664 * 11 + 4 + 60);
        let t: Value = lua.load("local t = {} for i = 1, 100000 do t = {t} end return t").eval().unwrap();
        assert_eq!(wire(&lua_to_reply(&lua, &t, 2), 2).len(), 7995 * 4 + 30);
    }

    /// Beyond Redis, which builds such a reply until memory runs out.
    #[test]
    fn repeated_tables_are_bounded() {
        let lua = Lua::new();
        let v: Value = lua.load("local t = {} t[1] = t t[2] = t return t").eval().unwrap();
        assert_eq!(lua_to_reply(&lua, &v, 2), Reply::error(REPEAT_ERROR));
        let v: Value = lua.load("local t = {} for i = 1, 40 do t = {t, t} end return t").eval().unwrap();
        assert_eq!(lua_to_reply(&lua, &v, 3), Reply::error(REPEAT_ERROR));
        // Moderate sharing is written out as Redis writes it.
        let v: Value = lua.load("local r = {1, 2} return {r, r, r}").eval().unwrap();
        assert_eq!(
            wire(&lua_to_reply(&lua, &v, 2), 2),
            b"*3\r\n*2\r\n:1\r\n:2\r\n*2\r\n:1\r\n:2\r\n*2\r\n:1\r\n:2\r\n"
        );
    }

    #[test]
    fn leaves() {
        let lua = Lua::new();
        let conv = |src: &str, resp: u8| {
            let v: Value = lua.load(src).eval().unwrap();
            String::from_utf8_lossy(&wire(&lua_to_reply(&lua, &v, resp), resp)).into_owned()
        };
        assert_eq!(conv("return {double = -0.0}", 3), ",-0\r\n");
        assert_eq!(conv("return {double = 1e-300}", 3), ",1e-300\r\n");
        assert_eq!(conv("return {double = 0/0}", 2), "$4\r\n-nan\r\n");
        assert_eq!(conv("return {err = '-x'}", 2), "--x\r\n");
        assert_eq!(conv("return {err = 'x\\0y'}", 2), "-x\r\n");
        assert_eq!(conv("return {ok = 'a\\r\\nb\\0c'}", 2), "+a  b\r\n");
        assert_eq!(conv("return {verbatim_string = {format = 't', string = 'hi'}}", 3), "=6\r\nt  :hi\r\n");
        assert_eq!(conv("return {verbatim_string = {format = 'txt', string = 'hi'}}", 2), "$2\r\nhi\r\n");
        assert_eq!(conv("return {set = {a = true}, 1}", 2), "*1\r\n$1\r\na\r\n");
        assert_eq!(conv("return {1, {map = {}}, nil, 3}", 3), "*2\r\n:1\r\n%0\r\n");
    }
}
