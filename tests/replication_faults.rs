//! Replication under faults:
//! - a replica that stops reading (a redis-server replica in DEBUG SLEEP)
//!   while the master writes far more than `client-output-buffer-limit
//!   replica` allows is disconnected by the master, reconnects, resyncs and
//!   ends identical;
//! - `kill -9` of the master or the replica at random points of a bounded
//!   write load (seeded), each restarted on its port and directory (the
//!   master from its AOF): afterwards the datasets are identical key by key.

mod common;
use common::info_num as num;
use common::wait_until;

use common::{field_of, free_port, q, redis_server_with, run_str, temp_dir};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A moonshard on a fixed port and directory, killed (SIGKILL) on drop.
struct Node {
    port: u16,
    dir: std::path::PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl Node {
    fn start(port: u16, dir: &std::path::Path, extra: &[&str]) -> Node {
        let mut n =
            Node { port, dir: dir.to_path_buf(), extra: extra.iter().map(|s| s.to_string()).collect(), child: None };
        n.restart();
        n
    }

    fn restart(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_moonshard"))
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--repl-diskless-sync-delay", "0", "--enable-debug-command", "yes"])
            .args(&self.extra)
            .stdout(std::fs::File::create(self.dir.with_extension("log")).expect("log file"))
            .spawn()
            .expect("start moonshard");
        self.child = Some(child);
        let url = format!("redis://127.0.0.1:{}/", self.port);
        wait_until(20, "moonshard to answer", || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("moonshard on {} exited: {status}", self.port);
            }
            redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                .is_ok_and(|mut c| q(&mut c, "PING") == "PONG")
        });
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn client(&self) -> redis::Connection {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        let mut tries = 0;
        loop {
            match c.get_connection_with_timeout(Duration::from_secs(10)) {
                Ok(con) => return con,
                Err(e) if tries < 3 => {
                    eprintln!("connecting to {}: {e}", self.port);
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("connecting to {}: {e}", self.port),
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("log"));
    }
}

/// Every key with its value's digest and whether it has a TTL, in db 0.
fn keyed(c: &mut redis::Connection) -> std::collections::BTreeMap<String, (String, bool)> {
    let Ok(redis::Value::Array(keys)) = run_str(c, &["KEYS", "*"]) else { panic!("KEYS failed") };
    keys.into_iter()
        .filter_map(|k| match k {
            redis::Value::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        })
        .map(|k| {
            let d = q(c, &format!("DEBUG DIGEST-VALUE {k}"));
            let ttl = q(c, &format!("PTTL {k}")) != "-1";
            (k, (d, ttl))
        })
        .collect()
}

#[test]
fn stalled_replica_is_cut_off_by_its_output_limit_and_resyncs() {
    let mdir = temp_dir("obuf-master");
    let master = Node::start(
        free_port(),
        &mdir,
        &["--shards", "2", "--client-output-buffer-limit", "replica 2mb 1mb 1", "--repl-backlog-size", "1mb"],
    );
    let mut m = master.client();
    let Some(replica) = redis_server_with(&["--enable-debug-command", "yes"]) else { return };
    let mut r = replica.client();
    assert_eq!(q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", master.port)), "OK");
    wait_until(10, "the replica's link", || field_of(&mut r, "replication", "master_link_status") == "up");
    let full = num(&mut m, "stats", "sync_full");

    // The replica stops reading for 3 s while 40 MB are written.
    let sleeper = {
        let mut c = replica.client();
        std::thread::spawn(move || q(&mut c, "DEBUG SLEEP 3"))
    };
    std::thread::sleep(Duration::from_millis(100));
    let value = "v".repeat(500_000);
    for i in 0..80 {
        assert_eq!(show_ok(run_str(&mut m, &["SET", &format!("big:{}", i % 20), &value])), "OK");
    }
    wait_until(10, "the master to drop the stalled replica", || num(&mut m, "replication", "connected_slaves") == 0);
    assert_eq!(sleeper.join().unwrap(), "OK");
    // It reconnects; the backlog was overrun: a full resync.
    wait_until(20, "the resync", || {
        num(&mut m, "stats", "sync_full") > full
            && field_of(&mut r, "replication", "master_link_status") == "up"
            && field_of(&mut r, "replication", "slave_repl_offset")
                == field_of(&mut m, "replication", "master_repl_offset")
    });
    assert_eq!(q(&mut r, "DEBUG DIGEST"), q(&mut m, "DEBUG DIGEST"));
}

fn show_ok(r: Result<redis::Value, String>) -> String {
    common::show(r)
}

/// kill -9 of either side at random points under a bounded write load.
#[test]
fn kill_9_either_side_then_identical() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let (mport, rport) = (free_port(), free_port());
    let (mdir, rdir) = (temp_dir("kill9-master"), temp_dir("kill9-replica"));
    let mut master = Node::start(mport, &mdir, &["--shards", "3", "--appendonly", "yes", "--appendfsync", "always"]);
    let replicaof = format!("127.0.0.1 {mport}");
    let mut replica = Node::start(rport, &rdir, &["--shards", "2", "--replicaof", &replicaof]);
    let started = Instant::now();
    for round in 0..6 {
        // A writer for a random time, then a kill -9 at that point.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            let seed = rng.gen::<u64>();
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed);
                let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{mport}/")) else { return };
                let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(2)) else { return };
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let k = format!("k{}", rng.gen_range(0..200));
                    let n = rng.gen_range(0..1000).to_string();
                    let args: Vec<&str> = match rng.gen_range(0..5) {
                        0 => vec!["SET", &k, &n],
                        1 => vec!["INCRBY", "ctr", &n],
                        2 => vec!["RPUSH", "list", &n],
                        3 => vec!["HSET", "hash", &k, &n],
                        _ => vec!["DEL", &k],
                    };
                    if run_str(&mut c, &args).is_err() {
                        return; // the master went away
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..400)));
        let victim_is_master = rng.gen_bool(0.5);
        if victim_is_master {
            master.kill9();
        } else {
            replica.kill9();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = writer.join();
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..300)));
        if victim_is_master {
            master.restart();
        } else {
            replica.restart();
        }
        assert!(started.elapsed() < Duration::from_secs(50), "round {round}: the test runs too long");
    }
    for n in [&mut master, &mut replica] {
        let status = n.child.as_mut().map(|c| c.try_wait());
        assert!(matches!(status, Some(Ok(None))), "moonshard on {} exited: {status:?}", n.port);
    }
    let (mut m, mut r) = (master.client(), replica.client());
    wait_until(20, "the replica to catch up", || {
        field_of(&mut r, "replication", "master_link_status") == "up"
            && field_of(&mut r, "replication", "slave_repl_offset")
                == field_of(&mut m, "replication", "master_repl_offset")
    });
    let (a, b) = (keyed(&mut m), keyed(&mut r));
    assert!(!a.is_empty(), "the load wrote something");
    assert_eq!(a, b, "master and replica differ key by key");
    assert_eq!(q(&mut m, "DEBUG DIGEST"), q(&mut r, "DEBUG DIGEST"));
}
