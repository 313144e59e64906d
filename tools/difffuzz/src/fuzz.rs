//! The run: start both servers, generate sequences, execute them on both,
//! judge every reply pair, minimize what differs, watch for crashes, hangs
//! and RSS growth, and collect the statistics.

use crate::conn::{Conn, ReadError, Reply};
use crate::docs::{self, Table};
use crate::gen::{Command, Gen, Options, Step};
use crate::minimize;
use crate::resp::{self, Value};
use crate::rules;
use crate::server::{Launch, Server};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// Stop after this long (checked between sequences).
    pub seconds: Option<u64>,
    /// Stop after this many commands (checked between sequences).
    pub commands: Option<u64>,
    pub moonshard: Launch,
    pub redis: Launch,
    /// No reply within this long is a hang.
    pub hang: Duration,
    pub gen: Options,
    pub minimize: bool,
    /// Replays one minimization may spend.
    pub max_replays: usize,
    /// Growth of moonshard's RSS (measured after FLUSHALL) that is reported as a finding.
    pub rss_limit_kb: u64,
    /// Print each finding as it happens.
    pub verbose: bool,
    /// Where to write the markdown report (also printed).
    pub report: Option<PathBuf>,
}

impl Config {
    /// Defaults around a moonshard binary; redis-server from the PATH.
    pub fn new(moonshard_bin: PathBuf, seed: u64) -> Config {
        Config {
            seed,
            seconds: None,
            commands: Some(2000),
            moonshard: Launch::Moonshard { bin: moonshard_bin, flags: vec!["--shards".into(), "4".into()] },
            redis: Launch::Redis { bin: "redis-server".into(), flags: Vec::new() },
            hang: Duration::from_secs(5),
            gen: Options::default(),
            minimize: true,
            max_replays: 400,
            rss_limit_kb: 128 * 1024,
            verbose: false,
            report: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FindingKind {
    Difference,
    Crash,
    Hang,
    RssGrowth,
    NotReproducible,
}

impl FindingKind {
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Difference => "difference",
            FindingKind::Crash => "crash",
            FindingKind::Hang => "hang",
            FindingKind::RssGrowth => "RSS growth",
            FindingKind::NotReproducible => "not reproducible",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Finding {
    pub kind: FindingKind,
    pub cause: String,
    pub count: u64,
    pub first_sequence: u64,
    /// The (minimized) reproduction.
    pub repro: Vec<Step>,
    pub minimized: bool,
    pub replays: usize,
    /// The differing command and the two raw replies (for differences).
    pub command: Vec<Vec<u8>>,
    pub ours: Vec<u8>,
    pub theirs: Vec<u8>,
    pub note: String,
}

#[derive(Default, Debug, Clone)]
pub struct Counters {
    pub commands: u64,
    /// Replies that differed in bytes but are equal under a compare rule.
    pub ruled: BTreeMap<&'static str, u64>,
    /// Documented differences (accept rules).
    pub filtered: BTreeMap<&'static str, u64>,
    /// Sequences stopped early because a ruled/filtered write left the states apart.
    pub diverged: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Default)]
pub struct RssStats {
    pub samples: u64,
    pub baseline_kb: Option<u64>,
    pub last_kb: Option<u64>,
    pub peak_kb: Option<u64>,
    pub redis_baseline_kb: Option<u64>,
    pub redis_last_kb: Option<u64>,
    /// moonshard's start count when the baseline was taken (a restart resets it).
    pub starts: u32,
    /// (sequence, moonshard KiB, redis-server KiB) for every sample.
    pub trace: Vec<(u64, u64, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub seed: u64,
    pub elapsed: Duration,
    pub sequences: u64,
    pub steps: BTreeMap<&'static str, u64>,
    pub counters: Counters,
    pub findings: Vec<Finding>,
    pub skipped: Vec<(&'static str, Vec<String>, &'static str)>,
    pub excluded: Vec<String>,
    pub not_declared: Vec<String>,
    pub drawn: BTreeMap<String, u64>,
    pub eligible: usize,
    pub rss: RssStats,
    pub replays: u64,
    pub restarts: u32,
}

impl Summary {
    /// Findings that are not explained by a rule: every difference, crash, hang and RSS growth.
    pub fn unexplained(&self) -> usize {
        self.findings.len()
    }
}

// -------------------------------------------------------------- execution

#[derive(Clone, Debug)]
pub struct DiffInfo {
    pub step: usize,
    pub name: String,
    pub cause: String,
    pub argv: Vec<Vec<u8>>,
    pub ours: Vec<u8>,
    pub theirs: Vec<u8>,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Clean,
    /// A ruled or documented difference on a write: the states may now
    /// differ, so the sequence stopped (not a finding).
    Diverged(&'static str),
    Diff(Box<DiffInfo>),
    Crash {
        who: &'static str,
        step: usize,
        status: String,
        log: String,
    },
    Hang {
        who: &'static str,
        step: usize,
        argv: Vec<Vec<u8>>,
    },
    /// The harness could not set up (e.g. connect): not a finding by itself.
    Setup(String),
}

enum Verdict {
    Same,
    Ruled(&'static str),
    Filtered(&'static str),
    Differ { name: String, argv: Vec<Vec<u8>>, ours: Vec<u8>, theirs: Vec<u8>, cause: String },
}

pub struct Exec<'t> {
    pub ms: Server,
    pub rs: Server,
    pub table: &'t Table,
    pub hang: Duration,
    pub restarts: u32,
}

/// How many replies a command gets: the unsubscribe family answers once
/// per channel named (once when none is), unless the first is an error.
fn replies_expected(table: &Table, cmd: &Command) -> usize {
    match table.resolve(&cmd.argv).as_str() {
        "unsubscribe" | "punsubscribe" | "sunsubscribe" => cmd.argv.len().saturating_sub(1).max(1),
        _ => 1,
    }
}

/// The replies to one step, command by command; reading stops at the first failure.
type StepReplies = Vec<Result<Vec<Reply>, ReadError>>;

fn cause_of(name: &str, ours: &Value, theirs: &Value) -> String {
    format!("{}: moonshard {} / redis {}", name.to_uppercase(), ours.describe(), theirs.describe())
}

fn is_write(table: &Table, name: &str) -> bool {
    name.starts_with("eval")
        || name.starts_with("fcall")
        || matches!(name, "exec" | "function|load" | "function|restore")
        || table.get(name).is_some_and(|c| c.has_flag("write"))
}

impl<'t> Exec<'t> {
    fn connect_both(&mut self) -> Result<(Conn, Conn), Outcome> {
        let a = match Conn::connect(self.ms.port) {
            Ok(c) => c,
            Err(e) => return Err(self.dead_or("moonshard", 0, format!("connect: {e}"))),
        };
        let b = match Conn::connect(self.rs.port) {
            Ok(c) => c,
            Err(e) => return Err(self.dead_or("redis-server", 0, format!("connect: {e}"))),
        };
        Ok((a, b))
    }

    /// A crash outcome if `who` died (restarting it), else a setup failure.
    fn dead_or(&mut self, who: &'static str, step: usize, what: String) -> Outcome {
        let server = if who == "moonshard" { &mut self.ms } else { &mut self.rs };
        if !server.alive() {
            let status = server.exit_status().unwrap_or_else(|| "gone".into());
            let log = server.log_tail();
            self.restart(who);
            return Outcome::Crash { who, step, status, log };
        }
        Outcome::Setup(format!("{who}: {what}"))
    }

    /// Restarts `who` (hung or dead) and the other server with it: what
    /// lives beyond the keyspace (ACL LOG, SLOWLOG, statistics) must start
    /// alike on both, or later replies differ for that alone (a restart of
    /// moonshard alone left redis-server's ACL LOG longer).
    pub fn restart(&mut self, who: &str) {
        for (name, server) in [("moonshard", &mut self.ms), ("redis-server", &mut self.rs)] {
            if server.can_restart() {
                self.restarts += 1;
                if let Err(e) = server.restart() {
                    eprintln!("difffuzz: cannot restart {name} (after {who}): {e}");
                }
            }
        }
    }

    fn setup(&mut self, a: &mut Conn, b: &mut Conn) -> Result<(), Outcome> {
        for cmd in [&["FLUSHALL"][..], &["SCRIPT", "FLUSH"], &["FUNCTION", "FLUSH"]] {
            let args: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
            for (who, conn) in [("moonshard", &mut *a), ("redis-server", &mut *b)] {
                match conn.call(&args, self.hang) {
                    Ok(_) => {}
                    Err(ReadError::Timeout) => {
                        self.restart(who);
                        return Err(Outcome::Hang {
                            who,
                            step: 0,
                            argv: cmd.iter().map(|s| s.as_bytes().to_vec()).collect(),
                        });
                    }
                    Err(e) => return Err(self.dead_or(who, 0, format!("setup {cmd:?}: {e:?}"))),
                }
            }
        }
        Ok(())
    }

    /// Runs `steps` on fresh connections after FLUSHALL; stops at the first
    /// finding or divergence.
    pub fn run(&mut self, steps: &[Step], mut counters: Option<&mut Counters>) -> Outcome {
        let (mut a, mut b) = match self.connect_both() {
            Ok(p) => p,
            Err(o) => return o,
        };
        if let Err(o) = self.setup(&mut a, &mut b) {
            return o;
        }
        let mut queued: Option<Vec<Command>> = None;
        // Whether each connection is inside MULTI (commands answer QUEUED once).
        let (mut multi_a, mut multi_b) = (false, false);
        for (si, step) in steps.iter().enumerate() {
            let mut bytes = Vec::new();
            for c in &step.cmds {
                bytes.extend(resp::encode_command(&c.argv));
            }
            let sent_a = a.send(&bytes).is_ok();
            let sent_b = b.send(&bytes).is_ok();
            let ra = if sent_a { self.read_step(&mut a, step, &mut multi_a) } else { vec![Err(ReadError::Closed)] };
            let rb = if sent_b { self.read_step(&mut b, step, &mut multi_b) } else { vec![Err(ReadError::Closed)] };
            if let Some(c) = counters.as_deref_mut() {
                c.commands += step.cmds.len() as u64;
            }
            let mut reconnect = false;
            for (i, cmd) in step.cmds.iter().enumerate() {
                let (xs, ys) = match (ra.get(i), rb.get(i)) {
                    (Some(Ok(x)), Some(Ok(y))) => (x, y),
                    (Some(Err(ReadError::Timeout)), Some(Err(ReadError::Timeout))) => {
                        // Both wait: the generator asked for something that blocks (a tool bug).
                        self.restart("moonshard");
                        self.restart("redis-server");
                        return Outcome::Hang { who: "both servers", step: si, argv: cmd.argv.clone() };
                    }
                    (Some(Err(ea)), other) => {
                        if let Some(o) = self.failure("moonshard", ea, si, cmd) {
                            return o;
                        }
                        if let Some(Err(eb)) = other {
                            if let Some(o) = self.failure("redis-server", eb, si, cmd) {
                                return o;
                            }
                            // Both closed the connection at the same command.
                            reconnect = true;
                            break;
                        }
                        let name = self.table.resolve(&cmd.argv);
                        let theirs = other
                            .and_then(|r| r.as_ref().ok())
                            .and_then(|r| r.first())
                            .map(|r| r.raw.clone())
                            .unwrap_or_default();
                        return Outcome::Diff(Box::new(DiffInfo {
                            step: si,
                            cause: format!("{}: moonshard closed the connection", name.to_uppercase()),
                            name,
                            argv: cmd.argv.clone(),
                            ours: b"(connection closed)".to_vec(),
                            theirs,
                        }));
                    }
                    (_, Some(Err(eb))) => {
                        if let Some(o) = self.failure("redis-server", eb, si, cmd) {
                            return o;
                        }
                        let name = self.table.resolve(&cmd.argv);
                        return Outcome::Diff(Box::new(DiffInfo {
                            step: si,
                            cause: format!("{}: redis-server closed the connection", name.to_uppercase()),
                            name,
                            argv: cmd.argv.clone(),
                            ours: ra
                                .get(i)
                                .and_then(|r| r.as_ref().ok())
                                .and_then(|r| r.first())
                                .map(|r| r.raw.clone())
                                .unwrap_or_default(),
                            theirs: b"(connection closed)".to_vec(),
                        }));
                    }
                    _ => break,
                };
                let (Some(x), Some(y)) = (xs.first(), ys.first()) else { break };
                let name = self.table.resolve(&cmd.argv);
                let in_exec = if name == "exec" { queued.take() } else { None };
                let mut verdict = self.judge(&name, cmd, x, y, in_exec.as_deref());
                if xs.len() != ys.len() {
                    if matches!(verdict, Verdict::Same | Verdict::Ruled(_)) {
                        verdict = Verdict::Differ {
                            name: name.clone(),
                            argv: cmd.argv.clone(),
                            ours: xs.iter().flat_map(|r| r.raw.clone()).collect(),
                            theirs: ys.iter().flat_map(|r| r.raw.clone()).collect(),
                            cause: format!(
                                "{}: moonshard {} replies / redis {}",
                                name.to_uppercase(),
                                xs.len(),
                                ys.len()
                            ),
                        };
                    }
                } else {
                    for (xe, ye) in xs.iter().zip(ys).skip(1) {
                        if matches!(verdict, Verdict::Differ { .. }) {
                            break;
                        }
                        match self.judge(&name, cmd, xe, ye, None) {
                            Verdict::Same => {}
                            v => verdict = v,
                        }
                    }
                }
                // Track MULTI by the reference's replies.
                match name.as_str() {
                    "multi" if y.value == Value::Simple(b"OK".to_vec()) => queued = Some(Vec::new()),
                    "exec" | "discard" | "reset" => queued = None,
                    _ => {
                        if let Some(q) = queued.as_mut() {
                            if y.value == Value::Simple(b"QUEUED".to_vec()) {
                                q.push(cmd.clone());
                            }
                        }
                    }
                }
                match verdict {
                    Verdict::Same => {}
                    Verdict::Ruled(id) | Verdict::Filtered(id) => {
                        if let Some(c) = counters.as_deref_mut() {
                            if matches!(verdict, Verdict::Ruled(_)) {
                                *c.ruled.entry(id).or_default() += 1;
                            } else {
                                *c.filtered.entry(id).or_default() += 1;
                            }
                        }
                        let queued_write =
                            queued.as_ref().is_some_and(|_| y.value == Value::Simple(b"QUEUED".to_vec()));
                        if x.raw != y.raw && (is_write(self.table, &name) || queued_write) {
                            if let Some(c) = counters.as_deref_mut() {
                                *c.diverged.entry(id).or_default() += 1;
                            }
                            return Outcome::Diverged(id);
                        }
                    }
                    Verdict::Differ { name, argv, ours, theirs, cause } => {
                        return Outcome::Diff(Box::new(DiffInfo { step: si, name, cause, argv, ours, theirs }));
                    }
                }
            }
            if reconnect {
                match self.connect_both() {
                    Ok((na, nb)) => {
                        a = na;
                        b = nb;
                        queued = None;
                    }
                    Err(o) => return o,
                }
            }
        }
        Outcome::Clean
    }

    fn read_step(&self, conn: &mut Conn, step: &Step, in_multi: &mut bool) -> StepReplies {
        let mut out = Vec::with_capacity(step.cmds.len());
        // rules.rs `SLOW`: commands slow by design get a longer deadline.
        let names: Vec<String> = step.cmds.iter().map(|c| self.table.resolve(&c.argv)).collect();
        let deadline = rules::reply_deadline(&names, self.hang);
        for cmd in &step.cmds {
            let mut replies = Vec::new();
            let mut failed = None;
            let name = self.table.resolve(&cmd.argv);
            let expected = if *in_multi && !matches!(name.as_str(), "exec" | "discard" | "multi" | "reset") {
                1
            } else {
                replies_expected(self.table, cmd)
            };
            for k in 0..expected {
                match conn.read(deadline) {
                    Ok(r) => {
                        let error = r.value.error().is_some();
                        replies.push(r);
                        if k == 0 && error {
                            break;
                        }
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if let Some(first) = replies.first() {
                match name.as_str() {
                    "multi" if first.value == Value::Simple(b"OK".to_vec()) => *in_multi = true,
                    "exec" | "discard" | "reset" => *in_multi = false,
                    _ => {}
                }
            }
            match failed {
                Some(e) => {
                    out.push(Err(e));
                    break;
                }
                None => out.push(Ok(replies)),
            }
        }
        out
    }

    /// A crash or hang outcome for a failed read (None: the peer only closed).
    fn failure(&mut self, who: &'static str, e: &ReadError, step: usize, cmd: &Command) -> Option<Outcome> {
        let server = if who == "moonshard" { &mut self.ms } else { &mut self.rs };
        // Give a dying process a moment to be reaped.
        for _ in 0..20 {
            if !server.alive() {
                break;
            }
            if !matches!(e, ReadError::Closed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if !server.alive() {
            let status = server.exit_status().unwrap_or_else(|| "gone".into());
            let log = server.log_tail();
            self.restart(who);
            return Some(Outcome::Crash { who, step, status, log });
        }
        match e {
            ReadError::Timeout => {
                self.restart(who);
                Some(Outcome::Hang { who, step, argv: cmd.argv.clone() })
            }
            ReadError::Protocol(p) => Some(Outcome::Diff(Box::new(DiffInfo {
                step,
                name: self.table.resolve(&cmd.argv),
                cause: format!("{}: {who} sent bytes that are not RESP", self.table.resolve(&cmd.argv).to_uppercase()),
                argv: cmd.argv.clone(),
                ours: p.clone().into_bytes(),
                theirs: Vec::new(),
            }))),
            ReadError::Closed => None,
        }
    }

    fn judge_value(&self, name: &str, argv: &[Vec<u8>], x: &Value, y: &Value) -> Verdict {
        if x == y {
            return Verdict::Same;
        }
        let cmd = self.table.get(name);
        let (cmp, rule) = rules::compare_for(cmd, argv);
        if cmp != rules::Compare::Exact && rules::equal(cmp, x, y) {
            return Verdict::Ruled(rule.map(|r| r.id).unwrap_or("?"));
        }
        if let Some(acc) = rules::accept(name, x, y) {
            return Verdict::Filtered(acc.id);
        }
        Verdict::Differ {
            name: name.to_string(),
            argv: argv.to_vec(),
            ours: resp::to_bytes(x),
            theirs: resp::to_bytes(y),
            cause: cause_of(name, x, y),
        }
    }

    fn judge(&self, name: &str, cmd: &Command, x: &Reply, y: &Reply, queued: Option<&[Command]>) -> Verdict {
        if x.raw == y.raw {
            return Verdict::Same;
        }
        if let (Some(q), Some(xs), Some(ys)) = (queued, exec_items(&x.value), exec_items(&y.value)) {
            if xs.len() == q.len() && ys.len() == q.len() {
                let mut result = Verdict::Same;
                for ((qc, xi), yi) in q.iter().zip(xs).zip(ys) {
                    let qn = self.table.resolve(&qc.argv);
                    match self.judge_value(&qn, &qc.argv, xi, yi) {
                        Verdict::Same => {}
                        Verdict::Differ { name, argv, ours, theirs, cause } => {
                            return Verdict::Differ { name: name.clone(), argv, ours, theirs, cause }
                        }
                        v => {
                            // A write that differed under a rule may have left
                            // the two keyspaces apart: the later elements of
                            // this EXEC are its after-effects (the sequence
                            // ends after it, as after a write outside MULTI).
                            if xi != yi && is_write(self.table, &qn) {
                                return v;
                            }
                            result = v;
                        }
                    }
                }
                return result;
            }
        }
        match self.judge_value(name, &cmd.argv, &x.value, &y.value) {
            Verdict::Differ { name, argv, cause, .. } => {
                Verdict::Differ { name, argv, ours: x.raw.clone(), theirs: y.raw.clone(), cause }
            }
            v => v,
        }
    }
}

fn exec_items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

// -------------------------------------------------------------------- run

fn payloads(redis: &mut Conn, gen: &mut Gen, hang: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let _ = redis.call(&[b"FLUSHALL"], hang);
    let seeds = gen.seed_steps(true);
    let mut keys = BTreeSet::new();
    for s in &seeds {
        for c in &s.cmds {
            let args: Vec<&[u8]> = c.argv.iter().map(|a| a.as_slice()).collect();
            let _ = redis.call(&args, hang);
            if let Some(k) = c.argv.get(1) {
                if c.argv[0] != b"XGROUP" && c.argv[0] != b"XREADGROUP" {
                    keys.insert(k.clone());
                }
            }
        }
    }
    for k in keys {
        if let Ok(r) = redis.call(&[b"DUMP", &k], hang) {
            if let Value::Bulk(p) = r.value {
                out.push(p);
            }
        }
    }
    let _ = redis.call(&[b"FLUSHALL"], hang);
    out
}

/// Runs the fuzzer as configured (on a thread with a large stack: replies
/// and Lua tables nest thousands of levels deep).
pub fn run(cfg: &Config) -> Result<Summary, String> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("difffuzz".into())
            .stack_size(1 << 30)
            .spawn_scoped(s, || run_inner(cfg))
            .map_err(|e| format!("cannot start the fuzzing thread: {e}"))?
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn run_inner(cfg: &Config) -> Result<Summary, String> {
    let start = Instant::now();
    let ms = Server::start("moonshard", cfg.moonshard.clone())?;
    let rs = Server::start("redis-server", cfg.redis.clone())?;
    let mut redis_conn = Conn::connect(rs.port).map_err(|e| format!("connect redis-server: {e}"))?;
    let version = redis_conn
        .call(&[b"INFO", b"server"], cfg.hang)
        .ok()
        .and_then(|r| r.value.bytes().map(|b| String::from_utf8_lossy(b).into_owned()))
        .unwrap_or_default();
    if !version.contains("redis_version:7.0.") {
        eprintln!(
            "difffuzz: warning: the reference is not redis-server 7.0 ({})",
            version.lines().nth(1).unwrap_or("?")
        );
    }
    let table = Table::load(&mut redis_conn)?;
    let declared = docs::declared(&mut Conn::connect(ms.port).map_err(|e| format!("connect moonshard: {e}"))?)?;
    let mut gen = Gen::new(cfg.seed, &table, &declared, cfg.gen.clone());
    if gen.is_empty() {
        return Err("no command matches --only/--exclude".into());
    }
    gen.payloads = payloads(&mut redis_conn, &mut gen, cfg.hang);
    drop(redis_conn);

    let mut sum = Summary { seed: cfg.seed, eligible: gen.eligible().len(), ..Default::default() };
    for r in rules::SKIP {
        let present: Vec<String> =
            r.commands.iter().filter(|c| table.get(c).is_some()).map(|c| c.to_string()).collect();
        sum.skipped.push((r.id, present, r.reason));
    }
    sum.not_declared = table.cmds.iter().filter(|c| !declared.contains(&c.name)).map(|c| c.name.clone()).collect();
    sum.excluded = cfg.gen.exclude.clone();

    let mut exec = Exec { ms, rs, table: &table, hang: cfg.hang, restarts: 0 };
    let mut by_cause: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = cfg.seconds.map(|s| start + Duration::from_secs(s));
    let mut counters = Counters::default();

    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) || cfg.commands.is_some_and(|n| counters.commands >= n) {
            break;
        }
        let seq = gen.sequence();
        sum.sequences += 1;
        for s in &seq {
            *sum.steps.entry(s.kind.name()).or_default() += 1;
        }
        // RSS after the FLUSHALL that starts each sequence (sampled every 25 sequences).
        let outcome = exec.run(&seq, Some(&mut counters));
        if sum.sequences % 25 == 1 {
            sample_rss(&mut exec, &mut sum.rss, cfg.hang, sum.sequences);
        }
        let (kind, cause, failing_step) = match &outcome {
            Outcome::Clean | Outcome::Diverged(_) => continue,
            Outcome::Setup(e) => {
                eprintln!("difffuzz: setup failed: {e}");
                continue;
            }
            Outcome::Diff(d) => (FindingKind::Difference, d.cause.clone(), d.step),
            Outcome::Crash { who, step, log, .. } => {
                (FindingKind::Crash, format!("{who} crashed: {}", crash_line(log)), *step)
            }
            Outcome::Hang { who, step, argv } => {
                (FindingKind::Hang, format!("{who} hung on {}", table.resolve(argv).to_uppercase()), *step)
            }
        };
        if let Some(&i) = by_cause.get(&cause) {
            sum.findings[i].count += 1;
            continue;
        }
        // A hang is reported at the first reply that did not come, which
        // in a batch is not necessarily the command that hangs: a known
        // hang whose (minimized) command is in the failing step explains it.
        if let Outcome::Hang { who, .. } = &outcome {
            let step_names: Vec<String> = seq[failing_step].cmds.iter().map(|c| table.resolve(&c.argv)).collect();
            let known = sum.findings.iter().position(|f| {
                f.kind == FindingKind::Hang
                    && f.cause.starts_with(who)
                    && f.command.first().is_some_and(|_| step_names.contains(&table.resolve(&f.command)))
            });
            if let Some(i) = known {
                sum.findings[i].count += 1;
                continue;
            }
        }
        if cfg.verbose {
            eprintln!("difffuzz: sequence {}: new {}: {cause}", sum.sequences, kind.name());
        }
        let prefix: Vec<Step> = seq[..=failing_step.min(seq.len() - 1)].to_vec();
        let mut finding = Finding {
            kind,
            cause: cause.clone(),
            count: 1,
            first_sequence: sum.sequences,
            repro: prefix.clone(),
            minimized: false,
            replays: 0,
            command: Vec::new(),
            ours: Vec::new(),
            theirs: Vec::new(),
            note: String::new(),
        };
        match &outcome {
            Outcome::Diff(d) => {
                finding.command = d.argv.clone();
                finding.ours = d.ours.clone();
                finding.theirs = d.theirs.clone();
            }
            Outcome::Crash { status, log, .. } => finding.note = format!("exit: {status}\n{}", crash_excerpt(log)),
            _ => {}
        }
        if cfg.minimize {
            let target = match &outcome {
                Outcome::Diff(d) => minimize::Target::Diff(d.cause.clone()),
                Outcome::Crash { who, .. } => minimize::Target::Crash(who),
                Outcome::Hang { who, .. } => minimize::Target::Hang(who),
                _ => unreachable!("only findings are minimized"),
            };
            let budget = match target {
                minimize::Target::Diff(_) => cfg.max_replays,
                minimize::Target::Crash(_) => cfg.max_replays.min(80),
                minimize::Target::Hang(_) => 40,
            };
            // Replays wait less for a reply: a replay that hangs only fails to reproduce.
            exec.hang = cfg.hang.min(Duration::from_secs(2));
            let m = minimize::minimize(&mut exec, prefix, &target, budget);
            exec.hang = cfg.hang;
            sum.replays += m.replays as u64;
            finding.replays = m.replays;
            if m.reproduced {
                finding.repro = m.steps;
                finding.minimized = true;
                match m.last {
                    Some(Outcome::Diff(d)) => {
                        finding.command = d.argv;
                        finding.ours = d.ours;
                        finding.theirs = d.theirs;
                    }
                    Some(Outcome::Hang { who, argv, .. }) => {
                        // Minimized, the hanging command is the last one.
                        let last = finding.repro.last().and_then(|s| s.cmds.last()).map(|c| c.argv.clone());
                        let argv = last.unwrap_or(argv);
                        finding.cause = format!("{who} hung on {}", table.resolve(&argv).to_uppercase());
                        finding.command = argv;
                    }
                    _ => {}
                }
            } else {
                finding.kind = match kind {
                    FindingKind::Difference => FindingKind::NotReproducible,
                    k => k,
                };
                finding.note.push_str("\nthe replay of the recorded sequence did not reproduce it (timing-dependent?)");
            }
        }
        by_cause.insert(cause, sum.findings.len());
        by_cause.insert(finding.cause.clone(), sum.findings.len());
        sum.findings.push(finding);
    }

    // Final RSS after a FLUSHALL.
    sample_rss(&mut exec, &mut sum.rss, cfg.hang, sum.sequences);
    if let (Some(b), Some(l)) = (sum.rss.baseline_kb, sum.rss.last_kb) {
        if l > b + cfg.rss_limit_kb {
            sum.findings.push(Finding {
                kind: FindingKind::RssGrowth,
                cause: format!("moonshard RSS after FLUSHALL grew from {b} KiB to {l} KiB"),
                count: 1,
                first_sequence: sum.sequences,
                repro: Vec::new(),
                minimized: false,
                replays: 0,
                command: Vec::new(),
                ours: Vec::new(),
                theirs: Vec::new(),
                note: format!(
                    "redis-server went from {:?} KiB to {:?} KiB over the same stream",
                    sum.rss.redis_baseline_kb, sum.rss.redis_last_kb
                ),
            });
        }
    }
    sum.counters = counters;
    sum.drawn = std::mem::take(&mut gen.drawn);
    sum.restarts = exec.restarts;
    sum.elapsed = start.elapsed();
    Ok(sum)
}

const CRASH_MARKERS: &[&str] = &["panicked at", "crashed by signal", "ASSERTION FAILED", "Guru Meditation"];

fn crash_line(log: &str) -> String {
    log.lines()
        .find(|l| CRASH_MARKERS.iter().any(|m| l.contains(m)))
        .or_else(|| log.lines().rev().find(|l| !l.trim().is_empty()))
        .map(|l| l.chars().take(160).collect())
        .unwrap_or_else(|| "no log".into())
}

/// The interesting part of a crash log: from the first crash marker on.
fn crash_excerpt(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .position(|l| CRASH_MARKERS.iter().any(|m| l.contains(m)))
        .unwrap_or(lines.len().saturating_sub(25));
    lines[start..].iter().take(30).copied().collect::<Vec<_>>().join("\n")
}

fn sample_rss(exec: &mut Exec, rss: &mut RssStats, hang: Duration, sequence: u64) {
    if let Ok(mut c) = Conn::connect(exec.ms.port) {
        let _ = c.call(&[b"FLUSHALL"], hang);
    }
    if let Ok(mut c) = Conn::connect(exec.rs.port) {
        let _ = c.call(&[b"FLUSHALL"], hang);
    }
    let Some(kb) = exec.ms.rss_kb() else { return };
    if rss.starts != exec.ms.starts {
        *rss = RssStats { starts: exec.ms.starts, ..Default::default() };
    }
    rss.samples += 1;
    // The first samples include warm-up (allocator arenas, Lua VMs): the
    // baseline is the second sample.
    if rss.samples == 2 || rss.baseline_kb.is_none() && rss.samples > 2 {
        rss.baseline_kb = Some(kb);
        rss.redis_baseline_kb = exec.rs.rss_kb();
    }
    rss.last_kb = Some(kb);
    rss.redis_last_kb = exec.rs.rss_kb();
    rss.trace.push((sequence, kb, rss.redis_last_kb.unwrap_or(0)));
    rss.peak_kb = Some(rss.peak_kb.unwrap_or(0).max(kb));
}
