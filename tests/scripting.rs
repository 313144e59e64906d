//! Scripting through real clients: EVAL/EVALSHA/SCRIPT, routing and slot
//! rules, the sandbox, atomicity under concurrency, long scripts (BUSY,
//! SCRIPT KILL, UNKILLABLE, SHUTDOWN NOSAVE).

mod common;

use common::{moonshard, run_str};
use redis::Value;
use std::time::{Duration, Instant};

fn s(v: &str) -> Value {
    Value::BulkString(v.as_bytes().to_vec())
}

fn eval(con: &mut redis::Connection, args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["EVAL"];
    all.extend_from_slice(args);
    run_str(con, &all)
}

#[test]
fn eval_basics_and_cache() {
    let srv = moonshard(&["--shards", "4"]);
    let mut c = srv.client();
    assert_eq!(eval(&mut c, &["return 1", "0"]), Ok(Value::Int(1)));
    assert_eq!(eval(&mut c, &["return {KEYS[1], ARGV[1]}", "1", "k", "a"]), Ok(Value::Array(vec![s("k"), s("a")])));
    assert_eq!(eval(&mut c, &["return 1", "-1"]).unwrap_err(), "ERR Number of keys can't be negative");
    assert_eq!(
        eval(&mut c, &["return 1", "2", "a"]).unwrap_err(),
        "ERR Number of keys can't be greater than number of args"
    );
    assert_eq!(eval(&mut c, &["return 1", "x"]).unwrap_err(), "ERR value is not an integer or out of range");
    // SCRIPT LOAD on one connection, EVALSHA on another (global cache).
    let sha = match run_str(&mut c, &["SCRIPT", "LOAD", "return ARGV[1]"]).unwrap() {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    let mut c2 = srv.client();
    assert_eq!(run_str(&mut c2, &["EVALSHA", &sha, "0", "hi"]), Ok(s("hi")));
    assert_eq!(run_str(&mut c2, &["EVALSHA", &sha.to_uppercase(), "0", "hi"]), Ok(s("hi")));
    assert_eq!(
        run_str(&mut c2, &["SCRIPT", "EXISTS", &sha, "ffffffffffffffffffffffffffffffffffffffff"]),
        Ok(Value::Array(vec![Value::Int(1), Value::Int(0)]))
    );
    // EVAL caches its script too.
    eval(&mut c, &["return 'cached'", "0"]).unwrap();
    let sha2 = "7a7f0a3d2d19c8d1e1d6c3a1d7b8f7b6b1ac0a6e";
    let _ = sha2;
    assert_eq!(run_str(&mut c, &["SCRIPT", "FLUSH"]), Ok(Value::Okay));
    assert_eq!(run_str(&mut c2, &["EVALSHA", &sha, "0"]).unwrap_err(), "NOSCRIPT No matching script. Please use EVAL.");
    assert_eq!(
        run_str(&mut c2, &["SCRIPT", "FLUSH", "BAD"]).unwrap_err(),
        "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
    );
    assert_eq!(run_str(&mut c2, &["SCRIPT", "FLUSH", "ASYNC"]), Ok(Value::Okay));
    assert!(run_str(&mut c, &["SCRIPT", "LOAD", "return +"])
        .unwrap_err()
        .starts_with("ERR Error compiling script (new function): user_script:1:"));
    assert_eq!(run_str(&mut c, &["SCRIPT", "KILL"]).unwrap_err(), "NOTBUSY No scripts in execution right now.");
}

#[test]
fn error_texts() {
    let srv = moonshard(&["--shards", "2"]);
    let mut c = srv.client();
    let cases = [
        ("return redis.call('nosuch')", "ERR Unknown Redis command called from script script: 206396248e12c6e742fd7296250433c8d7343b74, on @user_script:1."),
        ("return x", "ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: 03c387736bb5cc009ff35151572cee04677aa374, on @user_script:1."),
        ("x = 5", "ERR user_script:1: Attempt to modify a readonly table script: 818a330663e3c3e78469660421595218e5ab5c48, on @user_script:1."),
        ("error('boom')", "ERR user_script:1: boom script: 82903a0434f1503e152f89c03c9acd881a0e8150, on @user_script:1."),
        ("return 1 +", "ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'"),
        ("return redis.call('eval','return 1', 0)", "ERR This Redis command is not allowed from script script: 498b5081e21f7e3039493da0ab415ae08f116868, on @user_script:1."),
        ("return redis.error_reply('FOO bar')", "FOO bar"),
        ("return redis.error_reply('bar')", "ERR bar"),
    ];
    for (script, want) in cases {
        assert_eq!(eval(&mut c, &[script, "0"]).unwrap_err(), want, "{script}");
    }
    assert_eq!(
        eval(&mut c, &["#!lua flags=x\nreturn 1", "0"]).unwrap_err(),
        "ERR Unexpected flag in script shebang: x"
    );
    assert_eq!(eval(&mut c, &["#!js\nreturn 1", "0"]).unwrap_err(), "ERR Unexpected engine in script shebang: #!js");
    assert_eq!(
        run_str(&mut c, &["EVAL_RO", "return redis.call('set','a','b')", "1", "a"]).unwrap_err(),
        "ERR Write commands are not allowed from read-only scripts. script: ff967d0ae0e68b4f9e360fa91c54598bc25ad9b6, on @user_script:1."
    );
    assert_eq!(
        eval(&mut c, &["#!lua flags=no-writes\nreturn redis.call('set','a','b')", "1", "a"]).unwrap_err(),
        "ERR Write commands are not allowed from read-only scripts. script: 6acb400a50fe96e33eca4e0af6e9dcfb21193726, on @user_script:2."
    );
    assert_eq!(
        run_str(&mut c, &["EVAL_RO", "#!lua\nreturn 1", "0"]).unwrap_err(),
        "ERR Can not execute a script with write flag using *_ro command."
    );
    // A failed script leaves the VM usable and KEYS/ARGV fresh.
    assert_eq!(eval(&mut c, &["return #KEYS + #ARGV", "0"]), Ok(Value::Int(0)));
}

#[test]
fn sandbox() {
    let srv = moonshard(&["--shards", "1"]);
    let mut c = srv.client();
    for g in ["os", "io", "print", "dofile", "loadfile", "debug", "package", "require"] {
        let e = eval(&mut c, &[&format!("return {g}"), "0"]).unwrap_err();
        assert!(e.contains(&format!("nonexistent global variable '{g}'")), "{g}: {e}");
    }
    for w in [
        "math.x = 1",
        "string.x = 1",
        "redis.call = nil",
        "_G.x = 1",
        "rawset(_G, 'x', 1)",
        "setmetatable(_G, nil)",
        "getmetatable('').__index.upper = nil",
    ] {
        let e = eval(&mut c, &[w, "0"]).unwrap_err();
        assert!(e.contains("Attempt to modify a readonly table") || e.contains("attempt to index"), "{w}: {e}");
    }
    assert_eq!(eval(&mut c, &["return string.upper('a') .. ('b'):upper()", "0"]), Ok(s("AB")));
    // Bytecode is refused.
    assert_eq!(
        eval(&mut c, &["return loadstring(string.dump(function() return 1 end)) == nil", "0"]),
        Ok(Value::Int(1))
    );
    assert_eq!(eval(&mut c, &["return loadstring('return 7')()", "0"]), Ok(Value::Int(7)));
    // pcall turns error tables into their text, as Redis does.
    assert_eq!(
        eval(&mut c, &["local ok, e = pcall(redis.call, 'nosuch') return e", "0"]),
        Ok(s("ERR Unknown Redis command called from script"))
    );
    // Redis's lrand48 sequence from its fixed start state.
    assert_eq!(eval(&mut c, &["return tostring(math.random())", "0"]), Ok(s("0.39646477363839")));
    assert_eq!(eval(&mut c, &["math.randomseed(0) return tostring(math.random())", "0"]), Ok(s("0.17082803611217")));
    // Runaway recursion and allocation end in errors, not crashes.
    assert!(eval(&mut c, &["local function f() return f() + 1 end return f()", "0"]).is_err());
    let e =
        eval(&mut c, &["local t = {} local s = string.rep('x', 1024*1024) for i = 1, 1e9 do t[i] = s .. i end", "0"])
            .unwrap_err();
    assert!(e.contains("memory"), "{e}");
    assert_eq!(eval(&mut c, &["return 'still fine'", "0"]), Ok(s("still fine")));
}

#[test]
fn redis_api() {
    let srv = moonshard(&["--shards", "1"]);
    let mut c = srv.client();
    assert_eq!(
        eval(&mut c, &["return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM, redis.LOG_WARNING, redis.REPL_ALL, redis.replicate_commands()}", "0"]),
        Ok(Value::Array(vec![s("7.0.15"), Value::Int(458767), Value::Int(3), Value::Int(3), Value::Int(1)]))
    );
    assert_eq!(eval(&mut c, &["return redis.sha1hex('')", "0"]), Ok(s("da39a3ee5e6b4b0d3255bfef95601890afd80709")));
    assert_eq!(
        eval(
            &mut c,
            &["redis.log(redis.LOG_DEBUG, 'x') redis.set_repl(redis.REPL_NONE) return redis.status_reply('OK')", "0"]
        ),
        Ok(Value::Okay)
    );
    assert!(eval(&mut c, &["redis.setresp(4)", "0"]).unwrap_err().starts_with("ERR RESP version must be 2 or 3."));
    assert_eq!(eval(&mut c, &["return redis.call('ping')", "0"]), Ok(Value::SimpleString("PONG".into())));
    assert_eq!(
        eval(&mut c, &["return redis.pcall('nosuch')['err']", "0"]),
        Ok(s("ERR Unknown Redis command called from script"))
    );
    // SELECT in a script affects the script only.
    run_str(&mut c, &["SET", "k", "db0"]).unwrap();
    assert_eq!(
        eval(&mut c, &["redis.call('select', 1) redis.call('set', 'k', 'db1') return redis.call('get', 'k')", "0"]),
        Ok(s("db1"))
    );
    assert_eq!(run_str(&mut c, &["GET", "k"]), Ok(s("db0")));
    // Conversions: numbers truncate, tables stop at the first nil.
    assert_eq!(
        eval(&mut c, &["return {1, 2.9, -3.7, 'x', true, false, nil, 5}", "0"]),
        Ok(Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(-3), s("x"), Value::Int(1), Value::Nil]))
    );
    // A table holding itself nests until Redis's stack rule stops it (see
    // scripting_hardening.rs); a shallow one comes back whole.
    assert_eq!(
        eval(&mut c, &["local t = {} t[1] = {{}} return t", "0"]),
        Ok(Value::Array(vec![Value::Array(vec![Value::Array(vec![])])]))
    );
    assert_eq!(
        eval(&mut c, &["redis.call('set', 'f', 0.1) return redis.call('get', 'f')", "0"]),
        Ok(s("0.10000000000000001"))
    );
}

#[test]
fn slot_rules() {
    let srv = moonshard(&["--shards", "4"]);
    let mut c = srv.client();
    // Declared keys in different slots.
    assert_eq!(
        eval(&mut c, &["return 1", "2", "a", "b"]).unwrap_err(),
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    assert_eq!(eval(&mut c, &["return 1", "2", "{t}a", "{t}b"]), Ok(Value::Int(1)));
    // Keyless scripts that touch one key work on any shard count.
    for i in 0..20 {
        let k = format!("key{i}");
        assert_eq!(eval(&mut c, &["return redis.call('set', ARGV[1], 'v')", "0", &k]), Ok(Value::Okay));
        assert_eq!(eval(&mut c, &["return redis.call('get', ARGV[1])", "0", &k]), Ok(s("v")));
        let mut fresh = srv.client();
        assert_eq!(eval(&mut fresh, &["return redis.call('get', ARGV[1])", "0", &k]), Ok(s("v")));
    }
    // Undeclared keys on another shard: eval-compat mode refuses them.
    let e =
        eval(&mut c, &["redis.call('get', KEYS[1]) for i = 0, 50 do redis.call('get', 'other' .. i) end", "1", "a"])
            .unwrap_err();
    assert!(e.starts_with("ERR Script attempted to access a non local key in a cluster node"), "{e}");
    // With a shebang, undeclared keys must share the declared keys' slot.
    let (k1, k2) = same_shard_different_slots();
    let e = eval(&mut c, &["#!lua\nreturn redis.call('get', ARGV[1])", "1", &k1, &k2]).unwrap_err();
    assert!(e.starts_with("ERR Script attempted to access keys that do not hash to the same slot"), "{e}");
    let e = eval(&mut c, &["#!lua\nreturn redis.call('get', 'b')", "1", "a"]).unwrap_err();
    assert!(e.starts_with("ERR Script attempted to access a non local key in a cluster node"), "{e}");
    assert_eq!(eval(&mut c, &["#!lua\nreturn redis.call('get', '{a}x')", "1", "a"]), Ok(Value::Nil));
    // Eval-compat mode allows other slots of the same shard.
    assert_eq!(eval(&mut c, &["return redis.call('get', ARGV[1])", "1", &k1, &k2]), Ok(Value::Nil));
    // allow-cross-slot-keys: declared keys may span slots of one shard.
    assert_eq!(
        eval(&mut c, &["return 1", "2", &k1, &k2]).unwrap_err(),
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    assert_eq!(
        eval(
            &mut c,
            &[
                "#!lua flags=allow-cross-slot-keys\nredis.call('set', KEYS[1], 1) return redis.call('set', KEYS[2], 2)",
                "2",
                &k1,
                &k2
            ]
        ),
        Ok(Value::Okay)
    );
    // A keyless script that wrote cannot move anymore.
    let e = eval(&mut c, &["redis.call('set', '{z}1', 1) for i = 0, 50 do redis.call('set', 'w' .. i, 1) end", "0"])
        .unwrap_err();
    assert!(e.contains("non local key"), "{e}");
}

/// Two keys in different slots owned by the same shard (4 shards).
fn same_shard_different_slots() -> (String, String) {
    let shard = |sl: u16| (sl as usize) * 4 / 16384;
    let s0 = moonshard::shard::slot::key_slot(b"k0");
    for i in 1..1000 {
        let k = format!("k{i}");
        let si = moonshard::shard::slot::key_slot(k.as_bytes());
        if si != s0 && shard(si) == shard(s0) {
            return ("k0".to_string(), k);
        }
    }
    panic!("no pair found");
}

#[test]
fn atomic_under_concurrency() {
    let srv = moonshard(&["--shards", "4"]);
    let mut c = srv.client();
    let script = "local v = tonumber(redis.call('get', KEYS[1]) or '0') redis.call('set', KEYS[1], v + tonumber(ARGV[1])) return v";
    let sha = match run_str(&mut c, &["SCRIPT", "LOAD", script]).unwrap() {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    let keys: Vec<String> = (0..8).map(|i| format!("{{tag{i}}}counter")).collect();
    let threads = 8;
    let rounds = 150;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..threads {
        let mut con = srv.client();
        let keys = keys.clone();
        let sha = sha.clone();
        handles.push(std::thread::spawn(move || {
            for r in 0..rounds {
                let k = &keys[(t + r) % keys.len()];
                run_str(&mut con, &["EVALSHA", &sha, "1", k, "1"]).unwrap();
            }
        }));
    }
    // Plain commands on every shard meanwhile.
    let plain = {
        let mut con = srv.client();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = format!("plain{}", n % 32);
                run_str(&mut con, &["SET", &k, &n.to_string()]).unwrap();
                assert_eq!(run_str(&mut con, &["GET", &k]).unwrap(), s(&n.to_string()));
                n += 1;
            }
            n
        })
    };
    for h in handles {
        h.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(plain.join().unwrap() > 0);
    let mut total = 0;
    for k in &keys {
        if let Ok(Value::BulkString(b)) = run_str(&mut c, &["GET", k]) {
            total += String::from_utf8(b).unwrap().parse::<i64>().unwrap();
        }
    }
    assert_eq!(total, (threads * rounds) as i64);
}

fn wait_busy(c: &mut redis::Connection, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match run_str(c, &["GET", key]) {
            Err(e) if e.starts_with("BUSY") => return,
            _ if Instant::now() > deadline => panic!("script never became BUSY"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn long_script_busy_kill_shutdown() {
    let mut srv = moonshard(&["--shards", "4", "--busy-reply-threshold", "100"]);
    let mut c = srv.client();
    run_str(&mut c, &["SET", "{b}x", "2"]).unwrap();
    let port = srv.port;
    let spin = |script: &'static str| {
        std::thread::spawn(move || {
            let cl = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
            let mut con = cl.get_connection().unwrap();
            run_str(&mut con, &["EVAL", script, "1", "{a}k"])
        })
    };
    let h = spin("local i = 0 while true do i = i + 1 end");
    wait_busy(&mut c, "{a}x");
    // Every other shard serves normally, including new connections.
    let mut other = srv.client();
    assert_eq!(run_str(&mut other, &["GET", "{b}x"]), Ok(s("2")));
    assert_eq!(run_str(&mut other, &["SET", "{b}y", "3"]), Ok(Value::Okay));
    assert_eq!(run_str(&mut other, &["PING"]), Ok(Value::SimpleString("PONG".into())));
    assert_eq!(
        run_str(&mut other, &["FUNCTION", "KILL"]).unwrap_err(),
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    );
    assert_eq!(run_str(&mut other, &["SCRIPT", "KILL"]), Ok(Value::Okay));
    let e = h.join().unwrap().unwrap_err();
    assert!(e.starts_with("ERR Script killed by user with SCRIPT KILL..."), "{e}");
    assert_eq!(run_str(&mut c, &["GET", "{a}x"]), Ok(Value::Nil));
    assert_eq!(run_str(&mut c, &["SCRIPT", "KILL"]).unwrap_err(), "NOTBUSY No scripts in execution right now.");

    // pcall cannot swallow the kill.
    let h = spin("local i = 0 while true do pcall(function() while true do i = i + 1 end end) end");
    wait_busy(&mut c, "{a}x");
    assert_eq!(run_str(&mut other, &["SCRIPT", "KILL"]), Ok(Value::Okay));
    assert!(h.join().unwrap().unwrap_err().contains("Script killed"));

    // After a write the script cannot be killed; SHUTDOWN NOSAVE still works.
    let _h = spin("redis.call('set', '{a}w', 1) local i = 0 while true do i = i + 1 end");
    wait_busy(&mut c, "{a}x");
    assert!(run_str(&mut other, &["SCRIPT", "KILL"])
        .unwrap_err()
        .starts_with("UNKILLABLE Sorry the script already executed write commands"));
    assert_eq!(run_str(&mut other, &["GET", "{b}x"]), Ok(s("2")));
    let _ = run_str(&mut other, &["SHUTDOWN", "NOSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv.alive() {
        assert!(Instant::now() < deadline, "server did not exit after SHUTDOWN NOSAVE");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn seed_script_lpush_incrby() {
    let srv = moonshard(&["--shards", "4"]);
    let mut c = srv.client();
    let script = "local sum = 0\nfor _, v in ipairs(ARGV) do sum = sum + tonumber(v); redis.call('LPUSH', KEYS[1], v) end\nreturn redis.call('INCRBY', KEYS[2], sum)";
    assert_eq!(eval(&mut c, &[script, "2", "{s}list", "{s}sum", "2", "1", "2"]), Ok(Value::Int(5)));
    assert_eq!(eval(&mut c, &[script, "2", "{s}list", "{s}sum", "10"]), Ok(Value::Int(15)));
    assert_eq!(run_str(&mut c, &["LLEN", "{s}list"]), Ok(Value::Int(4)));
}

// ------------------------------------------------------------ MULTI / EXEC

/// Asserts both servers answer `args` identically.
#[track_caller]
fn same(d: &mut common::Diff, args: &[&str]) {
    let _ = d.check(args);
}

/// Sends every command of a transaction to both servers and compares each
/// reply, EXEC's array included.
fn diff_txn(d: &mut common::Diff, cmds: &[&[&str]]) {
    same(d, &["MULTI"]);
    for c in cmds {
        same(d, c);
    }
    let (ours, theirs) = (exec_items(&mut d.a), exec_items(&mut d.b));
    assert_eq!(ours, theirs, "EXEC differs for {cmds:?}");
}

/// EXEC's reply with every element kept (errors inside the array too,
/// which `query` would turn into one Err).
fn exec_items(con: &mut redis::Connection) -> Result<Value, String> {
    use redis::ConnectionLike;
    con.req_command(&redis::cmd("EXEC")).map_err(|e| common::error_text(&e))
}

#[test]
fn eval_inside_multi_diff() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    let seven = "59b6ab2fbe0ee4b25733de0f62e6cda4899ef8e9";
    diff_txn(
        &mut d,
        &[
            &["EVAL", "return 1", "0"],
            &["EVAL", "return redis.call('set',KEYS[1],'v')", "1", "k"],
            &["EVALSHA", "0123456789012345678901234567890123456789", "0"],
            &["EVAL", "error('x')", "0"],
            &["EVAL", "return {err='boom'}", "0"],
            &["EVAL", "return redis.pcall('incr', KEYS[1])", "1", "k"],
            &["EVAL", "syntax error(", "0"],
            &["EVAL", "return 1", "-1"],
            &["EVAL", "return 1", "5"],
            &["EVAL", "return 1", "x"],
            &["EVAL", "#!lua flags=no-writes\nreturn redis.call('set','a','b')", "0"],
            &["EVAL", "#!lua flags=bogus\nreturn 1", "0"],
            &["EVAL_RO", "return redis.call('set','a','b')", "0"],
            &["EVAL", "return redis.call('get',KEYS[1])", "1", "k"],
            &["SCRIPT", "LOAD", "return 7"],
            &["EVALSHA", seven, "0"],
            &["SCRIPT", "EXISTS", seven, "0123456789012345678901234567890123456789"],
            // Keyless scripts move to the shard of the first key they touch.
            &["EVAL", "return redis.call('incr','counter')", "0"],
            &["EVAL", "redis.call('set','x1','1') return redis.call('get','x1')", "0"],
            &["FCALL", "nosuch", "0"],
            &["GET", "counter"],
        ],
    );
    // A script flushed inside the transaction is gone for the next command.
    diff_txn(&mut d, &[&["SCRIPT", "LOAD", "return 7"], &["SCRIPT", "FLUSH"], &["EVALSHA", seven, "0"]]);
    // NOSCRIPT is not a queuing error: the rest of the transaction runs.
    diff_txn(&mut d, &[&["EVALSHA", seven, "1", "k"], &["SET", "k", "after"], &["GET", "k"]]);
    // SELECT inside the transaction applies to the scripts after it.
    diff_txn(
        &mut d,
        &[&["SELECT", "3"], &["EVAL", "return redis.call('set',KEYS[1],'db3')", "1", "k"], &["SELECT", "0"]],
    );
    same(&mut d, &["GET", "k"]);
    same(&mut d, &["SELECT", "3"]);
    same(&mut d, &["GET", "k"]);
    same(&mut d, &["SELECT", "0"]);
    // An unknown command or wrong arity while queuing still aborts EXEC.
    same(&mut d, &["MULTI"]);
    same(&mut d, &["EVAL", "return 1"]);
    same(&mut d, &["EVAL", "return 1", "0"]);
    same(&mut d, &["EXEC"]);
}

#[test]
fn eval_inside_multi_randomized_diff() {
    use rand::{Rng, SeedableRng};
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    let incr = "return redis.call('incrby', KEYS[1], ARGV[1])";
    let sha = match d.check(&["SCRIPT", "LOAD", incr]) {
        Ok(Value::BulkString(b)) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    let keys = ["a", "b", "c", "{a}2", "d", "e"];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..40 {
        same(&mut d, &["MULTI"]);
        for _ in 0..rng.gen_range(1..6) {
            let k = keys[rng.gen_range(0..keys.len())];
            let n = rng.gen_range(-5..10).to_string();
            let script_keyless = format!("return redis.call('incrby', '{k}', {n})");
            let cmd: Vec<&str> = match rng.gen_range(0..7) {
                0 => vec!["EVAL", incr, "1", k, &n],
                1 => vec!["EVALSHA", &sha, "1", k, &n],
                2 => vec!["EVAL", &script_keyless, "0"],
                3 => vec!["SET", k, "x"],
                4 => vec!["GET", k],
                5 => vec!["EVAL", "return redis.call('lpush', KEYS[1], ARGV[1])", "1", k, &n],
                _ => vec!["EVALSHA_RO", &sha, "1", k, &n],
            };
            same(&mut d, &cmd);
        }
        let (ours, theirs) = (exec_items(&mut d.a), exec_items(&mut d.b));
        assert_eq!(ours, theirs);
    }
    for k in keys {
        same(&mut d, &["TYPE", k]);
    }
}

#[test]
fn watch_then_eval_in_multi() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    same(&mut d, &["SET", "w", "1"]);
    same(&mut d, &["WATCH", "w"]);
    run_str(&mut d.ours.client(), &["SET", "w", "2"]).unwrap();
    run_str(&mut d.theirs.client(), &["SET", "w", "2"]).unwrap();
    diff_txn(&mut d, &[&["EVAL", "return redis.call('incr', KEYS[1])", "1", "w"]]);
    same(&mut d, &["GET", "w"]);
    // A script inside EXEC marks watched keys dirty like any write.
    same(&mut d, &["WATCH", "w"]);
    diff_txn(&mut d, &[&["EVAL", "return redis.call('incr', KEYS[1])", "1", "w"]]);
    same(&mut d, &["GET", "w"]);
}

#[test]
fn script_inside_exec_can_be_killed_and_others_serve() {
    let srv = moonshard(&["--shards", "4", "--busy-reply-threshold", "100"]);
    let mut c = srv.client();
    run_str(&mut c, &["SET", "{b}x", "2"]).unwrap();
    let port = srv.port;
    let h = std::thread::spawn(move || {
        let cl = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut con = cl.get_connection().unwrap();
        run_str(&mut con, &["MULTI"]).unwrap();
        run_str(&mut con, &["SET", "{a}before", "1"]).unwrap();
        run_str(&mut con, &["EVAL", "local i = 0 while true do i = i + 1 end", "1", "{a}k"]).unwrap();
        run_str(&mut con, &["EVAL", "return redis.call('get', KEYS[1])", "1", "{a}before"]).unwrap();
        exec_items(&mut con)
    });
    wait_busy(&mut c, "{a}x");
    assert_eq!(run_str(&mut c, &["GET", "{b}x"]), Ok(s("2")));
    assert_eq!(run_str(&mut c, &["SCRIPT", "KILL"]), Ok(Value::Okay));
    let r = h.join().unwrap();
    let Ok(Value::Array(items)) = r else { panic!("EXEC did not return an array: {r:?}") };
    assert_eq!(items[0], Value::Okay);
    assert!(format!("{:?}", items[1]).contains("Script killed by user"), "{:?}", items[1]);
    assert_eq!(items[2], s("1"));
    assert_eq!(eval(&mut c, &["return 1", "0"]), Ok(Value::Int(1)));
}

// ------------------------------------------------------------ maxmemory

#[test]
fn allow_oom_rules_diff() {
    let Some(mut d) = common::Diff::start(&["--shards", "4"]) else { return };
    let lib = "#!lua name=oomlib\n\
        redis.register_function('plain', function(k, a) return redis.call('set', k[1], 'f') end)\n\
        redis.register_function{function_name='oomok', callback=function(k, a) return redis.call('set', k[1], 'g') end, flags={'allow-oom'}}\n\
        redis.register_function{function_name='ro', callback=function(k, a) return redis.call('get', k[1]) end, flags={'no-writes'}}\n";
    same(&mut d, &["FUNCTION", "LOAD", lib]);
    same(&mut d, &["SET", "k", "v"]);
    let loaded = d.check(&["SCRIPT", "LOAD", "#!lua\nreturn redis.call('get', KEYS[1])"]);
    let Ok(Value::BulkString(sha)) = loaded else { panic!("{loaded:?}") };
    let sha = String::from_utf8(sha).unwrap();
    same(&mut d, &["CONFIG", "SET", "maxmemory", "1"]);
    let cases: &[&[&str]] = &[
        // Declared flags, may write, no allow-oom: refused before it starts.
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["EVAL", "#!lua\nreturn redis.call('get', KEYS[1])", "1", "k"],
        &["EVALSHA", &sha, "1", "k"],
        &["EVAL", "#!lua\nsyntax error(", "0"],
        &["EVAL", "#!lua flags=allow-oom\nreturn redis.call('set', KEYS[1], 'w')", "1", "k"],
        &["EVAL", "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", "1", "k"],
        // Eval-compat scripts start, and fail on their first denyoom command.
        &["EVAL", "return redis.call('get', KEYS[1])", "1", "k"],
        &["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "k"],
        &["EVAL", "return redis.pcall('set', KEYS[1], 'x')", "1", "k"],
        &["EVAL", "local r = redis.pcall('set', KEYS[1], 'x') return r['err']", "1", "k"],
        // Not denyoom, and after a write the script may go on.
        &["EVAL", "return redis.call('del', KEYS[1])", "1", "nosuch"],
        &["EVAL", "redis.call('expire', KEYS[1], 1000) return redis.call('set', KEYS[1], 'y')", "1", "k"],
        &["EVAL", "redis.call('del', '{k}nosuch') return redis.call('set', KEYS[1], 'z')", "1", "k"],
        &["EVALSHA", "0123456789012345678901234567890123456789", "0"],
        &["FCALL", "plain", "1", "k"],
        &["FCALL", "oomok", "1", "k"],
        &["FCALL", "ro", "1", "k"],
        &["FCALL_RO", "ro", "1", "k"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('f', function() return 1 end)"],
        &["FUNCTION", "RESTORE", "garbage"],
        &["SCRIPT", "LOAD", "return 2"],
        &["FUNCTION", "DELETE", "nosuch"],
        &["GET", "k"],
    ];
    for c in cases {
        same(&mut d, c);
    }
    // EXEC over the limit: refused whole when a queued command is denyoom
    // (a script's flags decide), run when none is.
    // The limit is raised from another connection: queuing is not under test.
    let other = |d: &mut common::Diff, args: &[&str]| {
        let a = run_str(&mut d.ours.client(), args);
        let b = run_str(&mut d.theirs.client(), args);
        assert_eq!(a, b);
    };
    same(&mut d, &["CONFIG", "SET", "maxmemory", "0"]);
    for txn in [
        &[&["EVAL", "#!lua\nreturn 1", "0"] as &[&str], &["GET", "k"]] as &[&[&str]],
        &[&["EVAL", "return redis.call('get', KEYS[1])", "1", "k"], &["GET", "k"]],
        &[&["EVAL", "return redis.call('set', KEYS[1], 'm')", "1", "k"], &["GET", "k"]],
        &[&["EVAL", "#!lua flags=allow-oom\nreturn redis.call('set', KEYS[1], 'n')", "1", "k"]],
        &[&["FCALL", "plain", "1", "k"]],
        &[&["FCALL", "ro", "1", "k"]],
        &[&["SET", "k", "q"]],
    ] {
        same(&mut d, &["MULTI"]);
        for c in txn {
            same(&mut d, c);
        }
        other(&mut d, &["CONFIG", "SET", "maxmemory", "1"]);
        let (ours, theirs) = (exec_items(&mut d.a), exec_items(&mut d.b));
        assert_eq!(ours, theirs, "EXEC differs for {txn:?}");
        other(&mut d, &["CONFIG", "SET", "maxmemory", "0"]);
    }
    same(&mut d, &["CONFIG", "SET", "maxmemory", "0"]);
    same(&mut d, &["GET", "k"]);
}
