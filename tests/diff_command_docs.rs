//! COMMAND DOCS argument trees against redis-server 7.0: redis-cli prints its
//! `help` lines and typing hints from them, and tools read key arguments
//! from them. Summaries are our own words; everything else must match.

mod common;

use common::Diff;
use redis::Value;

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// A map as RESP2 sends it (a flat array of pairs) or as RESP3 does.
fn pairs(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Array(items) => items.chunks(2).map(|p| (text(&p[0]), p[1].clone())).collect(),
        Value::Map(items) => items.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn field(v: &Value, name: &str) -> Option<Value> {
    pairs(v).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Every command and subcommand's docs, by name.
fn all_docs(c: &mut redis::Connection) -> Vec<(String, Value)> {
    let docs = common::run_str(c, &["COMMAND", "DOCS"]).expect("COMMAND DOCS");
    let mut out = Vec::new();
    for (name, doc) in pairs(&docs) {
        if let Some(subs) = field(&doc, "subcommands") {
            out.extend(pairs(&subs));
        }
        out.push((name, doc));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The leaves of an argument tree in order, each with what a tool reads
/// from it: its name (or token), type, key spec, and the flags it has or
/// inherits from the groups around it (Redis nests some arguments in
/// one-member blocks, `pattern [pattern ...]` of PSUBSCRIBE for one).
fn leaves(args: &Value, inherited: &[String], out: &mut Vec<String>) {
    let Value::Array(args) = args else { panic!("arguments is not an array: {args:?}") };
    for arg in args {
        let kind = text(&field(arg, "type").expect("type"));
        let mut own: Vec<String> = inherited.to_vec();
        if let Some(Value::Array(f) | Value::Set(f)) = field(arg, "flags") {
            own.extend(f.iter().map(text));
        }
        own.sort();
        own.dedup();
        let flags = own.join(",");
        match field(arg, "arguments") {
            Some(inner) => leaves(&inner, &own, out),
            None => {
                let name = if kind == "pure-token" {
                    text(&field(arg, "token").expect("token"))
                } else {
                    text(&field(arg, "name").expect("name"))
                };
                let spec = field(arg, "key_spec_index").map(|v| text(&v)).unwrap_or_default();
                out.push(format!("{name}:{kind}:{spec}:{flags}"));
            }
        }
    }
}

/// Leaves only: group names and nesting differ where the printed form is
/// the same (`[COUNT count [ANY]]`).
fn leaf_line(doc: &Value) -> String {
    let mut out = Vec::new();
    if let Some(args) = field(doc, "arguments") {
        leaves(&args, &[], &mut out);
    }
    out.join(" ")
}

#[test]
fn argument_trees_match_redis() {
    let Some(mut d) = Diff::start(&[]) else { return };
    let ours = all_docs(&mut d.a);
    let theirs = all_docs(&mut d.b);
    let mut differences = Vec::new();
    let mut compared = 0;
    for (name, doc) in &theirs {
        let Some((_, mine)) = ours.iter().find(|(n, _)| n == name) else {
            differences.push(format!("{name}: missing"));
            continue;
        };
        compared += 1;
        let (want, got) = (leaf_line(doc), leaf_line(mine));
        if want != got {
            differences.push(format!("{name}:\n  redis-server {want}\n  moonshard    {got}"));
        }
        for key in ["since", "group"] {
            let (want, got) = (field(doc, key).map(|v| text(&v)), field(mine, key).map(|v| text(&v)));
            if want != got {
                differences.push(format!("{name}: {key} {want:?} against {got:?}"));
            }
        }
    }
    assert!(compared > 360, "only {compared} commands compared");
    assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
}

/// What people see: `redis-cli help @group` prints each command's syntax
/// line from COMMAND DOCS; all lines but the summaries are equal.
#[test]
fn redis_cli_help_prints_redis_syntax() {
    let Some(d) = Diff::start(&[]) else { return };
    if !common::has_program("redis-cli") {
        return;
    }
    let groups = [
        "generic",
        "string",
        "list",
        "set",
        "sorted-set",
        "hash",
        "pubsub",
        "transactions",
        "connection",
        "server",
        "scripting",
        "hyperloglog",
        "cluster",
        "geo",
        "stream",
        "bitmap",
    ];
    // CLIENT SETINFO (Redis 7.2) is ours only.
    let keep = |entry: &String| !entry.contains("CLIENT SETINFO");
    // redis-cli falls back to a table of its own when COMMAND DOCS fails it:
    // our summaries show that it read ours.
    let set = d.ours.cli(&["help", "SET"]).expect("redis-cli runs");
    assert!(set.contains("Stores a string value"), "redis-cli did not read our COMMAND DOCS: {set}");
    let mut lines = 0;
    for group in groups {
        let help = |p: &common::Proc| -> Vec<String> {
            let out = p.cli(&["help", &format!("@{group}")]).expect("redis-cli runs");
            // Entries are separated by blank lines; drop each summary.
            out.replace("\r\n", "\n")
                .split("\n\n")
                .map(|entry| entry.lines().filter(|l| !l.contains("summary:")).collect::<Vec<_>>().join("\n"))
                .filter(|e| !e.trim().is_empty())
                .filter(keep)
                .collect()
        };
        let (ours, theirs) = (help(&d.ours), help(&d.theirs));
        assert!(theirs.len() > 2, "redis-cli help @{group} printed {theirs:?}");
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "redis-cli help @{group} differs");
        }
        assert_eq!(ours.len(), theirs.len(), "redis-cli help @{group}: entry counts differ");
        lines += theirs.len();
    }
    assert!(lines > 300, "only {lines} help entries compared");
}
