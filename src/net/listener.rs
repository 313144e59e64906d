//! Accepts connections and runs the server until shutdown.

use crate::net::connection;
use crate::server::Server;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Binds every configured address, then serves until SHUTDOWN or a signal.
pub async fn serve(server: Arc<Server>, ready: Option<tokio::sync::oneshot::Sender<u16>>) -> std::io::Result<()> {
    check_logfile(&server).map_err(std::io::Error::other)?;
    log(&server, "notice", "oO0OoO0OoO0Oo moonshard is starting oO0OoO0OoO0Oo");
    log(
        &server,
        "notice",
        &format!(
            "moonshard version={} (Redis {} compatible), bits={}, pid={}, just started",
            env!("CARGO_PKG_VERSION"),
            crate::REDIS_VERSION,
            usize::BITS,
            std::process::id()
        ),
    );
    let port = server.config.get_i64("port") as u16;
    // From the command line or a file, the addresses are words (runs of
    // spaces separate them, as Redis reads its arguments).
    let binds = server.config.get("bind").unwrap_or_else(|| "127.0.0.1".into());
    let binds = binds.split_whitespace().collect::<Vec<_>>().join(" ");
    // At start-up, port 0 asks for a free port (moonshard's own meaning; at
    // run time `CONFIG SET port 0` closes the TCP listeners, as in Redis).
    let tls_port = server.config.get_i64("tls-port").clamp(0, 65535) as u16;
    // A TLS port, or TLS links to other servers (tls-replication, tls-cluster).
    if crate::net::tls::wanted(&server.config) && server.tls.reload(&server).is_err() {
        log(&server, "warning", "Failed to configure TLS. Check logs for more info.");
        return Err(std::io::Error::other("Failed to configure TLS"));
    }
    let unixsocket = server.config.get("unixsocket").unwrap_or_default();
    // With a TLS port or a Unix socket, `port 0` means no plain TCP port (as in Redis).
    let plain = port != 0 || (tls_port == 0 && unixsocket.is_empty());
    let bound = match plain.then(|| rebind(&server, port, &binds, true)) {
        None => 0,
        Some(Ok(bound)) => bound.unwrap_or(port),
        Some(Err(e)) => return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, e)),
    };
    if tls_port != 0 {
        if let Err(e) = rebind_tls(&server, tls_port, &binds) {
            return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, e));
        }
    }
    // The Unix socket comes after the TCP ones, as in Redis.
    if !unixsocket.is_empty() {
        if let Err(e) = listen_unix(&server, &unixsocket) {
            log(&server, "warning", &e);
            return Err(std::io::Error::other(e));
        }
    }
    // `--port 0` picks a free port: CONFIG GET port reports the one in use.
    let _ = server.config.set("port", &bound.to_string(), true);
    // Once the sockets listen, before the dataset loads (as Redis).
    crate::process::write_pidfile(&server);
    crate::process::install_crash_handlers();
    let mode = if server.cluster.is_some() { "cluster" } else { "standalone" };
    log(&server, "notice", &format!("Running mode={mode}, port={bound}. PID: {}", std::process::id()));
    if let Some(cluster) = &server.cluster {
        if let Err(e) = crate::cluster::link::start(&server, cluster, bound, &bind_list(&binds)) {
            log(&server, "warning", &e);
            return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, e));
        }
    }

    // Clients are accepted while the dataset loads (rebind started the
    // accept loops); they wait, and get LOADING once the load has gone on
    // for a while (`persist.starting`), until it is in memory (as Redis).
    log(&server, "notice", "Server initialized");
    server.persist.loading.store(true, Ordering::SeqCst);
    let loader = server.clone();
    let loaded = tokio::task::spawn_blocking(move || crate::persist::load::at_startup(&loader))
        .await
        .unwrap_or_else(|e| Err(format!("the loader failed: {e}")));
    if loaded.is_ok() {
        crate::replication::follow_configured_master(&server);
    }
    server.persist.loading.store(false, Ordering::SeqCst);
    server.persist.starting.store(false, Ordering::SeqCst);
    if let Err(e) = loaded {
        e.lines().for_each(|line| log(&server, "warning", line));
        server.request_shutdown();
        return Err(std::io::Error::other(e));
    }
    // The signal handlers are in place before the server says it is ready:
    // a SIGTERM right after start-up is a shutdown, not a kill.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    if plain {
        log(
            &server,
            "notice",
            &format!("Ready to accept connections tcp on port {bound} ({} shards)", server.shards.len()),
        );
    }
    if tls_port != 0 {
        log(
            &server,
            "notice",
            &format!("Ready to accept connections tls on port {tls_port} ({} shards)", server.shards.len()),
        );
    }
    if !unixsocket.is_empty() {
        log(&server, "notice", &format!("The server is now ready to accept connections at {unixsocket}"));
    }
    if let Some(tx) = ready {
        let _ = tx.send(bound);
    }

    for shard in 0..server.shards.len() {
        tokio::spawn(active_expire_loop(server.clone(), shard));
    }
    tokio::spawn(crate::storage::memory::cron(server.clone()));
    tokio::spawn(crate::stats::sampler::cron(server.clone()));
    tokio::spawn(crate::net::limits::clients_cron(server.clone()));
    tokio::spawn(crate::persist::save::cron(server.clone()));
    tokio::spawn(crate::replication::cron(server.clone()));

    loop {
        let signal = tokio::select! {
            _ = sigint.recv() => "SIGINT",
            _ = sigterm.recv() => "SIGTERM",
            _ = wait_shutdown(&server) => break,
        };
        log(&server, "warning", &format!("Received {signal} scheduling shutdown..."));
        // Redis shuts down from its cron: while DEBUG PAUSE-CRON holds it,
        // the shutdown waits, and SHUTDOWN ABORT may cancel it.
        if server.cron_paused.load(Ordering::Relaxed) {
            server.signal_shutdown_pending.store(true, Ordering::SeqCst);
            while server.cron_paused.load(Ordering::Relaxed)
                && server.signal_shutdown_pending.load(Ordering::SeqCst)
                && !server.shutting_down.load(Ordering::Relaxed)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if !server.signal_shutdown_pending.swap(false, Ordering::SeqCst) {
                continue;
            }
        }
        // shutdown-on-sigterm / -sigint: `default` saves when save points are set.
        let param = if signal == "SIGINT" { "shutdown-on-sigint" } else { "shutdown-on-sigterm" };
        let mode = server.config.get(param).unwrap_or_default();
        let save = match mode.as_str() {
            "save" => true,
            "nosave" => false,
            _ => !crate::persist::save::save_points(&server.config).is_empty(),
        };
        let force = mode == "force";
        let srv = server.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            if !crate::replication::wait_for_replicas_before_shutdown(&srv) {
                return Err(String::new());
            }
            crate::persist::save::prepare_shutdown(&srv, save, force)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match prepared {
            Ok(()) => break,
            // SHUTDOWN ABORT during the wait for replicas: logged there.
            Err(e) if e.is_empty() => continue,
            Err(_) => crate::replication::release_shutdown_hold(&server),
        }
        // (prepare_shutdown logged why; Redis 7.0 adds this line only for a
        // signal that came while the dataset was loading.)
        if server.persist.loading.load(Ordering::Relaxed) {
            log(
                &server,
                "warning",
                &format!(
                    "{signal} received but errors trying to shut down the server, check the logs for more information"
                ),
            );
        }
    }
    server.request_shutdown();
    // The cluster configuration a recent change left for the cron.
    if let Some(cluster) = &server.cluster {
        if let Err(e) = cluster.sync_pending() {
            log(&server, "warning", &format!("Could not save the cluster config file: {e}"));
        }
    }
    // No new connections from here on.
    server.listeners.lock().drain(..).for_each(Listening::close);
    server.tls.listeners.lock().drain(..).for_each(Listening::close);
    // Redis removes the pid file, then the Unix socket.
    crate::process::remove_pidfile(&server);
    let unix = server.unix_listener.lock().take();
    if let Some(unix) = unix {
        unix.close(&server);
    }
    // Let connections flush what they have before the runtime stops.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !server.clients.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    log(&server, "warning", "moonshard is now ready to exit, bye bye...");
    Ok(())
}

/// One listening socket and the task accepting on it. The socket is shared
/// with the task so that `close` can stop it at once (the port is free for a
/// new socket when `close` returns); connections already accepted stay.
pub struct Listening {
    addr: SocketAddr,
    socket: Arc<TcpListener>,
    task: tokio::task::AbortHandle,
}

impl Listening {
    fn start(server: &Arc<Server>, addr: SocketAddr, socket: TcpListener, tls: bool) -> Listening {
        let socket = Arc::new(socket);
        let task = tokio::spawn(accept_loop(server.clone(), socket.clone(), tls)).abort_handle();
        Listening { addr, socket, task }
    }

    /// Stops listening now (the task goes away at its next poll).
    fn close(self) {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&*self.socket);
        // SAFETY: `fd` belongs to the socket `self.socket` keeps open until
        // the end of this call; shutting it down only changes that socket's
        // state (it stops listening) and touches no memory.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
        self.task.abort();
    }
}

/// The `unixsocket` listener: the socket file and the task accepting on it
/// (which owns the socket: aborting it closes the socket).
pub struct UnixListening {
    path: std::path::PathBuf,
    task: tokio::task::AbortHandle,
}

impl UnixListening {
    /// Stops listening and removes the socket file, as Redis does at shutdown.
    fn close(self, server: &Server) {
        self.task.abort();
        log(server, "notice", "Removing the unix socket file.");
        if let Err(e) = std::fs::remove_file(&self.path) {
            log(server, "warning", &format!("Error removing the unix socket file: {}", describe(&e)));
        }
    }
}

/// Listens on the Unix domain socket `name` (`unixsocket`, taken from `dir`
/// when relative) as Redis does: whatever file has the name is removed
/// first, the new socket gets `unixsocketperm` when that is set, and
/// `tcp-backlog` pending connections. Err: Redis's log line.
fn listen_unix(server: &Arc<Server>, name: &str) -> Result<(), String> {
    let fail = |why: &str| format!("Failed opening Unix socket: {why}");
    // `sun_path` holds 108 bytes, the last one a NUL.
    const SUN_PATH: usize = 108;
    if name.len() > SUN_PATH - 1 {
        return Err(fail(&format!("unix socket path too long ({}), must be under {SUN_PATH}", name.len())));
    }
    let path = crate::process::in_dir(&server.config, name);
    // Redis unlinks the name whatever it is (a stale socket, usually).
    let _ = std::fs::remove_file(&path);
    let socket = std::os::unix::net::UnixListener::bind(&path).map_err(|e| fail(&format!("bind: {}", describe(&e))))?;
    let backlog = server.config.get_i64("tcp-backlog").clamp(1, i64::from(i32::MAX)) as libc::c_int;
    // SAFETY: `socket` owns this listening descriptor for the whole call;
    // listening again only sets its queue length.
    unsafe {
        libc::listen(std::os::fd::AsRawFd::as_raw_fd(&socket), backlog);
    }
    let mode = crate::config::unixsocket_mode(&server.config);
    if mode != 0 {
        // Best effort, as Redis's chmod.
        let _ = std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode));
    }
    socket.set_nonblocking(true).map_err(|e| fail(&describe(&e)))?;
    let socket = tokio::net::UnixListener::from_std(socket).map_err(|e| fail(&describe(&e)))?;
    // Clients on the socket show its name as both their addresses.
    let addr = format!("{name}:0");
    let task = tokio::spawn(accept_unix(server.clone(), socket, addr)).abort_handle();
    *server.unix_listener.lock() = Some(UnixListening { path, task });
    Ok(())
}

/// Accepts connections on the Unix socket until shutdown. Its clients are
/// local: protected mode does not apply to them, as in Redis.
async fn accept_unix(server: Arc<Server>, listener: tokio::net::UnixListener, addr: String) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = server.shutdown.notified() => break,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(connection::run(server.clone(), connection::Stream::Unix(stream), addr.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        if server.shutting_down.load(Ordering::SeqCst) {
            break;
        }
    }
}

/// Redis's keepalive on an accepted TCP client (`tcp-keepalive` seconds, 0
/// for none): the first probe after that long idle, the next ones a third
/// of it apart (at least a second), the connection dropped after 3
/// unanswered. Best effort, as in Redis: the first option the system
/// refuses (an idle time past its maximum) ends it.
pub fn set_keepalive(fd: std::os::fd::RawFd, secs: u64) {
    if secs == 0 {
        return;
    }
    let secs = secs.min(i32::MAX as u64) as libc::c_int;
    let options = [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (secs / 3).max(1)),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3),
    ];
    for (level, name, value) in options {
        // SAFETY: `value` is a live c_int for the call and its size is the
        // length given; `fd` is the caller's open socket.
        let r = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return;
        }
    }
}

/// The addresses of a `bind` value as Redis splits it: on single spaces
/// (two spaces make an empty address, which fails to bind); an empty value
/// is no address at all.
pub fn bind_list(value: &str) -> Vec<&str> {
    if value.is_empty() {
        Vec::new()
    } else {
        value.split(' ').collect()
    }
}

/// Errors an optional (`-`-prefixed) address may fail with and be skipped:
/// the address or its family is not available on this host.
fn optional_failure(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EADDRNOTAVAIL
                | libc::EAFNOSUPPORT
                | libc::EPROTONOSUPPORT
                | libc::ENOPROTOOPT
                | libc::ESOCKTNOSUPPORT
                | libc::EPFNOSUPPORT
        )
    )
}

/// An error as the system words it, without Rust's "(os error N)" tail.
fn describe(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The socket address one `bind` entry names on `port`: `*` is every IPv4
/// interface, `::*` every IPv6 one, anything else an address, or a host
/// name whose first address of the family is taken (IPv6 when the entry
/// has a colon, IPv4 otherwise, as Redis asks the resolver).
fn resolve(addr: &str, port: u16) -> Result<SocketAddr, String> {
    use std::net::{Ipv4Addr, Ipv6Addr, ToSocketAddrs};
    let unknown = || "Name or service not known".to_string();
    match addr {
        "*" => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
        "::*" => Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)),
        "" => Err(unknown()),
        _ => match addr.parse::<IpAddr>() {
            Ok(ip) => Ok(SocketAddr::new(ip, port)),
            Err(_) => {
                let v6 = addr.contains(':');
                let mut found = (addr, port).to_socket_addrs().map_err(|_| unknown())?;
                found.find(|a| a.is_ipv6() == v6).ok_or_else(unknown)
            }
        },
    }
}

/// A listening socket on `addr`: SO_REUSEADDR, IPv6 sockets IPv6-only (so
/// `* ::*` binds both families on one port), `tcp-backlog` pending connections.
fn listen_on(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv6() { tokio::net::TcpSocket::new_v6()? } else { tokio::net::TcpSocket::new_v4()? };
    socket.set_reuseaddr(true)?;
    if addr.is_ipv6() {
        let one: libc::c_int = 1;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        // SAFETY: `fd` is the open socket `socket` owns for this whole call,
        // and the option value is a live c_int whose size is passed with it.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Listens on `binds` (a `bind` value) at `port`, then stops listening where
/// the old set did and the new one does not. An address bound before and
/// after keeps its socket, and new sockets are bound before old ones close,
/// so the server stays reachable; only when a new address overlaps an old
/// one on the same port (`*` after `127.0.0.1`) are the old sockets on that
/// port closed first, as Redis closes them all. On failure the old set is
/// listening again and the new sockets are closed. `startup`: port 0 asks
/// the system for a free port (at run time it means no TCP listener).
/// Returns the port bound (None: nothing bound), or the log line of the
/// address that failed.
pub fn rebind(server: &Arc<Server>, port: u16, binds: &str, startup: bool) -> Result<Option<u16>, String> {
    rebind_set(server, port, binds, startup, false)
}

/// `rebind` for the TLS listeners (`tls-port`; 0 closes them).
pub fn rebind_tls(server: &Arc<Server>, port: u16, binds: &str) -> Result<Option<u16>, String> {
    rebind_set(server, port, binds, false, true)
}

fn rebind_set(server: &Arc<Server>, port: u16, binds: &str, startup: bool, tls: bool) -> Result<Option<u16>, String> {
    let backlog = server.config.get_i64("tcp-backlog").clamp(1, i64::from(i32::MAX)) as u32;
    let kind = if tls { "TLS" } else { "TCP" };
    let fail = |addr: &str, why: &str| format!("Could not create server {kind} listening socket {addr}:{port}: {why}");
    let mut targets = Vec::new();
    if port != 0 || startup {
        for entry in bind_list(binds) {
            let (optional, addr) = match entry.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, entry),
            };
            targets.push((resolve(addr, port).map_err(|why| fail(addr, &why))?, optional, addr));
        }
    }
    let mut current = if tls { server.tls.listeners.lock() } else { server.listeners.lock() };
    let mut old: Vec<Option<Listening>> = current.drain(..).map(Some).collect();
    let mut reused: Vec<Listening> = Vec::new();
    let mut fresh: Vec<(SocketAddr, TcpListener)> = Vec::new();
    // Old sockets closed early to make room, listened on again on failure.
    let mut closed: Vec<SocketAddr> = Vec::new();
    let mut failure = None;
    for (target, optional, addr) in targets {
        if port != 0 {
            if let Some(slot) = old.iter_mut().find(|l| l.as_ref().is_some_and(|l| l.addr == target)) {
                reused.extend(slot.take());
                continue;
            }
        }
        let mut made = listen_on(target, backlog);
        if matches!(&made, Err(e) if e.kind() == std::io::ErrorKind::AddrInUse) {
            let mut freed = false;
            for slot in old.iter_mut().filter(|l| l.as_ref().is_some_and(|l| l.addr.port() == target.port())) {
                if let Some(l) = slot.take() {
                    closed.push(l.addr);
                    l.close();
                    freed = true;
                }
            }
            if freed {
                made = listen_on(target, backlog);
            }
        }
        match made {
            Ok(l) => fresh.push((l.local_addr().unwrap_or(target), l)),
            Err(e) => {
                let line = fail(addr, &format!("bind: {}", describe(&e)));
                if optional && optional_failure(&e) {
                    log(server, "warning", &format!("Warning: {line}"));
                    continue;
                }
                failure = Some(line);
                break;
            }
        }
    }
    if let Some(why) = failure {
        // The new sockets close, the old ones listen again.
        drop(fresh);
        current.extend(reused);
        current.extend(old.into_iter().flatten());
        for addr in closed {
            match listen_on(addr, backlog) {
                Ok(l) => current.push(Listening::start(server, addr, l, tls)),
                Err(e) => log(
                    server,
                    "warning",
                    &format!("Could not listen again on {addr} after a failed rebind: {}", describe(&e)),
                ),
            }
        }
        return Err(why);
    }
    for gone in old.into_iter().flatten() {
        gone.close();
    }
    let mut bound = reused.first().map(|l| l.addr.port());
    *current = reused;
    for (addr, listener) in fresh {
        bound = bound.or(Some(addr.port()));
        current.push(Listening::start(server, addr, listener, tls));
    }
    if !tls {
        server.port.store(if startup { u64::from(bound.unwrap_or(port)) } else { u64::from(port) }, Ordering::Relaxed);
    }
    Ok(bound)
}

/// Accepts connections on one listening socket until shutdown (or until
/// its task is aborted by a rebind).
async fn accept_loop(server: Arc<Server>, listener: Arc<TcpListener>, tls: bool) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = server.shutdown.notified() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let keepalive = server.config.tcp_keepalive.load(Ordering::Relaxed);
                set_keepalive(std::os::fd::AsRawFd::as_raw_fd(&stream), keepalive);
                let server = server.clone();
                let refused = refused_by_protected_mode(&server, &peer);
                if tls {
                    // The handshake runs in the connection's own task.
                    tokio::spawn(crate::net::tls::accept(server, stream, peer, refused));
                } else if refused {
                    tokio::spawn(deny(server, connection::Stream::Plain(stream)));
                } else {
                    tokio::spawn(connection::run(server, connection::Stream::Plain(stream), peer.to_string()));
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        if server.shutting_down.load(Ordering::SeqCst) {
            break;
        }
    }
}

/// Redis's reply to a client refused by protected mode (clients match on it,
/// so the text, typos included, is Redis's).
pub const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no \
password is set for the default user. In this mode connections are only accepted from the loopback interface. \
If you want to connect from external computers to Redis you may adopt one of the following solutions: \
1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface \
by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly \
accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you \
can just disable the protected mode by editing the Redis configuration file, and setting the protected mode \
option to 'no', and then restarting the server. 3) If you started the server manually just for testing, \
restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. \
NOTE: You only need to do one of the above things in order for the server to start accepting connections from \
the outside.\r\n";

fn refused_by_protected_mode(server: &Server, peer: &SocketAddr) -> bool {
    let protected = server.config.get("protected-mode").is_some_and(|v| v == "yes");
    protected_mode_refuses(protected, !server.acl.default_nopass(), peer.ip())
}

/// Protected mode as Redis 7.0 applies it: with it on and no password for the
/// default user, only loopback peers are served, whatever addresses are bound
/// (binding only loopback makes the check moot, binding more does not lift it).
pub fn protected_mode_refuses(protected: bool, has_password: bool, peer: IpAddr) -> bool {
    if !protected || has_password {
        return false;
    }
    let loopback = match peer {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    };
    !loopback
}

/// Tells a refused client why, then closes. Counted like Redis: a received and
/// a rejected connection.
pub async fn deny(server: Arc<Server>, mut stream: connection::Stream) {
    use tokio::io::AsyncWriteExt;
    server.stats.connections_received.fetch_add(1, Ordering::Relaxed);
    server.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
    let write = async {
        stream.write_all(DENIED.as_bytes()).await?;
        stream.flush_tls().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

async fn wait_shutdown(server: &Server) {
    loop {
        let notified = server.shutdown.notified();
        if server.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

/// Expires keys with a passed TTL in the background, as Redis's active cycle
/// does: a bounded sample every 100 ms, repeated while many are stale.
async fn active_expire_loop(server: Arc<Server>, shard_id: usize) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if server.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        if server.cron_is_paused() {
            continue;
        }
        // CLIENT PAUSE WRITE/ALL: the dataset must not change.
        if server.pause.writes_paused() {
            continue;
        }
        let shard = server.shards.get(shard_id);
        // A replica: keys expire by its master's DELs only, but for the keys
        // its own clients wrote (a writable replica), as Redis's
        // expireSlaveKeys.
        if crate::storage::replica_expiry() {
            if let Some(mut data) = shard.try_lock() {
                let now = crate::storage::now_ms();
                let expired: usize = data.dbs.iter_mut().map(|db| db.expire_replica_own(now)).sum();
                if expired > 0 {
                    let flags = server.config.notify_flags.load(Ordering::Relaxed);
                    crate::commands::ctx::drain_expired_log(&server, flags, &mut data, server.propagation.active(), 0);
                    server.stats.expired_keys.fetch_add(expired as u64, Ordering::Relaxed);
                }
            }
            continue;
        }
        // Never wait behind a script: skip this round instead.
        let Some(mut data) = shard.try_lock() else {
            continue;
        };
        // `tracking-table-max-keys` lowered by the last command (CONFIG SET):
        // enforced here too, as Redis's cron does, so an idle server acts on it.
        if server.tracking.over_limit() {
            crate::pubsub::tracking::enforce_limit(&server, &mut data, 0);
        }
        let started = std::time::Instant::now();
        let now = crate::storage::now_ms();
        let (mut removed, mut expired, mut sampled, mut capped) = (0, 0, 0, false);
        // DEBUG SET-ACTIVE-EXPIRE 0 stops the sampling; keys still expire on access.
        let active = server.debug.active_expire.load(Ordering::Relaxed);
        for db in data.dbs.iter_mut() {
            if active {
                let cycle = db.active_expire_cycle(now, 200);
                (expired, sampled, capped) = (expired + cycle.removed, sampled + cycle.sampled, capped || cycle.capped);
            }
            // Keys reaped on access by commands that do not count them themselves.
            removed += db.take_lazy_expired() as usize;
        }
        removed += expired;
        if active {
            shard.stats.expiry_sampled(expired, sampled);
            let stats = &server.stats;
            stats.expire_cycle_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            if capped {
                stats.expire_time_cap_reached.fetch_add(1, Ordering::Relaxed);
            }
        }
        let flags = server.config.notify_flags.load(Ordering::Relaxed);
        crate::commands::ctx::drain_expired_log(&server, flags, &mut data, server.propagation.active(), 0);
        crate::pubsub::tracking::end_run(&server, &mut [&mut data], 0);
        drop(data);
        server.observers.latency_monitor.add_if_needed("expire-cycle", started.elapsed().as_millis() as u64);
        if removed > 0 {
            server.stats.expired_keys.fetch_add(removed as u64, Ordering::Relaxed);
        }
    }
}

/// Writes a Redis-style log line when `level` passes `loglevel`: to `logfile`,
/// or to standard output when it is empty, as Redis does (tools and test
/// harnesses wait there for lines such as "Ready to accept connections").
pub fn log(server: &Server, level: &str, msg: &str) {
    const ORDER: [&str; 5] = ["debug", "verbose", "notice", "warning", "nothing"];
    let configured = server.config.get("loglevel").unwrap_or_else(|| "notice".into());
    let rank = |l: &str| ORDER.iter().position(|x| *x == l).unwrap_or(2);
    if rank(level) < rank(&configured) || configured == "nothing" {
        return;
    }
    let mark = match level {
        "debug" => '.',
        "verbose" => '-',
        "notice" => '*',
        _ => '#',
    };
    // The role as Redis prints it: S for a replica, M for a master.
    let role = if crate::storage::replica_expiry() { 'S' } else { 'M' };
    let line = format!("{}:{role} {} {} {}\n", std::process::id(), log_time(crate::util::wall_clock()), mark, msg);
    let file = server.config.get("logfile").unwrap_or_default();
    if file.is_empty() {
        // Rust's stdout is line-buffered: each line leaves at once.
        let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), line.as_bytes());
    } else {
        // Opened for each line, as Redis does, so that a rotated log file
        // is followed without a signal; a line that cannot be written is
        // dropped (the server goes on).
        let _ = append_line(&file, &line);
    }
}

fn append_line(path: &str, line: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    std::io::Write::write_all(&mut f, line.as_bytes())
}

/// Redis refuses to start when `logfile` cannot be opened for appending.
pub fn check_logfile(server: &Server) -> Result<(), String> {
    let file = server.config.get("logfile").unwrap_or_default();
    if file.is_empty() {
        return Ok(());
    }
    std::fs::OpenOptions::new().create(true).append(true).open(&file).map(drop).map_err(|e| {
        // The system's text only, as Redis prints strerror().
        let text = e.to_string();
        let text = text.split(" (os error").next().unwrap_or_default().to_string();
        format!("Can't open the log file: {text}")
    })
}

/// The time as Redis's log lines show it: `06 Dec 2026 02:35:03.913` (UTC).
fn log_time(t: std::time::Duration) -> String {
    let mut out = String::new();
    let _ = write_log_time(&mut out, t);
    out
}

/// `07 Dec 2026 04:41:13.334`, as Redis's log prints the time; writes into
/// any `fmt::Write` without allocating (the crash handler uses it).
pub fn write_log_time(out: &mut impl std::fmt::Write, t: std::time::Duration) -> std::fmt::Result {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = t.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    write!(
        out,
        "{day:02} {} {year} {:02}:{:02}:{:02}.{:03}",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        t.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_as_redis_prints_them() {
        assert_eq!(log_time(std::time::Duration::from_millis(0)), "01 Jan 1970 00:00:00.000");
        assert_eq!(log_time(std::time::Duration::from_millis(1_796_524_503_913)), "06 Dec 2026 02:35:03.913");
        assert_eq!(log_time(std::time::Duration::from_secs(951_782_400)), "29 Feb 2000 00:00:00.000");
    }

    #[test]
    fn keepalive_options_as_redis_sets_them() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
        let get = |level, name| {
            let mut v: libc::c_int = -1;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `v` and `len` are live locals of the sizes given; `fd` is open.
            let r = unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut libc::c_int).cast(), &mut len) };
            assert_eq!(r, 0);
            v
        };
        set_keepalive(fd, 0);
        assert_eq!(get(libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0, "0: no keepalive");
        set_keepalive(fd, 100);
        assert_ne!(get(libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 100);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 33);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 3);
        set_keepalive(fd, 2);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 2);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 1, "at least a second apart");
    }

    #[test]
    fn protected_mode_decision() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(protected_mode_refuses(true, false, ip("192.0.2.2")));
        assert!(protected_mode_refuses(true, false, ip("2001:db8::1")));
        assert!(!protected_mode_refuses(true, false, ip("127.0.0.1")));
        assert!(!protected_mode_refuses(true, false, ip("127.3.4.5")));
        assert!(!protected_mode_refuses(true, false, ip("::1")));
        assert!(!protected_mode_refuses(true, false, ip("::ffff:127.0.0.1")));
        assert!(!protected_mode_refuses(true, true, ip("192.0.2.2")), "a password lifts it");
        assert!(!protected_mode_refuses(false, false, ip("192.0.2.2")), "protected-mode no lifts it");
        assert!(DENIED.starts_with("-DENIED Redis is running in protected mode") && DENIED.ends_with("outside.\r\n"));
        assert!(!DENIED.contains("  "));
    }
}
