//! The `warren` client's connection to warrend: one HTTP request per call over its unix socket.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};

/// One request to warrend; returns (status, JSON body).
pub fn request(
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    let socket = warren_daemon::warren_dir().join("unix.socket");
    let mut s = std::os::unix::net::UnixStream::connect(&socket).with_context(|| {
        format!(
            "connect to warrend at {} (is warrend running?)",
            socket.display()
        )
    })?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: unix.socket\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    ))
}

pub fn check(what: &str, (status, body): (u16, serde_json::Value)) -> Result<()> {
    if status >= 400 {
        bail!("{what}: {}", body["error"].as_str().unwrap_or("failed"));
    }
    Ok(())
}
