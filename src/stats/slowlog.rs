//! SLOWLOG: the latest commands that ran longer than
//! `slowlog-log-slower-than` microseconds, at most `slowlog-max-len` of them.

use crate::commands::dispatch::Origin;
use crate::net::client::ClientInfo;
use crate::server::Server;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Arguments kept per entry; the last one kept says how many were left out.
const MAX_ARGS: usize = 32;
/// Bytes kept per argument.
const MAX_ARG_LEN: usize = 128;

pub struct Entry {
    pub id: u64,
    /// Unix seconds when the command ran.
    pub time: u64,
    pub usec: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

pub struct Slowlog {
    /// `slowlog-log-slower-than` (µs; negative: off).
    pub slower_than: AtomicI64,
    /// `slowlog-max-len`.
    pub max_len: AtomicU64,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<Entry>>,
}

impl Default for Slowlog {
    fn default() -> Self {
        Slowlog {
            slower_than: AtomicI64::new(10_000),
            max_len: AtomicU64::new(128),
            next_id: AtomicU64::new(0),
            entries: Mutex::default(),
        }
    }
}

/// Arguments as SLOWLOG and MONITOR show them: passwords redacted.
pub fn shown_args(args: &[Bytes]) -> std::borrow::Cow<'_, [Bytes]> {
    let redacted = || Bytes::from_static(b"(redacted)");
    let name = &args[0];
    if name.eq_ignore_ascii_case(b"auth") {
        let mut v = args.to_vec();
        v[1..].iter_mut().for_each(|a| *a = redacted());
        return v.into();
    }
    if name.eq_ignore_ascii_case(b"hello") {
        if let Some(at) = args.iter().position(|a| a.eq_ignore_ascii_case(b"auth")) {
            let mut v = args.to_vec();
            v[at + 1..(at + 3).min(args.len())].iter_mut().for_each(|a| *a = redacted());
            return v.into();
        }
    }
    // ACL SETUSER's user name and rules may hold passwords.
    if name.eq_ignore_ascii_case(b"acl") && args.get(1).is_some_and(|s| s.eq_ignore_ascii_case(b"setuser")) {
        let mut v = args.to_vec();
        v[2..].iter_mut().for_each(|a| *a = redacted());
        return v.into();
    }
    if name.eq_ignore_ascii_case(b"migrate") && args.len() > 6 {
        // AUTH's password, AUTH2's user and password (before KEYS).
        let mut v = args.to_vec();
        let mut i = 6;
        while i < v.len() {
            let skip = if v[i].eq_ignore_ascii_case(b"auth") {
                1
            } else if v[i].eq_ignore_ascii_case(b"auth2") {
                2
            } else if v[i].eq_ignore_ascii_case(b"keys") {
                break;
            } else {
                0
            };
            for a in v.iter_mut().skip(i + 1).take(skip) {
                *a = redacted();
            }
            i += 1 + skip;
        }
        return v.into();
    }
    if name.eq_ignore_ascii_case(b"config")
        && args.get(1).is_some_and(|s| s.eq_ignore_ascii_case(b"set"))
        && args.len() > 2
    {
        let mut v = args.to_vec();
        let mut i = 2;
        while i + 1 < v.len() {
            if ["requirepass", "masterauth"].iter().any(|p| v[i].eq_ignore_ascii_case(p.as_bytes())) {
                v[i + 1] = redacted();
            }
            i += 2;
        }
        return v.into();
    }
    args.into()
}

impl Slowlog {
    /// Logs the command if it ran long enough.
    pub fn offer(&self, _server: &Server, client: &ClientInfo, origin: Origin, args: &[Bytes], usec: u64) {
        let threshold = self.slower_than.load(Relaxed);
        if threshold < 0 || (usec as i64) < threshold || origin == Origin::Script {
            return;
        }
        let shown = shown_args(args);
        let mut kept: Vec<Bytes> = Vec::with_capacity(shown.len().min(MAX_ARGS));
        for (i, a) in shown.iter().enumerate() {
            if shown.len() > MAX_ARGS && i == MAX_ARGS - 1 {
                kept.push(Bytes::from(format!("... ({} more arguments)", shown.len() - MAX_ARGS + 1)));
                break;
            }
            if a.len() > MAX_ARG_LEN {
                let mut s = a[..MAX_ARG_LEN].to_vec();
                s.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes());
                kept.push(Bytes::from(s));
            } else {
                kept.push(a.clone());
            }
        }
        let entry = Entry {
            id: self.next_id.fetch_add(1, Relaxed),
            time: crate::storage::now_ms() / 1000,
            usec,
            args: kept,
            addr: client.addr.clone(),
            name: client.meta.lock().name.clone().unwrap_or_default(),
        };
        let max = self.max_len.load(Relaxed) as usize;
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        entries.truncate(max);
    }

    /// The newest `count` entries, newest first.
    pub fn latest<R>(&self, count: usize, mut f: impl FnMut(&Entry) -> R) -> Vec<R> {
        self.entries.lock().iter().take(count).map(&mut f).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.lock().is_empty()
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// `slowlog-max-len` lowered: drop the oldest entries now.
    pub fn trim(&self) {
        let max = self.max_len.load(Relaxed) as usize;
        self.entries.lock().truncate(max);
    }
}
