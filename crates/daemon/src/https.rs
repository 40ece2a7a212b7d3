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
        /// What its certificate opens (for a trusted one).
        scope: Scope,
    },
}

/// What a trusted client certificate opens (Incus's TLS authorization).
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Everything.
    Full,
    /// `restricted: true`: the listed projects, and nothing that changes the server, the trust
    /// store or a project's own config.
    Projects(Vec<String>),
    /// `type: metrics`: `/1.0/metrics` only.
    Metrics,
}

impl Peer {
    pub fn trusted(&self) -> bool {
        match self {
            Peer::Unix => true,
            Peer::Tls { trusted, .. } => *trusted,
        }
    }

    /// What this peer may reach (the unix socket: everything).
    pub fn scope(&self) -> Scope {
        match self {
            Peer::Unix => Scope::Full,
            Peer::Tls { scope, .. } => scope.clone(),
        }
    }

    /// The certificate's fingerprint, for a TLS client that showed one.
    pub fn fingerprint(&self) -> Option<&str> {
        match self {
            Peer::Unix => None,
            Peer::Tls { fingerprint, .. } => fingerprint.as_deref(),
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
    // the old one goes first when the new one takes its port, and comes back if the new
    // address can't be bound
    let port = |a: &str| {
        parse_address(a)
            .ok()
            .and_then(|a| a.rsplit_once(':').map(|p| p.1.to_string()))
    };
    let same_port = current
        .as_ref()
        .is_some_and(|l| port(&l.address) == port(address));
    let old_address = current.as_ref().map(|l| l.address.clone());
    if same_port {
        if let Some(l) = current.take() {
            l.stop();
        }
    }
    let started = listen(d, address, &bind_to, identity.clone());
    match started {
        Ok(new) => {
            if let Some(l) = current.take() {
                l.stop();
            }
            *current = Some(new);
            Ok(())
        }
        Err(e) => {
            if let (true, Some(old)) = (same_port, old_address) {
                if let Ok(bind_old) = parse_address(&old) {
                    *current = listen(d, &old, &bind_old, identity).ok();
                }
            }
            Err(e)
        }
    }
}

/// A listener on `bind_to` (configured as `address`), its accept loop started.
fn listen(
    d: &Arc<Daemon>,
    address: &str,
    bind_to: &str,
    identity: Arc<Identity>,
) -> Result<Listener, String> {
    let socket = TcpListener::bind(bind_to)
        .map_err(|e| format!("Failed to bind {bind_to} (core.https_address): {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let accept = socket.try_clone().map_err(|e| e.to_string())?;
    let (dd, st) = (d.clone(), stop.clone());
    std::thread::spawn(move || accept_loop(dd, accept, identity, st));
    crate::log::info(&format!("listening on https://{bind_to}"));
    Ok(Listener {
        address: address.to_string(),
        socket,
        stop,
    })
}

/// The addresses `GET /1.0` lists (and a trust token carries): the listener's; for one on
/// every address, the host's global addresses (loopback last), so that a token works from
/// another machine.
pub fn addresses(d: &Daemon) -> Vec<String> {
    let local = {
        let current = d.https.lock().unwrap_or_else(|e| e.into_inner());
        current.as_ref().and_then(|l| l.socket.local_addr().ok())
    };
    let Some(a) = local else {
        return Vec::new();
    };
    if !a.ip().is_unspecified() {
        return vec![a.to_string()];
    }
    let port = a.port();
    let v6_too = a.is_ipv6();
    let mut out: Vec<String> = warren_net::Netlink::open()
        .and_then(|mut nl| nl.addresses(None))
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !c.addr.is_loopback())
        .filter_map(|c| match c.addr {
            std::net::IpAddr::V4(v4) if !v4.is_link_local() => Some(format!("{v4}:{port}")),
            std::net::IpAddr::V6(v6) if v6_too && (v6.segments()[0] & 0xffc0) != 0xfe80 => {
                Some(format!("[{v6}]:{port}"))
            }
            _ => None,
        })
        .collect();
    out.push(format!("127.0.0.1:{port}"));
    out.dedup();
    out
}

/// Connections still in their handshake, or not trusted: what an anonymous client can hold.
static UNTRUSTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// At most this many connections may be handshaking or untrusted at once; more are closed.
const MAX_UNTRUSTED: usize = 64;

/// The handshake must be over by then, however slowly the client trickles it.
const HANDSHAKE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Counts one untrusted connection while it lives.
struct UntrustedSlot;

impl UntrustedSlot {
    fn take() -> Option<UntrustedSlot> {
        let n = UNTRUSTED.fetch_add(1, Ordering::SeqCst);
        if n >= MAX_UNTRUSTED {
            UNTRUSTED.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(UntrustedSlot)
    }
}

impl Drop for UntrustedSlot {
    fn drop(&mut self) {
        UNTRUSTED.fetch_sub(1, Ordering::SeqCst);
    }
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
        let Some(slot) = UntrustedSlot::take() else {
            crate::log::warn("too many HTTPS connections handshaking or untrusted: one refused");
            continue;
        };
        let (d, id) = (d.clone(), identity.clone());
        std::thread::spawn(move || {
            if let Err(e) = serve_tls(&d, stream, &id, slot) {
                crate::log::debug(&format!("https connection: {e}"));
            }
        });
    }
}

/// One TLS connection: the handshake (within a deadline), the client's certificate looked up,
/// then the plaintext relayed to the API handler until either side ends.
fn serve_tls(
    d: &Arc<Daemon>,
    mut tcp: TcpStream,
    identity: &Identity,
    slot: UntrustedSlot,
) -> std::io::Result<()> {
    // small answers (an SFTP acknowledgement, a websocket frame) go out at once, not after
    // the client's delayed ACK
    tcp.set_nodelay(true)?;
    let mut tls =
        rustls::ServerConnection::new(identity.config.clone()).map_err(std::io::Error::other)?;
    let deadline = std::time::Instant::now() + HANDSHAKE_DEADLINE;
    while tls.is_handshaking() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake too slow",
            ));
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        tls.complete_io(&mut tcp)?;
    }
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(None)?;
    let der = tls
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec());
    let fingerprint = der.as_ref().map(|d| hex::encode(Sha256::digest(d)));
    let known = fingerprint.as_ref().and_then(|fp| {
        d.db()
            .certificates()
            .ok()
            .and_then(|l| l.into_iter().find(|c| &c.fingerprint == fp))
    });
    let trusted = known.is_some();
    let scope = match &known {
        Some(c) if c.kind == "metrics" => Scope::Metrics,
        Some(c) if c.restricted => Scope::Projects(c.projects.clone()),
        _ => Scope::Full,
    };
    // a trusted client's connection no longer counts against the anonymous ones
    let _slot = (!trusted).then_some(slot);
    let peer = Peer::Tls {
        certificate: der.as_deref().map(warren_image::fetch::der_to_pem),
        fingerprint,
        trusted,
        scope,
    };
    let (local, handler_end) = UnixStream::pair()?;
    let dd = d.clone();
    std::thread::spawn(move || {
        let _ = dd.connection(handler_end, peer);
    });
    relay(&mut tls, tcp, local)
}

/// Plaintext read from either side in one go: small enough that rustls always takes a whole
/// piece once its previous output is flushed.
const CHUNK: usize = 16 * 1024;

/// Holds plaintext from the client that the handler hasn't taken yet; beyond it, the client is
/// not read until the handler catches up.
const PENDING_MAX: usize = 256 * 1024;

/// Moves bytes between the TLS connection and the handler's end of the socket pair, both
/// non-blocking, each side read only when the other can take what it gives (so a client and a
/// handler both writing large amounts never wait on each other), until the handler has
/// answered and closed and its answer is flushed, or the client is gone.
fn relay(
    tls: &mut rustls::ServerConnection,
    mut tcp: TcpStream,
    mut local: UnixStream,
) -> std::io::Result<()> {
    tcp.set_nonblocking(true)?;
    local.set_nonblocking(true)?;
    let would_block = |e: &std::io::Error| e.kind() == std::io::ErrorKind::WouldBlock;
    let mut to_handler: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    // client_eof: nothing more will come from the client; handler_closed_read: the handler
    // takes nothing more (what the client sends is dropped); handler_done: it closed
    let (mut client_eof, mut handler_closed_read, mut handler_done) = (false, false, false);
    loop {
        // plaintext rustls holds (some may have come with the handshake)
        if !handler_closed_read && to_handler.len() < PENDING_MAX {
            loop {
                match tls.reader().read(&mut buf) {
                    Ok(0) => {
                        client_eof = true;
                        break;
                    }
                    Ok(n) => to_handler.extend_from_slice(&buf[..n]),
                    Err(e) if would_block(&e) => break,
                    Err(_) => {
                        client_eof = true;
                        break;
                    }
                }
                if to_handler.len() >= PENDING_MAX {
                    break;
                }
            }
        }
        // to the handler, as much as it takes now
        while !to_handler.is_empty() && !handler_closed_read {
            match local.write(&to_handler) {
                Ok(n) => {
                    to_handler.drain(..n);
                }
                Err(e) if would_block(&e) => break,
                Err(_) => {
                    // the handler stopped reading (it answered already): keep its answer coming
                    handler_closed_read = true;
                    to_handler.clear();
                }
            }
        }
        if client_eof && to_handler.is_empty() && !handler_closed_read {
            let _ = local.shutdown(std::net::Shutdown::Write);
            handler_closed_read = true;
        }
        // to the client, as much as the socket takes now
        while tls.wants_write() {
            match tls.write_tls(&mut tcp) {
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(e),
            }
        }
        if handler_done && !tls.wants_write() {
            let _ = tcp.shutdown(std::net::Shutdown::Write);
            linger(&mut tcp, client_eof);
            return Ok(());
        }
        let read_client = !client_eof && to_handler.len() < PENDING_MAX;
        let read_handler = !handler_done && !tls.wants_write();
        let mut tcp_events = PollFlags::empty();
        if read_client {
            tcp_events |= PollFlags::POLLIN;
        }
        if tls.wants_write() {
            tcp_events |= PollFlags::POLLOUT;
        }
        let mut local_events = PollFlags::empty();
        if read_handler {
            local_events |= PollFlags::POLLIN;
        }
        if !to_handler.is_empty() && !handler_closed_read {
            local_events |= PollFlags::POLLOUT;
        }
        // a side is watched only for what is wanted of it: a hung-up socket asked for nothing
        // would report POLLHUP on every turn
        let (tcp_r, local_r) = {
            let mut fds = Vec::with_capacity(2);
            if !tcp_events.is_empty() {
                fds.push(PollFd::new(tcp.as_fd(), tcp_events));
            }
            if !local_events.is_empty() {
                fds.push(PollFd::new(local.as_fd(), local_events));
            }
            if fds.is_empty() {
                return Ok(());
            }
            poll(&mut fds, PollTimeout::NONE).map_err(std::io::Error::from)?;
            let mut it = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()));
            let tcp_r = if tcp_events.is_empty() {
                PollFlags::empty()
            } else {
                it.next().unwrap_or(PollFlags::empty())
            };
            let local_r = if local_events.is_empty() {
                PollFlags::empty()
            } else {
                it.next().unwrap_or(PollFlags::empty())
            };
            (tcp_r, local_r)
        };
        // the client's socket failed (a reset) or is closed both ways: nobody to answer
        if tcp_r.contains(PollFlags::POLLERR)
            || (tcp_r.contains(PollFlags::POLLHUP) && !read_client)
        {
            return Ok(());
        }
        if read_client && tcp_r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match tls.read_tls(&mut tcp) {
                Ok(0) => client_eof = true,
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        // tell the client why, then stop
                        let _ = tls.write_tls(&mut tcp);
                        return Err(std::io::Error::other(e));
                    }
                }
                Err(e) if would_block(&e) => {}
                Err(_) => return Ok(()),
            }
        }
        if read_handler && local_r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match local.read(&mut buf) {
                Ok(0) => {
                    handler_done = true;
                    tls.send_close_notify();
                }
                Ok(n) => tls.writer().write_all(&buf[..n])?,
                Err(e) if would_block(&e) => {}
                Err(_) => {
                    handler_done = true;
                    tls.send_close_notify();
                }
            }
        }
    }
}

/// After the answer went out: what the client is still sending (a body the handler refused
/// unread) is read and dropped for a moment, so that closing doesn't reset the connection
/// before the client has read the answer.
fn linger(tcp: &mut TcpStream, client_eof: bool) {
    if client_eof {
        return;
    }
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(std::time::Duration::from_millis(500)));
    let mut sink = [0u8; 16 * 1024];
    let mut left: usize = 4 << 20;
    while left > 0 {
        match tcp.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}
