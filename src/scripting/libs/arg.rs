//! Argument checks for the Rust libraries, with the texts of Lua 5.1's
//! `luaL_check*` family ("bad argument #n to 'f' (...)").

use crate::scripting::api::{arg_error, lua_error, type_name};
use mlua::{Lua, MultiValue, Value};

/// The arguments of one library call and the function's name for errors.
pub struct Args<'a> {
    args: &'a MultiValue,
    name: &'static str,
}

impl<'a> Args<'a> {
    pub fn new(args: &'a MultiValue, name: &'static str) -> Args<'a> {
        Args { args, name }
    }

    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Argument `i` (1-based); None when absent.
    pub fn get(&self, i: usize) -> Option<&'a Value> {
        i.checked_sub(1).and_then(|i| self.args.get(i))
    }

    /// Nil or absent.
    pub fn is_nil(&self, i: usize) -> bool {
        matches!(self.get(i), None | Some(Value::Nil))
    }

    /// `luaL_argerror`: the function is named as the caller named it
    /// ("?" when it has no name, as under pcall), `self` not counted for a
    /// method call.
    pub fn error(&self, lua: &Lua, i: usize, msg: &str) -> mlua::Error {
        let (name, what) = match lua.inspect_stack(0) {
            Some(d) => {
                let n = d.names();
                (n.name.map(|s| s.into_owned()), n.name_what)
            }
            None => (Some(self.name.to_string()), None),
        };
        let name = name.unwrap_or_else(|| "?".to_string());
        if what == Some("method") {
            if i == 1 {
                return lua_error(lua, format!("calling '{name}' on bad self ({msg})"));
            }
            return arg_error(lua, i - 1, &name, msg);
        }
        arg_error(lua, i, &name, msg)
    }

    /// `luaL_typerror`: "<expected> expected, got <type>".
    pub fn type_error(&self, lua: &Lua, i: usize, expected: &str) -> mlua::Error {
        let got = self.get(i).map(type_name).unwrap_or("no value");
        self.error(lua, i, &format!("{expected} expected, got {got}"))
    }

    /// `lua_tonumber`: numbers and numeric strings; None for anything else.
    pub fn number_or_zero(&self, lua: &Lua, i: usize) -> mlua::Result<Option<f64>> {
        Ok(match self.get(i) {
            Some(v) => to_number(lua, v)?,
            None => None,
        })
    }

    /// `luaL_checknumber`.
    pub fn check_number(&self, lua: &Lua, i: usize) -> mlua::Result<f64> {
        match self.number_or_zero(lua, i)? {
            Some(n) => Ok(n),
            None => Err(self.type_error(lua, i, "number")),
        }
    }

    /// `luaL_checkinteger` (truncated toward zero, as lua_Integer casts).
    pub fn check_integer(&self, lua: &Lua, i: usize) -> mlua::Result<i64> {
        self.check_number(lua, i).map(c_integer)
    }

    /// `luaL_optinteger`.
    pub fn opt_integer(&self, lua: &Lua, i: usize, default: i64) -> mlua::Result<i64> {
        if self.is_nil(i) {
            Ok(default)
        } else {
            self.check_integer(lua, i)
        }
    }

    /// `luaL_checklstring`: strings, and numbers converted to strings.
    pub fn check_string(&self, lua: &Lua, i: usize) -> mlua::Result<mlua::String> {
        match self.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v @ (Value::Integer(_) | Value::Number(_))) => match lua.coerce_string(v.clone())? {
                Some(s) => Ok(s),
                None => Err(self.type_error(lua, i, "string")),
            },
            _ => Err(self.type_error(lua, i, "string")),
        }
    }
}

/// A Lua number as a double.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// `lua_tonumber` of any value.
pub fn to_number(lua: &Lua, v: &Value) -> mlua::Result<Option<f64>> {
    Ok(match v {
        Value::Integer(_) | Value::Number(_) => number(v),
        Value::String(_) => lua.coerce_number(v.clone())?,
        _ => None,
    })
}

/// C's conversion of a double to a 64-bit integer on x86-64: truncation,
/// and i64::MIN for NaN and out-of-range values.
pub fn c_integer(n: f64) -> i64 {
    crate::scripting::convert::c_cast(n)
}

/// mlua reads a number within f64::EPSILON of an integer as that integer:
/// -0.0 and 1e-300 as 0, 0.99999999999999989 as 1. Only 0 and ±1 have such
/// neighbours (the spacing of doubles reaches EPSILON at 1), so `v` read
/// from `t[k]` as one of those is read again exactly.
pub fn exact(v: Value, t: &mlua::Table, k: impl mlua::IntoLua) -> mlua::Result<Value> {
    if let Value::Integer(-1..=1) = v {
        // None when the value came from an __index metamethod: kept as read.
        if let Ok(Some(n)) = t.raw_get::<Option<f64>>(k) {
            if n.to_bits() != (n as i64 as f64).to_bits() {
                return Ok(Value::Number(n));
            }
        }
    }
    Ok(v)
}
