//! Figures INFO reports as recent rates or peaks, sampled by a 100 ms cron
//! as Redis's `serverCron` samples them: `instantaneous_ops_per_sec` and
//! the network rates (the mean of the last 16 samples, each the rate since
//! the previous one), and the largest client input and output buffers seen
//! in the last 8 seconds.

use crate::server::Server;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Samples averaged per instantaneous metric (1.6 s of history).
const SAMPLES: usize = 16;
/// Seconds of client buffer peaks remembered.
const PEAK_SECONDS: usize = 8;

/// Which instantaneous metric.
#[derive(Clone, Copy)]
pub enum Metric {
    Commands = 0,
    NetInput = 1,
    NetOutput = 2,
    ReplInput = 3,
    ReplOutput = 4,
}

const METRICS: usize = 5;

struct Rate {
    samples: [u64; SAMPLES],
    idx: usize,
    last_count: u64,
    last_at: Instant,
}

impl Rate {
    fn new() -> Rate {
        Rate { samples: [0; SAMPLES], idx: 0, last_count: 0, last_at: Instant::now() }
    }

    /// Records the rate per second since the previous sample.
    fn sample(&mut self, count: u64, now: Instant) {
        let ms = now.duration_since(self.last_at).as_millis() as u64;
        let delta = count.saturating_sub(self.last_count);
        self.samples[self.idx] = delta.saturating_mul(1000).checked_div(ms).unwrap_or(0);
        self.idx = (self.idx + 1) % SAMPLES;
        self.last_count = count;
        self.last_at = now;
    }

    fn mean(&self) -> u64 {
        self.samples.iter().sum::<u64>() / SAMPLES as u64
    }
}

/// Client buffer peaks of one second: (unix second, input, output).
type PeakSlot = (u64, u64, u64);

pub struct Sampler {
    rates: [Rate; METRICS],
    peaks: [PeakSlot; PEAK_SECONDS],
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler { rates: std::array::from_fn(|_| Rate::new()), peaks: [(0, 0, 0); PEAK_SECONDS] }
    }
}

impl Sampler {
    /// The mean rate per second of `m` over the last samples.
    pub fn rate(&self, m: Metric) -> u64 {
        self.rates[m as usize].mean()
    }

    /// The largest (input, output) client buffers of the last seconds, up
    /// to `now_secs`.
    pub fn recent_peaks(&self, now_secs: u64) -> (u64, u64) {
        self.peaks
            .iter()
            .filter(|(sec, _, _)| *sec + PEAK_SECONDS as u64 > now_secs)
            .fold((0, 0), |(i, o), &(_, pi, po)| (i.max(pi), o.max(po)))
    }

    fn note_peaks(&mut self, now_secs: u64, input: u64, output: u64) {
        let slot = &mut self.peaks[(now_secs % PEAK_SECONDS as u64) as usize];
        if slot.0 != now_secs {
            *slot = (now_secs, 0, 0);
        }
        slot.1 = slot.1.max(input);
        slot.2 = slot.2.max(output);
    }

    /// CONFIG RESETSTAT: the rates start over (the counters were zeroed).
    pub fn reset(&mut self) {
        self.rates = std::array::from_fn(|_| Rate::new());
    }
}

/// One sample of the instantaneous metrics.
pub fn sample(server: &Server) {
    let s = &server.stats;
    let counts = [
        s.commands_processed.load(Relaxed),
        s.net_input_bytes.load(Relaxed),
        s.net_output_bytes.load(Relaxed),
        s.net_repl_input_bytes.load(Relaxed),
        s.net_repl_output_bytes.load(Relaxed),
    ];
    let now = Instant::now();
    let mut sampler = s.sampler.lock();
    for (rate, count) in sampler.rates.iter_mut().zip(counts) {
        rate.sample(count, now);
    }
}

/// Folds every client's buffer peaks since the last fold into this
/// second's slot (each client's peak starts over from its present size).
/// Returns the peaks of the clients, already folded or not.
pub fn fold_client_peaks(server: &Server, take: bool) -> (u64, u64) {
    let (mut input, mut output) = (0, 0);
    for c in server.clients.clients.iter() {
        let (i, o) = c.value().buffer_peaks(take);
        input = input.max(i);
        output = output.max(o);
    }
    if take {
        let secs = crate::storage::now_ms() / 1000;
        server.stats.sampler.lock().note_peaks(secs, input, output);
    }
    (input, output)
}

/// The 100 ms cron: instantaneous metrics every tick, client buffer peaks
/// every second, and the end of an eviction overrun once memory is back
/// under `maxmemory`.
pub async fn cron(server: Arc<Server>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        if server.shutting_down.load(Relaxed) {
            return;
        }
        if server.cron_is_paused() {
            continue;
        }
        sample(&server);
        n += 1;
        if n.is_multiple_of(10) {
            fold_client_peaks(&server, true);
        }
        if server.stats.eviction_exceeded_since.load(Relaxed) != 0 && !crate::shard::eviction::over_maxmemory(&server) {
            server.stats.eviction_over(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_average_the_last_samples() {
        let mut r = Rate::new();
        let t0 = r.last_at;
        // 100 events per 100 ms for 16 samples: 1000/s.
        for i in 1..=SAMPLES as u64 {
            r.sample(i * 100, t0 + Duration::from_millis(100 * i));
        }
        assert_eq!(r.mean(), 1000);
        // Idle afterwards: the mean decays to 0 over 16 samples.
        for i in 1..=SAMPLES as u64 {
            r.sample(SAMPLES as u64 * 100, t0 + Duration::from_millis(100 * (SAMPLES as u64 + i)));
        }
        assert_eq!(r.mean(), 0);
        // A counter reset (CONFIG RESETSTAT) never yields a negative rate.
        r.sample(0, t0 + Duration::from_secs(10));
        assert_eq!(r.mean(), 0);
    }

    #[test]
    fn peaks_cover_eight_seconds() {
        let mut s = Sampler::default();
        s.note_peaks(100, 5, 7);
        s.note_peaks(101, 3, 9);
        assert_eq!(s.recent_peaks(101), (5, 9));
        assert_eq!(s.recent_peaks(107), (5, 9));
        assert_eq!(s.recent_peaks(108), (3, 9));
        assert_eq!(s.recent_peaks(109), (0, 0));
        // A slot reused for a later second starts from zero.
        s.note_peaks(109, 1, 1);
        assert_eq!(s.recent_peaks(109), (1, 1));
    }
}
