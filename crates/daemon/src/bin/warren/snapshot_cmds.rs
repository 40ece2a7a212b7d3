//! `warren snapshot create/list/restore/delete`.

use crate::client::{operation, sync};
use crate::config::Config;
use crate::format::{self, Format};
use anyhow::Result;
use serde_json::json;

pub fn create(cfg: &Config, name: &str, snap: Option<&str>) -> Result<i32> {
    let name = crate::instance_cmds::local_name(cfg, name)?;
    let body = json!({"name": snap.unwrap_or(""), "stateful": false});
    operation(
        "POST",
        &format!("/1.0/instances/{name}/snapshots"),
        Some(body),
    )?;
    Ok(0)
}

pub fn list(cfg: &Config, name: &str, format: Format) -> Result<i32> {
    let name = crate::instance_cmds::local_name(cfg, name)?;
    let snaps = sync(
        "GET",
        &format!("/1.0/instances/{name}/snapshots?recursion=1"),
        None,
    )?;
    let rows: Vec<Vec<String>> = snaps
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                s["name"].as_str().unwrap_or("").to_string(),
                format::date(s["created_at"].as_str().unwrap_or("")),
                format::date(s["expires_at"].as_str().unwrap_or("")),
                "NO".into(),
            ]
        })
        .collect();
    format::print(
        format,
        &["NAME", "TAKEN AT", "EXPIRES AT", "STATEFUL"],
        &rows,
        &snaps,
    );
    Ok(0)
}

pub fn restore(cfg: &Config, name: &str, snap: &str) -> Result<i32> {
    let name = crate::instance_cmds::local_name(cfg, name)?;
    operation(
        "PUT",
        &format!("/1.0/instances/{name}"),
        Some(json!({"restore": format!("{name}/{snap}")})),
    )?;
    Ok(0)
}

pub fn delete(cfg: &Config, name: &str, snap: &str) -> Result<i32> {
    let name = crate::instance_cmds::local_name(cfg, name)?;
    operation(
        "DELETE",
        &format!("/1.0/instances/{name}/snapshots/{snap}"),
        None,
    )?;
    Ok(0)
}
