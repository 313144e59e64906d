//! A blocking client for setup and verification traffic (SCRIPT LOAD, FLUSHALL,
//! INFO, the final consistency check); never on the measured path.

use crate::resp::{self, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl Client {
    pub fn connect(addr: &str, timeout: Duration) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Client { stream, buf: Vec::new(), pos: 0 })
    }

    pub fn call(&mut self, args: &[&[u8]]) -> Result<Value, String> {
        let mut out = self.pipeline(std::slice::from_ref(&args.to_vec()))?;
        out.pop().ok_or_else(|| "no reply".to_string())
    }

    pub fn call_str(&mut self, args: &[&str]) -> Result<Value, String> {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call(&bytes)
    }

    /// Sends all commands at once and reads one reply per command.
    pub fn pipeline(&mut self, cmds: &[Vec<&[u8]>]) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for c in cmds {
            resp::encode(c, &mut out);
        }
        self.stream.write_all(&out).map_err(|e| format!("write: {e}"))?;
        (0..cmds.len()).map(|_| self.read_reply()).collect()
    }

    fn read_reply(&mut self) -> Result<Value, String> {
        loop {
            if let Some((v, end)) = resp::parse(&self.buf, self.pos)? {
                self.pos = end;
                if self.pos == self.buf.len() {
                    self.buf.clear();
                    self.pos = 0;
                }
                return Ok(v);
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed by server".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Extracts `field:value` from an INFO reply.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_string()))
}
