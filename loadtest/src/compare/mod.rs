//! `loadtest compare`: moonshard and redis-server side by side, as
//! shared/brief/measuring.md prescribes: both pinned to the same server CPUs,
//! redis-benchmark pinned to other CPUs, servers alternated over rounds,
//! median ratio per test and the geometric mean; then the scaling series and
//! the memory comparison. Writes report.md and SVG charts to `--out`.

pub mod bench;
pub mod server;
pub mod svg;

use crate::cli::{usable_cpus, Flags};
use bench::{Load, Outcome};
use server::{Kind, Programs, Server};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

const USAGE: &str = "\
Usage: loadtest compare [options]

Builds nothing: point it at binaries you built (cargo build --release).
  --moonshard PATH        default target/release/moonshard
  --redis-server PATH     default redis-server
  --redis-benchmark PATH  default redis-benchmark
  --server-cpus LIST      taskset CPU list for both servers (default 0)
  --client-cpus LIST      taskset CPU list for redis-benchmark (default 1)
  --shards N              moonshard shards for the per-core comparison (default 1)
  -n N                    requests per test (default 200000)
  -c N                    connections (default 50)
  -r N                    random key space (default 100000)
  --pipelines LIST        pipeline depths (default 1,16)
  --rounds R              rounds, servers alternated A B / B A (default 3)
  --tests LIST            redis-benchmark -t groups (default: its whole default list)
  --only LIST             sections to run: percore,scaling,memory,generator (default all);
                          generator: loadtest vs redis-benchmark against redis-server
  --max-shards N          scaling series 1..N (default: this machine's CPU count)
  --scale-server-cpus L   CPUs the servers get in the scaling series (default: all but client CPUs,
                          or all CPUs when that leaves none)
  --scale-tests LIST      -t groups for the scaling series (default set,get)
  --scale-pipeline N      pipeline for the scaling series (default 16)
  --memory-keys N         keys for the memory comparison (default 1000000)
  --out DIR               where report.md, ratios.svg, scaling.svg go (default target/loadtest-report)
  --quick                 smoke run: -n 20000, 1 round, 100000 memory keys, up to 2 shards";

struct Opts {
    progs: Programs,
    server_cpus: String,
    client_cpus: String,
    shards: usize,
    requests: u64,
    clients: usize,
    keyspace: u64,
    pipelines: Vec<usize>,
    rounds: usize,
    tests: Vec<String>,
    sections: Vec<String>,
    max_shards: usize,
    scale_server_cpus: Option<String>,
    scale_tests: Vec<String>,
    scale_pipeline: usize,
    memory_keys: u64,
    out: PathBuf,
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

fn parse(args: &[String]) -> Result<Option<Opts>, String> {
    let cores = usable_cpus();
    let mut o = Opts {
        progs: Programs {
            moonshard: "target/release/moonshard".into(),
            redis_server: "redis-server".into(),
            redis_benchmark: "redis-benchmark".into(),
            taskset: None,
            log_dir: PathBuf::new(),
        },
        server_cpus: "0".into(),
        client_cpus: if cores > 1 { "1".into() } else { "0".into() },
        shards: 1,
        requests: 200_000,
        clients: 50,
        keyspace: 100_000,
        pipelines: vec![1, 16],
        rounds: 3,
        tests: bench::DEFAULT_GROUPS.iter().map(|(g, _)| g.to_string()).collect(),
        sections: list("percore,scaling,memory,generator"),
        max_shards: cores,
        scale_server_cpus: None,
        scale_tests: list("set,get"),
        scale_pipeline: 16,
        memory_keys: 1_000_000,
        out: "target/loadtest-report".into(),
    };
    let mut quick = false;
    let mut f = Flags::new(args);
    while let Some(flag) = f.next_flag() {
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--moonshard" => o.progs.moonshard = f.value(&flag)?.into(),
            "--redis-server" => o.progs.redis_server = f.value(&flag)?.into(),
            "--redis-benchmark" => o.progs.redis_benchmark = f.value(&flag)?.into(),
            "--server-cpus" => o.server_cpus = f.value(&flag)?,
            "--client-cpus" => o.client_cpus = f.value(&flag)?,
            "--shards" => o.shards = f.num(&flag)?,
            "-n" => o.requests = f.num(&flag)?,
            "-c" => o.clients = f.num(&flag)?,
            "-r" => o.keyspace = f.num(&flag)?,
            "--pipelines" => {
                o.pipelines = list(&f.value(&flag)?)
                    .iter()
                    .map(|p| p.parse().map_err(|_| format!("bad pipeline '{p}'")))
                    .collect::<Result<_, _>>()?
            }
            "--rounds" => o.rounds = f.num(&flag)?,
            "--tests" => o.tests = list(&f.value(&flag)?),
            "--only" => o.sections = list(&f.value(&flag)?),
            "--max-shards" => o.max_shards = f.num(&flag)?,
            "--scale-server-cpus" => o.scale_server_cpus = Some(f.value(&flag)?),
            "--scale-tests" => o.scale_tests = list(&f.value(&flag)?),
            "--scale-pipeline" => o.scale_pipeline = f.num(&flag)?,
            "--memory-keys" => o.memory_keys = f.num(&flag)?,
            "--out" => o.out = f.value(&flag)?.into(),
            "--quick" => quick = true,
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    if quick {
        o.requests = o.requests.min(20_000);
        o.rounds = 1;
        o.memory_keys = o.memory_keys.min(100_000);
        o.max_shards = o.max_shards.min(2);
    }
    if o.rounds == 0
        || o.rounds > 100
        || o.requests == 0
        || o.clients == 0
        || o.pipelines.is_empty()
        || o.pipelines.contains(&0)
    {
        return Err("rounds, -n, -c and pipelines must be positive (rounds at most 100)".into());
    }
    if o.shards == 0 || o.max_shards == 0 || o.max_shards > 1024 {
        return Err("--shards and --max-shards must be 1..=1024".into());
    }
    for cpus in [&o.server_cpus, &o.client_cpus] {
        server::cpu_count(cpus).ok_or_else(|| format!("bad CPU list '{cpus}'"))?;
    }
    Ok(Some(o))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

fn geomean(v: &[f64]) -> Option<f64> {
    if v.is_empty() || v.iter().any(|x| *x <= 0.0) {
        return None;
    }
    Some((v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp())
}

/// All runs of one test at one pipeline depth.
#[derive(Default)]
struct Cell {
    moon: Vec<Outcome>,
    redis: Vec<Outcome>,
}

impl Cell {
    fn errors(&self) -> Vec<String> {
        let tag = |k: &str, o: &Outcome| o.as_ref().err().map(|e| format!("{k}: {e}"));
        self.moon
            .iter()
            .filter_map(|o| tag("moonshard", o))
            .chain(self.redis.iter().filter_map(|o| tag("redis-server", o)))
            .collect()
    }

    fn medians(&self) -> (Option<f64>, Option<f64>) {
        let ok = |v: &[Outcome]| v.iter().filter_map(|o| o.as_ref().ok().copied()).collect::<Vec<f64>>();
        (median(&mut ok(&self.moon)), median(&mut ok(&self.redis)))
    }

    /// The median of per-round ratios; None if any run failed.
    fn ratio(&self) -> Option<f64> {
        if !self.errors().is_empty() {
            return None;
        }
        let mut r: Vec<f64> = self
            .moon
            .iter()
            .zip(&self.redis)
            .filter_map(|(m, r)| match (m, r) {
                (Ok(m), Ok(r)) if *r > 0.0 => Some(m / r),
                _ => None,
            })
            .collect();
        median(&mut r)
    }
}

const EVALSHA_ROW: &str = "EVALSHA seed script";
const GEOADD_ROW: &str = "GEOADD (random points)";
const GEOSEARCH_ROW: &str = "GEOSEARCH (500 m, COUNT 10, 10k points)";

/// Bitmap rows, run as custom commands after EVALSHA. The key carries the
/// randomness: redis-benchmark writes `__rand_int__` with leading zeros,
/// which Redis refuses as a bit offset. SETBIT fills the bitmaps (126 bytes
/// each) that BITCOUNT then counts.
const BITMAP_ROWS: &[(&str, &[&str])] =
    &[("SETBIT", &["setbit", "bitmap:__rand_int__", "1000", "1"]), ("BITCOUNT", &["bitcount", "bitmap:__rand_int__"])];
/// HyperLogLog rows, run in this order after EVALSHA: PFADD of random
/// elements into one key (dense after a few thousand), PFCOUNT of that key
/// (answered from the cached cardinality), and PFCOUNT of the key twice,
/// which takes the union path (merge and estimate on every call).
const HLL_ROWS: &[(&str, &[&str])] = &[
    ("PFADD", &["pfadd", "{s}hll", "__rand_int__"]),
    ("PFCOUNT", &["pfcount", "{s}hll"]),
    ("PFCOUNT union of 2", &["pfcount", "{s}hll", "{s}hll"]),
];

pub fn main(args: &[String]) -> i32 {
    let mut o = match parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("loadtest compare: {e}\n\n{USAGE}");
            return 2;
        }
    };
    match compare(&mut o) {
        Ok(clean) => i32::from(!clean),
        Err(e) => {
            eprintln!("loadtest compare: {e}");
            1
        }
    }
}

fn compare(o: &mut Opts) -> Result<bool, String> {
    if !o.progs.moonshard.is_file() {
        return Err(format!(
            "{} not found: build it first (cargo build --release) or pass --moonshard",
            o.progs.moonshard.display()
        ));
    }
    for p in [&o.progs.redis_server, &o.progs.redis_benchmark] {
        if !p.is_file() && which(&p.to_string_lossy()).is_none() {
            return Err(format!("{} not found (apt-get install redis-server redis-tools)", p.display()));
        }
    }
    o.progs.taskset = which("taskset");
    std::fs::create_dir_all(&o.out).map_err(|e| format!("create {}: {e}", o.out.display()))?;
    o.progs.log_dir = o.out.join("logs");
    std::fs::create_dir_all(&o.progs.log_dir).map_err(|e| format!("create logs dir: {e}"))?;

    let mut md = header(o);
    let mut clean = true;
    let want = |s: &str| o.sections.iter().any(|x| x == s);
    if want("percore") {
        let (text, ok) = per_core(o)?;
        md += &text;
        clean &= ok;
    }
    if want("scaling") {
        md += &scaling(o)?;
    }
    if want("memory") {
        md += &memory(o)?;
    }
    if want("generator") {
        md += &generator(o)?;
    }
    let path = o.out.join("report.md");
    std::fs::write(&path, &md).map_err(|e| format!("write {}: {e}", path.display()))?;
    println!("{md}");
    eprintln!("report written to {}", path.display());
    if !clean {
        eprintln!("loadtest compare: some runs had errors (see the Errors section)");
    }
    Ok(clean)
}

fn header(o: &Opts) -> String {
    let pin = if o.progs.taskset.is_some() {
        format!("servers pinned to CPUs `{}`, redis-benchmark to CPUs `{}`", o.server_cpus, o.client_cpus)
    } else {
        "taskset not found: NOT pinned".to_string()
    };
    format!(
        "# moonshard vs redis-server\n\nMachine: {} CPUs. {}. Date (unix): {}.\n\nCommand: `loadtest compare {}`\n\n",
        usable_cpus(),
        pin,
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        std::env::args().skip(2).collect::<Vec<_>>().join(" ")
    )
}

fn eprogress(msg: &str) {
    eprintln!("[compare] {msg}");
}

/// Loads the seed script; None (with a reason) when the server cannot.
fn seed_sha(s: &Server) -> Result<String, String> {
    let mut c = s.client()?;
    crate::seed::load_script(&mut c)
}

/// Runs the default tests plus EVALSHA, the bitmap, HyperLogLog and geo rows on `server` at pipeline `p`.
fn one_pass(
    o: &Opts,
    s: &Server,
    p: usize,
    sha: &Result<String, String>,
    cells: &mut BTreeMap<String, Cell>,
    order: &mut Vec<String>,
) {
    let load = Load {
        clients: o.clients,
        requests: o.requests,
        keyspace: o.keyspace,
        pipeline: p,
        threads: 1,
        client_cpus: o.client_cpus.clone(),
    };
    let _ = s.flush();
    let groups: Vec<&str> = o.tests.iter().map(String::as_str).collect();
    let mut rows = bench::run_groups(&o.progs, &load, s, &groups);
    let _ = s.flush();
    let evalsha = match sha {
        Ok(sha) => {
            let words: Vec<String> =
                ["evalsha", sha, "2", "{s}list", "{s}sum", "2", "1", "2"].iter().map(|w| w.to_string()).collect();
            bench::run_command(&o.progs, &load, s, EVALSHA_ROW, &words)
                .and_then(|rps| check_seed_key(s, o.requests).map(|_| rps))
        }
        Err(e) => Err(e.clone()),
    };
    rows.push((EVALSHA_ROW.to_string(), evalsha));
    let _ = s.flush();
    for (name, words) in BITMAP_ROWS {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        rows.push((name.to_string(), bench::run_command(&o.progs, &load, s, name, &words)));
    }
    for (row, words) in HLL_ROWS {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        rows.push((row.to_string(), bench::run_command(&o.progs, &load, s, row, &words)));
    }
    rows.extend(geo_rows(o, s, &load));
    for (name, outcome) in rows {
        let key = format!("{name}\u{0}{p}");
        if !cells.contains_key(&key) {
            order.push(key.clone());
        }
        let cell = cells.entry(key).or_default();
        match s.kind {
            Kind::Moonshard => cell.moon.push(outcome),
            Kind::Redis => cell.redis.push(outcome),
        }
    }
}

/// GEOADD of random points near one place (redis-benchmark fills in
/// `__rand_int__`), then GEOSEARCH of the 10 nearest within 500 m in a
/// 100 x 100 grid of points about 110 m apart (some 60 candidates a query).
fn geo_rows(o: &Opts, s: &Server, load: &Load) -> Vec<(String, Outcome)> {
    let words = |line: &str| line.split(' ').map(String::from).collect::<Vec<String>>();
    let _ = s.flush();
    let add = bench::run_command(
        &o.progs,
        load,
        s,
        GEOADD_ROW,
        &words("geoadd {g}add 13.__rand_int__ 38.__rand_int__ m:__rand_int__"),
    );
    let _ = s.flush();
    let search = preload_geo_grid(s).and_then(|_| {
        bench::run_command(
            &o.progs,
            load,
            s,
            GEOSEARCH_ROW,
            &words("geosearch {g}grid fromlonlat 13.0505 38.0505 byradius 500 m asc count 10"),
        )
    });
    vec![(GEOADD_ROW.to_string(), add), (GEOSEARCH_ROW.to_string(), search)]
}

fn preload_geo_grid(s: &Server) -> Result<(), String> {
    let mut c = s.client()?;
    for i in 0..100 {
        let mut cmd: Vec<String> = vec!["GEOADD".into(), "{g}grid".into()];
        for j in 0..100 {
            cmd.push(format!("{:.3}", 13.0 + f64::from(i) * 0.001));
            cmd.push(format!("{:.3}", 38.0 + f64::from(j) * 0.001));
            cmd.push(format!("p{i}:{j}"));
        }
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        if let crate::resp::Value::Error(e) = c.call_str(&args)? {
            return Err(format!("GEOADD preload on {}: {e}", s.kind.label()));
        }
    }
    Ok(())
}

/// Each EVALSHA with ARGV 2 1 2 pushes 3 elements and adds 5: the list must
/// hold 3 elements per 5 counted, and at least `n` calls' worth (redis-benchmark
/// may send a few more than `-n` when pipelining, never fewer).
fn check_seed_key(s: &Server, n: u64) -> Result<(), String> {
    let mut c = s.client()?;
    let num = |v: crate::resp::Value| v.as_text().and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
    let len = num(c.call_str(&["LLEN", "{s}list"])?);
    let sum = num(c.call_str(&["GET", "{s}sum"])?);
    if len % 3 != 0 || len / 3 * 5 != sum || len < 3 * n {
        return Err(format!(
            "after {n} EVALSHA: LLEN {{s}}list = {len}, {{s}}sum = {sum}; expected 3 elements per 5 counted and at least {} elements",
            3 * n
        ));
    }
    Ok(())
}

fn per_core(o: &Opts) -> Result<(String, bool), String> {
    eprogress(&format!(
        "per-core: starting moonshard --shards {} and redis-server on CPUs {}",
        o.shards, o.server_cpus
    ));
    let moon = Server::start(&o.progs, Kind::Moonshard, &o.server_cpus, o.shards)?;
    let redis = Server::start(&o.progs, Kind::Redis, &o.server_cpus, 1)?;
    let shas = [seed_sha(&moon), seed_sha(&redis)];
    let mut cells: BTreeMap<String, Cell> = BTreeMap::new();
    let mut order = Vec::new();
    for round in 0..o.rounds {
        for &p in &o.pipelines {
            let pair: [(&Server, &Result<String, String>); 2] = if round % 2 == 0 {
                [(&moon, &shas[0]), (&redis, &shas[1])]
            } else {
                [(&redis, &shas[1]), (&moon, &shas[0])]
            };
            for (s, sha) in pair {
                eprogress(&format!("per-core: round {}/{}, -P {p}, {}", round + 1, o.rounds, s.kind.label()));
                one_pass(o, s, p, sha, &mut cells, &mut order);
            }
        }
    }
    let correctness = seed_correctness(o, &moon, &redis);
    drop((moon, redis));
    Ok(per_core_report(o, &cells, &order, correctness))
}

/// Our own generator's seed workload over tags on every slot, with the
/// end-of-run atomicity check, once per server.
fn seed_correctness(o: &Opts, moon: &Server, redis: &Server) -> Vec<(Kind, Result<String, String>)> {
    [moon, redis]
        .iter()
        .map(|s| {
            let _ = s.flush();
            let args: Vec<String> = format!(
                "-p {} -w seed -c {} -P 16 -n {} --threads 1 --quiet --timeout 30",
                s.port,
                o.clients,
                (o.requests / 4).max(1000)
            )
            .split(' ')
            .map(String::from)
            .collect();
            let res = crate::cli::run_parsed(&args).and_then(|r| {
                let v = r.verification.as_ref().map(|v| (v.lists_checked, v.mismatches)).unwrap_or((0, 0));
                let line = format!(
                    "{} EVALSHA calls over {} slot-spread tags, {} errors, {} list/counter mismatches, {:.0} req/s",
                    r.result.replies,
                    v.0,
                    r.result.failures(),
                    v.1,
                    r.result.throughput()
                );
                if r.clean() {
                    Ok(line)
                } else {
                    Err(format!("{line}; first error: {}", r.result.first_error.clone().unwrap_or_default()))
                }
            });
            (s.kind, res)
        })
        .collect()
}

fn per_core_report(
    o: &Opts,
    cells: &BTreeMap<String, Cell>,
    order: &[String],
    correctness: Vec<(Kind, Result<String, String>)>,
) -> (String, bool) {
    let mut md = format!(
        "## Per core: moonshard --shards {} vs redis-server\n\nredis-benchmark `-c {} -n {} -r {}`, {} round(s), servers alternated. \
         Ratio = median over rounds of moonshard/redis-server requests per second.\n\n",
        o.shards, o.clients, o.requests, o.keyspace, o.rounds
    );
    let mut errors = Vec::new();
    let mut tests: Vec<String> = Vec::new();
    let mut series: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for &p in &o.pipelines {
        let _ =
            writeln!(md, "### -P {p}\n\n| test | moonshard req/s | redis-server req/s | ratio |\n|---|---:|---:|---:|");
        let mut ratios = Vec::new();
        let mut values = Vec::new();
        for key in order.iter().filter(|k| k.ends_with(&format!("\u{0}{p}"))) {
            let name = key.split('\u{0}').next().unwrap_or_default().to_string();
            let cell = &cells[key];
            let (m, r) = cell.medians();
            let ratio = cell.ratio();
            let fmt = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
            let rt = match ratio {
                Some(x) if x < 0.8 => format!("**{x:.2}**"),
                Some(x) => format!("{x:.2}"),
                None => "ERROR".into(),
            };
            let _ = writeln!(md, "| {name} | {} | {} | {rt} |", fmt(m), fmt(r));
            errors.extend(cell.errors().into_iter().map(|e| format!("{name} -P {p}: {e}")));
            ratios.extend(ratio);
            if !tests.contains(&name) {
                tests.push(name.clone());
            }
            values.push((name, ratio));
        }
        let g = geomean(&ratios).map(|g| format!("{g:.3}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            md,
            "\nGeometric mean of ratios at -P {p}: **{g}** over {} test(s) without errors.\n",
            ratios.len()
        );
        series.push((
            format!("-P {p} (geomean {g})"),
            tests.iter().map(|t| values.iter().find(|(n, _)| n == t).and_then(|(_, r)| *r)).collect(),
        ));
    }
    let svg = svg::ratio_chart(&format!("moonshard --shards {} / redis-server, per core", o.shards), &tests, &series);
    let _ = std::fs::write(o.out.join("ratios.svg"), svg);
    md += "![ratios](ratios.svg)\n\n### Correctness under load (loadtest seed workload, -P 16)\n\n";
    for (k, r) in &correctness {
        match r {
            Ok(line) => {
                let _ = writeln!(md, "- {}: {line}", k.label());
            }
            Err(e) => {
                let _ = writeln!(md, "- {}: **FAILED** {e}", k.label());
                errors.push(format!("seed workload on {}: {e}", k.label()));
            }
        }
    }
    md += "\n";
    let clean = errors.is_empty();
    if !clean {
        md += "### Errors\n\n";
        errors.sort();
        errors.dedup();
        for e in errors.iter().take(200) {
            let _ = writeln!(md, "- {e}");
        }
        md += "\n";
    }
    (md, clean)
}

fn scaling(o: &Opts) -> Result<String, String> {
    let all = format!("0-{}", usable_cpus() - 1);
    let cpus = o.scale_server_cpus.clone().unwrap_or_else(|| {
        let client: Vec<&str> = o.client_cpus.split(',').collect();
        let rest: Vec<String> =
            (0..usable_cpus()).map(|c| c.to_string()).filter(|c| !client.contains(&c.as_str())).collect();
        if rest.is_empty() || server::cpu_count(&o.client_cpus) != Some(client.len()) {
            all.clone()
        } else {
            rest.join(",")
        }
    });
    let threads = server::cpu_count(&o.client_cpus).unwrap_or(1);
    let load = Load {
        clients: o.clients,
        requests: o.requests,
        keyspace: o.keyspace,
        pipeline: o.scale_pipeline,
        threads,
        client_cpus: o.client_cpus.clone(),
    };
    let groups: Vec<&str> = o.scale_tests.iter().map(String::as_str).collect();
    let measure = |s: &Server| -> BTreeMap<String, Vec<f64>> {
        let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for _ in 0..o.rounds {
            let _ = s.flush();
            for (name, r) in bench::run_groups(&o.progs, &load, s, &groups) {
                out.entry(name.clone()).or_default();
                if let Ok(v) = r {
                    out.entry(name).or_default().push(v);
                }
            }
        }
        out
    };
    eprogress(&format!("scaling: redis-server on CPUs {cpus}"));
    let redis = {
        let s = Server::start(&o.progs, Kind::Redis, &cpus, 1)?;
        measure(&s)
    };
    let shards: Vec<usize> = (1..=o.max_shards).collect();
    let mut moon: Vec<BTreeMap<String, Vec<f64>>> = Vec::new();
    for &k in &shards {
        eprogress(&format!("scaling: moonshard --shards {k} on CPUs {cpus}"));
        let s = Server::start(&o.progs, Kind::Moonshard, &cpus, k)?;
        moon.push(measure(&s));
    }
    let mut md = format!(
        "## Scaling: moonshard --shards 1..{} vs redis-server\n\nServers on CPUs `{cpus}`, redis-benchmark on CPUs `{}` with `--threads {threads}`, \
         `-c {} -n {} -r {} -P {}`, median of {} round(s). Machine: {} CPUs (on a small machine the generator competes for cores).\n\n",
        o.max_shards,
        o.client_cpus,
        o.clients,
        o.requests,
        o.keyspace,
        o.scale_pipeline,
        o.rounds,
        usable_cpus()
    );
    md += "| test | redis-server |";
    for k in &shards {
        let _ = write!(md, " shards {k} |");
    }
    md += "\n|---|---:|";
    md += &"---:|".repeat(shards.len());
    md += "\n";
    let mut lines = Vec::new();
    for (name, rv) in &redis {
        let r = median(&mut rv.clone());
        let vals: Vec<Option<f64>> = moon.iter().map(|m| m.get(name).and_then(|v| median(&mut v.clone()))).collect();
        let cell = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "ERROR".into());
        let _ = write!(md, "| {name} | {} |", cell(r));
        for v in &vals {
            let ratio = match (v, r) {
                (Some(v), Some(r)) if r > 0.0 => format!(" ({:.2}x)", v / r),
                _ => String::new(),
            };
            let _ = write!(md, " {}{ratio} |", cell(*v));
        }
        md += "\n";
        lines.push((name.clone(), vals, r));
    }
    let _ = std::fs::write(
        o.out.join("scaling.svg"),
        svg::scaling_chart("moonshard throughput by shard count", &shards, &lines),
    );
    md += "\n![scaling](scaling.svg)\n\n";
    Ok(md)
}

fn memory(o: &Opts) -> Result<String, String> {
    let load = Load {
        clients: o.clients,
        requests: o.memory_keys.saturating_mul(3),
        keyspace: o.memory_keys,
        pipeline: 16,
        threads: 1,
        client_cpus: o.client_cpus.clone(),
    };
    let mut md = format!(
        "## Memory: {} keys\n\nLoaded with `redis-benchmark -t set -r {} -n {} -d 16 -P 16` (keys `key:<12 digits>`, 16-byte values). \
         Bytes per key = (RSS after - RSS before) / DBSIZE; used_memory from INFO memory where reported.\n\n\
         | server | keys | RSS before | RSS after | RSS bytes/key | used_memory | used_memory bytes/key |\n|---|---:|---:|---:|---:|---:|---:|\n",
        o.memory_keys, o.memory_keys, load.requests
    );
    let mut per_key = Vec::new();
    for (kind, shards) in [(Kind::Moonshard, o.shards), (Kind::Redis, 1)] {
        eprogress(&format!("memory: {}", kind.label()));
        let s = Server::start(&o.progs, kind, &o.server_cpus, shards)?;
        let before = s.rss().unwrap_or(0);
        let outcome = bench::run_groups(&o.progs, &load, &s, &["set"]);
        let failed: Vec<String> = outcome.iter().filter_map(|(_, r)| r.as_ref().err().cloned()).collect();
        let keys = s.dbsize().unwrap_or(0);
        let after = s.rss().unwrap_or(0);
        let used = s.used_memory();
        let bpk = |b: u64| {
            if keys > 0 {
                format!("{:.1}", b as f64 / keys as f64)
            } else {
                "-".into()
            }
        };
        let rss_pk = after.saturating_sub(before);
        per_key.push((kind, keys, rss_pk));
        let _ = writeln!(
            md,
            "| {} | {keys} | {before} | {after} | {} | {} | {} |{}",
            kind.label(),
            bpk(rss_pk),
            used.map(|u| u.to_string()).unwrap_or_else(|| "n/a".into()),
            used.map(bpk).unwrap_or_else(|| "-".into()),
            if failed.is_empty() { String::new() } else { format!(" load errors: {}", failed.join("; ")) }
        );
    }
    if let [(_, mk, mb), (_, rk, rb)] = per_key[..] {
        if mk > 0 && rk > 0 && rb > 0 {
            let _ = writeln!(
                md,
                "\nRSS bytes per key, moonshard / redis-server: **{:.2}**",
                (mb as f64 / mk as f64) / (rb as f64 / rk as f64)
            );
        }
    }
    md += "\n";
    Ok(md)
}

/// The load generator must not be the bottleneck: against the same
/// redis-server, with the same connections, pipeline and CPUs, compare what
/// loadtest and redis-benchmark achieve for SET and GET.
fn generator(o: &Opts) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let threads = server::cpu_count(&o.client_cpus).unwrap_or(1);
    eprogress("generator: redis-server for loadtest vs redis-benchmark");
    let redis = Server::start(&o.progs, Kind::Redis, &o.server_cpus, 1)?;
    let mut md = format!(
        "## Load generator check: loadtest vs redis-benchmark, both against redis-server\n\n\
         Same server (CPUs `{}`), same client CPUs (`{}`), `-c {} -n {} -r {}`, {threads} client thread(s), median of {} round(s).\n\n\
         | test | pipeline | redis-benchmark req/s | loadtest req/s | loadtest / redis-benchmark |\n|---|---:|---:|---:|---:|\n",
        o.server_cpus, o.client_cpus, o.clients, o.requests, o.keyspace, o.rounds
    );
    let json = o.out.join("generator-run.json");
    for &p in &o.pipelines {
        let load = Load {
            clients: o.clients,
            requests: o.requests,
            keyspace: o.keyspace,
            pipeline: p,
            threads,
            client_cpus: o.client_cpus.clone(),
        };
        for test in ["set", "get"] {
            let (mut theirs, mut ours) = (Vec::new(), Vec::new());
            let mut problems = Vec::new();
            for _ in 0..o.rounds {
                match bench::run_groups(&o.progs, &load, &redis, &[test]).pop() {
                    Some((_, Ok(v))) => theirs.push(v),
                    Some((_, Err(e))) => problems.push(format!("redis-benchmark: {e}")),
                    None => {}
                }
                let out = o
                    .progs
                    .pinned(&o.client_cpus, &exe)
                    .args(["-p", &redis.port.to_string(), "-c", &o.clients.to_string(), "-n", &o.requests.to_string()])
                    .args([
                        "-r",
                        &o.keyspace.to_string(),
                        "-P",
                        &p.to_string(),
                        "-w",
                        test,
                        "--threads",
                        &threads.to_string(),
                    ])
                    .args(["-q", "--json"])
                    .arg(&json)
                    .output();
                let text = std::fs::read_to_string(&json).unwrap_or_default();
                match (out, json_number(&text, "requests_per_sec"), json_number(&text, "errors")) {
                    (Ok(st), Some(rps), Some(errs)) if st.status.success() && errs == 0.0 => ours.push(rps),
                    (out, ..) => problems.push(format!("loadtest failed: {:?} {text}", out.map(|o| o.status))),
                }
            }
            let (t, u) = (median(&mut theirs), median(&mut ours));
            let f = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "ERROR".into());
            let ratio = match (u, t) {
                (Some(u), Some(t)) if t > 0.0 => format!("{:.2}", u / t),
                _ => "-".into(),
            };
            let _ = writeln!(md, "| {} | {p} | {} | {} | {ratio} |", test.to_uppercase(), f(t), f(u));
            for pr in problems {
                let _ = writeln!(md, "\n- {}", pr.replace('\n', " "));
            }
        }
    }
    let _ = std::fs::remove_file(&json);
    md += "\n";
    Ok(md)
}

/// The number after `"name": ` in loadtest's JSON report.
fn json_number(json: &str, name: &str) -> Option<f64> {
    let at = json.find(&format!("\"{name}\": "))? + name.len() + 4;
    let text: String = json[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_numbers() {
        assert_eq!(json_number("{\"errors\": 0,\n\"requests_per_sec\": 12.5}", "requests_per_sec"), Some(12.5));
        assert_eq!(json_number("{}", "errors"), None);
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0]), Some(2.5));
        assert!((geomean(&[2.0, 0.5]).unwrap() - 1.0).abs() < 1e-12);
        let cell = Cell { moon: vec![Ok(110.0), Ok(90.0), Ok(100.0)], redis: vec![Ok(100.0), Ok(100.0), Ok(100.0)] };
        assert_eq!(cell.ratio(), Some(1.0));
        let bad = Cell { moon: vec![Err("x".into())], redis: vec![Ok(1.0)] };
        assert_eq!(bad.ratio(), None);
        assert_eq!(bad.errors().len(), 1);
    }

    #[test]
    fn quick_shrinks_the_run() {
        let o = parse(&["--quick".to_string()]).unwrap().unwrap();
        assert_eq!((o.requests, o.rounds, o.memory_keys), (20_000, 1, 100_000));
        assert!(parse(&["--rounds".into(), "0".into()]).is_err());
    }
}
