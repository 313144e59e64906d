//! TLS on `tls-port` (rustls): real clients (redis-cli --tls, redis-py
//! ssl=True) with certificates made in the test by the `openssl` command,
//! plain and TLS ports side by side or TLS only, client certificates
//! (tls-auth-clients yes|optional|no), hostile input on the TLS port, and
//! certificates replaced by CONFIG SET.

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "common/python.rs"]
#[allow(dead_code)] // run_script: this file runs its script with extra arguments
mod python;

use certs::{certs, cli_tls, tls_flags, Certs};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Both ports: with a TLS port, `port 0` would mean no plain port (as in
/// Redis) instead of a free one, so the plain port is chosen here.
fn start(c: &Certs, tls_port: u16, auth: &str) -> common::Proc {
    let mut flags = tls_flags(c, tls_port, auth);
    flags.extend(["--port".to_string(), common::free_port().to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    common::moonshard(&flags)
}

fn redis_py(py: &Path, port: u16, c: &Certs, client: bool) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/tls_client.py");
    let mut cmd = Command::new(py);
    cmd.arg(script).arg(port.to_string()).arg(c.path("ca.crt"));
    if client {
        cmd.arg(c.path("client.crt")).arg(c.path("client.key"));
    }
    let out = cmd.output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "tls_client.py failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn tls_and_plain_ports_side_by_side() {
    let Some(c) = certs() else { return };
    let tls_port = common::free_port();
    let srv = start(&c, tls_port, "no");
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", None, &["set", "k", "over tls"]), "OK");
    // The same data on the plain port.
    let mut plain = srv.client();
    assert_eq!(common::q(&mut plain, "GET k"), "over tls");
    assert_eq!(common::q(&mut plain, "CONFIG GET tls-port"), format!("[tls-port,{tls_port}]"));
    // A client trusting another CA refuses the server's certificate.
    assert!(!cli_tls(&c, tls_port, "other-ca.crt", None, &["ping"]).contains("PONG"));
    if let Some(py) = python::venv_python() {
        assert!(redis_py(&py, tls_port, &c, false).contains("tls ok"));
    }
}

#[test]
fn tls_only_with_port_zero() {
    let Some(c) = certs() else { return };
    let tls_port = common::free_port();
    let dir = common::temp_dir("tls-only");
    let mut child = Command::new(env!("CARGO_BIN_EXE_moonshard"))
        .args(["--port", "0", "--save", "", "--dir"])
        .arg(&dir)
        .args(tls_flags(&c, tls_port, "no"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moonshard");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(Instant::now() < deadline, "no TLS listener");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", None, &["config", "get", "port"]), "port\n0");
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", None, &["ping"]), "PONG");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn client_certificates() {
    let Some(c) = certs() else { return };
    let tls_port = common::free_port();
    let srv = start(&c, tls_port, "yes");
    // yes: no certificate, or one from another CA, ends the handshake.
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", Some(""), &["ping"]), "PONG");
    assert!(!cli_tls(&c, tls_port, "ca.crt", None, &["ping"]).contains("PONG"));
    assert!(!cli_tls(&c, tls_port, "ca.crt", Some("other-"), &["ping"]).contains("PONG"));
    let py = python::venv_python();
    if let Some(py) = &py {
        assert!(redis_py(py, tls_port, &c, true).contains("tls ok"));
        assert!(redis_py(py, tls_port, &c, false).contains("refused"));
    }
    // optional: no certificate is fine, a bad one still is not.
    let mut plain = srv.client();
    assert_eq!(common::q(&mut plain, "CONFIG SET tls-auth-clients optional"), "OK");
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", None, &["ping"]), "PONG");
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", Some(""), &["ping"]), "PONG");
    assert!(!cli_tls(&c, tls_port, "ca.crt", Some("other-"), &["ping"]).contains("PONG"));
    if let Some(py) = &py {
        assert!(redis_py(py, tls_port, &c, false).contains("tls ok"));
    }
}

/// Reads until the peer closes (true) or `within` passes (false).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn hostile_input_on_the_tls_port_harms_no_one() {
    let Some(c) = certs() else { return };
    let tls_port = common::free_port();
    let mut srv = start(&c, tls_port, "no");
    // Clients that stall: connected, silent, or mid-ClientHello.
    let mut stalled = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        if i % 2 == 0 {
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
        }
        stalled.push(s);
    }
    // Plain text and garbage are answered by closing the connection.
    let mut rng: u64 = 0x9e3779b97f4a7c15;
    for i in 0..50 {
        let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        let input: Vec<u8> = if i % 5 == 0 {
            b"PING\r\n*1\r\n$4\r\nPING\r\n".to_vec()
        } else {
            (0..(64 + i * 37))
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Garbage that starts like a handshake record half the time.
                    rng as u8
                })
                .enumerate()
                .map(|(j, b)| if i % 2 == 0 && j == 0 { 0x16 } else { b })
                .collect()
        };
        let _ = s.write_all(&input);
        assert!(closed_within(&mut s, Duration::from_secs(5)), "connection {i} was not closed");
    }
    // Meanwhile TLS and plain clients are served.
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", None, &["set", "after", "garbage"]), "OK");
    let mut plain = srv.client();
    assert_eq!(common::q(&mut plain, "GET after"), "garbage");
    // Stalled handshakes are not clients.
    let list = common::q(&mut plain, "CLIENT LIST");
    assert_eq!(list.lines().count(), 1, "{list}");
    drop(stalled);
    assert!(srv.alive());
}

#[test]
fn config_set_reloads_certificates_for_new_connections() {
    let Some(c) = certs() else { return };
    let tls_port = common::free_port();
    let srv = start(&c, tls_port, "no");
    let mut plain = srv.client();
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", None, &["ping"]), "PONG");
    // A file that cannot be read: Redis's error, and the old certificate stays.
    let err = common::q(&mut plain, "CONFIG SET tls-cert-file /nonexistent/server.crt");
    assert_eq!(
        err,
        "ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. \
         Check server logs."
    );
    assert_eq!(common::q(&mut plain, "CONFIG GET tls-cert-file"), format!("[tls-cert-file,{}]", c.path("server.crt")));
    let err = common::q(&mut plain, "CONFIG SET tls-protocols TLSv9");
    assert!(err.contains("possibly related to argument 'tls-protocols'"), "{err}");
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", None, &["ping"]), "PONG");
    // The other CA's certificate: new connections must trust that CA.
    let set =
        format!("CONFIG SET tls-cert-file {} tls-key-file {}", c.path("other-server.crt"), c.path("other-server.key"));
    assert_eq!(common::q(&mut plain, &set), "OK");
    assert_eq!(cli_tls(&c, tls_port, "other-ca.crt", None, &["ping"]), "PONG");
    assert!(!cli_tls(&c, tls_port, "ca.crt", None, &["ping"]).contains("PONG"));
    // TLS 1.2 only, then a new TLS port.
    assert_eq!(common::q(&mut plain, "CONFIG SET tls-protocols TLSv1.2"), "OK");
    assert_eq!(cli_tls(&c, tls_port, "other-ca.crt", None, &["ping"]), "PONG");
    let moved = common::free_port();
    assert_eq!(common::q(&mut plain, &format!("CONFIG SET tls-port {moved}")), "OK");
    assert_eq!(cli_tls(&c, moved, "other-ca.crt", None, &["ping"]), "PONG");
    assert!(TcpStream::connect(("127.0.0.1", tls_port)).is_err());
    assert_eq!(common::q(&mut plain, "CONFIG SET tls-port 0"), "OK");
    assert!(TcpStream::connect(("127.0.0.1", moved)).is_err());
}

/// Waits up to `within` for `child` to exit; true when it did.
fn exits_within(child: &mut std::process::Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
fn key_file_encrypted_with_a_password() {
    let Some(c) = certs() else { return };
    // The key as OpenSSL 3 encrypts it (PKCS#8, PBES2 with AES-256-CBC).
    certs::openssl(
        &c.dir,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "server.key",
            "-out",
            "server-enc.key",
            "-passout",
            "pass:s3cret",
            "-v2",
            "aes-256-cbc",
        ],
    );
    let with_key = |key: &str, pass: &str| {
        let mut flags = tls_flags(&c, common::free_port(), "no");
        let at = flags.iter().position(|f| f == "--tls-key-file").unwrap() + 1;
        flags[at] = c.path(key);
        flags.extend(["--tls-key-file-pass".to_string(), pass.to_string()]);
        flags
    };
    // redis-server reads the same file with the same password: the same
    // configuration must work on both.
    let flags = with_key("server-enc.key", "s3cret");
    let tls_port: u16 = flags[1].parse().unwrap();
    let mut all = flags.clone();
    all.extend(["--port".to_string(), common::free_port().to_string()]);
    let srv = common::moonshard(&all.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", None, &["ping"]), "PONG");
    let theirs_port = common::free_port();
    let mut theirs = with_key("server-enc.key", "s3cret");
    theirs[1] = theirs_port.to_string();
    if let Some(_redis) = common::redis_server_with(&theirs.iter().map(String::as_str).collect::<Vec<_>>()) {
        assert_eq!(cli_tls(&c, theirs_port, "ca.crt", None, &["ping"]), "PONG");
    }
    // A wrong password at CONFIG SET: refused, the loaded key stays.
    let mut plain = srv.client();
    let err = common::q(&mut plain, "CONFIG SET tls-key-file-pass wrong");
    assert!(err.contains("Unable to update TLS configuration"), "{err}");
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", None, &["ping"]), "PONG");
    // Without the password (or with a wrong one) the server does not start.
    for pass in ["", "wrong"] {
        let dir = common::temp_dir("tls-enc");
        let mut child = Command::new(env!("CARGO_BIN_EXE_moonshard"))
            .args(["--port", &common::free_port().to_string(), "--save", "", "--dir"])
            .arg(&dir)
            .args(with_key("server-enc.key", pass))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moonshard");
        assert!(exits_within(&mut child, Duration::from_secs(10)), "started with tls-key-file-pass {pass:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn client_certificate_common_name_selects_the_acl_user() {
    let Some(c) = certs() else { return };
    let tls_port = common::free_port();
    let srv = start(&c, tls_port, "yes");
    let mut plain = srv.client();
    let whoami = |c: &Certs| cli_tls(c, tls_port, "ca.crt", Some(""), &["acl", "whoami"]);
    // Off by default, as in Redis: the certificate authenticates nobody.
    assert_eq!(whoami(&c), "default");
    assert_eq!(common::q(&mut plain, "CONFIG SET tls-auth-clients-user cn"), "OK");
    // No user named as the certificate's CN (alice): the default user.
    assert_eq!(whoami(&c), "default");
    assert_eq!(common::q(&mut plain, "ACL SETUSER alice on nopass ~app:* +@all -flushall"), "OK");
    assert_eq!(whoami(&c), "alice");
    let denied = cli_tls(&c, tls_port, "ca.crt", Some(""), &["flushall"]);
    assert!(denied.contains("NOPERM"), "{denied}");
    assert_eq!(cli_tls(&c, tls_port, "ca.crt", Some(""), &["set", "app:1", "x"]), "OK");
    // A disabled user is not logged in; neither is anyone once it is off.
    assert_eq!(common::q(&mut plain, "ACL SETUSER alice off"), "OK");
    assert_eq!(whoami(&c), "default");
    assert_eq!(common::q(&mut plain, "ACL SETUSER alice on"), "OK");
    assert_eq!(common::q(&mut plain, "CONFIG SET tls-auth-clients-user off"), "OK");
    assert_eq!(whoami(&c), "default");
    let err = common::q(&mut plain, "CONFIG SET tls-auth-clients-user bogus");
    assert!(err.contains("argument(s) must be one of the following"), "{err}");
}

#[test]
fn redis_benchmark_over_tls() {
    let Some(c) = certs() else { return };
    if !common::has_program("redis-benchmark") {
        return;
    }
    let tls_port = common::free_port();
    let _srv = start(&c, tls_port, "yes");
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &tls_port.to_string(), "--tls", "--cacert", &c.path("ca.crt")])
        .args(["--cert", &c.path("client.crt"), "--key", &c.path("client.key")])
        .args(["-n", "2000", "-c", "4", "-P", "4", "-t", "set,get,lpush", "-q"])
        .stdin(Stdio::null())
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    for test in ["SET:", "GET:", "LPUSH:"] {
        let line = text.split(['\r', '\n']).rev().find(|l| l.starts_with(test)).unwrap_or_default().to_string();
        assert!(
            line.contains("requests per second"),
            "{test} missing:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
