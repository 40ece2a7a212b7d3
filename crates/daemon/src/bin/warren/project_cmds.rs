//! `warren project list/show/create/delete/rename/get/set/unset/edit/info/switch/get-current`.

use crate::client::{operation, sync};
use crate::config::Config;
use crate::format::{self, Format};
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

fn path(name: &str) -> String {
    format!("/1.0/projects/{name}")
}

/// KEY=VALUE pairs as a config object.
pub fn pairs_to_config(pairs: &[String]) -> Result<Map<String, Value>> {
    let mut config = Map::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("{p}: expected KEY=VALUE"))?;
        config.insert(k.into(), json!(v));
    }
    Ok(config)
}

pub fn list(cfg: &Config, format: Format) -> Result<i32> {
    let projects = sync("GET", "/1.0/projects?recursion=1", None)?;
    let current = cfg.project();
    let yes = |p: &Value, k: &str| {
        if p["config"][k].as_str() == Some("true") {
            "YES"
        } else {
            "NO"
        }
        .to_string()
    };
    let rows: Vec<Vec<String>> = projects
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or("");
            vec![
                if name == current {
                    format!("{name} (current)")
                } else {
                    name.to_string()
                },
                yes(p, "features.images"),
                yes(p, "features.profiles"),
                yes(p, "features.storage.volumes"),
                yes(p, "features.networks"),
                p["description"].as_str().unwrap_or("").to_string(),
                p["used_by"].as_array().map_or(0, Vec::len).to_string(),
            ]
        })
        .collect();
    format::print(
        format,
        &[
            "NAME",
            "IMAGES",
            "PROFILES",
            "STORAGE VOLUMES",
            "NETWORKS",
            "DESCRIPTION",
            "USED BY",
        ],
        &rows,
        &projects,
    );
    Ok(0)
}

pub fn show(name: &str) -> Result<i32> {
    print!(
        "{}",
        format::yaml(&sync("GET", &path(name), None)?, 0, false)
    );
    Ok(0)
}

pub fn create(name: &str, pairs: &[String], description: &str) -> Result<i32> {
    let config = pairs_to_config(pairs)?;
    sync(
        "POST",
        "/1.0/projects",
        Some(json!({"name": name, "config": config, "description": description})),
    )?;
    println!("Project {name} created");
    Ok(0)
}

pub fn delete(cfg: &mut Config, name: &str) -> Result<i32> {
    sync("DELETE", &path(name), None)?;
    // the current project can't be one that is gone
    if cfg.project() == name {
        cfg.set_project("default");
        cfg.save()?;
    }
    println!("Project {name} deleted");
    Ok(0)
}

pub fn rename(cfg: &mut Config, from: &str, to: &str) -> Result<i32> {
    operation("POST", &path(from), Some(json!({"name": to})))?;
    if cfg.project() == from {
        cfg.set_project(to);
        cfg.save()?;
    }
    println!("Project {from} renamed to {to}");
    Ok(0)
}

pub fn get(name: &str, key: &str) -> Result<i32> {
    let p = sync("GET", &path(name), None)?;
    println!("{}", p["config"][key].as_str().unwrap_or(""));
    Ok(0)
}

pub fn set(name: &str, pairs: &[String]) -> Result<i32> {
    let config = pairs_to_config(pairs)?;
    sync("PATCH", &path(name), Some(json!({"config": config})))?;
    Ok(0)
}

pub fn unset(name: &str, key: &str) -> Result<i32> {
    let mut p = sync("GET", &path(name), None)?;
    if p["config"]
        .as_object_mut()
        .and_then(|m| m.remove(key))
        .is_none()
    {
        bail!("{key}: not set on project {name}");
    }
    sync(
        "PUT",
        &path(name),
        Some(json!({"config": p["config"], "description": p["description"]})),
    )?;
    Ok(0)
}

/// The project's config and description in $EDITOR (or from stdin when it isn't a terminal).
pub fn edit(name: &str) -> Result<i32> {
    let p = sync("GET", &path(name), None)?;
    let before = format::yaml(
        &json!({"config": p["config"], "description": p["description"]}),
        0,
        false,
    );
    let after = if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, &before)?;
        crate::file_cmds::edit_file(&file)?;
        std::fs::read_to_string(&file)?
    } else {
        std::io::read_to_string(std::io::stdin())?
    };
    if after == before {
        return Ok(0);
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(&after)
        .map_err(|e| anyhow::anyhow!("line {}: {e}: nothing changed", e.marker().line()))?;
    let mut v = docs
        .first()
        .map(crate::admin_init::yaml_to_json)
        .unwrap_or(Value::Null);
    if !v.is_object() {
        bail!("expected a mapping (config, description): nothing changed");
    }
    v["config"] = crate::admin_init::stringify_values(&v["config"]);
    sync("PUT", &path(name), Some(v))?;
    Ok(0)
}

/// `project info`: what its instances use against its limits.
pub fn info(name: &str, format: Format) -> Result<i32> {
    let state = sync("GET", &format!("{}/state", path(name)), None)?;
    let mut rows = Vec::new();
    if let Some(resources) = state["resources"].as_object() {
        for (what, r) in resources {
            let limit = r["limit"].as_i64().unwrap_or(-1);
            let usage = r["usage"].as_i64().unwrap_or(0);
            // amounts of bytes as incus shows them
            let shown = |n: i64| match what.as_str() {
                "memory" | "disk" => format::bytes(n.max(0) as u64),
                _ => n.to_string(),
            };
            rows.push(vec![
                what.to_uppercase(),
                if limit < 0 {
                    "UNLIMITED".to_string()
                } else {
                    shown(limit)
                },
                shown(usage),
            ]);
        }
    }
    format::print(format, &["RESOURCE", "LIMIT", "USAGE"], &rows, &state);
    Ok(0)
}

/// `project switch NAME`: the project commands work in from now on (of the local remote).
pub fn switch(cfg: &mut Config, name: &str) -> Result<i32> {
    // it must exist
    sync("GET", &path(name), None)?;
    cfg.set_project(name);
    cfg.save()?;
    Ok(0)
}
