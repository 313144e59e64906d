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

const SUB_BITS: u32 = 5;
const SUBS: usize = 1 << SUB_BITS;
/// Powers of two covered above the exact range: up to 2^44 ns (about 4.9 hours).
const POWERS: usize = 40;
const BUCKETS: usize = SUBS * (POWERS + 1);
/// Longest latency recorded, in ns (Redis caps its histogram at 1 s; we keep more).
const MAX_NS: u64 = (1 << (POWERS as u64 + SUB_BITS as u64)) - 1;

/// The bucket of a latency of `ns` nanoseconds.
#[inline]
pub fn bucket(ns: u64) -> u16 {
    let ns = ns.clamp(1, MAX_NS);
    if ns < SUBS as u64 {
        return ns as u16;
    }
    let power = 63 - ns.leading_zeros(); // >= SUB_BITS
    let sub = (ns >> (power - SUB_BITS)) as usize & (SUBS - 1);
    ((power - SUB_BITS + 1) as usize * SUBS + sub) as u16
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

/// One command's counts on one thread, in rows of `SUBS` buckets (one row
/// per power of two) allocated when a call first lands in them: a command's
/// latencies span a few powers, so a histogram holds a few hundred bytes of
/// counts rather than all `BUCKETS` (10.5 KB, per command and per thread).
pub struct Histogram {
    rows: [OnceLock<Box<Row>>; POWERS + 1],
}

type Row = [AtomicU64; SUBS];

impl Histogram {
    fn new() -> Histogram {
        Histogram { rows: std::array::from_fn(|_| OnceLock::new()) }
    }

    /// Counts one call that took `ns` nanoseconds. Only the thread that
    /// owns the histogram writes it, so a plain load and store suffice (a
    /// write from elsewhere could only lose a count).
    #[inline]
    pub fn add(&self, ns: u64) {
        let b = bucket(ns) as usize;
        if let Some(row) = self.rows.get(b / SUBS) {
            let c = &row.get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))))[b % SUBS];
            c.store(c.load(Relaxed) + 1, Relaxed);
        }
    }

    /// Adds this histogram's counts into `sum` (`BUCKETS` long).
    fn add_into(&self, sum: &mut [u64]) {
        for (r, row) in self.rows.iter().enumerate() {
            if let Some(row) = row.get() {
                for (s, c) in sum[r * SUBS..].iter_mut().zip(row.iter()) {
                    *s += c.load(Relaxed);
                }
            }
        }
    }
}

/// This thread's histogram of one command, as dispatch caches it.
#[derive(Clone, Copy)]
pub struct HistogramRef(std::ptr::NonNull<Histogram>);

// SAFETY: a HistogramRef points to a boxed Histogram (it never moves) that a
// ThreadHistograms owns, and the tracker's registry keeps that alive (in an
// Arc) for the life of the process, so it never dangles; Histogram's counters
// are atomics and its rows are created through OnceLock: using it from any thread is
// memory-safe (a write from a thread other than the owner only risks a lost count).
unsafe impl Send for HistogramRef {}

impl HistogramRef {
    #[inline]
    pub fn get(&self) -> &Histogram {
        // SAFETY: see the Send impl: the histogram outlives every reference.
        unsafe { self.0.as_ref() }
    }
}

/// One thread's histograms, by command id.
struct ThreadHistograms {
    by_command: Box<[OnceLock<Box<Histogram>>]>,
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
    /// This thread's histogram of command `id`, created on first use. The
    /// caller keeps it while it runs that command on this thread.
    pub fn histogram(&self, id: usize) -> Option<HistogramRef> {
        MINE.with(|mine| {
            let hists = mine.get_or_init(|| self.register());
            let h = hists.by_command.get(id)?.get_or_init(|| Box::new(Histogram::new()));
            Some(HistogramRef(std::ptr::NonNull::from(&**h)))
        })
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
            h.add_into(total.get_or_insert_with(|| vec![0; BUCKETS]));
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
    fn recorded_calls_give_percentiles_and_reset() {
        let t = Tracker::default();
        let h = t.histogram(3).unwrap();
        // Held across threads: still the same counters (a HistogramRef is Send).
        std::thread::scope(|s| {
            s.spawn(move || {
                for ns in 1..=100u64 {
                    h.get().add(ns * 1000);
                }
            });
        });
        let p = t.percentiles(3, &[50.0, 100.0]).unwrap();
        assert!((49.0..=52.0).contains(&p[0]), "p50 {}", p[0]);
        assert!((100.0..=104.0).contains(&p[1]), "p100 {}", p[1]);
        assert!(t.percentiles(4, &[50.0]).is_none());
        t.reset();
        assert!(t.percentiles(3, &[50.0]).is_none());
        h.get().add(7000);
        assert_eq!(t.power_buckets(3).map(|(calls, _)| calls), Some(1));
    }

    #[test]
    fn a_histogram_holds_only_the_rows_its_calls_reached() {
        let h = Histogram::new();
        for ns in [1_500u64, 1_900, 40_000, 41_000] {
            h.add(ns);
        }
        assert_eq!(h.rows.iter().filter(|r| r.get().is_some()).count(), 2);
        let mut sum = vec![0; BUCKETS];
        h.add_into(&mut sum);
        assert_eq!(sum.iter().sum::<u64>(), 4);
        assert_eq!(sum[bucket(40_000) as usize], 1);
        // The longest latency lands in the last row.
        h.add(u64::MAX);
        assert!(h.rows[POWERS].get().is_some());
    }

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for ns in [1u64, 2, 31, 32, 33, 63, 64, 100, 1000, 1_000_000, 999_999_999, MAX_NS] {
            let b = bucket(ns) as usize;
            assert!(b >= last, "bucket order at {ns}");
            last = b;
            let high = bucket_high(b);
            assert!(high >= ns, "{ns} above its bucket's top {high}");
            assert!((high - ns) as f64 <= ns as f64 * 0.04 + 1.0, "{ns} vs {high}");
        }
        assert_eq!(bucket(0), 1);
        assert!((bucket(u64::MAX) as usize) < BUCKETS);
    }
}
