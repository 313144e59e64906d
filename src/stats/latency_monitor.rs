//! The latency monitor (`LATENCY LATEST|HISTORY|RESET|GRAPH|DOCTOR`): events
//! that took at least `latency-monitor-threshold` ms, per event class
//! ("command", "fast-command", "expire-cycle", ...), with up to 160
//! per-second samples each, as Redis keeps them.

use crate::commands::registry::Command;
use crate::commands::spec::flags;
use crate::server::Server;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Samples kept per event.
pub const HISTORY_LEN: usize = 160;

#[derive(Clone, Copy, Default)]
pub struct Sample {
    /// Unix seconds.
    pub time: u64,
    /// Milliseconds.
    pub latency: u64,
}

#[derive(Default)]
pub struct Event {
    /// Oldest first.
    pub samples: std::collections::VecDeque<Sample>,
    /// The highest latency ever seen for the event (ms).
    pub max: u64,
}

#[derive(Default)]
pub struct LatencyMonitor {
    /// `latency-monitor-threshold` in ms (0: off).
    pub threshold: AtomicU64,
    events: Mutex<BTreeMap<&'static str, Event>>,
}

impl LatencyMonitor {
    /// Records a command that took `usec`, if it reaches the threshold.
    pub fn command(&self, _server: &Server, cmd: Command, usec: u64) {
        let threshold = self.threshold.load(Relaxed);
        if threshold == 0 || usec / 1000 < threshold {
            return;
        }
        let event = if cmd.spec.has(flags::FAST) { "fast-command" } else { "command" };
        self.add(event, usec / 1000);
    }

    /// Records an event of `ms` milliseconds if it reaches the threshold.
    pub fn add_if_needed(&self, event: &'static str, ms: u64) {
        let threshold = self.threshold.load(Relaxed);
        if threshold != 0 && ms >= threshold {
            self.add(event, ms);
        }
    }

    fn add(&self, event: &'static str, ms: u64) {
        let now = crate::storage::now_ms() / 1000;
        let mut events = self.events.lock();
        let e = events.entry(event).or_default();
        e.max = e.max.max(ms);
        if let Some(last) = e.samples.back_mut() {
            if last.time == now {
                last.latency = last.latency.max(ms);
                return;
            }
        }
        e.samples.push_back(Sample { time: now, latency: ms });
        if e.samples.len() > HISTORY_LEN {
            e.samples.pop_front();
        }
    }

    /// Runs `f` over every event that has samples, by name.
    pub fn with_events<R>(&self, f: impl FnOnce(&BTreeMap<&'static str, Event>) -> R) -> R {
        f(&self.events.lock())
    }

    /// Forgets the named events (all when `names` is empty); returns how many it reset.
    pub fn reset(&self, names: &[String]) -> usize {
        let mut events = self.events.lock();
        if names.is_empty() {
            let n = events.len();
            events.clear();
            return n;
        }
        let mut n = 0;
        for name in names {
            if events.remove(name.as_str()).is_some() {
                n += 1;
            }
        }
        n
    }
}
