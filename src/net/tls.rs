//! TLS on `tls-port`, with rustls (no OpenSSL).
//!
//! The rustls server configuration is built from the `tls-*` parameters at
//! start-up and again by CONFIG SET; each accepted connection takes the
//! configuration current at its accept, so new certificates serve new
//! connections while established ones keep theirs.

use crate::config::Config;
use crate::net::connection::{self, Stream};
use crate::server::Server;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// The TLS side of the server: the configuration new connections get, and
/// the sockets listening on `tls-port`.
#[derive(Default)]
pub struct Tls {
    current: parking_lot::RwLock<Option<Arc<ServerConfig>>>,
    pub listeners: parking_lot::Mutex<Vec<crate::net::listener::Listening>>,
}

impl Tls {
    pub fn configured(&self) -> bool {
        self.current.read().is_some()
    }

    fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.current.read().clone().map(tokio_rustls::TlsAcceptor::from)
    }

    /// Builds the configuration from the parameters and makes it the one
    /// new connections get; on failure the previous one stays, and the
    /// reason is logged (as Redis logs it) before the error returns.
    pub fn reload(&self, server: &Server) -> Result<(), String> {
        match build(&server.config) {
            Ok(cfg) => {
                *self.current.write() = Some(cfg);
                Ok(())
            }
            Err(why) => {
                crate::net::listener::log(server, "warning", &why);
                Err(why)
            }
        }
    }
}

/// The parameters whose change rebuilds the TLS configuration (CONFIG SET).
pub const MATERIAL: &[&str] = &[
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-protocols",
    "tls-ciphersuites",
    "tls-prefer-server-ciphers",
    "tls-session-caching",
    "tls-session-cache-size",
    "tls-auth-clients",
];

fn param(config: &Config, name: &str) -> String {
    config.get(name).unwrap_or_default()
}

/// The protocol versions `tls-protocols` names (empty: TLS 1.2 and 1.3).
/// rustls has no TLS 1.0/1.1: they are accepted in the list (it stays a
/// valid Redis value) but never negotiated.
fn protocols(value: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    if value.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let invalid = || {
        "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.".to_string()
    };
    let mut versions = Vec::new();
    for word in value.split_whitespace() {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1.3" => versions.push(&rustls::version::TLS13),
            "tlsv1.2" => versions.push(&rustls::version::TLS12),
            "tlsv1" | "tlsv1.1" => {}
            _ => return Err(invalid()),
        }
    }
    if versions.is_empty() {
        return Err("tls-protocols names no protocol this server supports (TLSv1.2 and TLSv1.3 only)".into());
    }
    Ok(versions)
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let fail = |why: &dyn std::fmt::Display| format!("Failed to load certificate: {path}: {why}");
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(&e))?;
    if certs.is_empty() {
        return Err(fail(&"no certificate found"));
    }
    Ok(certs)
}

fn load_key(path: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    let fail = |why: &dyn std::fmt::Display| format!("Failed to load private key: {path}: {why}");
    let text = std::fs::read(path).map_err(|e| fail(&e))?;
    if let Some(block) = pem_block(&text, "ENCRYPTED PRIVATE KEY") {
        if pass.is_empty() {
            return Err(fail(&"the key is encrypted and tls-key-file-pass is not set"));
        }
        return decrypt_pkcs8(block, pass).map_err(|e| fail(&e));
    }
    if text.windows(22).any(|w| w == b"Proc-Type: 4,ENCRYPTED") {
        return Err(fail(
            &"keys in the legacy encrypted PEM format are not supported: convert the key with \
                          `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
        ));
    }
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| fail(&e))
}

/// The first PEM block labelled `label` in `text`, armour included.
fn pem_block<'a>(text: &'a [u8], label: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(text).ok()?;
    let (begin, end) = (format!("-----BEGIN {label}-----"), format!("-----END {label}-----"));
    let start = text.find(&begin)?;
    let stop = start + text[start..].find(&end)? + end.len();
    Some(&text[start..stop])
}

/// A PKCS#8 key encrypted with a password (PBES2, as OpenSSL writes it).
fn decrypt_pkcs8(pem: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    use pkcs8::der::{Decode, Document};
    let (_, doc) = Document::from_pem(pem).map_err(|e| e.to_string())?;
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).map_err(|e| e.to_string())?;
    let plain = info.decrypt(pass.as_bytes()).map_err(|_| "bad decrypt (wrong tls-key-file-pass?)".to_string())?;
    Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
}

/// The subject common name of the client's certificate, when it sent one
/// (`tls-auth-clients-user cn`).
pub fn client_common_name(stream: &tokio_rustls::server::TlsStream<TcpStream>) -> Option<Vec<u8>> {
    use x509_cert::der::Decode;
    let cert = stream.get_ref().1.peer_certificates()?.first()?;
    let cert = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    let cn = x509_cert::der::asn1::ObjectIdentifier::new_unwrap("2.5.4.3");
    let subject = &cert.tbs_certificate.subject;
    subject.0.iter().flat_map(|rdn| rdn.0.iter()).find(|a| a.oid == cn).map(|a| a.value.value().to_vec())
}

/// The trusted CAs of `tls-ca-cert-file` and every certificate file in `tls-ca-cert-dir`.
fn load_roots(file: &str, dir: &str) -> Result<RootCertStore, String> {
    let fail = |why: &dyn std::fmt::Display| format!("Failed to configure CA certificate(s) file/directory: {why}");
    let mut roots = RootCertStore::empty();
    let mut files = Vec::new();
    if !file.is_empty() {
        files.push(std::path::PathBuf::from(file));
    }
    if !dir.is_empty() {
        let entries = std::fs::read_dir(dir).map_err(|e| fail(&format!("{dir}: {e}")))?;
        let mut found: Vec<_> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        found.sort();
        files.extend(found);
    }
    for path in files {
        let shown = path.display();
        let iter = CertificateDer::pem_file_iter(&path).map_err(|e| fail(&format!("{shown}: {e}")))?;
        for cert in iter {
            // A directory may hold other files: only the explicit file must parse.
            let Ok(cert) = cert else {
                if path.as_os_str() == file {
                    return Err(fail(&format!("{shown}: not a PEM certificate file")));
                }
                continue;
            };
            roots.add(cert).map_err(|e| fail(&format!("{shown}: {e}")))?;
        }
    }
    if roots.is_empty() {
        return Err(fail(&"no CA certificate found"));
    }
    Ok(roots)
}

/// rustls's ring provider. Deprecated in favour of aws-lc-rs (post-quantum
/// key exchange), whose build needs cmake and a C toolchain: ring keeps the
/// build plain Rust plus ring's own small C/asm.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The TLS 1.3 suites `tls-ciphersuites` names (OpenSSL's names, colon separated).
fn ciphersuites(value: &str) -> Result<Vec<rustls::SupportedCipherSuite>, String> {
    let all = ring_provider().cipher_suites;
    if value.trim().is_empty() {
        return Ok(all);
    }
    let mut chosen: Vec<rustls::SupportedCipherSuite> =
        all.iter().filter(|s| s.version() != &rustls::version::TLS13).copied().collect();
    for name in value.split(':').filter(|n| !n.is_empty()) {
        let wanted = name.trim().replace("TLS_", "TLS13_");
        let suite = all.iter().find(|s| format!("{:?}", s.suite()) == wanted);
        match suite {
            Some(s) => chosen.push(*s),
            None => return Err(format!("Failed to configure TLSv1.3 cipher suites: unknown suite {name}")),
        }
    }
    Ok(chosen)
}

/// The rustls server configuration the parameters describe.
pub fn build(config: &Config) -> Result<Arc<ServerConfig>, String> {
    let cert_file = param(config, "tls-cert-file");
    let key_file = param(config, "tls-key-file");
    if cert_file.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    if key_file.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    let auth = param(config, "tls-auth-clients");
    let (ca_file, ca_dir) = (param(config, "tls-ca-cert-file"), param(config, "tls-ca-cert-dir"));
    if auth != "no" && ca_file.is_empty() && ca_dir.is_empty() {
        return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, \
                    tls-replication or tls-auth-clients are enabled!"
            .into());
    }
    let certs = load_certs(&cert_file)?;
    let key = load_key(&key_file, &param(config, "tls-key-file-pass"))?;
    let versions = protocols(&param(config, "tls-protocols"))?;
    let mut provider = ring_provider();
    provider.cipher_suites = ciphersuites(&param(config, "tls-ciphersuites"))?;
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Failed to configure TLS: {e}"))?;
    let builder = if auth == "no" {
        builder.with_no_client_auth()
    } else {
        let roots = load_roots(&ca_file, &ca_dir)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if auth == "optional" { verifier.allow_unauthenticated() } else { verifier };
        builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("Failed to configure TLS: {e}"))?)
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("Failed to load certificate or private key: {cert_file}, {key_file}: {e}"))?;
    cfg.ignore_client_order = param(config, "tls-prefer-server-ciphers") == "yes";
    cfg.session_storage = if param(config, "tls-session-caching") == "no" {
        Arc::new(NoServerSessionStorage {})
    } else {
        let size = config.get_i64("tls-session-cache-size").clamp(1, 1 << 20) as usize;
        ServerSessionMemoryCache::new(size)
    };
    Ok(Arc::new(cfg))
}

/// The longest a client may take to complete its handshake: a client that
/// stalls in it holds nothing but its own socket, and not for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the handshake of a connection accepted on `tls-port`, then serves
/// it. A failed handshake (a plain-text client, garbage, a bad or missing
/// client certificate) closes only this connection.
pub async fn accept(server: Arc<Server>, stream: TcpStream, peer: SocketAddr, refused: bool) {
    let Some(acceptor) = server.tls.acceptor() else {
        return;
    };
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            server.stats.connections_received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            crate::net::listener::log(
                &server,
                "verbose",
                &format!("Error accepting a client connection: {e} (addr={peer})"),
            );
            return;
        }
        Err(_) => {
            server.stats.connections_received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            crate::net::listener::log(
                &server,
                "verbose",
                &format!("Error accepting a client connection: handshake timed out (addr={peer})"),
            );
            return;
        }
    };
    let stream = Stream::Tls(Box::new(tls));
    if refused {
        crate::net::listener::deny(server, stream).await;
    } else {
        connection::run(server, stream, peer.to_string()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_lists() {
        assert_eq!(protocols("").unwrap().len(), 2);
        assert_eq!(protocols("TLSv1.2").unwrap().len(), 1);
        assert_eq!(protocols("tlsv1.2 TLSv1.3").unwrap().len(), 2);
        assert_eq!(protocols("TLSv1 TLSv1.3").unwrap().len(), 1);
        assert!(protocols("TLSv1").is_err());
        assert!(protocols("TLSv9").unwrap_err().starts_with("Invalid tls-protocols specified."));
    }

    #[test]
    fn tls13_suites_by_openssl_name() {
        let all = ciphersuites("").unwrap().len();
        let one = ciphersuites("TLS_AES_256_GCM_SHA384").unwrap();
        assert!(one.len() < all);
        assert!(one.iter().any(|s| format!("{:?}", s.suite()) == "TLS13_AES_256_GCM_SHA384"));
        assert!(ciphersuites("TLS_NOPE").is_err());
    }
}
