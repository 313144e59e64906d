//! Hostile scripts (issue 7, point 5): each class gives an error reply, and
//! the server stays healthy afterwards: PING answers, a normal EVAL works on
//! the same shard, and another client's traffic is unaffected.

mod common;

use common::{moonshard, run_str, Proc};
use redis::Value;
use std::time::{Duration, Instant};

fn s(v: &str) -> Value {
    Value::BulkString(v.as_bytes().to_vec())
}

/// A server with a small Lua memory limit so memory bombs end quickly.
fn server() -> Proc {
    moonshard(&["--shards", "2", "--lua-memory-limit", "33554432", "--busy-reply-threshold", "100"])
}

/// A client whose replies time out, so a stuck server fails the test
/// instead of hanging it.
fn client(srv: &Proc) -> redis::Connection {
    let c = srv.client();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c
}

/// Runs `script` with one key (so it lands on a known shard).
fn eval(con: &mut redis::Connection, script: &str) -> Result<Value, String> {
    run_str(con, &["EVAL", script, "1", "{h}k"])
}

/// The script must fail with an error containing `want`.
#[track_caller]
fn refused(con: &mut redis::Connection, script: &str, want: &str) {
    match eval(con, script) {
        Err(e) => assert!(e.contains(want), "script {script:?}: error {e:?} lacks {want:?}"),
        Ok(v) => panic!("script {script:?} was not refused: {v:?}"),
    }
}

/// PING, a normal EVAL on the same shard (same VM), and another client's
/// plain commands all work.
#[track_caller]
fn healthy(srv: &Proc, con: &mut redis::Connection) {
    assert_eq!(run_str(con, &["PING"]), Ok(Value::SimpleString("PONG".into())));
    assert_eq!(
        run_str(con, &["EVAL", "return {KEYS[1], ARGV[1], #KEYS, #ARGV}", "1", "{h}k", "a"]),
        Ok(Value::Array(vec![s("{h}k"), s("a"), Value::Int(1), Value::Int(1)]))
    );
    assert_eq!(eval(con, "return redis.call('set', KEYS[1], 'ok')"), Ok(Value::Okay));
    assert_eq!(eval(con, "return string.upper(redis.call('get', KEYS[1]))"), Ok(s("OK")));
    let mut other = client(srv);
    assert_eq!(run_str(&mut other, &["SET", "plain", "1"]), Ok(Value::Okay));
    assert_eq!(run_str(&mut other, &["INCR", "plain"]), Ok(Value::Int(2)));
}

#[test]
fn bytecode_is_refused() {
    let srv = server();
    let mut c = client(&srv);
    // Refused as Redis's Lua refuses them: every chunk is parsed as text.
    refused(&mut c, "return assert(loadstring(string.dump(function() return 1 end)))()", "near 'char(27)'");
    refused(
        &mut c,
        "local s = string.dump(function() return 1 end) local done = false \
         return assert(load(function() if done then return nil end done = true return s end))()",
        "near 'char(27)'",
    );
    // load takes a reader function only, as Lua 5.1's.
    refused(&mut c, "return assert(load(string.dump(function() return 1 end)))()", "function expected, got string");
    // A handcrafted header, and one split across the pieces of a reader.
    refused(&mut c, "return assert(loadstring('\\27Lua\\81\\0\\1\\4\\8\\4\\8\\0'))()", "near 'char(27)'");
    refused(
        &mut c,
        "local parts = {'\\27', 'Lua', '\\81\\0'} local i = 0 \
         return assert(load(function() i = i + 1 return parts[i] end))()",
        "near 'char(27)'",
    );
    // As the script itself.
    let e = run_str(&mut c, &["EVAL", "\x1bLua\u{51}\0\x01", "0"]).unwrap_err();
    assert!(e.starts_with("ERR Error compiling script"), "{e}");
    // Text chunks still load.
    assert_eq!(eval(&mut c, "return loadstring('return 1 + 1')()"), Ok(Value::Int(2)));
    healthy(&srv, &mut c);
}

#[test]
fn deep_recursion_is_an_error() {
    let srv = server();
    let mut c = client(&srv);
    refused(&mut c, "local function f() return f() + 1 end return f()", "stack overflow");
    // Recursion through C functions (pcall, gsub callbacks, metamethods).
    refused(&mut c, "local function f() local ok, e = pcall(f) error(e, 0) end return f()", "stack overflow");
    refused(&mut c, "local function f(s) return (string.gsub(s, '.', f)) end return f('x')", "stack overflow");
    refused(
        &mut c,
        "local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end return t.x",
        "stack overflow",
    );
    refused(&mut c, "local function f(n) return tostring(setmetatable({}, {__tostring = f})) end return f()", "");
    healthy(&srv, &mut c);
}

/// The raw reply to an EVAL of `script` with one key (deep replies are more
/// than the client library parses): read until the PING sent after it answers.
fn raw_eval(srv: &Proc, script: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut req = format!("*4\r\n$4\r\nEVAL\r\n${}\r\n{script}\r\n$1\r\n1\r\n$4\r\n{{h}}k\r\n", script.len());
    req.push_str("*1\r\n$4\r\nPING\r\n");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(b"+PONG\r\n") {
        let n = s.read(&mut buf).expect("no reply");
        assert!(n > 0, "connection closed: no reply to {script:?}");
        out.extend_from_slice(&buf[..n]);
    }
    out.truncate(out.len() - 7);
    out
}

#[test]
fn deep_tables_follow_the_stack_rule() {
    let srv = server();
    let mut c = client(&srv);
    let deep = "local t = {} local c = t for i = 1, 100000 do c[1] = {} c = c[1] end";
    // As in Redis: the element past Lua's C stack limit (8000 slots, 4 per
    // level) is answered with an error, inside the nested reply.
    let err = b"-ERR reached lua stack limit\r\n";
    let out = raw_eval(&srv, &format!("{deep} return t"));
    assert_eq!(out.len(), 7995 * 4 + err.len());
    assert!(out.ends_with(err));
    let out = raw_eval(&srv, &format!("{deep} return {{map = {{x = t}}}}"));
    assert!(out.starts_with(b"*2\r\n$1\r\nx\r\n") && out.ends_with(err), "{}", String::from_utf8_lossy(&out[..40]));
    assert_eq!(out.len(), 11 + 7992 * 4 + err.len());
    let out = raw_eval(&srv, "local t = {} t[1] = t return t");
    assert_eq!(out.len(), 7995 * 4 + err.len());
    // Beyond Redis (which builds it until memory runs out): a result that
    // repeats its tables exponentially is refused.
    let too_large = "reply too large: the script's result repeats its tables too often";
    refused(&mut c, "local t = {} t[1] = t t[2] = t return t", too_large);
    refused(&mut c, "local t = {} for i = 1, 60 do t = {t, t} end return t", too_large);
    refused(&mut c, "local t = {} for i = 1, 60 do t = {map = {a = t, b = t}} end return t", too_large);
    assert_eq!(eval(&mut c, "local r = {1, 2} return #{r, r}"), Ok(Value::Int(2)));
    refused(&mut c, &format!("{deep} return redis.call('set', KEYS[1], t)"), "must be strings or integers");
    refused(&mut c, &format!("{deep} return redis.call('set', KEYS[1], 'v', t)"), "must be strings or integers");
    // A moderately nested reply is still fine.
    let nested = eval(&mut c, "local t = {1} for i = 1, 50 do t = {t} end return t").unwrap();
    let mut depth = 0;
    let mut v = &nested;
    while let Value::Array(items) = v {
        depth += 1;
        v = &items[0];
    }
    assert_eq!((depth, v), (51, &Value::Int(1)));
    healthy(&srv, &mut c);
}

#[test]
fn memory_bombs_hit_the_lua_memory_limit() {
    let srv = server();
    let mut c = client(&srv);
    // 2^31 wraps to a negative int in Lua 5.1's string.rep: an empty string.
    assert_eq!(eval(&mut c, "return #string.rep('x', 2^31)"), Ok(Value::Int(0)));
    refused(&mut c, "return #string.rep('x', 2^30)", "out of memory");
    refused(&mut c, "local s = 'x' while true do s = s .. s end", "out of memory");
    refused(&mut c, "local t = {} for i = 1, 1e9 do t[i] = string.rep('y', 100) .. i end", "out of memory");
    refused(&mut c, "return #table.concat({string.rep('x', 2^20)}, string.rep('z', 2^24), 1, 64)", "out of memory");
    // pcall cannot keep the script going on a VM that ran out of memory.
    refused(
        &mut c,
        "local n = 0 while true do local ok = pcall(function() local s = 'x' while true do s = s .. s end end) \
         n = n + 1 end",
        "",
    );
    // The limit reached while redis.call hands a reply to the script.
    let grow = "redis.call('del', KEYS[1]) for i = 1, 500 do redis.call('rpush', KEYS[1], 'v' .. i) end \
                local keep = {} while true do keep[#keep + 1] = CALL('lrange', KEYS[1], 0, -1) end";
    refused(&mut c, &grow.replace("CALL", "redis.call"), "out of memory");
    refused(&mut c, &grow.replace("CALL", "redis.pcall"), "out of memory");
    refused(
        &mut c,
        "local keep = {} while true do local ok, v = pcall(redis.call, 'lrange', KEYS[1], 0, -1) keep[#keep + 1] = v end",
        "out of memory",
    );
    healthy(&srv, &mut c);
    // The limit is settable at run time.
    assert_eq!(run_str(&mut c, &["CONFIG", "SET", "lua-memory-limit", "8388608"]), Ok(Value::Okay));
    refused(&mut c, "return #string.rep('x', 2^24)", "out of memory");
    healthy(&srv, &mut c);
}

#[test]
fn library_tables_and_metatables_are_read_only() {
    let srv = server();
    let mut c = client(&srv);
    let ro = "Attempt to modify a readonly table";
    refused(&mut c, "setmetatable(redis, {})", ro);
    refused(&mut c, "redis.call = function() return 1 end", ro);
    refused(&mut c, "getmetatable('').__index = {upper = function() return 'pwned' end}", ro);
    refused(&mut c, "getmetatable('').__index.upper = function() return 'pwned' end", ro);
    refused(&mut c, "rawset(getmetatable(''), '__index', {})", ro);
    refused(&mut c, "string.upper = function() return 'pwned' end", ro);
    refused(&mut c, "rawset(_G, 'x', 1)", ro);
    refused(&mut c, "rawset(string, 'upper', 1)", ro);
    refused(&mut c, "setmetatable(_G, nil)", ro);
    refused(&mut c, "_G.redis = nil", ro);
    refused(&mut c, "cjson.encode = nil", ro);
    refused(&mut c, "math.random = function() return 4 end", ro);
    // As in Redis: the globals' metatable is shown read-only, the others have none.
    assert_eq!(
        eval(&mut c, "return type(getmetatable(_G)) == 'table' and getmetatable(redis) == nil"),
        Ok(Value::Int(1))
    );
    refused(&mut c, "getmetatable(_G).__index = {}", ro);
    // The ways to the real globals table or to __gc are gone (as in Redis 7.0).
    for name in ["getfenv", "setfenv", "newproxy", "debug", "dofile", "loadfile", "print", "require", "os", "io"] {
        refused(&mut c, &format!("return type({name})"), &format!("nonexistent global variable '{name}'"));
    }
    // Tampering with KEYS and ARGV does not reach the next script.
    assert_eq!(
        eval(
            &mut c,
            "KEYS[5] = 'x' ARGV.extra = 1 setmetatable(ARGV, {__index = function() return 'evil' end}) return 1"
        ),
        Ok(Value::Int(1))
    );
    assert_eq!(
        eval(&mut c, "return {#KEYS, KEYS[5] or 'none', ARGV.extra or 'none', ARGV[3] or 'none'}"),
        Ok(Value::Array(vec![Value::Int(1), s("none"), s("none"), s("none")]))
    );
    // String methods still work, with the real library behind them.
    assert_eq!(eval(&mut c, "return ('abc'):upper()"), Ok(s("ABC")));
    healthy(&srv, &mut c);
}

#[test]
fn gc_metamethods_cannot_be_used() {
    let srv = server();
    let mut c = client(&srv);
    // The only way to a __gc metamethod in Lua 5.1 is newproxy: refused, and
    // the error is catchable like any other.
    let script = "local ok, e = pcall(function() \
                    local p = newproxy(true) getmetatable(p).__gc = function() error('boom') end \
                  end) \
                  collectgarbage() \
                  return {ok and 1 or 0, e}";
    let r = eval(&mut c, script).unwrap();
    let Value::Array(items) = r else { panic!("{r:?}") };
    assert_eq!(items[0], Value::Int(0));
    assert!(format!("{:?}", items[1]).contains("newproxy"), "{items:?}");
    // A table's __gc does nothing in Lua 5.1: no error surfaces later either.
    let tables = "for i = 1, 1000 do setmetatable({}, {__gc = function() error('boom') end}) end \
                  collectgarbage() return 'ok'";
    assert_eq!(eval(&mut c, tables), Ok(s("ok")));
    // Unprotected, the error is an ordinary script error.
    refused(&mut c, "local p = newproxy(true) getmetatable(p).__gc = function() error('boom') end", "newproxy");
    assert_eq!(eval(&mut c, "collectgarbage() collectgarbage() return 'clean'"), Ok(s("clean")));
    healthy(&srv, &mut c);
}

fn wait_busy(c: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match run_str(c, &["GET", "{h}other"]) {
            Err(e) if e.starts_with("BUSY") => return,
            _ if Instant::now() > deadline => panic!("script never became BUSY"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A loop inside a coroutine answers SCRIPT KILL and makes the shard BUSY
/// past the threshold, like a loop on the main thread.
#[test]
fn coroutine_loops_can_be_killed() {
    let srv = server();
    let mut c = client(&srv);
    let port = srv.port;
    let loops = [
        "local co = coroutine.wrap(function() local i = 0 while true do i = i + 1 end end) co()",
        "local co = coroutine.create(function() while true do end end) coroutine.resume(co) return 'swallowed'",
        // Resuming in a loop: the kill is not swallowed by resume.
        "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        // Nested coroutines, each catching the other's errors.
        "local outer = coroutine.create(function() \
           while true do coroutine.resume(coroutine.create(function() while true do end end)) end end) \
         while true do coroutine.resume(outer) end",
        "local co = coroutine.wrap(function() while true do pcall(function() while true do end end) end end) co()",
    ];
    for script in loops {
        let h = std::thread::spawn(move || {
            let cl = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
            let mut con = cl.get_connection().unwrap();
            con.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            eval(&mut con, script)
        });
        wait_busy(&mut c);
        // Other shards (the other client's keys) keep serving meanwhile.
        let mut other = client(&srv);
        let free = (0..100).map(|i| format!("k{i}")).find(|k| run_str(&mut other, &["SET", k, "1"]).is_ok());
        assert!(free.is_some(), "no shard served while one script ran");
        assert_eq!(run_str(&mut other, &["SCRIPT", "KILL"]), Ok(Value::Okay));
        let e = h.join().unwrap().unwrap_err();
        assert!(e.contains("Script killed by user with SCRIPT KILL"), "{script}: {e}");
        healthy(&srv, &mut c);
    }
}

/// On one core (CPU affinity) moonshard runs one worker thread; a script
/// that never ends still lets other clients through (its worker's
/// connections move to a fresh thread after 20 ms) and SCRIPT KILL stops it.
#[test]
fn one_core_one_worker_and_a_long_script_does_not_stop_the_rest() {
    assert!(common::has_program("taskset"), "taskset (util-linux) is needed");
    let port = common::free_port();
    let dir = common::temp_dir("one-core");
    let child = std::process::Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_moonshard"), "--port", &port.to_string(), "--save", ""])
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start moonshard under taskset");
    let srv = Proc { port, child, dir: Some(dir) };
    let mut c = None;
    for _ in 0..100 {
        if let Ok(con) = redis::Client::open(srv.url()).unwrap().get_connection() {
            c = Some(con);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = c.expect("moonshard answers");
    let info = common::field_of(&mut c, "server", "io_threads_active");
    assert_eq!(info, "0", "one worker thread on one core");
    let h = std::thread::spawn(move || {
        let cl = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut con = cl.get_connection().unwrap();
        con.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        eval(&mut con, "while true do end")
    });
    wait_busy(&mut c);
    let started = Instant::now();
    let mut other = client(&srv);
    assert_eq!(run_str(&mut other, &["PING"]), Ok(Value::SimpleString("PONG".into())));
    assert!(started.elapsed() < Duration::from_secs(5), "a new client waited for the script");
    assert_eq!(run_str(&mut other, &["SCRIPT", "KILL"]), Ok(Value::Okay));
    let e = h.join().unwrap().unwrap_err();
    assert!(e.contains("Script killed by user with SCRIPT KILL"), "{e}");
    healthy(&srv, &mut c);
}
