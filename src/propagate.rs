//! The propagated write stream: every change to the dataset, in the
//! replayable form Redis propagates it, in one global order. The AOF writer
//! and (later) replication subscribe to it; replaying it into an empty
//! server reproduces the dataset.
//!
//! Order: a command emits while it still holds its shards, and the stream's
//! lock orders emissions globally, so two writes to one key appear in the
//! order they happened, and a cross-shard transaction (emitted with all its
//! shards held) appears as one unit.
//!
//! Units: a script's or EXEC's writes are collected while it runs (`Unit`)
//! and emitted together, wrapped in MULTI/EXEC when there is more than one,
//! as Redis 7.0 does. The stream is RESP, with SELECT emitted whenever the
//! database changes.

use crate::protocol::{push_bulk, push_header};
use bytes::Bytes;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A follower of the stream. `append` runs under the stream's lock, in
/// global order: keep it short (copy the bytes into a buffer). `end` is the
/// stream offset (bytes since the server started) just past `bytes`.
pub trait Subscriber: Send + Sync {
    fn append(&self, bytes: &[u8], end: u64);

    /// Bytes that only replication carries (a master's PING, REPLCONF
    /// GETACK): followed like the rest unless the subscriber says otherwise.
    fn append_replication_only(&self, bytes: &[u8], end: u64) {
        self.append(bytes, end);
    }
}

#[derive(Default)]
pub struct Stream {
    /// True while anyone subscribes: commands skip all stream work otherwise.
    active: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The database the stream last selected (None: next emission selects).
    selected: Option<usize>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    buf: Vec<u8>,
    /// Bytes emitted since start-up.
    offset: u64,
}

impl Stream {
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Adds a follower; its stream starts with a SELECT. Returns the stream
    /// offset it starts at.
    pub fn subscribe(&self, s: Arc<dyn Subscriber>) -> u64 {
        let mut inner = self.inner.lock();
        inner.subscribers.push(s);
        inner.selected = None;
        self.active.store(true, Ordering::SeqCst);
        inner.offset
    }

    /// The stream offset: bytes emitted since start-up (INFO's
    /// `master_repl_offset`).
    pub fn offset(&self) -> u64 {
        self.inner.lock().offset
    }

    /// The database the stream last selected (None: its next emission
    /// starts with a SELECT).
    pub fn selected_db(&self) -> Option<usize> {
        self.inner.lock().selected
    }

    /// Runs `f` under the stream's lock, between two emissions, with the
    /// subscribers and the stream offset at hand (replication adds a replica at the exact stream
    /// position it copied from the backlog). `reset_select`: the next
    /// emission starts with a SELECT.
    pub fn with_subscribers<R>(
        &self,
        reset_select: bool,
        f: impl FnOnce(&mut Vec<Arc<dyn Subscriber>>, u64) -> R,
    ) -> R {
        let mut inner = self.inner.lock();
        if reset_select {
            inner.selected = None;
        }
        let at = inner.offset;
        let r = f(&mut inner.subscribers, at);
        self.active.store(!inner.subscribers.is_empty(), Ordering::SeqCst);
        r
    }

    pub fn unsubscribe(&self, s: &Arc<dyn Subscriber>) {
        let mut inner = self.inner.lock();
        inner.subscribers.retain(|x| !Arc::ptr_eq(x, s));
        self.active.store(!inner.subscribers.is_empty(), Ordering::SeqCst);
    }

    /// Emits a command that belongs to no database and only replication
    /// carries (a master's PING, REPLCONF GETACK): no SELECT before it.
    pub fn emit_dbless(&self, argv: &[&[u8]]) {
        let mut inner = self.inner.lock();
        if inner.subscribers.is_empty() {
            return;
        }
        let Inner { subscribers, buf, offset, .. } = &mut *inner;
        buf.clear();
        encode(buf, argv);
        *offset += buf.len() as u64;
        for s in subscribers.iter() {
            s.append_replication_only(buf, *offset);
        }
    }

    /// Emits one unit: its commands `(db, argv)` in order, wrapped in
    /// MULTI/EXEC when there are several.
    /// One command as its own unit, encoded straight from the caller's
    /// arguments (the common case: no copy of them is kept).
    fn emit_one(&self, db: usize, argv: &[Bytes]) {
        let mut inner = self.inner.lock();
        if inner.subscribers.is_empty() {
            return;
        }
        let Inner { selected, subscribers, buf, offset } = &mut *inner;
        buf.clear();
        select(buf, selected, db);
        encode(buf, argv);
        *offset += buf.len() as u64;
        for s in subscribers.iter() {
            s.append(buf, *offset);
        }
        let end = *offset;
        EMITTED.with(|e| e.set(e.get().max(end)));
    }

    fn emit_unit(&self, commands: &[(usize, Vec<Bytes>)]) {
        if commands.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.subscribers.is_empty() {
            return;
        }
        let Inner { selected, subscribers, buf, offset } = &mut *inner;
        buf.clear();
        let wrap = commands.len() > 1;
        if wrap {
            // Redis 7.0 emits MULTI in the first command's database, so a
            // SELECT it needs comes before the MULTI.
            select(buf, selected, commands[0].0);
            encode(buf, &[b"MULTI"]);
        }
        for (db, argv) in commands {
            select(buf, selected, *db);
            encode(buf, argv);
        }
        if wrap {
            encode(buf, &[b"EXEC"]);
        }
        *offset += buf.len() as u64;
        for s in subscribers.iter() {
            s.append(buf, *offset);
        }
        let end = *offset;
        EMITTED.with(|e| e.set(e.get().max(end)));
    }
}

thread_local! {
    /// The stream offset past the last unit this thread emitted: a session
    /// under `appendfsync always` waits for the AOF to be fsynced that far
    /// before it replies.
    static EMITTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The offset this thread emitted up to since the last call, and forgets it
/// (0: nothing emitted). Read right after a synchronous run of commands.
pub fn take_emitted() -> u64 {
    EMITTED.with(|e| e.replace(0))
}

#[inline(always)]
fn select(buf: &mut Vec<u8>, selected: &mut Option<usize>, db: usize) {
    if *selected != Some(db) {
        select_db(buf, selected, db);
    }
}

#[cold]
fn select_db(buf: &mut Vec<u8>, selected: &mut Option<usize>, db: usize) {
    encode(buf, &[b"SELECT".as_slice(), db.to_string().as_bytes()]);
    *selected = Some(db);
}

/// Appends `argv` as a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(buf: &mut Vec<u8>, argv: &[A]) {
    // One reservation for the whole command (headers at most 24 bytes each).
    buf.reserve(24 * (argv.len() + 1) + argv.iter().map(|a| a.as_ref().len()).sum::<usize>());
    push_header(buf, b'*', argv.len());
    for a in argv {
        push_bulk(buf, a.as_ref());
    }
}

thread_local! {
    /// The unit being collected on this thread (a script or EXEC running).
    static UNIT: RefCell<Vec<(usize, Vec<Bytes>)>> = const { RefCell::new(Vec::new()) };
    /// How many units are open on this thread: a plain command (0) checks
    /// this one cell, not the collection.
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

thread_local! {
    /// Set while this thread replays what the stream already carried.
    static MUTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread's emissions dropped: DEBUG LOADAOF replays the
/// AOF through dispatch, and none of it is new to the AOF or the replicas.
pub fn muted<R>(f: impl FnOnce() -> R) -> R {
    struct Unmute;
    impl Drop for Unmute {
        fn drop(&mut self) {
            MUTED.with(|m| m.set(false));
        }
    }
    MUTED.with(|m| m.set(true));
    let _unmute = Unmute;
    f()
}

/// How many commands the unit being collected on this thread holds so far
/// (0 when none is collected): a position for `unit_forget`.
pub fn unit_len() -> usize {
    UNIT.with(|u| u.borrow().len())
}

/// Forgets the commands collected since position `from` except those
/// `keep` accepts (given the database, the command and its position): a
/// standalone-mode script that starts over takes back its writes, not the
/// deletions of keys it found expired.
pub fn unit_forget(from: usize, mut keep: impl FnMut(usize, &[Bytes], usize) -> bool) {
    UNIT.with(|u| {
        let mut unit = u.borrow_mut();
        if unit.len() <= from {
            return;
        }
        let tail = unit.split_off(from);
        for (i, (db, argv)) in tail.into_iter().enumerate() {
            if keep(db, &argv, from + i) {
                unit.push((db, argv));
            }
        }
    });
}

/// Emits one command: into the unit being collected on this thread, or
/// straight into the stream.
pub fn emit(stream: &Stream, db: usize, argv: &[Bytes]) {
    if MUTED.with(|m| m.get()) {
        return;
    }
    if DEPTH.with(|d| d.get()) == 0 {
        stream.emit_one(db, argv);
    } else {
        UNIT.with(|u| u.borrow_mut().push((db, argv.to_vec())));
    }
}

/// Collects the writes of a script or transaction on this thread until
/// dropped, then emits them as one unit (nested units join the outer one,
/// so an EVAL inside EXEC is not wrapped twice).
pub struct Unit<'a> {
    stream: &'a Stream,
}

impl<'a> Unit<'a> {
    pub fn begin(stream: &'a Stream) -> Unit<'a> {
        DEPTH.with(|d| d.set(d.get() + 1));
        Unit { stream }
    }

    /// A unit only while someone follows the stream (no cost otherwise).
    /// Subscribers join and leave with every shard entered (a point in time
    /// where no script or transaction runs), so a unit cannot start before
    /// a subscription and end after it.
    pub fn begin_if_active(stream: &'a Stream) -> Option<Unit<'a>> {
        stream.active().then(|| Unit::begin(stream))
    }
}

/// Collects the writes on this thread until dropped, then forgets them: a
/// YES-mode Lua debugging session writes to a scratch copy nobody follows.
pub struct Discarded(());

impl Discarded {
    pub fn begin(_stream: &Stream) -> Discarded {
        DEPTH.with(|d| d.set(d.get() + 1));
        Discarded(())
    }
}

impl Drop for Discarded {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            d.set(d.get() - 1);
            d.get()
        });
        if depth == 0 {
            UNIT.with(|u| u.borrow_mut().clear());
        }
    }
}

impl Drop for Unit<'_> {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            d.set(d.get() - 1);
            d.get()
        });
        let done = if depth == 0 { UNIT.with(|u| std::mem::take(&mut *u.borrow_mut())) } else { Vec::new() };
        self.stream.emit_unit(&done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Capture(Mutex<Vec<u8>>);

    impl Subscriber for Capture {
        fn append(&self, bytes: &[u8], end: u64) {
            let mut c = self.0.lock();
            c.extend_from_slice(bytes);
            assert_eq!(c.len() as u64, end);
        }
    }

    fn b(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())).collect()
    }

    #[test]
    fn units_select_and_wrap() {
        let stream = Stream::default();
        emit(&stream, 0, &b(&["SET", "a", "1"]));
        assert!(!stream.active(), "nothing subscribed: nothing kept");
        let cap = Arc::new(Capture::default());
        stream.subscribe(cap.clone());
        emit(&stream, 0, &b(&["SET", "a", "1"]));
        {
            let _unit = Unit::begin(&stream);
            emit(&stream, 0, &b(&["INCR", "n"]));
            {
                let _inner = Unit::begin(&stream);
                emit(&stream, 2, &b(&["DEL", "x"]));
            }
        }
        {
            let _single = Unit::begin(&stream);
            emit(&stream, 2, &b(&["DEL", "y"]));
        }
        {
            let _unit = Unit::begin(&stream);
            emit(&stream, 3, &b(&["DEL", "z"]));
            emit(&stream, 3, &b(&["DEL", "w"]));
        }
        let text = String::from_utf8(cap.0.lock().clone()).unwrap().replace("\r\n", " ");
        assert_eq!(
            text,
            "*2 $6 SELECT $1 0 *3 $3 SET $1 a $1 1 *1 $5 MULTI *2 $4 INCR $1 n *2 $6 SELECT $1 2 \
             *2 $3 DEL $1 x *1 $4 EXEC *2 $3 DEL $1 y \
             *2 $6 SELECT $1 3 *1 $5 MULTI *2 $3 DEL $1 z *2 $3 DEL $1 w *1 $4 EXEC "
        );
    }
}
