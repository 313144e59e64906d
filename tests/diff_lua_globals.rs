//! Differential tests against a real redis-server 7.0: what scripts and
//! functions see of the global table and the libraries. Redis makes the
//! real tables read-only, so raw access (`rawget`, `next`, `pairs`,
//! `table.foreach`) sees their contents while every write fails; moonshard
//! serves them through read-only views and must look the same, error texts
//! (with Redis's `script: ..., on @user_script:N.` suffix) included.

mod common;

use common::{Diff, Rng};

/// The globals Redis 7.0 gives EVAL scripts, plus some it does not.
const GLOBALS: &[&str] = &[
    "_G",
    "_VERSION",
    "__redis__err__handler",
    "KEYS",
    "ARGV",
    "assert",
    "bit",
    "cjson",
    "cmsgpack",
    "collectgarbage",
    "coroutine",
    "error",
    "gcinfo",
    "getmetatable",
    "ipairs",
    "load",
    "loadstring",
    "math",
    "next",
    "pairs",
    "pcall",
    "rawequal",
    "rawget",
    "rawset",
    "redis",
    "select",
    "setmetatable",
    "string",
    "struct",
    "table",
    "tonumber",
    "tostring",
    "type",
    "unpack",
    "xpcall",
    // Absent in Redis 7.0.
    "print",
    "getfenv",
    "setfenv",
    "newproxy",
    "debug",
    "os",
    "io",
    "require",
    "module",
    "dofile",
    "package",
    "nosuchglobal",
];

/// The library tables and a few of their fields (and a missing one).
const LIBS: &[(&str, &[&str])] = &[
    ("string", &["rep", "format", "gfind", "nofield"]),
    ("table", &["insert", "foreach", "getn", "nofield"]),
    ("math", &["random", "huge", "pi", "mod", "nofield"]),
    ("coroutine", &["resume", "wrap", "nofield"]),
    ("redis", &["call", "pcall", "breakpoint", "debug", "setresp", "REPL_ALL", "nofield"]),
    ("cjson", &["encode", "null", "_NAME", "nofield"]),
    ("cmsgpack", &["pack", "_VERSION", "nofield"]),
    ("bit", &["band", "tohex", "nofield"]),
    ("struct", &["pack", "size", "nofield"]),
];

/// A script that returns the sorted `name=type` list of `pairs(expr)`.
fn listing(expr: &str) -> String {
    format!(
        "local t = {{}} for k, v in pairs({expr}) do t[#t + 1] = tostring(k) .. '=' .. type(v) end \
         table.sort(t) return t"
    )
}

/// EVAL of `script` on both servers, replies (or error texts) equal.
#[track_caller]
fn eval(d: &mut Diff, script: &str) -> String {
    common::show(d.check(&["EVAL", script, "0"]))
}

#[test]
fn eval_sees_the_globals_and_libraries_as_redis() {
    let Some(mut d) = Diff::start(&[]) else { return };
    // pairs/next over the globals and every library table.
    let all = eval(&mut d, &listing("_G"));
    assert!(all.contains("cjson=table") && all.contains("__redis__err__handler=function"), "{all}");
    for (lib, _) in LIBS {
        let listed = eval(&mut d, &listing(lib));
        assert!(listed.len() > 2, "{lib}: {listed}");
    }
    // Every name, present or not: what rawget and next (which accepts a
    // removed key while the table keeps its dead slot) make of it.
    for g in GLOBALS {
        eval(&mut d, &format!("return {{type(rawget(_G, '{g}')), (pcall(next, _G, '{g}'))}}"));
    }
    for (lib, fields) in LIBS {
        for f in *fields {
            eval(&mut d, &format!("return {{type(rawget({lib}, '{f}')), (pcall(next, {lib}, '{f}'))}}"));
        }
    }
    eval(&mut d, &listing("getmetatable(_G)"));
    eval(&mut d, &listing("getmetatable('')"));
    for script in [
        "return type(next(_G))",
        "return (pcall(next, _G, 'redis'))",
        "return next(_G, 'nokey')",
        "return rawget(_G, '_G') == _G",
        "return rawequal(string, rawget(_G, 'string'))",
        "return rawget(redis, 'call') == redis.call",
        "return math.random == rawget(math, 'random')",
        "return type(rawget(getmetatable(_G), '__index'))",
        "return type(rawget(getmetatable(''), '__index'))",
        "return getmetatable('').__index == string",
        "return type(getmetatable(_G))",
        "return getmetatable(redis)",
        "return getmetatable(string)",
        "return getmetatable(getmetatable(_G))",
        "return select(1, pairs({})) == next",
        "return select('#', pairs(_G))",
        "local a, b = pairs(_G) return b == _G",
        "return #_G",
        "return #string",
        "return table.getn(_G)",
        "local n = 0 table.foreach(math, function() n = n + 1 end) return n",
        "local n = 0 table.foreachi(string, function() n = n + 1 end) return n",
        "return table.maxn(string)",
        "return KEYS == rawget(_G, 'KEYS')",
        "return type(__redis__err__handler)",
        "local t = __redis__err__handler('x') return {t.err, t.source, t.line}",
        "local t = __redis__err__handler({err = 'y'}) return {type(t), t.err, t.source, t.line}",
        "return __redis__err__handler(5)",
        "return cjson.encode(string)",
        "return cjson.encode(_G)",
        "return cjson.encode({math})",
        "return #cmsgpack.pack(bit)",
        "return #cmsgpack.pack(struct)",
    ] {
        eval(&mut d, script);
    }
}

#[test]
fn writes_to_the_globals_and_libraries_fail_as_in_redis() {
    let Some(mut d) = Diff::start(&[]) else { return };
    for script in [
        "x = 1",
        "_G.x = 1",
        "_G._G = nil",
        "string = nil",
        "tostring = nil",
        "string.foo = 1",
        "redis.call = nil",
        "cjson.encode = nil",
        "local g = _G; g.string.x = 1",
        "setmetatable(_G, nil)",
        "return setmetatable(_G, {})",
        "setmetatable(redis, nil)",
        "setmetatable(string, {})",
        "setmetatable(getmetatable(_G), {})",
        "rawset(_G, 'x', 1)",
        "return rawset(_G, 'x', 1)",
        "rawset(redis, 'x', 1)",
        "rawset(string, 'rep', 1)",
        "return rawset(getmetatable(_G), 'x', 1)",
        "rawset(getmetatable(''), '__index', nil)",
        "getmetatable(_G).__index = nil",
        "getmetatable('').__index = nil",
        "table.insert(_G, 1)",
        "table.insert(string, 1)",
        "return table.insert(redis, 1, 'x')",
        "table.insert(_G, 'x', 1)",
        "table.insert(_G)",
        "table.insert(_G, 1, 2, 3)",
        "table.remove(_G)",
        "table.sort(_G)",
        "local ok, e = pcall(function() string.foo = 1 end) return e",
        "local ok, e = pcall(function() x = 1 end) return e",
        "local ok, e = pcall(rawset, _G, 'x', 1) return e",
        "local ok, e = pcall(setmetatable, _G, nil) return e",
        "local ok, e = pcall(table.insert, string, 1) return e",
        "return foo",
        "return _G.foo",
        "return rawget(_G, 'foo')",
    ] {
        eval(&mut d, script);
    }
    // Nothing a refused write attempted is visible to the next script.
    for script in ["return rawget(_G, 1)", "return #_G", "return rawget(string, 1)", "return rawget(_G, 'x')"] {
        assert_eq!(eval(&mut d, script), eval(&mut d, script));
    }
    assert_eq!(eval(&mut d, "return #string"), "0");
}

#[test]
fn builtin_argument_errors_keep_the_script_suffix() {
    let Some(mut d) = Diff::start(&[]) else { return };
    for script in [
        "return pairs(nil)",
        "pairs(nil)",
        "return next(nil)",
        "return next()",
        "return rawget(nil, 1)",
        "return rawget(_G)",
        "return rawget()",
        "return rawset(nil, 1, 2)",
        "return rawset({}, 1)",
        "return rawset({}, nil, 2)",
        "rawset({}, nil, 2)",
        "return setmetatable(nil, {})",
        "return setmetatable({}, 1)",
        "return setmetatable(setmetatable({}, {__metatable = 1}), {})",
        "return getmetatable()",
        "return table.insert(nil, 1)",
        "return table.insert({}, 'a', 1)",
        "return table.foreach(nil)",
        "return table.foreach({}, nil)",
        "return next(_G, 'nokey')",
        "local function f() return rawget(nil) end return f()",
        "local t = setmetatable({}, {__metatable = 'locked'}) return getmetatable(t)",
        "local t = setmetatable({}, {}) rawset(t, 'a', 1) return rawget(t, 'a')",
        "local t = {} table.insert(t, 'a') table.insert(t, 1, 'b') return t",
        "local t = {a = 1} local k, v = next(t) return {k, v}",
        // The other builtins the sandbox replaces.
        "local a, b = pcall() return {tostring(a), tostring(b)}",
        "local a, b, c = pcall(pcall) return {tostring(a), tostring(b), tostring(c)}",
        "local a, b = pcall(nil) return {tostring(a), tostring(b)}",
        "local a, b = pcall(error) return {tostring(a), tostring(b)}",
        "local a, b = pcall(error, {err = 5}) return {tostring(a), type(b)}",
        "local a, b = pcall(error, {x = 1}) return {tostring(a), type(b)}",
        "local a, b = pcall(cjson.decode, '{') return {tostring(a), type(b), b}",
        "return {pcall(function() return 1, 2, 3 end)}",
        "return {pcall(redis.call, 'nosuch')}",
        "return {pcall(error, {err = 'E1'})}",
        "return pcall(rawset, _G, 'x', 1)",
        "return xpcall()",
        "return xpcall(function() return 1 end)",
        "return {xpcall(function() error('x') end, function(e) return 'h:' .. e end)}",
        "return {xpcall(redis.call, function(e) return type(e) end, 'nosuch')}",
        "return coroutine.resume()",
        "return coroutine.resume(nil)",
        "return {coroutine.resume(coroutine.create(function() error('boom') end))}",
        "return {coroutine.resume(coroutine.create(function() return 1, 2 end))}",
        "local co = coroutine.create(function() end) coroutine.resume(co) return {coroutine.resume(co)}",
        "return {pcall(coroutine.resume)}",
        "return loadstring()",
        "return loadstring(nil)",
        "return loadstring('return 7')()",
        "local f, e = loadstring('return +') return e",
        "local f, e = loadstring('return +', 'abc') return e",
        "local f, e = loadstring(string.char(27) .. 'Lua') return e",
        "local f, e = loadstring(string.dump(function() return 1 end)) return e",
        "return load(nil)",
        "return load('return 1')",
        "local f = load(function() return nil end) return type(f)",
        "local f, e = load(function() return string.char(27) .. 'Lua' end) return e",
        "local d = false local f, e = load(function() if d then return nil end d = true return 'return +' end) return e",
        "local d = false local f, e = load(function() if d then return nil end d = true return 'return +' end, 'nm') \
         return e",
        "local d = false return load(function() if d then return nil end d = true return 'return 3' end)()",
        "local f, e = load(function() return {} end) return e",
    ] {
        let r = eval(&mut d, script);
        // (Redis itself leaves the suffix off an error raised while a
        // reader feeds the parser; moonshard matches it.)
        if r.starts_with("ERR") && !r.contains("reader function") {
            assert!(r.contains("script: "), "{script}: {r}");
        }
    }
}

#[test]
fn randomized_global_and_library_access() {
    let Some(mut d) = Diff::start(&[]) else { return };
    let seed = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.as_nanos() as u64).unwrap_or(7) | 1
    });
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    for _ in 0..150 {
        let script = if rng.below(2) == 0 {
            let g = rng.pick(GLOBALS);
            match rng.below(7) {
                0 => format!("return type(rawget(_G, '{g}'))"),
                1 => format!("return type({g})"),
                2 => format!("return type(_G['{g}'])"),
                3 => format!("{g} = 1"),
                4 => format!("rawset(_G, '{g}', nil)"),
                5 => format!("local ok, e = pcall(function() _G['{g}'] = _G['{g}'] end) return {{tostring(ok), e}}"),
                // Whether `next` knows the key (what follows it depends on
                // the table's layout).
                _ => format!("return (pcall(next, _G, '{g}'))"),
            }
        } else {
            let (lib, fields) = LIBS[rng.below(LIBS.len() as u64) as usize];
            let f = rng.pick(fields);
            match rng.below(8) {
                0 => format!("return type(rawget({lib}, '{f}'))"),
                1 => format!("return type({lib}.{f})"),
                2 => format!("{lib}.{f} = 1"),
                3 => format!("rawset({lib}, '{f}', 1)"),
                4 => format!("return rawget({lib}, '{f}') == {lib}.{f}"),
                5 => format!("return (pcall(next, {lib}, '{f}'))"),
                6 => format!("table.insert({lib}, '{f}')"),
                _ => format!("return setmetatable({lib}, {{}})"),
            }
        };
        eval(&mut d, &script);
    }
}

/// Loads `body` as the library `lib` on both servers (replacing it).
#[track_caller]
fn load(d: &mut Diff, lib: &str, body: &str) -> String {
    common::show(d.check(&["FUNCTION", "LOAD", "REPLACE", &format!("#!lua name={lib}\n{body}")]))
}

#[track_caller]
fn fcall(d: &mut Diff, f: &str) -> String {
    common::show(d.check(&["FCALL", f, "0"]))
}

#[test]
fn functions_see_their_own_globals_as_redis() {
    let Some(mut d) = Diff::start(&[]) else { return };
    let cases: Vec<String> = vec![
        listing("_G"),
        listing("redis"),
        listing("getmetatable(_G)"),
        "return type(next(_G))".into(),
        "return rawget(_G, 'KEYS')".into(),
        "return rawget(_G, '__redis__err__handler')".into(),
        "return type(__redis__err__handler)".into(),
        "return KEYS".into(),
        "return type(rawget(redis, 'call'))".into(),
        "return type(rawget(redis, 'breakpoint'))".into(),
        "return type(redis.breakpoint)".into(),
        "x = 1".into(),
        "_G.x = 1".into(),
        "string.foo = 1".into(),
        "redis.foo = 1".into(),
        "rawset(_G, 'x', 1)".into(),
        "return rawset(redis, 'x', 1)".into(),
        "setmetatable(_G, nil)".into(),
        "table.insert(_G, 1)".into(),
        "table.insert(string, 1)".into(),
        "return pairs(nil)".into(),
        "return rawget(nil, 1)".into(),
        "return setmetatable({}, 1)".into(),
        "return foo".into(),
        "return cjson.encode(redis)".into(),
    ];
    for (i, body) in cases.iter().enumerate() {
        load(&mut d, &format!("g{i}"), &format!("redis.register_function('f{i}', function(keys, args) {body} end)"));
        fcall(&mut d, &format!("f{i}"));
        // The EVAL globals come back after a function ran, and go again.
        eval(&mut d, "return {type(__redis__err__handler), type(rawget(_G, 'KEYS')), #KEYS}");
        fcall(&mut d, &format!("f{i}"));
    }
    // Library code at load time sees only `redis` (no builtins to reach
    // the globals raw), and cannot write.
    for body in [
        "local x = _G",
        "local x = rawget",
        "local x = __redis__err__handler",
        "x = 1",
        "redis.x = 1",
        "redis.log = nil",
        "local x = redis.call",
    ] {
        load(&mut d, "atload", &format!("{body}\nredis.register_function('atload', function() return 1 end)"));
    }
}
