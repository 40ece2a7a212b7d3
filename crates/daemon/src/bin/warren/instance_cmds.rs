//! Instance commands: `launch`/`create`, `list`, `info`, `start`/`stop`/`restart`/`pause`/
//! `resume`, `delete`, `rename` (`move`), `copy`.

use crate::client::{operation, sync};
use crate::config::Config;
use crate::format::{self, Format};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// An instance name on the local daemon (`local:c1` or `c1`).
pub fn local_name(cfg: &Config, s: &str) -> Result<String> {
    let (remote, name) = cfg.target(s)?;
    if cfg.remote(&remote)?.protocol != "warren" || cfg.remote(&remote)?.addr != "unix://" {
        bail!("\"{remote}\" is an image server: instances live on the local warrend (local:)");
    }
    if name.is_empty() {
        bail!("Missing the instance name");
    }
    Ok(name.to_string())
}

/// The `source` of an instance made from IMAGE (`[remote:]alias-or-fingerprint`).
pub fn image_source(cfg: &Config, image: &str) -> Result<Value> {
    let (remote, name) = cfg.target(image)?;
    let r = cfg.remote(&remote)?;
    if name.is_empty() {
        bail!("Missing the image name (REMOTE:ALIAS or a fingerprint)");
    }
    if r.protocol == "incus" {
        return crate::incus_remote::image_source(cfg, &remote, name);
    }
    if r.protocol == "simplestreams" {
        return Ok(json!({"type": "image", "alias": name, "server": r.addr,
                         "protocol": "simplestreams", "mode": "pull",
                         "certificate": cfg.cert(&remote).unwrap_or_default()}));
    }
    // a local alias, else a fingerprint
    let aliases = sync("GET", "/1.0/images/aliases?recursion=1", None)?;
    let is_alias = aliases
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["name"] == name));
    Ok(if is_alias {
        json!({"type": "image", "alias": name})
    } else {
        json!({"type": "image", "fingerprint": name})
    })
}

fn random_name() -> String {
    const ADJ: [&str; 8] = [
        "brisk", "calm", "keen", "merry", "quiet", "swift", "warm", "wise",
    ];
    const NOUN: [&str; 8] = [
        "badger", "hare", "otter", "stoat", "vole", "mole", "lynx", "fox",
    ];
    let mut b = [0u8; 2];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    format!("{}-{}", ADJ[b[0] as usize % 8], NOUN[b[1] as usize % 8])
}

pub struct Create {
    pub image: String,
    pub name: Option<String>,
    pub config: Vec<String>,
    pub profiles: Vec<String>,
    pub network: Option<String>,
    pub ephemeral: bool,
    pub start: bool,
}

pub fn create(cfg: &Config, c: Create) -> Result<i32> {
    let name = match &c.name {
        Some(n) => local_name(cfg, n)?,
        None => random_name(),
    };
    let mut config = serde_json::Map::new();
    for kv in &c.config {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("-c {kv}: KEY=VALUE"))?;
        config.insert(k.to_string(), json!(v));
    }
    let mut devices = serde_json::Map::new();
    if let Some(n) = &c.network {
        devices.insert(
            "eth0".into(),
            json!({"type": "nic", "name": "eth0", "network": n}),
        );
    }
    let profiles = if c.profiles.is_empty() {
        json!(["default"])
    } else {
        json!(c.profiles)
    };
    let body = json!({"name": name, "source": image_source(cfg, &c.image)?, "config": config,
                      "devices": devices, "profiles": profiles, "ephemeral": c.ephemeral,
                      "type": "container", "start": c.start});
    println!("{} {name}", if c.start { "Launching" } else { "Creating" });
    operation("POST", "/1.0/instances", Some(body))?;
    Ok(0)
}

/// IPv4 or IPv6 addresses of an instance's state, "ADDR (IFACE)" per line.
fn addresses(state: &Value, family: &str) -> String {
    let mut out = Vec::new();
    for (iface, n) in state["network"].as_object().into_iter().flatten() {
        if iface == "lo" {
            continue;
        }
        for a in n["addresses"].as_array().into_iter().flatten() {
            if a["family"] == family && a["scope"] == "global" {
                out.push(format!("{} ({iface})", a["address"].as_str().unwrap_or("")));
            }
        }
    }
    out.join("\n")
}

pub fn list(
    cfg: &Config,
    args: &[String],
    columns: &str,
    format: Format,
    all_projects: bool,
) -> Result<i32> {
    let mut filters = Vec::new();
    for a in args {
        if a.ends_with(':') {
            let remote = a.trim_end_matches(':');
            if cfg.remote(remote)?.addr != "unix://" {
                bail!("\"{remote}\" is an image server: it has no instances");
            }
        } else {
            filters.push(a.as_str());
        }
    }
    let all = sync(
        "GET",
        if all_projects {
            "/1.0/instances?recursion=2&all-projects=true"
        } else {
            "/1.0/instances?recursion=2"
        },
        None,
    )?;
    // with every project's, which project each is in comes first (as incus shows it)
    let columns = if all_projects && !columns.contains('e') {
        format!("e{columns}")
    } else {
        columns.to_string()
    };
    let matches = |i: &Value| {
        filters.iter().all(|f| match f.split_once('=') {
            Some((k, v)) => {
                let got = match k {
                    "status" | "state" => i["status"].as_str().unwrap_or("").to_string(),
                    "type" => i["type"].as_str().unwrap_or("").to_string(),
                    k => i["expanded_config"][k].as_str().unwrap_or("").to_string(),
                };
                got.eq_ignore_ascii_case(v)
            }
            // a bare word: a name prefix (incus takes a regex; a prefix is its common use)
            None => i["name"].as_str().is_some_and(|n| n.starts_with(f)),
        })
    };
    let chosen: Vec<Value> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| matches(i))
        .cloned()
        .collect();
    let cols: Vec<char> = columns.chars().collect();
    let mut headers = Vec::new();
    for c in &cols {
        headers.push(match c {
            'n' => "NAME",
            's' => "STATE",
            '4' => "IPV4",
            '6' => "IPV6",
            't' => "TYPE",
            'S' => "SNAPSHOTS",
            'd' => "DESCRIPTION",
            'a' => "ARCHITECTURE",
            'c' => "CREATED AT",
            'p' => "PID",
            'P' => "PROFILES",
            'N' => "PROCESSES",
            'e' => "PROJECT",
            'f' => "BASE IMAGE",
            'l' => "LAST USED AT",
            'L' => "LOCATION",
            'm' => "MEMORY USAGE",
            other => bail!("Unknown column \"{other}\" (nsS46tdacpPNefl Lm)"),
        });
    }
    let rows: Vec<Vec<String>> = chosen
        .iter()
        .map(|i| {
            let st = &i["state"];
            cols.iter()
                .map(|c| match c {
                    'n' => i["name"].as_str().unwrap_or("").to_string(),
                    's' => i["status"].as_str().unwrap_or("").to_uppercase(),
                    '4' => addresses(st, "inet"),
                    '6' => addresses(st, "inet6"),
                    't' => i["type"].as_str().unwrap_or("").to_uppercase(),
                    'S' => i["snapshots"].as_array().map_or(0, Vec::len).to_string(),
                    'd' => i["description"].as_str().unwrap_or("").to_string(),
                    'a' => i["architecture"].as_str().unwrap_or("").to_string(),
                    'c' => format::date(i["created_at"].as_str().unwrap_or("")),
                    'p' => match st["pid"].as_i64() {
                        Some(p) if p > 0 => p.to_string(),
                        _ => String::new(),
                    },
                    'P' => i["profiles"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .unwrap_or_default(),
                    'N' => st["processes"].as_i64().unwrap_or(0).to_string(),
                    'e' => i["project"].as_str().unwrap_or("default").to_string(),
                    'f' => i["config"]["volatile.base_image"]
                        .as_str()
                        .map(|f| f.chars().take(12).collect())
                        .unwrap_or_default(),
                    'l' => format::date(i["last_used_at"].as_str().unwrap_or("")),
                    'L' => "none".to_string(),
                    'm' => match st["memory"]["usage"].as_u64() {
                        Some(m) if m > 0 => format::bytes(m),
                        _ => String::new(),
                    },
                    _ => String::new(),
                })
                .collect()
        })
        .collect();
    format::print(format, &headers, &rows, &json!(chosen));
    Ok(0)
}

pub fn info(cfg: &Config, name: &str) -> Result<i32> {
    let name = local_name(cfg, name)?;
    let i = sync("GET", &format!("/1.0/instances/{name}?recursion=1"), None)?;
    let st = &i["state"];
    println!("Name: {name}");
    println!("Description: {}", i["description"].as_str().unwrap_or(""));
    println!(
        "Status: {}",
        i["status"].as_str().unwrap_or("").to_uppercase()
    );
    println!("Type: container");
    println!("Architecture: {}", i["architecture"].as_str().unwrap_or(""));
    if let Some(pid) = st["pid"].as_i64().filter(|p| *p > 0) {
        println!("PID: {pid}");
    }
    println!(
        "Created: {}",
        format::date(i["created_at"].as_str().unwrap_or(""))
    );
    if st["status"] == "Running" {
        println!("\nResources:");
        println!("  Processes: {}", st["processes"].as_i64().unwrap_or(0));
        println!(
            "  CPU usage:\n    CPU usage (in seconds): {}",
            st["cpu"]["usage"].as_u64().unwrap_or(0) / 1_000_000_000
        );
        println!(
            "  Memory usage:\n    Memory (current): {}\n    Memory (peak): {}",
            format::bytes(st["memory"]["usage"].as_u64().unwrap_or(0)),
            format::bytes(st["memory"]["usage_peak"].as_u64().unwrap_or(0))
        );
        println!("  Network usage:");
        for (iface, n) in st["network"].as_object().into_iter().flatten() {
            let c = &n["counters"];
            println!("    {iface}:");
            println!("      Type: {}", n["type"].as_str().unwrap_or(""));
            println!(
                "      State: {}",
                n["state"].as_str().unwrap_or("").to_uppercase()
            );
            if let Some(h) = n["host_name"].as_str().filter(|h| !h.is_empty()) {
                println!("      Host interface: {h}");
            }
            println!("      MAC address: {}", n["hwaddr"].as_str().unwrap_or(""));
            println!("      MTU: {}", n["mtu"]);
            println!(
                "      Bytes received: {}",
                format::bytes(c["bytes_received"].as_u64().unwrap_or(0))
            );
            println!(
                "      Bytes sent: {}",
                format::bytes(c["bytes_sent"].as_u64().unwrap_or(0))
            );
            println!("      Packets received: {}", c["packets_received"]);
            println!("      Packets sent: {}", c["packets_sent"]);
            println!("      IP addresses:");
            for a in n["addresses"].as_array().into_iter().flatten() {
                println!(
                    "        {}:  {}/{} ({})",
                    a["family"].as_str().unwrap_or(""),
                    a["address"].as_str().unwrap_or(""),
                    a["netmask"].as_str().unwrap_or(""),
                    a["scope"].as_str().unwrap_or("")
                );
            }
        }
    }
    let snaps = sync(
        "GET",
        &format!("/1.0/instances/{name}/snapshots?recursion=1"),
        None,
    )?;
    if let Some(list) = snaps.as_array().filter(|a| !a.is_empty()) {
        println!("\nSnapshots:");
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|s| {
                vec![
                    s["name"].as_str().unwrap_or("").to_string(),
                    format::date(s["created_at"].as_str().unwrap_or("")),
                    String::new(),
                    "NO".into(),
                ]
            })
            .collect();
        print!(
            "{}",
            format::table(&["NAME", "TAKEN AT", "EXPIRES AT", "STATEFUL"], &rows, true)
        );
    }
    Ok(0)
}

/// start, stop, restart, freeze (pause), unfreeze (resume) on each name.
pub fn state(
    cfg: &Config,
    action: &str,
    names: &[String],
    force: bool,
    timeout: i64,
) -> Result<i32> {
    if names.is_empty() {
        bail!("Missing the instance name");
    }
    for n in names {
        let name = local_name(cfg, n)?;
        let body = json!({"action": action, "timeout": timeout, "force": force, "stateful": false});
        operation("PUT", &format!("/1.0/instances/{name}/state"), Some(body))
            .with_context(|| format!("{action} {name}"))?;
    }
    Ok(0)
}

pub fn delete(cfg: &Config, names: &[String], force: bool) -> Result<i32> {
    if names.is_empty() {
        bail!("Missing the instance name");
    }
    for n in names {
        let name = local_name(cfg, n)?;
        let i = sync("GET", &format!("/1.0/instances/{name}"), None)?;
        if i["status"] != "Stopped" {
            if !force {
                bail!("The instance is currently running, stop it first or pass --force");
            }
            let body = json!({"action": "stop", "timeout": -1, "force": true});
            operation("PUT", &format!("/1.0/instances/{name}/state"), Some(body))?;
        }
        operation("DELETE", &format!("/1.0/instances/{name}"), None)?;
    }
    Ok(0)
}

pub fn rename(cfg: &Config, from: &str, to: Option<&str>, project: Option<&str>) -> Result<i32> {
    let from = local_name(cfg, from)?;
    let to = match (to, project) {
        (Some(to), _) => local_name(cfg, to)?,
        (None, Some(_)) => from.clone(),
        (None, None) => bail!("warren move NAME NEW-NAME, or NAME --target-project PROJECT"),
    };
    let mut body = json!({"name": to, "migration": false});
    if let Some(p) = project {
        body["project"] = json!(p);
    }
    operation("POST", &format!("/1.0/instances/{from}"), Some(body))?;
    Ok(0)
}

/// `copy FROM TO`: in the current project, or from it into `target` (the request goes to the
/// target project, naming the source's).
pub fn copy(
    cfg: &Config,
    from: &str,
    to: &str,
    current: &str,
    target: Option<&str>,
) -> Result<i32> {
    let (from, to) = (local_name(cfg, from)?, local_name(cfg, to)?);
    let body = json!({"name": to, "type": "container",
                      "source": {"type": "copy", "source": from, "project": current}});
    let path = match target {
        Some(t) => format!("/1.0/instances?project={t}"),
        None => "/1.0/instances".to_string(),
    };
    operation("POST", &path, Some(body))?;
    Ok(0)
}
