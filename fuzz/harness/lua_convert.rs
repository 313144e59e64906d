//! The property both the `lua_convert` fuzz target and
//! `tests/fuzz_lua_convert.rs` check on the Lua conversion layer.
//!
//! The input bytes are decoded into a command reply (nested arrays, maps,
//! sets, numbers, strings, status and error replies) and into Lua values
//! built by a script (nested and self-referencing tables, huge numbers,
//! odd keys). Converting either way must never panic or overflow the stack,
//! and plain RESP2 replies must survive the round trip reply -> Lua -> reply
//! unchanged, as scripts that return what `redis.call` gave them rely on.

use bytes::Bytes;
use moonshard::protocol::Reply;
use moonshard::scripting::convert::{lua_to_reply, reply_to_lua};

/// Reads the input one byte at a time, with zeros past the end.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn bytes(&mut self, n: usize) -> Bytes {
        let end = (self.pos + n).min(self.data.len());
        let start = self.pos.min(end);
        self.pos += n;
        Bytes::copy_from_slice(&self.data[start..end])
    }
}

/// Decodes a reply tree. `plain` is cleared when a node of a type that does
/// not round-trip through Lua unchanged in RESP2 is produced.
fn reply(inp: &mut Input, depth: usize, plain: &mut bool) -> Reply {
    let tag = inp.byte();
    if depth > 6 || inp.done() {
        return Reply::Int(tag as i64 - 100);
    }
    match tag % 12 {
        0 => Reply::Int(i64::from(inp.byte()) << 40 | i64::from(inp.byte())),
        1 => {
            let n = (inp.byte() % 16) as usize;
            Reply::Bulk(inp.bytes(n))
        }
        2 | 3 => {
            let n = (inp.byte() % 5) as usize;
            Reply::Array((0..n).map(|_| reply(inp, depth + 1, plain)).collect())
        }
        4 => {
            let n = (inp.byte() % 8) as usize;
            Reply::Status(String::from_utf8_lossy(&inp.bytes(n)).replace(['\r', '\n', '\0'], " ").into())
        }
        5 => Reply::Nil,
        6 => {
            *plain = false;
            let n = (inp.byte() % 8) as usize;
            Reply::Error(format!("ERR {}", String::from_utf8_lossy(&inp.bytes(n))))
        }
        7 => {
            *plain = false;
            let n = (inp.byte() % 4) as usize;
            Reply::Map((0..n).map(|_| (reply(inp, depth + 1, plain), reply(inp, depth + 1, plain))).collect())
        }
        8 => {
            *plain = false;
            let n = (inp.byte() % 4) as usize;
            Reply::Set((0..n).map(|_| reply(inp, depth + 1, plain)).collect())
        }
        9 => {
            *plain = false;
            Reply::Double(f64::from_bits(u64::from(inp.byte()) << 56 | u64::from(inp.byte())))
        }
        10 => {
            *plain = false;
            Reply::Bool(inp.byte() & 1 == 1)
        }
        _ => {
            *plain = false;
            Reply::BigNumber(format!("{}", inp.byte()))
        }
    }
}

/// Lua source building a value from the input: nested tables, cycles,
/// metatables, numbers at the edges of what a reply can carry.
fn lua_source(inp: &mut Input) -> String {
    let mut src = String::from("local t = {} local cur = t\n");
    let mut steps = 0;
    while !inp.done() && steps < 64 {
        steps += 1;
        let b = inp.byte();
        let line = match b % 10 {
            0 => "cur[#cur + 1] = {} cur = cur[#cur]\n".to_string(),
            1 => format!("cur[#cur + 1] = {}\n", i64::from(inp.byte()) * 1_000_000_007 - 3),
            2 => "cur[#cur + 1] = 1e308 * 10\n".into(),
            3 => "cur[#cur + 1] = 0/0\n".into(),
            4 => "cur.self = t cur[#cur + 1] = t\n".into(),
            5 => "cur.ok = 'fine'\n".into(),
            6 => "cur.err = 'bad'\n".into(),
            7 => format!("for i = 1, {} do cur = {{cur}} end t = cur\n", u32::from(inp.byte()) * 8),
            8 => "setmetatable(cur, {__index = function() error('boom') end})\n".into(),
            _ => "cur[#cur + 1] = true cur[#cur + 1] = false cur[#cur + 2] = 'after hole'\n".into(),
        };
        src.push_str(&line);
    }
    src.push_str("return t\n");
    src
}

pub fn check(data: &[u8]) {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let resp = if cfg & 1 == 0 { 2 } else { 3 };
    let lua = mlua::Lua::new();
    let _ = lua.set_memory_limit(64 * 1024 * 1024);

    // Reply -> Lua -> reply.
    let mut plain = true;
    let original = reply(&mut Input { data: rest, pos: 0 }, 0, &mut plain);
    let value = reply_to_lua(&lua, &original, resp).expect("converting a reply to Lua");
    let back = lua_to_reply(&lua, &value, resp);
    if resp == 2 && plain {
        assert_eq!(wire(&back, resp), wire(&expected_round_trip(&original), resp), "RESP2 reply changed through Lua");
    }

    // Lua -> reply, from values a script builds.
    let src = lua_source(&mut Input { data: rest, pos: 0 });
    if let Ok(v) = lua.load(&src).eval::<mlua::Value>() {
        let _ = wire(&lua_to_reply(&lua, &v, resp), resp);
    }
}

/// A reply's bytes on the wire (script results come back already encoded).
fn wire(r: &Reply, resp: u8) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(resp, &mut out);
    out
}

/// What a plain RESP2 reply looks like after a trip through Lua: Lua arrays
/// end at the first nil, and a nil inside an array arrives as `false`, which
/// comes back as a nil reply.
fn expected_round_trip(r: &Reply) -> Reply {
    match r {
        Reply::Array(items) => Reply::Array(items.iter().map(expected_round_trip).collect()),
        Reply::Int(i) => Reply::Int(*i as f64 as i64),
        other => other.clone(),
    }
}
