//! Client-side caching (CLIENT TRACKING and friends) against a real
//! redis-server 7.0, byte for byte: several real connections per server,
//! RESP3 ones (`HELLO 3`, invalidations as `>2 invalidate` pushes) and RESP2
//! ones (redirecting to a subscriber of `__redis__:invalidate`), driven in
//! lockstep. After every command each connection is synced with a
//! `PING <marker>`, and everything it received before the marker (replies
//! and pushes, in order) is compared between the two servers.
//!
//! Client ids differ between the servers: a `$name` argument stands for
//! that client's id on each side, and ids in replies and pushes are written
//! back as `#name` before comparing.

mod common;
#[path = "common/python.rs"]
mod python;
mod raw_resp;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use raw_resp::Raw;
use std::collections::HashMap;
use std::time::Duration;

/// One server's connections and what they received.
struct Side {
    clients: Vec<(String, Raw)>,
    ids: HashMap<String, String>,
    port: u16,
    marker: u64,
}

impl Side {
    fn client(&mut self, name: &str) -> &mut Raw {
        &mut self.clients.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no client {name}")).1
    }

    /// `#name` for each client id in `text` (`:id\r\n`, `redir=id`): for
    /// the replies and pushes that carry ids.
    fn names(&self, text: &str) -> String {
        // Integers only: as a whole frame or as an element after a line.
        let mut out = format!("\r\n{text}");
        for (name, id) in &self.ids {
            out = out.replace(&format!("\r\n:{id}\r\n"), &format!("\r\n:#{name}\r\n"));
            out = out.replace(&format!("redir={id} "), &format!("redir=#{name} "));
        }
        out.split_off(2)
    }
}

/// A moonshard (4 shards) and a redis-server with the same connections.
struct World {
    sides: [Side; 2],
    /// Connections whose next command must not be a sync PING: inside
    /// MULTI (it would be queued), or right after CLIENT CACHING (it would
    /// use up the mark).
    hold: Vec<String>,
    _servers: (common::Proc, common::Proc),
}

impl World {
    fn start() -> Option<World> {
        World::start_with(&[])
    }

    /// With `extra` flags for both servers.
    fn start_with(extra: &[&str]) -> Option<World> {
        let theirs = common::redis_server_with(extra)?;
        let mut args = vec!["--shards", "4"];
        args.extend_from_slice(extra);
        let ours = common::moonshard(&args);
        let side = |port| Side { clients: Vec::new(), ids: HashMap::new(), port, marker: 0 };
        Some(World { sides: [side(ours.port), side(theirs.port)], hold: Vec::new(), _servers: (ours, theirs) })
    }

    /// A new connection `name` on both servers, RESP3 when `resp3`.
    fn connect(&mut self, name: &str, resp3: bool) {
        for side in &mut self.sides {
            let mut c = Raw::connect(side.port);
            if resp3 {
                assert!(c.call(&["HELLO", "3"]).starts_with('%'), "HELLO 3 refused");
            }
            let id = c.call(&["CLIENT", "ID"]);
            let id = id.trim_start_matches(':').trim_end().to_string();
            side.ids.insert(name.to_string(), id);
            side.clients.push((name.to_string(), c));
        }
    }

    /// Closes connection `name` on both servers.
    fn close(&mut self, name: &str) {
        for side in &mut self.sides {
            let i = side.clients.iter().position(|(n, _)| n == name).expect("known client");
            let (_, mut c) = side.clients.remove(i);
            c.call(&["QUIT"]);
        }
        // Let both servers notice the disconnection.
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Runs `line` (whitespace-separated words) as client `name` on both
    /// servers and compares what every connection received.
    #[track_caller]
    fn run(&mut self, name: &str, line: &str) {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.run_args(name, &args);
    }

    #[track_caller]
    fn run_args(&mut self, name: &str, args: &[&str]) {
        let upper: Vec<String> = args.iter().take(2).map(|a| a.to_ascii_uppercase()).collect();
        let (w0, w1) = (upper.first().cloned().unwrap_or_default(), upper.get(1).cloned().unwrap_or_default());
        if w0 == "EXEC" || w0 == "DISCARD" {
            self.hold.retain(|n| n != name);
        }
        let got: Vec<Vec<String>> = (0..2).map(|s| self.exchange(s, name, args, &w0, &w1)).collect();
        if w0 == "MULTI" {
            self.hold.push(name.to_string());
        }
        assert_eq!(got[0], got[1], "moonshard (left) and redis-server (right) differ after {name}: {args:?}");
    }

    /// One side's transcript of `args` run by `name`.
    fn exchange(&mut self, s: usize, name: &str, args: &[&str], w0: &str, w1: &str) -> Vec<String> {
        let side = &mut self.sides[s];
        let args: Vec<String> = args
            .iter()
            .map(|a| match a.strip_prefix('$').and_then(|n| side.ids.get(n)) {
                Some(id) => id.clone(),
                None => a.to_string(),
            })
            .collect();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let c = side.client(name);
        c.send(&argv);
        let mut frames = Vec::new();
        // The reply (pushes before it are recorded too).
        loop {
            let frame = c.reply();
            assert!(!frame.is_empty(), "side {s}: no reply to {argv:?}");
            let push = frame.starts_with('>');
            frames.push(frame);
            if !push {
                break;
            }
        }
        let ids = w0 == "CLIENT" && matches!(w1, "ID" | "GETREDIR" | "TRACKINGINFO" | "LIST" | "INFO");
        let mut out: Vec<String> = frames
            .iter()
            .map(|f| {
                let f = if ids || f.starts_with('>') { side.names(f) } else { f.clone() };
                format!("{name}> {}", shown(&f, w0, w1))
            })
            .collect();
        let caching = w0 == "CLIENT" && w1 == "CACHING";
        // Sync every connection: what arrives before its marker.
        let names: Vec<String> = side.clients.iter().map(|(n, _)| n.clone()).collect();
        for n in names {
            if self.hold.contains(&n) || (caching && n == name) || (w0 == "MULTI" && n == name) {
                continue;
            }
            let side = &mut self.sides[s];
            side.marker += 1;
            let marker = format!("sync-{}", side.marker);
            let c = side.client(&n);
            c.send(&["PING", &marker]);
            let mut frames = Vec::new();
            loop {
                let frame = c.reply();
                assert!(!frame.is_empty(), "side {s}: {n} never answered its sync PING");
                if frame.contains(&marker) {
                    break;
                }
                frames.push(frame);
            }
            for f in frames {
                let f = if f.starts_with('>') { side.names(&f) } else { f };
                out.push(format!("{n}< {f}"));
            }
        }
        out
    }

    /// Reads what arrives on `name` within `wait` without sending anything
    /// (pushes from the servers' own expiry cycles), on both servers.
    #[track_caller]
    fn unsolicited(&mut self, name: &str, wait: Duration) {
        let got: Vec<Vec<String>> = (0..2)
            .map(|s| {
                let c = self.sides[s].client(name);
                c.set_timeout(wait);
                let mut out = Vec::new();
                loop {
                    let frame = c.reply();
                    if frame.is_empty() {
                        break;
                    }
                    out.push(frame);
                }
                c.set_timeout(Duration::from_secs(10));
                out
            })
            .collect();
        assert_eq!(got[0], got[1], "moonshard (left) and redis-server (right) pushed differently to {name}");
    }
}

/// A frame as compared: CLIENT LIST/INFO lines cut down to the fields
/// tracking owns, INFO to its tracking fields.
fn shown(frame: &str, w0: &str, w1: &str) -> String {
    if w0 == "CLIENT" && (w1 == "LIST" || w1 == "INFO") {
        let fields: Vec<&str> =
            frame.split(' ').filter(|f| f.starts_with("flags=") || f.starts_with("redir=")).collect();
        return format!("{} ", fields.join(" "));
    }
    if w0 == "INFO" {
        let fields: Vec<&str> = frame.split("\r\n").filter(|l| l.starts_with("tracking_")).collect();
        return fields.join(",");
    }
    frame.to_string()
}

/// Keys that live on four different shards of moonshard's four.
fn spread(prefix: &str) -> Vec<String> {
    common::keys_on_different_shards(prefix, 4, 4)
}

#[test]
fn default_mode_over_resp3() {
    let Some(mut w) = World::start() else { return };
    w.connect("a", true);
    w.connect("b", false);
    w.connect("n", true);
    let k = spread("k");
    w.run("a", "CLIENT TRACKING on");
    w.run("n", "CLIENT TRACKING on NOLOOP");
    w.run("a", "CLIENT TRACKINGINFO");
    w.run("a", "CLIENT GETREDIR");
    w.run("a", "CLIENT LIST ID $a");
    w.run("b", "INFO clients");
    // Reads of missing keys are tracked too; one invalidation per change.
    w.run("a", &format!("GET {}", k[0]));
    w.run("a", &format!("MGET {} {} {}", k[1], k[2], k[3]));
    w.run("n", &format!("MGET {} {}", k[0], k[1]));
    w.run("b", "INFO stats");
    w.run("b", &format!("SET {} 1", k[0]));
    w.run("b", &format!("SET {} 1", k[0]));
    w.run("b", &format!("MSET {} 1 {} 2 {} 3", k[1], k[2], k[3]));
    w.run("b", "INFO stats");
    // A client's own change: after its reply; NOLOOP: never.
    w.run("a", &format!("GET {}", k[0]));
    w.run("n", &format!("GET {}", k[0]));
    w.run("a", &format!("INCR {}", k[0]));
    w.run("a", &format!("GET {}", k[0]));
    w.run("n", &format!("GET {}", k[0]));
    w.run("n", &format!("INCR {}", k[0]));
    w.run("a", &format!("GET {}", k[0]));
    w.run("a", "CLIENT LIST ID $a");
    // Every kind of value and write.
    let writes = [
        ("LRANGE l 0 -1", "RPUSH l a b c"),
        ("LINDEX l 0", "LPOP l"),
        ("HGET h f", "HSET h f v"),
        ("HGETALL h", "HDEL h f"),
        ("SMEMBERS s", "SADD s x"),
        ("SISMEMBER s x", "SPOP s"),
        ("ZRANGE z 0 -1", "ZADD z 1 m"),
        ("ZSCORE z m", "ZINCRBY z 2 m"),
        ("XRANGE x - +", "XADD x 1-1 f v"),
        ("STRLEN str", "APPEND str abc"),
        ("GETRANGE str 0 1", "SETRANGE str 1 zz"),
        ("GETBIT bits 3", "SETBIT bits 3 1"),
        ("PFCOUNT hll", "PFADD hll a b"),
        ("TTL str", "EXPIRE str 100"),
        ("GET str", "PERSIST str"),
        ("TYPE str", "MOVE str 5"),
        ("TYPE str", "DEL str"),
        ("EXISTS l", "DEL l"),
    ];
    for (read, write) in writes {
        w.run("a", read);
        w.run("n", read);
        w.run("b", write);
    }
    // RENAME changes both keys; COPY the destination.
    w.run("b", "SET {r}src v");
    w.run("a", "MGET {r}src {r}dst {r}cp");
    w.run("b", "RENAME {r}src {r}dst");
    w.run("b", "COPY {r}dst {r}cp");
    w.run("a", "MGET {r}src {r}dst {r}cp");
    w.run("b", "SET {r}src v2");
    // Another database: keys are tracked by name, whatever the database.
    w.run("a", "GET dbkey");
    w.run("b", "SELECT 3");
    w.run("b", "SET dbkey v");
    w.run("b", "SELECT 0");
    // SWAPDB changes no key name: Redis 7.0 sends nothing.
    w.run("a", "GET dbkey");
    w.run("b", "SWAPDB 0 3");
    w.run("b", "SWAPDB 0 3");
    // Read-only commands only: a write command reading a key tracks nothing.
    w.run("a", "INCR counter");
    w.run("b", "INCR counter");
    w.run("a", "SETNX counter 5");
    w.run("b", "DEL counter");
    // Transactions: the client's own invalidations follow EXEC's reply.
    w.run("a", &format!("GET {}", k[1]));
    w.run("a", &format!("GET {}", k[2]));
    w.run("a", "MULTI");
    w.run("a", &format!("SET {} x", k[1]));
    w.run("a", &format!("GET {}", k[2]));
    w.run("a", &format!("SET {} y", k[2]));
    w.run("a", "EXEC");
    w.run("b", &format!("DEL {} {}", k[1], k[2]));
    // Scripts: a read in a script tracks the declared keys (Redis 7.0).
    w.run("a", "EVAL \"return redis.call('get',KEYS[1])\" 1 {s}1");
    w.run_args("a", &["EVAL", "redis.call('get','{s}undeclared'); return redis.call('get',KEYS[1])", "1", "{s}2"]);
    w.run("b", "MSET {s}1 a {s}2 b {s}undeclared c");
    w.run_args("a", &["EVAL", "return redis.call('set',KEYS[1],'v')", "1", "{s}1"]);
    w.run_args("a", &["EVAL", "return redis.call('get',KEYS[1])", "1", "{s}1"]);
    w.run_args("n", &["EVAL", "return redis.call('get',KEYS[1])", "1", "{s}1"]);
    w.run_args("n", &["EVAL", "return redis.call('set',KEYS[1],'w')", "1", "{s}1"]);
    w.run_args("b", &["EVAL", "return redis.call('set',KEYS[1],'x')", "1", "{s}1"]);
    // Flushes: a null invalidation to every tracking client.
    w.run("a", &format!("GET {}", k[3]));
    w.run("b", "FLUSHDB");
    w.run("b", "INFO stats");
    w.run("a", &format!("GET {}", k[3]));
    w.run("a", "FLUSHALL");
    w.run("n", "FLUSHALL");
    w.run("b", "INFO stats");
    // Off: nothing more, and the keys it read are dropped when they change.
    w.run("a", &format!("GET {}", k[0]));
    w.run("a", "CLIENT TRACKING off");
    w.run("b", "INFO stats");
    w.run("b", &format!("SET {} 1", k[0]));
    w.run("b", "INFO stats");
    w.run("a", "CLIENT TRACKINGINFO");
    w.run("a", "CLIENT GETREDIR");
    w.run("b", "INFO clients");
    // RESET turns tracking off too.
    w.run("n", "RESET");
    w.run("b", "INFO clients");
}

#[test]
fn optin_optout_and_caching() {
    let Some(mut w) = World::start() else { return };
    w.connect("i", true);
    w.connect("o", true);
    w.connect("b", false);
    w.run("i", "CLIENT CACHING yes");
    w.run("i", "CLIENT TRACKING on OPTIN");
    w.run("o", "CLIENT TRACKING on OPTOUT");
    w.run("i", "CLIENT CACHING no");
    w.run("o", "CLIENT CACHING yes");
    w.run("i", "CLIENT CACHING maybe");
    w.run("i", "CLIENT TRACKINGINFO");
    // OPTIN: only the command right after CACHING yes is tracked.
    w.run("i", "GET a");
    w.run("i", "CLIENT CACHING yes");
    w.run("i", "CLIENT TRACKINGINFO");
    w.run("i", "GET b");
    w.run("i", "GET c");
    // Other CLIENT subcommands keep the mark.
    w.run("i", "CLIENT CACHING yes");
    w.run("i", "CLIENT GETREDIR");
    w.run("i", "GET d");
    w.run("b", "MSET a 1 b 1 c 1 d 1");
    // A transaction after CACHING yes is tracked as a whole.
    w.run("i", "CLIENT CACHING yes");
    w.run("i", "MULTI");
    w.run("i", "GET e");
    w.run("i", "GET f");
    w.run("i", "EXEC");
    w.run("i", "GET g");
    w.run("b", "MSET e 1 f 1 g 1");
    // OPTOUT: everything but the command after CACHING no.
    w.run("o", "GET a");
    w.run("o", "CLIENT CACHING no");
    w.run("o", "CLIENT TRACKINGINFO");
    w.run("o", "GET b");
    w.run("o", "GET c");
    w.run("b", "MSET a 2 b 2 c 2");
    // Switching modes is refused while on.
    w.run("i", "CLIENT TRACKING on OPTOUT");
    w.run("o", "CLIENT TRACKING on OPTIN");
    w.run("i", "CLIENT TRACKING on OPTIN NOLOOP");
    w.run("i", "CLIENT TRACKINGINFO");
    w.run("i", "CLIENT TRACKING off");
    w.run("i", "CLIENT CACHING yes");
    w.run("b", "INFO clients");
}

#[test]
fn redirect_to_resp2_and_resp3_clients() {
    let Some(mut w) = World::start() else { return };
    w.connect("sub", false);
    w.connect("r3", true);
    w.connect("plain", false);
    w.connect("t2", false);
    w.connect("t3", true);
    w.connect("b", false);
    w.run("sub", "SUBSCRIBE __redis__:invalidate");
    // RESP2 tracking to a RESP2 subscriber: `message` on the channel.
    w.run("t2", "CLIENT TRACKING on REDIRECT $sub");
    w.run("t2", "CLIENT GETREDIR");
    w.run("t2", "CLIENT LIST ID $t2");
    w.run("t2", "CLIENT TRACKINGINFO");
    w.run("t2", "MGET x y");
    w.run("b", "SET x 1");
    w.run("t2", "GET x");
    w.run("t2", "SET x 2");
    w.run("t2", "MSET x 3 y 3");
    // RESP3 tracking to a RESP3 client: pushes there.
    w.run("t3", "CLIENT TRACKING on REDIRECT $r3");
    w.run("t3", "MGET x y");
    w.run("b", "DEL x y");
    w.run("t3", "GET x");
    w.run("t3", "SET x 1");
    // To a RESP2 client that is not subscribed: nothing at all.
    w.run("t2", "CLIENT TRACKING on REDIRECT $plain");
    w.run("t2", "GET x");
    w.run("b", "SET x 2");
    // Several trackers of one key, redirected to one client: one message
    // each, the writer's own last.
    w.run("t2", "CLIENT TRACKING on REDIRECT $sub");
    w.run("t3", "CLIENT TRACKING on REDIRECT $sub");
    w.run("t2", "MGET p q");
    w.run("t3", "MGET p q");
    w.run("t3", "MSET p 1 q 1");
    // Flushes: the null is the tracking client's own protocol's.
    w.run("t2", "GET x");
    w.run("t3", "FLUSHALL");
    w.run("t2", "FLUSHDB");
    // Errors.
    w.run("t2", "CLIENT TRACKING on REDIRECT 999999");
    w.run("t2", "CLIENT TRACKING on REDIRECT 0");
    w.run("t2", "CLIENT TRACKING on REDIRECT -3");
    w.run("t2", "CLIENT TRACKING on REDIRECT nope");
    w.run("t2", "CLIENT TRACKING on REDIRECT $sub REDIRECT $sub");
    w.run("t2", "CLIENT TRACKING on REDIRECT");
    // The redirect client goes away: RESP3 trackers are told, RESP2 ones
    // silently lose their invalidations.
    w.run("t3", "CLIENT TRACKING on REDIRECT $r3");
    w.run("t2", "MGET u v");
    w.run("t3", "MGET u v");
    w.close("r3");
    w.close("sub");
    w.run("b", "SET u 1");
    w.run("t3", "CLIENT TRACKINGINFO");
    w.run("t3", "CLIENT LIST ID $t3");
    w.run("t2", "CLIENT LIST ID $t2");
    w.run("t3", "GET v");
    w.run("t3", "SET v 2");
    w.run("b", "INFO stats");
    // Turning tracking on again clears the broken state.
    w.run("t3", "CLIENT TRACKING on");
    w.run("t3", "CLIENT TRACKINGINFO");
    w.run("t3", "CLIENT LIST ID $t3");
}

#[test]
fn broadcast_mode() {
    let Some(mut w) = World::start() else { return };
    w.connect("all", true);
    w.connect("pre", true);
    w.connect("nl", true);
    w.connect("sub", false);
    w.connect("t2", false);
    w.connect("b", false);
    w.run("sub", "SUBSCRIBE __redis__:invalidate");
    w.run("all", "CLIENT TRACKING on BCAST");
    w.run("pre", "CLIENT TRACKING on BCAST PREFIX user: PREFIX obj:");
    w.run("nl", "CLIENT TRACKING on BCAST NOLOOP PREFIX user:");
    w.run("t2", "CLIENT TRACKING on BCAST PREFIX obj: REDIRECT $sub");
    w.run("pre", "CLIENT TRACKINGINFO");
    w.run("pre", "CLIENT LIST ID $pre");
    w.run("b", "INFO stats");
    // One message per prefix and command, keys in byte order, whatever
    // shard each key lives on.
    w.run("b", "SET user:1 a");
    w.run("b", "MSET user:3 a obj:9 b user:2 c other d obj:1 e");
    w.run("b", "DEL user:3 user:1 nothing");
    w.run("nl", "MSET user:5 a obj:2 b");
    w.run("b", "MSET user:6 a user:5 b");
    w.run("pre", "SET obj:7 x");
    // A transaction and a script broadcast once, at their end.
    w.run("b", "MULTI");
    w.run("b", "SET user:10 a");
    w.run("b", "SET obj:10 a");
    w.run("b", "SET user:09 a");
    w.run("b", "EXEC");
    w.run_args("nl", &["EVAL", "return redis.call('set',KEYS[1],'v')", "1", "user:{x}"]);
    // Reads are not tracked in BCAST mode.
    w.run("pre", "GET user:1");
    w.run("b", "FLUSHALL");
    // Prefix rules and errors.
    w.run("pre", "CLIENT TRACKING on BCAST PREFIX user:x");
    w.run("pre", "CLIENT TRACKING on BCAST PREFIX user PREFIX zz");
    w.run("pre", "CLIENT TRACKING on BCAST PREFIX new: PREFIX news:");
    w.run("pre", "CLIENT TRACKING on BCAST PREFIX z:");
    w.run("pre", "CLIENT TRACKINGINFO");
    w.run("pre", "CLIENT TRACKING on PREFIX q:");
    w.run("pre", "CLIENT TRACKING on");
    w.run("pre", "CLIENT TRACKING on BCAST OPTIN");
    w.run("pre", "CLIENT TRACKING on BCAST OPTOUT");
    w.run("b", "CLIENT TRACKING on OPTIN OPTOUT");
    w.run("b", "CLIENT TRACKING on BCAST PREFIX");
    w.run("b", "CLIENT TRACKING on BOGUS");
    w.run("b", "CLIENT TRACKING maybe");
    w.run("b", "CLIENT TRACKING");
    w.run("b", "INFO stats");
    w.run("b", "MSET z:1 a user:0 b");
    // Off: the prefixes go (and the empty ones leave the table).
    w.run("pre", "CLIENT TRACKING off");
    w.run("all", "CLIENT TRACKING off");
    w.run("b", "INFO stats");
    w.run("b", "MSET z:1 a user:0 b obj:0 c");
    w.run("nl", "RESET");
    w.run("b", "INFO stats");
}

#[test]
fn expiry_and_the_table_limit() {
    let Some(mut w) = World::start() else { return };
    w.connect("a", true);
    w.connect("n", true);
    w.connect("b", false);
    w.run("a", "CLIENT TRACKING on");
    w.run("n", "CLIENT TRACKING on NOLOOP");
    // A key read while live, reaped by the server's expiry cycle.
    w.run("b", "SET e1 v PX 100");
    w.run("a", "GET e1");
    w.unsolicited("a", Duration::from_millis(1500));
    w.run("b", "INFO stats");
    // tracking-table-max-keys: before the next command, keys over the
    // limit are invalidated (which ones is random: count them).
    w.run("b", "CONFIG SET tracking-table-max-keys 2");
    let counts: Vec<usize> = (0..2)
        .map(|s| {
            let c = w.sides[s].client("a");
            assert_eq!(c.call(&["MGET", "m1", "m2", "m3", "m4", "m5"]), "*5\r\n_\r\n_\r\n_\r\n_\r\n_\r\n");
            // The limit is enforced before the next command, whoever sends it.
            c.send(&["PING", "limit"]);
            let mut pushes = 0;
            loop {
                let f = c.reply();
                assert!(!f.is_empty());
                if f.contains("limit") {
                    break;
                }
                assert!(f.starts_with(">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\nm"), "unexpected {f:?}");
                pushes += 1;
            }
            pushes
        })
        .collect();
    assert_eq!(counts, [3, 3], "invalidations made by the limit (moonshard, redis-server)");
    w.run("b", "INFO stats");
    w.run("b", "CONFIG SET tracking-table-max-keys 0");
    // Which two keys are left is random: a flush invalidates them all.
    w.run("b", "FLUSHALL");
    w.run("b", "INFO stats");
}

/// Lazy expiry by a read: the reader's own invalidation after its reply
/// (skipped under NOLOOP). Needs DEBUG SET-ACTIVE-EXPIRE on both servers.
#[test]
fn lazy_expiry_by_a_read() {
    let Some(mut w) = World::start_with(&["--enable-debug-command", "yes"]) else { return };
    w.connect("a", true);
    w.connect("n", true);
    w.connect("b", false);
    w.run("b", "DEBUG SET-ACTIVE-EXPIRE 0");
    w.run("a", "CLIENT TRACKING on");
    w.run("n", "CLIENT TRACKING on NOLOOP");
    w.run("b", "SET e1 v PX 20");
    w.run("b", "SET e2 v PX 20");
    w.run("a", "MGET e1 e2");
    w.run("n", "MGET e1 e2");
    std::thread::sleep(Duration::from_millis(60));
    w.run("a", "GET e1");
    w.run("n", "GET e2");
    w.run("b", "MSET e1 x e2 y");
    w.run("b", "INFO stats");
    w.run("b", "DEBUG SET-ACTIVE-EXPIRE 1");
    // DEBUG RELOAD empties the dataset before loading it back: a flush.
    w.run("a", "GET e1");
    w.run("b", "DEBUG RELOAD");
    w.run("a", "DEBUG RELOAD");
    w.run("n", "DEBUG RELOAD NOSAVE NOFLUSH MERGE");
    w.run("b", "INFO stats");
}

/// Random reads and writes by tracking clients of every kind, with a fixed
/// seed: every connection must receive the same bytes from both servers.
#[test]
fn randomized_against_redis() {
    let Some(mut w) = World::start() else { return };
    w.connect("sub", false);
    w.connect("d3", true);
    w.connect("nl", true);
    w.connect("r2", false);
    w.connect("bc", true);
    w.connect("w", false);
    w.run("sub", "SUBSCRIBE __redis__:invalidate");
    w.run("d3", "CLIENT TRACKING on");
    w.run("nl", "CLIENT TRACKING on NOLOOP");
    w.run("r2", "CLIENT TRACKING on REDIRECT $sub");
    w.run("bc", "CLIENT TRACKING on BCAST PREFIX k1 PREFIX k2");
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    let clients = ["d3", "nl", "r2", "bc", "w"];
    let mut rng = StdRng::seed_from_u64(0x7ace0);
    for _ in 0..300 {
        let who = clients[rng.gen_range(0..clients.len())];
        let k1 = &keys[rng.gen_range(0..keys.len())];
        let k2 = &keys[rng.gen_range(0..keys.len())];
        let line = match rng.gen_range(0..10) {
            0..=2 => format!("GET {k1}"),
            3 => format!("MGET {k1} {k2}"),
            4 => format!("EXISTS {k1} {k2}"),
            5 | 6 => format!("SET {k1} {}", rng.gen_range(0..100)),
            7 => format!("MSET {k1} a {k2} b"),
            8 => format!("DEL {k1} {k2}"),
            _ => format!("INCR {k1}"),
        };
        w.run(who, &line);
    }
    w.run("w", "INFO stats");
}

/// A client blocked in BLPOP still receives its invalidations while it
/// waits, then its reply.
#[test]
fn pushes_reach_a_blocked_client() {
    let Some(mut w) = World::start() else { return };
    w.connect("a", true);
    w.connect("b", false);
    w.run("a", "CLIENT TRACKING on");
    w.run("a", "MGET k1 k2");
    for side in &mut w.sides {
        side.client("a").send(&["BLPOP", "q", "0"]);
    }
    w.hold.push("a".into());
    std::thread::sleep(Duration::from_millis(100));
    w.run("b", "SET k1 x");
    w.unsolicited("a", Duration::from_millis(300));
    w.run("b", "RPUSH q v");
    w.unsolicited("a", Duration::from_millis(300));
    w.hold.clear();
    w.run("b", "SET k2 x");
}

/// Keys evicted under `maxmemory` are invalidated for the clients that
/// read them (moonshard alone: which keys go is random).
#[test]
fn evicted_keys_are_invalidated() {
    let m = common::moonshard(&["--shards", "2", "--maxmemory-policy", "allkeys-random"]);
    let mut a = Raw::connect(m.port);
    let mut b = Raw::connect(m.port);
    a.call(&["HELLO", "3"]);
    let value = "v".repeat(2000);
    let keys: Vec<String> = (0..300).map(|i| format!("ev{i}")).collect();
    for k in &keys {
        assert_eq!(b.call(&["SET", k, &value]), "+OK\r\n");
    }
    assert_eq!(a.call(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    assert!(a.call(&mget).starts_with("*300\r\n"));
    let info = b.call(&["INFO", "memory"]);
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory");
    // About a third of the keys must go at the next write.
    let max = (used - 200 * 1024).to_string();
    assert_eq!(b.call(&["CONFIG", "SET", "maxmemory", &max]), "+OK\r\n");
    assert_eq!(b.call(&["SET", "trigger", "x"]), "+OK\r\n");
    assert_eq!(b.call(&["CONFIG", "SET", "maxmemory", "0"]), "+OK\r\n");
    a.send(&["PING", "done"]);
    let mut invalidated = std::collections::HashSet::new();
    loop {
        let f = a.reply();
        assert!(!f.is_empty(), "no PING reply");
        if f.contains("done") {
            break;
        }
        let key = f.rsplit("\r\n").nth(1).expect("a key").to_string();
        assert!(f.starts_with(">2\r\n$10\r\ninvalidate\r\n*1\r\n"), "unexpected {f:?}");
        invalidated.insert(key);
    }
    let mut gone = 0;
    for k in &keys {
        if b.call(&["EXISTS", k]) == ":0\r\n" {
            gone += 1;
            assert!(invalidated.contains(k), "{k} was evicted without an invalidation");
        }
    }
    assert!(gone > 0, "nothing was evicted");
    assert_eq!(gone, invalidated.len(), "invalidations for keys that are still there");
}

/// redis-py's client-side cache (RESP3) stays coherent under concurrent
/// writers: run against redis-server (so the script itself is checked) and
/// against moonshard with keys on four shards.
#[test]
fn redis_py_cache_stays_coherent() {
    let Some(py) = python::venv_python() else { return };
    if let Some(theirs) = common::redis_server() {
        python::run_script(&py, "tracking_cache.py", theirs.port, "tracking cache ok");
    }
    let ours = common::moonshard(&["--shards", "4"]);
    python::run_script(&py, "tracking_cache.py", ours.port, "tracking cache ok");
}

/// Under CLIENT REPLY OFF the invalidations still arrive (Redis 7.0 sends
/// pushes whatever the reply mode), its own ones included.
#[test]
fn pushes_under_client_reply_off() {
    let Some(mut w) = World::start() else { return };
    w.connect("a", true);
    w.connect("b", false);
    w.run("a", "CLIENT TRACKING on");
    w.run("a", "MGET r1 r2");
    for side in &mut w.sides {
        side.client("a").send(&["CLIENT", "REPLY", "OFF"]);
    }
    w.hold.push("a".into());
    w.run("b", "SET r1 x");
    w.unsolicited("a", Duration::from_millis(300));
    for side in &mut w.sides {
        side.client("a").send(&["SET", "r2", "x"]);
    }
    w.unsolicited("a", Duration::from_millis(300));
    w.hold.clear();
    w.run("a", "CLIENT REPLY ON");
}
