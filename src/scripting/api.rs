//! The `redis` table scripts see (everything but `redis.call`'s command
//! execution, which lives in call.rs).

use super::call::{self, with_run};
use mlua::{Lua, MultiValue, Table, Value};

/// An error that already carries its Redis error code ("ERR ...",
/// "WRONGTYPE ..."): raised as is, without another "ERR ".
#[derive(Debug)]
pub struct CodedError(pub String);

impl std::fmt::Display for CodedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodedError {}

pub fn coded(text: impl Into<String>) -> mlua::Error {
    mlua::Error::external(CodedError(text.into()))
}

/// "file:line: " of the Lua code calling the running Rust function, as
/// `luaL_where(L, 1)` gives it (empty when the caller is not Lua).
pub fn lua_where(lua: &Lua) -> String {
    match lua.inspect_stack(1) {
        Some(d) => {
            let line = d.curr_line();
            if line > 0 {
                let src = d.source().short_src.map(|s| s.into_owned()).unwrap_or_default();
                format!("{src}:{line}: ")
            } else {
                String::new()
            }
        }
        None => String::new(),
    }
}

/// A Lua runtime error located at the caller, like `luaL_error`.
pub fn lua_error(lua: &Lua, msg: impl AsRef<str>) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{}{}", lua_where(lua), msg.as_ref()))
}

/// `bad argument #n to 'f' (msg)`, like `luaL_argerror`.
pub fn arg_error(lua: &Lua, n: usize, f: &str, msg: &str) -> mlua::Error {
    lua_error(lua, format!("bad argument #{n} to '{f}' ({msg})"))
}

/// Lua's name for a value's type, for argument errors.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

pub fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    // SAFETY: both are C functions with the signature Lua expects.
    t.raw_set("call", unsafe { lua.create_c_function(call::redis_call) }?)?;
    t.raw_set("pcall", unsafe { lua.create_c_function(call::redis_pcall) }?)?;
    t.raw_set("error_reply", lua.create_function(error_reply)?)?;
    t.raw_set("status_reply", lua.create_function(status_reply)?)?;
    t.raw_set("sha1hex", lua.create_function(sha1hex)?)?;
    t.raw_set("log", lua.create_function(log)?)?;
    t.raw_set("setresp", lua.create_function(setresp)?)?;
    t.raw_set("set_repl", lua.create_function(set_repl)?)?;
    t.raw_set("acl_check_cmd", lua.create_function(acl_check_cmd)?)?;
    for (name, v) in [("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3)] {
        t.raw_set(name, v)?;
    }
    for (name, v) in [("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3)] {
        t.raw_set(name, v)?;
    }
    t.raw_set("REDIS_VERSION", crate::REDIS_VERSION)?;
    t.raw_set("REDIS_VERSION_NUM", version_num(crate::REDIS_VERSION))?;
    Ok(t)
}

fn version_num(v: &str) -> i64 {
    v.split('.').take(3).fold(0, |acc, p| acc * 256 + p.parse::<i64>().unwrap_or(0))
}

/// `redis.error_reply(text)`: `{err = ...}` normalized as Redis does; the
/// wrong argument gives an error table back rather than raising.
fn error_reply(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    let text = match (args.len(), args.front()) {
        (1, Some(Value::String(s))) => {
            let s = s.as_bytes();
            if s.first() == Some(&b'-') {
                s.to_vec()
            } else {
                [&b"-"[..], &s].concat()
            }
        }
        _ => b"wrong number or type of arguments".to_vec(),
    };
    Ok(Value::Table(super::convert::error_table(lua, &text)?))
}

/// `redis.status_reply(text)`: `{ok = text}`, or an error table back.
fn status_reply(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    match (args.len(), args.front()) {
        (1, Some(Value::String(s))) => {
            let t = lua.create_table_with_capacity(0, 1)?;
            t.raw_set("ok", s.clone())?;
            Ok(Value::Table(t))
        }
        _ => Ok(Value::Table(super::convert::error_table(lua, b"wrong number or type of arguments")?)),
    }
}

/// C's `(int) lua_tonumber(v)`: numbers and numeric strings, 0 otherwise.
fn to_int(lua: &Lua, v: Option<&Value>) -> i64 {
    let n = v.and_then(|v| lua.coerce_number(v.clone()).ok().flatten()).unwrap_or(0.0);
    if n.is_nan() {
        i64::MIN
    } else {
        n as i64
    }
}

fn sha1hex(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    if args.len() != 1 {
        return Err(coded("ERR wrong number of arguments"));
    }
    let data = match args.front() {
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Integer(_))) => {
            lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    Ok(Value::String(lua.create_string(super::cache::sha1_hex(&data))?))
}

fn log(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() < 2 {
        return Err(coded("ERR redis.log() requires two arguments or more."));
    }
    if args.front().and_then(|v| lua.coerce_number(v.clone()).ok().flatten()).is_none() {
        return Err(coded("ERR First argument must be a number (log level)."));
    }
    let level = to_int(lua, args.front());
    if !(0..=3).contains(&level) {
        return Err(coded("ERR Invalid debug level."));
    }
    let mut parts = Vec::new();
    for v in args.iter().skip(1) {
        if let Some(s) = lua.coerce_string(v.clone())? {
            parts.push(s.to_string_lossy());
        }
    }
    // The server's own log, at the script's level (as Redis's serverLog).
    let level = ["debug", "verbose", "notice", "warning"][level as usize];
    let line = parts.join(" ");
    if with_run(|run| crate::net::listener::log(run.server, level, &line)).is_none() {
        // Library code being loaded (FUNCTION LOAD) runs outside a script
        // run: its lines go to stderr.
        eprintln!("{line}");
    }
    Ok(())
}

fn setresp(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() != 1 {
        return Err(coded("ERR redis.setresp() requires one argument."));
    }
    let v = to_int(lua, args.front());
    if v != 2 && v != 3 {
        return Err(coded("ERR RESP version must be 2 or 3."));
    }
    with_run(|run| run.resp = v as u8);
    Ok(())
}

fn set_repl(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() != 1 {
        // Redis's text, though one argument is what it wants.
        return Err(coded("ERR redis.set_repl() requires two arguments."));
    }
    let v = to_int(lua, args.front());
    if v & !3 != 0 {
        return Err(coded("ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."));
    }
    Ok(())
}

/// `redis.acl_check_cmd(command, ...)`: its arguments are checked as
/// `redis.call`'s, then the command (or subcommand) must exist; true when
/// the script's user may run it with those arguments.
fn acl_check_cmd(_: &Lua, args: MultiValue) -> mlua::Result<bool> {
    if args.is_empty() {
        return Err(coded("ERR Please specify at least one argument for this redis lib call"));
    }
    let mut argv = Vec::with_capacity(args.len());
    for v in args.iter() {
        match v {
            Value::String(s) => argv.push(bytes::Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(i) => argv.push(bytes::Bytes::from(crate::protocol::format_double(*i as f64))),
            Value::Number(n) => argv.push(bytes::Bytes::from(crate::protocol::format_double(*n))),
            _ => return Err(coded("ERR Lua redis lib command arguments must be strings or integers")),
        }
    }
    if !super::call::command_exists(&argv) {
        return Err(coded("ERR Invalid command passed to redis.acl_check_cmd()"));
    }
    Ok(super::call::acl_allows(&argv))
}

#[cfg(test)]
mod tests {
    #[test]
    fn version() {
        assert_eq!(super::version_num("7.0.15"), 458767);
    }
}
