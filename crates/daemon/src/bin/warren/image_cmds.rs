//! `warren image list [remote:]`, `image import`, `image delete`, `image alias`, `image info`,
//! `image copy`: local images through warrend, a simplestreams remote's read directly.

use crate::client::{operation, sync};
use crate::config::Config;
use crate::format::{self, Format};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

fn simplestreams(cfg: &Config, remote: &str) -> Result<Vec<Value>> {
    let r = cfg.remote(remote)?;
    let pinned = cfg
        .cert(remote)
        .and_then(|pem| warren_image::fetch::pem_to_der(&pem));
    let agent =
        warren_image::fetch::agent(&format!("warren/{}", env!("CARGO_PKG_VERSION")), pinned);
    let get = |path: &str| -> Result<String> {
        let url = format!("{}/{path}", r.addr.trim_end_matches('/'));
        let resp = agent.get(&url).call().with_context(|| url.clone())?;
        resp.into_string().with_context(|| url.clone())
    };
    let index: warren_image::simplestreams::Index =
        serde_json::from_str(&get("streams/v1/index.json")?).context("the server's index")?;
    let path = index
        .index
        .values()
        .find(|e| e.datatype == "image-downloads")
        .map(|e| e.path.clone())
        .context("the server lists no images")?;
    let products: warren_image::simplestreams::Products =
        serde_json::from_str(&get(&path)?).context("the server's products")?;
    let mut out = Vec::new();
    for p in products.products.values() {
        let Some((version, v)) = p.versions.iter().next_back() else {
            continue;
        };
        let meta = v
            .items
            .values()
            .find(|i| i.ftype == "incus.tar.xz" || i.ftype == "lxd.tar.xz");
        let root = v.items.values().find(|i| i.ftype == "squashfs");
        let (Some(meta), Some(root)) = (meta, root) else {
            continue;
        };
        out.push(json!({
            "aliases": p.aliases.split(',').filter(|a| !a.is_empty()).map(|a| json!({"name": a})).collect::<Vec<_>>(),
            "fingerprint": meta.combined_squashfs_sha256.clone().unwrap_or_default(),
            "properties": {"description": format!("{} {} {} ({version})", p.os, p.release, p.arch), "os": p.os, "release": p.release},
            "architecture": warren_image::simplestreams::canonical_arch(&p.arch),
            "size": meta.size + root.size, "type": "container",
            "uploaded_at": format!("{}-{}-{}T00:00:00Z", &version[0..4.min(version.len())], version.get(4..6).unwrap_or("01"), version.get(6..8).unwrap_or("01")),
        }));
    }
    Ok(out)
}

pub fn list(cfg: &Config, target: Option<&str>, format: Format) -> Result<i32> {
    let remote = match target {
        Some(t) => cfg.target(t)?.0,
        None => cfg.default_remote.clone(),
    };
    let protocol = cfg.remote(&remote)?.protocol.clone();
    let images = if protocol == "simplestreams" {
        simplestreams(cfg, &remote)?
    } else if protocol == "incus" {
        crate::incus_remote::images(cfg, &remote)?
    } else {
        sync("GET", "/1.0/images?recursion=1", None)?
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            let aliases: Vec<&str> = i["aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["name"].as_str())
                .collect();
            vec![
                aliases.join("\n"),
                i["fingerprint"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(12)
                    .collect(),
                if i["public"] == true { "yes" } else { "no" }.into(),
                i["properties"]["description"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                i["architecture"].as_str().unwrap_or("").to_string(),
                "CONTAINER".into(),
                format::bytes(i["size"].as_u64().unwrap_or(0)),
                format::date(i["uploaded_at"].as_str().unwrap_or("")),
            ]
        })
        .collect();
    format::print(
        format,
        &[
            "ALIAS",
            "FINGERPRINT",
            "PUBLIC",
            "DESCRIPTION",
            "ARCHITECTURE",
            "TYPE",
            "SIZE",
            "UPLOAD DATE",
        ],
        &rows,
        &json!(images),
    );
    Ok(0)
}

/// Uploads a unified tarball (or metadata + squashfs) through the socket, streamed.
pub fn import(files: &[String], alias: Option<&str>) -> Result<i32> {
    use std::io::{Read, Write};
    let (meta, rootfs) = match files {
        [m] => (m.clone(), None),
        [m, r] => (m.clone(), Some(r.clone())),
        _ => bail!("warren image import TARBALL [ROOTFS] [--alias NAME]"),
    };
    let mut s = std::os::unix::net::UnixStream::connect(crate::client::socket())
        .context("connect to warrend (is it running?)")?;
    let name = std::path::Path::new(&meta)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(rootfs) = rootfs {
        let boundary = "warren-image-upload";
        let mut len = 0u64;
        let heads: Vec<String> = [("metadata", &meta), ("rootfs", &rootfs)]
            .iter()
            .map(|(part, f)| format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{part}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n", std::path::Path::new(f).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()))
            .collect();
        for (h, f) in heads.iter().zip([&meta, &rootfs]) {
            len += h.len() as u64 + std::fs::metadata(f).with_context(|| f.clone())?.len() + 2;
        }
        let tail = format!("--{boundary}--\r\n");
        len += tail.len() as u64;
        write!(s, "POST {} HTTP/1.1\r\nHost: unix.socket\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len}\r\nX-Incus-filename: {name}\r\nConnection: close\r\n\r\n", crate::client::with_project("/1.0/images"))?;
        for (h, f) in heads.iter().zip([&meta, &rootfs]) {
            s.write_all(h.as_bytes())?;
            std::io::copy(&mut std::fs::File::open(f)?, &mut s)?;
            s.write_all(b"\r\n")?;
        }
        s.write_all(tail.as_bytes())?;
    } else {
        let len = std::fs::metadata(&meta)
            .with_context(|| meta.clone())?
            .len();
        write!(s, "POST {} HTTP/1.1\r\nHost: unix.socket\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nX-Incus-filename: {name}\r\nConnection: close\r\n\r\n", crate::client::with_project("/1.0/images"))?;
        std::io::copy(&mut std::fs::File::open(&meta)?, &mut s)?;
    }
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let body: Value =
        serde_json::from_str(out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or(""))
            .unwrap_or(Value::Null);
    if body["type"] == "error" {
        bail!(
            "{}",
            body["error"].as_str().unwrap_or("the upload was refused")
        );
    }
    let id = body["metadata"]["id"].as_str().unwrap_or("");
    let done = crate::client::wait(id)?;
    let fp = done["fingerprint"].as_str().unwrap_or("").to_string();
    if let Some(a) = alias {
        sync(
            "POST",
            "/1.0/images/aliases",
            Some(json!({"name": a, "target": fp})),
        )?;
    }
    println!("Image imported with fingerprint: {fp}");
    Ok(0)
}

/// A local image by alias or fingerprint prefix: its fingerprint.
fn resolve(name: &str) -> Result<String> {
    if let Ok(a) = sync("GET", &format!("/1.0/images/aliases/{name}"), None) {
        return Ok(a["target"].as_str().unwrap_or("").to_string());
    }
    let i = sync("GET", &format!("/1.0/images/{name}"), None)
        .with_context(|| format!("Image \"{name}\" not found"))?;
    Ok(i["fingerprint"].as_str().unwrap_or("").to_string())
}

pub fn delete(names: &[String]) -> Result<i32> {
    for n in names {
        let fp = resolve(n)?;
        operation("DELETE", &format!("/1.0/images/{fp}"), None)?;
    }
    Ok(0)
}

pub fn info(name: &str) -> Result<i32> {
    let fp = resolve(name)?;
    let i = sync("GET", &format!("/1.0/images/{fp}"), None)?;
    println!("Fingerprint: {fp}");
    println!("Size: {}", format::bytes(i["size"].as_u64().unwrap_or(0)));
    println!("Architecture: {}", i["architecture"].as_str().unwrap_or(""));
    println!("Type: container");
    println!("Public: {}", if i["public"] == true { "yes" } else { "no" });
    println!("Timestamps:");
    println!(
        "    Created: {}",
        format::date(i["created_at"].as_str().unwrap_or(""))
    );
    println!(
        "    Uploaded: {}",
        format::date(i["uploaded_at"].as_str().unwrap_or(""))
    );
    println!("Properties:");
    for (k, v) in i["properties"].as_object().into_iter().flatten() {
        println!("    {k}: {}", v.as_str().unwrap_or(""));
    }
    println!("Aliases:");
    for a in i["aliases"].as_array().into_iter().flatten() {
        println!("    - {}", a["name"].as_str().unwrap_or(""));
    }
    println!("Cached: {}", if i["cached"] == true { "yes" } else { "no" });
    Ok(0)
}

pub fn alias_create(alias: &str, target: &str) -> Result<i32> {
    let fp = resolve(target)?;
    sync(
        "POST",
        "/1.0/images/aliases",
        Some(json!({"name": alias, "target": fp})),
    )?;
    Ok(0)
}

pub fn alias_delete(alias: &str) -> Result<i32> {
    sync("DELETE", &format!("/1.0/images/aliases/{alias}"), None)?;
    Ok(0)
}

/// `image copy REMOTE:IMAGE local: [--alias NAME]`.
pub fn copy(cfg: &Config, source: &str, alias: Option<&str>, auto_update: bool) -> Result<i32> {
    let src = crate::instance_cmds::image_source(cfg, source)?;
    if src.get("server").is_none() {
        bail!("{source}: the image is local already");
    }
    let aliases: Vec<Value> = alias.map(|a| json!({"name": a})).into_iter().collect();
    let meta = operation(
        "POST",
        "/1.0/images",
        Some(json!({"source": src, "aliases": aliases, "auto_update": auto_update})),
    )?;
    println!(
        "Image copied successfully! ({})",
        meta["fingerprint"].as_str().unwrap_or("")
    );
    Ok(0)
}

/// `image export IMAGE [TARGET]`: the image's file(s) (a unified tarball, or metadata and
/// squashfs), named as warrend names them, into TARGET (a directory; default: here).
pub fn export(name: &str, target: Option<&str>) -> Result<i32> {
    use std::io::{BufRead, BufReader, Read, Write};
    let fp = resolve(name)?;
    let dir = std::path::PathBuf::from(target.unwrap_or("."));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let mut s = std::os::unix::net::UnixStream::connect(crate::client::socket())
        .context("connect to warrend (is it running?)")?;
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: unix.socket\r\nConnection: close\r\n\r\n",
        crate::client::with_project(&format!("/1.0/images/{fp}/export"))
    )?;
    let mut r = BufReader::new(s);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    let header = |n: &str| {
        head.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(n)
                .then(|| v.trim().to_string())
        })
    };
    if !head.first().is_some_and(|l| l.contains(" 200 ")) {
        let mut body = String::new();
        let _ = r.read_to_string(&mut body);
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        bail!("{}", v["error"].as_str().unwrap_or("the export failed"));
    }
    let ctype = header("Content-Type").unwrap_or_default();
    if let Some(boundary) = ctype.split("boundary=").nth(1) {
        // split image: two parts, kept in memory one at a time is not possible with multipart
        // framing, so the body is read whole and split
        let mut body = Vec::new();
        r.read_to_end(&mut body)?;
        let delim = format!("--{boundary}");
        let mut written = Vec::new();
        for part in split_bytes(&body, delim.as_bytes()).into_iter().skip(1) {
            let Some(hend) = part.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let heads = String::from_utf8_lossy(&part[..hend]);
            let Some(fname) = heads
                .split("filename=\"")
                .nth(1)
                .and_then(|f| f.split('"').next())
                .filter(|f| !f.contains('/') && !f.is_empty())
            else {
                continue;
            };
            let data = &part[hend + 4..];
            let data = data.strip_suffix(b"\r\n").unwrap_or(data);
            std::fs::write(dir.join(fname), data)?;
            written.push(fname.to_string());
        }
        println!("Image exported successfully! ({})", written.join(", "));
    } else {
        let fname = header("Content-Disposition")
            .and_then(|d| {
                d.split("filename=")
                    .nth(1)
                    .map(|f| f.trim_matches('"').to_string())
            })
            .filter(|f| !f.contains('/') && !f.is_empty())
            .unwrap_or_else(|| format!("{fp}.tar"));
        let mut f = std::fs::File::create(dir.join(&fname))?;
        std::io::copy(&mut r, &mut f)?;
        println!("Image exported successfully! ({fname})");
    }
    Ok(0)
}

fn split_bytes<'a>(data: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + delim.len() <= data.len() {
        if &data[i..i + delim.len()] == delim {
            out.push(&data[start..i]);
            i += delim.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&data[start..]);
    out
}

/// `image refresh IMAGE...`: each brought up to date from its server.
pub fn refresh(names: &[String]) -> Result<i32> {
    for n in names {
        let fp = resolve(n)?;
        let meta = operation("POST", &format!("/1.0/images/{fp}/refresh"), None)?;
        if meta["refreshed"] == true {
            println!(
                "Image {n} refreshed: {}",
                meta["fingerprint"].as_str().unwrap_or("")
            );
        } else {
            println!("Image {n} is up to date");
        }
    }
    Ok(0)
}
