//! Redis 7 functions: libraries (`#!lua name=lib`) registered globally,
//! loaded lazily into each shard's VM, called with FCALL/FCALL_RO through
//! the same routing as EVAL.

use super::cache::Flags;
use super::router::{self, Job, Request};
use super::vm::Vm;
use crate::commands::registry::Command;
use crate::protocol::Reply;
use crate::server::Server;
use crate::session::Session;
use crate::util::eq_ic;
use bytes::Bytes;
use mlua::{Function, Lua, MultiValue, Table, Value};
use parking_lot::RwLock;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct FuncMeta {
    pub name: String,
    pub description: Option<String>,
    pub flags: Flags,
}

pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: Vec<FuncMeta>,
}

#[derive(Default)]
struct Libs {
    libs: BTreeMap<String, Arc<Library>>,
    /// Function name, lower-cased (FCALL matches names case-insensitively,
    /// as Redis does) → library name.
    funcs: BTreeMap<Vec<u8>, String>,
}

/// All loaded libraries; `version` changes with every change so shard VMs
/// know to reload.
#[derive(Default)]
pub struct Registry {
    inner: RwLock<Libs>,
    version: AtomicU64,
    /// The function running on each shard (FUNCTION STATS).
    running: parking_lot::Mutex<BTreeMap<usize, Running>>,
}

/// A running function: name, the FCALL arguments, start (Unix ms).
type Running = (String, Vec<Bytes>, u64);

/// What FCALL needs about its function.
pub struct FunctionRef {
    pub name: String,
    pub flags: Flags,
}

fn fold(name: &[u8]) -> Vec<u8> {
    name.to_ascii_lowercase()
}

impl Libs {
    /// Links `lib`'s functions; a name already taken (case-insensitively)
    /// keeps its first owner, as Redis's dictionary does.
    fn link(&mut self, lib: Library) {
        for f in &lib.functions {
            self.funcs.entry(fold(f.name.as_bytes())).or_insert_with(|| lib.name.clone());
        }
        self.libs.insert(lib.name.clone(), Arc::new(lib));
    }

    fn unlink(&mut self, name: &str) -> Option<Arc<Library>> {
        let old = self.libs.remove(name)?;
        for f in &old.functions {
            let key = fold(f.name.as_bytes());
            if self.funcs.get(&key).is_some_and(|owner| owner == name) {
                self.funcs.remove(&key);
            }
        }
        Some(old)
    }
}

impl Registry {
    fn lookup(&self, name: &[u8]) -> Option<FunctionRef> {
        let libs = self.inner.read();
        let lib = libs.libs.get(libs.funcs.get(&fold(name))?)?;
        let meta = lib.functions.iter().find(|f| f.name.as_bytes().eq_ignore_ascii_case(name))?;
        Some(FunctionRef { name: meta.name.clone(), flags: meta.flags })
    }

    /// (functions, libraries, bytes their code and records hold), for INFO.
    pub fn figures(&self) -> (usize, usize, usize) {
        let libs = self.inner.read();
        let bytes = libs
            .libs
            .values()
            .map(|l| {
                let funcs: usize = l
                    .functions
                    .iter()
                    .map(|f| {
                        std::mem::size_of::<FuncMeta>() + f.name.len() + f.description.as_ref().map_or(0, |d| d.len())
                    })
                    .sum();
                std::mem::size_of::<Library>() + l.name.len() + l.code.len() + funcs
            })
            .sum();
        (libs.funcs.len(), libs.libs.len(), bytes)
    }

    fn snapshot(&self) -> (u64, Vec<Arc<Library>>) {
        let libs = self.inner.read();
        (self.version.load(Ordering::Acquire), libs.libs.values().cloned().collect())
    }

    fn bump(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    fn exists(&self, name: &str) -> bool {
        self.inner.read().libs.contains_key(name)
    }

    /// Adds libraries; `replace` allows replacing same-named ones. Redis's
    /// checks and texts: a library that exists (unless replacing), then a
    /// function name another library has.
    fn install(&self, new: Vec<Library>, replace: bool, quoted: bool) -> Result<(), String> {
        let mut libs = self.inner.write();
        for lib in &new {
            if libs.libs.contains_key(&lib.name) && !replace {
                return Err(if quoted {
                    format!("Library '{}' already exists", lib.name)
                } else {
                    format!("Library {} already exists", lib.name)
                });
            }
        }
        let replaced: Vec<&str> = new.iter().map(|l| l.name.as_str()).collect();
        for lib in &new {
            for f in &lib.functions {
                if let Some(owner) = libs.funcs.get(&fold(f.name.as_bytes())) {
                    if !replaced.contains(&owner.as_str()) {
                        return Err(format!("Function {} already exists", f.name));
                    }
                }
            }
        }
        for lib in new {
            libs.unlink(&lib.name);
            libs.link(lib);
        }
        drop(libs);
        self.bump();
        Ok(())
    }

    fn delete(&self, name: &str) -> bool {
        let removed = self.inner.write().unlink(name).is_some();
        if removed {
            self.bump();
        }
        removed
    }

    fn flush(&self) {
        *self.inner.write() = Libs::default();
        self.bump();
    }
}

// ------------------------------------------------------------ registering

struct Registered {
    meta: FuncMeta,
    f: Function,
}

thread_local! {
    /// The functions registered by the library code being loaded on this thread.
    static LOADING: RefCell<Option<Vec<Registered>>> = const { RefCell::new(None) };
}

fn reg_err(msg: &str) -> mlua::Error {
    super::api::coded(format!("ERR {msg}"))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A string argument as `lua_isstring` takes it: strings, and numbers
/// printed as Lua prints them.
fn lua_string(lua: &Lua, v: &Value) -> mlua::Result<Option<String>> {
    match v {
        Value::String(s) => Ok(Some(s.to_string_lossy())),
        Value::Integer(_) | Value::Number(_) => Ok(lua.coerce_string(v.clone())?.map(|s| s.to_string_lossy())),
        _ => Ok(None),
    }
}

/// `redis.register_function(name, callback)` or `({function_name=...,
/// callback=..., flags={...}, description=...})`.
pub fn register_function(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    if !LOADING.with(|l| l.borrow().is_some()) {
        return Err(reg_err("redis.register_function can only be called on FUNCTION LOAD command"));
    }
    let (name, f, flags, description) = match args.len() {
        1 => {
            let Some(Value::Table(t)) = args.front() else {
                return Err(reg_err(
                    "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
                ));
            };
            named_args(lua, t)?
        }
        2 => {
            let Some(name) = lua_string(lua, &args[0])? else {
                return Err(reg_err("first argument to redis.register_function must be a string"));
            };
            let Some(Value::Function(f)) = args.get(1) else {
                return Err(reg_err("second argument to redis.register_function must be a function"));
            };
            (name, f.clone(), Flags::default(), None)
        }
        _ => return Err(reg_err("wrong number of arguments to redis.register_function")),
    };
    if !valid_name(&name) {
        return Err(reg_err(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    LOADING.with(|l| {
        let mut l = l.borrow_mut();
        let list = l.as_mut().expect("checked above");
        // Within a library names are case-sensitive, as in Redis.
        if list.iter().any(|r| r.meta.name == name) {
            return Err(reg_err("Function already exists in the library"));
        }
        list.push(Registered { meta: FuncMeta { name, description, flags }, f });
        Ok(())
    })
}

type NamedArgs = (String, Function, Flags, Option<String>);

fn named_args(lua: &Lua, t: &Table) -> mlua::Result<NamedArgs> {
    let (mut name, mut f, mut flags, mut description) = (None, None, Flags::default(), None);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Some(key) = lua_string(lua, &k)? else {
            return Err(reg_err("named argument key given to redis.register_function is not a string"));
        };
        match key.to_ascii_lowercase().as_str() {
            "function_name" => match lua_string(lua, &v)? {
                Some(s) => name = Some(s),
                None => {
                    return Err(reg_err("function_name argument given to redis.register_function must be a string"))
                }
            },
            "description" => match lua_string(lua, &v)? {
                Some(s) => description = Some(s),
                None => return Err(reg_err("description argument given to redis.register_function must be a string")),
            },
            "callback" => match v {
                Value::Function(cb) => f = Some(cb),
                _ => return Err(reg_err("callback argument given to redis.register_function must be a function")),
            },
            "flags" => {
                let Value::Table(list) = v else {
                    return Err(reg_err(
                        "flags argument to redis.register_function must be a table representing function flags",
                    ));
                };
                let mut read = Flags::default();
                for item in list.sequence_values::<Value>() {
                    let ok = match lua_string(lua, &item?)? {
                        Some(s) => read.set(&s.to_ascii_lowercase()),
                        None => false,
                    };
                    if !ok {
                        return Err(reg_err("unknown flag given"));
                    }
                }
                flags = read;
            }
            _ => return Err(reg_err("unknown argument given to redis.register_function")),
        }
    }
    let name = name.ok_or_else(|| reg_err("redis.register_function must get a function name argument"))?;
    let f = f.ok_or_else(|| reg_err("redis.register_function must get a callback argument"))?;
    Ok((name, f, flags, description))
}

/// Parses `#!lua name=lib` as Redis does (`sdssplitargs` on the first
/// line, read as a C string). Errors are Redis's texts.
fn parse_meta(code: &[u8]) -> Result<String, Reply> {
    let fail = |msg: &[u8]| Reply::error_from_bytes([&b"ERR "[..], msg].concat());
    if !code.starts_with(b"#!") {
        return Err(fail(b"Missing library metadata"));
    }
    let c = crate::protocol::c_str(code);
    let Some(end) = c.iter().position(|&b| b == b'\n') else {
        return Err(fail(b"Invalid library metadata"));
    };
    let parts = match crate::protocol::split_args(&c[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err(fail(b"Invalid library metadata")),
    };
    let engine = parts[0].get(2..).unwrap_or_default();
    let mut name: Option<&[u8]> = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(fail(b"Invalid metadata value, name argument was given multiple times"));
            }
            name = Some(&part[5..]);
            continue;
        }
        return Err(fail(&[&b"Invalid metadata value given: "[..], crate::protocol::c_str(part)].concat()));
    }
    let Some(name) = name else {
        return Err(fail(b"Library name was not given"));
    };
    let name = match std::str::from_utf8(name) {
        Ok(n) if valid_name(n) => n.to_string(),
        _ => {
            return Err(fail(
                b"Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
            ))
        }
    };
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(fail(&[&b"Engine '"[..], engine, b"' not found"].concat()));
    }
    Ok(name)
}

/// Runs a library's code in `vm`, returning what it registered.
fn run_library(vm: &mut Vm, code: &[u8]) -> Result<Vec<Registered>, String> {
    let end = code.iter().position(|&c| c == b'\n').unwrap_or(code.len());
    let f = super::vm::compile(&vm.lua, &code[end..], "@user_function")
        .map_err(|e| format!("Error compiling function: {e}"))?;
    LOADING.with(|l| *l.borrow_mut() = Some(Vec::new()));
    let result = super::vm::with_load_deadline(|| vm.load_runner.call::<(bool, Value)>(f));
    let registered = LOADING.with(|l| l.borrow_mut().take()).unwrap_or_default();
    match result {
        Ok((true, _)) => Ok(registered),
        Ok((false, Value::Table(t))) => {
            let msg: String = t.raw_get("err").unwrap_or_else(|_| "ERR unknown error".into());
            Err(format!("Error registering functions: {msg}"))
        }
        Ok((false, _)) => {
            vm.broken = true;
            Err("Error registering functions: ERR out of memory".into())
        }
        Err(e) => Err(format!("Error registering functions: {e}")),
    }
}

/// Validates `code` on the checker VM and builds its library.
fn build_library(server: &Server, code: &Bytes, replace: bool) -> Result<Library, Reply> {
    let name = parse_meta(code)?;
    if !replace && server.scripts.functions.exists(&name) {
        return Err(Reply::err(format!("Library '{name}' already exists")));
    }
    let registered = router::with_checker(server, |vm| run_library(vm, code)).map_err(Reply::err)?;
    if registered.is_empty() {
        return Err(Reply::err("No functions registered"));
    }
    let functions = registered.into_iter().map(|r| r.meta).collect();
    Ok(Library { name, code: code.clone(), functions })
}

/// The compiled function `name` in `vm`, (re)loading the libraries when the
/// registry changed since this VM last loaded them.
pub fn load_into(server: &Server, vm: &mut Vm, name: &str) -> Result<Function, Reply> {
    let reg = &server.scripts.functions;
    if vm.fn_version != reg.version.load(Ordering::Acquire) || vm.functions.is_empty() {
        let (version, libs) = reg.snapshot();
        vm.functions.clear();
        vm.lua.expire_registry_values();
        for lib in libs {
            let funcs = run_library(vm, &lib.code).map_err(Reply::err)?;
            for r in funcs {
                let key = vm.lua.create_registry_value(r.f).map_err(|e| Reply::err(e.to_string()))?;
                vm.functions.insert(r.meta.name, key);
            }
        }
        vm.fn_version = version;
    }
    let key = vm.functions.get(name).ok_or_else(|| Reply::err(crate::protocol::errors::FUNCTION_NOT_FOUND))?;
    vm.lua.registry_value::<Function>(key).map_err(|e| Reply::err(e.to_string()))
}

// ---------------------------------------------------------------- commands

/// The flags of function `name`, if it exists.
pub fn flags_of(server: &Server, name: &[u8]) -> Option<Flags> {
    server.scripts.functions.lookup(name).map(|f| f.flags)
}

/// FCALL*'s checks before it runs anywhere.
pub struct Prepared<'a> {
    pub fref: FunctionRef,
    pub keys: &'a [Bytes],
    pub argv: &'a [Bytes],
    pub read_only: bool,
}

impl Prepared<'_> {
    pub fn request(&self, in_exec: bool) -> Request<'_> {
        Request {
            job: Job::Function(&self.fref),
            keys: self.keys,
            argv: self.argv,
            flags: self.fref.flags,
            read_only: self.read_only,
            in_exec,
            failed_calls: router::not_run(),
        }
    }
}

pub fn prepare<'a>(server: &Server, cmd: Command, args: &'a [Bytes]) -> Result<Prepared<'a>, Reply> {
    let ro = cmd.spec.name == "fcall_ro";
    let Some(fref) = server.scripts.functions.lookup(&args[1]) else {
        return Err(Reply::err(crate::protocol::errors::FUNCTION_NOT_FOUND));
    };
    if crate::util::parse_i64(&args[2]).is_none() {
        return Err(Reply::err("Bad number of keys provided"));
    }
    let (keys, argv) = router::split_keys(args)?;
    if ro && !fref.flags.no_writes {
        return Err(Reply::err(crate::protocol::errors::RO_SCRIPT_WRITES));
    }
    let read_only = ro || fref.flags.no_writes;
    Ok(Prepared { fref, keys, argv, read_only })
}

/// Records the function running for FUNCTION STATS while `f` runs it.
pub fn tracking<R>(server: &Server, home: usize, args: &[Bytes], name: &str, f: impl FnOnce() -> R) -> R {
    let started = crate::storage::now_ms();
    server.scripts.functions.running.lock().insert(home, (name.to_string(), args.to_vec(), started));
    let r = f();
    server.scripts.functions.running.lock().remove(&home);
    r
}

pub async fn fcall(conn: &mut Session, cmd: Command, args: &[Bytes]) -> Reply {
    let server = conn.server.clone();
    let p = match prepare(&server, cmd, args) {
        Ok(p) => p,
        Err(r) => {
            super::settle(&server, cmd, &r, None);
            return r;
        }
    };
    let home = conn.home_shard();
    let started = crate::storage::now_ms();
    server.scripts.functions.running.lock().insert(home, (p.fref.name.clone(), args.to_vec(), started));
    let req = p.request(false);
    let reply = router::run_routed(conn, &req).await;
    server.scripts.functions.running.lock().remove(&home);
    super::settle(&server, cmd, &reply, req.failed_calls());
    reply
}

/// The code of every loaded library (what an RDB file saves).
pub fn library_codes(server: &Server) -> Vec<Bytes> {
    server.scripts.functions.snapshot().1.iter().map(|l| l.code.clone()).collect()
}

/// Loads libraries read from an RDB file (replacing any of the same name,
/// as Redis's loader does). Err: the text of the first refusal.
/// `replace`: a library whose name exists replaces it; otherwise it fails
/// with Redis's "Library 'name' already exists".
pub fn load_saved_libraries(server: &Server, codes: Vec<Bytes>, replace: bool) -> Result<(), String> {
    let mut libs = Vec::new();
    for code in codes {
        match build_library(server, &code, true) {
            Ok(l) => libs.push(l),
            Err(e) => {
                let text = e.error_text().map(|t| String::from_utf8_lossy(t).into_owned()).unwrap_or_default();
                return Err(text);
            }
        }
    }
    server.scripts.functions.install(libs, replace, !replace)
}

/// Drops every library (DEBUG RELOAD before loading the file back).
pub fn flush_libraries(server: &Server) {
    server.scripts.functions.flush();
}

/// FUNCTION LOAD | DELETE | FLUSH | LIST | DUMP | RESTORE | STATS | KILL | HELP.
pub fn command(server: &Server, sub: &str, args: &[Bytes]) -> Reply {
    let reg = &server.scripts.functions;
    if matches!(sub, "load" | "restore") {
        // The denyoom subcommands: refused over `maxmemory`, as Redis does.
        if let Some(oom) = crate::shard::eviction::check_oom_for(server, true, &mut []) {
            return oom;
        }
    }
    match sub {
        "load" => load(server, args),
        "delete" => {
            if reg.delete(&String::from_utf8_lossy(&args[2])) {
                Reply::ok()
            } else {
                Reply::err("Library not found")
            }
        }
        "flush" => {
            if args.len() > 3 {
                return crate::commands::registry::subcommand_syntax_error(args);
            }
            if args.len() == 3 && !eq_ic(&args[2], "sync") && !eq_ic(&args[2], "async") {
                return Reply::err("FUNCTION FLUSH only supports SYNC|ASYNC option");
            }
            reg.flush();
            Reply::ok()
        }
        "list" => list(reg, args),
        "dump" => Reply::Bulk(dump(server)),
        "restore" => restore(server, args),
        "stats" => stats(server),
        "kill" => router::kill(server, true),
        _ => help(),
    }
}

/// An `ERR` text ending with client bytes, quoted as C's `%s` quotes them.
fn err_with(prefix: &str, arg: &[u8]) -> Reply {
    Reply::error_from_bytes([b"ERR ", prefix.as_bytes(), crate::protocol::c_str(arg)].concat())
}

fn load(server: &Server, args: &[Bytes]) -> Reply {
    let mut replace = false;
    let mut i = 2;
    while i < args.len() - 1 {
        if eq_ic(&args[i], "replace") {
            replace = true;
        } else {
            return err_with("Unknown option given: ", &args[i]);
        }
        i += 1;
    }
    let code = &args[args.len() - 1];
    let lib = match build_library(server, code, replace) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let name = lib.name.clone();
    match server.scripts.functions.install(vec![lib], replace, true) {
        Ok(()) => Reply::Bulk(Bytes::from(name)),
        Err(e) => Reply::err(e),
    }
}

fn list(reg: &Registry, args: &[Bytes]) -> Reply {
    let mut pattern: Option<&[u8]> = None;
    let mut with_code = false;
    let mut i = 2;
    while i < args.len() {
        if eq_ic(&args[i], "withcode") && !with_code {
            with_code = true;
        } else if eq_ic(&args[i], "libraryname") && pattern.is_none() {
            let Some(p) = args.get(i + 1) else {
                return Reply::err("library name argument was not given");
            };
            pattern = Some(p);
            i += 1;
        } else {
            return err_with("Unknown argument ", &args[i]);
        }
        i += 1;
    }
    let (_, libs) = reg.snapshot();
    let mut out = Vec::new();
    for lib in libs {
        if let Some(p) = pattern {
            if !crate::util::glob_match(p, lib.name.as_bytes(), true) {
                continue;
            }
        }
        let funcs = lib
            .functions
            .iter()
            .map(|f| {
                Reply::Map(vec![
                    (Reply::bulk_str("name"), Reply::bulk_str(&f.name)),
                    (Reply::bulk_str("description"), f.description.as_deref().map_or(Reply::Nil, Reply::bulk_str)),
                    (Reply::bulk_str("flags"), Reply::Set(f.flags.names().into_iter().map(Reply::status).collect())),
                ])
            })
            .collect();
        let mut m = vec![
            (Reply::bulk_str("library_name"), Reply::bulk_str(&lib.name)),
            (Reply::bulk_str("engine"), Reply::bulk_str("LUA")),
            (Reply::bulk_str("functions"), Reply::Array(funcs)),
        ];
        if with_code {
            m.push((Reply::bulk_str("library_code"), Reply::Bulk(lib.code.clone())));
        }
        out.push(Reply::Map(m));
    }
    Reply::Array(out)
}

/// FUNCTION DUMP's payload, as Redis writes it: each library's code in
/// RDB form, then the RDB version and a CRC-64 (`persist::rdb`).
fn dump(server: &Server) -> Bytes {
    let (_, libs) = server.scripts.functions.snapshot();
    let compress = server.config.get("rdbcompression").as_deref() != Some("no");
    Bytes::from(crate::persist::rdb::functions_payload(libs.iter().map(|l| &l.code[..]), compress))
}

fn restore(server: &Server, args: &[Bytes]) -> Reply {
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    if args.len() > 4 {
        return crate::commands::registry::subcommand_syntax_error(args);
    }
    let policy = match args.get(3) {
        None => Policy::Append,
        Some(p) if eq_ic(p, "flush") => Policy::Flush,
        Some(p) if eq_ic(p, "append") => Policy::Append,
        Some(p) if eq_ic(p, "replace") => Policy::Replace,
        Some(_) => return Reply::err("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."),
    };
    let codes = match crate::persist::rdb::parse_functions_payload(&args[2]) {
        Ok(c) => c,
        Err(e) => return Reply::err(e),
    };
    let mut libs = Vec::new();
    for code in codes {
        match build_library(server, &Bytes::from(code), true) {
            Ok(l) => libs.push(l),
            Err(e) => return e,
        }
    }
    let reg = &server.scripts.functions;
    if policy == Policy::Flush {
        reg.flush();
    }
    match reg.install(libs, policy != Policy::Append, false) {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::err(e),
    }
}

fn stats(server: &Server) -> Reply {
    let reg = &server.scripts.functions;
    let running = reg.running.lock().values().next().cloned();
    let running = match running {
        Some((name, args, since)) if server.shards.list.iter().any(|s| s.script_running()) => Reply::Map(vec![
            (Reply::bulk_str("name"), Reply::bulk_str(&name)),
            (Reply::bulk_str("command"), Reply::Array(args.into_iter().map(Reply::Bulk).collect())),
            (Reply::bulk_str("duration_ms"), Reply::Int(crate::storage::now_ms().saturating_sub(since) as i64)),
        ]),
        _ => Reply::Nil,
    };
    let (libs, funcs) = {
        let l = reg.inner.read();
        (l.libs.len(), l.libs.values().map(|lib| lib.functions.len()).sum::<usize>())
    };
    Reply::Map(vec![
        (Reply::bulk_str("running_script"), running),
        (
            Reply::bulk_str("engines"),
            Reply::Map(vec![(
                Reply::bulk_str("LUA"),
                Reply::Map(vec![
                    (Reply::bulk_str("libraries_count"), Reply::Int(libs as i64)),
                    (Reply::bulk_str("functions_count"), Reply::Int(funcs as i64)),
                ]),
            )]),
        ),
    ])
}

fn help() -> Reply {
    crate::commands::help::reply("FUNCTION", crate::commands::help::FUNCTION)
}
