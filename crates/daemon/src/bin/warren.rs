//! `warren`: the client, for now only `warren admin init` (`--minimal`: the default dir storage
//! pool and the default profile's root disk; `--preseed`: Incus's preseed YAML), talking to
//! warrend over its unix socket.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::{Read, Write};

#[derive(Parser)]
#[command(
    name = "warren",
    version,
    about = "The warren client (more with the next issue)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Administration
    Admin {
        #[command(subcommand)]
        command: Admin,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Set up a new warrend: a "default" dir storage pool and the default profile's root disk
    Init {
        /// Take the defaults without asking
        #[arg(long, conflicts_with = "preseed")]
        minimal: bool,
        /// Read Incus's preseed YAML (storage_pools, profiles) from standard input
        #[arg(long)]
        preseed: bool,
    },
}

/// One request to warrend; returns (status, JSON body).
fn request(
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    let socket = warren_daemon::warren_dir().join("unix.socket");
    let mut s = std::os::unix::net::UnixStream::connect(&socket).with_context(|| {
        format!(
            "connect to warrend at {} (is warrend running?)",
            socket.display()
        )
    })?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: unix.socket\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    ))
}

fn check(what: &str, (status, body): (u16, serde_json::Value)) -> Result<()> {
    if status >= 400 {
        bail!("{what}: {}", body["error"].as_str().unwrap_or("failed"));
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Admin {
            command: Admin::Init { minimal, preseed },
        } => {
            if preseed {
                init_preseed()
            } else {
                init(minimal)
            }
        }
    };
    if let Err(e) = r {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn init(minimal: bool) -> Result<()> {
    if !minimal {
        bail!("interactive questions come with the next warren: use `warren admin init --minimal`, or --preseed with a YAML on standard input");
    }
    let (status, pools) = request("GET", "/1.0/storage-pools", None)?;
    if status != 200 {
        bail!("warrend answered {status}");
    }
    if !pools
        .get("metadata")
        .and_then(|m| m.as_array())
        .is_some_and(|a| a.iter().any(|p| p == "/1.0/storage-pools/default"))
    {
        check(
            "create the default storage pool",
            request(
                "POST",
                "/1.0/storage-pools",
                Some(serde_json::json!({"name": "default", "driver": "dir"})),
            )?,
        )?;
    }
    check(
        "give the default profile its root disk",
        request(
            "PATCH",
            "/1.0/profiles/default",
            Some(
                serde_json::json!({"devices": {"root": {"type": "disk", "path": "/", "pool": "default"}}}),
            ),
        )?,
    )?;
    Ok(())
}

/// A YAML value as JSON (scalars as YAML typed them).
fn yaml_to_json(y: &yaml_rust2::Yaml) -> serde_json::Value {
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
fn stringify_values(v: &serde_json::Value) -> serde_json::Value {
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

/// `warren admin init --preseed < preseed.yaml`: Incus's preseed format. Storage pools are
/// created (an existing one is left as it is), profiles created or replaced.
fn init_preseed() -> Result<()> {
    use serde_json::{json, Value};
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("read the preseed from standard input")?;
    let docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .map_err(|e| anyhow::anyhow!("preseed: line {}: {e}", e.marker().line()))?;
    let doc = docs.first().map(yaml_to_json).unwrap_or(Value::Null);
    let Some(top) = doc.as_object() else {
        bail!("preseed: expected a mapping with storage_pools and profiles");
    };
    for (k, v) in top {
        match k.as_str() {
            "storage_pools" | "profiles" => {}
            "config" | "networks" | "projects" | "storage_volumes" | "cluster"
                if v.is_null()
                    || v.as_object().is_some_and(|m| m.is_empty())
                    || v.as_array().is_some_and(|a| a.is_empty()) => {}
            "networks" => bail!("preseed: networks: managed networks come with the next warren; remove them (nic devices can use nictype: bridged with parent: <bridge>)"),
            other => bail!("preseed: {other}: not supported by warrend (it takes storage_pools and profiles)"),
        }
    }
    let (_, pools) = request("GET", "/1.0/storage-pools", None)?;
    let existing: Vec<String> = pools["metadata"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for (i, pool) in top
        .get("storage_pools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = pool["name"]
            .as_str()
            .with_context(|| format!("preseed: storage_pools[{i}].name is missing"))?;
        if existing.contains(&format!("/1.0/storage-pools/{name}")) {
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
    for (i, profile) in top
        .get("profiles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = profile["name"]
            .as_str()
            .with_context(|| format!("preseed: profiles[{i}].name is missing"))?;
        let mut devices = serde_json::Map::new();
        for (dev, d) in profile["devices"].as_object().into_iter().flatten() {
            devices.insert(dev.clone(), stringify_values(d));
        }
        let body = json!({"description": profile["description"].as_str().unwrap_or(""),
                          "config": stringify_values(&profile["config"]), "devices": devices});
        let (status, _) = request("GET", &format!("/1.0/profiles/{name}"), None)?;
        let what = format!("profiles[{i}] ({name})");
        if status == 404 {
            let mut body = body;
            body["name"] = json!(name);
            check(&what, request("POST", "/1.0/profiles", Some(body))?)?;
        } else {
            check(
                &what,
                request("PUT", &format!("/1.0/profiles/{name}"), Some(body))?,
            )?;
        }
    }
    Ok(())
}
