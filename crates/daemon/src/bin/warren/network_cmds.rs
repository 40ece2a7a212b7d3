//! `warren network list/show/create/delete/set/list-leases`.

use crate::client::sync;
use crate::format::{self, Format};
use anyhow::{Context, Result};
use serde_json::{json, Value};

pub fn list(format: Format) -> Result<i32> {
    let nets = sync("GET", "/1.0/networks?recursion=1", None)?;
    let rows: Vec<Vec<String>> = nets
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            vec![
                n["name"].as_str().unwrap_or("").to_string(),
                n["type"].as_str().unwrap_or("").to_string(),
                if n["managed"] == true { "YES" } else { "NO" }.into(),
                n["config"]["ipv4.address"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                n["config"]["ipv6.address"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                n["description"].as_str().unwrap_or("").to_string(),
                n["used_by"].as_array().map_or(0, Vec::len).to_string(),
                n["status"].as_str().unwrap_or("").to_uppercase(),
            ]
        })
        .collect();
    format::print(
        format,
        &[
            "NAME",
            "TYPE",
            "MANAGED",
            "IPV4",
            "IPV6",
            "DESCRIPTION",
            "USED BY",
            "STATE",
        ],
        &rows,
        &nets,
    );
    Ok(0)
}

pub fn show(name: &str) -> Result<i32> {
    print!(
        "{}",
        format::yaml(
            &sync("GET", &format!("/1.0/networks/{name}"), None)?,
            0,
            false
        )
    );
    Ok(0)
}

fn pairs(kv: &[String]) -> Result<serde_json::Map<String, Value>> {
    let mut m = serde_json::Map::new();
    for p in kv {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("{p}: KEY=VALUE"))?;
        m.insert(k.into(), json!(v));
    }
    Ok(m)
}

pub fn create(name: &str, kv: &[String]) -> Result<i32> {
    sync(
        "POST",
        "/1.0/networks",
        Some(json!({"name": name, "type": "bridge", "config": pairs(kv)?})),
    )?;
    println!("Network {name} created");
    Ok(0)
}

pub fn set(name: &str, kv: &[String]) -> Result<i32> {
    sync(
        "PATCH",
        &format!("/1.0/networks/{name}"),
        Some(json!({"config": pairs(kv)?})),
    )?;
    Ok(0)
}

pub fn delete(name: &str) -> Result<i32> {
    sync("DELETE", &format!("/1.0/networks/{name}"), None)?;
    println!("Network {name} deleted");
    Ok(0)
}

pub fn leases(name: &str, format: Format) -> Result<i32> {
    let leases = sync("GET", &format!("/1.0/networks/{name}/leases"), None)?;
    let rows: Vec<Vec<String>> = leases
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            ["hostname", "hwaddr", "address"]
                .iter()
                .map(|k| l[*k].as_str().unwrap_or("").to_string())
                .chain([l["type"].as_str().unwrap_or("").to_uppercase()])
                .collect()
        })
        .collect();
    format::print(
        format,
        &["HOSTNAME", "MAC ADDRESS", "IP ADDRESS", "TYPE"],
        &rows,
        &leases,
    );
    Ok(0)
}
