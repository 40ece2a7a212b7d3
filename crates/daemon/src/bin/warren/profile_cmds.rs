//! `warren profile list/show/create/delete/rename/set/unset/device add|remove` and
//! `profile add/remove` (an instance's profiles).

use crate::client::{operation, sync};
use crate::config::Config;
use crate::format::{self, Format};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

pub fn list(format: Format) -> Result<i32> {
    let profiles = sync("GET", "/1.0/profiles?recursion=1", None)?;
    let rows: Vec<Vec<String>> = profiles
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                p["name"].as_str().unwrap_or("").to_string(),
                p["description"].as_str().unwrap_or("").to_string(),
                p["used_by"].as_array().map_or(0, Vec::len).to_string(),
            ]
        })
        .collect();
    format::print(
        format,
        &["NAME", "DESCRIPTION", "USED BY"],
        &rows,
        &profiles,
    );
    Ok(0)
}

pub fn show(name: &str) -> Result<i32> {
    print!(
        "{}",
        format::yaml(
            &sync("GET", &format!("/1.0/profiles/{name}"), None)?,
            0,
            false
        )
    );
    Ok(0)
}

pub fn create(name: &str) -> Result<i32> {
    sync("POST", "/1.0/profiles", Some(json!({"name": name})))?;
    println!("Profile {name} created");
    Ok(0)
}

pub fn delete(name: &str) -> Result<i32> {
    sync("DELETE", &format!("/1.0/profiles/{name}"), None)?;
    println!("Profile {name} deleted");
    Ok(0)
}

pub fn rename(from: &str, to: &str) -> Result<i32> {
    sync(
        "POST",
        &format!("/1.0/profiles/{from}"),
        Some(json!({"name": to})),
    )?;
    println!("Profile {from} renamed to {to}");
    Ok(0)
}

fn patch(name: &str, body: Value) -> Result<()> {
    sync("PATCH", &format!("/1.0/profiles/{name}"), Some(body))?;
    Ok(())
}

pub fn set(name: &str, pairs: &[String]) -> Result<i32> {
    let config = crate::project_cmds::pairs_to_config(pairs)?;
    patch(name, json!({"config": config}))?;
    Ok(0)
}

pub fn unset(name: &str, key: &str) -> Result<i32> {
    let mut p = sync("GET", &format!("/1.0/profiles/{name}"), None)?;
    if p["config"]
        .as_object_mut()
        .and_then(|m| m.remove(key))
        .is_none()
    {
        bail!("{key}: not set on profile {name}");
    }
    sync(
        "PUT",
        &format!("/1.0/profiles/{name}"),
        Some(
            json!({"config": p["config"], "devices": p["devices"], "description": p["description"]}),
        ),
    )?;
    Ok(0)
}

pub fn device_add(name: &str, device: &str, kind: &str, pairs: &[String]) -> Result<i32> {
    let mut d = json!({"type": kind});
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("{p}: KEY=VALUE"))?;
        d[k] = json!(v);
    }
    let p = sync("GET", &format!("/1.0/profiles/{name}"), None)?;
    if p["devices"].get(device).is_some() {
        bail!("The device already exists: {device}");
    }
    patch(name, json!({"devices": {device: d}}))?;
    println!("Device {device} added to {name}");
    Ok(0)
}

pub fn device_remove(name: &str, device: &str) -> Result<i32> {
    let mut p = sync("GET", &format!("/1.0/profiles/{name}"), None)?;
    if p["devices"]
        .as_object_mut()
        .and_then(|m| m.remove(device))
        .is_none()
    {
        bail!("Device {device} doesn't exist on profile {name}");
    }
    sync(
        "PUT",
        &format!("/1.0/profiles/{name}"),
        Some(
            json!({"config": p["config"], "devices": p["devices"], "description": p["description"]}),
        ),
    )?;
    println!("Device {device} removed from {name}");
    Ok(0)
}

/// `profile add INSTANCE PROFILE` / `profile remove INSTANCE PROFILE`.
pub fn assign(cfg: &Config, instance: &str, profile: &str, add: bool) -> Result<i32> {
    let name = crate::instance_cmds::local_name(cfg, instance)?;
    let i = sync("GET", &format!("/1.0/instances/{name}"), None)?;
    let mut list: Vec<Value> = i["profiles"].as_array().cloned().unwrap_or_default();
    let has = list.iter().any(|p| p == profile);
    match (add, has) {
        (true, true) => bail!("Profile {profile} is already applied to {name}"),
        (false, false) => bail!("Profile {profile} isn't applied to {name}"),
        (true, false) => list.push(json!(profile)),
        (false, true) => list.retain(|p| p != profile),
    }
    operation(
        "PATCH",
        &format!("/1.0/instances/{name}"),
        Some(json!({"profiles": list})),
    )?;
    println!(
        "Profile {profile} {} {name}",
        if add { "added to" } else { "removed from" }
    );
    Ok(0)
}
