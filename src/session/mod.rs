//! A client's session: what a connection's commands do to the client's own
//! state, and the path from a parsed request to `commands::dispatch`.
//!
//! For each request the session resolves the command, authorizes it,
//! applies its own state machine (subscribed mode, MULTI queuing), routes it
//! to the shard(s) its keys live on, enters them and hands it to dispatch.
//! Consecutive pipelined commands for the same shard run under one entry, so
//! a pipeline costs one lock per shard run, not one per command. Commands
//! declared `Exec::Session` (transactions, subscriptions, blocking waits,
//! scripts, MONITOR) are handled here, and every command they run goes
//! through dispatch as well. Replies are encoded into `out`, which the
//! connection (`net::connection`) writes.

pub mod blocking;
pub mod multi;
pub mod pause;
pub mod subscribe;

use crate::commands::dispatch::{self, Origin, Tally};
use crate::commands::registry::{self, flags, Command, Exec, KeySpec};
use crate::commands::spec::SessionOp;
use crate::commands::{ConnCtx, Ctx};
use crate::net::client::{ClientInfo, ClientState, ReplyMode};
use crate::net::connection::Stream;
use crate::net::limits::OutputLimit;
use crate::protocol::Reply;
use crate::server::Server;
use crate::shard::ShardData;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The result of routing one request.
enum Plan {
    /// Answered without execution (errors, NOAUTH, CROSSSLOT).
    Done(Reply),
    /// A keyed command whose keys all live on one shard.
    Single(Command, usize),
    /// A keyed command over keys on several shards (ascending ids).
    Multi(Command, Vec<usize>),
    /// A command that runs with every shard entered.
    All(Command),
    /// A command that needs no shard.
    Conn(Command),
    /// A command the session runs itself.
    Session(Command, SessionOp),
}

/// Shortest bulk string reply written from its own buffer instead of being
/// copied into the output (Redis's reply chunk size).
const OUT_REF_MIN: usize = 16 * 1024;

/// Longest command name the resolve cache remembers.
const LAST_NAME_MAX: usize = 16;

#[derive(Clone, Copy)]
struct LastResolved {
    name: [u8; LAST_NAME_MAX],
    len: u8,
    cmd: Command,
}

pub struct Session {
    pub server: Arc<Server>,
    pub client: ClientState,
    /// Encoded replies not yet written.
    pub out: Vec<u8>,
    /// Long bulk strings of the output, kept in their own (shared) buffers
    /// rather than copied into `out`: each goes right before byte `.0` of
    /// `out`, and the connection writes them with vectored writes.
    pub out_refs: Vec<(usize, Bytes)>,
    /// The bytes in `out_refs`.
    pub out_refs_len: usize,
    /// The normal class of `client-output-buffer-limit`, applied to `out`.
    pub out_limit: OutputLimit,
    /// Set when `out` overcame its limit: it was dropped and the client is closing.
    pub out_dropped: bool,
    /// Open transaction (between MULTI and EXEC).
    pub(crate) txn: Option<Box<multi::Multi>>,
    /// Keys under WATCH.
    pub(crate) watch: Option<Box<multi::WatchSet>>,
    /// Subscriptions and the incoming message queue.
    pub(crate) sub: Option<Box<subscribe::SubState>>,
    /// MONITOR's feed, once the client is monitoring.
    pub(crate) monitor: Option<mpsc::UnboundedReceiver<Bytes>>,
    /// The write-stream offset this client's commands reached since its
    /// replies were last written (0: none): under `appendfsync always` the
    /// replies wait until the AOF is fsynced that far.
    pub emitted: u64,
    /// The write-stream offset past this client's last write (WAIT).
    pub woff: u64,
    /// The last command resolved, by its name as sent (see `resolve`).
    last_resolved: std::cell::Cell<Option<LastResolved>>,
    /// CLIENT CACHING set the CACHING flag, which the next command clears.
    pub caching_armed: bool,
    /// The running request is a CLIENT subcommand (keeps the flag).
    caching_keep: bool,
    /// A Lua debugging session in progress (`scripting::ldb`): the client's
    /// commands go to the debugger.
    pub(crate) ldb: Option<Box<crate::scripting::ldb::Active>>,
}

impl Session {
    pub fn new(server: Arc<Server>, info: Arc<ClientInfo>) -> Session {
        let authenticated = !server.acl.auth_required();
        let acl = crate::acl::ClientAcl::new(server.acl.default_user());
        Session {
            server,
            client: ClientState {
                info,
                db: 0,
                resp: 2,
                authenticated,
                acl,
                close_after_reply: false,
                reply_mode: ReplyMode::On,
                cluster_asking: false,
                cluster_readonly: false,
                ldb: 0,
            },
            // Grown by the first replies (an idle connection holds little).
            out: Vec::new(),
            out_refs: Vec::new(),
            out_refs_len: 0,
            out_limit: OutputLimit::default(),
            out_dropped: false,
            txn: None,
            watch: None,
            sub: None,
            monitor: None,
            emitted: 0,
            woff: 0,
            last_resolved: std::cell::Cell::new(None),
            caching_armed: false,
            caching_keep: false,
            ldb: None,
        }
    }

    /// Adds a command's reply to the output, with the pushes around it.
    #[inline]
    pub fn push(&mut self, reply: Reply) {
        // Right after the command ran (no await since): what it emitted to
        // the write stream was emitted by this thread.
        if self.server.propagation.active() {
            let emitted = crate::propagate::take_emitted();
            self.emitted = self.emitted.max(emitted);
            self.woff = self.woff.max(emitted);
        }
        if self.sub.is_some() {
            self.drain_messages();
        }
        if self.caching_armed || self.client.info.pushes.waiting() {
            return self.push_with_tracking(reply);
        }
        self.encode_reply(reply);
    }

    /// `push` for a client with pushes waiting or a CLIENT CACHING mark.
    /// Pushes other clients queued go out before the reply, the
    /// invalidations this command caused for this client after it,
    /// whatever CLIENT REPLY says.
    #[inline(never)]
    fn push_with_tracking(&mut self, reply: Reply) {
        let pushes = self.client.info.pushes.waiting();
        if pushes {
            self.client.info.pushes.take_encoded(&mut self.out, false);
        }
        if self.caching_armed {
            self.settle_caching();
        }
        self.encode_reply(reply);
        if pushes {
            self.take_pushes(false);
        }
    }

    /// Moves the pushes waiting for this client into the output (`all`:
    /// also those due at the next write rather than after this reply). Its
    /// own deferred invalidations are sent first (to it, or to the client
    /// it redirects to).
    pub fn take_pushes(&mut self, all: bool) {
        let info = &self.client.info;
        crate::pubsub::tracking::send_deferred(&self.server, info);
        info.pushes.take_encoded(&mut self.out, all);
    }

    /// Encodes a reply into the output, as CLIENT REPLY allows.
    #[inline(always)]
    fn encode_reply(&mut self, reply: Reply) {
        match self.client.reply_mode {
            ReplyMode::On => {
                match reply {
                    Reply::Bulk(b) if b.len() >= OUT_REF_MIN => self.push_bulk_ref(b),
                    reply => reply.encode(self.client.resp, &mut self.out),
                }
                if self.out_len() >= self.out_limit.check_from {
                    self.check_output_limit();
                }
            }
            // Pub/sub confirmations are pushes: Redis sends them whatever
            // CLIENT REPLY says (a client waits for them).
            ReplyMode::Off => {
                if reply.is_push() {
                    reply.encode(self.client.resp, &mut self.out);
                }
            }
            ReplyMode::SkipNext => self.client.reply_mode = ReplyMode::Skip,
            ReplyMode::Skip => {
                self.client.reply_mode = ReplyMode::On;
                if reply.is_push() {
                    reply.encode(self.client.resp, &mut self.out);
                }
            }
        }
    }

    /// Adds a long bulk string to the output by reference (see `out_refs`).
    #[inline(never)]
    fn push_bulk_ref(&mut self, b: Bytes) {
        crate::protocol::push_header(&mut self.out, b'$', b.len());
        self.out_refs_len += b.len();
        self.out_refs.push((self.out.len(), b));
        self.out.extend_from_slice(b"\r\n");
    }

    /// The bytes of output waiting to be written.
    #[inline]
    pub fn out_len(&self) -> usize {
        self.out.len() + self.out_refs_len
    }

    /// Forgets the output (written or dropped).
    pub fn clear_out(&mut self) {
        self.out.clear();
        if !self.out_refs.is_empty() {
            self.out_refs.clear();
            self.out_refs_len = 0;
        }
    }

    /// Copies the bulk strings kept by reference into `out`, for the
    /// writers that take one buffer.
    pub fn flatten_out(&mut self) {
        if self.out_refs.is_empty() {
            return;
        }
        let mut flat = Vec::with_capacity(self.out_len());
        let mut from = 0;
        for (at, b) in self.out_refs.drain(..) {
            flat.extend_from_slice(&self.out[from..at]);
            flat.extend_from_slice(&b);
            from = at;
        }
        flat.extend_from_slice(&self.out[from..]);
        self.out = flat;
        self.out_refs_len = 0;
    }

    /// The output from byte `skip` on as slices (at most `max`), for a
    /// vectored write.
    pub fn out_slices(&self, mut skip: usize, max: usize) -> Vec<std::io::IoSlice<'_>> {
        let mut slices = Vec::with_capacity(max.min(2 * self.out_refs.len() + 1));
        let mut from = 0;
        for (at, b) in &self.out_refs {
            for piece in [&self.out[from..*at], &b[..]] {
                if piece.len() <= skip {
                    skip -= piece.len();
                } else {
                    slices.push(std::io::IoSlice::new(&piece[skip..]));
                    skip = 0;
                    if slices.len() == max {
                        return slices;
                    }
                }
            }
            from = *at;
        }
        let tail = &self.out[from..];
        if tail.len() > skip {
            slices.push(std::io::IoSlice::new(&tail[skip..]));
        }
        slices
    }

    /// CLIENT CACHING applies to the next command (or transaction): Redis
    /// drops it once a command other than CLIENT ... ends outside MULTI.
    fn settle_caching(&mut self) {
        if self.caching_keep || self.txn.is_some() {
            return;
        }
        self.caching_armed = false;
        self.client.info.tracking.set(crate::net::client::tracking_flags::CACHING, false);
    }

    /// Notes whether the request about to run keeps a CLIENT CACHING mark
    /// (only CLIENT subcommands do).
    fn note_request(&mut self, args: &[Bytes]) {
        if self.caching_armed {
            self.caching_keep = registry::named(args).is_some_and(|c| c.spec.name.starts_with("client"));
        }
    }

    /// Writes the replies produced so far before the client starts waiting in
    /// a blocking command: commands pipelined ahead of it are answered now,
    /// as Redis answers them (after the AOF has their writes, under `always`).
    pub async fn write_pending(&mut self, stream: &mut Stream) {
        self.wait_for_aof().await;
        if self.client.info.pushes.waiting() {
            self.take_pushes(true);
        }
        if self.out_len() == 0 || self.out_dropped {
            return;
        }
        self.flatten_out();
        let mut written = 0;
        while written < self.out.len() {
            match tokio::io::AsyncWriteExt::write(stream, &self.out[written..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => written += n,
            }
        }
        if stream.flush_tls().await.is_err() {
            return;
        }
        if let Some(sub) = self.sub.as_mut() {
            sub.sub.written(std::mem::take(&mut sub.unflushed));
        }
        self.server.stats.net_output_bytes.fetch_add(self.out.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.clear_out();
    }

    /// Before the replies about to be sent: under `appendfsync always`,
    /// waits until the AOF is fsynced past their writes; otherwise makes
    /// sure those writes are in the file (the kernel's), as Redis does
    /// before it answers, so a crash of the process loses nothing acknowledged.
    pub async fn wait_for_aof(&mut self) {
        if self.emitted == 0 {
            return;
        }
        let offset = std::mem::take(&mut self.emitted);
        let aof = self.server.aof.lock().clone();
        let Some(aof) = aof else { return };
        if aof.policy.load(std::sync::atomic::Ordering::Relaxed) == crate::persist::aof::FSYNC_ALWAYS {
            aof.wait_synced(offset).await;
        } else {
            if aof.written.load(std::sync::atomic::Ordering::Acquire) < offset {
                // Let the other connections ready on this worker run their
                // batches first: the first of them back writes everything
                // gathered meanwhile in one write() (as Redis writes its AOF
                // buffer once per event-loop round), the others find it done.
                tokio::task::yield_now().await;
            }
            aof.write_through(offset, &self.server);
        }
    }

    /// Moves every message already queued for this subscriber into the
    /// output, so it goes out before the reply being produced (as in Redis).
    pub fn drain_messages(&mut self) {
        let mut dropped = false;
        while let Some(msg) = self.sub.as_mut().and_then(|sub| sub.rx.try_recv().ok()) {
            dropped |= subscribe::take_message(self, msg);
        }
        if dropped {
            subscribe::settle(self);
        }
    }

    /// Reads the output limit for the batch about to run; subscribed clients
    /// answer to the pubsub class instead (enforced where messages are queued).
    pub fn refresh_out_limit(&mut self) {
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
        if !self.out_dropped && self.out_limit.overcome(self.out_len()) {
            self.output_overcome();
        }
    }

    pub fn output_overcome(&mut self) {
        let msg = format!(
            "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            self.client.id(),
            self.client.info.addr
        );
        crate::net::listener::log(&self.server, "warning", &msg);
        self.clear_out();
        self.out = Vec::new();
        self.out_dropped = true;
        self.client.close_after_reply = true;
    }

    /// The client is going away: leave every transaction, watch, channel and
    /// the monitor list.
    pub async fn close(&mut self) {
        if self.client.info.tracking.flags() != 0 {
            crate::pubsub::tracking::disable(&self.server, &self.client.info);
        }
        self.txn = None;
        multi::unwatch_all(self).await;
        subscribe::unsubscribe_all(self);
        if self.monitor.take().is_some() {
            self.server.observers.monitors.remove(self.client.id());
        }
    }

    /// `registry::resolve` behind a one-entry cache of the last plain command:
    /// pipelines and most clients repeat the same few commands, and comparing
    /// the name as sent is cheaper than a case-folding table lookup.
    fn resolve(&self, args: &[Bytes]) -> Result<Command, Reply> {
        if let Some(last) = self.last_resolved.get() {
            let name = &args[0];
            // Compared byte by byte: a call to `memcmp` costs more for a name this short.
            if name.len() == last.len as usize && last.name.iter().zip(name.iter()).all(|(a, b)| a == b) {
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

    /// Routes one request: resolves the command, authorizes it, finds its shard(s).
    fn plan(&mut self, args: &[Bytes]) -> Plan {
        if !self.client.acl.refresh(&self.server.acl) {
            // The user was removed: the connection closes, running nothing more.
            self.client.close_after_reply = true;
            return Plan::Done(Reply::Multi(Vec::new()));
        }
        let cmd = match self.resolve(args) {
            Ok(cmd) => cmd,
            Err(reply) => {
                // A known command refused for its arity counts as a rejected call of it.
                match registry::named(args) {
                    Some(cmd) => dispatch::rejected(&self.server, cmd, &reply),
                    None => {
                        if let Some(text) = reply.error_text() {
                            self.server.stats.count_error(text);
                        }
                    }
                }
                return Plan::Done(reply);
            }
        };
        if cmd.spec.has(flags::PROTECTED) {
            if let Err(reply) = dispatch::protected(&self.server, &self.client.info, cmd) {
                return Plan::Done(reply);
            }
        }
        if let Err(reply) = dispatch::authorize(&self.server, &self.client, cmd, args, self.txn.is_some()) {
            return Plan::Done(reply);
        }
        // Redirections come first, as in Redis (a replica answers MOVED to a write).
        if let Some(cluster) = &self.server.cluster {
            if let Err(reply) =
                dispatch::cluster_gate(&self.server, cluster, &mut self.client, cmd, args, self.txn.is_some())
            {
                return Plan::Done(reply);
            }
        }
        if let Err(reply) = dispatch::persistence_gate(&self.server, cmd, args) {
            return Plan::Done(reply);
        }
        if crate::replication::stale_refused(&self.server, cmd.spec) {
            let reply = Reply::error(crate::replication::MASTERDOWN);
            dispatch::rejected(&self.server, cmd, &reply);
            return Plan::Done(reply);
        }
        if crate::replication::not_enough_replicas(&self.server) && crate::scripting::writes(&self.server, cmd, args) {
            let reply = Reply::error(crate::scripting::NOREPLICAS);
            dispatch::rejected(&self.server, cmd, &reply);
            return Plan::Done(reply);
        }
        match cmd.spec.exec {
            Exec::Keyed(_) | Exec::Blocking(_) => self.plan_keyed(cmd, args),
            Exec::AllShards(_) => Plan::All(cmd),
            Exec::Routed(route, _) => match route(&self.server, args) {
                Ok(id) => Plan::Single(cmd, id.min(self.server.shards.len() - 1)),
                Err(e) => {
                    dispatch::rejected(&self.server, cmd, &e);
                    Plan::Done(e)
                }
            },
            Exec::Conn(_) | Exec::Container => Plan::Conn(cmd),
            Exec::Session(op) => Plan::Session(cmd, op),
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
                if self.server.standalone && crate::commands::sort::forms_keys(cmd.spec.name, args) {
                    return Plan::All(cmd);
                }
                let positions = cmd.spec.key_positions(args);
                self.route_keys(cmd, args, positions.into_iter())
            }
        }
    }

    fn route_keys(&self, cmd: Command, args: &[Bytes], positions: impl Iterator<Item = usize>) -> Plan {
        let shards = &self.server.shards;
        let mut positions = positions.peekable();
        let Some(first) = positions.next() else {
            return Plan::Single(cmd, self.home_shard());
        };
        if shards.len() == 1 && positions.peek().is_none() {
            // One key on the only shard: no slot to compute (CRC16 of the
            // key, a tenth of a small GET's instructions).
            return Plan::Single(cmd, 0);
        }
        let first_slot = crate::shard::slot::key_slot(&args[first]);
        let first_shard = crate::shard::slot::slot_shard(first_slot, shards.len());
        let mut ids: Option<Vec<usize>> = None;
        for p in positions {
            let slot = crate::shard::slot::key_slot(&args[p]);
            if slot == first_slot {
                continue;
            }
            if !cmd.spec.has(flags::MULTI_SHARD) && !self.server.standalone {
                let reply = Reply::crossslot();
                dispatch::rejected(&self.server, cmd, &reply);
                return Plan::Done(reply);
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

    /// Runs a pipeline of parsed requests, in order. `stream` is the
    /// client's socket (a blocked command watches it for the peer leaving).
    pub async fn execute_batch(&mut self, batch: &crate::protocol::Batch, stream: &mut Stream) {
        let mut i = 0;
        let mut next_plan: Option<Plan> = None;
        while i < batch.len() {
            if self.client.close_after_reply {
                return;
            }
            if self.ldb.is_some() {
                // The debugger reads one command at a time and, as Redis's
                // does, drops whatever else came with it. Commands that came
                // with the EVAL that started the session are dropped too:
                // Redis's debugger reads the socket, not what the client's
                // query buffer already holds.
                if i == 0 {
                    crate::scripting::ldb::command(self, &batch[i]).await;
                }
                return;
            }
            let mut plan = next_plan.take().unwrap_or_else(|| self.plan(&batch[i]));
            if self.caching_armed {
                self.note_request(&batch[i]);
            }
            if self.server.tracking.over_limit() {
                self.enforce_tracking_limit().await;
            }
            // A command held back is planned again, as Redis processes a paused
            // command again: meanwhile this node may have become a replica (a
            // failover, manual or in a cluster), and the write goes elsewhere.
            if self.server.pause.maybe_active() && self.wait_if_paused(&plan, &batch[i]).await {
                plan = self.plan(&batch[i]);
            }
            // An EXEC refused before it runs (wrong arity, ...) aborts and
            // discards the transaction as Redis does, also outside MULTI
            // (EXECABORT, and the watched keys are released).
            if let Plan::Done(Reply::Error(e)) = &plan {
                if batch[i][0].eq_ignore_ascii_case(b"exec") {
                    let why = e.strip_prefix("ERR ").unwrap_or(e).to_string();
                    self.txn = None;
                    self.client.info.meta.lock().multi = -1;
                    self.client.info.bufs.multi.store(0, std::sync::atomic::Ordering::Relaxed);
                    multi::unwatch_all(self).await;
                    self.push(Reply::error(format!("EXECABORT Transaction discarded because of: {why}")));
                    i += 1;
                    continue;
                }
            }
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
                Plan::Single(cmd, shard_id) if !matches!(cmd.spec.exec, Exec::Blocking(_)) => {
                    let server = self.server.clone();
                    let shard = server.shards.get(shard_id);
                    let mut guard = match shard.try_lock() {
                        Some(g) => g,
                        None => match shard.lock(server.busy_threshold(), false).await {
                            Ok(g) => g,
                            Err(busy) => {
                                let reply = busy.reply();
                                dispatch::rejected(&server, cmd, &reply);
                                self.push(reply);
                                i += 1;
                                continue;
                            }
                        },
                    };
                    // Run this command and every following one bound to the same shard.
                    let mut cmd = cmd;
                    let mut tally = Tally::start();
                    let (began, mut ran) = (tally.clock(), 0);
                    loop {
                        let reply = self.call(cmd, &batch[i], &mut [&mut guard], &mut tally);
                        self.push(reply);
                        i += 1;
                        ran += 1;
                        if i >= batch.len() || self.client.close_after_reply {
                            break;
                        }
                        match self.plan(&batch[i]) {
                            Plan::Single(c, s)
                                if s == shard_id
                                    && self.txn.is_none()
                                    && self.sub.is_none()
                                    && !self.server.pause.maybe_active()
                                    && !self.server.tracking.over_limit()
                                    && !matches!(c.spec.exec, Exec::Blocking(_)) =>
                            {
                                cmd = c;
                                // A keyed command: it ends a CLIENT CACHING mark.
                                self.caching_keep = false;
                            }
                            other => {
                                next_plan = Some(other);
                                break;
                            }
                        }
                    }
                    tally.publish(&self.server, &self.client.info);
                    crate::pubsub::tracking::end_run(&server, &mut [&mut guard], self.client.id());
                    drop(guard);
                    shard.stats.ran(ran, tally.clock().saturating_sub(began));
                }
                Plan::Single(cmd, id) => {
                    let reply = blocking::run(self, cmd, &batch[i], vec![id], stream).await;
                    self.push(reply);
                    i += 1;
                }
                Plan::Multi(cmd, ids) if matches!(cmd.spec.exec, Exec::Blocking(_)) => {
                    let reply = blocking::run(self, cmd, &batch[i], ids, stream).await;
                    self.push(reply);
                    i += 1;
                }
                Plan::Multi(cmd, ids) => {
                    let reply = self.call_entered(cmd, &batch[i], &ids).await;
                    self.push(reply);
                    i += 1;
                }
                Plan::All(cmd) => {
                    let ids: Vec<usize> = (0..self.server.shards.len()).collect();
                    let reply = self.call_entered(cmd, &batch[i], &ids).await;
                    self.push(reply);
                    i += 1;
                }
                Plan::Conn(cmd) => {
                    let reply = if cmd.spec.name == "script|debug" && self.out_len() > 0 {
                        // Replies are pending: Redis refuses it in a pipeline.
                        Reply::err(crate::scripting::ldb::IN_PIPELINE)
                    } else {
                        self.call_conn(cmd, &batch[i])
                    };
                    self.push(reply);
                    i += 1;
                }
                Plan::Session(cmd, op) => {
                    let start = dispatch::clock_ns();
                    // CLIENT LIST shows EXEC, EVAL, ... while their commands run.
                    self.client.info.last_cmd.store(cmd.id, std::sync::atomic::Ordering::Relaxed);
                    if matches!(op, SessionOp::Wait) {
                        // WAIT may block: the replies to the commands
                        // pipelined before it go out first, as in Redis
                        // (fuzzer run 8).
                        self.write_pending(stream).await;
                    }
                    let reply = self.session_op(op, cmd, &batch[i]).await;
                    let (server, info, db) = (self.server.clone(), self.client.info.clone(), self.client.db);
                    dispatch::account_session(&server, &info, db, cmd, &batch[i], start, &reply);
                    // A CLIENT CACHING run by EXEC lasts until EXEC ends.
                    if !self.caching_armed && info.tracking.flags() & crate::net::client::tracking_flags::CACHING != 0 {
                        self.caching_armed = true;
                        self.caching_keep = false;
                    }
                    self.push(reply);
                    i += 1;
                }
            }
        }
    }

    /// One command through dispatch with `shards` entered.
    #[inline]
    fn call(&self, cmd: Command, args: &[Bytes], shards: &mut [&mut ShardData], tally: &mut Tally) -> Reply {
        let c = &self.client;
        let mut ctx = Ctx::new(&self.server, shards, &c.info, c.db, c.resp, Origin::Client);
        dispatch::call_inline(&mut ctx, cmd, args, tally)
    }

    /// Enters the shards `ids` (ascending) and runs one command.
    async fn call_entered(&mut self, cmd: Command, args: &[Bytes], ids: &[usize]) -> Reply {
        let server = self.server.clone();
        let locked = server.shards.lock_many(ids, server.busy_threshold()).await;
        let reply = match locked {
            Ok(mut guards) => {
                let mut refs: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
                let mut tally = Tally::start();
                let began = tally.clock();
                let r = self.call(cmd, args, &mut refs, &mut tally);
                tally.publish(&self.server, &self.client.info);
                crate::pubsub::tracking::end_run(&server, &mut refs, self.client.id());
                drop(refs);
                drop(guards);
                let busy = tally.clock().saturating_sub(began);
                for &id in ids {
                    server.shards.get(id).stats.ran(1, busy);
                }
                r
            }
            Err(busy) => {
                let reply = busy.reply();
                dispatch::rejected(&server, cmd, &reply);
                reply
            }
        };
        reply
    }

    /// A command that needs no shard, through dispatch.
    fn call_conn(&mut self, cmd: Command, args: &[Bytes]) -> Reply {
        if let Exec::Container = cmd.spec.exec {
            // A container called bare (COMMAND): its own meaning, if it has one.
            return match crate::commands::server::bare_container(cmd.spec.name) {
                Some(f) => {
                    let server = self.server.clone();
                    f(&mut ConnCtx { server: &server, client: &mut self.client }, args)
                }
                None => Reply::wrong_arity(cmd.spec.name),
            };
        }
        let server = self.server.clone();
        let mut ctx = ConnCtx { server: &server, client: &mut self.client };
        let reply = dispatch::call_conn(&mut ctx, cmd, args, Origin::Client);
        // CLIENT CACHING marked the next command.
        if !self.caching_armed && self.client.info.tracking.flags() & crate::net::client::tracking_flags::CACHING != 0 {
            self.caching_armed = true;
            self.caching_keep = true;
        }
        reply
    }

    /// `tracking-table-max-keys`: before a command runs, tracked keys over
    /// the limit are forgotten (and invalidated), as Redis does before
    /// every command.
    async fn enforce_tracking_limit(&mut self) {
        let server = self.server.clone();
        for shard in &server.shards.list {
            if !server.tracking.over_limit() {
                break;
            }
            if let Ok(mut data) = shard.lock(server.busy_threshold(), false).await {
                crate::pubsub::tracking::enforce_limit(&server, &mut data, self.client.id());
            }
        }
    }

    /// CLIENT PAUSE: waits (as a blocked client) while the pause holds this
    /// command back.
    /// True when the command waited.
    async fn wait_if_paused(&mut self, plan: &Plan, args: &[Bytes]) -> bool {
        let cmd = match plan {
            Plan::Done(_) => return false,
            Plan::Single(c, _) | Plan::Multi(c, _) | Plan::All(c) | Plan::Conn(c) | Plan::Session(c, _) => *c,
        };
        let server = &self.server;
        let may_write = || match cmd.spec.exec {
            Exec::Session(SessionOp::Exec) => self.txn.as_ref().is_some_and(|t| {
                t.queued.iter().any(|(c, a)| {
                    c.spec.is_write() || c.spec.has(flags::MAY_REPLICATE) || crate::scripting::may_write(server, *c, a)
                })
            }),
            _ => crate::scripting::may_write(server, cmd, args),
        };
        if !server.pause.holds(cmd, may_write) {
            return false;
        }
        let _blocked = blocking::Blocked::new(self, false, false);
        while let Some(until) = server.pause.recheck_at() {
            let ended = server.pause.ended.notified();
            let wait = std::time::Duration::from_millis(until.saturating_sub(crate::storage::now_ms()).max(1));
            tokio::select! {
                _ = ended => {}
                _ = tokio::time::sleep(wait) => {}
                // Killed; else a push was queued, which waits for the pause to end.
                _ = self.client.info.kill_notify.notified() => if self.client.info.killed.load(std::sync::atomic::Ordering::Acquire) {
                    return true;
                },
                _ = server.shutdown.notified() => return true,
            }
        }
        true
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
            Plan::Single(cmd, _) | Plan::Multi(cmd, _) | Plan::All(cmd) | Plan::Conn(cmd) | Plan::Session(cmd, _) => {
                *cmd
            }
        };
        if self.client.resp == 2 && self.sub.as_ref().is_some_and(|s| s.active()) {
            if !subscribe::allowed_when_subscribed(cmd.spec.name) {
                let reply = subscribe::not_allowed_when_subscribed(cmd.spec.name);
                dispatch::rejected(&self.server, cmd, &reply);
                return Err(reply);
            }
            if self.txn.is_none() {
                if let Some(pong) = self.subscribed_ping(cmd, args) {
                    return Err(pong);
                }
            }
        }
        let watch_dirty = self.watch.as_ref().is_some_and(|w| w.dirty());
        let Some(txn) = self.txn.as_mut() else {
            return Ok(plan);
        };
        match multi::queue(&self.server, txn, cmd, args, watch_dirty) {
            None => Ok(plan),
            Some(reply) => {
                if reply.is_error() {
                    dispatch::rejected(&self.server, cmd, &reply);
                }
                let n = txn.queued.len() as i64;
                self.client.info.bufs.multi.store(txn.bytes, std::sync::atomic::Ordering::Relaxed);
                self.client.info.meta.lock().multi = n;
                Err(reply)
            }
        }
    }

    /// PING's reply in RESP2 subscribed mode, if that is what `cmd` is.
    pub(crate) fn subscribed_ping(&self, cmd: Command, args: &[Bytes]) -> Option<Reply> {
        let subscribed = self.client.resp == 2 && self.sub.as_ref().is_some_and(|s| s.active());
        (subscribed && cmd.spec.name == "ping" && args.len() <= 2).then(|| subscribe::subscribed_ping(args))
    }

    /// The commands the session handles itself.
    async fn session_op(&mut self, op: SessionOp, cmd: Command, args: &[Bytes]) -> Reply {
        match op {
            SessionOp::Quit => {
                self.client.close_after_reply = true;
                Reply::ok()
            }
            SessionOp::Reset => self.reset().await,
            SessionOp::ClientReply => crate::commands::connection::client_reply(&mut self.client, args),
            SessionOp::Multi | SessionOp::Exec | SessionOp::Discard | SessionOp::Watch | SessionOp::Unwatch => {
                multi::run(self, op, args).await
            }
            SessionOp::Subscribe
            | SessionOp::Unsubscribe
            | SessionOp::PSubscribe
            | SessionOp::PUnsubscribe
            | SessionOp::SSubscribe
            | SessionOp::SUnsubscribe => subscribe::run(self, op, args),
            SessionOp::Eval => {
                dispatch::monitor_script(&self.server, &self.client.info, self.client.db, args);
                crate::scripting::router::eval(self, cmd, args).await
            }
            SessionOp::Fcall => {
                dispatch::monitor_script(&self.server, &self.client.info, self.client.db, args);
                crate::scripting::functions::fcall(self, cmd, args).await
            }
            SessionOp::Monitor => self.start_monitor(),
            SessionOp::Wait => crate::replication::wait(&self.server, args, self.woff, true).await,
        }
    }

    async fn reset(&mut self) -> Reply {
        if self.client.info.tracking.flags() != 0 {
            crate::pubsub::tracking::disable(&self.server, &self.client.info);
        }
        self.caching_armed = false;
        self.txn = None;
        self.client.info.meta.lock().multi = -1;
        self.client.info.bufs.multi.store(0, std::sync::atomic::Ordering::Relaxed);
        multi::unwatch_all(self).await;
        subscribe::unsubscribe_all(self);
        if self.monitor.take().is_some() {
            self.server.observers.monitors.remove(self.client.id());
            self.client.info.set_flag('O', false);
        }
        self.client.set_db(0);
        self.client.set_resp(2);
        self.client.reply_mode = ReplyMode::On;
        self.client.authenticated = !self.server.acl.auth_required();
        self.client.acl = crate::acl::ClientAcl::new(self.server.acl.default_user());
        self.client.info.user_id.store(crate::acl::DEFAULT_USER_ID, std::sync::atomic::Ordering::Release);
        let mut meta = self.client.info.meta.lock();
        meta.name = None;
        meta.user = "default".to_string();
        drop(meta);
        Reply::status("RESET")
    }

    /// MONITOR: from now on the client sees every command the server runs.
    fn start_monitor(&mut self) -> Reply {
        if self.monitor.is_none() {
            self.monitor = Some(self.server.observers.monitors.add(self.client.info.clone()));
            self.client.info.set_flag('O', true);
        }
        Reply::ok()
    }
}
