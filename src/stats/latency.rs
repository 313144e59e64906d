//! Per-command latency percentiles (`INFO latencystats`, `LATENCY
//! HISTOGRAM`), recorded for every call while `latency-tracking` is on.
//!
//! Each worker thread keeps its own histograms, written only by that thread
//! (a plain load and store, no locked instruction on the hot path), and
//! readers add the threads' histograms up. Buckets are log-linear: exact
//! below 32 ns, then 32 sub-buckets per power of two, so a reported
//! percentile is within about 3% of the true value (Redis's HdrHistogram
//! keeps 2 significant digits). `CONFIG RESETSTAT` records a baseline that
//! readers subtract, so a reset never races a writer.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const SUB_BITS: u32 = 5;
const SUBS: usize = 1 << SUB_BITS;
/// Powers of two covered above the exact range: up to 2^44 ns (about 4.9 hours).
const POWERS: usize = 40;
const BUCKETS: usize = SUBS * (POWERS + 1);
/// Longest latency recorded, in ns (Redis caps its histogram at 1 s; we keep more).
const MAX_NS: u64 = (1 << (POWERS as u64 + SUB_BITS as u64)) - 1;

/// The bucket of a latency of `ns` nanoseconds.
fn bucket(ns: u64) -> usize {
    let ns = ns.clamp(1, MAX_NS);
    if ns < SUBS as u64 {
        return ns as usize;
    }
    let power = 63 - ns.leading_zeros(); // >= SUB_BITS
    let sub = (ns >> (power - SUB_BITS)) as usize & (SUBS - 1);
    (power - SUB_BITS + 1) as usize * SUBS + sub
}

/// The highest latency (ns) a bucket holds, as HdrHistogram reports a percentile.
fn bucket_high(i: usize) -> u64 {
    if i < SUBS {
        return i as u64;
    }
    let power = (i / SUBS) as u32 + SUB_BITS - 1;
    let sub = (i % SUBS) as u64;
    let low = (SUBS as u64 + sub) << (power - SUB_BITS);
    low + (1u64 << (power - SUB_BITS)) - 1
}

struct Histogram {
    counts: Box<[AtomicU64]>,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram { counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

/// One thread's histograms, by command id.
struct ThreadHistograms {
    by_command: Box<[OnceLock<Histogram>]>,
}

pub struct Tracker {
    /// `latency-tracking`.
    pub enabled: AtomicBool,
    threads: Mutex<Vec<Arc<ThreadHistograms>>>,
    /// Counts at the last `CONFIG RESETSTAT`, by command id.
    baseline: Mutex<HashMap<usize, Vec<u64>>>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker { enabled: AtomicBool::new(true), threads: Mutex::default(), baseline: Mutex::default() }
    }
}

thread_local! {
    static MINE: OnceLock<Arc<ThreadHistograms>> = const { OnceLock::new() };
}

impl Tracker {
    /// Records one call of command `id`.
    pub fn record(&self, id: usize, took: Duration) {
        if !self.enabled.load(Relaxed) {
            return;
        }
        let ns = took.as_nanos().min(u64::MAX as u128) as u64;
        MINE.with(|mine| {
            let hists = mine.get_or_init(|| self.register());
            let Some(slot) = hists.by_command.get(id) else {
                return;
            };
            let c = &slot.get_or_init(Histogram::new).counts[bucket(ns)];
            // Only this thread writes these counters.
            c.store(c.load(Relaxed) + 1, Relaxed);
        });
    }

    fn register(&self) -> Arc<ThreadHistograms> {
        let n = crate::commands::registry::all().len();
        let t = Arc::new(ThreadHistograms { by_command: (0..n).map(|_| OnceLock::new()).collect() });
        self.threads.lock().push(t.clone());
        t
    }

    /// Command `id`'s counts since start-up, None if it never ran.
    fn raw_counts(&self, id: usize) -> Option<Vec<u64>> {
        let mut total: Option<Vec<u64>> = None;
        for t in self.threads.lock().iter() {
            let Some(h) = t.by_command.get(id).and_then(|s| s.get()) else {
                continue;
            };
            let sum = total.get_or_insert_with(|| vec![0; BUCKETS]);
            for (s, c) in sum.iter_mut().zip(h.counts.iter()) {
                *s += c.load(Relaxed);
            }
        }
        total
    }

    /// Command `id`'s counts since the last reset, None if it never ran.
    fn counts(&self, id: usize) -> Option<Vec<u64>> {
        let mut total = self.raw_counts(id)?;
        if let Some(base) = self.baseline.lock().get(&id) {
            for (t, b) in total.iter_mut().zip(base) {
                *t = t.saturating_sub(*b);
            }
        }
        Some(total)
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset(&self) {
        let n = crate::commands::registry::all().len();
        let now: HashMap<usize, Vec<u64>> = (0..n).filter_map(|id| self.raw_counts(id).map(|c| (id, c))).collect();
        *self.baseline.lock() = now;
    }

    /// The latencies (µs) at the given percentiles for command `id`, None
    /// when it has no recorded call since the last reset.
    pub fn percentiles(&self, id: usize, pcts: &[f64]) -> Option<Vec<f64>> {
        let counts = self.counts(id)?;
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        Some(
            pcts.iter()
                .map(|p| {
                    // The smallest value with at least p% of the calls at or below it.
                    let want = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
                    let mut seen = 0;
                    let i = counts.iter().position(|c| {
                        seen += c;
                        seen >= want
                    });
                    bucket_high(i.unwrap_or(BUCKETS - 1)) as f64 / 1000.0
                })
                .collect(),
        )
    }

    /// `LATENCY HISTOGRAM`'s view: calls, and cumulative counts at power-of-two
    /// microsecond bounds (1, 2, 4, ... µs) up to the largest used.
    pub fn power_buckets(&self, id: usize) -> Option<(u64, Vec<(u64, u64)>)> {
        let counts = self.counts(id)?;
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let mut out = Vec::new();
        let mut bound_us = 1u64;
        let mut cumulative = 0u64;
        let mut i = 0;
        while cumulative < total {
            let bound_ns = bound_us * 1000;
            while i < BUCKETS && bucket_high(i) < bound_ns {
                cumulative += counts[i];
                i += 1;
            }
            // Only the bounds where the count grows, as Redis lists them.
            if cumulative > out.last().map_or(0, |l: &(u64, u64)| l.1) {
                out.push((bound_us, cumulative));
            }
            if i >= BUCKETS {
                break;
            }
            bound_us *= 2;
        }
        Some((total, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for ns in [1u64, 2, 31, 32, 33, 63, 64, 100, 1000, 1_000_000, 999_999_999, MAX_NS] {
            let b = bucket(ns);
            assert!(b >= last, "bucket order at {ns}");
            last = b;
            let high = bucket_high(b);
            assert!(high >= ns, "{ns} above its bucket's top {high}");
            assert!((high - ns) as f64 <= ns as f64 * 0.04 + 1.0, "{ns} vs {high}");
        }
        assert_eq!(bucket(0), 1);
        assert!(bucket(u64::MAX) < BUCKETS);
    }
}
