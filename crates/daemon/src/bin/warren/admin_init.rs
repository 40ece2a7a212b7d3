//! `warren admin init`: a storage pool, a managed bridge and the default profile's root disk and
//! nic, from questions (interactive), the defaults (`--minimal`), or Incus's preseed YAML on
//! standard input (`--preseed`). Whatever exists already is kept, so running it again is harmless.

use crate::client::{check, request};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, Read, Write};

/// The bridge `--minimal` makes, as Incus's makes incusbr0.
pub const DEFAULT_BRIDGE: &str = "warrenbr0";

/// A YAML value as JSON (scalars as YAML typed them).
pub fn yaml_to_json(y: &yaml_rust2::Yaml) -> serde_json::Value {
    use serde_json::Value;
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::from(s.clone()),
        Yaml::Boolean(b) => Value::from(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        _ => String::new(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Config and device values are strings in the API; YAML may have typed them.
pub fn stringify_values(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Bool(b) => Value::from(b.to_string()),
                        Value::Number(n) => Value::from(n.to_string()),
                        other => stringify_values(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The preseed `--minimal` stands for: the default dir pool, `network` (none: no network) and the
/// default profile using both.
fn minimal_preseed(network: Option<&str>) -> Value {
    let mut devices = json!({"root": {"type": "disk", "path": "/", "pool": "default"}});
    let mut networks = json!([]);
    if let Some(n) = network {
        networks = json!([{"name": n, "type": "bridge", "config": {"ipv4.address": "auto", "ipv6.address": "none"}}]);
        devices["eth0"] = json!({"type": "nic", "name": "eth0", "network": n});
    }
    json!({
        "storage_pools": [{"name": "default", "driver": "dir"}],
        "networks": networks,
        "profiles": [{"name": "default", "devices": devices}],
    })
}

pub fn minimal(network: &str) -> Result<()> {
    let network = (network != "none").then_some(network);
    apply(&minimal_preseed(network), true)
}

/// One question on the terminal; the default when the answer is empty.
fn ask(input: &mut impl BufRead, question: &str, default: &str) -> Result<String> {
    print!("{question} [default={default}]: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        bail!("standard input ended before the questions did (use --minimal or --preseed)");
    }
    let answer = line.trim();
    Ok(if answer.is_empty() {
        default.to_string()
    } else {
        answer.to_string()
    })
}

fn yes(input: &mut impl BufRead, question: &str, default: bool) -> Result<bool> {
    loop {
        let a = ask(
            input,
            &format!("{question} (yes/no)"),
            if default { "yes" } else { "no" },
        )?;
        match a.to_ascii_lowercase().as_str() {
            "yes" | "y" => return Ok(true),
            "no" | "n" => return Ok(false),
            _ => println!("Please answer yes or no."),
        }
    }
}

pub fn interactive() -> Result<()> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut pools = Vec::new();
    let mut devices = serde_json::Map::new();
    if yes(
        &mut input,
        "Would you like to create a new storage pool?",
        true,
    )? {
        let name = ask(&mut input, "Name of the new storage pool", "default")?;
        let driver = ask(
            &mut input,
            "Name of the storage backend to use (dir)",
            "dir",
        )?;
        let source = ask(
            &mut input,
            "Where should its files be? (a directory; empty: under warrend's)",
            "",
        )?;
        let mut pool = json!({"name": name, "driver": driver});
        if !source.is_empty() {
            pool["config"] = json!({"source": source});
        }
        devices.insert(
            "root".into(),
            json!({"type": "disk", "path": "/", "pool": name}),
        );
        pools.push(pool);
    }
    let mut networks = Vec::new();
    if yes(
        &mut input,
        "Would you like to create a new local network bridge?",
        true,
    )? {
        let name = ask(
            &mut input,
            "What should the new bridge be called?",
            DEFAULT_BRIDGE,
        )?;
        let v4 = ask(
            &mut input,
            "What IPv4 address should be used? (CIDR subnet notation, \u{201c}auto\u{201d})",
            "auto",
        )?;
        let v6 = ask(
            &mut input,
            "What IPv6 address should be used? (CIDR subnet notation, \u{201c}auto\u{201d} or \u{201c}none\u{201d})",
            "none",
        )?;
        networks.push(json!({"name": name, "type": "bridge",
                             "config": {"ipv4.address": v4, "ipv6.address": v6}}));
        devices.insert(
            "eth0".into(),
            json!({"type": "nic", "name": "eth0", "network": name}),
        );
    }
    let doc = json!({"storage_pools": pools, "networks": networks,
                     "profiles": [{"name": "default", "devices": devices}]});
    if yes(
        &mut input,
        "Would you like a YAML \"init\" preseed to be printed?",
        false,
    )? {
        print!("{}", to_yaml(&doc, 0));
    }
    apply(&doc, true)
}

/// JSON as block YAML (for the preseed printed).
fn to_yaml(v: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let scalar = |v: &Value| match v {
        Value::String(s) if s.is_empty() || s.contains([':', '#', '"']) => format!("{s:?}"),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::new();
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::Object(o) if !o.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n{}", to_yaml(v, indent + 2)))
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n{}", to_yaml(v, indent)))
                    }
                    Value::Object(_) => out.push_str(&format!("{pad}{k}: {{}}\n")),
                    Value::Array(_) => out.push_str(&format!("{pad}{k}: []\n")),
                    other => out.push_str(&format!("{pad}{k}: {}\n", scalar(other))),
                }
            }
        }
        Value::Array(a) => {
            for item in a {
                let inner = to_yaml(item, indent + 2);
                out.push_str(&format!(
                    "{pad}- {}\n",
                    inner.trim_start().trim_end_matches('\n')
                ));
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
    out
}

/// `warren admin init --preseed < preseed.yaml`: Incus's preseed format.
pub fn preseed() -> Result<()> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("read the preseed from standard input")?;
    let docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .map_err(|e| anyhow::anyhow!("preseed: line {}: {e}", e.marker().line()))?;
    let doc = docs.first().map(yaml_to_json).unwrap_or(Value::Null);
    apply(&doc, false)
}

fn names(path: &str) -> Result<Vec<String>> {
    let (_, list) = request("GET", path, None)?;
    Ok(list["metadata"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    p.as_str()
                        .and_then(|p| p.rsplit('/').next())
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Makes what the preseed says: pools and networks created unless they exist, profiles created or
/// (`merge_profiles`: their devices added to; else: replaced).
fn apply(doc: &Value, merge_profiles: bool) -> Result<()> {
    let Some(top) = doc.as_object() else {
        bail!("preseed: expected a mapping with storage_pools, networks and profiles");
    };
    for (k, v) in top {
        match k.as_str() {
            "storage_pools" | "profiles" | "networks" => {}
            "config" | "projects" | "storage_volumes" | "cluster"
                if v.is_null()
                    || v.as_object().is_some_and(|m| m.is_empty())
                    || v.as_array().is_some_and(|a| a.is_empty()) => {}
            other => bail!("preseed: {other}: not supported by warrend (it takes storage_pools, networks and profiles)"),
        }
    }
    let list = |k: &str| -> Vec<Value> {
        top.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let pools = names("/1.0/storage-pools")?;
    for (i, pool) in list("storage_pools").iter().enumerate() {
        let name = pool["name"]
            .as_str()
            .with_context(|| format!("preseed: storage_pools[{i}].name is missing"))?;
        if pools.iter().any(|p| p == name) {
            continue;
        }
        let body = json!({"name": name, "driver": pool["driver"].as_str().unwrap_or("dir"),
                          "description": pool["description"].as_str().unwrap_or(""),
                          "config": stringify_values(&pool["config"])});
        check(
            &format!("storage_pools[{i}] ({name})"),
            request("POST", "/1.0/storage-pools", Some(body))?,
        )?;
    }
    let (_, nets) = request("GET", "/1.0/networks?recursion=1", None)?;
    for (i, net) in list("networks").iter().enumerate() {
        let name = net["name"]
            .as_str()
            .with_context(|| format!("preseed: networks[{i}].name is missing"))?;
        let existing = nets["metadata"]
            .as_array()
            .and_then(|a| a.iter().find(|n| n["name"] == name).cloned());
        match existing {
            Some(n) if n["managed"] == true => continue,
            Some(_) => bail!(
                "networks[{i}] ({name}): the host has an interface of that name already; choose another name"
            ),
            None => {}
        }
        let body = json!({"name": name, "type": net["type"].as_str().unwrap_or("bridge"),
                          "description": net["description"].as_str().unwrap_or(""),
                          "config": stringify_values(&net["config"])});
        check(
            &format!("networks[{i}] ({name})"),
            request("POST", "/1.0/networks", Some(body))?,
        )?;
    }
    for (i, profile) in list("profiles").iter().enumerate() {
        let name = profile["name"]
            .as_str()
            .with_context(|| format!("preseed: profiles[{i}].name is missing"))?;
        let mut devices = serde_json::Map::new();
        for (dev, d) in profile["devices"].as_object().into_iter().flatten() {
            devices.insert(dev.clone(), stringify_values(d));
        }
        let mut body = json!({"config": stringify_values(&profile["config"]), "devices": devices});
        // a description the preseed doesn't give is kept (merging) or emptied (replacing)
        if let Some(d) = profile["description"].as_str() {
            body["description"] = json!(d);
        } else if !merge_profiles {
            body["description"] = json!("");
        }
        let (status, _) = request("GET", &format!("/1.0/profiles/{name}"), None)?;
        let what = format!("profiles[{i}] ({name})");
        if status == 404 {
            let mut body = body;
            body["name"] = json!(name);
            check(&what, request("POST", "/1.0/profiles", Some(body))?)?;
        } else {
            let method = if merge_profiles { "PATCH" } else { "PUT" };
            check(
                &what,
                request(method, &format!("/1.0/profiles/{name}"), Some(body))?,
            )?;
        }
    }
    Ok(())
}
