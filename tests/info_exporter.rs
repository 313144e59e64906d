//! prometheus-redis-exporter (Debian's package) against moonshard and a
//! real redis-server 7.0 after the same small workload: every metric the
//! exporter makes of redis-server it makes of moonshard too, with the same
//! label names, but for the declared list below. The exporter reads INFO
//! ALL, CONFIG GET, CLIENT LIST, SLOWLOG, LATENCY and the keyspace.
//!
//! Skipped with a loud notice when the exporter is not installed; under
//! MOONSHARD_REQUIRE_REDIS=1 (CI) its absence fails the test.

mod common;

use common::{free_port, run_str, Proc};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXPORTER: &str = "prometheus-redis-exporter";

/// Metrics the exporter makes of redis-server only, and why moonshard has none.
/// (None today: `used_cpu_*_main_thread` are the runtime threads' CPU.)
const ONLY_REDIS: &[(&str, &str)] = &[];

/// The exporter, or None after the notice (a failure under MOONSHARD_REQUIRE_REDIS=1).
fn exporter_installed() -> bool {
    if common::has_program(EXPORTER) {
        return true;
    }
    if std::env::var("MOONSHARD_REQUIRE_REDIS").as_deref() == Ok("1") {
        panic!("{EXPORTER} is required (MOONSHARD_REQUIRE_REDIS=1) but not installed");
    }
    eprintln!("\n*** SKIPPED: {EXPORTER} not on PATH; exporter parity not tested (apt-get install {EXPORTER}) ***\n");
    false
}

struct Exporter {
    child: Child,
    port: u16,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Exporter {
    fn start(redis_port: u16) -> Exporter {
        let port = free_port();
        let child = Command::new(EXPORTER)
            .arg("-redis.addr")
            .arg(format!("redis://127.0.0.1:{redis_port}"))
            .arg("-web.listen-address")
            .arg(format!("127.0.0.1:{port}"))
            .args(["-include-system-metrics", "-include-config-metrics", "-export-client-list"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the exporter");
        let mut e = Exporter { child, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = e.child.try_wait() {
                panic!("the exporter exited: {status}");
            }
            assert!(Instant::now() < deadline, "the exporter did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        e.port = port;
        e
    }

    /// One scrape: metric name → the label names its series carry.
    fn scrape(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the exporter");
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read the metrics");
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let text = body.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let labels = out.entry(line[..end].to_string()).or_default();
            if let Some(inner) = line[end..].strip_prefix('{').and_then(|r| r.split_once('}')).map(|(l, _)| l) {
                labels.extend(label_names(inner));
            }
        }
        out
    }
}

/// The label names of `a="x",b="y"` (values may hold commas and escaped quotes).
fn label_names(inner: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = inner;
    while let Some((name, after)) = rest.split_once("=\"") {
        names.push(name.trim_start_matches(',').to_string());
        // Skip the value up to its closing quote.
        let mut escaped = false;
        let mut end = after.len();
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = i;
                    break;
                }
                _ => escaped = false,
            }
        }
        rest = after.get(end + 1..).unwrap_or("");
    }
    names
}

/// A redis-server working in `dir` (no dump file loaded or left where the
/// tests run), on a free port that is really its own.
fn redis_in_temp_dir(dir: &std::path::Path) -> Proc {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let mut p = Proc { port, child, dir: None };
        while TcpStream::connect(("127.0.0.1", port)).is_err() && matches!(p.child.try_wait(), Ok(None)) {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(p.child.try_wait(), Ok(None)) {
            let text = match run_str(&mut p.client(), &["INFO", "server"]) {
                Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
                _ => String::new(),
            };
            if text.contains(&format!("process_id:{}\r\n", p.child.id())) {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "redis-server did not start");
    }
}

/// A little of everything INFO reports on: keys with and without TTL in two
/// databases, every type, errors, a script, a slow command, pub/sub.
fn workload(p: &Proc) {
    let mut c = p.client();
    for line in [
        "CONFIG SET slowlog-log-slower-than 0",
        "SET s v",
        "SET t v EX 100",
        "RPUSH l a b",
        "HSET h f v",
        "SADD set a",
        "ZADD z 1 a",
        "XADD st 1-1 f v",
        "PFADD hll a",
        "GET s",
        "GET nosuch",
        "LPUSH s x",
        "NOSUCHCOMMAND",
        "SELECT 1",
        "SET other v EX 50",
        "SELECT 0",
        "PUBLISH ch hello",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        let _ = run_str(&mut c, &args);
    }
    let _ = run_str(&mut c, &["EVAL", "return redis.call('get', KEYS[1])", "1", "s"]);
}

#[test]
fn the_exporter_finds_every_redis_metric_on_moonshard() {
    if !exporter_installed() {
        return;
    }
    if !common::has_program("redis-server") {
        // The harness's notice, or its failure under MOONSHARD_REQUIRE_REDIS=1.
        let _ = common::redis_server();
        return;
    }
    let dir = std::env::temp_dir().join(format!("moonshard-exporter-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let theirs = redis_in_temp_dir(&dir);
    let ours = common::moonshard(&["--shards", "4"]);
    workload(&theirs);
    workload(&ours);
    let (exp_theirs, exp_ours) = (Exporter::start(theirs.port), Exporter::start(ours.port));
    // The second scrape sees the exporter's own connections in CLIENT LIST too.
    let _ = (exp_theirs.scrape(), exp_ours.scrape());
    let (theirs_m, ours_m) = (exp_theirs.scrape(), exp_ours.scrape());
    let _ = std::fs::remove_dir_all(&dir);

    assert!(ours_m.contains_key("redis_up"), "no redis_up in {ours_m:?}");
    eprintln!("{} metrics of redis-server, {} of moonshard", theirs_m.len(), ours_m.len());
    let mut problems = Vec::new();
    for (name, labels) in &theirs_m {
        let Some(mine) = ours_m.get(name) else {
            if !ONLY_REDIS.iter().any(|(n, _)| n == name) {
                problems.push(format!("{name} missing"));
            }
            continue;
        };
        if mine != labels {
            problems.push(format!("{name}: labels {mine:?}, redis-server's {labels:?}"));
        }
    }
    for (name, _) in ONLY_REDIS {
        if ours_m.contains_key(*name) {
            problems.push(format!("{name} is declared missing but is exported"));
        }
    }
    assert!(problems.is_empty(), "the exporter sees moonshard differently: {problems:#?}");
    // A sanity check that this compares something: the families INFO feeds.
    for name in [
        "redis_commands_total",
        "redis_errors_total",
        "redis_latency_percentiles_usec",
        "redis_db_keys",
        "redis_db_avg_ttl_seconds",
        "redis_keyspace_hits_total",
        "redis_memory_used_lua_bytes",
        "redis_connected_clients",
    ] {
        assert!(theirs_m.contains_key(name) && ours_m.contains_key(name), "{name} not exported");
    }
}

#[test]
fn label_names_are_parsed() {
    assert_eq!(label_names(r#"a="1",b="x,\"y\"}",c="""#), ["a", "b", "c"]);
    assert!(label_names("").is_empty());
}
