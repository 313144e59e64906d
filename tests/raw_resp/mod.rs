//! A raw RESP client for byte-exact comparisons: sends commands and reads
//! back whole replies (RESP2 and RESP3), returned as their exact text.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Raw { w, r }
    }

    pub fn send(&mut self, args: &[&str]) {
        self.w.write_all(&encode(args)).expect("send");
    }

    /// Sends one command and reads `n` replies.
    pub fn call_n(&mut self, args: &[&str], n: usize) -> String {
        self.send(args);
        let replies: Vec<String> = (0..n).map(|_| self.reply()).collect();
        assert!(replies.iter().all(|r| !r.is_empty()), "no reply to {args:?} (got {replies:?})");
        replies.join("")
    }

    pub fn call(&mut self, args: &[&str]) -> String {
        self.call_n(args, 1)
    }

    pub fn set_timeout(&mut self, t: Duration) {
        self.w.set_read_timeout(Some(t)).unwrap();
    }

    /// Reads and discards everything until the server closes the
    /// connection; false if it is still open after `wait`.
    pub fn drain_to_eof(&mut self, wait: Duration) -> bool {
        self.w.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let deadline = std::time::Instant::now() + wait;
        let mut buf = vec![0u8; 1 << 16];
        while std::time::Instant::now() < deadline {
            match self.r.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    }

    /// Reads one complete reply, or "" on timeout/EOF.
    pub fn reply(&mut self) -> String {
        let mut out = Vec::new();
        if self.read_value(&mut out).is_err() {
            return String::new();
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn read_value(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof"));
        }
        out.extend_from_slice(&line);
        let head = line[0];
        let n: i64 = String::from_utf8_lossy(&line[1..]).trim().parse().unwrap_or(0);
        match head {
            b'$' | b'=' | b'!' if n >= 0 => {
                let mut buf = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut buf)?;
                out.extend_from_slice(&buf);
            }
            b'*' | b'~' | b'>' if n > 0 => {
                for _ in 0..n {
                    self.read_value(out)?;
                }
            }
            b'%' if n > 0 => {
                for _ in 0..n * 2 {
                    self.read_value(out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
