//! Conversions between command replies and Lua values, as Redis 7.0 does
//! them for RESP2 and RESP3 (`redis.setresp`).

use crate::protocol::format_double;
use crate::protocol::Reply;
use mlua::{ffi, Lua, Table, Value};
use std::ffi::{c_char, c_int};

/// Nesting beyond this is refused (a table may even contain itself).
const MAX_DEPTH: usize = 200;

/// Rewrites a command reply into the shapes `push_reply` pushes as they
/// are: error texts normalized, and RESP3-only types a RESP2 script sees as
/// strings already formatted. Common replies pass through untouched.
pub fn prepare_for_lua(r: Reply, resp: u8) -> Reply {
    match r {
        Reply::Error(e) => Reply::Error(normalize_error(&e)),
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

/// The field an error table carries when its error was already counted in
/// errorstats (the command that failed counted it), as Redis names it.
pub const ERROR_COUNTED: &std::ffi::CStr = c"ignore_error_stats_update";

/// True when `v` is an error table whose error was already counted.
pub fn error_already_counted(v: &Value) -> bool {
    let Value::Table(t) = v else {
        return false;
    };
    let Ok(name) = ERROR_COUNTED.to_str() else {
        return false;
    };
    matches!(t.raw_get::<Value>("err"), Ok(Value::String(_)))
        && matches!(t.raw_get::<Value>(name), Ok(Value::Boolean(true)))
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
            Reply::Error(e) => {
                ffi::lua_createtable(state, 0, 2);
                push_bytes(state, e.as_bytes());
                ffi::lua_setfield(state, -2, c"err".as_ptr());
                // Counted in errorstats when the command failed: a script
                // returning it does not count it again (Redis's field).
                ffi::lua_pushboolean(state, 1);
                ffi::lua_setfield(state, -2, ERROR_COUNTED.as_ptr());
            }
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

/// Redis's normal form of an error text: "CODE message", with "ERR" as the
/// code when the text has no space, and no trailing newline.
pub fn normalize_error(text: &str) -> String {
    let text = text.strip_prefix('-').unwrap_or(text);
    let out = match text.split_once(' ') {
        Some((code, msg)) => format!("{code} {}", msg.trim_matches(|c| c == '\r' || c == '\n')),
        None => format!("ERR {}", text.trim_matches(|c| c == '\r' || c == '\n')),
    };
    out
}

/// `{err=...}`, as `redis.error_reply` builds it.
pub fn error_table(lua: &Lua, text: &str) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set("err", normalize_error(text))?;
    Ok(t)
}

/// Converts a script's return value into a reply (`resp` is the script's
/// `redis.setresp` version, which decides how booleans come out).
pub fn lua_to_reply(v: &Value, resp: u8) -> Reply {
    match to_reply(v, resp, 0) {
        Ok(r) => r,
        Err(()) => Reply::err("reached lua stack limit"),
    }
}

fn to_reply(v: &Value, resp: u8, depth: usize) -> Result<Reply, ()> {
    if depth > MAX_DEPTH {
        return Err(());
    }
    Ok(match v {
        Value::String(s) => Reply::Bulk(bytes::Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) => {
            if resp >= 3 {
                Reply::Bool(*b)
            } else if *b {
                Reply::Int(1)
            } else {
                Reply::Nil
            }
        }
        Value::Integer(i) => Reply::Int(*i),
        Value::Number(n) => Reply::Int(c_cast(*n)),
        Value::Table(t) => table_to_reply(t, resp, depth)?,
        _ => Reply::Nil,
    })
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

fn table_to_reply(t: &Table, resp: u8, depth: usize) -> Result<Reply, ()> {
    if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
        return Ok(Reply::Error(normalize_error_value(&e.to_string_lossy())));
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
        let s = s.to_string_lossy().replace(['\r', '\n'], " ");
        return Ok(Reply::Status(s.into()));
    }
    match t.raw_get::<Value>("double") {
        Ok(Value::Number(n)) => return Ok(Reply::Double(n)),
        Ok(Value::Integer(n)) => return Ok(Reply::Double(n as f64)),
        _ => {}
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("big_number") {
        return Ok(Reply::BigNumber(s.to_string_lossy().replace(['\r', '\n'], " ")));
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(f)), Ok(Value::String(s))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            let text = bytes::Bytes::copy_from_slice(&s.as_bytes());
            return Ok(match &*f.as_bytes() {
                b"txt" => Reply::Verbatim("txt", text),
                b"mkd" => Reply::Verbatim("mkd", text),
                _ => Reply::Bulk(text),
            });
        }
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let mut pairs = Vec::new();
        for kv in m.pairs::<Value, Value>() {
            let (k, v) = kv.map_err(|_| ())?;
            pairs.push((to_reply(&k, resp, depth + 1)?, to_reply(&v, resp, depth + 1)?));
        }
        return Ok(Reply::Map(pairs));
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        let mut items = Vec::new();
        for kv in s.pairs::<Value, Value>() {
            let (k, _) = kv.map_err(|_| ())?;
            items.push(to_reply(&k, resp, depth + 1)?);
        }
        return Ok(Reply::Set(items));
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_reply(&v, resp, depth + 1)?),
        }
    }
    Ok(Reply::Array(items))
}

/// A script's `{err=...}` is sent as its text; Redis only adds "ERR " when
/// the text is empty of a code... it sends it as given (sans leading '-').
fn normalize_error_value(text: &str) -> String {
    text.strip_prefix('-').unwrap_or(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_normalized() {
        assert_eq!(normalize_error("ERR foo bar"), "ERR foo bar");
        assert_eq!(normalize_error("-FOO bar"), "FOO bar");
        assert_eq!(normalize_error("bar"), "ERR bar");
        assert_eq!(normalize_error("WRONGTYPE x\r\n"), "WRONGTYPE x");
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
        assert_eq!(lua_to_reply(&v, 2), r);
        let m = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Double(1.5))]);
        let v = reply_to_lua(&lua, &m, 3).unwrap();
        assert_eq!(lua_to_reply(&v, 3), m);
        let v = reply_to_lua(&lua, &Reply::Array(vec![Reply::Double(1.5), Reply::Nil]), 2).unwrap();
        assert_eq!(lua_to_reply(&v, 2), Reply::Array(vec![Reply::bulk_str("1.5"), Reply::Nil]));
        let v = reply_to_lua(&lua, &Reply::Error("-FOO bar".into()), 2).unwrap();
        assert_eq!(lua_to_reply(&v, 2), Reply::Error("FOO bar".into()));
        let t: Table = lua.load("local t = {} t[1] = t return t").eval().unwrap();
        assert_eq!(lua_to_reply(&Value::Table(t), 2), Reply::err("reached lua stack limit"));
    }
}
