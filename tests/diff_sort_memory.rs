//! SORT / SORT_RO, MEMORY, OBJECT FREQ|IDLETIME and LOLWUT against a real
//! redis-server 7.0, byte for byte where Redis's reply is defined:
//! randomized SORT over lists, sets and sorted sets of numbers and strings
//! with every option (BY and GET patterns, LIMIT at its edges, ASC|DESC,
//! ALPHA, STORE with the stored list read back), the errors and their
//! order, keyspace events and statistics, scripts and transactions; then
//! moonshard's own rules (the cluster refusal of BY/GET patterns that may
//! reach other slots, STORE across slots) and MEMORY's figures.
//!
//! Every key shares the hash tag `{s}`, so the BY/GET patterns are pinned to
//! the sorted keys' slot and moonshard accepts them, as Redis Cluster does.

mod common;
mod raw_resp;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use raw_resp::{start_pair, Both, Raw};
use std::time::Duration;

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// The elements of a flat array reply (RESP2), each as its raw text.
fn elements(reply: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = reply.split_once("\r\n").map_or("", |(_, r)| r);
    while !rest.is_empty() {
        let (head, tail) = rest.split_once("\r\n").unwrap_or((rest, ""));
        if let Some(n) = head.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
            let body = &tail.as_bytes()[..n];
            out.push(format!("{head}:{}", String::from_utf8_lossy(body)));
            rest = std::str::from_utf8(&tail.as_bytes()[n + 2..]).unwrap_or("");
        } else {
            out.push(head.to_string());
            rest = tail;
        }
    }
    out
}

// ------------------------------------------------------------------ data

/// Numbers as SORT reads them (strtod forms included) and strings.
const NUMS: &[&str] =
    &["1", "2", "-3", "10", "0", "3.5", "-0.5", "1e3", "007", "+4", " 5", "0x1A", "inf", "-inf", "1e-2", "12", "2"];
const BAD_NUMS: &[&str] = &["abc", "1e400", "nan", "5 ", "1e-320", "0x", ""];
const STRS: &[&str] = &[
    "apple",
    "Banana",
    "cherry",
    "a b",
    "a-b",
    "ab",
    "é",
    "z",
    "A",
    "a",
    "10",
    "9",
    "ÿ",
    "apple pie",
    "",
    "a\0b",
    "a\0c",
];
/// Set members: distinct, no NUL (a set's order in Redis comes from its hash
/// table; only a total order makes the sorted reply defined).
const SET_STRS: &[&str] = &["apple", "Banana", "cherry", "a b", "a-b", "ab", "é", "z", "A", "a", "10", "9", "ÿ"];
const INTS: &[&str] = &["5", "-2", "17", "0", "3", "100", "-40", "8", "1"];

/// Every element that appears anywhere, for the weight keys.
fn universe() -> Vec<&'static str> {
    let mut all: Vec<&str> = NUMS.iter().chain(BAD_NUMS).chain(STRS).chain(INTS).copied().collect();
    all.sort();
    all.dedup();
    all
}

/// Fills both servers: weights `{s}u_*` (present and distinct for every
/// element), `{s}w_*` (sparse, with ties, sometimes not a number) and
/// hashes `{s}h_*` (field `f` like w, field `g` sparse).
fn weights(b: &mut Both, rng: &mut StdRng) {
    for (i, e) in universe().iter().enumerate() {
        b.check(&["SET", &format!("{{s}}u_{e}"), &format!("{}", 1000 - i * 7)]);
        if rng.gen_bool(0.75) {
            let w = if rng.gen_bool(0.05) { "x".to_string() } else { rng.gen_range(-3..6).to_string() };
            b.check(&["SET", &format!("{{s}}w_{e}"), &w]);
        }
        if rng.gen_bool(0.7) {
            let f = rng.gen_range(-3..6).to_string();
            b.check(&["HSET", &format!("{{s}}h_{e}"), "f", &f]);
            if rng.gen_bool(0.5) {
                b.check(&["HSET", &format!("{{s}}h_{e}"), "g", *pick(rng, STRS)]);
            }
        }
    }
    // A weight key of another type reads as missing.
    b.check(&["RPUSH", "{s}w_apple", "x"]);
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    List,
    IntSet,
    HashSet,
    ZSet,
}

/// A fresh source value at `{s}src`.
fn source(b: &mut Both, rng: &mut StdRng) -> Kind {
    b.check(&["DEL", "{s}src"]);
    let kind = *pick(rng, &[Kind::List, Kind::List, Kind::IntSet, Kind::HashSet, Kind::ZSet]);
    let n = *pick(rng, &[0usize, 1, 2, 5, 8, 12, 30, 60]);
    match kind {
        Kind::List => {
            let pool: Vec<&str> = match rng.gen_range(0..4) {
                0 => STRS.to_vec(),
                1 => NUMS.iter().chain(BAD_NUMS.iter().take(1)).copied().collect(),
                2 => NUMS.to_vec(),
                _ => NUMS.iter().chain(STRS).copied().collect(),
            };
            let mut args = vec!["RPUSH", "{s}src"];
            for _ in 0..n {
                args.push(*pick(rng, &pool));
            }
            if n > 0 {
                b.check(&args);
            }
        }
        Kind::IntSet | Kind::HashSet => {
            let pool: &[&str] = if kind == Kind::IntSet { INTS } else { SET_STRS };
            let mut args = vec!["SADD", "{s}src"];
            for _ in 0..n.min(pool.len()) {
                args.push(*pick(rng, pool));
            }
            if kind == Kind::HashSet && rng.gen_bool(0.3) {
                args.push("x"); // a non-number among numbers
            }
            if args.len() > 2 {
                b.check(&args);
            }
        }
        Kind::ZSet => {
            let pool: &[&str] = if rng.gen_bool(0.5) { SET_STRS } else { INTS };
            let mut args = vec!["ZADD".to_string(), "{s}src".to_string()];
            for _ in 0..n.min(pool.len()) {
                args.push(rng.gen_range(-2..4).to_string());
                args.push(pick(rng, pool).to_string());
            }
            if args.len() > 2 {
                let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
                b.check(&a);
            }
        }
    }
    kind
}

fn limit_value(rng: &mut StdRng, len: i64) -> String {
    let v: i64 = match rng.gen_range(0..12) {
        0 => i64::MAX,
        1 => i64::MIN,
        2 => -1,
        3 => 0,
        4 => len,
        5 => len - 1,
        6 => len + 1,
        7 => -5,
        _ => rng.gen_range(0..=len.max(1)),
    };
    v.to_string()
}

/// A random SORT or SORT_RO command over `{s}src`, and how to compare its
/// replies: `Some(true)` byte for byte, `Some(false)` as a multiset, `None`
/// by length only (a window over a hash table's order).
fn sort_command(rng: &mut StdRng, kind: Kind, len: i64) -> (Vec<String>, Option<bool>) {
    let ro = rng.gen_bool(0.2);
    let mut args: Vec<String> = vec![if ro { "SORT_RO" } else { "SORT" }.into(), "{s}src".into()];
    let alpha = rng.gen_bool(0.5);
    let mut by = *pick(rng, &["", "", "nosort", "{s}u_*", "{s}w_*", "{s}h_*->f", "{s}h_*->g", "{s}nope_*"]);
    if kind != Kind::List && alpha && !matches!(by, "" | "nosort" | "{s}u_*") {
        // Equal or missing ALPHA weights leave ties in hash-table order.
        by = "{s}u_*";
    }
    let store = !ro && rng.gen_bool(0.3);
    let limit = rng.gen_bool(0.5);
    let mut opts: Vec<Vec<String>> = Vec::new();
    if !by.is_empty() {
        opts.push(vec!["BY".into(), by.into()]);
    }
    if alpha {
        opts.push(vec![pick(rng, &["ALPHA", "alpha"]).to_string()]);
    }
    match rng.gen_range(0..3) {
        0 => opts.push(vec!["DESC".into()]),
        1 => opts.push(vec!["ASC".into()]),
        _ => {}
    }
    if limit {
        opts.push(vec!["LIMIT".into(), limit_value(rng, len), limit_value(rng, len)]);
    }
    for _ in 0..rng.gen_range(0..3) {
        let p = *pick(rng, &["#", "{s}u_*", "{s}w_*", "{s}h_*->f", "{s}h_*->g", "{s}nope_*", "{s}const", "{s}h_*->"]);
        opts.push(vec!["GET".into(), p.into()]);
    }
    if store {
        opts.push(vec!["STORE".into(), "{s}dst".into()]);
    }
    // Options may come in any order.
    for i in (1..opts.len()).rev() {
        let j = rng.gen_range(0..=i);
        opts.swap(i, j);
    }
    args.extend(opts.into_iter().flatten());
    let native_hash_order = kind == Kind::HashSet && by == "nosort" && !store;
    let compare = if !native_hash_order {
        Some(true)
    } else if limit {
        None
    } else {
        Some(false)
    };
    (args, compare)
}

#[test]
fn random_sorts_match_redis() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    let mut rng = StdRng::seed_from_u64(0x50B7);
    weights(&mut b, &mut rng);
    let mut tally = [0usize; 4];
    for round in 0..120 {
        let kind = source(&mut b, &mut rng);
        let card = match kind {
            Kind::List => "LLEN",
            Kind::IntSet | Kind::HashSet => "SCARD",
            Kind::ZSet => "ZCARD",
        };
        let len = int_reply(&b.check(&[card, "{s}src"]));
        for _ in 0..12 {
            let (args, compare) = sort_command(&mut rng, kind, len);
            let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            let ours = b.c[0].call(&a);
            let theirs = b.c[1].call(&a);
            match compare {
                Some(true) => assert_eq!(ours, theirs, "round {round}: {kind:?} {a:?}"),
                Some(false) => {
                    let (mut x, mut y) = (elements(&ours), elements(&theirs));
                    x.sort();
                    y.sort();
                    assert_eq!(x, y, "round {round}: {kind:?} {a:?}");
                }
                None => assert_eq!(elements(&ours).len(), elements(&theirs).len(), "{kind:?} {a:?}"),
            }
            tally[if theirs.starts_with('-') {
                0
            } else if theirs.starts_with(':') {
                1
            } else if theirs == "*0\r\n" {
                2
            } else {
                3
            }] += 1;
            if a.contains(&"STORE") {
                b.check(&["LRANGE", "{s}dst", "0", "-1"]);
                b.check(&["TYPE", "{s}dst"]);
            }
        }
        b.check(&["OBJECT", "ENCODING", "{s}src"]);
    }
    // The sample exercised errors, stores, empty and non-empty replies.
    assert!(tally.iter().all(|&n| n > 40), "too narrow a sample: {tally:?}");
}

#[test]
fn sort_cases_match_redis() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    b.lines(&[
        "RPUSH {s}l 3 1 2",
        "SORT {s}l",
        "SORT {s}l DESC",
        "SORT {s}l LIMIT 1 1",
        "SORT {s}l LIMIT 0 0",
        "SORT {s}l LIMIT 5 1",
        "SORT {s}l LIMIT -5 2",
        "SORT {s}l LIMIT 1 -7",
        "SORT {s}l limit 1",
        "SORT {s}l LIMIT a 1",
        "SORT {s}l LIMIT 1 b",
        "SORT {s}l LIMIT 1 99999999999999999999",
        "SORT {s}l BY",
        "SORT {s}l GET",
        "SORT {s}l STORE",
        "SORT {s}l FOO",
        "SORT {s}l ASC DESC ASC",
        "SORT_RO {s}l STORE {s}d",
        "SORT_RO {s}l BY nosort",
        "SORT {s}missing",
        "SORT {s}missing STORE {s}d",
        "EXISTS {s}d",
        "SET {s}str x",
        "SORT {s}str",
        "SORT {s}str LIMIT x 1",
        "SORT {s}str FOO",
        "HSET {s}hash a 1",
        "SORT {s}hash",
        "SORT {s}l BY nosort BY {s}w_*",
        "SORT {s}l BY {s}w_* BY nosort",
        "SORT {s}l GET # GET #",
        "SORT {s}l STORE {s}l",
        "LRANGE {s}l 0 -1",
        "SORT {s}l BY {s}w_*->",
        "SORT {s}l STORE {s}d STORE {s}e",
        "EXISTS {s}d {s}e",
        "SORT {s}l alpha LIMIT 0 2 STORE {s}str",
        "TYPE {s}str",
        "SORT {s}l LIMIT 0 0 STORE {s}str",
        "EXISTS {s}str",
        "SADD {s}set 3 1 2",
        "SORT {s}set BY nosort",
        "SORT {s}set BY nosort DESC LIMIT 1 2",
        "SORT {s}set BY nosort STORE {s}d",
        "LRANGE {s}d 0 -1",
        "SADD {s}set x",
        "SORT {s}set BY nosort STORE {s}d",
        "LRANGE {s}d 0 -1",
        "ZADD {s}z 1 a 2 b 3 c 3 d",
        "OBJECT ENCODING {s}z",
        "SORT_RO {s}z BY nosort LIMIT 1 2",
        "OBJECT ENCODING {s}z",
        "SORT {s}z BY nosort DESC LIMIT 1 2",
        "SORT {s}z BY nosort DESC LIMIT 3 5",
        "SORT {s}z BY nosort DESC LIMIT 4 5",
        "SORT {s}z ALPHA DESC",
        "SORT {s}z",
    ]);
    // Every strtod form: numbers, blanks, hexadecimal, infinities, ranges.
    for v in [
        "12",
        " 12",
        "12 ",
        "",
        " ",
        "+",
        "-0",
        "0x1A",
        "0X1p3",
        "0x",
        "0x.8",
        "0x1p-1074",
        "0x1p1024",
        "1e308",
        "1.8e308",
        "1e-310",
        "2.2250738585072014e-308",
        "inf",
        "-Infinity",
        "infinit",
        "nan",
        "1.",
        ".5",
        ".",
        "1e",
        "1e+",
        "\t7",
        "7\n",
        "1_0",
        "0b1",
    ] {
        b.check(&["DEL", "{s}n"]);
        b.check(&["RPUSH", "{s}n", v, "3"]);
        // Redis 7.0 reads errno after strtod without clearing it first, so
        // an out-of-range value would also fail the values after it;
        // INCRBYFLOAT clears errno in Redis (moonshard has no such state).
        b.check(&["INCRBYFLOAT", "{s}errno", "0"]);
        b.check(&["SORT", "{s}n"]);
        b.check(&["SET", "{s}wt_3", v]);
        b.check(&["INCRBYFLOAT", "{s}errno", "0"]);
        b.check(&["SORT", "{s}n", "BY", "{s}wt_*"]);
    }
    // ALPHA compares up to a NUL (strcoll) without STORE, whole strings with it.
    b.check(&["DEL", "{s}n"]);
    b.check(&["RPUSH", "{s}n", "a\0c", "b", "a\0b", "a", "\0z"]);
    b.check(&["SORT", "{s}n", "ALPHA"]);
    b.check(&["SORT", "{s}n", "ALPHA", "DESC"]);
    b.check(&["SORT", "{s}n", "ALPHA", "STORE", "{s}d"]);
    b.check(&["LRANGE", "{s}d", "0", "-1"]);
    // Equal ALPHA weights: full sorts keep list order, LIMIT runs the partial
    // quicksort whose tie order Redis shows.
    b.check(&["DEL", "{s}n"]);
    let many: Vec<String> = (0..90).map(|i| format!("e{:02}", (i * 37) % 90)).collect();
    let mut args = vec!["RPUSH", "{s}n"];
    args.extend(many.iter().map(|s| s.as_str()));
    b.check(&args);
    for (i, e) in many.iter().enumerate() {
        if i % 3 != 0 {
            b.check(&["SET", &format!("{{s}}t_{e}"), ["p", "q", "r"][i % 3 - 1 + (i / 7) % 2]]);
        }
    }
    for lim in [["0", "10"], ["5", "20"], ["40", "7"], ["80", "30"], ["0", "-1"], ["1", "88"]] {
        for order in ["ASC", "DESC"] {
            b.check(&["SORT", "{s}n", "BY", "{s}t_*", "ALPHA", order, "LIMIT", lim[0], lim[1]]);
            b.check(&["SORT", "{s}n", "BY", "{s}t_*", "ALPHA", order, "LIMIT", lim[0], lim[1], "STORE", "{s}d"]);
            b.check(&["LRANGE", "{s}d", "0", "-1"]);
            b.check(&["SORT", "{s}n", "BY", "{s}t_*", order, "LIMIT", lim[0], lim[1], "GET", "{s}t_*", "GET", "#"]);
        }
    }
}

#[test]
fn sort_in_scripts_transactions_resp3_and_events() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    b.lines(&["SADD {s}set c a b 10 2", "RPUSH {s}l 3 1 2", "SET {s}w_1 x", "HSET {s}h_2 f v"]);
    // A set in its native order is sorted ALPHA inside a script.
    b.check(&["EVAL", "return redis.call('sort', KEYS[1], 'by', 'nosort')", "1", "{s}set"]);
    b.check(&[
        "EVAL",
        "return redis.call('sort_ro', KEYS[1], 'by', 'nosort', 'desc', 'limit', '1', '2')",
        "1",
        "{s}set",
    ]);
    b.check(&["EVAL", "return redis.call('sort', KEYS[1], 'get', '#', 'get', '{s}h_*->f')", "1", "{s}l"]);
    b.check(&["EVAL", "return redis.pcall('sort', KEYS[1], 'by', '{s}w_*')", "1", "{s}l"]);
    b.check(&["EVAL", "return redis.call('sort', KEYS[1], 'store', KEYS[2])", "2", "{s}l", "{s}d"]);
    b.check(&["EVAL", "return redis.call('sort_ro', KEYS[1], 'store', KEYS[2])", "2", "{s}l", "{s}d"]);
    b.line_n("MULTI", 1);
    b.line("SORT {s}l DESC STORE {s}d");
    b.line("SORT {s}l GET {s}h_*->f GET #");
    b.line("SORT {s}l LIMIT x y");
    b.line("EXEC");
    // RESP3: nulls for missing GET values.
    b.unchecked(&["HELLO", "3"]);
    b.line("SORT {s}l GET {s}h_*->f GET #");
    b.unchecked(&["HELLO", "2"]);
    // Keyspace hits and misses of the BY/GET lookups.
    b.line("CONFIG RESETSTAT");
    b.line("SORT {s}l BY {s}nope_* GET {s}h_*->f GET {s}w_*");
    let hits = |r: &mut Raw| {
        let info = r.call(&["INFO", "stats"]);
        info.lines().filter(|l| l.starts_with("keyspace_")).map(str::to_string).collect::<Vec<_>>()
    };
    let (ours, theirs) = (hits(&mut b.c[0]), hits(&mut b.c[1]));
    assert_eq!(ours, theirs);
    // STORE's events: sortstore for a list written, del for an emptied destination.
    b.check(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut subs = [Raw::connect(pair.ports[0]), Raw::connect(pair.ports[1])];
    for s in &mut subs {
        s.call(&["PSUBSCRIBE", "__key*__:*"]);
    }
    b.lines(&[
        "SORT {s}l STORE {s}d",
        "SORT {s}missing STORE {s}d",
        "SORT {s}missing STORE {s}d",
        "SORT {s}l LIMIT 0 1 STORE {s}d",
    ]);
    let drain = |s: &mut Raw| {
        s.set_timeout(Duration::from_millis(300));
        std::iter::from_fn(|| Some(s.reply()).filter(|m| !m.is_empty())).collect::<Vec<_>>()
    };
    let (ours, theirs) = (drain(&mut subs[0]), drain(&mut subs[1]));
    assert_eq!(ours, theirs);
    assert_eq!(theirs.iter().filter(|m| m.contains("sortstore")).count(), 4, "{theirs:?}");
    assert_eq!(theirs.iter().filter(|m| m.contains("\r\ndel\r\n")).count(), 1, "{theirs:?}");
}

#[test]
fn sort_declarations_match_redis() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    b.lines(&[
        "COMMAND INFO sort sort_ro",
        "COMMAND GETKEYS SORT k",
        "COMMAND GETKEYS SORT k STORE d",
        "COMMAND GETKEYS SORT k BY w_* LIMIT 0 1 GET # STORE d ALPHA",
        "COMMAND GETKEYS SORT k STORE d STORE e",
        "COMMAND GETKEYS SORT k get store store d",
        "COMMAND GETKEYS SORT_RO k BY w GET #",
    ]);
    // Redis lists commands in hash-table order: compare as sets.
    for filter in [["ACLCAT", "dangerous"], ["ACLCAT", "list"], ["PATTERN", "sort*"]] {
        let [ours, theirs] = [0, 1].map(|i| b.c[i].call(&["COMMAND", "LIST", "FILTERBY", filter[0], filter[1]]));
        for name in ["sort", "sort_ro"] {
            let entry = format!("${}\r\n{name}\r\n", name.len());
            assert_eq!(ours.contains(&entry), theirs.contains(&entry), "{name} in {filter:?}");
        }
    }
}

/// moonshard is a cluster of slots: BY/GET patterns that may form keys in
/// another slot are refused with Redis Cluster's errors (as sort.c words
/// them since Redis 7.4, which accepts patterns pinned to the key's slot by
/// a hash tag), and STORE must share the slot (CROSSSLOT, as everywhere).
#[test]
fn cluster_rules() {
    let ours = common::moonshard(&["--shards", "4"]);
    let mut c = Raw::connect(ours.port);
    let by =
        "-ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.\r\n";
    let get =
        "-ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.\r\n";
    c.call(&["RPUSH", "{s}l", "2", "1"]);
    c.call(&["SET", "{s}w_1", "9"]);
    c.call(&["SET", "{s}w_2", "8"]);
    for p in ["w_*", "{t}w_*", "*{s}", "{s*}", "{}{s}*", "w_?{s}*", "w_\\{s}*", "[s]*", "{s*"] {
        assert_eq!(c.call(&["SORT", "{s}l", "BY", p]), by, "BY {p}");
        assert_eq!(c.call(&["SORT_RO", "{s}l", "GET", p]), get, "GET {p}");
    }
    // Constant GET patterns name one key: refused unless in the slot.
    assert_eq!(c.call(&["SORT", "{s}l", "GET", "other"]), get);
    assert_eq!(c.call(&["SORT", "{s}l", "GET", "{s}const"]), "*2\r\n$-1\r\n$-1\r\n");
    // Checked while parsing, before the key's type and before later options.
    c.call(&["SET", "{s}str", "x"]);
    assert_eq!(c.call(&["SORT", "{s}str", "GET", "w_*", "LIMIT", "x", "y"]), get);
    assert_eq!(
        c.call(&["SORT", "{s}l", "LIMIT", "x", "y", "GET", "w_*"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    // Allowed: '#', constant BY (no sorting), and patterns pinned to the slot.
    assert_eq!(c.call(&["SORT", "{s}l", "BY", "nosort", "GET", "#"]), "*2\r\n$1\r\n2\r\n$1\r\n1\r\n");
    assert_eq!(c.call(&["SORT", "{s}l", "BY", "elsewhere"]), "*2\r\n$1\r\n2\r\n$1\r\n1\r\n");
    assert_eq!(c.call(&["SORT", "{s}l", "BY", "{s}w_*", "GET", "{s}w_*"]), "*2\r\n$1\r\n8\r\n$1\r\n9\r\n");
    assert_eq!(c.call(&["SORT", "{s}l", "BY", "{s}w_*->f"]), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(
        c.call(&["SORT", "{s}l", "STORE", "{t}d"]),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    // A STORE hidden from key extraction behind an option named like one
    // (Redis's key extraction takes the first destination here, SORT the last).
    c.call(&["RPUSH", "{get}l", "b", "a"]);
    assert_eq!(
        c.call(&["SORT", "{get}l", "ALPHA", "STORE", "get", "STORE", "{t}x"]),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(c.call(&["SORT", "{get}l", "ALPHA", "STORE", "get", "STORE", "{get}x"]), ":2\r\n");
    assert_eq!(c.call(&["LRANGE", "{get}x", "0", "-1"]), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(c.call(&["SORT", "{s}l", "STORE", "{s}d"]), ":2\r\n");
    // A pinned pattern may hold '?', '\\' or '[' after its tag.
    assert_eq!(c.call(&["SORT", "{s}l", "BY", "{s}w_?*", "GET", "{s}[*"]), "*2\r\n$-1\r\n$-1\r\n");
    // The same holds inside scripts and transactions.
    assert_eq!(c.call(&["EVAL", "return redis.pcall('sort', KEYS[1], 'by', 'w_*')", "1", "{s}l"]), by);
    c.call(&["MULTI"]);
    c.call(&["SORT", "{s}l", "GET", "x_*"]);
    assert_eq!(c.call(&["EXEC"]), format!("*1\r\n{get}"));
}

// ------------------------------------------------------------------ MEMORY

fn int_reply(r: &str) -> i64 {
    r.strip_prefix(':').and_then(|s| s.trim_end().parse().ok()).unwrap_or_else(|| panic!("not an integer: {r:?}"))
}

#[test]
fn memory_errors_match_redis() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    b.lines(&[
        "MEMORY USAGE nokey",
        "MEMORY USAGE",
        "MEMORY USAGE nokey SAMPLES",
        "MEMORY USAGE nokey SAMPLES -1",
        "MEMORY USAGE nokey SAMPLES x",
        "MEMORY USAGE nokey FOO 1",
        "MEMORY USAGE nokey SAMPLES 0",
        "MEMORY USAGE nokey SAMPLES 5 SAMPLES 2",
        "MEMORY STATS x",
        "MEMORY DOCTOR x",
        "MEMORY PURGE x",
        "MEMORY MALLOC-STATS x",
        "MEMORY HELP x",
        "MEMORY",
        "MEMORY FOO",
        "MEMORY PURGE",
        "COMMAND INFO memory|usage memory|stats memory|doctor memory|purge memory|malloc-stats memory|help",
        "COMMAND INFO lolwut",
        "COMMAND GETKEYS MEMORY USAGE k SAMPLES 3",
        "SET k v",
        "MEMORY USAGE k SAMPLES -1",
        "MEMORY USAGE k SAMPLES 1.5",
        "LOLWUT VERSION x",
        "LOLWUT VERSION 5 x",
        "LOLWUT VERSION 5 10 x",
        "LOLWUT VERSION 5 10 2 x",
        "LOLWUT VERSION 6 x",
        "LOLWUT VERSION 6 10 y",
        "LOLWUT VERSION 99999999999999999999",
    ]);
    // Help: Redis's first line, then the subcommands.
    let help = b.c[0].call(&["MEMORY", "HELP"]);
    assert!(help.contains("MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"), "{help}");
    for sub in ["DOCTOR", "MALLOC-STATS", "PURGE", "STATS", "USAGE <key> [SAMPLES <count>]", "HELP"] {
        assert!(help.contains(&format!("+{sub}\r\n")), "{sub} missing from {help}");
    }
}

#[test]
fn memory_figures_are_plausible() {
    let ours = common::moonshard(&["--shards", "2"]);
    let mut c = Raw::connect(ours.port);
    let usage = |c: &mut Raw, k: &str| int_reply(&c.call(&["MEMORY", "USAGE", k]));
    let usage_all = |c: &mut Raw, k: &str| int_reply(&c.call(&["MEMORY", "USAGE", k, "SAMPLES", "0"]));
    c.call(&["SET", "small", "v"]);
    c.call(&["SET", "big", &"x".repeat(10_000)]);
    let (small, big) = (usage(&mut c, "small"), usage(&mut c, "big"));
    assert!(small > 0 && small < 200, "{small}");
    assert!(big > 10_000 && big < 12_500, "{big}");
    c.call(&["SET", "a-key-longer-than-twenty-two-bytes", "v"]);
    assert!(usage(&mut c, "a-key-longer-than-twenty-two-bytes") > small);
    c.call(&["SET", "ttl", "v", "EX", "100"]);
    assert!(usage(&mut c, "ttl") > small, "a TTL costs an index entry");
    // Every type grows with its content; sampling agrees with a full count
    // when the elements are alike.
    let fill = |c: &mut Raw, cmd: &[&str], n: usize, per: usize| {
        for chunk in 0..n / 100 {
            let mut args: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
            for i in chunk * 100..(chunk + 1) * 100 {
                for p in 0..per {
                    args.push(if p == 0 && cmd[0] == "ZADD" { i.to_string() } else { format!("element:{i:08}:{p}") });
                }
            }
            let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            let r = c.call(&a);
            assert!(!r.starts_with('-'), "{r}");
        }
    };
    for (name, cmd, per) in [
        ("list", vec!["RPUSH"], 1usize),
        ("set", vec!["SADD"], 1),
        ("hash", vec!["HSET"], 2),
        ("zset", vec!["ZADD"], 2),
        ("stream", vec!["XADD", "*"], 2),
    ] {
        let (k1, k2) = (format!("{name}1"), format!("{name}2"));
        if name == "stream" {
            for (k, n) in [(&k1, 100), (&k2, 3000)] {
                for i in 0..n {
                    c.call(&["XADD", k, "*", "field", &format!("value:{i:08}")]);
                }
            }
        } else {
            for (k, n) in [(&k1, 100), (&k2, 3000)] {
                let mut line = vec![cmd[0], k.as_str()];
                line.extend_from_slice(&cmd[1..]);
                fill(&mut c, &line, n, per);
            }
        }
        let (u1, u2, all) = (usage(&mut c, &k1), usage(&mut c, &k2), usage_all(&mut c, &k2));
        assert!(u1 > 100 * 10 && u2 > 3000 * 10, "{name}: {u1} {u2}");
        assert!(u2 > u1 * 10 && u2 < 3000 * 400, "{name} grows with its elements: {u1} {u2}");
        let ratio = u2 as f64 / all as f64;
        assert!((0.8..1.25).contains(&ratio), "{name}: sampled {u2} vs all {all}");
    }
    // MEMORY STATS: Redis's field names, keys counted over every shard.
    let stats = c.call(&["MEMORY", "STATS"]);
    for field in [
        "peak.allocated",
        "total.allocated",
        "startup.allocated",
        "lua.caches",
        "db.0",
        "overhead.hashtable.main",
        "overhead.hashtable.expires",
        "overhead.total",
        "keys.count",
        "keys.bytes-per-key",
        "dataset.bytes",
        "dataset.percentage",
        "peak.percentage",
        "fragmentation",
        "fragmentation.bytes",
    ] {
        assert!(stats.contains(&format!("${}\r\n{field}\r\n", field.len())), "{field} missing: {stats}");
    }
    let dbsize = int_reply(&c.call(&["DBSIZE"]));
    assert!(stats.contains(&format!("keys.count\r\n:{dbsize}\r\n")), "{stats}");
    c.call(&["HELLO", "3"]);
    assert!(c.call(&["MEMORY", "STATS"]).starts_with('%'));
    let doctor = c.call(&["MEMORY", "DOCTOR"]);
    assert!(doctor.starts_with("=") && doctor.contains("txt:"), "{doctor}");
    let malloc = c.call(&["MEMORY", "MALLOC-STATS"]);
    assert!(malloc.contains("mimalloc") && malloc.contains("used_memory"), "{malloc}");
    assert_eq!(c.call(&["MEMORY", "PURGE"]), "+OK\r\n");
    let art = c.call(&["LOLWUT"]);
    assert!(art.starts_with('=') && art.contains("Redis ver. 7.0"), "{art}");
    assert_eq!(art, c.call(&["LOLWUT"]), "the same arguments draw the same picture");
    assert_ne!(c.call(&["LOLWUT", "VERSION", "6", "30", "8"]), c.call(&["LOLWUT", "VERSION", "6", "31", "8"]));
    let cal = c.call(&["LOLWUT", "VERSION", "5", "20", "4", "2"]);
    assert!(cal.contains("moonshard ver."), "{cal}");
}

// ------------------------------------------------------------------ OBJECT

#[test]
fn object_freq_and_idletime_follow_the_policy() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut b = Both::new(&pair);
    for policy in ["allkeys-lfu", "volatile-lfu"] {
        b.check(&["CONFIG", "SET", "maxmemory-policy", policy]);
        b.lines(&[
            "DEL k",
            "SET k v",
            "OBJECT FREQ k",
            "GET k",
            "OBJECT FREQ k",
            "OBJECT IDLETIME k",
            "OBJECT FREQ missing",
            "OBJECT IDLETIME missing",
        ]);
    }
    for policy in ["allkeys-lru", "noeviction", "volatile-ttl", "allkeys-random"] {
        b.check(&["CONFIG", "SET", "maxmemory-policy", policy]);
        b.lines(&[
            "DEL k",
            "SET k v",
            "OBJECT IDLETIME k",
            "OBJECT FREQ k",
            "OBJECT FREQ missing",
            "OBJECT IDLETIME missing",
        ]);
    }
}

/// The top-level field names of MEMORY STATS (RESP2), `db.N` entries included.
fn memory_stats_names(con: &mut redis::Connection) -> Vec<String> {
    let v: redis::Value = redis::cmd("MEMORY").arg("STATS").query(con).expect("MEMORY STATS");
    let redis::Value::Array(items) = v else { panic!("MEMORY STATS is not an array: {v:?}") };
    items
        .iter()
        .step_by(2)
        .map(|k| match k {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("field name {other:?}"),
        })
        .collect()
}

/// MEMORY STATS names the same fields as redis-server 7.0, in the same
/// order, for a server with keys in two databases; its figures are INFO
/// memory's (one breakdown for both).
#[test]
fn memory_stats_fields_match_redis() {
    let Some(redis) = common::redis_server_with(&[]) else { return };
    let ms = common::moonshard(&[]);
    let mut lists = Vec::new();
    for p in [&redis, &ms] {
        let mut c = p.client();
        for i in 0..20 {
            let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query(&mut c).expect("SET");
        }
        let _: () = redis::cmd("SELECT").arg(3).query(&mut c).expect("SELECT");
        let _: () = redis::cmd("SET").arg("in3").arg("v").query(&mut c).expect("SET");
        lists.push(memory_stats_names(&mut c));
    }
    assert_eq!(lists[1], lists[0], "moonshard's MEMORY STATS fields against redis-server's");
    // The clients' figure is INFO's mem_clients_normal (a connection is open).
    let mut c = ms.client();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).expect("INFO");
    let normal = info
        .lines()
        .find_map(|l| l.strip_prefix("mem_clients_normal:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("mem_clients_normal");
    assert!(normal > 0, "{info}");
}
