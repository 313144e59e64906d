//! One client connection: bytes in, bytes out.
//!
//! A connection task reads whatever the socket has, parses every complete
//! request in it (a pipeline), hands them to its `Session` (which routes and
//! runs them through dispatch) and writes all replies with one write. While
//! the client is subscribed or monitoring, the task also waits for messages.

use crate::net::limits::sleep_until;
use crate::protocol::{Batch, Reply, RequestParser};
use crate::server::Server;
use crate::session::Session;
use bytes::BytesMut;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A client's byte stream: a plain TCP socket, a Unix domain socket
/// (`unixsocket`), or TLS over TCP (`tls-port`). An enum rather than a type
/// parameter: the request path is compiled once, and the plain case costs
/// one branch per read or write.
pub enum Stream {
    Plain(TcpStream),
    Unix(UnixStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// The socket under a stream (TCP for plain and TLS, or Unix domain).
#[derive(Clone, Copy)]
pub enum Socket<'a> {
    Tcp(&'a TcpStream),
    Unix(&'a UnixStream),
}

impl Stream {
    /// The socket, when bytes written to it go straight to the peer (not TLS).
    fn plain_socket(&self) -> Option<Socket<'_>> {
        match self {
            Stream::Plain(s) => Some(Socket::Tcp(s)),
            Stream::Unix(s) => Some(Socket::Unix(s)),
            Stream::Tls(_) => None,
        }
    }

    /// The socket underneath (descriptor, readiness, peeks for a gone peer).
    pub fn socket(&self) -> Socket<'_> {
        match self {
            Stream::Plain(s) => Socket::Tcp(s),
            Stream::Unix(s) => Socket::Unix(s),
            Stream::Tls(t) => Socket::Tcp(t.get_ref().0),
        }
    }

    /// Sends what TLS still holds after writes (plain writes hold nothing).
    pub async fn flush_tls(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(_) | Stream::Unix(_) => Ok(()),
            Stream::Tls(t) => t.flush().await,
        }
    }
}

/// What ended an `IdleWait`.
enum Idle {
    Readable(std::io::Result<()>),
    /// Killed, or pushes queued.
    Woken,
    Shutdown,
}

/// A connection's wait for input: the socket readable, or the connection
/// woken (`ClientInfo::wake_idle`) for a kill, pushes or a shutdown. The
/// flags are checked after the waker is registered, so no wake is lost.
struct IdleWait<'a> {
    sock: Socket<'a>,
    info: &'a crate::net::client::ClientInfo,
    server: &'a Server,
}

impl std::future::Future for IdleWait<'_> {
    type Output = Idle;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Idle> {
        self.info.register_idle(cx.waker());
        if self.server.shutting_down.load(Ordering::SeqCst) {
            return Poll::Ready(Idle::Shutdown);
        }
        if self.info.killed.load(Ordering::Acquire)
            || self.info.pushes.waiting()
            || self.info.trim_buffers.load(Ordering::Relaxed)
        {
            return Poll::Ready(Idle::Woken);
        }
        self.sock.poll_read_ready(cx).map(Idle::Readable)
    }
}

/// `recv` with MSG_PEEK (and `flags`) into `buf`: what is readable, left in the socket.
fn recv_peek(fd: std::os::fd::RawFd, buf: &mut [u8], flags: libc::c_int) -> std::io::Result<usize> {
    // SAFETY: `buf` is a valid, writable slice of `buf.len()` bytes for the
    // whole call, and `recv` writes at most that many; `fd` is a socket the
    // caller's stream keeps open during the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK | flags) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl Socket<'_> {
    pub fn fd(self) -> std::os::fd::RawFd {
        match self {
            Socket::Tcp(s) => std::os::fd::AsRawFd::as_raw_fd(s),
            Socket::Unix(s) => std::os::fd::AsRawFd::as_raw_fd(s),
        }
    }

    /// Waits until the socket is readable (input, or the peer gone).
    pub async fn readable(self) -> std::io::Result<()> {
        match self {
            Socket::Tcp(s) => s.readable().await,
            Socket::Unix(s) => s.readable().await,
        }
    }

    /// Readiness for reading, polled (`IdleWait`).
    fn poll_read_ready(self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Socket::Tcp(s) => s.poll_read_ready(cx),
            Socket::Unix(s) => s.poll_read_ready(cx),
        }
    }

    /// Writes what the socket takes now (`WouldBlock` when nothing).
    fn try_write(self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_write(buf),
            Socket::Unix(s) => s.try_write(buf),
        }
    }

    /// Reads what the socket has now (`WouldBlock` when nothing).
    ///
    /// A read that leaves room in `buf` has drained the socket (epoll), so
    /// the socket's readiness is cleared with it, as tokio's own `poll_read`
    /// does: the next call then answers `WouldBlock` without a `recv`, where
    /// it would otherwise make one more system call per request to learn
    /// that nothing came. The readiness is cleared through `try_io`, which
    /// clears it only if no new event arrived since it was read (so input
    /// that comes during the read is never missed).
    pub fn try_read_buf(self, buf: &mut BytesMut) -> std::io::Result<usize> {
        let room = buf.capacity() - buf.len();
        let mut drained = None;
        let mut read_all = || {
            let r = match self {
                Socket::Tcp(s) => s.try_read_buf(buf),
                Socket::Unix(s) => s.try_read_buf(buf),
            };
            match r {
                Ok(n) if n > 0 && n < room => {
                    drained = Some(n);
                    Err(std::io::ErrorKind::WouldBlock.into())
                }
                r => r,
            }
        };
        let r = match self {
            Socket::Tcp(s) => s.try_io(tokio::io::Interest::READABLE, &mut read_all),
            Socket::Unix(s) => s.try_io(tokio::io::Interest::READABLE, &mut read_all),
        };
        match drained {
            Some(n) => Ok(n),
            None => r,
        }
    }

    /// Waits until the peer has closed its sending side (or the connection
    /// failed), even with unread input still queued before that end: a
    /// client blocked with requests pipelined behind its blocking command
    /// that hangs up is gone, as Redis finds it (it reads on while a client
    /// is blocked). Nothing is read: the input stays for later. The kernel
    /// tells a hang-up apart from more input (EPOLLRDHUP, `is_read_closed`).
    /// The wait watches a duplicate of the descriptor, registered on its
    /// own: clearing the stream's readiness for input it has not read would
    /// leave its next read waiting for an event that never comes.
    pub async fn read_closed(self) {
        // SAFETY: `dup` of a descriptor the stream keeps open; the copy is
        // owned (closed) by `OwnedFd` from here on.
        let copy = unsafe { libc::dup(self.fd()) };
        if copy < 0 {
            return std::future::pending().await;
        }
        // SAFETY: `copy` is a fresh descriptor nothing else owns.
        let copy = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(copy) };
        // SAFETY: the OwnedFd stays open, as the same descriptor, for as
        // long as the AsyncFd that owns it lives.
        let registered =
            unsafe { tokio::io::unix::AsyncFd::register_with_interest(copy, tokio::io::Interest::READABLE) };
        let Ok(watch) = registered else {
            return std::future::pending().await;
        };
        loop {
            match watch.readable().await {
                Ok(guard) if guard.ready().is_read_closed() => return,
                Ok(mut guard) => guard.clear_ready(),
                Err(_) => return,
            }
        }
    }

    /// Waits for input and copies its first bytes into `buf`, leaving them
    /// in the socket (0: the peer closed its side).
    pub async fn peek(self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.peek(buf).await,
            Socket::Unix(s) => loop {
                s.readable().await?;
                let fd = self.fd();
                match s.try_io(tokio::io::Interest::READABLE, || recv_peek(fd, buf, 0)) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    r => return r,
                }
            },
        }
    }

    /// Reads and drops what a peer that hung up still had queued (at most
    /// 1 MB), so that closing the connection ends it with a FIN, as Redis's
    /// does (it had read that input), not with a reset.
    pub fn discard_input(self) {
        let mut scratch = [0u8; 16 * 1024];
        for _ in 0..64 {
            // SAFETY: `scratch` is valid and writable for its whole length
            // during the call; the stream keeps the fd open.
            let n = unsafe { libc::recv(self.fd(), scratch.as_mut_ptr().cast(), scratch.len(), libc::MSG_DONTWAIT) };
            if n <= 0 {
                break;
            }
        }
    }

    /// True when the peer has closed its side (checked without waiting).
    pub fn peer_closed(self) -> bool {
        // poll(2) with POLLRDHUP sees a hang-up even behind unread input
        // (pipelined requests), where a peek would read that input first.
        let mut fds = libc::pollfd { fd: self.fd(), events: libc::POLLIN | libc::POLLRDHUP, revents: 0 };
        // SAFETY: one valid pollfd, for the duration of the call; a zero
        // timeout never sleeps. The stream keeps `fd` open.
        let n = unsafe { libc::poll(&mut fds, 1, 0) };
        n > 0 && fds.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(t) => Pin::new(&mut **t).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(t) => Pin::new(&mut **t).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(t) => Pin::new(&mut **t).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::Tls(t) => t.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(t) => Pin::new(&mut **t).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(t) => Pin::new(&mut **t).poll_shutdown(cx),
        }
    }
}

/// Serves one accepted connection; `addr` is its peer as CLIENT LIST shows
/// it (`ip:port`, or `path:0` on the Unix socket, as Redis writes both).
pub async fn run(server: Arc<Server>, mut stream: Stream, addr: String) {
    // During start-up, as Redis before its event loop runs: not served yet.
    server.persist.startup_gate().await;
    server.stats.connections_received.fetch_add(1, Ordering::Relaxed);
    let maxclients = server.config.maxclients.load(Ordering::Relaxed) as usize;
    if !server.clients.admit(maxclients) {
        server.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
        let _ = stream.flush_tls().await;
        return;
    }
    let socket = stream.socket();
    let laddr = match socket {
        Socket::Tcp(s) => s.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        // Redis shows the socket's path on both sides.
        Socket::Unix(_) => addr.clone(),
    };
    let info = server.clients.register(addr, laddr, socket.fd());
    if let Socket::Unix(_) = socket {
        info.mark_unix();
    }
    let mut conn = Connection {
        stream,
        parser: RequestParser::new(),
        inbuf: BytesMut::new(),
        batch: Batch::default(),
        waited_at_ms: 0,
        drained: false,
        session: Session::new(server.clone(), info.clone()),
    };
    if let Stream::Tls(tls) = &conn.stream {
        info.tls.store(true, Ordering::Relaxed);
        if server.config.get("tls-auth-clients-user").as_deref() == Some("cn") {
            if let Some(name) = crate::net::tls::client_common_name(tls) {
                crate::commands::acl::log_in(&server, &mut conn.session.client, &name, |_| true);
            }
        }
    }
    conn.serve().await;
    server.replicas.forget(info.id);
    server.clients.unregister(info.id);
}

/// The most output a pipelined batch holds back while the other ready
/// connections run (see `serve`). With LRANGE_300 at -P16 (43 KB per batch,
/// 50 clients) holding it all made the run 25% slower.
const HOLD_REPLIES_MAX: usize = 16 * 1024;

struct Connection {
    stream: Stream,
    parser: RequestParser,
    inbuf: BytesMut,
    /// The requests parsed from the input, run together (a pipeline). Its
    /// room goes back to the worker's pool with the read buffer while the
    /// connection waits for input.
    batch: Batch,
    /// `last_active` when the connection last went to wait for input: a
    /// connection whose requests follow each other closely keeps its read
    /// buffer while it waits (see `read_when_idle`).
    waited_at_ms: u64,
    /// The last read of `read_when_idle` emptied the socket (and cleared
    /// its readiness): the next wait for input needs no read before it.
    drained: bool,
    session: Session,
}

/// DEBUG REPLYBUFFER RESIZING 0|1: whether a reply buffer grown past 1 MB is
/// given back after its write (on by default; off keeps a client's memory
/// steady for measurements, as Redis's setting keeps its reply buffers).
pub static REPLY_BUFFER_RESIZING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Woken without input to read (see `Connection::read_when_idle`).
struct Again;

/// A connection whose request came within this long of its previous one
/// keeps its read buffer while it waits for the next: at one request per
/// round trip, giving the buffer back and taking it again cost about 240
/// instructions a request. It goes back once the connection has waited 2 s
/// (`ClientInfo::trim_buffers`), so idle connections still hold none.
const KEEP_BUFFER_WITHIN_MS: u64 = 1000;

/// Size of a pooled read buffer (the parser's usual read chunk).
const POOLED_READ_BUFFER: usize = 16 * 1024;
/// Most read buffers a worker thread keeps for its connections.
const POOLED_MAX: usize = 64;

/// Most arguments a pooled batch has room for (a bigger one is freed).
const POOLED_BATCH_ARGS: usize = 1024;

thread_local! {
    /// Empty read buffers of the connections on this worker that wait for input.
    static READ_BUFFERS: std::cell::RefCell<Vec<BytesMut>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Empty batches of the connections on this worker that wait for input.
    static BATCHES: std::cell::RefCell<Vec<Batch>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn take_batch() -> Batch {
    BATCHES.try_with(|p| p.borrow_mut().pop()).ok().flatten().unwrap_or_default()
}

/// Keeps an empty batch's room for the next connection of this worker to
/// read (a batch with room for a long pipeline is freed).
fn give_back_batch(mut batch: Batch) {
    if batch.capacity() == 0 || batch.capacity() > POOLED_BATCH_ARGS {
        return;
    }
    batch.clear();
    let _ = BATCHES.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOLED_MAX {
            p.push(batch);
        }
    });
}

fn take_read_buffer() -> BytesMut {
    READ_BUFFERS
        .try_with(|p| p.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| BytesMut::with_capacity(POOLED_READ_BUFFER))
}

/// Keeps an empty read buffer of the usual size for the next reader; one of
/// another size (a big request's) is freed.
fn give_back_read_buffer(mut buf: BytesMut) {
    buf.clear();
    if buf.capacity() < POOLED_READ_BUFFER {
        // Parsing advanced the buffer's start: an empty buffer that owns
        // its block gets its whole room back without a new allocation.
        buf.reserve(POOLED_READ_BUFFER);
    }
    if buf.capacity() != POOLED_READ_BUFFER {
        return;
    }
    let _ = READ_BUFFERS.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOLED_MAX {
            p.push(buf);
        }
    });
}

/// `Socket::try_read_buf`, noting in `drained` whether the read emptied
/// the socket (it read less than the buffer had room for).
fn read_noting(sock: Socket<'_>, buf: &mut BytesMut, drained: &mut bool) -> std::io::Result<usize> {
    let room = buf.capacity() - buf.len();
    let r = sock.try_read_buf(buf);
    *drained = matches!(r, Ok(n) if n > 0 && n < room);
    r
}

/// What woke a subscribed or monitoring connection.
enum Woke {
    Read(std::io::Result<usize>),
    Message,
    Stop,
}

/// What a wake-up of a waiting subscriber or monitor meant: a kill, or
/// pushes to write (`flush` takes them).
fn woken(info: &crate::net::client::ClientInfo) -> Woke {
    if info.killed.load(Ordering::Acquire) {
        Woke::Stop
    } else {
        Woke::Message
    }
}

impl Connection {
    async fn serve(&mut self) {
        let server = self.session.server.clone();
        let info = self.session.client.info.clone();
        loop {
            if server.shutting_down.load(Ordering::SeqCst) || info.killed.load(Ordering::Acquire) {
                break;
            }
            // Pushes (client-side caching invalidations) queued while the
            // connection waited for input.
            if info.pushes.waiting() && !self.flush().await {
                break;
            }
            let subscribed = self.session.sub.is_some() || self.session.monitor.is_some();
            let read = if !subscribed && self.inbuf.is_empty() && !self.parser.pending_big() {
                match self.read_when_idle(&server, &info).await {
                    Some(Ok(r)) => r,
                    Some(Err(Again)) => continue,
                    None => break,
                }
            } else if subscribed {
                self.grow_for_read(&server);
                match self.wait_messages().await {
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
                self.grow_for_read(&server);
                // Biased, read first: no random branch order to draw, and when
                // input is ready the notifications are not even registered.
                // Kills and shutdowns are also seen by the checks at the loop top.
                tokio::select! {
                    biased;
                    r = self.stream.read_buf(&mut self.inbuf) => r,
                    // Killed, or pushes queued: the loop top sees which.
                    _ = info.kill_notify.notified() => continue,
                    _ = server.shutdown.notified() => break,
                }
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    server.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    server.stats.reads_processed.fetch_add(1, Ordering::Relaxed);
                    if !self.after_read() {
                        break;
                    }
                }
            }
            let mut proto_error = None;
            let max_bulk = server.config.proto_max_bulk_len.load(Ordering::Relaxed);
            let unparsed = self.inbuf.len();
            let authenticated = self.session.client.authenticated;
            if let Err(e) = self.parser.parse_batch(&mut self.inbuf, max_bulk, authenticated, &mut self.batch) {
                proto_error = Some(e);
            }
            let pipelined = self.batch.len() > 1;
            // CLIENT LIST's buffer fields: while the requests run, `qbuf`
            // counts them and the input behind them (as Redis's query buffer
            // still holds the command being executed), `argv-mem` their bytes.
            let bufs = &info.bufs;
            if info.eviction_on() {
                bufs.qbuf_declared.store(self.parser.pending_big_len(), Ordering::Relaxed);
            }
            bufs.qbuf.store(unparsed, Ordering::Relaxed);
            bufs.qbuf_cap.store(self.inbuf.capacity(), Ordering::Relaxed);
            bufs.qbuf_peak.fetch_max(self.inbuf.capacity(), Ordering::Relaxed);
            if !self.batch.is_empty() {
                bufs.argv.store(unparsed - self.inbuf.len(), Ordering::Relaxed);
                self.session.refresh_out_limit();
                info.busy.store(true, Ordering::Release);
                self.session.execute_batch(&self.batch, &mut self.stream).await;
                info.busy.store(false, Ordering::Release);
                bufs.argv.store(0, Ordering::Relaxed);
                bufs.qbuf.store(self.inbuf.len(), Ordering::Relaxed);
                self.batch.clear();
                if self.batch.capacity() > POOLED_BATCH_ARGS {
                    self.batch = Batch::default();
                }
            }
            if let Some(e) = proto_error {
                Reply::Error(e.0).encode(self.session.client.resp, &mut self.session.out);
                self.session.client.close_after_reply = true;
            }
            let out = self.session.out_len();
            if pipelined && out != 0 && out <= HOLD_REPLIES_MAX {
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
            if !self.flush().await || self.session.client.close_after_reply {
                break;
            }
            if let Some(req) = server.replicas.take_handoff(info.id) {
                // A replica's link: its memory is a replica's, not limited
                // by `maxmemory-clients`.
                info.replication_link.store(true, Ordering::Relaxed);
                info.unaccount_memory();
                let (stream, inbuf) = (&mut self.stream, &mut self.inbuf);
                crate::replication::serve_replica(&server, stream, inbuf, &info, req).await;
                break;
            }
            // Give back memory after a burst of big requests.
            if self.inbuf.is_empty() && self.inbuf.capacity() > 1 << 20 {
                self.inbuf = BytesMut::new();
            }
        }
        let _ = self.flush().await;
        info.forget_idle();
        self.session.close().await;
    }

    /// Makes room in the input buffer for the next read.
    fn grow_for_read(&mut self, server: &Server) {
        let qbuf_limit = server.config.query_buffer_limit.load(Ordering::Relaxed);
        self.parser.grow_for_read(&mut self.inbuf, usize::try_from(qbuf_limit).unwrap_or(usize::MAX));
    }

    /// Reads a request while no input is pending. When there is nothing to
    /// read yet it waits holding no input buffer: the empty buffer goes back
    /// to the worker's pool and one is taken again once the socket is readable. An idle connection
    /// then costs no read buffer (Redis frees an idle client's query buffer
    /// in its cron). TLS keeps its own buffer (it may hold decrypted input
    /// the socket does not show). `None`: stop serving; `Some(Err(Again))`:
    /// woken without input (a kill, pushes, a spurious readiness).
    async fn read_when_idle(
        &mut self,
        server: &Server,
        info: &crate::net::client::ClientInfo,
    ) -> Option<Result<std::io::Result<usize>, Again>> {
        let sock = match &self.stream {
            Stream::Plain(s) => Socket::Tcp(s),
            Stream::Unix(s) => Socket::Unix(s),
            Stream::Tls(_) => {
                self.grow_for_read(server);
                return tokio::select! {
                    biased;
                    r = self.stream.read_buf(&mut self.inbuf) => Some(Ok(r)),
                    _ = info.kill_notify.notified() => Some(Err(Again)),
                    _ = server.shutdown.notified() => None,
                };
            }
        };
        // Input may be there already (the next pipelined batch): read it
        // before waiting, as a plain read would. Unless the last read
        // emptied the socket: that read cleared its readiness, so this one
        // would only learn that nothing came (at one request per round trip,
        // every time), and the wait below sees whatever came since.
        let mut buf = std::mem::take(&mut self.inbuf);
        let held = buf.capacity() != 0;
        if !held {
            buf = take_read_buffer();
            if self.batch.capacity() == 0 {
                self.batch = take_batch();
            }
        }
        let first = if held && self.drained {
            Err(std::io::ErrorKind::WouldBlock.into())
        } else {
            read_noting(sock, &mut buf, &mut self.drained)
        };
        match first {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let active = info.last_active.load(Ordering::Relaxed);
                let recent = active.saturating_sub(self.waited_at_ms) < KEEP_BUFFER_WITHIN_MS;
                self.waited_at_ms = active;
                let trim =
                    info.trim_buffers.load(Ordering::Relaxed) && info.trim_buffers.swap(false, Ordering::Relaxed);
                if held && recent && !trim && buf.capacity() <= POOLED_READ_BUFFER {
                    // Requests come one after another: the buffer stays (and
                    // gets back the room parsing moved past: it is empty).
                    if buf.capacity() < POOLED_READ_BUFFER / 4 {
                        buf.reserve(POOLED_READ_BUFFER);
                    }
                    self.inbuf = buf;
                } else {
                    give_back_read_buffer(buf);
                    give_back_batch(std::mem::take(&mut self.batch));
                    // CLIENT LIST (qbuf, qbuf-free, rbs, tot-mem) and INFO's
                    // mem_clients_normal: the connection holds no buffer now.
                    info.bufs.qbuf.store(0, Ordering::Relaxed);
                    info.bufs.qbuf_cap.store(0, Ordering::Relaxed);
                }
            }
            r => {
                self.inbuf = buf;
                return Some(Ok(r));
            }
        }
        match (IdleWait { sock, info, server }).await {
            Idle::Readable(Ok(())) => {}
            Idle::Readable(Err(e)) => return Some(Ok(Err(e))),
            // Killed, or pushes queued: the loop top sees which.
            Idle::Woken => return Some(Err(Again)),
            Idle::Shutdown => return None,
        }
        if self.inbuf.capacity() == 0 {
            self.inbuf = take_read_buffer();
        }
        if self.batch.capacity() == 0 {
            self.batch = take_batch();
        }
        match read_noting(sock, &mut self.inbuf, &mut self.drained) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(Err(Again)),
            r => Some(Ok(r)),
        }
    }

    /// Waits for input, a published message or a MONITOR line; messages (and
    /// whatever else is queued, up to a write's worth) are encoded into the output.
    async fn wait_messages(&mut self) -> Woke {
        let s = &mut self.session;
        let info = s.client.info.clone();
        let server = s.server.clone();
        if let Some(rx) = s.monitor.as_mut() {
            let line = tokio::select! {
                r = self.stream.read_buf(&mut self.inbuf) => return Woke::Read(r),
                l = rx.recv() => l,
                _ = info.kill_notify.notified() => return woken(&info),
                _ = server.shutdown.notified() => return Woke::Stop,
            };
            let Some(line) = line else {
                return Woke::Stop;
            };
            s.out.extend_from_slice(&line);
            while s.out.len() < 64 * 1024 {
                let Ok(line) = rx.try_recv() else {
                    break;
                };
                s.out.extend_from_slice(&line);
            }
            return Woke::Message;
        }
        let Some(sub) = s.sub.as_mut() else {
            return Woke::Stop;
        };
        let woke = tokio::select! {
            r = self.stream.read_buf(&mut self.inbuf) => return Woke::Read(r),
            m = sub.rx.recv() => m,
            _ = info.kill_notify.notified() => return woken(&info),
            _ = server.shutdown.notified() => return Woke::Stop,
        };
        let Some(msg) = woke else {
            return Woke::Stop;
        };
        let mut dropped = crate::session::subscribe::take_message(s, msg);
        while s.out.len() < 64 * 1024 {
            let Some(msg) = s.sub.as_mut().and_then(|sub| sub.rx.try_recv().ok()) else {
                break;
            };
            dropped |= crate::session::subscribe::take_message(s, msg);
        }
        if dropped {
            crate::session::subscribe::settle(s);
        }
        Woke::Message
    }

    /// Writes pending output. Returns false when the peer is gone, the client
    /// was killed, or its output overcame the soft limit while waiting.
    async fn flush(&mut self) -> bool {
        // appendfsync always: no reply leaves before its writes are on disk.
        self.session.wait_for_aof().await;
        if self.session.client.info.pushes.waiting() {
            self.session.take_pushes(true);
        }
        if self.session.out_dropped {
            self.session.clear_out();
            self.session.out = Vec::new();
            return false;
        }
        if self.session.out_len() == 0 {
            return true;
        }
        self.session.client.info.note_output(self.session.out_len());
        let ok = self.write_out().await;
        let s = &mut self.session;
        if let Some(sub) = s.sub.as_mut() {
            sub.sub.written(std::mem::take(&mut sub.unflushed));
        }
        s.server.stats.net_output_bytes.fetch_add(s.out_len() as u64, Ordering::Relaxed);
        s.clear_out();
        if s.out.capacity() > 1 << 20 && REPLY_BUFFER_RESIZING.load(Ordering::Relaxed) {
            s.out = Vec::new();
        }
        ok
    }

    /// Writes all of `out`. A client that does not read must not hold its
    /// connection (nor its output) forever: the wait ends on CLIENT KILL (the
    /// idle timeout and the pubsub limits kill too) or when the pending bytes
    /// stay over the soft output limit for too long.
    async fn write_out(&mut self) -> bool {
        let info = self.session.client.info.clone();
        info.bufs.out.store(self.session.out_len(), Ordering::Relaxed);
        info.bufs.out_cap.store(self.session.out.capacity(), Ordering::Relaxed);
        if info.eviction_on() {
            // Replies, watched keys, subscriptions, a MULTI queue: whatever
            // the batch added counts before the client waits on the socket.
            info.account_memory();
            crate::net::eviction::evict_if_over(&self.session.server);
        }
        let ok = self.write_all_out(&info).await;
        info.bufs.out.store(0, Ordering::Relaxed);
        ok
    }

    async fn write_all_out(&mut self, info: &crate::net::client::ClientInfo) -> bool {
        let mut written = 0;
        let total = self.session.out_len();
        let vectored = !self.session.out_refs.is_empty();
        // First straight to the socket: the usual reply fits its send buffer,
        // and the wait below (a kill, the soft output limit) costs a timer and
        // a notification registration per write.
        if info.killed.load(Ordering::Acquire) {
            return false;
        }
        if !vectored {
            if let Some(sock) = self.stream.plain_socket() {
                while written < total {
                    match sock.try_write(&self.session.out[written..]) {
                        Ok(0) => return false,
                        Ok(n) => {
                            written += n;
                            self.session.server.stats.writes_processed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => return false,
                    }
                }
                if written > 0 {
                    info.last_active.store(crate::storage::now_ms(), Ordering::Relaxed);
                }
            }
        }
        while written < total {
            if info.killed.load(Ordering::Acquire) {
                return false;
            }
            // A subscriber's messages wait in its queue too: the pubsub soft
            // limit counts them all (and closes one that stopped reading).
            // Messages go on queueing while the write waits: a subscriber under
            // the limit looks again every 100 ms.
            let (deadline, recheck) = match self.session.sub.as_ref().filter(|s| s.active()) {
                // The bytes taken from the queue but not yet written count too
                // (CLIENT LIST's omem, and Redis's output buffer, hold both).
                Some(sub) => match sub.sub.soft_deadline_ms(&self.session.server.config.pubsub_limits, total - written)
                {
                    Some(at) => {
                        let wait = std::time::Duration::from_millis(at.saturating_sub(crate::storage::now_ms()));
                        (Some(tokio::time::Instant::now() + wait), false)
                    }
                    None => (Some(tokio::time::Instant::now() + std::time::Duration::from_millis(100)), true),
                },
                None => (self.session.out_limit.soft_deadline(total - written), false),
            };
            // Long bulk strings go from their own buffers (`out_refs`).
            let slices = if vectored { self.session.out_slices(written, 64) } else { Vec::new() };
            let (stream, flat) = (&mut self.stream, &self.session.out[if vectored { 0 } else { written }..]);
            let write = async move {
                if vectored {
                    stream.write_vectored(&slices).await
                } else {
                    stream.write(flat).await
                }
            };
            let n = tokio::select! {
                r = write => r,
                // Killed; else pushes were queued, which the next flush writes.
                _ = info.kill_notify.notified() => if info.killed.load(Ordering::Acquire) {
                    return false;
                } else {
                    continue;
                },
                _ = sleep_until(deadline) => {
                    if recheck {
                        continue;
                    }
                    self.session.output_overcome();
                    return false;
                }
            };
            self.session.server.stats.writes_processed.fetch_add(1, Ordering::Relaxed);
            match n {
                Ok(0) | Err(_) => return false,
                Ok(n) => written += n,
            }
            info.last_active.store(crate::storage::now_ms(), Ordering::Relaxed);
        }
        if let Stream::Tls(_) = self.stream {
            return self.flush_tls(info).await;
        }
        true
    }

    /// Sends the records TLS holds after the writes, with the same limits
    /// as the writes (a kill, the soft output limit).
    async fn flush_tls(&mut self, info: &crate::net::client::ClientInfo) -> bool {
        let deadline = self.session.out_limit.soft_deadline(self.session.out_len());
        loop {
            tokio::select! {
                r = self.stream.flush_tls() => return r.is_ok(),
                _ = info.kill_notify.notified() => if info.killed.load(Ordering::Acquire) {
                    return false;
                },
                _ = sleep_until(deadline) => {
                    self.session.output_overcome();
                    return false;
                }
            }
        }
    }

    /// After every read: the client is active, and its buffered request must
    /// stay within `client-query-buffer-limit`.
    fn after_read(&mut self) -> bool {
        let s = &self.session;
        s.client.info.last_active.store(crate::storage::now_ms(), Ordering::Relaxed);
        s.client.info.note_input(self.inbuf.capacity());
        // Like Redis 7.0, only the unparsed input counts, not arguments already parsed.
        if crate::net::limits::query_buffer_overcome(&s.server, &s.client.info, &self.inbuf) {
            return false;
        }
        if s.client.info.eviction_on() {
            return self.account_memory_after_read();
        }
        true
    }

    /// `maxmemory-clients`: a growing query buffer (a big argument arriving)
    /// counts at once; false when that got this client evicted.
    #[cold]
    fn account_memory_after_read(&self) -> bool {
        let info = &self.session.client.info;
        info.bufs.qbuf.store(self.inbuf.len(), Ordering::Relaxed);
        info.bufs.qbuf_cap.store(self.inbuf.capacity(), Ordering::Relaxed);
        info.account_memory();
        crate::net::eviction::evict_if_over(&self.session.server);
        !info.killed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;

    /// A read buffer advanced by parsing comes back whole and is reused.
    #[test]
    fn read_buffers_are_reused_after_parsing() {
        let mut buf = take_read_buffer();
        let block = buf.as_ptr();
        buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        buf.advance(14);
        give_back_read_buffer(buf);
        let again = take_read_buffer();
        assert_eq!(again.as_ptr(), block);
        assert_eq!(again.capacity(), POOLED_READ_BUFFER);
        assert!(again.is_empty());
        // A grown buffer is freed, not pooled.
        let mut big = BytesMut::with_capacity(POOLED_READ_BUFFER * 4);
        big.extend_from_slice(b"x");
        give_back_read_buffer(big);
        assert_eq!(take_read_buffer().capacity(), POOLED_READ_BUFFER);
    }
}
