//! Conversions between command replies and Lua values, as Redis 7.0 does
//! them for RESP2 and RESP3 (`redis.setresp`).

use crate::protocol::format_double;
use crate::protocol::Reply;
use mlua::{Lua, Table, Value};

/// Nesting beyond this is refused (a table may even contain itself).
const MAX_DEPTH: usize = 200;

/// Converts a command reply for a script speaking RESP `resp`. An error
/// reply becomes `{err=...}` (the caller decides whether to raise it).
pub fn reply_to_lua(lua: &Lua, r: &Reply, resp: u8) -> mlua::Result<Value> {
    Ok(match r {
        Reply::Status(s) => Value::Table(single(lua, "ok", lua.create_string(s.as_bytes())?)?),
        Reply::Error(e) => Value::Table(error_table(lua, e, true)?),
        Reply::Int(i) => Value::Number(*i as f64),
        Reply::Bulk(b) => Value::String(lua.create_string(b)?),
        Reply::Nil | Reply::NilArray | Reply::NoReply => null(resp),
        Reply::Array(items) | Reply::Push(items) | Reply::Multi(items) => array(lua, items, resp)?,
        Reply::Map(pairs) if resp >= 3 => {
            let t = lua.create_table_with_capacity(0, pairs.len())?;
            for (k, v) in pairs {
                let k = reply_to_lua(lua, k, resp)?;
                if !k.is_nil() {
                    t.raw_set(k, reply_to_lua(lua, v, resp)?)?;
                }
            }
            Value::Table(single(lua, "map", t)?)
        }
        Reply::Map(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                t.raw_set(i * 2 + 1, reply_to_lua(lua, k, resp)?)?;
                t.raw_set(i * 2 + 2, reply_to_lua(lua, v, resp)?)?;
            }
            Value::Table(t)
        }
        Reply::Set(items) if resp >= 3 => {
            let t = lua.create_table_with_capacity(0, items.len())?;
            for item in items {
                let k = reply_to_lua(lua, item, resp)?;
                if !k.is_nil() {
                    t.raw_set(k, true)?;
                }
            }
            Value::Table(single(lua, "set", t)?)
        }
        Reply::Set(items) => array(lua, items, resp)?,
        Reply::Double(d) if resp >= 3 => Value::Table(single(lua, "double", *d)?),
        Reply::Double(d) => Value::String(lua.create_string(format_double(*d))?),
        Reply::Bool(b) if resp >= 3 => Value::Boolean(*b),
        Reply::Bool(b) => Value::Number(if *b { 1.0 } else { 0.0 }),
        Reply::BigNumber(n) if resp >= 3 => Value::Table(single(lua, "big_number", lua.create_string(n)?)?),
        Reply::BigNumber(n) => Value::String(lua.create_string(n)?),
        Reply::Verbatim(fmt, text) if resp >= 3 => {
            let inner = lua.create_table_with_capacity(0, 2)?;
            inner.raw_set("format", *fmt)?;
            inner.raw_set("string", lua.create_string(text)?)?;
            Value::Table(single(lua, "verbatim_string", inner)?)
        }
        Reply::Verbatim(_, text) => Value::String(lua.create_string(text)?),
    })
}

fn null(resp: u8) -> Value {
    if resp >= 3 {
        Value::Nil
    } else {
        Value::Boolean(false)
    }
}

fn array(lua: &Lua, items: &[Reply], resp: u8) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, item, resp)?)?;
    }
    Ok(Value::Table(t))
}

fn single(lua: &Lua, key: &str, v: impl mlua::IntoLua) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set(key, v)?;
    Ok(t)
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

/// `{err=...}` for a command's error reply; `from_command` adds Redis's
/// `ignore_err_stats_update` marker (the error was already counted).
pub fn error_table(lua: &Lua, text: &str, from_command: bool) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 2)?;
    t.raw_set("err", normalize_error(text))?;
    if from_command {
        t.raw_set("ignore_err_stats_update", true)?;
    }
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
        let t: Table = lua.load("local t = {} t[1] = t return t").eval().unwrap();
        assert_eq!(lua_to_reply(&Value::Table(t), 2), Reply::err("reached lua stack limit"));
    }
}
