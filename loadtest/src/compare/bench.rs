//! Driving redis-benchmark and reading its `--csv` output.

use super::server::{Programs, Server};
use std::process::Stdio;

/// redis-benchmark's default test list as `-t` groups, in its own order, with
/// the CSV rows each group prints. Running by group lets us go on past a
/// group that fails (redis-benchmark 7 exits at the first error reply).
pub const DEFAULT_GROUPS: &[(&str, &[&str])] = &[
    ("ping", &["PING_INLINE", "PING_MBULK"]),
    ("set", &["SET"]),
    ("get", &["GET"]),
    ("incr", &["INCR"]),
    ("lpush", &["LPUSH"]),
    ("rpush", &["RPUSH"]),
    ("lpop", &["LPOP"]),
    ("rpop", &["RPOP"]),
    ("sadd", &["SADD"]),
    ("hset", &["HSET"]),
    ("spop", &["SPOP"]),
    ("zadd", &["ZADD"]),
    ("zpopmin", &["ZPOPMIN"]),
    (
        "lrange",
        &[
            "LPUSH (needed to benchmark LRANGE)",
            "LRANGE_100 (first 100 elements)",
            "LRANGE_300 (first 300 elements)",
            "LRANGE_500 (first 500 elements)",
            "LRANGE_600 (first 600 elements)",
        ],
    ),
    ("mset", &["MSET (10 keys)"]),
];

/// The rows a `-t` group prints (unknown groups print one row named as the group).
pub fn group_rows(group: &str) -> Vec<String> {
    DEFAULT_GROUPS
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(_, rows)| rows.iter().map(|r| r.to_string()).collect())
        .unwrap_or_else(|| vec![group.to_uppercase()])
}

#[derive(Clone, Debug)]
pub struct Load {
    pub clients: usize,
    pub requests: u64,
    pub keyspace: u64,
    pub pipeline: usize,
    pub threads: usize,
    pub client_cpus: String,
}

/// One test's outcome in one run: requests per second, or the error that stopped it.
pub type Outcome = Result<f64, String>;

fn base_args(load: &Load, server: &Server) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        server.port.to_string(),
        "-c".into(),
        load.clients.to_string(),
        "-n".into(),
        load.requests.to_string(),
        "-r".into(),
        load.keyspace.to_string(),
        "-P".into(),
        load.pipeline.to_string(),
        "--csv".into(),
    ];
    if load.threads > 1 {
        a.extend(["--threads".into(), load.threads.to_string()]);
    }
    a
}

/// Runs redis-benchmark once; returns the CSV rows it printed (name, rps) and
/// the error text if it failed.
fn invoke(p: &Programs, load: &Load, server: &Server, extra: &[String]) -> (Vec<(String, f64)>, Option<String>) {
    let mut cmd = p.pinned(&load.client_cpus, &p.redis_benchmark);
    cmd.args(base_args(load, server)).args(extra).stdin(Stdio::null());
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => return (Vec::new(), Some(format!("start redis-benchmark: {e}"))),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rows = parse_csv(&stdout);
    let error_line = stdout
        .lines()
        .chain(stderr.lines())
        .find(|l| l.contains("Error from server") || l.starts_with("Error") || l.contains("Connection refused"))
        .map(|l| l.trim().to_string());
    let failed = match (out.status.success(), error_line) {
        (_, Some(e)) => Some(e),
        (false, None) => Some(format!("redis-benchmark exited with {}", out.status)),
        (true, None) => None,
    };
    (rows, failed)
}

/// Parses `"name","rps",...` lines, skipping the header.
pub fn parse_csv(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split("\",\"").collect();
            let name = fields.first()?.strip_prefix('"')?;
            let rps = fields.get(1)?.trim_end_matches('"').parse::<f64>().ok()?;
            Some((name.to_string(), rps))
        })
        .collect()
}

/// Runs the `groups` in order against `server`, restarting after a failing
/// group. Returns one outcome per expected row name.
pub fn run_groups(p: &Programs, load: &Load, server: &Server, groups: &[&str]) -> Vec<(String, Outcome)> {
    let mut results: Vec<(String, Outcome)> = Vec::new();
    let mut rest: Vec<&str> = groups.to_vec();
    // Each pass either finishes or drops at least the failing group: bounded.
    while !rest.is_empty() {
        let (rows, failed) = invoke(p, load, server, &["-t".to_string(), rest.join(",")]);
        let mut consumed = 0;
        for g in &rest {
            let expected = group_rows(g);
            let found: Vec<Option<f64>> = expected
                .iter()
                .map(|name| rows.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, r)| *r))
                .collect();
            if found.iter().all(Option::is_some) {
                results.extend(expected.into_iter().zip(found).map(|(n, r)| (n, Ok(r.unwrap_or(0.0)))));
                consumed += 1;
                continue;
            }
            let why = failed.clone().unwrap_or_else(|| "no result printed".into());
            results.extend(expected.into_iter().map(|n| (n, Err(why.clone()))));
            consumed += 1;
            break;
        }
        if failed.is_none() && consumed == rest.len() {
            break;
        }
        rest.drain(..consumed.min(rest.len()));
    }
    results
}

/// Runs one custom command (e.g. EVALSHA ...) and names its row `name`.
pub fn run_command(p: &Programs, load: &Load, server: &Server, name: &str, words: &[String]) -> Outcome {
    let (rows, failed) = invoke(p, load, server, words);
    match (rows.first(), failed) {
        (_, Some(e)) => Err(e),
        (Some((_, rps)), None) => Ok(*rps),
        (None, None) => Err(format!("{name}: redis-benchmark printed no result")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_rows() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\"\n\"SET\",\"74074.07\",\"0.074\"\n\"MSET (10 keys)\",\"105263.16\",\"0.068\"\n";
        let rows = super::parse_csv(text);
        assert_eq!(rows, vec![("SET".to_string(), 74074.07), ("MSET (10 keys)".to_string(), 105263.16)]);
    }
}
