//! One client connection: read, parse, route, execute, reply.
//!
//! A connection task reads whatever the socket has, parses every complete
//! request in it (a pipeline), executes them in order and writes all replies
//! with one write. Consecutive commands for the same shard run under one
//! entry into that shard, so a pipeline costs one lock per shard run, not
//! one per command.

use crate::commands::registry::{self, flags, Command, Exec, KeySpec};
use crate::commands::{ConnCtx, Ctx};
use crate::net::client::{ClientInfo, ClientState, ReplyMode};
use crate::net::limits::sleep_until;
use crate::net::limits::OutputLimit;
use crate::protocol::{Reply, RequestParser};
use crate::server::Server;
use crate::shard::ShardData;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub async fn run(server: Arc<Server>, mut stream: TcpStream, peer: SocketAddr) {
    server.stats.connections_received.fetch_add(1, Ordering::Relaxed);
    let maxclients = server.config.maxclients.load(Ordering::Relaxed) as usize;
    if !server.clients.admit(maxclients) {
        server.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
        return;
    }
    let laddr = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let info = server.clients.register(peer.to_string(), laddr, fd);
    let mut conn = Connection::new(server.clone(), stream, info.clone());
    conn.serve().await;
    server.clients.unregister(info.id);
}

/// The most output a pipelined batch holds back while the other ready
/// connections run (see `serve`). With LRANGE_300 at -P16 (43 KB per batch,
/// 50 clients) holding it all made the run 25% slower.
const HOLD_REPLIES_MAX: usize = 16 * 1024;

/// The result of routing one request.
enum Plan {
    /// Answered without execution (errors, NOAUTH, CROSSSLOT).
    Done(Reply),
    /// A keyed command whose keys all live on one shard.
    Single(Command, usize),
    /// A keyed command over keys on several shards (ascending ids).
    Multi(Command, Vec<usize>),
    Other(Command),
}

/// Wall-clock time since the Unix epoch (the clock `storage::now_ms` reads).
fn wall_clock() -> Duration {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

/// Statistics of the keyed commands of one same-shard run, published when
/// the command changes and when the run ends: a pipeline of N SETs costs a
/// few atomic adds instead of 4N.
#[derive(Default)]
struct Tally {
    cmd: Option<Command>,
    calls: u64,
    usec: u64,
    failed: u64,
}

impl Tally {
    fn add(&mut self, server: &Server, client: &ClientState, cmd: Command, took: Duration, failed: bool) {
        if self.cmd.is_some_and(|c| c.id != cmd.id) {
            self.publish(server, client);
        }
        self.cmd = Some(cmd);
        self.calls += 1;
        self.usec += took.as_micros() as u64;
        self.failed += failed as u64;
    }

    fn publish(&mut self, server: &Server, client: &ClientState) {
        let Some(cmd) = self.cmd.take() else {
            return;
        };
        let stats = &server.stats;
        stats.commands_processed.fetch_add(self.calls, Ordering::Relaxed);
        let s = &stats.commands[cmd.id];
        s.calls.fetch_add(self.calls, Ordering::Relaxed);
        s.usec.fetch_add(self.usec, Ordering::Relaxed);
        if self.failed > 0 {
            s.failed.fetch_add(self.failed, Ordering::Relaxed);
        }
        client.info.last_cmd.store(cmd.id, Ordering::Relaxed);
        *self = Tally::default();
    }
}

/// Longest command name the resolve cache remembers.
const LAST_NAME_MAX: usize = 16;

#[derive(Clone, Copy)]
struct LastResolved {
    name: [u8; LAST_NAME_MAX],
    len: u8,
    cmd: Command,
}

pub struct Connection {
    pub server: Arc<Server>,
    pub(crate) stream: TcpStream,
    pub client: ClientState,
    parser: RequestParser,
    inbuf: BytesMut,
    out: Vec<u8>,
    /// The normal class of `client-output-buffer-limit`, applied to `out`.
    out_limit: OutputLimit,
    /// Set when `out` overcame its limit: it was dropped and the client is closing.
    out_dropped: bool,
    /// Open transaction (between MULTI and EXEC).
    pub(crate) txn: Option<Box<crate::commands::transactions::Multi>>,
    /// Keys under WATCH.
    pub(crate) watch: Option<Box<crate::commands::transactions::WatchSet>>,
    /// Subscriptions and the incoming message queue.
    pub(crate) sub: Option<Box<crate::commands::pubsub::SubState>>,
    /// The last command resolved, by its name as sent (see `resolve`).
    last_resolved: std::cell::Cell<Option<LastResolved>>,
}

/// What woke a subscribed connection.
enum Woke {
    Read(std::io::Result<usize>),
    Message,
    Stop,
}

impl Connection {
    fn new(server: Arc<Server>, stream: TcpStream, info: Arc<ClientInfo>) -> Connection {
        let authenticated = server.config.requirepass.read().is_none();
        Connection {
            server,
            stream,
            client: ClientState {
                info,
                db: 0,
                resp: 2,
                authenticated,
                close_after_reply: false,
                reply_mode: ReplyMode::On,
            },
            parser: RequestParser::new(),
            inbuf: BytesMut::with_capacity(16 * 1024),
            out: Vec::with_capacity(16 * 1024),
            out_limit: OutputLimit::default(),
            out_dropped: false,
            txn: None,
            watch: None,
            sub: None,
            last_resolved: std::cell::Cell::new(None),
        }
    }

    async fn serve(&mut self) {
        let mut batch: Vec<Vec<Bytes>> = Vec::new();
        loop {
            if self.server.shutting_down.load(Ordering::SeqCst) || self.client.info.killed.load(Ordering::Acquire) {
                break;
            }
            let qbuf_limit = self.server.config.query_buffer_limit.load(Ordering::Relaxed);
            self.parser.grow_for_read(&mut self.inbuf, usize::try_from(qbuf_limit).unwrap_or(usize::MAX));
            let read = if self.sub.is_some() {
                match self.wait_subscribed().await {
                    Woke::Read(r) => r,
                    Woke::Message => {
                        if !self.flush().await {
                            break;
                        }
                        continue;
                    }
                    Woke::Stop => break,
                }
            } else {
                // Biased, read first: no random branch order to draw, and when
                // input is ready the notifications are not even registered.
                // Kills and shutdowns are also seen by the checks at the loop top.
                tokio::select! {
                    biased;
                    r = self.stream.read_buf(&mut self.inbuf) => r,
                    _ = self.client.info.kill_notify.notified() => break,
                    _ = self.server.shutdown.notified() => break,
                }
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.server.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    if !self.after_read() {
                        break;
                    }
                }
            }
            let mut proto_error = None;
            let max_bulk = self.server.config.proto_max_bulk_len.load(Ordering::Relaxed);
            loop {
                match self.parser.parse(&mut self.inbuf, max_bulk, self.client.authenticated) {
                    Ok(Some(args)) if args.is_empty() => continue,
                    Ok(Some(args)) => batch.push(args),
                    Ok(None) => break,
                    Err(e) => {
                        proto_error = Some(e);
                        break;
                    }
                }
            }
            let pipelined = batch.len() > 1;
            if !batch.is_empty() {
                self.refresh_out_limit();
                self.client.info.busy.store(true, Ordering::Release);
                self.execute_batch(&batch).await;
                self.client.info.busy.store(false, Ordering::Release);
                batch.clear();
            }
            if let Some(e) = proto_error {
                Reply::Error(e.0).encode(self.client.resp, &mut self.out);
                self.client.close_after_reply = true;
            }
            if pipelined && !self.out.is_empty() && self.out.len() <= HOLD_REPLIES_MAX {
                // Let the other connections that are ready run their commands
                // first, so the replies go out together at the end of the
                // round (as Redis writes them before it sleeps). Writing as
                // soon as each batch is done wakes a sleeping client once per
                // batch, and on loopback each wake-up is paid for by the
                // sender: at pipeline 16 that was a fifth of the server's time.
                // A lone request skips the wait, which would add a poll of
                // the event queue to its round trip; so does a big output,
                // which would leave the cache before it is sent.
                tokio::task::yield_now().await;
            }
            if !self.flush().await || self.client.close_after_reply {
                break;
            }
            // Give back memory after a burst of big requests.
            if self.inbuf.is_empty() && self.inbuf.capacity() > 1 << 20 {
                self.inbuf = BytesMut::with_capacity(16 * 1024);
            }
        }
        let _ = self.flush().await;
        self.txn = None;
        crate::commands::transactions::unwatch_all(self).await;
        crate::commands::pubsub::unsubscribe_all(self);
    }

    /// Waits for input or a published message; a message (and whatever else
    /// is queued, up to a write's worth) is encoded into the output.
    async fn wait_subscribed(&mut self) -> Woke {
        let Some(sub) = self.sub.as_mut() else {
            return Woke::Stop;
        };
        let woke = tokio::select! {
            r = self.stream.read_buf(&mut self.inbuf) => return Woke::Read(r),
            m = sub.rx.recv() => m,
            _ = self.client.info.kill_notify.notified() => return Woke::Stop,
            _ = self.server.shutdown.notified() => return Woke::Stop,
        };
        let Some(msg) = woke else {
            return Woke::Stop;
        };
        msg.reply().encode(self.client.resp, &mut self.out);
        sub.unflushed += msg.size();
        while self.out.len() < 64 * 1024 {
            let Ok(msg) = sub.rx.try_recv() else {
                break;
            };
            msg.reply().encode(self.client.resp, &mut self.out);
            sub.unflushed += msg.size();
        }
        Woke::Message
    }

    /// Moves every message already queued for this subscriber into the
    /// output, so it goes out before the reply being produced (as in Redis).
    pub(crate) fn drain_messages(&mut self) {
        let Some(sub) = self.sub.as_mut() else {
            return;
        };
        while let Ok(msg) = sub.rx.try_recv() {
            msg.reply().encode(self.client.resp, &mut self.out);
            sub.unflushed += msg.size();
        }
    }

    /// Writes pending output. Returns false when the peer is gone, the client
    /// was killed, or its output overcame the soft limit while waiting.
    pub async fn flush(&mut self) -> bool {
        if self.out_dropped {
            self.out = Vec::new();
            return false;
        }
        if self.out.is_empty() {
            return true;
        }
        let ok = self.write_out().await;
        if let Some(sub) = self.sub.as_mut() {
            sub.sub.written(std::mem::take(&mut sub.unflushed));
        }
        self.server.stats.net_output_bytes.fetch_add(self.out.len() as u64, Ordering::Relaxed);
        self.out.clear();
        if self.out.capacity() > 1 << 20 {
            self.out = Vec::with_capacity(16 * 1024);
        }
        ok
    }

    /// Writes all of `out`. A client that does not read must not hold its
    /// connection (nor its output) forever: the wait ends on CLIENT KILL (the
    /// idle timeout and the pubsub limits kill too) or when the pending bytes
    /// stay over the soft output limit for too long.
    async fn write_out(&mut self) -> bool {
        let mut written = 0;
        while written < self.out.len() {
            if self.client.info.killed.load(Ordering::Acquire) {
                return false;
            }
            let deadline = self.out_limit.soft_deadline(self.out.len() - written);
            let n = tokio::select! {
                r = self.stream.write(&self.out[written..]) => r,
                _ = self.client.info.kill_notify.notified() => return false,
                _ = sleep_until(deadline) => {
                    self.output_overcome();
                    return false;
                }
            };
            match n {
                Ok(0) | Err(_) => return false,
                Ok(n) => written += n,
            }
            self.client.info.last_active.store(crate::storage::now_ms(), Ordering::Relaxed);
        }
        true
    }

    /// After every read: the client is active, and its buffered request must
    /// stay within `client-query-buffer-limit`.
    fn after_read(&mut self) -> bool {
        self.client.info.last_active.store(crate::storage::now_ms(), Ordering::Relaxed);
        // Like Redis 7.0, only the unparsed input counts, not arguments already parsed.
        !crate::net::limits::query_buffer_overcome(&self.server, &self.client.info, &self.inbuf)
    }

    /// Reads the output limit for the batch about to run; subscribed clients
    /// answer to the pubsub class instead (enforced where messages are queued).
    fn refresh_out_limit(&mut self) {
        if self.sub.as_ref().is_some_and(|s| s.active()) {
            self.out_limit.disable();
        } else {
            self.out_limit.refresh(&self.server.config.normal_limits);
        }
    }

    /// Called when the output reaches the lowest limit: drops the output and
    /// closes the client if it overcame the limits (no further command runs).
    #[cold]
    fn check_output_limit(&mut self) {
        if !self.out_dropped && self.out_limit.overcome(self.out.len()) {
            self.output_overcome();
        }
    }

    fn output_overcome(&mut self) {
        let msg = format!(
            "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            self.client.id(),
            self.client.info.addr
        );
        crate::net::listener::log(&self.server, "warning", &msg);
        self.out = Vec::new();
        self.out_dropped = true;
        self.client.close_after_reply = true;
    }

    fn push(&mut self, reply: Reply) {
        if self.sub.is_some() {
            self.drain_messages();
        }
        if let Reply::Error(text) = &reply {
            self.server.stats.count_error(text);
        }
        match self.client.reply_mode {
            ReplyMode::On => {
                reply.encode(self.client.resp, &mut self.out);
                if self.out.len() >= self.out_limit.check_from {
                    self.check_output_limit();
                }
            }
            ReplyMode::Off => {}
            ReplyMode::SkipNext => self.client.reply_mode = ReplyMode::Skip,
            ReplyMode::Skip => self.client.reply_mode = ReplyMode::On,
        }
    }

    /// `registry::resolve` behind a one-entry cache of the last plain command:
    /// pipelines and most clients repeat the same few commands, and comparing
    /// the name as sent is cheaper than a case-folding table lookup.
    fn resolve(&self, args: &[Bytes]) -> Result<Command, Reply> {
        if let Some(last) = self.last_resolved.get() {
            if last.name[..last.len as usize] == args[0][..] {
                if last.cmd.spec.arity_ok(args.len()) {
                    return Ok(last.cmd);
                }
                return Err(Reply::wrong_arity(last.cmd.spec.name));
            }
        }
        let r = registry::resolve(args);
        if let Ok(cmd) = &r {
            // Subcommands depend on args[1] as well: not cached.
            let plain = !cmd.spec.name.contains('|') && !matches!(cmd.spec.exec, Exec::Container);
            if plain && args[0].len() <= LAST_NAME_MAX {
                let mut name = [0u8; LAST_NAME_MAX];
                name[..args[0].len()].copy_from_slice(&args[0]);
                self.last_resolved.set(Some(LastResolved { name, len: args[0].len() as u8, cmd: *cmd }));
            }
        }
        r
    }

    /// Routes one request: resolves the command, checks auth, finds its shard(s).
    fn plan(&self, args: &[Bytes]) -> Plan {
        let cmd = match self.resolve(args) {
            Ok(cmd) => cmd,
            Err(reply) => return Plan::Done(reply),
        };
        if !self.client.authenticated && !cmd.spec.has(flags::NO_AUTH) {
            self.server.stats.commands[cmd.id].rejected.fetch_add(1, Ordering::Relaxed);
            return Plan::Done(Reply::error("NOAUTH Authentication required."));
        }
        match cmd.spec.exec {
            Exec::Keyed(_) => self.plan_keyed(cmd, args),
            _ => Plan::Other(cmd),
        }
    }

    fn plan_keyed(&self, cmd: Command, args: &[Bytes]) -> Plan {
        // The common key spec (one key, or a range) is walked without
        // building a vector of positions.
        match cmd.spec.keys {
            KeySpec::Range { first, last, step } => {
                let argc = args.len() as i32;
                let last = if last < 0 { argc + last } else { last }.min(argc - 1);
                if first < 0 || first > last {
                    return Plan::Single(cmd, self.home_shard());
                }
                let keys = (first as usize..=last as usize).step_by(step.max(1) as usize);
                self.route_keys(cmd, args, keys)
            }
            _ => {
                let positions = cmd.spec.key_positions(args);
                self.route_keys(cmd, args, positions.into_iter())
            }
        }
    }

    fn route_keys(&self, cmd: Command, args: &[Bytes], mut positions: impl Iterator<Item = usize>) -> Plan {
        let shards = &self.server.shards;
        let Some(first) = positions.next() else {
            return Plan::Single(cmd, self.home_shard());
        };
        let first_slot = crate::shard::slot::key_slot(&args[first]);
        let first_shard = crate::shard::slot::slot_shard(first_slot, shards.len());
        let mut ids: Option<Vec<usize>> = None;
        for p in positions {
            let slot = crate::shard::slot::key_slot(&args[p]);
            if slot == first_slot {
                continue;
            }
            if !cmd.spec.has(flags::MULTI_SHARD) {
                self.server.stats.commands[cmd.id].rejected.fetch_add(1, Ordering::Relaxed);
                return Plan::Done(Reply::crossslot());
            }
            let shard = crate::shard::slot::slot_shard(slot, shards.len());
            if shard != first_shard {
                let v = ids.get_or_insert_with(|| vec![first_shard]);
                if !v.contains(&shard) {
                    v.push(shard);
                }
            }
        }
        match ids {
            None => Plan::Single(cmd, first_shard),
            Some(mut v) => {
                v.sort_unstable();
                Plan::Multi(cmd, v)
            }
        }
    }

    /// The shard keyless commands run on: spread clients over shards.
    pub fn home_shard(&self) -> usize {
        (self.client.id() as usize) % self.server.shards.len()
    }

    async fn execute_batch(&mut self, batch: &[Vec<Bytes>]) {
        let mut i = 0;
        let mut next_plan: Option<Plan> = None;
        while i < batch.len() {
            if self.client.close_after_reply {
                return;
            }
            let mut plan = next_plan.take().unwrap_or_else(|| self.plan(&batch[i]));
            if self.txn.is_some() || self.sub.is_some() {
                match self.intercept(plan, &batch[i]) {
                    Ok(p) => plan = p,
                    Err(reply) => {
                        self.push(reply);
                        i += 1;
                        continue;
                    }
                }
            }
            match plan {
                Plan::Done(reply) => {
                    self.push(reply);
                    i += 1;
                }
                Plan::Single(cmd, shard_id) => {
                    let server = self.server.clone();
                    let shard = server.shards.get(shard_id);
                    let mut guard = match shard.try_lock() {
                        Some(g) => g,
                        None => match shard.lock(server.busy_threshold(), false).await {
                            Ok(g) => g,
                            Err(busy) => {
                                self.push(busy.reply());
                                i += 1;
                                continue;
                            }
                        },
                    };
                    // Run this command and every following one bound to the same shard.
                    let mut cmd = cmd;
                    let mut clock = wall_clock();
                    let mut tally = Tally::default();
                    loop {
                        let reply = self.run_keyed(cmd, &batch[i], &mut [&mut guard], &mut clock, &mut tally);
                        self.push(reply);
                        i += 1;
                        if i >= batch.len() || self.client.close_after_reply {
                            break;
                        }
                        match self.plan(&batch[i]) {
                            Plan::Single(c, s) if s == shard_id => cmd = c,
                            other => {
                                next_plan = Some(other);
                                break;
                            }
                        }
                    }
                    tally.publish(&self.server, &self.client);
                    drop(guard);
                }
                Plan::Multi(cmd, ids) => {
                    let server = self.server.clone();
                    let reply = match server.shards.lock_many(&ids, server.busy_threshold()).await {
                        Ok(mut guards) => {
                            let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
                            let mut tally = Tally::default();
                            let r = self.run_keyed(cmd, &batch[i], &mut refs, &mut wall_clock(), &mut tally);
                            tally.publish(&self.server, &self.client);
                            r
                        }
                        Err(busy) => busy.reply(),
                    };
                    self.push(reply);
                    i += 1;
                }
                Plan::Other(cmd) => {
                    let reply = self.run_other(cmd, &batch[i]).await;
                    self.push(reply);
                    i += 1;
                }
            }
        }
    }

    /// Subscribed-mode rules and MULTI queuing, in Redis's order. Err is the
    /// reply that takes the place of running the command now.
    fn intercept(&mut self, plan: Plan, args: &[Bytes]) -> Result<Plan, Reply> {
        let cmd = match &plan {
            Plan::Done(reply) => {
                if let Some(txn) = self.txn.as_mut() {
                    txn.failed = true;
                }
                return Err(reply.clone());
            }
            Plan::Single(cmd, _) | Plan::Multi(cmd, _) | Plan::Other(cmd) => *cmd,
        };
        if self.client.resp == 2 && self.sub.as_ref().is_some_and(|s| s.active()) {
            if !crate::commands::pubsub::allowed_when_subscribed(cmd.spec.name) {
                return Err(crate::commands::pubsub::not_allowed_when_subscribed(cmd.spec.name));
            }
            if self.txn.is_none() {
                if let Some(pong) = self.subscribed_ping(cmd, args) {
                    return Err(pong);
                }
            }
        }
        let Some(txn) = self.txn.as_mut() else {
            return Ok(plan);
        };
        match crate::commands::transactions::queue(txn, cmd, args) {
            None => Ok(plan),
            Some(reply) => {
                let n = txn.queued.len() as i64;
                self.client.info.meta.lock().multi = n;
                Err(reply)
            }
        }
    }

    /// PING's reply in RESP2 subscribed mode, if that is what `cmd` is.
    pub(crate) fn subscribed_ping(&self, cmd: Command, args: &[Bytes]) -> Option<Reply> {
        let subscribed = self.client.resp == 2 && self.sub.as_ref().is_some_and(|s| s.active());
        (subscribed && cmd.spec.name == "ping" && args.len() <= 2)
            .then(|| crate::commands::pubsub::subscribed_ping(args))
    }

    /// Runs a keyed command with its shard(s) entered, counting it in `tally`.
    /// `clock` is the wall-clock time the command starts at (its `ctx.now`);
    /// it is left at the time it ended, which is when the next command of
    /// the same run starts: one clock reading per command.
    fn run_keyed(
        &mut self,
        cmd: Command,
        args: &[Bytes],
        shards: &mut [&mut ShardData],
        clock: &mut Duration,
        tally: &mut Tally,
    ) -> Reply {
        let Exec::Keyed(f) = cmd.spec.exec else {
            return Reply::err("internal routing error");
        };
        // maxmemory: evict or refuse before a write (hardening hook, storage/memory.rs).
        if let Some(oom) = crate::storage::memory::check_oom(&self.server, cmd, shards) {
            self.server.stats.commands[cmd.id].rejected.fetch_add(1, Ordering::Relaxed);
            return oom;
        }
        let start = *clock;
        let now = start.as_millis() as u64;
        let mut ctx = Ctx::at(&self.server, shards, self.client.db, self.client.resp, self.client.id(), now);
        let reply = f(&mut ctx, args);
        if self.server.config.notify_flags.load(Ordering::Relaxed) & crate::pubsub::notify::EXPIRED != 0 {
            ctx.expired_events();
        }
        let end = wall_clock();
        *clock = end;
        tally.add(&self.server, &self.client, cmd, end.saturating_sub(start), reply.is_error());
        reply
    }

    pub(crate) fn count(&self, cmd: Command, start: Instant, reply: &Reply) {
        let stats = &self.server.stats;
        stats.commands_processed.fetch_add(1, Ordering::Relaxed);
        let s = &stats.commands[cmd.id];
        s.calls.fetch_add(1, Ordering::Relaxed);
        s.usec.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        if reply.is_error() {
            s.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.client.info.last_cmd.store(cmd.id, Ordering::Relaxed);
    }

    /// Commands that are not plain keyed commands.
    async fn run_other(&mut self, cmd: Command, args: &[Bytes]) -> Reply {
        let start = Instant::now();
        // CLIENT LIST/INFO show the running command as the caller's current one.
        self.client.info.last_cmd.store(cmd.id, Ordering::Relaxed);
        let server = self.server.clone();
        let threshold = server.busy_threshold();
        let reply = match cmd.spec.exec {
            Exec::Conn(f) => {
                let mut ctx = ConnCtx { server: &server, client: &mut self.client };
                f(&mut ctx, args)
            }
            Exec::AllShards(run, merge) => {
                let mut replies = Vec::with_capacity(server.shards.len());
                for shard in &server.shards.list {
                    match shard.lock(threshold, false).await {
                        Ok(mut g) => {
                            let mut one = [&mut *g];
                            let mut ctx =
                                Ctx::new(&server, &mut one, self.client.db, self.client.resp, self.client.id());
                            replies.push(run(&mut ctx, args));
                        }
                        Err(busy) => {
                            replies.clear();
                            replies.push(busy.reply());
                            break;
                        }
                    }
                }
                match replies.iter().find(|r| r.is_error()) {
                    Some(e) => e.clone(),
                    None => {
                        let mut ctx = ConnCtx { server: &server, client: &mut self.client };
                        merge(&mut ctx, args, replies)
                    }
                }
            }
            Exec::OneShard(route, run, finish) => {
                let ctx = ConnCtx { server: &server, client: &mut self.client };
                match route(&ctx, args) {
                    Err(e) => e,
                    Ok(id) => match server.shards.get(id).lock(threshold, false).await {
                        Ok(mut g) => {
                            let mut one = [&mut *g];
                            let mut ctx =
                                Ctx::new(&server, &mut one, self.client.db, self.client.resp, self.client.id());
                            let r = run(&mut ctx, args);
                            drop(g);
                            let ctx = ConnCtx { server: &server, client: &mut self.client };
                            finish(&ctx, args, id, r)
                        }
                        Err(busy) => busy.reply(),
                    },
                }
            }
            Exec::Special => self.run_special(cmd, args).await,
            Exec::Container => match crate::commands::server::bare_container(cmd.spec.name) {
                Some(f) => {
                    let mut ctx = ConnCtx { server: &server, client: &mut self.client };
                    f(&mut ctx, args)
                }
                None => Reply::wrong_arity(cmd.spec.name),
            },
            Exec::Keyed(_) => Reply::err("internal routing error"),
        };
        self.count(cmd, start, &reply);
        reply
    }

    /// Commands that need the connection loop itself.
    async fn run_special(&mut self, cmd: Command, args: &[Bytes]) -> Reply {
        match cmd.spec.name {
            "quit" => {
                self.client.close_after_reply = true;
                Reply::ok()
            }
            "reset" => {
                self.txn = None;
                self.client.info.meta.lock().multi = -1;
                crate::commands::transactions::unwatch_all(self).await;
                crate::commands::pubsub::unsubscribe_all(self);
                self.client.set_db(0);
                self.client.set_resp(2);
                self.client.reply_mode = ReplyMode::On;
                self.client.authenticated = self.server.config.requirepass.read().is_none();
                self.client.info.meta.lock().name = None;
                Reply::status("RESET")
            }
            "client|reply" => crate::commands::connection::client_reply(&mut self.client, args),
            _ if cmd.spec.group == crate::commands::Group::Scripting => {
                crate::scripting::special(self, cmd, args).await
            }
            _ if cmd.spec.has(flags::BLOCKING) => crate::commands::blocking::special(self, cmd, args).await,
            _ if cmd.spec.group == crate::commands::Group::Transactions => {
                crate::commands::transactions::special(self, cmd, args).await
            }
            _ if cmd.spec.group == crate::commands::Group::Pubsub => {
                crate::commands::pubsub::subscription(self, cmd, args)
            }
            _ => Reply::err(format!("command '{}' is not implemented yet", cmd.spec.name)),
        }
    }
}
