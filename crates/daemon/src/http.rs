//! HTTP/1.1 as the incus client speaks it on the unix socket: one request per connection
//! (`Connection: close`), JSON bodies by Content-Length, responses with a status line, headers and
//! a body.

use std::io::{BufRead, BufReader, Read, Write};

/// Request bodies larger than this are refused (image uploads will stream past it).
pub const MAX_BODY: usize = 16 << 20;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// An image upload, streamed to a file in the store (no size limit but the disk's).
    pub body_file: Option<std::path::PathBuf>,
    /// Who sent it (set by the connection's handler).
    pub peer: crate::https::Peer,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the request is malformed: {0}")]
    Malformed(String),
    #[error("the request body is too large")]
    TooLarge,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A body an untrusted HTTPS client may send (a trust token's request).
pub const UNTRUSTED_MAX_BODY: usize = 64 << 10;

/// Reads a line of at most what is left of the headers' 64 KiB (a line without its end can't
/// make the server buffer more).
fn read_header_line<R: BufRead>(
    r: &mut R,
    line: &mut String,
    used: usize,
) -> Result<usize, HttpError> {
    let room = (64 * 1024usize).saturating_sub(used) as u64;
    let n = r.by_ref().take(room + 1).read_line(line)?;
    if used + n > 64 * 1024 {
        return Err(HttpError::Malformed("headers over 64 KiB".into()));
    }
    Ok(n)
}

/// Reads one request; an image upload is streamed to a file in `upload_dir`, when given;
/// other bodies are held to `max_body` bytes (an untrusted client's to
/// [`UNTRUSTED_MAX_BODY`]).
pub fn read_request<R: Read>(
    stream: R,
    upload_dir: Option<&std::path::Path>,
    max_body: usize,
) -> Result<Request, HttpError> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    read_header_line(&mut r, &mut line, 0)?;
    let mut parts = line.split_whitespace();
    let (method, target) = match (parts.next(), parts.next()) {
        (Some(m), Some(t)) => (m.to_string(), t.to_string()),
        _ => return Err(HttpError::Malformed("no request line".into())),
    };
    let mut headers = Vec::new();
    let mut total = line.len();
    loop {
        let mut h = String::new();
        let n = read_header_line(&mut r, &mut h, total)?;
        if n == 0 {
            break;
        }
        total += n;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let (path, query_text) = target.split_once('?').unwrap_or((&target, ""));
    let query = query_text
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let mut req = Request {
        method,
        path: percent_decode(path),
        query,
        headers,
        body: Vec::new(),
        body_file: None,
        peer: crate::https::Peer::Unix,
    };
    let upload = upload_dir.filter(|_| {
        req.method == "POST"
            && req.path.trim_end_matches('/') == "/1.0/images"
            && req.header("content-type").is_some_and(|c| {
                c.starts_with("application/octet-stream") || c.starts_with("multipart/form-data")
            })
    });
    if let Some(upload_dir) = upload {
        std::fs::create_dir_all(upload_dir)?;
        let file = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(upload_dir)?;
        let (mut f, path) = file.keep().map_err(|e| HttpError::Io(e.error))?;
        let copied = match req
            .header("content-length")
            .and_then(|l| l.parse::<u64>().ok())
        {
            Some(len) => std::io::copy(&mut (&mut r).take(len), &mut f).map(|_| ()),
            None => copy_chunked(&mut r, &mut f),
        };
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
        req.body_file = Some(path);
        return Ok(req);
    }
    if let Some(len) = req.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| HttpError::Malformed("bad Content-Length".into()))?;
        if len > max_body {
            return Err(HttpError::TooLarge);
        }
        req.body = vec![0; len];
        r.read_exact(&mut req.body)?;
    } else if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            read_header_line(&mut r, &mut size, 0)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| HttpError::Malformed("bad chunk size".into()))?;
            if n == 0 {
                let mut end = String::new();
                read_header_line(&mut r, &mut end, 0)?;
                break;
            }
            if req.body.len() + n > max_body {
                return Err(HttpError::TooLarge);
            }
            let start = req.body.len();
            req.body.resize(start + n, 0);
            r.read_exact(&mut req.body[start..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    }
    Ok(req)
}

/// The parts of a multipart/form-data body in `file` (the client's split image upload:
/// `metadata` and `rootfs`), each written to a file beside it; (form name, path) pairs.
pub fn split_multipart(
    file: &std::path::Path,
    content_type: &str,
) -> Result<Vec<(String, std::path::PathBuf)>, String> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| format!("--{}", b.trim_matches('"')))
        .ok_or("multipart upload without a boundary")?;
    let data = std::fs::read(file).map_err(|e| e.to_string())?;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)
            .and_then(|h| h.windows(needle.len()).position(|w| w == needle))
            .map(|i| i + from)
    };
    let mut parts = Vec::new();
    let mut pos =
        find(&data, boundary.as_bytes(), 0).ok_or("multipart upload without a first boundary")?;
    loop {
        pos += boundary.len();
        if data.get(pos..pos + 2) == Some(b"--") {
            break;
        }
        let head_end = find(&data, b"\r\n\r\n", pos).ok_or("a multipart part without headers")?;
        let head = String::from_utf8_lossy(&data[pos..head_end]).to_string();
        let name = head
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name="))
            .map(|n| {
                n.split(['\r', '\n'])
                    .next()
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_string()
            })
            .ok_or("a multipart part without a name")?;
        let body_start = head_end + 4;
        let next = find(&data, format!("\r\n{boundary}").as_bytes(), body_start)
            .ok_or("a multipart part without an end")?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            return Err(format!("a multipart part named \"{name}\""));
        }
        let out = file.with_extension(format!("part-{name}"));
        std::fs::write(&out, &data[body_start..next]).map_err(|e| e.to_string())?;
        parts.push((name, out));
        pos = next + 2;
    }
    Ok(parts)
}

/// Copies a chunked body into `out`.
fn copy_chunked<R: BufRead, W: std::io::Write>(r: &mut R, out: &mut W) -> std::io::Result<()> {
    loop {
        let mut size = String::new();
        r.read_line(&mut size)?;
        let n = u64::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| std::io::Error::other("bad chunk size"))?;
        if n == 0 {
            let mut end = String::new();
            r.read_line(&mut end)?;
            return Ok(());
        }
        std::io::copy(&mut r.take(n), out)?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

/// A response ready to write.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A file sent after `body` (image export, file pull), streamed rather than held in memory.
    pub file: Option<std::fs::File>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        _ => "Internal Server Error",
    }
}

pub fn write_response<W: Write>(w: &mut W, resp: &Response) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        reason(resp.status),
        resp.body.len() as u64
            + resp
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len())
    );
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(&resp.body)?;
    if let Some(f) = &resp.file {
        std::io::copy(&mut &*f, w)?;
    }
    w.flush()
}
