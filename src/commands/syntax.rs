//! Command syntax: the argument trees of `COMMAND DOCS`.
//!
//! Each command declares its arguments as one line, written the way
//! `redis-cli help` prints them (`key value [NX|XX] [GET] ...`), with a few
//! marks the printed form cannot carry:
//! - `name%t` gives an argument's type: `%k` key, `%i` integer, `%d` double,
//!   `%p` pattern, `%t` unix-time; no mark is a string. A digit after the type
//!   letter names the key spec the argument belongs to (`pattern%p1`); key
//!   arguments without one take the specs in order.
//! - `( ... )` groups without printing anything: a required choice
//!   `(LEFT|RIGHT)` or a required block `(STREAMS key%k [key ...] id [id ...])`.
//! - Lower-case words are named arguments; every other word is a token (`NX`,
//!   `*`, `=`, and `""` for the empty token).
//! - A token that opens a group or a choice's branch belongs to what follows it
//!   (`[EX seconds%i]` is one argument, `[LIMIT offset%i count%i]` a block).
//! - `[... ...]` repeats the arguments just before it, as printed
//!   (`key%k [key ...]`, `field value [field value ...]`, and with the token
//!   repeated `[GET pattern%p [GET pattern ...]]`).
//!
//! redis-cli builds its `help` lines and its typing hints from these trees, so
//! the printed form of every declaration is checked against redis-server's
//! (`tests/diff_command_docs.rs`); the lines are parsed when COMMAND DOCS asks.

use crate::protocol::Reply;

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

impl ArgType {
    pub fn name(self) -> &'static str {
        match self {
            ArgType::Key => "key",
            ArgType::String => "string",
            ArgType::Integer => "integer",
            ArgType::Double => "double",
            ArgType::Pattern => "pattern",
            ArgType::UnixTime => "unix-time",
            ArgType::PureToken => "pure-token",
            ArgType::OneOf => "oneof",
            ArgType::Block => "block",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: String,
    pub kind: ArgType,
    pub token: Option<String>,
    /// The key spec a key (or key pattern) argument belongs to.
    pub key_spec: Option<usize>,
    pub optional: bool,
    pub multiple: bool,
    pub multiple_token: bool,
    pub args: Vec<Arg>,
    /// Written as a lone token: it may still take what follows it.
    bare: bool,
}

impl Arg {
    fn group(kind: ArgType, token: Option<String>, args: Vec<Arg>) -> Arg {
        let name = match &token {
            Some(t) => t.to_ascii_lowercase(),
            None => args.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join("-"),
        };
        Arg {
            name,
            kind,
            token,
            key_spec: None,
            optional: false,
            multiple: false,
            multiple_token: false,
            args,
            bare: false,
        }
    }

    fn is_bare_token(&self) -> bool {
        self.bare && self.kind == ArgType::PureToken && !self.optional && !self.multiple
    }

    /// The argument as `redis-cli help` prints it.
    pub fn render(&self) -> String {
        let repeat = match self.kind {
            ArgType::OneOf => self.args.iter().map(Arg::render).collect::<Vec<_>>().join("|"),
            ArgType::Block => self.args.iter().map(Arg::render).collect::<Vec<_>>().join(" "),
            ArgType::PureToken => String::new(),
            _ => self.name.clone(),
        };
        let mut token = self.token.clone().unwrap_or_default();
        if !token.is_empty() && self.kind != ArgType::PureToken {
            token.push(' ');
        }
        let mut out = String::new();
        if self.optional {
            out.push('[');
        }
        out.push_str(&token);
        out.push_str(&repeat);
        if self.multiple {
            out.push_str(" [");
            if self.multiple_token {
                out.push_str(&token);
            }
            out.push_str(&repeat);
            out.push_str(" ...]");
        }
        if self.optional {
            out.push(']');
        }
        out
    }

    /// The `COMMAND DOCS` map of this argument, with Redis's field order.
    pub fn reply(&self) -> Reply {
        let s = Reply::bulk_str;
        let mut fields = vec![(s("name"), s(&self.name)), (s("type"), s(self.kind.name()))];
        if let Some(spec) = self.key_spec {
            fields.push((s("key_spec_index"), Reply::Int(spec as i64)));
        }
        if let Some(token) = &self.token {
            fields.push((s("token"), s(token)));
        }
        let flags: Vec<Reply> =
            [(self.optional, "optional"), (self.multiple, "multiple"), (self.multiple_token, "multiple_token")]
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, f)| Reply::status(f))
                .collect();
        if !flags.is_empty() {
            fields.push((s("flags"), Reply::Set(flags)));
        }
        if matches!(self.kind, ArgType::OneOf | ArgType::Block) {
            fields.push((s("arguments"), Reply::Array(self.args.iter().map(Arg::reply).collect())));
        }
        Reply::Map(fields)
    }
}

#[derive(Debug, PartialEq)]
enum Tok<'a> {
    /// `[` (true: optional) or `(`.
    Open(bool),
    Close,
    Bar,
    Word(&'a str),
    /// The text of a `[... ...]` repetition, without its ` ...`.
    Repeat(&'a str),
}

fn tokenize(line: &str) -> Result<Vec<Tok<'_>>, String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => i += 1,
            b'[' => {
                let mut depth = 0;
                let mut j = i;
                loop {
                    match b.get(j) {
                        Some(b'[') => depth += 1,
                        Some(b']') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return Err(format!("unbalanced '[' in {line:?}")),
                    }
                    j += 1;
                }
                match line[i + 1..j].strip_suffix(" ...") {
                    Some(repeated) => {
                        out.push(Tok::Repeat(repeated));
                        i = j + 1;
                    }
                    None => {
                        out.push(Tok::Open(true));
                        i += 1;
                    }
                }
            }
            b'(' => {
                out.push(Tok::Open(false));
                i += 1;
            }
            b']' | b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            b'|' => {
                out.push(Tok::Bar);
                i += 1;
            }
            _ => {
                let start = i;
                while i < b.len() && !b" []()|".contains(&b[i]) {
                    i += 1;
                }
                out.push(Tok::Word(&line[start..i]));
            }
        }
    }
    Ok(out)
}

fn word(w: &str) -> Result<Arg, String> {
    let (name, mark) = w.split_once('%').unwrap_or((w, ""));
    let is_name = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b":/_-".contains(&c));
    if !is_name {
        if !mark.is_empty() {
            return Err(format!("a token cannot have a type: {w:?}"));
        }
        let token = if name == "\"\"" { "" } else { name };
        let lower = token.to_ascii_lowercase();
        let name =
            if !lower.is_empty() && lower.bytes().all(|c| c.is_ascii_alphanumeric()) { lower } else { "token".into() };
        let mut arg = Arg::group(ArgType::PureToken, Some(token.to_string()), Vec::new());
        arg.name = name;
        arg.bare = true;
        return Ok(arg);
    }
    let mut chars = mark.chars();
    let kind = match chars.next() {
        None | Some('s') => ArgType::String,
        Some('k') => ArgType::Key,
        Some('i') => ArgType::Integer,
        Some('d') => ArgType::Double,
        Some('p') => ArgType::Pattern,
        Some('t') => ArgType::UnixTime,
        Some(other) => return Err(format!("unknown type mark {other:?} in {w:?}")),
    };
    let rest = chars.as_str();
    let key_spec = if rest.is_empty() {
        None
    } else {
        Some(rest.parse::<usize>().map_err(|_| format!("bad key spec index in {w:?}"))?)
    };
    let mut arg = Arg::group(kind, None, Vec::new());
    arg.name = name.to_string();
    arg.key_spec = key_spec;
    Ok(arg)
}

/// `token` followed by `rest`: one argument taking the token, or a block.
fn with_token(token: Option<String>, mut rest: Vec<Arg>) -> Arg {
    if rest.len() == 1 && rest[0].token.is_none() && !rest[0].optional {
        let mut one = rest.remove(0);
        one.token = token;
        one.bare = false;
        return one;
    }
    Arg::group(ArgType::Block, token, rest)
}

/// One branch of a group: a lone argument, or a block (taking a leading token).
fn branch(mut items: Vec<Arg>, top: bool) -> Vec<Arg> {
    if top {
        return items;
    }
    if items.len() > 1 && items[0].is_bare_token() && !items[1..].iter().all(Arg::is_bare_token) {
        let token = items.remove(0).token;
        return vec![with_token(token, items)];
    }
    if items.len() == 1 {
        return items;
    }
    vec![Arg::group(ArgType::Block, None, items)]
}

/// Marks the items a repetition repeats, folding them into one argument.
fn repeat(items: &mut Vec<Arg>, repeated: &str) -> Result<(), String> {
    let count = (1..=items.len())
        .find(|&k| items[items.len() - k..].iter().map(Arg::render).collect::<Vec<_>>().join(" ") == repeated)
        .ok_or_else(|| format!("[{repeated} ...] repeats nothing before it"))?;
    let start = items.len() - count;
    if count == 1 {
        items[start].multiple = true;
        return Ok(());
    }
    let mut group: Vec<Arg> = items.drain(start..).collect();
    let mut folded = if group[0].is_bare_token() {
        // The token is repeated too: `GET pattern [GET pattern ...]`.
        let token = group.remove(0).token;
        let mut folded = with_token(token, group);
        folded.multiple_token = true;
        folded
    } else {
        Arg::group(ArgType::Block, None, group)
    };
    folded.multiple = true;
    items.push(folded);
    Ok(())
}

fn sequence(toks: &[Tok], i: &mut usize, top: bool) -> Result<Vec<Arg>, String> {
    let mut branches: Vec<Vec<Arg>> = Vec::new();
    let mut items: Vec<Arg> = Vec::new();
    while let Some(tok) = toks.get(*i) {
        match tok {
            Tok::Close => break,
            Tok::Bar => {
                branches.push(std::mem::take(&mut items));
                *i += 1;
            }
            Tok::Open(optional) => {
                let optional = *optional;
                *i += 1;
                let mut inner = sequence(toks, i, false)?;
                if toks.get(*i) != Some(&Tok::Close) || inner.len() != 1 {
                    return Err("unbalanced group".into());
                }
                *i += 1;
                let mut arg = inner.remove(0);
                if optional {
                    arg.optional = true;
                    arg.bare = false;
                }
                items.push(arg);
            }
            Tok::Repeat(text) => {
                repeat(&mut items, text)?;
                *i += 1;
            }
            Tok::Word(w) => {
                items.push(word(w)?);
                *i += 1;
            }
        }
    }
    branches.push(items);
    if !top && branches.iter().any(Vec::is_empty) {
        return Err("an empty group or branch".into());
    }
    if branches.len() == 1 {
        return Ok(branch(branches.remove(0), top));
    }
    if top {
        return Err("a choice at the top needs ( )".into());
    }
    let choices = branches.into_iter().flat_map(|b| branch(b, false)).collect();
    Ok(vec![Arg::group(ArgType::OneOf, None, choices)])
}

/// Parses a declared syntax line into its argument trees.
pub fn parse(line: &str) -> Result<Vec<Arg>, String> {
    let toks = tokenize(line)?;
    let mut i = 0;
    let mut args = sequence(&toks, &mut i, true)?;
    if i != toks.len() {
        return Err(format!("unbalanced ')' or ']' in {line:?}"));
    }
    number_key_specs(&mut args, &mut 0);
    Ok(args)
}

/// Key arguments without an explicit spec take the specs in order.
fn number_key_specs(args: &mut [Arg], next: &mut usize) {
    for arg in args {
        match (arg.kind, arg.key_spec) {
            (_, Some(spec)) => *next = spec + 1,
            (ArgType::Key, None) => {
                arg.key_spec = Some(*next);
                *next += 1;
            }
            _ => {}
        }
        number_key_specs(&mut arg.args, next);
    }
}

/// The whole line as `redis-cli help` prints it.
pub fn render(args: &[Arg]) -> String {
    args.iter().map(Arg::render).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(line: &str) -> String {
        render(&parse(line).unwrap_or_else(|e| panic!("{line}: {e}")))
    }

    #[test]
    fn prints_as_redis_cli_does() {
        assert_eq!(
            round_trip("key%k value [NX|XX] [GET] [EX seconds%i|PX milliseconds%i|KEEPTTL]"),
            "key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]"
        );
        assert_eq!(
            round_trip("(LEFT|RIGHT) (STREAMS key%k [key ...] id [id ...])"),
            "LEFT|RIGHT STREAMS key [key ...] id [id ...]"
        );
        assert_eq!(round_trip("[GET pattern%p [GET pattern ...]]"), "[GET pattern [GET pattern ...]]");
        assert_eq!(round_trip("key%k (host port%i|NO ONE) [\"\"]"), "key host port|NO ONE []");
    }

    #[test]
    fn builds_redis_argument_trees() {
        let args =
            parse("key%k [LIMIT offset%i count%i] [GET pattern%p1 [GET pattern ...]] field value [field value ...]")
                .unwrap();
        assert_eq!(args.len(), 4);
        assert_eq!((args[0].kind, args[0].key_spec), (ArgType::Key, Some(0)));
        let limit = &args[1];
        assert_eq!((limit.kind, limit.token.as_deref(), limit.optional), (ArgType::Block, Some("LIMIT"), true));
        assert_eq!(limit.args.iter().map(|a| a.kind).collect::<Vec<_>>(), [ArgType::Integer, ArgType::Integer]);
        let get = &args[2];
        assert_eq!((get.kind, get.key_spec, get.multiple, get.multiple_token), (ArgType::Pattern, Some(1), true, true));
        let pairs = &args[3];
        assert_eq!(
            (pairs.kind, pairs.multiple, pairs.multiple_token, pairs.args.len()),
            (ArgType::Block, true, false, 2)
        );
        // A token that opens a branch takes what follows; one that does not stands alone.
        let set = parse("[EX seconds%i|KEEPTTL]").unwrap();
        assert_eq!(set[0].args[0].token.as_deref(), Some("EX"));
        assert_eq!(set[0].args[1].kind, ArgType::PureToken);
        // Keys without an index take the specs in order after an explicit one.
        let keys = parse("a%k b%k0 c%k").unwrap();
        assert_eq!(keys.iter().map(|a| a.key_spec).collect::<Vec<_>>(), [Some(0), Some(0), Some(1)]);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in ["[key", "key]", "a|b", "key [other ...]", "NX%i", "x%q", "(a|)"] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }
}
