//! COMMAND GETKEYS and GETKEYSANDFLAGS against redis-server 7.0, over command
//! lines of every key-spec shape (fixed, ranges, numkeys, keywords, movable
//! keys, variable flags), and their errors.

mod common;
mod raw_resp;

use raw_resp::{start_pair, Both};

const LINES: &[&str] = &[
    "get k",
    "set k v",
    "set k v get",
    "set k v nx px 100",
    "mset a 1 b 2 c 3",
    "mget a b c",
    "del a b c",
    "lmove a b left right",
    "blmove a b left right 0",
    "rpoplpush a b",
    "blpop a b c 0",
    "lmpop 2 a b left count 3",
    "blmpop 0 2 a b left",
    "zunionstore d 2 a b weights 1 2",
    "zinterstore d 1 a",
    "zrangestore d s 0 -1",
    "zmpop 1 z min",
    "sinterstore d a b",
    "smove a b m",
    "rename a b",
    "copy a b replace",
    "eval x 2 a b c",
    "evalsha 0000000000000000000000000000000000000000 1 a",
    "fcall f 2 a b",
    "xread count 2 streams s1 s2 0 0",
    "xreadgroup group g c streams s1 s2 > >",
    "xadd s * f v",
    "bitfield k get u8 0",
    "bitfield k set u8 0 1",
    "bitop and d a b",
    "pfmerge d a b",
    "pfcount a b",
    "sort k",
    "sort k by w_* get # store d",
    "sort_ro k",
    "georadius k 0 0 1 m store d",
    "geosearchstore d s frommember m byradius 1 m",
    "object encoding k",
    "xgroup create s g $",
    "xinfo stream s",
    "watch a b",
    "ssubscribe c1",
];

const BAD: &[&str] = &["get", "nosuchcommand k", "ping", "eval x 5 a", "set k", "object nosuch k", "mset a"];

#[test]
fn getkeys_and_flags_as_redis() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    for line in LINES.iter().chain(BAD) {
        for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
            let mut args = vec!["COMMAND", sub];
            args.extend(line.split_whitespace());
            b.check(&args);
        }
    }
}

/// Every command and subcommand moonshard declares that Redis 7.0 has
/// answers COMMAND INFO byte for byte as redis-server does (arity, flags,
/// legacy key positions, ACL categories, tips, key specs), except containers,
/// whose subcommand lists may still lack some of Redis's.
#[test]
fn command_info_equals_redis_for_every_declared_command() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    let list = b.c[0].call(&["COMMAND", "LIST"]);
    let names: Vec<String> = list
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
        .map(String::from)
        .collect();
    assert!(names.len() > 250, "{} commands", names.len());
    let mut compared = 0;
    for name in &names {
        let theirs = b.c[1].call(&["COMMAND", "INFO", name]);
        if theirs == "*1\r\n$-1\r\n" {
            continue; // newer than 7.0 (CLIENT SETINFO)
        }
        let ours = b.c[0].call(&["COMMAND", "INFO", name]);
        let container = names.iter().any(|n| n.starts_with(&format!("{name}|")));
        if container {
            continue;
        }
        assert_eq!(ours, theirs, "COMMAND INFO {name}");
        compared += 1;
    }
    assert!(compared > 250, "compared {compared}");
    // Unknown names answer a null bulk each (Redis's addReplyNull), among known ones.
    for args in [&["COMMAND", "INFO", "nosuch"][..], &["COMMAND", "INFO", "get", "", "client|nosuch", "set"]] {
        b.check(args);
    }
}
