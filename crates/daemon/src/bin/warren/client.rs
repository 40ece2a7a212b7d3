//! The `warren` client's connection to warrend: HTTP over its unix socket (`$WARREN_DIR/unix.socket`,
//! or `$WARREN_SOCKET`), operations waited for (with their progress on a terminal), and the
//! websockets of exec and console.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

static PROJECT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The project every request works in (`--project`, else the one `project switch` chose).
pub fn set_project(project: &str) {
    let _ = PROJECT.set(project.to_string());
}

/// `path` with `project=` added for a project other than default (the server's and the
/// projects' own endpoints need none; a path naming its project keeps it).
pub fn with_project(path: &str) -> String {
    match PROJECT.get().map(String::as_str) {
        Some(p)
            if p != "default"
                && path.starts_with("/1.0/")
                && !path.starts_with("/1.0/projects")
                && !path.contains("project=") =>
        {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{path}{sep}project={p}")
        }
        _ => path.to_string(),
    }
}

/// `--debug`: every request and its answer's status on stderr.
pub fn set_debug(on: bool) {
    DEBUG.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn socket() -> PathBuf {
    std::env::var_os("WARREN_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| warren_daemon::warren_dir().join("unix.socket"))
}

fn connect() -> Result<UnixStream> {
    let path = socket();
    UnixStream::connect(&path).with_context(|| {
        format!(
            "connect to warrend at {} (is warrend running? is this user in group warren-admin?)",
            path.display()
        )
    })
}

/// One request to warrend; returns (status, JSON body).
pub fn request(method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
    let path = &with_project(path);
    let mut s = connect()?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: unix.socket\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    if DEBUG.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("DEBUG {method} {path} {body} -> {status} {}", json.trim());
    }
    Ok((status, serde_json::from_str(json).unwrap_or(Value::Null)))
}

pub fn check(what: &str, (status, body): (u16, Value)) -> Result<()> {
    if status >= 400 {
        bail!("{what}: {}", body["error"].as_str().unwrap_or("failed"));
    }
    Ok(())
}

/// A request's metadata (for an operation: the operation as first reported, with its id and
/// its websockets' secrets); an error envelope is the error.
pub fn sync(method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let (status, v) = request(method, path, body)?;
    if status >= 400 || v["type"] == "error" {
        bail!(
            "{}",
            v["error"].as_str().unwrap_or("warrend refused the request")
        );
    }
    Ok(v["metadata"].clone())
}

/// Starts an operation and waits for it; its final metadata. On a terminal, a download's
/// progress is shown meanwhile.
pub fn operation(method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let op = sync(method, path, body)?;
    let id = op["id"]
        .as_str()
        .ok_or_else(|| anyhow!("warrend answered without an operation"))?
        .to_string();
    wait(&id)
}

/// Waits for operation `id` to end.
pub fn wait(id: &str) -> Result<Value> {
    let tty = nix::unistd::isatty(std::io::stderr()).unwrap_or(false);
    let mut shown = false;
    loop {
        let op = sync("GET", &format!("/1.0/operations/{id}/wait?timeout=1"), None)?;
        let code = op["status_code"].as_u64().unwrap_or(0);
        if code >= 200 {
            if shown {
                eprint!("\r\x1b[K");
            }
            if code != 200 {
                bail!("{}", op["err"].as_str().unwrap_or("the operation failed"));
            }
            return Ok(op["metadata"].clone());
        }
        let meta = &op["metadata"];
        let progress = meta["download_progress"]
            .as_str()
            .map(|p| format!("Retrieving image: {p}"))
            .or_else(|| {
                meta["create_instance_from_image_unpack_progress"]
                    .as_str()
                    .map(str::to_string)
            });
        if let (true, Some(p)) = (tty, progress) {
            eprint!("\r\x1b[K{p}");
            shown = true;
        }
    }
}

/// Opens an operation's websocket (`secret`), already upgraded.
pub fn websocket(id: &str, secret: &str) -> Result<UnixStream> {
    websocket_at(&format!("/1.0/operations/{id}/websocket?secret={secret}"))
}

/// A GET whose answer isn't JSON (the console's log): (status, body).
pub fn get_raw(path: &str) -> Result<(u16, Vec<u8>)> {
    let path = &with_project(path);
    let mut s = connect()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: unix.socket\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let status = String::from_utf8_lossy(&out[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, out.get(split + 4..).unwrap_or_default().to_vec()))
}

/// Opens the websocket at `path` (an operation's stream, or the events), upgraded.
pub fn websocket_at(path: &str) -> Result<UnixStream> {
    let path = &with_project(path);
    let mut s = connect()?;
    let mut key = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut key);
    }
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: unix.socket\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    )?;
    // the answer's head, byte by byte: what follows it is the stream's
    let mut reader = BufReader::with_capacity(1, s.try_clone()?);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    if !status.contains(" 101 ") {
        bail!("warrend refused the websocket: {}", status.trim());
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    Ok(s)
}
