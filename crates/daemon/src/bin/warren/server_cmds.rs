//! The server's own config (`warren config set core.https_address :8443`, `get`, `unset`,
//! `show` without an instance) and its trust store (`warren config trust add NAME`, `list`,
//! `list-tokens`, `remove FINGERPRINT`), as incus has them.

use crate::client::{request, sync};
use crate::format::{self, Format};
use anyhow::{bail, Result};
use serde_json::{json, Value};

/// Whether a `config` argument names a server key rather than an instance (instance names have
/// no dots; server keys always do).
pub fn is_server_key(name: &str) -> bool {
    name.contains('.')
}

pub fn show() -> Result<i32> {
    let info = sync("GET", "/1.0", None)?;
    print!(
        "{}",
        format::yaml(&json!({"config": info["config"]}), 0, false)
    );
    Ok(0)
}

pub fn get(key: &str) -> Result<i32> {
    let info = sync("GET", "/1.0", None)?;
    println!("{}", info["config"][key].as_str().unwrap_or(""));
    Ok(0)
}

/// `set KEY VALUE` or `set KEY=VALUE...` (an empty value unsets).
pub fn set(first: &str, rest: &[String]) -> Result<i32> {
    let mut config = serde_json::Map::new();
    if rest.len() == 1 && !rest[0].contains('=') && !first.contains('=') {
        config.insert(first.to_string(), Value::String(rest[0].clone()));
    } else {
        for p in std::iter::once(first.to_string()).chain(rest.iter().cloned()) {
            let Some((k, v)) = p.split_once('=') else {
                bail!("{p}: KEY=VALUE (or KEY VALUE)");
            };
            config.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    sync("PATCH", "/1.0", Some(json!({"config": config})))?;
    Ok(0)
}

pub fn unset(key: &str) -> Result<i32> {
    sync("PATCH", "/1.0", Some(json!({"config": {key: ""}})))?;
    Ok(0)
}

/// `config trust add NAME [--restricted --projects P,...]`: a token for the client NAME,
/// printed for it to use once.
pub fn trust_add(name: &str, restricted: bool, projects: &[String]) -> Result<i32> {
    let (status, body) = request(
        "POST",
        "/1.0/certificates",
        Some(json!({"name": name, "type": "client", "token": true,
                    "restricted": restricted, "projects": projects})),
    )?;
    if status >= 400 {
        bail!("{}", body["error"].as_str().unwrap_or("failed"));
    }
    let meta = &body["metadata"]["metadata"];
    let token = json!({"client_name": name, "fingerprint": meta["fingerprint"],
                       "addresses": meta["addresses"], "secret": meta["secret"],
                       "expires_at": "0001-01-01T00:00:00Z"});
    use base64::Engine;
    println!(
        "Client {name} certificate add token:\n{}",
        base64::engine::general_purpose::STANDARD.encode(token.to_string())
    );
    Ok(0)
}

pub fn trust_list(format: Format) -> Result<i32> {
    let list = sync("GET", "/1.0/certificates?recursion=1", None)?;
    let rows: Vec<Vec<String>> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            let projects: Vec<&str> = c["projects"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            vec![
                s("name"),
                s("type"),
                s("description"),
                s("fingerprint").chars().take(12).collect(),
                if c["restricted"] == true { "YES" } else { "NO" }.to_string(),
                projects.join(","),
            ]
        })
        .collect();
    format::print(
        format,
        &[
            "NAME",
            "TYPE",
            "DESCRIPTION",
            "FINGERPRINT",
            "RESTRICTED",
            "PROJECTS",
        ],
        &rows,
        &list,
    );
    Ok(0)
}

/// The token operations still waiting for their client.
fn live_tokens() -> Result<Vec<Value>> {
    let ops = sync("GET", "/1.0/operations?recursion=1", None)?;
    Ok(ops
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .filter(|o| {
            o["class"] == "token"
                && o["status_code"] == 103
                && o["metadata"]["request"]["name"].is_string()
        })
        .collect())
}

pub fn trust_list_tokens(format: Format) -> Result<i32> {
    let tokens = live_tokens()?;
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|o| {
            vec![
                o["metadata"]["request"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                o["id"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    format::print(format, &["NAME", "OPERATION"], &rows, &json!(tokens));
    Ok(0)
}

pub fn trust_remove(fingerprint: &str) -> Result<i32> {
    sync("DELETE", &format!("/1.0/certificates/{fingerprint}"), None)?;
    Ok(0)
}

/// Ends an unused token (its operation cancelled).
pub fn trust_revoke_token(name: &str) -> Result<i32> {
    let id = live_tokens()?
        .into_iter()
        .find(|o| o["metadata"]["request"]["name"] == name)
        .and_then(|o| o["id"].as_str().map(str::to_string));
    let Some(id) = id else {
        bail!("No token for \"{name}\" (see `warren config trust list-tokens`)");
    };
    sync("DELETE", &format!("/1.0/operations/{id}"), None)?;
    // its end, so that a listing right after no longer shows it
    let _ = request("GET", &format!("/1.0/operations/{id}/wait?timeout=5"), None);
    Ok(0)
}
