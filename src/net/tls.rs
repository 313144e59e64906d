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
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// The TLS side of the server: the configuration new connections get, and
/// the sockets listening on `tls-port`.
#[derive(Default)]
pub struct Tls {
    current: parking_lot::RwLock<Option<Built>>,
    pub listeners: parking_lot::Mutex<Vec<crate::net::listener::Listening>>,
}

/// The configurations built from the parameters at one time.
#[derive(Clone)]
pub struct Built {
    /// For the clients of `tls-port` (`tls-auth-clients`).
    pub server: Arc<ServerConfig>,
    /// For the cluster bus with `tls-cluster yes`: a peer must present a
    /// certificate the CAs signed, whatever `tls-auth-clients` says (as Redis).
    pub bus: Option<Arc<ServerConfig>>,
    /// For this server's own connections (a replica to its master, the
    /// cluster bus, MIGRATE): `tls-client-cert-file`/`-key-file` when set,
    /// else `tls-cert-file`/`-key-file`, and the peer verified against the
    /// CAs. None when no CA is configured.
    pub client: Option<Arc<ClientConfig>>,
}

impl Tls {
    pub fn configured(&self) -> bool {
        self.current.read().is_some()
    }

    fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.current.read().as_ref().map(|b| tokio_rustls::TlsAcceptor::from(b.server.clone()))
    }

    /// The acceptor of the cluster bus (`tls-cluster yes`).
    pub fn bus_acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.current.read().as_ref().and_then(|b| b.bus.clone()).map(tokio_rustls::TlsAcceptor::from)
    }

    /// The configuration of this server's outgoing TLS connections.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        match self.current.read().as_ref() {
            None => Err("TLS is not configured (tls-cert-file, tls-key-file and tls-ca-cert-file)".into()),
            Some(b) => b.client.clone().ok_or_else(|| "No tls-ca-cert-file or tls-ca-cert-dir configured".into()),
        }
    }

    /// Builds the configuration from the parameters and makes it the one
    /// new connections get; on failure the previous one stays, and the
    /// reason is logged (as Redis logs it) before the error returns.
    pub fn reload(&self, server: &Server) -> Result<(), String> {
        match build_all(&server.config) {
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
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
    "tls-replication",
    "tls-cluster",
];

/// Whether TLS must be configured at start-up: a TLS port, or TLS links
/// to other servers (`tls-replication`, `tls-cluster`), as Redis decides.
pub fn wanted(config: &Config) -> bool {
    config.get_i64("tls-port") != 0
        || param(config, "tls-replication") == "yes"
        || param(config, "tls-cluster") == "yes"
}

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
    build_server(config, &param(config, "tls-auth-clients"))
}

/// Every configuration the parameters describe (see `Built`).
fn build_all(config: &Config) -> Result<Built, String> {
    let server = build_server(config, &param(config, "tls-auth-clients"))?;
    let (ca_file, ca_dir) = (param(config, "tls-ca-cert-file"), param(config, "tls-ca-cert-dir"));
    if ca_file.is_empty() && ca_dir.is_empty() {
        return Ok(Built { server, bus: None, client: None });
    }
    let bus = build_server(config, "yes")?;
    let client = build_client(config)?;
    Ok(Built { server, bus: Some(bus), client: Some(client) })
}

/// The rustls configuration of a server side whose client certificates
/// `auth` requires (`tls-auth-clients`' values).
fn build_server(config: &Config, auth: &str) -> Result<Arc<ServerConfig>, String> {
    let cert_file = param(config, "tls-cert-file");
    let key_file = param(config, "tls-key-file");
    if cert_file.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    if key_file.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    let (ca_file, ca_dir) = (param(config, "tls-ca-cert-file"), param(config, "tls-ca-cert-dir"));
    let links = param(config, "tls-replication") == "yes" || param(config, "tls-cluster") == "yes";
    if (auth != "no" || links) && ca_file.is_empty() && ca_dir.is_empty() {
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

/// The rustls configuration of this server's own connections: the
/// certificate it presents (`tls-client-cert-file`, else `tls-cert-file`)
/// and the CAs it trusts.
fn build_client(config: &Config) -> Result<Arc<ClientConfig>, String> {
    let client_cert = param(config, "tls-client-cert-file");
    let (cert_file, key_file, pass) = if client_cert.is_empty() {
        (param(config, "tls-cert-file"), param(config, "tls-key-file"), param(config, "tls-key-file-pass"))
    } else {
        (client_cert, param(config, "tls-client-key-file"), param(config, "tls-client-key-file-pass"))
    };
    if key_file.is_empty() {
        return Err("No tls-client-key-file configured!".into());
    }
    let certs = load_certs(&cert_file)?;
    let key = load_key(&key_file, &pass)?;
    let roots = load_roots(&param(config, "tls-ca-cert-file"), &param(config, "tls-ca-cert-dir"))?;
    let versions = protocols(&param(config, "tls-protocols"))?;
    let mut provider = ring_provider();
    provider.cipher_suites = ciphersuites(&param(config, "tls-ciphersuites"))?;
    let provider = Arc::new(provider);
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("Failed to configure TLS: {e}"))?;
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Failed to configure TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("Failed to load certificate or private key: {cert_file}, {key_file}: {e}"))?;
    Ok(Arc::new(cfg))
}

/// Verifies the peer's certificate chain against the trusted CAs but not
/// the name in it, as Redis does for its replication, cluster bus and
/// MIGRATE connections (OpenSSL's SSL_VERIFY_PEER with no host check):
/// nodes are reached by address, and certificates often name a host.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        // The name is checked after the chain: a name mismatch means the chain is good.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(NotValidForName | NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The name a connection to `host` presents (SNI); any valid name does,
/// since the name is not verified (see `ChainOnly`).
pub fn server_name(host: &str) -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
}

/// A blocking connection this server opened: plain TCP, or TLS over it.
pub enum Link {
    Plain(std::net::TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>),
}

impl Link {
    /// Wraps a connected socket in TLS and completes the handshake within
    /// `timeout` (the socket's read and write timeouts are left at that).
    pub fn tls(
        config: Arc<ClientConfig>,
        mut sock: std::net::TcpStream,
        host: &str,
        timeout: Duration,
    ) -> std::io::Result<Link> {
        let mut conn = rustls::ClientConnection::new(config, server_name(host)).map_err(std::io::Error::other)?;
        sock.set_read_timeout(Some(timeout))?;
        sock.set_write_timeout(Some(timeout))?;
        let deadline = std::time::Instant::now() + timeout;
        while conn.is_handshaking() {
            if std::time::Instant::now() > deadline {
                return Err(std::io::Error::other("TLS handshake timed out"));
            }
            match conn.complete_io(&mut sock) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Err(std::io::Error::other("TLS handshake timed out"));
                }
                Err(e) => return Err(std::io::Error::other(format!("TLS handshake failed: {e}"))),
            }
        }
        Ok(Link::Tls(Box::new(rustls::StreamOwned::new(conn, sock))))
    }

    pub fn socket(&self) -> &std::net::TcpStream {
        match self {
            Link::Plain(s) => s,
            Link::Tls(t) => t.get_ref(),
        }
    }
}

impl std::io::Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Link::Plain(s) => s.read(buf),
            Link::Tls(t) => match t.read(buf) {
                // A peer that closes without close_notify ends the stream.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl std::io::Write for Link {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Link::Plain(s) => s.write(buf),
            Link::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Link::Plain(s) => s.flush(),
            Link::Tls(t) => t.flush(),
        }
    }
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
