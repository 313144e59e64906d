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
            // An attribute map, then the reply it describes.
            b'|' => {
                for _ in 0..n.max(0) * 2 {
                    self.read_value(out)?;
                }
                self.read_value(out)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A moonshard (4 shards plus `extra` flags) and a real redis-server, for
/// byte-for-byte differential tests. None (after a loud skip note) when
/// redis-server is not installed.
pub struct Pair {
    _ours: crate::common::Proc,
    _theirs: crate::common::Proc,
    pub ports: [u16; 2],
}

pub fn start_pair(extra: &[&str]) -> Option<Pair> {
    let theirs = crate::common::redis_server()?;
    let mut args = vec!["--shards", "4"];
    args.extend_from_slice(extra);
    let ours = crate::common::moonshard(&args);
    let ports = [ours.port, theirs.port];
    Some(Pair { _ours: ours, _theirs: theirs, ports })
}

/// One raw client per server, driven in lockstep.
pub struct Both {
    pub c: [Raw; 2],
}

impl Both {
    pub fn new(p: &Pair) -> Both {
        Both { c: [Raw::connect(p.ports[0]), Raw::connect(p.ports[1])] }
    }

    /// Sends one command and asserts both servers send the same `n` replies.
    #[track_caller]
    pub fn check_n(&mut self, args: &[&str], n: usize) -> String {
        let ours = self.c[0].call_n(args, n);
        let theirs = self.c[1].call_n(args, n);
        assert_eq!(ours, theirs, "moonshard and redis-server differ on {args:?}");
        ours
    }

    /// Sends one command and asserts both replies are the same bytes.
    #[track_caller]
    pub fn check(&mut self, args: &[&str]) -> String {
        self.check_n(args, 1)
    }

    /// `check_n` on a line of whitespace-separated words.
    #[track_caller]
    pub fn line_n(&mut self, line: &str, n: usize) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.check_n(&args, n)
    }

    /// `check` on a line of whitespace-separated words.
    #[track_caller]
    pub fn line(&mut self, line: &str) -> String {
        self.line_n(line, 1)
    }

    /// `line` for each line in turn.
    #[track_caller]
    pub fn lines(&mut self, lines: &[&str]) {
        for l in lines {
            self.line(l);
        }
    }

    /// Sends to both and reads one reply each without comparing (replies
    /// with ids or versions).
    pub fn unchecked(&mut self, args: &[&str]) {
        self.c[0].call(args);
        self.c[1].call(args);
    }

    /// Sends to both without reading the replies.
    pub fn send(&mut self, args: &[&str]) {
        self.c[0].send(args);
        self.c[1].send(args);
    }

    /// Everything each side received until it has been quiet for a while
    /// (pub/sub messages, keyspace notifications).
    pub fn drain(&mut self) -> [Vec<String>; 2] {
        let mut got = [Vec::new(), Vec::new()];
        for (i, side) in got.iter_mut().enumerate() {
            self.c[i].set_timeout(Duration::from_millis(300));
            loop {
                let m = self.c[i].reply();
                if m.is_empty() {
                    break;
                }
                side.push(m);
            }
        }
        got
    }

    /// Reads one pending reply from each and asserts they are equal.
    #[track_caller]
    pub fn expect_same_reply(&mut self, what: &str) -> String {
        let ours = self.c[0].reply();
        let theirs = self.c[1].reply();
        assert!(!theirs.is_empty(), "redis-server sent no reply for {what}");
        assert_eq!(ours, theirs, "moonshard and redis-server differ on {what}");
        ours
    }
}
