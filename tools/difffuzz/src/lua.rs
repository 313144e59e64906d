//! Generated Lua: EVAL scripts and FUNCTION libraries that call random
//! commands through redis.call/pcall, push odd inputs through cjson,
//! cmsgpack, struct and bit, and return error/status tables, deep tables,
//! floats, booleans and tables with holes.

use crate::docs::Cmd;
use crate::gen::{sha1_hex, Command, Gen, Step, StepKind, KEYS, OTHER_KEYS};
use rand::Rng;
use std::fmt::Write as _;

/// A Lua string literal for arbitrary bytes (decimal escapes for the rest).
pub fn lua_str(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in bytes {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\{c:03}");
            }
        }
    }
    s.push('"');
    s
}

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "3.7",
    "-3.7",
    "1e308",
    "-1e308",
    "2^53",
    "2^63",
    "-2^63",
    "1/0",
    "-1/0",
    "0/0",
    "-0.0",
    "0.1",
    "1e-300",
    "123456789012",
    "2^31",
    "4294967296",
    "255",
    "0.5",
];

const JSON: &[&str] = &[
    r#"{"a":1}"#,
    r#"[1,2,3]"#,
    r#"[1.5e308,-0,1e400]"#,
    r#""\u0000""#,
    r#""\ud800""#,
    r#""\uD83D\uDE00""#,
    r#"["#,
    r#"{"a":}"#,
    r#"nul"#,
    r#"true"#,
    r#"null"#,
    r#"123456789012345678901234567890"#,
    r#"{"a":[1,{"b":null}],"c":"x"}"#,
    r#"0x10"#,
    r#"NaN"#,
    r#"Infinity"#,
    r#"  [1 , 2 ]  "#,
    r#"1e-400"#,
    r#"[1,2,]"#,
    r#"{"1":1,"2":2}"#,
    r#""a\nb""#,
    r#"-"#,
    r#""#,
    r#"[[[[[[[[[[1]]]]]]]]]]"#,
    r#"{"a":1,"a":2}"#,
    r#"3.14159265358979323846"#,
];

const MSGPACK: &[&[u8]] = &[
    b"\x93\x01\x02\x03",
    b"\xdc\x00\x03\x01\x02",
    b"\xc1",
    b"\xd9\x05abc",
    b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00",
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
    b"\x81\xa1a\x01",
    b"\xc0",
    b"\xc2\xc3",
    b"",
    b"\x91\x91\x91\x91\x90",
    b"\xa3abc\x01\x02",
    b"\xde\x00\x01\x01\x02",
    b"\xc4\x03abc",
    b"\xca\x3f\xc0\x00\x00",
];

const STRUCT_FORMATS: &[&str] = &[
    ">i4", "<I2", "b", "B", "h", "H", "l", "L", "i8", "f", "d", "s", "c0", "c5", "x", "!4i", "Bc0", "i3", "i16", "i0",
    ">", "?", "", "<d>d", "I8", "=i", "c", "z",
];

const BIT_OPS: &[(&str, usize)] = &[
    ("band", 2),
    ("bor", 2),
    ("bxor", 3),
    ("bnot", 1),
    ("lshift", 2),
    ("rshift", 2),
    ("arshift", 2),
    ("rol", 2),
    ("ror", 2),
    ("tobit", 1),
    ("tohex", 2),
    ("tohex", 1),
    ("bswap", 1),
];

const SHEBANGS: &[&str] = &[
    "#!lua\n",
    "#!lua flags=no-writes\n",
    "#!lua flags=allow-oom\n",
    "#!lua flags=no-cluster\n",
    "#!lua flags=allow-cross-slot-keys\n",
    "#!lua flags=allow-stale,no-writes\n",
    "#!lua name=x\n",
    "#!lua flags=foo\n",
    "#!python\n",
    "#!lua flags=\n",
];

impl<'t> Gen<'t> {
    fn lua_number(&mut self) -> String {
        self.pick(NUMBERS).to_string()
    }

    fn lua_element(&mut self) -> String {
        let e = self.element();
        lua_str(&e)
    }

    /// A Lua value literal (possibly a nested table).
    fn lua_value(&mut self, depth: usize) -> String {
        let r = self.rng.gen_range(0..if depth > 2 { 5 } else { 12 });
        match r {
            0 | 1 => self.lua_number(),
            2 | 3 => self.lua_element(),
            4 => self.pick(&["true", "false", "nil"]).to_string(),
            5 => "{}".into(),
            6 | 7 => {
                let n = self.rng.gen_range(1..=4);
                let items: Vec<String> = (0..n).map(|_| self.lua_value(depth + 1)).collect();
                format!("{{{}}}", items.join(", "))
            }
            8 => format!("{{a={}, b={}}}", self.lua_value(depth + 1), self.lua_value(depth + 1)),
            9 => format!("{{[1]={}, [3]={}}}", self.lua_value(depth + 1), self.lua_value(depth + 1)),
            10 => format!("{{{}, nil, {}}}", self.lua_value(depth + 1), self.lua_value(depth + 1)),
            _ => self.pick(&["{[0]=1}", "{[1.5]=1}", "{[true]=1}", "{1, 2, x=3}", "{{{{}}}}"]).to_string(),
        }
    }

    /// `redis.call('CMD', ...)` (or pcall) of a random command, keys from `KEYS[]`.
    fn lua_call(&mut self, keys: &[Vec<u8>], pcall: bool) -> String {
        let f = if pcall { "redis.pcall" } else { "redis.call" };
        match self.rng.gen_range(0..40) {
            0 => return format!("{f}()"),
            1 => return format!("{f}('nosuchcommand', 'x')"),
            2 => return format!("{f}('get', {{}})"),
            3 => return format!("{f}('set', KEYS[1], 1.5)"),
            4 => return format!("{f}('ping', nil)"),
            _ => {}
        }
        if self.script_pool.is_empty() {
            return format!("{f}('ping')");
        }
        let idx = *self.pick(&self.script_pool.clone());
        let table = self.table;
        let cmd: &Cmd = &table.cmds[idx];
        self.script_keys = Some(keys.to_vec());
        let c = self.command_of(cmd);
        self.script_keys = None;
        let mut parts = Vec::new();
        for (i, a) in c.argv.iter().enumerate() {
            if i > 0 {
                if let Some(k) = keys.iter().position(|k| k == a) {
                    if self.chance(0.85) {
                        parts.push(format!("KEYS[{}]", k + 1));
                        continue;
                    }
                }
                let as_int = std::str::from_utf8(a).ok().and_then(|s| s.parse::<i32>().ok());
                if let Some(n) = as_int {
                    if self.chance(0.3) {
                        parts.push(n.to_string());
                        continue;
                    }
                }
            }
            parts.push(lua_str(a));
        }
        format!("{f}({})", parts.join(", "))
    }

    fn lua_expr(&mut self, keys: &[Vec<u8>], depth: usize) -> String {
        if depth > 2 {
            return self.lua_value(3);
        }
        let r = self.rng.gen_range(0..30);
        match r {
            0..=5 => self.lua_call(keys, false),
            6..=8 => self.lua_call(keys, true),
            9 => format!("cjson.encode({})", self.lua_value(0)),
            10 => format!("cjson.decode({})", lua_str(self.pick(JSON).as_bytes())),
            11 => format!("cjson.encode(cjson.decode({}))", lua_str(self.pick(JSON).as_bytes())),
            12 => {
                let n = self.rng.gen_range(1..=3);
                let vals: Vec<String> = (0..n).map(|_| self.lua_value(0)).collect();
                format!("cmsgpack.pack({})", vals.join(", "))
            }
            13 => {
                let lit = if self.chance(0.7) {
                    self.pick(MSGPACK).to_vec()
                } else {
                    let n = self.rng.gen_range(0..10);
                    (0..n).map(|_| self.rng.gen::<u8>()).collect()
                };
                format!("{{cmsgpack.unpack({})}}", lua_str(&lit))
            }
            14 => format!("{{cmsgpack.unpack(cmsgpack.pack({}))}}", self.lua_value(0)),
            15 => {
                let fmt = self.pick(STRUCT_FORMATS).to_string();
                let n = self.rng.gen_range(0..=3);
                let mut args = vec![lua_str(fmt.as_bytes())];
                for _ in 0..n {
                    args.push(if self.chance(0.7) { self.lua_number() } else { self.lua_element() });
                }
                format!("struct.pack({})", args.join(", "))
            }
            16 => {
                let fmt = self.pick(STRUCT_FORMATS).to_string();
                let data = self.lua_element();
                format!("{{struct.unpack({}, {data})}}", lua_str(fmt.as_bytes()))
            }
            17 => format!("struct.size({})", lua_str(self.pick(STRUCT_FORMATS).as_bytes())),
            18 => {
                let (op, n) = *self.pick(BIT_OPS);
                let args: Vec<String> =
                    (0..n).map(|_| if self.chance(0.85) { self.lua_number() } else { self.lua_element() }).collect();
                format!("bit.{op}({})", args.join(", "))
            }
            19 => {
                let f = self.pick(&["redis.error_reply", "redis.status_reply"]).to_string();
                format!("{f}({})", self.lua_element())
            }
            20 => {
                let inner = self.lua_value(1);
                let key = self.pick(&["err", "ok"]).to_string();
                if self.chance(0.7) {
                    format!("{{{key}={}}}", self.lua_element())
                } else {
                    format!("{{{key}={inner}}}")
                }
            }
            21 => self.lua_value(0),
            22 => format!("redis.sha1hex({})", self.lua_element()),
            23 => {
                let n = self.lua_number();
                let e = self.lua_element();
                self.pick(&[
                    format!("tonumber({e})"),
                    format!("tostring({n})"),
                    format!("string.format('%.17g', {n})"),
                    format!("string.format('%d', {n})"),
                    format!("{n} + 0"),
                ])
                .clone()
            }
            // No math.random: rules.rs `lua-random-per-vm`.
            24 => self.pick(&["math.huge", "math.floor(3.7)", "math.fmod(7, 3)", "-math.huge"]).to_string(),
            25 => self
                .pick(&["#KEYS", "#ARGV", "ARGV[1]", "KEYS", "ARGV", "redis.REDIS_VERSION", "redis.REDIS_VERSION_NUM"])
                .to_string(),
            26 => format!("type({})", self.lua_expr(keys, depth + 1)),
            27 => format!("string.rep({}, {})", self.lua_element(), self.pick(&["0", "3", "100", "-1"])),
            28 => {
                let call = self.lua_call(keys, false);
                call.replacen("redis.call(", "redis.acl_check_cmd(", 1)
            }
            _ => {
                let a = self.lua_expr(keys, depth + 1);
                let b = self.lua_expr(keys, depth + 1);
                format!("{{{a}, {b}}}")
            }
        }
    }

    fn lua_statement(&mut self, keys: &[Vec<u8>], i: usize) -> String {
        match self.rng.gen_range(0..20) {
            0..=7 => format!("local v{i} = {}", self.lua_expr(keys, 0)),
            8 => self.pick(&["redis.setresp(3)", "redis.setresp(2)", "redis.setresp(4)"]).to_string(),
            9 => self
                .pick(&["redis.set_repl(redis.REPL_ALL)", "redis.replicate_commands()", "redis.set_repl(42)"])
                .to_string(),
            10 => format!("redis.log(redis.LOG_WARNING, {})", self.lua_element()),
            11 => format!("pcall(function() {} end)", self.lua_call(keys, false)),
            12 => {
                let n = self.pick(&["3", "100", "998", "999", "1000", "1001", "5000"]).to_string();
                format!("local deep = {{}} local c = deep for i = 1, {n} do c[1] = {{}} c = c[1] end")
            }
            13 => {
                let e = self.lua_element();
                self.pick(&[
                    format!("error({e})"),
                    format!("error({{err={e}}})"),
                    "error(42)".to_string(),
                    format!("assert(false, {e})"),
                    "error()".to_string(),
                    // Never error() with a table lacking a string `err`: rules.rs `redis-crasher`.
                ])
                .clone()
            }
            14 => self.pick(&["x = 1", "local y = undefined_global", "_G.z = 1", "setmetatable(_G, nil)"]).to_string(),
            15 => self.pick(&["redis.breakpoint()", "redis.debug('x')"]).to_string(),
            16 => {
                let n = self.rng.gen_range(1..=30);
                format!("for i = 1, {n} do {} end", self.lua_call(keys, true))
            }
            _ => format!("local v{i} = {}", self.lua_call(keys, false)),
        }
    }

    /// A script body using `keys` (its declared keys).
    pub(crate) fn script_text(&mut self, keys: &[Vec<u8>]) -> String {
        let mut s = String::new();
        if self.chance(0.1) {
            s.push_str(self.pick::<&str>(SHEBANGS));
        }
        let n = self.rng.gen_range(0..=3);
        for i in 0..n {
            s.push_str(&self.lua_statement(keys, i));
            s.push('\n');
        }
        if s.contains("local deep") && self.chance(0.7) {
            let r = self.pick(&["return deep", "return cjson.encode(deep)", "return cmsgpack.pack(deep)"]).to_string();
            s.push_str(&r);
        } else if n > 0 && self.chance(0.3) {
            let _ = write!(s, "return v{}", n - 1);
        } else if self.chance(0.95) {
            let _ = write!(s, "return {}", self.lua_expr(keys, 0));
        }
        s
    }

    fn script_keys_for_call(&mut self) -> Vec<Vec<u8>> {
        let n = *self.pick(&[0usize, 1, 1, 1, 2, 2, 3]);
        (0..n)
            .map(|_| {
                if self.chance(0.05) {
                    self.pick(OTHER_KEYS).name.as_bytes().to_vec()
                } else {
                    self.pick(KEYS).name.as_bytes().to_vec()
                }
            })
            .collect()
    }

    fn argv_values(&mut self) -> Vec<Vec<u8>> {
        let n = self.rng.gen_range(0..=3);
        (0..n).map(|_| self.element()).collect()
    }

    fn numkeys(&mut self, n: usize) -> Vec<u8> {
        match self.rng.gen_range(0..25) {
            0 => b"-1".to_vec(),
            1 => (n + 5).to_string().into_bytes(),
            2 => b"abc".to_vec(),
            _ => n.to_string().into_bytes(),
        }
    }

    fn eval_command(&mut self, name: &str, script: Vec<u8>, keys: &[Vec<u8>]) -> Command {
        let mut argv = vec![name.as_bytes().to_vec(), script];
        argv.push(self.numkeys(keys.len()));
        argv.extend(keys.iter().cloned());
        argv.extend(self.argv_values());
        Command { argv }
    }

    fn new_script(&mut self, keys: &[Vec<u8>]) -> (Vec<u8>, String) {
        let text = self.script_text(keys).into_bytes();
        let sha = sha1_hex(&text);
        self.shas.push(sha.clone());
        (text, sha)
    }

    pub(crate) fn script_step(&mut self) -> Step {
        let keys = self.script_keys_for_call();
        let mut cmds = Vec::new();
        match self.rng.gen_range(0..20) {
            0..=12 => {
                let (text, _) = self.new_script(&keys);
                cmds.push(self.eval_command("EVAL", text, &keys));
            }
            13..=15 => {
                let (text, sha) = self.new_script(&keys);
                cmds.push(Command { argv: vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), text] });
                cmds.push(self.eval_command("EVALSHA", sha.into_bytes(), &keys));
            }
            16 | 17 => {
                let sha = if self.shas.is_empty() { "0".repeat(40) } else { self.pick(&self.shas.clone()).clone() };
                cmds.push(self.eval_command("EVALSHA", sha.into_bytes(), &keys));
            }
            _ => {
                let (text, sha) = self.new_script(&keys);
                if self.chance(0.5) {
                    cmds.push(self.eval_command("EVAL_RO", text, &keys));
                } else {
                    cmds.push(Command { argv: vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), text] });
                    cmds.push(self.eval_command("EVALSHA_RO", sha.into_bytes(), &keys));
                }
            }
        }
        Step { kind: StepKind::Script, cmds }
    }

    fn function_code(&mut self) -> Vec<u8> {
        let lib = self.pick(&["lib1", "lib1", "lib2", "lib3"]).to_string();
        self.libs.push(lib.clone());
        let mut s = match self.rng.gen_range(0..20) {
            0 => String::from("#!lua\n"),
            1 => format!("#!lua name={lib} foo=bar\n"),
            2 => format!("#!js name={lib}\n"),
            3 => String::new(),
            _ => format!("#!lua name={lib}\n"),
        };
        let n = self.rng.gen_range(0..=2);
        if n == 0 && self.chance(0.5) {
            s.push_str(self.pick::<&str>(&["return 1", "redis.call('set', 'x', 1)", "error('boom')", "local x = 1"]));
        }
        for _ in 0..n {
            let fname = self.pick(&["f1", "f1", "f2", "f3", "f-1", ""]).to_string();
            self.functions.push(fname.clone());
            let keys: Vec<Vec<u8>> = Vec::new();
            let body = self.script_text(&keys).replace("#!lua", "--");
            if self.chance(0.7) {
                let _ = writeln!(s, "redis.register_function('{fname}', function(KEYS, ARGV)\n{body}\nend)");
            } else {
                let flags = self
                    .pick(&[
                        "{}",
                        "{'no-writes'}",
                        "{'allow-oom'}",
                        "{'allow-stale', 'no-writes'}",
                        "{'foo'}",
                        "{'no-cluster'}",
                    ])
                    .to_string();
                let _ = writeln!(
                    s,
                    "redis.register_function{{function_name='{fname}', callback=function(KEYS, ARGV)\n{body}\nend, flags={flags}}}"
                );
            }
        }
        s.into_bytes()
    }

    fn fcall(&mut self, ro: bool) -> Command {
        let f = if !self.functions.is_empty() && self.chance(0.85) {
            self.pick(&self.functions.clone()).clone()
        } else {
            self.pick(&["f1", "nofunc"]).to_string()
        };
        let keys = self.script_keys_for_call();
        let mut argv = vec![if ro { b"FCALL_RO".to_vec() } else { b"FCALL".to_vec() }, f.into_bytes()];
        argv.push(self.numkeys(keys.len()));
        argv.extend(keys);
        argv.extend(self.argv_values());
        Command { argv }
    }

    pub(crate) fn function_step(&mut self) -> Step {
        let mut cmds = Vec::new();
        if self.functions.is_empty() || self.chance(0.5) {
            let mut argv = vec![b"FUNCTION".to_vec(), b"LOAD".to_vec()];
            if self.chance(0.4) {
                argv.push(b"REPLACE".to_vec());
            }
            argv.push(self.function_code());
            cmds.push(Command { argv });
        }
        let n = self.rng.gen_range(1..=2);
        for _ in 0..n {
            let ro = self.chance(0.2);
            cmds.push(self.fcall(ro));
        }
        Step { kind: StepKind::Function, cmds }
    }

    /// A single command of one of the script/function commands.
    pub(crate) fn custom(&mut self, cmd: &Cmd) -> Command {
        let keys = self.script_keys_for_call();
        match cmd.name.as_str() {
            "eval" | "eval_ro" => {
                let (text, _) = self.new_script(&keys);
                self.eval_command(&cmd.name.to_uppercase(), text, &keys)
            }
            "evalsha" | "evalsha_ro" => {
                let sha = self.sha_for_eval();
                self.eval_command(&cmd.name.to_uppercase(), sha, &keys)
            }
            "fcall" => self.fcall(false),
            "fcall_ro" => self.fcall(true),
            "script|load" => {
                let (text, _) = self.new_script(&keys);
                Command { argv: vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), text] }
            }
            _ => {
                let code = self.function_code();
                Command { argv: vec![b"FUNCTION".to_vec(), b"LOAD".to_vec(), code] }
            }
        }
    }

    fn sha_for_eval(&mut self) -> Vec<u8> {
        if !self.shas.is_empty() && self.chance(0.8) {
            return self.pick(&self.shas.clone()).clone().into_bytes();
        }
        b"0000000000000000000000000000000000000000".to_vec()
    }
}
