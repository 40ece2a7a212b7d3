//! Images in warrend's store: upload of a unified tarball (metadata.yaml + rootfs/), its
//! fingerprint (the file's sha256), properties from metadata.yaml, aliases, and their JSON.

use crate::db::{Db, Image};
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;

/// metadata.yaml's fields the store keeps.
fn read_metadata(file: &Path) -> Result<(String, i64, Value), String> {
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
    if !has_rootfs {
        return Err(
            "the image has no rootfs/ (split images are uploaded as two files: not supported yet)"
                .into(),
        );
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

/// Adds an uploaded file (already in the store's directory as `upload`) under its fingerprint.
pub fn import(db: &Db, images_dir: &Path, upload: &Path, filename: &str) -> Result<Value, String> {
    use sha2::{Digest, Sha256};
    let cleanup = |e: String| {
        let _ = std::fs::remove_file(upload);
        e
    };
    let mut f = std::fs::File::open(upload).map_err(|e| cleanup(e.to_string()))?;
    let mut h = Sha256::new();
    let size = std::io::copy(&mut f, &mut h).map_err(|e| cleanup(e.to_string()))?;
    let fingerprint = hex::encode(h.finalize());
    let (architecture, created, properties) = read_metadata(upload).map_err(cleanup)?;
    if db
        .images()
        .map_err(|e| cleanup(e.to_string()))?
        .iter()
        .any(|i| i.fingerprint == fingerprint)
    {
        return Err(cleanup(format!(
            "Image with same fingerprint already exists: {fingerprint}"
        )));
    }
    let target = images_dir.join(&fingerprint);
    std::fs::rename(upload, &target).map_err(|e| cleanup(e.to_string()))?;
    let image = Image {
        fingerprint: fingerprint.clone(),
        filename: filename.to_string(),
        size: size as i64,
        architecture,
        properties,
        created_at: crate::time::from_unix(created),
        uploaded_at: crate::time::now(),
    };
    if let Err(e) = db.add_image(&image) {
        let _ = std::fs::remove_file(&target);
        return Err(e.to_string());
    }
    Ok(json!({"fingerprint": fingerprint, "size": size.to_string()}))
}

pub fn image_json(i: &Image, aliases: &[(String, String, String)]) -> Value {
    let names: Vec<Value> = aliases
        .iter()
        .filter(|(_, t, _)| *t == i.fingerprint)
        .map(|(n, _, d)| json!({"name": n, "description": d}))
        .collect();
    json!({
        "auto_update": false, "properties": i.properties, "public": false,
        "expires_at": "0001-01-01T00:00:00Z", "profiles": ["default"], "aliases": names,
        "architecture": i.architecture, "cached": false, "filename": i.filename,
        "fingerprint": i.fingerprint, "size": i.size, "type": "container",
        "created_at": i.created_at, "last_used_at": "0001-01-01T00:00:00Z",
        "uploaded_at": i.uploaded_at, "project": "default",
    })
}

/// An image by fingerprint or unique fingerprint prefix.
pub fn find<'a>(images: &'a [Image], fp: &str) -> Option<&'a Image> {
    let matches: Vec<&Image> = images
        .iter()
        .filter(|i| i.fingerprint.starts_with(fp))
        .collect();
    (matches.len() == 1 && !fp.is_empty()).then(|| matches[0])
}
