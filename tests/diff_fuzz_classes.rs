//! Cases from the difference classes of docs/FUZZING.md closed after the
//! fuzzer found them, each compared with redis-server 7.0 reply for reply.
//! The class names (D4, S8...) are the ones FUZZING.md uses.

mod common;

use common::Diff;

fn check_all(d: &mut Diff, lines: &[&[&str]]) {
    for args in lines {
        let _ = d.check(args);
    }
}

#[test]
fn command_argument_classes_match_redis() {
    let Some(mut d) = Diff::start(&[]) else { return };
    check_all(
        &mut d,
        &[
            // D4: a score bound is read by strtod, which stops at a NUL byte.
            &["ZADD", "z", "0", "a", "1", "b", "-1", "c"],
            &["ZCOUNT", "z", "\0", "\0"],
            &["ZCOUNT", "z", "(\0", "1\0junk"],
            &["ZRANGE", "z", "-1\0x", "\0", "BYSCORE"],
            &["ZREMRANGEBYSCORE", "z", "5\0", "(\0"],
            &["ZCOUNT", "z", " ", "1"],
            &["ZCOUNT", "z", "1 ", "1"],
            &["SET", "str", "v"],
            &["ZCOUNT", "str", "\0", "1"],
            // D5: a COUNT no machine could allocate the IDs for.
            &["XADD", "{t}stream", "1", "f", "v"],
            &["XGROUP", "CREATE", "{t}stream", "g1", "0"],
            &["XAUTOCLAIM", "{t}stream", "g1", "c", "0", "0", "COUNT", "9007199254740993"],
            &["XAUTOCLAIM", "{t}stream", "nogroup", "c", "0", "0", "COUNT", "9007199254740993"],
            &["XAUTOCLAIM", "{t}stream", "g1", "c", "0", "0", "COUNT", "1000"],
            &["XAUTOCLAIM", "{t}stream", "g1", "c", "0", "0", "COUNT", "4294967295"],
            // D10: XGROUP SETID reads ENTRIESREAD pairs one after another.
            &["XGROUP", "SETID", "{t}stream", "g1", "0", "ENTRIESREAD", "", ""],
            &["XGROUP", "SETID", "{t}stream", "g1", "0", "ENTRIESREAD", "3", "x"],
            &["XGROUP", "SETID", "{t}stream", "g1", "0", "ENTRIESREAD"],
            &["XGROUP", "SETID", "{t}stream", "g1", "0", "ENTRIESREAD", "-2"],
            &["XGROUP", "SETID", "{t}stream", "g1", "0", "ENTRIESREAD", "1", "ENTRIESREAD", "2"],
            &["XINFO", "GROUPS", "{t}stream"],
            // Run 4: CLIENT UNBLOCK checks the reason before the id.
            &["CLIENT", "UNBLOCK", "", ""],
            &["CLIENT", "UNBLOCK", "", "TIMEOUT"],
            &["CLIENT", "UNBLOCK", "1", "x", "y"],
            // Run 5: SWAPDB of a database with itself leaves WATCHed keys clean.
            &["SET", "w", "1"],
            &["WATCH", "w"],
            &["SWAPDB", "0", "0"],
            &["MULTI"],
            &["EXEC"],
            // Run 8: XSETID does not dirty a WATCHed stream (Redis 7.0 does not signal it).
            &["XADD", "{t}s8", "1", "f", "v"],
            &["WATCH", "{t}s8"],
            &["XSETID", "{t}s8", "1"],
            &["XSETID", "{t}s8", "5"],
            &["MULTI"],
            &["EXEC"],
            &["WATCH", "{t}s8"],
            &["XADD", "{t}s8", "6", "f", "v"],
            &["MULTI"],
            &["EXEC"],
            // D11: an error quoting an argument stops at its NUL byte.
            &["LATENCY", "GRAPH", "\0"],
            &["LATENCY", "GRAPH", "ab\0cd"],
            // Run 7: a scan cursor is read by strtoul, which stops at a NUL byte.
            // (SCAN's COUNT 0 is refused after the cursor is accepted.)
            &["SCAN", "\0", "COUNT", "0"],
            &["SCAN", "0\0x", "COUNT", "0"],
            &["SCAN", " 0", "COUNT", "0"],
            &["SADD", "{t}set", "a"],
            &["SSCAN", "{t}set", "\0"],
            &["HSET", "{t}hash", "f", "v"],
            &["HSCAN", "{t}hash", "\0junk"],
            &["ZSCAN", "{t}zset", "0\0"],
            &["SSCAN", "{t}hash", "\0"],
        ],
    );
}

/// Run 4: a relative RESTORE TTL past the end of the clock's range wraps to
/// the past in Redis (C arithmetic), so the key is not created.
#[test]
fn restore_with_a_ttl_past_the_clock_range() {
    let Some(mut d) = Diff::start(&[]) else { return };
    d.check(&["SET", "src", "payload"]).unwrap();
    let redis::Value::BulkString(payload) = d.check(&["DUMP", "src"]).unwrap() else { panic!("DUMP") };
    for ttl in ["9223372036854775807", "9223372036854775000", "1000000"] {
        for con in [&mut d.a, &mut d.b] {
            let r = common::run(con, &[b"RESTORE", b"dst", ttl.as_bytes(), &payload, b"REPLACE"]);
            assert_eq!(r, Ok(redis::Value::Okay), "RESTORE with ttl {ttl}");
        }
        d.check(&["EXISTS", "dst"]).unwrap();
    }
}

#[test]
fn scripting_classes_match_redis() {
    let Some(mut d) = Diff::start(&[]) else { return };
    check_all(
        &mut d,
        &[
            // S8: may-replicate commands count as writes in read-only scripts.
            &["EVAL_RO", "return redis.call('PUBLISH', 'ch', 'x')", "0"],
            &["EVAL_RO", "return redis.call('SPUBLISH', 'ch', 'x')", "0"],
            &["EVAL_RO", "return redis.call('PFCOUNT', 'h')", "1", "h"],
            &["EVAL", "#!lua flags=no-writes\nreturn redis.call('PUBLISH', 'ch', 'x')", "0"],
            &["EVAL", "return redis.call('PUBLISH', 'ch', 'x')", "0"],
            // S9: a script refused for its flags is cached first.
            &["EVAL_RO", "#!lua\nreturn 3", "0"],
            &["SCRIPT", "EXISTS", "7ce6e15378d4300df091d78096cf9a852c50602f"],
            &["EVALSHA", "7ce6e15378d4300df091d78096cf9a852c50602f", "0"],
            &["EVAL_RO", "#!lua\nreturn (", "0"],
            // Run 5: LuaBitOp folds from the last argument down (the error names it).
            &["EVAL", "return bit.bxor(0.5, 'top', '\0')", "0"],
            &["EVAL", "return bit.band(1, 'x', 3, 'y')", "0"],
            &["EVAL", "return bit.bor(1, 2, 4)", "0"],
            // Run 5: struct's integer formats convert 2^64 and above (inf) to 0, NaN to 2^63, as x86-64 C does.
            &["EVAL", "return struct.pack('i8', 1/0)", "0"],
            &["EVAL", "return struct.pack('I8', 1e308)", "0"],
            &["EVAL", "return struct.pack('i8', 0/0)", "0"],
            &["EVAL", "return struct.pack('<I8', 2^63 + 2^62)", "0"],
            // S6 (runs 4-7): numbers passed directly, which mlua would read as
            // 0 or ±1, reach cjson, cmsgpack, struct and sha1hex exactly; the
            // argument errors still name the function as its caller did.
            &["EVAL", "return cjson.encode(-0.0)", "0"],
            &["EVAL", "return {cjson.encode(1e-300), cjson.encode(-1e-300), cjson.encode(1)}", "0"],
            &["EVAL", "return cmsgpack.pack({[true]=1}, 1e-300)", "0"],
            &["EVAL", "return cmsgpack.pack(-0.0, 1 + 2^-52, -1 - 2^-52, 0.5, 5e-324)", "0"],
            &["EVAL", "return struct.pack('<d', -0.0)", "0"],
            &["EVAL", "return struct.pack('>d', 1e-300)", "0"],
            &["EVAL", "return struct.pack('c5', 1e-300, 'x')", "0"],
            &["EVAL", "return redis.sha1hex(-0.0)", "0"],
            // Run 8: the same numbers as table keys (a key 1e-300 stopped cmsgpack's walk).
            &["EVAL", "return cjson.encode({[1e-300]=1, a=2})", "0"],
            &["EVAL", "local t = {} t[-0.0] = 1 return cjson.encode(t)", "0"],
            &["EVAL", "return cjson.encode({{a={-0.0}}, {[0]=1}})", "0"],
            &["EVAL", "return cmsgpack.pack({[1e-300]=1, a=2})", "0"],
            &["EVAL", "return cmsgpack.pack({x={y=1e-300, [2e-300]=-0.0}})", "0"],
            &["EVAL", "return struct.pack('<d', 'x')", "0"],
            &["EVAL", "return cmsgpack.pack()", "0"],
            &["EVAL", "return cjson.encode(1, 2)", "0"],
            &["EVAL", "local ok, e = pcall(struct.pack, 'i', {})\nreturn e", "0"],
            &["EVAL", "local p = cjson.encode\nlocal ok, e = pcall(function()\nlocal y = p(1, 2)\nreturn y end)\nreturn e", "0"],
            &["EVAL", "local ok, e = pcall(function() local x = struct:pack(1) return x end)\nreturn e", "0"],
            // S3: functions lack the EVAL-only redis.* entries.
            &[
                "FUNCTION",
                "LOAD",
                "#!lua name=lib1\nredis.register_function('f1', function(KEYS, ARGV)\nreturn {type(redis.breakpoint), type(redis.debug), type(redis.replicate_commands), type(redis.call), type(redis.setresp)}\nend)",
            ],
            &["FCALL", "f1", "0"],
            &["EVAL", "return {type(redis.breakpoint), type(redis.debug), type(redis.replicate_commands)}", "0"],
            &["EVAL", "return redis.breakpoint()", "0"],
            &["EVAL", "return redis.replicate_commands()", "0"],
            &["FCALL", "f1", "0"],
        ],
    );
}
