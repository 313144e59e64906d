//! COMMAND and its subcommands, answered from the command table.

use crate::commands::registry::{self, flags, CommandSpec, Exec, Group, KeySpec};
use crate::commands::spec::{Begin, Find, KeySpecDoc};
use crate::commands::ConnCtx;
use crate::protocol::Reply;
use crate::util::{eq_ic, glob_match, parse_i64};
use bytes::Bytes;

/// ACL categories in Redis's bit order (the order COMMAND INFO lists them).
use crate::acl::index::CATEGORIES;

fn group_category(g: Group) -> Option<&'static str> {
    Some(match g {
        Group::Generic => "keyspace",
        Group::String => "string",
        Group::List => "list",
        Group::Set => "set",
        Group::SortedSet => "sortedset",
        Group::Hash => "hash",
        Group::Stream => "stream",
        Group::Bitmap => "bitmap",
        Group::Hyperloglog => "hyperloglog",
        Group::Geo => "geo",
        Group::Pubsub => "pubsub",
        Group::Transactions => "transaction",
        Group::Connection => "connection",
        Group::Scripting => "scripting",
        Group::Server | Group::Cluster => return None,
    })
}

/// ACL categories of a command, derived as Redis derives them: from its
/// flags, its group, and a short list of extra @dangerous commands.
pub fn categories(spec: &CommandSpec) -> Vec<&'static str> {
    let mut set: Vec<&str> = Vec::new();
    // Containers carry no flags and sit in no group category of their own.
    let container = matches!(spec.exec, Exec::Container);
    if !container {
        if let Some(c) = group_category(spec.group) {
            set.push(c);
        }
    }
    if spec.has(flags::WRITE) {
        set.push("write");
    }
    if spec.has(flags::READONLY) && spec.group != Group::Scripting {
        set.push("read");
    }
    if spec.has(flags::ADMIN) {
        set.push("admin");
        set.push("dangerous");
    }
    if spec.has(flags::PUBSUB) {
        set.push("pubsub");
    }
    set.push(if spec.has(flags::FAST) { "fast" } else { "slow" });
    if spec.has(flags::BLOCKING) {
        set.push("blocking");
    }
    set.extend_from_slice(spec.acl_extra);
    // Redis files COMMAND under the server group but in the @connection category.
    if spec.name == "command" || spec.name.starts_with("command|") {
        set.push("connection");
    }
    // An extra entry `-name` takes away a category the group implies (SORT
    // is a generic command outside @keyspace).
    let removed = |c: &str| spec.acl_extra.iter().any(|x| x.strip_prefix('-') == Some(c));
    CATEGORIES.iter().copied().filter(|c| set.contains(c) && !removed(c)).collect()
}

fn flag_names(spec: &CommandSpec) -> Vec<Reply> {
    let mut out: Vec<Reply> = flags::NAMES
        .iter()
        // Redis 7.0 keeps these two out of COMMAND's reply on purpose.
        .filter(|(bit, name)| spec.flags & bit != 0 && *name != "sentinel" && *name != "may_replicate")
        .map(|(_, name)| Reply::status(name))
        .collect();
    if spec.movable_keys() {
        // Redis lists movablekeys just before allow_busy.
        let pos = out.iter().position(|r| matches!(r, Reply::Status(s) if s == "allow_busy")).unwrap_or(out.len());
        out.insert(pos, Reply::status("movablekeys"));
    }
    out
}

fn key_spec_flags(spec: &CommandSpec) -> Reply {
    let names: &[&str] = if spec.has(flags::WRITE) { &["RW", "update"] } else { &["RO", "access"] };
    Reply::Set(names.iter().map(|n| Reply::status(n)).collect())
}

/// A key spec from the docs data, in Redis's field order.
fn documented_key_spec(k: &KeySpecDoc) -> Reply {
    let s = |t: &str| Reply::bulk_str(t);
    let map = |fields: &[(&str, Reply)]| Reply::Map(fields.iter().map(|(n, v)| (s(n), v.clone())).collect());
    let (btype, bspec) = match k.begin {
        Begin::Index(i) => ("index", map(&[("index", Reply::Int(i))])),
        Begin::Keyword(word, from) => ("keyword", map(&[("keyword", s(word)), ("startfrom", Reply::Int(from))])),
        Begin::Unknown => ("unknown", map(&[])),
    };
    let (ftype, fspec) = match k.find {
        Find::Range(last, step, limit) => (
            "range",
            map(&[("lastkey", Reply::Int(last)), ("keystep", Reply::Int(step)), ("limit", Reply::Int(limit))]),
        ),
        Find::Keynum(idx, first, step) => (
            "keynum",
            map(&[("keynumidx", Reply::Int(idx)), ("firstkey", Reply::Int(first)), ("keystep", Reply::Int(step))]),
        ),
        Find::Unknown => ("unknown", map(&[])),
    };
    let mut fields = Vec::with_capacity(4);
    if !k.notes.is_empty() {
        fields.push(("notes", s(k.notes)));
    }
    fields.push(("flags", Reply::Set(k.flags.iter().map(|f| Reply::status(f)).collect())));
    fields.push(("begin_search", map(&[("type", s(btype)), ("spec", bspec)])));
    fields.push(("find_keys", map(&[("type", s(ftype)), ("spec", fspec)])));
    map(&fields)
}

fn key_specs(spec: &CommandSpec) -> Reply {
    if !spec.key_docs.is_empty() {
        return Reply::Set(spec.key_docs.iter().map(documented_key_spec).collect());
    }
    let s = |t: &str| Reply::bulk_str(t);
    let begin = |index: i64| Reply::Map(vec![(s("index"), Reply::Int(index))]);
    let range = |first: i32, last: i32, step: i32| {
        let lastkey = if last < 0 { last } else { last - first };
        Reply::Map(vec![
            (s("lastkey"), Reply::Int(lastkey as i64)),
            (s("keystep"), Reply::Int(step as i64)),
            (s("limit"), Reply::Int(0)),
        ])
    };
    let one = |begin_spec: Reply, find_type: &str, find_spec: Reply| {
        Reply::Map(vec![
            (s("flags"), key_spec_flags(spec)),
            (s("begin_search"), Reply::Map(vec![(s("type"), s("index")), (s("spec"), begin_spec)])),
            (s("find_keys"), Reply::Map(vec![(s("type"), s(find_type)), (s("spec"), find_spec)])),
        ])
    };
    match spec.keys {
        KeySpec::None => Reply::Set(Vec::new()),
        KeySpec::Range { first, last, step } => {
            Reply::Set(vec![one(begin(first as i64), "range", range(first, last, step))])
        }
        KeySpec::Custom { legacy: (first, last, step), .. } if first > 0 => {
            Reply::Set(vec![one(begin(first as i64), "range", range(first, last, step))])
        }
        KeySpec::Custom { .. } => Reply::Set(Vec::new()),
        KeySpec::NumKeys { numkeys } => {
            let find = Reply::Map(vec![
                (s("keynumidx"), Reply::Int(0)),
                (s("firstkey"), Reply::Int(1)),
                (s("keystep"), Reply::Int(1)),
            ]);
            Reply::Set(vec![one(begin(numkeys as i64), "keynum", find)])
        }
    }
}

/// The subcommand entries; RESP3 shows a command without any as an empty set.
fn subcommands(spec: &CommandSpec) -> Reply {
    if spec.subcommands.is_empty() {
        return Reply::Set(Vec::new());
    }
    Reply::Array(spec.subcommands.iter().map(info_entry).collect())
}

/// One command's COMMAND INFO entry (Redis 7.0's ten fields).
pub fn info_entry(spec: &CommandSpec) -> Reply {
    let (first, last, step) = spec.legacy_keys();
    Reply::Array(vec![
        Reply::bulk_str(spec.name),
        Reply::Int(spec.arity as i64),
        Reply::Set(flag_names(spec)),
        Reply::Int(first as i64),
        Reply::Int(last as i64),
        Reply::Int(step as i64),
        Reply::Set(categories(spec).into_iter().map(|c| Reply::status(&format!("@{c}"))).collect()),
        Reply::Set(spec.tips.iter().map(|t| Reply::bulk_str(t)).collect()),
        key_specs(spec),
        subcommands(spec),
    ])
}

pub fn command(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Array(registry::top_level().map(info_entry).collect())
}

pub fn command_count(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    Reply::Int(registry::top_level().count() as i64)
}

fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    registry::lookup(name).map(|c| c.spec)
}

pub fn command_info(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    if args.len() == 2 {
        return Reply::Array(registry::top_level().map(info_entry).collect());
    }
    Reply::Array(args[2..].iter().map(|n| find(n).map(info_entry).unwrap_or(Reply::Nil)).collect())
}

fn docs_entry(spec: &CommandSpec) -> Reply {
    let s = |t: &str| Reply::bulk_str(t);
    let mut fields =
        vec![(s("summary"), s(spec.summary)), (s("since"), s(spec.since)), (s("group"), s(spec.group.name()))];
    // Every declared line parses (checked by the registry's tests).
    if let Ok(args) = crate::commands::syntax::parse(spec.syntax) {
        if !args.is_empty() {
            fields.push((s("arguments"), Reply::Array(args.iter().map(|a| a.reply()).collect())));
        }
    }
    if !spec.subcommands.is_empty() {
        let subs = spec.subcommands.iter().map(|sub| (s(sub.name), docs_entry(sub))).collect();
        fields.push((s("subcommands"), Reply::Map(subs)));
    }
    Reply::Map(fields)
}

pub fn command_docs(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let specs: Vec<&CommandSpec> = if args.len() == 2 {
        registry::top_level().collect()
    } else {
        args[2..].iter().filter_map(|n| find(n)).collect()
    };
    Reply::Map(specs.into_iter().map(|spec| (Reply::bulk_str(spec.name), docs_entry(spec))).collect())
}

pub fn command_list(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let names = registry::all().iter().copied();
    let filter: Box<dyn Fn(&CommandSpec) -> bool> = match args.len() {
        2 => Box::new(|_| true),
        5 if eq_ic(&args[2], "filterby") => {
            let value = args[4].clone();
            if eq_ic(&args[3], "module") {
                Box::new(|_| false)
            } else if eq_ic(&args[3], "aclcat") {
                let cat = String::from_utf8_lossy(&value).to_ascii_lowercase();
                Box::new(move |spec| categories(spec).contains(&cat.as_str()))
            } else if eq_ic(&args[3], "pattern") {
                Box::new(move |spec| glob_match(&value, spec.name.as_bytes(), true))
            } else {
                return Reply::syntax_error();
            }
        }
        _ => return Reply::syntax_error(),
    };
    Reply::Array(names.filter(|s| filter(s)).map(|s| Reply::bulk_str(s.name)).collect())
}

/// Resolves the command line of COMMAND GETKEYS to its table entry.
fn getkeys_target(line: &[Bytes]) -> Result<&'static CommandSpec, Reply> {
    let invalid = || Reply::err("Invalid command specified");
    let mut spec = find(&line[0]).ok_or_else(invalid)?;
    if matches!(spec.exec, Exec::Container) {
        let sub = line.get(1).ok_or_else(|| Reply::err(crate::protocol::errors::GETKEYS_ARITY))?;
        spec = registry::lookup_sub(spec, sub).ok_or_else(invalid)?.spec;
    }
    if matches!(spec.keys, KeySpec::None) || spec.keys_are_channels() {
        return Err(Reply::err("The command has no key arguments"));
    }
    if !spec.arity_ok(line.len()) {
        return Err(Reply::err(crate::protocol::errors::GETKEYS_ARITY));
    }
    Ok(spec)
}

pub fn command_getkeys(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    getkeys(ctx, args, false)
}

/// COMMAND GETKEYSANDFLAGS: each key with the flags of the key spec that
/// finds it (Redis's documented specs where declared, else the flags the
/// command's own flags imply).
pub fn command_getkeysandflags(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    getkeys(ctx, args, true)
}

/// The flags of the key at position `pos` of `line`, from the declared key specs.
pub fn key_flags(spec: &CommandSpec, line: &[Bytes], pos: usize) -> Vec<&'static str> {
    for doc in spec.key_docs {
        if doc_positions(doc, line).contains(&pos) {
            if doc.flags.contains(&"variable_flags") {
                return variable_flags(spec, line);
            }
            return doc.flags.to_vec();
        }
    }
    // A key only the command's own parser finds (SORT's STORE, the last
    // spec): the spec that says "unknown".
    if let Some(doc) =
        spec.key_docs.iter().rev().find(|d| matches!(d.begin, Begin::Unknown) || matches!(d.find, Find::Unknown))
    {
        return doc.flags.to_vec();
    }
    if spec.has(flags::WRITE) {
        vec!["RW", "update"]
    } else {
        vec!["RO", "access"]
    }
}

/// The flags of a key spec marked `variable_flags`: they depend on the
/// arguments, as Redis's per-command key functions decide them.
fn variable_flags(spec: &CommandSpec, line: &[Bytes]) -> Vec<&'static str> {
    match spec.name {
        // SET ... GET reads the old value; a plain SET only overwrites.
        "set" if line[3..].iter().any(|a| eq_ic(a, "get")) => vec!["RW", "access", "update"],
        "set" => vec!["OW", "update"],
        // BITFIELD with only GET operations reads.
        "bitfield" if line[2..].iter().all(|a| !["set", "incrby"].iter().any(|op| eq_ic(a, op))) => {
            vec!["RO", "access"]
        }
        _ => vec!["RW", "access", "update"],
    }
}

/// The argument positions a documented key spec finds in `line` (as Redis's
/// getKeysUsingKeySpecs walks them).
fn doc_positions(doc: &KeySpecDoc, line: &[Bytes]) -> Vec<usize> {
    let argc = line.len() as i64;
    let start = match doc.begin {
        Begin::Index(i) => i,
        Begin::Keyword(word, from) => {
            let (mut i, step, end) = if from >= 0 { (from, 1, argc) } else { (argc + from, -1, 0) };
            let mut found = None;
            while (step > 0 && i < end) || (step < 0 && i > end) {
                if line.get(i as usize).is_some_and(|a| eq_ic(a, word)) {
                    found = Some(i + 1);
                    break;
                }
                i += step;
            }
            match found {
                Some(s) => s,
                None => return Vec::new(),
            }
        }
        Begin::Unknown => return Vec::new(),
    };
    if start <= 0 || start >= argc {
        return Vec::new();
    }
    let (first, last, step) = match doc.find {
        Find::Range(lastkey, step, limit) => {
            let last = if lastkey >= 0 {
                start + lastkey
            } else if limit <= 1 {
                argc + lastkey
            } else {
                start + (argc - start) / limit + lastkey
            };
            (start, last, step.max(1))
        }
        Find::Keynum(idx, firstkey, step) => {
            let Some(n) = line.get((start + idx) as usize).and_then(|a| parse_i64(a)) else {
                return Vec::new();
            };
            let first = start + firstkey;
            (first, first + (n - 1) * step.max(1), step.max(1))
        }
        Find::Unknown => return Vec::new(),
    };
    (first..=last.min(argc - 1)).step_by(step as usize).map(|p| p as usize).collect()
}

fn getkeys(_ctx: &mut ConnCtx, args: &[Bytes], with_flags: bool) -> Reply {
    let line = &args[2..];
    let spec = match getkeys_target(line) {
        Ok(s) => s,
        Err(e) => return e,
    };
    if let KeySpec::NumKeys { numkeys } = spec.keys {
        let n = line.get(numkeys).and_then(|a| parse_i64(a));
        let fits = n.is_some_and(|n| n >= 0 && (numkeys as i64).saturating_add(n) < line.len() as i64);
        if !fits {
            // Redis answers an empty list where keys are optional (EVAL).
            if spec.has(flags::NO_MANDATORY_KEYS) {
                return Reply::Array(Vec::new());
            }
            return Reply::err(crate::protocol::errors::GETKEYS_ARGS);
        }
    }
    let positions = spec.key_positions(line);
    if positions.is_empty() && !spec.has(flags::NO_MANDATORY_KEYS) {
        return Reply::err(crate::protocol::errors::GETKEYS_ARGS);
    }
    if !with_flags {
        return Reply::Array(
            positions.into_iter().filter_map(|p| line.get(p)).map(|k| Reply::Bulk(k.clone())).collect(),
        );
    }
    Reply::Array(
        positions
            .into_iter()
            .filter_map(|p| line.get(p).map(|k| (p, k)))
            .map(|(p, k)| {
                let flags = key_flags(spec, line, p).into_iter().map(Reply::status).collect();
                Reply::Array(vec![Reply::Bulk(k.clone()), Reply::Set(flags)])
            })
            .collect(),
    )
}

pub fn command_help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("COMMAND", crate::commands::help::COMMAND)
}
