//! Connections this server opens to other servers (a replica to its master,
//! a cluster node to its peers), from `bind-source-addr` when it is set.
//!
//! As Redis does, the source address is best effort: when it cannot be bound
//! (not an address of this host, another family than the peer's) the
//! connection is made from the address the kernel picks.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The address to bind outgoing connections to (`bind-source-addr`), for a
/// peer at `peer`; None when unset, unparsable or of the other family.
fn source_for(source: &str, peer: &SocketAddr) -> Option<SocketAddr> {
    let ip: IpAddr = source.trim().parse().ok()?;
    (ip.is_ipv4() == peer.is_ipv4()).then_some(SocketAddr::new(ip, 0))
}

/// A TCP socket for `peer`, bound to `source` where that works.
fn socket_for(peer: &SocketAddr, source: &str) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(*peer), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(src) = source_for(source, peer) {
        // Best effort, as Redis's connect: a failed bind leaves the choice to the kernel.
        let _ = socket.bind(&SockAddr::from(src));
    }
    Ok(socket)
}

/// A blocking connection to `peer` within `timeout`, from `source` where
/// that can be bound.
pub fn connect_timeout(peer: &SocketAddr, source: &str, timeout: Duration) -> io::Result<std::net::TcpStream> {
    let socket = socket_for(peer, source)?;
    socket.connect_timeout(&SockAddr::from(*peer), timeout)?;
    Ok(socket.into())
}

/// A tokio connection to `peer`, from `source` where that can be bound.
pub async fn connect(peer: SocketAddr, source: &str) -> io::Result<tokio::net::TcpStream> {
    let socket = socket_for(&peer, source)?;
    socket.set_nonblocking(true)?;
    let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
    socket.connect(peer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_come_from_the_source_address_when_it_binds() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = listener.local_addr().unwrap();
        let from = |source: &str| {
            let _out = connect_timeout(&peer, source, Duration::from_secs(2)).unwrap();
            listener.accept().unwrap().1.ip().to_string()
        };
        assert_eq!(from("127.0.0.2"), "127.0.0.2");
        assert_eq!(from(""), "127.0.0.1");
        // Not an address here, or the other family: the kernel's choice.
        assert_eq!(from("192.0.2.1"), "127.0.0.1");
        assert_eq!(from("::1"), "127.0.0.1");
        assert_eq!(from("junk"), "127.0.0.1");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let stream = runtime.block_on(connect(peer, "127.0.0.3")).unwrap();
        assert_eq!(listener.accept().unwrap().1.ip().to_string(), "127.0.0.3");
        drop(stream);
    }
}
