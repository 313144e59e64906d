//! Differential tests against a real redis-server 7.0 for scripting,
//! functions and argument-check details: replies compared byte for byte
//! (both protocols), and the error statistics scripts leave behind.
//!
//! Covers: `redis.call` with thousands of arguments, the globals'
//! read-only metatable, commands scripts may not call, `min-replicas-to-write`
//! refusals, error counting in INFO commandstats/errorstats, deeply nested
//! results (Redis's own stack rule), the `redis.*` helpers' argument
//! handling, FUNCTION LOAD's environment, timeout and error texts, argument
//! check order of a few commands, and client bytes quoted in error texts.

mod common;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A raw RESP connection: sends byte arguments, reads one whole reply
/// without recursion (replies here nest thousands deep).
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw { s, buf: Vec::new() }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = self.s.read(&mut chunk).expect("read");
        assert!(n > 0, "server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn line(&mut self, from: usize) -> usize {
        loop {
            if let Some(p) = self.buf[from..].windows(2).position(|w| w == b"\r\n") {
                return from + p + 2;
            }
            self.fill();
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.s.write_all(&req).expect("send");
        let mut pos = 0;
        let mut pending = 1u64;
        while pending > 0 {
            pending -= 1;
            let end = self.line(pos);
            let head = self.buf[pos];
            let n: i64 = std::str::from_utf8(&self.buf[pos + 1..end - 2]).unwrap_or("0").parse().unwrap_or(0);
            pos = end;
            match head {
                b'$' | b'=' | b'!' if n >= 0 => {
                    while self.buf.len() < pos + n as usize + 2 {
                        self.fill();
                    }
                    pos += n as usize + 2;
                }
                b'*' | b'~' | b'>' if n > 0 => pending += n as u64,
                b'%' if n > 0 => pending += 2 * n as u64,
                _ => {}
            }
        }
        self.buf.drain(..pos).collect()
    }
}

/// moonshard and redis-server side by side, one raw client each.
struct Pair {
    _ours: common::Proc,
    _theirs: common::Proc,
    ports: [u16; 2],
}

impl Pair {
    fn start() -> Option<Pair> {
        let theirs = common::redis_server()?;
        let ours = common::moonshard(&["--shards", "2"]);
        let ports = [ours.port, theirs.port];
        Some(Pair { _ours: ours, _theirs: theirs, ports })
    }

    fn clients(&self) -> Both {
        Both([Raw::connect(self.ports[0]), Raw::connect(self.ports[1])])
    }
}

struct Both([Raw; 2]);

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 300 {
        format!("{}... ({} bytes)", &s[..300], b.len())
    } else {
        s.into_owned()
    }
}

impl Both {
    /// Sends `args` to both servers and asserts the same reply bytes.
    #[track_caller]
    fn check(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let ours = self.0[0].call(args);
        let theirs = self.0[1].call(args);
        assert!(
            ours == theirs,
            "moonshard and redis-server differ on {:?}:\n  ours:   {}\n  theirs: {}",
            args.iter().map(|a| show(a)).collect::<Vec<_>>(),
            show(&ours),
            show(&theirs)
        );
        ours
    }

    #[track_caller]
    fn check_str(&mut self, args: &[&str]) -> Vec<u8> {
        let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.check(&v)
    }

    #[track_caller]
    fn eval(&mut self, script: &str) -> Vec<u8> {
        self.check_str(&["EVAL", script, "0"])
    }

    /// Sends to both, replies not compared (ids, addresses).
    fn both(&mut self, args: &[&str]) {
        let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.0[0].call(&v);
        self.0[1].call(&v);
    }

    fn hello(&mut self, proto: &str) {
        self.both(&["HELLO", proto]);
    }
}

#[test]
fn scripting_api_matches_redis() {
    let Some(p) = Pair::start() else { return };
    let mut b = p.clients();
    b.check_str(&["FLUSHALL"]);
    // 7,999 arguments: Redis drops them from the Lua stack before it pushes the reply.
    b.eval("local t = {} for i = 1, 7999 do t[i] = i end return redis.call('rpush', 'l', unpack(t))");
    b.eval("local t = {} for i = 1, 7999 do t[i] = 'x' end return redis.pcall('rpush', 'l', unpack(t))");
    b.eval("local t = {} for i = 1, 8000 do t[i] = i end return redis.call('rpush', 'l', unpack(t))");
    // The globals' metatable exists, read-only; other library tables have none.
    for script in [
        "getmetatable(_G).__index = {}",
        "getmetatable(_G).__newindex = nil",
        "return type(getmetatable(_G))",
        "return type(getmetatable(_G).__index)",
        "return tostring(getmetatable(getmetatable(_G)))",
        "return tostring(rawequal(getmetatable(_G), getmetatable(_G)))",
        "setmetatable(getmetatable(_G), {})",
        "rawset(getmetatable(_G), 'a', 1)",
        "return {pcall(getmetatable(_G).__index, _G, 'zz')}",
        "return tostring(getmetatable(redis))",
        "return tostring(getmetatable(string))",
        "setmetatable(redis, {})",
        "rawset(redis, 'x', 1)",
        "getmetatable('').x = 1",
        "return tostring(getmetatable('').__index == string)",
    ] {
        b.eval(script);
    }
    // The redis.* helpers' argument handling.
    for script in [
        "redis.setresp('3') return redis.call('hgetall', 'nope')",
        "return redis.setresp('3')",
        "return redis.setresp(' 3')",
        "return redis.setresp('x')",
        "return redis.setresp(3.5)",
        "return redis.setresp()",
        "return {err = '-x'}",
        "return {err = '-'}",
        "return {err = ''}",
        "return {err = 'x\\0y'}",
        "return {ok = 'x\\0y\\r\\nz'}",
        "return {err = 'x', ok = 'y'}",
        "error({err = 1})",
        "error({err = 1.5})",
        "error({err = '-x'})",
        "error('x\\0y')",
        "return redis.error_reply()",
        "return redis.error_reply(1)",
        "return redis.error_reply('a', 'b')",
        "return redis.error_reply('')",
        "return redis.error_reply('-')",
        "return redis.error_reply('-CODE msg\\r\\n')",
        "return redis.error_reply('x\\0y')",
        "return redis.status_reply()",
        "return redis.status_reply(1)",
        "return redis.status_reply('a', 'b')",
        "return redis.status_reply({})",
        "return redis.status_reply('x\\0y')",
        "return redis.acl_check_cmd()",
        "return redis.acl_check_cmd('get', 'k')",
        "return redis.acl_check_cmd('nosuch')",
        "return redis.acl_check_cmd({})",
        "return redis.acl_check_cmd('get', {})",
        "return redis.acl_check_cmd('config')",
        "return redis.acl_check_cmd('config', 'nosuch')",
        "return redis.acl_check_cmd('CONFIG', 'GET', 'x')",
        "return redis.acl_check_cmd('cluster', 'reset')",
        "redis.log('1', 'x') return 1",
        "redis.log('x', 'y')",
        "redis.log(9, 'x')",
        "redis.set_repl('3') return 1",
        "redis.set_repl()",
        "redis.set_repl(-1)",
        "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}",
    ] {
        b.eval(script);
    }
    // cmsgpack offsets are 64-bit, shown as `int`.
    let w = "local function w(...) local t = {select('#', ...)} for i = 1, select('#', ...) do \
             t[#t + 1] = tostring((select(i, ...))) end return t end return w";
    for call in [
        "cmsgpack.unpack_limit(cmsgpack.pack(7), 1)",
        "cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)",
        "cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 1, 2)",
        "cmsgpack.unpack_limit(cmsgpack.pack(7), 1, 2^40)",
        "cmsgpack.unpack_limit(cmsgpack.pack(7), 1, -5)",
        "cmsgpack.unpack_one(cmsgpack.pack(7, 8), 1)",
        "cmsgpack.unpack_one(cmsgpack.pack(7), 2^32 + 1)",
    ] {
        b.eval(&format!("{w}({call})"));
    }
}

#[test]
fn script_denied_commands_match_redis() {
    let Some(p) = Pair::start() else { return };
    let mut b = p.clients();
    let calls = [
        "'cluster', 'reset'",
        "'CLUSTER', 'RESET', 'hard'",
        "'cluster', 'nosuch'",
        "'cluster'",
        // Routed by slot in moonshard, but refused first on a server
        // without cluster mode (fuzzer, standalone keyspace mode).
        "'cluster', 'countkeysinslot', 0",
        "'cluster', 'countkeysinslot', 16383",
        "'cluster', 'getkeysinslot', 0, 1",
        "'cluster', 'getkeysinslot', 16383, 1",
        "'acl'",
        "'acl', 'whoami'",
        "'acl', 'whoami', 'x'",
        "'acl', 'nosuch'",
        "'module', 'list'",
        "'module'",
        "'debug', 'sleep', 0",
        "'debug'",
        "'sync'",
        "'sync', 'x'",
        "'psync', 'a', 'b'",
        "'replicaof', 'no', 'one'",
        "'slaveof', 'no', 'one'",
        "'wait', 0, 0",
        "'wait'",
        "'role'",
        "'failover'",
        "'replconf'",
        "'bgrewriteaof'",
        "'client', 'pause', 10",
        "'client', 'pause'",
        "'client', 'tracking', 'on'",
        "'script', 'debug', 'yes'",
        "'eval', 'return 1', 0",
        "'multi'",
        "'subscribe', 'x'",
        "'config', 'get', 'x'",
        "'nosuch'",
    ];
    for c in calls {
        b.eval(&format!("return redis.pcall({c})"));
        b.eval(&format!("return redis.call({c})"));
    }
}

#[test]
fn deep_results_match_redis() {
    let Some(p) = Pair::start() else { return };
    let mut b = p.clients();
    let scripts = [
        "local t = 1 for i = 1, 10000 do t = {t} end return t",
        "local t = {} t[1] = t return t",
        "local t = 1 for i = 1, 3000 do t = {map = {k = t}} end return t",
        "local t = 1 for i = 1, 3000 do t = {set = {[{t}] = true}} end return t",
        "local t = 1 for i = 1, 3000 do t = {1, {map = {[t] = 'v'}}} end return t",
        "local t = {} for i = 1, 7990 do t = {t} end return {map = {a = t}}",
        "local t = {err = 'deep x'} for i = 1, 7993 do t = {t} end return t",
        "local t = {ok = 'fine'} for i = 1, 8000 do t = {t, {double = 1.5}} end return t",
    ];
    for proto in ["2", "3"] {
        b.hello(proto);
        for s in scripts {
            b.eval(s);
            b.eval(&format!("redis.setresp(3) {s}"));
        }
    }
}

/// Random nested results of every kind Redis converts, both protocols.
#[test]
fn random_results_match_redis() {
    fn value(rng: &mut StdRng, depth: u32) -> String {
        let leaf = depth > 3 || rng.gen_bool(0.35);
        if leaf {
            return match rng.gen_range(0..14) {
                0 => format!("{}", rng.gen_range(-1000..1000)),
                1 => format!("{}.{}", rng.gen_range(-99..99), rng.gen_range(0..99)),
                2 => "'s'".into(),
                3 => "true".into(),
                4 => "false".into(),
                5 => "{err = 'E r'}".into(),
                6 => "{ok = 'fine'}".into(),
                7 => ["{double = -0.0}", "{double = 0/0}", "{double = 1e-300}", "{double = 1/0}", "{double = 2.5}"]
                    [rng.gen_range(0..5)]
                .into(),
                8 => "{big_number = '12345678901234567890'}".into(),
                9 => ["'txt'", "'mkd'", "'x'", "'long'", "''"][rng.gen_range(0..5)].to_string(),
                10 => "{verbatim_string = {format = 'txt', string = 'v'}}".into(),
                11 => "{verbatim_string = {format = 'ab', string = 'v'}}".into(),
                12 => "{err = 'x', ignore_error_stats_update = true}".into(),
                _ => "nil".into(),
            };
        }
        let n = rng.gen_range(0..4);
        let items: Vec<String> = (0..n).map(|_| value(rng, depth + 1)).collect();
        match rng.gen_range(0..3) {
            0 => format!("{{{}}}", items.join(", ")),
            1 => {
                let pairs: Vec<String> = items.iter().enumerate().map(|(i, v)| format!("k{i} = {v}")).collect();
                format!("{{map = {{{}}}}}", pairs.join(", "))
            }
            _ => {
                let keys: Vec<String> = (0..n).map(|i| format!("m{i} = true")).collect();
                format!("{{set = {{{}}}}}", keys.join(", "))
            }
        }
    }
    let Some(p) = Pair::start() else { return };
    let mut b = p.clients();
    let mut rng = StdRng::seed_from_u64(20261127);
    for i in 0..160 {
        let v = value(&mut rng, 0);
        b.hello(if i % 2 == 0 { "2" } else { "3" });
        b.eval(&format!("return {v}"));
        b.eval(&format!("redis.setresp(3) return {v}"));
    }
}

#[test]
fn min_replicas_to_write_matches_redis() {
    let Some(p) = Pair::start() else { return };
    let mut b = p.clients();
    let mut other = p.clients();
    b.check_str(&["FLUSHALL"]);
    b.check_str(&["FUNCTION", "FLUSH"]);
    b.check_str(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=mr\nredis.register_function('w', function() return 1 end) \
         redis.register_function{function_name='r', callback=function() return 2 end, flags={'no-writes'}}",
    ]);
    b.check_str(&["MULTI"]);
    b.check_str(&["SET", "x", "1"]);
    b.check_str(&["GET", "x"]);
    other.check_str(&["CONFIG", "SET", "min-replicas-to-write", "1"]);
    b.check_str(&["EXEC"]);
    for cmd in [
        &["SET", "x", "1"][..],
        &["GET", "x"],
        &["EVAL", "return 1", "0"],
        &["EVAL", "return redis.call('set', 'a', 'b')", "0"],
        &["EVAL", "return redis.pcall('set', 'a', 'b')", "0"],
        &["EVAL", "redis.call('get', 'a') return redis.pcall('set', 'a', 'b')", "0"],
        &["EVAL", "return redis.call('get', 'a')", "0"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'a')", "0"],
        &["EVAL", "#!lua flags=no-writes\nreturn redis.pcall('set', 'a', 'b')", "0"],
        &["EVAL_RO", "#!lua\nreturn 1", "0"],
        &["EVAL_RO", "return redis.pcall('set', 'a', 'b')", "0"],
        &["FCALL", "w", "0"],
        &["FCALL", "r", "0"],
        &["FCALL_RO", "r", "0"],
        &["FUNCTION", "DELETE", "mr"],
        &["MULTI"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["GET", "x"],
        &["EXEC"],
        &["MULTI"],
        &["GET", "x"],
        &["EXEC"],
    ] {
        b.check_str(cmd);
    }
    // Both parameters are needed for the rule to apply.
    other.check_str(&["CONFIG", "SET", "min-replicas-max-lag", "0"]);
    b.check_str(&["SET", "x", "1"]);
    other.check_str(&["CONFIG", "SET", "min-replicas-max-lag", "10"]);
    b.check_str(&["SET", "x", "1"]);
    other.check_str(&["CONFIG", "SET", "min-slaves-to-write", "0"]);
    b.check_str(&["SET", "x", "1"]);
    b.check_str(&["FUNCTION", "FLUSH"]);
}

/// The statistics lines a failing script changes, in a stable order.
fn stats(c: &mut Raw) -> Vec<String> {
    let mut out = Vec::new();
    for section in ["commandstats", "errorstats", "stats"] {
        let text = String::from_utf8_lossy(&c.call(&[b"INFO", section.as_bytes()])).into_owned();
        for line in text.split("\r\n") {
            if let Some(rest) = line.strip_prefix("cmdstat_") {
                let (name, fields) = rest.split_once(':').unwrap_or((rest, ""));
                if name == "info" {
                    continue;
                }
                let keep: Vec<&str> = fields
                    .split(',')
                    .filter(|f| {
                        f.starts_with("calls=") || f.starts_with("rejected_calls=") || f.starts_with("failed_calls=")
                    })
                    .collect();
                out.push(format!("{name}:{}", keep.join(",")));
            } else if line.starts_with("errorstat_") || line.starts_with("total_error_replies") {
                out.push(line.to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn script_error_stats_match_redis() {
    let Some(p) = Pair::start() else { return };
    let mut b = p.clients();
    let cases: &[&[&[&str]]] = &[
        &[&["EVAL", "error('x')", "0"]],
        &[&["EVAL", "return redis.call('nosuch')", "0"]],
        &[&["SET", "s", "str"], &["EVAL", "return redis.call('incr', 's')", "0"]],
        &[&["SET", "s", "str"], &["EVAL", "return redis.pcall('incr', 's')", "0"]],
        &[&["SET", "s", "str"], &["EVAL", "local r = redis.pcall('incr', 's') return 1", "0"]],
        &[&["SET", "s", "str"], &["EVAL", "local ok = pcall(redis.call, 'incr', 's') return 1", "0"]],
        &[&["SET", "s", "str"], &["EVAL", "return {redis.pcall('incr', 's')}", "0"]],
        &[&["SET", "s", "str"], &["EVAL", "local e = redis.pcall('incr', 's') return {err = e.err}", "0"]],
        &[&["SET", "s", "str"], &["EVAL", "local e = redis.pcall('incr', 's') error(e)", "0"]],
        &[&["EVAL", "return redis.error_reply('MY err')", "0"]],
        &[&["EVAL", "return {err = 'X y'}", "0"]],
        &[&["EVAL", "return {err = 'nospace'}", "0"]],
        &[&["EVAL", "return {err = 'abcdefghijklmnopqrstuvwxyz01234 x'}", "0"]],
        &[&["EVAL", "return {err = 'abcdefghijklmnopqrstuvwxyz012345 x'}", "0"]],
        &[&["EVAL", "return {{err = 'x y'}, 1, {err = 'z'}}", "0"]],
        &[&["EVAL", "return {err = 'x y', ignore_error_stats_update = true}", "0"]],
        &[&["EVAL", "error({err = 'x y', ignore_error_stats_update = true})", "0"]],
        &[&["EVAL", "return {{err = 'x y', ignore_error_stats_update = true}, {err = 'q r'}}", "0"]],
        &[&["EVAL", "return tostring(redis.pcall('nosuch').ignore_error_stats_update)", "0"]],
        &[&["EVAL", "return tostring(redis.pcall().ignore_error_stats_update)", "0"]],
        &[&["EVAL", "return redis.call('get')", "0"]],
        &[&["EVAL", "return redis.pcall('get')", "0"]],
        &[&["EVAL", "return redis.pcall('config', 'get')", "0"]],
        &[&["EVAL", "return redis.call('eval', 'return 1', 0)", "0"]],
        &[&["EVAL", "return redis.pcall({})", "0"]],
        &[&["EVAL", "return redis.call()", "0"]],
        &[&["EVAL", "return +", "0"]],
        &[&["EVAL", "return 1", "-1"]],
        &[&["EVAL", "#!lua flags=bogus\nreturn 1", "0"]],
        &[&["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]],
        &[&["EVALSHA", "fff", "x"]],
        &[&["EVAL_RO", "return redis.call('set', 'a', 'b')", "0"]],
        &[&["EVAL", "return redis.call('set', 'a', 'b', 'c')", "0"]],
        &[&["EVAL", "local t = {} t[1] = t return t", "0"]],
        &[
            &["MULTI"],
            &["EVAL", "return redis.call('nosuch')", "0"],
            &["EVAL", "return {1, {err = 'Q r'}}", "0"],
            &["EXEC"],
        ],
        &[
            &[
                "FUNCTION",
                "LOAD",
                "#!lua name=l1\nredis.register_function('f1', function() return redis.call('nosuch') end)",
            ],
            &["FCALL", "f1", "0"],
            &["FCALL", "nosuch", "0"],
            &["FCALL", "f1", "x"],
        ],
        &[&["FUNCTION", "LOAD", "#!lua name=l1\nerror('x')"]],
    ];
    for case in cases {
        for c in b.0.iter_mut() {
            c.call(&[b"FLUSHALL"]);
            c.call(&[b"FUNCTION", b"FLUSH"]);
            c.call(&[b"CONFIG", b"RESETSTAT"]);
        }
        for cmd in case.iter() {
            b.check_str(cmd);
        }
        let (ours, theirs) = (stats(&mut b.0[0]), stats(&mut b.0[1]));
        assert_eq!(ours, theirs, "statistics differ after {case:?}");
    }
}

#[test]
fn functions_match_redis() {
    let Some(p) = Pair::start() else { return };
    let mut b = p.clients();
    let lib = |body: &str| format!("#!lua name=lib\n{body}");
    let load = |b: &mut Both, body: &str| {
        b.check_str(&["FUNCTION", "LOAD", "REPLACE", &lib(body)]);
    };
    b.check_str(&["FUNCTION", "FLUSH"]);
    // Only redis.register_function, redis.log and the version constants at load time.
    for body in [
        "return math.abs(1)",
        "redis.call('ping')",
        "redis.setresp(3)",
        "redis.sha1hex('x')",
        "local x = redis.nosuch",
        "local x = redis.error_reply",
        "local x = cjson",
        "local x = KEYS",
        "local x = tostring",
        "local x = _G",
        "local m = getmetatable(redis)",
        "error('boom')",
        "y = 1",
        "redis.x = 1",
        "return 1",
        "",
        "local a = ",
        "local x = redis.REDIS_VERSION .. redis.LOG_WARNING redis.log(redis.LOG_DEBUG, 'x') \
         redis.register_function('f', function() return redis.REDIS_VERSION_NUM end)",
    ] {
        load(&mut b, body);
    }
    b.check_str(&["FCALL", "f", "0"]);
    // Functions see the full API but no KEYS/ARGV globals.
    for (body, call) in [
        ("redis.register_function('f', function() return KEYS end)", &["FCALL", "f", "0"][..]),
        ("redis.register_function('f', function() return ARGV end)", &["FCALL", "f", "0"]),
        (
            "redis.register_function('f', function(k, a) return {k[1], a[1], #k, #a, type(math)} end)",
            &["FCALL", "f", "1", "x", "y"],
        ),
        ("redis.register_function('f', function() return redis.setresp(3) end)", &["FCALL", "f", "0"]),
        ("redis.register_function('f', function() return redis.register_function end)", &["FCALL", "f", "0"]),
    ] {
        b.check_str(&["EVAL", "return {KEYS[1], ARGV[1]}", "1", "k", "a"]);
        load(&mut b, body);
        b.check_str(call);
    }
    b.eval("return type(redis.register_function)");
    // Registration.
    for body in [
        "redis.register_function{function_name='f', callback=function() end, flags={'NO-WRITES'}}",
        "redis.register_function{FUNCTION_NAME='f', CALLBACK=function() end}",
        "redis.register_function{function_name='f', callback=function() end, flags={'no-writes', 2}}",
        "redis.register_function{function_name='f', callback=function() end, flags='no-writes'}",
        "redis.register_function{function_name='f', callback=function() end, description=1}",
        "redis.register_function{function_name='f', callback=function() end, xx=1}",
        "redis.register_function{function_name='f'}",
        "redis.register_function{callback=function() end}",
        "redis.register_function{[1]=2}",
        "redis.register_function{[true]=2}",
        "redis.register_function{function_name=1, callback=function() end}",
        "redis.register_function('f', function() end, 3)",
        "redis.register_function(function() end, 'f')",
        "redis.register_function('a-b', function() end)",
        "redis.register_function('', function() end)",
        "redis.register_function('f', 1)",
        "redis.register_function(1)",
        "redis.register_function()",
        "redis.register_function('f', function() end) redis.register_function('f', function() end)",
        "redis.register_function(7, function() return 'seven' end)",
    ] {
        load(&mut b, body);
    }
    b.check_str(&["FCALL", "7", "0"]);
    // FCALL: names match case-insensitively; the function first, then its keys.
    load(&mut b, "redis.register_function('Fn', function() return 'called' end)");
    for call in [
        &["FCALL", "Fn", "0"][..],
        &["FCALL", "fN", "0"],
        &["FCALL", "fn", "notanumber"],
        &["FCALL_RO", "fn", "notanumber", "0"],
        &["FCALL", "fn", "-1"],
        &["FCALL", "fn", "2", "a"],
        &["FCALL_RO", "fn", "0"],
        &["FCALL", "nosuch", "x"],
        &["FUNCTION", "LOAD", "#!lua name=lib2\nredis.register_function('FN', function() end)"],
        &["FUNCTION", "LOAD", "#!lua name=lib\nerror('x')"],
        &["FUNCTION", "LIST", "LIBRARYNAME", "LI*"],
    ] {
        b.check_str(call);
    }
    // Library metadata, options and subcommand arity.
    for cmd in [
        &["FUNCTION", "LOAD", "#!lua\0 name=lib\nredis.register_function('f', function() end)"][..],
        &["FUNCTION", "LOAD", "REPLACE", "#!lua name='lib'\nredis.register_function('f', function() end)"],
        &["FUNCTION", "LOAD", "#!lua \"name=lib 2\"\n"],
        &["FUNCTION", "LOAD", "#!lua \"unbalanced\n"],
        &["FUNCTION", "LOAD", "#!lua name=a name=b\n"],
        &["FUNCTION", "LOAD", "#!lua name=a x=b\n"],
        &["FUNCTION", "LOAD", "#!luax name=a-b\n"],
        &["FUNCTION", "LOAD", "#!luax name=a\n"],
        &["FUNCTION", "LOAD", "#!\n"],
        &["FUNCTION", "LOAD", "#!lua name=a"],
        &["FUNCTION", "LOAD", "lua name=a\n"],
        &["FUNCTION", "LOAD", "REPLACE", "#!LUA NAME=lib\nredis.register_function('f', function() end)"],
        &["FUNCTION", "LOAD", "x", "#!lua name=lib\n"],
        &["FUNCTION", "LOAD", "replace"],
        &["FUNCTION", "RESTORE", "a", "b", "c"],
        &["FUNCTION", "RESTORE", "a", "b"],
        &["FUNCTION", "FLUSH", "a", "b"],
        &["function", "flush", "x"],
        &["FUNCTION", "LIST", "x"],
        &["FUNCTION", "LIST", "libraryname"],
        &["FUNCTION", "STATS"],
    ] {
        b.check_str(cmd);
    }
    // A library that never returns is stopped after 500 ms.
    b.check_str(&["FUNCTION", "LOAD", "#!lua name=t\nlocal i = 0 while true do i = i + 1 end"]);
    b.check_str(&["FUNCTION", "LIST", "LIBRARYNAME", "t"]);
    b.check_str(&["PING"]);
    b.check_str(&["FUNCTION", "FLUSH"]);
}

#[test]
fn argument_checks_match_redis() {
    let Some(p) = Pair::start() else { return };
    let mut b = p.clients();
    b.check_str(&["FLUSHALL"]);
    for cmd in [
        &["EVALSHA", "fff", "-1"][..],
        &["EVALSHA", "fff", "x"],
        &["EVALSHA_RO", "fff", "9"],
        &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "-1"],
        &["SET", "str", "v"],
        &["SADD", "s", "a"],
        &["HSET", "h", "a", "b"],
        &["ZADD", "z", "1", "a"],
        &["SRANDMEMBER", "str", "-4611686018427387904"],
        &["SRANDMEMBER", "nokey", "-4611686018427387904"],
        &["SRANDMEMBER", "str", "-9223372036854775808"],
        &["SRANDMEMBER", "s", "-9223372036854775808"],
        &["HRANDFIELD", "str", "-4611686018427387904"],
        &["HRANDFIELD", "nokey", "-4611686018427387904"],
        &["HRANDFIELD", "h", "-9223372036854775808"],
        &["HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"],
        &["HRANDFIELD", "str", "-4611686018427387904", "WITHVALUES"],
        &["ZRANDMEMBER", "str", "-4611686018427387904"],
        &["ZRANDMEMBER", "nokey", "-4611686018427387904"],
        &["ZRANDMEMBER", "z", "-4611686018427387904", "WITHSCORES"],
        &["ZRANGESTORE", "{t}d", "{t}missing", "1", "-2", "LIMIT", "1000", "-1"],
        &["ZRANGESTORE", "{t}d", "{t}missing", "0", "-1", "LIMIT", "0", "1"],
        &["ZADD", "{t}z", "1", "a", "2", "b", "3", "c"],
        &["ZRANGESTORE", "{t}d", "{t}z", "1", "-1", "LIMIT", "1000", "-1"],
        &["ZRANGE", "{t}d", "0", "-1"],
        &["ZRANGE", "{t}z", "0", "-1", "LIMIT", "1", "-2"],
        &["ZRANGE", "{t}z", "0", "-1", "BYSCORE", "LIMIT", "1", "-1"],
        &["ZSCAN", "k", "-24"],
        &["ZSCAN", "z", "-24"],
        &["SSCAN", "s", "-24"],
        &["HSCAN", "h", ""],
        &["SSCAN", "s", "-"],
        &["ZSCAN", "z", "-18446744073709551615"],
        &["ZSCAN", "z", "18446744073709551616"],
        &["ZSCAN", "str", "-1"],
        &["ZSCAN", "str", "x"],
        &["SELECT", "2147483648"],
        &["SELECT", "-2147483649"],
        &["SELECT", "-2147483648"],
        &["SELECT", "16"],
        &["HELLO", "3", "AUTH", "a", "b", "inf"],
        &["HELLO", "2", "SETNAME", "a b", "AUTH", "x", "y"],
        &["HELLO", "2", "SETNAME", "named", "foo"],
        &["CLIENT", "GETNAME"],
        &["HELLO", "2", "AUTH", "default", "x", "SETNAME", "a b"],
    ] {
        b.check_str(cmd);
    }
}

#[test]
fn client_bytes_in_errors_match_redis() {
    let Some(p) = Pair::start() else { return };
    let mut b = p.clients();
    b.check_str(&["FLUSHALL"]);
    let e = "\u{e9}".repeat(100);
    let a = "a".repeat(100);
    let cmds: &[&[&[u8]]] = &[
        &[b"foo\x00bar", b"a\x00b", b"c"],
        &[b"foo\xffbar", b"a\xfeb", b"\xc3\xa9"],
        &[b"foo", e.as_bytes(), b"x", b"y"],
        &[b"foo", a.as_bytes(), a.as_bytes(), b"c"],
        &[b"foo\r\nbar", b"a\nb"],
        &[b"CONFIG", b"x\x00y"],
        &[b"CONFIG", b"x\xffy"],
        &[b"CONFIG", e.as_bytes()],
        &[b"OBJECT", b"\xffx"],
        &[b"XADD", b"st", b"1-1", b"a", b"b"],
        &[b"XREADGROUP", b"GROUP", b"g\x00x", b"c", b"STREAMS", b"st", b">"],
        &[b"XREADGROUP", b"GROUP", b"g\xffx", b"c", b"STREAMS", b"st", b">"],
        &[b"XCLAIM", b"st", b"g\xffx", b"c", b"0", b"1-1"],
        &[b"XGROUP", b"CREATECONSUMER", b"st", b"g\xffx", b"c"],
        &[b"XINFO", b"CONSUMERS", b"st", b"g\xffx"],
        &[b"XPENDING", b"st", b"g\xffx"],
        &[b"XAUTOCLAIM", b"st", b"g\xffx", b"c", b"0", b"0"],
        &[b"XINFO", b"x\xff\x00", b"st"],
        &[b"HELLO", b"3", b"f\xffo\x00x"],
        &[b"FUNCTION", b"LOAD", b"x\xff\x00y", b"code"],
        &[b"FUNCTION", b"LIST", b"x\xff\x00y"],
        &[b"PUBSUB", b"x\xff"],
        &[b"CLIENT", b"KILL", b"TYPE", b"x\xff\x00"],
        &[b"SET", b"k", b"v"],
        &[b"EXPIRE", b"k", b"10", b"q\xff\x00"],
        &[b"SET", b"k", b"v", b"EX", b"0"],
        &[b"GETEX", b"k", b"PX", b"-1"],
    ];
    for cmd in cmds {
        b.check(cmd);
    }
    // Inside a script the texts reach Lua as the same bytes.
    b.eval("return redis.pcall('xreadgroup', 'group', 'g\\255\\0x', 'c', 'streams', 'st', '>')");
    // The error statistics count these under their code.
    b.check_str(&["CONFIG", "RESETSTAT"]);
    b.check(&[b"nosuch\xff"]);
    let (ours, theirs) = (stats(&mut b.0[0]), stats(&mut b.0[1]));
    assert_eq!(ours, theirs);
}

/// Scripts calling the same commands again and again (a call's command is
/// remembered by name for the next calls): names in any case, wrong arity
/// after good calls, containers and their subcommands under the same name,
/// names that are numbers or contain `|`, and number arguments of every
/// form (integers, -0, fractions, large values), with the statistics they
/// leave, as redis-server.
#[test]
fn repeated_script_calls_match_redis() {
    let Some(p) = Pair::start() else { return };
    let mut b = p.clients();
    for c in b.0.iter_mut() {
        c.call(&[b"CONFIG", b"RESETSTAT"]);
    }
    let scripts = [
        "redis.call('LPUSH', KEYS[1], 'a') redis.call('lpush', KEYS[1], 'b') redis.call('LpUsH', KEYS[1], 3) \
         return redis.call('LRANGE', KEYS[1], 0, -1)",
        "return redis.pcall('LPUSH', KEYS[1])",
        "return redis.pcall('lpush')",
        "return redis.pcall('config', 'get', 'maxmemory-policy')",
        "return redis.pcall('config')",
        "return redis.pcall('config', 'nosuch')",
        "return redis.pcall('CONFIG', 'GET', 'maxmemory-policy')",
        "return redis.pcall('acl', 'whoami')",
        "return redis.pcall('acl')",
        "return redis.pcall('acl', 'nosuch')",
        "return redis.pcall('config|get', 'maxmemory-policy')",
        "return redis.pcall(12345, 'x')",
        "return redis.pcall('12345', 'x')",
        "local n = 0 for i = 1, 20 do n = n + redis.call('INCRBY', KEYS[1] .. 'n', i - 10) end return n",
        "return redis.pcall('INCRBY', KEYS[1] .. 'n', 1.5)",
        "return redis.pcall('INCRBY', KEYS[1] .. 'n')",
        "local r = {} for _, v in ipairs({0, -0.0, 7, -7, 1.5, -2.25, 1e15, 1e16, 1e17, 123456789012345678, \
         2^53, -2^63, 1e300, 0.1, 1/3}) do redis.call('SET', KEYS[1] .. 's', v) \
         r[#r + 1] = redis.call('GET', KEYS[1] .. 's') end return r",
        "return redis.call('get', KEYS[1] .. 's')",
    ];
    for _ in 0..2 {
        for s in scripts {
            b.check_str(&["EVAL", s, "1", "k"]);
        }
    }
    let (ours, theirs) = (stats(&mut b.0[0]), stats(&mut b.0[1]));
    assert_eq!(ours, theirs, "statistics differ");
}
