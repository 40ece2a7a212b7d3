//! `/1.0/instances/<name>/files?path=...` (GET, HEAD, POST, DELETE): Incus's older file API,
//! which other clients than incus 6.0.4's CLI still use. Paths resolve inside the container's
//! rootfs exactly as over SFTP (openat2 RESOLVE_IN_ROOT, `sftp::Root`), so a symlink in the
//! container can never reach a host file.

use crate::api::{self, ApiError};
use crate::http::{Request, Response};
use crate::sftp::{self, Root};
use nix::fcntl::OFlag;
use serde_json::json;
use std::io::Write;

fn errno(e: nix::errno::Errno, path: &str) -> ApiError {
    let status = match e {
        nix::errno::Errno::ENOENT => 404,
        nix::errno::Errno::EACCES | nix::errno::Errno::EPERM => 403,
        _ => 400,
    };
    ApiError::new(status, format!("{path}: {}", e.desc()))
}

fn file_type(mode: u32) -> &'static str {
    match mode & libc_s_ifmt() {
        0o040000 => "directory",
        0o120000 => "symlink",
        0o100000 => "file",
        _ => "other",
    }
}

const fn libc_s_ifmt() -> u32 {
    0o170000
}

fn headers(root: &Root, st: &sftp::St) -> Vec<(String, String)> {
    vec![
        ("X-Incus-uid".into(), root.to_container(st.uid).to_string()),
        ("X-Incus-gid".into(), root.to_container(st.gid).to_string()),
        ("X-Incus-mode".into(), format!("{:04o}", st.mode & 0o7777)),
        ("X-Incus-type".into(), file_type(st.mode).into()),
        ("X-Incus-modified".into(), crate::time::from_unix(st.mtime)),
    ]
}

fn path_of(req: &Request) -> Result<String, ApiError> {
    match req.query("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request(
            "Missing the path query parameter (?path=/file/in/the/instance)",
        )),
    }
}

/// GET (content, a listing or a link's target) and HEAD (the headers only).
pub fn get(root: &Root, req: &Request, head: bool) -> Result<Response, ApiError> {
    let path = path_of(req)?;
    let st = sftp::lstat(root, &path).map_err(|e| errno(e, &path))?;
    let mut headers = headers(root, &st);
    let body_kind = file_type(st.mode);
    if head {
        return Ok(Response {
            status: 200,
            headers,
            body: Vec::new(),
            file: None,
        });
    }
    match body_kind {
        "file" => {
            let fd = root
                .resolve(&path, OFlag::O_RDONLY | OFlag::O_NOFOLLOW, 0)
                .map_err(|e| errno(e, &path))?;
            headers.push(("Content-Type".into(), "application/octet-stream".into()));
            Ok(Response {
                status: 200,
                headers,
                body: Vec::new(),
                file: Some(std::fs::File::from(fd)),
            })
        }
        "symlink" => {
            let (dir, name) = root.parent(&path).map_err(|e| errno(e, &path))?;
            let target =
                nix::fcntl::readlinkat(&dir, name.as_str()).map_err(|e| errno(e, &path))?;
            headers.push(("Content-Type".into(), "application/octet-stream".into()));
            Ok(Response {
                status: 200,
                headers,
                body: target.to_string_lossy().into_owned().into_bytes(),
                file: None,
            })
        }
        "directory" => {
            let fd = root
                .resolve(&path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)
                .map_err(|e| errno(e, &path))?;
            let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| errno(e, &path))?;
            let mut names: Vec<String> = dir
                .iter()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "." && n != "..")
                .collect();
            names.sort();
            let mut r = api::sync(json!(names));
            r.headers.extend(headers);
            Ok(r)
        }
        _ => Err(ApiError::bad_request(format!(
            "{path}: not a regular file, directory or symlink"
        ))),
    }
}

fn header_id(req: &Request, name: &str) -> Result<Option<u32>, ApiError> {
    match req.header(name) {
        None | Some("") | Some("-1") => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|id| u64::from(*id) < crate::instances::IDMAP_SIZE)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("{name}: \"{v}\" is not a valid id"))),
    }
}

/// POST: a file (overwrite or append), a directory or a symlink, with owner and mode from the
/// X-Incus-* headers (container ids).
pub fn post(root: &Root, req: &Request) -> Result<Response, ApiError> {
    let path = path_of(req)?;
    let uid = header_id(req, "x-incus-uid")?;
    let gid = header_id(req, "x-incus-gid")?;
    let mode = match req.header("x-incus-mode") {
        None | Some("") => None,
        Some(m) => Some(
            u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("X-Incus-mode: \"{m}\" is not an octal mode"))
                })?,
        ),
    };
    let kind = req.header("x-incus-type").unwrap_or("file");
    // what the request doesn't say: a new file is the container's root's (its ids map through
    // the container's map), an existing one keeps its owner
    let existed = sftp::lstat(root, &path).is_ok();
    let attrs = |default_mode: u32| sftp::Attrs {
        uidgid: match (uid, gid) {
            (None, None) if existed => None,
            (u, g) => Some((u.unwrap_or(0), g.unwrap_or(0))),
        },
        perms: mode.or(Some(default_mode)),
        ..Default::default()
    };
    match kind {
        "file" => {
            let append = match req.header("x-incus-write").unwrap_or("overwrite") {
                "overwrite" => false,
                "append" => true,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "X-Incus-write: \"{other}\" (overwrite or append)"
                    )))
                }
            };
            let flags = OFlag::O_WRONLY
                | OFlag::O_CREAT
                | if append {
                    OFlag::O_APPEND
                } else {
                    OFlag::O_TRUNC
                };
            let fd = root
                .resolve(&path, flags, mode.unwrap_or(0o644))
                .map_err(|e| errno(e, &path))?;
            let mut file = std::fs::File::from(fd);
            file.write_all(&req.body)
                .map_err(|e| ApiError::new(500, format!("{path}: {e}")))?;
            let fd = std::os::fd::OwnedFd::from(file);
            // an existing file keeps what the request doesn't say
            let a = if existed && mode.is_none() {
                sftp::Attrs {
                    perms: None,
                    ..attrs(0)
                }
            } else {
                attrs(0o644)
            };
            sftp::set_attrs(root, &fd, &a).map_err(|e| errno(e, &path))?;
        }
        "directory" => {
            let (dir, name) = root.parent(&path).map_err(|e| errno(e, &path))?;
            match nix::sys::stat::mkdirat(
                &dir,
                name.as_str(),
                nix::sys::stat::Mode::from_bits_truncate(mode.unwrap_or(0o755)),
            ) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(errno(e, &path)),
            }
            let fd = root
                .resolve(
                    &path,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                    0,
                )
                .map_err(|e| errno(e, &path))?;
            sftp::set_attrs(root, &fd, &attrs(0o755)).map_err(|e| errno(e, &path))?;
        }
        "symlink" => {
            let target = String::from_utf8(req.body.clone())
                .map_err(|_| ApiError::bad_request("The symlink target is not UTF-8"))?;
            let (dir, name) = root.parent(&path).map_err(|e| errno(e, &path))?;
            nix::unistd::symlinkat(target.as_str(), &dir, name.as_str())
                .map_err(|e| errno(e, &path))?;
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "X-Incus-type: \"{other}\" (file, directory or symlink)"
            )))
        }
    }
    Ok(api::sync(serde_json::Value::Null))
}

/// DELETE: a file, a symlink or an empty directory.
pub fn delete(root: &Root, req: &Request) -> Result<Response, ApiError> {
    let path = path_of(req)?;
    let st = sftp::lstat(root, &path).map_err(|e| errno(e, &path))?;
    let (dir, name) = root.parent(&path).map_err(|e| errno(e, &path))?;
    let flag = if file_type(st.mode) == "directory" {
        nix::unistd::UnlinkatFlags::RemoveDir
    } else {
        nix::unistd::UnlinkatFlags::NoRemoveDir
    };
    nix::unistd::unlinkat(&dir, name.as_str(), flag).map_err(|e| errno(e, &path))?;
    Ok(api::sync(serde_json::Value::Null))
}
