//! The Lua debugger (LDB): `SCRIPT DEBUG YES|SYNC|NO` and the debugging
//! session `redis-cli --ldb` drives, with Redis 7.0's wire protocol.
//!
//! After `SCRIPT DEBUG`, the connection's next EVAL runs its script on a
//! dedicated thread with a line hook. Whenever the script stops (first line,
//! a step, a breakpoint, `redis.breakpoint()`), the thread sends the log
//! lines collected so far (one array of status lines) to the connection's
//! task and waits for the client's next debugger command, which the task
//! forwards when it arrives: no worker thread of the runtime ever waits for
//! the human. When the script ends the thread sends the last lines plus
//! `<endsession>` and the EVAL reply, and the connection closes, as in Redis.
//!
//! SYNC runs the script on its shard, which stays entered (its other clients
//! wait, and get BUSY past `busy-reply-threshold` as with a long script)
//! until the session ends; changes are kept. YES (Redis forks a child whose
//! changes vanish) runs the script on a private scratch shard: the declared
//! keys are copied in at the start, any other key the first time a command
//! of the script names it; the scratch and everything written to it are
//! dropped at the end, nothing is propagated.

use super::cache::{Flags, Script};
use super::router::{self, Job, Request, Start};
use crate::commands::registry::Command;
use crate::net::client::ClientState;
use crate::protocol::Reply;
use crate::server::Server;
use crate::session::Session;
use crate::shard::{Shard, ShardData};
use bytes::Bytes;
use mlua::ffi;
use std::cell::RefCell;
use std::ffi::{c_int, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// `ClientState::ldb`: no debugging.
pub const OFF: u8 = 0;
/// SCRIPT DEBUG YES: the session's changes are rolled back.
pub const YES: u8 = 1;
/// SCRIPT DEBUG SYNC: the session's changes are kept.
pub const SYNC: u8 = 2;

/// Redis's default for `maxlen` (replies and values in the log).
const MAXLEN_DEFAULT: usize = 256;
/// Redis's LDB_BREAKPOINTS_MAX.
const BREAKPOINTS_MAX: usize = 64;
/// Nesting shown of a table value (Redis's LUA_MINSTACK/2).
const MAX_VALUE_DEPTH: u32 = 10;
/// Instructions between two count events (the infinite-loop check).
const COUNT_EVERY: c_int = 100_000;

/// Debugging sessions running now, on any thread: `redis.call` looks at
/// its thread's session only while this is non-zero.
static SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// What the session's thread sends the connection.
enum Msg {
    /// The script stopped: these lines (an encoded array), then the next
    /// debugger command is awaited.
    Stop(Vec<u8>),
    /// The script ended: the last lines (ending with `<endsession>`) and the
    /// EVAL reply; the connection closes after it.
    End(Vec<u8>, Reply),
}

/// A connection's running debugging session, as its task sees it.
pub struct Active {
    to: mpsc::Sender<Vec<Bytes>>,
    from: tokio::sync::mpsc::UnboundedReceiver<Msg>,
    /// Replies of the commands pipelined before the EVAL, not yet written
    /// when the session began. Redis's debugger writes to the socket
    /// directly, around the client's output buffer, so those replies only
    /// follow the session's last lines (`<endsession>`).
    held: Vec<u8>,
}

/// SCRIPT DEBUG YES|SYNC|NO.
pub fn script_debug(client: &mut ClientState, mode: &[u8]) -> Reply {
    let m = if mode.eq_ignore_ascii_case(b"no") {
        OFF
    } else if mode.eq_ignore_ascii_case(b"yes") {
        YES
    } else if mode.eq_ignore_ascii_case(b"sync") {
        SYNC
    } else {
        return Reply::err("Use SCRIPT DEBUG YES/SYNC/NO");
    };
    client.ldb = m;
    Reply::ok()
}

/// EVALSHA on a connection in debug mode (also inside EXEC).
pub const EVALSHA_REFUSED: &str = "Please use EVAL instead of EVALSHA for debugging";

/// The error SCRIPT DEBUG answers with replies pending (inside EXEC).
pub const IN_PIPELINE: &str = "SCRIPT DEBUG must be called outside a pipeline";

/// Encodes log lines as Redis sends them: an array of status lines, CR and
/// LF in a line turned into spaces.
fn encode_logs(logs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", logs.len()).into_bytes();
    for l in logs {
        out.push(b'+');
        out.extend(l.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// EVAL* on a connection in debug mode: starts the session (or refuses).
pub async fn eval(conn: &mut Session, cmd: Command, args: &[Bytes]) -> Reply {
    if cmd.spec.name.starts_with("evalsha") {
        if args[1].len() != 40 {
            return Reply::error(crate::protocol::errors::NOSCRIPT);
        }
        return Reply::err(EVALSHA_REFUSED);
    }
    let server = conn.server.clone();
    conn.flatten_out();
    let held = std::mem::take(&mut conn.out);
    let prepared = match router::prepare_eval(&server, cmd, args) {
        Ok(e) => (e.script.clone(), e.cached, e.keys.to_vec(), e.argv.to_vec(), e.read_only),
        Err(reply) => {
            // Redis starts the session before it looks at the arguments.
            conn.out.extend_from_slice(&encode_logs(&[b"<endsession>".to_vec()]));
            conn.out.extend_from_slice(&held);
            conn.client.close_after_reply = true;
            super::settle(&server, cmd, &reply, None);
            return reply;
        }
    };
    let (to, rx) = mpsc::channel();
    let (tx, from) = tokio::sync::mpsc::unbounded_channel();
    let job = DebugJob {
        server: server.clone(),
        client: copy_client(&conn.client),
        cmd,
        script: prepared.0,
        cached: prepared.1,
        keys: prepared.2,
        argv: prepared.3,
        read_only: prepared.4,
        sync: conn.client.ldb == SYNC,
        home: conn.home_shard(),
    };
    let spawned =
        std::thread::Builder::new().name("moonshard-ldb".into()).spawn(move || session_thread(job, rx, tx.clone()));
    if let Err(e) = spawned {
        conn.out = held;
        conn.client.ldb = OFF;
        return Reply::err(format!("Can't run EVAL in debugging mode: {e}"));
    }
    let mut active = Active { to, from, held };
    let reply = next(conn, &mut active).await;
    if !conn.client.close_after_reply {
        conn.ldb = Some(Box::new(active));
    }
    reply
}

/// A debugger command from the client of a running session: forwarded to
/// the session's thread; its answer goes to the output.
pub async fn command(conn: &mut Session, argv: &[Bytes]) {
    let Some(mut active) = conn.ldb.take() else {
        return;
    };
    if active.to.send(argv.to_vec()).is_err() {
        conn.client.close_after_reply = true;
        return;
    }
    let reply = next(conn, &mut active).await;
    if !conn.client.close_after_reply {
        conn.ldb = Some(active);
    }
    conn.push(reply);
}

/// Waits (asynchronously) for the session's next message and writes it.
async fn next(conn: &mut Session, active: &mut Active) -> Reply {
    match active.from.recv().await {
        Some(Msg::Stop(logs)) => {
            conn.out.extend_from_slice(&logs);
            Reply::NoReply
        }
        Some(Msg::End(logs, reply)) => {
            conn.out.extend_from_slice(&logs);
            conn.out.extend_from_slice(&std::mem::take(&mut active.held));
            conn.client.close_after_reply = true;
            conn.client.ldb = OFF;
            reply
        }
        None => {
            conn.out.extend_from_slice(&std::mem::take(&mut active.held));
            conn.client.close_after_reply = true;
            conn.client.ldb = OFF;
            Reply::err("the Lua debugging session ended unexpectedly")
        }
    }
}

/// The caller's state for the session's thread.
fn copy_client(c: &ClientState) -> ClientState {
    ClientState {
        info: c.info.clone(),
        db: c.db,
        resp: c.resp,
        authenticated: c.authenticated,
        acl: c.acl.clone(),
        close_after_reply: false,
        reply_mode: Default::default(),
        cluster_asking: c.cluster_asking,
        cluster_readonly: c.cluster_readonly,
        ldb: OFF,
    }
}

struct DebugJob {
    server: Arc<Server>,
    client: ClientState,
    cmd: Command,
    script: Arc<Script>,
    cached: bool,
    keys: Vec<Bytes>,
    argv: Vec<Bytes>,
    read_only: bool,
    sync: bool,
    home: usize,
}

/// The debugger's state, on the session's thread.
struct Ldb {
    lines: Vec<Vec<u8>>,
    bp: Vec<i32>,
    step: bool,
    luabp: bool,
    maxlen: usize,
    hint_sent: bool,
    current: i32,
    logs: Vec<Vec<u8>>,
    rx: mpsc::Receiver<Vec<Bytes>>,
    tx: tokio::sync::mpsc::UnboundedSender<Msg>,
    gone: bool,
    since: Instant,
    threshold_ms: u64,
    server: Arc<Server>,
    /// YES mode: the keys (db, name) already copied into the scratch shard.
    scratch: Option<ahash::AHashSet<(usize, Vec<u8>)>>,
}

thread_local! {
    static LDB: RefCell<Option<Ldb>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's session, if one runs here.
fn with_ldb<R>(f: impl FnOnce(&mut Ldb) -> R) -> Option<R> {
    LDB.with(|l| l.try_borrow_mut().ok().and_then(|mut l| l.as_mut().map(f)))
}

/// Whether a debugging session runs on this thread.
pub fn active() -> bool {
    SESSIONS.load(Ordering::Relaxed) != 0 && LDB.with(|l| l.try_borrow().is_ok_and(|l| l.is_some()))
}

/// Whether `redis.call` logs its command and reply now (stepping).
#[inline]
pub fn logging() -> bool {
    SESSIONS.load(Ordering::Relaxed) != 0 && with_ldb(|l| l.step).unwrap_or(false)
}

/// Adds a line to the log.
pub fn log(line: Vec<u8>) {
    with_ldb(|l| l.logs.push(line));
}

impl Ldb {
    /// Redis's ldbLogWithMaxLen: long entries are cut (with a hint, once).
    fn log_max(&mut self, mut entry: Vec<u8>) {
        let mut trimmed = false;
        if self.maxlen != 0 && entry.len() > self.maxlen {
            entry.truncate(self.maxlen);
            entry.extend_from_slice(b" ...");
            trimmed = true;
        }
        self.logs.push(entry);
        if trimmed && !self.hint_sent {
            self.hint_sent = true;
            self.logs.push(b"<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.".to_vec());
        }
    }

    fn send(&mut self) {
        let logs = std::mem::take(&mut self.logs);
        let _ = self.tx.send(Msg::Stop(encode_logs(&logs)));
    }

    fn source_line(&self, n: i32) -> &[u8] {
        match usize::try_from(n - 1).ok().and_then(|i| self.lines.get(i)) {
            Some(l) => l,
            None => b"<out of range source code line>",
        }
    }

    fn log_source_line(&mut self, n: i32) {
        let bp = self.bp.contains(&n);
        let prefix = match (self.current == n, bp) {
            (true, true) => "->#",
            (true, false) => "-> ",
            (false, true) => "  #",
            (false, false) => "   ",
        };
        let mut line = format!("{prefix}{n:<3} ").into_bytes();
        line.extend_from_slice(self.source_line(n));
        self.logs.push(line);
    }

    fn list(&mut self, around: i32, context: i32) {
        for j in 1..=self.lines.len() as i32 {
            if around != 0 && (around - j).abs() > context {
                continue;
            }
            self.log_source_line(j);
        }
    }

    fn brk(&mut self, argv: &[Bytes]) {
        if argv.len() == 1 {
            if self.bp.is_empty() {
                self.logs.push(b"No breakpoints set. Use 'b <line>' to add one.".to_vec());
            } else {
                self.logs.push(format!("{} breakpoints set:", self.bp.len()).into_bytes());
                for b in self.bp.clone() {
                    self.log_source_line(b);
                }
            }
            return;
        }
        for arg in &argv[1..] {
            let Some(line) = crate::util::parse_i64(arg) else {
                let mut m = b"Invalid argument:'".to_vec();
                m.extend_from_slice(arg);
                m.push(b'\'');
                self.logs.push(m);
                continue;
            };
            if line == 0 {
                self.bp.clear();
                self.logs.push(b"All breakpoints removed.".to_vec());
            } else if line > 0 {
                if self.bp.len() == BREAKPOINTS_MAX {
                    self.logs.push(b"Too many breakpoints set.".to_vec());
                } else if line <= self.lines.len() as i64 && !self.bp.contains(&(line as i32)) {
                    self.bp.push(line as i32);
                    self.list(line as i32, 1);
                } else {
                    self.logs.push(b"Wrong line number.".to_vec());
                }
            } else {
                let at = line.unsigned_abs().min(i32::MAX as u64) as i32;
                match self.bp.iter().position(|&b| b == at) {
                    Some(i) => {
                        self.bp.remove(i);
                        self.logs.push(b"Breakpoint removed.".to_vec());
                    }
                    None => self.logs.push(b"No breakpoint in the specified line.".to_vec()),
                }
            }
        }
    }

    fn maxlen(&mut self, argv: &[Bytes]) {
        if argv.len() == 2 {
            let mut v = atoi(&argv[1]);
            self.hint_sent = true;
            if v != 0 && v <= 60 {
                v = 60;
            }
            self.maxlen = v.max(0) as usize;
        }
        let line = if self.maxlen != 0 {
            format!("<value> replies are truncated at {} bytes.", self.maxlen)
        } else {
            "<value> replies are unlimited.".to_string()
        };
        self.logs.push(line.into_bytes());
    }

    fn help(&mut self) {
        for l in HELP {
            self.logs.push(l.as_bytes().to_vec());
        }
    }
}

/// The debugger's help, as Redis words it (it is part of the reply).
const HELP: &[&str] = &[
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
];

/// C's atoi: an optional sign and the digits that follow, else 0.
fn atoi(s: &[u8]) -> i64 {
    let s = match s.iter().position(|c| !c.is_ascii_whitespace()) {
        Some(i) => &s[i..],
        None => return 0,
    };
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    let n = if neg { -n } else { n };
    n.clamp(i32::MIN as i64, i32::MAX as i64)
}

/// The session's thread: runs the script with the debugger armed.
fn session_thread(job: DebugJob, rx: mpsc::Receiver<Vec<Bytes>>, tx: tokio::sync::mpsc::UnboundedSender<Msg>) {
    let server = job.server.clone();
    // The source as the debugger lists it: trailing newlines dropped, split
    // at LF.
    let mut src: &[u8] = &job.script.source;
    while let Some((&last, rest)) = src.split_last() {
        if last == b'\n' || last == b'\r' {
            src = rest;
        } else {
            break;
        }
    }
    let lines: Vec<Vec<u8>> =
        if src.is_empty() { Vec::new() } else { src.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect() };
    let threshold = server.busy_threshold();
    LDB.with(|l| {
        *l.borrow_mut() = Some(Ldb {
            lines,
            bp: Vec::new(),
            step: true,
            luabp: false,
            maxlen: MAXLEN_DEFAULT,
            hint_sent: false,
            current: 0,
            logs: Vec::new(),
            rx,
            tx: tx.clone(),
            gone: false,
            since: Instant::now(),
            threshold_ms: if threshold > 0 { threshold } else { 5000 },
            server: server.clone(),
            scratch: (!job.sync).then(Default::default),
        })
    });
    SESSIONS.fetch_add(1, Ordering::Relaxed);
    let (reply, failed) = run(&job);
    SESSIONS.fetch_sub(1, Ordering::Relaxed);
    let state = LDB.with(|l| l.borrow_mut().take());
    super::settle(&server, job.cmd, &reply, failed);
    let mut logs = state.map(|s| s.logs).unwrap_or_default();
    logs.push(b"<endsession>".to_vec());
    let _ = tx.send(Msg::End(encode_logs(&logs), reply));
}

/// Runs the job's script on its shard (SYNC) or on a scratch copy (YES).
fn run(job: &DebugJob) -> (Reply, Option<u32>) {
    let server = &job.server;
    let flags: Flags = job.script.flags;
    let (shard_id, slot) = if server.standalone {
        (job.keys.first().map_or(job.home, |k| server.shards.for_key(k)), None)
    } else {
        match router::route(server, &job.keys, &flags) {
            Ok(Some((shard, slot))) => (shard, slot),
            Ok(None) => (job.home, None),
            Err(r) => return (r, None),
        }
    };
    let req = Request {
        job: Job::Script(&job.script, job.cached),
        keys: &job.keys,
        argv: &job.argv,
        flags,
        read_only: job.read_only,
        in_exec: false,
        failed_calls: router::not_run(),
    };
    let start = Start { slot, unbound: job.keys.is_empty(), may_redirect: false };
    let real = server.shards.get(shard_id);
    let reply = if job.sync {
        let mut guard = real.lock_blocking();
        let began = crate::util::clock_ns();
        let (reply, _) = router::run_on_shard(server, real, &mut guard, Vec::new(), &job.client, &req, start);
        drop(guard);
        real.stats.ran(1, crate::util::clock_ns().saturating_sub(began));
        reply
    } else {
        let private = Shard::new(shard_id, server.databases());
        let mut scratch = private.lock_blocking();
        for k in &job.keys {
            copy_key(server, &mut scratch, job.client.db, k);
        }
        // Nothing the session writes reaches the write stream.
        let _unit = crate::propagate::Discarded::begin(&server.propagation);
        let (reply, _) = router::run_on_shard(server, &private, &mut scratch, Vec::new(), &job.client, &req, start);
        reply
    };
    (reply, req.failed_calls())
}

/// YES mode: copies `key` of database `db` from its shard into the
/// scratch shard, the first time the session names it.
fn copy_key(server: &Server, scratch: &mut ShardData, db: usize, key: &[u8]) {
    let first = with_ldb(|l| l.scratch.as_mut().is_some_and(|s| s.insert((db, key.to_vec())))).unwrap_or(false);
    if !first || db >= scratch.dbs.len() {
        return;
    }
    let now = crate::storage::now_ms();
    let entry = {
        let mut real = server.shards.get(server.shards.for_key(key)).lock_blocking();
        real.dbs
            .get_mut(db)
            .and_then(|d| d.get(key, now))
            .map(|e| crate::storage::Entry { value: e.value.clone(), expire_at: e.expire_at })
    };
    if let Some(e) = entry {
        scratch.dbs[db].put(key, e);
    }
}

/// Whether `shard` is a YES session's scratch shard (not the server's own).
#[inline]
pub fn is_scratch(server: &Server, shard: &Shard) -> bool {
    SESSIONS.load(Ordering::Relaxed) != 0 && !std::ptr::eq(shard, server.shards.get(shard.id))
}

/// YES mode: a key a command of the script names, copied in on first use.
pub fn touch(server: &Server, scratch: &mut ShardData, db: usize, key: &[u8]) {
    copy_key(server, scratch, db, key);
}

// ------------------------------------------------------------- the hook

/// Arms the debugger's hook on `lua` (line events, and count events for
/// the infinite-loop check).
pub fn install_hook(lua: &mlua::Lua) {
    // SAFETY: run on the VM's main state between calls; `line_hook` has
    // the signature Lua expects of a hook.
    unsafe {
        let _ = lua.exec_raw::<()>((), |state| {
            ffi::lua_sethook(state, Some(line_hook), ffi::LUA_MASKLINE | ffi::LUA_MASKCOUNT, COUNT_EVERY);
        });
    }
}

/// What the hook does after its Rust part.
enum Action {
    Go,
    /// Ends the script with this error (`{err = ...}`).
    Raise(Vec<u8>),
}

unsafe extern "C-unwind" fn line_hook(state: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY: Lua calls the hook with a valid state and record.
    let action =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { on_hook(state, ar) })).unwrap_or(Action::Go);
    if let Action::Raise(msg) = action {
        // SAFETY: a hook may raise errors in Lua 5.1; nothing that needs
        // dropping is alive once the message is on the Lua stack.
        unsafe { raise_err(state, msg) }
    }
}

/// Raises `{err = msg}` as Redis's luaPushError + luaError do.
///
/// # Safety
/// `state` is a running Lua state.
unsafe fn raise_err(state: *mut ffi::lua_State, msg: Vec<u8>) -> ! {
    // SAFETY: per the contract; stack space is checked first.
    unsafe {
        ffi::lua_checkstack(state, 3);
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_pushlstring(state, msg.as_ptr() as *const std::ffi::c_char, msg.len());
        drop(msg);
        ffi::lua_setfield(state, -2, c"err".as_ptr());
        ffi::lua_error(state)
    }
}

/// The hook's work (Redis's luaLdbLineHook).
///
/// # Safety
/// `state` and `ar` come from Lua's hook call.
unsafe fn on_hook(state: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) -> Action {
    // SAFETY: per the contract.
    let (line, ours, event) = unsafe {
        ffi::lua_getstack(state, 0, ar);
        ffi::lua_getinfo(state, c"Sl".as_ptr(), ar);
        let src = CStr::from_ptr((*ar).short_src.as_ptr()).to_bytes();
        ((*ar).currentline, contains(src, b"user_script"), (*ar).event)
    };
    let stop = with_ldb(|l| {
        l.current = line;
        if !ours {
            return None;
        }
        let bp = l.bp.contains(&line) || l.luabp;
        let mut timeout = false;
        if event == ffi::LUA_HOOKCOUNT && !l.step && !bp {
            if l.since.elapsed().as_millis() as u64 >= l.threshold_ms {
                timeout = true;
                l.step = true;
            } else {
                return None;
            }
        }
        if !(l.step || bp) {
            return None;
        }
        let reason = if bp {
            if l.luabp {
                "redis.breakpoint() called"
            } else {
                "break point"
            }
        } else if timeout {
            "timeout reached, infinite loop?"
        } else {
            "step over"
        };
        l.step = false;
        l.luabp = false;
        l.logs.push(format!("* Stopped at {line}, stop reason = {reason}").into_bytes());
        l.log_source_line(line);
        l.send();
        Some(timeout)
    })
    .flatten();
    let Some(timeout) = stop else {
        return Action::Go;
    };
    // SAFETY: per the contract.
    let r = unsafe { repl(state) };
    with_ldb(|l| l.since = Instant::now());
    match r {
        Exit::Continue => Action::Go,
        Exit::Gone if timeout => {
            Action::Raise(b"ERR timeout during Lua debugging with client closing connection".to_vec())
        }
        Exit::Gone => Action::Go,
        Exit::Raise(m) => Action::Raise(m),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

enum Exit {
    Continue,
    Gone,
    Raise(Vec<u8>),
}

/// Reads and runs debugger commands until one resumes the script.
///
/// # Safety
/// `state` is the running Lua state, inside the hook.
unsafe fn repl(state: *mut ffi::lua_State) -> Exit {
    loop {
        // Waits for the client's next command, looking at shutdown now and
        // then: a session waiting for its human must not hold the server.
        let argv = loop {
            let got = with_ldb(|l| {
                if l.gone {
                    return Err(mpsc::RecvTimeoutError::Disconnected);
                }
                l.rx.recv_timeout(std::time::Duration::from_millis(100))
            });
            match got {
                Some(Ok(argv)) => break Some(argv),
                Some(Err(mpsc::RecvTimeoutError::Timeout)) => {
                    if with_ldb(|l| l.server.shutting_down.load(Ordering::Relaxed)).unwrap_or(true) {
                        super::call::with_run(|run| run.abort = Some(super::call::Abort::Shutdown));
                        return Exit::Raise(b"ERR Script killed by server shutdown".to_vec());
                    }
                }
                _ => break None,
            }
        };
        let Some(argv) = argv else {
            with_ldb(|l| {
                l.gone = true;
                l.step = false;
                l.bp.clear();
            });
            return Exit::Gone;
        };
        // Redis's parser takes 1..=1024 arguments of 1..=1024 bytes.
        if argv.is_empty() || argv.len() > 1024 || argv.iter().any(|a| a.is_empty() || a.len() > 1024) {
            return Exit::Raise(b"ERR protocol error".to_vec());
        }
        let name = argv[0].to_ascii_lowercase();
        let is = |a: &str, b: &str| name == a.as_bytes() || name == b.as_bytes();
        if is("h", "help") {
            with_ldb(|l| l.help());
        } else if is("s", "step") || is("n", "next") {
            with_ldb(|l| l.step = true);
            return Exit::Continue;
        } else if is("c", "continue") {
            return Exit::Continue;
        } else if is("t", "trace") {
            // SAFETY: per the contract.
            unsafe { trace(state) };
        } else if is("m", "maxlen") {
            with_ldb(|l| l.maxlen(&argv));
        } else if is("b", "break") {
            with_ldb(|l| l.brk(&argv));
        } else if is("e", "eval") {
            // SAFETY: per the contract.
            unsafe { eval_code(state, &argv) };
        } else if is("a", "abort") {
            return Exit::Raise(b"ERR script aborted for user request".to_vec());
        } else if argv.len() > 1 && is("r", "redis") {
            // SAFETY: per the contract.
            unsafe { redis_cmd(state, &argv) };
        } else if is("p", "print") {
            // SAFETY: per the contract.
            unsafe {
                if argv.len() == 2 {
                    print_var(state, &argv[1]);
                } else {
                    print_all(state);
                }
            }
        } else if is("l", "list") {
            with_ldb(|l| {
                let mut around = l.current;
                let mut ctx = 5;
                if argv.len() > 1 {
                    let n = atoi(&argv[1]);
                    if n > 0 {
                        around = n as i32;
                    }
                }
                if argv.len() > 2 {
                    ctx = atoi(&argv[2]) as i32;
                }
                l.list(around, ctx);
            });
        } else if is("w", "whole") {
            with_ldb(|l| l.list(1, 1_000_000));
        } else {
            log(b"<error> Unknown Redis Lua debugger command or wrong number of arguments.".to_vec());
        }
        with_ldb(|l| l.send());
    }
}

/// Appends the value at `idx` as Redis's debugger shows it.
///
/// # Safety
/// `state` is valid and `idx` a valid stack index.
unsafe fn cat_value(state: *mut ffi::lua_State, idx: c_int, level: u32, out: &mut Vec<u8>) {
    if level == MAX_VALUE_DEPTH {
        out.extend_from_slice(b"<max recursion level reached! Nested table?>");
        return;
    }
    // SAFETY: per the contract; every push is checked for stack space.
    unsafe {
        let idx = if idx < 0 && idx > ffi::LUA_REGISTRYINDEX { ffi::lua_gettop(state) + idx + 1 } else { idx };
        match ffi::lua_type(state, idx) {
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(state, idx, &mut len);
                crate::util::quote_repr(out, std::slice::from_raw_parts(p as *const u8, len));
            }
            ffi::LUA_TBOOLEAN => {
                out.extend_from_slice(if ffi::lua_toboolean(state, idx) != 0 { b"true" } else { b"false" })
            }
            ffi::LUA_TNUMBER => {
                out.extend_from_slice(super::libs::cjson::format_g(ffi::lua_tonumber(state, idx) as f64, 6).as_bytes())
            }
            ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
            ffi::LUA_TTABLE => {
                if ffi::lua_checkstack(state, 3) == 0 {
                    out.extend_from_slice(b"<max recursion level reached! Nested table?>");
                    return;
                }
                let mut expected = 1.0f64;
                let mut is_array = true;
                let (mut r1, mut r2) = (Vec::new(), Vec::new());
                ffi::lua_pushnil(state);
                while ffi::lua_next(state, idx) != 0 {
                    if is_array
                        && (ffi::lua_type(state, -2) != ffi::LUA_TNUMBER
                            || ffi::lua_tonumber(state, -2) as f64 != expected)
                    {
                        is_array = false;
                    }
                    cat_value(state, -1, level + 1, &mut r1);
                    r1.extend_from_slice(b"; ");
                    r2.push(b'[');
                    cat_value(state, -2, level + 1, &mut r2);
                    r2.extend_from_slice(b"]=");
                    cat_value(state, -1, level + 1, &mut r2);
                    r2.extend_from_slice(b"; ");
                    ffi::lua_settop(state, -2);
                    expected += 1.0;
                }
                let r = if is_array { &mut r1 } else { &mut r2 };
                r.truncate(r.len().saturating_sub(2));
                out.push(b'{');
                out.extend_from_slice(r);
                out.push(b'}');
            }
            t @ (ffi::LUA_TFUNCTION | ffi::LUA_TUSERDATA | ffi::LUA_TTHREAD | ffi::LUA_TLIGHTUSERDATA) => {
                let p = ffi::lua_topointer(state, idx);
                let name = match t {
                    ffi::LUA_TFUNCTION => "function",
                    ffi::LUA_TUSERDATA => "userdata",
                    ffi::LUA_TTHREAD => "thread",
                    _ => "light-userdata",
                };
                out.extend_from_slice(format!("\"{name}@{p:p}\"").as_bytes());
            }
            _ => out.extend_from_slice(b"\"<unknown-lua-type>\""),
        }
    }
}

/// Logs `prefix` and the value on top of the stack, cut at `maxlen`.
///
/// # Safety
/// `state` is valid with a value on top.
unsafe fn log_top(state: *mut ffi::lua_State, prefix: &[u8]) {
    let mut s = prefix.to_vec();
    // SAFETY: per the contract.
    unsafe { cat_value(state, -1, 0, &mut s) };
    with_ldb(|l| l.log_max(s));
}

/// `print` with no name: the locals of the current frame.
///
/// # Safety
/// `state` is the running state inside the hook.
unsafe fn print_all(state: *mut ffi::lua_State) {
    let mut vars = 0;
    // SAFETY: per the contract; `lua_getlocal` pushes one value per name.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(state, 0, &mut ar) != 0 {
            let mut i = 1;
            loop {
                let name = ffi::lua_getlocal(state, &ar, i);
                if name.is_null() {
                    break;
                }
                i += 1;
                let name = CStr::from_ptr(name).to_bytes();
                if !contains(name, b"(*temporary)") {
                    let mut prefix = b"<value> ".to_vec();
                    prefix.extend_from_slice(name);
                    prefix.extend_from_slice(b" = ");
                    log_top(state, &prefix);
                    vars += 1;
                }
                ffi::lua_settop(state, -2);
            }
        }
    }
    if vars == 0 {
        log(b"No local variables in the current context.".to_vec());
    }
}

/// `print <var>`: the innermost local of that name, or KEYS / ARGV.
///
/// # Safety
/// `state` is the running state inside the hook.
unsafe fn print_var(state: *mut ffi::lua_State, var: &[u8]) {
    // SAFETY: per the contract.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        let mut level = 0;
        while ffi::lua_getstack(state, level, &mut ar) != 0 {
            level += 1;
            let mut i = 1;
            loop {
                let name = ffi::lua_getlocal(state, &ar, i);
                if name.is_null() {
                    break;
                }
                i += 1;
                if CStr::from_ptr(name).to_bytes() == var {
                    log_top(state, b"<value> ");
                    ffi::lua_settop(state, -2);
                    return;
                }
                ffi::lua_settop(state, -2);
            }
        }
        if var == b"ARGV" || var == b"KEYS" {
            let name = if var == b"ARGV" { c"ARGV" } else { c"KEYS" };
            ffi::lua_getfield(state, ffi::LUA_GLOBALSINDEX, name.as_ptr());
            log_top(state, b"<value> ");
            ffi::lua_settop(state, -2);
        } else {
            log(b"No such variable.".to_vec());
        }
    }
}

/// The text of the error value on top of the stack.
///
/// # Safety
/// `state` is valid with a value on top.
unsafe fn error_text(state: *mut ffi::lua_State) -> Vec<u8> {
    // SAFETY: per the contract.
    unsafe {
        if ffi::lua_type(state, -1) == ffi::LUA_TTABLE {
            ffi::lua_checkstack(state, 1);
            ffi::lua_getfield(state, -1, c"err".as_ptr());
            let t = error_text(state);
            ffi::lua_settop(state, -2);
            return t;
        }
        let mut len = 0usize;
        let p = ffi::lua_tolstring(state, -1, &mut len);
        if p.is_null() {
            return b"(error object is not a string)".to_vec();
        }
        std::slice::from_raw_parts(p as *const u8, len).to_vec()
    }
}

/// `eval <code>`: runs the code (as an expression if it is one) and shows
/// what it returns.
///
/// # Safety
/// `state` is the running state inside the hook.
unsafe fn eval_code(state: *mut ffi::lua_State, argv: &[Bytes]) {
    let code = argv[1..].join(&b' ');
    let mut expr = b"return ".to_vec();
    expr.extend_from_slice(&code);
    // SAFETY: per the contract; the chunk gets the thread's (sandboxed)
    // globals, and runs in a protected call.
    unsafe {
        if ffi::lua_checkstack(state, 4) == 0 {
            return;
        }
        let load = |b: &[u8]| {
            ffi::luaL_loadbuffer(state, b.as_ptr() as *const std::ffi::c_char, b.len(), c"@ldb_eval".as_ptr())
        };
        if load(&expr) != 0 {
            ffi::lua_settop(state, -2);
            if load(&code) != 0 {
                let mut m = b"<error> ".to_vec();
                m.extend_from_slice(&error_text(state));
                ffi::lua_settop(state, -2);
                log(m);
                return;
            }
        }
        if ffi::lua_pcall(state, 0, 1, 0) != 0 {
            let mut m = b"<error> ".to_vec();
            m.extend_from_slice(&error_text(state));
            ffi::lua_settop(state, -2);
            log(m);
            return;
        }
        log_top(state, b"<retval> ");
        ffi::lua_settop(state, -2);
    }
}

/// `redis <cmd>`: calls `redis.call` with logging forced on.
///
/// # Safety
/// `state` is the running state inside the hook.
unsafe fn redis_cmd(state: *mut ffi::lua_State, argv: &[Bytes]) {
    // SAFETY: per the contract; the call is protected.
    unsafe {
        if ffi::lua_checkstack(state, argv.len() as c_int + 2) == 0 {
            return;
        }
        let top = ffi::lua_gettop(state);
        ffi::lua_getfield(state, ffi::LUA_GLOBALSINDEX, c"redis".as_ptr());
        ffi::lua_getfield(state, -1, c"call".as_ptr());
        for a in &argv[1..] {
            ffi::lua_pushlstring(state, a.as_ptr() as *const std::ffi::c_char, a.len());
        }
        with_ldb(|l| l.step = true);
        ffi::lua_pcall(state, argv.len() as c_int - 1, 1, 0);
        with_ldb(|l| l.step = false);
        ffi::lua_settop(state, top);
    }
}

/// `trace`: the script's frames, innermost first.
///
/// # Safety
/// `state` is the running state inside the hook.
unsafe fn trace(state: *mut ffi::lua_State) {
    let mut level = 0;
    // SAFETY: per the contract.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        while ffi::lua_getstack(state, level, &mut ar) != 0 {
            ffi::lua_getinfo(state, c"Snl".as_ptr(), &mut ar);
            let src = CStr::from_ptr(ar.short_src.as_ptr()).to_bytes();
            if contains(src, b"user_script") {
                let mut m = if level == 0 { b"In ".to_vec() } else { b"From ".to_vec() };
                if ar.name.is_null() {
                    m.extend_from_slice(b"top level");
                } else {
                    m.extend_from_slice(CStr::from_ptr(ar.name).to_bytes());
                }
                m.push(b':');
                let line = ar.currentline;
                with_ldb(|l| {
                    l.logs.push(m);
                    l.log_source_line(line);
                });
            }
            level += 1;
        }
    }
    if level == 0 {
        log(b"<error> Can't retrieve Lua stack.".to_vec());
    }
}

// ---------------------------------------------------- the redis.* entries

/// `redis.breakpoint()`: stops at the next line in a session (true),
/// false outside one.
///
/// # Safety
/// Called by Lua as a C function with a valid state.
pub unsafe extern "C-unwind" fn breakpoint(state: *mut ffi::lua_State) -> c_int {
    let on = with_ldb(|l| l.luabp = true).is_some();
    // SAFETY: a C function has LUA_MINSTACK free slots.
    unsafe { ffi::lua_pushboolean(state, on as c_int) };
    1
}

/// `redis.debug(...)`: logs its arguments in a session; nothing outside.
///
/// # Safety
/// Called by Lua as a C function with a valid state.
pub unsafe extern "C-unwind" fn debug(state: *mut ffi::lua_State) -> c_int {
    let Some(line) = with_ldb(|l| l.current) else {
        return 0;
    };
    let mut s = format!("<debug> line {line}: ").into_bytes();
    // SAFETY: reading this call's arguments.
    unsafe {
        let argc = ffi::lua_gettop(state);
        for i in 1..=argc {
            cat_value(state, i, 0, &mut s);
            if i != argc {
                s.extend_from_slice(b", ");
            }
        }
    }
    log(s);
    0
}

// -------------------------------------------- redis.call's log entries

/// `<redis> cmd args...` (at most 10 shown).
pub fn log_command(argv: &[Bytes]) {
    let mut s = b"<redis>".to_vec();
    for (j, a) in argv.iter().enumerate() {
        if j == 10 {
            s.extend_from_slice(format!(" ... ({} more)", argv.len() - j - 1).as_bytes());
            break;
        }
        s.push(b' ');
        s.extend_from_slice(a);
    }
    log(s);
}

/// `<error> text` for a call that failed before it ran.
pub fn log_error(text: &str) {
    log(format!("<error> {text}").into_bytes());
}

/// `<reply> ...`: the command's reply in Redis's human form, cut at maxlen.
pub fn log_reply(reply: &Reply, resp: u8) {
    // Each error reply met while the reply becomes a Lua value is logged
    // first, as Redis logs it when it builds the error table.
    fn errors(r: &Reply) {
        match r {
            Reply::Error(e) => log(format!("<error> -{e}").into_bytes()),
            Reply::ErrorBytes(e) => {
                let mut m = b"<error> -".to_vec();
                m.extend_from_slice(e);
                log(m);
            }
            Reply::Array(items) | Reply::Set(items) => items.iter().for_each(errors),
            Reply::Map(pairs) => pairs.iter().for_each(|(k, v)| {
                errors(k);
                errors(v);
            }),
            _ => {}
        }
    }
    errors(reply);
    let mut wire = Vec::new();
    reply.encode(resp, &mut wire);
    let mut s = b"<reply> ".to_vec();
    let mut pos = 0;
    human(&wire, &mut pos, &mut s);
    with_ldb(|l| l.log_max(s));
}

/// The RESP line at `pos` (without CRLF), moving past it.
fn wire_line<'a>(wire: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let start = *pos;
    let end = wire[start..].windows(2).position(|w| w == b"\r\n").map_or(wire.len(), |i| start + i);
    *pos = (end + 2).min(wire.len());
    &wire[start..end]
}

/// Converts the RESP value at `pos` as Redis's ldbRedisProtocolToHuman.
fn human(wire: &[u8], pos: &mut usize, out: &mut Vec<u8>) {
    let Some(&kind) = wire.get(*pos) else {
        return;
    };
    let line = wire_line(wire, pos);
    let num = || crate::util::parse_i64(&line[1..]).unwrap_or(0);
    match kind {
        b':' => out.extend_from_slice(&line[1..]),
        b'$' => {
            let n = num();
            if n < 0 {
                out.extend_from_slice(b"NULL");
            } else {
                let end = (*pos + n as usize).min(wire.len());
                crate::util::quote_repr(out, &wire[*pos..end]);
                *pos = (end + 2).min(wire.len());
            }
        }
        b'+' | b'-' => crate::util::quote_repr(out, line),
        b'*' | b'~' => {
            let n = num();
            if n < 0 {
                out.extend_from_slice(b"NULL");
                return;
            }
            out.extend_from_slice(if kind == b'*' { b"[" } else { b"~(" });
            for j in 0..n {
                human(wire, pos, out);
                if j != n - 1 {
                    out.push(b',');
                }
            }
            out.push(if kind == b'*' { b']' } else { b')' });
        }
        b'%' => {
            let n = num();
            out.push(b'{');
            for j in 0..n {
                human(wire, pos, out);
                out.extend_from_slice(b" => ");
                human(wire, pos, out);
                if j != n - 1 {
                    out.push(b',');
                }
            }
            out.push(b'}');
        }
        b'_' => out.extend_from_slice(b"(null)"),
        b'#' => out.extend_from_slice(if line.get(1) == Some(&b't') { b"#true" } else { b"#false" }),
        b',' => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(&line[1..]);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_forms() {
        let cases: &[(&[u8], &str)] = &[
            (b":12\r\n", "12"),
            (b"$-1\r\n", "NULL"),
            (b"$3\r\na\"b\r\n", "\"a\\\"b\""),
            (b"+OK\r\n", "\"+OK\""),
            (b"-ERR x\r\n", "\"-ERR x\""),
            (b"*2\r\n:1\r\n$1\r\nx\r\n", "[1,\"x\"]"),
            (b"*-1\r\n", "NULL"),
            (b"%1\r\n+a\r\n:1\r\n", "{\"+a\" => 1}"),
            (b"~1\r\n:1\r\n", "~(1)"),
            (b"_\r\n", "(null)"),
            (b"#t\r\n", "#true"),
            (b",1.5\r\n", "(double) 1.5"),
        ];
        for (wire, want) in cases {
            let mut out = Vec::new();
            human(wire, &mut 0, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), *want);
        }
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi(b"12x"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b" 7"), 7);
    }

    #[test]
    fn logs_encoding() {
        assert_eq!(encode_logs(&[b"a\r\nb".to_vec(), b"".to_vec()]), b"*2\r\n+a  b\r\n+\r\n".to_vec());
    }
}
