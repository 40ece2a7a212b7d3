//! The /1.0 endpoints warrend answers: server info, instances (state, exec, console, files,
//! snapshots, rename, copy), images and aliases (import, export), profiles, storage pools (dir)
//! and their volumes, projects (default), networks (the host's interfaces), resources,
//! operations; anything else is a 404 in Incus's error envelope.

use crate::api::{self, ApiError};
use crate::db::{instance_path, Pool, Profile, Project};
use crate::http::{Request, Response};
use crate::{images, instances, Daemon};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const EXTENSIONS: &str = include_str!("api-extensions.txt");

/// The list's `?filter=`, parsed (a bad one is the request's error).
fn filter_of(req: &Request) -> Result<Option<crate::filter::Filter>, ApiError> {
    match req.query("filter") {
        Some(f) if !f.trim().is_empty() => crate::filter::parse(f)
            .map(Some)
            .map_err(ApiError::bad_request),
        _ => Ok(None),
    }
}

pub(crate) fn recursion(req: &Request) -> u8 {
    req.query("recursion")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub fn handle(d: &Arc<Daemon>, req: &Request) -> Response {
    match route(d, req) {
        Ok(r) => r,
        Err(e) => api::error(&e),
    }
}

/// An instance with a PUT (`patch` false: what the body gives replaces) or PATCH body applied.
fn edited(
    old: &crate::db::Instance,
    body: &Value,
    patch: bool,
) -> Result<crate::db::Instance, ApiError> {
    let mut new = old.clone();
    new.config = merge(patch, &old.config, body.get("config"))?;
    new.devices = merge(patch, &old.devices, body.get("devices"))?;
    if let Some(Value::Array(p)) = body.get("profiles") {
        new.profiles = Value::Array(p.clone());
    }
    if let Some(desc) = body.get("description").and_then(Value::as_str) {
        new.description = desc.to_string();
    }
    if let Some(e) = body.get("ephemeral").and_then(Value::as_bool) {
        new.ephemeral = e;
    }
    Ok(new)
}

pub(crate) fn json_body(req: &Request) -> Result<Value, ApiError> {
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON in the request body: {e}")))
}

fn route(d: &Arc<Daemon>, req: &Request) -> Result<Response, ApiError> {
    let path = req.path.trim_end_matches('/');
    let mut parts: Vec<&str> = path.split('/').skip(1).collect();
    let m = req.method.as_str();
    // the server's own endpoints, outside any project
    match (m, parts.as_slice()) {
        ("GET", [""]) | ("GET", []) => return Ok(api::sync(json!(["/1.0"]))),
        ("GET", ["1.0"]) => {
            let project = req.query("project").filter(|p| !p.is_empty());
            return Ok(api::sync_etag(server_info(
                d,
                &req.peer,
                project.unwrap_or("default"),
            )));
        }
        ("PUT", ["1.0"]) => return crate::routes_trust::put_server(d, req, false),
        ("PATCH", ["1.0"]) => return crate::routes_trust::put_server(d, req, true),
        (_, ["1.0", "certificates", rest @ ..]) => {
            return crate::routes_trust::handle(d, req, rest)
        }
        (_, ["1.0", "projects", rest @ ..]) => return crate::projects::handle(d, req, rest),
        _ => {}
    }
    // everything else works in the request's project; an instance is known by its storage
    // name (`<project>_<name>` outside default) from here on
    let proj = match parts.as_slice() {
        // an operation is known by its id: it outlives what its project was called
        ["1.0", "operations", _, ..] => crate::projects::named(d, "default")?,
        _ => crate::projects::of_request(d, req)?,
    };
    let key;
    if let ["1.0", "instances", name, ..] = parts.as_slice() {
        if name.contains('_') {
            return Err(ApiError::not_found(format!(
                "Failed to fetch instance \"{name}\" in project \"{}\": Instance not found",
                proj.name
            )));
        }
        key = proj.key(name);
        parts[2] = &key;
    }
    let all_projects = req.query("all-projects") == Some("true");
    let pp = proj.profiles_project();
    match (m, parts.as_slice()) {
        ("GET", ["1.0", "instances"]) => {
            // rows and profiles under the lock; the states (the monitors) outside it
            let (list, profiles) = {
                let db = d.db();
                let mut list = db.instances().map_err(internal)?;
                list.retain(|i| all_projects || i.project == proj.name);
                (list, db.all_profiles().map_err(internal)?)
            };
            let filter = filter_of(req)?;
            let depth = recursion(req);
            if depth == 0 && filter.is_none() {
                // names only: no instance's state needed
                return Ok(api::sync(json!(list
                    .iter()
                    .map(|i| i.url())
                    .collect::<Vec<_>>())));
            }
            let mut out = Vec::new();
            for i in &list {
                let mut v = instances::instance_json(&d.dir, &profiles, i);
                if depth >= 2 {
                    v["state"] = instances::state_json(&d.dir, &i.name);
                    v["snapshots"] = json!([]);
                    v["backups"] = json!([]);
                }
                if filter.as_ref().is_some_and(|f| !f.matches(&v)) {
                    continue;
                }
                out.push(if depth == 0 { json!(i.url()) } else { v });
            }
            Ok(api::sync(json!(out)))
        }
        ("POST", ["1.0", "instances"]) => create_instance(d, req, &proj),
        ("GET", ["1.0", "instances", name]) => {
            let (i, profiles) = {
                let db = d.db();
                let i = db
                    .instance(name)
                    .map_err(internal)?
                    .ok_or_else(|| instance_not_found(name))?;
                (i, db.all_profiles().map_err(internal)?)
            };
            let mut v = instances::instance_json(&d.dir, &profiles, &i);
            if recursion(req) >= 1 {
                v["state"] = instances::state_json(&d.dir, name);
                v["snapshots"] = json!([]);
                v["backups"] = json!([]);
            }
            let tag = api::etag(&instances::writable_json(&i));
            Ok(api::sync_with(
                200,
                v,
                vec![("ETag".into(), format!("\"{tag}\""))],
            ))
        }
        ("PUT", ["1.0", "instances", name]) | ("PATCH", ["1.0", "instances", name]) => {
            let old = d
                .db()
                .instance(name)
                .map_err(internal)?
                .ok_or_else(|| instance_not_found(name))?;
            if let Some(tag) = req.header("if-match") {
                if tag.trim_matches('"') != api::etag(&instances::writable_json(&old)) {
                    return Err(ApiError::new(
                        412,
                        "ETag doesn't match: the instance changed since it was read",
                    ));
                }
            }
            let body = json_body(req)?;
            if let Some(p) = body.get("profiles").filter(|p| p.is_array()) {
                check_profiles_exist(&d.db(), &proj, p)?;
            }
            // the client names it "<instance>/<snapshot>"
            if let Some(snap) = body
                .get("restore")
                .and_then(Value::as_str)
                .map(|s| s.rsplit('/').next().unwrap_or(s))
                .filter(|s| !s.is_empty())
            {
                let s = d
                    .db()
                    .snapshots(name)
                    .map_err(internal)?
                    .into_iter()
                    .find(|s| s.name == snap);
                let s = s.ok_or_else(|| ApiError::not_found("Snapshot not found"))?;
                if instances::state(&d.dir, name) != "STOPPED" {
                    return Err(ApiError::bad_request(
                        "Stop the instance before restoring a snapshot",
                    ));
                }
                // what comes back must be allowed in the project as it is now
                let back = crate::db::Instance {
                    config: s.config.clone(),
                    devices: s.devices.clone(),
                    profiles: s.profiles.clone(),
                    ..old.clone()
                };
                {
                    let db = d.db();
                    check_profiles_exist(&db, &proj, &back.profiles)?;
                    check_restricted(&db, &proj, &back)?;
                }
                let (dd, mut restored) = (d.clone(), old.clone());
                let op = d.hub.run(
                    "Restoring snapshot",
                    json!({"instances": [instance_path(name, "")]}),
                    move || {
                        instances::restore(&dd.dir, &restored.name, &s.name)?;
                        restored.config = s.config.clone();
                        restored.devices = s.devices.clone();
                        restored.profiles = s.profiles.clone();
                        dd.db()
                            .update_instance(&restored)
                            .map_err(|e| e.to_string())?;
                        instances::rewrite_config(
                            &dd.dir,
                            &dd.db().all_profiles().map_err(|e| e.to_string())?,
                            &restored,
                        )?;
                        Ok(Value::Null)
                    },
                );
                return Ok(api::async_op(&op));
            }
            let patch = m == "PATCH";
            // checked now, so that a bad request fails at once; applied again inside the
            // operation to the instance as it is then
            edited(&old, &body, patch)?;
            // as Incus does, a bad value fails the operation (400), not the request
            let (dd, pj) = (d.clone(), proj.clone());
            let name = name.to_string();
            let op = d.hub.run(
                "Updating instance",
                json!({"instances": [instance_path(&name, "")]}),
                move || {
                    // one change at a time: each starts from the instance as the last left it
                    let _one = dd.updates.lock().unwrap_or_else(|e| e.into_inner());
                    let old = dd
                        .db()
                        .instance(&name)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| {
                            format!("Instance \"{}\" not found", crate::db::split_key(&name).1)
                        })?;
                    let mut new = edited(&old, &body, patch).map_err(|e| e.message)?;
                    crate::config::validate(&new.config).map_err(|e| e.to_string())?;
                    check_devices(&new.devices, &dd.db(), &pj).map_err(|e| e.message)?;
                    check_restricted(&dd.db(), &pj, &new).map_err(|e| e.message)?;
                    let profiles = dd.db().all_profiles().map_err(|e| e.to_string())?;
                    instances::fill_volatile_hwaddrs(&profiles, &mut new);
                    // limits and devices changed on a running instance take effect now; if
                    // that fails, nothing changes
                    let (old_config, new_config) = (
                        instances::expanded_config(&profiles, &old),
                        instances::expanded_config(&profiles, &new),
                    );
                    let undo = || {
                        let _ =
                            crate::hotplug::apply(&dd.dir, (&profiles, &new), (&profiles, &old));
                        let _ = crate::hotplug::apply_limits(
                            &dd.dir,
                            &new.name,
                            &new_config,
                            &old_config,
                        );
                    };
                    crate::hotplug::apply_limits(&dd.dir, &new.name, &old_config, &new_config)?;
                    if let Err(e) =
                        crate::hotplug::apply(&dd.dir, (&profiles, &old), (&profiles, &new))
                    {
                        let _ = crate::hotplug::apply_limits(
                            &dd.dir,
                            &new.name,
                            &new_config,
                            &old_config,
                        );
                        return Err(e);
                    }
                    if let Err(e) = dd.db().update_instance(&new) {
                        undo();
                        return Err(e.to_string());
                    }
                    crate::routes_networks::ensure_all(&dd);
                    dd.sync_proxies();
                    instances::rewrite_config(&dd.dir, &profiles, &new)?;
                    dd.hub.lifecycle("instance-updated", &new.url(), json!({}));
                    Ok(Value::Null)
                },
            );
            Ok(api::async_op(&op))
        }
        ("GET", ["1.0", "instances", name, "snapshots"]) => {
            let db = d.db();
            let inst = db
                .instance(name)
                .map_err(internal)?
                .ok_or_else(|| instance_not_found(name))?;
            let snaps = db.snapshots(name).map_err(internal)?;
            Ok(api::sync(if recursion(req) == 0 {
                json!(snaps
                    .iter()
                    .map(|s| instance_path(name, &format!("/snapshots/{}", s.name)))
                    .collect::<Vec<_>>())
            } else {
                json!(snaps
                    .iter()
                    .map(|s| snapshot_json(&inst, s))
                    .collect::<Vec<_>>())
            }))
        }
        ("GET", ["1.0", "instances", name, "snapshots", snap]) => {
            let db = d.db();
            let inst = db
                .instance(name)
                .map_err(internal)?
                .ok_or_else(|| instance_not_found(name))?;
            let s = db
                .snapshots(name)
                .map_err(internal)?
                .into_iter()
                .find(|s| s.name == *snap);
            let s = s.ok_or_else(|| ApiError::not_found("Snapshot not found"))?;
            Ok(api::sync_etag(snapshot_json(&inst, &s)))
        }
        ("POST", ["1.0", "instances", name, "snapshots"]) => {
            let inst = d
                .db()
                .instance(name)
                .map_err(internal)?
                .ok_or_else(|| instance_not_found(name))?;
            let of = crate::projects::named(d, &inst.project)?;
            crate::restrictions::check_snapshot(&of).map_err(ApiError::bad_request)?;
            let body = json_body(req)?;
            let existing = d.db().snapshots(name).map_err(internal)?;
            let snap = match body
                .get("name")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(s) => s.to_string(),
                None => (0..)
                    .map(|i| format!("snap{i}"))
                    .find(|n| !existing.iter().any(|s| &s.name == n))
                    .unwrap_or_default(),
            };
            check_name(&snap, "snapshot")?;
            if existing.iter().any(|s| s.name == snap) {
                return Err(ApiError::new(
                    409,
                    format!("Snapshot \"{snap}\" already exists"),
                ));
            }
            let (dd, n) = (d.clone(), name.to_string());
            let op = d.hub.run(
                "Snapshotting instance",
                json!({"instances": [instance_path(name, "")], "instances_snapshots": [instance_path(name, &format!("/snapshots/{snap}"))]}),
                move || {
                    instances::snapshot(&dd.dir, &n, &snap)?;
                    let row = crate::db::Snapshot {
                        instance: n.clone(),
                        name: snap.clone(),
                        created_at: crate::time::now(),
                        config: inst.config.clone(),
                        devices: inst.devices.clone(),
                        profiles: inst.profiles.clone(),
                    };
                    if let Err(e) = dd.db().add_snapshot(&row) {
                        let _ = instances::delete_snapshot(&dd.dir, &n, &snap);
                        return Err(e.to_string());
                    }
                    dd.hub.lifecycle("instance-snapshot-created", &instance_path(&n, &format!("/snapshots/{snap}")), json!({}));
                    Ok(Value::Null)
                },
            );
            Ok(api::async_op(&op))
        }
        ("DELETE", ["1.0", "instances", name, "snapshots", snap]) => {
            let exists = d
                .db()
                .snapshots(name)
                .map_err(internal)?
                .iter()
                .any(|s| s.name == *snap);
            if !exists {
                return Err(ApiError::not_found("Snapshot not found"));
            }
            let (dd, n, sn) = (d.clone(), name.to_string(), snap.to_string());
            let op = d.hub.run(
                "Deleting snapshot",
                json!({"instances_snapshots": [instance_path(name, &format!("/snapshots/{snap}"))]}),
                move || {
                    dd.db()
                        .delete_snapshot(&n, &sn)
                        .map_err(|e| e.to_string())?;
                    let _ = instances::delete_snapshot(&dd.dir, &n, &sn);
                    dd.hub.lifecycle(
                        "instance-snapshot-deleted",
                        &instance_path(&n, &format!("/snapshots/{sn}")),
                        json!({}),
                    );
                    Ok(Value::Null)
                },
            );
            Ok(api::async_op(&op))
        }
        ("GET", ["1.0", "instances", name, "console"]) => {
            d.db()
                .instance(name)
                .map_err(internal)?
                .ok_or_else(|| instance_not_found(name))?;
            // raw bytes, as incusd sends them (it labels them application/json)
            Ok(Response {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: instances::console_log(&d.dir, name),
                file: None,
            })
        }
        ("GET", ["1.0", "instances", name, "state"]) => {
            d.db()
                .instance(name)
                .map_err(internal)?
                .ok_or_else(|| instance_not_found(name))?;
            Ok(api::sync(instances::state_json(&d.dir, name)))
        }
        ("PUT", ["1.0", "instances", name, "state"]) => {
            d.db()
                .instance(name)
                .map_err(internal)?
                .ok_or_else(|| instance_not_found(name))?;
            let body = json_body(req)?;
            let action = api::text(&body, "action");
            let force = body.get("force").and_then(Value::as_bool).unwrap_or(false);
            let timeout = body.get("timeout").and_then(Value::as_i64).unwrap_or(-1);
            let description = match action.as_str() {
                "start" => "Starting instance",
                "stop" => "Stopping instance",
                "restart" => "Restarting instance",
                "freeze" => "Freezing instance",
                "unfreeze" => "Unfreezing instance",
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Unknown state action \"{other}\""
                    )))
                }
            };
            let (dd, n) = (d.clone(), name.to_string());
            let op = d.hub.run(
                description,
                json!({"instances": [instance_path(name, "")]}),
                move || {
                    match action.as_str() {
                        "start" => start_instance(&dd, &n)?,
                        "stop" => instances::stop(&dd.dir, &n, force, timeout)?,
                        "freeze" => instances::freeze(&dd.dir, &n, true)?,
                        "unfreeze" => instances::freeze(&dd.dir, &n, false)?,
                        _ => {
                            instances::stop(&dd.dir, &n, force, timeout)?;
                            start_instance(&dd, &n)?;
                        }
                    }
                    let verb = match action.as_str() {
                        "start" => "started",
                        "stop" => "stopped",
                        "freeze" => "paused",
                        "unfreeze" => "resumed",
                        _ => "restarted",
                    };
                    dd.sync_proxies();
                    dd.hub.lifecycle(
                        &format!("instance-{verb}"),
                        &instance_path(&n, ""),
                        json!({}),
                    );
                    Ok(Value::Null)
                },
            );
            Ok(api::async_op(&op))
        }
        ("DELETE", ["1.0", "instances", name]) => {
            d.db()
                .instance(name)
                .map_err(internal)?
                .ok_or_else(|| instance_not_found(name))?;
            if instances::state(&d.dir, name) != "STOPPED" {
                return Err(ApiError::bad_request("Instance is running"));
            }
            let (dd, n) = (d.clone(), name.to_string());
            let op = d.hub.run(
                "Deleting instance",
                json!({"instances": [instance_path(name, "")]}),
                move || {
                    let base = dd.db().instance(&n).ok().flatten().and_then(|i| {
                        i.config
                            .get("volatile.base_image")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    });
                    instances::destroy(&dd.dir, &n)?;
                    dd.db().delete_instance(&n).map_err(|e| e.to_string())?;
                    crate::routes_networks::ensure_all(&dd);
                    // the tree of an image deleted meanwhile goes with its last container
                    if let Some(fp) = base {
                        let gone = dd.db().image_anywhere(&fp).is_ok_and(|here| !here);
                        if gone && !crate::rootfs::image_in_use(&instances::lxcpath(&dd.dir), &fp) {
                            instances::forget_image(&dd.dir, &fp);
                        }
                    }
                    dd.hub
                        .lifecycle("instance-deleted", &instance_path(&n, ""), json!({}));
                    Ok(Value::Null)
                },
            );
            Ok(api::async_op(&op))
        }
        ("POST", ["1.0", "instances", name, "exec"]) => {
            let inst = d
                .db()
                .instance(name)
                .map_err(internal)?
                .ok_or_else(|| instance_not_found(name))?;
            if instances::state(&d.dir, name) != "RUNNING" {
                return Err(ApiError::bad_request("Instance is not running"));
            }
            let exec_req = crate::exec::Request::parse(
                &json_body(req)?,
                &instances::environment(&inst.config),
            )
            .map_err(ApiError::bad_request)?;
            let session = Arc::new(crate::exec::Session::new(exec_req.interactive));
            let id = crate::ops::Hub::new_id();
            if let Ok(mut m) = d.execs.lock() {
                m.insert(id.clone(), session.clone());
            }
            let metadata = exec_req.metadata(&session);
            let (dd, n, opid) = (d.clone(), name.to_string(), id.clone());
            let op = d.hub.run_with(
                id,
                "websocket",
                metadata,
                "Executing command",
                json!({"instances": [instance_path(name, "")]}),
                move || {
                    let code = crate::exec::run(&dd.dir, &n, &exec_req, &session);
                    if let Ok(mut m) = dd.execs.lock() {
                        m.remove(&opid);
                    }
                    Ok(json!({"return": code?}))
                },
            );
            Ok(api::async_op(&op))
        }
        ("POST", ["1.0", "instances", name, "console"]) => console(d, req, name),
        ("GET", ["1.0", "instances", name, "files"])
        | ("HEAD", ["1.0", "instances", name, "files"])
        | ("POST", ["1.0", "instances", name, "files"])
        | ("DELETE", ["1.0", "instances", name, "files"]) => {
            d.db()
                .instance(name)
                .map_err(internal)?
                .ok_or_else(|| instance_not_found(name))?;
            let root = crate::sftp::Root::of_container(&instances::lxcpath(&d.dir).join(name))
                .map_err(internal)?;
            match m {
                "GET" => crate::files::get(&root, req, false),
                "HEAD" => crate::files::get(&root, req, true),
                "POST" => crate::files::post(&root, req),
                _ => crate::files::delete(&root, req),
            }
        }
        ("POST", ["1.0", "instances", name]) => rename_instance(d, req, name),
        ("GET", ["1.0", "instances", name, ..]) => Err(instance_not_found(name)),
        ("GET", ["1.0", "images"]) => {
            let db = d.db();
            // this project's images, or (`all-projects`) those of every project holding its own
            let holders: Vec<String> = if all_projects {
                db.projects()
                    .map_err(internal)?
                    .iter()
                    .filter(|p| p.images_project() == p.name)
                    .map(|p| p.name.clone())
                    .collect()
            } else {
                vec![proj.images_project().to_string()]
            };
            let filter = filter_of(req)?;
            let mut out: Vec<Value> = Vec::new();
            for holder in &holders {
                let aliases = db.aliases(holder).map_err(internal)?;
                for i in db.images(holder).map_err(internal)? {
                    let v = images::image_json(&i, &aliases);
                    if filter.as_ref().is_some_and(|f| !f.matches(&v)) {
                        continue;
                    }
                    out.push(if recursion(req) == 0 {
                        json!(crate::db::project_url(
                            holder,
                            &format!("/1.0/images/{}", i.fingerprint)
                        ))
                    } else {
                        v
                    });
                }
            }
            Ok(api::sync(json!(out)))
        }
        ("POST", ["1.0", "images"]) => {
            let Some(upload) = req.body_file.clone() else {
                return copy_image(d, req, &proj);
            };
            let content_type = req.header("content-type").unwrap_or("").to_string();
            let filename = req
                .header("x-incus-filename")
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            let (dd, ip) = (d.clone(), proj.images_project().to_string());
            let op = d.hub.run("Downloading image", json!({}), move || {
                let meta = images::import_body(
                    &|| dd.db(),
                    &ip,
                    &dd.dir.join("images"),
                    &upload,
                    &content_type,
                    &filename,
                )?;
                let fp = meta["fingerprint"].as_str().unwrap_or("").to_string();
                dd.hub.lifecycle(
                    "image-created",
                    &crate::db::project_url(&ip, &format!("/1.0/images/{fp}")),
                    json!({"type": "container"}),
                );
                Ok(meta)
            });
            d.hub.set_project(&op.id, &proj.name);
            Ok(api::async_op(&op))
        }
        ("GET", ["1.0", "images", "aliases"]) => {
            let aliases = d.db().aliases(proj.images_project()).map_err(internal)?;
            Ok(api::sync(if recursion(req) == 0 {
                json!(aliases
                    .iter()
                    .map(|(n, _, _)| proj.url(&format!("/1.0/images/aliases/{n}")))
                    .collect::<Vec<_>>())
            } else {
                json!(aliases.iter().map(|(n, t, desc)| json!({"name": n, "target": t, "description": desc, "type": "container"})).collect::<Vec<_>>())
            }))
        }
        ("POST", ["1.0", "images", "aliases"]) => {
            let body = json_body(req)?;
            let name = body.get("name").and_then(Value::as_str).unwrap_or("");
            check_name(name, "alias")?;
            let target = body.get("target").and_then(Value::as_str).unwrap_or("");
            let db = d.db();
            let images_list = db.images(proj.images_project()).map_err(internal)?;
            let image = images::find(&images_list, target)
                .ok_or_else(|| ApiError::not_found(format!("Image \"{target}\" not found")))?;
            if db
                .aliases(proj.images_project())
                .map_err(internal)?
                .iter()
                .any(|(n, _, _)| n == name)
            {
                return Err(ApiError::new(409, "Alias already exists"));
            }
            let description = body
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            db.add_alias(proj.images_project(), name, &image.fingerprint, description)
                .map_err(internal)?;
            d.hub.lifecycle(
                "image-alias-created",
                &proj.url(&format!("/1.0/images/aliases/{name}")),
                json!({"target": image.fingerprint}),
            );
            Ok(api::sync_with(
                201,
                Value::Null,
                vec![(
                    "Location".into(),
                    proj.url(&format!("/1.0/images/aliases/{name}")),
                )],
            ))
        }
        ("GET", ["1.0", "images", "aliases", name]) => {
            let aliases = d.db().aliases(proj.images_project()).map_err(internal)?;
            let (n, t, desc) = aliases
                .iter()
                .find(|(n, _, _)| n == name)
                .ok_or_else(|| ApiError::not_found("Image alias not found"))?;
            Ok(api::sync_etag(
                json!({"description": desc, "target": t, "name": n, "type": "container"}),
            ))
        }
        ("DELETE", ["1.0", "images", "aliases", name]) => {
            if d.db()
                .delete_alias(proj.images_project(), name)
                .map_err(internal)?
                == 0
            {
                return Err(ApiError::not_found("Image alias not found"));
            }
            Ok(api::sync(Value::Null))
        }
        ("POST", ["1.0", "images", fp, "refresh"]) => {
            let images_list = d.db().images(proj.images_project()).map_err(internal)?;
            let image = images::find(&images_list, fp)
                .ok_or_else(|| ApiError::not_found("Image not found"))?
                .clone();
            if image.update_source.is_null() {
                return Err(ApiError::bad_request(
                    "The image has no source to refresh from (it was uploaded)",
                ));
            }
            let (dd, id) = (d.clone(), crate::ops::Hub::new_id());
            let opid = id.clone();
            let op = d.hub.run_with(
                id,
                "task",
                Value::Null,
                "Refreshing image",
                json!({"images": [proj.url(&format!("/1.0/images/{}", image.fingerprint))]}),
                move || {
                    let new = crate::remote::refresh(&dd, &image, &opid)?;
                    Ok(json!({"refreshed": new.is_some(), "fingerprint": new.unwrap_or(image.fingerprint)}))
                },
            );
            Ok(api::async_op(&op))
        }
        ("PUT", ["1.0", "images", fp]) | ("PATCH", ["1.0", "images", fp]) => {
            let body = json_body(req)?;
            let images_list = d.db().images(proj.images_project()).map_err(internal)?;
            let image = images::find(&images_list, fp)
                .ok_or_else(|| ApiError::not_found("Image not found"))?;
            let auto_update = match body.get("auto_update") {
                Some(Value::Bool(b)) => *b,
                None if m == "PATCH" => image.auto_update,
                None => false,
                Some(_) => return Err(ApiError::bad_request("auto_update must be true or false")),
            };
            if auto_update && image.update_source.is_null() {
                return Err(ApiError::bad_request(
                    "auto_update needs an image from a server (this one was uploaded)",
                ));
            }
            d.db()
                .set_image_auto_update(&image.project, &image.fingerprint, auto_update)
                .map_err(internal)?;
            Ok(api::sync(Value::Null))
        }
        ("POST", ["1.0", "images", fp, "secret"]) => {
            crate::routes_trust::image_secret(d, &proj, fp)
        }
        ("GET", ["1.0", "images", fp, "export"]) => {
            let images_list = d.db().images(proj.images_project()).map_err(internal)?;
            let image = images::find(&images_list, fp)
                .ok_or_else(|| ApiError::not_found("Image not found"))?
                .clone();
            let exported = images::export(&d.dir.join("images"), &image)?;
            // a secret is spent by the export it was made for (its file is open already)
            if let Some(secret) = req.query("secret") {
                crate::routes_trust::spend_image_secret(d, secret);
            }
            Ok(exported)
        }
        ("GET", ["1.0", "images", fp]) => {
            let db = d.db();
            let (images_list, aliases) = (
                db.images(proj.images_project()).map_err(internal)?,
                db.aliases(proj.images_project()).map_err(internal)?,
            );
            let image = images::find(&images_list, fp)
                .ok_or_else(|| ApiError::not_found("Image not found"))?;
            Ok(api::sync_etag(images::image_json(image, &aliases)))
        }
        ("DELETE", ["1.0", "images", fp]) => {
            let images_list = d.db().images(proj.images_project()).map_err(internal)?;
            let image = images::find(&images_list, fp)
                .ok_or_else(|| ApiError::not_found("Image not found"))?
                .clone();
            let dd = d.clone();
            let op = d.hub.run(
                "Deleting image",
                json!({"images": [proj.url(&format!("/1.0/images/{}", image.fingerprint))]}),
                move || {
                    images::remove(&dd.dir, &dd.db(), &image.project, &image.fingerprint)?;
                    dd.hub.lifecycle(
                        "image-deleted",
                        &crate::db::project_url(
                            &image.project,
                            &format!("/1.0/images/{}", image.fingerprint),
                        ),
                        json!({}),
                    );
                    Ok(Value::Null)
                },
            );
            Ok(api::async_op(&op))
        }
        ("GET", ["1.0", "operations"]) => {
            let mut by_status: Map<String, Value> = Map::new();
            for op in d
                .hub
                .all()
                .into_iter()
                .filter(|op| all_projects || op.project == proj.name)
            {
                let key = match op.status_code {
                    200 => "success",
                    400 | 401 => "failure",
                    _ => "running",
                };
                let item = if recursion(req) == 0 {
                    json!(format!("/1.0/operations/{}", op.id))
                } else {
                    op.json()
                };
                if let Some(list) = by_status
                    .entry(key)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                {
                    list.push(item);
                }
            }
            Ok(api::sync(Value::Object(by_status)))
        }
        ("GET", ["1.0", "operations", id]) => d
            .hub
            .get(id)
            .map(|op| api::sync(op.json()))
            .ok_or_else(|| ApiError::not_found("Operation not found")),
        ("DELETE", ["1.0", "operations", id]) => d
            .hub
            .cancel(id)
            .map(|_| api::sync(Value::Null))
            .map_err(|(status, msg)| ApiError::new(status, msg)),
        ("GET", ["1.0", "operations", id, "wait"]) => {
            let timeout = req
                .query("timeout")
                .and_then(|t| t.parse().ok())
                .unwrap_or(-1);
            d.hub
                .wait(id, timeout)
                .map(|op| api::sync(op.json()))
                .ok_or_else(|| ApiError::not_found("Operation not found"))
        }
        ("GET", ["1.0", "profiles"]) => {
            let db = d.db();
            let profiles = if all_projects {
                db.all_profiles().map_err(internal)?
            } else {
                db.profiles(pp).map_err(internal)?
            };
            Ok(api::sync(if recursion(req) == 0 {
                json!(profiles
                    .iter()
                    .map(|p| crate::db::project_url(
                        &p.project,
                        &format!("/1.0/profiles/{}", p.name)
                    ))
                    .collect::<Vec<_>>())
            } else {
                let mut out = Vec::new();
                for p in &profiles {
                    out.push(profile_json(p, profile_users(&db, &p.project, &p.name)?));
                }
                json!(out)
            }))
        }
        ("GET", ["1.0", "profiles", name]) => {
            let p = d
                .db()
                .profile(pp, name)
                .map_err(internal)?
                .ok_or_else(|| ApiError::not_found("Profile not found"))?;
            let users = profile_users(&d.db(), pp, name)?;
            // the ETag covers what PUT can change (not used_by)
            let tag = api::etag(&profile_json(&p, Vec::new()));
            Ok(api::sync_with(
                200,
                profile_json(&p, users),
                vec![("ETag".into(), format!("\"{tag}\""))],
            ))
        }
        ("PUT", ["1.0", "profiles", name]) | ("PATCH", ["1.0", "profiles", name]) => {
            let body = json_body(req)?;
            let db = d.db();
            let old = db
                .profile(pp, name)
                .map_err(internal)?
                .ok_or_else(|| ApiError::not_found("Profile not found"))?;
            if let Some(tag) = req.header("if-match") {
                if tag.trim_matches('"') != api::etag(&profile_json(&old, Vec::new())) {
                    return Err(ApiError::new(
                        412,
                        "ETag doesn't match: the profile changed since it was read",
                    ));
                }
            }
            let patch = m == "PATCH";
            let new = Profile {
                project: pp.to_string(),
                name: name.to_string(),
                description: body
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or(if patch {
                        old.description.clone()
                    } else {
                        String::new()
                    }),
                config: merge(patch, &old.config, body.get("config"))?,
                devices: merge(patch, &old.devices, body.get("devices"))?,
            };
            check_devices(&new.devices, &db, &proj)?;
            drop(db);
            // one change at a time (instances' and profiles')
            let _one = d.updates.lock().unwrap_or_else(|e| e.into_inner());
            let db = d.db();
            check_profile_users(&db, &new)?;
            // the instances using it: running ones get the device changes at once (all or
            // nothing), every one a config for its next start and MACs for new nics
            let old_profiles = db.all_profiles().map_err(internal)?;
            let new_profiles: Vec<Profile> = old_profiles
                .iter()
                .map(|p| {
                    if p.name == new.name && p.project == new.project {
                        new.clone()
                    } else {
                        p.clone()
                    }
                })
                .collect();
            let users: Vec<crate::db::Instance> = db
                .instances()
                .map_err(internal)?
                .into_iter()
                .filter(|i| {
                    i.profiles_project == pp
                        && i.profiles
                            .as_array()
                            .is_some_and(|a| a.iter().any(|p| p == *name))
                })
                .collect();
            drop(db);
            let mut done: Vec<(crate::db::Instance, crate::db::Instance)> = Vec::new();
            for inst in users {
                let mut updated = inst.clone();
                instances::fill_volatile_hwaddrs(&new_profiles, &mut updated);
                let (old_config, new_config) = (
                    instances::expanded_config(&old_profiles, &inst),
                    instances::expanded_config(&new_profiles, &updated),
                );
                let applied =
                    crate::hotplug::apply_limits(&d.dir, &inst.name, &old_config, &new_config)
                        .and_then(|()| {
                            crate::hotplug::apply(
                                &d.dir,
                                (&old_profiles, &inst),
                                (&new_profiles, &updated),
                            )
                            .inspect_err(|_| {
                                let _ = crate::hotplug::apply_limits(
                                    &d.dir,
                                    &inst.name,
                                    &new_config,
                                    &old_config,
                                );
                            })
                        });
                if let Err(e) = applied {
                    for (was, now) in done.iter().rev() {
                        let _ = crate::hotplug::apply(
                            &d.dir,
                            (&new_profiles, now),
                            (&old_profiles, was),
                        );
                        let _ = crate::hotplug::apply_limits(
                            &d.dir,
                            &was.name,
                            &instances::expanded_config(&new_profiles, now),
                            &instances::expanded_config(&old_profiles, was),
                        );
                    }
                    return Err(ApiError::bad_request(format!(
                        "Instance \"{}\": {e}",
                        inst.api_name()
                    )));
                }
                done.push((inst, updated));
            }
            let db = d.db();
            db.put_profile(&new).map_err(internal)?;
            for (_, updated) in &done {
                db.update_instance(updated).map_err(internal)?;
                instances::rewrite_config(&d.dir, &new_profiles, updated).map_err(internal)?;
            }
            drop(db);
            crate::routes_networks::ensure_all(d);
            d.sync_proxies();
            Ok(api::sync(Value::Null))
        }
        ("DELETE", ["1.0", "profiles", name]) => {
            if *name == "default" {
                return Err(ApiError::forbidden(
                    "The \"default\" profile cannot be deleted",
                ));
            }
            let db = d.db();
            db.profile(pp, name)
                .map_err(internal)?
                .ok_or_else(|| ApiError::not_found("Profile not found"))?;
            let users = profile_users(&db, pp, name)?;
            if !users.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "Profile is currently in use by: {}",
                    users.join(", ")
                )));
            }
            db.delete_profile(pp, name).map_err(internal)?;
            d.hub.lifecycle(
                "profile-deleted",
                &proj.url(&format!("/1.0/profiles/{name}")),
                json!({}),
            );
            Ok(api::sync(Value::Null))
        }
        ("POST", ["1.0", "profiles", name]) => {
            let body = json_body(req)?;
            let new = body.get("name").and_then(Value::as_str).unwrap_or("");
            if *name == "default" {
                return Err(ApiError::forbidden(
                    "The \"default\" profile cannot be renamed",
                ));
            }
            check_name(new, "profile")?;
            let db = d.db();
            db.profile(pp, name)
                .map_err(internal)?
                .ok_or_else(|| ApiError::not_found("Profile not found"))?;
            if db.profile_exists(pp, new).map_err(internal)? {
                return Err(ApiError::new(
                    409,
                    format!("Profile \"{new}\" already exists"),
                ));
            }
            db.rename_profile(pp, name, new).map_err(internal)?;
            // instances name their profiles: they follow the rename
            for mut i in db.instances().map_err(internal)? {
                if i.profiles_project != pp {
                    continue;
                }
                if let Some(list) = i.profiles.as_array_mut() {
                    if list.iter().any(|p| p == *name) {
                        for p in list.iter_mut().filter(|p| *p == *name) {
                            *p = json!(new);
                        }
                        db.update_instance(&i).map_err(internal)?;
                    }
                }
            }
            d.hub.lifecycle(
                "profile-renamed",
                &proj.url(&format!("/1.0/profiles/{new}")),
                json!({"old_name": name}),
            );
            Ok(api::sync_with(
                201,
                Value::Null,
                vec![("Location".into(), proj.url(&format!("/1.0/profiles/{new}")))],
            ))
        }
        ("POST", ["1.0", "profiles"]) => {
            let body = json_body(req)?;
            let name = body.get("name").and_then(Value::as_str).unwrap_or("");
            check_name(name, "profile")?;
            let db = d.db();
            if db.profile_exists(pp, name).map_err(internal)? {
                return Err(ApiError::new(
                    409,
                    format!("Error inserting \"{name}\" into database: The profile already exists"),
                ));
            }
            let p = Profile {
                project: pp.to_string(),
                name: name.to_string(),
                description: api::text(&body, "description"),
                config: object_or_empty(body.get("config"))?,
                devices: object_or_empty(body.get("devices"))?,
            };
            check_devices(&p.devices, &db, &proj)?;
            db.put_profile(&p).map_err(internal)?;
            Ok(api::sync_with(
                201,
                Value::Null,
                vec![(
                    "Location".into(),
                    proj.url(&format!("/1.0/profiles/{name}")),
                )],
            ))
        }
        ("GET", ["1.0", "storage-pools"]) => {
            let pools = d.db().pools().map_err(internal)?;
            Ok(api::sync(if recursion(req) == 0 {
                json!(pools
                    .iter()
                    .map(|p| format!("/1.0/storage-pools/{}", p.name))
                    .collect::<Vec<_>>())
            } else {
                json!(pools
                    .iter()
                    .map(|p| pool_view(d, req, p))
                    .collect::<Vec<_>>())
            }))
        }
        ("GET", ["1.0", "storage-pools", name]) => {
            let pools = d.db().pools().map_err(internal)?;
            let p = pools
                .iter()
                .find(|p| p.name == *name)
                .ok_or_else(|| ApiError::not_found("Storage pool not found"))?;
            Ok(api::sync_etag(pool_view(d, req, p)))
        }
        (_, ["1.0", "storage-pools", pool, "volumes", rest @ ..]) => {
            crate::volumes::handle(d, req, &proj, pool, rest)
        }
        ("DELETE", ["1.0", "storage-pools", name]) => {
            let db = d.db();
            let profiles = pool_and_profiles(&db, name)?;
            let mut users: Vec<String> = profiles
                .iter()
                .filter(|p| {
                    p.devices.as_object().is_some_and(|m| {
                        m.values()
                            .any(|dev| dev.get("pool").and_then(Value::as_str) == Some(*name))
                    })
                })
                .map(|p| format!("profile {}", crate::db::project_url(&p.project, &p.name)))
                .collect();
            users.extend(
                db.instances()
                    .map_err(internal)?
                    .iter()
                    .filter(|i| crate::volumes::root_pool(&profiles, i).as_deref() == Some(*name))
                    .map(|i| format!("instance {}", i.url())),
            );
            users.extend(
                db.volumes(name)
                    .map_err(internal)?
                    .iter()
                    .map(|v| format!("volume {}", v.name)),
            );
            if !users.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "The storage pool is currently in use by: {}",
                    users.join(", ")
                )));
            }
            db.delete_pool(name).map_err(internal)?;
            // its place under WARREN_DIR goes; a source elsewhere is the admin's and stays
            let home = d.dir.join("storage-pools").join(name);
            if home.is_symlink() {
                let _ = std::fs::remove_file(&home);
            } else {
                let _ = std::fs::remove_dir_all(&home);
            }
            Ok(api::sync(Value::Null))
        }
        ("POST", ["1.0", "storage-pools"]) => {
            let body = json_body(req)?;
            let name = body.get("name").and_then(Value::as_str).unwrap_or("");
            check_name(name, "storage pool")?;
            let driver = body.get("driver").and_then(Value::as_str).unwrap_or("");
            if driver != "dir" {
                return Err(ApiError::bad_request(format!(
                    "Storage pool driver \"{driver}\" is not supported (warren has: dir)"
                )));
            }
            let mut config = object_or_empty(body.get("config"))?;
            let source = match config.get("source").and_then(Value::as_str) {
                Some(s) if !s.is_empty() => std::path::PathBuf::from(s),
                _ => d.dir.join("storage-pools").join(name),
            };
            let db = d.db();
            if db.pools().map_err(internal)?.iter().any(|p| p.name == name) {
                return Err(ApiError::new(
                    409,
                    format!("Storage pool \"{name}\" already exists"),
                ));
            }
            std::fs::create_dir_all(&source).map_err(|e| {
                ApiError::new(500, format!("Failed to create {}: {e}", source.display()))
            })?;
            // the pool's place under WARREN_DIR leads to its source wherever that is
            let home = d.dir.join("storage-pools").join(name);
            if source != home && !home.exists() {
                let _ = std::fs::create_dir_all(d.dir.join("storage-pools"));
                std::os::unix::fs::symlink(&source, &home).map_err(|e| {
                    ApiError::new(500, format!("Failed to link {}: {e}", home.display()))
                })?;
            }
            if let Some(obj) = config.as_object_mut() {
                obj.insert("source".into(), json!(source.display().to_string()));
            }
            let pool = Pool {
                name: name.to_string(),
                driver: driver.to_string(),
                description: api::text(&body, "description"),
                config,
            };
            db.add_pool(&pool).map_err(internal)?;
            Ok(api::sync_with(
                201,
                Value::Null,
                vec![("Location".into(), format!("/1.0/storage-pools/{name}"))],
            ))
        }
        ("GET", ["1.0", "metrics"]) => {
            // every project's instances, or those of the project asked for
            let mut list = d.db().instances().map_err(internal)?;
            if req.query("project").is_some_and(|p| !p.is_empty()) {
                list.retain(|i| i.project == proj.name);
            }
            let states: Vec<(crate::db::Instance, Value)> = list
                .into_iter()
                .map(|i| {
                    let st = instances::state_json(&d.dir, &i.name);
                    (i, st)
                })
                .collect();
            Ok(Response {
                status: 200,
                headers: vec![("Content-Type".into(), "text/plain; version=0.0.4".into())],
                body: crate::metrics::render(&states).into_bytes(),
                file: None,
            })
        }
        ("GET", ["1.0", "resources"]) => Ok(api::sync(crate::resources::host())),
        (_, ["1.0", "networks", rest @ ..]) => crate::routes_networks::handle(d, req, rest),
        ("GET", ["1.0", "events"]) => {
            Err(ApiError::new(403, "The events API is not available yet"))
        }
        (_, ["1.0", ..]) if !matches!(m, "GET" | "PUT" | "PATCH" | "POST" | "DELETE") => {
            Err(ApiError::new(405, "method not allowed"))
        }
        _ => Err(ApiError::not_found("not found")),
    }
}

/// Instance `key` (a storage name) isn't there.
fn instance_not_found(key: &str) -> ApiError {
    let (project, name) = crate::db::split_key(key);
    ApiError::not_found(format!(
        "Failed to fetch instance \"{name}\" in project \"{project}\": Instance not found"
    ))
}

/// POST /1.0/instances: from an image (alias or fingerprint), `start: true` for launch.
fn create_instance(d: &Arc<Daemon>, req: &Request, proj: &Project) -> Result<Response, ApiError> {
    let body = json_body(req)?;
    let name = api::text(&body, "name");
    instances::check_name(&name).map_err(ApiError::bad_request)?;
    let source = body.get("source").cloned().unwrap_or(Value::Null);
    if source.get("type").and_then(Value::as_str) == Some("copy") {
        return copy_instance(d, proj, &name, &body, &source);
    }
    if source.get("type").and_then(Value::as_str) != Some("image") {
        return Err(ApiError::bad_request(
            "Only instances from a local image are supported so far (source.type \"image\")",
        ));
    }
    // a local image now, or one pulled from a simplestreams server in the operation
    let remote = match source.get("server").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => {
            Some(crate::remote::Source::from_json(&source).map_err(ApiError::bad_request)?)
        }
        _ => None,
    };
    let db = d.db();
    let images_list = db.images(proj.images_project()).map_err(internal)?;
    let image = if remote.is_some() {
        None
    } else {
        let fingerprint = match (
            source.get("fingerprint").and_then(Value::as_str),
            source.get("alias").and_then(Value::as_str),
        ) {
            (Some(fp), _) if !fp.is_empty() => fp.to_string(),
            (_, Some(alias)) if !alias.is_empty() => db
                .aliases(proj.images_project())
                .map_err(internal)?
                .into_iter()
                .find(|(n, _, _)| n == alias)
                .map(|(_, t, _)| t)
                .ok_or_else(|| ApiError::not_found(format!("Image alias \"{alias}\" not found")))?,
            _ => {
                return Err(ApiError::bad_request(
                    "source needs an image fingerprint or alias",
                ))
            }
        };
        let image = images::find(&images_list, &fingerprint)
            .ok_or_else(|| ApiError::not_found("Image not found"))?
            .clone();
        Some(image)
    };
    if db.instance(&proj.key(&name)).map_err(internal)?.is_some() {
        return Err(ApiError::new(
            409,
            format!("Instance \"{name}\" already exists"),
        ));
    }
    crate::projects::check_instance_limit(&db, proj)?;
    let mut config = object_or_empty(body.get("config"))?;
    crate::config::validate(&config).map_err(ApiError::bad_request)?;
    if let Some(image) = &image {
        image_keys(&mut config, image);
    }
    let profiles = match body.get("profiles") {
        Some(Value::Array(a)) => Value::Array(a.clone()),
        _ => json!(["default"]),
    };
    check_profiles_exist(&db, proj, &profiles)?;
    let inst = crate::db::Instance {
        name: proj.key(&name),
        project: proj.name.clone(),
        profiles_project: proj.profiles_project().to_string(),
        volumes_project: proj.volumes_project().to_string(),
        description: api::text(&body, "description"),
        config,
        devices: object_or_empty(body.get("devices"))?,
        profiles,
        architecture: image
            .as_ref()
            .map(|i| i.architecture.clone())
            .unwrap_or_else(host_architecture),
        created_at: crate::time::now(),
        ephemeral: body
            .get("ephemeral")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    check_devices(&inst.devices, &db, proj)?;
    check_restricted(&db, proj, &inst)?;
    let mut inst = inst;
    instances::fill_volatile_hwaddrs(&db.all_profiles().map_err(internal)?, &mut inst);
    drop(db);
    let start = body.get("start").and_then(Value::as_bool).unwrap_or(false);
    let images_project = proj.images_project().to_string();
    spawn_create(d, inst, start, move |d, op, inst| {
        let image = match (image, remote) {
            (Some(image), _) => image,
            (None, Some(remote)) => {
                let pulling = std::time::Instant::now();
                let image = crate::remote::pull(d, &remote, op, true, &images_project)?;
                crate::log::debug(&format!(
                    "image {} ready in {} ms",
                    image.fingerprint,
                    pulling.elapsed().as_millis()
                ));
                image_keys(&mut inst.config, &image);
                inst.architecture = image.architecture.clone();
                d.db().update_instance(inst).map_err(|e| e.to_string())?;
                image
            }
            (None, None) => return Err("no image".into()),
        };
        let profiles = d.db().all_profiles().map_err(|e| e.to_string())?;
        // as incusd reports it, so that the incus client shows it too
        let progress = |p: u8| {
            d.hub.set_metadata(
                op,
                json!({"create_instance_from_image_unpack_progress": format!("Unpacking image: {p}%")}),
            )
        };
        let creating = std::time::Instant::now();
        instances::create(&d.dir, &profiles, inst, &image, &progress)?;
        crate::log::debug(&format!(
            "instance {} created in {} ms",
            inst.name,
            creating.elapsed().as_millis()
        ));
        Ok(())
    })
}

/// POST /1.0/images with a JSON `source` (`incus image copy remote:alias local:`): the image
/// pulled from a simplestreams server, with the aliases asked for.
fn copy_image(d: &Arc<Daemon>, req: &Request, proj: &Project) -> Result<Response, ApiError> {
    let body = json_body(req)?;
    let source = body.get("source").cloned().unwrap_or(Value::Null);
    if source.get("mode").and_then(Value::as_str) == Some("push") {
        return Err(ApiError::bad_request(
            "Images can't be pushed to warrend yet: copy with --mode relay (the client carries it), or from a server on the network (pull)",
        ));
    }
    if source.get("type").and_then(Value::as_str) != Some("image") {
        return Err(ApiError::bad_request(
            "An image comes as an upload (a unified tarball, or metadata and rootfs as multipart) or from a server (source.type \"image\")",
        ));
    }
    let remote = crate::remote::Source::from_json(&source).map_err(ApiError::bad_request)?;
    let auto_update = body
        .get("auto_update")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut aliases = Vec::new();
    for a in body
        .get("aliases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = a.get("name").and_then(Value::as_str).unwrap_or("");
        check_name(name, "alias")?;
        if d.db()
            .aliases(proj.images_project())
            .map_err(internal)?
            .iter()
            .any(|(n, _, _)| n == name)
        {
            return Err(ApiError::new(
                409,
                format!("Alias \"{name}\" already exists"),
            ));
        }
        aliases.push((name.to_string(), api::text(a, "description")));
    }
    let ip = proj.images_project().to_string();
    let (dd, id) = (d.clone(), crate::ops::Hub::new_id());
    let opid = id.clone();
    let op = d.hub.run_with(
        id,
        "task",
        Value::Null,
        "Downloading image",
        json!({}),
        move || {
            let image = crate::remote::pull(&dd, &remote, &opid, false, &ip)?;
            let db = dd.db();
            // asked for by name: no longer only a cache
            db.set_image_origin(&ip, &image.fingerprint, false, &image.update_source)
                .map_err(|e| e.to_string())?;
            db.set_image_auto_update(&ip, &image.fingerprint, auto_update)
                .map_err(|e| e.to_string())?;
            for (name, description) in &aliases {
                db.add_alias(&ip, name, &image.fingerprint, description)
                    .map_err(|e| e.to_string())?;
            }
            Ok(json!({"fingerprint": image.fingerprint, "size": image.size.to_string()}))
        },
    );
    d.hub.set_project(&op.id, &proj.name);
    Ok(api::async_op(&op))
}

/// An instance's `image.*` keys (the image's properties) and `volatile.base_image`.
fn image_keys(config: &mut Value, image: &crate::db::Image) {
    if let Some(c) = config.as_object_mut() {
        for (k, v) in image.properties.as_object().cloned().unwrap_or_default() {
            c.insert(format!("image.{k}"), v);
        }
        c.insert("volatile.base_image".into(), json!(image.fingerprint));
    }
}

fn host_architecture() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Records `inst` (its name is taken from now on) and makes it in a "Creating instance" operation
/// with `make`; a failure removes the record again. With `start`, the container starts after.
fn spawn_create<F>(
    d: &Arc<Daemon>,
    inst: crate::db::Instance,
    start: bool,
    make: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&Arc<Daemon>, &str, &mut crate::db::Instance) -> Result<(), String> + Send + 'static,
{
    {
        // under one lock with the record: its project is still there (a delete of an empty
        // project can't slip in between) and still has room
        let db = d.db();
        let project = db
            .project(&inst.project)
            .map_err(internal)?
            .ok_or_else(|| {
                ApiError::not_found(format!("Project \"{}\" not found", inst.project))
            })?;
        crate::projects::check_instance_limit(&db, &project)?;
        // and its restrictions and aggregate limits still allow it (checked before, but the
        // project or another instance may have changed since)
        check_restricted(&db, &project, &inst)?;
        if db.instance(&inst.name).map_err(internal)?.is_some() {
            return Err(ApiError::new(
                409,
                format!("Instance \"{}\" already exists", inst.api_name()),
            ));
        }
        db.add_instance(&inst).map_err(internal)?;
    }
    let (dd, id) = (d.clone(), crate::ops::Hub::new_id());
    let opid = id.clone();
    let mut inst = inst;
    let op = d.hub.run_with(
        id,
        "task",
        Value::Null,
        "Creating instance",
        json!({"instances": [inst.url()]}),
        move || {
            // `make` takes the database lock only for what it reads or records, never while the
            // rootfs is made (or an image downloaded)
            let made = make(&dd, &opid, &mut inst);
            if let Err(e) = made {
                let _ = dd.db().delete_instance(&inst.name);
                return Err(e);
            }
            let source = inst.url();
            dd.hub.lifecycle("instance-created", &source, json!({}));
            // a static lease asked for must be there before its DHCP request
            crate::routes_networks::ensure_all(&dd);
            if start {
                let profiles = dd.db().all_profiles().map_err(|e| e.to_string())?;
                instances::start(&dd.dir, &profiles, &inst, project_of(&dd, &inst).as_ref())?;
                dd.sync_proxies();
                dd.hub.lifecycle("instance-started", &source, json!({}));
            }
            Ok(Value::Null)
        },
    );
    Ok(api::async_op(&op))
}

/// POST /1.0/instances with `source.type: copy`: a stopped or running container's rootfs copied.
fn copy_instance(
    d: &Arc<Daemon>,
    proj: &Project,
    name: &str,
    body: &Value,
    source: &Value,
) -> Result<Response, ApiError> {
    let from = source.get("source").and_then(Value::as_str).unwrap_or("");
    // from another project (`--target-project`), or this one
    let from_project = match source.get("project").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => p,
        _ => proj.name.as_str(),
    };
    let from = crate::db::storage_name(from_project, from);
    let db = d.db();
    let src = db
        .instance(&from)
        .map_err(internal)?
        // a name with a `_` would reach into another project
        .filter(|i| i.project == from_project)
        .ok_or_else(|| instance_not_found(&from))?;
    if db.instance(&proj.key(name)).map_err(internal)?.is_some() {
        return Err(ApiError::new(
            409,
            format!("Instance \"{name}\" already exists"),
        ));
    }
    crate::projects::check_instance_limit(&db, proj)?;
    check_profiles_exist(&db, proj, &src.profiles)?;
    check_devices(&src.devices, &db, proj)?;
    let mut config = object_or_empty(body.get("config"))?;
    crate::config::validate(&config).map_err(ApiError::bad_request)?;
    if let (Some(c), Some(srcc)) = (config.as_object_mut(), src.config.as_object()) {
        // a copy gets MAC addresses of its own
        for (k, v) in srcc.iter().filter(|(k, _)| !k.ends_with(".hwaddr")) {
            c.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let inst = crate::db::Instance {
        name: proj.key(name),
        project: proj.name.clone(),
        profiles_project: proj.profiles_project().to_string(),
        volumes_project: proj.volumes_project().to_string(),
        description: api::text(body, "description"),
        config,
        devices: src.devices.clone(),
        profiles: src.profiles.clone(),
        architecture: src.architecture.clone(),
        created_at: crate::time::now(),
        ephemeral: false,
    };
    check_restricted(&db, proj, &inst)?;
    let mut inst = inst;
    instances::fill_volatile_hwaddrs(&db.all_profiles().map_err(internal)?, &mut inst);
    drop(db);
    spawn_create(d, inst, false, move |d, _, inst| {
        let profiles = d.db().all_profiles().map_err(|e| e.to_string())?;
        instances::copy(&d.dir, &profiles, &from, inst)
    })
}

/// POST /1.0/instances/<name>/console: the console bridged to websocket `0` (class websocket,
/// cancellable: cancelling detaches).
fn console(d: &Arc<Daemon>, req: &Request, name: &str) -> Result<Response, ApiError> {
    d.db()
        .instance(name)
        .map_err(internal)?
        .ok_or_else(|| instance_not_found(name))?;
    if instances::state(&d.dir, name) != "RUNNING" {
        return Err(ApiError::bad_request("Instance is not running"));
    }
    let body = json_body(req)?;
    match body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("console")
    {
        "console" => {}
        other => {
            return Err(ApiError::bad_request(format!(
                "Console type \"{other}\" is not supported by containers (console)"
            )))
        }
    }
    let size = |k: &str| body.get(k).and_then(Value::as_u64).unwrap_or(0) as u16;
    let (rows, cols) = (size("height"), size("width"));
    let session = Arc::new(crate::exec::Session::new(true));
    let id = crate::ops::Hub::new_id();
    if let Ok(mut m) = d.execs.lock() {
        m.insert(id.clone(), session.clone());
    }
    let (dd, n, opid, s) = (d.clone(), name.to_string(), id.clone(), session.clone());
    let op = d.hub.run_with(
        id.clone(),
        "websocket",
        json!({"fds": session.secrets}),
        "Showing console",
        json!({"instances": [instance_path(name, "")]}),
        move || {
            let r = crate::console::run(&dd.dir, &n, rows, cols, &s);
            if let Ok(mut m) = dd.execs.lock() {
                m.remove(&opid);
            }
            r.map(|_| Value::Null)
        },
    );
    d.hub.cancellable(&id, Box::new(move || session.close()));
    let op = d.hub.get(&id).unwrap_or(op);
    d.hub.lifecycle(
        "instance-console",
        &instance_path(name, ""),
        json!({"type": "console"}),
    );
    Ok(api::async_op(&op))
}

/// POST /1.0/instances/<name> with a new `name`: renames a stopped instance.
fn rename_instance(d: &Arc<Daemon>, req: &Request, name: &str) -> Result<Response, ApiError> {
    let body = json_body(req)?;
    let (project, current) = crate::db::split_key(name);
    // a move to another project of this server (`incus move --target-project`, which the
    // client sends as a migration), with the name it has unless another is given
    let target = body
        .get("project")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty() && *p != project);
    if body.get("migration").and_then(Value::as_bool) == Some(true) && target.is_none() {
        return Err(ApiError::bad_request(
            "Migrating instances between servers or storage pools is not supported",
        ));
    }
    let new = match api::text(&body, "name") {
        n if n.is_empty() && target.is_some() => current.to_string(),
        n => n,
    };
    instances::check_name(&new).map_err(ApiError::bad_request)?;
    let db = d.db();
    let mut inst = db
        .instance(name)
        .map_err(internal)?
        .ok_or_else(|| instance_not_found(name))?;
    let to = match target {
        Some(t) => {
            let to = db
                .project(t)
                .map_err(internal)?
                .ok_or_else(|| ApiError::not_found(format!("Project \"{t}\" not found")))?;
            // what the client asks to change on the way (`incus move -p/--no-profiles/-c/-d`;
            // Incus 6.0's client names these fields with capitals)
            let field = |k: &str| {
                let capital = format!("{}{}", k[..1].to_uppercase(), &k[1..]);
                body.get(k)
                    .filter(|v| !v.is_null())
                    .or_else(|| body.get(&capital))
                    .filter(|v| !v.is_null())
            };
            if let Some(Value::Array(p)) = field("profiles") {
                inst.profiles = Value::Array(p.clone());
            }
            inst.config = merge(true, &inst.config, field("config"))?;
            inst.devices = merge(true, &inst.devices, field("devices"))?;
            crate::config::validate(&inst.config).map_err(ApiError::bad_request)?;
            // what it names must be there in the project it goes to
            check_profiles_exist(&db, &to, &inst.profiles)?;
            check_devices(&inst.devices, &db, &to)?;
            let there = crate::db::Instance {
                profiles_project: to.profiles_project().to_string(),
                ..inst.clone()
            };
            check_restricted(&db, &to, &there)?;
            // its snapshots go along: not into a project that blocks snapshots
            if !db.snapshots(name).map_err(internal)?.is_empty() {
                crate::restrictions::check_snapshot(&to).map_err(ApiError::bad_request)?;
            }
            crate::projects::check_instance_limit(&db, &to)?;
            to
        }
        None => db
            .project(project)
            .map_err(internal)?
            .ok_or_else(|| ApiError::not_found(format!("Project \"{project}\" not found")))?,
    };
    // the storage name in the project it ends up in
    let new = to.key(&new);
    if db.instance(&new).map_err(internal)?.is_some() {
        return Err(ApiError::new(
            409,
            format!("Name \"{}\" already in use", crate::db::split_key(&new).1),
        ));
    }
    if instances::state(&d.dir, name) != "STOPPED" {
        return Err(ApiError::bad_request(if target.is_some() {
            "Stop the instance before moving it to another project"
        } else {
            "Renaming of running instance not allowed"
        }));
    }
    drop(db);
    let (dd, old) = (d.clone(), name.to_string());
    let op = d.hub.run(
        if target.is_some() {
            "Moving instance"
        } else {
            "Renaming instance"
        },
        json!({"instances": [instance_path(name, "")]}),
        move || {
            instances::rename(&dd.dir, &old, &new)?;
            let db = dd.db();
            if let Err(e) = db.rename_instance(&old, &new, &to.name) {
                let _ = instances::rename(&dd.dir, &new, &old);
                return Err(e.to_string());
            }
            inst.name = new.clone();
            // with what the move changed
            db.update_instance(&inst).map_err(|e| e.to_string())?;
            inst.project = to.name.clone();
            inst.profiles_project = to.profiles_project().to_string();
            inst.volumes_project = to.volumes_project().to_string();
            instances::rewrite_config(
                &dd.dir,
                &db.all_profiles().map_err(|e| e.to_string())?,
                &inst,
            )?;
            drop(db);
            dd.hub.lifecycle(
                "instance-renamed",
                &instance_path(&new, ""),
                json!({"old_name": crate::db::split_key(&old).1}),
            );
            Ok(Value::Null)
        },
    );
    Ok(api::async_op(&op))
}

/// Every profile an instance names must exist in its project's profiles.
fn check_profiles_exist(db: &crate::db::Db, proj: &Project, names: &Value) -> Result<(), ApiError> {
    let have = db.profiles(proj.profiles_project()).map_err(internal)?;
    for n in names.as_array().into_iter().flatten() {
        let n = n.as_str().unwrap_or("");
        if !have.iter().any(|p| p.name == n) {
            return Err(ApiError::bad_request(format!(
                "Requested profile \"{n}\" doesn't exist in project \"{}\"",
                proj.profiles_project()
            )));
        }
    }
    Ok(())
}

/// The profiles, once pool `name` is known to exist (else: not found).
fn pool_and_profiles(db: &crate::db::Db, name: &str) -> Result<Vec<Profile>, ApiError> {
    if !db.pools().map_err(internal)?.iter().any(|p| p.name == name) {
        return Err(ApiError::not_found("Storage pool not found"));
    }
    db.all_profiles().map_err(internal)
}

/// The project an instance is in (None if it went meanwhile).
pub(crate) fn project_of(d: &Daemon, inst: &crate::db::Instance) -> Option<Project> {
    d.db().project(&inst.project).ok().flatten()
}

/// Starts instance `name` as its record and profiles say now.
fn start_instance(d: &Daemon, name: &str) -> Result<(), String> {
    let (inst, profiles) = {
        let db = d.db();
        (
            db.instance(name)
                .map_err(|e| e.to_string())?
                .ok_or("Instance not found")?,
            db.all_profiles().map_err(|e| e.to_string())?,
        )
    };
    crate::restrictions::check_at_start(&d.db(), &profiles, &inst)?;
    instances::start(&d.dir, &profiles, &inst, project_of(d, &inst).as_ref())
}

/// The instances that use profile `name` of project `project`, as API paths.
fn profile_users(db: &crate::db::Db, project: &str, name: &str) -> Result<Vec<String>, ApiError> {
    Ok(db
        .instances()
        .map_err(internal)?
        .iter()
        .filter(|i| {
            i.profiles_project == project
                && i.profiles
                    .as_array()
                    .is_some_and(|l| l.iter().any(|p| p == name))
        })
        .map(|i| i.url())
        .collect())
}

fn snapshot_json(inst: &crate::db::Instance, s: &crate::db::Snapshot) -> Value {
    json!({
        "expires_at": "0001-01-01T00:00:00Z", "architecture": inst.architecture, "config": s.config,
        "created_at": s.created_at, "devices": s.devices, "ephemeral": false, "expanded_config": s.config,
        "expanded_devices": s.devices, "last_used_at": "0001-01-01T00:00:00Z", "name": s.name,
        "profiles": s.profiles, "stateful": false, "size": -1,
    })
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, e.to_string())
}

pub(crate) fn check_name(name: &str, what: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid {what} name \"{name}\": letters, digits, '-', '_' and '.' only"
        )))
    }
}

pub(crate) fn object_or_empty(v: Option<&Value>) -> Result<Value, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::Object(_)) => Ok(v.cloned().unwrap_or_default()),
        Some(_) => Err(ApiError::bad_request("config and devices must be objects")),
    }
}

/// PUT replaces, PATCH merges key by key.
pub(crate) fn merge(patch: bool, old: &Value, new: Option<&Value>) -> Result<Value, ApiError> {
    let new = object_or_empty(new)?;
    if !patch {
        return Ok(new);
    }
    let mut out: Map<String, Value> = old.as_object().cloned().unwrap_or_default();
    if let Some(n) = new.as_object() {
        for (k, v) in n {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

/// Devices warrend knows: disk (root or a bind mount) and nic; a root disk's pool must exist.
/// Every instance using profile `p` must stay allowed in its project with the profile as `p`
/// has it.
fn check_profile_users(db: &crate::db::Db, p: &Profile) -> Result<(), ApiError> {
    let mut profiles = db.all_profiles().map_err(internal)?;
    profiles.retain(|x| !(x.name == p.name && x.project == p.project));
    profiles.push(p.clone());
    let all = db.instances().map_err(internal)?;
    let mut projects_touched: Vec<Project> = Vec::new();
    for inst in &all {
        let uses = inst.profiles_project == p.project
            && inst
                .profiles
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n.as_str() == Some(p.name.as_str())));
        if !uses {
            continue;
        }
        let Some(proj) = db.project(&inst.project).map_err(internal)? else {
            continue;
        };
        crate::restrictions::check_instance(
            &proj,
            &instances::expanded_config(&profiles, inst),
            &instances::expanded_devices(&profiles, inst),
        )
        .map_err(|e| {
            ApiError::bad_request(format!(
                "Profile \"{}\" can't change so: instance \"{}\" uses it. {e}",
                p.name,
                inst.api_name()
            ))
        })?;
        if !projects_touched.iter().any(|x| x.name == proj.name) {
            projects_touched.push(proj);
        }
    }
    // and the aggregate limits of every project with an instance using it
    for proj in &projects_touched {
        let configs: Vec<(String, Value)> = all
            .iter()
            .filter(|i| i.project == proj.name)
            .map(|i| {
                (
                    i.api_name().to_string(),
                    instances::expanded_config(&profiles, i),
                )
            })
            .collect();
        crate::quotas::check(proj, &configs).map_err(|e| {
            ApiError::bad_request(format!("Profile \"{}\" can't change so. {e}", p.name))
        })?;
    }
    Ok(())
}

/// Project `proj`'s restrictions against `inst` as it would be (expanded with its profiles).
fn check_restricted(
    db: &crate::db::Db,
    proj: &Project,
    inst: &crate::db::Instance,
) -> Result<(), ApiError> {
    let profiles = db.all_profiles().map_err(internal)?;
    let config = instances::expanded_config(&profiles, inst);
    crate::restrictions::check_instance(
        proj,
        &config,
        &instances::expanded_devices(&profiles, inst),
    )
    .map_err(ApiError::bad_request)?;
    // the project's aggregate limits, with this instance as it would be
    let mut configs: Vec<(String, Value)> = db
        .instances()
        .map_err(internal)?
        .iter()
        .filter(|i| i.project == proj.name && i.name != inst.name)
        .map(|i| {
            (
                i.api_name().to_string(),
                instances::expanded_config(&profiles, i),
            )
        })
        .collect();
    configs.push((inst.api_name().to_string(), config));
    crate::quotas::check(proj, &configs).map_err(ApiError::bad_request)
}

fn check_devices(devices: &Value, db: &crate::db::Db, proj: &Project) -> Result<(), ApiError> {
    let Some(map) = devices.as_object() else {
        return Ok(());
    };
    for (name, dev) in map {
        let kind = dev.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "disk" => {
                let get = |k: &str| dev.get(k).and_then(Value::as_str).unwrap_or("");
                if get("path") == "/" {
                    let pool = get("pool");
                    if !db.pools().map_err(internal)?.iter().any(|p| p.name == pool) {
                        return Err(ApiError::bad_request(format!(
                            "Device \"{name}\": storage pool \"{pool}\" doesn't exist"
                        )));
                    }
                    continue;
                }
                if dev.get("pool").is_some() {
                    check_volume_disk(name, dev, db, proj.volumes_project())?;
                    continue;
                }
                check_disk(name, dev)?;
            }
            "nic" => check_nic(name, dev, db)?,
            "unix-char" | "unix-block" => check_unix_device(name, dev)?,
            "proxy" => crate::proxies::check(dev)
                .map_err(|e| ApiError::bad_request(format!("Device \"{name}\": {e}")))?,
            other => {
                return Err(ApiError::bad_request(format!(
                "Device \"{name}\": unsupported device type \"{other}\" (warren has: disk, nic, unix-char, unix-block, proxy)"
            )))
            }
        }
    }
    Ok(())
}

/// The first key of a device that isn't one of `keys`.
fn unknown_key<'a>(dev: &'a Value, keys: &[&str]) -> Option<&'a String> {
    dev.as_object()?
        .keys()
        .find(|k| !keys.contains(&k.as_str()))
}

/// A plain absolute path: no whitespace, control characters or "..".
fn plain_absolute(v: &str) -> bool {
    v.starts_with('/')
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && !v.split('/').any(|p| p == "..")
}

/// A boolean as config values spell it ("" leaves the default).
fn boolean_text(v: &str) -> bool {
    matches!(
        v,
        "" | "true" | "false" | "1" | "0" | "yes" | "no" | "on" | "off"
    )
}

/// A disk device that binds a custom storage volume (`pool`, `source` = the volume's name).
fn check_volume_disk(
    name: &str,
    dev: &Value,
    db: &crate::db::Db,
    project: &str,
) -> Result<(), ApiError> {
    const KEYS: &[&str] = &["type", "path", "pool", "source", "readonly", "required"];
    let bad = |why: String| Err(ApiError::bad_request(format!("Device \"{name}\": {why}")));
    if let Some(k) = unknown_key(dev, KEYS) {
        return bad(format!(
            "unknown option \"{k}\" for a volume disk (warren has: {})",
            KEYS[1..].join(", ")
        ));
    }
    let get = |k: &str| dev.get(k).and_then(Value::as_str).unwrap_or("");
    let path = get("path");
    if !plain_absolute(path) {
        return bad(format!(
            "path must be a plain absolute path, not \"{path}\""
        ));
    }
    for k in ["readonly", "required"] {
        if !boolean_text(get(k)) {
            return bad(format!("{k} must be true or false, not \"{}\"", get(k)));
        }
    }
    crate::volumes::check_custom_volume(db, get("pool"), project, get("source"))
        .map_err(|e| ApiError::bad_request(format!("Device \"{name}\": {e}")))
}

/// unix-char / unix-block: `source` (host) and/or `path` (container), absolute; numbers, ids
/// and mode well formed.
fn check_unix_device(name: &str, dev: &Value) -> Result<(), ApiError> {
    const KEYS: &[&str] = &[
        "type", "source", "path", "major", "minor", "uid", "gid", "mode", "required",
    ];
    let bad = |why: String| Err(ApiError::bad_request(format!("Device \"{name}\": {why}")));
    if let Some(k) = unknown_key(dev, KEYS) {
        return bad(format!(
            "unknown option \"{k}\" (warren has: {})",
            KEYS[1..].join(", ")
        ));
    }
    let get = |k: &str| dev.get(k).and_then(Value::as_str).unwrap_or("");
    if get("source").is_empty() && get("path").is_empty() {
        return bad("needs source (the host's node) or path".into());
    }
    for k in ["source", "path"] {
        let v = get(k);
        if !v.is_empty() && !plain_absolute(v) {
            return bad(format!("{k} must be a plain absolute path, not \"{v}\""));
        }
    }
    for k in ["major", "minor", "uid", "gid"] {
        if !get(k).is_empty() && get(k).parse::<u32>().is_err() {
            return bad(format!("{k} must be a number, not \"{}\"", get(k)));
        }
    }
    if !get("mode").is_empty() && u32::from_str_radix(get("mode"), 8).map_or(true, |m| m > 0o777) {
        return bad(format!(
            "mode must be octal (0660), not \"{}\"",
            get("mode")
        ));
    }
    if !matches!(get("required"), "" | "true" | "false") {
        return bad(format!(
            "required must be true or false, not \"{}\"",
            get("required")
        ));
    }
    Ok(())
}

/// A disk device that binds a host path: `path` and `source` absolute and plain (LXC's mount
/// entries can't carry whitespace), the source there, the flags booleans.
fn check_disk(name: &str, dev: &Value) -> Result<(), ApiError> {
    const KEYS: &[&str] = &[
        "type",
        "path",
        "source",
        "readonly",
        "shift",
        "recursive",
        "required",
        "propagation",
    ];
    let bad = |why: String| Err(ApiError::bad_request(format!("Device \"{name}\": {why}")));
    if let Some(k) = unknown_key(dev, KEYS) {
        return bad(format!(
            "unknown disk option \"{k}\" (warren has: {})",
            KEYS[1..].join(", ")
        ));
    }
    if let Some((k, _)) = dev
        .as_object()
        .and_then(|m| m.iter().find(|(_, v)| !v.is_string()))
    {
        return bad(format!("{k} must be a string"));
    }
    let get = |k: &str| dev.get(k).and_then(Value::as_str).unwrap_or("");
    for k in ["path", "source"] {
        let v = get(k);
        if !v.starts_with('/') {
            return bad(format!("{k} must be an absolute path, not \"{v}\""));
        }
        if !plain_absolute(v) {
            return bad(format!("{k} \"{v}\" has whitespace or \"..\""));
        }
    }
    for k in ["readonly", "shift", "recursive", "required"] {
        if !boolean_text(get(k)) {
            return bad(format!("{k} must be true or false, not \"{}\"", get(k)));
        }
    }
    if get("required") != "false" && !std::path::Path::new(get("source")).exists() {
        return bad(format!(
            "missing source path \"{}\" on the host",
            get("source")
        ));
    }
    Ok(())
}

/// A nic: on a managed network (`network`, optionally a static `ipv4.address`), or bridged onto
/// an existing bridge (`nictype: bridged`, `parent`).
fn check_nic(name: &str, dev: &Value, db: &crate::db::Db) -> Result<(), ApiError> {
    let bad = |why: String| Err(ApiError::bad_request(format!("Device \"{name}\": {why}")));
    let get = |k: &str| dev.get(k).and_then(Value::as_str).unwrap_or("");
    const KEYS: &[&str] = &[
        "type",
        "nictype",
        "parent",
        "network",
        "name",
        "hwaddr",
        "mtu",
        "ipv4.address",
    ];
    if let Some(k) = unknown_key(dev, KEYS) {
        return bad(format!(
            "unknown nic option \"{k}\" (warren has: {})",
            KEYS[1..].join(", ")
        ));
    }
    if !get("hwaddr").is_empty() && warren_net::parse_hwaddr(get("hwaddr")).is_err() {
        return bad(format!("hwaddr \"{}\" is not a MAC address", get("hwaddr")));
    }
    if !get("mtu").is_empty()
        && !get("mtu")
            .parse::<u32>()
            .is_ok_and(|m| (576..=65535).contains(&m))
    {
        return bad(format!("mtu \"{}\" is not 576-65535", get("mtu")));
    }
    if !get("name").is_empty() && warren_net::check_name(get("name")).is_err() {
        return bad(format!("name \"{}\" is not an interface name", get("name")));
    }
    let network = get("network");
    if !network.is_empty() {
        if !get("nictype").is_empty() || !get("parent").is_empty() {
            return bad("a nic on a managed network has no nictype or parent".into());
        }
        let nets = db.networks().map_err(internal)?;
        let Some(n) = nets.iter().find(|n| n.name == network) else {
            return bad(format!(
                "network \"{network}\" doesn't exist (warren network create {network}, or incus network create)"
            ));
        };
        if !get("ipv4.address").is_empty() {
            crate::networks::check_static_address(n, get("ipv4.address"))
                .map_err(|e| ApiError::bad_request(format!("Device \"{name}\": {e}")))?;
        }
        return Ok(());
    }
    if get("nictype") != "bridged" || get("parent").is_empty() {
        return bad(
            "a nic needs network=<managed network>, or nictype=bridged and parent=<bridge>".into(),
        );
    }
    if !get("ipv4.address").is_empty() {
        return bad("ipv4.address needs a managed network (network=...)".into());
    }
    if !std::path::Path::new("/sys/class/net")
        .join(get("parent"))
        .join("bridge")
        .is_dir()
    {
        return bad(format!(
            "parent \"{}\" is not a bridge on this host",
            get("parent")
        ));
    }
    Ok(())
}

fn profile_json(p: &Profile, used_by: Vec<String>) -> Value {
    json!({"config": p.config, "description": p.description, "devices": p.devices, "name": p.name, "used_by": used_by, "project": p.project})
}

/// A pool as `req`'s peer may see it: a restricted client not its config (its source path).
fn pool_view(d: &Daemon, req: &Request, p: &crate::db::Pool) -> Value {
    let mut v = pool_json(d, p);
    if req.peer.scope() != crate::https::Scope::Full {
        v["config"] = json!({});
    }
    v
}

fn pool_json(d: &Daemon, p: &Pool) -> Value {
    let used_by: Vec<String> = d
        .db()
        .all_profiles()
        .unwrap_or_default()
        .iter()
        .filter(|pr| {
            pr.devices.as_object().is_some_and(|m| {
                m.values()
                    .any(|dev| dev.get("pool").and_then(Value::as_str) == Some(p.name.as_str()))
            })
        })
        .map(|pr| crate::db::project_url(&pr.project, &format!("/1.0/profiles/{}", pr.name)))
        .collect();
    json!({"config": p.config, "description": p.description, "name": p.name, "driver": p.driver, "used_by": used_by, "status": "Created", "locations": ["none"]})
}

/// The host's interfaces, unmanaged, as Incus lists them.
pub(crate) fn host_networks() -> Vec<Value> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let base = std::path::Path::new("/sys/class/net").join(&name);
            let kind = if name == "lo" {
                "loopback"
            } else if base.join("bridge").exists() {
                "bridge"
            } else {
                "physical"
            };
            json!({"config": {}, "description": "", "name": name, "type": kind, "used_by": [], "managed": false, "status": "", "locations": []})
        })
        .collect()
}

fn server_info(d: &Daemon, peer: &crate::https::Peer, project: &str) -> Value {
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let os_field = |k: &str| {
        os.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let storage = d
        .db()
        .pools()
        .ok()
        .and_then(|p| p.first().map(|p| p.driver.clone()))
        .unwrap_or_default();
    let extensions: Vec<&str> = EXTENSIONS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !peer.trusted() || peer.scope() == crate::https::Scope::Metrics {
        // what an HTTPS client sees before it is trusted (as incusd shows it), and a metrics
        // certificate
        return json!({"config": {}, "api_extensions": extensions, "api_status": "stable",
                      "api_version": "1.0", "auth": "untrusted", "public": false, "auth_methods": ["tls"]});
    }
    let (user, method) = match peer {
        crate::https::Peer::Tls {
            fingerprint: Some(fp),
            ..
        } => (fp.clone(), "tls"),
        _ => ("root".to_string(), "unix"),
    };
    let config = d.db().server_config().unwrap_or_default();
    let (certificate, fingerprint) = crate::https::identity(&d.dir)
        .map(|i| (i.certificate.clone(), i.fingerprint.clone()))
        .unwrap_or_default();
    json!({
        "config": config,
        "api_extensions": extensions,
        "api_status": "stable",
        "api_version": "1.0",
        "auth": "trusted",
        "public": false,
        "auth_methods": ["tls"],
        "auth_user_name": user,
        "auth_user_method": method,
        "environment": {
            "addresses": crate::https::addresses(d),
            "architectures": ["x86_64", "i686"],
            "certificate": certificate,
            "certificate_fingerprint": fingerprint,
            "driver": "lxc",
            "driver_version": "warren",
            "firewall": "nftables",
            "kernel": field(|u| u.sysname()),
            "kernel_architecture": field(|u| u.machine()),
            "kernel_features": {},
            "kernel_version": field(|u| u.release()),
            "lxc_features": {},
            "os_name": os_field("NAME"),
            "os_version": os_field("VERSION_ID"),
            "project": project,
            "server": "warren",
            "server_clustered": false,
            "server_event_mode": "full-mesh",
            "server_name": field(|u| u.nodename()),
            "server_pid": std::process::id(),
            "server_version": env!("CARGO_PKG_VERSION"),
            "storage": storage,
            "storage_version": if storage.is_empty() { "" } else { "1" },
            "storage_supported_drivers": [{"Name": "dir", "Version": "1", "Remote": false}],
        },
    })
}
