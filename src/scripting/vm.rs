//! One sandboxed Lua 5.1 VM: creation, compiling scripts once, running them
//! with the kill/time hook.

use super::cache::Script;
use super::call::{self, with_run, Abort, Run};
use super::{bytecode, convert, libs};
use crate::protocol::Reply;
use ahash::AHashMap;
use mlua::{ffi, ChunkMode, Function, Lua, LuaOptions, StdLib, Table, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Instructions between two checks of the kill flag.
const HOOK_EVERY: u32 = 10_000;
/// After this long a script hands its worker thread's other tasks to a
/// fresh thread (see `hand_off`).
const HAND_OFF_AFTER_MS: u64 = 20;

const PRELUDE: &str = include_str!("prelude.lua");

pub struct Vm {
    pub lua: Lua,
    runner: Function,
    pub(crate) fn_runner: Function,
    /// Runs library code in the environment FUNCTION LOAD gives it.
    pub(crate) load_runner: Function,
    /// The real globals table (scripts see a read-only view of it).
    globals: Table,
    /// The prelude's error handler (what `runner` passes to `xpcall`).
    handler: mlua::RegistryKey,
    /// Runs a script with its KEYS and ARGV in one protected call (`enter_script`).
    entry: Function,
    /// The KEYS and ARGV tables of the last script, reused when clean.
    kv: KvCache,
    /// Compiled scripts by SHA. Kept as registry keys, not `Function`
    /// handles: each handle pins a slot of mlua's auxiliary stack (about
    /// 8000 slots), so thousands of distinct scripts would exhaust it.
    scripts: AHashMap<[u8; 40], mlua::RegistryKey>,
    /// The cache epoch the compiled set belongs to.
    pub epoch: u64,
    mem_limit: u64,
    /// Compiled functions of the loaded libraries, by function name.
    pub(crate) functions: AHashMap<String, mlua::RegistryKey>,
    /// The function registry version loaded into `functions`.
    pub(crate) fn_version: u64,
    /// Set after an out-of-memory error: the VM is replaced.
    pub broken: bool,
}

impl Vm {
    pub fn new(mem_limit: u64) -> mlua::Result<Vm> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: the debug library is needed by the prelude's error handler,
        // which keeps it in a local and removes it from the globals before
        // any script runs; no C module can be loaded (no package library).
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        let rng = Arc::new(AtomicU64::new(libs::random::INITIAL_STATE));
        let api = lua.create_table()?;
        api.raw_set("aborted", lua.create_function(|_, ()| Ok(aborted_message()))?)?;
        api.raw_set("errmsg", lua.create_function(|_, e: Value| Ok(error_message(&e)))?)?;
        api.raw_set("redis", super::api::redis_table(&lua)?)?;
        api.raw_set("register_function", lua.create_function(super::functions::register_function)?)?;
        // SAFETY: raw C functions that read their own arguments only.
        api.raw_set("breakpoint", unsafe { lua.create_c_function(super::ldb::breakpoint) }?)?;
        api.raw_set("debug", unsafe { lua.create_c_function(super::ldb::debug) }?)?;
        // SAFETY: as above.
        api.raw_set("tonumber", unsafe { lua.create_c_function(libs::tonumber::tonumber) }?)?;
        // SAFETY: a raw C function that reads its own arguments (three tables).
        api.raw_set("views", unsafe { lua.create_c_function(super::views::install) }?)?;
        // SAFETY: as above (two tables).
        api.raw_set("views_more", unsafe { lua.create_c_function(super::views::install_more) }?)?;
        api.raw_set("random", libs::random::random_fn(&lua, rng.clone())?)?;
        api.raw_set("randomseed", libs::random::randomseed_fn(&lua, rng.clone())?)?;
        api.raw_set("cjson", libs::cjson::table(&lua)?)?;
        api.raw_set("cmsgpack", libs::cmsgpack::table(&lua)?)?;
        api.raw_set("bit", libs::bit::table(&lua)?)?;
        api.raw_set("struct", libs::struct_::table(&lua)?)?;
        #[allow(clippy::type_complexity)]
        let (runner, fn_runner, load_runner, globals, handler, views): (
            Function,
            Function,
            Function,
            Table,
            Function,
            Table,
        ) = lua.load(PRELUDE).set_name("=sandbox").call(api)?;
        // What the library encoders look through (`libs::seen_through`).
        lua.set_named_registry_value(libs::VIEWS, views)?;
        let (keys, argv) = (lua.create_table()?, lua.create_table()?);
        globals.raw_set("KEYS", &keys)?;
        globals.raw_set("ARGV", &argv)?;
        let kv = KvCache {
            keys: lua.create_registry_value(keys)?,
            argv: lua.create_registry_value(argv)?,
            globals: lua.create_registry_value(&globals)?,
            installed: true,
            lens: (0, 0),
        };
        let handler = lua.create_registry_value(handler)?;
        // SAFETY: `enter_script` is a C function that reads its own arguments.
        let entry = unsafe { lua.create_c_function(enter_script) }?;
        install_hook(&lua)?;
        // The sandbox's set-up (compiling the prelude, building the library
        // tables) leaves garbage: a new VM starts from what it keeps.
        lua.gc_collect()?;
        if mem_limit > 0 {
            lua.set_memory_limit(mem_limit as usize)?;
        }
        Ok(Vm {
            lua,
            runner,
            fn_runner,
            load_runner,
            globals,
            handler,
            entry,
            kv,
            scripts: AHashMap::default(),
            epoch: 0,

            mem_limit,
            functions: AHashMap::default(),
            fn_version: 0,
            broken: false,
        })
    }

    /// Applies a changed `lua-memory-limit`.
    pub fn set_memory_limit(&mut self, limit: u64) {
        if limit != self.mem_limit && self.lua.set_memory_limit(limit as usize).is_ok() {
            self.mem_limit = limit;
        }
    }

    /// Drops compiled scripts after SCRIPT FLUSH.
    pub fn sync_epoch(&mut self, epoch: u64) {
        if self.epoch != epoch {
            self.scripts.clear();
            self.lua.expire_registry_values();
            self.epoch = epoch;
        }
    }

    /// Compiles `script` into this VM unless it already is.
    pub fn ensure_compiled(&mut self, script: &Script) -> Result<(), Reply> {
        if self.scripts.contains_key(&script.sha) {
            return Ok(());
        }
        let f = compile(&self.lua, script.body(), "@user_script")
            .map_err(|e| Reply::err(format!("Error compiling script (new function): {e}")))?;
        // A script that never assigns a global reads them from the globals
        // table itself, not through the read-only proxy: the same values and
        // the same error for a missing one (the table's own `__index`), one
        // table lookup instead of two. It cannot write to that table: it has
        // no SETGLOBAL, and no way to get hold of the table (no getfenv,
        // `_G` is the proxy), and the functions it creates inherit it.
        if bytecode::never_sets_globals(&f.dump(true)) {
            f.set_environment(self.globals.clone()).map_err(|e| Reply::err(format!("Error compiling script: {e}")))?;
        }
        let key = self.lua.create_registry_value(f).map_err(|e| Reply::err(format!("Error compiling script: {e}")))?;
        self.scripts.insert(script.sha, key);
        Ok(())
    }

    pub fn compiled_count(&self) -> usize {
        self.scripts.len()
    }

    /// Sets KEYS and ARGV for the next run. The tables are new each time, as
    /// in Redis: a script may modify them (even set a metatable on them),
    /// and nothing it does may reach the next script. Built with the raw
    /// API in one protected call: per-value API calls through mlua would
    /// each be a protected call of their own.
    pub fn set_keys_argv(&mut self, keys: &[bytes::Bytes], argv: &[bytes::Bytes]) -> mlua::Result<()> {
        self.kv.installed = false;
        let handler = self.handler.id();
        // SAFETY: the closure runs inside mlua's protected call with the
        // globals table at stack index 1; it only pushes and raw-sets, with
        // stack space checked first. A Lua error (out of memory) jumps out of
        // it, which is sound: it owns nothing that needs dropping.
        unsafe {
            self.lua.exec_raw::<()>(&self.globals, |state| {
                for (name, items) in [(c"KEYS", keys), (c"ARGV", argv)] {
                    if ffi::lua_checkstack(state, 4) == 0 {
                        return;
                    }
                    ffi::lua_pushstring(state, name.as_ptr());
                    ffi::lua_createtable(state, items.len().min(i32::MAX as usize) as std::ffi::c_int, 0);
                    for (i, b) in items.iter().enumerate() {
                        ffi::lua_pushlstring(state, b.as_ptr() as *const std::ffi::c_char, b.len());
                        ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
                    }
                    ffi::lua_rawset(state, 1);
                }
                set_err_handler(state, 1, handler);
            })
        }
    }

    /// Removes KEYS, ARGV and `__redis__err__handler`, so a function sees
    /// none, as in Redis (an EVAL sets them again before its script runs).
    fn clear_keys_argv(&mut self) -> mlua::Result<()> {
        self.kv.installed = false;
        // SAFETY: inside mlua's protected call with the globals table at
        // index 1; raw sets of nil after a stack check, nothing owned.
        unsafe {
            self.lua.exec_raw::<()>(&self.globals, |state| {
                if ffi::lua_checkstack(state, 2) == 0 {
                    return;
                }
                for name in [c"KEYS", c"ARGV", ERR_HANDLER] {
                    ffi::lua_pushstring(state, name.as_ptr());
                    ffi::lua_pushnil(state);
                    ffi::lua_rawset(state, 1);
                }
            })
        }
    }

    /// After a failed script: its garbage collected.
    pub fn reset_after_error(&mut self) {
        if self.lua.gc_collect().is_err() {
            self.broken = true;
        }
    }

    /// Runs the script `sha` (compiled by `ensure_compiled`) inside `run`,
    /// with `keys` and `argv` as its KEYS and ARGV.
    pub fn run_script(
        &mut self,
        run: &mut Run<'_>,
        sha: &[u8; 40],
        keys: &[bytes::Bytes],
        argv: &[bytes::Bytes],
    ) -> Reply {
        if !self.scripts.contains_key(sha) {
            return Reply::err("script not compiled");
        }
        if super::ldb::active() {
            if let Err(e) = self.set_keys_argv(keys, argv) {
                self.broken = true;
                return Reply::err(format!("Error running script: {e}"));
            }
            let Some(key) = self.scripts.get(sha) else {
                return Reply::err("script not compiled");
            };
            let f = match self.lua.registry_value::<Function>(key) {
                Ok(f) => f,
                Err(e) => return Reply::err(format!("Error running script: {e}")),
            };
            let _enter = call::Enter::new(run);
            super::ldb::install_hook(&self.lua);
            let result = self.runner.call::<(bool, Value)>(&f);
            let _ = install_hook(&self.lua);
            drop(_enter);
            return self.finish(run, result, std::str::from_utf8(sha).unwrap_or("?"));
        }
        // One protected call sets KEYS and ARGV and runs the script under
        // the prelude's handler (`enter_script`).
        let Some(key) = self.scripts.get(sha) else {
            return Reply::err("script not compiled");
        };
        let mut params = EntryParams {
            keys,
            argv,
            kv: &mut self.kv,
            script: key.id(),
            handler: self.handler.id(),
            setup_done: false,
        };
        let result = {
            let _enter = call::Enter::new(run);
            self.entry.call::<(bool, Value)>(mlua::LightUserData(
                &mut params as *mut EntryParams<'_> as *mut std::ffi::c_void,
            ))
        };
        if result.is_err() && !params.setup_done {
            // Out of memory while building KEYS/ARGV.
            self.kv.installed = false;
            self.broken = true;
            let e = result.err().map(|e| e.to_string()).unwrap_or_default();
            return Reply::err(format!("Error running script: {e}"));
        }
        self.finish(run, result, std::str::from_utf8(sha).unwrap_or("?"))
    }

    /// Runs a library function with (keys, args) tables.
    pub fn run_function(
        &mut self,
        run: &mut Run<'_>,
        f: &Function,
        keys: &[bytes::Bytes],
        args: &[bytes::Bytes],
        name: &str,
    ) -> Reply {
        let result = (|| {
            // Functions have no KEYS or ARGV globals (only their arguments).
            self.clear_keys_argv()?;
            let k = sequence(&self.lua, keys)?;
            let a = sequence(&self.lua, args)?;
            let _enter = call::Enter::new(run);
            self.fn_runner.call::<(bool, Value)>((f, k, a))
        })();
        self.finish(run, result, name)
    }

    fn finish(&mut self, run: &mut Run<'_>, result: mlua::Result<(bool, Value)>, name: &str) -> Reply {
        if run.abort == Some(Abort::OutOfMemory) {
            // Start the next script on a fresh VM.
            self.broken = true;
        }
        match result {
            Ok((true, v)) => {
                // Errors in the result are counted here, as Redis counts them
                // while it writes the reply (see `call::Run::failed_calls`).
                let stats = &run.server.stats;
                let (mut flagged, mut counted) = (0u32, false);
                let reply = convert::script_reply(&self.lua, &v, run.resp, run.caller.resp, &mut |text, ignore| {
                    if ignore {
                        flagged += 1;
                    } else {
                        stats.count_error(text);
                        counted = true;
                    }
                });
                run.failed_calls = Some(flagged + counted as u32);
                reply
            }
            Ok((false, e)) => {
                self.reset_after_error();
                if let Some(Abort::Redirect(_)) = run.abort {
                    return Reply::NoReply;
                }
                let (reply, ignore_stats) = self.error_reply(&e, name);
                if ignore_stats {
                    run.failed_calls = Some(1);
                }
                reply
            }
            Err(e) => {
                self.reset_after_error();
                self.broken = matches!(e, mlua::Error::MemoryError(_)) || self.broken;
                Reply::err(format!("Error running script {name}: {}", error_message(&Value::Error(Box::new(e))).0))
            }
        }
    }

    /// Formats an error object from the prelude's handler as Redis does
    /// ("-%s script: %s, on %s:%s."), and whether the error says it was
    /// counted in the statistics already (`ignore_error_stats_update`).
    fn error_reply(&mut self, e: &Value, name: &str) -> (Reply, bool) {
        let Value::Table(t) = e else {
            // Not passed through the handler: an out-of-memory error.
            let msg = match e {
                Value::String(s) => s.to_string_lossy(),
                _ => "execution failure".into(),
            };
            if msg.contains("not enough memory") {
                self.broken = true;
                return (
                    Reply::err(format!("Error running script {name}: Lua VM out of memory (lua-memory-limit)")),
                    false,
                );
            }
            return (Reply::err(format!("Error running script {name}, {msg}")), false);
        };
        // Redis reads `err` with lua_tostring: a number is printed, and a
        // string ends at its first NUL.
        let mut text = match t.raw_get::<Value>("err") {
            Ok(Value::String(s)) => crate::protocol::c_str(&s.as_bytes()).to_vec(),
            Ok(Value::Integer(i)) => libs::cjson::format_g(i as f64, 14).into_bytes(),
            Ok(Value::Number(n)) => libs::cjson::format_g(n, 14).into_bytes(),
            _ => b"ERR unknown error".to_vec(),
        };
        let source = t.raw_get::<Option<mlua::String>>("source").ok().flatten();
        let line = t.raw_get::<Option<i64>>("line").ok().flatten();
        if let (Some(s), Some(l)) = (source, line) {
            text.extend_from_slice(format!(" script: {name}, on ").as_bytes());
            text.extend_from_slice(crate::protocol::c_str(&s.as_bytes()));
            text.extend_from_slice(format!(":{l}.").as_bytes());
        }
        let ignore = matches!(t.raw_get::<Value>("ignore_error_stats_update"), Ok(Value::Boolean(true)));
        (Reply::error_from_bytes(text), ignore)
    }
}

/// The KEYS and ARGV tables a script ran with, kept in the registry to be
/// refilled in place for the next script (see `fill_array`).
struct KvCache {
    keys: mlua::RegistryKey,
    argv: mlua::RegistryKey,
    globals: mlua::RegistryKey,
    /// The globals hold these two tables as KEYS and ARGV (false after a
    /// function or a debugging session replaced or removed them).
    installed: bool,
    /// How many items each held when last filled.
    lens: (usize, usize),
}

/// What `enter_script` needs, passed as a light userdata.
struct EntryParams<'a> {
    keys: &'a [bytes::Bytes],
    argv: &'a [bytes::Bytes],
    kv: &'a mut KvCache,
    /// Registry ids of the compiled script and of the error handler.
    script: std::ffi::c_int,
    handler: std::ffi::c_int,
    /// KEYS and ARGV are set: an error after this is the script's.
    setup_done: bool,
}

/// Runs a script: sets KEYS and ARGV, then calls the script as the
/// prelude's `run` does (`xpcall(f, handler)`), returning (ok, result).
///
/// A script sees fresh KEYS and ARGV each time, as in Redis, where they are
/// new tables. Here the last run's tables are refilled in place when that
/// cannot be told apart from new tables: same number of items, no
/// metatable, and nothing else left in them after the refill (a script may
/// have changed, added or removed entries, or set a metatable; then new
/// tables are made). Nothing a script holds outlives it (the globals and
/// libraries are read-only), so no earlier script can see the refill.
unsafe extern "C-unwind" fn enter_script(state: *mut ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: called through `Vm::entry` with one light userdata argument
    // pointing at the `EntryParams` of `run_script`, alive for the call.
    // Only Lua API calls that may raise (allocation) happen here, and the
    // frames they jump over own nothing that needs dropping.
    unsafe {
        let p = &mut *(ffi::lua_touserdata(state, 1) as *mut EntryParams<'_>);
        ffi::lua_settop(state, 0);
        if ffi::lua_checkstack(state, 8) == 0 {
            ffi::lua_pushstring(state, c"stack overflow".as_ptr());
            ffi::lua_error(state);
        }
        let kv = &mut *p.kv;
        let reuse = kv.installed;
        let (keys_ok, argv_ok) = (
            reuse && kv.lens.0 == p.keys.len() && refill(state, kv.keys.id(), p.keys),
            reuse && kv.lens.1 == p.argv.len() && refill(state, kv.argv.id(), p.argv),
        );
        if !keys_ok || !argv_ok {
            kv.installed = false;
            ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, kv.globals.id() as _);
            if !keys_ok {
                fresh(state, kv.keys.id(), c"KEYS", p.keys);
            }
            if !argv_ok {
                fresh(state, kv.argv.id(), c"ARGV", p.argv);
            }
            // Not installed: a function ran (and removed the handler too).
            if !reuse {
                set_err_handler(state, ffi::lua_gettop(state), p.handler);
            }
            ffi::lua_settop(state, 0);
        }
        kv.installed = true;
        kv.lens = (p.keys.len(), p.argv.len());
        p.setup_done = true;
        ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, p.handler as _);
        ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, p.script as _);
        let status = ffi::lua_pcall(state, 0, 1, 1);
        ffi::lua_pushboolean(state, (status == 0) as std::ffi::c_int);
        ffi::lua_replace(state, 1);
        2
    }
}

/// The global name of the error handler EVAL scripts see.
const ERR_HANDLER: &std::ffi::CStr = c"__redis__err__handler";

/// Sets the globals' `__redis__err__handler` (the globals table at `g`) to
/// the handler at registry id `handler`.
///
/// # Safety
/// A valid state with the globals table at the positive index `g` and 2
/// free stack slots.
unsafe fn set_err_handler(state: *mut ffi::lua_State, g: std::ffi::c_int, handler: std::ffi::c_int) {
    // SAFETY: per the function's contract.
    unsafe {
        ffi::lua_pushstring(state, ERR_HANDLER.as_ptr());
        ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, handler as _);
        ffi::lua_rawset(state, g);
    }
}

/// Refills the array table at registry id `id` with `items` (the same
/// count it held), and says whether it is now as a new table would be.
///
/// # Safety
/// Inside `enter_script`, with 8 free stack slots; leaves the stack as it
/// found it.
unsafe fn refill(state: *mut ffi::lua_State, id: std::ffi::c_int, items: &[bytes::Bytes]) -> bool {
    // SAFETY: per the function's contract.
    unsafe {
        ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, id as _);
        let t = ffi::lua_gettop(state);
        if ffi::lua_getmetatable(state, t) != 0 {
            ffi::lua_settop(state, t - 1);
            return false;
        }
        fill_array(state, t, items);
        // Anything after the last item (or any entry at all, when empty).
        if items.is_empty() {
            ffi::lua_pushnil(state);
        } else {
            ffi::lua_pushinteger(state, items.len() as ffi::lua_Integer);
        }
        let clean = ffi::lua_next(state, t) == 0;
        ffi::lua_settop(state, t - 1);
        clean
    }
}

/// Makes a new array table of `items`, stores it at registry id `id` and as
/// the global `name` (the globals table is on top of the stack).
///
/// # Safety
/// Inside `enter_script`, with 8 free stack slots.
unsafe fn fresh(state: *mut ffi::lua_State, id: std::ffi::c_int, name: &std::ffi::CStr, items: &[bytes::Bytes]) {
    // SAFETY: per the function's contract.
    unsafe {
        let g = ffi::lua_gettop(state);
        ffi::lua_pushstring(state, name.as_ptr());
        ffi::lua_createtable(state, items.len().min(i32::MAX as usize) as std::ffi::c_int, 0);
        let t = ffi::lua_gettop(state);
        fill_array(state, t, items);
        ffi::lua_pushvalue(state, t);
        ffi::lua_rawseti(state, ffi::LUA_REGISTRYINDEX, id as _);
        ffi::lua_rawset(state, g);
    }
}

/// Sets `t[1..=n]` to `items` as strings.
///
/// # Safety
/// `t` is a table index on a valid state with 2 free stack slots.
unsafe fn fill_array(state: *mut ffi::lua_State, t: std::ffi::c_int, items: &[bytes::Bytes]) {
    // SAFETY: per the function's contract.
    unsafe {
        for (i, b) in items.iter().enumerate() {
            ffi::lua_pushlstring(state, b.as_ptr() as *const std::ffi::c_char, b.len());
            ffi::lua_rawseti(state, t, (i + 1) as ffi::lua_Integer);
        }
    }
}

/// Compiles `body` as a text chunk named `chunk`.
pub fn compile(lua: &Lua, body: &[u8], chunk: &str) -> Result<Function, String> {
    if body.first() == Some(&27) {
        // Redis's Lua refuses bytecode as an unexpected symbol.
        return Err(format!("{}:1: unexpected symbol near 'char(27)'", chunk.trim_start_matches('@')));
    }
    lua.load(body).set_name(chunk).set_mode(ChunkMode::Text).into_function().map_err(|e| match e {
        mlua::Error::SyntaxError { message, .. } => message,
        other => error_message(&Value::Error(Box::new(other))).0,
    })
}

/// A Lua array of `items` as strings.
fn sequence(lua: &Lua, items: &[bytes::Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, b) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(b)?)?;
    }
    Ok(t)
}

/// Installs the count hook on the VM's main thread as a raw Lua hook.
///
/// mlua's own hook serves one thread only: a coroutine inherits the hook
/// from the thread that creates it (Lua 5.1 copies it in `lua_newthread`),
/// but mlua's hook procedure removes itself from any thread but the one it
/// was set for, so a loop inside a coroutine could not be killed and would
/// hold its worker thread forever. A raw hook is inherited and kept by every
/// coroutine the script creates.
fn install_hook(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: `exec_raw` runs the closure on the main state (no callback is
    // running while the VM is built), and `count_hook` has the signature Lua
    // expects of a hook.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            ffi::lua_sethook(state, Some(count_hook), ffi::LUA_MASKCOUNT, HOOK_EVERY as std::ffi::c_int);
        })
    }
}

unsafe extern "C-unwind" fn count_hook(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    // Nothing that needs dropping is alive when `lua_error` jumps out of
    // this frame; a panic never crosses into Lua.
    let stop = std::panic::catch_unwind(hook_says_stop).unwrap_or(true);
    if stop {
        // SAFETY: raising an error from a count hook is allowed in Lua 5.1,
        // and a hook always has LUA_MINSTACK free slots for the message.
        unsafe {
            ffi::lua_pushstring(state, c"script aborted".as_ptr());
            ffi::lua_error(state);
        }
    }
}

/// The count hook's work: stops killed scripts, notices shutdown, and keeps
/// a long script from starving the other tasks of its worker thread.
fn hook_says_stop() -> bool {
    if !call::running() {
        return load_timed_out();
    }
    let stop = with_run(|run| {
        if run.abort.is_some() {
            return true;
        }
        if run.shard.script_kill.load(Ordering::SeqCst) && !run.wrote {
            run.abort = Some(Abort::Kill);
            return true;
        }
        if run.server.shutting_down.load(Ordering::Relaxed) {
            run.abort = Some(Abort::Shutdown);
            return true;
        }
        let elapsed = crate::storage::now_ms().saturating_sub(run.started_ms);
        if !run.handed_off && elapsed >= HAND_OFF_AFTER_MS {
            run.handed_off = true;
            hand_off();
        }
        if !run.slow_logged && elapsed >= run.server.busy_threshold() {
            run.slow_logged = true;
            crate::net::listener::log(
                run.server,
                "warning",
                &format!(
                    "Slow script detected: still in execution after {elapsed} milliseconds. You can try killing \
                     the script using the {} command. Script name is: {}.",
                    if run.function { "FUNCTION KILL" } else { "SCRIPT KILL" },
                    run.name
                ),
            );
        }
        false
    });
    stop == Some(true)
}

/// Keeps a long script from starving the rest of the runtime. A script
/// runs synchronously on a worker thread; left alone, the tasks queued on
/// that worker wait, and if the other workers are parked, nobody polls the
/// I/O driver. `block_in_place` gives this worker's queue to a fresh thread
/// (the short sleep lets that thread take it over before the runtime tries
/// to reclaim it), and the spawned no-op task wakes a parked worker so
/// another thread takes up the I/O driver.
fn hand_off() {
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            // Spawned from outside the runtime, the task lands in the shared
            // queue and wakes a parked worker; spawned from this worker it
            // would sit in this worker's LIFO slot and wake nobody.
            let waker = h.clone();
            let _ = std::thread::Builder::new().name("moonshard-wake".into()).spawn(move || {
                waker.spawn(async {});
            });
            tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(1)));
        }
    }
}

/// A protected call caught Lua's out-of-memory error: the script ends.
pub(super) fn out_of_memory() {
    with_run(|run| {
        if run.abort.is_none() {
            run.abort = Some(Abort::OutOfMemory);
        }
    });
}

/// The error text of the running script's abort, if it was aborted.
pub(super) fn aborted_message() -> Option<&'static str> {
    match with_run(|run| run.abort.map(|a| a.message())) {
        Some(m) => m,
        None => LOAD.with(|l| l.get().1).then_some("ERR FUNCTION LOAD timeout"),
    }
}

/// How long library code may run at FUNCTION LOAD (Redis's limit).
pub const LOAD_TIMEOUT_MS: u64 = 500;

thread_local! {
    /// While library code runs on this thread: its deadline (Unix ms) and
    /// whether it passed.
    static LOAD: std::cell::Cell<(u64, bool)> = const { std::cell::Cell::new((0, false)) };
}

/// Runs `f` (library code being loaded) with the load deadline armed.
pub fn with_load_deadline<R>(f: impl FnOnce() -> R) -> R {
    LOAD.with(|l| l.set((crate::storage::now_ms() + LOAD_TIMEOUT_MS, false)));
    let r = f();
    LOAD.with(|l| l.set((0, false)));
    r
}

/// The hook's check while library code loads: past the deadline it stops.
fn load_timed_out() -> bool {
    LOAD.with(|l| {
        let (deadline, passed) = l.get();
        if deadline == 0 {
            return false;
        }
        if passed || crate::storage::now_ms() > deadline {
            l.set((deadline, true));
            return true;
        }
        false
    })
}

/// The text of an mlua error value and whether it already carries an error
/// code (a command's error reply) rather than needing "ERR ".
pub fn error_message(e: &Value) -> (String, bool) {
    fn root(e: &mlua::Error) -> (String, bool) {
        match e {
            mlua::Error::CallbackError { cause, .. } => root(cause),
            mlua::Error::RuntimeError(m) => (m.clone(), false),
            mlua::Error::MemoryError(m) => (m.clone(), false),
            mlua::Error::SyntaxError { message, .. } => (message.clone(), false),
            mlua::Error::ExternalError(x) => match x.downcast_ref::<super::api::CodedError>() {
                Some(c) => (c.0.clone(), true),
                None => (x.to_string(), false),
            },
            other => (other.to_string(), false),
        }
    }
    match e {
        Value::Error(e) => root(e),
        Value::String(s) => (s.to_string_lossy(), false),
        other => (format!("{other:?}"), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::{HookTriggers, VmState};

    #[test]
    fn hook_fires() {
        let vm = Vm::new(0).unwrap();
        let n = Arc::new(AtomicU64::new(0));
        let n2 = n.clone();
        vm.lua.set_hook(HookTriggers::new().every_nth_instruction(1000), move |_, _| {
            n2.fetch_add(1, Ordering::Relaxed);
            Ok(VmState::Continue)
        });
        let f = compile(&vm.lua, b"local i = 0 for j = 1, 100000 do i = i + j end return i", "@user_script").unwrap();
        let (ok, _v): (bool, Value) = vm.runner.call(f).unwrap();
        assert!(ok);
        let mut vm = vm;
        vm.set_keys_argv(&[bytes::Bytes::from("k")], &[bytes::Bytes::from("a"), bytes::Bytes::from("b")]).unwrap();
        let lens: i64 = vm.lua.load("return #KEYS * 10 + #ARGV").call(()).unwrap();
        assert_eq!(lens, 12);
        vm.set_keys_argv(&[], &[bytes::Bytes::from("c")]).unwrap();
        let lens: i64 = vm.lua.load("return #KEYS * 10 + #ARGV").call(()).unwrap();
        assert_eq!(lens, 1);
        assert!(ok);
        assert!(n.load(Ordering::Relaxed) > 10, "{}", n.load(Ordering::Relaxed));
    }
}
