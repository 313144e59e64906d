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
        let (name, what) = match lua.inspect_stack(levels() as usize) {
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

// ---------------------------------------------------------------------------
// Numbers passed directly as arguments.
//
// mlua hands a Rust function its arguments already converted, and reads a
// number within f64::EPSILON of an integer as that integer (`-0.0` and
// `1e-300` arrive as 0). A function that must see the exact double
// (`cjson.encode(-0.0)`, `cmsgpack.pack(1e-300)`, `struct.pack('<d', -0.0)`)
// is registered behind a C closure: it notes the exact value of every such
// argument for the Rust function it then calls, which puts them back.
// Between the Rust function and its Lua caller there is then one more
// stack level (the closure), which `levels()` tells the code that names
// the caller (`luaL_argerror`'s function name, `luaL_where`'s position).

thread_local! {
    /// (1-based argument index, exact value), noted by the closure.
    static EXACT: std::cell::RefCell<Vec<(usize, f64)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Extra stack levels between the running Rust function and its caller.
    static LEVELS: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// Whether mlua reads `n` as an integer other than `n` itself (its
/// `stack_value` for Lua 5.1: a cast to i64 within EPSILON of `n`).
fn misread(n: f64) -> bool {
    let limit = 2f64.powi(63);
    if n.is_nan() || !(-limit..limit).contains(&n) {
        return false;
    }
    let i = n as i64 as f64;
    (n - i).abs() < f64::EPSILON && i.to_bits() != n.to_bits()
}

/// The C closure: notes the misread arguments, then calls its upvalue (the
/// Rust function) with the same arguments and returns what it returns. It
/// holds nothing that needs dropping across `lua_call`, which may longjmp.
unsafe extern "C-unwind" fn exact_closure(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    let n = ffi::lua_gettop(state);
    EXACT.with(|e| e.borrow_mut().clear());
    for i in 1..=n {
        if ffi::lua_type(state, i) == ffi::LUA_TNUMBER {
            let x = ffi::lua_tonumber(state, i);
            if misread(x) {
                EXACT.with(|e| e.borrow_mut().push((i as usize, x)));
            }
        }
    }
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, n, ffi::LUA_MULTRET);
    ffi::lua_gettop(state)
}

/// Stack levels to add when naming the caller of the running Rust function.
pub fn levels() -> i32 {
    LEVELS.with(|l| l.get())
}

/// While alive: the running Rust function sits behind `exact_closure`.
struct Behind;

impl Behind {
    fn enter() -> Behind {
        LEVELS.with(|l| l.set(l.get() + 1));
        Behind
    }
}

impl Drop for Behind {
    fn drop(&mut self) {
        LEVELS.with(|l| l.set(l.get() - 1));
    }
}

/// A library function `f` that receives numbers passed directly as their
/// exact doubles (see above).
pub fn exact_function<R, F>(lua: &Lua, f: F) -> mlua::Result<mlua::Function>
where
    R: mlua::IntoLuaMulti,
    F: Fn(&Lua, MultiValue) -> mlua::Result<R> + mlua::MaybeSend + 'static,
{
    let inner = lua.create_function(move |lua, mut args: MultiValue| {
        for (i, x) in EXACT.with(|e| std::mem::take(&mut *e.borrow_mut())) {
            if let Some(v @ Value::Integer(_)) = args.get_mut(i - 1) {
                *v = Value::Number(x);
            }
        }
        let _behind = Behind::enter();
        f(lua, args)
    })?;
    // SAFETY: the closure pops its one upvalue (the function pushed as the
    // argument) and pushes itself, which exec_raw returns.
    unsafe { lua.exec_raw::<mlua::Function>(inner, |state| mlua::ffi::lua_pushcclosure(state, exact_closure, 1)) }
}

/// Lua's `next(t, key)` with the key it returns exact: a number key that
/// mlua would read as 0 (`t[-0.0]`, `t[1e-300]`) comes back as its double,
/// so it is written as Redis writes it and the walk can go on from it.
pub fn next_exact(lua: &Lua, t: &mlua::Table, key: Value) -> mlua::Result<(Value, Value)> {
    // SAFETY: the closure runs in a protected call with the table and key
    // on the stack; it holds nothing that needs dropping if lua_next raises.
    let (k, v, bits): (Value, Value, Option<mlua::String>) = unsafe {
        lua.exec_raw((t.clone(), key), |state| {
            use mlua::ffi;
            if ffi::lua_next(state, 1) != 0 && ffi::lua_type(state, -2) == ffi::LUA_TNUMBER {
                let x = ffi::lua_tonumber(state, -2);
                if misread(x) {
                    let b = x.to_le_bytes();
                    ffi::lua_pushlstring(state, b.as_ptr().cast(), b.len());
                }
            }
            ffi::lua_remove(state, 1);
        })
    }?;
    let k = match bits.and_then(|b| <[u8; 8]>::try_from(&b.as_bytes()[..]).ok()) {
        Some(b) => Value::Number(f64::from_le_bytes(b)),
        None => k,
    };
    Ok((k, v))
}

#[cfg(test)]
mod exact_tests {
    use super::misread;

    #[test]
    fn misread_numbers() {
        // Only (-EPSILON, EPSILON) is misread: next to ±1 the cast truncates
        // toward zero, or the distance reaches EPSILON.
        for n in [-0.0, 1e-300, -1e-300, 2e-16, -2e-16, 5e-324] {
            assert!(misread(n), "{n:e}");
        }
        let (up, down) = (1.0 + f64::EPSILON, 1.0 - f64::EPSILON / 2.0);
        for n in [0.0, 1.0, -1.0, up, down, -up, 3.5, 1e300, f64::NAN, f64::INFINITY, 0.5, 1e-15] {
            assert!(!misread(n), "{n:e}");
        }
    }
}
