//! `/1.0/networks[/<name>[/leases|/state]]`: the host's interfaces (unmanaged) and warrend's
//! managed bridges: create, show, edit, rename (refused), delete (refused while in use).

use crate::api::{self, ApiError};
use crate::db::Network;
use crate::http::{Request, Response};
use crate::networks;
use crate::routes::{host_networks, internal, json_body, merge, object_or_empty, recursion};
use crate::Daemon;
use serde_json::{json, Value};
use std::sync::Arc;

fn managed_json(d: &Daemon, n: &Network) -> Result<Value, ApiError> {
    let db = d.db();
    let (profiles, instances) = (
        db.all_profiles().map_err(internal)?,
        db.instances().map_err(internal)?,
    );
    Ok(networks::network_json(
        n,
        networks::used_by(&profiles, &instances, &n.name),
        networks::is_up(&d.dir, &n.name),
    ))
}

/// Every network: the managed ones, then the host's other interfaces.
fn all(d: &Daemon) -> Result<Vec<Value>, ApiError> {
    let managed = d.db().networks().map_err(internal)?;
    let mut out = Vec::new();
    for n in &managed {
        out.push(managed_json(d, n)?);
    }
    out.extend(
        host_networks()
            .into_iter()
            .filter(|h| !managed.iter().any(|n| h["name"] == n.name.as_str())),
    );
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(out)
}

fn find(d: &Daemon, name: &str) -> Result<Option<Network>, ApiError> {
    Ok(d.db()
        .networks()
        .map_err(internal)?
        .into_iter()
        .find(|n| n.name == name))
}

pub fn handle(d: &Arc<Daemon>, req: &Request, rest: &[&str]) -> Result<Response, ApiError> {
    match (req.method.as_str(), rest) {
        ("GET", []) => {
            let nets = all(d)?;
            Ok(api::sync(if recursion(req) == 0 {
                json!(nets
                    .iter()
                    .map(|n| format!("/1.0/networks/{}", n["name"].as_str().unwrap_or("")))
                    .collect::<Vec<_>>())
            } else {
                json!(nets)
            }))
        }
        ("POST", []) => create(d, req),
        ("GET", [name]) => {
            if let Some(n) = find(d, name)? {
                let tag = api::etag(&json!({"config": n.config, "description": n.description}));
                return Ok(api::sync_with(
                    200,
                    managed_json(d, &n)?,
                    vec![("ETag".into(), format!("\"{tag}\""))],
                ));
            }
            host_networks()
                .into_iter()
                .find(|n| n["name"] == *name)
                .map(api::sync_etag)
                .ok_or_else(|| ApiError::not_found("Network not found"))
        }
        ("PUT", [name]) | ("PATCH", [name]) => update(d, req, name),
        ("DELETE", [name]) => {
            let n = find(d, name)?.ok_or_else(|| not_managed(name))?;
            let users = {
                let db = d.db();
                networks::used_by(
                    &db.all_profiles().map_err(internal)?,
                    &db.instances().map_err(internal)?,
                    name,
                )
            };
            if !users.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "The network is currently in use by: {}",
                    users.join(", ")
                )));
            }
            networks::stop(&d.dir, &n.name).map_err(internal)?;
            d.db().delete_network(name).map_err(internal)?;
            d.hub.lifecycle(
                "network-deleted",
                &format!("/1.0/networks/{name}"),
                json!({}),
            );
            Ok(api::sync(Value::Null))
        }
        ("POST", [name]) => {
            find(d, name)?.ok_or_else(|| not_managed(name))?;
            Err(ApiError::bad_request(
                "Renaming a managed network is not supported: create another and move the nics",
            ))
        }
        ("GET", [name, "leases"]) => {
            find(d, name)?.ok_or_else(|| not_managed(name))?;
            let db = d.db();
            let (profiles, instances) = (
                db.all_profiles().map_err(internal)?,
                db.instances().map_err(internal)?,
            );
            let statics = networks::static_leases(&profiles, &instances, name);
            let mut leases = networks::leases(&d.dir, name, &statics, &instances);
            // the leases of the project asked about (default if none), or every project's
            if req.query("all-projects") != Some("true") {
                let project = req
                    .query("project")
                    .filter(|p| !p.is_empty())
                    .unwrap_or("default");
                if let Some(list) = leases.as_array_mut() {
                    list.retain(|l| l["project"] == project);
                }
            }
            Ok(api::sync(leases))
        }
        ("GET", [name, "state"]) => {
            if find(d, name)?.is_none()
                && !std::path::Path::new("/sys/class/net").join(name).exists()
            {
                return Err(ApiError::not_found("Network not found"));
            }
            Ok(api::sync(networks::state(name)))
        }
        _ => Err(ApiError::not_found("not found")),
    }
}

fn not_managed(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "Network \"{name}\" not found (or not managed by warrend)"
    ))
}

/// POST /1.0/networks: a bridge, brought up now (a failure leaves nothing).
fn create(d: &Arc<Daemon>, req: &Request) -> Result<Response, ApiError> {
    let body = json_body(req)?;
    let name = api::text(&body, "name");
    warren_net::check_name(&name)
        .map_err(|e| ApiError::bad_request(format!("Invalid network name \"{name}\": {e}")))?;
    match body.get("type").and_then(Value::as_str).unwrap_or("bridge") {
        "bridge" | "" => {}
        other => {
            return Err(ApiError::bad_request(format!(
                "Network type \"{other}\" is not supported (warren has: bridge)"
            )))
        }
    }
    let mut config = object_or_empty(body.get("config"))?;
    networks::validate(&config).map_err(ApiError::bad_request)?;
    let others = d.db().networks().map_err(internal)?;
    if others.iter().any(|n| n.name == name) {
        return Err(ApiError::new(
            409,
            format!("The network already exists: {name}"),
        ));
    }
    if std::path::Path::new("/sys/class/net").join(&name).exists() {
        return Err(ApiError::bad_request(format!(
            "Network interface \"{name}\" already exists on this host"
        )));
    }
    networks::fill_defaults(&mut config, &others).map_err(ApiError::bad_request)?;
    let n = Network {
        name: name.clone(),
        description: api::text(&body, "description"),
        kind: "bridge".into(),
        config,
    };
    networks::start(&d.dir, &n, &[])
        .map_err(|e| ApiError::bad_request(format!("Failed to start network {name}: {e}")))?;
    if let Err(e) = d.db().put_network(&n) {
        let _ = networks::stop(&d.dir, &name);
        return Err(internal(e));
    }
    d.hub.lifecycle(
        "network-created",
        &format!("/1.0/networks/{name}"),
        json!({}),
    );
    Ok(api::sync_with(
        201,
        Value::Null,
        vec![("Location".into(), format!("/1.0/networks/{name}"))],
    ))
}

/// PUT/PATCH: the description and user.* keys any time; the rest only while no nic uses it
/// (the bridge is made again).
fn update(d: &Arc<Daemon>, req: &Request, name: &str) -> Result<Response, ApiError> {
    let old = find(d, name)?.ok_or_else(|| not_managed(name))?;
    if let Some(tag) = req.header("if-match") {
        let now = api::etag(&json!({"config": old.config, "description": old.description}));
        if tag.trim_matches('"') != now {
            return Err(ApiError::new(
                412,
                "ETag doesn't match: the network changed since it was read",
            ));
        }
    }
    let body = json_body(req)?;
    let mut new = old.clone();
    new.config = merge(req.method == "PATCH", &old.config, body.get("config"))?;
    if let Some(desc) = body.get("description").and_then(Value::as_str) {
        new.description = desc.to_string();
    }
    networks::validate(&new.config).map_err(ApiError::bad_request)?;
    let substantive = |c: &Value| -> Vec<(String, Value)> {
        c.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !k.starts_with("user."))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    if substantive(&old.config) != substantive(&new.config) {
        let db = d.db();
        let (profiles, instances) = (
            db.all_profiles().map_err(internal)?,
            db.instances().map_err(internal)?,
        );
        drop(db);
        let users = networks::used_by(&profiles, &instances, name);
        if !users.is_empty() {
            return Err(ApiError::bad_request(format!(
                "The network's addresses can't change while it is in use by: {}",
                users.join(", ")
            )));
        }
        let others: Vec<Network> = d
            .db()
            .networks()
            .map_err(internal)?
            .into_iter()
            .filter(|n| n.name != name)
            .collect();
        networks::fill_defaults(&mut new.config, &others).map_err(ApiError::bad_request)?;
        networks::stop(&d.dir, name).map_err(internal)?;
        if let Err(e) = networks::start(&d.dir, &new, &[]) {
            // back as it was
            let _ = networks::start(&d.dir, &old, &[]);
            return Err(ApiError::bad_request(format!(
                "Failed to apply the network's new config: {e}"
            )));
        }
    }
    d.db().put_network(&new).map_err(internal)?;
    d.hub.lifecycle(
        "network-updated",
        &format!("/1.0/networks/{name}"),
        json!({}),
    );
    Ok(api::sync(Value::Null))
}

/// Brings every managed network up that isn't (at warrend's start: after a reboot, say), with
/// its static leases.
pub fn ensure_all(d: &Daemon) {
    let Ok((nets, profiles, instances)) = (|| -> Result<_, crate::db::DbError> {
        let db = d.db();
        Ok((db.networks()?, db.all_profiles()?, db.instances()?))
    })() else {
        return;
    };
    for n in nets {
        let statics = networks::static_leases(&profiles, &instances, &n.name);
        if networks::is_up(&d.dir, &n.name) {
            networks::write_static_leases(&d.dir, &n.name, &statics);
        } else if let Err(e) = networks::start(&d.dir, &n, &statics) {
            crate::log::error(&format!("network {}: {e}", n.name));
        }
    }
}
