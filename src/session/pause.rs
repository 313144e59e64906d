//! CLIENT PAUSE / CLIENT UNPAUSE: clients wait before running commands until
//! the pause ends. `WRITE` holds back what may change the dataset (write
//! commands, scripts that may write, EXEC of such commands); `ALL` holds back
//! everything. While writes are paused, keys are not expired (they read as
//! missing but stay, as in Redis) and nothing is evicted, so the dataset
//! cannot change.

use crate::commands::registry::{flags, Command, Exec};
use crate::commands::spec::SessionOp;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Default)]
pub struct Pause {
    /// Unix ms at which the pause ends (0: not paused).
    until: AtomicU64,
    /// ALL rather than WRITE.
    all: AtomicBool,
    /// Woken by CLIENT UNPAUSE.
    pub ended: tokio::sync::Notify,
    /// FAILOVER holds writes back until it ends, whatever CLIENT PAUSE and
    /// CLIENT UNPAUSE do.
    failover: AtomicBool,
}

impl Pause {
    /// CLIENT PAUSE: the more restrictive kind and the later end of the
    /// current pause and this one win.
    pub fn start(&self, until_ms: u64, all: bool) {
        let now = crate::storage::now_ms();
        let current = self.until.load(Ordering::Acquire);
        if current <= now {
            self.all.store(all, Ordering::Release);
        } else if all {
            self.all.store(true, Ordering::Release);
        }
        self.until.fetch_max(until_ms, Ordering::AcqRel);
        if !self.failover.load(Ordering::Acquire) {
            crate::storage::pause_expiry_until(self.until.load(Ordering::Acquire));
        }
    }

    /// CLIENT UNPAUSE (a failover's hold stays).
    pub fn stop(&self) {
        self.until.store(0, Ordering::Release);
        if !self.failover.load(Ordering::Acquire) {
            crate::storage::pause_expiry_until(0);
        }
        self.ended.notify_waiters();
    }

    /// FAILOVER starts (true) or ends (false) holding writes back.
    pub fn hold_writes_for_failover(&self, on: bool) {
        self.failover.store(on, Ordering::Release);
        if on {
            crate::storage::pause_expiry_until(u64::MAX);
        } else {
            crate::storage::pause_expiry_until(self.until.load(Ordering::Acquire));
            self.ended.notify_waiters();
        }
    }

    /// When the pause ends (Unix ms), if one is in force now.
    pub fn until(&self) -> Option<u64> {
        let until = self.until.load(Ordering::Acquire);
        (until != 0 && until > crate::storage::now_ms()).then_some(until)
    }

    /// When a command held back now looks again (Unix ms): the pause's end,
    /// or a second from now while a failover holds writes (its end wakes
    /// `ended`).
    pub fn recheck_at(&self) -> Option<u64> {
        if self.failover.load(Ordering::Acquire) {
            return Some(crate::storage::now_ms() + 1000);
        }
        self.until()
    }

    /// One relaxed load: false when no pause was started or it was ended
    /// (the hot path's check; `until` tells whether one is in force).
    #[inline]
    pub fn maybe_active(&self) -> bool {
        self.until.load(Ordering::Relaxed) != 0 || self.failover.load(Ordering::Relaxed)
    }

    /// True while writes (and expiry, eviction) are paused.
    pub fn writes_paused(&self) -> bool {
        self.failover.load(Ordering::Relaxed) || (self.until.load(Ordering::Relaxed) != 0 && self.until().is_some())
    }

    /// True when `cmd` must wait for the pause to end.
    pub fn holds(&self, cmd: Command, may_write: impl FnOnce() -> bool) -> bool {
        let failover = self.failover.load(Ordering::Acquire);
        let paused = self.until.load(Ordering::Relaxed) != 0 && self.until().is_some();
        if !failover && !paused {
            return false;
        }
        if paused && self.all.load(Ordering::Acquire) {
            return true;
        }
        if cmd.spec.is_write() || cmd.spec.has(flags::MAY_REPLICATE) {
            return true;
        }
        match cmd.spec.exec {
            Exec::Session(SessionOp::Eval | SessionOp::Fcall | SessionOp::Exec) => may_write(),
            _ => false,
        }
    }
}
