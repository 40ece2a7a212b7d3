//! A static image server for a published tree: HTTPS (rustls; a self-signed certificate made on first
//! start and kept beside the tree, or one's own) and plain HTTP on the same port (Incus fetches image
//! files over plain HTTP first), GET and HEAD, single byte ranges, ETags, content types. Files are
//! opened beneath the tree without following symlinks; dot-files (staged indexes) are never served.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Setup(String),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// A certificate and key for the server, and the certificate's SHA-256 fingerprint.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_path: PathBuf,
    pub fingerprint: String,
}

/// `--cert`/`--key`, or the tree's own self-signed pair (made on first use in
/// `<parent>/.<tree>-tls/`, beside the tree so it is never served).
pub fn identity(
    tree: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Identity, ServeError> {
    let setup = |m: String| ServeError::Setup(m);
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        (None, None) => {
            let tree = std::fs::canonicalize(tree)
                .map_err(|e| setup(format!("{}: {e}", tree.display())))?;
            let name = tree
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "tree".into());
            let dir = tree
                .parent()
                .unwrap_or(Path::new("/"))
                .join(format!(".{name}-tls"));
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                make_self_signed(&dir, &c, &k)?;
            }
            (c, k)
        }
        _ => return Err(setup("--cert and --key go together".into())),
    };
    let cert_pem = std::fs::read_to_string(&cert_path)
        .map_err(|e| setup(format!("{}: {e}", cert_path.display())))?;
    let key_pem = std::fs::read_to_string(&key_path)
        .map_err(|e| setup(format!("{}: {e}", key_path.display())))?;
    let der = first_cert_der(&cert_pem)
        .ok_or_else(|| setup(format!("{}: no certificate in it", cert_path.display())))?;
    Ok(Identity {
        cert_pem,
        key_pem,
        cert_path,
        fingerprint: hex::encode(Sha256::digest(&der)),
    })
}

fn first_cert_der(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()
        .map(|c| c.to_vec())
}

/// A self-signed certificate (ECDSA) for localhost, 127.0.0.1, ::1 and the host's name, written to
/// `cert` and `key` (mode 0600) in `dir` (made 0700 if missing).
pub fn make_self_signed(dir: &Path, cert: &Path, key: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let setup = |m: String| ServeError::Setup(m);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| setup(format!("{}: {e}", dir.display())))?;
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into());
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        host,
    ];
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| setup(format!("generate a certificate: {e}")))?;
    std::fs::write(cert, ck.cert.pem()).map_err(|e| setup(format!("{}: {e}", cert.display())))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key)
        .map_err(|e| setup(format!("{}: {e}", key.display())))?;
    f.write_all(ck.key_pair.serialize_pem().as_bytes())
        .map_err(|e| setup(format!("{}: {e}", key.display())))?;
    Ok(())
}

fn tls_config(id: &Identity) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let setup = |m: String| ServeError::Setup(m);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| setup(format!("certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())
        .map_err(|e| setup(format!("key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| setup(format!("certificate and key: {e}")))?;
    Ok(Arc::new(cfg))
}

/// Serves `root` on `listener` until the process ends. With `identity`, TLS connections are
/// accepted beside plain HTTP on the same port; without, plain HTTP only.
pub fn serve(
    root: &Path,
    listener: TcpListener,
    identity: Option<&Identity>,
) -> Result<(), ServeError> {
    let root = Arc::new(
        std::fs::canonicalize(root)
            .map_err(|e| ServeError::Setup(format!("{}: {e}", root.display())))?,
    );
    let tls = identity.map(tls_config).transpose()?;
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // a bound on connections: beyond it a client waits for its turn in the kernel's backlog
        while active.load(Ordering::SeqCst) >= 64 {
            std::thread::sleep(Duration::from_millis(5));
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (root, tls, active) = (root.clone(), tls.clone(), active.clone());
        std::thread::spawn(move || {
            let _ = connection(stream, &root, tls);
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

pub fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), ServeError> {
    let l = TcpListener::bind(addr).map_err(|source| ServeError::Listen {
        addr: addr.to_string(),
        source,
    })?;
    let a = l.local_addr().map_err(|source| ServeError::Listen {
        addr: addr.to_string(),
        source,
    })?;
    Ok((l, a))
}

fn connection(
    stream: TcpStream,
    root: &Path,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<()> {
    // responses are written as head then body: without TCP_NODELAY each small one waits for the
    // client's delayed ACK (40 ms a request)
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(120)))?;
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first)?;
    if n == 1 && first[0] == 0x16 {
        let Some(cfg) = tls else { return Ok(()) };
        let conn = rustls::ServerConnection::new(cfg).map_err(std::io::Error::other)?;
        let tls_stream = rustls::StreamOwned::new(conn, stream);
        http(tls_stream, root)
    } else {
        http(stream, root)
    }
}

/// HTTP/1.1 requests on one connection, kept alive until the client closes or asks to.
fn http<S: Read + Write>(stream: S, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut total = request_line.len();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            total += line.len();
            if total > 32 * 1024 {
                return respond_status(
                    reader.get_mut(),
                    431,
                    "Request Header Fields Too Large",
                    true,
                );
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let mut parts = request_line.split_whitespace();
        let (method, target, version) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let close = header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"))
            || version == "HTTP/1.0";
        let stream = reader.get_mut();
        if method != "GET" && method != "HEAD" {
            respond_status(stream, 405, "Method Not Allowed", close)?;
        } else {
            serve_file(
                stream,
                root,
                target,
                method == "HEAD",
                header("range"),
                header("if-none-match"),
                close,
            )?;
        }
        stream.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn respond_status<W: Write>(
    w: &mut W,
    code: u16,
    reason: &str,
    close: bool,
) -> std::io::Result<()> {
    let body = format!("{code} {reason}\n");
    write!(
        w,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
}

/// The file for a request path: percent-decoded, no `..`, no dot-files, opened beneath the root
/// with no symlink followed.
fn open_beneath(root: &Path, target: &str) -> Option<std::fs::File> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let path = target.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let mut comps = Vec::new();
    for c in decoded.split('/') {
        match c {
            "" | "." => continue,
            c if c.starts_with('.') || c.contains('\0') => return None,
            c => comps.push(c),
        }
    }
    if comps.is_empty() {
        return None;
    }
    let dir = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = openat2(&dir, comps.join("/").as_str(), how).ok()?;
    let f = std::fs::File::from(fd);
    f.metadata().ok().filter(|m| m.is_file())?;
    Some(f)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(target: &str) -> &'static str {
    let name = target.rsplit('/').next().unwrap_or("");
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("json") => "application/json",
        Some("xz") => "application/x-xz",
        Some("zst") => "application/zstd",
        Some("gz") => "application/gzip",
        Some("asc") => "application/pgp-signature",
        Some("yaml") => "application/yaml",
        _ if name.starts_with("index-") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` of a file of `size` bytes: Some(Ok(range)), Some(Err) when
/// unsatisfiable, None when absent or not a single range (the whole file is sent).
fn parse_range(h: Option<&str>, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = h?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let r = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || size == 0 {
            return Some(Err(()));
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>().ok()?.min(size.saturating_sub(1))
        };
        if start >= size || start > end {
            return Some(Err(()));
        }
        (start, end)
    };
    Some(Ok(r))
}

#[allow(clippy::too_many_arguments)]
fn serve_file<W: Write>(
    w: &mut W,
    root: &Path,
    target: &str,
    head: bool,
    range: Option<&str>,
    if_none_match: Option<&str>,
    close: bool,
) -> std::io::Result<()> {
    let Some(mut file) = open_beneath(root, target) else {
        return respond_status(w, 404, "Not Found", close);
    };
    let md = file.metadata()?;
    let size = md.len();
    use std::os::unix::fs::MetadataExt;
    let etag = format!(
        "\"{:x}-{:x}-{:x}\"",
        md.ino(),
        size,
        md.mtime() as u64 * 1_000_000_000 + md.mtime_nsec() as u64
    );
    let conn = if close { "Connection: close\r\n" } else { "" };
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return write!(w, "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n{conn}\r\n");
    }
    let (status, start, end) = match parse_range(range, size) {
        Some(Ok((a, b))) => ("206 Partial Content", a, b),
        Some(Err(())) => {
            return write!(w, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\nContent-Length: 0\r\n{conn}\r\n");
        }
        None => ("200 OK", 0, size.saturating_sub(1)),
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    let mut head_text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\nContent-Length: {len}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n{conn}",
        content_type(target)
    );
    if status.starts_with("206") {
        head_text.push_str(&format!("Content-Range: bytes {start}-{end}/{size}\r\n"));
    }
    head_text.push_str("\r\n");
    w.write_all(head_text.as_bytes())?;
    if head || len == 0 {
        return Ok(());
    }
    file.seek(SeekFrom::Start(start))?;
    std::io::copy(&mut file.take(len), w)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Some(Ok((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Some(Ok((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Some(Ok((90, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Some(Err(())));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), None);
        assert_eq!(parse_range(None, 100), None);
    }

    #[test]
    fn paths_stay_beneath_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/f"), "x").unwrap();
        std::fs::write(d.path().join("a/.hidden"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("a/link")).unwrap();
        assert!(open_beneath(d.path(), "/a/f").is_some());
        assert!(open_beneath(d.path(), "/a/%66").is_some());
        for bad in [
            "/a/../../etc/passwd",
            "/a/%2e%2e/%2e%2e/etc/passwd",
            "/a/.hidden",
            "/a/link",
            "/a",
            "/",
        ] {
            assert!(open_beneath(d.path(), bad).is_none(), "{bad}");
        }
    }
}
