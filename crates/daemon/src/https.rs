//! warrend's HTTPS listener (`core.https_address`), as incusd's: TLS with the server's own
//! certificate (`server.crt`, made on first use), clients known by their certificate's SHA-256
//! fingerprint. A trusted client (added through `incus config trust add`'s token, or by
//! certificate) reaches the whole API; an untrusted one only `GET /1.0` and the token exchange.
//! Each connection's TLS ends here and its plaintext goes through a socket pair to the handler
//! the unix socket has, so exec, console and file transfer work the same over the network.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::Daemon;

/// Incus's port when `core.https_address` names none.
const DEFAULT_PORT: u16 = 8443;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Peer {
    /// The unix socket: its file permissions already decided.
    Unix,
    /// A TLS client; `certificate` (PEM) and `fingerprint` when it showed one.
    Tls {
        fingerprint: Option<String>,
        certificate: Option<String>,
        trusted: bool,
    },
}

impl Peer {
    pub fn trusted(&self) -> bool {
        match self {
            Peer::Unix => true,
            Peer::Tls { trusted, .. } => *trusted,
        }
    }
}

/// The server's certificate and the TLS config made with it.
pub struct Identity {
    pub certificate: String,
    pub fingerprint: String,
    config: Arc<rustls::ServerConfig>,
}

/// The server's certificate (`$WARREN_DIR/server.crt` and `server.key`, made on first use),
/// read once.
pub fn identity(dir: &Path) -> Result<Arc<Identity>, String> {
    static CACHE: std::sync::Mutex<Vec<(std::path::PathBuf, Arc<Identity>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, id)) = cache.iter().find(|(d, _)| d == dir) {
        return Ok(id.clone());
    }
    let id = Arc::new(load_identity(dir)?);
    cache.push((dir.to_path_buf(), id.clone()));
    Ok(id)
}

fn load_identity(dir: &Path) -> Result<Identity, String> {
    use rustls::pki_types::pem::PemObject;
    let (cert_path, key_path) = (dir.join("server.crt"), dir.join("server.key"));
    if !cert_path.exists() || !key_path.exists() {
        warren_image::server::make_self_signed(dir, &cert_path, &key_path)
            .map_err(|e| e.to_string())?;
    }
    let cert_pem =
        std::fs::read_to_string(&cert_path).map_err(|e| format!("{}: {e}", cert_path.display()))?;
    let key_pem =
        std::fs::read_to_string(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    let der = certs
        .first()
        .ok_or_else(|| format!("{}: no certificate in it", cert_path.display()))?;
    let fingerprint = hex::encode(Sha256::digest(der));
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(Arc::new(AnyClientCert(provider)))
        .with_single_cert(certs, key)
        .map_err(|e| format!("server certificate: {e}"))?;
    Ok(Identity {
        certificate: cert_pem,
        fingerprint,
        config: Arc::new(config),
    })
}

/// Asks every client for a certificate and takes any that proves its key (self-signed, as the
/// incus client's are): whether it is trusted is decided by its fingerprint, after the handshake.
#[derive(Debug)]
struct AnyClientCert(Arc<rustls::crypto::CryptoProvider>);

impl ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }
}

/// The listener running now: its address as configured, and how to stop it.
pub struct Listener {
    pub address: String,
    socket: TcpListener,
    stop: Arc<AtomicBool>,
}

impl Listener {
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        // wakes the accept loop, which sees the flag
        let _ = nix::sys::socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.socket),
            nix::sys::socket::Shutdown::Both,
        );
    }
}

/// `core.https_address` as a socket address: `HOST:PORT`, `HOST` (port 8443), `:PORT` (every
/// address), `[V6]:PORT`.
pub fn parse_address(address: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "Invalid value for core.https_address: {address:?} (HOST:PORT, HOST, :PORT or [IPv6]:PORT)"
        )
    };
    let with_port = if let Some(port) = address.strip_prefix(':') {
        format!("[::]:{port}")
    } else if address.parse::<std::net::IpAddr>().is_ok() {
        match address.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{address}]:{DEFAULT_PORT}"),
            Err(_) => format!("{address}:{DEFAULT_PORT}"),
        }
    } else if address.starts_with('[') && address.ends_with(']') {
        format!("{address}:{DEFAULT_PORT}")
    } else if address.contains(':') {
        address.to_string()
    } else {
        format!("{address}:{DEFAULT_PORT}")
    };
    let (host, port) = with_port.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(with_port)
}

/// Makes the listener match `address` (empty: none): the new one is bound before the old one
/// goes, so a bad address changes nothing.
pub fn apply(d: &Arc<Daemon>, address: &str) -> Result<(), String> {
    let mut current = d.https.lock().unwrap_or_else(|e| e.into_inner());
    if current.as_ref().map(|l| l.address.as_str()) == Some(address) {
        return Ok(());
    }
    if address.is_empty() {
        if let Some(l) = current.take() {
            l.stop();
        }
        return Ok(());
    }
    let identity = identity(&d.dir)?;
    let bind_to = parse_address(address)?;
    // the old one goes first when the new one takes its port
    let same_port = current
        .as_ref()
        .and_then(|l| parse_address(&l.address).ok())
        .is_some_and(|a| a.rsplit_once(':').map(|p| p.1) == bind_to.rsplit_once(':').map(|p| p.1));
    let old = if same_port { current.take() } else { None };
    if let Some(l) = old {
        l.stop();
    }
    let socket = TcpListener::bind(&bind_to)
        .map_err(|e| format!("Failed to bind {bind_to} (core.https_address): {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let accept = socket.try_clone().map_err(|e| e.to_string())?;
    let (dd, st) = (d.clone(), stop.clone());
    std::thread::spawn(move || accept_loop(dd, accept, identity, st));
    if let Some(l) = current.take() {
        l.stop();
    }
    crate::log::info(&format!("listening on https://{bind_to}"));
    *current = Some(Listener {
        address: address.to_string(),
        socket,
        stop,
    });
    Ok(())
}

/// The addresses `GET /1.0` lists (and a trust token carries): the listener's.
pub fn addresses(d: &Daemon) -> Vec<String> {
    let current = d.https.lock().unwrap_or_else(|e| e.into_inner());
    current
        .as_ref()
        .and_then(|l| l.socket.local_addr().ok())
        .map(|a| {
            if a.ip().is_unspecified() {
                // every address: the loopback one is one that works
                vec![format!("127.0.0.1:{}", a.port())]
            } else {
                vec![a.to_string()]
            }
        })
        .unwrap_or_default()
}

fn accept_loop(
    d: Arc<Daemon>,
    socket: TcpListener,
    identity: Arc<Identity>,
    stop: Arc<AtomicBool>,
) {
    for stream in socket.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        };
        let (d, id) = (d.clone(), identity.clone());
        std::thread::spawn(move || {
            if let Err(e) = serve_tls(&d, stream, &id) {
                crate::log::debug(&format!("https connection: {e}"));
            }
        });
    }
}

/// One TLS connection: the handshake, the client's certificate looked up, then the plaintext
/// relayed to the API handler until either side ends.
fn serve_tls(d: &Arc<Daemon>, mut tcp: TcpStream, identity: &Identity) -> std::io::Result<()> {
    let mut tls =
        rustls::ServerConnection::new(identity.config.clone()).map_err(std::io::Error::other)?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp)?;
    }
    tcp.set_read_timeout(None)?;
    let der = tls
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec());
    let fingerprint = der.as_ref().map(|d| hex::encode(Sha256::digest(d)));
    let trusted = fingerprint.as_ref().is_some_and(|fp| {
        d.db()
            .certificates()
            .is_ok_and(|l| l.iter().any(|c| &c.fingerprint == fp))
    });
    let peer = Peer::Tls {
        certificate: der.as_deref().map(warren_image::fetch::der_to_pem),
        fingerprint,
        trusted,
    };
    let (local, handler_end) = UnixStream::pair()?;
    let dd = d.clone();
    std::thread::spawn(move || {
        let _ = dd.connection(handler_end, peer);
    });
    relay(&mut tls, &mut tcp, local)
}

/// Moves bytes between the TLS connection and the handler's end of the socket pair until both
/// directions are done (or the client goes).
fn relay(
    tls: &mut rustls::ServerConnection,
    tcp: &mut TcpStream,
    mut local: UnixStream,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut client_done, mut handler_done) = (false, false);
    if !drain(tls, &mut local, &mut buf, &mut client_done) {
        return Ok(());
    }
    loop {
        while tls.wants_write() {
            tls.write_tls(tcp)?;
        }
        // the handler answered and closed (its response is flushed above): done
        if handler_done {
            return Ok(());
        }
        let (tcp_ready, local_ready) = {
            let mut fds = vec![PollFd::new(tcp.as_fd(), PollFlags::POLLIN)];
            if !handler_done {
                fds.push(PollFd::new(local.as_fd(), PollFlags::POLLIN));
            }
            if client_done {
                fds[0] = PollFd::new(tcp.as_fd(), PollFlags::empty());
            }
            poll(&mut fds, PollTimeout::NONE).map_err(std::io::Error::from)?;
            let ready = |f: &PollFd| {
                f.revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            };
            (
                !client_done && ready(&fds[0]),
                fds.get(1).is_some_and(ready),
            )
        };
        if tcp_ready {
            if tls.read_tls(tcp)? == 0 {
                client_done = true;
                let _ = local.shutdown(std::net::Shutdown::Write);
            }
            tls.process_new_packets().map_err(std::io::Error::other)?;
        }
        // plaintext may also have come with the handshake, before any poll
        if !drain(tls, &mut local, &mut buf, &mut client_done) {
            handler_done = true;
        }
        if local_ready {
            match local.read(&mut buf) {
                Ok(0) | Err(_) => {
                    handler_done = true;
                    tls.send_close_notify();
                }
                Ok(n) => tls.writer().write_all(&buf[..n])?,
            }
        }
    }
}

/// Hands the plaintext rustls holds to the handler; false when the handler is gone. A
/// close_notify from the client ends its direction.
fn drain(
    tls: &mut rustls::ServerConnection,
    local: &mut UnixStream,
    buf: &mut [u8],
    client_done: &mut bool,
) -> bool {
    loop {
        match tls.reader().read(buf) {
            Ok(0) => {
                *client_done = true;
                let _ = local.shutdown(std::net::Shutdown::Write);
                return true;
            }
            Ok(n) => {
                if local.write_all(&buf[..n]).is_err() {
                    return false;
                }
            }
            // WouldBlock: nothing more for now; anything else: the client's side is over
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => {
                *client_done = true;
                let _ = local.shutdown(std::net::Shutdown::Write);
                return true;
            }
        }
    }
}
