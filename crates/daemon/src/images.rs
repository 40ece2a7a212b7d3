//! Images in warrend's store: upload of a unified tarball (metadata.yaml + rootfs/), its
//! fingerprint (the file's sha256), properties from metadata.yaml, aliases, and their JSON.

use crate::api::ApiError;
use crate::db::{Db, Image};
use crate::http::Response;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;

/// metadata.yaml's fields the store keeps.
fn read_metadata(file: &Path, split: bool) -> Result<(String, i64, Value), String> {
    let reader = warren_image::unpack::open_archive(file).map_err(|e| format!("{e:#}"))?;
    let mut ar = tar::Archive::new(reader);
    let mut metadata = None;
    let mut has_rootfs = false;
    for entry in ar
        .entries()
        .map_err(|e| format!("the image is not a tarball: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("the image is not a tarball: {e}"))?;
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        if name == "metadata.yaml" {
            let mut text = String::new();
            entry
                .by_ref()
                .take(1 << 20)
                .read_to_string(&mut text)
                .map_err(|e| format!("metadata.yaml: {e}"))?;
            metadata = Some(text);
        } else if name.starts_with("rootfs/") {
            has_rootfs = true;
        }
    }
    let text = metadata.ok_or(
        "the image has no metadata.yaml (a unified image is metadata.yaml, templates/ and rootfs/)",
    )?;
    if !has_rootfs && !split {
        return Err("the image has no rootfs/ (a split image is uploaded as two files: metadata and rootfs)".into());
    }
    let docs =
        yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| format!("metadata.yaml: {e}"))?;
    let doc = docs.first().ok_or("metadata.yaml is empty")?;
    let architecture = doc["architecture"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_default();
    if architecture.is_empty() {
        return Err("metadata.yaml has no architecture".into());
    }
    let created = doc["creation_date"].as_i64().unwrap_or(0);
    let mut properties = serde_json::Map::new();
    if let Some(h) = doc["properties"].as_hash() {
        for (k, v) in h {
            let key = k.as_str().unwrap_or("").to_string();
            let value = match v {
                yaml_rust2::Yaml::String(s) | yaml_rust2::Yaml::Real(s) => s.clone(),
                yaml_rust2::Yaml::Integer(i) => i.to_string(),
                yaml_rust2::Yaml::Boolean(b) => b.to_string(),
                _ => continue,
            };
            properties.insert(key, Value::String(value));
        }
    }
    Ok((architecture, created, Value::Object(properties)))
}

/// Adds an uploaded image under its fingerprint: a unified tarball (`rootfs` None; the fingerprint
/// is the file's sha256), or a split one (metadata tarball + squashfs; the fingerprint is the sha256
/// of both, in that order, as Incus computes it). The files are in the store's directory already.
/// `db` is asked for only around the check and the insert: the hashing (of files of any size)
/// holds no lock. The file is shared by the projects that have the image; each has its record.
pub fn import<'a>(
    db: &dyn Fn() -> std::sync::MutexGuard<'a, Db>,
    project: &str,
    images_dir: &Path,
    upload: &Path,
    rootfs: Option<&Path>,
    filename: &str,
) -> Result<Value, String> {
    use sha2::{Digest, Sha256};
    let cleanup = |e: String| {
        let _ = std::fs::remove_file(upload);
        if let Some(r) = rootfs {
            let _ = std::fs::remove_file(r);
        }
        e
    };
    let mut h = Sha256::new();
    let mut size = 0;
    for f in std::iter::once(upload).chain(rootfs) {
        let mut file = std::fs::File::open(f).map_err(|e| cleanup(e.to_string()))?;
        size += std::io::copy(&mut file, &mut h).map_err(|e| cleanup(e.to_string()))?;
    }
    let fingerprint = hex::encode(h.finalize());
    let (architecture, created, properties) =
        read_metadata(upload, rootfs.is_some()).map_err(cleanup)?;
    if db()
        .images(project)
        .map_err(|e| cleanup(e.to_string()))?
        .iter()
        .any(|i| i.fingerprint == fingerprint)
    {
        return Err(cleanup(format!(
            "Image with same fingerprint already exists: {fingerprint}"
        )));
    }
    let target = images_dir.join(&fingerprint);
    // another project's copy: same fingerprint, same bytes
    let shared = db()
        .image_anywhere(&fingerprint)
        .map_err(|e| cleanup(e.to_string()))?
        && target.exists();
    if shared {
        cleanup(String::new());
    } else {
        std::fs::rename(upload, &target).map_err(|e| cleanup(e.to_string()))?;
        if let Some(r) = rootfs {
            if let Err(e) = std::fs::rename(r, images_dir.join(format!("{fingerprint}.rootfs"))) {
                let _ = std::fs::remove_file(&target);
                return Err(cleanup(e.to_string()));
            }
        }
    }
    let image = Image {
        project: project.to_string(),
        fingerprint: fingerprint.clone(),
        filename: filename.to_string(),
        size: size as i64,
        architecture,
        properties,
        created_at: crate::time::from_unix(created),
        uploaded_at: crate::time::now(),
        cached: false,
        update_source: Value::Null,
        auto_update: false,
    };
    if let Err(e) = db().add_image(&image) {
        if !shared {
            let _ = std::fs::remove_file(&target);
            let _ = std::fs::remove_file(images_dir.join(format!("{fingerprint}.rootfs")));
        }
        return Err(e.to_string());
    }
    Ok(json!({"fingerprint": fingerprint, "size": size.to_string()}))
}

/// Removes image `fingerprint`'s record in `project`, and its files once no project has it (a
/// container standing on its tree keeps that until the last goes).
pub fn remove(dir: &Path, db: &Db, project: &str, fingerprint: &str) -> Result<(), String> {
    db.delete_image(project, fingerprint)
        .map_err(|e| e.to_string())?;
    if db.image_anywhere(fingerprint).map_err(|e| e.to_string())? {
        return Ok(());
    }
    let _ = std::fs::remove_file(dir.join("images").join(fingerprint));
    if !crate::rootfs::image_in_use(&crate::instances::lxcpath(dir), fingerprint) {
        crate::instances::forget_image(dir, fingerprint);
    }
    Ok(())
}

/// Imports an image body as it came (an upload, or a server's export): a unified tarball, or
/// `multipart/form-data` with a `metadata` and a `rootfs` part. The body file is used up.
pub fn import_body<'a>(
    db: &dyn Fn() -> std::sync::MutexGuard<'a, Db>,
    project: &str,
    images_dir: &Path,
    body: &Path,
    content_type: &str,
    filename: &str,
) -> Result<Value, String> {
    if !content_type.starts_with("multipart/form-data") {
        return import(db, project, images_dir, body, None, filename);
    }
    let parts = crate::http::split_multipart(body, content_type);
    let _ = std::fs::remove_file(body);
    let parts = parts?;
    let part = |n: &str| {
        parts
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, p)| p.clone())
    };
    let (Some(metadata), Some(rootfs)) = (part("metadata"), part("rootfs")) else {
        for (_, p) in &parts {
            let _ = std::fs::remove_file(p);
        }
        return Err("a split image needs a metadata and a rootfs part".into());
    };
    import(db, project, images_dir, &metadata, Some(&rootfs), filename)
}

pub fn image_json(i: &Image, aliases: &[(String, String, String)]) -> Value {
    let names: Vec<Value> = aliases
        .iter()
        .filter(|(_, t, _)| *t == i.fingerprint)
        .map(|(n, _, d)| json!({"name": n, "description": d}))
        .collect();
    let mut v = json!({
        "auto_update": i.auto_update, "properties": i.properties, "public": false,
        "expires_at": "0001-01-01T00:00:00Z", "profiles": ["default"], "aliases": names,
        "architecture": i.architecture, "cached": i.cached, "filename": i.filename,
        "fingerprint": i.fingerprint, "size": i.size, "type": "container",
        "created_at": i.created_at, "last_used_at": "0001-01-01T00:00:00Z",
        "uploaded_at": i.uploaded_at, "project": i.project,
    });
    if !i.update_source.is_null() {
        v["update_source"] = i.update_source.clone();
    }
    v
}

/// An image by fingerprint or unique fingerprint prefix.
pub fn find<'a>(images: &'a [Image], fp: &str) -> Option<&'a Image> {
    let matches: Vec<&Image> = images
        .iter()
        .filter(|i| i.fingerprint.starts_with(fp))
        .collect();
    (matches.len() == 1 && !fp.is_empty()).then(|| matches[0])
}

/// The extension a file's magic says it has (for an export's file name).
fn extension(path: &Path) -> &'static str {
    let mut magic = [0u8; 6];
    let _ = std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut magic));
    match magic {
        [0xfd, b'7', b'z', b'X', b'Z', 0] => ".tar.xz",
        [0x1f, 0x8b, ..] => ".tar.gz",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => ".tar.zst",
        [b'B', b'Z', b'h', ..] => ".tar.bz2",
        [b'h', b's', b'q', b's', ..] => ".squashfs",
        _ => ".tar",
    }
}

/// GET /1.0/images/<fp>/export: a unified image as its tarball; a split one as multipart
/// (metadata, rootfs), which the client splits into its two files again.
pub fn export(images_dir: &Path, image: &Image) -> Result<Response, ApiError> {
    let meta = images_dir.join(&image.fingerprint);
    let rootfs = images_dir.join(format!("{}.rootfs", image.fingerprint));
    let open = |p: &Path| {
        std::fs::File::open(p).map_err(|e| ApiError::new(500, format!("{}: {e}", p.display())))
    };
    if !rootfs.is_file() {
        let name = format!("{}{}", image.fingerprint, extension(&meta));
        return Ok(Response {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/octet-stream".into()),
                (
                    "Content-Disposition".into(),
                    format!("inline;filename={name}"),
                ),
            ],
            body: Vec::new(),
            file: Some(open(&meta)?),
        });
    }
    // both parts in one unlinked temporary file, streamed like a single one
    let boundary = format!(
        "warren-{}",
        &image.fingerprint[..16.min(image.fingerprint.len())]
    );
    let mut tmp = tempfile::tempfile_in(images_dir)
        .map_err(|e| ApiError::new(500, format!("export: {e}")))?;
    let write = |tmp: &mut std::fs::File| -> std::io::Result<()> {
        use std::io::Write;
        for (part, path, ext) in [
            ("metadata", &meta, extension(&meta)),
            ("rootfs", &rootfs, extension(&rootfs)),
        ] {
            write!(
                tmp,
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{part}\"; filename=\"{}{ext}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                if part == "metadata" { "meta-".to_string() + &image.fingerprint } else { image.fingerprint.clone() }
            )?;
            std::io::copy(&mut std::fs::File::open(path)?, tmp)?;
            tmp.write_all(b"\r\n")?;
        }
        write!(tmp, "--{boundary}--\r\n")?;
        std::io::Seek::rewind(tmp)
    };
    write(&mut tmp).map_err(|e| ApiError::new(500, format!("export: {e}")))?;
    Ok(Response {
        status: 200,
        headers: vec![(
            "Content-Type".into(),
            format!("multipart/form-data; boundary={boundary}"),
        )],
        body: Vec::new(),
        file: Some(tmp),
    })
}
