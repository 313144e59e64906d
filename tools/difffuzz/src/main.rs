//! `difffuzz`: the command line around `difffuzz::run`.

use difffuzz::server::Launch;
use difffuzz::{report, Config};
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "\
usage: difffuzz [options]

  --seed N               generator seed (default: from the clock; printed)
  --seconds N            stop after N seconds
  --commands N           stop after N commands (default 20000 unless --seconds is given)
  --moonshard PATH       moonshard binary (default: next to this binary in target/)
  --shards N             moonshard --shards (default 4)
  --redis-server PATH    redis-server binary (default: redis-server on the PATH)
  --connect-moonshard P  use a moonshard already listening on 127.0.0.1:P
  --connect-redis P      use a redis-server already listening on 127.0.0.1:P
  --only LIST            only these groups/commands (comma-separated: string,zadd,config|get)
  --exclude LIST         never these groups/commands
  --no-scripts | --no-functions | --no-multi | --no-pipelines | --no-resp3
  --mutate P             probability of one random mutation per command (default 0.08)
  --seq-len N            random steps per sequence (default 40)
  --no-minimize          report findings unminimized
  --max-replays N        replays per minimization (default 400)
  --hang-ms N            no reply within N ms is a hang (default 5000)
  --rss-limit-mb N       report moonshard RSS growth beyond N MiB (default 128)
  --report FILE          also write the markdown report to FILE
  -v                     print findings as they are found
";

fn main() {
    let mut args = std::env::args().skip(1);
    let default_bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("moonshard")))
        .unwrap_or_else(|| PathBuf::from("moonshard"));
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1);
    let mut cfg = Config::new(default_bin.clone(), seed);
    cfg.commands = None;
    let mut bin = default_bin;
    let mut shards = "4".to_string();
    let mut connect_ms: Option<u16> = None;
    let mut commands_given = false;
    let list = |v: String| v.split(',').filter(|s| !s.is_empty()).map(|s| s.trim().to_lowercase()).collect::<Vec<_>>();
    let fail = |m: String| -> ! {
        eprintln!("difffuzz: {m}\n\n{USAGE}");
        std::process::exit(2)
    };
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().unwrap_or_else(|| fail(format!("{name} needs a value")));
        let num =
            |name: &str, v: String| v.parse::<u64>().unwrap_or_else(|_| fail(format!("{name}: not a number: {v}")));
        match a.as_str() {
            "--seed" => cfg.seed = num("--seed", val("--seed")),
            "--seconds" => cfg.seconds = Some(num("--seconds", val("--seconds"))),
            "--commands" => {
                cfg.commands = Some(num("--commands", val("--commands")));
                commands_given = true;
            }
            "--moonshard" => bin = PathBuf::from(val("--moonshard")),
            "--shards" => shards = num("--shards", val("--shards")).to_string(),
            "--redis-server" => {
                cfg.redis = Launch::Redis { bin: PathBuf::from(val("--redis-server")), flags: Vec::new() }
            }
            "--connect-moonshard" => connect_ms = Some(num("--connect-moonshard", val("--connect-moonshard")) as u16),
            "--connect-redis" => {
                cfg.redis = Launch::Connect { port: num("--connect-redis", val("--connect-redis")) as u16, pid: None }
            }
            "--only" => cfg.gen.only = list(val("--only")),
            "--exclude" => cfg.gen.exclude = list(val("--exclude")),
            "--no-scripts" => cfg.gen.scripts = false,
            "--no-functions" => cfg.gen.functions = false,
            "--no-multi" => cfg.gen.multi = false,
            "--no-pipelines" => cfg.gen.pipelines = false,
            "--no-resp3" => cfg.gen.resp3 = false,
            "--mutate" => {
                let v = val("--mutate");
                cfg.gen.mutate = v.parse().unwrap_or_else(|_| fail(format!("--mutate: not a probability: {v}")))
            }
            "--seq-len" => cfg.gen.seq_len = num("--seq-len", val("--seq-len")) as usize,
            "--no-minimize" => cfg.minimize = false,
            "--max-replays" => cfg.max_replays = num("--max-replays", val("--max-replays")) as usize,
            "--hang-ms" => cfg.hang = Duration::from_millis(num("--hang-ms", val("--hang-ms"))),
            "--rss-limit-mb" => cfg.rss_limit_kb = num("--rss-limit-mb", val("--rss-limit-mb")) * 1024,
            "--report" => cfg.report = Some(PathBuf::from(val("--report"))),
            "-v" | "--verbose" => cfg.verbose = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return;
            }
            other => fail(format!("unknown option {other}")),
        }
    }
    if cfg.seconds.is_none() && !commands_given {
        cfg.commands = Some(20_000);
    }
    cfg.moonshard = match connect_ms {
        Some(port) => Launch::Connect { port, pid: None },
        None => Launch::Moonshard { bin, flags: vec!["--shards".into(), shards] },
    };
    eprintln!("difffuzz: seed {}", cfg.seed);
    let sum = match difffuzz::run(&cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("difffuzz: {e}");
            std::process::exit(2);
        }
    };
    let md = report::markdown(&sum);
    println!("{md}");
    if let Some(path) = &cfg.report {
        if let Err(e) = std::fs::write(path, &md) {
            eprintln!("difffuzz: cannot write {}: {e}", path.display());
        }
    }
    if sum.unexplained() > 0 {
        std::process::exit(1);
    }
}
