//! The command declarations: `COMMAND DOCS` (argument trees) and `COMMAND`
//! (arity, flags, tips) read from redis-server, and the names moonshard
//! declares read from moonshard.

use crate::conn::Conn;
use crate::resp::Value;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    Key,
    String,
    Integer,
    Double,
    Pattern,
    UnixTime,
    PureToken,
    OneOf,
    Block,
}

#[derive(Clone, Debug)]
pub struct Arg {
    pub name: String,
    pub ty: ArgType,
    pub token: Option<String>,
    pub optional: bool,
    pub multiple: bool,
    pub multiple_token: bool,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug)]
pub struct Cmd {
    /// Lower case, `parent|sub` for subcommands (as Redis names them).
    pub name: String,
    /// The words that start a request: `["CONFIG", "GET"]`.
    pub words: Vec<String>,
    pub group: String,
    pub args: Vec<Arg>,
    pub arity: i64,
    pub flags: Vec<String>,
    pub tips: Vec<String>,
    /// Has subcommands (the container itself takes none of its own).
    pub container: bool,
}

impl Cmd {
    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
    pub fn has_tip(&self, t: &str) -> bool {
        self.tips.iter().any(|x| x == t)
    }
    /// Every token in the argument tree (used by mutations).
    pub fn tokens(&self) -> Vec<String> {
        fn walk(args: &[Arg], out: &mut Vec<String>) {
            for a in args {
                if let Some(t) = &a.token {
                    out.push(t.clone());
                }
                walk(&a.args, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.args, &mut out);
        out
    }
}

pub struct Table {
    pub cmds: Vec<Cmd>,
    by_name: HashMap<String, usize>,
}

fn text(v: &Value) -> String {
    match v {
        Value::Simple(b) | Value::Bulk(b) | Value::Verbatim(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

/// A RESP2 flat `[k, v, k, v]` array (or a RESP3 map) as pairs.
fn pairs(v: &Value) -> Vec<(String, &Value)> {
    match v {
        Value::Array(items) => items.chunks(2).filter(|c| c.len() == 2).map(|c| (text(&c[0]), &c[1])).collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (text(k), v)).collect(),
        _ => Vec::new(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().map(text).collect(),
        _ => Vec::new(),
    }
}

fn parse_arg(v: &Value) -> Option<Arg> {
    let mut a = Arg {
        name: String::new(),
        ty: ArgType::String,
        token: None,
        optional: false,
        multiple: false,
        multiple_token: false,
        args: Vec::new(),
    };
    for (k, x) in pairs(v) {
        match k.as_str() {
            "name" => a.name = text(x),
            "type" => {
                a.ty = match text(x).as_str() {
                    "key" => ArgType::Key,
                    "string" => ArgType::String,
                    "integer" => ArgType::Integer,
                    "double" => ArgType::Double,
                    "pattern" => ArgType::Pattern,
                    "unix-time" => ArgType::UnixTime,
                    "pure-token" => ArgType::PureToken,
                    "oneof" => ArgType::OneOf,
                    "block" => ArgType::Block,
                    _ => ArgType::String,
                }
            }
            "token" => a.token = Some(text(x)),
            "flags" => {
                for f in strings(x) {
                    match f.as_str() {
                        "optional" => a.optional = true,
                        "multiple" => a.multiple = true,
                        "multiple_token" => a.multiple_token = true,
                        _ => {}
                    }
                }
            }
            "arguments" => {
                if let Value::Array(items) = x {
                    a.args = items.iter().filter_map(parse_arg).collect();
                }
            }
            _ => {}
        }
    }
    (!a.name.is_empty()).then_some(a)
}

fn parse_docs(name: &str, v: &Value, parent: Option<&str>, out: &mut Vec<Cmd>) {
    let words = match parent {
        Some(p) => vec![p.to_uppercase(), name.split('|').nth(1).unwrap_or(name).to_uppercase()],
        None => vec![name.to_uppercase()],
    };
    let mut cmd = Cmd {
        name: name.to_lowercase(),
        words,
        group: String::new(),
        args: Vec::new(),
        arity: 0,
        flags: Vec::new(),
        tips: Vec::new(),
        container: false,
    };
    let mut subs = Vec::new();
    for (k, x) in pairs(v) {
        match k.as_str() {
            "group" => cmd.group = text(x),
            "arguments" => {
                if let Value::Array(items) = x {
                    cmd.args = items.iter().filter_map(parse_arg).collect();
                }
            }
            "subcommands" => {
                cmd.container = true;
                for (sub, sv) in pairs(x) {
                    subs.push((sub, sv));
                }
            }
            _ => {}
        }
    }
    out.push(cmd);
    for (sub, sv) in subs {
        parse_docs(&sub, sv, Some(name), out);
    }
}

fn apply_info(v: &Value, by_name: &HashMap<String, usize>, cmds: &mut [Cmd]) {
    let Value::Array(items) = v else { return };
    if items.len() < 8 {
        return;
    }
    let name = text(&items[0]).to_lowercase();
    if let Some(&i) = by_name.get(&name) {
        let c = &mut cmds[i];
        if let Value::Int(n) = items[1] {
            c.arity = n;
        }
        c.flags = strings(&items[2]);
        c.tips = strings(&items[7]);
    }
    if let Some(Value::Array(subs)) = items.get(9) {
        for s in subs {
            apply_info(s, by_name, cmds);
        }
    }
}

impl Table {
    /// Reads Redis's declarations from a redis-server connection.
    pub fn load(redis: &mut Conn) -> Result<Table, String> {
        let t = Duration::from_secs(10);
        let docs = redis.call(&[b"COMMAND", b"DOCS"], t).map_err(|e| format!("COMMAND DOCS: {e:?}"))?;
        let mut cmds = Vec::new();
        for (name, v) in pairs(&docs.value) {
            parse_docs(&name, v, None, &mut cmds);
        }
        if cmds.is_empty() {
            return Err("COMMAND DOCS returned no commands".into());
        }
        cmds.sort_by(|a, b| a.name.cmp(&b.name));
        let by_name: HashMap<String, usize> = cmds.iter().enumerate().map(|(i, c)| (c.name.clone(), i)).collect();
        let info = redis.call(&[b"COMMAND"], t).map_err(|e| format!("COMMAND: {e:?}"))?;
        if let Value::Array(items) = &info.value {
            for it in items {
                apply_info(it, &by_name, &mut cmds);
            }
        }
        Ok(Table { cmds, by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Cmd> {
        self.by_name.get(name).map(|&i| &self.cmds[i])
    }

    /// The declared command an argv runs (`config|get` for `CONFIG GET ...`).
    pub fn resolve(&self, argv: &[Vec<u8>]) -> String {
        let Some(first) = argv.first() else { return String::new() };
        let top = String::from_utf8_lossy(first).to_lowercase();
        if let Some(c) = self.get(&top) {
            if c.container {
                if let Some(sub) = argv.get(1) {
                    let full = format!("{top}|{}", String::from_utf8_lossy(sub).to_lowercase());
                    if self.get(&full).is_some() {
                        return full;
                    }
                }
            }
        }
        top
    }
}

/// The command names (subcommands as `parent|sub`) a server declares in `COMMAND`.
pub fn declared(conn: &mut Conn) -> Result<BTreeSet<String>, String> {
    let info = conn.call(&[b"COMMAND"], Duration::from_secs(10)).map_err(|e| format!("COMMAND: {e:?}"))?;
    let mut out = BTreeSet::new();
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        if let Value::Array(items) = v {
            if let Some(n) = items.first() {
                out.insert(text(n).to_lowercase());
            }
            if let Some(Value::Array(subs)) = items.get(9) {
                for s in subs {
                    walk(s, out);
                }
            }
        }
    }
    if let Value::Array(items) = &info.value {
        for it in items {
            walk(it, &mut out);
        }
    }
    Ok(out)
}
