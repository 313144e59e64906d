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
        refuse_view_else_original(state)
    }
}

/// After a builtin's argument checks: refused (read-only) when its first
/// argument is a view, else the original builtin.
unsafe fn refuse_view_else_original(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `read_through`: called from a builtin's C frame on `state`.
    unsafe {
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
        refuse_view_else_original(state)
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

// The builtins the sandbox changes beyond table access, as C functions for
// the same reasons (names and positions in argument errors, the script's
// frame kept on a tail call). Upvalue 2 is again the original builtin.

/// What a protected call's failure must not hide: an out-of-memory error
/// ends the script, and so does a kill (rethrown past any pcall).
///
/// # Safety
/// Inside a C function called by Lua, with the call's results (first the
/// status boolean) the top `n` values.
unsafe fn rethrow_fatal(state: *mut ffi::lua_State, n: c_int) {
    // SAFETY: per the function's contract.
    unsafe {
        let base = ffi::lua_gettop(state) - n + 1;
        if n < 1 || ffi::lua_toboolean(state, base) != 0 {
            return;
        }
        if n >= 2 && ffi::lua_type(state, base + 1) == ffi::LUA_TSTRING {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(state, base + 1, &mut len);
            if !p.is_null() && std::slice::from_raw_parts(p as *const u8, len) == b"not enough memory" {
                let _ = std::panic::catch_unwind(super::vm::out_of_memory);
            }
        }
        if matches!(std::panic::catch_unwind(super::vm::aborted_message), Ok(Some(_))) {
            ffi::lua_pushnil(state);
            ffi::lua_error(state);
        }
    }
}

/// `xpcall(f, h)` and `coroutine.resume(co, ...)`: Lua's, then a kill or
/// an out-of-memory error inside goes on up instead of being returned.
unsafe extern "C-unwind" fn checked(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a closure made by `install`; the original
    // leaves its results on top of this frame.
    unsafe {
        let n = original(state);
        room(state);
        rethrow_fatal(state, n);
        n
    }
}

/// The lexer's refusal of a binary chunk: Redis's Lua parses every chunk as
/// text, so a chunk starting with ESC fails as a syntax error. One space in
/// front makes this Lua do the same (it reads the first byte to tell
/// bytecode from text) with the same message: no line changes.
const BINARY_LEAD: u8 = 27;

/// `loadstring(s [, name])`: Lua's, text only.
unsafe extern "C-unwind" fn loadstring(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a closure made by `install`; the string's
    // bytes stay valid while it is on the stack.
    unsafe {
        let mut len = 0usize;
        let s = ffi::luaL_checklstring(state, 1, &mut len);
        let name = ffi::luaL_optlstring(state, 2, s, std::ptr::null_mut());
        if len == 0 || *s as u8 != BINARY_LEAD {
            return original(state);
        }
        room(state);
        // The spaced copy is a Lua string on the stack: nothing of this
        // frame needs dropping if Lua raises.
        ffi::lua_pushstring(state, c" ".as_ptr());
        ffi::lua_pushvalue(state, 1);
        ffi::lua_concat(state, 2);
        let mut spaced_len = 0usize;
        let spaced = ffi::lua_tolstring(state, -1, &mut spaced_len);
        let status = ffi::luaL_loadbuffer(state, spaced, spaced_len, name);
        load_result(state, status)
    }
}

/// Lua's `load`/`loadstring` results: the function, or nil and the message.
///
/// # Safety
/// After a load that left its function or message on top.
unsafe fn load_result(state: *mut ffi::lua_State, status: c_int) -> c_int {
    // SAFETY: per the function's contract.
    unsafe {
        if status == 0 {
            return 1;
        }
        ffi::lua_pushnil(state);
        ffi::lua_insert(state, -2);
        2
    }
}

/// The reader `load` gives the parser: the script's function's pieces, and
/// a space before a first piece that starts as bytecode would.
struct Reader {
    /// Pieces read so far (0: the next is the first).
    pieces: usize,
    /// The first piece waits behind the space.
    held: bool,
}

unsafe extern "C-unwind" fn read_piece(
    state: *mut ffi::lua_State,
    data: *mut std::ffi::c_void,
    size: *mut usize,
) -> *const std::ffi::c_char {
    // SAFETY: `data` is `load`'s `Reader`, alive for the load; stack slot 1
    // holds the reader function and slot 3 keeps the current piece alive
    // (as Lua's own reader does). A Lua error in the function jumps out of
    // this frame, which owns nothing needing a drop.
    unsafe {
        let r = &mut *(data as *mut Reader);
        if r.held {
            r.held = false;
            let mut len = 0usize;
            let p = ffi::lua_tolstring(state, 3, &mut len);
            *size = len;
            return p;
        }
        ffi::luaL_checkstack(state, 2, c"too many nested functions".as_ptr());
        ffi::lua_pushvalue(state, 1);
        ffi::lua_call(state, 0, 1);
        if ffi::lua_type(state, -1) == ffi::LUA_TNIL {
            ffi::lua_pop(state, 1);
            *size = 0;
            return std::ptr::null();
        }
        if ffi::lua_isstring(state, -1) == 0 {
            ffi::luaL_error(state, c"reader function must return a string".as_ptr());
        }
        ffi::lua_replace(state, 3);
        let mut len = 0usize;
        let p = ffi::lua_tolstring(state, 3, &mut len);
        r.pieces += 1;
        if r.pieces == 1 && len > 0 && *p as u8 == BINARY_LEAD {
            r.held = true;
            *size = 1;
            return c" ".as_ptr();
        }
        *size = len;
        p
    }
}

/// `load(f [, name])`: Lua's, text only.
unsafe extern "C-unwind" fn load(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a closure made by `install`.
    unsafe {
        let name = ffi::luaL_optlstring(state, 2, c"=(load)".as_ptr(), std::ptr::null_mut());
        ffi::luaL_checktype(state, 1, ffi::LUA_TFUNCTION);
        ffi::lua_settop(state, 3);
        let mut r = Reader { pieces: 0, held: false };
        let status = ffi::lua_load(state, read_piece, &mut r as *mut Reader as *mut std::ffi::c_void, name);
        load_result(state, status)
    }
}

/// `pcall(f, ...)`, Redis's: Lua's protected call, where an error table
/// with a string (or number) `err` comes back as that value, and a kill, a
/// move to another shard or running out of memory cannot be caught. Called
/// without a function it fails as Redis's does (its placeholder for the
/// status is what gets called). Upvalue 1 turns an error object of a Rust
/// callback into its message.
unsafe extern "C-unwind" fn pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a closure made by `install_more`.
    unsafe {
        let argc = ffi::lua_gettop(state);
        room(state);
        if argc == 0 {
            ffi::lua_pushboolean(state, 0);
            ffi::lua_pushstring(state, c"attempt to call a boolean value".as_ptr());
            return 2;
        }
        ffi::lua_pushboolean(state, 1);
        ffi::lua_insert(state, 1);
        if ffi::lua_pcall(state, argc - 1, ffi::LUA_MULTRET, 0) == 0 {
            return ffi::lua_gettop(state);
        }
        // [placeholder, error]
        ffi::lua_remove(state, 1);
        ffi::lua_pushboolean(state, 0);
        ffi::lua_insert(state, 1);
        rethrow_fatal(state, 2);
        match ffi::lua_type(state, 2) {
            ffi::LUA_TTABLE => {
                ffi::lua_getfield(state, 2, c"err".as_ptr());
                if ffi::lua_isstring(state, -1) != 0 {
                    ffi::lua_replace(state, 2);
                } else {
                    ffi::lua_pop(state, 1);
                }
            }
            ffi::LUA_TUSERDATA => {
                ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
                ffi::lua_pushvalue(state, 2);
                ffi::lua_call(state, 1, 1);
                ffi::lua_replace(state, 2);
            }
            _ => {}
        }
        2
    }
}

/// `install_more(globals, coroutinelib, errmsg)`: the rest of this module's
/// builtins.
pub unsafe extern "C-unwind" fn install_more(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `install`.
    unsafe {
        for i in 1..=2 {
            ffi::luaL_checktype(state, i, ffi::LUA_TTABLE);
        }
        ffi::luaL_checktype(state, 3, ffi::LUA_TFUNCTION);
        ffi::lua_settop(state, 3);
        ffi::luaL_checkstack(state, 8, c"install".as_ptr());
        // Upvalue 1 (errmsg) serves pcall only.
        replace(state, 1, 3, c"pcall", pcall);
        replace(state, 1, 3, c"xpcall", checked);
        replace(state, 1, 3, c"loadstring", loadstring);
        replace(state, 1, 3, c"load", load);
        replace(state, 2, 3, c"resume", checked);
        0
    }
}
