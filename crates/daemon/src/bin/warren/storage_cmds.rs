//! `warren storage list/show/create/delete` and `warren storage volume
//! list/show/create/delete/rename/attach/detach`.

use crate::client::sync;
use crate::config::Config;
use crate::format::{self, Format};
use anyhow::{bail, Context, Result};
use serde_json::json;

pub fn list(format: Format) -> Result<i32> {
    let pools = sync("GET", "/1.0/storage-pools?recursion=1", None)?;
    let rows: Vec<Vec<String>> = pools
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                p["name"].as_str().unwrap_or("").to_string(),
                p["driver"].as_str().unwrap_or("").to_string(),
                p["config"]["source"].as_str().unwrap_or("").to_string(),
                p["description"].as_str().unwrap_or("").to_string(),
                p["used_by"].as_array().map_or(0, Vec::len).to_string(),
                p["status"].as_str().unwrap_or("").to_uppercase(),
            ]
        })
        .collect();
    format::print(
        format,
        &[
            "NAME",
            "DRIVER",
            "SOURCE",
            "DESCRIPTION",
            "USED BY",
            "STATE",
        ],
        &rows,
        &pools,
    );
    Ok(0)
}

pub fn show(name: &str) -> Result<i32> {
    print!(
        "{}",
        format::yaml(
            &sync("GET", &format!("/1.0/storage-pools/{name}"), None)?,
            0,
            false
        )
    );
    Ok(0)
}

fn pairs(kv: &[String]) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut m = serde_json::Map::new();
    for p in kv {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("{p}: KEY=VALUE"))?;
        m.insert(k.into(), json!(v));
    }
    Ok(m)
}

pub fn create(name: &str, driver: &str, kv: &[String]) -> Result<i32> {
    sync(
        "POST",
        "/1.0/storage-pools",
        Some(json!({"name": name, "driver": driver, "config": pairs(kv)?})),
    )?;
    println!("Storage pool {name} created");
    Ok(0)
}

pub fn delete(name: &str) -> Result<i32> {
    sync("DELETE", &format!("/1.0/storage-pools/{name}"), None)?;
    println!("Storage pool {name} deleted");
    Ok(0)
}

pub fn volume_list(pool: &str, format: Format) -> Result<i32> {
    let vols = sync(
        "GET",
        &format!("/1.0/storage-pools/{pool}/volumes?recursion=1"),
        None,
    )?;
    let rows: Vec<Vec<String>> = vols
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            vec![
                v["type"].as_str().unwrap_or("").to_string(),
                v["name"].as_str().unwrap_or("").to_string(),
                v["description"].as_str().unwrap_or("").to_string(),
                v["content_type"].as_str().unwrap_or("").to_string(),
                v["used_by"].as_array().map_or(0, Vec::len).to_string(),
            ]
        })
        .collect();
    format::print(
        format,
        &["TYPE", "NAME", "DESCRIPTION", "CONTENT-TYPE", "USED BY"],
        &rows,
        &vols,
    );
    Ok(0)
}

pub fn volume_show(pool: &str, name: &str) -> Result<i32> {
    let v = sync(
        "GET",
        &format!("/1.0/storage-pools/{pool}/volumes/custom/{name}"),
        None,
    )?;
    print!("{}", format::yaml(&v, 0, false));
    Ok(0)
}

pub fn volume_create(pool: &str, name: &str, kv: &[String]) -> Result<i32> {
    sync(
        "POST",
        &format!("/1.0/storage-pools/{pool}/volumes/custom"),
        Some(
            json!({"name": name, "type": "custom", "content_type": "filesystem", "config": pairs(kv)?}),
        ),
    )?;
    println!("Storage volume {name} created");
    Ok(0)
}

pub fn volume_delete(pool: &str, name: &str) -> Result<i32> {
    sync(
        "DELETE",
        &format!("/1.0/storage-pools/{pool}/volumes/custom/{name}"),
        None,
    )?;
    println!("Storage volume {name} deleted");
    Ok(0)
}

pub fn volume_rename(pool: &str, from: &str, to: &str) -> Result<i32> {
    sync(
        "POST",
        &format!("/1.0/storage-pools/{pool}/volumes/custom/{from}"),
        Some(json!({"name": to})),
    )?;
    println!("Renamed storage volume from \"{from}\" to \"{to}\"");
    Ok(0)
}

/// `storage volume attach POOL VOLUME INSTANCE PATH [DEVICE]`.
pub fn volume_attach(
    cfg: &Config,
    pool: &str,
    vol: &str,
    instance: &str,
    path: &str,
) -> Result<i32> {
    let name = crate::instance_cmds::local_name(cfg, instance)?;
    let i = sync("GET", &format!("/1.0/instances/{name}"), None)?;
    if i["devices"].get(vol).is_some() {
        bail!("The device already exists: {vol}");
    }
    crate::client::operation(
        "PATCH",
        &format!("/1.0/instances/{name}"),
        Some(
            json!({"devices": {vol: {"type": "disk", "pool": pool, "source": vol, "path": path}}}),
        ),
    )?;
    Ok(0)
}

pub fn volume_detach(cfg: &Config, pool: &str, vol: &str, instance: &str) -> Result<i32> {
    let name = crate::instance_cmds::local_name(cfg, instance)?;
    let mut i = sync("GET", &format!("/1.0/instances/{name}"), None)?;
    let device = i["devices"]
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(_, d)| d["pool"] == pool && d["source"] == vol)
                .map(|(k, _)| k.clone())
        })
        .with_context(|| format!("{vol} isn't attached to {name}"))?;
    if let Some(m) = i["devices"].as_object_mut() {
        m.remove(&device);
    }
    crate::client::operation(
        "PUT",
        &format!("/1.0/instances/{name}"),
        Some(
            json!({"config": i["config"], "devices": i["devices"], "profiles": i["profiles"],
                    "description": i["description"], "ephemeral": i["ephemeral"]}),
        ),
    )?;
    Ok(0)
}
