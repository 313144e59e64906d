//! Certificates for the TLS tests, made by the `openssl` command: a CA, a
//! server certificate (localhost, 127.0.0.1) and a client certificate
//! (CN alice) it signs, twice (the second set prefixed `other-`).
#![allow(dead_code)] // each test file uses part of it

use super::common;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A CA, a server certificate (localhost, 127.0.0.1) and a client
/// certificate it signed, under `dir` as `<prefix>ca.crt`, `<prefix>server.crt`, ...
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Makes a CA `<p>ca` and the certificates `<p>server` and `<p>client` it signs.
pub fn make_certs(dir: &Path, p: &str) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let (ca_key, ca_crt) = (format!("{p}ca.key"), format!("{p}ca.crt"));
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend(["-keyout", &ca_key, "-out", &ca_crt, "-days", "2", "-subj", "/CN=moonshard test CA"]);
    openssl(dir, &args);
    std::fs::write(dir.join("server.ext"), "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
        .unwrap();
    std::fs::write(dir.join("client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
    for (who, cn) in [("server", "localhost"), ("client", "alice")] {
        let (key, csr, crt) = (format!("{p}{who}.key"), format!("{p}{who}.csr"), format!("{p}{who}.crt"));
        let subj = format!("/CN={cn}");
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &args);
        let ext = format!("{who}.ext");
        let serial = format!("{p}ca.srl");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-CAserial",
                &serial,
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

pub fn certs() -> Option<Certs> {
    if !common::has_program("openssl") || !common::has_program("redis-cli") {
        assert!(std::env::var("MOONSHARD_REQUIRE_REDIS").as_deref() != Ok("1"), "openssl or redis-cli missing");
        eprintln!("\n*** SKIPPED: openssl or redis-cli not on PATH; TLS tests not run ***\n");
        return None;
    }
    let dir = common::temp_dir("tls-certs");
    make_certs(&dir, "");
    make_certs(&dir, "other-");
    Some(Certs { dir })
}

/// The server flags for TLS on `tls_port` with the main certificates.
pub fn tls_flags(c: &Certs, tls_port: u16, auth: &str) -> Vec<String> {
    [
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &c.path("server.crt"),
        "--tls-key-file",
        &c.path("server.key"),
        "--tls-ca-cert-file",
        &c.path("ca.crt"),
        "--tls-auth-clients",
        auth,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// redis-cli over TLS trusting `ca` (a file name under the cert dir), with
/// an optional client certificate prefix; stdout, or the error it printed.
pub fn cli_tls(c: &Certs, port: u16, ca: &str, client: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls", "--cacert", &c.path(ca)]);
    if let Some(p) = client {
        cmd.args(["--cert", &c.path(&format!("{p}client.crt")), "--key", &c.path(&format!("{p}client.key"))]);
    }
    let out = cmd.args(args).stdin(Stdio::null()).output().expect("run redis-cli");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if text.is_empty() {
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    } else {
        text
    }
}

/// redis-cli's TLS options with the main CA and client certificate.
pub fn cli_tls_args(c: &Certs) -> Vec<String> {
    vec![
        "--tls".into(),
        "--cacert".into(),
        c.path("ca.crt"),
        "--cert".into(),
        c.path("client.crt"),
        "--key".into(),
        c.path("client.key"),
    ]
}
