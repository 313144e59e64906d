//! MONITOR: clients that see every command the server runs, as Redis
//! formats it: `+<unix time with µs> [<db> <client address>] "arg" ...`, with
//! `lua` as the address of commands a script runs.

use crate::commands::dispatch::Origin;
use crate::net::client::ClientInfo;
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

struct Watcher {
    info: Arc<ClientInfo>,
    tx: mpsc::UnboundedSender<Bytes>,
    /// When the client started monitoring (`clock_ns`).
    since: u64,
}

/// When a command ran, for the monitors (`clock_ns` readings).
#[derive(Clone, Copy)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

impl Span {
    /// Whether a client that started monitoring at `since` must not see
    /// this command: it was already running then. Redis runs commands one
    /// at a time, so a monitor sees only those that begin after its MONITOR
    /// (a client library that reads its MONITOR's `+OK` and a line in one
    /// read cannot tell them apart); here another thread's command may be
    /// half done when MONITOR is registered. A clock that stepped back
    /// (`end` before `since`) shows the command rather than hide it.
    fn began_before(self, since: u64) -> bool {
        self.start < since && since <= self.end
    }
}

#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: Mutex<Vec<Watcher>>,
}

impl Monitors {
    /// Adds a monitoring client; its lines arrive on the returned queue.
    pub fn add(&self, info: Arc<ClientInfo>) -> mpsc::UnboundedReceiver<Bytes> {
        let (tx, rx) = mpsc::unbounded_channel();
        let since = crate::util::clock_ns();
        let mut list = self.list.lock();
        list.push(Watcher { info, tx, since });
        self.count.store(list.len(), Ordering::Release);
        rx
    }

    pub fn remove(&self, id: u64) {
        let mut list = self.list.lock();
        list.retain(|w| w.info.id != id);
        self.count.store(list.len(), Ordering::Release);
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shows a command that ran in database `db` during `span` to every
    /// monitor that was watching when it began.
    pub fn feed(&self, client: &ClientInfo, origin: Origin, db: usize, args: &[Bytes], span: Span) {
        if self.count.load(Ordering::Relaxed) == 0 || origin == Origin::AofLoad {
            return;
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        // A Unix socket client shows as `unix:<path>`, as in Redis.
        let addr: std::borrow::Cow<str> = match origin {
            Origin::Script => "lua".into(),
            _ if client.unix.load(Ordering::Relaxed) => {
                format!("unix:{}", client.addr.strip_suffix(":0").unwrap_or(&client.addr)).into()
            }
            _ => client.addr.as_str().into(),
        };
        let mut line = format!("+{}.{:06} [{} {}]", now.as_secs(), now.subsec_micros(), db, addr).into_bytes();
        for a in crate::stats::slowlog::shown_args(args).iter() {
            line.push(b' ');
            crate::util::quote_repr(&mut line, a);
        }
        line.extend_from_slice(b"\r\n");
        let line = Bytes::from(line);
        let mut list = self.list.lock();
        list.retain(|w| {
            !w.info.killed.load(Ordering::Relaxed) && (span.began_before(w.since) || w.tx.send(line.clone()).is_ok())
        });
        self.count.store(list.len(), Ordering::Release);
    }
}
