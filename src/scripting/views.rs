//! The builtins that see through the sandbox's read-only views.
//!
//! Scripts reach the globals table and the libraries (`string`, `redis`,
//! `cjson` ...) through empty proxies whose metatable reads the real table
//! and refuses writes (the prelude's `readonly`). Redis 7.0 marks the real
//! tables read-only instead, so raw access sees their contents: `rawget(_G,
//! 'redis')`, `next(_G)`, `pairs(string)`, `table.foreach(math, f)`. These
//! replacements give the same view: a proxy given to them stands for the
//! table its metatable's `__index` reads, and raw writes to it (`rawset`,
//! `setmetatable`, `table.insert`) fail with Redis's error.
//!
//! They are C functions, as the builtins they replace: an argument error
//! names the function as the script called it and carries the script's
//! position, and a tail call to one keeps the script's frame, so an error
//! still ends with the `script: ..., on @user_script:N.` suffix. Each keeps
//! the original builtin as an upvalue and, past its own check, runs it on
//! its own frame (a plain C call, no Lua call in between).
//!
//! Upvalue 1 of each is the prelude's `protected` table: proxy -> its
//! metatable, which holds the proxied table at `__index` and what
//! `getmetatable` shows at `shown`.

use mlua::ffi;
use std::ffi::c_int;

/// The read-only error, raised as Redis raises it from a C function: no
/// position prefix.
///
/// # Safety
/// A valid state inside a C function called by Lua.
unsafe fn readonly_error(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: per the function's contract; `lua_error` does not return.
    unsafe {
        ffi::lua_pushstring(state, c"Attempt to modify a readonly table".as_ptr());
        ffi::lua_error(state)
    }
}

/// Pushes the metatable of the proxy at `idx` (from `protected`) and
/// returns true, or pushes nothing and returns false for any other value.
/// A table without a metatable, the common case, costs one check.
///
/// # Safety
/// Inside one of this module's closures, with 2 free stack slots.
unsafe fn push_view_meta(state: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: per the function's contract; reads only.
    unsafe {
        if ffi::lua_type(state, idx) != ffi::LUA_TTABLE || ffi::lua_getmetatable(state, idx) == 0 {
            return false;
        }
        ffi::lua_pop(state, 1);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(state, idx);
        ffi::lua_rawget(state, -2);
        if ffi::lua_type(state, -1) != ffi::LUA_TTABLE {
            ffi::lua_pop(state, 2);
            return false;
        }
        ffi::lua_remove(state, -2);
        true
    }
}

/// Replaces a proxy at `idx` (a positive index) with the table it shows.
///
/// # Safety
/// As `push_view_meta`.
unsafe fn unwrap_view(state: *mut ffi::lua_State, idx: c_int) {
    // SAFETY: per the function's contract.
    unsafe {
        if !push_view_meta(state, idx) {
            return;
        }
        ffi::lua_pushstring(state, c"__index".as_ptr());
        ffi::lua_rawget(state, -2);
        if ffi::lua_type(state, -1) == ffi::LUA_TTABLE {
            ffi::lua_replace(state, idx);
            ffi::lua_pop(state, 1);
        } else {
            ffi::lua_pop(state, 2);
        }
    }
}

/// Whether the value at `idx` is a read-only view.
///
/// # Safety
/// As `push_view_meta`.
unsafe fn is_view(state: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: per the function's contract.
    unsafe {
        let view = push_view_meta(state, idx);
        if view {
            ffi::lua_pop(state, 1);
        }
        view
    }
}

/// Runs the original builtin (upvalue 2) on this frame.
///
/// # Safety
/// Inside one of this module's closures.
unsafe fn original(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: upvalue 2 is the C function `install` found in the slot this
    // closure replaced; it runs with this frame's arguments as if called
    // directly (it uses no upvalues of its own).
    unsafe {
        match ffi::lua_tocfunction(state, ffi::lua_upvalueindex(2)) {
            Some(f) => f(state),
            None => 0,
        }
    }
}

/// Makes room for the helpers' pushes or raises Lua's stack error.
///
/// # Safety
/// A valid state inside a C function called by Lua.
unsafe fn room(state: *mut ffi::lua_State) {
    // SAFETY: per the function's contract.
    unsafe {
        ffi::luaL_checkstack(state, 4, c"too many arguments".as_ptr());
    }
}

/// `rawget(t, k)` and `next(t, k)`: on the table a view shows.
unsafe extern "C-unwind" fn read_through(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a closure made by `install`.
    unsafe {
        room(state);
        unwrap_view(state, 1);
        original(state)
    }
}

/// `table.foreach(t, f)`: walks the table a view shows.
unsafe extern "C-unwind" fn foreach(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `read_through`.
    unsafe { read_through(state) }
}

/// `pairs(t)`: this module's `next` (upvalue 1), t, nil.
unsafe extern "C-unwind" fn pairs(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as the closure `install` makes.
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
        room(state);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushnil(state);
        3
    }
}

/// `rawset(t, k, v)`: refused on a view, after Lua's own argument checks.
unsafe extern "C-unwind" fn rawset(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `read_through`.
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
        ffi::luaL_checkany(state, 2);
        ffi::luaL_checkany(state, 3);
        room(state);
        if is_view(state, 1) {
            return readonly_error(state);
        }
        original(state)
    }
}

/// `setmetatable(t, m)`: refused on a view, after the argument checks.
unsafe extern "C-unwind" fn setmetatable(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `read_through`.
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
        let t = ffi::lua_type(state, 2);
        if t != ffi::LUA_TNIL && t != ffi::LUA_TTABLE {
            return ffi::luaL_argerror(state, 2, c"nil or table expected".as_ptr());
        }
        room(state);
        if is_view(state, 1) {
            return readonly_error(state);
        }
        original(state)
    }
}

/// `getmetatable(v)`: a view shows the metatable its real table has in
/// Redis (the globals' one, or none).
unsafe extern "C-unwind" fn getmetatable(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `read_through`.
    unsafe {
        ffi::luaL_checkany(state, 1);
        room(state);
        if push_view_meta(state, 1) {
            ffi::lua_pushstring(state, c"shown".as_ptr());
            ffi::lua_rawget(state, -2);
            return 1;
        }
        original(state)
    }
}

/// `table.insert(t, [pos,] v)`: refused on a view once its arguments are
/// valid (a wrong count fails as in Lua).
unsafe extern "C-unwind" fn insert(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `read_through`.
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
        let n = ffi::lua_gettop(state);
        room(state);
        if (n == 2 || n == 3) && is_view(state, 1) {
            if n == 3 {
                ffi::luaL_checkinteger(state, 2);
            }
            return readonly_error(state);
        }
        original(state)
    }
}

/// Replaces `t[name]` (t at `idx`) with `f` closed over the `protected`
/// table (at `prot`) and the original value.
///
/// # Safety
/// Inside `install`, with 4 free stack slots; `idx` and `prot` positive.
unsafe fn replace(state: *mut ffi::lua_State, idx: c_int, prot: c_int, name: &std::ffi::CStr, f: ffi::lua_CFunction) {
    // SAFETY: per the function's contract.
    unsafe {
        ffi::lua_pushstring(state, name.as_ptr());
        ffi::lua_pushvalue(state, prot);
        ffi::lua_pushstring(state, name.as_ptr());
        ffi::lua_rawget(state, idx);
        ffi::lua_pushcclosure(state, f, 2);
        ffi::lua_rawset(state, idx);
    }
}

/// `install(protected, globals, tablelib)`, called once by the prelude
/// before any script runs: puts this module's builtins in place.
pub unsafe extern "C-unwind" fn install(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by the prelude with three tables; only pushes, raw
    // gets and raw sets after a stack check.
    unsafe {
        for i in 1..=3 {
            ffi::luaL_checktype(state, i, ffi::LUA_TTABLE);
        }
        ffi::lua_settop(state, 3);
        ffi::luaL_checkstack(state, 8, c"install".as_ptr());
        replace(state, 2, 1, c"rawget", read_through);
        replace(state, 2, 1, c"next", read_through);
        replace(state, 2, 1, c"rawset", rawset);
        replace(state, 2, 1, c"setmetatable", setmetatable);
        replace(state, 2, 1, c"getmetatable", getmetatable);
        replace(state, 3, 1, c"insert", insert);
        replace(state, 3, 1, c"foreach", foreach);
        // pairs hands out a `next` of its own (in Lua, and in Redis, not the
        // global one: `select(1, pairs({})) == next` is false).
        ffi::lua_pushstring(state, c"pairs".as_ptr());
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushstring(state, c"next".as_ptr());
        ffi::lua_rawget(state, 2);
        ffi::lua_getupvalue(state, -1, 2);
        ffi::lua_remove(state, -2);
        ffi::lua_pushcclosure(state, read_through, 2);
        ffi::lua_pushcclosure(state, pairs, 1);
        ffi::lua_rawset(state, 2);
        0
    }
}
