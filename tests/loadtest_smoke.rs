//! The load generator against the real moonshard binary: tiny bounded runs
//! that must finish with every reply accounted for and no error replies, and
//! a run that must report errors (so the error counting itself is tested).

mod common;

use std::path::PathBuf;

fn json_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("moonshard-loadtest-{}-{name}.json", std::process::id()))
}

/// Runs `loadtest` with `args` plus `--json`, returning (exit code, JSON text).
fn loadtest(port: u16, name: &str, args: &[&str]) -> (i32, String) {
    let path = json_path(name);
    let mut all: Vec<String> = vec!["-p".into(), port.to_string(), "--quiet".into(), "--timeout".into(), "10".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(["--json".to_string(), path.display().to_string()]);
    let code = loadtest::main_with_args(&all);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    (code, text)
}

/// The integer value of `"name": N` in the report.
fn field(json: &str, name: &str) -> u64 {
    let at = json.find(&format!("\"{name}\": ")).unwrap_or_else(|| panic!("no {name} in {json}"));
    let rest = &json[at + name.len() + 4..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or_else(|_| panic!("{name} is not a number in {json}"))
}

#[test]
fn get_set_mix_runs_clean() {
    let server = common::moonshard(&["--shards", "2"]);
    let (code, json) =
        loadtest(server.port, "getset", &["-c", "8", "-P", "4", "-n", "3000", "--threads", "2", "-r", "200"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(field(&json, "replies"), 3000, "{json}");
    assert_eq!(field(&json, "errors"), 0, "{json}");
    assert_eq!(field(&json, "lost"), 0, "{json}");
    assert!(json.contains("\"clean\": true"), "{json}");
    // The SETs really landed: some of the 200 keys exist now.
    let mut con = server.client();
    let hits: i64 = (0..200)
        .map(|i| format!("key:{i:012}"))
        .filter(|k| common::run_str(&mut con, &["EXISTS", k]) == Ok(redis::Value::Int(1)))
        .count() as i64;
    assert!(hits > 0, "no key:<n> written");
}

#[test]
fn custom_command_with_zipf_and_duration_bound() {
    let server = common::moonshard(&["--shards", "3"]);
    let args =
        ["--command", "SET k:__rand_int__ v", "-c", "4", "-P", "8", "-n", "2000", "--duration", "20", "--zipf", "0.99"];
    let (code, json) = loadtest(server.port, "custom", &args);
    assert_eq!(code, 0, "{json}");
    assert_eq!(field(&json, "replies"), 2000, "{json}");
    assert_eq!(field(&json, "errors"), 0, "{json}");
    let (code, json) = loadtest(server.port, "del", &["--command", "DEL k:__rand_int__", "-c", "2", "-n", "500"]);
    assert_eq!((code, field(&json, "errors")), (0, 0), "{json}");
}

#[test]
fn error_replies_are_counted_and_fail_the_run() {
    let server = common::moonshard(&[]);
    let (code, json) = loadtest(
        server.port,
        "errors",
        &["--command", "NOSUCHCOMMAND __rand_int__", "-c", "3", "-P", "5", "-n", "300"],
    );
    assert_eq!(code, 1, "{json}");
    assert_eq!(field(&json, "errors"), 300, "{json}");
    assert!(json.contains("unknown command"), "{json}");
    assert!(json.contains("\"clean\": false"), "{json}");
}

#[test]
fn seed_workload_checks_atomicity_on_redis() {
    // The seed workload needs EVALSHA; run it against redis-server here so the
    // end-of-run list/counter check is exercised wherever redis-server exists.
    let Some(redis) = common::redis_server() else {
        return;
    };
    let (code, json) = loadtest(redis.port, "seed", &["-w", "seed", "-r", "64", "-c", "4", "-P", "8", "-n", "800"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(field(&json, "errors"), 0, "{json}");
    assert_eq!(field(&json, "lists_checked"), 64, "{json}");
    assert_eq!(field(&json, "elements"), 2400, "{json}");
    assert_eq!(field(&json, "mismatches"), 0, "{json}");
    // A torn update must be caught: break one pair by hand, then run again.
    let tag = loadtest::slot::tag_text(loadtest::slot::spread_tags(64).unwrap()[5]);
    let mut con = redis.client();
    common::run_str(&mut con, &["INCRBY", &format!("{{{tag}}}sum"), "1"]).unwrap();
    let (code, json) = loadtest(redis.port, "seed-torn", &["-w", "seed", "-r", "64", "-c", "2", "-n", "20"]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(field(&json, "mismatches"), 1, "{json}");
    assert!(json.contains(&tag), "{json}");
}
