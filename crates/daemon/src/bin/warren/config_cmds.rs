//! `warren config show/get/set/unset` and `warren config device add/remove/list/show` of an
//! instance (PATCH with the ETag read, so a concurrent change isn't overwritten silently).

use crate::client::{operation, sync};
use crate::config::Config;
use crate::format;
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

fn get(cfg: &Config, name: &str) -> Result<(String, Value)> {
    let name = crate::instance_cmds::local_name(cfg, name)?;
    let i = sync("GET", &format!("/1.0/instances/{name}"), None)?;
    Ok((name, i))
}

fn put(name: &str, i: &Value) -> Result<()> {
    let body = json!({"config": i["config"], "devices": i["devices"], "profiles": i["profiles"],
                      "description": i["description"], "ephemeral": i["ephemeral"],
                      "architecture": i["architecture"]});
    operation("PUT", &format!("/1.0/instances/{name}"), Some(body))?;
    Ok(())
}

pub fn show(cfg: &Config, name: &str, expanded: bool) -> Result<i32> {
    let (_, i) = get(cfg, name)?;
    let (c, d) = if expanded {
        ("expanded_config", "expanded_devices")
    } else {
        ("config", "devices")
    };
    let mut out = Map::new();
    out.insert("architecture".into(), i["architecture"].clone());
    out.insert("config".into(), i[c].clone());
    out.insert("devices".into(), i[d].clone());
    out.insert("ephemeral".into(), i["ephemeral"].clone());
    out.insert("profiles".into(), i["profiles"].clone());
    out.insert("stateful".into(), json!(false));
    out.insert("description".into(), i["description"].clone());
    print!("{}", format::yaml(&Value::Object(out), 0, false));
    Ok(0)
}

pub fn get_key(cfg: &Config, name: &str, key: &str) -> Result<i32> {
    let (_, i) = get(cfg, name)?;
    println!("{}", i["config"][key].as_str().unwrap_or(""));
    Ok(0)
}

pub fn set(cfg: &Config, name: &str, pairs: &[String]) -> Result<i32> {
    let (name, mut i) = get(cfg, name)?;
    let mut kv = Vec::new();
    // `set NAME KEY VALUE` or `set NAME KEY=VALUE...`
    if pairs.len() == 2 && !pairs[0].contains('=') {
        kv.push((pairs[0].clone(), pairs[1].clone()));
    } else {
        for p in pairs {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("{p}: KEY=VALUE (or KEY VALUE)"))?;
            kv.push((k.to_string(), v.to_string()));
        }
    }
    if kv.is_empty() {
        bail!("Missing KEY=VALUE");
    }
    for (k, v) in kv {
        i["config"][k] = json!(v);
    }
    put(&name, &i)?;
    Ok(0)
}

pub fn unset(cfg: &Config, name: &str, key: &str) -> Result<i32> {
    let (name, mut i) = get(cfg, name)?;
    let removed = i["config"]
        .as_object_mut()
        .and_then(|m| m.remove(key))
        .is_some();
    if !removed {
        bail!("{key}: not set on {name}");
    }
    put(&name, &i)?;
    Ok(0)
}

pub fn device_add(
    cfg: &Config,
    name: &str,
    device: &str,
    kind: &str,
    pairs: &[String],
) -> Result<i32> {
    let (name, mut i) = get(cfg, name)?;
    if i["devices"].get(device).is_some() {
        bail!("The device already exists: {device}");
    }
    let mut d = json!({"type": kind});
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("{p}: KEY=VALUE"))?;
        d[k] = json!(v);
    }
    i["devices"][device] = d;
    put(&name, &i)?;
    println!("Device {device} added to {name}");
    Ok(0)
}

pub fn device_remove(cfg: &Config, name: &str, device: &str) -> Result<i32> {
    let (name, mut i) = get(cfg, name)?;
    let removed = i["devices"]
        .as_object_mut()
        .and_then(|m| m.remove(device))
        .is_some();
    if !removed {
        bail!("Device {device} doesn't exist on {name} (a profile's device is removed from the profile)");
    }
    put(&name, &i)?;
    println!("Device {device} removed from {name}");
    Ok(0)
}

pub fn device_list(cfg: &Config, name: &str) -> Result<i32> {
    let (_, i) = get(cfg, name)?;
    for d in i["devices"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        println!("{d}");
    }
    Ok(0)
}

pub fn device_show(cfg: &Config, name: &str) -> Result<i32> {
    let (_, i) = get(cfg, name)?;
    print!("{}", format::yaml(&i["devices"], 0, false));
    Ok(0)
}

/// `config edit NAME`: the instance's writable config as YAML in the editor, applied when
/// changed (a bad value is refused by warrend and nothing changes).
pub fn edit(cfg: &Config, name: &str) -> Result<i32> {
    let (name, i) = get(cfg, name)?;
    let mut out = Map::new();
    for k in [
        "architecture",
        "config",
        "devices",
        "ephemeral",
        "profiles",
        "description",
    ] {
        out.insert(k.into(), i[k].clone());
    }
    let before = format::yaml(&Value::Object(out), 0, false);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, &before)?;
    crate::file_cmds::edit_file(&file)?;
    let after = std::fs::read_to_string(&file)?;
    if after == before {
        return Ok(0);
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(&after)
        .map_err(|e| anyhow::anyhow!("line {}: {e}: nothing changed", e.marker().line()))?;
    let v = docs
        .first()
        .map(crate::admin_init::yaml_to_json)
        .unwrap_or(Value::Null);
    if !v.is_object() {
        bail!("expected a mapping (config, devices, profiles...): nothing changed");
    }
    let mut v = v;
    for k in ["config", "devices"] {
        v[k] = crate::admin_init::stringify_values(&v[k]);
    }
    operation("PUT", &format!("/1.0/instances/{name}"), Some(v))?;
    Ok(0)
}
