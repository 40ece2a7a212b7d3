//! Images from a simplestreams server (`source.server` + `protocol: simplestreams` on an instance
//! create or an image copy): the server's index and products resolved to the newest version for
//! this architecture, its metadata tarball and squashfs downloaded with their sha256 checked and
//! progress reported in the operation, imported under Incus's fingerprint of the pair. An image
//! already here is used as it is (the cache).

use crate::db::Image;
use crate::Daemon;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use warren_image::simplestreams::{Index, Item, Products, Resolved};

/// Where and what to pull, as the client sends it.
pub struct Source {
    pub server: String,
    pub protocol: String,
    pub name: String,
    pub certificate: String,
    /// Over the Incus protocol: the image secret the source server gave for this pull.
    pub secret: String,
    /// Over the Incus protocol: the project the image is in on the source server.
    pub project: String,
}

impl Source {
    pub fn from_json(source: &Value) -> Result<Source, String> {
        let text = |k: &str| {
            source
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        // over the Incus protocol the secret opens the image by its fingerprint
        let by_fingerprint = !matches!(text("protocol").as_str(), "simplestreams")
            && !text("fingerprint").is_empty();
        let name = match (text("alias"), text("fingerprint")) {
            (_, f) if by_fingerprint => f,
            (a, _) if !a.is_empty() => a,
            (_, f) if !f.is_empty() => f,
            _ => return Err("source needs an image alias or fingerprint on the server".into()),
        };
        let s = Source {
            server: text("server").trim_end_matches('/').to_string(),
            protocol: text("protocol"),
            name,
            certificate: text("certificate"),
            secret: text("secret"),
            project: text("project"),
        };
        if !s.server.starts_with("https://") && !s.server.starts_with("http://") {
            return Err(format!(
                "source.server \"{}\": an http:// or https:// URL",
                s.server
            ));
        }
        match s.protocol.as_str() {
            "simplestreams" => Ok(s),
            "" | "incus" | "lxd" => Ok(Source {
                protocol: "incus".into(),
                ..s
            }),
            other => Err(format!("Unknown image server protocol \"{other}\"")),
        }
    }

    fn agent(&self) -> Result<ureq::Agent, String> {
        let pinned = if self.certificate.trim().is_empty() {
            None
        } else {
            Some(
                warren_image::fetch::pem_to_der(&self.certificate)
                    .ok_or("source.certificate is not a PEM certificate")?,
            )
        };
        Ok(warren_image::fetch::agent(
            &format!("warrend/{}", env!("CARGO_PKG_VERSION")),
            pinned,
        ))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.server, path.trim_start_matches('/'))
    }
}

fn get_json<T: serde::de::DeserializeOwned>(agent: &ureq::Agent, url: &str) -> Result<T, String> {
    let r = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let mut text = String::new();
    r.into_reader()
        .take(64 << 20)
        .read_to_string(&mut text)
        .map_err(|e| format!("{url}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{url}: not simplestreams JSON: {e}"))
}

/// An item's path must stay on the server (no scheme, no climbing out).
fn check_item_path(item: &Item) -> Result<(), String> {
    if item.path.contains("://") || item.path.split('/').any(|p| p == "..") {
        return Err(format!(
            "the server lists a bad file path \"{}\"",
            item.path
        ));
    }
    Ok(())
}

/// Downloads `item` to `dest`, checking its size and sha256, with `progress(done, total)`.
fn download(
    agent: &ureq::Agent,
    url: &str,
    item: &Item,
    dest: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), String> {
    let r = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let mut reader = r.into_reader().take(item.size.saturating_add(1));
    let mut file = std::fs::File::create(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| format!("{url}: {e}"))?;
        if n == 0 {
            break;
        }
        done += n as u64;
        hash.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        progress(done, item.size);
    }
    if done != item.size {
        return Err(format!(
            "{url}: {done} bytes, but the server lists {}",
            item.size
        ));
    }
    let got = hex::encode(hash.finalize());
    if !got.eq_ignore_ascii_case(&item.sha256) {
        return Err(format!(
            "{url}: sha256 {got}, but the server lists {}",
            item.sha256
        ));
    }
    Ok(())
}

/// The image `source` names, pulled unless it is here already; `op` is the operation whose
/// metadata shows the download's progress; `cached`: downloaded for an instance.
/// What the server offers now under `source`'s name for this machine.
fn resolve(source: &Source, agent: &ureq::Agent) -> Result<Resolved, String> {
    let index: Index = get_json(agent, &source.url("streams/v1/index.json"))?;
    let products_path = index
        .index
        .values()
        .find(|e| e.datatype == "image-downloads")
        .map(|e| e.path.clone())
        .ok_or_else(|| format!("{}: the index lists no images", source.server))?;
    let products: Products = get_json(agent, &source.url(&products_path))?;
    let arch = warren_image::simplestreams::host_arch();
    products.resolve(&source.name, &arch).ok_or_else(|| {
        format!(
            "Image \"{}\" not found on {} (for {arch})",
            source.name, source.server
        )
    })
}

/// Pulls image `source` into `project` (the project holding the images: see
/// `Project::images_project`), or finds it there (or in another project: its files are shared).
pub fn pull(
    d: &Daemon,
    source: &Source,
    op: &str,
    cached: bool,
    project: &str,
) -> Result<Image, String> {
    if source.protocol == "incus" {
        return pull_incus(d, source, op, cached, project);
    }
    let agent = source.agent()?;
    let found = resolve(source, &agent)?;
    let here = |fp: &str| image_here(d, project, fp);
    if let Some(image) = here(&found.fingerprint)? {
        return Ok(image);
    }
    check_item_path(&found.metadata)?;
    check_item_path(&found.rootfs)?;
    let (images, staging) = staging_dir(d)?;
    let (meta, rootfs) = (staging.path().join("meta"), staging.path().join("rootfs"));
    let mut progress = DownloadProgress::new(d, op, found.metadata.size + found.rootfs.size);
    download(
        &agent,
        &source.url(&found.metadata.path),
        &found.metadata,
        &meta,
        &mut |done, _| progress.report("metadata", done),
    )?;
    download(
        &agent,
        &source.url(&found.rootfs.path),
        &found.rootfs,
        &rootfs,
        &mut |done, _| progress.report("rootfs", found.metadata.size + done),
    )?;
    let filename = found
        .metadata
        .path
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    let imported = crate::images::import(
        &|| d.db(),
        project,
        &images,
        &meta,
        Some(&rootfs),
        &filename,
    );
    // cached images follow their source (Incus's images.auto_update_cached)
    adopt(
        d,
        source,
        imported,
        &found.fingerprint,
        (cached, cached),
        project,
    )
}

/// The image store, and a staging directory in it for one pull's files (gone with it).
fn staging_dir(d: &Daemon) -> Result<(std::path::PathBuf, tempfile::TempDir), String> {
    let images = d.dir.join("images");
    std::fs::create_dir_all(&images).map_err(|e| format!("{}: {e}", images.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(&images)
        .map_err(|e| e.to_string())?;
    Ok((images, staging))
}

/// A pull's `download_progress` in its operation, as incusd reports it: at the start, every
/// 200 ms, and at the end.
struct DownloadProgress<'a> {
    d: &'a Daemon,
    op: &'a str,
    total: u64,
    started: std::time::Instant,
    last: Option<std::time::Instant>,
}

impl<'a> DownloadProgress<'a> {
    fn new(d: &'a Daemon, op: &'a str, total: u64) -> DownloadProgress<'a> {
        DownloadProgress {
            d,
            op,
            total,
            started: std::time::Instant::now(),
            last: None,
        }
    }

    /// `done` bytes of the whole pull are here, the current one being `what`.
    fn report(&mut self, what: &str, done: u64) {
        let due = self.last.map_or(true, |t| {
            t.elapsed() >= std::time::Duration::from_millis(200)
        });
        if !due && done < self.total {
            return;
        }
        self.last = Some(std::time::Instant::now());
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        self.d.hub.set_metadata(
            self.op,
            json!({"download_progress": format!(
                "{what}: {}% ({:.2}MB/s)",
                (done * 100).checked_div(self.total).unwrap_or(0),
                rate / 1e6
            )}),
        );
    }
}

/// The image of fingerprint `fp` in `project`; one another project has is recorded in
/// `project` too (its files are shared), with no download.
fn image_here(d: &Daemon, project: &str, fp: &str) -> Result<Option<Image>, String> {
    let db = d.db();
    let mine = db.images(project).map_err(|e| e.to_string())?;
    if let Some(i) = mine.into_iter().find(|i| i.fingerprint == fp) {
        return Ok(Some(i));
    }
    let elsewhere = db
        .projects()
        .map_err(|e| e.to_string())?
        .iter()
        .filter_map(|p| db.images(&p.name).ok())
        .flatten()
        .find(|i| i.fingerprint == fp);
    match elsewhere {
        Some(mut i) if d.dir.join("images").join(fp).is_file() => {
            i.project = project.to_string();
            i.uploaded_at = crate::time::now();
            db.add_image(&i).map_err(|e| e.to_string())?;
            Ok(Some(i))
        }
        _ => Ok(None),
    }
}

/// An image just imported from `source` (or found imported by another pull meanwhile): checked
/// against the fingerprint the server lists (a mismatch is removed again), its origin recorded.
fn adopt(
    d: &Daemon,
    source: &Source,
    imported: Result<Value, String>,
    listed: &str,
    (cached, auto_update): (bool, bool),
    project: &str,
) -> Result<Image, String> {
    let here = |fp: &str| image_here(d, project, fp);
    let fp = match imported {
        Ok(meta) => meta["fingerprint"].as_str().unwrap_or("").to_string(),
        // another create pulled the same image meanwhile
        Err(_) if here(listed)?.is_some() => listed.to_string(),
        Err(e) => return Err(e),
    };
    if fp != listed {
        let _ = crate::images::remove(&d.dir, &d.db(), project, &fp);
        return Err(format!(
            "the files downloaded have fingerprint {fp}, but {} lists {listed}",
            source.server
        ));
    }
    let origin = json!({"alias": source.name, "server": source.server, "protocol": source.protocol,
                        "certificate": source.certificate, "image_type": "container"});
    d.db()
        .set_image_origin(project, &fp, cached, &origin)
        .map_err(|e| e.to_string())?;
    d.db()
        .set_image_auto_update(project, &fp, auto_update)
        .map_err(|e| e.to_string())?;
    d.hub.lifecycle(
        "image-created",
        &crate::db::project_url(project, &format!("/1.0/images/{fp}")),
        json!({"type": "container"}),
    );
    here(&fp)?.ok_or_else(|| "the image vanished after its import".into())
}

/// Brings an image with a source up to date: when the server has a newer version under the
/// name it came by, that one is pulled, takes over the old one's aliases and auto-update, and
/// the old one goes (its tree stays while containers stand on it). The new fingerprint, if any.
pub fn refresh(d: &Daemon, old: &Image, op: &str) -> Result<Option<String>, String> {
    if old.update_source.is_null() {
        return Err("The image has no source to refresh from (it was uploaded)".into());
    }
    let source = Source::from_json(&old.update_source)?;
    let agent = source.agent()?;
    let found = resolve(&source, &agent)?;
    if found.fingerprint == old.fingerprint {
        return Ok(None);
    }
    let project = old.project.as_str();
    let new = pull(d, &source, op, old.cached, project)?;
    let db = d.db();
    db.set_image_auto_update(project, &new.fingerprint, old.auto_update)
        .map_err(|e| e.to_string())?;
    db.move_aliases(project, &old.fingerprint, &new.fingerprint)
        .map_err(|e| e.to_string())?;
    crate::images::remove(&d.dir, &db, project, &old.fingerprint)?;
    drop(db);
    d.hub.lifecycle(
        "image-refreshed",
        &crate::db::project_url(project, &format!("/1.0/images/{}", new.fingerprint)),
        json!({"old": old.fingerprint}),
    );
    Ok(Some(new.fingerprint))
}

/// Refreshes every auto-updating image every `interval` (warrend's background work).
pub fn auto_update_loop(d: std::sync::Arc<Daemon>, interval: std::time::Duration) {
    loop {
        std::thread::sleep(interval);
        let images: Vec<Image> = {
            let db = d.db();
            let projects = db.projects().unwrap_or_default();
            projects
                .iter()
                .flat_map(|p| db.images(&p.name).unwrap_or_default())
                .collect()
        };
        for i in images.iter().filter(|i| i.auto_update) {
            match refresh(&d, i, "") {
                Ok(Some(fp)) => {
                    crate::log::info(&format!("image {} refreshed to {fp}", i.fingerprint))
                }
                Ok(None) => {}
                Err(e) => crate::log::warn(&format!("image {}: refresh: {e}", i.fingerprint)),
            }
        }
    }
}

/// An image from another warrend or incusd (the Incus protocol): its record, then its export (a
/// unified tarball, or metadata and rootfs as multipart), with the secret the source server
/// gave, over HTTPS with its certificate pinned. Imported under the fingerprint the source
/// lists, which the files must have.
fn pull_incus(
    d: &Daemon,
    source: &Source,
    op: &str,
    cached: bool,
    project: &str,
) -> Result<Image, String> {
    let agent = source.agent()?;
    let mut params = Vec::new();
    if !source.secret.is_empty() {
        params.push(format!("secret={}", source.secret));
    }
    if !source.project.is_empty() && source.project != "default" {
        params.push(format!("project={}", source.project));
    }
    let query = if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    };
    let record: Value = get_json::<Value>(
        &agent,
        &source.url(&format!("1.0/images/{}{query}", source.name)),
    )?;
    let info = record.get("metadata").cloned().unwrap_or(Value::Null);
    let fingerprint = info
        .get("fingerprint")
        .and_then(Value::as_str)
        .filter(|f| f.len() == 64 && f.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| format!("{}: no image {} there", source.server, source.name))?
        .to_string();
    let here = |fp: &str| image_here(d, project, fp);
    if let Some(image) = here(&fingerprint)? {
        return Ok(image);
    }
    let (images, staging) = staging_dir(d)?;
    let url = source.url(&format!("1.0/images/{fingerprint}/export{query}"));
    let r = agent.get(&url).call().map_err(|e| format!("{url}: {e}"))?;
    let content_type = r.header("content-type").unwrap_or("").to_string();
    let total: u64 = r
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .or_else(|| info.get("size").and_then(Value::as_u64))
        .unwrap_or(0);
    let body = staging.path().join("export");
    {
        let mut reader = r.into_reader();
        let mut file =
            std::fs::File::create(&body).map_err(|e| format!("{}: {e}", body.display()))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut done = 0u64;
        let mut progress = DownloadProgress::new(d, op, total);
        loop {
            let n = reader.read(&mut buf).map_err(|e| format!("{url}: {e}"))?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n])
                .map_err(|e| format!("{}: {e}", body.display()))?;
            done += n as u64;
            progress.report("rootfs", done);
        }
    }
    let filename = info
        .get("filename")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let imported = crate::images::import_body(
        &|| d.db(),
        project,
        &images,
        &body,
        &content_type,
        &filename,
    )
    .map_err(|e| format!("{url}: {e}"));
    adopt(d, source, imported, &fingerprint, (cached, false), project)
}
