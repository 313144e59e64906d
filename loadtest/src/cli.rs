//! Command line: `loadtest [run] [options]` and `loadtest compare [options]`.

use crate::client::Client;
use crate::report::Report;
use crate::run::{self, RunConfig};
use crate::workload::{self, KeyPicker, Workload};
use crate::{compare, seed, slot};
use std::sync::Arc;
use std::time::Duration;

const USAGE: &str = "\
loadtest: a load generator for Redis-compatible servers

Usage: loadtest [run] [options]        run one workload against one server
       loadtest compare [options]      moonshard vs redis-server side by side (see `loadtest compare --help`)

Options (names follow redis-benchmark where it has one):
  -h HOST             server host (default 127.0.0.1)
  -p PORT             server port (default 6379)
  -c N                connections (default 50)
  -P N                pipeline: requests per batch on each connection (default 1)
  -n N                total requests (default 100000 unless --duration is given)
  --duration SECS     stop issuing requests after SECS (with -n: whichever comes first)
  --threads N         OS threads the connections are spread over (default: the
                      CPUs this process may run on, at most 8)
  -w, --workload W    getset (default) | get | set | seed | command
  --get-ratio R       share of GETs in getset (default 0.5)
  -r N                key space: keys key:<0..N> (default 100000); for seed the
                      number of {t<n>} tags, spread evenly over the 16384 slots (default 16384)
  -d BYTES            SET value size (default 16)
  --zipf S            zipfian key choice with exponent S (e.g. 0.99) instead of uniform
  --seed-args N       integers per seed-script call (default 3)
  --command \"CMD ...\" custom command (implies -w command); __rand_int__ becomes a
                      random key number in 0..N (12 digits, as redis-benchmark)
  --flush             FLUSHALL before the run
  --no-verify         skip the seed workload's end-of-run consistency check
  --timeout SECS      give up on a connection silent this long (default 10)
  --rng-seed N        seed for key choice (default 1)
  --json PATH         also write the results as JSON
  --slow MS           list each batch slower than MS ms in the JSON (slow: its start
                      as Unix ms and its latency in µs), to place stalls in time
  -q, --quiet         no progress line
Exit status: 0 when every request succeeded and checks held, 1 otherwise, 2 on usage errors.";

/// Pulls flag values off an argument list.
pub struct Flags {
    args: Vec<String>,
    i: usize,
}

impl Flags {
    pub fn new(args: &[String]) -> Flags {
        Flags { args: args.to_vec(), i: 0 }
    }

    pub fn next_flag(&mut self) -> Option<String> {
        let f = self.args.get(self.i).cloned();
        self.i += 1;
        f
    }

    pub fn value(&mut self, flag: &str) -> Result<String, String> {
        let v = self.args.get(self.i).cloned().ok_or_else(|| format!("{flag} needs a value"))?;
        self.i += 1;
        Ok(v)
    }

    pub fn num<T: std::str::FromStr>(&mut self, flag: &str) -> Result<T, String> {
        let v = self.value(flag)?;
        v.parse().map_err(|_| format!("{flag}: '{v}' is not a valid number"))
    }
}

/// The CPUs this process may use (affinity-aware), at least 1.
pub fn usable_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

pub struct RunOptions {
    host: String,
    port: u16,
    cfg: RunConfig,
    workload: String,
    get_ratio: f64,
    keyspace: Option<u64>,
    value_size: usize,
    zipf: Option<f64>,
    seed_args: usize,
    command: Option<String>,
    flush: bool,
    verify: bool,
    json: Option<String>,
}

fn parse_run(args: &[String]) -> Result<Option<RunOptions>, String> {
    let mut o = RunOptions {
        host: "127.0.0.1".into(),
        port: 6379,
        cfg: RunConfig {
            addr: String::new(),
            connections: 50,
            pipeline: 1,
            threads: usable_cpus().min(8),
            requests: None,
            duration: None,
            io_timeout: Duration::from_secs(10),
            progress: true,
            seed: 1,
            slow_ms: 0,
        },
        workload: "getset".into(),
        get_ratio: 0.5,
        keyspace: None,
        value_size: 16,
        zipf: None,
        seed_args: 3,
        command: None,
        flush: false,
        verify: true,
        json: None,
    };
    let mut f = Flags::new(args);
    while let Some(flag) = f.next_flag() {
        match flag.as_str() {
            "--help" => return Ok(None),
            "-h" => o.host = f.value(&flag)?,
            "-p" => o.port = f.num(&flag)?,
            "-c" => o.cfg.connections = f.num(&flag)?,
            "-P" => o.cfg.pipeline = f.num(&flag)?,
            "-n" => o.cfg.requests = Some(f.num(&flag)?),
            "--duration" => o.cfg.duration = Some(secs(f.num(&flag)?)?),
            "--threads" => o.cfg.threads = f.num(&flag)?,
            "-w" | "--workload" => o.workload = f.value(&flag)?,
            "--get-ratio" => o.get_ratio = f.num(&flag)?,
            "-r" => o.keyspace = Some(f.num(&flag)?),
            "-d" => o.value_size = f.num(&flag)?,
            "--zipf" => o.zipf = Some(f.num(&flag)?),
            "--seed-args" => o.seed_args = f.num(&flag)?,
            "--command" => {
                o.command = Some(f.value(&flag)?);
                o.workload = "command".into();
            }
            "--flush" => o.flush = true,
            "--no-verify" => o.verify = false,
            "--timeout" => o.cfg.io_timeout = secs(f.num(&flag)?)?,
            "--rng-seed" => o.cfg.seed = f.num(&flag)?,
            "--json" => o.json = Some(f.value(&flag)?),
            "--slow" => o.cfg.slow_ms = f.num(&flag)?,
            "-q" | "--quiet" => o.cfg.progress = false,
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    if !(0.0..=1.0).contains(&o.get_ratio) {
        return Err("--get-ratio must be between 0 and 1".into());
    }
    if o.value_size > 512 * 1024 * 1024 || o.cfg.pipeline > 1_000_000 || o.cfg.connections > 100_000 {
        return Err("value size, pipeline or connection count out of range".into());
    }
    o.cfg.addr = format!("{}:{}", o.host, o.port);
    Ok(Some(o))
}

fn secs(s: f64) -> Result<Duration, String> {
    if s.is_finite() && s > 0.0 && s <= 86_400.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err("a duration must be between 0 and 86400 seconds".into())
    }
}

/// Runs the workload, prints the Markdown table, writes JSON if asked.
pub fn run_command(o: &RunOptions) -> Result<Report, String> {
    let setup_timeout = o.cfg.io_timeout.max(Duration::from_secs(5));
    let mut admin = Client::connect(&o.cfg.addr, setup_timeout).map_err(|e| format!("connect {}: {e}", o.cfg.addr))?;
    if o.flush {
        admin.call_str(&["FLUSHALL"])?;
    }
    let mut seed_tags = None;
    let workload = match o.workload.as_str() {
        "getset" | "get" | "set" => {
            let ratio = match o.workload.as_str() {
                "get" => 1.0,
                "set" => 0.0,
                _ => o.get_ratio,
            };
            Workload::get_set(ratio, o.value_size, KeyPicker::new(o.keyspace.unwrap_or(100_000), o.zipf)?)
        }
        "seed" => {
            let tags = Arc::new(slot::spread_tags(o.keyspace.unwrap_or(slot::SLOTS as u64) as usize)?);
            let sha = seed::load_script(&mut admin)?;
            seed_tags = Some(tags.clone());
            Workload::seed(&sha, o.seed_args.clamp(1, 1000), tags)
        }
        "command" => {
            let line = o.command.as_deref().ok_or("-w command needs --command \"...\"")?;
            Workload::command(&workload::split_words(line)?, KeyPicker::new(o.keyspace.unwrap_or(100_000), o.zipf)?)?
        }
        other => return Err(format!("unknown workload '{other}'")),
    };
    let result = run::run(&o.cfg, &workload)?;
    let verification = match (&seed_tags, o.verify) {
        (Some(tags), true) => Some(seed::verify(&mut admin, tags, o.seed_args.clamp(1, 1000))?),
        _ => None,
    };
    let report = Report {
        addr: o.cfg.addr.clone(),
        workload: workload.describe(),
        connections: o.cfg.connections,
        pipeline: o.cfg.pipeline,
        threads: o.cfg.threads.clamp(1, o.cfg.connections),
        result,
        verification,
    };
    if let Some(path) = &o.json {
        std::fs::write(path, report.json()).map_err(|e| format!("write {path}: {e}"))?;
    }
    Ok(report)
}

/// Entry point shared by the binary and the tests; returns the exit status.
pub fn main_with_args(args: &[String]) -> i32 {
    let (sub, rest) = match args.first().map(String::as_str) {
        Some("compare") => ("compare", &args[1..]),
        Some("run") => ("run", &args[1..]),
        _ => ("run", args),
    };
    if sub == "compare" {
        return compare::main(rest);
    }
    let opts = match parse_run(rest) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("loadtest: {e}\n\n{USAGE}");
            return 2;
        }
    };
    match run_command(&opts) {
        Ok(report) => {
            println!("{}", report.markdown());
            if report.clean() {
                0
            } else {
                eprintln!("loadtest: the run had errors (see above)");
                1
            }
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            1
        }
    }
}

/// Parses run options and runs them, returning the report (for `compare`
/// and tests, which want the numbers rather than printed text).
pub fn run_parsed(args: &[String]) -> Result<Report, String> {
    let o = parse_run(args)?.ok_or("--help is not a run")?;
    run_command(&o)
}
