//! The measured run: connections spread over OS threads, each thread a
//! single-threaded tokio runtime (one epoll loop, like redis-benchmark's), each
//! connection writing a pre-encoded batch of `pipeline` requests and counting
//! the replies with the minimal scanner.

use crate::resp::{self, Scan};
use crate::workload::Workload;
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub addr: String,
    pub connections: usize,
    pub pipeline: u64,
    pub threads: usize,
    /// Stop after this many requests (all connections together).
    pub requests: Option<u64>,
    /// Stop issuing new batches after this long.
    pub duration: Option<Duration>,
    /// A connection that waits this long for a reply gives up.
    pub io_timeout: Duration,
    pub progress: bool,
    pub seed: u64,
    /// Requests at least this slow are listed one by one (`RunResult::slow`); 0: none.
    pub slow_ms: u64,
}

/// Slow batches: (start as Unix ms, latency in µs).
type SlowList = Vec<(u64, u64)>;

/// At most this many slow requests are listed (each connection its share).
const SLOW_LIST_MAX: usize = 100_000;

pub struct RunResult {
    /// Replies received.
    pub replies: u64,
    /// Error replies among them.
    pub errors: u64,
    /// Requests sent but never answered (connection lost or timed out).
    pub lost: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Latency per request in nanoseconds, from the write of its batch to its reply.
    pub hist: Histogram<u64>,
    /// Batches slower than `RunConfig::slow_ms`: (start as Unix ms, latency in µs),
    /// so a stall can be placed in time against what the server was doing.
    pub slow: Vec<(u64, u64)>,
}

impl RunResult {
    pub fn throughput(&self) -> f64 {
        self.replies as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn failures(&self) -> u64 {
        self.errors + self.lost
    }
}

struct Shared {
    issued: AtomicU64,
    done: AtomicU64,
    errors: AtomicU64,
    lost: AtomicU64,
    stop: AtomicBool,
    first_error: Mutex<Option<String>>,
    limit: u64,
    deadline: Option<Instant>,
    /// The run's start, as an instant and as Unix ms (for `RunResult::slow`).
    epoch: Instant,
    epoch_unix_ms: u64,
    slow_ns: u64,
    slow_per_conn: usize,
}

impl Shared {
    /// How many requests the next batch may carry (0: the run is over).
    fn claim(&self, want: u64) -> u64 {
        if self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return 0;
        }
        let prev = self.issued.fetch_add(want, Ordering::Relaxed);
        if prev >= self.limit {
            return 0;
        }
        want.min(self.limit - prev)
    }

    fn note_error(&self, text: String) {
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(text);
        }
    }
}

fn new_hist() -> Histogram<u64> {
    // 3 significant digits from 1 ns to an hour: any latency a bounded run sees.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("static histogram bounds are valid")
}

/// Runs the workload until the request count or the duration is reached.
/// Without either, it stops after 100,000 requests: a run is always bounded.
pub fn run(cfg: &RunConfig, workload: &Workload) -> Result<RunResult, String> {
    if cfg.connections == 0 || cfg.pipeline == 0 {
        return Err("connections and pipeline must be at least 1".into());
    }
    let limit = match (cfg.requests, cfg.duration) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
        (None, None) => 100_000,
    };
    let started = Instant::now();
    let shared = Arc::new(Shared {
        issued: AtomicU64::new(0),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        first_error: Mutex::new(None),
        limit,
        deadline: cfg.duration.map(|d| started + d),
        epoch: started,
        epoch_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        slow_ns: cfg.slow_ms.saturating_mul(1_000_000),
        slow_per_conn: SLOW_LIST_MAX / cfg.connections.max(1),
    });
    let threads = cfg.threads.clamp(1, cfg.connections);
    let progress = cfg.progress.then(|| spawn_progress(shared.clone(), started, limit));
    let mut handles = Vec::new();
    for t in 0..threads {
        let conns: Vec<usize> = (t..cfg.connections).step_by(threads).collect();
        let (cfg, workload, shared) = (cfg.clone(), workload.clone(), shared.clone());
        let h = std::thread::Builder::new()
            .name(format!("loadtest-{t}"))
            .spawn(move || run_thread(&cfg, &workload, &shared, conns))
            .map_err(|e| format!("spawn thread: {e}"))?;
        handles.push(h);
    }
    let mut hist = new_hist();
    let mut slow = Vec::new();
    let mut connect_error = None;
    for h in handles {
        match h.join() {
            Ok(Ok((th, ts))) => {
                hist.add(&th).map_err(|e| format!("merge histograms: {e}"))?;
                slow.extend(ts);
            }
            Ok(Err(e)) => connect_error = Some(e),
            Err(_) => connect_error = Some("a load thread panicked".into()),
        }
    }
    let elapsed = started.elapsed();
    shared.stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.join();
    }
    if let Some(e) = connect_error {
        return Err(e);
    }
    let first_error = shared.first_error.lock().ok().and_then(|f| f.clone());
    Ok(RunResult {
        replies: shared.done.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        lost: shared.lost.load(Ordering::Relaxed),
        first_error,
        elapsed,
        hist,
        slow: {
            slow.sort_unstable();
            slow
        },
    })
}

fn run_thread(
    cfg: &RunConfig,
    workload: &Workload,
    shared: &Arc<Shared>,
    conns: Vec<usize>,
) -> Result<(Histogram<u64>, SlowList), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        // Connect everything first so no connection starts its clock early.
        let mut streams = Vec::new();
        for &c in &conns {
            let s =
                tokio::net::TcpStream::connect(&cfg.addr).await.map_err(|e| format!("connect {}: {e}", cfg.addr))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            streams.push((c, s));
        }
        let mut tasks = Vec::new();
        for (c, s) in streams {
            let (workload, shared) = (workload.clone(), shared.clone());
            let (pipeline, timeout, seed) = (cfg.pipeline, cfg.io_timeout, cfg.seed);
            tasks.push(tokio::spawn(async move {
                let rng = SmallRng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                drive(s, &workload, &shared, pipeline, timeout, rng).await
            }));
        }
        let mut hist = new_hist();
        let mut slow = Vec::new();
        for t in tasks {
            let (h, s) = t.await.map_err(|e| format!("connection task: {e}"))?;
            hist.add(&h).map_err(|e| format!("merge histograms: {e}"))?;
            slow.extend(s);
        }
        Ok((hist, slow))
    })
}

/// One connection's loop: claim a batch, write it, read its replies.
async fn drive(
    mut stream: tokio::net::TcpStream,
    workload: &Workload,
    shared: &Shared,
    pipeline: u64,
    timeout: Duration,
    mut rng: SmallRng,
) -> (Histogram<u64>, SlowList) {
    let mut hist = new_hist();
    let mut slow = Vec::new();
    let mut batch = Vec::new();
    let mut batch_len = 0;
    let mut rbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        let k = shared.claim(pipeline);
        if k == 0 {
            break;
        }
        if !(workload.is_constant() && batch_len == k) {
            batch.clear();
            workload.fill(&mut rng, &mut batch, k);
            batch_len = k;
        }
        let start = Instant::now();
        if let Err(e) = stream.write_all(&batch).await {
            lose(shared, k, format!("write: {e}"));
            break;
        }
        if let Err(e) = read_replies(&mut stream, &mut rbuf, k, start, shared, &mut hist, timeout).await {
            break_with(shared, e);
            break;
        }
        let ns = start.elapsed().as_nanos() as u64;
        if shared.slow_ns > 0 && ns >= shared.slow_ns && slow.len() < shared.slow_per_conn {
            let at = shared.epoch_unix_ms + start.duration_since(shared.epoch).as_millis() as u64;
            slow.push((at, ns / 1000));
        }
    }
    (hist, slow)
}

fn lose(shared: &Shared, count: u64, why: String) {
    shared.lost.fetch_add(count, Ordering::Relaxed);
    shared.note_error(why);
}

fn break_with(shared: &Shared, (missing, why): (u64, String)) {
    lose(shared, missing, why);
}

/// Reads until `want` replies are complete; Err carries how many were lost.
async fn read_replies(
    stream: &mut tokio::net::TcpStream,
    rbuf: &mut Vec<u8>,
    want: u64,
    start: Instant,
    shared: &Shared,
    hist: &mut Histogram<u64>,
    timeout: Duration,
) -> Result<(), (u64, String)> {
    let mut got = 0u64;
    let mut pos = 0usize;
    while got < want {
        if rbuf.capacity() - rbuf.len() < 16 * 1024 {
            rbuf.reserve(64 * 1024);
        }
        let n = match tokio::time::timeout(timeout, stream.read_buf(rbuf)).await {
            Ok(Ok(0)) => return Err((want - got, "connection closed by server".into())),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err((want - got, format!("read: {e}"))),
            Err(_) => return Err((want - got, format!("no reply within {timeout:?}"))),
        };
        debug_assert!(n > 0);
        let mut complete = 0u64;
        while got + complete < want {
            match resp::scan(rbuf, pos) {
                Scan::Done { end, error } => {
                    if error && shared.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        shared
                            .note_error(String::from_utf8_lossy(rbuf[pos + 1..end - 2].trim_ascii_end()).into_owned());
                    }
                    pos = end;
                    complete += 1;
                }
                Scan::Incomplete => break,
                Scan::Invalid => return Err((want - got - complete, "invalid RESP from server".into())),
            }
        }
        if complete > 0 {
            let ns = start.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            hist.saturating_record_n(ns.max(1), complete);
            shared.done.fetch_add(complete, Ordering::Relaxed);
            got += complete;
        }
        if pos == rbuf.len() {
            rbuf.clear();
            pos = 0;
        }
    }
    if pos > 0 {
        // Bytes past our replies can only be a protocol violation; drop them.
        rbuf.clear();
    }
    Ok(())
}

fn spawn_progress(shared: Arc<Shared>, started: Instant, limit: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut last = (Instant::now(), 0u64);
        while !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(250));
            let now = Instant::now();
            if now.duration_since(last.0) < Duration::from_secs(1) {
                continue;
            }
            let done = shared.done.load(Ordering::Relaxed);
            let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            let of = if limit == u64::MAX { String::new() } else { format!("/{limit}") };
            eprint!(
                "\r  {:6.1}s  {done}{of} replies  {rate:>10.0} req/s  errors {}   ",
                started.elapsed().as_secs_f64(),
                shared.errors.load(Ordering::Relaxed) + shared.lost.load(Ordering::Relaxed)
            );
            last = (now, done);
        }
        eprint!("\r{:78}\r", "");
    })
}
