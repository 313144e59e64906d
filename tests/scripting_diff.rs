//! Differential tests against a real redis-server: conversions in both
//! directions, error texts, RESP3.

mod common;

use common::Diff;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const SCRIPTS: &[&str] = &[
    "return 1",
    "return -7.9",
    "return 1e300",
    "return 0/0",
    "return 'str'",
    "return true",
    "return false",
    "return nil",
    "return {}",
    "return {1, 'two', {3, {4, false}}, true}",
    "return {1, nil, 3}",
    "return {ok='fine'}",
    "return {err='MY code'}",
    "return {err='plain'}",
    "return redis.status_reply('x\\r\\ny')",
    "return redis.error_reply('bad thing')",
    "return redis.error_reply('-CODE msg')",
    "return {double=3.5}",
    "return redis.call('set', 'k', 'v')",
    "return redis.call('get', 'k')",
    "return redis.call('get', 'missing')",
    "return redis.pcall('nosuch')",
    "return {redis.pcall('get')}",
    "return redis.call('nosuch')",
    "return nosuch",
    "nosuch = 1",
    "error('x')",
    "error('x', 0)",
    "error(42)",
    "error()",
    "error({err='T y'})",
    "local function f() error('deep') end\nlocal x = 1\nf()",
    "return redis.call('get')",
    "return redis.call()",
    "return redis.call({})",
    "return redis.call('ping', 1.5)",
    "return redis.call('echo', 3)",
    "redis.call('set', 'n', 0.1) return redis.call('get', 'n')",
    "redis.call('set', 'n', 2^60) return redis.call('get', 'n')",
    "redis.call('set', 'n', -0.0) return redis.call('get', 'n')",
    "redis.call('set', 'n', 1e17) return redis.call('get', 'n')",
    "redis.call('set', 'n', 12345678901234567) return redis.call('get', 'n')",
    "redis.call('set', 'n', -3) return redis.call('get', 'n')",
    "redis.call('set', 'n', 1/0) return redis.call('get', 'n')",
    "redis.call('set', 's', 'str') local ok, e = pcall(redis.call, 'incr', 's') return {tostring(ok), type(e), e}",
    "redis.call('set', 's', 'str') local t = redis.pcall('incr', 's') return {type(t), t.err, tostring(t.ignore_err_stats_update)}",
    "redis.call('set', 's', 'str') return {xpcall(function() return redis.call('incr', 's') end, function(e) return type(e) .. e.err .. tostring(e.ignore_err_stats_update) end)}",
    "return {xpcall(function() return redis.call('nosuch') end, function(e) return type(e) .. e.err end)}",
    "local co = coroutine.create(function() return redis.call('incr', 's') end) local ok, e = coroutine.resume(co) return {tostring(ok), type(e), e.err}",
    "return redis.pcall('get', 'a', 'b')",
    "return redis.call('lrange', 'nolist', 0, -1)",
    "redis.call('rpush', 'l', 'a', 'b') return redis.call('lrange', 'l', 0, -1)",
    "redis.call('hset', 'h', 'f', 'v') return redis.call('hgetall', 'h')",
    "redis.setresp(3) redis.call('hset', 'h3', 'f', 'v') return redis.call('hgetall', 'h3')",
    "redis.setresp(3) redis.call('zadd', 'z', 1.5, 'm') return redis.call('zscore', 'z', 'm')",
    "redis.call('zadd', 'z2', 1.5, 'm') return redis.call('zscore', 'z2', 'm')",
    "redis.setresp(3) return redis.call('smembers', 'nosuchset')",
    "return redis.call('ping')",
    "return redis.call('ping').ok",
    "return loadstring('return 1')()",
    "return type(loadstring(string.dump(function() end)))",
    "return {pcall(error, 'z')}",
    "local ok, e = pcall(function() return nosuch end) return e",
    "return redis.sha1hex('abc')",
    "return tostring(math.random(100))",
    "return string.format('%d %s %5.2f', 3, 'x', 1.5)",
    "return table.concat({1, 2, 3}, ',')",
    "return redis.setresp(3)",
    "redis.setresp(3) return redis.call('get', 'missing')",
    "redis.setresp(3) return {double=1.25}",
    "redis.setresp(3) return true",
    "redis.setresp(3) return false",
    "return redis.call('select', 100)",
    "return redis.call('time')[3]",
    "return x.y",
    "local t = setmetatable({}, {__index=function() return 1 end}) return t.q",
    "#!lua flags=no-writes\nreturn redis.call('get', 'k')",
    "#!lua flags=bogus\nreturn 1",
    "#!lua name=x\nreturn 1",
    "#!lua",
];

#[test]
fn conversions_and_errors() {
    let Some(mut d) = Diff::start(&["--shards", "1"]) else {
        return;
    };
    for script in SCRIPTS {
        let _ = d.check(&["EVAL", script, "0"]);
    }
    for (n, args) in [("-1", vec![]), ("2", vec!["a"]), ("x", vec![]), ("1", vec!["a", "b"])] {
        let mut all = vec!["EVAL", "return {KEYS[1], ARGV[1]}", n];
        all.extend(args);
        let _ = d.check(&all);
    }
    let _ = d.check(&["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]);
    let _ = d.check(&["EVALSHA", "short", "0"]);
    let _ = d.check(&["SCRIPT", "LOAD", "return 1 +"]);
    let _ = d.check(&["SCRIPT", "LOAD", "return 'loaded'"]);
    let _ = d.check(&["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"]);
    let _ = d.check(&["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "x"]);
    let _ = d.check(&["SCRIPT", "FLUSH", "SYNC"]);
    let _ = d.check(&["SCRIPT", "KILL"]);
    let _ = d.check(&["EVAL_RO", "return redis.call('set', 'a', 'b')", "1", "a"]);
    let _ = d.check(&["EVAL_RO", "#!lua\nreturn 1", "0"]);
    let _ = d.check(&["EVALSHA_RO", "ffffffffffffffffffffffffffffffffffffffff", "0"]);
}

/// Reads what the peer sends until it is quiet.
fn read_quiet(s: &mut TcpStream) -> Vec<u8> {
    common::read_quiet(s, Duration::from_millis(300))
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

#[test]
fn resp3_client() {
    let Some(d) = Diff::start(&["--shards", "1"]) else {
        return;
    };
    let mut ours = TcpStream::connect(("127.0.0.1", d.ours.port)).unwrap();
    let mut theirs = TcpStream::connect(("127.0.0.1", d.theirs.port)).unwrap();
    for s in [&mut ours, &mut theirs] {
        s.write_all(&resp(&["HELLO", "3"])).unwrap();
        read_quiet(s);
    }
    let scripts = [
        "return {double=1.5}",
        "return {map={a=1}}",
        "return {set={x=true}}",
        "return {big_number='123456789012345678901234567890'}",
        "return true",
        "return false",
        "return nil",
        "redis.setresp(3) return true",
        "redis.setresp(3) return false",
        "redis.setresp(3) return redis.call('get', 'missing')",
        "redis.setresp(3) return {double=2.5}",
        "return {1, {ok='x'}, {err='E y'}}",
        "return redis.call('nosuch')",
    ];
    for script in scripts {
        let req = resp(&["EVAL", script, "0"]);
        ours.write_all(&req).unwrap();
        theirs.write_all(&req).unwrap();
        let (a, b) = (read_quiet(&mut ours), read_quiet(&mut theirs));
        assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b), "RESP3 reply differs for {script}");
    }
}

/// Library scripts whose replies (values and error texts) must match
/// redis-server byte for byte.
const LIBRARY_SCRIPTS: &[&str] = &[
    r#"return cjson.encode({1, 2, 3})"#,
    r#"return cjson.encode({a=1})"#,
    r#"return cjson.encode('x"y\n')"#,
    r#"return cjson.encode(1.5)"#,
    r#"return cjson.encode({})"#,
    r#"return cjson.decode('[1,2,{"a":"b"}]')[3].a"#,
    r#"return cjson.decode('{"a":[1,2]}').a[2]"#,
    r#"return cjson.decode('x')"#,
    r#"local ok, e = pcall(cjson.decode, 'x') return e"#,
    r#"return type(cjson.decode('null'))"#,
    r#"return cjson.encode(cjson.decode('{"k":[true,false,null,1e3,"s"]}'))"#,
    r#"return cmsgpack.pack(1, 'a', {1, 2})"#,
    r#"return {cmsgpack.unpack(cmsgpack.pack(1, 'a', 3.5))}"#,
    r#"return bit.band(0xff, 0x0f)"#,
    r#"return bit.tohex(255)"#,
    r#"return {bit.bor(1, 2), bit.bxor(3, 1), bit.lshift(1, 4), bit.rshift(-1, 28), bit.arshift(-16, 2), bit.bnot(0)}"#,
    r#"return bit.band({})"#,
    r#"return struct.pack('>I2', 258)"#,
    r#"return {struct.unpack('<i4', struct.pack('<i4', -5))}"#,
    r#"return struct.size('>iH')"#,
    r#"return cjson.encode({1,2,'a/b', '\1\127\128', '\b\f\n\r\t\0\31 "\\'})"#,
    r#"return cjson.encode(function() end)"#,
    r#"return cjson.decode('[1,2')"#,
    r#"return cmsgpack.pack()"#,
    r#"return {cmsgpack.unpack('\207\255\255\255\255\255\255\255\255')}"#,
    r#"return cjson.decode(string.rep('[', 100000))"#,
    r#"return cmsgpack.unpack(string.rep('\145', 100000))"#,
    r#"return struct.pack('c2147483648', 'x')"#,
    r#"local t={} t[1]=t return cjson.encode(t)"#,
    r#"return cjson.encode({0.1, 1/3, 1e15, 1e14, 123456789012345678, -0.0, 1e-5, 0.0001, 2^53, 1e300, -1e-300})"#,
    r#"return cjson.encode(0/0)"#,
    r#"return cjson.encode(1/0)"#,
    r#"return cjson.encode({[1]=1,[2]=2,[4]=4})"#,
    r#"return cjson.encode({[1]=1,[20]=2})"#,
    r#"return cjson.encode({[1]=1,[2]=2,[11]=4})"#,
    r#"return cjson.encode({[1.5]=1})"#,
    r#"return cjson.encode({[true]=1})"#,
    r#"return cjson.encode({a={b={c={1,2,{d=cjson.null}}}}})"#,
    r#"return cjson.encode()"#,
    r#"return cjson.encode(1, 2)"#,
    r#"return cjson.encode(nil)"#,
    r#"return cjson.encode(cjson.null)"#,
    r#"return cjson.encode(true)"#,
    r#"return cjson.decode('')"#,
    r#"return cjson.decode('  ')"#,
    r#"return cjson.decode('[1,]')"#,
    r#"return cjson.decode('{"a":1,}')"#,
    r#"return cjson.decode('{"a" 1}')"#,
    r#"return cjson.decode('{1:1}')"#,
    r#"return cjson.decode('[1 2]')"#,
    r#"return cjson.decode('"abc')"#,
    r#"return cjson.decode('"a\\qb"')"#,
    r#"return cjson.decode('"a\\u12"')"#,
    r#"return cjson.decode('"\\u00e9\\ud83d\\ude00\\u0041"')"#,
    r#"return cjson.decode('"\\ud83d"')"#,
    r#"return cjson.decode('"\\/\\b\\f\\n\\r\\t\\"\\\\"')"#,
    r#"return cjson.decode('tru')"#,
    r#"return cjson.decode('nul')"#,
    r#"return cjson.decode('-')"#,
    r#"return cjson.decode('{"a":1} x')"#,
    r#"return cjson.decode('[1.5e3, -0.25, 1E2, 12e-1]')"#,
    r#"return cjson.encode(cjson.decode('[1.5e3, -0.25, 1E2, 12e-1, 1e400, 0x10, 012, +5, -0x1A]'))"#,
    r#"return tostring(cjson.decode('nan'))"#,
    r#"return tostring(cjson.decode('-Infinity'))"#,
    r#"return cjson.decode('.5')"#,
    r#"return cjson.decode(123)"#,
    r#"return cjson.decode({})"#,
    r#"return cjson.decode()"#,
    r#"return cjson.decode('\0a')"#,
    r#"return cjson.decode('1\0x')"#,
    r#"return cjson.decode('[[[[1]]]]')[1][1][1][1]"#,
    r#"return cjson.encode(cjson.decode('{"a":{},"b":[]}'))"#,
    r#"return cjson.encode_max_depth()"#,
    r#"return cjson.decode_max_depth()"#,
    r#"return {cjson.encode_sparse_array()}"#,
    r#"return cjson.encode_number_precision()"#,
    r#"return cjson.encode_keep_buffer()"#,
    r#"return cjson.encode_invalid_numbers()"#,
    r#"return cjson.decode_invalid_numbers()"#,
    r#"return cjson.encode_max_depth(0)"#,
    r#"return cjson.encode_max_depth('x')"#,
    r#"return cjson.encode_max_depth(1, 2)"#,
    r#"return cjson.encode_invalid_numbers('maybe')"#,
    r#"return cjson.encode_number_precision(15)"#,
    r#"return {cjson.encode_sparse_array(true, -1)}"#,
    r#"local c = cjson.new() c.encode_number_precision(3) return c.encode(3.14159)"#,
    r#"local c = cjson.new() c.encode_invalid_numbers('null') return c.encode({1/0, 0/0})"#,
    r#"local c = cjson.new() c.encode_invalid_numbers(true) return c.encode({1/0, -1/0, 0/0})"#,
    r#"local c = cjson.new() c.decode_invalid_numbers(false) return c.decode('[nan]')"#,
    r#"local c = cjson.new() c.decode_invalid_numbers(false) return c.decode('[012]')"#,
    r#"local c = cjson.new() c.decode_invalid_numbers(false) return c.decode('[0x1]')"#,
    r#"local c = cjson.new() c.decode_invalid_numbers(false) return c.decode('[+1]')"#,
    r#"local c = cjson.new() c.decode_invalid_numbers(false) return c.decode('[-1, 0, 0.5]')"#,
    r#"local c = cjson.new() c.encode_sparse_array(true) return c.encode({[1]=1,[20]=2})"#,
    r#"local c = cjson.new() c.encode_max_depth(2) return c.encode({{{1}}})"#,
    r#"local c = cjson.new() c.encode_max_depth(2) return c.encode({{1}})"#,
    r#"local c = cjson.new() c.decode_max_depth(2) return c.decode('[[[1]]]')"#,
    r#"local c = cjson.new() c.decode_max_depth(2) return c.decode('{"a":{"b":{}}}')"#,
    r#"return cjson.encode({[1]=1, [2]=2, n=3})"#,
    r#"return cjson.encode({[0]=1})"#,
    r#"return cjson.encode({[-1]=1})"#,
    r#"return cjson.encode({[1/0]=1})"#,
    r#"return cjson.encode({{}, {{}}, {a={}}})"#,
    r#"return cjson.encode(string.rep('x', 40))"#,
    r#"return cjson.encode({['a/b']='c"d'})"#,
    r#"return cjson.encode(setmetatable({}, {__index=function() return 1 end}))"#,
    r#"return cjson.encode(coroutine.create(function() end))"#,
    r#"return cjson.encode({f=print})"#,
    r#"return cjson.encode({1, nil, 3})"#,
    r#"return cjson.encode({nil, nil, 3})"#,
    r#"return cjson.decode('[1,2,3]')"#,
    r#"return cjson.decode('{"a":1}')"#,
    r#"return cjson.decode('"\\u0000x"')"#,
    r#"return cjson.decode('["a\tb"]')[1]"#,
    r#"return cjson.decode('1e')"#,
    r#"return cjson.decode('1.')"#,
    r#"return cjson.decode('-0')"#,
    r#"return tostring(cjson.decode('-0'))"#,
    r#"return tostring(cjson.decode('0.1'))"#,
    r#"return cjson.decode('Infinity')"#,
    r#"return cjson.decode('NaN')"#,
    r#"return cjson.decode('inf')"#,
    r#"return cjson.decode('nana')"#,
    r#"return cjson.decode('[true,false]')[2]"#,
    r#"return cjson.decode('{"a":true}').a"#,
    r#"return cmsgpack.pack(0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649)"#,
    r#"return cmsgpack.pack(1.5, 0.1, 1e300, 1/0, -1/0, 2^63, -2^63, 2^53+1, 3.0)"#,
    r#"return cmsgpack.pack(0/0)"#,
    r#"return cmsgpack.pack(string.rep('x', 31), string.rep('y', 32), string.rep('z', 255), string.rep('w', 256))"#,
    r#"return cmsgpack.pack(string.rep('x', 70000)):sub(1, 10)"#,
    r#"return cmsgpack.pack({}, {1,2,3}, {a=1}, {1, nil, 3}, {[2]=1}, {[1]=1, [2]=2, x=3})"#,
    r#"return cmsgpack.pack(true, false, nil, cjson.null, print)"#,
    r#"local t = {} for i=1,20 do t[i]=i end return cmsgpack.pack(t)"#,
    r#"local t = {} for i=1,70000 do t[i]=1 end return #cmsgpack.pack(t)"#,
    r#"local t = {} for i=1,20 do t['k'..i]=i end return #cmsgpack.pack(t)"#,
    r#"local t = {} t[1]=t return cmsgpack.pack(t)"#,
    r#"local t = {} t.a=t return cmsgpack.pack(t)"#,
    r#"local t = {} local x = t for i=1,30 do x[1] = {} x = x[1] end return cmsgpack.pack(t)"#,
    r#"return {cmsgpack.unpack(cmsgpack.pack(0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649))}"#,
    r#"return {cmsgpack.unpack(cmsgpack.pack('a', 'bc', true, false))}"#,
    r#"local a, b = cmsgpack.unpack(cmsgpack.pack(1.5, 0.1)) return tostring(a) .. ' ' .. tostring(b)"#,
    r#"local t = cmsgpack.unpack(cmsgpack.pack({a=1, b={1,2,{c='d'}}})) return {t.a, t.b[1], t.b[3].c}"#,
    r#"return {cmsgpack.unpack('')}"#,
    r#"return cmsgpack.unpack('\193')"#,
    r#"return cmsgpack.unpack('\196\1a')"#,
    r#"return cmsgpack.unpack('\205\1')"#,
    r#"return cmsgpack.unpack('\147\1\2')"#,
    r#"return cmsgpack.unpack('\217\5abc')"#,
    r#"return {cmsgpack.unpack('\204\200', 'x', 'y')}"#,
    r#"return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3))}"#,
    r#"return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 1)}"#,
    r#"return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 2)}"#,
    r#"return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 3)}"#,
    r#"return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 4)}"#,
    r#"return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), -1)}"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)}"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 1)}"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0)}"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0, 0)}"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), -1)}"#,
    // Tables are built as lua-cmsgpack builds them, so `pairs` walks them in Redis's order.
    r#"local t = {} for i=1,40 do t['k'..i] = i end t[7] = 'x' t[1.5] = true local u = cmsgpack.unpack(cmsgpack.pack(t)) local o = {} for k, v in pairs(u) do o[#o+1] = tostring(k) .. '=' .. tostring(v) end return o"#,
    r#"local u = cmsgpack.unpack(cmsgpack.pack({1, 2, {a={b={c={1, 'x', {}}}}}, 4, {}})) local o = {} for k, v in pairs(u[3].a.b.c) do o[#o+1] = k .. ':' .. type(v) end return {#u, o}"#,
    r#"local u = cmsgpack.unpack('\148\1\192\192\4') local o = {} for k, v in pairs(u) do o[#o+1] = k end return {#o, o}"#,
    r#"return {cmsgpack.unpack(cmsgpack.pack({x=1}, 'tail', {1, {2}}))}"#,
    r#"return cmsgpack.unpack('\129\192\1')"#,
    r#"return cmsgpack.unpack('\129\192')"#,
    r#"return cmsgpack.unpack('\129\192\146\1')"#,
    r#"return cmsgpack.unpack('\129\192\193')"#,
    r#"return cmsgpack.unpack('\129\203\127\248\0\0\0\0\0\0\1')"#,
    r#"return cmsgpack.unpack('\129\203\127\248\0\0\0\0\0\0')"#,
    r#"return cmsgpack.unpack('\130\1\2\192\1')"#,
    r#"return cmsgpack.unpack(string.rep('\145', 50) .. '\1')"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack({a={1,2}}, 'b', {c=3}), 2)}"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3))}"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 'x')}"#,
    r#"return cmsgpack.unpack({})"#,
    r#"return cmsgpack.unpack()"#,
    r#"return {cmsgpack.unpack(12)}"#,
    r#"return {cmsgpack.unpack('\129\192\1')}"#,
    r#"return {cmsgpack.unpack('\129\203\127\248\0\0\0\0\0\0\1')}"#,
    r#"return {cmsgpack.unpack('\220\0\3\1\2\3')}"#,
    r#"return {cmsgpack.unpack('\221\0\0\0\2\1\2')}"#,
    r#"return cmsgpack.unpack('\222\0\1\161a\1').a"#,
    r#"return cmsgpack.unpack('\223\0\0\0\1\161a\1').a"#,
    r#"return {cmsgpack.unpack('\219\0\0\0\2ab')}"#,
    r#"return {cmsgpack.unpack('\218\0\2ab')}"#,
    r#"return {cmsgpack.unpack('\221\255\255\255\255\1')}"#,
    r#"return {cmsgpack.unpack('\208\200\209\255\0\210\255\255\255\0\211\255\255\255\255\255\255\255\0')}"#,
    r#"return {cmsgpack.unpack('\206\255\255\255\255\207\0\0\0\1\0\0\0\0')}"#,
    r#"return cmsgpack.unpack(string.rep('\129', 100)..'\1\2')"#,
    r#"local t = {cmsgpack.unpack(string.rep('\1', 7990))} return #t"#,
    r#"return bit.tobit(0xffffffff)"#,
    r#"return {bit.tobit(2^32+5), bit.tobit(-1), bit.tobit(2.5), bit.tobit(3.5), bit.tobit(-2.5), bit.tobit(2^53), bit.tobit(1e20)}"#,
    r#"return {bit.tohex(-1), bit.tohex(255, 2), bit.tohex(255, -4), bit.tohex(0x12345678, 20), bit.tohex(1, 0), bit.tohex(1, -2147483648)}"#,
    r#"return {bit.bnot(5), bit.band(-1, 0xf0f0), bit.bor(1, 2, 4, 8), bit.bxor(1, 3, 7)}"#,
    r#"return {bit.lshift(1, 31), bit.lshift(1, 32), bit.lshift(1, 33), bit.rshift(0x80000000, 31), bit.arshift(0x80000000, 31), bit.arshift(-1, 40)}"#,
    r#"return {bit.rol(0x12345678, 8), bit.ror(0x12345678, 8), bit.bswap(0x12345678), bit.rol(1, -1)}"#,
    r#"return bit.band()"#,
    r#"return bit.band(1, 'x')"#,
    r#"return bit.band('0x10', ' 3 ')"#,
    r#"return bit.lshift(1)"#,
    r#"return bit.tobit(nil)"#,
    r#"return bit.tohex(1, {})"#,
    r#"return struct.pack('>I2', 258)"#,
    r#"return struct.pack('<i4 >i4 =i4 !4 b B h H l L T', 1, 2, 3, -4, 250, -6, 65000, -8, 9, 10)"#,
    r#"return struct.pack('bBhHiIlLT', -1, -1, -1, -1, -1, -1, -1, -1, -1)"#,
    r#"return struct.pack('i16', -2)"#,
    r#"return struct.pack('>i16', 258)"#,
    r#"return struct.pack('i33', 1)"#,
    r#"return struct.pack('i0', 1)"#,
    r#"return struct.pack('f d >f >d', 1.5, 2.25, 1.5, 2.25)"#,
    r#"return struct.pack('s', 'abc')"#,
    r#"return struct.pack('c5', 'abcdefg')"#,
    r#"return struct.pack('c5', 'ab')"#,
    r#"return struct.pack('c0', 'abcd')"#,
    r#"return struct.pack('c', 'xyz')"#,
    r#"return struct.pack('x i x', 5)"#,
    r#"return struct.pack('!4 b i', 1, 2)"#,
    r#"return struct.pack('!8 b d', 1, 2)"#,
    r#"return struct.pack('!2 b i', 1, 2)"#,
    r#"return struct.pack('! b i3 h', 1, 2, 3)"#,
    r#"return struct.pack('!3 b i', 1, 2)"#,
    r#"return struct.pack('!0 b i', 1, 2)"#,
    r#"return struct.pack('z', 1)"#,
    r#"return struct.pack('i')"#,
    r#"return struct.pack('ii', 1)"#,
    r#"return struct.pack('i', 'x')"#,
    r#"return struct.pack('s')"#,
    r#"return struct.pack()"#,
    r#"return struct.pack('i', 2^40)"#,
    r#"return struct.pack('I', 2^33 + 7)"#,
    r#"return struct.pack('b', 1e30)"#,
    r#"return struct.pack('c2147483647', 'x')"#,
    r#"return struct.pack('c99999999999', 'x')"#,
    r#"return struct.pack('i9999999999', 1)"#,
    r#"return struct.pack('!99999999999', 1)"#,
    r#"return struct.pack('b\0i', 1, 2)"#,
    r#"return {struct.unpack('<i4', struct.pack('<i4', -5))}"#,
    r#"return {struct.unpack('bBhHiIlLT', struct.pack('bBhHiIlLT', -1, -1, -1, -1, -1, -1, -1, -1, -1))}"#,
    r#"return {struct.unpack('>i3 <I3 i16 I16', struct.pack('>i3 <I3 i16 I16', -2, 70000, -3, 5))}"#,
    r#"return {struct.unpack('i9', string.rep('\255', 9))}"#,
    r#"return {struct.unpack('I9', string.rep('\255', 9))}"#,
    r#"local a, b = struct.unpack('f d', struct.pack('f d', 1.5, 0.1)) return tostring(a)..' '..tostring(b)"#,
    r#"local a, b = struct.unpack('>f >d', struct.pack('>f >d', 1.5, 0.1)) return tostring(a)..' '..tostring(b)"#,
    r#"return {struct.unpack('s s', 'ab\0cd\0ef')}"#,
    r#"return {struct.unpack('s', 'abc')}"#,
    r#"return {struct.unpack('c0', 'abc')}"#,
    r#"return {struct.unpack('b c0', '\2abc')}"#,
    r#"return {struct.unpack('b c0', '\9abc')}"#,
    r#"return {struct.unpack('c3 c0', 'abcdef')}"#,
    r#"return {struct.unpack('c2', 'abc', 2)}"#,
    r#"return {struct.unpack('c2', 'abc', 3)}"#,
    r#"return {struct.unpack('c2', 'abc', 0)}"#,
    r#"return {struct.unpack('c2', 'abc', 4)}"#,
    r#"return {struct.unpack('c2', 'abc', 5)}"#,
    r#"return {struct.unpack('c2', 'abc', -1)}"#,
    r#"return {struct.unpack('i', 'abc')}"#,
    r#"return {struct.unpack('x x b', 'abc')}"#,
    r#"return {struct.unpack('!4 b i', '\1\0\0\0\2\0\0\0')}"#,
    r#"return {struct.unpack('c2147483647', 'abc')}"#,
    r#"return {struct.unpack('c99999999999', 'abc')}"#,
    r#"return {struct.unpack('z', 'abc')}"#,
    r#"return {struct.unpack('i')}"#,
    r#"return {struct.unpack('i', {})}"#,
    r#"return {struct.unpack('i', 'abcd', 'x')}"#,
    r#"return #{struct.unpack(string.rep('b', 7990), string.rep('\1', 7990))}"#,
    r#"return {struct.size('>iH'), struct.size('bhilTfdx'), struct.size('!8 b d'), struct.size('c10'), struct.size('i16'), struct.size('zq'), struct.size('')}"#,
    r#"return struct.size('s')"#,
    r#"return struct.size('c0')"#,
    r#"return struct.size('c')"#,
    r#"return struct.size('!3')"#,
    r#"return struct.size('?')"#,
    r#"return struct.size()"#,
    r#"return struct.size(string.rep('c2147483647', 4))"#,
    r#"return struct.size('i40')"#,
    r#"return {pcall(struct.unpack, 'c2', 'abc', 0)}"#,
    r#"local u = struct.unpack return u('c2', 'abc', 0)"#,
    r#"return {pcall(bit.band, {})}"#,
    r#"return {pcall(cjson.encode)}"#,
    r#"local t = {1,2} return t:foo()"#,
    r#"return cjson.encode({-0.0, 1e-300, a=1e-20})"#,
    r#"return cjson.encode({1e-20, 1e-300})"#,
    r#"return cmsgpack.pack({0.99999999999999989, -0.99999999999999989, x=0.99999999999999989, y=-0.0})"#,
    r#"return cmsgpack.pack({1, -1, 0, 2^53})"#,
    r#"return cjson.encode({0.99999999999999989, -0.99999999999999989})"#,
    r#"cjson.encode = nil"#,
    r#"cmsgpack.x = 1"#,
    r#"struct.pack = struct.unpack return 1"#,
    r#"return cjson.decode('{"a":1, "b":[1,2,{"c":null}], "d":"\\u20ac"}').d"#,
    r#"return cjson.encode({name='job', data={x=1, y={1,2,3}}, opts={attempts=3, backoff={type='fixed', delay=100}}})"#,
];

#[test]
fn cjson_and_libraries() {
    let Some(mut d) = Diff::start(&["--shards", "1"]) else {
        return;
    };
    for script in LIBRARY_SCRIPTS {
        d.check(&["EVAL", script, "0"]).ok();
    }
    // Deep and huge inputs end in errors on both servers, and moonshard
    // still answers afterwards.
    assert!(d.ours.cli(&["PING"]).is_some_and(|r| r.contains("PONG")));
}

/// Lua table constructors with nested arrays, objects, numbers of every
/// kind and escaped strings: cjson and cmsgpack encode them identically on
/// both servers (key order included, both being Lua 5.1 hash tables).
#[test]
fn randomized_encodings() {
    use rand::SeedableRng;
    let Some(mut d) = Diff::start(&["--shards", "1"]) else {
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..80 {
        let expr = random_lib_value(&mut rng, 0);
        d.check(&["EVAL", &format!("return cjson.encode({expr})"), "0"]).ok();
        d.check(&["EVAL", &format!("return cmsgpack.pack({expr})"), "0"]).ok();
        d.check(&["EVAL", &format!("return cjson.encode(cjson.decode(cjson.encode({expr})))"), "0"]).ok();
        d.check(&["EVAL", &format!("return cmsgpack.pack(cmsgpack.unpack(cmsgpack.pack({expr})))"), "0"]).ok();
    }
}

fn random_lib_value(rng: &mut impl rand::Rng, depth: u32) -> String {
    match rng.gen_range(0..if depth > 3 { 6 } else { 9 }) {
        0 => rng.gen_range(-100_000i64..100_000).to_string(),
        1 => format!("{}", rng.gen_range(-1e6..1e6f64)),
        2 => ["0.1", "1/3", "2^40", "-2^53", "1e300", "1e-5", "255", "65536", "-33", "2^32"][rng.gen_range(0..10)]
            .to_string(),
        3 => ["'a/b'", "'q\"x'", "'\\n\\t'", "'\\1\\127'", "'caf\\195\\169'", "''", "string.rep('z', 40)"]
            [rng.gen_range(0..7)]
        .to_string(),
        4 => ["true", "false", "cjson.null"][rng.gen_range(0..3)].to_string(),
        5 => format!("'s{}'", rng.gen_range(0..1000)),
        6 | 7 => {
            let n = rng.gen_range(0..5);
            let items: Vec<String> = (0..n).map(|_| random_lib_value(rng, depth + 1)).collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => {
            let n = rng.gen_range(1..5);
            let items: Vec<String> =
                (0..n).map(|i| format!("k{}_{i}={}", rng.gen_range(0..50), random_lib_value(rng, depth + 1))).collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

#[test]
fn randomized_tables() {
    use rand::SeedableRng;
    let Some(mut d) = Diff::start(&["--shards", "1"]) else {
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..60 {
        let expr = random_value(&mut rng, 0);
        let _ = d.check(&["EVAL", &format!("return {expr}"), "0"]);
    }
}

fn random_value(rng: &mut impl rand::Rng, depth: u32) -> String {
    match rng.gen_range(0..if depth > 2 { 5 } else { 8 }) {
        0 => rng.gen_range(-1000..1000).to_string(),
        1 => format!("{:.3}", rng.gen_range(-100.0..100.0)),
        2 => format!("'s{}'", rng.gen_range(0..100)),
        3 => ["true", "false", "nil"][rng.gen_range(0..3)].to_string(),
        4 => format!("{{ok='st{}'}}", rng.gen_range(0..9)),
        5 => format!("{{err='E{} x'}}", rng.gen_range(0..9)),
        _ => {
            let n = rng.gen_range(0..4);
            let items: Vec<String> = (0..n).map(|_| random_value(rng, depth + 1)).collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Hostile inputs to the libraries end in errors, never in a crash, and
/// the VM serves the next script normally. Runs without redis-server.
#[test]
fn libraries_survive_hostile_inputs() {
    let server = common::moonshard(&["--shards", "2"]);
    let mut con = server.client();
    let cases: &[(&str, &str)] = &[
        (
            "return cjson.decode(string.rep('[', 100000))",
            "Found too many nested data structures (1001) at character 1001",
        ),
        ("return cjson.decode(string.rep('{\"a\":', 100000))", "Found too many nested data structures (1001)"),
        ("local t = {} t[1] = t return cjson.encode(t)", "Cannot serialise, excessive nesting (1001)"),
        ("local t = {} t.a = t return cjson.encode(t)", "Cannot serialise, excessive nesting (1001)"),
        ("return cmsgpack.unpack(string.rep('\\145', 100000))", "stack overflow"),
        ("return cmsgpack.unpack(string.rep('\\129', 100000))", "stack overflow"),
        ("return cmsgpack.unpack('\\221\\255\\255\\255\\255')", "Missing bytes in input."),
        ("return struct.pack('c2147483648', 'x')", "integral size overflow"),
        ("return struct.pack('c2147483647', 'x')", "string too short"),
        ("return struct.unpack('c2147483647', 'x')", "data string too short"),
        ("return struct.unpack(string.rep('c1', 5000), string.rep('x', 5000))", "stack overflow"),
        ("return struct.size(string.rep('i32', 100000))", ""),
        (
            "local c = cjson.new() c.encode_max_depth(2^31 - 1) local t = {} t[1] = t return c.encode(t)",
            "excessive nesting",
        ),
    ];
    for (script, want) in cases {
        match common::run_str(&mut con, &["EVAL", script, "0"]) {
            Err(e) => assert!(e.contains(want), "{script}: {e}"),
            Ok(v) => assert!(want.is_empty(), "{script}: expected an error, got {v:?}"),
        }
    }
    // A self-referencing table packs as nil past 16 levels.
    let packed = common::run_str(&mut con, &["EVAL", "local t = {} t[1] = t return #cmsgpack.pack(t)", "0"]);
    assert_eq!(packed, Ok(redis::Value::Int(17)));
    assert_eq!(
        common::run_str(&mut con, &["EVAL", "return cjson.encode({1, {a='b'}})", "0"]).ok(),
        Some(redis::Value::BulkString(b"[1,{\"a\":\"b\"}]".to_vec()))
    );
}

/// KEYS and ARGV are fresh for every script run, whatever the last run did
/// to them (moonshard refills the last run's tables when it cannot be told
/// apart), and a script that never assigns a global (which reads globals
/// directly, not through the read-only proxy) sees the same globals and
/// errors as one that does. Every case runs by EVALSHA after a script that
/// altered the tables, with the same and with other numbers of items.
#[test]
fn keys_argv_fresh_each_run() {
    let Some(mut d) = Diff::start(&["--shards", "1"]) else {
        return;
    };
    let show =
        "local t = {#KEYS, #ARGV} for k, v in pairs(KEYS) do t[#t + 1] = 'K' .. tostring(k) .. '=' .. tostring(v) end \
                for k, v in pairs(ARGV) do t[#t + 1] = 'A' .. tostring(k) .. '=' .. tostring(v) end \
                t[#t + 1] = tostring(getmetatable(KEYS)) .. tostring(getmetatable(ARGV)) \
                t[#t + 1] = tostring(KEYS[9]) .. tostring(ARGV[9]) return t";
    let alters = [
        "return 0",
        "KEYS[1] = 'changed' ARGV[2] = nil return 1",
        "KEYS[9] = 'x' ARGV.extra = 1 return 1",
        "table.insert(KEYS, 'more') table.insert(ARGV, 'more') return 1",
        "table.remove(KEYS) table.remove(ARGV) return 1",
        "KEYS.x = 1 KEYS.x = nil ARGV[1] = nil return 1",
        "setmetatable(KEYS, {__index = function() return 'meta' end}) setmetatable(ARGV, {}) return 1",
        "for i = 1, 100 do KEYS[i] = i end return 1",
        "rawset(ARGV, 9, 'r') return 1",
        "local ok, e = pcall(function() KEYS[9] = 'x' error('late') end) return e",
        "KEYS[9] = 'x' error('after changing KEYS')",
        "KEYS = {}",
        "return nosuchglobal",
    ];
    let show_sha = match d.check(&["SCRIPT", "LOAD", show]) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8(b).unwrap_or_default(),
        other => panic!("SCRIPT LOAD: {other:?}"),
    };
    let shapes: [&[&str]; 4] =
        [&["2", "{t}a", "{t}b", "x", "y"], &["0"], &["1", "{t}a", "x", "y", "z"], &["2", "{t}a", "{t}b", "x", "y"]];
    for alter in alters {
        for (i, before) in shapes.iter().enumerate() {
            let mut args = vec!["EVAL", alter];
            args.extend_from_slice(before);
            let _ = d.check(&args);
            let after = shapes[(i + 1) % shapes.len()];
            for shape in [*before, after] {
                let mut args = vec!["EVALSHA", show_sha.as_str()];
                args.extend_from_slice(shape);
                let _ = d.check(&args);
            }
        }
    }
    // Globals read directly or through the proxy: same values, same errors.
    for script in [
        "return {type(redis), type(KEYS), type(tonumber), type(cjson), type(string), type(_G), tostring(_G == _G)}",
        "local function f() return nosuch end return f()",
        "local x = 1 local function f() return function() return x + undefined_one end end return f()()",
        "return _G.KEYS[1]",
        "return type(getmetatable(_G))",
        "_G.new = 1",
        "setmetatable(_G, nil)",
        "local f = loadstring('gl = 1') return f()",
        "function g() end",
        "local t = {} t.x = 1 return redis.call('ping')",
    ] {
        let _ = d.check(&["EVAL", script, "1", "{t}k", "v"]);
    }
}
