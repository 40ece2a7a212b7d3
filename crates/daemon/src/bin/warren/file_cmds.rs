//! `warren file push/pull/delete`: files in and out of an instance through warrend's files API
//! (paths resolved inside the instance there). `-p` makes missing directories on push, `-r` walks
//! directories, `--uid/--gid/--mode` set what a push creates.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::Path;

fn target(cfg: &Config, s: &str) -> Result<(String, String)> {
    let (inst, path) = s
        .split_once('/')
        .with_context(|| format!("{s}: INSTANCE/PATH"))?;
    let name = crate::instance_cmds::local_name(cfg, inst)?;
    Ok((name, format!("/{path}")))
}

fn encode(p: &str) -> String {
    p.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One request on the files API: (status, head, body).
fn files(
    method: &str,
    name: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<(u16, String, Vec<u8>)> {
    let mut s = std::os::unix::net::UnixStream::connect(crate::client::socket())
        .context("connect to warrend (is it running?)")?;
    let mut head =
        format!(
        "{method} {} HTTP/1.1\r\nHost: unix.socket\r\nContent-Length: {}\r\nConnection: close\r\n",
        crate::client::with_project(&format!("/1.0/instances/{name}/files?path={}", encode(path))),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let body = out.get(split + 4..).unwrap_or_default().to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if status >= 400 {
        let err: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        bail!("{}", err["error"].as_str().unwrap_or("the request failed"));
    }
    Ok((status, head, body))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub struct Push {
    pub sources: Vec<String>,
    pub target: String,
    pub recursive: bool,
    pub parents: bool,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<String>,
}

fn mkdirs(name: &str, dir: &str) -> Result<()> {
    let mut cur = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        files(
            "POST",
            name,
            &cur,
            &[("X-Incus-type", "directory".into())],
            b"",
        )?;
    }
    Ok(())
}

fn push_one(name: &str, local: &Path, remote: &str, p: &Push) -> Result<()> {
    let md = std::fs::symlink_metadata(local).with_context(|| local.display().to_string())?;
    let mut headers: Vec<(&str, String)> = Vec::new();
    if let Some(u) = p.uid {
        headers.push(("X-Incus-uid", u.to_string()));
    }
    if let Some(g) = p.gid {
        headers.push(("X-Incus-gid", g.to_string()));
    }
    if md.is_dir() {
        if !p.recursive {
            bail!("{}: a directory (use -r)", local.display());
        }
        files(
            "POST",
            name,
            remote,
            &[("X-Incus-type", "directory".into())],
            b"",
        )?;
        for e in std::fs::read_dir(local)?.flatten() {
            let child = format!(
                "{}/{}",
                remote.trim_end_matches('/'),
                e.file_name().to_string_lossy()
            );
            push_one(name, &e.path(), &child, p)?;
        }
        return Ok(());
    }
    let mode = p.mode.clone().unwrap_or_else(|| {
        format!(
            "{:04o}",
            std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777
        )
    });
    headers.push(("X-Incus-mode", mode));
    let data = std::fs::read(local).with_context(|| local.display().to_string())?;
    files("POST", name, remote, &headers, &data)?;
    Ok(())
}

pub fn push(cfg: &Config, p: Push) -> Result<i32> {
    let (name, dest) = target(cfg, &p.target)?;
    if p.parents {
        let parent = if p.sources.len() > 1 || dest.ends_with('/') {
            dest.clone()
        } else {
            Path::new(&dest)
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        };
        mkdirs(&name, &parent)?;
    }
    for src in &p.sources {
        let local = Path::new(src);
        let into_dir = dest.ends_with('/') || p.sources.len() > 1 || p.recursive;
        let remote = if into_dir {
            format!(
                "{}/{}",
                dest.trim_end_matches('/'),
                local
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        } else {
            dest.clone()
        };
        push_one(&name, local, &remote, &p)?;
    }
    Ok(0)
}

fn pull_one(name: &str, remote: &str, local: &Path, recursive: bool) -> Result<()> {
    let (_, head, body) = files("GET", name, remote, &[], b"")?;
    match header(&head, "X-Incus-type") {
        Some("directory") => {
            if !recursive {
                bail!("{remote}: a directory (use -r)");
            }
            std::fs::create_dir_all(local).with_context(|| local.display().to_string())?;
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            for entry in v["metadata"].as_array().into_iter().flatten() {
                let e = entry.as_str().unwrap_or("");
                pull_one(
                    name,
                    &format!("{}/{e}", remote.trim_end_matches('/')),
                    &local.join(e),
                    recursive,
                )?;
            }
        }
        Some("symlink") => {
            let target = String::from_utf8_lossy(&body).into_owned();
            let _ = std::fs::remove_file(local);
            std::os::unix::fs::symlink(target, local)?;
        }
        _ => {
            let mode = header(&head, "X-Incus-mode")
                .and_then(|m| u32::from_str_radix(m, 8).ok())
                .unwrap_or(0o644);
            std::fs::write(local, &body).with_context(|| local.display().to_string())?;
            let _ =
                std::fs::set_permissions(local, std::os::unix::fs::PermissionsExt::from_mode(mode));
        }
    }
    Ok(())
}

pub fn pull(cfg: &Config, sources: &[String], dest: &str, recursive: bool) -> Result<i32> {
    for src in sources {
        let (name, remote) = target(cfg, src)?;
        if dest == "-" {
            let (_, _, body) = files("GET", &name, &remote, &[], b"")?;
            std::io::stdout().write_all(&body)?;
            continue;
        }
        let local = Path::new(dest);
        let local = if local.is_dir() {
            local.join(Path::new(&remote).file_name().unwrap_or_default())
        } else {
            local.to_path_buf()
        };
        pull_one(&name, &remote, &local, recursive)?;
    }
    Ok(0)
}

pub fn delete(cfg: &Config, targets: &[String]) -> Result<i32> {
    for t in targets {
        let (name, path) = target(cfg, t)?;
        files("DELETE", &name, &path, &[], b"")?;
    }
    Ok(0)
}

/// The editor to run: $VISUAL, $EDITOR, else vi.
fn editor() -> String {
    std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into())
}

/// Runs the editor on `file`; whether it succeeded.
pub fn edit_file(file: &Path) -> Result<()> {
    let ed = editor();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{ed} \"$1\""))
        .arg("sh")
        .arg(file)
        .status()
        .with_context(|| format!("run {ed}"))?;
    if !status.success() {
        bail!("{ed} failed ({status}): nothing changed");
    }
    Ok(())
}

/// `file edit INSTANCE/PATH`: pulled into a temporary file, edited, pushed back when changed
/// (keeping its owner and mode).
pub fn edit(cfg: &Config, t: &str) -> Result<i32> {
    let (name, path) = target(cfg, t)?;
    let (_, head, body) = files("GET", &name, &path, &[], b"")?;
    if header(&head, "X-Incus-type") != Some("file") {
        bail!("{path}: not a regular file");
    }
    let dir = tempfile::tempdir()?;
    let local = dir.path().join(
        Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into()),
    );
    std::fs::write(&local, &body)?;
    edit_file(&local)?;
    let edited = std::fs::read(&local)?;
    if edited != body {
        let keep: Vec<(&str, String)> = ["X-Incus-uid", "X-Incus-gid", "X-Incus-mode"]
            .iter()
            .filter_map(|h| header(&head, h).map(|v| (*h, v.to_string())))
            .collect();
        files("POST", &name, &path, &keep, &edited)?;
    }
    Ok(0)
}
