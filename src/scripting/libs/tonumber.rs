//! `tonumber`, as Lua 5.1's base library defines it, with a fast path for
//! the strings scripts convert most (`tonumber(ARGV[i])` of a plain
//! integer).
//!
//! Lua 5.1's own `tonumber` converts a string twice (`lua_isnumber`, then
//! `lua_tonumber`), each time with C's `strtod`: about 1,600 instructions
//! for `tonumber("2")`, the largest single cost of the seed script after
//! the commands themselves. A string that is only an optional `-` and 1 to
//! 15 decimal digits is converted here exactly (every such integer is a
//! double, and `strtod` yields that same double, `-0` included); anything
//! else takes Lua's own conversion, once. Argument checks and their error
//! texts are Lua's (`luaL_optinteger`, `luaL_checkany`, ...), raised from
//! this function, so the messages name `tonumber` as before.

use mlua::ffi;
use std::os::raw::c_int;

/// `tonumber(e [, base])`.
///
/// # Safety
/// Called by Lua as a C function with a valid state. The Lua errors it may
/// raise (`luaL_*` checks) jump over no Rust value that needs dropping.
pub unsafe extern "C-unwind" fn tonumber(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a valid state (the caller's contract); every index read is
    // checked by type first, and the pointers `lua_tolstring` returns stay
    // valid while the value is on the stack (it is not popped meanwhile).
    unsafe {
        // C's `(int)` cast of `luaL_optint`, as Lua 5.1 does.
        let base = ffi::luaL_optinteger(state, 2, 10) as c_int;
        if base == 10 {
            ffi::luaL_checkany(state, 1);
            match ffi::lua_type(state, 1) {
                ffi::LUA_TNUMBER => {
                    ffi::lua_pushvalue(state, 1);
                    return 1;
                }
                ffi::LUA_TSTRING => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(state, 1, &mut len);
                    let bytes = std::slice::from_raw_parts(p as *const u8, len);
                    if let Some(v) = plain_integer(bytes) {
                        ffi::lua_pushnumber(state, v);
                        return 1;
                    }
                    if ffi::lua_isnumber(state, 1) != 0 {
                        ffi::lua_pushnumber(state, ffi::lua_tonumber(state, 1));
                        return 1;
                    }
                }
                _ => {}
            }
        } else {
            let s1 = ffi::luaL_checklstring(state, 1, std::ptr::null_mut());
            if !(2..=36).contains(&base) {
                ffi::luaL_argerror(state, 2, c"base out of range".as_ptr());
            }
            let mut s2: *mut std::os::raw::c_char = std::ptr::null_mut();
            let n = libc::strtoul(s1, &mut s2, base);
            if !std::ptr::eq(s1, s2) {
                // Trailing C whitespace only, up to the first NUL.
                while matches!(*s2 as u8, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
                    s2 = s2.add(1);
                }
                if *s2 == 0 {
                    ffi::lua_pushnumber(state, n as ffi::lua_Number);
                    return 1;
                }
            }
        }
        ffi::lua_pushnil(state);
        1
    }
}

/// An optional `-` and 1 to 15 decimal digits, nothing else: the value
/// `strtod` gives (exact: below 2^53).
fn plain_integer(s: &[u8]) -> Option<f64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let v = n as f64;
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_integers_match_strtod() {
        for s in ["0", "-0", "7", "007", "-12", "999999999999999", "-999999999999999", "123456789012345"] {
            let v = plain_integer(s.as_bytes()).expect(s);
            let c = std::ffi::CString::new(s).expect("no NUL");
            // SAFETY: a NUL-terminated string and a null end pointer.
            let expected = unsafe { libc::strtod(c.as_ptr(), std::ptr::null_mut()) };
            assert_eq!(v.to_bits(), expected.to_bits(), "{s}");
        }
        for s in ["", "-", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "1234567890123456", "--1", "1\u{0}"] {
            assert_eq!(plain_integer(s.as_bytes()), None, "{s:?}");
        }
    }

    /// Lua's own `tonumber` and this one agree on every kind of argument,
    /// errors included (the same text, naming `tonumber`).
    #[test]
    fn agrees_with_lua_tonumber() {
        let lua = mlua::Lua::new();
        let original: mlua::Function = lua.globals().get("tonumber").expect("tonumber");
        // SAFETY: the function above, a C function reading its own arguments.
        let ours = unsafe { lua.create_c_function(tonumber) }.expect("create");
        let cases = [
            "'2'",
            "'-0'",
            "'  12  '",
            "'0x1F'",
            "'1e3'",
            "'abc'",
            "''",
            "'12\\0z'",
            "3.5",
            "nil",
            "{}",
            "true",
            "'ff', 16",
            "'zz', 36",
            "'8', 8",
            "'12 ', 3",
            "'1x', 16",
            "10, 2",
            "'7', 4294967306",
            "'1', 1",
            "'1', 37",
            "'1', 'x'",
            "",
            "'99999999999999999999'",
            "'-123456789012345'",
            "' -7'",
        ];
        for args in cases {
            let run = |name: &str, f: &mlua::Function| {
                lua.globals().set("tonumber", f.clone()).expect("set");
                let r: mlua::Result<mlua::Value> = lua.load(format!("return tonumber({args})")).set_name(name).eval();
                match r {
                    Ok(mlua::Value::Number(n)) => format!("number {:?}", n.to_bits()),
                    Ok(v) => format!("{v:?}"),
                    Err(e) => format!("error {}", e.to_string().lines().next().unwrap_or_default()),
                }
            };
            assert_eq!(run("=case", &ours), run("=case", &original), "tonumber({args})");
        }
    }
}
