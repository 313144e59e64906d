//! Configuration applied while the server runs, checked against a real
//! redis-server 7.0: `CONFIG SET port` and `CONFIG SET bind` move the
//! listening sockets (connections already open stay, a failure keeps the
//! old listeners and answers Redis's error), and pub/sub confirmations are
//! still sent under `CLIENT REPLY OFF|SKIP`, in RESP2 and RESP3.

mod common;
mod raw_resp;

use raw_resp::{start_pair, Raw};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Whether something accepts TCP connections at `host:port`.
fn listening(host: &str, port: u16) -> bool {
    let addr = format!("{host}:{port}").parse().expect("address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// A port nothing listens on (the socket that found it is closed again).
fn free_port() -> u16 {
    common::free_port()
}

/// A port held by another listener on every IPv4 interface, so neither
/// server can bind it on any of them.
fn busy_port() -> (TcpListener, u16) {
    let l = TcpListener::bind("0.0.0.0:0").expect("bind a busy port");
    let port = l.local_addr().expect("local addr").port();
    (l, port)
}

/// The two servers, each with its own connection and its own port numbers
/// (a reply naming a port is compared with the port replaced by `PORT`).
struct Sides {
    c: [Raw; 2],
    ports: [u16; 2],
}

impl Sides {
    /// Sends the command `args(side's port)` to both sides and asserts equal
    /// replies, with each side's own port number masked.
    #[track_caller]
    fn check(&mut self, args: impl Fn(u16) -> Vec<String>) -> String {
        let mut got = Vec::new();
        for i in 0..2 {
            let argv = args(self.ports[i]);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let reply = self.c[i].call(&argv);
            got.push(mask(&reply, self.ports[i]));
        }
        assert_eq!(got[0], got[1], "moonshard and redis-server differ on {:?}", args(0));
        got.swap_remove(0)
    }

    /// Moves each side to its port in `new` with the command `args(new
    /// port)`, which must answer +OK on both.
    #[track_caller]
    fn move_to(&mut self, new: [u16; 2], args: impl Fn(u16) -> Vec<String>) {
        for (c, port) in self.c.iter_mut().zip(new) {
            let argv = args(port);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            assert_eq!(c.call(&argv), "+OK\r\n", "{argv:?}");
        }
        self.ports = new;
    }

    /// `check` on a command that names no port.
    #[track_caller]
    fn line(&mut self, line: &str) -> String {
        let words: Vec<String> = line.split(' ').map(str::to_string).collect();
        self.check(|_| words.clone())
    }

    /// Asserts what accepts connections on each side at `host` and its
    /// current port (`listening`), identical on both.
    #[track_caller]
    fn reachable(&self, host: &str, expected: bool, what: &str) {
        for (i, name) in ["moonshard", "redis-server"].iter().enumerate() {
            assert_eq!(listening(host, self.ports[i]), expected, "{name} {host}:{}: {what}", self.ports[i]);
        }
    }
}

/// `reply` with the decimal `port` replaced by `PORT` wherever it is a
/// whole token.
fn mask(reply: &str, port: u16) -> String {
    let p = port.to_string();
    reply
        .split("\r\n")
        .map(|line| if line == p || line.strip_prefix(':') == Some(&p) { "PORT" } else { line })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn config_set(name: &'static str, value: String) -> impl Fn(u16) -> Vec<String> {
    move |_| vec!["CONFIG".into(), "SET".into(), name.into(), value.clone()]
}

#[test]
fn config_set_port_moves_the_listener() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut s = Sides { c: [Raw::connect(pair.ports[0]), Raw::connect(pair.ports[1])], ports: pair.ports };
    s.line("SET k v");
    // The value it already has: nothing moves.
    s.check(|p| vec!["CONFIG".into(), "SET".into(), "port".into(), p.to_string()]);
    s.reachable("127.0.0.1", true, "after setting the same port");

    // A new port: the old one closes, the new one answers, this connection stays.
    let old = s.ports;
    let new = [free_port(), free_port()];
    s.move_to(new, |p| vec!["CONFIG".into(), "SET".into(), "port".into(), p.to_string()]);
    s.reachable("127.0.0.1", true, "the new port");
    for (i, port) in old.iter().enumerate() {
        assert!(!listening("127.0.0.1", *port), "side {i} still listens on its old port {port}");
    }
    s.line("GET k");
    s.check(|_| vec!["CONFIG".into(), "GET".into(), "port".into()]);
    for i in 0..2 {
        let mut fresh = Raw::connect(s.ports[i]);
        assert_eq!(fresh.call(&["GET", "k"]), "$1\r\nv\r\n", "side {i} on its new port");
        let info = fresh.call(&["INFO", "server"]);
        assert!(info.contains(&format!("tcp_port:{}\r\n", s.ports[i])), "side {i}: INFO tcp_port");
    }

    // A port another socket holds: Redis's error, the listener stays.
    let (_held, busy) = busy_port();
    s.check(config_set("port", busy.to_string()));
    s.check(|_| vec!["CONFIG".into(), "GET".into(), "port".into()]);
    s.reachable("127.0.0.1", true, "after a failed port change");
    for bad in ["65536", "-1", "abc", ""] {
        s.check(config_set("port", bad.to_string()));
    }
    s.reachable("127.0.0.1", true, "after refused port values");

    // Port 0 at run time: no TCP listener at all; this connection stays.
    let before = s.ports;
    s.line("CONFIG SET port 0");
    s.line("CONFIG GET port");
    for (i, port) in before.iter().enumerate() {
        assert!(!listening("127.0.0.1", *port), "side {i} still listens after port 0");
    }
    // And back on a port.
    let again = [free_port(), free_port()];
    s.move_to(again, |p| vec!["CONFIG".into(), "SET".into(), "port".into(), p.to_string()]);
    s.reachable("127.0.0.1", true, "a port again after port 0");
}

#[test]
fn config_set_bind_rebinds() {
    let Some(pair) = start_pair(&[]) else { return };
    let mut s = Sides { c: [Raw::connect(pair.ports[0]), Raw::connect(pair.ports[1])], ports: pair.ports };
    s.line("CONFIG SET bind 127.0.0.1");
    s.reachable("127.0.0.1", true, "the same bind");

    // Failures leave the listeners as they were.
    let seventeen: Vec<String> = (1..=17).map(|i| format!("127.0.0.{i}")).collect();
    for bad in [
        "192.0.2.1".to_string(),            // not an address of this host
        "127.0.0.1 127.0.0.1".to_string(),  // the second cannot bind
        "127.0.0.1  127.0.0.2".to_string(), // two spaces: an empty address
        seventeen.join(" "),                // more than Redis takes
    ] {
        s.check(config_set("bind", bad.clone()));
        s.line("CONFIG GET bind");
        s.reachable("127.0.0.1", true, &format!("after bind {bad:?} failed"));
    }

    // An optional address that is not there is skipped.
    s.check(config_set("bind", "-192.0.2.1 127.0.0.1".into()));
    s.line("CONFIG GET bind");
    s.reachable("127.0.0.1", true, "bind -192.0.2.1 127.0.0.1");

    // Another address: the old one closes, this connection stays.
    s.line("CONFIG SET bind 127.0.0.2");
    s.reachable("127.0.0.2", true, "bind 127.0.0.2");
    s.reachable("127.0.0.1", false, "bind 127.0.0.2");
    s.line("PING");

    // Every interface, over the specific address bound on the same port.
    s.check(config_set("bind", "* -::*".into()));
    s.reachable("127.0.0.1", true, "bind *");
    s.reachable("127.0.0.2", true, "bind *");
    s.line("CONFIG GET bind");

    // Port and bind together: the error names the first of the two given.
    let (_held, busy) = busy_port();
    s.check(|_| {
        vec!["CONFIG".into(), "SET".into(), "bind".into(), "127.0.0.1".into(), "port".into(), busy.to_string()]
    });
    s.check(|_| {
        vec!["CONFIG".into(), "SET".into(), "port".into(), busy.to_string(), "bind".into(), "127.0.0.1".into()]
    });
    s.line("CONFIG GET bind");
    s.check(|_| vec!["CONFIG".into(), "GET".into(), "port".into()]);
    s.reachable("127.0.0.2", true, "after the failed bind and port change");
    s.check(|_| {
        vec!["CONFIG".into(), "SET".into(), "bind".into(), "127.0.0.1".into(), "bind".into(), "127.0.0.2".into()]
    });

    // Both at once, succeeding.
    let old = s.ports;
    let new = [free_port(), free_port()];
    s.move_to(new, |p| {
        vec!["CONFIG".into(), "SET".into(), "bind".into(), "localhost".into(), "port".into(), p.to_string()]
    });
    s.reachable("127.0.0.1", true, "bind localhost, new port");
    s.reachable("127.0.0.2", false, "bind localhost, new port");
    for (i, port) in old.iter().enumerate() {
        assert!(!listening("127.0.0.1", *port), "side {i} still listens on its old port {port}");
    }

    // No address at all: nothing listens; set one again over this connection.
    s.check(config_set("bind", String::new()));
    s.reachable("127.0.0.1", false, "bind \"\"");
    s.line("CONFIG GET bind");
    s.line("CONFIG SET bind 127.0.0.1");
    s.reachable("127.0.0.1", true, "bind 127.0.0.1 again");
}

/// Reads replies until one contains `marker` (or nothing more comes).
fn read_until(c: &mut Raw, marker: &str) -> Vec<String> {
    c.set_timeout(Duration::from_secs(3));
    let mut got = Vec::new();
    loop {
        let r = c.reply();
        if r.is_empty() {
            got.push("<nothing more>".to_string());
            return got;
        }
        let done = r.contains(marker);
        got.push(r);
        if done {
            return got;
        }
    }
}

#[test]
fn pubsub_confirmations_are_sent_under_client_reply_off_and_skip() {
    let Some(pair) = start_pair(&[]) else { return };
    for resp in ["2", "3"] {
        for mode in ["OFF", "SKIP"] {
            let mut transcripts = Vec::new();
            for port in pair.ports {
                let mut c = Raw::connect(port);
                let mut publisher = Raw::connect(port);
                c.call(&["HELLO", resp]);
                c.send(&["CLIENT", "REPLY", mode]);
                c.send(&["SUBSCRIBE", "a", "b"]);
                c.send(&["PSUBSCRIBE", "p*"]);
                c.send(&["SSUBSCRIBE", "s"]);
                // The confirmations are in before anything is published.
                let mut got: Vec<String> = (0..4).map(|_| c.reply()).collect();
                assert_eq!(publisher.call(&["PUBLISH", "a", "m1"]), ":1\r\n");
                assert_eq!(publisher.call(&["PUBLISH", "px", "m2"]), ":1\r\n");
                assert_eq!(publisher.call(&["SPUBLISH", "s", "m3"]), ":1\r\n");
                got.extend((0..3).map(|_| c.reply()));
                c.send(&["PING", "dropped?"]);
                c.send(&["UNSUBSCRIBE", "a", "b", "c"]);
                c.send(&["PUNSUBSCRIBE", "p*"]);
                c.send(&["SUNSUBSCRIBE", "s"]);
                c.send(&["UNSUBSCRIBE"]);
                c.send(&["GET", "k"]);
                c.send(&["CLIENT", "REPLY", "ON"]);
                c.send(&["ECHO", "end"]);
                got.extend(read_until(&mut c, "end"));
                transcripts.push(got);
            }
            assert!(
                transcripts[1].iter().any(|r| r.contains("subscribe")),
                "redis-server sent no confirmation (RESP{resp}, {mode})"
            );
            assert_eq!(transcripts[0], transcripts[1], "RESP{resp}, CLIENT REPLY {mode}");
        }
    }
}
