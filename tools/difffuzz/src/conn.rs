//! A raw RESP connection over loopback TCP, with a deadline on every reply.

use crate::resp::{self, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug)]
pub enum ReadError {
    /// No complete reply within the deadline.
    Timeout,
    /// The peer closed the connection (or reset it).
    Closed,
    /// Bytes that are not RESP.
    Protocol(String),
}

/// One reply: the parsed value and the exact bytes it came in.
#[derive(Clone, Debug)]
pub struct Reply {
    pub value: Value,
    pub raw: Vec<u8>,
}

impl Conn {
    pub fn connect(port: u16) -> std::io::Result<Conn> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(Conn { stream, buf: Vec::new() })
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one reply, waiting at most `timeout` for it.
    pub fn read(&mut self, timeout: Duration) -> Result<Reply, ReadError> {
        let deadline = Instant::now() + timeout;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if !self.buf.is_empty() {
                match resp::parse(&self.buf) {
                    Ok(Some((value, used))) => {
                        let raw: Vec<u8> = self.buf.drain(..used).collect();
                        return Ok(Reply { value, raw });
                    }
                    Ok(None) => {}
                    Err(e) => return Err(ReadError::Protocol(e)),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ReadError::Timeout);
            }
            let _ = self.stream.set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ReadError::Timeout)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(ReadError::Closed),
            }
        }
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Reply, ReadError> {
        let owned: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        self.send(&resp::encode_command(&owned)).map_err(|_| ReadError::Closed)?;
        self.read(timeout)
    }
}
