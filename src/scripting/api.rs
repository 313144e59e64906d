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
    t.raw_set("sha1hex", lua.create_function(sha1hex)?)?;
    t.raw_set("log", lua.create_function(log)?)?;
    t.raw_set("setresp", lua.create_function(setresp)?)?;
    t.raw_set("set_repl", lua.create_function(set_repl)?)?;
    t.raw_set("acl_check_cmd", lua.create_function(acl_check_cmd)?)?;
    t.raw_set("register_function", lua.create_function(super::functions::register_function)?)?;
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

fn error_reply(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    let msg = match (args.len(), args.front()) {
        (1, Some(Value::String(s))) => s.to_string_lossy(),
        _ => "wrong number or type of arguments".to_string(),
    };
    let text = if msg.starts_with('-') { msg } else { format!("-{msg}") };
    Ok(Value::Table(super::convert::error_table(lua, &text)?))
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
    let level = match args.front() {
        Some(Value::Number(n)) => *n as i64,
        Some(Value::Integer(n)) => *n,
        _ => return Err(coded("ERR First argument must be a number")),
    };
    if !(0..=3).contains(&level) {
        return Err(coded("ERR Invalid debug level."));
    }
    let mut parts = Vec::new();
    for v in args.iter().skip(1) {
        if let Some(s) = lua.coerce_string(v.clone())? {
            parts.push(s.to_string_lossy());
        }
    }
    let configured = with_run(|run| run.server.config.get("loglevel")).flatten().unwrap_or_default();
    let min = match configured.as_str() {
        "debug" => 0,
        "verbose" => 1,
        "notice" => 2,
        "warning" => 3,
        _ => 4,
    };
    if level >= min {
        eprintln!("moonshard lua: {}", parts.join(" "));
    }
    Ok(())
}

fn setresp(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() != 1 {
        return Err(coded("ERR redis.setresp() requires one argument."));
    }
    let v = match args.front() {
        Some(Value::Number(n)) => *n as i64,
        Some(Value::Integer(n)) => *n,
        _ => 0,
    };
    if v != 2 && v != 3 {
        return Err(coded("ERR RESP version must be 2 or 3."));
    }
    with_run(|run| run.resp = v as u8);
    Ok(())
}

fn set_repl(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() != 1 {
        return Err(coded("ERR redis.set_repl() requires one argument."));
    }
    let v = match args.front() {
        Some(Value::Number(n)) => *n as i64,
        Some(Value::Integer(n)) => *n,
        _ => -1,
    };
    if !(0..=3).contains(&v) {
        return Err(coded("ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."));
    }
    Ok(())
}

fn acl_check_cmd(lua: &Lua, args: MultiValue) -> mlua::Result<bool> {
    let Some(first) = args.front() else {
        return Err(coded("ERR Please specify at least one argument for this redis lib call"));
    };
    let name = lua.coerce_string(first.clone())?.map(|s| s.as_bytes().to_vec()).unwrap_or_default();
    if crate::commands::registry::lookup(&name).is_none() {
        return Err(coded("ERR Invalid command passed to redis.acl_check_cmd()"));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn version() {
        assert_eq!(super::version_num("7.0.15"), 458767);
    }
}
