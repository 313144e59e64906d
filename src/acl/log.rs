//! ACL LOG: the latest refusals (commands, keys, channels) and failed
//! authentications, newest first. Repeats of a recent entry (same reason,
//! context, object and user within a minute, among the last ten entries)
//! only bump its count, and `acllog-max-len` caps the list, so a flood of
//! failed AUTHs costs a counter, not memory.

use bytes::Bytes;
use std::collections::VecDeque;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reason {
    Command,
    Key,
    Channel,
    Auth,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// Where the refusal happened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Context {
    Toplevel,
    Multi,
    Lua,
}

impl Context {
    pub fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

pub struct Entry {
    pub count: u64,
    pub reason: Reason,
    pub context: Context,
    /// The command, key, channel, or (for AUTH) the command as typed.
    pub object: Bytes,
    pub username: Bytes,
    /// Unix ms of the last occurrence.
    pub ctime: u64,
    /// CLIENT INFO of the last client it happened to.
    pub client_info: String,
}

/// Entries within this many ms of each other may be grouped.
const GROUPING_MS: u64 = 60_000;
/// How many recent entries a new one is compared with.
const SCAN: usize = 10;

#[derive(Default)]
pub struct Log {
    entries: VecDeque<Entry>,
}

impl Log {
    /// Records `e`, grouping it with a similar recent entry, and trims the
    /// log to `max_len` entries.
    pub fn add(&mut self, e: Entry, max_len: usize) {
        let similar = self.entries.iter().take(SCAN).position(|c| {
            c.reason == e.reason
                && c.context == e.context
                && c.ctime.abs_diff(e.ctime) <= GROUPING_MS
                && c.object == e.object
                && c.username == e.username
        });
        if let Some(i) = similar {
            if let Some(mut c) = self.entries.remove(i) {
                c.count += 1;
                c.ctime = e.ctime;
                c.client_info = e.client_info;
                self.entries.push_front(c);
            }
            return;
        }
        self.entries.push_front(e);
        self.entries.truncate(max_len);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// The newest `count` entries.
    pub fn newest(&self, count: usize) -> impl Iterator<Item = &Entry> {
        self.entries.iter().take(count)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(object: &str, ctime: u64) -> Entry {
        Entry {
            count: 1,
            reason: Reason::Auth,
            context: Context::Toplevel,
            object: Bytes::copy_from_slice(object.as_bytes()),
            username: Bytes::from_static(b"u"),
            ctime,
            client_info: String::new(),
        }
    }

    #[test]
    fn groups_and_caps() {
        let mut log = Log::default();
        for i in 0..10_000 {
            log.add(entry("AUTH", 1000 + i), 128);
        }
        assert_eq!(log.len(), 1);
        assert_eq!(log.newest(1).next().unwrap().count, 10_000);
        for i in 0..1000 {
            log.add(entry(&format!("o{i}"), 5000), 128);
        }
        assert_eq!(log.len(), 128);
        // A minute later the same event starts a new entry.
        log.add(entry("o999", 5000 + GROUPING_MS + 1), 128);
        assert_eq!(log.newest(1).next().unwrap().count, 1);
    }
}
